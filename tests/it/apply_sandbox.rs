//! `tokensmith apply` end to end: the real binary against the sandbox. The quickstart runs on the
//! embedded sandbox (`sandbox://demo`); the other tests serve a seeded sandbox from this process
//! on loopback, so they can move its clock and set its faults between runs: first applies, rotation
//! across simulated days, tenant rotation with a failing OneAgent target and resume, fault storms,
//! and a crash test that SIGKILLs apply 50 times and checks DESIGN.md invariants 1–4.

use crate::support::binary_world as apply_sandbox_support;

use apply_sandbox_support::{secrets_in, tok, World, ENV_ID};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration as StdDuration, Instant};
use time::Duration;
use tokensmith::sandbox::faults::{Latency, Rate, ServerError, TooManyRequests};
use tokensmith::sandbox::{Faults, State};

#[test]
fn quickstart_first_apply_delivers_known_tokens_and_second_plan_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        "examples/quickstart.yaml",
        dir.path().join("tokensmith.yaml"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"))
            .args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env_remove("CI")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        apply_sandbox_support::assert_no_secret(&text);
        (o.status.code(), text)
    };
    let (code, text) = run(&["apply", "--auto-approve"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "{text}");

    let state: State = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".tokensmith/sandbox/demo.json")).unwrap(),
    )
    .unwrap();
    let env = state.environments.values().next().unwrap();
    let known =
        |id: &str| env.api_tokens.contains_key(id) || env.activegate_tokens.contains_key(id);
    for f in [
        "out/ci-token.env",
        "out/data-ingest-token",
        "out/activegate/authorization.properties",
    ] {
        let text =
            std::fs::read_to_string(dir.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let secrets = secrets_in(&text);
        assert!(!secrets.is_empty(), "{f} holds no token");
        for s in secrets {
            let id = apply_sandbox_support::id_of(&s);
            assert!(known(&id), "{f} holds {id}, unknown to the sandbox");
        }
    }
    let oa = std::fs::read_to_string(dir.path().join("out/oneagent/tenant-token")).unwrap();
    assert_eq!(oa.trim(), env.tenant.active);
    let props = std::fs::read_to_string(dir.path().join("out/activegate/authorization.properties"))
        .unwrap();
    assert!(props.contains(&env.tenant.active), "{props}");
}

/// Two embedded sandboxes share delivery files: one `authorization.properties` with a section per
/// environment (ActiveGate and tenant tokens, as the quickstart's comment promises), and one
/// `yaml` file that does not exist yet with a key per environment.
const SHARED_FILES: &str = r#"
version: 1
environments:
  demo: { url: "sandbox://demo" }
  prod: { url: "sandbox://prod" }
activegate_tokens:
  ag:
    environments: [demo, prod]
    expires_in: 365d
    rotate_before: 30d
    deliver:
      - file: { path: out/authorization.properties, format: properties, section: "{{ env }}", key: authToken }
tenant_token:
  demo:
    activegates:
      - file: { path: out/authorization.properties, format: properties, section: "{{ env }}", key: tenantToken }
  prod:
    activegates:
      - file: { path: out/authorization.properties, format: properties, section: "{{ env }}", key: tenantToken }
api_tokens:
  ingest:
    environments: [demo, prod]
    scopes: [metrics.ingest]
    deliver:
      - file: { path: out/collector.yaml, format: yaml, key: "exporters.{{ env }}.token" }
"#;

#[test]
fn one_file_with_a_section_per_environment_applies_and_the_next_plan_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokensmith.yaml"), SHARED_FILES).unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"))
            .args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env_remove("CI")
            .output()
            .unwrap();
        let text = crate::support::text(&o);
        apply_sandbox_support::assert_no_secret(&text);
        (o.status.code(), text)
    };
    let (code, text) = run(&["validate"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(&["apply", "--auto-approve"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "the second plan is empty:\n{text}");

    // section -> key -> value, from the shared properties file.
    let props = std::fs::read_to_string(dir.path().join("out/authorization.properties")).unwrap();
    let mut sections: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, String>,
    > = Default::default();
    let mut current = String::new();
    for line in props.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_owned();
        } else if let Some((k, v)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
            sections
                .entry(current.clone())
                .or_default()
                .insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    let collector = std::fs::read_to_string(dir.path().join("out/collector.yaml")).unwrap();
    let collector: serde_yaml::Value = serde_yaml::from_str(&collector).unwrap();
    let mut ids = std::collections::BTreeSet::new();
    for env in ["demo", "prod"] {
        let state: State = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(format!(".tokensmith/sandbox/{env}.json")))
                .unwrap(),
        )
        .unwrap();
        let live = state.environments.values().next().unwrap();
        let section = &sections[env];
        assert_eq!(section["tenantToken"], live.tenant.active, "{props}");
        let ag = apply_sandbox_support::id_of(&section["authToken"]);
        assert!(
            live.activegate_tokens.contains_key(&ag),
            "{env}: {ag} unknown"
        );
        let ingest = collector["exporters"][env]["token"].as_str().unwrap();
        let id = apply_sandbox_support::id_of(ingest);
        assert!(live.api_tokens.contains_key(&id), "{env}: {id} unknown");
        assert!(
            ids.insert(ag) && ids.insert(id),
            "each environment has its own tokens"
        );
    }
}

/// A local variant of the operator / tenant-rotation examples: API, ActiveGate and tenant tokens
/// delivered to files and an exec target.
const LOCAL_VARIANT: &str = r#"
api_tokens:
  operator:
    name: operator
    environments: [demo]
    scopes: [entities.read, settings.read, settings.write, DataExport, activeGateTokenManagement.create]
    deliver:
      - file: { path: out/operator.env, format: env, key: API_TOKEN }
      - exec:
          command: [sh, -c, 'mkdir -p out && printf %s "$TOKEN" > out/exec-operator']
          secret_env: TOKEN
activegate_tokens:
  gateway:
    name: gateway
    environments: [demo]
    type: ENVIRONMENT
    deliver:
      - file: { path: out/ag/authorization.properties, format: properties, key: authToken }
tenant_token:
  demo:
    rotate_every: 180d
    activegates:
      - file: { path: out/ag/authorization.properties, format: properties, key: tenantToken }
    oneagents:
      - file: { path: out/oneagent-tenant }
"#;

#[test]
fn local_variant_of_the_examples_applies_and_second_plan_is_empty() {
    let w = World::new(LOCAL_VARIANT);
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    w.assert_plan_empty("after first apply");
    w.check_invariants("after first apply");
    let held = w.held();
    assert!(held.values().flatten().count() >= 3, "{held:#?}");
    let active = w.sandbox.snapshot().environments[ENV_ID]
        .tenant
        .active
        .clone();
    assert_eq!(
        std::fs::read_to_string(w.path("out/oneagent-tenant")).unwrap(),
        active
    );
    // A second apply changes nothing.
    let before = w.live().len();
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_eq!(w.live().len(), before);
}

const ROTATING: &str = r#"
api_tokens:
  ci:
    name: CI
    environments: [demo]
    scopes: [metrics.ingest]
    expires_in: 30d
    rotate_before: 7d
    grace: 24h
    revoke: { disable: { delete_after: 2d } }
    deliver:
      - file: { path: out/ci }
"#;

fn held_id(w: &World, rel: &str) -> String {
    let s = secrets_in(&std::fs::read_to_string(w.path(rel)).unwrap());
    assert_eq!(s.len(), 1, "{rel}");
    apply_sandbox_support::id_of(&s[0])
}

#[test]
fn rotation_across_simulated_days_creates_delivers_disables_and_deletes() {
    let w = World::new(ROTATING);
    assert_eq!(w.apply().code, Some(0));
    w.assert_plan_empty("day 0");
    let first = held_id(&w, "out/ci");

    // Day 22: not yet due (rotation at 30d - 7d = day 23).
    w.advance(Duration::days(22));
    w.assert_plan_empty("day 22");

    // Day 24: due. A successor is created and delivered; the predecessor stays valid (grace).
    w.advance(Duration::days(2));
    assert_eq!(w.plan_code().code, Some(2));
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    let second = held_id(&w, "out/ci");
    assert_ne!(first, second);
    let find = |id: &str| w.live().into_iter().find(|t| t.id == id);
    let pred = find(&first).expect("predecessor still exists during grace");
    assert!(pred.enabled, "{pred:?}");
    w.check_invariants("day 24");
    w.assert_plan_empty("day 24, in grace");

    // Past grace: the predecessor is disabled and renamed with the revoking suffix.
    w.advance(Duration::hours(25));
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    let pred = find(&first).expect("a disabled predecessor is kept until delete_after");
    assert!(!pred.enabled, "{pred:?}");
    assert!(pred.name.contains("(revoked)"), "{}", pred.name);
    assert!(find(&second).unwrap().enabled);
    w.check_invariants("past grace");
    w.assert_plan_empty("past grace");

    // Past delete_after: deleted.
    w.advance(Duration::days(2) + Duration::hours(1));
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert!(find(&first).is_none(), "predecessor not deleted");
    assert_eq!(held_id(&w, "out/ci"), second);
    w.check_invariants("past delete_after");
    w.assert_plan_empty("past delete_after");
}

const TENANT: &str = r#"
tenant_token:
  demo:
    rotate_every: 30d
    grace: 0s
    activegates:
      - file: { path: out/ag-a.properties, format: properties, key: tenantToken }
      - file: { path: out/ag-b.properties, format: properties, key: tenantToken }
    oneagents:
      - exec:
          command: [sh, -c, 'test -f ok || exit 1; printf %s "$TT" > out/oneagent']
          secret_env: TT
          read_command: [cat, out/oneagent]
"#;

#[test]
fn tenant_rotation_with_a_failing_oneagent_target_resumes_on_the_next_apply() {
    let w = World::new(TENANT);
    std::fs::write(w.path("ok"), "").unwrap();
    // With `grace: 0s` the rotation finishes in the apply that completes the deliveries
    // (tests/it/tenant_rotation.rs covers the default grace and write-only targets).
    // The OneAgent was installed with the current tenant token; its read command prints it
    // (as `oneagentctl --get-tenant-token` would).
    std::fs::create_dir_all(w.path("out")).unwrap();
    std::fs::write(w.path("out/oneagent"), "tenantoriginal000000").unwrap();
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    let old = w.sandbox.snapshot().environments[ENV_ID].tenant.clone();
    for ag in ["out/ag-a.properties", "out/ag-b.properties"] {
        let text = std::fs::read_to_string(w.path(ag)).unwrap();
        assert!(text.contains(&old.active), "{ag}: {text}");
    }
    w.assert_plan_empty("after the first apply");
    assert_eq!(
        std::fs::read_to_string(w.path("out/oneagent")).unwrap(),
        old.active
    );

    // Rotation due; the OneAgent target fails.
    w.advance(Duration::days(31));
    std::fs::remove_file(w.path("ok")).unwrap();
    let r = w.apply();
    assert_eq!(r.code, Some(1), "{}", r.text);
    let mid = w.sandbox.snapshot().environments[ENV_ID].tenant.clone();
    assert!(mid.rotating(), "rotation should be in progress: {mid:?}");
    assert_ne!(mid.active, old.active);
    for ag in ["out/ag-a.properties", "out/ag-b.properties"] {
        let text = std::fs::read_to_string(w.path(ag)).unwrap();
        assert!(text.contains(&mid.active), "{ag}: {text}");
    }
    assert_eq!(
        std::fs::read_to_string(w.path("out/oneagent")).unwrap(),
        old.active
    );
    assert_eq!(
        w.plan_code().code,
        Some(2),
        "the rotation is left in progress"
    );

    // Fix the target: the next apply resumes and finishes.
    std::fs::write(w.path("ok"), "").unwrap();
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    let done = w.sandbox.snapshot().environments[ENV_ID].tenant.clone();
    assert!(!done.rotating(), "{done:?}\n{}", r.text);
    assert_eq!(done.active, mid.active);
    assert_eq!(
        std::fs::read_to_string(w.path("out/oneagent")).unwrap(),
        done.active
    );
    w.assert_plan_empty("after resume");

    // connectioninfo hands out the new token.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body: serde_json::Value = rt.block_on(async {
        reqwest::Client::new()
            .get(format!(
                "{}/api/v1/deployment/installer/agent/connectioninfo",
                w.base
            ))
            .header("Authorization", format!("Api-Token {}", tok('A')))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(body["tenantToken"], done.active.as_str(), "{body}");
}

const MANY: &str = r#"
defaults:
  expires_in: 10d
  rotate_before: 9d   # clamped by the planner: rotation comes due after 5 days
  grace: 0s
api_tokens:
  a:
    name: a
    environments: [demo]
    scopes: [metrics.ingest]
    deliver:
      - file: { path: out/a1 }
      - file: { path: out/a2.env, format: env, key: T }
  b:
    name: b
    environments: [demo]
    scopes: [logs.ingest]
    revoke: delete
    deliver:
      - file: { path: out/b }
  c:
    name: c
    environments: [demo]
    scopes: [entities.read]
    revoke: { disable: { delete_after: 1d } }
    deliver:
      - file: { path: out/c.json, format: json, key: token }
activegate_tokens:
  g:
    name: g
    environments: [demo]
    type: ENVIRONMENT
    expires_in: 10d
    rotate_before: 9d
    deliver:
      - file: { path: out/g.properties, format: properties, key: authToken }
"#;

/// A world over [`MANY`]; the json target must exist (tokensmith updates one key in it).
fn many() -> World {
    let w = World::new(MANY);
    std::fs::create_dir_all(w.path("out")).unwrap();
    std::fs::write(w.path("out/c.json"), "{\"token\": \"\", \"other\": 1}\n").unwrap();
    w
}

/// Apply until it exits 0 (at most `max` runs); returns how many runs it took.
fn converge(w: &World, max: usize, what: &str) -> usize {
    let mut last = String::new();
    for i in 1..=max {
        let r = w.apply();
        w.check_interrupted(&format!("{what}, run {i}"));
        if r.code == Some(0) {
            return i;
        }
        last = r.text;
    }
    panic!("{what}: no convergence in {max} runs; last output:\n{last}");
}

#[test]
fn fault_storms_converge_without_duplicates_or_orphans() {
    let w = many();
    let storms = [
        (
            "429 with Retry-After",
            Faults {
                seed: 12,
                too_many_requests: Some(TooManyRequests {
                    rate: 0.3,
                    retry_after: Some(1),
                }),
                ..Faults::default()
            },
        ),
        (
            "429 without Retry-After",
            Faults {
                seed: 14,
                too_many_requests: Some(TooManyRequests {
                    rate: 0.3,
                    retry_after: None,
                }),
                ..Faults::default()
            },
        ),
        (
            "5xx",
            Faults {
                seed: 9,
                server_error: Some(ServerError {
                    rate: 0.3,
                    status: 503,
                }),
                ..Faults::default()
            },
        ),
        (
            "drop after commit",
            Faults {
                seed: 10,
                drop_after_commit: Some(Rate { rate: 0.5 }),
                ..Faults::default()
            },
        ),
        (
            // A proxy's 503 after the create was made: not a refusal, so not sent again.
            "503 after commit",
            Faults {
                seed: 13,
                error_after_commit: Some(ServerError {
                    rate: 0.5,
                    status: 503,
                }),
                ..Faults::default()
            },
        ),
        (
            "everything",
            Faults {
                seed: 11,
                too_many_requests: Some(TooManyRequests {
                    rate: 0.1,
                    retry_after: None,
                }),
                server_error: Some(ServerError {
                    rate: 0.1,
                    status: 500,
                }),
                drop_after_commit: Some(Rate { rate: 0.3 }),
                ..Faults::default()
            },
        ),
    ];
    for (i, (what, faults)) in storms.into_iter().enumerate() {
        // Every storm hits creates, deliveries and retirements: all tokens come due each day.
        if i > 0 {
            w.advance(Duration::days(5) + Duration::hours(1));
        }
        w.faults(faults);
        w.sandbox.clear_request_log();
        let runs = converge(&w, 10, what);
        let log = w.sandbox.request_log();
        let hit = log.iter().filter(|e| e.fault.is_some()).count();
        let writes_hit = log
            .iter()
            .filter(|e| e.fault.is_some() && e.method != "GET")
            .count();
        eprintln!(
            "{what}: converged in {runs} run(s); {hit} of {} requests faulted, {writes_hit} writes",
            log.len()
        );
        assert!(writes_hit > 0, "{what}: no write was hit by a fault");
        w.faults(Faults::default());
        w.check_invariants(what);
        w.assert_plan_empty(what);
    }
}

#[test]
fn fifty_sigkilled_applies_recover_with_invariants_1_to_4() {
    let started = Instant::now();
    let w = many();
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    let mut rng = StdRng::seed_from_u64(5);
    let mut killed_mid_way = 0;
    for i in 0..50 {
        // Every iteration all tokens come due: kills hit creates, deliveries and revokes.
        w.advance(Duration::days(5) + Duration::hours(1));
        w.faults(Faults {
            seed: i,
            latency: Some(Latency {
                ms: rng.random_range(20..=50),
                rate: 1.0,
            }),
            ..Faults::default()
        });
        let mut child = w.spawn_apply();
        std::thread::sleep(StdDuration::from_millis(rng.random_range(5..150)));
        if child.try_wait().unwrap().is_none() {
            killed_mid_way += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        apply_sandbox_support::assert_no_secret(
            &std::fs::read_to_string(w.path("killed-run.log")).unwrap(),
        );
        w.faults(Faults::default());
        w.check_interrupted(&format!("iteration {i}, after the kill"));

        // No hand cleanup: the killed run's lock is taken over because its process is gone.
        let r = w.apply();
        assert_eq!(
            r.code,
            Some(0),
            "iteration {i}: recovery apply:\n{}",
            r.text
        );
        w.check_invariants(&format!("iteration {i}, after recovery"));
        w.assert_plan_empty(&format!("iteration {i}, after recovery"));
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("50 iterations in {secs:.1}s, {killed_mid_way} killed mid-way");
    assert!(
        killed_mid_way >= 20,
        "only {killed_mid_way} kills hit a running apply"
    );
}

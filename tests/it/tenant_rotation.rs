//! Tenant token rotation end to end: the real binary against a sandbox on loopback whose clock,
//! faults and version (with or without `tenantTokenRotation/status`) the test controls. The
//! rotation record lives in the environment; the tests check it is there while a rotation is
//! open and gone after, that both tenant tokens work until finish (a consumer presenting the old
//! one through `/__sandbox/use`), that finish waits for every target and the grace, and that a
//! rotation step failing (500, 429, dropped after commit), refused (already in progress, no
//! rotation) or killed is completed by the next apply without hand work.

use crate::support::binary_world::{self, tok, World, ENV_ID};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration as StdDuration, Instant};
use time::Duration;
use tokensmith::sandbox::faults::{FailPath, Latency};
use tokensmith::sandbox::Faults;

/// An ActiveGate file, a write-only OneAgent fleet command (fails while `ok` is missing) and a
/// readable OneAgent. `{GRACE}` is replaced.
const SPEC: &str = r#"
tenant_token:
  demo:
    rotate_every: 30d
    grace: {GRACE}
    activegates:
      - file: { path: out/ag.properties, format: properties, key: tenantToken }
    oneagents:
      - exec:
          command: [sh, -c, 'test -f ok || exit 1; printf %s "$TT" > out/fleet']
          secret_env: TT
      - exec:
          command: [sh, -c, 'printf %s "$TT" > out/oneagent']
          secret_env: TT
          read_command: [cat, out/oneagent]
"#;

fn world(grace: &str, status_endpoint: bool) -> World {
    let w = World::new(&SPEC.replace("{GRACE}", grace));
    w.sandbox
        .update(|s| {
            s.environments.get_mut(ENV_ID).unwrap().no_rotation_status = !status_endpoint;
        })
        .unwrap();
    std::fs::create_dir_all(w.path("out")).unwrap();
    std::fs::write(w.path("ok"), "").unwrap();
    // The OneAgents were installed with the current tenant token.
    for f in ["out/fleet", "out/oneagent"] {
        std::fs::write(w.path(f), "tenantoriginal000000").unwrap();
    }
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    w.assert_plan_empty("after the first apply");
    w
}

fn tenant(w: &World) -> tokensmith::sandbox::state::TenantTokens {
    w.sandbox.snapshot().environments[ENV_ID].tenant.clone()
}

/// The names of the rotation records in the environment (a run killed between creating and
/// disabling one may leave it enabled; its secret was never kept).
fn records(w: &World) -> Vec<String> {
    w.sandbox.snapshot().environments[ENV_ID]
        .api_tokens
        .values()
        .filter(|t| t.name.ends_with("[ts:tokensmith.tenant-rotation#1]"))
        .map(|t| t.name.clone())
        .collect()
}

/// Every rotation record is disabled.
fn assert_records_disabled(w: &World) {
    for t in w.sandbox.snapshot().environments[ENV_ID]
        .api_tokens
        .values()
    {
        if t.name.ends_with("[ts:tokensmith.tenant-rotation#1]") {
            assert!(!t.enabled, "a rotation record is enabled: {}", t.name);
        }
    }
}

fn read(w: &World, rel: &str) -> String {
    std::fs::read_to_string(w.path(rel)).unwrap()
}

/// A OneAgent presents `token` (`/__sandbox/use`): whether the environment lets it in.
fn accepted(w: &World, token: &str) -> bool {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}/__sandbox/use", w.base))
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => true,
            401 => false,
            other => panic!("/__sandbox/use answered {other}"),
        }
    })
}

fn connection_info_token(w: &World) -> String {
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
    assert!(
        body["formattedCommunicationEndpoints"].is_string(),
        "{}",
        body["formattedCommunicationEndpoints"]
    );
    body["tenantToken"].as_str().unwrap().to_owned()
}

/// No rotation open, no record left, every target on the active token, nothing to plan.
fn assert_closed(w: &World, when: &str) {
    let t = tenant(w);
    assert!(!t.rotating(), "{when}: the rotation is still open");
    assert_eq!(records(w), Vec::<String>::new(), "{when}: a record is left");
    for f in ["out/fleet", "out/oneagent"] {
        assert_eq!(read(w, f), t.active, "{when}: {f}");
    }
    assert!(read(w, "out/ag.properties").contains(&t.active), "{when}");
    w.assert_plan_empty(when);
}

#[test]
fn a_failed_oneagent_delivery_then_a_fixed_target_finishes_after_the_grace() {
    for status_endpoint in [true, false] {
        let what = if status_endpoint {
            "with the status endpoint"
        } else {
            "without the status endpoint (older version)"
        };
        let w = world("1d", status_endpoint);
        let old = tenant(&w).active;

        // The rotation is due; the fleet command fails.
        w.advance(Duration::days(31));
        std::fs::remove_file(w.path("ok")).unwrap();
        let r = w.apply();
        assert_eq!(r.code, Some(1), "{what}: {}", r.text);
        let mid = tenant(&w);
        assert!(mid.rotating(), "{what}: {mid:?}");
        assert_ne!(mid.active, old);
        assert!(read(&w, "out/ag.properties").contains(&mid.active));
        assert_eq!(read(&w, "out/fleet"), old, "{what}");
        let names = records(&w);
        assert_eq!(names.len(), 1, "{what}: {names:?}");
        assert!(names[0].starts_with("tenant rotation sent"), "{names:?}");
        assert_records_disabled(&w);

        // The next plan names the open rotation and exits 2; so does drift.
        let p = w.plan_code();
        assert_eq!(p.code, Some(2), "{what}: {}", p.text);
        assert!(
            p.text.contains("open tenant token rotation in demo since"),
            "{}",
            p.text
        );
        assert!(
            p.text.contains("not confirmed yet: exec:sh -c"),
            "{}",
            p.text
        );
        let d = w.run(&["drift"]);
        assert_eq!(d.code, Some(2), "{}", d.text);
        assert!(d.text.contains("rotation is open since"), "{}", d.text);

        // Both tokens work while the rotation is open.
        assert!(accepted(&w, &old) && accepted(&w, &mid.active), "{what}");

        // Fixed: the next apply delivers, but the grace has not passed: still open.
        std::fs::write(w.path("ok"), "").unwrap();
        let r = w.apply();
        assert_eq!(r.code, Some(0), "{what}: {}", r.text);
        assert_eq!(read(&w, "out/fleet"), mid.active, "{what}");
        assert!(tenant(&w).rotating(), "{what}: finished before the grace");
        let names = records(&w);
        assert!(
            names[0].contains(" wo="),
            "write-only targets noted: {names:?}"
        );
        let p = w.plan_code();
        assert_eq!(p.code, Some(2), "{what}: {}", p.text);
        assert!(
            p.text.contains("confirmed the new token: 3 of 3"),
            "{}",
            p.text
        );
        assert!(p.text.contains("finish due:"), "{}", p.text);
        assert!(p.text.contains("unverifiable (write-only"), "{}", p.text);
        assert!(
            accepted(&w, &old),
            "{what}: the old token is refused during the grace"
        );

        // Past the grace: finished, the old token refused, connectioninfo hands out the new one.
        w.advance(Duration::hours(25));
        let r = w.apply();
        assert_eq!(r.code, Some(0), "{what}: {}", r.text);
        assert!(
            !accepted(&w, &old),
            "{what}: the old token works after finish"
        );
        assert!(accepted(&w, &mid.active));
        assert_eq!(connection_info_token(&w), mid.active);
        assert_closed(&w, what);
        let d = w.run(&["drift"]);
        assert_eq!(d.code, Some(0), "{what}: {}", d.text);
    }
}

#[test]
fn a_finish_answering_500_once_is_finished_by_the_next_apply() {
    let w = world("0s", true);
    let old = tenant(&w).active;
    w.advance(Duration::days(31));
    w.faults(Faults {
        fail_path: Some(FailPath {
            path_suffix: "/tenantTokenRotation/finish".into(),
            status: 500,
            times: 1,
            drop_after_commit: false,
        }),
        ..Faults::default()
    });
    let r = w.apply();
    assert_eq!(r.code, Some(1), "{}", r.text);
    assert!(tenant(&w).rotating());
    assert_eq!(records(&w).len(), 1);
    assert!(accepted(&w, &old), "both tokens valid until finish");
    let p = w.plan_code();
    assert_eq!(p.code, Some(2), "{}", p.text);
    assert!(
        p.text.contains("finish tenant token rotation in demo"),
        "{}",
        p.text
    );

    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert!(!accepted(&w, &old));
    assert_closed(&w, "after the second apply");
}

/// Each rotation call failing once in each way, with and without the status endpoint: the
/// next applies complete the rotation, and both tokens stay valid until finish.
#[test]
fn every_rotation_call_failing_once_is_completed_by_the_next_apply() {
    let mut figures = Vec::new();
    for status_endpoint in [true, false] {
        for step in ["start", "finish"] {
            for (how, status, drop) in [
                ("500", 500, false),
                ("429", 429, false),
                ("dropped after commit", 0, true),
            ] {
                let what = format!("{step} {how}, status endpoint {status_endpoint}");
                let w = world("0s", status_endpoint);
                let old = tenant(&w).active;
                w.advance(Duration::days(31));
                w.faults(Faults {
                    fail_path: Some(FailPath {
                        path_suffix: format!("/tenantTokenRotation/{step}"),
                        status: if drop { 500 } else { status },
                        times: 1,
                        drop_after_commit: drop,
                    }),
                    ..Faults::default()
                });
                let mut runs = 0;
                loop {
                    runs += 1;
                    let r = w.apply();
                    let t = tenant(&w);
                    if t.rotating() {
                        assert!(accepted(&w, &old), "{what}: old refused before finish");
                    }
                    // Without the status endpoint, a record whose start failed is taken for an
                    // open rotation, finished ("no ongoing rotation") and removed; the rotation
                    // is then started again by the next run.
                    if r.code == Some(0) && !t.rotating() && t.active != old {
                        break;
                    }
                    assert!(runs < 4, "{what}: no convergence:\n{}", r.text);
                }
                assert_ne!(tenant(&w).active, old, "{what}: not rotated");
                assert_closed(&w, &what);
                figures.push(format!("{what}: {runs} apply run(s)"));
            }
        }
    }
    eprintln!("{}", figures.join("\n"));
}

#[test]
fn a_rotation_started_outside_tokensmith_is_reported_then_adopted_or_cancelled() {
    for (policy, status_endpoint) in [("adopt", true), ("cancel", true), ("adopt", false)] {
        let what = format!("{policy}, status endpoint {status_endpoint}");
        let w = world("1h", status_endpoint);
        let old = tenant(&w).active;
        // Someone starts a rotation by hand.
        let rt = tokio::runtime::Runtime::new().unwrap();
        let status = rt.block_on(async {
            reqwest::Client::new()
                .post(format!("{}/api/v2/tenantTokenRotation/start", w.base))
                .header("Authorization", format!("Api-Token {}", tok('A')))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
        assert_eq!(status, 200);
        let new = tenant(&w).active;
        if status_endpoint {
            // Reported, and nothing is touched until the spec says what to do.
            let p = w.plan_code();
            assert_eq!(p.code, Some(2), "{what}: {}", p.text);
            assert!(p.text.contains("started outside tokensmith"), "{}", p.text);
            assert!(p.text.contains("on_foreign_rotation"), "{}", p.text);
            let r = w.apply();
            assert_eq!(r.code, Some(0), "{what}: {}", r.text);
            assert!(tenant(&w).rotating() && records(&w).is_empty(), "{what}");
        }
        let spec = SPEC.replace("{GRACE}", "1h").replace(
            "    grace: 1h\n",
            &format!("    grace: 1h\n    on_foreign_rotation: {policy}\n"),
        );
        w.write_spec(&spec);
        // An older version cannot tell; the targets holding another token than the active one
        // hint at it, and `adopt` records it (start answers "already in progress").
        let r = w.apply();
        assert_eq!(r.code, Some(0), "{what}: {}", r.text);
        match policy {
            "cancel" => {
                assert!(!tenant(&w).rotating(), "{what}");
                assert_eq!(tenant(&w).active, old);
                assert!(!accepted(&w, &new));
            }
            _ => {
                assert!(tenant(&w).rotating(), "{what}: finished before the grace");
                assert_eq!(records(&w).len(), 1, "{what}: {}", r.text);
                assert_eq!(read(&w, "out/oneagent"), new, "{what}");
                w.advance(Duration::hours(2));
                let r = w.apply();
                assert_eq!(r.code, Some(0), "{what}: {}", r.text);
                assert!(!accepted(&w, &old));
                assert_eq!(tenant(&w).active, new);
            }
        }
        assert_closed(&w, &what);
    }
}

#[test]
fn a_finish_outside_tokensmith_leaves_a_record_the_next_apply_removes() {
    for status_endpoint in [true, false] {
        let what = format!("status endpoint {status_endpoint}");
        let w = world("1d", status_endpoint);
        w.advance(Duration::days(31));
        let r = w.apply();
        assert_eq!(r.code, Some(0), "{what}: {}", r.text);
        assert!(tenant(&w).rotating());
        // Someone finishes it by hand: the record stays behind.
        w.sandbox
            .update(|s| s.environments.get_mut(ENV_ID).unwrap().tenant.pending_old = None)
            .unwrap();
        assert_eq!(records(&w).len(), 1);
        w.advance(Duration::days(2));
        let r = w.apply();
        assert_eq!(r.code, Some(0), "{what}: {}", r.text);
        assert_closed(&w, &what);
    }
}

#[test]
fn fifty_sigkilled_applies_over_tenant_rotations_leave_none_open_after_one_recovery_apply() {
    let started = Instant::now();
    // Grace 0s so one recovery apply can start, deliver and finish a rotation the killed run
    // never started; the grace itself is covered above.
    let w = world("0s", true);
    let mut rng = StdRng::seed_from_u64(15);
    let (mut killed_mid_way, mut left_open, mut records_left) = (0, 0, 0);
    for i in 0..50u64 {
        // Every other iteration plays an older version without the status endpoint.
        w.sandbox
            .update(|s| s.environments.get_mut(ENV_ID).unwrap().no_rotation_status = i % 2 == 1)
            .unwrap();
        w.advance(Duration::days(31));
        w.faults(Faults {
            seed: i,
            latency: Some(Latency {
                ms: rng.random_range(20..=50),
                rate: 1.0,
            }),
            ..Faults::default()
        });
        let mut child = w.spawn_apply();
        std::thread::sleep(StdDuration::from_millis(rng.random_range(5..400)));
        if child.try_wait().unwrap().is_none() {
            killed_mid_way += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        binary_world::assert_no_secret(&read(&w, "killed-run.log"));
        w.faults(Faults::default());
        let t = tenant(&w);
        if t.rotating() {
            left_open += 1;
            // Both tokens valid: whatever a target holds works.
            for f in ["out/fleet", "out/oneagent"] {
                assert!(accepted(&w, &read(&w, f)), "iteration {i}: {f} locked out");
            }
        }
        records_left += records(&w).len();

        let r = w.apply();
        assert_eq!(
            r.code,
            Some(0),
            "iteration {i}: recovery apply:\n{}",
            r.text
        );
        assert_closed(&w, &format!("iteration {i}, after recovery:\n{}\n", r.text));
    }
    eprintln!(
        "50 SIGKILLed applies in {:.1}s: {killed_mid_way} killed mid-way, {left_open} left a rotation open, {records_left} record(s) left; 0 open and 0 records after each single recovery apply, next plan empty",
        started.elapsed().as_secs_f64()
    );
    assert!(
        killed_mid_way >= 20,
        "only {killed_mid_way} kills hit a running apply"
    );
    assert!(
        left_open >= 5,
        "only {left_open} kills left a rotation open"
    );
}

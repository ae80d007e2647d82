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
/// readable OneAgent. `{GRACE}` is replaced. The commands write through a rename, as a real
/// installer does: a SIGKILLed tokensmith orphans a running child, and a shell redirect would
/// leave the file truncated for the moment the test reads it.
const SPEC: &str = r#"
tenant_token:
  demo:
    rotate_every: 30d
    grace: {GRACE}
    activegates:
      - file: { path: out/ag.properties, format: properties, key: tenantToken }
    oneagents:
      - exec:
          command: [sh, -c, 'test -f ok || exit 1; printf %s "$TT" > out/fleet.$$ && mv out/fleet.$$ out/fleet']
          secret_env: TT
      - exec:
          command: [sh, -c, 'printf %s "$TT" > out/oneagent.$$ && mv out/oneagent.$$ out/oneagent']
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
        // Taking the environment's apply lease (create, list, settle, activate, list) comes
        // first, so the window reaches well past it into the rotation.
        std::thread::sleep(StdDuration::from_millis(rng.random_range(5..1600)));
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
        left_open >= 3,
        "only {left_open} kills left a rotation open"
    );
}

// ---- The planner alone: spec + live snapshot + holders + clock, no runtime. ----------------

mod planner {
    use time::Duration;
    use tokensmith::model::{
        DesiredTenantToken, ForeignRotation, Holder, SpecDuration, Target, TokenKind,
    };
    use tokensmith::plan::tenant_record::{note_time, write_only_digest, RecordNotes};
    use tokensmith::plan::testing::*;
    use tokensmith::plan::{Action, Plan, Reason};

    const OLD: &str = "aaaaaaaaaaaa";
    const NEW: &str = "bbbbbbbbbbbb";

    struct Setup {
        ag: Target,
        oa: Target,
    }

    fn setup() -> Setup {
        Setup {
            ag: file("/var/lib/dynatrace/gateway/config/authorization.properties"),
            oa: exec(&["ansible", "oneagents", "-m", "script"]),
        }
    }

    /// A rotation of `prod` Dynatrace reports as `status`, with `record` (its notes, created
    /// two hours before t0) when given; the ActiveGate holds `ag_holds`, the OneAgents are
    /// write-only.
    fn world(
        s: &Setup,
        every: Option<i64>,
        foreign: Option<ForeignRotation>,
        status: Option<bool>,
        record: Option<RecordNotes>,
        ag_holds: &str,
    ) -> World {
        let mut w = World::new()
            .tenant(DesiredTenantToken {
                environment: env("prod"),
                rotate_every: every.map(SpecDuration::from_days),
                grace: SpecDuration::from_days(1),
                on_foreign_rotation: foreign,
                activegates: vec![s.ag.clone()],
                oneagents: vec![s.oa.clone()],
            })
            .tenant_live("prod", NEW)
            .holder(
                &s.ag,
                Holder::TenantToken {
                    fingerprint: ag_holds.into(),
                    since: Some(t0() - Duration::hours(1)),
                },
            )
            .holder(&s.oa, Holder::WriteOnly);
        if let Some(notes) = record {
            w = w.live(
                "prod",
                api("dt0c01.RECORD", &notes.name())
                    .created(t0() - Duration::hours(2))
                    .disabled(),
            );
        }
        w.live
            .environments
            .get_mut(&env("prod"))
            .unwrap()
            .tenant_rotation_active = status;
        w
    }

    fn verbs(plan: &Plan) -> Vec<&'static str> {
        plan.steps.iter().map(|s| s.action.verb()).collect()
    }

    #[test]
    fn an_open_rotation_waits_for_every_target_and_the_grace() {
        let s = setup();
        for status in [Some(true), None] {
            // The write-only OneAgents have not confirmed: delivered; no finish before the grace.
            let w = world(
                &s,
                Some(30),
                None,
                status,
                Some(RecordNotes::default()),
                NEW,
            );
            let plan = w.plan().unwrap();
            assert_eq!(verbs(&plan), ["deliver"], "{status:?}");
            assert!(
                matches!(&plan.steps[0].action, Action::Deliver { address, .. } if address == &s.oa.address())
            );
            let open = &plan.tenant_rotations[0];
            assert!(open.started_by_tokensmith);
            assert_eq!(open.since, Some(t0() - Duration::hours(2)));
            assert_eq!(open.finish_due, Some(t0() + Duration::hours(22)));
            assert_eq!(open.confirmed, vec![s.ag.address()]);
            assert_eq!(open.unconfirmed, vec![s.oa.address()]);
            assert_eq!(open.unverifiable, vec![s.oa.address()]);
            assert_eq!(open.status_endpoint, status.is_some());

            // Their command succeeded in this rotation (the record's note): nothing to do yet,
            // but the rotation is open (plan --detailed-exitcode exits 2 on it).
            let confirmed = RecordNotes {
                sent: true,
                write_only: Some((write_only_digest([&s.oa.address()]), note_time(t0()))),
            };
            let w = world(&s, Some(30), None, status, Some(confirmed.clone()), NEW);
            let plan = w.plan().unwrap();
            assert!(
                !plan.has_changes() && plan.has_open_rotation(),
                "{:?}",
                plan.steps
            );
            assert_eq!(plan.tenant_rotations[0].unconfirmed, vec![]);

            // Past the grace: finish.
            let plan = w.at(t0() + Duration::hours(23)).plan().unwrap();
            assert_eq!(verbs(&plan), ["tenant_finish"]);
            assert_eq!(plan.steps[0].reason, Reason::GraceElapsed);

            // A write-only target added since: the note no longer covers the set.
            let extra = exec(&["ansible", "new-oneagents", "-m", "script"]);
            let mut w = world(&s, Some(30), None, status, Some(confirmed), NEW)
                .holder(&extra, Holder::WriteOnly)
                .at(t0() + Duration::hours(23));
            w.desired.tenant_tokens[0].oneagents.push(extra.clone());
            let plan = w.plan().unwrap();
            assert_eq!(verbs(&plan), ["deliver", "deliver", "tenant_finish"]);
        }
    }

    #[test]
    fn the_activegates_are_delivered_before_any_oneagent_and_finish_after_all() {
        let s = setup();
        let w = world(
            &s,
            Some(30),
            None,
            Some(true),
            Some(RecordNotes::default()),
            OLD,
        )
        .at(t0() + Duration::days(2));
        let plan = w.plan().unwrap();
        assert_eq!(verbs(&plan), ["deliver", "deliver", "tenant_finish"]);
        let ag = &plan.steps[0];
        let oa = &plan.steps[1];
        assert!(
            matches!(&ag.action, Action::Deliver { address, .. } if address == &s.ag.address())
        );
        assert_eq!(oa.depends_on, vec![ag.id.clone()]);
        assert_eq!(plan.steps[2].depends_on, vec![ag.id.clone(), oa.id.clone()]);
    }

    #[test]
    fn a_record_dynatrace_reports_closed_is_deleted() {
        let s = setup();
        let w = world(
            &s,
            Some(30),
            None,
            Some(false),
            Some(RecordNotes::default()),
            NEW,
        );
        let plan = w.plan().unwrap();
        assert_eq!(verbs(&plan), ["delete"]);
        let step = &plan.steps[0];
        assert_eq!(step.kind, TokenKind::ApiToken);
        assert_eq!(step.reason, Reason::TenantRotationClosed);
        assert!(!plan.has_open_rotation());
    }

    #[test]
    fn a_foreign_rotation_is_reported_and_left_alone_unless_the_spec_says() {
        let s = setup();
        let w = world(&s, Some(30), None, Some(true), None, OLD);
        let plan = w.plan().unwrap();
        assert!(plan.steps.is_empty(), "{:?}", plan.steps);
        assert!(plan.has_open_rotation());
        assert!(!plan.tenant_rotations[0].started_by_tokensmith);
        assert!(plan
            .warnings
            .iter()
            .any(|w| w.code == "foreign_tenant_rotation"));
        let drift = tokensmith::plan::drift(&w.desired, &w.live, &w.targets, w.now);
        assert!(drift
            .items
            .iter()
            .any(|i| i.reason == Reason::ForeignTenantRotation && i.target.is_none()));

        let plan = world(
            &s,
            Some(30),
            Some(ForeignRotation::Adopt),
            Some(true),
            None,
            OLD,
        )
        .plan()
        .unwrap();
        assert_eq!(verbs(&plan), ["tenant_start", "deliver", "deliver"]);
        let plan = world(
            &s,
            Some(30),
            Some(ForeignRotation::Cancel),
            Some(true),
            None,
            OLD,
        )
        .plan()
        .unwrap();
        assert_eq!(verbs(&plan), ["tenant_cancel"]);
    }

    #[test]
    fn an_unwanted_rotation_is_cancelled_only_while_nothing_was_delivered() {
        let s = setup();
        // `rotate_every` removed; the ActiveGate still holds the old token, nothing sent.
        let plan = world(
            &s,
            None,
            None,
            Some(true),
            Some(RecordNotes::default()),
            OLD,
        )
        .plan()
        .unwrap();
        assert_eq!(verbs(&plan), ["tenant_cancel"]);
        assert_eq!(plan.steps[0].reason, Reason::TenantRotationUnwanted);
        // A delivery to the write-only OneAgents was attempted: finishing is the only safe way.
        let sent = RecordNotes {
            sent: true,
            write_only: None,
        };
        let plan = world(&s, None, None, Some(true), Some(sent), OLD)
            .plan()
            .unwrap();
        assert_eq!(verbs(&plan), ["deliver", "deliver"]);
        // The ActiveGate holds the new token: no cancel either.
        let plan = world(
            &s,
            None,
            None,
            Some(true),
            Some(RecordNotes::default()),
            NEW,
        )
        .plan()
        .unwrap();
        assert!(!verbs(&plan).contains(&"tenant_cancel"));
    }
}

#[test]
fn bad_rotation_settings_are_refused_naming_the_place() {
    let w = World::new(&SPEC.replace("{GRACE}", "1d"));
    let r = w.run(&["validate"]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    w.write_spec(&SPEC.replace("{GRACE}", "30d"));
    let r = w.run(&["validate"]);
    assert_ne!(r.code, Some(0), "{}", r.text);
    assert!(
        r.text
            .contains("`grace` (30d) must be shorter than `rotate_every` (30d)"),
        "{}",
        r.text
    );
    assert!(r.text.contains("tokensmith.yaml:8:12"), "{}", r.text);
    w.write_spec(&SPEC.replace("{GRACE}", "1d").replace(
        "    grace: 1d\n",
        "    grace: 1d\n    on_foreign_rotation: finish\n",
    ));
    let r = w.run(&["validate"]);
    assert_ne!(r.code, Some(0), "{}", r.text);
    assert!(r.text.contains("on_foreign_rotation"), "{}", r.text);
    assert!(r.text.contains("tokensmith.yaml:9:"), "{}", r.text);
}

/// `POST path` with the management token; the answer's JSON.
fn post(w: &World, path: &str, body: serde_json::Value) -> serde_json::Value {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", w.base))
            .header("Authorization", format!("Api-Token {}", tok('A')))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(serde_json::Value::Null)
    })
}

#[test]
fn a_rotation_the_spec_no_longer_wants_is_cancelled_while_nothing_was_delivered() {
    let w = world("1d", true);
    let old = tenant(&w).active;
    // As a run killed right after `start` leaves it: tokensmith's record, then the rotation.
    let name = tokensmith::plan::tenant_record::RecordNotes::default().name();
    post(
        &w,
        "/api/v2/apiTokens",
        serde_json::json!({"name": name, "scopes": ["geographicRegions.read"]}),
    );
    post(
        &w,
        "/api/v2/tenantTokenRotation/start",
        serde_json::json!({}),
    );
    assert!(tenant(&w).rotating());
    assert_eq!(records(&w).len(), 1);

    // The spec stops rotating the tenant token: the open rotation is cancelled.
    w.write_spec(
        &SPEC
            .replace("{GRACE}", "1d")
            .replace("    rotate_every: 30d\n", ""),
    );
    let p = w.plan_code();
    assert_eq!(p.code, Some(2), "{}", p.text);
    assert!(
        p.text.contains("cancel tenant token rotation in demo"),
        "{}",
        p.text
    );
    assert!(p.text.contains("tenant_rotation_unwanted"), "{}", p.text);
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_eq!(tenant(&w).active, old);
    assert!(accepted(&w, &old));
    assert_closed(&w, "after the cancel");
}

#[test]
fn sigkilled_finishing_applies_after_the_grace_are_completed_by_one_recovery_apply() {
    let w = world("1d", true);
    let mut rng = StdRng::seed_from_u64(24);
    let (mut killed_mid_way, mut left_open) = (0, 0);
    for i in 0..20u64 {
        w.sandbox
            .update(|s| s.environments.get_mut(ENV_ID).unwrap().no_rotation_status = i % 2 == 1)
            .unwrap();
        // Start and deliver; the grace keeps the rotation open.
        w.advance(Duration::days(31));
        let r = w.apply();
        assert_eq!(r.code, Some(0), "iteration {i}: {}", r.text);
        let old = {
            let t = tenant(&w);
            assert!(t.rotating(), "iteration {i}");
            t.pending_old.clone().unwrap()
        };
        // Past the grace the finishing apply is killed somewhere.
        w.advance(Duration::hours(25));
        w.faults(Faults {
            seed: i,
            latency: Some(Latency {
                ms: rng.random_range(10..=40),
                rate: 1.0,
            }),
            ..Faults::default()
        });
        let mut child = w.spawn_apply();
        std::thread::sleep(StdDuration::from_millis(rng.random_range(5..200)));
        if child.try_wait().unwrap().is_none() {
            killed_mid_way += 1;
        }
        child.kill().ok();
        child.wait().unwrap();
        binary_world::assert_no_secret(&read(&w, "killed-run.log"));
        w.faults(Faults::default());
        if tenant(&w).rotating() {
            left_open += 1;
            assert!(
                accepted(&w, &old),
                "iteration {i}: old refused before finish"
            );
        }
        let r = w.apply();
        assert_eq!(
            r.code,
            Some(0),
            "iteration {i}: recovery apply:\n{}",
            r.text
        );
        assert!(
            !accepted(&w, &old),
            "iteration {i}: old still works after finish"
        );
        assert_closed(&w, &format!("iteration {i}, after recovery:\n{}\n", r.text));
    }
    eprintln!(
        "20 SIGKILLed finishing applies: {killed_mid_way} killed mid-way, {left_open} left the rotation open; 0 open after each single recovery apply"
    );
    assert!(
        killed_mid_way >= 5,
        "only {killed_mid_way} kills hit a running apply"
    );
}

//! The applier against an in-memory Dynatrace and real file targets: first apply, re-runs,
//! rotation, faults (failed and ambiguous creates, failed deliveries, 404s), refusals, tenant
//! rotation, stale plans, and the journal. Every scenario checks DESIGN.md invariants 1–3 after
//! each run and convergence (invariant 4) at the end.

use crate::support::apply_harness as apply_support;

use apply_support::{Faults, Harness};
use time::Duration;
use tokensmith::apply::{
    self, check_fresh, CleanupAction, Journal, Outcome, PlainProgress, StaleInput,
};
use tokensmith::model::{DesiredTenantToken, EnvName, Holder, Home, TokenId, TokenKind};
use tokensmith::plan::testing::{file, want_ag, want_api, World};
use tokensmith::plan::{Action, Plan, Step, StepId, TokenSource};

/// Two API tokens with two file targets each, one ActiveGate token with one.
fn three_tokens(dir: &std::path::Path) -> tokensmith::model::Desired {
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    World::new()
        .want(
            want_api("operator", "prod")
                .deliver(file(&p("op-a")))
                .deliver(file(&p("op-b"))),
        )
        .want(
            want_api("ingest", "prod")
                .deliver(file(&p("in-a")))
                .deliver(file(&p("in-b"))),
        )
        .want(want_ag("gateway", "prod").deliver(file(&p("ag"))))
        .desired
}

async fn holder(h: &Harness, name: &str) -> Holder {
    use tokensmith::deliver::Deliver;
    h.deliver.read_holder(&file(&h.path(name))).await
}

async fn held_id(h: &Harness, name: &str) -> TokenId {
    match holder(h, name).await {
        Holder::Token { id, .. } => id,
        other => panic!("{name} holds {other:?}"),
    }
}

#[tokio::test]
async fn first_apply_creates_and_delivers_and_a_rerun_is_a_no_op() {
    let h = Harness::new(three_tokens);
    let plan = h.plan().await;
    assert_eq!(plan.summary.create, 3);
    let mut lines = Vec::new();
    let report = {
        let mut progress = PlainProgress::plain(&mut lines);
        apply::execute(&plan, &h.env(), &Default::default(), &mut progress)
            .await
            .unwrap()
    };
    assert!(!report.has_failures(), "{report:#?}");
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.done().count(), plan.steps.len());
    h.check_invariants().await;
    // Every target holds its token's value and records its id.
    for name in ["op-a", "op-b", "in-a", "in-b", "ag"] {
        let id = held_id(&h, name).await;
        let value = std::fs::read_to_string(h.path(name)).unwrap();
        assert_eq!(Some(value), h.fake.secret_of(&id), "{name}");
    }
    assert_eq!(held_id(&h, "op-a").await, held_id(&h, "op-b").await);
    // One progress line per step, no secret in them.
    let text = String::from_utf8(lines).unwrap();
    assert!(text.lines().count() >= plan.steps.len(), "{text}");
    for s in &h.fake.lock().minted {
        assert!(!text.contains(s.as_str()));
    }

    // The same plan again changes nothing and creates nothing.
    let creates = h.fake.lock().creates;
    let again = h.apply(&plan).await;
    assert!(!again.has_failures(), "{again:#?}");
    assert_eq!(again.done().count(), 0, "{again:#?}");
    assert_eq!(again.already_done().count(), plan.steps.len());
    assert_eq!(h.fake.lock().creates, creates);
    h.check_invariants().await;
    assert!(!h.plan().await.has_changes());
}

#[tokio::test]
async fn rotation_delivers_the_successor_and_revokes_the_predecessor_after_grace() {
    let h = Harness::new(three_tokens);
    assert_eq!(h.converge(1).await, 1);
    let old = held_id(&h, "op-a").await;
    // 30d lifetime, rotated 7d before expiry.
    h.fake.advance(Duration::days(24));
    let p = h.plan().await;
    assert_eq!(p.summary.rotate, 3, "{:#?}", p.steps);
    let report = h.apply(&p).await;
    assert!(!report.has_failures(), "{report:#?}");
    h.check_invariants().await;
    let new = held_id(&h, "op-a").await;
    assert_ne!(new, old);
    assert_eq!(held_id(&h, "op-b").await, new);
    assert!(
        h.fake.lock().tokens[&old].enabled,
        "the predecessor waits for its grace"
    );
    assert!(!h.plan().await.has_changes());
    // After the grace the predecessor is disabled, and deleted after retention.
    h.fake.advance(Duration::days(2));
    h.converge(1).await;
    assert!(!h.fake.lock().tokens[&old].enabled);
    h.fake.advance(Duration::days(8));
    h.converge(1).await;
    assert!(!h.fake.lock().tokens.contains_key(&old));
    h.check_invariants().await;
}

#[tokio::test]
async fn an_apply_whose_leases_run_out_starts_no_step_and_the_next_apply_finishes() {
    let h = Harness::new(three_tokens);
    assert_eq!(h.converge(1).await, 1);
    let old = held_id(&h, "op-a").await;
    h.fake.advance(Duration::days(24));
    let p = h.plan().await;
    assert_eq!(p.summary.rotate, 3, "{:#?}", p.steps);
    let (creates, tokens) = {
        let s = h.fake.lock();
        (s.creates, s.tokens.clone())
    };
    let files: Vec<String> = ["op-a", "op-b", "in-a", "in-b", "ag"]
        .iter()
        .map(|n| std::fs::read_to_string(h.path(n)).unwrap())
        .collect();
    // The bound has passed: the locks this run holds run out before a step could end.
    let opts = apply::ApplyOptions {
        start_steps_until: Some(std::time::Instant::now()),
        ..Default::default()
    };
    let report = apply::execute(&p, &h.env(), &opts, &mut apply::NoProgress)
        .await
        .unwrap();
    assert!(report.has_failures());
    assert_eq!(report.done().count(), 0, "{report:#?}");
    let mut not_started = 0;
    for step in &report.steps {
        match &step.outcome {
            Outcome::Failed { error } => {
                assert!(
                    error.contains("not started") && error.contains("leases run out"),
                    "{error}"
                );
                not_started += 1;
            }
            Outcome::Skipped { .. } => {}
            other => panic!("{}: {other:?}", step.step),
        }
    }
    assert!(not_started > 0);
    // Nothing changed: no token created, renamed, disabled or deleted, no file written.
    {
        let s = h.fake.lock();
        assert_eq!(s.creates, creates);
        assert_eq!(s.tokens, tokens);
    }
    let after: Vec<String> = ["op-a", "op-b", "in-a", "in-b", "ag"]
        .iter()
        .map(|n| std::fs::read_to_string(h.path(n)).unwrap())
        .collect();
    assert_eq!(after, files);
    // The next apply, with time left, does the rotation; the plan after it is empty.
    assert_eq!(h.converge(1).await, 1);
    assert_ne!(held_id(&h, "op-a").await, old);
    h.check_invariants().await;
}

/// Run only the first `k` steps of a plan, as if the process was killed after them.
fn truncated(plan: &Plan, k: usize) -> Plan {
    let mut p = plan.clone();
    p.steps.truncate(k);
    p
}

#[tokio::test]
async fn a_kill_between_any_two_steps_of_a_first_apply_converges() {
    let len = Harness::new(three_tokens).plan().await.steps.len();
    for k in 0..=len {
        let h = Harness::new(three_tokens);
        let plan = h.plan().await;
        let report = h.apply(&truncated(&plan, k)).await;
        assert!(!report.has_failures(), "k={k}: {report:#?}");
        h.check_invariants().await;
        h.converge(3).await;
        h.check_invariants().await;
    }
}

#[tokio::test]
async fn a_kill_between_any_two_steps_of_a_rotation_converges() {
    let setup = || async {
        let h = Harness::new(three_tokens);
        h.converge(1).await;
        h.fake.advance(Duration::days(24));
        h
    };
    let len = setup().await.plan().await.steps.len();
    assert!(len >= 6);
    for k in 0..=len {
        let h = setup().await;
        let plan = h.plan().await;
        h.apply(&truncated(&plan, k)).await;
        h.check_invariants().await;
        h.converge(3).await;
        // Through grace and retention, nothing held is revoked.
        h.fake.advance(Duration::days(2));
        h.converge(3).await;
        h.fake.advance(Duration::days(8));
        h.converge(3).await;
        h.check_invariants().await;
    }
}

#[tokio::test]
async fn a_kill_at_every_step_of_a_zero_grace_rotation_never_revokes_a_held_token() {
    let desired = |dir: &std::path::Path| {
        let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
        World::new()
            .want(
                want_api("operator", "prod")
                    .grace("0s")
                    .deliver(file(&p("op-a")))
                    .deliver(file(&p("op-b"))),
            )
            .desired
    };
    let setup = || async {
        let h = Harness::new(desired);
        h.converge(1).await;
        h.fake.advance(Duration::days(24));
        h
    };
    let plan = setup().await.plan().await;
    assert!(
        plan.steps
            .iter()
            .any(|s| matches!(s.action, Action::Disable { .. })),
        "{:#?}",
        plan.steps
    );
    for k in 0..=plan.steps.len() {
        let h = setup().await;
        let plan = h.plan().await;
        // Deliveries to one target fail as well, in half of the runs.
        if k % 2 == 1 {
            h.deliver.fail(file(&h.path("op-b")).address());
        }
        h.apply(&truncated(&plan, k)).await;
        h.check_invariants().await;
        h.deliver.heal();
        h.converge(3).await;
        h.check_invariants().await;
    }
}

#[tokio::test]
async fn an_ambiguous_create_that_committed_leaves_no_duplicate() {
    let h = Harness::new(three_tokens);
    h.fake.set_faults(Faults {
        ambiguous_commits: 2,
        ..Faults::default()
    });
    let report = h.apply(&h.plan().await).await;
    assert!(!report.has_failures(), "{report:#?}");
    h.check_invariants().await;
    // Two lost tokens were deleted; three remain, each delivered.
    let deleted = h.fake.lock().deleted.len();
    assert_eq!(deleted, 2);
    assert_eq!(h.fake.lock().tokens.len(), 1 + 3);
    let journal = h.journal_text();
    assert!(journal.contains("unknown outcome"), "{journal}");
    assert!(!h.plan().await.has_changes());
}

#[tokio::test]
async fn an_ambiguous_create_that_did_not_commit_is_repeated_once() {
    let h = Harness::new(three_tokens);
    h.fake.set_faults(Faults {
        ambiguous_drops: 1,
        ..Faults::default()
    });
    let report = h.apply(&h.plan().await).await;
    assert!(!report.has_failures(), "{report:#?}");
    assert_eq!(h.fake.lock().creates, 4);
    assert!(h.fake.lock().deleted.is_empty());
    h.check_invariants().await;
}

#[tokio::test]
async fn creates_that_stay_ambiguous_fail_without_duplicates_and_the_next_run_recovers() {
    let h = Harness::new(three_tokens);
    h.fake.set_faults(Faults {
        ambiguous_commits: 20,
        ..Faults::default()
    });
    let report = h.apply(&h.plan().await).await;
    assert!(report.has_failures());
    assert_eq!(report.exit_code(), 1);
    h.check_invariants().await;
    h.fake.set_faults(Faults::default());
    h.converge(3).await;
    h.check_invariants().await;
}

#[tokio::test]
async fn a_failed_create_fails_its_deliveries_and_independent_tokens_go_on() {
    let h = Harness::new(three_tokens);
    h.fake.set_faults(Faults {
        fail_creates: 1,
        ..Faults::default()
    });
    let plan = h.plan().await;
    let report = h.apply(&plan).await;
    assert_eq!(report.failed().count(), 1, "{report:#?}");
    let failed = report.failed().next().unwrap().step.clone();
    let skipped: Vec<_> = report.skipped().collect();
    assert!(!skipped.is_empty());
    for s in &skipped {
        assert_eq!(
            s.outcome,
            Outcome::Skipped {
                because: failed.clone()
            }
        );
    }
    assert_eq!(report.done().count(), plan.steps.len() - 1 - skipped.len());
    let mut summary = Vec::new();
    report.write_summary(&mut summary).unwrap();
    let summary = String::from_utf8(summary).unwrap();
    assert!(summary.contains("Internal error"), "{summary}");
    h.check_invariants().await;
    h.converge(2).await;
}

#[tokio::test]
async fn a_delivery_failure_with_no_holder_deletes_the_new_token_and_keeps_the_old() {
    let h = Harness::new(three_tokens);
    h.converge(1).await;
    let old = held_id(&h, "op-a").await;
    h.fake.advance(Duration::days(24));
    h.deliver.fail(file(&h.path("op-a")).address());
    h.deliver.fail(file(&h.path("op-b")).address());
    let report = h.apply(&h.plan().await).await;
    assert_eq!(report.exit_code(), 1);
    let rolled: Vec<_> = report
        .cleanups
        .iter()
        .filter(|c| c.action == CleanupAction::RolledBack)
        .collect();
    assert_eq!(rolled.len(), 1, "{report:#?}");
    let new = rolled[0].token.clone().unwrap();
    assert!(
        !h.fake.lock().tokens.contains_key(&new),
        "the undelivered token is deleted"
    );
    assert!(
        h.fake.lock().tokens[&old].enabled,
        "the old token is untouched"
    );
    assert_eq!(held_id(&h, "op-a").await, old);
    h.check_invariants().await;
    h.deliver.heal();
    h.converge(2).await;
    assert_ne!(held_id(&h, "op-a").await, old);
}

#[tokio::test]
async fn a_partial_delivery_keeps_the_new_token_and_the_next_plan_copies_it() {
    let h = Harness::new(three_tokens);
    h.converge(1).await;
    h.fake.advance(Duration::days(24));
    h.deliver.fail(file(&h.path("op-b")).address());
    let report = h.apply(&h.plan().await).await;
    assert_eq!(report.exit_code(), 1);
    let kept: Vec<_> = report
        .cleanups
        .iter()
        .filter(|c| c.action == CleanupAction::Kept)
        .collect();
    assert_eq!(kept.len(), 1, "{report:#?}");
    let new = kept[0].token.clone().unwrap();
    assert_eq!(held_id(&h, "op-a").await, new);
    h.check_invariants().await;
    h.deliver.heal();
    let p = h.plan().await;
    let copy = p
        .steps
        .iter()
        .find(|s| matches!(&s.action, Action::Deliver { token: TokenSource::Existing { id, .. }, .. } if id == &new));
    assert!(copy.is_some(), "{:#?}", p.steps);
    let report = h.apply(&p).await;
    assert!(!report.has_failures(), "{report:#?}");
    assert_eq!(held_id(&h, "op-b").await, new);
    assert_eq!(
        std::fs::read_to_string(h.path("op-b")).unwrap(),
        h.fake.secret_of(&new).unwrap()
    );
    h.converge(1).await;
}

#[tokio::test]
async fn revoking_is_refused_while_a_target_holds_the_token() {
    let h = Harness::new(three_tokens);
    h.converge(1).await;
    let old = held_id(&h, "op-a").await;
    h.fake.advance(Duration::days(24));
    h.converge(1).await;
    h.fake.advance(Duration::days(2));
    let p = h.plan().await;
    let disable = p
        .steps
        .iter()
        .find(|s| matches!(&s.action, Action::Disable { token, .. } if token == &old))
        .expect("the predecessor is revoked after grace")
        .id
        .clone();
    // A consumer was rolled back to the old value after the plan was made.
    std::fs::write(h.path("op-a"), h.fake.secret_of(&old).unwrap()).unwrap();
    let report = h.apply(&p).await;
    let failed = report.steps.iter().find(|s| s.step == disable).unwrap();
    assert!(
        matches!(&failed.outcome, Outcome::Failed { error } if error.contains("still holds")),
        "{failed:#?}"
    );
    assert!(h.fake.lock().tokens[&old].enabled);
    h.check_invariants().await;
}

#[tokio::test]
async fn the_management_token_is_never_touched_and_404_counts_as_done() {
    let h = Harness::new(three_tokens);
    h.converge(1).await;
    let caller = h.fake.lock().caller.clone();
    let gone = TokenId::new("dt0c01.GONE00000000000000000000");
    let mk = |id: &str, action: Action| Step {
        id: StepId(id.into()),
        depends_on: Vec::new(),
        home: Home::Environment(EnvName::new("prod")),
        kind: TokenKind::ApiToken,
        key: None,
        reason: tokensmith::plan::Reason::PruneUnused,
        action,
        note: None,
    };
    let mut p = h.plan().await;
    p.steps = vec![
        mk(
            "delete-caller",
            Action::Delete {
                token: caller.clone(),
                name: "m".into(),
            },
        ),
        mk(
            "disable-caller",
            Action::Disable {
                token: caller.clone(),
                name: "m".into(),
                rename: None,
            },
        ),
        mk(
            "delete-gone",
            Action::Delete {
                token: gone.clone(),
                name: "g".into(),
            },
        ),
        mk(
            "disable-gone",
            Action::Disable {
                token: gone,
                name: "g".into(),
                rename: Some("g (revoked)".into()),
            },
        ),
    ];
    let report = h.apply(&p).await;
    assert_eq!(report.failed().count(), 2, "{report:#?}");
    for s in report.failed() {
        assert!(
            matches!(&s.outcome, Outcome::Failed { error } if error.contains("management token"))
        );
    }
    assert_eq!(report.already_done().count(), 2);
    assert!(h.fake.lock().tokens[&caller].enabled);
}

#[tokio::test]
async fn a_blocked_plan_is_refused_and_a_stale_plan_is_detected() {
    let h = Harness::new(three_tokens);
    let mut p = h.plan().await;
    let (live, targets) = h.snapshots().await;
    assert_eq!(check_fresh(&p, "spec", &live, &targets), Ok(()));
    let err = check_fresh(&p, "other", &live, &targets).unwrap_err();
    assert_eq!(err.changed, vec![StaleInput::Spec]);
    h.converge(1).await;
    let (live, targets) = h.snapshots().await;
    let err = check_fresh(&p, "spec", &live, &targets).unwrap_err();
    assert_eq!(err.changed, vec![StaleInput::Live, StaleInput::Targets]);
    assert!(err.to_string().contains("tokensmith plan"), "{err}");

    p.checks.push(tokensmith::plan::Check {
        code: tokensmith::plan::Reason::PlatformTokenLimit,
        blocking: true,
        home: Home::Account("acc".into()),
        key: None,
        message: "limit".into(),
    });
    let creates = h.fake.lock().creates;
    let err = apply::execute(&p, &h.env(), &Default::default(), &mut apply::NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("blocked"));
    assert_eq!(h.fake.lock().creates, creates);
}

#[tokio::test]
async fn the_journal_records_intent_and_outcome_with_ids_and_no_secret() {
    let h = Harness::new(three_tokens);
    h.converge(1).await;
    h.fake.advance(Duration::days(24));
    h.deliver.fail(file(&h.path("ag")).address());
    let report = h.apply(&h.plan().await).await;
    assert!(report.has_failures());
    h.check_invariants().await;
    let entries = Journal::parse(&h.journal_text()).unwrap();
    let run = &report.run_id;
    let mine: Vec<_> = entries.iter().filter(|e| &e.run == run).collect();
    assert_eq!(mine.first().unwrap().event, "run_started");
    assert_eq!(mine.last().unwrap().event, "run_finished");
    for s in &report.steps {
        let of_step: Vec<&str> = mine
            .iter()
            .filter(|e| e.step.as_ref() == Some(&s.step))
            .map(|e| e.event.as_str())
            .collect();
        if matches!(s.outcome, Outcome::Skipped { .. }) {
            assert_eq!(of_step, vec!["skipped"]);
        } else {
            assert_eq!(of_step.first(), Some(&"intent"), "{of_step:?}");
            assert!(of_step.contains(&s.outcome.label()), "{of_step:?}");
        }
    }
    assert!(mine
        .iter()
        .any(|e| e.event == "rolled_back" && e.token.is_some()));
    assert!(mine.iter().any(|e| e.event == "done"
        && e.token
            .as_ref()
            .is_some_and(|t| t.as_str().starts_with("dt0c01."))));
}

fn tenant_world(dir: &std::path::Path) -> tokensmith::model::Desired {
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    World::new()
        .tenant(DesiredTenantToken {
            environment: EnvName::new("prod"),
            rotate_every: Some("30d".parse().unwrap()),
            grace: tokensmith::model::SpecDuration::ZERO,
            on_foreign_rotation: None,
            activegates: vec![file(&p("ag-tenant"))],
            oneagents: vec![file(&p("oa-1")), file(&p("oa-2"))],
        })
        .desired
}

async fn tenant_fp(h: &Harness, name: &str) -> String {
    match holder(h, name).await {
        Holder::TenantToken { fingerprint, .. } => fingerprint,
        other => panic!("{name} holds {other:?}"),
    }
}

#[tokio::test]
async fn tenant_rotation_delivers_in_order_then_finishes_and_resumes_after_a_failure() {
    let h = Harness::new(tenant_world);
    h.converge(1).await;
    let first = tenant_fp(&h, "oa-1").await;
    h.fake.advance(Duration::days(31));
    let p = h.plan().await;
    assert!(
        p.steps
            .iter()
            .any(|s| matches!(s.action, Action::TenantStart)),
        "{:#?}",
        p.steps
    );
    // One OneAgent target fails: the ActiveGate and the other OneAgent got the new token, so the
    // rotation stays in progress and the old token stays valid.
    h.deliver.fail(file(&h.path("oa-2")).address());
    let report = h.apply(&p).await;
    assert_eq!(report.exit_code(), 1);
    assert!(
        report
            .cleanups
            .iter()
            .any(|c| c.action == CleanupAction::TenantLeftInProgress),
        "{report:#?}"
    );
    assert!(h.fake.lock().rotating);
    let second = tenant_fp(&h, "ag-tenant").await;
    assert_ne!(second, first);
    assert_eq!(tenant_fp(&h, "oa-2").await, first);
    h.deliver.heal();
    h.converge(2).await;
    assert!(!h.fake.lock().rotating);
    assert_eq!(tenant_fp(&h, "oa-2").await, second);
    h.check_invariants().await;
}

#[tokio::test]
async fn tenant_rotation_that_reached_no_target_is_cancelled() {
    let h = Harness::new(tenant_world);
    h.converge(1).await;
    let first = tenant_fp(&h, "ag-tenant").await;
    h.fake.advance(Duration::days(31));
    h.deliver.fail(file(&h.path("ag-tenant")).address());
    let report = h.apply(&h.plan().await).await;
    assert!(
        report
            .cleanups
            .iter()
            .any(|c| c.action == CleanupAction::TenantCancelled),
        "{report:#?}"
    );
    assert!(!h.fake.lock().rotating);
    assert_eq!(tenant_fp(&h, "ag-tenant").await, first);
    let fp = tokensmith::model::target::tenant_fingerprint(&h.fake.lock().tenant_active);
    assert_eq!(fp, first);
    h.check_invariants().await;
}

#[tokio::test]
async fn a_tenant_start_that_is_already_in_progress_continues() {
    let h = Harness::new(tenant_world);
    h.converge(1).await;
    h.fake.advance(Duration::days(31));
    let p = h.plan().await;
    // Someone (an earlier, killed run) started the rotation after the plan was made.
    {
        use tokensmith::live::EnvironmentWrite;
        h.fake.start_tenant_rotation().await.unwrap();
    }
    let report = h.apply(&p).await;
    assert!(!report.has_failures(), "{report:#?}");
    let start = report
        .steps
        .iter()
        .find(|s| s.verb == "tenant_start")
        .unwrap();
    assert!(matches!(start.outcome, Outcome::AlreadyDone { .. }));
    assert!(!h.fake.lock().rotating);
    let active = tokensmith::model::target::tenant_fingerprint(&h.fake.lock().tenant_active);
    for name in ["ag-tenant", "oa-1", "oa-2"] {
        assert_eq!(tenant_fp(&h, name).await, active);
    }
    // The same plan again does not rotate twice; finishing answers "no ongoing rotation",
    // which is done.
    let again = h.apply(&p).await;
    assert!(!again.has_failures(), "{again:#?}");
    assert_eq!(again.done().count(), 0, "{again:#?}");
    let finish = again
        .steps
        .iter()
        .find(|s| s.verb == "tenant_finish")
        .unwrap();
    assert!(
        matches!(finish.outcome, Outcome::AlreadyDone { .. }),
        "{again:#?}"
    );
    assert_eq!(
        tokensmith::model::target::tenant_fingerprint(&h.fake.lock().tenant_active),
        active
    );
    assert!(!h.fake.lock().rotating);
    h.check_invariants().await;
}

#[tokio::test]
async fn expiration_is_computed_from_the_server_clock() {
    let h = Harness::new(three_tokens);
    h.fake.advance(Duration::days(400));
    let now = h.fake.now();
    h.converge(1).await;
    let tokens = h.fake.lock().tokens.clone();
    let created: Vec<_> = tokens
        .values()
        .filter(|t| t.name.contains("[ts:"))
        .collect();
    assert_eq!(created.len(), 3);
    for t in created {
        assert_eq!(t.expires, Some(now + Duration::days(30)), "{}", t.name);
    }
}

#[tokio::test]
async fn a_write_only_target_is_delivered_once_and_a_rerun_is_a_no_op() {
    let desired = |dir: &std::path::Path| {
        let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
        let script = format!("printf %s \"$TOKEN\" > '{}'", p("agent.conf"));
        World::new()
            .want(
                want_api("agent", "prod")
                    .deliver(file(&p("agent-file")))
                    .deliver(tokensmith::plan::testing::exec(&["sh", "-c", &script])),
            )
            .desired
    };
    let h = Harness::new(desired);
    let plan = h.plan().await;
    let report = h.apply(&plan).await;
    assert!(!report.has_failures(), "{report:#?}");
    let id = held_id(&h, "agent-file").await;
    assert_eq!(
        std::fs::read_to_string(h.path("agent.conf")).ok(),
        h.fake.secret_of(&id),
        "the command received the value"
    );
    h.check_invariants().await;
    let again = h.apply(&plan).await;
    assert!(!again.has_failures(), "{again:#?}");
    assert_eq!(again.done().count(), 0, "{again:#?}");
    assert_eq!(h.converge(1).await, 0);
}

#[tokio::test]
async fn platform_tokens_are_created_rotated_and_revoked_through_the_account() {
    let desired = |dir: &std::path::Path| {
        let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
        World::new()
            .account("acc")
            .want(
                tokensmith::plan::testing::want_platform("grail", "acc")
                    .deliver(file(&p("grail-a")))
                    .deliver(file(&p("grail-b"))),
            )
            .desired
    };
    let h = Harness::new(desired);
    h.account.lock().ambiguous_commits = 1;
    assert_eq!(h.converge(1).await, 1);
    assert_eq!(
        h.account.lock().deleted.len(),
        1,
        "the lost token was deleted"
    );
    assert_eq!(h.account.lock().tokens.len(), 1);
    let first = held_id(&h, "grail-a").await;
    assert!(first.as_str().starts_with("dt0s16."));
    h.fake.advance(Duration::days(24));
    h.converge(1).await;
    assert_ne!(held_id(&h, "grail-b").await, first);
    h.fake.advance(Duration::days(2));
    h.converge(1).await;
    assert!(
        !h.account.lock().tokens[&first].enabled,
        "the predecessor is deactivated"
    );
    h.check_invariants().await;
}

/// Every step kind names a home it has no client for the same way (one resolver of "which API
/// for this home and kind"), and nothing is changed.
#[tokio::test]
async fn a_home_without_a_client_fails_every_step_kind_with_the_same_subject() {
    let desired = |dir: &std::path::Path| {
        let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
        World::new()
            .account("acc")
            .want(tokensmith::plan::testing::want_platform("grail", "acc").deliver(file(&p("g"))))
            .desired
    };
    let h = Harness::new(desired);
    let mut p = h.plan().await;
    let old = TokenId::new("dt0s16.OLDTOKEN");
    for (id, action) in [
        (
            "delete",
            Action::Delete {
                token: old.clone(),
                name: "o".into(),
            },
        ),
        (
            "disable",
            Action::Disable {
                token: old.clone(),
                name: "o".into(),
                rename: None,
            },
        ),
    ] {
        p.steps.push(Step {
            id: StepId(id.into()),
            depends_on: Vec::new(),
            home: Home::Account("acc".into()),
            kind: TokenKind::PlatformToken,
            key: None,
            reason: tokensmith::plan::Reason::PruneUnused,
            action,
            note: None,
        });
    }
    // The environment's client only: no client for the account.
    let env = apply::ApplyEnv::new(
        h.deliver.clone(),
        apply::TargetIndex::from_desired(&h.desired),
    )
    .with_environment(EnvName::new("prod"), h.fake.clone());
    let report = apply::execute(
        &p,
        &env,
        &apply::ApplyOptions::default(),
        &mut apply::NoProgress,
    )
    .await
    .unwrap();
    let errors: Vec<&str> = report
        .failed()
        .filter_map(|s| match &s.outcome {
            Outcome::Failed { error } => Some(error.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 3, "create, delete, disable: {report:#?}");
    for error in errors {
        assert!(
            error.ends_with("account `acc`: no client for it in this run"),
            "{error}"
        );
    }
    assert_eq!(
        report.skipped().count(),
        1,
        "the delivery waits for its create"
    );
    assert!(h.account.lock().tokens.is_empty());
}

#[tokio::test]
async fn updates_and_adoptions_compare_live_fields_first() {
    let h = Harness::new(three_tokens);
    h.converge(1).await;
    let id = held_id(&h, "op-a").await;
    // Wider scopes in the spec: an update in place.
    let mut h = h;
    for t in &mut h.desired.tokens {
        if t.key.as_str() == "operator" {
            t.scopes = t
                .scopes
                .iter()
                .cloned()
                .chain([tokensmith::model::Scope::new("logs.ingest")])
                .collect();
        }
    }
    let p = h.plan().await;
    assert_eq!(p.summary.update, 1, "{:#?}", p.steps);
    let report = h.apply(&p).await;
    assert_eq!(report.done().count(), 1, "{report:#?}");
    assert!(h.fake.lock().tokens[&id]
        .scopes
        .contains(&tokensmith::model::Scope::new("logs.ingest")));
    let again = h.apply(&p).await;
    assert_eq!(again.already_done().count(), 1, "{again:#?}");
    assert_eq!(h.converge(1).await, 0);

    // An unmanaged token named by `adopt` is renamed to carry the marker.
    let unmanaged = TokenId::new("dt0c01.LEGACY000000000000000000");
    {
        let mut s = h.fake.lock();
        let mut t = s.tokens[&id].clone();
        t.id = unmanaged.clone();
        t.name = "legacy".into();
        t.scopes = [tokensmith::model::Scope::new("metrics.ingest")].into();
        s.tokens.insert(unmanaged.clone(), t);
    }
    h.desired
        .tokens
        .push(want_api("legacy", "prod").adopt(unmanaged.as_str()).build());
    let p = h.plan().await;
    assert!(
        p.steps
            .iter()
            .any(|s| matches!(s.action, Action::Adopt { .. })),
        "{:#?}",
        p.steps
    );
    let report = h.apply(&p).await;
    assert!(!report.has_failures(), "{report:#?}");
    assert!(h.fake.lock().tokens[&unmanaged]
        .name
        .ends_with("[ts:legacy#1]"));
    let again = h.apply(&p).await;
    assert_eq!(again.done().count(), 0, "{again:#?}");
    assert_eq!(h.converge(1).await, 0);
    h.check_invariants().await;
}

#[tokio::test]
async fn counted_progress_prints_one_numbered_line_per_step_and_a_summary() {
    let h = Harness::new(three_tokens);
    let plan = h.plan().await;
    let mut progress = PlainProgress::counted(Vec::new());
    let report = apply::execute(&plan, &h.env(), &Default::default(), &mut progress)
        .await
        .unwrap();
    let text = String::from_utf8(progress.into_inner()).unwrap();
    let n = plan.steps.len();
    let numbered: Vec<&str> = text.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(numbered.len(), n, "{text}");
    assert!(numbered[0].starts_with(&format!("[1/{n}] done")), "{text}");
    assert!(
        numbered[n - 1].starts_with(&format!("[{n}/{n}] ")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Apply complete: {n} done, 0 already done, 0 failed, 0 skipped."
        )),
        "{text}"
    );
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test]
async fn a_kill_at_every_step_of_a_tenant_rotation_converges_on_the_active_token() {
    let setup = || async {
        let h = Harness::new(tenant_world);
        h.converge(1).await;
        h.fake.advance(Duration::days(31));
        h
    };
    let len = setup().await.plan().await.steps.len();
    assert_eq!(len, 5, "start, 3 deliveries, finish");
    for k in 0..=len {
        let h = setup().await;
        let plan = h.plan().await;
        h.apply(&truncated(&plan, k)).await;
        // While a rotation runs, both tenant tokens work: every target holds a valid one.
        {
            let valid: Vec<String> = {
                let s = h.fake.lock();
                std::iter::once(&s.tenant_active)
                    .chain(s.tenant_old.as_ref().filter(|_| s.rotating))
                    .map(|t| tokensmith::model::target::tenant_fingerprint(t))
                    .collect()
            };
            for name in ["ag-tenant", "oa-1", "oa-2"] {
                let fp = tenant_fp(&h, name).await;
                assert!(
                    valid.contains(&fp),
                    "k={k}: {name} holds a revoked tenant token"
                );
            }
        }
        h.check_invariants().await;
        h.converge(3).await;
        let active = tokensmith::model::target::tenant_fingerprint(&h.fake.lock().tenant_active);
        for name in ["ag-tenant", "oa-1", "oa-2"] {
            assert_eq!(tenant_fp(&h, name).await, active, "k={k}");
        }
        // Killed anywhere, also after the last delivery and before finish, the rotation is
        // finished: the record created before `start` keeps it visible (the fake has no status
        // endpoint, like an older Dynatrace), and no record is left behind.
        assert!(!h.fake.lock().rotating, "k={k}: the rotation was left open");
        let records = h
            .fake
            .lock()
            .tokens
            .values()
            .filter(|t| t.name.contains("[ts:tokensmith.tenant-rotation#"))
            .count();
        assert_eq!(records, 0, "k={k}: a rotation record was left behind");
    }
}

/// The command may spawn the run on a multi-threaded runtime.
#[test]
fn the_run_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let h = Harness::new(three_tokens);
    let plan = tokensmith::plan::testing::World::new().plan().unwrap();
    let env = h.env();
    let opts = Default::default();
    let mut progress = apply::NoProgress;
    let fut = apply::execute(&plan, &env, &opts, &mut progress);
    assert_send(&fut);
}

#[tokio::test]
async fn plan_homes_name_every_environment_the_plan_touches() {
    let h = Harness::new(three_tokens);
    let homes = apply::plan_homes(&h.plan().await);
    assert_eq!(
        homes.into_iter().collect::<Vec<_>>(),
        vec![Home::Environment(EnvName::new("prod"))]
    );
    assert_eq!(apply::DEFAULT_JOURNAL, ".tokensmith/journal.jsonl");
}

/// Apply `plan` with the snapshot it was planned from, as `tokensmith apply` does.
async fn apply_with_snapshot(h: &Harness, plan: &Plan) -> apply::ApplyReport {
    let (live, _) = h.snapshots().await;
    apply::execute(
        plan,
        &h.env().with_snapshot(live),
        &Default::default(),
        &mut apply::NoProgress,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn creates_look_for_their_marker_in_the_runs_snapshot_not_with_a_list_each() {
    let h = Harness::new(three_tokens);
    let plan = h.plan().await;
    assert_eq!(plan.summary.create, 3);
    let before = h.fake.lock().lists;
    let report = apply_with_snapshot(&h, &plan).await;
    assert!(!report.has_failures(), "{report:#?}");
    h.check_invariants().await;
    assert_eq!(h.fake.lock().lists, before, "no list call per create");
    assert!(!h.plan().await.has_changes());

    // Without a snapshot (a library caller), each create lists first, as before.
    let h = Harness::new(three_tokens);
    let plan = h.plan().await;
    let before = h.fake.lock().lists;
    let report = h.apply(&plan).await;
    assert!(!report.has_failures(), "{report:#?}");
    assert_eq!(h.fake.lock().lists, before + 3);
}

#[tokio::test]
async fn with_a_snapshot_an_ambiguous_create_still_looks_again_and_leaves_no_duplicate() {
    let h = Harness::new(three_tokens);
    h.fake.set_faults(Faults {
        ambiguous_commits: 2,
        ..Faults::default()
    });
    let plan = h.plan().await;
    let before = h.fake.lock().lists;
    let report = apply_with_snapshot(&h, &plan).await;
    assert!(!report.has_failures(), "{report:#?}");
    h.check_invariants().await;
    // One list after each ambiguous create, none otherwise.
    assert_eq!(h.fake.lock().lists, before + 2);
    assert_eq!(h.fake.lock().deleted.len(), 2);
    assert_eq!(h.fake.lock().tokens.len(), 1 + 3);
}

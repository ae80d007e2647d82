//! Golden planner scenarios: desired + live + targets built in a few lines, the rendered human
//! plan snapshotted with insta. No server, no I/O.

use time::Duration;
use tokensmith::model::{DesiredTenantToken, Holder, Preset, Revoke, Rotation, SpecDuration};
use tokensmith::plan::testing::*;
use tokensmith::plan::{Action, Plan, PlanError, Reason};
use tokensmith::render::{plan_human, plan_json, plan_markdown};

fn human(plan: &Plan) -> String {
    let mut out = Vec::new();
    plan_human(plan, false, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn snap(w: &World) -> (Plan, String) {
    let plan = w.plan().expect("plans");
    let text = human(&plan);
    (plan, text)
}

fn k8s() -> tokensmith::model::Target {
    file("/etc/dynatrace/api-token")
}

/// A desired API token delivered to one file, and its generation `gen` live and held.
fn steady(gen: u32, id: &str) -> World {
    World::new()
        .want(want_api("k8s-operator", "prod").deliver(k8s()))
        .live(
            "prod",
            api(id, &format!("k8s operator [ts:k8s-operator#{gen}]"))
                .lifetime(t0() - days(5), 30)
                .scopes(&["metrics.ingest"]),
        )
        .holder(&k8s(), holds(id))
}

#[test]
fn first_run_creates() {
    let w = World::new()
        .want(
            want_api("k8s-operator", "prod")
                .preset(Preset::DynatraceOperator)
                .scopes(&[
                    "DataExport",
                    "InstallerDownload",
                    "activeGateTokenManagement.create",
                ])
                .deliver(k8s()),
        )
        .want(
            want_ag("ag-frankfurt", "prod")
                .expires_in(Some("365d"))
                .deliver(file(
                    "/var/lib/dynatrace/gateway/config/authorization.properties",
                )),
        )
        .holder(&k8s(), Holder::Absent);
    let (plan, text) = snap(&w);
    assert_eq!(plan.summary.create, 2);
    insta::assert_snapshot!(text);
    insta::assert_json_snapshot!("first_run_creates_json", plan);
}

#[test]
fn nothing_to_do() {
    let (plan, text) = snap(&steady(1, "dt0c01.AAA"));
    assert!(!plan.has_changes());
    insta::assert_snapshot!(text);
}

#[test]
fn scope_change_updates_in_place() {
    let w = World::new()
        .want(
            want_api("k8s-operator", "prod")
                .scopes(&["metrics.ingest", "logs.ingest"])
                .deliver(k8s()),
        )
        .live(
            "prod",
            api("dt0c01.AAA", "k8s operator [ts:k8s-operator#1]")
                .lifetime(t0() - days(5), 30)
                .scopes(&["metrics.ingest", "DataExport"]),
        )
        .holder(&k8s(), holds("dt0c01.AAA"));
    let (plan, text) = snap(&w);
    assert_eq!(plan.steps.len(), 1);
    assert_eq!(plan.steps[0].reason, Reason::ScopesChanged);
    insta::assert_snapshot!(text);
}

#[test]
fn name_change_renames_keeping_the_marker() {
    let w = steady(3, "dt0c01.AAA");
    let mut w = w;
    w.desired.tokens[0].display_name = "Dynatrace Operator (prod)".into();
    let (plan, text) = snap(&w);
    assert_eq!(plan.steps[0].reason, Reason::NameChanged);
    insta::assert_snapshot!(text);
}

#[test]
fn expiry_change_replaces_with_a_new_generation() {
    let mut w = steady(1, "dt0c01.AAA");
    w.desired.tokens[0].policy.expires_in = Some(SpecDuration::from_days(90));
    let (plan, text) = snap(&w);
    assert_eq!(plan.summary.rotate, 1);
    assert_eq!(plan.steps[0].reason, Reason::ExpiryChanged);
    insta::assert_snapshot!(text);
}

#[test]
fn rotation_due_before_expiry() {
    let w = World::new()
        .want(
            want_api("k8s-operator", "prod")
                .deliver(k8s())
                .deliver(exec(&["ansible", "hosts", "-m", "copy"])),
        )
        .live(
            "prod",
            api("dt0c01.AAA", "k8s operator [ts:k8s-operator#1]")
                .lifetime(t0() - days(24) + Duration::hours(1), 30)
                .scopes(&["metrics.ingest"]),
        )
        .holder(&k8s(), holds("dt0c01.AAA"));
    let (plan, text) = snap(&w);
    assert_eq!(plan.steps[0].reason, Reason::ExpiringIn { days: 7 });
    assert_eq!(plan.pending.len(), 1);
    insta::assert_snapshot!(text);
}

#[test]
fn rotation_every_is_due_after_its_period() {
    let mut w = steady(2, "dt0c01.BBB");
    w.desired.tokens[0].policy.rotation = Rotation::Every(SpecDuration::from_days(4));
    let (plan, text) = snap(&w);
    assert_eq!(plan.steps[0].reason, Reason::RotationDue);
    insta::assert_snapshot!(text);
}

fn rotated(successor_age: Duration) -> World {
    World::new()
        .want(want_api("k8s-operator", "prod").deliver(k8s()))
        .live(
            "prod",
            api("dt0c01.OLD", "k8s operator [ts:k8s-operator#1]")
                .lifetime(t0() - days(27), 30)
                .scopes(&["metrics.ingest"]),
        )
        .live(
            "prod",
            api("dt0c01.NEW", "k8s operator [ts:k8s-operator#2]")
                .lifetime(t0() - successor_age, 30)
                .scopes(&["metrics.ingest"]),
        )
        .holder(&k8s(), holds("dt0c01.NEW"))
}

#[test]
fn grace_elapsed_revokes_the_predecessor() {
    let (plan, text) = snap(&rotated(days(2)));
    assert!(
        matches!(&plan.steps[..], [s] if matches!(s.action, Action::Disable { .. }) && s.reason == Reason::GraceElapsed)
    );
    insta::assert_snapshot!(text);
}

#[test]
fn grace_not_elapsed_is_pending() {
    let (plan, text) = snap(&rotated(Duration::hours(3)));
    assert!(!plan.has_changes());
    assert_eq!(plan.pending.len(), 1);
    insta::assert_snapshot!(text);
}

#[test]
fn retention_elapsed_deletes_a_disabled_predecessor() {
    let mut w = rotated(days(9));
    w.live
        .environments
        .get_mut(&env("prod"))
        .unwrap()
        .api_tokens[0]
        .enabled = false;
    let (plan, text) = snap(&w);
    assert!(
        matches!(&plan.steps[..], [s] if matches!(s.action, Action::Delete { .. }) && s.reason == Reason::RetentionElapsed)
    );
    // Before retention (24h grace + 7d) the delete is pending.
    let mut early = rotated(days(5));
    early
        .live
        .environments
        .get_mut(&env("prod"))
        .unwrap()
        .api_tokens[0]
        .enabled = false;
    assert!(!early.plan().unwrap().has_changes());
    insta::assert_snapshot!(text);
}

#[test]
fn revoke_delete_policy_deletes_after_grace() {
    let mut w = rotated(days(2));
    w.desired.tokens[0].policy.revoke = Revoke::Delete;
    let (plan, text) = snap(&w);
    assert!(matches!(&plan.steps[..], [s] if matches!(s.action, Action::Delete { .. })));
    insta::assert_snapshot!(text);
}

#[test]
fn deleted_outside_git_is_recreated() {
    let w = World::new()
        .want(want_api("k8s-operator", "prod").deliver(k8s()))
        .holder(&k8s(), holds("dt0c01.GONE"));
    let (plan, text) = snap(&w);
    assert_eq!(plan.steps[0].reason, Reason::DeletedOutsideGit);
    insta::assert_snapshot!(text);
}

/// A classic token the targets record with its expiry `expires`, gone from Dynatrace, planned
/// at `now`: the reason of the plan's create and of drift's item.
fn gone_at(holder: Holder, now: time::OffsetDateTime) -> (Reason, Reason) {
    let mut w = World::new()
        .want(want_api("k8s-operator", "prod").deliver(k8s()))
        .holder(&k8s(), holder);
    w.now = now;
    let plan = w.plan().expect("plans");
    assert!(
        matches!(&plan.steps[0].action, Action::Create { .. }),
        "{plan:?}"
    );
    let drift = tokensmith::plan::drift(&w.desired, &w.live, &w.targets, w.now);
    assert_eq!(drift.items.len(), 1, "{drift:?}");
    (plan.steps[0].reason, drift.items[0].reason)
}

#[test]
fn a_classic_token_gone_7_days_after_its_recorded_expiry_was_purged_not_deleted() {
    let expired = t0() - days(30);
    let purge = expired + days(7);
    let held = holds_until("dt0c01.GONE", expired);
    // Until its purge, Dynatrace still lists an expired token: gone earlier means deleted.
    assert_eq!(
        gone_at(held.clone(), purge - Duration::seconds(1)),
        (Reason::DeletedOutsideGit, Reason::DeletedOutsideGit)
    );
    assert_eq!(
        gone_at(held.clone(), purge),
        (Reason::ExpiredAndPurged, Reason::ExpiredAndPurged)
    );
    assert_eq!(
        gone_at(held, purge + days(100)),
        (Reason::ExpiredAndPurged, Reason::ExpiredAndPurged)
    );
    // A bare-id record (written before expiries were recorded): when it expired is not known.
    assert_eq!(
        gone_at(holds("dt0c01.GONE"), purge + days(100)),
        (Reason::DeletedOutsideGit, Reason::DeletedOutsideGit)
    );
    // A token that never expires is never purged.
    assert_eq!(
        gone_at(
            Holder::Token {
                id: tokensmith::model::TokenId::new("dt0c01.GONE"),
                expires: None
            },
            t0()
        ),
        (Reason::DeletedOutsideGit, Reason::DeletedOutsideGit)
    );
}

#[test]
fn expired_and_purged_needs_every_recorded_token_purged() {
    // Two targets record two different tokens: one purged, one deleted by someone.
    let other = file("/etc/dynatrace/other");
    let mut w = World::new()
        .want(
            want_api("k8s-operator", "prod")
                .deliver(k8s())
                .deliver(other.clone()),
        )
        .holder(&k8s(), holds_until("dt0c01.OLD", t0() - days(30)))
        .holder(&other, holds_until("dt0c01.NEW", t0() + days(20)));
    assert_eq!(w.plan().unwrap().steps[0].reason, Reason::DeletedOutsideGit);
    // The same token in both, its expiry recorded by one of them only: purged.
    w = w.holder(&other, holds("dt0c01.OLD"));
    assert_eq!(w.plan().unwrap().steps[0].reason, Reason::ExpiredAndPurged);
}

#[test]
fn expired_and_purged_is_recreated() {
    let w = World::new()
        .want(want_api("k8s-operator", "prod").deliver(k8s()))
        .holder(&k8s(), holds_until("dt0c01.GONE", t0() - days(8)));
    let (plan, text) = snap(&w);
    assert_eq!(plan.steps[0].reason, Reason::ExpiredAndPurged);
    assert!(
        text.contains("expired and Dynatrace deleted it 7 days later"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn disabled_outside_git_is_replaced_not_reenabled() {
    let w = World::new()
        .want(want_api("k8s-operator", "prod").deliver(k8s()))
        .live(
            "prod",
            api("dt0c01.AAA", "k8s operator [ts:k8s-operator#4]")
                .lifetime(t0() - days(3), 30)
                .scopes(&["metrics.ingest"])
                .disabled(),
        )
        .holder(&k8s(), holds("dt0c01.AAA"));
    let (plan, text) = snap(&w);
    assert_eq!(plan.steps[0].reason, Reason::DisabledOutsideGit);
    assert!(
        matches!(&plan.steps[0].action, Action::Create { generation, .. } if generation.0 == 5)
    );
    insta::assert_snapshot!(text);
}

#[test]
fn expired_token_is_replaced() {
    let w = World::new()
        .want(want_api("k8s-operator", "prod").deliver(k8s()))
        .live(
            "prod",
            api("dt0c01.AAA", "k8s operator [ts:k8s-operator#1]")
                .lifetime(t0() - days(31), 30)
                .scopes(&["metrics.ingest"]),
        )
        .holder(&k8s(), holds("dt0c01.AAA"));
    let (plan, text) = snap(&w);
    assert_eq!(plan.steps[0].reason, Reason::Expired);
    // An expired current generation fails `--fail-on-expiry-within` too.
    assert!(w
        .clone()
        .fail_on_expiry_within("1d")
        .plan()
        .unwrap()
        .has_failed_checks());
    assert!(!plan.has_failed_checks());
    insta::assert_snapshot!(text);
}

#[test]
fn stale_target_gets_the_current_value_copied_from_another() {
    let second = file("/etc/otel/token");
    let w = rotated(days(3)).holder(&second, holds("dt0c01.OLD"));
    let mut w = w;
    w.desired.tokens[0].deliver.push(second);
    let (plan, text) = snap(&w);
    // The value is copied, and the old generation is renamed after the delivery so that its
    // grace counts from the switch.
    assert_eq!(plan.steps.len(), 2);
    assert!(plan
        .steps
        .iter()
        .all(|s| s.reason == Reason::TargetHoldsStaleToken));
    assert!(
        matches!(&plan.steps[1].action, Action::Update { token, .. } if token.as_str() == "dt0c01.OLD")
    );
    // The old generation is still held: it is not revoked.
    assert!(plan
        .pending
        .iter()
        .any(|p| p.token.as_str() == "dt0c01.OLD"));
    insta::assert_snapshot!(text);
}

fn unmanaged_world() -> World {
    World::new()
        .at(t0() + days(200))
        .want(want_api("k8s-operator", "prod"))
        .live(
            "prod",
            api("dt0c01.MGD", "k8s operator [ts:k8s-operator#1]")
                .created(t0() + days(199))
                .scopes(&["metrics.ingest"])
                .expires(t0() + days(229)),
        )
        .live(
            "prod",
            api("dt0c01.OLDUNUSED", "jenkins export")
                .created(t0())
                .last_used(t0() + days(10)),
        )
        .live(
            "prod",
            api("dt0c01.NEVERUSED", "someone's test").created(t0()),
        )
        .live(
            "prod",
            api("dt0c01.RECENT", "grafana")
                .created(t0())
                .last_used(t0() + days(190)),
        )
        .live(
            "prod",
            api("dt0c01.PAT", "my personal token")
                .created(t0())
                .personal(),
        )
        .live(
            "prod",
            api("dt0c01.ADMIN", "tokensmith admin").created(t0()),
        )
        .live(
            "prod",
            api("dt0c01.FOREIGN", "other repo [ts:other-key#2]").created(t0()),
        )
        .live("prod", ag("dt0g02.AGOLD", "system:installer").created(t0()))
        .caller("prod", "dt0c01.ADMIN")
}

#[test]
fn unmanaged_tokens_are_untouched() {
    let (plan, text) = snap(&unmanaged_world().unmanaged(Some("90d"), false));
    assert!(!plan.has_changes());
    insta::assert_snapshot!(text);
}

#[test]
fn prune_deletes_only_unused_unmarked_tokens() {
    let (plan, text) = snap(&unmanaged_world().unmanaged(Some("90d"), true));
    let pruned: Vec<(&str, &str)> = plan
        .steps
        .iter()
        .filter_map(|s| Some((s.action.verb(), s.action.token()?.as_str())))
        .collect();
    // Disabled first (deleted after a retention); an ActiveGate token cannot be disabled, so it
    // is only reported.
    assert_eq!(
        pruned,
        [
            ("disable", "dt0c01.NEVERUSED"),
            ("disable", "dt0c01.OLDUNUSED")
        ]
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.code == "prune_cannot_disable" && w.message.contains("dt0g02.AGOLD")),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn prune_without_a_threshold_prunes_nothing() {
    let (plan, _) = snap(&unmanaged_world().unmanaged(None, true));
    assert!(!plan.has_changes());
    assert_eq!(plan.warnings[0].code, "prune_without_threshold");
}

#[test]
fn adopt_renames_an_unmanaged_token() {
    let w = World::new()
        .want(
            want_api("legacy-ingest", "prod")
                .adopt("dt0c01.LEGACY")
                .scopes(&["metrics.ingest", "logs.ingest"])
                .deliver(k8s()),
        )
        .live(
            "prod",
            api("dt0c01.LEGACY", "ingest token from 2023")
                .lifetime(t0() - days(1), 30)
                .scopes(&["metrics.ingest"]),
        )
        .holder(&k8s(), holds("dt0c01.LEGACY"));
    let (plan, text) = snap(&w);
    assert!(matches!(plan.steps[0].action, Action::Adopt { .. }));
    insta::assert_snapshot!(text);
}

#[test]
fn activegate_rotation_deletes_instead_of_disabling() {
    let target = file("/var/lib/dynatrace/gateway/config/authorization.properties");
    let w = World::new()
        .want(
            want_ag("ag-frankfurt", "prod")
                .expires_in(Some("365d"))
                .deliver(target.clone()),
        )
        .live(
            "prod",
            ag("dt0g02.AG1", "ag frankfurt [ts:ag-frankfurt#1]").lifetime(t0() - days(360), 365),
        )
        .holder(&target, holds("dt0g02.AG1"));
    let (plan, text) = snap(&w);
    assert_eq!(plan.summary.rotate, 1);
    let w2 = World::new()
        .want(
            want_ag("ag-frankfurt", "prod")
                .expires_in(Some("365d"))
                .deliver(target.clone()),
        )
        .live(
            "prod",
            ag("dt0g02.AG1", "ag frankfurt [ts:ag-frankfurt#1]").lifetime(t0() - days(362), 365),
        )
        .live(
            "prod",
            ag("dt0g02.AG2", "ag frankfurt [ts:ag-frankfurt#2]").lifetime(t0() - days(2), 365),
        )
        .holder(&target, holds("dt0g02.AG2"));
    let (plan2, text2) = snap(&w2);
    assert!(matches!(&plan2.steps[..], [s] if matches!(s.action, Action::Delete { .. })));
    insta::assert_snapshot!(format!("{text}\n--- two days later ---\n\n{text2}"));
}

fn tenant_world(ag_holder: Holder, oa_holder: Holder) -> World {
    let ag_file = file("/var/lib/dynatrace/gateway/config/authorization.properties");
    let oa = exec(&["ansible", "oneagents", "-m", "shell"]);
    World::new()
        .tenant(DesiredTenantToken {
            environment: env("prod"),
            rotate_every: Some(SpecDuration::from_days(180)),
            grace: tokensmith::model::SpecDuration::ZERO,
            on_foreign_rotation: None,
            activegates: vec![ag_file.clone()],
            oneagents: vec![oa.clone()],
        })
        .tenant_live("prod", "aaaaaaaaaaaa")
        .holder(&ag_file, ag_holder)
        .holder(&oa, oa_holder)
}

#[test]
fn tenant_rotation_due() {
    let w = tenant_world(
        Holder::TenantToken {
            fingerprint: "aaaaaaaaaaaa".into(),
            since: Some(t0() - days(181)),
        },
        Holder::WriteOnly,
    );
    let (plan, text) = snap(&w);
    let verbs: Vec<&str> = plan.steps.iter().map(|s| s.action.verb()).collect();
    assert_eq!(
        verbs,
        ["tenant_start", "deliver", "deliver", "tenant_finish"]
    );
    insta::assert_snapshot!(text);
}

#[test]
fn tenant_rotation_not_due_yet() {
    let w = tenant_world(
        Holder::TenantToken {
            fingerprint: "aaaaaaaaaaaa".into(),
            since: Some(t0() - days(10)),
        },
        Holder::WriteOnly,
    );
    let (plan, _) = snap(&w);
    assert!(!plan.has_changes());
    assert_eq!(plan.forecast[0].rotation_due, Some(t0() + days(170)));
}

#[test]
fn tenant_rotation_partial_is_resumed() {
    // tokensmith's record of the open rotation, created two days ago.
    let record = tokensmith::plan::tenant_record::RecordNotes::default().name();
    let w = tenant_world(
        Holder::TenantToken {
            fingerprint: "aaaaaaaaaaaa".into(),
            since: Some(t0() - days(1)),
        },
        Holder::TenantToken {
            fingerprint: "bbbbbbbbbbbb".into(),
            since: Some(t0() - days(200)),
        },
    )
    .live(
        "prod",
        api("dt0c01.RECORD", &record)
            .created(t0() - days(2))
            .disabled(),
    );
    let (plan, text) = snap(&w);
    let verbs: Vec<&str> = plan.steps.iter().map(|s| s.action.verb()).collect();
    assert_eq!(verbs, ["deliver", "tenant_finish"]);
    assert!(plan.has_open_rotation());
    insta::assert_snapshot!(text);
}

/// Account `main` whose owner holds the 10 platform tokens Dynatrace allows: `want`'s current
/// generation, due for rotation, and 9 others.
fn grail_reader_at_the_owner_limit(want: DesiredTokenBuilder) -> World {
    let mut w = World::new().account("main").want(want).live_platform(
        "main",
        platform("dt0s16.CUR", "grail reader [ts:grail-reader#1]")
            .lifetime(t0() - days(25), 30)
            .scopes(&["storage:logs:read"]),
    );
    for i in 0..9 {
        w = w.live_platform(
            "main",
            platform(&format!("dt0s16.OTHER{i}"), &format!("other {i}")),
        );
    }
    w
}

/// One of the other tokens of account `main` goes, freeing a slot under the owner limit.
fn free_one_slot(w: &mut World) {
    w.live
        .accounts
        .get_mut("main")
        .unwrap()
        .platform_tokens
        .pop();
}

#[test]
fn platform_token_limit_blocks_the_rotation() {
    let mut w = grail_reader_at_the_owner_limit(
        want_platform("grail-reader", "main").scopes(&["storage:logs:read"]),
    );
    let (plan, text) = snap(&w);
    assert!(plan.is_blocked());
    assert!(!plan.has_changes());
    insta::assert_snapshot!(text);
    // With one slot free the rotation is planned.
    free_one_slot(&mut w);
    let plan = w.plan().unwrap();
    assert!(!plan.is_blocked());
    assert_eq!(plan.summary.rotate, 1);
}

#[test]
fn a_rotation_blocked_by_the_platform_limit_revokes_nothing_even_with_zero_grace_and_no_target() {
    // Zero grace and no target: the predecessor's revoke has no delivery to wait for, so it
    // must wait for the create itself; when the limit removes the create, the revoke goes too.
    // (Found by plan_properties::applying_a_plan_converges: the plan disabled the current
    // generation and created none.)
    let mut w = grail_reader_at_the_owner_limit(
        want_platform("grail-reader", "main")
            .scopes(&["storage:logs:read"])
            .grace("0s"),
    );
    let plan = w.plan().unwrap();
    assert!(plan.is_blocked());
    assert!(plan.steps.is_empty(), "{:#?}", plan.steps);
    // With one slot free, the rotation creates the successor and revokes its predecessor
    // after it, in the same run.
    free_one_slot(&mut w);
    let plan = w.plan().unwrap();
    assert!(!plan.is_blocked());
    let create = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::Create { .. }))
        .expect("a create");
    let revoke = plan
        .steps
        .iter()
        .find(|s| matches!(&s.action, Action::Disable { token, .. } | Action::Delete { token, .. } if token.as_str() == "dt0s16.CUR"))
        .expect("the predecessor is revoked in this run");
    assert!(revoke.depends_on.contains(&create.id), "{revoke:#?}");
}

#[test]
fn blocked_platform_rotation_keeps_the_current_forecast() {
    let w = grail_reader_at_the_owner_limit(
        want_platform("grail-reader", "main").scopes(&["storage:logs:read"]),
    );
    let plan = w.plan().unwrap();
    assert!(plan.pending.is_empty());
    assert_eq!(
        plan.forecast[0].token.as_ref().map(|t| t.as_str()),
        Some("dt0s16.CUR")
    );
}

/// No step of `plan` names `id`.
fn untouched(plan: &Plan, id: &str) -> bool {
    plan.steps.iter().all(|s| match &s.action {
        Action::Disable { token, .. } | Action::Delete { token, .. } => token.as_str() != id,
        Action::Update { token, .. } => token.as_str() != id,
        _ => true,
    })
}

#[test]
fn management_token_is_never_revoked() {
    // The management token carries the marker of a superseded generation (renamed outside
    // tokensmith): it is not a generation, so nothing revokes it; the plan names the conflict.
    let w = rotated(days(2)).caller("prod", "dt0c01.OLD");
    let plan = w.plan().expect("the rest is planned");
    assert!(untouched(&plan, "dt0c01.OLD"), "{:#?}", plan.steps);
    let warning = plan
        .warnings
        .iter()
        .find(|w| w.code == "management_token_carries_marker")
        .expect("the conflict is named");
    assert!(
        warning.message.contains("dt0c01.OLD"),
        "{}",
        warning.message
    );
    assert!(
        warning.message.contains("`k8s-operator`"),
        "{}",
        warning.message
    );
    assert!(human(&plan).contains("dt0c01.OLD"));
    // Without the conflict, the same world revokes the predecessor.
    let plain = rotated(days(2)).plan().unwrap();
    assert!(!untouched(&plain, "dt0c01.OLD"));
}

#[test]
fn management_token_is_never_narrowed() {
    let w = World::new()
        .want(want_api("admin", "prod").scopes(&["apiTokens.read", "apiTokens.write"]))
        .live(
            "prod",
            api("dt0c01.ADM", "admin [ts:admin#1]")
                .lifetime(t0() - days(1), 30)
                .scopes(&[
                    "apiTokens.read",
                    "apiTokens.write",
                    "tenantTokenRotation.write",
                ]),
        )
        .caller("prod", "dt0c01.ADM");
    let plan = w.plan().expect("the rest is planned");
    assert!(untouched(&plan, "dt0c01.ADM"), "{:#?}", plan.steps);
    // The key gets a generation of its own, numbered past the management token's marker.
    assert!(
        plan.steps.iter().any(
            |s| matches!(&s.action, Action::Create { name, .. } if name.ends_with("[ts:admin#2]"))
        ),
        "{:#?}",
        plan.steps
    );
    assert!(plan
        .warnings
        .iter()
        .any(|w| w.code == "management_token_carries_marker" && w.message.contains("dt0c01.ADM")));
}

#[test]
fn management_token_expiring_warns() {
    let w = steady(1, "dt0c01.AAA")
        .live(
            "prod",
            api("dt0c01.ADMIN", "tokensmith admin").expires(t0() + days(10)),
        )
        .caller("prod", "dt0c01.ADMIN");
    let (plan, text) = snap(&w);
    assert_eq!(plan.warnings[0].code, "management_token_expiring");
    insta::assert_snapshot!(text);
}

#[test]
fn fail_on_expiry_within() {
    let w = steady(1, "dt0c01.AAA").fail_on_expiry_within("30d");
    let (plan, text) = snap(&w);
    assert!(plan.has_failed_checks());
    assert!(!plan.is_blocked());
    assert!(!steady(1, "dt0c01.AAA")
        .fail_on_expiry_within("7d")
        .plan()
        .unwrap()
        .has_failed_checks());
    insta::assert_snapshot!(text);
}

#[test]
fn multi_environment_ordering() {
    let w = World::new()
        .env("dev")
        .env("staging")
        .account("main")
        .want(want_api("b-token", "staging"))
        .want(want_api("a-token", "staging"))
        .want(want_platform("grail", "main"))
        .want(want_api("z-token", "dev"))
        .want(want_ag("ag", "prod"));
    let (plan, text) = snap(&w);
    let order: Vec<&str> = plan.steps.iter().map(|s| s.id.0.as_str()).collect();
    // Environments by name, then accounts; within a home by key.
    assert_eq!(
        order,
        [
            "dev/api_token/z-token/create#1",
            "prod/activegate_token/ag/create#1",
            "staging/api_token/a-token/create#1",
            "staging/api_token/b-token/create#1",
            "account:main/platform_token/grail/create#1",
        ]
    );
    insta::assert_snapshot!(text);
}

#[test]
fn verify_usage_waits_for_the_successor_to_be_used() {
    let mut w = rotated(days(2));
    w.desired.tokens[0].policy.verify_usage = true;
    let (plan, text) = snap(&w);
    assert!(!plan.has_changes());
    w.live
        .environments
        .get_mut(&env("prod"))
        .unwrap()
        .api_tokens[1]
        .last_used = Some(t0() - days(1));
    let used = w.plan().unwrap();
    assert_eq!(used.summary.revoke, 1);
    insta::assert_snapshot!(text);
}

#[test]
fn never_delivered_generation_is_deleted_and_replaced() {
    // An apply created generation 2 and was killed before delivering it.
    let w = rotated(days(3)).holder(&k8s(), holds("dt0c01.OLD"));
    let (plan, text) = snap(&w);
    assert!(plan
        .steps
        .iter()
        .any(|s| s.reason == Reason::NeverDelivered));
    insta::assert_snapshot!(text);
}

#[test]
fn zero_grace_revokes_in_the_same_run_after_delivery() {
    let mut w = steady(1, "dt0c01.AAA");
    w.desired.tokens[0].policy.grace = SpecDuration::ZERO;
    w.desired.tokens[0].policy.expires_in = Some(SpecDuration::from_days(60));
    let (plan, text) = snap(&w);
    let revoke = plan
        .steps
        .iter()
        .find(|s| s.action.is_destructive())
        .unwrap();
    // After the successor's create and its one delivery.
    let verbs: Vec<&str> = revoke
        .depends_on
        .iter()
        .map(|id| {
            plan.steps
                .iter()
                .find(|s| &s.id == id)
                .unwrap()
                .action
                .verb()
        })
        .collect();
    assert_eq!(verbs, ["rotate", "deliver"]);
    insta::assert_snapshot!(text);
}

#[test]
fn write_only_targets_need_proof_of_use() {
    let oa = exec(&["ssh", "host", "update-token"]);
    let w = World::new()
        .want(want_api("ingest", "prod").deliver(oa.clone()))
        .live(
            "prod",
            api("dt0c01.OLD", "ingest [ts:ingest#1]")
                .lifetime(t0() - days(40), 50)
                .scopes(&["metrics.ingest"]),
        )
        .live(
            "prod",
            api("dt0c01.NEW", "ingest [ts:ingest#2]")
                .lifetime(t0() - days(2), 30)
                .scopes(&["metrics.ingest"]),
        )
        .holder(&oa, Holder::WriteOnly);
    let (plan, text) = snap(&w);
    assert!(!plan.has_changes());
    insta::assert_snapshot!(text);
}

#[test]
fn personal_and_over_privileged_tokens_in_the_inventory() {
    let w = World::new()
        .at(t0() + days(100))
        .want(want_api("k8s-operator", "prod").preset(Preset::DynatraceOperator))
        .live(
            "prod",
            api("dt0c01.OP", "k8s operator [ts:k8s-operator#2]")
                .created(t0() + days(95))
                .expires(t0() + days(105))
                .scopes(&[
                    "DataExport",
                    "InstallerDownload",
                    "activeGateTokenManagement.create",
                    "apiTokens.write",
                ]),
        )
        .live(
            "prod",
            api("dt0c01.OP1", "k8s operator [ts:k8s-operator#1]")
                .created(t0())
                .expires(t0() + days(30))
                .scopes(&["DataExport"])
                .disabled(),
        )
        .live(
            "prod",
            api("dt0c01.PAT", "jane's token")
                .personal()
                .created(t0())
                .last_used(t0() + days(99)),
        )
        .live("prod", api("dt0c01.DEAD", "old export").created(t0()))
        .caller("prod", "dt0c01.PAT");
    let inv = tokensmith::plan::inventory(&w.desired, &w.live, w.now);
    use tokensmith::plan::{Advice, TokenClass};
    assert_eq!(inv.counts.class(TokenClass::OverPrivileged), 1);
    assert_eq!(inv.counts.class(TokenClass::Personal), 1);
    assert_eq!(inv.counts.action(Advice::Delete), 1);
    let mut out = Vec::new();
    tokensmith::render::inventory_human(&inv, false, &mut out).unwrap();
    insta::assert_snapshot!(String::from_utf8(out).unwrap());
}

#[test]
fn rotation_as_json_and_markdown() {
    let w = World::new()
        .want(want_api("k8s-operator", "prod").deliver(k8s()))
        .live(
            "prod",
            api("dt0c01.OLD", "k8s operator [ts:k8s-operator#1]")
                .lifetime(t0() - days(40), 50)
                .scopes(&["metrics.ingest"])
                .disabled(),
        )
        .live(
            "prod",
            api("dt0c01.CUR", "k8s operator [ts:k8s-operator#2]")
                .lifetime(t0() - days(25), 30)
                .scopes(&["metrics.ingest"]),
        )
        .holder(&k8s(), holds("dt0c01.CUR"));
    let plan = w.plan().unwrap();
    let mut json = Vec::new();
    plan_json(&plan, &mut json).unwrap();
    insta::assert_snapshot!("rotation_json", String::from_utf8(json).unwrap());
    let mut md = Vec::new();
    plan_markdown(&plan, &mut md).unwrap();
    insta::assert_snapshot!("rotation_markdown", String::from_utf8(md).unwrap());
}

#[test]
fn drift_report() {
    let second = file("/etc/otel/token");
    let mut w = World::new()
        .want(
            want_api("k8s-operator", "prod")
                .deliver(k8s())
                .deliver(second.clone()),
        )
        .want(want_api("gone", "prod"))
        .live(
            "prod",
            api("dt0c01.CUR", "k8s operator [ts:k8s-operator#2]")
                .lifetime(t0() - days(25), 30)
                .scopes(&["metrics.ingest", "DataExport"]),
        )
        .holder(&k8s(), holds("dt0c01.CUR"))
        .holder(&second, holds("dt0c01.OLD"));
    w = w
        .tenant(DesiredTenantToken {
            environment: env("prod"),
            rotate_every: None,
            grace: tokensmith::model::SpecDuration::ZERO,
            on_foreign_rotation: None,
            activegates: vec![file("/ag/authorization.properties")],
            oneagents: vec![],
        })
        .tenant_live("prod", "aaaaaaaaaaaa")
        .holder(
            &file("/ag/authorization.properties"),
            Holder::TenantToken {
                fingerprint: "bbbbbbbbbbbb".into(),
                since: None,
            },
        );
    let report = tokensmith::plan::drift(&w.desired, &w.live, &w.targets, w.now);
    assert!(report.has_drift());
    let mut out = Vec::new();
    tokensmith::render::drift_human(&report, false, &mut out).unwrap();
    insta::assert_snapshot!(String::from_utf8(out).unwrap());
}

#[test]
fn personal_access_token_flag_change_replaces() {
    let mut w = steady(1, "dt0c01.AAA");
    w.desired.tokens[0].details = tokensmith::model::TokenDetails::Api {
        personal_access_token: true,
        preset: None,
    };
    let (plan, text) = snap(&w);
    assert_eq!(plan.steps[0].reason, Reason::DetailsChanged);
    insta::assert_snapshot!(text);
}

#[test]
fn unreadable_target_holds_back_the_revoke() {
    let second = file("/mnt/nfs/token");
    let mut w = rotated(days(3)).holder(
        &second,
        Holder::Unreadable {
            reason: "permission denied".into(),
        },
    );
    w.desired.tokens[0].deliver.push(second);
    let (plan, text) = snap(&w);
    assert!(!plan.has_changes());
    assert!(plan.pending[0].waiting_for.contains("/mnt/nfs/token"));
    insta::assert_snapshot!(text);
}

#[test]
fn a_target_named_twice_is_planned_once() {
    let w = World::new()
        .want(
            want_api("k8s-operator", "prod")
                .deliver(k8s())
                .deliver(k8s()),
        )
        .holder(&k8s(), Holder::Absent);
    let plan = w.plan().unwrap();
    assert_eq!(plan.summary.deliver, 1);
}

#[test]
fn tenant_first_run_delivers_to_empty_targets_without_rotating() {
    let w = tenant_world(Holder::Absent, Holder::WriteOnly);
    let (plan, text) = snap(&w);
    let verbs: Vec<&str> = plan.steps.iter().map(|s| s.action.verb()).collect();
    assert_eq!(verbs, ["deliver"]);
    // The delivery to the file records when it was written: the apply starts the schedule, so
    // the first plan does not warn that it is unknown.
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    insta::assert_snapshot!(text);
}

#[test]
fn a_tenant_schedule_no_target_can_record_is_reported_unknown() {
    let schedule_unknown = |w: &World| {
        let plan = w.plan().unwrap();
        plan.warnings
            .iter()
            .any(|w| w.code == "tenant_schedule_unknown")
    };
    // Every target is write-only: nothing this plan writes records a time.
    let write_only = tenant_world(Holder::WriteOnly, Holder::WriteOnly);
    assert!(schedule_unknown(&write_only));
    // The file holds the active token, written outside tokensmith (no time): nothing to
    // deliver, and nothing tells when the token was written.
    let written_outside = tenant_world(
        Holder::TenantToken {
            fingerprint: "aaaaaaaaaaaa".into(),
            since: None,
        },
        Holder::WriteOnly,
    );
    assert!(written_outside.plan().unwrap().steps.is_empty());
    assert!(schedule_unknown(&written_outside));
    // Once the file records its time, the schedule is known.
    let recorded = tenant_world(
        Holder::TenantToken {
            fingerprint: "aaaaaaaaaaaa".into(),
            since: Some(t0() - days(10)),
        },
        Holder::WriteOnly,
    );
    assert!(!schedule_unknown(&recorded));
}

#[test]
fn adopt_warnings() {
    let w = World::new()
        .want(want_ag("ag", "prod").adopt("dt0g02.AGX"))
        .live("prod", ag("dt0g02.AGX", "hand made ag").created(t0()));
    let (plan, text) = snap(&w);
    let codes: Vec<&str> = plan.warnings.iter().map(|w| w.code.as_str()).collect();
    assert_eq!(codes, ["cannot_adopt"]);
    assert_eq!(plan.summary.create, 1);
    insta::assert_snapshot!(text);

    // A wrong id is an error, not a duplicate token.
    let wrong = World::new().want(want_api("legacy", "prod").adopt("dt0c01.NOPE"));
    assert!(
        matches!(wrong.plan(), Err(PlanError::AdoptNotFound { .. })),
        "{:?}",
        wrong.plan()
    );
}

#[test]
fn the_management_token_cannot_be_adopted() {
    let unmarked = World::new()
        .want(want_api("legacy", "prod").adopt("dt0c01.MGMT"))
        .live(
            "prod",
            api("dt0c01.MGMT", "tokensmith admin").scopes(&["apiTokens.read", "apiTokens.write"]),
        )
        .caller("prod", "dt0c01.MGMT");
    let err = unmarked.plan().unwrap_err();
    assert!(
        matches!(&err, PlanError::AdoptManagementToken { id, .. } if id.as_str() == "dt0c01.MGMT"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(
            "`adopt: dt0c01.MGMT` of `legacy` in prod: the management token cannot be adopted"
        ) && text.contains("remove `adopt`"),
        "{text}"
    );
    // Renamed with the key's marker (by an earlier version, or by hand): still refused, not
    // "already managed".
    let marked = World::new()
        .want(want_api("legacy", "prod").adopt("dt0c01.MGMT"))
        .live(
            "prod",
            api("dt0c01.MGMT", "tokensmith admin [ts:legacy#1]")
                .scopes(&["apiTokens.read", "apiTokens.write"]),
        )
        .caller("prod", "dt0c01.MGMT");
    assert!(
        matches!(marked.plan(), Err(PlanError::AdoptManagementToken { .. })),
        "{:?}",
        marked.plan()
    );
    // Another token of the environment is adopted as before.
    let other = World::new()
        .want(want_api("legacy", "prod").adopt("dt0c01.OLD"))
        .live(
            "prod",
            api("dt0c01.OLD", "hand made").scopes(&["metrics.ingest"]),
        )
        .caller("prod", "dt0c01.MGMT");
    assert_eq!(other.plan().unwrap().steps[0].reason, Reason::Adopt);
}

#[test]
fn server_time_is_the_clock_of_its_environment() {
    // The planner's clock says nothing is due; the sandbox's clock was advanced 20 days.
    let mut w = steady(1, "dt0c01.AAA");
    assert!(!w.plan().unwrap().has_changes());
    w.live
        .environments
        .get_mut(&env("prod"))
        .unwrap()
        .server_time = Some(t0() + days(20));
    let plan = w.plan().unwrap();
    assert_eq!(plan.steps[0].reason, Reason::ExpiringIn { days: 5 });
}

#[test]
fn platform_resources_change_replaces_but_owner_spelling_does_not() {
    let mut w = World::new()
        .account("main")
        .want(want_platform("grail-reader", "main").scopes(&["storage:logs:read"]))
        .live_platform(
            "main",
            platform("dt0s16.CUR", "grail reader [ts:grail-reader#1]")
                .lifetime(t0() - days(5), 30)
                .scopes(&["storage:logs:read"])
                .owner("5f1c2a3b-0000-4000-8000-000000000001@service.sso.dynatrace.com"),
        );
    assert!(!w.plan().unwrap().has_changes());
    if let tokensmith::model::TokenDetails::Platform { resources, .. } =
        &mut w.desired.tokens[0].details
    {
        resources.push("urn:dtenvironment:abc12345".into());
    }
    let (plan, text) = snap(&w);
    assert_eq!(plan.steps[0].reason, Reason::DetailsChanged);
    insta::assert_snapshot!(text);
}

#[test]
fn missing_activegate_type_in_live_metadata_is_not_a_change() {
    let target = file("/ag/auth");
    let mut w = World::new()
        .want(want_ag("ag", "prod").deliver(target.clone()))
        .live(
            "prod",
            ag("dt0g02.A", "ag [ts:ag#1]").lifetime(t0() - days(1), 30),
        )
        .holder(&target, holds("dt0g02.A"));
    w.live
        .environments
        .get_mut(&env("prod"))
        .unwrap()
        .activegate_tokens[0]
        .activegate_type = None;
    assert!(!w.plan().unwrap().has_changes());
    w.live
        .environments
        .get_mut(&env("prod"))
        .unwrap()
        .activegate_tokens[0]
        .activegate_type = Some(tokensmith::model::ActiveGateType::Cluster);
    assert_eq!(w.plan().unwrap().steps[0].reason, Reason::DetailsChanged);
}

#[test]
fn rotate_before_longer_than_the_lifetime_does_not_rotate_every_run() {
    // expires_in 7d with rotate_before 7d: a fresh generation is not due at once.
    let mut w = World::new()
        .want(
            want_api("short", "prod")
                .expires_in(Some("7d"))
                .deliver(k8s()),
        )
        .live(
            "prod",
            api("dt0c01.S", "short [ts:short#1]")
                .lifetime(t0() - days(1), 7)
                .scopes(&["metrics.ingest"]),
        )
        .holder(&k8s(), holds("dt0c01.S"));
    assert!(!w.plan().unwrap().has_changes());
    // Past half its lifetime it rotates.
    w = w.at(t0() + days(3));
    assert_eq!(w.plan().unwrap().summary.rotate, 1);
}

#[test]
fn retention_counts_from_the_revoking_rename() {
    // The successor is 20 days old, but the predecessor was disabled (and renamed) 2 days ago:
    // it is kept until 7 days after that.
    let mut w = rotated(days(20));
    {
        let old = &mut w
            .live
            .environments
            .get_mut(&env("prod"))
            .unwrap()
            .api_tokens[0];
        old.enabled = false;
        old.name = "k8s operator (revoked) [ts:k8s-operator#1]".into();
        old.modified = Some(t0() - days(2));
    }
    let (plan, text) = snap(&w);
    assert!(!plan.has_changes());
    assert_eq!(plan.pending[0].not_before, Some(t0() + days(5)));
    insta::assert_snapshot!(text);
}

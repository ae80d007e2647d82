//! What a change does to the desired state (`git::desired_diff`), rendered for the terminal
//! and for a pull-request comment.

use tokensmith::git::desired_diff::{diff, ChangeKind};
use tokensmith::model::{DesiredTenantToken, Rotation, Scope};
use tokensmith::plan::testing::*;
use tokensmith::render::{desired_diff_human, desired_diff_markdown, DESIRED_DIFF_BUDGET};

fn base() -> World {
    World::new()
        .env("staging")
        .want(
            want_api("k8s-operator", "prod")
                .scopes(&["metrics.ingest", "settings.read"])
                .expires_in(Some("30d"))
                .deliver(file("/etc/dt/operator")),
        )
        .want(
            want_api("old-ingest", "prod")
                .scopes(&["logs.ingest"])
                .deliver(file("/etc/dt/old")),
        )
        .want(want_ag("ag-frankfurt", "prod").expires_in(Some("365d")))
}

fn head() -> World {
    let mut w = World::new()
        .account("acme")
        .want(
            want_api("k8s-operator", "prod")
                .scopes(&["metrics.ingest", "settings.write"])
                .expires_in(Some("90d"))
                .rotation(Rotation::Every(dur("30d")))
                .grace("72h")
                .deliver(file("/etc/dt/operator"))
                .deliver(file("/etc/dt/operator-copy")),
        )
        .want(want_ag("ag-frankfurt", "prod").expires_in(Some("365d")))
        .want(
            want_api("new-ingest", "prod")
                .scopes(&["metrics.ingest"])
                .deliver(exec(&["deploy", "x"])),
        )
        .tenant(DesiredTenantToken {
            environment: env("prod"),
            rotate_every: Some(dur("180d")),
            grace: tokensmith::model::DEFAULT_TENANT_GRACE,
            on_foreign_rotation: None,
            activegates: vec![file("/etc/ag/tenant")],
            oneagents: vec![],
        })
        .unmanaged(Some("90d"), false);
    w.desired
        .environments
        .get_mut(&env("prod"))
        .unwrap()
        .token_env = Some("DT_PROD_ADMIN_TOKEN".into());
    w
}

#[test]
fn diff_lists_tokens_scopes_policies_targets_and_environments() {
    let d = diff(&base().desired, &head().desired);
    assert_eq!(d.token_counts(), (1, 1, 1));
    let op = d
        .tokens
        .iter()
        .find(|t| t.key.as_str() == "k8s-operator")
        .unwrap();
    assert_eq!(op.change, ChangeKind::Changed);
    assert_eq!(
        op.scopes_added
            .iter()
            .map(Scope::as_str)
            .collect::<Vec<_>>(),
        ["settings.write"]
    );
    assert_eq!(
        op.scopes_removed
            .iter()
            .map(Scope::as_str)
            .collect::<Vec<_>>(),
        ["settings.read"]
    );
    assert_eq!(op.targets_added.len(), 1);
    assert!(op.targets_removed.is_empty());
    let fields: Vec<String> = op.fields.iter().map(|f| f.to_string()).collect();
    assert!(
        fields.contains(&"expires_in: 30d → 90d".to_owned()),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("rotation: ") && f.ends_with("→ every 30d")),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("grace: ") && f.ends_with("→ 3d")),
        "{fields:?}"
    );

    let removed = d
        .tokens
        .iter()
        .find(|t| t.key.as_str() == "old-ingest")
        .unwrap();
    assert_eq!(removed.change, ChangeKind::Removed);
    assert_eq!(removed.targets_removed.len(), 1);
    let added = d
        .tokens
        .iter()
        .find(|t| t.key.as_str() == "new-ingest")
        .unwrap();
    assert_eq!(added.change, ChangeKind::Added);
    assert_eq!(added.targets_added[0].to_string(), "exec:deploy x");
    // Unchanged tokens are not listed.
    assert!(d.tokens.iter().all(|t| t.key.as_str() != "ag-frankfurt"));

    let envs: Vec<_> = d
        .environments
        .iter()
        .map(|e| (e.name.as_str(), e.change))
        .collect();
    assert_eq!(
        envs,
        [
            ("prod", ChangeKind::Changed),
            ("staging", ChangeKind::Removed)
        ]
    );
    assert_eq!(
        d.environments[0].fields[0].to_string(),
        "token_env: (none) → DT_PROD_ADMIN_TOKEN"
    );
    assert_eq!(d.accounts[0].change, ChangeKind::Added);
    assert_eq!(d.tenant_tokens[0].change, ChangeKind::Added);
    assert_eq!(
        d.unmanaged[0].to_string(),
        "report_unused_after: (none) → 90d"
    );

    // Reversed, everything flips; identical states differ in nothing.
    let back = diff(&head().desired, &base().desired);
    assert_eq!(back.token_counts(), (1, 1, 1));
    assert!(diff(&head().desired, &head().desired).is_empty());
}

#[test]
fn tenant_token_target_changes_and_rotation() {
    let tenant = |every: &str, ags: Vec<_>| {
        World::new().tenant(DesiredTenantToken {
            environment: env("prod"),
            rotate_every: Some(dur(every)),
            grace: tokensmith::model::DEFAULT_TENANT_GRACE,
            on_foreign_rotation: None,
            activegates: ags,
            oneagents: vec![file("/etc/oa")],
        })
    };
    let d = diff(
        &tenant("180d", vec![file("/a"), file("/b")]).desired,
        &tenant("90d", vec![file("/b"), file("/c")]).desired,
    );
    let t = &d.tenant_tokens[0];
    assert_eq!(t.change, ChangeKind::Changed);
    assert_eq!(t.targets_added[0].to_string(), "file:/c");
    assert_eq!(t.targets_removed[0].to_string(), "file:/a");
    assert_eq!(t.fields.len(), 1, "{:?}", t.fields);
    assert_eq!(t.fields[0].to_string(), "rotate_every: 180d → 90d");
    // Only the delivery order changed: reported as the lists.
    let d = diff(
        &tenant("90d", vec![file("/a"), file("/b")]).desired,
        &tenant("90d", vec![file("/b"), file("/a")]).desired,
    );
    assert_eq!(d.tenant_tokens[0].fields[0].field, "activegates");
}

#[test]
fn human_rendering() {
    let d = diff(&base().desired, &head().desired);
    let mut out = Vec::new();
    desired_diff_human(&d, "origin/main", "working tree", &mut out).unwrap();
    insta::assert_snapshot!(String::from_utf8(out).unwrap());

    let mut out = Vec::new();
    desired_diff_human(
        &diff(&base().desired, &base().desired),
        "HEAD",
        "working tree",
        &mut out,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "Desired state changes (HEAD → working tree):\n  No changes to the desired state.\n"
    );
}

#[test]
fn markdown_rendering() {
    let d = diff(&base().desired, &head().desired);
    let mut out = Vec::new();
    desired_diff_markdown(&d, "origin/main", "abc123", &mut out).unwrap();
    insta::assert_snapshot!(String::from_utf8(out).unwrap());
}

#[test]
fn markdown_stays_within_its_budget() {
    let mut big = World::new();
    for i in 0..2000 {
        big = big.want(
            want_api(&format!("token-{i}"), "prod")
                .scopes(&["metrics.ingest"])
                .deliver(file(&format!("/etc/dt/{i}"))),
        );
    }
    let d = diff(&World::new().desired, &big.desired);
    let mut out = Vec::new();
    desired_diff_markdown(&d, "a", "b", &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.len() <= DESIRED_DIFF_BUDGET, "{}", text.len());
    assert!(text.contains("more entries not shown"), "{text}");
    assert!(text.contains("2000 added"), "{}", &text[..300]);
}

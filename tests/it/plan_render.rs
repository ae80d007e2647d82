//! Renderer tests: colour only when asked, JSON round trips, markdown stays under the comment
//! limit, and no output contains anything shaped like a token secret.

use tokensmith::model::Holder;
use tokensmith::plan::testing::*;
use tokensmith::plan::{drift, inventory, DriftReport, Inventory, Plan, FORMAT_VERSION};
use tokensmith::render::{
    drift_json, drift_markdown, inventory_json, inventory_markdown, plan_human, plan_json,
    plan_markdown, render_plan, Format, MARKDOWN_LIMIT,
};

fn rotation_world() -> World {
    World::new()
        .want(
            want_api("k8s-operator", "prod")
                .scopes(&["metrics.ingest", "logs.ingest"])
                .deliver(file("/etc/a")),
        )
        .live(
            "prod",
            api("dt0c01.OLD", "k8s operator [ts:k8s-operator#1]")
                .lifetime(t0() - days(40), 30)
                .scopes(&["metrics.ingest"])
                .disabled(),
        )
        .live(
            "prod",
            api("dt0c01.CUR", "k8s operator [ts:k8s-operator#2]")
                .lifetime(t0() - days(10), 30)
                .scopes(&["metrics.ingest", "DataExport"]),
        )
        .holder(&file("/etc/a"), holds("dt0c01.CUR"))
}

fn render(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    f(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn colour_only_when_asked() {
    let plan = rotation_world().plan().unwrap();
    let plain = render(|o| plan_human(&plan, false, o).unwrap());
    let coloured = render(|o| plan_human(&plan, true, o).unwrap());
    assert!(!plain.contains('\x1b'));
    assert!(coloured.contains("\x1b[32m"));
    assert!(coloured.contains("\x1b[31m"));
    // Colour changes nothing but the escapes.
    let stripped = regex_free_strip(&coloured);
    assert_eq!(stripped, plain);
}

fn regex_free_strip(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn plan_json_round_trips_and_is_versioned() {
    let plan = rotation_world().plan().unwrap();
    let json = render(|o| plan_json(&plan, o).unwrap());
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["format_version"], FORMAT_VERSION);
    let back: Plan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plan);
    // The same inputs give byte-identical JSON.
    let again = render(|o| plan_json(&rotation_world().plan().unwrap(), o).unwrap());
    assert_eq!(json, again);
}

#[test]
fn drift_and_inventory_json_round_trip() {
    let w = rotation_world();
    let report = drift(&w.desired, &w.live, &w.targets, w.now);
    let json = render(|o| drift_json(&report, o).unwrap());
    assert_eq!(serde_json::from_str::<DriftReport>(&json).unwrap(), report);
    let inv = inventory(&w.desired, &w.live, w.now);
    let json = render(|o| inventory_json(&inv, o).unwrap());
    assert_eq!(serde_json::from_str::<Inventory>(&json).unwrap(), inv);
}

#[test]
fn the_fingerprint_changes_with_the_inputs_but_not_with_usage() {
    let w = rotation_world();
    let plan = w.plan().unwrap();
    let mut used = w.clone();
    used.live
        .environments
        .get_mut(&env("prod"))
        .unwrap()
        .api_tokens[1]
        .last_used = Some(t0());
    assert_eq!(used.plan().unwrap().inputs, plan.inputs);
    let moved = w.clone().holder(&file("/etc/a"), Holder::Absent);
    let moved = moved.plan().unwrap();
    assert_eq!(moved.inputs.live, plan.inputs.live);
    assert_ne!(moved.inputs.targets, plan.inputs.targets);
}

fn huge_world(n: usize) -> World {
    let mut w = World::new()
        .unmanaged(Some("30d"), true)
        .at(t0() + days(400));
    for i in 0..n {
        w = w.want(
            want_api(&format!("service-{i:05}-with-a-rather-long-key"), "prod")
                .deliver(file(&format!("/etc/tokens/service-{i:05}/api-token"))),
        );
        w = w.live(
            "prod",
            api(
                &format!("dt0c01.UNUSED{i:05}XXXXXXXXXXXXXXX"),
                &format!("old hand-made token number {i}"),
            )
            .created(t0()),
        );
    }
    w
}

#[test]
fn markdown_never_exceeds_the_comment_limit() {
    let plan = huge_world(3_000).plan().unwrap();
    assert!(plan.steps.len() >= 9_000);
    let md = render(|o| plan_markdown(&plan, o).unwrap());
    assert!(md.len() <= MARKDOWN_LIMIT, "{} bytes", md.len());
    // Summary first, destructive actions called out, truncation explained, details closed.
    assert!(md.starts_with("### tokensmith plan\n\n**Plan: 3000 to create, 0 to update, 0 to rotate, 3000 to revoke. 3000 deliveries.**"));
    assert!(md.contains("Destructive actions (3000)"));
    assert!(md.contains("more destructive actions not shown"));
    assert_eq!(
        md.matches("<details>").count(),
        md.matches("</details>").count()
    );
    assert!(md.trim_end().ends_with("</sub>"));

    let inv = inventory(
        &huge_world(3_000).desired,
        &huge_world(3_000).live,
        t0() + days(400),
    );
    let md = render(|o| inventory_markdown(&inv, o).unwrap());
    assert!(md.len() <= MARKDOWN_LIMIT);
    assert!(md.contains("more tokens not shown"));

    let w = huge_world(3_000);
    let report = drift(&w.desired, &w.live, &w.targets, w.now);
    let md = render(|o| drift_markdown(&report, o).unwrap());
    assert!(md.len() <= MARKDOWN_LIMIT);
    assert!(md.contains("more drift items not shown"));
}

#[test]
fn small_markdown_is_not_truncated() {
    let plan = rotation_world().plan().unwrap();
    let md = render(|o| render_plan(&plan, Format::Markdown, o).unwrap());
    assert!(!md.contains("not shown"));
    assert!(md.contains("<details><summary>Steps (2)</summary>"));
}

#[test]
fn markdown_escapes_table_breaking_names() {
    let w = World::new()
        .unmanaged(Some("1d"), true)
        .at(t0() + days(10))
        .live(
            "prod",
            api("dt0c01.EVIL", "a | b <img src=x> `c`").created(t0()),
        );
    let plan = w.plan().unwrap();
    let md = render(|o| plan_markdown(&plan, o).unwrap());
    // The name only appears inside a code span (rendered literally), with the pipe escaped.
    assert!(md.contains("`` a \\| b <img src=x> `c` ``"), "{md}");
    // Prune disables first and renames: the new name is shown the same way.
    assert!(
        md.contains("`` a \\| b <img src=x> `c` (pruned) ``"),
        "{md}"
    );
    assert_eq!(md.matches("<img").count(), 2);
}

/// Nothing in any output looks like a full token (`dt0c01.<public>.<secret>`).
#[test]
fn no_output_contains_a_secret_shaped_string() {
    let w = rotation_world();
    let plan = w.plan().unwrap();
    let report = drift(&w.desired, &w.live, &w.targets, w.now);
    let inv = inventory(&w.desired, &w.live, w.now);
    let mut all = String::new();
    for color in [false, true] {
        all += &render(|o| plan_human(&plan, color, o).unwrap());
        all += &render(|o| tokensmith::render::drift_human(&report, color, o).unwrap());
        all += &render(|o| tokensmith::render::inventory_human(&inv, color, o).unwrap());
    }
    all += &render(|o| plan_json(&plan, o).unwrap());
    all += &render(|o| plan_markdown(&plan, o).unwrap());
    all += &render(|o| drift_markdown(&report, o).unwrap());
    all += &render(|o| inventory_markdown(&inv, o).unwrap());
    for word in all.split(|c: char| c.is_whitespace() || "\"`|,()[]".contains(c)) {
        if word.starts_with("dt0") {
            assert_eq!(word.matches('.').count(), 1, "secret-shaped: {word}");
        }
    }
}

#[test]
fn drift_and_inventory_markdown() {
    let w = rotation_world();
    let report = drift(&w.desired, &w.live, &w.targets, w.now);
    let inv = inventory(&w.desired, &w.live, w.now);
    insta::assert_snapshot!(
        "drift_markdown",
        render(|o| drift_markdown(&report, o).unwrap())
    );
    insta::assert_snapshot!(
        "inventory_markdown",
        render(|o| inventory_markdown(&inv, o).unwrap())
    );
    insta::assert_snapshot!(
        "scope_diff_human",
        render(|o| plan_human(&w.plan().unwrap(), false, o).unwrap())
    );
}

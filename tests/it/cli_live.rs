//! `plan`, `drift` and `inventory` end to end: the real binary against the embedded sandbox
//! (`sandbox://demo`), with the example spec copied into a temporary directory so the sandbox
//! state and delivered files stay there.

use std::path::PathBuf;

use crate::support::{text, tokensmith_in as tokensmith};

/// A copy of `examples/quickstart.yaml` in a fresh directory.
fn quickstart() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("tokensmith.yaml");
    std::fs::copy("examples/quickstart.yaml", &spec).unwrap();
    (dir, spec)
}

/// Anything shaped like a full Dynatrace token secret.
fn assert_no_secret(s: &str) {
    let bytes = s.as_bytes();
    for (i, _) in s.match_indices("dt0") {
        let rest = &s[i..];
        let parts: Vec<&str> = rest
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .next()
            .unwrap_or("")
            .split('.')
            .collect();
        assert!(
            !(parts.len() >= 3 && parts[2].len() >= 64),
            "a token secret leaked at byte {i} of {} bytes:\n{s}",
            bytes.len()
        );
    }
}

#[test]
fn plan_against_the_embedded_sandbox_creates_everything_on_a_fresh_state() {
    let (dir, _) = quickstart();
    let out = tokensmith(dir.path(), &["plan"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("+ create api_token ci in demo"), "{all}");
    assert!(all.contains("Plan: 3 to create"), "{all}");
    assert_no_secret(&all);
    // The sandbox persisted its state next to the spec.
    assert!(dir.path().join(".tokensmith/sandbox").is_dir());

    let out = tokensmith(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn plan_json_is_versioned_and_saved_plans_round_trip() {
    let (dir, _) = quickstart();
    let out = tokensmith(
        dir.path(),
        &["plan", "--format", "json", "--out", "plan.json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["format_version"], 1);
    let saved: tokensmith::plan::Plan =
        serde_json::from_slice(&std::fs::read(dir.path().join("plan.json")).unwrap()).unwrap();
    assert_eq!(saved.summary.create, 3);
    assert_eq!(serde_json::to_value(&saved).unwrap(), printed);
    assert_no_secret(&std::fs::read_to_string(dir.path().join("plan.json")).unwrap());
}

#[test]
fn plan_markdown_calls_out_changes() {
    let (dir, _) = quickstart();
    let out = tokensmith(dir.path(), &["plan", "--format", "markdown"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.contains("3 to create"), "{md}");
    assert!(md.len() <= tokensmith::render::MARKDOWN_LIMIT);
}

#[test]
fn drift_reports_missing_tokens_with_exit_2_and_inventory_classifies_live_tokens() {
    let (dir, _) = quickstart();
    let out = tokensmith(dir.path(), &["drift"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_no_secret(&text(&out));

    let out = tokensmith(dir.path(), &["inventory", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let inv: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(inv["format_version"].is_number(), "{inv}");
    assert_no_secret(&text(&out));
}

#[test]
fn unknown_env_selection_and_bad_spec_exit_1_with_located_errors() {
    let (dir, spec) = quickstart();
    let out = tokensmith(dir.path(), &["plan", "--env", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("nope"), "{}", text(&out));

    std::fs::write(&spec, "version: 1\nenvironments: {demo: {url: sandbox://demo}}\napi_tokens:\n  x:\n    environments: [demo]\n    scopes: [metrics.ingestt]\n").unwrap();
    let out = tokensmith(dir.path(), &["plan"]);
    assert_eq!(out.status.code(), Some(1));
    let all = text(&out);
    assert!(all.contains("tokensmith.yaml:6:"), "{all}");
    assert!(all.contains("metrics.ingest"), "{all}");
}

#[test]
fn drift_verify_values_reports_a_hand_edited_value_that_kept_its_comment() {
    let (dir, _) = quickstart();
    let out = tokensmith(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = tokensmith(dir.path(), &["drift", "--verify-values"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Replace the secret part of the delivered value by hand; the comment and the public id stay.
    let file = dir.path().join("out/ci-token.env");
    let before = std::fs::read_to_string(&file).unwrap();
    assert!(before.contains("# tokensmith: holds dt0c01."), "{before}");
    let line = before
        .lines()
        .find(|l| l.starts_with("DT_API_TOKEN="))
        .unwrap();
    let (public, _secret) = line.rsplit_once('.').unwrap();
    let edited = before.replace(line, &format!("{public}.{}", "X".repeat(64)));
    std::fs::write(&file, &edited).unwrap();

    // Without the flag the target still looks right: only the value tells.
    let out = tokensmith(dir.path(), &["drift"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = tokensmith(dir.path(), &["drift", "--verify-values"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("target_value_invalid"), "{all}");
    assert!(all.contains("file:out/ci-token.env#DT_API_TOKEN"), "{all}");
    assert_no_secret(&all);

    // A value with no public id at all, next to the kept comment.
    std::fs::write(&file, before.replace(line, "DT_API_TOKEN=pasted-by-hand")).unwrap();
    let out = tokensmith(
        dir.path(),
        &["drift", "--verify-values", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reasons: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["target_value_invalid"], "{report:#}");
}

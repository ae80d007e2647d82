//! `tokensmith sandbox clock advance|show` and `tokensmith sandbox seed` through the real binary,
//! on a copy of `examples/quickstart.yaml` (one `sandbox://demo`): a rotation brought due by the
//! clock, a state replaced by a seed, and the errors for a wrong name, several sandboxes without
//! `--name`, a bad duration and a seed without the sandbox's environment.

use std::process::Output;

use crate::support::{quickstart_dir as quickstart, text, tokensmith_in as tokensmith};

fn ok(out: &Output) -> String {
    let all = text(out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    all
}

fn failed(out: &Output) -> String {
    let all = text(out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    all
}

#[test]
fn advancing_the_clock_30d_brings_the_quickstart_rotation_due_and_apply_performs_it() {
    let dir = quickstart();
    let path = dir.path();
    ok(&tokensmith(path, &["apply", "--auto-approve"]));
    let plan = ok(&tokensmith(path, &["plan"]));
    assert!(plan.contains("No changes"), "{plan}");

    let advanced = ok(&tokensmith(path, &["sandbox", "clock", "advance", "30d"]));
    assert!(
        advanced.contains("sandbox://demo: clock advanced by 30d; sandbox time is now "),
        "{advanced}"
    );
    assert!(
        advanced.contains(".tokensmith/sandbox/demo.json"),
        "{advanced}"
    );
    let shown = ok(&tokensmith(path, &["sandbox", "clock", "show"]));
    assert!(
        shown.contains("30d 0h ahead of this machine's clock"),
        "{shown}"
    );

    let plan = ok(&tokensmith(path, &["plan"]));
    assert!(plan.contains("± rotate api_token ci in demo"), "{plan}");
    assert!(plan.contains("1 to rotate"), "{plan}");
    let apply = ok(&tokensmith(path, &["apply", "--auto-approve"]));
    assert!(apply.contains("0 failed"), "{apply}");
    let plan = ok(&tokensmith(path, &["plan"]));
    assert!(!plan.contains("± rotate"), "{plan}");
}

#[test]
fn seed_replaces_the_embedded_state_and_the_spec_still_reaches_it() {
    let dir = quickstart();
    let path = dir.path();
    ok(&tokensmith(path, &["apply", "--auto-approve"]));
    std::fs::write(
        path.join("seed.yaml"),
        "start_time: 2030-01-01T00:00:00Z\nfrozen_clock: true\nenvironments:\n  demo:\n    api_tokens:\n      - { name: seeded by hand, scopes: [metrics.ingest] }\n",
    )
    .unwrap();
    let seeded = ok(&tokensmith(
        path,
        &["sandbox", "seed", "seed.yaml", "--name", "demo"],
    ));
    assert!(
        seeded.contains("sandbox://demo: state replaced with the seed seed.yaml"),
        "{seeded}"
    );
    assert!(
        seeded.contains("sandbox time 2030-01-01T00:00:00"),
        "{seeded}"
    );

    let state = std::fs::read_to_string(path.join(".tokensmith/sandbox/demo.json")).unwrap();
    assert!(state.contains("seeded by hand"), "{state}");
    assert!(
        !state.contains("CI pipeline"),
        "the applied tokens are gone"
    );
    // The tokens the apply made are gone, so the plan creates them again, in the seed's time.
    let plan = ok(&tokensmith(path, &["plan"]));
    assert!(plan.contains("Plan: 3 to create"), "{plan}");
    assert!(plan.contains("2030-"), "{plan}");
    let inventory = ok(&tokensmith(path, &["inventory"]));
    assert!(inventory.contains("seeded by hand"), "{inventory}");
}

#[test]
fn errors_name_the_spec_the_seed_and_the_choices() {
    let dir = quickstart();
    let path = dir.path();
    let unknown = failed(&tokensmith(
        path,
        &["sandbox", "clock", "advance", "1d", "--name", "prod"],
    ));
    assert!(
        unknown.contains(
            "error: --name prod: tokensmith.yaml has no sandbox://prod; it has sandbox://demo"
        ),
        "{unknown}"
    );

    let bad = text(&tokensmith(path, &["sandbox", "clock", "advance", "30x"]));
    assert!(
        bad.contains("error: sandbox clock advance 30x: `30x` has an unknown unit `x`"),
        "{bad}"
    );
    let missing_seed_env = path.join("other.yaml");
    std::fs::write(&missing_seed_env, "environments:\n  abc12345: {}\n").unwrap();
    let refused = failed(&tokensmith(path, &["sandbox", "seed", "other.yaml"]));
    assert!(
        refused.contains("error: in other.yaml: the seed declares no environment `demo` for sandbox://demo (it declares abc12345)"),
        "{refused}"
    );
    // A refused seed changes nothing.
    assert!(!path.join(".tokensmith/sandbox/demo.json").exists());

    std::fs::write(
        path.join("two.yaml"),
        "version: 1\nenvironments:\n  demo: { url: sandbox://demo }\n  prod: { url: sandbox://prod }\n",
    )
    .unwrap();
    let several = failed(&tokensmith(
        path,
        &["sandbox", "clock", "show", "-f", "two.yaml"],
    ));
    assert!(
        several.contains(
            "error: two.yaml has several embedded sandboxes (sandbox://demo, sandbox://prod); pick one with --name"
        ),
        "{several}"
    );
    let picked = ok(&tokensmith(
        path,
        &[
            "sandbox", "clock", "advance", "36h", "-f", "two.yaml", "--name", "prod",
        ],
    ));
    assert!(
        picked.contains("sandbox://prod: clock advanced by 36h"),
        "{picked}"
    );
    assert!(path.join(".tokensmith/sandbox/prod.json").exists());
    assert!(!path.join(".tokensmith/sandbox/demo.json").exists());

    let no_sandbox = path.join("real.yaml");
    std::fs::write(
        &no_sandbox,
        "version: 1\nenvironments:\n  prod: { url: \"https://abc12345.live.dynatrace.com\", token_env: DT_TOKEN }\n",
    )
    .unwrap();
    let none = failed(&tokensmith(
        path,
        &["sandbox", "clock", "show", "-f", "real.yaml"],
    ));
    assert!(
        none.contains("error: real.yaml has no `sandbox://` environment"),
        "{none}"
    );
}

//! Two appliers, two machines: the apply lease kept in the environment (`lock::lease`). Two
//! checkouts of the same spec (separate directories, so separate local locks) apply
//! concurrently to one sandbox served on loopback, round after round with the clock advanced so
//! rotations happen; a lease left by a holder elsewhere blocks, names its holder, expires and
//! can be force-unlocked. Also the management token renamed to a managed marker outside
//! tokensmith: the plan names the conflict and leaves it alone.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::binary_world::{assert_no_secret, tok, World, ENV_ID, TOKEN_ENV};
use crate::support::{race, text, RaceOutcome};
use time::Duration;

/// Rotates every 2 days (expires 4d, rotate 2d before); the clock moves 2 days a round.
const ROTATING: &str = r#"
defaults:
  expires_in: 4d
  rotate_before: 2d
  grace: 0s
api_tokens:
  ci:
    name: ci
    environments: [demo]
    scopes: [metrics.ingest]
    deliver:
{DELIVER}
  ingest:
    name: ingest
    environments: [demo]
    scopes: [metrics.ingest]
    deliver:
{DELIVER_INGEST}
"#;

/// A second checkout of `w`'s spec, in a directory of its own.
fn checkout(w: &World) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        w.path("tokensmith.yaml"),
        dir.path().join("tokensmith.yaml"),
    )
    .unwrap();
    dir
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tokensmith"));
    c.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("CI", "1")
        .env(TOKEN_ENV, tok('A'));
    c
}

fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out: Output = command(dir, args).output().unwrap();
    let t = text(&out);
    assert_no_secret(&t);
    (out.status.code(), t)
}

/// Leases and their names in the sandbox.
fn leases(w: &World) -> Vec<String> {
    w.live()
        .into_iter()
        .filter(|t| {
            t.marker
                .as_ref()
                .is_some_and(|m| m.key.as_str() == "tokensmith.lease")
        })
        .map(|t| t.name)
        .collect()
}

/// Figures of one scenario.
#[derive(Debug, Default)]
struct Figures {
    rounds: usize,
    rotations_seen: usize,
    both_acted: usize,
    none_acted: usize,
    /// Runs that failed fast naming the other holder (`--lock-timeout 0s` rounds).
    backed_off: usize,
    /// Runs that waited and then found nothing to do (`--lock-timeout 60s` rounds).
    waited_idle: usize,
}

/// `rounds` rounds of two concurrent applies from two checkouts (failing fast on even rounds,
/// waiting on odd ones), checking after each: exactly one acted, the other backed off naming
/// the holder or waited and found nothing to do, no duplicate marker, every target holds a live enabled token (nothing revoked
/// under a target), no lease left, and the next plan is empty from both checkouts.
///
/// `targets` are the target files of `ci` and of `ingest`, under the first checkout's `out/`
/// and named by absolute path, so that both checkouts deliver to the same files.
fn two_checkouts(targets: [&[&str]; 2], rounds: usize) -> Figures {
    let w = World::new("");
    let deliver = |names: &[&str]| {
        names
            .iter()
            .map(|n| {
                format!(
                    "      - file: {{ path: \"{}\" }}",
                    w.path("out").join(n).display()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let spec = ROTATING
        .replace("{DELIVER}", &deliver(targets[0]))
        .replace("{DELIVER_INGEST}", &deliver(targets[1]));
    w.write_spec(&spec);
    let other = checkout(&w);
    let dirs = [w.dir.path().to_path_buf(), other.path().to_path_buf()];
    let mut figures = Figures::default();
    let mut ids_before = std::collections::BTreeSet::new();
    for round in 0..rounds {
        if round > 0 {
            w.advance(Duration::days(2));
        }
        let timeout = if round % 2 == 0 { "0s" } else { "60s" };
        let applies = dirs
            .iter()
            .map(|d| command(d, &["apply", "--auto-approve", "--lock-timeout", timeout]))
            .collect();
        let mut acted = 0;
        for (outcome, _) in race(
            applies,
            "environment `demo` is locked by",
            &format!("round {round}"),
            assert_no_secret,
        ) {
            match outcome {
                RaceOutcome::Acted => acted += 1,
                RaceOutcome::WaitedIdle => figures.waited_idle += 1,
                RaceOutcome::BackedOff => figures.backed_off += 1,
            }
        }
        match acted {
            0 => figures.none_acted += 1,
            2 => figures.both_acted += 1,
            _ => {}
        }
        let when = format!("round {round}");
        w.check_invariants(&when);
        assert_eq!(leases(&w), Vec::<String>::new(), "{when}: leases left");
        for d in &dirs {
            let (code, t) = run(d, &["plan", "--detailed-exitcode"]);
            assert_eq!(
                code,
                Some(0),
                "{when}: plan from {} not empty:\n{t}",
                d.display()
            );
        }
        let ids: std::collections::BTreeSet<String> = w
            .live()
            .into_iter()
            .filter(|t| t.enabled && t.marker.is_some())
            .map(|t| t.id)
            .collect();
        if round > 0 && ids != ids_before {
            figures.rotations_seen += 1;
        }
        ids_before = ids;
        figures.rounds += 1;
    }
    figures
}

#[test]
fn two_checkouts_with_shared_targets_never_both_act() {
    let f = two_checkouts([&["ci"], &["ingest"]], 20);
    println!("shared targets: {f:?}");
    assert_eq!(f.both_acted, 0, "{f:?}");
    assert_eq!(f.none_acted, 0, "{f:?}");
    assert!(
        f.rotations_seen >= 18,
        "the clock should rotate every round: {f:?}"
    );
}

#[test]
fn two_checkouts_with_separate_target_files_never_both_act() {
    // Each consumer has a file of its own; both are in the spec, so both appliers see both.
    let f = two_checkouts([&["a/ci", "b/ci"], &["a/ingest", "b/ingest"]], 20);
    println!("separate targets: {f:?}");
    assert_eq!(f.both_acted, 0, "{f:?}");
    assert_eq!(f.none_acted, 0, "{f:?}");
    assert!(
        f.rotations_seen >= 18,
        "the clock should rotate every round: {f:?}"
    );
}

/// Create a lease as another machine's apply would have left it, through the API.
fn foreign_lease(w: &World, active: bool, nonce: u32) {
    let state = if active { "active" } else { "pending" };
    let name = format!(
        "tokensmith apply lease {state} ci@elsewhere.example pid 4242 [ts:tokensmith.lease#{nonce}]"
    );
    let base = w.base.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let client = reqwest::Client::new();
        let auth = format!("Api-Token {}", tok('A'));
        let created: serde_json::Value = client
            .post(format!("{base}/api/v2/apiTokens"))
            .header("Authorization", &auth)
            .json(&serde_json::json!({
                "name": name,
                "scopes": ["apiTokens.read"],
                "expirationDate": "now+1h",
            }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap();
        client
            .put(format!("{base}/api/v2/apiTokens/{id}"))
            .header("Authorization", &auth)
            .json(&serde_json::json!({ "enabled": false }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    });
}

const ONE_TOKEN: &str = r#"
api_tokens:
  ci:
    name: ci
    environments: [demo]
    scopes: [metrics.ingest]
    expires_in: 30d
    rotate_before: 7d
    grace: 0s
    deliver:
      - file: { path: out/ci }
"#;

#[test]
fn a_lease_held_elsewhere_blocks_names_its_holder_and_can_be_force_unlocked() {
    let w = World::new(ONE_TOKEN);
    foreign_lease(&w, true, 1_234_567_890);
    let (code, t) = run(
        w.dir.path(),
        &["apply", "--auto-approve", "--lock-timeout", "0s"],
    );
    assert_eq!(code, Some(1), "{t}");
    assert!(t.contains("ci@elsewhere.example"), "{t}");
    assert!(t.contains("1234567890"), "{t}");
    assert!(t.contains("tokensmith force-unlock demo 1234567890"), "{t}");
    assert!(!w.path("out/ci").exists(), "nothing was delivered");
    // The planner neither plans to touch the lease nor counts it unmanaged.
    let (code, t) = run(w.dir.path(), &["plan"]);
    assert_eq!(code, Some(0), "{t}");
    assert!(!t.contains("tokensmith.lease"), "{t}");
    let (code, t) = run(w.dir.path(), &["inventory"]);
    assert_eq!(code, Some(0), "{t}");
    assert!(t.contains("1 tokensmith system token(s)"), "{t}");
    assert!(!t.contains("deletion candidate)"), "{t}");

    let (code, t) = run(w.dir.path(), &["force-unlock", "demo", "999"]);
    assert_eq!(code, Some(1), "{t}");
    assert!(t.contains("nothing was released"), "{t}");
    let (code, t) = run(w.dir.path(), &["force-unlock", "demo", "1234567890"]);
    assert_eq!(code, Some(0), "{t}");
    assert!(t.contains("ci@elsewhere.example"), "{t}");
    assert!(leases(&w).is_empty());
    let (code, t) = run(
        w.dir.path(),
        &["apply", "--auto-approve", "--lock-timeout", "0s"],
    );
    assert_eq!(code, Some(0), "{t}");
    assert!(leases(&w).is_empty(), "the apply deleted its own lease");
    w.check_invariants("after force-unlock");
}

#[test]
fn an_expired_lease_is_ignored_and_cleared() {
    let w = World::new(ONE_TOKEN);
    foreign_lease(&w, true, 2_000_000_001);
    w.advance(Duration::hours(2));
    let (code, t) = run(
        w.dir.path(),
        &["apply", "--auto-approve", "--lock-timeout", "0s"],
    );
    assert_eq!(code, Some(0), "{t}");
    assert!(leases(&w).is_empty(), "the expired lease was cleared");
    w.check_invariants("after an expired lease");
}

#[test]
fn a_waiting_apply_goes_on_when_the_holder_releases() {
    let w = World::new(ONE_TOKEN);
    foreign_lease(&w, false, 1_500_000_000);
    // Strictly older than the apply's lease (at one frozen instant the token ids decide).
    w.advance(Duration::minutes(1));
    let child = command(
        w.dir.path(),
        &["apply", "--auto-approve", "--lock-timeout", "30s"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        !w.path("out/ci").exists(),
        "the apply waits for the older lease"
    );
    let (code, t) = run(w.dir.path(), &["force-unlock", "demo", "1500000000"]);
    assert_eq!(code, Some(0), "{t}");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(w.path("out/ci").exists());
    assert!(leases(&w).is_empty());
}

#[test]
fn a_management_token_renamed_to_a_managed_marker_is_left_alone() {
    let w = World::new(ONE_TOKEN);
    let (code, t) = run(w.dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(code, Some(0), "{t}");
    // Someone renames the management token to carry the marker of `ci`, a newer generation.
    let admin = crate::support::id_of(&tok('A'));
    w.sandbox
        .update(|s| {
            let env = s.env_mut(ENV_ID).unwrap();
            env.api_tokens.get_mut(&admin).unwrap().name = "admin [ts:ci#7]".to_owned();
        })
        .unwrap();
    let (code, t) = run(w.dir.path(), &["plan", "--detailed-exitcode"]);
    assert!(t.contains(&admin), "the conflict names the token: {t}");
    assert!(t.contains("[ts:ci#7]") && t.contains("`ci`"), "{t}");
    assert!(!t.contains(&format!("disable {admin}")), "{t}");
    assert_eq!(code, Some(0), "the rest is in order; nothing to do:\n{t}");

    // Rotations go on for the key, with generations past the management token's marker.
    w.advance(Duration::days(25));
    let (code, t) = run(w.dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(code, Some(0), "{t}");
    let (code, t) = run(w.dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "the next plan is stable:\n{t}");
    let admin_now = w.live().into_iter().find(|t| t.id == admin).unwrap();
    assert!(admin_now.enabled, "the management token stays enabled");
    assert_eq!(admin_now.name, "admin [ts:ci#7]");
    assert!(
        w.live()
            .iter()
            .any(|t| t.enabled && t.name.ends_with("[ts:ci#8]")),
        "the successor is generation 8: {:#?}",
        w.live()
    );
    w.check_invariants("after the rotation");
}

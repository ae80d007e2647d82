//! The GitOps commands end to end (issue 6): `plan --base`, `--spec-ref`, stale-commit and
//! stale-live refusal of saved plans, both kinds of apply lock with two appliers running at
//! once, metrics output and GitHub annotations. The real binary runs against the embedded
//! sandbox (`sandbox://demo`) with a copy of `examples/quickstart.yaml` in a temporary git
//! repository; the sandbox keeps its state in `.tokensmith/sandbox/demo.json` next to the spec,
//! which the tests read to see what was really created.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::support::text;
use std::time::Duration;

use tokensmith::lock::FileLocks;
use tokensmith::model::EnvName;

const SPEC: &str = "tokensmith.yaml";
const CI_SCOPES: &str = "scopes: [metrics.ingest, events.ingest, entities.read]";

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = crate::support::command_in(dir, args);
    cmd.env("GIT_TERMINAL_PROMPT", "0");
    cmd
}

fn tokensmith(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().expect("tokensmith runs")
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    command(dir, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tokensmith starts")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A git repository (made with git2) holding a copy of the quickstart spec, committed once.
/// `.tokensmith/`, delivered files and plans are ignored, as a real repository would.
fn quickstart_repo() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("examples/quickstart.yaml", dir.path().join(SPEC)).unwrap();
    std::fs::write(
        dir.path().join(".gitignore"),
        ".tokensmith/\nout/\n*.json\n*.txt\n",
    )
    .unwrap();
    git2::Repository::init(dir.path()).unwrap();
    let first = commit(dir.path(), "quickstart");
    (dir, first)
}

/// Commit the spec and `.gitignore` on top of HEAD (if any); returns the new commit id.
fn commit(dir: &Path, message: &str) -> String {
    commit_with(dir, &[], message)
}

/// [`commit`], with the files `extra` (paths in the repository) too.
fn commit_with(dir: &Path, extra: &[&str], message: &str) -> String {
    let repo = git2::Repository::open(dir).unwrap();
    let mut index = repo.index().unwrap();
    for path in [SPEC, ".gitignore"].iter().chain(extra) {
        index.add_path(Path::new(path)).unwrap();
    }
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let who = git2::Signature::now("t", "t@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &who, &who, message, &tree, &parents)
        .unwrap()
        .to_string()
}

fn edit_spec(dir: &Path, edit: impl FnOnce(String) -> String) {
    let path = dir.join(SPEC);
    let before = std::fs::read_to_string(&path).unwrap();
    let after = edit(before.clone());
    assert_ne!(before, after, "the edit changed nothing");
    std::fs::write(&path, after).unwrap();
}

/// Give `ci` one more scope and add a token `extra`.
fn add_token_and_scope(spec: String) -> String {
    assert!(spec.contains(CI_SCOPES));
    spec.replace(
        CI_SCOPES,
        "scopes: [metrics.ingest, events.ingest, entities.read, logs.ingest]",
    )
    .replace("activegate_tokens:", &token_yaml("extra"))
}

/// An API token entry, followed by the `activegate_tokens:` line it is inserted before.
fn token_yaml(key: &str) -> String {
    format!(
        "  {key}:\n    name: {key} token\n    environments: [demo]\n    scopes: [metrics.ingest]\n    deliver:\n      - file: {{ path: out/{key}-token }}\n\nactivegate_tokens:"
    )
}

/// The sandbox's persisted state.
fn sandbox_state(dir: &Path) -> serde_json::Value {
    let bytes = std::fs::read(dir.join(".tokensmith/sandbox/demo.json")).unwrap();
    serde_json::from_slice(&bytes).expect("the sandbox state is valid JSON")
}

/// How many live tokens (API and ActiveGate) carry each marker `[ts:KEY#GEN]`; `None` when
/// no sandbox was ever started.
fn markers(dir: &Path) -> Option<BTreeMap<String, usize>> {
    if !dir.join(".tokensmith/sandbox/demo.json").exists() {
        return None;
    }
    let state = sandbox_state(dir);
    let env = &state["environments"]["demo"];
    let mut out = BTreeMap::new();
    for kind in ["api_tokens", "activegate_tokens"] {
        for token in env[kind].as_object().unwrap().values() {
            let name = token["name"].as_str().unwrap();
            if let Some(start) = name.find("[ts:") {
                *out.entry(name[start..].to_owned()).or_default() += 1;
            }
        }
    }
    Some(out)
}

/// Exactly the quickstart's tokens, each applied once.
fn assert_applied_once(dir: &Path) {
    let found = markers(dir).expect("the sandbox has a state");
    let expected: BTreeMap<String, usize> = ["[ts:ci#1]", "[ts:data-ingest#1]", "[ts:ag-local#1]"]
        .into_iter()
        .map(|m| (m.to_owned(), 1))
        .collect();
    assert_eq!(found, expected);
}

fn api_token_ids(dir: &Path) -> Vec<String> {
    let state = sandbox_state(dir);
    state["environments"]["demo"]["api_tokens"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

fn assert_nothing_to_do(dir: &Path) {
    let out = tokensmith(dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

fn read_plan(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap()
}

#[test]
fn plan_base_shows_the_desired_state_diff_in_human_and_markdown() {
    let (dir, _) = quickstart_repo();
    let root = dir.path();
    edit_spec(root, add_token_and_scope);
    commit(root, "add extra, widen ci");

    let out = tokensmith(root, &["plan", "--base", "HEAD~1"]);
    let human = text(&out);
    assert_eq!(out.status.code(), Some(0), "{human}");
    assert!(
        human.contains("Desired state changes (HEAD~1 → working tree)"),
        "{human}"
    );
    assert!(human.contains("+ api_token demo/extra"), "{human}");
    assert!(human.contains("~ api_token demo/ci"), "{human}");
    assert!(human.contains("scopes: +logs.ingest"), "{human}");
    assert!(
        human.contains("Desired tokens: 1 added, 1 changed, 0 removed."),
        "{human}"
    );
    // The live plan comes first and still plans the new token.
    let live = human
        .find("+ create api_token extra in demo")
        .expect(&human);
    assert!(
        live < human.find("Desired state changes").unwrap(),
        "{human}"
    );

    let out = tokensmith(root, &["plan", "--base", "HEAD~1", "--format", "markdown"]);
    let md = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        md.contains("#### Desired state changes (`HEAD~1` → `working tree`)"),
        "{md}"
    );
    assert!(
        md.contains("**Desired tokens: 1 added, 1 changed, 0 removed.**"),
        "{md}"
    );
    assert!(md.contains("`api_token demo/extra`"), "{md}");
    assert!(md.contains("`scopes: +logs.ingest`"), "{md}");
    // In the PR comment what the reviewer changed comes before the plan's details, and the
    // two stay within one GitHub comment.
    let changes = md.find("#### Desired state changes").unwrap();
    assert!(md.starts_with("### tokensmith plan\n"), "{md}");
    let plan = md.find("#### What apply will do").expect(&md);
    assert!(changes < plan, "{md}");
    assert!(md.len() <= 65_536, "{}", md.len());

    // Against itself: no desired-state change.
    let out = tokensmith(root, &["plan", "--base", "HEAD"]);
    assert!(
        text(&out).contains("No changes to the desired state."),
        "{}",
        text(&out)
    );
    // An unknown ref is an error naming it.
    let out = tokensmith(root, &["plan", "--base", "no-such-ref"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no-such-ref"), "{}", text(&out));
}

#[test]
fn spec_ref_plans_the_committed_spec_not_the_working_tree() {
    let (dir, first) = quickstart_repo();
    let root = dir.path();
    edit_spec(root, add_token_and_scope);
    let second = commit(root, "add extra");
    // Uncommitted work on top.
    edit_spec(root, |s| {
        s.replace("activegate_tokens:", &token_yaml("wip"))
    });

    let out = tokensmith(root, &["plan", "--spec-ref", "HEAD~1", "--out", "old.json"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("+ create api_token ci in demo"), "{all}");
    assert!(all.contains("Plan: 3 to create"), "{all}");
    assert!(!all.contains("extra") && !all.contains("wip"), "{all}");
    let plan = read_plan(root, "old.json");
    assert_eq!(plan["inputs"]["spec_commit"], first.as_str());
    assert_eq!(plan["inputs"]["dirty"], false);

    // By branch name too: the newer commit, still without the uncommitted token.
    let out = tokensmith(root, &["plan", "--spec-ref", "HEAD", "--out", "head.json"]);
    let all = text(&out);
    assert!(all.contains("+ create api_token extra in demo"), "{all}");
    assert!(!all.contains("wip"), "{all}");
    let plan = read_plan(root, "head.json");
    assert_eq!(plan["inputs"]["spec_commit"], second.as_str());
    assert_eq!(plan["inputs"]["dirty"], false);

    // The working tree: everything, recorded as dirty on the newer commit.
    let out = tokensmith(root, &["plan", "--out", "tree.json"]);
    let all = text(&out);
    assert!(all.contains("+ create api_token wip in demo"), "{all}");
    let plan = read_plan(root, "tree.json");
    assert_eq!(plan["inputs"]["spec_commit"], second.as_str());
    assert_eq!(plan["inputs"]["dirty"], true);
    assert_ne!(
        read_plan(root, "old.json")["inputs"]["spec"],
        plan["inputs"]["spec"]
    );
}

#[test]
fn a_plan_from_another_commit_is_refused_and_the_override_still_checks_freshness() {
    let (dir, first) = quickstart_repo();
    let root = dir.path();
    let out = tokensmith(root, &["plan", "--out", "plan.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        read_plan(root, "plan.json")["inputs"]["spec_commit"],
        first.as_str()
    );
    let before = api_token_ids(root);

    edit_spec(root, add_token_and_scope);
    let second = commit(root, "add extra");

    let out = tokensmith(root, &["apply", "plan.json", "--auto-approve"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains(&first), "{all}");
    assert!(all.contains(&second), "{all}");
    assert!(all.contains("--allow-other-commit"), "{all}");
    assert_eq!(api_token_ids(root), before, "nothing was created");

    let out = tokensmith(
        root,
        &[
            "apply",
            "plan.json",
            "--auto-approve",
            "--allow-other-commit",
        ],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    // The new token's target is part of the spec now, so the targets differ as well.
    assert!(all.contains("the plan is stale: the spec"), "{all}");
    assert!(!all.contains("the live tokens"), "{all}");
    assert_eq!(api_token_ids(root), before, "nothing was created");
    assert!(!root.join("out").exists(), "nothing was delivered");
    // Both refusals released the lock.
    assert!(!root.join(".tokensmith/locks/demo.lock").exists());
}

#[test]
fn a_plan_whose_live_state_changed_is_refused_naming_live() {
    let (dir, _) = quickstart_repo();
    let root = dir.path();
    let out = tokensmith(root, &["plan", "--out", "plan.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Another pipeline applies first.
    let out = tokensmith(root, &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_applied_once(root);

    let out = tokensmith(root, &["apply", "plan.json", "--auto-approve"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("the plan is stale"), "{all}");
    assert!(all.contains("the live tokens in Dynatrace"), "{all}");
    assert_applied_once(root);
}

/// Two `apply` processes started together on the same spec; returns their outputs.
fn race(dir: &Path, args: &[&str]) -> (Output, Output) {
    let a = spawn(dir, args);
    let b = spawn(dir, args);
    (a.wait_with_output().unwrap(), b.wait_with_output().unwrap())
}

/// Without waiting: one applies; the other either failed cleanly on the lock or (if it started
/// after the first finished) found nothing to do.
fn assert_one_won(a: &Output, b: &Output, what: &str) {
    let codes = [a.status.code(), b.status.code()];
    assert!(
        codes.contains(&Some(0)),
        "{what}: nobody applied:\n{}\n---\n{}",
        text(a),
        text(b)
    );
    for o in [a, b] {
        match o.status.code() {
            Some(0) => {}
            Some(1) => {
                let all = text(o);
                assert!(all.contains("environment `demo` is locked by"), "{all}");
                assert!(all.contains("tokensmith force-unlock demo "), "{all}");
                assert!(!all.contains("panicked"), "{all}");
            }
            other => panic!("{what}: unexpected exit {other:?}:\n{}", text(o)),
        }
    }
}

#[test]
fn two_local_appliers_at_once_never_apply_twice() {
    // Fail fast: the loser fails cleanly. A few rounds, since who wins and when the loser
    // looks at the lock varies from run to run.
    for round in 0..5 {
        let (dir, _) = quickstart_repo();
        let root = dir.path();
        let (a, b) = race(root, &["apply", "--auto-approve"]);
        assert_one_won(&a, &b, &format!("local lock, round {round}"));
        assert_applied_once(root);
        assert_nothing_to_do(root);
        let left: Vec<_> = std::fs::read_dir(root.join(".tokensmith/locks"))
            .unwrap()
            .collect();
        assert!(
            left.is_empty(),
            "no lock or temporary file is left: {left:?}"
        );
    }

    // Waiting: both succeed, the second finds nothing to do.
    let (dir, _) = quickstart_repo();
    let root = dir.path();
    let (a, b) = race(root, &["apply", "--auto-approve", "--lock-timeout", "30s"]);
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    let created = |o: &Output| text(o).contains("+ create api_token ci in demo");
    assert!(
        created(&a) != created(&b),
        "exactly one run creates:\n{}\n---\n{}",
        text(&a),
        text(&b)
    );
    assert_applied_once(root);
    assert_nothing_to_do(root);
}

#[test]
fn a_leftover_local_lock_blocks_apply_until_force_unlocked_with_its_id() {
    let (dir, _) = quickstart_repo();
    let root = dir.path();
    let locks = FileLocks::new(root.join(".tokensmith/locks"));
    let guard = locks
        .acquire(
            &EnvName::new("demo"),
            Some("abc1234".into()),
            Duration::ZERO,
        )
        .unwrap();
    let id = guard.info().id.clone();
    // The holder "crashed": its lock stays.
    std::mem::forget(guard);

    let out = tokensmith(root, &["apply", "--auto-approve"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("environment `demo` is locked by"), "{all}");
    assert!(all.contains(&format!("lock {id}")), "{all}");
    assert!(all.contains("commit abc1234"), "{all}");
    assert!(
        all.contains(&format!("tokensmith force-unlock demo {id}")),
        "{all}"
    );
    assert!(
        markers(root).unwrap_or_default().is_empty(),
        "nothing was applied"
    );

    let out = tokensmith(root, &["force-unlock", "demo", "000000000000"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("nothing was released"), "{all}");
    assert!(locks.current(&EnvName::new("demo")).unwrap().is_some());

    let out = tokensmith(root, &["force-unlock", "demo", &id]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains(&format!("released lock {id}")), "{all}");
    assert!(locks.current(&EnvName::new("demo")).unwrap().is_none());

    let out = tokensmith(root, &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_applied_once(root);

    // Nothing left to unlock.
    let out = tokensmith(root, &["force-unlock", "demo", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("has no lock"), "{}", text(&out));
}

/// A repository whose `origin` is a bare repository on disk.
fn repo_with_origin() -> (tempfile::TempDir, tempfile::TempDir) {
    let (dir, _) = quickstart_repo();
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "-q", "--bare"]);
    let url = remote.path().to_str().unwrap().to_owned();
    git(dir.path(), &["remote", "add", "origin", &url]);
    (dir, remote)
}

fn remote_locks(dir: &Path) -> String {
    git(dir, &["ls-remote", "origin", "refs/tokensmith/locks/*"])
}

#[test]
fn two_appliers_with_a_git_remote_lock_never_apply_twice() {
    let (dir, _remote) = repo_with_origin();
    let root = dir.path();
    let (a, b) = race(
        root,
        &["apply", "--auto-approve", "--lock-remote", "origin"],
    );
    assert_one_won(&a, &b, "remote lock");
    assert_applied_once(root);
    assert_nothing_to_do(root);
    assert_eq!(remote_locks(root), "", "the lock ref was released");
    // No local lock file was used.
    assert!(!root.join(".tokensmith/locks").exists());

    let (dir, _remote) = repo_with_origin();
    let root = dir.path();
    let (a, b) = race(
        root,
        &[
            "apply",
            "--auto-approve",
            "--lock-remote",
            "origin",
            "--lock-timeout",
            "30s",
        ],
    );
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    assert_applied_once(root);
    assert_nothing_to_do(root);
    assert_eq!(remote_locks(root), "", "the lock ref was released");
}

/// `git`, which a remote lock runs with this process's environment (for its credential helpers,
/// ssh agent and proxies), gets neither a variable whose value holds a Dynatrace token nor one
/// the spec names as a credential. A `git` first on `PATH` records its environment and hands
/// over to the real one.
#[test]
fn git_for_a_remote_lock_gets_no_management_token_in_its_environment() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, _remote) = repo_with_origin();
    let root = dir.path();
    // The spec names a credential variable; blank, so the sandbox's own token is used.
    let spec = std::fs::read_to_string(root.join(SPEC)).unwrap().replace(
        "    url: sandbox://demo",
        "    url: sandbox://demo\n    token_env: DT_DEMO_TOKEN",
    );
    assert!(spec.contains("token_env: DT_DEMO_TOKEN"));
    std::fs::write(root.join(SPEC), spec).unwrap();
    commit(root, "name the token variable");

    let real_git = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let bin = tempfile::tempdir().unwrap();
    let dump = bin.path().join("git-env");
    std::fs::write(
        bin.path().join("git"),
        format!(
            "#!/bin/sh\nenv >> \"{}\"\nexec {} \"$@\"\n",
            dump.display(),
            real_git.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.path().join("git"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    );
    let secret = format!("dt0c01.ST2EY72KQINMH574WMNVI7YN.{}", "G3DF".repeat(16));
    let out = command(
        root,
        &["apply", "--auto-approve", "--lock-remote", "origin"],
    )
    .env("PATH", path)
    .env("SOME_OTHER_TOOL_TOKEN", &secret)
    .env("DT_DEMO_TOKEN", "   ")
    .env("TS_VISIBLE", "kept")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_applied_once(root);
    assert_nothing_to_do(root);
    let env = std::fs::read_to_string(&dump).unwrap();
    assert!(
        env.contains("TS_VISIBLE=kept\n"),
        "git ran with the rest: {env}"
    );
    assert!(!env.contains("G3DFG3DF"), "{env}");
    assert!(!env.contains("SOME_OTHER_TOOL_TOKEN"), "{env}");
    assert!(!env.contains("DT_DEMO_TOKEN"), "{env}");
}

/// The lines of OpenMetrics text, checked for the terminator.
fn openmetrics(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    text
}

#[test]
fn plan_and_drift_write_openmetrics_and_drift_sends_points_to_the_sandbox() {
    let (dir, _) = quickstart_repo();
    let root = dir.path();
    let out = tokensmith(root, &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = tokensmith(root, &["plan", "--metrics-file", "plan-metrics.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let m = openmetrics(&root.join("plan-metrics.txt"));
    assert!(
        m.contains("# TYPE tokensmith_token_days_to_expiry gauge"),
        "{m}"
    );
    let expiry: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("tokensmith_token_days_to_expiry{"))
        .collect();
    assert_eq!(expiry.len(), 3, "{m}");
    let ci = expiry.iter().find(|l| l.contains("key=\"ci\"")).expect(&m);
    let days: f64 = ci.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((29.0..=30.0).contains(&days), "{ci}");
    assert!(!root.join("plan-metrics.tmp").exists());

    let out = tokensmith(root, &["drift", "--metrics-file", "drift-metrics.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let m = openmetrics(&root.join("drift-metrics.txt"));
    assert!(m.contains("tokensmith_token_days_to_expiry{"), "{m}");
    assert!(m.contains("\ntokensmith_drift_items 0\n"), "{m}");

    // Drift: remove a delivered file, then send the numbers to the environment.
    std::fs::remove_file(root.join("out/data-ingest-token")).unwrap();
    let out = tokensmith(root, &["drift", "--send-metrics"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("metric line(s) to environment `demo`"),
        "{all}"
    );
    let state = sandbox_state(root);
    let points = state["environments"]["demo"]["data_points"]
        .as_array()
        .expect("data points were stored");
    let expiry = points
        .iter()
        .filter(|p| p["metricKey"] == "tokensmith.token.days_to_expiry")
        .count();
    assert_eq!(expiry, 3, "{points:?}");
    assert!(
        points
            .iter()
            .any(|p| p["metricKey"] == "tokensmith.token.days_to_expiry"
                && p["dimensions"]["key"] == "ci"
                && p["dimensions"]["env"] == "demo"),
        "{points:?}"
    );
    let drift = points
        .iter()
        .find(|p| p["metricKey"] == "tokensmith.drift.items")
        .expect("the drift count was sent");
    assert!(drift["value"].as_f64().unwrap() >= 1.0, "{drift}");
}

#[test]
fn validate_github_format_annotates_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let spec: PathBuf = dir.path().join(SPEC);
    std::fs::write(
        &spec,
        "version: 1\nenvironments: {demo: {url: sandbox://demo}}\napi_tokens:\n  x:\n    environments: [demo]\n    scopes: [metrics.ingestt]\n",
    )
    .unwrap();
    let out = tokensmith(dir.path(), &["validate", "--format", "github"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let errors: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("::error "))
        .collect();
    assert!(!errors.is_empty(), "{stdout}");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("file=tokensmith.yaml") && l.contains("line=6")),
        "{stdout}"
    );
    assert!(stdout.contains("metrics.ingest"), "{stdout}");

    // A valid spec: no error annotation, exit 0.
    std::fs::copy("examples/quickstart.yaml", &spec).unwrap();
    let out = tokensmith(dir.path(), &["validate", "--format", "github"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("::error"));
}

/// An API token `probe` whose exec target's read command leaves a file behind when it runs.
fn probe_token(spec: String) -> String {
    spec.replace(
        "activegate_tokens:",
        "  probe:\n    name: probe token\n    environments: [demo]\n    scopes: [metrics.ingest]\n    deliver:\n      - exec: { command: [\"true\"], secret_env: TOKEN, read_command: [touch, command-ran] }\n\nactivegate_tokens:",
    )
}

#[test]
fn plan_base_does_not_run_read_commands_new_against_the_base_and_no_exec_runs_none() {
    let (dir, _) = quickstart_repo();
    let root = dir.path();
    edit_spec(root, probe_token);
    let ran = root.join("command-ran");

    let out = tokensmith(root, &["plan", "--base", "HEAD"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!ran.exists(), "a read command new against the base ran");
    assert!(
        text(&out).contains("new or changed against `HEAD` and was not run; treated as write-only"),
        "{}",
        text(&out)
    );
    let out = tokensmith(root, &["plan", "--base", "HEAD", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        plan["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "read_command_not_run"),
        "{plan}"
    );

    for args in [
        &["plan", "--no-exec"][..],
        &["drift", "--no-exec"],
        &["inventory", "--no-exec"],
    ] {
        let out = tokensmith(root, args);
        assert!(!ran.exists(), "{args:?} ran a spec command: {}", text(&out));
        assert!(
            text(&out).contains("(--no-exec)"),
            "{args:?}: {}",
            text(&out)
        );
    }

    // Once the command is part of the base, it is trusted and runs.
    commit(root, "add probe");
    let out = tokensmith(root, &["plan", "--base", "HEAD"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        ran.exists(),
        "a read command unchanged against the base did not run"
    );
}

/// The line of a read command can stay as it was while the script it runs changes: a pull
/// request that rewrites `reader.sh` (here to leave a second file, as it could read the
/// process's environment) does not get it run by `plan --base`, nor one that adds a script an
/// unchanged line names. Once merged (committed), the script is trusted again.
#[test]
fn plan_base_does_not_run_an_unchanged_read_command_whose_script_changed() {
    let (dir, _) = quickstart_repo();
    let root = dir.path();
    std::fs::write(root.join("reader.sh"), "touch command-ran\n").unwrap();
    edit_spec(root, |spec| {
        probe_token(spec)
            .replace("read_command: [touch, command-ran]", "read_command: [sh, reader.sh]")
            .replace(
                "activegate_tokens:",
                "  probe2:\n    name: probe token 2\n    environments: [demo]\n    scopes: [metrics.ingest]\n    deliver:\n      - exec: { command: [\"true\", \"2\"], secret_env: TOKEN, read_command: [sh, ./scripts/later.sh] }\n\nactivegate_tokens:",
            )
    });
    commit_with(root, &["reader.sh"], "probe with a script");
    let ran = root.join("command-ran");
    let out = tokensmith(root, &["plan", "--base", "HEAD"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(ran.exists(), "the committed script runs: {}", text(&out));
    std::fs::remove_file(&ran).unwrap();

    // The pull request: the spec's lines stay, the script changes and the missing one appears.
    std::fs::write(root.join("reader.sh"), "touch command-ran\ntouch stolen\n").unwrap();
    std::fs::create_dir(root.join("scripts")).unwrap();
    std::fs::write(root.join("scripts/later.sh"), "touch stolen-later\n").unwrap();
    let out = tokensmith(root, &["plan", "--base", "HEAD"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for file in ["command-ran", "stolen", "stolen-later"] {
        assert!(!root.join(file).exists(), "{file}: {}", text(&out));
    }
    for named in ["reader.sh", "./scripts/later.sh"] {
        assert!(
            text(&out).contains(&format!(
                "its read_command runs `{named}`, which is new or changed against `HEAD`; it was not run"
            )),
            "{named}: {}",
            text(&out)
        );
    }

    commit_with(root, &["reader.sh", "scripts/later.sh"], "new scripts");
    let out = tokensmith(root, &["plan", "--base", "HEAD"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for file in ["command-ran", "stolen", "stolen-later"] {
        assert!(
            root.join(file).exists(),
            "{file} once merged: {}",
            text(&out)
        );
    }
}

#[test]
fn apply_in_markdown_is_an_apply_report_with_its_result() {
    let (dir, _) = quickstart_repo();
    let root = dir.path();
    let out = tokensmith(root, &["apply", "--auto-approve", "--format", "markdown"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout.starts_with("### tokensmith apply\n"), "{stdout}");
    assert!(!stdout.contains("### tokensmith plan"), "{stdout}");
    assert!(stdout.contains("#### Result"), "{stdout}");
    assert!(stdout.contains("**Apply complete:**"), "{stdout}");
    assert!(stdout.contains(" 0 failed, 0 skipped."), "{stdout}");
    // The lock is announced on stderr when taken and when let go.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let taken = stderr.find("lock acquired: `demo` (lock ").expect(&stderr);
    let released = stderr.find("lock released: `demo` (lock ").expect(&stderr);
    assert!(taken < released, "{stderr}");
}

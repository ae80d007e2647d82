//! Saved plans apply on their own (issue 14): `plan -f examples/quickstart.yaml --out p.plan`
//! records where the spec is (relative to the repository root, and absolute), and
//! `apply p.plan --auto-approve` finds it from the repository root, from a subdirectory, from
//! outside the repository, and in a copy of the checkout at another place; a plan made at
//! `--spec-ref` applies the spec of that commit. The real binary runs
//! against the embedded sandbox, whose state lives next to the spec.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{text, tokensmith_in as tokensmith};

const SPEC: &str = "examples/quickstart.yaml";

/// A git repository with the quickstart at `examples/quickstart.yaml`, committed.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("examples")).unwrap();
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::copy("examples/quickstart.yaml", root.join(SPEC)).unwrap();
    std::fs::write(root.join(".gitignore"), ".tokensmith/\nout/\n*.plan\n").unwrap();
    let repo = git2::Repository::init(root).unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(Path::new(SPEC)).unwrap();
    index.add_path(Path::new(".gitignore")).unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let who = git2::Signature::now("t", "t@example.com").unwrap();
    repo.commit(Some("HEAD"), &who, &who, "quickstart", &tree, &[])
        .unwrap();
    dir
}

/// The API tokens the sandbox next to the spec under `root` holds.
fn api_tokens(root: &Path) -> usize {
    let path = root.join("examples/.tokensmith/sandbox/demo.json");
    let Ok(bytes) = std::fs::read(path) else {
        return 0;
    };
    let state: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    state["environments"]["demo"]["api_tokens"]
        .as_object()
        .map_or(0, |tokens| tokens.len())
}

/// Plan from the root into `p.plan`; the hint names the command that is then run.
fn plan(root: &Path) {
    let out = tokensmith(root, &["plan", "-f", SPEC, "--out", "p.plan"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("run `tokensmith apply p.plan`"), "{all}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("p.plan")).unwrap()).unwrap();
    assert_eq!(saved["spec"]["path_in_repository"], SPEC, "{saved}");
}

/// `out` succeeded and created tokens in the sandbox under `root`, which held `before`.
fn assert_applied(out: &Output, root: &Path, before: usize) {
    let all = text(out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains("cannot read"), "{all}");
    assert!(api_tokens(root) > before, "tokens were created: {all}");
    assert!(
        root.join("examples/out").is_dir(),
        "values delivered: {all}"
    );
    // The journal is named where it is, whichever directory the apply ran from.
    let journal = std::fs::canonicalize(root.join("examples/.tokensmith/journal.jsonl")).unwrap();
    assert!(
        all.contains(&format!("journal: {}\n", journal.display())),
        "{all}"
    );
}

#[test]
fn a_saved_plan_applies_from_the_repository_root_without_f() {
    let dir = repo();
    let root = dir.path();
    plan(root);
    let before = api_tokens(root);
    let out = tokensmith(root, &["apply", "p.plan", "--auto-approve"]);
    assert_applied(&out, root, before);
}

#[test]
fn a_saved_plan_applies_from_a_subdirectory_and_from_outside_the_repository() {
    let dir = repo();
    let root = dir.path();
    plan(root);
    let before = api_tokens(root);
    let out = tokensmith(
        &root.join("docs"),
        &["apply", "../p.plan", "--auto-approve"],
    );
    assert_applied(&out, root, before);

    // Once applied, a second saved plan applies from a directory outside the repository.
    let dir = repo();
    let root = dir.path();
    plan(root);
    let before = api_tokens(root);
    let elsewhere = tempfile::tempdir().unwrap();
    let plan_path = root.join("p.plan");
    let out = tokensmith(
        elsewhere.path(),
        &["apply", plan_path.to_str().unwrap(), "--auto-approve"],
    );
    assert_applied(&out, root, before);
}

#[test]
fn a_saved_plan_in_another_checkout_uses_that_checkouts_spec() {
    let dir = repo();
    let first = dir.path();
    plan(first);
    let before = api_tokens(first);
    // The same repository at another place (a CI job's workspace): the plan file travels with
    // it and applies there, not to the checkout it was planned in.
    let other = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", first.display()))
        .arg(other.path())
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokensmith(other.path(), &["apply", "p.plan", "--auto-approve"]);
    assert_applied(&out, other.path(), before);
    assert_eq!(
        api_tokens(first),
        before,
        "the first checkout was not touched"
    );
}

#[test]
fn a_saved_plan_whose_spec_is_gone_names_it_and_an_explicit_f_still_wins() {
    let dir = repo();
    let root = dir.path();
    plan(root);
    let before = api_tokens(root);
    std::fs::rename(root.join(SPEC), root.join("examples/moved.yaml")).unwrap();
    let out = tokensmith(root, &["apply", "p.plan", "--auto-approve"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains(SPEC) && all.contains("-f FILE"), "{all}");
    assert_eq!(api_tokens(root), before, "nothing was created");

    let out = tokensmith(
        root,
        &[
            "apply",
            "p.plan",
            "-f",
            "examples/moved.yaml",
            "--auto-approve",
        ],
    );
    // The moved file is the same spec, so the plan is fresh and applies.
    assert_applied(&out, root, before);
}

#[test]
fn a_plan_made_at_spec_ref_applies_the_spec_of_that_commit_not_the_working_tree() {
    let dir = repo();
    let root = dir.path();
    let head = git2::Repository::open(root)
        .unwrap()
        .head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id()
        .to_string();
    // The working tree moves on to v2: the `ci` token gets another name.
    let v1 = std::fs::read_to_string(root.join(SPEC)).unwrap();
    assert!(v1.contains("name: CI pipeline\n"));
    std::fs::write(
        root.join(SPEC),
        v1.replace("name: CI pipeline\n", "name: CI pipeline v2\n"),
    )
    .unwrap();

    let out = tokensmith(
        root,
        &["plan", "-f", SPEC, "--spec-ref", "HEAD", "--out", "p.plan"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("p.plan")).unwrap()).unwrap();
    assert_eq!(saved["spec"]["spec_ref"]["reference"], "HEAD", "{saved}");
    assert_eq!(
        saved["spec"]["spec_ref"]["commit"],
        head.as_str(),
        "{saved}"
    );

    let out = tokensmith(root, &["apply", "p.plan", "--auto-approve"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains(&format!("at commit {head} (`HEAD` when planned)")),
        "{all}"
    );
    let state =
        std::fs::read_to_string(root.join("examples/.tokensmith/sandbox/demo.json")).unwrap();
    assert!(state.contains("\"CI pipeline [ts:ci#1]\""), "v1 applied");
    assert!(
        !state.contains("CI pipeline v2"),
        "not the working tree's v2"
    );

    // The plan's live inputs changed (this apply made them): the stale-plan check refuses it.
    let again = tokensmith(root, &["apply", "p.plan", "--auto-approve"]);
    let all = text(&again);
    assert_eq!(again.status.code(), Some(1), "{all}");
    assert!(all.contains("error: the plan is stale: "), "{all}");
    assert!(
        !all.contains("stale: the spec"),
        "the spec itself is unchanged: {all}"
    );
    assert!(!all.contains("Apply complete"), "{all}");

    // A plan whose commit this repository does not hold is refused, naming the commit.
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let mut foreign = saved.clone();
    foreign["spec"]["spec_ref"]["commit"] = missing.into();
    std::fs::write(root.join("f.plan"), foreign.to_string()).unwrap();
    let out = tokensmith(root, &["apply", "f.plan", "--auto-approve"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!(
            "error: the plan f.plan was made from the spec at `HEAD` (commit {missing}), and that commit is not in the repository of "
        )),
        "{all}"
    );
    assert!(
        !all.contains("lock acquired"),
        "refused before anything: {all}"
    );
}

/// Edit the saved plan `root/p.plan` with `edit`.
fn edit_plan(root: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = root.join("p.plan");
    let mut plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut plan);
    std::fs::write(&path, serde_json::to_vec_pretty(&plan).unwrap()).unwrap();
}

/// A plan file travels between CI jobs as an artifact. One edited after `plan --out` (a
/// delivery sent elsewhere, a step dropped, a step added) is refused before any change: its
/// inputs still match, but its steps are not what the spec plans from them at the plan's time.
/// Without the check the edited delivery wrote the tenant token where the edit said.
#[test]
fn an_edited_saved_plan_is_refused_and_changes_nothing() {
    let dir = repo();
    let root = dir.path();
    let stolen = root.join("stolen-tenant-token");
    let stolen_path = stolen.to_str().unwrap().to_owned();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "a delivery sent elsewhere",
            Box::new(move |plan| {
                let last = plan["steps"].as_array_mut().unwrap().last_mut().unwrap();
                last["action"]["target"]["file"]["path"] = stolen_path.clone().into();
            }),
        ),
        (
            "a step dropped",
            Box::new(|plan| {
                plan["steps"].as_array_mut().unwrap().remove(0);
            }),
        ),
        (
            "a step repeated",
            Box::new(|plan| {
                let steps = plan["steps"].as_array_mut().unwrap();
                let last = steps.last().unwrap().clone();
                steps.push(last);
            }),
        ),
    ];
    for (what, edit) in edits {
        plan(root);
        edit_plan(root, edit);
        let before = api_tokens(root);
        let out = tokensmith(root, &["apply", "p.plan", "--auto-approve"]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: {all}");
        assert!(
            all.contains("the plan file is not what its spec plans")
                && all.contains("nothing was changed"),
            "{what}: {all}"
        );
        assert_eq!(api_tokens(root), before, "{what}: nothing was created");
        assert!(
            !stolen.exists(),
            "{what}: the token went where the edit said"
        );
        assert!(
            !root.join("examples/out").exists(),
            "{what}: nothing delivered"
        );
    }
    // The same plan, unedited, applies, and nothing is left to do.
    plan(root);
    let before = api_tokens(root);
    let out = tokensmith(root, &["apply", "p.plan", "--auto-approve"]);
    assert_applied(&out, root, before);
    let out = tokensmith(root, &["plan", "-f", SPEC, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// `plan --replace KEY --out` records the request, so the saved plan (a rotation the schedule
/// does not call for) applies; the same file with the request taken out is refused.
#[test]
fn a_saved_plan_made_with_replace_applies_and_without_the_request_is_refused() {
    let dir = repo();
    let root = dir.path();
    let out = tokensmith(root, &["apply", "-f", SPEC, "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let held = || std::fs::read_to_string(root.join("examples/out/ci-token.env")).unwrap();
    let first = held();

    let replace = |root: &Path| {
        let out = tokensmith(
            root,
            &["plan", "-f", SPEC, "--replace", "ci", "--out", "p.plan"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    };
    replace(root);
    edit_plan(root, |plan| {
        assert_eq!(plan["inputs"]["replace"], serde_json::json!(["ci"]));
        plan["inputs"].as_object_mut().unwrap().remove("replace");
    });
    let out = tokensmith(root, &["apply", "p.plan", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not what its spec plans"),
        "{}",
        text(&out)
    );
    assert_eq!(held(), first);

    replace(root);
    let out = tokensmith(root, &["apply", "p.plan", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_ne!(held(), first, "the ci token was rotated");
    let out = tokensmith(root, &["plan", "-f", SPEC, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

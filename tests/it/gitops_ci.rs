//! The CI examples under `examples/ci/`: every file parses as YAML, has the structure its
//! platform needs, and every `tokensmith` command in it parses with the real command line
//! (`Cli`), so a renamed flag breaks this test instead of a user's pipeline. The read-only
//! commands (validate, plan, drift) also run, with the real binary, against the quickstart spec
//! and its embedded sandbox.
//!
//! Flags that issue 6 adds to the command line and that the commands do not declare yet are
//! listed in [`PENDING`]; the test fails when one of them becomes declared, so the list only
//! shrinks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use serde_yaml::Value;
use tokensmith::cli::Cli;

/// (subcommand, flag, takes a value): used by the examples, not yet declared by the CLI.
const PENDING: &[(&str, &str, bool)] = &[];

fn ci_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(path);
        }
    }
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

use serde::Deserialize;

fn load(rel: &str) -> Value {
    let docs = documents(&ci_dir().join(rel));
    assert_eq!(docs.len(), 1, "{rel}");
    docs.into_iter().next().unwrap()
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| {
        v.get(*k)
            .unwrap_or_else(|| panic!("missing `{k}` (path {path:?}) in {v:?}"))
    })
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

/// Shell words of a script, with `\`-continued lines joined; quotes removed; `${{ … }}` kept as
/// one word. Not a shell, enough for these files.
fn shell_lines(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    joined
        .lines()
        .map(|line| {
            let mut words = Vec::new();
            let mut word = String::new();
            let mut in_word = false;
            let mut chars = line.chars().peekable();
            let mut quote: Option<char> = None;
            while let Some(c) = chars.next() {
                match (quote, c) {
                    (None, '#') if !in_word => break,
                    (None, '\'' | '"') => {
                        quote = Some(c);
                        in_word = true;
                    }
                    (Some(q), c) if c == q => quote = None,
                    (None, '$') if chars.peek() == Some(&'{') => {
                        word.push('$');
                        in_word = true;
                        // `${{ expr }}` or `${VAR}`: up to the matching close.
                        let mut depth = 0;
                        for c in chars.by_ref() {
                            word.push(c);
                            match c {
                                '{' => depth += 1,
                                '}' => {
                                    depth -= 1;
                                    if depth == 0 {
                                        break;
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    (None, ';') => {
                        if in_word {
                            words.push(std::mem::take(&mut word));
                            in_word = false;
                        }
                        words.push(";".to_owned());
                    }
                    (None, c) if c.is_whitespace() => {
                        if in_word {
                            words.push(std::mem::take(&mut word));
                            in_word = false;
                        }
                    }
                    (_, c) => {
                        word.push(c);
                        in_word = true;
                    }
                }
            }
            if in_word {
                words.push(word);
            }
            words
        })
        .collect()
}

const OPERATORS: &[&str] = &[
    "|", "||", "&&", ";", ">", ">>", "2>&1", "<", "then", "else", "do", ")",
];
const COMMAND_POSITION: &[&str] = &["|", "||", "&&", ";", "then", "else", "do", "if", "!"];

/// Every `tokensmith …` command in a script: the word in command position and its arguments up
/// to the next shell operator.
fn invocations(script: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for words in shell_lines(script) {
        let mut i = 0;
        while i < words.len() {
            let at_command = i == 0 || COMMAND_POSITION.contains(&words[i - 1].as_str());
            if at_command && words[i] == "tokensmith" {
                let args: Vec<String> = words[i..]
                    .iter()
                    .take_while(|w| !OPERATORS.contains(&w.as_str()))
                    .cloned()
                    .collect();
                i += args.len();
                found.push(args);
            } else {
                i += 1;
            }
        }
    }
    found
}

/// The subcommand and the words without the pending flags (which must not be declared yet).
fn strip_pending(words: &[String], origin: &str) -> (String, Vec<String>) {
    let sub = words
        .get(1)
        .unwrap_or_else(|| panic!("{origin}: bare `tokensmith`"))
        .clone();
    let cli = Cli::command();
    let declared = cli
        .find_subcommand(&sub)
        .unwrap_or_else(|| panic!("{origin}: `tokensmith {sub}` is not a subcommand"));
    let mut kept = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let flag = w.split('=').next().unwrap();
        if let Some(&(_, _, takes_value)) = PENDING.iter().find(|(s, f, _)| *s == sub && *f == flag)
        {
            let long = flag.trim_start_matches("--");
            assert!(
                declared.get_arguments().all(|a| a.get_long() != Some(long)),
                "`tokensmith {sub} {flag}` is declared now: remove it from PENDING in {}",
                file!()
            );
            i += if takes_value && !w.contains('=') {
                2
            } else {
                1
            };
            continue;
        }
        kept.push(w.clone());
        i += 1;
    }
    (sub, kept)
}

/// Parse one command with the real CLI, pending flags taken out. Returns the subcommand.
fn check_invocation(words: &[String], origin: &str) -> String {
    let (sub, kept) = strip_pending(words, origin);
    if let Err(e) = Cli::try_parse_from(&kept) {
        panic!("{origin}: `{}` does not parse: {e}", words.join(" "));
    }
    sub
}

fn github_scripts(workflow: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, job) in get(workflow, &["jobs"]).as_mapping().unwrap() {
        for step in get(job, &["steps"]).as_sequence().unwrap() {
            if let Some(run) = step.get("run") {
                out.push((s(name).to_owned(), s(run).to_owned()));
            }
        }
    }
    out
}

/// (subcommand, words) of every tokensmith command in a GitHub workflow, each parsed.
fn github_commands(rel: &str) -> (Value, Vec<(String, Vec<String>)>) {
    let wf = load(rel);
    let mut cmds = Vec::new();
    for (job, script) in github_scripts(&wf) {
        for words in invocations(&script) {
            let sub = check_invocation(&words, &format!("{rel} job {job}"));
            cmds.push((sub, words));
        }
    }
    (wf, cmds)
}

fn has_flag(words: &[String], flag: &str, value: Option<&str>) -> bool {
    words
        .windows(2)
        .any(|w| w[0] == flag && value.is_none_or(|v| w[1].contains(v)))
        || (value.is_none() && words.iter().any(|w| w == flag))
}

fn step_uses<'a>(wf: &'a Value, action: &str) -> Vec<&'a Value> {
    get(wf, &["jobs"])
        .as_mapping()
        .unwrap()
        .values()
        .flat_map(|job| get(job, &["steps"]).as_sequence().unwrap())
        .filter(|step| {
            step.get("uses")
                .and_then(Value::as_str)
                .is_some_and(|u| u.starts_with(action))
        })
        .collect()
}

#[test]
fn every_ci_file_parses_and_none_is_a_top_level_example_spec() {
    let mut all = Vec::new();
    files(&ci_dir(), &mut all);
    let names: BTreeSet<String> = all
        .iter()
        .map(|p| {
            p.strip_prefix(ci_dir())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let expected: BTreeSet<String> = [
        "github/plan.yml",
        "github/apply.yml",
        "github/drift.yml",
        "gitlab/.gitlab-ci.yml",
        "kubernetes/cronjob.yaml",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(names, expected);
    for path in &all {
        assert!(!documents(path).is_empty(), "{}", path.display());
        assert_ne!(
            path.parent().unwrap(),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
        );
    }
}

#[test]
fn github_plan_validates_plans_comments_once_and_uploads() {
    let (wf, cmds) = github_commands("github/plan.yml");
    assert!(get(&wf, &["on"]).get("pull_request").is_some());
    assert_eq!(s(get(&wf, &["permissions", "pull-requests"])), "write");
    let validate = cmds
        .iter()
        .find(|(s, _)| s == "validate")
        .expect("validate");
    assert!(
        has_flag(&validate.1, "--format", Some("github")),
        "{validate:?}"
    );
    let plan = cmds.iter().find(|(s, _)| s == "plan").expect("plan");
    for (flag, value) in [
        ("--format", Some("markdown")),
        ("--out", Some("plan.json")),
        ("--base", Some("pull_request.base.sha")),
        ("--detailed-exitcode", None),
    ] {
        assert!(has_flag(&plan.1, flag, value), "{flag}: {plan:?}");
    }
    let scripts: String = github_scripts(&wf).into_iter().map(|(_, s)| s).collect();
    assert!(scripts.contains("GITHUB_STEP_SUMMARY"));
    // fetch-depth 0: --base needs the base commit.
    let checkout = step_uses(&wf, "actions/checkout");
    assert_eq!(
        checkout[0]
            .get("with")
            .and_then(|w| w.get("fetch-depth"))
            .and_then(Value::as_u64),
        Some(0)
    );
    let upload = step_uses(&wf, "actions/upload-artifact");
    assert_eq!(s(get(upload[0], &["with", "path"])), "plan.json");
    let comment = step_uses(&wf, "actions/github-script");
    let script = s(get(comment[0], &["with", "script"]));
    assert!(script.contains("<!-- tokensmith-plan -->"));
    assert!(script.contains("updateComment") && script.contains("createComment"));
}

#[test]
fn github_apply_applies_the_merged_commit_under_the_remote_lock() {
    let (wf, cmds) = github_commands("github/apply.yml");
    let branches = get(&wf, &["on", "push", "branches"]).as_sequence().unwrap();
    assert!(branches.iter().any(|b| b == "main"));
    assert_eq!(s(get(&wf, &["permissions", "contents"])), "write");
    let apply = cmds.iter().find(|(s, _)| s == "apply").expect("apply");
    assert!(
        has_flag(&apply.1, "--spec-ref", Some("github.sha")),
        "{apply:?}"
    );
    assert!(has_flag(&apply.1, "--auto-approve", None), "{apply:?}");
    assert!(
        has_flag(&apply.1, "--lock-remote", Some("origin")),
        "{apply:?}"
    );
    assert_eq!(apply.1[2], "plan.json", "applies the saved plan: {apply:?}");
    let plan = cmds.iter().find(|(s, _)| s == "plan").expect("plan");
    assert!(
        has_flag(&plan.1, "--spec-ref", Some("github.sha")),
        "{plan:?}"
    );
}

#[test]
fn github_drift_fails_and_opens_or_updates_an_issue_on_exit_code_2() {
    let (wf, cmds) = github_commands("github/drift.yml");
    let schedule = get(&wf, &["on", "schedule"]).as_sequence().unwrap();
    assert!(schedule[0].get("cron").is_some());
    assert_eq!(s(get(&wf, &["permissions", "issues"])), "write");
    assert!(cmds.iter().any(|(s, _)| s == "drift"));
    let steps: Vec<&Value> = get(&wf, &["jobs", "drift", "steps"])
        .as_sequence()
        .unwrap()
        .iter()
        .collect();
    let on_drift: Vec<&&Value> = steps
        .iter()
        .filter(|st| {
            st.get("if").and_then(Value::as_str) == Some("steps.drift.outputs.exitcode == '2'")
        })
        .collect();
    assert_eq!(on_drift.len(), 2, "issue step and failing step");
    let issue = s(get(on_drift[0], &["with", "script"]));
    assert!(issue.contains("issues.update") && issue.contains("issues.create"));
    let fail = s(get(on_drift[1], &["run"]));
    assert!(fail.contains("exit 2"));
}

#[test]
fn gitlab_has_the_three_jobs() {
    let ci = load("gitlab/.gitlab-ci.yml");
    let mut seen = BTreeSet::new();
    for (job, rule) in [
        ("tokensmith-plan", "merge_request_event"),
        ("tokensmith-apply", "CI_DEFAULT_BRANCH"),
        ("tokensmith-drift", "schedule"),
    ] {
        let j = get(&ci, &[job]);
        let rules = get(j, &["rules"]).as_sequence().unwrap();
        assert!(
            rules.iter().any(|r| s(get(r, &["if"])).contains(rule)),
            "{job}"
        );
        let script: Vec<&str> = get(j, &["script"])
            .as_sequence()
            .unwrap()
            .iter()
            .map(s)
            .collect();
        for part in script {
            for words in invocations(part) {
                let sub = check_invocation(&words, &format!("gitlab job {job}"));
                if sub == "apply" {
                    assert!(
                        has_flag(&words, "--spec-ref", Some("CI_COMMIT_SHA")),
                        "{words:?}"
                    );
                    assert!(has_flag(&words, "--auto-approve", None), "{words:?}");
                }
                if sub == "plan" && job == "tokensmith-plan" {
                    assert!(has_flag(&words, "--format", Some("markdown")), "{words:?}");
                    assert!(has_flag(&words, "--base", None), "{words:?}");
                }
                seen.insert((job, sub));
            }
        }
    }
    for expected in [
        ("tokensmith-plan", "validate"),
        ("tokensmith-plan", "plan"),
        ("tokensmith-apply", "apply"),
        ("tokensmith-drift", "drift"),
    ] {
        assert!(
            seen.contains(&(expected.0, expected.1.to_owned())),
            "{expected:?} in {seen:?}"
        );
    }
    let plan_script = format!("{:?}", get(&ci, &["tokensmith-plan", "script"]));
    assert!(plan_script.contains("<!-- tokensmith-plan -->"));
    assert!(s(get(&ci, &["tokensmith-apply", "resource_group"])).contains("tokensmith"));
}

#[test]
fn kubernetes_cronjobs_are_sharded_and_rbac_names_only_the_written_secrets() {
    let docs = documents(&ci_dir().join("kubernetes/cronjob.yaml"));
    let kind = |d: &Value| s(get(d, &["kind"])).to_owned();
    let of = |k: &str| -> Vec<&Value> { docs.iter().filter(|d| kind(d) == k).collect() };
    let sa = of("ServiceAccount")
        .into_iter()
        .next()
        .expect("ServiceAccount");
    let sa_name = s(get(sa, &["metadata", "name"]));

    let role = of("Role").into_iter().next().expect("Role");
    for rule in get(role, &["rules"]).as_sequence().unwrap() {
        let names = get(rule, &["resourceNames"]).as_sequence().unwrap();
        assert!(!names.is_empty(), "every rule names its objects: {rule:?}");
        for verb in get(rule, &["verbs"]).as_sequence().unwrap() {
            assert!(["get", "patch"].contains(&s(verb)), "verb {verb:?}");
        }
    }
    let secrets_rule = get(role, &["rules"])
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| {
            get(r, &["resources"])
                .as_sequence()
                .unwrap()
                .iter()
                .any(|x| x == "secrets")
        })
        .expect("a rule for secrets");
    let allowed: BTreeSet<&str> = get(secrets_rule, &["resourceNames"])
        .as_sequence()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    assert!(
        of("ClusterRole").into_iter().next().is_none(),
        "namespace-scoped RBAC only"
    );

    let binding = of("RoleBinding").into_iter().next().expect("RoleBinding");
    assert_eq!(
        get(binding, &["roleRef", "name"]),
        get(role, &["metadata", "name"])
    );
    assert_eq!(s(get(&get(binding, &["subjects"])[0], &["name"])), sa_name);

    // The Secrets the embedded spec writes are exactly the ones RBAC allows.
    let config = of("ConfigMap").into_iter().next().expect("spec ConfigMap");
    let spec_text = s(get(config, &["data", "tokensmith.yaml"]));
    let loaded = tokensmith::spec::load_str(spec_text, "cronjob.yaml#tokensmith.yaml")
        .unwrap_or_else(|d| panic!("embedded spec does not load:\n{d}"));
    let written: BTreeSet<&str> = loaded
        .desired
        .tokens
        .iter()
        .flat_map(|t| &t.deliver)
        .filter_map(|t| match t {
            tokensmith::model::Target::KubernetesSecret(k) => Some(k.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(written, allowed);

    let mut jobs = Vec::new();
    for cron in of("CronJob") {
        assert_eq!(s(get(cron, &["spec", "concurrencyPolicy"])), "Forbid");
        let pod = get(cron, &["spec", "jobTemplate", "spec", "template", "spec"]);
        assert_eq!(s(get(pod, &["serviceAccountName"])), sa_name);
        for c in get(pod, &["containers"]).as_sequence().unwrap() {
            let mut words: Vec<String> = get(c, &["command"])
                .as_sequence()
                .unwrap()
                .iter()
                .map(|w| s(w).to_owned())
                .collect();
            words.extend(
                get(c, &["args"])
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|w| s(w).to_owned()),
            );
            let name = s(get(cron, &["metadata", "name"]));
            let sub = check_invocation(&words, name);
            let env = words
                .windows(2)
                .find(|w| w[0] == "--env")
                .map(|w| w[1].clone());
            assert!(env.is_some(), "{name}: one environment shard per CronJob");
            if sub == "apply" {
                assert!(has_flag(&words, "--auto-approve", None), "{words:?}");
            }
            jobs.push((sub, env.unwrap()));
        }
    }
    assert!(
        jobs.contains(&("apply".to_owned(), "prod".to_owned())),
        "{jobs:?}"
    );
    assert!(
        jobs.contains(&("drift".to_owned(), "prod".to_owned())),
        "{jobs:?}"
    );
}

/// No crate is published, so `cargo install tokensmith` from crates.io cannot work: every example
/// installs from git at a pinned commit (and caches the build), and the CronJob runs the image
/// the repository's Dockerfile builds.
#[test]
fn installs_use_a_path_that_works_and_the_image_comes_from_the_dockerfile() {
    for rel in [
        "github/plan.yml",
        "github/apply.yml",
        "github/drift.yml",
        "gitlab/.gitlab-ci.yml",
    ] {
        let text = std::fs::read_to_string(ci_dir().join(rel)).unwrap();
        let installs: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("cargo install"))
            .collect();
        assert!(!installs.is_empty(), "{rel} installs tokensmith");
        for line in installs {
            assert!(
                line.contains("--git \"$TOKENSMITH_GIT\" --rev \"$TOKENSMITH_REV\"")
                    && line.contains("--locked"),
                "{rel}: {line}"
            );
        }
        assert!(
            text.contains("TOKENSMITH_REV"),
            "{rel}: the commit is pinned"
        );
        let cached = text.contains("actions/cache@") || text.contains("cache:");
        assert!(cached, "{rel} caches the build");
    }
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("docker build -t tokensmith:0.1.0 ."));
    assert!(dockerfile.contains("--bin tokensmith"));
    for doc in documents(&ci_dir().join("kubernetes/cronjob.yaml")) {
        if s(get(&doc, &["kind"])) != "CronJob" {
            continue;
        }
        let pod = get(&doc, &["spec", "jobTemplate", "spec", "template", "spec"]);
        for c in get(pod, &["containers"]).as_sequence().unwrap() {
            assert_eq!(s(get(c, &["image"])), "tokensmith:0.1.0");
        }
    }
}

#[test]
fn the_command_finder_sees_what_a_shell_would_run() {
    let found = invocations(
        "cargo install --locked tokensmith\nset +e\ntokensmith plan -f \"$SPEC\" --base \"${{ github.event.pull_request.base.sha }}\" > plan.md\nif ! tokensmith drift; then echo x; fi # tokensmith nope\ntokensmith \\\n  validate",
    );
    assert_eq!(
        found,
        vec![
            vec![
                "tokensmith",
                "plan",
                "-f",
                "$SPEC",
                "--base",
                "${{ github.event.pull_request.base.sha }}"
            ],
            vec!["tokensmith", "drift"],
            vec!["tokensmith", "validate"],
        ]
        .into_iter()
        .map(|v| v.into_iter().map(str::to_owned).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    );
    // A flag the CLI does not know fails the check.
    let bad: Vec<String> = ["tokensmith", "plan", "--no-such-flag"]
        .map(str::to_owned)
        .to_vec();
    assert!(std::panic::catch_unwind(|| check_invocation(&bad, "test")).is_err());
}

/// Every tokensmith command of the examples, with its origin.
fn all_invocations() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for rel in ["github/plan.yml", "github/apply.yml", "github/drift.yml"] {
        for (job, script) in github_scripts(&load(rel)) {
            for words in invocations(&script) {
                out.push((format!("{rel} job {job}"), words));
            }
        }
    }
    let gitlab = load("gitlab/.gitlab-ci.yml");
    for (job, def) in gitlab.as_mapping().unwrap() {
        if let Some(script) = def.get("script").and_then(Value::as_sequence) {
            for part in script {
                for words in invocations(s(part)) {
                    out.push((format!("gitlab job {}", s(job)), words));
                }
            }
        }
    }
    for doc in documents(&ci_dir().join("kubernetes/cronjob.yaml")) {
        if s(get(&doc, &["kind"])) != "CronJob" {
            continue;
        }
        let pod = get(&doc, &["spec", "jobTemplate", "spec", "template", "spec"]);
        for c in get(pod, &["containers"]).as_sequence().unwrap() {
            let words = get(c, &["command"])
                .as_sequence()
                .unwrap()
                .iter()
                .chain(get(c, &["args"]).as_sequence().unwrap())
                .map(|w| s(w).to_owned())
                .collect();
            out.push((s(get(&doc, &["metadata", "name"])).to_owned(), words));
        }
    }
    out
}

/// The read-only commands of the examples (validate, plan, drift), run with the real binary
/// against the quickstart spec, whose environment is the embedded sandbox. `apply` is left to
/// the apply tests until the command is wired.
#[test]
fn read_only_commands_run_against_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.yaml");
    std::fs::copy(&quickstart, dir.path().join("tokensmith.yaml")).unwrap();
    // `--base` and `--spec-ref` need the spec in git: commit it, and let every CI ref
    // (`${{ github.sha }}`, `$CI_COMMIT_SHA`, …) stand for that commit.
    let repo = git2::Repository::init(dir.path()).unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(Path::new("tokensmith.yaml")).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let who = git2::Signature::now("ci", "ci@example.com").unwrap();
    repo.commit(Some("HEAD"), &who, &who, "spec", &tree, &[])
        .unwrap();
    let mut ran = BTreeSet::new();
    for (origin, words) in all_invocations() {
        let (sub, kept) = strip_pending(&words, &origin);
        if !["validate", "plan", "drift"].contains(&sub.as_str()) {
            continue;
        }
        let mut args: Vec<String> = Vec::new();
        let mut iter = kept.iter().skip(1);
        while let Some(w) = iter.next() {
            match w.as_str() {
                "$SPEC" | "/work/tokensmith.yaml" => args.push("tokensmith.yaml".into()),
                w if w.contains("${{") || w.starts_with("$CI_") => args.push("HEAD".into()),
                "--env" => {
                    iter.next();
                    args.extend(["--env".to_owned(), "demo".to_owned()]);
                }
                _ => args.push(w.clone()),
            }
        }
        let _ = std::fs::remove_file(dir.path().join("plan.json"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"))
            .args(&args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let code = out.status.code().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let allowed: &[i32] = match sub.as_str() {
            "validate" => &[0],
            "plan" if args.iter().any(|a| a == "--detailed-exitcode") => &[0, 2],
            "plan" => &[0],
            _ => &[0, 2],
        };
        assert!(
            allowed.contains(&code),
            "{origin}: `tokensmith {}` exited {code}\n{stdout}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        if has_flag(&args, "--format", Some("markdown")) {
            assert!(
                stdout.starts_with(&format!("### tokensmith {sub}")),
                "{origin}: {stdout}"
            );
        }
        if has_flag(&args, "--out", Some("plan.json")) {
            let saved = std::fs::read(dir.path().join("plan.json")).unwrap();
            let plan: tokensmith::plan::Plan = serde_json::from_slice(&saved).unwrap();
            assert!(plan.has_changes(), "{origin}");
        }
        ran.insert(origin);
    }
    assert!(ran.len() >= 5, "{ran:?}");
}

//! Fleets in the spec: an exec target with `for_each` over a host list kept next to the spec
//! expands to one target per host; bad host lists and paths are errors naming the place; the
//! spec's fingerprint covers the host list. Also the checks of a file target's `restart`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use tokensmith::model::Target;
use tokensmith::spec;

fn fleet_spec(for_each: &str) -> String {
    format!(
        r#"version: 1
environments:
  prod: {{ url: "https://abc12345.live.dynatrace.com", token_env: DT_TOKEN }}
tenant_token:
  prod:
    rotate_every: 180d
    activegates:
      - file:
          path: authorization.properties
          format: properties
          section: abc12345
          key: tenantToken
          restart: [systemctl, restart, dynatracegateway]
    oneagents:
      - exec:
          for_each: {for_each}
          command: [ssh, "root@{{{{ host }}}}", /usr/local/bin/set-tenant-token]
          secret_stdin: true
          read_command: [ssh, "root@{{{{ host }}}}", /opt/dynatrace/oneagent/agent/tools/oneagentctl, --get-tenant-token]
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    fs::write(dir.join(name), text).unwrap();
}

fn errors_of(dir: &Path) -> String {
    match spec::load(&dir.join("tokensmith.yaml")) {
        Ok(_) => panic!("the spec loaded"),
        Err(d) => d.to_string(),
    }
}

#[test]
fn a_5000_host_list_validates_and_expands_to_one_target_per_host() {
    let dir = tempfile::tempdir().unwrap();
    let mut hosts = String::from("# OneAgent hosts, one per line\n\n");
    for i in 0..5000 {
        writeln!(hosts, "host-{i:04}.example.com").unwrap();
        if i % 1000 == 0 {
            hosts.push_str("   # a comment line\n\n");
        }
    }
    hosts.push_str("last.example.com # trailing comment\n");
    write(dir.path(), "hosts.txt", &hosts);
    write(
        dir.path(),
        "tokensmith.yaml",
        &fleet_spec("{ host: { file: hosts.txt } }"),
    );
    let started = std::time::Instant::now();
    let loaded = spec::load(&dir.path().join("tokensmith.yaml")).unwrap_or_else(|d| panic!("{d}"));
    let took = started.elapsed();
    let tenant = &loaded.desired.tenant_tokens[0];
    assert_eq!(tenant.oneagents.len(), 5001);
    assert_eq!(tenant.activegates.len(), 1);
    let Target::Exec(first) = &tenant.oneagents[0] else {
        panic!("not exec")
    };
    assert_eq!(first.command[1], "root@host-0000.example.com");
    assert_eq!(
        first.read_command.as_ref().unwrap()[1],
        "root@host-0000.example.com"
    );
    assert!(
        first.for_each.is_none(),
        "a resolved target carries no for_each"
    );
    let Target::Exec(last) = &tenant.oneagents[5000] else {
        panic!("not exec")
    };
    assert_eq!(last.command[1], "root@last.example.com");
    let addresses: std::collections::BTreeSet<_> =
        tenant.oneagents.iter().map(Target::address).collect();
    assert_eq!(addresses.len(), 5001);
    let Target::File(f) = &tenant.activegates[0] else {
        panic!("not file")
    };
    assert_eq!(
        f.restart.as_deref(),
        Some(
            &[
                "systemctl".to_owned(),
                "restart".into(),
                "dynatracegateway".into()
            ][..]
        )
    );
    println!("5001-host spec loaded in {took:?}");

    // The fingerprint covers the host list: a saved plan goes stale when it changes.
    let hash = loaded.source_hash.clone();
    write(
        dir.path(),
        "hosts.txt",
        &format!("{hosts}one-more.example.com\n"),
    );
    let again = spec::load(&dir.path().join("tokensmith.yaml")).unwrap();
    assert_ne!(again.source_hash, hash);
    assert_eq!(again.desired.tenant_tokens[0].oneagents.len(), 5002);
}

#[test]
fn inline_values_expand_too() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tokensmith.yaml",
        &fleet_spec("{ host: [a.example.com, b.example.com] }"),
    );
    let loaded = spec::load(&dir.path().join("tokensmith.yaml")).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(loaded.desired.tenant_tokens[0].oneagents.len(), 2);
}

#[test]
fn bad_host_lists_are_errors_naming_the_line() {
    let cases: &[(&str, &str)] = &[
        (
            "a.example.com\nb.example.com\na.example.com\n",
            "line 3: `a.example.com` is listed twice (first on line 1)",
        ),
        (
            "a.example.com\n-oProxyCommand=evil\n",
            "line 2: `-oProxyCommand=evil` starts with `-`",
        ),
        (
            "a.example.com b.example.com\n",
            "line 1: `a.example.com b.example.com` contains whitespace",
        ),
        ("# nobody\n\n", "`for_each.host` has no values"),
    ];
    for (hosts, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "hosts.txt", hosts);
        write(
            dir.path(),
            "tokensmith.yaml",
            &fleet_spec("{ host: { file: hosts.txt } }"),
        );
        let errors = errors_of(dir.path());
        assert!(errors.contains(expected), "{hosts:?}: {errors}");
        assert!(errors.contains("tokensmith.yaml:"), "no location: {errors}");
    }
}

#[test]
fn the_host_list_must_be_a_regular_file_inside_the_spec_directory() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "hosts.txt", "a.example.com\n");
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("hosts.txt"),
        dir.path().join("link.txt"),
    )
    .unwrap();
    let abs = format!(
        "{{ host: {{ file: \"{}\" }} }}",
        outside.path().join("hosts.txt").display()
    );
    let cases: Vec<(String, &str)> = vec![
        (
            "{ host: { file: ../hosts.txt } }".into(),
            "is outside the spec's directory",
        ),
        (abs, "is outside the spec's directory"),
        (
            "{ host: { file: link.txt } }".into(),
            "is outside the spec's directory",
        ),
        (
            "{ host: { file: sub } }".into(),
            "cannot read `sub`: it is a directory, and only regular files are read",
        ),
        (
            "{ host: { file: missing.txt } }".into(),
            "cannot read `missing.txt`",
        ),
    ];
    for (for_each, expected) in cases {
        write(dir.path(), "tokensmith.yaml", &fleet_spec(&for_each));
        let errors = errors_of(dir.path());
        assert!(errors.contains(expected), "{for_each}: {errors}");
    }
}

#[test]
fn a_fleet_whose_command_ignores_the_host_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hosts.txt", "a.example.com\nb.example.com\n");
    let text = fleet_spec("{ host: { file: hosts.txt } }").replace(
        r#"command: [ssh, "root@{{ host }}", /usr/local/bin/set-tenant-token]"#,
        "command: [ansible-playbook, rotate.yml]",
    );
    write(dir.path(), "tokensmith.yaml", &text);
    let errors = errors_of(dir.path());
    assert!(errors.contains("gives the same target"), "{errors}");
}

#[test]
fn bad_variable_names_and_in_memory_specs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hosts.txt", "a.example.com\n");
    write(
        dir.path(),
        "tokensmith.yaml",
        &fleet_spec("{ env: { file: hosts.txt } }"),
    );
    assert!(errors_of(dir.path()).contains("`for_each` variable `env` is already defined"));

    let text = fleet_spec("{ host: { file: hosts.txt } }");
    let errors = spec::load_str(&text, "t.yaml").unwrap_err().to_string();
    assert!(errors.contains("not loaded from a directory"), "{errors}");
}

#[test]
fn restart_is_checked_like_a_command() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hosts.txt", "a.example.com\n");
    let base = fleet_spec("{ host: { file: hosts.txt } }");
    for (restart, expected) in [
        ("[]", "`restart` is empty"),
        (
            r#"["systemctl restart dynatracegateway"]"#,
            "runs without a shell",
        ),
    ] {
        let text = base.replace("[systemctl, restart, dynatracegateway]", restart);
        write(dir.path(), "tokensmith.yaml", &text);
        let errors = errors_of(dir.path());
        assert!(errors.contains(expected), "{restart}: {errors}");
    }
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_spec_at_a_git_ref_reads_the_host_list_of_that_commit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir(root.join("specs")).unwrap();
    write(
        &root.join("specs"),
        "hosts.txt",
        "a.example.com\nb.example.com\n",
    );
    write(
        &root.join("specs"),
        "tokensmith.yaml",
        &fleet_spec("{ host: { file: hosts.txt } }"),
    );
    git(root, &["init", "-q"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "fleet"]);
    // The working tree's list grows; the committed one is what `--spec-ref HEAD` plans.
    write(
        &root.join("specs"),
        "hosts.txt",
        "a.example.com\nb.example.com\nc.example.com\n",
    );
    let spec_path = root.join("specs/tokensmith.yaml");
    let at = tokensmith::git::at_ref::load_at_ref(&spec_path, "HEAD").unwrap();
    assert_eq!(at.spec.desired.tenant_tokens[0].oneagents.len(), 2);
    let tree = spec::load(&spec_path).unwrap();
    assert_eq!(tree.desired.tenant_tokens[0].oneagents.len(), 3);
    assert_ne!(at.spec.source_hash, tree.source_hash);

    // A committed symlink is not a host list.
    std::os::unix::fs::symlink("/etc/hostname", root.join("specs/link.txt")).unwrap();
    write(
        &root.join("specs"),
        "tokensmith.yaml",
        &fleet_spec("{ host: { file: link.txt } }"),
    );
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "symlink"]);
    let err = tokensmith::git::at_ref::load_at_ref(&spec_path, "HEAD")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("link.txt") && err.contains("is not a file"),
        "{err}"
    );
}

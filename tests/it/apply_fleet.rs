//! A OneAgent fleet end to end: the real binary delivers the tenant token to 40 hosts of a host
//! list through one exec target with `for_each`, at most `--exec-concurrency` commands at once
//! (measured from the commands' own start/end log), with one result per host in the journal and
//! the summary, progress counts on the way, each host confirmed by reading back the fingerprint
//! it holds (`oneagentctl --get-tenant-token`), and the value never in any command's argv nor in
//! its environment beyond the one variable that carries it.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::support::binary_world::{World, ENV_ID};

const HOSTS: usize = 40;
/// Above the API pool's 4, so the test shows exec deliveries get their own pool.
const BOUND: usize = 6;

const FLEET: &str = r#"
tenant_token:
  demo:
    oneagents:
      - exec:
          for_each: { host: { file: hosts.txt } }
          command: [./agent.sh, "{{ host }}"]
          secret_env: TT
          read_command: [./read.sh, "{{ host }}"]
"#;

/// The stand-in for `ssh HOST oneagentctl --set-tenant-token`: logs its start and end, dumps
/// its argv and environment, fails for `bad.example.com`, stores the token per host.
const AGENT: &str = r#"#!/bin/sh
host=$1
echo "start $host" >> out/conc.log
printf '%s\n' "$@" > "out/argv-$host"
env > "out/env-$host"
sleep 0.3
if [ "$host" = bad.example.com ]; then echo "no route to $host" >&2; echo "end $host" >> out/conc.log; exit 1; fi
if [ "$host" = liar.example.com ]; then echo "end $host" >> out/conc.log; exit 0; fi
printf %s "$TT" > "out/agents/$host"
echo "end $host" >> out/conc.log
"#;

/// The stand-in for `ssh HOST oneagentctl --get-tenant-token`.
const READ: &str = r#"#!/bin/sh
cat "out/agents/$1" 2>/dev/null || true
"#;

fn script(w: &World, name: &str, body: &str) {
    let p = w.path(name);
    fs::write(&p, body).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The most commands that were between their start and end line at once.
fn max_concurrent(log: &str) -> usize {
    let (mut now, mut max) = (0usize, 0usize);
    for line in log.lines() {
        if line.starts_with("start ") {
            now += 1;
            max = max.max(now);
        } else if line.starts_with("end ") {
            now -= 1;
        }
    }
    max
}

#[test]
fn a_fleet_is_delivered_with_bounded_parallelism_and_one_result_per_host() {
    let w = World::new(FLEET);
    let mut hosts = String::from("# the fleet\n");
    for i in 0..HOSTS - 2 {
        writeln!(hosts, "host-{i:02}.example.com").unwrap();
    }
    // One host fails; one exits 0 but keeps its old token (only the read-back can tell).
    hosts.push_str("bad.example.com\nliar.example.com\n");
    fs::write(w.path("hosts.txt"), hosts).unwrap();
    fs::create_dir_all(w.path("out/agents")).unwrap();
    script(&w, "agent.sh", AGENT);
    script(&w, "read.sh", READ);

    let bound = BOUND.to_string();
    let r = w.run(&["apply", "--auto-approve", "--exec-concurrency", &bound]);
    assert_eq!(r.code, Some(1), "two hosts fail:\n{}", r.text);
    let tenant = w.sandbox.snapshot().environments[ENV_ID].tenant.clone();

    // The bound held, and the fleet did run in parallel.
    let log = fs::read_to_string(w.path("out/conc.log")).unwrap();
    assert_eq!(
        log.lines().filter(|l| l.starts_with("start ")).count(),
        HOSTS
    );
    let max = max_concurrent(&log);
    assert!(
        max <= BOUND,
        "{max} commands ran at once, bound {BOUND}:\n{log}"
    );
    assert!(
        max > tokensmith::apply::DEFAULT_CONCURRENCY,
        "{max} commands at once: the fleet did not get its own pool:\n{log}"
    );
    println!("at most {max} of {HOSTS} exec deliveries ran at once (bound {BOUND})");

    // Every good host holds the token; the bad one does not.
    for i in 0..HOSTS - 2 {
        let held =
            fs::read_to_string(w.path(&format!("out/agents/host-{i:02}.example.com"))).unwrap();
        assert_eq!(held, tenant.active);
    }
    assert!(!w.path("out/agents/bad.example.com").exists());
    assert!(!w.path("out/agents/liar.example.com").exists());

    // The value: never in argv; in the environment only as TT.
    for entry in fs::read_dir(w.path("out")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("argv-") {
            let argv = fs::read_to_string(&path).unwrap();
            assert!(!argv.contains(&tenant.active), "{name}: {argv}");
        } else if name.starts_with("env-") {
            let env = fs::read_to_string(&path).unwrap();
            let carrying: Vec<&str> = env.lines().filter(|l| l.contains(&tenant.active)).collect();
            assert_eq!(
                carrying,
                vec![format!("TT={}", tenant.active).as_str()],
                "{name}"
            );
        }
    }

    // One result per host: the summary, the progress counts and the journal.
    assert!(
        r.text.contains(&format!(
            "Exec targets: {} of {HOSTS} reached, 2 failed, 0 skipped.",
            HOSTS - 2
        )),
        "{}",
        r.text
    );
    assert!(
        r.text.contains(&format!(
            "{HOSTS}/{HOSTS} finished ({} ok, 2 failed, 0 skipped)",
            HOSTS - 2
        )),
        "{}",
        r.text
    );
    assert!(r.text.contains("no route to bad.example.com"), "{}", r.text);
    let fingerprint = tokensmith::model::target::tenant_fingerprint(&tenant.active);
    let liar = r
        .text
        .lines()
        .find(|l| l.contains("failed") && l.contains("liar.example.com"))
        .unwrap_or_else(|| panic!("no failure for the liar:\n{}", r.text));
    assert!(
        liar.contains("read-back found") && liar.contains(&format!("tenant token {fingerprint}")),
        "{liar}"
    );
    let journal = fs::read_to_string(w.path(".tokensmith/journal.jsonl")).unwrap();
    let mut done = 0;
    let mut failed = Vec::new();
    for line in journal.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(target) = e["target"].as_str().filter(|t| t.starts_with("exec:")) else {
            continue;
        };
        match e["event"].as_str() {
            Some("done") => done += 1,
            Some("failed") => failed.push(target.to_owned()),
            _ => {}
        }
    }
    assert_eq!(done, HOSTS - 2, "{journal}");
    failed.sort();
    assert_eq!(
        failed,
        vec![
            "exec:./agent.sh bad.example.com".to_owned(),
            "exec:./agent.sh liar.example.com".to_owned()
        ]
    );

    // The fixed hosts are delivered by the next apply; the others already hold the token.
    let fixed = fs::read_to_string(w.path("hosts.txt"))
        .unwrap()
        .replace("bad.example.com", "fixed.example.com")
        .replace("liar.example.com\n", "");
    fs::write(w.path("hosts.txt"), fixed).unwrap();
    let r = w.run(&["apply", "--auto-approve", "--exec-concurrency", &bound]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_eq!(
        fs::read_to_string(w.path("out/agents/fixed.example.com")).unwrap(),
        tenant.active
    );
    w.assert_plan_empty("after the fleet converged");
}

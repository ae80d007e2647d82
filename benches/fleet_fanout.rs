//! Benchmark: delivering the tenant token to a 5,000-host OneAgent fleet.
//!
//! One exec target with `for_each` over a 5,000-line host list; the commands are tiny stand-in
//! scripts for `ssh HOST oneagentctl --set-tenant-token` (stores the value per host) and
//! `ssh HOST oneagentctl --get-tenant-token` (prints it), so the figure is tokensmith's own cost:
//! loading the spec, planning (one read per host), and per host a read, the delivery and the
//! read-back, with progress and journal. The real `tokensmith apply` binary runs against a sandbox served on loopback, at the
//! default `--exec-concurrency` (16) and, for comparison, at other bounds. Run with
//! `cargo bench --bench fleet_fanout` (add `--profile dev` to skip the release build; append
//! `-- --hosts N` for another fleet size).

// A benchmark prints its figures; the one-door rule for output is the library's.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tokensmith::deliver::DEFAULT_EXEC_CONCURRENCY;
use tokensmith::sandbox::{spawn, Sandbox, Seed};

const TOKEN_ENV: &str = "TS_BENCH_TOKEN";

fn admin() -> String {
    format!("dt0c01.{}.{}", "A".repeat(24), "A".repeat(64))
}

fn seed() -> String {
    format!(
        "start_time: 2026-06-01T00:00:00Z\nfrozen_clock: true\ndefault_environment: env1\nenvironments:\n  env1:\n    tenant_token: tenantoriginal000000\n    api_tokens:\n      - {{ name: admin, token: \"{}\", scopes: [apiTokens.read, apiTokens.write, tenantTokenRotation.write, InstallerDownload] }}\n",
        admin()
    )
}

/// A fresh directory with the spec and the host list.
fn world(base: &str, hosts: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut list = String::from("# the fleet\n");
    for i in 0..hosts {
        writeln!(list, "oneagent-{i:05}.example.com").unwrap();
    }
    std::fs::write(dir.path().join("hosts.txt"), list).unwrap();
    let spec = format!(
        r#"version: 1
environments:
  demo: {{ url: "{base}", token_env: {TOKEN_ENV} }}
tenant_token:
  demo:
    oneagents:
      - exec:
          for_each: {{ host: {{ file: hosts.txt }} }}
          command: [./agent.sh, "{{{{ host }}}}"]
          secret_env: TT
          read_command: [./read.sh, "{{{{ host }}}}"]
"#
    );
    std::fs::write(dir.path().join("tokensmith.yaml"), spec).unwrap();
    std::fs::create_dir(dir.path().join("agents")).unwrap();
    for (name, body) in [
        ("agent.sh", "#!/bin/sh\nprintf %s \"$TT\" > \"agents/$1\"\n"),
        (
            "read.sh",
            "#!/bin/sh\ncat \"agents/$1\" 2>/dev/null || true\n",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

fn tokensmith(dir: &Path, args: &[&str]) -> (Duration, String) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tokensmith"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("CI", "1")
        .env(TOKEN_ENV, admin())
        .output()
        .unwrap();
    let took = t.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "tokensmith {args:?} failed:\n{text}");
    (took, text)
}

fn main() {
    // `cargo bench --bench fleet_fanout -- --hosts 500` for another fleet size.
    let argv: Vec<String> = std::env::args().collect();
    let hosts: usize = argv
        .windows(2)
        .find(|w| w[0] == "--hosts")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(5_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut bounds = vec![DEFAULT_EXEC_CONCURRENCY, 4, 64];
    bounds.dedup();
    println!("exec fan-out of {hosts} hosts (stand-in scripts), `tokensmith apply`:");
    for bound in bounds {
        let sandbox = Sandbox::from_seed(&Seed::from_yaml(&seed()).unwrap()).unwrap();
        let addr = runtime.block_on(spawn(sandbox)).unwrap();
        let dir = world(&format!("http://{addr}"), hosts);
        let (plan_took, _) = tokensmith(dir.path(), &["plan"]);
        let n = bound.to_string();
        let (took, text) = tokensmith(
            dir.path(),
            &["apply", "--auto-approve", "--exec-concurrency", &n],
        );
        let expected = format!("Exec targets: {hosts} of {hosts} reached, 0 failed");
        assert!(text.contains(&expected), "{text}");
        let default = if bound == DEFAULT_EXEC_CONCURRENCY {
            " (default)"
        } else {
            ""
        };
        println!(
            "  --exec-concurrency {bound:>3}{default}: apply {:.2}s ({:.0} hosts/s; plan alone {:.2}s)",
            took.as_secs_f64(),
            hosts as f64 / took.as_secs_f64(),
            plan_took.as_secs_f64()
        );
    }
}

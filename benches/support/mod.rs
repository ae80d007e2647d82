//! What several benchmarks share: a fleet of sandbox environments and the spec that reads them,
//! and the process figures they print (CPU time, memory from `/proc/self/status`).
//!
//! Included with `#[path = "support/mod.rs"] mod support;`; each benchmark uses part of it.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::time::Duration;

/// A syntactically valid management token for environment `i` (sandbox tokens are base32).
pub fn management_token(i: usize) -> String {
    let public = format!("BENCH{i:019}").replace(['0', '1', '8', '9'], "A");
    format!("dt0c01.{}.{}", &public[..24], "S".repeat(64))
}

/// Sandbox seed text for `envs` environments `env000`, `env001`, …, each with a tenant token,
/// the management token [`management_token`]`(i)` and `tokens` generated unmanaged tokens.
pub fn fleet_seed(envs: usize, tokens: usize) -> String {
    let mut seed = String::from("frozen_clock: true\nstart_time: 2026-11-01T09:00:00Z\n");
    seed.push_str("environments:\n");
    for i in 0..envs {
        let token = management_token(i);
        let _ = writeln!(seed, "  env{i:03}:");
        let _ = writeln!(seed, "    tenant_token: tenanttoken{i:09}");
        let _ = writeln!(seed, "    api_tokens:");
        let _ = writeln!(seed, "      - name: tokensmith management");
        let _ = writeln!(seed, "        token: {token}");
        let _ = writeln!(seed, "        scopes: [apiTokens.read, apiTokens.write, activeGateTokenManagement.read, activeGateTokenManagement.write]");
        let _ = writeln!(seed, "    generated_api_tokens: {{ count: {tokens} }}");
    }
    seed
}

/// The spec over the environments of [`fleet_seed`], environment `i` at `url(i)`, its
/// management token in a variable this process sets, and one managed token in every
/// environment (so the plan creates one per environment).
pub fn fleet_spec(
    envs: usize,
    url: impl Fn(usize) -> String,
) -> anyhow::Result<tokensmith::spec::LoadedSpec> {
    let mut spec = String::from("version: 1\nenvironments:\n");
    for i in 0..envs {
        let var = format!("TOKENSMITH_BENCH_TOKEN_{i:03}");
        std::env::set_var(&var, management_token(i));
        writeln!(
            spec,
            "  env{i:03}:\n    url: {}\n    token_env: {var}",
            url(i)
        )?;
    }
    let names: Vec<String> = (0..envs).map(|i| format!("env{i:03}")).collect();
    writeln!(
        spec,
        "api_tokens:\n  ingest:\n    environments: [{}]\n    scopes: [metrics.ingest]\n    deliver:\n      - exec: {{ command: [\"true\", \"{{{{ env }}}}\"], secret_stdin: true }}",
        names.join(", ")
    )?;
    tokensmith::spec::load_str(&spec, "bench.yaml")
        .map_err(|d| anyhow::anyhow!("bench spec: {d:?}"))
}

/// A field of `/proc/self/status` in KiB (`VmRSS:`, `VmHWM:`).
pub fn proc_status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// KiB as MiB for printing.
pub fn mib(kb: Option<u64>) -> String {
    kb.map_or_else(|| "n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

/// A finished child process's resource use, from `wait4`.
pub struct ChildUsage {
    pub wall: Duration,
    pub user: Duration,
    pub system: Duration,
    /// Peak resident memory in KiB.
    pub max_rss_kb: u64,
    pub success: bool,
}

/// Run `command` to completion (its output discarded) and report what it used.
pub fn run_measured(command: &mut std::process::Command) -> std::io::Result<ChildUsage> {
    let started = std::time::Instant::now();
    let child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut status = 0;
    // SAFETY: wait4 on our own child, writing into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    Ok(ChildUsage {
        wall: started.elapsed(),
        user: tv(usage.ru_utime),
        system: tv(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss as u64,
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    })
}

/// User + system CPU time of this process so far (all threads).
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

//! Benchmark: `plan` for one environment holding 100,000 access tokens, served by the sandbox
//! over HTTP with no added latency. Prints the CPU time and wall time of reading the live
//! snapshot and planning, and the process's peak resident set (`VmHWM` from /proc/self/status),
//! next to the figures measured before (0.33 s CPU, 136 MiB), so a regression shows.
//!
//! The sandbox runs in this process, as the embedded `sandbox://` emulator does for the binary,
//! so its serving CPU and the memory of its 100,000 tokens are part of the figures; the resident
//! set after seeding is printed too, to tell the two apart.
//!
//! Run: `cargo bench --bench plan_memory` (add `-- --tokens 20000` for a quicker run). It is a
//! benchmark, not a test: it prints figures and asserts only that the plan is correct (the
//! declared tokens are created, the generated ones are listed).

// A benchmark reports its figures on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tokensmith::commands::session::ENVIRONMENT_CONCURRENCY;
use tokensmith::live::{read_snapshot, ClientSettings, DefaultConnector};
use tokensmith::model::EnvName;
use tokensmith::plan::{plan, PlanOptions};
use tokensmith::sandbox::{spawn, Sandbox, Seed};

#[path = "support/mod.rs"]
mod support;
use support::{cpu_time, mib, proc_status_kb};

/// Figures measured before this benchmark existed (issue 14).
const BEFORE_CPU: Duration = Duration::from_millis(330);
const BEFORE_PEAK_MIB: f64 = 136.0;

/// Tokens the spec declares (created by the plan).
const DECLARED: usize = 20;

fn tokens_arg() -> usize {
    let argv: Vec<String> = std::env::args().collect();
    argv.windows(2)
        .find(|w| w[0] == "--tokens")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(100_000)
}

fn main() -> anyhow::Result<()> {
    let tokens = tokens_arg();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(tokens))
}

async fn run(tokens: usize) -> anyhow::Result<()> {
    let admin = format!("dt0c01.{}.{}", "B".repeat(24), "S".repeat(64));
    let seed = format!(
        "frozen_clock: true\nstart_time: 2026-11-01T09:00:00Z\nenvironments:\n  big:\n    api_tokens:\n      - {{ name: tokensmith management, token: \"{admin}\", scopes: [apiTokens.read, apiTokens.write, activeGateTokenManagement.read, activeGateTokenManagement.write] }}\n    generated_api_tokens: {{ count: {tokens}, name_prefix: bulk, scopes: [metrics.ingest, logs.ingest] }}\n"
    );
    let sandbox = Sandbox::from_seed(&Seed::from_yaml(&seed)?)?;
    let rss_seeded = proc_status_kb("VmRSS:");
    let addr = spawn(sandbox).await?;

    std::env::set_var("TOKENSMITH_BENCH_BIG_TOKEN", &admin);
    let mut spec = format!(
        "version: 1\nenvironments:\n  big:\n    url: http://{addr}/e/big\n    token_env: TOKENSMITH_BENCH_BIG_TOKEN\napi_tokens:\n"
    );
    for i in 0..DECLARED {
        writeln!(
            spec,
            "  ingest-{i:02}:\n    environments: [big]\n    scopes: [metrics.ingest]\n    deliver:\n      - exec: {{ command: [\"true\", \"ingest-{i:02}\"], secret_stdin: true }}"
        )?;
    }
    let loaded = tokensmith::spec::load_str(&spec, "bench.yaml")
        .map_err(|d| anyhow::anyhow!("bench spec: {d:?}"))?;
    let connector = DefaultConnector::new(&ClientSettings::default())?;
    let only: Vec<EnvName> = Vec::new();

    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let read = read_snapshot(&loaded.desired, &only, &connector, ENVIRONMENT_CONCURRENCY).await?;
    let (cpu1, wall1) = (cpu_time(), Instant::now());
    let planned = plan(
        &loaded.desired,
        &read.snapshot,
        &tokensmith::model::TargetSnapshot::default(),
        time::OffsetDateTime::now_utc(),
        &PlanOptions::default(),
    )?;
    let (cpu2, wall2) = (cpu_time(), Instant::now());
    let peak = proc_status_kb("VmHWM:");

    let listed: usize = read
        .snapshot
        .environments
        .values()
        .map(|e| e.api_tokens.len())
        .sum();
    assert_eq!(listed, tokens + 1, "every live token is listed");
    assert_eq!(
        planned.summary.create, DECLARED,
        "the declared tokens are created"
    );

    let total_cpu = cpu2 - cpu0;
    println!(
        "plan_memory: one environment with {} live tokens, {DECLARED} declared",
        tokens + 1
    );
    println!(
        "  live read:   {:>7.1} ms CPU, {:>7.1} ms wall ({} API calls)",
        (cpu1 - cpu0).as_secs_f64() * 1e3,
        (wall1 - wall0).as_secs_f64() * 1e3,
        read.api_calls
    );
    println!(
        "  plan (pure): {:>7.1} ms CPU, {:>7.1} ms wall for {} steps",
        (cpu2 - cpu1).as_secs_f64() * 1e3,
        (wall2 - wall1).as_secs_f64() * 1e3,
        planned.steps.len()
    );
    println!(
        "  total:       {:>7.1} ms CPU (was {} ms for 100,000 tokens)",
        total_cpu.as_secs_f64() * 1e3,
        BEFORE_CPU.as_millis()
    );
    println!(
        "  memory:      peak {} (VmHWM; was {BEFORE_PEAK_MIB} MiB), of which the sandbox after seeding {}",
        mib(peak),
        mib(rss_seeded)
    );
    Ok(())
}

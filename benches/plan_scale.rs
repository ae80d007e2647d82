//! Benchmark: `plan` over 100 environments × 1,000 API tokens each behind one Managed host
//! (`http://127.0.0.1:PORT/e/envNNN`), served by the sandbox with 50 ms of latency on every
//! request. Prints the time to read the live snapshot, the time to
//! plan, and the API calls made, next to their lower bounds.
//!
//! Run: `cargo bench --bench plan_scale` (add `-- --envs 20 --tokens 500 --latency-ms 10` for a
//! quicker run). It is a benchmark, not a test: it prints figures and asserts only that the
//! plan is correct (one create per environment) and that no call is made per token.

// A benchmark prints its figures; the one-door rule for output is the library's.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Instant;

use tokensmith::commands::session::ENVIRONMENT_CONCURRENCY;
use tokensmith::live::{read_snapshot, ClientSettings, DefaultConnector};
use tokensmith::model::EnvName;
use tokensmith::plan::{plan, PlanOptions};
use tokensmith::sandbox::{spawn, Sandbox, Seed};

#[path = "support/mod.rs"]
mod support;
use support::{fleet_seed, fleet_spec};

struct Args {
    envs: usize,
    tokens: usize,
    latency_ms: u64,
}

fn args() -> Args {
    let mut a = Args {
        envs: 100,
        tokens: 1_000,
        latency_ms: 50,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = argv.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (argv[i].as_str(), value) {
            ("--envs", Some(v)) => a.envs = v as usize,
            ("--tokens", Some(v)) => a.tokens = v as usize,
            ("--latency-ms", Some(v)) => a.latency_ms = v,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn main() -> anyhow::Result<()> {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(&a))
}

async fn run(a: &Args) -> anyhow::Result<()> {
    // The sandbox: `envs` environments, each with a known management token and `tokens`
    // generated unmanaged tokens; every request delayed by `latency_ms`.
    let seed = format!(
        "faults: {{ latency: {{ ms: {} }} }}\n{}",
        a.latency_ms,
        fleet_seed(a.envs, a.tokens)
    );
    let seed: Seed = serde_yaml::from_str(&seed)?;
    let sandbox = Sandbox::from_seed(&seed)?;
    let addr = spawn(sandbox).await?;

    // The spec: every environment, one managed token each, management tokens from variables.
    let loaded = fleet_spec(a.envs, |i| format!("http://{addr}/e/env{i:03}"))?;

    let connector = DefaultConnector::new(&ClientSettings::default())?;
    let only: Vec<EnvName> = Vec::new();
    let started = Instant::now();
    let read = read_snapshot(&loaded.desired, &only, &connector, ENVIRONMENT_CONCURRENCY).await?;
    let read_time = started.elapsed();
    let listed: usize = read
        .snapshot
        .environments
        .values()
        .map(|e| e.api_tokens.len())
        .sum();

    let targets = tokensmith::model::TargetSnapshot::default();
    let started = Instant::now();
    let planned = plan(
        &loaded.desired,
        &read.snapshot,
        &targets,
        time::OffsetDateTime::now_utc(),
        &PlanOptions::default(),
    )?;
    let plan_time = started.elapsed();
    assert_eq!(planned.summary.create, a.envs, "one create per environment");

    // Lower bounds: each environment needs one API-token list page (pageSize 10000 ≥ tokens)
    // and one ActiveGate-token list. Every environment here is behind one Managed host, where
    // the client keeps at most `max_in_flight_per_host` requests in flight, so the read cannot
    // beat ceil(calls / cap) round trips of `latency` (benches/throughput.rs measures the same
    // fleet on separate hosts, against the one-round-trip floor).
    let pages = a.tokens.div_ceil(10_000).max(1);
    let min_calls = a.envs * (pages + 1);
    let cap = ClientSettings::default().max_in_flight_per_host;
    let waves = min_calls.div_ceil(cap);
    let min_read_ms = waves as u64 * a.latency_ms;
    println!(
        "plan_scale: {} environments × {} tokens on one Managed host, {} ms latency per request, {} environments at once, {cap} requests in flight per host",
        a.envs, a.tokens, a.latency_ms, ENVIRONMENT_CONCURRENCY
    );
    println!("  tokens listed:     {listed}");
    println!("  API calls:         {} (lower bound {min_calls}: one page per environment and token kind)", read.api_calls);
    println!(
        "  live read:         {:>8.1} ms (lower bound {min_read_ms} ms: {min_calls} calls, {cap} at a time)",
        read_time.as_secs_f64() * 1e3
    );
    println!(
        "  plan (pure):       {:>8.1} ms for {} steps",
        plan_time.as_secs_f64() * 1e3,
        planned.steps.len()
    );
    Ok(())
}

//! Benchmark: throughput under Dynatrace's limits (issue 14), two figures next to their bounds.
//!
//! (a) `tokensmith apply` of N new tokens (default 60) in one environment whose sandbox answers
//!     at most `requests_per_minute` (default 40) requests per window: the real binary against a
//!     sandbox served from this process, once with the `X-RateLimit-*` headers (Managed) and once
//!     without them (only the 429's `Retry-After`). Printed: the calls the sandbox saw by kind
//!     (token lists, writes, other), the 429s and how many each window got, the elapsed time, and
//!     the rate-limit lower bound: with C calls and L per window of length W, the last call cannot
//!     go before (ceil(C / L) - 1) × W. Goal: ≤ 1.2× the bound and at most one 429 per window.
//!     The window is Dynatrace's minute unless `--window-ms` shortens it (a sandbox-only setting;
//!     the printed bound uses the window actually configured).
//! (b) reading the live state of 100 environments × 1,000 tokens at 50 ms sandbox latency, each
//!     environment a different host (the sandbox is served on one loopback port per environment:
//!     the port is part of the host the client caps), then planning. Printed: the read's wall
//!     time against two floors, both labelled: the round-trip floor (round trips per environment
//!     × latency; the two lists of an environment go together, one page each, so one round trip)
//!     and the issue's own reading, two calls per environment one after the other (2 × latency,
//!     "about 0.1 s"); the same read with no latency (what serving and parsing 100,000 tokens
//!     costs this machine, sandbox and client sharing its cores, which no concurrency removes);
//!     the same requests, latency included, received by a client that decodes nothing (the
//!     sandbox's serving and the transport alone, so what is left of the goal for decoding
//!     shows); the same read against servers that replay the sandbox's recorded answers after
//!     the same latency and do nothing else (tokensmith's own read, as in production, where the
//!     servers' CPU is not on this machine); and the calls (lower bound 2 per environment).
//!     Goal: ≤ 1.5× the floor. The live read and tokensmith's own read are each run `--runs`
//!     times (default 5), each with a new client as each `tokensmith plan` has: a single run on
//!     a shared 2-core machine can be far off, so the median is the figure and the fastest is
//!     printed beside it.
//!
//! The figures of plan_scale (one Managed host), plan_memory (100,000 tokens planned) and
//! spec_scale (5,000- and 50,000-token specs) are in those benchmarks.
//!
//! Run: `cargo bench --bench throughput` (about two and a half minutes: two applies of a minute
//! each). Quicker: `-- --window-ms 10000 --tokens 30 --rpm 20 --envs 50`; one part only:
//! `-- --only b` (or `--only a`). It is a benchmark, not
//! a test: it prints figures and asserts only that the applies converge and the reads are whole.

// A benchmark reports its figures on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tokensmith::commands::session::ENVIRONMENT_CONCURRENCY;
use tokensmith::live::{read_snapshot, ClientSettings, DefaultConnector};
use tokensmith::model::EnvName;
use tokensmith::plan::{plan, PlanOptions};
use tokensmith::sandbox::{spawn, Faults, Sandbox, Seed};

#[path = "support/mod.rs"]
mod support;
use support::{cpu_time, fleet_seed, fleet_spec};

struct Args {
    tokens: usize,
    rpm: u32,
    window_ms: u64,
    envs: usize,
    env_tokens: usize,
    latency_ms: u64,
    /// `--only a` or `--only b`: run one part; both by default.
    only: Option<String>,
    /// How many times (b) repeats each read; the median and the fastest are printed.
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        tokens: 60,
        rpm: 40,
        window_ms: 60_000,
        envs: 100,
        env_tokens: 1_000,
        latency_ms: 50,
        only: None,
        runs: 5,
    };
    let argv: Vec<String> = std::env::args().collect();
    for w in argv.windows(2) {
        if w[0] == "--only" {
            a.only = Some(w[1].clone());
            continue;
        }
        let Ok(v) = w[1].parse::<u64>() else { continue };
        match w[0].as_str() {
            "--tokens" => a.tokens = v as usize,
            "--rpm" => a.rpm = v as u32,
            "--window-ms" => a.window_ms = v,
            "--envs" => a.envs = v as usize,
            "--env-tokens" => a.env_tokens = v as usize,
            "--latency-ms" => a.latency_ms = v,
            "--runs" => a.runs = (v as usize).max(1),
            _ => {}
        }
    }
    a
}

fn main() -> anyhow::Result<()> {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!("throughput (issue 14)");
    let run = |part: &str| a.only.as_deref().is_none_or(|o| o == part);
    if let Some(o) = a.only.as_deref().filter(|o| !matches!(*o, "a" | "b")) {
        anyhow::bail!("--only {o}: use a (the rate-limited applies) or b (the fleet read)");
    }
    if run("a") {
        for omit_headers in [false, true] {
            rate_limited_apply(&rt, &a, omit_headers)?;
        }
    }
    if run("b") {
        rt.block_on(fleet_read(&a))?;
    }
    Ok(())
}

const TOKEN_ENV: &str = "TS_BENCH_TOKEN";

fn admin() -> String {
    format!("dt0c01.{}.{}", "A".repeat(24), "A".repeat(64))
}

/// (a): one apply of `tokens` new tokens under the request limit.
fn rate_limited_apply(rt: &tokio::runtime::Runtime, a: &Args, omit: bool) -> anyhow::Result<()> {
    let seed = format!(
        "start_time: 2026-06-01T00:00:00Z\nfrozen_clock: true\nenvironments:\n  env1:\n    api_tokens:\n      - {{ name: admin, token: \"{}\", scopes: [apiTokens.read, apiTokens.write, activeGateTokenManagement.read, activeGateTokenManagement.write] }}\n",
        admin()
    );
    let sandbox = Sandbox::from_seed(&Seed::from_yaml(&seed)?)?;
    let addr = rt.block_on(spawn(sandbox.clone()))?;
    let dir = tempfile::tempdir()?;
    let mut spec = format!(
        "version: 1\nenvironments:\n  demo: {{ url: \"http://{addr}/e/env1\", token_env: {TOKEN_ENV} }}\napi_tokens:\n"
    );
    for i in 0..a.tokens {
        writeln!(
            spec,
            "  t{i:03}: {{ environments: [demo], scopes: [metrics.ingest], deliver: [{{ file: {{ path: out/t{i:03} }} }}] }}"
        )?;
    }
    std::fs::write(dir.path().join("tokensmith.yaml"), spec)?;
    sandbox.set_faults(Faults {
        requests_per_minute: Some(a.rpm),
        rate_limit_window_ms: Some(a.window_ms),
        omit_rate_limit_headers: omit,
        ..Faults::default()
    })?;

    let started = Instant::now();
    let out = tokensmith(dir.path(), &["apply", "--auto-approve"]);
    let took = started.elapsed();
    anyhow::ensure!(out.0, "apply failed:\n{}", out.1);

    let log = sandbox.request_log();
    let (mut lists, mut writes, mut other, mut throttled) = (0usize, 0usize, 0usize, 0usize);
    let mut per_window: BTreeMap<u64, usize> = BTreeMap::new();
    for e in &log {
        if e.status == 429 {
            throttled += 1;
            if let Some(n) = e
                .fault
                .as_deref()
                .and_then(|f| f.strip_prefix("throttled 429 (window "))
                .and_then(|f| f.strip_suffix(')'))
                .and_then(|n| n.parse().ok())
            {
                *per_window.entry(n).or_default() += 1;
            }
            continue;
        }
        let list = e.method == "GET"
            && ["/apiTokens", "/activeGateTokens"]
                .iter()
                .any(|p| e.path.split('?').next().unwrap_or("").ends_with(p));
        if list {
            lists += 1;
        } else if e.method != "GET" {
            writes += 1;
        } else {
            other += 1;
        }
    }
    let calls = lists + writes + other;
    let windows = calls.div_ceil(a.rpm as usize);
    let bound = Duration::from_millis((windows.saturating_sub(1)) as u64 * a.window_ms);
    let ratio = if bound.is_zero() {
        "n/a (fits in one window)".to_owned()
    } else {
        format!("{:.2}×", took.as_secs_f64() / bound.as_secs_f64())
    };
    let worst = per_window.values().max().copied().unwrap_or(0);
    println!(
        "(a) apply {} new tokens, {} requests per {:.0} s window, X-RateLimit headers {}",
        a.tokens,
        a.rpm,
        a.window_ms as f64 / 1e3,
        if omit { "omitted" } else { "sent" }
    );
    println!(
        "    calls answered: {calls} = {lists} token lists + {writes} writes + {other} other (the plan needs 2 lists + {} creates; the rest is the apply lease and its re-read under the lock)",
        a.tokens
    );
    println!(
        "    429s: {throttled} (per window: {per_window:?}; goal at most 1 per window, worst {worst})"
    );
    println!(
        "    elapsed: {:.1} s; rate-limit bound (ceil({calls}/{}) - 1) × {:.0} s = {:.1} s; ratio {ratio} (goal ≤ 1.2×)",
        took.as_secs_f64(),
        a.rpm,
        a.window_ms as f64 / 1e3,
        bound.as_secs_f64()
    );
    Ok(())
}

fn tokensmith(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tokensmith"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("CI", "1")
        .env(TOKEN_ENV, admin())
        .output()
        .expect("tokensmith runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// (b): the live read of `envs` environments on as many hosts, then the plan.
async fn fleet_read(a: &Args) -> anyhow::Result<()> {
    let sandbox = Sandbox::from_seed(&serde_yaml::from_str::<Seed>(&fleet_seed(
        a.envs,
        a.env_tokens,
    ))?)?;
    // One listener per environment: each environment is its own host, as SaaS environments are.
    let mut addrs = Vec::with_capacity(a.envs);
    for _ in 0..a.envs {
        addrs.push(spawn(sandbox.clone()).await?);
    }
    let loaded = fleet_spec(a.envs, |i| format!("http://{}/e/env{i:03}", addrs[i]))?;
    let only: Vec<EnvName> = Vec::new();

    // The same read without latency first: what serving and parsing costs on this machine.
    let connector = DefaultConnector::new(&ClientSettings::default())?;
    let (started, cpu_started) = (Instant::now(), cpu_time());
    let read = read_snapshot(&loaded.desired, &only, &connector, ENVIRONMENT_CONCURRENCY).await?;
    let (cpu_only, cpu_only_cpu) = (started.elapsed(), cpu_time() - cpu_started);
    assert_eq!(read.snapshot.environments.len(), a.envs);

    sandbox.set_faults(Faults {
        latency: Some(tokensmith::sandbox::faults::Latency {
            ms: a.latency_ms,
            rate: 1.0,
        }),
        ..Faults::default()
    })?;
    let mut live = Samples::default();
    let mut connector = DefaultConnector::new(&ClientSettings::default())?;
    let mut read = None;
    for _ in 0..a.runs {
        // A new client each time, as each `tokensmith plan` is: new connections, new pacing.
        connector = DefaultConnector::new(&ClientSettings::default())?;
        let (started, cpu_started) = (Instant::now(), cpu_time());
        read =
            Some(read_snapshot(&loaded.desired, &only, &connector, ENVIRONMENT_CONCURRENCY).await?);
        live.push(started.elapsed(), cpu_time() - cpu_started);
    }
    let read = read.expect("at least one run");
    let listed: usize = read
        .snapshot
        .environments
        .values()
        .map(|e| e.api_tokens.len())
        .sum();
    assert_eq!(listed, a.envs * (a.env_tokens + 1), "every token listed");

    // The same 200 requests, latency included, by a client that only receives the bodies: what
    // the sandbox's serving and the transport cost on this machine before any decoding.
    let (transport, transport_cpu, bytes, recorded) = receive_only(&addrs).await?;

    // The same read against servers that replay those answers: what tokensmith's own read
    // costs when, as in production, the servers' CPU is not on this machine.
    let replayed = replay(recorded, Duration::from_millis(a.latency_ms)).await?;
    let replayed = fleet_spec(a.envs, |i| format!("http://{}/e/env{i:03}", replayed[i]))?;
    let mut own = Samples::default();
    for _ in 0..a.runs {
        let connector = DefaultConnector::new(&ClientSettings::default())?;
        let (started, cpu_started) = (Instant::now(), cpu_time());
        let read_replayed = read_snapshot(
            &replayed.desired,
            &only,
            &connector,
            ENVIRONMENT_CONCURRENCY,
        )
        .await?;
        own.push(started.elapsed(), cpu_time() - cpu_started);
        assert_eq!(
            read_replayed.snapshot, read.snapshot,
            "the replay reads the same fleet"
        );
    }

    let started = Instant::now();
    let planned = plan(
        &loaded.desired,
        &read.snapshot,
        &tokensmith::model::TargetSnapshot::default(),
        time::OffsetDateTime::now_utc(),
        &PlanOptions::default(),
    )?;
    let plan_time = started.elapsed();
    assert_eq!(planned.summary.create, a.envs, "one create per environment");

    let pages = a.env_tokens.div_ceil(10_000).max(1);
    let floor_ms = pages as u64 * a.latency_ms;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "(b) plan over {} environments × {} tokens on {} hosts, {} ms latency per request",
        a.envs, a.env_tokens, a.envs, a.latency_ms
    );
    println!(
        "    API calls: {} (lower bound {}: one page per environment and token kind); 429s {}",
        read.api_calls,
        a.envs * (pages + 1),
        connector.calls().throttled()
    );
    let sequential_ms = 2 * floor_ms;
    println!(
        "    live read, {} runs: median {} (fastest {:.0} ms); ratio {:.2}× the round-trip floor of {floor_ms} ms ({pages} round trip × {} ms, both lists at once; goal ≤ 1.5×); ratio {:.2}× the issue's reading of {sequential_ms} ms (2 calls per environment one after the other)",
        a.runs,
        live.median("client and sandbox together"),
        ms(live.fastest()),
        ms(live.median_wall()) / floor_ms as f64,
        a.latency_ms,
        ms(live.median_wall()) / sequential_ms as f64
    );
    println!(
        "    the same read without latency: {:.0} ms (CPU {:.0} ms: serving and parsing {listed} tokens in this process); floor + that = {:.0} ms",
        ms(cpu_only),
        ms(cpu_only_cpu),
        floor_ms as f64 + ms(cpu_only)
    );
    println!(
        "    the same requests received but not decoded: {:.0} ms (CPU {:.0} ms, {:.1} MB: the sandbox serving and the transport alone); what decoding can take, within the goal: {:.0} ms",
        ms(transport),
        ms(transport_cpu),
        bytes as f64 / 1e6,
        1.5 * floor_ms as f64 - ms(transport)
    );
    println!(
        "    tokensmith's own read, against servers that replay those answers after the same latency and cost this machine nothing else, {} runs: median {} (fastest {:.0} ms); ratio {:.2}× the round-trip floor of {floor_ms} ms (goal ≤ 1.5×); {:.2}× the issue's reading of {sequential_ms} ms",
        a.runs,
        own.median("client and replay sockets"),
        ms(own.fastest()),
        ms(own.median_wall()) / floor_ms as f64,
        ms(own.median_wall()) / sequential_ms as f64
    );
    println!(
        "    plan (pure): {:.1} ms for {} steps",
        ms(plan_time),
        planned.steps.len()
    );
    Ok(())
}

/// Wall and CPU times of repeated runs: one run on a shared 2-core machine can be far off, so
/// the figure compared with the goal is the median, with the fastest beside it.
#[derive(Default)]
struct Samples(Vec<(Duration, Duration)>);

impl Samples {
    fn push(&mut self, wall: Duration, cpu: Duration) {
        self.0.push((wall, cpu));
    }

    /// The run of median wall time.
    fn middle(&self) -> (Duration, Duration) {
        let mut runs = self.0.clone();
        runs.sort();
        runs[runs.len() / 2]
    }

    fn median_wall(&self) -> Duration {
        self.middle().0
    }

    fn fastest(&self) -> Duration {
        self.0.iter().map(|r| r.0).min().unwrap_or_default()
    }

    /// "123 ms (CPU 140 ms, `whose`)" for the median run.
    fn median(&self, whose: &str) -> String {
        let (wall, cpu) = self.middle();
        format!(
            "{:.0} ms (CPU {:.0} ms, {whose})",
            wall.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e3
        )
    }
}

/// One environment's list answers as the sandbox gave them, by path: what a replay serves.
type Recorded = HashMap<String, (reqwest::header::HeaderMap, axum::body::Bytes)>;

/// Every list request of the read, all at once (one connection each, as the read opens), with
/// the bodies received and not decoded: wall time, CPU time, bytes, and the answers by
/// environment.
async fn receive_only(
    addrs: &[std::net::SocketAddr],
) -> anyhow::Result<(Duration, Duration, usize, Vec<Recorded>)> {
    use tokensmith::live::environment::{
        ACTIVEGATE_TOKEN_PAGE_SIZE, API_TOKEN_FIELDS, API_TOKEN_PAGE_SIZE,
    };
    let client = reqwest::Client::new();
    let mut requests = Vec::with_capacity(addrs.len() * 2);
    for (i, addr) in addrs.iter().enumerate() {
        let base = format!("http://{addr}/e/env{i:03}/api/v2");
        let auth = format!("Api-Token {}", support::management_token(i));
        requests.push(
            client
                .get(format!("{base}/apiTokens"))
                .query(&[
                    ("pageSize", API_TOKEN_PAGE_SIZE.to_string()),
                    ("fields", API_TOKEN_FIELDS.to_owned()),
                ])
                .header("Authorization", auth.clone()),
        );
        requests.push(
            client
                .get(format!("{base}/activeGateTokens"))
                .query(&[("pageSize", ACTIVEGATE_TOKEN_PAGE_SIZE.to_string())])
                .header("Authorization", auth),
        );
    }
    let (started, cpu_started) = (Instant::now(), cpu_time());
    let answers = futures::future::try_join_all(requests.into_iter().map(|r| async move {
        let response = r.send().await?.error_for_status()?;
        let (path, headers) = (response.url().path().to_owned(), response.headers().clone());
        Ok::<_, reqwest::Error>((path, headers, response.bytes().await?))
    }))
    .await?;
    let (took, cpu) = (started.elapsed(), cpu_time() - cpu_started);
    let bytes = answers.iter().map(|(_, _, b)| b.len()).sum();
    let mut recorded = vec![Recorded::new(); addrs.len()];
    for (i, (path, headers, body)) in answers.into_iter().enumerate() {
        recorded[i / 2].insert(path, (headers, body));
    }
    Ok((took, cpu, bytes, recorded))
}

/// One server per environment that answers each list with the sandbox's recorded answer after
/// `latency`, doing no other work: servers whose CPU is not this machine's, as real
/// environments' are. A request for anything not recorded is a 404, which fails the read.
async fn replay(
    recorded: Vec<Recorded>,
    latency: Duration,
) -> anyhow::Result<Vec<std::net::SocketAddr>> {
    let mut addrs = Vec::with_capacity(recorded.len());
    for answers in recorded {
        let answers = std::sync::Arc::new(answers);
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let answers = answers.clone();
            async move {
                tokio::time::sleep(latency).await;
                let mut response = axum::response::Response::new(axum::body::Body::empty());
                match answers.get(uri.path()) {
                    Some((headers, body)) => {
                        *response.headers_mut() = headers.clone();
                        *response.body_mut() = axum::body::Body::from(body.clone());
                    }
                    None => *response.status_mut() = axum::http::StatusCode::NOT_FOUND,
                }
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        addrs.push(listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    Ok(addrs)
}

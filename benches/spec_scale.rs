//! Benchmark: validating large specs. Generates plain specs (no anchors, no aliases) of 5,000
//! and 50,000 API tokens, about 140 bytes each, writes them to a temporary file and loads them
//! the way `tokensmith validate` does (read, parse, resolve, check), printing each time next to
//! its goal so a regression shows.
//!
//! Run: `cargo bench --bench spec_scale` (the goals are for the release build `cargo bench`
//! makes). It is a benchmark, not a test: it prints figures and asserts only that every spec
//! loads with the expected number of tokens.

use std::time::{Duration, Instant};

/// (tokens, goal, what the goal is).
const CASES: &[(usize, Duration, &str)] = &[
    (5_000, Duration::from_millis(100), "was 73 ms"),
    (50_000, Duration::from_millis(500), "goal ≤ 0.5 s"),
];

/// Timed runs per case; the best and the median are printed.
const RUNS: usize = 5;

/// A plain spec of `tokens` API tokens in two environments, each delivered to its own file.
fn plain_spec(tokens: usize) -> String {
    let mut text = String::from(
        "version: 1\nenvironments:\n  prod:\n    url: sandbox://prod\n  stage:\n    url: sandbox://stage\napi_tokens:\n",
    );
    for i in 0..tokens {
        let env = if i % 2 == 0 { "prod" } else { "stage" };
        text.push_str(&format!(
            "  ingest-{i:06}:\n    environments: [{env}]\n    scopes: [metrics.ingest, logs.ingest]\n    deliver:\n      - file: {{ path: out/ingest-{i:06} }}\n"
        ));
    }
    text
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    println!("spec_scale: validating plain specs (read, parse, resolve, check), best and median of {RUNS} runs");
    for &(tokens, goal, note) in CASES {
        let text = plain_spec(tokens);
        let path = dir.path().join(format!("spec-{tokens}.yaml"));
        std::fs::write(&path, &text)?;
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            let loaded = tokensmith::spec::load(&path)
                .map_err(|d| anyhow::anyhow!("the generated spec does not load: {d}"))?;
            times.push(started.elapsed());
            assert_eq!(loaded.desired.tokens.len(), tokens);
        }
        times.sort();
        let (best, median) = (times[0], times[RUNS / 2]);
        println!(
            "  {tokens:>6} tokens ({:>4.1} MB): best {:>7.1} ms, median {:>7.1} ms  ({note}; goal ≤ {} ms: {})",
            text.len() as f64 / 1e6,
            best.as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e3,
            goal.as_millis(),
            if median <= goal { "met" } else { "MISSED" }
        );
    }
    Ok(())
}

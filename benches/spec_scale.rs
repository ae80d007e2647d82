//! Benchmark: validating large specs. Generates plain specs (no anchors, no aliases) of 5,000
//! and 50,000 API tokens, about 140 bytes each, writes them to a temporary file and loads them
//! the way `tokensmith validate` does (read, parse, resolve, check), printing each time next to
//! its goal so a regression shows.
//!
//! Run: `cargo bench --bench spec_scale` (the goals are for the release build `cargo bench`
//! makes). A large spec is parsed, deserialized and resolved on every core, so the goal is the
//! time a user waits: the median wall time. The CPU time (all threads) is printed beside it,
//! with the cores used; on a busy machine the wall time includes waiting for a core, so compare
//! figures from a quiet one. It is a benchmark, not a test: it prints figures and asserts only
//! that every spec loads with the expected number of tokens.
//!
//! Beside the in-process figures, the same spec is validated by the real binary in a fresh
//! process, as a user runs it: its wall time, CPU split into user and system time, and peak
//! memory. A fresh heap faults in every page the working set takes, which on a VM is costly
//! system time that the warm in-process runs do not pay.

// A benchmark reports its figures on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;
use support::{cpu_time, mib, run_measured};

/// (tokens, goal, what the goal is).
const CASES: &[(usize, Duration, &str)] = &[
    (5_000, Duration::from_millis(100), "was 73 ms"),
    (50_000, Duration::from_millis(500), "issue 14"),
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
        let mut walls = Vec::with_capacity(RUNS);
        let mut cpus = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let (started, cpu) = (Instant::now(), cpu_time());
            let loaded = tokensmith::spec::load(&path)
                .map_err(|d| anyhow::anyhow!("the generated spec does not load: {d}"))?;
            walls.push(started.elapsed());
            cpus.push(cpu_time() - cpu);
            assert_eq!(loaded.desired.tokens.len(), tokens);
            // A large spec's working set is freed on another thread after `load` returns; let
            // that finish so it is not counted in the next run.
            drop(loaded);
            std::thread::sleep(Duration::from_millis(300));
        }
        walls.sort();
        cpus.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let wall = walls[RUNS / 2];
        println!(
            "  {tokens:>6} tokens ({:>4.1} MB): wall median {:>7.1} ms, best {:>7.1} ms; CPU median {:>7.1} ms on {} cores  ({note}; goal ≤ {} ms wall: {})",
            text.len() as f64 / 1e6,
            ms(wall),
            ms(walls[0]),
            ms(cpus[RUNS / 2]),
            tokensmith::spec::parallel::cores(),
            goal.as_millis(),
            if wall <= goal { "met" } else { "MISSED" }
        );

        // What a user waits for: `tokensmith validate` in a fresh process, whose heap starts
        // empty, so every page the spec's working set takes is faulted in (system time).
        let mut runs = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let usage = run_measured(
                std::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"))
                    .args(["validate", "-f"])
                    .arg(&path),
            )?;
            assert!(
                usage.success,
                "tokensmith validate failed on the generated spec"
            );
            runs.push(usage);
        }
        runs.sort_by_key(|u| u.wall);
        let median = &runs[RUNS / 2];
        println!(
            "         `tokensmith validate`, a fresh process: wall median {:>7.1} ms, best {:>7.1} ms; user {:.1} ms, system {:.1} ms; peak RSS {}  (goal ≤ {} ms wall: {})",
            ms(median.wall),
            ms(runs[0].wall),
            ms(median.user),
            ms(median.system),
            mib(Some(median.max_rss_kb)),
            goal.as_millis(),
            if median.wall <= goal { "met" } else { "MISSED" }
        );
    }
    Ok(())
}

//! Benchmark: listing 100,000 access tokens from the sandbox over real HTTP.
//!
//! Prints requests per second for (a) the first page with the default page size, (b) full walks
//! with `pageSize=10000` (11 requests each, as `plan` does), and the process's memory: resident
//! set after seeding and the peak (`VmHWM` from /proc/self/status). Run with
//! `cargo bench --bench sandbox_list`.

// A benchmark prints its figures; the one-door rule for output is the library's.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use serde_json::Value;
use tokensmith::sandbox::{spawn, Sandbox, Seed};

#[path = "support/mod.rs"]
mod support;
use support::{mib, proc_status_kb};

const TOKENS: usize = 100_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let admin = format!("dt0c01.{}.{}", "A".repeat(24), "A".repeat(64));
    let seed = format!(
        "frozen_clock: true\nenvironments:\n  bench:\n    api_tokens:\n      - {{ name: admin, token: \"{admin}\", scopes: [apiTokens.read] }}\n    generated_api_tokens: {{ count: {TOKENS}, name_prefix: bulk, scopes: [metrics.ingest, logs.ingest] }}\n"
    );
    let rss_before = proc_status_kb("VmRSS:");
    let t = Instant::now();
    let sandbox = Sandbox::from_seed(&Seed::from_yaml(&seed).unwrap()).unwrap();
    let seeded_in = t.elapsed();
    let rss_seeded = proc_status_kb("VmRSS:");
    let addr = spawn(sandbox).await.unwrap();
    let base = format!("http://{addr}/api/v2/apiTokens");
    let client = reqwest::Client::new();
    let get = {
        let (client, admin) = (client.clone(), admin.clone());
        move |url: String| {
            let (client, admin) = (client.clone(), admin.clone());
            async move {
                let r = client
                    .get(url)
                    .header("Authorization", format!("Api-Token {admin}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()
            }
        }
    };

    // (a) first page, default page size, 4 concurrent clients for 3 seconds.
    let deadline = Instant::now() + Duration::from_secs(3);
    let t = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..4 {
        let get = get.clone();
        let url = base.clone();
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let page = get(url.clone()).await;
                assert_eq!(page["totalCount"], TOKENS as u64 + 1);
                n += 1;
            }
            n
        }));
    }
    let mut first_pages = 0;
    for w in workers {
        first_pages += w.await.unwrap();
    }
    let first_rate = first_pages as f64 / t.elapsed().as_secs_f64();

    // (b) full walks with pageSize=10000 and all fields a planner asks for.
    let t = Instant::now();
    let mut requests = 0u64;
    let mut walks = 0;
    while t.elapsed() < Duration::from_secs(3) || walks == 0 {
        let mut url = format!("{base}?pageSize=10000&fields=%2Bscopes,%2BexpirationDate,%2BlastUsedDate,%2BmodifiedDate");
        let mut seen = 0;
        loop {
            let page = get(url).await;
            requests += 1;
            seen += page["apiTokens"].as_array().unwrap().len();
            match page["nextPageKey"].as_str() {
                Some(k) => url = format!("{base}?nextPageKey={k}"),
                None => break,
            }
        }
        assert_eq!(seen, TOKENS + 1);
        walks += 1;
    }
    let walk_secs = t.elapsed().as_secs_f64();

    println!(
        "sandbox list benchmark: {} tokens in one environment",
        TOKENS + 1
    );
    println!(
        "  seeding:                      {:.2} s",
        seeded_in.as_secs_f64()
    );
    println!("  first page (pageSize=200):    {first_rate:.1} requests/s (4 concurrent clients)");
    println!(
        "  full walk (pageSize=10000):   {:.1} requests/s, {:.2} s per walk of {} pages",
        requests as f64 / walk_secs,
        walk_secs / walks as f64,
        requests / walks
    );
    println!(
        "  memory: RSS before seeding {}, after seeding {}, peak {}",
        mib(rss_before),
        mib(rss_seeded),
        mib(proc_status_kb("VmHWM:"))
    );
}

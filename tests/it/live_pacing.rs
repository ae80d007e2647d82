//! Pacing under rate limits and the per-host cap, against the sandbox's request limit (with and
//! without its `X-RateLimit-*` headers) and counting servers. No timing assertions: what is
//! asserted is how many 429s each throttling window saw and how many requests a host had in
//! flight at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use tokensmith::live::{
    read_snapshot, ClientSettings, DefaultConnector, EnvironmentClient, EnvironmentRead,
    RetryPolicy, Transport,
};
use tokensmith::model::{Desired, Endpoint, EnvName, Environment, Secret, UnmanagedPolicy};
use tokensmith::sandbox::{spawn, Faults, Sandbox, Seed};

use crate::support::binary_world::World;
use crate::support::http_stub::MGMT_TOKEN;
use crate::support::saturation::Saturation;
use crate::support::tok;

/// Client settings whose retries honour a one-second `Retry-After` in full (the window of the
/// tests is shorter, so a capped wait would walk into the same closed window again).
fn settings() -> ClientSettings {
    ClientSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        deadline: Duration::from_secs(60),
        retry: RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(50),
            multiplier: 2.0,
            max_delay: Duration::from_secs(5),
            jitter: 0.0,
        },
        ..ClientSettings::default()
    }
}

/// The sandbox's throttled 429s by window number, from its request log.
fn throttled_per_window(sandbox: &Sandbox) -> BTreeMap<u64, usize> {
    let mut per = BTreeMap::new();
    for entry in sandbox.request_log() {
        if let Some(n) = entry
            .fault
            .as_deref()
            .and_then(|f| f.strip_prefix("throttled 429 (window "))
            .and_then(|f| f.strip_suffix(')'))
        {
            *per.entry(n.parse::<u64>().unwrap()).or_insert(0) += 1;
        }
    }
    per
}

/// `n` concurrent list calls to one sandbox environment limited to `limit` requests per
/// `window_ms`; returns the throttled 429s per window and the 429s the client counted.
async fn burst(
    n: usize,
    limit: u32,
    window_ms: u64,
    omit_headers: bool,
) -> (BTreeMap<u64, usize>, u64) {
    let seed = format!(
        "frozen_clock: true\nstart_time: 2026-06-01T00:00:00Z\nenvironments:\n  env1:\n    api_tokens:\n      - {{ name: admin, token: \"{}\", scopes: [apiTokens.read] }}\n",
        tok('A')
    );
    let sandbox = Sandbox::from_seed(&Seed::from_yaml(&seed).unwrap()).unwrap();
    sandbox
        .set_faults(Faults {
            requests_per_minute: Some(limit),
            rate_limit_window_ms: Some(window_ms),
            omit_rate_limit_headers: omit_headers,
            ..Faults::default()
        })
        .unwrap();
    let addr = spawn(sandbox.clone()).await.unwrap();
    let transport = Transport::new(&settings()).unwrap();
    let client = EnvironmentClient::new(
        EnvName::new("env1"),
        &format!("http://{addr}/e/env1"),
        Secret::new(tok('A')),
        &transport,
    )
    .unwrap();
    let lists = (0..n).map(|_| client.list_api_tokens());
    for result in futures::future::join_all(lists).await {
        assert_eq!(result.unwrap().len(), 1);
    }
    (
        throttled_per_window(&sandbox),
        transport.calls().throttled(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rate_limit_headers_no_window_sees_more_than_one_429() {
    // The limit is above what a domain sends before any response reports the limit (8), so
    // even the first burst fits in the window; the per-host cap (32) is above both.
    let (per_window, counted) = burst(30, 10, 300, false).await;
    assert!(per_window.values().all(|&n| n <= 1), "{per_window:?}");
    assert_eq!(counted, per_window.values().sum::<usize>() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_rate_limit_headers_one_429_per_window_after_the_first() {
    let (per_window, counted) = burst(30, 10, 300, true).await;
    assert_eq!(counted, per_window.values().sum::<usize>() as u64);
    // Nothing warns of the limit before the first 429: the requests in flight with it (at most
    // what a domain sends before any report) meet it too. From then on one request at a time,
    // so one 429 per window.
    let mut windows = per_window.iter();
    let (_, first) = windows
        .next()
        .expect("30 requests at 10 per window meet the limit");
    assert!(
        *first <= tokensmith::live::pacing::IN_FLIGHT_WITHOUT_REPORT as usize,
        "{per_window:?}"
    );
    assert!(windows.all(|(_, &n)| n <= 1), "{per_window:?}");
    assert!(per_window.len() >= 2, "{per_window:?}");
}

/// A host answering every token list once `gate` lets its request (`host`, a group) through.
async fn gated_host(gate: Arc<Saturation>, host: usize) -> String {
    let app = axum::Router::new().fallback(move |req: Request| {
        let gate = gate.clone();
        async move {
            gate.pass(host).await;
            let body = if req.uri().path().ends_with("/activeGateTokens") {
                r#"{"totalCount":0,"activeGateTokens":[]}"#
            } else {
                r#"{"totalCount":0,"apiTokens":[]}"#
            };
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_capped_per_host_not_globally() {
    let settings = settings();
    let cap = settings.max_in_flight_per_host;
    // 20 Managed environments behind one host, 20 more behind another: 40 lists per host.
    // Well inside the client's request timeout (10 s), so a failing client is not retried.
    let gate = Arc::new(Saturation::new(2, cap, 40, Duration::from_secs(2)));
    let managed = gated_host(gate.clone(), 0).await;
    let saas = gated_host(gate.clone(), 1).await;
    std::env::set_var("TS_TEST_PACING_TOKEN", MGMT_TOKEN);
    let environments = (0..40)
        .map(|i| {
            let host = if i < 20 { &managed } else { &saas };
            let name = EnvName::new(format!("env-{i:02}"));
            let env = Environment {
                name: name.clone(),
                endpoint: Endpoint::Url {
                    base: format!("{host}/e/env-{i:02}"),
                },
                token_env: Some("TS_TEST_PACING_TOKEN".into()),
            };
            (name, env)
        })
        .collect();
    let desired = Desired {
        environments,
        accounts: BTreeMap::new(),
        tokens: Vec::new(),
        tenant_tokens: Vec::new(),
        unmanaged: UnmanagedPolicy::default(),
    };
    let connector = DefaultConnector::new(&settings).unwrap();
    let read = read_snapshot(&desired, &[], &connector, 128).await.unwrap();
    assert_eq!(read.snapshot.environments.len(), 40);
    assert_eq!(read.api_calls, 80);
    let st = gate.counts();
    assert_eq!(st.done, [40, 40]);
    // 40 requests start at once per host and none is answered before the host is saturated:
    // the cap is reached, never passed.
    assert_eq!(st.max, [cap, cap]);
    // The two hosts are served side by side: no global cap of one host's size.
    assert_eq!(st.total_max, 2 * cap);
}

const TOKENS: &str = r#"
api_tokens:
  t1: { environments: [demo], scopes: [metrics.ingest], deliver: [{ file: { path: out/t1 } }] }
  t2: { environments: [demo], scopes: [metrics.ingest], deliver: [{ file: { path: out/t2 } }] }
  t3: { environments: [demo], scopes: [metrics.ingest], deliver: [{ file: { path: out/t3 } }] }
  t4: { environments: [demo], scopes: [metrics.ingest], deliver: [{ file: { path: out/t4 } }] }
  t5: { environments: [demo], scopes: [metrics.ingest], deliver: [{ file: { path: out/t5 } }] }
  t6: { environments: [demo], scopes: [metrics.ingest], deliver: [{ file: { path: out/t6 } }] }
"#;

#[test]
fn an_apply_under_a_request_limit_converges_in_one_run() {
    for omit_headers in [false, true] {
        let w = World::new(TOKENS);
        w.faults(Faults {
            requests_per_minute: Some(4),
            rate_limit_window_ms: Some(300),
            omit_rate_limit_headers: omit_headers,
            ..Faults::default()
        });
        let run = w.apply();
        assert_eq!(
            run.code,
            Some(0),
            "headers omitted: {omit_headers}\n{}",
            run.text
        );
        w.check_invariants("after the throttled apply");
        let requests = w.sandbox.request_log().len();
        assert!(
            requests > 8,
            "the apply needed several windows: {requests} requests"
        );
        let per_window = throttled_per_window(&w.sandbox);
        if omit_headers {
            // The first 429 meets the apply's concurrent steps; one per window after it.
            assert!(
                per_window.values().skip(1).all(|&n| n <= 1),
                "{per_window:?}"
            );
        } else {
            assert!(per_window.values().all(|&n| n <= 1), "{per_window:?}");
        }
        w.assert_plan_empty("after the throttled apply");
    }
}

//! Each injected fault as a real HTTP client sees it: latency, 429 with and without Retry-After,
//! 5xx, commit-then-drop-connection, the per-minute request limit, and seeded reproducibility.

use crate::support::sandbox_client as sandbox_support;

use std::time::{Duration, Instant};

use reqwest::Method;
use sandbox_support::*;
use serde_json::json;

const TOKENS: &str = "/api/v2/apiTokens";

async fn set_faults(env: &Env, faults: serde_json::Value) {
    let a = env.admin(Method::PUT, "/faults", Some(faults)).await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn latency_delays_answers() {
    let env = start().await;
    set_faults(
        &env,
        json!({"seed": 1, "latency": {"ms": 800, "rate": 1.0}}),
    )
    .await;
    let t = Instant::now();
    assert_eq!(env.get(TOKENS, &tok('A')).await.status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    // Admin endpoints are never delayed.
    let t = Instant::now();
    env.admin(Method::GET, "/clock", None).await;
    assert!(t.elapsed() < Duration::from_millis(800));
}

#[tokio::test]
async fn too_many_requests_with_and_without_retry_after() {
    let env = start().await;
    set_faults(
        &env,
        json!({"seed": 1, "too_many_requests": {"rate": 1.0, "retry_after": 7}}),
    )
    .await;
    let a = env.get(TOKENS, &tok('A')).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.headers["retry-after"], "7");
    assert_eq!(a.body["error"]["code"], 429);
    assert!(a.headers.contains_key("date"));

    set_faults(&env, json!({"seed": 1, "too_many_requests": {"rate": 1.0}})).await;
    let a = env.get(TOKENS, &tok('A')).await;
    assert_eq!(a.status, 429);
    assert!(!a.headers.contains_key("retry-after"));

    // A rejected write changes nothing.
    let before = env.sandbox.snapshot().environments["env1"].api_tokens.len();
    let a = env
        .post(
            TOKENS,
            &tok('A'),
            json!({"name": "x", "scopes": ["metrics.read"]}),
        )
        .await;
    assert_eq!(a.status, 429);
    assert_eq!(
        env.sandbox.snapshot().environments["env1"].api_tokens.len(),
        before
    );
    let log = env.sandbox.request_log();
    assert_eq!(log.last().unwrap().fault.as_deref(), Some("injected 429"));
}

#[tokio::test]
async fn server_errors() {
    let env = start().await;
    set_faults(
        &env,
        json!({"seed": 3, "server_error": {"rate": 1.0, "status": 503}}),
    )
    .await;
    let a = env.get(TOKENS, &tok('A')).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.body["error"]["code"], 503);
    set_faults(
        &env,
        json!({"seed": 3, "server_error": {"rate": 1.0, "status": 500}}),
    )
    .await;
    assert_eq!(env.get(TOKENS, &tok('A')).await.status, 500);
    set_faults(&env, json!({})).await;
    assert_eq!(env.get(TOKENS, &tok('A')).await.status, 200);
}

#[tokio::test]
async fn commit_then_drop_the_connection() {
    let env = start().await;
    set_faults(&env, json!({"seed": 5, "drop_after_commit": {"rate": 1.0}})).await;
    let result = env
        .req(Method::POST, TOKENS, Some(&tok('A')))
        .json(&json!({"name": "lost answer [ts:lost#1]", "scopes": ["metrics.read"]}))
        .send()
        .await;
    let err = result.expect_err("the client must see a connection error, not a status");
    assert!(err.status().is_none());
    assert!(!err.is_timeout());

    // Reads are not dropped (nothing to commit) — and show the write happened.
    let list = env
        .get(&format!("{TOKENS}?fields=%2Bscopes"), &tok('A'))
        .await;
    assert_eq!(list.status, 200);
    let names: Vec<&str> = list.body["apiTokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"lost answer [ts:lost#1]"), "{names:?}");
    let log = env.sandbox.request_log();
    let dropped = log.iter().find(|e| e.method == "POST").unwrap();
    assert_eq!(dropped.status, 201);
    assert_eq!(
        dropped.fault.as_deref(),
        Some("dropped connection after commit")
    );

    // Deletes are dropped too, after deleting.
    let id = list.body["apiTokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "lost answer [ts:lost#1]")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(env
        .req(Method::DELETE, &format!("{TOKENS}/{id}"), Some(&tok('A')))
        .send()
        .await
        .is_err());
    set_faults(&env, json!({})).await;
    assert_eq!(
        env.get(&format!("{TOKENS}/{id}"), &tok('A')).await.status,
        404
    );
}

#[tokio::test]
async fn per_minute_limit_throttles_like_dynatrace() {
    let env = start().await;
    set_faults(&env, json!({"requests_per_minute": 3})).await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let a = env.get(TOKENS, &tok('A')).await;
        statuses.push(a.status);
        last = Some(a);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let last = last.unwrap();
    let retry: u64 = last.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
}

#[tokio::test]
async fn the_same_seed_gives_the_same_faults() {
    async fn run() -> Vec<u16> {
        let env = start().await;
        set_faults(
            &env,
            json!({"seed": 99, "server_error": {"rate": 0.5, "status": 503}}),
        )
        .await;
        let mut out = Vec::new();
        for _ in 0..24 {
            out.push(env.get(TOKENS, &tok('A')).await.status);
        }
        out
    }
    let a = run().await;
    assert_eq!(a, run().await);
    assert!(a.contains(&200) && a.contains(&503), "{a:?}");
}

#[tokio::test]
async fn faults_can_come_from_the_seed() {
    let seed = format!(
        "{}\nfaults:\n  seed: 1\n  server_error: {{ rate: 1.0, status: 502 }}\n",
        seed_yaml()
    );
    let env = start_with(&seed).await;
    assert_eq!(env.get(TOKENS, &tok('A')).await.status, 502);
}

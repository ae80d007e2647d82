//! tokensmith's own metrics sent to the real sandbox: `render::metrics::dynatrace_lines` through
//! `live::metrics_ingest::send_metric_lines` into `POST /api/v2/metrics/ingest`, then read back from
//! `GET /__sandbox/metrics` (the stub-based sender tests are in `gitops_metrics.rs`).

use crate::support::sandbox_client as sandbox_support;

use reqwest::Method;
use sandbox_support::*;
use serde_json::{json, Value};
use time::macros::datetime;
use tokensmith::live::metrics_ingest::{send_metric_lines, IngestError};
use tokensmith::live::{ClientSettings, Transport};
use tokensmith::model::{Home, Secret, TokenKind};
use tokensmith::plan::testing::{env as env_name, key};
use tokensmith::render::metrics::{dynatrace_lines, Metrics, TokenMetrics};

fn metrics() -> Metrics {
    let mut m = Metrics::new(datetime!(2026-06-01 00:00:00 UTC));
    m.tokens.push(TokenMetrics {
        home: Home::Environment(env_name("prod")),
        kind: TokenKind::ApiToken,
        key: Some(key("k8s-operator")),
        days_to_expiry: Some(19.5),
        days_to_rotation: Some(12.5),
    });
    m.tokens.push(TokenMetrics {
        home: Home::Account("acme eu".into()),
        kind: TokenKind::PlatformToken,
        key: Some(key("ci")),
        days_to_expiry: Some(-1.25),
        days_to_rotation: None,
    });
    m.with_last_successful_apply(Some(datetime!(2025-12-31 12:00:00 UTC)))
}

async fn ingest_token(env: &Env, base_path: &str, admin: &str) -> Secret<String> {
    let created = env
        .post(
            &format!("{base_path}/api/v2/apiTokens"),
            admin,
            json!({"name": "tokensmith metrics", "scopes": ["metrics.ingest"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    Secret::from(created.body["token"].as_str().unwrap().to_owned())
}

async fn arrived(env: &Env, environment: &str) -> Vec<Value> {
    let a = env
        .admin(
            Method::GET,
            &format!("/metrics?environment={environment}"),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body["dataPoints"].as_array().unwrap().clone()
}

#[tokio::test]
async fn tokensmith_metrics_arrive_in_the_sandbox() {
    let env = start().await;
    let client = Transport::new(&ClientSettings::default()).unwrap();
    let token = ingest_token(&env, "", &tok('A')).await;
    let lines = dynatrace_lines(&metrics());
    assert_eq!(lines.lines().count(), 4);

    let report = send_metric_lines(&client, &env.base, &token, &lines)
        .await
        .unwrap();
    assert_eq!((report.lines_ok, report.lines_invalid), (4, 0));
    let points = arrived(&env, "env1").await;
    let now = "2026-06-01T00:00:00.000Z";
    assert_eq!(
        points,
        [
            json!({"metricKey": "tokensmith.token.days_to_expiry",
                   "dimensions": {"env": "prod", "kind": "api_token", "key": "k8s-operator"},
                   "type": "gauge", "value": 19.5, "timestamp": now}),
            json!({"metricKey": "tokensmith.token.days_to_rotation",
                   "dimensions": {"env": "prod", "kind": "api_token", "key": "k8s-operator"},
                   "type": "gauge", "value": 12.5, "timestamp": now}),
            json!({"metricKey": "tokensmith.token.days_to_expiry",
                   "dimensions": {"account": "acme eu", "kind": "platform_token", "key": "ci"},
                   "type": "gauge", "value": -1.25, "timestamp": now}),
            json!({"metricKey": "tokensmith.apply.last_success_timestamp", "dimensions": {},
                   "type": "gauge", "value": 1767182400.0, "timestamp": now}),
        ]
    );

    // A Managed-style base (`/e/{env}`, trailing slash included) reaches the other environment.
    let token2 = ingest_token(&env, "/e/env2", &tok('E')).await;
    let base2 = format!("{}/e/env2/", env.base);
    let drift = Metrics {
        drift_items: Some(3),
        ..Metrics::new(datetime!(2026-06-01 00:00:00 UTC))
    };
    let report = send_metric_lines(&client, &base2, &token2, &dynatrace_lines(&drift))
        .await
        .unwrap();
    assert_eq!(report.lines_ok, 1);
    let points = arrived(&env, "env2").await;
    assert_eq!(points.len(), 1);
    assert_eq!(points[0]["metricKey"], "tokensmith.drift.items");
    assert_eq!(points[0]["value"], 3.0);
    assert_eq!(arrived(&env, "env1").await.len(), 4);
}

#[tokio::test]
async fn the_sender_reports_what_the_sandbox_refuses() {
    let env = start().await;
    let client = Transport::new(&ClientSettings::default()).unwrap();
    let lines = dynatrace_lines(&metrics());

    // The management token lacks metrics.ingest: 403 with the scope hint, no secret shown.
    let management = Secret::from(tok('A'));
    let err = send_metric_lines(&client, &env.base, &management, &lines)
        .await
        .unwrap_err();
    assert!(
        matches!(err, IngestError::Status { status: 403, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(tokensmith::model::dynatrace_messages::MISSING_SCOPE_PREFIX),
        "{msg}"
    );
    assert!(msg.contains("metrics.ingest"), "{msg}");
    assert!(!msg.contains(&tok('A')[7..]), "{msg}");
    assert!(arrived(&env, "env1").await.is_empty());

    // Invalid lines: the counts and the sandbox's message; the valid line is kept.
    let token = ingest_token(&env, "", &tok('A')).await;
    let err = send_metric_lines(&client, &env.base, &token, "tokensmith.ok 1\n9bad 2\n")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IngestError::InvalidLines {
                lines_ok: 1,
                lines_invalid: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("1 invalid lines"), "{err}");
    assert!(err.to_string().contains("invalid metric key"), "{err}");
    assert_eq!(arrived(&env, "env1").await.len(), 1);
}

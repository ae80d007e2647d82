//! Metrics from a plan and a drift report (`render::metrics`): the OpenMetrics text, the
//! Dynatrace metric lines, and the sender (`live::metrics_ingest`) against a stub of the metrics
//! ingest API on loopback.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use time::macros::datetime;

use std::time::Duration;

use tokensmith::live::metrics_ingest::{send_metric_lines, IngestError};
use tokensmith::live::{ClientSettings, RetryPolicy, Transport};
use tokensmith::model::{Home, Secret, TokenKind};
use tokensmith::plan::testing::*;
use tokensmith::plan::{DriftItem, DriftReport, Reason, FORMAT_VERSION};
use tokensmith::render::metrics::{dynatrace_lines, write_openmetrics, Metrics};

/// `k8s-operator` (30-day lifetime, created 10 days before t0, rotates 7 days before expiry) and
/// `no-expiry` (never expires, never rotates), both live and delivered.
fn plan() -> tokensmith::plan::Plan {
    let target = file("/etc/dynatrace/api-token");
    let other = file("/etc/dynatrace/other");
    World::new()
        .want(
            want_api("k8s-operator", "prod")
                .expires_in(Some("30d"))
                .rotation(tokensmith::model::Rotation::BeforeExpiry(dur("7d")))
                .scopes(&["metrics.ingest"])
                .deliver(target.clone()),
        )
        .want(
            want_api("no-expiry", "prod")
                .expires_in(None)
                .rotation(tokensmith::model::Rotation::Never)
                .scopes(&["metrics.ingest"])
                .deliver(other.clone()),
        )
        .live(
            "prod",
            api("dt0c01.AAA", "k8s operator [ts:k8s-operator#1]")
                .lifetime(t0() - days(10) - time::Duration::hours(12), 30)
                .scopes(&["metrics.ingest"]),
        )
        .live(
            "prod",
            api("dt0c01.BBB", "no expiry [ts:no-expiry#1]").scopes(&["metrics.ingest"]),
        )
        .holder(&target, holds("dt0c01.AAA"))
        .holder(&other, holds("dt0c01.BBB"))
        .plan()
        .unwrap()
}

fn drift_report(n: usize) -> DriftReport {
    DriftReport {
        format_version: FORMAT_VERSION,
        generated_at: t0(),
        items: (0..n)
            .map(|i| DriftItem {
                home: Home::Environment(env("prod")),
                kind: TokenKind::ApiToken,
                key: Some(key("k8s-operator")),
                token: None,
                target: None,
                reason: Reason::ScopesChanged,
                detail: format!("item {i}"),
            })
            .collect(),
    }
}

fn metrics() -> Metrics {
    Metrics::from_plan(&plan())
        .with_drift(&drift_report(3))
        .with_last_successful_apply(Some(datetime!(2025-12-31 12:00:00 UTC)))
}

#[test]
fn openmetrics_text_has_every_number_and_ends_with_eof() {
    let mut out = Vec::new();
    write_openmetrics(&metrics(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "\
# TYPE tokensmith_token_days_to_expiry gauge
# HELP tokensmith_token_days_to_expiry Days until the current generation of a managed token expires.
tokensmith_token_days_to_expiry{home=\"prod\",kind=\"api_token\",key=\"k8s-operator\"} 19.5
# TYPE tokensmith_token_days_to_rotation gauge
# HELP tokensmith_token_days_to_rotation Days until a managed token is due for rotation.
tokensmith_token_days_to_rotation{home=\"prod\",kind=\"api_token\",key=\"k8s-operator\"} 12.5
# TYPE tokensmith_drift_items gauge
# HELP tokensmith_drift_items Differences between the spec and live state found by the last drift run.
tokensmith_drift_items 3
# TYPE tokensmith_last_successful_apply_timestamp_seconds gauge
# UNIT tokensmith_last_successful_apply_timestamp_seconds seconds
# HELP tokensmith_last_successful_apply_timestamp_seconds When the last apply succeeded, in seconds since the Unix epoch.
tokensmith_last_successful_apply_timestamp_seconds 1767182400
# EOF
"
    );
}

#[test]
fn openmetrics_escapes_labels_and_leaves_out_empty_families() {
    let mut m = Metrics::new(t0());
    m.tokens.push(tokensmith::render::metrics::TokenMetrics {
        home: Home::Account("acme \"eu\"\\x".into()),
        kind: TokenKind::PlatformToken,
        key: Some(key("ci")),
        days_to_expiry: Some(-1.25),
        days_to_rotation: None,
    });
    let mut out = Vec::new();
    write_openmetrics(&m, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(
        "tokensmith_token_days_to_expiry{home=\"account:acme \\\"eu\\\"\\\\x\",kind=\"platform_token\",key=\"ci\"} -1.25\n"
    ), "{text}");
    assert!(!text.contains("days_to_rotation"), "{text}");
    assert!(!text.contains("drift"), "{text}");
    let mut out = Vec::new();
    write_openmetrics(&Metrics::new(t0()), &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "# EOF\n");
}

#[test]
fn dynatrace_lines_carry_the_same_numbers() {
    assert_eq!(
        dynatrace_lines(&metrics()),
        "\
tokensmith.token.days_to_expiry,env=prod,kind=api_token,key=k8s-operator 19.5
tokensmith.token.days_to_rotation,env=prod,kind=api_token,key=k8s-operator 12.5
tokensmith.drift.items 3
tokensmith.apply.last_success_timestamp 1767182400
"
    );
    let mut m = Metrics::new(t0());
    m.tokens.push(tokensmith::render::metrics::TokenMetrics {
        home: Home::Account("acme eu".into()),
        kind: TokenKind::PlatformToken,
        key: None,
        days_to_expiry: Some(2.0),
        days_to_rotation: None,
    });
    assert_eq!(
        dynatrace_lines(&m),
        "tokensmith.token.days_to_expiry,account=\"acme eu\",kind=platform_token 2\n"
    );
}

#[derive(Default)]
struct Seen {
    requests: Vec<(String, String, String)>,
}

/// A stub of `POST /api/v2/metrics/ingest` answering like Dynatrace: 401 without the right
/// token, 400 for lines that do not start with `tokensmith.`, 202 otherwise.
async fn stub() -> (String, Arc<Mutex<Seen>>) {
    async fn ingest(
        State(seen): State<Arc<Mutex<Seen>>>,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, Json<serde_json::Value>) {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        seen.lock().unwrap().requests.push((
            header("authorization"),
            header("content-type"),
            body.clone(),
        ));
        if header("authorization") != "Api-Token dt0c01.INGEST.SECRETPART" {
            return (
                StatusCode::UNAUTHORIZED,
                Json(
                    serde_json::json!({"error": {"code": 401, "message": tokensmith::model::dynatrace_messages::MISSING_AUTHORIZATION}}),
                ),
            );
        }
        let lines: Vec<&str> = body.lines().filter(|l| !l.is_empty()).collect();
        let bad = lines
            .iter()
            .filter(|l| !l.starts_with("tokensmith."))
            .count();
        if bad > 0 {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({
                    "linesOk": lines.len() - bad, "linesInvalid": bad,
                    "error": {"code": 400, "message": format!("{bad} invalid lines"),
                              "invalidLines": [{"line": 1, "error": "invalid metric key"}]}
                })),
            );
        }
        (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"linesOk": lines.len(), "linesInvalid": 0, "error": null})),
        )
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new()
        .route("/e/abc/api/v2/metrics/ingest", post(ingest))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/e/abc/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

/// The live HTTP client with short retry waits, so that retries cost milliseconds.
fn transport() -> Transport {
    Transport::new(&ClientSettings {
        retry: RetryPolicy {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            ..RetryPolicy::default()
        },
        ..ClientSettings::default()
    })
    .unwrap()
}

#[tokio::test]
async fn sender_posts_text_with_the_api_token_and_reads_the_answer() {
    let (base, seen) = stub().await;
    let client = transport();
    let token = Secret::from("dt0c01.INGEST.SECRETPART");
    let lines = dynatrace_lines(&metrics());
    let report = send_metric_lines(&client, &base, &token, &lines)
        .await
        .unwrap();
    assert_eq!(report.lines_ok, 4);
    assert_eq!(report.lines_invalid, 0);
    {
        let seen = seen.lock().unwrap();
        let (auth, content_type, body) = &seen.requests[0];
        assert_eq!(auth, "Api-Token dt0c01.INGEST.SECRETPART");
        assert_eq!(content_type, "text/plain; charset=utf-8");
        assert_eq!(body, &lines);
    }

    // Nothing to send: no request.
    let report = send_metric_lines(&client, &base, &token, "").await.unwrap();
    assert_eq!(report.lines_ok, 0);
    assert_eq!(seen.lock().unwrap().requests.len(), 1);

    // Invalid lines: an error with the counts and Dynatrace's message.
    let err = send_metric_lines(&client, &base, &token, "tokensmith.a 1\nbad 2\n")
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

    // A wrong token: the status, a scope hint, and no token in the message.
    let wrong = Secret::from("dt0c01.WRONGTOKEN.SECRETSECRET");
    let err = send_metric_lines(&client, &base, &wrong, &lines)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, IngestError::Status { status: 401, .. }),
        "{err:?}"
    );
    assert!(msg.contains("metrics.ingest"), "{msg}");
    assert!(!msg.contains("SECRET"), "{msg}");
    assert!(!format!("{err:?}").contains("SECRET"));
}

#[tokio::test]
async fn sender_reports_an_unreachable_endpoint() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = send_metric_lines(
        &transport(),
        &base,
        &Secret::from("dt0c01.X.Y"),
        "tokensmith.drift.items 1\n",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, IngestError::Request { .. }), "{err:?}");
    assert!(err.to_string().contains("/api/v2/metrics/ingest"), "{err}");
}

/// The sender goes through the live HTTP client like every other Dynatrace call: it names
/// itself with the tokensmith user agent, and a 503 (the server did not process the lines) is
/// retried rather than reported.
#[tokio::test]
async fn sender_retries_a_503_and_sends_the_tokensmith_user_agent() {
    #[derive(Default)]
    struct Busy {
        user_agents: Vec<String>,
    }
    async fn ingest(
        State(seen): State<Arc<Mutex<Busy>>>,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, Json<serde_json::Value>) {
        let mut seen = seen.lock().unwrap();
        seen.user_agents.push(
            headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        );
        if seen.user_agents.len() == 1 {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": {"code": 503, "message": "busy"}})),
            );
        }
        let lines = body.lines().filter(|l| !l.is_empty()).count();
        (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"linesOk": lines, "linesInvalid": 0, "error": null})),
        )
    }
    let seen = Arc::new(Mutex::new(Busy::default()));
    let app = Router::new()
        .route("/api/v2/metrics/ingest", post(ingest))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let report = send_metric_lines(
        &transport(),
        &base,
        &Secret::from("dt0c01.INGEST.SECRETPART"),
        "tokensmith.drift.items 1\n",
    )
    .await
    .unwrap();
    assert_eq!(report.lines_ok, 1);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.user_agents.len(), 2, "one 503, one retry");
    for agent in &seen.user_agents {
        assert!(agent.starts_with("tokensmith/"), "user agent {agent:?}");
    }
}

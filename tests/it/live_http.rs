//! The environment client against a scripted HTTP stub: request shapes, pagination, retries,
//! ambiguous creates, error mapping, redaction and the server clock.

use crate::support::http_stub as live_stub;

use std::time::{Duration, Instant};

use live_stub::{fast_settings, start, Reply, Stub, MGMT_ID, MGMT_TOKEN};
use tokensmith::live::{
    ApiFailure, ApiTokenChange, CallCounter, ClientSettings, Deletion, EnvironmentClient,
    EnvironmentRead, EnvironmentWrite, LiveError, NewActiveGateToken, NewApiToken, Transport,
};
use tokensmith::model::dynatrace_messages as says;
use tokensmith::model::{ActiveGateType, EnvName, Scope, ScopeSet, Secret, TokenId, TokenKind};

const SECRET: &str = "dt0c01.ST2EY72KQINMH574WMNVI7YN.G3DFPBEJYMODIDAEX454M7YWBUVEFOWKPRVMWFASS64NFH52PX6BNDVFFM572RZM";

fn client_at(base: &str, settings: &ClientSettings) -> (EnvironmentClient, CallCounter) {
    let transport = Transport::new(settings).unwrap();
    let client = EnvironmentClient::new(
        EnvName::new("prod"),
        base,
        Secret::from(MGMT_TOKEN),
        &transport,
    )
    .unwrap();
    (client, transport.calls().clone())
}

fn client_with(stub: &Stub, settings: &ClientSettings) -> (EnvironmentClient, CallCounter) {
    client_at(&stub.base, settings)
}

fn client(stub: &Stub) -> (EnvironmentClient, CallCounter) {
    client_with(stub, &fast_settings())
}

fn token_json(id: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "name": name, "enabled": true, "owner": "ops@example.com",
        "creationDate": "2026-01-01T00:00:00.000Z", "expirationDate": "2027-01-01T00:00:00.000Z",
        "personalAccessToken": false, "scopes": ["metrics.ingest"], "somethingNew": {"x": 1}
    })
}

#[tokio::test]
async fn api_token_list_follows_pages_sending_only_the_key() {
    let stub = start(|req, i| match i {
        0 => Reply::json(
            200,
            serde_json::json!({"totalCount": 3, "pageSize": 2, "nextPageKey": "PAGE2",
                "apiTokens": [token_json("dt0c01.BBB", "b [ts:b#1]"), token_json("dt0c01.CCC", "c")]})
            .to_string(),
        ),
        _ => {
            assert_eq!(req.param("nextPageKey"), Some("PAGE2"));
            Reply::json(
                200,
                serde_json::json!({"totalCount": 3, "nextPageKey": null,
                    "apiTokens": [token_json("dt0c01.AAA", "a")]})
                .to_string(),
            )
        }
    })
    .await;
    let (client, calls) = client(&stub);
    let tokens = client.list_api_tokens().await.unwrap();

    let ids: Vec<&str> = tokens.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["dt0c01.AAA", "dt0c01.BBB", "dt0c01.CCC"]);
    assert_eq!(tokens[0].kind, TokenKind::ApiToken);
    assert!(tokens[0].scopes.contains(&Scope::new("metrics.ingest")));
    assert!(tokens[0].expires.is_some());

    let reqs = stub.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(calls.get(), 2);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, "/api/v2/apiTokens");
    assert_eq!(reqs[0].param("pageSize"), Some("10000"));
    assert_eq!(
        reqs[0].param("fields"),
        Some("+scopes,+expirationDate,+lastUsedDate,+modifiedDate,+personalAccessToken,+lastUsedIpAddress")
    );
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Api-Token {MGMT_TOKEN}").as_str())
    );
    // Follow-ups carry nothing but the key.
    assert_eq!(
        reqs[1].query,
        vec![("nextPageKey".to_owned(), "PAGE2".to_owned())]
    );
}

/// A page of `n` API tokens numbered from `first`, written in descending id order.
fn big_page(first: usize, n: usize, next: Option<&str>) -> String {
    let tokens: Vec<serde_json::Value> = (first..first + n)
        .rev()
        .map(|i| {
            serde_json::json!({
                "id": format!("dt0c01.T{i:06}"), "name": format!("tok \"\u{e9}\"\t{i}"),
                "enabled": i % 7 != 0, "owner": "ops@example.com",
                "creationDate": "2026-01-01T00:00:00.000Z",
                "expirationDate": if i % 3 == 0 { "" } else { "2027-01-01T00:00:00.000Z" },
                "lastUsedDate": "2026-11-30T08:00:00.123Z", "lastUsedIpAddress": "10.0.0.1",
                "personalAccessToken": false,
                "scopes": ["metrics.ingest", "apiTokens.read", format!("future.scope{}", i % 5)]
            })
        })
        .collect();
    serde_json::json!({"totalCount": 4_500, "nextPageKey": next, "apiTokens": tokens}).to_string()
}

/// Pages of thousands of tokens are decoded on the blocking pool (`live::offload`), on a
/// current-thread runtime too: every token arrives whole, sorted by id, with its dates read while
/// decoding (a blank one is no date), escaped text unescaped and unknown scopes kept.
#[tokio::test]
async fn big_pages_are_decoded_whole_off_the_reading_task() {
    // Big, small (decoded inline), big: each page's key is read before the page is decoded.
    let stub = start(|req, i| match i {
        0 => Reply::json(200, big_page(1_500, 3_000, Some("PAGE2"))),
        1 => {
            assert_eq!(req.param("nextPageKey"), Some("PAGE2"));
            Reply::json(200, big_page(1_400, 100, Some("PAGE3")))
        }
        _ => {
            assert_eq!(req.param("nextPageKey"), Some("PAGE3"));
            Reply::json(200, big_page(0, 1_400, None))
        }
    })
    .await;
    let (client, calls) = client(&stub);
    let tokens = client.list_api_tokens().await.unwrap();
    assert_eq!(calls.get(), 3);
    assert_eq!(tokens.len(), 4_500);
    for (i, t) in tokens.iter().enumerate() {
        assert_eq!(t.id.as_str(), format!("dt0c01.T{i:06}"));
        assert_eq!(t.name, format!("tok \"\u{e9}\"\t{i}"));
        assert_eq!(t.enabled, i % 7 != 0);
        assert_eq!(t.expires.is_none(), i % 3 == 0, "{i}");
        assert_eq!(
            t.last_used,
            Some(time::macros::datetime!(2026-11-30 08:00:00.123 UTC))
        );
        assert_eq!(t.last_used_from.as_deref(), Some("10.0.0.1"));
        let scopes: Vec<&str> = t.scopes.iter().map(Scope::as_str).collect();
        let future = format!("future.scope{}", i % 5);
        assert_eq!(
            scopes,
            ["apiTokens.read", future.as_str(), "metrics.ingest"]
        );
    }
}

/// A big page is searched for the member name `"nextPageKey"` before it is decoded, so a list's
/// last page is not skimmed for a key it does not have. A name written with escapes is missed by
/// that search but still followed (the key is read from the decoded page), and a big last page
/// without the member ends the list.
#[tokio::test]
async fn a_next_page_key_written_with_escapes_is_followed() {
    let escaped = |body: String| body.replace(r#""nextPageKey""#, r#""next\u0050ageKey""#);
    let stub = start(move |req, i| match i {
        0 => Reply::json(200, escaped(big_page(1_000, 2_000, Some("PAGE2")))),
        1 => {
            assert_eq!(req.param("nextPageKey"), Some("PAGE2"));
            Reply::json(200, escaped(big_page(500, 500, Some("PAGE3"))))
        }
        _ => {
            assert_eq!(req.param("nextPageKey"), Some("PAGE3"));
            let last = big_page(0, 500, None).replace(r#""nextPageKey":null,"#, "");
            assert!(!last.contains("nextPageKey"));
            Reply::json(200, last)
        }
    })
    .await;
    let (client, calls) = client(&stub);
    let tokens = client.list_api_tokens().await.unwrap();
    assert_eq!(calls.get(), 3);
    let ids: Vec<String> = tokens.iter().map(|t| t.id.as_str().to_owned()).collect();
    let want: Vec<String> = (0..3_000).map(|i| format!("dt0c01.T{i:06}")).collect();
    assert_eq!(ids, want);
}

/// A server that sends the same `nextPageKey` again on big pages is refused, not followed for
/// ever; a page that is not a list page fails naming the request.
#[tokio::test]
async fn big_pages_with_a_repeated_key_or_no_list_are_refused() {
    let stub = start(|_, _| Reply::json(200, big_page(0, 3_000, Some("AGAIN")))).await;
    let (repeating, calls) = client(&stub);
    let err = repeating.list_api_tokens().await.unwrap_err().to_string();
    assert!(err.contains("the same nextPageKey twice"), "{err}");
    assert_eq!(calls.get(), 2);

    let stub = start(|_, _| {
        let filler = "x".repeat(100_000);
        Reply::json(
            200,
            format!(r#"{{"nextPageKey":null,"apiTokens":"{filler}"}}"#),
        )
    })
    .await;
    let (no_list, _) = client(&stub);
    let err = no_list.list_api_tokens().await.unwrap_err().to_string();
    assert!(
        err.contains("/api/v2/apiTokens") && err.contains("invalid type"),
        "{err}"
    );
}

/// A date that is not one, deep in a big page, fails the read naming the token, the field and
/// the request; nothing of the page is taken as live state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_date_in_a_big_page_names_its_token() {
    let stub = start(|_, _| {
        let page = big_page(0, 3_000, None).replacen(
            r#""creationDate":"2026-01-01T00:00:00.000Z","enabled":true,"expirationDate":"2027-01-01T00:00:00.000Z","id":"dt0c01.T002777""#,
            r#""creationDate":"next tuesday","enabled":true,"expirationDate":"2027-01-01T00:00:00.000Z","id":"dt0c01.T002777""#,
            1,
        );
        assert!(page.contains("next tuesday"), "the page has the bad date");
        Reply::json(200, page)
    })
    .await;
    let (client, _) = client(&stub);
    let err = client.list_api_tokens().await.unwrap_err().to_string();
    assert!(
        err.contains(r#"token dt0c01.T002777: `creationDate` is not a date ("next tuesday")"#)
            && err.contains("GET")
            && err.contains("/api/v2/apiTokens"),
        "{err}"
    );
}

#[tokio::test]
async fn activegate_list_uses_its_page_size_and_managed_base_paths() {
    let stub = start(|_, _| {
        Reply::json(
            200,
            r#"{"totalCount":1,"activeGateTokens":[{"id":"dt0g02.AAAA","name":"ag","owner":"o",
                "creationDate":"2026-01-01T00:00:00.000Z","seedToken":false,"activeGateType":"ENVIRONMENT"}]}"#,
        )
    })
    .await;
    let (client, _) = client_at(&format!("{}/e/6a1c1a9e/", stub.base), &fast_settings());
    let tokens = client.list_activegate_tokens().await.unwrap();
    assert_eq!(tokens[0].activegate_type, Some(ActiveGateType::Environment));
    let req = &stub.requests()[0];
    assert_eq!(req.path, "/e/6a1c1a9e/api/v2/activeGateTokens");
    assert_eq!(req.query, vec![("pageSize".to_owned(), "3000".to_owned())]);
}

#[tokio::test]
async fn repeated_page_key_is_an_error_not_a_loop() {
    let stub = start(|_, _| {
        Reply::json(
            200,
            r#"{"totalCount":9,"nextPageKey":"SAME","apiTokens":[]}"#,
        )
    })
    .await;
    let (client, _) = client(&stub);
    let err = client.list_api_tokens().await.unwrap_err();
    assert!(err.to_string().contains("same nextPageKey"), "{err}");
    assert_eq!(stub.count(), 2);
}

#[tokio::test]
async fn retries_429_honouring_retry_after_capped() {
    let stub = start(|_, i| match i {
        0 => Reply::error(429, "Too many requests").header("Retry-After", "10"),
        _ => Reply::json(200, r#"{"totalCount":0,"apiTokens":[]}"#),
    })
    .await;
    let mut settings = fast_settings();
    settings.retry.max_delay = Duration::from_millis(300);
    let (client, calls) = client_with(&stub, &settings);
    let started = Instant::now();
    client.list_api_tokens().await.unwrap();
    let waited = started.elapsed();
    // Backoff alone would wait 1 ms; Retry-After (10 s) capped at 300 ms was honoured. The
    // upper bound leaves a busy machine seconds of slack and still tells 300 ms from 10 s.
    assert!(waited >= Duration::from_millis(290), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn retries_429_honouring_rate_limit_reset_in_microseconds() {
    let stub = start(|_, i| match i {
        0 => {
            let now = time::OffsetDateTime::now_utc();
            let reset = (now.unix_timestamp_nanos() / 1000) + 250_000;
            Reply::error(429, "Too many requests").header("X-RateLimit-Reset", &reset.to_string())
        }
        _ => Reply::json(200, r#"{"totalCount":0,"apiTokens":[]}"#),
    })
    .await;
    let mut settings = fast_settings();
    settings.retry.max_delay = Duration::from_secs(20);
    let (client, _) = client_with(&stub, &settings);
    let started = Instant::now();
    client.list_api_tokens().await.unwrap();
    let waited = started.elapsed();
    // 250 ms after the server's clock (its Date header has second precision, so up to 1.25 s).
    // Read as seconds or milliseconds, the reset would be the 20 s cap.
    assert!(waited >= Duration::from_millis(240), "{waited:?}");
    assert!(waited < Duration::from_secs(6), "{waited:?}");
    assert_eq!(stub.count(), 2);
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let stub = start(|_, i| match i {
        0 | 1 => Reply::error(503, "Service unavailable"),
        _ => Reply::json(200, r#"{"totalCount":0,"apiTokens":[]}"#),
    })
    .await;
    let (client, calls) = client(&stub);
    assert!(client.list_api_tokens().await.unwrap().is_empty());
    assert_eq!(calls.get(), 3);
}

#[tokio::test]
async fn gives_up_after_max_attempts_with_a_typed_error() {
    let stub = start(|_, _| Reply::error(503, "Service temporarily unavailable")).await;
    let (client, _) = client(&stub);
    let err = client.list_activegate_tokens().await.unwrap_err();
    match &err {
        LiveError::Status {
            request,
            status,
            message,
            attempts,
            ..
        } => {
            assert_eq!(*status, 503);
            assert_eq!(*attempts, 3);
            assert_eq!(message, "Service temporarily unavailable");
            assert_eq!(request.method, "GET");
            assert_eq!(request.path, "/api/v2/activeGateTokens");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "environment `prod`: GET /api/v2/activeGateTokens returned 503: Service temporarily unavailable"
    );
    assert_eq!(stub.count(), 3);
}

#[tokio::test]
async fn idempotent_get_retries_502_and_504() {
    let stub = start(|_, i| match i {
        0 => Reply::empty(502),
        1 => Reply::empty(504),
        _ => Reply::json(200, r#"{"totalCount":0,"apiTokens":[]}"#),
    })
    .await;
    let (client, _) = client(&stub);
    client.list_api_tokens().await.unwrap();
    assert_eq!(stub.count(), 3);
}

fn new_token() -> NewApiToken {
    NewApiToken {
        name: "op [ts:op#1]".into(),
        scopes: ScopeSet::from([Scope::new("metrics.ingest"), Scope::new("settings.read")]),
        expires: Some(time::macros::datetime!(2027-01-01 00:00:00 UTC)),
        personal_access_token: false,
    }
}

#[tokio::test]
async fn create_sends_the_documented_body_and_returns_a_secret() {
    let stub = start(|_, _| {
        Reply::json(
            201,
            format!(r#"{{"id":"dt0c01.ST2EY72KQINMH574WMNVI7YN","token":"{SECRET}","expirationDate":"2027-01-01T00:00:00.000Z"}}"#),
        )
    })
    .await;
    let (client, _) = client(&stub);
    let created = client.create_api_token(&new_token()).await.unwrap();
    assert_eq!(created.id, TokenId::new("dt0c01.ST2EY72KQINMH574WMNVI7YN"));
    assert_eq!(created.secret.expose(), SECRET);
    assert!(!format!("{created:?}").contains("G3DFPBEJ"));
    let req = &stub.requests()[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/api/v2/apiTokens")
    );
    assert_eq!(
        req.json(),
        serde_json::json!({"name": "op [ts:op#1]", "scopes": ["metrics.ingest", "settings.read"],
            "expirationDate": "2027-01-01T00:00:00.000Z"})
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
}

/// A 429, and a 503 that says when to come back, are refusals: the create is sent again.
#[tokio::test]
async fn create_is_retried_after_429_and_a_hinted_503_since_the_server_did_not_process_it() {
    let stub = start(|_, i| match i {
        0 => Reply::error(429, "Too many requests"),
        1 => Reply::error(503, "Unavailable").header("retry-after", "0"),
        _ => Reply::json(
            201,
            format!(r#"{{"id":"dt0c01.ST2EY72KQINMH574WMNVI7YN","token":"{SECRET}"}}"#),
        ),
    })
    .await;
    let (client, _) = client(&stub);
    client.create_api_token(&new_token()).await.unwrap();
    assert_eq!(stub.count(), 3);
}

/// A server reporting no requests left until a reset a month away holds the domain no longer
/// than any other wait (`max_delay`): the create after it is sent and made, not left waiting
/// for the whole deadline and then called "may or may not have taken effect".
#[tokio::test]
async fn a_rate_limit_reset_far_away_is_held_no_longer_than_any_wait() {
    let month_us =
        (time::OffsetDateTime::now_utc() + time::Duration::days(30)).unix_timestamp() * 1_000_000;
    let stub = start(move |req, _| {
        if req.method == "POST" {
            Reply::json(
                201,
                format!(r#"{{"id":"dt0c01.ST2EY72KQINMH574WMNVI7YN","token":"{SECRET}"}}"#),
            )
        } else {
            Reply::json(200, r#"{"apiTokens":[]}"#)
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-limit", "50")
                .header("x-ratelimit-reset", &month_us.to_string())
        }
    })
    .await;
    let (client, _) = client(&stub);
    client.list_api_tokens().await.unwrap();
    let started = Instant::now();
    client.create_api_token(&new_token()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the create waited {:?} for a reset a month away",
        started.elapsed()
    );
}

/// A create still waiting to be sent when the deadline comes was never taken: the error says
/// so and is not ambiguous (no marker to look for).
#[tokio::test]
async fn a_create_never_sent_by_the_deadline_is_not_ambiguous() {
    let stub =
        start(|_, _| Reply::error(429, "Too many requests").header("retry-after", "60")).await;
    let mut settings = fast_settings();
    settings.deadline = Duration::from_millis(600);
    settings.retry.max_delay = Duration::from_secs(60);
    let (client, _) = client_with(&stub, &settings);
    let err = client.create_api_token(&new_token()).await.unwrap_err();
    assert!(!err.is_ambiguous(), "{err}");
    assert!(
        err.to_string()
            .contains("not sent within the overall deadline"),
        "{err}"
    );
}

#[tokio::test]
async fn create_after_a_gateway_error_is_ambiguous_and_not_retried() {
    // A bare 503 too: a proxy answers one when its upstream resets after taking the request, and
    // sending the create again made a second token with the same marker.
    for status in [502, 503, 504] {
        let stub = start(move |_, _| Reply::empty(status)).await;
        let (client, _) = client(&stub);
        let err = client.create_api_token(&new_token()).await.unwrap_err();
        assert!(err.is_ambiguous(), "{status}: {err}");
        assert_eq!(stub.count(), 1, "{status}");
    }
}

#[tokio::test]
async fn create_after_a_timeout_is_ambiguous_and_not_retried() {
    let stub = start(|_, _| Reply::json(201, "{}").delayed(Duration::from_secs(3))).await;
    let mut settings = fast_settings();
    settings.request_timeout = Duration::from_millis(200);
    let (client, calls) = client_with(&stub, &settings);
    let err = client.create_api_token(&new_token()).await.unwrap_err();
    assert!(err.is_ambiguous(), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(calls.get(), 1);
}

/// A server that reads the request and hangs up without answering.
async fn hang_up_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 65536];
            let _ = socket.read(&mut buf).await;
            drop(socket);
        }
    });
    (base, accepted)
}

#[tokio::test]
async fn dropped_connection_on_create_is_ambiguous_and_not_retried() {
    use std::sync::atomic::Ordering;
    let (base, accepted) = hang_up_server().await;
    let (client, calls) = client_at(&base, &fast_settings());
    let err = client.create_api_token(&new_token()).await.unwrap_err();
    assert!(err.is_ambiguous(), "{err}");
    assert!(err.to_string().contains("POST /api/v2/apiTokens"), "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(calls.get(), 1);

    // The same drop on a read is retried, then reported as a transport failure.
    let err = client.list_api_tokens().await.unwrap_err();
    assert!(
        matches!(err, LiveError::Transport { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn refused_connection_is_retried_even_for_a_create() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (client, calls) = client_at(&base, &fast_settings());
    let err = client.create_api_token(&new_token()).await.unwrap_err();
    assert!(
        matches!(err, LiveError::Transport { attempts: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("could not connect"), "{err}");
    assert_eq!(calls.get(), 3);
}

#[tokio::test]
async fn auth_errors_carry_dynatrace_message_and_a_hint() {
    let stub = start(|req, _| match req.path.as_str() {
        "/api/v2/apiTokens" => Reply::error(401, says::AUTHENTICATION_FAILED),
        _ => Reply::error(
            403,
            &format!(
                "{}activeGateTokenManagement.read (Read ActiveGate tokens)",
                says::MISSING_SCOPE_PREFIX
            ),
        ),
    })
    .await;
    let (client, _) = client(&stub);
    let err = client.list_api_tokens().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.failure(), ApiFailure::Unauthenticated);
    assert_eq!(
        err.to_string(),
        "environment `prod`: GET /api/v2/apiTokens returned 401: Token Authentication failed; hint: the token was rejected: check that it is valid, enabled and not expired"
    );
    let err = client.list_activegate_tokens().await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.failure(), ApiFailure::ScopeMissing);
    assert!(
        err.to_string()
            .contains("Use one of: activeGateTokenManagement.read"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("hint: the token lacks a permission or scope"),
        "{err}"
    );
    // Neither is retried.
    assert_eq!(stub.count(), 2);
}

#[tokio::test]
async fn constraint_violations_are_named() {
    let stub = start(|_, _| {
        Reply::json(
            400,
            r#"{"error":{"code":400,"message":"Constraints violated.","constraintViolations":[
                {"path":"scopes","message":"must not be empty","parameterLocation":"PAYLOAD_BODY","location":null}]}}"#,
        )
    })
    .await;
    let (client, _) = client(&stub);
    let change = ApiTokenChange {
        scopes: Some(ScopeSet::new()),
        ..Default::default()
    };
    let err = client
        .update_api_token(&TokenId::new("dt0c01.AAA"), &change)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment `prod`: PUT /api/v2/apiTokens/dt0c01.AAA returned 400: Constraints violated. (scopes: must not be empty)"
    );
    assert_eq!(stub.requests()[0].json(), serde_json::json!({"scopes": []}));
}

#[tokio::test]
async fn tokens_in_error_bodies_are_redacted() {
    let stub = start(|_, i| match i {
        0 => Reply::error(400, &format!("Token {SECRET} cannot be deleted")),
        _ => Reply::json(502, format!("<html>upstream said {SECRET}</html>")),
    })
    .await;
    let (client, _) = client(&stub);
    let err = client
        .delete_api_token(&TokenId::new("dt0c01.ST2EY72KQINMH574WMNVI7YN"))
        .await
        .unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("G3DFPBEJ"), "{text}");
        assert!(
            text.contains("dt0c01.ST2EY72KQINMH574WMNVI7YN.<redacted>"),
            "{text}"
        );
    }
    let mut settings = fast_settings();
    settings.retry.max_attempts = 1;
    let (client, _) = client_with(&stub, &settings);
    let err = client.list_api_tokens().await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("G3DFPBEJ"), "{err}");
}

#[tokio::test]
async fn delete_of_a_missing_token_is_already_gone() {
    let stub = start(|req, _| match req.path.as_str() {
        "/api/v2/apiTokens/dt0c01.GONE" => Reply::error(404, "Not found"),
        _ => Reply::empty(204),
    })
    .await;
    let (client, _) = client(&stub);
    assert_eq!(
        client
            .delete_api_token(&TokenId::new("dt0c01.GONE"))
            .await
            .unwrap(),
        Deletion::AlreadyGone
    );
    assert_eq!(
        client
            .delete_activegate_token(&TokenId::new("dt0g02.HERE"))
            .await
            .unwrap(),
        Deletion::Deleted
    );
    assert_eq!(stub.requests()[1].method, "DELETE");
    assert_eq!(
        stub.requests()[1].path,
        "/api/v2/activeGateTokens/dt0g02.HERE"
    );
}

#[tokio::test]
async fn server_clock_comes_from_the_date_header() {
    let stub = start(|_, _| {
        Reply::json(200, r#"{"totalCount":0,"apiTokens":[]}"#)
            .header("Date", "Mon, 01 Jan 2035 12:00:00 GMT")
    })
    .await;
    let (client, _) = client(&stub);
    assert_eq!(client.server_time(), None);
    client.list_api_tokens().await.unwrap();
    assert_eq!(
        client.server_time(),
        Some(time::macros::datetime!(2035-01-01 12:00:00 UTC))
    );
}

#[tokio::test]
async fn caller_lookup_get_and_tenant_fingerprint() {
    let stub = start(|req, _| match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/api/v2/apiTokens/lookup") => {
            assert_eq!(req.json(), serde_json::json!({"token": MGMT_TOKEN}));
            Reply::json(200, token_json(MGMT_ID, "admin").to_string())
        }
        ("GET", "/api/v2/apiTokens/dt0c01.NOPE") => Reply::error(404, "not found"),
        ("GET", "/api/v1/deployment/installer/agent/connectioninfo") => Reply::json(
            200,
            r#"{"tenantUUID":"abc12345","tenantToken":"tenantsecret123","communicationEndpoints":["https://x"],"formattedCommunicationEndpoints":"https://x"}"#,
        ),
        _ => Reply::error(404, says::NO_ROUTE),
    })
    .await;
    let (client, calls) = client(&stub);
    // The caller's id is part of its token: no call needed.
    assert_eq!(
        client.caller_id().await.unwrap(),
        Some(TokenId::new(MGMT_ID))
    );
    assert_eq!(calls.get(), 0);
    let found = client
        .lookup(&Secret::from(MGMT_TOKEN))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, TokenId::new(MGMT_ID));
    assert_eq!(calls.get(), 1);
    assert_eq!(
        client
            .get_api_token(&TokenId::new("dt0c01.NOPE"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        client.tenant_token_fingerprint().await.unwrap(),
        tokensmith::model::target::tenant_fingerprint("tenantsecret123")
    );
}

#[tokio::test]
async fn tenant_rotation_and_activegate_create() {
    let stub = start(|req, _| match req.path.as_str() {
        "/api/v2/tenantTokenRotation/start" => {
            Reply::json(200, r#"{"active":{"value":"newtenant"},"old":{"value":"oldtenant"}}"#)
        }
        "/api/v2/tenantTokenRotation/cancel" => {
            Reply::json(200, r#"{"active":{"value":"oldtenant"},"old":{"value":null}}"#)
        }
        "/api/v2/tenantTokenRotation/finish" => {
            Reply::error(400, says::NO_ROTATION_TO_FINISH)
        }
        _ => Reply::json(
            201,
            r#"{"id":"dt0g02.ABCDEFGH","token":"dt0g02.ABCDEFGH.XT47R5DRADJIZUFOX4UDNOKTSUSABGLN7XSMJG7UXHRXKNY4WLORH4OF4T75MG7E"}"#,
        ),
    })
    .await;
    let (client, _) = client(&stub);
    let started = client.start_tenant_rotation().await.unwrap();
    assert_eq!(started.active.expose(), "newtenant");
    assert_eq!(started.old.unwrap().expose(), "oldtenant");
    let cancelled = client.cancel_tenant_rotation().await.unwrap();
    assert!(cancelled.old.is_none());
    let err = client.finish_tenant_rotation().await.unwrap_err();
    assert_eq!(err.failure(), ApiFailure::NoRotationRunning, "{err}");
    assert!(
        err.to_string().contains(says::NO_ROTATION_TO_FINISH),
        "{err}"
    );

    let created = client
        .create_activegate_token(&NewActiveGateToken {
            name: "ag [ts:ag#1]".into(),
            activegate_type: ActiveGateType::Environment,
            expires: None,
            seed: false,
        })
        .await
        .unwrap();
    assert_eq!(created.id.as_str(), "dt0g02.ABCDEFGH");
    let req = stub.requests().pop().unwrap();
    assert_eq!(
        req.json(),
        serde_json::json!({"name": "ag [ts:ag#1]", "activeGateType": "ENVIRONMENT", "seedToken": false})
    );
}

#[tokio::test]
async fn unreadable_success_bodies_are_decode_errors_without_secrets() {
    let stub = start(|_, _| Reply::json(201, format!(r#"{{"id":42,"token":"{SECRET}"}}"#))).await;
    let (client, _) = client(&stub);
    let err = client.create_api_token(&new_token()).await.unwrap_err();
    assert!(matches!(err, LiveError::Decode { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("G3DFPBEJ"), "{err}");
}

#[tokio::test]
async fn old_format_management_tokens_are_looked_up() {
    let stub = start(|req, _| {
        assert_eq!(req.path, "/api/v2/apiTokens/lookup");
        assert_eq!(
            req.json(),
            serde_json::json!({"token": "abcdefjhij1234567890"})
        );
        Reply::json(
            200,
            token_json("6a1c1a9e-4c21-4d0d-9a3e-1e0d3f2b7c11", "old").to_string(),
        )
    })
    .await;
    let client = EnvironmentClient::new(
        EnvName::new("prod"),
        &stub.base,
        Secret::from("abcdefjhij1234567890"),
        &Transport::new(&fast_settings()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        client.caller_id().await.unwrap(),
        Some(TokenId::new("6a1c1a9e-4c21-4d0d-9a3e-1e0d3f2b7c11"))
    );
    assert_eq!(stub.count(), 1);
}

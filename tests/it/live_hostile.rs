//! The environment client against hostile or broken servers (issue 10): no cleartext
//! credentials to a host that only looks like loopback or to a proxy, no redirect to another
//! origin, bounded response bodies, one deadline per request, and malformed token lists refused
//! by name.

use crate::support::http_stub as live_stub;
use crate::support::recording_proxy::RecordingProxy;

use std::time::{Duration, Instant};

use live_stub::{fast_settings, start, Reply, MGMT_TOKEN};
use tokensmith::live::{
    ClientSettings, EnvironmentClient, EnvironmentRead, LiveError, ProxySettings, Transport,
};
use tokensmith::model::{EnvName, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client_at(base: &str, settings: &ClientSettings) -> Result<EnvironmentClient, LiveError> {
    let transport = Transport::new(settings).unwrap();
    EnvironmentClient::new(
        EnvName::new("prod"),
        base,
        Secret::from(MGMT_TOKEN),
        &transport,
    )
}

#[tokio::test]
async fn plain_http_to_a_name_that_starts_with_127_is_refused_before_sending() {
    for base in [
        "http://127.0.0.1.evil.example",
        "http://127.evil.example",
        "http://127.0.0.1.nip.io/e/abc",
        "http://localhost.evil.example",
        "http://10.0.0.1",
    ] {
        let err = match client_at(base, &fast_settings()) {
            Ok(_) => panic!("{base} accepted"),
            Err(e) => e,
        };
        assert!(err.to_string().contains("plain http"), "{base}: {err}");
        assert!(!err.to_string().contains(MGMT_TOKEN));
    }
    for base in [
        "http://127.0.0.1:1",
        "http://127.1.2.3:1",
        "http://[::1]:1",
        "http://localhost:1",
    ] {
        assert!(client_at(base, &fast_settings()).is_ok(), "{base}");
    }
}

/// `localhost` is resolved by the transport itself (to 127.0.0.1 and ::1), not by the system:
/// a plain-http base at `localhost` reaches a server on 127.0.0.1 and the token goes nowhere
/// else. (That a hosts file pointing `localhost` elsewhere is ignored cannot be shown without
/// changing the machine's hosts file; this pins that the override keeps `localhost` working.)
#[tokio::test]
async fn plain_http_to_localhost_reaches_the_loopback_server() {
    let stub = start(|_, _| Reply::json(200, r#"{"totalCount":0,"apiTokens":[]}"#)).await;
    let port = stub.base.rsplit_once(':').unwrap().1.to_owned();
    let client = client_at(&format!("http://localhost:{port}"), &fast_settings()).unwrap();
    assert!(client.list_api_tokens().await.unwrap().is_empty());
    assert_eq!(stub.count(), 1);
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed() {
    let elsewhere = start(|_, _| Reply::json(200, r#"{"apiTokens":[]}"#)).await;
    let target = format!("{}/api/v2/apiTokens", elsewhere.base);
    let stub = start(move |_, _| Reply::empty(302).header("location", &target)).await;
    let client = client_at(&stub.base, &fast_settings()).unwrap();
    let err = client.list_api_tokens().await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("another origin"), "{text}");
    // Both stubs are on 127.0.0.1: only the port tells the origins apart, so it is named.
    assert!(
        text.contains(&format!("another origin ({})", elsewhere.base)),
        "{text}"
    );
    assert!(text.contains("environment `prod`"), "{text}");
    assert_eq!(elsewhere.count(), 0, "the other origin was contacted");
    assert_eq!(stub.count(), 1, "a refused redirect is not retried");
}

/// A server that answers every request with `head` and then streams `chunk` forever (or until
/// `total` bytes), pausing `pause` between chunks.
async fn streaming_server(
    head: &'static str,
    chunk: Vec<u8>,
    total: usize,
    pause: Duration,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let chunk = chunk.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await;
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut sent = 0;
                while sent < total {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                    sent += chunk.len();
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            });
        }
    });
    base
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::test]
async fn a_300_mib_body_is_refused_with_bounded_memory() {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
    let mut chunk = b"{\"apiTokens\":[".to_vec();
    chunk.resize(1024 * 1024, b' ');
    let base = streaming_server(head, chunk, 300 * 1024 * 1024, Duration::ZERO).await;
    let client = client_at(&base, &fast_settings()).unwrap();
    let err = client.list_api_tokens().await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("larger than 64 MiB"), "{text}");
    assert!(text.contains("environment `prod`"), "{text}");
    if let Some(peak) = peak_rss_kib() {
        eprintln!(
            "peak resident memory after a 300 MiB body: {} MiB",
            peak / 1024
        );
        assert!(peak < 256 * 1024, "peak memory {peak} KiB");
    }
}

#[tokio::test]
async fn a_declared_huge_body_is_refused_without_reading_it() {
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 3221225472\r\n\r\n";
    let base = streaming_server(head, vec![b' '; 4096], 4096, Duration::ZERO).await;
    let client = client_at(&base, &fast_settings()).unwrap();
    let err = client.list_api_tokens().await.unwrap_err();
    assert!(err.to_string().contains("larger than 64 MiB"), "{err}");
}

#[tokio::test]
async fn a_trickling_server_meets_one_overall_deadline() {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
    let base = streaming_server(head, b" ".to_vec(), usize::MAX, Duration::from_millis(100)).await;
    let mut settings = fast_settings();
    settings.request_timeout = Duration::from_secs(60);
    settings.deadline = Duration::from_millis(1500);
    let client = client_at(&base, &settings).unwrap();
    let started = Instant::now();
    let err = client.list_api_tokens().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("overall deadline"), "{err}");
}

#[tokio::test]
async fn retries_stop_at_the_overall_deadline() {
    let stub = start(|_, _| Reply::error(503, "busy").header("retry-after", "1")).await;
    let mut settings = fast_settings();
    settings.retry.max_attempts = 100;
    settings.retry.max_delay = Duration::from_secs(1);
    settings.deadline = Duration::from_millis(1200);
    let client = client_at(&stub.base, &settings).unwrap();
    let started = Instant::now();
    let err = client.list_api_tokens().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("overall deadline"), "{err}");
    assert!(stub.count() <= 3, "{} attempts", stub.count());
}

#[tokio::test]
async fn token_lists_without_ids_are_errors_naming_environment_and_field() {
    let stub = start(|_, _| Reply::json(200, r#"{"apiTokens":[{},{}]}"#)).await;
    let client = client_at(&stub.base, &fast_settings()).unwrap();
    let err = client.list_api_tokens().await.unwrap_err().to_string();
    assert!(err.contains("environment `prod`"), "{err}");
    assert!(err.contains("`apiTokens`") && err.contains("`id`"), "{err}");
}

/// Dates at the end of `time`'s range (year 9999) made the planner's arithmetic overflow and
/// the binary panic: a token's date that far is refused by name, and a `Date` header that far
/// is ignored (the local clock stands in), so nothing downstream adds to year 9999.
#[tokio::test]
async fn dates_at_the_end_of_time_are_refused_or_ignored_not_added_to() {
    use tokensmith::live::EnvironmentRead;
    let stub = start(|_, _| {
        Reply::json(
            200,
            r#"{"apiTokens":[{"id":"dt0c01.AAAA","lastUsedDate":"9999-12-31T23:59:59.000Z"}]}"#,
        )
        .header("date", "Fri, 31 Dec 9999 23:59:59 GMT")
    })
    .await;
    let client = client_at(&stub.base, &fast_settings()).unwrap();
    let err = client.list_api_tokens().await.unwrap_err().to_string();
    assert!(err.contains("environment `prod`"), "{err}");
    assert!(err.contains("lastUsedDate"), "{err}");
    assert_eq!(
        client.server_time(),
        None,
        "a Date of year 9999 is not the server's time"
    );

    let stub = start(|_, _| {
        Reply::json(200, r#"{"apiTokens":[{"id":"dt0c01.AAAA"}]}"#)
            .header("date", "Sun, 22 Nov 2026 10:00:02 GMT")
    })
    .await;
    let client = client_at(&stub.base, &fast_settings()).unwrap();
    client.list_api_tokens().await.unwrap();
    assert!(client.server_time().is_some(), "an ordinary Date is kept");
}

/// An error message is the server's text: escape sequences and line breaks in it, in the
/// error envelope or in a body that is not one, are escaped, so the printed error cannot drive
/// the terminal or forge a line of its own.
#[tokio::test]
async fn control_characters_in_error_bodies_are_escaped() {
    for body in [
        r#"{"error":{"code":403,"message":"\u001b[2J\u001b]0;pwned\u0007\r\nerror: forged line"}}"#,
        "\u{1b}[2J plain text\r\nerror: forged line",
    ] {
        let stub = start(move |_, _| Reply::json(403, body)).await;
        let client = client_at(&stub.base, &fast_settings()).unwrap();
        let err = client.list_api_tokens().await.unwrap_err().to_string();
        assert!(!err.contains(['\u{1b}', '\u{7}', '\r', '\n']), "{err:?}");
        assert!(err.contains("\\u{1b}[2J"), "{err}");
    }
}

/// A server that names one more page forever, each full, is stopped at a bound on what one list
/// may hold, not when memory runs out; the error names the environment and the list.
#[tokio::test]
async fn a_list_that_never_ends_is_stopped_at_its_token_bound() {
    use tokensmith::live::environment::MAX_TOKENS_PER_LIST;
    let pages = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let served = pages.clone();
    let stub = start(move |_, _| {
        let n = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let entries: Vec<String> = (0..10_000)
            .map(|i| format!(r#"{{"id":"dt0c01.{n:012}{i:012}"}}"#))
            .collect();
        Reply::json(
            200,
            format!(
                r#"{{"apiTokens":[{}],"nextPageKey":"k{n}"}}"#,
                entries.join(",")
            ),
        )
    })
    .await;
    let client = client_at(&stub.base, &fast_settings()).unwrap();
    let err = client.list_api_tokens().await.unwrap_err().to_string();
    assert!(err.contains("environment `prod`"), "{err}");
    assert!(
        err.contains(&format!(
            "more than {MAX_TOKENS_PER_LIST} tokens in one list"
        )),
        "{err}"
    );
    let served = pages.load(std::sync::atomic::Ordering::SeqCst);
    assert!(served <= MAX_TOKENS_PER_LIST / 10_000 + 3, "{served} pages");
}

/// A server that echoes the management token in an error gets it shown as `<redacted>`, also
/// when the token does not have Dynatrace's `dt0…` shape that the general redaction knows.
#[tokio::test]
async fn an_echoed_management_token_of_any_shape_is_redacted() {
    const ODD_TOKEN: &str = "MySuperSecretMgmtValue-123";
    let stub = start(|req, _| {
        let sent = req.header("authorization").unwrap_or("").to_owned();
        Reply::error(400, &format!("bad credential: {sent}"))
    })
    .await;
    let transport = Transport::new(&fast_settings()).unwrap();
    let client = EnvironmentClient::new(
        EnvName::new("prod"),
        &stub.base,
        Secret::from(ODD_TOKEN),
        &transport,
    )
    .unwrap();
    let err = client.list_api_tokens().await.unwrap_err().to_string();
    assert!(!err.contains(ODD_TOKEN), "{err}");
    assert!(
        err.contains("bad credential: Api-Token <redacted>"),
        "{err}"
    );
}

#[tokio::test]
async fn token_lists_with_duplicate_ids_are_errors() {
    let stub = start(|_, _| {
        Reply::json(
            200,
            r#"{"activeGateTokens":[{"id":"dt0g02.A","name":"x"},{"id":"dt0g02.A","name":"y"}]}"#,
        )
    })
    .await;
    let client = client_at(&stub.base, &fast_settings()).unwrap();
    let err = client
        .list_activegate_tokens()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("environment `prod`"), "{err}");
    assert!(err.contains("dt0g02.A more than once"), "{err}");
}

/// With every proxy variable set, the real binary still talks to the sandbox on loopback
/// directly: a proxy would read the management token in clear text (reqwest's default, and
/// what this binary did before, sent every request of this apply to it). The apply converges
/// and the proxy sees nothing.
#[test]
fn plain_http_to_loopback_never_goes_through_a_proxy() {
    use crate::support::binary_world::World;
    let proxy = RecordingProxy::start();
    let w = World::new(
        "api_tokens:\n  ci: { environments: [demo], scopes: [metrics.ingest], deliver: [{ file: { path: out/ci } }] }\n",
    );
    // Only the http proxy (the variable that names plain http), then every proxy variable.
    let http_only = ["HTTP_PROXY", "http_proxy"];
    let every = [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ];
    for (i, names) in [&http_only[..], &every[..]].into_iter().enumerate() {
        let env: Vec<(&str, &str)> = names.iter().map(|&n| (n, proxy.url.as_str())).collect();
        if i == 0 {
            let run = w.run_with_env(&["apply", "--auto-approve"], &env);
            assert_eq!(run.code, Some(0), "{}", run.text);
        }
        let plan = w.run_with_env(&["plan", "--detailed-exitcode"], &env);
        assert_eq!(plan.code, Some(0), "{names:?}: {}", plan.text);
        assert_eq!(proxy.seen(), Vec::<String>::new(), "{names:?}");
    }
}

/// Over https the proxy is used (a `CONNECT` tunnel, so it relays ciphertext only), except for
/// a host `NO_PROXY` names.
#[tokio::test]
async fn https_goes_through_the_proxy_as_a_tunnel_unless_no_proxy_names_the_host() {
    let proxy = RecordingProxy::start();
    let base = "https://abc12345.live.example.invalid";
    let mut settings = fast_settings();
    settings.retry.max_attempts = 1;
    settings.proxy = ProxySettings {
        https: Some(proxy.url.clone()),
        no_proxy: None,
    };
    assert!(client_at(base, &settings)
        .unwrap()
        .list_api_tokens()
        .await
        .is_err());
    let seen = proxy.seen();
    assert!(!seen.is_empty(), "the proxy was not used");
    assert!(
        seen.iter()
            .all(|l| l.starts_with("CONNECT abc12345.live.example.invalid:443 ")),
        "{seen:?}"
    );
    settings.proxy.no_proxy = Some("localhost, .example.invalid".to_owned());
    assert!(client_at(base, &settings)
        .unwrap()
        .list_api_tokens()
        .await
        .is_err());
    assert_eq!(proxy.seen().len(), seen.len(), "NO_PROXY was not honoured");
}

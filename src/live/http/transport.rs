//! What every client of one run shares: the connection pool and TLS setup (redirects followed
//! only within the origin, `localhost` pinned to loopback, https through the proxy only as a
//! tunnel), the retry policy, the pacing and the call counter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::settings::{ClientSettings, RetryPolicy};
use crate::live::error::LiveError;
use crate::live::pacing::Pacing;

/// Scheme, host and port: what a redirect may not change.
fn origin(url: &url::Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_owned(),
        url.host_str().map(str::to_owned),
        url.port_or_known_default(),
    )
}

/// The redirect policy of every API call: same origin only, at most a few hops.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(origin);
        let next = origin(attempt.url());
        if first.as_ref() != Some(&next) {
            // The port too: `http://127.0.0.1:9999` is another origin than `http://127.0.0.1`,
            // and a message without it would name what looks like the configured origin.
            let port = attempt
                .url()
                .port()
                .map(|p| format!(":{p}"))
                .unwrap_or_default();
            let to = format!(
                "{}://{}{port}",
                next.0,
                attempt.url().host_str().unwrap_or("?")
            );
            attempt.error(RedirectRefused(format!(
                "the server redirected to another origin ({to}); API calls do not follow redirects to another origin"
            )))
        } else if attempt.previous().len() >= 5 {
            attempt.error(RedirectRefused("more than 5 redirects".into()))
        } else {
            attempt.follow()
        }
    })
}

#[derive(Debug)]
struct RedirectRefused(String);

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedirectRefused {}

/// The text of a refused redirect, if `e` is one.
pub(super) fn refused_redirect(e: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<RedirectRefused>() {
            return Some(r.0.clone());
        }
        source = s.source();
    }
    None
}

/// Clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    sent: Arc<AtomicU64>,
    throttled: Arc<AtomicU64>,
}

impl CallCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests sent.
    pub fn get(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// 429 Too Many Requests answers received.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    pub(super) fn bump(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn bump_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }
}

/// What every client of one run shares: the connection pool and TLS setup, the retry policy,
/// the pacing (gates per domain, caps per host) and the call counter. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    pub(super) client: reqwest::Client,
    pub(super) retry: RetryPolicy,
    pub(super) deadline: Duration,
    pub(super) calls: CallCounter,
    pub(super) pacing: Arc<Pacing>,
}

impl Transport {
    pub fn new(settings: &ClientSettings) -> Result<Self, LiveError> {
        // `localhost` is the one name plain http may use (`plain_http_allowed`); it is pinned to
        // the loopback addresses instead of asking the system's resolver, which a changed hosts
        // file or a DNS server answering for `localhost` could point elsewhere. (The port of
        // these addresses is ignored: the URL's is used.)
        let loopback = [
            std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
            std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
        ];
        let mut builder = reqwest::Client::builder().no_proxy();
        if let Some(url) = &settings.proxy.https {
            // The URL is not echoed: it may hold the proxy's password.
            let proxy = reqwest::Proxy::https(url.as_str())
                .map_err(|_| LiveError::Client {
                    reason: "the https proxy (HTTPS_PROXY or ALL_PROXY) is not a usable URL"
                        .to_owned(),
                })?
                .no_proxy(
                    settings
                        .proxy
                        .no_proxy
                        .as_deref()
                        .and_then(reqwest::NoProxy::from_string),
                );
            builder = builder.proxy(proxy);
        }
        let client = builder
            .resolve_to_addrs("localhost", &loopback)
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .redirect(same_origin_redirects())
            .user_agent(concat!("tokensmith/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LiveError::Client {
                reason: e.to_string(),
            })?;
        Ok(Transport {
            client,
            retry: settings.retry.clone(),
            deadline: settings.deadline,
            calls: CallCounter::new(),
            pacing: Arc::new(Pacing::new(settings.max_in_flight_per_host)),
        })
    }

    /// The counter every request through this transport bumps.
    pub fn calls(&self) -> &CallCounter {
        &self.calls
    }
}

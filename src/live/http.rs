//! One HTTP door to Dynatrace: timeouts, authentication header, retries, the server clock and
//! the call counter.
//!
//! [`HttpClient::send`] sends one logical request and retries it when that is safe:
//! - 429 and 503 (the server did not process the request): always, for any method, waiting for
//!   `Retry-After` (seconds or HTTP-date) or `X-RateLimit-Reset` (Unix microseconds) when
//!   present, else exponential backoff with jitter; every wait is capped by the policy.
//! - 502, 504 and connection errors: for idempotent requests only. A create (`POST` that makes a
//!   token) that fails after it may have reached the server becomes [`LiveError::Ambiguous`],
//!   never a blind retry (DESIGN.md invariant 2). A connection that could not be established at
//!   all is safe to retry for every request.
//!
//! Guards against a hostile or broken server: plain `http` is used only for a loopback host
//! ([`plain_http_allowed`], checked again here before anything is sent, whatever validated the
//! URL before); a redirect to another origin is never followed; a response body larger than
//! [`MAX_BODY_BYTES`] is refused; and one logical request, retries and waits included, ends
//! after [`ClientSettings::deadline`].
//!
//! Every attempt first waits for its pacing slot ([`super::pacing`]): the gate of its throttling
//! domain (closed after a 429 until the hinted instant, for every request to that domain; held at
//! an exhausted `X-RateLimit-Remaining` until the reset) and a slot on its host (at most
//! [`ClientSettings::max_in_flight_per_host`] in flight). A 429 therefore waits in the gate, not
//! in a sleep of its own.
//!
//! Every response's `Date` header is remembered as the server clock, and every attempt is
//! counted, 429 answers separately. What the requests mean (paths, bodies, pagination) is the business of
//! `environment` and `account`; this module knows only HTTP.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use tokio::sync::Semaphore;

use super::error::{redact, LiveError, RequestLabel, Subject, Violation};
use super::pacing::{Answer, Gate, Pacing, RateLimit, Slot};
use super::wire::{ErrorEnvelope, FlatError};
use crate::model::{plain_http_allowed, Secret};

/// When and how often to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retries).
    pub max_attempts: u32,
    /// The wait before the first retry when the server gives no hint.
    pub base_delay: Duration,
    /// Growth of the wait per retry.
    pub multiplier: f64,
    /// No single wait is longer than this, server hints included.
    pub max_delay: Duration,
    /// Random spread of each wait, as a fraction of it (0.2 = ±20 %).
    pub jitter: f64,
}

/// Requests in flight to one host unless the settings say otherwise: room for several
/// environments of a Managed cluster at once (each environment paces itself, see
/// [`super::pacing`]), and a bound on the connections a run opens to one server.
pub const DEFAULT_MAX_IN_FLIGHT_PER_HOST: usize = 32;

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(60),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (1 = first retry), without a server hint.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .multiplier
            .max(1.0)
            .powi(retry.saturating_sub(1) as i32);
        let raw = self.base_delay.as_secs_f64() * exp;
        let spread = 1.0 + self.jitter.clamp(0.0, 1.0) * (rand::random::<f64>() * 2.0 - 1.0);
        let secs = (raw * spread).min(self.max_delay.as_secs_f64()).max(0.0);
        Duration::from_secs_f64(secs)
    }

    /// A server-requested wait, capped, with a little jitter on top so that several processes
    /// told the same instant do not return together. Within one process the requests of a domain
    /// share one gate, so the spread is kept small: at most a quarter second.
    fn hinted(&self, hint: Duration) -> Duration {
        let spread = (hint.as_secs_f64() * self.jitter.clamp(0.0, 1.0) * 0.5).min(0.25);
        let extra = spread * rand::random::<f64>();
        Duration::from_secs_f64(hint.as_secs_f64() + extra).min(self.max_delay)
    }
}

/// The largest response body read: far above a full page of 10,000 tokens (about 6 MiB), far
/// below what would exhaust memory. A larger body is an error, not data.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// How much of an error body is kept for its message.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Timeouts and retries of a client.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    /// One attempt, body included.
    pub request_timeout: Duration,
    /// One logical request: every attempt and every wait between them.
    pub deadline: Duration,
    pub retry: RetryPolicy,
    /// Requests in flight to one host (scheme, host, port) at most, across every environment
    /// it serves.
    pub max_in_flight_per_host: usize,
    /// The proxy of https requests; none by default (the command line fills it in from the
    /// environment).
    pub proxy: ProxySettings,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            deadline: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            max_in_flight_per_host: DEFAULT_MAX_IN_FLIGHT_PER_HOST,
            proxy: ProxySettings::default(),
        }
    }
}

/// The proxy https requests go through (`HTTPS_PROXY`, else `ALL_PROXY`) and the hosts that
/// bypass it (`NO_PROXY`, in curl's format). Over https the proxy only relays an encrypted
/// tunnel (`CONNECT`). Plain http, allowed only to loopback, never goes through a proxy: the
/// proxy would read the token in clear text (reqwest's default, every system proxy for every
/// scheme, did exactly that with `HTTP_PROXY` set).
#[derive(Clone, Default, PartialEq)]
pub struct ProxySettings {
    pub https: Option<String>,
    pub no_proxy: Option<String>,
}

impl std::fmt::Debug for ProxySettings {
    // A proxy URL may carry a password (`http://user:secret@proxy:3128`): not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySettings")
            .field("https", &self.https.as_ref().map(|_| "<set>"))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

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
            let to = format!("{}://{}", next.0, attempt.url().host_str().unwrap_or("?"));
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
fn refused_redirect(e: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<RedirectRefused>() {
            return Some(r.0.clone());
        }
        source = s.source();
    }
    None
}

/// Counts HTTP requests sent (every attempt, retries included) and the 429 answers among them.
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

    fn bump(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    fn bump_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }
}

/// How a request authenticates.
pub enum Authorization<'a> {
    /// `Authorization: Api-Token …` (classic environment API).
    ApiToken(&'a Secret<String>),
    /// `Authorization: Bearer …` (account API with an OAuth access token).
    Bearer(&'a Secret<String>),
    /// No header (the OAuth token endpoint authenticates with the form body).
    None,
}

/// A request body; never printed.
pub enum Body {
    Json(Vec<u8>),
    /// `application/x-www-form-urlencoded`, already encoded.
    Form(Secret<String>),
    /// `text/plain; charset=utf-8` (metric lines for the ingest API).
    Text(String),
}

/// One logical request.
pub struct Call {
    pub method: Method,
    /// Appended to the client's base URL, e.g. `/api/v2/apiTokens`.
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Body>,
    /// Whether sending it twice has the same effect as once. Only creates are not.
    pub idempotent: bool,
    /// Whether the response carries a secret, so its body must never be quoted in an error.
    pub secret_response: bool,
    /// Non-2xx statuses whose body the caller reads itself: answered as a [`Reply`], never
    /// retried (metrics ingest's 400 says which lines were stored).
    pub replied_statuses: Vec<u16>,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        let idempotent = method != Method::POST;
        Call {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotent,
            secret_response: false,
            replied_statuses: Vec::new(),
        }
    }

    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    /// A JSON body. Serialization of our own wire types cannot fail.
    pub fn json<T: serde::Serialize>(mut self, body: &T) -> Self {
        self.body = Some(Body::Json(
            serde_json::to_vec(body).expect("wire types always serialize"),
        ));
        self
    }

    /// A plain-text body.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.body = Some(Body::Text(text.into()));
        self
    }

    /// Answer `status` as a [`Reply`] instead of an error (see [`Call::replied_statuses`]).
    pub fn reply_on(mut self, status: u16) -> Self {
        self.replied_statuses.push(status);
        self
    }

    pub fn form(mut self, encoded: Secret<String>) -> Self {
        self.body = Some(Body::Form(encoded));
        self
    }

    /// Mark a POST as safe to repeat (lookup, rotation state changes, the OAuth token call).
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }

    pub fn secret_response(mut self) -> Self {
        self.secret_response = true;
        self
    }
}

/// A successful response.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    label: RequestLabel,
    secret_response: bool,
}

impl Reply {
    /// Decode the body; the error names the request and never quotes a secret.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, LiveError> {
        self.json_seed(std::marker::PhantomData)
    }

    /// The body read by a serde seed (a page decoded straight into model tokens), with the same
    /// errors as [`Reply::json`].
    pub fn json_seed<'a, S>(&'a self, seed: S) -> Result<S::Value, LiveError>
    where
        S: serde::de::DeserializeSeed<'a>,
    {
        // A body that is UTF-8 as a whole is checked in one pass here and then read as text,
        // instead of string by string as it is decoded (a page of 10,000 tokens holds about
        // 100,000 strings). One that is not is read as bytes, so that its error says where.
        let decoded = match std::str::from_utf8(&self.body) {
            Ok(text) => decode(seed, serde_json::Deserializer::from_str(text)),
            Err(_) => decode(seed, serde_json::Deserializer::from_slice(&self.body)),
        };
        decoded.map_err(|e| LiveError::Decode {
            request: Box::new(self.label.clone()),
            reason: if self.secret_response {
                format!(
                    "invalid JSON at line {} column {} ({:?})",
                    e.line(),
                    e.column(),
                    e.classify()
                )
            } else {
                redact(&e.to_string())
            },
        })
    }

    pub fn label(&self) -> &RequestLabel {
        &self.label
    }
}

/// `seed` read from `de`, which must then hold nothing but whitespace.
fn decode<'a, S, R>(
    seed: S,
    mut de: serde_json::Deserializer<R>,
) -> Result<S::Value, serde_json::Error>
where
    S: serde::de::DeserializeSeed<'a>,
    R: serde_json::de::Read<'a>,
{
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// What every client of one run shares: the connection pool and TLS setup, the retry policy,
/// the pacing (gates per domain, caps per host) and the call counter. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    client: reqwest::Client,
    retry: RetryPolicy,
    deadline: Duration,
    calls: CallCounter,
    pacing: Arc<Pacing>,
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

/// A client bound to one base URL and one subject (environment or account).
pub struct HttpClient {
    client: reqwest::Client,
    base: String,
    subject: Subject,
    retry: RetryPolicy,
    deadline: Duration,
    calls: CallCounter,
    /// The pacing gate of this client's throttling domain (its base URL).
    gate: Arc<Gate>,
    /// The in-flight cap of this client's host.
    host: Arc<Semaphore>,
    server_time: Mutex<Option<OffsetDateTime>>,
}

impl HttpClient {
    /// A client for `base` (scheme, host and any path prefix such as `/e/<env-id>`).
    pub fn new(subject: Subject, base: &str, transport: &Transport) -> Result<Self, LiveError> {
        let parsed = url::Url::parse(base).map_err(|e| LiveError::Config {
            subject: subject.clone(),
            reason: format!(
                "`{base}` is not a valid URL ({e}); hint: write it as https://host[/path]"
            ),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(LiveError::Config {
                subject,
                reason: format!("`{base}` is not an http(s) URL"),
            });
        }
        if parsed.scheme() == "http" && !plain_http_allowed(&parsed) {
            return Err(LiveError::Config {
                subject,
                reason: format!(
                    "`{base}` uses plain http to a host that is not loopback; refusing to send credentials in cleartext (hint: use https)"
                ),
            });
        }
        let base = base.trim_end_matches('/').to_owned();
        let host = format!(
            "{}://{}:{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port_or_known_default().unwrap_or_default()
        );
        Ok(HttpClient {
            client: transport.client.clone(),
            gate: transport.pacing.gate(&base),
            host: transport.pacing.host(&host),
            base,
            subject,
            retry: transport.retry.clone(),
            deadline: transport.deadline,
            calls: transport.calls.clone(),
            server_time: Mutex::new(None),
        })
    }

    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The server clock from the `Date` header of the latest response, if any had one.
    pub fn server_time(&self) -> Option<OffsetDateTime> {
        *self.server_time.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn label(&self, call: &Call) -> RequestLabel {
        let prefix = url::Url::parse(&self.base)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        RequestLabel {
            subject: self.subject.clone(),
            method: call.method.to_string(),
            path: format!("{prefix}{}", call.path),
        }
    }

    /// Send `call`, retrying as the module docs describe, within the overall deadline. `Ok`
    /// only for 2xx.
    pub async fn send(&self, call: &Call, auth: Authorization<'_>) -> Result<Reply, LiveError> {
        let label = self.label(call);
        let attempts = AtomicU64::new(0);
        match tokio::time::timeout(self.deadline, self.attempts(call, auth, &label, &attempts))
            .await
        {
            Ok(result) => result,
            Err(_) => {
                let reason = format!(
                    "no answer within the overall deadline of {} s (retries included)",
                    self.deadline.as_secs()
                );
                if call.idempotent {
                    Err(LiveError::Transport {
                        request: Box::new(label),
                        reason,
                        attempts: attempts.load(Ordering::Relaxed) as u32,
                    })
                } else {
                    Err(LiveError::Ambiguous {
                        request: Box::new(label),
                        reason,
                    })
                }
            }
        }
    }

    async fn attempts(
        &self,
        call: &Call,
        auth: Authorization<'_>,
        label: &RequestLabel,
        attempts: &AtomicU64,
    ) -> Result<Reply, LiveError> {
        let label = label.clone();
        let url = format!("{}{}", self.base, call.path);
        if let Ok(parsed) = url::Url::parse(&url) {
            if parsed.scheme() != "https" && !plain_http_allowed(&parsed) {
                return Err(LiveError::Config {
                    subject: self.subject.clone(),
                    reason:
                        "refusing to send a request over plain http to a host that is not loopback"
                            .into(),
                });
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.max_attempts.max(1);
            let mut request = self
                .client
                .request(call.method.clone(), &url)
                .header(reqwest::header::ACCEPT, "application/json");
            if !call.query.is_empty() {
                request = request.query(&call.query);
            }
            request = match &auth {
                Authorization::ApiToken(t) => {
                    request.header(AUTHORIZATION, secret_header("Api-Token", t))
                }
                Authorization::Bearer(t) => {
                    request.header(AUTHORIZATION, secret_header("Bearer", t))
                }
                Authorization::None => request,
            };
            request = match &call.body {
                Some(Body::Json(bytes)) => request
                    .header(CONTENT_TYPE, "application/json")
                    .body(bytes.clone()),
                Some(Body::Form(encoded)) => request
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(encoded.expose().clone()),
                Some(Body::Text(text)) => request
                    .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(text.clone()),
                None => request,
            };
            let slot = Slot::enter(self.gate.clone(), self.host.clone()).await;
            self.calls.bump();
            attempts.fetch_add(1, Ordering::Relaxed);
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    self.note_date(&headers);
                    let limit = if status.is_success() {
                        MAX_BODY_BYTES
                    } else {
                        MAX_ERROR_BODY_BYTES
                    };
                    match read_capped(response, limit).await {
                        Ok(Capped::Whole(body)) => Ok((status, headers, body)),
                        Ok(Capped::Truncated(body)) if !status.is_success() => {
                            Ok((status, headers, body))
                        }
                        Ok(Capped::Truncated(_)) => {
                            let reason = format!(
                                "the response body is larger than {} MiB; refused rather than read",
                                MAX_BODY_BYTES / (1024 * 1024)
                            );
                            return Err(if call.idempotent {
                                LiveError::Decode {
                                    request: Box::new(label),
                                    reason,
                                }
                            } else {
                                LiveError::Ambiguous {
                                    request: Box::new(label),
                                    reason,
                                }
                            });
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match &outcome {
                Ok((status, headers, _)) => {
                    let status = status.as_u16();
                    let now = OffsetDateTime::now_utc();
                    let hint = server_hint(headers, now);
                    let hold = match (status, hint) {
                        (429, Some(hint)) | (503, Some(hint)) => Some(self.retry.hinted(hint)),
                        (429, None) => Some(self.retry.backoff(attempt)),
                        _ => None,
                    };
                    if status == 429 {
                        self.calls.bump_throttled();
                    }
                    slot.answered(Answer {
                        status,
                        rate_limit: rate_limit(headers, now),
                        hold,
                    });
                }
                Err(_) => drop(slot),
            }
            if let Err(e) = &outcome {
                if let Some(reason) = refused_redirect(e) {
                    let request = Box::new(label);
                    return Err(if call.idempotent {
                        LiveError::Refused { request, reason }
                    } else {
                        LiveError::Ambiguous { request, reason }
                    });
                }
            }
            match outcome {
                Ok((status, _, body))
                    if status.is_success() || call.replied_statuses.contains(&status.as_u16()) =>
                {
                    return Ok(Reply {
                        status: status.as_u16(),
                        body,
                        label,
                        secret_response: call.secret_response,
                    });
                }
                Ok((status, headers, body)) => {
                    let retryable = match status.as_u16() {
                        429 | 503 => true,
                        502 | 504 => call.idempotent,
                        _ => false,
                    };
                    if retryable && !last {
                        // A 429, or a 503 with a hint, holds the domain's gate: the next attempt
                        // waits there with every other request to the domain.
                        let held = status.as_u16() == 429
                            || server_hint(&headers, OffsetDateTime::now_utc()).is_some();
                        if !held {
                            tokio::time::sleep(self.retry.backoff(attempt)).await;
                        }
                        continue;
                    }
                    if !call.idempotent && matches!(status.as_u16(), 502 | 504) {
                        return Err(LiveError::Ambiguous {
                            request: Box::new(label),
                            reason: format!(
                                "a gateway answered {status} and may have forwarded the request"
                            ),
                        });
                    }
                    let (message, violations) =
                        parse_error_body(status, &body, call.secret_response);
                    return Err(LiveError::Status {
                        request: Box::new(label),
                        status: status.as_u16(),
                        message,
                        violations,
                        attempts: attempt,
                    });
                }
                Err(e) => {
                    // A connection that never opened carried no request: safe to repeat.
                    let never_sent = e.is_connect();
                    if !call.idempotent && !never_sent {
                        return Err(LiveError::Ambiguous {
                            request: Box::new(label),
                            reason: describe(&e),
                        });
                    }
                    if !last {
                        tokio::time::sleep(self.retry.backoff(attempt)).await;
                        continue;
                    }
                    return Err(LiveError::Transport {
                        request: Box::new(label),
                        reason: describe(&e),
                        attempts: attempt,
                    });
                }
            }
        }
    }

    fn note_date(&self, headers: &HeaderMap) {
        if let Some(date) = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date)
        {
            *self.server_time.lock().unwrap_or_else(|e| e.into_inner()) = Some(date);
        }
    }
}

enum Capped {
    Whole(Vec<u8>),
    /// The first `limit` bytes of a longer body.
    Truncated(Vec<u8>),
}

/// Read a body, stopping at `limit` bytes: a declared or actual larger body is never held.
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Capped, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > limit as u64) && limit == MAX_BODY_BYTES {
        return Ok(Capped::Truncated(Vec::new()));
    }
    // One allocation for a body of declared length (a token list page is megabytes), instead of
    // doubling through every size up to it.
    let declared = response.content_length().unwrap_or(0);
    let mut body = Vec::with_capacity(usize::try_from(declared).unwrap_or(limit).min(limit));
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(Capped::Truncated(body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Capped::Whole(body))
}

fn secret_header(scheme: &str, token: &Secret<String>) -> HeaderValue {
    let mut value = HeaderValue::from_str(&format!("{scheme} {}", token.expose()))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    value.set_sensitive(true);
    value
}

/// A transport error in words, without the URL and without any token.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "connection failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    redact(&text)
}

/// Dynatrace's error message and constraint violations from an error body, redacted; the raw
/// start of the body when it is not one of the known shapes (a proxy's HTML page, say).
pub fn parse_error_body(
    status: StatusCode,
    body: &[u8],
    secret_response: bool,
) -> (String, Vec<Violation>) {
    let fallback = || {
        status
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_owned()
    };
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(list)) => {
            let first = list
                .into_iter()
                .filter_map(|v| serde_json::from_value::<ErrorEnvelope>(v).ok())
                .find_map(|e| e.error);
            if let Some(error) = first {
                return from_error_body(error, fallback);
            }
        }
        Ok(value @ serde_json::Value::Object(_)) => {
            if value.get("error").is_some_and(|e| e.is_object()) {
                if let Ok(ErrorEnvelope { error: Some(error) }) =
                    serde_json::from_value(value.clone())
                {
                    return from_error_body(error, fallback);
                }
            }
            if let Ok(flat) = serde_json::from_value::<FlatError>(value) {
                // An OAuth error (RFC 6749 §5.2) keeps its code (`invalid_scope`, …) beside the
                // description: callers tell the errors apart by it.
                let code = flat.error.and_then(|e| e.as_str().map(str::to_owned));
                let text = match (flat.message, flat.error_description, code) {
                    (Some(m), _, _) => Some(m),
                    (None, Some(d), Some(c)) => Some(format!("{c}: {d}")),
                    (None, d, c) => d.or(c),
                };
                if let Some(text) = text {
                    return (redact(&text), Vec::new());
                }
            }
        }
        _ => {}
    }
    let raw = String::from_utf8_lossy(body);
    let raw = raw.trim();
    if raw.is_empty() || secret_response {
        return (fallback(), Vec::new());
    }
    let start: String = raw.chars().take(200).collect();
    let more = if raw.chars().count() > 200 { "…" } else { "" };
    (redact(&format!("{start}{more}")), Vec::new())
}

fn from_error_body(
    error: super::wire::ErrorBody,
    fallback: impl Fn() -> String,
) -> (String, Vec<Violation>) {
    let message = error.message.map(|m| redact(&m)).unwrap_or_else(fallback);
    let violations = error
        .constraint_violations
        .unwrap_or_default()
        .into_iter()
        .map(|v| Violation {
            path: v.path.map(|p| redact(&p)),
            message: redact(
                v.message
                    .as_deref()
                    .or(v.description.as_deref())
                    .unwrap_or(""),
            ),
        })
        .collect();
    (message, violations)
}

/// How long the server asked us to wait: `Retry-After` (delay-seconds or HTTP-date) or
/// `X-RateLimit-Reset` (Unix microseconds). Dates are measured against the response's own
/// `Date` header when present (so a skewed local clock does not matter), else against `now`.
pub fn server_hint(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let server_now = headers
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
        .unwrap_or(now);
    let until = |at: OffsetDateTime| {
        let d = at - server_now;
        if d.is_negative() {
            Duration::ZERO
        } else {
            d.unsigned_abs()
        }
    };
    if let Some(value) = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        if let Ok(secs) = value.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Some(at) = parse_http_date(value) {
            return Some(until(at));
        }
    }
    let reset = headers
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(reset) * 1000).ok()?;
    Some(until(at))
}

/// `X-RateLimit-Remaining` with `X-RateLimit-Reset` (Unix microseconds), when a response carries
/// both, and `X-RateLimit-Limit` if sent; the reset as a wait measured like [`server_hint`]
/// (against the response's `Date`).
pub fn rate_limit(headers: &HeaderMap, now: OffsetDateTime) -> Option<RateLimit> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let remaining = number("x-ratelimit-remaining")?;
    let reset_raw = number("x-ratelimit-reset")?;
    let server_now = headers
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
        .unwrap_or(now);
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(reset_raw) * 1000).ok()?;
    let left = at - server_now;
    Some(RateLimit {
        remaining,
        limit: number("x-ratelimit-limit"),
        reset_in: if left.is_negative() {
            Duration::ZERO
        } else {
            left.unsigned_abs()
        },
    })
}

/// Parse an HTTP-date in its preferred IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value.trim(), format)
        .ok()
        .map(|t| t.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(datetime!(1994-11-06 08:49:37 UTC))
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    #[test]
    fn retry_after_seconds_and_date() {
        let now = datetime!(2026-11-22 10:00:00 UTC);
        assert_eq!(
            server_hint(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        let h = headers(&[
            ("retry-after", "Sun, 22 Nov 2026 10:00:05 GMT"),
            ("date", "Sun, 22 Nov 2026 10:00:02 GMT"),
        ]);
        assert_eq!(server_hint(&h, now), Some(Duration::from_secs(3)));
        let past = headers(&[("retry-after", "Sun, 22 Nov 2026 09:00:00 GMT")]);
        assert_eq!(server_hint(&past, now), Some(Duration::ZERO));
    }

    #[test]
    fn rate_limit_reset_is_microseconds() {
        let now = datetime!(2026-11-22 10:00:00 UTC);
        let reset = (now.unix_timestamp() * 1_000_000 + 2_500_000).to_string();
        assert_eq!(
            server_hint(&headers(&[("x-ratelimit-reset", &reset)]), now),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(server_hint(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            multiplier: 2.0,
            max_delay: Duration::from_millis(500),
            jitter: 0.2,
        };
        let first = policy.backoff(1);
        assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120));
        let third = policy.backoff(3);
        assert!(third >= Duration::from_millis(320) && third <= Duration::from_millis(480));
        assert!(policy.backoff(9) <= Duration::from_millis(500));
        assert_eq!(
            policy.hinted(Duration::from_secs(100)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn error_bodies_in_every_shape() {
        let s = StatusCode::BAD_REQUEST;
        let (m, v) = parse_error_body(
            s,
            br#"{"error":{"code":400,"message":"Constraints violated.","constraintViolations":[{"path":"scopes","message":"bad","parameterLocation":"PAYLOAD_BODY","location":null}]}}"#,
            false,
        );
        assert_eq!(m, "Constraints violated.");
        assert_eq!(v[0].to_string(), "scopes: bad");
        let (m, _) = parse_error_body(s, br#"[{"error":{"code":400,"message":"first"}}]"#, false);
        assert_eq!(m, "first");
        let (m, _) = parse_error_body(
            s,
            br#"{"errorCode":400,"message":"Bad Request","issueId":"x"}"#,
            false,
        );
        assert_eq!(m, "Bad Request");
        let (m, _) = parse_error_body(
            s,
            br#"{"error":"invalid_client","error_description":"nope"}"#,
            false,
        );
        assert_eq!(m, "invalid_client: nope");
        let (m, _) = parse_error_body(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>", false);
        assert_eq!(m, "<html>bad gateway</html>");
        let (m, _) = parse_error_body(StatusCode::BAD_GATEWAY, b"", false);
        assert_eq!(m, "Bad Gateway");
    }

    fn reply(body: &[u8]) -> Reply {
        Reply {
            status: 200,
            body: body.to_vec(),
            label: RequestLabel {
                subject: Subject::Environment("prod".into()),
                method: "GET".into(),
                path: "/api/v2/apiTokens".into(),
            },
            secret_response: false,
        }
    }

    #[test]
    fn a_body_decodes_alike_read_as_text_or_as_bytes() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        struct Page {
            name: String,
            tags: Vec<String>,
        }
        let good =
            reply("{\"name\":\"caf\u{e9} \\u00e9\",\"tags\":[\"a\",\"\u{1f511}\"]} \n".as_bytes());
        let page: Page = good.json().unwrap();
        assert_eq!(page.name, "caf\u{e9} \u{e9}");
        assert_eq!(page.tags, ["a", "\u{1f511}"]);

        // Not UTF-8 inside a string: the error names the place, as when every string was
        // checked on its own.
        let bad = reply(b"{\"name\":\"ab\xff\",\"tags\":[]}");
        let err = bad.json::<Page>().unwrap_err().to_string();
        assert!(err.contains("line 1 column"), "{err}");
        assert!(
            err.contains("environment `prod`: GET /api/v2/apiTokens"),
            "{err}"
        );

        // Trailing data after the value is refused either way.
        for body in [
            &b"{\"name\":\"x\",\"tags\":[]} {}"[..],
            b"{\"name\":\"\xff\",\"tags\":[]} {}",
        ] {
            assert!(reply(body).json::<Page>().is_err());
        }
    }
}

//! One HTTP door to Dynatrace: timeouts, authentication header, retries, the server clock and
//! the call counter.
//!
//! [`HttpClient::send`] sends one logical request and retries it when that is safe:
//! - 429 (the server refused the request unprocessed), and a 503 that says when to come back
//!   (`Retry-After` or `X-RateLimit-Reset`): always, for any method, waiting for that hint
//!   (seconds, HTTP-date or Unix microseconds) when present, else exponential backoff with
//!   jitter; every wait is capped by the policy.
//! - 502, 504, a 503 without a hint and connection errors: for idempotent requests only. A
//!   create (`POST` that makes a token) that fails after it may have reached the server becomes
//!   [`LiveError::Ambiguous`], never a blind retry (DESIGN.md invariant 2). CHOICE: a bare 503
//!   counts as "may have reached it" because a proxy answers one when its upstream resets after
//!   taking the request (Envoy does); Dynatrace's own 503 is a refusal, and retrying it blindly
//!   made a second token with the same marker. A connection that could not be established at
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
//!
//! The parts: `settings` (timeouts, retries, the proxy), `transport` (what the clients of a run
//! share), `call` (a request and its answer), `responses` (error bodies and hints); this file
//! is the send loop.

mod call;
mod responses;
mod settings;
mod transport;

pub use call::{Authorization, Body, Call, Reply};
pub use responses::{parse_error_body, parse_http_date, rate_limit, server_hint};
pub use settings::{ClientSettings, ProxySettings, RetryPolicy, DEFAULT_MAX_IN_FLIGHT_PER_HOST};
pub use transport::{CallCounter, Transport};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use super::error::{redact, LiveError, RequestLabel, Subject};
use super::pacing::{Answer, Gate, Slot};
use crate::model::{plain_http_allowed, Secret};
use transport::refused_redirect;

/// The largest response body read: far above a full page of 10,000 tokens (about 6 MiB), far
/// below what would exhaust memory. A larger body is an error, not data.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// How much of an error body is kept for its message.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

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
        // Whether an attempt is on the wire: a deadline met while waiting to send (for the
        // rate limit, or between attempts) leaves a create that was never taken, not one that
        // may have been.
        let sending = AtomicBool::new(false);
        match tokio::time::timeout(
            self.deadline,
            self.attempts(call, auth, &label, &attempts, &sending),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => {
                let on_the_wire = sending.load(Ordering::Relaxed);
                let reason = if on_the_wire {
                    format!(
                        "no answer within the overall deadline of {} s (retries included)",
                        self.deadline.as_secs()
                    )
                } else {
                    format!(
                        "not sent within the overall deadline of {} s: still waiting for the server's rate limit or between retries",
                        self.deadline.as_secs()
                    )
                };
                if call.idempotent || !on_the_wire {
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
        sending: &AtomicBool,
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
            sending.store(true, Ordering::Relaxed);
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
            sending.store(false, Ordering::Relaxed);
            // Whether the answer said when to come back (`Retry-After`, `X-RateLimit-Reset`).
            let mut hinted = false;
            match &outcome {
                Ok((status, headers, _)) => {
                    let status = status.as_u16();
                    let now = OffsetDateTime::now_utc();
                    let hint = server_hint(headers, now);
                    hinted = hint.is_some();
                    let hold = match (status, hint) {
                        (429, Some(hint)) | (503, Some(hint)) => Some(self.retry.hinted(hint)),
                        (429, None) => Some(self.retry.backoff(attempt)),
                        _ => None,
                    };
                    if status == 429 {
                        self.calls.bump_throttled();
                    }
                    // A reset far away (a month, a year 9999) is held no longer than any other
                    // wait: past the cap the budget is forgotten and a 429 says the rest.
                    let rate_limit = rate_limit(headers, now).map(|mut rl| {
                        rl.reset_in = rl.reset_in.min(self.retry.max_delay);
                        rl
                    });
                    slot.answered(Answer {
                        status,
                        rate_limit,
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
                Ok((status, _, body)) => {
                    let retryable = match status.as_u16() {
                        429 => true,
                        503 => hinted || call.idempotent,
                        502 | 504 => call.idempotent,
                        _ => false,
                    };
                    if retryable && !last {
                        // A 429, or a 503 with a hint, holds the domain's gate: the next attempt
                        // waits there with every other request to the domain.
                        let held = status.as_u16() == 429 || hinted;
                        if !held {
                            tokio::time::sleep(self.retry.backoff(attempt)).await;
                        }
                        continue;
                    }
                    if !call.idempotent && matches!(status.as_u16(), 502..=504) && !hinted {
                        return Err(LiveError::Ambiguous {
                            request: Box::new(label),
                            reason: format!(
                                "a gateway answered {status} and may have forwarded the request"
                            ),
                        });
                    }
                    let (message, violations) =
                        parse_error_body(status, &body, call.secret_response);
                    // The credential this request sent, echoed back, is hidden whatever its
                    // shape (the redaction above knows Dynatrace's token format only).
                    let hide = |text: String| auth.hide_in(text);
                    let message = hide(message);
                    let violations = violations
                        .into_iter()
                        .map(|v| super::error::Violation {
                            path: v.path.map(hide),
                            message: hide(v.message),
                        })
                        .collect();
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

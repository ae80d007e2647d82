//! What an answer says besides its data: Dynatrace's error message and constraint violations
//! in every shape an error body comes in, the wait a 429 or 503 asks for (`Retry-After`,
//! `X-RateLimit-Reset`), the rate-limit report and HTTP dates.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use time::OffsetDateTime;

use crate::live::error::{redact, Violation};
use crate::live::pacing::RateLimit;
use crate::live::wire::{ErrorEnvelope, FlatError};

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
                    return (server_text(&text), Vec::new());
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
    (server_text(&format!("{start}{more}")), Vec::new())
}

/// A server's text as tokensmith shows it: token secrets redacted, control characters escaped
/// (a message is the server's to choose, and printed raw it could drive the terminal).
fn server_text(text: &str) -> String {
    crate::model::printable::printable(&redact(text))
}

fn from_error_body(
    error: crate::live::wire::ErrorBody,
    fallback: impl Fn() -> String,
) -> (String, Vec<Violation>) {
    let message = error
        .message
        .map(|m| server_text(&m))
        .unwrap_or_else(fallback);
    let violations = error
        .constraint_violations
        .unwrap_or_default()
        .into_iter()
        .map(|v| Violation {
            path: v.path.map(|p| server_text(&p)),
            message: server_text(
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
    // A `Date` of year 9999 would overflow the planner's arithmetic on "now"; it is ignored like
    // a header that does not parse (the local clock is used).
    time::PrimitiveDateTime::parse(value.trim(), format)
        .ok()
        .map(|t| t.assume_utc())
        .and_then(crate::live::dates::within_reach)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
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
}

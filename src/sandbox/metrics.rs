//! Metrics ingest API v2 (`POST /api/v2/metrics/ingest`, scope `metrics.ingest`): the endpoint a
//! data-ingest token is for, so a delivered token can be shown to work, and tokensmith's own
//! metrics (`live::metrics_ingest::send_metric_lines`) have somewhere real to go.
//!
//! Owns: the request (`text/plain` body, one data point per line; `#…` comment/metadata lines and
//! empty lines skipped), the answer, and keeping what was accepted in the environment's
//! `data_points` (the last 1000; `GET /__sandbox/metrics` shows them). Parsing one line is
//! `line_protocol.rs`; authentication is `auth.rs`.
//!
//! The 1.254 spec declares the 202 and 400 answers without a body. The documented (and
//! client-observed) body is a validation report, which the sandbox sends for both:
//! `{"linesOk":n,"linesInvalid":m,"error":null|{"code":400,"message":"m invalid lines",
//! "invalidLines":[{"line":k,"error":"…"}]}}`. Choices made here:
//! - `line` is the 1-based line number in the payload, comment and empty lines counted.
//! - `warnings` is left out: the sandbox never has any, and Dynatrace omits unset fields.
//! - valid lines of a payload with invalid ones are kept (the spec: "Valid data points are
//!   accepted"); at most 100 invalid lines are listed, `linesInvalid` counts them all.
//! - a payload with no data line at all is a 400 in the same shape ("no data points"), since the
//!   spec marks the body required. UNCERTAIN.
//! - a body that is not `text/plain` is a 415 in the error envelope; a body that is not UTF-8 a
//!   400 in the error envelope.

use serde_json::{json, Value};

use super::auth::authenticate;
use super::errors::{ApiError, Handled, Reply};
use super::line_protocol::parse_line;
use super::request::Call;
use super::state::State;

pub const INGEST: &str = "metrics.ingest";

/// How many invalid lines an answer lists.
const MAX_LISTED_INVALID: usize = 100;

/// `POST /api/v2/metrics/ingest`.
pub fn ingest(state: &mut State, call: &mut Call) -> Handled {
    authenticate(state, call, &[INGEST])?;
    if let Some(ct) = call.header("content-type") {
        let media = ct.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("text/plain") {
            return Err(ApiError::new(415, "HTTP 415 Unsupported Media Type"));
        }
    }
    let text = std::str::from_utf8(&call.body)
        .map_err(|_| ApiError::bad_request("the payload is not valid UTF-8"))?;
    let now = call.now;
    let mut accepted = Vec::new();
    let mut invalid = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line, now) {
            Ok(point) => accepted.push(point),
            Err(error) => invalid.push((i + 1, error)),
        }
    }
    let lines_ok = accepted.len();
    state
        .env_mut(&call.env_id)
        .ok_or_else(ApiError::no_route)?
        .record_data_points(accepted);
    call.dirty = true;
    if invalid.is_empty() && lines_ok > 0 {
        return Ok(Reply::json(202, report(lines_ok, 0, Value::Null)));
    }
    let message = if invalid.is_empty() {
        "no data points: the payload holds no data line".to_owned()
    } else {
        format!("{} invalid lines", invalid.len())
    };
    let listed: Vec<Value> = invalid
        .iter()
        .take(MAX_LISTED_INVALID)
        .map(|(line, error)| json!({ "line": line, "error": error }))
        .collect();
    let error = json!({ "code": 400, "message": message, "invalidLines": listed });
    Ok(Reply::json(400, report(lines_ok, invalid.len(), error)))
}

fn report(lines_ok: usize, lines_invalid: usize, error: Value) -> Value {
    json!({ "linesOk": lines_ok, "linesInvalid": lines_invalid, "error": error })
}

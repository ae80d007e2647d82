//! The sender of metric lines to an environment's `POST /api/v2/metrics/ingest` (token scope
//! `metrics.ingest`), through the same HTTP door as every other Dynatrace call
//! ([`super::http`]): timeouts, retries of 429 and 503 (and of 502, 504 and connection errors,
//! since a repeated gauge sample does no harm), the tokensmith user agent, and an
//! `Authorization` header marked sensitive.
//!
//! The API answers 202 with `{"linesOk":n,"linesInvalid":0,"error":null}`; 400 when some lines
//! were invalid (valid ones are still stored). Not here: writing the lines
//! (`render::metrics::dynatrace_lines`), and which environment and token to send with (the
//! command picks them from the spec).

use reqwest::Method;
use serde::Deserialize;

use super::error::{redact, LiveError, Subject};
use super::http::{Authorization, Call, HttpClient, Transport};
use crate::model::Secret;

/// What Dynatrace said about an accepted payload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestReport {
    pub lines_ok: u64,
    pub lines_invalid: u64,
}

/// Why metrics could not be sent. Never holds the token.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("sending metrics to {url}: {message}; check the URL and that the runner can reach it")]
    Request { url: String, message: String },
    #[error("metrics ingest at {url} answered {status}: {message}{hint}",
        hint = match .status { 401 | 403 => "; the token needs the `metrics.ingest` scope", _ => "" })]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "metrics ingest at {url} accepted {lines_ok} lines and rejected {lines_invalid}: {message}"
    )]
    InvalidLines {
        url: String,
        lines_ok: u64,
        lines_invalid: u64,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    #[serde(default)]
    lines_ok: Option<u64>,
    #[serde(default)]
    lines_invalid: Option<u64>,
    #[serde(default)]
    error: Option<AnswerError>,
}

#[derive(Deserialize)]
struct AnswerError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "invalidLines")]
    invalid_lines: Vec<serde_json::Value>,
}

/// Post `lines` to `{base}/api/v2/metrics/ingest`, where `base` is the environment URL
/// (`https://abc12345.live.dynatrace.com`, or a Managed `https://host/e/ENV`). Empty input sends
/// nothing.
pub async fn send_metric_lines(
    transport: &Transport,
    base: &str,
    token: &Secret<String>,
    lines: &str,
) -> Result<IngestReport, IngestError> {
    let base = base.trim_end_matches('/');
    let url = format!("{base}/api/v2/metrics/ingest");
    if lines.trim().is_empty() {
        return Ok(IngestReport {
            lines_ok: 0,
            lines_invalid: 0,
        });
    }
    let request_error = |e: LiveError| IngestError::Request {
        url: url.clone(),
        message: match e {
            LiveError::Transport { reason, .. } | LiveError::Ambiguous { reason, .. } => reason,
            other => redact(&other.to_string()),
        },
    };
    let http = HttpClient::new(Subject::Environment(base.to_owned()), base, transport)
        .map_err(request_error)?;
    let call = Call::new(Method::POST, "/api/v2/metrics/ingest")
        .text(lines)
        .idempotent(true)
        .reply_on(400);
    let reply = match http.send(&call, Authorization::ApiToken(token)).await {
        Ok(reply) => reply,
        Err(LiveError::Status {
            status, message, ..
        }) => {
            return Err(IngestError::Status {
                url,
                status,
                message,
            })
        }
        Err(e) => return Err(request_error(e)),
    };
    let status = reply.status;
    let body = String::from_utf8_lossy(&reply.body);
    let answer: Option<Answer> = serde_json::from_str(&body).ok();
    let message = || {
        let from_body = answer
            .as_ref()
            .and_then(|a| a.error.as_ref())
            .map(|e| {
                let mut m = e.message.clone().unwrap_or_default();
                for line in e.invalid_lines.iter().take(3) {
                    m.push_str(&format!("; {line}"));
                }
                m
            })
            .filter(|m| !m.is_empty());
        redact(&from_body.unwrap_or_else(|| body.chars().take(300).collect()))
    };
    match (status, &answer) {
        (202, Some(a)) if a.lines_invalid.unwrap_or(0) == 0 => Ok(IngestReport {
            lines_ok: a.lines_ok.unwrap_or(0),
            lines_invalid: 0,
        }),
        (202 | 400, Some(a)) if a.lines_ok.is_some() || a.lines_invalid.is_some() => {
            Err(IngestError::InvalidLines {
                url,
                lines_ok: a.lines_ok.unwrap_or(0),
                lines_invalid: a.lines_invalid.unwrap_or(0),
                message: message(),
            })
        }
        _ => Err(IngestError::Status {
            url,
            status,
            message: message(),
        }),
    }
}

//! [`Metrics`] as Dynatrace metric ingestion protocol lines, and the sender that posts them to
//! an environment's `POST /api/v2/metrics/ingest` (token scope `metrics.ingest`).
//!
//! Lines: `tokensmith.token.days_to_expiry,env=prod,kind=api_token,key=k8s-operator 12.5`;
//! a platform token's home is `account=NAME` instead of `env=NAME`. No timestamp is sent, so
//! Dynatrace stamps each line when it arrives. Dimension values are quoted only when they hold
//! characters outside the plain alphabet, with `"` and `\` escaped.
//!
//! The API answers 202 with `{"linesOk":n,"linesInvalid":0,"error":null}`; 400 when some lines
//! were invalid (valid ones are still stored). Not here: which environment and token to send
//! with (the command picks them from the spec).

use serde::Deserialize;

use super::{number, Metrics, TokenMetrics};
use crate::live::redact;
use crate::model::{Home, Secret};

/// The metric lines, one per number, each ending with `\n`.
pub fn dynatrace_lines(metrics: &Metrics) -> String {
    let mut out = String::new();
    let mut token_line = |key: &str, t: &TokenMetrics, value: Option<f64>| {
        if let Some(v) = value {
            let (home_dim, home) = match &t.home {
                Home::Environment(e) => ("env", e.to_string()),
                Home::Account(a) => ("account", a.clone()),
            };
            out.push_str(&format!(
                "{key},{home_dim}={},kind={}",
                dimension(&home),
                dimension(t.kind.as_str())
            ));
            if let Some(k) = &t.key {
                out.push_str(&format!(",key={}", dimension(k.as_str())));
            }
            out.push_str(&format!(" {}\n", number(v)));
        }
    };
    for t in &metrics.tokens {
        token_line("tokensmith.token.days_to_expiry", t, t.days_to_expiry);
        token_line("tokensmith.token.days_to_rotation", t, t.days_to_rotation);
    }
    if let Some(n) = metrics.drift_items {
        out.push_str(&format!("tokensmith.drift.items {n}\n"));
    }
    if let Some(at) = metrics.last_successful_apply {
        out.push_str(&format!(
            "tokensmith.apply.last_success_timestamp {}\n",
            at.unix_timestamp()
        ));
    }
    out
}

fn dimension(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
    if plain {
        value.to_owned()
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

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
pub async fn send_to_dynatrace(
    client: &reqwest::Client,
    base: &str,
    token: &Secret<String>,
    lines: &str,
) -> Result<IngestReport, IngestError> {
    let url = format!("{}/api/v2/metrics/ingest", base.trim_end_matches('/'));
    if lines.trim().is_empty() {
        return Ok(IngestReport {
            lines_ok: 0,
            lines_invalid: 0,
        });
    }
    let request_error = |e: reqwest::Error| IngestError::Request {
        url: url.clone(),
        message: redact(&e.without_url().to_string()),
    };
    let response = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(
            reqwest::header::AUTHORIZATION,
            format!("Api-Token {}", token.expose()),
        )
        .body(lines.to_owned())
        .send()
        .await
        .map_err(request_error)?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(request_error)?;
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

//! [`Metrics`] as Dynatrace metric ingestion protocol lines.
//!
//! Lines: `tokensmith.token.days_to_expiry,env=prod,kind=api_token,key=k8s-operator 12.5`;
//! a platform token's home is `account=NAME` instead of `env=NAME`. No timestamp is sent, so
//! Dynatrace stamps each line when it arrives. Dimension values are quoted only when they hold
//! characters outside the plain alphabet, with `"` and `\` escaped.
//!
//! Not here: sending the lines (`live::metrics_ingest`).

use super::{number, Metrics, TokenMetrics};
use crate::model::Home;

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

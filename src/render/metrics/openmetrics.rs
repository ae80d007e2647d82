//! [`Metrics`] as OpenMetrics text (the Prometheus exposition format's successor), for a
//! node-exporter textfile collector, a Pushgateway or a CI artifact. Families:
//!
//! - `tokensmith_token_days_to_expiry{home,kind,key}` (gauge)
//! - `tokensmith_token_days_to_rotation{home,kind,key}` (gauge)
//! - `tokensmith_drift_items` (gauge)
//! - `tokensmith_last_successful_apply_timestamp_seconds` (gauge, unit seconds)
//!
//! A family without a sample is left out. The text ends with `# EOF` as the format requires.

use std::io;

use super::{number, Metrics, TokenMetrics};
use crate::plan::home_label;

/// Write `metrics` as OpenMetrics text.
pub fn write_openmetrics(metrics: &Metrics, out: &mut dyn io::Write) -> io::Result<()> {
    token_family(
        out,
        metrics,
        "tokensmith_token_days_to_expiry",
        "Days until the current generation of a managed token expires.",
        |t| t.days_to_expiry,
    )?;
    token_family(
        out,
        metrics,
        "tokensmith_token_days_to_rotation",
        "Days until a managed token is due for rotation.",
        |t| t.days_to_rotation,
    )?;
    if let Some(n) = metrics.drift_items {
        writeln!(out, "# TYPE tokensmith_drift_items gauge")?;
        writeln!(
            out,
            "# HELP tokensmith_drift_items Differences between the spec and live state found by the last drift run."
        )?;
        writeln!(out, "tokensmith_drift_items {n}")?;
    }
    if let Some(at) = metrics.last_successful_apply {
        let name = "tokensmith_last_successful_apply_timestamp_seconds";
        writeln!(out, "# TYPE {name} gauge")?;
        writeln!(out, "# UNIT {name} seconds")?;
        writeln!(
            out,
            "# HELP {name} When the last apply succeeded, in seconds since the Unix epoch."
        )?;
        writeln!(out, "{name} {}", at.unix_timestamp())?;
    }
    writeln!(out, "# EOF")
}

fn token_family(
    out: &mut dyn io::Write,
    metrics: &Metrics,
    name: &str,
    help: &str,
    value: impl Fn(&TokenMetrics) -> Option<f64>,
) -> io::Result<()> {
    let samples: Vec<(&TokenMetrics, f64)> = metrics
        .tokens
        .iter()
        .filter_map(|t| value(t).map(|v| (t, v)))
        .collect();
    if samples.is_empty() {
        return Ok(());
    }
    writeln!(out, "# TYPE {name} gauge")?;
    writeln!(out, "# HELP {name} {help}")?;
    for (t, v) in samples {
        let key = t.key.as_ref().map(|k| k.to_string()).unwrap_or_default();
        writeln!(
            out,
            "{name}{{home=\"{}\",kind=\"{}\",key=\"{}\"}} {}",
            label(&home_label(&t.home)),
            label(t.kind.as_str()),
            label(&key),
            number(v)
        )?;
    }
    Ok(())
}

/// Escape a label value: backslash, double quote and newline.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

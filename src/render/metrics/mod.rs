//! The numbers a scheduled run reports: days until each managed token expires and until its
//! next rotation (from a plan's forecast), how many drift items were found, and when the last
//! apply succeeded. [`Metrics`] holds them once; [`openmetrics`] writes them for Prometheus-style
//! scrapers and file collectors, [`metric_lines`] writes the same numbers as Dynatrace metric
//! lines.
//!
//! Not here: deciding when to write or send them (the commands), sending the lines to the
//! metrics ingest API (`live::metrics_ingest`), and where the last apply's time is kept (the
//! caller passes it in).

pub mod metric_lines;
pub mod openmetrics;

use time::OffsetDateTime;

use crate::model::{Home, TokenKey, TokenKind};
use crate::plan::{DriftReport, Plan};

pub use metric_lines::dynatrace_lines;
pub use openmetrics::write_openmetrics;

/// Everything reported, computed against one clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// The clock days are counted from (the plan's `generated_at`).
    pub now: OffsetDateTime,
    pub tokens: Vec<TokenMetrics>,
    /// Items in the drift report, when one was made.
    pub drift_items: Option<usize>,
    /// When the last apply succeeded, when known.
    pub last_successful_apply: Option<OffsetDateTime>,
}

/// One managed token's numbers. Days are fractional and negative once the moment has passed.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenMetrics {
    pub home: Home,
    pub kind: TokenKind,
    /// `None` for the tenant token.
    pub key: Option<TokenKey>,
    /// `None` when the token never expires or is created by the plan.
    pub days_to_expiry: Option<f64>,
    /// `None` when the token does not rotate on a schedule.
    pub days_to_rotation: Option<f64>,
}

impl Metrics {
    /// Nothing measured yet, against `now`.
    pub fn new(now: OffsetDateTime) -> Self {
        Metrics {
            now,
            tokens: Vec::new(),
            drift_items: None,
            last_successful_apply: None,
        }
    }

    /// The token numbers of a plan's forecast, counted from the plan's clock.
    pub fn from_plan(plan: &Plan) -> Self {
        let now = plan.generated_at;
        let days = |t: Option<OffsetDateTime>| t.map(|t| days_between(now, t));
        Metrics {
            tokens: plan
                .forecast
                .iter()
                .map(|f| TokenMetrics {
                    home: f.home.clone(),
                    kind: f.kind,
                    key: f.key.clone(),
                    days_to_expiry: days(f.expires),
                    days_to_rotation: days(f.rotation_due),
                })
                .collect(),
            ..Metrics::new(now)
        }
    }

    pub fn with_drift(mut self, report: &DriftReport) -> Self {
        self.drift_items = Some(report.items.len());
        self
    }

    pub fn with_last_successful_apply(mut self, at: Option<OffsetDateTime>) -> Self {
        self.last_successful_apply = at;
        self
    }
}

/// Days from `from` to `to`, rounded to a thousandth (about 86 seconds).
fn days_between(from: OffsetDateTime, to: OffsetDateTime) -> f64 {
    let days = (to - from).as_seconds_f64() / 86_400.0;
    (days * 1000.0).round() / 1000.0
}

/// A number as both formats accept it: plain decimal, no exponent, `-0` as `0`.
pub(crate) fn number(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let s = format!("{x}");
    if s.contains('e') {
        format!("{x:.3}")
    } else {
        s
    }
}

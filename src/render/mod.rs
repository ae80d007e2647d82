//! Renderers: the plan, the drift report and the inventory as human text (Terraform-like,
//! optionally coloured), JSON (the serde form of the versioned types) and markdown for
//! pull-request comments (never over [`MARKDOWN_LIMIT`] bytes); the inventory also as CSV, and
//! the inventory (with a plan) as one self-contained HTML page ([`report_html`]); the
//! desired-state diff of `plan --base` (human, markdown); validation findings as GitHub
//! annotations ([`annotations`]); and a run's numbers as OpenMetrics text and Dynatrace metric
//! lines ([`metrics`]); progress bars for a terminal ([`progress`]).
//!
//! Every renderer writes to a `&mut dyn io::Write` and prints only what the values hold:
//! ids, names, scopes, target addresses, never a secret (the values contain none).
//!
//! Not here: sending anything anywhere (metric lines go to Dynatrace through
//! `live::metrics_ingest`).

pub mod annotations;
mod desired_diff;
mod drift;
mod html;
mod human;
mod inventory;
mod json;
mod limit;
mod markdown;
pub mod metrics;
pub mod progress;
mod style;
mod tenant;

use std::io;

pub use desired_diff::{desired_diff_human, desired_diff_markdown, DESIRED_DIFF_BUDGET};
pub use drift::{drift_human, drift_markdown};
pub use html::{escape as html_escape, report_html};
pub use human::plan_human;
pub use inventory::{inventory_csv, inventory_human, inventory_markdown};
pub use json::{drift_json, inventory_json, plan_json, to_json};
pub use limit::MARKDOWN_LIMIT;
pub use markdown::{
    apply_plan_markdown, apply_result_markdown, plan_details_markdown_within, plan_markdown,
    PLAN_COMMENT_HEADING,
};

use crate::plan::{DriftReport, Inventory, Plan};

/// Output formats, as chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human { color: bool },
    Json,
    Markdown,
}

/// Render a plan in the given format.
pub fn render_plan(plan: &Plan, format: Format, out: &mut dyn io::Write) -> io::Result<()> {
    match format {
        Format::Human { color } => plan_human(plan, color, out),
        Format::Json => plan_json(plan, out),
        Format::Markdown => plan_markdown(plan, out),
    }
}

/// Render a drift report in the given format.
pub fn render_drift(
    report: &DriftReport,
    format: Format,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    match format {
        Format::Human { color } => drift_human(report, color, out),
        Format::Json => drift_json(report, out),
        Format::Markdown => drift_markdown(report, out),
    }
}

/// Render an inventory in the given format.
pub fn render_inventory(
    inventory: &Inventory,
    format: Format,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    match format {
        Format::Human { color } => inventory_human(inventory, color, out),
        Format::Json => inventory_json(inventory, out),
        Format::Markdown => inventory_markdown(inventory, out),
    }
}

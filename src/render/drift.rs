//! The drift report as text and as a pull-request or issue comment.

use std::io;

use super::limit::{code, text, Limited, MARKDOWN_LIMIT};
use super::markdown::truncation_note;
use super::style::Style;
use crate::plan::{home_label, DriftItem, DriftReport};

fn subject(i: &DriftItem) -> String {
    let mut s = format!("{} {}", home_label(&i.home), i.kind);
    if let Some(k) = &i.key {
        s.push_str(&format!(" {k}"));
    }
    if let Some(t) = &i.target {
        s.push_str(&format!(" → {t}"));
    }
    s
}

pub fn drift_human(report: &DriftReport, color: bool, out: &mut dyn io::Write) -> io::Result<()> {
    let st = Style { color };
    if !report.has_drift() {
        return writeln!(out, "No drift: live tokens and targets match the spec.");
    }
    writeln!(out, "Drift found in {} place(s):", report.items.len())?;
    for i in &report.items {
        writeln!(
            out,
            "  {} {}: {}",
            st.yellow("~"),
            st.bold(&subject(i)),
            i.reason
        )?;
        writeln!(out, "      {}", i.detail)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Run `tokensmith plan` to see how to bring live state back to the spec."
    )
}

pub fn drift_markdown(report: &DriftReport, out: &mut dyn io::Write) -> io::Result<()> {
    let mut md = Limited::new(MARKDOWN_LIMIT);
    md.always("### tokensmith drift");
    md.always("");
    if !report.has_drift() {
        md.always("**No drift.** Live tokens and targets match the spec.");
    } else {
        md.always(&format!(
            "**Drift found in {} place(s).**",
            report.items.len()
        ));
        md.always("");
        md.always("<details><summary>Details</summary>");
        md.always("");
        md.line("| where | reason | detail |");
        md.line("|---|---|---|");
        for i in &report.items {
            md.line(&format!(
                "| {} | {} | {} |",
                code(&subject(i)),
                code(&i.reason.to_string()),
                text(&i.detail)
            ));
        }
        truncation_note(&mut md, "drift items");
        md.always("");
        md.always("</details>");
    }
    out.write_all(md.finish().as_bytes())
}

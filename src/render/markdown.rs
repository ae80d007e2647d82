//! The plan as a pull-request comment: the summary first, destructive actions called out,
//! failed checks and warnings, then the steps, the forecast and what is pending inside
//! collapsed `<details>`. Never longer than [`MARKDOWN_LIMIT`] bytes: rows that do not fit are
//! cut and a note says how many and where to find the full plan.

use std::io;

use super::limit::{code, text, Limited, MARKDOWN_LIMIT};
use super::style::{headline, symbol};
use crate::apply::ApplyReport;
use crate::plan::{home_label, Action, Plan};

use crate::model::encode::rfc3339 as ts;

pub fn plan_markdown(plan: &Plan, out: &mut dyn io::Write) -> io::Result<()> {
    out.write_all(plan_markdown_string(plan, MARKDOWN_LIMIT).as_bytes())
}

pub(crate) fn truncation_note(md: &mut Limited, what: &str) {
    let cut = md.take_truncated();
    if cut > 0 {
        md.always("");
        md.always(&format!(
            "_… {cut} more {what} not shown: the comment would exceed GitHub's size limit. Run `tokensmith plan` or see `--format json` for everything._"
        ));
    }
}

/// The heading of a plan comment that shows the desired-state changes first.
pub const PLAN_COMMENT_HEADING: &str = "### tokensmith plan\n\n";

/// The plan's details under [`PLAN_COMMENT_HEADING`] and the desired-state changes, within
/// `limit` bytes (what is left of one comment after what comes before it).
pub fn plan_details_markdown_within(
    plan: &Plan,
    limit: usize,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    out.write_all(titled_plan_markdown(plan, limit, "#### What apply will do").as_bytes())
}

/// An apply as a pull-request comment: the apply heading, then the plan it executes (the
/// results follow with [`apply_result_markdown`]).
pub fn apply_plan_markdown(plan: &Plan, out: &mut dyn io::Write) -> io::Result<()> {
    out.write_all(titled_plan_markdown(plan, MARKDOWN_LIMIT, "### tokensmith apply").as_bytes())
}

/// How an apply ended, in markdown: the counts, then each failed or skipped step and why.
pub fn apply_result_markdown(report: &ApplyReport, out: &mut dyn io::Write) -> io::Result<()> {
    let mut md = Limited::new(MARKDOWN_LIMIT);
    md.always("");
    md.always("#### Result");
    md.always("");
    md.always(&format!(
        "**Apply {}:** {} done, {} already done, {} failed, {} skipped.",
        if report.has_failures() {
            "failed"
        } else {
            "complete"
        },
        report.done().count(),
        report.already_done().count(),
        report.failed().count(),
        report.skipped().count(),
    ));
    let unfinished: Vec<_> = report.failed().chain(report.skipped()).collect();
    if !unfinished.is_empty() {
        md.always("");
        for s in unfinished {
            md.line(&format!(
                "- {} {}: {}",
                s.outcome.label(),
                code(&s.step.to_string()),
                text(&s.outcome.message())
            ));
        }
        truncation_note(&mut md, "steps");
    }
    out.write_all(md.finish().as_bytes())
}

pub(crate) fn plan_markdown_string(plan: &Plan, limit: usize) -> String {
    titled_plan_markdown(plan, limit, "### tokensmith plan")
}

fn titled_plan_markdown(plan: &Plan, limit: usize, title: &str) -> String {
    let mut md = Limited::new(limit);
    md.always(title);
    md.always("");
    if plan.steps.is_empty() && !plan.has_open_rotation() {
        md.always("**No changes.** Live tokens and targets match the spec.");
    } else {
        md.always(&format!("**{}**", plan.summary));
    }
    md.always("");
    for r in &plan.tenant_rotations {
        for line in super::tenant::open_rotation_lines(r) {
            md.always(&text(&line));
        }
        md.always("");
    }

    if !plan.checks.is_empty() {
        md.line(&format!("❌ **{} failed check(s)**", plan.checks.len()));
        md.line("");
        for c in &plan.checks {
            let tag = if c.blocking { " (blocks apply)" } else { "" };
            md.line(&format!(
                "- {} {}{tag}",
                code(&c.code.to_string()),
                text(&c.message)
            ));
        }
        md.line("");
        truncation_note(&mut md, "checks");
    }

    let destructive: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| s.action.is_destructive())
        .collect();
    if !destructive.is_empty() {
        md.line(&format!(
            "⚠️ **Destructive actions ({})** — each runs only after the steps it depends on:",
            destructive.len()
        ));
        md.line("");
        for s in &destructive {
            md.line(&format!(
                "- `{}` {} — {}",
                symbol(s),
                text(&headline(s)),
                code(&s.reason.to_string())
            ));
        }
        md.line("");
        truncation_note(&mut md, "destructive actions");
    }

    if !plan.warnings.is_empty() {
        md.line(&format!("**Warnings ({})**", plan.warnings.len()));
        md.line("");
        for w in &plan.warnings {
            md.line(&format!("- {} ({})", text(&w.message), code(&w.code)));
        }
        md.line("");
        truncation_note(&mut md, "warnings");
    }

    if !plan.steps.is_empty() {
        md.always(&format!(
            "<details><summary>Steps ({})</summary>",
            plan.steps.len()
        ));
        md.always("");
        md.line("| | step | reason | details |");
        md.line("|---|---|---|---|");
        for s in &plan.steps {
            md.line(&format!(
                "| `{}` | {} | {} | {} |",
                symbol(s),
                text(&headline(s)),
                code(&s.reason.to_string()),
                details(s)
            ));
        }
        truncation_note(&mut md, "steps");
        md.always("");
        md.always("</details>");
        md.always("");
    }

    if !plan.pending.is_empty() {
        md.always(&format!(
            "<details><summary>Pending ({})</summary>",
            plan.pending.len()
        ));
        md.always("");
        for p in &plan.pending {
            let when = p
                .not_before
                .map(|t| format!(" not before {}", ts(t)))
                .unwrap_or_default();
            md.line(&format!(
                "- {} {} {} in {}: {}{when}, waiting for {}",
                p.action,
                p.kind,
                code(p.key.as_str()),
                code(&home_label(&p.home)),
                code(p.token.as_str()),
                text(&p.waiting_for)
            ));
        }
        truncation_note(&mut md, "pending items");
        md.always("");
        md.always("</details>");
        md.always("");
    }

    if !plan.forecast.is_empty() {
        md.always(&format!(
            "<details><summary>Expiry forecast ({})</summary>",
            plan.forecast.len()
        ));
        md.always("");
        md.line("| home | token | id | expires | next rotation |");
        md.line("|---|---|---|---|---|");
        for f in &plan.forecast {
            let what = match &f.key {
                Some(k) => format!("{} {k}", f.kind),
                None => f.kind.to_string(),
            };
            let id = super::human::forecast_id(f);
            md.line(&format!(
                "| {} | {} | {} | {} | {} |",
                code(&home_label(&f.home)),
                code(&what),
                id,
                f.expires.map_or("never".to_owned(), ts),
                f.rotation_due.map_or("—".to_owned(), ts)
            ));
        }
        truncation_note(&mut md, "forecast rows");
        md.always("");
        md.always("</details>");
        md.always("");
    }

    let commit = plan
        .inputs
        .spec_commit
        .as_deref()
        .map(|c| {
            format!(
                ", commit `{}`{}",
                &c[..c.len().min(12)],
                if plan.inputs.dirty { " (dirty)" } else { "" }
            )
        })
        .unwrap_or_default();
    md.always(&format!(
        "<sub>plan format {}, inputs: spec `{}`, live `{}`, targets `{}`{commit}</sub>",
        plan.format_version,
        short(&plan.inputs.spec),
        short(&plan.inputs.live),
        short(&plan.inputs.targets)
    ));
    md.finish()
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

fn details(s: &crate::plan::Step) -> String {
    match &s.action {
        Action::Create {
            name,
            scopes,
            targets,
            ..
        } => {
            let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
            let mut d = format!("name {}", code(name));
            if !scopes.is_empty() {
                d.push_str(&format!(", scopes {}", code(&scopes.join(", "))));
            }
            if !targets.is_empty() {
                d.push_str(&format!(", blast radius {} target(s)", targets.len()));
            }
            d
        }
        Action::Update { name, scopes, .. } => {
            let mut parts = Vec::new();
            if let Some(n) = name {
                parts.push(format!("name {} → {}", code(&n.from), code(&n.to)));
            }
            if let Some(c) = scopes {
                let added: Vec<&str> = c.to.difference(&c.from).map(|s| s.as_str()).collect();
                let removed: Vec<&str> = c.from.difference(&c.to).map(|s| s.as_str()).collect();
                if !added.is_empty() {
                    parts.push(format!("+ {}", code(&added.join(", "))));
                }
                if !removed.is_empty() {
                    parts.push(format!("− {}", code(&removed.join(", "))));
                }
            }
            parts.join(", ")
        }
        Action::Adopt { name, .. } => format!("name {} → {}", code(&name.from), code(&name.to)),
        Action::Disable {
            name,
            rename: Some(rename),
            ..
        } => format!("name {} → {}", code(name), code(rename)),
        Action::Disable { name, .. } | Action::Delete { name, .. } => {
            format!("name {}", code(name))
        }
        Action::Deliver { .. }
        | Action::TenantStart
        | Action::TenantFinish
        | Action::TenantCancel => String::new(),
    }
}

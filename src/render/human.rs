//! The human plan, Terraform-like: one block per step with its symbol, what it does, why
//! (the reason code), and details (names, scope diffs, blast radius, dependencies of
//! destructive steps); then what is pending, the expiry forecast, warnings, failed checks and
//! the summary line.

use std::io;

use super::style::{headline, scope_diff, Style};
use crate::model::{ActiveGateType, TokenDetails};
use crate::plan::{home_label, Action, Plan, TokenSource};

use crate::model::encode::rfc3339 as ts;

/// Write the plan for a terminal or a CI log. ANSI colours only when `color` is true.
pub fn plan_human(plan: &Plan, color: bool, out: &mut dyn io::Write) -> io::Result<()> {
    let st = Style { color };
    if plan.steps.is_empty() {
        if plan.checks.is_empty()
            && plan.pending.is_empty()
            && plan.warnings.is_empty()
            && !plan.has_open_rotation()
        {
            writeln!(out, "No changes. Live tokens and targets match the spec.")?;
        } else {
            writeln!(out, "No changes.")?;
        }
    } else {
        writeln!(out, "tokensmith will perform the following actions:")?;
    }
    for r in &plan.tenant_rotations {
        writeln!(out)?;
        for (i, line) in super::tenant::open_rotation_lines(r).iter().enumerate() {
            let indent = if i == 0 { "  " } else { "      " };
            writeln!(out, "{indent}{line}")?;
        }
    }
    for step in &plan.steps {
        writeln!(out)?;
        writeln!(out, "  {} {}", st.symbol(step), st.bold(&headline(step)))?;
        writeln!(out, "      {} {}", st.dim("reason:"), step.reason)?;
        match &step.action {
            Action::Create {
                name,
                scopes,
                expires_in,
                targets,
                details,
                ..
            } => {
                writeln!(out, "      name:    {name:?}")?;
                match details {
                    TokenDetails::Api {
                        personal_access_token: true,
                        ..
                    } => writeln!(out, "      personal access token")?,
                    TokenDetails::Activegate {
                        activegate_type,
                        seed,
                    } => writeln!(
                        out,
                        "      type:    {}{}",
                        match activegate_type {
                            ActiveGateType::Environment => "ENVIRONMENT",
                            ActiveGateType::Cluster => "CLUSTER",
                        },
                        if *seed { ", seed token" } else { "" }
                    )?,
                    TokenDetails::Platform { resources, owner } => {
                        if !resources.is_empty() {
                            writeln!(out, "      resources: [{}]", resources.join(", "))?;
                        }
                        if let Some(owner) = owner {
                            writeln!(out, "      owner:   {owner}")?;
                        }
                    }
                    TokenDetails::Api { .. } => {}
                }
                if !scopes.is_empty() {
                    let list: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
                    writeln!(out, "      scopes:  [{}]", list.join(", "))?;
                }
                match expires_in {
                    Some(e) => writeln!(out, "      expires: {e} after creation")?,
                    None => writeln!(out, "      expires: never")?,
                }
                if !targets.is_empty() {
                    writeln!(out, "      blast radius: {} target(s)", targets.len())?;
                    for t in targets {
                        writeln!(out, "        {t}")?;
                    }
                }
            }
            Action::Update { name, scopes, .. } => {
                if let Some(n) = name {
                    writeln!(
                        out,
                        "      name:    {} → {}",
                        st.red(&format!("{:?}", n.from)),
                        st.green(&format!("{:?}", n.to))
                    )?;
                }
                if let Some(s) = scopes {
                    writeln!(out, "      scopes:")?;
                    for (sign, scope) in scope_diff(&s.from, &s.to) {
                        let line = format!("{sign} {scope}");
                        let line = match sign {
                            '-' => st.red(&line),
                            '+' => st.green(&line),
                            _ => line,
                        };
                        writeln!(out, "        {line}")?;
                    }
                }
            }
            Action::Adopt { name, .. } => {
                writeln!(
                    out,
                    "      name:    {} → {}",
                    st.red(&format!("{:?}", name.from)),
                    st.green(&format!("{:?}", name.to))
                )?;
            }
            Action::Deliver { token, .. } => match token {
                TokenSource::Created { step } => writeln!(out, "      value:   created by {step}")?,
                TokenSource::Existing { id, copy_from } => {
                    writeln!(out, "      value:   {id}, copied from {copy_from}")?
                }
                TokenSource::TenantToken => writeln!(
                    out,
                    "      value:   the active tenant token (connectioninfo)"
                )?,
            },
            Action::Disable {
                name,
                rename: Some(rename),
                ..
            } => {
                writeln!(out, "      name:    {name:?} → {rename:?}")?;
            }
            Action::Disable { name, .. } | Action::Delete { name, .. } => {
                writeln!(out, "      name:    {name:?}")?;
            }
            Action::TenantStart | Action::TenantFinish | Action::TenantCancel => {}
        }
        if let Some(note) = &step.note {
            writeln!(out, "      {} {note}", st.dim("note:"))?;
        }
        if step.action.is_destructive() && !step.depends_on.is_empty() {
            writeln!(out, "      after:")?;
            for d in &step.depends_on {
                writeln!(out, "        {d}")?;
            }
        }
    }

    if !plan.pending.is_empty() {
        writeln!(out)?;
        writeln!(out, "Pending (decided again by a later run):")?;
        for p in &plan.pending {
            let when = p
                .not_before
                .map(|t| format!(" not before {}", ts(t)))
                .unwrap_or_default();
            writeln!(
                out,
                "  {} {} {} in {}: {}{when}, waiting for {}",
                p.action,
                p.kind,
                p.key,
                home_label(&p.home),
                p.token,
                p.waiting_for
            )?;
        }
    }

    if !plan.forecast.is_empty() {
        writeln!(out)?;
        writeln!(out, "Expiry forecast:")?;
        let rows: Vec<[String; 5]> = plan
            .forecast
            .iter()
            .map(|f| {
                [
                    home_label(&f.home),
                    match &f.key {
                        Some(k) => format!("{} {k}", f.kind),
                        None => f.kind.to_string(),
                    },
                    forecast_id(f),
                    f.expires.map_or("never".to_owned(), ts),
                    f.rotation_due.map_or("—".to_owned(), ts),
                ]
            })
            .collect();
        let header = ["home", "token", "id", "expires", "next rotation"].map(String::from);
        write_table(out, &header, &rows)?;
    }

    if !plan.warnings.is_empty() {
        writeln!(out)?;
        writeln!(out, "Warnings:")?;
        for w in &plan.warnings {
            writeln!(out, "  {} {} ({})", st.yellow("!"), w.message, w.code)?;
        }
    }
    if !plan.checks.is_empty() {
        writeln!(out)?;
        writeln!(out, "Failed checks:")?;
        for c in &plan.checks {
            let tag = if c.blocking { "blocking" } else { "failing" };
            writeln!(out, "  {} {} ({}, {tag})", st.red("✗"), c.message, c.code)?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", st.bold(&plan.summary.to_string()))?;
    Ok(())
}

/// The id column of a forecast row.
pub(crate) fn forecast_id(f: &crate::plan::ForecastEntry) -> String {
    match (&f.token, f.changed_by_plan, f.kind) {
        (_, false, crate::model::TokenKind::TenantToken) => "active".to_owned(),
        (_, true, crate::model::TokenKind::TenantToken) => {
            "active (rotated by this plan)".to_owned()
        }
        (Some(t), false, _) => t.to_string(),
        (Some(t), true, _) => format!("{t} (changed by this plan)"),
        (None, _, _) => "(new, by this plan)".to_owned(),
    }
}

/// A left-aligned table with two spaces between columns.
pub(crate) fn write_table<const N: usize>(
    out: &mut dyn io::Write,
    header: &[String; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let mut widths = [0usize; N];
    for row in std::iter::once(header).chain(rows) {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let mut line = String::from(" ");
        for (i, cell) in row.iter().enumerate() {
            line.push(' ');
            line.push_str(cell);
            if i + 1 < N {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 1));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

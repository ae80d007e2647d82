//! `tokensmith plan`: load the spec, read live Dynatrace and the targets, plan, render, and
//! optionally save the plan for `apply PLAN`.

use anyhow::Context;

use super::saved_plan::{self, SpecLocation, SpecRef};
use super::session::{self, Session};
use crate::cli::settings::{Connections, PlanSettings};
use crate::git;
use crate::output::{ExitStatus, Printer};
use crate::plan;
use crate::render::metrics::{write_openmetrics, Metrics};
use crate::render::{self, Format};

pub fn run(
    args: PlanSettings,
    connect: &Connections,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    if let Some(out) = &args.out {
        super::check_output_file("--out", out)?;
    }
    if let Some(path) = &args.metrics_file {
        super::check_output_file("--metrics-file", path)?;
    }
    let Some(source) = session::load_spec(&args.spec.file, args.git.spec_ref.as_deref(), printer)?
    else {
        return Ok(ExitStatus::Failure);
    };
    let mut session = Session::new(&args.spec.file, source, &args.envs, &args.accounts, connect)?;
    session.restrict_commands(args.no_exec, args.base.as_deref())?;
    // A `--replace` that names no token is refused before anything is read.
    plan::check_replace(&session.desired, &args.replace)?;
    let output = args.format;
    let world = session::runtime()?.block_on(session.read_world_shown(printer.progress_bars()))?;
    for w in &world.warnings {
        writeln!(printer.err(), "warning: {w}")?;
    }
    let opts = plan::PlanOptions {
        replace: args.replace.clone(),
        ..session.plan_options(args.fail_on_expiry_within)
    };
    let mut plan = plan::plan(
        &session.desired,
        &world.live,
        &world.targets,
        session::now(&world.live),
        &opts,
    )?;
    session::add_preflight(&mut plan, &session.desired, &world.preflight);
    plan.warnings
        .extend(world.commands_not_run.iter().map(|message| plan::Warning {
            code: "read_command_not_run".into(),
            message: message.clone(),
        }));
    // A target that could not be read is planned as if it were missing: say why.
    plan.warnings
        .extend(world.targets.holders.iter().filter_map(|(address, holder)| {
            let crate::model::Holder::Unreadable { reason } = holder else {
                return None;
            };
            Some(plan::Warning {
                code: "target_unreadable".into(),
                message: format!(
                    "target `{address}` could not be read ({reason}); it is planned as if it held nothing"
                ),
            })
        }));
    plan.warnings.extend(
        session::all_targets(&session.desired)
            .iter()
            .filter_map(|t| match t {
                crate::model::Target::File(f) => {
                    crate::deliver::file::loose_mode(session.deliverer.context(), f)
                }
                _ => None,
            })
            .map(|message| plan::Warning {
                code: "file_mode_loose".into(),
                message,
            }),
    );
    // What the change does to the desired state (`--base`).
    let diff = match &args.base {
        Some(base) => Some(
            git::at_ref::diff_against(&session.spec_path, base, &session.loaded.desired)
                .with_context(|| format!("--base {base}"))?,
        ),
        None => None,
    };
    let head = args.git.spec_ref.as_deref().unwrap_or("working tree");
    if args.html {
        // One page: the plan's steps, and the inventory over the same inputs with the plan's
        // coming rotations on its timeline.
        let mut inventory = plan::inventory(&session.desired, &world.live, plan.generated_at);
        plan::add_schedule(&mut inventory, &plan, &session.desired);
        render::report_html(&inventory, Some(&plan), printer.out())?;
    } else if let (Format::Markdown, Some(diff), Some(base)) = (output, &diff, &args.base) {
        // A PR comment: what the reviewer changed first, then the plan's details, the two
        // within one GitHub comment (the plan gets what the desired-state changes leave).
        let mut changes = render::PLAN_COMMENT_HEADING.as_bytes().to_vec();
        render::desired_diff_markdown(diff, base, head, &mut changes)?;
        changes.extend_from_slice(b"\n");
        printer.out().write_all(&changes)?;
        render::plan_details_markdown_within(
            &plan,
            render::MARKDOWN_LIMIT.saturating_sub(changes.len()),
            printer.out(),
        )?;
    } else {
        render::render_plan(&plan, output, printer.out())?;
        // In a terminal the summary comes first, then what the change does to the desired state.
        if let (Format::Human { .. }, Some(diff), Some(base)) = (output, &diff, &args.base) {
            render::desired_diff_human(diff, base, head, printer.out())?;
        }
    }
    if let Some(path) = &args.metrics_file {
        write_metrics(path, &Metrics::from_plan(&plan))?;
    }
    if let Some(out) = &args.out {
        // A spec read at `--spec-ref` is applied from the same commit, not the working tree.
        let spec_ref =
            args.git
                .spec_ref
                .as_ref()
                .zip(session.commit.as_ref())
                .map(|(reference, at)| SpecRef {
                    reference: reference.clone(),
                    commit: at.commit.clone(),
                });
        saved_plan::write(
            out,
            &plan,
            &SpecLocation::record(&session.spec_path, spec_ref)?,
        )?;
        writeln!(
            printer.err(),
            "Saved the plan to {}; run `tokensmith apply {}` to execute it.",
            out.display(),
            out.display()
        )?;
    }
    Ok(if plan.has_failed_checks() {
        ExitStatus::Failure
    } else if args.detailed_exitcode && (plan.has_changes() || plan.has_open_rotation()) {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// Write OpenMetrics text to `path` (atomically: a scraper never reads half a file).
pub(crate) fn write_metrics(path: &std::path::Path, metrics: &Metrics) -> anyhow::Result<()> {
    let mut text = Vec::new();
    write_openmetrics(metrics, &mut text)?;
    // Readable by others (0644 for a new file): a node exporter's textfile collector may run as
    // another user, and the numbers hold no secret.
    crate::atomic_write::write_atomic(path, &text, 0o644)
        .with_context(|| format!("cannot write metrics to {}", path.display()))
}

//! `tokensmith plan`: load the spec, read live Dynatrace and the targets, plan, render, and
//! optionally save the plan for `apply PLAN`.

use std::fs;

use anyhow::Context;

use super::session::{self, Session};
use crate::cli::{OutputFormat, PlanArgs};
use crate::gitops::{self, desired_diff, metrics::Metrics};
use crate::model::SpecDuration;
use crate::output::{ExitStatus, Printer};
use crate::plan;
use crate::render::{self, Format};

pub fn run(args: PlanArgs, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let fail_on_expiry_within = args
        .fail_on_expiry_within
        .as_deref()
        .map(|d| d.parse::<SpecDuration>())
        .transpose()
        .map_err(|e| anyhow::anyhow!("--fail-on-expiry-within: {e}"))?;
    let Some(source) = session::load_spec(&args.spec.file, args.git.spec_ref.as_deref(), printer)?
    else {
        return Ok(ExitStatus::Failure);
    };
    let mut session = Session::new(&args.spec.file, source, &args.envs)?;
    session.restrict_commands(args.no_exec, args.base.as_deref())?;
    let output = format(args.format, printer);
    let world = session::runtime()?.block_on(session.read_world())?;
    for w in &world.warnings {
        writeln!(printer.err(), "warning: {w}")?;
    }
    let opts = session.plan_options(fail_on_expiry_within);
    let mut plan = plan::plan(
        &session.desired,
        &world.live,
        &world.targets,
        session::now(&world.live),
        &opts,
    )?;
    plan.warnings
        .extend(world.commands_not_run.iter().map(|message| plan::Warning {
            code: "read_command_not_run".into(),
            message: message.clone(),
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
    render::render_plan(&plan, output, printer.out())?;
    // What the change does to the desired state, after the plan (the summary comes first).
    if let Some(base) = &args.base {
        let diff = gitops::at_ref::diff_against(&session.spec_path, base, &session.loaded.desired)
            .with_context(|| format!("--base {base}"))?;
        let head = args.git.spec_ref.as_deref().unwrap_or("working tree");
        match output {
            Format::Markdown => desired_diff::render_markdown(&diff, base, head, printer.out())?,
            Format::Json => {}
            Format::Human { .. } => desired_diff::render_human(&diff, base, head, printer.out())?,
        }
    }
    if let Some(path) = &args.metrics_file {
        write_metrics(path, &Metrics::from_plan(&plan))?;
    }
    if let Some(out) = &args.out {
        let json = serde_json::to_vec_pretty(&plan).expect("plans serialize");
        fs::write(out, json)
            .with_context(|| format!("cannot write the plan to {}", out.display()))?;
        writeln!(
            printer.err(),
            "Saved the plan to {}; run `tokensmith apply {}` to execute it.",
            out.display(),
            out.display()
        )?;
    }
    Ok(if plan.has_failed_checks() {
        ExitStatus::Failure
    } else if args.detailed_exitcode && plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// Write OpenMetrics text to `path` (atomically: a scraper never reads half a file).
pub(crate) fn write_metrics(path: &std::path::Path, metrics: &Metrics) -> anyhow::Result<()> {
    let mut text = Vec::new();
    gitops::metrics::write_openmetrics(metrics, &mut text)?;
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, &text)
        .and_then(|()| fs::rename(&tmp, path))
        .with_context(|| format!("cannot write metrics to {}", path.display()))
}

pub(crate) fn format(format: OutputFormat, printer: &Printer) -> Format {
    match format {
        OutputFormat::Human => Format::Human {
            color: printer.color(),
        },
        OutputFormat::Json => Format::Json,
        OutputFormat::Markdown => Format::Markdown,
    }
}

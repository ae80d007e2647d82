//! `tokensmith plan`: load the spec, read live Dynatrace and the targets, plan, render, and
//! optionally save the plan for `apply PLAN`.

use std::fs;

use anyhow::Context;

use super::session::{self, Session};
use crate::cli::{OutputFormat, PlanArgs};
use crate::model::SpecDuration;
use crate::output::{ExitStatus, Printer};
use crate::plan::{self, PlanOptions};
use crate::render::{self, Format};

pub fn run(args: PlanArgs, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let fail_on_expiry_within = args
        .fail_on_expiry_within
        .as_deref()
        .map(|d| d.parse::<SpecDuration>())
        .transpose()
        .map_err(|e| anyhow::anyhow!("--fail-on-expiry-within: {e}"))?;
    let Some(loaded) = session::load_spec(&args.spec.file, printer)? else {
        return Ok(ExitStatus::Failure);
    };
    let session = Session::new(&args.spec.file, loaded, &args.envs)?;
    let world = session::runtime()?.block_on(session.read_world())?;
    for w in &world.warnings {
        writeln!(printer.err(), "warning: {w}")?;
    }
    let (spec_commit, dirty) = session::spec_commit(&session.spec_path);
    let opts = PlanOptions {
        spec_hash: session.loaded.source_hash.clone(),
        spec_commit,
        dirty,
        fail_on_expiry_within,
    };
    let plan = plan::plan(
        &session.desired,
        &world.live,
        &world.targets,
        session::now(&world.live),
        &opts,
    )?;
    render::render_plan(&plan, format(args.format, printer), printer.out())?;
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

pub(crate) fn format(format: OutputFormat, printer: &Printer) -> Format {
    match format {
        OutputFormat::Human => Format::Human {
            color: printer.color(),
        },
        OutputFormat::Json => Format::Json,
        OutputFormat::Markdown => Format::Markdown,
    }
}

//! `tokensmith drift`: what differs between git and live Dynatrace; exit 2 when anything does.

use super::plan::format;
use super::session::{self, Session};
use crate::cli::ReportArgs;
use crate::output::{ExitStatus, Printer};
use crate::{plan, render};

pub fn run(args: ReportArgs, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let Some(loaded) = session::load_spec(&args.spec.file, printer)? else {
        return Ok(ExitStatus::Failure);
    };
    let session = Session::new(&args.spec.file, loaded, &args.envs)?;
    let world = session::runtime()?.block_on(session.read_world())?;
    for w in &world.warnings {
        writeln!(printer.err(), "warning: {w}")?;
    }
    let report = plan::drift(
        &session.desired,
        &world.live,
        &world.targets,
        session::now(&world.live),
    );
    render::render_drift(&report, format(args.format, printer), printer.out())?;
    Ok(if report.has_drift() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

//! `tokensmith inventory`: every live token of every environment, classified.

use super::plan::format;
use super::session::{self, Session};
use crate::cli::ReportArgs;
use crate::output::{ExitStatus, Printer};
use crate::{plan, render};

pub fn run(args: ReportArgs, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let Some(source) = session::load_spec(&args.spec.file, None, printer)? else {
        return Ok(ExitStatus::Failure);
    };
    let mut session = Session::new(&args.spec.file, source, &args.envs)?;
    session.restrict_commands(args.no_exec, None)?;
    let world = session::runtime()?.block_on(session.read_world())?;
    for w in world.warnings.iter().chain(&world.commands_not_run) {
        writeln!(printer.err(), "warning: {w}")?;
    }
    let inventory = plan::inventory(&session.desired, &world.live, session::now(&world.live));
    render::render_inventory(&inventory, format(args.format, printer), printer.out())?;
    Ok(ExitStatus::Success)
}

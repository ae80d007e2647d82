//! `tokensmith inventory`: every live token of every environment, classified.

use super::session::{self, Session};
use crate::cli::settings::ReportSettings;
use crate::live::ClientSettings;
use crate::output::{ExitStatus, Printer};
use crate::{plan, render};

pub fn run(
    args: ReportSettings,
    client: &ClientSettings,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let Some(source) = session::load_spec(&args.spec.file, None, printer)? else {
        return Ok(ExitStatus::Failure);
    };
    let session = Session::new(&args.spec.file, source, &args.envs, &args.accounts, client)?;
    let world = session::runtime()?.block_on(session.read_world())?;
    for w in &world.warnings {
        writeln!(printer.err(), "warning: {w}")?;
    }
    let inventory = plan::inventory(&session.desired, &world.live, session::now(&world.live));
    render::render_inventory(&inventory, args.format, printer.out())?;
    Ok(ExitStatus::Success)
}

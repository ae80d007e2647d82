//! One thin adapter per subcommand: read settings, call the library, render, return an exit
//! status. No business logic lives here.

pub mod sandbox;

use crate::cli::{Cli, Command};
use crate::output::{ExitStatus, Printer};

/// Run the parsed command line and return the process exit status.
pub fn run(cli: Cli, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Validate(_) => not_yet(printer, "validate"),
        Command::Schema(_) => not_yet(printer, "schema"),
        Command::Plan(_) => not_yet(printer, "plan"),
        Command::Apply(_) => not_yet(printer, "apply"),
        Command::Drift(_) => not_yet(printer, "drift"),
        Command::Inventory(_) => not_yet(printer, "inventory"),
        Command::Sandbox(args) => sandbox::run(&args, printer),
        Command::ForceUnlock(_) => not_yet(printer, "force-unlock"),
    }
}

fn not_yet(printer: &mut Printer, what: &str) -> anyhow::Result<ExitStatus> {
    writeln!(printer.err(), "tokensmith {what}: not yet implemented")?;
    Ok(ExitStatus::Failure)
}

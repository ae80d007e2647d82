//! One thin adapter per subcommand: read settings, call the library, render, return an exit
//! status. No business logic lives here; what plan, apply, drift and inventory share (loading
//! the spec, connecting, reading live state and targets) is in [`session`].

pub mod apply;
pub mod drift;
pub mod force_unlock;
pub mod inventory;
pub mod plan;
pub mod sandbox;
pub mod schema;
pub mod session;
pub mod validate;

use crate::cli::{Cli, Command};
use crate::output::{ExitStatus, Printer};

/// Run the parsed command line and return the process exit status.
pub fn run(cli: Cli, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Validate(args) => validate::run(&args, printer),
        Command::Schema(args) => schema::run(&args, printer),
        Command::Plan(args) => plan::run(args, printer),
        Command::Apply(args) => apply::run(args, printer),
        Command::Drift(args) => drift::run(args, printer),
        Command::Inventory(args) => inventory::run(args, printer),
        Command::Sandbox(args) => sandbox::run(&args, printer),
        Command::ForceUnlock(args) => force_unlock::run(&args, printer),
    }
}

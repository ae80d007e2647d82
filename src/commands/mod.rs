//! One thin adapter per subcommand: take its resolved settings (`cli::settings`), call the
//! library, render, return an exit status. Commands parse no strings and read no environment
//! variables. No business logic lives here; what plan, apply, drift and inventory share (loading
//! the spec, connecting, reading live state and targets) is in [`session`].

pub mod apply;
pub mod completions;
pub mod drift;
pub mod force_unlock;
pub mod inventory;
pub mod leak;
pub mod plan;
pub mod sandbox;
pub mod sandbox_admin;
pub mod saved_plan;
pub mod schema;
pub mod session;
pub mod validate;

use std::path::Path;

use crate::cli::settings::{CommandSettings, Settings};
use crate::output::{ExitStatus, Printer};

/// Run a resolved command line and return the process exit status.
pub fn run(settings: Settings, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let connect = &settings.connect;
    match settings.command {
        CommandSettings::Validate(args) => validate::run(&args, printer),
        CommandSettings::Schema(args) => schema::run(&args, printer),
        CommandSettings::Plan(args) => plan::run(args, connect, printer),
        CommandSettings::Apply(args) => apply::run(args, connect, printer),
        CommandSettings::Drift(args) => drift::run(args, connect, printer),
        CommandSettings::Inventory(args) => inventory::run(args, connect, printer),
        CommandSettings::Sandbox(args) => sandbox::run(&args, printer),
        CommandSettings::ForceUnlock(args) => force_unlock::run(&args, connect, printer),
        CommandSettings::Leak(args) => leak::run(args, connect, printer),
        CommandSettings::Completions(shell) => completions::completions(shell, printer),
        CommandSettings::Man => completions::man(printer),
    }
}

/// Refuse an output file (`--out`, `--metrics-file`) that cannot be written before the command
/// locks or reads anything, rather than after a long read.
fn check_output_file(flag: &str, path: &Path) -> anyhow::Result<()> {
    crate::atomic_write::check_destination(path).map_err(|why| {
        anyhow::anyhow!(
            "{flag} {}: {why}; nothing was read or changed",
            path.display()
        )
    })
}

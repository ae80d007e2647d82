//! `tokensmith completions SHELL` and `tokensmith man`: shell completion scripts
//! (`clap_complete`) and the roff manual page (`clap_mangen`), both generated from the one
//! command-line definition in `cli`, so they cannot drift from the real flags. Nothing here
//! reads a spec or the network.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionShell};
use crate::output::{ExitStatus, Printer};

/// Write the completion script for `shell` to stdout.
pub fn completions(shell: CompletionShell, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Powershell => Shell::PowerShell,
    };
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "tokensmith", printer.out());
    Ok(ExitStatus::Success)
}

/// Write the manual page (section 1: synopsis, options, the subcommands with what each does,
/// examples and exit codes) to stdout. Each subcommand's own options are in `tokensmith help SUB`.
pub fn man(printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    printer.out().write_all(&page)?;
    Ok(ExitStatus::Success)
}

//! The `tokensmith` binary: parse arguments, resolve them into settings, run the command, map
//! the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use tokensmith::cli::Cli;
use tokensmith::output::Printer;

/// The static musl build (the Docker image) allocates with mimalloc: musl's own malloc made a
/// large spec's validation three to four times slower (figures in Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut printer = Printer::stdio(cli.color);
    let outcome = cli
        .resolve(printer.color())
        .and_then(|settings| tokensmith::commands::run(settings, &mut printer));
    match outcome {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            let _ = writeln!(printer.err(), "error: {err:#}");
            ExitCode::from(1)
        }
    }
}

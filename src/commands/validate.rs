//! `tokensmith validate`: load the spec offline and report every problem with its location.

use crate::cli::{ValidateArgs, ValidateFormat};
use crate::output::{ExitStatus, Printer};
use crate::render::annotations;
use crate::spec;

/// Exit 0 when the spec has no errors (warnings are printed), 1 otherwise.
/// With `--format github`, every finding is also printed to stdout as a workflow annotation.
pub fn run(args: &ValidateArgs, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let color = printer.color();
    let github = args.format == ValidateFormat::Github;
    let args = &args.spec;
    match spec::load(&args.file) {
        Ok(loaded) => {
            if !loaded.warnings.is_empty() {
                loaded.warnings().render(printer.err(), color)?;
                if github {
                    annotations::github_diagnostics(&loaded.warnings(), printer.out())?;
                }
            }
            let d = &loaded.desired;
            writeln!(
                printer.out(),
                "{} is valid: {} token(s) in {} environment(s) and {} account(s), {} tenant token(s)",
                args.file.display(),
                d.tokens.len(),
                d.environments.len(),
                d.accounts.len(),
                d.tenant_tokens.len()
            )?;
            loaded.discard();
            Ok(ExitStatus::Success)
        }
        Err(diags) => {
            diags.render(printer.err(), color)?;
            if github {
                annotations::github_diagnostics(&diags, printer.out())?;
            }
            Ok(ExitStatus::Failure)
        }
    }
}

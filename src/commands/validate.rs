//! `tokensmith validate`: load the spec offline and report every problem with its location.

use crate::cli::SpecArgs;
use crate::output::{ExitStatus, Printer};
use crate::spec;

/// Exit 0 when the spec has no errors (warnings are printed), 1 otherwise.
pub fn run(args: &SpecArgs, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let color = printer.color();
    match spec::load(&args.file) {
        Ok(loaded) => {
            if !loaded.warnings.is_empty() {
                loaded.warnings().render(printer.err(), color)?;
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
            Ok(ExitStatus::Success)
        }
        Err(diags) => {
            diags.render(printer.err(), color)?;
            Ok(ExitStatus::Failure)
        }
    }
}

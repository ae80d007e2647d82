//! `tokensmith schema`: print the JSON Schema of the spec file, or check a committed copy.

use anyhow::Context;

use crate::bounded_read::read_regular_to_string;
use crate::cli::SchemaArgs;
use crate::output::{ExitStatus, Printer};
use crate::spec::schema::schema_json;

/// Prints the schema; with `--check PATH`, exits 1 when `PATH` differs from it.
pub fn run(args: &SchemaArgs, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let current = schema_json();
    let Some(path) = &args.check else {
        printer.out().write_all(current.as_bytes())?;
        return Ok(ExitStatus::Success);
    };
    // Far above the schema's size (about 100 KB); a bound for a file that is not one.
    let committed = read_regular_to_string(path, 64 << 20)
        .with_context(|| format!("cannot read the schema `{}`", path.display()))?;
    if committed == current {
        writeln!(printer.out(), "{} is up to date", path.display())?;
        return Ok(ExitStatus::Success);
    }
    let diff = similar::TextDiff::from_lines(&committed, &current);
    let mut shown = 0;
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
            similar::ChangeTag::Equal => continue,
        };
        if shown == 20 {
            writeln!(printer.err(), "…")?;
            break;
        }
        write!(printer.err(), "{sign}{change}")?;
        shown += 1;
    }
    writeln!(
        printer.err(),
        "error: {} is stale; regenerate it with `tokensmith schema > {}`",
        path.display(),
        path.display()
    )?;
    Ok(ExitStatus::Failure)
}

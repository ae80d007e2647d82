//! The one door for output: a [`Printer`] over any `io::Write` for stdout and stderr, the colour
//! decision, and the process [`ExitStatus`].
//!
//! Library code never calls `println!`; it writes to a `Printer` (or any `io::Write`), so every
//! output is testable in memory. Clippy holds the rule: `print_stdout`/`print_stderr` are denied
//! crate-wide (Cargo.toml `[lints]`) and `std::io::stdout`/`stderr` are disallowed methods
//! (clippy.toml) everywhere but [`Printer::stdio`]. Apply progress goes to [`Printer::err`] too;
//! whether it may be drawn as bars is [`Printer::progress_bars`].

use std::io::{self, IsTerminal, Write};

use crate::cli::env_vars;
use crate::cli::ColorChoice;

/// How the process ends (DESIGN.md: 0 success and nothing to do, 1 error, 2 changes or drift).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    Failure,
    /// Changes pending (`plan --detailed-exitcode`) or drift found (`drift`).
    Changes,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Changes => 2,
        }
    }
}

/// Where output goes, and whether it may be coloured.
pub struct Printer {
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    color: bool,
    interactive: bool,
    progress_bars: bool,
}

impl Printer {
    /// Standard output and error, coloured per `choice`: `auto` colours only when stdout is a
    /// terminal and `NO_COLOR` is unset or empty; `always` colours unless `NO_COLOR` is set.
    #[allow(clippy::disallowed_methods)] // the one place that holds stdout and stderr
    pub fn stdio(choice: ColorChoice) -> Self {
        let no_color = env_vars::no_color();
        let terminal = io::stdout().is_terminal();
        let color = !no_color
            && match choice {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => terminal,
            };
        let interactive = terminal && io::stdin().is_terminal() && !env_vars::ci();
        let progress_bars = io::stderr().is_terminal() && !env_vars::ci();
        Printer {
            out: Box::new(io::stdout()),
            err: Box::new(io::stderr()),
            color,
            interactive,
            progress_bars,
        }
    }

    /// A printer over the given writers, for tests; never coloured, never interactive, no bars.
    pub fn new(out: Box<dyn Write + Send>, err: Box<dyn Write + Send>) -> Self {
        Printer {
            out,
            err,
            color: false,
            interactive: false,
            progress_bars: false,
        }
    }

    pub fn out(&mut self) -> &mut (dyn Write + Send) {
        &mut self.out
    }

    /// Standard error: diagnostics, warnings and apply progress.
    pub fn err(&mut self) -> &mut (dyn Write + Send) {
        &mut self.err
    }

    pub fn color(&self) -> bool {
        self.color
    }

    /// Whether progress may be drawn as bars on standard error: it is a terminal and this is not
    /// CI. Otherwise progress is plain, stable lines (no carriage returns).
    pub fn progress_bars(&self) -> bool {
        self.progress_bars
    }

    /// Whether a human is at a terminal and may be asked to confirm.
    pub fn interactive(&self) -> bool {
        self.interactive
    }
}

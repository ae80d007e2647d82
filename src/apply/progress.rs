//! Progress display: one line per step outcome, to any `io::Write`, and a counts line as an exec
//! fan-out (a fleet) goes. [`PlainProgress::plain`]
//! is for CI logs; [`PlainProgress::counted`] prefixes a `[n/total]` counter for terminals.
//! Output errors are ignored: progress is a courtesy, the report and the journal are the record.

use std::io::Write;

use super::fanout::FanoutCounts;
use super::report::{ApplyReport, Cleanup, Outcome};
use crate::plan::Step;

/// Told about each step as the run goes.
pub trait Progress: Send {
    /// The run starts with this many steps.
    fn begin(&mut self, _total: usize) {}
    /// A step starts.
    fn step_started(&mut self, _step: &Step) {}
    /// A step ended (including steps skipped because a dependency failed).
    fn step_finished(&mut self, step: &Step, outcome: &Outcome);
    /// An exec delivery ended; `counts` are the fan-out's counts so far.
    fn fanout(&mut self, _counts: &FanoutCounts) {}
    /// A clean-up after the steps happened.
    fn cleanup(&mut self, _cleanup: &Cleanup) {}
    /// The run ended.
    fn end(&mut self, _report: &ApplyReport) {}
}

/// No display at all.
pub struct NoProgress;

impl Progress for NoProgress {
    fn step_finished(&mut self, _step: &Step, _outcome: &Outcome) {}
}

/// One line per step outcome.
pub struct PlainProgress<W: Write + Send> {
    out: W,
    counter: bool,
    total: usize,
    finished: usize,
}

impl<W: Write + Send> PlainProgress<W> {
    /// Plain lines, for CI: `done prod/api_token/x/create#1: created dt0c01.ABC`.
    pub fn plain(out: W) -> Self {
        PlainProgress {
            out,
            counter: false,
            total: 0,
            finished: 0,
        }
    }

    /// Lines with a `[n/total]` counter, for a terminal.
    pub fn counted(out: W) -> Self {
        PlainProgress {
            counter: true,
            ..PlainProgress::plain(out)
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> Progress for PlainProgress<W> {
    fn begin(&mut self, total: usize) {
        self.total = total;
    }

    fn step_finished(&mut self, step: &Step, outcome: &Outcome) {
        self.finished += 1;
        let counter = if self.counter {
            format!("[{}/{}] ", self.finished, self.total)
        } else {
            String::new()
        };
        let _ = writeln!(
            self.out,
            "{counter}{:<12} {}: {}",
            outcome.label(),
            step.id,
            outcome.message()
        );
    }

    /// A counts line every twentieth of the fan-out and at its end, when it has more than one
    /// target: `exec fan-out: 1200/5000 finished (1198 ok, 2 failed, 0 skipped)`.
    fn fanout(&mut self, c: &FanoutCounts) {
        let every = (c.total / 20).max(1);
        let finished = c.finished();
        if c.total > 1 && (finished % every == 0 || finished == c.total) {
            let _ = writeln!(
                self.out,
                "{:<12} {finished}/{} finished ({} ok, {} failed, {} skipped)",
                "exec fan-out:", c.total, c.ok, c.failed, c.skipped
            );
        }
    }

    fn cleanup(&mut self, c: &Cleanup) {
        let token = c
            .token
            .as_ref()
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        let _ = writeln!(
            self.out,
            "{:<12} {}{token}: {}",
            c.action.label(),
            c.step,
            c.detail
        );
    }

    fn end(&mut self, report: &ApplyReport) {
        let _ = report.write_summary(&mut self.out);
    }
}

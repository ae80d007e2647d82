//! Progress bars for a person at a terminal (indicatif): one over the live read (environments and
//! accounts read, of the total) and one over an apply (steps done, of the total, with the step
//! most recently started, or the exec fan-out's counts on a fleet).
//!
//! Only the commands decide whether bars are drawn (`Printer::progress_bars`: standard error is a
//! terminal and this is not CI); without them nothing here is created, and the plain lines of
//! [`PlainProgress`] are written exactly as before. With them the same lines still scroll, printed
//! above the bar. A bar shows step ids, environment and account names and counts: never a
//! secret, as the lines never do. Drawing errors are ignored, as progress is a courtesy.

use std::borrow::Cow;
use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::apply::{ApplyReport, Cleanup, FanoutCounts, Outcome, PlainProgress, Progress};
use crate::plan::Step;

/// Where bars are drawn for a person: standard error, at most ten redraws a second.
pub fn stderr_target() -> ProgressDrawTarget {
    ProgressDrawTarget::stderr_with_hz(10)
}

/// A bar `prefix [=====>    ] 3/8 (2s) message`, `total` long, drawn to `target`.
fn bar(total: u64, prefix: &'static str, target: ProgressDrawTarget) -> ProgressBar {
    let style =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ({elapsed}) {wide_msg}")
            .expect("the template is valid")
            .progress_chars("=> ");
    ProgressBar::with_draw_target(Some(total), target)
        .with_style(style)
        .with_prefix(prefix)
}

/// The live read: environments and accounts read, of the total.
pub struct ReadBar {
    bar: ProgressBar,
}

impl ReadBar {
    /// A bar over reading `total` environments and accounts.
    pub fn new(total: usize, target: ProgressDrawTarget) -> ReadBar {
        ReadBar {
            bar: bar(total as u64, "read", target),
        }
    }

    /// One environment or account (`environment prod`) has been read, or has failed.
    pub fn read(&self, subject: &str) {
        self.bar.set_message(subject.to_owned());
        self.bar.inc(1);
    }

    /// How many have been read.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// The read is over: the bar goes away (the command's output follows).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Apply progress on a terminal: the plain line per step outcome, printed above a bar of steps
/// done of the total.
pub struct BarProgress<W: Write + Send> {
    lines: PlainProgress<W>,
    bar: ProgressBar,
}

impl<W: Write + Send> BarProgress<W> {
    /// Lines to `out`, the bar to `target`.
    pub fn new(out: W, target: ProgressDrawTarget) -> Self {
        BarProgress {
            lines: PlainProgress::plain(out),
            bar: bar(0, "apply", target),
        }
    }

    /// Steps finished so far, of how many.
    pub fn counts(&self) -> (u64, Option<u64>) {
        (self.bar.position(), self.bar.length())
    }

    /// What the bar says after its counts.
    pub fn message(&self) -> String {
        self.bar.message()
    }

    pub fn into_inner(self) -> W {
        self.lines.into_inner()
    }

    fn say(&self, message: impl Into<Cow<'static, str>>) {
        self.bar.set_message(message);
    }
}

impl<W: Write + Send> Progress for BarProgress<W> {
    fn begin(&mut self, total: usize) {
        self.lines.begin(total);
        self.bar.set_length(total as u64);
        self.bar.reset_elapsed();
    }

    fn step_started(&mut self, step: &Step) {
        self.say(step.id.to_string());
    }

    fn step_finished(&mut self, step: &Step, outcome: &Outcome) {
        let lines = &mut self.lines;
        self.bar.suspend(|| lines.step_finished(step, outcome));
        self.bar.inc(1);
    }

    fn fanout(&mut self, c: &FanoutCounts) {
        let lines = &mut self.lines;
        self.bar.suspend(|| lines.fanout(c));
        self.say(format!(
            "exec fan-out {}/{} ({} ok, {} failed, {} skipped)",
            c.finished(),
            c.total,
            c.ok,
            c.failed,
            c.skipped
        ));
    }

    fn cleanup(&mut self, c: &Cleanup) {
        let lines = &mut self.lines;
        self.bar.suspend(|| lines.cleanup(c));
    }

    fn end(&mut self, report: &ApplyReport) {
        self.bar.finish_and_clear();
        self.lines.end(report);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::*;

    /// A terminal that keeps everything drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl Screen {
        fn text(&self) -> String {
            self.0.lock().unwrap().clone()
        }
        fn put(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.put(s)?;
            self.put("\n")
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.put(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.put("<clear>")
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A token-shaped secret, assembled so that no secret-shaped text sits in the source.
    fn secret() -> String {
        format!(
            "dt0c01.{}.{}",
            "ABCDEFGHIJKLMNOPQRSTUVWX",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".repeat(2)
        )
    }

    fn step(id: &str) -> Step {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "depends_on": [],
            "home": {"type": "environment", "name": "prod"},
            "kind": "api_token",
            "key": "ci",
            "reason": "missing",
            "action": {"type": "delete", "token": "dt0c01.ABCDEFGHIJKLMNOPQRSTUVWX", "name": "ci"}
        }))
        .expect("a step")
    }

    #[test]
    fn the_apply_bar_counts_steps_and_draws_ids_never_secrets() {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        let mut progress = BarProgress::new(Vec::new(), target);
        let steps = [
            step("prod/api_token/ci/delete#1"),
            step("prod/api_token/ingest/delete#1"),
            step("prod/api_token/old/delete#1"),
        ];
        progress.begin(steps.len());
        assert_eq!(progress.counts(), (0, Some(3)));
        for (i, s) in steps.iter().enumerate() {
            progress.step_started(s);
            assert_eq!(progress.message(), s.id.to_string());
            // Even an outcome whose detail held a secret would not reach the bar: it draws the
            // step ids and counts only (the plain lines are PlainProgress's, unchanged).
            progress.step_finished(
                s,
                &Outcome::Done {
                    detail: format!("deleted {}", secret()),
                },
            );
            assert_eq!(progress.counts(), (i as u64 + 1, Some(3)));
        }
        let drawn = screen.text();
        assert!(drawn.contains("apply ["), "{drawn}");
        assert!(drawn.contains("2/3"), "{drawn}");
        assert!(drawn.contains("prod/api_token/old/delete#1"), "{drawn}");
        let lines = String::from_utf8(progress.into_inner()).unwrap();
        assert_eq!(
            lines.lines().count(),
            3,
            "one plain line per finished step:\n{lines}"
        );
        assert!(lines.starts_with("done         prod/api_token/ci/delete#1: deleted "));
        assert!(!drawn.contains(&secret()), "{drawn}");
        assert!(!drawn.contains("deleted"), "{drawn}");
    }

    #[test]
    fn the_fanout_message_counts_hosts() {
        let screen = Screen::default();
        let mut progress = BarProgress::new(
            Vec::new(),
            ProgressDrawTarget::term_like(Box::new(screen.clone())),
        );
        progress.begin(1);
        let counts = FanoutCounts {
            total: 4,
            ok: 3,
            failed: 1,
            skipped: 0,
        };
        progress.fanout(&counts);
        assert_eq!(
            progress.message(),
            "exec fan-out 4/4 (3 ok, 1 failed, 0 skipped)"
        );
        let lines = String::from_utf8(progress.into_inner()).unwrap();
        assert!(
            lines.contains("4/4 finished (3 ok, 1 failed, 0 skipped)"),
            "{lines}"
        );
    }

    #[test]
    fn the_read_bar_counts_environments_and_accounts() {
        let screen = Screen::default();
        let read = ReadBar::new(3, ProgressDrawTarget::term_like(Box::new(screen.clone())));
        read.read("environment prod");
        read.read("account main");
        assert_eq!(read.position(), 2);
        assert!(screen.text().contains("read ["), "{}", screen.text());
        assert!(screen.text().contains("2/3"), "{}", screen.text());
        assert!(screen.text().contains("account main"), "{}", screen.text());
        read.finish();
    }
}

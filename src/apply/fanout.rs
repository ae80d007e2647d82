//! Exec fan-out: deliveries to exec targets (a OneAgent fleet, one `oneagentctl` over ssh per
//! host) run in their own pool, [`ApplyOptions::exec_concurrency`](super::ApplyOptions) at once,
//! beside the pool of Dynatrace API steps ([`ApplyOptions::concurrency`](super::ApplyOptions)),
//! so a fleet of thousands of hosts neither waits behind four API slots nor floods Dynatrace.
//! The deliverer bounds the commands themselves as well (read, deliver and verify commands).
//!
//! [`Ready`] is the scheduler's queue of startable steps, split by pool; [`FanoutCounts`] are the
//! done / failed / total counts of the exec deliveries, for progress lines and the summary.
//!
//! Not here: dependency order and outcomes (`execute`), running a command (`deliver::exec`).

use std::collections::VecDeque;

use serde::Serialize;

use super::report::Outcome;
use crate::model::Target;
use crate::plan::{Action, Step};

/// Whether `step` delivers to an exec target (runs in the exec pool).
pub fn is_exec_delivery(step: &Step) -> bool {
    matches!(
        &step.action,
        Action::Deliver {
            target: Target::Exec(_),
            ..
        }
    )
}

/// The exec deliveries of a run so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FanoutCounts {
    /// Exec deliveries in the plan.
    pub total: usize,
    /// Finished and reached their goal (delivered now, or the target already held the token).
    pub ok: usize,
    /// Finished with an error.
    pub failed: usize,
    /// Not run because a step they depend on failed.
    pub skipped: usize,
}

impl FanoutCounts {
    /// Counts for a plan: every exec delivery still to run.
    pub fn of(steps: &[Step]) -> Self {
        FanoutCounts {
            total: steps.iter().filter(|s| is_exec_delivery(s)).count(),
            ..FanoutCounts::default()
        }
    }

    /// Exec deliveries that ended, one way or another.
    pub fn finished(&self) -> usize {
        self.ok + self.failed + self.skipped
    }

    pub(super) fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Done { .. } | Outcome::AlreadyDone { .. } => self.ok += 1,
            Outcome::Failed { .. } => self.failed += 1,
            Outcome::Skipped { .. } => self.skipped += 1,
        }
    }
}

/// Steps ready to start, by pool, with the number running in each.
pub(super) struct Ready {
    api: VecDeque<usize>,
    exec: VecDeque<usize>,
    api_running: usize,
    exec_running: usize,
    api_limit: usize,
    exec_limit: usize,
}

impl Ready {
    pub(super) fn new(api_limit: usize, exec_limit: usize) -> Self {
        Ready {
            api: VecDeque::new(),
            exec: VecDeque::new(),
            api_running: 0,
            exec_running: 0,
            api_limit: api_limit.max(1),
            exec_limit: exec_limit.max(1),
        }
    }

    /// Step `i` may start once a slot of its pool is free.
    pub(super) fn push(&mut self, i: usize, exec: bool) {
        if exec {
            self.exec.push_back(i);
        } else {
            self.api.push_back(i);
        }
    }

    /// The next step to start now (API steps first), counted as running; `None` when every
    /// pool is full or empty.
    pub(super) fn start(&mut self) -> Option<usize> {
        if self.api_running < self.api_limit {
            if let Some(i) = self.api.pop_front() {
                self.api_running += 1;
                return Some(i);
            }
        }
        if self.exec_running < self.exec_limit {
            if let Some(i) = self.exec.pop_front() {
                self.exec_running += 1;
                return Some(i);
            }
        }
        None
    }

    /// A started step ended.
    pub(super) fn finished(&mut self, exec: bool) {
        if exec {
            self.exec_running = self.exec_running.saturating_sub(1);
        } else {
            self.api_running = self.api_running.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pool_is_bounded_and_api_steps_go_first() {
        let mut r = Ready::new(1, 2);
        for i in 0..5 {
            r.push(i, true);
        }
        r.push(10, false);
        r.push(11, false);
        assert_eq!(r.start(), Some(10));
        assert_eq!(r.start(), Some(0));
        assert_eq!(r.start(), Some(1));
        assert_eq!(r.start(), None, "both pools are full");
        r.finished(true);
        assert_eq!(r.start(), Some(2));
        assert_eq!(r.start(), None);
        r.finished(false);
        assert_eq!(r.start(), Some(11));
    }
}

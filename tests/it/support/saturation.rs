//! A gate for concurrency-cap tests that does not depend on timing.
//!
//! Requests are counted per group (a host, or all environments) and held until every group is
//! saturated: it has its cap in flight, or everything it still has to answer. A client that
//! keeps a cap of `cap` per group therefore has exactly `cap` in flight at once however slowly
//! this machine connects or schedules, so tests assert equality rather than "about".
//!
//! - A client that never saturates a group (a cap set too low, or one shared across groups) is
//!   let through after a deadline, and its counts then fail the test's assertions.
//! - A client that passes the cap is caught because saturated requests are held a moment longer
//!   (`SETTLE`) before they are answered, so the requests it sends beyond the cap arrive while
//!   the others are still in flight. That moment only widens the window for a broken client: a
//!   client that keeps the cap sends nothing more while it is at the cap, however long it lasts.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// How long saturated requests are held before they are answered.
const SETTLE: Duration = Duration::from_millis(20);

pub struct Saturation {
    cap: usize,
    expected_per_group: usize,
    deadline: Duration,
    counts: Mutex<Counts>,
    changed: Notify,
}

/// What the gate saw, per group and across all groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub in_flight: Vec<usize>,
    pub done: Vec<usize>,
    pub max: Vec<usize>,
    pub total_max: usize,
}

impl Saturation {
    /// `groups` groups of `expected_per_group` requests each, saturated at `cap` in flight.
    /// Requests that are not saturated after `deadline` go anyway (keep it well inside the
    /// client's request timeout, so a failing client is not also retried).
    pub fn new(groups: usize, cap: usize, expected_per_group: usize, deadline: Duration) -> Self {
        Saturation {
            cap,
            expected_per_group,
            deadline,
            counts: Mutex::new(Counts {
                in_flight: vec![0; groups],
                done: vec![0; groups],
                max: vec![0; groups],
                total_max: 0,
            }),
            changed: Notify::new(),
        }
    }

    /// What the gate has seen so far.
    pub fn counts(&self) -> Counts {
        self.counts.lock().unwrap().clone()
    }

    fn saturated(&self, c: &Counts) -> bool {
        (0..c.in_flight.len()).all(|g| {
            let left = self.expected_per_group.saturating_sub(c.done[g]);
            c.in_flight[g] >= self.cap.min(left)
        })
    }

    /// Counts one request of `group` in flight, holds it until every group is saturated (or
    /// the deadline passes) and then for [`SETTLE`], then counts it done.
    pub async fn pass(&self, group: usize) {
        {
            let mut c = self.counts.lock().unwrap();
            c.in_flight[group] += 1;
            c.max[group] = c.max[group].max(c.in_flight[group]);
            c.total_max = c.total_max.max(c.in_flight.iter().sum());
        }
        self.changed.notify_waiters();
        let deadline = Instant::now() + self.deadline;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.saturated(&self.counts.lock().unwrap()) {
                tokio::time::sleep(SETTLE).await;
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        {
            let mut c = self.counts.lock().unwrap();
            c.in_flight[group] -= 1;
            c.done[group] += 1;
        }
        self.changed.notify_waiters();
    }
}

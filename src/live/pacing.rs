//! Pacing shared by every request of a run: a gate per throttling domain and a cap per host.
//!
//! Dynatrace throttles per environment (a pool and a queue per environment, REFERENCE.md §3.3)
//! and the Account Management API per account API (200 requests a minute). A retry that only
//! waits for its own 429 lets every other request of the same environment walk into the same
//! closed window, so the knowledge a response carries is kept here, per domain, for all of them.
//! The choices:
//!
//! - **Domain = the client's base URL** (`https://abc.live.dynatrace.com`,
//!   `https://managed.example.com/e/<id>`, the account API base). Clients for the same base share
//!   one [`Gate`] through the [`Pacing`] of their transport, whichever command made them.
//! - **A 429 closes the gate** until the instant its hint names (`Retry-After` or
//!   `X-RateLimit-Reset`), or for the retry policy's backoff when there is no hint; every request
//!   to the domain waits, not only the one that got the 429. A 503 with a hint does the same
//!   (the server said when it will take requests again); a 503 without one is retried by itself.
//!   The hold is capped by the retry policy's `max_delay`, like every other wait.
//! - **`X-RateLimit-Remaining` / `X-RateLimit-Reset`**, when the server sends them (the Managed
//!   documentation lists them, a 2021 changelog says they were dropped: UNCERTAIN), become a
//!   budget: the lowest `Remaining` reported in the window, minus every request in flight (each
//!   will be counted, unless the server counted it before the lowest report: then the budget is
//!   low by one until that request's answer is in). Every request counted before the lowest report
//!   has been answered or is in flight, so the budget never promises more than the server has
//!   left. At zero, requests wait for the reset or for an answer. Once the reset has passed, a new
//!   window begins: its budget is the window's whole limit (`X-RateLimit-Limit`, when the server
//!   sent it) minus the requests in flight, until the first response of the new window reports
//!   its own `Remaining`, so a new window does not open with a burst of every waiting request;
//!   without a limit the budget is forgotten until the next report (a report from a newer window
//!   before that only makes the client wait longer). The reset is measured against the response's
//!   `Date`, which has whole seconds: the wait may be up to a second longer than needed, never
//!   shorter.
//! - **Until a response reports the limit**, at most [`IN_FLIGHT_WITHOUT_REPORT`] requests of a
//!   domain are in flight: a first burst cannot overrun a window it knows nothing about.
//! - **Without those headers** the limit cannot be seen coming: the first 429 of a window also
//!   meets the requests already in flight. After it the domain sends **one request at a time**
//!   (for the rest of the run, unless a response starts carrying the headers), so each later
//!   window ends with exactly one 429, the one that tells when it reopens. Once throttled, the rate
//!   limit and not the round trip bounds throughput, so little is lost.
//! - **A cap per host** (scheme, host and port): at most
//!   [`ClientSettings::max_in_flight_per_host`](super::http::ClientSettings) requests in flight to
//!   one host, whatever the number of environments behind it (Managed serves many under `/e/<id>`);
//!   SaaS environments are separate hosts and each gets its own cap. A request waits for its gate
//!   *before* it takes a host slot, so a throttled environment never holds slots that another
//!   environment on the same host could use.
//!
//! Waits are measured on the monotonic clock; hints arrive as durations (`http` turns dates into
//! durations against the response's `Date`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Requests in flight to one domain while no response has reported its rate limit: what a
/// first burst may send into a window whose limit is not known yet (Dynatrace's smallest
/// documented limits are tens of requests a minute).
pub const IN_FLIGHT_WITHOUT_REPORT: u32 = 8;

/// The gates and host caps of one transport. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Pacing {
    per_host: usize,
    gates: Mutex<HashMap<String, Arc<Gate>>>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Pacing {
    /// Pacing with at most `per_host` requests in flight to one host (at least one).
    pub fn new(per_host: usize) -> Pacing {
        Pacing {
            per_host: per_host.max(1),
            gates: Mutex::default(),
            hosts: Mutex::default(),
        }
    }

    /// The gate of a throttling domain (made on first use).
    pub fn gate(&self, domain: &str) -> Arc<Gate> {
        lock(&self.gates)
            .entry(domain.to_owned())
            .or_insert_with(|| Arc::new(Gate::default()))
            .clone()
    }

    /// The in-flight cap of a host (made on first use).
    pub fn host(&self, host: &str) -> Arc<Semaphore> {
        lock(&self.hosts)
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }
}

/// What one domain's responses have told about its limit.
#[derive(Debug, Default)]
struct GateState {
    /// No request is sent before this instant (a 429's hint).
    closed_until: Option<Instant>,
    /// From `X-RateLimit-Remaining` / `X-RateLimit-Reset`.
    budget: Option<Budget>,
    /// A response carried the rate-limit headers.
    headers_seen: bool,
    /// A 429 came without them: one request at a time from now on.
    one_at_a_time: bool,
    in_flight: u32,
}

#[derive(Debug)]
struct Budget {
    /// The lowest `X-RateLimit-Remaining` of the window (at a window's start, its limit).
    lowest: i64,
    /// When the window ends; `None` for a window no response has reported on yet.
    reset: Option<Instant>,
    /// `X-RateLimit-Limit`: the budget of the next window.
    limit: Option<i64>,
}

enum Blocked {
    Until(Instant),
    /// Until a request in flight finishes.
    Release,
}

impl GateState {
    fn blocked(&mut self, now: Instant) -> Option<Blocked> {
        match self.closed_until {
            Some(t) if t > now => return Some(Blocked::Until(t)),
            Some(_) => self.closed_until = None,
            None => {}
        }
        if let Some(b) = self.budget.as_mut() {
            if b.reset.is_some_and(|reset| reset <= now) {
                match b.limit {
                    Some(limit) => {
                        b.lowest = limit;
                        b.reset = None;
                    }
                    None => self.budget = None,
                }
            }
        }
        if let Some(b) = &self.budget {
            if b.lowest - i64::from(self.in_flight) <= 0 {
                match b.reset {
                    Some(reset) => return Some(Blocked::Until(reset)),
                    // A new window that no answer has reported on: wait for one (with nothing
                    // in flight there is none to wait for, and the request goes).
                    None if self.in_flight > 0 => return Some(Blocked::Release),
                    None => {}
                }
            }
        }
        if self.one_at_a_time && self.in_flight > 0 {
            return Some(Blocked::Release);
        }
        if !self.headers_seen && self.in_flight >= IN_FLIGHT_WITHOUT_REPORT {
            return Some(Blocked::Release);
        }
        None
    }
}

/// The rate-limit headers of one response, as durations from its arrival.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub remaining: i64,
    pub reset_in: Duration,
    /// `X-RateLimit-Limit`, when sent: requests per window.
    pub limit: Option<i64>,
}

/// What became of a request that had a slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub rate_limit: Option<RateLimit>,
    /// Hold every request of the domain this long (a 429, or a 503 with a hint).
    pub hold: Option<Duration>,
}

/// The pacing gate of one throttling domain.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<GateState>,
    changed: Notify,
}

impl Gate {
    /// Wait until the gate lets a request through (without taking a slot).
    async fn wait_open(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let blocked = lock(&self.state).blocked(Instant::now());
            match blocked {
                None => return,
                // An answer may open the gate before `t` (a budget frees up as requests end).
                Some(Blocked::Until(t)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t) => {}
                        _ = notified => {}
                    }
                }
                Some(Blocked::Release) => notified.await,
            }
        }
    }

    /// Take a slot if the gate is open now.
    fn try_take(&self) -> bool {
        let mut st = lock(&self.state);
        if st.blocked(Instant::now()).is_some() {
            return false;
        }
        st.in_flight += 1;
        true
    }

    fn finish(&self, answer: Option<Answer>) {
        let now = Instant::now();
        {
            let mut st = lock(&self.state);
            st.in_flight = st.in_flight.saturating_sub(1);
            // An attempt that ended without a report (no answer, or one without the headers)
            // may have been counted: it stays counted in the budget.
            if answer.and_then(|a| a.rate_limit).is_none() {
                if let Some(b) = st.budget.as_mut() {
                    b.lowest -= 1;
                }
            }
            if let Some(answer) = answer {
                if let Some(rl) = answer.rate_limit {
                    st.headers_seen = true;
                    st.one_at_a_time = false;
                    match st.budget.as_mut() {
                        Some(b) if b.reset.is_some_and(|reset| reset > now) => {
                            b.lowest = b.lowest.min(rl.remaining);
                            b.limit = rl.limit.or(b.limit);
                        }
                        _ => {
                            st.budget = Some(Budget {
                                lowest: rl.remaining,
                                reset: Some(now + rl.reset_in),
                                limit: rl.limit,
                            })
                        }
                    }
                }
                if let Some(hold) = answer.hold {
                    let until = now + hold;
                    st.closed_until = Some(st.closed_until.map_or(until, |t| t.max(until)));
                }
                if answer.status == 429 && !st.headers_seen {
                    st.one_at_a_time = true;
                }
            }
        }
        self.changed.notify_waiters();
    }
}

/// A request's right to be sent: its gate's slot and its host's. Give the answer back with
/// [`Slot::answered`]; dropped without one (a connection error, a cancelled request) it frees
/// the slots and stays counted in the domain's budget, as the server may have counted it.
pub struct Slot {
    gate: Arc<Gate>,
    done: bool,
    _host: OwnedSemaphorePermit,
}

impl Slot {
    /// Wait for the gate of the domain, then for a slot on the host, and take both. The gate is
    /// checked again once the host slot is held; if it closed meanwhile the host slot is given
    /// back and the wait starts over.
    pub async fn enter(gate: Arc<Gate>, host: Arc<Semaphore>) -> Slot {
        loop {
            gate.wait_open().await;
            let permit = host
                .clone()
                .acquire_owned()
                .await
                .expect("host semaphores are never closed");
            if gate.try_take() {
                return Slot {
                    gate,
                    done: false,
                    _host: permit,
                };
            }
        }
    }

    /// Report what the server answered.
    pub fn answered(mut self, answer: Answer) {
        self.done = true;
        self.gate.finish(Some(answer));
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.done {
            self.gate.finish(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, rate_limit: Option<RateLimit>, hold: Option<Duration>) -> Answer {
        Answer {
            status,
            rate_limit,
            hold,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_stops_every_request_of_the_domain() {
        let pacing = Pacing::new(8);
        let gate = pacing.gate("https://a");
        let host = pacing.host("https://a:443");
        let slot = Slot::enter(gate.clone(), host.clone()).await;
        slot.answered(answer(429, None, Some(Duration::from_secs(30))));
        let started = Instant::now();
        let _next = Slot::enter(gate.clone(), host.clone()).await;
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        // Another domain is not held.
        let other = Instant::now();
        let _ = Slot::enter(pacing.gate("https://b"), host).await;
        assert_eq!(other.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_budget_waits_for_the_reset_counting_requests_in_flight() {
        let pacing = Pacing::new(8);
        let gate = pacing.gate("d");
        let host = pacing.host("h");
        let first = Slot::enter(gate.clone(), host.clone()).await;
        let second = Slot::enter(gate.clone(), host.clone()).await;
        // The first reports 1 left; the second, sent after it, will use it.
        first.answered(answer(
            200,
            Some(RateLimit {
                remaining: 1,
                reset_in: Duration::from_secs(10),
                limit: None,
            }),
            None,
        ));
        assert!(!gate.try_take(), "the budget is spent");
        drop(second);
        let started = Instant::now();
        let _third = Slot::enter(gate.clone(), host).await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn before_any_report_a_domain_sends_a_bounded_first_burst() {
        let pacing = Pacing::new(64);
        let gate = pacing.gate("d");
        for _ in 0..IN_FLIGHT_WITHOUT_REPORT {
            assert!(gate.try_take());
        }
        assert!(!gate.try_take(), "the first burst is bounded");
        // An answer that reports the limit hands over to the budget: 20 left, 7 in flight.
        gate.finish(Some(answer(
            200,
            Some(RateLimit {
                remaining: 20,
                reset_in: Duration::from_secs(60),
                limit: Some(25),
            }),
            None,
        )));
        for _ in 0..13 {
            assert!(gate.try_take());
        }
        assert!(!gate.try_take());
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_window_opens_with_its_limit_not_with_a_burst() {
        let pacing = Pacing::new(64);
        let gate = pacing.gate("d");
        let host = pacing.host("h");
        let first = Slot::enter(gate.clone(), host.clone()).await;
        first.answered(answer(
            200,
            Some(RateLimit {
                remaining: 0,
                reset_in: Duration::from_secs(10),
                limit: Some(3),
            }),
            None,
        ));
        assert!(!gate.try_take(), "the window is spent");
        tokio::time::sleep(Duration::from_secs(10)).await;
        // The new window: three requests before any answer reports on it, not 64.
        let slots: Vec<Slot> = (0..3)
            .map(|_| {
                assert!(gate.try_take());
                Slot {
                    gate: gate.clone(),
                    done: false,
                    _host: host.clone().try_acquire_owned().unwrap(),
                }
            })
            .collect();
        assert!(!gate.try_take(), "a fourth waits for an answer");
        // The first answer of the window reports its own remaining: 5 left (say the server's
        // window is bigger than its limit said); minus the two still in flight, three more go.
        let mut slots = slots.into_iter();
        slots.next().unwrap().answered(answer(
            200,
            Some(RateLimit {
                remaining: 5,
                reset_in: Duration::from_secs(10),
                limit: Some(3),
            }),
            None,
        ));
        for _ in 0..3 {
            assert!(gate.try_take());
        }
        assert!(!gate.try_take());
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_without_headers_makes_the_domain_send_one_at_a_time() {
        let pacing = Pacing::new(8);
        let gate = pacing.gate("d");
        let host = pacing.host("h");
        let a = Slot::enter(gate.clone(), host.clone()).await;
        let _b = Slot::enter(gate.clone(), host.clone()).await;
        a.answered(answer(429, None, Some(Duration::from_secs(1))));
        tokio::time::sleep(Duration::from_secs(2)).await;
        // `_b` is still in flight: nothing else goes.
        assert!(!gate.try_take());
        drop(_b);
        assert!(gate.try_take());
        assert!(!gate.try_take());
    }

    #[tokio::test]
    async fn the_host_cap_bounds_requests_in_flight_across_domains() {
        let pacing = Pacing::new(2);
        let host = pacing.host("h");
        let a = Slot::enter(pacing.gate("e1"), host.clone()).await;
        let _b = Slot::enter(pacing.gate("e2"), host.clone()).await;
        assert_eq!(host.available_permits(), 0);
        drop(a);
        let _c = Slot::enter(pacing.gate("e3"), host.clone()).await;
        assert_eq!(host.available_permits(), 0);
    }
}

//! Fault injection: what can go wrong on purpose, and the dice that decide when.
//!
//! Owns: the [`Faults`] settings (from the seed or `PUT /__sandbox/faults`), the seeded random
//! generator that makes a run reproducible, and the per-minute request limit. Faults apply to the
//! emulated Dynatrace APIs only, never to the admin endpoints. The decision is made before a
//! request is handled; carrying it out (sleeping, answering 429/5xx, dropping the connection after
//! the write) is the server's job.
//!
//! Throttling (`requests_per_minute`) follows what REFERENCE.md §3.3 describes for Managed: one
//! window per sandbox (a sandbox usually emulates one environment; Dynatrace throttles per
//! environment), opened by the first request after the previous one ended; every API request is
//! counted, answered 429s included. While a limit is configured every API response carries
//! `X-RateLimit-Limit` (the limit), `X-RateLimit-Remaining` (requests left in the window) and
//! `X-RateLimit-Reset` (when the window ends, Unix microseconds of the sandbox clock), as the
//! Managed access-limit page lists them; a 2021 changelog says SaaS no longer sends them, so
//! `omit_rate_limit_headers: true` leaves them out and the client must pace on the 429's
//! `Retry-After` alone (the seconds left in the window, rounded up). `rate_limit_window_ms` is a
//! sandbox-only setting with no Dynatrace counterpart: a shorter window than the minute, so tests
//! and benchmarks of pacing run in seconds.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Fault settings. Every rate is a probability in `0.0..=1.0`, drawn per request from one RNG
/// seeded with `seed`, in a fixed order (latency, 429, 5xx, drop), so a run replays exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    #[serde(default)]
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// Answer 429 Too Many Requests (before anything is changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub too_many_requests: Option<TooManyRequests>,
    /// Answer a 5xx (before anything is changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_error: Option<ServerError>,
    /// Carry out a write (POST/PUT/DELETE), then close the connection without answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_after_commit: Option<Rate>,
    /// Carry out a write, then answer this 5xx without a `Retry-After`, as a proxy does whose
    /// upstream reset after taking the request (Envoy answers 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_after_commit: Option<ServerError>,
    /// Dynatrace-style throttling: more than this many API requests within one (real) minute
    /// are answered 429 until the minute is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Sandbox only: the throttling window in (real) milliseconds instead of 60,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_window_ms: Option<u64>,
    /// Leave the `X-RateLimit-*` headers out of throttled answers (as SaaS is said to).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub omit_rate_limit_headers: bool,
    /// Answer the next `times` requests whose path ends with `path_suffix` with `status`
    /// (before anything is changed), e.g. one 500 from `tenantTokenRotation/finish`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_path: Option<FailPath>,
}

/// A scripted failure of one endpoint, counted down per matching request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailPath {
    pub path_suffix: String,
    #[serde(default = "default_5xx")]
    pub status: u16,
    #[serde(default = "one_time")]
    pub times: u32,
    /// Instead of answering `status`: carry out the request, then drop the connection.
    #[serde(default)]
    pub drop_after_commit: bool,
}

fn one_time() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    pub ms: u64,
    #[serde(default = "one")]
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TooManyRequests {
    pub rate: f64,
    /// Seconds for a `Retry-After` header; without it the 429 carries no `Retry-After` (Dynatrace
    /// does not document one, REFERENCE.md §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerError {
    pub rate: f64,
    #[serde(default = "default_5xx")]
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub rate: f64,
}

fn one() -> f64 {
    1.0
}

fn default_5xx() -> u16 {
    503
}

/// What to do to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub delay: Option<Duration>,
    /// Answer with this status at once (429 or 5xx), with an optional `Retry-After`.
    pub reject: Option<(u16, Option<u64>, &'static str)>,
    /// Handle the request, then drop the connection (writes only).
    pub drop_after_commit: bool,
    /// Handle the request, then answer this status instead of its reply (writes only).
    pub error_after_commit: Option<u16>,
    /// The throttling window this request was counted in, when a limit is configured.
    pub window: Option<Window>,
    /// The rejection is the request limit's (not an injected 429).
    pub throttled: bool,
}

/// Where a request stands in the throttling window.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// 1 for the first window since the settings changed.
    pub number: u64,
    pub limit: u32,
    pub remaining: u32,
    /// Real time left until the window ends.
    pub ends_in: Duration,
    /// Whether to send the `X-RateLimit-*` headers.
    pub headers: bool,
}

impl Window {
    /// The `X-RateLimit-*` headers, the reset expressed on the sandbox clock `now`.
    pub fn headers(&self, now: super::clock::Millis) -> Vec<(&'static str, String)> {
        if !self.headers {
            return Vec::new();
        }
        let reset_us = now.0 * 1000 + self.ends_in.as_micros() as i64;
        vec![
            ("x-ratelimit-limit", self.limit.to_string()),
            ("x-ratelimit-remaining", self.remaining.to_string()),
            ("x-ratelimit-reset", reset_us.to_string()),
        ]
    }
}

/// The real length of a throttling window.
fn window_length(faults: &Faults) -> Duration {
    Duration::from_millis(faults.rate_limit_window_ms.unwrap_or(60_000).max(1))
}

/// The runtime side of the faults: the RNG and the throttling window. Not persisted; reset
/// whenever the settings change.
#[derive(Debug)]
pub struct FaultDice {
    rng: SmallRng,
    window_start: Instant,
    window_count: u32,
    window_number: u64,
}

impl FaultDice {
    pub fn new(seed: u64) -> FaultDice {
        FaultDice {
            rng: SmallRng::seed_from_u64(seed),
            window_start: Instant::now(),
            window_count: 0,
            window_number: 0,
        }
    }

    /// Roll for one API request. `write` says whether the request changes state.
    pub fn decide(&mut self, faults: &Faults, write: bool) -> Decision {
        let mut d = Decision::default();
        if let Some(limit) = faults.requests_per_minute {
            let length = window_length(faults);
            if self.window_number == 0 || self.window_start.elapsed() >= length {
                self.window_start = Instant::now();
                self.window_count = 0;
                self.window_number += 1;
            }
            self.window_count += 1;
            let ends_in = length.saturating_sub(self.window_start.elapsed());
            d.window = Some(Window {
                number: self.window_number,
                limit,
                remaining: limit.saturating_sub(self.window_count),
                ends_in,
                headers: !faults.omit_rate_limit_headers,
            });
            if self.window_count > limit {
                // Seconds left, rounded up: a client that waits them finds the window reopened.
                let left = ends_in.as_millis().div_ceil(1000).max(1) as u64;
                // Dynatrace's throttling message is not documented (REFERENCE.md §3.3); the
                // sandbox tells the client when the window reopens.
                d.reject = Some((
                    429,
                    Some(left),
                    "Too Many Requests: the request limit per minute was reached.",
                ));
                d.throttled = true;
                return d;
            }
        }
        if let Some(l) = &faults.latency {
            if self.rng.random_bool(l.rate.clamp(0.0, 1.0)) {
                d.delay = Some(Duration::from_millis(l.ms));
            }
        }
        if let Some(t) = &faults.too_many_requests {
            if self.rng.random_bool(t.rate.clamp(0.0, 1.0)) {
                d.reject = Some((429, t.retry_after, "Too Many Requests"));
                return d;
            }
        }
        if let Some(s) = &faults.server_error {
            if self.rng.random_bool(s.rate.clamp(0.0, 1.0)) {
                d.reject = Some((
                    s.status,
                    None,
                    "Internal Server Error (injected by the sandbox)",
                ));
                return d;
            }
        }
        if let Some(r) = &faults.drop_after_commit {
            if self.rng.random_bool(r.rate.clamp(0.0, 1.0)) && write {
                d.drop_after_commit = true;
            }
        }
        if let Some(e) = &faults.error_after_commit {
            if self.rng.random_bool(e.rate.clamp(0.0, 1.0)) && write && !d.drop_after_commit {
                d.error_after_commit = Some(e.status);
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_replays_the_same_decisions() {
        let faults = Faults {
            seed: 7,
            server_error: Some(ServerError {
                rate: 0.5,
                status: 500,
            }),
            ..Faults::default()
        };
        let roll = || {
            let mut dice = FaultDice::new(faults.seed);
            (0..64)
                .map(|_| dice.decide(&faults, true).reject.is_some())
                .collect::<Vec<_>>()
        };
        let a = roll();
        assert_eq!(a, roll());
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
    }

    #[test]
    fn the_request_limit_throttles() {
        let faults = Faults {
            requests_per_minute: Some(3),
            ..Faults::default()
        };
        let mut dice = FaultDice::new(0);
        let statuses: Vec<_> = (0..5)
            .map(|_| dice.decide(&faults, false).reject.map(|r| r.0))
            .collect();
        assert_eq!(statuses, vec![None, None, None, Some(429), Some(429)]);
    }

    #[test]
    fn the_window_is_reported_and_reopens_after_its_length() {
        let faults = Faults {
            requests_per_minute: Some(2),
            rate_limit_window_ms: Some(30),
            ..Faults::default()
        };
        let mut dice = FaultDice::new(0);
        let first = dice.decide(&faults, false).window.unwrap();
        assert_eq!((first.number, first.limit, first.remaining), (1, 2, 1));
        assert!(first.ends_in <= Duration::from_millis(30));
        let now = crate::sandbox::Millis(1_000);
        let headers = first.headers(now);
        assert_eq!(headers[0], ("x-ratelimit-limit", "2".to_owned()));
        let reset: i64 = headers[2].1.parse().unwrap();
        assert!(reset > 1_000_000 && reset <= 1_030_000, "{reset}");
        dice.decide(&faults, false);
        let third = dice.decide(&faults, false);
        assert_eq!(third.reject.map(|r| (r.0, r.1)), Some((429, Some(1))));
        std::thread::sleep(Duration::from_millis(40));
        let next = dice.decide(&faults, false);
        assert_eq!(next.reject, None);
        assert_eq!(next.window.unwrap().number, 2);
        let quiet = Faults {
            omit_rate_limit_headers: true,
            ..faults
        };
        assert!(dice
            .decide(&quiet, false)
            .window
            .unwrap()
            .headers(now)
            .is_empty());
    }
}

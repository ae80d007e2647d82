//! The sandbox: a Dynatrace emulator for the token APIs, served over real HTTP on loopback.
//!
//! It speaks the access-token, ActiveGate-token, tenant-token-rotation, `connectioninfo` and
//! metrics-ingest APIs of an environment, and the platform-token part of the Account Management
//! API with its OAuth token endpoint, as `shared/dynatrace-api/REFERENCE.md` describes them; a
//! test replays every endpoint and validates the bodies against the official OpenAPI spec. Around
//! that it adds what testing needs: a seed file, a controllable clock, fault injection, a request
//! log and a state dump, all under the non-Dynatrace admin prefix `/__sandbox/` (see [`admin`]).
//!
//! Layout: [`state`] the world, [`clock`] time and dates, [`mint`] token strings, [`request`] (one
//! request as the handlers see it), [`auth`], [`errors`], one module per API ([`api_tokens`],
//! [`activegate_tokens`], [`tenant`], [`platform`], [`metrics`] with its parser
//! [`line_protocol`]), [`token_create`] (what the two environment token APIs' creates share),
//! [`paging`], [`faults`], [`log`], [`admin`], [`seed`], [`persist`], [`server`] (routing and
//! connections) and [`embedded`] (the in-process sandbox behind `sandbox://NAME`). Arrows point
//! one way: the server imports the handlers, the handlers import `request` and the helpers, never
//! the server.
//! It does not know tokensmith's spec, planner or client; they talk to it over HTTP.

pub mod activegate_tokens;
pub mod admin;
pub mod api_tokens;
pub mod auth;
pub mod classic;
pub mod clock;
pub mod embedded;
pub mod errors;
pub mod faults;
pub mod line_protocol;
pub mod log;
pub mod metrics;
pub mod mint;
pub mod paging;
pub mod persist;
pub mod platform;
pub mod request;
pub mod seed;
pub mod server;
pub mod state;
pub mod tenant;
pub mod token_create;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use time::OffsetDateTime;

pub use clock::Millis;
pub use faults::{FailPath, Faults, Rate, ServerError};
pub use log::LogEntry;
pub use seed::{Seed, MAX_SEED_BYTES};
pub use server::{serve, serve_until, spawn};
pub use state::{DataPoint, DemoCredentials, Payload, State};

use errors::{ApiError, Reply};
use faults::{Decision, FaultDice};

/// A handle on one sandbox's shared state; cheap to clone, one per server.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    dice: Mutex<FaultDice>,
    log: Mutex<(u64, VecDeque<LogEntry>)>,
    /// When set, every change is written here (atomically) before it is answered.
    state_file: Option<PathBuf>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in a handler must not take the whole emulator down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sandbox {
    /// A sandbox over `state`, kept in memory only.
    pub fn new(state: State) -> Sandbox {
        Sandbox::build(state, None)
    }

    /// A sandbox over `state` that saves every change to `state_file` before answering.
    pub fn persisted(state: State, state_file: PathBuf) -> Sandbox {
        Sandbox::build(state, Some(state_file))
    }

    /// A sandbox with the world `seed` declares, in memory.
    pub fn from_seed(seed: &Seed) -> anyhow::Result<Sandbox> {
        Ok(Sandbox::new(seed.build()?))
    }

    fn build(state: State, state_file: Option<PathBuf>) -> Sandbox {
        let dice = FaultDice::new(state.faults.seed);
        Sandbox {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                dice: Mutex::new(dice),
                log: Mutex::new((0, VecDeque::new())),
                state_file,
            }),
        }
    }

    /// Sandbox time now.
    pub fn now(&self) -> OffsetDateTime {
        self.now_millis().to_datetime()
    }

    pub(crate) fn now_millis(&self) -> Millis {
        lock(&self.inner.state).now()
    }

    /// A copy of the whole state (secrets of tokens are fingerprints; tenant tokens are clear).
    pub fn snapshot(&self) -> State {
        lock(&self.inner.state).clone()
    }

    /// Change the state directly (tests, admin endpoints), then persist it.
    pub fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> anyhow::Result<R> {
        let mut state = lock(&self.inner.state);
        let r = f(&mut state);
        self.save(&state)?;
        Ok(r)
    }

    /// Replace the whole state (admin reset); fault dice restart from the new seed.
    pub fn replace(&self, new: State) -> anyhow::Result<()> {
        *lock(&self.inner.dice) = FaultDice::new(new.faults.seed);
        self.update(|s| *s = new)
    }

    /// Move the clock forward (or back, with a negative duration).
    pub fn advance_clock(&self, by: time::Duration) -> anyhow::Result<OffsetDateTime> {
        self.update(|s| {
            s.clock.advance(by);
            s.now().to_datetime()
        })
    }

    /// Set the fault settings; the dice restart from `faults.seed`.
    pub fn set_faults(&self, faults: Faults) -> anyhow::Result<()> {
        *lock(&self.inner.dice) = FaultDice::new(faults.seed);
        self.update(|s| s.faults = faults)
    }

    /// The request log, oldest first.
    pub fn request_log(&self) -> Vec<LogEntry> {
        lock(&self.inner.log).1.iter().cloned().collect()
    }

    pub fn clear_request_log(&self) {
        lock(&self.inner.log).1.clear();
    }

    /// The data points ingested into environment `env` (the default one when `None`), oldest
    /// first, with the environment's id; `None` when there is no such environment.
    pub fn data_points(&self, env: Option<&str>) -> Option<(String, Vec<DataPoint>)> {
        let state = lock(&self.inner.state);
        let id = env
            .map(str::to_owned)
            .or_else(|| state.default_environment.clone())?;
        let points = state.env(&id)?.data_points.iter().cloned().collect();
        Some((id, points))
    }

    /// The credentials of an embedded sandbox's demo environment and account, if any.
    pub fn demo_credentials(&self) -> Option<DemoCredentials> {
        lock(&self.inner.state).demo.clone()
    }

    fn save(&self, state: &State) -> anyhow::Result<()> {
        match &self.inner.state_file {
            Some(path) => persist::save(path, state),
            None => Ok(()),
        }
    }

    pub(crate) fn roll_faults(&self, write: bool, path: &str) -> Decision {
        let faults = {
            let mut state = lock(&self.inner.state);
            if let Some(f) = state.faults.fail_path.as_mut() {
                if f.times > 0 && path.ends_with(&f.path_suffix) {
                    f.times -= 1;
                    let status = f.status;
                    if f.drop_after_commit {
                        return Decision {
                            drop_after_commit: true,
                            ..Decision::default()
                        };
                    }
                    return Decision {
                        reject: Some((
                            status,
                            None,
                            "Internal Server Error (injected by the sandbox)",
                        )),
                        ..Decision::default()
                    };
                }
            }
            state.faults.clone()
        };
        lock(&self.inner.dice).decide(&faults, write)
    }

    pub(crate) fn log_request(
        &self,
        method: &str,
        path: &str,
        status: u16,
        env: Option<&str>,
        fault: Option<String>,
    ) {
        let mut log = lock(&self.inner.log);
        log.0 += 1;
        let seq = log.0;
        if log.1.len() >= log::LOG_CAPACITY {
            log.1.pop_front();
        }
        log.1.push_back(LogEntry {
            seq,
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            environment: env.map(str::to_owned),
            fault,
        });
    }

    /// Run one request's handler under the state lock; persist before answering when it changed
    /// something. Returns the reply and the sandbox time for the `Date` header.
    pub(crate) fn with_state_for_request(
        &self,
        f: impl FnOnce(&mut State) -> (Reply, bool),
    ) -> (Reply, Millis) {
        let mut state = lock(&self.inner.state);
        let (reply, dirty) = f(&mut state);
        let now = state.now();
        if dirty {
            if let Err(e) = self.save(&state) {
                // The change is in memory but not on disk: answer 500 so the client does not
                // believe it was saved.
                return (
                    ApiError::new(500, format!("the sandbox could not save its state: {e:#}"))
                        .into(),
                    now,
                );
            }
        }
        (reply, now)
    }
}

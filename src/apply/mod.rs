//! The applier: executes a [`Plan`](crate::plan::Plan)'s steps against live Dynatrace and the
//! targets, and nothing else writes.
//!
//! - [`execute`]: runs the steps in dependency order, independent steps concurrently (bounded),
//!   each step re-checking its precondition against live state before acting, so that running
//!   a plan again, or a fresh plan after a failed or killed run, is safe (`steps`). A failed
//!   step fails its dependents; independent steps go on. After the steps, tokens created in this
//!   run that reached no target are deleted again and a tenant rotation no target took part in
//!   is cancelled (`cleanup`).
//! - `steps`: one file per kind of step (create, deliver, retire, update/adopt, tenant), a
//!   typed `StepError` (Dynatrace's part matched by its `live::ApiFailure` kind, never by
//!   message text), and `TokenApi`, the one place that decides which Dynatrace API holds the
//!   tokens of a (home, kind).
//! - [`ApplyEnv`]: the clients, the deliverer, the spec's targets and the clock the steps use,
//!   behind traits so tests pass in-memory fakes.
//! - [`Journal`]: JSON lines of intent and outcome per step, never a secret.
//! - [`Progress`]: one line per step outcome for CI, or with a counter on a terminal, and the
//!   done / failed / total counts of the exec fan-out.
//! - `fanout`: deliveries to exec targets (fleets) run in their own bounded pool.
//! - [`check_fresh`]: refuses a saved plan whose inputs changed.
//!
//! Not here: deciding what to do (the planner), how a target is written (`deliver`), how
//! Dynatrace is called (`live`), argument handling (`commands::apply`), the apply locks
//! (`lock`; taken by the command).

mod cleanup;
mod env;
mod execute;
mod fanout;
mod fresh;
mod journal;
mod progress;
mod report;
mod steps;

pub use env::{
    plan_homes, ApplyEnv, ApplyOptions, Clock, TargetIndex, DEFAULT_CONCURRENCY,
    DEFAULT_EXEC_CONCURRENCY,
};
pub use execute::{execute, ApplyError};
pub use fanout::{is_exec_delivery, FanoutCounts};
pub use fresh::{check_as_planned, check_fresh, NotAsPlanned, Stale, StaleInput};
pub use journal::{Journal, JournalEntry, DEFAULT_JOURNAL};
pub use progress::{NoProgress, PlainProgress, Progress};
pub use report::{ApplyReport, Cleanup, CleanupAction, Outcome, StepReport};

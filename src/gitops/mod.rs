//! GitOps in practice: what tokensmith needs to run from pull requests, merges and schedules.
//!
//! - [`repo`]: the git repository around the spec: its commit and dirtiness, the spec as
//!   committed at a ref (`--spec-ref`, `--base`), the stale-commit check of a saved plan.
//! - [`at_ref`]: the spec at a ref, loaded (the one join of git and the spec loader).
//! - [`desired_diff`]: what a change does to the desired state (`plan --base REF`).
//! - [`remote_lock`]: apply locks kept in a git remote, for runners that share nothing;
//!   [`locks`]: one door to the local and the remote lock.
//! - [`metrics`]: OpenMetrics text and Dynatrace metric lines from a plan and a drift report,
//!   and the sender to Dynatrace's metrics ingest API.
//! - [`annotations`]: validation findings as GitHub Actions workflow commands.
//!
//! Not here: the command-line flags and commands that use these (they are thin adapters in
//! `commands/`), and the local file lock (`apply::lock`).

pub mod annotations;
pub mod at_ref;
pub mod desired_diff;
pub mod locks;
pub mod metrics;
pub mod remote_lock;
pub mod repo;

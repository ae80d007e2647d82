//! # tokensmith
//!
//! GitOps for Dynatrace access tokens. A desired-state YAML file says which tokens exist, with
//! which scopes, how long they live, when they rotate and where their values are delivered.
//!
//! ## Architecture tour
//!
//! ```text
//! tokensmith.yaml ──spec (load, template, validate)──▶ model::Desired ─┐
//!                                                                      ├─▶ plan (pure) ─▶ Plan ─▶ render
//! Dynatrace ──live (client)──▶ model::LiveSnapshot ────────────────────┤                    │
//! targets ──deliver (read holder)──▶ model::TargetSnapshot ────────────┘                    ▼
//!                                                                   apply ─▶ live (write), deliver
//! ```
//!
//! - [`model`]: the shared vocabulary (token ids, keys, markers, scopes, secrets, targets).
//! - [`spec`]: the desired-state language: serde/schemars types, loading with locations,
//!   templates, validation.
//! - [`live`]: the Dynatrace client behind read and write traits.
//! - [`plan`]: the pure planner. [`render`]: human, JSON and markdown output, the
//!   desired-state diff, CI annotations, OpenMetrics and Dynatrace metric lines.
//! - [`apply`]: the executor. [`deliver`]: one file per target kind.
//! - [`lock`]: apply locks behind one type (local files, refs in a git remote).
//! - [`git`]: the spec's git repository, the spec at a ref, the desired-state diff.
//! - [`sandbox`]: the Dynatrace emulator, served over HTTP or embedded for `sandbox://` URLs.
//! - [`cli`] and [`commands`]: argument parsing, the typed settings it resolves to once, the
//!   one module that reads environment variables (`cli::env_vars`), and thin per-subcommand
//!   adapters; [`output`]: the printer (the one door for output) and exit status.
//! - [`bounded_read`]: reading a file a user, spec or plan names: regular files only, never
//!   blocking on a FIFO, never further than a limit. [`atomic_write`]: its counterpart for the
//!   files tokensmith writes (secrets, saved plans, metrics). [`paths`]: paths as written. [`process_group`]: child processes with a
//!   deadline, killed with everything they started.
//!
//! Dependencies point one way: commands → lock/git/apply/plan/render → spec/model/live traits.

pub mod apply;
pub mod atomic_write;
pub mod bounded_read;
pub mod cli;
pub mod commands;
pub mod deliver;
pub mod git;
pub mod live;
pub mod lock;
pub mod model;
pub mod output;
pub mod paths;
pub mod plan;
pub mod process_group;
pub mod render;
pub mod sandbox;
pub mod spec;

//! git access: the repository around the spec and the spec as committed at a ref, and what a
//! change does to the desired state.
//!
//! - [`repo`]: the git repository around the spec: its commit and dirtiness, the spec's bytes
//!   as committed at a ref (`--spec-ref`, `--base`), the stale-commit check of a saved plan.
//! - [`at_ref`]: the spec at a ref, loaded (the one join of git and the spec loader).
//! - [`desired_diff`]: what a change does to the desired state (`plan --base REF`), computed
//!   as a value; its renderers are in `render`.
//!
//! Not here: apply locks kept in a git remote (`lock::git_remote`), and the commands that use
//! these (thin adapters in `commands/`).

pub mod at_ref;
pub mod desired_diff;
pub mod repo;

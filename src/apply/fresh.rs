//! Refusing a stale saved plan: `apply PLAN` re-reads the spec, live state and targets, and
//! the plan is applied only when their fingerprints still match the ones it was made from.

use std::fmt;

use crate::model::{LiveSnapshot, TargetSnapshot};
use crate::plan::{live_fingerprint, targets_fingerprint, Plan};

/// An input of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleInput {
    /// The spec file (after templating) differs.
    Spec,
    /// Live token metadata differs (ignoring `lastUsed*` and the server clock).
    Live,
    /// What the targets hold differs.
    Targets,
}

impl fmt::Display for StaleInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StaleInput::Spec => "the spec",
            StaleInput::Live => "the live tokens in Dynatrace",
            StaleInput::Targets => "what the delivery targets hold",
        })
    }
}

/// A plan whose inputs changed since it was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the plan is stale: {} changed since it was made; run `tokensmith plan --out PLAN` again and apply the new plan", list(.changed))]
pub struct Stale {
    pub changed: Vec<StaleInput>,
}

fn list(changed: &[StaleInput]) -> String {
    let words: Vec<String> = changed.iter().map(ToString::to_string).collect();
    match words.as_slice() {
        [] => "nothing".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Whether `plan` was made from this spec, live state and targets.
pub fn check_fresh(
    plan: &Plan,
    spec_hash: &str,
    live: &LiveSnapshot,
    targets: &TargetSnapshot,
) -> Result<(), Stale> {
    let mut changed = Vec::new();
    if plan.inputs.spec != spec_hash {
        changed.push(StaleInput::Spec);
    }
    if plan.inputs.live != live_fingerprint(live) {
        changed.push(StaleInput::Live);
    }
    if plan.inputs.targets != targets_fingerprint(targets) {
        changed.push(StaleInput::Targets);
    }
    if changed.is_empty() {
        Ok(())
    } else {
        Err(Stale { changed })
    }
}

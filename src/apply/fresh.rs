//! Refusing a stale or edited saved plan: `apply PLAN` re-reads the spec, live state and
//! targets, and the plan is applied only when their fingerprints still match the ones it was
//! made from ([`check_fresh`]) and its steps are the ones the spec plans from them at the
//! plan's own time ([`check_as_planned`]). A plan file travels between CI jobs as an artifact;
//! with the second check, editing one (a step added, a target changed, a blocking check
//! removed) cannot make `apply` do anything the reviewed spec would not.

use std::fmt;

use crate::model::{Desired, LiveSnapshot, TargetSnapshot};
use crate::plan::{
    live_fingerprint, plan, targets_fingerprint, Plan, PlanOptions, Reason, ReplaceRequest,
};

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

/// A saved plan that is not what its spec plans from the same inputs at the same time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the plan file is not what its spec plans from the same inputs ({what}): it was edited after `tokensmith plan --out`, or made by another tokensmith version; nothing was changed. Run `tokensmith plan --out PLAN` again and apply the new plan")]
pub struct NotAsPlanned {
    pub what: String,
}

/// Whether `saved`'s steps, and its blocking checks, are what the planner makes of `desired`,
/// `live` and `targets` at `saved.generated_at` with the `--replace` requests it records. Call
/// after [`check_fresh`]: with the same inputs and the same clock the planner is deterministic,
/// so any difference is an edit (or another planner). Checks that depend on the moment of
/// applying (whether a cluster is reachable) and `--fail-on-expiry-within`'s are not compared;
/// a blocking check the planner makes must still be in the file.
pub fn check_as_planned(
    saved: &Plan,
    desired: &Desired,
    live: &LiveSnapshot,
    targets: &TargetSnapshot,
    opts: &PlanOptions,
) -> Result<(), NotAsPlanned> {
    let replace = saved
        .inputs
        .replace
        .iter()
        .map(|r| r.parse::<ReplaceRequest>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NotAsPlanned {
            what: format!("its `--replace` requests do not parse: {e}"),
        })?;
    let opts = PlanOptions {
        replace,
        ..opts.clone()
    };
    let expected =
        plan(desired, live, targets, saved.generated_at, &opts).map_err(|e| NotAsPlanned {
            what: format!("planning again fails: {e}"),
        })?;
    if let Some(i) = (0..saved.steps.len().max(expected.steps.len()))
        .find(|&i| saved.steps.get(i) != expected.steps.get(i))
    {
        let id = |steps: &[crate::plan::Step]| {
            steps
                .get(i)
                .map_or("no step".to_owned(), |s| format!("`{}`", s.id))
        };
        let what = match (saved.steps.get(i), expected.steps.get(i)) {
            (Some(a), Some(b)) if a.id == b.id => {
                format!("step {} `{}` differs from the planned one", i + 1, a.id)
            }
            _ => format!(
                "step {} is {} in the file and {} in the spec's plan",
                i + 1,
                id(&saved.steps),
                id(&expected.steps)
            ),
        };
        return Err(NotAsPlanned { what });
    }
    let missing = expected
        .checks
        .iter()
        .find(|c| c.blocking && c.code != Reason::TargetUnusable && !saved.checks.contains(c));
    if let Some(check) = missing {
        return Err(NotAsPlanned {
            what: format!("the blocking check `{}` is missing", check.message),
        });
    }
    Ok(())
}

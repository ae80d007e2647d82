//! Step ordering: a topological order of the dependency graph that is stable. Among the steps
//! whose dependencies are done, the one generated first goes first; the planner generates steps
//! per token sorted by home, key and kind, so the order reads environment by environment.

use std::collections::{BTreeMap, BTreeSet};

use super::types::{Step, StepId};

/// Order steps so that each comes after its dependencies. A step depending on an id that is not
/// in the list could never wait for it, so it is removed (with its dependents) rather than run
/// early; the planner never produces one.
pub(crate) fn order_steps(mut steps: Vec<Step>) -> Vec<Step> {
    loop {
        let ids: BTreeSet<StepId> = steps.iter().map(|s| s.id.clone()).collect();
        let before = steps.len();
        steps.retain(|s| s.depends_on.iter().all(|d| ids.contains(d)));
        if steps.len() == before {
            break;
        }
    }
    let index: BTreeMap<StepId, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    let mut remaining: Vec<usize> = steps
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .filter(|d| index.contains_key(*d))
                .count()
        })
        .collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for d in &s.depends_on {
            if let Some(&j) = index.get(d) {
                dependents[j].push(i);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..steps.len()).filter(|&i| remaining[i] == 0).collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &j in &dependents[i] {
            remaining[j] -= 1;
            if remaining[j] == 0 {
                ready.insert(j);
            }
        }
    }
    assert_eq!(
        order.len(),
        steps.len(),
        "the planner produced a dependency cycle"
    );
    let mut slots: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("each step is placed once"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EnvName, Home, TokenKind};
    use crate::plan::types::{Action, Reason};

    fn step(id: &str, deps: &[&str]) -> Step {
        Step {
            id: StepId(id.into()),
            depends_on: deps.iter().map(|d| StepId((*d).into())).collect(),
            home: Home::Environment(EnvName::new("prod")),
            kind: TokenKind::TenantToken,
            key: None,
            reason: Reason::RotationDue,
            action: Action::TenantStart,
            note: None,
        }
    }

    fn ids(steps: &[Step]) -> Vec<&str> {
        steps.iter().map(|s| s.id.0.as_str()).collect()
    }

    #[test]
    fn dependencies_first_otherwise_generation_order() {
        let steps = vec![
            step("c", &["b"]),
            step("a", &[]),
            step("b", &[]),
            step("d", &[]),
        ];
        assert_eq!(ids(&order_steps(steps)), ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_step_waiting_for_a_missing_step_is_dropped_with_its_dependents() {
        let steps = vec![step("a", &[]), step("b", &["gone"]), step("c", &["b"])];
        assert_eq!(ids(&order_steps(steps)), ["a"]);
    }
}

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
        debug_assert_eq!(
            before,
            steps.len(),
            "a step depends on a step not in the plan"
        );
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

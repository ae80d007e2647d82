//! The schedule of an inventory's entries: the coming rotations and retirements a plan over the
//! same inputs forecasts (for the HTML report's timeline).

use std::collections::BTreeMap;

use super::{Inventory, LifeEvent, LifeEventKind};
use crate::model::{Desired, Revoke, TokenId, TokenKind};
use crate::plan::types::Plan;

/// Add the coming rotations and retirements a plan over the same inputs forecasts: each
/// current generation's next rotation and, after it, the end of its grace and its deletion
/// (by the spec's policy); each superseded generation's pending disable or delete.
pub fn add_schedule(inventory: &mut Inventory, plan: &Plan, desired: &Desired) {
    let mut events: BTreeMap<TokenId, Vec<LifeEvent>> = BTreeMap::new();
    for f in &plan.forecast {
        let (Some(id), Some(due), Some(key)) = (&f.token, f.rotation_due, &f.key) else {
            continue;
        };
        let list = events.entry(id.clone()).or_default();
        list.push(LifeEvent {
            at: due,
            kind: LifeEventKind::Rotation,
            note: format!("next rotation of `{key}`: a successor is created and delivered"),
        });
        let Some(d) = desired
            .tokens
            .iter()
            .find(|d| d.home == f.home && d.kind == f.kind && &d.key == key)
        else {
            continue;
        };
        let grace_end = due + d.policy.grace.to_time();
        match d.policy.revoke {
            Revoke::Disable { delete_after } if f.kind != TokenKind::ActivegateToken => {
                list.push(LifeEvent {
                    at: grace_end,
                    kind: LifeEventKind::GraceEnds,
                    note: format!(
                        "about then: grace ({}) ends after the successor reached every target; disabled",
                        d.policy.grace
                    ),
                });
                list.push(LifeEvent {
                    at: grace_end + delete_after.to_time(),
                    kind: LifeEventKind::Revocation,
                    note: format!("about then: deleted {delete_after} after it was disabled"),
                });
            }
            _ => list.push(LifeEvent {
                at: grace_end,
                kind: LifeEventKind::Revocation,
                note: format!(
                    "about then: grace ({}) ends after the successor reached every target; deleted",
                    d.policy.grace
                ),
            }),
        }
    }
    for p in &plan.pending {
        let Some(at) = p.not_before else { continue };
        let kind = if p.action == "delete" {
            LifeEventKind::Revocation
        } else {
            LifeEventKind::GraceEnds
        };
        events.entry(p.token.clone()).or_default().push(LifeEvent {
            at,
            kind,
            note: format!("{} (waits for {})", p.action, p.waiting_for),
        });
    }
    for e in &mut inventory.entries {
        if let Some(mut list) = events.remove(&e.id) {
            list.sort_by_key(|x| (x.at, x.kind));
            e.schedule = list;
        }
    }
}

//! Pruning unmanaged tokens, only when the spec enables it (`unmanaged.prune`).
//!
//! A token is pruned only when all of these hold: it has no marker at all (a token carrying
//! another key's marker may belong to another repository), it is not the management token, not
//! a personal access token (those belong to people), not named by any `adopt`, not recorded by
//! any target, and it was not used for `unmanaged.report_unused_after` (never-used tokens count
//! from their creation). Without `report_unused_after` nothing is pruned.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use super::analysis::home_label;
use super::draft::{rfc3339, Draft};
use super::types::{Action, Reason, Step, StepId};
use crate::model::{
    Desired, Holder, Home, LiveSnapshot, LiveToken, Marker, SpecDuration, TargetSnapshot,
};

/// Whether an unmanaged token has gone unused for `after` at `now`.
pub(crate) fn unused_for(token: &LiveToken, after: SpecDuration, now: OffsetDateTime) -> bool {
    match (token.last_used, token.created) {
        (Some(used), _) => used + after.to_time() <= now,
        (None, Some(created)) => created + after.to_time() <= now,
        (None, None) => false,
    }
}

pub(crate) fn plan_prune(
    draft: &mut Draft,
    desired: &Desired,
    live: &LiveSnapshot,
    targets: &TargetSnapshot,
    now: OffsetDateTime,
) {
    if !desired.unmanaged.prune {
        return;
    }
    let Some(after) = desired.unmanaged.report_unused_after else {
        draft.warn(
            "prune_without_threshold",
            "`unmanaged.prune` is enabled but `unmanaged.report_unused_after` is not set; nothing is pruned".to_owned(),
        );
        return;
    };
    let held: BTreeSet<&crate::model::TokenId> = targets
        .holders
        .values()
        .filter_map(|h| match h {
            Holder::Token { id } => Some(id),
            _ => None,
        })
        .collect();
    let adopted: BTreeSet<&crate::model::TokenId> = desired
        .tokens
        .iter()
        .filter_map(|t| t.adopt.as_ref())
        .collect();

    let mut homes: Vec<(
        Home,
        Vec<&LiveToken>,
        Option<&crate::model::TokenId>,
        OffsetDateTime,
    )> = Vec::new();
    for name in desired.environments.keys() {
        if let Some(env) = live.environments.get(name) {
            let tokens = env
                .api_tokens
                .iter()
                .chain(&env.activegate_tokens)
                .collect();
            let now = env.server_time.unwrap_or(now);
            homes.push((
                Home::Environment(name.clone()),
                tokens,
                env.caller.as_ref(),
                now,
            ));
        }
    }
    for name in desired.accounts.keys() {
        if let Some(account) = live.accounts.get(name) {
            homes.push((
                Home::Account(name.clone()),
                account.platform_tokens.iter().collect(),
                None,
                now,
            ));
        }
    }
    for (home, mut tokens, caller, now) in homes {
        tokens.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
        for t in tokens {
            if Marker::parse_name(&t.name).is_some()
                || Some(&t.id) == caller
                || t.personal_access_token
                || adopted.contains(&t.id)
                || held.contains(&t.id)
                || !unused_for(t, after, now)
            {
                continue;
            }
            draft.push(Step {
                id: StepId(format!("{}/{}/prune/{}", home_label(&home), t.kind, t.id)),
                depends_on: Vec::new(),
                home: home.clone(),
                kind: t.kind,
                key: None,
                reason: Reason::PruneUnused,
                action: Action::Delete {
                    token: t.id.clone(),
                    name: t.name.clone(),
                },
                note: Some(match t.last_used {
                    Some(u) => format!("unmanaged, last used {}", rfc3339(u)),
                    None => "unmanaged, never used".to_owned(),
                }),
            });
        }
    }
}

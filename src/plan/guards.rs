//! Guards applied to the whole draft plan: the platform-token limit per owner, the refusal to
//! revoke, disable, delete or narrow the management token, and the warning when it nears expiry.

use std::collections::{BTreeMap, BTreeSet};

use time::{Duration, OffsetDateTime};

use super::analysis::live_tokens;
use super::draft::{rfc3339, Draft, PlatformCreate};
use super::types::{Action, Check, PlanError, Reason, StepId};
use crate::model::{Home, LiveSnapshot, LiveToken, SystemToken, TokenId, TokenKind};

/// The management token warns this long before it expires.
pub const CALLER_EXPIRY_WARNING: Duration = Duration::days(14);

/// Platform tokens per owner and account.
pub const PLATFORM_TOKEN_LIMIT: usize = 10;

/// Platform tokens: at most [`PLATFORM_TOKEN_LIMIT`] per owner and account, counting the
/// overlap of a rotation. Creates that would exceed it are removed with everything that depends
/// on them, and a blocking check names each token.
pub(super) fn enforce_platform_limit(draft: &mut Draft, live: &LiveSnapshot) {
    let mut groups: BTreeMap<(String, Option<String>), Vec<PlatformCreate>> = BTreeMap::new();
    for c in std::mem::take(&mut draft.platform_creates) {
        groups
            .entry((c.account.clone(), c.owner.clone()))
            .or_default()
            .push(c);
    }
    let mut removed: BTreeSet<StepId> = BTreeSet::new();
    for ((account, owner), creates) in groups {
        let Some(owner) = owner else { continue };
        let home = Home::Account(account.clone());
        let owned_tokens: Vec<&LiveToken> = live_tokens(live, &home, TokenKind::PlatformToken)
            .iter()
            .filter(|t| t.owner.as_deref() == Some(owner.as_str()))
            .collect();
        let owned: Vec<&TokenId> = owned_tokens.iter().map(|t| &t.id).collect();
        // An apply plans under its lease, which takes one of the owner's tokens while it runs.
        let lease = if owned_tokens
            .iter()
            .any(|t| SystemToken::of_name(&t.name) == Some(SystemToken::ApplyLease))
        {
            " (counting the apply lease, which holds one while an apply runs)"
        } else {
            ""
        };
        let deleted = draft
            .steps
            .iter()
            .filter(|s| matches!(&s.action, Action::Delete { token, .. } if owned.contains(&token)))
            .count();
        let total = owned.len() - deleted + creates.len();
        if total <= PLATFORM_TOKEN_LIMIT {
            continue;
        }
        for c in creates {
            let key = c.key.clone();
            removed.insert(c.step.clone());
            draft.pending.retain(|p| {
                !(p.home == home && p.key == key && Some(&p.token) == c.replaces.as_ref())
            });
            let slot = draft
                .forecast
                .iter()
                .position(|f| f.home == home && f.key.as_ref() == Some(&key));
            match (slot, c.fallback) {
                (Some(i), Some(entry)) => draft.forecast[i] = entry,
                (Some(i), None) => {
                    draft.forecast.remove(i);
                }
                _ => {}
            }
            draft.checks.push(Check {
                code: Reason::PlatformTokenLimit,
                blocking: true,
                home: home.clone(),
                key: Some(key.clone()),
                message: format!(
                    "platform token `{key}` in account `{account}`: creating it would give owner {owner} {total} platform tokens{lease}; Dynatrace allows {PLATFORM_TOKEN_LIMIT} per owner. Delete unused platform tokens of this owner first"
                ),
            });
        }
    }
    if removed.is_empty() {
        return;
    }
    // Remove the creates and, transitively, every step that depends on them.
    loop {
        let before = removed.len();
        for s in &draft.steps {
            if s.depends_on.iter().any(|d| removed.contains(d)) {
                removed.insert(s.id.clone());
            }
        }
        if removed.len() == before {
            break;
        }
    }
    draft.steps.retain(|s| !removed.contains(&s.id));
}

/// Refuse plans that revoke, disable, delete or narrow a management token.
pub(super) fn protect_callers(draft: &Draft, live: &LiveSnapshot) -> Result<(), PlanError> {
    for s in &draft.steps {
        let Home::Environment(env) = &s.home else {
            continue;
        };
        let Some(caller) = live.environments.get(env).and_then(|e| e.caller.as_ref()) else {
            continue;
        };
        let refused = match &s.action {
            Action::Disable { token, .. } if token == caller => Some("disable"),
            Action::Delete { token, .. } if token == caller => Some("delete"),
            Action::Update {
                token,
                scopes: Some(change),
                ..
            } if token == caller && !change.from.is_subset(&change.to) => {
                Some("narrow the scopes of")
            }
            _ => None,
        };
        if let Some(action) = refused {
            return Err(PlanError::ManagementToken {
                env: env.clone(),
                token: caller.clone(),
                action,
            });
        }
    }
    Ok(())
}

pub(super) fn warn_expiring_callers(draft: &mut Draft, live: &LiveSnapshot, now: OffsetDateTime) {
    for (name, env) in &live.environments {
        let Some(caller) = &env.caller else { continue };
        let now = env.server_time.unwrap_or(now);
        let Some(expires) = env
            .api_tokens
            .iter()
            .find(|t| &t.id == caller)
            .and_then(|t| t.expires)
        else {
            continue;
        };
        if expires <= now + CALLER_EXPIRY_WARNING {
            draft.warn(
                "management_token_expiring",
                format!(
                    "the management token {caller} of environment `{name}` expires at {}; create a new one and update its `token_env` before then",
                    rfc3339(expires)
                ),
            );
        }
    }
}

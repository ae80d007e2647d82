//! Pruning unmanaged tokens, only when the spec enables it (`unmanaged.prune`): disable first,
//! delete after a retention (`unmanaged.delete_after`, default [`DEFAULT_PRUNE_RETENTION_DAYS`]).
//!
//! A token is pruned only when all of these hold: it has no marker at all (a token carrying
//! another key's marker may belong to another repository), it is not the management token (the
//! caller, or a token the inventory classes `management-token`), not a personal access token
//! (those belong to people), not named by any `adopt`, not recorded by any target, it matches
//! every selector of `unmanaged.select` (`names`, `owners`, `classes`), and it was not used for
//! `unmanaged.report_unused_after` (never-used tokens count from their creation). Without
//! `report_unused_after` nothing is pruned.
//!
//! The first step disables it; an API token is renamed with [`PRUNED_SUFFIX`] in the same
//! update, which sets `modifiedDate`, from which the retention counts (a platform token's status
//! change sets `updatedAt`). An expired token is deleted `delete_after` after it expired.
//! ActiveGate tokens cannot be disabled, so an unexpired one is only reported. Every step and
//! every waiting deletion says why.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::analysis::home_label;
use super::draft::{rfc3339, Draft};
use super::inventory::{inventory, TokenClass};
use super::types::{Action, Pending, Reason, Step, StepId};
use crate::model::token::MAX_NAME_LEN;
use crate::model::{
    Desired, Holder, Home, LiveSnapshot, LiveToken, Marker, PruneSelect, SpecDuration,
    TargetSnapshot, TokenId, TokenKey, TokenKind,
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
    let select = &desired.unmanaged.prune_select;
    let retention = select
        .delete_after
        .unwrap_or(SpecDuration::from_days(DEFAULT_PRUNE_RETENTION_DAYS));
    let held: BTreeSet<&TokenId> = targets
        .holders
        .values()
        .filter_map(|h| match h {
            Holder::Token { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    let adopted: BTreeSet<&TokenId> = desired
        .tokens
        .iter()
        .filter_map(|t| t.adopt.as_ref())
        .collect();
    // The inventory's classes, for `select.classes` and to recognise management tokens.
    let classes: BTreeMap<(Home, TokenId), BTreeSet<TokenClass>> = inventory(desired, live, now)
        .entries
        .into_iter()
        .map(|e| ((e.home, e.id), e.classes))
        .collect();

    let mut homes: Vec<(Home, Vec<&LiveToken>, Option<&TokenId>, OffsetDateTime)> = Vec::new();
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
    let no_classes = BTreeSet::new();
    for (home, mut tokens, caller, now) in homes {
        tokens.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
        for t in tokens {
            let token_classes = classes
                .get(&(home.clone(), t.id.clone()))
                .unwrap_or(&no_classes);
            if Marker::parse_name(&t.name).is_some()
                || Some(&t.id) == caller
                || token_classes.contains(&TokenClass::ManagementToken)
                || t.personal_access_token
                || adopted.contains(&t.id)
                || held.contains(&t.id)
                || !selected(select, t, token_classes)
                || !unused_for(t, after, now)
            {
                continue;
            }
            prune_token(draft, &home, t, now, retention);
        }
    }
}

/// The days a pruned token stays disabled before it is deleted, unless the spec says otherwise.
pub const DEFAULT_PRUNE_RETENTION_DAYS: i64 = 30;

/// The suffix a pruned (disabled) API token's name gets; its rename starts the retention.
pub const PRUNED_SUFFIX: &str = " (pruned)";

/// Whether `t` matches every selector given.
fn selected(select: &PruneSelect, t: &LiveToken, classes: &BTreeSet<TokenClass>) -> bool {
    let name = t.name.strip_suffix(PRUNED_SUFFIX).unwrap_or(&t.name);
    (select.names.is_empty() || select.names.iter().any(|p| glob_matches(p, name)))
        && (select.owners.is_empty()
            || t.owner
                .as_deref()
                .is_some_and(|o| select.owners.iter().any(|w| w.eq_ignore_ascii_case(o))))
        && (select.classes.is_empty()
            || classes
                .iter()
                .any(|c| select.classes.iter().any(|w| w == c.as_str())))
}

/// Case-insensitive match where `*` matches any run of characters.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.to_lowercase(), text.to_lowercase());
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

fn prune_token(
    draft: &mut Draft,
    home: &Home,
    t: &LiveToken,
    now: OffsetDateTime,
    retention: SpecDuration,
) {
    let why = match t.last_used {
        Some(u) => format!("unmanaged, last used {}", rfc3339(u)),
        None => "unmanaged, never used".to_owned(),
    };
    let expired = t.expires.is_some_and(|e| e <= now);
    // Disabled by prune: the rename (API) or the status change (platform) set `modified`.
    let pruned =
        !t.enabled && (t.kind == TokenKind::PlatformToken || t.name.ends_with(PRUNED_SUFFIX));
    let since = if expired {
        t.expires
    } else if pruned {
        t.modified
    } else {
        None
    };
    let id = StepId(format!("{}/{}/prune/{}", home_label(home), t.kind, t.id));
    let Some(since) = since else {
        if t.kind == TokenKind::ActivegateToken {
            draft.warn(
                "prune_cannot_disable",
                format!(
                    "activegate_token {} ({}) in {}: {why}; ActiveGate tokens cannot be disabled, so prune does not delete it before it expires; delete it by hand once nothing uses it",
                    t.id,
                    t.name,
                    home_label(home)
                ),
            );
            return;
        }
        let rename = (t.kind == TokenKind::ApiToken).then(|| {
            let keep = MAX_NAME_LEN.saturating_sub(PRUNED_SUFFIX.len());
            let base: String = t.name.chars().take(keep).collect();
            format!("{base}{PRUNED_SUFFIX}")
        });
        draft.push(Step {
            id,
            depends_on: Vec::new(),
            home: home.clone(),
            kind: t.kind,
            key: None,
            reason: Reason::PruneUnused,
            action: Action::Disable {
                token: t.id.clone(),
                name: t.name.clone(),
                rename,
            },
            note: Some(format!(
                "{why}{}; disabled first, deleted {retention} later",
                if t.enabled {
                    ""
                } else {
                    " (already disabled by hand)"
                }
            )),
        });
        return;
    };
    let delete_at = since + retention.to_time();
    let what = if expired {
        format!("expired {}", rfc3339(since))
    } else {
        format!("disabled by prune {}", rfc3339(since))
    };
    if delete_at <= now {
        draft.push(Step {
            id,
            depends_on: Vec::new(),
            home: home.clone(),
            kind: t.kind,
            key: None,
            reason: Reason::PruneUnused,
            action: Action::Delete {
                token: t.id.clone(),
                name: t.name.clone(),
            },
            note: Some(format!("{why}; {what}, retention {retention} elapsed")),
        });
    } else {
        draft.pending.push(Pending {
            home: home.clone(),
            kind: t.kind,
            key: TokenKey::parse(UNMANAGED_KEY).expect("`unmanaged` is a valid key"),
            token: t.id.clone(),
            action: "delete".to_owned(),
            not_before: Some(delete_at),
            waiting_for: format!("retention {retention} after it was {what} ({why})"),
        });
    }
}

/// The key shown for an unmanaged token's pending deletion (it has no key of its own).
pub const UNMANAGED_KEY: &str = "unmanaged";

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn name_selectors_match_case_insensitively_with_stars() {
        assert!(glob_matches("old *", "Old Jenkins export"));
        assert!(glob_matches("*export", "jenkins EXPORT"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(glob_matches("exact", "EXACT"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(!glob_matches("a*b*c", "axxcyyb"));
        assert!(!glob_matches("old *", "bold x"));
    }
}

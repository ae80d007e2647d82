//! Moving a token from a classic API token to a platform token when the spec switches its kind.
//!
//! A managed classic API token (it carries the marker of key K) in one of the spec's
//! environments is the predecessor of the spec's platform token K when the spec no longer
//! declares an API token K in that environment. The move is planned like a rotation across
//! kinds: the platform token is created and delivered by the ordinary planning of K (its
//! targets still hold the classic token, so they are switched), and the classic token is
//! retired only after that: when no target holds it any more, none is unreadable, the
//! platform token's `grace` has passed since it was created (its creation is the switch time),
//! and, with `verify_usage`, the platform token was used since. Until then a pending entry says
//! what the classic token waits for. Retiring follows the platform token's `revoke` policy
//! (disable, then delete after `delete_after`; or delete).
//!
//! This module owns only the classic side and the reason of the first platform create; it does
//! not decide how the platform token is created or delivered.

use time::OffsetDateTime;

use super::analysis::{home_label, live_tokens};
use super::draft::{rfc3339, Draft};
use super::retire::revoke_action;
use super::types::{Action, Pending, Reason, Step, StepId};
use crate::model::{
    Desired, DesiredToken, Holder, Home, LiveSnapshot, LiveToken, Marker, Revoke, TargetSnapshot,
    TokenKind,
};

/// Plan the retirement of classic API tokens whose key moved to a platform token.
pub(crate) fn plan_migrations(
    draft: &mut Draft,
    desired: &Desired,
    live: &LiveSnapshot,
    targets: &TargetSnapshot,
    now: OffsetDateTime,
) {
    let mut platform: Vec<&DesiredToken> = desired
        .tokens
        .iter()
        .filter(|t| t.kind == TokenKind::PlatformToken)
        .collect();
    platform.sort_by(|a, b| (&a.home, &a.key).cmp(&(&b.home, &b.key)));
    for d in platform {
        for (env, classic) in classic_predecessors(d, desired, live) {
            let env_now = live
                .environments
                .get(&env)
                .and_then(|e| e.server_time)
                .unwrap_or(now);
            plan_one(draft, d, &env, classic, live, targets, env_now);
        }
    }
}

/// The managed classic API tokens carrying `d`'s key in environments where the spec declares
/// no API token of that key, with their environment.
fn classic_predecessors<'a>(
    d: &DesiredToken,
    desired: &Desired,
    live: &'a LiveSnapshot,
) -> Vec<(crate::model::EnvName, &'a LiveToken)> {
    let mut out = Vec::new();
    for (name, env) in &live.environments {
        if !desired.environments.contains_key(name) {
            continue;
        }
        let home = Home::Environment(name.clone());
        let declared = desired
            .tokens
            .iter()
            .any(|t| t.kind == TokenKind::ApiToken && t.home == home && t.key == d.key);
        if declared {
            continue;
        }
        for t in &env.api_tokens {
            if env.caller.as_ref() == Some(&t.id) {
                continue;
            }
            if Marker::parse_name(&t.name).is_some_and(|m| m.key == d.key) {
                out.push((name.clone(), t));
            }
        }
    }
    out
}

fn plan_one(
    draft: &mut Draft,
    d: &DesiredToken,
    env: &crate::model::EnvName,
    classic: &LiveToken,
    live: &LiveSnapshot,
    targets: &TargetSnapshot,
    now: OffsetDateTime,
) {
    let home = Home::Environment(env.clone());
    // The first platform generation replaces a token the targets still record: say why.
    for s in draft.steps.iter_mut() {
        if s.home == d.home
            && s.key.as_ref() == Some(&d.key)
            && s.kind == TokenKind::PlatformToken
            && matches!(
                s.reason,
                Reason::DeletedOutsideGit | Reason::MigratedToPlatform
            )
            && matches!(s.action, Action::Create { .. })
        {
            s.reason = Reason::MigratedToPlatform;
            s.note = Some(format!(
                "replaces the classic API token {} in environment `{env}`",
                classic.id
            ));
        }
    }
    let pending = |draft: &mut Draft, action: &str, not_before, waiting_for: String| {
        draft.pending.push(Pending {
            home: home.clone(),
            kind: TokenKind::ApiToken,
            key: d.key.clone(),
            token: classic.id.clone(),
            action: action.to_owned(),
            not_before,
            waiting_for,
        });
    };
    let planned_for_key = draft
        .steps
        .iter()
        .any(|s| s.home == d.home && s.key.as_ref() == Some(&d.key));
    let switched = d.deliver.iter().all(|t| {
        !matches!(
            targets.holders.get(&t.address()),
            Some(Holder::Token { id, .. }) if *id == classic.id
        ) && !matches!(
            targets.holders.get(&t.address()),
            Some(Holder::Unreadable { .. }) | None
        )
    });
    // The switch time: the creation of the newest usable platform generation.
    let successor = live_tokens(live, &d.home, TokenKind::PlatformToken)
        .iter()
        .filter(|t| Marker::parse_name(&t.name).is_some_and(|m| m.key == d.key))
        .filter(|t| t.enabled && t.expires.is_none_or(|e| e > now))
        .max_by_key(|t| t.created);
    let retire_what = if classic.enabled { "revoke" } else { "delete" };
    let Some(successor) = successor.filter(|_| !planned_for_key && switched) else {
        pending(
            draft,
            retire_what,
            None,
            format!(
                "platform token `{}` in {} reaching every target",
                d.key,
                home_label(&d.home)
            ),
        );
        return;
    };
    let switch = successor.created.unwrap_or(now);
    let grace_end = switch + d.policy.grace.to_time();
    if grace_end > now {
        pending(
            draft,
            retire_what,
            Some(grace_end),
            format!(
                "the grace of {} after the switch to the platform token",
                d.policy.grace
            ),
        );
        return;
    }
    if d.policy.verify_usage && classic.enabled && successor.last_used.is_none_or(|u| u <= switch) {
        pending(
            draft,
            retire_what,
            None,
            format!("platform token {} being used (verify_usage)", successor.id),
        );
        return;
    }
    let mut as_classic = d.clone();
    as_classic.kind = TokenKind::ApiToken;
    as_classic.home = home.clone();
    let action = if classic.enabled {
        revoke_action(&as_classic, classic)
    } else {
        // Revoked earlier by disabling: delete `delete_after` after that (the revoking rename
        // set `modified`).
        let delete_after = match d.policy.revoke {
            Revoke::Disable { delete_after } => delete_after.to_time(),
            Revoke::Delete => time::Duration::ZERO,
        };
        let revoked = classic.modified.unwrap_or(grace_end).max(grace_end);
        let delete_at = revoked + delete_after;
        if delete_at > now {
            pending(
                draft,
                "delete",
                Some(delete_at),
                format!(
                    "`delete_after` since it was revoked at {}",
                    rfc3339(revoked)
                ),
            );
            return;
        }
        Action::Delete {
            token: classic.id.clone(),
            name: classic.name.clone(),
        }
    };
    let verb = match &action {
        Action::Delete { .. } => "delete",
        _ => "revoke",
    };
    draft.push(Step {
        id: StepId(format!(
            "{env}/api_token/{}/migrate/{verb}/{}",
            d.key, classic.id
        )),
        depends_on: Vec::new(),
        home,
        kind: TokenKind::ApiToken,
        key: Some(d.key.clone()),
        reason: Reason::MigratedToPlatform,
        action,
        note: Some(format!(
            "the key moved to platform token `{}` in {}, which every target holds since {}",
            d.key,
            home_label(&d.home),
            rfc3339(switch)
        )),
    });
}

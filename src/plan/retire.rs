//! Retiring old generations, decided from live state alone (there is no state file, targets
//! record no delivery time, and Dynatrace records no disable time). The timestamps used:
//!
//! - **Switch time** of a predecessor: when its consumers got the successor. Normally the
//!   successor's `created` (the applier delivers right after creating, in the same run); when no
//!   generation is current and a new one is created, each older one counts from its own
//!   successor (the next live generation), not from now, so expiries between applies never push
//!   its grace and retention forward. When a
//!   target still holding the predecessor is switched late (an interrupted apply), the plan
//!   renames the predecessor with ` (superseded)` after that delivery, which sets its
//!   `modifiedDate`; the switch time is then the later of the two. Kinds that cannot be renamed
//!   (ActiveGate, platform) get a fresh generation instead, whose `created` is the switch time.
//! - An enabled predecessor is **revoked** when no readable target holds it, no target is
//!   unreadable, `switch time + grace` has passed, and — with `verify_usage` or write-only
//!   targets — the successor was used after its creation. Revoking is disabling
//!   (`revoke: disable`; API tokens are renamed with ` (revoked)` in the same update, which sets
//!   `modifiedDate`) or deleting (`revoke: delete`, and always for ActiveGate tokens, which cannot
//!   be disabled). With zero grace the revoke is planned in the same run, after every delivery.
//! - A disabled or expired predecessor is **deleted** `delete_after` after it was revoked: the
//!   later of `switch time + grace` (the earliest it can have been revoked) and its `modified`
//!   timestamp (the revoking rename; a platform token's status change sets `updatedAt`); an API
//!   token carrying ` (revoked)` counts from its revoking rename alone, once. With
//!   `revoke: delete` it is deleted at `switch time + grace`.
//! - A generation newer than the current one that no readable target holds and nobody used was
//!   never delivered (an interrupted apply): its value is lost, so it is deleted.

use super::analysis::{home_label, TargetState, TokenFacts};
use super::draft::{generation_of, prefix, step, Draft};
use super::types::{Action, Change, Pending, Reason, Step, StepId};
use time::OffsetDateTime;

use crate::model::token::MAX_NAME_LEN;
use crate::model::{DesiredToken, LiveToken, Marker, Revoke, TokenKind};

/// When `token`'s own successor was created: the earliest-created later live generation of its
/// key created after it (generations created out of order, by hand or across clocks, are
/// skipped). `None` when there is none: the generation this plan creates is its successor.
fn own_successor_created(facts: &TokenFacts<'_>, token: &LiveToken) -> Option<OffsetDateTime> {
    let at = facts
        .generations
        .iter()
        .position(|(_, t)| t.id == token.id)?;
    facts.generations[at + 1..]
        .iter()
        .filter_map(|(_, t)| t.created)
        .filter(|c| token.created.is_none_or(|own| *c >= own))
        .min()
}

/// How a predecessor is revoked: ActiveGate tokens cannot be disabled.
pub(super) fn revoke_action(d: &DesiredToken, token: &LiveToken) -> Action {
    let (id, name) = (token.id.clone(), token.name.clone());
    match (d.kind, d.policy.revoke) {
        (TokenKind::ActivegateToken, _) | (_, Revoke::Delete) => Action::Delete { token: id, name },
        (TokenKind::ApiToken, Revoke::Disable { .. }) => {
            let rename = revoked_name(&name);
            Action::Disable {
                token: id,
                rename: (rename != name).then_some(rename),
                name,
            }
        }
        (_, Revoke::Disable { .. }) => Action::Disable {
            token: id,
            name,
            rename: None,
        },
    }
}

/// The suffix a disabled API token's display name gets.
pub const REVOKED_SUFFIX: &str = " (revoked)";

/// The name of a managed token once revoked: its display part with [`REVOKED_SUFFIX`], and the
/// same marker.
fn revoked_name(name: &str) -> String {
    let Some(marker) = Marker::parse_name(name) else {
        return name.to_owned();
    };
    let display = Marker::display_part(name);
    if display.ends_with(REVOKED_SUFFIX.trim_start()) {
        return name.to_owned();
    }
    marker.name_with(&format!("{display}{REVOKED_SUFFIX}"), MAX_NAME_LEN)
}

/// When a disabled token was disabled, at the earliest: its successor's grace end, or its
/// `modified` timestamp when later (a rename in the disabling update, or a platform token's
/// status change, sets it). An API token tokensmith revoked carries [`REVOKED_SUFFIX`]: its
/// `modified` is the revoking rename itself, so its retention counts from there, once; a later
/// rotation (which moves the grace end) never pushes it forward.
fn revoked_at(grace_end: OffsetDateTime, token: &LiveToken) -> OffsetDateTime {
    let revoked_by_us = token.kind == TokenKind::ApiToken
        && !token.enabled
        && Marker::display_part(&token.name).ends_with(REVOKED_SUFFIX.trim_start());
    match token.modified {
        Some(m) if revoked_by_us => m,
        Some(m) => m.max(grace_end),
        None => grace_end,
    }
}

fn revoke_step(d: &DesiredToken, token: &LiveToken, reason: Reason) -> Step {
    let action = revoke_action(d, token);
    step(
        d,
        format!("{}/{}/{}", prefix(d), action.verb(), token.id),
        reason,
        action,
    )
}

/// With zero grace and nothing to wait for, the predecessor is revoked in the same run, after
/// its successor's steps: `successor` is the create and every delivery. The create is among
/// them even when there is nothing to deliver, so a create the plan drops later (the platform
/// token limit) takes this revoke with it, and no token is revoked without its successor.
pub(super) fn revoke_same_run(
    draft: &mut Draft,
    facts: &TokenFacts<'_>,
    current: &LiveToken,
    successor: &[StepId],
) {
    let d = facts.desired;
    let must_wait = d.policy.grace.as_secs() > 0
        || d.policy.verify_usage
        || facts
            .targets
            .iter()
            .any(|t| matches!(t.state, TargetState::WriteOnly | TargetState::Unreadable));
    if must_wait {
        let not_before = Some(facts.now + d.policy.grace.to_time());
        draft.pending.push(Pending {
            home: d.home.clone(),
            kind: d.kind,
            key: d.key.clone(),
            token: current.id.clone(),
            action: revoke_action(d, current).verb().to_owned(),
            not_before,
            waiting_for: format!(
                "its successor reaching every target, then grace {}",
                d.policy.grace
            ),
        });
        return;
    }
    let mut s = revoke_step(d, current, Reason::GraceElapsed);
    s.depends_on = successor.to_vec();
    draft.push(s);
}

/// Delete generations that never reached a target (their value is lost). A used one is left
/// alone: something holds it that tokensmith cannot see.
///
/// When this plan creates a newer generation (`successor`: its create and deliveries), a used
/// one is superseded by it and retired like any predecessor: in this run with zero grace,
/// later otherwise.
pub(super) fn retire_never_delivered(
    draft: &mut Draft,
    facts: &TokenFacts<'_>,
    successor: Option<&[StepId]>,
) {
    let d = facts.desired;
    let unreadable = facts
        .targets
        .iter()
        .any(|t| t.state == TargetState::Unreadable);
    for token in &facts.never_delivered {
        if let (Some(successor), Some(_)) = (successor, token.last_used) {
            revoke_same_run(draft, facts, token, successor);
            continue;
        }
        if token.last_used.is_some() || unreadable {
            draft.warn(
                "undelivered_generation",
                format!(
                    "{} `{}` in {}: generation {} ({}) is held by no readable target but {}; left alone",
                    d.kind,
                    d.key,
                    home_label(&d.home),
                    generation_of(facts, token),
                    token.id,
                    if unreadable { "a target cannot be read" } else { "it is in use" }
                ),
            );
            continue;
        }
        let mut s = step(
            d,
            format!("{}/delete/{}", prefix(d), token.id),
            Reason::NeverDelivered,
            Action::Delete {
                token: token.id.clone(),
                name: token.name.clone(),
            },
        );
        s.note = Some(
            "created by an interrupted apply and never delivered; its value is lost".to_owned(),
        );
        draft.push(s);
    }
}

/// The suffix a superseded API token's display name gets when a target still holding it is
/// switched to its successor late (after an interrupted apply): the rename sets `modifiedDate`,
/// from which its grace is then measured.
pub const SUPERSEDED_SUFFIX: &str = " (superseded)";

/// Rename superseded API tokens that readable targets still hold, after this plan's deliveries
/// of the current generation to those targets, so that their grace counts from now.
pub(super) fn mark_switched(draft: &mut Draft, facts: &TokenFacts<'_>, delivers: &[StepId]) {
    let d = facts.desired;
    // With zero grace the revoke happens in this run; nothing to measure.
    if d.kind != TokenKind::ApiToken || delivers.is_empty() || d.policy.grace.as_secs() == 0 {
        return;
    }
    for token in &facts.superseded {
        let held = facts
            .targets
            .iter()
            .any(|t| matches!(t.state, TargetState::Holds(id) if id == &token.id));
        if !held || !token.enabled {
            continue;
        }
        let Some(marker) = Marker::parse_name(&token.name) else {
            continue;
        };
        let display = Marker::display_part(&token.name);
        if display.ends_with(SUPERSEDED_SUFFIX.trim_start()) {
            continue;
        }
        let to = marker.name_with(&format!("{display}{SUPERSEDED_SUFFIX}"), MAX_NAME_LEN);
        let mut s = step(
            d,
            format!("{}/update#{}", prefix(d), marker.generation),
            Reason::TargetHoldsStaleToken,
            Action::Update {
                token: token.id.clone(),
                name: Some(Change {
                    from: token.name.clone(),
                    to,
                }),
                scopes: None,
            },
        );
        s.depends_on = delivers.to_vec();
        s.note = Some(
            "marks when its last consumers were switched; its grace counts from this rename"
                .to_owned(),
        );
        draft.push(s);
    }
}

pub(super) fn retire_superseded(
    draft: &mut Draft,
    facts: &TokenFacts<'_>,
    current: &LiveToken,
    delivering: bool,
) {
    let d = facts.desired;
    let now = facts.now;
    for token in &facts.superseded {
        let usable = token.enabled && token.expires.is_none_or(|e| e > now);
        let successor_created = current.created.unwrap_or(now);
        // Its consumers switched when the successor was created, or later when a target that
        // still held it got the successor (the planner then renames it, which sets `modified`).
        let switched = match (d.kind, token.modified) {
            (TokenKind::ApiToken, Some(m)) if token.enabled => m.max(successor_created),
            _ => successor_created,
        };
        let grace_end = switched + d.policy.grace.to_time();
        let mut waits: Vec<String> = Vec::new();
        let mut not_before = None;
        // A target holding it must get another value first. When this plan delivers to the
        // targets (the current generation to stale ones, or a new generation to all), the
        // revoke depends on those deliveries and the consumers' grace counts from now.
        let holder = facts
            .targets
            .iter()
            .find(|t| matches!(t.state, TargetState::Holds(id) if id == &token.id));
        let switching_now = holder.is_some() && delivering;
        if let (Some(t), false) = (holder, delivering) {
            waits.push(format!("target {} to stop holding it", t.address));
        }
        let (action, reason) = if usable {
            if switching_now && d.policy.grace.as_secs() > 0 {
                not_before = Some(now + d.policy.grace.to_time());
                waits.push(format!(
                    "its successor to reach every target, then grace {}",
                    d.policy.grace
                ));
            } else if !switching_now && now < grace_end {
                not_before = Some(grace_end);
                waits.push(format!(
                    "grace {} after its successor was created",
                    d.policy.grace
                ));
            }
            if let Some(t) = facts
                .targets
                .iter()
                .find(|t| t.state == TargetState::Unreadable)
            {
                waits.push(format!("target {} to become readable", t.address));
            }
            let write_only = facts
                .targets
                .iter()
                .any(|t| t.state == TargetState::WriteOnly);
            let used = current
                .last_used
                .is_some_and(|u| current.created.is_none_or(|c| u > c));
            if (d.policy.verify_usage || write_only) && !used {
                waits.push(format!(
                    "its successor {} to be used (proof that consumers switched)",
                    current.id
                ));
            }
            (revoke_action(d, token), Reason::GraceElapsed)
        } else {
            let delete_at = match (d.kind, d.policy.revoke) {
                (TokenKind::ActivegateToken, _) | (_, Revoke::Delete) => grace_end,
                (_, Revoke::Disable { delete_after }) => {
                    revoked_at(grace_end, token) + delete_after.to_time()
                }
            };
            let reason = if delete_at == grace_end {
                Reason::GraceElapsed
            } else {
                Reason::RetentionElapsed
            };
            if now < delete_at {
                not_before = Some(delete_at);
                waits.push(if reason == Reason::RetentionElapsed {
                    "retention after it was revoked".to_owned()
                } else {
                    format!("grace {} after its successor was created", d.policy.grace)
                });
            }
            (
                Action::Delete {
                    token: token.id.clone(),
                    name: token.name.clone(),
                },
                reason,
            )
        };
        if waits.is_empty() {
            draft.push(step(
                d,
                format!("{}/{}/{}", prefix(d), action.verb(), token.id),
                reason,
                action,
            ));
        } else {
            draft.pending.push(Pending {
                home: d.home.clone(),
                kind: d.kind,
                key: d.key.clone(),
                token: token.id.clone(),
                action: action.verb().to_owned(),
                not_before,
                waiting_for: waits.join("; "),
            });
        }
    }
}

/// When no generation is current and this plan creates one, the disabled or expired ones are
/// retired against it as if it were created now: with zero grace (and immediate deletion) they
/// are deleted in this run, after every delivery of the new generation; otherwise they wait.
pub(super) fn retire_against_new(draft: &mut Draft, facts: &TokenFacts<'_>) {
    let d = facts.desired;
    let now = facts.now;
    for token in &facts.superseded {
        // The newest one's successor is the generation this plan creates.
        let grace_end =
            own_successor_created(facts, token).unwrap_or(now) + d.policy.grace.to_time();
        let delete_at = match (d.kind, d.policy.revoke) {
            (TokenKind::ActivegateToken, _) | (_, Revoke::Delete) => grace_end,
            (_, Revoke::Disable { delete_after }) => {
                revoked_at(grace_end, token) + delete_after.to_time()
            }
        };
        let reason = if delete_at == grace_end {
            Reason::GraceElapsed
        } else {
            Reason::RetentionElapsed
        };
        if delete_at <= now {
            draft.push(step(
                d,
                format!("{}/delete/{}", prefix(d), token.id),
                reason,
                Action::Delete {
                    token: token.id.clone(),
                    name: token.name.clone(),
                },
            ));
        } else {
            draft.pending.push(Pending {
                home: d.home.clone(),
                kind: d.kind,
                key: d.key.clone(),
                token: token.id.clone(),
                action: "delete".to_owned(),
                not_before: Some(delete_at),
                waiting_for: if reason == Reason::RetentionElapsed {
                    "retention after its successor's grace".to_owned()
                } else {
                    format!("grace {} after its successor is created", d.policy.grace)
                },
            });
        }
    }
}

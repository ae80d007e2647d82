//! The platform-token budget ahead: Dynatrace allows [`PLATFORM_TOKEN_LIMIT`] platform tokens
//! per owner and account, counting every token of the owner (managed or not, enabled or not).
//! A rotation needs one more token until its predecessor is deleted, so an owner with room
//! today can run out at a later rotation. This module forecasts that from the plan: per owner,
//! the tokens after this plan (live, minus the plan's deletes, plus its creates), then the
//! forecast's scheduled rotations in time order, each holding an extra token from its due time
//! until its predecessor goes (`grace`, plus `delete_after` when revoking disables). The first
//! rotation that would exceed the limit becomes a warning naming the owner, the account, the
//! token and the date. Blocking creates that exceed the limit now is `guards`' job.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::analysis::live_tokens;
use super::draft::{rfc3339, Draft};
use super::guards::PLATFORM_TOKEN_LIMIT;
use super::types::{Action, Reason};
use crate::model::{Desired, Home, LiveSnapshot, Revoke, TokenDetails, TokenKind};

/// Warn about the first scheduled rotation per owner that would exceed the limit.
pub(crate) fn warn_platform_budget(draft: &mut Draft, desired: &Desired, live: &LiveSnapshot) {
    for account in desired.accounts.keys() {
        let home = Home::Account(account.clone());
        let Some(_) = live.accounts.get(account) else {
            continue;
        };
        let tokens = live_tokens(live, &home, TokenKind::PlatformToken);
        let mut count: BTreeMap<String, i64> = BTreeMap::new();
        for t in tokens {
            if let Some(owner) = &t.owner {
                *count.entry(owner.clone()).or_default() += 1;
            }
        }
        let owner_of_key = |key: &crate::model::TokenKey| -> Option<String> {
            let d = desired
                .tokens
                .iter()
                .find(|d| d.home == home && &d.key == key && d.kind == TokenKind::PlatformToken)?;
            // The owner as Dynatrace reports it, when a generation is live; else the spec's.
            tokens
                .iter()
                .filter(|t| {
                    crate::model::Marker::parse_name(&t.name).is_some_and(|m| &m.key == key)
                })
                .find_map(|t| t.owner.clone())
                .or_else(|| match &d.details {
                    TokenDetails::Platform { owner, .. } => owner.clone(),
                    _ => None,
                })
        };
        for s in draft.steps.iter().filter(|s| s.home == home) {
            match &s.action {
                Action::Create { .. } => {
                    if let Some(owner) = s.key.as_ref().and_then(owner_of_key) {
                        *count.entry(owner).or_default() += 1;
                    }
                }
                Action::Delete { token, .. } => {
                    if let Some(owner) = tokens
                        .iter()
                        .find(|t| &t.id == token)
                        .and_then(|t| t.owner.clone())
                    {
                        *count.entry(owner).or_default() -= 1;
                    }
                }
                _ => {}
            }
        }
        // Scheduled rotations per owner: (due, key, how long the predecessor stays).
        let mut rotations: BTreeMap<String, Vec<(OffsetDateTime, String, time::Duration)>> =
            BTreeMap::new();
        for f in draft.forecast.iter().filter(|f| f.home == home) {
            let (Some(key), Some(due)) = (&f.key, f.rotation_due) else {
                continue;
            };
            // A create the limit blocks now is already a failed check.
            let blocked = draft.checks.iter().any(|c| {
                c.code == Reason::PlatformTokenLimit
                    && c.home == home
                    && c.key.as_ref() == Some(key)
            });
            let Some(owner) = owner_of_key(key).filter(|_| !blocked) else {
                continue;
            };
            let Some(d) = desired
                .tokens
                .iter()
                .find(|d| d.home == home && &d.key == key)
            else {
                continue;
            };
            let stays = d.policy.grace.to_time()
                + match d.policy.revoke {
                    Revoke::Disable { delete_after } => delete_after.to_time(),
                    Revoke::Delete => time::Duration::ZERO,
                };
            rotations
                .entry(owner)
                .or_default()
                .push((due, key.to_string(), stays));
        }
        for (owner, mut list) in rotations {
            list.sort();
            let base = count.get(&owner).copied().unwrap_or(0);
            for (i, (due, key, _)) in list.iter().enumerate() {
                let overlapping = list[..i]
                    .iter()
                    .filter(|(d, _, stays)| *d + *stays > *due)
                    .count() as i64;
                let needed = base + overlapping + 1;
                if needed > PLATFORM_TOKEN_LIMIT as i64 {
                    draft.warn(
                        "platform_token_budget",
                        format!(
                            "owner {owner} in account `{account}` runs out of platform tokens at {}: it holds {base} of {PLATFORM_TOKEN_LIMIT} after this plan, and the rotation of `{key}` then needs {needed} ({overlapping} earlier rotation(s) still overlapping); delete unused tokens of this owner, or move tokens to another service user",
                            rfc3339(*due)
                        ),
                    );
                    break;
                }
            }
        }
    }
}

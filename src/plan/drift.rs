//! Drift: what differs between git and live, for `tokensmith drift` on a cron. Scopes or names
//! edited in the UI, tokens disabled, deleted or expired outside git, targets holding a token
//! that is not current (or nothing), tokens inside their rotation window, tenant-token targets
//! holding an old tenant token, an open tenant token rotation (since when, which targets confirmed
//! the new token, when finish is due). Drift is reported, never fixed here; `plan` says how to fix it.
//!
//! With `--verify-values` the command also looks the values of readable targets up in Dynatrace
//! and hands the results to [`add_value_drift`], which reports a value that is not the token
//! the target records, or no valid token at all (a hand-edited value next to a kept comment).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::analysis::{analyze, home_label, LiveIndex, TargetState};
use super::tenant::{open_rotation, tenant_target_state, TenantTargetState};
use super::types::{Reason, FORMAT_VERSION};
use crate::model::token::CLASSIC_PURGE_AFTER_EXPIRY;
use crate::model::{
    Desired, Holder, Home, LiveSnapshot, TargetAddress, TargetSnapshot, TokenId, TokenKey,
    TokenKind,
};

/// Every difference found, sorted by home, kind, key, reason and target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub format_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    pub items: Vec<DriftItem>,
}

impl DriftReport {
    pub fn has_drift(&self) -> bool {
        !self.items.is_empty()
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftItem {
    pub home: Home,
    pub kind: TokenKind,
    pub key: Option<TokenKey>,
    pub token: Option<TokenId>,
    pub target: Option<TargetAddress>,
    pub reason: Reason,
    /// What differs, in words (secret-free).
    pub detail: String,
}

/// Compare desired and live state. Tokens whose environment or account is not in the live
/// snapshot are skipped (the snapshot was filtered).
pub fn drift(
    desired: &Desired,
    live: &LiveSnapshot,
    targets: &TargetSnapshot,
    now: OffsetDateTime,
) -> DriftReport {
    let mut items = Vec::new();
    let index = LiveIndex::new(live);
    for d in &desired.tokens {
        let present = match &d.home {
            Home::Environment(e) => live.environments.contains_key(e),
            Home::Account(a) => live.accounts.contains_key(a),
        };
        if !present {
            continue;
        }
        let facts = analyze(d, live, &index, targets, now);
        let item =
            |token: Option<&TokenId>, target: Option<TargetAddress>, reason, detail| DriftItem {
                home: d.home.clone(),
                kind: d.kind,
                key: Some(d.key.clone()),
                token: token.cloned(),
                target,
                reason,
                detail,
            };
        let Some(current) = facts.current else {
            let reason = facts.absent_reason.unwrap_or(Reason::Missing);
            let newest = facts.generations.last().map(|(_, t)| &t.id);
            let detail = match reason {
                Reason::Missing => "declared in the spec but not live".to_owned(),
                Reason::DeletedOutsideGit => {
                    "deleted outside git; targets still record it".to_owned()
                }
                Reason::ExpiredAndPurged => format!(
                    "expired, and Dynatrace deleted it {} days later; targets still record it",
                    CLASSIC_PURGE_AFTER_EXPIRY.whole_days()
                ),
                Reason::DisabledOutsideGit => {
                    "the current generation was disabled outside git".to_owned()
                }
                Reason::Expired => "the current generation expired".to_owned(),
                Reason::MigratedToPlatform => {
                    "the key moved from a classic API token to a platform token; targets still hold the classic one".to_owned()
                }
                _ => "the newest generation reached no target".to_owned(),
            };
            items.push(item(newest, None, reason, detail));
            continue;
        };
        if let Some(change) = &facts.scope_change {
            let added: Vec<_> = change
                .from
                .difference(&change.to)
                .map(|s| s.as_str())
                .collect();
            let removed: Vec<_> = change
                .to
                .difference(&change.from)
                .map(|s| s.as_str())
                .collect();
            items.push(item(
                Some(&current.id),
                None,
                Reason::ScopesChanged,
                [("live has extra", added), ("live lacks", removed)]
                    .into_iter()
                    .filter(|(_, list)| !list.is_empty())
                    .map(|(what, list)| format!("{what} [{}]", list.join(", ")))
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
        if let Some(change) = &facts.name_change {
            items.push(item(
                Some(&current.id),
                None,
                Reason::NameChanged,
                format!("live name `{}`, spec wants `{}`", change.from, change.to),
            ));
        }
        if let Some(
            reason @ (Reason::ExpiryChanged
            | Reason::DetailsChanged
            | Reason::ScopesChanged
            | Reason::NameChanged),
        ) = facts.replace
        {
            items.push(item(
                Some(&current.id),
                None,
                reason,
                "differs from the spec in a way the API cannot update; plan replaces it".to_owned(),
            ));
        }
        if let Some(reason @ Reason::ExpiringIn { .. }) = facts.rotate {
            let expires = current
                .expires
                .map(super::draft::rfc3339)
                .unwrap_or_default();
            items.push(item(
                Some(&current.id),
                None,
                reason,
                format!("inside its rotation window; expires at {expires}"),
            ));
        }
        for t in &facts.targets {
            match t.state {
                TargetState::Holds(id) if id != &current.id => items.push(item(
                    Some(id),
                    Some(t.address.clone()),
                    Reason::TargetHoldsStaleToken,
                    format!("holds {id}, current is {}", current.id),
                )),
                TargetState::Empty => items.push(item(
                    None,
                    Some(t.address.clone()),
                    Reason::TargetMissing,
                    format!("holds no recorded token; current is {}", current.id),
                )),
                _ => {}
            }
        }
    }
    for tenant in &desired.tenant_tokens {
        let Some(env) = live.environments.get(&tenant.environment) else {
            continue;
        };
        if let Some(open) = open_rotation(tenant, live, targets, now) {
            let since = open
                .since
                .map_or_else(|| "an unknown time".to_owned(), super::draft::rfc3339);
            let due = open
                .finish_due
                .map(|d| format!("; finish due {}", super::draft::rfc3339(d)))
                .unwrap_or_default();
            let list = |a: &[TargetAddress]| {
                if a.is_empty() {
                    "none".to_owned()
                } else {
                    a.iter()
                        .map(|t| t.0.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            items.push(DriftItem {
                home: Home::Environment(tenant.environment.clone()),
                kind: TokenKind::TenantToken,
                key: None,
                token: None,
                target: None,
                reason: if open.started_by_tokensmith {
                    Reason::TenantRotationInProgress
                } else {
                    Reason::ForeignTenantRotation
                },
                detail: format!(
                    "a tenant token rotation is open since {since} ({}){due}; confirmed: {}; not confirmed: {}; next: {}",
                    if open.started_by_tokensmith { "started by tokensmith" } else { "started outside tokensmith" },
                    list(&open.confirmed),
                    list(&open.unconfirmed),
                    open.next
                ),
            });
        }
        let Some(active) = &env.tenant_token else {
            continue;
        };
        for t in tenant.activegates.iter().chain(&tenant.oneagents) {
            let address = t.address();
            let (state, _) = tenant_target_state(targets.holders.get(&address), active);
            let (reason, detail) = match state {
                TenantTargetState::Stale => (
                    Reason::TargetHoldsStaleToken,
                    format!("holds another tenant token than the active one ({active})"),
                ),
                TenantTargetState::Empty => {
                    (Reason::TargetMissing, "holds no tenant token".to_owned())
                }
                TenantTargetState::RestartOwed => (
                    Reason::TenantRestartOwed,
                    format!("holds the active tenant token ({active}), but its injected workloads were not restarted since the operator wrote it; apply restarts them"),
                ),
                _ => continue,
            };
            items.push(DriftItem {
                home: Home::Environment(tenant.environment.clone()),
                kind: TokenKind::TenantToken,
                key: None,
                token: None,
                target: Some(address),
                reason,
                detail,
            });
        }
    }
    sort(&mut items);
    DriftReport {
        format_version: FORMAT_VERSION,
        generated_at: now,
        items,
    }
}

fn sort(items: &mut [DriftItem]) {
    items.sort_by(|a, b| {
        (home_label(&a.home), a.kind, &a.key, a.reason, &a.target).cmp(&(
            home_label(&b.home),
            b.kind,
            &b.key,
            b.reason,
            &b.target,
        ))
    });
}

/// What looking up the value a target holds found (`POST /api/v2/apiTokens/lookup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueLookup {
    /// The value is this token.
    Token(TokenId),
    /// Dynatrace knows no token with this value.
    NoValidToken,
}

/// Report each looked-up target whose value is not the token the target records (its holder),
/// or no valid token at all. Targets without a lookup, or recording no token id, are skipped.
pub fn add_value_drift(
    report: &mut DriftReport,
    desired: &Desired,
    targets: &TargetSnapshot,
    lookups: &BTreeMap<TargetAddress, ValueLookup>,
) {
    for d in &desired.tokens {
        for t in &d.deliver {
            let address = t.address();
            let (Some(found), Some(Holder::Token { id: recorded, .. })) =
                (lookups.get(&address), targets.holders.get(&address))
            else {
                continue;
            };
            let (token, reason, detail) = match found {
                ValueLookup::Token(id) if id == recorded => continue,
                ValueLookup::Token(id) => (
                    Some(id.clone()),
                    Reason::TargetValueMismatch,
                    format!("the value is token {id}, but the target records {recorded}"),
                ),
                ValueLookup::NoValidToken => (
                    None,
                    Reason::TargetValueInvalid,
                    format!(
                        "the value is no valid token of {} (lookup found none), but the target records {recorded}",
                        home_label(&d.home)
                    ),
                ),
            };
            report.items.push(DriftItem {
                home: d.home.clone(),
                kind: d.kind,
                key: Some(d.key.clone()),
                token,
                target: Some(address),
                reason,
                detail,
            });
        }
    }
    sort(&mut report.items);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::*;

    #[test]
    fn looked_up_values_that_are_not_the_recorded_token_are_drift() {
        let (a, b) = (file("/etc/a"), file("/etc/b"));
        let recorded = TokenId::new("dt0c01.CUR");
        let w = World::new()
            .want(want_api("ci", "prod").deliver(a.clone()).deliver(b.clone()))
            .live(
                "prod",
                api("dt0c01.CUR", "ci [ts:ci#1]")
                    .lifetime(t0(), 30)
                    .scopes(&["metrics.ingest"]),
            )
            .holder(
                &a,
                Holder::Token {
                    id: recorded.clone(),
                    expires: None,
                },
            )
            .holder(
                &b,
                Holder::Token {
                    id: recorded.clone(),
                    expires: None,
                },
            );
        let mut report = drift(&w.desired, &w.live, &w.targets, w.now);
        assert!(!report.has_drift(), "{report:?}");
        let lookups = BTreeMap::from([
            (
                a.address(),
                ValueLookup::Token(TokenId::new("dt0c01.OTHER")),
            ),
            (b.address(), ValueLookup::Token(recorded)),
        ]);
        add_value_drift(&mut report, &w.desired, &w.targets, &lookups);
        assert_eq!(report.items.len(), 1, "{report:?}");
        assert_eq!(report.items[0].reason, Reason::TargetValueMismatch);
        assert_eq!(report.items[0].target, Some(a.address()));
        assert!(report.items[0].detail.contains("dt0c01.OTHER"));
    }
}

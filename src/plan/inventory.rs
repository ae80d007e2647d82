//! Inventory: every live token of every environment and account in the spec, classified, so
//! users can answer "which of my tokens can be deleted, which must be rotated".
//!
//! Classes: managed current (the newest usable generation of a key in the spec), managed
//! superseded (older generations), unmanaged in use, and unmanaged unused for longer than
//! `unmanaged.report_unused_after` (default [`DEFAULT_UNUSED_AFTER_DAYS`] days) — the deletion
//! candidates. Tokens with a marker whose key is not in the spec are unmanaged, except
//! tokensmith's system tokens (reserved `tokensmith.` keys: apply leases, open tenant
//! rotations), which are their own class, counted apart and never deletion candidates. Flags add:
//! expired, expiring soon (14 days), disabled, personal access token, over-privileged against
//! its preset (scopes beyond `Preset::scopes`), the management token. Without targets, the
//! current generation is the newest enabled, unexpired one.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::analysis::{analyze, home_label, LiveIndex};
use super::prune::unused_for;
use super::types::FORMAT_VERSION;
use crate::model::{
    system_token, Desired, Generation, Home, LiveSnapshot, LiveToken, Marker, Scope, SpecDuration,
    TargetSnapshot, TokenDetails, TokenId, TokenKey, TokenKind,
};

/// Unmanaged tokens unused this long are deletion candidates when the spec sets no policy.
pub const DEFAULT_UNUSED_AFTER_DAYS: i64 = 90;

/// Tokens expiring within this are flagged.
pub const EXPIRING_SOON: Duration = Duration::days(14);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub format_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The unused threshold applied.
    pub unused_after: SpecDuration,
    /// Sorted by home, kind, name and id.
    pub entries: Vec<InventoryEntry>,
    pub counts: InventoryCounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryEntry {
    pub home: Home,
    pub kind: TokenKind,
    pub id: TokenId,
    pub name: String,
    pub class: TokenClass,
    /// The marker's key and generation, when the name carries one.
    pub key: Option<TokenKey>,
    pub generation: Option<Generation>,
    pub flags: BTreeSet<TokenFlag>,
    pub owner: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used: Option<OffsetDateTime>,
    /// Scopes beyond the preset of the desired token (over-privileged).
    pub extra_scopes: BTreeSet<Scope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenClass {
    ManagedCurrent,
    ManagedSuperseded,
    UnmanagedInUse,
    /// A deletion candidate.
    UnmanagedUnused,
    /// tokensmith's own bookkeeping in the environment (an apply lease, an open tenant
    /// rotation): never managed, never a deletion candidate.
    System,
}

impl TokenClass {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenClass::ManagedCurrent => "managed current",
            TokenClass::ManagedSuperseded => "managed superseded",
            TokenClass::UnmanagedInUse => "unmanaged in use",
            TokenClass::UnmanagedUnused => "unmanaged unused (deletion candidate)",
            TokenClass::System => "tokensmith system",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenFlag {
    Expired,
    ExpiringSoon,
    Disabled,
    PersonalAccessToken,
    OverPrivileged,
    ManagementToken,
    /// Carries a marker whose key the spec does not declare.
    ForeignMarker,
}

impl TokenFlag {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFlag::Expired => "expired",
            TokenFlag::ExpiringSoon => "expiring soon",
            TokenFlag::Disabled => "disabled",
            TokenFlag::PersonalAccessToken => "personal",
            TokenFlag::OverPrivileged => "over-privileged",
            TokenFlag::ManagementToken => "management token",
            TokenFlag::ForeignMarker => "foreign marker",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryCounts {
    pub total: usize,
    pub managed_current: usize,
    pub managed_superseded: usize,
    pub unmanaged_in_use: usize,
    pub deletion_candidates: usize,
    pub expired: usize,
    pub expiring_soon: usize,
    pub personal: usize,
    pub over_privileged: usize,
    /// tokensmith's system tokens (apply leases, open tenant rotations), not in `total`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub system: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Classify every live token of the environments and accounts the spec names.
pub fn inventory(desired: &Desired, live: &LiveSnapshot, now: OffsetDateTime) -> Inventory {
    let unused_after = desired
        .unmanaged
        .report_unused_after
        .unwrap_or(SpecDuration::from_days(DEFAULT_UNUSED_AFTER_DAYS));
    let no_targets = TargetSnapshot::default();
    // Current ids and the desired token of each managed key.
    let index = LiveIndex::new(live);
    let mut current: BTreeSet<TokenId> = BTreeSet::new();
    for d in &desired.tokens {
        // Without target holders every target is unreadable, so "current" is the newest usable.
        let mut d = d.clone();
        d.deliver.clear();
        let facts = analyze(&d, live, &index, &no_targets, now);
        if let Some(c) = facts.current {
            current.insert(c.id.clone());
        }
    }

    let mut homes: Vec<(Home, Vec<&LiveToken>, Option<&TokenId>, OffsetDateTime)> = Vec::new();
    for (name, env) in &live.environments {
        if !desired.environments.contains_key(name) {
            continue;
        }
        let tokens = env
            .api_tokens
            .iter()
            .chain(&env.activegate_tokens)
            .collect();
        homes.push((
            Home::Environment(name.clone()),
            tokens,
            env.caller.as_ref(),
            env.server_time.unwrap_or(now),
        ));
    }
    for (name, account) in &live.accounts {
        if desired.accounts.contains_key(name) {
            homes.push((
                Home::Account(name.clone()),
                account.platform_tokens.iter().collect(),
                None,
                now,
            ));
        }
    }

    let mut entries = Vec::new();
    for (home, tokens, caller, now) in homes {
        for t in tokens {
            let marker = Marker::parse_name(&t.name);
            let spec = marker.as_ref().and_then(|m| {
                desired
                    .tokens
                    .iter()
                    .find(|d| d.home == home && d.kind == t.kind && d.key == m.key)
            });
            let system = marker
                .as_ref()
                .is_some_and(|m| system_token::is_reserved_key(m.key.as_str()));
            let class = match (spec, current.contains(&t.id)) {
                _ if system => TokenClass::System,
                (Some(_), true) => TokenClass::ManagedCurrent,
                (Some(_), false) => TokenClass::ManagedSuperseded,
                (None, _) if unused_for(t, unused_after, now) => TokenClass::UnmanagedUnused,
                (None, _) => TokenClass::UnmanagedInUse,
            };
            let mut flags = BTreeSet::new();
            match t.expires {
                Some(e) if e <= now => {
                    flags.insert(TokenFlag::Expired);
                }
                Some(e) if e <= now + EXPIRING_SOON => {
                    flags.insert(TokenFlag::ExpiringSoon);
                }
                _ => {}
            }
            if !t.enabled {
                flags.insert(TokenFlag::Disabled);
            }
            if t.personal_access_token {
                flags.insert(TokenFlag::PersonalAccessToken);
            }
            if Some(&t.id) == caller {
                flags.insert(TokenFlag::ManagementToken);
            }
            if marker.is_some() && spec.is_none() && !system {
                flags.insert(TokenFlag::ForeignMarker);
            }
            let extra_scopes: BTreeSet<Scope> = match spec.map(|d| &d.details) {
                Some(TokenDetails::Api {
                    preset: Some(preset),
                    ..
                }) => {
                    let allowed: BTreeSet<Scope> = preset.scopes().collect();
                    t.scopes.difference(&allowed).cloned().collect()
                }
                _ => BTreeSet::new(),
            };
            if !extra_scopes.is_empty() {
                flags.insert(TokenFlag::OverPrivileged);
            }
            entries.push(InventoryEntry {
                home: home.clone(),
                kind: t.kind,
                id: t.id.clone(),
                name: t.name.clone(),
                class,
                key: marker.as_ref().map(|m| m.key.clone()),
                generation: marker.as_ref().map(|m| m.generation),
                flags,
                owner: t.owner.clone(),
                expires: t.expires,
                last_used: t.last_used,
                extra_scopes,
            });
        }
    }
    entries.sort_by(|a, b| {
        (home_label(&a.home), a.kind, &a.name, &a.id).cmp(&(
            home_label(&b.home),
            b.kind,
            &b.name,
            &b.id,
        ))
    });
    let system = entries
        .iter()
        .filter(|e| e.class == TokenClass::System)
        .count();
    let mut counts = InventoryCounts {
        total: entries.len() - system,
        system,
        ..InventoryCounts::default()
    };
    for e in entries.iter().filter(|e| e.class != TokenClass::System) {
        match e.class {
            TokenClass::System => {}
            TokenClass::ManagedCurrent => counts.managed_current += 1,
            TokenClass::ManagedSuperseded => counts.managed_superseded += 1,
            TokenClass::UnmanagedInUse => counts.unmanaged_in_use += 1,
            TokenClass::UnmanagedUnused => counts.deletion_candidates += 1,
        }
        let has = |f| e.flags.contains(&f) as usize;
        counts.expired += has(TokenFlag::Expired);
        counts.expiring_soon += has(TokenFlag::ExpiringSoon);
        counts.personal += has(TokenFlag::PersonalAccessToken);
        counts.over_privileged += has(TokenFlag::OverPrivileged);
    }
    Inventory {
        format_version: FORMAT_VERSION,
        generated_at: now,
        unused_after,
        entries,
        counts,
    }
}

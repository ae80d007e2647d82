//! How each live token is classified: its status, its classes with their reasons and the one
//! recommendation that follows, for every environment and account the spec names.

use std::collections::{BTreeMap, BTreeSet};

use time::{Duration, OffsetDateTime};

use super::{
    day, Advice, Finding, Inventory, InventoryCounts, InventoryEntry, Recommendation, TokenClass,
    TokenStatus, DEFAULT_UNUSED_AFTER_DAYS, EXPIRING_SOON, INVENTORY_FORMAT_VERSION,
    MANAGEMENT_GRADE_SCOPES,
};
use crate::model::token::CLASSIC_PURGE_AFTER_EXPIRY;
use crate::model::{
    Desired, DesiredToken, Home, LiveSnapshot, LiveToken, Marker, Preset, Scope, ScopeSet,
    SpecDuration, TargetSnapshot, TokenDetails, TokenId, TokenKey, TokenKind,
};
use crate::plan::analysis::{analyze, home_label, LiveIndex};

/// Classify every live token of the environments and accounts the spec names.
pub fn inventory(desired: &Desired, live: &LiveSnapshot, now: OffsetDateTime) -> Inventory {
    let unused_after = desired
        .unmanaged
        .report_unused_after
        .unwrap_or(SpecDuration::from_days(DEFAULT_UNUSED_AFTER_DAYS));
    let no_targets = TargetSnapshot::default();
    // Current ids of the managed keys.
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
    let mut system = 0;
    for (home, tokens, caller, now) in homes {
        // tokensmith's own system tokens (apply leases, an open rotation's record) are counted
        // apart: never managed, never a deletion candidate.
        let (own, tokens): (Vec<&LiveToken>, Vec<&LiveToken>) = tokens
            .into_iter()
            .partition(|t| is_system_token(Marker::parse_name(&t.name).as_ref()));
        system += own.len();
        let mut home_entries: Vec<InventoryEntry> = tokens
            .into_iter()
            .map(|t| {
                let marker = Marker::parse_name(&t.name);
                let spec = marker.as_ref().and_then(|m| {
                    desired
                        .tokens
                        .iter()
                        .find(|d| d.home == home && d.kind == t.kind && d.key == m.key)
                });
                let status = match spec {
                    Some(_) if current.contains(&t.id) => TokenStatus::ManagedCurrent,
                    Some(_) => TokenStatus::ManagedSuperseded,
                    None => TokenStatus::Unmanaged,
                };
                let facts = Facts {
                    token: t,
                    spec,
                    is_caller: Some(&t.id) == caller,
                    foreign_key: marker.as_ref().filter(|_| spec.is_none()).map(|m| &m.key),
                    unused_after,
                    now,
                };
                let findings = facts.findings();
                InventoryEntry {
                    home: home.clone(),
                    kind: t.kind,
                    id: t.id.clone(),
                    name: t.name.clone(),
                    status,
                    key: marker.as_ref().map(|m| m.key.clone()),
                    generation: marker.as_ref().map(|m| m.generation),
                    owner: t.owner.clone(),
                    enabled: t.enabled,
                    personal_access_token: t.personal_access_token,
                    scopes: t.scopes.clone(),
                    created: t.created,
                    last_used: t.last_used,
                    last_used_from: t.last_used_from.clone(),
                    expires: t.expires,
                    purge_at: facts.purge_at(),
                    classes: findings.iter().map(|f| f.class).collect(),
                    findings,
                    // Decided below, once duplicates are known.
                    recommendation: Recommendation {
                        action: Advice::Keep,
                        why: String::new(),
                    },
                    schedule: Vec::new(),
                }
            })
            .collect();
        let keep_instead = mark_duplicates(&mut home_entries);
        for (i, e) in home_entries.iter_mut().enumerate() {
            e.recommendation = recommend(e, keep_instead.get(&i), unused_after, now);
        }
        entries.extend(home_entries);
    }
    entries.sort_by(|a, b| {
        (home_label(&a.home), a.kind, &a.name, &a.id).cmp(&(
            home_label(&b.home),
            b.kind,
            &b.name,
            &b.id,
        ))
    });
    Inventory {
        format_version: INVENTORY_FORMAT_VERSION,
        generated_at: now,
        unused_after,
        filter: None,
        counts: InventoryCounts {
            system,
            ..InventoryCounts::of(&entries)
        },
        entries,
    }
}

/// What one token's classes are decided from.
struct Facts<'a> {
    token: &'a LiveToken,
    spec: Option<&'a DesiredToken>,
    is_caller: bool,
    foreign_key: Option<&'a TokenKey>,
    unused_after: SpecDuration,
    now: OffsetDateTime,
}

impl Facts<'_> {
    fn purge_at(&self) -> Option<OffsetDateTime> {
        let t = self.token;
        match t.expires {
            Some(e) if t.kind == TokenKind::ApiToken && e <= self.now => {
                Some(e + CLASSIC_PURGE_AFTER_EXPIRY)
            }
            _ => None,
        }
    }

    fn findings(&self) -> Vec<Finding> {
        let t = self.token;
        let now = self.now;
        let mut out = Vec::new();
        let mut add = |class, reason: String| out.push(Finding { class, reason });
        match t.expires {
            Some(e) if e <= now => {
                let mut reason = format!("expired on {}", day(e));
                if let Some(purge) = self.purge_at() {
                    if purge <= now {
                        reason.push_str(&format!(
                            "; Dynatrace deletes expired classic tokens {} days after expiry, so it is due to disappear (since {})",
                            CLASSIC_PURGE_AFTER_EXPIRY.whole_days(),
                            day(purge)
                        ));
                    } else {
                        reason.push_str(&format!(
                            "; Dynatrace deletes it on {} ({} days after expiry)",
                            day(purge),
                            CLASSIC_PURGE_AFTER_EXPIRY.whole_days()
                        ));
                    }
                }
                add(TokenClass::Expired, reason);
            }
            Some(e) if e <= now + EXPIRING_SOON => add(
                TokenClass::ExpiringSoon,
                format!(
                    "expires on {} (in {} days)",
                    day(e),
                    days_ceil(e - now).max(0)
                ),
            ),
            _ => {}
        }
        match (t.last_used, t.created) {
            (None, Some(created)) => add(
                TokenClass::NeverUsed,
                format!("never used since it was created on {}", day(created)),
            ),
            (None, None) => add(TokenClass::NeverUsed, "never used".to_owned()),
            (Some(used), _) if used + self.unused_after.to_time() <= now => add(
                TokenClass::Unused,
                format!(
                    "unused for {} days (last used on {}{}), longer than {}",
                    (now - used).whole_days(),
                    day(used),
                    from(t),
                    self.unused_after
                ),
            ),
            _ => {}
        }
        if let Some(reason) = self.over_privileged() {
            add(TokenClass::OverPrivileged, reason);
        }
        if !t.enabled {
            add(TokenClass::Disabled, "disabled".to_owned());
        }
        if t.personal_access_token {
            add(
                TokenClass::Personal,
                format!(
                    "a personal access token of {}",
                    t.owner.as_deref().unwrap_or("an unknown owner")
                ),
            );
        }
        if self.is_caller {
            add(
                TokenClass::ManagementToken,
                "the token tokensmith authenticates with".to_owned(),
            );
        }
        if let Some(key) = self.foreign_key {
            add(
                TokenClass::ForeignMarker,
                format!("named like tokensmith's `{key}`, which this spec does not declare"),
            );
        }
        out
    }

    /// Why the token holds more than it needs, if it does.
    fn over_privileged(&self) -> Option<String> {
        let t = self.token;
        if t.kind != TokenKind::ApiToken || self.is_caller {
            return None;
        }
        // What the spec grants a managed token (its scopes and its preset's) is intended.
        let granted: ScopeSet = match self.spec {
            Some(d) => {
                let preset = match &d.details {
                    TokenDetails::Api {
                        preset: Some(p), ..
                    } => Some(*p),
                    _ => None,
                };
                d.scopes
                    .iter()
                    .cloned()
                    .chain(preset.into_iter().flat_map(Preset::scopes))
                    .collect()
            }
            None => ScopeSet::new(),
        };
        let mut reasons = Vec::new();
        let management: Vec<&str> = t
            .scopes
            .iter()
            .filter(|s| MANAGEMENT_GRADE_SCOPES.contains(&s.as_str()) && !granted.contains(s))
            .map(|s| s.as_str())
            .collect();
        if !management.is_empty() {
            reasons.push(format!(
                "management-grade scopes {} on a token that is not the management token",
                management.join(", ")
            ));
        }
        let beyond: Vec<&str> = if self.spec.is_some() {
            t.scopes
                .iter()
                .filter(|s| !granted.contains(s) && !management.contains(&s.as_str()))
                .map(|s| s.as_str())
                .collect()
        } else if let Some(looks) = looks_like(t) {
            let presets: ScopeSet = [Preset::DynatraceOperator, Preset::DataIngest, Preset::Paas]
                .into_iter()
                .flat_map(Preset::scopes)
                .collect();
            let beyond: Vec<&str> = t
                .scopes
                .iter()
                .filter(|s| !presets.contains(s) && !management.contains(&s.as_str()))
                .map(|s| s.as_str())
                .collect();
            if !beyond.is_empty() {
                reasons.push(format!(
                    "looks like {looks} but holds scopes beyond every preset: {}",
                    beyond.join(", ")
                ));
            }
            Vec::new()
        } else {
            Vec::new()
        };
        if !beyond.is_empty() {
            reasons.push(format!("scopes beyond the spec: {}", beyond.join(", ")));
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

/// "an installer token" or "an ingest token" when the name or scopes say so.
fn looks_like(t: &LiveToken) -> Option<&'static str> {
    let name = t.name.to_lowercase();
    let has = |s: &str| t.scopes.iter().any(|x| x.as_str() == s);
    if has("InstallerDownload")
        || ["paas", "installer", "operator", "oneagent", "activegate"]
            .iter()
            .any(|w| name.contains(w))
    {
        Some("an installer token")
    } else if t.scopes.iter().any(|s| s.as_str().ends_with(".ingest"))
        || ["ingest", "otel", "collector"]
            .iter()
            .any(|w| name.contains(w))
    {
        Some("an ingest token")
    } else {
        None
    }
}

/// Tokens of one home with the same kind, owner and scopes. Superseded generations of one key
/// share scopes with their successor by design and are left out. Returns, for each duplicate
/// that is not the one to keep, the id of the one to keep.
fn mark_duplicates(entries: &mut [InventoryEntry]) -> BTreeMap<usize, TokenId> {
    let mut keep_instead = BTreeMap::new();
    let mut groups: BTreeMap<(TokenKind, Option<String>, Vec<Scope>), Vec<usize>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if e.status == TokenStatus::ManagedSuperseded || e.scopes.is_empty() {
            continue;
        }
        groups
            .entry((e.kind, e.owner.clone(), e.scopes.iter().cloned().collect()))
            .or_default()
            .push(i);
    }
    for members in groups.values().filter(|m| m.len() > 1) {
        // The one to keep: the managed one, else the most recently used, else the newest.
        let keeper = *members
            .iter()
            .max_by_key(|&&i| {
                let e = &entries[i];
                (
                    e.status == TokenStatus::ManagedCurrent,
                    e.enabled && !e.has(TokenClass::Expired),
                    e.last_used,
                    e.created,
                    std::cmp::Reverse(e.id.clone()),
                )
            })
            .expect("groups are not empty");
        for &i in members {
            let others: Vec<&str> = members
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| entries[j].id.as_str())
                .collect();
            let mut reason = format!("same owner and scopes as {}", others.join(", "));
            if i != keeper {
                reason.push_str(&format!("; {} is the one to keep", entries[keeper].id));
                keep_instead.insert(i, entries[keeper].id.clone());
            }
            let e = &mut entries[i];
            e.classes.insert(TokenClass::Duplicate);
            e.findings.push(Finding {
                class: TokenClass::Duplicate,
                reason,
            });
            e.findings.sort_by_key(|f| f.class);
        }
    }
    keep_instead
}

/// The one thing to do with a token, most urgent first: delete, rotate, narrow, keep.
fn recommend(
    e: &InventoryEntry,
    keep_instead: Option<&TokenId>,
    unused_after: SpecDuration,
    now: OffsetDateTime,
) -> Recommendation {
    let r = |action, why: String| Recommendation { action, why };
    let expires = e.expires.map(day).unwrap_or_default();
    if e.has(TokenClass::ManagementToken) {
        if e.has(TokenClass::Expired) || e.has(TokenClass::ExpiringSoon) {
            return r(
                Advice::Rotate,
                format!("tokensmith authenticates with it and it expires on {expires}: create a new management token and update the environment variable the spec names"),
            );
        }
        return r(Advice::Keep, "tokensmith authenticates with it".to_owned());
    }
    match e.status {
        TokenStatus::ManagedSuperseded => {
            return r(
                Advice::Keep,
                "an older generation: tokensmith disables and deletes it after its grace (`tokensmith plan` shows when)".to_owned(),
            );
        }
        TokenStatus::ManagedCurrent => {
            let key = e.key.as_ref().map(|k| k.to_string()).unwrap_or_default();
            if e.has(TokenClass::Expired) {
                return r(
                    Advice::Rotate,
                    format!("expired on {expires}: `tokensmith apply` creates a successor for `{key}` and delivers it"),
                );
            }
            if e.has(TokenClass::Disabled) {
                return r(
                    Advice::Rotate,
                    format!("disabled outside git: `tokensmith apply` replaces `{key}`"),
                );
            }
            if e.has(TokenClass::ExpiringSoon) {
                return r(
                    Advice::Rotate,
                    format!(
                        "expires on {expires}: `tokensmith apply` rotates `{key}` without downtime"
                    ),
                );
            }
            if e.has(TokenClass::OverPrivileged) {
                return r(
                    Advice::Narrow,
                    format!("`tokensmith apply` sets the scopes the spec declares for `{key}`"),
                );
            }
            return r(Advice::Keep, format!("managed by tokensmith as `{key}`"));
        }
        TokenStatus::Unmanaged => {}
    }
    if e.has(TokenClass::Expired) {
        let purge = e
            .purge_at
            .map(|p| format!("; Dynatrace deletes it on {} anyway", day(p)))
            .unwrap_or_default();
        return r(
            Advice::Delete,
            format!("expired on {expires}: nothing can use it any more{purge}"),
        );
    }
    if e.has(TokenClass::Disabled) {
        return r(
            Advice::Delete,
            "disabled: nothing can use it; delete it unless you plan to enable it again".to_owned(),
        );
    }
    if e.has(TokenClass::NeverUsed) {
        let old_enough = e.created.is_none_or(|c| c + unused_after.to_time() <= now);
        if old_enough {
            return r(
                Advice::Delete,
                "nothing has used it since it was created: delete it".to_owned(),
            );
        }
    }
    if e.has(TokenClass::Unused) {
        return r(
            Advice::Delete,
            format!("nothing has used it for longer than {unused_after}: delete it"),
        );
    }
    if let Some(keep) = keep_instead {
        return r(
            Advice::Delete,
            format!("a duplicate of {keep}, the one to keep: move this token's consumers to {keep}, then delete this one"),
        );
    }
    if e.has(TokenClass::OverPrivileged) {
        return r(
            Advice::Narrow,
            "create a token with only the scopes its consumer needs (a preset), move the consumer to it, then delete this one".to_owned(),
        );
    }
    if e.has(TokenClass::ExpiringSoon) {
        return r(
            Advice::Rotate,
            format!("in use and expires on {expires}: adopt it in the spec (`adopt: {}`) so tokensmith rotates it, or replace it by hand", e.id),
        );
    }
    if e.has(TokenClass::NeverUsed) {
        return r(
            Advice::Keep,
            format!("created recently and not used yet; it becomes a deletion candidate after {unused_after} unused"),
        );
    }
    match e.last_used {
        Some(used) => r(
            Advice::Keep,
            format!("in use (last used on {}{})", day(used), from_entry(e)),
        ),
        None => r(Advice::Keep, "nothing against it".to_owned()),
    }
}

fn days_ceil(d: Duration) -> i64 {
    let secs = d.whole_seconds();
    secs.div_euclid(86_400) + i64::from(secs.rem_euclid(86_400) != 0)
}

fn from(t: &LiveToken) -> String {
    t.last_used_from
        .as_deref()
        .map(|ip| format!(" from {ip}"))
        .unwrap_or_default()
}

fn from_entry(e: &InventoryEntry) -> String {
    e.last_used_from
        .as_deref()
        .map(|ip| format!(" from {ip}"))
        .unwrap_or_default()
}

/// System tokens (the apply lease, the tenant rotation record: `model::system_token`) are
/// tokensmith's own bookkeeping, neither managed nor unmanaged: never listed.
fn is_system_token(marker: Option<&Marker>) -> bool {
    marker.is_some_and(|m| crate::model::system_token::is_reserved_key(m.key.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::inventory::{ClassFilter, InventoryFilter};
    use crate::plan::testing::*;

    fn entry<'a>(inv: &'a Inventory, id: &str) -> &'a InventoryEntry {
        inv.entries
            .iter()
            .find(|e| e.id.as_str() == id)
            .unwrap_or_else(|| panic!("{id} not in the inventory"))
    }

    #[test]
    fn admin_scopes_on_an_unmanaged_token_are_over_privileged() {
        let w = World::new().at(t0() + days(10)).live(
            "prod",
            api("dt0c01.ADMIN", "admin all scopes")
                .last_used(t0() + days(9))
                .scopes(&[
                    "apiTokens.read",
                    "apiTokens.write",
                    "WriteConfig",
                    "tenantTokenRotation.write",
                    "metrics.read",
                ]),
        );
        let inv = inventory(&w.desired, &w.live, w.now);
        let e = entry(&inv, "dt0c01.ADMIN");
        assert!(e.has(TokenClass::OverPrivileged), "{e:?}");
        assert!(e.findings[0].reason.contains("apiTokens.write"), "{e:?}");
        assert_eq!(e.recommendation.action, Advice::Narrow);
        assert_eq!(inv.counts.class(TokenClass::OverPrivileged), 1);
    }

    #[test]
    fn the_management_token_is_not_over_privileged() {
        let w = World::new()
            .at(t0() + days(10))
            .live(
                "prod",
                api("dt0c01.MGMT", "tokensmith")
                    .last_used(t0() + days(9))
                    .scopes(&["apiTokens.read", "apiTokens.write"]),
            )
            .caller("prod", "dt0c01.MGMT");
        let inv = inventory(&w.desired, &w.live, w.now);
        let e = entry(&inv, "dt0c01.MGMT");
        assert!(!e.has(TokenClass::OverPrivileged), "{e:?}");
        assert!(e.has(TokenClass::ManagementToken));
        assert_eq!(e.recommendation.action, Advice::Keep);
    }

    #[test]
    fn an_expired_token_in_recent_use_is_expired_with_its_purge_date() {
        let w = World::new().at(t0() + days(10)).live(
            "prod",
            api("dt0c01.OLD", "old export")
                .expires(t0() + days(8))
                .last_used(t0() + days(7)),
        );
        let inv = inventory(&w.desired, &w.live, w.now);
        let e = entry(&inv, "dt0c01.OLD");
        assert!(e.has(TokenClass::Expired), "{e:?}");
        assert_eq!(e.purge_at, Some(t0() + days(15)));
        assert!(e.findings[0].reason.contains("2026-01-16"), "{e:?}");
        assert_eq!(e.recommendation.action, Advice::Delete);
    }

    #[test]
    fn installer_tokens_with_scopes_beyond_every_preset_are_over_privileged() {
        let w = World::new().at(t0() + days(10)).live(
            "prod",
            api("dt0c01.PAAS", "PaaS token")
                .last_used(t0() + days(9))
                .scopes(&["InstallerDownload", "entities.read"]),
        );
        let inv = inventory(&w.desired, &w.live, w.now);
        let e = entry(&inv, "dt0c01.PAAS");
        assert!(e.has(TokenClass::OverPrivileged), "{e:?}");
        assert!(e.findings[0].reason.contains("entities.read"), "{e:?}");
    }

    #[test]
    fn duplicates_keep_the_most_recently_used() {
        let w = World::new()
            .at(t0() + days(10))
            .live(
                "prod",
                api("dt0c01.A", "PaaS token")
                    .last_used(t0() + days(9))
                    .scopes(&["InstallerDownload"]),
            )
            .live(
                "prod",
                api("dt0c01.B", "PaaS token")
                    .last_used(t0() + days(5))
                    .scopes(&["InstallerDownload"]),
            );
        let inv = inventory(&w.desired, &w.live, w.now);
        let (a, b) = (entry(&inv, "dt0c01.A"), entry(&inv, "dt0c01.B"));
        assert!(a.has(TokenClass::Duplicate) && b.has(TokenClass::Duplicate));
        assert_eq!(a.recommendation.action, Advice::Keep, "{a:?}");
        assert_eq!(b.recommendation.action, Advice::Delete, "{b:?}");
        assert!(b.recommendation.why.contains("dt0c01.A"), "{b:?}");
        assert!(b
            .findings
            .iter()
            .any(|f| f.reason.contains("dt0c01.A is the one to keep")));
    }

    #[test]
    fn filters_by_class_and_owner() {
        let w = World::new()
            .at(t0() + days(200))
            .live("prod", api("dt0c01.A", "a").owner("jane@example.com"))
            .live(
                "prod",
                api("dt0c01.B", "b")
                    .owner("bob@example.com")
                    .last_used(t0() + days(199)),
            );
        let inv = inventory(&w.desired, &w.live, w.now);
        let never = inv.clone().filtered(&InventoryFilter {
            classes: vec![ClassFilter::Class(TokenClass::NeverUsed)],
            owner: None,
        });
        assert_eq!(never.entries.len(), 1);
        assert_eq!(never.entries[0].id.as_str(), "dt0c01.A");
        assert_eq!(never.counts.total, 1);
        let bob = inv.filtered(&InventoryFilter {
            classes: Vec::new(),
            owner: Some("BOB".into()),
        });
        assert_eq!(bob.entries.len(), 1);
        assert_eq!(bob.entries[0].id.as_str(), "dt0c01.B");
        assert!(bob.filter.unwrap().contains("bob".to_uppercase().as_str()));
    }
}

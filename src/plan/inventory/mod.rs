//! Inventory: every live token of every environment and account in the spec, with what it is,
//! what is wrong with it and what to do about it, so users can answer "which of my tokens can
//! be deleted, which must be rotated, which hold more than they need".
//!
//! Each entry has a status (managed current, managed superseded, unmanaged), classes with a
//! reason each ([`Finding`]: expired with Dynatrace's purge date for classic tokens, expiring
//! soon, never used, unused for longer than `unmanaged.report_unused_after`, over-privileged,
//! duplicate, disabled, personal, the management token, a foreign marker) and one
//! [`Recommendation`]: delete, rotate, narrow or keep, with why. [`add_schedule`] adds the
//! coming rotations and retirements from a plan over the same inputs (for the HTML timeline).
//!
//! This module decides; it does not render (see `crate::render`) and reads nothing itself. The
//! types are here; `classify` builds the inventory from the live tokens, `schedule` adds a
//! plan's forecast.

mod classify;
mod schedule;

pub use classify::inventory;
pub use schedule::add_schedule;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::model::{Generation, Home, ScopeSet, SpecDuration, TokenId, TokenKey, TokenKind};

/// The version of the inventory's JSON form (2: classes with reasons, recommendations, scopes).
pub const INVENTORY_FORMAT_VERSION: u32 = 2;

/// Unmanaged tokens unused this long are deletion candidates when the spec sets no policy.
pub const DEFAULT_UNUSED_AFTER_DAYS: i64 = 90;

/// Tokens expiring within this are flagged.
pub const EXPIRING_SOON: Duration = Duration::days(14);

/// Scopes that manage tokens or configuration: on any token but the management token they
/// turn a leak into a takeover.
pub const MANAGEMENT_GRADE_SCOPES: &[&str] = &[
    "apiTokens.write",
    "WriteConfig",
    "settings.write",
    "tenantTokenRotation.write",
    "TenantTokenManagement",
    "activeGateTokenManagement.write",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub format_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The unused threshold applied.
    pub unused_after: SpecDuration,
    /// The filter applied (`--class`, `--owner`), in words; `None` = every token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
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
    pub status: TokenStatus,
    /// The marker's key and generation, when the name carries one.
    pub key: Option<TokenKey>,
    pub generation: Option<Generation>,
    pub owner: Option<String>,
    pub enabled: bool,
    pub personal_access_token: bool,
    pub scopes: ScopeSet,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used: Option<OffsetDateTime>,
    /// The address of the last use (API tokens).
    pub last_used_from: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires: Option<OffsetDateTime>,
    /// When Dynatrace deletes this expired classic token on its own.
    #[serde(with = "time::serde::rfc3339::option")]
    pub purge_at: Option<OffsetDateTime>,
    pub classes: BTreeSet<TokenClass>,
    /// One reason per class, in class order.
    pub findings: Vec<Finding>,
    pub recommendation: Recommendation,
    /// Coming rotations and retirements (from a plan, see [`add_schedule`]), sorted by time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<LifeEvent>,
}

impl InventoryEntry {
    pub fn has(&self, class: TokenClass) -> bool {
        self.classes.contains(&class)
    }
}

/// Whether tokensmith manages the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    /// The generation of a spec key that targets should hold.
    ManagedCurrent,
    /// An older generation of a spec key, retired by tokensmith after its grace.
    ManagedSuperseded,
    /// Not in the spec (possibly with a marker of a key the spec does not declare).
    Unmanaged,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::ManagedCurrent => "managed",
            TokenStatus::ManagedSuperseded => "managed, superseded",
            TokenStatus::Unmanaged => "unmanaged",
        }
    }
}

/// What is notable about a token. A token may be in several classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenClass {
    Expired,
    ExpiringSoon,
    NeverUsed,
    /// Last used longer ago than the unused threshold.
    Unused,
    OverPrivileged,
    /// Same home, kind, owner and scopes as another token.
    Duplicate,
    Disabled,
    Personal,
    /// The token tokensmith authenticates with.
    ManagementToken,
    /// Carries a marker whose key the spec does not declare.
    ForeignMarker,
}

impl TokenClass {
    pub const ALL: [TokenClass; 10] = [
        TokenClass::Expired,
        TokenClass::ExpiringSoon,
        TokenClass::NeverUsed,
        TokenClass::Unused,
        TokenClass::OverPrivileged,
        TokenClass::Duplicate,
        TokenClass::Disabled,
        TokenClass::Personal,
        TokenClass::ManagementToken,
        TokenClass::ForeignMarker,
    ];

    /// The name used in output and on the command line (`--class never-used`).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenClass::Expired => "expired",
            TokenClass::ExpiringSoon => "expiring-soon",
            TokenClass::NeverUsed => "never-used",
            TokenClass::Unused => "unused",
            TokenClass::OverPrivileged => "over-privileged",
            TokenClass::Duplicate => "duplicate",
            TokenClass::Disabled => "disabled",
            TokenClass::Personal => "personal",
            TokenClass::ManagementToken => "management-token",
            TokenClass::ForeignMarker => "foreign-marker",
        }
    }
}

/// One class of a token and why it is in it, in words (secret-free).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub class: TokenClass,
    pub reason: String,
}

/// What to do with a token: the recommended action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Advice {
    Delete,
    Rotate,
    Narrow,
    Keep,
}

impl Advice {
    pub const ALL: [Advice; 4] = [Advice::Delete, Advice::Rotate, Advice::Narrow, Advice::Keep];

    pub fn as_str(self) -> &'static str {
        match self {
            Advice::Delete => "delete",
            Advice::Rotate => "rotate",
            Advice::Narrow => "narrow",
            Advice::Keep => "keep",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    pub action: Advice,
    /// Why, and how, in words.
    pub why: String,
}

/// A coming event in a token's life, taken from a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifeEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub kind: LifeEventKind,
    /// What happens, in words.
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifeEventKind {
    /// A successor is created and delivered.
    Rotation,
    /// The grace ends: the token is disabled (or deleted, with `revoke: delete`).
    GraceEnds,
    /// The token is deleted.
    Revocation,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryCounts {
    /// Tokens in the inventory; tokensmith's system tokens are not among them.
    pub total: usize,
    /// tokensmith's system tokens (apply leases, open tenant rotations), counted apart.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub system: usize,
    pub managed: usize,
    pub superseded: usize,
    pub unmanaged: usize,
    /// Per class (by [`TokenClass::as_str`]).
    pub classes: BTreeMap<String, usize>,
    /// Per recommended action (by [`Advice::as_str`]).
    pub actions: BTreeMap<String, usize>,
}

impl InventoryCounts {
    fn of(entries: &[InventoryEntry]) -> InventoryCounts {
        let mut c = InventoryCounts {
            total: entries.len(),
            ..InventoryCounts::default()
        };
        for class in TokenClass::ALL {
            c.classes.insert(class.as_str().to_owned(), 0);
        }
        for action in Advice::ALL {
            c.actions.insert(action.as_str().to_owned(), 0);
        }
        for e in entries {
            match e.status {
                TokenStatus::ManagedCurrent => c.managed += 1,
                TokenStatus::ManagedSuperseded => c.superseded += 1,
                TokenStatus::Unmanaged => c.unmanaged += 1,
            }
            for class in &e.classes {
                *c.classes.entry(class.as_str().to_owned()).or_default() += 1;
            }
            *c.actions
                .entry(e.recommendation.action.as_str().to_owned())
                .or_default() += 1;
        }
        c
    }

    /// How many tokens are in `class`.
    pub fn class(&self, class: TokenClass) -> usize {
        self.classes.get(class.as_str()).copied().unwrap_or(0)
    }

    /// How many tokens are recommended `action`.
    pub fn action(&self, action: Advice) -> usize {
        self.actions.get(action.as_str()).copied().unwrap_or(0)
    }
}

/// What `--class` may name: a class, or a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassFilter {
    Class(TokenClass),
    Status(TokenStatus),
}

impl ClassFilter {
    fn matches(self, e: &InventoryEntry) -> bool {
        match self {
            ClassFilter::Class(c) => e.has(c),
            ClassFilter::Status(s) => e.status == s,
        }
    }

    fn label(self) -> &'static str {
        match self {
            ClassFilter::Class(c) => c.as_str(),
            ClassFilter::Status(TokenStatus::ManagedCurrent) => "managed",
            ClassFilter::Status(TokenStatus::ManagedSuperseded) => "superseded",
            ClassFilter::Status(TokenStatus::Unmanaged) => "unmanaged",
        }
    }
}

/// Which tokens to show: any of `classes` (empty = all), owned by `owner` (case-insensitive
/// substring; `None` = any owner).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryFilter {
    pub classes: Vec<ClassFilter>,
    pub owner: Option<String>,
}

impl Inventory {
    /// Only the entries `filter` selects, with counts over them.
    pub fn filtered(mut self, filter: &InventoryFilter) -> Inventory {
        if filter.classes.is_empty() && filter.owner.is_none() {
            return self;
        }
        let owner = filter.owner.as_ref().map(|o| o.to_lowercase());
        self.entries.retain(|e| {
            (filter.classes.is_empty() || filter.classes.iter().any(|c| c.matches(e)))
                && owner.as_ref().is_none_or(|o| {
                    e.owner
                        .as_ref()
                        .is_some_and(|have| have.to_lowercase().contains(o.as_str()))
                })
        });
        let mut words = Vec::new();
        if !filter.classes.is_empty() {
            let names: Vec<&str> = filter.classes.iter().map(|c| c.label()).collect();
            words.push(format!("class {}", names.join(" or ")));
        }
        if let Some(o) = &filter.owner {
            words.push(format!("owner contains `{o}`"));
        }
        self.filter = Some(words.join(", "));
        self.counts = InventoryCounts {
            system: self.counts.system,
            ..InventoryCounts::of(&self.entries)
        };
        self
    }
}

/// A date as `YYYY-MM-DD`.
pub fn day(t: OffsetDateTime) -> String {
    t.date().to_string()
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

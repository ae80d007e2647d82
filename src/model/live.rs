//! What was read from Dynatrace and from the targets: the planner's view of the world.
//!
//! A snapshot holds metadata only, never a secret. The tenant token is represented by its
//! fingerprint. Fields Dynatrace may omit are `Option`s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::desired::{AccountName, ActiveGateType};
use super::scope_set::ScopeSet;
use super::target::{Holder, TargetAddress};
use super::token::{EnvName, TokenId, TokenKind};

/// Live state of every environment and account the spec names.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LiveSnapshot {
    pub environments: BTreeMap<EnvName, LiveEnvironment>,
    pub accounts: BTreeMap<AccountName, LiveAccount>,
}

/// One environment's tokens.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LiveEnvironment {
    /// The id of the management token tokensmith authenticates with (from `apiTokens/lookup`).
    /// The planner never revokes, disables or narrows it.
    pub caller: Option<TokenId>,
    pub api_tokens: Vec<LiveToken>,
    pub activegate_tokens: Vec<LiveToken>,
    /// Fingerprint of the active tenant token from `connectioninfo`, when readable.
    pub tenant_token: Option<String>,
    /// Whether a tenant token rotation is open, from `tenantTokenRotation/status`: `None` when
    /// not read (the spec manages no tenant token there) or when the environment has no such
    /// endpoint (older versions); then the rotation record alone tells (`plan::tenant_record`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_rotation_active: Option<bool>,
    /// The environment's clock, from the `Date` header of its responses. The planner's "now"
    /// comes from here when present, so a sandbox whose clock was advanced plans accordingly.
    #[serde(with = "time::serde::rfc3339::option")]
    pub server_time: Option<OffsetDateTime>,
}

/// One account's platform tokens.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LiveAccount {
    pub platform_tokens: Vec<LiveToken>,
    /// The account API's (or its token endpoint's) clock, from the `Date` header. Used as "now"
    /// for the account's tokens, and for the whole plan when no environment is read.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub server_time: Option<OffsetDateTime>,
}

/// Metadata of one live token of any kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveToken {
    pub kind: TokenKind,
    pub id: TokenId,
    pub name: String,
    /// API tokens: `enabled`; platform tokens: status ACTIVE; ActiveGate tokens: always true.
    pub enabled: bool,
    pub owner: Option<String>,
    pub personal_access_token: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub modified: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires: Option<OffsetDateTime>,
    /// Volatile: excluded from plan fingerprints.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used: Option<OffsetDateTime>,
    /// Where the last use came from (API tokens: `lastUsedIpAddress`). Volatile, like
    /// `last_used`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_from: Option<String>,
    pub scopes: ScopeSet,
    pub activegate_type: Option<ActiveGateType>,
    pub seed: bool,
    /// Platform tokens: `urn:dtenvironment:…` / `urn:dtaccount:…`.
    pub resources: Vec<String>,
}

/// Which token each target holds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TargetSnapshot {
    pub holders: BTreeMap<TargetAddress, Holder>,
}

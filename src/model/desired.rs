//! The desired state: what the spec declares, after `for_each` expansion, templating, presets
//! and defaults. This is what the planner consumes; it holds no secret and no spec syntax.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::duration::SpecDuration;
use super::policy::Policy;
use super::preset::Preset;
use super::scope_set::ScopeSet;
use super::target::Target;
use super::token::{EnvName, TokenId, TokenKey, TokenKind};

/// Everything the spec asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    pub environments: BTreeMap<EnvName, Environment>,
    pub accounts: BTreeMap<AccountName, Account>,
    /// API, ActiveGate and platform tokens, one entry per (key, home).
    pub tokens: Vec<DesiredToken>,
    /// At most one per environment.
    pub tenant_tokens: Vec<DesiredTenantToken>,
    pub unmanaged: UnmanagedPolicy,
}

impl Desired {
    /// The variables the spec names as credentials: management tokens (`token_env`) and OAuth
    /// client ids and secrets (`client_id_env`, `client_secret_env`). Spec commands never get
    /// them, nor does any other child process.
    pub fn credential_vars(&self) -> std::collections::BTreeSet<&str> {
        self.environments
            .values()
            .filter_map(|e| e.token_env.as_deref())
            .chain(
                self.accounts
                    .values()
                    .flat_map(|a| [a.client_id_env.as_str(), a.client_secret_env.as_str()]),
            )
            .collect()
    }
}

/// The name of an account as declared in the spec.
pub type AccountName = String;

/// A Dynatrace environment and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub name: EnvName,
    pub endpoint: Endpoint,
    /// The environment variable holding the management token (never the token itself).
    /// `None` only for sandbox environments, whose management token comes from the sandbox seed.
    pub token_env: Option<String>,
}

/// Where an environment's API lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Endpoint {
    /// A SaaS (`https://{id}.live.dynatrace.com`) or Managed (`https://{host}/e/{env-id}`) base
    /// URL, without a trailing slash; API paths (`/api/v2/...`) are appended to it.
    Url { base: String },
    /// The embedded emulator (`sandbox://NAME`), state kept under `.tokensmith/` next to the spec.
    Sandbox { name: String },
}

/// A Dynatrace account, for platform tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: AccountName,
    pub uuid: String,
    pub client_id_env: String,
    pub client_secret_env: String,
    /// Account Management API base, default `https://api.dynatrace.com`.
    pub api_base: String,
    /// OAuth token endpoint, default `https://sso.dynatrace.com/sso/oauth2/token`.
    pub token_url: String,
    /// The OAuth scopes requested per operation.
    #[serde(default)]
    pub oauth_scopes: OAuthScopes,
}

/// The OAuth scopes an account client requests, per kind of operation. The account API enforces
/// `platform-token:tokens:manage` for list, revoke and edits, and `platform-token:tokens:write`
/// for creates (dynatrace-2026-facts.md); the spec may override either list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthScopes {
    /// List, revoke, set expiry or status.
    pub manage: Vec<String>,
    /// Create.
    pub create: Vec<String>,
}

impl Default for OAuthScopes {
    fn default() -> Self {
        OAuthScopes {
            manage: vec![Self::MANAGE.to_owned()],
            create: vec![Self::WRITE.to_owned()],
        }
    }
}

impl OAuthScopes {
    /// Enforced by the account API for listing, revoking and editing platform tokens.
    pub const MANAGE: &'static str = "platform-token:tokens:manage";
    /// Enforced by the account API for creating platform tokens.
    pub const WRITE: &'static str = "platform-token:tokens:write";
}

/// Where a token lives: an environment (API and ActiveGate tokens) or an account (platform tokens).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "name")]
pub enum Home {
    Environment(EnvName),
    Account(AccountName),
}

/// One token the spec wants to exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredToken {
    pub kind: TokenKind,
    pub key: TokenKey,
    pub home: Home,
    /// The human part of the name; the marker is appended when the token is created.
    pub display_name: String,
    /// For API and platform tokens; empty for ActiveGate tokens.
    pub scopes: ScopeSet,
    pub details: TokenDetails,
    pub policy: Policy,
    /// An existing unmanaged token to take over (by id) instead of creating a new one.
    pub adopt: Option<TokenId>,
    pub deliver: Vec<Target>,
}

/// Kind-specific settings of a desired token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TokenDetails {
    Api {
        personal_access_token: bool,
        preset: Option<Preset>,
    },
    Activegate {
        activegate_type: ActiveGateType,
        seed: bool,
    },
    Platform {
        /// `urn:dtenvironment:<id>` or `urn:dtaccount:<uuid>` entries.
        resources: Vec<String>,
        /// The owner (a user or service user UUID); `None` = the OAuth client's user.
        owner: Option<String>,
    },
}

/// ActiveGate token type.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActiveGateType {
    Environment,
    Cluster,
}

/// The tenant token of one environment and where it must be delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredTenantToken {
    pub environment: EnvName,
    /// Rotate when the last rotation is this old; `None` = only on demand.
    pub rotate_every: Option<SpecDuration>,
    /// How long both tenant tokens stay valid after a rotation started before it is finished
    /// ([`DEFAULT_TENANT_GRACE`] unless the spec says).
    pub grace: SpecDuration,
    /// What to do about a rotation started outside tokensmith; `None` = report it only.
    pub on_foreign_rotation: Option<ForeignRotation>,
    /// Delivered first, in order.
    pub activegates: Vec<Target>,
    /// Delivered after every ActiveGate target holds the new token.
    pub oneagents: Vec<Target>,
}

/// The grace of a tenant token rotation unless the spec sets `grace`: one day. A OneAgent host
/// that is switched off overnight, the Dynatrace Operator's reconcile (it reads the new token
/// from `connectioninfo` within about 15 minutes plus its reconcile period, then restarts its own
/// pods) and application pods with injected code modules, which only their owners restart, all
/// need the old token to keep working until they have the new one; a day covers a nightly
/// shutdown and a daily deploy cycle.
pub const DEFAULT_TENANT_GRACE: SpecDuration = SpecDuration::from_days(1);

/// What to do about a tenant token rotation started outside tokensmith.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ForeignRotation {
    /// Take it over: deliver the active tenant token to every target and finish after the
    /// grace (counted from when tokensmith took it over).
    Adopt,
    /// Cancel it: the new tenant token is discarded and the old one stays valid.
    Cancel,
}

/// What to do about tokens the spec does not manage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UnmanagedPolicy {
    /// Report unmanaged tokens not used for this long as deletion candidates.
    pub report_unused_after: Option<SpecDuration>,
    /// Prune such tokens (only when explicitly enabled): disable first, delete after
    /// `prune_select.delete_after`.
    pub prune: bool,
    /// Which unmanaged tokens prune may touch, and how long a pruned token stays disabled.
    pub prune_select: PruneSelect,
}

/// `unmanaged.select` and `unmanaged.delete_after`: a token is pruned only when it matches every
/// selector given (an empty list selects any). Names and owners match case-insensitively; a `*`
/// in a name matches any run of characters. Classes are inventory class names (`never-used`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PruneSelect {
    pub names: Vec<String>,
    pub owners: Vec<String>,
    pub classes: Vec<String>,
    /// How long a pruned (disabled) token is kept before it is deleted; `None` = the default.
    pub delete_after: Option<SpecDuration>,
}

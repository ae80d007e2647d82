//! The spec syntax: what a user may write in `tokensmith.yaml`, as serde and schemars types.
//!
//! These types mirror the file one to one (every struct denies unknown fields) and carry the
//! position of the values later checks point at ([`Spanned`]). They hold templates unrendered
//! and defaults unmerged; [`super::resolve`] turns them into [`crate::model::Desired`]. Delivery
//! targets and the revoke policy reuse the model types directly. The JSON Schema of the file is
//! generated from [`SpecFile`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::de::Spanned;
use crate::model::{
    ActiveGateType, ForeignRotation, PlatformPreset, Preset, Revoke, SpecDuration, Target,
};

/// A tokensmith desired-state file: which Dynatrace tokens exist, with which scopes, how long they
/// live, when they rotate and where their values are delivered. Relative file paths in `deliver`
/// targets are relative to the directory of this file. Top-level keys starting with `x-` are
/// ignored, so they can hold YAML anchors to reuse (`x-targets: &ci {...}`, then `*ci`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "tokensmith desired state")]
#[schemars(extend("patternProperties" = { "^x-": {} }))]
pub struct SpecFile {
    /// The version of this file format; always `1`.
    pub version: u32,
    /// Dynatrace environments by name.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentSpec>,
    /// Dynatrace accounts by name, for platform tokens.
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountSpec>,
    /// Policy for every token that does not set its own.
    #[serde(default)]
    pub defaults: Option<DefaultsSpec>,
    /// Access tokens (`dt0c01`), including operator, data-ingest and PaaS tokens, by key.
    #[serde(default)]
    pub api_tokens: BTreeMap<String, ApiTokenSpec>,
    /// ActiveGate tokens (`dt0g02`) by key.
    #[serde(default)]
    pub activegate_tokens: BTreeMap<String, ActiveGateTokenSpec>,
    /// The tenant token of an environment (by environment name) and where it is delivered.
    #[serde(default)]
    pub tenant_token: BTreeMap<String, TenantTokenSpec>,
    /// Account-level platform tokens (`dt0s16`) by key.
    #[serde(default)]
    pub platform_tokens: BTreeMap<String, PlatformTokenSpec>,
    /// What to do about tokens this file does not manage.
    #[serde(default)]
    pub unmanaged: Option<UnmanagedSpec>,
}

/// The top-level keys of [`SpecFile`], in the order the loader reads them.
pub const SECTIONS: &[&str] = &[
    "version",
    "environments",
    "accounts",
    "defaults",
    "api_tokens",
    "activegate_tokens",
    "tenant_token",
    "platform_tokens",
    "unmanaged",
];

/// A Dynatrace environment.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// SaaS `https://{id}.live.dynatrace.com`, Managed `https://{host}/e/{env-id}`, or
    /// `sandbox://NAME` for the embedded emulator.
    pub url: Spanned<String>,
    /// The environment variable holding the management token (never the token itself). Required
    /// except for `sandbox://` environments.
    #[serde(default)]
    pub token_env: Option<Spanned<String>>,
}

/// A Dynatrace account and the OAuth client that manages its platform tokens.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// The account UUID.
    pub uuid: Spanned<String>,
    /// The environment variable holding the OAuth client id (`dt0s02.…`).
    pub client_id_env: Spanned<String>,
    /// The environment variable holding the OAuth client secret.
    pub client_secret_env: Spanned<String>,
    /// Account Management API base (default `https://api.dynatrace.com`).
    #[serde(default)]
    pub api_base: Option<Spanned<String>>,
    /// OAuth token endpoint (default `https://sso.dynatrace.com/sso/oauth2/token`).
    #[serde(default)]
    pub token_url: Option<Spanned<String>>,
    /// The owner (user or service-user UUID) of this account's platform tokens that name none.
    #[serde(default)]
    pub default_owner: Option<Spanned<String>>,
    /// The OAuth scopes tokensmith requests, per operation (default: `manage:
    /// [platform-token:tokens:manage]`, `create: [platform-token:tokens:write]`).
    #[serde(default)]
    pub oauth_scopes: Option<OAuthScopesSpec>,
}

/// OAuth scopes per operation; an omitted list keeps its default.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthScopesSpec {
    /// Scopes for listing, revoking and editing platform tokens.
    #[serde(default)]
    pub manage: Option<Vec<Spanned<String>>>,
    /// Scopes for creating platform tokens.
    #[serde(default)]
    pub create: Option<Vec<Spanned<String>>>,
}

/// The policy fields of one entry (a token or `defaults`), as written. Every field falls back to
/// `defaults`, then to the built-in default (expires_in 90d, rotate_before 14d, grace 24h, revoke
/// disable + delete_after 7d).
#[derive(Debug, Clone, Default)]
pub struct PolicySpec {
    /// Lifetime of each generation, e.g. `90d`.
    pub expires_in: Option<Spanned<SpecDuration>>,
    /// The token never expires (instead of `expires_in`).
    pub never_expires: Option<Spanned<bool>>,
    /// Create the successor this long before the current token expires (not with `rotate_every`).
    pub rotate_before: Option<Spanned<SpecDuration>>,
    /// Create a successor when the current token is this old (not with `rotate_before`).
    pub rotate_every: Option<Spanned<SpecDuration>>,
    /// How long the old token stays valid after its successor reached every target.
    pub grace: Option<Spanned<SpecDuration>>,
    /// What retiring the old token means: `delete`, or `disable: { delete_after: 7d }`.
    pub revoke: Option<Spanned<Revoke>>,
    /// Revoke the old token only after the successor was seen in use (`lastUsedDate`).
    pub verify_usage: Option<Spanned<bool>>,
}

/// Defines a token struct with the shared policy fields inline (serde cannot combine `flatten`
/// with `deny_unknown_fields`, so the fields are repeated by this macro instead).
macro_rules! with_policy {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Lifetime of each generation, e.g. `90d` (default 90d).
            #[serde(default)]
            pub expires_in: Option<Spanned<SpecDuration>>,
            /// `true`: the token never expires (instead of `expires_in`).
            #[serde(default)]
            pub never_expires: Option<Spanned<bool>>,
            /// Create the successor this long before the current token expires (default 14d; not
            /// with `rotate_every`).
            #[serde(default)]
            pub rotate_before: Option<Spanned<SpecDuration>>,
            /// Create a successor when the current token is this old (not with `rotate_before`).
            #[serde(default)]
            pub rotate_every: Option<Spanned<SpecDuration>>,
            /// How long the old token stays valid after its successor reached every target
            /// (default 24h).
            #[serde(default)]
            pub grace: Option<Spanned<SpecDuration>>,
            /// What retiring the old token means: `delete`, or `disable: { delete_after: 7d }`
            /// (the default).
            #[serde(default)]
            pub revoke: Option<Spanned<Revoke>>,
            /// Revoke the old token only after the successor was seen in use (`lastUsedDate`).
            #[serde(default)]
            pub verify_usage: Option<Spanned<bool>>,
        }

        impl $name {
            /// The policy fields written on this entry.
            pub fn policy(&self) -> PolicySpec {
                PolicySpec {
                    expires_in: self.expires_in.clone(),
                    never_expires: self.never_expires.clone(),
                    rotate_before: self.rotate_before.clone(),
                    rotate_every: self.rotate_every.clone(),
                    grace: self.grace.clone(),
                    revoke: self.revoke.clone(),
                    verify_usage: self.verify_usage.clone(),
                }
            }
        }
    };
}

with_policy! {
    /// Policy defaults for every token.
    pub struct DefaultsSpec {}
}

/// `for_each` variables: each name takes every value in turn; several names expand to every
/// combination. The values are available in templates as `{{ name }}`.
pub type ForEach = BTreeMap<Spanned<String>, Vec<Spanned<String>>>;

with_policy! {
    /// An access token. Its key (the mapping key) is its stable identity and may use `for_each`
    /// variables, e.g. `data-ingest-{{ cluster }}`.
    pub struct ApiTokenSpec {
        /// Display name (default: the key). Templates allowed. The ownership marker
        /// `[ts:KEY#GEN]` is appended; the whole name must fit in 100 characters.
        #[serde(default)]
        pub name: Option<Spanned<String>>,
        /// Expand this entry into one token per combination of values.
        #[serde(default)]
        pub for_each: Option<ForEach>,
        /// The environments to create the token in (one token per environment, same key).
        pub environments: Spanned<Vec<Spanned<String>>>,
        /// A consumer's scope set: `dynatrace-operator`, `data-ingest` or `paas`.
        #[serde(default)]
        pub preset: Option<Spanned<Preset>>,
        /// Scopes, added to the preset's.
        #[serde(default)]
        pub scopes: Vec<Spanned<String>>,
        /// Scopes removed from the preset's.
        #[serde(default)]
        pub exclude_scopes: Vec<Spanned<String>>,
        /// A personal access token (owned by a user, limited to a subset of scopes).
        #[serde(default)]
        pub personal_access_token: Option<Spanned<bool>>,
        /// Take over this existing token (by id, `dt0c01.PUBLIC`) instead of creating one.
        #[serde(default)]
        pub adopt: Option<Spanned<String>>,
        /// Where the token's value is delivered. Templates allowed in every string.
        #[serde(default)]
        pub deliver: Vec<Spanned<Target>>,
    }
}

with_policy! {
    /// An ActiveGate token (at most 2 years of expiry).
    pub struct ActiveGateTokenSpec {
        /// Display name (default: the key). Templates allowed.
        #[serde(default)]
        pub name: Option<Spanned<String>>,
        /// Expand this entry into one token per combination of values.
        #[serde(default)]
        pub for_each: Option<ForEach>,
        /// The environments to create the token in.
        pub environments: Spanned<Vec<Spanned<String>>>,
        /// `ENVIRONMENT` (default) or `CLUSTER`.
        #[serde(default, rename = "type")]
        pub activegate_type: Option<Spanned<ActiveGateType>>,
        /// A seed token, used by many ActiveGates to register (individual tokens are recommended).
        #[serde(default)]
        pub seed: Option<Spanned<bool>>,
        /// Take over this existing token (by id, `dt0g02.PUBLIC`) instead of creating one.
        #[serde(default)]
        pub adopt: Option<Spanned<String>>,
        /// Where the token's value is delivered.
        #[serde(default)]
        pub deliver: Vec<Spanned<Target>>,
    }
}

with_policy! {
    /// A platform token of an account.
    pub struct PlatformTokenSpec {
        /// Display name (default: the key). Templates allowed; at most 255 characters.
        #[serde(default)]
        pub name: Option<Spanned<String>>,
        /// Expand this entry into one token per combination of values.
        #[serde(default)]
        pub for_each: Option<ForEach>,
        /// The account (a name under `accounts`).
        pub account: Spanned<String>,
        /// A named scope set for a known consumer (`dynatrace-operator`: the operator's
        /// platform token for the DynaKube Secret's `apiToken`); `scopes` add to it.
        #[serde(default)]
        pub preset: Option<Spanned<PlatformPreset>>,
        /// Platform scopes, e.g. `storage:logs:read` (added to the preset's).
        #[serde(default)]
        pub scopes: Vec<Spanned<String>>,
        /// What the token may access: an environment name, or `account` for the whole account.
        pub resource: Spanned<String>,
        /// The owning user or service user (UUID); default: the account's `default_owner`.
        #[serde(default)]
        pub owner: Option<Spanned<String>>,
        /// Take over this existing token (by id, `dt0s16.PUBLIC`) instead of creating one.
        #[serde(default)]
        pub adopt: Option<Spanned<String>>,
        /// Where the token's value is delivered.
        #[serde(default)]
        pub deliver: Vec<Spanned<Target>>,
    }
}

/// The tenant token of one environment: when it rotates and who must receive it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantTokenSpec {
    /// Rotate when the last rotation is this old; without it only on demand.
    #[serde(default)]
    pub rotate_every: Option<Spanned<SpecDuration>>,
    /// How long both tenant tokens stay valid after a rotation started, before it is finished
    /// (default 1d): time for offline OneAgents, the operator's reconcile and application pods
    /// restarted by their owners to pick up the new token.
    #[serde(default)]
    pub grace: Option<Spanned<SpecDuration>>,
    /// A rotation started outside tokensmith: `adopt` (deliver the active token, finish after
    /// the grace) or `cancel`; unset = report it only.
    #[serde(default)]
    pub on_foreign_rotation: Option<Spanned<ForeignRotation>>,
    /// ActiveGates, delivered first (usually `authorization.properties`, key `tenantToken`).
    #[serde(default)]
    pub activegates: Vec<Spanned<Target>>,
    /// OneAgents, delivered after every ActiveGate (usually `oneagentctl` via `exec`).
    #[serde(default)]
    pub oneagents: Vec<Spanned<Target>>,
}

/// Policy for tokens without an ownership marker.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmanagedSpec {
    /// Report unmanaged tokens not used for this long as deletion candidates.
    #[serde(default)]
    pub report_unused_after: Option<Spanned<SpecDuration>>,
    /// Prune those tokens (only when explicitly `true`; needs `report_unused_after`): disable
    /// them first, delete them `delete_after` later.
    #[serde(default)]
    pub prune: Option<Spanned<bool>>,
    /// Which unmanaged tokens prune may touch (every selector given must match).
    #[serde(default)]
    pub select: Option<PruneSelectSpec>,
    /// How long a pruned token stays disabled before it is deleted (default 30d).
    #[serde(default)]
    pub delete_after: Option<Spanned<SpecDuration>>,
}

/// Selectors of the unmanaged tokens prune may touch.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneSelectSpec {
    /// Token names (case-insensitive; `*` matches any run of characters).
    #[serde(default)]
    pub names: Vec<String>,
    /// Owners (case-insensitive, as Dynatrace reports them).
    #[serde(default)]
    pub owners: Vec<String>,
    /// Inventory classes (`never-used`, `unused`, `expired`, `duplicate`, `over-privileged`, …).
    #[serde(default)]
    pub classes: Vec<Spanned<String>>,
}

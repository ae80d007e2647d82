//! The seed file: a YAML declaration of the world a sandbox starts with.
//!
//! Owns: the [`Seed`] format (environments with access, ActiveGate and tenant tokens, accounts
//! with OAuth clients and platform tokens, the clock's start, faults) and turning it into a
//! [`State`]. Secrets written in a seed are known to whoever wrote it (that is the point: a demo
//! needs a management token); the state keeps only their fingerprints. Dates in a seed may be
//! absolute or relative to the seed's start time (`now-30d`). Also owns the default seed of an
//! embedded sandbox.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::clock::{parse_time_input, Clock, Millis};
use super::faults::Faults;
use super::mint::{self, TokenFormat};
use super::state::{
    Account, ActiveGateTokenRecord, ApiTokenRecord, DemoCredentials, Environment, OAuthClient,
    PlatformTokenRecord, State, TenantTokens,
};
use crate::model::{ActiveGateType, TokenId};

/// Scopes a management token needs for everything tokensmith does in an environment
/// (`metrics.ingest` for `drift --send-metrics`).
pub const MANAGEMENT_SCOPES: &[&str] = &[
    "apiTokens.read",
    "apiTokens.write",
    "activeGateTokenManagement.read",
    "activeGateTokenManagement.create",
    "activeGateTokenManagement.write",
    "tenantTokenRotation.write",
    "InstallerDownload",
    "metrics.ingest",
];

/// Scopes the demo OAuth client may request.
pub const ACCOUNT_SCOPES: &[&str] = &[
    "account-idm-read",
    "account-idm-write",
    "platform-token:tokens:manage",
    "platform-token:tokens:write",
];

/// A sandbox seed (YAML). See `examples/sandbox/seed.yaml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Sandbox time at start (ISO 8601); default: the real now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// A frozen clock moves only through `POST /__sandbox/clock/advance`.
    #[serde(default)]
    pub frozen_clock: bool,
    /// The environment served at the root paths; default: the first environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_environment: Option<String>,
    #[serde(default)]
    pub environments: BTreeMap<String, SeedEnvironment>,
    /// Accounts by UUID.
    #[serde(default)]
    pub accounts: BTreeMap<String, SeedAccount>,
    #[serde(default)]
    pub faults: Faults,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedEnvironment {
    /// Extra Host header values that select this environment.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The tenant token; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_token: Option<String>,
    /// `false`: `GET /api/v2/tenantTokenRotation/status` answers 404, like an older version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_status_endpoint: Option<bool>,
    #[serde(default)]
    pub api_tokens: Vec<SeedApiToken>,
    /// Many generated tokens at once (pagination tests, benchmarks); their secrets are not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_api_tokens: Option<GeneratedTokens>,
    #[serde(default)]
    pub activegate_tokens: Vec<SeedActiveGateToken>,
    /// Refuse to create classic API tokens (Dynatrace's upgrade stage "API tokens").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub classic_tokens_disabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedApiToken {
    pub name: String,
    /// The full token (`dt0c01.<24>.<64>`); generated (and unknown) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default = "default_owner")]
    pub owner: String,
    pub scopes: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub personal_access_token: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratedTokens {
    pub count: usize,
    #[serde(default = "default_prefix")]
    pub name_prefix: String,
    #[serde(default = "default_owner")]
    pub owner: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedActiveGateToken {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default = "default_owner")]
    pub owner: String,
    #[serde(default = "default_ag_type", rename = "type")]
    pub activegate_type: ActiveGateType,
    #[serde(default)]
    pub seed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedAccount {
    #[serde(default)]
    pub name: String,
    /// OAuth clients by client id (`dt0s02.…`).
    #[serde(default)]
    pub oauth_clients: BTreeMap<String, SeedOAuthClient>,
    #[serde(default)]
    pub platform_tokens: Vec<SeedPlatformToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedOAuthClient {
    pub client_secret: String,
    #[serde(default = "default_owner")]
    pub user_email: String,
    #[serde(default = "default_user_uuid")]
    pub user_uuid: String,
    #[serde(default = "account_scopes")]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPlatformToken {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(default)]
    pub resource: Vec<String>,
    #[serde(default = "default_owner")]
    pub owner: String,
    #[serde(default = "default_user_uuid")]
    pub user_uuid: String,
    #[serde(default = "active")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

fn default_owner() -> String {
    "admin@example.com".into()
}
fn default_user_uuid() -> String {
    "6f2e8a3c-0000-4000-8000-000000000001".into()
}
fn default_prefix() -> String {
    "generated".into()
}
fn default_scopes() -> Vec<String> {
    vec!["metrics.ingest".into()]
}
fn account_scopes() -> Vec<String> {
    ACCOUNT_SCOPES.iter().map(|s| s.to_string()).collect()
}
fn default_ag_type() -> ActiveGateType {
    ActiveGateType::Environment
}
fn yes() -> bool {
    true
}
fn active() -> String {
    "ACTIVE".into()
}

/// The largest seed file read: a seed declares a world and generates bulk tokens by count, so
/// it is small; this bounds a file that is not a seed.
pub const MAX_SEED_BYTES: u64 = 64 << 20;

impl Seed {
    pub fn from_yaml(text: &str) -> anyhow::Result<Seed> {
        serde_yaml::from_str(text)
            .context("the sandbox seed is not valid; see examples/sandbox/seed.yaml")
    }

    /// Every known secret in the seed with the id it belongs to: what `tokensmith sandbox` may
    /// echo back, because the user wrote it.
    pub fn known_api_tokens(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for (env, e) in &self.environments {
            for t in &e.api_tokens {
                if let Some(secret) = &t.token {
                    let id =
                        TokenId::of_secret(secret).map_or_else(|| "(old format)".into(), |i| i.0);
                    out.push((env.clone(), id, secret.clone()));
                }
            }
        }
        out
    }

    /// Build the state the seed declares.
    pub fn build(&self) -> anyhow::Result<State> {
        let start = match &self.start_time {
            Some(s) => Some(
                s.parse::<Millis>()
                    .map_err(|e| anyhow::anyhow!("start_time: {e}"))?,
            ),
            None => None,
        };
        let clock = Clock::new(start, self.frozen_clock);
        let now = clock.now();
        let at = |what: &str, v: &Option<String>| -> anyhow::Result<Option<Millis>> {
            v.as_deref()
                .map(|s| parse_time_input(s, now).map_err(|e| anyhow::anyhow!("{what}: {e}")))
                .transpose()
        };
        let mut environments = BTreeMap::new();
        for (env_id, e) in &self.environments {
            if env_id.is_empty()
                || !env_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                bail!("environment id `{env_id}` must use letters, digits and `-` only");
            }
            let mut env = Environment {
                hosts: e.hosts.clone(),
                tenant: TenantTokens {
                    active: e
                        .tenant_token
                        .clone()
                        .unwrap_or_else(super::state::new_tenant_token),
                    pending_old: None,
                    active_since: Some(now),
                },
                classic_tokens_disabled: e.classic_tokens_disabled,
                no_rotation_status: e.rotation_status_endpoint == Some(false),
                ..Environment::default()
            };
            for t in &e.api_tokens {
                let where_ = format!("environment {env_id}, api token `{}`", t.name);
                let (id, secret) =
                    known_or_minted(t.token.as_deref(), TokenFormat::Access, &where_)?;
                let record = ApiTokenRecord {
                    id: id.clone(),
                    secret_sha256: mint::fingerprint(&secret),
                    name: t.name.clone(),
                    enabled: t.enabled,
                    owner: t.owner.clone(),
                    creation_date: at(&where_, &t.created)?.unwrap_or(now),
                    expiration_date: at(&where_, &t.expires)?,
                    last_used_date: at(&where_, &t.last_used)?,
                    last_used_ip_address: t.last_used_ip.clone(),
                    modified_date: at(&where_, &t.modified)?,
                    personal_access_token: t.personal_access_token,
                    scopes: t.scopes.clone(),
                    additional_metadata: None,
                };
                if env.api_tokens.insert(id.clone(), record).is_some() {
                    bail!("{where_}: token id {id} appears twice");
                }
            }
            if let Some(g) = &e.generated_api_tokens {
                // Spread creation dates one second apart, newest last, so sorting is meaningful.
                for i in 0..g.count {
                    // The secret of a generated token is never known to anyone, so none is
                    // minted: the stored marker is not a SHA-256 and matches no presented token.
                    let id = TokenId::new(format!("dt0c01.{}", mint::random_base32(24)));
                    let created = Millis(now.0 - ((g.count - i) as i64) * 1000);
                    env.api_tokens.insert(
                        id.0.clone(),
                        ApiTokenRecord {
                            id: id.0.clone(),
                            secret_sha256: "generated: secret never known".into(),
                            name: format!("{}-{i}", g.name_prefix),
                            enabled: true,
                            owner: g.owner.clone(),
                            creation_date: created,
                            expiration_date: None,
                            last_used_date: None,
                            last_used_ip_address: None,
                            modified_date: None,
                            personal_access_token: false,
                            scopes: g.scopes.clone(),
                            additional_metadata: None,
                        },
                    );
                }
            }
            for t in &e.activegate_tokens {
                let where_ = format!("environment {env_id}, ActiveGate token `{}`", t.name);
                let (id, secret) =
                    known_or_minted(t.token.as_deref(), TokenFormat::ActiveGate, &where_)?;
                env.activegate_tokens.insert(
                    id.clone(),
                    ActiveGateTokenRecord {
                        id,
                        secret_sha256: mint::fingerprint(&secret),
                        name: t.name.clone(),
                        owner: t.owner.clone(),
                        creation_date: at(&where_, &t.created)?.unwrap_or(now),
                        expiration_date: at(&where_, &t.expires)?,
                        last_used_date: None,
                        seed_token: t.seed,
                        active_gate_type: t.activegate_type,
                    },
                );
            }
            environments.insert(env_id.clone(), env);
        }
        let default_environment = match &self.default_environment {
            Some(d) if !environments.contains_key(d) => {
                bail!("default_environment `{d}` is not one of the seed's environments")
            }
            Some(d) => Some(d.clone()),
            None => environments.keys().next().cloned(),
        };
        let mut accounts = BTreeMap::new();
        for (uuid, a) in &self.accounts {
            let mut account = Account {
                name: a.name.clone(),
                ..Account::default()
            };
            for (client_id, c) in &a.oauth_clients {
                account.oauth_clients.insert(
                    client_id.clone(),
                    OAuthClient {
                        secret_sha256: mint::fingerprint(&c.client_secret),
                        user_email: c.user_email.clone(),
                        user_uuid: c.user_uuid.clone(),
                        scopes: c.scopes.clone(),
                    },
                );
            }
            for t in &a.platform_tokens {
                let where_ = format!("account {uuid}, platform token `{}`", t.name);
                let (id, secret) =
                    known_or_minted(t.token.as_deref(), TokenFormat::Platform, &where_)?;
                let created = at(&where_, &t.created)?.unwrap_or(now);
                account.platform_tokens.insert(
                    id.clone(),
                    PlatformTokenRecord {
                        token_id: id,
                        secret_sha256: mint::fingerprint(&secret),
                        name: t.name.clone(),
                        scope: t.scope.clone(),
                        resource: if t.resource.is_empty() {
                            vec![format!("urn:dtaccount:{uuid}")]
                        } else {
                            t.resource.clone()
                        },
                        tags: Vec::new(),
                        status: t.status.clone(),
                        expiration_date: at(&where_, &t.expires)?,
                        created_at: created,
                        updated_at: created,
                        created_by: t.owner.clone(),
                        owner: t.owner.clone(),
                        user_uuid: t.user_uuid.clone(),
                        last_used_at: None,
                        last_client_ip: None,
                    },
                );
            }
            accounts.insert(uuid.clone(), account);
        }
        Ok(State {
            clock,
            default_environment,
            environments,
            accounts,
            faults: self.faults.clone(),
            demo: None,
        })
    }
}

fn known_or_minted(
    token: Option<&str>,
    format: TokenFormat,
    where_: &str,
) -> anyhow::Result<(String, String)> {
    match token {
        Some(secret) => {
            let id = TokenId::of_secret(secret).with_context(|| {
                format!("{where_}: `token` must be a full token `prefix.public.secret`")
            })?;
            Ok((id.0, secret.to_owned()))
        }
        None => {
            let (id, secret) = format.mint();
            Ok((id.0, secret.into_inner()))
        }
    }
}

/// A random UUID (v4 layout) for demo accounts.
pub fn random_uuid() -> String {
    let hex = mint::random_alnum_lower(64)
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect::<String>();
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The state of a fresh embedded sandbox: one environment `env_id` with a management token holding
/// every token-management scope and a tenant token, and one account with an OAuth client. The
/// secrets are random and recorded in [`State::demo`] for the in-process client.
pub fn demo_state(env_id: &str) -> anyhow::Result<State> {
    let seed = Seed {
        environments: BTreeMap::from([(env_id.to_owned(), SeedEnvironment::default())]),
        ..Seed::default()
    };
    let mut state = seed.build()?;
    add_demo_credentials(&mut state, env_id)?;
    Ok(state)
}

/// Give an embedded sandbox's own client a way in: a management token holding every
/// token-management scope in environment `env_id` and a new account with an OAuth client, their
/// random secrets recorded in [`State::demo`] (replacing any recorded before). Used for a fresh
/// state and for one built from a user's seed (`tokensmith sandbox seed FILE`).
pub fn add_demo_credentials(state: &mut State, env_id: &str) -> anyhow::Result<()> {
    let now = state.now();
    let (id, secret) = TokenFormat::Access.mint();
    let Some(env) = state.environments.get_mut(env_id) else {
        let known: Vec<&str> = state.environments.keys().map(String::as_str).collect();
        bail!(
            "the sandbox has no environment `{env_id}` (it has {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    };
    env.api_tokens.insert(
        id.0.clone(),
        ApiTokenRecord {
            id: id.0.clone(),
            secret_sha256: mint::fingerprint(secret.expose()),
            name: "tokensmith management (sandbox)".into(),
            enabled: true,
            owner: default_owner(),
            creation_date: now,
            expiration_date: None,
            last_used_date: None,
            last_used_ip_address: None,
            modified_date: None,
            personal_access_token: false,
            scopes: MANAGEMENT_SCOPES.iter().map(|s| s.to_string()).collect(),
            additional_metadata: None,
        },
    );
    let account_uuid = random_uuid();
    let client_id = format!("dt0s02.{}", mint::random_base32(8));
    let client_secret = format!("{client_id}.{}", mint::random_base32(64));
    let mut account = Account {
        name: "sandbox account".into(),
        ..Account::default()
    };
    account.oauth_clients.insert(
        client_id.clone(),
        OAuthClient {
            secret_sha256: mint::fingerprint(&client_secret),
            user_email: default_owner(),
            user_uuid: default_user_uuid(),
            scopes: account_scopes(),
        },
    );
    state.accounts.insert(account_uuid.clone(), account);
    state.demo = Some(DemoCredentials {
        environment: env_id.to_owned(),
        management_token: secret.into_inner(),
        account_uuid,
        client_id,
        client_secret,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_seed_builds() {
        let seed = Seed::from_yaml(include_str!("../../examples/sandbox/seed.yaml")).unwrap();
        let state = seed.build().unwrap();
        assert_eq!(state.default_environment.as_deref(), Some("abc12345"));
        assert_eq!(state.environments.len(), 2);
        assert_eq!(seed.known_api_tokens().len(), 3);
        let env = &state.environments["abc12345"];
        for (_, id, secret) in seed
            .known_api_tokens()
            .iter()
            .filter(|(e, _, _)| e == "abc12345")
        {
            assert_eq!(
                env.api_token_by_secret(secret).map(|t| t.id.as_str()),
                Some(id.as_str())
            );
        }
        let text = serde_json::to_string(&state).unwrap();
        assert!(
            !text.contains("O7NZQDG4W5LLTZQLI3N4FVU2I5XX2BZN"),
            "secrets are stored as fingerprints"
        );
        for scope in env.api_tokens.values().flat_map(|t| &t.scopes) {
            assert!(
                crate::model::Scope::from(scope.as_str()).is_creatable(),
                "{scope}"
            );
        }
    }

    #[test]
    fn bad_seeds_are_refused_with_a_reason() {
        let err = Seed::from_yaml(
            "environments: { e: { api_tokens: [ { name: x, token: nope, scopes: [] } ] } }",
        )
        .unwrap()
        .build()
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("must be a full token"),
            "{err:#}"
        );
        assert!(Seed::from_yaml("environmentz: {}").is_err());
        let err = Seed::from_yaml("default_environment: x\nenvironments: { e: {} }")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("default_environment"));
    }

    #[test]
    fn demo_state_has_a_management_token_with_every_scope() {
        let state = demo_state("demo").unwrap();
        let demo = state.demo.clone().unwrap();
        let token = state.environments["demo"]
            .api_token_by_secret(&demo.management_token)
            .unwrap();
        for scope in MANAGEMENT_SCOPES {
            assert!(token.has_scope(scope));
        }
        assert!(state.accounts[&demo.account_uuid]
            .oauth_clients
            .contains_key(&demo.client_id));
        assert!(!format!("{demo:?}").contains(&demo.client_secret));
    }
}

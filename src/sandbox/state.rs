//! The emulator's whole world as one serialisable value: environments with their access,
//! ActiveGate and tenant tokens and the last metric data points ingested, accounts with OAuth clients and platform tokens, the clock and
//! the fault settings.
//!
//! Owns: the records and the lookups over them (by id, by secret), and the rule that a token's
//! secret is kept only as a fingerprint. Tenant-token values are kept in clear because the API
//! returns them (`connectioninfo`, rotation); the state file is a test fixture for a fake tenant.
//! It does not know HTTP; the handlers in the sibling modules turn requests into changes here.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::clock::{Clock, Millis};
use super::faults::Faults;
use super::mint;
use crate::model::{ActiveGateType, TokenId};

/// Everything the sandbox knows. Serialised as the state file and the admin state dump.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub clock: Clock,
    /// The environment served at the root paths (`/api/v2/...`) when the Host header names none.
    pub default_environment: Option<String>,
    #[serde(default)]
    pub environments: BTreeMap<String, Environment>,
    #[serde(default)]
    pub accounts: BTreeMap<String, Account>,
    #[serde(default)]
    pub faults: Faults,
    /// Credentials an embedded sandbox hands to its in-process client (fake secrets of a fake
    /// tenant). Absent for a sandbox served from a user's seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demo: Option<DemoCredentials>,
}

/// The secrets an embedded sandbox needs to give its own client: the management token and the
/// OAuth client of the demo account.
#[derive(Clone, Serialize, Deserialize)]
pub struct DemoCredentials {
    pub environment: String,
    pub management_token: String,
    pub account_uuid: String,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for DemoCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoCredentials")
            .field("environment", &self.environment)
            .field("account_uuid", &self.account_uuid)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// One Dynatrace environment (tenant).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Environment {
    /// Extra host names (besides `<id>.<anything>`) that select this environment in SaaS mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub api_tokens: BTreeMap<String, ApiTokenRecord>,
    #[serde(default)]
    pub activegate_tokens: BTreeMap<String, ActiveGateTokenRecord>,
    pub tenant: TenantTokens,
    /// `GET /api/v2/tenantTokenRotation/status` answers 404 here, like an older version or a
    /// Managed cluster (newer versions have it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_rotation_status: bool,
    /// The last [`DATA_POINT_CAPACITY`] data points accepted by `POST /api/v2/metrics/ingest`,
    /// oldest first.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub data_points: VecDeque<DataPoint>,
    /// The environment opted into the upgrade stage that switches classic API token creation
    /// off (see `classic`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub classic_tokens_disabled: bool,
}

/// How many ingested data points an environment keeps; older ones are dropped.
pub const DATA_POINT_CAPACITY: usize = 1000;

/// One metric data point as it arrived (dimension keys lower-cased, values unescaped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataPoint {
    pub metric_key: String,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    #[serde(flatten)]
    pub payload: Payload,
    /// The line's timestamp, or sandbox time on arrival when it had none.
    pub timestamp: Millis,
}

/// The value part of a data point: `{"type":"gauge","value":…}`, `{"type":"summary",…}` or
/// `{"type":"count","delta":…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Payload {
    Gauge {
        value: f64,
    },
    Summary {
        min: f64,
        max: f64,
        sum: f64,
        count: u64,
    },
    Count {
        delta: f64,
    },
}

/// An access token (API token or personal access token). The secret is kept only as a fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenRecord {
    pub id: String,
    pub secret_sha256: String,
    pub name: String,
    pub enabled: bool,
    pub owner: String,
    pub creation_date: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_date: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_date: Option<Millis>,
    #[serde(default)]
    pub personal_access_token: bool,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ApiTokenRecord {
    pub fn is_expired(&self, now: Millis) -> bool {
        self.expiration_date.is_some_and(|e| e <= now)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// An ActiveGate token. The secret is kept only as a fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveGateTokenRecord {
    pub id: String,
    pub secret_sha256: String,
    pub name: String,
    pub owner: String,
    pub creation_date: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_date: Option<Millis>,
    #[serde(default)]
    pub seed_token: bool,
    pub active_gate_type: ActiveGateType,
}

/// The environment's tenant token(s). During a rotation `pending_old` holds the previous value,
/// and both are accepted.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct TenantTokens {
    pub active: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_old: Option<String>,
    /// When the current active token became active (start of the last rotation, or creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<Millis>,
}

impl std::fmt::Debug for TenantTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantTokens")
            .field("rotating", &self.pending_old.is_some())
            .finish_non_exhaustive()
    }
}

impl TenantTokens {
    pub fn fresh(now: Millis) -> TenantTokens {
        TenantTokens {
            active: new_tenant_token(),
            pending_old: None,
            active_since: Some(now),
        }
    }

    pub fn rotating(&self) -> bool {
        self.pending_old.is_some()
    }

    /// Whether a OneAgent or ActiveGate presenting `value` would be let in.
    pub fn accepts(&self, value: &str) -> bool {
        self.active == value || self.pending_old.as_deref() == Some(value)
    }
}

/// Tenant tokens are not in the `dt0…` format; the docs show 20 lower-case letters and digits
/// (real length UNCERTAIN, REFERENCE.md §2), so the sandbox mints that.
pub fn new_tenant_token() -> String {
    mint::random_alnum_lower(20)
}

/// A Dynatrace account (Account Management API).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Account {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub oauth_clients: BTreeMap<String, OAuthClient>,
    #[serde(default)]
    pub platform_tokens: BTreeMap<String, PlatformTokenRecord>,
    /// Bearer access tokens issued by the token endpoint, keyed by their fingerprint.
    #[serde(default)]
    pub access_tokens: BTreeMap<String, AccessToken>,
}

/// An OAuth client of an account (`dt0s02.…`), used with the client-credentials grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OAuthClient {
    pub secret_sha256: String,
    /// The user the client acts as: owner and creator of platform tokens it creates.
    pub user_email: String,
    pub user_uuid: String,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
}

/// An OAuth bearer access token issued to a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessToken {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires: Millis,
}

/// A platform token (`dt0s16.…`). The secret is kept only as a fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformTokenRecord {
    pub token_id: String,
    pub secret_sha256: String,
    pub name: String,
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(default)]
    pub resource: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub created_by: String,
    pub owner: String,
    pub user_uuid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_client_ip: Option<String>,
}

impl State {
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    pub fn env(&self, id: &str) -> Option<&Environment> {
        self.environments.get(id)
    }

    pub fn env_mut(&mut self, id: &str) -> Option<&mut Environment> {
        self.environments.get_mut(id)
    }

    /// The state with every clear-text secret (tenant tokens, demo credentials) replaced by a
    /// fingerprint: what the admin state dump shows.
    pub fn redacted(&self) -> State {
        let mut copy = self.clone();
        copy.demo = None;
        for env in copy.environments.values_mut() {
            env.tenant.active = format!("sha256:{}", &mint::fingerprint(&env.tenant.active)[..16]);
            if let Some(old) = env.tenant.pending_old.as_mut() {
                *old = format!("sha256:{}", &mint::fingerprint(old)[..16]);
            }
        }
        copy
    }
}

impl Environment {
    /// Keep `points`, dropping the oldest beyond [`DATA_POINT_CAPACITY`].
    pub fn record_data_points(&mut self, points: impl IntoIterator<Item = DataPoint>) {
        for p in points {
            if self.data_points.len() >= DATA_POINT_CAPACITY {
                self.data_points.pop_front();
            }
            self.data_points.push_back(p);
        }
    }

    /// The access token whose full secret is `secret`, if any. New-format tokens are found by
    /// their id; old-format secrets (seeded) by scanning fingerprints.
    pub fn api_token_by_secret(&self, secret: &str) -> Option<&ApiTokenRecord> {
        let fp = mint::fingerprint(secret);
        match TokenId::of_secret(secret) {
            Some(id) => self
                .api_tokens
                .get(id.as_str())
                .filter(|t| t.secret_sha256 == fp),
            None => self.api_tokens.values().find(|t| t.secret_sha256 == fp),
        }
    }

    pub fn activegate_token_by_secret(&self, secret: &str) -> Option<&ActiveGateTokenRecord> {
        let fp = mint::fingerprint(secret);
        let id = TokenId::of_secret(secret)?;
        self.activegate_tokens
            .get(id.as_str())
            .filter(|t| t.secret_sha256 == fp)
    }
}

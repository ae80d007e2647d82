//! The contract between tokensmith and Dynatrace: read and write traits, and the values they
//! take and return.
//!
//! The planner's inputs are produced through [`EnvironmentRead`] and [`AccountRead`]; the applier
//! acts through [`EnvironmentWrite`] and [`AccountWrite`]. The traits are object safe (methods
//! return boxed futures), so the applier and the snapshot reader can be tested with in-memory
//! fakes. The HTTP implementations live in `environment` and `account`.
//!
//! Secrets leave these traits only as [`Secret`]; everything else is metadata.

use futures::future::BoxFuture;
use time::OffsetDateTime;

use super::error::LiveError;
use crate::model::{ActiveGateType, EnvName, LiveToken, ScopeSet, Secret, TokenId};

/// The result of a Dynatrace call.
pub type LiveResult<T> = Result<T, LiveError>;

/// Reading one environment (REFERENCE.md §4, §7, §8).
pub trait EnvironmentRead: Send + Sync {
    /// The environment's name in the spec.
    fn name(&self) -> &EnvName;

    /// Every API token: one paginated list call (`pageSize` 10000, `fields` with scopes and
    /// dates); follow-up pages send only `nextPageKey`. Sorted by id.
    fn list_api_tokens(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>>;

    /// One API token with all its fields; `None` when Dynatrace does not know it.
    fn get_api_token<'a>(&'a self, id: &'a TokenId)
        -> BoxFuture<'a, LiveResult<Option<LiveToken>>>;

    /// The metadata of a token given its secret (`POST /api/v2/apiTokens/lookup`); `None` when
    /// Dynatrace does not know it.
    fn lookup<'a>(
        &'a self,
        token: &'a Secret<String>,
    ) -> BoxFuture<'a, LiveResult<Option<LiveToken>>>;

    /// The id of the management token this client authenticates with. Read from the token
    /// itself when it is in the `dt0…` format (no call); otherwise looked up.
    fn caller_id(&self) -> BoxFuture<'_, LiveResult<Option<TokenId>>>;

    /// Every ActiveGate token (`pageSize` 3000, `nextPageKey` only on follow-ups). Sorted by id.
    fn list_activegate_tokens(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>>;

    /// The fingerprint (`model::target::tenant_fingerprint`) of the tenant token the agent
    /// connection info hands out. Needs `InstallerDownload`.
    fn tenant_token_fingerprint(&self) -> BoxFuture<'_, LiveResult<String>>;

    /// The value of the tenant token the agent connection info hands out (the active one), for
    /// delivering it to targets. Needs `InstallerDownload`. Implementations that cannot read it
    /// (test fakes written before it existed) answer with [`LiveError::Config`].
    fn tenant_token(&self) -> BoxFuture<'_, LiveResult<Secret<String>>> {
        Box::pin(async move {
            Err(LiveError::Config {
                subject: super::error::Subject::Environment(self.name().to_string()),
                reason: "this client cannot read the tenant token value".into(),
            })
        })
    }

    /// Whether a tenant token rotation is open (`GET /api/v2/tenantTokenRotation/status`):
    /// `Some(true)` for ACTIVE, `Some(false)` for INACTIVE, `None` when the environment has no
    /// such endpoint (404: older versions and Managed clusters). Fakes written before it existed
    /// answer `None`, like an older Dynatrace.
    fn tenant_rotation_status(&self) -> BoxFuture<'_, LiveResult<Option<bool>>> {
        Box::pin(async { Ok(None) })
    }

    /// The environment's clock from the latest response's `Date` header.
    fn server_time(&self) -> Option<OffsetDateTime>;
}

/// A new API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// The full name, marker included.
    pub name: String,
    pub scopes: ScopeSet,
    /// `None` = never expires.
    pub expires: Option<OffsetDateTime>,
    pub personal_access_token: bool,
}

/// Changes to an API token in place; `None` fields are left as they are. `scopes` replaces the
/// whole set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiTokenChange {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub scopes: Option<ScopeSet>,
}

/// A new ActiveGate token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewActiveGateToken {
    pub name: String,
    pub activegate_type: ActiveGateType,
    pub expires: Option<OffsetDateTime>,
    pub seed: bool,
}

/// A token just created: its id, its secret (shown once) and its expiry.
#[derive(Debug)]
pub struct CreatedToken {
    pub id: TokenId,
    pub secret: Secret<String>,
    pub expires: Option<OffsetDateTime>,
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    /// Dynatrace answered 404: the token was already gone. Repeating a delete is not an error.
    AlreadyGone,
}

/// The tenant tokens after a rotation call (REFERENCE.md §6).
#[derive(Debug)]
pub struct TenantTokens {
    pub active: Secret<String>,
    /// The previous token: valid while a rotation runs, null after cancel.
    pub old: Option<Secret<String>>,
}

impl TenantTokens {
    pub fn active_fingerprint(&self) -> String {
        crate::model::target::tenant_fingerprint(self.active.expose())
    }
}

/// Changing one environment's tokens.
pub trait EnvironmentWrite: Send + Sync {
    /// `POST /api/v2/apiTokens`. Not retried after a failure that leaves the outcome open:
    /// such a failure is [`LiveError::Ambiguous`] and the caller must look for the marker.
    fn create_api_token<'a>(
        &'a self,
        token: &'a NewApiToken,
    ) -> BoxFuture<'a, LiveResult<CreatedToken>>;

    /// `PUT /api/v2/apiTokens/{id}` with only the set fields.
    fn update_api_token<'a>(
        &'a self,
        id: &'a TokenId,
        change: &'a ApiTokenChange,
    ) -> BoxFuture<'a, LiveResult<()>>;

    fn delete_api_token<'a>(&'a self, id: &'a TokenId) -> BoxFuture<'a, LiveResult<Deletion>>;

    /// `POST /api/v2/activeGateTokens`; ambiguous failures as for API tokens.
    fn create_activegate_token<'a>(
        &'a self,
        token: &'a NewActiveGateToken,
    ) -> BoxFuture<'a, LiveResult<CreatedToken>>;

    fn delete_activegate_token<'a>(
        &'a self,
        id: &'a TokenId,
    ) -> BoxFuture<'a, LiveResult<Deletion>>;

    /// `POST /api/v2/tenantTokenRotation/start`: both tokens valid until finish or cancel.
    fn start_tenant_rotation(&self) -> BoxFuture<'_, LiveResult<TenantTokens>>;

    /// `POST /api/v2/tenantTokenRotation/finish`: the old token stops working.
    fn finish_tenant_rotation(&self) -> BoxFuture<'_, LiveResult<TenantTokens>>;

    /// `POST /api/v2/tenantTokenRotation/cancel`: the new token is discarded.
    fn cancel_tenant_rotation(&self) -> BoxFuture<'_, LiveResult<TenantTokens>>;
}

/// Reading one account's platform tokens (REFERENCE.md §10).
pub trait AccountRead: Send + Sync {
    /// The account's name in the spec.
    fn name(&self) -> &str;

    /// Every platform token of the account, page by page. Sorted by id.
    fn list_platform_tokens(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>>;

    /// The account API's clock from the latest response's `Date` header (the account API's or
    /// the token endpoint's, whichever answered last); `None` when no response had one.
    fn server_time(&self) -> Option<OffsetDateTime> {
        None
    }
}

/// A new platform token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPlatformToken {
    /// The full name, marker included (at most 255 characters).
    pub name: String,
    /// Platform scopes (`storage:logs:read`, …).
    pub scopes: ScopeSet,
    /// `urn:dtenvironment:<id>` or `urn:dtaccount:<uuid>` entries.
    pub resources: Vec<String>,
    pub expires: Option<OffsetDateTime>,
    /// The owner's user (or service user) UUID; `None` = the OAuth client's user.
    pub owner: Option<String>,
}

/// Changing one account's platform tokens.
pub trait AccountWrite: Send + Sync {
    /// `POST …/platform-tokens` (answers 200); ambiguous failures as for API tokens.
    fn create_platform_token<'a>(
        &'a self,
        token: &'a NewPlatformToken,
    ) -> BoxFuture<'a, LiveResult<CreatedToken>>;

    fn delete_platform_token<'a>(&'a self, id: &'a TokenId) -> BoxFuture<'a, LiveResult<Deletion>>;

    /// `PUT …/{id}/expiration-date`; `None` = never expires.
    fn set_platform_token_expiration<'a>(
        &'a self,
        id: &'a TokenId,
        expires: Option<OffsetDateTime>,
    ) -> BoxFuture<'a, LiveResult<()>>;

    /// `PUT …/{id}/status` with `ACTIVE` or `INACTIVE`.
    fn set_platform_token_status<'a>(
        &'a self,
        id: &'a TokenId,
        enabled: bool,
    ) -> BoxFuture<'a, LiveResult<()>>;
}

/// Reading and writing one environment: what a [`super::connect::Connector`] hands out.
pub trait EnvironmentApi: EnvironmentRead + EnvironmentWrite {}
impl<T: EnvironmentRead + EnvironmentWrite + ?Sized> EnvironmentApi for T {}

/// Reading and writing one account.
pub trait AccountApi: AccountRead + AccountWrite {}
impl<T: AccountRead + AccountWrite + ?Sized> AccountApi for T {}

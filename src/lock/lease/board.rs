//! Where a lease is kept: the API tokens of a Dynatrace environment, or the platform tokens of
//! an account. [`LeaseBoard`] is the handful of token operations the lease protocol (`super`)
//! needs, so the protocol is written once for both.
//!
//! The two differ in one step. An API token can be renamed, so an environment's lease turns
//! `active` in place. A platform token cannot (the Account Management API has no rename, only
//! expiry and status, REFERENCE.md §10), so an account's lease turns `active` by being made
//! again under the active name, and the pending one deleted after. For that moment the lease
//! takes two of the 10 platform tokens Dynatrace allows its owner; when the second is refused,
//! the pending one goes first. That order only lets two appliers both back off more often (one
//! may list while the other has neither): the protocol's safety rests on "write the active
//! lease, then list" alone, which both orders keep.
//!
//! Either way a lease is created with one harmless scope, its value is dropped unread, and it
//! is disabled at once: it is a name and two dates, not a credential.
//!
//! Not here: the protocol itself (`super`), and how a board's client is connected (`commands`).

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use time::OffsetDateTime;

use crate::live::{
    AccountApi, ApiTokenChange, EnvironmentApi, LiveResult, NewApiToken, NewPlatformToken,
};
use crate::model::{LiveToken, Scope, TokenId, TokenKind};

/// The scope an environment's lease is created with (Dynatrace needs one).
const API_TOKEN_LEASE_SCOPE: &str = "apiTokens.read";

/// The scope an account's lease is created with: a platform token needs one, and a read of
/// settings is about the least any platform token can do (and the lease is disabled at once).
const PLATFORM_TOKEN_LEASE_SCOPE: &str = "settings:objects:read";

/// The token operations the lease protocol needs from the place that keeps the leases.
pub trait LeaseBoard: Send + Sync {
    /// The place, for messages: "environment `prod`" or "account `main`".
    fn place(&self) -> &str;

    /// The kind of token a lease is here.
    fn kind(&self) -> TokenKind;

    /// Every token of that kind (leases among them).
    fn list(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>>;

    /// The server's clock as last reported.
    fn server_time(&self) -> Option<OffsetDateTime>;

    /// Create a lease token named `name`, expiring at `expires`; its value is dropped.
    fn create(&self, name: String, expires: OffsetDateTime) -> BoxFuture<'_, LiveResult<TokenId>>;

    /// Disable the lease token `id`.
    fn disable<'a>(&'a self, id: &'a TokenId) -> BoxFuture<'a, LiveResult<()>>;

    /// Give the lease `id` the name `name` (its `active` state), answering the lease's id after
    /// (the same, or a new one where the token had to be made again, expiring at `expires`). On
    /// an error the lease may be gone, renamed or made again: the caller clears it by nonce.
    fn rename<'a>(
        &'a self,
        id: &'a TokenId,
        name: String,
        expires: OffsetDateTime,
    ) -> BoxFuture<'a, LiveResult<TokenId>>;

    /// Delete the lease token `id` (already gone is fine).
    fn delete<'a>(&'a self, id: &'a TokenId) -> BoxFuture<'a, LiveResult<()>>;
}

/// Leases kept as API tokens of one environment.
pub struct EnvironmentBoard {
    place: String,
    client: Arc<dyn EnvironmentApi>,
}

impl EnvironmentBoard {
    pub fn new(client: Arc<dyn EnvironmentApi>) -> Self {
        EnvironmentBoard {
            place: format!("environment `{}`", client.name()),
            client,
        }
    }
}

impl LeaseBoard for EnvironmentBoard {
    fn place(&self) -> &str {
        &self.place
    }

    fn kind(&self) -> TokenKind {
        TokenKind::ApiToken
    }

    fn list(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>> {
        self.client.list_api_tokens()
    }

    fn server_time(&self) -> Option<OffsetDateTime> {
        self.client.server_time()
    }

    fn create(&self, name: String, expires: OffsetDateTime) -> BoxFuture<'_, LiveResult<TokenId>> {
        async move {
            let created = self
                .client
                .create_api_token(&NewApiToken {
                    name,
                    scopes: [Scope::new(API_TOKEN_LEASE_SCOPE)].into_iter().collect(),
                    expires: Some(expires),
                    personal_access_token: false,
                })
                .await?;
            Ok(created.id)
        }
        .boxed()
    }

    fn disable<'a>(&'a self, id: &'a TokenId) -> BoxFuture<'a, LiveResult<()>> {
        async move {
            let disable = ApiTokenChange {
                enabled: Some(false),
                ..ApiTokenChange::default()
            };
            self.client.update_api_token(id, &disable).await
        }
        .boxed()
    }

    fn rename<'a>(
        &'a self,
        id: &'a TokenId,
        name: String,
        _expires: OffsetDateTime,
    ) -> BoxFuture<'a, LiveResult<TokenId>> {
        async move {
            let rename = ApiTokenChange {
                name: Some(name),
                ..ApiTokenChange::default()
            };
            self.client.update_api_token(id, &rename).await?;
            Ok(id.clone())
        }
        .boxed()
    }

    fn delete<'a>(&'a self, id: &'a TokenId) -> BoxFuture<'a, LiveResult<()>> {
        async move { self.client.delete_api_token(id).await.map(|_| ()) }.boxed()
    }
}

/// Leases kept as platform tokens of one account.
pub struct AccountBoard {
    place: String,
    client: Arc<dyn AccountApi>,
    /// `urn:dtaccount:<uuid>`: the lease is bound to the account and no environment.
    resources: Vec<String>,
    /// The user or service user that owns the leases: the one the spec's platform tokens of
    /// this account are created for (an OAuth client cannot own tokens itself); `None` leaves
    /// it to Dynatrace (the OAuth client's user, where it has one).
    owner: Option<String>,
}

impl AccountBoard {
    /// The board of the account `uuid` that `client` reaches; leases are owned by `owner`.
    pub fn new(client: Arc<dyn AccountApi>, uuid: &str, owner: Option<String>) -> Self {
        AccountBoard {
            place: format!("account `{}`", client.name()),
            client,
            resources: vec![format!("urn:dtaccount:{uuid}")],
            owner,
        }
    }
}

impl LeaseBoard for AccountBoard {
    fn place(&self) -> &str {
        &self.place
    }

    fn kind(&self) -> TokenKind {
        TokenKind::PlatformToken
    }

    fn list(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>> {
        self.client.list_platform_tokens()
    }

    fn server_time(&self) -> Option<OffsetDateTime> {
        self.client.server_time()
    }

    fn create(&self, name: String, expires: OffsetDateTime) -> BoxFuture<'_, LiveResult<TokenId>> {
        async move {
            let created = self
                .client
                .create_platform_token(&NewPlatformToken {
                    name,
                    scopes: [Scope::new(PLATFORM_TOKEN_LEASE_SCOPE)]
                        .into_iter()
                        .collect(),
                    resources: self.resources.clone(),
                    expires: Some(expires),
                    owner: self.owner.clone(),
                })
                .await?;
            Ok(created.id)
        }
        .boxed()
    }

    fn disable<'a>(&'a self, id: &'a TokenId) -> BoxFuture<'a, LiveResult<()>> {
        self.client.set_platform_token_status(id, false)
    }

    fn rename<'a>(
        &'a self,
        id: &'a TokenId,
        name: String,
        expires: OffsetDateTime,
    ) -> BoxFuture<'a, LiveResult<TokenId>> {
        async move {
            // The active lease is made before the pending one goes, so that another applier
            // never lists neither and mistakes itself for the oldest.
            let made = match self.create(name.clone(), expires).await {
                Ok(made) => made,
                // Refused outright (the owner holds 10 platform tokens with the pending lease):
                // make room first. Safety does not need the overlap, only "write, then list".
                Err(e) if e.status() == Some(400) => {
                    self.client.delete_platform_token(id).await?;
                    let made = self.create(name, expires).await?;
                    self.disable(&made).await?;
                    return Ok(made);
                }
                Err(e) => return Err(e),
            };
            self.disable(&made).await?;
            self.client.delete_platform_token(id).await?;
            Ok(made)
        }
        .boxed()
    }

    fn delete<'a>(&'a self, id: &'a TokenId) -> BoxFuture<'a, LiveResult<()>> {
        async move { self.client.delete_platform_token(id).await.map(|_| ()) }.boxed()
    }
}

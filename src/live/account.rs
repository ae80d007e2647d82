//! [`AccountClient`]: platform tokens through the Account Management API, implementing
//! [`AccountRead`] and [`AccountWrite`] (REFERENCE.md §10).
//!
//! It authenticates with an OAuth access token from the client-credentials grant, fetched from
//! the configured token endpoint (never assumed to share a host with the API), cached until
//! shortly before it expires, and fetched again once when the API answers 401.
//!
//! Each operation asks for the scopes it needs and no more ([`OAuthScopes`]): the account API
//! enforces `platform-token:tokens:manage` for listing, revoking and editing platform tokens and
//! `platform-token:tokens:write` for creating them (dynatrace-2026-facts.md; Dynatrace's doc pages
//! still name `account-idm-*`, which the spec may ask for instead). An `invalid_scope` answer of
//! the token endpoint becomes an error naming the client, the scopes asked and what to grant.
//! The `Date` header of the account API or the token endpoint is the account's clock.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use reqwest::Method;

use super::convert;
use super::dates;
use super::environment::segment;
use super::error::{LiveError, Subject};
use super::http::{Authorization, Call, HttpClient, Reply, Transport};
use super::traits::{
    AccountRead, AccountWrite, CreatedToken, Deletion, LiveResult, NewPlatformToken,
};
use super::wire;
use crate::model::{LiveToken, Secret, TokenId};

pub use crate::model::OAuthScopes;
/// Page size of the platform token list.
pub const PLATFORM_TOKEN_PAGE_SIZE: u32 = 1000;
const MAX_PAGES: i64 = 10_000;

/// Where an account lives and how to authenticate.
pub struct AccountConfig {
    pub name: String,
    pub uuid: String,
    /// `https://api.dynatrace.com` by default.
    pub api_base: String,
    /// `https://sso.dynatrace.com/sso/oauth2/token` by default.
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret<String>,
    /// The OAuth scopes each kind of operation requests.
    pub scopes: OAuthScopes,
    /// An access token is fetched again when it has less than this left.
    pub refresh_margin: Duration,
}

struct CachedToken {
    token: Secret<String>,
    expires_at: Instant,
}

/// What an operation does, for the scopes it requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    /// List, revoke, set expiry or status.
    Manage,
    /// Create a platform token.
    Create,
}

/// One account, reached over HTTP.
pub struct AccountClient {
    config: AccountConfig,
    api: HttpClient,
    sso: HttpClient,
    /// Access tokens by the space-separated scopes they were granted for.
    cached: tokio::sync::Mutex<std::collections::HashMap<String, CachedToken>>,
}

impl AccountClient {
    pub fn new(config: AccountConfig, transport: &Transport) -> Result<Self, LiveError> {
        let subject = Subject::Account(config.name.clone());
        let api = HttpClient::new(subject.clone(), &config.api_base, transport)?;
        let sso = HttpClient::new(subject, &config.token_url, transport)?;
        Ok(AccountClient {
            config,
            api,
            sso,
            cached: tokio::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The account's clock: the `Date` header of whichever of the account API and the token
    /// endpoint answered last (both are Dynatrace's clock).
    fn latest_server_time(&self) -> Option<time::OffsetDateTime> {
        self.api.server_time().max(self.sso.server_time())
    }

    fn scopes_for(&self, operation: Operation) -> &[String] {
        match operation {
            Operation::Manage => &self.config.scopes.manage,
            Operation::Create => &self.config.scopes.create,
        }
    }

    /// A valid access token for `operation`: the cached one, or a new one from the token
    /// endpoint.
    async fn access_token(&self, operation: Operation) -> LiveResult<Secret<String>> {
        let scopes = self.scopes_for(operation).join(" ");
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.get(&scopes) {
            if Instant::now() + self.config.refresh_margin < c.expires_at {
                return Ok(c.token.clone());
            }
        }
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("client_secret", self.config.client_secret.expose())
            .append_pair("scope", &scopes)
            .append_pair("resource", &format!("urn:dtaccount:{}", self.config.uuid))
            .finish();
        let call = Call::new(Method::POST, "")
            .form(Secret::new(form))
            .idempotent(true)
            .secret_response();
        let reply = match self.sso.send(&call, Authorization::None).await {
            Ok(reply) => reply,
            Err(e) => return Err(self.scope_error(e, operation)),
        };
        let answer: wire::OAuthTokenResponse = reply.json()?;
        // Dynatrace's account tokens live about five minutes; assume that when not told.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(300));
        let token = answer.access_token;
        cached.insert(
            scopes,
            CachedToken {
                token: token.clone(),
                expires_at: Instant::now() + lifetime,
            },
        );
        Ok(token)
    }

    /// An `invalid_scope` answer of the token endpoint, turned into an error that names the
    /// client, the scopes asked and what to grant; other errors unchanged.
    fn scope_error(&self, error: LiveError, operation: Operation) -> LiveError {
        let invalid_scope = matches!(
            &error,
            LiveError::Status { status: 400 | 403, message, .. } if message.contains("invalid_scope")
        );
        if !invalid_scope {
            return error;
        }
        let asked = self.scopes_for(operation).join(" ");
        let what = match operation {
            Operation::Manage => "list, revoke and edit platform tokens",
            Operation::Create => "create platform tokens",
        };
        let key = match operation {
            Operation::Manage => "manage",
            Operation::Create => "create",
        };
        LiveError::Config {
            subject: Subject::Account(self.config.name.clone()),
            reason: format!(
                "the OAuth client `{client}` may not request the scopes `{asked}` that tokensmith asks for to {what} ({error}); hint: grant the client `{asked}` in Account Management → Identity & access management → OAuth clients, or set `accounts.{name}.oauth_scopes.{key}` to scopes it holds",
                client = self.config.client_id,
                name = self.config.name,
            ),
        }
    }

    /// Send with a bearer token for `operation`; on 401 fetch a new token once and repeat (the
    /// server did not process a request it refused to authenticate, so this is safe for creates
    /// too).
    async fn send(&self, call: Call, operation: Operation) -> LiveResult<Reply> {
        let token = self.access_token(operation).await?;
        match self.api.send(&call, Authorization::Bearer(&token)).await {
            Err(e) if e.status() == Some(401) => {
                {
                    let mut cached = self.cached.lock().await;
                    cached.retain(|_, c| c.token != token);
                }
                let token = self.access_token(operation).await?;
                self.api.send(&call, Authorization::Bearer(&token)).await
            }
            other => other,
        }
    }

    fn tokens_path(&self) -> String {
        format!(
            "/iam/v1/accounts/{}/platform-tokens",
            segment(&self.config.uuid)
        )
    }

    fn token_path(&self, id: &TokenId) -> String {
        format!("{}/{}", self.tokens_path(), segment(id.as_str()))
    }
}

impl AccountRead for AccountClient {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn server_time(&self) -> Option<time::OffsetDateTime> {
        self.latest_server_time()
    }

    fn list_platform_tokens(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>> {
        async move {
            let mut tokens = Vec::new();
            for page in 1..=MAX_PAGES {
                let call = Call::new(Method::GET, self.tokens_path())
                    .query("page", page.to_string())
                    .query("size", PLATFORM_TOKEN_PAGE_SIZE.to_string());
                let reply = self.send(call, Operation::Manage).await?;
                let dto: wire::PlatformTokenPage = reply.json()?;
                let count = dto.results.len();
                for t in &dto.results {
                    tokens.push(convert::platform_token(t).map_err(|e| LiveError::Decode {
                        request: Box::new(reply.label().clone()),
                        reason: e.to_string(),
                    })?);
                }
                convert::check_list_ids(
                    "results",
                    "tokenId",
                    tokens
                        .iter()
                        .map(|t: &LiveToken| t.id.as_str())
                        .collect::<Vec<_>>(),
                )
                .map_err(|reason| LiveError::Decode {
                    request: Box::new(reply.label().clone()),
                    reason,
                })?;
                let done = match dto.total {
                    Some(total) => tokens.len() as i64 >= total,
                    None => count < PLATFORM_TOKEN_PAGE_SIZE as usize,
                };
                if done || count == 0 {
                    tokens.sort_by(|a, b| a.id.cmp(&b.id));
                    return Ok(tokens);
                }
            }
            Err(LiveError::Decode {
                request: Box::new(super::error::RequestLabel {
                    subject: self.api.subject().clone(),
                    method: "GET".into(),
                    path: self.tokens_path(),
                }),
                reason: format!("more than {MAX_PAGES} pages"),
            })
        }
        .boxed()
    }
}

impl AccountWrite for AccountClient {
    fn create_platform_token<'a>(
        &'a self,
        token: &'a NewPlatformToken,
    ) -> BoxFuture<'a, LiveResult<CreatedToken>> {
        async move {
            let body = wire::GeneratePlatformTokenForm {
                name: token.name.clone(),
                scope: token.scopes.iter().map(|s| s.to_string()).collect(),
                resource: token.resources.clone(),
                tags: None,
                expiration_date: token.expires.map(dates::format_date),
                user_uuid: token.owner.clone(),
            };
            let call = Call::new(Method::POST, self.tokens_path())
                .json(&body)
                .secret_response();
            let reply = self.send(call, Operation::Create).await?;
            let secret: wire::PlatformTokenSecret = reply.json()?;
            Ok(CreatedToken {
                id: TokenId::new(secret.token_id),
                secret: secret.token,
                expires: token.expires,
            })
        }
        .boxed()
    }

    fn delete_platform_token<'a>(&'a self, id: &'a TokenId) -> BoxFuture<'a, LiveResult<Deletion>> {
        async move {
            match self
                .send(
                    Call::new(Method::DELETE, self.token_path(id)),
                    Operation::Manage,
                )
                .await
            {
                Ok(_) => Ok(Deletion::Deleted),
                Err(e) if e.is_not_found() => Ok(Deletion::AlreadyGone),
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn set_platform_token_expiration<'a>(
        &'a self,
        id: &'a TokenId,
        expires: Option<time::OffsetDateTime>,
    ) -> BoxFuture<'a, LiveResult<()>> {
        async move {
            let body = wire::PlatformTokenExpiration {
                expiration_date: expires.map(dates::format_date),
            };
            let path = format!("{}/expiration-date", self.token_path(id));
            self.send(Call::new(Method::PUT, path).json(&body), Operation::Manage)
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn set_platform_token_status<'a>(
        &'a self,
        id: &'a TokenId,
        enabled: bool,
    ) -> BoxFuture<'a, LiveResult<()>> {
        async move {
            let body = wire::PlatformTokenStatus {
                status: if enabled { "ACTIVE" } else { "INACTIVE" }.to_owned(),
            };
            let path = format!("{}/status", self.token_path(id));
            self.send(Call::new(Method::PUT, path).json(&body), Operation::Manage)
                .await?;
            Ok(())
        }
        .boxed()
    }
}

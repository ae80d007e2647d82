//! Which Dynatrace API holds the tokens of one (home, kind): the one place that decides it.
//!
//! API tokens, ActiveGate tokens and the tenant token live in an environment, each behind its
//! own endpoints; platform tokens live in an account. [`TokenApi::of`] picks the client and the
//! endpoints, or says in a [`LiveError::Config`] naming the home why there is none. The listing
//! and deleting that every kind shares are written once, here.
//!
//! Not here: kind-specific calls (creating with the kind's details, disabling, updating), which
//! the step files make on the client this type hands out.

use crate::live::{AccountApi, Deletion, EnvironmentApi, LiveError, LiveResult, Subject};
use crate::model::{Home, LiveToken, TokenId, TokenKind};

use super::super::env::ApplyEnv;

/// The API of one (home, kind), with its client.
#[derive(Clone, Copy)]
pub(crate) enum TokenApi<'a> {
    /// `/api/v2/apiTokens` of an environment.
    Api(&'a dyn EnvironmentApi),
    /// `/api/v2/activeGateTokens` of an environment.
    ActiveGate(&'a dyn EnvironmentApi),
    /// `/iam/v1/accounts/{uuid}/platform-tokens` of an account.
    Platform(&'a dyn AccountApi),
}

/// A [`LiveError::Config`] about `home`.
pub(crate) fn config_error(home: &Home, reason: impl Into<String>) -> LiveError {
    let subject = match home {
        Home::Environment(e) => Subject::Environment(e.to_string()),
        Home::Account(a) => Subject::Account(a.to_string()),
    };
    LiveError::Config {
        subject,
        reason: reason.into(),
    }
}

const NO_CLIENT: &str = "no client for it in this run";

impl<'a> TokenApi<'a> {
    /// The API holding tokens of `kind` in `home`.
    pub(crate) fn of(env: &'a ApplyEnv, home: &Home, kind: TokenKind) -> LiveResult<Self> {
        match (home, kind) {
            (Home::Account(a), TokenKind::PlatformToken) => env
                .account(a)
                .map(|c| TokenApi::Platform(c.as_ref()))
                .ok_or_else(|| config_error(home, NO_CLIENT)),
            (Home::Account(_), kind) => Err(config_error(
                home,
                format!("a {kind} lives in an environment, not in an account"),
            )),
            (Home::Environment(_), TokenKind::PlatformToken) => Err(config_error(
                home,
                "a platform_token lives in an account, not in an environment",
            )),
            (Home::Environment(_), TokenKind::TenantToken) => Err(config_error(
                home,
                "the tenant token is rotated, never listed, created or deleted",
            )),
            (Home::Environment(_), TokenKind::ActivegateToken) => {
                Ok(TokenApi::ActiveGate(TokenApi::environment_of(env, home)?))
            }
            (Home::Environment(_), TokenKind::ApiToken) => {
                Ok(TokenApi::Api(TokenApi::environment_of(env, home)?))
            }
        }
    }

    /// The environment API of `home`, for what is not about one token kind's endpoints: the
    /// management token lookup, the tenant token rotation and `connectioninfo`.
    pub(crate) fn environment_of(
        env: &'a ApplyEnv,
        home: &Home,
    ) -> LiveResult<&'a dyn EnvironmentApi> {
        match home {
            Home::Environment(e) => env
                .environment(e)
                .map(|c| c.as_ref())
                .ok_or_else(|| config_error(home, NO_CLIENT)),
            Home::Account(_) => Err(config_error(
                home,
                "an account has no environment API; this step needs an environment",
            )),
        }
    }

    /// Every token this API holds.
    pub(crate) async fn list(self) -> LiveResult<Vec<LiveToken>> {
        match self {
            TokenApi::Api(c) => c.list_api_tokens().await,
            TokenApi::ActiveGate(c) => c.list_activegate_tokens().await,
            TokenApi::Platform(a) => a.list_platform_tokens().await,
        }
    }

    /// Delete a token; one that is already gone (404) is [`Deletion::AlreadyGone`].
    pub(crate) async fn delete(self, id: &TokenId) -> LiveResult<Deletion> {
        let result = match self {
            TokenApi::Api(c) => c.delete_api_token(id).await,
            TokenApi::ActiveGate(c) => c.delete_activegate_token(id).await,
            TokenApi::Platform(a) => a.delete_platform_token(id).await,
        };
        match result {
            Err(e) if e.is_not_found() => Ok(Deletion::AlreadyGone),
            other => other,
        }
    }
}

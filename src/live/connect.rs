//! From the spec's environments and accounts to clients: the [`Connector`] trait and the
//! [`DefaultConnector`] that reads credentials from the process environment.
//!
//! `Endpoint::Url` is used as is, with the management token from the variable `token_env`
//! names. `Endpoint::Sandbox` (and an account whose `api_base` or `token_url` is a `sandbox://`
//! address) is resolved by a [`SandboxResolver`] the caller plugs in; this module does not know
//! how the sandbox starts. Which calls to make is `snapshot`'s and the applier's business.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::account::{AccountClient, AccountConfig};
use super::environment::EnvironmentClient;
use super::error::{LiveError, Subject};
use super::http::{CallCounter, ClientSettings, Transport};
use super::traits::{AccountApi, EnvironmentApi};
use crate::cli::env_vars;
use crate::model::{Account, Endpoint, Environment, Secret};

/// Hands out a client per environment and account.
pub trait Connector: Send + Sync {
    fn environment<'a>(
        &'a self,
        env: &'a Environment,
    ) -> BoxFuture<'a, Result<Arc<dyn EnvironmentApi>, LiveError>>;

    fn account<'a>(
        &'a self,
        account: &'a Account,
    ) -> BoxFuture<'a, Result<Arc<dyn AccountApi>, LiveError>>;

    /// HTTP requests sent so far through the clients handed out (0 for fakes that do not count).
    fn api_calls(&self) -> u64 {
        0
    }
}

/// How to reach a running sandbox named `sandbox://NAME`.
pub struct SandboxEndpoint {
    /// The environment base URL (`http://127.0.0.1:PORT/...`).
    pub base_url: String,
    /// A management token the sandbox accepts.
    pub management_token: Secret<String>,
    /// The sandbox's Account Management API base.
    pub account_api_base: String,
    /// The sandbox's OAuth token endpoint.
    pub token_url: String,
    /// An OAuth client (id, secret) the sandbox accepts, used for a sandbox account whose
    /// client variables are not set.
    pub oauth_client: Option<(String, Secret<String>)>,
}

/// Starts (or finds) the sandbox of a name. Called once per environment or account that
/// points at it; caching running sandboxes is the resolver's job.
pub type SandboxResolver =
    Arc<dyn Fn(&str) -> BoxFuture<'static, anyhow::Result<SandboxEndpoint>> + Send + Sync>;

/// The connector of the real command line: URLs from the spec, credentials from the process
/// environment, sandboxes through the resolver when one is set. Cheap to clone (the clones
/// share the transport and the running sandboxes).
#[derive(Clone)]
pub struct DefaultConnector {
    transport: Transport,
    sandbox: Option<SandboxResolver>,
}

impl DefaultConnector {
    pub fn new(settings: &ClientSettings) -> Result<Self, LiveError> {
        Ok(DefaultConnector {
            transport: Transport::new(settings)?,
            sandbox: None,
        })
    }

    pub fn with_sandbox_resolver(mut self, resolver: SandboxResolver) -> Self {
        self.sandbox = Some(resolver);
        self
    }

    /// The counter every client of this connector bumps.
    pub fn calls(&self) -> &CallCounter {
        self.transport.calls()
    }

    async fn sandbox(&self, subject: &Subject, name: &str) -> Result<SandboxEndpoint, LiveError> {
        let resolver = self.sandbox.as_ref().ok_or_else(|| LiveError::Config {
            subject: subject.clone(),
            reason: format!(
                "`sandbox://{name}` cannot be reached: this build has no sandbox resolver"
            ),
        })?;
        resolver(name).await.map_err(|e| LiveError::Config {
            subject: subject.clone(),
            reason: format!("cannot start sandbox `{name}`: {e:#}"),
        })
    }

    /// An environment's API base URL and management token: for `Endpoint::Url` the token in
    /// the variable `token_env` names; for a sandbox its own URL and management token, unless
    /// `token_env` names a variable that is set (it wins over the sandbox's). The one lookup
    /// behind every environment client and every other call that needs the management token
    /// (metrics ingest).
    pub async fn management_endpoint(
        &self,
        env: &Environment,
    ) -> Result<(String, Secret<String>), LiveError> {
        let subject = Subject::Environment(env.name.to_string());
        match &env.endpoint {
            Endpoint::Url { base } => {
                let var = env.token_env.as_deref().ok_or_else(|| LiveError::Config {
                    subject: subject.clone(),
                    reason: "no `token_env` names the variable holding the management token; hint: add `token_env: DT_..._TOKEN`".into(),
                })?;
                let token = credential(&subject, var, "the environment's management token")?;
                Ok((base.clone(), Secret::new(token)))
            }
            Endpoint::Sandbox { name } => {
                let sandbox = self.sandbox(&subject, name).await?;
                // A token_env set for a sandbox environment still wins over the seed's.
                let token = match env.token_env.as_deref() {
                    Some(var)
                        if env_vars::spec_named(var).is_some_and(|v| !v.trim().is_empty()) =>
                    {
                        Secret::new(credential(&subject, var, "the management token")?)
                    }
                    _ => sandbox.management_token,
                };
                Ok((sandbox.base_url, token))
            }
        }
    }
}

/// The value of the variable `var`, trimmed; an error naming it when unset or empty.
fn credential(subject: &Subject, var: &str, what: &'static str) -> Result<String, LiveError> {
    let value = env_vars::spec_named(var).unwrap_or_default();
    let value = value.trim();
    if value.is_empty() {
        return Err(LiveError::MissingCredential {
            subject: subject.clone(),
            var: var.to_owned(),
            what,
        });
    }
    Ok(value.to_owned())
}

impl Connector for DefaultConnector {
    fn environment<'a>(
        &'a self,
        env: &'a Environment,
    ) -> BoxFuture<'a, Result<Arc<dyn EnvironmentApi>, LiveError>> {
        async move {
            let (base, token) = self.management_endpoint(env).await?;
            let client = EnvironmentClient::new(env.name.clone(), &base, token, &self.transport)?;
            Ok(Arc::new(client) as Arc<dyn EnvironmentApi>)
        }
        .boxed()
    }

    fn account<'a>(
        &'a self,
        account: &'a Account,
    ) -> BoxFuture<'a, Result<Arc<dyn AccountApi>, LiveError>> {
        async move {
            let subject = Subject::Account(account.name.clone());
            let sandbox_name = [&account.api_base, &account.token_url]
                .into_iter()
                .find_map(|u| u.strip_prefix("sandbox://"))
                .map(|n| n.trim_end_matches('/').to_owned());
            let sandbox = match &sandbox_name {
                Some(name) => Some(self.sandbox(&subject, name).await?),
                None => None,
            };
            let pick = |configured: &str, sandboxed: Option<&str>| match sandboxed {
                Some(url) if configured.starts_with("sandbox://") => url.to_owned(),
                _ => configured.to_owned(),
            };
            let api_base = pick(
                &account.api_base,
                sandbox.as_ref().map(|s| s.account_api_base.as_str()),
            );
            let token_url = pick(
                &account.token_url,
                sandbox.as_ref().map(|s| s.token_url.as_str()),
            );
            let set = |var: &str| env_vars::spec_named(var).is_some_and(|v| !v.trim().is_empty());
            let (client_id, client_secret) = match sandbox.and_then(|s| s.oauth_client) {
                Some(client)
                    if !set(&account.client_id_env) && !set(&account.client_secret_env) =>
                {
                    client
                }
                _ => (
                    credential(&subject, &account.client_id_env, "the OAuth client id")?,
                    Secret::new(credential(
                        &subject,
                        &account.client_secret_env,
                        "the OAuth client secret",
                    )?),
                ),
            };
            let config = AccountConfig {
                name: account.name.clone(),
                uuid: account.uuid.clone(),
                api_base,
                token_url,
                client_id,
                client_secret,
                scopes: account.oauth_scopes.clone(),
                refresh_margin: std::time::Duration::from_secs(30),
            };
            let client = AccountClient::new(config, &self.transport)?;
            Ok(Arc::new(client) as Arc<dyn AccountApi>)
        }
        .boxed()
    }

    fn api_calls(&self) -> u64 {
        self.transport.calls().get()
    }
}

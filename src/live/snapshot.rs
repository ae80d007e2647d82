//! Reading the live state the planner needs: [`read_snapshot`].
//!
//! Per environment: one paginated list per token kind (never a call per token) and, when the
//! spec manages the tenant token there, one connection-info call for its fingerprint. The
//! caller's id comes from the management token itself (a lookup only for old-format tokens),
//! its expiry from the list. The calls of one environment run together, and environments (and
//! accounts) are read concurrently up to a bound the caller gives (large: the command reads a
//! whole fleet at once); how many requests reach one host at a time is the transport's cap per
//! host (`http`, `pacing`), not this module's. Per account: the platform token list.
//!
//! Missing permissions that only matter for things the spec does not manage become warnings
//! (an ActiveGate token list the spec does not need, a tenant token that cannot be read); every
//! other failure fails the snapshot, naming the environment. This module decides *what* to read;
//! the clients decide *how*.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use time::{Duration, OffsetDateTime};

use super::connect::Connector;
use super::error::LiveError;
use crate::model::{
    Account, AccountName, Desired, EnvName, Environment, Home, LiveAccount, LiveEnvironment,
    LiveSnapshot, TokenKind,
};

/// The management token is reported when it expires within this long.
pub const CALLER_EXPIRY_WARNING: Duration = Duration::days(14);

/// What [`read_snapshot`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRead {
    pub snapshot: LiveSnapshot,
    /// Secret-free notes for the user, in environment order.
    pub warnings: Vec<String>,
    /// HTTP requests this read sent (as counted by the connector).
    pub api_calls: u64,
}

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("unknown environment `{name}`; hint: the spec declares {}", known.join(", "))]
    UnknownEnvironment { name: EnvName, known: Vec<String> },
    /// Every environment or account that failed, in name order.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Live(Vec<LiveError>),
}

enum Outcome {
    Environment(EnvName, Result<(LiveEnvironment, Vec<String>), LiveError>),
    Account(AccountName, Result<LiveAccount, LiveError>),
}

/// Read every environment of `desired` (or only those in `only_envs` when it is not empty) and
/// every account of `desired`; at most `concurrency` environments and accounts at a time (the
/// requests they send are further capped per host by the transport).
pub async fn read_snapshot(
    desired: &Desired,
    only_envs: &[EnvName],
    connector: &dyn Connector,
    concurrency: usize,
) -> Result<SnapshotRead, SnapshotError> {
    read_snapshot_reporting(desired, only_envs, connector, concurrency, &|_| {}).await
}

/// As [`read_snapshot`], telling `read` (`environment prod`, `account main`) as each one has been
/// read or has failed: a terminal's progress bar.
pub async fn read_snapshot_reporting(
    desired: &Desired,
    only_envs: &[EnvName],
    connector: &dyn Connector,
    concurrency: usize,
    read: &(dyn Fn(&str) + Sync),
) -> Result<SnapshotRead, SnapshotError> {
    for name in only_envs {
        if !desired.environments.contains_key(name) {
            return Err(SnapshotError::UnknownEnvironment {
                name: name.clone(),
                known: desired.environments.keys().map(|k| k.to_string()).collect(),
            });
        }
    }
    let calls_before = connector.api_calls();
    let mut jobs: Vec<BoxFuture<'_, Outcome>> = Vec::new();
    for env in desired.environments.values() {
        if only_envs.is_empty() || only_envs.contains(&env.name) {
            jobs.push(
                async move {
                    let result = read_environment(desired, env, connector).await;
                    Outcome::Environment(env.name.clone(), result)
                }
                .boxed(),
            );
        }
    }
    // Accounts belong to no environment: every account the spec names is read, whatever the
    // environment filter (narrowing accounts is the caller's business, by narrowing `desired`).
    for account in desired.accounts.values() {
        jobs.push(
            async move {
                let result = read_account(account, connector).await;
                Outcome::Account(account.name.clone(), result)
            }
            .boxed(),
        );
    }
    let outcomes: Vec<Outcome> = futures::stream::iter(jobs)
        .buffer_unordered(concurrency.max(1))
        .inspect(|outcome| match outcome {
            Outcome::Environment(name, _) => read(&format!("environment {name}")),
            Outcome::Account(name, _) => read(&format!("account {name}")),
        })
        .collect()
        .await;

    let mut snapshot = LiveSnapshot::default();
    let mut warnings = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Environment(name, Ok((env, notes))) => {
                warnings.insert(name.to_string(), notes);
                snapshot.environments.insert(name, env);
            }
            Outcome::Environment(name, Err(e)) => {
                errors.insert(format!("environment {name}"), e);
            }
            Outcome::Account(name, Ok(account)) => {
                snapshot.accounts.insert(name, account);
            }
            Outcome::Account(name, Err(e)) => {
                errors.insert(format!("account {name}"), e);
            }
        }
    }
    if !errors.is_empty() {
        return Err(SnapshotError::Live(errors.into_values().collect()));
    }
    Ok(SnapshotRead {
        snapshot,
        warnings: warnings.into_values().flatten().collect(),
        api_calls: connector.api_calls().saturating_sub(calls_before),
    })
}

async fn read_environment(
    desired: &Desired,
    env: &Environment,
    connector: &dyn Connector,
) -> Result<(LiveEnvironment, Vec<String>), LiveError> {
    let client = connector.environment(env).await?;
    let home = Home::Environment(env.name.clone());
    let needs_activegate = desired
        .tokens
        .iter()
        .any(|t| t.kind == TokenKind::ActivegateToken && t.home == home);
    let needs_tenant = desired
        .tenant_tokens
        .iter()
        .any(|t| t.environment == env.name);

    let tenant = async {
        if needs_tenant {
            Some(client.tenant_token_fingerprint().await)
        } else {
            None
        }
    };
    let rotation = async {
        if needs_tenant {
            Some(client.tenant_rotation_status().await)
        } else {
            None
        }
    };
    let (caller, api_tokens, activegate_tokens, tenant, rotation) = futures::join!(
        client.caller_id(),
        client.list_api_tokens(),
        client.list_activegate_tokens(),
        tenant,
        rotation
    );

    let mut warnings = Vec::new();
    let api_tokens = api_tokens?;
    let activegate_tokens = match activegate_tokens {
        Ok(tokens) => tokens,
        Err(e) if e.status() == Some(403) && !needs_activegate => {
            warnings.push(format!(
                "environment `{}`: ActiveGate tokens not listed, the management token lacks `activeGateTokenManagement.read` ({e})",
                env.name
            ));
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let tenant_token = match tenant {
        None => None,
        Some(Ok(fingerprint)) => Some(fingerprint),
        Some(Err(e)) if e.status() == Some(403) => {
            warnings.push(format!(
                "environment `{}`: the tenant token cannot be read, the management token lacks `InstallerDownload`; its rotation is planned without knowing which token the targets should hold ({e})",
                env.name
            ));
            None
        }
        Some(Err(e)) => return Err(e),
    };
    // Without the status (no endpoint, or no permission for it) the rotation record alone tells
    // whether a rotation is open (`plan::tenant_record`).
    let tenant_rotation_active = match rotation {
        None => None,
        Some(Ok(active)) => active,
        Some(Err(e)) if e.status() == Some(403) => {
            warnings.push(format!(
                "environment `{}`: the tenant rotation status cannot be read ({e}); whether a rotation is open is taken from tokensmith's record alone",
                env.name
            ));
            None
        }
        Some(Err(e)) => return Err(e),
    };
    let caller = caller?;
    let server_time = client.server_time();
    let caller_token = caller
        .as_ref()
        .and_then(|id| api_tokens.iter().find(|t| &t.id == id));
    if let Some((id, expires)) = caller_token.and_then(|t| Some((&t.id, t.expires?))) {
        let now = server_time.unwrap_or_else(OffsetDateTime::now_utc);
        if expires - now < CALLER_EXPIRY_WARNING {
            let hint = env
                .token_env
                .as_deref()
                .map(|v| format!("; hint: create a new one and put it in `{v}`"))
                .unwrap_or_default();
            warnings.push(format!(
                "environment `{}`: the management token {id} expires at {}{hint}",
                env.name,
                super::dates::format_date(expires),
            ));
        }
    }
    if caller.is_none() {
        warnings.push(format!(
            "environment `{}`: the management token could not be looked up, so it cannot be recognised among the tokens",
            env.name
        ));
    }
    Ok((
        LiveEnvironment {
            caller,
            api_tokens,
            activegate_tokens,
            tenant_token,
            tenant_rotation_active,
            server_time,
        },
        warnings,
    ))
}

async fn read_account(
    account: &Account,
    connector: &dyn Connector,
) -> Result<LiveAccount, LiveError> {
    let client = connector.account(account).await?;
    let platform_tokens = client.list_platform_tokens().await?;
    Ok(LiveAccount {
        platform_tokens,
        server_time: client.server_time(),
    })
}

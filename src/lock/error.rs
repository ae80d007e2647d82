//! Why an apply lock could not be taken, read or released: [`LockError`], the outcomes every
//! backend shares (held by another run, not locked, a wrong id), and each backend's own
//! failures ([`FileLockError`], [`GitRemoteLockError`], `LeaseLockError`) wrapped in it, so callers handle one
//! error type whatever the backend.
//!
//! Not here: the backends that produce these errors.

use std::io;
use std::path::PathBuf;

use super::holder::LockInfo;
use crate::model::EnvName;

/// Why a lock could not be taken, read or released.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{env} is locked by {holder} (lock {id}, taken {taken}{commit}); wait for that apply to finish, or if it died run `{unlock}`",
        env = subject(&.0.environment),
        holder = .0.holder,
        id = .0.id,
        taken = .0.taken(),
        unlock = .0.force_unlock_command(),
        commit = .0.commit.as_deref().map(|c| format!(", commit {c}")).unwrap_or_default())]
    Held(Box<LockInfo>),
    #[error("{} has no lock to release", subject(.env))]
    NotLocked { env: EnvName },
    #[error("{} is locked by lock {actual}, not {given}; nothing was released", subject(.env))]
    WrongId {
        env: EnvName,
        given: String,
        actual: String,
    },
    /// The local file lock failed.
    #[error(transparent)]
    File(#[from] FileLockError),
    /// The lock kept in a git remote failed.
    #[error(transparent)]
    GitRemote(#[from] GitRemoteLockError),
    /// The lease kept in the Dynatrace environment failed.
    #[error(transparent)]
    Lease(#[from] super::lease::LeaseLockError),
}

/// What a lock name locks, for messages: "environment `prod`", or "account `main`" for the lock
/// name `account-main` (`EnvName::account_lock`).
pub fn subject(name: &EnvName) -> String {
    match name
        .as_str()
        .strip_prefix(crate::model::ACCOUNT_LOCK_PREFIX)
    {
        Some(account) => format!("account `{account}`"),
        None => format!("environment `{name}`"),
    }
}

impl LockError {
    /// Whether this means "someone else holds the lock" (as opposed to a broken lock, file
    /// system or remote).
    pub fn is_held(&self) -> bool {
        matches!(self, LockError::Held(_))
    }
}

/// Failures of the local file lock.
#[derive(Debug, thiserror::Error)]
pub enum FileLockError {
    #[error("lock file {path} is not readable: {cause}; inspect and delete it by hand")]
    Corrupt {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error("lock file {path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
}

/// Failures of the lock kept in a git remote.
#[derive(Debug, thiserror::Error)]
pub enum GitRemoteLockError {
    #[error("lock ref {reference} in remote `{remote}` does not hold a tokensmith lock: {cause}; inspect it with `git fetch {remote} {reference} && git log -1 FETCH_HEAD`")]
    Corrupt {
        remote: String,
        reference: String,
        cause: serde_json::Error,
    },
    #[error("lock ref {reference} in remote `{remote}` changed while it was being released; run the command again")]
    Changed { remote: String, reference: String },
    #[error("`git {command}` failed: {stderr}")]
    GitCommand { command: String, stderr: String },
    #[error("`git {command}` with remote `{remote}` did not finish within {} s and was stopped; check that the remote is reachable from here (`git ls-remote {remote}`)", after.as_secs_f64())]
    TimedOut {
        command: String,
        remote: String,
        after: std::time::Duration,
    },
    #[error("could not run `git` (needed for locks in a git remote): {0}; install git or use the local lock")]
    Spawn(std::io::Error),
    #[error("git repository {path}: {context}: {cause}")]
    Repo {
        path: PathBuf,
        context: String,
        cause: git2::Error,
    },
}

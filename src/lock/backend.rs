//! The contract every place that keeps apply locks fulfils: [`LockBackend`] takes, reads and
//! force-releases the lock of one environment, and a taken lock is a [`HeldLock`] that releases
//! itself when dropped. The local file lock, the git-remote lock and the environment lease
//! implement it, and [`super::Locks`] layers them without any caller changing.
//!
//! Not here: choosing a backend (`Locks`) and the backends themselves.

use std::fmt;
use std::time::Duration;

use super::error::LockError;
use super::holder::LockInfo;
use crate::model::EnvName;

/// A place apply locks are kept.
pub trait LockBackend: fmt::Debug + Send + Sync {
    /// Whether this backend keeps `env`'s lock (the environment lease keeps only Dynatrace
    /// environments it can reach; files and git refs keep every name).
    fn keeps(&self, _env: &EnvName) -> bool {
        true
    }

    /// Take `env`'s lock for this process, applying `commit`, waiting up to `wait` while another
    /// run holds it; then fail with [`LockError::Held`] naming that holder.
    fn acquire(
        &self,
        env: &EnvName,
        commit: Option<String>,
        wait: Duration,
    ) -> Result<Box<dyn HeldLock>, LockError>;

    /// The current holder of `env`'s lock, if any.
    fn current(&self, env: &EnvName) -> Result<Option<LockInfo>, LockError>;

    /// Release `env`'s lock if its id is `id`, whoever holds it (`tokensmith force-unlock`).
    fn force_unlock(&self, env: &EnvName, id: &str) -> Result<LockInfo, LockError>;
}

/// A lock this process holds. Dropping it releases it silently, and only if it is still ours
/// (a lock that was force-unlocked and taken by another run is left alone).
pub trait HeldLock: fmt::Debug + Send {
    fn info(&self) -> &LockInfo;

    /// Release now, reporting errors.
    fn release(self: Box<Self>) -> Result<(), LockError>;
}

//! Apply locks: one per environment and per account (named `account-NAME`), so two runs never
//! apply to the same environment or account at once.
//!
//! [`Locks`] is the one door for the `apply` and `force-unlock` commands: [`Locks::for_spec`]
//! picks where a spec's locks are kept ([`LockStore`]), [`Locks::acquire`] takes a lock and
//! returns an [`ApplyLock`] that releases itself when dropped. Every backend keeps the same
//! [`LockInfo`] and fails with the same [`LockError`] (held by another run, not locked, a wrong
//! id, or the backend's own failure).
//!
//! - [`mod@file`]: files under `.tokensmith/locks/` next to the spec, for runs that share a disk.
//! - [`git_remote`]: refs in a git remote, for CI runners that share nothing (`--lock-remote`).
//! - [`lease`]: a lease kept in the Dynatrace environment (or account) itself, for runs on
//!   different machines that share nothing else. `apply` always adds it as the last layer
//!   ([`Locks::with_leases`]), over the local file or git-remote lock.
//! - [`backend`]: the contract all implement ([`LockBackend`], [`HeldLock`]); [`Locks`] layers
//!   backends, so a further one plugs in here without any caller changing.
//! - [`holder`]: [`LockInfo`] and how this process describes itself as a holder.
//! - [`error`]: [`LockError`] and each backend's own failures.
//!
//! Not here: what runs under the lock (`apply`), and the command-line flags that choose the
//! store (`cli`).

pub mod backend;
pub mod error;
pub mod file;
pub mod git_remote;
pub mod holder;
pub mod lease;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use backend::{HeldLock, LockBackend};
pub use error::{FileLockError, GitRemoteLockError, LockError};
pub use file::FileLocks;
pub use git_remote::{lock_ref, GitRemoteLocks};
pub use holder::LockInfo;
pub use lease::{LeaseLockError, Leases};
pub use lease::{LEASE_LIFETIME, STOP_STARTING_BEFORE_LEASE_ENDS};

use crate::model::EnvName;

/// Where a spec's apply locks are kept, as the command line chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockStore {
    /// Files under `.tokensmith/locks/` next to the spec (the default).
    Files,
    /// Refs in this git remote (a remote name, URL or path, as `git push` accepts it) of the
    /// repository holding the spec.
    GitRemote(String),
}

impl LockStore {
    /// The store `--lock-remote REMOTE` names, or the local files without it.
    pub fn from_lock_remote(remote: Option<&str>) -> Self {
        match remote {
            Some(remote) => LockStore::GitRemote(remote.to_owned()),
            None => LockStore::Files,
        }
    }
}

/// Where apply locks are kept: layers of backends behind one type, taken in order (the local
/// lock first, the environment lease last) and released in reverse. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Locks {
    layers: Vec<Arc<dyn LockBackend>>,
}

/// A held apply lock, of whichever backends keep it; released when dropped.
#[derive(Debug)]
pub struct ApplyLock {
    /// One per layer that keeps the environment, in the order taken (never empty).
    held: Vec<Box<dyn HeldLock>>,
}

impl ApplyLock {
    /// The first layer's record (the local lock's, whose id `force-unlock` takes).
    pub fn info(&self) -> &LockInfo {
        self.held[0].info()
    }

    /// Every layer's record, in the order taken.
    pub fn layers(&self) -> impl Iterator<Item = &LockInfo> {
        self.held.iter().map(|h| h.info())
    }

    /// Release now, the last layer first, reporting the first error (dropping releases
    /// silently).
    pub fn release(mut self) -> Result<(), LockError> {
        let mut first_error = None;
        while let Some(layer) = self.held.pop() {
            if let Err(e) = layer.release() {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for ApplyLock {
    fn drop(&mut self) {
        // The last layer taken goes first, as with `release`.
        while let Some(layer) = self.held.pop() {
            drop(layer);
        }
    }
}

impl Locks {
    /// The locks of the spec at `spec_path`, kept in `store`: the one constructor the `apply`
    /// and `force-unlock` commands share, so both always look in the same place. `credentials`:
    /// the variables the spec names as credentials, which `git` (for a remote) does not get.
    pub fn for_spec<'a>(
        spec_path: &Path,
        store: &LockStore,
        credentials: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let dir = match spec_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        };
        match store {
            LockStore::Files => Locks::new(FileLocks::new(dir.join(".tokensmith").join("locks"))),
            LockStore::GitRemote(remote) => {
                Locks::new(GitRemoteLocks::new(dir, remote.clone()).with_hidden_env(credentials))
            }
        }
    }

    /// Locks kept by `backend`.
    pub fn new(backend: impl LockBackend + 'static) -> Self {
        Locks {
            layers: vec![Arc::new(backend)],
        }
    }

    /// These locks with `backend` as a further layer, taken after the others.
    pub fn with_layer(mut self, backend: impl LockBackend + 'static) -> Self {
        self.layers.push(Arc::new(backend));
        self
    }

    /// These locks and, for every environment and account `leases` reaches, a lease kept in
    /// Dynatrace itself: what `apply`, `leak` and `force-unlock` always use.
    pub fn with_leases(self, leases: Leases) -> Self {
        self.with_layer(leases)
    }

    fn layers_of<'a>(&'a self, env: &'a EnvName) -> impl Iterator<Item = &'a Arc<dyn LockBackend>> {
        self.layers.iter().filter(move |l| l.keeps(env))
    }

    /// Take `env`'s lock in every layer that keeps it, waiting up to `wait` in each while
    /// another run holds it; then fail with [`LockError::Held`] naming the holder (the layers
    /// already taken are released).
    pub fn acquire(
        &self,
        env: &EnvName,
        commit: Option<String>,
        wait: Duration,
    ) -> Result<ApplyLock, LockError> {
        let mut lock = ApplyLock { held: Vec::new() };
        let started = std::time::Instant::now();
        for layer in self.layers_of(env) {
            let left = wait.saturating_sub(started.elapsed());
            lock.held.push(layer.acquire(env, commit.clone(), left)?);
        }
        assert!(!lock.held.is_empty(), "the first layer keeps every name");
        Ok(lock)
    }

    /// The current holder of `env`'s lock, if any: the first layer that is held.
    pub fn current(&self, env: &EnvName) -> Result<Option<LockInfo>, LockError> {
        for layer in self.layers_of(env) {
            if let Some(info) = layer.current(env)? {
                return Ok(Some(info));
            }
        }
        Ok(None)
    }

    /// What `tokensmith force-unlock ENV LOCK_ID` does: release `env`'s lock if its id is `id`,
    /// in whichever layer holds a lock of that id.
    pub fn force_unlock(&self, env: &EnvName, id: &str) -> Result<LockInfo, LockError> {
        let mut refused = None;
        for layer in self.layers_of(env) {
            match layer.force_unlock(env, id) {
                Ok(info) => return Ok(info),
                Err(e @ LockError::WrongId { .. }) => {
                    refused.get_or_insert(e);
                }
                Err(LockError::NotLocked { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(refused.unwrap_or_else(|| LockError::NotLocked { env: env.clone() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_locks_through_the_common_door() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("tokensmith.yaml");
        let locks = Locks::for_spec(&spec, &LockStore::Files, []);
        let env = EnvName::new("prod");
        let guard = locks.acquire(&env, None, Duration::ZERO).unwrap();
        assert!(dir.path().join(".tokensmith/locks/prod.lock").exists());
        let err = locks.acquire(&env, None, Duration::ZERO).unwrap_err();
        assert!(err.is_held(), "{err:?}");
        assert!(err.to_string().contains(&guard.info().id));
        assert_eq!(locks.current(&env).unwrap().as_ref(), Some(guard.info()));
        let err = locks.force_unlock(&env, "wrong").unwrap_err();
        assert!(!err.is_held());
        assert!(err.to_string().contains("nothing was released"), "{err}");
        let id = guard.info().id.clone();
        std::mem::forget(guard);
        assert_eq!(locks.force_unlock(&env, &id).unwrap().id, id);
        assert_eq!(locks.current(&env).unwrap(), None);
    }

    #[test]
    fn the_lock_store_follows_the_lock_remote_flag() {
        assert_eq!(LockStore::from_lock_remote(None), LockStore::Files);
        assert_eq!(
            LockStore::from_lock_remote(Some("origin")),
            LockStore::GitRemote("origin".to_owned())
        );
    }
}

//! Apply locks: one per environment, so two runs never apply to the same environment at once.
//!
//! [`Locks`] is the one door for the `apply` and `force-unlock` commands: [`Locks::for_spec`]
//! picks where a spec's locks are kept ([`LockStore`]), [`Locks::acquire`] takes a lock and
//! returns an [`ApplyLock`] that releases itself when dropped. Every backend keeps the same
//! [`LockInfo`] and fails with the same [`LockError`] (held by another run, not locked, a wrong
//! id, or the backend's own failure).
//!
//! - [`file`]: files under `.tokensmith/locks/` next to the spec, for runs that share a disk.
//! - [`git_remote`]: refs in a git remote, for CI runners that share nothing (`--lock-remote`).
//! - [`backend`]: the contract both implement ([`LockBackend`], [`HeldLock`]); a further
//!   backend (a lease kept in Dynatrace itself, say) implements it and is chosen here, in
//!   [`LockStore`] and [`Locks::for_spec`], without any caller changing.
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

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use backend::{HeldLock, LockBackend};
pub use error::{FileLockError, GitRemoteLockError, LockError};
pub use file::FileLocks;
pub use git_remote::{lock_ref, GitRemoteLocks};
pub use holder::LockInfo;

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

/// Where apply locks are kept: one backend behind one type. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Locks {
    backend: Arc<dyn LockBackend>,
}

/// A held apply lock, of whichever backend; released when dropped.
#[derive(Debug)]
pub struct ApplyLock {
    held: Box<dyn HeldLock>,
}

impl ApplyLock {
    pub fn info(&self) -> &LockInfo {
        self.held.info()
    }

    /// Release now, reporting errors (dropping releases silently).
    pub fn release(self) -> Result<(), LockError> {
        self.held.release()
    }
}

impl Locks {
    /// The locks of the spec at `spec_path`, kept in `store`: the one constructor the `apply`
    /// and `force-unlock` commands share, so both always look in the same place.
    pub fn for_spec(spec_path: &Path, store: &LockStore) -> Self {
        let dir = match spec_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        };
        match store {
            LockStore::Files => Locks::new(FileLocks::new(dir.join(".tokensmith").join("locks"))),
            LockStore::GitRemote(remote) => Locks::new(GitRemoteLocks::new(dir, remote.clone())),
        }
    }

    /// Locks kept by `backend`.
    pub fn new(backend: impl LockBackend + 'static) -> Self {
        Locks {
            backend: Arc::new(backend),
        }
    }

    /// Take `env`'s lock, waiting up to `wait` while another run holds it; then fail with
    /// [`LockError::Held`] naming the holder.
    pub fn acquire(
        &self,
        env: &EnvName,
        commit: Option<String>,
        wait: Duration,
    ) -> Result<ApplyLock, LockError> {
        Ok(ApplyLock {
            held: self.backend.acquire(env, commit, wait)?,
        })
    }

    /// The current holder of `env`'s lock, if any.
    pub fn current(&self, env: &EnvName) -> Result<Option<LockInfo>, LockError> {
        self.backend.current(env)
    }

    /// What `tokensmith force-unlock ENV LOCK_ID` does: release `env`'s lock if its id is `id`.
    pub fn force_unlock(&self, env: &EnvName, id: &str) -> Result<LockInfo, LockError> {
        self.backend.force_unlock(env, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_locks_through_the_common_door() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("tokensmith.yaml");
        let locks = Locks::for_spec(&spec, &LockStore::Files);
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

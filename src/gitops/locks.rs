//! One door to both kinds of apply lock, for the `apply` and `force-unlock` commands: the local
//! file lock by default, the git-remote lock when runners share nothing (`--lock-remote`).
//! Both say the same things ([`LockInfo`], [`LockError`]); this module only dispatches.

use std::time::Duration;

use super::remote_lock::{RemoteLockError, RemoteLockGuard, RemoteLocks};
use crate::apply::lock::{LocalLocks, LockError, LockGuard, LockInfo};
use crate::model::EnvName;

/// Where apply locks are kept.
#[derive(Debug, Clone)]
pub enum ApplyLocks {
    Local(LocalLocks),
    Remote(RemoteLocks),
}

/// A held lock of either kind; released when dropped.
#[derive(Debug)]
pub enum ApplyLockGuard {
    Local(LockGuard),
    Remote(RemoteLockGuard),
}

impl ApplyLockGuard {
    pub fn info(&self) -> &LockInfo {
        match self {
            ApplyLockGuard::Local(g) => g.info(),
            ApplyLockGuard::Remote(g) => g.info(),
        }
    }

    /// Release now, reporting errors.
    pub fn release(self) -> Result<(), RemoteLockError> {
        match self {
            ApplyLockGuard::Local(g) => g.release().map_err(RemoteLockError::from),
            ApplyLockGuard::Remote(g) => g.release(),
        }
    }
}

impl ApplyLocks {
    /// Take `env`'s lock, waiting up to `wait` while another run holds it. A held lock is
    /// `RemoteLockError::Lock(LockError::Held(..))` for both kinds.
    pub fn acquire(
        &self,
        env: &EnvName,
        commit: Option<String>,
        wait: Duration,
    ) -> Result<ApplyLockGuard, RemoteLockError> {
        match self {
            ApplyLocks::Local(l) => Ok(ApplyLockGuard::Local(l.acquire(env, commit, wait)?)),
            ApplyLocks::Remote(r) => Ok(ApplyLockGuard::Remote(r.acquire(env, commit, wait)?)),
        }
    }

    pub fn current(&self, env: &EnvName) -> Result<Option<LockInfo>, RemoteLockError> {
        match self {
            ApplyLocks::Local(l) => Ok(l.current(env)?),
            ApplyLocks::Remote(r) => r.current(env),
        }
    }

    /// What `tokensmith force-unlock ENV LOCK_ID` does.
    pub fn force_unlock(&self, env: &EnvName, id: &str) -> Result<LockInfo, RemoteLockError> {
        match self {
            ApplyLocks::Local(l) => l.force_unlock(env, id).map_err(RemoteLockError::from),
            ApplyLocks::Remote(r) => r.force_unlock(env, id),
        }
    }
}

/// Whether an error means "someone else holds the lock" (as opposed to a broken lock or git).
pub fn is_held(err: &RemoteLockError) -> bool {
    matches!(err, RemoteLockError::Lock(LockError::Held(..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_locks_through_the_common_door() {
        let dir = tempfile::tempdir().unwrap();
        let locks = ApplyLocks::Local(LocalLocks::new(dir.path()));
        let env = EnvName::new("prod");
        let guard = locks.acquire(&env, None, Duration::ZERO).unwrap();
        let err = locks.acquire(&env, None, Duration::ZERO).unwrap_err();
        assert!(is_held(&err), "{err:?}");
        assert!(err.to_string().contains(&guard.info().id));
        assert_eq!(locks.current(&env).unwrap().as_ref(), Some(guard.info()));
        let err = locks.force_unlock(&env, "wrong").unwrap_err();
        assert!(!is_held(&err));
        assert!(err.to_string().contains("nothing was released"), "{err}");
        let id = guard.info().id.clone();
        std::mem::forget(guard);
        assert_eq!(locks.force_unlock(&env, &id).unwrap().id, id);
        assert_eq!(locks.current(&env).unwrap(), None);
    }
}

//! The local file lock: one JSON file per environment, for runs that share a disk.
//!
//! A lock is a file `<dir>/<environment>.lock` holding the [`LockInfo`] (who took it, from which
//! commit, when, and a random id). It appears with its content in one step (a hard link from a
//! private file, which fails when the lock exists), so a concurrent acquirer never reads it
//! half-written. Taking a lock that is held waits up to a timeout, then fails with an error that
//! names the holder and the `force-unlock` command.
//! A lock held by a process on this machine that no longer runs (a killed or crashed apply) is
//! taken over: that process can do nothing any more, and every step of the next apply re-checks
//! live state first. Any other lock is never broken automatically, however old: its holder may
//! be running elsewhere, and a human decides (as with Terraform's `force-unlock`).
//!
//! Not here: choosing this backend (`super::Locks`) and locks kept in a git remote
//! (`super::git_remote`).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::backend::{HeldLock, LockBackend};
use super::error::{FileLockError, LockError};
use super::holder::{lock_id, LockInfo};
use crate::bounded_read::read_regular;
use crate::model::EnvName;

/// The lock directory of one spec (`.tokensmith/locks/` next to it).
#[derive(Debug, Clone)]
pub struct FileLocks {
    dir: PathBuf,
}

impl FileLocks {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileLocks { dir: dir.into() }
    }

    fn path(&self, env: &EnvName) -> PathBuf {
        self.dir.join(format!("{}.lock", file_safe(env.as_str())))
    }

    /// Take the lock of `env`, waiting up to `wait` while another run holds it.
    pub fn acquire(
        &self,
        env: &EnvName,
        commit: Option<String>,
        wait: Duration,
    ) -> Result<FileLockGuard, LockError> {
        let path = self.path(env);
        crate::atomic_write::create_private_dir_all(&self.dir)
            .map_err(|source| io_error(&self.dir, source))?;
        let info = LockInfo::for_this_process(env, commit);
        // The lock appears with its content in one step: written to a file of our own, then
        // hard-linked to the lock's name (which fails if it exists). Creating the lock file
        // itself and writing it afterwards would let a concurrent acquirer read it empty.
        let pending = self
            .dir
            .join(format!(".{}.{}.tmp", file_safe(env.as_str()), info.id));
        write_new(&pending, &info)?;
        let linked = self.link_when_free(&path, &pending, wait);
        let _ = fs::remove_file(&pending);
        linked?;
        Ok(FileLockGuard {
            path,
            info,
            released: false,
        })
    }

    /// Link `pending` to `path` as soon as `path` is free, waiting up to `wait`.
    fn link_when_free(&self, path: &Path, pending: &Path, wait: Duration) -> Result<(), LockError> {
        let deadline = Instant::now() + wait;
        loop {
            match fs::hard_link(pending, path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let held = match read(path)? {
                        Some(held) => held,
                        // Released between our attempt and the read: try again at once.
                        None => continue,
                    };
                    let dead = held.holder_is_dead_here();
                    if dead {
                        // The holder was a process on this machine that no longer runs (killed,
                        // crashed): it can no longer be doing anything, and the next apply
                        // re-checks every step against live state, so the lock is taken over
                        // without hand cleanup.
                        self.break_dead(path, &held)?;
                        continue;
                    }
                    if Instant::now() >= deadline {
                        return Err(LockError::Held(Box::new(held)));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(source) => return Err(io_error(path, source)),
            }
        }
    }

    /// Remove the lock at `path` if it is still `dead`'s. The lock is first moved aside under a
    /// name of our own, so that of two runs breaking it at once only one removes it; if what was
    /// moved turns out to be a newer lock (taken between our read and the move), it is put back.
    fn break_dead(&self, path: &Path, dead: &LockInfo) -> Result<(), LockError> {
        let aside = self.dir.join(format!(".{}.broken-{}", dead.id, lock_id()));
        match fs::rename(path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(io_error(path, source)),
        }
        let moved = read(&aside);
        if !matches!(&moved, Ok(Some(info)) if info.id == dead.id) {
            // Not the dead lock: restore it (unless yet another lock appeared meanwhile, which
            // then holds the environment just the same).
            let _ = fs::hard_link(&aside, path);
        }
        let _ = fs::remove_file(&aside);
        Ok(())
    }

    /// The current holder of `env`'s lock, if any.
    pub fn current(&self, env: &EnvName) -> Result<Option<LockInfo>, LockError> {
        read(&self.path(env))
    }

    /// Remove `env`'s lock if its id is `id` (what `tokensmith force-unlock ENV ID` does).
    pub fn force_unlock(&self, env: &EnvName, id: &str) -> Result<LockInfo, LockError> {
        let path = self.path(env);
        let held = read(&path)?.ok_or_else(|| LockError::NotLocked { env: env.clone() })?;
        if held.id != id {
            return Err(LockError::WrongId {
                env: env.clone(),
                given: id.to_owned(),
                actual: held.id,
            });
        }
        fs::remove_file(&path).map_err(|source| io_error(&path, source))?;
        Ok(held)
    }
}

/// A held lock; released when dropped (only if the file is still ours).
#[derive(Debug)]
pub struct FileLockGuard {
    path: PathBuf,
    info: LockInfo,
    released: bool,
}

impl FileLockGuard {
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// Release now, reporting errors (dropping releases silently).
    pub fn release(mut self) -> Result<(), LockError> {
        self.released = true;
        release(&self.path, &self.info.id)
    }
}

impl Drop for FileLockGuard {
    fn drop(&mut self) {
        if !self.released {
            let _ = release(&self.path, &self.info.id);
        }
    }
}

fn release(path: &Path, id: &str) -> Result<(), LockError> {
    match read(path)? {
        // Someone force-unlocked us and another run took the lock: leave theirs alone.
        Some(held) if held.id != id => Ok(()),
        Some(_) => fs::remove_file(path).map_err(|source| io_error(path, source)),
        None => Ok(()),
    }
}

/// Create `path` (which must not exist) holding `info`, flushed to disk.
fn write_new(path: &Path, info: &LockInfo) -> Result<(), LockError> {
    let io = |source| io_error(path, source);
    // At most readable by others (who is holding it) and writable by its owner only, whatever
    // the umask allows beyond that.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(io)?;
    let json = serde_json::to_vec_pretty(info).expect("lock info serializes");
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(io)
}

fn read(path: &Path) -> Result<Option<LockInfo>, LockError> {
    // A lock file is a few hundred bytes; anything planted in its place is refused, not waited
    // on or read to the end.
    match read_regular(path, 1 << 20) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| {
            FileLockError::Corrupt {
                path: path.to_path_buf(),
                cause: source,
            }
            .into()
        }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(source) => Err(io_error(path, source.into())),
    }
}

/// An I/O failure on `path`.
fn io_error(path: &Path, source: io::Error) -> LockError {
    FileLockError::Io {
        path: path.to_path_buf(),
        cause: source,
    }
    .into()
}

/// Environment names come from YAML keys; keep lock file names to a safe alphabet.
fn file_safe(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl LockBackend for FileLocks {
    fn acquire(
        &self,
        env: &EnvName,
        commit: Option<String>,
        wait: Duration,
    ) -> Result<Box<dyn HeldLock>, LockError> {
        Ok(Box::new(FileLocks::acquire(self, env, commit, wait)?))
    }

    fn current(&self, env: &EnvName) -> Result<Option<LockInfo>, LockError> {
        FileLocks::current(self, env)
    }

    fn force_unlock(&self, env: &EnvName, id: &str) -> Result<LockInfo, LockError> {
        FileLocks::force_unlock(self, env, id)
    }
}

impl HeldLock for FileLockGuard {
    fn info(&self) -> &LockInfo {
        &self.info
    }

    fn release(self: Box<Self>) -> Result<(), LockError> {
        FileLockGuard::release(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_fails_with_holder_and_hint_then_succeeds_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let locks = FileLocks::new(dir.path());
        let env = EnvName::new("prod");
        let guard = locks
            .acquire(&env, Some("abc123".into()), Duration::ZERO)
            .unwrap();
        let err = locks.acquire(&env, None, Duration::ZERO).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&guard.info().id), "{msg}");
        assert!(msg.contains("commit abc123"), "{msg}");
        assert!(msg.contains("tokensmith force-unlock prod"), "{msg}");
        guard.release().unwrap();
        locks.acquire(&env, None, Duration::ZERO).unwrap();
    }

    #[test]
    fn waiting_acquire_gets_the_lock_when_the_holder_releases() {
        let dir = tempfile::tempdir().unwrap();
        let locks = FileLocks::new(dir.path());
        let env = EnvName::new("prod");
        let guard = locks.acquire(&env, None, Duration::ZERO).unwrap();
        let waiter = {
            let locks = locks.clone();
            let env = env.clone();
            std::thread::spawn(move || locks.acquire(&env, None, Duration::from_secs(10)))
        };
        std::thread::sleep(Duration::from_millis(300));
        drop(guard);
        let second = waiter.join().unwrap().unwrap();
        assert_eq!(locks.current(&env).unwrap().unwrap().id, second.info().id);
    }

    #[test]
    fn a_dead_local_holder_is_taken_over_and_force_unlock_needs_the_right_id() {
        let dir = tempfile::tempdir().unwrap();
        let locks = FileLocks::new(dir.path());
        let env = EnvName::new("eu/managed");
        let guard = locks.acquire(&env, None, Duration::ZERO).unwrap();
        let id = guard.info().id.clone();
        // A live holder (this process) blocks; a wrong id is refused; the right one releases.
        std::mem::forget(guard);
        assert!(matches!(
            locks.acquire(&env, None, Duration::ZERO),
            Err(LockError::Held(_))
        ));
        assert!(matches!(
            locks.force_unlock(&env, "000000000000"),
            Err(LockError::WrongId { .. })
        ));
        locks.force_unlock(&env, &id).unwrap();
        assert!(locks.current(&env).unwrap().is_none());
        let path = locks.path(&env);
        assert!(path.file_name().unwrap().to_str().unwrap().contains("%2F"));

        // A holder that was a process on this machine and no longer runs (killed apply): the
        // next acquire takes the lock over, and nothing is left aside in the directory.
        let guard = locks.acquire(&env, None, Duration::ZERO).unwrap();
        std::mem::forget(guard);
        let mut info: LockInfo = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        info.pid = u32::MAX - 1;
        fs::write(&path, serde_json::to_vec(&info).unwrap()).unwrap();
        let taken = locks.acquire(&env, None, Duration::ZERO).unwrap();
        assert_ne!(taken.info().id, info.id);
        drop(taken);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

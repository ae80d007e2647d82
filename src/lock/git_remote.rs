//! Apply locks kept in a git remote, for CI runners that share no disk.
//!
//! The lock of environment `prod` is the ref `refs/tokensmith/locks/prod` in the remote. It points
//! at a parentless commit with an empty tree whose message is the [`LockInfo`] JSON (holder,
//! commit, time, id), so `git log -1 refs/tokensmith/locks/prod` shows who holds it.
//!
//! - acquire: create that commit locally and push it to the ref *without force*. The remote's
//!   `receive-pack` applies a ref update only if the ref still has the value the pusher saw
//!   (absent, for a create), under the ref's lock: of two runners pushing at once exactly one
//!   wins; the other is rejected and reads the holder.
//! - release: delete the ref with `--force-with-lease=<ref>:<our commit>`, so a lock that was
//!   force-unlocked and taken by another run is left alone.
//! - force-unlock: read the holder, check the id, delete with a lease on the holder's commit.
//!
//! Transport: the `git` command line, run in the local repository. git2 is built without network
//! transports here, and libgit2's own local transport does not check the old value of a ref
//! under its lock, so it could let two acquirers both "win". `git push` works the same way with
//! every remote URL the runner can already reach (`origin` in a CI checkout, with the
//! checkout's credentials) and with plain paths, which is what the tests use. git2 only builds
//! the lock commit and reads it back. The remote must accept pushes to `refs/tokensmith/*`.
//!
//! Like the local file lock, a remote lock is never broken automatically, however old.
//! Not here: choosing this backend (`super::Locks`) and the local file lock
//! (`super::file`); both keep the same [`LockInfo`] and fail with the same [`LockError`].

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use git2::{Oid, Repository};

use super::backend::{HeldLock, LockBackend};
use super::error::{GitRemoteLockError, LockError};
use super::holder::LockInfo;
use crate::model::redact::variables_holding_secrets;
use crate::model::EnvName;
use crate::process_group::output_within;

/// The ref holding `env`'s lock. Environment names are percent-encoded to a safe alphabet
/// (`eu/managed` becomes `eu%2Fmanaged`), so every name makes one valid ref component.
pub fn lock_ref(env: &EnvName) -> String {
    let safe: String = env
        .as_str()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("refs/tokensmith/locks/{safe}")
}

/// The locks of one remote, used from one local repository.
#[derive(Debug, Clone)]
pub struct GitRemoteLocks {
    repo_dir: PathBuf,
    remote: String,
    poll: Duration,
    command_deadline: Duration,
    hidden_env: Vec<String>,
}

/// How long one `git` command (a push, an `ls-remote`, a fetch) may take before it is killed:
/// each moves one small commit or lists one ref.
pub const GIT_COMMAND_DEADLINE: Duration = Duration::from_secs(120);

impl GitRemoteLocks {
    /// `repo_dir`: a local repository (the CI checkout); `remote`: a remote name (`origin`), URL
    /// or path, as `git push` accepts it.
    pub fn new(repo_dir: impl Into<PathBuf>, remote: impl Into<String>) -> Self {
        GitRemoteLocks {
            repo_dir: repo_dir.into(),
            remote: remote.into(),
            poll: Duration::from_secs(2),
            command_deadline: GIT_COMMAND_DEADLINE,
            hidden_env: Vec::new(),
        }
    }

    /// Variables `git` does not get (the spec's credentials), besides every variable whose
    /// value holds a Dynatrace token.
    pub fn with_hidden_env<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.hidden_env.extend(names.into_iter().map(str::to_owned));
        self
    }

    /// How long one `git` command may take (default [`GIT_COMMAND_DEADLINE`]).
    pub fn with_command_deadline(mut self, deadline: Duration) -> Self {
        self.command_deadline = deadline;
        self
    }

    /// How often a waiting acquire asks the remote again (default 2 s).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    pub fn remote(&self) -> &str {
        &self.remote
    }

    /// Take the lock of `env`, waiting up to `wait` while another run holds it.
    pub fn acquire(
        &self,
        env: &EnvName,
        commit: Option<String>,
        wait: Duration,
    ) -> Result<GitRemoteLockGuard, LockError> {
        let reference = lock_ref(env);
        let info = LockInfo::for_this_process(env, commit);
        let oid = self.write_lock_commit(&info)?;
        let deadline = Instant::now() + wait;
        let mut refused_without_holder = 0;
        loop {
            let refspec = format!("{oid}:{reference}");
            match self.push(&[&refspec], &[])? {
                Push::Done => {
                    return Ok(GitRemoteLockGuard {
                        locks: self.clone(),
                        reference,
                        oid,
                        info,
                        released: false,
                    })
                }
                Push::Rejected(why) => {
                    let Some((_, mut held)) = self.read(&reference)? else {
                        // Released between our push and the read: try again at once. A remote
                        // that refuses the ref itself (a protected namespace, a hook) would
                        // refuse forever: give up after a few tries.
                        refused_without_holder += 1;
                        if refused_without_holder >= 3 {
                            return Err(GitRemoteLockError::GitCommand {
                                command: "push".to_owned(),
                                stderr: format!("remote `{}` refused to create {reference} ({why}); it must accept pushes to refs/tokensmith/*", redact_urls(&self.remote)),
                            }
                            .into());
                        }
                        continue;
                    };
                    if Instant::now() >= deadline {
                        held.lock_remote = Some(redact_urls(&self.remote));
                        return Err(LockError::Held(Box::new(held)));
                    }
                    std::thread::sleep(self.poll);
                }
            }
        }
    }

    /// The current holder of `env`'s lock, if any.
    pub fn current(&self, env: &EnvName) -> Result<Option<LockInfo>, LockError> {
        Ok(self.read(&lock_ref(env))?.map(|(_, info)| info))
    }

    /// Delete `env`'s lock if its id is `id` (what `tokensmith force-unlock ENV ID` does).
    pub fn force_unlock(&self, env: &EnvName, id: &str) -> Result<LockInfo, LockError> {
        let reference = lock_ref(env);
        let (oid, held) = self
            .read(&reference)?
            .ok_or_else(|| LockError::NotLocked { env: env.clone() })?;
        if held.id != id {
            return Err(LockError::WrongId {
                env: env.clone(),
                given: id.to_owned(),
                actual: held.id,
            });
        }
        match self.delete(&reference, oid)? {
            Push::Done => Ok(held),
            Push::Rejected(_) => Err(GitRemoteLockError::Changed {
                remote: self.remote.clone(),
                reference,
            }
            .into()),
        }
    }

    fn open(&self) -> Result<Repository, GitRemoteLockError> {
        Repository::open(&self.repo_dir).map_err(|source| GitRemoteLockError::Repo {
            path: self.repo_dir.clone(),
            context: "opening".to_owned(),
            cause: source,
        })
    }

    fn repo_err(&self, context: &str) -> impl FnOnce(git2::Error) -> GitRemoteLockError + '_ {
        let context = context.to_owned();
        move |source| GitRemoteLockError::Repo {
            path: self.repo_dir.clone(),
            context,
            cause: source,
        }
    }

    /// A parentless commit with an empty tree and the lock info as its message. Written to the
    /// local object database only; no local ref points at it.
    fn write_lock_commit(&self, info: &LockInfo) -> Result<Oid, GitRemoteLockError> {
        let repo = self.open()?;
        let tree_id = repo
            .treebuilder(None)
            .and_then(|b| b.write())
            .map_err(self.repo_err("writing the empty tree"))?;
        let tree = repo
            .find_tree(tree_id)
            .map_err(self.repo_err("reading the empty tree"))?;
        let when = git2::Time::new(info.created_at.unix_timestamp(), 0);
        let signature = git2::Signature::new("tokensmith", "tokensmith@localhost", &when)
            .map_err(self.repo_err("making the lock signature"))?;
        let message = serde_json::to_string_pretty(info).expect("lock info serializes");
        repo.commit(None, &signature, &signature, &message, &tree, &[])
            .map_err(self.repo_err("writing the lock commit"))
    }

    /// The lock commit the remote's ref points at, and its info.
    fn read(&self, reference: &str) -> Result<Option<(Oid, LockInfo)>, GitRemoteLockError> {
        // The ref may move between listing it and fetching it; a few tries settle that.
        for _ in 0..5 {
            let Some(oid) = self.ls_remote(reference)? else {
                return Ok(None);
            };
            if let Some(found) = self.parse_local(oid, reference)? {
                return Ok(Some(found));
            }
            self.git(&[
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                &self.remote,
                reference,
            ])?;
            if let Some(found) = self.parse_local(oid, reference)? {
                return Ok(Some(found));
            }
        }
        Err(GitRemoteLockError::Changed {
            remote: self.remote.clone(),
            reference: reference.to_owned(),
        })
    }

    fn parse_local(
        &self,
        oid: Oid,
        reference: &str,
    ) -> Result<Option<(Oid, LockInfo)>, GitRemoteLockError> {
        // A fresh handle: objects fetched by the git command line are seen for sure.
        let repo = self.open()?;
        let Ok(commit) = repo.find_commit(oid) else {
            return Ok(None);
        };
        let message = commit.message_raw_bytes();
        serde_json::from_slice(message)
            .map(|info| Some((oid, info)))
            .map_err(|source| GitRemoteLockError::Corrupt {
                remote: self.remote.clone(),
                reference: reference.to_owned(),
                cause: source,
            })
    }

    fn ls_remote(&self, reference: &str) -> Result<Option<Oid>, GitRemoteLockError> {
        let out = self.git(&["ls-remote", "--refs", &self.remote, reference])?;
        for line in out.lines() {
            let mut parts = line.split('\t');
            if let (Some(oid), Some(name)) = (parts.next(), parts.next()) {
                if name == reference {
                    return Oid::from_str(oid).map(Some).map_err(|_| {
                        GitRemoteLockError::GitCommand {
                            command: "ls-remote".to_owned(),
                            stderr: format!("unexpected output line `{line}`"),
                        }
                    });
                }
            }
        }
        Ok(None)
    }

    /// Delete `reference` if it still points at `oid`.
    fn delete(&self, reference: &str, oid: Oid) -> Result<Push, GitRemoteLockError> {
        let lease = format!("--force-with-lease={reference}:{oid}");
        let refspec = format!(":{reference}");
        self.push(&[&refspec], &[&lease])
    }

    /// `git push --porcelain`: `Rejected` when the remote refused the ref update (it exists, or
    /// no longer has the expected value); an error for anything else (network, credentials).
    fn push(&self, refspecs: &[&str], options: &[&str]) -> Result<Push, GitRemoteLockError> {
        let mut args = vec!["push", "--porcelain", "--no-verify"];
        args.extend_from_slice(options);
        args.push(&self.remote);
        args.extend_from_slice(refspecs);
        let output = self.run(&args)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        // `!<TAB>from:to<TAB>[rejected] (reason)`
        let rejected = stdout
            .lines()
            .find(|l| l.starts_with('!'))
            .map(|l| l.rsplit('\t').next().unwrap_or_default().to_owned());
        match rejected {
            None if output.status.success() => return Ok(Push::Done),
            Some(why) => return Ok(Push::Rejected(why)),
            None => {}
        }
        Err(GitRemoteLockError::GitCommand {
            command: "push".to_owned(),
            stderr: redact_urls(String::from_utf8_lossy(&output.stderr).trim()),
        })
    }

    fn git(&self, args: &[&str]) -> Result<String, GitRemoteLockError> {
        let output = self.run(args)?;
        if !output.status.success() {
            return Err(GitRemoteLockError::GitCommand {
                command: args.first().copied().unwrap_or_default().to_owned(),
                stderr: redact_urls(String::from_utf8_lossy(&output.stderr).trim()),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn run(&self, args: &[&str]) -> Result<std::process::Output, GitRemoteLockError> {
        let mut git = Command::new("git");
        git.arg("-C")
            .arg(&self.repo_dir)
            .args(args)
            // Never wait for a password prompt on a CI runner.
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C");
        // git, its hooks, credential helpers and ssh would otherwise inherit the management
        // tokens.
        for name in variables_holding_secrets(self.hidden_env.iter().map(String::as_str)) {
            git.env_remove(name);
        }
        // A remote that stops answering (a stalled server, a firewall that drops packets)
        // would hold the apply for ever: git has no overall timeout of its own.
        output_within(&mut git, self.command_deadline)
            .map_err(GitRemoteLockError::Spawn)?
            .ok_or_else(|| GitRemoteLockError::TimedOut {
                command: args.first().copied().unwrap_or_default().to_owned(),
                remote: redact_urls(&self.remote),
                after: self.command_deadline,
            })
    }
}

enum Push {
    Done,
    /// The remote refused the update; git's summary (`[rejected] (already exists)`).
    Rejected(String),
}

/// A held remote lock; released when dropped (only if the ref still points at our commit).
#[derive(Debug)]
pub struct GitRemoteLockGuard {
    locks: GitRemoteLocks,
    reference: String,
    oid: Oid,
    info: LockInfo,
    released: bool,
}

impl GitRemoteLockGuard {
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The lock ref in the remote.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// Release now, reporting errors (dropping releases silently).
    pub fn release(mut self) -> Result<(), LockError> {
        self.released = true;
        Ok(self.release_inner()?)
    }

    fn release_inner(&self) -> Result<(), GitRemoteLockError> {
        match self.locks.delete(&self.reference, self.oid)? {
            Push::Done => Ok(()),
            // The ref is gone or points elsewhere: someone force-unlocked us (and maybe another
            // run took the lock). Leave theirs alone, as the file lock does.
            Push::Rejected(_) => match self.locks.read(&self.reference)? {
                Some((oid, _)) if oid == self.oid => Err(GitRemoteLockError::Changed {
                    remote: self.locks.remote.clone(),
                    reference: self.reference.clone(),
                }),
                _ => Ok(()),
            },
        }
    }
}

impl Drop for GitRemoteLockGuard {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.release_inner();
        }
    }
}

impl LockBackend for GitRemoteLocks {
    fn acquire(
        &self,
        env: &EnvName,
        commit: Option<String>,
        wait: Duration,
    ) -> Result<Box<dyn HeldLock>, LockError> {
        Ok(Box::new(GitRemoteLocks::acquire(self, env, commit, wait)?))
    }

    fn current(&self, env: &EnvName) -> Result<Option<LockInfo>, LockError> {
        GitRemoteLocks::current(self, env)
    }

    fn force_unlock(&self, env: &EnvName, id: &str) -> Result<LockInfo, LockError> {
        GitRemoteLocks::force_unlock(self, env, id)
    }
}

impl HeldLock for GitRemoteLockGuard {
    fn info(&self) -> &LockInfo {
        &self.info
    }

    fn release(self: Box<Self>) -> Result<(), LockError> {
        GitRemoteLockGuard::release(*self)
    }
}

/// Remove `user:password@` from URLs in git's messages (CI remotes often carry a token).
pub(crate) fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("<redacted>@");
                out.push_str(&authority[at + 1..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_refs_are_single_safe_components() {
        assert_eq!(
            lock_ref(&EnvName::new("prod")),
            "refs/tokensmith/locks/prod"
        );
        assert_eq!(
            lock_ref(&EnvName::new("eu/managed..x.lock")),
            "refs/tokensmith/locks/eu%2Fmanaged%2E%2Ex%2Elock"
        );
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_urls(
                "fatal: unable to access 'https://x-access-token:ghs_abc@github.com/o/r.git/': 403"
            ),
            "fatal: unable to access 'https://<redacted>@github.com/o/r.git/': 403"
        );
        assert_eq!(redact_urls("To /tmp/remote.git"), "To /tmp/remote.git");
        assert_eq!(
            redact_urls("a https://h/x and ssh://git@h:22/y"),
            "a https://h/x and ssh://<redacted>@h:22/y"
        );
    }
}

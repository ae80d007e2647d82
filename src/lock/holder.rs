//! Who holds an apply lock: [`LockInfo`], the secret-free record every backend stores (a lock
//! file's content, a lock commit's message), and how a new holder describes itself (random id,
//! `user@host`, process id).
//!
//! Not here: where the record is kept and how it is taken atomically (the backends).

use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::EnvName;

/// What a lock says about its holder. Secret-free by construction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Random id, quoted by `force-unlock`.
    pub id: String,
    pub environment: EnvName,
    /// `user@host`.
    pub holder: String,
    pub host: String,
    pub pid: u32,
    /// The git commit of the spec being applied, when known.
    pub commit: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl LockInfo {
    /// This process taking `env`'s lock now, applying `commit`, under a fresh random id.
    pub fn for_this_process(env: &EnvName, commit: Option<String>) -> Self {
        LockInfo {
            id: lock_id(),
            environment: env.clone(),
            holder: format!("{}@{}", user(), host()),
            host: host(),
            pid: std::process::id(),
            commit,
            created_at: OffsetDateTime::now_utc(),
        }
    }

    /// Whether the holder was a process on this machine that no longer runs (a killed or
    /// crashed apply).
    pub fn holder_is_dead_here(&self) -> bool {
        self.host == host() && !process_alive(self.pid)
    }
}

/// A random lock id (12 hex digits).
pub(crate) fn lock_id() -> String {
    let n: u64 = rand::rng().random();
    format!("{:012x}", n & 0xffff_ffff_ffff)
}

/// Who is running: the login, or the CI system's actor.
fn user() -> String {
    crate::cli::env_vars::login().unwrap_or_else(|| "unknown".to_owned())
}

/// This machine's host name.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(crate::cli::env_vars::hostname)
        .unwrap_or_else(|| "unknown-host".to_owned())
}

fn process_alive(pid: u32) -> bool {
    // Linux: a running process has a /proc entry. Elsewhere assume alive (the safe answer).
    if Path::new("/proc/self").exists() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

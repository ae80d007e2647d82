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
    /// The git remote the lock was read from (not stored: the backend that read it fills it),
    /// so the `force-unlock` hint names `--lock-remote`.
    #[serde(skip)]
    pub lock_remote: Option<String>,
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
            lock_remote: None,
        }
    }

    /// When the lock was taken, for people: `2026-12-01 06:34:21 UTC (5 minutes ago)`.
    pub fn taken(&self) -> String {
        taken_at(self.created_at, OffsetDateTime::now_utc())
    }

    /// The command that releases this lock.
    pub fn force_unlock_command(&self) -> String {
        let remote = self
            .lock_remote
            .as_deref()
            .map(|r| format!(" --lock-remote {r}"))
            .unwrap_or_default();
        format!(
            "tokensmith force-unlock {} {}{remote}",
            self.environment, self.id
        )
    }

    /// Whether the holder was a process on this machine that no longer runs (a killed or
    /// crashed apply).
    pub fn holder_is_dead_here(&self) -> bool {
        self.host == host() && !process_alive(self.pid)
    }
}

/// `at` in UTC to the second, and how long before `now` it was.
fn taken_at(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let ago = (now - at).whole_seconds().max(0);
    let (n, unit) = match ago {
        s if s < 60 => (s, "second"),
        s if s < 3_600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3_600, "hour"),
        s => (s / 86_400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC ({n} {unit}{plural} ago)",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// A random lock id (12 hex digits).
pub(crate) fn lock_id() -> String {
    let n: u64 = rand::rng().random();
    format!("{:012x}", n & 0xffff_ffff_ffff)
}

/// Who is running: the login, or the CI system's actor, else the account of this process's
/// user id (a container or service with no `USER` set), else `uid N`.
fn user() -> String {
    crate::cli::env_vars::login()
        .filter(|u| !u.is_empty())
        .or_else(account_name)
        .unwrap_or_else(|| match process_uid() {
            Some(uid) => format!("uid{uid}"),
            None => "unknown".to_owned(),
        })
}

/// The user id this process runs as (the owner of `/proc/self`).
fn process_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The account name of this process's user id in `/etc/passwd`.
fn account_name() -> Option<String> {
    let uid = process_uid()?.to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_name(&passwd, &uid)
}

/// The name of the `/etc/passwd` entry with user id `uid`.
fn passwd_name(passwd: &str, uid: &str) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let found = fields.nth(1)?;
        (found == uid && !name.is_empty()).then(|| name.to_owned())
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_taken_time_reads_as_utc_to_the_second_with_its_age() {
        let at = time::macros::datetime!(2026-12-01 06:34:21.123456 +01:00);
        let now = time::macros::datetime!(2026-12-01 05:39:30 UTC);
        assert_eq!(taken_at(at, now), "2026-12-01 05:34:21 UTC (5 minutes ago)");
        let now = time::macros::datetime!(2026-12-03 05:34:22 UTC);
        assert_eq!(taken_at(at, now), "2026-12-01 05:34:21 UTC (2 days ago)");
    }

    #[test]
    fn the_account_name_comes_from_passwd_when_no_login_variable_is_set() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nci:x:1001:1001::/home/ci:/bin/sh\n";
        assert_eq!(passwd_name(passwd, "1001").as_deref(), Some("ci"));
        assert_eq!(passwd_name(passwd, "0").as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, "7"), None);
        // Whoever runs this test has a name that is not `unknown`.
        assert_ne!(user(), "unknown");
    }

    #[test]
    fn the_force_unlock_hint_names_the_lock_remote() {
        let mut info = LockInfo::for_this_process(&EnvName::new("prod"), None);
        assert_eq!(
            info.force_unlock_command(),
            format!("tokensmith force-unlock prod {}", info.id)
        );
        info.lock_remote = Some("origin".to_owned());
        assert_eq!(
            info.force_unlock_command(),
            format!(
                "tokensmith force-unlock prod {} --lock-remote origin",
                info.id
            )
        );
    }
}

//! Saving and loading the state file.
//!
//! Owns: the atomic write (a temporary file in the same directory, flushed, then renamed over the
//! old file) and reading a state back. Called with the state lock held, before a mutation is
//! answered, so a second process started after an answer sees the change. The file holds
//! token secrets in clear, so it is created readable by its owner only (0600).

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::state::State;
use crate::bounded_read::read_regular;

/// The largest state file read: a sandbox of a million tokens takes a few hundred MB.
pub const MAX_STATE_BYTES: u64 = 1 << 30;

/// Write `state` to `path` atomically.
pub fn save(path: &Path, state: &State) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::atomic_write::create_private_dir_all(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("sandbox.json");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let bytes = serde_json::to_vec_pretty(state).context("cannot serialise the sandbox state")?;
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(&bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot sync {}", tmp.display()))?;
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// Read a state file written by [`save`].
pub fn load(path: &Path) -> anyhow::Result<State> {
    let bytes = read_regular(path, MAX_STATE_BYTES)
        .with_context(|| format!("cannot read the sandbox state {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "the sandbox state {} is not valid; delete it to start afresh",
            path.display()
        )
    })
}

#[cfg(test)]
mod owner_only {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_state_file_is_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.json");
        let state = crate::sandbox::seed::demo_state("demo").unwrap();
        super::save(&path, &state).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

//! Saving and loading the state file.
//!
//! Owns: the atomic write (a temporary file in the same directory, flushed, then renamed over the
//! old file) and reading a state back. Called with the state lock held, before a mutation is
//! answered, so a second process started after an answer sees the change.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::state::State;

/// Write `state` to `path` atomically.
pub fn save(path: &Path, state: &State) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("sandbox.json");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let bytes = serde_json::to_vec_pretty(state).context("cannot serialise the sandbox state")?;
    {
        let mut f =
            fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
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
    let bytes = fs::read(path)
        .with_context(|| format!("cannot read the sandbox state {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "the sandbox state {} is not valid; delete it to start afresh",
            path.display()
        )
    })
}

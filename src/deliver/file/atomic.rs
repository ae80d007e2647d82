//! Replacing a file atomically: write a temporary file in the same directory, fsync it, rename
//! it over the target, fsync the directory. A reader sees the old file or the new one, never a
//! half-written one. A crash leaves at most a stray `.<name>.tokensmith-<pid>-*.tmp` file
//! (mode 0600), which the next write to that file removes once its process is gone.
//!
//! New files get the mode the target asks for (0600 by default); an existing file keeps its
//! owner and group where the process may, and its mode without the bits the target's mode does
//! not allow (a 0644 file written with the default 0600 becomes 0600).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Parse an octal file mode as written in the spec: `"0600"`, `"600"` or `"0o600"`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim();
    let digits = digits.strip_prefix("0o").unwrap_or(digits);
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("mode `{text}` is not an octal file mode; write it like \"0600\""))?;
    if mode > 0o7777 || digits.is_empty() {
        return Err(format!(
            "mode `{text}` is out of range; write it like \"0600\""
        ));
    }
    Ok(mode)
}

/// Replace `path` with `contents` atomically. A new file gets `new_mode`; an existing one keeps
/// its mode, narrowed to what `new_mode` allows.
/// Missing parent directories are created, readable only by the owner (0700): a directory made
/// to hold a token should not list it to everyone.
pub fn write_atomic(path: &Path, contents: &[u8], new_mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
    }
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let existing = fs::metadata(path).ok();
    let mode = existing
        .as_ref()
        .map_or(new_mode, |m| m.permissions().mode() & 0o7777 & new_mode);

    let prefix = format!(".{}.tokensmith-", name.to_string_lossy());
    remove_stale_temps(&dir, &prefix);
    let temp = dir.join(format!(
        "{prefix}{}-{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(contents)?;
        // Set the mode explicitly: `open`'s mode is filtered by the umask.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some(m) = &existing {
            let ours = file.metadata()?;
            if ours.uid() != m.uid() || ours.gid() != m.gid() {
                std::os::unix::fs::fchown(&file, Some(m.uid()), Some(m.gid()))?;
            }
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Remove temporary files a killed run left next to the target: they may hold a secret. Files
/// of a process that is still running are left alone.
fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_octal() {
        assert_eq!(parse_mode("0600"), Ok(0o600));
        assert_eq!(parse_mode("640"), Ok(0o640));
        assert_eq!(parse_mode("0o644"), Ok(0o644));
        assert!(parse_mode("0800").is_err());
        assert!(parse_mode("rw").is_err());
        assert!(parse_mode("").is_err());
        assert!(parse_mode("17777").is_err());
    }

    #[test]
    fn new_files_get_the_mode_and_existing_files_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        write_atomic(&path, b"one", 0o600).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        // An existing file keeps its mode where the target's mode allows it, and loses the
        // bits it does not: 0644 written with 0640 becomes 0640, then 0400 stays 0400.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"two", 0o640).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o400
        );
        assert_eq!(fs::read(&path).unwrap(), b"two");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn leftovers_of_a_killed_run_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        // pid 0 is never a user process; a live pid (ours) is kept.
        let stale = dir.path().join(".token.tokensmith-0-0000abcd.tmp");
        let live = dir.path().join(format!(
            ".token.tokensmith-{}-0000abcd.tmp",
            std::process::id()
        ));
        let other = dir.path().join(".other.tokensmith-0-0000abcd.tmp");
        for p in [&stale, &live, &other] {
            fs::write(p, "secret").unwrap();
        }
        write_atomic(&path, b"v", 0o600).unwrap();
        assert!(!stale.exists());
        assert!(live.exists());
        assert!(other.exists());
    }
}

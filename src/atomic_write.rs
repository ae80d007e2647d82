//! Replacing a file atomically: write a temporary file in the same directory, fsync it, rename
//! it over the target, fsync the directory. A reader sees the old file or the new one, never a
//! half-written one, and a FIFO, socket or symlink at the path is replaced, not written through
//! (a plain `fs::write` to a FIFO waits for a reader forever). A crash leaves at most a stray
//! `.<name>.tokensmith-<pid>-*.tmp` file (mode 0600), which the next write to that file removes
//! once its process is gone.
//!
//! New files get the mode the caller asks for; an existing file keeps its owner and group where
//! the process may, and its mode without the bits the caller's mode does not allow (a 0644 file
//! written with 0600 becomes 0600). Used for delivered secrets (`deliver::file`), saved plans
//! and metrics files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
        create_private_dir_all(&dir)?;
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

/// Create `dir` and its missing parents readable only by the owner (0700, whatever the umask
/// allows beyond it): a directory made to hold a token, a journal or locks should not list them
/// to everyone, nor let anyone plant a link in it. Existing directories are left as they are.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Whether [`write_atomic`] can place a file at `path`, checked before a command does its work
/// so that a mistyped `--out` is refused before anything is read or locked: the path must not
/// be a directory, and its nearest existing ancestor must be one (missing directories are
/// created by the write). Permissions are left to the write itself.
pub fn check_destination(path: &Path) -> Result<(), String> {
    if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err("it is a directory".into());
    }
    let mut ancestor = path.parent();
    while let Some(dir) = ancestor {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) => return Err(format!("{} is not a directory", dir.display())),
            // Missing, or under a file: the nearest existing ancestor tells which.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                ancestor = dir.parent()
            }
            Err(e) => return Err(format!("cannot look at {}: {e}", dir.display())),
        }
    }
    Ok(())
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

    #[test]
    fn a_fifo_or_symlink_at_the_path_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p.plan");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // `fs::write` would wait for a reader here; the replace does not.
        write_atomic(&fifo, b"plan", 0o644).unwrap();
        assert!(fs::metadata(&fifo).unwrap().is_file());
        assert_eq!(fs::read(&fifo).unwrap(), b"plan");

        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, "keep").unwrap();
        let link = dir.path().join("link.plan");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        write_atomic(&link, b"plan", 0o644).unwrap();
        assert_eq!(fs::read(&elsewhere).unwrap(), b"keep");
        assert!(!fs::symlink_metadata(&link).unwrap().is_symlink());
    }

    #[test]
    fn a_destination_is_checked_before_the_work() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            check_destination(dir.path()),
            Err("it is a directory".into())
        );
        assert_eq!(check_destination(&dir.path().join("p.plan")), Ok(()));
        // A missing directory is fine (the write creates it); a file where one must be is not.
        assert_eq!(
            check_destination(&dir.path().join("new/deeper/p.plan")),
            Ok(())
        );
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        let err = check_destination(&file.join("sub/p.plan")).unwrap_err();
        assert!(err.ends_with("file is not a directory"), "{err}");
        assert_eq!(check_destination(Path::new("p.plan")), Ok(()));
    }
}

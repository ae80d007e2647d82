//! Where a file target may be: the one rule `validate` and the writer both apply.
//!
//! A file target is never the spec file itself, nor anything under the `.tokensmith/` state
//! directory next to it (the sandbox's state, journals, locks), nor anything in a `.git/`
//! directory anywhere (a token written over `.git/config` or into `.git/hooks/` breaks the
//! repository or is run by it). A relative path must stay inside
//! the spec's directory once `..` and symlinks are resolved; an absolute path may be anywhere
//! (ActiveGate configuration lives under `/var/lib/dynatrace/`). What exists at the place must be
//! a regular file: a directory, FIFO or device is refused, never opened. This module decides;
//! it writes nothing.

use std::path::{Component, Path, PathBuf};

/// The state directory's name, next to the spec.
pub const STATE_DIR: &str = ".tokensmith";

/// Git's directory, where no file target may be. Matched in any case, as git itself does: a
/// case-insensitive filesystem opens `.GIT/config` as `.git/config`.
pub const GIT_DIR: &str = ".git";

/// Why `written` cannot be a file target as spelled: a component of it is [`GIT_DIR`]. The
/// spelling alone decides, so a spec read from a commit is checked as well as one on disk.
pub fn in_git_dir(written: &str) -> Option<String> {
    has_git_dir(Path::new(written))
        .then(|| format!("`{written}` is inside a git directory `{GIT_DIR}/`"))
}

fn has_git_dir(path: &Path) -> bool {
    path.components().any(|c| {
        matches!(c, Component::Normal(name)
            if name.as_encoded_bytes().eq_ignore_ascii_case(GIT_DIR.as_bytes()))
    })
}

/// The spelling of a target path that identifies it: `.` components and repeated or trailing
/// `/` removed (`./out//x.env` is `out/x.env`). `..` is kept: what it means depends on symlinks.
pub fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// `path` with every symlink and `..` resolved, as far as it exists; the missing rest is
/// appended as written (lexically resolved).
pub fn resolve_real(path: &Path) -> PathBuf {
    resolve_from(PathBuf::new(), path)
}

/// [`resolve_real`] of `real.join(rest)`, where `real` is already resolved. One `lstat` per
/// component, and a `realpath` only where a component is a symlink: resolving every prefix with
/// `canonicalize` costs a `readlink` per component per prefix, which was a third of validating a
/// 50,000-target spec.
fn resolve_from(mut real: PathBuf, rest: &Path) -> PathBuf {
    for component in rest.components() {
        match component {
            Component::RootDir => real.push("/"),
            Component::Prefix(p) => real.push(p.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                real.pop();
            }
            Component::Normal(name) => {
                real.push(name);
                let is_link = std::fs::symlink_metadata(&real).is_ok_and(|m| m.is_symlink());
                if is_link {
                    if let Ok(target) = std::fs::canonicalize(&real) {
                        real = target;
                    }
                }
            }
        }
    }
    real
}

/// The place rules for the targets of one spec: its directory and the spec file, resolved once
/// (a spec with thousands of file targets checks them all against the same two paths).
#[derive(Debug, Clone)]
pub struct Confinement {
    /// The spec's directory, resolved.
    base: PathBuf,
    /// The spec file, resolved.
    spec: Option<PathBuf>,
    /// `base/.tokensmith`, where nothing may be written (built once: a spec has many targets).
    state: PathBuf,
}

impl Confinement {
    /// The rules for targets of the spec at `spec_file` in `base_dir`.
    pub fn new(base_dir: &Path, spec_file: Option<&Path>) -> Confinement {
        let base = resolve_real(&absolute(base_dir));
        Confinement {
            state: base.join(STATE_DIR),
            base,
            spec: spec_file.map(|s| resolve_real(&absolute(s))),
        }
    }

    /// Checks that `written` (as the spec wrote it) may be a file target; returns the real path
    /// to read and write.
    pub fn check(&self, written: &str) -> Result<PathBuf, String> {
        Self::well_formed(written)?;
        let relative = !Path::new(written).is_absolute();
        let real = if relative {
            resolve_from(self.base.clone(), Path::new(written))
        } else {
            resolve_real(Path::new(written))
        };
        self.allowed(written, relative, &real)?;
        Self::regular(written, std::fs::metadata(&real).ok())?;
        Ok(real)
    }

    /// [`Self::check`] for the many targets of one validation pass: each directory is resolved
    /// once and remembered in `dirs`, so a target costs at most one `lstat` (none when its
    /// directory does not exist yet). Only for a pass that ends before the filesystem may
    /// change: the writer checks afresh with [`Self::check`].
    pub fn check_cached(&self, written: &str, dirs: &mut ResolvedDirs) -> Result<PathBuf, String> {
        Self::well_formed(written)?;
        let path = Path::new(written);
        let (Some(parent), Some(Component::Normal(leaf))) =
            (path.parent(), path.components().next_back())
        else {
            return self.check(written);
        };
        let relative = !path.is_absolute();
        if !dirs.resolved.contains_key(parent) {
            let dir = if relative {
                resolve_from(self.base.clone(), parent)
            } else {
                resolve_real(parent)
            };
            let exists = std::fs::symlink_metadata(&dir).is_ok();
            dirs.resolved.insert(parent.to_path_buf(), (dir, exists));
        }
        let (dir, exists) = &dirs.resolved[parent];
        let mut real = dir.join(leaf);
        let mut found = None;
        if *exists {
            match std::fs::symlink_metadata(&real) {
                Ok(m) if m.is_symlink() => {
                    if let Ok(target) = std::fs::canonicalize(&real) {
                        real = target;
                    }
                    found = std::fs::metadata(&real).ok();
                }
                Ok(m) => found = Some(m),
                Err(_) => {}
            }
        }
        self.allowed(written, relative, &real)?;
        Self::regular(written, found)?;
        Ok(real)
    }

    fn well_formed(written: &str) -> Result<(), String> {
        if written.contains('\0') {
            return Err("the file path contains a NUL byte".to_owned());
        }
        if written.trim().is_empty() {
            return Err("the file path is empty".to_owned());
        }
        if written.ends_with('/') {
            return Err(format!("`{written}` names a directory, not a file"));
        }
        Ok(())
    }

    /// The place rules on the resolved path `real`.
    fn allowed(&self, written: &str, relative: bool, real: &Path) -> Result<(), String> {
        if real.starts_with(&self.state) {
            return Err(format!(
                "`{written}` is inside tokensmith's state directory `{STATE_DIR}/`"
            ));
        }
        if let Some(reason) = in_git_dir(written) {
            return Err(reason);
        }
        // Through a symlink: only below the spec's directory, which may itself be anywhere.
        if has_git_dir(real.strip_prefix(&self.base).unwrap_or(real)) {
            return Err(format!(
                "`{written}` leads into a git directory `{GIT_DIR}/` (after resolving symlinks)"
            ));
        }
        if self.spec.as_deref() == Some(real) {
            return Err(format!("`{written}` is the spec file itself"));
        }
        if relative && !real.starts_with(&self.base) {
            return Err(format!(
                "`{written}` leaves the spec's directory (after resolving `..` and symlinks); write an absolute path if the file really lives elsewhere"
            ));
        }
        Ok(())
    }

    /// What exists at the place (followed through symlinks), if anything, must be a regular
    /// file.
    fn regular(written: &str, found: Option<std::fs::Metadata>) -> Result<(), String> {
        match found {
            Some(m) if m.is_dir() => Err(format!("`{written}` is a directory, not a file")),
            Some(m) if !m.is_file() => Err(format!(
                "`{written}` is not a regular file (a FIFO, socket or device); only regular files are read or written"
            )),
            _ => Ok(()),
        }
    }
}

/// Directories already resolved by [`Confinement::check_cached`] in one validation pass: the
/// directory as written, its real path, and whether it exists.
#[derive(Debug, Default)]
pub struct ResolvedDirs {
    resolved: crate::model::hash::HashMap<PathBuf, (PathBuf, bool)>,
}

/// Checks that `written` (as the spec wrote it) may be a file target of the spec at
/// `spec_file` in `base_dir`; returns the real path to read and write. For many targets of one
/// spec, build a [`Confinement`] once.
pub fn check(base_dir: &Path, spec_file: Option<&Path>, written: &str) -> Result<PathBuf, String> {
    Confinement::new(base_dir, spec_file).check(written)
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_path_normalize_to_one() {
        assert_eq!(normalize("./out//x.env"), "out/x.env");
        assert_eq!(normalize("out/x.env"), "out/x.env");
        assert_eq!(normalize("./a"), "a");
        assert_eq!(normalize("/var//lib/./x"), "/var/lib/x");
        assert_eq!(normalize("../x"), "../x");
    }

    #[test]
    fn places_outside_the_rules_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let spec = base.join("tokensmith.yaml");
        std::fs::write(&spec, "version: 1\n").unwrap();
        std::fs::create_dir(base.join("sub")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), base.join("link")).unwrap();
        std::fs::create_dir(base.join(".git")).unwrap();
        std::os::unix::fs::symlink(base.join(".git"), base.join("gitlink")).unwrap();
        let rules = Confinement::new(base, Some(&spec));
        let mut dirs = ResolvedDirs::default();
        // Both checks, the second twice (its directory then comes from the cache), agree.
        let mut ok = |p: &str| {
            let once = check(base, Some(&spec), p);
            assert_eq!(rules.check_cached(p, &mut dirs), once, "{p}");
            assert_eq!(rules.check_cached(p, &mut dirs), once, "{p} (cached)");
            once
        };
        assert!(ok("out/x.env").is_ok());
        assert!(ok("sub/../x.env").is_ok());
        assert!(ok("/tmp/anywhere.env").is_ok());
        for near in [
            ".github/token",
            "repo.git/token",
            ".gitignore",
            ".git-token",
        ] {
            assert!(ok(near).is_ok(), "{near}");
        }
        for (bad, why) in [
            ("tokensmith.yaml", "spec file"),
            ("./sub/../tokensmith.yaml", "spec file"),
            (".tokensmith/sandbox/demo.json", "state directory"),
            (".git/config", "inside a git directory `.git/`"),
            ("./sub/.git/hooks/pre-commit", "inside a git directory"),
            (".GIT/config", "inside a git directory"),
            ("/tmp/repo/.git/config", "inside a git directory"),
            ("gitlink/config", "leads into a git directory"),
            ("../escape.env", "leaves the spec's directory"),
            ("link/x.env", "leaves the spec's directory"),
            ("sub", "directory"),
            ("sub/", "directory"),
            ("a\0b", "NUL"),
        ] {
            let err = ok(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let fifo = base.join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(ok("pipe").unwrap_err().contains("not a regular file"));
        std::fs::write(base.join("sub/file.env"), "").unwrap();
        std::os::unix::fs::symlink(base.join("sub/file.env"), base.join("sub/alias.env")).unwrap();
        std::os::unix::fs::symlink(base.join("tokensmith.yaml"), base.join("sub/spec.yaml"))
            .unwrap();
        assert!(ok("sub/file.env").is_ok());
        assert_eq!(
            ok("sub/alias.env").unwrap(),
            rules.check("sub/file.env").unwrap()
        );
        assert!(ok("sub/spec.yaml").unwrap_err().contains("spec file"));
        assert!(ok("missing/dir/x.env").is_ok());
        assert!(check(base, None, "/dev/zero")
            .unwrap_err()
            .contains("not a regular file"));
    }
}

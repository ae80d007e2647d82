//! Paths as they are written: [`lexically_normal`] takes out `.` and `..` without asking the
//! file system, for the checks that judge a path by where its writer meant it to be (is the
//! spec inside a repository, does a command's argument name a file of it) before comparing
//! with where the kernel says it is.

use std::path::{Component, Path, PathBuf};

/// `path` without `.` components and with each `..` removing the component before it
/// (`/a/b/../c` is `/a/c`); `..` at the root stays at the root. Symlinks are not looked at.
pub fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_taken_out_as_written() {
        assert_eq!(
            lexically_normal(Path::new("/repo/specs/../x.yaml")),
            Path::new("/repo/x.yaml")
        );
        assert_eq!(
            lexically_normal(Path::new("/repo/./a/./b")),
            Path::new("/repo/a/b")
        );
        assert_eq!(lexically_normal(Path::new("/../x")), Path::new("/x"));
    }
}

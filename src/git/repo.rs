//! The git repository around a spec: which commit it is at, whether it has uncommitted changes,
//! and reading the spec as committed at any ref straight from git objects (nothing is checked
//! out, the working tree is not touched).
//!
//! Not here: loading or validating the bytes read (that is `spec`), and comparing two desired
//! states (that is [`super::desired_diff`]).

use std::path::{Component, Path, PathBuf};

use git2::{Repository, Status, StatusOptions};

use crate::plan::Inputs;
use crate::spec::load::MAX_SPEC_BYTES;

/// Where a spec sits in git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecCommit {
    /// The full hex id of `HEAD`'s commit.
    pub commit: String,
    /// The spec file or any tracked file in the tree differs from `HEAD` (staged or not), or the
    /// spec itself is not committed. Untracked files other than the spec (a `plan.json`
    /// written by CI) do not count.
    pub dirty: bool,
    /// The spec's path relative to the repository root, with `/` separators.
    pub path_in_repo: String,
}

/// What went wrong reading git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{path} is not inside a git repository; --spec-ref and --base need the spec in a git checkout")]
    NotARepository { path: PathBuf },
    #[error("git repository at {path} is bare; run tokensmith in a checkout")]
    Bare { path: PathBuf },
    #[error("spec path {path} is outside the repository at {root}")]
    OutsideRepository { path: PathBuf, root: PathBuf },
    #[error("unknown git ref `{reference}`; fetch it first (CI checkouts are often shallow: `git fetch origin {reference}`)")]
    UnknownRef { reference: String },
    #[error("`{path}` does not exist at `{reference}` (commit {commit}); was the spec added or moved after that commit?")]
    FileAbsent {
        reference: String,
        commit: String,
        path: String,
    },
    #[error("`{path}` at `{reference}` (commit {commit}) is not a file")]
    NotAFile {
        reference: String,
        commit: String,
        path: String,
    },
    #[error("`{path}` at `{reference}` (commit {commit}) is {size} bytes, larger than the limit of {limit} bytes")]
    TooLarge {
        reference: String,
        commit: String,
        path: String,
        size: u64,
        limit: u64,
    },
    #[error("git: {context}: {cause}")]
    Git { context: String, cause: git2::Error },
    #[error("spec path {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

fn git(context: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
    let context = context.into();
    move |source| GitError::Git {
        context,
        cause: source,
    }
}

/// The repository containing `spec_path` (searched upwards from the spec's directory) and the
/// spec's path inside it. The spec file itself need not exist in the working tree.
pub fn discover(spec_path: &Path) -> Result<(Repository, String), GitError> {
    let absolute = absolute_spec_path(spec_path)?;
    let dir = absolute.parent().unwrap_or(Path::new("/"));
    let repo = Repository::discover(dir).map_err(|e| match e.code() {
        git2::ErrorCode::NotFound => GitError::NotARepository {
            path: spec_path.to_path_buf(),
        },
        _ => GitError::Git {
            context: format!("opening the repository around {}", spec_path.display()),
            cause: e,
        },
    })?;
    let root = repo
        .workdir()
        .ok_or_else(|| GitError::Bare {
            path: repo.path().to_path_buf(),
        })?
        .to_path_buf();
    let root = root.canonicalize().map_err(|source| GitError::Io {
        path: root.clone(),
        cause: source,
    })?;
    let relative = absolute
        .strip_prefix(&root)
        .map_err(|_| GitError::OutsideRepository {
            path: absolute.clone(),
            root: root.clone(),
        })?;
    let path_in_repo = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    Ok((repo, path_in_repo))
}

/// The spec's absolute path with its directory resolved (symlinks, `..`), so it compares with
/// the repository's canonical root.
fn absolute_spec_path(spec_path: &Path) -> Result<PathBuf, GitError> {
    let file_name = spec_path
        .components()
        .next_back()
        .filter(|c| matches!(c, Component::Normal(_)))
        .ok_or_else(|| GitError::Io {
            path: spec_path.to_path_buf(),
            cause: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        })?;
    let dir = match spec_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = dir.canonicalize().map_err(|source| GitError::Io {
        path: dir.clone(),
        cause: source,
    })?;
    Ok(dir.join(file_name.as_os_str()))
}

/// The commit the spec is at and whether it is dirty. `Ok(None)` when the spec is not in a git
/// repository or the repository has no commit yet (there is nothing to record).
pub fn spec_commit(spec_path: &Path) -> Result<Option<SpecCommit>, GitError> {
    let (repo, path_in_repo) = match discover(spec_path) {
        Ok(found) => found,
        Err(GitError::NotARepository { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let head = match repo.head() {
        Ok(head) => head,
        Err(e)
            if matches!(
                e.code(),
                git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(git("reading HEAD")(e)),
    };
    let commit = head
        .peel_to_commit()
        .map_err(git("reading HEAD's commit"))?;
    let dirty = is_dirty(&repo, &path_in_repo)?;
    Ok(Some(SpecCommit {
        commit: commit.id().to_string(),
        dirty,
        path_in_repo,
    }))
}

fn is_dirty(repo: &Repository, path_in_repo: &str) -> Result<bool, GitError> {
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .include_ignored(false)
        .recurse_untracked_dirs(true)
        .exclude_submodules(true);
    let statuses = repo
        .statuses(Some(&mut options))
        .map_err(git("reading the working tree status"))?;
    Ok(statuses.iter().any(|entry| {
        let status = entry.status();
        if status == Status::WT_NEW {
            // Untracked: only the spec itself matters.
            entry.path() == Some(path_in_repo)
        } else {
            status != Status::CURRENT && !status.contains(Status::IGNORED)
        }
    }))
}

/// The bytes of `path_in_repo` as committed at `reference` (a branch, tag, `HEAD~1`, a commit
/// id: anything `git rev-parse` accepts), read from git objects. A blob over `limit` bytes is
/// refused from its header, before it is inflated: a pull request can commit a file of any size.
pub fn read_at_ref(
    repo: &Repository,
    reference: &str,
    path_in_repo: &str,
    limit: u64,
) -> Result<Vec<u8>, GitError> {
    let commit = resolve(repo, reference)?;
    let commit_id = commit.id().to_string();
    let tree = commit
        .tree()
        .map_err(git(format!("reading the tree of {commit_id}")))?;
    let entry = match tree.get_path(Path::new(path_in_repo)) {
        Ok(entry) => entry,
        Err(e) if e.code() == git2::ErrorCode::NotFound => {
            return Err(GitError::FileAbsent {
                reference: reference.to_owned(),
                commit: commit_id,
                path: path_in_repo.to_owned(),
            })
        }
        Err(e) => return Err(git(format!("looking up {path_in_repo} at {commit_id}"))(e)),
    };
    if entry.kind() == Some(git2::ObjectType::Blob) {
        let (size, _) = repo
            .odb()
            .and_then(|odb| odb.read_header(entry.id()))
            .map_err(git(format!("reading {path_in_repo} at {commit_id}")))?;
        if size as u64 > limit {
            return Err(GitError::TooLarge {
                reference: reference.to_owned(),
                commit: commit_id,
                path: path_in_repo.to_owned(),
                size: size as u64,
                limit,
            });
        }
    }
    let object = entry
        .to_object(repo)
        .map_err(git(format!("reading {path_in_repo} at {commit_id}")))?;
    match object.into_blob() {
        Ok(blob) => Ok(blob.content().to_vec()),
        Err(_) => Err(GitError::NotAFile {
            reference: reference.to_owned(),
            commit: commit_id,
            path: path_in_repo.to_owned(),
        }),
    }
}

/// Like [`read_at_ref`], for a file the spec names (a `for_each` host list): a symlink is
/// refused as [`GitError::NotAFile`], as the loader refuses one on disk that leaves the spec's
/// directory.
pub fn regular_file_at_ref(
    repo: &Repository,
    reference: &str,
    path_in_repo: &str,
    limit: u64,
) -> Result<Vec<u8>, GitError> {
    let commit = resolve(repo, reference)?;
    let tree = commit
        .tree()
        .map_err(git(format!("reading the tree of {}", commit.id())))?;
    if let Ok(entry) = tree.get_path(Path::new(path_in_repo)) {
        if entry.filemode() == 0o120000 {
            return Err(GitError::NotAFile {
                reference: reference.to_owned(),
                commit: commit.id().to_string(),
                path: path_in_repo.to_owned(),
            });
        }
    }
    read_at_ref(repo, reference, path_in_repo, limit)
}

/// Whether the working-tree file at `path` (absolute, inside the working tree of `repo`) is
/// new or differs from the same path at `reference`: its bytes, or for a symlink the path it
/// links to (what git stores for one). A directory, or a path outside the working tree, is not
/// a file git tracks and counts as unchanged; a file over `limit` counts as changed.
pub fn file_changed_since(
    repo: &Repository,
    reference: &str,
    path: &Path,
    limit: u64,
) -> Result<bool, GitError> {
    use std::os::unix::ffi::OsStrExt;
    let Some(root) = repo.workdir().and_then(|w| w.canonicalize().ok()) else {
        return Ok(false);
    };
    let Ok(inside) = path.strip_prefix(&root) else {
        return Ok(false);
    };
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(false);
    };
    let now = if meta.is_symlink() {
        std::fs::read_link(path)
            .map(|to| to.as_os_str().as_bytes().to_vec())
            .map_err(|cause| GitError::Io {
                path: path.to_path_buf(),
                cause,
            })?
    } else if meta.is_file() {
        if meta.len() > limit {
            return Ok(true);
        }
        std::fs::read(path).map_err(|cause| GitError::Io {
            path: path.to_path_buf(),
            cause,
        })?
    } else {
        return Ok(false);
    };
    let in_repo = inside
        .to_string_lossy()
        .replace(std::path::MAIN_SEPARATOR, "/");
    match read_at_ref(repo, reference, &in_repo, limit) {
        Ok(then) => Ok(then != now),
        Err(
            GitError::FileAbsent { .. } | GitError::NotAFile { .. } | GitError::TooLarge { .. },
        ) => Ok(true),
        Err(e) => Err(e),
    }
}

/// The full commit id `reference` points at.
pub fn resolve_commit(repo: &Repository, reference: &str) -> Result<String, GitError> {
    Ok(resolve(repo, reference)?.id().to_string())
}

fn resolve<'r>(repo: &'r Repository, reference: &str) -> Result<git2::Commit<'r>, GitError> {
    let unknown = || GitError::UnknownRef {
        reference: reference.to_owned(),
    };
    let object = repo
        .revparse_single(reference)
        .map_err(|e| match e.code() {
            git2::ErrorCode::NotFound
            | git2::ErrorCode::InvalidSpec
            | git2::ErrorCode::Ambiguous => unknown(),
            _ => git(format!("resolving `{reference}`"))(e),
        })?;
    object.peel_to_commit().map_err(|_| unknown())
}

/// Whether the repository around `spec_path` holds the commit `commit` (a full hex id), as a
/// saved plan recorded it.
pub fn has_commit(spec_path: &Path, commit: &str) -> Result<bool, GitError> {
    let (repo, _) = discover(spec_path)?;
    Ok(git2::Oid::from_str(commit).is_ok_and(|oid| repo.find_commit(oid).is_ok()))
}

/// The spec as committed at a ref, ready for the spec loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecAtRef {
    pub bytes: Vec<u8>,
    /// The name diagnostics use: `<path_in_repo>@<short commit>`.
    pub file_name: String,
    /// What a plan records: the ref's commit, never dirty.
    pub commit: SpecCommit,
}

/// Read the spec at `spec_path` as committed at `reference` (what `--spec-ref` and `--base` do).
pub fn spec_at_ref(spec_path: &Path, reference: &str) -> Result<SpecAtRef, GitError> {
    let (repo, path_in_repo) = discover(spec_path)?;
    let commit = resolve_commit(&repo, reference)?;
    let bytes = read_at_ref(&repo, &commit, &path_in_repo, MAX_SPEC_BYTES as u64)?;
    Ok(SpecAtRef {
        bytes,
        file_name: format!("{path_in_repo}@{}", &commit[..12.min(commit.len())]),
        commit: SpecCommit {
            commit,
            dirty: false,
            path_in_repo,
        },
    })
}

/// Why a saved plan does not fit the spec at hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitMismatch {
    #[error("the plan was made from spec commit {planned} but the spec is now at commit {current}; run `tokensmith plan --out` again at this commit, or pass --allow-other-commit")]
    Different { planned: String, current: String },
    #[error("the plan was made from spec commit {planned} but the spec is not in a git repository now; plan again here, or pass --allow-other-commit")]
    NoLongerInGit { planned: String },
}

/// Check that a saved plan was made from the commit the spec is at now. A plan made outside
/// git passes (there is nothing to compare). Uncommitted changes are not compared here: the
/// spec hash in the plan's fingerprint covers the content, dirty or not.
pub fn check_plan_commit(
    planned: &Inputs,
    current: Option<&SpecCommit>,
) -> Result<(), CommitMismatch> {
    let Some(planned_commit) = &planned.spec_commit else {
        return Ok(());
    };
    match current {
        None => Err(CommitMismatch::NoLongerInGit {
            planned: planned_commit.clone(),
        }),
        Some(c) if &c.commit != planned_commit => Err(CommitMismatch::Different {
            planned: planned_commit.clone(),
            current: c.commit.clone(),
        }),
        Some(_) => Ok(()),
    }
}

/// The working tree root of the repository containing `dir` (searched upwards), canonical;
/// `None` outside a repository or in a bare one.
pub fn worktree_root(dir: &Path) -> Option<PathBuf> {
    let repo = Repository::discover(dir).ok()?;
    repo.workdir()?.canonicalize().ok()
}

//! The spec as committed at a git ref, loaded: what `--spec-ref REF` plans and applies, and
//! what `plan --base REF` compares the spec at hand with. The one place that joins reading git
//! objects ([`super::repo`]) with the spec loader.

use std::path::Path;

use super::desired_diff::{diff, DesiredDiff};
use super::repo::{discover, regular_file_at_ref, spec_at_ref, GitError, SpecCommit};
use crate::model::Desired;
use crate::spec::resolve::MAX_VALUES_FILE;
use crate::spec::{self, Diagnostics, LoadedSpec};

/// A spec loaded from a commit, and that commit (never dirty).
#[derive(Debug)]
pub struct LoadedAtRef {
    pub spec: LoadedSpec,
    pub commit: SpecCommit,
}

/// Why the spec at a ref could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AtRefError {
    #[error(transparent)]
    Git(#[from] GitError),
    /// The committed spec does not load; the diagnostics name `<path>@<commit>` as the file.
    #[error("the spec at `{reference}` does not load:\n{diagnostics}")]
    Spec {
        reference: String,
        diagnostics: Diagnostics,
    },
}

/// Load the spec at `spec_path` as committed at `reference`.
pub fn load_at_ref(spec_path: &Path, reference: &str) -> Result<LoadedAtRef, AtRefError> {
    let at = spec_at_ref(spec_path, reference)?;
    // `for_each` host lists next to the spec are read from the same commit.
    let (repo, _) = discover(spec_path)?;
    let dir = match at.commit.path_in_repo.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/"),
        None => String::new(),
    };
    // A repository handle is not shared between threads; the spec loader may read from several.
    let repo = std::sync::Mutex::new(repo);
    let read = |rel: &str| {
        let repo = repo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        regular_file_at_ref(
            &repo,
            &at.commit.commit,
            &format!("{dir}{rel}"),
            MAX_VALUES_FILE,
        )
        .map_err(|e| e.to_string())
    };
    let spec = spec::load_bytes_with(&at.bytes, &at.file_name, &read).map_err(|diagnostics| {
        AtRefError::Spec {
            reference: reference.to_owned(),
            diagnostics,
        }
    })?;
    Ok(LoadedAtRef {
        spec,
        commit: at.commit,
    })
}

/// What the spec at hand (`head`, already loaded) changes relative to the spec at `base_ref`.
pub fn diff_against(
    spec_path: &Path,
    base_ref: &str,
    head: &Desired,
) -> Result<DesiredDiff, AtRefError> {
    let base = load_at_ref(spec_path, base_ref)?;
    Ok(diff(&base.spec.desired, head))
}

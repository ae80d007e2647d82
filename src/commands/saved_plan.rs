//! Saved plan files (`plan --out`, `apply PLAN`): the plan's JSON plus where its spec is, so
//! `tokensmith apply PLAN` finds the spec on its own, like Terraform's saved plans. The spec is
//! recorded relative to the repository root when it lives in git (a CI job may apply in
//! another checkout) and as an absolute path besides. A plan made with `--spec-ref REF` also
//! records REF and its commit, so `apply PLAN` reads the spec at that commit rather than the
//! working tree's. Planning and freshness are not here.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::atomic_write::write_atomic;
use crate::bounded_read::read_regular;
use crate::git::repo;
use crate::plan::{Plan, FORMAT_VERSION};

/// The largest plan file read: far above a plan of the largest spec (8 MiB, about 50,000
/// tokens, each created and delivered), and a bound for a file that is not a plan at all.
const MAX_PLAN_BYTES: u64 = 1 << 30;

/// Where the spec a plan was computed from lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecLocation {
    /// The spec's path inside its git repository (`/`-separated), when it is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_in_repository: Option<String>,
    /// The spec's absolute path on the machine that planned.
    pub absolute_path: PathBuf,
    /// The git ref the spec was read from (`plan --spec-ref`), when it was not the working tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_ref: Option<SpecRef>,
}

/// A ref as the user gave it to `plan --spec-ref`, and the commit it named then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecRef {
    /// As given (`HEAD`, `main`, a tag, a commit).
    pub reference: String,
    /// The full hex id of the commit the spec was read from.
    pub commit: String,
}

impl SpecLocation {
    /// Record where `spec_path` is, and the ref and commit it was read from when it came from
    /// git (`--spec-ref`) rather than the working tree.
    pub fn record(spec_path: &Path, spec_ref: Option<SpecRef>) -> anyhow::Result<Self> {
        let absolute_path = std::path::absolute(spec_path)
            .with_context(|| format!("cannot resolve the path {}", spec_path.display()))?;
        let path_in_repository = repo::discover(spec_path).ok().map(|(_, path)| path);
        Ok(Self {
            path_in_repository,
            absolute_path,
            spec_ref,
        })
    }

    /// The spec for a plan read from `plan_path`: the recorded repository path inside the
    /// repository around the plan file, then around the current directory, then the recorded
    /// absolute path. An error names what was tried.
    pub fn resolve(&self, plan_path: &Path) -> anyhow::Result<PathBuf> {
        let mut tried = Vec::new();
        if let Some(inside) = &self.path_in_repository {
            let plan_dir = std::path::absolute(plan_path)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf));
            let dirs = plan_dir.into_iter().chain(std::env::current_dir().ok());
            for dir in dirs {
                if let Some(root) = repo::worktree_root(&dir) {
                    let candidate = root.join(inside);
                    if candidate.is_file() {
                        return Ok(candidate);
                    }
                    tried.push(candidate);
                }
            }
        }
        if self.absolute_path.is_file() {
            return Ok(self.absolute_path.clone());
        }
        tried.push(self.absolute_path.clone());
        let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        anyhow::bail!(
            "the plan {} was made from the spec {}, which is not there now (looked at {}); pass `-f FILE`",
            plan_path.display(),
            self.path_in_repository
                .clone()
                .unwrap_or_else(|| self.absolute_path.display().to_string()),
            tried.join(", ")
        )
    }
}

/// A plan file as written: the plan's fields and `spec`.
#[derive(Serialize)]
struct SavedPlanOut<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    spec: &'a SpecLocation,
}

/// Write `plan` and where its spec is to `out`.
pub fn write(out: &Path, plan: &Plan, spec: &SpecLocation) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(&SavedPlanOut { plan, spec }).expect("plans serialize");
    // Atomic: an `apply` started meanwhile never reads half a plan, and a FIFO or symlink at
    // `out` is replaced rather than written through. A plan holds no secret.
    write_atomic(out, &json, 0o644)
        .with_context(|| format!("cannot write the plan to {}", out.display()))
}

/// Read a plan file: the plan, and where its spec is (`None` for a plan saved before the
/// location was recorded).
pub fn read(path: &Path) -> anyhow::Result<(Plan, Option<SpecLocation>)> {
    let bytes = read_regular(path, MAX_PLAN_BYTES)
        .with_context(|| format!("cannot read the plan {}", path.display()))?;
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a plan saved by `tokensmith plan --out`",
            path.display()
        )
    })?;
    let found = value.get("format_version").and_then(|v| v.as_u64());
    anyhow::ensure!(
        found == Some(u64::from(FORMAT_VERSION)),
        "{} has plan format_version {}; this tokensmith reads version {FORMAT_VERSION}; re-run `tokensmith plan --out`",
        path.display(),
        found.map_or_else(|| "none".to_owned(), |v| v.to_string())
    );
    let spec = match value.as_object_mut().and_then(|o| o.remove("spec")) {
        Some(spec) => Some(serde_json::from_value(spec).with_context(|| {
            format!(
                "{}: `spec` does not say where the spec is; re-run `tokensmith plan --out`",
                path.display()
            )
        })?),
        None => None,
    };
    let plan = serde_json::from_value(value).with_context(|| {
        format!(
            "{} is not a valid plan; re-run `tokensmith plan --out`",
            path.display()
        )
    })?;
    Ok((plan, spec))
}

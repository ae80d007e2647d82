//! The desired-state language: reading `tokensmith.yaml` into [`crate::model::Desired`].
//!
//! The pipeline is [`fn@load`]: bytes (size and UTF-8 checked) → a located YAML tree ([`yaml`],
//! bounded against alias bombs) → typed entries ([`types`] via the tree deserializer [`de`]) →
//! templates and `for_each` rendered, defaults and presets applied ([`resolve`], [`template`]) →
//! semantic checks ([`validate`]). Every problem is a [`Diagnostic`] with `file:line:column` and a
//! caret excerpt; all of them are reported at once: an entry with a structural error (a wrong
//! type, an unknown field) is still checked for meaning without the broken fields. The JSON Schema comes from [`schema`].
//!
//! This module does no network I/O and reads only the spec file itself, plus, for a spec on
//! disk, the metadata of file targets' places (`deliver::file::place`: not the spec, not
//! `.tokensmith/` or `.git/`, relative paths inside the spec's directory, regular files only).
//! Relative paths stay relative (to the spec's directory, which the deliverer resolves).

pub mod de;
pub mod diagnostic;
pub mod load;
pub mod parallel;
pub mod resolve;
pub mod schema;
pub mod template;
pub mod types;
pub mod validate;
pub mod yaml;

use std::borrow::Cow;
use std::path::Path;

use sha2::{Digest, Sha256};

pub use diagnostic::{Diagnostic, Diagnostics, Location, Severity};
pub use resolve::ValuesReader;

use crate::model::Desired;

/// A spec that loaded without errors.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedSpec {
    pub desired: Desired,
    /// Findings that do not stop the spec from being used, in file order.
    pub warnings: Vec<Diagnostic>,
    /// SHA-256 (lowercase hex) of the file's bytes, for plan fingerprints.
    pub source_hash: String,
}

impl LoadedSpec {
    /// The warnings as [`Diagnostics`], for rendering.
    pub fn warnings(&self) -> Diagnostics {
        Diagnostics::new(self.warnings.clone())
    }

    /// Drops the spec, on a thread of its own when it is large (see
    /// [`parallel::drop_off_thread`]): for a command that has what it needs and is about to
    /// exit.
    pub fn discard(self) {
        let large = self.desired.tokens.len() >= LARGE_SPEC_TOKENS;
        parallel::drop_off_thread(self, large);
    }
}

/// Reads, parses, resolves and validates the spec file at `path`. The error holds every error and
/// warning found.
pub fn load(path: &Path) -> Result<LoadedSpec, Diagnostics> {
    let bytes = load::read(path).map_err(|d| Diagnostics::new(vec![d]))?;
    load_with(
        Cow::Owned(bytes),
        &path.display().to_string(),
        Some(path),
        None,
        None,
    )
}

/// The directory a spec file's relative paths resolve against.
pub fn spec_dir(spec_path: &Path) -> std::path::PathBuf {
    match spec_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// Like [`fn@load`], for a spec held in memory (tests, a spec read from a git blob).
pub fn load_str(text: &str, file_name: &str) -> Result<LoadedSpec, Diagnostics> {
    load_bytes(text.as_bytes(), file_name)
}

/// Like [`fn@load`], for raw bytes that may not be UTF-8.
pub fn load_bytes(bytes: &[u8], file_name: &str) -> Result<LoadedSpec, Diagnostics> {
    load_bytes_in(bytes, file_name, None)
}

/// Like [`load_bytes`], reading `for_each` values files through `read`.
pub fn load_bytes_with(
    bytes: &[u8],
    file_name: &str,
    read: ValuesReader<'_>,
) -> Result<LoadedSpec, Diagnostics> {
    load_with(Cow::Borrowed(bytes), file_name, None, None, Some(read))
}

/// Like [`load_bytes`], reading the `for_each` values files of exec targets (host lists)
/// relative to `dir`, the spec's directory. Without a directory such a spec is an error.
pub fn load_bytes_in(
    bytes: &[u8],
    file_name: &str,
    dir: Option<&Path>,
) -> Result<LoadedSpec, Diagnostics> {
    load_with(Cow::Borrowed(bytes), file_name, None, dir, None)
}

/// Load a spec; `on_disk` is the spec file when it is one (file targets are then checked
/// against the filesystem around it, and values files read next to it), `dir` a directory for
/// values files otherwise.
fn load_with(
    bytes: Cow<'_, [u8]>,
    file_name: &str,
    on_disk: Option<&Path>,
    dir: Option<&Path>,
    read: Option<ValuesReader<'_>>,
) -> Result<LoadedSpec, Diagnostics> {
    let (len, spec_hash) = (bytes.len(), Sha256::new().chain_update(&bytes));
    let text = load::decode(bytes, file_name).map_err(|d| Diagnostics::new(vec![d]))?;
    let source = diagnostic::SourceFile::new(file_name, text);
    let root = load::tree(&source).map_err(|d| Diagnostics::new(vec![d]))?;
    let mut diags = Vec::new();
    let parsed = load::sections(&root, &source, &mut diags);
    let dir = match on_disk {
        Some(path) => Some(spec_dir(path)),
        None => dir.map(Path::to_path_buf),
    };
    let mut resolver = resolve::Resolver::new(&source, &root)
        .in_dir(dir)
        .with_values_reader(read);
    if let Some(path) = on_disk {
        resolver = resolver.with_spec_file(path);
    }
    let values_files = resolver.values_files();
    let (desired, sites, mut more) = resolver.run(&parsed);
    parsed.drop_follow_ons(&mut more);
    // Freeing the tree and the entries of a spec with tens of thousands of tokens takes tens of
    // milliseconds; a large spec's are freed on another thread while this one finishes.
    parallel::drop_off_thread((root, parsed, sites), is_large(len));
    let source_hash = fingerprint(spec_hash, &resolve::lock_values_files(&values_files));
    diags.extend(more);
    dedup(&mut diags);
    let diags = Diagnostics::new(diags);
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(LoadedSpec {
        desired,
        warnings: diags.items,
        source_hash,
    })
}

/// Whether a spec of `len` bytes is large enough to be parsed on every core and freed off the
/// caller's thread.
fn is_large(len: usize) -> bool {
    len >= yaml::PARALLEL_MIN_BYTES
}

/// A spec with this many tokens or more is freed off the caller's thread by
/// [`LoadedSpec::discard`]: about as many as [`yaml::PARALLEL_MIN_BYTES`] of a plain spec hold.
const LARGE_SPEC_TOKENS: usize = 4_000;

/// SHA-256 (lowercase hex) of the spec's bytes (`hash` has read them), and of the values files
/// it read, if any (so a saved plan goes stale when a host list changes).
fn fingerprint(
    mut hash: Sha256,
    values_files: &std::collections::BTreeMap<String, Vec<u8>>,
) -> String {
    for (name, content) in values_files {
        hash.update(b"\0values-file\0");
        hash.update(name.as_bytes());
        hash.update(b"\0");
        hash.update(Sha256::digest(content));
    }
    crate::model::encode::hex(&hash.finalize())
}

/// Removes repeats (the same finding produced once per environment or `for_each` value).
fn dedup(diags: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::HashSet::with_capacity(diags.len());
    diags.retain(|d| {
        let place = d.location.as_ref().map(|l| (l.line, l.column));
        seen.insert((d.severity, d.message.clone(), place, d.notes.clone()))
    });
}

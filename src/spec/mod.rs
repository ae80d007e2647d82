//! The desired-state language: reading `tokensmith.yaml` into [`crate::model::Desired`].
//!
//! The pipeline is [`load`]: bytes (size and UTF-8 checked) → a located YAML tree ([`yaml`],
//! bounded against alias bombs) → typed entries ([`types`] via the tree deserializer [`de`]) →
//! templates and `for_each` rendered, defaults and presets applied ([`resolve`], [`template`]) →
//! semantic checks ([`validate`]). Every problem is a [`Diagnostic`] with `file:line:column` and a
//! caret excerpt; all of them are reported at once: an entry with a structural error (a wrong
//! type, an unknown field) is still checked for meaning without the broken fields. The JSON Schema comes from [`schema`].
//!
//! This module does no network I/O and reads only the spec file itself; relative paths in file
//! targets stay as written (they are relative to the spec's directory, which the deliverer
//! resolves).

pub mod de;
pub mod diagnostic;
pub mod load;
pub mod resolve;
pub mod schema;
pub mod template;
pub mod types;
pub mod validate;
pub mod yaml;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use diagnostic::{Diagnostic, Diagnostics, Location, Severity};

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
}

/// Reads, parses, resolves and validates the spec file at `path`. The error holds every error and
/// warning found.
pub fn load(path: &Path) -> Result<LoadedSpec, Diagnostics> {
    let bytes = load::read(path).map_err(|d| Diagnostics::new(vec![d]))?;
    load_bytes(&bytes, &path.display().to_string())
}

/// Like [`load`], for a spec held in memory (tests, a spec read from a git blob).
pub fn load_str(text: &str, file_name: &str) -> Result<LoadedSpec, Diagnostics> {
    load_bytes(text.as_bytes(), file_name)
}

/// Like [`load`], for raw bytes that may not be UTF-8.
pub fn load_bytes(bytes: &[u8], file_name: &str) -> Result<LoadedSpec, Diagnostics> {
    let source_hash = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let text = load::decode(bytes, file_name).map_err(|d| Diagnostics::new(vec![d]))?;
    let source = diagnostic::SourceFile::new(file_name, text);
    let root = load::tree(&source).map_err(|d| Diagnostics::new(vec![d]))?;
    let mut diags = Vec::new();
    let parsed = load::sections(&root, &source, &mut diags);
    let (desired, _sites, mut more) = resolve::Resolver::new(&source, &root).run(&parsed);
    parsed.drop_follow_ons(&mut more);
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

/// Removes repeats (the same finding produced once per environment or `for_each` value).
fn dedup(diags: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::HashSet::with_capacity(diags.len());
    diags.retain(|d| {
        let place = d.location.as_ref().map(|l| (l.line, l.column));
        seen.insert((d.severity, d.message.clone(), place, d.notes.clone()))
    });
}

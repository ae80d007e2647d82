//! The `file` target: a file on this machine, either the whole file (`raw`) or one key of an
//! `env`, `properties`, `json` or `yaml` file.
//!
//! Writes are atomic ([`atomic`]) and serialized per file (two targets may update two keys of
//! one file). Each format's editor changes only the value's bytes and the record next to it:
//! a comment line for `env`, `properties` and `yaml` ([`lines`], [`yaml`]); the `<path>.tokensmith`
//! [`sidecar`] for `raw` and `json` ([`json`]). Relative paths resolve against the spec's
//! directory; symlinks are followed, so the file they point to is replaced, not the link.
//! Every read and write first checks the place ([`place`]: not the spec, not `.tokensmith/` or
//! `.git/`, a relative path stays inside the spec's directory, only regular files), and files
//! are opened without blocking and read up to [`MAX_FILE_BYTES`], so a FIFO or device cannot
//! hang a run. An existing file whose mode is looser than the target's `mode` (0600 by default)
//! is tightened to it on write.
//!
//! Creating what is missing: `raw`, `env`, `properties` and `yaml` files and keys are created
//! (a `yaml` key as block mappings along its dotted path); `json` files and keys must exist
//! (their structure is the user's to choose).

pub mod atomic;
pub mod json;
pub mod lines;
pub mod place;
pub mod sidecar;
pub mod yaml;

use std::io;
use std::path::{Path, PathBuf};

use super::error::{DeliverError, HolderText};
use super::record::{holder_from, same_token, Parsed, Record};
use super::{Delivered, DeliveryContext, Verified};
use crate::bounded_read::{read_regular_to_string, ReadError};
use crate::model::{FileFormat, FileTarget, Holder, Secret, Target};

/// A failure before it is tied to a target address.
enum Fail {
    Io(&'static str, PathBuf, io::Error),
    Content(String),
}

impl Fail {
    fn at(self, target: &Target) -> DeliverError {
        match self {
            Fail::Io(action, path, source) => DeliverError::Io {
                address: target.address(),
                action,
                path,
                cause: source,
            },
            Fail::Content(reason) => DeliverError::Content {
                address: target.address(),
                reason,
            },
        }
    }
}

/// What a file holds for the target's key.
struct State {
    /// `None` when the key is missing.
    value: Option<String>,
    record: Option<Parsed>,
}

impl State {
    fn holder(self) -> Holder {
        match self.value {
            Some(v) => holder_from(Some(&v), self.record),
            None => Holder::Unknown,
        }
    }
}

pub(super) async fn read_holder(
    ctx: &DeliveryContext,
    target: &Target,
    f: &FileTarget,
) -> Result<Holder, DeliverError> {
    let path = place_of(ctx, f).map_err(|e| e.at(target))?;
    let f2 = f.clone();
    let state = blocking(move || read_state(&path, &f2))
        .await
        .map_err(|e| e.at(target))?;
    Ok(state.map_or(Holder::Absent, State::holder))
}

/// The value the file holds for the target's key; `None` when the file or key is missing.
pub(super) async fn read_value(
    ctx: &DeliveryContext,
    target: &Target,
    f: &FileTarget,
) -> Result<Option<Secret<String>>, DeliverError> {
    let path = place_of(ctx, f).map_err(|e| e.at(target))?;
    let f2 = f.clone();
    let state = blocking(move || read_state(&path, &f2))
        .await
        .map_err(|e| e.at(target))?;
    Ok(state
        .and_then(|s| s.value)
        .filter(|v| !v.is_empty())
        .map(Secret::new))
}

pub(super) async fn deliver(
    ctx: &DeliveryContext,
    target: &Target,
    f: &FileTarget,
    value: &Secret<String>,
    record: &Record,
) -> Result<Delivered, DeliverError> {
    let path = place_of(ctx, f).map_err(|e| e.at(target))?;
    let lock = ctx.file_lock(&path);
    let _guard = lock.lock().await;
    let (f2, value2, record2) = (f.clone(), value.clone(), record.clone());
    let changed = blocking(move || write_value(&path, &f2, &value2, &record2))
        .await
        .map_err(|e| e.at(target))?;
    Ok(Delivered {
        address: target.address(),
        holder: record.holder(),
        changed,
        notes: Vec::new(),
        warnings: Vec::new(),
    })
}

pub(super) async fn verify(
    ctx: &DeliveryContext,
    target: &Target,
    f: &FileTarget,
    record: &Record,
) -> Result<Verified, DeliverError> {
    let path = place_of(ctx, f).map_err(|e| e.at(target))?;
    let f2 = f.clone();
    let state = blocking(move || read_state(&path, &f2))
        .await
        .map_err(|e| e.at(target))?;
    let expected = record.holder();
    let (found, recorded) = match state {
        None => (Holder::Absent, None),
        Some(s) => {
            let recorded = s.record.clone();
            (s.holder(), recorded)
        }
    };
    if !same_token(&found, &expected) || recorded != Record::decode(&record.encode()) {
        let found = if same_token(&found, &expected) {
            // The value is right but the record next to it is missing or different.
            Holder::Unknown
        } else {
            found
        };
        return Err(DeliverError::Mismatch {
            address: target.address(),
            expected: HolderText(expected),
            found: HolderText(found),
        });
    }
    Ok(Verified::ReadBack(found))
}

async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, Fail> + Send + 'static,
) -> Result<T, Fail> {
    tokio::task::spawn_blocking(job)
        .await
        .unwrap_or_else(|e| Err(Fail::Content(format!("the file task failed: {e}"))))
}

/// Files larger than this are not token files; reading stops there.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The real path of the target's file (symlinks resolved, so a link survives the rename), once
/// [`place::check`] allows it.
fn place_of(ctx: &DeliveryContext, f: &FileTarget) -> Result<PathBuf, Fail> {
    ctx.confinement().check(&f.path).map_err(Fail::Content)
}

/// Whether an existing file at `path` has a mode looser than `mode` allows; the warning says so.
pub fn loose_mode(ctx: &DeliveryContext, f: &FileTarget) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = place_of(ctx, f).ok()?;
    let wanted = atomic::parse_mode(&f.mode).ok()?;
    let actual = std::fs::metadata(&path).ok()?.permissions().mode() & 0o7777;
    (actual & !wanted != 0).then(|| {
        format!(
            "file `{}` has mode {actual:04o}, looser than {wanted:04o}; apply tightens it to {wanted:04o}",
            f.path
        )
    })
}

/// Reads a regular file as text; `None` when it does not exist. A FIFO, device or directory
/// is refused without waiting, and a file over [`MAX_FILE_BYTES`] is not a token file.
fn read_text(path: &Path) -> Result<Option<String>, Fail> {
    match read_regular_to_string(path, MAX_FILE_BYTES) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(ReadError::Io(e)) => Err(Fail::Io("read", path.to_path_buf(), e)),
        Err(e) => Err(Fail::Content(format!(
            "cannot read `{}`: {e}",
            path.display()
        ))),
    }
}

fn key_of(f: &FileTarget) -> Result<&str, Fail> {
    f.key.as_deref().filter(|k| !k.is_empty()).ok_or_else(|| {
        Fail::Content(format!(
            "format `{}` needs a `key` naming the entry to update",
            format_name(f.format)
        ))
    })
}

fn format_name(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Raw => "raw",
        FileFormat::Env => "env",
        FileFormat::Properties => "properties",
        FileFormat::Json => "json",
        FileFormat::Yaml => "yaml",
    }
}

fn sidecar_key(f: &FileTarget) -> &str {
    match f.format {
        FileFormat::Raw => sidecar::RAW_KEY,
        _ => f.key.as_deref().unwrap_or_default(),
    }
}

fn read_sidecar(path: &Path) -> Result<sidecar::Sidecar, Fail> {
    let side = sidecar::path_of(path);
    let text = read_text(&side)?;
    sidecar::Sidecar::parse(text.as_deref())
        .map_err(|e| Fail::Content(format!("`{}`: {e}", side.display())))
}

/// What the file holds for the target; `None` when the file does not exist.
fn read_state(path: &Path, f: &FileTarget) -> Result<Option<State>, Fail> {
    let Some(content) = read_text(path)? else {
        return Ok(None);
    };
    let state = match f.format {
        FileFormat::Raw => State {
            value: Some(raw_value(path, &content)?.to_owned()),
            record: read_sidecar(path)?.get(sidecar_key(f)),
        },
        FileFormat::Env | FileFormat::Properties => {
            let dialect = if f.format == FileFormat::Env {
                lines::Dialect::Env
            } else {
                lines::Dialect::Properties
            };
            let found = lines::read(&content, dialect, key_of(f)?, f.section.as_deref())
                .map_err(Fail::Content)?;
            State {
                value: found.as_ref().map(|x| x.value.clone()),
                record: found.and_then(|x| x.record),
            }
        }
        FileFormat::Json => {
            let key = key_of(f)?;
            let path_segments: Vec<&str> = key.split('.').collect();
            State {
                value: json::read(&content, &path_segments).map_err(Fail::Content)?,
                record: read_sidecar(path)?.get(key),
            }
        }
        FileFormat::Yaml => {
            let segments: Vec<&str> = key_of(f)?.split('.').collect();
            let found = yaml::read(&content, &segments).map_err(Fail::Content)?;
            State {
                value: found.as_ref().map(|x| x.value.clone()),
                record: found.and_then(|x| x.record),
            }
        }
    };
    Ok(Some(state))
}

/// The value a raw file holds: its one line. A file of several lines is not one tokensmith
/// wrote (a raw target holds a token and nothing else), and replacing it would lose what it
/// holds (a spec naming `config.ini` as a raw target emptied it of everything but the token),
/// so it is refused when read, which stops the plan, and again before a write.
fn raw_value<'c>(path: &Path, content: &'c str) -> Result<&'c str, Fail> {
    let value = content.trim_end_matches(['\n', '\r']);
    if value.contains(['\n', '\r']) {
        return Err(Fail::Content(format!(
            "`{}` holds {} lines, and a raw target holds one value: it is not a file tokensmith wrote; move it away or choose another path",
            path.display(),
            value.lines().count()
        )));
    }
    Ok(value)
}

/// Put a file back as it was before an edit: its old bytes, or no file.
fn restore(path: &Path, original: Option<&str>, mode: u32) -> Result<(), Fail> {
    match original {
        Some(text) => atomic::write_atomic(path, text.as_bytes(), mode),
        None => std::fs::remove_file(path),
    }
    .map_err(|e| Fail::Io("restore", path.to_path_buf(), e))
}

/// Write the value and its record; returns whether anything changed on disk.
fn write_value(
    path: &Path,
    f: &FileTarget,
    value: &Secret<String>,
    record: &Record,
) -> Result<bool, Fail> {
    let mode = atomic::parse_mode(&f.mode).map_err(Fail::Content)?;
    let existing = read_text(path)?;
    let must_exist = |format: &str| {
        Fail::Content(format!(
            "`{}` does not exist; tokensmith updates a key in an existing {format} file, so create it with the key first",
            path.display()
        ))
    };
    let new_content = match f.format {
        FileFormat::Raw => {
            if let Some(old) = existing.as_deref() {
                raw_value(path, old)?;
            }
            value.expose().clone()
        }
        FileFormat::Env | FileFormat::Properties => {
            let dialect = if f.format == FileFormat::Env {
                lines::Dialect::Env
            } else {
                lines::Dialect::Properties
            };
            lines::write(
                existing.as_deref(),
                dialect,
                key_of(f)?,
                f.section.as_deref(),
                value.expose(),
                record,
            )
            .map_err(Fail::Content)?
        }
        FileFormat::Json => {
            let content = existing.as_deref().ok_or_else(|| must_exist("json"))?;
            let segments: Vec<&str> = key_of(f)?.split('.').collect();
            json::write(content, &segments, value.expose()).map_err(Fail::Content)?
        }
        FileFormat::Yaml => {
            // A missing file is an empty document: the key is created in it.
            let content = existing.as_deref().unwrap_or_default();
            let segments: Vec<&str> = key_of(f)?.split('.').collect();
            yaml::write(content, &segments, value.expose(), record).map_err(Fail::Content)?
        }
    };
    let mut changed = false;
    if existing.as_deref() != Some(new_content.as_str()) {
        atomic::write_atomic(path, new_content.as_bytes(), mode)
            .map_err(|e| Fail::Io("write", path.to_path_buf(), e))?;
        changed = true;
        // The edit must read back as exactly this value; if it does not (a layout the editor
        // misunderstood), the file is put back byte for byte and the delivery fails.
        let reads_back = f.format == FileFormat::Raw
            || read_state(path, f).is_ok_and(|s| {
                s.is_some_and(|s| s.value.as_deref() == Some(value.expose().as_str()))
            });
        if !reads_back {
            restore(path, existing.as_deref(), mode)?;
            return Err(Fail::Content(format!(
                "after the edit, `{}` did not read back as the new value; the file was restored as it was and nothing was delivered",
                path.display()
            )));
        }
    }
    // The record goes after the value: a crash in between leaves a stale record, which reading
    // detects (the value wins), never a record of a value that was not written.
    if matches!(f.format, FileFormat::Raw | FileFormat::Json) {
        let mut side = read_sidecar(path)?;
        if side.set(sidecar_key(f), record) {
            let side_path = sidecar::path_of(path);
            atomic::write_atomic(&side_path, side.to_text().as_bytes(), mode)
                .map_err(|e| Fail::Io("write", side_path, e))?;
            changed = true;
        }
    }
    Ok(changed)
}

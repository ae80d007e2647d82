//! A file target's `restart`: the command that makes the service reading the file pick up the
//! new value (an ActiveGate reads `authorization.properties`, `ruxitagent.conf` and
//! `extensions.conf` only at start, so Dynatrace's procedure is edit, then restart).
//!
//! Around the file write of [`super::file`]: the file (and its sidecar) is kept as it was, a
//! marker `<path>.tokensmith-restart` says a restart is owed, the file is written, and when it
//! changed (or a marker from an interrupted run is there) the command runs, without a shell and
//! never given the value, its output redacted. When the command fails, the file and sidecar are
//! put back as they were, so the target holds its previous token again and the delivery fails
//! like any other (the applier's clean-up then cancels or keeps the rotation as usual). While a
//! marker is there, `read_holder` reports the target as holding an unknown token, so a run
//! killed between the write and the restart is delivered again and the restart runs then.
//!
//! Not here: the file formats ([`super::file`]), how a command is run ([`super::exec`]).

use std::io;
use std::path::{Path, PathBuf};

use super::error::DeliverError;
use super::file::{atomic, sidecar};
use super::{exec, file, Delivered, DeliveryContext, Record};
use crate::bounded_read::read_regular;
use crate::model::{FileTarget, Holder, Secret, Target};

/// The marker's suffix, after the file's name.
pub const MARKER_SUFFIX: &str = ".tokensmith-restart";

/// The restart command of `f`, when it has one.
pub fn command_of(f: &FileTarget) -> Option<&[String]> {
    f.restart.as_deref().filter(|c| !c.is_empty())
}

/// Where the marker of `path` lives.
pub fn marker_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(MARKER_SUFFIX);
    PathBuf::from(name)
}

/// The file and sidecar as they were before the write.
struct Before {
    file: Option<Vec<u8>>,
    sidecar: Option<Vec<u8>>,
}

fn real_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn read_opt(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match read_regular(path, file::MAX_FILE_BYTES) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn put_back(path: &Path, content: Option<&[u8]>) -> io::Result<()> {
    match content {
        Some(bytes) => atomic::write_atomic(path, bytes, 0o600),
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

fn io_error(target: &Target, action: &'static str, path: &Path, source: io::Error) -> DeliverError {
    DeliverError::Io {
        address: target.address(),
        action,
        path: path.to_path_buf(),
        cause: source,
    }
}

/// What the target holds: unknown while a restart is owed, else what the file says.
pub(super) async fn read_holder(
    ctx: &DeliveryContext,
    target: &Target,
    f: &FileTarget,
) -> Result<Holder, DeliverError> {
    let marker = marker_of(&real_path(&ctx.resolve(&f.path)));
    if tokio::fs::try_exists(&marker).await.unwrap_or(false) {
        return Ok(Holder::Unknown);
    }
    file::read_holder(ctx, target, f).await
}

/// Write the file, then run the restart command; see the module docs.
pub(super) async fn deliver(
    ctx: &DeliveryContext,
    target: &Target,
    f: &FileTarget,
    argv: &[String],
    value: &Secret<String>,
    record: &Record,
) -> Result<Delivered, DeliverError> {
    let path = real_path(&ctx.resolve(&f.path));
    let marker = marker_of(&path);
    // Restarting deliveries of one file run one at a time, so one never puts back what another
    // wrote (the file's own lock is taken by the write itself).
    let lock = ctx.file_lock(&marker);
    let _guard = lock.lock().await;

    let side = sidecar::path_of(&path);
    let before = Before {
        file: read_opt(&path).map_err(|e| io_error(target, "read", &path, e))?,
        sidecar: read_opt(&side).map_err(|e| io_error(target, "read", &side, e))?,
    };
    let owed = tokio::fs::try_exists(&marker).await.unwrap_or(false);
    if !owed {
        let note = format!(
            "tokensmith: `{}` must run after this file changed\n",
            argv[0]
        );
        atomic::write_atomic(&marker, note.as_bytes(), 0o600)
            .map_err(|e| io_error(target, "write", &marker, e))?;
    }
    let mut delivered = match file::deliver(ctx, target, f, value, record).await {
        Ok(d) => d,
        Err(e) => {
            if !owed {
                let _ = std::fs::remove_file(&marker);
            }
            return Err(e);
        }
    };
    if !delivered.changed && !owed {
        let _ = std::fs::remove_file(&marker);
        return Ok(delivered);
    }
    if let Err(e) = exec::run_follow_up(ctx, target, argv, None, value).await {
        let restored = put_back(&path, before.file.as_deref())
            .and_then(|()| put_back(&side, before.sidecar.as_deref()));
        return Err(match restored {
            Ok(()) => {
                if !owed {
                    let _ = std::fs::remove_file(&marker);
                }
                DeliverError::Command {
                    address: target.address(),
                    reason: format!(
                        "the restart after writing failed, so the file was put back as it was: {e}"
                    ),
                }
            }
            Err(io) => DeliverError::Command {
                address: target.address(),
                reason: format!(
                    "the restart after writing failed ({e}), and putting the file back failed too ({io}); the file holds the new value and a restart is still owed"
                ),
            },
        });
    }
    std::fs::remove_file(&marker).map_err(|e| io_error(target, "remove", &marker, e))?;
    delivered.changed = true;
    delivered
        .notes
        .push(format!("ran `{}` after the write", argv.join(" ")));
    Ok(delivered)
}

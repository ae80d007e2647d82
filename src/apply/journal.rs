//! The journal: one JSON object per line for each run start, step intent, step outcome,
//! clean-up and run end, appended to a file (`.tokensmith/journal.jsonl` by default, chosen by
//! the command). It records step ids, token ids, target addresses and redacted messages, never
//! a secret: entries are built from secret-free parts, and every line also passes through
//! [`crate::live::redact`] before it is written, as a second guard.
//!
//! A failing journal write does not stop the run (the work is already being done); it is
//! reported as a warning.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::{TargetAddress, TokenId};
use crate::plan::StepId;

/// Where the journal goes unless `--journal` says otherwise, relative to the spec's directory.
pub const DEFAULT_JOURNAL: &str = ".tokensmith/journal.jsonl";

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    pub run: String,
    /// `run_started`, `intent`, `done`, `already_done`, `failed`, `skipped`, `note`, a clean-up
    /// action (`rolled_back`, `kept`, …) or `run_finished`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Where journal lines go.
pub struct Journal {
    out: Mutex<Option<Box<dyn Write + Send>>>,
    errors: Mutex<Vec<String>>,
}

impl Journal {
    /// Append to the file at `path`, creating it (0600) and its directory (0700). A FIFO or
    /// socket there is refused: opening a FIFO for writing waits for a reader, which would hang
    /// the apply before its first step (the open does not block, so one swapped in after the
    /// look is refused too). A device such as `/dev/null` is allowed. A symlink is refused, not
    /// followed: one committed to the repository as `.tokensmith/journal.jsonl` would have every
    /// apply append to a file of its choosing (`~/.bashrc`); pass the real path to `--journal`.
    pub fn open(path: &Path) -> io::Result<Journal> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::atomic_write::create_private_dir_all(dir)?;
        }
        if fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) {
            return Err(io::Error::other(
                "it is a symlink; the journal is not written through one",
            ));
        }
        let refuse = |kind: &fs::FileType| {
            if kind.is_fifo() || kind.is_socket() {
                return Err(io::Error::other(format!(
                    "it is {}; the journal is appended to a file",
                    crate::bounded_read::kind_of(kind)
                )));
            }
            Ok(())
        };
        if let Ok(meta) = fs::metadata(path) {
            refuse(&meta.file_type())?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(path)?;
        refuse(&file.metadata()?.file_type())?;
        Ok(Journal::to_writer(Box::new(file)))
    }

    /// Write to any writer (tests).
    pub fn to_writer(out: Box<dyn Write + Send>) -> Journal {
        Journal {
            out: Mutex::new(Some(out)),
            errors: Mutex::new(Vec::new()),
        }
    }

    /// A journal that writes nothing.
    pub fn disabled() -> Journal {
        Journal {
            out: Mutex::new(None),
            errors: Mutex::new(Vec::new()),
        }
    }

    /// Append one entry (redacted, flushed).
    pub fn write(&self, entry: &JournalEntry) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = out.as_mut() else { return };
        let line = match serde_json::to_string(entry) {
            Ok(l) => crate::live::redact(&l),
            Err(e) => {
                self.error(format!("a journal entry did not serialize: {e}"));
                return;
            }
        };
        if let Err(e) = writeln!(w, "{line}").and_then(|()| w.flush()) {
            self.error(format!("cannot write the journal: {e}"));
        }
    }

    fn error(&self, message: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.len() < 3 {
            errors.push(message);
        }
    }

    /// Write failures so far (at most a few), for the report's warnings.
    pub fn take_errors(&self) -> Vec<String> {
        std::mem::take(&mut *self.errors.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Parse a journal's text back into entries (tests, tooling).
    pub fn parse(text: &str) -> Result<Vec<JournalEntry>, serde_json::Error> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect()
    }
}

//! Why a delivery, read or verification failed. Every variant names the target by its
//! secret-free address; reasons are built by this module's callers from secret-free parts only
//! (command output passes through `redact` first).

use std::path::PathBuf;

use crate::model::{Holder, TargetAddress};

/// A failed delivery, read-back or verification.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// A file could not be read, written or renamed.
    #[error("{address}: cannot {action} `{}`: {cause}", path.display())]
    Io {
        address: TargetAddress,
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The target's content or settings do not allow the update (key missing, unsupported
    /// layout, ambiguous section, bad mode).
    #[error("{address}: {reason}")]
    Content {
        address: TargetAddress,
        reason: String,
    },
    /// The value cannot be written to this kind of target (whitespace, control characters), or
    /// it does not match the record it was delivered with.
    #[error("{address}: the value cannot be delivered: {reason}")]
    Value {
        address: TargetAddress,
        reason: String,
    },
    /// A command could not be started, exited non-zero, or printed something unusable.
    #[error("{address}: {reason}")]
    Command {
        address: TargetAddress,
        reason: String,
    },
    /// A command ran longer than its timeout and was killed.
    #[error("{address}: `{program}` did not finish within {after}s and was killed; raise `timeout` on the target if it needs longer")]
    Timeout {
        address: TargetAddress,
        program: String,
        after: u64,
    },
    /// No usable Kubernetes configuration.
    #[error("{address}: kubernetes configuration: {reason}")]
    KubeConfig {
        address: TargetAddress,
        reason: String,
    },
    /// The Kubernetes API answered with an error or could not be reached.
    #[error("{address}: kubernetes {method} {path}: {reason}")]
    Kube {
        address: TargetAddress,
        method: &'static str,
        path: String,
        reason: String,
    },
    /// The Secret is immutable and holds another value.
    #[error("{address}: the Secret is immutable (`immutable: true`) and holds another value; delete it (kubectl -n {namespace} delete secret {name}) so tokensmith can recreate it, or make it mutable")]
    Immutable {
        address: TargetAddress,
        namespace: String,
        name: String,
    },
    /// Optimistic concurrency kept failing.
    #[error("{address}: the Secret kept changing under us ({attempts} conflicting writes); another writer is updating it, try again")]
    Conflict {
        address: TargetAddress,
        attempts: u32,
    },
    /// The Dynatrace Operator reports the delivered token invalid (its message, and what was
    /// done about the Secret).
    #[error("{address}: the Dynatrace Operator rejected the delivered token: {reason}")]
    Operator {
        address: TargetAddress,
        reason: String,
    },
    /// Read-back after delivery found something else than what was delivered.
    #[error("{address}: read-back found {found} instead of {expected}")]
    Mismatch {
        address: TargetAddress,
        expected: HolderText,
        found: HolderText,
    },
}

impl DeliverError {
    /// The address of the target this error is about.
    pub fn address(&self) -> &TargetAddress {
        match self {
            DeliverError::Io { address, .. }
            | DeliverError::Content { address, .. }
            | DeliverError::Value { address, .. }
            | DeliverError::Command { address, .. }
            | DeliverError::Timeout { address, .. }
            | DeliverError::KubeConfig { address, .. }
            | DeliverError::Kube { address, .. }
            | DeliverError::Immutable { address, .. }
            | DeliverError::Conflict { address, .. }
            | DeliverError::Operator { address, .. }
            | DeliverError::Mismatch { address, .. } => address,
        }
    }
}

/// A [`Holder`] rendered for an error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderText(pub Holder);

impl std::fmt::Display for HolderText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Holder::Token { id, .. } => write!(f, "token {id}"),
            Holder::TenantToken { fingerprint, .. } => {
                write!(f, "tenant token {fingerprint}")
            }
            Holder::RestartOwed { fingerprint, .. } => write!(
                f,
                "tenant token {fingerprint}, with the restart of its injected workloads still owed"
            ),
            Holder::Unknown => f.write_str("a value with no recorded token"),
            Holder::Absent => f.write_str("nothing (the target does not exist)"),
            Holder::WriteOnly => f.write_str("nothing readable (write-only target)"),
            Holder::Unreadable { reason } => write!(f, "an unreadable target ({reason})"),
        }
    }
}

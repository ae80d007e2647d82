//! Delivery: writing a token's secret value to the places that consume it, and reading back
//! which token each place holds.
//!
//! One file per target kind ([`mod@file`], [`exec`], [`kube`]) behind one trait, [`Deliver`], with
//! three operations:
//! - `read_holder`: which token the target holds now (by id, or the tenant token by
//!   fingerprint), or that it is absent, write-only or unreadable. Never fails: a failure is a
//!   [`Holder::Unreadable`] with a secret-free reason. [`read_all`] reads many targets
//!   concurrently into a [`TargetSnapshot`] for the planner.
//! - `deliver`: write the value and, next to it, a [`Record`] of which token it is (a comment
//!   line, a sidecar file, an annotation, an environment variable for a script).
//! - `verify`: read the target back and check it holds what the record says.
//!
//! Besides the trait, [`Deliverer::preflight`] checks Kubernetes targets at plan time (the
//! context, the API server, the permissions on the Secret, the DynaKube), so a plan can block
//! before any token is created.
//!
//! The secret arrives as a [`Secret`] and is exposed only where it leaves the process: file
//! contents, a Kubernetes `data` field (base64), a child's environment, stdin or (when the spec
//! says so) argv. Errors, holders and records are built from secret-free parts; command output is
//! redacted before it is quoted.
//!
//! A file target may name a `restart` command, run after the file changed ([`restart`]: an
//! ActiveGate reads its config only at start). Exec commands (deliver, read, verify, restart) run
//! at most [`DeliveryContext::exec_concurrency`] at once, however many targets the caller drives
//! concurrently: a fleet of thousands of hosts is a fan-out, not a fork bomb.
//!
//! This module does not decide *when* to deliver or which token a target should hold: that is
//! the planner's and the applier's job. It does not validate the spec either (the spec module
//! warns about `secret_in_argv`), beyond refusing what it cannot do safely.

pub mod error;
pub mod exec;
pub mod file;
pub mod kube;
pub mod record;
pub mod restart;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;

pub use error::DeliverError;
pub use kube::{KubeSettings, PreflightFailure};
pub use record::Record;

use crate::model::{Holder, Secret, Target, TargetAddress, TargetSnapshot};

/// Environment variables set for exec targets' commands (deliver, read and verify), so scripts
/// can record what they were given. Never the secret itself.
pub mod exec_env {
    /// The id of the token being delivered or verified.
    pub const TOKEN_ID: &str = "TOKENSMITH_TOKEN_ID";
    /// When the token being delivered or verified expires (RFC 3339), if it expires.
    pub const TOKEN_EXPIRES: &str = "TOKENSMITH_TOKEN_EXPIRES";
    /// The fingerprint of the tenant token being delivered or verified.
    pub const TENANT_FINGERPRINT: &str = "TOKENSMITH_TENANT_FINGERPRINT";
    /// When the tenant token was written (RFC 3339).
    pub const TENANT_SINCE: &str = "TOKENSMITH_TENANT_SINCE";
    /// The full record (`dt0c01.XXX`, `dt0c01.XXX until <time>` or
    /// `tenant:<fingerprint> since <time>`); a read command prints it back.
    pub const RECORD: &str = "TOKENSMITH_RECORD";
}

/// How long an exec target's command may run unless the target says otherwise.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How many targets [`read_all`] reads at once.
pub const DEFAULT_READ_CONCURRENCY: usize = 8;

/// How many exec commands (deliver, read and verify commands of exec targets) run at once unless
/// the context says otherwise: enough to get through a fleet of thousands of hosts in minutes,
/// few enough that the machine running tokensmith, the ssh agent and the ansible controller are
/// not swamped.
pub const DEFAULT_EXEC_CONCURRENCY: usize = 16;

/// Settings and shared state for delivering: where relative paths resolve, how Kubernetes is
/// reached (clients are created lazily, once per context), and timeouts.
pub struct DeliveryContext {
    /// Relative file paths and relative command paths resolve against this directory (the spec
    /// file's directory). Commands also run in it.
    pub base_dir: PathBuf,
    /// The spec file, which no file target may be ([`file::place`]).
    pub spec_file: Option<PathBuf>,
    /// Timeout for exec commands whose target has no `timeout`.
    pub exec_timeout: Duration,
    /// How many targets [`read_all`] reads at once.
    pub read_concurrency: usize,
    /// Where kubeconfig files and the in-cluster configuration are found.
    pub kube: KubeSettings,
    /// Shared with [`DeliveryContext::sibling`]s: one connection per context in a run.
    kube_clients: Arc<kube::ClientCache>,
    /// Shared with siblings: one writer per file in a process.
    file_locks: Arc<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>>,
    /// The file place rules for `base_dir` and `spec_file`, resolved on first use.
    confinement: std::sync::OnceLock<file::place::Confinement>,
    /// Bounds the exec targets' commands running at once.
    exec_slots: ExecSlots,
}

/// The bound on exec commands running at once.
struct ExecSlots {
    limit: usize,
    semaphore: tokio::sync::Semaphore,
}

impl ExecSlots {
    fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        ExecSlots {
            limit,
            semaphore: tokio::sync::Semaphore::new(limit),
        }
    }
}

impl DeliveryContext {
    /// A context for a spec in `base_dir`, with Kubernetes settings from the environment
    /// (`KUBECONFIG`, `~/.kube/config`, the in-cluster service account).
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        Self::with_kube(base_dir, KubeSettings::from_env())
    }

    /// Child processes this context starts without choosing their whole environment (a
    /// kubeconfig's exec plugin) do not get these variables (the spec's credentials).
    pub fn with_hidden_env<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.kube
            .hidden_env
            .extend(names.into_iter().map(str::to_owned));
        self
    }

    /// A context with explicit Kubernetes settings (tests, or a CLI flag).
    pub fn with_kube(base_dir: impl Into<PathBuf>, kube: KubeSettings) -> Self {
        DeliveryContext {
            base_dir: base_dir.into(),
            spec_file: None,
            exec_timeout: DEFAULT_EXEC_TIMEOUT,
            read_concurrency: DEFAULT_READ_CONCURRENCY,
            kube,
            kube_clients: Arc::default(),
            file_locks: Arc::default(),
            confinement: std::sync::OnceLock::new(),
            exec_slots: ExecSlots::new(DEFAULT_EXEC_CONCURRENCY),
        }
    }

    /// A context with this one's settings that shares its Kubernetes connections and its file
    /// locks (an apply's deliverer beside the one that read the targets: a kubeconfig's exec
    /// plugin is run for one client per context, not one per deliverer), with bounds of its own
    /// to set.
    pub fn sibling(&self) -> Self {
        DeliveryContext {
            base_dir: self.base_dir.clone(),
            spec_file: self.spec_file.clone(),
            exec_timeout: self.exec_timeout,
            read_concurrency: self.read_concurrency,
            kube: self.kube.clone(),
            kube_clients: Arc::clone(&self.kube_clients),
            file_locks: Arc::clone(&self.file_locks),
            confinement: self.confinement.clone(),
            exec_slots: ExecSlots::new(self.exec_slots.limit),
        }
    }

    /// The same context, knowing the spec file (so no file target can replace it).
    pub fn with_spec_file(mut self, spec_file: impl Into<PathBuf>) -> Self {
        self.spec_file = Some(spec_file.into());
        self.confinement = std::sync::OnceLock::new();
        self
    }

    /// Where file targets may be, for this context's spec (resolved once: a fleet of file
    /// targets is checked against the same two paths).
    pub fn confinement(&self) -> &file::place::Confinement {
        self.confinement.get_or_init(|| {
            file::place::Confinement::new(&self.base_dir, self.spec_file.as_deref())
        })
    }

    /// Wait at most `wait` for the Dynatrace Operator after touching a DynaKube.
    pub fn with_operator_wait(mut self, wait: Duration) -> Self {
        self.kube.operator_wait = wait;
        self
    }

    /// Run at most `limit` exec commands at once (at least one).
    pub fn with_exec_concurrency(mut self, limit: usize) -> Self {
        self.exec_slots = ExecSlots::new(limit);
        self
    }

    /// How many exec commands run at once at most.
    pub fn exec_concurrency(&self) -> usize {
        self.exec_slots.limit
    }

    /// Wait for a free exec slot; the command may run while the permit lives.
    async fn exec_slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        // The semaphore is never closed, so acquiring only waits.
        self.exec_slots
            .semaphore
            .acquire()
            .await
            .expect("the exec semaphore is never closed")
    }

    /// `path` resolved against [`DeliveryContext::base_dir`] when relative.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// A lock per file, so two targets updating keys of the same file never lose an update.
    fn file_lock(&self, path: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.file_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(path.to_path_buf()).or_default().clone()
    }
}

/// The outcome of a successful delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub address: TargetAddress,
    /// What the target holds now (from the record written).
    pub holder: Holder,
    /// False when the target already held exactly this value and record, so nothing was written
    /// (and no workload was restarted). Exec targets always run, so they always report true.
    pub changed: bool,
    /// Secret-free notes on follow-up actions (`requested a reconcile of dynakube …`,
    /// `restarted deployment/app`).
    pub notes: Vec<String>,
    /// Follow-ups that failed after the value was written (the target holds the new value, so
    /// the delivery itself succeeded); the applier should report them.
    pub warnings: Vec<String>,
}

/// How a verification succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The target was read back and holds the recorded token (and, where the value was readable,
    /// the value matches the record).
    ReadBack(Holder),
    /// A write-only target whose `verify_command` succeeded.
    VerifyCommand,
    /// A write-only target with no way to check; confirm through the token's `lastUsedDate`.
    Unverifiable,
}

/// The delivery operations, object-safe so the applier can be tested with a fake.
pub trait Deliver: Send + Sync {
    /// Which token `target` holds now. Never fails; see [`Holder::Unreadable`].
    fn read_holder<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Holder>;

    /// Write `value` to `target`, recording `record` next to it.
    fn deliver<'a>(
        &'a self,
        target: &'a Target,
        value: &'a Secret<String>,
        record: &'a Record,
    ) -> BoxFuture<'a, Result<Delivered, DeliverError>>;

    /// Read `target` back and check it holds what `record` says.
    fn verify<'a>(
        &'a self,
        target: &'a Target,
        record: &'a Record,
    ) -> BoxFuture<'a, Result<Verified, DeliverError>>;

    /// The value `target` holds, so the applier can copy an existing token (whose value
    /// Dynatrace shows only once) from one target to another. `Ok(None)` when the target holds
    /// no value. Only `file` and `kubernetes_secret` targets can be read; the default refuses.
    fn read_value<'a>(
        &'a self,
        target: &'a Target,
    ) -> BoxFuture<'a, Result<Option<Secret<String>>, DeliverError>> {
        Box::pin(async move { Err(cannot_read_value(target)) })
    }
}

/// The error of [`Deliver::read_value`] for targets whose value cannot be read back.
pub fn cannot_read_value(target: &Target) -> DeliverError {
    DeliverError::Content {
        address: target.address(),
        reason: format!(
            "the value of a `{}` target cannot be read back to copy it; rotate the token so a new value is delivered",
            target.kind()
        ),
    }
}

/// The real deliverer: files, commands and Kubernetes, dispatched on the target kind.
pub struct Deliverer {
    ctx: DeliveryContext,
}

impl Deliverer {
    pub fn new(ctx: DeliveryContext) -> Self {
        Deliverer { ctx }
    }

    pub fn context(&self) -> &DeliveryContext {
        &self.ctx
    }

    /// Every target's holder, [`DeliveryContext::read_concurrency`] at a time, or as many as
    /// exec commands may run at once when that is more (a fleet's read commands).
    pub async fn read_all(&self, targets: &[Target]) -> TargetSnapshot {
        let concurrency = self.ctx.read_concurrency.max(self.ctx.exec_concurrency());
        read_all(self, targets, concurrency).await
    }

    /// Plan-time checks of the Kubernetes targets among `targets` (see [`fn@kube::preflight`]).
    pub async fn preflight(&self, targets: &[Target]) -> Vec<PreflightFailure> {
        kube::preflight(&self.ctx, targets).await
    }

    /// See [`Deliver::read_holder`].
    pub async fn read_holder(&self, target: &Target) -> Holder {
        let result = match target {
            Target::File(f) if restart::command_of(f).is_some() => {
                restart::read_holder(&self.ctx, target, f).await
            }
            Target::File(f) => file::read_holder(&self.ctx, target, f).await,
            Target::Exec(e) => {
                let _slot = self.ctx.exec_slot().await;
                exec::read_holder(&self.ctx, target, e).await
            }
            Target::KubernetesSecret(k) => kube::read_holder(&self.ctx, target, k).await,
            Target::DynakubeTenant(d) => kube::tenant::read_holder(&self.ctx, target, d).await,
        };
        result.unwrap_or_else(|e| Holder::Unreadable {
            reason: e.to_string(),
        })
    }

    /// See [`Deliver::deliver`].
    pub async fn deliver(
        &self,
        target: &Target,
        value: &Secret<String>,
        record: &Record,
    ) -> Result<Delivered, DeliverError> {
        check_value(target, value, record)?;
        match target {
            Target::File(f) => match restart::command_of(f) {
                Some(argv) => {
                    let _slot = self.ctx.exec_slot().await;
                    restart::deliver(&self.ctx, target, f, argv, value, record).await
                }
                None => file::deliver(&self.ctx, target, f, value, record).await,
            },
            Target::Exec(e) => {
                let _slot = self.ctx.exec_slot().await;
                exec::deliver(&self.ctx, target, e, value, record).await
            }
            Target::KubernetesSecret(k) => kube::deliver(&self.ctx, target, k, value, record).await,
            Target::DynakubeTenant(d) => {
                kube::tenant::deliver(&self.ctx, target, d, value, record).await
            }
        }
    }

    /// See [`Deliver::read_value`].
    pub async fn read_value(
        &self,
        target: &Target,
    ) -> Result<Option<Secret<String>>, DeliverError> {
        match target {
            Target::File(f) => file::read_value(&self.ctx, target, f).await,
            Target::KubernetesSecret(k) => kube::read_value(&self.ctx, target, k).await,
            Target::Exec(_) | Target::DynakubeTenant(_) => Err(cannot_read_value(target)),
        }
    }

    /// See [`Deliver::verify`].
    pub async fn verify(&self, target: &Target, record: &Record) -> Result<Verified, DeliverError> {
        match target {
            Target::File(f) => file::verify(&self.ctx, target, f, record).await,
            Target::Exec(e) => {
                let _slot = self.ctx.exec_slot().await;
                exec::verify(&self.ctx, target, e, record).await
            }
            Target::KubernetesSecret(k) => kube::verify(&self.ctx, target, k, record).await,
            Target::DynakubeTenant(d) => kube::tenant::verify(&self.ctx, target, d, record).await,
        }
    }
}

impl Deliver for Deliverer {
    fn read_holder<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Holder> {
        Box::pin(Deliverer::read_holder(self, target))
    }

    fn deliver<'a>(
        &'a self,
        target: &'a Target,
        value: &'a Secret<String>,
        record: &'a Record,
    ) -> BoxFuture<'a, Result<Delivered, DeliverError>> {
        Box::pin(Deliverer::deliver(self, target, value, record))
    }

    fn verify<'a>(
        &'a self,
        target: &'a Target,
        record: &'a Record,
    ) -> BoxFuture<'a, Result<Verified, DeliverError>> {
        Box::pin(Deliverer::verify(self, target, record))
    }

    fn read_value<'a>(
        &'a self,
        target: &'a Target,
    ) -> BoxFuture<'a, Result<Option<Secret<String>>, DeliverError>> {
        Box::pin(Deliverer::read_value(self, target))
    }
}

/// Read every target's holder, `concurrency` at a time (at least one).
pub async fn read_all(
    deliverer: &dyn Deliver,
    targets: &[Target],
    concurrency: usize,
) -> TargetSnapshot {
    let holders = futures::stream::iter(targets)
        .map(|target| async move { (target.address(), deliverer.read_holder(target).await) })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    TargetSnapshot {
        holders: holders.into_iter().collect(),
    }
}

/// Refuse values no target can carry safely, and records that do not describe the value.
fn check_value(
    target: &Target,
    value: &Secret<String>,
    record: &Record,
) -> Result<(), DeliverError> {
    let v = value.expose();
    let reason = if v.is_empty() {
        Some("it is empty".to_owned())
    } else if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains whitespace or control characters (the Dynatrace Operator and config files reject them)".to_owned())
    } else {
        record.check_matches(value).err()
    };
    match reason {
        Some(reason) => Err(DeliverError::Value {
            address: target.address(),
            reason,
        }),
        None => Ok(()),
    }
}

/// `text` with every occurrence of the secret (and of its base64 forms) replaced by
/// `<redacted>`: for quoting command output and server messages in errors.
pub(crate) fn redact(text: &str, secret: &Secret<String>) -> String {
    use base64::Engine;
    let s = secret.expose();
    if s.is_empty() {
        return text.to_owned();
    }
    let mut out = text.replace(s.as_str(), "<redacted>");
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
    ] {
        let encoded = engine.encode(s.as_bytes());
        out = out.replace(&encoded, "<redacted>");
        let trimmed = encoded.trim_end_matches('=');
        if trimmed.len() >= 8 {
            out = out.replace(trimmed, "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_plain_and_base64_forms() {
        use base64::Engine;
        let secret = Secret::from("dt0c01.ABCDEFGH.SECRETSECRET");
        let b64 = base64::engine::general_purpose::STANDARD.encode("dt0c01.ABCDEFGH.SECRETSECRET");
        let text = format!("bad token dt0c01.ABCDEFGH.SECRETSECRET or {b64}");
        let out = redact(&text, &secret);
        assert!(!out.contains("SECRETSECRET"), "{out}");
        assert!(!out.contains(&b64), "{out}");
        assert_eq!(out.matches("<redacted>").count(), 2);
    }
}

//! `tokensmith force-unlock ENV LOCK_ID`: release an apply lock left behind by a run that died.

use super::session::spec_dir;
use crate::apply::lock::LocalLocks;
use crate::cli::ForceUnlockArgs;
use crate::gitops::locks::ApplyLocks;
use crate::gitops::remote_lock::RemoteLocks;
use crate::model::EnvName;
use crate::output::{ExitStatus, Printer};

pub fn run(args: &ForceUnlockArgs, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let locks = apply_locks(&args.spec.file, args.lock_remote.as_deref());
    let released = locks.force_unlock(&EnvName::new(args.env.as_str()), &args.lock_id)?;
    writeln!(
        printer.out(),
        "released lock {} of environment `{}` (held by {} since {})",
        released.id,
        released.environment,
        released.holder,
        released.created_at
    )?;
    Ok(ExitStatus::Success)
}

/// Where a spec's apply locks live: files under `.tokensmith/locks/` next to it, or refs in
/// the given git remote of the repository holding it.
pub fn apply_locks(spec_path: &std::path::Path, remote: Option<&str>) -> ApplyLocks {
    let dir = spec_dir(spec_path);
    match remote {
        Some(remote) => ApplyLocks::Remote(RemoteLocks::new(dir, remote)),
        None => ApplyLocks::Local(LocalLocks::new(dir.join(".tokensmith").join("locks"))),
    }
}

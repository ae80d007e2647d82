//! `tokensmith force-unlock ENV LOCK_ID`: release an apply lock left behind by a run that died.

use crate::cli::ForceUnlockArgs;
use crate::lock::{LockStore, Locks};
use crate::model::EnvName;
use crate::output::{ExitStatus, Printer};

pub fn run(args: &ForceUnlockArgs, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let locks = Locks::for_spec(
        &args.spec.file,
        &LockStore::from_lock_remote(args.lock_remote.as_deref()),
    );
    let released = locks.force_unlock(&EnvName::new(args.env.as_str()), &args.lock_id)?;
    writeln!(
        printer.out(),
        "released lock {} of environment `{}` (held by {}, taken {})",
        released.id,
        released.environment,
        released.holder,
        released.taken()
    )?;
    Ok(ExitStatus::Success)
}

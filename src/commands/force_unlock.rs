//! `tokensmith force-unlock ENV LOCK_ID`: release an apply lock left behind by a run that died:
//! the local (or git-remote) lock, or the lease kept in the environment itself when `ENV` is an
//! environment of the spec.

use super::session::{self, Session};
use crate::cli::ForceUnlockArgs;
use crate::live::ClientSettings;
use crate::lock::{LockStore, Locks};
use crate::model::EnvName;
use crate::output::{ExitStatus, Printer};

pub fn run(
    args: &ForceUnlockArgs,
    client: &ClientSettings,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let env = EnvName::new(args.env.as_str());
    let mut locks = Locks::for_spec(
        &args.spec.file,
        &LockStore::from_lock_remote(args.lock_remote.as_deref()),
    );
    let runtime = session::runtime()?;
    // The lease needs the environment's endpoint from the spec; a spec that does not load (or
    // an account lock) still lets the local lock be released.
    match session::load_spec(&args.spec.file, None, printer)? {
        Some(source) if source.loaded.desired.environments.contains_key(&env) => {
            let session = Session::new(
                &args.spec.file,
                source,
                std::slice::from_ref(&args.env),
                &[],
                client,
            )?;
            locks = locks.with_leases(session.leases(runtime.handle().clone()));
        }
        Some(_) => {}
        None => writeln!(
            printer.err(),
            "warning: the spec does not load, so only the local lock of `{env}` is looked at"
        )?,
    }
    let released = locks.force_unlock(&env, &args.lock_id)?;
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

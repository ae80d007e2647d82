//! `tokensmith force-unlock ENV LOCK_ID`: release an apply lock left behind by a run that died:
//! the local (or git-remote) lock, or the lease kept in Dynatrace itself when `ENV` is an
//! environment of the spec or `account-NAME` for one of its accounts.

use super::session::{self, Session};
use crate::cli::settings::Connections;
use crate::cli::ForceUnlockArgs;
use crate::lock::{LockStore, Locks};
use crate::model::EnvName;
use crate::output::{ExitStatus, Printer};

pub fn run(
    args: &ForceUnlockArgs,
    connect: &Connections,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let env = EnvName::new(args.env.as_str());
    let store = LockStore::from_lock_remote(args.lock_remote.as_deref());
    let mut locks = Locks::for_spec(&args.spec.file, &store, []);
    let runtime = session::runtime()?;
    // The lease needs the environment's (or account's) endpoint from the spec; a spec that does
    // not load still lets the local lock be released.
    match session::load_spec(&args.spec.file, None, printer)? {
        Some(source) => {
            locks = Locks::for_spec(
                &args.spec.file,
                &store,
                source.loaded.desired.credential_vars(),
            );
            let desired = &source.loaded.desired;
            let account = desired
                .accounts
                .keys()
                .find(|a| EnvName::account_lock(a) == env)
                .map(|a| a.to_string());
            let is_env = desired.environments.contains_key(&env);
            if is_env || account.is_some() {
                // Only the one environment or account is reached (leases connect when asked).
                let (envs, accounts) = match account {
                    Some(a) if !is_env => (Vec::new(), vec![a]),
                    _ => (vec![args.env.clone()], Vec::new()),
                };
                let session = Session::new(&args.spec.file, source, &envs, &accounts, connect)?;
                locks = locks.with_leases(session.leases(runtime.handle().clone()));
            }
        }
        None => writeln!(
            printer.err(),
            "warning: the spec does not load, so only the local lock of `{env}` is looked at"
        )?,
    }
    let released = locks.force_unlock(&env, &args.lock_id)?;
    writeln!(
        printer.out(),
        "released lock {} of {} (held by {}, taken {})",
        released.id,
        crate::lock::error::subject(&released.environment),
        released.holder,
        released.taken()
    )?;
    Ok(ExitStatus::Success)
}

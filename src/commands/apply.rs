//! `tokensmith apply`: execute a saved plan (`apply PLAN`) after checking it is still fresh, or
//! plan the desired state and execute it after confirmation (`apply -f FILE`, `--auto-approve`
//! in CI). Every environment of the spec is locked for the whole run.

use std::io::BufRead;
use std::path::Path;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::saved_plan::{self, SpecRef};
use super::session::{self, Session};
use crate::apply::{self, ApplyEnv, ApplyOptions, PlainProgress, Progress, DEFAULT_CONCURRENCY};
use crate::cli::settings::{ApplySettings, Connections};
use crate::deliver::{Deliver, Deliverer};
use crate::git::repo::{check_plan_commit, has_commit, CommitMismatch};
use crate::lock::{LockStore, Locks, LEASE_LIFETIME, STOP_STARTING_BEFORE_LEASE_ENDS};
use crate::output::{ExitStatus, Printer};
use crate::plan::{self, Plan};
use crate::render::progress::{self, BarProgress};
use crate::render::{self, Format};

pub fn run(
    args: ApplySettings,
    connect: &Connections,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let (saved, recorded_spec) = match args.plan.as_deref() {
        Some(path) => {
            let (plan, spec) = saved_plan::read(path)?;
            (Some(plan), spec.map(|spec| (path, spec)))
        }
        None => (None, None),
    };
    // A saved plan applies on its own: without `-f`, the spec it was made from, and at the
    // commit it was read from when it was planned with `--spec-ref` (an explicit `--spec-ref`
    // here wins).
    let recorded_ref = recorded_spec
        .as_ref()
        .and_then(|(_, spec)| spec.spec_ref.clone())
        .filter(|_| args.git.spec_ref.is_none());
    let spec_file = match &recorded_spec {
        Some((plan_path, spec)) if !args.spec_given => spec.resolve(plan_path)?,
        _ => args.spec.file.clone(),
    };
    if let (Some(recorded), Some(plan_path)) = (&recorded_ref, args.plan.as_deref()) {
        check_recorded_commit(plan_path, &spec_file, recorded)?;
        writeln!(
            printer.err(),
            "spec: {} at commit {} (`{}` when planned), as the plan records",
            spec_file.display(),
            recorded.commit,
            recorded.reference
        )?;
    }
    let spec_ref = match &recorded_ref {
        Some(recorded) => Some(recorded.commit.as_str()),
        None => args.git.spec_ref.as_deref(),
    };
    let Some(source) = session::load_spec(&spec_file, spec_ref, printer)? else {
        return Ok(ExitStatus::Failure);
    };
    let session = Session::new(&spec_file, source, &args.envs, &args.accounts, connect)?;
    if let Some(plan) = &saved {
        if !args.allow_other_commit {
            check_commit(plan, &session)?;
        }
    }

    // A `--replace` that names no token is refused before anything is locked or read.
    plan::check_replace(&session.desired, &args.replace)?;

    // Lock every selected environment before reading anything, so what is planned (or checked
    // for freshness) is what this run alone changes: the local (or git-remote) lock, then a
    // lease kept in each environment itself, which holds across machines.
    let runtime = session::runtime()?;
    let locks = Locks::for_spec(
        &session.spec_path,
        &LockStore::from_lock_remote(args.lock_remote.as_deref()),
        session.loaded.desired.credential_vars(),
    )
    .with_leases(session.leases(runtime.handle().clone()));
    let commit = session.commit.as_ref().map(|c| c.commit.clone());
    let wait = args.lock_timeout;
    let mut guards = Vec::new();
    // The first lease taken is the first to run out; steps stop starting well before.
    let mut first_locked: Option<Instant> = None;
    for env in session.desired.environments.keys() {
        guards.push(locks.acquire(env, commit.clone(), wait)?);
        first_locked.get_or_insert_with(Instant::now);
    }
    for account in session.desired.accounts.keys() {
        let name = crate::model::EnvName::account_lock(account);
        guards.push(locks.acquire(&name, commit.clone(), wait)?);
        first_locked.get_or_insert_with(Instant::now);
    }
    for guard in &guards {
        let info = guard.info();
        writeln!(
            printer.err(),
            "lock acquired: `{}` (lock {}, {})",
            info.environment,
            info.id,
            info.holder
        )?;
    }

    let world = runtime.block_on(session.read_world_shown(printer.progress_bars()))?;
    for w in &world.warnings {
        writeln!(printer.err(), "warning: {w}")?;
    }
    let plan = match saved {
        Some(mut plan) => {
            if let Err(stale) = apply::check_fresh(
                &plan,
                &session.loaded.source_hash,
                &world.live,
                &world.targets,
            ) {
                writeln!(printer.err(), "error: {stale}")?;
                return Ok(ExitStatus::Failure);
            }
            if let Err(edited) = apply::check_as_planned(
                &plan,
                &session.desired,
                &world.live,
                &world.targets,
                &session.plan_options(None),
            ) {
                writeln!(printer.err(), "error: {edited}")?;
                return Ok(ExitStatus::Failure);
            }
            // The targets are checked again: a cluster reachable at plan time may not be now.
            plan.checks
                .retain(|c| c.code != plan::Reason::TargetUnusable);
            session::add_preflight(&mut plan, &session.desired, &world.preflight);
            plan
        }
        None => {
            let mut plan = plan::plan(
                &session.desired,
                &world.live,
                &world.targets,
                session::now(&world.live),
                &plan::PlanOptions {
                    replace: args.replace.clone(),
                    ..session.plan_options(None)
                },
            )?;
            session::add_preflight(&mut plan, &session.desired, &world.preflight);
            if args.format == Format::Markdown {
                render::apply_plan_markdown(&plan, printer.out())?;
            } else {
                render::render_plan(&plan, args.format, printer.out())?;
            }
            // A plan whose only changes are blocked fails below, like any blocked plan.
            if !plan.has_changes() && !plan.is_blocked() {
                return Ok(ExitStatus::Success);
            }
            if !plan.is_blocked() && !args.auto_approve && !confirm(printer)? {
                writeln!(printer.err(), "apply cancelled; nothing was changed")?;
                return Ok(ExitStatus::Failure);
            }
            plan
        }
    };
    if plan.is_blocked() {
        for check in plan.checks.iter().filter(|c| c.blocking) {
            writeln!(printer.err(), "error: {}", check.message)?;
        }
        writeln!(
            printer.err(),
            "refusing to apply a plan with blocking checks; nothing was changed"
        )?;
        return Ok(ExitStatus::Failure);
    }

    let journal = args
        .journal
        .clone()
        .unwrap_or_else(|| session.base_dir.join(apply::DEFAULT_JOURNAL));
    let opts = ApplyOptions {
        concurrency: DEFAULT_CONCURRENCY,
        exec_concurrency: args.exec_concurrency,
        journal: Some(journal.clone()),
        start_steps_until: first_locked
            .map(|t| t + LEASE_LIFETIME.saturating_sub(STOP_STARTING_BEFORE_LEASE_ENDS)),
    };
    let report = runtime.block_on(async {
        // The session's deliverer with the fan-out bound of this run.
        let deliver: Arc<dyn Deliver> = Arc::new(Deliverer::new(
            session
                .delivery_context()
                .with_exec_concurrency(args.exec_concurrency)
                .with_operator_wait(args.operator_wait),
        ));
        // The live tokens were read under the locks: creates look for their markers there.
        let env = ApplyEnv::connect(&session.connector, &session.desired, deliver)
            .await
            .context("cannot connect to Dynatrace")?
            .with_snapshot(world.live.clone());
        // A bar on a terminal; plain, stable lines in CI and when stderr is not a terminal.
        let counted = printer.interactive();
        let bars = printer.progress_bars();
        let progress_out = printer.err();
        let mut progress: Box<dyn Progress + '_> = if bars {
            Box::new(BarProgress::new(progress_out, progress::stderr_target()))
        } else if counted {
            Box::new(PlainProgress::counted(progress_out))
        } else {
            Box::new(PlainProgress::plain(progress_out))
        };
        apply::execute(&plan, &env, &opts, progress.as_mut())
            .await
            .map_err(anyhow::Error::new)
    })?;
    // The progress printer (stderr) ends with the summary of done, failed and skipped steps;
    // a markdown apply (a PR comment) also gets the result on stdout.
    if args.format == Format::Markdown {
        render::apply_result_markdown(&report, printer.out())?;
    }
    // Shown resolved (`/repo/.tokensmith/…`, not `/elsewhere/../repo/…`) once it exists.
    let shown = std::fs::canonicalize(&journal).unwrap_or(journal);
    writeln!(printer.err(), "journal: {}", shown.display())?;
    for guard in guards {
        let (env, id) = (guard.info().environment.clone(), guard.info().id.clone());
        match guard.release() {
            Ok(()) => writeln!(printer.err(), "lock released: `{env}` (lock {id})")?,
            Err(e) => writeln!(printer.err(), "warning: could not release a lock: {e}")?,
        }
    }
    Ok(if report.has_failures() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// Refuse a plan made at `--spec-ref` whose commit this repository does not hold (a shallow CI
/// clone, another repository), instead of applying it to another version of the spec.
fn check_recorded_commit(
    plan_path: &Path,
    spec_file: &Path,
    recorded: &SpecRef,
) -> anyhow::Result<()> {
    let present = has_commit(spec_file, &recorded.commit).with_context(|| {
        format!(
            "the plan {} was made from the spec at `{}` (commit {})",
            plan_path.display(),
            recorded.reference,
            recorded.commit
        )
    })?;
    anyhow::ensure!(
        present,
        "the plan {} was made from the spec at `{}` (commit {}), and that commit is not in the repository of {}; fetch it (`git fetch origin {}`) or run `tokensmith plan --out` again",
        plan_path.display(),
        recorded.reference,
        recorded.commit,
        spec_file.display(),
        recorded.commit
    );
    Ok(())
}

fn check_commit(plan: &Plan, session: &Session) -> anyhow::Result<()> {
    match check_plan_commit(&plan.inputs, session.commit.as_ref()) {
        Ok(()) => Ok(()),
        Err(CommitMismatch::Different { planned, current }) => anyhow::bail!(
            "the plan was made from commit {planned} but the spec is at {current}; re-run `tokensmith plan --out` on this commit, or pass --allow-other-commit"
        ),
        Err(CommitMismatch::NoLongerInGit { planned }) => anyhow::bail!(
            "the plan was made from commit {planned} but the spec is not in a git repository now; pass --allow-other-commit to apply it anyway"
        ),
    }
}

/// Ask on the terminal; outside a terminal (CI) refuse and point at `--auto-approve`.
fn confirm(printer: &mut Printer) -> anyhow::Result<bool> {
    if !printer.interactive() {
        anyhow::bail!("not on a terminal, so there is nobody to confirm; re-run with --auto-approve (or apply a saved plan)");
    }
    write!(
        printer.err(),
        "\nApply these changes? Only 'yes' is accepted: "
    )?;
    printer.err().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

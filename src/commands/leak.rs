//! `tokensmith leak`: the day a token's secret is reported leaked (GitHub secret scanning,
//! Dynatrace's own mail). Reads the secret from stdin or `--secret-file` (never argv, never
//! printed), finds it in the spec's environments (`POST /api/v2/apiTokens/lookup` for API
//! tokens; ActiveGate and platform tokens by their public id), and then:
//!
//! - a managed token (its key is in the spec) is rotated now with zero grace: a successor is
//!   created and delivered to every target, and the leaked generation is revoked in the same
//!   run, right after the deliveries;
//! - an unmanaged token is disabled (after confirmation or `--auto-approve`), naming its owner.
//!
//! Every environment is locked for the run, as `apply` does. It prints what it did and exits 1
//! while the leaked token is still valid. Deciding the steps
//! is the planner's (`--replace` with zero grace); executing them is the applier's.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::session::{self, Session};
use crate::apply::{self, ApplyEnv, ApplyOptions, PlainProgress, DEFAULT_CONCURRENCY};
use crate::bounded_read::{read_capped_to_string, read_stream_to_string};
use crate::cli::settings::Connections;
use crate::cli::LeakArgs;
use crate::deliver::Deliver;
use crate::live::Connector;
use crate::lock::{LockStore, Locks};
use crate::model::{
    Home, LiveSnapshot, LiveToken, Marker, Secret, SpecDuration, TokenId, TokenKind,
};
use crate::output::{ExitStatus, Printer};
use crate::plan::{self, Action, Inputs, Plan, PlanOptions, Reason, ReplaceRequest, Step, StepId};
use crate::render;

pub fn run(
    args: LeakArgs,
    connect: &Connections,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let secret = read_secret(&args)?;
    let Some(source) = session::load_spec(&args.spec.file, None, printer)? else {
        return Ok(ExitStatus::Failure);
    };
    let session = Session::new(&args.spec.file, source, &[], &[], connect)?;
    // Like `apply`: every environment and account is locked for the whole run, locally and by
    // the lease kept in each environment.
    let runtime = session::runtime()?;
    let locks = Locks::for_spec(
        &session.spec_path,
        &LockStore::from_lock_remote(None),
        session.loaded.desired.credential_vars(),
    )
    .with_leases(session.leases(runtime.handle().clone()));
    let commit = session.commit.as_ref().map(|c| c.commit.clone());
    let mut guards = Vec::new();
    for env in session.desired.environments.keys() {
        guards.push(locks.acquire(env, commit.clone(), Duration::ZERO)?);
    }
    for account in session.desired.accounts.keys() {
        let name = crate::model::EnvName::account_lock(account);
        guards.push(locks.acquire(&name, commit.clone(), Duration::ZERO)?);
    }
    let world = runtime.block_on(session.read_world())?;
    let Some((home, token)) = runtime.block_on(find(&session, &world.live, &secret))? else {
        writeln!(
            printer.err(),
            "the leaked token is not a valid token of any environment or account of the spec; nothing to do"
        )?;
        return Ok(ExitStatus::Success);
    };
    let owner = token.owner.as_deref().unwrap_or("unknown owner");
    writeln!(
        printer.out(),
        "leaked: {} {} \"{}\" in {} (owner {owner})",
        token.kind,
        token.id,
        token.name,
        plan::home_label(&home)
    )?;
    let caller = match &home {
        Home::Environment(e) => world
            .live
            .environments
            .get(e)
            .and_then(|e| e.caller.as_ref()),
        Home::Account(_) => None,
    };
    if caller == Some(&token.id) {
        writeln!(
            printer.err(),
            "error: the leaked token is the management token tokensmith authenticates with; create a new management token, point `token_env` at it, then run `tokensmith leak` again (nothing was changed)"
        )?;
        return Ok(ExitStatus::Failure);
    }
    let managed = Marker::parse_name(&token.name).filter(|m| {
        session
            .desired
            .tokens
            .iter()
            .any(|d| d.key == m.key && d.home == home && d.kind == token.kind)
    });
    let now = session::now(&world.live);
    let (desired, plan) = match &managed {
        Some(marker) => {
            // Rotate now, with zero grace: the leaked value is revoked as soon as the successor
            // reached every target.
            let mut desired = session.desired.clone();
            for d in &mut desired.tokens {
                if d.key == marker.key && d.home == home {
                    d.policy.grace = SpecDuration::from_secs(0);
                    d.policy.verify_usage = false;
                }
            }
            let opts = PlanOptions {
                replace: vec![ReplaceRequest {
                    key: marker.key.clone(),
                    home: Some(home_name(&home)),
                }],
                ..session.plan_options(None)
            };
            let mut plan = plan::plan(&desired, &world.live, &world.targets, now, &opts)?;
            plan.steps
                .retain(|s| s.key.as_ref() == Some(&marker.key) && s.home == home);
            plan.pending
                .retain(|p| p.key == marker.key && p.home == home);
            plan.summary = plan::Summary::of(&plan.steps);
            (desired, plan)
        }
        None => {
            writeln!(
                printer.out(),
                "not managed by this spec: disabling it; tell its owner ({owner}) to replace it where it is used"
            )?;
            let plan = disable_plan(&session, &world, &home, &token, now);
            (session.desired.clone(), plan)
        }
    };
    render::render_plan(
        &plan,
        crate::render::Format::Human { color: false },
        printer.out(),
    )?;
    if !args.auto_approve && !confirm(printer)? {
        writeln!(printer.err(), "cancelled; nothing was changed")?;
        return Ok(ExitStatus::Failure);
    }
    let report = runtime.block_on(async {
        let deliver: Arc<dyn Deliver> = session.deliverer.clone();
        let env = ApplyEnv::connect(&session.connector, &desired, deliver)
            .await
            .context("cannot connect to Dynatrace")?;
        let opts = ApplyOptions {
            concurrency: DEFAULT_CONCURRENCY,
            exec_concurrency: apply::DEFAULT_EXEC_CONCURRENCY,
            journal: Some(session.base_dir.join(apply::DEFAULT_JOURNAL)),
            // A leak response is a handful of steps, taken right after the locks.
            start_steps_until: None,
        };
        let mut progress = PlainProgress::plain(printer.err());
        apply::execute(&plan, &env, &opts, &mut progress)
            .await
            .map_err(anyhow::Error::new)
    })?;
    let world = runtime.block_on(session.read_world())?;
    for guard in guards {
        if let Err(e) = guard.release() {
            writeln!(printer.err(), "warning: could not release a lock: {e}")?;
        }
    }
    let still_valid = runtime
        .block_on(find(&session, &world.live, &secret))?
        .is_some();
    if still_valid {
        writeln!(
            printer.err(),
            "error: the leaked token {} is still valid{}",
            token.id,
            if report.has_failures() {
                " (some steps failed)"
            } else {
                "; a target that cannot be read or is write-only keeps it until its consumers switch"
            }
        )?;
        return Ok(ExitStatus::Failure);
    }
    writeln!(
        printer.out(),
        "the leaked token {} is no longer valid",
        token.id
    )?;
    Ok(ExitStatus::Success)
}

/// The most read of a leaked secret: a token is far shorter, and the read stops here whatever
/// the file or stream is.
const MAX_SECRET_BYTES: u64 = 64 << 10;

/// The secret, from `--secret-file` or stdin, trimmed.
fn read_secret(args: &LeakArgs) -> anyhow::Result<Secret<String>> {
    let text = match &args.secret_file {
        // A pipe is fine (`--secret-file <(pass show …)`).
        Some(path) => read_capped_to_string(path, MAX_SECRET_BYTES)
            .with_context(|| format!("--secret-file {}", path.display()))?,
        None => read_stream_to_string(std::io::stdin().lock(), MAX_SECRET_BYTES)
            .context("cannot read the leaked secret from stdin")?,
    };
    let value = text.trim().to_owned();
    if value.is_empty() {
        anyhow::bail!("no secret given: pipe it to stdin or pass --secret-file");
    }
    Ok(Secret::new(value))
}

/// The token the secret belongs to, when it is still valid: API tokens by lookup in every
/// environment; ActiveGate and platform tokens by their public id (`dt0g02.X`, `dt0s16.X`).
async fn find(
    session: &Session,
    live: &LiveSnapshot,
    secret: &Secret<String>,
) -> anyhow::Result<Option<(Home, LiveToken)>> {
    let value = secret.expose();
    let public = value.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
    if value.starts_with("dt0c01.") {
        for env in session.desired.environments.values() {
            let client = session
                .connector
                .environment(env)
                .await
                .with_context(|| format!("environment `{}`", env.name))?;
            let found = client
                .lookup(secret)
                .await
                .with_context(|| format!("cannot look up the token in `{}`", env.name))?;
            if let Some(t) = found.filter(|t| t.enabled) {
                // The lookup answers metadata; the listing has the name and kind the planner uses.
                let listed = live
                    .environments
                    .get(&env.name)
                    .and_then(|e| e.api_tokens.iter().find(|l| l.id == t.id).cloned())
                    .unwrap_or(t);
                return Ok(Some((Home::Environment(env.name.clone()), listed)));
            }
        }
        return Ok(None);
    }
    let id = TokenId::new(public);
    for (name, env) in &live.environments {
        if let Some(t) = env.activegate_tokens.iter().find(|t| t.id == id) {
            return Ok(Some((Home::Environment(name.clone()), t.clone())));
        }
    }
    for (name, account) in &live.accounts {
        if let Some(t) = account
            .platform_tokens
            .iter()
            .find(|t| t.id == id && t.enabled)
        {
            return Ok(Some((Home::Account(name.clone()), t.clone())));
        }
    }
    Ok(None)
}

fn home_name(home: &Home) -> String {
    match home {
        Home::Environment(e) => e.to_string(),
        Home::Account(a) => a.to_string(),
    }
}

/// One step: disable the unmanaged leaked token (delete an ActiveGate token, which cannot be
/// disabled).
fn disable_plan(
    session: &Session,
    world: &session::World,
    home: &Home,
    token: &LiveToken,
    now: time::OffsetDateTime,
) -> Plan {
    let action = if token.kind == TokenKind::ActivegateToken {
        Action::Delete {
            token: token.id.clone(),
            name: token.name.clone(),
        }
    } else {
        Action::Disable {
            token: token.id.clone(),
            name: token.name.clone(),
            rename: None,
        }
    };
    let steps = vec![Step {
        id: StepId(format!(
            "{}/{}/leak/{}",
            plan::home_label(home),
            token.kind,
            token.id
        )),
        depends_on: Vec::new(),
        home: home.clone(),
        kind: token.kind,
        key: None,
        reason: Reason::Leaked,
        action,
        note: Some("its secret was reported leaked".to_owned()),
    }];
    let opts = session.plan_options(None);
    Plan {
        format_version: plan::FORMAT_VERSION,
        generated_at: now,
        inputs: Inputs::compute(
            &opts.spec_hash,
            &world.live,
            &world.targets,
            opts.spec_commit.clone(),
            opts.dirty,
        ),
        summary: plan::Summary::of(&steps),
        steps,
        forecast: Vec::new(),
        pending: Vec::new(),
        warnings: Vec::new(),
        checks: Vec::new(),
        tenant_rotations: Vec::new(),
    }
}

fn confirm(printer: &mut Printer) -> anyhow::Result<bool> {
    if !printer.interactive() {
        anyhow::bail!(
            "not on a terminal, so there is nobody to confirm; re-run with --auto-approve"
        );
    }
    write!(
        printer.err(),
        "\nApply these changes? Only 'yes' is accepted: "
    )?;
    printer.err().flush()?;
    let mut answer = String::new();
    std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut answer)?;
    Ok(answer.trim() == "yes")
}

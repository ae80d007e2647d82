//! `tokensmith sandbox clock advance|show` and `tokensmith sandbox seed FILE`: look after the
//! embedded sandbox of a spec (`sandbox://NAME`, state in `.tokensmith/sandbox/NAME.json` next to
//! the spec) without serving it, so a demo can bring a rotation due and the next `plan` sees it.
//!
//! Picks the sandbox (the spec's only one, or `--name`), then calls the sandbox's own code: the
//! clock moves through [`crate::sandbox::Sandbox::advance_clock`] (what `POST
//! /__sandbox/clock/advance` calls) on the persisted state, and a seed is built by
//! [`crate::sandbox::embedded::reseed`]. Serving is `commands::sandbox`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::session;
use crate::bounded_read::read_regular_to_string;
use crate::cli::settings::EmbeddedSandboxArgs;
use crate::model::{Endpoint, SpecDuration};
use crate::output::{ExitStatus, Printer};
use crate::sandbox::clock::{real_now, Millis};
use crate::sandbox::{embedded, persist, Seed, MAX_SEED_BYTES};

/// The embedded sandbox a command works on.
struct Picked {
    name: String,
    /// `.tokensmith/sandbox` next to the spec.
    state_dir: PathBuf,
}

/// `sandbox clock advance DURATION`.
pub fn advance(
    args: &EmbeddedSandboxArgs,
    by: SpecDuration,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let Some(picked) = pick(args, printer)? else {
        return Ok(ExitStatus::Failure);
    };
    let (sandbox, state_file) = embedded::open(&picked.name, &picked.state_dir)?;
    sandbox
        .advance_clock(by.to_time())
        .with_context(|| format!("cannot save the sandbox state {}", state_file.display()))?;
    let out = printer.out();
    writeln!(
        out,
        "sandbox://{}: clock advanced by {by}; sandbox time is now {}",
        picked.name,
        sandbox.now_millis().iso_millis()
    )?;
    writeln!(out, "state: {}", state_file.display())?;
    Ok(ExitStatus::Success)
}

/// `sandbox clock show`.
pub fn show(args: &EmbeddedSandboxArgs, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let Some(picked) = pick(args, printer)? else {
        return Ok(ExitStatus::Failure);
    };
    let state_file = embedded::state_file(&picked.name, &picked.state_dir)?;
    let out = printer.out();
    if !state_file.exists() {
        writeln!(
            out,
            "sandbox://{}: not started yet (no state file {}); its clock starts at this machine's time when a command first uses it",
            picked.name,
            state_file.display()
        )?;
        return Ok(ExitStatus::Success);
    }
    let now = persist::load(&state_file)?.now();
    writeln!(
        out,
        "sandbox://{}: sandbox time {} ({})",
        picked.name,
        now.iso_millis(),
        against_this_machine(now)
    )?;
    writeln!(out, "state: {}", state_file.display())?;
    Ok(ExitStatus::Success)
}

/// `sandbox seed FILE`.
pub fn seed(
    args: &EmbeddedSandboxArgs,
    file: &Path,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let Some(picked) = pick(args, printer)? else {
        return Ok(ExitStatus::Failure);
    };
    let text = read_regular_to_string(file, MAX_SEED_BYTES)
        .with_context(|| format!("cannot read the seed file {}", file.display()))?;
    let seed = Seed::from_yaml(&text).with_context(|| format!("in {}", file.display()))?;
    let (state, state_file) = embedded::reseed(&picked.name, &picked.state_dir, &seed)
        .with_context(|| format!("in {}", file.display()))?;
    let tokens: usize = state
        .environments
        .values()
        .map(|e| e.api_tokens.len() + e.activegate_tokens.len())
        .sum();
    let out = printer.out();
    writeln!(
        out,
        "sandbox://{}: state replaced with the seed {} ({} environment(s), {tokens} token(s) with the sandbox's own management token); sandbox time {}",
        picked.name,
        file.display(),
        state.environments.len(),
        state.now().iso_millis()
    )?;
    writeln!(out, "state: {}", state_file.display())?;
    Ok(ExitStatus::Success)
}

/// The sandbox `--name` names, or the spec's only one. `Ok(None)` when the spec has errors
/// (already printed).
fn pick(args: &EmbeddedSandboxArgs, printer: &mut Printer) -> anyhow::Result<Option<Picked>> {
    let spec_path = &args.spec.file;
    let Some(source) = session::load_spec(spec_path, None, printer)? else {
        return Ok(None);
    };
    let desired = &source.loaded.desired;
    let mut names: Vec<String> = desired
        .environments
        .values()
        .filter_map(|e| match &e.endpoint {
            Endpoint::Sandbox { name } => Some(name.clone()),
            Endpoint::Url { .. } => None,
        })
        .chain(desired.accounts.values().flat_map(|a| {
            [&a.api_base, &a.token_url]
                .into_iter()
                .filter_map(|u| u.strip_prefix("sandbox://"))
                .map(|n| n.trim_end_matches('/').to_owned())
        }))
        .collect();
    names.sort();
    names.dedup();
    let listed = || {
        names
            .iter()
            .map(|n| format!("sandbox://{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name = match (&args.name, names.as_slice()) {
        (_, []) => anyhow::bail!(
            "{} has no `sandbox://` environment; these commands work on a spec's embedded sandbox (a served `tokensmith sandbox` has `POST /__sandbox/clock/advance` and `POST /__sandbox/reset`)",
            spec_path.display()
        ),
        (Some(name), _) if names.contains(name) => name.clone(),
        (Some(name), _) => anyhow::bail!(
            "--name {name}: {} has no sandbox://{name}; it has {}",
            spec_path.display(),
            listed()
        ),
        (None, [only]) => only.clone(),
        (None, _) => anyhow::bail!(
            "{} has several embedded sandboxes ({}); pick one with --name",
            spec_path.display(),
            listed()
        ),
    };
    Ok(Some(Picked {
        name,
        state_dir: session::sandbox_state_dir(&session::spec_dir(spec_path)),
    }))
}

/// How far the sandbox clock is from this machine's, to the minute (`30d 0h`, `36h 0m`, `5m`).
fn against_this_machine(now: Millis) -> String {
    let ahead_ms = now.0 - real_now().0;
    let minutes = (ahead_ms as f64 / 60_000.0).round() as i64;
    let (days, hours, mins) = (
        minutes.abs() / 1440,
        minutes.abs() % 1440 / 60,
        minutes.abs() % 60,
    );
    let by = match (days, hours) {
        (0, 0) => format!("{mins}m"),
        (0, _) => format!("{hours}h {mins}m"),
        _ => format!("{days}d {hours}h"),
    };
    match minutes {
        0 => "the same as this machine's clock".to_owned(),
        m if m > 0 => format!("{by} ahead of this machine's clock"),
        _ => format!("{by} behind this machine's clock"),
    }
}

//! `tokensmith sandbox` (or `sandbox serve`): serve the Dynatrace emulator over HTTP until Ctrl-C.
//! The subcommands that look after a spec's embedded sandbox (`clock`, `seed`) are in
//! `sandbox_admin`; [`run`] only dispatches to them.
//!
//! Reads the seed (`--seed`, or the built-in copy of `examples/sandbox/seed.yaml`), or a saved
//! state (`--state FILE` when the file exists; every change is saved back to it), binds
//! `--listen`, and prints the URLs and the management token ids. Secrets are printed only when
//! they came from the seed file (the user wrote them, or they are the published demo values), and
//! the output says so; generated secrets are never printed.

use std::net::SocketAddr;

use anyhow::Context;

use super::sandbox_admin;
use crate::bounded_read::read_regular_to_string;
use crate::cli::settings::{listen_hint, SandboxServeSettings, SandboxSettings};
use crate::output::{ExitStatus, Printer};
use crate::sandbox::{persist, serve, Sandbox, Seed, MAX_SEED_BYTES};

const BUILT_IN_SEED: &str = include_str!("../../examples/sandbox/seed.yaml");

pub fn run(args: &SandboxSettings, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    match args {
        SandboxSettings::Serve(args) => serve_until_stopped(args, printer),
        SandboxSettings::ClockAdvance { sandbox, by } => {
            sandbox_admin::advance(sandbox, *by, printer)
        }
        SandboxSettings::ClockShow { sandbox } => sandbox_admin::show(sandbox, printer),
        SandboxSettings::Seed { sandbox, file } => sandbox_admin::seed(sandbox, file, printer),
    }
}

fn serve_until_stopped(
    args: &SandboxServeSettings,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let (seed_text, seed_name) = match &args.seed {
        Some(path) => (
            read_regular_to_string(path, MAX_SEED_BYTES)
                .with_context(|| format!("cannot read the seed file {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            BUILT_IN_SEED.to_owned(),
            "examples/sandbox/seed.yaml (built in)".to_owned(),
        ),
    };
    let seed = Seed::from_yaml(&seed_text).with_context(|| format!("in {seed_name}"))?;
    let (state, from_state) = match &args.state {
        Some(path) if path.exists() => (persist::load(path)?, true),
        _ => (
            seed.build().with_context(|| format!("in {seed_name}"))?,
            false,
        ),
    };
    let sandbox = match &args.state {
        Some(path) => {
            persist::save(path, &state)?;
            Sandbox::persisted(state, path.clone())
        }
        None => Sandbox::new(state),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen.addrs[..])
            .await
            .with_context(|| listen_hint(&args.listen.text))?;
        let addr = listener.local_addr()?;
        banner(printer, addr, &sandbox, &seed, &seed_name, from_state)?;
        tokio::select! {
            served = serve(listener, sandbox) => served.context("the sandbox server stopped")?,
            _ = tokio::signal::ctrl_c() => {
                writeln!(printer.err(), "sandbox stopped")?;
            }
        }
        Ok(ExitStatus::Success)
    })
}

fn banner(
    printer: &mut Printer,
    addr: SocketAddr,
    sandbox: &Sandbox,
    seed: &Seed,
    seed_name: &str,
    from_state: bool,
) -> anyhow::Result<()> {
    let state = sandbox.snapshot();
    let out = printer.out();
    writeln!(
        out,
        "tokensmith sandbox: a Dynatrace emulator, listening on http://{addr}"
    )?;
    if !addr.ip().is_loopback() {
        writeln!(out, "warning: {addr} is not a loopback address; anyone who can reach it can use the sandbox")?;
    }
    writeln!(out, "sandbox time: {}", state.now().iso_millis())?;
    writeln!(out)?;
    for (id, env) in &state.environments {
        let default = state.default_environment.as_deref() == Some(id.as_str());
        if default {
            writeln!(
                out,
                "environment {id} (default): http://{addr}  (also http://{addr}/e/{id})"
            )?;
        } else {
            writeln!(
                out,
                "environment {id}: http://{addr}/e/{id}  (or Host: {id}.localhost)"
            )?;
        }
        for (sid, id2, secret) in seed.known_api_tokens() {
            if sid != *id {
                continue;
            }
            let Some(token) = env.api_tokens.get(&id2) else {
                continue;
            };
            if token.secret_sha256 != crate::sandbox::mint::fingerprint(&secret) {
                continue;
            }
            writeln!(
                out,
                "  token {id2} \"{}\" scopes: {}",
                token.name,
                token.scopes.join(", ")
            )?;
            // The secret came from the seed file the user reads anyway; echoing it is no leak.
            writeln!(
                out,
                "    export DT_API_TOKEN='{secret}'   # from the seed file {seed_name}"
            )?;
        }
    }
    for uuid in state.accounts.keys() {
        writeln!(out)?;
        writeln!(
            out,
            "account {uuid}: account API http://{addr}, token URL http://{addr}/sso/oauth2/token"
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "admin endpoints (not part of Dynatrace): http://{addr}/__sandbox"
    )?;
    if from_state {
        writeln!(
            out,
            "state loaded from the state file; changes are saved back to it"
        )?;
    }
    writeln!(out, "press Ctrl-C to stop")?;
    out.flush()?;
    Ok(())
}

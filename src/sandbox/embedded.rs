//! The embedded sandbox behind `sandbox://NAME` environments: an emulator started inside the
//! tokensmith process, with its state in `<state_dir>/<NAME>.json`.
//!
//! Owns: the state file's name, loading or creating that state (a fresh one gets [`seed::demo_state`]: one environment
//! named NAME with a management token holding every token-management scope and a tenant token,
//! plus one account with an OAuth client), serving it on `127.0.0.1:0` in the current tokio
//! runtime, and handing the in-process client its URLs and credentials. Every change is saved
//! atomically before it is answered, so `plan` in one process and `apply` in the next see the
//! same world. [`open`] and [`reseed`] reach the same state without serving it (the CLI's
//! `sandbox clock` and `sandbox seed`). Two processes serving the same state file at the same time are not supported.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tokio::sync::oneshot;

use super::state::{DemoCredentials, State};
use super::{persist, seed, server, Sandbox, Seed};
use crate::model::Secret;

/// A running in-process sandbox. The server stops when this value is dropped (gracefully: it
/// stops accepting and closes idle keep-alive connections, so no stale server keeps answering).
pub struct EmbeddedSandbox {
    sandbox: Sandbox,
    addr: SocketAddr,
    demo: DemoCredentials,
    state_file: PathBuf,
    /// Dropping (or firing) this stops the server: no new connections, idle ones closed.
    stop: Option<oneshot::Sender<()>>,
}

impl EmbeddedSandbox {
    /// Load or create `state_dir/<name>.json` and serve it on loopback. Must be called from
    /// within a tokio runtime (it spawns the server on it).
    pub fn start(name: &str, state_dir: &Path) -> anyhow::Result<EmbeddedSandbox> {
        let (sandbox, state_file) = open(name, state_dir)?;
        let demo = sandbox.demo_credentials().with_context(|| {
            format!(
                "the sandbox state {} has no demo credentials",
                state_file.display()
            )
        })?;
        let std_listener =
            std::net::TcpListener::bind(("127.0.0.1", 0)).context("cannot listen on 127.0.0.1")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .context("the embedded sandbox must be started inside a tokio runtime")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        tokio::spawn(server::serve_until(listener, sandbox.clone(), shutdown));
        Ok(EmbeddedSandbox {
            sandbox,
            addr,
            demo,
            state_file,
            stop: Some(stop),
        })
    }

    /// The environment API base (`http://127.0.0.1:PORT`); append `/api/v2/...`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The management token of the sandbox environment (all token-management scopes).
    pub fn management_token(&self) -> Secret<String> {
        Secret::new(self.demo.management_token.clone())
    }

    /// The Account Management API base (`http://127.0.0.1:PORT`); append `/iam/v1/...`.
    pub fn account_api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The OAuth token endpoint for the client-credentials grant.
    pub fn token_url(&self) -> String {
        format!("http://{}/sso/oauth2/token", self.addr)
    }

    /// The UUID of the demo account (platform tokens live there).
    pub fn account_uuid(&self) -> String {
        self.demo.account_uuid.clone()
    }

    /// The demo account's OAuth client id (`dt0s02.…`).
    pub fn client_id(&self) -> String {
        self.demo.client_id.clone()
    }

    /// The demo account's OAuth client secret.
    pub fn client_secret(&self) -> Secret<String> {
        Secret::new(self.demo.client_secret.clone())
    }

    /// The environment id (the sandbox name).
    pub fn environment_id(&self) -> String {
        self.demo.environment.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state_file(&self) -> &Path {
        &self.state_file
    }

    /// The handle on the running sandbox (clock, faults, request log).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }
}

/// The state file of `sandbox://NAME` under `state_dir` (`<state_dir>/<NAME>.json`), after
/// checking the name.
pub fn state_file(name: &str, state_dir: &Path) -> anyhow::Result<PathBuf> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        bail!("sandbox name `{name}` must use letters, digits and `-` only (as in sandbox://demo)");
    }
    Ok(state_dir.join(format!("{name}.json")))
}

/// The sandbox behind `sandbox://NAME`, not served: its state file loaded, or a fresh demo state
/// created and saved. Every change made through the returned handle (the clock, for
/// `tokensmith sandbox clock advance`) is saved to the file, which the next serving process
/// reads. Refuses a state without the embedded sandbox's own credentials.
pub fn open(name: &str, state_dir: &Path) -> anyhow::Result<(Sandbox, PathBuf)> {
    let state_file = state_file(name, state_dir)?;
    let state = if state_file.exists() {
        persist::load(&state_file)?
    } else {
        let state = seed::demo_state(name)?;
        persist::save(&state_file, &state)?;
        state
    };
    if state.demo.is_none() {
        bail!(
            "the sandbox state {} has no demo credentials (it was not created by an embedded sandbox); delete it to start afresh",
            state_file.display()
        );
    }
    Ok((Sandbox::persisted(state, state_file.clone()), state_file))
}

/// Replace the state of `sandbox://NAME` with the world `seed` declares, plus the embedded
/// sandbox's own management token and account ([`seed::add_demo_credentials`]). The seed must
/// declare an environment with the id NAME. Nothing is written when the seed is refused.
pub fn reseed(name: &str, state_dir: &Path, seed: &Seed) -> anyhow::Result<(State, PathBuf)> {
    let state_file = state_file(name, state_dir)?;
    if !seed.environments.contains_key(name) {
        let known: Vec<&str> = seed.environments.keys().map(String::as_str).collect();
        bail!(
            "the seed declares no environment `{name}` for sandbox://{name} (it declares {}); add `environments: {{ {name}: {{ … }} }}`",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    }
    let mut state = seed.build()?;
    seed::add_demo_credentials(&mut state, name)?;
    persist::save(&state_file, &state)?;
    Ok((state, state_file))
}

impl Drop for EmbeddedSandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

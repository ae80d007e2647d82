//! What `plan`, `apply`, `drift` and `inventory` share: load the spec (printing its
//! diagnostics), connect to every environment (starting embedded sandboxes for `sandbox://`
//! URLs), read the live snapshot and the targets, and pick the clock.
//!
//! Each subcommand is then a few lines over a [`Session`] and a [`World`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use futures::FutureExt;
use time::OffsetDateTime;

use crate::deliver::{Deliverer, DeliveryContext};
use crate::git::at_ref::{load_at_ref, AtRefError};
use crate::git::repo::{spec_commit, SpecCommit};
use crate::live::{
    read_snapshot, ClientSettings, Connector, DefaultConnector, SandboxEndpoint, SandboxResolver,
};
use crate::model::{
    Desired, EnvName, Environment, Home, LiveSnapshot, Secret, SpecDuration, Target, TargetSnapshot,
};
use crate::output::Printer;
use crate::plan::PlanOptions;
use crate::sandbox::embedded::EmbeddedSandbox;
use crate::spec::{self, LoadedSpec};

/// How many environments are read at once.
pub const ENVIRONMENT_CONCURRENCY: usize = 8;

/// A loaded spec and the means to reach what it names.
pub struct Session {
    pub spec_path: PathBuf,
    /// The spec's directory: relative file targets and `.tokensmith/` live here.
    pub base_dir: PathBuf,
    pub loaded: LoadedSpec,
    pub commit: Option<SpecCommit>,
    /// The desired state restricted to the `--env` selection.
    pub desired: Desired,
    pub connector: DefaultConnector,
    pub deliverer: Arc<Deliverer>,
}

/// Everything read from outside: the planner's inputs.
pub struct World {
    pub live: LiveSnapshot,
    pub targets: TargetSnapshot,
    pub warnings: Vec<String>,
    pub api_calls: u64,
}

/// A spec as loaded for a command: from the working tree, or from git at `--spec-ref`.
pub struct SpecSource {
    pub loaded: LoadedSpec,
    /// The commit the spec is at and whether the working tree differs from it; `None` outside
    /// git.
    pub commit: Option<SpecCommit>,
}

/// Load and validate the spec (at `spec_ref` when given), printing warnings; `Ok(None)` when it
/// has errors (already printed, exit 1).
pub fn load_spec(
    path: &Path,
    spec_ref: Option<&str>,
    printer: &mut Printer,
) -> anyhow::Result<Option<SpecSource>> {
    let color = printer.color();
    let (result, commit) = match spec_ref {
        Some(reference) => match load_at_ref(path, reference) {
            Ok(at) => (Ok(at.spec), Some(at.commit)),
            Err(AtRefError::Spec { diagnostics, .. }) => (Err(diagnostics), None),
            Err(AtRefError::Git(e)) => {
                return Err(anyhow::Error::new(e).context(format!("--spec-ref {reference}")))
            }
        },
        None => (spec::load(path), None),
    };
    match result {
        Ok(loaded) => {
            if !loaded.warnings.is_empty() {
                loaded.warnings().render(printer.err(), color)?;
            }
            let commit = match commit {
                Some(c) => Some(c),
                // Outside git, or git unreadable: the plan simply records no commit.
                None => spec_commit(path).ok().flatten(),
            };
            Ok(Some(SpecSource { loaded, commit }))
        }
        Err(diagnostics) => {
            diagnostics.render(printer.err(), color)?;
            Ok(None)
        }
    }
}

impl Session {
    /// A session over a loaded spec; `envs` restricts it to some environments (empty = all).
    /// `client` says how every Dynatrace and account client connects, times out and retries.
    pub fn new(
        spec_path: &Path,
        source: SpecSource,
        envs: &[String],
        client: &ClientSettings,
    ) -> anyhow::Result<Session> {
        let base_dir = spec_dir(spec_path);
        let desired = select(&source.loaded.desired, envs)?;
        let sandboxes = sandbox_resolver(base_dir.join(".tokensmith").join("sandbox"));
        let connector = DefaultConnector::new(client)?.with_sandbox_resolver(sandboxes);
        let deliverer = Arc::new(Deliverer::new(DeliveryContext::new(base_dir.clone())));
        Ok(Session {
            spec_path: spec_path.to_path_buf(),
            base_dir,
            loaded: source.loaded,
            commit: source.commit,
            desired,
            connector,
            deliverer,
        })
    }

    /// The plan options that record where the spec came from.
    pub fn plan_options(&self, fail_on_expiry_within: Option<SpecDuration>) -> PlanOptions {
        PlanOptions {
            spec_hash: self.loaded.source_hash.clone(),
            spec_commit: self.commit.as_ref().map(|c| c.commit.clone()),
            dirty: self.commit.as_ref().is_some_and(|c| c.dirty),
            fail_on_expiry_within,
            replace: Vec::new(),
        }
    }

    /// An environment's API base URL and management token, for calls outside the token APIs
    /// (metrics ingest): the connector's lookup, so `token_env` wins for a sandbox here too.
    pub async fn endpoint(&self, env: &Environment) -> anyhow::Result<(String, Secret<String>)> {
        Ok(self.connector.management_endpoint(env).await?)
    }

    /// Read live Dynatrace and every target of the selected environments.
    pub async fn read_world(&self) -> anyhow::Result<World> {
        let envs: Vec<EnvName> = self.desired.environments.keys().cloned().collect();
        let read = read_snapshot(
            &self.desired,
            &envs,
            &self.connector,
            ENVIRONMENT_CONCURRENCY,
        )
        .await
        .context("cannot read live Dynatrace")?;
        let targets = self.deliverer.read_all(&all_targets(&self.desired)).await;
        Ok(World {
            live: read.snapshot,
            targets,
            warnings: read.warnings,
            api_calls: self.connector.api_calls(),
        })
    }

    /// The `.tokensmith/` directory next to the spec.
    pub fn state_dir(&self) -> PathBuf {
        self.base_dir.join(".tokensmith")
    }
}

/// The clock to plan with: the latest server time any environment reported (so a sandbox whose
/// clock was advanced is planned against its own time), else this machine's.
pub fn now(live: &LiveSnapshot) -> OffsetDateTime {
    live.environments
        .values()
        .filter_map(|e| e.server_time)
        .max()
        .unwrap_or_else(OffsetDateTime::now_utc)
}

/// Every delivery target the desired state names, in a stable order.
pub fn all_targets(desired: &Desired) -> Vec<Target> {
    let mut targets: Vec<Target> = desired
        .tokens
        .iter()
        .flat_map(|t| t.deliver.iter().cloned())
        .chain(
            desired
                .tenant_tokens
                .iter()
                .flat_map(|t| t.activegates.iter().chain(&t.oneagents).cloned()),
        )
        .collect();
    targets.sort();
    targets.dedup();
    targets
}

/// The desired state restricted to `envs` (empty = everything). Account-level platform tokens
/// are kept only when no environment filter is given: they belong to no environment.
pub fn select(desired: &Desired, envs: &[String]) -> anyhow::Result<Desired> {
    if envs.is_empty() {
        return Ok(desired.clone());
    }
    for name in envs {
        if !desired
            .environments
            .contains_key(&EnvName::new(name.as_str()))
        {
            let known: Vec<&str> = desired.environments.keys().map(|k| k.as_str()).collect();
            anyhow::bail!(
                "--env {name}: the spec declares no such environment; it declares {}",
                known.join(", ")
            );
        }
    }
    let keep = |e: &EnvName| envs.iter().any(|n| n == e.as_str());
    let mut out = desired.clone();
    out.environments.retain(|name, _| keep(name));
    out.tokens.retain(|t| match &t.home {
        Home::Environment(e) => keep(e),
        Home::Account(_) => false,
    });
    out.tenant_tokens.retain(|t| keep(&t.environment));
    out.accounts.clear();
    Ok(out)
}

/// The directory of the spec file (`.` for a bare file name).
pub fn spec_dir(spec_path: &Path) -> PathBuf {
    match spec_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Starts each `sandbox://NAME` once per process, with its state under `state_dir`.
fn sandbox_resolver(state_dir: PathBuf) -> SandboxResolver {
    let running: Arc<Mutex<HashMap<String, Arc<EmbeddedSandbox>>>> = Arc::default();
    Arc::new(move |name: &str| {
        let name = name.to_owned();
        let state_dir = state_dir.clone();
        let running = running.clone();
        async move {
            let sandbox = {
                let mut map = running.lock().unwrap_or_else(|e| e.into_inner());
                match map.get(&name) {
                    Some(s) => s.clone(),
                    None => {
                        let started = Arc::new(EmbeddedSandbox::start(&name, &state_dir)?);
                        map.insert(name.clone(), started.clone());
                        started
                    }
                }
            };
            Ok(SandboxEndpoint {
                base_url: sandbox.base_url(),
                management_token: sandbox.management_token(),
                account_api_base: sandbox.account_api_base(),
                token_url: sandbox.token_url(),
                oauth_client: Some((sandbox.client_id(), sandbox.client_secret())),
            })
        }
        .boxed()
    })
}

/// A tokio runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

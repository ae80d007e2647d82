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

use crate::cli::settings::Connections;
use crate::deliver::{Deliverer, DeliveryContext, KubeSettings, PreflightFailure};
use crate::git::at_ref::{load_at_ref, AtRefError};
use crate::git::repo::{spec_commit, SpecCommit};
use crate::live::{
    read_snapshot_reporting, Connector, DefaultConnector, LiveError, SandboxEndpoint,
    SandboxResolver, Subject,
};
use crate::lock::lease::{AccountBoard, EnvironmentBoard, LeaseBoard, LeaseConnect};
use crate::lock::Leases;
use crate::model::{
    Desired, EnvName, Environment, Home, LiveSnapshot, Secret, SpecDuration, Target,
    TargetSnapshot, TokenDetails,
};
use crate::output::Printer;
use crate::plan::{Check, Plan, PlanOptions, Reason, Warning};
use crate::render::progress::{self, ReadBar};
use crate::sandbox::embedded::EmbeddedSandbox;
use crate::spec::{self, LoadedSpec};

/// How many environments and accounts are read at once: every environment of a large fleet
/// together. What a server sees is capped per host by the client's transport
/// (`ClientSettings::max_in_flight_per_host`); this bound only keeps the open connections and the
/// pages in flight of a very large spec in proportion.
pub const ENVIRONMENT_CONCURRENCY: usize = 128;

/// A loaded spec and the means to reach what it names.
pub struct Session {
    pub spec_path: PathBuf,
    /// The spec's directory: relative file targets and `.tokensmith/` live here.
    pub base_dir: PathBuf,
    pub loaded: LoadedSpec,
    pub commit: Option<SpecCommit>,
    /// The desired state restricted to the `--env` and `--account` selection.
    pub desired: Desired,
    pub connector: DefaultConnector,
    pub deliverer: Arc<Deliverer>,
    /// Which `read_command`s reading the targets may run.
    pub commands: CommandTrust,
}

/// The delivery context for a spec at `spec_path`: relative targets under `base_dir`, the spec
/// file itself out of every file target's reach, the spec's credentials (`desired` is the
/// whole spec) hidden from the programs a kubeconfig starts, and the run's Kubernetes settings.
fn delivery_context(
    base_dir: &Path,
    spec_path: &Path,
    desired: &Desired,
    kube: &KubeSettings,
) -> DeliveryContext {
    DeliveryContext::with_kube(base_dir, kube.clone())
        .with_spec_file(spec_path)
        .with_hidden_env(desired.credential_vars())
}

/// Which spec commands (`read_command`s) reading the targets may run. A spec can come from a
/// pull request while this process holds production management tokens, so `plan --base REF`
/// runs only commands the spec at REF already had, and `--no-exec` runs none. A target whose
/// command is not run is read as write-only.
#[derive(Debug, Clone, Default)]
pub enum CommandTrust {
    #[default]
    All,
    /// `--no-exec`.
    None,
    /// `plan --base REF`: exec targets identical (command, read command, `env:`) to one in the
    /// spec at `reference`, whose read command names no file of the repository that is new or
    /// changed against it (`changed`: the target and the first such file). An unchanged line
    /// that runs `./reader.sh` is not trusted when the pull request rewrote `reader.sh`. Only
    /// files named as whole arguments are compared: what a script reads or sources by itself is
    /// not followed (`--no-exec` runs nothing).
    Unchanged {
        reference: String,
        trusted: std::collections::BTreeSet<Target>,
        changed: std::collections::BTreeMap<Target, String>,
    },
}

impl CommandTrust {
    /// Why `target`'s read command is not run, or `None` when it may run (or has none).
    pub fn refusal(&self, target: &Target) -> Option<String> {
        let Target::Exec(e) = target else { return None };
        e.read_command.as_ref().filter(|c| !c.is_empty())?;
        match self {
            CommandTrust::All => None,
            CommandTrust::None => Some(format!(
                "target `{}`: its read_command was not run (--no-exec); treated as write-only",
                target.address()
            )),
            CommandTrust::Unchanged {
                reference,
                changed,
                ..
            } if changed.contains_key(target) => Some(format!(
                "target `{}`: its read_command runs `{}`, which is new or changed against `{reference}`; it was not run; treated as write-only",
                target.address(),
                changed[target]
            )),
            CommandTrust::Unchanged {
                reference, trusted, ..
            } => (!trusted.contains(target)).then(|| {
                format!(
                    "target `{}`: its read_command is new or changed against `{reference}` and was not run; treated as write-only",
                    target.address()
                )
            }),
        }
    }
}

/// The trusted exec targets whose read command names a file of the spec's repository that is
/// new or changed against `reference`, with that file as the argument names it. An argument
/// names a file when, taken as a path from the spec's directory (where commands run), something
/// is there; options (`-x`, `--flag=…`) are skipped.
fn changed_files_run(
    spec_path: &Path,
    base_dir: &Path,
    reference: &str,
    trusted: &std::collections::BTreeSet<Target>,
) -> anyhow::Result<std::collections::BTreeMap<Target, String>> {
    /// Far above any script; a larger file is taken as changed rather than read.
    const MAX_SCRIPT_BYTES: u64 = 64 << 20;
    let mut changed = std::collections::BTreeMap::new();
    let (repo, _) = crate::git::repo::discover(spec_path)?;
    let base = base_dir.canonicalize()?;
    for target in trusted {
        let Target::Exec(e) = target else { continue };
        let Some(argv) = e.read_command.as_ref() else {
            continue;
        };
        for arg in argv.iter().filter(|a| !a.is_empty() && !a.starts_with('-')) {
            let path = crate::paths::lexically_normal(&base.join(arg));
            if crate::git::repo::file_changed_since(&repo, reference, &path, MAX_SCRIPT_BYTES)? {
                changed.insert(target.clone(), arg.clone());
                break;
            }
        }
    }
    Ok(changed)
}

/// Everything read from outside: the planner's inputs.
pub struct World {
    pub live: LiveSnapshot,
    pub targets: TargetSnapshot,
    pub warnings: Vec<String>,
    /// Targets whose read command was not run ([`CommandTrust`]), with why.
    pub commands_not_run: Vec<String>,
    pub api_calls: u64,
    /// Plan-time checks of the Kubernetes targets ([`fn@crate::deliver::kube::preflight`]).
    pub preflight: Vec<PreflightFailure>,
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
    /// A session over a loaded spec; `envs` restricts it to some environments and `accounts` to
    /// some accounts (empty = all). `connect` says how every Dynatrace and account client
    /// connects, times out and retries, and where Kubernetes configuration comes from.
    pub fn new(
        spec_path: &Path,
        source: SpecSource,
        envs: &[String],
        accounts: &[String],
        connect: &Connections,
    ) -> anyhow::Result<Session> {
        let base_dir = spec_dir(spec_path);
        let desired = select(&source.loaded.desired, envs, accounts)?;
        let sandboxes = sandbox_resolver(sandbox_state_dir(&base_dir));
        let connector = DefaultConnector::new(&connect.dynatrace)?.with_sandbox_resolver(sandboxes);
        let deliverer = Arc::new(Deliverer::new(delivery_context(
            &base_dir,
            spec_path,
            &source.loaded.desired,
            &connect.kubernetes,
        )));
        Ok(Session {
            spec_path: spec_path.to_path_buf(),
            base_dir,
            loaded: source.loaded,
            commit: source.commit,
            desired,
            connector,
            deliverer,
            commands: CommandTrust::All,
        })
    }

    /// A delivery context like the one the session reads targets with (relative targets under
    /// the spec's directory, the spec file out of reach, the spec's credentials hidden from a
    /// kubeconfig's programs), sharing its Kubernetes connections and file locks: an apply
    /// builds its deliverer from one, with its own fan-out bounds.
    pub fn delivery_context(&self) -> DeliveryContext {
        self.deliverer.context().sibling()
    }

    /// Trust no spec command (`--no-exec`), or only those unchanged since `base` (`--base`).
    pub fn restrict_commands(&mut self, no_exec: bool, base: Option<&str>) -> anyhow::Result<()> {
        self.commands = if no_exec {
            CommandTrust::None
        } else if let Some(reference) = base {
            let at = load_at_ref(&self.spec_path, reference)
                .with_context(|| format!("--base {reference}"))?;
            let trusted: std::collections::BTreeSet<Target> =
                all_targets(&at.spec.desired).into_iter().collect();
            let changed = changed_files_run(&self.spec_path, &self.base_dir, reference, &trusted)
                .with_context(|| format!("--base {reference}"))?;
            CommandTrust::Unchanged {
                reference: reference.to_owned(),
                trusted,
                changed,
            }
        } else {
            CommandTrust::All
        };
        Ok(())
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

    /// Read live Dynatrace (the selected environments and accounts) and every target.
    pub async fn read_world(&self) -> anyhow::Result<World> {
        self.read_world_reporting(&|_| {}).await
    }

    /// As [`Session::read_world`], with a bar of the environments and accounts read on standard
    /// error when `bars` (the printer's decision: a terminal, not CI); plain otherwise.
    pub async fn read_world_shown(&self, bars: bool) -> anyhow::Result<World> {
        if !bars {
            return self.read_world().await;
        }
        let total = self.desired.environments.len() + self.desired.accounts.len();
        let bar = ReadBar::new(total, progress::stderr_target());
        let world = self
            .read_world_reporting(&|subject| bar.read(subject))
            .await;
        bar.finish();
        world
    }

    /// As [`Session::read_world`], telling `read` as each environment and account is read.
    async fn read_world_reporting(&self, read: &(dyn Fn(&str) + Sync)) -> anyhow::Result<World> {
        let envs: Vec<EnvName> = self.desired.environments.keys().cloned().collect();
        let read = read_snapshot_reporting(
            &self.desired,
            &envs,
            &self.connector,
            ENVIRONMENT_CONCURRENCY,
            read,
        )
        .await
        .context("cannot read live Dynatrace")?;
        let every_target = all_targets(&self.desired);
        let (run, not_run): (Vec<Target>, Vec<Target>) = every_target
            .iter()
            .cloned()
            .partition(|t| self.commands.refusal(t).is_none());
        let (mut targets, preflight) = futures::join!(
            self.deliverer.read_all(&run),
            self.deliverer.preflight(&every_target)
        );
        let commands_not_run = not_run
            .iter()
            .filter_map(|t| {
                targets
                    .holders
                    .insert(t.address(), crate::model::Holder::WriteOnly);
                self.commands.refusal(t)
            })
            .collect();
        Ok(World {
            live: read.snapshot,
            targets,
            warnings: read.warnings,
            commands_not_run,
            api_calls: self.connector.api_calls(),
            preflight,
        })
    }

    /// The apply leases of the selected environments and accounts (by lock name, an account's
    /// being `account-NAME`), reached through this session's connector when each is taken;
    /// calls run on `runtime` (see `lock::lease`).
    pub fn leases(&self, runtime: tokio::runtime::Handle) -> Leases {
        let connector = self.connector.clone();
        let environments = Arc::new(self.desired.environments.clone());
        // An account's leases are owned by whoever owns its first platform token in the spec.
        let owner_of = |account: &str| {
            self.desired
                .tokens
                .iter()
                .find_map(|t| match (&t.home, &t.details) {
                    (Home::Account(a), TokenDetails::Platform { owner, .. }) if a == account => {
                        owner.clone()
                    }
                    _ => None,
                })
        };
        let accounts: Arc<HashMap<EnvName, (crate::model::Account, Option<String>)>> = Arc::new(
            self.desired
                .accounts
                .iter()
                .map(|(name, a)| (EnvName::account_lock(name), (a.clone(), owner_of(name))))
                .collect(),
        );
        let names: Vec<EnvName> = environments
            .keys()
            .chain(accounts.keys())
            .cloned()
            .collect();
        let connect: LeaseConnect = Arc::new(move |name: &EnvName| {
            let connector = connector.clone();
            let environments = environments.clone();
            let accounts = accounts.clone();
            let name = name.clone();
            async move {
                if let Some(env) = environments.get(&name) {
                    let client = connector.environment(env).await?;
                    return Ok(Arc::new(EnvironmentBoard::new(client)) as Arc<dyn LeaseBoard>);
                }
                let (account, owner) = accounts.get(&name).ok_or_else(|| LiveError::Config {
                    subject: Subject::Environment(name.to_string()),
                    reason: "not an environment or account of the spec".into(),
                })?;
                let client = connector.account(account).await?;
                let board = AccountBoard::new(client, &account.uuid, owner.clone());
                Ok(Arc::new(board) as Arc<dyn LeaseBoard>)
            }
            .boxed()
        });
        Leases::new(names, connect, runtime)
    }

    /// The `.tokensmith/` directory next to the spec.
    pub fn state_dir(&self) -> PathBuf {
        self.base_dir.join(".tokensmith")
    }
}

/// The clock to plan with: the latest server time any environment reported (so a sandbox whose
/// clock was advanced is planned against its own time), else the latest an account API or its
/// token endpoint reported (an account-only spec), else this machine's.
pub fn now(live: &LiveSnapshot) -> OffsetDateTime {
    live.environments
        .values()
        .filter_map(|e| e.server_time)
        .max()
        .or_else(|| live.accounts.values().filter_map(|a| a.server_time).max())
        .unwrap_or_else(OffsetDateTime::now_utc)
}

/// The Kubernetes preflight findings as part of `plan`: a failure that would make a delivery fail
/// is a blocking check of every token delivering to that target (so `apply` creates no token it
/// cannot deliver); an explanation (the operator has not confirmed a token) is a warning.
pub fn add_preflight(plan: &mut Plan, desired: &Desired, failures: &[PreflightFailure]) {
    for f in failures {
        if !f.blocking {
            plan.warnings.push(Warning {
                code: "operator_unconfirmed".to_owned(),
                message: f.to_string(),
            });
            continue;
        }
        let mut owners: Vec<(Home, Option<crate::model::TokenKey>)> = desired
            .tokens
            .iter()
            .filter(|t| t.deliver.iter().any(|d| d.address() == f.address))
            .map(|t| (t.home.clone(), Some(t.key.clone())))
            .collect();
        owners.extend(
            desired
                .tenant_tokens
                .iter()
                .filter(|t| {
                    t.activegates
                        .iter()
                        .chain(&t.oneagents)
                        .any(|d| d.address() == f.address)
                })
                .map(|t| (Home::Environment(t.environment.clone()), None)),
        );
        for (home, key) in owners {
            plan.checks.push(Check {
                code: Reason::TargetUnusable,
                blocking: true,
                home,
                key,
                message: f.to_string(),
            });
        }
    }
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

/// The desired state restricted to `envs` and `accounts` (each: empty = every one). Accounts
/// belong to no environment, so `--env` leaves them in and `--account` narrows them alone;
/// a platform token goes with its account.
pub fn select(desired: &Desired, envs: &[String], accounts: &[String]) -> anyhow::Result<Desired> {
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
    for name in accounts {
        if !desired.accounts.contains_key(name.as_str()) {
            let known: Vec<&str> = desired.accounts.keys().map(|k| k.as_str()).collect();
            anyhow::bail!(
                "--account {name}: the spec declares no such account; it declares {}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    let keep_env = |e: &EnvName| envs.is_empty() || envs.iter().any(|n| n == e.as_str());
    let keep_account = |a: &str| accounts.is_empty() || accounts.iter().any(|n| n == a);
    let mut out = desired.clone();
    out.environments.retain(|name, _| keep_env(name));
    out.tokens.retain(|t| match &t.home {
        Home::Environment(e) => keep_env(e),
        Home::Account(a) => keep_account(a),
    });
    out.tenant_tokens.retain(|t| keep_env(&t.environment));
    out.accounts.retain(|name, _| keep_account(name));
    Ok(out)
}

/// The directory of the spec file (`.` for a bare file name).
pub fn spec_dir(spec_path: &Path) -> PathBuf {
    match spec_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Where the embedded sandboxes of a spec in `base_dir` keep their state:
/// `.tokensmith/sandbox/NAME.json` next to the spec.
pub fn sandbox_state_dir(base_dir: &Path) -> PathBuf {
    base_dir.join(".tokensmith").join("sandbox")
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

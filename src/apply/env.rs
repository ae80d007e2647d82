//! What the applier works with: a client per environment and account, the deliverer, the
//! spec's targets per token key (to re-read before revoking and to copy values from), and a
//! clock. The command wires the real connector and deliverer in; tests pass fakes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::deliver::Deliver;
use crate::live::{AccountApi, Connector, EnvironmentApi, LiveError};
use crate::model::{
    AccountName, Desired, EnvName, Home, LiveSnapshot, LiveToken, Target, TargetAddress, TokenKey,
    TokenKind,
};

/// How many steps run at once unless the options say otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// How many exec targets are delivered at once unless the options say otherwise (see
/// [`crate::deliver::DEFAULT_EXEC_CONCURRENCY`]).
pub const DEFAULT_EXEC_CONCURRENCY: usize = crate::deliver::DEFAULT_EXEC_CONCURRENCY;

/// The wall clock, used where an environment or account reports no server time (clients that
/// have not answered yet).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// Settings of one apply run.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Steps running at once (at least one), not counting deliveries to exec targets.
    pub concurrency: usize,
    /// Deliveries to exec targets running at once (at least one): the fleet fan-out.
    pub exec_concurrency: usize,
    /// Where to append the JSON-lines journal; `None` writes none.
    pub journal: Option<PathBuf>,
    /// No step starts after this instant: the locks that make this run the only applier of its
    /// environments (the environment leases) run out some time later, and a step started
    /// without them could race another apply. Steps not started fail ("not started: …
    /// leases run out soon") and the next apply continues. `None`: no
    /// such bound (tests, `leak`).
    pub start_steps_until: Option<std::time::Instant>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            concurrency: DEFAULT_CONCURRENCY,
            exec_concurrency: DEFAULT_EXEC_CONCURRENCY,
            journal: None,
            start_steps_until: None,
        }
    }
}

/// Everything the steps act through.
pub struct ApplyEnv {
    environments: BTreeMap<EnvName, Arc<dyn EnvironmentApi>>,
    accounts: BTreeMap<AccountName, Arc<dyn AccountApi>>,
    deliver: Arc<dyn Deliver>,
    targets: TargetIndex,
    clock: Clock,
    /// The live tokens this run read under its locks, if any: a create's first look for its
    /// marker uses them instead of listing again (one list per environment, not per create).
    snapshot: Option<Arc<LiveSnapshot>>,
}

impl ApplyEnv {
    /// An environment with no clients yet, delivering through `deliver` to the spec's
    /// `targets`, with the system clock.
    pub fn new(deliver: Arc<dyn Deliver>, targets: TargetIndex) -> Self {
        ApplyEnv {
            environments: BTreeMap::new(),
            accounts: BTreeMap::new(),
            deliver,
            targets,
            clock: Arc::new(OffsetDateTime::now_utc),
            snapshot: None,
        }
    }

    /// The live tokens read after the locks were taken: a create step looks for its marker in
    /// them first, and lists again only after a create whose outcome is unknown.
    pub fn with_snapshot(mut self, snapshot: LiveSnapshot) -> Self {
        self.snapshot = Some(Arc::new(snapshot));
        self
    }

    /// The tokens of `kind` at `home` in the snapshot; `None` when the snapshot has not read
    /// that home (then the caller lists).
    pub(crate) fn snapshot_tokens(&self, home: &Home, kind: TokenKind) -> Option<Vec<LiveToken>> {
        let snapshot = self.snapshot.as_ref()?;
        let tokens: Vec<&LiveToken> = match home {
            Home::Environment(env) => {
                let e = snapshot.environments.get(env)?;
                e.api_tokens.iter().chain(&e.activegate_tokens).collect()
            }
            Home::Account(account) => snapshot
                .accounts
                .get(account)?
                .platform_tokens
                .iter()
                .collect(),
        };
        Some(
            tokens
                .into_iter()
                .filter(|t| t.kind == kind)
                .cloned()
                .collect(),
        )
    }

    /// An environment with a client for every environment and account `desired` names, from
    /// `connector`, and the spec's targets.
    pub async fn connect(
        connector: &dyn Connector,
        desired: &Desired,
        deliver: Arc<dyn Deliver>,
    ) -> Result<ApplyEnv, LiveError> {
        let mut env = ApplyEnv::new(deliver, TargetIndex::from_desired(desired));
        for (name, e) in &desired.environments {
            let client = connector.environment(e).await?;
            env = env.with_environment(name.clone(), client);
        }
        for (name, a) in &desired.accounts {
            let client = connector.account(a).await?;
            env = env.with_account(name.clone(), client);
        }
        Ok(env)
    }

    pub fn with_environment(mut self, name: EnvName, api: Arc<dyn EnvironmentApi>) -> Self {
        self.environments.insert(name, api);
        self
    }

    pub fn with_account(mut self, name: AccountName, api: Arc<dyn AccountApi>) -> Self {
        self.accounts.insert(name, api);
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn environment(&self, name: &EnvName) -> Option<&Arc<dyn EnvironmentApi>> {
        self.environments.get(name)
    }

    pub fn account(&self, name: &str) -> Option<&Arc<dyn AccountApi>> {
        self.accounts.get(name)
    }

    pub fn deliverer(&self) -> &dyn Deliver {
        self.deliver.as_ref()
    }

    pub fn targets(&self) -> &TargetIndex {
        &self.targets
    }

    /// The clock's time.
    pub fn wall_clock(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// "Now" for a home: the environment's or account's server time when its client has seen
    /// one, else the clock. Expiration dates are computed from this, so a sandbox whose clock
    /// was advanced gets tokens that expire relative to its own time.
    pub fn now_for(&self, home: &Home) -> OffsetDateTime {
        match home {
            Home::Environment(e) => self
                .environments
                .get(e)
                .and_then(|c| c.server_time())
                // No answer yet on this client (a create is its first call): the clock the
                // run's snapshot read.
                .or_else(|| {
                    self.snapshot
                        .as_ref()
                        .and_then(|s| s.environments.get(e))
                        .and_then(|env| env.server_time)
                })
                .unwrap_or_else(|| self.wall_clock()),
            Home::Account(a) => self
                .accounts
                .get(a)
                .and_then(|c| c.server_time())
                .or_else(|| {
                    self.snapshot
                        .as_ref()
                        .and_then(|s| s.accounts.get(a))
                        .and_then(|acc| acc.server_time)
                })
                .unwrap_or_else(|| self.wall_clock()),
        }
    }
}

/// The environments a plan acts in (to lock each before applying) and the accounts.
pub fn plan_homes(plan: &crate::plan::Plan) -> std::collections::BTreeSet<Home> {
    plan.steps.iter().map(|s| s.home.clone()).collect()
}

/// The spec's targets: per desired token, per tenant token, and by address.
#[derive(Debug, Clone, Default)]
pub struct TargetIndex {
    by_key: BTreeMap<(Home, TokenKind, TokenKey), Vec<Target>>,
    tenant: BTreeMap<EnvName, Vec<Target>>,
    by_address: BTreeMap<TargetAddress, Target>,
}

impl TargetIndex {
    /// Every target the desired state names.
    pub fn from_desired(desired: &Desired) -> Self {
        let mut index = TargetIndex::default();
        for t in &desired.tokens {
            index.add_token(t.home.clone(), t.kind, t.key.clone(), t.deliver.clone());
        }
        for t in &desired.tenant_tokens {
            let all: Vec<Target> = t.activegates.iter().chain(&t.oneagents).cloned().collect();
            for target in &all {
                index.by_address.insert(target.address(), target.clone());
            }
            index
                .tenant
                .entry(t.environment.clone())
                .or_default()
                .extend(all);
        }
        index
    }

    fn add_token(&mut self, home: Home, kind: TokenKind, key: TokenKey, targets: Vec<Target>) {
        for target in &targets {
            self.by_address.insert(target.address(), target.clone());
        }
        self.by_key
            .entry((home, kind, key))
            .or_default()
            .extend(targets);
    }

    /// The targets of a desired token (empty when the spec does not name it).
    pub fn of_key(&self, home: &Home, kind: TokenKind, key: &TokenKey) -> &[Target] {
        self.by_key
            .get(&(home.clone(), kind, key.clone()))
            .map_or(&[], Vec::as_slice)
    }

    /// The tenant token targets of an environment, ActiveGates first.
    pub fn of_tenant(&self, env: &EnvName) -> &[Target] {
        self.tenant.get(env).map_or(&[], Vec::as_slice)
    }

    pub fn by_address(&self, address: &TargetAddress) -> Option<&Target> {
        self.by_address.get(address)
    }
}

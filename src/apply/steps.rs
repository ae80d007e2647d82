//! One step at a time: each step re-reads what it is about to change and acts only when live
//! state still needs it, so a step that already happened (an earlier run, a re-run of the same
//! plan) is reported as already done instead of being repeated.
//!
//! - **create**: look for live tokens with the same marker first. One that a target holds (or
//!   that may be held: write-only or unreadable targets, or it was used) is the result; one no
//!   target holds is an orphan of an interrupted run and is deleted before creating. A create
//!   whose outcome is unknown ([`LiveError::is_ambiguous`]) is followed by a new look-up: a token
//!   that appeared is one whose secret was lost, so it is deleted and the create repeated.
//!   Never two tokens with one marker (DESIGN.md invariant 2).
//! - **deliver**: read the target first and skip when it holds the token; the value comes from
//!   the create of this run, from a target that holds it, or from `connectioninfo` (tenant).
//! - **disable / delete**: never the management token; re-read every target of the token's
//!   key and refuse while one holds it or cannot be read (invariant 1); 404 means done.
//! - **update / adopt**: compare the live fields first.
//! - **tenant start / finish**: "already in progress" continues, "no ongoing rotation" is done.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use time::OffsetDateTime;

use super::env::ApplyEnv;
use super::journal::{Journal, JournalEntry};
use crate::deliver::Record;
use crate::live::{
    ApiTokenChange, CreatedToken, Deletion, EnvironmentApi, LiveError, LiveResult,
    NewActiveGateToken, NewApiToken, NewPlatformToken,
};
use crate::model::target::tenant_fingerprint;
use crate::model::{
    EnvName, Holder, Home, LiveToken, Marker, Scope, Secret, SpecDuration, Target, TargetAddress,
    TokenDetails, TokenId, TokenKind,
};
use crate::plan::{Action, Change, Step, StepId, TokenSource};

/// How often a create is tried when its outcome keeps being unknown.
pub(crate) const MAX_CREATE_ATTEMPTS: u32 = 3;

/// What a successful step reports.
#[derive(Debug)]
pub(crate) struct Done {
    /// False when live state already was what the step wanted.
    pub changed: bool,
    pub token: Option<TokenId>,
    pub detail: String,
}

impl Done {
    fn changed(token: Option<TokenId>, detail: impl Into<String>) -> Done {
        Done {
            changed: true,
            token,
            detail: detail.into(),
        }
    }

    fn already(token: Option<TokenId>, detail: impl Into<String>) -> Done {
        Done {
            changed: false,
            token,
            detail: detail.into(),
        }
    }
}

/// The token a create step produced (or found), for the deliveries that follow it.
pub(crate) struct Produced {
    pub token: TokenId,
    /// The value, when this run created the token; otherwise it is copied from a target.
    pub secret: Option<Secret<String>>,
}

/// A delivery that succeeded in this run.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub home: Home,
    /// The token id, or `tenant:<fingerprint>`.
    pub holds: String,
    pub address: TargetAddress,
    pub changed: bool,
}

/// The state of one run shared by its steps.
pub(crate) struct Run<'a> {
    pub env: &'a ApplyEnv,
    pub journal: &'a Journal,
    pub run_id: String,
    /// When the plan was made (its `generated_at`).
    pub plan_time: OffsetDateTime,
    /// Create steps' results, by step id.
    pub produced: Mutex<HashMap<StepId, Produced>>,
    /// Tokens this run created (the clean-up considers them).
    pub minted: Mutex<Vec<(StepId, TokenId)>>,
    pub deliveries: Mutex<Vec<Delivery>>,
    /// Tenant rotations this run started, with the new active token.
    pub tenant_started: Mutex<HashMap<EnvName, Secret<String>>>,
    callers: tokio::sync::Mutex<HashMap<EnvName, Option<TokenId>>>,
    pub warnings: Mutex<Vec<String>>,
}

type StepResult = Result<Done, String>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<'a> Run<'a> {
    pub fn new(
        env: &'a ApplyEnv,
        journal: &'a Journal,
        run_id: String,
        plan_time: OffsetDateTime,
    ) -> Self {
        Run {
            env,
            journal,
            run_id,
            plan_time,
            produced: Mutex::new(HashMap::new()),
            minted: Mutex::new(Vec::new()),
            deliveries: Mutex::new(Vec::new()),
            tenant_started: Mutex::new(HashMap::new()),
            callers: tokio::sync::Mutex::new(HashMap::new()),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// A journal entry for this run.
    pub fn entry(&self, event: &str) -> JournalEntry {
        JournalEntry {
            ts: self.env.wall_clock(),
            run: self.run_id.clone(),
            event: event.to_owned(),
            step: None,
            verb: None,
            token: None,
            target: None,
            detail: None,
        }
    }

    /// A note in the journal about a step (an orphan deleted, an ambiguous create).
    fn note(&self, step: &Step, token: Option<&TokenId>, detail: String) {
        let mut e = self.entry("note");
        e.step = Some(step.id.clone());
        e.verb = Some(step.action.verb().to_owned());
        e.token = token.cloned();
        e.detail = Some(detail);
        self.journal.write(&e);
    }

    fn warn(&self, message: String) {
        lock(&self.warnings).push(message);
    }

    pub fn environment(&self, home: &Home) -> Result<&'a dyn EnvironmentApi, String> {
        match home {
            Home::Environment(e) => self
                .env
                .environment(e)
                .map(|c| c.as_ref())
                .ok_or_else(|| format!("no client for environment `{e}`")),
            Home::Account(a) => Err(format!(
                "account `{a}` has no environment API; this step needs an environment"
            )),
        }
    }

    fn account(&self, home: &Home) -> Result<&'a dyn crate::live::AccountApi, String> {
        match home {
            Home::Account(a) => self
                .env
                .account(a)
                .map(|c| c.as_ref())
                .ok_or_else(|| format!("no client for account `{a}`")),
            Home::Environment(e) => Err(format!(
                "environment `{e}` has no account API; this step needs an account"
            )),
        }
    }

    /// The management token of an environment, looked up once per run.
    async fn caller(&self, env: &EnvName) -> Result<Option<TokenId>, String> {
        let mut callers = self.callers.lock().await;
        if let Some(c) = callers.get(env) {
            return Ok(c.clone());
        }
        let client = self.environment(&Home::Environment(env.clone()))?;
        let caller = client.caller_id().await.map_err(|e| {
            format!(
                "cannot tell which token tokensmith authenticates with, so nothing is revoked: {e}"
            )
        })?;
        callers.insert(env.clone(), caller.clone());
        Ok(caller)
    }

    async fn refuse_caller(&self, step: &Step, token: &TokenId, what: &str) -> Result<(), String> {
        if let Some(env) = step.environment() {
            if self.caller(env).await?.as_ref() == Some(token) {
                return Err(format!(
                    "refusing to {what} token {token}: it is the management token tokensmith authenticates with in environment `{env}`"
                ));
            }
        }
        Ok(())
    }

    /// Run one step.
    pub async fn run_step(&self, step: &Step) -> StepResult {
        match &step.action {
            Action::Create {
                name,
                scopes,
                expires_in,
                details,
                ..
            } => self.create(step, name, scopes, *expires_in, details).await,
            Action::Update {
                token,
                name,
                scopes,
            } => {
                self.update(step, token, name.as_ref(), scopes.as_ref())
                    .await
            }
            Action::Adopt { token, name, .. } => self.adopt(step, token, name).await,
            Action::Deliver { token, target, .. } => self.deliver(step, token, target).await,
            Action::Disable { token, rename, .. } => {
                self.retire(step, token, Retire::Disable(rename.as_deref()))
                    .await
            }
            Action::Delete { token, .. } => self.retire(step, token, Retire::Delete).await,
            Action::TenantStart => self.tenant_start(step).await,
            Action::TenantFinish => self.tenant_finish(step).await,
        }
    }

    /// Delete a token of the kind and home of `step` (clean-up of this run's own tokens).
    pub(crate) async fn delete_token_of(
        &self,
        step: &Step,
        id: &TokenId,
    ) -> Result<Deletion, String> {
        self.refuse_caller(step, id, "delete").await?;
        self.delete_token(&step.home, step.kind, id)
            .await
            .map_err(|e| e.to_string())
    }

    /// Cancel the tenant rotation of an environment (clean-up of this run's own start).
    pub(crate) async fn cancel_tenant(&self, home: &Home) -> Result<(), String> {
        match self.environment(home)?.cancel_tenant_rotation().await {
            Ok(_) => Ok(()),
            Err(e) if status_says(&e, 400, &["no ongoing", "no rotation"]) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    // ----- create -----

    async fn list(&self, home: &Home, kind: TokenKind) -> LiveResult<Vec<LiveToken>> {
        match (home, kind) {
            (Home::Account(_), _) => match self.account(home) {
                Ok(a) => a.list_platform_tokens().await,
                Err(reason) => Err(LiveError::Config {
                    subject: crate::live::Subject::Account(crate::plan::home_label(home)),
                    reason,
                }),
            },
            (Home::Environment(e), kind) => {
                let Some(c) = self.env.environment(e) else {
                    return Err(LiveError::Config {
                        subject: crate::live::Subject::Environment(e.to_string()),
                        reason: "no client for this environment".into(),
                    });
                };
                if kind == TokenKind::ActivegateToken {
                    c.list_activegate_tokens().await
                } else {
                    c.list_api_tokens().await
                }
            }
        }
    }

    async fn marked(&self, step: &Step, marker: &Marker) -> Result<Vec<LiveToken>, String> {
        let tokens = self
            .list(&step.home, step.kind)
            .await
            .map_err(|e| format!("cannot look for tokens marked {marker}: {e}"))?;
        Ok(tokens
            .into_iter()
            .filter(|t| t.kind == step.kind && Marker::parse_name(&t.name).as_ref() == Some(marker))
            .collect())
    }

    async fn delete_token(
        &self,
        home: &Home,
        kind: TokenKind,
        id: &TokenId,
    ) -> LiveResult<Deletion> {
        let result = match (home, kind) {
            (Home::Account(_), _) => match self.account(home) {
                Ok(a) => a.delete_platform_token(id).await,
                Err(reason) => return Err(config_error(home, reason)),
            },
            (Home::Environment(_), TokenKind::ActivegateToken) => match self.environment(home) {
                Ok(c) => c.delete_activegate_token(id).await,
                Err(reason) => return Err(config_error(home, reason)),
            },
            (Home::Environment(_), _) => match self.environment(home) {
                Ok(c) => c.delete_api_token(id).await,
                Err(reason) => return Err(config_error(home, reason)),
            },
        };
        match result {
            Err(e) if e.is_not_found() => Ok(Deletion::AlreadyGone),
            other => other,
        }
    }

    /// What the targets of a key hold, by address.
    pub(crate) async fn holders(&self, targets: &[Target]) -> Vec<(TargetAddress, Holder)> {
        let d = self.env.deliverer();
        let reads = targets
            .iter()
            .map(|t| async move { (t.address(), d.read_holder(t).await) });
        futures::future::join_all(reads).await
    }

    fn key_targets(&self, step: &Step) -> &'a [Target] {
        match &step.key {
            Some(key) => self.env.targets().of_key(&step.home, step.kind, key),
            None => &[],
        }
    }

    async fn create(
        &self,
        step: &Step,
        name: &str,
        scopes: &BTreeSet<Scope>,
        expires_in: Option<SpecDuration>,
        details: &TokenDetails,
    ) -> StepResult {
        let marker = Marker::parse_name(name)
            .ok_or_else(|| format!("the name `{name}` carries no tokensmith marker"))?;
        let targets = self.key_targets(step);
        let mut seen: HashSet<TokenId> = HashSet::new();
        let mut first_look = true;
        for attempt in 1..=MAX_CREATE_ATTEMPTS {
            let existing = self.marked(step, &marker).await?;
            let holders = if existing.is_empty() {
                Vec::new()
            } else {
                self.holders(targets).await
            };
            let mut reuse: Option<TokenId> = None;
            for t in &existing {
                let held = holders
                    .iter()
                    .any(|(_, h)| matches!(h, Holder::Token { id } if id == &t.id));
                let blind = holders
                    .iter()
                    .any(|(_, h)| matches!(h, Holder::WriteOnly | Holder::Unreadable { .. }));
                // A token that appeared after one of our own ambiguous creates was never
                // delivered: its secret is lost, whatever the targets look like.
                let ours_lost = !first_look && !seen.contains(&t.id);
                let caller = match step.environment() {
                    Some(env) => self.caller(env).await?.as_ref() == Some(&t.id),
                    None => false,
                };
                if held || caller || (!ours_lost && (blind || t.last_used.is_some())) {
                    if reuse.is_none() {
                        reuse = Some(t.id.clone());
                    }
                    continue;
                }
                self.note(
                    step,
                    Some(&t.id),
                    format!("token {} carries marker {marker} but no target holds it; its value is lost, deleting it before creating", t.id),
                );
                self.delete_token(&step.home, step.kind, &t.id)
                    .await
                    .map_err(|e| format!("cannot delete the undelivered token {}: {e}", t.id))?;
            }
            if first_look {
                seen.extend(existing.iter().map(|t| t.id.clone()));
            }
            first_look = false;
            if let Some(id) = reuse {
                lock(&self.produced).insert(
                    step.id.clone(),
                    Produced {
                        token: id.clone(),
                        secret: None,
                    },
                );
                return Ok(Done::already(
                    Some(id.clone()),
                    format!("token {id} with marker {marker} exists"),
                ));
            }
            let now = self.env.now_for(&step.home);
            let expires = expires_in.map(|d| now + d.to_time());
            match self.create_call(step, name, scopes, expires, details).await {
                Ok(created) => {
                    let id = created.id.clone();
                    lock(&self.minted).push((step.id.clone(), id.clone()));
                    lock(&self.produced).insert(
                        step.id.clone(),
                        Produced {
                            token: id.clone(),
                            secret: Some(created.secret),
                        },
                    );
                    let until = expires
                        .map(|e| format!(", expires {}", rfc3339(e)))
                        .unwrap_or_default();
                    return Ok(Done::changed(
                        Some(id.clone()),
                        format!("created {id}{until}"),
                    ));
                }
                Err(e) if e.is_ambiguous() => {
                    self.note(
                        step,
                        None,
                        format!("create attempt {attempt} has an unknown outcome ({e}); looking for marker {marker} before trying again"),
                    );
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(format!(
            "creating the token marked {marker} kept failing with an unknown outcome ({MAX_CREATE_ATTEMPTS} attempts); run apply again, it looks for the marker first"
        ))
    }

    async fn create_call(
        &self,
        step: &Step,
        name: &str,
        scopes: &BTreeSet<Scope>,
        expires: Option<OffsetDateTime>,
        details: &TokenDetails,
    ) -> LiveResult<CreatedToken> {
        match (step.kind, details) {
            (TokenKind::PlatformToken, TokenDetails::Platform { resources, owner }) => {
                let account = self
                    .account(&step.home)
                    .map_err(|r| config_error(&step.home, r))?;
                let new = NewPlatformToken {
                    name: name.to_owned(),
                    scopes: scopes.clone(),
                    resources: resources.clone(),
                    expires,
                    owner: owner.clone(),
                };
                account.create_platform_token(&new).await
            }
            (
                TokenKind::ActivegateToken,
                TokenDetails::Activegate {
                    activegate_type,
                    seed,
                },
            ) => {
                let c = self
                    .environment(&step.home)
                    .map_err(|r| config_error(&step.home, r))?;
                let new = NewActiveGateToken {
                    name: name.to_owned(),
                    activegate_type: *activegate_type,
                    expires,
                    seed: *seed,
                };
                c.create_activegate_token(&new).await
            }
            (
                TokenKind::ApiToken,
                TokenDetails::Api {
                    personal_access_token,
                    ..
                },
            ) => {
                let c = self
                    .environment(&step.home)
                    .map_err(|r| config_error(&step.home, r))?;
                let new = NewApiToken {
                    name: name.to_owned(),
                    scopes: scopes.clone(),
                    expires,
                    personal_access_token: *personal_access_token,
                };
                c.create_api_token(&new).await
            }
            (kind, _) => Err(config_error(
                &step.home,
                format!("a {kind} cannot be created with these details"),
            )),
        }
    }

    // ----- deliver -----

    async fn deliver(&self, step: &Step, source: &TokenSource, target: &Target) -> StepResult {
        match source {
            TokenSource::TenantToken => self.deliver_tenant(step, target).await,
            TokenSource::Created { step: from } => {
                let (id, secret) = {
                    let produced = lock(&self.produced);
                    let p = produced
                        .get(from)
                        .ok_or_else(|| format!("step {from} produced no token in this run"))?;
                    (p.token.clone(), p.secret.clone())
                };
                self.deliver_token(step, target, &id, secret, None).await
            }
            TokenSource::Existing { id, copy_from } => {
                self.deliver_token(step, target, id, None, Some(copy_from))
                    .await
            }
        }
    }

    async fn deliver_token(
        &self,
        step: &Step,
        target: &Target,
        id: &TokenId,
        secret: Option<Secret<String>>,
        copy_from: Option<&TargetAddress>,
    ) -> StepResult {
        let d = self.env.deliverer();
        let address = target.address();
        let holder = d.read_holder(target).await;
        if matches!(&holder, Holder::Token { id: held } if held == id) {
            self.delivered(step, id.as_str().to_owned(), &address, false);
            return Ok(Done::already(
                Some(id.clone()),
                format!("{address} holds {id}"),
            ));
        }
        let value = match secret {
            Some(v) => v,
            // The create found the token from an earlier run of this plan (its value is gone),
            // and this target cannot be read back: like the planner, take it that the earlier
            // run delivered it; the token's `lastUsedDate` confirms it before any revoke.
            None if holder == Holder::WriteOnly && copy_from.is_none() => {
                return Ok(Done::already(
                    Some(id.clone()),
                    format!(
                        "{address} is write-only; {id} was created and delivered by an earlier run"
                    ),
                ));
            }
            None => self.copy_value(step, id, copy_from).await?,
        };
        let record = Record::Token(id.clone());
        self.write_and_verify(target, &value, &record).await?;
        self.delivered(step, id.as_str().to_owned(), &address, true);
        Ok(Done::changed(
            Some(id.clone()),
            format!("delivered {id} to {address}"),
        ))
    }

    /// The value of an existing token, read from a target that holds it: `copy_from` first,
    /// then any other target of the key that holds it.
    async fn copy_value(
        &self,
        step: &Step,
        id: &TokenId,
        copy_from: Option<&TargetAddress>,
    ) -> Result<Secret<String>, String> {
        let index = self.env.targets();
        let mut candidates: Vec<&Target> = Vec::new();
        if let Some(t) = copy_from.and_then(|a| index.by_address(a)) {
            candidates.push(t);
        }
        for t in self.key_targets(step) {
            if !candidates.contains(&t) {
                candidates.push(t);
            }
        }
        let d = self.env.deliverer();
        let mut why = Vec::new();
        for t in candidates {
            match d.read_holder(t).await {
                Holder::Token { id: held } if &held == id => {}
                _ => continue,
            }
            match d.read_value(t).await {
                Ok(Some(v)) => match TokenId::of_secret(v.expose()) {
                    Some(of_value) if &of_value != id => {
                        why.push(format!("{} holds {of_value}", t.address()));
                    }
                    _ => return Ok(v),
                },
                Ok(None) => why.push(format!("{} holds no value", t.address())),
                Err(e) => why.push(e.to_string()),
            }
        }
        let why = if why.is_empty() {
            "no target of the token holds it".to_owned()
        } else {
            why.join("; ")
        };
        Err(format!(
            "the value of {id} is not available ({why}); Dynatrace shows a value only once, so plan again: a token whose value is lost gets a new generation"
        ))
    }

    async fn write_and_verify(
        &self,
        target: &Target,
        value: &Secret<String>,
        record: &Record,
    ) -> Result<(), String> {
        let d = self.env.deliverer();
        let delivered = d
            .deliver(target, value, record)
            .await
            .map_err(|e| e.to_string())?;
        for w in delivered.warnings {
            self.warn(w);
        }
        d.verify(target, record)
            .await
            .map_err(|e| format!("delivered, but the check afterwards failed: {e}"))?;
        Ok(())
    }

    fn delivered(&self, step: &Step, holds: String, address: &TargetAddress, changed: bool) {
        lock(&self.deliveries).push(Delivery {
            home: step.home.clone(),
            holds,
            address: address.clone(),
            changed,
        });
    }

    async fn deliver_tenant(&self, step: &Step, target: &Target) -> StepResult {
        let env = step
            .environment()
            .ok_or("a tenant token belongs to an environment")?
            .clone();
        let started = lock(&self.tenant_started).get(&env).cloned();
        let value = match started {
            Some(v) => v,
            None => self
                .environment(&step.home)?
                .tenant_token()
                .await
                .map_err(|e| format!("cannot read the active tenant token: {e}"))?,
        };
        let fingerprint = tenant_fingerprint(value.expose());
        let holds = format!("tenant:{fingerprint}");
        let address = target.address();
        if let Holder::TenantToken { fingerprint: f, .. } =
            self.env.deliverer().read_holder(target).await
        {
            if f == fingerprint {
                self.delivered(step, holds, &address, false);
                return Ok(Done::already(
                    None,
                    format!("{address} holds tenant token {fingerprint}"),
                ));
            }
        }
        let record = Record::tenant(&value, self.env.now_for(&step.home));
        self.write_and_verify(target, &value, &record).await?;
        self.delivered(step, holds, &address, true);
        Ok(Done::changed(
            None,
            format!("delivered tenant token {fingerprint} to {address}"),
        ))
    }

    // ----- disable / delete -----

    async fn retire(&self, step: &Step, token: &TokenId, how: Retire<'_>) -> StepResult {
        let (delete, rename) = match how {
            Retire::Delete => (true, None),
            Retire::Disable(rename) => (false, rename),
        };
        let verb = if delete { "delete" } else { "disable" };
        self.refuse_caller(step, token, verb).await?;
        for (address, holder) in self.holders(self.key_targets(step)).await {
            match holder {
                Holder::Token { id } if &id == token => {
                    return Err(format!(
                        "refusing to {verb} {token}: target {address} still holds it; plan again once it holds the successor"
                    ))
                }
                Holder::Unreadable { reason } => {
                    return Err(format!(
                        "refusing to {verb} {token}: target {address} cannot be read ({reason}), so it may still hold it"
                    ))
                }
                _ => {}
            }
        }
        if delete {
            return match self.delete_token(&step.home, step.kind, token).await {
                Ok(Deletion::Deleted) => Ok(Done::changed(
                    Some(token.clone()),
                    format!("deleted {token}"),
                )),
                Ok(Deletion::AlreadyGone) => Ok(Done::already(
                    Some(token.clone()),
                    format!("{token} is already gone"),
                )),
                Err(e) => Err(e.to_string()),
            };
        }
        let result = match (&step.home, step.kind) {
            (Home::Account(_), _) => {
                let a = self.account(&step.home)?;
                a.set_platform_token_status(token, false).await
            }
            (Home::Environment(_), TokenKind::ApiToken) => {
                let c = self.environment(&step.home)?;
                let current = c.get_api_token(token).await.map_err(|e| e.to_string())?;
                let Some(current) = current else {
                    return Ok(Done::already(
                        Some(token.clone()),
                        format!("{token} is already gone"),
                    ));
                };
                // The rename goes with the disable: it sets `modifiedDate`, from which the
                // planner measures the retention before deleting.
                let rename = rename.filter(|r| *r != current.name).map(str::to_owned);
                if !current.enabled && rename.is_none() {
                    return Ok(Done::already(
                        Some(token.clone()),
                        format!("{token} is already disabled"),
                    ));
                }
                let change = ApiTokenChange {
                    enabled: Some(false).filter(|_| current.enabled),
                    name: rename,
                    ..ApiTokenChange::default()
                };
                c.update_api_token(token, &change).await
            }
            (_, kind) => return Err(format!("a {kind} cannot be disabled, only deleted")),
        };
        match result {
            Ok(()) => Ok(Done::changed(
                Some(token.clone()),
                format!("disabled {token}"),
            )),
            Err(e) if e.is_not_found() => Ok(Done::already(
                Some(token.clone()),
                format!("{token} is already gone"),
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    // ----- update / adopt -----

    async fn live_api_token(&self, step: &Step, token: &TokenId) -> Result<LiveToken, String> {
        self.environment(&step.home)?
            .get_api_token(token)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("token {token} no longer exists; plan again"))
    }

    async fn update(
        &self,
        step: &Step,
        token: &TokenId,
        name: Option<&Change<String>>,
        scopes: Option<&Change<BTreeSet<Scope>>>,
    ) -> StepResult {
        let current = self.live_api_token(step, token).await?;
        let change = ApiTokenChange {
            name: name.filter(|c| c.to != current.name).map(|c| c.to.clone()),
            scopes: scopes
                .filter(|c| c.to != current.scopes)
                .map(|c| c.to.clone()),
            enabled: None,
        };
        if change.name.is_none() && change.scopes.is_none() {
            return Ok(Done::already(
                Some(token.clone()),
                format!("{token} already has the wanted name and scopes"),
            ));
        }
        if let Some(to) = &change.scopes {
            if !current.scopes.is_subset(to) {
                self.refuse_caller(step, token, "narrow the scopes of")
                    .await?;
            }
        }
        self.environment(&step.home)?
            .update_api_token(token, &change)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Done::changed(
            Some(token.clone()),
            format!("updated {token}"),
        ))
    }

    async fn adopt(&self, step: &Step, token: &TokenId, name: &Change<String>) -> StepResult {
        let current = self.live_api_token(step, token).await?;
        if current.name == name.to {
            return Ok(Done::already(
                Some(token.clone()),
                format!("{token} is already named `{}`", name.to),
            ));
        }
        let change = ApiTokenChange {
            name: Some(name.to.clone()),
            ..ApiTokenChange::default()
        };
        self.environment(&step.home)?
            .update_api_token(token, &change)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Done::changed(
            Some(token.clone()),
            format!("adopted {token} as `{}`", name.to),
        ))
    }

    // ----- tenant token -----

    async fn tenant_start(&self, step: &Step) -> StepResult {
        let env = step
            .environment()
            .ok_or("a tenant token belongs to an environment")?
            .clone();
        if let Some(done) = self.rotated_since_plan(step, &env).await {
            return Ok(done);
        }
        match self.environment(&step.home)?.start_tenant_rotation().await {
            Ok(tokens) => {
                let fingerprint = tokens.active_fingerprint();
                lock(&self.tenant_started).insert(env, tokens.active);
                Ok(Done::changed(
                    None,
                    format!("started a tenant token rotation; new tenant token {fingerprint}"),
                ))
            }
            Err(e) if status_says(&e, 400, &["in progress", "already"]) => Ok(Done::already(
                None,
                "a tenant token rotation is already in progress; continuing with the active tenant token",
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Whether a target already holds the active tenant token written after the plan was made:
    /// then the rotation the plan asks for happened (an earlier run of this plan), and starting
    /// another one would rotate twice.
    async fn rotated_since_plan(&self, step: &Step, env: &EnvName) -> Option<Done> {
        let active = self
            .environment(&step.home)
            .ok()?
            .tenant_token()
            .await
            .ok()?;
        let fingerprint = tenant_fingerprint(active.expose());
        let targets = self.env.targets().of_tenant(env);
        let fresh = self.holders(targets).await.into_iter().any(|(_, h)| {
            matches!(h, Holder::TenantToken { fingerprint: f, since: Some(since) }
                if f == fingerprint && since >= self.plan_time)
        });
        fresh.then(|| {
            Done::already(
                None,
                format!("the targets received tenant token {fingerprint} after this plan was made; not rotating again"),
            )
        })
    }

    async fn tenant_finish(&self, step: &Step) -> StepResult {
        match self.environment(&step.home)?.finish_tenant_rotation().await {
            Ok(_) => Ok(Done::changed(
                None,
                "finished the tenant token rotation; the old tenant token no longer works",
            )),
            Err(e) if status_says(&e, 400, &["no ongoing", "not in progress", "no rotation"]) => {
                Ok(Done::already(None, "no tenant token rotation is ongoing"))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// How a token is retired.
#[derive(Debug, Clone, Copy)]
enum Retire<'a> {
    /// Disable, renaming it at the same time when a name is given (API tokens).
    Disable(Option<&'a str>),
    Delete,
}

/// Whether `e` is an answer with this status whose message contains one of `words`
/// (case-insensitive).
fn status_says(e: &LiveError, status: u16, words: &[&str]) -> bool {
    match e {
        LiveError::Status {
            status: s, message, ..
        } if *s == status => {
            let m = message.to_ascii_lowercase();
            words.iter().any(|w| m.contains(w))
        }
        _ => false,
    }
}

fn config_error(home: &Home, reason: String) -> LiveError {
    let subject = match home {
        Home::Environment(e) => crate::live::Subject::Environment(e.to_string()),
        Home::Account(a) => crate::live::Subject::Account(a.clone()),
    };
    LiveError::Config { subject, reason }
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

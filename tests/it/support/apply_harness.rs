//! Test support for `tests/apply_*.rs`: an in-memory Dynatrace environment implementing the
//! live traits (with fault switches), a deliverer wrapping the real file deliverer with
//! failure switches, and a harness that plans from what they hold and checks the safety
//! invariants of DESIGN.md after every run.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::FutureExt;
use rand::Rng;
use time::{Duration, OffsetDateTime};

use tokensmith::apply::{self, ApplyEnv, ApplyOptions, ApplyReport, NoProgress, TargetIndex};
use tokensmith::deliver::{
    Deliver, DeliverError, Delivered, Deliverer, DeliveryContext, Record, Verified,
};
use tokensmith::live::{
    ApiTokenChange, CreatedToken, Deletion, EnvironmentRead, EnvironmentWrite, LiveError,
    LiveResult, NewActiveGateToken, NewApiToken, RequestLabel, Subject, TenantTokens,
};
use tokensmith::model::dynatrace_messages as says;
use tokensmith::model::target::tenant_fingerprint;
use tokensmith::model::{
    Desired, EnvName, Holder, LiveEnvironment, LiveSnapshot, LiveToken, Marker, Secret, Target,
    TargetAddress, TargetSnapshot, TokenId, TokenKind,
};
use tokensmith::plan::{self, Plan, PlanOptions};

/// Fault switches of the fake environment. Counters count down as faults fire.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// The next N creates fail with 500 and create nothing.
    pub fail_creates: u32,
    /// The next N creates commit, then the answer is lost (ambiguous).
    pub ambiguous_commits: u32,
    /// The next N creates are lost before the server sees them (ambiguous, nothing created).
    pub ambiguous_drops: u32,
}

#[derive(Debug)]
pub struct FakeState {
    pub now: OffsetDateTime,
    pub tokens: BTreeMap<TokenId, LiveToken>,
    /// Every secret the fake ever handed out (tokens and tenant tokens).
    pub minted: Vec<String>,
    pub secrets: BTreeMap<TokenId, String>,
    pub caller: TokenId,
    pub faults: Faults,
    pub tenant_active: String,
    pub tenant_old: Option<String>,
    pub rotating: bool,
    pub deleted: Vec<TokenId>,
    pub creates: u32,
    /// Token list calls (API and ActiveGate) answered.
    pub lists: u32,
    counter: u64,
}

/// One in-memory Dynatrace environment.
pub struct FakeEnv {
    name: EnvName,
    pub state: Mutex<FakeState>,
}

fn random_upper(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

impl FakeEnv {
    pub fn new(name: &str, now: OffsetDateTime) -> Arc<FakeEnv> {
        let caller = TokenId::new("dt0c01.MANAGEMENT0000000000000000");
        let mut tokens = BTreeMap::new();
        tokens.insert(
            caller.clone(),
            LiveToken {
                kind: TokenKind::ApiToken,
                id: caller.clone(),
                name: "tokensmith management".into(),
                enabled: true,
                owner: Some("admin".into()),
                personal_access_token: false,
                created: Some(now - Duration::days(1)),
                modified: None,
                expires: None,
                last_used: None,
                last_used_from: None,
                scopes: tokensmith::model::ScopeSet::new(),
                activegate_type: None,
                seed: false,
                resources: Vec::new(),
            },
        );
        let tenant = format!("tenant{}", random_upper(20).to_lowercase());
        Arc::new(FakeEnv {
            name: EnvName::new(name),
            state: Mutex::new(FakeState {
                now,
                tokens,
                minted: vec![tenant.clone()],
                secrets: BTreeMap::new(),
                caller,
                faults: Faults::default(),
                tenant_active: tenant,
                tenant_old: None,
                rotating: false,
                deleted: Vec::new(),
                creates: 0,
                lists: 0,
                counter: 0,
            }),
        })
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    pub fn advance(&self, d: Duration) {
        self.lock().now += d;
    }

    pub fn now(&self) -> OffsetDateTime {
        self.lock().now
    }

    pub fn set_faults(&self, f: Faults) {
        self.lock().faults = f;
    }

    /// The live view the planner gets.
    pub fn snapshot(&self) -> LiveEnvironment {
        let s = self.lock();
        let mut e = LiveEnvironment {
            caller: Some(s.caller.clone()),
            tenant_token: Some(tenant_fingerprint(&s.tenant_active)),
            server_time: Some(s.now),
            ..LiveEnvironment::default()
        };
        for t in s.tokens.values() {
            match t.kind {
                TokenKind::ActivegateToken => e.activegate_tokens.push(t.clone()),
                _ => e.api_tokens.push(t.clone()),
            }
        }
        e
    }

    pub fn secret_of(&self, id: &TokenId) -> Option<String> {
        self.lock().secrets.get(id).cloned()
    }

    fn label(&self, method: &str, path: &str) -> Box<RequestLabel> {
        Box::new(RequestLabel {
            subject: Subject::Environment(self.name.to_string()),
            method: method.into(),
            path: path.into(),
        })
    }

    fn status(&self, method: &str, path: &str, status: u16, message: &str) -> LiveError {
        LiveError::Status {
            request: self.label(method, path),
            status,
            message: message.into(),
            violations: Vec::new(),
            attempts: 1,
        }
    }

    fn create(
        &self,
        kind: TokenKind,
        name: &str,
        expires: Option<OffsetDateTime>,
        scopes: tokensmith::model::ScopeSet,
        ag_type: Option<tokensmith::model::ActiveGateType>,
        seed: bool,
    ) -> LiveResult<CreatedToken> {
        let path = if kind == TokenKind::ActivegateToken {
            "/api/v2/activeGateTokens"
        } else {
            "/api/v2/apiTokens"
        };
        let mut s = self.lock();
        s.creates += 1;
        if s.faults.fail_creates > 0 {
            s.faults.fail_creates -= 1;
            return Err(self.status("POST", path, 500, "Internal error"));
        }
        if s.faults.ambiguous_drops > 0 {
            s.faults.ambiguous_drops -= 1;
            return Err(LiveError::Ambiguous {
                request: self.label("POST", path),
                reason: "connection reset before the request was sent".into(),
            });
        }
        s.counter += 1;
        let prefix = if kind == TokenKind::ActivegateToken {
            "dt0g02"
        } else {
            "dt0c01"
        };
        let id = TokenId::new(format!("{prefix}.T{:04}{}", s.counter, random_upper(19)));
        let secret = format!("{id}.{}", random_upper(64));
        let now = s.now;
        s.tokens.insert(
            id.clone(),
            LiveToken {
                kind,
                id: id.clone(),
                name: name.to_owned(),
                enabled: true,
                owner: Some("admin".into()),
                personal_access_token: false,
                created: Some(now),
                modified: None,
                expires,
                last_used: None,
                last_used_from: None,
                scopes,
                activegate_type: ag_type,
                seed,
                resources: Vec::new(),
            },
        );
        s.minted.push(secret.clone());
        s.secrets.insert(id.clone(), secret.clone());
        if s.faults.ambiguous_commits > 0 {
            s.faults.ambiguous_commits -= 1;
            return Err(LiveError::Ambiguous {
                request: self.label("POST", path),
                reason: "timed out waiting for the response".into(),
            });
        }
        Ok(CreatedToken {
            id,
            secret: Secret::new(secret),
            expires,
        })
    }

    fn delete(&self, kind: TokenKind, id: &TokenId) -> LiveResult<Deletion> {
        let mut s = self.lock();
        match s.tokens.get(id) {
            Some(t)
                if t.kind == kind
                    || (kind == TokenKind::ApiToken && t.kind != TokenKind::ActivegateToken) =>
            {
                s.tokens.remove(id);
                s.deleted.push(id.clone());
                Ok(Deletion::Deleted)
            }
            _ => Ok(Deletion::AlreadyGone),
        }
    }

    fn rotate(&self, step: &str) -> LiveResult<TenantTokens> {
        let mut s = self.lock();
        let path = format!("/api/v2/tenantTokenRotation/{step}");
        match step {
            "start" => {
                if s.rotating {
                    return Err(self.status("POST", &path, 400, says::ROTATION_ALREADY_RUNNING));
                }
                let new = format!("tenant{}", random_upper(20).to_lowercase());
                s.minted.push(new.clone());
                let old = std::mem::replace(&mut s.tenant_active, new);
                s.tenant_old = Some(old);
                s.rotating = true;
            }
            "finish" => {
                if !s.rotating {
                    return Err(self.status("POST", &path, 400, says::NO_ROTATION_TO_FINISH));
                }
                s.rotating = false;
            }
            _ => {
                if !s.rotating {
                    return Err(self.status("POST", &path, 400, says::NO_ROTATION_TO_CANCEL));
                }
                let old = s.tenant_old.take().expect("rotating has an old token");
                s.tenant_active = old;
                s.rotating = false;
            }
        }
        Ok(TenantTokens {
            active: Secret::new(s.tenant_active.clone()),
            old: s.tenant_old.clone().map(Secret::new),
        })
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    async move { v }.boxed()
}

impl EnvironmentRead for FakeEnv {
    fn name(&self) -> &EnvName {
        &self.name
    }
    fn list_api_tokens(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>> {
        self.lock().lists += 1;
        let v = self.snapshot().api_tokens;
        ready(Ok(v))
    }
    fn get_api_token<'a>(
        &'a self,
        id: &'a TokenId,
    ) -> BoxFuture<'a, LiveResult<Option<LiveToken>>> {
        let t = self
            .lock()
            .tokens
            .get(id)
            .filter(|t| t.kind != TokenKind::ActivegateToken)
            .cloned();
        ready(Ok(t))
    }
    fn lookup<'a>(
        &'a self,
        token: &'a Secret<String>,
    ) -> BoxFuture<'a, LiveResult<Option<LiveToken>>> {
        let s = self.lock();
        let t = s
            .secrets
            .iter()
            .find(|(_, v)| *v == token.expose())
            .and_then(|(id, _)| s.tokens.get(id).cloned());
        ready(Ok(t))
    }
    fn caller_id(&self) -> BoxFuture<'_, LiveResult<Option<TokenId>>> {
        ready(Ok(Some(self.lock().caller.clone())))
    }
    fn list_activegate_tokens(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>> {
        self.lock().lists += 1;
        ready(Ok(self.snapshot().activegate_tokens))
    }
    fn tenant_token_fingerprint(&self) -> BoxFuture<'_, LiveResult<String>> {
        ready(Ok(tenant_fingerprint(&self.lock().tenant_active)))
    }
    fn tenant_token(&self) -> BoxFuture<'_, LiveResult<Secret<String>>> {
        ready(Ok(Secret::new(self.lock().tenant_active.clone())))
    }
    fn server_time(&self) -> Option<OffsetDateTime> {
        Some(self.now())
    }
}

impl EnvironmentWrite for FakeEnv {
    fn create_api_token<'a>(
        &'a self,
        token: &'a NewApiToken,
    ) -> BoxFuture<'a, LiveResult<CreatedToken>> {
        ready(self.create(
            TokenKind::ApiToken,
            &token.name,
            token.expires,
            token.scopes.clone(),
            None,
            false,
        ))
    }
    fn update_api_token<'a>(
        &'a self,
        id: &'a TokenId,
        change: &'a ApiTokenChange,
    ) -> BoxFuture<'a, LiveResult<()>> {
        let mut s = self.lock();
        let now = s.now;
        let r = match s.tokens.get_mut(id) {
            Some(t) => {
                if let Some(n) = &change.name {
                    t.name = n.clone();
                    // Dynatrace bumps `modifiedDate` on a rename.
                    t.modified = Some(now);
                }
                if let Some(e) = change.enabled {
                    t.enabled = e;
                }
                if let Some(sc) = &change.scopes {
                    t.scopes = sc.clone();
                }
                Ok(())
            }
            None => Err(self.status("PUT", "/api/v2/apiTokens/x", 404, "not found")),
        };
        ready(r)
    }
    fn delete_api_token<'a>(&'a self, id: &'a TokenId) -> BoxFuture<'a, LiveResult<Deletion>> {
        ready(self.delete(TokenKind::ApiToken, id))
    }
    fn create_activegate_token<'a>(
        &'a self,
        token: &'a NewActiveGateToken,
    ) -> BoxFuture<'a, LiveResult<CreatedToken>> {
        ready(self.create(
            TokenKind::ActivegateToken,
            &token.name,
            token.expires,
            tokensmith::model::ScopeSet::new(),
            Some(token.activegate_type),
            token.seed,
        ))
    }
    fn delete_activegate_token<'a>(
        &'a self,
        id: &'a TokenId,
    ) -> BoxFuture<'a, LiveResult<Deletion>> {
        ready(self.delete(TokenKind::ActivegateToken, id))
    }
    fn start_tenant_rotation(&self) -> BoxFuture<'_, LiveResult<TenantTokens>> {
        ready(self.rotate("start"))
    }
    fn finish_tenant_rotation(&self) -> BoxFuture<'_, LiveResult<TenantTokens>> {
        ready(self.rotate("finish"))
    }
    fn cancel_tenant_rotation(&self) -> BoxFuture<'_, LiveResult<TenantTokens>> {
        ready(self.rotate("cancel"))
    }
}

/// The real deliverer with a switch that fails deliveries to chosen targets.
pub struct FaultyDeliver {
    pub inner: Deliverer,
    pub fail: Mutex<BTreeSet<TargetAddress>>,
}

impl FaultyDeliver {
    pub fn fail(&self, address: TargetAddress) {
        self.fail.lock().unwrap().insert(address);
    }
    pub fn heal(&self) {
        self.fail.lock().unwrap().clear();
    }
}

impl Deliver for FaultyDeliver {
    fn read_holder<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Holder> {
        self.inner.read_holder(target).boxed()
    }
    fn deliver<'a>(
        &'a self,
        target: &'a Target,
        value: &'a Secret<String>,
        record: &'a Record,
    ) -> BoxFuture<'a, Result<Delivered, DeliverError>> {
        if self.fail.lock().unwrap().contains(&target.address()) {
            return ready(Err(DeliverError::Content {
                address: target.address(),
                reason: "injected delivery failure".into(),
            }));
        }
        self.inner.deliver(target, value, record).boxed()
    }
    fn verify<'a>(
        &'a self,
        target: &'a Target,
        record: &'a Record,
    ) -> BoxFuture<'a, Result<Verified, DeliverError>> {
        self.inner.verify(target, record).boxed()
    }
    fn read_value<'a>(
        &'a self,
        target: &'a Target,
    ) -> BoxFuture<'a, Result<Option<Secret<String>>, DeliverError>> {
        self.inner.read_value(target).boxed()
    }
}

/// A desired state, one fake environment `prod`, real file targets in a temporary directory,
/// and every journal line written so far.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub fake: Arc<FakeEnv>,
    /// The account `acc` (platform tokens).
    pub account: Arc<FakeAccount>,
    pub deliver: Arc<FaultyDeliver>,
    pub desired: Desired,
    pub journal: std::path::PathBuf,
}

impl Harness {
    /// `build` gets the directory for target files and returns the desired state.
    pub fn new(build: impl FnOnce(&std::path::Path) -> Desired) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let desired = build(dir.path());
        let fake = FakeEnv::new("prod", plan::testing::t0());
        let deliver = Arc::new(FaultyDeliver {
            inner: Deliverer::new(DeliveryContext::new(dir.path())),
            fail: Mutex::new(BTreeSet::new()),
        });
        let journal = dir.path().join(".tokensmith/journal.jsonl");
        let account = FakeAccount::new("acc", fake.clone());
        Harness {
            dir,
            account,
            fake,
            deliver,
            desired,
            journal,
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    pub fn all_targets(&self) -> Vec<Target> {
        let mut v: Vec<Target> = self
            .desired
            .tokens
            .iter()
            .flat_map(|t| t.deliver.clone())
            .collect();
        for t in &self.desired.tenant_tokens {
            v.extend(t.activegates.iter().cloned());
            v.extend(t.oneagents.iter().cloned());
        }
        v
    }

    pub async fn snapshots(&self) -> (LiveSnapshot, TargetSnapshot) {
        let mut live = LiveSnapshot::default();
        live.environments
            .insert(EnvName::new("prod"), self.fake.snapshot());
        if self.desired.accounts.contains_key("acc") {
            live.accounts.insert("acc".into(), self.account.snapshot());
        }
        let targets =
            tokensmith::deliver::read_all(self.deliver.as_ref(), &self.all_targets(), 4).await;
        (live, targets)
    }

    pub async fn plan(&self) -> Plan {
        let (live, targets) = self.snapshots().await;
        let opts = PlanOptions {
            spec_hash: "spec".into(),
            ..PlanOptions::default()
        };
        plan::plan(&self.desired, &live, &targets, self.fake.now(), &opts)
            .expect("the plan is computed")
    }

    pub fn env(&self) -> ApplyEnv {
        let fake = self.fake.clone();
        ApplyEnv::new(
            self.deliver.clone(),
            TargetIndex::from_desired(&self.desired),
        )
        .with_environment(EnvName::new("prod"), self.fake.clone())
        .with_account("acc".into(), self.account.clone())
        .with_clock(Arc::new(move || fake.now()))
    }

    pub async fn apply(&self, plan: &Plan) -> ApplyReport {
        let opts = ApplyOptions {
            concurrency: 3,
            exec_concurrency: 3,
            journal: Some(self.journal.clone()),
            start_steps_until: None,
        };
        apply::execute(plan, &self.env(), &opts, &mut NoProgress)
            .await
            .expect("the plan is applied")
    }

    /// Plan and apply until the plan is empty (at most `rounds` applies); returns the number of
    /// applies it took. Checks the invariants after each.
    pub async fn converge(&self, rounds: usize) -> usize {
        for round in 0..=rounds {
            let p = self.plan().await;
            if !p.has_changes() {
                return round;
            }
            assert!(
                round < rounds,
                "no convergence after {rounds} applies; plan: {:#?}",
                p.steps
            );
            let report = self.apply(&p).await;
            assert!(!report.has_failures(), "recovery apply failed: {report:#?}");
            self.check_invariants().await;
        }
        unreachable!()
    }

    pub fn journal_text(&self) -> String {
        std::fs::read_to_string(&self.journal).unwrap_or_default()
    }

    /// DESIGN.md invariants 1–3 on the current state (4 is what [`Harness::converge`] checks):
    /// 1. every token a readable target holds is live and enabled (expiry is time passing, not
    ///    something the applier does; tests that keep up with rotations check it themselves);
    /// 2. no two live tokens carry the same marker;
    /// 3. no secret the fake minted appears in the journal.
    pub async fn check_invariants(&self) {
        let (live, targets) = self.snapshots().await;
        let env = &live.environments[&EnvName::new("prod")];
        let platform = live
            .accounts
            .get("acc")
            .map(|a| a.platform_tokens.clone())
            .unwrap_or_default();
        let tokens: Vec<&LiveToken> = env
            .api_tokens
            .iter()
            .chain(&env.activegate_tokens)
            .chain(&platform)
            .collect();
        for (address, holder) in &targets.holders {
            if let Holder::Token { id, .. } = holder {
                let t = tokens
                    .iter()
                    .find(|t| &t.id == id)
                    .unwrap_or_else(|| panic!("{address} holds {id}, which was deleted"));
                assert!(t.enabled, "{address} holds {id}, which was disabled");
            }
        }
        let mut markers = BTreeSet::new();
        for t in &tokens {
            if let Some(m) = Marker::parse_name(&t.name) {
                assert!(
                    markers.insert(m.clone()),
                    "two live tokens carry marker {m}"
                );
            }
        }
        let journal = self.journal_text();
        let mut minted = self.fake.lock().minted.clone();
        minted.extend(self.account.lock().minted.iter().cloned());
        for secret in &minted {
            assert!(
                !journal.contains(secret.as_str()),
                "the journal contains a secret"
            );
            if let Some((_, tail)) = secret.rsplit_once('.') {
                assert!(
                    !journal.contains(tail),
                    "the journal contains a secret part"
                );
            }
        }
    }
}

/// One in-memory account with platform tokens.
pub struct FakeAccount {
    name: String,
    pub state: Mutex<AccountState>,
    clock: Arc<FakeEnv>,
}

#[derive(Debug, Default)]
pub struct AccountState {
    pub tokens: BTreeMap<TokenId, LiveToken>,
    pub secrets: BTreeMap<TokenId, String>,
    pub minted: Vec<String>,
    pub ambiguous_commits: u32,
    pub deleted: Vec<TokenId>,
    counter: u64,
}

impl FakeAccount {
    /// An account whose clock is the environment's.
    pub fn new(name: &str, clock: Arc<FakeEnv>) -> Arc<FakeAccount> {
        Arc::new(FakeAccount {
            name: name.to_owned(),
            state: Mutex::new(AccountState::default()),
            clock,
        })
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, AccountState> {
        self.state.lock().unwrap()
    }

    pub fn snapshot(&self) -> tokensmith::model::LiveAccount {
        tokensmith::model::LiveAccount {
            platform_tokens: self.lock().tokens.values().cloned().collect(),
            server_time: None,
        }
    }

    fn label(&self, method: &str) -> Box<RequestLabel> {
        Box::new(RequestLabel {
            subject: Subject::Account(self.name.clone()),
            method: method.into(),
            path: "/iam/v1/accounts/x/platform-tokens".into(),
        })
    }
}

impl tokensmith::live::AccountRead for FakeAccount {
    fn name(&self) -> &str {
        &self.name
    }
    fn list_platform_tokens(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>> {
        ready(Ok(self.snapshot().platform_tokens))
    }
}

impl tokensmith::live::AccountWrite for FakeAccount {
    fn create_platform_token<'a>(
        &'a self,
        token: &'a tokensmith::live::NewPlatformToken,
    ) -> BoxFuture<'a, LiveResult<CreatedToken>> {
        let now = self.clock.now();
        let mut s = self.lock();
        s.counter += 1;
        let id = TokenId::new(format!("dt0s16.P{:04}{}", s.counter, random_upper(8)));
        let secret = format!("{id}.{}", random_upper(64));
        s.tokens.insert(
            id.clone(),
            LiveToken {
                kind: TokenKind::PlatformToken,
                id: id.clone(),
                name: token.name.clone(),
                enabled: true,
                owner: token.owner.clone(),
                personal_access_token: false,
                created: Some(now),
                modified: None,
                expires: token.expires,
                last_used: None,
                last_used_from: None,
                scopes: token.scopes.clone(),
                activegate_type: None,
                seed: false,
                resources: token.resources.clone(),
            },
        );
        s.minted.push(secret.clone());
        s.secrets.insert(id.clone(), secret.clone());
        if s.ambiguous_commits > 0 {
            s.ambiguous_commits -= 1;
            return ready(Err(LiveError::Ambiguous {
                request: self.label("POST"),
                reason: "timed out".into(),
            }));
        }
        ready(Ok(CreatedToken {
            id,
            secret: Secret::new(secret),
            expires: token.expires,
        }))
    }
    fn delete_platform_token<'a>(&'a self, id: &'a TokenId) -> BoxFuture<'a, LiveResult<Deletion>> {
        let mut s = self.lock();
        let r = if s.tokens.remove(id).is_some() {
            s.deleted.push(id.clone());
            Deletion::Deleted
        } else {
            Deletion::AlreadyGone
        };
        ready(Ok(r))
    }
    fn set_platform_token_expiration<'a>(
        &'a self,
        id: &'a TokenId,
        expires: Option<OffsetDateTime>,
    ) -> BoxFuture<'a, LiveResult<()>> {
        if let Some(t) = self.lock().tokens.get_mut(id) {
            t.expires = expires;
        }
        ready(Ok(()))
    }
    fn set_platform_token_status<'a>(
        &'a self,
        id: &'a TokenId,
        enabled: bool,
    ) -> BoxFuture<'a, LiveResult<()>> {
        let mut s = self.lock();
        let r = match s.tokens.get_mut(id) {
            Some(t) => {
                t.enabled = enabled;
                Ok(())
            }
            None => Err(LiveError::Status {
                request: self.label("PUT"),
                status: 404,
                message: "not found".into(),
                violations: Vec::new(),
                attempts: 1,
            }),
        };
        ready(r)
    }
}

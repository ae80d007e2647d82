//! The state one apply run shares between its steps, and the plumbing every step kind uses:
//! the journal note, warnings, the management token lookup (once per environment and run), the
//! refusal to touch that token, and reading what a key's targets hold.
//!
//! Not here: what a step does (the step files beside this one) and the scheduling (`execute`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use time::OffsetDateTime;

use super::super::env::ApplyEnv;
use super::super::journal::{Journal, JournalEntry};
use super::error::StepError;
use super::token_api::TokenApi;
use crate::live::LiveResult;
use crate::model::{EnvName, Holder, Home, Secret, Target, TargetAddress, TokenId};
use crate::plan::{Step, StepId};

/// What a successful step reports.
#[derive(Debug)]
pub(crate) struct Done {
    /// False when live state already was what the step wanted.
    pub changed: bool,
    pub token: Option<TokenId>,
    pub detail: String,
}

impl Done {
    pub(super) fn changed(token: Option<TokenId>, detail: impl Into<String>) -> Done {
        Done {
            changed: true,
            token,
            detail: detail.into(),
        }
    }

    pub(super) fn already(token: Option<TokenId>, detail: impl Into<String>) -> Done {
        Done {
            changed: false,
            token,
            detail: detail.into(),
        }
    }
}

/// What a step returns.
pub(crate) type StepResult = Result<Done, StepError>;

/// The token a create step produced (or found), for the deliveries that follow it.
pub(crate) struct Produced {
    pub token: TokenId,
    /// The value, when this run created the token; otherwise it is copied from a target.
    pub secret: Option<Secret<String>>,
    /// When the token expires, if it does: recorded next to the value in every target.
    pub expires: Option<OffsetDateTime>,
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
    /// Environments whose rotation record got its `sent` note in this run (see `tenant`).
    pub(super) tenant_sent: tokio::sync::Mutex<HashSet<EnvName>>,
    callers: tokio::sync::Mutex<HashMap<EnvName, Option<TokenId>>>,
    pub warnings: Mutex<Vec<String>>,
}

/// Lock a mutex of the run, also after a panicking holder (the data stays usable).
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
            tenant_sent: tokio::sync::Mutex::new(HashSet::new()),
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
    pub(super) fn note(&self, step: &Step, token: Option<&TokenId>, detail: String) {
        let mut e = self.entry("note");
        e.step = Some(step.id.clone());
        e.verb = Some(step.action.verb().to_owned());
        e.token = token.cloned();
        e.detail = Some(detail);
        self.journal.write(&e);
    }

    pub(super) fn warn(&self, message: String) {
        lock(&self.warnings).push(message);
    }

    /// The API that holds the tokens of the step's home and kind.
    pub(super) fn token_api(&self, step: &Step) -> LiveResult<TokenApi<'a>> {
        TokenApi::of(self.env, &step.home, step.kind)
    }

    /// The management token of an environment, looked up once per run.
    pub(super) async fn caller(&self, env: &EnvName) -> Result<Option<TokenId>, StepError> {
        let mut callers = self.callers.lock().await;
        if let Some(c) = callers.get(env) {
            return Ok(c.clone());
        }
        let client = TokenApi::environment_of(self.env, &Home::Environment(env.clone()))?;
        let caller = client.caller_id().await.map_err(StepError::CallerUnknown)?;
        callers.insert(env.clone(), caller.clone());
        Ok(caller)
    }

    /// Refuse to `verb` the management token of the step's environment.
    pub(super) async fn refuse_caller(
        &self,
        step: &Step,
        token: &TokenId,
        verb: &'static str,
    ) -> Result<(), StepError> {
        if let Some(env) = step.environment() {
            if self.caller(env).await?.as_ref() == Some(token) {
                return Err(StepError::ManagementToken {
                    verb,
                    token: token.clone(),
                    env: env.clone(),
                });
            }
        }
        Ok(())
    }

    /// What the targets of a key hold, by address.
    pub(crate) async fn holders(&self, targets: &[Target]) -> Vec<(TargetAddress, Holder)> {
        let d = self.env.deliverer();
        let reads = targets
            .iter()
            .map(|t| async move { (t.address(), d.read_holder(t).await) });
        futures::future::join_all(reads).await
    }

    /// The spec's targets of the step's token key (none for unmanaged and tenant tokens).
    pub(crate) fn key_targets(&self, step: &Step) -> &'a [Target] {
        match &step.key {
            Some(key) => self.env.targets().of_key(&step.home, step.kind, key),
            None => &[],
        }
    }
}

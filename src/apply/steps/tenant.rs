//! The tenant token steps: start, finish and cancel a rotation, and the rotation record
//! (`plan::tenant_record`) they keep in the environment.
//!
//! - `tenant_start` creates the record (a disabled API token; its secret is dropped at once)
//!   **before** `start`, reusing one an earlier run of this plan left (the planner deletes stale
//!   ones first), so a crash right after `start` still leaves the rotation visible to the next
//!   runner. "A rotation is already running" continues with the active tenant token (a rotation
//!   started outside tokensmith is recorded and finished like its own).
//! - `tenant_finish` re-reads every readable target first and refuses while one still holds
//!   another tenant token; then finishes and deletes the record **after** Dynatrace answered.
//!   "No rotation is running" counts as finished.
//! - `tenant_cancel` cancels and then deletes the record; "no rotation is running" counts as
//!   cancelled.
//! - Notes on the record: `sent` before the first delivery to a target that cannot be read back
//!   (from then on cancelling could disconnect it), and after the run `wo=<digest>@<time>` when
//!   every write-only target's command succeeded in this rotation.
//!
//! Dynatrace's answers are recognised by their [`ApiFailure`] kind, never by message text.
//!
//! Not here: delivering the tenant token (`deliver`), deciding to rotate (`plan::tenant`).

use std::collections::BTreeSet;

use super::error::StepError;
use super::run::{lock, Done, Run, StepResult};
use super::token_api::TokenApi;
use crate::live::{ApiFailure, ApiTokenChange, EnvironmentApi, NewApiToken};
use crate::model::target::tenant_fingerprint;
use crate::model::{EnvName, Holder, Home, Target, TargetAddress};
use crate::plan::tenant_record::{
    self, note_time, record_scope, write_only_digest, RecordNotes, RotationRecord,
};
use crate::plan::Step;

impl Run<'_> {
    fn tenant_api(&self, env: &EnvName) -> Result<&dyn EnvironmentApi, StepError> {
        Ok(TokenApi::environment_of(
            self.env,
            &Home::Environment(env.clone()),
        )?)
    }

    /// The rotation records of an environment, oldest first.
    async fn tenant_records(&self, env: &EnvName) -> Result<Vec<RotationRecord>, StepError> {
        let tokens = self
            .tenant_api(env)?
            .list_api_tokens()
            .await
            .map_err(|source| StepError::TenantRecord {
                env: env.clone(),
                cause: source,
            })?;
        Ok(tenant_record::records(&tokens))
    }

    /// Make sure the environment holds a rotation record (disabled), creating one if needed.
    async fn ensure_tenant_record(&self, env: &EnvName) -> Result<(), StepError> {
        let api = self.tenant_api(env)?;
        let record_error = |source| StepError::TenantRecord {
            env: env.clone(),
            cause: source,
        };
        let id = match self.tenant_records(env).await?.into_iter().next() {
            Some(r) if !r.enabled => return Ok(()),
            Some(r) => r.id,
            None => {
                let created = api
                    .create_api_token(&NewApiToken {
                        name: RecordNotes::default().name(),
                        scopes: std::iter::once(record_scope()).collect(),
                        expires: None,
                        personal_access_token: false,
                    })
                    .await
                    .map_err(record_error)?;
                // The record is a marker, not a credential: its value is dropped here.
                drop(created.secret);
                created.id
            }
        };
        let disable = ApiTokenChange {
            enabled: Some(false),
            ..ApiTokenChange::default()
        };
        api.update_api_token(&id, &disable)
            .await
            .map_err(record_error)
    }

    /// Delete every rotation record of an environment (after finish or cancel).
    async fn delete_tenant_records(&self, env: &EnvName) -> Result<usize, StepError> {
        let api = TokenApi::Api(self.tenant_api(env)?);
        let mut deleted = 0;
        for r in self.tenant_records(env).await? {
            api.delete(&r.id)
                .await
                .map_err(|source| StepError::TenantRecord {
                    env: env.clone(),
                    cause: source,
                })?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Rename the record of an open rotation to carry `notes` (no record: nothing to note).
    async fn note_tenant_record(
        &self,
        env: &EnvName,
        change: impl Fn(&mut RecordNotes),
    ) -> Result<(), StepError> {
        let Some(record) = self.tenant_records(env).await?.into_iter().next() else {
            return Ok(());
        };
        let mut notes = record.notes.clone();
        change(&mut notes);
        if notes == record.notes {
            return Ok(());
        }
        let rename = ApiTokenChange {
            name: Some(notes.name()),
            ..ApiTokenChange::default()
        };
        self.tenant_api(env)?
            .update_api_token(&record.id, &rename)
            .await
            .map_err(|source| StepError::TenantRecord {
                env: env.clone(),
                cause: source,
            })
    }

    /// Note on the record, once per run, that a delivery to a target that cannot be read back
    /// is about to happen: from then on the new token may be in use where no read shows it.
    pub(super) async fn note_tenant_sent(&self, env: &EnvName) -> Result<(), StepError> {
        let mut sent = self.tenant_sent.lock().await;
        if sent.contains(env) {
            return Ok(());
        }
        self.note_tenant_record(env, |n| n.sent = true).await?;
        sent.insert(env.clone());
        Ok(())
    }

    /// Whether this run noted a delivery to a target that cannot be read back.
    pub(crate) async fn tenant_sent_in_run(&self, env: &EnvName) -> bool {
        self.tenant_sent.lock().await.contains(env)
    }

    /// After the steps: for each environment whose write-only tenant targets all received the
    /// active tenant token in this run, note it on the record (`wo=<digest>@<time>`), so later
    /// runs count them as confirmed. Failures become warnings (the next run delivers again).
    pub(crate) async fn note_write_only_confirmed(&self) {
        let envs: BTreeSet<EnvName> = lock(&self.deliveries)
            .iter()
            .filter(|d| d.holds.starts_with("tenant:"))
            .filter_map(|d| match &d.home {
                Home::Environment(e) => Some(e.clone()),
                Home::Account(_) => None,
            })
            .collect();
        for env in envs {
            if let Err(e) = self.note_write_only_of(&env).await {
                self.warn(format!(
                    "cannot note the write-only tenant targets of `{env}` as confirmed ({e}); the next apply delivers to them again"
                ));
            }
        }
    }

    async fn note_write_only_of(&self, env: &EnvName) -> Result<(), StepError> {
        // Write-only by configuration (an exec target without `read_command`): no command runs
        // again for this. A target that was merely unreadable when planned is in the planner's
        // set but not here, so the digests differ and it is delivered again: never a false
        // confirmation.
        let write_only: Vec<TargetAddress> = self
            .env
            .targets()
            .of_tenant(env)
            .iter()
            .filter(|t| match t {
                Target::Exec(e) => e.read_command.as_ref().is_none_or(|c| c.is_empty()),
                _ => false,
            })
            .map(Target::address)
            .collect();
        if write_only.is_empty() {
            return Ok(());
        }
        let active = self
            .tenant_api(env)?
            .tenant_token()
            .await
            .map_err(StepError::ReadTenantToken)?;
        let holds = format!("tenant:{}", tenant_fingerprint(active.expose()));
        let home = Home::Environment(env.clone());
        let delivered: BTreeSet<TargetAddress> = lock(&self.deliveries)
            .iter()
            .filter(|d| d.home == home && d.holds == holds)
            .map(|d| d.address.clone())
            .collect();
        if !write_only.iter().all(|a| delivered.contains(a)) {
            return Ok(());
        }
        let digest = write_only_digest(&write_only);
        let at = note_time(self.env.now_for(&home));
        self.note_tenant_record(env, |n| {
            if !n.confirms(&digest) {
                n.write_only = Some((digest.clone(), at.clone()));
            }
        })
        .await
    }

    /// Cancel the tenant rotation of an environment and delete its record (clean-up of this
    /// run's own start).
    pub(crate) async fn cancel_tenant(&self, home: &Home) -> Result<(), StepError> {
        let Home::Environment(env) = home else {
            return Err(StepError::TenantOutsideEnvironment);
        };
        match self.tenant_api(env)?.cancel_tenant_rotation().await {
            Ok(_) => {}
            Err(e) if e.failure() == ApiFailure::NoRotationRunning => {}
            Err(e) => return Err(e.into()),
        }
        self.delete_tenant_records(env).await?;
        Ok(())
    }

    pub(super) async fn tenant_start(&self, step: &Step) -> StepResult {
        let env = step
            .environment()
            .ok_or(StepError::TenantOutsideEnvironment)?
            .clone();
        if let Some(done) = self.rotated_since_plan(step, &env).await {
            return Ok(done);
        }
        self.ensure_tenant_record(&env).await?;
        match self.tenant_api(&env)?.start_tenant_rotation().await {
            Ok(tokens) => {
                let fingerprint = tokens.active_fingerprint();
                lock(&self.tenant_started).insert(env, tokens.active);
                Ok(Done::changed(
                    None,
                    format!("started a tenant token rotation; new tenant token {fingerprint}; both stay valid until finish"),
                ))
            }
            Err(e) if e.failure() == ApiFailure::RotationAlreadyRunning => Ok(Done::already(
                None,
                "a tenant token rotation is already in progress; recorded it and continuing with the active tenant token",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a target already holds the active tenant token written after the plan was made:
    /// then the rotation the plan asks for happened (an earlier run of this plan), and starting
    /// another one would rotate twice.
    async fn rotated_since_plan(&self, step: &Step, env: &EnvName) -> Option<Done> {
        let active = TokenApi::environment_of(self.env, &step.home)
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

    pub(super) async fn tenant_finish(&self, step: &Step) -> StepResult {
        let env = step
            .environment()
            .ok_or(StepError::TenantOutsideEnvironment)?
            .clone();
        let api = self.tenant_api(&env)?;
        // Invariant 1: never while a readable target still holds the old token.
        let active = api
            .tenant_token()
            .await
            .map_err(StepError::ReadTenantToken)?;
        let active = tenant_fingerprint(active.expose());
        for (address, holder) in self.holders(self.env.targets().of_tenant(&env)).await {
            if let Holder::TenantToken { fingerprint, .. } = holder {
                if fingerprint != active {
                    return Err(StepError::TenantNotConfirmed {
                        env,
                        address,
                        held: fingerprint,
                        active,
                    });
                }
            }
        }
        let finished = match api.finish_tenant_rotation().await {
            Ok(_) => true,
            Err(e) if e.failure() == ApiFailure::NoRotationRunning => false,
            Err(e) => return Err(e.into()),
        };
        self.delete_tenant_records(&env).await?;
        Ok(if finished {
            Done::changed(
                None,
                "finished the tenant token rotation; the old tenant token no longer works",
            )
        } else {
            Done::already(None, "no tenant token rotation is ongoing")
        })
    }

    pub(super) async fn tenant_cancel(&self, step: &Step) -> StepResult {
        let env = step
            .environment()
            .ok_or(StepError::TenantOutsideEnvironment)?
            .clone();
        let cancelled = match self.tenant_api(&env)?.cancel_tenant_rotation().await {
            Ok(_) => true,
            Err(e) if e.failure() == ApiFailure::NoRotationRunning => false,
            Err(e) => return Err(e.into()),
        };
        self.delete_tenant_records(&env).await?;
        Ok(if cancelled {
            Done::changed(
                None,
                "cancelled the tenant token rotation; the old tenant token stays valid",
            )
        } else {
            Done::already(None, "no tenant token rotation is ongoing")
        })
    }
}

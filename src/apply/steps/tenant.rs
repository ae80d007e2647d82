//! The tenant token steps: start and finish a rotation, and the cancel the clean-up uses.
//!
//! "A rotation is already running" on start continues with the active tenant token; "no
//! rotation is running" on finish or cancel is done (REFERENCE.md §6). Both are recognised by
//! their [`ApiFailure`] kind. A start is skipped when the targets already received an active
//! tenant token after the plan was made (an earlier run of this plan rotated).
//!
//! Not here: delivering the tenant token (`deliver`), deciding to rotate (`plan::tenant`).

use super::error::StepError;
use super::run::{lock, Done, Run, StepResult};
use super::token_api::TokenApi;
use crate::live::ApiFailure;
use crate::model::target::tenant_fingerprint;
use crate::model::{EnvName, Holder, Home};
use crate::plan::Step;

impl Run<'_> {
    /// Cancel the tenant rotation of an environment (clean-up of this run's own start).
    pub(crate) async fn cancel_tenant(&self, home: &Home) -> Result<(), StepError> {
        match TokenApi::environment_of(self.env, home)?
            .cancel_tenant_rotation()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.failure() == ApiFailure::NoRotationRunning => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn tenant_start(&self, step: &Step) -> StepResult {
        let env = step
            .environment()
            .ok_or(StepError::TenantOutsideEnvironment)?
            .clone();
        if let Some(done) = self.rotated_since_plan(step, &env).await {
            return Ok(done);
        }
        match TokenApi::environment_of(self.env, &step.home)?
            .start_tenant_rotation()
            .await
        {
            Ok(tokens) => {
                let fingerprint = tokens.active_fingerprint();
                lock(&self.tenant_started).insert(env, tokens.active);
                Ok(Done::changed(
                    None,
                    format!("started a tenant token rotation; new tenant token {fingerprint}"),
                ))
            }
            Err(e) if e.failure() == ApiFailure::RotationAlreadyRunning => Ok(Done::already(
                None,
                "a tenant token rotation is already in progress; continuing with the active tenant token",
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
        match TokenApi::environment_of(self.env, &step.home)?
            .finish_tenant_rotation()
            .await
        {
            Ok(_) => Ok(Done::changed(
                None,
                "finished the tenant token rotation; the old tenant token no longer works",
            )),
            Err(e) if e.failure() == ApiFailure::NoRotationRunning => {
                Ok(Done::already(None, "no tenant token rotation is ongoing"))
            }
            Err(e) => Err(e.into()),
        }
    }
}

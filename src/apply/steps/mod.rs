//! One step at a time: each step re-reads what it is about to change and acts only when live
//! state still needs it, so a step that already happened (an earlier run, a re-run of the same
//! plan) is reported as already done instead of being repeated.
//!
//! One file per kind of step, each with the rules it keeps:
//! - `create`: look for the step's marker first; never two tokens with one
//!   marker (DESIGN.md invariant 2), also after a create whose outcome is unknown.
//! - `deliver`: read the target first; the value comes from this run's
//!   create, from a target that holds it, or from `connectioninfo` (tenant).
//! - `retire`: disable or delete, never the management token, never while a
//!   target holds the token or cannot be read (invariant 1); 404 means done.
//! - `update`: update and adopt compare the live fields first.
//! - `tenant`: "already running" on start continues, "no rotation running" on
//!   finish is done.
//!
//! Shared plumbing: [`Run`] (the run's state, the management token lookup, target reads) in
//! `run`, `StepError` (why a step failed, typed; Dynatrace's part stays a `LiveError` and is
//! matched by its `ApiFailure` kind, never by message text) in `error`, and `TokenApi` (which
//! Dynatrace API holds the tokens of a (home, kind): decided once) in `token_api`.
//!
//! Not here: the order of the steps (`execute`) and the clean-up after them (`cleanup`).

mod create;
mod deliver;
mod error;
mod retire;
mod run;
mod tenant;
mod token_api;
mod update;

pub(crate) use error::StepError;
pub(crate) use run::{Run, StepResult};

use self::create::CreateRequest;
use self::retire::Retire;
use crate::plan::{Action, Step};

impl Run<'_> {
    /// Run one step.
    pub async fn run_step(&self, step: &Step) -> StepResult {
        match &step.action {
            Action::Create {
                name,
                scopes,
                expires_in,
                details,
                ..
            } => {
                let want = CreateRequest {
                    name,
                    scopes,
                    expires_in: *expires_in,
                    details,
                };
                self.create(step, want).await
            }
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
            Action::TenantCancel => self.tenant_cancel(step).await,
        }
    }
}

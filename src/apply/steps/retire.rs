//! The disable and delete steps, and the delete the clean-up uses.
//!
//! Never the management token. Before revoking, every target of the token's key is re-read;
//! while one holds the token or cannot be read, the step refuses (DESIGN.md invariant 1). A
//! token that is already gone (404) counts as done. ActiveGate tokens cannot be disabled, only
//! deleted; an API token's disable carries the rename the plan asks for.
//!
//! Not here: deciding when a token is retired (`plan::retire`).

use super::error::StepError;
use super::run::{Done, Run, StepResult};
use super::token_api::TokenApi;
use crate::live::{ApiFailure, ApiTokenChange, Deletion};
use crate::model::{Holder, TokenId};
use crate::plan::Step;

/// How a token is retired.
#[derive(Debug, Clone, Copy)]
pub(super) enum Retire<'a> {
    /// Disable, renaming it at the same time when a name is given (API tokens).
    Disable(Option<&'a str>),
    Delete,
}

impl Run<'_> {
    /// Delete a token of the kind and home of `step` (clean-up of this run's own tokens).
    pub(crate) async fn delete_token_of(
        &self,
        step: &Step,
        id: &TokenId,
    ) -> Result<Deletion, StepError> {
        self.refuse_caller(step, id, "delete").await?;
        Ok(self.token_api(step)?.delete(id).await?)
    }

    pub(super) async fn retire(&self, step: &Step, token: &TokenId, how: Retire<'_>) -> StepResult {
        let (delete, rename) = match how {
            Retire::Delete => (true, None),
            Retire::Disable(rename) => (false, rename),
        };
        let verb = if delete { "delete" } else { "disable" };
        self.refuse_caller(step, token, verb).await?;
        for (address, holder) in self.holders(self.key_targets(step)).await {
            match holder {
                Holder::Token { id, .. } if &id == token => {
                    return Err(StepError::StillHeld {
                        verb,
                        token: token.clone(),
                        address,
                    })
                }
                Holder::Unreadable { reason } => {
                    return Err(StepError::TargetUnreadable {
                        verb,
                        token: token.clone(),
                        address,
                        reason,
                    })
                }
                _ => {}
            }
        }
        let gone = || {
            Ok(Done::already(
                Some(token.clone()),
                format!("{token} is already gone"),
            ))
        };
        if delete {
            return match self.token_api(step)?.delete(token).await? {
                Deletion::Deleted => Ok(Done::changed(
                    Some(token.clone()),
                    format!("deleted {token}"),
                )),
                Deletion::AlreadyGone => gone(),
            };
        }
        let result = match self.token_api(step)? {
            TokenApi::Platform(a) => a.set_platform_token_status(token, false).await,
            TokenApi::Api(c) => {
                let Some(current) = c.get_api_token(token).await? else {
                    return gone();
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
            TokenApi::ActiveGate(_) => return Err(StepError::CannotDisable { kind: step.kind }),
        };
        match result {
            Ok(()) => Ok(Done::changed(
                Some(token.clone()),
                format!("disabled {token}"),
            )),
            Err(e) if e.failure() == ApiFailure::NotFound => gone(),
            Err(e) => Err(e.into()),
        }
    }
}

//! The update and adopt steps of API tokens: compare the live fields first and change only
//! what differs, so a repeated step is reported as already done. Narrowing the scopes of the
//! management token is refused (tokensmith would lock itself out).
//!
//! Not here: deciding what to change (`plan`).

use super::error::StepError;
use super::run::{Done, Run, StepResult};
use super::token_api::TokenApi;
use crate::live::{ApiTokenChange, EnvironmentApi};
use crate::model::{LiveToken, ScopeSet, TokenId};
use crate::plan::{Change, Step};

impl Run<'_> {
    /// The environment client of the step and the token as Dynatrace has it now.
    async fn live_api_token(
        &self,
        step: &Step,
        token: &TokenId,
    ) -> Result<(&dyn EnvironmentApi, LiveToken), StepError> {
        let client = TokenApi::environment_of(self.env, &step.home)?;
        let current = client
            .get_api_token(token)
            .await?
            .ok_or_else(|| StepError::TokenGone {
                token: token.clone(),
            })?;
        Ok((client, current))
    }

    pub(super) async fn update(
        &self,
        step: &Step,
        token: &TokenId,
        name: Option<&Change<String>>,
        scopes: Option<&Change<ScopeSet>>,
    ) -> StepResult {
        let (client, current) = self.live_api_token(step, token).await?;
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
        client.update_api_token(token, &change).await?;
        Ok(Done::changed(
            Some(token.clone()),
            format!("updated {token}"),
        ))
    }

    pub(super) async fn adopt(
        &self,
        step: &Step,
        token: &TokenId,
        name: &Change<String>,
    ) -> StepResult {
        let (client, current) = self.live_api_token(step, token).await?;
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
        client.update_api_token(token, &change).await?;
        Ok(Done::changed(
            Some(token.clone()),
            format!("adopted {token} as `{}`", name.to),
        ))
    }
}

//! The deliver step: read the target first and skip when it already holds the token, then
//! write and read back.
//!
//! The value comes from the create step of this run, from another target of the key that holds
//! it (Dynatrace shows a value only once), or, for the tenant token, from the rotation this run
//! started or from `connectioninfo`.
//!
//! Not here: how a target is written and read (`deliver`), the clean-up after deliveries that
//! failed (`apply::cleanup`).

use super::error::StepError;
use super::run::{lock, Delivery, Done, Run, StepResult};
use super::token_api::TokenApi;
use crate::deliver::Record;
use crate::model::target::tenant_fingerprint;
use crate::model::{Holder, Secret, Target, TargetAddress, TokenId};
use crate::plan::{Step, TokenSource};
use time::OffsetDateTime;

impl Run<'_> {
    pub(super) async fn deliver(
        &self,
        step: &Step,
        source: &TokenSource,
        target: &Target,
    ) -> StepResult {
        match source {
            TokenSource::TenantToken => self.deliver_tenant(step, target).await,
            TokenSource::Created { step: from } => {
                let (id, secret, expires) = {
                    let produced = lock(&self.produced);
                    let p = produced
                        .get(from)
                        .ok_or_else(|| StepError::NotProduced { step: from.clone() })?;
                    (p.token.clone(), p.secret.clone(), p.expires)
                };
                self.deliver_token(step, target, &id, secret, expires, None)
                    .await
            }
            TokenSource::Existing { id, copy_from } => {
                self.deliver_token(step, target, id, None, None, Some(copy_from))
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
        expires: Option<OffsetDateTime>,
        copy_from: Option<&TargetAddress>,
    ) -> StepResult {
        let d = self.env.deliverer();
        let address = target.address();
        let holder = d.read_holder(target).await;
        if matches!(&holder, Holder::Token { id: held, .. } if held == id) {
            self.delivered(step, id.as_str().to_owned(), &address, false);
            return Ok(Done::already(
                Some(id.clone()),
                format!("{address} holds {id}"),
            ));
        }
        // The value and the expiry to record with it: the create step's (this run's create, or
        // the live token it found from an earlier run), else what the target the value is
        // copied from records (none when that record predates recorded expiries).
        let (value, expires) = match secret {
            Some(v) => (v, expires),
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
            None => {
                let (v, recorded) = self.copy_value(step, id, copy_from).await?;
                (v, expires.or(recorded))
            }
        };
        let record = Record::token(id.clone(), expires);
        self.write_and_verify(target, &value, &record).await?;
        self.delivered(step, id.as_str().to_owned(), &address, true);
        Ok(Done::changed(
            Some(id.clone()),
            format!("delivered {id} to {address}"),
        ))
    }

    /// The value of an existing token, read from a target that holds it: `copy_from` first,
    /// then any other target of the key that holds it; with the expiry that target records.
    async fn copy_value(
        &self,
        step: &Step,
        id: &TokenId,
        copy_from: Option<&TargetAddress>,
    ) -> Result<(Secret<String>, Option<OffsetDateTime>), StepError> {
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
            let expires = match d.read_holder(t).await {
                Holder::Token { id: held, expires } if &held == id => expires,
                _ => continue,
            };
            match d.read_value(t).await {
                Ok(Some(v)) => match TokenId::of_secret(v.expose()) {
                    Some(of_value) if &of_value != id => {
                        why.push(format!("{} holds {of_value}", t.address()));
                    }
                    _ => return Ok((v, expires)),
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
        Err(StepError::ValueUnavailable {
            token: id.clone(),
            why,
        })
    }

    async fn write_and_verify(
        &self,
        target: &Target,
        value: &Secret<String>,
        record: &Record,
    ) -> Result<(), StepError> {
        let d = self.env.deliverer();
        let delivered = d
            .deliver(target, value, record)
            .await
            .map_err(StepError::Deliver)?;
        for w in delivered.warnings {
            self.warn(w);
        }
        d.verify(target, record).await.map_err(StepError::Verify)?;
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
            .ok_or(StepError::TenantOutsideEnvironment)?
            .clone();
        let started = lock(&self.tenant_started).get(&env).cloned();
        let value = match started {
            Some(v) => v,
            None => TokenApi::environment_of(self.env, &step.home)?
                .tenant_token()
                .await
                .map_err(StepError::ReadTenantToken)?,
        };
        let fingerprint = tenant_fingerprint(value.expose());
        let holds = format!("tenant:{fingerprint}");
        let address = target.address();
        match self.env.deliverer().read_holder(target).await {
            Holder::TenantToken { fingerprint: f, .. } if f == fingerprint => {
                self.delivered(step, holds, &address, false);
                return Ok(Done::already(
                    None,
                    format!("{address} holds tenant token {fingerprint}"),
                ));
            }
            // No read will show what this target holds afterwards: note on the rotation record
            // that the new token may be in use (cancelling is no longer safe).
            Holder::WriteOnly | Holder::Unreadable { .. } => self.note_tenant_sent(&env).await?,
            // The operator fetches the token itself once its DynaKube is touched, maybe after
            // this run stopped waiting: cancelling would then leave it an invalid token.
            _ if matches!(target, Target::DynakubeTenant(_)) => self.note_tenant_sent(&env).await?,
            _ => {}
        }
        let record = Record::tenant(&value, self.env.now_for(&step.home));
        self.write_and_verify(target, &value, &record).await?;
        self.delivered(step, holds, &address, true);
        Ok(Done::changed(
            None,
            format!("delivered tenant token {fingerprint} to {address}"),
        ))
    }
}

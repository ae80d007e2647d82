//! The create step: look for the marker first, then create, so that a create is never repeated
//! blindly (DESIGN.md invariant 2: never two tokens with one marker).
//!
//! A live token with the step's marker that a target holds (or may hold: write-only or
//! unreadable targets, or it was used) is the result. One that no target holds is an orphan of
//! an interrupted run; its value is lost, so it is deleted before creating. A create whose
//! outcome is unknown ([`ApiFailure::AmbiguousWrite`]) is followed by a new look-up: a token that
//! appeared is one whose secret was lost, so it is deleted and the create repeated, at most
//! [`MAX_CREATE_ATTEMPTS`] times.
//!
//! Not here: delivering the value (`deliver`), the clean-up of a created token no target took
//! (`apply::cleanup`).

use std::collections::HashSet;

use time::OffsetDateTime;

use super::error::StepError;
use super::run::{lock, Done, Produced, Run, StepResult};
use super::token_api::{config_error, TokenApi};
use crate::live::{
    ApiFailure, CreatedToken, LiveResult, NewActiveGateToken, NewApiToken, NewPlatformToken,
};
use crate::model::{Holder, LiveToken, Marker, ScopeSet, SpecDuration, TokenDetails, TokenId};
use crate::plan::Step;

/// How often a create is tried when its outcome keeps being unknown.
pub(crate) const MAX_CREATE_ATTEMPTS: u32 = 3;

/// What a create step asks for.
pub(super) struct CreateRequest<'s> {
    pub name: &'s str,
    pub scopes: &'s ScopeSet,
    pub expires_in: Option<SpecDuration>,
    pub details: &'s TokenDetails,
}

impl Run<'_> {
    pub(super) async fn create(&self, step: &Step, want: CreateRequest<'_>) -> StepResult {
        let name = want.name;
        let marker = Marker::parse_name(name).ok_or_else(|| StepError::NoMarker {
            name: name.to_owned(),
        })?;
        let targets = self.key_targets(step);
        let mut seen: HashSet<TokenId> = HashSet::new();
        let mut first_look = true;
        for attempt in 1..=MAX_CREATE_ATTEMPTS {
            let existing = self.marked(step, &marker, first_look).await?;
            let holders = if existing.is_empty() {
                Vec::new()
            } else {
                self.holders(targets).await
            };
            let mut reuse: Option<&LiveToken> = None;
            for t in &existing {
                let held = holders
                    .iter()
                    .any(|(_, h)| matches!(h, Holder::Token { id, .. } if id == &t.id));
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
                        reuse = Some(t);
                    }
                    continue;
                }
                self.note(
                    step,
                    Some(&t.id),
                    format!("token {} carries marker {marker} but no target holds it; its value is lost, deleting it before creating", t.id),
                );
                self.token_api(step)?
                    .delete(&t.id)
                    .await
                    .map_err(|source| StepError::DeleteUndelivered {
                        token: t.id.clone(),
                        cause: source,
                    })?;
            }
            if first_look {
                seen.extend(existing.iter().map(|t| t.id.clone()));
            }
            first_look = false;
            if let Some(t) = reuse {
                let id = &t.id;
                lock(&self.produced).insert(
                    step.id.clone(),
                    Produced {
                        token: id.clone(),
                        secret: None,
                        expires: t.expires,
                    },
                );
                return Ok(Done::already(
                    Some(id.clone()),
                    format!("token {id} with marker {marker} exists"),
                ));
            }
            let now = self.env.now_for(&step.home);
            let expires = want.expires_in.map(|d| now + d.to_time());
            match self.create_call(step, &want, expires).await {
                Ok(created) => {
                    let id = created.id.clone();
                    lock(&self.minted).push((step.id.clone(), id.clone()));
                    lock(&self.produced).insert(
                        step.id.clone(),
                        Produced {
                            token: id.clone(),
                            secret: Some(created.secret),
                            expires: created.expires.or(expires),
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
                Err(e) if e.failure() == ApiFailure::AmbiguousWrite => {
                    self.note(
                        step,
                        None,
                        format!("create attempt {attempt} has an unknown outcome ({e}); looking for marker {marker} before trying again"),
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StepError::CreateOutcomeUnknown {
            marker,
            attempts: MAX_CREATE_ATTEMPTS,
        })
    }

    /// The live tokens of the step's home and kind that carry `marker`. The first look uses
    /// the snapshot the run read under its locks when there is one (nothing else changes this
    /// home's tokens meanwhile); after an ambiguous create it lists again.
    async fn marked(
        &self,
        step: &Step,
        marker: &Marker,
        first_look: bool,
    ) -> Result<Vec<LiveToken>, StepError> {
        let from_snapshot = if first_look {
            self.env.snapshot_tokens(&step.home, step.kind)
        } else {
            None
        };
        let tokens =
            match from_snapshot {
                Some(tokens) => tokens,
                None => self.token_api(step)?.list().await.map_err(|source| {
                    StepError::LookForMarker {
                        marker: marker.clone(),
                        cause: source,
                    }
                })?,
            };
        Ok(tokens
            .into_iter()
            .filter(|t| t.kind == step.kind && Marker::parse_name(&t.name).as_ref() == Some(marker))
            .collect())
    }

    /// The create call of the step's kind, with the kind's details.
    async fn create_call(
        &self,
        step: &Step,
        want: &CreateRequest<'_>,
        expires: Option<OffsetDateTime>,
    ) -> LiveResult<CreatedToken> {
        let name = want.name.to_owned();
        match (self.token_api(step)?, want.details) {
            (TokenApi::Platform(account), TokenDetails::Platform { resources, owner }) => {
                let new = NewPlatformToken {
                    name,
                    scopes: want.scopes.clone(),
                    resources: resources.clone(),
                    expires,
                    owner: owner.clone(),
                };
                account.create_platform_token(&new).await
            }
            (
                TokenApi::ActiveGate(c),
                TokenDetails::Activegate {
                    activegate_type,
                    seed,
                },
            ) => {
                let new = NewActiveGateToken {
                    name,
                    activegate_type: *activegate_type,
                    expires,
                    seed: *seed,
                };
                c.create_activegate_token(&new).await
            }
            (
                TokenApi::Api(c),
                TokenDetails::Api {
                    personal_access_token,
                    ..
                },
            ) => {
                let new = NewApiToken {
                    name,
                    scopes: want.scopes.clone(),
                    expires,
                    personal_access_token: *personal_access_token,
                };
                c.create_api_token(&new).await
            }
            _ => Err(config_error(
                &step.home,
                format!("a {} cannot be created with these details", step.kind),
            )),
        }
    }
}

use crate::model::encode::rfc3339;

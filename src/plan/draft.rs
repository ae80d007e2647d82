//! The plan while it is being assembled ([`Draft`]) and the pieces every planning pass shares:
//! the shape of a desired token's step ([`step`], its id [`prefix`]), the generation number of a
//! live token ([`generation_of`]), the platform-token creates waiting for the per-owner limit
//! ([`PlatformCreate`]) and the RFC 3339 form of timestamps in messages ([`rfc3339`]).
//!
//! It decides nothing: the planner (`planner`) and the passes it calls (`retire`, `prune`,
//! `tenant`, `guards`) push steps, forecast entries, warnings and checks into the draft, and the
//! planner turns it into a [`Plan`](super::Plan) at the end.

use std::collections::HashSet;

use time::OffsetDateTime;

use super::analysis::{home_label, TokenFacts};
use super::types::{
    Action, Check, ForecastEntry, OpenTenantRotation, Pending, Reason, Step, StepId, Warning,
};
use crate::model::{DesiredToken, Generation, Home, LiveToken, TokenId, TokenKey};

/// A plan being assembled.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub steps: Vec<Step>,
    pub forecast: Vec<ForecastEntry>,
    pub pending: Vec<Pending>,
    pub warnings: Vec<Warning>,
    pub checks: Vec<Check>,
    /// Open tenant token rotations (`plan::tenant`).
    pub tenant_rotations: Vec<OpenTenantRotation>,
    /// Platform token creates, checked against the per-owner limit at the end.
    pub platform_creates: Vec<PlatformCreate>,
    /// Current generations found expired, for `fail_on_expiry_within`.
    pub expired: Vec<(Home, TokenKey, TokenId, OffsetDateTime)>,
    /// Every step id pushed, to catch duplicates.
    ids: HashSet<StepId>,
}

impl Draft {
    pub fn push(&mut self, step: Step) -> StepId {
        let id = step.id.clone();
        let fresh = self.ids.insert(id.clone());
        debug_assert!(fresh, "duplicate step id {id}");
        self.steps.push(step);
        id
    }

    pub fn warn(&mut self, code: &str, message: String) {
        self.warnings.push(Warning {
            code: code.to_owned(),
            message,
        });
    }
}

/// A planned platform token create, with what to restore if the limit blocks it (see
/// `guards::enforce_platform_limit`).
#[derive(Debug)]
pub(crate) struct PlatformCreate {
    pub account: String,
    pub owner: Option<String>,
    pub key: TokenKey,
    pub step: StepId,
    /// The generation it replaces, whose pending revoke goes away with it.
    pub replaces: Option<TokenId>,
    /// The forecast entry of the current generation, if there is one.
    pub fallback: Option<ForecastEntry>,
}

pub(crate) use crate::model::encode::rfc3339;

/// The start of every step id of a desired token: `home/kind/key`.
pub(super) fn prefix(d: &DesiredToken) -> String {
    format!("{}/{}/{}", home_label(&d.home), d.kind, d.key)
}

/// A step of a desired token, with no dependencies and no note.
pub(super) fn step(d: &DesiredToken, id: String, reason: Reason, action: Action) -> Step {
    Step {
        id: StepId(id),
        depends_on: Vec::new(),
        home: d.home.clone(),
        kind: d.kind,
        key: Some(d.key.clone()),
        reason,
        action,
        note: None,
    }
}

/// The generation a live token carries in its marker, or the first generation when the token is
/// not one of the desired token's generations (an adopted token).
pub(super) fn generation_of(facts: &TokenFacts<'_>, token: &LiveToken) -> Generation {
    facts
        .generations
        .iter()
        .find(|(_, t)| t.id == token.id)
        .map(|(m, _)| m.generation)
        .unwrap_or(Generation::FIRST)
}

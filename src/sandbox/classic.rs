//! The lifecycle rules of classic API tokens that no single endpoint owns: Dynatrace deletes an
//! expired classic token 7 days after it expires, and an environment that opted into the last
//! stage of Dynatrace's upgrade path ("Phase 3", stage "API tokens") refuses to create them.
//!
//! Owns: [`purge_expired`] (run before every environment request, so the purge shows at the
//! first request after the 7 days, whatever it is) and [`refuse_create`] (run before
//! `POST /api/v2/apiTokens`). It does not own the token endpoints themselves (`api_tokens`).
//!
//! CHOICE (the reference and Dynatrace's docs are silent on the exact answer, see
//! dynatrace-2026-facts.md "Classic tokens"): a create in an environment with classic tokens
//! switched off answers **403** in the usual error envelope with the message
//! [`CLASSIC_CREATION_DISABLED`]. 403 is what Dynatrace answers when a call is not permitted for
//! reasons other than authentication, and the message names the stage so a client can tell it
//! from a missing scope.

use super::errors::ApiError;
use super::request::Call;
use super::state::State;
use crate::model::token::CLASSIC_PURGE_AFTER_EXPIRY;

/// The message of the 403 a create gets where classic tokens are switched off.
pub const CLASSIC_CREATION_DISABLED: &str = "Creating classic API tokens is disabled for this environment (upgrade stage \"API tokens\"). Use platform tokens instead.";

/// Delete the classic API tokens of the call's environment that expired at least
/// [`CLASSIC_PURGE_AFTER_EXPIRY`] ago; marks the call dirty when one went.
pub fn purge_expired(state: &mut State, call: &mut Call) {
    let now = call.now;
    let Some(env) = state.environments.get_mut(&call.env_id) else {
        return;
    };
    let kept = |t: &super::state::ApiTokenRecord| {
        t.expiration_date
            .is_none_or(|e| e.plus(CLASSIC_PURGE_AFTER_EXPIRY) > now)
    };
    // Look before touching: nearly always nothing is due, and a read-only pass over a large
    // environment is cheaper than `retain`'s mutable walk on every request.
    if env.api_tokens.values().all(kept) {
        return;
    }
    env.api_tokens.retain(|_, t| kept(t));
    call.dirty = true;
}

/// A 403 when the call's environment no longer allows creating classic API tokens.
pub fn refuse_create(state: &State, call: &Call) -> Result<(), ApiError> {
    match state.environments.get(&call.env_id) {
        Some(env) if env.classic_tokens_disabled => {
            Err(ApiError::new(403, CLASSIC_CREATION_DISABLED))
        }
        _ => Ok(()),
    }
}

//! Tenant tokens: the rotation state machine (`/api/v2/tenantTokenRotation/{start,finish,cancel}`)
//! and the Deployment API's `connectioninfo` calls that hand the active tenant token out.
//!
//! Owns: REFERENCE.md §6 and §8. The machine has two states, idle and rotating:
//! - idle → start: a new token becomes active, the old one stays valid; 200 `{active: NEW, old: OLD}`.
//! - rotating → finish: the old token stops being valid; 200 `{active: NEW, old: OLD}` (docs example).
//! - rotating → cancel: the new token is discarded, the old one is active again;
//!   200 `{active: OLD, old: {value: null}}` (as recorded from real servers; the 1.254 spec types
//!   `value` as a plain string, the fidelity test relaxes that).
//! - start while rotating, finish or cancel while idle: 400 with the spec's wording.
//! - `GET …/status`: `{"status": "ACTIVE"}` while rotating, else `INACTIVE` (newer versions;
//!   Dynatrace's JavaScript SDK 8.0.0). Its scope is not documented (UNCERTAIN); the sandbox
//!   asks for `tenantTokenRotation.write` like the other rotation calls. An environment seeded with
//!   `rotation_status_endpoint: false` (or switched by `/__sandbox/rotation-status`) answers 404
//!   like an older version or a Managed cluster.
//!
//! Mid-rotation `connectioninfo` returns the new (active) token (REFERENCE.md marks this
//! UNCERTAIN, "probably the new/active one"). Its `formattedCommunicationEndpoints` is the
//! `;`-joined string real servers send (the operator and the `dt` Python client parse a string;
//! the 1.254 spec's array type is wrong).

use serde_json::{json, Value};

use super::auth::authenticate;
use super::errors::{ApiError, Handled, Reply};
use super::request::Call;
use super::state::{new_tenant_token, State, TenantTokens};
use crate::model::dynatrace_messages as says;

pub const ROTATION: &str = "tenantTokenRotation.write";
pub const INSTALLER_DOWNLOAD: &str = "InstallerDownload";

fn config(active: &str, old: Option<&str>) -> Value {
    json!({
        "active": { "value": active },
        "old": { "value": old },
    })
}

fn tenant<'a>(state: &'a mut State, call: &Call) -> Result<&'a mut TenantTokens, ApiError> {
    Ok(&mut state
        .env_mut(&call.env_id)
        .ok_or_else(ApiError::no_route)?
        .tenant)
}

/// `POST /api/v2/tenantTokenRotation/start`.
pub fn start(state: &mut State, call: &mut Call) -> Handled {
    authenticate(state, call, &[ROTATION])?;
    let now = call.now;
    let t = tenant(state, call)?;
    if t.rotating() {
        return Err(ApiError::bad_request(says::ROTATION_ALREADY_RUNNING));
    }
    let old = std::mem::replace(&mut t.active, new_tenant_token());
    t.pending_old = Some(old);
    t.active_since = Some(now);
    call.dirty = true;
    Ok(Reply::ok(config(&t.active, t.pending_old.as_deref())))
}

/// `GET /api/v2/tenantTokenRotation/status`; 404 where the environment plays an older version.
pub fn status(state: &mut State, call: &mut Call) -> Handled {
    let has_endpoint = state
        .env_mut(&call.env_id)
        .is_some_and(|env| !env.no_rotation_status);
    if !has_endpoint {
        return Err(ApiError::no_route());
    }
    authenticate(state, call, &[ROTATION])?;
    let status = if tenant(state, call)?.rotating() {
        "ACTIVE"
    } else {
        "INACTIVE"
    };
    Ok(Reply::ok(json!({ "status": status })))
}

/// `POST /api/v2/tenantTokenRotation/finish`.
pub fn finish(state: &mut State, call: &mut Call) -> Handled {
    authenticate(state, call, &[ROTATION])?;
    let t = tenant(state, call)?;
    let Some(old) = t.pending_old.take() else {
        return Err(ApiError::bad_request(says::NO_ROTATION_TO_FINISH));
    };
    call.dirty = true;
    Ok(Reply::ok(config(&t.active, Some(&old))))
}

/// `POST /api/v2/tenantTokenRotation/cancel`.
pub fn cancel(state: &mut State, call: &mut Call) -> Handled {
    authenticate(state, call, &[ROTATION])?;
    let t = tenant(state, call)?;
    let Some(old) = t.pending_old.take() else {
        return Err(ApiError::bad_request(says::NO_ROTATION_TO_CANCEL));
    };
    t.active = old;
    call.dirty = true;
    Ok(Reply::ok(config(&t.active, None)))
}

/// The sandbox's own communication endpoint for an environment.
fn endpoint(call: &Call) -> String {
    format!("{}/communication", call.env_base_url)
}

/// `GET /api/v1/deployment/installer/agent/connectioninfo`.
pub fn agent_connection_info(state: &mut State, call: &mut Call) -> Handled {
    authenticate(state, call, &[INSTALLER_DOWNLOAD])?;
    let t = tenant(state, call)?;
    let ep = endpoint(call);
    // `formattedCommunicationEndpoints` is an array in the 1.254 v1 spec, but real servers send
    // the `;`-joined string (the operator and Dynatrace's `dt` client parse a string).
    let endpoints = [ep];
    Ok(Reply::ok(json!({
        "tenantUUID": call.env_id,
        "tenantToken": t.active,
        "communicationEndpoints": endpoints,
        "formattedCommunicationEndpoints": endpoints.join(";"),
    })))
}

/// `GET /api/v1/deployment/installer/agent/connectioninfo/endpoints`: plain text, `;`-separated.
pub fn agent_endpoints(state: &mut State, call: &mut Call) -> Handled {
    authenticate(state, call, &[INSTALLER_DOWNLOAD])?;
    Ok(Reply::text(200, endpoint(call)))
}

/// `GET /api/v1/deployment/installer/gateway/connectioninfo`.
pub fn gateway_connection_info(state: &mut State, call: &mut Call) -> Handled {
    authenticate(state, call, &[INSTALLER_DOWNLOAD])?;
    let t = tenant(state, call)?;
    Ok(Reply::ok(json!({
        "tenantUUID": call.env_id,
        "tenantToken": t.active,
        "communicationEndpoints": endpoint(call),
    })))
}

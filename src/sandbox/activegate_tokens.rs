//! ActiveGate tokens API (`/api/v2/activeGateTokens`): list, create, get, delete (no update), and
//! `GET /api/v2/activeGates/tokenEnforcement`.
//!
//! Owns: REFERENCE.md §7: `dt0g02.<8>.<64>` tokens, `pageSize` 100–3000 (default 100), the
//! required `activeGateType`, expiry not in the past and at most two years ahead, owner = owner of
//! the calling token. Lists are ordered newest first (the order is not documented).

use serde::Serialize;
use serde_json::{json, Value};
use time::Duration;

use super::auth::authenticate;
use super::clock::IsoMillis;
use super::errors::{ApiError, Handled, Reply};
use super::mint::{self, TokenFormat};
use super::paging::{HasId, Key, ListPage, ListQuery};
use super::request::Call;
use super::state::{ActiveGateTokenRecord, State};
use super::token_create::{check_expiration, created, payload};
use crate::model::token::MAX_NAME_LEN;
use crate::model::ActiveGateType;

pub const READ: &str = "activeGateTokenManagement.read";
pub const CREATE: &str = "activeGateTokenManagement.create";
pub const WRITE: &str = "activeGateTokenManagement.write";

/// `GET /api/v2/activeGateTokens`.
pub fn list(state: &mut State, call: &mut Call) -> Handled {
    authenticate(state, call, &[READ])?;
    let q = ListQuery::from_call(call)?;
    let page_size = q.page_size(100, 3000, 100)?;
    let env = state.env(&call.env_id).ok_or_else(ApiError::no_route)?;
    let all: Vec<(Key, &ActiveGateTokenRecord)> = env
        .activegate_tokens
        .values()
        .map(|t| (Key::Time(t.creation_date.0), t))
        .collect();
    let total = all.len();
    let (page, next) = q.page(all, page_size, true);
    let size_hint = 128 + page.len() * 256;
    Ok(Reply::ok_serialized(
        &ListPage {
            list: "activeGateTokens",
            items: page.iter().map(|(_, t)| TokenView::of(t)).collect(),
            next_page_key: next,
            page_size,
            total_count: total,
        },
        size_hint,
    ))
}

/// `POST /api/v2/activeGateTokens`.
pub fn create(state: &mut State, call: &mut Call) -> Handled {
    let caller = authenticate(state, call, &[CREATE, WRITE])?;
    let body = call.json_object()?;
    let mut violations = Vec::new();
    let name = match body.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= MAX_NAME_LEN => {
            Some(s.clone())
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            violations.push(payload("name", "must not be empty"));
            None
        }
        Some(Value::String(_)) => {
            violations.push(payload(
                "name",
                format!("size must be between 1 and {MAX_NAME_LEN}"),
            ));
            None
        }
        _ => {
            violations.push(payload("name", "must not be null"));
            None
        }
    };
    let kind = match body.get("activeGateType").and_then(Value::as_str) {
        Some("ENVIRONMENT") => Some(ActiveGateType::Environment),
        Some("CLUSTER") => Some(ActiveGateType::Cluster),
        Some(other) => {
            violations.push(payload(
                "activeGateType",
                format!("'{other}' must be any of [ENVIRONMENT, CLUSTER]"),
            ));
            None
        }
        None => {
            violations.push(payload("activeGateType", "must not be null"));
            None
        }
    };
    let seed = match body.get("seedToken") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            violations.push(payload("seedToken", "must be a boolean"));
            false
        }
    };
    let now = call.now;
    // Since 1.293: not in the past and at most two years ahead (730 days).
    let limit = now.plus(Duration::days(730));
    let expiration = match body.get("expirationDate") {
        None | Some(Value::Null) => None,
        Some(v) => check_expiration(v, now, Some((limit, "2 years")), &mut violations),
    };
    if !violations.is_empty() {
        return Err(ApiError::violations(violations));
    }
    let (id, secret) = TokenFormat::ActiveGate.mint();
    let record = ActiveGateTokenRecord {
        id: id.as_str().to_owned(),
        secret_sha256: mint::fingerprint(secret.expose()),
        name: name.unwrap_or_default(),
        owner: caller.owner,
        creation_date: now,
        expiration_date: expiration,
        last_used_date: None,
        seed_token: seed,
        active_gate_type: kind.unwrap_or(ActiveGateType::Environment),
    };
    state
        .env_mut(&call.env_id)
        .ok_or_else(ApiError::no_route)?
        .activegate_tokens
        .insert(record.id.clone(), record);
    call.dirty = true;
    created(&id, &secret, expiration)
}

/// `GET /api/v2/activeGateTokens/{id}`.
pub fn get(state: &mut State, call: &mut Call, id: &str) -> Handled {
    authenticate(state, call, &[READ])?;
    let env = state.env(&call.env_id).ok_or_else(ApiError::no_route)?;
    let token = env.activegate_tokens.get(id).ok_or_else(|| not_found(id))?;
    Ok(Reply::ok_serialized(&TokenView::of(token), 512))
}

/// `DELETE /api/v2/activeGateTokens/{id}`.
pub fn delete(state: &mut State, call: &mut Call, id: &str) -> Handled {
    authenticate(state, call, &[WRITE])?;
    let env = state.env_mut(&call.env_id).ok_or_else(ApiError::no_route)?;
    env.activegate_tokens
        .remove(id)
        .ok_or_else(|| not_found(id))?;
    call.dirty = true;
    Ok(Reply::no_content())
}

/// `GET /api/v2/activeGates/tokenEnforcement`: the sandbox never enforces ActiveGate tokens.
pub fn token_enforcement(state: &mut State, call: &mut Call) -> Handled {
    authenticate(state, call, &["activeGates.read"])?;
    Ok(Reply::ok(
        json!({ "manualEnforced": false, "autoEnforced": false }),
    ))
}

fn not_found(id: &str) -> ApiError {
    if mint::looks_like_secret(id) {
        return ApiError::not_found("The requested ActiveGate token does not exist.");
    }
    ApiError::not_found(format!("ActiveGate token with ID {id} not found"))
}

impl HasId for &ActiveGateTokenRecord {
    fn id(&self) -> &str {
        &self.id
    }
}

/// One ActiveGate token as the API writes it, borrowed from the record: members by name, unset
/// dates left out.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenView<'a> {
    active_gate_type: ActiveGateType,
    creation_date: IsoMillis,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration_date: Option<IsoMillis>,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_date: Option<IsoMillis>,
    name: &'a str,
    owner: &'a str,
    seed_token: bool,
}

impl<'a> TokenView<'a> {
    fn of(t: &'a ActiveGateTokenRecord) -> TokenView<'a> {
        TokenView {
            active_gate_type: t.active_gate_type,
            creation_date: t.creation_date.iso(),
            expiration_date: t.expiration_date.map(|d| d.iso()),
            id: &t.id,
            last_used_date: t.last_used_date.map(|d| d.iso()),
            name: &t.name,
            owner: &t.owner,
            seed_token: t.seed_token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::Millis;
    use super::*;
    use serde_json::{json, Map};

    /// What the list wrote before it serialised records directly.
    fn token_value(t: &ActiveGateTokenRecord) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(t.id));
        m.insert("name".into(), json!(t.name));
        m.insert("owner".into(), json!(t.owner));
        m.insert("creationDate".into(), json!(t.creation_date.iso_millis()));
        if let Some(e) = t.expiration_date {
            m.insert("expirationDate".into(), json!(e.iso_millis()));
        }
        if let Some(u) = t.last_used_date {
            m.insert("lastUsedDate".into(), json!(u.iso_millis()));
        }
        m.insert("seedToken".into(), json!(t.seed_token));
        m.insert("activeGateType".into(), json!(t.active_gate_type));
        Value::Object(m)
    }

    #[test]
    fn written_tokens_are_byte_for_byte_the_value_rendering() {
        let bare = ActiveGateTokenRecord {
            id: "dt0g02.ABCDEFGH".into(),
            secret_sha256: "never written".into(),
            name: "ag \"one\"".into(),
            owner: "a@b.c".into(),
            creation_date: Millis(1_793_523_600_123),
            expiration_date: None,
            last_used_date: None,
            seed_token: false,
            active_gate_type: ActiveGateType::Environment,
        };
        let full = ActiveGateTokenRecord {
            expiration_date: Some(Millis(1_800_000_000_000)),
            last_used_date: Some(Millis(1_793_000_000_000)),
            seed_token: true,
            active_gate_type: ActiveGateType::Cluster,
            ..bare.clone()
        };
        for next in [None, Some("KEY".to_owned())] {
            let page = ListPage {
                list: "activeGateTokens",
                items: vec![TokenView::of(&full), TokenView::of(&bare)],
                next_page_key: next.clone(),
                page_size: 100,
                total_count: 2,
            };
            let mut expected = json!({
                "totalCount": 2,
                "pageSize": 100,
                "activeGateTokens": [token_value(&full), token_value(&bare)],
            });
            if let Some(next) = next {
                expected["nextPageKey"] = Value::String(next);
            }
            assert_eq!(
                serde_json::to_string(&page).unwrap(),
                serde_json::to_string(&expected).unwrap()
            );
        }
    }
}

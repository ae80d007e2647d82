//! Platform tokens on the Account Management API, and the OAuth token endpoint that guards it.
//!
//! Owns: `POST {token_url}` (client credentials, form-encoded) issuing short-lived bearer tokens
//! by the sandbox clock, and `/iam/v1/accounts/{uuid}/platform-tokens` list/create/delete,
//! `…/{id}/expiration-date` and `…/{id}/status` (REFERENCE.md §10). Choices where the sources are
//! silent, each marked UNCERTAIN there:
//! - OAuth errors use the RFC 6749 shape (`{"error":"invalid_client","error_description":…}`);
//!   account-API errors use Dynatrace's `{"error":{"code","message"}}` envelope.
//! - Enforced scopes, per operation as the real account API enforces them
//!   (dynatrace-2026-facts.md: dtctl, the OpenAPI `x-token-scopes`, a dtiam decisions log):
//!   list, revoke, expiry and status need `platform-token:tokens:manage`; create needs
//!   `platform-token:tokens:write`. The `account-idm-*` scopes the doc pages name do not
//!   suffice (403). A token request for a scope the client does not hold is refused like SSO
//!   does: 400 `{"error":"invalid_scope",…}`.
//! - Expired platform tokens keep `status: ACTIVE` in every answer, as on the real API (dtctl
//!   PR #342): expiry shows only in `expirationDate`.
//! - The 11th token of one owner in one account is a **400** "Constraints violated." with a
//!   violation on `userUuid` naming the limit of 10; a name over 255 characters is a 400 on `name`.
//! - `PUT …/status` answers 204 (docs and spec; a real recording saw 200), the other writes 200
//!   with an empty body. Expiry cannot be set in the past.
//! - Bearer access tokens live 300 s of sandbox time, so advancing the clock expires them.

use serde_json::{json, Value};
use time::Duration;

use super::auth::missing_scope_message;
use super::clock::{parse_absolute, Millis};
use super::errors::{ApiError, Handled, ParameterLocation, Reply, Violation};
use super::mint::{self, TokenFormat};
use super::request::Call;
use super::state::{AccessToken, Account, PlatformTokenRecord, State};
use crate::model::dynatrace_messages as says;

pub const MAX_TOKENS_PER_OWNER: usize = 10;
pub const MAX_NAME_LEN: usize = 255;
pub const ACCESS_TOKEN_LIFETIME_SECS: i64 = 300;

/// List, revoke, set expiry, set status.
const MANAGE_SCOPES: &[&str] = &["platform-token:tokens:manage"];
/// Create.
const CREATE_SCOPES: &[&str] = &["platform-token:tokens:write"];

fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

/// `POST /sso/oauth2/token` (the sandbox's token URL).
pub fn token_endpoint(state: &mut State, call: &mut Call) -> Reply {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&call.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some("client_credentials") {
        return oauth_error(
            400,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        );
    }
    let (Some(client_id), Some(client_secret)) = (get("client_id"), get("client_secret")) else {
        return oauth_error(
            400,
            "invalid_request",
            "client_id and client_secret are required",
        );
    };
    let fp = mint::fingerprint(client_secret);
    let Some((uuid, client)) = state.accounts.iter().find_map(|(uuid, a)| {
        a.oauth_clients
            .get(client_id)
            .filter(|c| c.secret_sha256 == fp)
            .map(|c| (uuid.clone(), c.clone()))
    }) else {
        return oauth_error(401, "invalid_client", "client authentication failed");
    };
    if let Some(resource) = get("resource") {
        if resource != format!("urn:dtaccount:{uuid}") {
            return oauth_error(
                400,
                "invalid_request",
                "the resource is not the client's account (use urn:dtaccount:<account uuid>)",
            );
        }
    }
    let scopes: Vec<String> = match get("scope") {
        None => client.scopes.clone(),
        Some(s) => s.split_whitespace().map(str::to_owned).collect(),
    };
    if let Some(bad) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return oauth_error(
            400,
            "invalid_scope",
            &format!("The requested scope is invalid, unknown, or malformed: the client does not hold {bad}"),
        );
    }
    let now = call.now;
    let access = format!("dt0s02.sandbox.{}", mint::random_alnum_lower(48));
    let account = state.accounts.get_mut(&uuid).expect("found above");
    account.access_tokens.retain(|_, t| t.expires > now);
    account.access_tokens.insert(
        mint::fingerprint(&access),
        AccessToken {
            client_id: client_id.to_owned(),
            scopes: scopes.clone(),
            expires: now.plus(Duration::seconds(ACCESS_TOKEN_LIFETIME_SECS)),
        },
    );
    call.dirty = true;
    Reply::ok(json!({
        "scope": scopes.join(" "),
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME_SECS,
        "access_token": access,
        "resource": format!("urn:dtaccount:{uuid}"),
    }))
}

/// The user (uuid, email) the bearer token of `call` acts for in `account_uuid`, if it is valid
/// and carries one of `scopes`.
fn authorize(
    state: &State,
    call: &Call,
    account_uuid: &str,
    scopes: &[&str],
) -> Result<(String, String), ApiError> {
    let header = call
        .header("authorization")
        .ok_or_else(|| ApiError::unauthorized(says::MISSING_AUTHORIZATION))?;
    let bearer = match header.trim().split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => return Err(ApiError::unauthorized("Bearer token required")),
    };
    let fp = mint::fingerprint(bearer);
    let (uuid, account, token) = state
        .accounts
        .iter()
        .find_map(|(u, a)| a.access_tokens.get(&fp).map(|t| (u, a, t)))
        .ok_or_else(|| ApiError::unauthorized(says::AUTHENTICATION_FAILED))?;
    if token.expires <= call.now {
        return Err(ApiError::unauthorized(&format!(
            "{}: the access token has expired",
            says::AUTHENTICATION_FAILED
        )));
    }
    if uuid != account_uuid {
        return Err(ApiError::new(
            403,
            "The access token is not valid for this account.",
        ));
    }
    if !scopes.iter().any(|s| token.scopes.iter().any(|t| t == s)) {
        return Err(ApiError::new(403, missing_scope_message(scopes)));
    }
    let client = account
        .oauth_clients
        .get(&token.client_id)
        .ok_or_else(|| ApiError::unauthorized(says::AUTHENTICATION_FAILED))?;
    Ok((client.user_uuid.clone(), client.user_email.clone()))
}

fn account_mut<'a>(state: &'a mut State, uuid: &str) -> Result<&'a mut Account, ApiError> {
    state
        .accounts
        .get_mut(uuid)
        .ok_or_else(|| ApiError::not_found(format!("Account {uuid} not found")))
}

fn check_account(state: &State, uuid: &str) -> Result<(), ApiError> {
    if state.accounts.contains_key(uuid) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("Account {uuid} not found")))
    }
}

/// `GET /iam/v1/accounts/{uuid}/platform-tokens?searchTerm=&status=&page=&size=`.
pub fn list(state: &mut State, call: &mut Call, uuid: &str) -> Handled {
    check_account(state, uuid)?;
    authorize(state, call, uuid, MANAGE_SCOPES)?;
    let page: usize = number_param(call, "page", 1)?.max(1);
    let size: usize = number_param(call, "size", 1000)?.clamp(1, 1000);
    let search = call.query_value("searchTerm").map(str::to_lowercase);
    let status = call.query_value("status").map(str::to_owned);
    let account = &state.accounts[uuid];
    let mut matching: Vec<&PlatformTokenRecord> = account
        .platform_tokens
        .values()
        .filter(|t| {
            status
                .as_ref()
                .is_none_or(|s| t.status.eq_ignore_ascii_case(s))
        })
        .filter(|t| {
            search.as_ref().is_none_or(|q| {
                t.token_id.to_lowercase().contains(q)
                    || t.name.to_lowercase().contains(q)
                    || t.created_by.to_lowercase().contains(q)
                    || t.scope.iter().any(|s| s.to_lowercase().contains(q))
            })
        })
        .collect();
    matching.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.token_id.cmp(&b.token_id))
    });
    let results: Vec<Value> = matching
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|t| token_json(uuid, t))
        .collect();
    Ok(Reply::ok(json!({
        "pageSize": size,
        "pageNumber": page,
        "total": matching.len(),
        "results": results,
    })))
}

fn number_param(call: &Call, name: &str, default: usize) -> Result<usize, ApiError> {
    match call.query_value(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| *n >= 0.0)
            .map(|n| n as usize)
            .ok_or_else(|| {
                ApiError::violation(
                    ParameterLocation::Query,
                    name,
                    format!("'{v}' is not a number"),
                )
            }),
    }
}

/// `POST /iam/v1/accounts/{uuid}/platform-tokens`.
pub fn create(state: &mut State, call: &mut Call, uuid: &str) -> Handled {
    check_account(state, uuid)?;
    let (caller_uuid, caller_email) = authorize(state, call, uuid, CREATE_SCOPES)?;
    let body = call.json_object()?;
    let mut violations = Vec::new();
    let v = |path: &str, m: String| Violation {
        path: path.into(),
        message: m,
        parameter_location: ParameterLocation::PayloadBody,
    };
    let name = match body.get("name").and_then(Value::as_str) {
        Some(n) if n.trim().is_empty() => {
            violations.push(v("name", "must not be empty".into()));
            String::new()
        }
        Some(n) if n.chars().count() > MAX_NAME_LEN => {
            violations.push(v(
                "name",
                format!("size must be between 1 and {MAX_NAME_LEN}"),
            ));
            String::new()
        }
        Some(n) => n.to_owned(),
        None => {
            violations.push(v("name", "must not be null".into()));
            String::new()
        }
    };
    let strings = |key: &str, violations: &mut Vec<Violation>| -> Option<Vec<String>> {
        match body.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => Some(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect(),
            ),
            Some(_) => {
                violations.push(v(key, "must be an array of strings".into()));
                None
            }
        }
    };
    let scope = strings("scope", &mut violations).unwrap_or_default();
    if scope.is_empty() && !violations.iter().any(|x| x.path == "scope") {
        violations.push(v("scope", "must not be empty".into()));
    }
    let resource = strings("resource", &mut violations)
        .unwrap_or_else(|| vec![format!("urn:dtaccount:{uuid}")]);
    let tags = strings("tags", &mut violations).unwrap_or_default();
    let now = call.now;
    let expiration = match body.get("expirationDate") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match parse_absolute(s) {
            Ok(t) if t > now => Some(t),
            Ok(_) => {
                violations.push(v("expirationDate", "must be in the future".into()));
                None
            }
            Err(m) => {
                violations.push(v("expirationDate", m));
                None
            }
        },
        Some(_) => {
            violations.push(v("expirationDate", "must be a date-time string".into()));
            None
        }
    };
    let owner_uuid = body
        .get("userUuid")
        .and_then(Value::as_str)
        .unwrap_or(&caller_uuid)
        .to_owned();
    let owner = if owner_uuid == caller_uuid {
        caller_email.clone()
    } else {
        format!("{owner_uuid}@service.sso.dynatrace.com")
    };
    let account = account_mut(state, uuid)?;
    let owned = account
        .platform_tokens
        .values()
        .filter(|t| t.user_uuid == owner_uuid)
        .count();
    if owned >= MAX_TOKENS_PER_OWNER {
        violations.push(v(
            "userUuid",
            format!("the owner already has {owned} platform tokens in this account; at most {MAX_TOKENS_PER_OWNER} are allowed per user (delete one first)"),
        ));
    }
    if !violations.is_empty() {
        return Err(ApiError::violations(violations));
    }
    let (id, secret) = TokenFormat::Platform.mint();
    account.platform_tokens.insert(
        id.as_str().to_owned(),
        PlatformTokenRecord {
            token_id: id.as_str().to_owned(),
            secret_sha256: mint::fingerprint(secret.expose()),
            name: name.clone(),
            scope,
            resource,
            tags,
            status: "ACTIVE".into(),
            expiration_date: expiration,
            created_at: now,
            updated_at: now,
            created_by: caller_email,
            owner,
            user_uuid: owner_uuid,
            last_used_at: None,
            last_client_ip: None,
        },
    );
    call.dirty = true;
    Ok(Reply::ok(
        json!({ "name": name, "tokenId": id.as_str(), "token": secret.expose() }),
    ))
}

fn token_mut<'a>(
    state: &'a mut State,
    uuid: &str,
    id: &str,
) -> Result<&'a mut PlatformTokenRecord, ApiError> {
    account_mut(state, uuid)?
        .platform_tokens
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found(format!("Platform token {id} not found")))
}

/// `DELETE /iam/v1/accounts/{uuid}/platform-tokens/{id}`.
pub fn delete(state: &mut State, call: &mut Call, uuid: &str, id: &str) -> Handled {
    check_account(state, uuid)?;
    authorize(state, call, uuid, MANAGE_SCOPES)?;
    token_mut(state, uuid, id)?;
    account_mut(state, uuid)?.platform_tokens.remove(id);
    call.dirty = true;
    Ok(Reply {
        status: 200,
        body: super::errors::Body::Empty,
        headers: Vec::new(),
    })
}

/// `PUT /iam/v1/accounts/{uuid}/platform-tokens/{id}/expiration-date`.
pub fn set_expiration(state: &mut State, call: &mut Call, uuid: &str, id: &str) -> Handled {
    check_account(state, uuid)?;
    authorize(state, call, uuid, MANAGE_SCOPES)?;
    let body = call.json_object()?;
    let now = call.now;
    let expiration = match body.get("expirationDate") {
        Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let t = parse_absolute(s).map_err(|m| {
                ApiError::violation(ParameterLocation::PayloadBody, "expirationDate", m)
            })?;
            if t < now {
                return Err(ApiError::violation(
                    ParameterLocation::PayloadBody,
                    "expirationDate",
                    "must not be in the past",
                ));
            }
            Some(t)
        }
        _ => {
            return Err(ApiError::violation(
                ParameterLocation::PayloadBody,
                "expirationDate",
                "must not be null",
            ))
        }
    };
    let token = token_mut(state, uuid, id)?;
    token.expiration_date = expiration;
    token.updated_at = now;
    call.dirty = true;
    Ok(Reply {
        status: 200,
        body: super::errors::Body::Empty,
        headers: Vec::new(),
    })
}

/// `PUT /iam/v1/accounts/{uuid}/platform-tokens/{id}/status`.
pub fn set_status(state: &mut State, call: &mut Call, uuid: &str, id: &str) -> Handled {
    check_account(state, uuid)?;
    authorize(state, call, uuid, MANAGE_SCOPES)?;
    let body = call.json_object()?;
    let status = match body.get("status").and_then(Value::as_str) {
        Some(s @ ("ACTIVE" | "INACTIVE")) => s.to_owned(),
        _ => {
            return Err(ApiError::violation(
                ParameterLocation::PayloadBody,
                "status",
                "must be any of [ACTIVE, INACTIVE]",
            ))
        }
    };
    let now = call.now;
    let token = token_mut(state, uuid, id)?;
    token.status = status;
    token.updated_at = now;
    call.dirty = true;
    Ok(Reply::no_content())
}

fn token_json(account_uuid: &str, t: &PlatformTokenRecord) -> Value {
    let metadata = match (&t.last_used_at, &t.last_client_ip) {
        (None, None) => Value::Null,
        (used, ip) => json!({ "lastUsedAt": used.map(Millis::rfc3339), "lastClientIp": ip }),
    };
    json!({
        "tokenId": t.token_id,
        "accountUuid": account_uuid,
        "name": t.name,
        "scope": t.scope,
        "resource": t.resource,
        "tags": t.tags,
        "status": t.status,
        "expirationDate": t.expiration_date.map(Millis::rfc3339),
        "createdAt": t.created_at.rfc3339(),
        "updatedAt": t.updated_at.rfc3339(),
        "createdBy": t.created_by,
        "owner": t.owner,
        "userUuid": t.user_uuid,
        "metadata": metadata,
    })
}

//! What the create endpoints of the access-token API (`api_tokens`) and the ActiveGate-token API
//! (`activegate_tokens`) share: a violation of a request-body field ([`payload`]), the
//! `expirationDate` check ([`check_expiration`]) and the 201 answer that carries the new secret
//! ([`created`]).
//!
//! It owns no endpoint and no state; each API keeps its own rules (name limits, scopes, the
//! ActiveGate two-year expiry cap) and calls these.

use serde_json::{json, Value};

use super::clock::{parse_time_input, Millis};
use super::errors::{Handled, ParameterLocation, Reply, Violation};
use crate::model::{Secret, TokenId};

/// A violation of a field of the request body.
pub fn payload(path: &str, message: impl Into<String>) -> Violation {
    Violation {
        path: path.to_owned(),
        message: message.into(),
        parameter_location: ParameterLocation::PayloadBody,
    }
}

/// Parse and check an `expirationDate`: not in the past, and not beyond `max` when given.
pub fn check_expiration(
    v: &Value,
    now: Millis,
    max: Option<(Millis, &str)>,
    violations: &mut Vec<Violation>,
) -> Option<Millis> {
    let parsed = match v {
        Value::String(s) => parse_time_input(s, now),
        Value::Number(n) => n
            .as_i64()
            .map(Millis)
            .ok_or_else(|| "must be a timestamp".to_owned()),
        _ => Err("must be a date".to_owned()),
    };
    match parsed {
        Err(m) => {
            violations.push(payload("expirationDate", m));
            None
        }
        Ok(t) if t <= now => {
            violations.push(payload("expirationDate", "must not be in the past"));
            None
        }
        Ok(t) => match max {
            Some((limit, what)) if t > limit => {
                violations.push(payload(
                    "expirationDate",
                    format!("must not be more than {what} in the future"),
                ));
                None
            }
            _ => Some(t),
        },
    }
}

/// The 201 answer of a create (`ApiTokenCreated`, `ActiveGateTokenCreated`): the only place a
/// secret leaves the sandbox. `expirationDate` only when the token expires.
pub fn created(id: &TokenId, secret: &Secret<String>, expiration: Option<Millis>) -> Handled {
    let mut body = json!({ "id": id.as_str(), "token": secret.expose() });
    if let Some(e) = expiration {
        body["expirationDate"] = Value::String(e.iso_millis());
    }
    Ok(Reply::json(201, body))
}

//! The admin endpoints under `/__sandbox/` — NOT part of any Dynatrace API.
//!
//! They exist to drive the emulator from tests and demos; the prefix cannot collide with a
//! Dynatrace path. No authentication (the sandbox listens on loopback). Faults never apply here.
//!
//! | method + path | body | does |
//! | --- | --- | --- |
//! | `GET /__sandbox` | – | this list |
//! | `GET /__sandbox/clock` | – | `{"now": …}` |
//! | `POST /__sandbox/clock/advance` | `{"by": "36h"}` (s m h d w) | move the clock forward |
//! | `POST /__sandbox/clock/set` | `{"now": "2027-01-01T00:00:00Z"}` | jump to a time |
//! | `GET`/`PUT /__sandbox/faults` | [`Faults`] JSON | read / set fault injection |
//! | `GET`/`DELETE /__sandbox/requests` | – | the request log / clear it |
//! | `GET /__sandbox/state` | – | the state, tenant tokens shown as fingerprints |
//! | `GET`/`DELETE /__sandbox/metrics[?environment=ID]` | – | data points ingested into an environment (default: the default one), oldest first / forget them |
//! | `POST /__sandbox/reset` | a seed (YAML or JSON) | replace the whole state |
//! | `POST /__sandbox/environments` | `{"id": …, …seed environment}` | add an environment |
//! | `PUT /__sandbox/rotation-status` | `{"available": false, "environment"?: …}` | make `tenantTokenRotation/status` answer 404 (an older version) or exist again |
//! | `POST /__sandbox/use` | `{"token": …, "environment"?: …}` | a consumer (OneAgent, ActiveGate, app) presents a token: 200 with its kind, or 401; records last use |

use axum::body::Bytes;
use axum::http::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::clock::Millis;
use super::errors::{ApiError, Reply};
use super::faults::Faults;
use super::mint;
use super::seed::{Seed, SeedEnvironment};
use super::Sandbox;
use crate::model::SpecDuration;

pub fn handle(
    sandbox: &Sandbox,
    method: &Method,
    segs: &[String],
    query: &[(String, String)],
    body: &Bytes,
) -> Reply {
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let result = match (segs.as_slice(), method) {
        ([], &Method::GET) => Ok(Reply::ok(index())),
        (["clock"], &Method::GET) => Ok(clock(sandbox)),
        (["clock", "advance"], &Method::POST) => advance(sandbox, query, body),
        (["clock", "set"], &Method::POST) => set_clock(sandbox, body),
        (["faults"], &Method::GET) => Ok(Reply::ok(
            serde_json::to_value(sandbox.snapshot().faults).unwrap_or(Value::Null),
        )),
        (["faults"], &Method::PUT) => set_faults(sandbox, body),
        (["requests"], &Method::GET) => Ok(Reply::ok(json!({ "requests": sandbox.request_log() }))),
        (["requests"], &Method::DELETE) => {
            sandbox.clear_request_log();
            Ok(Reply::no_content())
        }
        (["state"], &Method::GET) => Ok(Reply::ok(
            serde_json::to_value(sandbox.snapshot().redacted()).unwrap_or(Value::Null),
        )),
        (["metrics"], &Method::GET) => data_points(sandbox, query),
        (["metrics"], &Method::DELETE) => clear_data_points(sandbox, query),
        (["reset"], &Method::POST) => reset(sandbox, body),
        (["environments"], &Method::POST) => add_environment(sandbox, body),
        (["use"], &Method::POST) => use_token(sandbox, body),
        (["rotation-status"], &Method::PUT) => rotation_status(sandbox, body),
        _ => Err(ApiError::not_found(
            "unknown sandbox admin endpoint; GET /__sandbox lists them",
        )),
    };
    result.unwrap_or_else(Reply::from)
}

fn index() -> Value {
    json!({
        "note": "sandbox admin endpoints; not part of any Dynatrace API",
        "endpoints": [
            "GET /__sandbox/clock",
            "POST /__sandbox/clock/advance {\"by\":\"36h\"}",
            "POST /__sandbox/clock/set {\"now\":\"2027-01-01T00:00:00Z\"}",
            "GET|PUT /__sandbox/faults",
            "GET|DELETE /__sandbox/requests",
            "GET /__sandbox/state",
            "GET|DELETE /__sandbox/metrics?environment=…",
            "POST /__sandbox/reset <seed yaml or json>",
            "POST /__sandbox/environments {\"id\":\"…\"}",
            "POST /__sandbox/use {\"token\":\"…\",\"environment\":\"…\"}",
            "PUT /__sandbox/rotation-status {\"available\":false,\"environment\":\"…\"}",
        ],
    })
}

fn internal(e: anyhow::Error) -> ApiError {
    ApiError::new(500, format!("{e:#}"))
}

fn clock(sandbox: &Sandbox) -> Reply {
    Reply::ok(json!({ "now": sandbox.now_millis().iso_millis() }))
}

fn advance(sandbox: &Sandbox, query: &[(String, String)], body: &Bytes) -> Result<Reply, ApiError> {
    #[derive(Deserialize)]
    struct Advance {
        by: String,
    }
    let by = match query.iter().find(|(k, _)| k == "by") {
        Some((_, v)) => v.clone(),
        None => {
            serde_json::from_slice::<Advance>(body)
                .map_err(|e| ApiError::bad_request(format!("expected {{\"by\": \"36h\"}}: {e}")))?
                .by
        }
    };
    let d: SpecDuration = by
        .parse()
        .map_err(|e| ApiError::bad_request(format!("{e}")))?;
    sandbox.advance_clock(d.to_time()).map_err(internal)?;
    Ok(clock(sandbox))
}

fn set_clock(sandbox: &Sandbox, body: &Bytes) -> Result<Reply, ApiError> {
    #[derive(Deserialize)]
    struct Set {
        now: String,
    }
    let set: Set = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"now\": \"<ISO 8601>\"}}: {e}")))?;
    let to: Millis = set.now.parse().map_err(ApiError::bad_request)?;
    sandbox.update(|s| s.clock.set(to)).map_err(internal)?;
    Ok(clock(sandbox))
}

fn set_faults(sandbox: &Sandbox, body: &Bytes) -> Result<Reply, ApiError> {
    let faults: Faults = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid faults: {e}")))?;
    sandbox.set_faults(faults.clone()).map_err(internal)?;
    Ok(Reply::ok(
        serde_json::to_value(faults).unwrap_or(Value::Null),
    ))
}

fn environment_param(query: &[(String, String)]) -> Option<&str> {
    query
        .iter()
        .find(|(k, _)| k == "environment")
        .map(|(_, v)| v.as_str())
}

/// The data points `POST /api/v2/metrics/ingest` accepted, oldest first.
fn data_points(sandbox: &Sandbox, query: &[(String, String)]) -> Result<Reply, ApiError> {
    let env = environment_param(query);
    let (id, points) = sandbox
        .data_points(env)
        .ok_or_else(|| ApiError::not_found(no_environment(env)))?;
    Ok(Reply::ok(json!({
        "environment": id,
        "totalCount": points.len(),
        "dataPoints": points,
    })))
}

fn clear_data_points(sandbox: &Sandbox, query: &[(String, String)]) -> Result<Reply, ApiError> {
    let env = environment_param(query);
    sandbox
        .update(|s| {
            let id = env
                .map(str::to_owned)
                .or_else(|| s.default_environment.clone())?;
            s.env_mut(&id).map(|e| e.data_points.clear())
        })
        .map_err(internal)?
        .ok_or_else(|| ApiError::not_found(no_environment(env)))?;
    Ok(Reply::no_content())
}

fn no_environment(env: Option<&str>) -> String {
    match env {
        Some(id) => format!("no environment {id}; GET /__sandbox/state lists them"),
        None => "no default environment; name one with ?environment=ID".to_owned(),
    }
}

fn reset(sandbox: &Sandbox, body: &Bytes) -> Result<Reply, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the seed must be UTF-8 YAML or JSON"))?;
    let seed = Seed::from_yaml(text).map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let state = seed
        .build()
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    sandbox.replace(state).map_err(internal)?;
    Ok(Reply::ok(summary(sandbox)))
}

fn summary(sandbox: &Sandbox) -> Value {
    let s = sandbox.snapshot();
    json!({
        "now": s.now().iso_millis(),
        "defaultEnvironment": s.default_environment,
        "environments": s.environments.iter().map(|(id, e)| json!({
            "id": id,
            "apiTokens": e.api_tokens.len(),
            "activeGateTokens": e.activegate_tokens.len(),
        })).collect::<Vec<_>>(),
        "accounts": s.accounts.keys().collect::<Vec<_>>(),
    })
}

fn add_environment(sandbox: &Sandbox, body: &Bytes) -> Result<Reply, ApiError> {
    #[derive(Deserialize)]
    struct NewEnv {
        id: String,
        #[serde(flatten)]
        env: SeedEnvironment,
    }
    let new: NewEnv = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"id\": \"…\", …}}: {e}")))?;
    let mut seed = Seed::default();
    seed.environments.insert(new.id.clone(), new.env);
    let built = seed
        .build()
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let env = built
        .environments
        .into_values()
        .next()
        .expect("one environment");
    let id = new.id.clone();
    sandbox
        .update(|s| {
            if s.environments.contains_key(&id) {
                return Err(ApiError::new(
                    409,
                    format!("environment {id} already exists"),
                ));
            }
            s.environments.insert(id.clone(), env);
            if s.default_environment.is_none() {
                s.default_environment = Some(id.clone());
            }
            Ok(())
        })
        .map_err(internal)??;
    Ok(Reply::json(201, summary(sandbox)))
}

/// Whether an environment has `GET /api/v2/tenantTokenRotation/status` (newer versions) or
/// answers 404 there (older versions, Managed clusters).
fn rotation_status(sandbox: &Sandbox, body: &Bytes) -> Result<Reply, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Switch {
        available: bool,
        #[serde(default)]
        environment: Option<String>,
    }
    let sw: Switch = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"available\": true|false, \"environment\"?: \"…\"}}: {e}"
        ))
    })?;
    let found = sandbox
        .update(|s| {
            let id = sw
                .environment
                .clone()
                .or_else(|| s.default_environment.clone())?;
            let env = s.environments.get_mut(&id)?;
            env.no_rotation_status = !sw.available;
            Some(id)
        })
        .map_err(internal)?;
    match found {
        Some(id) => Ok(Reply::ok(
            json!({ "environment": id, "available": sw.available }),
        )),
        None => Err(ApiError::not_found("no such environment in the sandbox")),
    }
}

/// A consumer presents a token: a OneAgent or ActiveGate its tenant token (both are valid during a
/// rotation), an ActiveGate its ActiveGate token, an integration its access token. Records the use.
fn use_token(sandbox: &Sandbox, body: &Bytes) -> Result<Reply, ApiError> {
    #[derive(Deserialize)]
    struct Use {
        token: String,
        #[serde(default)]
        environment: Option<String>,
        #[serde(default)]
        ip: Option<String>,
    }
    let u: Use = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"token\": \"…\"}}: {e}")))?;
    let kind = sandbox
        .update(|s| {
            let now = s.now();
            let env_id = u
                .environment
                .clone()
                .or_else(|| s.default_environment.clone())?;
            let ip = u.ip.clone().unwrap_or_else(|| "127.0.0.1".into());
            let fp = mint::fingerprint(&u.token);
            for account in s.accounts.values_mut() {
                if let Some(t) = account
                    .platform_tokens
                    .values_mut()
                    .find(|t| t.secret_sha256 == fp)
                {
                    let valid = t.status == "ACTIVE" && t.expiration_date.is_none_or(|e| e > now);
                    if valid {
                        t.last_used_at = Some(now);
                        t.last_client_ip = Some(ip);
                    }
                    return valid.then_some("platformToken");
                }
            }
            let env = s.environments.get_mut(&env_id)?;
            if env.tenant.accepts(&u.token) {
                return Some("tenantToken");
            }
            if let Some(id) = env
                .activegate_token_by_secret(&u.token)
                .map(|t| t.id.clone())
            {
                let t = env.activegate_tokens.get_mut(&id)?;
                if t.expiration_date.is_some_and(|e| e <= now) {
                    return None;
                }
                t.last_used_date = Some(now);
                return Some("activeGateToken");
            }
            if let Some(id) = env.api_token_by_secret(&u.token).map(|t| t.id.clone()) {
                let t = env.api_tokens.get_mut(&id)?;
                if !t.enabled || t.is_expired(now) {
                    return None;
                }
                t.last_used_date = Some(now);
                t.last_used_ip_address = Some(ip);
                return Some("apiToken");
            }
            None
        })
        .map_err(internal)?;
    match kind {
        Some(kind) => Ok(Reply::ok(json!({ "accepted": true, "kind": kind }))),
        None => Err(ApiError::unauthorized(super::errors::AUTH_FAILED)),
    }
}

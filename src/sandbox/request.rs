//! One request as the API handlers see it ([`Call`]): method, addressed environment, query,
//! headers, body, client address, the sandbox time it is handled at, and the flag a handler sets
//! when it changed the state.
//!
//! The server (`server.rs`) builds a `Call` from the HTTP request and routes it; the handlers
//! (`api_tokens`, `activegate_tokens`, `tenant`, `platform`, `metrics`) and their helpers (`auth`,
//! `paging`) read it. It knows no paths and no handler, so every arrow points here and none back.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method};
use serde_json::{Map, Value};

use super::clock::Millis;
use super::errors::{ApiError, ParameterLocation};

/// One request as the handlers see it.
pub struct Call {
    pub method: Method,
    /// The environment the request addresses (empty for account and OAuth calls).
    pub env_id: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub client_ip: String,
    /// Sandbox time when the request is handled.
    pub now: Millis,
    /// Set by a handler that changed the state; the state is then persisted before answering.
    pub dirty: bool,
    /// `http://host[:port]` or `http://host[:port]/e/{id}`: the environment's base as addressed.
    pub env_base_url: String,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as a JSON object; unknown properties are kept (and ignored by the handlers).
    pub fn json_object(&self) -> Result<Map<String, Value>, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::violation(
                ParameterLocation::PayloadBody,
                "",
                "a JSON request body is required",
            ));
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(ApiError::violation(
                ParameterLocation::PayloadBody,
                "",
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::bad_request(format!(
                "Could not map JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ))),
        }
    }
}

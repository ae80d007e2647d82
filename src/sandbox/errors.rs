//! Replies and Dynatrace's error envelope.
//!
//! Owns: [`Reply`] (what a handler returns: status, body, extra headers) and [`ApiError`], which
//! renders as `{"error":{"code":…,"message":…,"constraintViolations":[…]}}` (REFERENCE.md §3.1).
//! Messages observed on real tenants are used verbatim, from `model::dynatrace_messages`, the
//! texts the client classifies answers by; invented ones are marked where they are made. `location` of a constraint violation is omitted rather than `null`: the 1.254 spec types
//! it as a plain string, and Dynatrace's token APIs leave unset fields out (NON_NULL JSON).

use serde::Serialize;
use serde_json::{json, Value};

use crate::model::dynatrace_messages as says;

pub const MISSING_AUTH: &str = says::MISSING_AUTHORIZATION;
pub const AUTH_FAILED: &str = says::AUTHENTICATION_FAILED;
pub const CONSTRAINTS_VIOLATED: &str = says::CONSTRAINTS_VIOLATED;

/// Where a violated constraint sits in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParameterLocation {
    Path,
    PayloadBody,
    Query,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub path: String,
    pub message: String,
    pub parameter_location: ParameterLocation,
}

/// An error answer in Dynatrace's envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub violations: Vec<Violation>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            violations: Vec::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    /// 400 "Constraints violated." with one violation.
    pub fn violation(
        location: ParameterLocation,
        path: &str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError::violations(vec![Violation {
            path: path.to_owned(),
            message: message.into(),
            parameter_location: location,
        }])
    }

    pub fn violations(violations: Vec<Violation>) -> ApiError {
        ApiError {
            status: 400,
            message: CONSTRAINTS_VIOLATED.into(),
            violations,
            retry_after: None,
        }
    }

    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(401, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, message)
    }

    /// The body of an unknown route, as recorded from a real tenant.
    pub fn no_route() -> ApiError {
        ApiError::new(404, says::NO_ROUTE)
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError::new(405, says::METHOD_NOT_ALLOWED)
    }

    pub fn envelope(&self) -> Value {
        let mut error = json!({ "code": self.status, "message": self.message });
        if !self.violations.is_empty() {
            error["constraintViolations"] =
                serde_json::to_value(&self.violations).unwrap_or(Value::Null);
        }
        json!({ "error": error })
    }
}

/// A body of a reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Json(Value),
    /// JSON already written out: list pages serialise their records straight to bytes rather
    /// than building a `Value` per token first.
    SerializedJson(Vec<u8>),
    Text(String),
    Empty,
}

/// What a handler answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Body,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Body::Json(body),
            headers: Vec::new(),
        }
    }

    pub fn ok(body: Value) -> Reply {
        Reply::json(200, body)
    }

    /// 200 with `body` serialised to JSON text now, into a buffer of `size_hint` bytes to
    /// start with (a list page knows roughly how long it will be).
    pub fn ok_serialized(body: &impl Serialize, size_hint: usize) -> Reply {
        let mut bytes = Vec::with_capacity(size_hint);
        match serde_json::to_writer(&mut bytes, body) {
            Ok(()) => Reply {
                status: 200,
                body: Body::SerializedJson(bytes),
                headers: Vec::new(),
            },
            Err(e) => {
                ApiError::new(500, format!("the sandbox could not write its answer: {e}")).into()
            }
        }
    }

    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            body: Body::Empty,
            headers: Vec::new(),
        }
    }

    pub fn text(status: u16, body: String) -> Reply {
        Reply {
            status,
            body: Body::Text(body),
            headers: Vec::new(),
        }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        let mut r = Reply::json(e.status, e.envelope());
        if let Some(s) = e.retry_after {
            r.headers.push(("retry-after", s.to_string()));
        }
        r
    }
}

pub type Handled = Result<Reply, ApiError>;

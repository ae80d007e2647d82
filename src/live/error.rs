//! The typed error of every Dynatrace call, and the redaction that keeps tokens out of it.
//!
//! A [`LiveError`] names where it happened (the environment or account, the HTTP method and the
//! path), what Dynatrace answered (status, its error message, constraint violations) and, when
//! there is one, a hint. It never contains a token: every piece of text that came from the wire
//! passes through [`redact`] before it is stored, and request bodies are never included.
//!
//! What an error *means* is classified here, once: [`LiveError::failure`] turns the status code,
//! Dynatrace's message (the texts in `model::dynatrace_messages`) and the request into an
//! [`ApiFailure`] (rotation already running, no rotation running, not found, scope missing, rate
//! limited, ambiguous write, …). Code outside `live` matches on that kind, never on message text.
//!
//! This module does not decide what is retried (see `http`) nor how an error is reported to the
//! user (the commands wrap it with `anyhow` context).

use std::fmt;

use crate::model::dynatrace_messages as says;

/// What a request was sent to: an environment (classic API) or an account (platform tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Environment(String),
    Account(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Environment(name) => write!(f, "environment `{name}`"),
            Subject::Account(name) => write!(f, "account `{name}`"),
        }
    }
}

/// The request an error belongs to: subject, method and path (no host, no query, no body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLabel {
    pub subject: Subject,
    pub method: String,
    pub path: String,
}

impl fmt::Display for RequestLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.subject, self.method, self.path)
    }
}

/// One entry of Dynatrace's `constraintViolations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: Option<String>,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) if !path.is_empty() => write!(f, "{path}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Everything that can go wrong talking to Dynatrace or preparing to.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LiveError {
    /// Dynatrace answered with a non-success status (after any retries).
    #[error("{request} returned {status}: {message}{}{}", violations_suffix(.violations), hint_suffix(*.status))]
    Status {
        request: Box<RequestLabel>,
        status: u16,
        /// Dynatrace's error message (redacted), or the start of the raw body.
        message: String,
        violations: Vec<Violation>,
        attempts: u32,
    },
    /// The request could not be completed (connection refused, reset, timeout) and retrying it
    /// was safe but did not help.
    #[error("{request} failed after {attempts} attempt(s): {reason}; hint: check that the URL is right and the host is reachable")]
    Transport {
        request: Box<RequestLabel>,
        reason: String,
        attempts: u32,
    },
    /// A request that is not safe to repeat (a create) failed in a way that leaves open whether
    /// Dynatrace processed it. The caller must look for the result (the marker in the token
    /// name) before trying again; DESIGN.md invariant 2.
    #[error("{request} may or may not have taken effect: {reason}; hint: re-read the live state (for a create, look for the token's marker) before repeating it")]
    Ambiguous {
        request: Box<RequestLabel>,
        reason: String,
    },
    /// Dynatrace answered with a success status but a body this client cannot read.
    #[error("{request}: unreadable response: {reason}")]
    Decode {
        request: Box<RequestLabel>,
        reason: String,
    },
    /// The request was stopped on purpose before it could be trusted: a redirect to another
    /// origin, which API calls never follow.
    #[error("{request}: {reason}")]
    Refused {
        request: Box<RequestLabel>,
        reason: String,
    },
    /// A management token, client id or client secret is missing from the environment.
    #[error(
        "{subject}: the variable `{var}` is not set or empty; hint: export {var}=... with {what}"
    )]
    MissingCredential {
        subject: Subject,
        var: String,
        what: &'static str,
    },
    /// The HTTP client itself could not be set up (TLS initialisation).
    #[error("cannot build the HTTP client: {reason}")]
    Client { reason: String },
    /// The endpoint configuration cannot be used (bad URL, no sandbox resolver, no `token_env`).
    #[error("{subject}: {reason}")]
    Config { subject: Subject, reason: String },
}

fn violations_suffix(violations: &[Violation]) -> String {
    if violations.is_empty() {
        return String::new();
    }
    let list: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
    format!(" ({})", list.join("; "))
}

fn hint_suffix(status: u16) -> &'static str {
    match status {
        401 => "; hint: the token was rejected: check that it is valid, enabled and not expired",
        403 => "; hint: the token lacks a permission or scope this call needs",
        429 => "; hint: Dynatrace is throttling requests; try again later or lower the concurrency",
        _ => "",
    }
}

/// What a [`LiveError`] means, whatever its wording: the one place Dynatrace's answers are
/// recognised (REFERENCE.md §3 and §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiFailure {
    /// 401: no token, or an unknown, disabled or expired one.
    Unauthenticated,
    /// 403 `Token is missing required scope. Use one of: …`.
    ScopeMissing,
    /// 403 for another reason (a platform token not valid for this account, an expired one).
    Forbidden,
    /// 404: the token (or the route) does not exist.
    NotFound,
    /// 400 from `tenantTokenRotation/start`: a rotation is already running.
    RotationAlreadyRunning,
    /// 400 from `tenantTokenRotation/finish` or `/cancel`: no rotation is running.
    NoRotationRunning,
    /// Any other 400 (`Constraints violated.` with its violations, among others).
    Invalid,
    /// 429: Dynatrace throttled the request, and the retries did not get through.
    RateLimited,
    /// 5xx after the retries.
    ServerError,
    /// Another status.
    OtherStatus,
    /// A write that may or may not have taken effect ([`LiveError::Ambiguous`]).
    AmbiguousWrite,
    /// No answer: the connection failed or timed out ([`LiveError::Transport`]).
    Unreachable,
    /// A success status with a body this client cannot read ([`LiveError::Decode`]).
    UnreadableAnswer,
    /// The client stopped an answer it must not trust, such as a redirect to another origin
    /// ([`LiveError::Refused`]).
    Untrusted,
    /// Nothing was sent: a credential, the HTTP client or the endpoint configuration is missing.
    NotConfigured,
}

/// The tenant rotation call a request is, from its path (`…/tenantTokenRotation/{step}`).
fn rotation_step(path: &str) -> Option<&str> {
    let (_, step) = path.split_once("/tenantTokenRotation/")?;
    Some(step.trim_end_matches('/'))
}

/// Classify a 400 answer. The rotation texts are the spec's wording, and REFERENCE.md marks the
/// exact messages UNCERTAIN: besides the recorded text, an answer of a rotation call is
/// recognised by the words of its meaning.
fn classify_bad_request(path: &str, message: &str) -> ApiFailure {
    if message == says::ROTATION_ALREADY_RUNNING {
        return ApiFailure::RotationAlreadyRunning;
    }
    if message == says::NO_ROTATION_TO_FINISH || message == says::NO_ROTATION_TO_CANCEL {
        return ApiFailure::NoRotationRunning;
    }
    let m = message.to_ascii_lowercase();
    let says_any = |words: &[&str]| words.iter().any(|w| m.contains(w));
    match rotation_step(path) {
        Some("finish" | "cancel")
            if says_any(&["no ongoing", "not in progress", "no rotation"]) =>
        {
            ApiFailure::NoRotationRunning
        }
        Some("start") if says_any(&["in progress", "already"]) => {
            ApiFailure::RotationAlreadyRunning
        }
        _ => ApiFailure::Invalid,
    }
}

impl LiveError {
    /// The HTTP status Dynatrace answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            LiveError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What this error means (see [`ApiFailure`]).
    pub fn failure(&self) -> ApiFailure {
        match self {
            LiveError::Status {
                request,
                status,
                message,
                ..
            } => match *status {
                400 => classify_bad_request(&request.path, message),
                401 => ApiFailure::Unauthenticated,
                403 if message.starts_with(says::MISSING_SCOPE_PREFIX.trim_end()) => {
                    ApiFailure::ScopeMissing
                }
                403 => ApiFailure::Forbidden,
                404 => ApiFailure::NotFound,
                429 => ApiFailure::RateLimited,
                500..=599 => ApiFailure::ServerError,
                _ => ApiFailure::OtherStatus,
            },
            LiveError::Ambiguous { .. } => ApiFailure::AmbiguousWrite,
            LiveError::Transport { .. } => ApiFailure::Unreachable,
            LiveError::Decode { .. } => ApiFailure::UnreadableAnswer,
            LiveError::Refused { .. } => ApiFailure::Untrusted,
            LiveError::MissingCredential { .. }
            | LiveError::Client { .. }
            | LiveError::Config { .. } => ApiFailure::NotConfigured,
        }
    }

    /// Whether the outcome of a non-idempotent request is unknown (see [`LiveError::Ambiguous`]).
    pub fn is_ambiguous(&self) -> bool {
        self.failure() == ApiFailure::AmbiguousWrite
    }

    /// Whether Dynatrace said the thing does not exist.
    pub fn is_not_found(&self) -> bool {
        self.failure() == ApiFailure::NotFound
    }

    /// The request this error belongs to, if it came from one.
    pub fn request(&self) -> Option<&RequestLabel> {
        match self {
            LiveError::Status { request, .. }
            | LiveError::Transport { request, .. }
            | LiveError::Ambiguous { request, .. }
            | LiveError::Decode { request, .. }
            | LiveError::Refused { request, .. } => Some(request),
            LiveError::MissingCredential { .. }
            | LiveError::Client { .. }
            | LiveError::Config { .. } => None,
        }
    }
}

pub use crate::model::redact::redact_tokens as redact;

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = concat!(
        "dt0c01.ST2EY72KQINMH574WMNVI7YN.",
        "G3DFPBEJYMODIDAEX454M7YWBUVEFOWK",
        "PRVMWFASS64NFH52PX6BNDVFFM572RZM"
    );

    #[test]
    fn redacts_tokens_keeps_ids() {
        let text = format!("token {SECRET} is bad; id dt0c01.ST2EY72KQINMH574WMNVI7YN ok");
        let red = redact(&text);
        assert!(!red.contains("G3DFPBEJ"), "{red}");
        assert_eq!(
            red,
            "token dt0c01.ST2EY72KQINMH574WMNVI7YN.<redacted> is bad; id dt0c01.ST2EY72KQINMH574WMNVI7YN ok"
        );
    }

    #[test]
    fn redacts_every_kind_and_adjacent_tokens() {
        let ag = concat!(
            "dt0g02.4KWZO5EF.",
            "XT47R5DRADJIZUFOX4UDNOKTSUSABGLN",
            "7XSMJG7UXHRXKNY4WLORH4OF4T75MG7E"
        );
        let text = format!("{ag}\"{SECRET},dt0s16.GND2EIRX.ABC");
        let red = redact(&text);
        assert_eq!(
            red,
            "dt0g02.4KWZO5EF.<redacted>\"dt0c01.ST2EY72KQINMH574WMNVI7YN.<redacted>,dt0s16.GND2EIRX.<redacted>"
        );
    }

    #[test]
    fn leaves_look_alikes_and_unicode_alone() {
        for text in [
            "dt0c1.AB.CD",
            "dt0cc1.AB.CD",
            "dt0c01..CD",
            "dt0",
            "ü dt0c01.X",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    fn answer(path: &str, status: u16, message: &str) -> LiveError {
        LiveError::Status {
            request: Box::new(RequestLabel {
                subject: Subject::Environment("prod".into()),
                method: "POST".into(),
                path: path.into(),
            }),
            status,
            message: message.into(),
            violations: Vec::new(),
            attempts: 1,
        }
    }

    #[test]
    fn the_shared_texts_are_the_recorded_ones() {
        // REFERENCE.md §3.1 and §6, verbatim: the sandbox answers with these constants.
        assert_eq!(
            says::MISSING_AUTHORIZATION,
            "Missing authorization parameter."
        );
        assert_eq!(says::AUTHENTICATION_FAILED, "Token Authentication failed");
        assert_eq!(
            says::MISSING_SCOPE_PREFIX,
            "Token is missing required scope. Use one of: "
        );
        assert_eq!(says::CONSTRAINTS_VIOLATED, "Constraints violated.");
        assert_eq!(says::NO_ROUTE, "HTTP 404 Not Found");
        assert_eq!(
            says::ROTATION_ALREADY_RUNNING,
            "Another rotation process is already in progress"
        );
        assert_eq!(says::NO_ROTATION_TO_FINISH, "No ongoing rotation process");
        assert_eq!(
            says::NO_ROTATION_TO_CANCEL,
            "There is no ongoing rotation process"
        );
    }

    #[test]
    fn classifies_the_recorded_answers() {
        let rotation = "/api/v2/tenantTokenRotation";
        let cases = [
            (
                format!("{rotation}/start"),
                400,
                "Another rotation process is already in progress",
                ApiFailure::RotationAlreadyRunning,
            ),
            (
                format!("{rotation}/finish"),
                400,
                "No ongoing rotation process",
                ApiFailure::NoRotationRunning,
            ),
            (
                format!("{rotation}/cancel"),
                400,
                "There is no ongoing rotation process",
                ApiFailure::NoRotationRunning,
            ),
            (
                "/api/v2/apiTokens".into(),
                401,
                "Missing authorization parameter.",
                ApiFailure::Unauthenticated,
            ),
            (
                "/api/v2/apiTokens".into(),
                401,
                "Token Authentication failed",
                ApiFailure::Unauthenticated,
            ),
            (
                "/api/v2/apiTokens".into(),
                403,
                "Token is missing required scope. Use one of: apiTokens.read (Read API tokens)",
                ApiFailure::ScopeMissing,
            ),
            (
                "/iam/v1/accounts/a/platform-tokens".into(),
                403,
                "The access token is not valid for this account.",
                ApiFailure::Forbidden,
            ),
            (
                "/api/v2/apiTokens/dt0c01.X".into(),
                404,
                "HTTP 404 Not Found",
                ApiFailure::NotFound,
            ),
            (
                "/api/v2/apiTokens".into(),
                400,
                "Constraints violated.",
                ApiFailure::Invalid,
            ),
            (
                "/api/v2/apiTokens".into(),
                429,
                "Too many requests",
                ApiFailure::RateLimited,
            ),
            (
                "/api/v2/apiTokens".into(),
                503,
                "Service Unavailable",
                ApiFailure::ServerError,
            ),
            (
                "/api/v2/apiTokens".into(),
                409,
                "Conflict",
                ApiFailure::OtherStatus,
            ),
        ];
        for (path, status, message, want) in cases {
            assert_eq!(
                answer(&path, status, message).failure(),
                want,
                "{status} {message}"
            );
        }
    }

    #[test]
    fn rotation_words_count_only_in_answers_to_rotation_calls() {
        let rotation = "/e/abc/api/v2/tenantTokenRotation";
        let cases = [
            (
                format!("{rotation}/start"),
                "A tenant token rotation is already running",
                ApiFailure::RotationAlreadyRunning,
            ),
            (
                format!("{rotation}/finish"),
                "Rotation not in progress",
                ApiFailure::NoRotationRunning,
            ),
            (
                format!("{rotation}/cancel"),
                "no rotation to cancel",
                ApiFailure::NoRotationRunning,
            ),
            (
                format!("{rotation}/start"),
                "Constraints violated.",
                ApiFailure::Invalid,
            ),
            // The same words elsewhere mean something else.
            (
                "/iam/v1/accounts/a/platform-tokens".into(),
                "the owner already has 10 platform tokens",
                ApiFailure::Invalid,
            ),
            (
                "/api/v2/apiTokens".into(),
                "no rotation",
                ApiFailure::Invalid,
            ),
        ];
        for (path, message, want) in cases {
            assert_eq!(
                answer(&path, 400, message).failure(),
                want,
                "{path} {message}"
            );
        }
    }

    #[test]
    fn errors_without_an_answer_are_classified_by_variant() {
        let request = || {
            Box::new(RequestLabel {
                subject: Subject::Environment("prod".into()),
                method: "POST".into(),
                path: "/api/v2/apiTokens".into(),
            })
        };
        let ambiguous = LiveError::Ambiguous {
            request: request(),
            reason: "timed out".into(),
        };
        assert_eq!(ambiguous.failure(), ApiFailure::AmbiguousWrite);
        assert!(ambiguous.is_ambiguous());
        let transport = LiveError::Transport {
            request: request(),
            reason: "refused".into(),
            attempts: 3,
        };
        assert_eq!(transport.failure(), ApiFailure::Unreachable);
        let config = LiveError::Config {
            subject: Subject::Account("main".into()),
            reason: "no client".into(),
        };
        assert_eq!(config.failure(), ApiFailure::NotConfigured);
    }

    #[test]
    fn error_messages_name_the_request() {
        let err = LiveError::Status {
            request: Box::new(RequestLabel {
                subject: Subject::Environment("prod".into()),
                method: "PUT".into(),
                path: "/api/v2/apiTokens/dt0c01.X".into(),
            }),
            status: 400,
            message: "Constraints violated.".into(),
            violations: vec![Violation {
                path: Some("scopes".into()),
                message: "must not be empty".into(),
            }],
            attempts: 1,
        };
        assert_eq!(
            err.to_string(),
            "environment `prod`: PUT /api/v2/apiTokens/dt0c01.X returned 400: Constraints violated. (scopes: must not be empty)"
        );
    }
}

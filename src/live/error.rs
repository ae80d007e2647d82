//! The typed error of every Dynatrace call, and the redaction that keeps tokens out of it.
//!
//! A [`LiveError`] names where it happened (the environment or account, the HTTP method and the
//! path), what Dynatrace answered (status, its error message, constraint violations) and, when
//! there is one, a hint. It never contains a token: every piece of text that came from the wire
//! passes through [`redact`] before it is stored, and request bodies are never included.
//!
//! This module does not decide what is retried (see `http`) nor how an error is reported to the
//! user (the commands wrap it with `anyhow` context).

use std::fmt;

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

impl LiveError {
    /// The HTTP status Dynatrace answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            LiveError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the outcome of a non-idempotent request is unknown (see [`LiveError::Ambiguous`]).
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, LiveError::Ambiguous { .. })
    }

    /// Whether Dynatrace said the thing does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
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

/// Replace every Dynatrace token in `text` (`dt0` + letter + 2 digits `.` public `.` secret,
/// the documented search pattern with any lengths) by its public id and `.<redacted>`.
/// Token ids (`dt0c01.ABC`, two parts) are not secret and are kept.
pub fn redact(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i + 3 <= bytes.len() {
        if let Some((id_end, end)) = token_at(bytes, i) {
            out.push_str(&text[copied..id_end]);
            out.push_str(".<redacted>");
            copied = end;
            i = end;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// If a token starts at `start`, the end of its id part and the end of the whole token.
fn token_at(b: &[u8], start: usize) -> Option<(usize, usize)> {
    let rest = &b[start..];
    if rest.len() < 7 || &rest[..3] != b"dt0" {
        return None;
    }
    if !rest[3].is_ascii_alphabetic() || !rest[4].is_ascii_digit() || !rest[5].is_ascii_digit() {
        return None;
    }
    if rest[6] != b'.' {
        return None;
    }
    let part = |from: usize| {
        rest[from..]
            .iter()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            .count()
    };
    let public = part(7);
    if public == 0 || rest.get(7 + public) != Some(&b'.') {
        return None;
    }
    let secret = part(8 + public);
    if secret == 0 {
        return None;
    }
    Some((start + 7 + public, start + 8 + public + secret))
}

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
            "dt0c01.ab.cd",
            "dt0",
            "ü dt0c01.X",
        ] {
            assert_eq!(redact(text), text);
        }
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

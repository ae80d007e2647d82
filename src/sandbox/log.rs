//! The request log: what the sandbox was asked and what it answered, for test assertions.
//!
//! Owns: [`LogEntry`] (method, path, status, environment, injected fault) and the redaction rule:
//! an `api-token` query parameter and any path segment that is a full `dt0…` secret are replaced
//! before anything is recorded. Bodies and headers are never logged.

use serde::{Deserialize, Serialize};

use super::mint::looks_like_secret;
use crate::model::TokenId;

/// How many entries are kept; older ones are dropped first.
pub const LOG_CAPACITY: usize = 100_000;

/// One handled API request (admin calls are not logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub seq: u64,
    pub method: String,
    /// Path and query, with secrets redacted.
    pub path: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// An injected fault, if one struck (`injected 429`, `dropped connection after commit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// `path?query` with secrets replaced: a full token in a path segment keeps its public id
/// (`dt0c01.ABC….<redacted>`); the `api-token` parameter's value becomes `<redacted>`.
pub fn redact_path(path: &str, query: Option<&str>) -> String {
    let mut out: String = path
        .split('/')
        .map(|seg| {
            let decoded = seg.replace("%2E", ".").replace("%2e", ".");
            if looks_like_secret(&decoded) {
                let id = TokenId::of_secret(&decoded)
                    .map(|i| i.0)
                    .unwrap_or_default();
                format!("{id}.<redacted>")
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        let q: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("api-token") => format!("{k}=<redacted>"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&q.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_the_log() {
        let secret = concat!(
            "dt0c01.ST2EY72KQINMH574WMNVI7YN.",
            "G3DFPBEJYMODIDAEX454M7YWBUVEFOWK",
            "PRVMWFASS64NFH52PX6BNDVFFM572RZM"
        );
        let logged = redact_path(
            &format!("/api/v2/apiTokens/{secret}"),
            Some(&format!("api-token={secret}&pageSize=100")),
        );
        assert!(!logged.contains("G3DFPBEJ"), "{logged}");
        assert_eq!(
            logged,
            "/api/v2/apiTokens/dt0c01.ST2EY72KQINMH574WMNVI7YN.<redacted>?api-token=<redacted>&pageSize=100"
        );
        assert_eq!(
            redact_path("/api/v2/apiTokens/dt0c01.ABC", None),
            "/api/v2/apiTokens/dt0c01.ABC"
        );
    }
}

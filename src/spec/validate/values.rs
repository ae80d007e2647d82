//! Checks of single values: environment variable names, URLs, UUIDs, scopes, ids to adopt and
//! token names.

use std::collections::BTreeSet;

use crate::model::plain_http_allowed;
use crate::model::token::{Generation, Marker, MAX_NAME_LEN};
use crate::model::{Endpoint, Preset, Scope, TokenKey, TokenKind};

use super::Finding;

/// Platform token names may be this long.
pub const MAX_PLATFORM_NAME_LEN: usize = 255;

/// Room kept in names for markers of up to this generation.
pub const NAME_CHECK_GENERATION: Generation = Generation(999);

/// Whether `name` can be an environment variable name.
pub fn is_env_var_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a field that names an environment variable holding a secret.
pub fn check_env_var(field: &str, name: &str) -> Option<Finding> {
    if looks_like_secret(name) {
        return Some(
            Finding::error(format!(
                "`{field}` holds what looks like a token or secret; it must name an environment variable"
            ))
            .help("never put secrets in the spec: export the value and write the variable's name, e.g. `DT_PROD_ADMIN_TOKEN`"),
        );
    }
    (!is_env_var_name(name)).then(|| {
        Finding::error(format!("`{name}` is not a valid environment variable name"))
            .help("use letters, digits and `_`, not starting with a digit")
    })
}

fn looks_like_secret(value: &str) -> bool {
    value.starts_with("dt0") && value.contains('.') || value.len() >= 40 && !value.contains('_')
}

/// Whether a name of an environment or account is acceptable.
pub fn check_entry_name(kind: &str, name: &str) -> Option<Finding> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (!ok).then(|| {
        Finding::error(format!("`{name}` is not a valid {kind} name"))
            .help("use up to 64 letters, digits, `-`, `_` and `.`, starting with a letter or digit")
    })
}

/// Parses an environment URL: SaaS, Managed (`/e/{env-id}`), or `sandbox://NAME`. Plain `http`
/// is accepted only for loopback hosts (a local test server): an IP in 127.0.0.0/8, `::1`, or
/// exactly `localhost` ([`plain_http_allowed`]); `127.0.0.1.nip.io` is a name like any other.
pub fn parse_endpoint(url: &str) -> Result<Endpoint, Finding> {
    if let Some(name) = url.strip_prefix("sandbox://") {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        return if ok {
            Ok(Endpoint::Sandbox {
                name: name.to_owned(),
            })
        } else {
            Err(
                Finding::error(format!("`{url}` is not a valid sandbox URL"))
                    .help("write `sandbox://NAME` with letters, digits, `-` and `_`"),
            )
        };
    }
    let shapes = "expected `https://{id}.live.dynatrace.com`, `https://{host}/e/{env-id}` or `sandbox://NAME`";
    let parsed = url::Url::parse(url)
        .map_err(|e| Finding::error(format!("`{url}` is not a URL: {e}")).help(shapes))?;
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let loopback = plain_http_allowed(&parsed);
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(Finding::error(format!("`{url}` uses plain http")).help(
                "Dynatrace is reached over https; plain http is only for loopback test servers",
            ))
        }
        other => {
            return Err(
                Finding::error(format!("`{url}` has the unsupported scheme `{other}`"))
                    .help(shapes),
            )
        }
    }
    if host.is_empty() {
        return Err(Finding::error(format!("`{url}` has no host")).help(shapes));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Finding::error("the URL contains credentials")
            .help("never put credentials in the spec; use `token_env`"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Finding::error(format!("`{url}` has a query or fragment")).help(shapes));
    }
    if host.ends_with(".apps.dynatrace.com") {
        return Err(
            Finding::error(format!("`{url}` is a platform (apps) URL")).help(
                "the token APIs are served from the classic URL: `https://{id}.live.dynatrace.com`",
            ),
        );
    }
    let path = parsed.path().trim_end_matches('/');
    if path.contains("/api") {
        return Err(Finding::error(format!("`{url}` includes an API path"))
            .help("give the environment's base URL; tokensmith appends `/api/v2/…`"));
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let managed = matches!(segments.as_slice(), ["e", id] if id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !segments.is_empty() && !managed {
        return Err(
            Finding::error(format!("`{url}` has an unexpected path `{path}`")).help(shapes),
        );
    }
    let base = parsed.as_str().trim_end_matches('/').to_owned();
    Ok(Endpoint::Url { base })
}

/// The environment id that platform-token resources name (`urn:dtenvironment:<id>`).
pub fn environment_id(endpoint: &Endpoint, fallback: &str) -> String {
    match endpoint {
        Endpoint::Sandbox { name } => name.clone(),
        Endpoint::Url { base } => {
            let Ok(url) = url::Url::parse(base) else {
                return fallback.to_owned();
            };
            let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
            if let ["e", id] = segments.as_slice() {
                return (*id).to_owned();
            }
            match url.host_str() {
                Some(host) if host.contains(".dynatrace") => {
                    host.split('.').next().unwrap_or(fallback).to_owned()
                }
                _ => fallback.to_owned(),
            }
        }
    }
}

/// Checks an account API or OAuth URL; returns it without a trailing slash.
pub fn check_service_url(url: &str) -> Result<String, Finding> {
    let parsed =
        url::Url::parse(url).map_err(|e| Finding::error(format!("`{url}` is not a URL: {e}")))?;
    let loopback = plain_http_allowed(&parsed);
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(Finding::error(format!("`{url}` must use https"))
                .help("plain http is only for loopback test servers"))
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Finding::error("the URL contains credentials")
            .help("never put credentials in the spec"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Whether `s` is a UUID (8-4-4-4-12 hex digits).
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Checks one scope written for an access token.
pub fn check_scope(scope: &Scope, personal_access_token: bool) -> Option<Finding> {
    if scope.is_legacy_only() {
        return Some(
            Finding::error(format!(
                "scope `{scope}` can no longer be given to new tokens (removed in Dynatrace 1.247)"
            ))
            .help("remove it; existing tokens keep it, new ones cannot have it"),
        );
    }
    if !scope.is_creatable() {
        let f = Finding::error(format!("unknown scope `{scope}`"));
        return Some(match scope.suggest() {
            Some(s) => f.help(format!("did you mean `{s}`?")),
            None => f.help("see the scope list in the Dynatrace access-token documentation"),
        });
    }
    if personal_access_token && !scope.allowed_for_personal_access_token() {
        return Some(
            Finding::error(format!(
                "personal access tokens cannot have scope `{scope}`"
            ))
            .help("remove the scope or set `personal_access_token: false`"),
        );
    }
    None
}

/// Checks one scope written for a platform token (`storage:logs:read`).
pub fn check_platform_scope(scope: &str) -> Option<Finding> {
    let parts: Vec<&str> = scope.split(':').collect();
    let ok = parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok && scope.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(
            Finding::error(format!("platform scope `{scope}` is not lowercase")).help(format!(
                "platform scopes are lowercase and case-sensitive: `{}`",
                scope.to_ascii_lowercase()
            )),
        );
    }
    if ok {
        return None;
    }
    let f = Finding::error(format!("`{scope}` is not a platform-token scope"));
    Some(if Scope::from(scope).is_creatable() {
        f.help("that is an access-token scope; platform tokens use scopes like `storage:logs:read`")
    } else {
        f.help("platform scopes look like `storage:logs:read` or `settings:objects:read`")
    })
}

/// What excluding `scope` from a token with `preset` means.
pub fn check_exclusion(scope: &Scope, preset: Option<Preset>, has: bool) -> Option<Finding> {
    if let Some(preset) = preset {
        if let Some((_, why)) = preset.required().iter().find(|(s, _)| *s == scope.as_str()) {
            return Some(
                Finding::error(format!(
                    "preset `{}` needs `{scope}` ({why}); excluding it breaks the consumer",
                    preset.as_str()
                ))
                .help("remove it from `exclude_scopes`, or drop the preset and list the scopes yourself"),
            );
        }
        if let Some((_, why)) = preset.optional().iter().find(|(s, _)| *s == scope.as_str()) {
            return Some(Finding::warning(format!(
                "excluding `{scope}` turns off a feature of the `{}` consumer: {why}",
                preset.as_str()
            )));
        }
    }
    (!has).then(|| {
        Finding::warning(format!(
            "`{scope}` is excluded but the token would not have it anyway"
        ))
    })
}

/// Checks the token id given to `adopt` for a token of `kind`.
pub fn parse_adopt(id: &str, kind: TokenKind) -> Result<crate::model::TokenId, Finding> {
    let prefix = match kind {
        TokenKind::ApiToken => "dt0c01",
        TokenKind::ActivegateToken => "dt0g02",
        TokenKind::PlatformToken => "dt0s16",
        TokenKind::TenantToken => "",
    };
    if kind == TokenKind::ActivegateToken {
        return Err(Finding::error("ActiveGate tokens cannot be adopted: Dynatrace cannot rename them to carry tokensmith's marker")
            .help("remove `adopt`; tokensmith creates a new token, and the old one can be deleted once its consumers switched"));
    }
    let parts: Vec<&str> = id.split('.').collect();
    if parts.len() == 3 {
        return Err(Finding::error("`adopt` holds a token secret, not a token id")
            .help(format!("write only the id (`{prefix}.PUBLICPART`, the part before the second `.`); revoke the exposed token")));
    }
    let ok = parts.len() == 2
        && parts[0] == prefix
        && !parts[1].is_empty()
        && parts[1].chars().all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(crate::model::TokenId::new(id))
    } else {
        Err(
            Finding::error(format!("`{id}` is not a {kind} id")).help(format!(
                "a {kind} id looks like `{prefix}.ST2EY72KQINMH574`"
            )),
        )
    }
}

/// Checks a display name (after templating) against the name limit with the marker appended.
pub fn check_name(display: &str, key: &TokenKey, kind: TokenKind) -> Option<Finding> {
    if display.trim().is_empty() {
        return Some(Finding::error("the token name is empty"));
    }
    if let Some(c) = display
        .chars()
        .find(|c| c.is_control() || is_bidi_control(*c))
    {
        return Some(
            Finding::error(format!(
                "the token name contains the invisible or control character U+{:04X}",
                c as u32
            ))
            .help("line breaks and bidirectional controls make a name display differently from what it is; remove them"),
        );
    }
    let max = match kind {
        TokenKind::PlatformToken => MAX_PLATFORM_NAME_LEN,
        _ => MAX_NAME_LEN,
    };
    let total = display.trim().chars().count() + 1 + Marker::tag_chars(key, NAME_CHECK_GENERATION);
    (total > max).then(|| {
        let tag = Marker::new(key.clone(), NAME_CHECK_GENERATION).tag();
        Finding::error(format!(
            "the token name would be {total} characters with its marker `{tag}`; Dynatrace allows {max}"
        ))
        .help(format!(
            "shorten `name` (or the key) by {} characters",
            total - max
        ))
    })
}

/// Unicode bidirectional formatting characters (U+202A–U+202E, U+2066–U+2069, U+200E/F,
/// U+061C): they reorder how text displays.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// The scopes of a set that are not allowed on a personal access token.
pub fn pat_forbidden(scopes: &BTreeSet<Scope>) -> Vec<&Scope> {
    scopes
        .iter()
        .filter(|s| s.is_creatable() && !s.allowed_for_personal_access_token())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("https://abc12345.live.dynatrace.com/").unwrap(),
            Endpoint::Url {
                base: "https://abc12345.live.dynatrace.com".into()
            }
        );
        assert!(
            parse_endpoint("https://dt.example.com/e/6a1c1a9e-4c21-4d0d-9a3e-1e0d3f2b7c11").is_ok()
        );
        assert!(parse_endpoint("http://127.0.0.1:8080/e/demo").is_ok());
        assert!(parse_endpoint("http://127.3.4.5:8080").is_ok());
        assert!(parse_endpoint("http://[::1]:8080").is_ok());
        assert!(parse_endpoint("http://localhost:8080").is_ok());
        for bad in [
            "http://127.0.0.1.evil.example",
            "http://127.evil.example/sso",
            "http://127.0.0.1.nip.io",
        ] {
            assert!(check_service_url(bad).is_err(), "{bad}");
        }
        assert!(check_service_url("http://127.0.0.1:9/sso").is_ok());
        assert!(parse_endpoint("sandbox://demo").is_ok());
        for bad in [
            "http://abc12345.live.dynatrace.com",
            "https://abc12345.apps.dynatrace.com",
            "https://abc12345.live.dynatrace.com/api/v2",
            "https://user:pw@abc.live.dynatrace.com",
            "https://abc.live.dynatrace.com/x/y",
            "sandbox://",
            "http://127.0.0.1.evil.example",
            "http://127.evil.example",
            "http://127.0.0.1.nip.io/e/abc",
            "http://localhost.evil.example",
            "ftp://x",
            "not a url",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
        let managed = parse_endpoint("https://dt.example.com/e/abc-1").unwrap();
        assert_eq!(environment_id(&managed, "x"), "abc-1");
        let saas = parse_endpoint("https://abc12345.live.dynatrace.com").unwrap();
        assert_eq!(environment_id(&saas, "x"), "abc12345");
    }

    #[test]
    fn scopes() {
        assert!(check_scope(&Scope::from("apiTokens.read"), false).is_none());
        let f = check_scope(&Scope::from("apiToken.read"), false).unwrap();
        assert_eq!(f.help.as_deref(), Some("did you mean `apiTokens.read`?"));
        assert!(check_scope(&Scope::from("ViewDashboard"), false)
            .unwrap()
            .message
            .contains("1.247"));
        assert!(check_scope(&Scope::from("DataExport"), true).is_some());
        assert!(check_platform_scope("storage:logs:read").is_none());
        assert!(check_platform_scope("apiTokens.read").is_some());
        let f = check_platform_scope("Storage:Logs:Read").unwrap();
        assert!(f.help.unwrap().contains("`storage:logs:read`"));
    }

    #[test]
    fn adopt_ids() {
        assert!(parse_adopt("dt0c01.ABC123", TokenKind::ApiToken).is_ok());
        assert!(parse_adopt("dt0g02.ABC123", TokenKind::ApiToken).is_err());
        let ag = parse_adopt("dt0g02.ABC123", TokenKind::ActivegateToken).unwrap_err();
        assert!(ag.message.contains("cannot be adopted"), "{}", ag.message);
        let secret = parse_adopt("dt0c01.ABC.SECRETPART", TokenKind::ApiToken).unwrap_err();
        assert!(!secret.message.contains("SECRETPART"));
    }

    #[test]
    fn names_fit_with_the_marker() {
        let key = TokenKey::parse("k8s-operator").unwrap();
        assert!(check_name("k8s operator", &key, TokenKind::ApiToken).is_none());
        assert!(check_name(&"x".repeat(90), &key, TokenKind::ApiToken).is_some());
        assert!(check_name(&"x".repeat(90), &key, TokenKind::PlatformToken).is_none());
        assert!(check_name("ops\nbackup", &key, TokenKind::ApiToken).is_some());
        let bidi = check_name("ops \u{202E}pukcab", &key, TokenKind::ApiToken).unwrap();
        assert!(bidi.message.contains("U+202E"), "{}", bidi.message);
    }
}

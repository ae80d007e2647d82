//! Token identity: kinds, ids, keys, generations and the ownership marker.
//!
//! Dynatrace token names are not unique and tokens carry no tags, so a managed token carries an
//! ownership marker at the end of its name: `<display name> [ts:<key>#<generation>]`, for example
//! `k8s operator [ts:k8s-operator#3]`. The key is the desired token's stable key from the spec;
//! the generation counts rotations (1 for the first token, +1 for each successor). The whole
//! name stays within Dynatrace's 100 characters: the display part is shortened, never the marker.
//!
//! Parsing is strict: a name is managed only when it ends with exactly this marker, with a valid
//! key and a generation without leading zeros. A name that merely looks similar
//! (`[ts:foo#01]`, `[TS:foo#1]`, `[ts:foo#1] ` with a trailing space) is unmanaged and left alone.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The longest token name Dynatrace accepts for API and ActiveGate tokens.
pub const MAX_NAME_LEN: usize = 100;

/// The longest key that fits in a marker while leaving room for a display name.
pub const MAX_KEY_LEN: usize = 64;

/// How long Dynatrace keeps an expired classic API token (`dt0c01`) before deleting it: it stays
/// listed (answering 401) for 7 days after its expiry, then GET answers 404
/// (`shared/research/dynatrace-2026-facts.md`, "Classic tokens"). The planner uses it to tell a
/// purged token from one deleted outside git, the inventory to date the purge, and the sandbox
/// to purge.
pub const CLASSIC_PURGE_AFTER_EXPIRY: time::Duration = time::Duration::days(7);

/// The kinds of token tokensmith manages.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Classic access token (`dt0c01`), including PaaS, operator and data-ingest tokens.
    ApiToken,
    /// ActiveGate token (`dt0g02`).
    ActivegateToken,
    /// The environment's tenant token used by OneAgents and ActiveGates.
    TenantToken,
    /// Account-level platform token (`dt0s16`).
    PlatformToken,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::ApiToken => "api_token",
            TokenKind::ActivegateToken => "activegate_token",
            TokenKind::TenantToken => "tenant_token",
            TokenKind::PlatformToken => "platform_token",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The public identifier of a token (`dt0c01.ST2EY72KQINMH574WMNVI7YN`): prefix and public part,
/// never the secret part. Safe to print, log and store.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct TokenId(pub String);

impl TokenId {
    pub fn new(s: impl Into<String>) -> Self {
        TokenId(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of a full token string (`prefix.public.secret` → `prefix.public`). Returns `None` for
    /// strings that are not in the `dt0…` three-part format (old-format tokens have no public id).
    pub fn of_secret(token: &str) -> Option<TokenId> {
        match super::redact::token_spans(token).as_slice() {
            [span] if span.whole() == (0..token.len()) => {
                Some(TokenId(token[..span.id_end].to_owned()))
            }
            _ => None,
        }
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// What an account's lock name starts with ([`EnvName::account_lock`]).
pub const ACCOUNT_LOCK_PREFIX: &str = "account-";

/// The name of an environment as declared in the spec (`prod`, `eu-managed`, `demo`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct EnvName(pub String);

impl EnvName {
    pub fn new(s: impl Into<String>) -> Self {
        EnvName(s.into())
    }

    /// The name under which the apply lock of account `account` is kept (its lock file, git
    /// ref and lease): [`ACCOUNT_LOCK_PREFIX`] and the account's name. The spec refuses an
    /// environment whose name is that of a declared account's lock, so that one lock name
    /// never stands for two things.
    pub fn account_lock(account: &str) -> Self {
        EnvName(format!("{ACCOUNT_LOCK_PREFIX}{account}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The stable key of a desired token: its name in the spec after `for_each` expansion and
/// templating (`k8s-operator`, `data-ingest-eu-1`). Unique per token kind and environment.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct TokenKey(String);

impl TokenKey {
    /// A key, if it uses only `A-Z a-z 0-9 . _ - /`, starts with a letter or digit and is at most
    /// [`MAX_KEY_LEN`] characters.
    pub fn parse(s: &str) -> Result<TokenKey, String> {
        if s.is_empty() {
            return Err("a token key cannot be empty".into());
        }
        if s.len() > MAX_KEY_LEN {
            return Err(format!(
                "token key `{s}` is {} characters; keys are at most {MAX_KEY_LEN} so that the name marker fits in Dynatrace's 100",
                s.len()
            ));
        }
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "token key `{s}` must start with a letter or a digit"
            ));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
        {
            return Err(format!(
                "token key `{s}` contains `{bad}`; use letters, digits, `.`, `_`, `-` and `/`"
            ));
        }
        Ok(TokenKey(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// How many times a desired token has been rotated: 1 for the first token, +1 per successor.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Generation(pub u32);

impl Generation {
    pub const FIRST: Generation = Generation(1);

    pub fn next(self) -> Generation {
        Generation(self.0.saturating_add(1))
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Writes a marker's text, `[ts:<key>#<generation>]`: the one place its shape is spelled.
fn write_tag(out: &mut impl fmt::Write, key: &TokenKey, generation: Generation) -> fmt::Result {
    write!(out, "[ts:{key}#{generation}]")
}

/// The ownership marker carried at the end of a managed token's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Marker {
    pub key: TokenKey,
    pub generation: Generation,
}

impl Marker {
    pub fn new(key: TokenKey, generation: Generation) -> Self {
        Marker { key, generation }
    }

    /// The marker text, `[ts:<key>#<generation>]`.
    pub fn tag(&self) -> String {
        let mut tag = String::new();
        let _ = write_tag(&mut tag, &self.key, self.generation);
        tag
    }

    /// The characters of the [`Marker::tag`] of `key` at `generation`, counted without building
    /// it or the marker (validation checks the length of every token's name).
    pub fn tag_chars(key: &TokenKey, generation: Generation) -> usize {
        struct Count(usize);
        impl fmt::Write for Count {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0 += s.chars().count();
                Ok(())
            }
        }
        let mut count = Count(0);
        let _ = write_tag(&mut count, key, generation);
        count.0
    }

    /// The full token name: the display name, shortened on a character boundary if needed so
    /// that the whole name fits in `max_len` characters, a space, and the marker.
    pub fn name_with(&self, display: &str, max_len: usize) -> String {
        let tag = self.tag();
        let room = max_len.saturating_sub(tag.chars().count() + 1);
        let display = display.trim();
        let shortened: String = if display.chars().count() > room {
            let mut s: String = display.chars().take(room.saturating_sub(1)).collect();
            s = s.trim_end().to_owned();
            s.push('…');
            s
        } else {
            display.to_owned()
        };
        if shortened.is_empty() {
            tag
        } else {
            format!("{shortened} {tag}")
        }
    }

    /// The marker of a token name, if it has exactly one well-formed marker at its very end.
    pub fn parse_name(name: &str) -> Option<Marker> {
        let body = name.strip_suffix(']')?;
        let start = body.rfind("[ts:")?;
        // The marker is the whole name or is separated from the display name by one space.
        if start > 0 && !body[..start].ends_with(' ') {
            return None;
        }
        let inner = &body[start + 4..];
        let (key, generation) = inner.rsplit_once('#')?;
        let key = TokenKey::parse(key).ok()?;
        if generation.is_empty()
            || generation.starts_with('0')
            || !generation.chars().all(|c| c.is_ascii_digit())
        {
            return None;
        }
        let generation = Generation(generation.parse().ok()?);
        Some(Marker { key, generation })
    }

    /// The display part of a managed token name (everything before the marker).
    pub fn display_part(name: &str) -> &str {
        match name.rfind(" [ts:") {
            Some(i) if Marker::parse_name(name).is_some() => &name[..i],
            _ => name,
        }
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> TokenKey {
        TokenKey::parse(s).unwrap()
    }

    #[test]
    fn marker_round_trips_through_a_name() {
        let m = Marker::new(key("k8s-operator"), Generation(3));
        let name = m.name_with("k8s operator", MAX_NAME_LEN);
        assert_eq!(name, "k8s operator [ts:k8s-operator#3]");
        assert_eq!(Marker::parse_name(&name), Some(m));
        assert_eq!(Marker::display_part(&name), "k8s operator");
    }

    #[test]
    fn tag_chars_counts_the_tag() {
        for (k, g) in [
            ("a", 1),
            ("k8s-operator", 3),
            ("team/data-ingest.eu_1", 4_000_000_000),
        ] {
            let m = Marker::new(key(k), Generation(g));
            assert_eq!(
                Marker::tag_chars(&m.key, m.generation),
                m.tag().chars().count()
            );
        }
    }

    #[test]
    fn long_display_names_are_shortened_not_the_marker() {
        let m = Marker::new(key("data-ingest-eu-1"), Generation(12));
        let name = m.name_with(&"x".repeat(300), MAX_NAME_LEN);
        assert_eq!(name.chars().count(), MAX_NAME_LEN);
        assert_eq!(Marker::parse_name(&name), Some(m));
    }

    #[test]
    fn look_alikes_are_unmanaged() {
        for name in [
            "op [ts:k8s#01]",
            "op [TS:k8s#1]",
            "op [ts:k8s#1] ",
            "op[ts:k8s#1]",
            "op [ts:#1]",
            "op [ts:k8s#]",
            "op [ts:k8s#-1]",
            "op [ts:k8s#1x]",
            "op [ts:k 8s#1]",
            "op [ts:k8s#99999999999]",
            "k8s operator",
        ] {
            assert_eq!(Marker::parse_name(name), None, "{name}");
        }
        assert!(Marker::parse_name("[ts:k8s#1]").is_some());
    }

    #[test]
    fn token_id_of_a_secret() {
        assert_eq!(
            TokenId::of_secret("dt0c01.ST2EY72KQINMH574WMNVI7YN.G3DF")
                .unwrap()
                .as_str(),
            "dt0c01.ST2EY72KQINMH574WMNVI7YN"
        );
        assert_eq!(TokenId::of_secret("abcdefjhij1234567890"), None);
    }
}

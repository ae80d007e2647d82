//! The one rule for "this text holds a Dynatrace token secret", and the redaction built on it.
//!
//! A token is `dt0` + a letter + two digits (`dt0c01`, `dt0g02`, `dt0s16`, `dt0s02`), a dot, a
//! public part, a dot and a secret part; both parts are ASCII letters and digits. The prefix and
//! the public part together are the token id, which is not secret and stays readable; the secret
//! part is replaced. The rule is deliberately lax about case (Dynatrace mints upper case, but a
//! value pasted in lower case is just as secret) and strict about the prefix, so ordinary words
//! are never touched.
//!
//! Every place that scans text for secrets uses this module: API error texts, spec diagnostics,
//! the sandbox's request log, journals, delivery errors and the test helpers that grep output.

use std::ops::Range;

/// What replaces a secret part.
pub const REDACTED: &str = "<redacted>";

/// One token found in a text: where it starts, where its id ends and where its secret ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSpan {
    pub start: usize,
    pub id_end: usize,
    pub end: usize,
}

impl TokenSpan {
    /// The byte range of the whole token (id and secret).
    pub fn whole(&self) -> Range<usize> {
        self.start..self.end
    }

    /// The byte range of the secret part (after the second dot).
    pub fn secret(&self) -> Range<usize> {
        self.id_end + 1..self.end
    }
}

/// Every token in `text`, left to right, not overlapping.
pub fn token_spans(text: &str) -> Vec<TokenSpan> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 <= bytes.len() {
        match token_at(bytes, i) {
            Some(span) => {
                i = span.end;
                out.push(span);
            }
            None => i += 1,
        }
    }
    out
}

/// The environment variables that a child process tokensmith starts without choosing its whole
/// environment (`git` for a lock kept in a remote, a kubeconfig's exec plugin) must not inherit:
/// every variable whose value holds a Dynatrace token, whatever its name, and the credential
/// variables the spec names (`named`, whatever their values look like). Exec targets get a clean
/// environment instead (`deliver::exec`).
pub fn variables_holding_secrets<'a>(named: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names = crate::cli::env_vars::names_whose_value(|v| !token_spans(v).is_empty());
    names.extend(named.into_iter().map(str::to_owned));
    names.sort();
    names.dedup();
    names
}

/// Whether `text` is exactly one token secret and nothing else.
pub fn is_token_secret(text: &str) -> bool {
    matches!(token_spans(text).as_slice(), [span] if span.whole() == (0..text.len()))
}

/// `text` with the secret part of every token replaced by [`REDACTED`].
pub fn redact_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for span in token_spans(text) {
        out.push_str(&text[copied..=span.id_end]);
        out.push_str(REDACTED);
        copied = span.end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The token starting at `start`, if one does. A token must not continue a longer word.
fn token_at(b: &[u8], start: usize) -> Option<TokenSpan> {
    let rest = &b[start..];
    if rest.len() < 7 || &rest[..3] != b"dt0" {
        return None;
    }
    if start > 0 && b[start - 1].is_ascii_alphanumeric() {
        return None;
    }
    if !rest[3].is_ascii_alphabetic() || !rest[4].is_ascii_digit() || !rest[5].is_ascii_digit() {
        return None;
    }
    if rest[6] != b'.' {
        return None;
    }
    let part = |from: usize| {
        rest.get(from..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
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
    Some(TokenSpan {
        start,
        id_end: start + 7 + public,
        end: start + 8 + public + secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> String {
        format!(
            "dt0c01.{}.{}",
            "ST2EY72KQINMH574WMNVI7YN",
            "G3DF".repeat(16)
        )
    }

    /// (nextest runs each test in a process of its own, so the variables touch no other test.)
    #[test]
    fn variables_holding_tokens_or_named_as_credentials_are_hidden() {
        std::env::set_var("TS_TEST_TOKEN_IN_VALUE", format!("Api-Token {}", secret()));
        std::env::set_var("TS_TEST_NAMED", "not token-shaped");
        std::env::set_var("TS_TEST_PLAIN", "dt0c01.ST2EY72KQINMH574WMNVI7YN");
        let hidden = variables_holding_secrets(["TS_TEST_NAMED", "TS_TEST_UNSET"]);
        for name in ["TS_TEST_TOKEN_IN_VALUE", "TS_TEST_NAMED", "TS_TEST_UNSET"] {
            assert!(hidden.iter().any(|h| h == name), "{name} in {hidden:?}");
        }
        assert!(
            !hidden.iter().any(|h| h == "TS_TEST_PLAIN"),
            "a token id alone is no secret: {hidden:?}"
        );
    }

    #[test]
    fn redacts_secrets_and_keeps_ids() {
        let text = format!(
            "token {} is bad; id dt0c01.ST2EY72KQINMH574WMNVI7YN ok",
            secret()
        );
        assert_eq!(
            redact_tokens(&text),
            "token dt0c01.ST2EY72KQINMH574WMNVI7YN.<redacted> is bad; id dt0c01.ST2EY72KQINMH574WMNVI7YN ok"
        );
    }

    #[test]
    fn every_kind_adjacent_and_lower_case() {
        let text = format!(
            "dt0g02.4KWZO5EF.{}\"{},dt0s16.GND2EIRX.abc9 dt0s02.CLIENT",
            "X".repeat(64),
            secret()
        );
        let red = redact_tokens(&text);
        assert_eq!(
            red,
            "dt0g02.4KWZO5EF.<redacted>\"dt0c01.ST2EY72KQINMH574WMNVI7YN.<redacted>,dt0s16.GND2EIRX.<redacted> dt0s02.CLIENT"
        );
    }

    #[test]
    fn look_alikes_are_left_alone() {
        for s in [
            "dt0 dt0c dt0.",
            "adopt: dt0c01.ABC",
            "xdt0c01.A.B",
            "dt0cc1.A.B",
            "dt0c01..B",
        ] {
            assert_eq!(redact_tokens(s), s);
        }
    }

    #[test]
    fn a_whole_secret_is_recognised() {
        assert!(is_token_secret(&secret()));
        assert!(!is_token_secret(&format!(" {}", secret())));
        assert!(!is_token_secret("dt0c01.ST2EY72KQINMH574WMNVI7YN"));
        assert!(!is_token_secret(&format!("{}.extra", secret())));
    }
}

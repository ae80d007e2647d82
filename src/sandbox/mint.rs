//! Minting token strings and checking secrets.
//!
//! Owns: generating `dt0c01.<24>.<64>`, `dt0g02.<8>.<64>`, `dt0s16.<8>.<64>` strings from the OS
//! random generator, base32 (RFC 4648 alphabet, as the Dynatrace operator's own generator does),
//! tenant-token and OAuth access-token values, and the one-way fingerprint the state keeps instead
//! of a token's secret. It does not store anything.

use rand::RngCore;

use crate::model::{Secret, TokenId};

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// `n` random base32 characters.
pub fn random_base32(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| BASE32[(*b & 31) as usize] as char)
        .collect()
}

/// `n` random lower-case letters and digits (tenant tokens, OAuth access tokens).
pub fn random_alnum_lower(n: usize) -> String {
    const ALNUM: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    // 252 = 7 * 36: rejection-free enough for a test fixture; the bias is irrelevant here.
    bytes
        .iter()
        .map(|b| ALNUM[(*b as usize) % 36] as char)
        .collect()
}

/// The kinds of token string the sandbox mints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// `dt0c01.<24>.<64>`: access tokens (API tokens, PATs, PaaS tokens).
    Access,
    /// `dt0g02.<8>.<64>`: ActiveGate tokens.
    ActiveGate,
    /// `dt0s16.<8>.<64>`: platform tokens.
    Platform,
}

impl TokenFormat {
    fn prefix_and_len(self) -> (&'static str, usize) {
        match self {
            TokenFormat::Access => ("dt0c01", 24),
            TokenFormat::ActiveGate => ("dt0g02", 8),
            TokenFormat::Platform => ("dt0s16", 8),
        }
    }

    /// A fresh token: its public id and the full secret string.
    pub fn mint(self) -> (TokenId, Secret<String>) {
        let (prefix, len) = self.prefix_and_len();
        let id = format!("{prefix}.{}", random_base32(len));
        let secret = format!("{id}.{}", random_base32(64));
        (TokenId::new(id), Secret::new(secret))
    }
}

/// The fingerprint stored instead of a secret: hex SHA-256 of the whole token string.
pub fn fingerprint(secret: &str) -> String {
    crate::model::encode::sha256_hex(secret.as_bytes())
}

/// Whether a request path segment or value is a full `dt0…` token secret (three parts), which
/// must never reach a log.
pub fn looks_like_secret(s: &str) -> bool {
    crate::model::redact::is_token_secret(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_have_the_documented_shape() {
        for (fmt, prefix, public) in [
            (TokenFormat::Access, "dt0c01", 24),
            (TokenFormat::ActiveGate, "dt0g02", 8),
            (TokenFormat::Platform, "dt0s16", 8),
        ] {
            let (id, secret) = fmt.mint();
            let parts: Vec<&str> = secret.expose().split('.').collect();
            assert_eq!(parts[0], prefix);
            assert_eq!(parts[1].len(), public);
            assert_eq!(parts[2].len(), 64);
            assert!(parts[1..].iter().all(|p| p
                .chars()
                .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))));
            assert_eq!(TokenId::of_secret(secret.expose()), Some(id));
        }
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("a").len(), 64);
    }
}

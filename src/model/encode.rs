//! The two text encodings every layer shows: timestamps as RFC 3339 and digests as lower-case
//! SHA-256 hex. One definition each, so a plan, a journal, a target record and the sandbox never
//! disagree on how a time or a hash is written.

use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A timestamp as plans, messages and records show it (`2027-01-01T00:00:00Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Lower-case hex of a digest or any bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// SHA-256 of some bytes, lower-case hex (64 characters).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            rfc3339(time::macros::datetime!(2027-01-01 00:00 UTC)),
            "2027-01-01T00:00:00Z"
        );
    }
}

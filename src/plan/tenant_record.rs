//! The record of an open tenant token rotation, kept in the environment itself: the system token
//! [`SystemToken::TenantRotation`], a disabled API token named
//! `tenant rotation[ sent][ wo=<digest>@<time>] [ts:tokensmith.tenant-rotation#1]`.
//!
//! Its creation date is when tokensmith started (or took over) the rotation. Its name carries
//! two secret-free notes, set by rename:
//! - `sent`: a delivery to a target that cannot be read back was attempted in this rotation, so
//!   the new tenant token may be in use somewhere no read shows (cancelling is no longer safe).
//! - `wo=<digest>@<time>`: every write-only target's command succeeded in this rotation at that
//!   time; `<digest>` is 8 hex digits of the SHA-256 of the sorted addresses of those targets,
//!   so adding a write-only target to the spec makes the note stale and that target is delivered.
//!
//! The value of the new tenant token is not in the record: it is read again from
//! `connectioninfo`. Why the environment and not the spec repository's remote or a local file:
//! every runner that can plan can list the environment's tokens, and what Dynatrace knows about
//! the rotation (`tenantTokenRotation/status`) lives in the same place, so they cannot diverge
//! by a lost push. How the record survives a crash between any two steps is written in
//! `plan::tenant`.
//!
//! This module reads and writes the record's name; the steps that create, rename and delete it
//! are in `apply::steps::tenant`.

use sha2::{Digest, Sha256};
use time::macros::format_description;
use time::OffsetDateTime;

use crate::model::{Generation, LiveToken, Marker, Scope, SystemToken, TargetAddress, TokenId};

/// The display part every record name starts with.
const DISPLAY: &str = "tenant rotation";

/// The one scope the record carries. It is disabled and its secret is dropped when it is
/// created, so the scope grants nothing; a read-only one is chosen anyway.
pub const RECORD_SCOPE: &str = "geographicRegions.read";

/// What a record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRecord {
    pub id: TokenId,
    /// When the rotation started (the token's creation date).
    pub started: Option<OffsetDateTime>,
    pub enabled: bool,
    pub notes: RecordNotes,
}

/// The notes in a record's name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordNotes {
    /// A delivery to a target that cannot be read back was attempted.
    pub sent: bool,
    /// Every write-only target (by digest) confirmed at this time (as written, minute precision).
    pub write_only: Option<(String, String)>,
}

impl RecordNotes {
    /// The record's full name, marker included (at most 100 characters).
    pub fn name(&self) -> String {
        let mut display = DISPLAY.to_owned();
        if self.sent {
            display.push_str(" sent");
        }
        if let Some((digest, at)) = &self.write_only {
            display.push_str(&format!(" wo={digest}@{at}"));
        }
        Marker::new(SystemToken::TenantRotation.key(), Generation::FIRST)
            .name_with(&display, crate::model::token::MAX_NAME_LEN)
    }

    fn parse(display: &str) -> RecordNotes {
        let mut notes = RecordNotes::default();
        for word in display.split_whitespace() {
            if word == "sent" {
                notes.sent = true;
            } else if let Some((digest, at)) =
                word.strip_prefix("wo=").and_then(|w| w.split_once('@'))
            {
                notes.write_only = Some((digest.to_owned(), at.to_owned()));
            }
        }
        notes
    }

    /// Whether the write-only targets with this digest all confirmed the new token.
    pub fn confirms(&self, digest: &str) -> bool {
        self.write_only.as_ref().is_some_and(|(d, _)| d == digest)
    }
}

/// The record's scope.
pub fn record_scope() -> Scope {
    Scope::new(RECORD_SCOPE)
}

/// Every rotation record among an environment's API tokens, oldest first.
pub fn records(api_tokens: &[LiveToken]) -> Vec<RotationRecord> {
    let mut found: Vec<RotationRecord> = api_tokens
        .iter()
        .filter(|t| is_record(t))
        .map(|t| RotationRecord {
            id: t.id.clone(),
            started: t.created,
            enabled: t.enabled,
            notes: RecordNotes::parse(Marker::display_part(&t.name)),
        })
        .collect();
    found.sort_by(|a, b| (a.started, &a.id).cmp(&(b.started, &b.id)));
    found
}

/// Whether a token is a tenant rotation record.
pub fn is_record(token: &LiveToken) -> bool {
    Marker::parse_name(&token.name)
        .is_some_and(|m| SystemToken::of_marker(&m) == Some(SystemToken::TenantRotation))
}

/// The digest of a set of write-only target addresses (order does not matter).
pub fn write_only_digest<'a>(addresses: impl IntoIterator<Item = &'a TargetAddress>) -> String {
    let mut sorted: Vec<&str> = addresses.into_iter().map(|a| a.0.as_str()).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut h = Sha256::new();
    for a in sorted {
        h.update(a.as_bytes());
        h.update([0u8]);
    }
    h.finalize()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A time as the `wo=` note writes it: `2026-12-01T05:37Z`.
pub fn note_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!("[year]-[month]-[day]T[hour]:[minute]Z"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn names_round_trip_and_fit_in_100_characters() {
        let digest = write_only_digest([&TargetAddress("exec:a".into())]);
        let notes = RecordNotes {
            sent: true,
            write_only: Some((
                digest.clone(),
                note_time(datetime!(2026-12-01 05:37:12 UTC)),
            )),
        };
        let name = notes.name();
        assert_eq!(
            name,
            format!("tenant rotation sent wo={digest}@2026-12-01T05:37Z [ts:tokensmith.tenant-rotation#1]")
        );
        assert!(name.len() <= 100, "{name}");
        assert_eq!(RecordNotes::parse(Marker::display_part(&name)), notes);
        assert!(notes.confirms(&digest));
        assert!(!notes.confirms("00000000"));
        let plain = RecordNotes::default();
        assert_eq!(
            plain.name(),
            "tenant rotation [ts:tokensmith.tenant-rotation#1]"
        );
        assert_eq!(
            RecordNotes::parse(Marker::display_part(&plain.name())),
            plain
        );
    }

    #[test]
    fn the_digest_ignores_order_and_repeats_but_not_membership() {
        let a = TargetAddress("exec:a".into());
        let b = TargetAddress("exec:b".into());
        assert_eq!(write_only_digest([&a, &b]), write_only_digest([&b, &a, &b]));
        assert_ne!(write_only_digest([&a]), write_only_digest([&a, &b]));
        assert_eq!(write_only_digest([&a]).len(), 8);
    }
}

//! System tokens: the few facts Dynatrace cannot report about tokensmith's own work, kept in the
//! environment itself so that every runner sees them (DESIGN.md, "Identity, ownership and
//! state"). Each is a disabled API token whose name ends in a marker with a reserved key:
//!
//! - `tokensmith.lease`: an apply lease. Each applier creates one, lists them, and the oldest
//!   unexpired lease wins; the others delete theirs and back off.
//! - `tokensmith.tenant-rotation`: the record of an open tenant-token rotation; its creation
//!   date is when the rotation started.
//!
//! The reserved keys start with `tokensmith.`, which the spec refuses as a token key, so a
//! system token is never mistaken for a desired token, planned, pruned or reported as unmanaged.
//! This module only names them; the lock and tenant modules create and read them.

use super::token::{Marker, TokenKey};

/// The prefix of every reserved key; spec keys may not start with it.
pub const RESERVED_KEY_PREFIX: &str = "tokensmith.";

/// The kinds of system token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemToken {
    /// An apply lease (see `lock`).
    ApplyLease,
    /// The record of an open tenant-token rotation.
    TenantRotation,
}

impl SystemToken {
    pub const ALL: [SystemToken; 2] = [SystemToken::ApplyLease, SystemToken::TenantRotation];

    /// The reserved marker key of this kind.
    pub fn key(self) -> TokenKey {
        TokenKey::parse(match self {
            SystemToken::ApplyLease => "tokensmith.lease",
            SystemToken::TenantRotation => "tokensmith.tenant-rotation",
        })
        .expect("reserved keys are valid token keys")
    }

    /// The kind of system token a token name carries the marker of, if any.
    pub fn of_name(name: &str) -> Option<SystemToken> {
        Marker::parse_name(name).and_then(|m| SystemToken::of_marker(&m))
    }

    /// The kind of system token a marker belongs to, if its key is reserved.
    pub fn of_marker(marker: &Marker) -> Option<SystemToken> {
        SystemToken::ALL
            .into_iter()
            .find(|kind| kind.key() == marker.key)
    }
}

/// Whether a token key is in the reserved namespace (known kind or not: a newer tokensmith may
/// add kinds, and an older one must leave them alone too).
pub fn is_reserved_key(key: &str) -> bool {
    key.starts_with(RESERVED_KEY_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Generation;

    #[test]
    fn reserved_keys_round_trip_through_markers() {
        for kind in SystemToken::ALL {
            let marker = Marker::new(kind.key(), Generation::FIRST);
            let parsed = Marker::parse_name(&marker.name_with("tokensmith lease", 100)).unwrap();
            assert_eq!(SystemToken::of_marker(&parsed), Some(kind));
            assert!(is_reserved_key(parsed.key.as_str()));
        }
        let user = Marker::new(TokenKey::parse("ci").unwrap(), Generation::FIRST);
        assert_eq!(SystemToken::of_marker(&user), None);
        assert!(!is_reserved_key("tokensmith-ci"));
    }
}

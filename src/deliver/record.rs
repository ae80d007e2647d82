//! What a target records next to the value: which token it holds, never the token itself.
//!
//! One textual form is used everywhere a record is written (a comment line, a sidecar file, a
//! Kubernetes annotation, the environment of an exec command): a token id with the token's expiry
//! when it has one (`dt0c01.ST2EY72… until 2026-12-01T10:00:00Z`), or
//! `tenant:<fingerprint> since <rfc3339>` for the tenant token. A bare token id, the form written
//! before expiries were recorded, still reads (with no expiry). The expiry lets the planner tell a
//! classic token Dynatrace purged 7 days after it expired from one deleted outside git.
//!
//! This module owns that form, its parser, and the rule that turns "value read back + record"
//! into a [`Holder`]. It does no I/O.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::model::target::tenant_fingerprint;
use crate::model::{Holder, Secret, TokenId};

/// The marker that starts a record comment line: `# tokensmith: holds <record>`.
pub const COMMENT_PREFIX: &str = "# tokensmith: holds ";

/// What a target records next to a delivered value. Secret-free by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An access token (API, ActiveGate or platform token), recorded by its public id and, when
    /// it has one, its expiry (whole seconds; see [`Record::token`]).
    Token {
        id: TokenId,
        expires: Option<OffsetDateTime>,
    },
    /// The tenant token, recorded by its fingerprint and the time it was written.
    Tenant {
        fingerprint: String,
        at: OffsetDateTime,
    },
}

/// The word between a token id and its expiry in the textual form.
const UNTIL: &str = " until ";

impl Record {
    /// The record for an access token, with its expiry cut to whole seconds (what the textual
    /// form keeps, so a record equals its own read-back).
    pub fn token(id: TokenId, expires: Option<OffsetDateTime>) -> Record {
        Record::Token {
            id,
            expires: expires.map(|e| e.replace_nanosecond(0).unwrap_or(e)),
        }
    }

    /// The record for a tenant token value written now.
    pub fn tenant(value: &Secret<String>, at: OffsetDateTime) -> Record {
        Record::Tenant {
            fingerprint: tenant_fingerprint(value.expose()),
            at,
        }
    }

    /// The textual form (`dt0c01.XXX`, `dt0c01.XXX until <rfc3339>` or
    /// `tenant:<fingerprint> since <rfc3339>`).
    pub fn encode(&self) -> String {
        match self {
            Record::Token { id, expires: None } => id.as_str().to_owned(),
            Record::Token {
                id,
                expires: Some(e),
            } => format!("{id}{UNTIL}{}", utc(*e)),
            Record::Tenant { fingerprint, at } => {
                format!("tenant:{fingerprint} since {}", utc(*at))
            }
        }
    }

    /// Parse the textual form. `tenant:<fingerprint>` without a time is accepted (exec read
    /// commands may print only that) and yields `None` for the time; so is a bare token id (the
    /// form written before expiries were recorded), with `None` for the expiry.
    pub fn decode(text: &str) -> Option<Parsed> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("tenant:") {
            let (fingerprint, since) = match rest.split_once(" since ") {
                Some((fp, at)) => (fp.trim(), OffsetDateTime::parse(at.trim(), &Rfc3339).ok()),
                None => (rest.trim(), None),
            };
            if fingerprint.is_empty() || !fingerprint.chars().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            return Some(Parsed::Tenant {
                fingerprint: fingerprint.to_ascii_lowercase(),
                since,
            });
        }
        let (id, expires) = match text.split_once(UNTIL) {
            Some((id, at)) => (
                id.trim(),
                Some(OffsetDateTime::parse(at.trim(), &Rfc3339).ok()?),
            ),
            None => (text, None),
        };
        if is_token_id(id) {
            return Some(Parsed::Token {
                id: TokenId::new(id),
                expires,
            });
        }
        None
    }

    /// What names the token, without its expiry: the id, or the tenant form (as
    /// [`Parsed::subject`] of the read-back record).
    pub fn subject(&self) -> String {
        match self {
            Record::Token { id, .. } => id.to_string(),
            Record::Tenant { .. } => self.encode(),
        }
    }

    /// The holder a target reports after this record was written.
    pub fn holder(&self) -> Holder {
        match self {
            Record::Token { id, expires } => Holder::Token {
                id: id.clone(),
                expires: *expires,
            },
            Record::Tenant { fingerprint, at } => Holder::TenantToken {
                fingerprint: fingerprint.clone(),
                since: Some(*at),
            },
        }
    }

    /// Whether `value` is the value this record describes, when that can be told from the value
    /// alone: a `dt0…` token's public part is its id; a tenant token's fingerprint is computed.
    /// Returns `Err` with a secret-free reason when they disagree.
    pub fn check_matches(&self, value: &Secret<String>) -> Result<(), String> {
        match self {
            Record::Token { id, .. } => match TokenId::of_secret(value.expose()) {
                Some(of_value) if &of_value != id => Err(format!(
                    "the value is token {of_value} but the record says {id}"
                )),
                // A `dt0…` id has a `dt0…` value (only old-format tokens, whose ids are not of
                // that shape, have opaque values): a server that answered a create with some
                // other text has not given the token's value.
                None if is_token_id(id.as_str()) => Err(format!(
                    "the value is not a Dynatrace token, but the record says {id}"
                )),
                _ => Ok(()),
            },
            Record::Tenant { fingerprint, .. } => {
                let of_value = tenant_fingerprint(value.expose());
                if &of_value == fingerprint {
                    Ok(())
                } else {
                    Err(format!(
                        "the value has fingerprint {of_value} but the record says {fingerprint}"
                    ))
                }
            }
        }
    }
}

/// Records serialize as their textual form, so a journal can carry them.
impl serde::Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

impl<'de> serde::Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match Record::decode(&text) {
            Some(Parsed::Token { id, expires }) => Ok(Record::token(id, expires)),
            Some(Parsed::Tenant {
                fingerprint,
                since: Some(at),
            }) => Ok(Record::Tenant { fingerprint, at }),
            _ => Err(serde::de::Error::custom(format!(
                "`{text}` is not a record (a token id, `<token id> until <rfc3339>`, or `tenant:<fingerprint> since <rfc3339>`)"
            ))),
        }
    }
}

/// A record read back from a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Token {
        id: TokenId,
        expires: Option<OffsetDateTime>,
    },
    Tenant {
        fingerprint: String,
        since: Option<OffsetDateTime>,
    },
}

impl Parsed {
    /// What names the token, without its expiry: the id, or `tenant:<fingerprint>` (with its
    /// time when recorded).
    pub fn subject(&self) -> String {
        match self {
            Parsed::Token { id, .. } => id.to_string(),
            Parsed::Tenant {
                fingerprint,
                since: Some(at),
            } => format!("tenant:{fingerprint} since {}", utc(*at)),
            Parsed::Tenant { fingerprint, .. } => format!("tenant:{fingerprint}"),
        }
    }

    pub fn into_holder(self) -> Holder {
        match self {
            Parsed::Token { id, expires } => Holder::Token { id, expires },
            Parsed::Tenant { fingerprint, since } => Holder::TenantToken { fingerprint, since },
        }
    }
}

/// A token id: `dt0…` prefix, a dot, a non-empty public part, and nothing secret after it.
pub fn is_token_id(text: &str) -> bool {
    let mut parts = text.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(prefix), Some(public), None) => {
            prefix.starts_with("dt0")
                && !public.is_empty()
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
        }
        _ => false,
    }
}

/// The holder of a target from the value read back (if any) and the record found next to it.
///
/// The value wins over the record when they disagree, because the value is what consumers use:
/// - a `dt0…` token value is reported by its own public id (a stale or missing record does not
///   matter), with the record's expiry only when the record names that id;
/// - any other non-empty value is reported as a tenant token by its fingerprint, with the
///   record's time only when the record's fingerprint matches the value, except that a token-id
///   record next to an opaque value is trusted (old-format tokens have no public id);
/// - an empty value is [`Holder::Unknown`].
///
/// Without the value (write-only readers), the record alone decides.
pub fn holder_from(value: Option<&str>, record: Option<Parsed>) -> Holder {
    let Some(value) = value else {
        return record.map_or(Holder::Unknown, Parsed::into_holder);
    };
    if value.is_empty() {
        return Holder::Unknown;
    }
    if let Some(id) = TokenId::of_secret(value) {
        let expires = match record {
            Some(Parsed::Token {
                id: recorded,
                expires,
            }) if recorded == id => expires,
            _ => None,
        };
        return Holder::Token { id, expires };
    }
    let fingerprint = tenant_fingerprint(value);
    match record {
        Some(Parsed::Token { id, expires }) => Holder::Token { id, expires },
        Some(Parsed::Tenant {
            fingerprint: recorded,
            since,
        }) if recorded == fingerprint => Holder::TenantToken { fingerprint, since },
        _ => Holder::TenantToken {
            fingerprint,
            since: None,
        },
    }
}

/// Whether two holders name the same token (ids, or tenant fingerprints).
pub fn same_token(a: &Holder, b: &Holder) -> bool {
    match (a, b) {
        (Holder::Token { id: x, .. }, Holder::Token { id: y, .. }) => x == y,
        (
            Holder::TenantToken { fingerprint: x, .. },
            Holder::TenantToken { fingerprint: y, .. },
        ) => x == y,
        _ => false,
    }
}

/// An instant in the textual form: RFC 3339 in UTC.
fn utc(at: OffsetDateTime) -> String {
    crate::model::encode::rfc3339(at.to_offset(time::UtcOffset::UTC))
}

/// `# tokensmith: holds <record>` with the given indentation.
pub fn comment_line(indent: &str, record: &Record) -> String {
    format!("{indent}{COMMENT_PREFIX}{}", record.encode())
}

/// The record of a comment line, if the line is one.
pub fn parse_comment_line(line: &str) -> Option<Parsed> {
    let rest = line.trim_start().strip_prefix(COMMENT_PREFIX)?;
    Record::decode(rest)
}

/// Whether a line is a tokensmith record comment (valid or not).
pub fn is_comment_line(line: &str) -> bool {
    line.trim_start().starts_with(COMMENT_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_token_record_is_matched_only_by_that_tokens_value() {
        let id = TokenId::new("dt0c01.ST2EY72KQINMH574WMNVI7YN");
        let record = Record::token(id.clone(), None);
        let own = Secret::new(format!("{id}.{}", "S".repeat(64)));
        assert_eq!(record.check_matches(&own), Ok(()));
        let other = Secret::new(format!(
            "dt0c01.AAAAAAAAAAAAAAAAAAAAAAAA.{}",
            "S".repeat(64)
        ));
        assert!(record
            .check_matches(&other)
            .unwrap_err()
            .contains("the value is token"));
        // A create answered with text that is no token at all.
        let garbage = Secret::new("garbage".to_owned());
        let err = record.check_matches(&garbage).unwrap_err();
        assert!(err.contains("not a Dynatrace token"), "{err}");
        assert!(!err.contains("garbage"), "the value is not quoted: {err}");
        // An old-format token (its id is not of the dt0 shape) has an opaque value.
        let old = Record::token(TokenId::new("a1b2c3d4e5f6a7b8c9d0e"), None);
        assert_eq!(old.check_matches(&garbage), Ok(()));
    }

    #[test]
    fn records_round_trip() {
        let token = Record::token(TokenId::new("dt0c01.ABC"), None);
        assert_eq!(
            Record::decode(&token.encode()),
            Some(Parsed::Token {
                id: TokenId::new("dt0c01.ABC"),
                expires: None
            })
        );
        let tenant = Record::Tenant {
            fingerprint: "0123456789ab".into(),
            at: datetime!(2026-11-22 10:00 UTC),
        };
        assert_eq!(
            tenant.encode(),
            "tenant:0123456789ab since 2026-11-22T10:00:00Z"
        );
        assert_eq!(
            Record::decode(&tenant.encode()).map(Parsed::into_holder),
            Some(tenant.holder())
        );
        let json = serde_json::to_string(&tenant).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), tenant);
        assert!(serde_json::from_str::<Record>("\"dt0c01.A.SECRET\"").is_err());
    }

    #[test]
    fn a_token_record_carries_its_expiry_and_the_old_bare_id_still_reads() {
        // Cut to whole seconds, in UTC, whatever offset and precision it was made with.
        let expires = datetime!(2026-12-01 11:30:15.123456 +01:00);
        let token = Record::token(TokenId::new("dt0c01.ABC"), Some(expires));
        assert_eq!(token.encode(), "dt0c01.ABC until 2026-12-01T10:30:15Z");
        let parsed = Record::decode(&token.encode()).unwrap();
        assert_eq!(
            parsed,
            Parsed::Token {
                id: TokenId::new("dt0c01.ABC"),
                expires: Some(datetime!(2026-12-01 10:30:15 UTC)),
            }
        );
        assert_eq!(parsed.into_holder(), token.holder());
        let json = serde_json::to_string(&token).unwrap();
        assert_eq!(json, "\"dt0c01.ABC until 2026-12-01T10:30:15Z\"");
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), token);
        // As a comment line, with the surrounding indentation.
        let line = comment_line("  ", &token);
        assert!(is_comment_line(&line));
        assert_eq!(
            parse_comment_line(&line).map(Parsed::into_holder),
            Some(token.holder())
        );

        // The form written before expiries were recorded: a bare id, no expiry.
        let old = Record::decode("dt0c01.ABC").unwrap();
        assert_eq!(
            old.into_holder(),
            Holder::Token {
                id: TokenId::new("dt0c01.ABC"),
                expires: None
            }
        );
        assert_eq!(
            serde_json::from_str::<Record>("\"dt0c01.ABC\"").unwrap(),
            Record::token(TokenId::new("dt0c01.ABC"), None)
        );

        // Neither a bad time nor a secret after the id makes a record.
        assert_eq!(Record::decode("dt0c01.ABC until tomorrow"), None);
        assert_eq!(
            Record::decode("dt0c01.ABC.SECRET until 2026-12-01T10:30:15Z"),
            None
        );
        assert!(serde_json::from_str::<Record>("\"dt0c01.ABC until soon\"").is_err());
    }

    #[test]
    fn the_expiry_of_a_record_counts_only_for_the_token_it_names() {
        let e = datetime!(2026-12-01 10:00 UTC);
        let rec = |id: &str| {
            Some(Parsed::Token {
                id: TokenId::new(id),
                expires: Some(e),
            })
        };
        assert_eq!(
            holder_from(Some("dt0c01.SAME.SECRET"), rec("dt0c01.SAME")),
            Holder::Token {
                id: TokenId::new("dt0c01.SAME"),
                expires: Some(e)
            }
        );
        assert_eq!(
            holder_from(Some("dt0c01.NEW.SECRET"), rec("dt0c01.OLD")),
            Holder::Token {
                id: TokenId::new("dt0c01.NEW"),
                expires: None
            }
        );
        // Write-only readers: the record alone.
        assert_eq!(
            holder_from(None, rec("dt0c01.SAME")),
            Holder::Token {
                id: TokenId::new("dt0c01.SAME"),
                expires: Some(e)
            }
        );
    }

    #[test]
    fn a_full_token_is_never_a_record() {
        assert_eq!(Record::decode("dt0c01.ABC.SECRETPART"), None);
        assert_eq!(Record::decode("hello"), None);
        assert_eq!(Record::decode("tenant:"), None);
    }

    #[test]
    fn the_value_wins_over_a_stale_record() {
        let stale = Some(Parsed::Token {
            id: TokenId::new("dt0c01.OLD"),
            expires: None,
        });
        assert_eq!(
            holder_from(Some("dt0c01.NEW.SECRET"), stale),
            Holder::Token {
                id: TokenId::new("dt0c01.NEW"),
                expires: None,
            }
        );
        let fp = tenant_fingerprint("opaque-tenant");
        let other = Some(Parsed::Tenant {
            fingerprint: "000000000000".into(),
            since: Some(datetime!(2026-01-01 0:00 UTC)),
        });
        assert_eq!(
            holder_from(Some("opaque-tenant"), other),
            Holder::TenantToken {
                fingerprint: fp,
                since: None
            }
        );
        assert_eq!(holder_from(Some(""), None), Holder::Unknown);
    }
}

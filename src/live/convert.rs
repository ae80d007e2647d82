//! From wire types to the model's [`LiveToken`], and the date formats both directions.
//!
//! Missing optional fields become `None`/defaults; unknown enum values are kept where the model
//! can hold them (scopes) and dropped where it cannot (an ActiveGate type this version does not
//! know becomes `None`). A date that does not parse is an error naming the token and the field,
//! because a wrong expiry would make a wrong plan (DESIGN.md invariant 7).

use std::collections::BTreeSet;

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::wire::{ActiveGateTokenDto, ApiTokenDto, PlatformTokenDto};
use crate::model::{ActiveGateType, LiveToken, Scope, TokenId, TokenKind};

/// A date Dynatrace sent that this client cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDate {
    pub token: String,
    pub field: &'static str,
    pub value: String,
}

impl std::fmt::Display for BadDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "token {}: `{}` is not a date ({:?})",
            self.token, self.field, self.value
        )
    }
}

/// Checks the ids of a token list: every entry has one, and no id is listed twice. A list that
/// fails is not live state (an entry without an id cannot be planned for; a repeated id would
/// plan two steps for one token). The error names the list field and the entry.
pub fn check_list_ids<'a>(
    list: &str,
    id_field: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    let ids = ids.into_iter();
    let mut seen = std::collections::HashSet::with_capacity(ids.size_hint().0);
    for (i, id) in ids.enumerate() {
        if id.trim().is_empty() {
            return Err(format!(
                "malformed token list: entry {i} of `{list}` has no `{id_field}`"
            ));
        }
        if !seen.insert(id) {
            return Err(format!(
                "malformed token list: `{list}` lists `{id_field}` {} more than once",
                id.chars().take(60).collect::<String>()
            ));
        }
    }
    Ok(())
}

/// Parse a Dynatrace timestamp: RFC 3339 (`2022-03-08T11:31:53.218Z`, millis optional), or the
/// same without an offset (read as UTC).
pub fn parse_date(value: &str) -> Option<OffsetDateTime> {
    let value = value.trim();
    if let Some(t) = parse_utc_millis(value) {
        return Some(t);
    }
    parse_date_general(value)
}

/// The shape every date of the environment APIs has, `yyyy-MM-ddTHH:mm:ss.SSSZ`, read digit by
/// digit (a list page carries several per token); `None` for anything else, including an
/// impossible date or time of that shape, which [`parse_date_general`] then judges.
fn parse_utc_millis(value: &str) -> Option<OffsetDateTime> {
    let b: &[u8; 24] = value.as_bytes().try_into().ok()?;
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ];
    if b[23] != b'Z' || separators.iter().any(|&(i, c)| b[i] != c) {
        return None;
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0u16, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u16::from(d - b'0'))
        })
    };
    let month = time::Month::try_from(u8::try_from(number(5, 7)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::from(number(0, 4)?),
        month,
        u8::try_from(number(8, 10)?).ok()?,
    )
    .ok()?;
    let time = time::Time::from_hms_milli(
        u8::try_from(number(11, 13)?).ok()?,
        u8::try_from(number(14, 16)?).ok()?,
        u8::try_from(number(17, 19)?).ok()?,
        number(20, 23)?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Every shape [`parse_date`] accepts, through `time`'s parsers.
fn parse_date_general(value: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(t);
    }
    let local = time::macros::format_description!(
        version = 2,
        "[year]-[month]-[day][first [T][ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(value, local)
        .ok()
        .map(|t| t.assume_utc())
}

/// Format a date the way the API writes them: `yyyy-MM-ddTHH:mm:ss.SSSZ` in UTC.
pub fn format_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(format).expect("a UTC date always formats")
}

fn date(
    token: &str,
    field: &'static str,
    value: &Option<String>,
) -> Result<Option<OffsetDateTime>, BadDate> {
    match value.as_deref() {
        None | Some("") => Ok(None),
        Some(v) => parse_date(v).map(Some).ok_or_else(|| BadDate {
            token: token.to_owned(),
            field,
            value: v.chars().take(40).collect(),
        }),
    }
}

fn scopes(list: Option<Vec<String>>) -> BTreeSet<Scope> {
    list.into_iter().flatten().map(Scope::new).collect()
}

/// An `ActiveGateType` from its wire name; unknown names give `None`.
pub fn activegate_type(value: &str) -> Option<ActiveGateType> {
    match value {
        "ENVIRONMENT" => Some(ActiveGateType::Environment),
        "CLUSTER" => Some(ActiveGateType::Cluster),
        _ => None,
    }
}

/// The wire name of an `ActiveGateType`.
pub fn activegate_type_name(t: ActiveGateType) -> &'static str {
    match t {
        ActiveGateType::Environment => "ENVIRONMENT",
        ActiveGateType::Cluster => "CLUSTER",
    }
}

/// An API token of the wire as the model holds it; the strings move over, nothing is copied.
pub fn api_token(dto: ApiTokenDto) -> Result<LiveToken, BadDate> {
    let id = dto.id.as_str();
    let created = date(id, "creationDate", &dto.creation_date)?;
    let modified = date(id, "modifiedDate", &dto.modified_date)?;
    let expires = date(id, "expirationDate", &dto.expiration_date)?;
    let last_used = date(id, "lastUsedDate", &dto.last_used_date)?;
    Ok(LiveToken {
        kind: TokenKind::ApiToken,
        id: TokenId::new(dto.id),
        name: dto.name.unwrap_or_default(),
        // `enabled` is a default field; a token that exists and says nothing is taken as enabled.
        enabled: dto.enabled.unwrap_or(true),
        owner: dto.owner,
        personal_access_token: dto.personal_access_token.unwrap_or(false),
        created,
        modified,
        expires,
        last_used,
        last_used_from: dto.last_used_ip_address,
        scopes: scopes(dto.scopes),
        activegate_type: None,
        seed: false,
        resources: Vec::new(),
    })
}

/// An ActiveGate token of the wire as the model holds it, moving its strings.
pub fn activegate_token(dto: ActiveGateTokenDto) -> Result<LiveToken, BadDate> {
    let id = dto.id.as_str();
    let created = date(id, "creationDate", &dto.creation_date)?;
    let expires = date(id, "expirationDate", &dto.expiration_date)?;
    let last_used = date(id, "lastUsedDate", &dto.last_used_date)?;
    Ok(LiveToken {
        kind: TokenKind::ActivegateToken,
        id: TokenId::new(dto.id),
        name: dto.name.unwrap_or_default(),
        enabled: true,
        owner: dto.owner,
        personal_access_token: false,
        created,
        modified: None,
        expires,
        last_used,
        last_used_from: None,
        scopes: BTreeSet::new(),
        activegate_type: dto.active_gate_type.as_deref().and_then(activegate_type),
        seed: dto.seed_token.unwrap_or(false),
        resources: Vec::new(),
    })
}

pub fn platform_token(dto: &PlatformTokenDto) -> Result<LiveToken, BadDate> {
    let id = dto.token_id.as_str();
    let last_used = dto.metadata.as_ref().and_then(|m| m.last_used_at.clone());
    Ok(LiveToken {
        kind: TokenKind::PlatformToken,
        id: TokenId::new(id),
        name: dto.name.clone().unwrap_or_default(),
        enabled: dto.status.as_deref() == Some("ACTIVE"),
        // The owner's UUID when given: the spec names owners by UUID and the 10-per-owner limit
        // is counted by it (`owner` is an email or `<uuid>@service.sso.dynatrace.com`).
        owner: dto
            .user_uuid
            .clone()
            .map(|u| u.to_ascii_lowercase())
            .or_else(|| dto.owner.clone()),
        personal_access_token: false,
        created: date(id, "createdAt", &dto.created_at)?,
        modified: date(id, "updatedAt", &dto.updated_at)?,
        expires: date(id, "expirationDate", &dto.expiration_date)?,
        last_used: date(id, "metadata.lastUsedAt", &last_used)?,
        last_used_from: None,
        scopes: scopes(dto.scope.clone()),
        activegate_type: None,
        seed: false,
        resources: dto.resource.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dates_in_the_shapes_dynatrace_sends() {
        assert_eq!(
            parse_date("2022-03-08T11:31:53.218Z"),
            Some(datetime!(2022-03-08 11:31:53.218 UTC))
        );
        assert_eq!(
            parse_date("2027-01-01T00:00:00Z"),
            Some(datetime!(2027-01-01 00:00:00 UTC))
        );
        assert_eq!(
            parse_date("2021-01-25T05:57:01.123+01:00"),
            Some(datetime!(2021-01-25 04:57:01.123 UTC))
        );
        assert_eq!(
            parse_date("2021-01-25 05:57:01"),
            Some(datetime!(2021-01-25 05:57:01 UTC))
        );
        assert_eq!(parse_date("now+14d"), None);
        assert_eq!(
            format_date(datetime!(2026-12-01 08:15:30.1449 +02:00)),
            "2026-12-01T06:15:30.144Z"
        );
    }

    #[test]
    fn the_fast_date_path_agrees_with_the_general_parsers() {
        let fast = [
            "2026-11-01T09:00:00.000Z",
            "2024-02-29T23:59:59.999Z",
            "0000-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
            "1970-01-01T00:00:00.001Z",
        ];
        for v in fast {
            assert!(parse_utc_millis(v).is_some(), "{v}");
            assert_eq!(parse_date(v), parse_date_general(v), "{v}");
        }
        // Same length and shape but not a valid instant, or not quite the shape: the general
        // parsers decide, exactly as before the fast path existed.
        let odd = [
            "2023-02-29T00:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "2026-00-01T00:00:00.000Z",
            "2026-01-32T00:00:00.000Z",
            "2026-01-01T24:00:00.000Z",
            "2026-01-01T23:60:00.000Z",
            "2016-12-31T23:59:60.000Z",
            "2026-01-01T00:00:00.000z",
            "2026-01-01t00:00:00.000Z",
            "2026-01-01 00:00:00.000Z",
            "2026-01-01T00:00:00,000Z",
            "+026-01-01T00:00:00.000Z",
            "2026-01-01T00:00:0a.000Z",
            "2026-1-01T00:00:00.0000Z",
            "2026-01-01T00:00:00.00+1",
            "  2026-01-01T00:00:00.000Z ",
            "2026-01-01T00:00:00.12Z",
            "2026-01-01T00:00:00.1234Z",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.000+00:00",
            "2026-01-01T00:00:00.000",
            "ä026-01-01T00:00:00.00Z",
        ];
        for v in odd {
            assert_eq!(parse_date(v), parse_date_general(v.trim()), "{v}");
        }
        assert_eq!(parse_utc_millis("2016-12-31T23:59:60.000Z"), None);
        assert_eq!(parse_date("2023-02-29T00:00:00.000Z"), None);
        // Every millisecond value and a spread of dates round-trip through the writer.
        let mut t = datetime!(1999-12-31 23:59:58.000 UTC);
        for _ in 0..3_000 {
            t += time::Duration::milliseconds(1_234_567_891);
            let text = format_date(t);
            assert_eq!(parse_utc_millis(&text), Some(t), "{text}");
            assert_eq!(parse_date_general(&text), Some(t), "{text}");
        }
    }

    #[test]
    fn api_token_with_defaults_and_unknown_scope() {
        let dto: ApiTokenDto = serde_json::from_str(
            r#"{"id":"dt0c01.A","name":"op [ts:op#1]","scopes":["settings.read","fromTheFuture.write"]}"#,
        )
        .unwrap();
        let t = api_token(dto).unwrap();
        assert!(t.enabled && !t.personal_access_token && t.expires.is_none());
        assert!(t.scopes.contains(&Scope::new("fromTheFuture.write")));
    }

    #[test]
    fn token_lists_without_ids_or_with_repeats_are_refused() {
        assert_eq!(check_list_ids("apiTokens", "id", ["a", "b"]), Ok(()));
        assert_eq!(
            check_list_ids("apiTokens", "id", ["a", ""]).unwrap_err(),
            "malformed token list: entry 1 of `apiTokens` has no `id`"
        );
        assert!(check_list_ids("apiTokens", "id", ["a", "a"])
            .unwrap_err()
            .contains("`apiTokens` lists `id` a more than once"));
    }

    #[test]
    fn bad_date_names_token_and_field() {
        let dto: ApiTokenDto =
            serde_json::from_str(r#"{"id":"dt0c01.A","expirationDate":"soon"}"#).unwrap();
        let err = api_token(dto).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"token dt0c01.A: `expirationDate` is not a date ("soon")"#
        );
    }

    #[test]
    fn activegate_and_platform_tokens() {
        let ag: ActiveGateTokenDto = serde_json::from_str(
            r#"{"id":"dt0g02.A","name":"ag","owner":"o","creationDate":"2024-01-01T00:00:00.000Z","seedToken":true,"activeGateType":"CLUSTER"}"#,
        )
        .unwrap();
        let t = activegate_token(ag).unwrap();
        assert_eq!(t.activegate_type, Some(ActiveGateType::Cluster));
        assert!(t.seed && t.enabled);
        let p: PlatformTokenDto = serde_json::from_str(
            r#"{"tokenId":"dt0s16.A","status":"INACTIVE","scope":["storage:logs:read"],"resource":["urn:dtaccount:x"],
                "metadata":{"lastUsedAt":"2026-08-01T10:00:00Z","lastClientIp":"1.2.3.4"}}"#,
        )
        .unwrap();
        let t = platform_token(&p).unwrap();
        assert!(!t.enabled);
        assert_eq!(t.last_used, Some(datetime!(2026-08-01 10:00:00 UTC)));
        assert_eq!(t.resources, vec!["urn:dtaccount:x".to_owned()]);
    }
}

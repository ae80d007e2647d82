//! From wire types to the model's [`LiveToken`]. The date formats are `dates`'s.
//!
//! Missing optional fields become `None`/defaults; unknown enum values are kept where the model
//! can hold them (scopes) and dropped where it cannot (an ActiveGate type this version does not
//! know becomes `None`). A date that does not parse is an error naming the token and the field,
//! because a wrong expiry would make a wrong plan (DESIGN.md invariant 7).

use time::OffsetDateTime;

use super::dates::WireDate;
use super::wire::{ActiveGateTokenDto, ApiTokenDto, PlatformTokenDto};
use crate::model::{ActiveGateType, LiveToken, Scope, ScopeSet, TokenId, TokenKind};

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
    ids: impl IntoIterator<Item = &'a str> + Clone,
) -> Result<(), String> {
    check_ids_present(list, id_field, ids.clone())?;
    let mut ids = ids.into_iter();
    let mut seen = std::collections::HashSet::with_capacity(ids.size_hint().0);
    match ids.find(|id| !seen.insert(*id)) {
        Some(id) => Err(listed_twice(list, id_field, id)),
        None => Ok(()),
    }
}

/// The first half of [`check_list_ids`]: every entry has an id. The error names the entry by
/// its place in the server's list.
pub fn check_ids_present<'a>(
    list: &str,
    id_field: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    match ids.into_iter().position(|id| id.trim().is_empty()) {
        Some(i) => Err(format!(
            "malformed token list: entry {i} of `{list}` has no `{id_field}`"
        )),
        None => Ok(()),
    }
}

/// The second half of [`check_list_ids`] for a list already sorted by id, where a repeated id
/// is its neighbour's: no set of every id is built.
pub fn check_sorted_ids_distinct<'a>(
    list: &str,
    id_field: &str,
    sorted: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    let mut previous = None;
    for id in sorted {
        if previous == Some(id) {
            return Err(listed_twice(list, id_field, id));
        }
        previous = Some(id);
    }
    Ok(())
}

fn listed_twice(list: &str, id_field: &str, id: &str) -> String {
    format!(
        "malformed token list: `{list}` lists `{id_field}` {} more than once",
        id.chars().take(60).collect::<String>()
    )
}

/// A date of the wire, read while decoding; one that was not a date names the token and field.
fn date(
    token: &str,
    field: &'static str,
    value: &Option<WireDate>,
) -> Result<Option<OffsetDateTime>, BadDate> {
    match value {
        None | Some(WireDate::Blank) => Ok(None),
        Some(WireDate::At(t)) => Ok(Some(*t)),
        Some(WireDate::Unreadable(v)) => Err(BadDate {
            token: token.to_owned(),
            field,
            value: v.chars().take(40).collect(),
        }),
    }
}

/// A date the wire type keeps as text (platform tokens: a handful per account).
fn date_text(
    token: &str,
    field: &'static str,
    value: &Option<String>,
) -> Result<Option<OffsetDateTime>, BadDate> {
    date(token, field, &value.as_deref().map(WireDate::read))
}

fn scopes(list: Option<Vec<String>>) -> ScopeSet {
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
        scopes: dto.scopes.unwrap_or_default(),
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
        scopes: ScopeSet::new(),
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
        created: date_text(id, "createdAt", &dto.created_at)?,
        modified: date_text(id, "updatedAt", &dto.updated_at)?,
        expires: date_text(id, "expirationDate", &dto.expiration_date)?,
        last_used: date_text(id, "metadata.lastUsedAt", &last_used)?,
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
        // The halves the environment client uses around its sort say the same.
        assert_eq!(
            check_ids_present("apiTokens", "id", ["a", " "]).unwrap_err(),
            "malformed token list: entry 1 of `apiTokens` has no `id`"
        );
        assert_eq!(
            check_sorted_ids_distinct("apiTokens", "id", ["a", "b", "c"]),
            Ok(())
        );
        assert_eq!(
            check_sorted_ids_distinct("apiTokens", "id", ["a", "b", "b"]),
            check_list_ids("apiTokens", "id", ["b", "a", "b"])
        );
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

//! Access tokens API v2 (`/api/v2/apiTokens`): list, create, get, update, delete, lookup.
//!
//! Owns: the behaviour of REFERENCE.md §4: the list parameters (`pageSize` 100–10000, `fields`
//! with `+`/`-`, `apiTokenSelector`, `sort`, `from`/`to` on last use), the scope rules of the
//! catalogue (unknown and no-longer-creatable scopes, the personal-access-token subset), owner =
//! owner of the calling token, `modifiedDate` on name/scope change only, and the refusal to delete
//! or disable the calling token. Authentication is `auth.rs`; paging is `paging.rs`; the
//! `expirationDate` check and the 201 answer, shared with ActiveGate tokens, are `token_create.rs`.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

use super::auth::{authenticate, Caller};
use super::clock::parse_time_input;
use super::errors::{ApiError, Handled, ParameterLocation, Reply, Violation};
use super::mint::{self, TokenFormat};
use super::paging::{HasId, Key, ListPage, ListQuery};
use super::request::Call;
use super::state::{ApiTokenRecord, Environment, State};
use super::token_create::{check_expiration, created, payload};
use crate::model::token::MAX_NAME_LEN;
use crate::model::Scope;

pub const READ: &str = "apiTokens.read";
pub const WRITE: &str = "apiTokens.write";

const ALL_FIELDS: &[&str] = &[
    "id",
    "name",
    "enabled",
    "owner",
    "creationDate",
    "personalAccessToken",
    "expirationDate",
    "lastUsedDate",
    "lastUsedIpAddress",
    "modifiedDate",
    "scopes",
    "additionalMetadata",
];
const DEFAULT_FIELDS: &[&str] = &["id", "name", "enabled", "owner", "creationDate"];

/// `GET /api/v2/apiTokens`.
pub fn list(state: &mut State, call: &mut Call) -> Handled {
    authenticate(state, call, &[READ])?;
    let q = ListQuery::from_call(call)?;
    let page_size = q.page_size(100, 10_000, 200)?;
    let fields = parse_fields(q.get("fields"))?;
    let selector = parse_selector(q.get("apiTokenSelector").unwrap_or(""))?;
    let (sort_field, descending) = parse_sort(q.get("sort").unwrap_or("-creationDate"))?;
    let now = call.now;
    let window = match (q.get("from"), q.get("to")) {
        (None, None) => None,
        (from, to) => {
            let parse = |name: &str, v: &str| {
                parse_time_input(v, now)
                    .map_err(|m| ApiError::violation(ParameterLocation::Query, name, m))
            };
            let from = from.map(|v| parse("from", v)).transpose()?;
            let to = to.map(|v| parse("to", v)).transpose()?.unwrap_or(now);
            Some((from, to))
        }
    };
    let env = environment(state, call)?;
    let matching: Vec<&ApiTokenRecord> = env
        .api_tokens
        .values()
        .filter(|t| selector.iter().all(|c| c.matches(t)))
        .filter(|t| match window {
            None => true,
            Some((from, to)) => t
                .last_used_date
                .is_some_and(|u| from.is_none_or(|f| u >= f) && u <= to),
        })
        .collect();
    let total = matching.len();
    let keyed: Vec<(Key, &ApiTokenRecord)> = matching
        .into_iter()
        .map(|t| (sort_key(t, sort_field), t))
        .collect();
    let (page, next) = q.page(keyed, page_size, descending);
    let fields = written_order(fields);
    // About 200 bytes a token with the client's fields; a wrong guess only costs reallocations.
    let size_hint = 128 + page.len() * 32 * fields.len();
    Ok(Reply::ok_serialized(
        &ListPage {
            list: "apiTokens",
            items: page
                .iter()
                .map(|(_, t)| TokenView { t, fields: &fields })
                .collect(),
            next_page_key: next,
            page_size,
            total_count: total,
        },
        size_hint,
    ))
}

/// `POST /api/v2/apiTokens`.
pub fn create(state: &mut State, call: &mut Call) -> Handled {
    let caller = authenticate(state, call, &[WRITE])?;
    let body = call.json_object()?;
    let mut violations = Vec::new();
    let name = check_name(body.get("name"), true, &mut violations);
    let personal = match body.get("personalAccessToken") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            violations.push(payload("personalAccessToken", "must be a boolean"));
            false
        }
    };
    let scopes = check_scopes(body.get("scopes"), true, personal, &mut violations);
    let expiration = match body.get("expirationDate") {
        None | Some(Value::Null) => None,
        Some(v) => check_expiration(v, call.now, None, &mut violations),
    };
    if !violations.is_empty() {
        return Err(ApiError::violations(violations));
    }
    let (id, secret) = TokenFormat::Access.mint();
    let record = ApiTokenRecord {
        id: id.as_str().to_owned(),
        secret_sha256: mint::fingerprint(secret.expose()),
        name: name.unwrap_or_default(),
        enabled: true,
        owner: caller.owner,
        creation_date: call.now,
        expiration_date: expiration,
        last_used_date: None,
        last_used_ip_address: None,
        modified_date: None,
        personal_access_token: personal,
        scopes: scopes.unwrap_or_default(),
        additional_metadata: None,
    };
    environment_mut(state, call)?
        .api_tokens
        .insert(record.id.clone(), record);
    call.dirty = true;
    created(&id, &secret, expiration)
}

/// `GET /api/v2/apiTokens/{id}`.
pub fn get(state: &mut State, call: &mut Call, id: &str) -> Handled {
    authenticate(state, call, &[READ])?;
    let env = environment(state, call)?;
    let token = env.api_tokens.get(id).ok_or_else(|| not_found(id))?;
    Ok(Reply::ok_serialized(
        &TokenView {
            t: token,
            fields: &written_order(ALL_FIELDS.to_vec()),
        },
        512,
    ))
}

/// `PUT /api/v2/apiTokens/{id}`: `name`, `enabled`, `scopes` (replacing the whole set); other
/// properties (TF sends its whole model, `expirationDate` included) are ignored.
pub fn update(state: &mut State, call: &mut Call, id: &str) -> Handled {
    let caller = authenticate(state, call, &[WRITE])?;
    let body = call.json_object()?;
    let env = environment(state, call)?;
    let existing = env.api_tokens.get(id).ok_or_else(|| not_found(id))?;
    let mut violations = Vec::new();
    let name = check_name(body.get("name"), false, &mut violations);
    let scopes = check_scopes(
        body.get("scopes"),
        false,
        existing.personal_access_token,
        &mut violations,
    );
    let enabled = match body.get("enabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            violations.push(payload("enabled", "must be a boolean"));
            None
        }
    };
    if !violations.is_empty() {
        return Err(ApiError::violations(violations));
    }
    if enabled == Some(false) && id == caller.id {
        // Documented as a 400; the message is the sandbox's wording.
        return Err(ApiError::bad_request(
            "The token used to authenticate this request cannot be disabled.",
        ));
    }
    let now = call.now;
    let token = environment_mut(state, call)?
        .api_tokens
        .get_mut(id)
        .expect("checked above");
    // `modifiedDate` moves only when the name or the scope set really changes; enabling and
    // disabling never move it (spec text). Sending identical values is not a modification.
    let mut modified = false;
    if let Some(name) = name {
        modified |= token.name != name;
        token.name = name;
    }
    if let Some(scopes) = scopes {
        let mut old = token.scopes.clone();
        let mut new = scopes.clone();
        old.sort();
        new.sort();
        modified |= old != new;
        token.scopes = scopes;
    }
    if let Some(enabled) = enabled {
        token.enabled = enabled;
    }
    if modified {
        token.modified_date = Some(now);
    }
    call.dirty = true;
    Ok(Reply::no_content())
}

/// `DELETE /api/v2/apiTokens/{id}`: `{id}` is the token id or the full secret.
pub fn delete(state: &mut State, call: &mut Call, id_or_secret: &str) -> Handled {
    let caller = authenticate(state, call, &[WRITE])?;
    let env = environment(state, call)?;
    let id = if mint::looks_like_secret(id_or_secret) {
        env.api_token_by_secret(id_or_secret)
            .map(|t| t.id.clone())
            .ok_or_else(|| ApiError::not_found("The requested token does not exist."))?
    } else {
        env.api_tokens
            .get(id_or_secret)
            .map(|t| t.id.clone())
            .ok_or_else(|| not_found(id_or_secret))?
    };
    if id == caller.id {
        return Err(ApiError::bad_request(
            "The token used to authenticate this request cannot be deleted.",
        ));
    }
    check_personal_owner(&caller, env, &id)?;
    environment_mut(state, call)?.api_tokens.remove(&id);
    call.dirty = true;
    Ok(Reply::no_content())
}

/// `POST /api/v2/apiTokens/lookup` with `{"token": "<secret>"}`: any valid token may call it.
pub fn lookup(state: &mut State, call: &mut Call) -> Handled {
    authenticate(state, call, &[])?;
    let body = call.json_object()?;
    let secret = match body.get("token") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(ApiError::violation(
                ParameterLocation::PayloadBody,
                "token",
                "must not be null",
            ))
        }
    };
    let env = environment(state, call)?;
    let token = env
        .api_token_by_secret(&secret)
        .ok_or_else(|| ApiError::not_found("The requested token does not exist."))?;
    Ok(Reply::ok_serialized(
        &TokenView {
            t: token,
            fields: &written_order(ALL_FIELDS.to_vec()),
        },
        512,
    ))
}

/// With a personal access token one may delete only tokens of the same owner (REFERENCE.md §4.6);
/// others are answered as if they did not exist.
fn check_personal_owner(caller: &Caller, env: &Environment, id: &str) -> Result<(), ApiError> {
    if caller.personal
        && env
            .api_tokens
            .get(id)
            .is_some_and(|t| t.owner != caller.owner)
    {
        return Err(not_found(id));
    }
    Ok(())
}

fn environment<'a>(state: &'a State, call: &Call) -> Result<&'a Environment, ApiError> {
    state.env(&call.env_id).ok_or_else(ApiError::no_route)
}

fn environment_mut<'a>(state: &'a mut State, call: &Call) -> Result<&'a mut Environment, ApiError> {
    state.env_mut(&call.env_id).ok_or_else(ApiError::no_route)
}

/// 404 for an unknown id. The 1.254 spec documents a 404 without a body; newer docs show the
/// envelope for every 4XX, which is what the sandbox sends (message wording is its own).
fn not_found(id: &str) -> ApiError {
    if mint::looks_like_secret(id) {
        return ApiError::not_found("The requested token does not exist.");
    }
    ApiError::not_found(format!("Token with ID {id} not found"))
}

/// Bean-validation style messages ("must not be null", "size must be between 1 and 100"): the
/// exact Dynatrace wording for these is not recorded (REFERENCE.md §13).
fn check_name(
    v: Option<&Value>,
    required: bool,
    violations: &mut Vec<Violation>,
) -> Option<String> {
    match v {
        None | Some(Value::Null) => {
            if required {
                violations.push(payload("name", "must not be null"));
            }
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            violations.push(payload("name", "must not be empty"));
            None
        }
        Some(Value::String(s)) if s.chars().count() > MAX_NAME_LEN => {
            violations.push(payload(
                "name",
                format!("size must be between 1 and {MAX_NAME_LEN}"),
            ));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            violations.push(payload("name", "must be a string"));
            None
        }
    }
}

fn check_scopes(
    v: Option<&Value>,
    required: bool,
    personal: bool,
    violations: &mut Vec<Violation>,
) -> Option<Vec<String>> {
    let items = match v {
        None | Some(Value::Null) => {
            if required {
                violations.push(payload("scopes", "must not be null"));
            }
            return None;
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            violations.push(payload("scopes", "must be an array of scopes"));
            return None;
        }
    };
    if items.is_empty() {
        violations.push(payload("scopes", "must not be empty"));
        return None;
    }
    let before = violations.len();
    let mut scopes: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(s) = item.as_str() else {
            violations.push(payload(&format!("scopes[{i}]"), "must be a string"));
            continue;
        };
        let scope = Scope::from(s);
        if !scope.is_creatable() {
            let hint = if scope.is_legacy_only() {
                " (it can no longer be assigned)".to_owned()
            } else {
                scope
                    .suggest()
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default()
            };
            violations.push(payload(
                &format!("scopes[{i}]"),
                format!("'{s}' is not a valid scope{hint}"),
            ));
        } else if personal && !scope.allowed_for_personal_access_token() {
            // Status and wording UNCERTAIN (REFERENCE.md §5.3, "presumably 400").
            violations.push(payload(
                &format!("scopes[{i}]"),
                format!("'{s}' is not available for personal access tokens"),
            ));
        } else if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_owned());
        }
    }
    (violations.len() == before).then_some(scopes)
}

fn parse_fields(raw: Option<&str>) -> Result<Vec<&'static str>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(DEFAULT_FIELDS.to_vec());
    };
    // `+` decodes to a space when a client does not percent-encode it; read a leading space as `+`.
    let items: Vec<(char, &str)> = raw
        .split(',')
        .map(|item| {
            let t = item.trim_end();
            match t.chars().next() {
                Some('+') => ('+', t[1..].trim()),
                Some('-') => ('-', t[1..].trim()),
                Some(' ') => ('+', t.trim()),
                _ => ('=', t.trim()),
            }
        })
        .collect();
    // Only operators: modify the defaults. Any bare name: the bare and `+` names are the set.
    let mut set: Vec<&'static str> = if items.iter().all(|(op, _)| *op != '=') {
        DEFAULT_FIELDS.to_vec()
    } else {
        vec!["id"]
    };
    for (op, name) in items {
        let Some(field) = ALL_FIELDS.iter().find(|f| **f == name) else {
            return Err(ApiError::violation(
                ParameterLocation::Query,
                "fields",
                format!(
                    "'{name}' is not a field of an API token; use one of {}",
                    ALL_FIELDS.join(", ")
                ),
            ));
        };
        match op {
            '-' => set.retain(|f| f != field || *f == "id"),
            _ if !set.contains(field) => set.push(field),
            _ => {}
        }
    }
    Ok(set)
}

/// The selected fields in the order a token's members are written: by name, as the sandbox's
/// JSON objects always were (`serde_json`'s map is sorted).
fn written_order(mut fields: Vec<&'static str>) -> Vec<&'static str> {
    fields.sort_unstable();
    fields.dedup();
    fields
}

/// One token as the API writes it: the selected `fields` (in [`written_order`]), unset optional
/// ones left out, borrowed from the record rather than copied into a `Value`.
struct TokenView<'a> {
    t: &'a ApiTokenRecord,
    fields: &'a [&'static str],
}

impl Serialize for TokenView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.t;
        let mut m = s.serialize_map(None)?;
        for &f in self.fields {
            match f {
                "id" => m.serialize_entry(f, &t.id)?,
                "name" => m.serialize_entry(f, &t.name)?,
                "enabled" => m.serialize_entry(f, &t.enabled)?,
                "owner" => m.serialize_entry(f, &t.owner)?,
                "creationDate" => m.serialize_entry(f, &t.creation_date.iso())?,
                "personalAccessToken" => m.serialize_entry(f, &t.personal_access_token)?,
                "expirationDate" => {
                    if let Some(d) = t.expiration_date {
                        m.serialize_entry(f, &d.iso())?;
                    }
                }
                "lastUsedDate" => {
                    if let Some(d) = t.last_used_date {
                        m.serialize_entry(f, &d.iso())?;
                    }
                }
                "lastUsedIpAddress" => {
                    if let Some(ip) = &t.last_used_ip_address {
                        m.serialize_entry(f, ip)?;
                    }
                }
                "modifiedDate" => {
                    if let Some(d) = t.modified_date {
                        m.serialize_entry(f, &d.iso())?;
                    }
                }
                "scopes" => m.serialize_entry(f, &t.scopes)?,
                "additionalMetadata" => {
                    if let Some(meta) = &t.additional_metadata {
                        m.serialize_entry(f, meta)?;
                    }
                }
                _ => {}
            }
        }
        m.end()
    }
}

impl HasId for &ApiTokenRecord {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SortField {
    Name,
    LastUsed,
    Creation,
    Expiration,
    Modified,
}

fn parse_sort(raw: &str) -> Result<(SortField, bool), ApiError> {
    let raw = raw.trim_end();
    let (desc, name) = match raw.chars().next() {
        Some('-') => (true, raw[1..].trim()),
        Some('+') => (false, raw[1..].trim()),
        _ => (false, raw.trim()),
    };
    let field = match name {
        "name" => SortField::Name,
        "lastUsedDate" => SortField::LastUsed,
        "creationDate" => SortField::Creation,
        "expirationDate" => SortField::Expiration,
        "modifiedDate" => SortField::Modified,
        _ => {
            return Err(ApiError::violation(
                ParameterLocation::Query,
                "sort",
                format!("'{raw}' is not a valid sort; use [+|-] followed by name, lastUsedDate, creationDate, expirationDate or modifiedDate"),
            ))
        }
    };
    Ok((field, desc))
}

/// Never-used tokens sort first on `+lastUsedDate`; tokens that never expire first on
/// `-expirationDate` (both documented).
fn sort_key(t: &ApiTokenRecord, field: SortField) -> Key {
    match field {
        SortField::Name => Key::Text(t.name.clone()),
        SortField::LastUsed => Key::Time(t.last_used_date.map_or(i64::MIN, |d| d.0)),
        SortField::Creation => Key::Time(t.creation_date.0),
        SortField::Expiration => Key::Time(t.expiration_date.map_or(i64::MAX, |d| d.0)),
        SortField::Modified => Key::Time(t.modified_date.map_or(i64::MIN, |d| d.0)),
    }
}

/// One criterion of `apiTokenSelector`; all criteria must match.
#[derive(Debug, Clone, PartialEq)]
enum Criterion {
    Owner(Vec<String>),
    Personal(bool),
    Scope(Vec<String>),
    TokenId(Vec<String>),
}

impl Criterion {
    fn matches(&self, t: &ApiTokenRecord) -> bool {
        match self {
            Criterion::Owner(owners) => owners.contains(&t.owner),
            Criterion::Personal(p) => t.personal_access_token == *p,
            Criterion::Scope(scopes) => scopes.iter().any(|s| t.has_scope(s)),
            Criterion::TokenId(ids) => ids.contains(&t.id),
        }
    }
}

/// `owner("a"),personalAccessToken(false),scope("s1","s2")`. Values are quoted; `\"` and `\\`
/// escape inside quotes. `tokenId("…")` is accepted as well (not documented for this API).
fn parse_selector(raw: &str) -> Result<Vec<Criterion>, ApiError> {
    let bad = |m: String| ApiError::violation(ParameterLocation::Query, "apiTokenSelector", m);
    let mut out = Vec::new();
    let mut rest = raw.trim();
    while !rest.is_empty() {
        let open = rest
            .find('(')
            .ok_or_else(|| bad(format!("'{raw}' is not a valid selector; use e.g. owner(\"john.smith\"),scope(\"metrics.read\")")))?;
        let name = rest[..open].trim();
        let (args, after) = parse_args(&rest[open + 1..])
            .ok_or_else(|| bad(format!("unbalanced parentheses or quotes in '{raw}'")))?;
        if args.is_empty() {
            return Err(bad(format!("{name}() needs at least one value")));
        }
        out.push(match name {
            "owner" => Criterion::Owner(args),
            "scope" => Criterion::Scope(args),
            "tokenId" => Criterion::TokenId(args),
            "personalAccessToken" => match args.as_slice() {
                [v] if v == "true" => Criterion::Personal(true),
                [v] if v == "false" => Criterion::Personal(false),
                _ => return Err(bad("personalAccessToken() takes true or false".into())),
            },
            other => {
                return Err(bad(format!(
                    "unknown selector criterion '{other}'; use owner, personalAccessToken or scope"
                )))
            }
        });
        rest = after.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return Err(bad(format!("expected ',' between criteria in '{raw}'")));
        }
    }
    Ok(out)
}

/// Arguments up to the closing parenthesis: quoted strings or bare words, comma-separated.
fn parse_args(s: &str) -> Option<(Vec<String>, &str)> {
    let mut args = Vec::new();
    let mut chars = s.char_indices().peekable();
    let mut current = String::new();
    let mut quoted = false;
    let mut had_quotes = false;
    while let Some((i, c)) = chars.next() {
        if quoted {
            match c {
                '\\' => current.push(chars.next()?.1),
                '"' => quoted = false,
                _ => current.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                had_quotes = true;
            }
            ',' | ')' => {
                let value = if had_quotes {
                    current.clone()
                } else {
                    current.trim().to_owned()
                };
                if !value.is_empty() || had_quotes {
                    args.push(value);
                }
                current.clear();
                had_quotes = false;
                if c == ')' {
                    return Some((args, &s[i + 1..]));
                }
            }
            c if c.is_whitespace() && !had_quotes && current.is_empty() => {}
            _ => current.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_defaults_and_operators() {
        assert_eq!(parse_fields(None).unwrap(), DEFAULT_FIELDS);
        assert_eq!(
            parse_fields(Some("+scopes,-owner, expirationDate")).unwrap(),
            vec![
                "id",
                "name",
                "enabled",
                "creationDate",
                "scopes",
                "expirationDate"
            ]
        );
        assert_eq!(
            parse_fields(Some("name,scopes")).unwrap(),
            vec!["id", "name", "scopes"]
        );
        assert_eq!(parse_fields(Some("-id")).unwrap(), DEFAULT_FIELDS);
        assert!(parse_fields(Some("+secret")).is_err());
    }

    /// What the list wrote before it serialised records directly: a `Value` per token.
    fn token_value(t: &ApiTokenRecord, fields: &[&str]) -> Value {
        let mut m = serde_json::Map::new();
        for f in ALL_FIELDS.iter().filter(|f| fields.contains(f)) {
            let v = match *f {
                "id" => Some(Value::String(t.id.clone())),
                "name" => Some(Value::String(t.name.clone())),
                "enabled" => Some(Value::Bool(t.enabled)),
                "owner" => Some(Value::String(t.owner.clone())),
                "creationDate" => Some(Value::String(t.creation_date.iso_millis())),
                "personalAccessToken" => Some(Value::Bool(t.personal_access_token)),
                "expirationDate" => t.expiration_date.map(|d| Value::String(d.iso_millis())),
                "lastUsedDate" => t.last_used_date.map(|d| Value::String(d.iso_millis())),
                "lastUsedIpAddress" => t.last_used_ip_address.clone().map(Value::String),
                "modifiedDate" => t.modified_date.map(|d| Value::String(d.iso_millis())),
                "scopes" => Some(serde_json::json!(t.scopes)),
                "additionalMetadata" => t.additional_metadata.clone().map(Value::Object),
                _ => None,
            };
            if let Some(v) = v {
                m.insert((*f).to_owned(), v);
            }
        }
        Value::Object(m)
    }

    #[test]
    fn written_tokens_are_byte_for_byte_the_value_rendering() {
        use super::super::clock::Millis;
        let bare = ApiTokenRecord {
            id: "dt0c01.ABC".into(),
            secret_sha256: "never written".into(),
            name: "quote \" and ünïcode".into(),
            enabled: false,
            owner: "a@b.c".into(),
            creation_date: Millis(1_793_523_600_123),
            expiration_date: None,
            last_used_date: None,
            last_used_ip_address: None,
            modified_date: None,
            personal_access_token: false,
            scopes: Vec::new(),
            additional_metadata: None,
        };
        let mut meta = serde_json::Map::new();
        meta.insert("zeta".into(), Value::from(1));
        meta.insert(
            "alpha".into(),
            serde_json::json!({"b": [true, null], "a": "x"}),
        );
        let full = ApiTokenRecord {
            expiration_date: Some(Millis(1_800_000_000_000)),
            last_used_date: Some(Millis(-5)),
            last_used_ip_address: Some("10.0.0.1".into()),
            modified_date: Some(Millis(1_793_523_600_000)),
            personal_access_token: true,
            scopes: vec!["metrics.ingest".into(), "apiTokens.read".into()],
            additional_metadata: Some(meta),
            enabled: true,
            ..bare.clone()
        };
        let field_sets = [
            None,
            Some("+scopes,+expirationDate,+lastUsedDate,+modifiedDate,+personalAccessToken,+lastUsedIpAddress"),
            Some("name,scopes"),
            Some("-owner,+additionalMetadata,-name"),
            Some(&ALL_FIELDS.join(",")[..]),
        ];
        for t in [&bare, &full] {
            for raw in field_sets {
                let fields = parse_fields(raw).unwrap();
                let expected = serde_json::to_vec(&token_value(t, &fields)).unwrap();
                let order = written_order(fields);
                let written = serde_json::to_vec(&TokenView { t, fields: &order }).unwrap();
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    String::from_utf8(expected).unwrap(),
                    "{raw:?}"
                );
            }
        }
        let order = written_order(DEFAULT_FIELDS.to_vec());
        for next in [None, Some("KEY".to_owned())] {
            let page = ListPage {
                list: "apiTokens",
                items: vec![
                    TokenView {
                        t: &full,
                        fields: &order,
                    },
                    TokenView {
                        t: &bare,
                        fields: &order,
                    },
                ],
                next_page_key: next.clone(),
                page_size: 200,
                total_count: 7,
            };
            let mut expected = serde_json::json!({
                "totalCount": 7,
                "pageSize": 200,
                "apiTokens": [token_value(&full, DEFAULT_FIELDS), token_value(&bare, DEFAULT_FIELDS)],
            });
            if let Some(next) = next {
                expected["nextPageKey"] = Value::String(next);
            }
            assert_eq!(
                serde_json::to_string(&page).unwrap(),
                serde_json::to_string(&expected).unwrap()
            );
        }
    }

    #[test]
    fn selectors() {
        assert_eq!(
            parse_selector(r#"owner("a,b\"c"), personalAccessToken(false),scope("x","y")"#)
                .unwrap(),
            vec![
                Criterion::Owner(vec!["a,b\"c".into()]),
                Criterion::Personal(false),
                Criterion::Scope(vec!["x".into(), "y".into()]),
            ]
        );
        for bad in [
            "owner(",
            "color(\"red\")",
            "owner(\"a\") scope(\"b\")",
            "personalAccessToken(maybe)",
            "owner()",
        ] {
            assert!(parse_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sorts() {
        assert_eq!(
            parse_sort("-creationDate").unwrap(),
            (SortField::Creation, true)
        );
        assert_eq!(parse_sort(" name").unwrap(), (SortField::Name, false));
        assert!(parse_sort("owner").is_err());
    }
}

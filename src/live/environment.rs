//! [`EnvironmentClient`]: the classic Environment API over HTTP, implementing
//! [`EnvironmentRead`] and [`EnvironmentWrite`] (REFERENCE.md §4, §6, §7, §8).
//!
//! It owns the request shapes (paths, query parameters, bodies, pagination) and the mapping of
//! answers into model values. Retries, timeouts and error bodies are `http`'s business; which
//! calls to make for a snapshot is `snapshot`'s.

use std::collections::HashSet;

use futures::future::BoxFuture;
use futures::FutureExt;
use reqwest::Method;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::convert::{self, BadDate};
use super::dates;
use super::error::{LiveError, Subject};
use super::http::{Authorization, Call, HttpClient, Reply, Transport};
use super::offload::{begin, offload, Pending, HEAVY_BODY_BYTES, HEAVY_LIST_LEN};
use super::token_page::TokenPageSeed;
use super::traits::{
    ApiTokenChange, CreatedToken, Deletion, EnvironmentRead, EnvironmentWrite, LiveResult,
    NewActiveGateToken, NewApiToken, TenantTokens,
};
use super::wire;
use crate::model::{EnvName, LiveToken, Secret, TokenId};

/// Page size of the API token list: the maximum Dynatrace allows.
pub const API_TOKEN_PAGE_SIZE: u32 = 10_000;
/// Page size of the ActiveGate token list: the maximum Dynatrace allows.
pub const ACTIVEGATE_TOKEN_PAGE_SIZE: u32 = 3_000;
/// The optional fields the API token list must return on top of the defaults
/// (`id,name,enabled,owner,creationDate`).
pub const API_TOKEN_FIELDS: &str =
    "+scopes,+expirationDate,+lastUsedDate,+modifiedDate,+personalAccessToken,+lastUsedIpAddress";
/// A pagination loop that has not ended after this many pages (ten million API tokens) is a
/// server bug, not data.
const MAX_PAGES: usize = 1_000;
/// CHOICE: the most tokens one list may hold, five times the largest environment the
/// benchmarks plan (100,000): far beyond any real environment, and a bound on what a server
/// that pages forever can make this client hold (a token takes a few hundred bytes).
pub const MAX_TOKENS_PER_LIST: usize = 500_000;
/// CHOICE: how long one list may take, all its pages together. Each request has its own
/// deadline; a server answering each page just inside it could otherwise keep a plan busy for
/// hours. Ten minutes is far beyond a real list (100,000 tokens read in seconds).
pub const LIST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

const API_TOKENS: &str = "/api/v2/apiTokens";
const ACTIVEGATE_TOKENS: &str = "/api/v2/activeGateTokens";
const AGENT_CONNECTION_INFO: &str = "/api/v1/deployment/installer/agent/connectioninfo";
const TENANT_ROTATION_STATUS: &str = "/api/v2/tenantTokenRotation/status";

/// One environment, reached over HTTP with its management token.
pub struct EnvironmentClient {
    name: EnvName,
    http: HttpClient,
    token: Secret<String>,
}

impl EnvironmentClient {
    /// A client for the environment at `base_url` (`https://abc12345.live.dynatrace.com` or
    /// `https://host/e/<env-id>`), authenticating with `Api-Token <token>`.
    pub fn new(
        name: EnvName,
        base_url: &str,
        token: Secret<String>,
        transport: &Transport,
    ) -> Result<Self, LiveError> {
        let http = HttpClient::new(Subject::Environment(name.to_string()), base_url, transport)?;
        Ok(EnvironmentClient { name, http, token })
    }

    async fn send(&self, call: Call) -> LiveResult<Reply> {
        self.http
            .send(&call, Authorization::ApiToken(&self.token))
            .await
    }

    /// Send, mapping 404 to `None`.
    async fn send_found(&self, call: Call) -> LiveResult<Option<Reply>> {
        match self.send(call).await {
            Ok(reply) => Ok(Some(reply)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Follow `nextPageKey` from a first request carrying `first_query`; follow-ups carry only
    /// the key, as the API demands.
    /// `DELETE path`; a 404 means someone deleted it already.
    async fn delete_at(&self, path: String) -> LiveResult<Deletion> {
        Ok(
            match self.send_found(Call::new(Method::DELETE, path)).await? {
                Some(_) => Deletion::Deleted,
                None => Deletion::AlreadyGone,
            },
        )
    }

    /// Every token of a list, following `nextPageKey`: each page's member `list` is decoded
    /// entry by entry, each entry turned into a model token by `convert` as it is read
    /// (`token_page`). A big page is decoded on the blocking pool; one that names a next page is
    /// decoded while the next one is fetched: only its `nextPageKey` is read first (skipping the
    /// rest costs a fraction of decoding it). At most one page is being decoded at a time, so at
    /// most two pages' bodies are held.
    async fn paginate<T>(
        &self,
        path: &str,
        first_query: Vec<(&'static str, String)>,
        list: &'static str,
        convert: fn(T) -> Result<LiveToken, BadDate>,
    ) -> LiveResult<(Vec<LiveToken>, Reply)>
    where
        T: DeserializeOwned + Send + 'static,
    {
        type Decoded = (Reply, LiveResult<Vec<LiveToken>>);
        let page_of = move |reply: &Reply| -> LiveResult<(Vec<LiveToken>, Option<String>)> {
            let page = reply.json_seed(TokenPageSeed::new(list, convert, reply.body.len()))?;
            let tokens = page.tokens.map_err(|e| bad_date(reply, e))?;
            Ok((tokens, page.next_page_key))
        };
        async fn take(
            items: &mut Vec<LiveToken>,
            decoding: Option<Pending<Decoded>>,
        ) -> LiveResult<Option<Reply>> {
            let Some(pending) = decoding else {
                return Ok(None);
            };
            let (reply, page) = pending.finish().await;
            let page = page?;
            if items.is_empty() {
                // The first (usually only) page is the list: no copy of every item.
                *items = page;
            } else {
                items.extend(page);
            }
            Ok(Some(reply))
        }

        let mut items = Vec::new();
        let mut decoding: Option<Pending<Decoded>> = None;
        let mut seen = HashSet::new();
        let mut call = Call::new(Method::GET, path);
        call.query = first_query;
        let started = tokio::time::Instant::now();
        for page in 0..MAX_PAGES {
            let reply =
                match tokio::time::timeout_at(started + LIST_DEADLINE, self.send(call)).await {
                    Ok(reply) => reply?,
                    Err(_) => {
                        return Err(LiveError::Decode {
                            request: Box::new(self.label_of(path)),
                            reason: format!(
                                "the list did not end within {} s ({page} pages read)",
                                LIST_DEADLINE.as_secs()
                            ),
                        })
                    }
                };
            let label = reply.label().clone();
            // A small page is decoded here and its reply kept; a big one that names a next page
            // comes back with its decoded page, and the last big one is decoded off this task
            // and its reply kept.
            let big = reply.body.len() >= HEAVY_BODY_BYTES;
            let (next, inline) = if big && names_next_page(&reply.body) {
                let next = reply.json::<wire::PageKeyOnly>()?.next_page_key;
                let started = begin(move || {
                    let page = page_of(&reply).map(|(tokens, _)| tokens);
                    (reply, page)
                });
                take(&mut items, decoding.replace(started)).await?;
                (next, None)
            } else {
                take(&mut items, decoding.take()).await?;
                let (reply, page) = offload(big, move || {
                    let page = page_of(&reply);
                    (reply, page)
                })
                .await;
                // The key comes from the decoded page: a member name written with escapes,
                // which the search below does not see, is still followed.
                let (page, next) = page?;
                items.extend(page);
                (next, Some(reply))
            };
            match next.filter(|k| !k.is_empty()) {
                None => {
                    let decoded = take(&mut items, decoding.take()).await?;
                    let last = decoded
                        .or(inline)
                        .expect("the last page's reply is at hand");
                    return Ok((items, last));
                }
                Some(key) => {
                    if items.len() > MAX_TOKENS_PER_LIST {
                        return Err(LiveError::Decode {
                            request: Box::new(label),
                            reason: format!(
                                "more than {MAX_TOKENS_PER_LIST} tokens in one list, and the server names yet another page"
                            ),
                        });
                    }
                    if !seen.insert(key.clone()) {
                        return Err(LiveError::Decode {
                            request: Box::new(label),
                            reason: "the server returned the same nextPageKey twice".into(),
                        });
                    }
                    call = Call::new(Method::GET, path).query("nextPageKey", key);
                }
            }
        }
        Err(LiveError::Decode {
            request: Box::new(self.label_of(path)),
            reason: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// How a list's errors name it: the environment, `GET` and the list's path.
    fn label_of(&self, path: &str) -> super::error::RequestLabel {
        super::error::RequestLabel {
            subject: self.http.subject().clone(),
            method: "GET".into(),
            path: path.into(),
        }
    }
}

/// Whether a page's body may have a next page: it holds the member name `"nextPageKey"`. A
/// byte search costs a small fraction of skipping through the JSON to find the member, which
/// a one-page list (every environment of up to 10,000 tokens) would otherwise pay for nothing.
/// It can be wrong only one way: a name written with escapes is missed, and the page is then
/// decoded before the next is fetched rather than while, with its key read from the decode.
fn names_next_page(body: &[u8]) -> bool {
    memchr::memmem::find(body, br#""nextPageKey""#).is_some()
}

fn malformed(reply: &Reply, reason: String) -> LiveError {
    LiveError::Decode {
        request: Box::new(reply.label().clone()),
        reason,
    }
}

fn bad_date(reply: &Reply, e: BadDate) -> LiveError {
    LiveError::Decode {
        request: Box::new(reply.label().clone()),
        reason: e.to_string(),
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A whole list's tokens, refused if an entry has no id or an id is listed twice, sorted by id;
/// on the blocking pool when the list is long. `reply` is the last page's, for the error.
async fn checked_and_sorted(
    list: &'static str,
    tokens: Vec<LiveToken>,
    reply: Reply,
) -> LiveResult<Vec<LiveToken>> {
    offload(tokens.len() >= HEAVY_LIST_LEN, move || {
        convert::check_ids_present(list, "id", tokens.iter().map(|t| t.id.as_str()))
            .map_err(|reason| malformed(&reply, reason))?;
        let tokens = sorted(tokens);
        convert::check_sorted_ids_distinct(list, "id", tokens.iter().map(|t| t.id.as_str()))
            .map_err(|reason| malformed(&reply, reason))?;
        Ok(tokens)
    })
    .await
}

/// The tokens by id. The order is found on small keys and applied in one pass, rather than by
/// sorting the tokens themselves, which moves every (large) token many times.
///
/// A key is the id's first 16 bytes as one number (zero-padded, so numbers order as the texts
/// do) and the token's index; the full ids are compared only where those 16 bytes are equal.
/// Ids share their 7-byte prefix (`dt0c01.`) and the rest is random, so that is rare, and the
/// sort never leaves the key array: sorting indices by the ids behind them took two cache
/// misses per comparison, most of the sort's time for 100,000 tokens.
fn sorted(tokens: Vec<LiveToken>) -> Vec<LiveToken> {
    if tokens.is_sorted_by(|a, b| a.id <= b.id) {
        return tokens;
    }
    let head = |id: &str| {
        let mut bytes = [0u8; 16];
        let n = id.len().min(16);
        bytes[..n].copy_from_slice(&id.as_bytes()[..n]);
        u128::from_be_bytes(bytes)
    };
    let mut order: Vec<(u128, usize)> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (head(t.id.as_str()), i))
        .collect();
    // Equal ids are refused after the sort (`check_sorted_ids_distinct`), so their order does
    // not matter and an unstable sort is enough.
    order.sort_unstable_by(|(ha, a), (hb, b)| {
        ha.cmp(hb).then_with(|| tokens[*a].id.cmp(&tokens[*b].id))
    });
    let mut slots: Vec<Option<LiveToken>> = tokens.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(slots.len());
    out.extend(order.into_iter().filter_map(|(_, i)| slots[i].take()));
    out
}

fn created(
    reply: &Reply,
    id: String,
    token: Secret<String>,
    expires: Option<String>,
) -> LiveResult<CreatedToken> {
    let expires = match expires.as_deref() {
        None | Some("") => None,
        Some(v) => Some(dates::parse_date(v).ok_or_else(|| {
            bad_date(
                reply,
                BadDate {
                    token: id.clone(),
                    field: "expirationDate",
                    value: v.chars().take(40).collect(),
                },
            )
        })?),
    };
    Ok(CreatedToken {
        id: TokenId::new(id),
        secret: token,
        expires,
    })
}

fn tenant_tokens(reply: &Reply) -> LiveResult<TenantTokens> {
    let config: wire::TenantTokenConfig = reply.json()?;
    let active = config
        .active
        .and_then(|a| a.value)
        .ok_or_else(|| LiveError::Decode {
            request: Box::new(reply.label().clone()),
            reason: "no `active.value` in the tenant token configuration".into(),
        })?;
    Ok(TenantTokens {
        active,
        old: config.old.and_then(|o| o.value),
    })
}

impl EnvironmentRead for EnvironmentClient {
    fn name(&self) -> &EnvName {
        &self.name
    }

    fn list_api_tokens(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>> {
        async move {
            let query = vec![
                ("pageSize", API_TOKEN_PAGE_SIZE.to_string()),
                ("fields", API_TOKEN_FIELDS.to_owned()),
            ];
            let (tokens, reply) = self
                .paginate(API_TOKENS, query, "apiTokens", convert::api_token)
                .await?;
            checked_and_sorted("apiTokens", tokens, reply).await
        }
        .boxed()
    }

    fn get_api_token<'a>(
        &'a self,
        id: &'a TokenId,
    ) -> BoxFuture<'a, LiveResult<Option<LiveToken>>> {
        async move {
            let call = Call::new(
                Method::GET,
                format!("{API_TOKENS}/{}", segment(id.as_str())),
            );
            let Some(reply) = self.send_found(call).await? else {
                return Ok(None);
            };
            let dto: wire::ApiTokenDto = reply.json()?;
            convert::api_token(dto)
                .map(Some)
                .map_err(|e| bad_date(&reply, e))
        }
        .boxed()
    }

    fn lookup<'a>(
        &'a self,
        token: &'a Secret<String>,
    ) -> BoxFuture<'a, LiveResult<Option<LiveToken>>> {
        async move {
            let call = Call::new(Method::POST, format!("{API_TOKENS}/lookup"))
                .json(&wire::ApiTokenSecret {
                    token: token.expose(),
                })
                .idempotent(true);
            let Some(reply) = self.send_found(call).await? else {
                return Ok(None);
            };
            let dto: wire::ApiTokenDto = reply.json()?;
            convert::api_token(dto)
                .map(Some)
                .map_err(|e| bad_date(&reply, e))
        }
        .boxed()
    }

    fn caller_id(&self) -> BoxFuture<'_, LiveResult<Option<TokenId>>> {
        async move {
            if let Some(id) = TokenId::of_secret(self.token.expose()) {
                return Ok(Some(id));
            }
            Ok(self.lookup(&self.token).await?.map(|t| t.id))
        }
        .boxed()
    }

    fn list_activegate_tokens(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>> {
        async move {
            let query = vec![("pageSize", ACTIVEGATE_TOKEN_PAGE_SIZE.to_string())];
            let (tokens, reply) = self
                .paginate(
                    ACTIVEGATE_TOKENS,
                    query,
                    "activeGateTokens",
                    convert::activegate_token,
                )
                .await?;
            checked_and_sorted("activeGateTokens", tokens, reply).await
        }
        .boxed()
    }

    fn tenant_token_fingerprint(&self) -> BoxFuture<'_, LiveResult<String>> {
        async move {
            let token = self.tenant_token().await?;
            Ok(crate::model::target::tenant_fingerprint(token.expose()))
        }
        .boxed()
    }

    fn tenant_token(&self) -> BoxFuture<'_, LiveResult<Secret<String>>> {
        async move {
            let reply = self
                .send(Call::new(Method::GET, AGENT_CONNECTION_INFO).secret_response())
                .await?;
            let info: wire::AgentConnectionInfo = reply.json()?;
            info.tenant_token.ok_or_else(|| LiveError::Decode {
                request: Box::new(reply.label().clone()),
                reason: "no `tenantToken` in the connection info".into(),
            })
        }
        .boxed()
    }

    fn tenant_rotation_status(&self) -> BoxFuture<'_, LiveResult<Option<bool>>> {
        async move {
            let call = Call::new(Method::GET, TENANT_ROTATION_STATUS);
            let Some(reply) = self.send_found(call).await? else {
                return Ok(None);
            };
            let answer: wire::TenantRotationStatus = reply.json()?;
            match answer.status.as_deref() {
                Some("ACTIVE") => Ok(Some(true)),
                Some("INACTIVE") => Ok(Some(false)),
                other => Err(LiveError::Decode {
                    request: Box::new(reply.label().clone()),
                    reason: format!(
                        "the tenant rotation status is {other:?}, expected ACTIVE or INACTIVE"
                    ),
                }),
            }
        }
        .boxed()
    }

    fn server_time(&self) -> Option<OffsetDateTime> {
        self.http.server_time()
    }
}

impl EnvironmentWrite for EnvironmentClient {
    fn create_api_token<'a>(
        &'a self,
        token: &'a NewApiToken,
    ) -> BoxFuture<'a, LiveResult<CreatedToken>> {
        async move {
            let body = wire::ApiTokenCreate {
                name: token.name.clone(),
                scopes: token.scopes.iter().map(|s| s.to_string()).collect(),
                expiration_date: token.expires.map(dates::format_date),
                personal_access_token: token.personal_access_token.then_some(true),
            };
            let reply = self
                .send(
                    Call::new(Method::POST, API_TOKENS)
                        .json(&body)
                        .secret_response(),
                )
                .await
                .map_err(|e| classic_creation_refused(&self.name, e))?;
            let c: wire::ApiTokenCreated = reply.json()?;
            created(&reply, c.id, c.token, c.expiration_date)
        }
        .boxed()
    }

    fn update_api_token<'a>(
        &'a self,
        id: &'a TokenId,
        change: &'a ApiTokenChange,
    ) -> BoxFuture<'a, LiveResult<()>> {
        async move {
            let body = wire::ApiTokenUpdate {
                name: change.name.clone(),
                enabled: change.enabled,
                scopes: change
                    .scopes
                    .as_ref()
                    .map(|s| s.iter().map(|s| s.to_string()).collect()),
            };
            let path = format!("{API_TOKENS}/{}", segment(id.as_str()));
            self.send(Call::new(Method::PUT, path).json(&body)).await?;
            Ok(())
        }
        .boxed()
    }

    fn delete_api_token<'a>(&'a self, id: &'a TokenId) -> BoxFuture<'a, LiveResult<Deletion>> {
        self.delete_at(format!("{API_TOKENS}/{}", segment(id.as_str())))
            .boxed()
    }

    fn create_activegate_token<'a>(
        &'a self,
        token: &'a NewActiveGateToken,
    ) -> BoxFuture<'a, LiveResult<CreatedToken>> {
        async move {
            let body = wire::ActiveGateTokenCreate {
                name: token.name.clone(),
                active_gate_type: convert::activegate_type_name(token.activegate_type).to_owned(),
                expiration_date: token.expires.map(dates::format_date),
                seed_token: Some(token.seed),
            };
            let reply = self
                .send(
                    Call::new(Method::POST, ACTIVEGATE_TOKENS)
                        .json(&body)
                        .secret_response(),
                )
                .await?;
            let c: wire::ActiveGateTokenCreated = reply.json()?;
            created(&reply, c.id, c.token, c.expiration_date)
        }
        .boxed()
    }

    fn delete_activegate_token<'a>(
        &'a self,
        id: &'a TokenId,
    ) -> BoxFuture<'a, LiveResult<Deletion>> {
        self.delete_at(format!("{ACTIVEGATE_TOKENS}/{}", segment(id.as_str())))
            .boxed()
    }

    fn start_tenant_rotation(&self) -> BoxFuture<'_, LiveResult<TenantTokens>> {
        self.rotation("start")
    }

    fn finish_tenant_rotation(&self) -> BoxFuture<'_, LiveResult<TenantTokens>> {
        self.rotation("finish")
    }

    fn cancel_tenant_rotation(&self) -> BoxFuture<'_, LiveResult<TenantTokens>> {
        self.rotation("cancel")
    }
}

impl EnvironmentClient {
    /// A rotation call. Each changes state, and a repeat answers 400, so none is retried after
    /// an open-ended failure: that is reported as ambiguous.
    fn rotation(&self, step: &'static str) -> BoxFuture<'_, LiveResult<TenantTokens>> {
        async move {
            let path = format!("/api/v2/tenantTokenRotation/{step}");
            let reply = self
                .send(Call::new(Method::POST, path).secret_response())
                .await?;
            tenant_tokens(&reply)
        }
        .boxed()
    }
}

/// A create refused because the environment switched classic API tokens off (Dynatrace's upgrade
/// stage "API tokens"; the sandbox answers 403 with a message naming classic tokens, see
/// `sandbox::classic`): an error that says so and points at the platform-token form. Other
/// errors unchanged.
fn classic_creation_refused(env: &EnvName, error: LiveError) -> LiveError {
    let refused = matches!(
        &error,
        LiveError::Status { status: 403, message, .. }
            if message.to_ascii_lowercase().contains("classic")
    );
    if !refused {
        return error;
    }
    LiveError::Config {
        subject: Subject::Environment(env.to_string()),
        reason: format!(
            "this environment no longer allows creating classic API tokens ({error}); hint: declare the token under `platform_tokens:` with an `account:` and `resource: {env}` instead (for the Dynatrace Operator: `preset: dynatrace-operator-platform`, delivered to the DynaKube Secret's `apiToken` key)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str) -> LiveToken {
        convert::api_token(wire::ApiTokenDto {
            id: id.to_owned(),
            ..Default::default()
        })
        .unwrap()
    }

    proptest::proptest! {
        /// The key sort orders ids exactly as their texts order, whatever their lengths and
        /// shared prefixes (ids of up to 24 bytes from a small alphabet that includes NUL, so
        /// the first 16 bytes tie often and a shorter id is often a prefix of a longer one).
        #[test]
        fn tokens_are_sorted_by_id_as_text(
            ids in proptest::collection::hash_set("[ab\\x00]{0,24}", 0..200)
        ) {
            let ids: Vec<String> = ids.into_iter().collect();
            let got: Vec<String> = sorted(ids.iter().map(|i| token(i)).collect())
                .into_iter()
                .map(|t| t.id.as_str().to_owned())
                .collect();
            let mut want = ids;
            want.sort();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn ids_are_escaped_in_paths() {
        assert_eq!(segment("dt0c01.ABC"), "dt0c01.ABC");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}

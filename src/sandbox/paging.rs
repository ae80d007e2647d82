//! Cursor pagination shared by the list endpoints.
//!
//! Owns: the `nextPageKey` rules (a follow-up request carries only the key; anything else with it
//! is a 400), the opaque key itself, and slicing a sorted result into pages. The key encodes the
//! original query and the sort key plus id of the last item returned, never a position, so a page
//! sequence stays stable while tokens are inserted or deleted concurrently: nothing is returned
//! twice and nothing that existed throughout is skipped.

use std::cmp::Ordering;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::errors::{ApiError, ParameterLocation};
use super::request::Call;

/// A sort key value. Missing dates are mapped to the end the documented order demands.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Key {
    Time(i64),
    Text(String),
}

/// One page of a token list, written with its members by name (the list's name sorts before
/// `nextPageKey`), as the sandbox has always written them. `nextPageKey` is left out on the
/// last page rather than `null` (REFERENCE.md §4.2 marks null vs absent UNCERTAIN; the 1.254
/// spec types it as a plain string and Dynatrace omits unset fields).
pub struct ListPage<T> {
    /// The list's member: `apiTokens`, `activeGateTokens`.
    pub list: &'static str,
    pub items: Vec<T>,
    pub next_page_key: Option<String>,
    pub page_size: usize,
    pub total_count: usize,
}

impl<T: Serialize> Serialize for ListPage<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let members = 3 + usize::from(self.next_page_key.is_some());
        let mut map = serializer.serialize_map(Some(members))?;
        map.serialize_entry(self.list, &self.items)?;
        if let Some(key) = &self.next_page_key {
            map.serialize_entry("nextPageKey", key)?;
        }
        map.serialize_entry("pageSize", &self.page_size)?;
        map.serialize_entry("totalCount", &self.total_count)?;
        map.end()
    }
}

#[derive(Serialize, Deserialize)]
struct PageKey {
    /// The query of the first request (without `nextPageKey` and `api-token`).
    q: Vec<(String, String)>,
    /// Sort key and id of the last item already returned.
    k: Key,
    i: String,
}

/// Something listed by id.
pub trait HasId {
    fn id(&self) -> &str;
}

/// The order of a list: by key, then id, ascending or descending.
pub fn order(ka: &Key, ia: &str, kb: &Key, ib: &str, descending: bool) -> Ordering {
    let o = ka.cmp(kb).then_with(|| ia.cmp(ib));
    if descending {
        o.reverse()
    } else {
        o
    }
}

/// The effective query of a list request: the request's own parameters, or those carried in its
/// `nextPageKey`, plus where to resume.
pub struct ListQuery {
    pub params: Vec<(String, String)>,
    resume_after: Option<(Key, String)>,
}

impl ListQuery {
    /// Resolve the query of `call`. Parameters other than `nextPageKey` are not allowed beside it.
    pub fn from_call(call: &Call) -> Result<ListQuery, ApiError> {
        let params: Vec<(String, String)> = call
            .query
            .iter()
            .filter(|(k, _)| k != "api-token")
            .cloned()
            .collect();
        let Some((_, raw)) = params.iter().find(|(k, _)| k == "nextPageKey") else {
            return Ok(ListQuery {
                params,
                resume_after: None,
            });
        };
        let others: Vec<&str> = params
            .iter()
            .filter(|(k, _)| k != "nextPageKey")
            .map(|(k, _)| k.as_str())
            .collect();
        if !others.is_empty() {
            // The rule is documented; the wording of the violation is the sandbox's own.
            return Err(ApiError::violation(
                ParameterLocation::Query,
                "nextPageKey",
                format!(
                    "must not be combined with other query parameters (found: {}); a follow-up request carries only nextPageKey",
                    others.join(", ")
                ),
            ));
        }
        let key = URL_SAFE_NO_PAD
            .decode(raw.trim())
            .ok()
            .and_then(|bytes| serde_json::from_slice::<PageKey>(&bytes).ok())
            .ok_or_else(|| {
                ApiError::violation(
                    ParameterLocation::Query,
                    "nextPageKey",
                    "the page key is invalid",
                )
            })?;
        Ok(ListQuery {
            params: key.q,
            resume_after: Some((key.k, key.i)),
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// One page of `items` (in any order): the `page_size` items that follow the resume point
    /// in list order, sorted, and the key of the next page if more follow. Selecting instead of
    /// sorting everything keeps a page of a 100,000-token list at O(n + k log k).
    pub fn page<T: HasId>(
        &self,
        mut items: Vec<(Key, T)>,
        page_size: usize,
        descending: bool,
    ) -> (Vec<(Key, T)>, Option<String>) {
        if let Some((k, i)) = &self.resume_after {
            items.retain(|(key, it)| order(key, it.id(), k, i, descending) == Ordering::Greater);
        }
        let more = items.len() > page_size;
        let cmp =
            |(ka, a): &(Key, T), (kb, b): &(Key, T)| order(ka, a.id(), kb, b.id(), descending);
        if more && page_size > 0 {
            items.select_nth_unstable_by(page_size, cmp);
            items.truncate(page_size);
        }
        items.sort_unstable_by(cmp);
        let next = match items.last() {
            Some((k, it)) if more => {
                let pk = PageKey {
                    q: self.params.clone(),
                    k: k.clone(),
                    i: it.id().to_owned(),
                };
                Some(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&pk).unwrap_or_default()))
            }
            _ => None,
        };
        (items, next)
    }

    /// `pageSize` within `min..=max`, `default` when absent.
    pub fn page_size(&self, min: usize, max: usize, default: usize) -> Result<usize, ApiError> {
        let Some(raw) = self.get("pageSize") else {
            return Ok(default);
        };
        let n: i64 = raw.trim().parse().map_err(|_| {
            ApiError::violation(
                ParameterLocation::Query,
                "pageSize",
                format!("'{raw}' is not a number"),
            )
        })?;
        if n < min as i64 {
            return Err(ApiError::violation(
                ParameterLocation::Query,
                "pageSize",
                format!("must be greater than or equal to {min}"),
            ));
        }
        if n > max as i64 {
            return Err(ApiError::violation(
                ParameterLocation::Query,
                "pageSize",
                format!("must be less than or equal to {max}"),
            ));
        }
        Ok(n as usize)
    }
}

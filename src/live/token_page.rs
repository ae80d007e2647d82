//! One page of a token list (`ApiTokenList`, `ActiveGateTokenList`), decoded straight into
//! model tokens.
//!
//! A page of thousands of tokens is the client's heaviest work. Decoding it into a list of wire
//! entries and converting that list afterwards held every entry twice and moved each one (a few
//! hundred bytes) through a growing vector and again into the model's list. Here each entry is
//! decoded into a wire value on the stack and converted at once: the page's only list is the
//! model's. What the page means is unchanged: the members are the wire's (`nextPageKey`, the
//! list by its name, any other member ignored; an absent list is empty, a `null` one or a
//! repeated member is an error), and an entry's bad date is reported only if the whole page
//! decodes, as when the page was decoded first and converted after.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::convert::BadDate;
use crate::model::LiveToken;

/// The largest page Dynatrace serves (`pageSize` of the API token list at most 10,000; the
/// ActiveGate list 3,000). A page with more entries is refused while it is read: a server's
/// 64 MiB page of bare ids would otherwise become over a million tokens in memory.
pub const LARGEST_PAGE: usize = 10_000;

/// A page's tokens and the key of the next page.
#[derive(Debug)]
pub struct TokenPage {
    /// The entries in the server's order, or the first entry whose date this client cannot read.
    pub tokens: Result<Vec<LiveToken>, BadDate>,
    pub next_page_key: Option<String>,
}

/// Reads one page: the list member `list`, whose entries are wire values `T` that `convert`
/// turns into model tokens.
pub struct TokenPageSeed<T> {
    pub list: &'static str,
    pub convert: fn(T) -> Result<LiveToken, BadDate>,
    /// Room reserved for the entries before the first is read: a guess from the body's size,
    /// so that a page does not grow its list a dozen times.
    pub expected: usize,
}

impl<T> TokenPageSeed<T> {
    /// The seed for a page whose body is `body_len` bytes. An entry of the client's fields is
    /// 150 bytes or more, so the guess is rarely far over, and it is capped at the largest page
    /// Dynatrace serves: a server's odd body cannot make it reserve much.
    pub fn new(
        list: &'static str,
        convert: fn(T) -> Result<LiveToken, BadDate>,
        body_len: usize,
    ) -> Self {
        const BYTES_PER_ENTRY: usize = 150;
        TokenPageSeed {
            list,
            convert,
            expected: (body_len / BYTES_PER_ENTRY).min(LARGEST_PAGE),
        }
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for TokenPageSeed<T> {
    type Value = TokenPage;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<TokenPage, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for TokenPageSeed<T> {
    type Value = TokenPage;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a page of `{}`", self.list)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TokenPage, A::Error> {
        let mut tokens = None;
        let mut next_page_key = None;
        while let Some(member) = map.next_key_seed(MemberSeed(self.list))? {
            match member {
                Member::List => {
                    if tokens.is_some() {
                        return Err(de::Error::duplicate_field(self.list));
                    }
                    tokens = Some(map.next_value_seed(EntriesSeed {
                        convert: self.convert,
                        expected: self.expected,
                        entry: PhantomData,
                    })?);
                }
                Member::NextPageKey => {
                    if next_page_key.is_some() {
                        return Err(de::Error::duplicate_field("nextPageKey"));
                    }
                    next_page_key = Some(map.next_value::<Option<String>>()?);
                }
                Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(TokenPage {
            tokens: tokens.unwrap_or_else(|| Ok(Vec::new())),
            next_page_key: next_page_key.flatten(),
        })
    }
}

/// The members of a page this client reads.
enum Member {
    List,
    NextPageKey,
    Other,
}

/// Names a member without allocating: the list's name is the seed's.
struct MemberSeed(&'static str);

impl<'de> DeserializeSeed<'de> for MemberSeed {
    type Value = Member;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Member, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for MemberSeed {
    type Value = Member;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Member, E> {
        Ok(if name == self.0 {
            Member::List
        } else if name == "nextPageKey" {
            Member::NextPageKey
        } else {
            Member::Other
        })
    }
}

/// The list member: each entry converted as soon as it is read.
struct EntriesSeed<T> {
    convert: fn(T) -> Result<LiveToken, BadDate>,
    expected: usize,
    entry: PhantomData<fn() -> T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for EntriesSeed<T> {
    type Value = Result<Vec<LiveToken>, BadDate>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesSeed<T> {
    type Value = Result<Vec<LiveToken>, BadDate>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of tokens")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut tokens = Vec::with_capacity(self.expected);
        let mut bad = None;
        let mut read = 0;
        while let Some(entry) = seq.next_element::<T>()? {
            read += 1;
            if read > LARGEST_PAGE {
                return Err(de::Error::custom(format!(
                    "more than {LARGEST_PAGE} tokens in one page, more than any page Dynatrace serves"
                )));
            }
            // After a bad date the rest is still decoded: a page that is not valid JSON is
            // reported as such, whatever its entries say.
            if bad.is_none() {
                match (self.convert)(entry) {
                    Ok(token) => tokens.push(token),
                    Err(e) => bad = Some(e),
                }
            }
        }
        match bad {
            Some(e) => Ok(Err(e)),
            None => Ok(Ok(tokens)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeSeed;

    use super::*;
    use crate::live::convert;
    use crate::live::wire::ActiveGateTokenDto;

    fn page(body: &str) -> Result<TokenPage, serde_json::Error> {
        let seed = TokenPageSeed::new("apiTokens", convert::api_token, body.len());
        seed.deserialize(&mut serde_json::Deserializer::from_str(body))
    }

    fn ids(page: &TokenPage) -> Vec<&str> {
        let tokens = page.tokens.as_ref().expect("dates read");
        tokens.iter().map(|t| t.id.as_str()).collect()
    }

    #[test]
    fn a_page_larger_than_any_dynatrace_serves_is_refused_while_read() {
        let entries: Vec<String> = (0..=LARGEST_PAGE)
            .map(|i| format!(r#"{{"id":"dt0c01.{i:024}"}}"#))
            .collect();
        let body = format!(r#"{{"apiTokens":[{}]}}"#, entries.join(","));
        let err = page(&body).unwrap_err().to_string();
        assert!(err.contains("more than 10000 tokens in one page"), "{err}");
        let body = format!(r#"{{"apiTokens":[{}]}}"#, entries[..LARGEST_PAGE].join(","));
        assert_eq!(ids(&page(&body).unwrap()).len(), LARGEST_PAGE);
    }

    #[test]
    fn members_in_any_order_and_others_ignored() {
        let a = page(
            r#"{"totalCount":2,"pageSize":2,"nextPageKey":"k","extra":{"x":[1]},"apiTokens":[{"id":"a","scopes":["metrics.ingest"]},{"id":"b"}]}"#,
        )
        .unwrap();
        let b = page(r#"{"apiTokens":[{"id":"a"},{"id":"b"}],"nextPageKey":"k"}"#).unwrap();
        assert_eq!(ids(&a), ["a", "b"]);
        assert_eq!(ids(&b), ["a", "b"]);
        assert_eq!(a.next_page_key.as_deref(), Some("k"));
        let scopes = &a.tokens.as_ref().unwrap()[0].scopes;
        assert_eq!(
            scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            ["metrics.ingest"]
        );
    }

    #[test]
    fn null_and_absent_page_key_and_absent_list() {
        let a = page(r#"{"totalCount":0,"nextPageKey":null}"#).unwrap();
        let b = page(r#"{"totalCount":0}"#).unwrap();
        for p in [&a, &b] {
            assert_eq!(p.next_page_key, None);
            assert!(ids(p).is_empty());
        }
    }

    #[test]
    fn a_list_that_is_not_a_list_or_repeats_is_an_error() {
        for body in [
            r#"{"apiTokens":null}"#,
            r#"{"apiTokens":{"id":"a"}}"#,
            r#"{"apiTokens":[],"apiTokens":[]}"#,
            r#"{"nextPageKey":"a","nextPageKey":"b"}"#,
            r#"[{"id":"a"}]"#,
            r#"{"apiTokens":[7]}"#,
        ] {
            assert!(page(body).is_err(), "{body}");
        }
    }

    #[test]
    fn scopes_are_a_set_in_any_order_the_server_sends_and_only_strings() {
        let p = page(
            r#"{"apiTokens":[{"id":"a","scopes":["metrics.ingest","z.custom","metrics.ingest","DataExport","z.custom"]},{"id":"b","scopes":null},{"id":"c","scopes":[]},{"id":"d"}]}"#,
        )
        .unwrap();
        let tokens = p.tokens.unwrap();
        let scopes =
            |i: usize| -> Vec<&str> { tokens[i].scopes.iter().map(|s| s.as_str()).collect() };
        // Sorted by text (upper case first) and without repeats, as a set.
        assert_eq!(scopes(0), ["DataExport", "metrics.ingest", "z.custom"]);
        for i in 1..4 {
            assert!(scopes(i).is_empty(), "token {i}");
        }
        for body in [
            r#"{"apiTokens":[{"id":"a","scopes":[7]}]}"#,
            r#"{"apiTokens":[{"id":"a","scopes":[null]}]}"#,
            r#"{"apiTokens":[{"id":"a","scopes":"metrics.ingest"}]}"#,
            r#"{"apiTokens":[{"id":"a","scopes":{"metrics.ingest":true}}]}"#,
        ] {
            assert!(page(body).is_err(), "{body}");
        }
    }

    #[test]
    fn a_bad_date_names_the_first_token_and_a_broken_page_wins_over_it() {
        let bad = page(
            r#"{"apiTokens":[{"id":"a"},{"id":"b","expirationDate":"soon"},{"id":"c","lastUsedDate":"never"}]}"#,
        )
        .unwrap();
        let e = bad.tokens.unwrap_err();
        assert_eq!((e.token.as_str(), e.field), ("b", "expirationDate"));
        // The same bad date in a page that does not decode: the page's error.
        assert!(page(r#"{"apiTokens":[{"id":"b","expirationDate":"soon"},{"id":7}]}"#).is_err());
    }

    #[test]
    fn activegate_pages_read_their_own_list() {
        let body = r#"{"activeGateTokens":[{"id":"dt0g02.A","activeGateType":"CLUSTER"}],"apiTokens":[{"id":"x"}]}"#;
        let seed = TokenPageSeed::<ActiveGateTokenDto>::new(
            "activeGateTokens",
            convert::activegate_token,
            body.len(),
        );
        let p = seed
            .deserialize(&mut serde_json::Deserializer::from_str(body))
            .unwrap();
        assert_eq!(ids(&p), ["dt0g02.A"]);
    }

    #[test]
    fn the_reservation_is_bounded() {
        let seed = TokenPageSeed::new("apiTokens", convert::api_token, usize::MAX);
        assert_eq!(seed.expected, 10_000);
        assert_eq!(
            TokenPageSeed::new("apiTokens", convert::api_token, 300).expected,
            2
        );
    }
}

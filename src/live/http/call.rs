//! One logical request ([`Call`]: method, path, query, body, whether it may be repeated) and
//! its successful answer ([`Reply`]), decoded with errors that name the request and never quote
//! a secret.

use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::live::error::{redact, LiveError, RequestLabel};
use crate::model::Secret;

/// How a request authenticates.
pub enum Authorization<'a> {
    /// `Authorization: Api-Token …` (classic environment API).
    ApiToken(&'a Secret<String>),
    /// `Authorization: Bearer …` (account API with an OAuth access token).
    Bearer(&'a Secret<String>),
    /// No header (the OAuth token endpoint authenticates with the form body).
    None,
}

impl Authorization<'_> {
    /// `text` with every occurrence of this credential replaced by `<redacted>`: a server may
    /// echo what it was sent, and a credential need not have the `dt0…` shape that the general
    /// redaction recognises. Credentials shorter than 8 characters are not searched for (they
    /// would match ordinary words; no real credential is that short).
    pub fn hide_in(&self, text: String) -> String {
        let secret = match self {
            Authorization::ApiToken(t) | Authorization::Bearer(t) => t.expose(),
            Authorization::None => return text,
        };
        if secret.len() < 8 || !text.contains(secret.as_str()) {
            return text;
        }
        text.replace(secret.as_str(), crate::model::redact::REDACTED)
    }
}

/// A request body; never printed.
pub enum Body {
    Json(Vec<u8>),
    /// `application/x-www-form-urlencoded`, already encoded.
    Form(Secret<String>),
    /// `text/plain; charset=utf-8` (metric lines for the ingest API).
    Text(String),
}

/// One logical request.
pub struct Call {
    pub method: Method,
    /// Appended to the client's base URL, e.g. `/api/v2/apiTokens`.
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Body>,
    /// Whether sending it twice has the same effect as once. Only creates are not.
    pub idempotent: bool,
    /// Whether the response carries a secret, so its body must never be quoted in an error.
    pub secret_response: bool,
    /// Non-2xx statuses whose body the caller reads itself: answered as a [`Reply`], never
    /// retried (metrics ingest's 400 says which lines were stored).
    pub replied_statuses: Vec<u16>,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        let idempotent = method != Method::POST;
        Call {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotent,
            secret_response: false,
            replied_statuses: Vec::new(),
        }
    }

    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    /// A JSON body. Serialization of our own wire types cannot fail.
    pub fn json<T: serde::Serialize>(mut self, body: &T) -> Self {
        self.body = Some(Body::Json(
            serde_json::to_vec(body).expect("wire types always serialize"),
        ));
        self
    }

    /// A plain-text body.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.body = Some(Body::Text(text.into()));
        self
    }

    /// Answer `status` as a [`Reply`] instead of an error (see [`Call::replied_statuses`]).
    pub fn reply_on(mut self, status: u16) -> Self {
        self.replied_statuses.push(status);
        self
    }

    pub fn form(mut self, encoded: Secret<String>) -> Self {
        self.body = Some(Body::Form(encoded));
        self
    }

    /// Mark a POST as safe to repeat (lookup, rotation state changes, the OAuth token call).
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }

    pub fn secret_response(mut self) -> Self {
        self.secret_response = true;
        self
    }
}

/// A successful response.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub(super) label: RequestLabel,
    pub(super) secret_response: bool,
}

impl Reply {
    /// Decode the body; the error names the request and never quotes a secret.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, LiveError> {
        self.json_seed(std::marker::PhantomData)
    }

    /// The body read by a serde seed (a page decoded straight into model tokens), with the same
    /// errors as [`Reply::json`].
    pub fn json_seed<'a, S>(&'a self, seed: S) -> Result<S::Value, LiveError>
    where
        S: serde::de::DeserializeSeed<'a>,
    {
        // A body that is UTF-8 as a whole is checked in one pass here and then read as text,
        // instead of string by string as it is decoded (a page of 10,000 tokens holds about
        // 100,000 strings). One that is not is read as bytes, so that its error says where.
        let decoded = match std::str::from_utf8(&self.body) {
            Ok(text) => decode(seed, serde_json::Deserializer::from_str(text)),
            Err(_) => decode(seed, serde_json::Deserializer::from_slice(&self.body)),
        };
        decoded.map_err(|e| LiveError::Decode {
            request: Box::new(self.label.clone()),
            reason: if self.secret_response {
                format!(
                    "invalid JSON at line {} column {} ({:?})",
                    e.line(),
                    e.column(),
                    e.classify()
                )
            } else {
                redact(&e.to_string())
            },
        })
    }

    pub fn label(&self) -> &RequestLabel {
        &self.label
    }
}

/// `seed` read from `de`, which must then hold nothing but whitespace.
fn decode<'a, S, R>(
    seed: S,
    mut de: serde_json::Deserializer<R>,
) -> Result<S::Value, serde_json::Error>
where
    S: serde::de::DeserializeSeed<'a>,
    R: serde_json::de::Read<'a>,
{
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::error::Subject;

    fn reply(body: &[u8]) -> Reply {
        Reply {
            status: 200,
            body: body.to_vec(),
            label: RequestLabel {
                subject: Subject::Environment("prod".into()),
                method: "GET".into(),
                path: "/api/v2/apiTokens".into(),
            },
            secret_response: false,
        }
    }

    #[test]
    fn a_body_decodes_alike_read_as_text_or_as_bytes() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        struct Page {
            name: String,
            tags: Vec<String>,
        }
        let good =
            reply("{\"name\":\"caf\u{e9} \\u00e9\",\"tags\":[\"a\",\"\u{1f511}\"]} \n".as_bytes());
        let page: Page = good.json().unwrap();
        assert_eq!(page.name, "caf\u{e9} \u{e9}");
        assert_eq!(page.tags, ["a", "\u{1f511}"]);

        // Not UTF-8 inside a string: the error names the place, as when every string was
        // checked on its own.
        let bad = reply(b"{\"name\":\"ab\xff\",\"tags\":[]}");
        let err = bad.json::<Page>().unwrap_err().to_string();
        assert!(err.contains("line 1 column"), "{err}");
        assert!(
            err.contains("environment `prod`: GET /api/v2/apiTokens"),
            "{err}"
        );

        // Trailing data after the value is refused either way.
        for body in [
            &b"{\"name\":\"x\",\"tags\":[]} {}"[..],
            b"{\"name\":\"\xff\",\"tags\":[]} {}",
        ] {
            assert!(reply(body).json::<Page>().is_err());
        }
    }
}

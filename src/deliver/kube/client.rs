//! A minimal Kubernetes API client over reqwest: JSON GET, POST and merge-PATCH against one API
//! server, with the credentials from [`super::config`]. Clients are created lazily, once per
//! kubeconfig context, and shared by every target of that context.
//!
//! It knows nothing about Secrets or DynaKubes; [`super`] builds the requests. Error messages
//! carry the HTTP status and Kubernetes' `Status.message`, never request bodies or credentials.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::config::{self, Access, Auth, KubeSettings};

/// Content type of a JSON merge patch (RFC 7386).
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// One API server with its credentials.
pub struct KubeClient {
    base: url::Url,
    http: reqwest::Client,
    auth: Auth,
}

/// A failed request, before it is tied to a target.
#[derive(Debug)]
pub struct RequestError {
    pub method: &'static str,
    pub path: String,
    pub reason: String,
}

/// An answer: status and JSON body (`Value::Null` when empty or not JSON).
pub struct Response {
    pub status: StatusCode,
    pub body: Value,
}

impl Response {
    /// Kubernetes' `Status.message`, or the status code alone.
    pub fn message(&self) -> String {
        match self.body.get("message").and_then(Value::as_str) {
            Some(m) => format!("{} ({})", m, self.status),
            None => self.status.to_string(),
        }
    }
}

impl KubeClient {
    pub fn new(access: &Access) -> Result<KubeClient, String> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .danger_accept_invalid_certs(access.insecure);
        if let Some(ca) = &access.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca).map_err(|e| {
                format!(
                    "{}: the certificate authority is not valid PEM: {e}",
                    access.source
                )
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(pem) = &access.identity_pem {
            let identity = reqwest::Identity::from_pem(pem.expose()).map_err(|_| {
                format!(
                    "{}: the client certificate or key is not valid PEM",
                    access.source
                )
            })?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| format!("{}: cannot build an HTTP client: {e}", access.source))?;
        Ok(KubeClient {
            base: access.server.clone(),
            http,
            auth: access.auth.clone(),
        })
    }

    /// Send a request; any HTTP status is a `Response`, only transport failures are errors.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, &Value)>,
    ) -> Result<Response, RequestError> {
        let method_name = method_name(&method);
        let fail = |reason: String| RequestError {
            method: method_name,
            path: path.to_owned(),
            reason,
        };
        let mut url = self.base.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base_path}{path}"));
        let mut request = self
            .http
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        match &self.auth {
            Auth::None => {}
            Auth::Bearer(token) => request = request.bearer_auth(token.expose()),
            Auth::BearerFile(file) => {
                let token = tokio::fs::read_to_string(file).await.map_err(|e| {
                    fail(format!(
                        "cannot read the token file `{}`: {e}",
                        file.display()
                    ))
                })?;
                request = request.bearer_auth(token.trim());
            }
        }
        if let Some((content_type, body)) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| fail(format!("cannot reach the API server: {}", e.without_url())))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| fail(format!("reading the response failed: {}", chain(e))))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Response { status, body })
    }
}

/// An error with its causes (`error sending request: connection refused`), without the URL.
fn chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "request",
    }
}

/// Lazily created clients, one per kubeconfig context (`None`: the current context or the
/// in-cluster configuration).
#[derive(Default)]
pub struct ClientCache {
    clients: tokio::sync::Mutex<HashMap<Option<String>, Arc<KubeClient>>>,
}

impl ClientCache {
    pub async fn get(
        &self,
        settings: &KubeSettings,
        context: Option<&str>,
    ) -> Result<Arc<KubeClient>, String> {
        let mut clients = self.clients.lock().await;
        let key = context.map(str::to_owned);
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let access = config::resolve(settings, context)?;
        let client = Arc::new(KubeClient::new(&access)?);
        clients.insert(key, client.clone());
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Secret;

    #[test]
    fn a_bad_client_key_is_reported_without_its_bytes() {
        let access = Access {
            source: "context `prod`".into(),
            server: url::Url::parse("https://127.0.0.1:6443").unwrap(),
            ca_pem: None,
            insecure: false,
            identity_pem: Some(Secret::new(
                b"-----BEGIN PRIVATE KEY-----\nS3CRETKEYBYTES\n-----END PRIVATE KEY-----\n"
                    .to_vec(),
            )),
            auth: Auth::Bearer(Secret::from("bearer")),
        };
        let err = KubeClient::new(&access).err().unwrap();
        assert!(
            err.contains("context `prod`") && err.contains("not valid PEM"),
            "{err}"
        );
        assert!(!err.contains("S3CRET"), "{err}");
        assert!(!format!("{access:?}").contains("S3CRET"));
        assert!(!format!("{access:?}").contains("bearer\""));
    }
}

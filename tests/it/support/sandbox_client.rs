//! Helpers shared by the sandbox integration tests: a seeded sandbox on loopback and a client.

#![allow(dead_code)]

pub use super::{id_of, tok};
use reqwest::{Client, Method, RequestBuilder};
use serde_json::Value;
use tokensmith::sandbox::{spawn, Sandbox, Seed};

pub const ACCOUNT: &str = "7a3e5c10-2b4d-4e6f-8a9b-0c1d2e3f4a5b";
pub const CLIENT_ID: &str = "dt0s02.CLIENTAA";
pub const CLIENT_SECRET: &str =
    "dt0s02.CLIENTAA.SECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECR";

pub const MANAGEMENT_SCOPES: &str = "[apiTokens.read, apiTokens.write, activeGateTokenManagement.read, activeGateTokenManagement.create, activeGateTokenManagement.write, tenantTokenRotation.write, InstallerDownload, activeGates.read]";

/// The standard test world: env1 (default) with admin (A), reader (B), disabled (C), expiring in
/// one day (D); env2 with its own admin (E); one account with an OAuth client. Frozen clock.
pub fn seed_yaml() -> String {
    format!(
        r#"
start_time: 2026-06-01T00:00:00Z
frozen_clock: true
default_environment: env1
environments:
  env1:
    tenant_token: tenantoriginal000000
    api_tokens:
      - {{ name: admin, token: "{a}", owner: admin@example.com, scopes: {MANAGEMENT_SCOPES}, created: now-10d }}
      - {{ name: reader, token: "{b}", owner: reader@example.com, scopes: [apiTokens.read], created: now-9d }}
      - {{ name: disabled, token: "{c}", enabled: false, scopes: [apiTokens.read], created: now-8d }}
      - {{ name: expiring, token: "{d}", scopes: [apiTokens.read], expires: now+1d, created: now-7d }}
  env2:
    api_tokens:
      - {{ name: admin2, token: "{e}", owner: admin2@example.com, scopes: {MANAGEMENT_SCOPES} }}
accounts:
  {ACCOUNT}:
    name: test account
    oauth_clients:
      {CLIENT_ID}:
        client_secret: {CLIENT_SECRET}
        user_email: owner@example.com
        user_uuid: 11111111-2222-4333-8444-555555555555
"#,
        a = tok('A'),
        b = tok('B'),
        c = tok('C'),
        d = tok('D'),
        e = tok('E'),
    )
}

pub struct Env {
    pub sandbox: Sandbox,
    pub base: String,
    pub client: Client,
}

pub async fn start_with(seed: &str) -> Env {
    let seed = Seed::from_yaml(seed).unwrap();
    let sandbox = Sandbox::from_seed(&seed).unwrap();
    let addr = spawn(sandbox.clone()).await.unwrap();
    Env {
        sandbox,
        base: format!("http://{addr}"),
        client: Client::new(),
    }
}

pub async fn start() -> Env {
    start_with(&seed_yaml()).await
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Env {
    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let mut r = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.header("Authorization", format!("Api-Token {t}"));
        }
        r
    }

    pub async fn send(&self, r: RequestBuilder) -> Answer {
        let resp = r.send().await.expect("request failed");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(self.req(Method::GET, path, Some(token))).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send(self.req(Method::POST, path, Some(token)).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send(self.req(Method::PUT, path, Some(token)).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.send(self.req(Method::DELETE, path, Some(token))).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut r = self
            .client
            .request(method, format!("{}/__sandbox{path}", self.base));
        if let Some(b) = body {
            r = r.json(&b);
        }
        self.send(r).await
    }

    /// An OAuth bearer token for the test account.
    pub async fn bearer(&self) -> String {
        let a = self
            .send(
                self.client
                    .post(format!("{}/sso/oauth2/token", self.base))
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", CLIENT_ID),
                        ("client_secret", CLIENT_SECRET),
                        (
                            "scope",
                            "platform-token:tokens:manage platform-token:tokens:write",
                        ),
                        ("resource", &format!("urn:dtaccount:{ACCOUNT}")),
                    ]),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.body["access_token"].as_str().unwrap().to_owned()
    }
}

/// The envelope `{"error":{"code":…,"message":…}}` of an answer.
pub fn error_message(a: &Answer) -> (u64, String) {
    (
        a.body["error"]["code"].as_u64().unwrap_or(0),
        a.body["error"]["message"].as_str().unwrap_or("").to_owned(),
    )
}

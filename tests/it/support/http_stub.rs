//! A minimal scripted HTTP server for the client's tests: every request is recorded and
//! answered by a closure. Not an emulator (that is `src/sandbox/`).

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use tokensmith::live::{ClientSettings, RetryPolicy};

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers.get(key).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the stub answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn empty(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// Dynatrace's error envelope.
    pub fn error(status: u16, message: &str) -> Self {
        Reply::json(
            status,
            serde_json::json!({"error": {"code": status, "message": message}}).to_string(),
        )
    }

    pub fn header(mut self, key: &str, value: &str) -> Self {
        self.headers.push((key.into(), value.into()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A running stub.
pub struct Stub {
    pub base: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Stub {
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

/// Start a stub on 127.0.0.1:0 answering with `answer(request, index_of_request)`.
pub async fn start<F>(answer: F) -> Stub
where
    F: Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
{
    let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let answer = Arc::new(answer);
    let log = requests.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let log = log.clone();
        let answer = answer.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap()
                .to_vec();
            let recorded = Recorded {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                query: url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect(),
                headers: parts.headers,
                body,
            };
            let index = {
                let mut log = log.lock().unwrap();
                log.push(recorded.clone());
                log.len() - 1
            };
            let reply = answer(&recorded, index);
            if !reply.delay.is_zero() {
                tokio::time::sleep(reply.delay).await;
            }
            let mut response =
                Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
            for (k, v) in &reply.headers {
                response = response.header(k, v);
            }
            response.body(Body::from(reply.body)).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Stub { base, requests }
}

/// Settings with tiny delays so retry tests run fast.
pub fn fast_settings() -> ClientSettings {
    ClientSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(20),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            multiplier: 2.0,
            max_delay: Duration::from_millis(50),
            jitter: 0.0,
        },
        ..ClientSettings::default()
    }
}

pub const MGMT_TOKEN: &str = "dt0c01.MGMTMGMTMGMTMGMTMGMTMGMT.SECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECR";
pub const MGMT_ID: &str = "dt0c01.MGMTMGMTMGMTMGMTMGMTMGMT";

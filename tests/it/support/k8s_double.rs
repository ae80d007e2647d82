//! An HTTP test double of the Kubernetes API, for the `kubernetes_secret` delivery tests.
//!
//! Covered semantics (as the real API server behaves, per
//! https://kubernetes.io/docs/reference/using-api/api-concepts/):
//! - Bearer-token authentication: a missing or wrong `Authorization` header is 401 with a
//!   `Status` body.
//! - Secrets (`/api/v1/namespaces/{ns}/secrets[/{name}]`): GET (404 `NotFound` Status when
//!   missing), POST (201; 409 `AlreadyExists`; 422 when `metadata.name` is missing or a `data`
//!   value is not base64), PUT (404 when missing; 409 `Conflict` when `metadata.resourceVersion` is
//!   given and stale), PATCH with `application/merge-patch+json` only (415 otherwise), applied
//!   as RFC 7386 (null deletes), 409 when the patch carries a stale `metadata.resourceVersion`.
//! - `stringData` is merged into `data` (base64) on every write and never stored.
//! - Every write bumps a cluster-wide `resourceVersion` counter; creates set `uid` and
//!   `creationTimestamp`.
//! - Immutable Secrets: changing `data`, `stringData` or unsetting `immutable` is 422 `Invalid`
//!   with the real message ("field is immutable when `immutable` is set").
//! - Any other object (a DynaKube, a Deployment) seeded by the test: GET and merge-PATCH, 404
//!   when absent. API discovery of the `dynatrace.com` group (`GET /apis/dynatrace.com`) answers
//!   with the configured preferred version, or 404 when the CRD is "not installed".
//! - Fault injection: `inject_conflicts(n)` makes the next n Secret PATCHes race a concurrent
//!   writer (the stored resourceVersion moves just before the patch is checked);
//!   `inject_create_race(data)` makes the next POST lose to a concurrent creator.
//!
//! Not covered: RBAC (every authenticated request is allowed), server-side apply, strategic
//! merge patch and JSON patch, watches, list calls, label/field selectors, `generateName`,
//! dry-run, admission webhooks, finalizers and deletion, field validation beyond the above,
//! TLS (the double speaks plain HTTP on 127.0.0.1), and any controller behaviour (a restart
//! annotation restarts nothing; the operator does not reconcile).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Value};

/// One request as the double received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body: String,
}

#[derive(Default)]
pub struct State {
    /// Secrets by (namespace, name).
    pub secrets: BTreeMap<(String, String), Value>,
    /// Other objects by API path.
    pub objects: BTreeMap<String, Value>,
    pub resource_version: u64,
    pub requests: Vec<Seen>,
    pub conflicts_to_inject: u32,
    /// When set, the next Secret POST loses a race: another client's Secret with these data
    /// appears first and the POST gets 409 `AlreadyExists`.
    pub create_race: Option<Vec<(String, String)>>,
    /// `dynatrace.com/<version>` served by discovery; `None`: the CRD is not installed.
    pub dynatrace_group_version: Option<String>,
}

pub struct K8sDouble {
    pub addr: SocketAddr,
    pub token: String,
    pub state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for K8sDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl K8sDouble {
    pub async fn start(token: &str) -> K8sDouble {
        let state = Arc::new(Mutex::new(State {
            resource_version: 100,
            dynatrace_group_version: Some("dynatrace.com/v1beta5".to_owned()),
            ..State::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (st, tok) = (state.clone(), token.to_owned());
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (st, tok) = (st.clone(), tok.clone());
                async move { handle(&st, &tok, method, uri, headers, body) }
            },
        );
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        K8sDouble {
            addr,
            token: token.to_owned(),
            state,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig whose context `name` points at this double with `token`.
    pub fn kubeconfig(&self, context: &str, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {context}\nclusters:\n- name: double\n  cluster:\n    server: {}\ncontexts:\n- name: {context}\n  context:\n    cluster: double\n    user: tokensmith\n    namespace: dynatrace\nusers:\n- name: tokensmith\n  user:\n    token: {token}\n",
            self.url()
        )
    }

    /// Store a Secret as if created by kubectl.
    pub fn seed_secret(&self, ns: &str, name: &str, data: &[(&str, &str)], immutable: bool) {
        let mut st = self.state.lock().unwrap();
        st.resource_version += 1;
        let rv = st.resource_version.to_string();
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(b64(v))))
            .collect();
        let mut secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": rv, "uid": format!("uid-{rv}")},
            "type": "Opaque",
            "data": data,
        });
        if immutable {
            secret["immutable"] = json!(true);
        }
        st.secrets.insert((ns.to_owned(), name.to_owned()), secret);
    }

    pub fn seed_object(&self, path: &str, object: Value) {
        self.state
            .lock()
            .unwrap()
            .objects
            .insert(path.to_owned(), object);
    }

    pub fn secret(&self, ns: &str, name: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .secrets
            .get(&(ns.to_owned(), name.to_owned()))
            .cloned()
    }

    /// The decoded value of a Secret's key.
    pub fn secret_value(&self, ns: &str, name: &str, key: &str) -> Option<Vec<u8>> {
        let s = self.secret(ns, name)?;
        let v = s.get("data")?.get(key)?.as_str()?.to_owned();
        base64::engine::general_purpose::STANDARD.decode(v).ok()
    }

    pub fn object(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    pub fn inject_conflicts(&self, n: u32) {
        self.state.lock().unwrap().conflicts_to_inject = n;
    }

    pub fn inject_create_race(&self, data: &[(&str, &str)]) {
        self.state.lock().unwrap().create_race = Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }
}

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    (
        code,
        axum::Json(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
        })),
    )
        .into_response()
}

fn ok(code: StatusCode, body: &Value) -> Response {
    (code, axum::Json(body.clone())).into_response()
}

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().unwrap();
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn handle(
    st: &Mutex<State>,
    token: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = st.lock().unwrap();
    let path = uri.path().to_owned();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    st.requests.push(Seen {
        method: method.to_string(),
        path: path.clone(),
        content_type: content_type.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {token}"));
    if !authorized {
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
        );
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let body_json = || serde_json::from_slice::<Value>(&body);
    match parts.as_slice() {
        ["apis", "dynatrace.com"] if method == Method::GET => match &st.dynatrace_group_version {
            Some(gv) => {
                let version = gv.split('/').nth(1).unwrap_or_default();
                ok(
                    StatusCode::OK,
                    &json!({
                        "kind": "APIGroup", "apiVersion": "v1", "name": "dynatrace.com",
                        "versions": [{"groupVersion": gv, "version": version}],
                        "preferredVersion": {"groupVersion": gv, "version": version},
                    }),
                )
            }
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource".into(),
            ),
        },
        ["api", "v1", "namespaces", ns, "secrets"] if method == Method::POST => {
            let Ok(mut obj) = body_json() else {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "invalid JSON".into());
            };
            let Some(name) = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "Secret \"\" is invalid: metadata.name: Required value".into(),
                );
            };
            let key = ((*ns).to_owned(), name.clone());
            if let Some(data) = st.create_race.take() {
                st.resource_version += 1;
                let rv = st.resource_version.to_string();
                let data: serde_json::Map<String, Value> = data
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(b64(v))))
                    .collect();
                st.secrets.insert(
                    key.clone(),
                    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                           "metadata": {"name": name, "namespace": ns, "resourceVersion": rv, "uid": format!("uid-{rv}")},
                           "data": data}),
                );
            }
            if st.secrets.contains_key(&key) {
                return status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("secrets \"{name}\" already exists"),
                );
            }
            if let Err(m) = normalize_data(&mut obj, &name) {
                return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", m);
            }
            st.resource_version += 1;
            let rv = st.resource_version.to_string();
            obj["metadata"]["namespace"] = json!(ns);
            obj["metadata"]["resourceVersion"] = json!(rv);
            obj["metadata"]["uid"] = json!(format!("uid-{rv}"));
            obj["metadata"]["creationTimestamp"] = json!("2026-11-22T10:00:00Z");
            st.secrets.insert(key, obj.clone());
            ok(StatusCode::CREATED, &obj)
        }
        ["api", "v1", "namespaces", ns, "secrets", name] => {
            let key = ((*ns).to_owned(), (*name).to_owned());
            let not_found = || {
                status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("secrets \"{name}\" not found"),
                )
            };
            let conflict = || {
                status(
                StatusCode::CONFLICT,
                "Conflict",
                format!("Operation cannot be fulfilled on secrets \"{name}\": the object has been modified; please apply your changes to the latest version and try again"),
            )
            };
            match method {
                Method::GET => match st.secrets.get(&key) {
                    Some(s) => ok(StatusCode::OK, s),
                    None => not_found(),
                },
                Method::PUT | Method::PATCH => {
                    if method == Method::PATCH
                        && content_type.as_deref() != Some("application/merge-patch+json")
                    {
                        return status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {content_type:?}"));
                    }
                    let Ok(incoming) = body_json() else {
                        return status(
                            StatusCode::BAD_REQUEST,
                            "BadRequest",
                            "invalid JSON".into(),
                        );
                    };
                    if !st.secrets.contains_key(&key) {
                        return not_found();
                    }
                    if method == Method::PATCH && st.conflicts_to_inject > 0 {
                        st.conflicts_to_inject -= 1;
                        st.resource_version += 1;
                        let rv = st.resource_version.to_string();
                        st.secrets.get_mut(&key).unwrap()["metadata"]["resourceVersion"] =
                            json!(rv);
                    }
                    let old = st.secrets[&key].clone();
                    let current_rv = old.pointer("/metadata/resourceVersion").cloned();
                    if let Some(rv) = incoming.pointer("/metadata/resourceVersion") {
                        if Some(rv) != current_rv.as_ref() {
                            return conflict();
                        }
                    }
                    let mut new = if method == Method::PATCH {
                        let mut n = old.clone();
                        merge(&mut n, &incoming);
                        n
                    } else {
                        incoming
                    };
                    if let Err(m) = normalize_data(&mut new, name) {
                        return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", m);
                    }
                    if old.get("immutable") == Some(&json!(true)) {
                        if new.get("data") != old.get("data") {
                            return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", format!("Secret \"{name}\" is invalid: data: Forbidden: field is immutable when `immutable` is set"));
                        }
                        if new.get("immutable") != Some(&json!(true)) {
                            return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", format!("Secret \"{name}\" is invalid: immutable: Forbidden: field is immutable when `immutable` is set"));
                        }
                    }
                    st.resource_version += 1;
                    let rv = st.resource_version.to_string();
                    new["metadata"]["resourceVersion"] = json!(rv);
                    new["metadata"]["uid"] = old["metadata"]["uid"].clone();
                    new["metadata"]["name"] = json!(name);
                    new["metadata"]["namespace"] = json!(ns);
                    st.secrets.insert(key, new.clone());
                    ok(StatusCode::OK, &new)
                }
                _ => status(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "method not allowed".into(),
                ),
            }
        }
        _ => {
            if !st.objects.contains_key(&path) {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    "the server could not find the requested resource".into(),
                );
            }
            match method {
                Method::GET => ok(StatusCode::OK, &st.objects[&path]),
                Method::PATCH
                    if content_type.as_deref() == Some("application/merge-patch+json") =>
                {
                    let Ok(patch) = body_json() else {
                        return status(
                            StatusCode::BAD_REQUEST,
                            "BadRequest",
                            "invalid JSON".into(),
                        );
                    };
                    st.resource_version += 1;
                    let rv = st.resource_version.to_string();
                    let obj = st.objects.get_mut(&path).unwrap();
                    merge(obj, &patch);
                    obj["metadata"]["resourceVersion"] = json!(rv);
                    let obj = obj.clone();
                    ok(StatusCode::OK, &obj)
                }
                _ => status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    "unsupported".into(),
                ),
            }
        }
    }
}

/// Merge `stringData` into `data` and check `data` is base64, as the API server does.
fn normalize_data(obj: &mut Value, name: &str) -> Result<(), String> {
    if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|o| o.remove("stringData")) {
        let data = obj
            .as_object_mut()
            .unwrap()
            .entry("data")
            .or_insert_with(|| json!({}));
        for (k, v) in sd {
            data[k] = json!(b64(v.as_str().unwrap_or_default()));
        }
    }
    if let Some(Value::Object(data)) = obj.get("data") {
        for (k, v) in data {
            let valid = v
                .as_str()
                .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
            if !valid {
                return Err(format!(
                    "Secret \"{name}\" is invalid: data[{k}]: Invalid value: illegal base64 data"
                ));
            }
        }
    }
    Ok(())
}

//! An HTTP(S) test double of the Kubernetes API, for the `kubernetes_secret` delivery tests,
//! speaking the conventions kube-rs relies on.
//!
//! Covered semantics (as the real API server behaves, per
//! https://kubernetes.io/docs/reference/using-api/api-concepts/ and the authorization API):
//! - Transport: plain HTTP on 127.0.0.1, or TLS ([`K8sDouble::start_tls`]) with a server
//!   certificate from a test CA and optional client certificates checked against that CA.
//! - Authentication: a bearer token from the accepted set, or a client certificate registered
//!   for a user; anything else is 401 with a `Status` body (`reason: Unauthorized`).
//! - Authorization: every authenticated request is allowed unless the test denies a
//!   (verb, resource) pair with [`K8sDouble::deny`]; a denied request is 403 `Forbidden` with the
//!   real message shape (`secrets "x" is forbidden: User "u" cannot patch resource "secrets" in
//!   API group "" in the namespace "ns"`), and a SelfSubjectAccessReview
//!   (`POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`, 201) answers
//!   `status.allowed` the same way, echoing the spec.
//! - Errors are `Status` objects (`kind: Status`, `status: Failure`, `reason`, `code`,
//!   `message`): 404 `NotFound`, 409 `AlreadyExists`/`Conflict`, 422 `Invalid`, 415
//!   `UnsupportedMediaType`, 401, 403.
//! - Secrets (`/api/v1/namespaces/{ns}/secrets[/{name}]`): GET (404 when missing), POST (201; 409
//!   `AlreadyExists`; 422 when `metadata.name` is missing or a `data` value is not base64), PUT
//!   (404 when missing; 409 `Conflict` when `metadata.resourceVersion` is given and stale), PATCH
//!   with `application/merge-patch+json` only (415 otherwise), applied as RFC 7386 (null
//!   deletes), 409 when the patch carries a stale `metadata.resourceVersion`.
//! - `stringData` is merged into `data` (base64) on every write and never stored.
//! - Every write bumps a cluster-wide `resourceVersion` counter; creates set `uid` and
//!   `creationTimestamp`.
//! - Immutable Secrets: changing `data`, `stringData` or unsetting `immutable` is 422 `Invalid`
//!   with the real message ("field is immutable when `immutable` is set").
//! - Any other object (a DynaKube, a Deployment) seeded by the test: GET and merge-PATCH, 404
//!   when absent. API discovery of the `dynatrace.com` group (`GET /apis/dynatrace.com`) answers
//!   with the configured preferred version, or 404 when the CRD is "not installed".
//! - The Dynatrace Operator, when [`K8sDouble::run_operator`] is on: any update of a DynaKube
//!   starts a reconcile (as the operator's controller watches it without an event filter). The
//!   reconcile reads the tokens Secret (`spec.tokens`, else the DynaKube's name), and writes the
//!   status shape of the operator: `phase` (`Running`/`Error`), `updatedTimestamp`, the
//!   `Tokens` condition (`True`/`TokenReady` or `False`/`TokenError` with a message;
//!   `lastTransitionTime` moves only on a flip) and `ApiTokenOptionalScopes` when configured.
//!   Which token ids it rejects (missing scopes) is the test's choice.
//! - Fault injection: `inject_conflicts(n)` makes the next n Secret PATCHes race a concurrent
//!   writer (the stored resourceVersion moves just before the patch is checked);
//!   `inject_create_race(data)` makes the next POST lose to a concurrent creator.
//!
//! Not covered: server-side apply, strategic merge patch and JSON patch, watches, list calls,
//! label/field selectors, `generateName`, dry-run, admission webhooks, finalizers and deletion,
//! field validation beyond the above, RBAC rules beyond the deny list (roles, resourceNames),
//! and controller behaviour other than the operator's token check (a restart annotation
//! restarts nothing).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use base64::Engine;
use serde_json::{json, Value};
use tokio_rustls::rustls;

/// One request as the double received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body: String,
    /// The authenticated user, `None` when authentication failed.
    pub user: Option<String>,
}

/// The simulated Dynatrace Operator's token check.
#[derive(Debug, Clone, Default)]
pub struct Operator {
    /// Token ids (`dt0c01.PUBLIC`) whose lookup shows a missing required scope.
    pub rejects: BTreeSet<String>,
    /// When set, every token id not listed here is rejected.
    pub accept_only: Option<BTreeSet<String>>,
    /// The message of the `Tokens` condition for a rejected token.
    pub message: String,
    /// When set, the `ApiTokenOptionalScopes` condition is `False` with this message.
    pub optional_missing: Option<String>,
    /// How many reconciles ran.
    pub reconciles: u32,
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
    /// Bearer tokens accepted, each for a user.
    pub tokens: BTreeMap<String, String>,
    /// Client certificates (DER) accepted, each for a user.
    pub client_certs: Vec<(Vec<u8>, String)>,
    /// Denied (verb, resource) pairs.
    pub denied: BTreeSet<(String, String)>,
    /// The operator, when it runs.
    pub operator: Option<Operator>,
}

/// A test certificate authority with a server certificate for 127.0.0.1 and one client
/// certificate, all generated in the test.
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert_der: Vec<u8>,
    pub server_key_der: Vec<u8>,
    pub client_cert_pem: String,
    pub client_cert_der: Vec<u8>,
    pub client_key_pem: String,
    ca_der: Vec<u8>,
}

impl TestPki {
    pub fn generate() -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "tokensmith test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::CrlSign,
        ];
        let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "cert-user");
        let client = client_params.signed_by(&client_key, &issuer).unwrap();
        TestPki {
            ca_pem: issuer.pem(),
            ca_der: issuer.der().to_vec(),
            server_cert_der: server.der().to_vec(),
            server_key_der: server_key.serialize_der(),
            client_cert_pem: client.pem(),
            client_cert_der: client.der().to_vec(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    fn server_config(&self) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone().into()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .unwrap();
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![self.server_cert_der.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(self.server_key_der.clone().into()),
            )
            .unwrap()
    }
}

/// What the connection tells about the client: its certificate (DER) when it presented one.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub cert: Option<Vec<u8>>,
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(_: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer::default()
    }
}

/// A TLS listener: the handshake happens in `accept`, and the peer's certificate becomes the
/// connection's [`Peer`].
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, _)) = self.tcp.accept().await else {
                continue;
            };
            // A client that does not trust the CA fails here; the next connection is served.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                let cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.to_vec());
                return (tls, Peer { cert });
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer::default())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

pub struct K8sDouble {
    pub addr: SocketAddr,
    pub token: String,
    pub state: Arc<Mutex<State>>,
    tls: bool,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for K8sDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl K8sDouble {
    /// Plain HTTP; `token` is accepted for the user `tokensmith`.
    pub async fn start(token: &str) -> K8sDouble {
        Self::start_with(token, None).await
    }

    /// HTTPS with the PKI's server certificate; its client certificate is the user `cert-user`.
    pub async fn start_tls(token: &str, pki: &TestPki) -> K8sDouble {
        Self::start_with(token, Some(pki)).await
    }

    async fn start_with(token: &str, pki: Option<&TestPki>) -> K8sDouble {
        let mut st = State {
            resource_version: 100,
            dynatrace_group_version: Some("dynatrace.com/v1beta5".to_owned()),
            ..State::default()
        };
        st.tokens.insert(token.to_owned(), "tokensmith".to_owned());
        if let Some(pki) = pki {
            st.client_certs
                .push((pki.client_cert_der.clone(), "cert-user".to_owned()));
        }
        let state = Arc::new(Mutex::new(st));
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let st = state.clone();
        let app = axum::Router::new().fallback(
            move |ConnectInfo(peer): ConnectInfo<Peer>,
                  method: Method,
                  uri: Uri,
                  headers: HeaderMap,
                  body: Bytes| {
                let st = st.clone();
                async move { handle(&st, &peer, method, uri, headers, body) }
            },
        );
        let server = match pki {
            None => tokio::spawn(async move {
                axum::serve(tcp, app.into_make_service_with_connect_info::<Peer>())
                    .await
                    .unwrap();
            }),
            Some(pki) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(pki.server_config()));
                let listener = TlsListener { tcp, acceptor };
                tokio::spawn(async move {
                    axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
                        .await
                        .unwrap();
                })
            }
        };
        K8sDouble {
            addr,
            token: token.to_owned(),
            state,
            tls: pki.is_some(),
            server,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// A kubeconfig whose context `name` points at this double with `token`.
    pub fn kubeconfig(&self, context: &str, token: &str) -> String {
        self.kubeconfig_with_user(context, &format!("    token: {token}\n"))
    }

    /// A kubeconfig whose context `name` points at this double with the given `user:` body
    /// (lines indented by four spaces).
    pub fn kubeconfig_with_user(&self, context: &str, user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {context}\nclusters:\n- name: double\n  cluster:\n    server: {}\ncontexts:\n- name: {context}\n  context:\n    cluster: double\n    user: tokensmith\n    namespace: dynatrace\nusers:\n- name: tokensmith\n  user:\n{user}",
            self.url()
        )
    }

    /// Also accept `token`, as the user `user`.
    pub fn accept_token(&self, token: &str, user: &str) {
        self.state
            .lock()
            .unwrap()
            .tokens
            .insert(token.to_owned(), user.to_owned());
    }

    /// Deny `verb` on `resource` (plural, e.g. `secrets`) to everyone.
    pub fn deny(&self, verb: &str, resource: &str) {
        self.state
            .lock()
            .unwrap()
            .denied
            .insert((verb.to_owned(), resource.to_owned()));
    }

    /// Allow `verb` on `resource` again after [`K8sDouble::deny`].
    pub fn allow(&self, verb: &str, resource: &str) {
        self.state
            .lock()
            .unwrap()
            .denied
            .remove(&(verb.to_owned(), resource.to_owned()));
    }

    /// Run the simulated operator: every DynaKube update reconciles.
    pub fn run_operator(&self, operator: Operator) {
        self.state.lock().unwrap().operator = Some(operator);
    }

    /// The API path of the DynaKube `dynatrace/<name>`.
    pub fn seed_dynakube_path(&self, name: &str) -> String {
        format!("/apis/dynatrace.com/v1beta5/namespaces/dynatrace/dynakubes/{name}")
    }

    /// Seed a DynaKube `dynatrace/<name>` served at the discovered version, without status.
    pub fn seed_dynakube(&self, name: &str) -> String {
        let path = self.seed_dynakube_path(name);
        self.seed_object(
            &path,
            json!({"apiVersion": "dynatrace.com/v1beta5", "kind": "DynaKube",
                   "metadata": {"name": name, "namespace": "dynatrace", "resourceVersion": "1"},
                   "spec": {"apiUrl": "https://abc123.live.dynatrace.com/api"}}),
        );
        path
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

    /// [`K8sDouble::seed_secret`] as a controller's write at `at` (RFC 3339) leaves it: the
    /// creation time and a managed-fields entry stamped by the API server.
    pub fn seed_secret_written_at(&self, ns: &str, name: &str, data: &[(&str, &str)], at: &str) {
        self.seed_secret(ns, name, data, false);
        let mut st = self.state.lock().unwrap();
        let secret = st
            .secrets
            .get_mut(&(ns.to_owned(), name.to_owned()))
            .unwrap();
        secret["metadata"]["creationTimestamp"] = json!(at);
        secret["metadata"]["managedFields"] = json!([{
            "manager": "dynatrace-operator", "operation": "Update", "apiVersion": "v1",
            "time": at, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}
        }]);
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
    peer: &Peer,
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
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let user = match bearer {
        Some(token) => st.tokens.get(&token).cloned(),
        None => peer.cert.as_ref().and_then(|der| {
            st.client_certs
                .iter()
                .find(|(known, _)| known == der)
                .map(|(_, u)| u.clone())
        }),
    };
    st.requests.push(Seen {
        method: method.to_string(),
        path: path.clone(),
        content_type: content_type.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        user: user.clone(),
    });
    let Some(user) = user else {
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
        );
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // Authorization: the deny list, for Secrets and the objects the test seeded.
    let verb = match method {
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "other",
    };
    let resource = match parts.as_slice() {
        ["api", "v1", "namespaces", _, "secrets", ..] => Some(("secrets", "")),
        ["apis", group, _, "namespaces", _, plural, ..] => Some((*plural, *group)),
        _ => None,
    };
    if let Some((resource, group)) = resource {
        if st.denied.contains(&(verb.to_owned(), resource.to_owned())) {
            let (ns, name) = match parts.as_slice() {
                ["api", "v1", "namespaces", ns, "secrets", name, ..] => (*ns, *name),
                ["apis", _, _, "namespaces", ns, _, name, ..] => (*ns, *name),
                ["api", "v1", "namespaces", ns, ..] | ["apis", _, _, "namespaces", ns, ..] => {
                    (*ns, "")
                }
                _ => ("", ""),
            };
            return status(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("{resource} \"{name}\" is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" in the namespace \"{ns}\""),
            );
        }
    }
    let body_json = || serde_json::from_slice::<Value>(&body);
    match parts.as_slice() {
        ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"]
            if method == Method::POST =>
        {
            let Ok(review) = body_json() else {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "invalid JSON".into());
            };
            let attrs = review
                .pointer("/spec/resourceAttributes")
                .cloned()
                .unwrap_or(Value::Null);
            let verb = attrs
                .get("verb")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let resource = attrs
                .get("resource")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let allowed = !st.denied.contains(&(verb.to_owned(), resource.to_owned()));
            let mut answer = json!({
                "kind": "SelfSubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": null},
                "spec": review.get("spec").cloned().unwrap_or(json!({})),
                "status": {"allowed": allowed},
            });
            if !allowed {
                answer["status"]["reason"] = json!(format!(
                    "no RBAC policy matched (the test denies {verb} on {resource})"
                ));
            }
            ok(StatusCode::CREATED, &answer)
        }
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
                    if path.contains("/dynakubes/") {
                        reconcile(&mut st, &path);
                    }
                    let obj = st.objects[&path].clone();
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

/// The simulated operator's reconcile of the DynaKube at `path`: read the tokens Secret, check
/// the tokens (a rejected id or a missing `apiToken` is `TokenError`), write the status.
fn reconcile(st: &mut State, path: &str) {
    let Some(mut operator) = st.operator.clone() else {
        return;
    };
    operator.reconciles += 1;
    let dk = st.objects[path].clone();
    let ns = dk
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("dynatrace")
        .to_owned();
    let secret_name = dk
        .pointer("/spec/tokens")
        .and_then(Value::as_str)
        .or_else(|| dk.pointer("/metadata/name").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned();
    let data = st
        .secrets
        .get(&(ns.clone(), secret_name.clone()))
        .and_then(|s| s.get("data").cloned())
        .unwrap_or(json!({}));
    let id_of = |key: &str| -> Option<String> {
        let raw = data.get(key)?.as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.split('.');
        Some(format!("{}.{}", parts.next()?, parts.next()?))
    };
    let problem = match id_of("apiToken") {
        None => Some(format!(
            "Token apiToken on secret {ns}:{secret_name} missing"
        )),
        Some(_) => ["apiToken", "dataIngestToken"].into_iter().find_map(|key| {
            id_of(key)
                .filter(|id| {
                    operator.rejects.contains(id)
                        || operator
                            .accept_only
                            .as_ref()
                            .is_some_and(|a| !a.contains(id))
                })
                .map(|_| format!("{}: {key}", operator.message))
        }),
    };
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (flag, reason, message, phase) = match &problem {
        None => (
            "True",
            "TokenReady",
            "Tokens are valid".to_owned(),
            "Running",
        ),
        Some(m) => ("False", "TokenError", m.clone(), "Error"),
    };
    let obj = st.objects.get_mut(path).unwrap();
    let previous = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Tokens").cloned());
    let transition = match &previous {
        Some(p) if p["status"] == flag => p["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let mut conditions = vec![json!({
        "type": "Tokens", "status": flag, "reason": reason, "message": message,
        "lastTransitionTime": transition,
    })];
    if let Some(m) = &operator.optional_missing {
        conditions.push(json!({
            "type": "ApiTokenOptionalScopes", "status": "False", "reason": "OptionalScopesMissing",
            "message": m, "lastTransitionTime": now,
        }));
    }
    obj["status"] = json!({
        "phase": phase,
        "updatedTimestamp": now,
        "conditions": conditions,
    });
    st.operator = Some(operator);
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

//! The HTTP server: one dispatcher for every path, the connection plumbing, and what every
//! response carries.
//!
//! Owns: routing (SaaS root paths `/api/v2/...` with the environment chosen by the Host header or
//! the default; Managed paths `/e/{env-id}/api/v2/...`; the account API; the OAuth token endpoint;
//! the non-Dynatrace admin prefix `/__sandbox/`), the order of a request's life (faults → handler
//! under the state lock → persist → log → answer), the `Date` header from the sandbox clock, the
//! `X-RateLimit-*` headers while a request limit is configured (`faults`), and
//! "commit then drop the connection": every connection's stream has a kill switch, and a request
//! that draws that fault flips it after the handler ran, so the response is never written and the
//! socket closes (a client sees a connection error, not a status).
//!
//! It turns each HTTP request into a [`Call`] (`request.rs`) for the handlers; it is the only
//! module that imports the handlers, and none of them imports it.
//!
//! Addressing environments on loopback in SaaS style: the default environment is served at the
//! root (`http://127.0.0.1:PORT/api/v2/...`); another one is chosen by a Host header whose first
//! label is its id (`Host: abc12345.localhost`) or one of its seeded `hosts`; every environment is
//! also reachable Managed style at `http://127.0.0.1:PORT/e/{id}/api/v2/...`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{to_bytes, Body as AxumBody};
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::clock::Millis;
use super::errors::{ApiError, Body, Reply};
use super::log::redact_path;
use super::request::Call;
use super::{activegate_tokens, admin, api_tokens, metrics, platform, tenant, Sandbox};

/// The largest request body accepted (Dynatrace's payload limit for the token APIs is 1 MB).
const MAX_BODY: usize = 1024 * 1024;

/// Serve `sandbox` on `listener` until the future is dropped.
pub fn serve(
    listener: TcpListener,
    sandbox: Sandbox,
) -> impl Future<Output = io::Result<()>> + Send {
    serve_until(listener, sandbox, std::future::pending())
}

/// Serve until `shutdown` completes: stop accepting, close idle keep-alive connections, let
/// requests in flight finish.
pub fn serve_until(
    listener: TcpListener,
    sandbox: Sandbox,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = io::Result<()>> + Send {
    let app = Router::new().fallback(dispatch).with_state(sandbox);
    let listener = KillableListener { inner: listener };
    async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<ConnInfo>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}

/// Bind `127.0.0.1:0`, serve `sandbox` on a task of the current runtime, return the address.
pub async fn spawn(sandbox: Sandbox) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener, sandbox));
    Ok(addr)
}

/// Where a request came from, and the switch that drops its connection.
#[derive(Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    kill: Arc<AtomicBool>,
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnInfo {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        ConnInfo {
            remote: *stream.remote_addr(),
            kill: stream.io().kill.clone(),
        }
    }
}

/// A TCP listener whose connections can be cut from inside a handler.
pub struct KillableListener {
    inner: TcpListener,
}

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = Listener::accept(&mut self.inner).await;
        let _ = io.set_nodelay(true);
        (
            KillableStream {
                inner: io,
                kill: Arc::new(AtomicBool::new(false)),
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TCP stream that fails every read and write once its kill switch is on, which makes hyper
/// abandon the connection without writing the pending response.
pub struct KillableStream {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection dropped by the sandbox (fault injection)",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What a path addresses.
enum Target {
    Admin,
    OAuth,
    Account(Vec<String>),
    Environment {
        id: Option<String>,
        managed: bool,
        rest: Vec<String>,
    },
    Unknown,
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn classify(path: &str) -> Target {
    let segs = segments(path);
    match segs.first().map(String::as_str) {
        Some("__sandbox") => Target::Admin,
        Some("sso") if segs.len() == 3 && segs[1] == "oauth2" && segs[2] == "token" => {
            Target::OAuth
        }
        Some("iam") => Target::Account(segs),
        Some("e") if segs.len() >= 2 => Target::Environment {
            id: Some(segs[1].clone()),
            managed: true,
            rest: segs[2..].to_vec(),
        },
        Some("api") => Target::Environment {
            id: None,
            managed: false,
            rest: segs,
        },
        _ => Target::Unknown,
    }
}

/// The environment a SaaS-style request addresses: the first label of the Host header if it is an
/// environment id, an environment's extra host name, or the default environment.
fn environment_by_host(state: &super::state::State, host: Option<&str>) -> Option<String> {
    if let Some(host) = host {
        let name = host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        let first = name.split('.').next().unwrap_or("");
        if state.environments.contains_key(first) && name.contains('.') {
            return Some(first.to_owned());
        }
        if let Some((id, _)) = state
            .environments
            .iter()
            .find(|(_, e)| e.hosts.iter().any(|h| h == name || h == host))
        {
            return Some(id.clone());
        }
    }
    state.default_environment.clone()
}

async fn dispatch(
    AxumState(sandbox): AxumState<Sandbox>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let body = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let now = sandbox.now_millis();
            return respond(
                ApiError::new(413, "Request entity too large: the limit is 1 MB").into(),
                now,
            );
        }
    };
    let path = parts.uri.path().to_owned();
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let target = classify(&path);
    if let Target::Admin = target {
        let reply = admin::handle(
            &sandbox,
            &parts.method,
            &segments(&path)[1..],
            &query,
            &body,
        );
        return respond(reply, sandbox.now_millis());
    }

    let write = !matches!(parts.method, Method::GET | Method::HEAD);
    let decision = sandbox.roll_faults(write, &path);
    if let Some(delay) = decision.delay {
        tokio::time::sleep(delay).await;
    }
    let logged_path = redact_path(&path, parts.uri.query());
    if let Some((status, retry_after, message)) = decision.reject {
        let mut err = ApiError::new(status, message);
        err.retry_after = retry_after;
        // A 429 of the request limit names its window, so tests can count 429s per window.
        let fault = match &decision.window {
            Some(w) if decision.throttled => {
                format!("throttled 429 (window {})", w.number)
            }
            _ => format!("injected {status}"),
        };
        sandbox.log_request(
            parts.method.as_str(),
            &logged_path,
            status,
            None,
            Some(fault),
        );
        let now = sandbox.now_millis();
        let mut reply: Reply = err.into();
        if let Some(w) = &decision.window {
            reply.headers.extend(w.headers(now));
        }
        return respond(reply, now);
    }

    let host = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let mut call = Call {
        method: parts.method.clone(),
        env_id: String::new(),
        query,
        headers: parts.headers,
        body,
        client_ip: conn.remote.ip().to_string(),
        now: Millis(0),
        dirty: false,
        env_base_url: String::new(),
    };
    // The handler runs under the state's lock and may save the state to disk: on the blocking
    // pool, so neither a wait for the lock nor the file write holds up a runtime worker (with
    // every worker blocked on the lock, no answer is written and no other connection is read).
    let locked = sandbox.clone();
    let work = tokio::task::spawn_blocking(move || {
        let (reply, now) = locked.with_state_for_request(|state| {
            let reply = route(state, &mut call, target, host.as_deref());
            (reply, call.dirty)
        });
        (reply, now, call)
    });
    let (mut reply, now, call) = match work.await {
        Ok(done) => done,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime that is shutting down cancels a blocking task.
        Err(e) => {
            let reply = ApiError::new(503, format!("the sandbox is shutting down: {e}")).into();
            return respond(reply, sandbox.now_millis());
        }
    };
    let env = (!call.env_id.is_empty()).then_some(call.env_id.as_str());
    let mut fault = decision
        .drop_after_commit
        .then(|| "dropped connection after commit".to_owned());
    if let Some(status) = decision.error_after_commit {
        // Envoy's words for an upstream that reset after taking the request.
        reply = ApiError::new(
            status,
            "upstream connect error or disconnect/reset before headers. reset reason: connection termination (injected by the sandbox)",
        )
        .into();
        fault = Some(format!("answered {status} after commit"));
    }
    sandbox.log_request(call.method.as_str(), &logged_path, reply.status, env, fault);
    if decision.drop_after_commit {
        conn.kill.store(true, Ordering::SeqCst);
    }
    if let Some(w) = &decision.window {
        reply.headers.extend(w.headers(now));
    }
    respond(reply, now)
}

/// A request to its handler, under the state's lock; `host` is the `Host` header, which names
/// the environment when the path does not.
fn route(
    state: &mut super::state::State,
    call: &mut Call,
    target: Target,
    host: Option<&str>,
) -> Reply {
    call.now = state.now();
    match target {
        Target::OAuth if call.method == Method::POST => platform::token_endpoint(state, call),
        Target::OAuth => ApiError::method_not_allowed().into(),
        Target::Account(segs) => route_account(state, call, &segs),
        Target::Environment { id, managed, rest } => {
            let id = id.or_else(|| environment_by_host(state, host));
            let Some(id) = id.filter(|id| state.environments.contains_key(id)) else {
                return ApiError::no_route().into();
            };
            let host = host.unwrap_or("127.0.0.1");
            call.env_base_url = if managed {
                format!("http://{host}/e/{id}")
            } else {
                format!("http://{host}")
            };
            call.env_id = id;
            route_environment(state, call, &rest)
        }
        Target::Admin | Target::Unknown => ApiError::no_route().into(),
    }
}

fn route_environment(state: &mut super::state::State, call: &mut Call, rest: &[String]) -> Reply {
    let segs: Vec<&str> = rest.iter().map(String::as_str).collect();
    let m = call.method.clone();
    super::classic::purge_expired(state, call);
    let result = match (segs.as_slice(), &m) {
        (["api", "v2", "apiTokens"], &Method::GET) => api_tokens::list(state, call),
        (["api", "v2", "apiTokens"], &Method::POST) => super::classic::refuse_create(state, call)
            .and_then(|()| api_tokens::create(state, call)),
        (["api", "v2", "apiTokens", "lookup"], &Method::POST) => api_tokens::lookup(state, call),
        (["api", "v2", "apiTokens", id], &Method::GET) => api_tokens::get(state, call, id),
        (["api", "v2", "apiTokens", id], &Method::PUT) => api_tokens::update(state, call, id),
        (["api", "v2", "apiTokens", id], &Method::DELETE) => api_tokens::delete(state, call, id),
        (["api", "v2", "activeGateTokens"], &Method::GET) => activegate_tokens::list(state, call),
        (["api", "v2", "activeGateTokens"], &Method::POST) => {
            activegate_tokens::create(state, call)
        }
        (["api", "v2", "activeGateTokens", id], &Method::GET) => {
            activegate_tokens::get(state, call, id)
        }
        (["api", "v2", "activeGateTokens", id], &Method::DELETE) => {
            activegate_tokens::delete(state, call, id)
        }
        (["api", "v2", "activeGates", "tokenEnforcement"], &Method::GET) => {
            activegate_tokens::token_enforcement(state, call)
        }
        (["api", "v2", "tenantTokenRotation", "start"], &Method::POST) => {
            tenant::start(state, call)
        }
        (["api", "v2", "tenantTokenRotation", "status"], &Method::GET) => {
            tenant::status(state, call)
        }
        (["api", "v2", "tenantTokenRotation", "finish"], &Method::POST) => {
            tenant::finish(state, call)
        }
        (["api", "v2", "tenantTokenRotation", "cancel"], &Method::POST) => {
            tenant::cancel(state, call)
        }
        (["api", "v2", "metrics", "ingest"], &Method::POST) => metrics::ingest(state, call),
        (["api", "v1", "deployment", "installer", "agent", "connectioninfo"], &Method::GET) => {
            tenant::agent_connection_info(state, call)
        }
        (
            ["api", "v1", "deployment", "installer", "agent", "connectioninfo", "endpoints"],
            &Method::GET,
        ) => tenant::agent_endpoints(state, call),
        (["api", "v1", "deployment", "installer", "gateway", "connectioninfo"], &Method::GET) => {
            tenant::gateway_connection_info(state, call)
        }
        (path, _) if is_known_environment_path(path) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::no_route()),
    };
    result.unwrap_or_else(Reply::from)
}

fn is_known_environment_path(segs: &[&str]) -> bool {
    matches!(
        segs,
        ["api", "v2", "apiTokens"]
            | ["api", "v2", "apiTokens", _]
            | ["api", "v2", "activeGateTokens"]
            | ["api", "v2", "activeGateTokens", _]
            | ["api", "v2", "activeGates", "tokenEnforcement"]
            | ["api", "v2", "metrics", "ingest"]
            | [
                "api",
                "v2",
                "tenantTokenRotation",
                "start" | "finish" | "cancel" | "status"
            ]
            | [
                "api",
                "v1",
                "deployment",
                "installer",
                "agent" | "gateway",
                "connectioninfo"
            ]
            | [
                "api",
                "v1",
                "deployment",
                "installer",
                "agent",
                "connectioninfo",
                "endpoints"
            ]
    )
}

fn route_account(state: &mut super::state::State, call: &mut Call, segs: &[String]) -> Reply {
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = call.method.clone();
    let result = match (segs.as_slice(), &m) {
        (["iam", "v1", "accounts", uuid, "platform-tokens"], &Method::GET) => {
            platform::list(state, call, uuid)
        }
        (["iam", "v1", "accounts", uuid, "platform-tokens"], &Method::POST) => {
            platform::create(state, call, uuid)
        }
        (["iam", "v1", "accounts", uuid, "platform-tokens", id], &Method::DELETE) => {
            platform::delete(state, call, uuid, id)
        }
        (
            ["iam", "v1", "accounts", uuid, "platform-tokens", id, "expiration-date"],
            &Method::PUT,
        ) => platform::set_expiration(state, call, uuid, id),
        (["iam", "v1", "accounts", uuid, "platform-tokens", id, "status"], &Method::PUT) => {
            platform::set_status(state, call, uuid, id)
        }
        (["iam", "v1", "accounts", _, "platform-tokens", ..], _) => {
            Err(ApiError::method_not_allowed())
        }
        _ => Err(ApiError::no_route()),
    };
    result.unwrap_or_else(Reply::from)
}

/// Turn a reply into an HTTP response with the sandbox's `Date`.
pub fn respond(reply: Reply, now: Millis) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (content_type, body) = match reply.body {
        Body::Json(v) => (
            Some("application/json; charset=utf-8"),
            AxumBody::from(serde_json::to_vec(&v).unwrap_or_default()),
        ),
        Body::SerializedJson(bytes) => (
            Some("application/json; charset=utf-8"),
            AxumBody::from(bytes),
        ),
        Body::Text(t) => (Some("text/plain; charset=utf-8"), AxumBody::from(t)),
        Body::Empty => (None, AxumBody::empty()),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(ct) = content_type {
        headers.insert("content-type", HeaderValue::from_static(ct));
    }
    if let Ok(date) = HeaderValue::from_str(&now.http_date()) {
        headers.insert("date", date);
    }
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    response
}

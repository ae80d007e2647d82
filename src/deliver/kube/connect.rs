//! Reaching a Kubernetes API server through kube-rs: which kubeconfig files and contexts to use,
//! one [`kube::Client`] per context (created lazily and shared by every target of that context),
//! and turning kube-rs errors into causes a person can act on (DNS, refused, TLS, 401, 403).
//!
//! Everything kube-rs's configuration supports works because kube-rs does it: several files
//! merged the kubectl way (the first file that names an entry wins), contexts, exec plugins
//! (EKS `aws eks get-token`, GKE `gke-gcloud-auth-plugin`, AKS `kubelogin`, refreshed on
//! expiry), OIDC auth providers, client certificates, tokens and token files, the in-cluster
//! service account, `proxy-url`, `tls-server-name` and custom certificate authorities. This
//! module picks the files, names the context, refuses what would expose a token value (plain
//! http or unverified TLS off loopback, a proxy for plain http), adds what kube-rs leaves out
//! (`NO_PROXY`, `no_proxy`; a deadline and a size cap for each answer,
//! [`super::bounded`]) and describes failures; it builds no request.

use super::bounded::{Bounds, BoundsLayer, Exceeded, MAX_ANSWER_BYTES};
use super::no_proxy::bypasses_proxy;
use crate::bounded_read::{check_regular, read_regular_to_string};
use crate::cli::env_vars;
use crate::model::loopback_ip;
use crate::model::redact::variables_holding_secrets;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

/// Where Kubernetes configuration comes from. Read once from the environment
/// ([`KubeSettings::from_env`]) or set explicitly in tests.
#[derive(Debug, Clone)]
pub struct KubeSettings {
    /// Kubeconfig files in merge order; files that do not exist are skipped (as kubectl does).
    pub kubeconfig: Vec<PathBuf>,
    /// Whether the in-cluster service account may be used when no kubeconfig file exists.
    pub in_cluster: bool,
    /// How long a delivery to a Secret the Dynatrace Operator reads waits for the DynaKube to
    /// report on the new token (see [`super::operator`]).
    pub operator_wait: Duration,
    /// How long one request may take to be answered in full, headers and body (see
    /// [`super::bounded`]).
    pub answer_deadline: Duration,
    /// `NO_PROXY`: hosts reached directly although `HTTPS_PROXY` is set (see the `no_proxy` module).
    pub no_proxy: Option<String>,
    /// Variables the spec names as credentials; a kubeconfig's exec plugin does not get them,
    /// nor any variable whose value holds a Dynatrace token.
    pub hidden_env: Vec<String>,
}

/// The default of [`KubeSettings::operator_wait`]: a touched DynaKube reconciles within seconds.
pub const DEFAULT_OPERATOR_WAIT: Duration = Duration::from_secs(60);

/// The default of [`KubeSettings::answer_deadline`]: an API server answers a get or a patch in
/// well under a second; a minute leaves room for an exec plugin that fetches credentials.
pub const DEFAULT_ANSWER_DEADLINE: Duration = Duration::from_secs(60);

impl Default for KubeSettings {
    fn default() -> Self {
        KubeSettings {
            kubeconfig: Vec::new(),
            in_cluster: false,
            operator_wait: DEFAULT_OPERATOR_WAIT,
            answer_deadline: DEFAULT_ANSWER_DEADLINE,
            no_proxy: None,
            hidden_env: Vec::new(),
        }
    }
}

impl KubeSettings {
    /// `KUBECONFIG` (a list), else `~/.kube/config`; in a pod, the service account as fallback.
    pub fn from_env() -> Self {
        // The variables are named and read in `cli::env_vars`.
        let kubeconfig = match env_vars::kubeconfig() {
            Some(list) if !list.is_empty() => std::env::split_paths(&list)
                .filter(|p| !p.as_os_str().is_empty())
                .collect(),
            _ => env_vars::home()
                .map(|home| vec![PathBuf::from(home).join(".kube").join("config")])
                .unwrap_or_default(),
        };
        let in_cluster = env_vars::kubernetes_service().is_some_and(|(host, _)| !host.is_empty());
        KubeSettings {
            kubeconfig,
            in_cluster,
            no_proxy: env_vars::no_proxy(),
            ..KubeSettings::default()
        }
    }

    /// Settings that use exactly this kubeconfig file.
    pub fn kubeconfig_file(path: impl Into<PathBuf>) -> Self {
        KubeSettings {
            kubeconfig: vec![path.into()],
            ..KubeSettings::default()
        }
    }
}

/// A client for one context, with what errors should name.
pub struct Connection {
    pub client: kube::Client,
    /// The context's name (`in-cluster` for the service account).
    pub context: String,
    /// The API server URL.
    pub server: String,
}

impl Connection {
    /// `https://… (context prod)`, for messages.
    pub fn describe(&self) -> String {
        format!("{} (context `{}`)", self.server, self.context)
    }
}

/// Lazily created connections, one per kubeconfig context (`None`: the current context or the
/// in-cluster configuration). A context that cannot be connected is remembered too: connecting
/// asks no API server, so the answer would not change within a run, and an exec plugin that
/// hangs is waited for once, not once per target.
#[derive(Default)]
pub struct ClientCache {
    clients: tokio::sync::Mutex<HashMap<Option<String>, Connected>>,
}

/// A context's connection, or why there is none.
type Connected = Result<Arc<Connection>, String>;

impl ClientCache {
    pub async fn get(
        &self,
        settings: &KubeSettings,
        context: Option<&str>,
    ) -> Result<Arc<Connection>, String> {
        let mut clients = self.clients.lock().await;
        let key = context.map(str::to_owned);
        if let Some(c) = clients.get(&key) {
            return c.clone();
        }
        let connection = connect(settings, context).await.map(Arc::new);
        clients.insert(key, connection.clone());
        connection
    }
}

/// Secret values are written to the API server: over verified TLS, or (with or without TLS)
/// only to a loopback address. Plain http: only to a loopback address (a
/// `kubectl proxy` on this machine, a test cluster), as every other secret tokensmith sends.
/// kube-rs resolves names through the system, so `localhost` is not taken on trust here: the
/// address must be written (`127.0.0.1`).
fn refuse_cleartext(server: &str, context: &str) -> Result<(), String> {
    let Ok(url) = url::Url::parse(server) else {
        return Ok(());
    };
    if url.scheme() == "http" && !loopback_ip(&url) {
        return Err(format!(
            "context `{context}` ({server}) uses plain http; token values go to a Kubernetes API server over https, or over http only to a loopback address such as 127.0.0.1 (`kubectl proxy`)"
        ));
    }
    Ok(())
}

/// The kubeconfig files that exist, merged; `None` when there is none.
fn load_kubeconfig(settings: &KubeSettings) -> Result<Option<Kubeconfig>, String> {
    let mut merged: Option<Kubeconfig> = None;
    for path in &settings.kubeconfig {
        if !path.exists() {
            continue;
        }
        // kube-rs reads the file by path (and resolves the paths inside it against its
        // directory); a FIFO or device in its place is refused before it could block.
        check_regular(path, 64 << 20)
            .map_err(|e| format!("cannot read the kubeconfig `{}`: {e}", path.display()))?;
        let file = Kubeconfig::read_from(path)
            .map_err(|e| format!("`{}` is not a usable kubeconfig: {e}", path.display()))?;
        merged = Some(match merged {
            None => file,
            Some(m) => m
                .merge(file)
                .map_err(|e| format!("`{}` cannot be merged: {e}", path.display()))?,
        });
    }
    Ok(merged)
}

/// Resolve `context` (or the current context, or the in-cluster configuration) to a client.
pub async fn connect(settings: &KubeSettings, context: Option<&str>) -> Result<Connection, String> {
    let looked_at = || {
        if settings.kubeconfig.is_empty() {
            "no kubeconfig path is set (KUBECONFIG, HOME)".to_owned()
        } else {
            let paths: Vec<String> = settings
                .kubeconfig
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect();
            format!("looked at {}", paths.join(", "))
        }
    };
    let (mut config, context_name, explicit_proxy) = match load_kubeconfig(settings)? {
        Some(kubeconfig) => {
            let contexts: Vec<String> =
                kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
            let context_name = context
                .map(str::to_owned)
                .or_else(|| kubeconfig.current_context.clone())
                .unwrap_or_default();
            let explicit_proxy = cluster_proxy_url(&kubeconfig, &context_name).is_some();
            let options = KubeConfigOptions {
                context: context.map(str::to_owned),
                ..KubeConfigOptions::default()
            };
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| match e {
                    KubeconfigError::LoadContext(name) => format!(
                        "context `{name}` is not in the kubeconfig ({}; it has {})",
                        looked_at(),
                        if contexts.is_empty() {
                            "no contexts".to_owned()
                        } else {
                            contexts.join(", ")
                        }
                    ),
                    KubeconfigError::CurrentContextNotSet => format!(
                        "the kubeconfig sets no current-context; name a `context` on the target ({})",
                        looked_at()
                    ),
                    other => format!("context `{context_name}`: {other}"),
                })?;
            (config, context_name, explicit_proxy)
        }
        None if settings.in_cluster && context.is_none() => {
            let config = kube::Config::incluster()
                .map_err(|e| format!("the in-cluster service account is not usable: {e}"))?;
            (config, "in-cluster".to_owned(), false)
        }
        None => {
            return Err(match context {
                Some(name) => format!("no kubeconfig for context `{name}` ({})", looked_at()),
                None => format!(
                    "no kubeconfig found ({}) and not running in a cluster",
                    looked_at()
                ),
            })
        }
    };
    trim_token_file(&mut config.auth_info)?;
    hide_secrets_from_plugins(&mut config.auth_info, &settings.hidden_env);
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(30));
    config.write_timeout = Some(Duration::from_secs(30));
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    refuse_cleartext(&server, &context_name)?;
    if server.starts_with("http://") {
        // Loopback only (above), and never through a proxy: kube-rs takes `HTTPS_PROXY` for
        // every scheme, and a proxy would read the Secret's value in clear text.
        config.proxy_url = None;
    }
    // A proxy from the environment yields to `NO_PROXY`, as with kubectl; a cluster's own
    // `proxy-url` is used whatever `NO_PROXY` says (kubectl does the same).
    if !explicit_proxy
        && config.cluster_url.host().is_some_and(|host| {
            settings
                .no_proxy
                .as_deref()
                .is_some_and(|list| bypasses_proxy(list, host))
        })
    {
        config.proxy_url = None;
    }
    if config.accept_invalid_certs && !url::Url::parse(&server).is_ok_and(|u| loopback_ip(&u)) {
        return Err(format!(
            "context `{context_name}` ({server}) skips TLS verification (`insecure-skip-tls-verify: true`): token values would go to whoever answers for that address; give the cluster its `certificate-authority` or `certificate-authority-data` instead"
        ));
    }
    let bounds = BoundsLayer(Bounds {
        deadline: settings.answer_deadline,
        max_body: MAX_ANSWER_BYTES,
    });
    let plugin = config
        .auth_info
        .exec
        .as_ref()
        .and_then(|e| e.command.clone());
    let built = on_own_thread(settings.answer_deadline, move || {
        kube::client::ClientBuilder::try_from(config)
    })
    .await;
    let client = match built {
        Some(Ok(builder)) => builder,
        Some(Err(e)) => return Err(format!("context `{context_name}` ({server}): {}", cause(&e))),
        None => {
            let plugin = plugin
                .map(|c| format!(": the kubeconfig's exec plugin `{c}` did not finish (if it waits for an interactive login, give it longer with --kube-timeout, e.g. 5m)"))
                .unwrap_or_default();
            return Err(format!(
                "context `{context_name}` ({server}): the credentials were not ready within {} s{plugin}",
                settings.answer_deadline.as_secs_f64()
            ));
        }
    }
        .with_layer(&bounds)
        .build();
    Ok(Connection {
        client,
        context: context_name,
        server,
    })
}

/// `build` on a thread of its own, given up after `deadline` (`None`). Building kube-rs's
/// client stack runs the kubeconfig's exec plugin (`aws eks get-token`, `kubelogin`, …) and
/// waits for it without a limit; a plugin that waits for a login would hold the apply, and its
/// lock, for ever. The thread, not one of the runtime's, ends with the plugin or the process.
async fn on_own_thread<T: Send + 'static>(
    deadline: Duration,
    build: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("kube-credentials".to_owned())
        .spawn(move || {
            let _ = tx.send(build());
        })
        .ok()?;
    tokio::time::timeout(deadline, rx).await.ok()?.ok()
}

/// The `proxy-url` the kubeconfig gives the cluster of `context`, if any.
fn cluster_proxy_url<'k>(kubeconfig: &'k Kubeconfig, context: &str) -> Option<&'k str> {
    let cluster = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .as_str();
    kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster)?
        .cluster
        .as_ref()?
        .proxy_url
        .as_deref()
        .filter(|p| !p.is_empty())
}

/// kube-rs starts a kubeconfig's exec plugin (and a `cmd-path` auth provider) with this
/// process's whole environment, which holds the management tokens. It drops the variables it
/// is told to: every variable holding a Dynatrace token and the spec's credential variables.
fn hide_secrets_from_plugins(auth: &mut kube::config::AuthInfo, named: &[String]) {
    let hidden = variables_holding_secrets(named.iter().map(String::as_str));
    if let Some(exec) = auth.exec.as_mut() {
        exec.drop_env
            .get_or_insert_with(Vec::new)
            .extend(hidden.iter().cloned());
    }
    if let Some(provider) = auth.auth_provider.as_mut() {
        // A space-separated list: kube-rs splits it on spaces (variable names have none).
        let mut drop = provider
            .config
            .get("cmd-drop-env")
            .cloned()
            .unwrap_or_default();
        for name in &hidden {
            drop.push(' ');
            drop.push_str(name);
        }
        provider
            .config
            .insert("cmd-drop-env".to_owned(), drop.trim().to_owned());
    }
}

/// kube-rs sends a token file's content as it is, but kubectl (client-go) trims it, so a file
/// written with `echo` works with kubectl. A token file with surrounding whitespace is read here
/// and handed over trimmed; one without keeps kube-rs's periodic re-reading (rotated projected
/// service-account tokens).
fn trim_token_file(auth: &mut kube::config::AuthInfo) -> Result<(), String> {
    let Some(path) = auth.token_file.clone() else {
        return Ok(());
    };
    if auth.token.is_some() {
        return Ok(());
    }
    let text = read_regular_to_string(std::path::Path::new(&path), 1 << 20)
        .map_err(|e| format!("cannot read the token file `{path}`: {e}"))?;
    if text.trim() != text {
        auth.token = Some(secrecy::SecretString::from(text.trim().to_owned()));
        auth.token_file = None;
    }
    Ok(())
}

/// A request's failure: the HTTP status when the server answered, and a secret-free cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: Option<u16>,
    pub reason: String,
    pub cause: String,
}

impl Failure {
    pub fn of(e: &kube::Error) -> Failure {
        match e {
            kube::Error::Api(r) => Failure {
                status: Some(r.code),
                reason: r.reason.clone(),
                cause: cause(e),
            },
            _ => Failure {
                status: None,
                reason: String::new(),
                cause: cause(e),
            },
        }
    }

    pub fn is(&self, code: u16) -> bool {
        self.status == Some(code)
    }
}

/// What went wrong, in words: DNS, refused, TLS, timeout, 401, 403 with the server's message.
pub fn cause(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(r) => match r.code {
            401 => "401 Unauthorized: the API server rejected the credentials; check the kubeconfig user (token, certificate or exec plugin)".to_owned(),
            403 => format!("403 Forbidden: {}", r.message),
            code => {
                if r.message.is_empty() {
                    format!("{code} {}", r.reason)
                } else {
                    format!("{code} {}: {}", r.reason, r.message)
                }
            }
        },
        kube::Error::Auth(a) => format!("the kubeconfig credentials could not be obtained: {}", chain(a)),
        other => transport_cause(other),
    }
}

/// A transport failure: find the io or TLS error in the chain and name it.
fn transport_cause(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(bound) = Exceeded::in_chain(e) {
        return bound.to_string();
    }
    let text = chain(e);
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return format!("TLS handshake failed: {tls}");
            }
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return "connection refused (nothing listens at that address)".to_owned()
                }
                std::io::ErrorKind::TimedOut => return "timed out connecting".to_owned(),
                _ => {}
            }
        }
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return format!("TLS handshake failed: {tls}");
        }
        source = s.source();
    }
    // hyper-util boxes the connector's io::Error, so the rustls error is not always reachable
    // by downcasting; its text is rustls's own.
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("handshake") || lower.contains("tls") {
        return format!("TLS handshake failed ({text})");
    }
    if text.contains("dns error") || text.contains("failed to lookup address") {
        return format!("DNS lookup failed ({text})");
    }
    if text.contains("elapsed") || text.contains("timed out") {
        return format!("timed out ({text})");
    }
    text
}

/// An error with its causes, `: `-separated, repeats dropped.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

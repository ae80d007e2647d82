//! Finding a Kubernetes API server and credentials: kubeconfig files (`KUBECONFIG`, a
//! `:`-separated list, else `~/.kube/config`) or the in-cluster service account.
//!
//! Supported: contexts, clusters (`server`, `certificate-authority-data`,
//! `certificate-authority`, `insecure-skip-tls-verify`) and users (`token`, `tokenFile`,
//! `client-certificate-data`/`client-key-data` and their file forms). Several files merge the way
//! kubectl merges them: the first file that names an entry (or `current-context`) wins. Not
//! supported, and refused with a clear error: `exec` and `auth-provider` plugins, basic auth.
//! Relative file paths in a kubeconfig resolve against that file's directory.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use crate::cli::env_vars;
use crate::model::Secret;

/// Where Kubernetes configuration comes from. Read once from the environment
/// ([`KubeSettings::from_env`]) or set explicitly in tests.
#[derive(Debug, Clone, Default)]
pub struct KubeSettings {
    /// Kubeconfig files in merge order; files that do not exist are skipped.
    pub kubeconfig: Vec<PathBuf>,
    /// The in-cluster configuration, when running in a pod.
    pub in_cluster: Option<InCluster>,
}

/// The in-cluster configuration: the API server from the service environment and the pod's
/// service-account token and CA.
#[derive(Debug, Clone)]
pub struct InCluster {
    pub host: String,
    pub port: String,
    /// Directory with `token` and `ca.crt`.
    pub dir: PathBuf,
}

/// Where Kubernetes configuration is found. The environment variables read for it are named
/// in [`crate::cli::env_vars`].
pub mod env {
    /// Where a pod's service-account credentials are mounted.
    pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
}

impl KubeSettings {
    pub fn from_env() -> Self {
        let kubeconfig = match env_vars::kubeconfig() {
            Some(list) if !list.is_empty() => std::env::split_paths(&list)
                .filter(|p| !p.as_os_str().is_empty())
                .collect(),
            _ => env_vars::home()
                .map(|home| vec![PathBuf::from(home).join(".kube").join("config")])
                .unwrap_or_default(),
        };
        let in_cluster = match env_vars::kubernetes_service() {
            Some((host, port)) if !host.is_empty() && !port.is_empty() => Some(InCluster {
                host,
                port,
                dir: PathBuf::from(env::SERVICE_ACCOUNT_DIR),
            }),
            _ => None,
        };
        KubeSettings {
            kubeconfig,
            in_cluster,
        }
    }

    /// Settings that use exactly this kubeconfig file.
    pub fn kubeconfig_file(path: impl Into<PathBuf>) -> Self {
        KubeSettings {
            kubeconfig: vec![path.into()],
            in_cluster: None,
        }
    }
}

/// How to authenticate to the API server.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Bearer(Secret<String>),
    /// Re-read on every request: projected service-account tokens rotate.
    BearerFile(PathBuf),
}

/// A resolved API server and credentials.
#[derive(Debug, Clone)]
pub struct Access {
    /// The name it was resolved from (`context prod`, `in-cluster`), for errors.
    pub source: String,
    pub server: url::Url,
    pub ca_pem: Option<Vec<u8>>,
    pub insecure: bool,
    /// Client certificate and key, PEM, concatenated.
    pub identity_pem: Option<Secret<Vec<u8>>>,
    pub auth: Auth,
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    #[serde(default)]
    clusters: Vec<NamedCluster>,
    #[serde(default)]
    users: Vec<NamedUser>,
}

#[derive(Debug, Deserialize)]
struct NamedContext {
    name: String,
    context: Context,
}

#[derive(Debug, Deserialize)]
struct Context {
    cluster: String,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NamedCluster {
    name: String,
    cluster: Cluster,
}

#[derive(Debug, Deserialize)]
struct Cluster {
    server: String,
    #[serde(rename = "certificate-authority-data", default)]
    ca_data: Option<String>,
    #[serde(rename = "certificate-authority", default)]
    ca_file: Option<String>,
    #[serde(rename = "insecure-skip-tls-verify", default)]
    insecure: bool,
}

#[derive(Debug, Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: User,
}

#[derive(Default, Deserialize)]
struct User {
    #[serde(default)]
    token: Option<String>,
    #[serde(rename = "tokenFile", default)]
    token_file: Option<String>,
    #[serde(rename = "client-certificate-data", default)]
    cert_data: Option<String>,
    #[serde(rename = "client-key-data", default)]
    key_data: Option<String>,
    #[serde(rename = "client-certificate", default)]
    cert_file: Option<String>,
    #[serde(rename = "client-key", default)]
    key_file: Option<String>,
    #[serde(default)]
    exec: Option<serde_yaml::Value>,
    #[serde(rename = "auth-provider", default)]
    auth_provider: Option<serde_yaml::Value>,
    #[serde(default)]
    username: Option<String>,
}

// Credentials must never reach a Debug print.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("User(<redacted>)")
    }
}

/// Resolve `context` (or the current context, or the in-cluster configuration).
pub fn resolve(settings: &KubeSettings, context: Option<&str>) -> Result<Access, String> {
    let mut files = Vec::new();
    for path in &settings.kubeconfig {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let file: File = serde_yaml::from_str(&text)
                    .map_err(|e| format!("`{}` is not a valid kubeconfig: {e}", path.display()))?;
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                files.push((dir, file));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
        }
    }
    if files.is_empty() {
        if context.is_some() {
            return Err(format!(
                "no kubeconfig file found (looked at {}); set KUBECONFIG",
                describe(&settings.kubeconfig)
            ));
        }
        return match &settings.in_cluster {
            Some(ic) => in_cluster(ic),
            None => Err("no kubeconfig (KUBECONFIG, ~/.kube/config) and not running inside a cluster; set KUBECONFIG or `context`".to_owned()),
        };
    }
    let name = match context {
        Some(c) => c.to_owned(),
        None => files
            .iter()
            .find_map(|(_, f)| f.current_context.clone().filter(|c| !c.is_empty()))
            .ok_or("the kubeconfig has no current-context; set `context` on the target")?,
    };
    let ctx = files
        .iter()
        .find_map(|(_, f)| f.contexts.iter().find(|c| c.name == name))
        .ok_or_else(|| {
            format!(
                "context `{name}` is not in the kubeconfig ({})",
                describe(&settings.kubeconfig)
            )
        })?;
    let (cluster_dir, cluster) = files
        .iter()
        .find_map(|(d, f)| {
            f.clusters
                .iter()
                .find(|c| c.name == ctx.context.cluster)
                .map(|c| (d, &c.cluster))
        })
        .ok_or_else(|| {
            format!(
                "context `{name}` names cluster `{}`, which is not in the kubeconfig",
                ctx.context.cluster
            )
        })?;
    let user = match &ctx.context.user {
        Some(u) if !u.is_empty() => Some(
            files
                .iter()
                .find_map(|(d, f)| f.users.iter().find(|x| &x.name == u).map(|x| (d, &x.user)))
                .ok_or_else(|| {
                    format!("context `{name}` names user `{u}`, which is not in the kubeconfig")
                })?,
        ),
        _ => None,
    };
    let server = url::Url::parse(&cluster.server).map_err(|e| {
        format!(
            "cluster `{}` has an invalid server `{}`: {e}",
            ctx.context.cluster, cluster.server
        )
    })?;
    let ca_pem = match (&cluster.ca_data, &cluster.ca_file) {
        (Some(data), _) => Some(decode(data, "certificate-authority-data")?),
        (None, Some(file)) => Some(read_file(cluster_dir, file)?),
        (None, None) => None,
    };
    let mut access = Access {
        source: format!("context `{name}`"),
        server,
        ca_pem,
        insecure: cluster.insecure,
        identity_pem: None,
        auth: Auth::None,
    };
    if let Some((dir, user)) = user {
        if user.exec.is_some() || user.auth_provider.is_some() {
            return Err(format!(
                "context `{name}` authenticates with an exec or auth-provider plugin, which tokensmith does not run; use a service-account token (`token` or `tokenFile`) or a client certificate"
            ));
        }
        if user.username.is_some() && user.token.is_none() && user.token_file.is_none() {
            return Err(format!(
                "context `{name}` uses basic auth, which tokensmith does not support; use a token or a client certificate"
            ));
        }
        access.auth = match (&user.token, &user.token_file) {
            (Some(t), _) => Auth::Bearer(Secret::new(t.clone())),
            (None, Some(f)) => Auth::BearerFile(resolve_path(dir, f)),
            (None, None) => Auth::None,
        };
        let cert = match (&user.cert_data, &user.cert_file) {
            (Some(d), _) => Some(decode(d, "client-certificate-data")?),
            (None, Some(f)) => Some(read_file(dir, f)?),
            _ => None,
        };
        let key = match (&user.key_data, &user.key_file) {
            (Some(d), _) => Some(decode(d, "client-key-data")?),
            (None, Some(f)) => Some(read_file(dir, f)?),
            _ => None,
        };
        match (cert, key) {
            (Some(mut cert), Some(key)) => {
                if !cert.ends_with(b"\n") {
                    cert.push(b'\n');
                }
                cert.extend_from_slice(&key);
                access.identity_pem = Some(Secret::new(cert));
            }
            (None, None) => {}
            _ => {
                return Err(format!(
                    "user of context `{name}` has a client certificate without a key, or a key without a certificate"
                ))
            }
        }
    }
    Ok(access)
}

/// The in-cluster configuration.
pub fn in_cluster(ic: &InCluster) -> Result<Access, String> {
    let host = if ic.host.contains(':') && !ic.host.starts_with('[') {
        format!("[{}]", ic.host)
    } else {
        ic.host.clone()
    };
    let server = url::Url::parse(&format!("https://{host}:{}", ic.port))
        .map_err(|e| format!("invalid in-cluster API address `{host}:{}`: {e}", ic.port))?;
    let ca = ic.dir.join("ca.crt");
    let ca_pem = std::fs::read(&ca).map_err(|e| format!("cannot read `{}`: {e}", ca.display()))?;
    Ok(Access {
        source: "the in-cluster service account".to_owned(),
        server,
        ca_pem: Some(ca_pem),
        insecure: false,
        identity_pem: None,
        auth: Auth::BearerFile(ic.dir.join("token")),
    })
}

fn describe(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "no paths".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn decode(data: &str, field: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| format!("`{field}` in the kubeconfig is not valid base64"))
}

fn resolve_path(dir: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

fn read_file(dir: &Path, file: &str) -> Result<Vec<u8>, String> {
    let path = resolve_path(dir, file);
    std::fs::read(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_merge_across_files_first_wins() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(dir.path().join("tok"), "file-token\n").unwrap();
        std::fs::write(
            &a,
            "current-context: prod\ncontexts:\n- name: prod\n  context: {cluster: c1, user: u1}\nclusters:\n- name: c1\n  cluster: {server: 'https://one:6443', insecure-skip-tls-verify: true}\n",
        )
        .unwrap();
        std::fs::write(
            &b,
            "current-context: other\ncontexts:\n- name: prod\n  context: {cluster: c2}\nusers:\n- name: u1\n  user: {tokenFile: tok}\nclusters:\n- name: c1\n  cluster: {server: 'https://two:6443'}\n",
        )
        .unwrap();
        let settings = KubeSettings {
            kubeconfig: vec![a, b, dir.path().join("missing")],
            in_cluster: None,
        };
        let access = resolve(&settings, None).unwrap();
        assert_eq!(access.server.as_str(), "https://one:6443/");
        assert!(access.insecure);
        assert!(matches!(access.auth, Auth::BearerFile(ref p) if p == &dir.path().join("tok")));
        assert!(resolve(&settings, Some("nope"))
            .unwrap_err()
            .contains("`nope`"));
    }

    #[test]
    fn in_cluster_when_there_is_no_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), "pem").unwrap();
        let settings = KubeSettings {
            kubeconfig: vec![dir.path().join("none")],
            in_cluster: Some(InCluster {
                host: "fd00::1".into(),
                port: "443".into(),
                dir: dir.path().to_path_buf(),
            }),
        };
        let access = resolve(&settings, None).unwrap();
        assert_eq!(access.server.as_str(), "https://[fd00::1]/");
        assert!(matches!(access.auth, Auth::BearerFile(ref p) if p.ends_with("token")));
        assert!(resolve(&settings, Some("prod")).is_err());
    }

    #[test]
    fn plugins_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(
            &a,
            "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user:\n    exec: {command: aws}\n",
        )
        .unwrap();
        let err = resolve(&KubeSettings::kubeconfig_file(a), None).unwrap_err();
        assert!(err.contains("exec"), "{err}");
    }
}

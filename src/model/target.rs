//! Delivery targets: where a token's secret value must be written.
//!
//! These types are both the spec syntax (`deliver:` entries, parsed with serde and described by
//! schemars) and the resolved form the applier uses: templating happens on the string fields
//! before a target reaches the planner. A target is an externally tagged enum with one variant per
//! kind (`kubernetes_secret: {...}`, `file: {...}`, `exec: {...}`), so new kinds slot in as new
//! variants without touching the others.
//!
//! Every target records which token it holds (by token id) where its format allows, so that the
//! targets are the ledger DESIGN.md describes; a target that cannot be read back is write-only
//! and delivery is confirmed another way (a verify command, the token's `lastUsedDate`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::SpecDuration;

/// One place a token's value is delivered to.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// A key of a Kubernetes Secret, such as the Dynatrace Operator's `dynakube` Secret.
    KubernetesSecret(KubernetesSecretTarget),
    /// A file on this machine: the whole file, or one key of a properties/env/json/yaml file.
    File(FileTarget),
    /// A command that receives the value (for `oneagentctl` over ssh or ansible).
    Exec(ExecTarget),
    /// A Kubernetes cluster run by the Dynatrace Operator, for the tenant token only: the
    /// operator writes the token into its tenant Secrets itself (CONSUMERS.md §1.5); tokensmith
    /// touches the DynaKube, reads those Secrets back and restarts the named workloads.
    DynakubeTenant(DynakubeTenantTarget),
}

impl Target {
    /// The kind of target, as written in the spec.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::KubernetesSecret(_) => "kubernetes_secret",
            Target::File(_) => "file",
            Target::Exec(_) => "exec",
            Target::DynakubeTenant(_) => "dynakube_tenant",
        }
    }

    /// A stable, secret-free identity of the place written to. Two tokens must never share one;
    /// the validator checks that, and plans and journals use it to name targets.
    pub fn address(&self) -> TargetAddress {
        TargetAddress(match self {
            Target::KubernetesSecret(k) => format!(
                "kubernetes_secret:{}/{}/{}#{}",
                k.context.as_deref().unwrap_or("(current)"),
                k.namespace,
                k.name,
                k.key
            ),
            // The section is part of the place: one properties file may hold `authToken` in
            // one section per environment.
            Target::File(f) => match (&f.key, &f.section) {
                (Some(key), Some(section)) => format!("file:{}#[{section}]{key}", f.path),
                (Some(key), None) => format!("file:{}#{}", f.path, key),
                (None, _) => format!("file:{}", f.path),
            },
            Target::Exec(e) => format!("exec:{}", e.command.join(" ")),
            Target::DynakubeTenant(d) => format!(
                "dynakube_tenant:{}/{}/{}",
                d.context.as_deref().unwrap_or("(current)"),
                d.namespace,
                d.dynakube
            ),
        })
    }
}

/// A secret-free, human-readable identity of a target (`kubernetes_secret:prod/dynatrace/dynakube#apiToken`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct TargetAddress(pub String);

impl fmt::Display for TargetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TargetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A key in a Kubernetes Secret.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSecretTarget {
    /// The kubeconfig context; omitted means the current context, or the in-cluster config when
    /// running inside a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub namespace: String,
    /// The Secret's name (the operator's default is the DynaKube's name, e.g. `dynakube`).
    pub name: String,
    /// The key inside the Secret (`apiToken`, `dataIngestToken`, `paasToken`).
    pub key: String,
    /// A DynaKube to annotate after writing, so the operator reconciles at once instead of at
    /// its next 15-minute period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub touch_dynakube: Option<String>,
    /// Workloads to restart after writing (`deployment/name`, `statefulset/name`,
    /// `daemonset/name`), for consumers that read the value only at start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart: Vec<String>,
}

/// A DynaKube whose operator rolls the tenant token out (tenant-token target lists only).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct DynakubeTenantTarget {
    /// The kubeconfig context; omitted means the current context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub namespace: String,
    /// The DynaKube's name; the operator's Secrets are `<dynakube>-oneagent-tenant-secret` and
    /// `<dynakube>-activegate-tenant-secret`.
    pub dynakube: String,
    /// Injected workloads to rollout-restart once the operator's Secrets hold the new token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart: Vec<WorkloadRef>,
}

/// A workload to restart: `{kind: Deployment, name: app}`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct WorkloadRef {
    /// `Deployment`, `StatefulSet` or `DaemonSet`.
    pub kind: String,
    pub name: String,
}

impl WorkloadRef {
    /// The `kind/name` form the `kubernetes_secret` target's `restart` uses.
    pub fn as_path(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// A file on the machine running tokensmith.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct FileTarget {
    pub path: String,
    /// How the value sits in the file. `raw` replaces the whole file; the other formats update
    /// one key and keep everything else byte for byte.
    #[serde(default)]
    pub format: FileFormat,
    /// The key to update (required for every format except `raw`). For `json` and `yaml`, a
    /// dotted path (`auth.token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// For `properties` files with `[sections]` (ActiveGate `authorization.properties`): the
    /// section holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// File mode for a file tokensmith creates, in octal (`"0600"`). Existing files keep theirs.
    #[serde(default = "default_file_mode")]
    pub mode: String,
    /// A command run after the file changed, so the service reading it picks the value up
    /// (`[systemctl, restart, dynatracegateway]` for an ActiveGate). The program and its
    /// arguments, run without a shell and never given the value. A failure fails the delivery and
    /// puts the file back as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<Vec<String>>,
}

fn default_file_mode() -> String {
    "0600".to_owned()
}

/// The layout of a [`FileTarget`].
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// The whole file is the value, with no trailing newline.
    #[default]
    Raw,
    /// `KEY=value` lines (a dotenv or systemd environment file).
    Env,
    /// `key = value` lines, optionally in `[section]`s (Java properties, ActiveGate config).
    Properties,
    /// A JSON document; `key` is a dotted path.
    Json,
    /// A YAML document; `key` is a dotted path.
    Yaml,
}

/// A command that receives the value.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ExecTarget {
    /// The program and its arguments, run without a shell.
    pub command: Vec<String>,
    /// Pass the value in this environment variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Pass the value on standard input (with no trailing newline).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret_stdin: bool,
    /// Substitute the value for the literal `{{ secret }}` in an argument. Values in argv are
    /// visible to every user of the machine (`ps`), so this must be chosen explicitly and
    /// `validate` warns about it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret_in_argv: bool,
    /// A command whose standard output is the token id the target holds (or the tenant token
    /// fingerprint); without it the target is write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_command: Option<Vec<String>>,
    /// A command run after delivery; a non-zero exit fails the delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_command: Option<Vec<String>>,
    /// How long the command may run (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<SpecDuration>,
    /// Names of tokensmith's environment variables the commands may see (`SSH_AUTH_SOCK`).
    /// Commands otherwise get only `PATH`, `HOME`, `LANG`, `TZ`, their own value and the
    /// `TOKENSMITH_*` record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Run this target once per value (a fleet): `{ host: { file: hosts.txt } }` reads one host
    /// per line from a file next to the spec (`#` starts a comment), `{ host: [a, b] }` lists
    /// them. Each value is `{{ host }}` in the target's strings. The spec loader expands it into
    /// one target per value; a resolved target never carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<std::collections::BTreeMap<String, TargetValues>>,
}

/// The values of one `for_each` variable of an exec target.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(untagged)]
pub enum TargetValues {
    /// The values, written in the spec.
    List(Vec<String>),
    /// A file next to the spec with one value per line; blank lines and `#` comments are
    /// skipped.
    File(ValuesFile),
}

/// `{ file: PATH }`: a list of values kept in a file.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ValuesFile {
    /// Relative to the spec's directory and inside it; a regular file.
    pub file: String,
}

/// What a target reported when asked which token it holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Holder {
    /// The target holds this token (its id was recorded next to the value), which expires at
    /// `expires` when the record says so (records written before tokensmith recorded expiries,
    /// and tokens without an expiry, have none).
    Token {
        id: super::token::TokenId,
        #[serde(
            default,
            with = "time::serde::rfc3339::option",
            skip_serializing_if = "Option::is_none"
        )]
        expires: Option<time::OffsetDateTime>,
    },
    /// The target holds a tenant token with this fingerprint (see [`tenant_fingerprint`]),
    /// written at `since` when the target recorded it (the API has no "last rotated" date, so
    /// the targets' records are what tells when the tenant token was last rotated).
    TenantToken {
        fingerprint: String,
        #[serde(default, with = "time::serde::rfc3339::option")]
        since: Option<time::OffsetDateTime>,
    },
    /// The target holds this tenant token, but the workloads that read it only when they start
    /// still wait for the restart a delivery owes them: a `dynakube_tenant` target whose
    /// operator rolled the token out after the delivery stopped waiting for it. Until the
    /// restart, the running workloads use the previous token.
    RestartOwed {
        fingerprint: String,
        #[serde(default, with = "time::serde::rfc3339::option")]
        since: Option<time::OffsetDateTime>,
    },
    /// The target exists but holds no value, or a value with no recorded id.
    Unknown,
    /// The target does not exist yet (no Secret, no file).
    Absent,
    /// The target cannot be read back (exec without `read_command`).
    WriteOnly,
    /// Reading failed; the reason is secret-free.
    Unreadable { reason: String },
}

/// A short, non-reversible fingerprint of a tenant token, safe to print and store:
/// the first 12 hex digits of its SHA-256.
pub fn tenant_fingerprint(tenant_token: &str) -> String {
    let mut full = super::encode::sha256_hex(tenant_token.as_bytes());
    full.truncate(12);
    full
}

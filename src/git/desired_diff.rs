//! What a change does to the desired state: `plan --base REF` compares the spec at REF with the
//! spec at hand, both loaded to [`Desired`], and shows tokens added and removed, scope, policy,
//! name and target changes, and changes to environments, accounts, tenant tokens and the
//! unmanaged-token policy. This is the reviewer's view of the pull request; the live plan says
//! what Dynatrace will see.
//!
//! Pure: two values in, one value out. Not here: reading a spec at a ref ([`super::repo`]) and
//! loading it (`spec`), and rendering it (`render::desired_diff_human`,
//! `render::desired_diff_markdown`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::model::{
    Desired, DesiredTenantToken, DesiredToken, Endpoint, Home, Policy, Revoke, Rotation, ScopeSet,
    Target, TargetAddress, TokenKey, TokenKind,
};
use crate::plan::home_label;

/// Every difference between two desired states, each list sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DesiredDiff {
    pub environments: Vec<EntryDiff>,
    pub accounts: Vec<EntryDiff>,
    pub tokens: Vec<TokenDiff>,
    /// One per environment whose tenant token entry changed.
    pub tenant_tokens: Vec<TenantTokenDiff>,
    /// Changes to the `unmanaged:` policy.
    pub unmanaged: Vec<FieldChange>,
}

impl DesiredDiff {
    pub fn is_empty(&self) -> bool {
        self.environments.is_empty()
            && self.accounts.is_empty()
            && self.tokens.is_empty()
            && self.tenant_tokens.is_empty()
            && self.unmanaged.is_empty()
    }

    /// Token counts: (added, changed, removed).
    pub fn token_counts(&self) -> (usize, usize, usize) {
        let count = |c: ChangeKind| self.tokens.iter().filter(|t| t.change == c).count();
        (
            count(ChangeKind::Added),
            count(ChangeKind::Changed),
            count(ChangeKind::Removed),
        )
    }
}

/// Whether an entry is new, gone or different.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Changed,
    Removed,
}

impl ChangeKind {
    /// `+`, `~` or `-`.
    pub fn symbol(self) -> char {
        match self {
            ChangeKind::Added => '+',
            ChangeKind::Changed => '~',
            ChangeKind::Removed => '-',
        }
    }
}

/// One field's old and new value, as shown to a reviewer (`expires_in: 30d → 90d`). `None`
/// means unset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_owned());
        write!(
            f,
            "{}: {} → {}",
            self.field,
            side(&self.from),
            side(&self.to)
        )
    }
}

/// An environment or account, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryDiff {
    pub name: String,
    pub change: ChangeKind,
    /// For changed entries: what differs.
    pub fields: Vec<FieldChange>,
}

/// One desired token (kind + home + key). For an added token every scope and target is
/// "added"; for a removed one every scope and target is "removed".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenDiff {
    pub kind: TokenKind,
    pub home: Home,
    pub key: TokenKey,
    pub change: ChangeKind,
    pub scopes_added: ScopeSet,
    pub scopes_removed: ScopeSet,
    pub targets_added: Vec<TargetAddress>,
    pub targets_removed: Vec<TargetAddress>,
    /// Name, policy (expiry, rotation, grace, revoke, verify usage), kind-specific details and
    /// adoption, for changed tokens.
    pub fields: Vec<FieldChange>,
}

impl TokenDiff {
    /// `prod/k8s-operator`, `account:acme/ci-platform`.
    pub fn label(&self) -> String {
        format!("{}/{}", home_label(&self.home), self.key)
    }
}

/// The tenant token entry of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantTokenDiff {
    pub environment: String,
    pub change: ChangeKind,
    pub targets_added: Vec<TargetAddress>,
    pub targets_removed: Vec<TargetAddress>,
    /// `rotate_every`, and target order changes.
    pub fields: Vec<FieldChange>,
}

/// Compare the desired state at the base (`--base REF`) with the head (the spec at hand).
pub fn diff(base: &Desired, head: &Desired) -> DesiredDiff {
    DesiredDiff {
        environments: diff_maps(
            &base
                .environments
                .iter()
                .map(|(k, v)| (k.to_string(), environment_fields(v)))
                .collect(),
            &head
                .environments
                .iter()
                .map(|(k, v)| (k.to_string(), environment_fields(v)))
                .collect(),
        ),
        accounts: diff_maps(
            &base
                .accounts
                .iter()
                .map(|(k, v)| (k.clone(), account_fields(v)))
                .collect(),
            &head
                .accounts
                .iter()
                .map(|(k, v)| (k.clone(), account_fields(v)))
                .collect(),
        ),
        tokens: diff_tokens(&base.tokens, &head.tokens),
        tenant_tokens: diff_tenant_tokens(&base.tenant_tokens, &head.tenant_tokens),
        unmanaged: field_changes(
            &[
                (
                    "report_unused_after".to_owned(),
                    base.unmanaged.report_unused_after.map(|d| d.to_string()),
                ),
                ("prune".to_owned(), Some(base.unmanaged.prune.to_string())),
            ],
            &[
                (
                    "report_unused_after".to_owned(),
                    head.unmanaged.report_unused_after.map(|d| d.to_string()),
                ),
                ("prune".to_owned(), Some(head.unmanaged.prune.to_string())),
            ],
        ),
    }
}

type Fields = Vec<(String, Option<String>)>;

fn environment_fields(e: &crate::model::Environment) -> Fields {
    vec![
        (
            "url".to_owned(),
            Some(match &e.endpoint {
                Endpoint::Url { base } => base.clone(),
                Endpoint::Sandbox { name } => format!("sandbox://{name}"),
            }),
        ),
        ("token_env".to_owned(), e.token_env.clone()),
    ]
}

fn account_fields(a: &crate::model::Account) -> Fields {
    vec![
        ("uuid".to_owned(), Some(a.uuid.clone())),
        ("client_id_env".to_owned(), Some(a.client_id_env.clone())),
        (
            "client_secret_env".to_owned(),
            Some(a.client_secret_env.clone()),
        ),
        ("api_base".to_owned(), Some(a.api_base.clone())),
        ("token_url".to_owned(), Some(a.token_url.clone())),
    ]
}

fn diff_maps(base: &BTreeMap<String, Fields>, head: &BTreeMap<String, Fields>) -> Vec<EntryDiff> {
    let names: BTreeSet<&String> = base.keys().chain(head.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (change, fields) = match (base.get(name), head.get(name)) {
                (None, Some(_)) => (ChangeKind::Added, Vec::new()),
                (Some(_), None) => (ChangeKind::Removed, Vec::new()),
                (Some(b), Some(h)) => {
                    let fields = field_changes(b, h);
                    if fields.is_empty() {
                        return None;
                    }
                    (ChangeKind::Changed, fields)
                }
                (None, None) => return None,
            };
            Some(EntryDiff {
                name: name.clone(),
                change,
                fields,
            })
        })
        .collect()
}

/// Changes between two lists of named values with the same names in the same order.
fn field_changes(
    base: &[(String, Option<String>)],
    head: &[(String, Option<String>)],
) -> Vec<FieldChange> {
    let head: BTreeMap<&str, &Option<String>> = head.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut names: Vec<&str> = base.iter().map(|(k, _)| k.as_str()).collect();
    names.extend(head.keys().filter(|k| !base.iter().any(|(b, _)| b == *k)));
    let base: BTreeMap<&str, &Option<String>> = base.iter().map(|(k, v)| (k.as_str(), v)).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let from = base.get(name).and_then(|v| (*v).clone());
            let to = head.get(name).and_then(|v| (*v).clone());
            (from != to).then(|| FieldChange {
                field: name.to_owned(),
                from,
                to,
            })
        })
        .collect()
}

fn diff_tokens(base: &[DesiredToken], head: &[DesiredToken]) -> Vec<TokenDiff> {
    let index = |tokens: &[DesiredToken]| -> BTreeMap<(TokenKind, Home, TokenKey), usize> {
        tokens
            .iter()
            .enumerate()
            .map(|(i, t)| ((t.kind, t.home.clone(), t.key.clone()), i))
            .collect()
    };
    let (bi, hi) = (index(base), index(head));
    let ids: BTreeSet<&(TokenKind, Home, TokenKey)> = bi.keys().chain(hi.keys()).collect();
    let mut out = Vec::new();
    for id in ids {
        let (kind, home, key) = id.clone();
        let mut d = TokenDiff {
            kind,
            home,
            key,
            change: ChangeKind::Changed,
            scopes_added: ScopeSet::new(),
            scopes_removed: ScopeSet::new(),
            targets_added: Vec::new(),
            targets_removed: Vec::new(),
            fields: Vec::new(),
        };
        match (bi.get(id).map(|&i| &base[i]), hi.get(id).map(|&i| &head[i])) {
            (None, Some(h)) => {
                d.change = ChangeKind::Added;
                d.scopes_added = h.scopes.clone();
                d.targets_added = addresses(&h.deliver);
            }
            (Some(b), None) => {
                d.change = ChangeKind::Removed;
                d.scopes_removed = b.scopes.clone();
                d.targets_removed = addresses(&b.deliver);
            }
            (Some(b), Some(h)) => {
                d.scopes_added = h.scopes.difference(&b.scopes).cloned().collect();
                d.scopes_removed = b.scopes.difference(&h.scopes).cloned().collect();
                (d.targets_added, d.targets_removed) = target_changes(&b.deliver, &h.deliver);
                d.fields = field_changes(&token_fields(b), &token_fields(h));
                if d.scopes_added.is_empty()
                    && d.scopes_removed.is_empty()
                    && d.targets_added.is_empty()
                    && d.targets_removed.is_empty()
                    && d.fields.is_empty()
                {
                    continue;
                }
            }
            (None, None) => continue,
        }
        out.push(d);
    }
    out
}

fn addresses(targets: &[Target]) -> Vec<TargetAddress> {
    targets.iter().map(Target::address).collect()
}

/// Targets whose address appears only on one side. A target at the same address whose other
/// settings changed (format, permissions, a verify command) is reported as removed and added.
fn target_changes(base: &[Target], head: &[Target]) -> (Vec<TargetAddress>, Vec<TargetAddress>) {
    let added = head
        .iter()
        .filter(|t| !base.contains(t))
        .map(Target::address)
        .collect();
    let removed = base
        .iter()
        .filter(|t| !head.contains(t))
        .map(Target::address)
        .collect();
    (added, removed)
}

fn token_fields(t: &DesiredToken) -> Fields {
    let mut fields = vec![("display_name".to_owned(), Some(t.display_name.clone()))];
    fields.extend(policy_fields(&t.policy));
    fields.push((
        "adopt".to_owned(),
        t.adopt.as_ref().map(|id| id.to_string()),
    ));
    // Kind-specific details, one field per setting, named `details.<setting>`.
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&t.details) {
        for (name, value) in map {
            if name == "kind" {
                continue;
            }
            fields.push((format!("details.{name}"), json_text(&value)));
        }
    }
    fields
}

fn json_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) => Some(format!(
            "[{}]",
            items
                .iter()
                .map(|v| json_text(v).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        other => Some(other.to_string()),
    }
}

fn policy_fields(p: &Policy) -> Fields {
    vec![
        ("expires_in".to_owned(), p.expires_in.map(|d| d.to_string())),
        (
            "rotation".to_owned(),
            Some(match p.rotation {
                Rotation::BeforeExpiry(d) => format!("{d} before expiry"),
                Rotation::Every(d) => format!("every {d}"),
                Rotation::Never => "never".to_owned(),
            }),
        ),
        ("grace".to_owned(), Some(p.grace.to_string())),
        (
            "revoke".to_owned(),
            Some(match p.revoke {
                Revoke::Disable { delete_after } => format!("disable, delete after {delete_after}"),
                Revoke::Delete => "delete".to_owned(),
            }),
        ),
        ("verify_usage".to_owned(), Some(p.verify_usage.to_string())),
    ]
}

fn diff_tenant_tokens(
    base: &[DesiredTenantToken],
    head: &[DesiredTenantToken],
) -> Vec<TenantTokenDiff> {
    let index = |list: &[DesiredTenantToken]| -> BTreeMap<String, usize> {
        list.iter()
            .enumerate()
            .map(|(i, t)| (t.environment.to_string(), i))
            .collect()
    };
    let (bi, hi) = (index(base), index(head));
    let envs: BTreeSet<&String> = bi.keys().chain(hi.keys()).collect();
    let all = |t: &DesiredTenantToken| -> Vec<Target> {
        t.activegates.iter().chain(&t.oneagents).cloned().collect()
    };
    let fields = |t: &DesiredTenantToken| -> Fields {
        vec![
            (
                "rotate_every".to_owned(),
                t.rotate_every.map(|d| d.to_string()),
            ),
            (
                "activegates".to_owned(),
                Some(join_addresses(&addresses(&t.activegates))),
            ),
            (
                "oneagents".to_owned(),
                Some(join_addresses(&addresses(&t.oneagents))),
            ),
        ]
    };
    let mut out = Vec::new();
    for env in envs {
        let mut d = TenantTokenDiff {
            environment: env.clone(),
            change: ChangeKind::Changed,
            targets_added: Vec::new(),
            targets_removed: Vec::new(),
            fields: Vec::new(),
        };
        match (
            bi.get(env).map(|&i| &base[i]),
            hi.get(env).map(|&i| &head[i]),
        ) {
            (None, Some(h)) => {
                d.change = ChangeKind::Added;
                d.targets_added = addresses(&all(h));
            }
            (Some(b), None) => {
                d.change = ChangeKind::Removed;
                d.targets_removed = addresses(&all(b));
            }
            (Some(b), Some(h)) => {
                (d.targets_added, d.targets_removed) = target_changes(&all(b), &all(h));
                // Delivery order matters for tenant tokens (ActiveGates before OneAgents); report
                // the lists only when they changed beyond plain additions and removals.
                d.fields = field_changes(&fields(b), &fields(h))
                    .into_iter()
                    .filter(|f| {
                        f.field == "rotate_every"
                            || (d.targets_added.is_empty() && d.targets_removed.is_empty())
                    })
                    .collect();
                if d.targets_added.is_empty() && d.targets_removed.is_empty() && d.fields.is_empty()
                {
                    continue;
                }
            }
            (None, None) => continue,
        }
        out.push(d);
    }
    out
}

fn join_addresses(list: &[TargetAddress]) -> String {
    list.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

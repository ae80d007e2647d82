//! From parsed entries to [`Desired`]: defaults merged, presets expanded, `for_each` and templates
//! rendered, one [`DesiredToken`] per token instance and environment, each value checked where it
//! was written.
//!
//! The resolver keeps going after an error so that one run reports every problem; it records where
//! each desired token came from ([`Sites`]) for the cross checks of [`super::validate`]. It owns
//! the meaning of the policy fields (defaults, the `rotate_before` / `rotate_every` choice); the
//! rules about single values live in `validate`.

mod fleet;
mod policy;
mod targets;
mod tokens;
pub use fleet::MAX_VALUES_FILE;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::model::system_token;
use crate::model::{
    Account, Desired, DesiredTenantToken, DesiredToken, EnvName, Environment, SpecDuration, Target,
    TokenKey, TokenKind, UnmanagedPolicy, DEFAULT_TENANT_GRACE,
};

use super::de::Spanned;
use super::diagnostic::{Diagnostic, SourceFile, Span};
use super::load::{Entry, Parsed};
use super::template::{self, Templates, Vars};
use super::types::{ForEach, PolicySpec};
use super::validate::{self, Finding, Sites, TokenSite};
use super::yaml::Node;

/// Built-in policy defaults.
pub const DEFAULT_EXPIRES_IN: SpecDuration = SpecDuration::from_days(90);
pub const DEFAULT_ROTATE_BEFORE: SpecDuration = SpecDuration::from_days(14);
pub const DEFAULT_GRACE: SpecDuration = SpecDuration::from_hours(24);

/// Token sections longer than this are resolved on every core, in chunks this long.
const ENTRIES_PER_CHUNK: usize = 1_000;

/// ActiveGate tokens may expire at most this far ahead.
pub const MAX_ACTIVEGATE_EXPIRY: SpecDuration = SpecDuration::from_days(730);

pub const DEFAULT_API_BASE: &str = "https://api.dynatrace.com";
pub use fleet::{lock as lock_values_files, ValuesFiles, ValuesReader, MAX_FLEET};

pub const DEFAULT_TOKEN_URL: &str = "https://sso.dynatrace.com/sso/oauth2/token";

/// The resolver's working state.
pub struct Resolver<'a> {
    source: &'a SourceFile,
    root: &'a Node,
    templates: Templates,
    pub diags: Vec<Diagnostic>,
    declared_envs: BTreeSet<String>,
    declared_accounts: BTreeSet<String>,
    default_owners: BTreeMap<String, String>,
    /// Scope findings ("did you mean" is costly to repeat), by personal access token (index 0:
    /// no, 1: yes) and then scope, so a repeat is found by `&str` without a copy.
    scope_findings: [BTreeMap<String, Option<Finding>>; 2],
    desired: Desired,
    sites: Sites,
    /// The spec file on disk, when there is one: file targets are then checked against the
    /// filesystem (not the spec, not `.tokensmith/` or `.git/`, relative paths inside its
    /// directory).
    spec_file: Option<std::path::PathBuf>,
    /// The place rules for file targets, resolved once from `spec_file`.
    confinement: Option<crate::deliver::file::place::Confinement>,
    /// The directories of file targets already resolved by `confinement`.
    resolved_dirs: crate::deliver::file::place::ResolvedDirs,
    /// The spec's directory, where `for_each` values files are read; `None` for a spec held in
    /// memory.
    base_dir: Option<PathBuf>,
    /// Reads values files instead of `base_dir` (a spec read from a git commit).
    values_reader: Option<ValuesReader<'a>>,
    values_files: fleet::ValuesFiles,
}

impl<'a> Resolver<'a> {
    /// Check file targets against the filesystem around `spec_file`.
    pub fn with_spec_file(mut self, spec_file: &std::path::Path) -> Self {
        self.spec_file = Some(spec_file.to_path_buf());
        self.confinement = Some(crate::deliver::file::place::Confinement::new(
            &crate::spec::spec_dir(spec_file),
            Some(spec_file),
        ));
        self
    }

    pub fn new(source: &'a SourceFile, root: &'a Node) -> Resolver<'a> {
        Resolver {
            source,
            root,
            templates: Templates::new(),
            diags: Vec::new(),
            declared_envs: BTreeSet::new(),
            declared_accounts: BTreeSet::new(),
            default_owners: BTreeMap::new(),
            scope_findings: Default::default(),
            desired: Desired {
                environments: BTreeMap::new(),
                accounts: BTreeMap::new(),
                tokens: Vec::new(),
                tenant_tokens: Vec::new(),
                unmanaged: UnmanagedPolicy::default(),
            },
            sites: Sites::default(),
            spec_file: None,
            confinement: None,
            resolved_dirs: Default::default(),
            base_dir: None,
            values_reader: None,
            values_files: fleet::ValuesFiles::default(),
        }
    }

    /// Read `for_each` values files relative to `dir` (the spec's directory).
    pub fn in_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.base_dir = dir;
        self
    }

    /// Read `for_each` values files through `read` (relative path → bytes) instead.
    pub fn with_values_reader(mut self, read: Option<ValuesReader<'a>>) -> Self {
        self.values_reader = read;
        self
    }

    /// The values files this resolver reads (filled by [`Resolver::run`]): path as written →
    /// bytes.
    pub fn values_files(&self) -> fleet::ValuesFiles {
        self.values_files.clone()
    }

    pub(super) fn emit(&mut self, finding: Finding, span: Span) {
        let d = finding.at(self.source, span);
        self.diags.push(d);
    }

    pub(super) fn error(&mut self, span: Span, message: impl Into<String>, help: Option<String>) {
        let mut f = Finding::error(message);
        f.help = help;
        self.emit(f, span);
    }

    /// Resolves everything and returns the desired state with the sites of its tokens.
    pub fn run(mut self, parsed: &Parsed) -> (Desired, Sites, Vec<Diagnostic>) {
        if let Some(v) = &parsed.version {
            if v.value != 1 {
                self.error(
                    v.span,
                    format!("unsupported spec version {}", v.value),
                    Some("this tokensmith reads `version: 1`".into()),
                );
            }
        }
        self.environments(&parsed.environments);
        self.accounts(&parsed.accounts);
        let defaults = parsed
            .defaults
            .as_ref()
            .map(|d| d.policy())
            .unwrap_or_default();
        self.check_level(&defaults);
        if !self.over_token_limit(parsed) {
            self.each_entry(&parsed.api_tokens, &defaults, Resolver::api_token);
            self.each_entry(
                &parsed.activegate_tokens,
                &defaults,
                Resolver::activegate_token,
            );
            self.each_entry(&parsed.platform_tokens, &defaults, Resolver::platform_token);
        }
        self.tenant_tokens(&parsed.tenant_token);
        if let Some(u) = &parsed.unmanaged {
            let prune = u.prune.as_ref().is_some_and(|p| p.value);
            if prune && u.report_unused_after.is_none() {
                let span = u.prune.as_ref().map(|p| p.span).unwrap_or_default();
                self.error(
                    span,
                    "`prune` needs `report_unused_after` to know which tokens are unused",
                    Some("add `report_unused_after: 90d`".into()),
                );
            }
            if let Some(after) = &u.report_unused_after {
                self.positive(after, "report_unused_after");
            }
            if let Some(after) = &u.delete_after {
                self.positive(after, "delete_after");
            }
            let mut select = crate::model::PruneSelect {
                delete_after: u.delete_after.as_ref().map(|d| d.value),
                ..Default::default()
            };
            if let Some(sel) = &u.select {
                select.names = sel.names.clone();
                select.owners = sel.owners.clone();
                for class in &sel.classes {
                    if crate::plan::TokenClass::ALL
                        .iter()
                        .any(|c| c.as_str() == class.value)
                    {
                        select.classes.push(class.value.clone());
                    } else {
                        let known: Vec<&str> = crate::plan::TokenClass::ALL
                            .iter()
                            .map(|c| c.as_str())
                            .collect();
                        self.error(
                            class.span,
                            format!("`{}` is not an inventory class", class.value),
                            Some(format!("one of: {}", known.join(", "))),
                        );
                    }
                }
            }
            self.desired.unmanaged = UnmanagedPolicy {
                report_unused_after: u.report_unused_after.as_ref().map(|d| d.value),
                prune,
                prune_select: select,
            };
        }
        let cross = validate::cross_check(&self.desired, &self.sites, self.source);
        self.diags.extend(cross);
        (self.desired, self.sites, self.diags)
    }

    /// Whether the token entries make more than [`template::MAX_TOKENS`] tokens, counted in
    /// file order from the number of `for_each` values and environments, before anything is
    /// built: a spec of millions of tokens is refused at once. The entry that crosses the limit
    /// is reported at its `for_each`; then no entry is expanded (the spec cannot be used, and
    /// expanding up to the limit would only make the refusal slow).
    fn over_token_limit(&mut self, parsed: &Parsed) -> bool {
        // (key, `for_each`, number of environments) of each entry that parsed.
        let api = parsed.api_tokens.iter().filter_map(|e| {
            let s = e.spec.as_ref()?;
            Some((&e.key, s.for_each.as_ref(), s.environments.value.len()))
        });
        let activegate = parsed.activegate_tokens.iter().filter_map(|e| {
            let s = e.spec.as_ref()?;
            Some((&e.key, s.for_each.as_ref(), s.environments.value.len()))
        });
        let platform = parsed.platform_tokens.iter().filter_map(|e| {
            let s = e.spec.as_ref()?;
            Some((&e.key, s.for_each.as_ref(), 1))
        });
        let mut total: usize = 0;
        for (key, for_each, environments) in api.chain(activegate).chain(platform) {
            let combinations = template::combination_count(for_each);
            if combinations > template::MAX_COMBINATIONS {
                // Refused on its own by `combinations`, and makes no token.
                continue;
            }
            let tokens = combinations.saturating_mul(environments);
            let before = total;
            total = total.saturating_add(tokens);
            if total > template::MAX_TOKENS {
                let span = for_each
                    .and_then(|_| self.root.value_of(key.span))
                    .and_then(|v| v.find_field(v.span, "for_each"))
                    .unwrap_or(key.span);
                self.error(
                    span,
                    format!(
                        "the spec makes more than {} tokens: {before} before this entry and {tokens} from it",
                        template::MAX_TOKENS
                    ),
                    Some(format!(
                        "a spec makes at most {} tokens, counting each `for_each` combination in each environment; no token entry was checked further",
                        template::MAX_TOKENS
                    )),
                );
                return true;
            }
        }
        false
    }

    /// Resolves every entry of a token section that parsed, with `one`, in order. A large
    /// section is cut into chunks resolved by forks of this resolver on every core; their
    /// tokens, sites and findings are appended in chunk order, so the outcome is exactly the
    /// one-thread outcome.
    fn each_entry<T: Sync>(
        &mut self,
        entries: &[Entry<T>],
        defaults: &PolicySpec,
        one: impl Fn(&mut Resolver<'a>, &Entry<T>, &T, &PolicySpec) + Sync,
    ) {
        let this = &*self;
        let parts = super::parallel::by_chunks(entries, ENTRIES_PER_CHUNK, |slice| {
            let mut fork = this.fork();
            // An entry resolves to a token per environment (and `for_each` combination), most
            // often one: room for that many now, rather than doubling as they come, which left
            // about a quarter of a large spec's token lists allocated and unused.
            fork.desired.tokens.reserve_exact(slice.len());
            fork.sites.tokens.reserve_exact(slice.len());
            for entry in slice {
                if let Some(spec) = &entry.spec {
                    one(&mut fork, entry, spec, defaults);
                }
            }
            (fork.desired.tokens, fork.sites.tokens, fork.diags)
        });
        let added: usize = parts.iter().map(|(tokens, _, _)| tokens.len()).sum();
        self.desired.tokens.reserve_exact(added);
        self.sites.tokens.reserve_exact(added);
        for (tokens, sites, diags) in parts {
            self.desired.tokens.extend(tokens);
            self.sites.tokens.extend(sites);
            self.diags.extend(diags);
        }
    }

    /// A resolver for a chunk of a section's entries: what the sections before them declared,
    /// and nothing resolved yet.
    fn fork(&self) -> Resolver<'a> {
        Resolver {
            source: self.source,
            root: self.root,
            templates: Templates::new(),
            diags: Vec::new(),
            declared_envs: self.declared_envs.clone(),
            declared_accounts: self.declared_accounts.clone(),
            default_owners: self.default_owners.clone(),
            scope_findings: self.scope_findings.clone(),
            desired: Desired {
                environments: self.desired.environments.clone(),
                accounts: self.desired.accounts.clone(),
                tokens: Vec::new(),
                tenant_tokens: Vec::new(),
                unmanaged: UnmanagedPolicy::default(),
            },
            sites: Sites::default(),
            spec_file: self.spec_file.clone(),
            confinement: self.confinement.clone(),
            resolved_dirs: Default::default(),
            base_dir: self.base_dir.clone(),
            values_reader: self.values_reader,
            values_files: self.values_files.clone(),
        }
    }

    fn environments(&mut self, entries: &[Entry<super::types::EnvironmentSpec>]) {
        for entry in entries {
            let name = &entry.key;
            self.declared_envs.insert(name.value.clone());
            if let Some(f) = validate::check_entry_name("environment", &name.value) {
                self.emit(f, name.span);
            }
            let Some(spec) = &entry.spec else { continue };
            let endpoint = match validate::parse_endpoint(&spec.url.value) {
                Ok(e) => e,
                Err(f) => {
                    self.emit(f, spec.url.span);
                    continue;
                }
            };
            let sandbox = matches!(endpoint, crate::model::Endpoint::Sandbox { .. });
            if let Some(token_env) = &spec.token_env {
                if let Some(f) = validate::check_env_var("token_env", &token_env.value) {
                    self.emit(f, token_env.span);
                }
            } else if !sandbox {
                self.error(
                    name.span,
                    format!("environment `{}` has no `token_env`", name.value),
                    Some("name the environment variable that holds its management token, e.g. `token_env: DT_PROD_ADMIN_TOKEN`".into()),
                );
            }
            self.desired.environments.insert(
                EnvName::new(name.value.clone()),
                Environment {
                    name: EnvName::new(name.value.clone()),
                    endpoint,
                    token_env: spec.token_env.as_ref().map(|t| t.value.clone()),
                },
            );
        }
    }

    fn accounts(&mut self, entries: &[Entry<super::types::AccountSpec>]) {
        for entry in entries {
            let name = &entry.key;
            self.declared_accounts.insert(name.value.clone());
            if let Some(f) = validate::check_entry_name("account", &name.value) {
                self.emit(f, name.span);
            }
            let lock = EnvName::account_lock(&name.value);
            if self.declared_envs.contains(lock.as_str()) {
                self.error(
                    name.span,
                    format!(
                        "account `{}` and environment `{lock}` would share the apply lock `{lock}`",
                        name.value
                    ),
                    Some(format!(
                        "rename the account or the environment: an account's lock is named `{}NAME`, and one lock cannot keep both",
                        crate::model::ACCOUNT_LOCK_PREFIX
                    )),
                );
            }
            let Some(spec) = &entry.spec else { continue };
            if !validate::is_uuid(&spec.uuid.value) {
                self.error(
                    spec.uuid.span,
                    format!("`{}` is not an account UUID", spec.uuid.value),
                    Some("copy the UUID from Account Management (8-4-4-4-12 hex digits)".into()),
                );
            }
            for (field, value) in [
                ("client_id_env", &spec.client_id_env),
                ("client_secret_env", &spec.client_secret_env),
            ] {
                if let Some(f) = validate::check_env_var(field, &value.value) {
                    self.emit(f, value.span);
                }
            }
            let mut url = |v: &Option<Spanned<String>>, default: &str| match v {
                None => default.to_owned(),
                Some(s) => match validate::check_service_url(&s.value) {
                    Ok(u) => u,
                    Err(f) => {
                        self.emit(f, s.span);
                        s.value.clone()
                    }
                },
            };
            let api_base = url(&spec.api_base, DEFAULT_API_BASE);
            let token_url = url(&spec.token_url, DEFAULT_TOKEN_URL);
            if let Some(owner) = &spec.default_owner {
                self.check_owner(owner);
                self.default_owners
                    .insert(name.value.clone(), owner.value.to_ascii_lowercase());
            }
            self.desired.accounts.insert(
                name.value.clone(),
                Account {
                    name: name.value.clone(),
                    uuid: spec.uuid.value.to_ascii_lowercase(),
                    client_id_env: spec.client_id_env.value.clone(),
                    client_secret_env: spec.client_secret_env.value.clone(),
                    api_base,
                    token_url,
                    oauth_scopes: oauth_scopes(spec.oauth_scopes.as_ref()),
                },
            );
        }
    }

    pub(super) fn check_owner(&mut self, owner: &Spanned<String>) {
        if !validate::is_uuid(&owner.value) {
            self.error(
                owner.span,
                format!("`{}` is not a user or service-user UUID", owner.value),
                Some("platform-token owners are given by UUID (Account Management → Identity & access)".into()),
            );
        }
    }

    pub(super) fn positive(&mut self, d: &Spanned<SpecDuration>, field: &str) {
        if d.value.as_secs() <= 0 {
            self.error(d.span, format!("`{field}` must be longer than 0s"), None);
        }
    }

    pub(super) fn render(&mut self, text: &Spanned<String>, vars: &Vars) -> Option<String> {
        match self.templates.render(&text.value, vars) {
            Ok(s) => Some(s),
            Err(e) => {
                self.emit(Finding::from(e), text.span);
                None
            }
        }
    }

    pub(super) fn combinations(&mut self, for_each: Option<&ForEach>, key_span: Span) -> Vec<Vars> {
        if let Some(fe) = for_each {
            let mut ok = true;
            for (name, values) in fe {
                if let Err(msg) = template::check_variable_name(name) {
                    self.error(name.span, msg, None);
                    ok = false;
                }
                if values.is_empty() {
                    self.diags.push(self.source.warning(
                        name.span,
                        format!(
                            "`for_each` variable `{}` has no values, so this entry makes no token",
                            name.value
                        ),
                    ));
                }
            }
            if !ok {
                return Vec::new();
            }
        }
        match template::combinations(for_each) {
            Ok(c) => c,
            Err(msg) => {
                self.error(key_span, msg, None);
                Vec::new()
            }
        }
    }

    pub(super) fn key(&mut self, key: &Spanned<String>, vars: &Vars) -> Option<TokenKey> {
        let rendered = match self.templates.render(&key.value, vars) {
            Ok(s) => s,
            Err(mut e) => {
                if key.value.contains("env") {
                    e.help = Some(format!(
                        "{}; a key is the same in every environment, so `env` is not available in keys",
                        e.help.unwrap_or_default()
                    ));
                }
                self.emit(Finding::from(e), key.span);
                return None;
            }
        };
        match TokenKey::parse(&rendered) {
            Ok(_) if system_token::is_reserved_key(&rendered) => {
                self.error(
                    key.span,
                    format!("token key `{rendered}` is reserved: keys starting with `{}` name tokensmith's own system tokens", system_token::RESERVED_KEY_PREFIX),
                    Some("choose another key".into()),
                );
                None
            }
            Ok(k) => Some(k),
            Err(msg) => {
                self.error(key.span, msg, None);
                None
            }
        }
    }

    pub(super) fn environments_of(
        &mut self,
        list: &Spanned<Vec<Spanned<String>>>,
        vars: &Vars,
    ) -> Vec<EnvName> {
        if list.value.is_empty() {
            self.error(
                list.span,
                "the token is placed in no environment",
                Some("list at least one environment, e.g. `environments: [prod]`".into()),
            );
        }
        let mut out = Vec::new();
        for env in &list.value {
            let Some(name) = self.render(env, vars) else {
                continue;
            };
            if self.known_env(&name, env.span) && !out.iter().any(|e: &EnvName| e.as_str() == name)
            {
                out.push(EnvName::new(name));
            }
        }
        out
    }

    pub(super) fn known_env(&mut self, name: &str, span: Span) -> bool {
        if self.declared_envs.contains(name) {
            return true;
        }
        let near = self
            .declared_envs
            .iter()
            .map(|e| (strsim::jaro_winkler(e, name), e.clone()))
            .filter(|(s, _)| *s > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let help = match near {
            Some((_, e)) => format!("did you mean `{e}`?"),
            None if self.declared_envs.is_empty() => "declare it under `environments:`".into(),
            None => format!(
                "declared environments: {}",
                self.declared_envs
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.error(
            span,
            format!("environment `{name}` is not declared"),
            Some(help),
        );
        false
    }

    pub(super) fn adopt(
        &mut self,
        adopt: Option<&Spanned<String>>,
        kind: TokenKind,
        instances: usize,
    ) -> Option<crate::model::TokenId> {
        let a = adopt?;
        if instances > 1 {
            self.error(
                a.span,
                format!("`adopt` names one token, but this entry makes {instances} tokens"),
                Some("adopt only in an entry without `for_each` and with one environment".into()),
            );
            return None;
        }
        match validate::parse_adopt(&a.value, kind) {
            Ok(id) => Some(id),
            Err(f) => {
                self.emit(f, a.span);
                None
            }
        }
    }

    pub(super) fn display_name(
        &mut self,
        name: Option<&Spanned<String>>,
        key: &TokenKey,
        key_span: Span,
        vars: &Vars,
        kind: TokenKind,
    ) -> Option<String> {
        let (display, span) = match name {
            Some(n) => (self.render(n, vars)?, n.span),
            None => (key.to_string(), key_span),
        };
        if let Some(f) = validate::check_name(&display, key, kind) {
            self.emit(f, span);
        }
        match display.trim() {
            trimmed if trimmed.len() == display.len() => Some(display),
            trimmed => Some(trimmed.to_owned()),
        }
    }

    pub(super) fn push_token(&mut self, token: DesiredToken, site: TokenSite) {
        self.desired.tokens.push(token);
        self.sites.tokens.push(site);
    }

    /// Warns about an entry that delivers its value nowhere (and adopts nothing).
    pub(super) fn check_delivers(
        &mut self,
        key: &Spanned<String>,
        deliver: &[Spanned<Target>],
        adopt: bool,
    ) {
        if deliver.is_empty() && !adopt {
            self.diags.push(
                self.source
                    .warning(
                        key.span,
                        format!("`{}` has no `deliver` targets", key.value),
                    )
                    .help("its value would be created and never stored anywhere"),
            );
        }
    }

    fn tenant_tokens(&mut self, entries: &[Entry<super::types::TenantTokenSpec>]) {
        for entry in entries {
            let Some(spec) = &entry.spec else { continue };
            if !self.known_env(&entry.key.value, entry.key.span) {
                continue;
            }
            if let Some(every) = &spec.rotate_every {
                self.positive(every, "rotate_every");
                if let Some(grace) = spec.grace.as_ref().filter(|g| g.value >= every.value) {
                    self.error(
                        grace.span,
                        format!(
                            "`grace` ({}) must be shorter than `rotate_every` ({})",
                            grace.value, every.value
                        ),
                        Some("the old tenant token stays valid for the grace after each start; a grace as long as the schedule never lets a rotation finish before the next is due".into()),
                    );
                }
            }
            let mut vars = Vars::new();
            vars.insert("env".into(), entry.key.value.clone());
            let (activegates, mut spans) = self.targets(&spec.activegates, &vars);
            let (oneagents, oa_spans) = self.targets(&spec.oneagents, &vars);
            spans.extend(oa_spans);
            if spec.activegates.is_empty() && spec.oneagents.is_empty() {
                let message = format!(
                    "the tenant token of `{}` has no ActiveGate or OneAgent targets",
                    entry.key.value
                );
                let help = "rotating it without delivering it would disconnect every OneAgent and ActiveGate; list them under `activegates` and `oneagents`";
                if spec.rotate_every.is_some() {
                    self.error(entry.key.span, message, Some(help.into()));
                } else {
                    self.diags
                        .push(self.source.warning(entry.key.span, message).help(help));
                }
            }
            self.desired.tenant_tokens.push(DesiredTenantToken {
                environment: EnvName::new(entry.key.value.clone()),
                rotate_every: spec.rotate_every.as_ref().map(|r| r.value),
                grace: spec
                    .grace
                    .as_ref()
                    .map_or(DEFAULT_TENANT_GRACE, |g| g.value),
                on_foreign_rotation: spec.on_foreign_rotation.as_ref().map(|f| f.value),
                activegates,
                oneagents,
            });
            self.sites.tenant_targets.push(spans);
        }
    }
}

fn describe_vars(vars: &Vars) -> String {
    if vars.is_empty() {
        return String::new();
    }
    let mut out = String::from(" (with ");
    for (i, (k, v)) in vars.iter().enumerate() {
        let comma = if i == 0 { "" } else { ", " };
        let _ = write!(out, "{comma}{k}={v}");
    }
    out.push(')');
    out
}

/// The OAuth scopes of an account: each list the spec gives, else its default.
fn oauth_scopes(spec: Option<&crate::spec::types::OAuthScopesSpec>) -> crate::model::OAuthScopes {
    let mut scopes = crate::model::OAuthScopes::default();
    let list = |v: &Vec<Spanned<String>>| v.iter().map(|s| s.value.trim().to_owned()).collect();
    if let Some(spec) = spec {
        if let Some(manage) = spec.manage.as_ref().filter(|v| !v.is_empty()) {
            scopes.manage = list(manage);
        }
        if let Some(create) = spec.create.as_ref().filter(|v| !v.is_empty()) {
            scopes.create = list(create);
        }
    }
    scopes
}

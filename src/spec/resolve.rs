//! From parsed entries to [`Desired`]: defaults merged, presets expanded, `for_each` and templates
//! rendered, one [`DesiredToken`] per token instance and environment, each value checked where it
//! was written.
//!
//! The resolver keeps going after an error so that one run reports every problem; it records where
//! each desired token came from ([`Sites`]) for the cross checks of [`super::validate`]. It owns
//! the meaning of the policy fields (defaults, the `rotate_before` / `rotate_every` choice); the
//! rules about single values live in `validate`.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{
    Account, ActiveGateType, Desired, DesiredTenantToken, DesiredToken, EnvName, Environment,
    ExecTarget, FileTarget, Home, KubernetesSecretTarget, Policy, Preset, Revoke, Rotation, Scope,
    SpecDuration, Target, TokenDetails, TokenKey, TokenKind, UnmanagedPolicy,
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

/// ActiveGate tokens may expire at most this far ahead.
pub const MAX_ACTIVEGATE_EXPIRY: SpecDuration = SpecDuration::from_days(730);

pub const DEFAULT_API_BASE: &str = "https://api.dynatrace.com";
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
    /// Scope findings by (scope, personal access token): "did you mean" is costly to repeat.
    scope_findings: BTreeMap<(String, bool), Option<Finding>>,
    desired: Desired,
    sites: Sites,
}

impl<'a> Resolver<'a> {
    pub fn new(source: &'a SourceFile, root: &'a Node) -> Resolver<'a> {
        Resolver {
            source,
            root,
            templates: Templates::new(),
            diags: Vec::new(),
            declared_envs: BTreeSet::new(),
            declared_accounts: BTreeSet::new(),
            default_owners: BTreeMap::new(),
            scope_findings: BTreeMap::new(),
            desired: Desired {
                environments: BTreeMap::new(),
                accounts: BTreeMap::new(),
                tokens: Vec::new(),
                tenant_tokens: Vec::new(),
                unmanaged: UnmanagedPolicy::default(),
            },
            sites: Sites::default(),
        }
    }

    fn emit(&mut self, finding: Finding, span: Span) {
        let d = finding.at(self.source, span);
        self.diags.push(d);
    }

    fn error(&mut self, span: Span, message: impl Into<String>, help: Option<String>) {
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
        for entry in &parsed.api_tokens {
            if let Some(spec) = &entry.spec {
                self.api_token(entry, spec, &defaults);
            }
        }
        for entry in &parsed.activegate_tokens {
            if let Some(spec) = &entry.spec {
                self.activegate_token(entry, spec, &defaults);
            }
        }
        for entry in &parsed.platform_tokens {
            if let Some(spec) = &entry.spec {
                self.platform_token(entry, spec, &defaults);
            }
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
            self.desired.unmanaged = UnmanagedPolicy {
                report_unused_after: u.report_unused_after.as_ref().map(|d| d.value),
                prune,
            };
        }
        let cross = validate::cross_check(&self.desired, &self.sites, self.source);
        self.diags.extend(cross);
        (self.desired, self.sites, self.diags)
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
                },
            );
        }
    }

    fn check_owner(&mut self, owner: &Spanned<String>) {
        if !validate::is_uuid(&owner.value) {
            self.error(
                owner.span,
                format!("`{}` is not a user or service-user UUID", owner.value),
                Some("platform-token owners are given by UUID (Account Management → Identity & access)".into()),
            );
        }
    }

    fn positive(&mut self, d: &Spanned<SpecDuration>, field: &str) {
        if d.value.as_secs() <= 0 {
            self.error(d.span, format!("`{field}` must be longer than 0s"), None);
        }
    }

    /// Conflicts within one policy level (one token or `defaults`).
    fn check_level(&mut self, p: &PolicySpec) {
        if let (Some(_), Some(never)) = (&p.expires_in, &p.never_expires) {
            if never.value {
                self.error(
                    never.span,
                    "`never_expires` and `expires_in` contradict each other",
                    Some("keep one of them".into()),
                );
            }
        }
        if let (Some(_), Some(every)) = (&p.rotate_before, &p.rotate_every) {
            self.error(
                every.span,
                "set either `rotate_before` or `rotate_every`, not both",
                Some("`rotate_before` rotates relative to expiry, `rotate_every` by age".into()),
            );
        }
        for (d, field) in [
            (&p.expires_in, "expires_in"),
            (&p.rotate_before, "rotate_before"),
            (&p.rotate_every, "rotate_every"),
        ] {
            if let Some(d) = d {
                self.positive(d, field);
            }
        }
        if let Some(Revoke::Disable { delete_after }) = p.revoke.as_ref().map(|r| r.value) {
            if delete_after.as_secs() < 0 {
                self.error(
                    p.revoke.as_ref().map(|r| r.span).unwrap_or_default(),
                    "`delete_after` cannot be negative",
                    None,
                );
            }
        }
    }

    /// Merges a token's policy over the defaults and checks the result.
    fn policy(
        &mut self,
        own: &PolicySpec,
        defaults: &PolicySpec,
        kind: TokenKind,
        key_span: Span,
    ) -> Policy {
        self.check_level(own);
        // Expiry: the token's own setting wins, then the defaults, then 90d.
        let pick_expiry = |p: &PolicySpec| -> Option<(Option<SpecDuration>, Span)> {
            if let Some(n) = p.never_expires.as_ref().filter(|n| n.value) {
                return Some((None, n.span));
            }
            p.expires_in.as_ref().map(|e| (Some(e.value), e.span))
        };
        let (expires_in, expiry_span, expiry_own) = match pick_expiry(own) {
            Some((e, s)) => (e, s, true),
            None => match pick_expiry(defaults) {
                Some((e, s)) => (e, s, false),
                None => (Some(DEFAULT_EXPIRES_IN), key_span, false),
            },
        };
        // Rotation: the level that sets either field decides the mode.
        let pick_rotation = |p: &PolicySpec| -> Option<(Rotation, Span)> {
            if let Some(b) = &p.rotate_before {
                return Some((Rotation::BeforeExpiry(b.value), b.span));
            }
            p.rotate_every
                .as_ref()
                .map(|e| (Rotation::Every(e.value), e.span))
        };
        let (mut rotation, rotation_span, rotation_own) = match pick_rotation(own) {
            Some((r, s)) => (r, s, true),
            None => match pick_rotation(defaults) {
                Some((r, s)) => (r, s, false),
                None => (
                    Rotation::BeforeExpiry(DEFAULT_ROTATE_BEFORE),
                    key_span,
                    false,
                ),
            },
        };
        match (expires_in, rotation) {
            (None, Rotation::BeforeExpiry(_)) => {
                if rotation_own {
                    self.error(
                        rotation_span,
                        "`rotate_before` needs an expiry, but this token never expires",
                        Some("use `rotate_every` to rotate by age, or set `expires_in`".into()),
                    );
                }
                rotation = Rotation::Never;
            }
            (Some(exp), Rotation::BeforeExpiry(before)) if before >= exp => {
                let (span, whose) = if rotation_own || !expiry_own {
                    (rotation_span, "")
                } else {
                    (expiry_span, " (from the defaults)")
                };
                self.error(
                    span,
                    format!("`rotate_before` {before}{whose} is not shorter than `expires_in` {exp}"),
                    Some("the successor must be created before the token expires; make `rotate_before` smaller than `expires_in`".into()),
                );
            }
            (Some(exp), Rotation::Every(every)) if every >= exp => {
                let span = if rotation_own || !expiry_own {
                    rotation_span
                } else {
                    expiry_span
                };
                self.error(
                    span,
                    format!("`rotate_every` {every} is not shorter than `expires_in` {exp}"),
                    Some("the token would expire before its successor is made; make `rotate_every` smaller than `expires_in`".into()),
                );
            }
            _ => {}
        }
        if kind == TokenKind::ActivegateToken {
            match expires_in {
                None => self.error(
                    expiry_span,
                    "ActiveGate tokens must expire within 2 years",
                    Some(format!(
                        "set `expires_in` to at most {MAX_ACTIVEGATE_EXPIRY}"
                    )),
                ),
                Some(e) if e > MAX_ACTIVEGATE_EXPIRY => self.error(
                    expiry_span,
                    format!("ActiveGate token expiry {e} is more than 2 years"),
                    Some(format!("Dynatrace accepts at most {MAX_ACTIVEGATE_EXPIRY}")),
                ),
                _ => {}
            }
        }
        let grace = own
            .grace
            .as_ref()
            .or(defaults.grace.as_ref())
            .map(|g| g.value)
            .unwrap_or(DEFAULT_GRACE);
        let revoke = own
            .revoke
            .as_ref()
            .or(defaults.revoke.as_ref())
            .map(|r| r.value)
            .unwrap_or_default();
        let verify_usage = own
            .verify_usage
            .as_ref()
            .or(defaults.verify_usage.as_ref())
            .is_some_and(|v| v.value);
        Policy {
            expires_in,
            rotation,
            grace,
            revoke,
            verify_usage,
        }
    }

    fn render(&mut self, text: &Spanned<String>, vars: &Vars) -> Option<String> {
        match self.templates.render(&text.value, vars) {
            Ok(s) => Some(s),
            Err(e) => {
                self.emit(
                    Finding {
                        severity: super::diagnostic::Severity::Error,
                        message: e.message,
                        help: e.help,
                    },
                    text.span,
                );
                None
            }
        }
    }

    fn combinations(&mut self, for_each: Option<&ForEach>, key_span: Span) -> Vec<Vars> {
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

    fn key(&mut self, key: &Spanned<String>, vars: &Vars) -> Option<TokenKey> {
        let rendered = match self.templates.render(&key.value, vars) {
            Ok(s) => s,
            Err(mut e) => {
                if key.value.contains("env") {
                    e.help = Some(format!(
                        "{}; a key is the same in every environment, so `env` is not available in keys",
                        e.help.unwrap_or_default()
                    ));
                }
                self.emit(
                    Finding {
                        severity: super::diagnostic::Severity::Error,
                        message: e.message,
                        help: e.help,
                    },
                    key.span,
                );
                return None;
            }
        };
        match TokenKey::parse(&rendered) {
            Ok(k) => Some(k),
            Err(msg) => {
                self.error(key.span, msg, None);
                None
            }
        }
    }

    fn environments_of(
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

    fn known_env(&mut self, name: &str, span: Span) -> bool {
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

    /// Renders every string of a target; on failure reports at the failing string.
    fn target(&mut self, target: &Spanned<Target>, vars: &Vars) -> Option<Target> {
        let mut failed: Option<(String, super::template::TemplateError)> = None;
        let templates = &self.templates;
        let mut r = |s: &String, extra: bool| -> String {
            if failed.is_some() {
                return s.clone();
            }
            let result = if extra {
                let mut v = vars.clone();
                v.insert("secret".into(), "{{ secret }}".into());
                templates.render(s, &v)
            } else {
                templates.render(s, vars)
            };
            result.unwrap_or_else(|e| {
                failed = Some((s.clone(), e));
                s.clone()
            })
        };
        let rendered = match &target.value {
            Target::KubernetesSecret(k) => Target::KubernetesSecret(KubernetesSecretTarget {
                context: k.context.as_ref().map(|c| r(c, false)),
                namespace: r(&k.namespace, false),
                name: r(&k.name, false),
                key: r(&k.key, false),
                touch_dynakube: k.touch_dynakube.as_ref().map(|c| r(c, false)),
                restart: k.restart.iter().map(|c| r(c, false)).collect(),
            }),
            Target::File(f) => Target::File(FileTarget {
                path: r(&f.path, false),
                format: f.format,
                key: f.key.as_ref().map(|c| r(c, false)),
                section: f.section.as_ref().map(|c| r(c, false)),
                mode: f.mode.clone(),
            }),
            Target::Exec(e) => Target::Exec(ExecTarget {
                command: e.command.iter().map(|c| r(c, true)).collect(),
                secret_env: e.secret_env.as_ref().map(|c| r(c, false)),
                secret_stdin: e.secret_stdin,
                secret_in_argv: e.secret_in_argv,
                read_command: e
                    .read_command
                    .as_ref()
                    .map(|c| c.iter().map(|a| r(a, false)).collect()),
                verify_command: e
                    .verify_command
                    .as_ref()
                    .map(|c| c.iter().map(|a| r(a, false)).collect()),
                timeout: e.timeout,
            }),
        };
        if let Some((text, e)) = failed {
            let span = self
                .root
                .find_scalar(target.span, &text)
                .unwrap_or(target.span);
            self.emit(
                Finding {
                    severity: super::diagnostic::Severity::Error,
                    message: e.message,
                    help: e.help,
                },
                span,
            );
            return None;
        }
        for f in validate::check_target(&rendered) {
            self.emit(f, target.span);
        }
        Some(rendered)
    }

    fn targets(&mut self, list: &[Spanned<Target>], vars: &Vars) -> (Vec<Target>, Vec<Span>) {
        let mut targets = Vec::new();
        let mut spans = Vec::new();
        for t in list {
            if let Some(r) = self.target(t, vars) {
                targets.push(r);
                spans.push(t.span);
            }
        }
        (targets, spans)
    }

    fn adopt(
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

    fn display_name(
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
        Some(display.trim().to_owned())
    }

    fn api_scopes(
        &mut self,
        spec: &super::types::ApiTokenSpec,
        pat: bool,
        key_span: Span,
    ) -> BTreeSet<Scope> {
        let preset: Option<Preset> = spec.preset.as_ref().map(|p| p.value);
        let mut scopes: BTreeSet<Scope> = preset.map(|p| p.scopes().collect()).unwrap_or_default();
        for s in &spec.scopes {
            let scope = Scope::new(s.value.clone());
            let finding = self
                .scope_findings
                .entry((s.value.clone(), pat))
                .or_insert_with(|| validate::check_scope(&scope, pat))
                .clone();
            if let Some(f) = finding {
                self.emit(f, s.span);
            }
            if !scopes.insert(scope) && preset.is_none() {
                self.diags.push(
                    self.source
                        .warning(s.span, format!("scope `{}` is listed twice", s.value)),
                );
            }
        }
        let mut excluded = BTreeSet::new();
        for s in &spec.exclude_scopes {
            let scope = Scope::new(s.value.clone());
            if !scope.is_creatable() && !scope.is_legacy_only() {
                if let Some(f) = validate::check_scope(&scope, false) {
                    self.emit(f, s.span);
                    continue;
                }
            }
            if let Some(f) = validate::check_exclusion(&scope, preset, scopes.contains(&scope)) {
                self.emit(f, s.span);
            }
            excluded.insert(scope);
        }
        scopes.retain(|s| !excluded.contains(s));
        if pat {
            if let Some(p) = &spec.preset {
                let declared: BTreeSet<&str> =
                    spec.scopes.iter().map(|s| s.value.as_str()).collect();
                let bad: Vec<String> = validate::pat_forbidden(&scopes)
                    .into_iter()
                    .filter(|s| !declared.contains(s.as_str()))
                    .map(|s| format!("`{s}`"))
                    .collect();
                if !bad.is_empty() {
                    self.error(
                        p.span,
                        format!(
                            "personal access tokens cannot have the preset's scopes {}",
                            bad.join(", ")
                        ),
                        Some("use a regular access token for this consumer".into()),
                    );
                }
            }
        }
        if scopes.is_empty() {
            self.error(
                key_span,
                "the token has no scopes",
                Some("add `scopes: [...]` or a `preset`".into()),
            );
        }
        scopes
    }

    fn push_token(&mut self, token: DesiredToken, site: TokenSite) {
        self.desired.tokens.push(token);
        self.sites.tokens.push(site);
    }

    /// Warns about an entry that delivers its value nowhere (and adopts nothing).
    fn check_delivers(&mut self, key: &Spanned<String>, deliver: &[Spanned<Target>], adopt: bool) {
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

    fn api_token(
        &mut self,
        entry: &Entry<super::types::ApiTokenSpec>,
        spec: &super::types::ApiTokenSpec,
        defaults: &PolicySpec,
    ) {
        let key_span = entry.key.span;
        let pat = spec.personal_access_token.as_ref().is_some_and(|p| p.value);
        self.check_delivers(&entry.key, &spec.deliver, spec.adopt.is_some());
        let policy = self.policy(&spec.policy(), defaults, TokenKind::ApiToken, key_span);
        let scopes = self.api_scopes(spec, pat, key_span);
        let combos = self.combinations(spec.for_each.as_ref(), key_span);
        let instances: usize = combos.len() * spec.environments.value.len();
        let adopt = self.adopt(spec.adopt.as_ref(), TokenKind::ApiToken, instances);
        for vars in combos {
            let Some(key) = self.key(&entry.key, &vars) else {
                continue;
            };
            for env in self.environments_of(&spec.environments, &vars) {
                let mut vars = vars.clone();
                vars.insert("env".into(), env.to_string());
                let Some(display) = self.display_name(
                    spec.name.as_ref(),
                    &key,
                    key_span,
                    &vars,
                    TokenKind::ApiToken,
                ) else {
                    continue;
                };
                let (deliver, target_spans) = self.targets(&spec.deliver, &vars);
                let token = DesiredToken {
                    kind: TokenKind::ApiToken,
                    key: key.clone(),
                    home: Home::Environment(env),
                    display_name: display,
                    scopes: scopes.clone(),
                    details: TokenDetails::Api {
                        personal_access_token: pat,
                        preset: spec.preset.as_ref().map(|p| p.value),
                    },
                    policy: policy.clone(),
                    adopt: adopt.clone(),
                    deliver,
                };
                self.push_token(
                    token,
                    TokenSite {
                        key: key_span,
                        targets: target_spans,
                        vars: describe_vars(&vars),
                    },
                );
            }
        }
    }

    fn activegate_token(
        &mut self,
        entry: &Entry<super::types::ActiveGateTokenSpec>,
        spec: &super::types::ActiveGateTokenSpec,
        defaults: &PolicySpec,
    ) {
        let key_span = entry.key.span;
        self.check_delivers(&entry.key, &spec.deliver, spec.adopt.is_some());
        let policy = self.policy(
            &spec.policy(),
            defaults,
            TokenKind::ActivegateToken,
            key_span,
        );
        let combos = self.combinations(spec.for_each.as_ref(), key_span);
        let instances = combos.len() * spec.environments.value.len();
        let adopt = self.adopt(spec.adopt.as_ref(), TokenKind::ActivegateToken, instances);
        let activegate_type = spec
            .activegate_type
            .as_ref()
            .map(|t| t.value)
            .unwrap_or(ActiveGateType::Environment);
        let seed = spec.seed.as_ref().is_some_and(|s| s.value);
        for vars in combos {
            let Some(key) = self.key(&entry.key, &vars) else {
                continue;
            };
            for env in self.environments_of(&spec.environments, &vars) {
                let mut vars = vars.clone();
                vars.insert("env".into(), env.to_string());
                let Some(display) = self.display_name(
                    spec.name.as_ref(),
                    &key,
                    key_span,
                    &vars,
                    TokenKind::ActivegateToken,
                ) else {
                    continue;
                };
                let (deliver, target_spans) = self.targets(&spec.deliver, &vars);
                let token = DesiredToken {
                    kind: TokenKind::ActivegateToken,
                    key: key.clone(),
                    home: Home::Environment(env),
                    display_name: display,
                    scopes: BTreeSet::new(),
                    details: TokenDetails::Activegate {
                        activegate_type,
                        seed,
                    },
                    policy: policy.clone(),
                    adopt: adopt.clone(),
                    deliver,
                };
                self.push_token(
                    token,
                    TokenSite {
                        key: key_span,
                        targets: target_spans,
                        vars: describe_vars(&vars),
                    },
                );
            }
        }
    }

    fn platform_token(
        &mut self,
        entry: &Entry<super::types::PlatformTokenSpec>,
        spec: &super::types::PlatformTokenSpec,
        defaults: &PolicySpec,
    ) {
        let key_span = entry.key.span;
        self.check_delivers(&entry.key, &spec.deliver, spec.adopt.is_some());
        let policy = self.policy(&spec.policy(), defaults, TokenKind::PlatformToken, key_span);
        let mut scopes = BTreeSet::new();
        for s in &spec.scopes {
            if let Some(f) = validate::check_platform_scope(&s.value) {
                self.emit(f, s.span);
            }
            scopes.insert(Scope::new(s.value.clone()));
        }
        if spec.scopes.is_empty() {
            self.error(
                key_span,
                "the platform token has no scopes",
                Some("add `scopes: [storage:logs:read, …]`".into()),
            );
        }
        let account_name = spec.account.value.clone();
        let account = self.desired.accounts.get(&account_name).cloned();
        if !self.declared_accounts.contains(&account_name) {
            let help = if self.declared_accounts.is_empty() {
                "declare it under `accounts:`".to_owned()
            } else {
                format!(
                    "declared accounts: {}",
                    self.declared_accounts
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            self.error(
                spec.account.span,
                format!("account `{account_name}` is not declared"),
                Some(help),
            );
        }
        if let Some(owner) = &spec.owner {
            self.check_owner(owner);
        }
        let owner = spec
            .owner
            .as_ref()
            .map(|o| o.value.to_ascii_lowercase())
            .or_else(|| self.default_owner(&account_name));
        if owner.is_none() && self.declared_accounts.contains(&account_name) {
            self.error(
                key_span,
                "the platform token has no owner",
                Some(format!("set `owner: <user or service-user UUID>` here or `default_owner` on account `{account_name}`; the OAuth client itself cannot own tokens")),
            );
        }
        let combos = self.combinations(spec.for_each.as_ref(), key_span);
        let adopt = self.adopt(spec.adopt.as_ref(), TokenKind::PlatformToken, combos.len());
        for vars in combos {
            let Some(key) = self.key(&entry.key, &vars) else {
                continue;
            };
            let Some(resource) = self.render(&spec.resource, &vars) else {
                continue;
            };
            let mut vars = vars.clone();
            let urn = if resource == "account" {
                account
                    .as_ref()
                    .map(|a| format!("urn:dtaccount:{}", a.uuid))
            } else if self.known_env(&resource, spec.resource.span) {
                vars.insert("env".into(), resource.clone());
                self.desired
                    .environments
                    .get(&EnvName::new(resource.clone()))
                    .map(|e| {
                        format!(
                            "urn:dtenvironment:{}",
                            validate::environment_id(&e.endpoint, &resource)
                        )
                    })
            } else {
                continue;
            };
            let Some(display) = self.display_name(
                spec.name.as_ref(),
                &key,
                key_span,
                &vars,
                TokenKind::PlatformToken,
            ) else {
                continue;
            };
            let (deliver, target_spans) = self.targets(&spec.deliver, &vars);
            let token = DesiredToken {
                kind: TokenKind::PlatformToken,
                key,
                home: Home::Account(account_name.clone()),
                display_name: display,
                scopes: scopes.clone(),
                details: TokenDetails::Platform {
                    resources: urn.into_iter().collect(),
                    owner: owner.clone(),
                },
                policy: policy.clone(),
                adopt: adopt.clone(),
                deliver,
            };
            self.push_token(
                token,
                TokenSite {
                    key: key_span,
                    targets: target_spans,
                    vars: describe_vars(&vars),
                },
            );
        }
    }

    fn default_owner(&self, account: &str) -> Option<String> {
        self.default_owners.get(account).cloned()
    }

    fn tenant_tokens(&mut self, entries: &[Entry<super::types::TenantTokenSpec>]) {
        for entry in entries {
            let Some(spec) = &entry.spec else { continue };
            if !self.known_env(&entry.key.value, entry.key.span) {
                continue;
            }
            if let Some(every) = &spec.rotate_every {
                self.positive(every, "rotate_every");
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
    format!(
        " (with {})",
        vars.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

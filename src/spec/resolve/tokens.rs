//! API, ActiveGate and platform token entries: scopes and presets, `for_each` and environment
//! expansion into one [`DesiredToken`] per instance, ids to adopt, owners of platform tokens.

use std::collections::BTreeSet;

use crate::model::{
    ActiveGateType, DesiredToken, EnvName, Home, Policy, Preset, Scope, ScopeSet, Target,
    TokenDetails, TokenKind,
};

use super::{describe_vars, Resolver};
use crate::spec::de::Spanned;
use crate::spec::diagnostic::Span;
use crate::spec::load::Entry;
use crate::spec::types::{
    ActiveGateTokenSpec, ApiTokenSpec, ForEach, PlatformTokenSpec, PolicySpec,
};
use crate::spec::validate::{self, TokenSite};

/// The fields of an environment-homed entry its instances are rendered from.
struct InstanceFields<'s> {
    name: Option<&'s Spanned<String>>,
    for_each: Option<&'s ForEach>,
    environments: &'s Spanned<Vec<Spanned<String>>>,
    adopt: Option<&'s Spanned<String>>,
    deliver: &'s [Spanned<Target>],
}

/// The [`InstanceFields`] of an API or ActiveGate token spec: the same fields by name in two
/// spec types.
macro_rules! instance_fields {
    ($spec:expr) => {
        InstanceFields {
            name: $spec.name.as_ref(),
            for_each: $spec.for_each.as_ref(),
            environments: &$spec.environments,
            adopt: $spec.adopt.as_ref(),
            deliver: &$spec.deliver,
        }
    };
}

/// What every instance of an entry has alike.
struct InstanceShared {
    kind: TokenKind,
    scopes: ScopeSet,
    details: TokenDetails,
    policy: Policy,
}

impl Resolver<'_> {
    /// The scopes of an API token: the preset's, plus `scopes`, minus `exclude_scopes`, each
    /// checked against the catalogue (and the personal-access-token subset).
    fn api_scopes(&mut self, spec: &ApiTokenSpec, pat: bool, key_span: Span) -> BTreeSet<Scope> {
        let preset: Option<Preset> = spec.preset.as_ref().map(|p| p.value);
        let mut scopes: BTreeSet<Scope> = preset.map(|p| p.scopes().collect()).unwrap_or_default();
        for s in &spec.scopes {
            let scope = Scope::new(&s.value);
            let known = &mut self.scope_findings[usize::from(pat)];
            let finding = match known.get(s.value.as_str()) {
                Some(finding) => finding.clone(),
                None => known
                    .entry(s.value.clone())
                    .or_insert(validate::check_scope(&scope, pat))
                    .clone(),
            };
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
            let scope = Scope::new(&s.value);
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

    /// One desired API token per `for_each` combination and environment.
    pub(super) fn api_token(
        &mut self,
        entry: &Entry<ApiTokenSpec>,
        spec: &ApiTokenSpec,
        defaults: &PolicySpec,
    ) {
        let key_span = entry.key.span;
        let pat = spec.personal_access_token.as_ref().is_some_and(|p| p.value);
        self.check_delivers(&entry.key, &spec.deliver, spec.adopt.is_some());
        let policy = self.policy(&spec.policy(), defaults, TokenKind::ApiToken, key_span);
        let scopes = ScopeSet::from(self.api_scopes(spec, pat, key_span));
        let preset = spec.preset.as_ref().map(|p| p.value);
        let shared = InstanceShared {
            kind: TokenKind::ApiToken,
            scopes,
            details: TokenDetails::Api {
                personal_access_token: pat,
                preset,
            },
            policy,
        };
        let fields = instance_fields!(spec);
        // The operator reads each Secret key with its own scope check.
        self.environment_instances(entry, fields, shared, |r, deliver, spans| {
            for (t, span) in deliver.iter().zip(spans) {
                if let Some(f) = validate::targets::check_operator_key(preset, t) {
                    let span = f
                        .field
                        .and_then(|field| r.root.find_field(*span, field))
                        .unwrap_or(*span);
                    r.emit(f, span);
                }
            }
        });
    }

    /// One desired ActiveGate token per `for_each` combination and environment.
    pub(super) fn activegate_token(
        &mut self,
        entry: &Entry<ActiveGateTokenSpec>,
        spec: &ActiveGateTokenSpec,
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
        let shared = InstanceShared {
            kind: TokenKind::ActivegateToken,
            scopes: ScopeSet::new(),
            details: TokenDetails::Activegate {
                activegate_type: spec
                    .activegate_type
                    .as_ref()
                    .map(|t| t.value)
                    .unwrap_or(ActiveGateType::Environment),
                seed: spec.seed.as_ref().is_some_and(|s| s.value),
            },
            policy,
        };
        let fields = instance_fields!(spec);
        self.environment_instances(entry, fields, shared, |_, _, _| {});
    }

    /// The instances of an environment-homed entry (API and ActiveGate tokens): one per
    /// `for_each` combination and environment, each with its key, display name and targets
    /// rendered for its variables (`env` among them), `check_targets` run on its targets.
    fn environment_instances<T>(
        &mut self,
        entry: &Entry<T>,
        fields: InstanceFields<'_>,
        shared: InstanceShared,
        mut check_targets: impl FnMut(&mut Self, &[Target], &[Span]),
    ) {
        let key_span = entry.key.span;
        let combos = self.combinations(fields.for_each, key_span);
        let instances = combos.len() * fields.environments.value.len();
        let adopt = self.adopt(fields.adopt, shared.kind, instances);
        for vars in combos {
            let Some(key) = self.key(&entry.key, &vars) else {
                continue;
            };
            for env in self.environments_of(fields.environments, &vars) {
                let mut vars = vars.clone();
                vars.insert("env".into(), env.to_string());
                let Some(display) =
                    self.display_name(fields.name, &key, key_span, &vars, shared.kind)
                else {
                    continue;
                };
                let (deliver, target_spans) = self.access_token_targets(fields.deliver, &vars);
                check_targets(self, &deliver, &target_spans);
                let token = DesiredToken {
                    kind: shared.kind,
                    key: key.clone(),
                    home: Home::Environment(env),
                    display_name: display,
                    scopes: shared.scopes.clone(),
                    details: shared.details.clone(),
                    policy: shared.policy.clone(),
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

    /// One desired platform token per `for_each` combination, homed in its account; the
    /// resource (an environment or the account) becomes a `urn:dt…` resource string.
    pub(super) fn platform_token(
        &mut self,
        entry: &Entry<PlatformTokenSpec>,
        spec: &PlatformTokenSpec,
        defaults: &PolicySpec,
    ) {
        let key_span = entry.key.span;
        self.check_delivers(&entry.key, &spec.deliver, spec.adopt.is_some());
        let policy = self.policy(&spec.policy(), defaults, TokenKind::PlatformToken, key_span);
        let mut scopes: BTreeSet<Scope> = spec
            .preset
            .as_ref()
            .map(|p| p.value.scopes().collect())
            .unwrap_or_default();
        for s in &spec.scopes {
            if let Some(f) = validate::check_platform_scope(&s.value) {
                self.emit(f, s.span);
            }
            scopes.insert(Scope::new(s.value.clone()));
        }
        if scopes.is_empty() {
            self.error(
                key_span,
                "the platform token has no scopes",
                Some("add `scopes: [storage:logs:read, …]` or `preset: dynatrace-operator`".into()),
            );
        }
        let scopes = ScopeSet::from(scopes);
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
            let (deliver, target_spans) = self.access_token_targets(&spec.deliver, &vars);
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
}

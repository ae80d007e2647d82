//! Small builders for planner tests: desired tokens, live tokens, targets and holders in a few
//! lines, with fixed clocks. Used by unit tests and the integration tests (`tests/it`: planner,
//! applier, gitops). Not part of the library's API: it is compiled only for the crate's own unit
//! tests and with the `testing` feature, which the integration tests enable through the crate's
//! dev-dependency on itself.

use std::collections::BTreeMap;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{plan, Plan, PlanError, PlanOptions};
use crate::model::{
    Account, ActiveGateType, Desired, DesiredTenantToken, DesiredToken, Endpoint, EnvName,
    Environment, ExecTarget, FileFormat, FileTarget, Holder, Home, LiveAccount, LiveEnvironment,
    LiveSnapshot, LiveToken, Policy, Preset, Revoke, Rotation, Scope, ScopeSet, SpecDuration,
    Target, TargetSnapshot, TokenDetails, TokenId, TokenKey, TokenKind, UnmanagedPolicy,
};

/// A fixed instant: 2026-01-01T00:00:00Z.
pub fn t0() -> OffsetDateTime {
    datetime!(2026-01-01 00:00:00 UTC)
}

/// `n` days as a duration.
pub fn days(n: i64) -> Duration {
    Duration::days(n)
}

pub fn env(name: &str) -> EnvName {
    EnvName::new(name)
}

pub fn key(s: &str) -> TokenKey {
    TokenKey::parse(s).expect("test keys are valid")
}

pub fn dur(s: &str) -> SpecDuration {
    s.parse().expect("test durations are valid")
}

/// A live token under construction.
pub struct LiveTokenBuilder(LiveToken);

fn live_token(kind: TokenKind, id: &str, name: &str) -> LiveTokenBuilder {
    LiveTokenBuilder(LiveToken {
        kind,
        id: TokenId::new(id),
        name: name.to_owned(),
        enabled: true,
        owner: Some("admin@example.com".into()),
        personal_access_token: false,
        created: Some(t0()),
        modified: None,
        expires: None,
        last_used: None,
        last_used_from: None,
        scopes: ScopeSet::new(),
        activegate_type: (kind == TokenKind::ActivegateToken)
            .then_some(ActiveGateType::Environment),
        seed: false,
        resources: Vec::new(),
    })
}

/// A live API token, enabled, created at [`t0`], never expiring, no scopes.
pub fn api(id: &str, name: &str) -> LiveTokenBuilder {
    live_token(TokenKind::ApiToken, id, name)
}

/// A live ActiveGate token of type ENVIRONMENT.
pub fn ag(id: &str, name: &str) -> LiveTokenBuilder {
    live_token(TokenKind::ActivegateToken, id, name)
}

/// A live platform token.
pub fn platform(id: &str, name: &str) -> LiveTokenBuilder {
    live_token(TokenKind::PlatformToken, id, name)
}

impl LiveTokenBuilder {
    pub fn created(mut self, t: OffsetDateTime) -> Self {
        self.0.created = Some(t);
        self
    }
    pub fn expires(mut self, t: OffsetDateTime) -> Self {
        self.0.expires = Some(t);
        self
    }
    /// Created at `created`, expiring `lifetime_days` later.
    pub fn lifetime(mut self, created: OffsetDateTime, lifetime_days: i64) -> Self {
        self.0.created = Some(created);
        self.0.expires = Some(created + days(lifetime_days));
        self
    }
    pub fn last_used(mut self, t: OffsetDateTime) -> Self {
        self.0.last_used = Some(t);
        self
    }
    /// Last used at `t` from the address `from`.
    pub fn last_used_from(mut self, t: OffsetDateTime, from: &str) -> Self {
        self.0.last_used = Some(t);
        self.0.last_used_from = Some(from.to_owned());
        self
    }
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.0.scopes = scopes.iter().map(|s| Scope::new(*s)).collect();
        self
    }
    pub fn disabled(mut self) -> Self {
        self.0.enabled = false;
        self
    }
    pub fn personal(mut self) -> Self {
        self.0.personal_access_token = true;
        self
    }
    pub fn owner(mut self, owner: &str) -> Self {
        self.0.owner = Some(owner.to_owned());
        self
    }
    pub fn build(self) -> LiveToken {
        self.0
    }
}

/// A desired token under construction.
pub struct DesiredTokenBuilder(DesiredToken);

fn desired(kind: TokenKind, k: &str, home: Home, details: TokenDetails) -> DesiredTokenBuilder {
    DesiredTokenBuilder(DesiredToken {
        kind,
        key: key(k),
        home,
        display_name: k.replace('-', " "),
        scopes: if kind == TokenKind::ActivegateToken {
            ScopeSet::new()
        } else {
            [Scope::new("metrics.ingest")].into_iter().collect()
        },
        details,
        policy: Policy {
            expires_in: Some(SpecDuration::from_days(30)),
            rotation: Rotation::BeforeExpiry(SpecDuration::from_days(7)),
            grace: SpecDuration::from_hours(24),
            revoke: Revoke::default(),
            verify_usage: false,
        },
        adopt: None,
        deliver: Vec::new(),
    })
}

/// A desired API token in `env_name`: scopes `[metrics.ingest]`, 30d lifetime, rotated 7d before
/// expiry, 24h grace, revoked by disabling and deleted 7d later.
pub fn want_api(k: &str, env_name: &str) -> DesiredTokenBuilder {
    desired(
        TokenKind::ApiToken,
        k,
        Home::Environment(env(env_name)),
        TokenDetails::Api {
            personal_access_token: false,
            preset: None,
        },
    )
}

/// A desired ActiveGate token (ENVIRONMENT, not a seed token).
pub fn want_ag(k: &str, env_name: &str) -> DesiredTokenBuilder {
    desired(
        TokenKind::ActivegateToken,
        k,
        Home::Environment(env(env_name)),
        TokenDetails::Activegate {
            activegate_type: ActiveGateType::Environment,
            seed: false,
        },
    )
}

/// A desired platform token in `account`, owned by `admin@example.com`.
pub fn want_platform(k: &str, account: &str) -> DesiredTokenBuilder {
    desired(
        TokenKind::PlatformToken,
        k,
        Home::Account(account.to_owned()),
        TokenDetails::Platform {
            resources: Vec::new(),
            owner: Some("admin@example.com".into()),
        },
    )
}

impl DesiredTokenBuilder {
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.0.scopes = scopes.iter().map(|s| Scope::new(*s)).collect();
        self
    }
    pub fn display(mut self, name: &str) -> Self {
        self.0.display_name = name.to_owned();
        self
    }
    pub fn expires_in(mut self, d: Option<&str>) -> Self {
        self.0.policy.expires_in = d.map(dur);
        self
    }
    pub fn rotation(mut self, r: Rotation) -> Self {
        self.0.policy.rotation = r;
        self
    }
    pub fn grace(mut self, d: &str) -> Self {
        self.0.policy.grace = dur(d);
        self
    }
    pub fn revoke(mut self, r: Revoke) -> Self {
        self.0.policy.revoke = r;
        self
    }
    pub fn verify_usage(mut self) -> Self {
        self.0.policy.verify_usage = true;
        self
    }
    pub fn adopt(mut self, id: &str) -> Self {
        self.0.adopt = Some(TokenId::new(id));
        self
    }
    pub fn preset(mut self, preset: Preset) -> Self {
        if let TokenDetails::Api { preset: p, .. } = &mut self.0.details {
            *p = Some(preset);
        }
        self
    }
    pub fn deliver(mut self, target: Target) -> Self {
        self.0.deliver.push(target);
        self
    }
    pub fn build(self) -> DesiredToken {
        self.0
    }
}

/// A whole-file target at `path`.
pub fn file(path: &str) -> Target {
    Target::File(FileTarget {
        path: path.to_owned(),
        format: FileFormat::Raw,
        key: None,
        section: None,
        mode: "0600".into(),
        restart: None,
    })
}

/// A write-only exec target.
pub fn exec(command: &[&str]) -> Target {
    Target::Exec(ExecTarget {
        command: command.iter().map(|s| s.to_string()).collect(),
        secret_env: Some("TOKEN".into()),
        secret_stdin: false,
        secret_in_argv: false,
        read_command: None,
        verify_command: None,
        timeout: None,
        env: Vec::new(),
        for_each: None,
    })
}

/// The holder "holds token `id`", as a record without an expiry (the form written before
/// tokensmith recorded expiries) reads.
pub fn holds(id: &str) -> Holder {
    Holder::Token {
        id: TokenId::new(id),
        expires: None,
    }
}

/// The holder "holds token `id`, which expires at `expires`".
pub fn holds_until(id: &str, expires: OffsetDateTime) -> Holder {
    Holder::Token {
        id: TokenId::new(id),
        expires: Some(expires),
    }
}

/// A live environment with these tokens (API and ActiveGate tokens sorted by kind).
pub fn env_live(tokens: Vec<LiveToken>) -> LiveEnvironment {
    let mut e = LiveEnvironment::default();
    for t in tokens {
        match t.kind {
            TokenKind::ActivegateToken => e.activegate_tokens.push(t),
            _ => e.api_tokens.push(t),
        }
    }
    e
}

/// Desired state, live state and targets of one test, with an environment `prod`.
#[derive(Debug, Clone)]
pub struct World {
    pub desired: Desired,
    pub live: LiveSnapshot,
    pub targets: TargetSnapshot,
    pub now: OffsetDateTime,
    pub options: PlanOptions,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    /// One environment `prod`, nothing in it, the clock at [`t0`].
    pub fn new() -> World {
        let w = World {
            desired: Desired {
                environments: BTreeMap::new(),
                accounts: BTreeMap::new(),
                tokens: Vec::new(),
                tenant_tokens: Vec::new(),
                unmanaged: UnmanagedPolicy::default(),
            },
            live: LiveSnapshot::default(),
            targets: TargetSnapshot::default(),
            now: t0(),
            options: PlanOptions {
                spec_hash: "spec-hash".into(),
                ..PlanOptions::default()
            },
        };
        w.env("prod")
    }

    /// Add an environment to the spec and the live snapshot.
    pub fn env(mut self, name: &str) -> World {
        self.desired.environments.insert(
            env(name),
            Environment {
                name: env(name),
                endpoint: Endpoint::Sandbox {
                    name: name.to_owned(),
                },
                token_env: None,
            },
        );
        self.live.environments.entry(env(name)).or_default();
        self
    }

    /// Add an account to the spec and the live snapshot.
    pub fn account(mut self, name: &str) -> World {
        self.desired.accounts.insert(
            name.to_owned(),
            Account {
                name: name.to_owned(),
                uuid: "00000000-0000-0000-0000-000000000001".into(),
                client_id_env: "DT_CLIENT_ID".into(),
                client_secret_env: "DT_CLIENT_SECRET".into(),
                api_base: "https://api.dynatrace.com".into(),
                token_url: "https://sso.dynatrace.com/sso/oauth2/token".into(),
                oauth_scopes: Default::default(),
            },
        );
        self.live.accounts.entry(name.to_owned()).or_default();
        self
    }

    pub fn at(mut self, now: OffsetDateTime) -> World {
        self.now = now;
        self
    }

    pub fn want(mut self, token: DesiredTokenBuilder) -> World {
        self.desired.tokens.push(token.build());
        self
    }

    pub fn tenant(mut self, tenant: DesiredTenantToken) -> World {
        self.desired.tenant_tokens.push(tenant);
        self
    }

    pub fn unmanaged(mut self, report_unused_after: Option<&str>, prune: bool) -> World {
        self.desired.unmanaged = UnmanagedPolicy {
            report_unused_after: report_unused_after.map(dur),
            prune,
            ..UnmanagedPolicy::default()
        };
        self
    }

    /// Add a live token to an environment (API and ActiveGate tokens).
    pub fn live(mut self, env_name: &str, token: LiveTokenBuilder) -> World {
        let e = self.live.environments.entry(env(env_name)).or_default();
        let t = token.build();
        match t.kind {
            TokenKind::ActivegateToken => e.activegate_tokens.push(t),
            _ => e.api_tokens.push(t),
        }
        self
    }

    /// Add a live platform token to an account.
    pub fn live_platform(mut self, account: &str, token: LiveTokenBuilder) -> World {
        let a: &mut LiveAccount = self.live.accounts.entry(account.to_owned()).or_default();
        a.platform_tokens.push(token.build());
        self
    }

    pub fn caller(mut self, env_name: &str, id: &str) -> World {
        self.live
            .environments
            .entry(env(env_name))
            .or_default()
            .caller = Some(TokenId::new(id));
        self
    }

    pub fn tenant_live(mut self, env_name: &str, fingerprint: &str) -> World {
        self.live
            .environments
            .entry(env(env_name))
            .or_default()
            .tenant_token = Some(fingerprint.to_owned());
        self
    }

    pub fn holder(mut self, target: &Target, holder: Holder) -> World {
        self.targets.holders.insert(target.address(), holder);
        self
    }

    pub fn fail_on_expiry_within(mut self, d: &str) -> World {
        self.options.fail_on_expiry_within = Some(dur(d));
        self
    }

    pub fn plan(&self) -> Result<Plan, PlanError> {
        plan(
            &self.desired,
            &self.live,
            &self.targets,
            self.now,
            &self.options,
        )
    }
}

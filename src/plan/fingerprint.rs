//! Fingerprints of a plan's inputs, so that `apply PLAN` can tell whether the world changed
//! since the plan was made.
//!
//! Each fingerprint is a SHA-256 (lower-case hex) over a canonical encoding of its input: every
//! string length-prefixed, timestamps as Unix nanoseconds, tokens sorted by id, maps in key
//! order. Live metadata is hashed without the volatile fields (`last_used` of every token and
//! the environments' `server_time`): a token being used does not make a plan stale. The encoders
//! destructure each type completely, so a field added to the model fails to compile here until
//! someone decides whether it belongs in the fingerprint. Apply leases (`lock::lease`) are not
//! hashed: they come and go with every apply's lock.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::types::Inputs;
use crate::model::{
    Holder, LiveAccount, LiveEnvironment, LiveSnapshot, LiveToken, SystemToken, TargetSnapshot,
};

use crate::model::encode::hex;
pub use crate::model::encode::sha256_hex;

/// A hasher with typed, unambiguous writes.
struct Canon(Sha256);

impl Canon {
    fn str(&mut self, s: &str) {
        self.0.update((s.len() as u64).to_le_bytes());
        self.0.update(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.0.update([1]);
                self.str(s);
            }
            None => self.0.update([0]),
        }
    }
    fn bool(&mut self, b: bool) {
        self.0.update([u8::from(b)]);
    }
    fn time(&mut self, t: Option<OffsetDateTime>) {
        match t {
            Some(t) => {
                self.0.update([1]);
                self.0.update(t.unix_timestamp_nanos().to_le_bytes());
            }
            None => self.0.update([0]),
        }
    }
    fn count(&mut self, n: usize) {
        self.0.update((n as u64).to_le_bytes());
    }
    fn finish(self) -> String {
        hex(&self.0.finalize())
    }

    fn tokens(&mut self, tokens: &[LiveToken]) {
        // Apply leases are the lock itself: the applier's own lease exists while it checks
        // the plan it was not there for.
        let mut sorted: Vec<&LiveToken> = tokens
            .iter()
            .filter(|t| SystemToken::of_name(&t.name) != Some(SystemToken::ApplyLease))
            .collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        self.count(sorted.len());
        for t in sorted {
            let LiveToken {
                kind,
                id,
                name,
                enabled,
                owner,
                personal_access_token,
                created,
                modified,
                expires,
                last_used: _,
                last_used_from: _,
                scopes,
                activegate_type,
                seed,
                resources,
            } = t;
            self.str(kind.as_str());
            self.str(id.as_str());
            self.str(name);
            self.bool(*enabled);
            self.opt_str(owner.as_deref());
            self.bool(*personal_access_token);
            self.time(*created);
            self.time(*modified);
            self.time(*expires);
            self.count(scopes.len());
            for s in scopes {
                self.str(s.as_str());
            }
            self.opt_str(activegate_type.map(|t| match t {
                crate::model::ActiveGateType::Environment => "ENVIRONMENT",
                crate::model::ActiveGateType::Cluster => "CLUSTER",
            }));
            self.bool(*seed);
            self.count(resources.len());
            for r in resources {
                self.str(r);
            }
        }
    }
}

/// Fingerprint of the live metadata without `last_used` and `server_time`.
pub fn live_fingerprint(live: &LiveSnapshot) -> String {
    let mut h = Canon(Sha256::new());
    let LiveSnapshot {
        environments,
        accounts,
    } = live;
    h.count(environments.len());
    for (name, env) in environments {
        let LiveEnvironment {
            caller,
            api_tokens,
            activegate_tokens,
            tenant_token,
            tenant_rotation_active,
            server_time: _,
        } = env;
        h.str(name.as_str());
        h.opt_str(caller.as_ref().map(|c| c.as_str()));
        h.tokens(api_tokens);
        h.tokens(activegate_tokens);
        h.opt_str(tenant_token.as_deref());
        // Hashed only when read, so fingerprints of environments without it stay as they were.
        if let Some(active) = tenant_rotation_active {
            h.str(if *active {
                "rotation:ACTIVE"
            } else {
                "rotation:INACTIVE"
            });
        }
    }
    h.count(accounts.len());
    for (name, account) in accounts {
        let LiveAccount {
            platform_tokens,
            server_time: _,
        } = account;
        h.str(name);
        h.tokens(platform_tokens);
    }
    h.finish()
}

/// Fingerprint of what every target holds.
pub fn targets_fingerprint(targets: &TargetSnapshot) -> String {
    let mut h = Canon(Sha256::new());
    let TargetSnapshot { holders } = targets;
    h.count(holders.len());
    for (address, holder) in holders {
        h.str(&address.0);
        match holder {
            Holder::Token { id, expires } => {
                h.str("token");
                h.str(id.as_str());
                // The recorded expiry decides `expired_and_purged`; records without one hash as
                // they did before expiries were recorded.
                if expires.is_some() {
                    h.str("expires");
                    h.time(*expires);
                }
            }
            Holder::TenantToken { fingerprint, since } => {
                h.str("tenant_token");
                h.str(fingerprint);
                h.time(*since);
            }
            Holder::RestartOwed { fingerprint, since } => {
                h.str("restart_owed");
                h.str(fingerprint);
                h.time(*since);
            }
            Holder::Unknown => h.str("unknown"),
            Holder::Absent => h.str("absent"),
            Holder::WriteOnly => h.str("write_only"),
            Holder::Unreadable { reason: _ } => h.str("unreadable"),
        }
    }
    h.finish()
}

impl Inputs {
    /// The fingerprint of these inputs.
    pub fn compute(
        spec_hash: &str,
        live: &LiveSnapshot,
        targets: &TargetSnapshot,
        spec_commit: Option<String>,
        dirty: bool,
    ) -> Inputs {
        Inputs {
            spec: spec_hash.to_owned(),
            live: live_fingerprint(live),
            targets: targets_fingerprint(targets),
            spec_commit,
            dirty,
            replace: Vec::new(),
        }
    }

    /// What differs between the inputs a saved plan was computed from (`self`) and the current
    /// ones, in words for the "plan is stale" message; empty when the plan is still current.
    /// The git commit and dirty flag are informative and not compared.
    pub fn differences(&self, current: &Inputs) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.spec != current.spec {
            out.push("the spec changed");
        }
        if self.live != current.live {
            out.push("live tokens changed in Dynatrace (created, deleted, renamed, re-scoped, enabled or disabled)");
        }
        if self.targets != current.targets {
            out.push("a delivery target now holds a different token");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::{api, env_live, t0};

    #[test]
    fn last_used_and_server_time_do_not_change_the_live_fingerprint() {
        let mut live = LiveSnapshot::default();
        live.environments.insert(
            crate::plan::testing::env("prod"),
            env_live(vec![api("dt0c01.A", "a [ts:a#1]").created(t0()).build()]),
        );
        let before = live_fingerprint(&live);
        let env = live
            .environments
            .get_mut(&crate::plan::testing::env("prod"))
            .unwrap();
        env.api_tokens[0].last_used = Some(t0());
        env.server_time = Some(t0());
        assert_eq!(live_fingerprint(&live), before);
        let env = live
            .environments
            .get_mut(&crate::plan::testing::env("prod"))
            .unwrap();
        env.api_tokens[0].enabled = false;
        assert_ne!(live_fingerprint(&live), before);
    }

    #[test]
    fn differences_name_what_changed() {
        let live = LiveSnapshot::default();
        let targets = TargetSnapshot::default();
        let saved = Inputs::compute("s1", &live, &targets, Some("abc".into()), false);
        assert!(saved
            .differences(&Inputs::compute("s1", &live, &targets, None, true))
            .is_empty());
        let mut changed = live.clone();
        changed
            .environments
            .insert(crate::plan::testing::env("prod"), env_live(vec![]));
        assert_eq!(
            saved.differences(&Inputs::compute("s2", &changed, &targets, None, false)),
            [
                "the spec changed",
                "live tokens changed in Dynatrace (created, deleted, renamed, re-scoped, enabled or disabled)"
            ]
        );
    }

    #[test]
    fn token_order_does_not_change_the_live_fingerprint() {
        let a = api("dt0c01.A", "a").build();
        let b = api("dt0c01.B", "b").build();
        let mut one = LiveSnapshot::default();
        one.environments.insert(
            crate::plan::testing::env("prod"),
            env_live(vec![a.clone(), b.clone()]),
        );
        let mut two = LiveSnapshot::default();
        two.environments
            .insert(crate::plan::testing::env("prod"), env_live(vec![b, a]));
        assert_eq!(live_fingerprint(&one), live_fingerprint(&two));
    }
}

//! Fingerprints of a plan's inputs, so that `apply PLAN` can tell whether the world changed
//! since the plan was made.
//!
//! Each fingerprint is the SHA-256 (lower-case hex) of the canonical JSON of its input. Live
//! metadata is hashed without the volatile fields (`last_used` of every token, and the
//! environments' `server_time`): a token being used does not make a plan stale. The JSON is
//! canonical because every map in the snapshots is a `BTreeMap` and every list is sorted here.

use sha2::{Digest, Sha256};

use super::types::Inputs;
use crate::model::{LiveSnapshot, LiveToken, TargetSnapshot};

/// SHA-256 of some bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fingerprint of the live metadata without `last_used` and `server_time`.
pub fn live_fingerprint(live: &LiveSnapshot) -> String {
    let mut stable = live.clone();
    let strip = |tokens: &mut Vec<LiveToken>| {
        for t in tokens.iter_mut() {
            t.last_used = None;
        }
        tokens.sort_by(|a, b| a.id.cmp(&b.id));
    };
    for env in stable.environments.values_mut() {
        env.server_time = None;
        strip(&mut env.api_tokens);
        strip(&mut env.activegate_tokens);
    }
    for account in stable.accounts.values_mut() {
        strip(&mut account.platform_tokens);
    }
    let json = serde_json::to_vec(&stable).expect("live snapshots serialize");
    sha256_hex(&json)
}

/// Fingerprint of what every target holds.
pub fn targets_fingerprint(targets: &TargetSnapshot) -> String {
    let json = serde_json::to_vec(targets).expect("target snapshots serialize");
    sha256_hex(&json)
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

//! A long random run: fifty applies, each killed after a random number of steps, with the clock
//! jumping ahead by random amounts (so rotations, grace periods and retention come due) and
//! random faults (ambiguous creates that commit, failed creates, failing targets). DESIGN.md
//! invariants 1–3 are checked after every apply, and at the end, with the faults gone, the
//! next applies converge to an empty plan (invariant 4). Seeded, so a failure reproduces.

use crate::support::apply_harness as apply_support;

use apply_support::{Faults, Harness};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::Duration;
use tokensmith::model::{DesiredTenantToken, EnvName};
use tokensmith::plan::testing::{exec, file, want_ag, want_api, World};

fn world(dir: &std::path::Path) -> tokensmith::model::Desired {
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    World::new()
        .want(
            want_api("operator", "prod")
                .deliver(file(&p("op-a")))
                .deliver(file(&p("op-b"))),
        )
        .want(
            want_api("ingest", "prod")
                .grace("0s")
                .deliver(file(&p("in-a"))),
        )
        .want(
            want_api("scripted", "prod")
                .revoke(tokensmith::model::Revoke::Delete)
                .deliver(file(&p("sc-a")))
                .deliver(exec(&["sh", "-c", "true"])),
        )
        .want(want_ag("gateway", "prod").deliver(file(&p("ag"))))
        .tenant(DesiredTenantToken {
            environment: EnvName::new("prod"),
            rotate_every: Some("20d".parse().unwrap()),
            grace: tokensmith::model::SpecDuration::ZERO,
            on_foreign_rotation: None,
            activegates: vec![file(&p("ag-tenant"))],
            oneagents: vec![file(&p("oa-1"))],
        })
        .desired
}

#[tokio::test]
async fn fifty_killed_applies_with_faults_never_break_the_invariants() {
    for seed in [1_u64, 2, 3] {
        let mut rng = StdRng::seed_from_u64(seed);
        let h = Harness::new(world);
        let addresses: Vec<_> = h.all_targets().iter().map(|t| t.address()).collect();
        for _ in 0..50 {
            if rng.random_bool(0.5) {
                h.fake
                    .advance(Duration::hours(rng.random_range(1..=24 * 9)));
            }
            h.fake.set_faults(Faults {
                ambiguous_commits: u32::from(rng.random_bool(0.2)),
                fail_creates: u32::from(rng.random_bool(0.1)),
                ambiguous_drops: u32::from(rng.random_bool(0.1)),
            });
            h.deliver.heal();
            if rng.random_bool(0.2) {
                let i = rng.random_range(0..addresses.len());
                h.deliver.fail(addresses[i].clone());
            }
            let mut plan = h.plan().await;
            let k = rng.random_range(0..=plan.steps.len());
            plan.steps.truncate(k);
            h.apply(&plan).await;
            h.check_invariants().await;
        }
        h.fake.set_faults(Faults::default());
        h.deliver.heal();
        h.converge(4).await;
        h.check_invariants().await;
        // The run did exercise rotations and retirements, not just idle plans.
        let (creates, deleted, disabled) = {
            let s = h.fake.lock();
            let disabled = s.tokens.values().filter(|t| !t.enabled).count();
            (s.creates, s.deleted.len(), disabled)
        };
        eprintln!("seed {seed}: {creates} creates, {deleted} deleted, {disabled} disabled");
        assert!(creates >= 10, "seed {seed}: only {creates} creates");
        assert!(
            deleted + disabled >= 3,
            "seed {seed}: {deleted} deleted, {disabled} disabled"
        );
    }
}

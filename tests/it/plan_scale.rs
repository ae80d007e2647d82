//! How long the pure planner takes for a large estate: 100 environments × 1,000 tokens, each
//! delivered to one target, a tenth of them due for rotation. Ignored by default (it measures,
//! it does not check behaviour); run with `cargo nextest run --run-ignored only -E 'binary(plan_scale)'`.

use std::time::Instant;

use tokensmith::plan::testing::*;

#[test]
#[ignore = "measurement; run explicitly"]
fn plan_for_100_environments_of_1000_tokens() {
    let mut w = World::new();
    w.desired.environments.clear();
    w.live.environments.clear();
    for e in 0..100 {
        let name = format!("env-{e:03}");
        w = w.env(&name);
        for t in 0..1_000 {
            let key = format!("svc-{t:04}");
            let id = format!("dt0c01.E{e:03}T{t:04}");
            let target = file(&format!("/etc/{name}/{key}"));
            let age = if t % 10 == 0 { 25 } else { 5 };
            w = w
                .want(want_api(&key, &name).deliver(target.clone()))
                .live(
                    &name,
                    api(&id, &format!("svc {t:04} [ts:{key}#1]"))
                        .lifetime(t0() - days(age), 30)
                        .scopes(&["metrics.ingest"]),
                )
                .holder(&target, holds(&id));
        }
    }
    let started = Instant::now();
    let fingerprints = (
        tokensmith::plan::live_fingerprint(&w.live),
        tokensmith::plan::targets_fingerprint(&w.targets),
    );
    let fingerprinted = started.elapsed();
    assert_eq!(fingerprints.0.len(), 64);
    let started = Instant::now();
    let plan = w.plan().unwrap();
    let planned = started.elapsed();
    let started = Instant::now();
    let json = serde_json::to_vec(&plan).unwrap();
    let serialized = started.elapsed();
    eprintln!(
        "100 environments × 1,000 tokens: plan {planned:?} (of which fingerprints {fingerprinted:?}), {} steps, JSON {} bytes in {serialized:?}",
        plan.steps.len(),
        json.len()
    );
    assert_eq!(plan.summary.rotate, 10_000);
}

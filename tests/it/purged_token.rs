//! A classic API token nobody rotated in time, end to end: the real binary against a seeded
//! sandbox whose clock the test moves. Dynatrace (and the sandbox) delete an expired classic
//! token 7 days after its expiry; the targets recorded that expiry when the token was delivered,
//! so `plan` and `drift` call the gone token `expired_and_purged`, not `deleted_outside_git`, and
//! `apply` replaces it.

use crate::support::binary_world::{secrets_in, World};
use time::Duration;

/// Rotation 7 days before a 30-day expiry, which only happens if someone runs `apply`: here
/// nobody does for over five weeks. Three kinds of readable record: a sidecar (raw file), a
/// comment line (env file) and an exec target's own store of `TOKENSMITH_RECORD`.
const UNATTENDED: &str = r#"
api_tokens:
  ci:
    name: CI
    environments: [demo]
    scopes: [metrics.ingest]
    expires_in: 30d
    rotate_before: 7d
    deliver:
      - file: { path: out/ci }
      - file: { path: out/ci.env, format: env, key: DT_API_TOKEN }
      - exec:
          command: [sh, -c, 'printf %s "$T" > out/exec-value && printf %s "$TOKENSMITH_RECORD" > records/exec']
          secret_env: T
          read_command: [cat, records/exec]
"#;

/// The reasons of the plan's steps (`plan --format json`).
fn plan_reasons(w: &World) -> Vec<String> {
    let r = w.run(&["plan", "--format", "json"]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let plan: serde_json::Value = serde_json::from_str(&r.text).expect("plan json");
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap().to_owned())
        .collect()
}

/// The reasons of drift's items (`drift --format json`), which exits 2 on drift.
fn drift_reasons(w: &World) -> Vec<String> {
    let r = w.run(&["drift", "--format", "json"]);
    assert_eq!(r.code, Some(2), "{}", r.text);
    let report: serde_json::Value = serde_json::from_str(&r.text).expect("drift json");
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reason"].as_str().unwrap().to_owned())
        .collect()
}

fn held(w: &World, rel: &str) -> String {
    let s = secrets_in(&std::fs::read_to_string(w.path(rel)).unwrap());
    assert_eq!(s.len(), 1, "{rel}");
    crate::support::id_of(&s[0])
}

#[test]
fn an_expired_classic_token_purged_after_7_days_is_reported_as_such_and_recreated() {
    let w = World::new(UNATTENDED);
    // The exec target writes into `out/`, which the file targets create only when they run
    // first: deliveries of one token run concurrently, in no set order.
    std::fs::create_dir_all(w.path("out")).unwrap();
    std::fs::create_dir_all(w.path("records")).unwrap();
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    w.check_invariants("first apply");
    w.assert_plan_empty("first apply");
    let first = held(&w, "out/ci");

    // Every target records the token with its expiry (the seed's clock starts 2026-06-01), and
    // no secret.
    let record = format!("{first} until 2026-07-01T00:00:00Z");
    let sidecar = std::fs::read_to_string(w.path("out/ci.tokensmith")).unwrap();
    assert!(sidecar.contains(&record), "{sidecar}");
    let env = std::fs::read_to_string(w.path("out/ci.env")).unwrap();
    assert!(
        env.contains(&format!("# tokensmith: holds {record}")),
        "{env}"
    );
    let exec = std::fs::read_to_string(w.path("records/exec")).unwrap();
    assert_eq!(exec, record);
    for text in [&sidecar, &exec] {
        assert!(secrets_in(text).is_empty(), "{text}");
    }

    // A second apply leaves the records alone.
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_eq!(held(&w, "out/ci"), first);

    // One second before the purge the expired token is still listed: plain `expired`.
    w.advance(Duration::days(37) - Duration::seconds(1));
    assert_eq!(plan_reasons(&w)[0], "expired");
    assert!(w.live().iter().any(|t| t.id == first && t.expired));

    // At expiry + 7 days Dynatrace deleted it.
    w.advance(Duration::seconds(1));
    let reasons = plan_reasons(&w);
    assert!(
        !reasons.is_empty() && reasons.iter().all(|r| r == "expired_and_purged"),
        "{reasons:?}"
    );
    assert!(w.live().iter().all(|t| t.id != first), "not purged");
    assert_eq!(drift_reasons(&w), ["expired_and_purged"]);
    let human = w.run(&["plan"]);
    assert!(
        human
            .text
            .contains("expired and Dynatrace deleted it 7 days later"),
        "{}",
        human.text
    );
    assert!(
        !human.text.contains("deleted_outside_git"),
        "{}",
        human.text
    );
    let human = w.run(&["drift"]);
    assert!(human.text.contains("expired_and_purged"), "{}", human.text);

    // Apply recreates and delivers it everywhere; nothing is left to do.
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    let second = held(&w, "out/ci");
    assert_ne!(second, first);
    assert_eq!(held(&w, "out/ci.env"), second);
    assert_eq!(held(&w, "out/exec-value"), second);
    let exec = std::fs::read_to_string(w.path("records/exec")).unwrap();
    assert_eq!(exec, format!("{second} until 2026-08-07T00:00:00Z"));
    w.check_invariants("after the replacement");
    w.assert_plan_empty("after the replacement");
}

//! The answers of issue 13 that act, end to end against a seeded sandbox through the real
//! binary: `--replace` (rotate now), generations retired from their own successor's switch
//! across clock jumps, adoption whose first plan tells the whole story, and prune.

use crate::support::binary_world as world;

use time::Duration;
use world::{secrets_in, World};

const TWO_TOKENS: &str = r#"
api_tokens:
  ci:
    name: CI
    environments: [demo]
    scopes: [metrics.ingest]
    expires_in: 30d
    rotate_before: 7d
    grace: 24h
    revoke: { disable: { delete_after: 2d } }
    deliver:
      - file: { path: out/ci }
      - file: { path: out/ci-copy }
  logs:
    name: Logs
    environments: [demo]
    scopes: [logs.ingest]
    expires_in: 30d
    rotate_before: 7d
    deliver:
      - file: { path: out/logs }
"#;

fn held_id(w: &World, rel: &str) -> String {
    let s = secrets_in(&std::fs::read_to_string(w.path(rel)).unwrap());
    assert_eq!(s.len(), 1, "{rel}");
    world::id_of(&s[0])
}

#[test]
fn apply_replace_rotates_the_named_token_now_and_the_next_plan_is_empty() {
    let w = World::new(TWO_TOKENS);
    assert_eq!(w.apply().code, Some(0));
    w.assert_plan_empty("after the first apply");
    let (ci, logs) = (held_id(&w, "out/ci"), held_id(&w, "out/logs"));

    // Nothing is due; --replace asks for the rotation anyway, and only for `ci`.
    let p = w.run(&["plan", "--detailed-exitcode", "--replace", "ci@demo"]);
    assert_eq!(p.code, Some(2), "{}", p.text);
    assert!(p.text.contains("replace_requested"), "{}", p.text);
    assert!(
        !p.text.contains("api_token logs in demo"),
        "only ci is rotated:\n{}",
        p.text
    );

    let unknown = w.run(&["plan", "--replace", "cd"]);
    assert_eq!(unknown.code, Some(1), "{}", unknown.text);
    assert!(unknown.text.contains("--replace cd"), "{}", unknown.text);

    let r = w.run(&["apply", "--auto-approve", "--replace", "ci"]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let successor = held_id(&w, "out/ci");
    assert_ne!(successor, ci, "ci was not rotated");
    assert_eq!(
        held_id(&w, "out/ci-copy"),
        successor,
        "every target gets it"
    );
    assert_eq!(held_id(&w, "out/logs"), logs, "logs was not asked for");
    let find = |id: &str| w.live().into_iter().find(|t| t.id == id);
    assert!(
        find(&ci).unwrap().enabled,
        "the predecessor keeps its grace"
    );
    w.check_invariants("after --replace");
    w.assert_plan_empty("right after apply --replace");

    // The normal path: past grace the predecessor is revoked, and nothing else happens.
    w.advance(Duration::hours(25));
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert!(
        !find(&ci).unwrap().enabled,
        "predecessor revoked after grace"
    );
    w.assert_plan_empty("after the predecessor's grace");
}

const ROTATING: &str = r#"
api_tokens:
  ci:
    name: CI
    environments: [demo]
    scopes: [metrics.ingest]
    expires_in: 30d
    rotate_before: 7d
    grace: 24h
    revoke: { disable: { delete_after: 2d } }
    deliver:
      - file: { path: out/ci }
"#;

#[test]
fn superseded_generations_count_grace_and_retention_from_their_own_successor_across_clock_jumps() {
    let w = World::new(ROTATING);
    assert_eq!(w.apply().code, Some(0));
    // Long gaps between applies: every apply finds the current generation expired (or due) and
    // creates the next one. Each older generation's grace and retention count from its own
    // successor, so it is deleted once they pass, whatever later rotations did.
    for (i, gap) in [31, 31, 24, 31, 40, 31, 31].into_iter().enumerate() {
        w.advance(Duration::days(gap));
        let r = w.apply();
        assert_eq!(r.code, Some(0), "jump {i}: {}", r.text);
        w.check_invariants(&format!("jump {i}"));
        let ci: Vec<_> = w
            .live()
            .into_iter()
            .filter(|t| t.marker.as_ref().is_some_and(|m| m.key.0 == "ci"))
            .collect();
        assert!(
            ci.len() <= 2,
            "jump {i}: generations pile up: {:?}",
            ci.iter().map(|t| &t.name).collect::<Vec<_>>()
        );
        w.assert_plan_empty(&format!("after jump {i}"));
    }
}

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

    // A request that names no token is refused before anything is locked or read.
    let calls = w.sandbox.request_log().len();
    for args in [
        &["plan", "--replace", "cd"][..],
        &["apply", "--auto-approve", "--replace", "cd"],
    ] {
        let unknown = w.run(args);
        assert_eq!(unknown.code, Some(1), "{}", unknown.text);
        assert!(unknown.text.contains("--replace cd"), "{}", unknown.text);
        assert!(!unknown.text.contains("lock acquired"), "{}", unknown.text);
    }
    assert_eq!(w.sandbox.request_log().len(), calls, "nothing was read");

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
            .filter(|t| t.marker.as_ref().is_some_and(|m| m.key.as_str() == "ci"))
            .collect();
        assert!(
            ci.len() <= 2,
            "jump {i}: generations pile up: {:?}",
            ci.iter().map(|t| &t.name).collect::<Vec<_>>()
        );
        w.assert_plan_empty(&format!("after jump {i}"));
    }
}

/// An unmanaged token as the user made it by hand: more scopes than the preset, never expires,
/// and its value is nowhere tokensmith can read.
fn legacy_token() -> String {
    "      - { name: legacy ingest, token: \"".to_owned()
        + &world::tok('L')
        + "\", owner: ops@example.com, scopes: [metrics.ingest, entities.read], created: now-100d }"
}

fn adopting_spec(id: &str) -> String {
    format!(
        r#"
api_tokens:
  ingest:
    name: Ingest
    environments: [demo]
    adopt: {id}
    scopes: [metrics.ingest]
    expires_in: 30d
    rotate_before: 7d
    grace: 24h
    deliver:
      - file: {{ path: out/ingest }}
"#
    )
}

/// (id, name, enabled) of every live token.
fn live_state(w: &World) -> std::collections::BTreeSet<(String, String, bool)> {
    w.live()
        .into_iter()
        .map(|t| (t.id, t.name, t.enabled))
        .collect()
}

#[test]
fn adoption_plan_shows_every_change_the_apply_makes_and_the_next_plan_is_empty() {
    let legacy = world::id_of(&world::tok('L'));
    let w = World::with_tokens(&adopting_spec(&legacy), &legacy_token());

    let p = w.run(&["plan", "--format", "json"]);
    assert_eq!(p.code, Some(0), "{}", p.text);
    let plan: serde_json::Value = serde_json::from_str(&p.text).unwrap();
    let steps = plan["steps"].as_array().unwrap();
    let verbs: Vec<&str> = steps
        .iter()
        .map(|s| s["action"]["type"].as_str().unwrap())
        .collect();
    // The rename, and the rotation its expiry (never) and its unreadable value imply, with
    // the delivery of the successor: all in the plan the reviewer sees.
    assert_eq!(verbs, ["adopt", "create", "deliver"], "{}", p.text);
    assert_eq!(steps[1]["reason"], "expiry_changed", "{}", p.text);
    assert_eq!(steps[1]["action"]["replaces"], legacy.as_str());
    let pending = plan["pending"].as_array().unwrap();
    assert_eq!(
        pending.len(),
        1,
        "the adopted token's revoke waits for grace"
    );
    assert_eq!(pending[0]["token"], legacy.as_str());
    let narrowing: Vec<&serde_json::Value> = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == "scope_narrowing")
        .collect();
    assert_eq!(narrowing.len(), 1, "{}", p.text);
    let message = narrowing[0]["message"].as_str().unwrap();
    assert!(message.contains("entities.read"), "{message}");
    assert!(message.contains("file:out/ingest"), "{message}");

    let before = live_state(&w);
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    let after = live_state(&w);
    // Every token the apply touched is one the plan named: the adopted one renamed, and one
    // created.
    let changed: Vec<_> = after.difference(&before).collect();
    assert_eq!(changed.len(), 2, "{changed:?}");
    let renamed = changed
        .iter()
        .find(|(id, ..)| id == &legacy)
        .expect("adopted");
    assert_eq!(
        renamed.1,
        steps[0]["action"]["name"]["to"].as_str().unwrap()
    );
    let created = changed.iter().find(|(id, ..)| id != &legacy).unwrap();
    assert_eq!(created.1, steps[1]["action"]["name"].as_str().unwrap());
    assert_eq!(held_id(&w, "out/ingest"), created.0);
    w.check_invariants("after adoption");
    w.assert_plan_empty("right after the adoption");

    // The adopted token retires the normal way.
    w.advance(Duration::hours(25));
    assert_eq!(w.apply().code, Some(0));
    let adopted = w.live().into_iter().find(|t| t.id == legacy).unwrap();
    assert!(!adopted.enabled, "the adopted token is revoked after grace");
    w.assert_plan_empty("after the adopted token's grace");
}

#[test]
fn adoption_of_a_deliverable_token_that_fits_the_policy_only_renames_and_narrows() {
    let legacy = world::id_of(&world::tok('L'));
    // No expiry in the policy, and no target: the value cannot be lost, nothing to rotate.
    let spec = adopting_spec(&legacy)
        .replace(
            "    expires_in: 30d\n    rotate_before: 7d\n",
            "    never_expires: true\n",
        )
        .replace("    deliver:\n      - file: { path: out/ingest }\n", "");
    let w = World::with_tokens(&spec, &legacy_token());
    let p = w.run(&["plan", "--format", "json"]);
    assert_eq!(p.code, Some(0), "{}", p.text);
    let plan: serde_json::Value = serde_json::from_str(&p.text).unwrap();
    let steps = plan["steps"].as_array().unwrap();
    let verbs: Vec<&str> = steps
        .iter()
        .map(|s| s["action"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(verbs, ["adopt", "update"], "{}", p.text);
    assert!(
        steps[1]["note"].as_str().unwrap().contains("entities.read"),
        "{}",
        p.text
    );
    assert_eq!(w.apply().code, Some(0));
    w.assert_plan_empty("after a rename-only adoption");
}

#[test]
fn a_wrong_adopt_id_is_an_error_and_activegate_adoption_a_validate_error() {
    let w = World::with_tokens(&adopting_spec("dt0c01.NOSUCHTOKEN"), &legacy_token());
    let p = w.run(&["plan"]);
    assert_eq!(p.code, Some(1), "{}", p.text);
    assert!(
        p.text
            .contains("`adopt: dt0c01.NOSUCHTOKEN` of `ingest` in demo: no live token has this id"),
        "{}",
        p.text
    );
    let before = live_state(&w);
    assert_eq!(w.apply().code, Some(1));
    assert_eq!(live_state(&w), before, "nothing is created for a wrong id");

    w.write_spec(
        r#"
activegate_tokens:
  ag:
    name: AG
    environments: [demo]
    type: ENVIRONMENT
    adopt: dt0g02.ABCDEF
    deliver:
      - file: { path: out/ag }
"#,
    );
    let v = w.run(&["validate"]);
    assert_eq!(v.code, Some(1), "{}", v.text);
    assert!(
        v.text.contains("ActiveGate tokens cannot be adopted"),
        "{}",
        v.text
    );
}

const PRUNE: &str = r#"
unmanaged:
  report_unused_after: 90d
  prune: true
  delete_after: 14d
  select:
    owners: [ops@example.com]
    names: ["old *"]
"#;

fn messy_tokens() -> String {
    [
        ("old ingest", 'O', "ops@example.com", "created: now-400d, last_used: now-200d"),
        ("old but used", 'U', "ops@example.com", "created: now-400d, last_used: now-3d"),
        ("old of someone else", 'S', "dev@example.com", "created: now-400d"),
        ("kept name", 'K', "ops@example.com", "created: now-400d"),
    ]
    .iter()
    .map(|(name, c, owner, when)| {
        format!(
            "      - {{ name: {name}, token: \"{}\", owner: {owner}, scopes: [metrics.ingest], {when} }}\n",
            world::tok(*c)
        )
    })
    .collect()
}

#[test]
fn prune_disables_selected_unused_tokens_first_and_deletes_them_after_retention() {
    let w = World::with_tokens(PRUNE, &messy_tokens());
    let id = |c| world::id_of(&world::tok(c));
    let p = w.run(&["plan", "--format", "json"]);
    assert_eq!(p.code, Some(0), "{}", p.text);
    let plan: serde_json::Value = serde_json::from_str(&p.text).unwrap();
    let steps = plan["steps"].as_array().unwrap();
    // Only the token matching every selector and unused for 90 days; never the management
    // token (`admin`, also unused and owned by nobody selected).
    assert_eq!(steps.len(), 1, "{}", p.text);
    assert_eq!(steps[0]["action"]["type"], "disable");
    assert_eq!(steps[0]["action"]["token"], id('O').as_str());
    assert_eq!(steps[0]["reason"], "prune_unused");
    let note = steps[0]["note"].as_str().unwrap();
    assert!(note.contains("last used 2025-11-13"), "{note}");

    assert_eq!(w.apply().code, Some(0));
    let find = |c| w.live().into_iter().find(|t| t.id == id(c));
    let pruned = find('O').expect("disabled, not deleted");
    assert!(!pruned.enabled);
    assert!(pruned.name.ends_with("(pruned)"), "{}", pruned.name);
    for c in ['U', 'S', 'K', 'A'] {
        assert!(find(c).unwrap().enabled, "{c} is not selected or in use");
    }
    let p = w.run(&["plan", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&p.text).unwrap();
    assert!(plan["steps"].as_array().unwrap().is_empty(), "{}", p.text);
    let pending = plan["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{}", p.text);
    assert_eq!(pending[0]["not_before"], "2026-06-15T00:00:00Z");

    // A class the inventory does not know is a spec error, naming the place.
    let bad = World::new(&PRUNE.replace("names: [\"old *\"]", "classes: [never-used, unsued]"));
    let v = bad.run(&["validate"]);
    assert_eq!(v.code, Some(1), "{}", v.text);
    assert!(
        v.text.contains("`unsued` is not an inventory class"),
        "{}",
        v.text
    );

    w.advance(Duration::days(15));
    let r = w.apply();
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert!(find('O').is_none(), "deleted after retention");
    assert!(find('U').is_some() && find('S').is_some() && find('K').is_some());
    w.assert_plan_empty("after prune");
}

#[test]
fn leak_rotates_a_managed_token_and_revokes_the_leaked_one_in_one_run() {
    let w = World::new(TWO_TOKENS);
    assert_eq!(w.apply().code, Some(0));
    let leaked = std::fs::read_to_string(w.path("out/ci")).unwrap();
    let leaked_id = held_id(&w, "out/ci");

    let r = w.run_with_stdin(&["leak", "--auto-approve"], &leaked);
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert!(
        r.text.contains(&leaked_id),
        "it names what leaked:\n{}",
        r.text
    );
    assert!(r.text.contains("no longer valid"), "{}", r.text);
    let successor = held_id(&w, "out/ci");
    assert_ne!(successor, leaked_id);
    assert_eq!(
        held_id(&w, "out/ci-copy"),
        successor,
        "the successor is in every target"
    );
    let old = w.live().into_iter().find(|t| t.id == leaked_id).unwrap();
    assert!(!old.enabled, "the leaked token is revoked in the same run");
    w.check_invariants("after leak");
    w.assert_plan_empty("after leak");

    // Leaking it again: nothing valid to find.
    let again = w.run_with_stdin(&["leak", "--auto-approve"], &leaked);
    assert_eq!(again.code, Some(0), "{}", again.text);
    assert!(again.text.contains("nothing to do"), "{}", again.text);
}

#[test]
fn leak_disables_an_unmanaged_token_and_names_its_owner() {
    let w = World::with_tokens(TWO_TOKENS, &legacy_token());
    let secret_file = w.path("leaked.txt");
    std::fs::write(&secret_file, world::tok('L')).unwrap();
    let r = w.run(&[
        "leak",
        "--auto-approve",
        "--secret-file",
        secret_file.to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert!(r.text.contains("ops@example.com"), "{}", r.text);
    let legacy = world::id_of(&world::tok('L'));
    assert!(
        !w.live()
            .into_iter()
            .find(|t| t.id == legacy)
            .unwrap()
            .enabled
    );

    // The management token cannot be disabled by the run that authenticates with it.
    let r = w.run_with_stdin(&["leak", "--auto-approve"], &world::tok('A'));
    assert_eq!(r.code, Some(1), "{}", r.text);
    assert!(r.text.contains("management token"), "{}", r.text);
    let admin = world::id_of(&world::tok('A'));
    assert!(
        w.live()
            .into_iter()
            .find(|t| t.id == admin)
            .unwrap()
            .enabled
    );

    // Without --auto-approve and without a terminal, nothing is changed.
    let w = World::with_tokens(TWO_TOKENS, &legacy_token());
    let r = w.run_with_stdin(&["leak"], &world::tok('L'));
    assert_eq!(r.code, Some(1), "{}", r.text);
    assert!(
        w.live()
            .into_iter()
            .find(|t| t.id == legacy)
            .unwrap()
            .enabled
    );
}

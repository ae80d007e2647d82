//! Large specs, which are parsed, deserialized and resolved on every core: the same tokens in
//! file order and the same findings at the same places as a small spec gets, whichever slice of
//! the file they are in.

use tokensmith::model::Target;
use tokensmith::spec;

/// A spec of `n` API tokens (about 150 bytes each, so 6,000 of them are well past the size
/// where the work is split), with `entry(i)` overriding entry `i`.
fn large_spec(n: usize, entry: impl Fn(usize) -> Option<String>) -> String {
    let mut text = String::from(
        "version: 1\nenvironments:\n  prod: { url: sandbox://prod }\n  stage: { url: sandbox://stage }\napi_tokens:\n",
    );
    for i in 0..n {
        let env = if i % 2 == 0 { "prod" } else { "stage" };
        text.push_str(&entry(i).unwrap_or_else(|| {
            format!("  t{i:05}:\n    environments: [{env}]\n    scopes: [metrics.ingest, logs.ingest]\n    deliver:\n      - file: {{ path: out/t{i:05} }}\n")
        }));
    }
    text
}

/// The line of entry `i` in [`large_spec`] when every entry before it has the default 5 lines.
fn line_of(i: usize) -> usize {
    6 + 5 * i
}

fn load(text: &str) -> Result<spec::LoadedSpec, spec::Diagnostics> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokensmith.yaml");
    std::fs::write(&path, text).unwrap();
    spec::load(&path)
}

#[test]
fn a_large_spec_keeps_its_tokens_in_file_order() {
    let text = large_spec(6_000, |_| None);
    assert!(text.len() > 700_000, "{} bytes", text.len());
    let loaded = load(&text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(loaded.desired.tokens.len(), 6_000);
    for (i, token) in loaded.desired.tokens.iter().enumerate() {
        assert_eq!(token.key.to_string(), format!("t{i:05}"));
        let Target::File(f) = &token.deliver[0] else {
            panic!("t{i:05}: not a file target")
        };
        assert_eq!(f.path, format!("out/t{i:05}"));
    }
}

#[test]
fn findings_anywhere_in_a_large_spec_are_reported_at_their_place() {
    let broken = |i: usize| -> Option<String> {
        Some(match i {
            10 => "  t00010:\n    environments: [prod]\n    scopes: [metrics.ingestt, logs.ingest]\n    deliver:\n      - file: { path: out/t00010 }\n".to_owned(),
            100 => "  t00100:\n    environments: [prod]\n    scopes: [metrics.ingest, logs.ingest]\n    deliver:\n      - file: { path: out/shared }\n".to_owned(),
            3_000 => "  t03000:\n    environments: [prod]\n    scopes: 5\n    deliver:\n      - file: { path: out/t03000 }\n".to_owned(),
            5_500 => "  t05500:\n    environments: [prod]\n    scopes: [metrics.ingest, logs.ingest]\n    deliver:\n      - file: { path: 'out/{{ nope }}' }\n".to_owned(),
            5_900 => "  t05900:\n    environments: [prod]\n    scopes: [metrics.ingest, logs.ingest]\n    deliver:\n      - file: { path: out/shared }\n".to_owned(),
            _ => return None,
        })
    };
    let text = large_spec(6_000, broken);
    let Err(d) = load(&text) else {
        panic!("a spec with four errors loaded")
    };
    let errors: Vec<(usize, String)> = d
        .items
        .iter()
        .filter(|d| d.severity == spec::Severity::Error)
        .map(|d| (d.location.as_ref().map_or(0, |l| l.line), d.message.clone()))
        .collect();
    let expect = [
        (line_of(10) + 2, "unknown scope `metrics.ingestt`"),
        (line_of(3_000) + 2, "expected a list, found the number `5`"),
        (line_of(5_500) + 4, "undefined variable `nope`"),
        (
            line_of(5_900) + 4,
            "target `file:out/shared` is also written by",
        ),
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    for (line, message) in expect {
        assert!(
            errors
                .iter()
                .any(|(l, m)| *l == line && m.contains(message)),
            "no `{message}` at line {line}: {errors:#?}"
        );
    }
}

#[test]
fn a_name_repeated_far_apart_in_a_large_spec_is_a_duplicate_key() {
    let text = large_spec(6_000, |i| {
        (i == 5_000).then(|| {
            "  t00007:\n    environments: [prod]\n    scopes: [metrics.ingest, logs.ingest]\n    deliver:\n      - file: { path: out/x }\n".to_owned()
        })
    });
    let Err(d) = load(&text) else {
        panic!("a spec with a repeated name loaded")
    };
    let first = &d.items[0];
    assert_eq!(first.message, "duplicate key `t00007`");
    assert_eq!(first.location.as_ref().unwrap().line, line_of(5_000));
}

/// A spec past `MAX_TOKENS` is refused at the `for_each` of the entry that crosses the limit,
/// counted before any token is made. The reviewer's spec had 2,000 entries like these (30 × 33
/// = 990 combinations each), and made 1,980,000 tokens in 82 s and 2.2 GB before it was used;
/// 120 of them are past the limit.
#[test]
fn a_spec_past_the_token_limit_is_refused_at_the_for_each_that_crosses_it() {
    let values = |prefix: &str, n: usize| {
        (0..n)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (xs, ys) = (values("x", 30), values("y", 33));
    let mut text =
        String::from("version: 1\nenvironments:\n  prod: { url: sandbox://prod }\napi_tokens:\n");
    let head_lines = text.lines().count();
    for i in 0..120 {
        text.push_str(&format!(
            "  t{i:03}-{{{{ x }}}}-{{{{ y }}}}:\n    for_each: {{ x: [{xs}], y: [{ys}] }}\n    environments: [prod]\n    scopes: [metrics.ingest]\n"
        ));
    }
    let started = std::time::Instant::now();
    let Err(d) = load(&text) else {
        panic!("a spec of 118,800 tokens loaded")
    };
    let elapsed = started.elapsed();
    let errors: Vec<_> = d.errors().collect();
    assert_eq!(errors.len(), 1, "{d}");
    // 101 entries make 99,990 tokens; the 102nd (index 101) crosses 100,000.
    assert_eq!(
        errors[0].message,
        "the spec makes more than 100000 tokens: 99990 before this entry and 990 from it"
    );
    let at = errors[0].location.as_ref().unwrap();
    assert_eq!(
        (at.line, at.column),
        (head_lines + 4 * 101 + 2, "    for_each: ".len() + 1),
        "{d}"
    );
    assert!(
        elapsed < std::time::Duration::from_secs(5),
        "refusing took {elapsed:?}"
    );
}

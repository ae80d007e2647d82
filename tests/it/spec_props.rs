//! Property tests: the loader never panics, whatever it is fed (random bytes, random YAML built
//! from spec vocabulary, and valid examples with random edits), and every failure it reports
//! carries a location.

use proptest::prelude::*;
use tokensmith::spec;

/// Loads and checks the one promise every input gets: no panic, and errors point somewhere.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Err(diags) = spec::load_bytes(bytes, "fuzz.yaml") {
        prop_assert!(diags.has_errors());
        for d in diags.errors() {
            prop_assert!(d.location.is_some(), "unlocated error: {}", d);
            let mut out = Vec::new();
            d.render(&mut out, false).unwrap();
            prop_assert!(!out.is_empty());
        }
    }
    Ok(())
}

const KEYS: &[&str] = &[
    "version",
    "environments",
    "accounts",
    "defaults",
    "api_tokens",
    "activegate_tokens",
    "tenant_token",
    "platform_tokens",
    "unmanaged",
    "prod",
    "url",
    "token_env",
    "scopes",
    "preset",
    "environments",
    "deliver",
    "file",
    "exec",
    "kubernetes_secret",
    "path",
    "format",
    "key",
    "command",
    "secret_env",
    "for_each",
    "name",
    "expires_in",
    "rotate_before",
    "rotate_every",
    "grace",
    "revoke",
    "disable",
    "delete_after",
    "never_expires",
    "type",
    "account",
    "resource",
    "owner",
    "adopt",
    "exclude_scopes",
    "uuid",
    "<<",
    "x-a",
];

const SCALARS: &[&str] = &[
    "1",
    "0",
    "-1",
    "true",
    "null",
    "~",
    "",
    "90d",
    "0d",
    "12h",
    "x",
    "prod",
    "https://abc12345.live.dynatrace.com",
    "sandbox://demo",
    "http://127.0.0.1:1/e/x",
    "metrics.ingest",
    "apiToken.read",
    "ViewDashboard",
    "data-ingest",
    "dynatrace-operator",
    "{{ env }}",
    "{{ cluster }}",
    "{{",
    "{% if %}",
    "out/x",
    "env",
    "raw",
    "delete",
    "ENVIRONMENT",
    "dt0c01.ABC",
    "dt0c01.ABC.DEF",
    "DT_TOKEN",
    "storage:logs:read",
    "account",
    "3f2b7c11-4c21-4d0d-9a3e-6a1c1a9e1e0d",
    "*a",
    "&a x",
];

fn yaml_value() -> impl Strategy<Value = serde_yaml::Value> {
    let leaf = prop::sample::select(SCALARS).prop_map(|s| serde_yaml::Value::String(s.to_owned()));
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_yaml::Value::Sequence),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|entries| {
                let mut map = serde_yaml::Mapping::new();
                for (k, v) in entries {
                    map.insert(serde_yaml::Value::String(k.to_owned()), v);
                }
                serde_yaml::Value::Mapping(map)
            }),
        ]
    })
}

/// A spec-shaped document: a mapping with `version: 1` and random sections.
fn spec_document() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(KEYS), yaml_value()), 0..6).prop_map(|sections| {
        let mut map = serde_yaml::Mapping::new();
        map.insert("version".into(), 1.into());
        for (k, v) in sections {
            map.insert(serde_yaml::Value::String(k.to_owned()), v);
        }
        // serde_yaml quotes strings that would otherwise read as other types; unquote some so
        // the loader also sees plain `true`, `90d`, `{{ env }}` and friends.
        serde_yaml::to_string(&map).unwrap().replace('\'', "")
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Delete(usize, usize),
    DuplicateLine(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let chars = prop::sample::select(vec![
        ':', '-', ' ', '\n', '\t', '[', ']', '{', '}', '&', '*', '!', '\'', '"', '#', '|', '>',
        '%', '@', '`', ',', '?', 'x', '0', '\u{feff}', '\u{0}', 'é',
    ]);
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), chars).prop_map(|(p, c)| Edit::Insert(p, c)),
            (any::<usize>(), 1usize..20).prop_map(|(p, n)| Edit::Delete(p, n)),
            any::<usize>().prop_map(Edit::DuplicateLine),
        ],
        1..6,
    )
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        match *edit {
            Edit::Insert(p, c) => {
                let at = p % (chars.len() + 1);
                chars.insert(at, c);
            }
            Edit::Delete(p, n) => {
                if !chars.is_empty() {
                    let at = p % chars.len();
                    let end = (at + n).min(chars.len());
                    chars.drain(at..end);
                }
            }
            Edit::DuplicateLine(p) => {
                let s: String = chars.iter().collect();
                let lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let i = p % lines.len();
                    let mut out: Vec<&str> = lines.clone();
                    out.insert(i, lines[i]);
                    chars = (out.join("\n") + "\n").chars().collect();
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn examples() -> Vec<String> {
    [
        "quickstart",
        "operator",
        "tenant-rotation",
        "platform-tokens",
    ]
    .iter()
    .map(|n| std::fs::read_to_string(format!("examples/{n}.yaml")).unwrap())
    .collect()
}

proptest! {
    // 256 cases by default; set PROPTEST_CASES for a longer run.
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check(&bytes)?;
    }

    #[test]
    fn random_spec_shaped_yaml_never_panics(doc in spec_document()) {
        check(doc.as_bytes())?;
    }

    #[test]
    fn edited_examples_never_panic(which in 0usize..4, edits in edits()) {
        let text = apply(&examples()[which], &edits);
        check(text.as_bytes())?;
    }
}

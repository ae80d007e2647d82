//! What a spec means: defaults, `never_expires`, environments and `for_each` expansion, warnings
//! that do not stop a load, every error reported at once, and secrets kept out of diagnostics.

use sha2::Digest;
use tokensmith::model::{EnvName, Home, Revoke, Rotation, SpecDuration, Target};
use tokensmith::spec::{self, Diagnostics, LoadedSpec};

const HEAD: &str = "version: 1
environments:
  prod: { url: 'https://abc12345.live.dynatrace.com', token_env: DT_PROD }
  stage: { url: 'https://dt.example.com/e/6a1c1a9e-4c21-4d0d-9a3e-1e0d3f2b7c11', token_env: DT_STAGE }
  local: { url: 'http://127.0.0.1:8080/e/demo', token_env: DT_LOCAL }
";

fn ok(body: &str) -> LoadedSpec {
    let text = format!("{HEAD}{body}");
    spec::load_str(&text, "t.yaml").unwrap_or_else(|d| panic!("{d}"))
}

fn errors(body: &str) -> Diagnostics {
    let text = format!("{HEAD}{body}");
    match spec::load_str(&text, "t.yaml") {
        Ok(_) => panic!("loaded:\n{text}"),
        Err(d) => d,
    }
}

#[test]
fn built_in_defaults_apply_when_nothing_is_set() {
    let spec = ok("api_tokens:\n  ci:\n    environments: [prod]\n    scopes: [metrics.ingest]\n    deliver: [{ file: { path: ci } }]\n");
    let p = &spec.desired.tokens[0].policy;
    assert_eq!(p.expires_in, Some(SpecDuration::from_days(90)));
    assert_eq!(
        p.rotation,
        Rotation::BeforeExpiry(SpecDuration::from_days(14))
    );
    assert_eq!(p.grace, SpecDuration::from_hours(24));
    assert_eq!(
        p.revoke,
        Revoke::Disable {
            delete_after: SpecDuration::from_days(7)
        }
    );
    assert!(!p.verify_usage);
    assert_eq!(spec.desired.tokens[0].display_name, "ci");
}

#[test]
fn token_settings_override_defaults_and_the_rotation_mode() {
    let spec = ok("defaults:
  expires_in: 60d
  rotate_before: 10d
  grace: 2h
  revoke: delete
  verify_usage: true
api_tokens:
  a:
    environments: [prod]
    scopes: [metrics.ingest]
    deliver: [{ file: { path: a } }]
  b:
    environments: [prod]
    scopes: [metrics.ingest]
    rotate_every: 30d
    deliver: [{ file: { path: b } }]
  c:
    environments: [prod]
    scopes: [metrics.ingest]
    never_expires: true
    deliver: [{ file: { path: c } }]
  d:
    environments: [prod]
    scopes: [metrics.ingest]
    never_expires: true
    rotate_every: 180d
    revoke: { disable: { delete_after: 1d } }
    deliver: [{ file: { path: d } }]
");
    let t = &spec.desired.tokens;
    assert_eq!(t[0].policy.expires_in, Some(SpecDuration::from_days(60)));
    assert_eq!(
        t[0].policy.rotation,
        Rotation::BeforeExpiry(SpecDuration::from_days(10))
    );
    assert_eq!(t[0].policy.grace, SpecDuration::from_hours(2));
    assert_eq!(t[0].policy.revoke, Revoke::Delete);
    assert!(t[0].policy.verify_usage);
    assert_eq!(
        t[1].policy.rotation,
        Rotation::Every(SpecDuration::from_days(30))
    );
    assert_eq!(t[2].policy.expires_in, None);
    assert_eq!(t[2].policy.rotation, Rotation::Never);
    assert_eq!(
        t[3].policy.rotation,
        Rotation::Every(SpecDuration::from_days(180))
    );
    assert_eq!(
        t[3].policy.revoke,
        Revoke::Disable {
            delete_after: SpecDuration::from_days(1)
        }
    );
}

#[test]
fn environments_and_for_each_expand_to_one_token_each() {
    let spec = ok("api_tokens:
  ingest-{{ cluster }}-{{ zone }}:
    for_each: { cluster: [eu, us], zone: [a, b] }
    name: 'ingest {{ cluster }}/{{ zone }} in {{ env }}'
    environments: [prod, stage]
    preset: data-ingest
    deliver:
      - kubernetes_secret: { context: '{{ env }}-{{ cluster }}', namespace: dynatrace, name: 'dk-{{ zone }}', key: dataIngestToken }
");
    let t = &spec.desired.tokens;
    assert_eq!(t.len(), 8);
    let first = &t[0];
    assert_eq!(first.key.as_str(), "ingest-eu-a");
    assert_eq!(first.home, Home::Environment(EnvName::new("prod")));
    assert_eq!(first.display_name, "ingest eu/a in prod");
    let Target::KubernetesSecret(k) = &first.deliver[0] else {
        panic!()
    };
    assert_eq!(
        (k.context.as_deref(), k.name.as_str()),
        (Some("prod-eu"), "dk-a")
    );
    let same_key: Vec<_> = t
        .iter()
        .filter(|x| x.key == first.key)
        .map(|x| x.home.clone())
        .collect();
    assert_eq!(
        same_key,
        [
            Home::Environment(EnvName::new("prod")),
            Home::Environment(EnvName::new("stage"))
        ]
    );
}

#[test]
fn endpoints_of_every_shape() {
    let spec = ok("");
    let envs = &spec.desired.environments;
    assert_eq!(envs.len(), 3);
    assert_eq!(
        envs[&EnvName::new("local")].token_env.as_deref(),
        Some("DT_LOCAL")
    );
}

#[test]
fn warnings_do_not_stop_a_load() {
    let spec = ok("api_tokens:
  ci:
    environments: [prod]
    preset: dynatrace-operator
    exclude_scopes: [settings.write]
    deliver:
      - exec: { command: [store, '--token={{ secret }}'], secret_in_argv: true }
      - file: { path: ci.env, format: env, key: TOKEN, mode: '0644' }
");
    let messages: Vec<&str> = spec.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("secret_in_argv")));
    assert!(messages.iter().any(|m| m.contains("0644")));
    assert!(messages.iter().any(|m| m.contains("settings.write")));
    let t = &spec.desired.tokens[0];
    assert!(!t
        .scopes
        .contains(&tokensmith::model::Scope::from("settings.write")));
    let Target::Exec(e) = &t.deliver[0] else {
        panic!()
    };
    assert_eq!(
        e.command[1], "--token={{ secret }}",
        "the secret placeholder survives templating"
    );
}

#[test]
fn activegate_tokens_cannot_be_disabled() {
    let spec = ok("activegate_tokens:
  ag:
    environments: [prod]
    revoke: { disable: { delete_after: 3d } }
    deliver: [{ file: { path: ag } }]
");
    assert_eq!(spec.warnings.len(), 1);
    assert!(spec.warnings[0].message.contains("cannot be disabled"));
    assert_eq!(spec.warnings[0].location.as_ref().unwrap().line, 9);
}

#[test]
fn every_error_is_reported_at_once_in_file_order() {
    let d = errors(
        "api_tokens:
  a:
    environments: [prod]
    scopes: [metric.ingest]
    deliver: [{ file: { path: a } }]
  b:
    environments: [nowhere]
    scopes: [metrics.ingest]
    deliver: [{ file: { path: b } }]
  c:
    environments: [prod]
    scopes: [metrics.ingest]
    expires_in: soon
    deliver: [{ file: { path: c } }]
  d:
    environments: [prod]
    scopes: [metrics.ingest]
    deliver: [{ file: { path: a } }]
",
    );
    let errors: Vec<_> = d.errors().collect();
    let lines: Vec<usize> = errors
        .iter()
        .map(|e| e.location.as_ref().unwrap().line)
        .collect();
    assert_eq!(errors.len(), 4, "{d}");
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    assert!(errors[0].message.contains("unknown scope `metric.ingest`"));
    assert!(errors[1].message.contains("`nowhere` is not declared"));
    assert!(errors[2].message.contains("`soon` is not a duration"));
    assert!(errors[3].message.contains("also written by"));
}

#[test]
fn structural_and_semantic_errors_of_one_entry_are_reported_in_one_run() {
    let d = errors(
        "api_tokens:
  a:
    environments: [prod]
    scopes: [metrics.ingestt]
    expires_in: 30q
    bogus: 1
    deliver: [{ file: { path: a } }]
  b:
    environments: [prod]
    scopes: [metrics.ingest]
    deliver: [{ file: { path: a } }]
",
    );
    let messages: Vec<&str> = d.errors().map(|e| e.message.as_str()).collect();
    assert_eq!(messages.len(), 4, "{d}");
    // Structural: a wrong value and an unknown field; semantic: an unknown scope in the same
    // entry, and a target the broken entry shares with another.
    assert!(
        messages[0].contains("unknown scope `metrics.ingestt`"),
        "{d}"
    );
    assert!(messages[1].contains("unknown unit `q`"), "{d}");
    assert!(messages[2].contains("unknown field `bogus`"), "{d}");
    assert!(messages[3].contains("also written by"), "{d}");
}

#[test]
fn fields_taken_out_of_a_broken_entry_cause_no_follow_on_errors() {
    // Without its broken `scopes` the entry has none, and without its broken `expires_in` the
    // default 90d is shorter than `rotate_before`: neither is reported, only the real errors.
    let d = errors(
        "api_tokens:
  a:
    environments: [prod]
    scopes: metrics.ingest
    deliver: [{ file: { path: a } }]
  b:
    environments: [prod]
    scopes: [metrics.ingest]
    expires_in: 200x
    rotate_before: 100d
",
    );
    let messages: Vec<&str> = d.errors().map(|e| e.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{d}");
    assert!(
        messages[0].contains("expected a sequence") || messages[0].contains("list"),
        "{d}"
    );
    assert!(messages[1].contains("200x"), "{d}");
}

#[test]
fn one_error_per_place_even_when_expanded_many_times() {
    let d = errors(
        "api_tokens:
  t-{{ n }}:
    for_each: { n: ['1', '2', '3'] }
    environments: [prod, stage]
    scopes: [metrics.ingest]
    deliver: [{ file: { path: 't-{{ n }}-{{ env }}', format: json } }]
",
    );
    assert_eq!(d.errors().count(), 1, "{d}");
}

#[test]
fn secrets_never_reach_diagnostics() {
    let secret = "dt0c01.ST2EY72KQINMH574WMNVI7YN.G3DFPBEJYMODIDAEX454M7YWBUVEFOWKPRVMWFASS64NFH52PX6BNDVFFM572RZM";
    let text = format!(
        "version: 1\nenvironments:\n  prod:\n    url: https://abc12345.live.dynatrace.com\n    token_env: {secret}\napi_tokens:\n  ci:\n    environments: [prod]\n    scopes: ['{secret}']\n    adopt: {secret}\n"
    );
    let d = spec::load_str(&text, "t.yaml").unwrap_err();
    let mut buf = Vec::new();
    d.render(&mut buf, true).unwrap();
    let rendered = String::from_utf8(buf).unwrap();
    assert!(d.errors().count() >= 3, "{rendered}");
    assert!(!rendered.contains("G3DFPBEJ"), "{rendered}");
    assert!(rendered.contains("dt0c01.ST2EY72KQINMH574WMNVI7YN.<redacted>"));
}

#[test]
fn the_source_hash_is_the_sha256_of_the_bytes() {
    let text = HEAD.to_string();
    let spec = spec::load_str(&text, "t.yaml").unwrap();
    let expected: String = sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(spec.source_hash, expected);
}

#[test]
fn colour_only_when_asked() {
    let d = errors("api_tokens: 5\n");
    let mut plain = Vec::new();
    d.render(&mut plain, false).unwrap();
    assert!(!plain.contains(&0x1b));
    let mut color = Vec::new();
    d.render(&mut color, true).unwrap();
    assert!(color.contains(&0x1b));
}

#[test]
fn anchors_aliases_and_merge_keys_can_share_settings() {
    let spec = ok("x-policy: &short
  expires_in: 7d
  rotate_before: 2d
x-secret: &dynakube { namespace: dynatrace, name: dynakube }
api_tokens:
  op:
    <<: *short
    environments: [prod]
    preset: dynatrace-operator
    deliver:
      - kubernetes_secret: { <<: *dynakube, key: apiToken }
  ingest:
    <<: *short
    expires_in: 14d
    environments: [prod]
    preset: data-ingest
    deliver:
      - kubernetes_secret: { <<: *dynakube, key: dataIngestToken }
");
    let t = &spec.desired.tokens;
    assert_eq!(t[0].policy.expires_in, Some(SpecDuration::from_days(7)));
    assert_eq!(
        t[1].policy.expires_in,
        Some(SpecDuration::from_days(14)),
        "explicit keys win over merged ones"
    );
    assert_eq!(
        t[1].policy.rotation,
        Rotation::BeforeExpiry(SpecDuration::from_days(2))
    );
    let Target::KubernetesSecret(k) = &t[1].deliver[0] else {
        panic!()
    };
    assert_eq!(
        (k.name.as_str(), k.key.as_str()),
        ("dynakube", "dataIngestToken")
    );
}

#[test]
fn a_large_spec_loads_in_reasonable_time() {
    let mut text =
        String::from("version: 1\nenvironments:\n  prod: { url: sandbox://prod }\napi_tokens:\n");
    for i in 0..3000 {
        text.push_str(&format!(
            "  t{i}:\n    environments: [prod]\n    scopes: [metrics.ingest]\n    deliver: [{{ file: {{ path: out/t{i} }} }}]\n"
        ));
    }
    let started = std::time::Instant::now();
    let spec = spec::load_str(&text, "big.yaml").unwrap();
    assert_eq!(spec.desired.tokens.len(), 3000);
    // Every token also shares one bad scope: 3000 errors must not take quadratic time.
    let broken = text.replace("metrics.ingest", "metric.ingest");
    let errors = spec::load_str(&broken, "big.yaml").unwrap_err();
    assert_eq!(errors.errors().count(), 3000);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

/// The illustrative file of DESIGN.md ("The desired-state file") is valid as written.
#[test]
fn the_design_documents_example_is_valid() {
    let text = r#"# yaml-language-server: $schema=../schemas/tokensmith.schema.json
version: 1
environments:
  prod:
    url: https://abc12345.live.dynatrace.com
    token_env: DT_PROD_ADMIN_TOKEN            # management token, read from the environment
  eu-managed:
    url: https://dynatrace.example.com/e/6a1c1a9e-4c21-4d0d-9a3e-1e0d3f2b7c11
    token_env: DT_EU_ADMIN_TOKEN
  demo:
    url: sandbox://demo                       # embedded emulator, state kept under .tokensmith/

defaults:
  expires_in: 90d
  rotate_before: 14d
  grace: 24h

api_tokens:
  k8s-operator:
    environments: [prod]
    preset: dynatrace-operator                # required scopes from the operator's feature table
    scopes: [settings.read, settings.write]
    expires_in: 30d
    rotate_before: 7d
    deliver:
      - kubernetes_secret: { context: prod, namespace: dynatrace, name: dynakube, key: apiToken }
  data-ingest-{{ cluster }}:
    for_each: { cluster: [eu-1, us-1] }
    environments: [prod]
    preset: data-ingest
    grace: 72h                                # injected app pods read the token only at start
    deliver:
      - kubernetes_secret: { context: "{{ cluster }}", namespace: dynatrace, name: dynakube, key: dataIngestToken }

activegate_tokens:
  ag-frankfurt:
    environments: [prod]
    type: ENVIRONMENT
    expires_in: 365d
    deliver:
      - file: { path: /var/lib/dynatrace/gateway/config/authorization.properties, format: properties, key: authToken }

tenant_token:
  prod:
    rotate_every: 180d
    activegates:
      - file: { path: /var/lib/dynatrace/gateway/config/authorization.properties, format: properties, key: tenantToken }
    oneagents:
      - exec: { command: [ansible, oneagents, -m, shell, -a, "oneagentctl --set-tenant-token=$TENANT_TOKEN --restart-service"], secret_env: TENANT_TOKEN }

unmanaged:
  report_unused_after: 90d                    # inventory flags them as deletion candidates
"#;
    let spec = spec::load_str(text, "design.yaml").unwrap_or_else(|d| panic!("{d}"));
    assert!(spec.warnings.is_empty(), "{:?}", spec.warnings);
    assert_eq!(spec.desired.tokens.len(), 4);
    assert_eq!(spec.desired.environments.len(), 3);
}

#[test]
fn every_broken_field_of_one_entry_is_reported() {
    let d = errors(
        "api_tokens:
  ci:
    environments: prod
    scope: [metrics.ingest]
    expires_in: 90
    deliver:
      - file: { path: a, fromat: env }
      - s3: { bucket: b }
      - file: { path: ok }
",
    );
    let found: Vec<(usize, &str)> = d
        .errors()
        .map(|e| (e.location.as_ref().unwrap().line, e.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (8, "expected a list, found the string `prod`"),
            (9, "unknown field `scope`"),
            (
                10,
                "`90` has no unit; write a number and a unit: s, m, h, d or w (e.g. `90d`)"
            ),
            (12, "unknown field `fromat`"),
            (13, "unknown value `s3`"),
        ],
        "{d}"
    );
}

#[test]
fn operator_tokens_in_keys_the_operator_does_not_read_warn() {
    let spec = ok("api_tokens:
  operator:
    environments: [prod]
    preset: dynatrace-operator
    deliver:
      - kubernetes_secret: { namespace: dynatrace, name: dynakube, key: apitoken }
      - kubernetes_secret: { namespace: dynatrace, name: dynakube-b, key: apiToken }
  ingest:
    environments: [prod]
    preset: data-ingest
    deliver:
      - kubernetes_secret: { namespace: dynatrace, name: dynakube, key: DataIngestToken }
      - kubernetes_secret: { namespace: apps, name: otel, key: DT_API_TOKEN }
");
    let warnings: Vec<String> = spec
        .warnings
        .iter()
        .map(|w| format!("{} | {}", w.message, w.notes.join(" ")))
        .collect();
    // `apitoken` and `DataIngestToken` warn with the right spelling; `apiToken` and an OTel
    // collector's own key (not a DynaKube Secret) do not.
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("`apitoken`") && warnings[0].contains("use `key: apiToken`"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("`DataIngestToken`")
            && warnings[1].contains("use `key: dataIngestToken`"),
        "{warnings:?}"
    );
    assert_eq!(spec.warnings[0].location.as_ref().unwrap().line, 11);
}

/// An account's apply lock is named `account-NAME`; an environment of that name would make one
/// lock name stand for two things (one run would then wait on itself, and a lock message would
/// call the environment an account). The spec refuses it at the account, naming both; an
/// environment of that shape without such an account, or an account beside other names, loads.
#[test]
fn an_environment_named_like_an_accounts_lock_is_refused() {
    let account = |name: &str| {
        format!(
            "accounts:
  {name}:
    uuid: 3f2b7c11-4c21-4d0d-9a3e-6a1c1a9e1e0d
    client_id_env: DT_OAUTH_CLIENT_ID
    client_secret_env: DT_OAUTH_CLIENT_SECRET
"
        )
    };
    let env = "  account-main: { url: 'https://xyz98765.live.dynatrace.com', token_env: DT_AM }\n";
    let text = format!("{HEAD}{env}{}", account("main"));
    let d = spec::load_str(&text, "t.yaml").expect_err("refused");
    let errors: Vec<_> = d.errors().collect();
    assert_eq!(errors.len(), 1, "{d}");
    assert_eq!(
        errors[0].message,
        "account `main` and environment `account-main` would share the apply lock `account-main`"
    );
    let at = errors[0].location.as_ref().unwrap();
    assert_eq!(
        (at.file.as_str(), at.line, at.column),
        ("t.yaml", 8, 3),
        "{d}"
    );
    assert!(
        d.to_string()
            .contains("rename the account or the environment"),
        "{d}"
    );

    for ok in [
        format!("{HEAD}{env}{}", account("other")),
        format!("{HEAD}{}", account("main")),
    ] {
        if let Err(d) = spec::load_str(&ok, "t.yaml") {
            panic!("{d}\n{ok}");
        }
    }
}

/// A file target in a `.git/` directory (`apply` once replaced `.git/config` with the token) is
/// refused at its path, for a spec in memory (read from a commit) and on disk alike, once.
#[test]
fn a_file_target_in_a_git_directory_is_refused_at_its_path() {
    let body = "api_tokens:
  ci:
    environments: [prod]
    scopes: [metrics.ingest]
    deliver:
      - file: { path: .git/config }
      - file: { path: 'sub/.Git/hooks/post-checkout' }
      - file: { path: .github/ci-token }
";
    let expected = vec![
        (
            11,
            23,
            "`.git/config` is inside a git directory `.git/`".to_owned(),
        ),
        (
            12,
            23,
            "`sub/.Git/hooks/post-checkout` is inside a git directory `.git/`".to_owned(),
        ),
    ];
    let located = |d: &Diagnostics| -> Vec<(usize, usize, String)> {
        d.errors()
            .map(|e| {
                let at = e.location.as_ref().unwrap();
                (at.line, at.column, e.message.clone())
            })
            .collect()
    };
    assert_eq!(located(&errors(body)), expected);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::write(dir.path().join(".git/config"), "[core]\n").unwrap();
    let path = dir.path().join("tokensmith.yaml");
    std::fs::write(&path, format!("{HEAD}{body}")).unwrap();
    let Err(d) = spec::load(&path) else {
        panic!("a spec writing into .git/ loaded")
    };
    assert_eq!(located(&d), expected);
}

/// A file target named like the sidecar tokensmith keeps beside a raw or json file
/// (`out/y.tokensmith` beside `out/y`) is refused at its path: apply wrote `out/y`, then failed
/// on a "sidecar" that was a token, and left a `y.tokensmith.tokensmith` behind.
#[test]
fn a_file_target_named_like_a_sidecar_is_refused_at_its_path() {
    let d = errors(
        "api_tokens:
  a:
    environments: [prod]
    scopes: [metrics.ingest]
    deliver:
      - file: { path: out/y }
  b:
    environments: [prod]
    scopes: [metrics.ingest]
    deliver:
      - file: { path: out/y.tokensmith }
",
    );
    let e = d.errors().next().expect("an error");
    assert_eq!(
        e.message,
        "`out/y.tokensmith` is the name of the sidecar tokensmith keeps beside `out/y` (a raw or json file's record)"
    );
    let at = e.location.as_ref().unwrap();
    assert_eq!((at.line, at.column), (16, 23));
    assert_eq!(d.errors().count(), 1, "{d}");
}

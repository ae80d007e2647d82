//! Every example in `examples/` validates (library and binary), starts with the schema comment,
//! conforms to the committed JSON Schema, and resolves to the desired state it describes. The
//! committed schema matches the generated one (`tokensmith schema --check`).

use std::path::{Path, PathBuf};
use std::process::Command;

use tokensmith::model::{
    ActiveGateType, Endpoint, FileFormat, Home, Preset, Revoke, Rotation, Scope, SpecDuration,
    Target, TokenDetails, TokenKind,
};
use tokensmith::spec::{self, schema};

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("examples")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "examples are missing: {files:?}");
    files
}

fn committed_schema() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(schema::SCHEMA_PATH).unwrap()).unwrap()
}

#[test]
fn every_example_loads_without_errors_or_warnings() {
    for path in examples() {
        let loaded = spec::load(&path).unwrap_or_else(|d| panic!("{}:\n{d}", path.display()));
        assert!(
            loaded.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            loaded.warnings
        );
        assert!(!loaded.desired.tokens.is_empty() || !loaded.desired.tenant_tokens.is_empty());
        assert_eq!(loaded.source_hash.len(), 64);
    }
}

#[test]
fn every_example_names_the_schema_for_editors() {
    for path in examples() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/tokensmith.schema.json\n"),
            "{}",
            path.display()
        );
    }
}

#[test]
fn every_example_conforms_to_the_json_schema() {
    let validator = jsonschema::validator_for(&committed_schema()).unwrap();
    for path in examples() {
        let text = std::fs::read_to_string(&path).unwrap();
        let instance: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

#[test]
fn the_schema_rejects_what_the_loader_rejects() {
    let validator = jsonschema::validator_for(&committed_schema()).unwrap();
    for text in [
        "version: 1\napi_tokens:\n  ci:\n    environments: [prod]\n    scope: [x]\n",
        "version: 1\nenvironments:\n  prod: { url: sandbox://x, token: abc }\n",
        "version: 1\napi_tokens:\n  ci:\n    environments: [prod]\n    expires_in: 90\n",
        "version: 1\napi_tokens:\n  ci:\n    environments: [prod]\n    deliver: [{ s3: { bucket: b } }]\n",
        "version: 1\nactivegate_tokens:\n  ag:\n    environments: [prod]\n    type: environment\n",
        "environments: {}\n",
    ] {
        let instance: serde_json::Value = serde_yaml::from_str(text).unwrap();
        assert!(!validator.is_valid(&instance), "schema accepts:\n{text}");
        assert!(spec::load_str(text, "t.yaml").is_err(), "loader accepts:\n{text}");
    }
}

#[test]
fn the_committed_schema_is_current() {
    let committed = std::fs::read_to_string(schema::SCHEMA_PATH).unwrap();
    assert!(
        committed == schema::schema_json(),
        "{} is stale; regenerate it with `cargo run -- schema > {}`",
        schema::SCHEMA_PATH,
        schema::SCHEMA_PATH
    );
}

fn tokensmith(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tokensmith"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn the_binary_validates_every_example_with_exit_0() {
    for path in examples() {
        let out = tokensmith(&["validate", "-f", path.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));
    }
}

#[test]
fn schema_check_exits_0_when_current_and_1_when_stale() {
    let out = tokensmith(&["schema", "--check", schema::SCHEMA_PATH]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let printed = tokensmith(&["schema"]);
    assert_eq!(printed.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(printed.stdout).unwrap(),
        schema::schema_json()
    );

    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.json");
    std::fs::write(
        &stale,
        schema::schema_json().replace("Dynatrace", "Dynatrac"),
    )
    .unwrap();
    let out = tokensmith(&["schema", "--check", stale.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is stale; regenerate it with `tokensmith schema >"),
        "{stderr}"
    );

    let out = tokensmith(&["schema", "--check", "no/such/schema.json"]);
    assert_eq!(out.status.code(), Some(1));
}

fn load(name: &str) -> tokensmith::model::Desired {
    spec::load(Path::new(name)).unwrap().desired
}

fn scopes(list: &[&str]) -> tokensmith::model::ScopeSet {
    list.iter().map(|s| Scope::from(*s)).collect()
}

#[test]
fn quickstart_resolves_to_local_files_in_the_sandbox() {
    let d = load("examples/quickstart.yaml");
    let demo = &d.environments[&tokensmith::model::EnvName::new("demo")];
    assert_eq!(
        demo.endpoint,
        Endpoint::Sandbox {
            name: "demo".into()
        }
    );
    assert_eq!(demo.token_env, None);
    let keys: Vec<_> = d.tokens.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["ci", "data-ingest", "ag-local"]);

    let ci = &d.tokens[0];
    assert_eq!(ci.display_name, "CI pipeline");
    assert_eq!(ci.policy.expires_in, Some(SpecDuration::from_days(30)));
    assert_eq!(
        ci.policy.rotation,
        Rotation::BeforeExpiry(SpecDuration::from_days(7))
    );
    assert_eq!(ci.policy.grace, SpecDuration::from_hours(24));
    assert_eq!(
        ci.policy.revoke,
        Revoke::Disable {
            delete_after: SpecDuration::from_days(7)
        }
    );
    let Target::File(f) = &ci.deliver[0] else {
        panic!()
    };
    assert_eq!(
        (f.path.as_str(), f.format, f.key.as_deref()),
        ("out/ci-token.env", FileFormat::Env, Some("DT_API_TOKEN"))
    );

    let ingest = &d.tokens[1];
    assert_eq!(
        ingest.scopes,
        scopes(&["metrics.ingest", "logs.ingest", "openTelemetryTrace.ingest"])
    );
    assert_eq!(
        ingest.details,
        TokenDetails::Api {
            personal_access_token: false,
            preset: Some(Preset::DataIngest)
        }
    );
    assert_eq!(ingest.policy.revoke, Revoke::Delete);
    assert_eq!(ingest.policy.grace, SpecDuration::from_hours(72));

    let ag = &d.tokens[2];
    assert_eq!(ag.kind, TokenKind::ActivegateToken);
    assert_eq!(
        ag.details,
        TokenDetails::Activegate {
            activegate_type: ActiveGateType::Environment,
            seed: false
        }
    );
    let Target::File(f) = &ag.deliver[0] else {
        panic!()
    };
    assert_eq!(f.section.as_deref(), Some("demo"), "{{ env }} is rendered");

    for t in &d.tokens {
        for target in &t.deliver {
            let Target::File(f) = target else {
                panic!("quickstart uses only file targets")
            };
            assert!(f.path.starts_with("out/"), "relative paths stay as written");
        }
    }
    assert_eq!(d.tenant_tokens.len(), 1);
    assert_eq!(
        d.tenant_tokens[0].rotate_every,
        Some(SpecDuration::from_days(180))
    );
    assert_eq!(
        d.unmanaged.report_unused_after,
        Some(SpecDuration::from_days(90))
    );
}

#[test]
fn operator_example_makes_one_token_per_cluster() {
    let d = load("examples/operator.yaml");
    let mut found: Vec<(String, String, String)> = d
        .tokens
        .iter()
        .map(|t| {
            let Target::KubernetesSecret(k) = &t.deliver[0] else {
                panic!()
            };
            (t.key.to_string(), k.context.clone().unwrap(), k.key.clone())
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (
                "data-ingest-eu-1".into(),
                "eu-1".into(),
                "dataIngestToken".into()
            ),
            (
                "data-ingest-us-1".into(),
                "us-1".into(),
                "dataIngestToken".into()
            ),
            ("k8s-operator-eu-1".into(), "eu-1".into(), "apiToken".into()),
            ("k8s-operator-us-1".into(), "us-1".into(), "apiToken".into()),
        ]
    );
    let op = d
        .tokens
        .iter()
        .find(|t| t.key.as_str() == "k8s-operator-eu-1")
        .unwrap();
    assert_eq!(op.display_name, "Dynatrace Operator eu-1");
    assert!(op.scopes.contains(&Scope::from("DataExport")));
    assert!(op.scopes.contains(&Scope::from("settings.write")));
    assert_eq!(
        op.home,
        Home::Environment(tokensmith::model::EnvName::new("prod"))
    );
}

#[test]
fn platform_example_resolves_resources_and_owners() {
    let d = load("examples/platform-tokens.yaml");
    let account = &d.accounts["main"];
    assert_eq!(account.api_base, "https://api.dynatrace.com");
    assert_eq!(
        account.token_url,
        "https://sso.dynatrace.com/sso/oauth2/token"
    );
    let reader = d
        .tokens
        .iter()
        .find(|t| t.key.as_str() == "log-reader")
        .unwrap();
    assert_eq!(
        reader.details,
        TokenDetails::Platform {
            resources: vec!["urn:dtenvironment:abc12345".into()],
            owner: Some("9d5e3c2a-1b4f-4e6d-8a7c-2f0e1d3b5a6c".into()),
        }
    );
    let settings = d
        .tokens
        .iter()
        .find(|t| t.key.as_str() == "settings-automation")
        .unwrap();
    let TokenDetails::Platform { resources, owner } = &settings.details else {
        panic!()
    };
    assert_eq!(
        resources,
        &["urn:dtaccount:3f2b7c11-4c21-4d0d-9a3e-6a1c1a9e1e0d".to_string()]
    );
    assert_eq!(
        owner.as_deref(),
        Some("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
    );
    assert_eq!(
        settings.policy.rotation,
        Rotation::Every(SpecDuration::from_days(30))
    );
    assert_eq!(settings.home, Home::Account("main".into()));
    // The operator's platform token gets the platform preset's scopes.
    let operator = d
        .tokens
        .iter()
        .find(|t| t.key.as_str() == "k8s-operator")
        .unwrap();
    assert_eq!(
        operator.scopes,
        tokensmith::model::PlatformPreset::DynatraceOperator
            .scopes()
            .collect::<tokensmith::model::ScopeSet>()
    );
}

#[test]
fn tenant_rotation_example_delivers_to_activegates_then_oneagents() {
    let d = load("examples/tenant-rotation.yaml");
    let tenant = &d.tenant_tokens[0];
    assert_eq!(tenant.environment.as_str(), "prod");
    // authorization.properties, ruxitagent.conf and extensions.conf, each restarting the
    // gateway after the edit.
    assert_eq!(tenant.activegates.len(), 3);
    for t in &tenant.activegates {
        let Target::File(f) = t else { panic!() };
        assert_eq!(f.key.as_deref(), Some("tenantToken"));
        assert_eq!(
            f.restart.as_deref().map(|r| r.join(" ")).as_deref(),
            Some("systemctl restart dynatracegateway")
        );
    }
    // One OneAgent target per host of oneagent-hosts.txt.
    let hosts: Vec<&str> = std::fs::read_to_string("examples/oneagent-hosts.txt")
        .unwrap()
        .leak()
        .lines()
        .filter_map(|l| l.split('#').next().map(str::trim).filter(|l| !l.is_empty()))
        .collect();
    assert_eq!(tenant.oneagents.len(), hosts.len());
    for (t, host) in tenant.oneagents.iter().zip(&hosts) {
        let Target::Exec(e) = t else { panic!() };
        // The value reaches ansible-playbook in its environment only; the playbook reads it
        // on the controller, never from a shell string expanded on the remote host.
        assert_eq!(e.secret_env.as_deref(), Some("TENANT_TOKEN"));
        assert!(!e.secret_in_argv && !e.command.iter().any(|a| a.contains('$')));
        assert!(e.command.iter().any(|a| a == host), "{:?}", e.command);
        let read = e.read_command.as_ref().unwrap();
        assert_eq!(read.last().map(String::as_str), Some("--get-tenant-token"));
        assert!(read.iter().any(|a| a == host));
    }
    let playbook = std::fs::read_to_string("examples/ansible/set-tenant-token.yml").unwrap();
    assert!(playbook.contains("lookup('ansible.builtin.env', 'TENANT_TOKEN')"));
    assert!(playbook.contains("no_log: true"));
}

#[test]
fn validate_prints_warnings_and_still_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warn.yaml");
    std::fs::write(
        &path,
        "version: 1\nenvironments:\n  demo: { url: sandbox://demo }\napi_tokens:\n  ci:\n    environments: [demo]\n    scopes: [metrics.ingest]\n",
    )
    .unwrap();
    let out = tokensmith(&["validate", "-f", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: `ci` has no `deliver` targets"),
        "{stderr}"
    );
    assert!(stderr.contains("0 errors, 1 warning"), "{stderr}");
}

#[test]
fn validate_colours_only_when_allowed() {
    let bad = "tests/bad_specs/72-unknown-scope.yaml";
    let run = |args: &[&str], no_color: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokensmith"));
        cmd.args(args).env_remove("NO_COLOR");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).contains('\x1b')
    };
    assert!(run(&["--color", "always", "validate", "-f", bad], None));
    assert!(!run(
        &["--color", "always", "validate", "-f", bad],
        Some("1")
    ));
    assert!(!run(&["validate", "-f", bad], None), "not a terminal");
    assert!(!run(&["--color", "never", "validate", "-f", bad], None));
}

#[test]
fn validate_reports_a_missing_file_with_exit_1() {
    let out = tokensmith(&["validate", "-f", "no/such/tokensmith.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read `no/such/tokensmith.yaml`"),
        "{stderr}"
    );
}

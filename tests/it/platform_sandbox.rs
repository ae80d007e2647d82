//! Platform tokens end to end: the real binary against a seeded sandbox serving two environments
//! (Managed paths `/e/env1`, `/e/env2`) and one account with an OAuth client, on loopback from
//! this process so the test can move its clock. Specs that name environments and accounts
//! together plan and apply, `--env` still reads the account, and the next plan is empty; the
//! example `examples/platform-tokens.yaml` runs as written but for its URLs (its Kubernetes
//! Secret goes to a Kubernetes double, its `vault` command to a stand-in script). Also: OAuth
//! scopes per operation, expired platform tokens the API still calls ACTIVE, the move of the
//! operator token from classic to platform, and an environment that refuses classic tokens.

use std::path::PathBuf;
use std::process::Command;

use crate::support::binary_world::{assert_no_secret, secrets_in};
use crate::support::k8s_double::K8sDouble;
use crate::support::{race, race_texts, tok, RaceOutcome};
use tokensmith::sandbox::{spawn, Sandbox, Seed};

/// The example's account and owners, so the example runs unchanged but for its URLs.
const ACCOUNT: &str = "3f2b7c11-4c21-4d0d-9a3e-6a1c1a9e1e0d";
const CLIENT_ID: &str = "dt0s02.PLATFORM";
const CLIENT_SECRET: &str =
    "dt0s02.PLATFORM.SECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRET";
const SERVICE_USER: &str = "9d5e3c2a-1b4f-4e6d-8a7c-2f0e1d3b5a6c";
const KUBE_TOKEN: &str = "kube-bearer";
const MANAGEMENT_SCOPES: &str = "[apiTokens.read, apiTokens.write, activeGateTokenManagement.read, activeGateTokenManagement.create, activeGateTokenManagement.write, tenantTokenRotation.write, InstallerDownload, activeGates.read]";

fn seed_yaml(client_scopes: &str, staging_refuses_classic: bool, unmanaged: usize) -> String {
    let platform_tokens: String = (0..unmanaged)
        .map(|i| {
            format!(
                "      - {{ name: \"hand-made {i}\", scope: [storage:logs:read], user_uuid: {SERVICE_USER}, created: now-40d }}\n"
            )
        })
        .collect();
    format!(
        r#"
start_time: 2026-06-01T00:00:00Z
frozen_clock: true
default_environment: env1
environments:
  env1:
    api_tokens:
      - {{ name: admin, token: "{a}", scopes: {MANAGEMENT_SCOPES}, created: now-10d }}
  env2:
    classic_tokens_disabled: {staging_refuses_classic}
    api_tokens:
      - {{ name: admin2, token: "{e}", scopes: {MANAGEMENT_SCOPES}, created: now-10d }}
accounts:
  {ACCOUNT}:
    name: main
    oauth_clients:
      {CLIENT_ID}:
        client_secret: {CLIENT_SECRET}
        user_email: automation@example.com
        user_uuid: {SERVICE_USER}
        scopes: {client_scopes}
    platform_tokens:
{platform_tokens}"#,
        a = tok('A'),
        e = tok('E'),
    )
}

struct PlatformWorld {
    rt: tokio::runtime::Runtime,
    sandbox: Sandbox,
    base: String,
    dir: tempfile::TempDir,
    kube: K8sDouble,
}

impl PlatformWorld {
    fn new(client_scopes: &str) -> PlatformWorld {
        Self::with(client_scopes, false)
    }

    fn with(client_scopes: &str, staging_refuses_classic: bool) -> PlatformWorld {
        Self::seeded(client_scopes, staging_refuses_classic, 0)
    }

    /// With `unmanaged` hand-made platform tokens of the service user in the account.
    fn seeded(
        client_scopes: &str,
        staging_refuses_classic: bool,
        unmanaged: usize,
    ) -> PlatformWorld {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let sandbox = Sandbox::from_seed(
            &Seed::from_yaml(&seed_yaml(
                client_scopes,
                staging_refuses_classic,
                unmanaged,
            ))
            .unwrap(),
        )
        .unwrap();
        let addr = rt.block_on(spawn(sandbox.clone())).unwrap();
        let kube = rt.block_on(K8sDouble::start(KUBE_TOKEN));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kubeconfig"),
            kube.kubeconfig("prod", KUBE_TOKEN),
        )
        .unwrap();
        // A stand-in `vault`: `vault kv put PATH token=-` stores standard input under out/vault/.
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let vault = bin.join("vault");
        std::fs::write(
            &vault,
            "#!/bin/sh\nset -e\nd=\"$(dirname \"$0\")/../out/vault\"\nmkdir -p \"$d\"\ncat > \"$d/$(echo \"$3\" | tr / _)\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&vault, std::fs::Permissions::from_mode(0o755)).unwrap();
        PlatformWorld {
            rt,
            sandbox,
            base: format!("http://{addr}"),
            dir,
            kube,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write_spec(&self, spec: &str) {
        std::fs::write(
            self.path("tokensmith.yaml"),
            spec.replace("{BASE}", &self.base),
        )
        .unwrap();
    }

    /// The real binary with `args`, run in `dir`, with this world's credentials and PATH.
    fn command_in(&self, dir: &std::path::Path, args: &[&str]) -> Command {
        // The test's own PATH, with the stand-in `vault` first, for the child.
        #[allow(clippy::disallowed_methods)]
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = Command::new(env!("CARGO_BIN_EXE_tokensmith"));
        c.args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("CI", "1")
            .env("PATH", path)
            .env("KUBECONFIG", self.path("kubeconfig"))
            .env("DT_PROD_ADMIN_TOKEN", tok('A'))
            .env("DT_STAGING_ADMIN_TOKEN", tok('E'))
            .env("DT_OAUTH_CLIENT_ID", CLIENT_ID)
            .env("DT_OAUTH_CLIENT_SECRET", CLIENT_SECRET);
        c
    }

    /// Run tokensmith to completion; the output is checked for leaked secrets.
    fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = self.command_in(self.dir.path(), args).output().unwrap();
        (out.status.code(), checked_text(&out))
    }

    fn apply(&self, extra: &[&str]) -> (Option<i32>, String) {
        let mut args = vec!["apply", "--auto-approve"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn assert_plan_empty(&self, extra: &[&str], when: &str) {
        let mut args = vec!["plan", "--detailed-exitcode"];
        args.extend_from_slice(extra);
        let (code, text) = self.run(&args);
        assert_eq!(code, Some(0), "{when}: plan not empty:\n{text}");
    }

    /// Every platform token of the account: (id, name, resources, user uuid).
    fn platform_tokens(&self) -> Vec<(String, String, Vec<String>, String)> {
        let state = self.sandbox.snapshot();
        state.accounts[ACCOUNT]
            .platform_tokens
            .values()
            .map(|t| {
                (
                    t.token_id.clone(),
                    t.name.clone(),
                    t.resource.clone(),
                    t.user_uuid.clone(),
                )
            })
            .collect()
    }

    fn file_ids(&self, rel: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        secrets_in(&text)
            .iter()
            .map(|s| crate::support::id_of(s))
            .collect()
    }
}

/// The output of a run, checked for leaked secrets.
fn checked_text(out: &std::process::Output) -> String {
    let text = crate::support::text(out);
    check_text(&text);
    text
}

/// No token and no OAuth client secret in a run's output.
fn check_text(text: &str) {
    assert_no_secret(text);
    assert!(!text.contains("SECRETSECRET"), "{text}");
}

/// `examples/platform-tokens.yaml` with its URLs pointed at the sandbox.
fn example_for(w: &PlatformWorld) -> String {
    let example = std::fs::read_to_string("examples/platform-tokens.yaml").unwrap();
    let replaced = example
        .replace(
            "https://abc12345.live.dynatrace.com",
            &format!("{}/e/env1", w.base),
        )
        .replace(
            "    # api_base: https://api.dynatrace.com",
            &format!(
                "    api_base: {}\n    token_url: {}/sso/oauth2/token\n    #",
                w.base, w.base
            ),
        );
    assert_ne!(replaced, example);
    assert!(
        replaced.contains("api_base: http://127.0.0.1"),
        "{replaced}"
    );
    replaced
}

#[test]
fn the_platform_example_plans_and_applies_against_the_sandbox_and_converges() {
    let w = PlatformWorld::new("[platform-token:tokens:manage, platform-token:tokens:write]");
    w.write_spec(&example_for(&w));
    let (code, text) = w.run(&["plan"]);
    assert!(matches!(code, Some(0) | Some(2)), "{text}");
    assert!(!text.contains("no data for it"), "{text}");
    assert!(text.contains("log-reader"), "{text}");

    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    w.assert_plan_empty(&[], "after the first apply");
    // `--env prod` still reads the account: the platform tokens are there, nothing to do.
    w.assert_plan_empty(&["--env", "prod"], "with --env");
    w.assert_plan_empty(&["--account", "main"], "with --account");

    let tokens = w.platform_tokens();
    assert_eq!(tokens.len(), 3, "{tokens:#?}");
    let reader = tokens
        .iter()
        .find(|t| t.1.contains("log reader"))
        .expect("the log reader exists");
    assert_eq!(reader.2, ["urn:dtenvironment:env1".to_owned()]);
    assert_eq!(reader.3, SERVICE_USER, "the account's default owner");
    let settings = tokens
        .iter()
        .find(|t| t.1.starts_with("settings-automation"))
        .unwrap();
    assert_eq!(settings.2, [format!("urn:dtaccount:{ACCOUNT}")]);
    assert_eq!(settings.3, "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");

    // The Kubernetes Secret and the vault stand-in hold the two tokens.
    let held = w.kube.secret_value("siem", "dynatrace", "token").unwrap();
    let held = String::from_utf8(held).unwrap();
    assert_eq!(crate::support::id_of(held.trim()), reader.0);
    assert_eq!(
        w.file_ids("out/vault/secret_dynatrace_settings-automation"),
        std::slice::from_ref(&settings.0)
    );

    let operator = tokens
        .iter()
        .find(|t| t.1.starts_with("Dynatrace Operator"))
        .unwrap();
    let held = w
        .kube
        .secret_value("dynatrace", "dynakube", "apiToken")
        .unwrap();
    assert_eq!(
        crate::support::id_of(String::from_utf8(held).unwrap().trim()),
        operator.0
    );

    // A second apply changes nothing.
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(w.platform_tokens(), tokens);
    drop(w.rt);
}

const TWO_ENVIRONMENTS_AND_AN_ACCOUNT: &str = r#"version: 1
environments:
  prod: { url: "{BASE}/e/env1", token_env: DT_PROD_ADMIN_TOKEN }
  staging: { url: "{BASE}/e/env2", token_env: DT_STAGING_ADMIN_TOKEN }
accounts:
  main:
    uuid: 3f2b7c11-4c21-4d0d-9a3e-6a1c1a9e1e0d
    client_id_env: DT_OAUTH_CLIENT_ID
    client_secret_env: DT_OAUTH_CLIENT_SECRET
    default_owner: 9d5e3c2a-1b4f-4e6d-8a7c-2f0e1d3b5a6c
    api_base: "{BASE}"
    token_url: "{BASE}/sso/oauth2/token"
api_tokens:
  ingest-{{ where }}:
    for_each: { where: [prod, staging] }
    environments: ["{{ where }}"]
    scopes: [metrics.ingest]
    expires_in: 30d
    deliver:
      - file: { path: "out/{{ where }}-ingest" }
platform_tokens:
  reader-{{ where }}:
    for_each: { where: [prod, staging] }
    account: main
    resource: "{{ where }}"
    scopes: [storage:logs:read]
    expires_in: 30d
    rotate_before: 7d
    deliver:
      - file: { path: "out/{{ where }}-reader" }
"#;

#[test]
fn two_environments_and_one_account_apply_together_and_converge() {
    let w = PlatformWorld::new("[platform-token:tokens:manage, platform-token:tokens:write]");
    w.write_spec(TWO_ENVIRONMENTS_AND_AN_ACCOUNT);
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    w.assert_plan_empty(&[], "after the first apply");
    w.assert_plan_empty(&["--env", "staging"], "with --env staging");

    let tokens = w.platform_tokens();
    assert_eq!(tokens.len(), 2, "{tokens:#?}");
    for env in ["env1", "env2"] {
        let rel = if env == "env1" {
            "out/prod-reader"
        } else {
            "out/staging-reader"
        };
        let ids = w.file_ids(rel);
        let t = tokens.iter().find(|t| ids.contains(&t.0)).unwrap();
        assert_eq!(t.2, [format!("urn:dtenvironment:{env}")]);
    }
    let state = w.sandbox.snapshot();
    for (env, rel) in [("env1", "out/prod-ingest"), ("env2", "out/staging-ingest")] {
        let ids = w.file_ids(rel);
        assert_eq!(ids.len(), 1);
        assert!(state.environments[env].api_tokens.contains_key(&ids[0]));
    }

    // 25 days later (the sandbox's clock; the planner takes it from the Date header), the
    // platform tokens are within `rotate_before` and rotate; then the plan is empty again.
    w.sandbox.advance_clock(time::Duration::days(25)).unwrap();
    let (code, text) = w.run(&["plan", "--account", "main", "--env", "prod"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("expiring_in_5d") || text.contains("expiring in 5"),
        "{text}"
    );
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    w.assert_plan_empty(&[], "after the rotation");
    drop(w.rt);
}

#[test]
fn a_client_without_the_write_scope_gets_an_error_naming_it() {
    let w = PlatformWorld::new("[platform-token:tokens:manage]");
    w.write_spec(TWO_ENVIRONMENTS_AND_AN_ACCOUNT);
    // Reading needs only `manage`: the plan works.
    let (code, text) = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, Some(2), "{text}");
    let (code, text) = w.apply(&["--account", "main"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("platform-token:tokens:write"), "{text}");
    assert!(text.contains(CLIENT_ID), "{text}");
    assert!(text.contains("hint: grant the client"), "{text}");
    assert!(w.platform_tokens().is_empty());
    drop(w.rt);
}

const BOTH_SCOPES: &str = "[platform-token:tokens:manage, platform-token:tokens:write]";

#[test]
fn an_expired_platform_token_reported_active_is_shown_expired_and_replaced() {
    let w = PlatformWorld::new(BOTH_SCOPES);
    w.write_spec(TWO_ENVIRONMENTS_AND_AN_ACCOUNT);
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    let before = w.platform_tokens();
    // Past the 30-day expiry without a run in between: the account API still says ACTIVE.
    w.sandbox.advance_clock(time::Duration::days(31)).unwrap();
    let state = w.sandbox.snapshot();
    for t in state.accounts[ACCOUNT].platform_tokens.values() {
        assert_eq!(t.status, "ACTIVE");
        assert!(t.expiration_date.unwrap() <= state.now());
    }
    let (code, text) = w.run(&["inventory", "--format", "json"]);
    assert_eq!(code, Some(0), "{text}");
    let start = text.find('{').unwrap();
    let inventory: serde_json::Value = serde_json::from_str(&text[start..]).unwrap();
    let entries = inventory["entries"].as_array().expect("entries");
    let platform: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["kind"] == "platform_token")
        .collect();
    assert_eq!(platform.len(), 2, "{inventory:#}");
    for e in platform {
        assert!(
            e["classes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "expired"),
            "{e:#}"
        );
    }
    let (code, text) = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("reason: expired"), "{text}");
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    w.assert_plan_empty(&[], "after replacing the expired tokens");
    let after = w.platform_tokens();
    for (id, ..) in &before {
        let held = w.file_ids("out/prod-reader");
        assert!(!held.contains(id), "the expired token is still delivered");
    }
    assert!(after.len() >= 2);
    drop(w.rt);
}

const OPERATOR_CLASSIC: &str = r#"version: 1
environments:
  prod: { url: "{BASE}/e/env1", token_env: DT_PROD_ADMIN_TOKEN }
accounts:
  main:
    uuid: 3f2b7c11-4c21-4d0d-9a3e-6a1c1a9e1e0d
    client_id_env: DT_OAUTH_CLIENT_ID
    client_secret_env: DT_OAUTH_CLIENT_SECRET
    default_owner: 9d5e3c2a-1b4f-4e6d-8a7c-2f0e1d3b5a6c
    api_base: "{BASE}"
    token_url: "{BASE}/sso/oauth2/token"
api_tokens:
  operator:
    environments: [prod]
    preset: dynatrace-operator
    deliver:
      - kubernetes_secret: { context: prod, namespace: dynatrace, name: dynakube, key: apiToken }
"#;

const OPERATOR_PLATFORM: &str = r#"version: 1
environments:
  prod: { url: "{BASE}/e/env1", token_env: DT_PROD_ADMIN_TOKEN }
accounts:
  main:
    uuid: 3f2b7c11-4c21-4d0d-9a3e-6a1c1a9e1e0d
    client_id_env: DT_OAUTH_CLIENT_ID
    client_secret_env: DT_OAUTH_CLIENT_SECRET
    default_owner: 9d5e3c2a-1b4f-4e6d-8a7c-2f0e1d3b5a6c
    api_base: "{BASE}"
    token_url: "{BASE}/sso/oauth2/token"
platform_tokens:
  operator:
    account: main
    resource: prod
    preset: dynatrace-operator
    grace: 1d
    revoke: { disable: { delete_after: 7d } }
    deliver:
      - kubernetes_secret: { context: prod, namespace: dynatrace, name: dynakube, key: apiToken }
"#;

#[test]
fn the_operator_token_moves_from_classic_to_platform_and_the_classic_one_retires_after_the_grace() {
    let w = PlatformWorld::new(BOTH_SCOPES);
    w.write_spec(OPERATOR_CLASSIC);
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    let held = |w: &PlatformWorld| {
        let v = w
            .kube
            .secret_value("dynatrace", "dynakube", "apiToken")
            .unwrap();
        crate::support::id_of(String::from_utf8(v).unwrap().trim())
    };
    let classic = held(&w);
    assert!(classic.starts_with("dt0c01."), "{classic}");

    // The spec switches the key to a platform token with the platform preset.
    w.write_spec(OPERATOR_PLATFORM);
    let (code, text) = w.run(&["plan"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("migrated_to_platform"), "{text}");
    assert!(!text.contains("deleted_outside_git"), "{text}");
    let (_, text) = w.run(&["drift"]);
    assert!(
        text.contains("the key moved from a classic API token to a platform token"),
        "{text}"
    );
    assert!(!text.contains("deleted outside git"), "{text}");
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    let platform = held(&w);
    assert!(platform.starts_with("dt0s16."), "{platform}");
    let tokens = w.platform_tokens();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].0, platform);
    assert_eq!(tokens[0].2, ["urn:dtenvironment:env1".to_owned()]);
    let scopes = &w.sandbox.snapshot().accounts[ACCOUNT].platform_tokens[&platform].scope;
    assert!(
        scopes
            .iter()
            .any(|s| s == "fleet-management:oneagents:download"),
        "{scopes:?}"
    );
    // The classic token stays valid through the grace: nothing to do, one pending revoke.
    let classic_live = |w: &PlatformWorld| {
        w.sandbox.snapshot().environments["env1"]
            .api_tokens
            .get(&classic)
            .map(|t| t.enabled)
    };
    assert_eq!(classic_live(&w), Some(true));
    let (code, text) = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&classic),
        "the pending revoke names it: {text}"
    );

    // After the grace the classic token is revoked, and deleted after `delete_after`.
    w.sandbox.advance_clock(time::Duration::days(2)).unwrap();
    let (code, text) = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("migrated_to_platform"), "{text}");
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(classic_live(&w), Some(false));
    assert_eq!(held(&w), platform);
    w.assert_plan_empty(&[], "while the revoked classic token waits for deletion");
    w.sandbox.advance_clock(time::Duration::days(8)).unwrap();
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(classic_live(&w), None);
    w.assert_plan_empty(&[], "after the move");
    assert_eq!(held(&w), platform);
    drop(w.rt);
}

#[test]
fn an_environment_refusing_classic_tokens_says_so_and_points_at_platform_tokens() {
    let w = PlatformWorld::with(BOTH_SCOPES, true);
    w.write_spec(TWO_ENVIRONMENTS_AND_AN_ACCOUNT);
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "environment `staging`: this environment no longer allows creating classic API tokens"
        ),
        "{text}"
    );
    assert!(text.contains("platform_tokens:"), "{text}");
    assert!(text.contains("returned 403"), "{text}");
    // The other environment and the account were not held back.
    assert!(w.sandbox.snapshot().environments["env2"]
        .api_tokens
        .values()
        .all(|t| t.name == "admin2"));
    drop(w.rt);
}

#[test]
fn the_owner_budget_counts_every_token_of_the_owner_and_says_when_it_runs_out() {
    // 7 hand-made tokens + 2 managed = 9 of 10: room today, but the two readers rotate together
    // on 2026-06-24 and the second rotation needs an 11th token.
    let w = PlatformWorld::seeded(BOTH_SCOPES, false, 7);
    w.write_spec(TWO_ENVIRONMENTS_AND_AN_ACCOUNT);
    let (code, text) = w.run(&["plan"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "owner {SERVICE_USER} in account `main` runs out of platform tokens at 2026-06-24T00:00:00Z: it holds 9 of 10"
        )),
        "{text}"
    );
}

#[test]
fn creates_beyond_the_owner_limit_are_blocked_counting_unmanaged_tokens_by_owner_uuid() {
    // 9 hand-made tokens of the service user (the API reports them with an email `owner` and the
    // `userUuid`): the two creates would make 11.
    let w = PlatformWorld::seeded(BOTH_SCOPES, false, 9);
    w.write_spec(TWO_ENVIRONMENTS_AND_AN_ACCOUNT);
    let (_, text) = w.run(&["plan"]);
    assert!(text.contains("platform_token_limit"), "{text}");
    assert!(
        text.contains(&format!(
            "would give owner {SERVICE_USER} 11 platform tokens"
        )),
        "{text}"
    );
    let (code, text) = w.apply(&[]);
    assert_ne!(code, Some(0), "{text}");
    assert_eq!(
        w.platform_tokens().len(),
        9,
        "nothing created beyond the limit"
    );
}

/// One account and nothing else; two platform tokens that rotate every 2 days (expire in 4,
/// rotate 2 before, no grace, predecessors deleted), delivered to files under `{OUT}`.
const ACCOUNT_ONLY_ROTATING: &str = r#"version: 1
accounts:
  main:
    uuid: 3f2b7c11-4c21-4d0d-9a3e-6a1c1a9e1e0d
    client_id_env: DT_OAUTH_CLIENT_ID
    client_secret_env: DT_OAUTH_CLIENT_SECRET
    default_owner: 9d5e3c2a-1b4f-4e6d-8a7c-2f0e1d3b5a6c
    api_base: "{BASE}"
    token_url: "{BASE}/sso/oauth2/token"
defaults:
  expires_in: 4d
  rotate_before: 2d
  grace: 0s
  revoke: delete
platform_tokens:
  reader:
    account: main
    resource: account
    scopes: [storage:logs:read]
    deliver:
      - file: { path: "{OUT}/reader" }
  writer:
    account: main
    resource: account
    scopes: [storage:logs:write]
    deliver:
      - file: { path: "{OUT}/writer" }
"#;

impl PlatformWorld {
    /// A world whose spec is [`ACCOUNT_ONLY_ROTATING`], delivering under its `out/`.
    fn account_only() -> PlatformWorld {
        PlatformWorld::rotating(ACCOUNT_ONLY_ROTATING)
    }

    /// A world whose spec is `spec` with `{OUT}` its `out/` folder, named by absolute path
    /// so that a second checkout delivers to the same files.
    fn rotating(spec: &str) -> PlatformWorld {
        let w = PlatformWorld::new(BOTH_SCOPES);
        let out = w.path("out");
        w.write_spec(&spec.replace("{OUT}", &out.display().to_string()));
        w
    }

    /// This world's directory and a second checkout of its spec in a directory of its own
    /// (so a local lock of its own); the second lives as long as the returned guard.
    fn two_checkouts(&self) -> (tempfile::TempDir, [PathBuf; 2]) {
        let other = tempfile::tempdir().unwrap();
        std::fs::copy(
            self.path("tokensmith.yaml"),
            other.path().join("tokensmith.yaml"),
        )
        .unwrap();
        let dirs = [self.dir.path().to_path_buf(), other.path().to_path_buf()];
        (other, dirs)
    }

    /// `apply` from every one of `dirs` at once (see [`crate::support::race`]).
    fn race_applies(
        &self,
        dirs: &[PathBuf],
        lock_timeout: &str,
        locked: &str,
        when: &str,
    ) -> Vec<(RaceOutcome, String)> {
        let applies = dirs
            .iter()
            .map(|d| {
                self.command_in(
                    d,
                    &["apply", "--auto-approve", "--lock-timeout", lock_timeout],
                )
            })
            .collect();
        race(applies, locked, when, check_text)
    }

    /// `plan --detailed-exitcode` in `dir` exits 0.
    fn assert_plan_empty_in(&self, dir: &std::path::Path, when: &str) {
        let out = self
            .command_in(dir, &["plan", "--detailed-exitcode"])
            .output()
            .unwrap();
        let text = checked_text(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{when}: plan from {}:\n{text}",
            dir.display()
        );
    }

    /// After an account apply: no lease is left, and each file of [`ACCOUNT_ONLY_ROTATING`]
    /// holds one token, live, active and of its key (nothing revoked under a consumer).
    /// Returns the ids the files hold.
    fn check_account_files(&self, when: &str) -> Vec<String> {
        let tokens = self.sandbox.snapshot().accounts[ACCOUNT]
            .platform_tokens
            .clone();
        assert!(
            tokens
                .values()
                .all(|t| !t.name.contains("tokensmith.lease")),
            "{when}: a lease was left: {:?}",
            tokens.values().map(|t| &t.name).collect::<Vec<_>>()
        );
        let mut ids = Vec::new();
        for key in ["reader", "writer"] {
            let held = self.file_ids(&format!("out/{key}"));
            assert_eq!(held.len(), 1, "{when}: out/{key}");
            let t = tokens.get(&held[0]).unwrap_or_else(|| {
                panic!("{when}: out/{key} holds a token the account no longer has")
            });
            assert_eq!(t.status, "ACTIVE", "{when}: out/{key}");
            assert!(
                t.name.contains(&format!("[ts:{key}#")),
                "{when}: {}",
                t.name
            );
            ids.extend(held);
        }
        ids
    }
}

#[test]
fn two_checkouts_applying_to_one_account_never_both_act() {
    // Two checkouts of one spec in two directories (so two local locks) with only the account
    // in common: the lease kept in the account is all that keeps them apart. Round after round
    // both apply at once, failing fast on even rounds and waiting on odd ones, with the clock
    // moved so every round rotates both tokens.
    let w = PlatformWorld::account_only();
    let (_other, dirs) = w.two_checkouts();
    let (mut backed_off, mut waited_idle, mut rotations) = (0, 0, 0);
    let mut ids_before: Vec<String> = Vec::new();
    for round in 0..8 {
        if round > 0 {
            w.sandbox.advance_clock(time::Duration::days(2)).unwrap();
        }
        let timeout = if round % 2 == 0 { "0s" } else { "60s" };
        let when = format!("round {round}");
        let runs = w.race_applies(&dirs, timeout, "account `main` is locked by", &when);
        let mut acted = 0;
        for (outcome, _) in &runs {
            match outcome {
                RaceOutcome::Acted => acted += 1,
                RaceOutcome::WaitedIdle => waited_idle += 1,
                RaceOutcome::BackedOff => backed_off += 1,
            }
        }
        assert_eq!(
            acted,
            1,
            "round {round}: exactly one apply acts:\n{}",
            race_texts(&runs)
        );
        // No generation is left over either (`revoke: delete`).
        let ids = w.check_account_files(&format!("round {round}"));
        let count = w.sandbox.snapshot().accounts[ACCOUNT].platform_tokens.len();
        assert_eq!(count, 2, "round {round}: one token per key");
        for d in &dirs {
            w.assert_plan_empty_in(d, &when);
        }
        if round > 0 && ids != ids_before {
            rotations += 1;
        }
        ids_before = ids;
    }
    println!(
        "backed off {backed_off}, waited and found nothing {waited_idle}, rotations {rotations}"
    );
    assert_eq!(rotations, 7, "the clock should rotate every round");
    assert!(
        backed_off >= 1 && waited_idle >= 1,
        "both ways of losing were seen"
    );
}

#[test]
fn an_account_lease_held_elsewhere_blocks_names_its_holder_and_can_be_force_unlocked() {
    let w = PlatformWorld::account_only();
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    // Another machine's apply holds the account: its active lease, disabled, for an hour.
    let foreign = "dt0s16.FOREIGN1";
    w.sandbox
        .update(|state| {
            let tokens = &mut state.accounts.get_mut(ACCOUNT).unwrap().platform_tokens;
            let mut lease = tokens.values().next().unwrap().clone();
            lease.token_id = foreign.to_owned();
            lease.name =
                "tokensmith apply lease active ci@elsewhere pid 7 [ts:tokensmith.lease#1234567890]"
                    .to_owned();
            lease.status = "INACTIVE".to_owned();
            lease.expiration_date = Some(lease.created_at.plus(time::Duration::hours(100)));
            tokens.insert(foreign.to_owned(), lease);
        })
        .unwrap();
    w.sandbox.advance_clock(time::Duration::days(2)).unwrap();
    let before = w.platform_tokens();

    let (code, text) = w.apply(&["--lock-timeout", "0s"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("account `main` is locked by ci@elsewhere (lock 1234567890"),
        "{text}"
    );
    assert!(
        text.contains("tokensmith force-unlock account-main 1234567890"),
        "{text}"
    );
    assert_eq!(w.platform_tokens(), before, "nothing changed while locked");
    // The plan does not count the lease as a token of the spec, nor offer to delete it.
    let (code, text) = w.run(&["plan"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains(foreign), "{text}");

    let (code, text) = w.run(&["force-unlock", "account-main", "999"]);
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("not 999; nothing was released"), "{text}");
    let (code, text) = w.run(&["force-unlock", "account-main", "1234567890"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("released lock 1234567890 of account `main` (held by ci@elsewhere"),
        "{text}"
    );
    assert!(w.platform_tokens().iter().all(|t| t.0 != foreign));

    // Now the rotation the clock made due goes ahead, and the next plan is empty.
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("journal:"), "{text}");
    w.assert_plan_empty(&[], "after the rotation");
}

#[test]
fn an_apply_whose_only_changes_are_blocked_fails_and_changes_nothing() {
    // 9 hand-made tokens of the service user, and a spec that only wants two more: both creates
    // are blocked, so nothing is left to do, and that is a failure, not "No changes" and exit 0.
    let w = PlatformWorld::seeded(BOTH_SCOPES, false, 9);
    let out = w.path("out");
    w.write_spec(&ACCOUNT_ONLY_ROTATING.replace("{OUT}", &out.display().to_string()));
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("platform_token_limit"), "{text}");
    assert!(
        text.contains("refusing to apply a plan with blocking checks; nothing was changed"),
        "{text}"
    );
    assert_eq!(
        w.platform_tokens().len(),
        9,
        "nothing created, no lease left"
    );
}

#[test]
fn account_applies_under_failing_steps_leave_no_lease_and_the_next_apply_converges() {
    // Every kind of call of an account apply failing once (the lease's list, create and status
    // calls and the OAuth token among them: 5xx before the change, or the change made and the
    // answer dropped), then random 5xx and drops; the clock moves 2 days a
    // round so every round rotates. Whatever an apply under faults does, after the next clean
    // apply no lease is left, each file holds a live, active token of its key (nothing revoked
    // under a consumer) and the plan after it is empty.
    use tokensmith::sandbox::{FailPath, Faults, Rate, ServerError};
    let w = PlatformWorld::account_only();
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    let path = |suffix: &str, times: u32, drop: bool| Faults {
        fail_path: Some(FailPath {
            path_suffix: suffix.to_owned(),
            status: 503,
            times,
            drop_after_commit: drop,
        }),
        ..Faults::default()
    };
    let mut scenarios = Vec::new();
    // Once only: the client retries 5xx and lost answers of safe requests, with backoff.
    {
        let times = 1;
        for drop in [false, true] {
            scenarios.push(path("/platform-tokens", times, drop));
            scenarios.push(path("/status", times, drop));
            scenarios.push(path("/oauth2/token", times, drop));
        }
    }
    for seed in 1..=24 {
        scenarios.push(Faults {
            seed,
            server_error: Some(ServerError {
                rate: 0.1,
                status: 500,
            }),
            drop_after_commit: Some(Rate { rate: 0.1 }),
            ..Faults::default()
        });
    }
    let mut failed_applies = 0;
    for (i, faults) in scenarios.into_iter().enumerate() {
        w.sandbox.advance_clock(time::Duration::days(2)).unwrap();
        w.sandbox.set_faults(faults.clone()).unwrap();
        let (code, text) = w.apply(&[]);
        if code != Some(0) {
            failed_applies += 1;
            assert_eq!(code, Some(1), "scenario {i} {faults:?}:\n{text}");
            // One clear line: what failed, where; no cause repeated.
            let error = text.lines().find(|l| l.starts_with("error:")).unwrap_or("");
            assert_eq!(error.matches("account `main`").count(), 1, "{error}");
        }
        w.sandbox.set_faults(Faults::default()).unwrap();
        let (code, text) = w.apply(&["--lock-timeout", "0s"]);
        assert_eq!(
            code,
            Some(0),
            "scenario {i}: the clean apply after {faults:?}:\n{text}"
        );
        w.check_account_files(&format!("scenario {i}"));
        w.assert_plan_empty(&[], &format!("scenario {i} {faults:?}"));
    }
    println!("{failed_applies} applies under faults failed and were finished by the next one");
    assert!(
        failed_applies >= 10,
        "the faults did bite: {failed_applies}"
    );
}

/// Two environments and one account, every token rotating every 2 days and delivered to files
/// under `{OUT}` (absolute, so two checkouts deliver to the same files).
const MIXED_ROTATING: &str = r#"version: 1
environments:
  prod: { url: "{BASE}/e/env1", token_env: DT_PROD_ADMIN_TOKEN }
  staging: { url: "{BASE}/e/env2", token_env: DT_STAGING_ADMIN_TOKEN }
accounts:
  main:
    uuid: 3f2b7c11-4c21-4d0d-9a3e-6a1c1a9e1e0d
    client_id_env: DT_OAUTH_CLIENT_ID
    client_secret_env: DT_OAUTH_CLIENT_SECRET
    default_owner: 9d5e3c2a-1b4f-4e6d-8a7c-2f0e1d3b5a6c
    api_base: "{BASE}"
    token_url: "{BASE}/sso/oauth2/token"
defaults:
  expires_in: 4d
  rotate_before: 2d
  grace: 0s
  revoke: delete
api_tokens:
  ingest-{{ where }}:
    for_each: { where: [prod, staging] }
    environments: ["{{ where }}"]
    scopes: [metrics.ingest]
    deliver:
      - file: { path: "{OUT}/{{ where }}-ingest" }
platform_tokens:
  reader-{{ where }}:
    for_each: { where: [prod, staging] }
    account: main
    resource: "{{ where }}"
    scopes: [storage:logs:read]
    deliver:
      - file: { path: "{OUT}/{{ where }}-reader" }
"#;

#[test]
fn two_checkouts_applying_environments_and_an_account_at_once_never_both_act_nor_deadlock() {
    // What users mix: two environments and an account in one spec, applied from two checkouts
    // at once, both waiting for the locks. Each takes the environments' locks and leases, then
    // the account's, in the same order, so neither can hold what the other waits for: one
    // acts, the other waits and finds nothing to do. The clock moves 2 days a round, so every
    // round rotates all four tokens.
    let w = PlatformWorld::rotating(MIXED_ROTATING);
    let (_other, dirs) = w.two_checkouts();
    let mut held_before: Vec<String> = Vec::new();
    for round in 0..4 {
        if round > 0 {
            w.sandbox.advance_clock(time::Duration::days(2)).unwrap();
        }
        let when = format!("round {round}");
        // Waiting runs never back off; `race` fails the test if one does.
        let runs = w.race_applies(&dirs, "120s", "(no run backs off)", &when);
        let outcomes: Vec<RaceOutcome> = runs.iter().map(|(o, _)| *o).collect();
        assert!(
            outcomes.contains(&RaceOutcome::Acted) && outcomes.contains(&RaceOutcome::WaitedIdle),
            "round {round}: one acts, the other waits and finds nothing to do:\n{}",
            race_texts(&runs)
        );

        let state = w.sandbox.snapshot();
        for (env, name) in [("env1", "prod"), ("env2", "staging")] {
            let tokens = &state.environments[env].api_tokens;
            assert!(
                tokens
                    .values()
                    .all(|t| !t.name.contains("tokensmith.lease")),
                "round {round}: a lease was left in {env}"
            );
            let held = w.file_ids(&format!("out/{name}-ingest"));
            assert_eq!(held.len(), 1, "round {round}");
            assert!(
                tokens.get(&held[0]).is_some_and(|t| t.enabled),
                "round {round}: out/{name}-ingest holds a revoked token"
            );
        }
        let platform = &state.accounts[ACCOUNT].platform_tokens;
        assert!(
            platform
                .values()
                .all(|t| !t.name.contains("tokensmith.lease")),
            "round {round}: a lease was left in the account"
        );
        for name in ["prod", "staging"] {
            let held = w.file_ids(&format!("out/{name}-reader"));
            assert_eq!(held.len(), 1, "round {round}");
            assert!(
                platform.get(&held[0]).is_some_and(|t| t.status == "ACTIVE"),
                "round {round}: out/{name}-reader holds a revoked token"
            );
        }
        assert_eq!(
            platform.len(),
            2,
            "round {round}: one platform token per key"
        );
        // Every token rotated this round: no file holds what it held before.
        let held: Vec<String> = [
            "prod-ingest",
            "staging-ingest",
            "prod-reader",
            "staging-reader",
        ]
        .iter()
        .flat_map(|f| w.file_ids(&format!("out/{f}")))
        .collect();
        assert!(
            held.iter().all(|id| !held_before.contains(id)),
            "round {round}: {held:?} after {held_before:?}"
        );
        held_before = held;
        for d in &dirs {
            w.assert_plan_empty_in(d, &when);
        }
    }
}

#[test]
fn sigkilled_account_applies_never_leave_a_file_with_a_revoked_token_and_one_apply_recovers() {
    // Platform token rotations (`grace: 0s`, `revoke: delete`: the predecessor goes as soon as
    // its successor is delivered), each apply killed with SIGKILL right after the k-th request
    // the sandbox answers, k swept over every request a whole rotation makes (the OAuth token,
    // the lease, the reads, creates, deliveries between them, deletes, the lease's release):
    // where the kill lands follows from progress, not from a clock. After every kill each file
    // still holds a token the account has, active; one apply afterwards finishes the job: no
    // lease left, one token per key, and the plan after it is empty.
    use tokensmith::sandbox::{faults::Latency, Faults};
    let w = PlatformWorld::account_only();
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    // Each answer 20 ms late, so a kill lands before the next request is answered.
    let slow = |seed: u64| Faults {
        seed,
        latency: Some(Latency { ms: 20, rate: 1.0 }),
        ..Faults::default()
    };
    // The requests of one whole rotation.
    w.sandbox.advance_clock(time::Duration::days(2)).unwrap();
    w.sandbox.clear_request_log();
    let (code, text) = w.apply(&[]);
    assert_eq!(code, Some(0), "{text}");
    let requests = w.sandbox.request_log().len();
    assert!(requests >= 8, "{requests} requests");

    let files_hold_active_tokens = |when: &str| {
        let tokens = w.sandbox.snapshot().accounts[ACCOUNT]
            .platform_tokens
            .clone();
        for key in ["reader", "writer"] {
            for id in w.file_ids(&format!("out/{key}")) {
                let t = tokens.get(&id).unwrap_or_else(|| {
                    panic!("{when}: out/{key} holds {id}, which the account no longer has")
                });
                assert_eq!(t.status, "ACTIVE", "{when}: out/{key} holds {id}");
            }
        }
    };
    // Kills that left a rotation half done: a successor created, or a file already changed.
    let mut mid_rotation = 0;
    for k in 1..=requests {
        let when = format!("killed after request {k} of {requests}");
        let held_before = [w.file_ids("out/reader"), w.file_ids("out/writer")];
        w.sandbox.advance_clock(time::Duration::days(2)).unwrap();
        w.sandbox.set_faults(slow(k as u64)).unwrap();
        w.sandbox.clear_request_log();
        let mut child = w
            .command_in(w.dir.path(), &["apply", "--auto-approve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while w.sandbox.request_log().len() < k
            && child.try_wait().unwrap().is_none()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        w.sandbox.set_faults(Faults::default()).unwrap();
        files_hold_active_tokens(&format!("{when}, after the kill"));
        let managed = w.sandbox.snapshot().accounts[ACCOUNT]
            .platform_tokens
            .values()
            .filter(|t| t.name.contains("[ts:reader#") || t.name.contains("[ts:writer#"))
            .count();
        let changed = [w.file_ids("out/reader"), w.file_ids("out/writer")] != held_before;
        if managed > 2 || changed {
            mid_rotation += 1;
        }

        let (code, text) = w.apply(&[]);
        assert_eq!(code, Some(0), "{when}: recovery apply:\n{text}");
        w.check_account_files(&format!("{when}, after recovery"));
        let count = w.sandbox.snapshot().accounts[ACCOUNT].platform_tokens.len();
        assert_eq!(count, 2, "{when}: one token per key after recovery");
        w.assert_plan_empty(&[], &format!("{when}, after recovery"));
    }
    println!("{requests} kill points; {mid_rotation} kills left a rotation half done");
    assert!(
        mid_rotation >= 2,
        "only {mid_rotation} of {requests} kills came after the first create"
    );
}

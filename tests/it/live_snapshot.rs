//! `read_snapshot`: which calls it makes per environment, how it treats missing permissions,
//! the concurrency bound, and the default connector's credential handling.

use crate::support::http_stub as live_stub;
use crate::support::saturation::Saturation;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use live_stub::{fast_settings, start, Reply, Stub, MGMT_ID, MGMT_TOKEN};
use tokensmith::live::{
    read_snapshot, AccountApi, ApiTokenChange, Connector, CreatedToken, DefaultConnector, Deletion,
    EnvironmentApi, EnvironmentRead, EnvironmentWrite, LiveError, LiveResult, NewActiveGateToken,
    NewApiToken, SandboxEndpoint, SnapshotError, TenantTokens,
};
use tokensmith::model::dynatrace_messages as says;
use tokensmith::model::{
    Account, ActiveGateType, Desired, DesiredTenantToken, DesiredToken, Endpoint, EnvName,
    Environment, Home, LiveToken, Policy, Revoke, Rotation, Secret, SpecDuration, TokenDetails,
    TokenId, TokenKey, TokenKind, UnmanagedPolicy,
};

fn env(name: &str, endpoint: Endpoint, token_env: Option<&str>) -> Environment {
    Environment {
        name: EnvName::new(name),
        endpoint,
        token_env: token_env.map(str::to_owned),
    }
}

fn desired(envs: Vec<Environment>) -> Desired {
    Desired {
        environments: envs.into_iter().map(|e| (e.name.clone(), e)).collect(),
        accounts: BTreeMap::new(),
        tokens: Vec::new(),
        tenant_tokens: Vec::new(),
        unmanaged: UnmanagedPolicy::default(),
    }
}

fn activegate_token_in(env: &str) -> DesiredToken {
    DesiredToken {
        kind: TokenKind::ActivegateToken,
        key: TokenKey::parse("ag").unwrap(),
        home: Home::Environment(EnvName::new(env)),
        display_name: "ag".into(),
        scopes: Default::default(),
        details: TokenDetails::Activegate {
            activegate_type: ActiveGateType::Environment,
            seed: false,
        },
        policy: Policy {
            expires_in: None,
            rotation: Rotation::Never,
            grace: SpecDuration::from_days(1),
            revoke: Revoke::Delete,
            verify_usage: false,
        },
        adopt: None,
        deliver: Vec::new(),
    }
}

fn tenant_token_in(env: &str) -> DesiredTenantToken {
    DesiredTenantToken {
        environment: EnvName::new(env),
        rotate_every: None,
        grace: tokensmith::model::DEFAULT_TENANT_GRACE,
        on_foreign_rotation: None,
        activegates: Vec::new(),
        oneagents: Vec::new(),
    }
}

/// A stub serving every environment under `/e/<name>`; `connectioninfo` and the ActiveGate list
/// answer 403 for environments whose name starts with `weak`.
async fn dynatrace() -> Stub {
    start(|req, _| {
        let mut parts = req.path.splitn(4, '/');
        let (_, _, env, rest) = (parts.next(), parts.next(), parts.next().unwrap(), parts.next().unwrap());
        let weak = env.starts_with("weak");
        let token = |id: &str| {
            serde_json::json!({"id": id, "name": "t", "enabled": true, "owner": "o",
                "creationDate": "2026-01-01T00:00:00.000Z", "expirationDate": "2035-01-05T00:00:00.000Z",
                "personalAccessToken": false, "scopes": ["apiTokens.read"]})
        };
        let reply = match rest {
            "api/v2/apiTokens" => Reply::json(
                200,
                serde_json::json!({"totalCount": 2, "apiTokens": [token(MGMT_ID), token(&format!("dt0c01.{}", env.to_uppercase()))]})
                    .to_string(),
            ),
            "api/v2/activeGateTokens" if weak => Reply::error(
                403,
                &format!("{}activeGateTokenManagement.read (Read ActiveGate tokens)", says::MISSING_SCOPE_PREFIX),
            ),
            "api/v2/activeGateTokens" => Reply::json(200, r#"{"totalCount":0,"activeGateTokens":[]}"#),
            "api/v1/deployment/installer/agent/connectioninfo" if weak => Reply::error(
                403,
                &format!("{}InstallerDownload (PaaS integration - Installer download)", says::MISSING_SCOPE_PREFIX),
            ),
            "api/v1/deployment/installer/agent/connectioninfo" => Reply::json(
                200,
                format!(r#"{{"tenantUUID":"{env}","tenantToken":"tenant-of-{env}","communicationEndpoints":[]}}"#),
            ),
            _ => Reply::error(404, says::NO_ROUTE),
        };
        reply.header("Date", "Mon, 01 Jan 2035 12:00:00 GMT")
    })
    .await
}

fn url(stub: &Stub, env: &str) -> Endpoint {
    Endpoint::Url {
        base: format!("{}/e/{env}", stub.base),
    }
}

#[tokio::test]
async fn one_call_per_kind_per_environment_and_the_tenant_token_only_when_managed() {
    let stub = dynatrace().await;
    std::env::set_var("TS_TEST_SNAPSHOT_TOKEN", MGMT_TOKEN);
    let var = Some("TS_TEST_SNAPSHOT_TOKEN");
    let mut spec = desired(vec![
        env("alpha", url(&stub, "alpha"), var),
        env("beta", url(&stub, "beta"), var),
    ]);
    spec.tenant_tokens.push(tenant_token_in("alpha"));
    let connector = DefaultConnector::new(&fast_settings()).unwrap();

    let read = read_snapshot(&spec, &[], &connector, 4).await.unwrap();

    // The only warnings: the management token expires four days after the server's clock.
    assert_eq!(read.warnings.len(), 2, "{:#?}", read.warnings);
    assert!(read.warnings[0].starts_with("environment `alpha`: the management token dt0c01.MGMT"));
    assert!(read
        .warnings
        .iter()
        .all(|w| w.contains("expires at 2035-01-05")));
    // alpha: two lists, connectioninfo and the rotation status (404 here: an older version);
    // beta: two lists. The caller's id needs no call.
    assert_eq!(read.api_calls, 6);
    assert_eq!(stub.count(), 6);
    let alpha = &read.snapshot.environments[&EnvName::new("alpha")];
    let beta = &read.snapshot.environments[&EnvName::new("beta")];
    assert_eq!(alpha.caller, Some(TokenId::new(MGMT_ID)));
    assert_eq!(alpha.api_tokens.len(), 2);
    assert_eq!(
        alpha.tenant_token,
        Some(tokensmith::model::target::tenant_fingerprint(
            "tenant-of-alpha"
        ))
    );
    assert_eq!(beta.tenant_token, None);
    assert_eq!(
        alpha.tenant_rotation_active, None,
        "404: no status endpoint"
    );
    assert_eq!(
        alpha.server_time,
        Some(time::macros::datetime!(2035-01-01 12:00:00 UTC))
    );
    let lists: Vec<_> = stub
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/api/v2/apiTokens"))
        .collect();
    assert_eq!(lists.len(), 2);
    assert!(lists.iter().all(|r| r.param("pageSize") == Some("10000")));
}

#[tokio::test]
async fn missing_permissions_for_unmanaged_things_are_warnings() {
    let stub = dynatrace().await;
    std::env::set_var("TS_TEST_WEAK_TOKEN", MGMT_TOKEN);
    let mut spec = desired(vec![env(
        "weak",
        url(&stub, "weak"),
        Some("TS_TEST_WEAK_TOKEN"),
    )]);
    spec.tenant_tokens.push(tenant_token_in("weak"));
    let connector = DefaultConnector::new(&fast_settings()).unwrap();

    let read = read_snapshot(&spec, &[], &connector, 4).await.unwrap();

    let weak = &read.snapshot.environments[&EnvName::new("weak")];
    assert_eq!(weak.tenant_token, None);
    assert!(weak.activegate_tokens.is_empty());
    assert_eq!(read.warnings.len(), 3, "{:#?}", read.warnings);
    assert!(read.warnings[0].contains("ActiveGate tokens not listed"));
    assert!(read.warnings[1].contains("lacks `InstallerDownload`"));
    // The management token expires on 2035-01-05, four days after the server's clock.
    assert!(
        read.warnings[2].contains("management token dt0c01.MGMT"),
        "{}",
        read.warnings[2]
    );
    assert!(read.warnings[2].contains("TS_TEST_WEAK_TOKEN"));
    for w in &read.warnings {
        assert!(!w.contains("SECRET"), "{w}");
    }

    // When the spec manages ActiveGate tokens there, the missing scope is an error.
    spec.tokens.push(activegate_token_in("weak"));
    let err = read_snapshot(&spec, &[], &connector, 4).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("environment `weak`: GET /e/weak/api/v2/activeGateTokens returned 403"),
        "{text}"
    );
}

#[tokio::test]
async fn credentials_are_named_when_missing() {
    let stub = dynatrace().await;
    let spec = desired(vec![env(
        "prod",
        url(&stub, "prod"),
        Some("TS_TEST_UNSET_VARIABLE"),
    )]);
    let connector = DefaultConnector::new(&fast_settings()).unwrap();
    let err = read_snapshot(&spec, &[], &connector, 4).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment `prod`: the variable `TS_TEST_UNSET_VARIABLE` is not set or empty; hint: export TS_TEST_UNSET_VARIABLE=... with the environment's management token"
    );
    assert_eq!(stub.count(), 0);

    let mut spec = desired(vec![]);
    std::env::set_var("TS_TEST_CLIENT_ID", "dt0s02.X");
    spec.accounts.insert(
        "main".into(),
        Account {
            name: "main".into(),
            uuid: "u".into(),
            client_id_env: "TS_TEST_CLIENT_ID".into(),
            client_secret_env: "TS_TEST_CLIENT_SECRET_UNSET".into(),
            api_base: stub.base.clone(),
            token_url: format!("{}/sso", stub.base),
            oauth_scopes: Default::default(),
        },
    );
    let err = read_snapshot(&spec, &[], &connector, 4).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("account `main`: the variable `TS_TEST_CLIENT_SECRET_UNSET` is not set"),
        "{err}"
    );
}

#[tokio::test]
async fn env_filter_reads_only_those_and_rejects_unknown_names() {
    let stub = dynatrace().await;
    std::env::set_var("TS_TEST_FILTER_TOKEN", MGMT_TOKEN);
    let var = Some("TS_TEST_FILTER_TOKEN");
    let spec = desired(vec![
        env("alpha", url(&stub, "alpha"), var),
        env("beta", url(&stub, "beta"), var),
    ]);
    let connector = DefaultConnector::new(&fast_settings()).unwrap();
    let read = read_snapshot(&spec, &[EnvName::new("beta")], &connector, 4)
        .await
        .unwrap();
    assert_eq!(
        read.snapshot.environments.keys().collect::<Vec<_>>(),
        [&EnvName::new("beta")]
    );
    assert!(stub
        .requests()
        .iter()
        .all(|r| r.path.starts_with("/e/beta/")));

    let err = read_snapshot(&spec, &[EnvName::new("gamma")], &connector, 4)
        .await
        .unwrap_err();
    assert!(matches!(err, SnapshotError::UnknownEnvironment { .. }));
    assert_eq!(
        err.to_string(),
        "unknown environment `gamma`; hint: the spec declares alpha, beta"
    );
}

#[tokio::test]
async fn sandbox_endpoints_go_through_the_resolver() {
    let stub = dynatrace().await;
    let spec = desired(vec![env(
        "demo",
        Endpoint::Sandbox {
            name: "demo".into(),
        },
        None,
    )]);

    let err = read_snapshot(
        &spec,
        &[],
        &DefaultConnector::new(&fast_settings()).unwrap(),
        4,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no sandbox resolver"), "{err}");

    let base = format!("{}/e/demo", stub.base);
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = asked.clone();
    let connector = DefaultConnector::new(&fast_settings())
        .unwrap()
        .with_sandbox_resolver(Arc::new(move |name: &str| {
            log.lock().unwrap().push(name.to_owned());
            let base = base.clone();
            async move {
                Ok(SandboxEndpoint {
                    base_url: base,
                    management_token: Secret::from(MGMT_TOKEN),
                    account_api_base: String::new(),
                    token_url: String::new(),
                    oauth_client: None,
                })
            }
            .boxed()
        }));
    let read = read_snapshot(&spec, &[], &connector, 4).await.unwrap();
    assert_eq!(*asked.lock().unwrap(), ["demo"]);
    assert_eq!(
        read.snapshot.environments[&EnvName::new("demo")].caller,
        Some(TokenId::new(MGMT_ID))
    );
    assert_eq!(
        stub.requests()[0].header("authorization"),
        Some(format!("Api-Token {MGMT_TOKEN}").as_str())
    );
}

/// An in-memory environment whose token list passes `gate` (one group for all environments),
/// which counts how many environments are being read at once.
struct SlowEnvironment {
    name: EnvName,
    gate: Arc<Saturation>,
}

impl EnvironmentRead for SlowEnvironment {
    fn name(&self) -> &EnvName {
        &self.name
    }
    fn list_api_tokens(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>> {
        async move {
            self.gate.pass(0).await;
            Ok(Vec::new())
        }
        .boxed()
    }
    fn get_api_token<'a>(&'a self, _: &'a TokenId) -> BoxFuture<'a, LiveResult<Option<LiveToken>>> {
        async { Ok(None) }.boxed()
    }
    fn lookup<'a>(&'a self, _: &'a Secret<String>) -> BoxFuture<'a, LiveResult<Option<LiveToken>>> {
        async { Ok(None) }.boxed()
    }
    fn caller_id(&self) -> BoxFuture<'_, LiveResult<Option<TokenId>>> {
        async { Ok(None) }.boxed()
    }
    fn list_activegate_tokens(&self) -> BoxFuture<'_, LiveResult<Vec<LiveToken>>> {
        async { Ok(Vec::new()) }.boxed()
    }
    fn tenant_token_fingerprint(&self) -> BoxFuture<'_, LiveResult<String>> {
        async { Ok("fp".to_owned()) }.boxed()
    }
    fn server_time(&self) -> Option<time::OffsetDateTime> {
        None
    }
}

fn unused<'a, T: Send + 'a>() -> BoxFuture<'a, LiveResult<T>> {
    async { panic!("the snapshot reader must not write") }.boxed()
}

impl EnvironmentWrite for SlowEnvironment {
    fn create_api_token<'a>(
        &'a self,
        _: &'a NewApiToken,
    ) -> BoxFuture<'a, LiveResult<CreatedToken>> {
        unused()
    }
    fn update_api_token<'a>(
        &'a self,
        _: &'a TokenId,
        _: &'a ApiTokenChange,
    ) -> BoxFuture<'a, LiveResult<()>> {
        unused()
    }
    fn delete_api_token<'a>(&'a self, _: &'a TokenId) -> BoxFuture<'a, LiveResult<Deletion>> {
        unused()
    }
    fn create_activegate_token<'a>(
        &'a self,
        _: &'a NewActiveGateToken,
    ) -> BoxFuture<'a, LiveResult<CreatedToken>> {
        unused()
    }
    fn delete_activegate_token<'a>(
        &'a self,
        _: &'a TokenId,
    ) -> BoxFuture<'a, LiveResult<Deletion>> {
        unused()
    }
    fn start_tenant_rotation(&self) -> BoxFuture<'_, LiveResult<TenantTokens>> {
        unused()
    }
    fn finish_tenant_rotation(&self) -> BoxFuture<'_, LiveResult<TenantTokens>> {
        unused()
    }
    fn cancel_tenant_rotation(&self) -> BoxFuture<'_, LiveResult<TenantTokens>> {
        unused()
    }
}

struct FakeConnector {
    gate: Arc<Saturation>,
}

impl Connector for FakeConnector {
    fn environment<'a>(
        &'a self,
        env: &'a Environment,
    ) -> BoxFuture<'a, Result<Arc<dyn EnvironmentApi>, LiveError>> {
        async move {
            Ok(Arc::new(SlowEnvironment {
                name: env.name.clone(),
                gate: self.gate.clone(),
            }) as Arc<dyn EnvironmentApi>)
        }
        .boxed()
    }
    fn account<'a>(
        &'a self,
        _: &'a Account,
    ) -> BoxFuture<'a, Result<Arc<dyn AccountApi>, LiveError>> {
        async { panic!("no accounts in this test") }.boxed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environments_are_read_concurrently_within_the_bound() {
    let envs = (0..10)
        .map(|i| {
            env(
                &format!("env-{i}"),
                Endpoint::Sandbox { name: "x".into() },
                None,
            )
        })
        .collect();
    let spec = desired(envs);
    for bound in [1, 3] {
        let connector = FakeConnector {
            gate: Arc::new(Saturation::new(1, bound, 10, Duration::from_secs(2))),
        };
        let read = read_snapshot(&spec, &[], &connector, bound).await.unwrap();
        assert_eq!(read.snapshot.environments.len(), 10);
        let seen = connector.gate.counts();
        assert_eq!(seen.done, [10]);
        // No environment is answered before `bound` are being read: the bound is reached,
        // never passed.
        assert_eq!(seen.max, [bound]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_environments_take_two_calls_each() {
    let page = {
        let tokens: Vec<_> = (0..200)
            .map(|i| {
                serde_json::json!({"id": format!("dt0c01.T{i:023}"), "name": format!("t{i} [ts:t{i}#1]"),
                    "enabled": true, "owner": "o", "creationDate": "2026-01-01T00:00:00.000Z",
                    "expirationDate": "2027-01-01T00:00:00.000Z", "lastUsedDate": "2026-06-01T00:00:00.000Z",
                    "modifiedDate": "2026-02-01T00:00:00.000Z", "personalAccessToken": false,
                    "scopes": ["metrics.ingest", "logs.ingest"]})
            })
            .collect();
        serde_json::json!({"totalCount": 200, "pageSize": 10000, "apiTokens": tokens}).to_string()
    };
    let stub = start(move |req, _| {
        let reply = if req.path.ends_with("/apiTokens") {
            Reply::json(200, page.clone())
        } else {
            Reply::json(200, r#"{"totalCount":0,"activeGateTokens":[]}"#)
        };
        reply.delayed(Duration::from_millis(50))
    })
    .await;
    std::env::set_var("TS_TEST_BULK_TOKEN", MGMT_TOKEN);
    let envs = (0..100)
        .map(|i| {
            let name = format!("env-{i:03}");
            let endpoint = url(&stub, &name);
            env(&name, endpoint, Some("TS_TEST_BULK_TOKEN"))
        })
        .collect();
    let spec = desired(envs);
    let connector = DefaultConnector::new(&fast_settings()).unwrap();
    let started = std::time::Instant::now();
    let read = read_snapshot(&spec, &[], &connector, 16).await.unwrap();
    let elapsed = started.elapsed();
    // The lower bound: one list per environment and token kind.
    assert_eq!(read.api_calls, 200);
    assert_eq!(read.snapshot.environments.len(), 100);
    assert!(read
        .snapshot
        .environments
        .values()
        .all(|e| e.api_tokens.len() == 200));
    // 100 environments, 16 at a time, 50 ms per call: at least 7 rounds.
    assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
    eprintln!(
        "100 environments x 200 tokens, 50 ms latency, concurrency 16: {elapsed:?}, 200 calls"
    );
}

#[tokio::test]
async fn sandbox_accounts_use_the_resolver_urls_and_client() {
    let stub = start(|req, _| match req.path.as_str() {
        "/sso/token" => {
            let body = String::from_utf8(req.body.clone()).unwrap();
            assert!(body.contains("client_id=sandbox-client"), "{body}");
            Reply::json(200, r#"{"access_token":"a","expires_in":300}"#)
        }
        "/iam/v1/accounts/u-1/platform-tokens" => Reply::json(
            200,
            r#"{"total":1,"results":[{"tokenId":"dt0s16.SANDBOX1","name":"p","status":"ACTIVE"}]}"#,
        ),
        other => panic!("unexpected {other}"),
    })
    .await;
    let mut spec = desired(vec![]);
    spec.accounts.insert(
        "demo".into(),
        Account {
            name: "demo".into(),
            uuid: "u-1".into(),
            client_id_env: "TS_TEST_SANDBOX_CLIENT_ID_UNSET".into(),
            client_secret_env: "TS_TEST_SANDBOX_CLIENT_SECRET_UNSET".into(),
            api_base: "sandbox://demo".into(),
            token_url: "sandbox://demo".into(),
            oauth_scopes: Default::default(),
        },
    );
    let base = stub.base.clone();
    let connector = DefaultConnector::new(&fast_settings())
        .unwrap()
        .with_sandbox_resolver(Arc::new(move |_: &str| {
            let base = base.clone();
            async move {
                Ok(SandboxEndpoint {
                    base_url: base.clone(),
                    management_token: Secret::from(MGMT_TOKEN),
                    account_api_base: base.clone(),
                    token_url: format!("{base}/sso/token"),
                    oauth_client: Some(("sandbox-client".into(), Secret::from("s"))),
                })
            }
            .boxed()
        }));
    let read = read_snapshot(&spec, &[], &connector, 2).await.unwrap();
    let tokens = &read.snapshot.accounts["demo"].platform_tokens;
    assert_eq!(tokens[0].id.as_str(), "dt0s16.SANDBOX1");
    assert_eq!(read.api_calls, 2);
}

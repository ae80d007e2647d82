//! Behaviour of the emulated APIs over real HTTP: access tokens, errors, pagination, rotation,
//! expiry, ActiveGate and platform tokens, environments, the Date header, the request log, and
//! the embedded sandbox's persistence.

use crate::support::sandbox_client as sandbox_support;

use std::collections::HashSet;

use reqwest::Method;
use sandbox_support::*;
use serde_json::{json, Value};
use tokensmith::model::dynatrace_messages as says;
use tokensmith::sandbox::embedded::EmbeddedSandbox;

const TOKENS: &str = "/api/v2/apiTokens";

#[tokio::test]
async fn create_get_update_delete_round_trip() {
    let env = start().await;
    let admin = tok('A');
    let created = env
        .post(TOKENS, &admin, json!({"name": "ci [ts:ci#1]", "scopes": ["metrics.ingest", "logs.ingest"], "expirationDate": "now+14d", "unknownProperty": 1}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let secret = created.body["token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = secret.split('.').collect();
    assert_eq!(
        (parts[0], parts[1].len(), parts[2].len()),
        ("dt0c01", 24, 64)
    );
    assert_eq!(id, format!("{}.{}", parts[0], parts[1]));
    assert_eq!(created.body["expirationDate"], "2026-06-15T00:00:00.000Z");

    let got = env.get(&format!("{TOKENS}/{id}"), &admin).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body["owner"], "admin@example.com",
        "owner is the caller's owner"
    );
    assert_eq!(got.body["enabled"], true);
    assert_eq!(got.body["personalAccessToken"], false);
    assert_eq!(got.body["creationDate"], "2026-06-01T00:00:00.000Z");
    assert!(
        got.body.get("token").is_none(),
        "the secret is returned only at creation"
    );
    assert!(got.body.get("modifiedDate").is_none());

    env.admin(Method::POST, "/clock/advance", Some(json!({"by": "1h"})))
        .await;
    let put = env
        .put(&format!("{TOKENS}/{id}"), &admin, json!({"enabled": false}))
        .await;
    assert_eq!(put.status, 204);
    let got = env.get(&format!("{TOKENS}/{id}"), &admin).await;
    assert_eq!(got.body["enabled"], false);
    assert!(
        got.body.get("modifiedDate").is_none(),
        "enable/disable is not a modification"
    );

    let put = env
        .put(
            &format!("{TOKENS}/{id}"),
            &admin,
            json!({"scopes": ["metrics.read"], "name": "renamed"}),
        )
        .await;
    assert_eq!(put.status, 204);
    let got = env.get(&format!("{TOKENS}/{id}"), &admin).await;
    assert_eq!(
        got.body["scopes"],
        json!(["metrics.read"]),
        "scopes are replaced wholesale"
    );
    assert_eq!(got.body["name"], "renamed");
    assert_eq!(got.body["modifiedDate"], "2026-06-01T01:00:00.000Z");

    // Delete by the full secret; afterwards the id is unknown.
    let del = env.delete(&format!("{TOKENS}/{secret}"), &admin).await;
    assert_eq!(del.status, 204);
    let gone = env.get(&format!("{TOKENS}/{id}"), &admin).await;
    assert_eq!(gone.status, 404);
    assert_eq!(error_message(&gone).0, 404);
    let again = env.delete(&format!("{TOKENS}/{id}"), &admin).await;
    assert_eq!(again.status, 404);
}

#[tokio::test]
async fn authentication_and_scope_errors_use_the_recorded_envelopes() {
    let env = start().await;
    let missing = env.send(env.req(Method::GET, TOKENS, None)).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.body,
        json!({"error": {"code": 401, "message": says::MISSING_AUTHORIZATION}})
    );

    let failed = json!({"error": {"code": 401, "message": says::AUTHENTICATION_FAILED}});
    for bad in [
        tok('Z'),
        "not-a-token".to_owned(),
        format!("{}X", &tok('A')[..tok('A').len() - 1]),
    ] {
        let a = env.get(TOKENS, &bad).await;
        assert_eq!((a.status, &a.body), (401, &failed), "{bad}");
    }
    let disabled = env.get(TOKENS, &tok('C')).await;
    assert_eq!((disabled.status, &disabled.body), (401, &failed));
    let bearer = env
        .send(
            env.req(Method::GET, TOKENS, None)
                .header("Authorization", format!("Bearer {}", tok('A'))),
        )
        .await;
    assert_eq!(bearer.status, 401);

    // Expired by the clock: valid today, rejected after advancing two days.
    assert_eq!(env.get(TOKENS, &tok('D')).await.status, 200);
    env.admin(Method::POST, "/clock/advance", Some(json!({"by": "2d"})))
        .await;
    let expired = env.get(TOKENS, &tok('D')).await;
    assert_eq!((expired.status, &expired.body), (401, &failed));
    // Still listed until deleted.
    let list = env
        .get(&format!("{TOKENS}?fields=%2BexpirationDate"), &tok('A'))
        .await;
    assert!(list.body["apiTokens"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "expiring"));

    // The discouraged query parameter works too.
    let q = env
        .send(
            env.client
                .get(format!("{}{TOKENS}?api-token={}", env.base, tok('B'))),
        )
        .await;
    assert_eq!(q.status, 200);

    let forbidden = env
        .post(
            TOKENS,
            &tok('B'),
            json!({"name": "x", "scopes": ["metrics.read"]}),
        )
        .await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        forbidden.body,
        json!({"error": {"code": 403, "message": format!("{}apiTokens.write (Write API tokens)", says::MISSING_SCOPE_PREFIX)}})
    );
    let forbidden = env
        .post(
            "/api/v2/activeGateTokens",
            &tok('B'),
            json!({"name": "x", "activeGateType": "ENVIRONMENT"}),
        )
        .await;
    assert_eq!(
        error_message(&forbidden),
        (403, format!("{}activeGateTokenManagement.create (Create ActiveGate tokens), activeGateTokenManagement.write (Write ActiveGate tokens)", says::MISSING_SCOPE_PREFIX))
    );
    let forbidden = env
        .post("/api/v2/tenantTokenRotation/start", &tok('B'), json!({}))
        .await;
    assert_eq!(forbidden.status, 403);
    let forbidden = env
        .get(
            "/api/v1/deployment/installer/agent/connectioninfo",
            &tok('B'),
        )
        .await;
    assert_eq!(
        error_message(&forbidden),
        (
            403,
            format!(
                "{}InstallerDownload (PaaS integration - Installer download)",
                says::MISSING_SCOPE_PREFIX
            )
        )
    );
}

fn violation_paths(a: &Answer) -> Vec<String> {
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.body["error"]["code"], 400);
    a.body["error"]["constraintViolations"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|v| v["path"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn validation_errors_are_400_with_constraint_violations() {
    let env = start().await;
    let admin = tok('A');
    let cases = [
        (
            json!({"name": "x", "scopes": ["metrics.read", "bogus.scope"]}),
            "scopes[1]",
        ),
        (
            json!({"name": "x", "scopes": ["ViewDashboard"]}),
            "scopes[0]",
        ),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x"}), "scopes"),
        (json!({"scopes": ["metrics.read"]}), "name"),
        (json!({"name": "   ", "scopes": ["metrics.read"]}), "name"),
        (
            json!({"name": "x".repeat(101), "scopes": ["metrics.read"]}),
            "name",
        ),
        (
            json!({"name": "x", "scopes": ["metrics.read"], "expirationDate": "now-1d"}),
            "expirationDate",
        ),
        (
            json!({"name": "x", "scopes": ["metrics.read"], "expirationDate": "2020-01-01T00:00:00Z"}),
            "expirationDate",
        ),
        (
            json!({"name": "x", "scopes": ["metrics.read"], "expirationDate": "tomorrow"}),
            "expirationDate",
        ),
        (
            json!({"name": "x", "scopes": ["InstallerDownload"], "personalAccessToken": true}),
            "scopes[0]",
        ),
    ];
    for (body, path) in cases {
        let a = env.post(TOKENS, &admin, body.clone()).await;
        assert_eq!(violation_paths(&a), vec![path.to_owned()], "{body}");
        assert_eq!(a.body["error"]["message"], says::CONSTRAINTS_VIOLATED);
        assert_eq!(
            a.body["error"]["constraintViolations"][0]["parameterLocation"],
            "PAYLOAD_BODY"
        );
    }
    let suggestion = env
        .post(
            TOKENS,
            &admin,
            json!({"name": "x", "scopes": ["apiToken.read"]}),
        )
        .await;
    assert!(
        suggestion.text.contains("did you mean 'apiTokens.read'"),
        "{}",
        suggestion.text
    );
    // A PAT with PAT scopes is fine.
    let pat = env
        .post(
            TOKENS,
            &admin,
            json!({"name": "x", "scopes": ["metrics.read"], "personalAccessToken": true}),
        )
        .await;
    assert_eq!(pat.status, 201);

    let not_json = env
        .send(
            env.req(Method::POST, TOKENS, Some(&admin))
                .header("content-type", "application/json")
                .body("{nope"),
        )
        .await;
    assert_eq!(not_json.status, 400);
    assert_eq!(error_message(&not_json).0, 400);

    for (query, path) in [
        ("pageSize=99", "pageSize"),
        ("pageSize=10001", "pageSize"),
        ("pageSize=abc", "pageSize"),
        ("sort=owner", "sort"),
        ("fields=%2Bsecret", "fields"),
        ("apiTokenSelector=color(%22red%22)", "apiTokenSelector"),
        ("from=yesterday", "from"),
        ("nextPageKey=abc&pageSize=100", "nextPageKey"),
        ("nextPageKey=garbage", "nextPageKey"),
    ] {
        let a = env.get(&format!("{TOKENS}?{query}"), &admin).await;
        assert_eq!(violation_paths(&a), vec![path.to_owned()], "{query}");
        assert_eq!(
            a.body["error"]["constraintViolations"][0]["parameterLocation"],
            "QUERY"
        );
    }
    let ag = env
        .get("/api/v2/activeGateTokens?pageSize=3001", &admin)
        .await;
    assert_eq!(violation_paths(&ag), vec!["pageSize".to_owned()]);

    let unknown = env.get("/api/v2/nothingHere", &admin).await;
    assert_eq!(
        unknown.body,
        json!({"error": {"code": 404, "message": says::NO_ROUTE}})
    );
    let unknown_env = env.get("/e/nope/api/v2/apiTokens", &admin).await;
    assert_eq!(unknown_env.status, 404);
    let unknown_id = env
        .get(&format!("{TOKENS}/dt0c01.NOSUCHTOKEN"), &admin)
        .await;
    assert_eq!(error_message(&unknown_id).0, 404);
    let wrong_method = env.send(env.req(Method::PATCH, TOKENS, Some(&admin))).await;
    assert_eq!(wrong_method.status, 405);
}

#[tokio::test]
async fn the_calling_token_cannot_be_deleted_or_disabled() {
    let env = start().await;
    let admin = tok('A');
    let id = id_of(&admin);
    let del = env.delete(&format!("{TOKENS}/{id}"), &admin).await;
    assert_eq!(del.status, 400, "{}", del.text);
    let del = env.delete(&format!("{TOKENS}/{admin}"), &admin).await;
    assert_eq!(del.status, 400);
    let dis = env
        .put(&format!("{TOKENS}/{id}"), &admin, json!({"enabled": false}))
        .await;
    assert_eq!(dis.status, 400);
    // Renaming or narrowing itself is allowed (only disabling and deleting are refused).
    assert_eq!(
        env.put(&format!("{TOKENS}/{id}"), &admin, json!({"name": "admin"}))
            .await
            .status,
        204
    );
    // Other tokens can be.
    assert_eq!(
        env.delete(&format!("{TOKENS}/{}", id_of(&tok('B'))), &admin)
            .await
            .status,
        204
    );
    assert_eq!(env.get(TOKENS, &admin).await.status, 200);
}

#[tokio::test]
async fn every_call_records_last_use() {
    let env = start().await;
    env.admin(Method::POST, "/clock/advance", Some(json!({"by": "3h"})))
        .await;
    // A 403 still counts as a use: authentication succeeded.
    env.post(
        TOKENS,
        &tok('B'),
        json!({"name": "x", "scopes": ["metrics.read"]}),
    )
    .await;
    let looked = env
        .post(
            &format!("{TOKENS}/lookup"),
            &tok('A'),
            json!({"token": tok('B')}),
        )
        .await;
    assert_eq!(looked.status, 200);
    assert_eq!(looked.body["lastUsedDate"], "2026-06-01T03:00:00.000Z");
    assert_eq!(looked.body["lastUsedIpAddress"], "127.0.0.1");
    assert_eq!(looked.body["scopes"], json!(["apiTokens.read"]));
    let unknown = env
        .post(
            &format!("{TOKENS}/lookup"),
            &tok('A'),
            json!({"token": tok('Q')}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    // Lookup needs no particular scope.
    let any = env
        .post(
            &format!("{TOKENS}/lookup"),
            &tok('B'),
            json!({"token": tok('B')}),
        )
        .await;
    assert_eq!(any.status, 200);
}

#[tokio::test]
async fn list_parameters_filter_sort_and_shape() {
    let env = start().await;
    let admin = tok('A');
    let names = |a: &Answer| -> Vec<String> {
        a.body["apiTokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = env.get(TOKENS, &admin).await;
    assert_eq!(all.body["totalCount"], 4);
    assert_eq!(all.body["pageSize"], 200);
    assert!(all.body.get("nextPageKey").is_none());
    // Default order: newest first; default fields only.
    assert_eq!(names(&all), ["expiring", "disabled", "reader", "admin"]);
    let first = all.body["apiTokens"][0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["creationDate", "enabled", "id", "name", "owner"]);

    let shaped = env
        .get(
            &format!("{TOKENS}?fields=%2Bscopes,-owner,%2BexpirationDate&sort=name"),
            &admin,
        )
        .await;
    assert_eq!(names(&shaped), ["admin", "disabled", "expiring", "reader"]);
    let t = &shaped.body["apiTokens"][2];
    assert!(t.get("owner").is_none() && t.get("scopes").is_some());
    assert_eq!(t["expirationDate"], "2026-06-02T00:00:00.000Z");

    let exact = env.get(&format!("{TOKENS}?fields=name"), &admin).await;
    let mut keys: Vec<String> = exact.body["apiTokens"][0]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    keys.sort();
    assert_eq!(keys, ["id", "name"]);

    let by_owner = env
        .get(
            &format!("{TOKENS}?apiTokenSelector=owner(%22reader@example.com%22)"),
            &admin,
        )
        .await;
    assert_eq!(names(&by_owner), ["reader"]);
    let by_scope = env
        .get(
            &format!(
                "{TOKENS}?apiTokenSelector=scope(%22tenantTokenRotation.write%22,%22nothing%22)"
            ),
            &admin,
        )
        .await;
    assert_eq!(names(&by_scope), ["admin"]);
    let pats = env
        .get(
            &format!("{TOKENS}?apiTokenSelector=personalAccessToken(true)"),
            &admin,
        )
        .await;
    assert_eq!(pats.body["totalCount"], 0);

    // from/to filter on last use: only the caller has been used so far.
    env.admin(Method::POST, "/clock/advance", Some(json!({"by": "1h"})))
        .await;
    let used = env.get(&format!("{TOKENS}?from=now-30m"), &admin).await;
    assert_eq!(names(&used), ["admin"]);
    let never = env
        .get(&format!("{TOKENS}?to=2026-05-01T00:00:00Z"), &admin)
        .await;
    assert_eq!(never.body["totalCount"], 0);
    let sort_used = env
        .get(&format!("{TOKENS}?sort=%2BlastUsedDate"), &admin)
        .await;
    assert_eq!(
        names(&sort_used).last().unwrap(),
        "admin",
        "never-used tokens sort first"
    );
    let sort_exp = env
        .get(&format!("{TOKENS}?sort=-expirationDate"), &admin)
        .await;
    assert_eq!(
        names(&sort_exp).last().unwrap(),
        "expiring",
        "non-expiring tokens sort first"
    );
}

#[tokio::test]
async fn pagination_across_25000_tokens_is_complete_and_stable() {
    let seed = format!(
        "start_time: 2026-06-01T00:00:00Z\nfrozen_clock: true\nenvironments:\n  big:\n    api_tokens:\n      - {{ name: admin, token: \"{}\", scopes: [apiTokens.read, apiTokens.write] }}\n    generated_api_tokens: {{ count: 25000, name_prefix: bulk }}\n",
        tok('A')
    );
    let env = start_with(&seed).await;
    let admin = tok('A');
    let mut first = env
        .get(&format!("{TOKENS}?pageSize=1000&fields=%2Bscopes"), &admin)
        .await;
    assert_eq!(first.body["totalCount"], 25001);
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut pages = 0;
    let mut deleted: Option<String> = None;
    loop {
        pages += 1;
        for t in first.body["apiTokens"].as_array().unwrap() {
            assert!(
                t.get("scopes").is_some(),
                "fields carry over to later pages"
            );
            seen.push((
                t["creationDate"].as_str().unwrap().to_owned(),
                t["id"].as_str().unwrap().to_owned(),
            ));
        }
        if pages == 2 {
            // Concurrent writers: new tokens (newest, so before the cursor) and a deletion of a
            // token on a later page must not make the walk repeat or skip anything else.
            for i in 0..5 {
                let c = env
                    .post(
                        TOKENS,
                        &admin,
                        json!({"name": format!("late-{i}"), "scopes": ["metrics.read"]}),
                    )
                    .await;
                assert_eq!(c.status, 201);
            }
            let later = env
                .get(
                    &format!("{TOKENS}?pageSize=100&sort=%2BcreationDate"),
                    &admin,
                )
                .await;
            let victim = later.body["apiTokens"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            assert_eq!(
                env.delete(&format!("{TOKENS}/{victim}"), &admin)
                    .await
                    .status,
                204
            );
            deleted = Some(victim);
        }
        let Some(next) = first
            .body
            .get("nextPageKey")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            break;
        };
        assert_eq!(first.body["apiTokens"].as_array().unwrap().len(), 1000);
        // Follow-up requests carry only the key.
        first = env
            .get(&format!("{TOKENS}?nextPageKey={next}"), &admin)
            .await;
        assert_eq!(first.status, 200, "{}", first.text);
    }
    assert_eq!(
        pages, 25,
        "25000 tokens remain visible after the deletion: 25 full pages"
    );
    let ids: HashSet<&str> = seen.iter().map(|(_, i)| i.as_str()).collect();
    assert_eq!(ids.len(), seen.len(), "no token appears twice");
    assert_eq!(
        seen.len(),
        25000,
        "25001 at start, minus the one deleted ahead of the cursor"
    );
    assert!(!ids.contains(deleted.unwrap().as_str()));
    assert!(seen.iter().all(|(_, id)| id.starts_with("dt0c01.")));
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first across pages");
}

/// The client's classification of Dynatrace's answers, against the emulator's answers: the
/// applier decides on these kinds (a rotation already running continues, none running is done,
/// a 404 on delete is already gone).
#[tokio::test]
async fn the_live_client_classifies_the_sandbox_answers() {
    use tokensmith::live::{
        ApiFailure, ClientSettings, Deletion, EnvironmentClient, EnvironmentRead, EnvironmentWrite,
        Transport,
    };
    use tokensmith::model::{EnvName, Secret, TokenId};

    let env = start().await;
    let transport = Transport::new(&ClientSettings::default()).unwrap();
    let as_token = |t: String| {
        EnvironmentClient::new(EnvName::new("env1"), &env.base, Secret::new(t), &transport).unwrap()
    };
    let admin = as_token(tok('A'));
    fn failure<T: std::fmt::Debug>(r: Result<T, tokensmith::live::LiveError>) -> ApiFailure {
        r.unwrap_err().failure()
    }

    assert_eq!(
        failure(admin.finish_tenant_rotation().await),
        ApiFailure::NoRotationRunning
    );
    assert_eq!(
        failure(admin.cancel_tenant_rotation().await),
        ApiFailure::NoRotationRunning
    );
    admin.start_tenant_rotation().await.unwrap();
    assert_eq!(
        failure(admin.start_tenant_rotation().await),
        ApiFailure::RotationAlreadyRunning
    );
    admin.cancel_tenant_rotation().await.unwrap();

    let unknown = TokenId::new(id_of(&tok('Q')));
    assert_eq!(
        admin.delete_api_token(&unknown).await.unwrap(),
        Deletion::AlreadyGone
    );
    assert!(admin.get_api_token(&unknown).await.unwrap().is_none());
    assert_eq!(
        failure(as_token(tok('B')).list_activegate_tokens().await),
        ApiFailure::ScopeMissing
    );
    assert_eq!(
        failure(as_token(tok('Z')).list_api_tokens().await),
        ApiFailure::Unauthenticated
    );
    assert_eq!(
        failure(as_token(tok('C')).list_api_tokens().await),
        ApiFailure::Unauthenticated,
        "a disabled token"
    );
}

#[tokio::test]
async fn tenant_token_rotation_state_machine() {
    let env = start().await;
    let admin = tok('A');
    let rot = |step: &str| format!("/api/v2/tenantTokenRotation/{step}");
    let info = "/api/v1/deployment/installer/agent/connectioninfo";
    let accepted = |v: &str| {
        let body = json!({"token": v});
        let env = &env;
        async move { env.admin(Method::POST, "/use", Some(body)).await.status == 200 }
    };

    assert_eq!(
        error_message(&env.post(&rot("finish"), &admin, json!({})).await),
        (400, says::NO_ROTATION_TO_FINISH.into())
    );
    assert_eq!(
        error_message(&env.post(&rot("cancel"), &admin, json!({})).await),
        (400, says::NO_ROTATION_TO_CANCEL.into())
    );
    assert_eq!(
        env.get(info, &admin).await.body["tenantToken"],
        "tenantoriginal000000"
    );

    let started = env
        .send(env.req(Method::POST, &rot("start"), Some(&admin)))
        .await;
    assert_eq!(started.status, 200);
    let new = started.body["active"]["value"].as_str().unwrap().to_owned();
    assert_eq!(started.body["old"]["value"], "tenantoriginal000000");
    assert_ne!(new, "tenantoriginal000000");
    assert_eq!(
        env.get(info, &admin).await.body["tenantToken"],
        new.as_str(),
        "connectioninfo hands out the new token"
    );
    let gw = env
        .get(
            "/api/v1/deployment/installer/gateway/connectioninfo",
            &admin,
        )
        .await;
    assert_eq!(gw.body["tenantToken"], new.as_str());
    assert!(
        accepted(&new).await && accepted("tenantoriginal000000").await,
        "both are valid mid-rotation"
    );
    assert_eq!(
        error_message(&env.post(&rot("start"), &admin, json!({})).await),
        (400, says::ROTATION_ALREADY_RUNNING.into())
    );

    let cancelled = env.post(&rot("cancel"), &admin, json!({})).await;
    assert_eq!(
        cancelled.body,
        json!({"active": {"value": "tenantoriginal000000"}, "old": {"value": null}})
    );
    assert!(!accepted(&new).await && accepted("tenantoriginal000000").await);

    let started = env.post(&rot("start"), &admin, json!({})).await;
    let new = started.body["active"]["value"].as_str().unwrap().to_owned();
    let finished = env.post(&rot("finish"), &admin, json!({})).await;
    assert_eq!(
        finished.body,
        json!({"active": {"value": new}, "old": {"value": "tenantoriginal000000"}})
    );
    assert!(
        accepted(&new).await && !accepted("tenantoriginal000000").await,
        "finish invalidates the old token"
    );
    assert_eq!(
        error_message(&env.post(&rot("finish"), &admin, json!({})).await).0,
        400
    );
}

#[tokio::test]
async fn activegate_tokens() {
    let env = start().await;
    let admin = tok('A');
    let ag = "/api/v2/activeGateTokens";
    let created = env.post(ag, &admin, json!({"name": "ag-1", "activeGateType": "ENVIRONMENT", "expirationDate": "2026-08-01T00:00:00Z", "seedToken": false})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let secret = created.body["token"].as_str().unwrap();
    let parts: Vec<&str> = secret.split('.').collect();
    assert_eq!(
        (parts[0], parts[1].len(), parts[2].len()),
        ("dt0g02", 8, 64)
    );
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["expirationDate"], "2026-08-01T00:00:00.000Z");

    for (body, path) in [
        (
            json!({"name": "x", "activeGateType": "ENVIRONMENT", "expirationDate": "now+731d"}),
            "expirationDate",
        ),
        (
            json!({"name": "x", "activeGateType": "ENVIRONMENT", "expirationDate": "now-1m"}),
            "expirationDate",
        ),
        (json!({"name": "x"}), "activeGateType"),
        (
            json!({"name": "x", "activeGateType": "GALAXY"}),
            "activeGateType",
        ),
        (json!({"activeGateType": "CLUSTER"}), "name"),
    ] {
        assert_eq!(
            violation_paths(&env.post(ag, &admin, body.clone()).await),
            vec![path.to_owned()],
            "{body}"
        );
    }
    assert_eq!(
        env.post(
            ag,
            &admin,
            json!({"name": "c", "activeGateType": "CLUSTER", "expirationDate": "now+729d"})
        )
        .await
        .status,
        201
    );

    let got = env.get(&format!("{ag}/{id}"), &admin).await;
    assert_eq!(got.body["owner"], "admin@example.com");
    assert_eq!(got.body["activeGateType"], "ENVIRONMENT");
    let list = env.get(ag, &admin).await;
    assert_eq!(list.body["totalCount"], 2);
    assert_eq!(list.body["pageSize"], 100);
    assert_eq!(
        env.put(&format!("{ag}/{id}"), &admin, json!({"name": "y"}))
            .await
            .status,
        405,
        "no update endpoint"
    );
    assert_eq!(env.delete(&format!("{ag}/{id}"), &admin).await.status, 204);
    assert_eq!(env.get(&format!("{ag}/{id}"), &admin).await.status, 404);
    assert_eq!(env.get(ag, &tok('B')).await.status, 403);
}

#[tokio::test]
async fn platform_tokens_with_oauth() {
    let env = start().await;
    let token_url = format!("{}/sso/oauth2/token", env.base);
    let bad = env
        .send(env.client.post(&token_url).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
        ]))
        .await;
    assert_eq!(
        (bad.status, bad.body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let grant = env
        .send(
            env.client
                .post(&token_url)
                .form(&[("grant_type", "password")]),
        )
        .await;
    assert_eq!(grant.status, 400);

    let bearer = env.bearer().await;
    let base = format!("{}/iam/v1/accounts/{ACCOUNT}/platform-tokens", env.base);
    let auth = |r: reqwest::RequestBuilder| r.header("Authorization", format!("Bearer {bearer}"));
    let none = env.send(env.client.get(&base)).await;
    assert_eq!(none.status, 401);

    let mut ids = Vec::new();
    for i in 0..10 {
        let c = env.send(auth(env.client.post(&base)).json(&json!({"name": format!("p{i}"), "scope": ["storage:logs:read"], "resource": [format!("urn:dtaccount:{ACCOUNT}")]}))).await;
        assert_eq!(c.status, 200, "{}", c.text);
        let token = c.body["token"].as_str().unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(
            (parts[0], parts[1].len(), parts[2].len()),
            ("dt0s16", 8, 64)
        );
        assert_eq!(c.body["tokenId"], format!("{}.{}", parts[0], parts[1]));
        ids.push(c.body["tokenId"].as_str().unwrap().to_owned());
    }
    let eleventh = env
        .send(
            auth(env.client.post(&base))
                .json(&json!({"name": "p10", "scope": ["storage:logs:read"]})),
        )
        .await;
    assert_eq!(violation_paths(&eleventh), vec!["userUuid".to_owned()]);
    assert!(eleventh.text.contains("at most 10"));
    let long = env
        .send(auth(env.client.post(&base)).json(&json!({"name": "n".repeat(256), "scope": ["a"]})))
        .await;
    assert!(violation_paths(&long).contains(&"name".to_owned()));

    let list = env
        .send(auth(env.client.get(format!("{base}?size=3&page=2"))))
        .await;
    assert_eq!(
        (
            list.body["total"].as_u64(),
            list.body["pageNumber"].as_u64(),
            list.body["results"].as_array().unwrap().len()
        ),
        (Some(10), Some(2), 3)
    );
    let first = &list.body["results"][0];
    assert_eq!(first["accountUuid"], ACCOUNT);
    assert_eq!(first["owner"], "owner@example.com");
    assert_eq!(first["status"], "ACTIVE");

    let exp = env
        .send(
            auth(env.client.put(format!("{base}/{}/expiration-date", ids[0])))
                .json(&json!({"expirationDate": "2027-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(exp.status, 200);
    let st = env
        .send(
            auth(env.client.put(format!("{base}/{}/status", ids[0])))
                .json(&json!({"status": "INACTIVE"})),
        )
        .await;
    assert_eq!(st.status, 204);
    let found = env
        .send(auth(
            env.client.get(format!("{base}?searchTerm={}", ids[0])),
        ))
        .await;
    assert_eq!(
        found.body["results"][0]["expirationDate"],
        "2027-01-01T00:00:00Z"
    );
    assert_eq!(found.body["results"][0]["status"], "INACTIVE");
    assert_eq!(
        env.send(auth(env.client.delete(format!("{base}/{}", ids[0]))))
            .await
            .status,
        200
    );
    assert_eq!(
        env.send(auth(env.client.delete(format!("{base}/{}", ids[0]))))
            .await
            .status,
        404
    );
    // With one deleted there is room again.
    let again = env
        .send(
            auth(env.client.post(&base))
                .json(&json!({"name": "p11", "scope": ["storage:logs:read"]})),
        )
        .await;
    assert_eq!(again.status, 200);

    // Another account's path is refused; the bearer expires with the sandbox clock.
    let other = env
        .send(auth(env.client.get(format!(
            "{}/iam/v1/accounts/00000000-0000-4000-8000-000000000000/platform-tokens",
            env.base
        ))))
        .await;
    assert_eq!(other.status, 404);
    env.admin(Method::POST, "/clock/advance", Some(json!({"by": "6m"})))
        .await;
    assert_eq!(env.send(auth(env.client.get(&base))).await.status, 401);
}

#[tokio::test]
async fn environments_by_path_and_host() {
    let env = start().await;
    let list2 = env.get("/e/env2/api/v2/apiTokens", &tok('E')).await;
    assert_eq!(list2.status, 200);
    assert_eq!(list2.body["apiTokens"][0]["name"], "admin2");
    let by_host = env
        .send(
            env.req(Method::GET, TOKENS, Some(&tok('E')))
                .header("Host", "env2.localhost"),
        )
        .await;
    assert_eq!(by_host.status, 200);
    assert_eq!(by_host.body["apiTokens"][0]["name"], "admin2");
    // Tokens belong to one environment.
    assert_eq!(env.get(TOKENS, &tok('E')).await.status, 401);
    assert_eq!(
        env.get("/e/env2/api/v2/apiTokens", &tok('A')).await.status,
        401
    );
    let info = env
        .get(
            "/e/env2/api/v1/deployment/installer/agent/connectioninfo",
            &tok('E'),
        )
        .await;
    assert_eq!(info.body["tenantUUID"], "env2");
    assert!(info.body["communicationEndpoints"][0]
        .as_str()
        .unwrap()
        .ends_with("/e/env2/communication"));

    let created = env.admin(Method::POST, "/environments", Some(json!({"id": "env3", "api_tokens": [{"name": "a3", "token": tok('F'), "scopes": ["apiTokens.read"]}]}))).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        env.get("/e/env3/api/v2/apiTokens", &tok('F')).await.status,
        200
    );
    assert_eq!(
        env.admin(Method::POST, "/environments", Some(json!({"id": "env3"})))
            .await
            .status,
        409
    );
}

#[tokio::test]
async fn the_date_header_follows_the_sandbox_clock() {
    let env = start().await;
    let a = env.get(TOKENS, &tok('A')).await;
    assert_eq!(a.headers["date"], "Mon, 01 Jun 2026 00:00:00 GMT");
    let moved = env
        .admin(Method::POST, "/clock/advance", Some(json!({"by": "10d"})))
        .await;
    assert_eq!(moved.body["now"], "2026-06-11T00:00:00.000Z");
    let err = env.send(env.req(Method::GET, TOKENS, None)).await;
    assert_eq!(
        err.headers["date"], "Thu, 11 Jun 2026 00:00:00 GMT",
        "errors carry it too"
    );
    let set = env
        .admin(
            Method::POST,
            "/clock/set",
            Some(json!({"now": "2027-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(set.body["now"], "2027-01-01T00:00:00.000Z");
    assert_eq!(env.sandbox.now().year(), 2027);
}

#[tokio::test]
async fn secrets_never_reach_the_request_log_or_the_state_dump() {
    let env = start().await;
    let created = env
        .post(
            TOKENS,
            &tok('A'),
            json!({"name": "x", "scopes": ["metrics.read"]}),
        )
        .await;
    let secret = created.body["token"].as_str().unwrap().to_owned();
    env.delete(&format!("{TOKENS}/{secret}"), &tok('A')).await;
    env.send(
        env.client
            .get(format!("{}{TOKENS}?api-token={}", env.base, tok('B'))),
    )
    .await;
    env.post("/api/v2/tenantTokenRotation/start", &tok('A'), json!({}))
        .await;

    let log = env.admin(Method::GET, "/requests", None).await;
    let text = log.text;
    let secret_part = secret.rsplit('.').next().unwrap();
    assert!(!text.contains(secret_part), "{text}");
    assert!(!text.contains(&"B".repeat(64)));
    assert!(text.contains("<redacted>"));
    let entries = log.body["requests"].as_array().unwrap();
    assert_eq!(entries[0]["method"], "POST");
    assert_eq!(entries[0]["status"], 201);
    assert_eq!(entries[1]["status"], 204);

    let dump = env.admin(Method::GET, "/state", None).await.text;
    for s in [
        secret_part,
        &"A".repeat(64),
        "tenantoriginal000000",
        CLIENT_SECRET,
    ] {
        assert!(!dump.contains(s), "state dump leaks {s}");
    }
    assert!(dump.contains("secret_sha256") || dump.contains("secretSha256"));
}

#[tokio::test]
async fn reset_replaces_the_world() {
    let env = start().await;
    let seed = format!("environments:\n  fresh:\n    api_tokens:\n      - {{ name: only, token: \"{}\", scopes: [apiTokens.read] }}\n", tok('G'));
    let r = env
        .send(
            env.client
                .post(format!("{}/__sandbox/reset", env.base))
                .body(seed),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(env.get(TOKENS, &tok('A')).await.status, 401);
    assert_eq!(env.get(TOKENS, &tok('G')).await.body["totalCount"], 1);
}

#[tokio::test]
async fn embedded_sandbox_persists_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (id, mgmt, base_a) = {
        let sb = EmbeddedSandbox::start("demo", dir.path()).unwrap();
        assert!(dir.path().join("demo.json").exists());
        let mgmt = sb.management_token();
        let r = client
            .post(format!("{}/api/v2/apiTokens", sb.base_url()))
            .header("Authorization", format!("Api-Token {}", mgmt.expose()))
            .json(&json!({"name": "persisted", "scopes": ["metrics.ingest"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        sb.sandbox().advance_clock(time::Duration::days(5)).unwrap();
        let lookup = client
            .post(format!("{}/api/v2/apiTokens/lookup", sb.base_url()))
            .header("Authorization", format!("Api-Token {}", mgmt.expose()))
            .json(&json!({"token": mgmt.expose()}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        for scope in [
            "apiTokens.read",
            "apiTokens.write",
            "activeGateTokenManagement.read",
            "activeGateTokenManagement.create",
            "activeGateTokenManagement.write",
            "tenantTokenRotation.write",
            "InstallerDownload",
        ] {
            assert!(
                lookup["scopes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s == scope),
                "{scope}"
            );
        }
        let info = client
            .get(format!(
                "{}/api/v1/deployment/installer/agent/connectioninfo",
                sb.base_url()
            ))
            .header("Authorization", format!("Api-Token {}", mgmt.expose()))
            .send()
            .await
            .unwrap();
        assert_eq!(info.status(), 200);
        assert!(sb.token_url().ends_with("/sso/oauth2/token"));
        (id, mgmt.expose().clone(), sb.base_url())
    };
    // The first server is gone, pooled keep-alive connections included.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(client
        .get(format!("{base_a}/api/v2/apiTokens"))
        .send()
        .await
        .is_err());

    let sb = EmbeddedSandbox::start("demo", dir.path()).unwrap();
    assert_eq!(sb.management_token().expose(), &mgmt);
    let got = client
        .get(format!("{}/api/v2/apiTokens/{id}", sb.base_url()))
        .header("Authorization", format!("Api-Token {mgmt}"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let date = got.headers()["date"].to_str().unwrap().to_owned();
    let now = time::OffsetDateTime::now_utc();
    assert!(
        sb.sandbox().now() - now > time::Duration::days(4),
        "the advanced clock persisted ({date})"
    );

    // Platform tokens through the demo account's OAuth client.
    let grant = client
        .post(sb.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &sb.client_id()),
            ("client_secret", sb.client_secret().expose()),
        ])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let bearer = grant["access_token"].as_str().unwrap();
    let list = client
        .get(format!(
            "{}/iam/v1/accounts/{}/platform-tokens",
            sb.account_api_base(),
            sb.account_uuid()
        ))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);

    let bad = EmbeddedSandbox::start("not/ok", dir.path());
    assert!(bad.is_err());
}

/// `tokensmith sandbox` as a user runs it: prints where it listens and the seeded management
/// token, serves the seed, keeps changes in `--state` across restarts.
#[tokio::test]
async fn the_sandbox_command_serves_a_seed_and_keeps_its_state() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sandbox/seed.yaml");
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tokensmith"))
            .args([
                "sandbox",
                "--listen",
                "127.0.0.1:0",
                "--seed",
                seed,
                "--state",
            ])
            .arg(&state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = Vec::new();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        loop {
            let mut line = String::new();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "the sandbox exited early: {lines:?}"
            );
            let done = line.starts_with("press Ctrl-C");
            lines.push(line);
            if done {
                break;
            }
        }
        let url = lines[0]
            .split("listening on ")
            .nth(1)
            .unwrap()
            .trim()
            .to_owned();
        (child, url, lines.concat())
    };
    let mgmt = "dt0c01.PYCDYBK377OXTZQ6SVIZX3OR.O7NZQDG4W5LLTZQLI3N4FVU2I5XX2BZN3KIR2GSHYL7SN5PKZJLI6UFH3REOSFHY";
    let client = reqwest::Client::new();

    let (mut child, url, banner) = start();
    assert!(
        banner.contains("environment abc12345 (default)"),
        "{banner}"
    );
    assert!(
        banner.contains(&format!(
            "export DT_API_TOKEN='{mgmt}'   # from the seed file"
        )),
        "{banner}"
    );
    assert!(banner.contains("/__sandbox"));
    let created = client
        .post(format!("{url}/api/v2/apiTokens"))
        .header("Authorization", format!("Api-Token {mgmt}"))
        .json(&json!({"name": "survives restarts", "scopes": ["metrics.read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, url, banner) = start();
    assert!(
        banner.contains("state loaded from the state file"),
        "{banner}"
    );
    let got = client
        .get(format!("{url}/api/v2/apiTokens/{id}"))
        .header("Authorization", format!("Api-Token {mgmt}"))
        .send()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(got.status(), 200);
    let state_text = std::fs::read_to_string(&state).unwrap();
    assert!(
        !state_text.contains("O7NZQDG4W5LLTZQLI3N4FVU2I5XX2BZN"),
        "the state keeps fingerprints, not secrets"
    );
}

const INGEST: &str = "/api/v2/metrics/ingest";

/// A fresh access token with `metrics.ingest`, created through the API with `admin`.
async fn ingest_token(env: &Env, base_path: &str, admin: &str) -> String {
    let created = env
        .post(
            &format!("{base_path}{TOKENS}"),
            admin,
            json!({"name": "ingest", "scopes": ["metrics.ingest"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.body["token"].as_str().unwrap().to_owned()
}

async fn ingest(env: &Env, path: &str, token: &str, body: &str) -> Answer {
    env.send(
        env.req(Method::POST, path, Some(token))
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body.to_owned()),
    )
    .await
}

async fn data_points(env: &Env, query: &str) -> Value {
    let a = env
        .admin(Method::GET, &format!("/metrics{query}"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

#[tokio::test]
async fn metrics_ingest_accepts_lines_and_keeps_the_points() {
    let env = start().await;
    let token = ingest_token(&env, "", &tok('A')).await;
    // Sandbox time is frozen at 2026-06-01T00:00:00Z; one point carries its own timestamp.
    let five_min_ago = 1_780_271_700_000_i64;
    let body = format!(
        "# comment and metadata lines are skipped\n\
         #cpu.temperature gauge dt.meta.unit=Celsius\n\
         \n\
         cpu.temperature,Host=\"web 1\",cpu=0 42.5\n\
         cpu.temperature,host=web-2 gauge,17 {five_min_ago}\n\
         req.latency gauge,min=1,max=9,sum=20,count=4\n\
         req.count,route=/x\\,y count,delta=3\n"
    );
    let a = ingest(&env, INGEST, &token, &body).await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(
        a.body,
        json!({"linesOk": 4, "linesInvalid": 0, "error": null})
    );
    assert!(a.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));

    let dump = data_points(&env, "").await;
    assert_eq!(dump["environment"], "env1");
    assert_eq!(dump["totalCount"], 4);
    assert_eq!(
        dump["dataPoints"],
        json!([
            {"metricKey": "cpu.temperature", "dimensions": {"host": "web 1", "cpu": "0"},
             "type": "gauge", "value": 42.5, "timestamp": "2026-06-01T00:00:00.000Z"},
            {"metricKey": "cpu.temperature", "dimensions": {"host": "web-2"},
             "type": "gauge", "value": 17.0, "timestamp": "2026-05-31T23:55:00.000Z"},
            {"metricKey": "req.latency", "dimensions": {},
             "type": "summary", "min": 1.0, "max": 9.0, "sum": 20.0, "count": 4,
             "timestamp": "2026-06-01T00:00:00.000Z"},
            {"metricKey": "req.count", "dimensions": {"route": "/x,y"},
             "type": "count", "delta": 3.0, "timestamp": "2026-06-01T00:00:00.000Z"},
        ])
    );
    // The same points are in the state dump; the other environment has none.
    let state = env.admin(Method::GET, "/state", None).await;
    assert_eq!(
        state.body["environments"]["env1"]["data_points"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        data_points(&env, "?environment=env2").await["totalCount"],
        0
    );

    // Managed path: the point lands in env2 only, and a token of env1 is unknown there.
    let token2 = ingest_token(&env, "/e/env2", &tok('E')).await;
    let a = ingest(
        &env,
        &format!("/e/env2{INGEST}"),
        &token2,
        "env2.metric 1\n",
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.text);
    let a = ingest(&env, &format!("/e/env2{INGEST}"), &token, "env2.metric 1\n").await;
    assert_eq!(a.status, 401);
    let env2 = data_points(&env, "?environment=env2").await;
    assert_eq!(env2["totalCount"], 1);
    assert_eq!(env2["dataPoints"][0]["metricKey"], "env2.metric");
    assert_eq!(data_points(&env, "").await["totalCount"], 4);

    // Only the last 1000 points are kept.
    let many: String = (0..1005).map(|i| format!("bulk.metric {i}\n")).collect();
    let a = ingest(&env, INGEST, &token, &many).await;
    assert_eq!(a.body["linesOk"], 1005);
    let dump = data_points(&env, "").await;
    assert_eq!(dump["totalCount"], 1000);
    assert_eq!(dump["dataPoints"][0]["value"], 5.0);
    assert_eq!(dump["dataPoints"][999]["value"], 1004.0);

    // DELETE forgets them.
    let cleared = env.admin(Method::DELETE, "/metrics", None).await;
    assert_eq!(cleared.status, 204);
    assert_eq!(data_points(&env, "").await["totalCount"], 0);
    let unknown = env
        .admin(Method::GET, "/metrics?environment=nope", None)
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn metrics_ingest_reports_invalid_lines_and_keeps_the_valid_ones() {
    let env = start().await;
    let token = ingest_token(&env, "", &tok('A')).await;
    let body = "good.metric 1\n\
                # a comment\n\
                1bad.key 2\n\
                good.metric,dim=x notanumber\n\
                dt.reserved 3\n\
                good.metric,dim=y 4\n";
    let a = ingest(&env, INGEST, &token, body).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.body["linesOk"], 2);
    assert_eq!(a.body["linesInvalid"], 3);
    assert_eq!(a.body["error"]["code"], 400);
    assert_eq!(a.body["error"]["message"], "3 invalid lines");
    let invalid = a.body["error"]["invalidLines"].as_array().unwrap();
    let lines: Vec<u64> = invalid
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5], "1-based, comment lines counted");
    assert!(invalid[0]["error"]
        .as_str()
        .unwrap()
        .contains("invalid metric key"));
    assert!(invalid[1]["error"].as_str().unwrap().contains("notanumber"));
    assert!(invalid[2]["error"].as_str().unwrap().contains("reserved"));
    // The valid lines were kept.
    let dump = data_points(&env, "").await;
    let values: Vec<f64> = dump["dataPoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [1.0, 4.0]);

    // Nothing but comments: 400 in the same shape.
    let a = ingest(&env, INGEST, &token, "# only a comment\n\n").await;
    assert_eq!(a.status, 400);
    assert_eq!(
        (&a.body["linesOk"], &a.body["linesInvalid"]),
        (&json!(0), &json!(0))
    );
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no data points"));
}

#[tokio::test]
async fn metrics_ingest_needs_the_ingest_scope() {
    let env = start().await;
    let body = "a.metric 1\n";
    // The management token has no metrics.ingest.
    let a = ingest(&env, INGEST, &tok('A'), body).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.body,
        json!({"error": {"code": 403, "message": format!("{}metrics.ingest (Ingest metrics)", says::MISSING_SCOPE_PREFIX)}})
    );
    let a = env
        .send(
            env.req(Method::POST, INGEST, None)
                .header("Content-Type", "text/plain")
                .body(body),
        )
        .await;
    assert_eq!(error_message(&a), (401, says::MISSING_AUTHORIZATION.into()));
    let a = ingest(&env, INGEST, &tok('Z'), body).await;
    assert_eq!(error_message(&a), (401, says::AUTHENTICATION_FAILED.into()));
    assert_eq!(data_points(&env, "").await["totalCount"], 0);

    let token = ingest_token(&env, "", &tok('A')).await;
    let json_body = env
        .send(
            env.req(Method::POST, INGEST, Some(&token))
                .json(&json!({"metric": 1})),
        )
        .await;
    assert_eq!(json_body.status, 415);
    let get = env.get(INGEST, &token).await;
    assert_eq!(get.status, 405);
    assert_eq!(data_points(&env, "").await["totalCount"], 0);
}

#[tokio::test]
async fn expired_classic_tokens_are_purged_seven_days_after_expiry() {
    let env = start().await;
    let admin = tok('A');
    let expiring = id_of(&tok('D'));
    // Expires at now+1d; still listed (and readable) until 7 days after that.
    env.admin(Method::POST, "/clock/advance", Some(json!({"by": "7d"})))
        .await;
    env.admin(Method::POST, "/clock/advance", Some(json!({"by": "23h"})))
        .await;
    let got = env.get(&format!("{TOKENS}/{expiring}"), &admin).await;
    assert_eq!(got.status, 200, "{}", got.text);
    env.admin(Method::POST, "/clock/advance", Some(json!({"by": "1h"})))
        .await;
    let got = env.get(&format!("{TOKENS}/{expiring}"), &admin).await;
    assert_eq!(got.status, 404, "{}", got.text);
    let list = env.get(TOKENS, &admin).await;
    assert!(!list.text.contains(&expiring), "{}", list.text);
}

#[tokio::test]
async fn account_scopes_are_enforced_per_operation_and_unheld_scopes_refused_like_sso() {
    let env = start().await;
    let token_url = format!("{}/sso/oauth2/token", env.base);
    let grant = |scope: &'static str| {
        env.client.post(&token_url).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("scope", scope),
        ])
    };
    let manage = env.send(grant("platform-token:tokens:manage")).await;
    assert_eq!(manage.status, 200, "{}", manage.text);
    let bearer = manage.body["access_token"].as_str().unwrap().to_owned();
    let base = format!("{}/iam/v1/accounts/{ACCOUNT}/platform-tokens", env.base);
    let auth = |r: reqwest::RequestBuilder| r.header("Authorization", format!("Bearer {bearer}"));
    assert_eq!(env.send(auth(env.client.get(&base))).await.status, 200);
    let create = env
        .send(
            auth(env.client.post(&base))
                .json(&json!({"name": "p", "scope": ["storage:logs:read"]})),
        )
        .await;
    assert_eq!(
        create.status, 403,
        "manage does not create: {}",
        create.text
    );
    assert!(
        create.text.contains("platform-token:tokens:write"),
        "{}",
        create.text
    );
    // The documented account-idm scopes do not suffice for the platform-token API.
    let idm = env.send(grant("account-idm-read account-idm-write")).await;
    assert_eq!(idm.status, 200, "{}", idm.text);
    let idm_bearer = idm.body["access_token"].as_str().unwrap().to_owned();
    let listed = env
        .send(
            env.client
                .get(&base)
                .header("Authorization", format!("Bearer {idm_bearer}")),
        )
        .await;
    assert_eq!(listed.status, 403, "{}", listed.text);
    // A scope the client does not hold: 400 invalid_scope in the OAuth error body.
    let unheld = env
        .send(grant("platform-token:tokens:manage app-engine:apps:run"))
        .await;
    assert_eq!(
        (unheld.status, unheld.body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{}",
        unheld.text
    );
}

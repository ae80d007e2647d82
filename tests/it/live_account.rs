//! The account client against two stubs (the API and the OAuth token endpoint on different
//! hosts): token caching and refresh, pagination, request shapes, the OAuth scopes each operation
//! asks for, `invalid_scope` answers, and the account clock from the `Date` header.

use crate::support::http_stub as live_stub;

use std::time::Duration;

use live_stub::{fast_settings, start, Reply, Stub};
use tokensmith::live::{
    AccountClient, AccountConfig, AccountRead, AccountWrite, Deletion, NewPlatformToken, Transport,
};
use tokensmith::model::{OAuthScopes, Scope, ScopeSet, Secret, TokenId, TokenKind};

const UUID: &str = "5b9f7e0a-1111-2222-3333-444455556666";

fn platform_token(id: &str, status: &str) -> serde_json::Value {
    serde_json::json!({"tokenId": id, "accountUuid": UUID, "name": format!("{id} [ts:p#1]"),
        "scope": ["storage:logs:read"], "resource": [format!("urn:dtaccount:{UUID}")], "status": status,
        "expirationDate": null, "createdAt": "2026-08-01T10:00:00Z", "updatedAt": "2026-08-01T10:00:00Z",
        "createdBy": "a@example.com", "owner": "a@example.com", "metadata": null})
}

/// A token endpoint handing out `access-N` tokens living `expires_in` seconds.
async fn sso(expires_in: u64) -> Stub {
    start(move |req, i| {
        assert_eq!(req.method, "POST");
        Reply::json(
            200,
            format!(
                r#"{{"access_token":"access-{i}","token_type":"Bearer","expires_in":{expires_in},"scope":"x","resource":"{}"}}"#,
                req.param("resource").unwrap_or("")
            ),
        )
    })
    .await
}

fn client(api: &Stub, sso: &Stub, margin: Duration) -> AccountClient {
    client_with(api, sso, margin, OAuthScopes::default())
}

fn client_with(api: &Stub, sso: &Stub, margin: Duration, scopes: OAuthScopes) -> AccountClient {
    AccountClient::new(
        AccountConfig {
            name: "main".into(),
            uuid: UUID.into(),
            api_base: api.base.clone(),
            token_url: format!("{}/sso/oauth2/token", sso.base),
            client_id: "dt0s02.CLIENT".into(),
            client_secret: Secret::from("dt0s02.CLIENT.SECRETSECRET"),
            scopes,
            refresh_margin: margin,
        },
        &Transport::new(&fast_settings()).unwrap(),
    )
    .unwrap()
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[tokio::test]
async fn oauth_token_is_fetched_once_and_cached() {
    let sso = sso(300).await;
    let api = start(|req, _| {
        assert_eq!(req.header("authorization"), Some("Bearer access-0"));
        Reply::json(
            200,
            serde_json::json!({"pageSize": 1000, "pageNumber": 1, "total": 1,
                "results": [platform_token("dt0s16.AAAAAAAA", "ACTIVE")]})
            .to_string(),
        )
    })
    .await;
    let client = client(&api, &sso, Duration::from_secs(30));
    for _ in 0..3 {
        let tokens = client.list_platform_tokens().await.unwrap();
        assert_eq!(tokens[0].kind, TokenKind::PlatformToken);
        assert!(tokens[0].enabled);
    }
    assert_eq!(sso.count(), 1);
    assert_eq!(api.count(), 3);
    let token_req = &sso.requests()[0];
    assert_eq!(token_req.path, "/sso/oauth2/token");
    assert_eq!(
        token_req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let fields = form(&token_req.body);
    let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
    assert_eq!(get("grant_type"), Some("client_credentials"));
    assert_eq!(get("client_id"), Some("dt0s02.CLIENT"));
    assert_eq!(get("client_secret"), Some("dt0s02.CLIENT.SECRETSECRET"));
    assert_eq!(get("scope"), Some("platform-token:tokens:manage"));
    assert_eq!(
        get("resource"),
        Some(format!("urn:dtaccount:{UUID}").as_str())
    );
    assert_eq!(
        api.requests()[0].path,
        format!("/iam/v1/accounts/{UUID}/platform-tokens")
    );
}

#[tokio::test]
async fn oauth_token_is_refreshed_when_it_expires() {
    let sso = sso(10).await;
    let api = start(|_, _| Reply::json(200, r#"{"total":0,"results":[]}"#)).await;
    // Ten-second tokens with a 30-second margin are always due for refresh.
    let client = client(&api, &sso, Duration::from_secs(30));
    client.list_platform_tokens().await.unwrap();
    client.list_platform_tokens().await.unwrap();
    assert_eq!(sso.count(), 2);
    let auths: Vec<String> = api
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap().to_owned())
        .collect();
    assert_eq!(auths, ["Bearer access-0", "Bearer access-1"]);
}

#[tokio::test]
async fn a_401_fetches_a_new_token_once() {
    let sso = sso(300).await;
    let api = start(|req, _| match req.header("authorization") {
        Some("Bearer access-0") => {
            Reply::json(401, r#"{"errorCode":401,"message":"Unauthorized"}"#)
        }
        _ => Reply::json(200, r#"{"total":0,"results":[]}"#),
    })
    .await;
    let client = client(&api, &sso, Duration::ZERO);
    client.list_platform_tokens().await.unwrap();
    assert_eq!(sso.count(), 2);
    assert_eq!(api.count(), 2);
}

#[tokio::test]
async fn a_lasting_401_is_an_error_naming_the_account() {
    let sso = sso(300).await;
    let api = start(|_, _| Reply::json(401, r#"{"errorCode":401,"message":"Unauthorized"}"#)).await;
    let client = client(&api, &sso, Duration::ZERO);
    let err = client.list_platform_tokens().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(
        err.to_string()
            .starts_with(&format!("account `main`: GET /iam/v1/accounts/{UUID}/platform-tokens returned 401: Unauthorized")),
        "{err}"
    );
    assert_eq!(api.count(), 2);
}

#[tokio::test]
async fn token_endpoint_errors_are_reported_without_the_client_secret() {
    let sso = start(|_, _| {
        Reply::json(
            400,
            r#"{"error":"invalid_client","error_description":"client dt0s02.CLIENT.SECRETSECRET is unknown"}"#,
        )
    })
    .await;
    let api = start(|_, _| Reply::json(200, "{}")).await;
    let client = client(&api, &sso, Duration::ZERO);
    let err = client.list_platform_tokens().await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("POST /sso/oauth2/token returned 400"),
        "{text}"
    );
    assert!(!text.contains("SECRETSECRET"), "{text}");
    assert_eq!(api.count(), 0);
}

#[tokio::test]
async fn list_walks_pages_until_total() {
    let sso = sso(300).await;
    let api = start(|req, _| {
        let page: usize = req.param("page").unwrap().parse().unwrap();
        assert_eq!(req.param("size"), Some("1000"));
        let results: Vec<_> = match page {
            1 => (0..1000).map(|i| platform_token(&format!("dt0s16.P{i:07}"), "ACTIVE")).collect(),
            2 => vec![platform_token("dt0s16.LAST0000", "INACTIVE")],
            _ => panic!("page {page} should not be asked for"),
        };
        Reply::json(
            200,
            serde_json::json!({"pageSize": 1000, "pageNumber": page, "total": 1001, "results": results})
                .to_string(),
        )
    })
    .await;
    let client = client(&api, &sso, Duration::ZERO);
    let tokens = client.list_platform_tokens().await.unwrap();
    assert_eq!(tokens.len(), 1001);
    assert_eq!(api.count(), 2);
    let last = tokens
        .iter()
        .find(|t| t.id.as_str() == "dt0s16.LAST0000")
        .unwrap();
    assert!(!last.enabled);
}

#[tokio::test]
async fn writes_use_the_documented_paths_and_bodies() {
    let sso = sso(300).await;
    let api = start(|req, _| match (req.method.as_str(), req.path.rsplit('/').next().unwrap()) {
        ("POST", _) => Reply::json(
            200,
            r#"{"name":"p [ts:p#2]","tokenId":"dt0s16.NEWTOKEN","token":"dt0s16.NEWTOKEN.SECRETPART"}"#,
        ),
        ("DELETE", "dt0s16.GONE0000") => Reply::json(404, r#"{"errorCode":404,"message":"Not Found"}"#),
        ("DELETE", _) => Reply::empty(200),
        ("PUT", "status") => Reply::empty(204),
        ("PUT", _) => Reply::empty(200),
        _ => Reply::empty(500),
    })
    .await;
    let client = client(&api, &sso, Duration::ZERO);
    let created = client
        .create_platform_token(&NewPlatformToken {
            name: "p [ts:p#2]".into(),
            scopes: ScopeSet::from([Scope::new("storage:logs:read")]),
            resources: vec!["urn:dtenvironment:abc12345".into()],
            expires: Some(time::macros::datetime!(2027-01-01 00:00:00 UTC)),
            owner: None,
        })
        .await
        .unwrap();
    assert_eq!(created.id.as_str(), "dt0s16.NEWTOKEN");
    assert_eq!(created.secret.expose(), "dt0s16.NEWTOKEN.SECRETPART");
    let old = TokenId::new("dt0s16.OLDTOKEN");
    client
        .set_platform_token_expiration(&old, Some(time::macros::datetime!(2026-12-01 00:00:00 UTC)))
        .await
        .unwrap();
    client.set_platform_token_status(&old, false).await.unwrap();
    assert_eq!(
        client.delete_platform_token(&old).await.unwrap(),
        Deletion::Deleted
    );
    assert_eq!(
        client
            .delete_platform_token(&TokenId::new("dt0s16.GONE0000"))
            .await
            .unwrap(),
        Deletion::AlreadyGone
    );

    let reqs = api.requests();
    let base = format!("/iam/v1/accounts/{UUID}/platform-tokens");
    assert_eq!(reqs[0].path, base);
    assert_eq!(
        reqs[0].json(),
        serde_json::json!({"name": "p [ts:p#2]", "scope": ["storage:logs:read"],
            "resource": ["urn:dtenvironment:abc12345"], "expirationDate": "2027-01-01T00:00:00.000Z"})
    );
    assert_eq!(
        reqs[1].path,
        format!("{base}/dt0s16.OLDTOKEN/expiration-date")
    );
    assert_eq!(
        reqs[1].json(),
        serde_json::json!({"expirationDate": "2026-12-01T00:00:00.000Z"})
    );
    assert_eq!(reqs[2].path, format!("{base}/dt0s16.OLDTOKEN/status"));
    assert_eq!(reqs[2].json(), serde_json::json!({"status": "INACTIVE"}));
    assert_eq!(reqs[3].method, "DELETE");
    // One access token per scope set: `write` for the create, `manage` for everything else.
    let asked: Vec<String> = sso
        .requests()
        .iter()
        .map(|r| {
            form(&r.body)
                .into_iter()
                .find(|(k, _)| k == "scope")
                .map(|(_, v)| v)
                .unwrap()
        })
        .collect();
    assert_eq!(
        asked,
        [
            "platform-token:tokens:write",
            "platform-token:tokens:manage"
        ]
    );
}

#[tokio::test]
async fn the_spec_overrides_the_scopes_per_operation() {
    let sso = sso(300).await;
    let api = start(|_, _| Reply::json(200, r#"{"total":0,"results":[]}"#)).await;
    let scopes = OAuthScopes {
        manage: vec!["account-idm-read".into(), "account-idm-write".into()],
        create: vec!["account-idm-write".into()],
    };
    let client = client_with(&api, &sso, Duration::from_secs(30), scopes);
    client.list_platform_tokens().await.unwrap();
    let fields = form(&sso.requests()[0].body);
    assert!(
        fields.contains(&("scope".into(), "account-idm-read account-idm-write".into())),
        "{fields:?}"
    );
}

#[tokio::test]
async fn invalid_scope_names_the_client_the_scopes_asked_and_what_to_grant() {
    // The client holds `manage` but not `write`: SSO refuses the create's token request only.
    let sso = start(|req, i| {
        let scope = url::form_urlencoded::parse(&req.body)
            .find(|(k, _)| k == "scope")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if scope.contains("platform-token:tokens:write") {
            Reply::json(
                400,
                r#"{"error":"invalid_scope","error_description":"The requested scope is invalid, unknown, or malformed."}"#,
            )
        } else {
            Reply::json(
                200,
                format!(r#"{{"access_token":"access-{i}","token_type":"Bearer","expires_in":300}}"#),
            )
        }
    })
    .await;
    let api = start(|_, _| Reply::json(200, r#"{"total":0,"results":[]}"#)).await;
    let client = client(&api, &sso, Duration::from_secs(30));
    client.list_platform_tokens().await.unwrap();
    let err = client
        .create_platform_token(&NewPlatformToken {
            name: "p [ts:p#1]".into(),
            scopes: ScopeSet::from([Scope::new("storage:logs:read")]),
            resources: Vec::new(),
            expires: None,
            owner: None,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("account `main`: "), "{err}");
    assert!(err.contains("OAuth client `dt0s02.CLIENT`"), "{err}");
    assert!(err.contains("`platform-token:tokens:write`"), "{err}");
    assert!(err.contains("invalid_scope"), "{err}");
    assert!(err.contains("hint: grant the client"), "{err}");
    assert!(err.contains("accounts.main.oauth_scopes.create"), "{err}");
    assert!(!err.contains("SECRETSECRET"), "{err}");
    // Only the list reached the API.
    assert_eq!(api.count(), 1);
}

#[tokio::test]
async fn the_account_clock_comes_from_the_date_header() {
    let sso = sso(300).await;
    let api = start(|_, _| {
        Reply::json(200, r#"{"total":0,"results":[]}"#)
            .header("date", "Wed, 01 Sep 2027 10:00:00 GMT")
    })
    .await;
    let client = client(&api, &sso, Duration::from_secs(30));
    assert_eq!(client.server_time(), None);
    client.list_platform_tokens().await.unwrap();
    assert_eq!(
        client.server_time(),
        Some(time::macros::datetime!(2027-09-01 10:00:00 UTC))
    );
}

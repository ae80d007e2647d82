//! `kubernetes_secret` targets against the Kubernetes API test double
//! (`support/k8s_double.rs`, which states the semantics it covers): create, merge-patch
//! with optimistic concurrency and 409 retries, immutable Secrets, authentication, DynaKube
//! touch and workload restarts, read-back, and no secret outside the Secret's `data`.

use crate::support::k8s_double;

use std::fs;
use std::path::Path;
use std::time::Duration;

use k8s_double::{b64, K8sDouble};
use serde_json::json;
use time::macros::datetime;
use tokensmith::deliver::{
    read_all, DeliverError, Deliverer, DeliveryContext, KubeSettings, Record, Verified,
};
use tokensmith::model::target::tenant_fingerprint;
use tokensmith::model::{Holder, KubernetesSecretTarget, Secret, Target, TokenId};

const SECRET: &str =
    "dt0c01.KUBEPUBLIC2345ABCDEFGHIJ.KUBESECRETPART234567ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_PART: &str = "KUBESECRETPART";
const ID: &str = "dt0c01.KUBEPUBLIC2345ABCDEFGHIJ";
const API_TOKEN: &str = "double-bearer-token";

fn target(context: Option<&str>, key: &str) -> KubernetesSecretTarget {
    KubernetesSecretTarget {
        context: context.map(str::to_owned),
        namespace: "dynatrace".into(),
        name: "dynakube".into(),
        key: key.into(),
        touch_dynakube: None,
        restart: Vec::new(),
    }
}

fn record() -> Record {
    Record::token(TokenId::new(ID), None)
}

fn deliverer(dir: &Path, double: &K8sDouble, token: &str) -> Deliverer {
    deliverer_for(dir, &double.kubeconfig("prod", token))
}

/// A kubeconfig whose current context `prod` reaches `server` as the user whose `user:` body
/// is `user` (lines indented by four spaces).
fn prod_kubeconfig(server: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: c\n  cluster: {{server: '{server}'}}\ncontexts:\n- name: prod\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user:\n{user}"
    )
}

/// `kubeconfig` written as `dir/kubeconfig`; its path.
fn kubeconfig_file(dir: &Path, kubeconfig: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    fs::write(&path, kubeconfig).unwrap();
    path
}

/// A deliverer with exactly this kubeconfig, waiting at most 3s for the operator.
fn deliverer_for(dir: &Path, kubeconfig: &str) -> Deliverer {
    let mut settings = KubeSettings::kubeconfig_file(kubeconfig_file(dir, kubeconfig));
    settings.operator_wait = Duration::from_secs(3);
    Deliverer::new(DeliveryContext::with_kube(dir, settings))
}

/// The secret may travel only as base64 in a Secret's `data`; never in plain text, and never in
/// annotations, holders or errors.
fn assert_no_plain_secret(double: &K8sDouble) {
    for r in double.requests() {
        assert!(
            !r.body.contains(SECRET_PART),
            "plain secret in {} {}: {}",
            r.method,
            r.path,
            r.body
        );
        if let Ok(body) = serde_json::from_str::<serde_json::Value>(&r.body) {
            let meta = body
                .get("metadata")
                .map(|m| m.to_string())
                .unwrap_or_default();
            assert!(!meta.contains(&b64(SECRET)), "secret in metadata: {meta}");
        }
    }
}

#[tokio::test]
async fn creates_a_missing_secret_then_reads_it_back() {
    let double = K8sDouble::start(API_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double, API_TOKEN);
    let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
    assert_eq!(d.read_holder(&t).await, Holder::Absent);

    let out = d
        .deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(
        out.holder,
        Holder::Token {
            id: TokenId::new(ID),
            expires: None,
        }
    );
    // Raw value, no trailing newline.
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "apiToken")
            .unwrap(),
        SECRET.as_bytes()
    );
    let secret = double.secret("dynatrace", "dynakube").unwrap();
    assert_eq!(
        secret["metadata"]["annotations"]["tokensmith.dev/apiToken-token-id"],
        json!(ID)
    );
    assert_eq!(secret["type"], json!("Opaque"));
    let post = double
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(post.path, "/api/v1/namespaces/dynatrace/secrets");

    assert_eq!(
        d.read_holder(&t).await,
        Holder::Token {
            id: TokenId::new(ID),
            expires: None,
        }
    );
    assert!(matches!(
        d.verify(&t, &record()).await,
        Ok(Verified::ReadBack(_))
    ));
    assert_no_plain_secret(&double);
}

#[tokio::test]
async fn merge_patches_one_key_with_the_resource_version_and_keeps_the_others() {
    let double = K8sDouble::start(API_TOKEN).await;
    double.seed_secret(
        "dynatrace",
        "dynakube",
        &[
            ("apiToken", "dt0c01.OLD.OLDSECRET"),
            ("dataIngestToken", "dt0c01.INGEST.INGESTSECRET"),
        ],
        false,
    );
    let rv_before =
        double.secret("dynatrace", "dynakube").unwrap()["metadata"]["resourceVersion"].clone();
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double, API_TOKEN);
    // The current context is used when the target names none.
    let t = Target::KubernetesSecret(target(None, "apiToken"));
    assert_eq!(
        d.read_holder(&t).await,
        Holder::Token {
            id: TokenId::new("dt0c01.OLD"),
            expires: None,
        }
    );

    d.deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap();
    let patch = double
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    let body: serde_json::Value = serde_json::from_str(&patch.body).unwrap();
    assert_eq!(body["metadata"]["resourceVersion"], rv_before);
    assert_eq!(body["data"]["apiToken"], json!(b64(SECRET)));
    assert!(body["data"].get("dataIngestToken").is_none());
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "dataIngestToken")
            .unwrap(),
        b"dt0c01.INGEST.INGESTSECRET"
    );
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "apiToken")
            .unwrap(),
        SECRET.as_bytes()
    );

    // Delivering the same value again writes nothing.
    let before = double.requests().len();
    let again = d
        .deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap();
    assert!(!again.changed);
    assert!(double.requests()[before..]
        .iter()
        .all(|r| r.method == "GET"));
    assert_no_plain_secret(&double);
}

#[tokio::test]
async fn conflicts_are_retried_by_re_reading_and_then_given_up() {
    let double = K8sDouble::start(API_TOKEN).await;
    double.seed_secret(
        "dynatrace",
        "dynakube",
        &[("apiToken", "dt0c01.OLD.OLDSECRET")],
        false,
    );
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double, API_TOKEN);
    let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));

    double.inject_conflicts(2);
    d.deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap();
    let patches = double
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 3);
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "apiToken")
            .unwrap(),
        SECRET.as_bytes()
    );

    let next = "dt0c01.NEXT.NEXTSECRETPART";
    double.inject_conflicts(100);
    let err = d
        .deliver(
            &t,
            &Secret::from(next),
            &Record::token(TokenId::new("dt0c01.NEXT"), None),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliverError::Conflict { attempts: 5, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("NEXTSECRETPART"));
    // The Secret still holds the previous, recorded value.
    assert_eq!(
        d.read_holder(&t).await,
        Holder::Token {
            id: TokenId::new(ID),
            expires: None,
        }
    );
}

#[tokio::test]
async fn an_immutable_secret_is_a_clear_error() {
    let double = K8sDouble::start(API_TOKEN).await;
    double.seed_secret(
        "dynatrace",
        "dynakube",
        &[("apiToken", "dt0c01.OLD.OLDSECRET")],
        true,
    );
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double, API_TOKEN);
    let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
    let err = d
        .deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliverError::Immutable { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("immutable") && text.contains("kubectl -n dynatrace delete secret dynakube"),
        "{text}"
    );
    assert!(!text.contains(SECRET_PART));
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "apiToken")
            .unwrap(),
        b"dt0c01.OLD.OLDSECRET"
    );
}

#[tokio::test]
async fn rejected_credentials_name_the_target_and_read_as_unreadable() {
    let double = K8sDouble::start(API_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double, "wrong-token");
    let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
    let err = d
        .deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("kubernetes_secret:prod/dynatrace/dynakube#apiToken"),
        "{text}"
    );
    assert!(
        text.contains("401") && text.contains("credentials"),
        "{text}"
    );
    assert!(
        !text.contains(SECRET_PART) && !text.contains("wrong-token"),
        "{text}"
    );
    assert!(matches!(d.read_holder(&t).await, Holder::Unreadable { .. }));

    let unknown = Target::KubernetesSecret(target(Some("staging"), "apiToken"));
    let err = d
        .deliver(&unknown, &Secret::from(SECRET), &record())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliverError::KubeConfig { .. }), "{err}");
    assert!(err.to_string().contains("`staging`"), "{err}");
}

#[tokio::test]
async fn touches_the_dynakube_and_restarts_workloads() {
    let double = K8sDouble::start(API_TOKEN).await;
    let dk_path = double.seed_dynakube("dynakube");
    let deploy_path = "/apis/apps/v1/namespaces/dynatrace/deployments/otel-collector";
    double.seed_object(deploy_path, json!({"kind": "Deployment", "metadata": {"name": "otel-collector"}, "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "otel"}}}}}));
    double.seed_secret(
        "dynatrace",
        "dynakube",
        &[("apiToken", "dt0c01.OPERATOR.OPERATORSECRET")],
        false,
    );
    double.run_operator(k8s_double::Operator::default());
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double, API_TOKEN);
    let mut k = target(Some("prod"), "dataIngestToken");
    k.touch_dynakube = Some("dynakube".into());
    k.restart = vec![
        "deployment/otel-collector".into(),
        "statefulset/missing".into(),
    ];
    let t = Target::KubernetesSecret(k.clone());
    let out = d
        .deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap();

    let dk = double.object(&dk_path).unwrap();
    assert!(dk["metadata"]["annotations"]["tokensmith.dev/reconcile-requested-at"].is_string());
    assert_eq!(
        dk["spec"]["apiUrl"],
        json!("https://abc123.live.dynatrace.com/api")
    );
    assert_eq!(dk["status"]["conditions"][0]["status"], json!("True"));
    let deploy = double.object(deploy_path).unwrap();
    assert!(deploy["spec"]["template"]["metadata"]["annotations"]
        ["kubectl.kubernetes.io/restartedAt"]
        .is_string());
    assert_eq!(
        deploy["spec"]["template"]["metadata"]["labels"]["app"],
        json!("otel")
    );
    assert_eq!(out.notes.len(), 3, "{:?}", out.notes);
    assert!(
        out.notes[0].contains("dynatrace.com/v1beta5"),
        "{:?}",
        out.notes
    );
    assert!(
        out.notes[2].contains("reports the new token valid"),
        "{:?}",
        out.notes
    );
    // Confirmed: the awaiting annotation is gone; the operator's key was not touched.
    let secret = double.secret("dynatrace", "dynakube").unwrap();
    assert!(secret["metadata"]["annotations"]
        .get("tokensmith.dev/dataIngestToken-awaiting-operator")
        .is_none());
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "apiToken")
            .unwrap(),
        b"dt0c01.OPERATOR.OPERATORSECRET"
    );
    // A failed follow-up is a warning: the Secret already holds the new value.
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(out.warnings[0].contains("statefulset/missing"));
    assert!(!format!("{out:?}").contains(SECRET_PART));

    // Without the CRD the touch is a warning too; bad restart entries are refused up front.
    double.state.lock().unwrap().dynatrace_group_version = None;
    let out = d
        .deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap();
    assert!(
        out.warnings.iter().any(|w| w.contains("not installed")),
        "{:?}",
        out.warnings
    );
    k.restart = vec!["pod/x".into()];
    let err = d
        .deliver(
            &Target::KubernetesSecret(k),
            &Secret::from(SECRET),
            &record(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot be restarted"), "{err}");
    assert_no_plain_secret(&double);
}

#[tokio::test]
async fn tenant_records_token_files_and_verification_mismatches() {
    let double = K8sDouble::start(API_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    // A kubeconfig whose user reads its bearer token from a file.
    fs::write(dir.path().join("sa-token"), format!("{API_TOKEN}\n")).unwrap();
    let config = double
        .kubeconfig("prod", "unused")
        .replace("    token: unused\n", "    tokenFile: sa-token\n");
    fs::write(dir.path().join("kubeconfig"), config).unwrap();
    let d = Deliverer::new(DeliveryContext::with_kube(
        dir.path(),
        KubeSettings::kubeconfig_file(dir.path().join("kubeconfig")),
    ));

    let tenant = "opaqueTENANTtokenvalue9";
    let rec = Record::Tenant {
        fingerprint: tenant_fingerprint(tenant),
        at: datetime!(2026-11-22 10:00 UTC),
    };
    let t = Target::KubernetesSecret(target(Some("prod"), "tenant-token"));
    d.deliver(&t, &Secret::from(tenant), &rec).await.unwrap();
    assert_eq!(d.read_holder(&t).await, rec.holder());
    assert!(d.verify(&t, &rec).await.is_ok());

    // Someone puts another value in the Secret: verify reports it without the value.
    double.seed_secret(
        "dynatrace",
        "dynakube",
        &[("tenant-token", "handEditedTenant")],
        false,
    );
    let err = d.verify(&t, &rec).await.unwrap_err();
    assert!(matches!(err, DeliverError::Mismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&tenant_fingerprint("handEditedTenant")),
        "{err}"
    );
    assert!(!err.to_string().contains("handEditedTenant"), "{err}");
    for r in double.requests() {
        assert!(
            !r.body.contains(tenant),
            "plain tenant token sent: {}",
            r.body
        );
    }

    let targets = vec![
        t.clone(),
        Target::KubernetesSecret(target(Some("prod"), "missingKey")),
    ];
    let snapshot = read_all(&d, &targets, 4).await;
    assert_eq!(snapshot.holders[&targets[1].address()], Holder::Unknown);
    assert_eq!(
        snapshot.holders[&t.address()],
        Holder::TenantToken {
            fingerprint: tenant_fingerprint("handEditedTenant"),
            since: None
        }
    );
}

/// The double itself behaves as its header says for the parts tokensmith does not exercise
/// (PUT, stringData, media types), so tests built on it later can rely on them.
#[tokio::test]
async fn the_double_keeps_its_stated_semantics() {
    let double = K8sDouble::start(API_TOKEN).await;
    double.seed_secret("dynatrace", "dynakube", &[("apiToken", "v1")], false);
    let http = reqwest::Client::new();
    let url = format!(
        "{}/api/v1/namespaces/dynatrace/secrets/dynakube",
        double.url()
    );
    let current = double.secret("dynatrace", "dynakube").unwrap();
    let rv = current["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    // PUT with a stale resourceVersion: 409; with the current one: 200 and a new version.
    let mut stale = current.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let r = http
        .put(&url)
        .bearer_auth(API_TOKEN)
        .json(&stale)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let mut fresh = current.clone();
    fresh["stringData"] = json!({"apiToken": "v2"});
    let r = http
        .put(&url)
        .bearer_auth(API_TOKEN)
        .json(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_ne!(body["metadata"]["resourceVersion"], json!(rv));
    assert!(body.get("stringData").is_none());
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "apiToken")
            .unwrap(),
        b"v2"
    );

    // PATCH needs the merge-patch media type; null deletes a key.
    let r = http
        .patch(&url)
        .bearer_auth(API_TOKEN)
        .json(&json!({"data": {"apiToken": null}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = http
        .patch(&url)
        .bearer_auth(API_TOKEN)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"data": {"apiToken": null, "x": b64("y")}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(double
        .secret_value("dynatrace", "dynakube", "apiToken")
        .is_none());

    // Creating an existing Secret: 409; bad base64: 422; no token: 401; missing: 404.
    let create = format!("{}/api/v1/namespaces/dynatrace/secrets", double.url());
    let r = http
        .post(&create)
        .bearer_auth(API_TOKEN)
        .json(&json!({"metadata": {"name": "dynakube"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = http
        .post(&create)
        .bearer_auth(API_TOKEN)
        .json(&json!({"metadata": {"name": "n"}, "data": {"k": "%%%"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let r = http
        .get(format!("{create}/nope"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let status: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status["reason"], json!("NotFound"));
}

#[tokio::test]
async fn an_unreachable_api_server_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind one, then drop it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "current-context: prod\nclusters:\n- name: c\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\ncontexts:\n- name: prod\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user: {{token: {API_TOKEN}}}\n"
    );
    fs::write(dir.path().join("kubeconfig"), config).unwrap();
    let d = Deliverer::new(DeliveryContext::with_kube(
        dir.path(),
        KubeSettings::kubeconfig_file(dir.path().join("kubeconfig")),
    ));
    let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
    let err = d
        .deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot reach the API server")
            && text.contains("GET /api/v1/namespaces/dynatrace/secrets/dynakube"),
        "{text}"
    );
    assert!(
        !text.contains(SECRET_PART) && !text.contains(API_TOKEN),
        "{text}"
    );
}

#[tokio::test]
async fn a_lost_create_race_falls_back_to_a_patch() {
    let double = K8sDouble::start(API_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double, API_TOKEN);
    let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
    double.inject_create_race(&[("paasToken", "dt0c01.PAAS.PAASSECRET")]);
    d.deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap();
    let methods: Vec<String> = double.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["GET", "POST", "GET", "PATCH"]);
    // The other creator's key survives next to ours.
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "paasToken")
            .unwrap(),
        b"dt0c01.PAAS.PAASSECRET"
    );
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "apiToken")
            .unwrap(),
        SECRET.as_bytes()
    );
}

/// A kubeconfig `user:` body (for [`K8sDouble::kubeconfig_with_user`]) that runs `plugin`
/// non-interactively, with `extra` lines (indented by six spaces) in its `exec:`.
fn exec_user(plugin: &Path, extra: &str) -> String {
    format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n{extra}      interactiveMode: Never\n",
        plugin.display()
    )
}

/// An exec plugin: `script` as an executable `get-token.sh` in `dir`.
fn write_plugin(dir: &Path, script: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let plugin = dir.join("get-token.sh");
    fs::write(&plugin, script).unwrap();
    fs::set_permissions(&plugin, fs::Permissions::from_mode(0o755)).unwrap();
    plugin
}

/// An exec credential plugin (as EKS, GKE and AKS kubeconfigs use): a script printing an
/// ExecCredential. kube-rs runs it and sends its token.
#[tokio::test]
async fn an_exec_plugin_kubeconfig_delivers() {
    let double = K8sDouble::start(API_TOKEN).await;
    double.accept_token("exec-issued-token", "exec-user");
    let dir = tempfile::tempdir().unwrap();
    let plugin = write_plugin(
        dir.path(),
        "#!/bin/sh\n# prints what `aws eks get-token` prints\necho \"$1 $2\" > \"$(dirname \"$0\")/plugin-args\"\ncat <<'JSON'\n{\"apiVersion\": \"client.authentication.k8s.io/v1beta1\", \"kind\": \"ExecCredential\", \"status\": {\"token\": \"exec-issued-token\"}}\nJSON\n",
    );
    let user = exec_user(&plugin, "      args: [--cluster-name, prod]\n");
    let d = deliverer_for(dir.path(), &double.kubeconfig_with_user("prod", &user));
    let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
    assert!(d.preflight(std::slice::from_ref(&t)).await.is_empty());
    d.deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap();
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "apiToken")
            .unwrap(),
        SECRET.as_bytes()
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("plugin-args")).unwrap(),
        "--cluster-name prod\n"
    );
    let requests = double.requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.user.as_deref() == Some("exec-user")),
        "{requests:?}"
    );
    assert_no_plain_secret(&double);
}

/// A client certificate and key generated in the test, against the double served over TLS with
/// a CA generated in the test; without the CA the handshake fails and the check says TLS.
#[tokio::test]
async fn a_client_certificate_kubeconfig_delivers_over_tls() {
    use base64::Engine;
    let pki = k8s_double::TestPki::generate();
    let double = K8sDouble::start_tls(API_TOKEN, &pki).await;
    let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let user = format!(
        "    client-certificate-data: {}\n    client-key-data: {}\n",
        enc(&pki.client_cert_pem),
        enc(&pki.client_key_pem)
    );
    let config = double.kubeconfig_with_user("prod", &user).replace(
        "    server: ",
        &format!(
            "    certificate-authority-data: {}\n    server: ",
            enc(&pki.ca_pem)
        ),
    );
    assert!(config.contains("server: https://127.0.0.1:"), "{config}");
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer_for(dir.path(), &config);
    let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
    assert_eq!(d.preflight(std::slice::from_ref(&t)).await, vec![]);
    d.deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap();
    assert_eq!(
        d.read_holder(&t).await,
        Holder::Token {
            id: TokenId::new(ID),
            expires: None,
        }
    );
    assert!(double
        .requests()
        .iter()
        .all(|r| r.user.as_deref() == Some("cert-user")));

    // The same kubeconfig without the CA: the server's certificate is not trusted.
    let untrusted = tempfile::tempdir().unwrap();
    let d = deliverer_for(
        untrusted.path(),
        &double.kubeconfig_with_user("prod", &user),
    );
    let failures = d.preflight(std::slice::from_ref(&t)).await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    let text = failures[0].to_string();
    assert!(
        failures[0].blocking && text.contains("TLS") && text.contains(&double.url()),
        "{text}"
    );
}

#[tokio::test]
async fn preflight_names_target_context_server_and_cause() {
    let double = K8sDouble::start(API_TOKEN).await;
    double.seed_secret(
        "dynatrace",
        "dynakube",
        &[("apiToken", "dt0c01.OLD.OLDSECRET")],
        false,
    );
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double, API_TOKEN);
    let mut with_dk = target(Some("prod"), "apiToken");
    with_dk.touch_dynakube = Some("dynakube".into());
    let t = Target::KubernetesSecret(with_dk);
    let unknown = Target::KubernetesSecret(target(Some("staging"), "apiToken"));

    // Allowed, but the DynaKube to touch does not exist; the context `staging` is unknown.
    let failures = d.preflight(&[t.clone(), unknown.clone()]).await;
    assert_eq!(failures.len(), 2, "{failures:?}");
    let dk = failures.iter().find(|f| f.address == t.address()).unwrap();
    assert!(dk.blocking && dk.cause.contains("does not exist"), "{dk}");
    assert_eq!(dk.context, "prod");
    assert_eq!(dk.server, double.url());
    let ctx = failures
        .iter()
        .find(|f| f.address == unknown.address())
        .unwrap();
    assert!(
        ctx.cause.contains("context `staging`") && ctx.cause.contains("prod"),
        "{ctx}"
    );

    // Forbidden: the SelfSubjectAccessReview answers no for patch.
    double.seed_dynakube("dynakube");
    double.deny("patch", "secrets");
    let failures = d.preflight(std::slice::from_ref(&t)).await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    let text = failures[0].to_string();
    assert!(
        text.contains("kubernetes_secret:prod/dynatrace/dynakube#apiToken")
            && text.contains("context `prod`")
            && text.contains(&double.url())
            && text.contains("403 Forbidden")
            && text.contains("patch secrets/dynakube in namespace dynatrace"),
        "{text}"
    );
    assert!(double.requests().iter().any(|r| r.method == "POST"
        && r.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"));

    // A missing Secret needs create, not patch; rejected credentials are a 401.
    let missing = Target::KubernetesSecret(KubernetesSecretTarget {
        name: "other".into(),
        ..target(Some("prod"), "apiToken")
    });
    assert_eq!(d.preflight(std::slice::from_ref(&missing)).await, vec![]);
    double.deny("create", "secrets");
    let failures = d.preflight(std::slice::from_ref(&missing)).await;
    assert!(
        failures.len() == 1 && failures[0].cause.contains("create secrets in namespace"),
        "{failures:?}"
    );
    let bad = tempfile::tempdir().unwrap();
    let d = deliverer(bad.path(), &double, "wrong-token");
    let failures = d.preflight(std::slice::from_ref(&missing)).await;
    assert!(
        failures.len() == 1 && failures[0].cause.contains("401"),
        "{failures:?}"
    );
    assert!(!format!("{failures:?}").contains("wrong-token"));
}

#[tokio::test]
async fn an_unreachable_server_fails_preflight_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "current-context: prod\nclusters:\n- name: c\n  cluster: {{server: 'https://127.0.0.1:{port}'}}\n- name: dns\n  cluster: {{server: 'https://api.cluster.invalid:6443'}}\ncontexts:\n- name: prod\n  context: {{cluster: c, user: u}}\n- name: eks\n  context: {{cluster: dns, user: u}}\nusers:\n- name: u\n  user: {{token: {API_TOKEN}}}\n"
    );
    let d = deliverer_for(dir.path(), &config);
    let refused = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
    let dns = Target::KubernetesSecret(target(Some("eks"), "apiToken"));
    let failures = d.preflight(&[refused.clone(), dns.clone()]).await;
    assert_eq!(failures.len(), 2, "{failures:?}");
    let text = failures[0].to_string();
    assert!(
        text.contains("kubernetes_secret:prod/dynatrace/dynakube#apiToken")
            && text.contains("context `prod`")
            && text.contains(&format!("https://127.0.0.1:{port}"))
            && text.contains("connection refused"),
        "{text}"
    );
    let text = failures[1].to_string();
    assert!(
        text.contains("api.cluster.invalid") && text.contains("DNS"),
        "{text}"
    );
    assert!(!format!("{failures:?}").contains(API_TOKEN));
}

/// The operator reports the new token invalid (a required scope missing): the Secret is put
/// back to the predecessor, the delivery fails with the operator's message, and the plan-time
/// check explains it.
#[tokio::test]
async fn an_operator_rejecting_the_new_token_keeps_the_old_one() {
    let double = K8sDouble::start(API_TOKEN).await;
    let old = "dt0c01.OLDPUBLIC.OLDSECRETVALUE";
    double.seed_dynakube("dynakube");
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double, API_TOKEN);
    let mut k = target(Some("prod"), "apiToken");
    k.touch_dynakube = Some("dynakube".into());
    let t = Target::KubernetesSecret(k);
    // The predecessor is in place and was confirmed.
    double.run_operator(k8s_double::Operator::default());
    d.deliver(
        &t,
        &Secret::from(old),
        &Record::token(TokenId::new("dt0c01.OLDPUBLIC"), None),
    )
    .await
    .unwrap();

    double.run_operator(k8s_double::Operator {
        rejects: [ID.to_owned()].into(),
        message: "Token on secret dynatrace:dynakube missing scopes [DataExport]".into(),
        ..k8s_double::Operator::default()
    });
    let err = d
        .deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DeliverError::Operator { .. }), "{text}");
    assert!(
        text.contains("missing scopes [DataExport]")
            && text.contains("holds dt0c01.OLDPUBLIC again"),
        "{text}"
    );
    assert!(!text.contains(SECRET_PART));
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "apiToken")
            .unwrap(),
        old.as_bytes()
    );
    assert_eq!(
        d.read_holder(&t).await,
        Holder::Token {
            id: TokenId::new("dt0c01.OLDPUBLIC"),
            expires: None,
        }
    );
    let secret = double.secret("dynatrace", "dynakube").unwrap();
    let rejected = secret["metadata"]["annotations"]["tokensmith.dev/apiToken-rejected"]
        .as_str()
        .unwrap();
    assert!(rejected.starts_with(ID), "{rejected}");
    // The rollback asked the operator to reconcile again, so it reads the old token.
    let dk = double
        .object(&double.seed_dynakube_path("dynakube"))
        .unwrap();
    assert_eq!(dk["status"]["conditions"][0]["status"], json!("True"));

    let findings = d.preflight(std::slice::from_ref(&t)).await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(!findings[0].blocking);
    assert!(
        findings[0].cause.contains("missing scopes [DataExport]")
            && findings[0]
                .cause
                .contains("the Secret holds dt0c01.OLDPUBLIC"),
        "{}",
        findings[0]
    );
    assert_no_plain_secret(&double);
}

/// No verdict in time: the delivery succeeds with a warning, and until the operator reports the
/// token valid the target reads as unreadable (so no plan revokes the predecessor).
#[tokio::test]
async fn an_unconfirmed_token_keeps_the_target_unreadable_until_the_operator_reports() {
    let double = K8sDouble::start(API_TOKEN).await;
    let dk_path = double.seed_dynakube("dynakube");
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double, API_TOKEN);
    let mut k = target(Some("prod"), "apiToken");
    k.touch_dynakube = Some("dynakube".into());
    let t = Target::KubernetesSecret(k);
    // The record carries the token's expiry; the awaiting annotation names the id alone.
    let expires = datetime!(2026-12-01 10:00 UTC);
    let rec = Record::token(TokenId::new(ID), Some(expires));
    // No operator runs.
    let out = d.deliver(&t, &Secret::from(SECRET), &rec).await.unwrap();
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("unconfirmed") && w.contains("predecessor is kept")),
        "{:?}",
        out.warnings
    );
    let secret = double.secret("dynatrace", "dynakube").unwrap();
    let annotations = &secret["metadata"]["annotations"];
    assert_eq!(
        annotations["tokensmith.dev/apiToken-token-id"],
        json!(format!("{ID} until 2026-12-01T10:00:00Z"))
    );
    let awaiting = annotations["tokensmith.dev/apiToken-awaiting-operator"]
        .as_str()
        .unwrap();
    assert!(awaiting.starts_with(&format!("{ID} since ")), "{awaiting}");
    match d.read_holder(&t).await {
        Holder::Unreadable { reason } => assert!(
            reason.contains("has not confirmed") && reason.contains(ID),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    let findings = d.preflight(std::slice::from_ref(&t)).await;
    assert!(findings.len() == 1 && !findings[0].blocking, "{findings:?}");

    // The operator starts and reconciles (any DynaKube update): now the token is confirmed.
    double.run_operator(k8s_double::Operator::default());
    let http = reqwest::Client::new();
    let r = http
        .patch(format!("{}{dk_path}", double.url()))
        .bearer_auth(API_TOKEN)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"metadata": {"labels": {"x": "y"}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        d.read_holder(&t).await,
        Holder::Token {
            id: TokenId::new(ID),
            expires: Some(expires),
        }
    );
    assert!(d.preflight(std::slice::from_ref(&t)).await.is_empty());

    // Delivering the same token again writes nothing and clears the awaited verdict.
    let again = d.deliver(&t, &Secret::from(SECRET), &rec).await.unwrap();
    assert!(!again.changed);
    assert!(
        again
            .notes
            .iter()
            .any(|n| n.contains("reports the new token valid")),
        "{:?}",
        again.notes
    );
    let secret = double.secret("dynatrace", "dynakube").unwrap();
    assert!(secret["metadata"]["annotations"]
        .get("tokensmith.dev/apiToken-awaiting-operator")
        .is_none());
}

/// The real binary against the sandbox and the double: what a user sees.
mod cli {
    use super::*;
    use crate::support::binary_world::World;

    const OPERATOR_SPEC: &str = r#"
api_tokens:
  operator:
    name: operator
    environments: [demo]
    preset: dynatrace-operator
    expires_in: 30d
    rotate_before: 7d
    grace: 24h
    deliver:
      - kubernetes_secret:
          context: prod
          namespace: dynatrace
          name: dynakube
          key: apiToken
          touch_dynakube: dynakube
"#;

    fn api_token_ids(w: &World) -> Vec<String> {
        let mut ids: Vec<String> = w.live().into_iter().map(|t| t.id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn an_unreachable_cluster_blocks_the_plan_and_apply_creates_no_token() {
        let w = World::new(OPERATOR_SPEC);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "current-context: prod\nclusters:\n- name: c\n  cluster: {{server: 'https://127.0.0.1:{port}'}}\ncontexts:\n- name: prod\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user: {{token: {API_TOKEN}}}\n"
        );
        fs::write(w.path("kubeconfig"), config).unwrap();
        let kubeconfig = w.path("kubeconfig").display().to_string();
        let env = [("KUBECONFIG", kubeconfig.as_str())];
        let before = api_token_ids(&w);

        let plan = w.run_with_env(&["plan"], &env);
        assert_eq!(plan.code, Some(1), "{}", plan.text);
        for part in [
            "kubernetes_secret:prod/dynatrace/dynakube#apiToken",
            "context `prod`",
            &format!("https://127.0.0.1:{port}"),
            "connection refused",
        ] {
            assert!(plan.text.contains(part), "`{part}` missing:\n{}", plan.text);
        }
        let json = w.run_with_env(&["plan", "--format", "json"], &env);
        let parsed: serde_json::Value = serde_json::from_str(
            &json.text[json.text.find('{').unwrap()..=json.text.rfind('}').unwrap()],
        )
        .unwrap();
        assert_eq!(parsed["checks"][0]["code"], json!("target_unusable"));
        assert_eq!(parsed["checks"][0]["blocking"], json!(true));
        assert_eq!(parsed["checks"][0]["key"], json!("operator"));

        let apply = w.run_with_env(&["apply", "--auto-approve"], &env);
        assert_eq!(apply.code, Some(1), "{}", apply.text);
        assert!(
            apply
                .text
                .contains("refusing to apply a plan with blocking checks"),
            "{}",
            apply.text
        );
        assert_eq!(api_token_ids(&w), before, "apply created a token");

        // Without any kubeconfig: the context does not resolve, and that blocks too.
        let missing = w.path("no-such-kubeconfig").display().to_string();
        let plan = w.run_with_env(&["plan"], &[("KUBECONFIG", missing.as_str())]);
        assert_eq!(plan.code, Some(1), "{}", plan.text);
        assert!(
            plan.text.contains("no kubeconfig for context `prod`"),
            "{}",
            plan.text
        );
    }

    #[test]
    fn an_operator_rejecting_the_successor_keeps_the_predecessor_and_the_plan_says_why() {
        let w = World::new(OPERATOR_SPEC);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let double = rt.block_on(K8sDouble::start(API_TOKEN));
        double.seed_dynakube("dynakube");
        double.run_operator(k8s_double::Operator::default());
        fs::write(w.path("kubeconfig"), double.kubeconfig("prod", API_TOKEN)).unwrap();
        let kubeconfig = w.path("kubeconfig").display().to_string();
        let env = [("KUBECONFIG", kubeconfig.as_str())];

        let first = w.run_with_env(&["apply", "--auto-approve"], &env);
        assert_eq!(first.code, Some(0), "{}", first.text);
        let held = |double: &K8sDouble| {
            let value = double
                .secret_value("dynatrace", "dynakube", "apiToken")
                .unwrap();
            crate::support::binary_world::id_of(&String::from_utf8(value).unwrap())
        };
        let gen1 = held(&double);

        // The operator now accepts only the current token (the successor would miss a scope).
        double.run_operator(k8s_double::Operator {
            accept_only: Some([gen1.clone()].into()),
            message: "Token on secret dynatrace:dynakube missing scopes [DataExport]".into(),
            ..k8s_double::Operator::default()
        });
        w.advance(time::Duration::days(24));
        let rotate = w.run_with_env(&["apply", "--auto-approve"], &env);
        assert_ne!(rotate.code, Some(0), "{}", rotate.text);
        assert!(
            rotate.text.contains("missing scopes [DataExport]"),
            "{}",
            rotate.text
        );
        // The Secret holds the predecessor again, which is still enabled; the rejected
        // successor was cleaned up.
        assert_eq!(held(&double), gen1);
        let live = w.live();
        let old = live.iter().find(|t| t.id == gen1).unwrap();
        assert!(old.enabled && !old.expired);
        assert!(
            !live
                .iter()
                .any(|t| t.id != gen1 && t.enabled && t.name.starts_with("operator")),
            "{live:?}"
        );

        let plan = w.run_with_env(&["plan"], &env);
        assert!(
            plan.text
                .contains("rejected the token delivered to `apiToken`")
                && plan.text.contains("missing scopes [DataExport]"),
            "{}",
            plan.text
        );
        drop(double);
        drop(rt);
    }
}

/// Several kubeconfig files (a `KUBECONFIG` list) merge the kubectl way: missing files are
/// skipped, the first file that names an entry wins, and a context may use a cluster and a
/// user from different files. A token file written with `echo` (a trailing newline) works, as
/// with kubectl.
#[tokio::test]
async fn several_kubeconfig_files_merge_and_token_files_are_trimmed() {
    let double = K8sDouble::start(API_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("token"), format!("{API_TOKEN}\n")).unwrap();
    let first = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: other\nclusters:\n- name: double\n  cluster: {{server: '{}'}}\n- name: other\n  cluster: {{server: 'https://other.invalid'}}\ncontexts:\n- name: other\n  context: {{cluster: other, user: nobody}}\nusers:\n- name: nobody\n  user: {{token: x}}\n",
        double.url()
    );
    let second = "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: double\n  cluster: {server: 'https://shadowed.invalid'}\ncontexts:\n- name: prod\n  context: {cluster: double, user: file-user}\nusers:\n- name: file-user\n  user: {tokenFile: token}\n";
    fs::write(dir.path().join("first"), first).unwrap();
    fs::write(dir.path().join("second"), second).unwrap();
    let settings = KubeSettings {
        kubeconfig: vec![
            dir.path().join("missing"),
            dir.path().join("first"),
            dir.path().join("second"),
        ],
        ..KubeSettings::default()
    };
    let d = Deliverer::new(DeliveryContext::with_kube(dir.path(), settings));
    let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
    assert_eq!(d.preflight(std::slice::from_ref(&t)).await, vec![]);
    d.deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap();
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "apiToken")
            .unwrap(),
        SECRET.as_bytes()
    );
    // The current context comes from the first file that sets one.
    let current = Target::KubernetesSecret(target(None, "apiToken"));
    let failures = d.preflight(std::slice::from_ref(&current)).await;
    assert!(
        failures.len() == 1
            && failures[0].context == "other"
            && failures[0].server.contains("other.invalid"),
        "{failures:?}"
    );
}

/// `work` on a thread of its own with a runtime of its own, which is dropped before the result
/// comes back: a delivery that blocks (or leaves the runtime waiting on something) fails the
/// test after `within`, naming `what`, instead of hanging it.
fn on_own_thread<T: Send + 'static>(
    within: Duration,
    what: &str,
    work: impl FnOnce(&tokio::runtime::Runtime) -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let result = work(&rt);
        drop(rt);
        let _ = tx.send(result);
    });
    rx.recv_timeout(within)
        .unwrap_or_else(|_| panic!("not done within {within:?}: {what}"))
}

/// A FIFO (or a device) in the `KUBECONFIG` list is refused by name before kube-rs reads it,
/// instead of blocking the run until something writes to it. The preflight runs on a thread of
/// its own, so a read that blocks fails the test at the deadline instead of hanging it.
#[test]
fn a_fifo_in_the_kubeconfig_list_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = crate::support::mkfifo(&dir.path().join("config"));
    for path in [fifo, std::path::PathBuf::from("/dev/zero")] {
        let settings = KubeSettings {
            kubeconfig: vec![path.clone()],
            ..KubeSettings::default()
        };
        let base = dir.path().to_path_buf();
        let text = on_own_thread(
            Duration::from_secs(20),
            "the preflight does not block on the kubeconfig",
            move |rt| {
                let d = Deliverer::new(DeliveryContext::with_kube(&base, settings));
                let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
                format!("{:?}", rt.block_on(d.preflight(std::slice::from_ref(&t))))
            },
        );
        assert!(
            text.contains(&format!("cannot read the kubeconfig `{}`", path.display())),
            "{text}"
        );
        assert!(text.contains("only regular files are read"), "{text}");
    }
}

/// A kubeconfig whose server is plain http anywhere but a loopback address is refused before
/// any request: a token value would cross the network in clear text. `localhost` is refused too
/// (kube-rs asks the system's resolver, which a hosts file can point elsewhere), with the way
/// out named; the double on 127.0.0.1 over http is served, as every other test here shows.
#[tokio::test]
async fn a_plain_http_api_server_off_loopback_is_refused_before_any_request() {
    let double = K8sDouble::start(API_TOKEN).await;
    let port = double.url().rsplit_once(':').unwrap().1.to_owned();
    let dir = tempfile::tempdir().unwrap();
    for server in [
        "http://10.0.0.1:6443".to_owned(),
        "http://kubernetes.example:8080".to_owned(),
        format!("http://localhost:{port}"),
    ] {
        let kubeconfig = prod_kubeconfig(&server, &format!("    token: {API_TOKEN}\n"));
        let d = deliverer_for(dir.path(), &kubeconfig);
        let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
        let failures = d.preflight(std::slice::from_ref(&t)).await;
        let text = format!("{failures:?}");
        assert!(text.contains("uses plain http"), "{server}: {text}");
        assert!(text.contains("127.0.0.1"), "{server}: {text}");
        let err = d
            .deliver(&t, &Secret::from(SECRET), &record())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("uses plain http"), "{server}: {err}");
        assert!(!err.contains(SECRET), "{err}");
    }
    assert!(double.requests().is_empty(), "nothing reached the server");
}

/// `insecure-skip-tls-verify: true` on a server off loopback is refused the same way: TLS that
/// accepts any certificate sends the value to whoever answers.
#[tokio::test]
async fn a_cluster_that_skips_tls_verification_off_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: c\n  cluster: {{server: 'https://10.0.0.1:6443', insecure-skip-tls-verify: true}}\ncontexts:\n- name: prod\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user: {{token: {API_TOKEN}}}\n"
    );
    let d = deliverer_for(dir.path(), &kubeconfig);
    let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
    let text = format!("{:?}", d.preflight(std::slice::from_ref(&t)).await);
    assert!(text.contains("skips TLS verification"), "{text}");
    assert!(text.contains("certificate-authority"), "{text}");
}

/// kube-rs takes `HTTPS_PROXY` for every scheme; a plain-http API server on loopback is still
/// written to directly, or the proxy would read the Secret's value in clear text. (nextest runs
/// each test in a process of its own, so setting the variable here touches no other test.)
#[tokio::test]
async fn a_plain_http_loopback_api_server_is_never_reached_through_a_proxy() {
    let proxy = crate::support::recording_proxy::RecordingProxy::start();
    std::env::set_var("HTTPS_PROXY", &proxy.url);
    let double = K8sDouble::start(API_TOKEN).await;
    assert!(double.url().starts_with("http://127.0.0.1:"));
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double, API_TOKEN);
    let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
    d.deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap();
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "apiToken")
            .unwrap(),
        SECRET.as_bytes()
    );
    assert_eq!(proxy.seen(), Vec::<String>::new());
    std::env::remove_var("HTTPS_PROXY");
}

/// A server on loopback that reads one request and answers 200 with a chunked body that never
/// ends: `drip` sends a byte every 100 ms (each byte restarts kube-rs's read timeout), otherwise
/// 1 MiB chunks as fast as it can. Returns its URL.
fn endless_api_server(drip: bool) -> String {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
                );
                let chunk = if drip {
                    b"1\r\n \r\n".to_vec()
                } else {
                    let mut c = b"100000\r\n".to_vec();
                    c.extend(std::iter::repeat_n(b' ', 1 << 20));
                    c.extend(b"\r\n");
                    c
                };
                while stream.write_all(&chunk).is_ok() {
                    if drip {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            });
        }
    });
    url
}

/// A delivery to a Secret on the API server at `url`, with a 2 s answer deadline, on a thread of
/// its own (a hang fails the test after 30 s, saying `why` it should not have hung): its error
/// and how long it took.
fn failed_delivery_with_a_2s_deadline(url: &str, why: &str) -> (String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = prod_kubeconfig(url, &format!("    token: {API_TOKEN}\n"));
    let mut settings = KubeSettings::kubeconfig_file(kubeconfig_file(dir.path(), &kubeconfig));
    settings.answer_deadline = Duration::from_secs(2);
    let base = dir.path().to_path_buf();
    on_own_thread(Duration::from_secs(30), why, move |rt| {
        let d = Deliverer::new(DeliveryContext::with_kube(&base, settings));
        let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
        let started = std::time::Instant::now();
        let err = rt
            .block_on(d.deliver(&t, &Secret::from(SECRET), &record()))
            .unwrap_err()
            .to_string();
        (err, started.elapsed())
    })
}

/// A listener that accepts connections and never says anything: not a TLS server hello, not a
/// status line. Its URL with `scheme`.
fn silent_api_server(scheme: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            held.push(stream);
        }
    });
    url
}

/// Whatever answers for a cluster's address may accept the connection and then say nothing: a
/// TLS handshake that never completes, or a plain-http request that never gets a status line.
/// The answer deadline covers the connection too, so the delivery fails at it, naming the
/// server, instead of holding the apply and its lock.
#[test]
fn an_api_server_that_accepts_and_never_answers_is_given_up_at_the_deadline() {
    for scheme in ["https", "http"] {
        let url = silent_api_server(scheme);
        let (err, took) = failed_delivery_with_a_2s_deadline(
            &url,
            "the silent server is given up instead of waited for",
        );
        assert!(
            err.contains("did not finish its answer within 2 s") && err.contains(&url),
            "{scheme}: {err}"
        );
        assert!(took >= Duration::from_secs(2), "{scheme}: {took:?}");
        assert!(!err.contains(API_TOKEN), "{err}");
    }
}

/// An API server (or whatever answers for its address) that drips its answer a byte at a time,
/// or streams one without end, is cut off: each request has one deadline for its whole answer
/// and a body cap, and the error names the target's server and what it did. Without the bounds
/// the drip holds the apply for ever (kube-rs's read timeout restarts with every byte) and the
/// flood fills the memory. Run on a thread of its own, so a hang fails the test at the deadline.
#[test]
fn an_api_server_that_drips_or_floods_its_answer_is_cut_off_naming_it() {
    for (drip, expect) in [
        (true, "the API server did not finish its answer within 2 s"),
        (false, "the API server's answer is larger than 16 MiB"),
    ] {
        let url = endless_api_server(drip);
        let (err, took) = failed_delivery_with_a_2s_deadline(
            &url,
            "the delivery is cut off instead of waiting for the answer to end",
        );
        assert!(err.contains(expect), "{err}");
        assert!(err.contains(&url), "the error names the server: {err}");
        assert!(
            !err.contains(SECRET_PART) && !err.contains(API_TOKEN),
            "{err}"
        );
        if drip {
            assert!(
                took >= Duration::from_secs(2),
                "cut off at the deadline, not before: {took:?}"
            );
        }
    }
}

/// `NO_PROXY` applies to Kubernetes API servers as to Dynatrace: kube-rs takes `HTTPS_PROXY`
/// but not `NO_PROXY`, so a cluster the proxy cannot reach failed where kubectl bypasses the
/// proxy. A cluster's own `proxy-url` still wins over `NO_PROXY`, as with kubectl. (nextest runs
/// each test in a process of its own, so setting the variable here touches no other test.)
#[tokio::test]
async fn no_proxy_sends_an_https_api_server_direct_unless_the_cluster_names_a_proxy() {
    use base64::Engine;
    let proxy = crate::support::recording_proxy::RecordingProxy::start();
    std::env::set_var("HTTPS_PROXY", &proxy.url);
    let pki = k8s_double::TestPki::generate();
    let double = K8sDouble::start_tls(API_TOKEN, &pki).await;
    let host_port = double.url().trim_start_matches("https://").to_owned();
    let config = double.kubeconfig("prod", API_TOKEN).replace(
        "    server: ",
        &format!(
            "    certificate-authority-data: {}\n    server: ",
            base64::engine::general_purpose::STANDARD.encode(&pki.ca_pem)
        ),
    );
    let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
    let attempt = |config: String, no_proxy: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = KubeSettings::kubeconfig_file(kubeconfig_file(dir.path(), &config));
        settings.no_proxy = no_proxy.map(str::to_owned);
        let d = Deliverer::new(DeliveryContext::with_kube(dir.path(), settings));
        let t = t.clone();
        async move {
            let _dir = dir;
            d.deliver(&t, &Secret::from(SECRET), &record()).await
        }
    };

    // Through the environment's proxy (which answers 502): the tunnel is asked for, and fails.
    let err = attempt(config.clone(), Some("example.com, 10.0.0.0/8"))
        .await
        .unwrap_err();
    assert_eq!(
        proxy.seen(),
        vec![format!("CONNECT {host_port} HTTP/1.1")],
        "{err}"
    );

    // NO_PROXY names the address: straight to the API server.
    for no_proxy in ["127.0.0.1", "127.0.0.0/8", "*"] {
        attempt(config.clone(), Some(no_proxy)).await.unwrap();
    }
    assert_eq!(proxy.seen().len(), 1, "{:?}", proxy.seen());
    assert_eq!(
        double
            .secret_value("dynatrace", "dynakube", "apiToken")
            .unwrap(),
        SECRET.as_bytes()
    );

    // The cluster's own proxy-url: used although NO_PROXY names the address.
    let explicit = config.replace(
        "    server: ",
        &format!("    proxy-url: {}\n    server: ", proxy.url),
    );
    attempt(explicit, Some("127.0.0.1")).await.unwrap_err();
    assert_eq!(proxy.seen().len(), 2, "{:?}", proxy.seen());
    std::env::remove_var("HTTPS_PROXY");
}

/// An exec plugin that never finishes (one waiting for a login that CI cannot give) is given up
/// at the answer deadline with the plugin named, instead of holding the apply and its lock:
/// kube-rs runs the plugin and waits for it without a limit. The runtime is dropped before the
/// result is reported, so a runtime left waiting on the plugin fails the test too; the failed
/// context is remembered, so the delivery after the preflight does not start the plugin again.
#[test]
fn an_exec_plugin_that_never_finishes_is_given_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = write_plugin(
        dir.path(),
        "#!/bin/sh\necho started >> \"$(dirname \"$0\")/plugin-runs\"\nexec sleep 600\n",
    );
    let kubeconfig = prod_kubeconfig("https://10.255.255.1:6443", &exec_user(&plugin, ""));
    let path = kubeconfig_file(dir.path(), &kubeconfig);
    let mut settings = KubeSettings::kubeconfig_file(path);
    settings.answer_deadline = Duration::from_secs(2);
    let base = dir.path().to_path_buf();
    let (preflight, err) = on_own_thread(
        Duration::from_secs(30),
        "the plugin is given up instead of waited for",
        move |rt| {
            let d = Deliverer::new(DeliveryContext::with_kube(&base, settings));
            let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
            let failures = rt.block_on(d.preflight(std::slice::from_ref(&t)));
            let err = rt
                .block_on(d.deliver(&t, &Secret::from(SECRET), &record()))
                .unwrap_err()
                .to_string();
            (format!("{failures:?}"), err)
        },
    );
    for text in [&preflight, &err] {
        assert!(
            text.contains("the credentials were not ready within 2 s")
                && text.contains(&format!("exec plugin `{}`", plugin.display()))
                && text.contains("context `prod` (https://10.255.255.1:6443)"),
            "{text}"
        );
    }
    assert_eq!(
        fs::read_to_string(dir.path().join("plugin-runs")).unwrap(),
        "started\n",
        "one wait per context, not one per target"
    );
}

/// A kubeconfig's exec plugin is started by kube-rs with this process's environment, which holds
/// the management tokens: it gets neither a variable whose value holds a Dynatrace token nor one
/// the spec names as a credential, and still everything else (an `aws` plugin needs its own
/// `AWS_*`). (nextest runs each test in a process of its own, so the variables touch no other
/// test.)
#[tokio::test]
async fn an_exec_plugin_gets_no_management_token_in_its_environment() {
    std::env::set_var("TS_MANAGEMENT_TOKEN", SECRET);
    std::env::set_var("TS_SPEC_NAMED", "named as a credential in the spec");
    std::env::set_var("TS_VISIBLE", "kept");
    let double = K8sDouble::start(API_TOKEN).await;
    double.accept_token("exec-issued-token", "exec-user");
    let dir = tempfile::tempdir().unwrap();
    let plugin = write_plugin(
        dir.path(),
        "#!/bin/sh\nenv > \"$(dirname \"$0\")/plugin-env\"\ncat <<'JSON'\n{\"apiVersion\": \"client.authentication.k8s.io/v1beta1\", \"kind\": \"ExecCredential\", \"status\": {\"token\": \"exec-issued-token\"}}\nJSON\n",
    );
    let path = kubeconfig_file(
        dir.path(),
        &double.kubeconfig_with_user("prod", &exec_user(&plugin, "")),
    );
    let d = Deliverer::new(
        DeliveryContext::with_kube(dir.path(), KubeSettings::kubeconfig_file(path))
            .with_hidden_env(["TS_SPEC_NAMED"]),
    );
    let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
    d.deliver(&t, &Secret::from(SECRET), &record())
        .await
        .unwrap();
    let env = fs::read_to_string(dir.path().join("plugin-env")).unwrap();
    assert!(env.contains("TS_VISIBLE=kept\n"), "{env}");
    assert!(!env.contains(SECRET_PART), "{env}");
    assert!(!env.contains("TS_MANAGEMENT_TOKEN"), "{env}");
    assert!(!env.contains("TS_SPEC_NAMED"), "{env}");
}

/// kube-rs refreshes an exec plugin's token inside a request when it expires within a minute,
/// running the plugin synchronously. A plugin that hangs on a refresh (its earlier runs gave
/// tokens good for 30 s) ends the delivery at the answer deadline instead of blocking it: the
/// request runs on a runtime of its own, and the runtime the delivery ran on is dropped before
/// the result is reported, so a thread left waiting on the plugin fails the test too.
#[test]
fn an_exec_plugin_that_hangs_when_refreshing_its_token_is_given_up() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let double = rt.block_on(K8sDouble::start(API_TOKEN));
    double.accept_token("exec-issued-token", "exec-user");
    let dir = tempfile::tempdir().unwrap();
    let plugin = write_plugin(
        dir.path(),
        "#!/bin/sh\nd=\"$(dirname \"$0\")\"\necho run >> \"$d/plugin-runs\"\nif [ \"$(wc -l < \"$d/plugin-runs\")\" -gt 3 ]; then exec sleep 600; fi\nexp=$(date -u -d '+30 seconds' +%Y-%m-%dT%H:%M:%SZ)\ncat <<JSON\n{\"apiVersion\": \"client.authentication.k8s.io/v1beta1\", \"kind\": \"ExecCredential\", \"status\": {\"token\": \"exec-issued-token\", \"expirationTimestamp\": \"$exp\"}}\nJSON\n",
    );
    let path = kubeconfig_file(
        dir.path(),
        &double.kubeconfig_with_user("prod", &exec_user(&plugin, "")),
    );
    let mut settings = KubeSettings::kubeconfig_file(path);
    settings.answer_deadline = Duration::from_secs(2);
    let base = dir.path().to_path_buf();
    let err = on_own_thread(
        Duration::from_secs(30),
        "the refresh is given up instead of waited for",
        move |rt| {
            let d = Deliverer::new(DeliveryContext::with_kube(&base, settings));
            let t = Target::KubernetesSecret(target(Some("prod"), "apiToken"));
            rt.block_on(d.deliver(&t, &Secret::from(SECRET), &record()))
                .unwrap_err()
                .to_string()
        },
    );
    assert!(
        err.contains("did not finish its answer within 2 s") && err.contains(&double.url()),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("plugin-runs")).unwrap(),
        "run\nrun\nrun\nrun\n",
        "the client was built (the runs before the last), and the run that hangs is a refresh \
         inside a request: the answer deadline, not the build's, ended it"
    );
    drop(double);
    drop(rt);
}

/// `--kube-timeout` (or `TOKENSMITH_KUBE_TIMEOUT`) is how long one Kubernetes request may take,
/// credentials included. A plugin slower than it (one waiting for an interactive login) fails
/// the apply before anything changes, and the error says which flag gives it longer; with a
/// longer timeout the same plugin finishes and the apply delivers. The apply's deliverer shares
/// the connections its read of the targets made, so it runs the plugin no more than a plan.
#[test]
fn a_slow_exec_plugin_gets_the_time_kube_timeout_gives() {
    use crate::support::binary_world::World;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let double = rt.block_on(K8sDouble::start(API_TOKEN));
    double.accept_token("exec-issued-token", "exec-user");
    let w = World::new(
        "api_tokens:\n  operator:\n    environments: [demo]\n    scopes: [activeGateTokenManagement.create, entities.read, settings.read, settings.write, DataExport, InstallerDownload]\n    deliver:\n      - kubernetes_secret: { context: prod, namespace: dynatrace, name: dynakube, key: apiToken }\n",
    );
    let plugin = write_plugin(
        w.path("").as_path(),
        "#!/bin/sh\necho run >> \"$(dirname \"$0\")/plugin-runs\"\nsleep 2\ncat <<'JSON'\n{\"apiVersion\": \"client.authentication.k8s.io/v1beta1\", \"kind\": \"ExecCredential\", \"status\": {\"token\": \"exec-issued-token\"}}\nJSON\n",
    );
    let kubeconfig = kubeconfig_file(
        w.path("").as_path(),
        &double.kubeconfig_with_user("prod", &exec_user(&plugin, "")),
    );
    let kubeconfig = kubeconfig.display().to_string();
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut env = vec![("KUBECONFIG", kubeconfig.as_str())];
        env.extend_from_slice(extra);
        env
    };

    let before = w.live().len();
    let short = w.run_with_env(
        &["apply", "--auto-approve", "--kube-timeout", "1s"],
        &with(&[]),
    );
    assert_eq!(short.code, Some(1), "{}", short.text);
    assert!(
        short
            .text
            .contains("the credentials were not ready within 1 s")
            && short.text.contains("--kube-timeout"),
        "{}",
        short.text
    );
    assert_eq!(w.live().len(), before, "nothing created");
    assert_eq!(
        double.secret_value("dynatrace", "dynakube", "apiToken"),
        None
    );

    // The variable does what the flag does.
    let from_env = w.run_with_env(
        &["apply", "--auto-approve"],
        &with(&[("TOKENSMITH_KUBE_TIMEOUT", "1s")]),
    );
    assert_eq!(from_env.code, Some(1), "{}", from_env.text);
    assert!(
        from_env.text.contains("not ready within 1 s"),
        "{}",
        from_env.text
    );

    let runs = || {
        fs::read_to_string(w.path("plugin-runs"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let before = runs();
    let long = w.run_with_env(
        &["apply", "--auto-approve"],
        &with(&[("TOKENSMITH_KUBE_TIMEOUT", "20s")]),
    );
    assert_eq!(long.code, Some(0), "{}", long.text);
    let by_apply = runs() - before;
    let held = double
        .secret_value("dynatrace", "dynakube", "apiToken")
        .expect("the Secret was written");
    assert!(held.starts_with(b"dt0c01."), "an API token was delivered");
    let plan = w.run_with_env(
        &["plan", "--detailed-exitcode"],
        &with(&[("TOKENSMITH_KUBE_TIMEOUT", "20s")]),
    );
    assert_eq!(plan.code, Some(0), "the next plan is empty:\n{}", plan.text);
    let by_plan = runs() - before - by_apply;
    assert!(
        by_plan > 0 && by_apply == by_plan,
        "the apply ran the plugin {by_apply} times, a plan {by_plan}"
    );

    for (value, says) in [
        ("0s", "--kube-timeout: must be at least 1s"),
        ("soon", "--kube-timeout: "),
    ] {
        let bad = w.run_with_env(&["plan", "--kube-timeout", value], &with(&[]));
        assert_eq!(bad.code, Some(1), "{}", bad.text);
        assert!(bad.text.contains(says), "{value}: {}", bad.text);
    }
}

//! Reading the Dynatrace Operator's tenant Secrets (`<dynakube>-oneagent-tenant-secret`,
//! `<dynakube>-activegate-tenant-secret`, key `tenant-token`) against the Kubernetes API test
//! double: the fingerprint they hold, an old token read as the old fingerprint, Secrets that
//! disagree, and no token value in what is reported.

use crate::support::k8s_double::K8sDouble;

use std::fs;

use tokensmith::deliver::kube::connect::{connect, Connection};
use tokensmith::deliver::kube::tenant::read_operator_tenant;
use tokensmith::deliver::KubeSettings;
use tokensmith::model::target::tenant_fingerprint;
use tokensmith::model::Holder;

const API_TOKEN: &str = "double-bearer-token";
const OLD: &str = "OLDTENANTTOKENVALUE0123";
const NEW: &str = "NEWTENANTTOKENVALUE4567";

async fn connection(dir: &std::path::Path, double: &K8sDouble) -> Connection {
    let path = dir.join("kubeconfig");
    fs::write(&path, double.kubeconfig("prod", API_TOKEN)).unwrap();
    connect(&KubeSettings::kubeconfig_file(path), Some("prod"))
        .await
        .unwrap()
}

fn seed(double: &K8sDouble, name: &str, value: &str) {
    double.seed_secret("dynatrace", name, &[("tenant-token", value)], false);
}

#[tokio::test]
async fn reads_the_fingerprint_the_operator_wrote_and_waits_on_an_old_token() {
    let dir = tempfile::tempdir().unwrap();
    let double = K8sDouble::start(API_TOKEN).await;
    let conn = connection(dir.path(), &double).await;

    // Nothing reconciled yet: absent.
    let holder = read_operator_tenant(&conn, "dynatrace", "dynakube")
        .await
        .unwrap();
    assert_eq!(holder, Holder::Absent);

    // The operator wrote the old token: the old fingerprint, so finish would wait.
    seed(&double, "dynakube-oneagent-tenant-secret", OLD);
    seed(&double, "dynakube-activegate-tenant-secret", OLD);
    let holder = read_operator_tenant(&conn, "dynatrace", "dynakube")
        .await
        .unwrap();
    assert_eq!(
        holder,
        Holder::TenantToken {
            fingerprint: tenant_fingerprint(OLD),
            since: None
        }
    );

    // Midway: only the OneAgent Secret holds the new token; not confirmable.
    seed(&double, "dynakube-oneagent-tenant-secret", NEW);
    let holder = read_operator_tenant(&conn, "dynatrace", "dynakube")
        .await
        .unwrap();
    let Holder::Unreadable { reason } = holder else {
        panic!("disagreeing Secrets must not read as a token: {holder:?}")
    };
    assert!(reason.contains(&tenant_fingerprint(NEW)), "{reason}");
    assert!(reason.contains(&tenant_fingerprint(OLD)), "{reason}");
    assert!(!reason.contains(NEW) && !reason.contains(OLD), "{reason}");

    // Both rolled out: the new fingerprint.
    seed(&double, "dynakube-activegate-tenant-secret", NEW);
    let holder = read_operator_tenant(&conn, "dynatrace", "dynakube")
        .await
        .unwrap();
    assert_eq!(
        holder,
        Holder::TenantToken {
            fingerprint: tenant_fingerprint(NEW),
            since: None
        }
    );
}

#[tokio::test]
async fn a_oneagent_only_dynakube_reads_from_its_one_secret() {
    let dir = tempfile::tempdir().unwrap();
    let double = K8sDouble::start(API_TOKEN).await;
    let conn = connection(dir.path(), &double).await;
    seed(&double, "dynakube-oneagent-tenant-secret", NEW);
    let holder = read_operator_tenant(&conn, "dynatrace", "dynakube")
        .await
        .unwrap();
    assert_eq!(
        holder,
        Holder::TenantToken {
            fingerprint: tenant_fingerprint(NEW),
            since: None
        }
    );

    // A tenant Secret without the key cannot be confirmed.
    double.seed_secret(
        "dynatrace",
        "dynakube-activegate-tenant-secret",
        &[("other", "x")],
        false,
    );
    let holder = read_operator_tenant(&conn, "dynatrace", "dynakube")
        .await
        .unwrap();
    assert_eq!(holder, Holder::Unknown);
}

fn deliverer(dir: &std::path::Path, double: &K8sDouble) -> tokensmith::deliver::Deliverer {
    let path = dir.join("kubeconfig");
    fs::write(&path, double.kubeconfig("prod", API_TOKEN)).unwrap();
    let mut settings = KubeSettings::kubeconfig_file(path);
    settings.operator_wait = std::time::Duration::from_millis(600);
    tokensmith::deliver::Deliverer::new(tokensmith::deliver::DeliveryContext::with_kube(
        dir, settings,
    ))
}

#[tokio::test]
async fn delivery_touches_the_dynakube_and_restarts_only_once_the_operator_wrote_the_token() {
    use tokensmith::deliver::Record;
    use tokensmith::model::target::{DynakubeTenantTarget, WorkloadRef};
    use tokensmith::model::{Secret, Target};

    let double = K8sDouble::start(API_TOKEN).await;
    let dk_path = double.seed_dynakube("dynakube");
    let deploy_path = "/apis/apps/v1/namespaces/dynatrace/deployments/app";
    double.seed_object(deploy_path, serde_json::json!({"kind": "Deployment", "metadata": {"name": "app"}, "spec": {"template": {"metadata": {}}}}));
    seed(&double, "dynakube-oneagent-tenant-secret", OLD);
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double);
    let t = Target::DynakubeTenant(DynakubeTenantTarget {
        context: Some("prod".into()),
        namespace: "dynatrace".into(),
        dynakube: "dynakube".into(),
        restart: vec![WorkloadRef {
            kind: "Deployment".into(),
            name: "app".into(),
        }],
    });
    let record = Record::Tenant {
        fingerprint: tenant_fingerprint(NEW),
        at: time::OffsetDateTime::now_utc(),
    };

    // The operator still holds the old token: touched, not restarted, old fingerprint.
    let out = d.deliver(&t, &Secret::from(NEW), &record).await.unwrap();
    let dk = double.object(&dk_path).unwrap();
    assert!(dk["metadata"]["annotations"]["tokensmith.dev/reconcile-requested-at"].is_string());
    assert_eq!(
        out.holder,
        Holder::TenantToken {
            fingerprint: tenant_fingerprint(OLD),
            since: None
        }
    );
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    let deploy = double.object(deploy_path).unwrap();
    assert!(deploy["spec"]["template"]["metadata"]["annotations"].is_null());
    assert!(d.verify(&t, &record).await.is_err());

    // The operator wrote the new token: restarted, new fingerprint, verified.
    seed(&double, "dynakube-oneagent-tenant-secret", NEW);
    let out = d.deliver(&t, &Secret::from(NEW), &record).await.unwrap();
    assert_eq!(
        out.holder,
        Holder::TenantToken {
            fingerprint: tenant_fingerprint(NEW),
            since: None
        }
    );
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let deploy = double.object(deploy_path).unwrap();
    assert!(deploy["spec"]["template"]["metadata"]["annotations"]
        ["kubectl.kubernetes.io/restartedAt"]
        .is_string());
    assert!(d.verify(&t, &record).await.is_ok());
    for r in double.requests() {
        assert!(!r.body.contains(NEW) && !r.body.contains(OLD));
    }

    // An access token cannot go to such a target.
    let err = d
        .deliver(
            &t,
            &Secret::from(NEW),
            &Record::token(tokensmith::model::TokenId::new("dt0c01.X"), None),
        )
        .await;
    assert!(err.is_err());
}

const SPEC_HEAD: &str = "version: 1
environments:
  prod: { url: 'https://abc12345.live.dynatrace.com', token_env: DT_PROD }
";

#[test]
fn dynakube_tenant_is_a_tenant_token_target_only() {
    let ok = format!(
        "{SPEC_HEAD}tenant_token:
  prod:
    rotate_every: 180d
    oneagents:
      - dynakube_tenant: {{ context: prod, namespace: dynatrace, dynakube: dynakube, restart: [{{ kind: Deployment, name: app }}] }}
"
    );
    let spec = tokensmith::spec::load_str(&ok, "t.yaml").unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(spec.desired.tenant_tokens.len(), 1);

    let bad = format!(
        "{SPEC_HEAD}api_tokens:
  a:
    environments: [prod]
    scopes: [metrics.ingest]
    deliver:
      - dynakube_tenant: {{ namespace: dynatrace, dynakube: dynakube }}
"
    );
    let Err(d) = tokensmith::spec::load_str(&bad, "t.yaml") else {
        panic!("a dynakube_tenant target of an access token loaded")
    };
    let errors: Vec<_> = d.errors().collect();
    assert_eq!(errors.len(), 1, "{d}");
    assert!(
        errors[0].message.contains("receives only the tenant token"),
        "{d}"
    );
    let at = errors[0].location.as_ref().unwrap();
    assert_eq!(at.line, 9, "{d}");
    assert!(at.column > 0, "{d}");

    let bad_kind = ok.replace("kind: Deployment", "kind: Pod");
    let Err(d) = tokensmith::spec::load_str(&bad_kind, "t.yaml") else {
        panic!("restart of a Pod loaded")
    };
    assert!(d.to_string().contains("kind must be Deployment"), "{d}");
}

#[tokio::test]
async fn preflight_refuses_a_cluster_where_the_rotation_could_not_be_confirmed_or_restarted() {
    use tokensmith::model::target::{DynakubeTenantTarget, WorkloadRef};
    use tokensmith::model::Target;

    let double = K8sDouble::start(API_TOKEN).await;
    let deploy_path = "/apis/apps/v1/namespaces/dynatrace/deployments/app";
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double);
    let t = Target::DynakubeTenant(DynakubeTenantTarget {
        context: Some("prod".into()),
        namespace: "dynatrace".into(),
        dynakube: "dynakube".into(),
        restart: vec![WorkloadRef {
            kind: "Deployment".into(),
            name: "app".into(),
        }],
    });
    let causes = |failures: &[tokensmith::deliver::PreflightFailure]| -> Vec<String> {
        assert!(failures.iter().all(|f| f.blocking), "{failures:?}");
        failures.iter().map(|f| f.to_string()).collect()
    };

    // No DynaKube: one failure naming it, the context and the server.
    let failures = d.preflight(std::slice::from_ref(&t)).await;
    let text = causes(&failures);
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].contains("DynaKube `dynakube` does not exist")
            && text[0].contains("context `prod`")
            && text[0].contains(&double.url()),
        "{text:?}"
    );

    // The DynaKube exists, the workload to restart does not.
    double.seed_dynakube("dynakube");
    let text = causes(&d.preflight(std::slice::from_ref(&t)).await);
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].contains("Deployment `app` does not exist"),
        "{text:?}"
    );

    // Everything there and allowed: no failure.
    double.seed_object(
        deploy_path,
        serde_json::json!({"kind": "Deployment", "metadata": {"name": "app"}, "spec": {"template": {"metadata": {}}}}),
    );
    assert_eq!(d.preflight(std::slice::from_ref(&t)).await, vec![]);

    // Each permission the delivery needs, taken away: a failure with the verb and resource.
    for (verb, resource) in [
        ("get", "secrets"),
        ("patch", "dynakubes"),
        ("patch", "deployments"),
    ] {
        let double = K8sDouble::start(API_TOKEN).await;
        double.seed_dynakube("dynakube");
        double.seed_object(
            deploy_path,
            serde_json::json!({"kind": "Deployment", "metadata": {"name": "app"}, "spec": {"template": {"metadata": {}}}}),
        );
        double.deny(verb, resource);
        let dir = tempfile::tempdir().unwrap();
        let d = deliverer(dir.path(), &double);
        let text = causes(&d.preflight(std::slice::from_ref(&t)).await);
        assert!(!text.is_empty(), "{verb} {resource}: no failure");
        assert!(
            text.iter()
                .all(|c| c.contains(verb) && c.contains(resource)),
            "{verb} {resource}: {text:?}"
        );
    }
}

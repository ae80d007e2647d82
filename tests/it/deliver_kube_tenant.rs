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

/// `dynakube_tenant: { context: prod, namespace: dynatrace, dynakube: dynakube,
/// restart: [Deployment/app] }`.
fn dynakube_tenant_target() -> tokensmith::model::Target {
    use tokensmith::model::target::{DynakubeTenantTarget, WorkloadRef};
    tokensmith::model::Target::DynakubeTenant(DynakubeTenantTarget {
        context: Some("prod".into()),
        namespace: "dynatrace".into(),
        dynakube: "dynakube".into(),
        restart: vec![WorkloadRef {
            kind: "Deployment".into(),
            name: "app".into(),
        }],
    })
}

#[tokio::test]
async fn delivery_touches_the_dynakube_and_restarts_only_once_the_operator_wrote_the_token() {
    use tokensmith::deliver::Record;
    use tokensmith::model::Secret;

    let double = K8sDouble::start(API_TOKEN).await;
    let dk_path = double.seed_dynakube("dynakube");
    let deploy_path = "/apis/apps/v1/namespaces/dynatrace/deployments/app";
    double.seed_object(deploy_path, serde_json::json!({"kind": "Deployment", "metadata": {"name": "app"}, "spec": {"template": {"metadata": {}}}}));
    seed(&double, "dynakube-oneagent-tenant-secret", OLD);
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double);
    let t = dynakube_tenant_target();
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
    // The restart onto the new token is owed, and recorded on the DynaKube.
    let owed = || {
        double.object(&dk_path).unwrap()["metadata"]["annotations"]
            ["tokensmith.dev/tenant-restart-owed"]
            .clone()
    };
    assert_eq!(owed(), serde_json::json!(tenant_fingerprint(NEW)));
    assert!(
        matches!(d.read_holder(&t).await, Holder::TenantToken { fingerprint, .. } if fingerprint == tenant_fingerprint(OLD))
    );

    // The operator writes the new token later: the target holds it, with the restart owed.
    seed(&double, "dynakube-oneagent-tenant-secret", NEW);
    assert!(
        matches!(d.read_holder(&t).await, Holder::RestartOwed { fingerprint, .. } if fingerprint == tenant_fingerprint(NEW))
    );
    // A restart that is refused stays owed: the delivery is not verified.
    double.deny("patch", "deployments");
    let out = d.deliver(&t, &Secret::from(NEW), &record).await.unwrap();
    assert!(
        out.warnings.iter().any(|w| w.contains("forbidden")),
        "{:?}",
        out.warnings
    );
    assert_eq!(owed(), serde_json::json!(tenant_fingerprint(NEW)));
    assert!(d.verify(&t, &record).await.is_err());
    double.allow("patch", "deployments");

    // Delivered again: restarted, the owed restart cleared, new fingerprint, verified.
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
    assert!(owed().is_null(), "the owed restart is paid");
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
    let double = K8sDouble::start(API_TOKEN).await;
    let deploy_path = "/apis/apps/v1/namespaces/dynatrace/deployments/app";
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path(), &double);
    let t = dynakube_tenant_target();
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

/// A tenant token rotation on an operator-run cluster, end to end: the real binary against the
/// sandbox and the Kubernetes double, with an "operator" that rolls the active tenant token out
/// whenever the DynaKube is touched (when it is running). The operator's Secrets carry their
/// write time, so the rotation is due on schedule; it starts, the operator rolls the new token
/// out, the injected workload is restarted, and after the grace the rotation finishes. With the
/// operator stopped, the apply waits `--operator-wait` and leaves the rotation open with the
/// restart owed (the operator may still fetch the new token); the operator rolls it out later,
/// and the next apply restarts the workload before it finishes.
#[test]
fn a_tenant_rotation_on_an_operator_run_cluster_restarts_then_finishes() {
    use crate::support::binary_world::{World, ENV_ID};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    const SPEC: &str = "
tenant_token:
  demo:
    rotate_every: 30d
    grace: 1h
    oneagents:
      - dynakube_tenant:
          context: prod
          namespace: dynatrace
          dynakube: dynakube
          restart: [{ kind: Deployment, name: app }]
";
    let w = Arc::new(World::new(SPEC));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let double = Arc::new(rt.block_on(K8sDouble::start(API_TOKEN)));
    let dk_path = double.seed_dynakube("dynakube");
    let deploy_path = "/apis/apps/v1/namespaces/dynatrace/deployments/app";
    double.seed_object(
        deploy_path,
        serde_json::json!({"kind": "Deployment", "metadata": {"name": "app"}, "spec": {"template": {"metadata": {}}}}),
    );
    let tenant = |w: &World| w.sandbox.snapshot().environments[ENV_ID].tenant.clone();
    // The operator writes the active tenant token into both Secrets, stamped with the time.
    let operator_writes = move |w: &World, double: &K8sDouble| {
        let at = w
            .sandbox
            .now()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let value = tenant(w).active;
        for name in [
            "dynakube-oneagent-tenant-secret",
            "dynakube-activegate-tenant-secret",
        ] {
            double.seed_secret_written_at("dynatrace", name, &[("tenant-token", &value)], &at);
        }
    };
    operator_writes(&w, &double);
    // A running operator reconciles every touch of the DynaKube; like a real controller it
    // writes the Secrets only when the token changed (a no-op update stamps nothing).
    let running = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let operator = {
        let (w, double, running, stop, dk_path) = (
            w.clone(),
            double.clone(),
            running.clone(),
            stop.clone(),
            dk_path.clone(),
        );
        std::thread::spawn(move || {
            let mut seen = serde_json::Value::Null;
            let mut written = tenant(&w).active;
            while !stop.load(Ordering::SeqCst) {
                let touched = double.object(&dk_path).unwrap()["metadata"]["annotations"]
                    ["tokensmith.dev/reconcile-requested-at"]
                    .clone();
                if running.load(Ordering::SeqCst) && touched != seen {
                    let active = tenant(&w).active;
                    if active != written {
                        operator_writes(&w, &double);
                        written = active;
                    }
                    seen = touched;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    fs::write(w.path("kubeconfig"), double.kubeconfig("prod", API_TOKEN)).unwrap();
    let kubeconfig = w.path("kubeconfig").display().to_string();
    let env = [("KUBECONFIG", kubeconfig.as_str())];
    let apply = || {
        let r = w.run_with_env(&["apply", "--auto-approve", "--operator-wait", "3s"], &env);
        crate::support::binary_world::assert_no_secret(&r.text);
        r
    };
    let plan_code = || {
        let r = w.run_with_env(&["plan", "--detailed-exitcode"], &env);
        crate::support::binary_world::assert_no_secret(&r.text);
        (r.code, r.text)
    };
    let restarted_at = || {
        double.object(deploy_path).unwrap()["spec"]["template"]["metadata"]["annotations"]
            ["kubectl.kubernetes.io/restartedAt"]
            .clone()
    };

    let first = apply();
    assert_eq!(first.code, Some(0), "{}", first.text);
    let (code, text) = plan_code();
    assert_eq!(code, Some(0), "after the first apply:\n{text}");

    // With the operator stopped (and done with any touch so far), a due rotation is started
    // and waits `--operator-wait` for the rollout in vain. The touched operator may still fetch
    // the new token later, so the rotation is not cancelled: it stays open, the old token stays
    // valid, and the DynaKube records that the restart is owed.
    running.store(false, Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(300));
    w.advance(time::Duration::days(31));
    let old = tenant(&w).active;
    let slow = apply();
    assert_eq!(slow.code, Some(1), "{}", slow.text);
    assert!(
        slow.text.contains("the rotation stays in progress"),
        "{}",
        slow.text
    );
    let t = tenant(&w);
    assert!(t.rotating(), "{}", slow.text);
    assert_eq!(t.pending_old.as_deref(), Some(old.as_str()));
    let new = t.active.clone();
    let owed = || {
        double.object(&dk_path).unwrap()["metadata"]["annotations"]
            ["tokensmith.dev/tenant-restart-owed"]
            .clone()
    };
    let new_fingerprint = tokensmith::model::target::tenant_fingerprint(&new);
    assert_eq!(owed(), serde_json::json!(new_fingerprint));
    assert!(restarted_at().is_null(), "restarted without a rollout");

    // The operator comes back and, having seen the touch, rolls the new token out on its own,
    // between two applies. The target reads as holding the active token with the restart owed:
    // not confirmed, so the rotation cannot finish with workloads on the old token.
    running.store(true, Ordering::SeqCst);
    let secret = || {
        double
            .secret_value(
                "dynatrace",
                "dynakube-oneagent-tenant-secret",
                "tenant-token",
            )
            .map(|v| String::from_utf8(v).unwrap())
    };
    for _ in 0..100 {
        if secret().as_deref() == Some(new.as_str()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        secret().as_deref(),
        Some(new.as_str()),
        "the operator rolled out"
    );
    w.advance(time::Duration::hours(2));
    let (code, text) = plan_code();
    assert_eq!(code, Some(2), "restart owed:\n{text}");
    assert!(text.contains("confirmed the new token: 0 of 1"), "{text}");
    assert!(
        text.contains(
            "after:\n        demo/tenant_token/deliver/dynakube_tenant:prod/dynatrace/dynakube"
        ),
        "the finish waits for the delivery that restarts:\n{text}"
    );
    assert!(!text.contains("tenant_schedule_unknown"), "{text}");
    let (_, drift) = {
        let r = w.run_with_env(&["drift"], &env);
        (r.code, r.text)
    };
    assert!(drift.contains("tenant_rotation_in_progress"), "{drift}");

    // The next apply restarts the workloads (the rollout is there), clears the record, and,
    // the grace being over, finishes in the same run.
    let resume = apply();
    assert_eq!(resume.code, Some(0), "{}", resume.text);
    assert!(restarted_at().is_string(), "{}", resume.text);
    assert!(owed().is_null(), "the owed restart is paid");
    let t = tenant(&w);
    assert!(!t.rotating(), "{}", resume.text);
    assert_eq!(t.active, new);
    let (code, text) = plan_code();
    assert_eq!(code, Some(0), "after the resumed rotation:\n{text}");

    // A rotation with the operator running: started, rolled out, restarted, open for the grace.
    w.advance(time::Duration::days(31));
    let old = tenant(&w).active;
    let before = restarted_at();
    let start = apply();
    assert_eq!(start.code, Some(0), "{}", start.text);
    let t = tenant(&w);
    assert!(t.rotating(), "{}", start.text);
    assert_eq!(t.pending_old.as_deref(), Some(old.as_str()));
    assert_ne!(restarted_at(), before, "{}", start.text);
    let (code, text) = plan_code();
    assert_eq!(code, Some(2), "during the grace:\n{text}");
    assert!(text.contains("confirmed the new token: 1 of 1"), "{text}");

    w.advance(time::Duration::hours(2));
    let finish = apply();
    assert_eq!(finish.code, Some(0), "{}", finish.text);
    let t = tenant(&w);
    assert!(!t.rotating(), "{}", finish.text);
    assert_ne!(t.active, old);
    let (code, text) = plan_code();
    assert_eq!(code, Some(0), "after the rotation:\n{text}");
    for r in double.requests() {
        assert!(!r.body.contains(&t.active) && !r.body.contains(&old));
    }
    stop.store(true, Ordering::SeqCst);
    operator.join().unwrap();
    drop(rt);
}

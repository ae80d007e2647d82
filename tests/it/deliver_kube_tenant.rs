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

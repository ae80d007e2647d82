//! A file target's `restart` (an ActiveGate's `authorization.properties`, then
//! `systemctl restart dynatracegateway`): the command runs after the file was written and only
//! when it changed, is never given the value, and its failure fails the delivery with the file
//! put back as it was. A run killed between the write and the restart leaves a marker, and the
//! next delivery runs the restart.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use time::macros::datetime;
use tokensmith::deliver::restart::marker_of;
use tokensmith::deliver::{Deliverer, DeliveryContext, KubeSettings, Record};
use tokensmith::model::target::tenant_fingerprint;
use tokensmith::model::{FileFormat, FileTarget, Holder, Secret, Target};

const TENANT: &str = "NEWTENANTtoken4567opaque";
const OLD_TENANT: &str = "ABCDEFGHijklmnop";

fn fixture() -> String {
    fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/deliver/authorization.properties"),
    )
    .unwrap()
}

fn deliverer(dir: &Path) -> Deliverer {
    Deliverer::new(DeliveryContext::with_kube(dir, KubeSettings::default()))
}

fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The ActiveGate's tenant token in `authorization.properties`, with `restart`.
fn ag(restart: &[&str]) -> Target {
    Target::File(FileTarget {
        path: "authorization.properties".to_owned(),
        format: FileFormat::Properties,
        key: Some("tenantToken".to_owned()),
        section: Some("abc12345".to_owned()),
        mode: "0600".to_owned(),
        restart: Some(restart.iter().map(|s| (*s).to_owned()).collect()),
    })
}

fn record() -> Record {
    Record::tenant(&Secret::from(TENANT), datetime!(2026-06-01 00:00 UTC))
}

#[tokio::test]
async fn restart_runs_after_the_edit_and_only_when_the_file_changed() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("authorization.properties"), fixture()).unwrap();
    // The "service" copies the config it would read at start, and logs its argv and environment.
    script(
        dir.path(),
        "restart.sh",
        r#"cp authorization.properties seen-at-restart.properties
echo "argv: $*" >> restarts.log
env >> restarts.env"#,
    );
    let d = deliverer(dir.path());
    let target = ag(&["./restart.sh", "dynatracegateway"]);
    let value = Secret::from(TENANT);

    let delivered = d.deliver(&target, &value, &record()).await.unwrap();
    assert!(delivered.changed);
    assert!(
        delivered.notes.iter().any(|n| n.contains("./restart.sh")),
        "{:?}",
        delivered.notes
    );
    let seen = fs::read_to_string(dir.path().join("seen-at-restart.properties")).unwrap();
    let now = fs::read_to_string(dir.path().join("authorization.properties")).unwrap();
    assert_eq!(seen, now, "the restart ran before the file was complete");
    assert!(now.contains(&format!("tenantToken = {TENANT}")), "{now}");
    assert_eq!(
        fs::read_to_string(dir.path().join("restarts.log")).unwrap(),
        "argv: dynatracegateway\n"
    );
    let env = fs::read_to_string(dir.path().join("restarts.env")).unwrap();
    assert!(!env.contains(TENANT), "the restart was given the value");
    assert!(!marker_of(
        &dir.path()
            .join("authorization.properties")
            .canonicalize()
            .unwrap()
    )
    .exists());
    assert_eq!(
        d.read_holder(&target).await,
        Holder::TenantToken {
            fingerprint: tenant_fingerprint(TENANT),
            since: Some(datetime!(2026-06-01 00:00 UTC)),
        }
    );

    // The same value again: nothing changed, no restart.
    let again = d.deliver(&target, &value, &record()).await.unwrap();
    assert!(!again.changed);
    assert_eq!(
        fs::read_to_string(dir.path().join("restarts.log"))
            .unwrap()
            .lines()
            .count(),
        1,
        "an unchanged file restarted the service"
    );
}

#[tokio::test]
async fn a_failed_restart_fails_the_delivery_and_puts_the_file_back() {
    let dir = tempfile::tempdir().unwrap();
    let original = fixture();
    let path = dir.path().join("authorization.properties");
    fs::write(&path, &original).unwrap();
    // The restart fails and quotes the config it read (secret included) on stderr.
    script(
        dir.path(),
        "restart.sh",
        r#"echo "gateway refused to start with $(grep -m1 tenantToken authorization.properties)" >&2
exit 3"#,
    );
    let d = deliverer(dir.path());
    let target = ag(&["./restart.sh"]);
    let before = d.read_holder(&target).await;
    assert_eq!(
        before,
        Holder::TenantToken {
            fingerprint: tenant_fingerprint(OLD_TENANT),
            since: None
        }
    );

    let err = d
        .deliver(&target, &Secret::from(TENANT), &record())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("status 3"), "{err}");
    assert!(err.contains("put back"), "{err}");
    assert!(!err.contains(TENANT), "secret in the error: {err}");
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        original,
        "the file was not put back byte for byte"
    );
    assert!(!marker_of(&path.canonicalize().unwrap()).exists());
    assert_eq!(d.read_holder(&target).await, before);
}

#[tokio::test]
async fn a_run_killed_before_the_restart_is_restarted_by_the_next_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authorization.properties");
    fs::write(&path, fixture()).unwrap();
    script(dir.path(), "restart.sh", "echo restarted >> restarts.log");
    let d = deliverer(dir.path());
    let value = Secret::from(TENANT);
    // The write happened (a target without restart writes the same bytes), then the process
    // died: the marker the restarting delivery leaves before writing is still there.
    let plain = Target::File(FileTarget {
        restart: None,
        ..match ag(&[]) {
            Target::File(f) => f,
            _ => unreachable!(),
        }
    });
    d.deliver(&plain, &value, &record()).await.unwrap();
    let marker = marker_of(&path.canonicalize().unwrap());
    fs::write(
        &marker,
        "tokensmith: `./restart.sh` must run after this file changed\n",
    )
    .unwrap();

    let target = ag(&["./restart.sh"]);
    assert_eq!(
        d.read_holder(&target).await,
        Holder::Unknown,
        "a target owed a restart must not look delivered"
    );
    let delivered = d.deliver(&target, &value, &record()).await.unwrap();
    assert!(delivered.changed, "the owed restart counts as a change");
    assert_eq!(
        fs::read_to_string(dir.path().join("restarts.log")).unwrap(),
        "restarted\n"
    );
    assert!(!marker.exists());
    assert!(matches!(
        d.read_holder(&target).await,
        Holder::TenantToken { .. }
    ));
}

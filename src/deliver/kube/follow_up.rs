//! Follow-ups after a Secret was written: ask the Dynatrace Operator to reconcile now by
//! annotating the DynaKube, and restart workloads that read the value only at start (the
//! `kubectl rollout restart` annotation). Failures here are warnings, not delivery failures:
//! the Secret already holds the new value, and the operator's periodic reconcile (15 minutes by
//! default) or a manual restart completes the switch.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use super::client::{self, KubeClient};
use super::hint;
use crate::model::KubernetesSecretTarget;

/// Annotation set on a DynaKube to request a reconcile.
pub const RECONCILE_ANNOTATION: &str = "tokensmith.dev/reconcile-requested-at";
/// Pod-template annotation that `kubectl rollout restart` sets.
pub const RESTARTED_AT_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";

/// `deployment/x` → `/apis/apps/v1/namespaces/<ns>/deployments/x`.
pub(super) fn workload_path(namespace: &str, workload: &str) -> Result<String, String> {
    let (kind, name) = workload.split_once('/').ok_or_else(|| {
        format!("restart entry `{workload}` must be `deployment/<name>`, `statefulset/<name>` or `daemonset/<name>`")
    })?;
    let plural = match kind.to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" => "deployments",
        "statefulset" | "statefulsets" | "sts" => "statefulsets",
        "daemonset" | "daemonsets" | "ds" => "daemonsets",
        _ => {
            return Err(format!(
                "restart entry `{workload}`: `{kind}` cannot be restarted; use deployment, statefulset or daemonset"
            ))
        }
    };
    if name.is_empty() || name.contains('/') {
        return Err(format!("restart entry `{workload}` has no valid name"));
    }
    Ok(format!(
        "/apis/apps/v1/namespaces/{namespace}/{plural}/{name}"
    ))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Touch the DynaKube and restart workloads; returns (notes, warnings).
pub(super) async fn run(
    client: &KubeClient,
    k: &KubernetesSecretTarget,
) -> (Vec<String>, Vec<String>) {
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    let now = now_rfc3339();
    if let Some(dk) = &k.touch_dynakube {
        match touch_dynakube(client, &k.namespace, dk, &now).await {
            Ok(version) => notes.push(format!("requested a reconcile of dynakube {dk} ({version})")),
            Err(e) => warnings.push(format!("could not touch dynakube {dk}: {e}; the operator picks the new value up at its next reconcile (at most 15 minutes by default)")),
        }
    }
    for w in &k.restart {
        let patch = json!({
            "spec": { "template": { "metadata": { "annotations": { RESTARTED_AT_ANNOTATION: now } } } }
        });
        let result = match workload_path(&k.namespace, w) {
            Ok(path) => patch_ok(client, &path, &patch).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => notes.push(format!("restarted {w}")),
            Err(e) => warnings.push(format!(
                "could not restart {w}: {e}; restart it by hand so it reads the new value"
            )),
        }
    }
    (notes, warnings)
}

async fn patch_ok(client: &KubeClient, path: &str, patch: &Value) -> Result<(), String> {
    let r = client
        .send(Method::PATCH, path, Some((client::MERGE_PATCH, patch)))
        .await
        .map_err(|e| format!("PATCH {}: {}", e.path, e.reason))?;
    if r.status.is_success() {
        Ok(())
    } else {
        Err(format!("PATCH {path}: {}", hint(&r.message(), r.status)))
    }
}

/// Annotate the DynaKube through the `dynatrace.com` group's preferred version; returns it.
async fn touch_dynakube(
    client: &KubeClient,
    namespace: &str,
    name: &str,
    now: &str,
) -> Result<String, String> {
    let r = client
        .send(Method::GET, "/apis/dynatrace.com", None)
        .await
        .map_err(|e| format!("GET {}: {}", e.path, e.reason))?;
    if r.status == StatusCode::NOT_FOUND {
        return Err(
            "the DynaKube API (group dynatrace.com) is not installed in this cluster".to_owned(),
        );
    }
    if !r.status.is_success() {
        return Err(format!(
            "GET /apis/dynatrace.com: {}",
            hint(&r.message(), r.status)
        ));
    }
    let group_version = r
        .body
        .pointer("/preferredVersion/groupVersion")
        .and_then(Value::as_str)
        .ok_or("the dynatrace.com API group has no preferred version")?
        .to_owned();
    let path = format!("/apis/{group_version}/namespaces/{namespace}/dynakubes/{name}");
    let patch = json!({ "metadata": { "annotations": { RECONCILE_ANNOTATION: now } } });
    patch_ok(client, &path, &patch).await?;
    Ok(group_version)
}

//! Follow-ups after a Secret was written: ask the Dynatrace Operator to reconcile now (see
//! [`super::operator::touch`]), and restart workloads that read the value only at start, the way
//! `kubectl rollout restart` does (the pod-template annotation [`RESTARTED_AT_ANNOTATION`],
//! merge-patched through kube-rs). Failures here are warnings, not delivery failures: the Secret
//! already holds the new value, and the operator's periodic reconcile (15 minutes by default) or
//! a manual restart completes the switch.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::json;
use time::OffsetDateTime;

use super::connect::{cause, Connection};
use super::operator;
use crate::model::KubernetesSecretTarget;

/// Pod-template annotation that `kubectl rollout restart` sets.
pub const RESTARTED_AT_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";

/// `deployment/x` → the apps/v1 resource and the name.
pub(super) fn workload(workload: &str) -> Result<(ApiResource, String), String> {
    let (kind, name) = workload.split_once('/').ok_or_else(|| {
        format!("restart entry `{workload}` must be `deployment/<name>`, `statefulset/<name>` or `daemonset/<name>`")
    })?;
    let (kind, plural) = match kind.to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" => ("Deployment", "deployments"),
        "statefulset" | "statefulsets" | "sts" => ("StatefulSet", "statefulsets"),
        "daemonset" | "daemonsets" | "ds" => ("DaemonSet", "daemonsets"),
        _ => {
            return Err(format!(
                "restart entry `{workload}`: `{kind}` cannot be restarted; use deployment, statefulset or daemonset"
            ))
        }
    };
    if name.is_empty() || name.contains('/') {
        return Err(format!("restart entry `{workload}` has no valid name"));
    }
    let gvk = GroupVersionKind::gvk("apps", "v1", kind);
    Ok((
        ApiResource::from_gvk_with_plural(&gvk, plural),
        name.to_owned(),
    ))
}

/// Touch the DynaKube and restart workloads; returns (notes, warnings).
pub(super) async fn run(
    conn: &Connection,
    k: &KubernetesSecretTarget,
    now: OffsetDateTime,
) -> (Vec<String>, Vec<String>) {
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    if let Some(dk) = &k.touch_dynakube {
        match operator::touch(conn, &k.namespace, dk, now).await {
            Ok(version) => notes.push(format!("requested a reconcile of dynakube {dk} ({version})")),
            Err(e) => warnings.push(format!("could not touch dynakube {dk}: {e}; the operator picks the new value up at its next reconcile (at most 15 minutes by default)")),
        }
    }
    // With its fraction of a second, unlike kubectl's: a second restart within the same second
    // (after a later rollout) must still change the template, or no new pods start.
    let stamp = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    for w in &k.restart {
        let patch = json!({
            "spec": { "template": { "metadata": { "annotations": { RESTARTED_AT_ANNOTATION: stamp } } } }
        });
        let result = match workload(w) {
            Ok((resource, name)) => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(conn.client.clone(), &k.namespace, &resource);
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("PATCH {}/{name}: {}", resource.plural, cause(&e)))
            }
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

//! The `kubernetes_secret` target: one key of a Kubernetes Secret, such as the Dynatrace
//! Operator's `dynakube` Secret (CONSUMERS.md §1, §4.1).
//!
//! Delivery reads the Secret, then creates it (POST) when it is missing, or merge-patches
//! (`application/merge-patch+json`) `data.<key>` and the annotation `tokensmith.dev/<key>-token-id`
//! with `metadata.resourceVersion` in the patch, so a concurrent writer makes the patch fail with
//! 409 instead of being overwritten; on 409 it re-reads and tries again, a bounded number of
//! times. The value is written as base64 of its raw bytes with no trailing newline (the operator
//! rejects whitespace). An immutable Secret that holds another value is a clear error.
//!
//! Follow-ups, run on every delivery (so a resumed apply finishes what a crashed one started)
//! and reported as warnings rather than failures, because the Secret already holds the new value:
//! - `touch_dynakube`: merge-patch the annotation `tokensmith.dev/reconcile-requested-at` on the
//!   DynaKube so the operator reconciles now rather than within 15 minutes. The API version is
//!   not hard-coded: the group `dynatrace.com` is discovered (`GET /apis/dynatrace.com`) and its
//!   `preferredVersion` used, because operator releases serve different versions (`v1beta3` …
//!   `v1beta5`, later `v1`) and a metadata-only merge patch means the same in all of them.
//! - `restart`: `deployment/x`, `statefulset/x`, `daemonset/x` get the pod-template annotation
//!   `kubectl.kubernetes.io/restartedAt`, exactly what `kubectl rollout restart` does.
//!
//! Reading the holder uses the value (its public id, or its fingerprint) and the annotation; see
//! [`super::record::holder_from`].

pub mod client;
pub mod config;
mod follow_up;

use std::time::Duration;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub use client::{ClientCache, KubeClient};
pub use config::{InCluster, KubeSettings};

use super::error::{DeliverError, HolderText};
use super::record::{holder_from, same_token, Record};
use super::{redact, Delivered, DeliveryContext, Verified};
use crate::model::{Holder, KubernetesSecretTarget, Secret, Target};

/// Annotation prefix for records and reconcile requests.
pub const ANNOTATION_PREFIX: &str = "tokensmith.dev/";
pub use follow_up::{RECONCILE_ANNOTATION, RESTARTED_AT_ANNOTATION};

/// How many times a write is retried after a 409 conflict.
pub const MAX_ATTEMPTS: u32 = 5;

/// The annotation that records which token `key` holds.
pub fn record_annotation(key: &str) -> String {
    format!("{ANNOTATION_PREFIX}{key}-token-id")
}

/// Secret fields tokensmith reads.
struct SecretState {
    resource_version: Option<String>,
    immutable: bool,
    /// base64 as stored.
    data: Option<String>,
    annotation: Option<String>,
}

fn secret_path(k: &KubernetesSecretTarget) -> String {
    format!("/api/v1/namespaces/{}/secrets/{}", k.namespace, k.name)
}

fn kube_err(target: &Target, method: &'static str, path: &str, reason: String) -> DeliverError {
    DeliverError::Kube {
        address: target.address(),
        method,
        path: path.to_owned(),
        reason,
    }
}

async fn client(
    ctx: &DeliveryContext,
    target: &Target,
    k: &KubernetesSecretTarget,
) -> Result<std::sync::Arc<KubeClient>, DeliverError> {
    ctx.kube_clients
        .get(&ctx.kube, k.context.as_deref())
        .await
        .map_err(|reason| DeliverError::KubeConfig {
            address: target.address(),
            reason,
        })
}

fn check_names(target: &Target, k: &KubernetesSecretTarget) -> Result<(), DeliverError> {
    let content = |reason: String| DeliverError::Content {
        address: target.address(),
        reason,
    };
    let dns = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    };
    if !dns(&k.namespace) || !dns(&k.name) {
        return Err(content(format!(
            "`{}/{}` is not a valid namespace/name (lowercase letters, digits, `-`, `.`)",
            k.namespace, k.name
        )));
    }
    if k.key.is_empty()
        || !k
            .key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(content(format!(
            "`{}` is not a valid Secret key (letters, digits, `-`, `_`, `.`)",
            k.key
        )));
    }
    let annotation = record_annotation(&k.key);
    let name_part = &annotation[ANNOTATION_PREFIX.len()..];
    if name_part.len() > 63 || !name_part.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(content(format!(
            "the record annotation `{annotation}` would be invalid (its name part must be at most 63 characters and start with a letter or digit); use a shorter key"
        )));
    }
    for w in &k.restart {
        follow_up::workload_path(&k.namespace, w).map_err(content)?;
    }
    Ok(())
}

async fn get_secret(
    client: &KubeClient,
    target: &Target,
    k: &KubernetesSecretTarget,
) -> Result<Option<SecretState>, DeliverError> {
    let path = secret_path(k);
    let r = client
        .send(Method::GET, &path, None)
        .await
        .map_err(|e| kube_err(target, e.method, &e.path, e.reason))?;
    match r.status {
        StatusCode::NOT_FOUND => Ok(None),
        s if s.is_success() => {
            let b = &r.body;
            let annotation = record_annotation(&k.key);
            Ok(Some(SecretState {
                resource_version: b
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                immutable: b.get("immutable").and_then(Value::as_bool).unwrap_or(false),
                data: b
                    .get("data")
                    .and_then(|d| d.get(&k.key))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                annotation: b
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(&annotation))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }))
        }
        _ => Err(kube_err(target, "GET", &path, hint(&r.message(), r.status))),
    }
}

pub(crate) fn hint(message: &str, status: StatusCode) -> String {
    match status {
        StatusCode::UNAUTHORIZED => {
            format!("{message}; the credentials were rejected, check the kubeconfig user")
        }
        StatusCode::FORBIDDEN => format!(
            "{message}; grant get, create and patch on secrets (limited with resourceNames) to the user"
        ),
        _ => message.to_owned(),
    }
}

/// The value stored under the key, decoded; `Err` with a secret-free reason if it is not text.
fn decode_value(b64: &str) -> Result<String, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the Secret's data is not valid base64".to_owned())?;
    String::from_utf8(bytes).map_err(|_| "the Secret's value is not UTF-8 text".to_owned())
}

pub(super) async fn read_holder(
    ctx: &DeliveryContext,
    target: &Target,
    k: &KubernetesSecretTarget,
) -> Result<Holder, DeliverError> {
    let client = client(ctx, target, k).await?;
    let Some(secret) = get_secret(&client, target, k).await? else {
        return Ok(Holder::Absent);
    };
    holder_of(target, &secret)
}

/// The value stored under the target's key; `None` when the Secret or the key is missing.
pub(super) async fn read_value(
    ctx: &DeliveryContext,
    target: &Target,
    k: &KubernetesSecretTarget,
) -> Result<Option<Secret<String>>, DeliverError> {
    let client = client(ctx, target, k).await?;
    let Some(secret) = get_secret(&client, target, k).await? else {
        return Ok(None);
    };
    match &secret.data {
        None => Ok(None),
        Some(b64) => {
            let value = decode_value(b64).map_err(|reason| DeliverError::Content {
                address: target.address(),
                reason,
            })?;
            Ok(Some(Secret::new(value)).filter(|v| !v.expose().is_empty()))
        }
    }
}

fn holder_of(target: &Target, secret: &SecretState) -> Result<Holder, DeliverError> {
    let record = secret.annotation.as_deref().and_then(Record::decode);
    match &secret.data {
        None => Ok(Holder::Unknown),
        Some(b64) => {
            let value = decode_value(b64).map_err(|reason| DeliverError::Content {
                address: target.address(),
                reason,
            })?;
            Ok(holder_from(Some(&value), record))
        }
    }
}

pub(super) async fn deliver(
    ctx: &DeliveryContext,
    target: &Target,
    k: &KubernetesSecretTarget,
    value: &Secret<String>,
    record: &Record,
) -> Result<Delivered, DeliverError> {
    check_names(target, k)?;
    let client = client(ctx, target, k).await?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(value.expose().as_bytes());
    let annotation = record_annotation(&k.key);
    let record_text = record.encode();
    let path = secret_path(k);
    let mut changed = None;
    for attempt in 1..=MAX_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
        }
        match get_secret(&client, target, k).await? {
            None => {
                let body = json!({
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {
                        "name": k.name,
                        "namespace": k.namespace,
                        "annotations": { annotation.clone(): record_text },
                    },
                    "type": "Opaque",
                    "data": { k.key.clone(): encoded },
                });
                let create_path = format!("/api/v1/namespaces/{}/secrets", k.namespace);
                let r = client
                    .send(
                        Method::POST,
                        &create_path,
                        Some(("application/json", &body)),
                    )
                    .await
                    .map_err(|e| kube_err(target, e.method, &e.path, e.reason))?;
                match r.status {
                    s if s.is_success() => {
                        changed = Some(true);
                        break;
                    }
                    // Someone created it meanwhile: read it and patch.
                    StatusCode::CONFLICT => continue,
                    s => {
                        return Err(kube_err(
                            target,
                            "POST",
                            &create_path,
                            redact(&hint(&r.message(), s), value),
                        ))
                    }
                }
            }
            Some(secret) => {
                if secret.data.as_deref() == Some(encoded.as_str())
                    && secret.annotation.as_deref() == Some(record_text.as_str())
                {
                    changed = Some(false);
                    break;
                }
                if secret.immutable {
                    return Err(DeliverError::Immutable {
                        address: target.address(),
                        namespace: k.namespace.clone(),
                        name: k.name.clone(),
                    });
                }
                let mut metadata = json!({ "annotations": { annotation.clone(): record_text } });
                if let Some(rv) = &secret.resource_version {
                    metadata["resourceVersion"] = json!(rv);
                }
                let patch = json!({
                    "metadata": metadata,
                    "data": { k.key.clone(): encoded },
                });
                let r = client
                    .send(Method::PATCH, &path, Some((client::MERGE_PATCH, &patch)))
                    .await
                    .map_err(|e| kube_err(target, e.method, &e.path, e.reason))?;
                match r.status {
                    s if s.is_success() => {
                        changed = Some(true);
                        break;
                    }
                    StatusCode::CONFLICT => continue,
                    // The Secret was created or made immutable between our read and write.
                    StatusCode::UNPROCESSABLE_ENTITY
                        if r.message().to_ascii_lowercase().contains("immutable") =>
                    {
                        return Err(DeliverError::Immutable {
                            address: target.address(),
                            namespace: k.namespace.clone(),
                            name: k.name.clone(),
                        })
                    }
                    s => {
                        return Err(kube_err(
                            target,
                            "PATCH",
                            &path,
                            redact(&hint(&r.message(), s), value),
                        ))
                    }
                }
            }
        }
    }
    let Some(changed) = changed else {
        return Err(DeliverError::Conflict {
            address: target.address(),
            attempts: MAX_ATTEMPTS,
        });
    };
    let (notes, warnings) = follow_up::run(&client, k).await;
    Ok(Delivered {
        address: target.address(),
        holder: record.holder(),
        changed,
        notes,
        warnings,
    })
}

pub(super) async fn verify(
    ctx: &DeliveryContext,
    target: &Target,
    k: &KubernetesSecretTarget,
    record: &Record,
) -> Result<Verified, DeliverError> {
    let client = client(ctx, target, k).await?;
    let expected = record.holder();
    let Some(secret) = get_secret(&client, target, k).await? else {
        return Err(DeliverError::Mismatch {
            address: target.address(),
            expected: HolderText(expected),
            found: HolderText(Holder::Absent),
        });
    };
    let found = holder_of(target, &secret)?;
    let recorded = secret.annotation.as_deref() == Some(record.encode().as_str());
    if !same_token(&found, &expected) || !recorded {
        let found = if same_token(&found, &expected) {
            Holder::Unknown
        } else {
            found
        };
        return Err(DeliverError::Mismatch {
            address: target.address(),
            expected: HolderText(expected),
            found: HolderText(found),
        });
    }
    Ok(Verified::ReadBack(found))
}

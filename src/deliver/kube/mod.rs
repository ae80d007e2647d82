//! The `kubernetes_secret` target: one key of a Kubernetes Secret, such as the Dynatrace
//! Operator's `dynakube` Secret (CONSUMERS.md §1, §4.1), written through kube-rs.
//!
//! Delivery reads the Secret, then creates it when it is missing (type `Opaque`, the label
//! `app.kubernetes.io/managed-by: tokensmith` and the record annotation), or merge-patches
//! (`application/merge-patch+json`) only `data.<key>` and tokensmith's own annotations, with the
//! `metadata.resourceVersion` it read in the patch, so a concurrent writer makes the patch fail
//! with 409 instead of being overwritten; on 409 it re-reads and tries again, a bounded number of
//! times. Other keys are never sent. The value is written as its raw bytes (base64 on the wire)
//! with no trailing newline (the operator rejects whitespace). The record (the token id, and its
//! expiry when it has one) stays in the annotation `tokensmith.dev/<key>-token-id`. An immutable
//! Secret that holds another value is a clear error.
//!
//! Proof from the operator ([`operator`]): for `apiToken` and `dataIngestToken` of a target with
//! `touch_dynakube`, the delivery also records `tokensmith.dev/<key>-awaiting-operator:
//! "<id> since <time>"`, touches the DynaKube and waits (up to
//! [`KubeSettings::operator_wait`]) for the operator's verdict on the new token:
//! - valid: the awaiting annotation is removed; the delivery is confirmed.
//! - invalid (a required scope missing, a bad token): the Secret is put back as it was (the
//!   predecessor's value and record, or no key), `tokensmith.dev/<key>-rejected` says which
//!   token the operator rejected and why, and the delivery fails with the operator's message,
//!   so the predecessor is never revoked and the new token is cleaned up.
//! - no verdict in time: the delivery succeeds with a warning; while the annotation stands,
//!   `read_holder` reports the target unreadable with the reason, so no plan revokes the
//!   predecessor until the operator reports the new token valid.
//!
//! Follow-ups (`follow_up`), run on every delivery (so a resumed apply finishes what a crashed
//! one started) and reported as warnings rather than failures: the DynaKube touch and workload
//! restarts. Plan-time checks live in [`mod@preflight`]; connections and error causes in
//! [`connect`].

pub mod bounded;
pub mod connect;
mod follow_up;
mod no_proxy;
pub mod operator;
pub mod preflight;
pub mod tenant;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub use connect::{ClientCache, Connection, KubeSettings};
pub use follow_up::RESTARTED_AT_ANNOTATION;
pub use operator::RECONCILE_ANNOTATION;
pub use preflight::{preflight, PreflightFailure};

use super::error::{DeliverError, HolderText};
use super::record::{holder_from, same_token, Record};
use super::{redact, Delivered, DeliveryContext, Verified};
use crate::model::{Holder, KubernetesSecretTarget, Secret, Target};
use connect::{cause, Failure};
use operator::Verdict;

/// Annotation prefix for records and reconcile requests.
pub const ANNOTATION_PREFIX: &str = "tokensmith.dev/";

/// The label a Secret created by tokensmith carries.
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "tokensmith");

/// How many times a write is retried after a 409 conflict.
pub const MAX_ATTEMPTS: u32 = 5;

/// How often the DynaKube is read while waiting for the operator.
const OPERATOR_POLL: Duration = Duration::from_millis(500);

/// The annotation that records which token `key` holds.
pub fn record_annotation(key: &str) -> String {
    format!("{ANNOTATION_PREFIX}{key}-token-id")
}

/// The annotation naming the token of `key` that the operator has not confirmed yet.
pub fn awaiting_annotation(key: &str) -> String {
    format!("{ANNOTATION_PREFIX}{key}-awaiting-operator")
}

/// The annotation naming the last token of `key` the operator rejected, and why.
pub fn rejected_annotation(key: &str) -> String {
    format!("{ANNOTATION_PREFIX}{key}-rejected")
}

/// Whether deliveries to `k` wait for the operator's verdict.
pub fn operator_confirms(k: &KubernetesSecretTarget) -> bool {
    k.touch_dynakube.is_some() && operator::CONFIRMED_KEYS.contains(&k.key.as_str())
}

/// Secret fields tokensmith reads.
struct SecretState {
    resource_version: Option<String>,
    immutable: bool,
    value: Option<Vec<u8>>,
    annotations: BTreeMap<String, String>,
}

impl SecretState {
    fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations.get(name).map(String::as_str)
    }
}

fn secret_path(k: &KubernetesSecretTarget) -> String {
    format!("/api/v1/namespaces/{}/secrets/{}", k.namespace, k.name)
}

fn kube_err(
    target: &Target,
    conn: &Connection,
    method: &'static str,
    path: &str,
    e: &kube::Error,
) -> DeliverError {
    let failure = Failure::of(e);
    let reason = match failure.status {
        None if matches!(e, kube::Error::Auth(_)) => {
            format!("{} for {}", failure.cause, conn.describe())
        }
        None if bounded::Exceeded::in_chain(e).is_some() => {
            format!("{}: {}", conn.describe(), failure.cause)
        }
        None => format!("cannot reach the API server {}: {}", conn.describe(), failure.cause),
        Some(403) => format!(
            "{} at {}; grant get, create and patch on secrets (limited with resourceNames) to the user",
            failure.cause,
            conn.describe()
        ),
        Some(_) => format!("{} at {}", failure.cause, conn.describe()),
    };
    DeliverError::Kube {
        address: target.address(),
        method,
        path: path.to_owned(),
        reason,
    }
}

async fn connection(
    ctx: &DeliveryContext,
    target: &Target,
    k: &KubernetesSecretTarget,
) -> Result<std::sync::Arc<Connection>, DeliverError> {
    ctx.kube_clients
        .get(&ctx.kube, k.context.as_deref())
        .await
        .map_err(|reason| DeliverError::KubeConfig {
            address: target.address(),
            reason,
        })
}

fn secrets(conn: &Connection, k: &KubernetesSecretTarget) -> Api<KubeSecret> {
    Api::namespaced(conn.client.clone(), &k.namespace)
}

pub(crate) fn check_names(target: &Target, k: &KubernetesSecretTarget) -> Result<(), DeliverError> {
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
        follow_up::workload(w).map_err(content)?;
    }
    Ok(())
}

async fn get_secret(
    conn: &Connection,
    target: &Target,
    k: &KubernetesSecretTarget,
) -> Result<Option<SecretState>, DeliverError> {
    let secret = secrets(conn, k)
        .get_opt(&k.name)
        .await
        .map_err(|e| kube_err(target, conn, "GET", &secret_path(k), &e))?;
    Ok(secret.map(|s| SecretState {
        resource_version: s.metadata.resource_version,
        immutable: s.immutable.unwrap_or(false),
        value: s.data.and_then(|mut d| d.remove(&k.key)).map(|b| b.0),
        annotations: s.metadata.annotations.unwrap_or_default(),
    }))
}

/// The value stored under the key as text; `Err` with a secret-free reason if it is not text.
fn decode_value(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "the Secret's value is not UTF-8 text".to_owned())
}

/// `"<id> since <time>"` → (id, time).
fn parse_awaiting(text: &str) -> Option<(&str, OffsetDateTime)> {
    let (id, since) = text.split_once(" since ")?;
    Some((id, OffsetDateTime::parse(since, &Rfc3339).ok()?))
}

pub(super) async fn read_holder(
    ctx: &DeliveryContext,
    target: &Target,
    k: &KubernetesSecretTarget,
) -> Result<Holder, DeliverError> {
    let conn = connection(ctx, target, k).await?;
    let Some(secret) = get_secret(&conn, target, k).await? else {
        return Ok(Holder::Absent);
    };
    let holder = holder_of(target, k, &secret)?;
    if let (Holder::Token { id, .. }, Some(dk)) = (&holder, &k.touch_dynakube) {
        let awaiting = secret
            .annotation(&awaiting_annotation(&k.key))
            .and_then(parse_awaiting)
            .filter(|(waiting_for, _)| *waiting_for == id.as_str());
        if let Some((_, since)) = awaiting {
            let reason = match operator::get_dynakube(&conn, &k.namespace, dk).await {
                Ok(Some(object)) => {
                    match operator::verdict(&object, &k.key, Some(since), OffsetDateTime::now_utc())
                    {
                        Verdict::Valid { .. } => return Ok(holder),
                        Verdict::Pending(why) => why,
                        Verdict::Invalid(why) => why,
                    }
                }
                Ok(None) => format!("dynakube {}/{dk} does not exist", k.namespace),
                Err(e) => e,
            };
            return Ok(Holder::Unreadable {
                reason: format!(
                    "it holds {id}, which the Dynatrace Operator has not confirmed: {reason}; its predecessor is kept until the operator reports {id} valid"
                ),
            });
        }
    }
    Ok(holder)
}

/// The value stored under the target's key; `None` when the Secret or the key is missing.
pub(super) async fn read_value(
    ctx: &DeliveryContext,
    target: &Target,
    k: &KubernetesSecretTarget,
) -> Result<Option<Secret<String>>, DeliverError> {
    let conn = connection(ctx, target, k).await?;
    let Some(secret) = get_secret(&conn, target, k).await? else {
        return Ok(None);
    };
    match &secret.value {
        None => Ok(None),
        Some(bytes) => {
            let value = decode_value(bytes).map_err(|reason| DeliverError::Content {
                address: target.address(),
                reason,
            })?;
            Ok(Some(Secret::new(value)).filter(|v| !v.expose().is_empty()))
        }
    }
}

fn holder_of(
    target: &Target,
    k: &KubernetesSecretTarget,
    secret: &SecretState,
) -> Result<Holder, DeliverError> {
    let record = secret
        .annotation(&record_annotation(&k.key))
        .and_then(Record::decode);
    match &secret.value {
        None => Ok(Holder::Unknown),
        Some(bytes) => {
            let value = decode_value(bytes).map_err(|reason| DeliverError::Content {
                address: target.address(),
                reason,
            })?;
            Ok(holder_from(Some(&value), record))
        }
    }
}

/// What the Secret held before a write, to put back if the operator rejects the new token.
struct Previous {
    value: Option<Vec<u8>>,
    record: Option<String>,
}

pub(super) async fn deliver(
    ctx: &DeliveryContext,
    target: &Target,
    k: &KubernetesSecretTarget,
    value: &Secret<String>,
    record: &Record,
) -> Result<Delivered, DeliverError> {
    check_names(target, k)?;
    let conn = connection(ctx, target, k).await?;
    let api = secrets(&conn, k);
    let bytes = value.expose().as_bytes().to_vec();
    let record_name = record_annotation(&k.key);
    let record_text = record.encode();
    // The token alone (its id), for the awaiting annotation and for messages.
    let subject = record.subject();
    let confirm = operator_confirms(k);
    let written_at = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    // The awaiting annotation names the token by its id alone (`<id> since <time>`).
    let awaiting_text = format!("{subject} since {}", operator::rfc3339(written_at));
    let path = secret_path(k);
    let mut outcome: Option<Option<Previous>> = None;
    let mut changed = false;
    let mut awaiting_since: Option<OffsetDateTime> = None;
    for attempt in 1..=MAX_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
        }
        match get_secret(&conn, target, k).await? {
            None => {
                let mut annotations = BTreeMap::from([(record_name.clone(), record_text.clone())]);
                if confirm {
                    annotations.insert(awaiting_annotation(&k.key), awaiting_text.clone());
                }
                let secret = KubeSecret {
                    metadata: ObjectMeta {
                        name: Some(k.name.clone()),
                        namespace: Some(k.namespace.clone()),
                        labels: Some(BTreeMap::from([(
                            MANAGED_BY_LABEL.0.to_owned(),
                            MANAGED_BY_LABEL.1.to_owned(),
                        )])),
                        annotations: Some(annotations),
                        ..ObjectMeta::default()
                    },
                    type_: Some("Opaque".to_owned()),
                    data: Some(BTreeMap::from([(k.key.clone(), ByteString(bytes.clone()))])),
                    ..KubeSecret::default()
                };
                match api.create(&PostParams::default(), &secret).await {
                    Ok(_) => {
                        changed = true;
                        outcome = Some(None);
                        break;
                    }
                    // Someone created it meanwhile: read it and patch.
                    Err(e) if Failure::of(&e).is(409) => continue,
                    Err(e) => {
                        return Err(redacted(
                            kube_err(
                                target,
                                &conn,
                                "POST",
                                &format!("/api/v1/namespaces/{}/secrets", k.namespace),
                                &e,
                            ),
                            value,
                        ))
                    }
                }
            }
            Some(secret) => {
                if secret.value.as_deref() == Some(bytes.as_slice())
                    && secret.annotation(&record_name) == Some(record_text.as_str())
                {
                    // Delivered before; if the operator's verdict is still awaited, wait for
                    // it again (from the time of that delivery).
                    awaiting_since = secret
                        .annotation(&awaiting_annotation(&k.key))
                        .and_then(parse_awaiting)
                        .filter(|(id, _)| confirm && *id == subject)
                        .map(|(_, since)| since);
                    outcome = Some(None);
                    break;
                }
                if secret.immutable {
                    return Err(immutable(target, k));
                }
                let mut annotations = json!({ record_name.clone(): record_text });
                if confirm {
                    annotations[awaiting_annotation(&k.key)] = json!(awaiting_text);
                    annotations[rejected_annotation(&k.key)] = Value::Null;
                }
                let mut metadata = json!({ "annotations": annotations });
                if let Some(rv) = &secret.resource_version {
                    metadata["resourceVersion"] = json!(rv);
                }
                let patch = json!({
                    "metadata": metadata,
                    "data": { k.key.clone(): ByteString(bytes.clone()) },
                });
                match api
                    .patch(&k.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        changed = true;
                        outcome = Some(Some(Previous {
                            value: secret.value.clone(),
                            record: secret.annotation(&record_name).map(str::to_owned),
                        }));
                        break;
                    }
                    // A concurrent writer, or the Secret was deleted meanwhile: read again.
                    Err(e) if Failure::of(&e).is(409) || Failure::of(&e).is(404) => continue,
                    // The Secret was made immutable between our read and write.
                    Err(e)
                        if Failure::of(&e).is(422)
                            && cause(&e).to_ascii_lowercase().contains("immutable") =>
                    {
                        return Err(immutable(target, k))
                    }
                    Err(e) => {
                        return Err(redacted(kube_err(target, &conn, "PATCH", &path, &e), value))
                    }
                }
            }
        }
    }
    let Some(previous) = outcome else {
        return Err(DeliverError::Conflict {
            address: target.address(),
            attempts: MAX_ATTEMPTS,
        });
    };
    let (mut notes, mut warnings) = follow_up::run(&conn, k, OffsetDateTime::now_utc()).await;
    let since = if changed {
        Some(written_at)
    } else {
        awaiting_since
    };
    if let (true, Some(since)) = (confirm, since) {
        let dk = k.touch_dynakube.as_deref().unwrap_or_default();
        match wait_for_operator(&conn, k, dk, since, ctx.kube.operator_wait).await {
            Verdict::Valid { notes: optional } => {
                notes.push(format!(
                    "dynakube {}/{dk} reports the new token valid",
                    k.namespace
                ));
                warnings.extend(optional);
                let clear = json!({ "metadata": { "annotations": { awaiting_annotation(&k.key): null } } });
                if let Err(e) = api.patch(&k.name, &PatchParams::default(), &Patch::Merge(&clear)).await {
                    warnings.push(format!(
                        "the operator confirmed the token, but the annotation {} could not be removed: {}",
                        awaiting_annotation(&k.key),
                        cause(&e)
                    ));
                }
            }
            Verdict::Pending(why) => warnings.push(format!(
                "unconfirmed: {why}; the Secret holds {subject} and its predecessor is kept until the operator reports it valid"
            )),
            // Written by an earlier run: there is no earlier value to put back.
            Verdict::Invalid(why) if !changed => {
                return Err(DeliverError::Operator {
                    address: target.address(),
                    reason: format!("{why}; the Secret holds {subject}, delivered earlier"),
                });
            }
            Verdict::Invalid(why) => {
                let restored = roll_back(&conn, target, k, previous, &subject, &why).await;
                let _ = follow_up::run(&conn, k, OffsetDateTime::now_utc()).await;
                return Err(DeliverError::Operator {
                    address: target.address(),
                    reason: redact(&format!("{why}; {restored}"), value),
                });
            }
        }
    }
    Ok(Delivered {
        address: target.address(),
        holder: record.holder(),
        changed,
        notes,
        warnings,
    })
}

fn immutable(target: &Target, k: &KubernetesSecretTarget) -> DeliverError {
    DeliverError::Immutable {
        address: target.address(),
        namespace: k.namespace.clone(),
        name: k.name.clone(),
    }
}

fn redacted(e: DeliverError, value: &Secret<String>) -> DeliverError {
    match e {
        DeliverError::Kube {
            address,
            method,
            path,
            reason,
        } => DeliverError::Kube {
            address,
            method,
            path,
            reason: redact(&reason, value),
        },
        other => other,
    }
}

/// Poll the DynaKube until the operator reports on the token written at `since`, or `wait` ends.
async fn wait_for_operator(
    conn: &Connection,
    k: &KubernetesSecretTarget,
    dk: &str,
    since: OffsetDateTime,
    wait: Duration,
) -> Verdict {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let verdict = match operator::get_dynakube(conn, &k.namespace, dk).await {
            Ok(Some(object)) => {
                operator::verdict(&object, &k.key, Some(since), OffsetDateTime::now_utc())
            }
            Ok(None) => Verdict::Pending(format!("dynakube {}/{dk} does not exist", k.namespace)),
            Err(e) => Verdict::Pending(e),
        };
        if !matches!(verdict, Verdict::Pending(_)) || tokio::time::Instant::now() >= deadline {
            return verdict;
        }
        tokio::time::sleep(OPERATOR_POLL).await;
    }
}

/// Put the Secret's key back as it was before the rejected write, recording the rejection.
/// Returns what was done, for the error message.
async fn roll_back(
    conn: &Connection,
    target: &Target,
    k: &KubernetesSecretTarget,
    previous: Option<Previous>,
    rejected_id: &str,
    why: &str,
) -> String {
    let previous = previous.unwrap_or(Previous {
        value: None,
        record: None,
    });
    let stamp = operator::rfc3339(OffsetDateTime::now_utc());
    let mut last = String::new();
    for _ in 0..MAX_ATTEMPTS {
        let rv = match get_secret(conn, target, k).await {
            Ok(Some(s)) => s.resource_version,
            Ok(None) => return "the Secret is gone".to_owned(),
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        let patch = json!({
            "metadata": {
                "resourceVersion": rv,
                "annotations": {
                    record_annotation(&k.key): previous.record,
                    awaiting_annotation(&k.key): null,
                    rejected_annotation(&k.key): format!("{rejected_id} at {stamp}: {why}"),
                },
            },
            "data": { k.key.clone(): previous.value.clone().map(ByteString) },
        });
        match secrets(conn, k)
            .patch(&k.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                return match &previous.record {
                    Some(r) => format!("the Secret holds {r} again and {rejected_id} is not used"),
                    None if previous.value.is_some() => {
                        format!("the Secret holds its previous value again and {rejected_id} is not used")
                    }
                    None => format!("the key was removed again and {rejected_id} is not used"),
                }
            }
            Err(e) if Failure::of(&e).is(409) => continue,
            Err(e) => {
                last = cause(&e);
                break;
            }
        }
    }
    format!("the Secret could not be put back ({last}); it still holds {rejected_id}")
}

pub(super) async fn verify(
    ctx: &DeliveryContext,
    target: &Target,
    k: &KubernetesSecretTarget,
    record: &Record,
) -> Result<Verified, DeliverError> {
    let conn = connection(ctx, target, k).await?;
    let expected = record.holder();
    let Some(secret) = get_secret(&conn, target, k).await? else {
        return Err(DeliverError::Mismatch {
            address: target.address(),
            expected: HolderText(expected),
            found: HolderText(Holder::Absent),
        });
    };
    let found = holder_of(target, k, &secret)?;
    let recorded = secret.annotation(&record_annotation(&k.key)) == Some(record.encode().as_str());
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

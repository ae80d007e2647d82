//! Reading which tenant token the Dynatrace Operator has rolled out to a cluster
//! (CONSUMERS.md §1.5). The operator fetches the tenant token from `connectioninfo` itself and
//! writes it into `<dynakube>-oneagent-tenant-secret` and, when the DynaKube runs an
//! ActiveGate, `<dynakube>-activegate-tenant-secret`, key `tenant-token`. tokensmith never
//! writes those Secrets; it reads them and reports the fingerprint they hold as
//! [`Holder::TenantToken`], so the planner's confirmation by read-back applies unchanged. Its
//! `since` is when the operator wrote the Secrets (their managed-fields time, else creation),
//! which is what lets a cluster-only tenant token be rotated on schedule.
//!
//! Delivery touches the DynaKube and, once the operator has written the new token, restarts
//! the injected workloads (they read the tenant token only when they start). When the operator
//! is slower than `--operator-wait`, the restart is owed: the DynaKube's annotation
//! [`RESTART_OWED_ANNOTATION`] names the token, and until a later delivery has restarted the
//! workloads the target reads as [`Holder::RestartOwed`], so the planner delivers again (and
//! never finishes a rotation while running workloads still use the old token).
//!
//! It does not decide whether the fingerprint is the active one (the planner does).
//!
//! [`RESTART_OWED_ANNOTATION`]: super::operator::RESTART_OWED_ANNOTATION

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::Api;

use time::OffsetDateTime;

use super::connect::{cause, Connection};
use super::{follow_up, operator, OPERATOR_POLL};
use crate::deliver::error::{DeliverError, HolderText};
use crate::deliver::record::{same_token, Record};
use crate::deliver::{Delivered, DeliveryContext, Verified};
use crate::model::target::{tenant_fingerprint, DynakubeTenantTarget, WorkloadRef};
use crate::model::{Holder, KubernetesSecretTarget, Secret, Target};

/// The key of the operator's tenant Secrets that holds the tenant token.
pub const TENANT_TOKEN_KEY: &str = "tenant-token";

/// The operator's tenant Secrets of DynaKube `dynakube`: OneAgent first, then ActiveGate.
pub fn tenant_secret_names(dynakube: &str) -> [String; 2] {
    [
        format!("{dynakube}-oneagent-tenant-secret"),
        format!("{dynakube}-activegate-tenant-secret"),
    ]
}

/// What the operator's tenant Secrets of `namespace/dynakube` hold:
/// - none exists: [`Holder::Absent`] (the operator has not reconciled this DynaKube yet);
/// - an existing Secret without the key, or with a value that is not text: [`Holder::Unknown`];
/// - every existing Secret holds the same token: [`Holder::TenantToken`] with its fingerprint;
/// - they hold different tokens (the operator is midway through an update):
///   [`Holder::Unreadable`] naming both fingerprints, so no plan confirms the cluster until the
///   operator has written both.
///
/// `since` is left empty: the operator does not record when it wrote the value.
/// Errors are secret-free (the value is only ever fingerprinted).
pub async fn read_operator_tenant(
    conn: &Connection,
    namespace: &str,
    dynakube: &str,
) -> Result<Holder, String> {
    let api: Api<KubeSecret> = Api::namespaced(conn.client.clone(), namespace);
    let mut seen: Vec<(String, String)> = Vec::new();
    // When the cluster received the token: the earliest write of the Secrets holding it.
    let mut since: Option<OffsetDateTime> = None;
    for name in tenant_secret_names(dynakube) {
        let secret = api.get_opt(&name).await.map_err(|e| {
            format!(
                "GET /api/v1/namespaces/{namespace}/secrets/{name} at {}: {}",
                conn.describe(),
                cause(&e)
            )
        })?;
        let Some(secret) = secret else { continue };
        let written = written_at(&secret);
        let value = secret
            .data
            .and_then(|mut d| d.remove(TENANT_TOKEN_KEY))
            .and_then(|b| String::from_utf8(b.0).ok());
        let Some(value) = value else {
            return Ok(Holder::Unknown);
        };
        seen.push((name, tenant_fingerprint(value.trim_end())));
        since = match (since, written) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let Some((_, first)) = seen.first() else {
        return Ok(Holder::Absent);
    };
    if let Some((other_name, other)) = seen.iter().find(|(_, f)| f != first) {
        return Ok(Holder::Unreadable {
            reason: format!(
                "the operator's tenant Secrets disagree: {} holds {first}, {other_name} holds {other}; waiting for the operator to write both",
                seen[0].0
            ),
        });
    }
    Ok(Holder::TenantToken {
        fingerprint: first.clone(),
        since,
    })
}

/// When the operator last wrote `secret`: the latest time its managed fields record (the API
/// server stamps every write by a field manager), else its creation. This is when the cluster
/// received the value it holds, at or after the tenant token's rotation, so a schedule taken
/// from it is late by the operator's delay at most, never early. Without either, `None` (the
/// schedule stays unknown, as for a target with a bare record).
fn written_at(secret: &KubeSecret) -> Option<OffsetDateTime> {
    let meta = &secret.metadata;
    meta.managed_fields
        .iter()
        .flatten()
        .filter_map(|f| f.time.as_ref())
        .max()
        .or(meta.creation_timestamp.as_ref())
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.0.timestamp()).ok())
}

async fn connection(
    ctx: &DeliveryContext,
    target: &Target,
    d: &DynakubeTenantTarget,
) -> Result<std::sync::Arc<Connection>, DeliverError> {
    ctx.kube_clients
        .get(&ctx.kube, d.context.as_deref())
        .await
        .map_err(|reason| DeliverError::KubeConfig {
            address: target.address(),
            reason,
        })
}

fn read_err(target: &Target, reason: String) -> DeliverError {
    DeliverError::Content {
        address: target.address(),
        reason,
    }
}

/// The `dynakube_tenant` target's holder: what the operator's tenant Secrets hold, or
/// [`Holder::RestartOwed`] when the DynaKube records that the restart onto that token is owed.
pub(crate) async fn read_holder(
    ctx: &DeliveryContext,
    target: &Target,
    d: &DynakubeTenantTarget,
) -> Result<Holder, DeliverError> {
    let conn = connection(ctx, target, d).await?;
    let holder = read_operator_tenant(&conn, &d.namespace, &d.dynakube)
        .await
        .map_err(|reason| read_err(target, reason))?;
    let Holder::TenantToken { fingerprint, since } = &holder else {
        return Ok(holder);
    };
    if d.restart.is_empty() {
        return Ok(holder);
    }
    let dynakube = operator::get_dynakube(&conn, &d.namespace, &d.dynakube)
        .await
        .map_err(|reason| read_err(target, reason))?;
    let owed = dynakube.as_ref().and_then(|dk| {
        dk.metadata
            .annotations
            .as_ref()?
            .get(operator::RESTART_OWED_ANNOTATION)
            .cloned()
    });
    Ok(match owed {
        Some(owed) if &owed == fingerprint => Holder::RestartOwed {
            fingerprint: owed,
            since: *since,
        },
        _ => holder,
    })
}

/// Delivery to a `dynakube_tenant` target: the value is never written (the operator fetches it
/// from `connectioninfo`); the DynaKube is touched so the operator reconciles now, and once its
/// tenant Secrets hold the delivered token (waiting up to [`KubeSettings::operator_wait`]) the
/// named workloads are restarted. Until then the holder reports the old fingerprint and a
/// warning says the restarts are still owed; the planner's read-back keeps `finish` waiting.
///
/// [`KubeSettings::operator_wait`]: super::KubeSettings::operator_wait
pub(crate) async fn deliver(
    ctx: &DeliveryContext,
    target: &Target,
    d: &DynakubeTenantTarget,
    value: &Secret<String>,
    record: &Record,
) -> Result<Delivered, DeliverError> {
    let Record::Tenant { fingerprint, .. } = record else {
        return Err(read_err(
            target,
            "a `dynakube_tenant` target receives only the tenant token".to_owned(),
        ));
    };
    if tenant_fingerprint(value.expose()) != *fingerprint {
        return Err(read_err(
            target,
            "the value does not match the tenant-token record".to_owned(),
        ));
    }
    let conn = connection(ctx, target, d).await?;
    let now = OffsetDateTime::now_utc();
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    match operator::touch(&conn, &d.namespace, &d.dynakube, now).await {
        Ok(version) => notes.push(format!(
            "requested a reconcile of dynakube {} ({version})",
            d.dynakube
        )),
        Err(e) => warnings.push(format!("could not touch dynakube {}: {e}", d.dynakube)),
    }
    let deadline = tokio::time::Instant::now() + ctx.kube.operator_wait;
    let holder = loop {
        let holder = read_operator_tenant(&conn, &d.namespace, &d.dynakube)
            .await
            .map_err(|reason| read_err(target, reason))?;
        let rolled_out =
            matches!(&holder, Holder::TenantToken { fingerprint: f, .. } if f == fingerprint);
        if rolled_out || tokio::time::Instant::now() >= deadline {
            break holder;
        }
        tokio::time::sleep(OPERATOR_POLL).await;
    };
    if matches!(&holder, Holder::TenantToken { fingerprint: f, .. } if f == fingerprint) {
        let restarts = KubernetesSecretTarget {
            context: d.context.clone(),
            namespace: d.namespace.clone(),
            name: d.dynakube.clone(),
            key: TENANT_TOKEN_KEY.to_owned(),
            touch_dynakube: None,
            restart: d.restart.iter().map(WorkloadRef::as_path).collect(),
        };
        let (n, w) = follow_up::run(&conn, &restarts, now).await;
        notes.extend(n);
        // A restart that failed stays owed; one that ran pays what an earlier delivery owed.
        if !d.restart.is_empty() {
            let still_owed = (!w.is_empty()).then_some(fingerprint.as_str());
            record_restart_owed(&conn, target, d, still_owed).await?;
        }
        warnings.extend(w);
    } else {
        if !d.restart.is_empty() {
            // Without this record, a rollout after this run would read as done and the
            // workloads would never be restarted onto the new token.
            record_restart_owed(&conn, target, d, Some(fingerprint)).await?;
        }
        warnings.push(format!(
            "the operator has not written the new tenant token into the tenant Secrets of dynakube {} yet; the next apply restarts the injected workloads once it has",
            d.dynakube
        ));
    }
    Ok(Delivered {
        address: target.address(),
        holder,
        changed: true,
        notes,
        warnings,
    })
}

/// Record on the DynaKube that the restart onto the tenant token `owed` (a fingerprint) is
/// owed, or that none is (`None`).
async fn record_restart_owed(
    conn: &Connection,
    target: &Target,
    d: &DynakubeTenantTarget,
    owed: Option<&str>,
) -> Result<(), DeliverError> {
    operator::annotate(
        conn,
        &d.namespace,
        &d.dynakube,
        operator::RESTART_OWED_ANNOTATION,
        owed,
    )
    .await
    .map(|_| ())
    .map_err(|e| {
        read_err(
            target,
            format!(
                "cannot record the restart owed on dynakube {}: {e}",
                d.dynakube
            ),
        )
    })
}

/// Verification: the operator's tenant Secrets hold the recorded tenant token.
pub(crate) async fn verify(
    ctx: &DeliveryContext,
    target: &Target,
    d: &DynakubeTenantTarget,
    record: &Record,
) -> Result<Verified, DeliverError> {
    let found = read_holder(ctx, target, d).await?;
    let expected = record.holder();
    if !same_token(&found, &expected) {
        return Err(DeliverError::Mismatch {
            address: target.address(),
            expected: HolderText(expected),
            found: HolderText(found),
        });
    }
    Ok(Verified::ReadBack(found))
}

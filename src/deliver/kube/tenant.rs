//! Reading which tenant token the Dynatrace Operator has rolled out to a cluster
//! (CONSUMERS.md §1.5). The operator fetches the tenant token from `connectioninfo` itself and
//! writes it into `<dynakube>-oneagent-tenant-secret` and, when the DynaKube runs an
//! ActiveGate, `<dynakube>-activegate-tenant-secret`, key `tenant-token`. tokensmith never
//! writes those Secrets; it reads them and reports the fingerprint they hold as
//! [`Holder::TenantToken`], so the planner's confirmation by read-back applies unchanged.
//!
//! It does not touch the DynaKube or restart workloads ([`super::follow_up`] and
//! [`super::operator`] do), and it does not decide whether the fingerprint is the active one
//! (the planner does).

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::Api;

use super::connect::{cause, Connection};
use crate::model::target::tenant_fingerprint;
use crate::model::Holder;

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
    for name in tenant_secret_names(dynakube) {
        let secret = api.get_opt(&name).await.map_err(|e| {
            format!(
                "GET /api/v1/namespaces/{namespace}/secrets/{name} at {}: {}",
                conn.describe(),
                cause(&e)
            )
        })?;
        let Some(secret) = secret else { continue };
        let value = secret
            .data
            .and_then(|mut d| d.remove(TENANT_TOKEN_KEY))
            .and_then(|b| String::from_utf8(b.0).ok());
        let Some(value) = value else {
            return Ok(Holder::Unknown);
        };
        seen.push((name, tenant_fingerprint(value.trim_end())));
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
        since: None,
    })
}

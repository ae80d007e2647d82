//! Plan-time checks of `kubernetes_secret` targets, so `apply` never creates a token it cannot
//! deliver. For each distinct target: the context resolves, the API server answers (a GET of the
//! Secret), the identity may `get` the Secret and `patch` it (or `create` it when it is missing),
//! asked with a SelfSubjectAccessReview, and the DynaKube exists when `touch_dynakube` is set.
//! Each failure names the target, the context, the server and the cause (DNS, refused, TLS,
//! 401, 403 with the verb and resource) and is blocking.
//!
//! Non-blocking findings explain why a predecessor is kept: the operator has not confirmed, or
//! has rejected, the token tokensmith delivered (see [`super`]).
//!
//! `dynakube_tenant` targets (tenant token rotation on operator-run clusters) are checked the
//! same way for what their delivery and confirmation do: the identity may `get` the operator's
//! tenant Secrets, the DynaKube exists and may be `patch`ed (the touch), and every workload in
//! `restart` exists and may be `patch`ed (the rollout restart). A tenant rotation whose cluster
//! fails these is never started.
//!
//! This module only reports; turning failures into plan checks is the caller's job.

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, DynamicObject, PostParams};
use time::OffsetDateTime;

use super::connect::{cause, Connection};
use super::operator::{self, Verdict};
use super::{awaiting_annotation, parse_awaiting, record_annotation, rejected_annotation};
use super::{follow_up, tenant};
use crate::deliver::DeliveryContext;
use crate::deliver::Record;
use crate::model::target::DynakubeTenantTarget;
use crate::model::{KubernetesSecretTarget, Target, TargetAddress};

/// How many targets are checked at once.
const CONCURRENCY: usize = 8;

/// A failed check of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightFailure {
    pub address: TargetAddress,
    /// The context as resolved (`(current context)` when it did not resolve and none is named).
    pub context: String,
    /// The API server URL, or `-` when the context did not resolve.
    pub server: String,
    pub cause: String,
    /// Blocking: a delivery would fail. Not blocking: an explanation worth showing.
    pub blocking: bool,
}

impl std::fmt::Display for PreflightFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "target {} (context `{}`, server {}): {}",
            self.address, self.context, self.server, self.cause
        )
    }
}

/// Check every `kubernetes_secret` and `dynakube_tenant` target among `targets` (others are
/// ignored).
pub async fn preflight(ctx: &DeliveryContext, targets: &[Target]) -> Vec<PreflightFailure> {
    let mut seen = std::collections::HashSet::new();
    let kube_targets: Vec<&Target> = targets
        .iter()
        .filter(|t| {
            matches!(t, Target::KubernetesSecret(_) | Target::DynakubeTenant(_))
                && seen.insert(t.address())
        })
        .collect();
    let results: Vec<Vec<PreflightFailure>> = futures::stream::iter(kube_targets)
        .map(|t| async move {
            match t {
                Target::KubernetesSecret(k) => check(ctx, t, k).await,
                Target::DynakubeTenant(d) => check_tenant(ctx, t, d).await,
                _ => Vec::new(),
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().flatten().collect()
}

/// A failure found before a connection exists: the context as named, no server.
fn unconnected(address: TargetAddress, context: Option<&str>, cause: String) -> PreflightFailure {
    PreflightFailure {
        address,
        context: context.unwrap_or("(current context)").to_owned(),
        server: "-".into(),
        cause,
        blocking: true,
    }
}

/// The checks of one `dynakube_tenant` target (see the module docs).
async fn check_tenant(
    ctx: &DeliveryContext,
    target: &Target,
    d: &DynakubeTenantTarget,
) -> Vec<PreflightFailure> {
    let address = target.address();
    let conn = match ctx.kube_clients.get(&ctx.kube, d.context.as_deref()).await {
        Ok(c) => c,
        Err(reason) => return vec![unconnected(address, d.context.as_deref(), reason)],
    };
    let fail = |cause: String| PreflightFailure {
        address: address.clone(),
        context: conn.context.clone(),
        server: conn.server.clone(),
        cause,
        blocking: true,
    };
    // The DynaKube first: it also proves the server answers.
    match operator::get_dynakube(&conn, &d.namespace, &d.dynakube).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return vec![fail(format!(
                "DynaKube `{}` does not exist in namespace {}",
                d.dynakube, d.namespace
            ))]
        }
        Err(e) => return vec![fail(e)],
    }
    let mut failures = Vec::new();
    let wanted = tenant::tenant_secret_names(&d.dynakube)
        .into_iter()
        .map(|name| ("get", String::new(), "secrets".to_owned(), name))
        .chain(std::iter::once((
            "patch",
            "dynatrace.com".to_owned(),
            "dynakubes".to_owned(),
            d.dynakube.clone(),
        )));
    for (verb, group, resource, name) in wanted {
        if let Err(why) = may(&conn, verb, &group, &resource, &d.namespace, Some(&name)).await {
            failures.push(fail(why));
        }
    }
    for w in &d.restart {
        let (resource, name) = match follow_up::workload(&w.as_path()) {
            Ok(r) => r,
            Err(e) => {
                failures.push(fail(e));
                continue;
            }
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(conn.client.clone(), &d.namespace, &resource);
        match api.get_opt(&name).await {
            Ok(Some(_)) => {}
            Ok(None) => failures.push(fail(format!(
                "restart: {} `{name}` does not exist in namespace {}",
                resource.kind, d.namespace
            ))),
            Err(e) => failures.push(fail(format!(
                "GET {}/{name} in namespace {}: {}",
                resource.plural,
                d.namespace,
                cause(&e)
            ))),
        }
        if let Err(why) = may(
            &conn,
            "patch",
            "apps",
            &resource.plural,
            &d.namespace,
            Some(&name),
        )
        .await
        {
            failures.push(fail(why));
        }
    }
    failures
}

async fn check(
    ctx: &DeliveryContext,
    target: &Target,
    k: &KubernetesSecretTarget,
) -> Vec<PreflightFailure> {
    let address = target.address();
    if let Err(e) = super::check_names(target, k) {
        return vec![unconnected(address, k.context.as_deref(), e.to_string())];
    }
    let conn = match ctx.kube_clients.get(&ctx.kube, k.context.as_deref()).await {
        Ok(c) => c,
        Err(reason) => return vec![unconnected(address, k.context.as_deref(), reason)],
    };
    let fail = |cause: String, blocking: bool| PreflightFailure {
        address: address.clone(),
        context: conn.context.clone(),
        server: conn.server.clone(),
        cause,
        blocking,
    };
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(conn.client.clone(), &k.namespace);
    let secret = match secrets.get_opt(&k.name).await {
        Ok(s) => s,
        Err(e) => {
            return vec![fail(
                format!(
                    "GET secrets/{} in namespace {}: {}",
                    k.name,
                    k.namespace,
                    cause(&e)
                ),
                true,
            )]
        }
    };
    let mut failures = Vec::new();
    let write_verb = if secret.is_some() { "patch" } else { "create" };
    for verb in ["get", write_verb] {
        let name = (verb != "create").then_some(k.name.as_str());
        if let Err(why) = may(&conn, verb, "", "secrets", &k.namespace, name).await {
            failures.push(fail(why, true));
        }
    }
    if let Some(dk) = &k.touch_dynakube {
        match operator::get_dynakube(&conn, &k.namespace, dk).await {
            Ok(Some(_)) => {}
            Ok(None) => failures.push(fail(
                format!(
                    "`touch_dynakube: {dk}` names a DynaKube that does not exist in namespace {}",
                    k.namespace
                ),
                true,
            )),
            Err(e) => failures.push(fail(e, true)),
        }
    }
    if let Some(secret) = &secret {
        failures.extend(
            operator_findings(&conn, k, secret)
                .await
                .into_iter()
                .map(|c| fail(c, false)),
        );
    }
    failures
}

/// Why the operator has not confirmed the token the Secret holds, or rejected the last one.
async fn operator_findings(
    conn: &Connection,
    k: &KubernetesSecretTarget,
    secret: &k8s_openapi::api::core::v1::Secret,
) -> Vec<String> {
    let mut out = Vec::new();
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    if let Some(rejected) = annotations.get(&rejected_annotation(&k.key)) {
        let holds = annotations
            .get(&record_annotation(&k.key))
            .map(|r| format!("the Secret holds {r}"))
            .unwrap_or_else(|| "the Secret holds its earlier value".to_owned());
        out.push(format!(
            "the Dynatrace Operator rejected the token delivered to `{}`: {rejected}; {holds}, and the rotation will be rejected again unless the token (its scopes) or the DynaKube changes",
            k.key
        ));
    }
    // The token the record names (the record may carry its expiry too).
    let recorded = annotations
        .get(&record_annotation(&k.key))
        .and_then(|r| Record::decode(r))
        .map(|p| p.subject());
    let awaiting = annotations
        .get(&awaiting_annotation(&k.key))
        .and_then(|a| parse_awaiting(a).map(|(id, since)| (id.to_owned(), since)))
        .filter(|(id, _)| Some(id) == recorded.as_ref());
    if let (Some((id, since)), Some(dk)) = (awaiting, &k.touch_dynakube) {
        if let Ok(Some(object)) = operator::get_dynakube(conn, &k.namespace, dk).await {
            match operator::verdict(&object, &k.key, Some(since), OffsetDateTime::now_utc()) {
                Verdict::Valid { .. } => {}
                Verdict::Pending(why) | Verdict::Invalid(why) => out.push(format!(
                    "{id} in `{}` is not confirmed by the Dynatrace Operator: {why}; its predecessor is kept",
                    k.key
                )),
            }
        }
    }
    out
}

/// Ask the API server whether this identity may `verb` the resource.
async fn may(
    conn: &Connection,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
    name: Option<&str>,
) -> Result<(), String> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_owned()),
                group: Some(group.to_owned()),
                resource: Some(resource.to_owned()),
                namespace: Some(namespace.to_owned()),
                name: name.map(str::to_owned),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let what = match name {
        Some(n) => format!("{verb} {resource}/{n} in namespace {namespace}"),
        None => format!("{verb} {resource} in namespace {namespace}"),
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(conn.client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| {
            format!(
                "cannot check whether the identity may {what}: {}",
                cause(&e)
            )
        })?;
    let status = answer.status.unwrap_or_default();
    if status.allowed {
        return Ok(());
    }
    let why = status
        .reason
        .filter(|r| !r.is_empty())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    Err(format!(
        "403 Forbidden: the identity may not {what}{why}; grant it with a Role limited by resourceNames"
    ))
}

//! The Dynatrace Operator's side of a delivery (CONSUMERS.md §1): find the DynaKube, ask it to
//! reconcile now, and read what it reports about the tokens in its Secret.
//!
//! - The API version is discovered (`GET /apis/dynatrace.com`, its `preferredVersion`), because
//!   operator releases serve different versions (`v1beta3` … `v1beta5`, later `v1`); a
//!   metadata-only merge patch and the status fields read here mean the same in all of them.
//! - Touch: the annotation [`RECONCILE_ANNOTATION`] (the time asked) on the DynaKube. The
//!   operator's controller watches the DynaKube without an event filter, so any update starts a
//!   reconcile, instead of waiting for its 15-minute period.
//! - Verdict: the `Tokens` condition (`True`/`TokenReady`: valid; `False`/`TokenError`: a token
//!   is missing, invalid or lacks a required scope, with the operator's message), the phase, and
//!   `ApiTokenOptionalScopes` (missing optional scopes: a note, not a failure). The verdict is
//!   about the token tokensmith delivered only when the operator reconciled after the delivery:
//!   `status.updatedTimestamp` or the condition's `lastTransitionTime` is not older than the
//!   time the Secret was written. Until then it is [`Verdict::Pending`]; after
//!   [`RECONCILE_BOUND`] the operator has certainly reconciled on its own period, so the
//!   condition counts as it stands. (The comparison uses this machine's clock against the
//!   cluster's: a clock far ahead only makes tokensmith wait longer, never confirm early.)
//!
//! It does not decide what a verdict means for a delivery; [`super`] does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroup;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::connect::{cause, Connection, Failure};

/// Annotation set on a DynaKube to request a reconcile.
pub const RECONCILE_ANNOTATION: &str = "tokensmith.dev/reconcile-requested-at";

/// Annotation on a DynaKube naming the tenant token (by fingerprint) whose rollout a delivery
/// stopped waiting for: the restart of the injected workloads is owed once the operator has
/// written it (`super::tenant`).
pub const RESTART_OWED_ANNOTATION: &str = "tokensmith.dev/tenant-restart-owed";

/// Secret keys the Dynatrace Operator reads (`pkg/controllers/dynakube/token/tokens.go`).
pub const OPERATOR_KEYS: [&str; 3] = ["apiToken", "dataIngestToken", "paasToken"];

/// Keys whose delivery the operator's status confirms (it checks their scopes by lookup).
pub const CONFIRMED_KEYS: [&str; 2] = ["apiToken", "dataIngestToken"];

/// The longest reconcile period the operator allows (`DT_DEFAULT_REQUEUE_AFTER` is clamped to
/// 1 minute .. 1 hour): after this long it has reconciled at least once without being asked.
pub const RECONCILE_BOUND: time::Duration = time::Duration::hours(1);

/// What the operator reports about the tokens of its Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The tokens are valid; the notes name missing optional scopes.
    Valid { notes: Vec<String> },
    /// The operator rejects a token: its message.
    Invalid(String),
    /// The operator has not reported since tokensmith asked: why we wait.
    Pending(String),
}

/// The DynaKube API resource at the group's preferred version.
pub async fn dynakube_resource(conn: &Connection) -> Result<ApiResource, String> {
    let request = http::Request::get("/apis/dynatrace.com")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let group: APIGroup = conn.client.request(request).await.map_err(|e| {
        if Failure::of(&e).is(404) {
            "the DynaKube API (group dynatrace.com) is not installed in this cluster".to_owned()
        } else {
            format!(
                "GET /apis/dynatrace.com at {}: {}",
                conn.describe(),
                cause(&e)
            )
        }
    })?;
    let version = group
        .preferred_version
        .map(|v| v.version)
        .or_else(|| group.versions.first().map(|v| v.version.clone()))
        .ok_or("the dynatrace.com API group serves no version")?;
    let gvk = GroupVersionKind::gvk("dynatrace.com", &version, "DynaKube");
    Ok(ApiResource::from_gvk_with_plural(&gvk, "dynakubes"))
}

/// The DynaKube `namespace/name`; `Ok(None)` when it does not exist.
pub async fn get_dynakube(
    conn: &Connection,
    namespace: &str,
    name: &str,
) -> Result<Option<DynamicObject>, String> {
    let resource = dynakube_resource(conn).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), namespace, &resource);
    api.get_opt(name).await.map_err(|e| {
        format!(
            "GET dynakube {namespace}/{name} ({}) at {}: {}",
            resource.api_version,
            conn.describe(),
            cause(&e)
        )
    })
}

/// Annotate the DynaKube so the operator reconciles now; returns the API version used. The
/// time keeps its fraction of a second: a patch that changes nothing (a second touch within
/// the same second) is no update, so the operator's watch would not see it.
pub async fn touch(
    conn: &Connection,
    namespace: &str,
    name: &str,
    now: OffsetDateTime,
) -> Result<String, String> {
    let asked = now.format(&Rfc3339).unwrap_or_default();
    annotate(conn, namespace, name, RECONCILE_ANNOTATION, Some(&asked)).await
}

/// Set the annotation `key` of the DynaKube to `value`, or remove it (`None`); returns the API
/// version used.
pub async fn annotate(
    conn: &Connection,
    namespace: &str,
    name: &str,
    key: &str,
    value: Option<&str>,
) -> Result<String, String> {
    let resource = dynakube_resource(conn).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), namespace, &resource);
    let patch = json!({ "metadata": { "annotations": { key: value } } });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| {
            format!(
                "PATCH dynakube {namespace}/{name} ({}): {}",
                resource.api_version,
                cause(&e)
            )
        })?;
    Ok(resource.api_version)
}

/// `now` at whole seconds, RFC 3339.
pub fn rfc3339(now: OffsetDateTime) -> String {
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn parse_time(v: Option<&Value>) -> Option<OffsetDateTime> {
    v.and_then(Value::as_str)
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

fn condition<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// What the DynaKube's status says now about the token in `key`, written at `since` (`None`:
/// the status as it stands). A `TokenError` whose message names another key and not `key` is
/// not about this token: the operator stopped before checking it, so the verdict is pending.
pub fn verdict(
    dk: &DynamicObject,
    key: &str,
    since: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Verdict {
    let name = format!(
        "dynakube {}/{}",
        dk.metadata.namespace.as_deref().unwrap_or_default(),
        dk.metadata.name.as_deref().unwrap_or_default()
    );
    let status = dk.data.get("status").cloned().unwrap_or(Value::Null);
    let tokens = condition(&status, "Tokens");
    let updated = [
        parse_time(status.get("updatedTimestamp")),
        tokens.and_then(|c| parse_time(c.get("lastTransitionTime"))),
    ]
    .into_iter()
    .flatten()
    .max();
    if let Some(asked) = since {
        let reconciled = updated.is_some_and(|u| u >= asked);
        if !reconciled && now - asked < RECONCILE_BOUND {
            return Verdict::Pending(format!(
                "{name} has not reconciled since the token was delivered at {} (a touched DynaKube reconciles within seconds, otherwise within the operator's period of at most 1h)",
                rfc3339(asked)
            ));
        }
    }
    let phase = text(&status, "phase");
    match tokens.map(|c| text(c, "status")) {
        Some("True") => {
            let notes = condition(&status, "ApiTokenOptionalScopes")
                .filter(|c| text(c, "status") == "False")
                .map(|c| format!("{name}: optional scopes missing: {}", text(c, "message")))
                .into_iter()
                .collect();
            Verdict::Valid { notes }
        }
        Some("False") => {
            let c = tokens.unwrap_or(&Value::Null);
            let message = text(c, "message");
            let names = |k: &str| {
                message
                    .split(|ch: char| !ch.is_ascii_alphanumeric())
                    .any(|w| w == k)
            };
            if !names(key) {
                if let Some(other) = OPERATOR_KEYS.iter().find(|k| names(k)) {
                    return Verdict::Pending(format!(
                        "{name} reports a problem with `{other}`, not `{key}`: {message}"
                    ));
                }
            }
            Verdict::Invalid(format!(
                "{name} reports the tokens invalid ({}{}): {}",
                text(c, "reason"),
                if phase.is_empty() {
                    String::new()
                } else {
                    format!(", phase {phase}")
                },
                text(c, "message")
            ))
        }
        _ if phase == "Error" => Verdict::Invalid(format!(
            "{name} is in phase Error and reports no Tokens condition"
        )),
        _ => Verdict::Pending(format!(
            "{name} reports no Tokens condition yet (is the Dynatrace Operator running?)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn dk(status: Value) -> DynamicObject {
        let v = json!({
            "apiVersion": "dynatrace.com/v1beta5", "kind": "DynaKube",
            "metadata": {"name": "dynakube", "namespace": "dynatrace"},
            "status": status,
        });
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_verdict_waits_for_a_reconcile_after_the_touch() {
        let now = datetime!(2026-11-22 10:00:30 UTC);
        let ok = json!({"phase": "Running", "updatedTimestamp": "2026-11-22T09:00:00Z",
            "conditions": [{"type": "Tokens", "status": "True", "reason": "TokenReady", "message": "", "lastTransitionTime": "2026-11-01T00:00:00Z"}]});
        // Delivered at 10:00, last reconcile at 09:00: pending.
        assert!(matches!(
            verdict(
                &dk(ok.clone()),
                "apiToken",
                Some(datetime!(2026-11-22 10:00 UTC)),
                now
            ),
            Verdict::Pending(_)
        ));
        // No delivery to wait for: the condition counts.
        assert_eq!(
            verdict(&dk(ok.clone()), "apiToken", None, now),
            Verdict::Valid { notes: vec![] }
        );
        // Delivered more than an hour ago: the periodic reconcile has happened.
        assert!(matches!(
            verdict(
                &dk(ok),
                "apiToken",
                Some(datetime!(2026-11-22 08:00 UTC)),
                now
            ),
            Verdict::Valid { .. }
        ));
        let bad = json!({"phase": "Error", "updatedTimestamp": "2026-11-22T10:00:05Z",
            "conditions": [{"type": "Tokens", "status": "False", "reason": "TokenError", "message": "Token apiToken on secret dynatrace:dynakube missing scopes [DataExport]", "lastTransitionTime": "2026-11-22T10:00:05Z"}]});
        match verdict(
            &dk(bad.clone()),
            "apiToken",
            Some(datetime!(2026-11-22 10:00 UTC)),
            now,
        ) {
            Verdict::Invalid(m) => assert!(
                m.contains("missing scopes [DataExport]") && m.contains("TokenError"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        // A message about another key does not judge this one.
        let other = json!({"phase": "Error", "updatedTimestamp": "2026-11-22T10:00:05Z",
            "conditions": [{"type": "Tokens", "status": "False", "reason": "TokenError", "message": "Token apiToken on secret dynatrace:dynakube missing", "lastTransitionTime": "2026-11-22T10:00:05Z"}]});
        assert!(matches!(
            verdict(
                &dk(other),
                "dataIngestToken",
                Some(datetime!(2026-11-22 10:00 UTC)),
                now
            ),
            Verdict::Pending(_)
        ));
    }
}

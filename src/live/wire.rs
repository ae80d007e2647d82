//! Serde types for the JSON Dynatrace sends and receives (REFERENCE.md §3, §4, §6, §7, §8, §10).
//!
//! These mirror the wire, not the model: camelCase, every response field except ids optional,
//! unknown fields ignored, enum-like values kept as strings (Dynatrace adds values without a
//! version change), and requests that omit unset fields (a PUT with `scopes` replaces them all).
//! Secret values deserialize straight into [`Secret`], so no wire type can print one; types
//! that carry a secret do not derive `Debug` on the raw value.
//!
//! Conversion into `model::LiveToken` lives in `convert`; this module has no logic.

use serde::{Deserialize, Deserializer, Serialize};

use super::dates::WireDate;
use crate::model::{ScopeSet, Secret};

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Secret<String>, D::Error> {
    String::deserialize(d).map(Secret::new)
}

fn optional_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret<String>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

// ---- API tokens (§4) -------------------------------------------------------------------------

/// `ApiToken`: metadata of one access token. The list call may leave out any field but `id`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ApiTokenDto {
    pub id: String,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub owner: Option<String>,
    pub creation_date: Option<WireDate>,
    pub expiration_date: Option<WireDate>,
    pub last_used_date: Option<WireDate>,
    pub last_used_ip_address: Option<String>,
    pub modified_date: Option<WireDate>,
    pub personal_access_token: Option<bool>,
    /// Read as [`Scope`](crate::model::Scope)s straight into the set the model holds: a scope
    /// of the catalogue is shared, not a string per token (a list that comes sorted is not
    /// sorted again).
    pub scopes: Option<ScopeSet>,
    pub additional_metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Only the `nextPageKey` of a list page: read before the page itself is decoded, skipping the
/// list, so the next page can be fetched meanwhile.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PageKeyOnly {
    pub next_page_key: Option<String>,
}

// The list pages (`ApiTokenList`, `ActiveGateTokenList`) are read by `token_page`, entry by
// entry into model tokens.

/// `ApiTokenCreate`: body of `POST /api/v2/apiTokens`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenCreate {
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal_access_token: Option<bool>,
}

/// `ApiTokenCreated` (201): the only response that carries an API token's secret.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenCreated {
    pub id: String,
    #[serde(deserialize_with = "secret")]
    pub token: Secret<String>,
    #[serde(default)]
    pub expiration_date: Option<String>,
}

/// `ApiTokenUpdate`: body of `PUT /api/v2/apiTokens/{id}`. Unset fields are not sent.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// `ApiTokenSecret`: body of `POST /api/v2/apiTokens/lookup`. Borrowed, and not `Debug`.
#[derive(Serialize)]
pub struct ApiTokenSecret<'a> {
    pub token: &'a str,
}

// ---- ActiveGate tokens (§7) ------------------------------------------------------------------

/// `ActiveGateToken`: metadata of one ActiveGate token.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ActiveGateTokenDto {
    pub id: String,
    pub name: Option<String>,
    pub owner: Option<String>,
    pub creation_date: Option<WireDate>,
    pub expiration_date: Option<WireDate>,
    pub last_used_date: Option<WireDate>,
    pub seed_token: Option<bool>,
    /// `ENVIRONMENT` or `CLUSTER`; kept as a string so a new type does not break reading.
    pub active_gate_type: Option<String>,
}

/// `ActiveGateTokenCreate`: body of `POST /api/v2/activeGateTokens`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActiveGateTokenCreate {
    pub name: String,
    pub active_gate_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_token: Option<bool>,
}

/// `ActiveGateTokenCreated` (201).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveGateTokenCreated {
    pub id: String,
    #[serde(deserialize_with = "secret")]
    pub token: Secret<String>,
    #[serde(default)]
    pub expiration_date: Option<String>,
}

// ---- Tenant token rotation (§6) --------------------------------------------------------------

/// `TenantTokenConfig`: the answer of start, finish and cancel.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TenantTokenConfig {
    pub active: Option<TenantTokenValue>,
    pub old: Option<TenantTokenValue>,
}

/// `TenantToken`: `{"value": ...}`, `value` may be null (`old` after cancel).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TenantTokenValue {
    #[serde(deserialize_with = "optional_secret")]
    pub value: Option<Secret<String>>,
}

/// `GET /api/v2/tenantTokenRotation/status`: `{"status": "ACTIVE" | "INACTIVE"}` (newer versions
/// only; Dynatrace's JavaScript SDK 8.0.0 `getRotationStatus`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TenantRotationStatus {
    pub status: Option<String>,
}

// ---- Connection info (§8) --------------------------------------------------------------------

/// `ConnectionInfo` of `GET /api/v1/deployment/installer/agent/connectioninfo`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentConnectionInfo {
    #[serde(rename = "tenantUUID")]
    pub tenant_uuid: Option<String>,
    #[serde(deserialize_with = "optional_secret")]
    pub tenant_token: Option<Secret<String>>,
    pub communication_endpoints: Option<Vec<String>>,
    /// A string array in the 1.254 spec, a string in 2026 docs: kept loose.
    pub formatted_communication_endpoints: Option<serde_json::Value>,
}

/// `ActiveGateConnectionInfo` of `GET /api/v1/deployment/installer/gateway/connectioninfo`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewayConnectionInfo {
    #[serde(rename = "tenantUUID")]
    pub tenant_uuid: Option<String>,
    #[serde(deserialize_with = "optional_secret")]
    pub tenant_token: Option<Secret<String>>,
    /// A single `;`-separated string per the spec; kept loose.
    pub communication_endpoints: Option<serde_json::Value>,
}

// ---- Platform tokens (§10) -------------------------------------------------------------------

/// `PlatformTokenDto` as actually returned (NANGO recordings), with the documented extras.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PlatformTokenDto {
    pub token_id: String,
    /// A UUID string in real responses, a number in the docs.
    pub account_uuid: Option<serde_json::Value>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub scope: Option<Vec<String>>,
    pub resource: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    /// `ACTIVE` or `INACTIVE`; a string so new states do not break reading.
    pub status: Option<String>,
    pub expiration_date: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub created_by: Option<String>,
    pub owner: Option<String>,
    pub user_uuid: Option<String>,
    pub metadata: Option<PlatformTokenMetadata>,
}

/// Usage metadata of a platform token.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PlatformTokenMetadata {
    pub last_used_at: Option<String>,
    pub last_client_ip: Option<String>,
}

/// `PlatformTokenPageDto`: one page of the platform token list (1-based `pageNumber`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PlatformTokenPage {
    pub page_size: Option<i64>,
    pub page_number: Option<i64>,
    pub total: Option<i64>,
    pub results: Vec<PlatformTokenDto>,
}

/// `GeneratePlatformTokenForm`: body of the platform token create call.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GeneratePlatformTokenForm {
    pub name: String,
    pub scope: Vec<String>,
    pub resource: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_uuid: Option<String>,
}

/// `PlatformTokenSecret`: the create answer (200), the only time the secret is shown.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformTokenSecret {
    #[serde(default)]
    pub name: Option<String>,
    pub token_id: String,
    #[serde(deserialize_with = "secret")]
    pub token: Secret<String>,
}

/// Body of `PUT …/platform-tokens/{id}/expiration-date`; `null` means never.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlatformTokenExpiration {
    pub expiration_date: Option<String>,
}

/// Body of `PUT …/platform-tokens/{id}/status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlatformTokenStatus {
    pub status: String,
}

/// The OAuth token endpoint's answer (RFC 6749 §5.1, snake_case).
#[derive(Debug, Deserialize)]
pub struct OAuthTokenResponse {
    #[serde(deserialize_with = "secret")]
    pub access_token: Secret<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub token_type: Option<String>,
}

// ---- Errors (§3.1) ---------------------------------------------------------------------------

/// `ErrorEnvelope`: `{"error": {...}}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ErrorEnvelope {
    pub error: Option<ErrorBody>,
}

/// The `error` object of an [`ErrorEnvelope`].
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorBody {
    pub code: Option<i64>,
    pub message: Option<String>,
    pub constraint_violations: Option<Vec<ConstraintViolation>>,
}

/// One `ConstraintViolation`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ConstraintViolation {
    pub path: Option<String>,
    pub message: Option<String>,
    /// `HEADER`, `PATH`, `PAYLOAD_BODY`, `QUERY` or something newer.
    pub parameter_location: Option<String>,
    pub location: Option<String>,
    pub description: Option<String>,
}

/// The flat error shapes of the account and SSO APIs: `{"errorCode":400,"message":…}` and
/// OAuth's `{"error":"invalid_client","error_description":…}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct FlatError {
    pub message: Option<String>,
    pub error: Option<serde_json::Value>,
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_token_tolerates_missing_and_unknown_fields() {
        let dto: ApiTokenDto = serde_json::from_str(
            r#"{"id":"dt0c01.A","name":"n","enabled":true,"scopes":["metrics.ingest","brandNew.scope"],
                "additionalMetadata":{"dashboardId":"x"},"somethingNew":42}"#,
        )
        .unwrap();
        assert_eq!(dto.id, "dt0c01.A");
        assert_eq!(dto.expiration_date, None);
        assert_eq!(dto.scopes.unwrap().len(), 2);
    }

    #[test]
    fn activegate_token_with_unknown_type() {
        let dto: ActiveGateTokenDto = serde_json::from_str(
            r#"{"id":"dt0g02.A","name":"n","owner":"o","creationDate":"2024-01-01T00:00:00.000Z","activeGateType":"FLEET"}"#,
        )
        .unwrap();
        assert_eq!(dto.active_gate_type.as_deref(), Some("FLEET"));
    }

    #[test]
    fn connection_info_endpoints_in_either_shape() {
        for shape in [r#""a;b""#, r#"["a","b"]"#, "null"] {
            let body = format!(
                r#"{{"tenantUUID":"abc","tenantToken":"t0k","communicationEndpoints":["x"],"formattedCommunicationEndpoints":{shape}}}"#
            );
            let info: AgentConnectionInfo = serde_json::from_str(&body).unwrap();
            assert_eq!(info.tenant_token.unwrap().expose(), "t0k");
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let created: ApiTokenCreated =
            serde_json::from_str(r#"{"id":"dt0c01.A","token":"dt0c01.A.SECRETPART"}"#).unwrap();
        assert!(!format!("{created:?}").contains("SECRETPART"));
        let cfg: TenantTokenConfig =
            serde_json::from_str(r#"{"active":{"value":"newtenant"},"old":{"value":null}}"#)
                .unwrap();
        assert!(!format!("{cfg:?}").contains("newtenant"));
        assert!(cfg.old.unwrap().value.is_none());
    }

    #[test]
    fn platform_token_as_recorded() {
        let page: PlatformTokenPage = serde_json::from_str(
            r#"{"pageSize":1000,"pageNumber":1,"total":1,"results":[{"tokenId":"dt0s16.GND2EIRX",
            "accountUuid":"5b9f","name":"n","scope":["storage:logs:read"],"resource":["urn:dtaccount:5b9f"],
            "status":"ACTIVE","expirationDate":null,"createdAt":"2026-08-01T10:00:00Z","updatedAt":"2026-08-01T10:00:00Z",
            "createdBy":"a@b.c","owner":"a@b.c","metadata":null}]}"#,
        )
        .unwrap();
        assert_eq!(page.results[0].token_id, "dt0s16.GND2EIRX");
    }

    #[test]
    fn update_sends_only_set_fields() {
        let body = ApiTokenUpdate {
            enabled: Some(false),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"enabled":false}"#
        );
    }
}

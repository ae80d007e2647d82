//! Presets: the scopes a known consumer needs, from `shared/dynatrace-api/CONSUMERS.md` §1.3.
//!
//! A preset lists the scopes its consumer requires (a missing one breaks the consumer: the
//! Dynatrace Operator fails reconcile) and the ones it uses when a feature is on (a missing one
//! only disables that feature). The operator preset assumes the common install: host
//! availability detection on (`DataExport`), an ActiveGate (`activeGateTokenManagement.create`),
//! no separate `paasToken` (`InstallerDownload`), and Kubernetes monitoring or log monitoring
//! (`settings.read`, `settings.write`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scope::Scope;

/// A named scope set for a known consumer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// The Dynatrace Operator's `apiToken`.
    DynatraceOperator,
    /// The operator's `dataIngestToken`, OTel collectors and apps that send OTLP.
    DataIngest,
    /// A PaaS token for installer downloads and connection info.
    Paas,
}

impl Preset {
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::DynatraceOperator => "dynatrace-operator",
            Preset::DataIngest => "data-ingest",
            Preset::Paas => "paas",
        }
    }

    /// Scopes without which the consumer fails, with the feature that needs each.
    pub fn required(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Preset::DynatraceOperator => &[
                ("DataExport", "access problem and event feed, metrics, and topology (host availability detection)"),
                ("InstallerDownload", "download installer (no separate paasToken)"),
                ("activeGateTokenManagement.create", "automatic ActiveGate token creation"),
            ],
            Preset::DataIngest => &[
                ("metrics.ingest", "data ingest and telemetry ingest OTLP"),
                ("logs.ingest", "telemetry ingest OTLP (logs)"),
                ("openTelemetryTrace.ingest", "telemetry ingest OTLP, Zipkin and Jaeger (traces)"),
            ],
            Preset::Paas => &[("InstallerDownload", "installer download and connection info")],
        }
    }

    /// Scopes the consumer uses when a feature is enabled.
    pub fn optional(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Preset::DynatraceOperator => &[
                ("settings.read", "Kubernetes API monitoring, log monitoring, code module injection, metadata enrichment"),
                ("settings.write", "Kubernetes API monitoring and log monitoring registration"),
            ],
            Preset::DataIngest => &[],
            Preset::Paas => &[("SupportAlert", "PaaS support alerts")],
        }
    }

    /// Every scope the preset grants: required and optional.
    pub fn scopes(self) -> impl Iterator<Item = Scope> {
        self.required()
            .iter()
            .chain(self.optional())
            .map(|(s, _)| Scope::from(*s))
    }
}

/// A named scope set for a known consumer of a **platform** token (`platform_tokens:` entries).
///
/// `dynatrace-operator`: the Dynatrace Operator's platform token, delivered into the DynaKube
/// Secret's `apiToken` key in place of a classic operator token (newer operators accept a
/// platform token there; `paasToken` is then ignored, CONSUMERS.md §1.1). Its scopes are the
/// Operator token's of Dynatrace's docs page "Tokens and permissions" (setup-on-k8s, platform
/// tokens): fleet-management scopes for the ActiveGate and OneAgent lifecycle. The operator
/// does not check a platform token's scopes itself, so a missing one shows only as a failing
/// feature.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PlatformPreset {
    /// The Dynatrace Operator's platform token (the DynaKube Secret's `apiToken`).
    DynatraceOperator,
}

impl PlatformPreset {
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformPreset::DynatraceOperator => "dynatrace-operator",
        }
    }

    /// The scopes the consumer uses, with what each is for.
    pub fn scopes_with_use(self) -> &'static [(&'static str, &'static str)] {
        match self {
            PlatformPreset::DynatraceOperator => &[
                (
                    "fleet-management:activegate.connection-info:read",
                    "ActiveGate lifecycle (connection info)",
                ),
                (
                    "fleet-management:activegate.tokens:create",
                    "automatic ActiveGate token creation",
                ),
                (
                    "fleet-management:container-images:read",
                    "image information for managed components",
                ),
                (
                    "fleet-management:oneagent.connection-info:read",
                    "OneAgent lifecycle (connection info)",
                ),
                (
                    "fleet-management:oneagents:download",
                    "OneAgent lifecycle (installer download)",
                ),
            ],
        }
    }

    /// Every scope the preset grants.
    pub fn scopes(self) -> impl Iterator<Item = Scope> {
        self.scopes_with_use().iter().map(|(s, _)| Scope::from(*s))
    }
}

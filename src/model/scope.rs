//! Access-token scopes and the catalogue Dynatrace accepts.
//!
//! The catalogue is the one in `shared/dynatrace-api/REFERENCE.md` §5 (the 2026 documentation, not
//! the dated 1.254 OpenAPI enum). It is shared by the spec validator (unknown scopes, personal
//! access tokens) and the sandbox (which rejects what Dynatrace rejects). Scopes are kept as
//! strings, never a closed enum: Dynatrace adds values every release, and a live token may carry a
//! scope this catalogue has never heard of. Unknown live scopes are reported, not refused.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use schemars::JsonSchema;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// One access-token scope, such as `apiTokens.read` or `InstallerDownload`.
///
/// A scope of the catalogue refers to the catalogue's own entry: holding or copying it costs
/// no allocation and no reference count (a live read of 100,000 tokens holds hundreds of
/// thousands of scopes, decoded on several threads at once, which would all count up and down
/// the same few shared counters). Any other scope shares one allocation between its copies.
/// Equality, order and hash are the text's, whichever way it is held.
#[derive(Clone, JsonSchema)]
#[schemars(transparent)]
pub struct Scope(#[schemars(with = "String")] Text);

#[derive(Clone)]
enum Text {
    /// The catalogue's entry: a thin reference, so that a scope stays two words, the size of
    /// the `Arc<str>` beside it (a fat `&'static str` here would make every scope three).
    Known(&'static &'static str),
    Other(Arc<str>),
}

/// The catalogue's scopes by their text, for [`Scope::new`] to find the entry.
static KNOWN: LazyLock<super::hash::HashMap<&'static str, &'static &'static str>> =
    LazyLock::new(|| {
        CREATABLE_SCOPES
            .iter()
            .chain(LEGACY_ONLY_SCOPES)
            .map(|entry| (*entry, entry))
            .collect()
    });

impl Scope {
    pub fn new(s: impl AsRef<str>) -> Self {
        let s = s.as_ref();
        Scope(match KNOWN.get(s) {
            Some(entry) => Text::Known(entry),
            None => Text::Other(Arc::from(s)),
        })
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Text::Known(s) => s,
            Text::Other(s) => s,
        }
    }

    /// Whether `POST /api/v2/apiTokens` accepts this scope today (§5.1).
    pub fn is_creatable(&self) -> bool {
        CREATABLE_SCOPES.contains(&self.as_str())
    }

    /// Whether the scope may appear on existing tokens although it can no longer be created (§5.2).
    pub fn is_legacy_only(&self) -> bool {
        LEGACY_ONLY_SCOPES.contains(&self.as_str())
    }

    /// Whether a personal access token may hold this scope (§5.3, PAT subset).
    pub fn allowed_for_personal_access_token(&self) -> bool {
        PERSONAL_ACCESS_TOKEN_SCOPES.contains(&self.as_str())
    }

    /// The human name Dynatrace shows next to the scope, as in the `x-token-scopes` strings of the
    /// official spec ("Read API tokens"). Falls back to the scope itself.
    pub fn display_name(&self) -> &str {
        DISPLAY_NAMES
            .iter()
            .find(|(s, _)| *s == self.as_str())
            .map(|(_, d)| *d)
            .unwrap_or(self.as_str())
    }

    /// The closest creatable scope, for "did you mean" hints. Case-insensitive exact matches win.
    pub fn suggest(&self) -> Option<&'static str> {
        let wanted = self.as_str();
        if let Some(exact) = CREATABLE_SCOPES
            .iter()
            .find(|s| s.eq_ignore_ascii_case(wanted))
        {
            return Some(exact);
        }
        CREATABLE_SCOPES
            .iter()
            .map(|s| {
                (
                    strsim::jaro_winkler(&s.to_ascii_lowercase(), &wanted.to_ascii_lowercase()),
                    *s,
                )
            })
            .filter(|(score, _)| *score > 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, s)| s)
    }
}

impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Scope {}

impl PartialOrd for Scope {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scope {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Scope {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for Scope {
    fn from(s: &str) -> Self {
        Scope::new(s)
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = Scope;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scope string")
            }
            // Read in place, so a known scope costs no allocation while a page is decoded.
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scope, E> {
                Ok(Scope::new(v))
            }
        }
        d.deserialize_str(Text)
    }
}

/// Scopes accepted by create/update of API tokens (REFERENCE.md §5.1, 91 values, documented order).
pub const CREATABLE_SCOPES: &[&str] = &[
    // legacy "API v1 / PaaS / other" style
    "InstallerDownload",
    "DataExport",
    "PluginUpload",
    "SupportAlert",
    "AdvancedSyntheticIntegration",
    "ExternalSyntheticIntegration",
    "RumBrowserExtension",
    "LogExport",
    "ReadConfig",
    "WriteConfig",
    "DTAQLAccess",
    "UserSessionAnonymization",
    "DataPrivacy",
    "CaptureRequestData",
    "Davis",
    "DssFileManagement",
    "RumJavaScriptTagManagement",
    "TenantTokenManagement",
    "ActiveGateCertManagement",
    "RestRequestForwarding",
    "ReadSyntheticData",
    "DataImport",
    // v2 style
    "syntheticExecutions.write",
    "syntheticExecutions.read",
    "auditLogs.read",
    "metrics.read",
    "metrics.write",
    "entities.read",
    "entities.write",
    "problems.read",
    "problems.write",
    "events.read",
    "events.ingest",
    "openpipeline.events",
    "openpipeline.events.custom",
    "openpipeline.events_security",
    "openpipeline.events_security.custom",
    "openpipeline.events_sdlc",
    "openpipeline.events_sdlc.custom",
    "openpipeline.events_smartscape",
    "bizevents.ingest",
    "networkZones.read",
    "networkZones.write",
    "activeGates.read",
    "activeGates.write",
    "activeGateTokenManagement.read",
    "activeGateTokenManagement.create",
    "activeGateTokenManagement.write",
    "agentTokenManagement.read",
    "credentialVault.read",
    "credentialVault.write",
    "extensions.read",
    "extensions.write",
    "extensionConfigurations.read",
    "extensionConfigurations.write",
    "extensionEnvironment.read",
    "extensionEnvironment.write",
    "metrics.ingest",
    "attacks.read",
    "attacks.write",
    "securityProblems.read",
    "securityProblems.write",
    "syntheticLocations.read",
    "syntheticLocations.write",
    "settings.read",
    "settings.write",
    "tenantTokenRotation.write",
    "slo.read",
    "slo.write",
    "releases.read",
    "apiTokens.read",
    "apiTokens.write",
    "openTelemetryTrace.ingest",
    "logs.read",
    "logs.ingest",
    "geographicRegions.read",
    "oneAgents.read",
    "oneAgents.write",
    "traces.lookup",
    "unifiedAnalysis.read",
    "hub.read",
    "hub.write",
    "hub.install",
    "javaScriptMappingFiles.read",
    "javaScriptMappingFiles.write",
    "extensionConfigurationActions.write",
    "rumCookieNames.read",
    "adaptiveTrafficManagement.read",
    "rumManualInsertionTags.read",
    "extensionDiscoveryJmx.read",
    "extensionDiscoveryPmi.read",
];

/// Scopes that may still appear on existing tokens but were removed from create/update in 1.247
/// (REFERENCE.md §5.2).
pub const LEGACY_ONLY_SCOPES: &[&str] = &[
    "DiagnosticExport",
    "MemoryDump",
    "Mobile",
    "ViewDashboard",
    "ViewReport",
    "WriteSyntheticData",
];

/// Scopes a personal access token may hold (REFERENCE.md §5.3, the PAT subset). `analyzers.*` is
/// left out on purpose: the docs still list it for PATs, but it was removed from the API in 1.330.
pub const PERSONAL_ACCESS_TOKEN_SCOPES: &[&str] = &[
    "activeGates.read",
    "activeGates.write",
    "apiTokens.read",
    "apiTokens.write",
    "attacks.read",
    "attacks.write",
    "entities.read",
    "entities.write",
    "events.ingest",
    "events.read",
    "extensionConfigurationActions.write",
    "extensionConfigurations.read",
    "extensionConfigurations.write",
    "extensions.read",
    "extensions.write",
    "geographicRegions.read",
    "hub.install",
    "hub.read",
    "hub.write",
    "javaScriptMappingFiles.read",
    "javaScriptMappingFiles.write",
    "metrics.read",
    "metrics.write",
    "networkZones.read",
    "networkZones.write",
    "oneAgents.read",
    "oneAgents.write",
    "problems.read",
    "problems.write",
    "releases.read",
    "rumCookieNames.read",
    "securityProblems.read",
    "securityProblems.write",
    "settings.read",
    "settings.write",
    "slo.read",
    "slo.write",
    "traces.lookup",
    "unifiedAnalysis.read",
];

/// Display names from the `x-token-scopes` strings of the official spec, for the scopes the token
/// APIs check. Used verbatim in 403 messages ("Use one of: apiTokens.read (Read API tokens)").
pub const DISPLAY_NAMES: &[(&str, &str)] = &[
    ("apiTokens.read", "Read API tokens"),
    ("apiTokens.write", "Write API tokens"),
    ("activeGateTokenManagement.read", "Read ActiveGate tokens"),
    (
        "activeGateTokenManagement.create",
        "Create ActiveGate tokens",
    ),
    ("activeGateTokenManagement.write", "Write ActiveGate tokens"),
    ("tenantTokenRotation.write", "Tenant token rotation"),
    ("InstallerDownload", "PaaS integration - Installer download"),
    ("activeGates.read", "Read ActiveGates"),
    ("activeGates.write", "Write ActiveGates"),
    ("metrics.ingest", "Ingest metrics"),
    ("metrics.read", "Read metrics"),
    ("metrics.write", "Write metrics"),
    ("logs.ingest", "Ingest logs"),
    ("entities.read", "Read entities"),
    ("entities.write", "Write entities"),
    ("events.ingest", "Ingest events"),
    ("events.read", "Read events"),
    ("settings.read", "Read settings"),
    ("settings.write", "Write settings"),
    ("openTelemetryTrace.ingest", "Ingest OpenTelemetry traces"),
    (
        "DataExport",
        "Access problem and event feed, metrics, and topology",
    ),
    ("TenantTokenManagement", "Token management"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_the_documented_size_and_no_duplicates() {
        assert_eq!(CREATABLE_SCOPES.len(), 91);
        let mut sorted = CREATABLE_SCOPES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 91);
        for s in PERSONAL_ACCESS_TOKEN_SCOPES {
            assert!(CREATABLE_SCOPES.contains(s), "{s} is not creatable");
        }
        for s in LEGACY_ONLY_SCOPES {
            assert!(
                !CREATABLE_SCOPES.contains(s),
                "{s} is both legacy and creatable"
            );
        }
    }

    #[test]
    fn suggestions_find_near_misses() {
        assert_eq!(
            Scope::from("apiToken.read").suggest(),
            Some("apiTokens.read")
        );
        assert_eq!(
            Scope::from("installerdownload").suggest(),
            Some("InstallerDownload")
        );
        assert_eq!(Scope::from("zzzzzzzz").suggest(), None);
    }

    #[test]
    fn a_scope_is_two_words() {
        assert_eq!(
            std::mem::size_of::<Scope>(),
            std::mem::size_of::<Arc<str>>()
        );
    }

    #[test]
    fn known_and_other_scopes_compare_by_their_text() {
        use std::collections::{BTreeSet, HashSet};

        let known = Scope::new(String::from("metrics.ingest"));
        assert!(
            matches!(known.0, Text::Known(_)),
            "a catalogue scope is the static text"
        );
        let other = Scope::new("zz.custom");
        assert!(matches!(other.0, Text::Other(_)));
        assert_eq!(known, Scope::from("metrics.ingest"));
        assert_ne!(known, other);

        // Order is the text's: an unknown scope sorts among the known ones by its letters.
        let set: BTreeSet<Scope> = ["logs.ingest", "a.custom", "metrics.ingest", "m.custom"]
            .into_iter()
            .map(Scope::new)
            .collect();
        let texts: Vec<&str> = set.iter().map(Scope::as_str).collect();
        assert_eq!(
            texts,
            ["a.custom", "logs.ingest", "m.custom", "metrics.ingest"]
        );
        let hashed: HashSet<Scope> = [known.clone(), Scope::new("metrics.ingest"), other]
            .into_iter()
            .collect();
        assert_eq!(hashed.len(), 2);

        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(
            json,
            r#"["a.custom","logs.ingest","m.custom","metrics.ingest"]"#
        );
        let back: BTreeSet<Scope> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        assert_eq!(
            format!("{known} {known:?}"),
            r#"metrics.ingest "metrics.ingest""#
        );
    }
}

//! The plan as a value: steps with ids, dependencies and reasons, the expiry forecast, what is
//! waiting for time to pass, warnings, failing checks and the fingerprint of the inputs.
//!
//! These types are the JSON contract of `plan --format json` and `plan --out` (versioned by
//! [`FORMAT_VERSION`]) and what `apply` consumes. They hold token ids, names, scopes and target
//! addresses, never a secret value.
//!
//! ## JSON reference (format_version 1)
//!
//! ```text
//! format_version  1
//! generated_at    RFC 3339 clock of the run
//! inputs          { spec, live, targets: SHA-256 hex; spec_commit: string|null; dirty: bool }
//! steps[]         in execution order:
//!   id            "<home>/<kind>/<key>/<verb>#<generation>[/<target address>]",
//!                 "<home>/<kind>/<key>/<disable|delete>/<token id>", "<home>/<kind>/prune/<id>",
//!                 "<env>/tenant_token/<start|finish|deliver/<address>>"; home = env name or
//!                 "account:<name>"
//!   depends_on[]  step ids that must succeed first
//!   home          { type: environment|account, name }
//!   kind          api_token | activegate_token | tenant_token | platform_token
//!   key           desired key, or null (prune, tenant token)
//!   reason        missing | scopes_changed | name_changed | expiry_changed | details_changed |
//!                 expiring_in_<N>d | rotation_due | replace_requested | leaked |
//!                 deleted_outside_git | disabled_outside_git |
//!                 expired | secret_unavailable | target_holds_stale_token | target_missing |
//!                 grace_elapsed | retention_elapsed | never_delivered | adopt | prune_unused |
//!                 tenant_rotation_in_progress | foreign_tenant_rotation |
//!                 tenant_rotation_closed | tenant_rotation_unwanted
//!   action        { type: create, name, generation, scopes[], expires_in: "30d"|null,
//!                   details: {kind: api|activegate|platform, …}, replaces: id|null, targets[] }
//!                 { type: update, token, name?: {from,to}, scopes?: {from[],to[]} }
//!                 { type: adopt, token, name: {from,to}, generation }
//!                 { type: deliver, token: {source: created, step} | {source: existing, id,
//!                   copy_from: address} | {source: tenant_token}, target: <spec target>, address }
//!                 { type: disable, token, name, rename? } | { type: delete, token, name }
//!                 { type: tenant_start } | { type: tenant_finish } | { type: tenant_cancel }
//!   note          optional human note
//! forecast[]      { home, kind, key|null, token|null, expires|null, rotation_due|null, changed_by_plan }
//! pending[]       { home, kind, key, token, action: disable|delete, not_before|null, waiting_for }
//! warnings[]      { code, message }
//! checks[]        { code: expiry_within_threshold|platform_token_limit|target_unusable, blocking,
//!                   home, key, message }
//! summary         { create, update, rotate, revoke, deliver, tenant }
//! tenant_rotations[]  (only when one is open) { environment, started_by_tokensmith: bool,
//!                 since|null, finish_due|null, confirmed[], unconfirmed[], unverifiable[]
//!                 (target addresses), status_endpoint: bool, next: string }
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::model::{
    EnvName, Generation, Home, ScopeSet, SpecDuration, Target, TargetAddress, TokenDetails,
    TokenId, TokenKey, TokenKind,
};

/// Version of the plan JSON. Bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// An ordered, secret-free list of steps that turns live state into the desired state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    /// The clock the plan was computed with (environments with a `server_time` use theirs).
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// What the plan was computed from; `apply PLAN` recomputes and compares.
    pub inputs: Inputs,
    /// Steps in execution order: every step comes after the steps it depends on.
    pub steps: Vec<Step>,
    /// Each managed token's expiry and next rotation.
    pub forecast: Vec<ForecastEntry>,
    /// Work that is due later (a predecessor waiting for its grace period, …). Not a change.
    pub pending: Vec<Pending>,
    pub warnings: Vec<Warning>,
    /// Plan-level checks that fail the run (`--fail-on-expiry-within`) or block a token
    /// (platform token limit). `apply` refuses a plan with a blocking check.
    pub checks: Vec<Check>,
    pub summary: Summary,
    /// Tenant token rotations open in an environment (started, not yet finished): since when,
    /// which targets confirmed the new token, when finish is due. Not a change, but
    /// `plan --detailed-exitcode` and `drift` exit 2 while one is open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenant_rotations: Vec<OpenTenantRotation>,
}

impl Plan {
    /// Whether the plan changes anything.
    pub fn has_changes(&self) -> bool {
        !self.steps.is_empty()
    }

    /// Whether a tenant token rotation is open somewhere (`plan --detailed-exitcode` exits 2).
    pub fn has_open_rotation(&self) -> bool {
        !self.tenant_rotations.is_empty()
    }

    /// Whether any check failed (the command exits 1).
    pub fn has_failed_checks(&self) -> bool {
        !self.checks.is_empty()
    }

    /// Whether `apply` must refuse this plan.
    pub fn is_blocked(&self) -> bool {
        self.checks.iter().any(|c| c.blocking)
    }

    /// The step with this id.
    pub fn step(&self, id: &StepId) -> Option<&Step> {
        self.steps.iter().find(|s| &s.id == id)
    }
}

/// The fingerprint of a plan's inputs (SHA-256, lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// Hash of the loaded spec, as computed by the spec loader.
    pub spec: String,
    /// Hash of the live metadata without the volatile `last_used` and `server_time` fields.
    pub live: String,
    /// Hash of the target holders.
    pub targets: String,
    /// The git commit of the spec, when it lives in a repository.
    pub spec_commit: Option<String>,
    /// Whether the spec had uncommitted changes.
    pub dirty: bool,
    /// `plan --replace` requests (`KEY[@ENV]`), so `apply PLAN` can plan the same again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<String>,
}

/// A step's identity, unique within a plan and stable across runs for the same inputs:
/// `<home>/<kind>/<key>/<verb>#<generation or token id>[/<target address>]`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepId(pub String);

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// One thing `apply` does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: StepId,
    /// Steps that must have succeeded before this one starts.
    pub depends_on: Vec<StepId>,
    pub home: Home,
    pub kind: TokenKind,
    /// The desired token's key; `None` for unmanaged tokens (prune) and tenant tokens.
    pub key: Option<TokenKey>,
    pub reason: Reason,
    pub action: Action,
    /// A secret-free note for humans (a drift note, what the applier tolerates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Step {
    /// The environment the step acts in, if it is not an account.
    pub fn environment(&self) -> Option<&EnvName> {
        match &self.home {
            Home::Environment(e) => Some(e),
            Home::Account(_) => None,
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Create a token. When `replaces` is set this is a rotation or replacement: the
    /// predecessor stays valid until its successor reached every target and its grace passed.
    Create {
        /// The full name, marker included.
        name: String,
        generation: Generation,
        scopes: ScopeSet,
        /// Lifetime; the applier computes the expiration date when it creates the token.
        expires_in: Option<SpecDuration>,
        details: TokenDetails,
        replaces: Option<TokenId>,
        /// Every target the new value is delivered to (the blast radius).
        targets: Vec<TargetAddress>,
    },
    /// Change an API token in place.
    Update {
        token: TokenId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<Change<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scopes: Option<Change<ScopeSet>>,
    },
    /// Take over an unmanaged token by renaming it to carry the marker.
    Adopt {
        token: TokenId,
        name: Change<String>,
        generation: Generation,
    },
    /// Write a token's value to a target.
    Deliver {
        token: TokenSource,
        target: Target,
        address: TargetAddress,
    },
    /// Disable a token (API tokens: `enabled: false`; platform tokens: status `INACTIVE`).
    /// API tokens are renamed to `rename` in the same update: Dynatrace bumps `modifiedDate`
    /// on a rename but not on disabling, and the planner measures `delete_after` from it.
    Disable {
        token: TokenId,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rename: Option<String>,
    },
    /// Delete a token.
    Delete { token: TokenId, name: String },
    /// Start a tenant token rotation (`tenantTokenRotation/start`).
    TenantStart,
    /// Finish a tenant token rotation (`tenantTokenRotation/finish`); the old tenant token stops
    /// working. The applier treats "no ongoing rotation" as already finished.
    TenantFinish,
    /// Cancel a tenant token rotation (`tenantTokenRotation/cancel`): the new tenant token is
    /// discarded and the old one stays valid. "No ongoing rotation" counts as cancelled.
    TenantCancel,
}

impl Action {
    /// The verb used in step ids and output.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Create {
                replaces: Some(_), ..
            } => "rotate",
            Action::Create { .. } => "create",
            Action::Update { .. } => "update",
            Action::Adopt { .. } => "adopt",
            Action::Deliver { .. } => "deliver",
            Action::Disable { .. } => "disable",
            Action::Delete { .. } => "delete",
            Action::TenantStart => "tenant_start",
            Action::TenantFinish => "tenant_finish",
            Action::TenantCancel => "tenant_cancel",
        }
    }

    /// Whether the step takes something away (disable or delete).
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            Action::Disable { .. }
                | Action::Delete { .. }
                | Action::TenantFinish
                | Action::TenantCancel
        )
    }

    /// The live token the step acts on, if any.
    pub fn token(&self) -> Option<&TokenId> {
        match self {
            Action::Create { .. }
            | Action::TenantStart
            | Action::TenantFinish
            | Action::TenantCancel => None,
            Action::Update { token, .. }
            | Action::Adopt { token, .. }
            | Action::Disable { token, .. }
            | Action::Delete { token, .. } => Some(token),
            Action::Deliver { token, .. } => match token {
                TokenSource::Existing { id, .. } => Some(id),
                _ => None,
            },
        }
    }
}

/// A before/after pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change<T> {
    pub from: T,
    pub to: T,
}

/// Where the applier gets the value it delivers. Dynatrace shows a secret only when it creates
/// the token, so an existing token's value can only be copied from a target that holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum TokenSource {
    /// The token created by this step of the same run.
    Created { step: StepId },
    /// An existing token, whose value is read from a target that holds it.
    Existing {
        id: TokenId,
        copy_from: TargetAddress,
    },
    /// The environment's active tenant token, read from `connectioninfo`.
    TenantToken,
}

/// Why a step or a drift item exists. Serialized as a snake_case code (`expiring_in_6d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// The spec declares it and nothing live matches.
    Missing,
    ScopesChanged,
    NameChanged,
    /// The token's lifetime differs from `expires_in` (expiry cannot be updated in place).
    ExpiryChanged,
    /// Kind-specific settings differ (ActiveGate type or seed flag, personal access token flag,
    /// platform resources or owner) and the API cannot update them.
    DetailsChanged,
    /// `rotate_before` reached: the current generation expires in this many days (rounded up).
    ExpiringIn {
        days: i64,
    },
    /// `rotate_every` reached.
    RotationDue,
    /// `--replace KEY[@ENV]`: rotate now, whatever the schedule says.
    ReplaceRequested,
    /// `tokensmith leak`: the token's secret was exposed.
    Leaked,
    DeletedOutsideGit,
    /// A classic API token the targets record is gone because Dynatrace deletes expired classic
    /// tokens 7 days after their expiry (the targets record when it expired).
    ExpiredAndPurged,
    DisabledOutsideGit,
    Expired,
    /// The newest generation exists but no target holds its value, which is lost.
    SecretUnavailable,
    TargetHoldsStaleToken,
    /// The target holds nothing (or a value with no recorded id).
    TargetMissing,
    /// `drift --verify-values`: the target's value is another token than the one it records.
    TargetValueMismatch,
    /// `drift --verify-values`: the target's value is no valid token of its environment.
    TargetValueInvalid,
    GraceElapsed,
    RetentionElapsed,
    /// A successor generation that never reached any target (an interrupted apply).
    NeverDelivered,
    Adopt,
    PruneUnused,
    /// Some tenant-token targets hold an older tenant token: a rotation is being completed.
    TenantRotationInProgress,
    /// The platform token limit of 10 per owner would be exceeded.
    PlatformTokenLimit,
    /// The spec moved the key from a classic API token to a platform token: the platform token
    /// replaces it, then the classic one retires (see `migrate`).
    MigratedToPlatform,
    ExpiryWithinThreshold,
    /// A delivery target cannot be written (a Kubernetes context that does not resolve, an API
    /// server that does not answer, an identity that may not write the Secret).
    TargetUnusable,
    /// A tenant token rotation was started outside tokensmith.
    ForeignTenantRotation,
    /// tokensmith's record of a tenant rotation that Dynatrace says is no longer open.
    TenantRotationClosed,
    /// The spec no longer rotates the tenant token and the new one reached no target.
    TenantRotationUnwanted,
    /// A `dynakube_tenant` target holds the active tenant token, but the restart of its
    /// injected workloads that a delivery owes them has not happened yet.
    TenantRestartOwed,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Reason::ExpiringIn { days } => return write!(f, "expiring_in_{days}d"),
            Reason::Missing => "missing",
            Reason::ScopesChanged => "scopes_changed",
            Reason::NameChanged => "name_changed",
            Reason::ExpiryChanged => "expiry_changed",
            Reason::DetailsChanged => "details_changed",
            Reason::RotationDue => "rotation_due",
            Reason::ReplaceRequested => "replace_requested",
            Reason::Leaked => "leaked",
            Reason::DeletedOutsideGit => "deleted_outside_git",
            Reason::ExpiredAndPurged => "expired_and_purged",
            Reason::DisabledOutsideGit => "disabled_outside_git",
            Reason::Expired => "expired",
            Reason::SecretUnavailable => "secret_unavailable",
            Reason::TargetHoldsStaleToken => "target_holds_stale_token",
            Reason::TargetMissing => "target_missing",
            Reason::TargetValueMismatch => "target_value_mismatch",
            Reason::TargetValueInvalid => "target_value_invalid",
            Reason::GraceElapsed => "grace_elapsed",
            Reason::RetentionElapsed => "retention_elapsed",
            Reason::NeverDelivered => "never_delivered",
            Reason::Adopt => "adopt",
            Reason::PruneUnused => "prune_unused",
            Reason::TenantRotationInProgress => "tenant_rotation_in_progress",
            Reason::PlatformTokenLimit => "platform_token_limit",
            Reason::MigratedToPlatform => "migrated_to_platform",
            Reason::ExpiryWithinThreshold => "expiry_within_threshold",
            Reason::TargetUnusable => "target_unusable",
            Reason::ForeignTenantRotation => "foreign_tenant_rotation",
            Reason::TenantRotationClosed => "tenant_rotation_closed",
            Reason::TenantRotationUnwanted => "tenant_rotation_unwanted",
            Reason::TenantRestartOwed => "tenant_restart_owed",
        };
        f.write_str(s)
    }
}

impl FromStr for Reason {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const ALL: [Reason; 31] = [
            Reason::TargetValueInvalid,
            Reason::TargetValueMismatch,
            Reason::Missing,
            Reason::ReplaceRequested,
            Reason::Leaked,
            Reason::ScopesChanged,
            Reason::NameChanged,
            Reason::ExpiryChanged,
            Reason::DetailsChanged,
            Reason::RotationDue,
            Reason::DeletedOutsideGit,
            Reason::ExpiredAndPurged,
            Reason::DisabledOutsideGit,
            Reason::Expired,
            Reason::SecretUnavailable,
            Reason::TargetHoldsStaleToken,
            Reason::TargetMissing,
            Reason::GraceElapsed,
            Reason::RetentionElapsed,
            Reason::NeverDelivered,
            Reason::Adopt,
            Reason::PruneUnused,
            Reason::TenantRotationInProgress,
            Reason::PlatformTokenLimit,
            Reason::MigratedToPlatform,
            Reason::ExpiryWithinThreshold,
            Reason::TargetUnusable,
            Reason::ForeignTenantRotation,
            Reason::TenantRotationClosed,
            Reason::TenantRotationUnwanted,
            Reason::TenantRestartOwed,
        ];
        if let Some(r) = ALL.iter().find(|r| r.to_string() == s) {
            return Ok(*r);
        }
        s.strip_prefix("expiring_in_")
            .and_then(|d| d.strip_suffix('d'))
            .and_then(|d| d.parse().ok())
            .map(|days| Reason::ExpiringIn { days })
            .ok_or_else(|| format!("unknown reason code `{s}`"))
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One managed token's expiry and next rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastEntry {
    pub home: Home,
    pub kind: TokenKind,
    /// `None` for the tenant token.
    pub key: Option<TokenKey>,
    /// The current generation, `None` when it is created by this plan.
    pub token: Option<TokenId>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires: Option<OffsetDateTime>,
    /// When the next rotation is due; `None` when the token never rotates on a schedule or
    /// (tenant token) no target records when it was written.
    #[serde(with = "time::serde::rfc3339::option")]
    pub rotation_due: Option<OffsetDateTime>,
    /// Whether this plan rotates, replaces or creates it.
    pub changed_by_plan: bool,
}

/// A tenant token rotation open in an environment, as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTenantRotation {
    pub environment: EnvName,
    /// Who started it: tokensmith (its record is in the environment) or someone else.
    pub started_by_tokensmith: bool,
    /// When it started (the record's creation date); unknown for a foreign rotation.
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// When the grace ends and finish may run (once every target confirmed).
    #[serde(with = "time::serde::rfc3339::option")]
    pub finish_due: Option<OffsetDateTime>,
    /// Targets that confirmed the active (new) tenant token: read back, or (write-only) their
    /// command succeeded in this rotation.
    pub confirmed: Vec<TargetAddress>,
    /// Targets that did not confirm it yet.
    pub unconfirmed: Vec<TargetAddress>,
    /// Targets that cannot be read back: confirmed only by their command's success, never by
    /// what they hold (listed here too when confirmed).
    pub unverifiable: Vec<TargetAddress>,
    /// Whether Dynatrace reported the rotation (`tenantTokenRotation/status`); false when only
    /// tokensmith's record tells (older versions without the endpoint).
    pub status_endpoint: bool,
    /// What happens next, in words.
    pub next: String,
}

/// Something due later, decided again by a later run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub home: Home,
    pub kind: TokenKind,
    pub key: TokenKey,
    pub token: TokenId,
    /// What will happen (`disable`, `delete`).
    pub action: String,
    /// The earliest time it can happen, when time is what it waits for.
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    /// What it waits for, in words.
    pub waiting_for: String,
}

/// A non-fatal finding shown with the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub code: String,
    pub message: String,
}

/// A failing plan-level check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub code: Reason,
    /// A blocking check makes `apply` refuse the plan.
    pub blocking: bool,
    pub home: Home,
    pub key: Option<TokenKey>,
    pub message: String,
}

/// Step counts, as in the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub rotate: usize,
    pub revoke: usize,
    pub deliver: usize,
    pub tenant: usize,
}

impl Summary {
    pub fn of(steps: &[Step]) -> Summary {
        let mut s = Summary::default();
        for step in steps {
            match &step.action {
                Action::Create { replaces: None, .. } => s.create += 1,
                Action::Create { .. } => s.rotate += 1,
                Action::Update { .. } | Action::Adopt { .. } => s.update += 1,
                Action::Disable { .. } | Action::Delete { .. } => s.revoke += 1,
                Action::Deliver { .. } => s.deliver += 1,
                Action::TenantStart | Action::TenantFinish | Action::TenantCancel => s.tenant += 1,
            }
        }
        s
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Plan: {} to create, {} to update, {} to rotate, {} to revoke.",
            self.create, self.update, self.rotate, self.revoke
        )?;
        let plural =
            |n: usize, one: &'static str, many: &'static str| if n == 1 { one } else { many };
        if self.deliver > 0 || self.tenant > 0 {
            write!(
                f,
                " {} {}",
                self.deliver,
                plural(self.deliver, "delivery", "deliveries")
            )?;
            if self.tenant > 0 {
                write!(
                    f,
                    ", {} tenant token {}",
                    self.tenant,
                    plural(self.tenant, "step", "steps")
                )?;
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

/// Why the planner refused to plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("refusing to {action} token {token} in environment `{env}`: it is the management token tokensmith authenticates with; switch `token_env` to another token first")]
    ManagementToken {
        env: EnvName,
        token: TokenId,
        action: &'static str,
    },
    #[error("spec names environment `{0}` but the live snapshot has no data for it; read it before planning")]
    MissingEnvironment(EnvName),
    #[error("spec names account `{0}` but the live snapshot has no data for it; read it before planning")]
    MissingAccount(String),
    #[error("`adopt: {id}` of `{key}` in {home}: {why}; check the id (`tokensmith inventory` lists every token) or remove `adopt`")]
    AdoptNotFound {
        key: TokenKey,
        home: String,
        id: TokenId,
        why: String,
    },
    #[error("`adopt: {id}` of `{key}` in {home}: the management token cannot be adopted (it is the token tokensmith authenticates with, which it never renames, rotates or revokes); remove `adopt` so tokensmith creates `{key}`, or switch `token_env` to another token first")]
    AdoptManagementToken {
        key: TokenKey,
        home: String,
        id: TokenId,
    },
    #[error("--replace {0}: the spec (in the selected environments) declares no such token")]
    UnknownReplace(String),
}

/// Settings of one planning run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Hash of the spec (from the spec loader), recorded in [`Inputs::spec`].
    pub spec_hash: String,
    pub spec_commit: Option<String>,
    pub dirty: bool,
    /// Fail the plan when a managed token expires within this duration.
    pub fail_on_expiry_within: Option<SpecDuration>,
    /// `--replace KEY[@ENV]`: tokens to rotate now, regardless of their schedule.
    pub replace: Vec<ReplaceRequest>,
}

/// `--replace KEY[@ENV]`: one desired token to rotate now. Without `@ENV` it names the key in
/// every environment and account of the spec; `@ENV` names an environment or an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaceRequest {
    pub key: TokenKey,
    pub home: Option<String>,
}

impl ReplaceRequest {
    /// Whether this request names the desired token `key` in `home`.
    pub fn names(&self, key: &TokenKey, home: &Home) -> bool {
        &self.key == key
            && self.home.as_deref().is_none_or(|h| match home {
                Home::Environment(e) => e.as_str() == h,
                Home::Account(a) => a == h,
            })
    }
}

impl fmt::Display for ReplaceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.home {
            Some(h) => write!(f, "{}@{h}", self.key),
            None => write!(f, "{}", self.key),
        }
    }
}

impl FromStr for ReplaceRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, home) = match s.split_once('@') {
            Some((_, "")) => return Err(format!("`{s}` names no environment after `@`")),
            Some((k, h)) => (k, Some(h.to_owned())),
            None => (s, None),
        };
        Ok(ReplaceRequest {
            key: TokenKey::parse(key)?,
            home,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_round_trip() {
        for code in [
            "missing",
            "scopes_changed",
            "expiring_in_6d",
            "expiring_in_0d",
            "target_holds_stale_token",
            "retention_elapsed",
            "platform_token_limit",
            "expiry_within_threshold",
        ] {
            let reason: Reason = code.parse().unwrap();
            assert_eq!(reason.to_string(), code);
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), reason);
        }
        assert!("expiring_in_xd".parse::<Reason>().is_err());
        assert!("Missing".parse::<Reason>().is_err());
    }

    #[test]
    fn summary_line() {
        let s = Summary {
            create: 2,
            update: 1,
            rotate: 1,
            revoke: 0,
            deliver: 0,
            tenant: 0,
        };
        assert_eq!(
            s.to_string(),
            "Plan: 2 to create, 1 to update, 1 to rotate, 0 to revoke."
        );
        let s = Summary {
            deliver: 1,
            tenant: 2,
            ..s
        };
        assert!(s
            .to_string()
            .ends_with(" 1 delivery, 2 tenant token steps."));
    }
}

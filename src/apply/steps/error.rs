//! What a failed step reports: [`StepError`], one variant per way a step can fail.
//!
//! Dynatrace's part of a failure stays a typed [`LiveError`] (its meaning is
//! [`LiveError::failure`]); the steps decide on that kind, never on message text. The display
//! texts are what the progress line, the journal and the report show (redacted by the executor).
//!
//! Not here: the decisions themselves (the step files) and the report's outcome type (`report`).

use crate::deliver::DeliverError;
use crate::live::LiveError;
use crate::model::{EnvName, Marker, TargetAddress, TokenId, TokenKind};
use crate::plan::StepId;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    /// The run's locks run out soon, so the step was not started (`ApplyOptions::start_steps_until`).
    #[error("not started: this apply's environment leases run out soon (a lease lasts an hour and is not renewed), and a step started without them could race another apply; run apply again to continue from here")]
    LeaseRunningOut,
    /// A Dynatrace call failed or could not be made (no client for the home, …).
    #[error(transparent)]
    Live(#[from] LiveError),
    /// The management token could not be identified, so nothing may be revoked.
    #[error("cannot tell which token tokensmith authenticates with, so nothing is revoked: {0}")]
    CallerUnknown(LiveError),
    /// Acting on the token tokensmith authenticates with would lock it out.
    #[error("refusing to {verb} token {token}: it is the management token tokensmith authenticates with in environment `{env}`")]
    ManagementToken {
        verb: &'static str,
        token: TokenId,
        env: EnvName,
    },
    /// A target of the token's key still holds it (DESIGN.md invariant 1).
    #[error("refusing to {verb} {token}: target {address} still holds it; plan again once it holds the successor")]
    StillHeld {
        verb: &'static str,
        token: TokenId,
        address: TargetAddress,
    },
    /// A target of the token's key cannot be read, so it may still hold it.
    #[error("refusing to {verb} {token}: target {address} cannot be read ({reason}), so it may still hold it")]
    TargetUnreadable {
        verb: &'static str,
        token: TokenId,
        address: TargetAddress,
        reason: String,
    },
    /// A create step whose name has no marker (the planner always adds one).
    #[error("the name `{name}` carries no tokensmith marker")]
    NoMarker { name: String },
    /// Listing the tokens to look for the marker failed.
    #[error("cannot look for tokens marked {marker}: {cause}")]
    LookForMarker { marker: Marker, cause: LiveError },
    /// An orphan of an interrupted run could not be deleted before creating.
    #[error("cannot delete the undelivered token {token}: {cause}")]
    DeleteUndelivered { token: TokenId, cause: LiveError },
    /// Every create attempt ended with an unknown outcome.
    #[error("creating the token marked {marker} kept failing with an unknown outcome ({attempts} attempts); run apply again, it looks for the marker first")]
    CreateOutcomeUnknown { marker: Marker, attempts: u32 },
    /// A delivery whose create step left nothing behind (the scheduler prevents this).
    #[error("step {step} produced no token in this run")]
    NotProduced { step: StepId },
    /// The value of an existing token is in no readable target.
    #[error("the value of {token} is not available ({why}); Dynatrace shows a value only once, so plan again: a token whose value is lost gets a new generation")]
    ValueUnavailable { token: TokenId, why: String },
    /// Writing the target failed.
    #[error(transparent)]
    Deliver(DeliverError),
    /// The target was written, but reading it back did not show the value.
    #[error("delivered, but the check afterwards failed: {0}")]
    Verify(DeliverError),
    /// The active tenant token could not be read for a delivery.
    #[error("cannot read the active tenant token: {0}")]
    ReadTenantToken(LiveError),
    /// The token an update or adopt is about no longer exists.
    #[error("token {token} no longer exists; plan again")]
    TokenGone { token: TokenId },
    /// Only API and platform tokens can be disabled.
    #[error("a {kind} cannot be disabled, only deleted")]
    CannotDisable { kind: TokenKind },
    /// A tenant step whose home is an account.
    #[error("a tenant token belongs to an environment")]
    TenantOutsideEnvironment,
    /// Finishing would disconnect a target that still holds the old tenant token.
    #[error("refusing to finish the tenant token rotation of `{env}`: target {address} still holds tenant token {held}, not the active {active}; plan again to deliver it")]
    TenantNotConfirmed {
        env: EnvName,
        address: TargetAddress,
        held: String,
        active: String,
    },
    /// The record of the open rotation could not be kept.
    #[error("cannot keep tokensmith's record of the tenant rotation of `{env}`: {cause}")]
    TenantRecord { env: EnvName, cause: LiveError },
}

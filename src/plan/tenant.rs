//! Tenant token planning. The tenant token has no id and no dates in the API; the environment
//! reports the active token's fingerprint (`connectioninfo`), and each target reports the
//! fingerprint it holds and when it was written (`Holder::TenantToken { fingerprint, since }`).
//!
//! Flow of a rotation, as steps: `tenant_start` → deliver to every ActiveGate target (each
//! depends on the start) → deliver to every OneAgent target (each depends on every ActiveGate
//! delivery, so OneAgents never get a token their ActiveGates reject) → `tenant_finish` (depends
//! on every delivery; the old tenant token stops working).
//!
//! - **Due**: `rotate_every` has passed since the last rotation, taken as the earliest `since`
//!   among readable targets holding the active fingerprint (when the first target received it).
//!   When no target records that, the schedule is unknown: a warning, no rotation.
//! - **In progress** (some target holds another fingerprint): an earlier apply stopped between
//!   start and finish, or the token was rotated outside git. Deliver the active token to every
//!   target that does not hold it (write-only and unreadable ones too, since they cannot be
//!   checked), then finish. The applier treats "no ongoing rotation" on finish as done.
//! - Otherwise, readable targets that hold nothing get the active token; no start or finish.
//! - Limitation: an apply killed after the last delivery and before finish leaves the rotation
//!   open without any target showing it; the next scheduled `start` answers "already in
//!   progress" and the applier continues with the active token.

use time::OffsetDateTime;

use super::draft::Draft;
use super::types::{Action, ForecastEntry, PlanError, Reason, Step, StepId, TokenSource};
use crate::model::{
    DesiredTenantToken, Holder, Home, LiveSnapshot, Target, TargetSnapshot, TokenKind,
};

/// What a tenant-token target holds relative to the active fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TenantTargetState {
    Current,
    Stale,
    Empty,
    Unknown,
}

pub(crate) fn tenant_target_state(
    holder: Option<&Holder>,
    active: &str,
) -> (TenantTargetState, Option<OffsetDateTime>) {
    match holder {
        Some(Holder::TenantToken { fingerprint, since }) if fingerprint == active => {
            (TenantTargetState::Current, *since)
        }
        Some(Holder::TenantToken { .. }) => (TenantTargetState::Stale, None),
        Some(Holder::Absent | Holder::Unknown | Holder::Token { .. }) => {
            (TenantTargetState::Empty, None)
        }
        Some(Holder::WriteOnly | Holder::Unreadable { .. }) | None => {
            (TenantTargetState::Unknown, None)
        }
    }
}

pub(crate) fn plan_tenant(
    draft: &mut Draft,
    tenant: &DesiredTenantToken,
    live: &LiveSnapshot,
    targets: &TargetSnapshot,
    now: OffsetDateTime,
) -> Result<(), PlanError> {
    let env = &tenant.environment;
    let live_env = live
        .environments
        .get(env)
        .ok_or_else(|| PlanError::MissingEnvironment(env.clone()))?;
    let now = live_env.server_time.unwrap_or(now);
    let home = Home::Environment(env.clone());
    let Some(active) = &live_env.tenant_token else {
        draft.warn(
            "tenant_token_unreadable",
            format!("the tenant token of environment `{env}` could not be read (connectioninfo needs `InstallerDownload`); its targets are not checked"),
        );
        return Ok(());
    };
    // A target listed twice (or as both ActiveGate and OneAgent target) is planned once, first.
    let mut seen = std::collections::HashSet::new();
    let mut classify =
        |list: &[Target]| -> Vec<(Target, TenantTargetState, Option<OffsetDateTime>)> {
            list.iter()
                .filter(|t| seen.insert(t.address()))
                .map(|t| {
                    let (state, since) =
                        tenant_target_state(targets.holders.get(&t.address()), active);
                    (t.clone(), state, since)
                })
                .collect()
        };
    let activegates = classify(&tenant.activegates);
    let oneagents = classify(&tenant.oneagents);
    let all = || activegates.iter().chain(oneagents.iter());

    let last_rotation = all()
        .filter(|(_, s, _)| *s == TenantTargetState::Current)
        .filter_map(|(_, _, since)| *since)
        .min();
    let rotation_due = match (tenant.rotate_every, last_rotation) {
        (Some(every), Some(last)) => Some(last + every.to_time()),
        _ => None,
    };
    if tenant.rotate_every.is_some() && last_rotation.is_none() && all().next().is_some() {
        draft.warn(
            "tenant_schedule_unknown",
            format!("no target of the tenant token of `{env}` records when it was written; its rotation schedule is unknown and it is not rotated on schedule"),
        );
    }
    let in_progress = all().any(|(_, s, _)| *s == TenantTargetState::Stale);
    let due = !in_progress && rotation_due.is_some_and(|d| d <= now);

    let prefix = format!("{env}/{}", TokenKind::TenantToken);
    let mk = |id: String, reason: Reason, action: Action, deps: Vec<StepId>| Step {
        id: StepId(id),
        depends_on: deps,
        home: home.clone(),
        kind: TokenKind::TenantToken,
        key: None,
        reason,
        action,
        note: None,
    };
    let deliver = |t: &Target, reason: Reason, deps: Vec<StepId>| {
        let address = t.address();
        mk(
            format!("{prefix}/deliver/{address}"),
            reason,
            Action::Deliver {
                token: TokenSource::TenantToken,
                target: t.clone(),
                address,
            },
            deps,
        )
    };

    if in_progress || due {
        let reason = if due {
            Reason::RotationDue
        } else {
            Reason::TenantRotationInProgress
        };
        let mut after_start = Vec::new();
        if due {
            after_start.push(draft.push(mk(
                format!("{prefix}/start"),
                reason,
                Action::TenantStart,
                Vec::new(),
            )));
        }
        let wants = |s: TenantTargetState| due || s != TenantTargetState::Current;
        let reason_for = |s: TenantTargetState| match s {
            _ if due => Reason::RotationDue,
            TenantTargetState::Stale => Reason::TargetHoldsStaleToken,
            TenantTargetState::Empty => Reason::TargetMissing,
            _ => Reason::TenantRotationInProgress,
        };
        let mut ag_steps = Vec::new();
        for (t, s, _) in &activegates {
            if wants(*s) {
                ag_steps.push(draft.push(deliver(t, reason_for(*s), after_start.clone())));
            }
        }
        let oa_deps = if ag_steps.is_empty() {
            after_start.clone()
        } else {
            ag_steps.clone()
        };
        let mut all_steps = ag_steps;
        for (t, s, _) in &oneagents {
            if wants(*s) {
                all_steps.push(draft.push(deliver(t, reason_for(*s), oa_deps.clone())));
            }
        }
        let finish_deps = if all_steps.is_empty() {
            after_start
        } else {
            all_steps
        };
        let mut finish = mk(
            format!("{prefix}/finish"),
            reason,
            Action::TenantFinish,
            finish_deps,
        );
        finish.note = Some(
            "the old tenant token stops working; `no ongoing rotation` counts as finished"
                .to_owned(),
        );
        draft.push(finish);
    } else {
        let mut ag_steps = Vec::new();
        for (t, s, _) in &activegates {
            if *s == TenantTargetState::Empty {
                ag_steps.push(draft.push(deliver(t, Reason::TargetMissing, Vec::new())));
            }
        }
        for (t, s, _) in &oneagents {
            if *s == TenantTargetState::Empty {
                draft.push(deliver(t, Reason::TargetMissing, ag_steps.clone()));
            }
        }
    }
    draft.forecast.push(ForecastEntry {
        home,
        kind: TokenKind::TenantToken,
        key: None,
        token: None,
        expires: None,
        rotation_due: if due {
            tenant.rotate_every.map(|e| now + e.to_time())
        } else {
            rotation_due
        },
        changed_by_plan: due || in_progress,
    });
    Ok(())
}

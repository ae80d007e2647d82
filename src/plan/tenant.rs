//! Tenant token planning. The tenant token has no id and no dates in the API; the environment
//! reports the active token's fingerprint (`connectioninfo`) and, on newer versions, whether a
//! rotation is open (`tenantTokenRotation/status`); each target reports the fingerprint it holds
//! and when it was written (`Holder::TenantToken { fingerprint, since }`). What Dynatrace cannot
//! tell (when a rotation started, which write-only targets took the new token) tokensmith keeps
//! in the environment itself: the rotation record (`tenant_record`), a disabled API token
//! created before `start` and deleted after `finish` or `cancel`.
//!
//! A rotation, as steps and across runs: `tenant_start` (creates the record, then starts) →
//! deliver to every ActiveGate target → deliver to every OneAgent target (each depends on every
//! ActiveGate delivery, so no OneAgent gets a token its ActiveGates reject) → later runs deliver
//! to whatever has not confirmed the new token → `tenant_finish` once every target confirmed it
//! **and** the grace (`tenant_token.<env>.grace`, default 1d) has passed since the start
//! (finish deletes the record after Dynatrace answered). Confirmation: a readable target holds
//! the active fingerprint; a write-only target's command succeeded in this rotation (the
//! record's `wo=` note, set by the applier after all of them succeeded). Both tokens stay valid
//! until finish, so a OneAgent that was offline, an operator still reconciling or an
//! application pod restarted later keeps sending data meanwhile.
//!
//! Whether a rotation is open: the status endpoint when the environment has one, else the
//! record alone. Why the record survives a crash between any two steps (each row: what the next
//! plan sees and does):
//! - killed after the record was created, before `start` ran (or `start` failed with 500/429):
//!   status INACTIVE + record → the record is stale and deleted, and `start` is planned again
//!   while the rotation is due. Without a status endpoint the targets tell: a readable one holds
//!   the active token, written before the record was created, so `start` never ran; the record
//!   is deleted and `start` planned again. (With no readable target to tell, the record
//!   counts as an open rotation: after the grace `finish` answers "no ongoing rotation", which
//!   counts as finished and deletes the record; the next plan starts anew.)
//! - `start` committed but its answer was lost, or killed after `start`: ACTIVE (or record) →
//!   open rotation; the targets hold the old token and are delivered; finish after grace.
//! - killed or failed between deliveries: open rotation; the unconfirmed targets are delivered.
//! - all delivered, grace not passed: open rotation, no step; `plan --detailed-exitcode` and
//!   `drift` exit 2 and show since when, which targets confirmed and when finish is due.
//! - `finish` failed (500, 429) or was killed before it ran: open rotation, finish planned again.
//! - `finish` committed, answer lost or killed before the record was deleted: INACTIVE + record
//!   → the stale record is deleted. Without a status endpoint: record → `finish` again, answered
//!   "no ongoing rotation" (= finished), then the record is deleted.
//! - `start` refused with "already in progress" (a rotation started outside tokensmith, on a
//!   version without the status endpoint): the start step keeps the record and continues with
//!   the active token, so the rotation is finished like tokensmith's own.
//!
//! A rotation started outside tokensmith (ACTIVE without a record) is reported; the spec says
//! what to do with `on_foreign_rotation`: `adopt` (start step: records it, "already in progress"
//! continues; deliver; finish after the grace) or `cancel`. tokensmith's own rotation is
//! cancelled when the spec no longer rotates the tenant token (`rotate_every` removed) and the
//! new token reached no target: no readable target holds it and the record has no `sent` note.
//!
//! - **Due**: `rotate_every` has passed since the last rotation, taken as the earliest `since`
//!   among readable targets holding the active fingerprint (when the first target received it).
//!   When no target records that, the schedule is unknown: no rotation, and a warning unless
//!   the plan delivers to a readable target (a first run), whose apply records the time.
//! - No rotation open: readable targets that hold nothing or another tenant token get the active
//!   token; no start or finish.

use time::OffsetDateTime;

use super::draft::{rfc3339, Draft};
use super::tenant_record::{self, write_only_digest, RotationRecord};
use super::types::{
    Action, ForecastEntry, OpenTenantRotation, PlanError, Reason, Step, StepId, TokenSource,
};
use crate::model::{
    DesiredTenantToken, ForeignRotation, Holder, Home, LiveEnvironment, LiveSnapshot, Target,
    TargetAddress, TargetSnapshot, TokenKind,
};

/// What a tenant-token target holds relative to the active fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TenantTargetState {
    Current,
    Stale,
    /// Holds the active token, but its workloads still wait for a restart (see
    /// [`Holder::RestartOwed`]): delivered again, which restarts them.
    RestartOwed,
    Empty,
    /// Write-only or unreadable: what it holds is unknown.
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
        Some(Holder::RestartOwed { fingerprint, since }) if fingerprint == active => {
            (TenantTargetState::RestartOwed, *since)
        }
        Some(Holder::RestartOwed { .. }) => (TenantTargetState::Stale, None),
        Some(Holder::Absent | Holder::Unknown | Holder::Token { .. }) => {
            (TenantTargetState::Empty, None)
        }
        Some(Holder::WriteOnly | Holder::Unreadable { .. }) | None => {
            (TenantTargetState::Unknown, None)
        }
    }
}

/// One target of the tenant token, classified.
#[derive(Debug, Clone)]
struct Classified {
    target: Target,
    address: TargetAddress,
    state: TenantTargetState,
    since: Option<OffsetDateTime>,
    activegate: bool,
}

/// The tenant token of one environment as the planner sees it.
struct TenantView<'a> {
    tenant: &'a DesiredTenantToken,
    targets: Vec<Classified>,
    records: Vec<RotationRecord>,
    /// Dynatrace's status (`None`: no endpoint).
    status: Option<bool>,
    now: OffsetDateTime,
}

impl<'a> TenantView<'a> {
    fn new(
        tenant: &'a DesiredTenantToken,
        live_env: &LiveEnvironment,
        active: &str,
        holders: &TargetSnapshot,
        now: OffsetDateTime,
    ) -> Self {
        // A target listed twice (or as both ActiveGate and OneAgent target) is planned once, first.
        let mut seen = std::collections::HashSet::new();
        let mut targets = Vec::new();
        for (list, activegate) in [(&tenant.activegates, true), (&tenant.oneagents, false)] {
            for t in list {
                let address = t.address();
                if !seen.insert(address.clone()) {
                    continue;
                }
                let (state, since) = tenant_target_state(holders.holders.get(&address), active);
                targets.push(Classified {
                    target: t.clone(),
                    address,
                    state,
                    since,
                    activegate,
                });
            }
        }
        TenantView {
            tenant,
            targets,
            records: tenant_record::records(&live_env.api_tokens),
            status: live_env.tenant_rotation_active,
            now: live_env.server_time.unwrap_or(now),
        }
    }

    /// Whether a rotation is open: Dynatrace's status where it has one, else the record, unless
    /// the targets show that the recorded `start` never ran.
    fn open(&self) -> bool {
        self.status
            .unwrap_or(!self.records.is_empty() && !self.start_never_ran())
    }

    /// Without a status endpoint: whether the record's `start` never ran (killed or failed
    /// between creating the record and starting). Then the active token is the one the targets
    /// held before: a readable target holds the active token, written before the record was
    /// created (had `start` run, the active token would be new and no target could hold it from
    /// before the record), no target holds another one, and no delivery to an unreadable target
    /// was attempted.
    fn start_never_ran(&self) -> bool {
        let Some(started) = self.record().and_then(|r| r.started) else {
            return false;
        };
        if self.record().is_some_and(|r| r.notes.sent)
            || self
                .targets
                .iter()
                .any(|t| t.state == TenantTargetState::Stale)
        {
            return false;
        }
        self.targets
            .iter()
            .any(|t| t.state == TenantTargetState::Current && t.since.is_some_and(|s| s < started))
    }

    /// tokensmith's record of the open rotation (the oldest, should there be several).
    fn record(&self) -> Option<&RotationRecord> {
        self.records.first()
    }

    fn write_only(&self) -> Vec<&TargetAddress> {
        self.targets
            .iter()
            .filter(|t| t.state == TenantTargetState::Unknown)
            .map(|t| &t.address)
            .collect()
    }

    /// Whether every write-only target confirmed the new token in this rotation.
    fn write_only_confirmed(&self) -> bool {
        let wo = self.write_only();
        !wo.is_empty()
            && self
                .record()
                .is_some_and(|r| r.notes.confirms(&write_only_digest(wo)))
    }

    fn confirmed(&self, t: &Classified) -> bool {
        match t.state {
            TenantTargetState::Current => true,
            TenantTargetState::Unknown => self.write_only_confirmed(),
            TenantTargetState::Stale
            | TenantTargetState::RestartOwed
            | TenantTargetState::Empty => false,
        }
    }

    /// Whether the new token may be in use anywhere: a readable target holds it, or a delivery
    /// to a target that cannot be read back was attempted.
    fn delivered_anywhere(&self) -> bool {
        self.targets
            .iter()
            .any(|t| t.state == TenantTargetState::Current)
            || self.record().is_some_and(|r| r.notes.sent)
    }

    fn finish_due(&self) -> Option<OffsetDateTime> {
        self.record()
            .and_then(|r| r.started)
            .map(|s| s + self.tenant.grace.to_time())
    }

    /// The open rotation as the plan and drift report it.
    fn report(&self, next: String) -> OpenTenantRotation {
        let (confirmed, unconfirmed): (Vec<&Classified>, Vec<&Classified>) =
            self.targets.iter().partition(|t| self.confirmed(t));
        OpenTenantRotation {
            environment: self.tenant.environment.clone(),
            started_by_tokensmith: self.record().is_some(),
            since: self.record().and_then(|r| r.started),
            finish_due: self.finish_due(),
            confirmed: confirmed.into_iter().map(|t| t.address.clone()).collect(),
            unconfirmed: unconfirmed.into_iter().map(|t| t.address.clone()).collect(),
            unverifiable: self.write_only().into_iter().cloned().collect(),
            status_endpoint: self.status.is_some(),
            next,
        }
    }
}

/// The open tenant rotation of `tenant`'s environment, if there is one (for `drift`).
pub(crate) fn open_rotation(
    tenant: &DesiredTenantToken,
    live: &LiveSnapshot,
    targets: &TargetSnapshot,
    now: OffsetDateTime,
) -> Option<OpenTenantRotation> {
    let live_env = live.environments.get(&tenant.environment)?;
    let active = live_env.tenant_token.as_deref().unwrap_or_default();
    let view = TenantView::new(tenant, live_env, active, targets, now);
    view.open().then(|| view.report(describe_next(&view)))
}

fn describe_next(view: &TenantView<'_>) -> String {
    let unconfirmed = view.targets.iter().filter(|t| !view.confirmed(t)).count();
    match (view.record(), view.finish_due()) {
        (None, _) => match view.tenant.on_foreign_rotation {
            None => "started outside tokensmith; set `on_foreign_rotation: adopt` or `cancel` to resolve it".to_owned(),
            Some(ForeignRotation::Adopt) => "started outside tokensmith; apply adopts it".to_owned(),
            Some(ForeignRotation::Cancel) => "started outside tokensmith; apply cancels it".to_owned(),
        },
        (Some(_), _) if unconfirmed > 0 => format!(
            "apply delivers the new tenant token to {unconfirmed} target(s) that have not confirmed it"
        ),
        (Some(_), Some(due)) if due > view.now => {
            format!("finish after the grace, at {}", rfc3339(due))
        }
        (Some(_), _) => "apply finishes it".to_owned(),
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
    let home = Home::Environment(env.clone());
    let Some(active) = &live_env.tenant_token else {
        draft.warn(
            "tenant_token_unreadable",
            format!("the tenant token of environment `{env}` could not be read (connectioninfo needs `InstallerDownload`); its targets are not checked"),
        );
        return Ok(());
    };
    let view = TenantView::new(tenant, live_env, active, targets, now);
    let now = view.now;

    // A target owed a restart holds the active token too: when it was written counts.
    let last_rotation = view
        .targets
        .iter()
        .filter(|t| {
            matches!(
                t.state,
                TenantTargetState::Current | TenantTargetState::RestartOwed
            )
        })
        .filter_map(|t| t.since)
        .min();
    let rotation_due = match (tenant.rotate_every, last_rotation) {
        (Some(every), Some(last)) => Some(last + every.to_time()),
        _ => None,
    };
    let steps_before = draft.steps.len();
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
    // ActiveGates first; every OneAgent delivery waits for every ActiveGate delivery.
    let deliver_all = |draft: &mut Draft,
                       wanted: &dyn Fn(&Classified) -> Option<Reason>,
                       after: Vec<StepId>|
     -> Vec<StepId> {
        let mut ag_steps = Vec::new();
        let mut all = Vec::new();
        for activegates in [true, false] {
            let deps = if activegates || ag_steps.is_empty() {
                after.clone()
            } else {
                ag_steps.clone()
            };
            for t in view.targets.iter().filter(|t| t.activegate == activegates) {
                let Some(reason) = wanted(t) else { continue };
                let id = draft.push(mk(
                    format!("{prefix}/deliver/{}", t.address),
                    reason,
                    Action::Deliver {
                        token: TokenSource::TenantToken,
                        target: t.target.clone(),
                        address: t.address.clone(),
                    },
                    deps.clone(),
                ));
                if activegates {
                    ag_steps.push(id.clone());
                }
                all.push(id);
            }
        }
        all
    };
    let finish = |draft: &mut Draft, reason: Reason, deps: Vec<StepId>| {
        let mut step = mk(
            format!("{prefix}/finish"),
            reason,
            Action::TenantFinish,
            deps,
        );
        step.note = Some(
            "the old tenant token stops working; tokensmith's record of the rotation is deleted"
                .to_owned(),
        );
        draft.push(step);
    };
    let cancel = |draft: &mut Draft, reason: Reason| {
        let mut step = mk(
            format!("{prefix}/cancel"),
            reason,
            Action::TenantCancel,
            Vec::new(),
        );
        step.note =
            Some("the new tenant token is discarded and the old one stays valid".to_owned());
        draft.push(step);
    };
    let refresh = |t: &Classified| match t.state {
        TenantTargetState::Stale => Some(Reason::TargetHoldsStaleToken),
        TenantTargetState::RestartOwed => Some(Reason::TenantRestartOwed),
        TenantTargetState::Empty => Some(Reason::TargetMissing),
        _ => None,
    };

    let mut due = false;
    if view.open() {
        match view.record() {
            Some(_) => {
                let unwanted = tenant.rotate_every.is_none() && !view.delivered_anywhere();
                if unwanted {
                    cancel(draft, Reason::TenantRotationUnwanted);
                    draft.tenant_rotations.push(view.report(
                        "the spec no longer rotates the tenant token and the new one reached no target; apply cancels it".to_owned(),
                    ));
                } else {
                    let delivers = deliver_all(
                        draft,
                        &|t| (!view.confirmed(t)).then_some(Reason::TenantRotationInProgress),
                        Vec::new(),
                    );
                    if view.finish_due().is_none_or(|d| d <= now) {
                        finish(draft, Reason::GraceElapsed, delivers);
                    }
                    draft
                        .tenant_rotations
                        .push(view.report(describe_next(&view)));
                }
            }
            None => {
                match tenant.on_foreign_rotation {
                    None => {
                        draft.warn(
                            "foreign_tenant_rotation",
                            format!("a tenant token rotation was started outside tokensmith in `{env}`; tokensmith does not touch it: set `tenant_token.{env}.on_foreign_rotation` to `adopt` (deliver the active token, finish after the grace) or `cancel`"),
                        );
                    }
                    Some(ForeignRotation::Adopt) => {
                        let start = draft.push(mk(
                            format!("{prefix}/start"),
                            Reason::ForeignTenantRotation,
                            Action::TenantStart,
                            Vec::new(),
                        ));
                        deliver_all(
                            draft,
                            &|t| {
                                (t.state != TenantTargetState::Current)
                                    .then_some(Reason::ForeignTenantRotation)
                            },
                            vec![start],
                        );
                    }
                    Some(ForeignRotation::Cancel) => cancel(draft, Reason::ForeignTenantRotation),
                }
                draft
                    .tenant_rotations
                    .push(view.report(describe_next(&view)));
            }
        }
    } else {
        // Records Dynatrace says belong to no open rotation: a start that never ran, or a finish
        // whose record was not deleted yet.
        let mut stale = Vec::new();
        for r in &view.records {
            stale.push(
                draft.push(Step {
                    id: StepId(format!(
                        "{env}/{}/{}/delete/{}",
                        TokenKind::ApiToken,
                        crate::model::SystemToken::TenantRotation.key(),
                        r.id
                    )),
                    depends_on: Vec::new(),
                    home: home.clone(),
                    kind: TokenKind::ApiToken,
                    key: None,
                    reason: Reason::TenantRotationClosed,
                    action: Action::Delete {
                        token: r.id.clone(),
                        name: r.notes.name(),
                    },
                    note: Some(
                        "tokensmith's record of a tenant rotation Dynatrace reports as closed"
                            .to_owned(),
                    ),
                }),
            );
        }
        due = rotation_due.is_some_and(|d| d <= now);
        // Without a status endpoint and without a record, targets holding another tenant token
        // than the active one are the only hint of a rotation started outside tokensmith (or
        // one finished outside it). `adopt` records it (start answers "already in progress", or
        // starts anew if it was finished) and delivers; `cancel` cancels ("no rotation" counts
        // as done) and then delivers the active token to those targets.
        let suspected_foreign = view.status.is_none()
            && view.records.is_empty()
            && view
                .targets
                .iter()
                .any(|t| t.state == TenantTargetState::Stale);
        if suspected_foreign {
            draft.warn(
                "foreign_tenant_rotation",
                format!("targets of the tenant token of `{env}` hold another tenant token than the active one: a rotation may have been started outside tokensmith, and this Dynatrace has no rotation status endpoint to tell; `tenant_token.{env}.on_foreign_rotation` says what to do (`adopt` or `cancel`; unset: the active token is delivered)"),
            );
        }
        if suspected_foreign && tenant.on_foreign_rotation.is_some() {
            let first = match tenant.on_foreign_rotation {
                Some(ForeignRotation::Cancel) => {
                    cancel(draft, Reason::ForeignTenantRotation);
                    StepId(format!("{prefix}/cancel"))
                }
                _ => {
                    let mut start = mk(
                        format!("{prefix}/start"),
                        Reason::ForeignTenantRotation,
                        Action::TenantStart,
                        stale.clone(),
                    );
                    start.note = Some(
                        "takes over the rotation started outside tokensmith (`already in progress`) and records it".to_owned(),
                    );
                    draft.push(start)
                }
            };
            deliver_all(draft, &refresh, vec![first]);
        } else if due {
            let mut start = mk(
                format!("{prefix}/start"),
                Reason::RotationDue,
                Action::TenantStart,
                stale,
            );
            start.note = Some(format!(
                "both tenant tokens stay valid until finish, after every target confirmed the new one and the grace ({}) passed",
                tenant.grace
            ));
            let start = draft.push(start);
            let delivers = deliver_all(draft, &|_| Some(Reason::RotationDue), vec![start.clone()]);
            if tenant.grace.as_secs() <= 0 {
                let deps = if delivers.is_empty() {
                    vec![start]
                } else {
                    delivers
                };
                finish(draft, Reason::RotationDue, deps);
            }
        } else {
            deliver_all(draft, &refresh, Vec::new());
        }
    }
    // The schedule counts from the earliest target that records when it was written. Without
    // one it is unknown, unless this plan delivers to a target that will record it (a first
    // run writing empty targets): its apply starts the schedule, so there is nothing to warn of.
    let starts_schedule = draft.steps[steps_before..].iter().any(|s| match &s.action {
        Action::Deliver {
            token: TokenSource::TenantToken,
            address,
            ..
        } => view
            .targets
            .iter()
            .any(|t| &t.address == address && t.state != TenantTargetState::Unknown),
        _ => false,
    });
    if tenant.rotate_every.is_some()
        && last_rotation.is_none()
        && !view.targets.is_empty()
        && !starts_schedule
    {
        draft.warn(
            "tenant_schedule_unknown",
            format!("no target of the tenant token of `{env}` records when it was written; its rotation schedule is unknown and it is not rotated on schedule"),
        );
    }

    // Changed by this plan: it starts, delivers, finishes or cancels a rotation (not merely
    // waiting for the grace of one that is open).
    let acts = draft.steps[steps_before..]
        .iter()
        .any(|s| s.kind == TokenKind::TenantToken && !matches!(s.action, Action::Deliver { .. }));
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
        changed_by_plan: due || acts,
    });
    Ok(())
}

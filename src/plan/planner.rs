//! The planner: desired state + live snapshot + target holders + clock → [`Plan`].
//!
//! Pure and deterministic: no I/O, no secrets, the same inputs give a byte-identical plan.
//! Decisions per desired token (see `analysis` for how the facts are gathered):
//!
//! - **No current generation** → create one (`missing`, `deleted_outside_git`, or, shown as a
//!   replacement, `disabled_outside_git` / `expired` / `secret_unavailable`). A disabled current
//!   token is not re-enabled: whoever disabled it outside git may have had a reason (a leak), so a
//!   fresh generation is created and delivered instead, and the disabled one retires normally.
//!   With `adopt`, an unmanaged API token is renamed to carry the marker instead (only API
//!   tokens can be renamed).
//! - **Current generation differs** → API tokens: update name and scopes in place. Everything
//!   the API cannot update (expiry, ActiveGate tokens entirely, platform token scopes and names,
//!   kind-specific details) → a new generation, like a rotation.
//! - **Rotation due** (`rotate_before` ahead of expiry, or `rotate_every` after creation) →
//!   create the successor, deliver it to every target (each deliver depends on the create).
//! - **Targets**: a readable target holding another token or nothing gets the current value,
//!   copied from a target that holds it (Dynatrace shows a secret only once).
//! - **Retiring**, decided from live state alone, measured from the successor's `created`
//!   timestamp (the applier delivers in the same run right after creating; Dynatrace records
//!   no disable time and targets record no delivery time):
//!   an enabled predecessor is revoked when no readable target holds it, no target is
//!   unreadable, the successor is not being delivered by this plan, `successor.created + grace`
//!   has passed, and — with `verify_usage` or write-only targets — the successor was used after
//!   its creation. Revoking is disabling (`revoke: disable`) or deleting (`revoke: delete`, and
//!   always for ActiveGate tokens, which cannot be disabled). A disabled or expired predecessor
//!   is deleted at `successor.created + grace + delete_after` (or `+ grace` when revoking
//!   deletes). When grace is zero, the revoke is planned in the same run and depends on every
//!   deliver of the successor.
//! - A generation newer than the current one that no readable target holds and nobody used was
//!   never delivered (an interrupted apply); its value is lost, so it is deleted.
//! - The management token (`LiveEnvironment::caller`) is never revoked, disabled, deleted or
//!   narrowed: such a plan is refused with [`PlanError::ManagementToken`].

use std::collections::{BTreeMap, BTreeSet};

use time::{Duration, OffsetDateTime};

use super::analysis::{
    analyze, home_label, live_tokens, next_rotation, now_for, LiveIndex, TargetState, TokenFacts,
};
use super::order::order_steps;
use super::prune::plan_prune;
use super::tenant::plan_tenant;
use super::types::*;
use crate::model::{
    Desired, DesiredToken, Generation, Home, LiveSnapshot, LiveToken, Revoke, TargetSnapshot,
    TokenDetails, TokenId, TokenKind,
};

/// The management token warns this long before it expires.
pub const CALLER_EXPIRY_WARNING: Duration = Duration::days(14);

/// Platform tokens per owner and account.
pub const PLATFORM_TOKEN_LIMIT: usize = 10;

/// A plan being assembled.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub steps: Vec<Step>,
    pub forecast: Vec<ForecastEntry>,
    pub pending: Vec<Pending>,
    pub warnings: Vec<Warning>,
    pub checks: Vec<Check>,
    /// Platform token creates, checked against the per-owner limit at the end.
    platform_creates: Vec<PlatformCreate>,
    /// Every step id pushed, to catch duplicates.
    ids: std::collections::HashSet<StepId>,
}

/// A planned platform token create, with what to restore if the limit blocks it.
#[derive(Debug)]
struct PlatformCreate {
    account: String,
    owner: Option<String>,
    key: crate::model::TokenKey,
    step: StepId,
    /// The generation it replaces, whose pending revoke goes away with it.
    replaces: Option<TokenId>,
    /// The forecast entry of the current generation, if there is one.
    fallback: Option<ForecastEntry>,
}

impl Draft {
    pub fn push(&mut self, step: Step) -> StepId {
        let id = step.id.clone();
        let fresh = self.ids.insert(id.clone());
        debug_assert!(fresh, "duplicate step id {id}");
        self.steps.push(step);
        id
    }

    pub fn warn(&mut self, code: &str, message: String) {
        self.warnings.push(Warning {
            code: code.to_owned(),
            message,
        });
    }
}

/// Compute the plan. See the module docs for the decisions it makes.
pub fn plan(
    desired: &Desired,
    live: &LiveSnapshot,
    targets: &TargetSnapshot,
    now: OffsetDateTime,
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    for env in desired.environments.keys() {
        if !live.environments.contains_key(env) {
            return Err(PlanError::MissingEnvironment(env.clone()));
        }
    }
    let mut draft = Draft::default();

    let index = LiveIndex::new(live);
    let mut tokens: Vec<&DesiredToken> = desired.tokens.iter().collect();
    tokens.sort_by(|a, b| (&a.home, &a.key, a.kind).cmp(&(&b.home, &b.key, b.kind)));
    for d in tokens {
        if let Home::Account(a) = &d.home {
            if !live.accounts.contains_key(a) {
                return Err(PlanError::MissingAccount(a.clone()));
            }
        }
        let facts = analyze(d, live, &index, targets, now);
        plan_token(&mut draft, &facts, live);
    }
    enforce_platform_limit(&mut draft, live);

    let mut tenants: Vec<_> = desired.tenant_tokens.iter().collect();
    tenants.sort_by(|a, b| a.environment.cmp(&b.environment));
    for t in tenants {
        plan_tenant(&mut draft, t, live, targets, now)?;
    }
    plan_prune(&mut draft, desired, live, targets, now);

    protect_callers(&draft, live)?;
    warn_expiring_callers(&mut draft, live, now);
    if let Some(within) = opts.fail_on_expiry_within {
        for f in &draft.forecast {
            let home_now = now_for(live, &f.home, now);
            if let (Some(_), Some(expires)) = (&f.token, f.expires) {
                if expires <= home_now + within.to_time() {
                    let name = f
                        .key
                        .as_ref()
                        .map_or("tenant token".into(), |k| k.to_string());
                    draft.checks.push(Check {
                        code: Reason::ExpiryWithinThreshold,
                        blocking: false,
                        home: f.home.clone(),
                        key: f.key.clone(),
                        message: format!(
                            "{} `{name}` in {} expires at {} (within {within})",
                            f.kind,
                            home_label(&f.home),
                            rfc3339(expires)
                        ),
                    });
                }
            }
        }
    }

    let steps = order_steps(draft.steps);
    let summary = Summary::of(&steps);
    Ok(Plan {
        format_version: FORMAT_VERSION,
        generated_at: now,
        inputs: Inputs::compute(
            &opts.spec_hash,
            live,
            targets,
            opts.spec_commit.clone(),
            opts.dirty,
        ),
        steps,
        forecast: draft.forecast,
        pending: draft.pending,
        warnings: draft.warnings,
        checks: draft.checks,
        summary,
    })
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn prefix(d: &DesiredToken) -> String {
    format!("{}/{}/{}", home_label(&d.home), d.kind, d.key)
}

fn step(d: &DesiredToken, id: String, reason: Reason, action: Action) -> Step {
    Step {
        id: StepId(id),
        depends_on: Vec::new(),
        home: d.home.clone(),
        kind: d.kind,
        key: Some(d.key.clone()),
        reason,
        action,
        note: None,
    }
}

fn plan_token(draft: &mut Draft, facts: &TokenFacts<'_>, live: &LiveSnapshot) {
    let first = draft.steps.len();
    plan_token_steps(draft, facts, live);
    // Whatever this plan revokes or deletes for the key waits for every delivery of the key in
    // the same plan (generations that never reached a target are the exception: nothing holds
    // them).
    let delivers: Vec<StepId> = draft.steps[first..]
        .iter()
        .filter(|s| matches!(s.action, Action::Deliver { .. }))
        .map(|s| s.id.clone())
        .collect();
    for s in &mut draft.steps[first..] {
        if s.action.is_destructive() && s.reason != Reason::NeverDelivered {
            for d in &delivers {
                if !s.depends_on.contains(d) {
                    s.depends_on.push(d.clone());
                }
            }
        }
    }
}

fn plan_token_steps(draft: &mut Draft, facts: &TokenFacts<'_>, live: &LiveSnapshot) {
    let d = facts.desired;
    match facts.current {
        None => {
            if let Some(token) = facts.adoptable {
                if d.kind == TokenKind::ApiToken {
                    adopt(draft, facts, token);
                    return;
                }
                draft.warn(
                    "cannot_adopt",
                    format!(
                        "{} `{}` in {}: {} tokens cannot be renamed, so {} cannot be adopted; a new token is created instead",
                        d.kind, d.key, home_label(&d.home), d.kind, token.id
                    ),
                );
            } else if let (Some(id), true) = (&d.adopt, facts.generations.is_empty()) {
                draft.warn(
                    "adopt_not_found",
                    format!(
                        "{} `{}` in {}: token {id} to adopt is not live (or already carries another marker); a new token is created instead",
                        d.kind, d.key, home_label(&d.home)
                    ),
                );
            }
            let reason = facts.absent_reason.unwrap_or(Reason::Missing);
            let replaces = match reason {
                Reason::DisabledOutsideGit | Reason::Expired | Reason::SecretUnavailable => {
                    facts.generations.last().map(|(_, t)| t.id.clone())
                }
                _ => None,
            };
            let note = match reason {
                Reason::DeletedOutsideGit => Some("the token the targets record was deleted outside git; a new generation replaces it".to_owned()),
                Reason::DisabledOutsideGit => Some("the current generation was disabled outside git; a new generation replaces it instead of re-enabling it".to_owned()),
                Reason::Expired => Some("the current generation expired; a new generation replaces it".to_owned()),
                Reason::SecretUnavailable => Some("no target holds the newest generation and Dynatrace shows a value only once; a new generation replaces it".to_owned()),
                _ => None,
            };
            let (create, _) = create_generation(draft, facts, reason, replaces, note);
            retire_never_delivered(draft, facts);
            forecast_new(draft, facts, Some(create));
        }
        Some(current) => {
            let mut created = None;
            let mut delivering_current = false;
            if let Some(reason) = facts.replace.or(facts.rotate) {
                let (create, delivers) =
                    create_generation(draft, facts, reason, Some(current.id.clone()), None);
                revoke_same_run(draft, facts, current, &delivers);
                created = Some(create);
            } else {
                update_in_place(draft, facts, current);
                delivering_current = deliver_current(draft, facts, current);
            }
            retire_never_delivered(draft, facts);
            retire_superseded(draft, facts, current, delivering_current, live);
            if created.is_some() {
                forecast_new(draft, facts, created);
            } else {
                draft.forecast.push(ForecastEntry {
                    home: d.home.clone(),
                    kind: d.kind,
                    key: Some(d.key.clone()),
                    token: Some(current.id.clone()),
                    expires: current.expires,
                    rotation_due: next_rotation(d.policy.rotation, current),
                    changed_by_plan: false,
                });
            }
        }
    }
}

fn forecast_new(draft: &mut Draft, facts: &TokenFacts<'_>, _create: Option<StepId>) {
    let d = facts.desired;
    let expires = d.policy.expires_in.map(|e| facts.now + e.to_time());
    let rotation_due = match d.policy.rotation {
        crate::model::Rotation::BeforeExpiry(b) => expires.map(|e| e - b.to_time()),
        crate::model::Rotation::Every(e) => Some(facts.now + e.to_time()),
        crate::model::Rotation::Never => None,
    };
    draft.forecast.push(ForecastEntry {
        home: d.home.clone(),
        kind: d.kind,
        key: Some(d.key.clone()),
        token: None,
        expires,
        rotation_due,
        changed_by_plan: true,
    });
}

/// Create the next generation and deliver it to every target.
fn create_generation(
    draft: &mut Draft,
    facts: &TokenFacts<'_>,
    reason: Reason,
    replaces: Option<TokenId>,
    note: Option<String>,
) -> (StepId, Vec<StepId>) {
    let d = facts.desired;
    let generation = Generation(facts.max_generation() + 1);
    let p = prefix(d);
    let mut create = step(
        d,
        format!("{p}/create#{generation}"),
        reason,
        Action::Create {
            name: facts.wanted_name(generation),
            generation,
            scopes: d.scopes.clone(),
            expires_in: d.policy.expires_in,
            details: d.details.clone(),
            replaces,
            targets: facts.targets.iter().map(|t| t.address.clone()).collect(),
        },
    );
    create.note = note;
    let create_id = draft.push(create);
    if let (Home::Account(account), TokenDetails::Platform { owner, .. }) = (&d.home, &d.details) {
        let owner = owner.clone().or_else(|| {
            facts
                .generations
                .iter()
                .rev()
                .find_map(|(_, t)| t.owner.clone())
        });
        let replaces = match &draft.steps.last().map(|s| &s.action) {
            Some(Action::Create { replaces, .. }) => replaces.clone(),
            _ => None,
        };
        let fallback = facts.current.map(|c| ForecastEntry {
            home: d.home.clone(),
            kind: d.kind,
            key: Some(d.key.clone()),
            token: Some(c.id.clone()),
            expires: c.expires,
            rotation_due: next_rotation(d.policy.rotation, c),
            changed_by_plan: false,
        });
        draft.platform_creates.push(PlatformCreate {
            account: account.clone(),
            owner,
            key: d.key.clone(),
            step: create_id.clone(),
            replaces,
            fallback,
        });
    }
    let mut delivers = Vec::new();
    for t in &facts.targets {
        let mut s = step(
            d,
            format!("{p}/deliver#{generation}/{}", t.address),
            reason,
            Action::Deliver {
                token: TokenSource::Created {
                    step: create_id.clone(),
                },
                target: t.target.clone(),
                address: t.address.clone(),
            },
        );
        s.depends_on = vec![create_id.clone()];
        delivers.push(draft.push(s));
    }
    (create_id, delivers)
}

/// How a predecessor is revoked: ActiveGate tokens cannot be disabled.
fn revoke_action(d: &DesiredToken, token: &LiveToken) -> Action {
    let (id, name) = (token.id.clone(), token.name.clone());
    match (d.kind, d.policy.revoke) {
        (TokenKind::ActivegateToken, _) | (_, Revoke::Delete) => Action::Delete { token: id, name },
        (_, Revoke::Disable { .. }) => Action::Disable { token: id, name },
    }
}

fn revoke_step(d: &DesiredToken, token: &LiveToken, reason: Reason) -> Step {
    let action = revoke_action(d, token);
    step(
        d,
        format!("{}/{}/{}", prefix(d), action.verb(), token.id),
        reason,
        action,
    )
}

/// With zero grace and nothing to wait for, the predecessor is revoked in the same run, after
/// every delivery of its successor.
fn revoke_same_run(
    draft: &mut Draft,
    facts: &TokenFacts<'_>,
    current: &LiveToken,
    delivers: &[StepId],
) {
    let d = facts.desired;
    let must_wait = d.policy.grace.as_secs() > 0
        || d.policy.verify_usage
        || facts
            .targets
            .iter()
            .any(|t| matches!(t.state, TargetState::WriteOnly | TargetState::Unreadable));
    if must_wait {
        let not_before = Some(facts.now + d.policy.grace.to_time());
        draft.pending.push(Pending {
            home: d.home.clone(),
            kind: d.kind,
            key: d.key.clone(),
            token: current.id.clone(),
            action: revoke_action(d, current).verb().to_owned(),
            not_before,
            waiting_for: format!(
                "its successor reaching every target, then grace {}",
                d.policy.grace
            ),
        });
        return;
    }
    let mut s = revoke_step(d, current, Reason::GraceElapsed);
    s.depends_on = delivers.to_vec();
    draft.push(s);
}

fn update_in_place(draft: &mut Draft, facts: &TokenFacts<'_>, current: &LiveToken) {
    let d = facts.desired;
    if facts.name_change.is_none() && facts.scope_change.is_none() {
        return;
    }
    let generation = generation_of(facts, current);
    let reason = if facts.scope_change.is_some() {
        Reason::ScopesChanged
    } else {
        Reason::NameChanged
    };
    draft.push(step(
        d,
        format!("{}/update#{generation}", prefix(d)),
        reason,
        Action::Update {
            token: current.id.clone(),
            name: facts.name_change.clone(),
            scopes: facts.scope_change.clone(),
        },
    ));
}

fn generation_of(facts: &TokenFacts<'_>, token: &LiveToken) -> Generation {
    facts
        .generations
        .iter()
        .find(|(_, t)| t.id == token.id)
        .map(|(m, _)| m.generation)
        .unwrap_or(Generation::FIRST)
}

/// Deliver the current generation to readable targets that hold something else. Returns whether
/// any delivery was planned.
fn deliver_current(draft: &mut Draft, facts: &TokenFacts<'_>, current: &LiveToken) -> bool {
    deliver_existing(draft, facts, current, generation_of(facts, current), None)
}

fn deliver_existing(
    draft: &mut Draft,
    facts: &TokenFacts<'_>,
    token: &LiveToken,
    generation: Generation,
    after: Option<&StepId>,
) -> bool {
    let d = facts.desired;
    let mut any = false;
    let source = facts.copy_source(&token.id).cloned();
    for t in &facts.targets {
        let reason = match t.state {
            TargetState::Holds(id) if id == &token.id => continue,
            TargetState::Holds(_) => Reason::TargetHoldsStaleToken,
            TargetState::Empty => Reason::TargetMissing,
            TargetState::WriteOnly | TargetState::Unreadable => continue,
        };
        let Some(copy_from) = source.clone() else {
            draft.warn(
                "value_unavailable",
                format!(
                    "{} `{}` in {}: target {} needs token {} but no target holds its value; rotate the token to deliver a new one",
                    d.kind, d.key, home_label(&d.home), t.address, token.id
                ),
            );
            continue;
        };
        let mut s = step(
            d,
            format!("{}/deliver#{generation}/{}", prefix(d), t.address),
            reason,
            Action::Deliver {
                token: TokenSource::Existing {
                    id: token.id.clone(),
                    copy_from,
                },
                target: t.target.clone(),
                address: t.address.clone(),
            },
        );
        s.depends_on = after.into_iter().cloned().collect();
        draft.push(s);
        any = true;
    }
    any
}

fn adopt(draft: &mut Draft, facts: &TokenFacts<'_>, token: &LiveToken) {
    let d = facts.desired;
    let generation = Generation::FIRST;
    let adopt_id = draft.push(step(
        d,
        format!("{}/adopt#{generation}", prefix(d)),
        Reason::Adopt,
        Action::Adopt {
            token: token.id.clone(),
            name: Change {
                from: token.name.clone(),
                to: facts.wanted_name(generation),
            },
            generation,
        },
    ));
    if token.scopes != d.scopes {
        let mut s = step(
            d,
            format!("{}/update#{generation}", prefix(d)),
            Reason::ScopesChanged,
            Action::Update {
                token: token.id.clone(),
                name: None,
                scopes: Some(Change {
                    from: token.scopes.clone(),
                    to: d.scopes.clone(),
                }),
            },
        );
        s.depends_on = vec![adopt_id.clone()];
        draft.push(s);
    }
    deliver_existing(draft, facts, token, generation, Some(&adopt_id));
    draft.forecast.push(ForecastEntry {
        home: d.home.clone(),
        kind: d.kind,
        key: Some(d.key.clone()),
        token: Some(token.id.clone()),
        expires: token.expires,
        rotation_due: next_rotation(d.policy.rotation, token),
        changed_by_plan: true,
    });
}

/// Delete generations that never reached a target (their value is lost). A used one is left
/// alone: something holds it that tokensmith cannot see.
fn retire_never_delivered(draft: &mut Draft, facts: &TokenFacts<'_>) {
    let d = facts.desired;
    let unreadable = facts
        .targets
        .iter()
        .any(|t| t.state == TargetState::Unreadable);
    for token in &facts.never_delivered {
        if token.last_used.is_some() || unreadable {
            draft.warn(
                "undelivered_generation",
                format!(
                    "{} `{}` in {}: generation {} ({}) is held by no readable target but {}; left alone",
                    d.kind,
                    d.key,
                    home_label(&d.home),
                    generation_of(facts, token),
                    token.id,
                    if unreadable { "a target cannot be read" } else { "it is in use" }
                ),
            );
            continue;
        }
        let mut s = step(
            d,
            format!("{}/delete/{}", prefix(d), token.id),
            Reason::NeverDelivered,
            Action::Delete {
                token: token.id.clone(),
                name: token.name.clone(),
            },
        );
        s.note = Some(
            "created by an interrupted apply and never delivered; its value is lost".to_owned(),
        );
        draft.push(s);
    }
}

fn retire_superseded(
    draft: &mut Draft,
    facts: &TokenFacts<'_>,
    current: &LiveToken,
    delivering_current: bool,
    _live: &LiveSnapshot,
) {
    let d = facts.desired;
    let now = facts.now;
    let grace_end = current.created.unwrap_or(now) + d.policy.grace.to_time();
    for token in &facts.superseded {
        let usable = token.enabled && token.expires.is_none_or(|e| e > now);
        let mut waits: Vec<String> = Vec::new();
        let mut not_before = None;
        if let Some(t) = facts
            .targets
            .iter()
            .find(|t| matches!(t.state, TargetState::Holds(id) if id == &token.id))
        {
            waits.push(format!("target {} to stop holding it", t.address));
        }
        let (action, reason) = if usable {
            if now < grace_end {
                not_before = Some(grace_end);
                waits.push(format!(
                    "grace {} after its successor was created",
                    d.policy.grace
                ));
            }
            if delivering_current {
                waits.push("its successor to reach every target".to_owned());
            }
            if let Some(t) = facts
                .targets
                .iter()
                .find(|t| t.state == TargetState::Unreadable)
            {
                waits.push(format!("target {} to become readable", t.address));
            }
            let write_only = facts
                .targets
                .iter()
                .any(|t| t.state == TargetState::WriteOnly);
            let used = current
                .last_used
                .is_some_and(|u| current.created.is_none_or(|c| u > c));
            if (d.policy.verify_usage || write_only) && !used {
                waits.push(format!(
                    "its successor {} to be used (proof that consumers switched)",
                    current.id
                ));
            }
            (revoke_action(d, token), Reason::GraceElapsed)
        } else {
            let delete_at = match (d.kind, d.policy.revoke) {
                (TokenKind::ActivegateToken, _) | (_, Revoke::Delete) => grace_end,
                (_, Revoke::Disable { delete_after }) => grace_end + delete_after.to_time(),
            };
            let reason = if delete_at == grace_end {
                Reason::GraceElapsed
            } else {
                Reason::RetentionElapsed
            };
            if now < delete_at {
                not_before = Some(delete_at);
                waits.push(if reason == Reason::RetentionElapsed {
                    "retention after it was revoked".to_owned()
                } else {
                    format!("grace {} after its successor was created", d.policy.grace)
                });
            }
            (
                Action::Delete {
                    token: token.id.clone(),
                    name: token.name.clone(),
                },
                reason,
            )
        };
        if waits.is_empty() {
            draft.push(step(
                d,
                format!("{}/{}/{}", prefix(d), action.verb(), token.id),
                reason,
                action,
            ));
        } else {
            draft.pending.push(Pending {
                home: d.home.clone(),
                kind: d.kind,
                key: d.key.clone(),
                token: token.id.clone(),
                action: action.verb().to_owned(),
                not_before,
                waiting_for: waits.join("; "),
            });
        }
    }
}

/// Platform tokens: at most [`PLATFORM_TOKEN_LIMIT`] per owner and account, counting the
/// overlap of a rotation. Creates that would exceed it are removed with everything that depends
/// on them, and a blocking check names each token.
fn enforce_platform_limit(draft: &mut Draft, live: &LiveSnapshot) {
    let mut groups: BTreeMap<(String, Option<String>), Vec<PlatformCreate>> = BTreeMap::new();
    for c in std::mem::take(&mut draft.platform_creates) {
        groups
            .entry((c.account.clone(), c.owner.clone()))
            .or_default()
            .push(c);
    }
    let mut removed: BTreeSet<StepId> = BTreeSet::new();
    for ((account, owner), creates) in groups {
        let Some(owner) = owner else { continue };
        let home = Home::Account(account.clone());
        let owned: Vec<&TokenId> = live_tokens(live, &home, TokenKind::PlatformToken)
            .iter()
            .filter(|t| t.owner.as_deref() == Some(owner.as_str()))
            .map(|t| &t.id)
            .collect();
        let deleted = draft
            .steps
            .iter()
            .filter(|s| matches!(&s.action, Action::Delete { token, .. } if owned.contains(&token)))
            .count();
        let total = owned.len() - deleted + creates.len();
        if total <= PLATFORM_TOKEN_LIMIT {
            continue;
        }
        for c in creates {
            let key = c.key.clone();
            removed.insert(c.step.clone());
            draft.pending.retain(|p| {
                !(p.home == home && p.key == key && Some(&p.token) == c.replaces.as_ref())
            });
            let slot = draft
                .forecast
                .iter()
                .position(|f| f.home == home && f.key.as_ref() == Some(&key));
            match (slot, c.fallback) {
                (Some(i), Some(entry)) => draft.forecast[i] = entry,
                (Some(i), None) => {
                    draft.forecast.remove(i);
                }
                _ => {}
            }
            draft.checks.push(Check {
                code: Reason::PlatformTokenLimit,
                blocking: true,
                home: home.clone(),
                key: Some(key.clone()),
                message: format!(
                    "platform token `{key}` in account `{account}`: creating it would give owner {owner} {total} platform tokens; Dynatrace allows {PLATFORM_TOKEN_LIMIT} per owner. Delete unused platform tokens of this owner first"
                ),
            });
        }
    }
    if removed.is_empty() {
        return;
    }
    // Remove the creates and, transitively, every step that depends on them.
    loop {
        let before = removed.len();
        for s in &draft.steps {
            if s.depends_on.iter().any(|d| removed.contains(d)) {
                removed.insert(s.id.clone());
            }
        }
        if removed.len() == before {
            break;
        }
    }
    draft.steps.retain(|s| !removed.contains(&s.id));
}

/// Refuse plans that revoke, disable, delete or narrow a management token.
fn protect_callers(draft: &Draft, live: &LiveSnapshot) -> Result<(), PlanError> {
    for s in &draft.steps {
        let Home::Environment(env) = &s.home else {
            continue;
        };
        let Some(caller) = live.environments.get(env).and_then(|e| e.caller.as_ref()) else {
            continue;
        };
        let refused = match &s.action {
            Action::Disable { token, .. } if token == caller => Some("disable"),
            Action::Delete { token, .. } if token == caller => Some("delete"),
            Action::Update {
                token,
                scopes: Some(change),
                ..
            } if token == caller && !change.from.is_subset(&change.to) => {
                Some("narrow the scopes of")
            }
            _ => None,
        };
        if let Some(action) = refused {
            return Err(PlanError::ManagementToken {
                env: env.clone(),
                token: caller.clone(),
                action,
            });
        }
    }
    Ok(())
}

fn warn_expiring_callers(draft: &mut Draft, live: &LiveSnapshot, now: OffsetDateTime) {
    for (name, env) in &live.environments {
        let Some(caller) = &env.caller else { continue };
        let now = env.server_time.unwrap_or(now);
        let Some(expires) = env
            .api_tokens
            .iter()
            .find(|t| &t.id == caller)
            .and_then(|t| t.expires)
        else {
            continue;
        };
        if expires <= now + CALLER_EXPIRY_WARNING {
            draft.warn(
                "management_token_expiring",
                format!(
                    "the management token {caller} of environment `{name}` expires at {}; create a new one and update its `token_env` before then",
                    rfc3339(expires)
                ),
            );
        }
    }
}

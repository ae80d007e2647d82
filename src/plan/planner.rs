//! The planner: desired state + live snapshot + target holders + clock → [`Plan`].
//!
//! Pure and deterministic: no I/O, no secrets, the same inputs give a byte-identical plan.
//! Decisions per desired token (see `analysis` for how the facts are gathered):
//!
//! - **No current generation** → create one (`missing`, `deleted_outside_git`,
//!   `expired_and_purged` when the targets record a classic token's expiry over 7 days ago, or, shown as a
//!   replacement, `disabled_outside_git` / `expired` / `secret_unavailable`). A disabled current
//!   token is not re-enabled: whoever disabled it outside git may have had a reason (a leak), so a
//!   fresh generation is created and delivered instead, and the disabled one retires normally.
//!   With `adopt`, an unmanaged API token is renamed to carry the marker instead (only API
//!   tokens can be renamed).
//! - **Current generation differs** → API tokens: update name and scopes in place. Everything
//!   the API cannot update (expiry, ActiveGate tokens entirely, platform token scopes and names,
//!   kind-specific details) → a new generation, like a rotation.
//! - **Rotation due** (`rotate_before` ahead of expiry, or `rotate_every` after creation, or
//!   asked for with `--replace KEY[@ENV]`, [`PlanOptions::replace`]) → create the successor,
//!   deliver it to every target (each deliver depends on the create).
//! - **Targets**: a readable target holding another token or nothing gets the current value,
//!   copied from a target that holds it (Dynatrace shows a secret only once). When such a
//!   target held an older valid generation, that generation's switch time is recorded (see
//!   `retire`).
//! - **Retiring** old generations and deleting never-delivered ones: see `retire`.
//! - **Kind switches**: a managed classic API token whose key the spec now declares as a
//!   platform token retires after the platform token reached every target: see `migrate`.
//! - The management token (`LiveEnvironment::caller`) is never revoked, disabled, deleted or
//!   narrowed: such a plan is refused with [`PlanError::ManagementToken`]. When its name carries
//!   a desired token's marker (renamed outside tokensmith), it is not one of that token's
//!   generations: the plan warns, naming it and the key, and manages the key without it.
//!
//! This module makes the per-token decisions and calls the other passes (`retire`, `tenant`,
//! `prune`, `guards`); they all write into the `draft` module's [`Draft`] and none of them imports
//! anything from here. The forecast of every desired token comes from one place (`forecast_entry`),
//! with the rotation time computed by `analysis::next_rotation`, the same formula that decides
//! whether a rotation is due.

use time::OffsetDateTime;

use super::analysis::{
    analyze, home_label, lifetime_differs, live_tokens, next_rotation, now_for, rotation_due,
    LiveIndex, TargetState, TokenFacts,
};
use super::budget::warn_platform_budget;
use super::draft::{generation_of, prefix, rfc3339, step, Draft, PlatformCreate};
use super::guards::{enforce_platform_limit, protect_callers, warn_expiring_callers};
use super::migrate::plan_migrations;
use super::order::order_steps;
use super::prune::plan_prune;
use super::retire::{
    mark_switched, retire_against_new, retire_never_delivered, retire_superseded, revoke_same_run,
};
use super::tenant::plan_tenant;
use super::types::*;
use crate::model::token::CLASSIC_PURGE_AFTER_EXPIRY;
use crate::model::{
    Desired, DesiredToken, Generation, Home, LiveSnapshot, LiveToken, Marker, TargetSnapshot,
    TokenDetails, TokenId, TokenKind,
};

/// Whether every `--replace` request names a token of `desired`: checked by [`plan`], and by
/// the commands before they lock or read anything.
pub fn check_replace(desired: &Desired, replace: &[ReplaceRequest]) -> Result<(), PlanError> {
    match replace.iter().find(|request| {
        !desired
            .tokens
            .iter()
            .any(|t| request.names(&t.key, &t.home))
    }) {
        Some(unknown) => Err(PlanError::UnknownReplace(unknown.to_string())),
        None => Ok(()),
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
    check_replace(desired, &opts.replace)?;
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
        let mut facts = analyze(d, live, &index, targets, now);
        check_adopt(&facts, live)?;
        if facts.current.is_some() && opts.replace.iter().any(|r| r.names(&d.key, &d.home)) {
            // Rotate now: a successor through the usual create, deliver, grace and revoke.
            facts.rotate = Some(Reason::ReplaceRequested);
        }
        plan_token(&mut draft, &facts);
    }
    enforce_platform_limit(&mut draft, live);
    plan_migrations(&mut draft, desired, live, targets, now);
    warn_platform_budget(&mut draft, desired, live);

    let mut tenants: Vec<_> = desired.tenant_tokens.iter().collect();
    tenants.sort_by(|a, b| a.environment.cmp(&b.environment));
    for t in tenants {
        plan_tenant(&mut draft, t, live, targets, now)?;
    }
    plan_prune(&mut draft, desired, live, targets, now);

    protect_callers(&draft, live)?;
    warn_expiring_callers(&mut draft, live, now);
    if let Some(within) = opts.fail_on_expiry_within {
        for (home, key, id, expires) in std::mem::take(&mut draft.expired) {
            draft.checks.push(Check {
                code: Reason::ExpiryWithinThreshold,
                blocking: false,
                home: home.clone(),
                key: Some(key.clone()),
                message: format!(
                    "`{key}` in {}: the current generation {id} expired at {}",
                    home_label(&home),
                    rfc3339(expires)
                ),
            });
        }
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
        inputs: Inputs {
            replace: opts.replace.iter().map(ToString::to_string).collect(),
            ..Inputs::compute(
                &opts.spec_hash,
                live,
                targets,
                opts.spec_commit.clone(),
                opts.dirty,
            )
        },
        steps,
        forecast: draft.forecast,
        pending: draft.pending,
        warnings: draft.warnings,
        checks: draft.checks,
        summary,
        tenant_rotations: draft.tenant_rotations,
    })
}

fn plan_token(draft: &mut Draft, facts: &TokenFacts<'_>) {
    if let Some((marker, token)) = &facts.management_token {
        let d = facts.desired;
        draft.warn(
            "management_token_carries_marker",
            format!(
                "the management token {} of {} is named with the marker {marker} of {} `{}` (renamed outside tokensmith); it is left alone (never disabled, deleted, narrowed or rotated) and `{}` is managed with generations of its own; rename the management token to drop the marker",
                token.id,
                home_label(&d.home),
                d.kind,
                d.key,
                d.key
            ),
        );
    }
    let first = draft.steps.len();
    plan_token_steps(draft, facts);
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

fn plan_token_steps(draft: &mut Draft, facts: &TokenFacts<'_>) {
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
            }
            let reason = facts.absent_reason.unwrap_or(Reason::Missing);
            if let (Reason::Expired, Some((_, newest))) = (reason, facts.generations.last()) {
                if let Some(expires) = newest.expires {
                    draft
                        .expired
                        .push((d.home.clone(), d.key.clone(), newest.id.clone(), expires));
                }
            }
            let replaces = match reason {
                Reason::DisabledOutsideGit | Reason::Expired | Reason::SecretUnavailable => {
                    facts.generations.last().map(|(_, t)| t.id.clone())
                }
                _ => None,
            };
            let note = match reason {
                Reason::DeletedOutsideGit => Some("the token the targets record was deleted outside git; a new generation replaces it".to_owned()),
                Reason::ExpiredAndPurged => Some(format!("the token the targets record expired and Dynatrace deleted it {} days later; a new generation replaces it", CLASSIC_PURGE_AFTER_EXPIRY.whole_days())),
                Reason::DisabledOutsideGit => Some("the current generation was disabled outside git; a new generation replaces it instead of re-enabling it".to_owned()),
                Reason::Expired => Some("the current generation expired; a new generation replaces it".to_owned()),
                Reason::SecretUnavailable => Some("no target holds the newest generation and Dynatrace shows a value only once; a new generation replaces it".to_owned()),
                _ => None,
            };
            let (create, delivers) = create_generation(draft, facts, reason, replaces, note);
            retire_never_delivered(draft, facts, Some(&successor(create, delivers)));
            retire_against_new(draft, facts);
            draft.forecast.push(forecast_entry(facts, None, true));
        }
        Some(current) => {
            // A target still holding an older, valid generation is switched late (after an
            // interrupted apply). API tokens record when (see `retire::mark_switched`); other
            // kinds cannot be renamed, so they get a fresh generation whose creation starts the
            // grace of every older one.
            let late_switch = d.kind != TokenKind::ApiToken
                && d.policy.grace.as_secs() > 0
                && facts.superseded.iter().any(|p| {
                    p.enabled
                        && p.expires.is_none_or(|e| e > facts.now)
                        && facts.held_by_readable(&p.id)
                });
            let replacing = facts
                .replace
                .or(facts.rotate)
                .or(late_switch.then_some(Reason::TargetHoldsStaleToken));
            // Whether this plan delivers to every target that holds another token (the new
            // generation goes to every target).
            let delivering;
            if let Some(reason) = replacing {
                let (create, delivers) =
                    create_generation(draft, facts, reason, Some(current.id.clone()), None);
                delivering = !delivers.is_empty();
                let successor = successor(create, delivers);
                revoke_same_run(draft, facts, current, &successor);
                retire_never_delivered(draft, facts, Some(&successor));
            } else {
                update_in_place(draft, facts, current);
                let first = draft.steps.len();
                delivering = deliver_current(draft, facts, current);
                let delivers: Vec<StepId> =
                    draft.steps[first..].iter().map(|s| s.id.clone()).collect();
                mark_switched(draft, facts, &delivers);
                retire_never_delivered(draft, facts, None);
            }
            retire_superseded(draft, facts, current, delivering);
            if replacing.is_some() {
                draft.forecast.push(forecast_entry(facts, None, true));
            } else {
                draft
                    .forecast
                    .push(forecast_entry(facts, Some(current), false));
            }
        }
    }
}

/// The forecast entry of a desired token: its live generation `token`, or (`None`) the
/// generation this plan creates now, which expires `expires_in` from now.
fn forecast_entry(
    facts: &TokenFacts<'_>,
    token: Option<&LiveToken>,
    changed_by_plan: bool,
) -> ForecastEntry {
    let d = facts.desired;
    let (id, created, expires) = match token {
        Some(t) => (Some(t.id.clone()), t.created, t.expires),
        None => (
            None,
            Some(facts.now),
            d.policy.expires_in.map(|e| facts.now + e.to_time()),
        ),
    };
    ForecastEntry {
        home: d.home.clone(),
        kind: d.kind,
        key: Some(d.key.clone()),
        token: id,
        expires,
        rotation_due: next_rotation(d.policy.rotation, created, expires),
        changed_by_plan,
    }
}

/// The steps a predecessor's revoke waits for: its successor's create, then every delivery.
fn successor(create: StepId, delivers: Vec<StepId>) -> Vec<StepId> {
    std::iter::once(create).chain(delivers).collect()
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
        // Count by the owner as Dynatrace reports it (the newest generation's), falling back to
        // the spec's owner when no generation is live.
        let owner = facts
            .generations
            .iter()
            .rev()
            .find_map(|(_, t)| t.owner.clone())
            .or_else(|| owner.clone());
        let replaces = match &draft.steps.last().map(|s| &s.action) {
            Some(Action::Create { replaces, .. }) => replaces.clone(),
            _ => None,
        };
        let fallback = facts.current.map(|c| forecast_entry(facts, Some(c), false));
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

/// A wrong `adopt:` id is an error, not a duplicate: when no generation of the key is live,
/// the id must name a live token of the same kind in the same home that carries no other key's
/// marker.
///
/// The management token cannot be adopted: adopting renames it with the key's marker, and a
/// management token carrying a marker is set apart (never a generation, see `LiveIndex`), so the
/// next plan would find no generation and the same `adopt:` again. Refused while an adoption
/// would happen (no generation live); once the key has generations `adopt` is ignored anyway.
fn check_adopt(facts: &TokenFacts<'_>, live: &LiveSnapshot) -> Result<(), PlanError> {
    let d = facts.desired;
    let Some(id) = &d.adopt else { return Ok(()) };
    if !facts.generations.is_empty() {
        return Ok(());
    }
    if let Home::Environment(env) = &d.home {
        if live.environments.get(env).and_then(|e| e.caller.as_ref()) == Some(id) {
            return Err(PlanError::AdoptManagementToken {
                key: d.key.clone(),
                home: home_label(&d.home),
                id: id.clone(),
            });
        }
    }
    if facts.adoptable.is_some() {
        return Ok(());
    }
    let why = match live_tokens(live, &d.home, d.kind)
        .iter()
        .find(|t| &t.id == id)
    {
        None => "no live token has this id".to_owned(),
        Some(t) => match Marker::parse_name(&t.name) {
            Some(m) => format!("it is already managed as `{}`", m.key),
            None => "it cannot be adopted".to_owned(),
        },
    };
    Err(PlanError::AdoptNotFound {
        key: d.key.clone(),
        home: home_label(&d.home),
        id: id.clone(),
        why,
    })
}

/// Take over an unmanaged API token, and show in the same plan everything that makes it match
/// the spec: the rename, a scope change (flagged when it narrows, with the consumers that may
/// break), the value reaching every target, and the rotation that follows when its expiry does
/// not fit the policy, its rotation is already due, or its value cannot be delivered (no
/// readable target holds it). After applying this plan, the next plan is empty.
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
    let narrowed: Vec<String> = token
        .scopes
        .difference(&d.scopes)
        .map(|s| s.to_string())
        .collect();
    if !narrowed.is_empty() {
        let consumers: Vec<String> = facts
            .targets
            .iter()
            .map(|t| t.address.to_string())
            .collect();
        draft.warn(
            "scope_narrowing",
            format!(
                "{} `{}` in {}: adopting {} removes scopes it has today ({}); consumers using them may break: {}",
                d.kind,
                d.key,
                home_label(&d.home),
                token.id,
                narrowed.join(", "),
                if consumers.is_empty() {
                    "whatever uses the token outside tokensmith".to_owned()
                } else {
                    format!("{} and whatever else holds the token", consumers.join(", "))
                }
            ),
        );
    }
    let unobtainable = facts.has_readable_target() && !facts.held_by_readable(&token.id);
    let rotation = if lifetime_differs(d, token) {
        Some(Reason::ExpiryChanged)
    } else if unobtainable {
        Some(Reason::SecretUnavailable)
    } else {
        rotation_due(d, token, facts.now)
    };
    if let Some(reason) = rotation {
        let note = match reason {
            Reason::ExpiryChanged => "the adopted token's expiry does not fit `expires_in`, which cannot be changed in place; a new generation replaces it",
            Reason::SecretUnavailable => "no target holds the adopted token's value and Dynatrace shows a value only once; a new generation replaces it",
            _ => "the adopted token is already due for rotation; a new generation replaces it",
        };
        // The successor is generation 2: the adopted token becomes generation 1.
        let mut adopted = facts.clone();
        adopted
            .generations
            .push((Marker::new(d.key.clone(), generation), token));
        let (create_id, delivers) = create_generation(
            draft,
            &adopted,
            reason,
            Some(token.id.clone()),
            Some(note.to_owned()),
        );
        if let Some(create) = draft.steps.iter_mut().find(|s| s.id == create_id) {
            // Only an adopted token is retired by key: without the rename it stays unmanaged.
            create.depends_on.push(adopt_id.clone());
        }
        revoke_same_run(draft, facts, token, &successor(create_id, delivers));
        draft.forecast.push(forecast_entry(facts, None, true));
        return;
    }
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
        if !narrowed.is_empty() {
            s.note = Some(format!("narrows: removes {}", narrowed.join(", ")));
        }
        draft.push(s);
    }
    deliver_existing(draft, facts, token, generation, Some(&adopt_id));
    draft
        .forecast
        .push(forecast_entry(facts, Some(token), true));
}

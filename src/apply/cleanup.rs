//! After the steps: what a partly failed run must not leave behind.
//!
//! - A token created in this run whose deliveries did not all succeed: when no target holds it
//!   (neither a delivery of this run nor a target read now), it is deleted, so no orphan is
//!   left and its predecessor is untouched. When some target holds it, it is kept (they depend
//!   on it) and the next plan copies its value from them to the others.
//! - A tenant rotation started in this run whose deliveries did not all succeed: when no target
//!   was changed and no delivery to a target that cannot be read back (or to an operator that
//!   fetches the token itself) was attempted, it is cancelled (with its record); otherwise it
//!   stays open for the next apply to resume.
//! - Write-only tenant targets that all received the active token in this run are noted on the
//!   rotation record, so later runs count them as confirmed (`steps::tenant`).

use super::report::{Cleanup, CleanupAction, Outcome};
use super::steps::Run;
use crate::live::Deletion;
use crate::model::target::tenant_fingerprint;
use crate::model::{Holder, Home};
use crate::plan::{Action, Plan, StepId, TokenSource};

pub(crate) async fn clean_up(run: &Run<'_>, plan: &Plan, outcomes: &[Outcome]) -> Vec<Cleanup> {
    let mut cleanups = Vec::new();
    let succeeded = |pred: &dyn Fn(&Action) -> bool, home: Option<&Home>| -> (usize, usize) {
        let mut total = 0;
        let mut ok = 0;
        for (s, o) in plan.steps.iter().zip(outcomes) {
            if pred(&s.action) && home.is_none_or(|h| &s.home == h) {
                total += 1;
                ok += usize::from(o.is_success());
            }
        }
        (total, ok)
    };

    let minted = run.minted.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (create_id, token) in minted {
        let Some(step) = plan.step(&create_id) else {
            continue;
        };
        let of_this = |a: &Action| matches!(a, Action::Deliver { token: TokenSource::Created { step }, .. } if step == &create_id);
        let (total, ok) = succeeded(&of_this, None);
        if total == ok {
            continue;
        }
        let in_run = run
            .deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|d| d.holds == token.as_str())
            .map(|d| d.address.clone())
            .collect::<Vec<_>>();
        let targets = run.key_targets(step);
        let mut holding = in_run.clone();
        for (address, holder) in run.holders(targets).await {
            if matches!(&holder, Holder::Token { id, .. } if id == &token)
                && !holding.contains(&address)
            {
                holding.push(address);
            }
        }
        let cleanup = if holding.is_empty() {
            match run.delete_token_of(step, &token).await {
                Ok(d) => Cleanup {
                    step: create_id.clone(),
                    token: Some(token.clone()),
                    action: CleanupAction::RolledBack,
                    detail: format!(
                        "no target received {token}, so it was {}; its predecessor is untouched",
                        if d == Deletion::Deleted { "deleted" } else { "already gone" }
                    ),
                },
                Err(e) => Cleanup {
                    step: create_id.clone(),
                    token: Some(token.clone()),
                    action: CleanupAction::Failed,
                    detail: format!("no target received {token} and deleting it failed ({e}); the next plan deletes it"),
                },
            }
        } else {
            let list: Vec<String> = holding.iter().map(ToString::to_string).collect();
            Cleanup {
                step: create_id.clone(),
                token: Some(token.clone()),
                action: CleanupAction::Kept,
                detail: format!(
                    "{token} reached {} of {} targets ({}); it is kept because they use it, and the next plan copies it to the others",
                    holding.len(),
                    targets.len().max(holding.len()),
                    list.join(", ")
                ),
            }
        };
        cleanups.push(cleanup);
    }

    run.note_write_only_confirmed().await;
    let started: Vec<_> = run
        .tenant_started
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(env, v)| (env.clone(), tenant_fingerprint(v.expose())))
        .collect();
    for (env, fingerprint) in started {
        let home = Home::Environment(env.clone());
        let is_tenant = |a: &Action| {
            matches!(
                a,
                Action::Deliver {
                    token: TokenSource::TenantToken,
                    ..
                } | Action::TenantFinish
            )
        };
        let (total, ok) = succeeded(&is_tenant, Some(&home));
        if total == ok {
            continue;
        }
        let start_step = plan
            .steps
            .iter()
            .find(|s| s.home == home && matches!(s.action, Action::TenantStart))
            .map_or_else(
                || StepId(format!("{env}/tenant_token/start")),
                |s| s.id.clone(),
            );
        let holds = format!("tenant:{fingerprint}");
        let changed = run
            .deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|d| d.home == home && d.holds == holds && d.changed);
        let sent = run.tenant_sent_in_run(&env).await;
        let cleanup = if changed || sent {
            let held = if changed {
                format!("some targets of `{env}` hold the new tenant token {fingerprint}")
            } else {
                format!("the new tenant token {fingerprint} of `{env}` may be in use (sent to a target that cannot be read back, or fetched by an operator asked to reconcile)")
            };
            Cleanup {
                step: start_step,
                token: None,
                action: CleanupAction::TenantLeftInProgress,
                detail: format!(
                    "{held}; the rotation stays in progress and the next apply resumes it"
                ),
            }
        } else {
            match run.cancel_tenant(&home).await {
                Ok(()) => Cleanup {
                    step: start_step,
                    token: None,
                    action: CleanupAction::TenantCancelled,
                    detail: format!("no target of `{env}` received the new tenant token, so the rotation was cancelled; the old tenant token stays valid"),
                },
                Err(e) => Cleanup {
                    step: start_step,
                    token: None,
                    action: CleanupAction::Failed,
                    detail: format!("cancelling the tenant rotation of `{env}` failed ({e}); the next apply resumes the rotation"),
                },
            }
        };
        cleanups.push(cleanup);
    }
    cleanups
}

//! The scheduler: steps in dependency order, up to `concurrency` at once.
//!
//! A step starts when every step it depends on succeeded (done now or already done). A failed
//! step marks everything that depends on it, transitively, as skipped because of it; steps that
//! do not depend on it go on. Steps run concurrently within the caller's task (their I/O
//! overlaps); progress and journal are written from here, in completion order.

use std::collections::HashMap;

use futures::stream::{FuturesUnordered, StreamExt};
use rand::Rng;

use super::cleanup::clean_up;
use super::env::{ApplyEnv, ApplyOptions};
use super::fanout::{is_exec_delivery, FanoutCounts, Ready};
use super::journal::Journal;
use super::progress::Progress;
use super::report::{ApplyReport, Outcome, StepReport};
use super::steps::{Run, StepError};
use crate::plan::{Plan, StepId};

/// Why a plan was not applied at all.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The plan carries a blocking check (the platform token limit).
    #[error("the plan is blocked and nothing was applied: {0}")]
    Blocked(String),
    /// The journal could not be opened. The message quotes the cause, so it is not also the
    /// error's source (the printed chain would say it twice).
    #[error(
        "cannot open the journal `{path}`: {cause}; pass `--journal PATH` to write it elsewhere"
    )]
    Journal {
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
}

/// Execute `plan`. See the module docs of [`crate::apply`]. Returns the report of every step,
/// whether or not some failed ([`ApplyReport::has_failures`]); `Err` only when nothing ran.
pub async fn execute(
    plan: &Plan,
    env: &ApplyEnv,
    opts: &ApplyOptions,
    progress: &mut dyn Progress,
) -> Result<ApplyReport, ApplyError> {
    if plan.is_blocked() {
        let messages: Vec<&str> = plan
            .checks
            .iter()
            .filter(|c| c.blocking)
            .map(|c| c.message.as_str())
            .collect();
        return Err(ApplyError::Blocked(messages.join("; ")));
    }
    let journal = match &opts.journal {
        Some(path) => Journal::open(path).map_err(|cause| ApplyError::Journal {
            path: path.clone(),
            cause,
        })?,
        None => Journal::disabled(),
    };
    let run_id = format!("{:016x}", rand::rng().random::<u64>());
    let run = Run::new(env, &journal, run_id.clone(), plan.generated_at);
    let started_at = env.wall_clock();
    let mut e = run.entry("run_started");
    e.detail = Some(format!(
        "{} steps; spec {}, live {}, targets {}",
        plan.steps.len(),
        plan.inputs.spec,
        plan.inputs.live,
        plan.inputs.targets
    ));
    journal.write(&e);

    let steps = &plan.steps;
    let n = steps.len();
    let index: HashMap<&StepId, usize> =
        steps.iter().enumerate().map(|(i, s)| (&s.id, i)).collect();
    let mut waiting: Vec<usize> = vec![0; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, s) in steps.iter().enumerate() {
        for d in &s.depends_on {
            if let Some(&j) = index.get(d) {
                waiting[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    let mut tokens: Vec<Option<crate::model::TokenId>> = vec![None; n];
    let exec: Vec<bool> = steps.iter().map(is_exec_delivery).collect();
    let mut ready = Ready::new(opts.concurrency, opts.exec_concurrency);
    for i in (0..n).filter(|&i| waiting[i] == 0) {
        ready.push(i, exec[i]);
    }
    let mut fanout = FanoutCounts::of(steps);
    let mut running = FuturesUnordered::new();
    progress.begin(n);

    loop {
        while let Some(i) = ready.start() {
            let step = &steps[i];
            progress.step_started(step);
            let mut e = run.entry("intent");
            e.step = Some(step.id.clone());
            e.verb = Some(step.action.verb().to_owned());
            e.token = step.action.token().cloned();
            e.detail = Some(step.reason.to_string());
            journal.write(&e);
            let run = &run;
            // Past the bound, the step is not started (its dependents are then skipped).
            let too_late = opts
                .start_steps_until
                .is_some_and(|t| std::time::Instant::now() >= t);
            running.push(async move {
                if too_late {
                    (i, Err(StepError::LeaseRunningOut))
                } else {
                    (i, run.run_step(step).await)
                }
            });
        }
        let Some((i, result)) = running.next().await else {
            break;
        };
        ready.finished(exec[i]);
        let step = &steps[i];
        let outcome = match result {
            Ok(done) => {
                tokens[i] = done.token.or_else(|| step.action.token().cloned());
                if done.changed {
                    Outcome::Done {
                        detail: done.detail,
                    }
                } else {
                    Outcome::AlreadyDone {
                        detail: done.detail,
                    }
                }
            }
            Err(error) => {
                tokens[i] = step.action.token().cloned();
                Outcome::Failed {
                    error: crate::live::redact(&error.to_string()),
                }
            }
        };
        record(
            &run,
            &journal,
            progress,
            plan,
            i,
            &outcome,
            tokens[i].as_ref(),
        );
        if exec[i] {
            fanout.add(&outcome);
            progress.fanout(&fanout);
        }
        let success = outcome.is_success();
        outcomes[i] = Some(outcome);
        if success {
            for &j in &dependents[i] {
                waiting[j] -= 1;
                if waiting[j] == 0 && outcomes[j].is_none() {
                    ready.push(j, exec[j]);
                }
            }
        } else {
            // Everything that depends on the failed step, transitively, is skipped.
            let mut stack: Vec<usize> = dependents[i].clone();
            while let Some(j) = stack.pop() {
                if outcomes[j].is_some() {
                    continue;
                }
                let skipped = Outcome::Skipped {
                    because: step.id.clone(),
                };
                tokens[j] = steps[j].action.token().cloned();
                record(
                    &run,
                    &journal,
                    progress,
                    plan,
                    j,
                    &skipped,
                    tokens[j].as_ref(),
                );
                if exec[j] {
                    fanout.add(&skipped);
                    progress.fanout(&fanout);
                }
                outcomes[j] = Some(skipped);
                stack.extend(dependents[j].iter().copied());
            }
        }
    }

    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .zip(steps)
        .map(|(o, s)| {
            // Only possible with a dependency cycle, which the planner never produces.
            o.unwrap_or_else(|| Outcome::Failed {
                error: format!("{} never became ready (a dependency cycle)", s.id),
            })
        })
        .collect();

    let cleanups = clean_up(&run, plan, &outcomes).await;
    for c in &cleanups {
        let mut e = run.entry(c.action.label());
        e.step = Some(c.step.clone());
        e.token = c.token.clone();
        e.detail = Some(c.detail.clone());
        journal.write(&e);
        progress.cleanup(c);
    }

    let mut warnings = std::mem::take(&mut *run.warnings.lock().unwrap_or_else(|e| e.into_inner()));
    warnings.extend(journal.take_errors());
    let report = ApplyReport {
        run_id,
        started_at,
        finished_at: env.wall_clock(),
        steps: steps
            .iter()
            .zip(outcomes)
            .zip(tokens)
            .map(|((s, outcome), token)| StepReport {
                step: s.id.clone(),
                verb: s.action.verb().to_owned(),
                token,
                target: match &s.action {
                    crate::plan::Action::Deliver { address, .. } => Some(address.clone()),
                    _ => None,
                },
                outcome,
            })
            .collect(),
        cleanups,
        warnings,
    };
    let mut e = run.entry("run_finished");
    e.detail = Some(format!(
        "{} done, {} already done, {} failed, {} skipped",
        report.done().count(),
        report.already_done().count(),
        report.failed().count(),
        report.skipped().count()
    ));
    journal.write(&e);
    progress.end(&report);
    Ok(report)
}

/// Journal and display one step's outcome.
fn record(
    run: &Run<'_>,
    journal: &Journal,
    progress: &mut dyn Progress,
    plan: &Plan,
    i: usize,
    outcome: &Outcome,
    token: Option<&crate::model::TokenId>,
) {
    let step = &plan.steps[i];
    let mut e = run.entry(outcome.label());
    e.step = Some(step.id.clone());
    e.verb = Some(step.action.verb().to_owned());
    e.token = token.cloned();
    if let crate::plan::Action::Deliver { address, .. } = &step.action {
        e.target = Some(address.clone());
    }
    e.detail = Some(outcome.message());
    journal.write(&e);
    progress.step_finished(step, outcome);
}

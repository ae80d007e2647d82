//! What a run did: each step's outcome and the clean-ups after the steps. Secret-free: step
//! ids, token ids, target addresses and redacted error messages only.

use std::io::{self, Write};

use serde::Serialize;
use time::OffsetDateTime;

use crate::model::{TargetAddress, TokenId};
use crate::plan::StepId;

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The step changed something.
    Done { detail: String },
    /// Live state already was what the step wanted (a re-run, or another run got there first).
    AlreadyDone { detail: String },
    /// The step failed; the error is secret-free.
    Failed { error: String },
    /// Not run because a step it depends on failed (`because` is the step that failed).
    Skipped { because: StepId },
}

impl Outcome {
    /// Whether the step reached its goal (done now or before).
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Done { .. } | Outcome::AlreadyDone { .. })
    }

    /// The word used in progress lines and the journal.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Done { .. } => "done",
            Outcome::AlreadyDone { .. } => "already_done",
            Outcome::Failed { .. } => "failed",
            Outcome::Skipped { .. } => "skipped",
        }
    }

    /// The detail, error or cause, in words.
    pub fn message(&self) -> String {
        match self {
            Outcome::Done { detail } | Outcome::AlreadyDone { detail } => detail.clone(),
            Outcome::Failed { error } => error.clone(),
            Outcome::Skipped { because } => format!("skipped because {because} failed"),
        }
    }
}

/// One step of the plan and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    pub step: StepId,
    pub verb: String,
    /// The token the step acted on or created, when known.
    pub token: Option<TokenId>,
    /// The target a delivery step wrote to (one result per target, fleets included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetAddress>,
    pub outcome: Outcome,
}

/// What a clean-up after the steps did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanupAction {
    /// A token created in this run reached no target and was deleted (no orphan).
    RolledBack,
    /// A token created in this run reached some targets but not all; it is kept because they
    /// depend on it, and the next plan copies it to the rest.
    Kept,
    /// A tenant rotation started in this run reached no target and was cancelled.
    TenantCancelled,
    /// A tenant rotation started in this run reached some targets; it stays in progress and the
    /// next apply resumes it.
    TenantLeftInProgress,
    /// A clean-up that should have happened failed; the next plan deals with it.
    Failed,
}

impl CleanupAction {
    /// The word used in progress lines, the summary and the journal.
    pub fn label(self) -> &'static str {
        match self {
            CleanupAction::RolledBack => "rolled_back",
            CleanupAction::Kept => "kept",
            CleanupAction::TenantCancelled => "tenant_cancelled",
            CleanupAction::TenantLeftInProgress => "tenant_left_in_progress",
            CleanupAction::Failed => "cleanup_failed",
        }
    }
}

/// One clean-up after the steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cleanup {
    /// The create or tenant-start step it concerns.
    pub step: StepId,
    pub token: Option<TokenId>,
    pub action: CleanupAction,
    pub detail: String,
}

/// Everything a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    pub run_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// Every step of the plan, in plan order.
    pub steps: Vec<StepReport>,
    pub cleanups: Vec<Cleanup>,
    /// Problems that did not fail a step (journal writes, delivery follow-ups).
    pub warnings: Vec<String>,
}

impl ApplyReport {
    /// Steps that changed something.
    pub fn done(&self) -> impl Iterator<Item = &StepReport> {
        self.steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Done { .. }))
    }

    /// Steps whose goal was already reached.
    pub fn already_done(&self) -> impl Iterator<Item = &StepReport> {
        self.steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::AlreadyDone { .. }))
    }

    pub fn failed(&self) -> impl Iterator<Item = &StepReport> {
        self.steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Failed { .. }))
    }

    /// Steps not run because a dependency failed.
    pub fn skipped(&self) -> impl Iterator<Item = &StepReport> {
        self.steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Skipped { .. }))
    }

    /// The outcomes of the deliveries to exec targets (the fleet fan-out).
    pub fn fanout(&self) -> super::FanoutCounts {
        let mut counts = super::FanoutCounts::default();
        for s in &self.steps {
            if s.target.as_ref().is_some_and(|t| t.0.starts_with("exec:")) {
                counts.total += 1;
                counts.add(&s.outcome);
            }
        }
        counts
    }

    /// Whether anything failed (the command exits 1).
    pub fn has_failures(&self) -> bool {
        self.failed().next().is_some()
            || self.skipped().next().is_some()
            || self
                .cleanups
                .iter()
                .any(|c| c.action == CleanupAction::Failed)
    }

    /// 0 when everything succeeded, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.has_failures())
    }

    /// The final report in words: counts, then what failed and why, then the clean-ups.
    pub fn write_summary(&self, out: &mut dyn Write) -> io::Result<()> {
        let count = |it: &mut dyn Iterator<Item = &StepReport>| it.count();
        writeln!(
            out,
            "Apply {}: {} done, {} already done, {} failed, {} skipped.",
            if self.has_failures() {
                "failed"
            } else {
                "complete"
            },
            count(&mut self.done()),
            count(&mut self.already_done()),
            count(&mut self.failed()),
            count(&mut self.skipped()),
        )?;
        let fanout = self.fanout();
        if fanout.total > 1 {
            writeln!(
                out,
                "Exec targets: {} of {} reached, {} failed, {} skipped.",
                fanout.ok, fanout.total, fanout.failed, fanout.skipped
            )?;
        }
        for s in self.failed().chain(self.skipped()) {
            writeln!(
                out,
                "  {} {}: {}",
                s.outcome.label(),
                s.step,
                s.outcome.message()
            )?;
        }
        for c in &self.cleanups {
            let token = c
                .token
                .as_ref()
                .map(|t| format!(" {t}"))
                .unwrap_or_default();
            writeln!(
                out,
                "  {}{token} ({}): {}",
                c.action.label(),
                c.step,
                c.detail
            )?;
        }
        for w in &self.warnings {
            writeln!(out, "  warning: {w}")?;
        }
        Ok(())
    }
}

//! A build of the simulator's world: its workflow executions and steps,
//! and their state at any time.
//!
//! A build is either *planned* (start times, durations and outcomes, so the
//! scenario moves with time) or *fixed* (literal API values, possibly
//! malformed, for exact assertions).

use std::collections::BTreeMap;

use crate::clock::{Nanos, NANOS_PER_SEC};
pub use crate::failure::{DistributionPlan, SimFailureContext, SimRegionFailure};
use crate::timestamp::format_rfc3339_millis;

/// How long a failed workflow's rollback runs before it ends.
pub const ROLLBACK: Nanos = 10 * NANOS_PER_SEC;

/// The statuses a build ends in, from which it never moves by itself.
pub const FINAL_STATUSES: [&str; 3] = ["AVAILABLE", "FAILED", "CANCELLED"];

/// How a planned step ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed,
    Cancelled,
}

impl Outcome {
    fn status(self) -> &'static str {
        match self {
            Outcome::Completed => "COMPLETED",
            Outcome::Failed => "FAILED",
            Outcome::Cancelled => "CANCELLED",
        }
    }
}

/// A step as the API describes it, with literal field values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FixedStep {
    pub status: String,
    pub start: Option<String>,
    pub end: Option<String>,
    pub rollback_status: Option<String>,
    pub message: Option<String>,
}

/// How a step's status and times come about.
#[derive(Debug, Clone, PartialEq)]
pub enum StepPlan {
    /// Runs for `duration` after the previous step of its workflow, then
    /// ends with `outcome`. While running it reports `running_status`
    /// (RUNNING, or WAITING for a `WaitForAction` step).
    Timed {
        duration: Nanos,
        outcome: Outcome,
        running_status: &'static str,
    },
    Fixed(FixedStep),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimStep {
    pub id: String,
    pub name: String,
    pub action: String,
    pub description: String,
    pub timeout_seconds: Option<i64>,
    pub on_failure: String,
    pub plan: StepPlan,
    /// What a planned step reports when it fails (`message`).
    pub failure_message: String,
    /// The planned rollback of this step when its workflow fails:
    /// COMPLETED, or FAILED (resources left behind).
    pub rollback: &'static str,
    /// `attemptNumber` and `maxAttempts`.
    pub attempt: i32,
    pub max_attempts: i32,
}

/// Literal workflow-execution values (for fixed builds).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FixedWorkflow {
    pub status: String,
    pub start: Option<String>,
    pub end: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimWorkflow {
    pub id: String,
    pub arn: String,
    pub workflow_type: String,
    pub steps: Vec<SimStep>,
    /// `None`: derived from the steps (planned builds).
    pub fixed: Option<FixedWorkflow>,
    /// A retry of the build superseded this execution.
    pub retried: bool,
    pub parallel_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimBuild {
    pub arn: String,
    pub name: String,
    pub version: String,
    pub date_created: Nanos,
    /// Workflows run one after the other from `date_created`, each only if
    /// the previous one completed (planned builds).
    pub workflows: Vec<SimWorkflow>,
    /// A literal image status; `None`: derived from the workflows.
    pub fixed_status: Option<String>,
    /// A literal `state.reason`; `None`: derived from a failed workflow.
    pub reason: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// `loggingConfiguration.logGroupName`, when not the default.
    pub log_group: Option<String>,
    pub build_type: String,
    /// The pipeline that started it (its builds count towards the
    /// pipeline's `consecutiveFailures`); `None`: no pipeline.
    pub pipeline_arn: Option<String>,
    /// A literal `state.failureContext`; `None`: derived from the failed
    /// step of a planned build, or from its `distribution`.
    pub failure_context: Option<SimFailureContext>,
    /// A distribution that fails after the workflows complete.
    pub distribution: Option<DistributionPlan>,
}

/// A step's state at some time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepState {
    pub status: String,
    pub start: Option<String>,
    pub end: Option<String>,
    pub rollback_status: Option<String>,
    pub message: Option<String>,
    /// When it ended, for `/_sim/failures`.
    pub ended_at: Option<Nanos>,
}

/// A workflow execution's state at some time (`None` if not started).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowState {
    pub status: String,
    pub start: Option<String>,
    pub end: Option<String>,
    pub steps: Vec<StepState>,
    pub ended_at: Option<Nanos>,
    pub failed: bool,
    pub message: Option<String>,
}

fn fmt(t: Nanos) -> String {
    format_rfc3339_millis(t)
}

fn fixed_state(x: &FixedStep) -> StepState {
    StepState {
        status: x.status.clone(),
        start: x.start.clone(),
        end: x.end.clone(),
        rollback_status: x.rollback_status.clone(),
        message: x.message.clone(),
        ended_at: None,
    }
}

fn pending(status: &str) -> StepState {
    StepState {
        status: status.into(),
        ..StepState::default()
    }
}

impl SimWorkflow {
    /// Evaluates a planned workflow that started at `start`.
    fn evaluate(&self, start: Nanos, now: Nanos) -> WorkflowState {
        if let Some(f) = &self.fixed {
            let steps = self
                .steps
                .iter()
                .map(|s| match &s.plan {
                    StepPlan::Fixed(x) => fixed_state(x),
                    StepPlan::Timed { .. } => pending("PENDING"),
                })
                .collect();
            return WorkflowState {
                status: f.status.clone(),
                start: f.start.clone(),
                end: f.end.clone(),
                steps,
                ended_at: None,
                failed: f.status == "FAILED",
                message: f.message.clone(),
            };
        }
        let mut t = start;
        let mut stopped: Option<(Nanos, Outcome, usize)> = None;
        let mut running = false;
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, s) in self.steps.iter().enumerate() {
            let st = match (&s.plan, stopped) {
                (StepPlan::Fixed(x), _) => fixed_state(x),
                // After a failure the rest is skipped, once the failure happened.
                (StepPlan::Timed { .. }, Some((at, _, _))) => {
                    pending(if now >= at { "SKIPPED" } else { "PENDING" })
                }
                (
                    StepPlan::Timed {
                        duration,
                        outcome,
                        running_status,
                    },
                    None,
                ) => {
                    let end = t + duration;
                    let st = if now < t {
                        pending("PENDING")
                    } else if now < end {
                        running = true;
                        StepState {
                            status: (*running_status).into(),
                            start: Some(fmt(t)),
                            ..StepState::default()
                        }
                    } else {
                        StepState {
                            status: outcome.status().into(),
                            start: Some(fmt(t)),
                            end: Some(fmt(end)),
                            message: (*outcome == Outcome::Failed)
                                .then(|| s.failure_message.clone()),
                            ended_at: Some(end),
                            ..StepState::default()
                        }
                    };
                    if *outcome != Outcome::Completed {
                        stopped = Some((end, *outcome, i));
                    }
                    t = end;
                    st
                }
            };
            steps.push(st);
        }
        let end_time = stopped.map(|(at, _, _)| at).unwrap_or(t);
        let (status, end) = if now >= end_time && !running {
            let status = match stopped {
                Some((_, Outcome::Failed, _)) => "FAILED",
                Some((_, Outcome::Cancelled, _)) => "CANCELLED",
                _ => "COMPLETED",
            };
            (status, Some(fmt(end_time)))
        } else {
            ("RUNNING", None)
        };
        let mut message = None;
        if let Some((at, Outcome::Failed, failed)) = stopped.filter(|(at, _, _)| now >= *at) {
            // The steps that ran are rolled back after the failure.
            let rollback = if now >= at + ROLLBACK {
                None
            } else {
                Some("RUNNING")
            };
            for (s, st) in self.steps.iter().zip(&mut steps).take(failed + 1) {
                if matches!(s.plan, StepPlan::Timed { .. }) {
                    st.rollback_status = Some(rollback.unwrap_or(s.rollback).into());
                }
            }
            let f = &self.steps[failed];
            message = Some(format!(
                "Workflow step {} failed: {}",
                f.name, f.failure_message
            ));
        }
        WorkflowState {
            status: status.into(),
            start: Some(fmt(start)),
            end,
            steps,
            ended_at: (now >= end_time).then_some(end_time),
            failed: status != "COMPLETED" && now >= end_time,
            message,
        }
    }
}

/// Delay between a build's creation and its first workflow.
pub const QUEUE_DELAY: Nanos = 5 * NANOS_PER_SEC;

impl SimBuild {
    /// The workflow executions started by `now`, with their state.
    pub fn workflow_states(&self, now: Nanos) -> Vec<(&SimWorkflow, WorkflowState)> {
        let mut out = Vec::new();
        let mut t = self.date_created + QUEUE_DELAY;
        for w in &self.workflows {
            if w.fixed.is_none() && now < t {
                break;
            }
            let st = w.evaluate(t, now);
            let next = st.ended_at;
            let failed = st.failed;
            out.push((w, st));
            match next {
                Some(e) if !failed => t = e,
                _ if w.fixed.is_some() => {}
                _ => break,
            }
        }
        out
    }

    /// The image status at `now`.
    pub fn status(&self, now: Nanos) -> String {
        self.status_of(&self.workflow_states(now), now)
    }

    /// When every workflow had completed, given their states at some time
    /// (at creation for fixed workflows, whose times are literal).
    fn completed_at(&self, states: &[(&SimWorkflow, WorkflowState)]) -> Option<Nanos> {
        if states.len() != self.workflows.len() {
            return None;
        }
        match states.last() {
            None => Some(self.date_created + QUEUE_DELAY),
            Some((_, st)) if st.status == "COMPLETED" => {
                Some(st.ended_at.unwrap_or(self.date_created))
            }
            Some(_) => None,
        }
    }

    /// True once the planned distribution has failed, given the workflow
    /// states at `now`.
    pub fn distribution_failed(
        &self,
        states: &[(&SimWorkflow, WorkflowState)],
        now: Nanos,
    ) -> bool {
        match (&self.distribution, self.completed_at(states)) {
            (Some(d), Some(done)) => self.fixed_status.is_none() && now >= done + d.duration,
            _ => false,
        }
    }

    /// The image status, given its `workflow_states` at `now`.
    pub fn status_of(&self, states: &[(&SimWorkflow, WorkflowState)], now: Nanos) -> String {
        if let Some(s) = &self.fixed_status {
            return s.clone();
        }
        if let (Some(d), Some(done)) = (&self.distribution, self.completed_at(states)) {
            return if now < done {
                "PENDING"
            } else if now < done + d.duration {
                "DISTRIBUTING"
            } else {
                "FAILED"
            }
            .into();
        }
        let Some((w, last)) = states.last() else {
            return "PENDING".into();
        };
        match last.status.as_str() {
            "FAILED" => "FAILED".into(),
            "CANCELLED" => "CANCELLED".into(),
            "COMPLETED" if states.len() == self.workflows.len() => "AVAILABLE".into(),
            _ => match w.workflow_type.as_str() {
                "TEST" => "TESTING",
                "DISTRIBUTION" => "DISTRIBUTING",
                _ => "BUILDING",
            }
            .into(),
        }
    }

    /// `state.reason` at `now`: the literal one, or once the build failed,
    /// the failed distribution's message or the failed workflow's.
    pub fn reason(&self, now: Nanos) -> Option<String> {
        if self.reason.is_some() {
            return self.reason.clone();
        }
        let states = self.workflow_states(now);
        if self.status_of(&states, now) != "FAILED" {
            return None;
        }
        if self.distribution_failed(&states, now) {
            return self
                .distribution
                .as_ref()
                .map(|d| d.message.clone())
                .filter(|m| !m.is_empty());
        }
        states.into_iter().rev().find_map(|(_, st)| st.message)
    }

    /// Every time at which the state of the build as the API shows it can
    /// change: it appears, a planned workflow or step starts or ends, a
    /// rollback ends, a distribution starts or ends. Between two
    /// consecutive times every status and time it reports is constant
    /// (evaluation compares `now` with exactly these times; a test in
    /// `events.rs` checks it). Fixed values never change with time.
    pub fn change_times(&self) -> Vec<Nanos> {
        let mut out = vec![self.date_created];
        let mut t = self.date_created + QUEUE_DELAY;
        for w in self.workflows.iter().filter(|w| w.fixed.is_none()) {
            out.push(t);
            let mut stopped = None;
            for s in &w.steps {
                if let StepPlan::Timed {
                    duration, outcome, ..
                } = s.plan
                {
                    out.push(t);
                    t += duration;
                    out.push(t);
                    if outcome != Outcome::Completed {
                        stopped = Some(t);
                        break;
                    }
                }
            }
            // A workflow that failed or was cancelled stops the build.
            if let Some(at) = stopped {
                out.push(at + ROLLBACK);
                break;
            }
        }
        if let Some(d) = &self.distribution {
            if let Some(done) = self.completed_at(&self.workflow_states(Nanos::MAX)) {
                out.extend([done, done + d.duration]);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// When the build reached the status it ends in (one of
    /// [`FINAL_STATUSES`]), and that status; `None` if it never does.
    /// Pipelines count their builds at these times.
    pub fn finished(&self) -> Option<(Nanos, String)> {
        self.change_times().into_iter().find_map(|t| {
            let s = self.status(t);
            FINAL_STATUSES.contains(&s.as_str()).then_some((t, s))
        })
    }
}

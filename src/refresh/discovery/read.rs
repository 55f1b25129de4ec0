//! The reads of a refresh: workflow executions, step executions and step
//! details, each fetched with bounded concurrency and merged into what is
//! tracked. A read that fails keeps the last good data and is reported.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::listing::{fan_out, list_all};
use super::merge::{apply_steps, apply_workflows};
use super::{Phase, RefreshReport, Tracker, MAX_OUTCOME_ROUNDS};
use crate::aws::{ApiError, DataIssue, Fetched};
use crate::aws::{ImageBuilderApi, Operation};
use crate::model::{StepDetail, StepExecution, StepStatus, WorkflowExecution};
use crate::tracking::outcomes::outcomes;
use crate::tracking::tracked::{latest_steps, priority_builds, select_latest, Limits};

impl Tracker {
    /// Lists the workflow executions of every build that can still change.
    /// During a cold start, builds never listed that are not needed for the
    /// latest state wait for the backfill.
    pub(super) async fn refresh_workflows<C: ImageBuilderApi>(
        &mut self,
        api: &C,
        report: &mut RefreshReport,
    ) {
        let priority = (!self.full()).then(|| priority_builds(&self.builds));
        let jobs: Vec<Arc<str>> = self
            .builds
            .values()
            .filter(|b| !b.frozen)
            .filter(|b| {
                b.workflows.is_some() || priority.as_ref().is_none_or(|p| p.contains(&b.build.arn))
            })
            .map(|b| b.build.arn.clone())
            .collect();
        self.list_workflows(api, jobs, report).await;
    }

    /// Lists the workflow executions of `jobs` (build ARNs) and merges them.
    pub(super) async fn list_workflows<C: ImageBuilderApi>(
        &mut self,
        api: &C,
        jobs: Vec<Arc<str>>,
        report: &mut RefreshReport,
    ) {
        let results = fetch_workflows(api, jobs).await;
        self.apply_workflow_listings(results, report);
    }

    /// Merges listings of workflow executions.
    pub(super) fn apply_workflow_listings(
        &mut self,
        results: Vec<(Arc<str>, Listed<WorkflowExecution>)>,
        report: &mut RefreshReport,
    ) {
        for (arn, r) in results {
            match r {
                Ok((list, issues)) => {
                    let complete =
                        report.take_issues(issues, &format!("workflow executions of {arn}"));
                    if let Some(tb) = self.builds.get_mut(&arn) {
                        apply_workflows(tb, list, complete);
                    }
                }
                // Deleted since it was listed: its series leave now rather
                // than at the next discovery, and it is not an outage.
                Err(e) if e.is_not_found() => {
                    tracing::info!(build = %arn, "image build version no longer exists; untracked");
                    self.builds.remove(&arn);
                }
                Err(e) => report.fail(e, format!("workflow executions of {arn}")),
            }
        }
    }

    /// Lists the steps of the executions that can still change or are
    /// needed, then walks back, a round at a time, to older executions
    /// until every step's last conclusive outcome is known (so a failure
    /// stays visible while a newer build retries the step, also after a
    /// restart).
    pub(super) async fn refresh_steps<C: ImageBuilderApi>(
        &mut self,
        api: &C,
        report: &mut RefreshReport,
        only: Option<&HashSet<Arc<str>>>,
    ) {
        let latest: HashSet<(Arc<str>, usize)> = select_latest(&self.builds)
            .into_iter()
            .map(|l| (l.build_arn, l.index))
            .collect();
        let mut jobs = Vec::new();
        for tb in self.builds.values().filter(|b| in_scope(only, b)) {
            for (i, w) in tb.workflows.iter().flatten().enumerate() {
                let needed = latest.contains(&(tb.build.arn.clone(), i))
                    || !w.exec.status.is_terminal()
                    || !tb.baseline
                    || w.steps.is_some();
                if needed && !w.frozen {
                    jobs.push((tb.build.arn.clone(), w.exec.id.clone()));
                }
            }
        }
        let mut listed: HashSet<String> = HashSet::new();
        for _ in 0..MAX_OUTCOME_ROUNDS {
            listed.extend(jobs.iter().map(|(_, id)| id.clone()));
            self.list_steps(api, jobs, report).await;
            jobs = outcomes(&self.builds)
                .gaps
                .into_iter()
                .filter(|(_, id)| !listed.contains(id))
                .collect();
            if jobs.is_empty() {
                break;
            }
        }
    }

    /// Lists the steps of `jobs` (build ARN, workflow execution ID) and
    /// merges them.
    pub(super) async fn list_steps<C: ImageBuilderApi>(
        &mut self,
        api: &C,
        jobs: Vec<(Arc<str>, String)>,
        report: &mut RefreshReport,
    ) {
        let results = fetch_steps(api, jobs).await;
        self.apply_step_listings(results, report);
    }

    /// Merges listings of step executions.
    pub(super) fn apply_step_listings(
        &mut self,
        results: Vec<StepsRead>,
        report: &mut RefreshReport,
    ) {
        for ((arn, id), r) in results {
            match r {
                Ok((list, issues)) => {
                    let complete =
                        report.take_issues(issues, &format!("step executions of {id} ({arn})"));
                    if let Some(tb) = self.builds.get_mut(&arn) {
                        let baseline = tb.baseline;
                        if let Some(w) = tb.workflows.iter_mut().flatten().find(|w| w.exec.id == id)
                        {
                            apply_steps(w, list, baseline, complete);
                        }
                    }
                }
                Err(e) if e.is_not_found() => {
                    tracing::info!(workflow_execution = %id, build = %arn, "workflow execution no longer exists; untracked");
                    if let Some(ws) = self
                        .builds
                        .get_mut(&arn)
                        .and_then(|tb| tb.workflows.as_mut())
                    {
                        ws.retain(|w| w.exec.id != id);
                    }
                }
                Err(e) => report.fail(e, format!("step executions of {id} ({arn})")),
            }
        }
    }

    /// Fetches `timeoutSeconds` for the latest execution of each step and for
    /// steps in flight, once per step execution. During a cold start only
    /// steps running (or waiting) are read; finished ones wait for the
    /// backfill, pending ones for the next refresh.
    pub(super) async fn refresh_limits<C: ImageBuilderApi>(
        &mut self,
        api: &C,
        report: &mut RefreshReport,
        only: Option<&HashSet<Arc<str>>>,
    ) {
        let mut wanted: BTreeMap<String, (Arc<str>, String)> = BTreeMap::new();
        if self.full() {
            for (step, place) in self.latest_unknown_limits() {
                if only.is_none_or(|o| o.contains(&place.0)) {
                    wanted.insert(step, place);
                }
            }
        }
        // Before ready, only steps that have started: the headroom counts
        // from the start. Pending ones are read by the next refresh, as
        // every step in flight is.
        let cold = self.phase == Phase::Cold;
        let wanted_now = |status: &StepStatus| {
            !status.is_terminal() && (!cold || *status != StepStatus::Pending)
        };
        for tb in self.builds.values().filter(|b| in_scope(only, b)) {
            for w in tb.workflows.iter().flatten() {
                for s in w.steps.iter().flatten() {
                    if s.limits == Limits::Unknown && wanted_now(&s.exec.status) {
                        wanted.insert(s.exec.id.clone(), (tb.build.arn.clone(), w.exec.id.clone()));
                    }
                }
            }
        }
        self.read_details(api, wanted, report).await;
    }

    /// The latest execution of each step whose limits were never read:
    /// step ID → (build ARN, workflow execution ID).
    pub(super) fn latest_unknown_limits(&self) -> Vec<(String, (Arc<str>, String))> {
        let mut out = Vec::new();
        for l in select_latest(&self.builds) {
            let tb = &self.builds[&l.build_arn];
            let w = &tb.workflows.as_deref().unwrap_or_default()[l.index];
            for s in latest_steps(w.steps.as_deref().unwrap_or_default()) {
                if s.limits == Limits::Unknown {
                    out.push((s.exec.id.clone(), (l.build_arn.clone(), w.exec.id.clone())));
                }
            }
        }
        out
    }

    /// Reads the details of `wanted` steps and keeps their limits.
    pub(super) async fn read_details<C: ImageBuilderApi>(
        &mut self,
        api: &C,
        wanted: BTreeMap<String, (Arc<str>, String)>,
        report: &mut RefreshReport,
    ) {
        let results = fetch_details(api, wanted).await;
        self.apply_details(results, report);
    }

    /// Keeps what step details tell.
    pub(super) fn apply_details(&mut self, results: Vec<DetailRead>, report: &mut RefreshReport) {
        for (step_id, (arn, exec_id), r) in results {
            let step = self
                .builds
                .get_mut(&arn)
                .and_then(|tb| tb.workflows.as_mut())
                .and_then(|ws| ws.iter_mut().find(|w| w.exec.id == exec_id))
                .and_then(|w| w.steps.as_mut())
                .and_then(|ss| ss.iter_mut().find(|s| s.exec.id == step_id));
            let Some(step) = step else { continue };
            match r {
                Ok(f) => {
                    report.issues.extend(f.issues);
                    step.limits = Limits::Known(f.value.limits);
                    step.on_failure = f.value.on_failure.as_deref().map(Arc::from);
                    // The detail is the fresher read of the same step.
                    let fresh = f.value.step;
                    step.exec.status = fresh.status;
                    step.exec.start = fresh.start.or(step.exec.start);
                    step.exec.end = fresh.end.or(step.exec.end);
                    step.exec.rollback_status =
                        fresh.rollback_status.or(step.exec.rollback_status.take());
                    step.exec.message = fresh.message.or(step.exec.message.take());
                    step.exec.attempt = fresh.attempt.or(step.exec.attempt);
                    step.exec.max_attempts = fresh.max_attempts.or(step.exec.max_attempts);
                }
                Err(e) if e.is_not_found() => {
                    step.limits = Limits::Missing;
                    report.fail(e, format!("step execution {step_id}"));
                }
                Err(e) => report.fail(e, format!("step execution {step_id}")),
            }
        }
    }

    /// Follows `--step-execution-id` steps that discovery does not cover.
    pub(super) async fn refresh_direct<C: ImageBuilderApi>(
        &mut self,
        api: &C,
        report: &mut RefreshReport,
    ) {
        if self.direct.is_empty() {
            return;
        }
        let discovered = self.discovered_step_ids();
        let jobs: Vec<String> = self
            .direct
            .iter()
            .filter(|(id, d)| {
                !discovered.contains(id.as_str())
                    && d.detail
                        .as_ref()
                        .is_none_or(|x| !x.step.status.is_terminal())
            })
            .map(|(id, _)| id.clone())
            .collect();
        let results = fan_out(jobs, |id| async move {
            let r = api.get_workflow_step_execution(id.clone()).await;
            (id, r)
        })
        .await;
        for (id, r) in results {
            let Some(d) = self.direct.get_mut(&id) else {
                continue;
            };
            match r {
                Ok(f) => {
                    report.issues.extend(f.issues);
                    let seed =
                        !self.seeded && d.detail.is_none() && f.value.step.status.is_terminal();
                    d.counted |= seed;
                    d.detail = Some(f.value);
                }
                // An ID the API does not know is the user's to fix; it does
                // not make the refresh incomplete.
                Err(e) if e.is_not_found() => report.unknown_step_ids.push(id),
                Err(e) => report.fail(e, format!("step execution {id} (--step-execution-id)")),
            }
        }
    }

    pub(super) fn discovered_step_ids(&self) -> HashSet<&str> {
        self.builds
            .values()
            .flat_map(|b| b.workflows.iter().flatten())
            .flat_map(|w| w.steps.iter().flatten())
            .map(|s| s.exec.id.as_str())
            .collect()
    }
}

/// Whether `b` is among the builds a refresh is limited to (all when `None`).
fn in_scope(only: Option<&HashSet<Arc<str>>>, b: &crate::tracking::tracked::TrackedBuild) -> bool {
    only.is_none_or(|o| o.contains(&b.build.arn))
}

/// A listing as read: its items and issues, or why it failed.
pub(super) type Listed<T> = Result<(Vec<T>, Vec<DataIssue>), ApiError>;

/// A workflow execution: (build ARN, execution ID).
pub(super) type ExecutionRef = (Arc<str>, String);

/// The steps of an execution as read.
pub(super) type StepsRead = (ExecutionRef, Listed<StepExecution>);

/// A step's details as read: (step ID, (build ARN, execution ID), answer).
pub(super) type DetailRead = (
    String,
    (Arc<str>, String),
    Result<Fetched<StepDetail>, ApiError>,
);

/// The workflow executions of `jobs` (build ARNs). Holds no state, so that
/// the backfill reads without holding the tracker.
pub(super) async fn fetch_workflows<C: ImageBuilderApi>(
    api: &C,
    jobs: Vec<Arc<str>>,
) -> Vec<(Arc<str>, Listed<WorkflowExecution>)> {
    fan_out(jobs, |arn| async move {
        let r = list_all(Operation::ListWorkflowExecutions, |t| {
            api.list_workflow_executions(arn.to_string(), t)
        })
        .await;
        (arn, r)
    })
    .await
}

/// The step executions of `jobs` (build ARN, workflow execution ID).
pub(super) async fn fetch_steps<C: ImageBuilderApi>(
    api: &C,
    jobs: Vec<(Arc<str>, String)>,
) -> Vec<StepsRead> {
    fan_out(jobs, |(arn, id)| async move {
        let r = list_all(Operation::ListWorkflowStepExecutions, |t| {
            api.list_workflow_step_executions(id.clone(), t)
        })
        .await;
        ((arn, id), r)
    })
    .await
}

/// The details of `wanted` steps.
pub(super) async fn fetch_details<C: ImageBuilderApi>(
    api: &C,
    wanted: BTreeMap<String, (Arc<str>, String)>,
) -> Vec<DetailRead> {
    fan_out(wanted, |(step_id, place)| async move {
        let r = api.get_workflow_step_execution(step_id.clone()).await;
        (step_id, place, r)
    })
    .await
}

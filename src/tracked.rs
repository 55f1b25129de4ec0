//! What the exporter holds between refreshes, and which of it is "latest".
//!
//! Builds, their workflow executions and step executions are kept as last
//! read. Terminal things are frozen and never fetched again; the latest-state
//! metrics come from [`select_latest`], a pure function of this state.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::clock::Nanos;
use crate::model::{parse_arn, Build, StepExecution, StepLimits, StepStatus, WorkflowExecution};

/// A build being followed.
#[derive(Debug, Clone)]
pub struct TrackedBuild {
    pub build: Build,
    /// Workflow executions as last listed; `None` until listed once.
    pub workflows: Option<Vec<TrackedWorkflow>>,
    /// Build terminal and every execution terminal when last listed: its
    /// list of workflow executions will not change any more.
    pub frozen: bool,
    /// Existed when the exporter first listed builds: its steps already
    /// terminal when first seen only seed the counters.
    pub baseline: bool,
}

/// A workflow execution of a tracked build.
#[derive(Debug, Clone)]
pub struct TrackedWorkflow {
    pub exec: WorkflowExecution,
    /// Step executions as last listed; `None` until listed once (steps of
    /// old, finished executions that are not the latest are never listed).
    pub steps: Option<Vec<TrackedStep>>,
    /// Terminal, and all its steps terminal when last listed.
    pub frozen: bool,
}

/// A step execution of a tracked workflow execution.
#[derive(Debug, Clone)]
pub struct TrackedStep {
    pub exec: StepExecution,
    pub limits: Limits,
    /// `onFailure` (`Abort`, `Continue`), known once the step's details
    /// were read.
    pub on_failure: Option<Arc<str>>,
    /// Counted in (or seeded into) `imagebuilder_workflow_step_executions_total`.
    pub counted: bool,
}

/// What is known of a step's limits (`GetWorkflowStepExecution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limits {
    Unknown,
    Known(StepLimits),
    /// The API does not know the step; not asked again.
    Missing,
}

impl Limits {
    pub fn timeout_seconds(&self) -> Option<i64> {
        match self {
            Limits::Known(l) => l.timeout_seconds,
            _ => None,
        }
    }
}

/// The label values shared by a workflow's series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkflowKey {
    pub account_id: Arc<str>,
    pub region: Arc<str>,
    pub image: Arc<str>,
    pub workflow_arn: Arc<str>,
}

impl WorkflowKey {
    /// The key of `workflow_arn` run by `build` (account and region from the
    /// build's ARN, which the API always sends).
    pub fn new(build: &Build, workflow_arn: &Arc<str>) -> Self {
        let (account_id, region) = match parse_arn(&build.arn) {
            Some(p) => (Arc::from(p.account_id), Arc::from(p.region)),
            None => (Arc::from(""), Arc::from("")),
        };
        Self {
            account_id,
            region,
            image: build.name.clone(),
            workflow_arn: workflow_arn.clone(),
        }
    }
}

/// Where the latest execution of one workflow of one image lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestWorkflow {
    pub key: WorkflowKey,
    pub build_arn: Arc<str>,
    /// Index into the build's `workflows`.
    pub index: usize,
}

/// Orders builds from oldest to newest: by creation time, then by the
/// build number of their version (`1.2.3/4`).
pub fn build_order(a: &Build, b: &Build) -> Ordering {
    a.date_created
        .cmp(&b.date_created)
        .then_with(|| version_key(&a.version).cmp(&version_key(&b.version)))
        .then_with(|| a.arn.cmp(&b.arn))
}

fn version_key(v: &str) -> Vec<u64> {
    v.split(['.', '/'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// Orders executions of one workflow in one build from oldest to newest:
/// one not started yet (a retry waiting to run) is newer than any started.
fn start_order(a: Option<Nanos>, b: Option<Nanos>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

/// Orders two executions of one workflow in one build (with their index in
/// the listing) from oldest to newest: one that a retry of the build
/// superseded (`retried`) is older than the retry; then by start time.
fn execution_order(a: &WorkflowExecution, ai: usize, b: &WorkflowExecution, bi: usize) -> Ordering {
    (!a.retried)
        .cmp(&!b.retried)
        .then_with(|| start_order(a.start, b.start))
        .then_with(|| ai.cmp(&bi))
}

/// For each (image, workflow ARN), the newest tracked build that ran it and
/// the newest execution there. Sorted by key, so output is stable.
pub fn select_latest(builds: &HashMap<Arc<str>, TrackedBuild>) -> Vec<LatestWorkflow> {
    let mut best: HashMap<WorkflowKey, (&TrackedBuild, usize)> = HashMap::new();
    for tb in builds.values() {
        let Some(wfs) = &tb.workflows else { continue };
        for (i, w) in wfs.iter().enumerate() {
            let key = WorkflowKey::new(&tb.build, &w.exec.workflow_arn);
            let newer = match best.get(&key) {
                None => true,
                Some((ob, oi)) => {
                    let ow = &ob.workflows.as_deref().unwrap_or_default()[*oi];
                    build_order(&tb.build, &ob.build)
                        .then_with(|| execution_order(&w.exec, i, &ow.exec, *oi))
                        == Ordering::Greater
                }
            };
            if newer {
                best.insert(key, (tb, i));
            }
        }
    }
    let mut out: Vec<LatestWorkflow> = best
        .into_iter()
        .map(|(key, (tb, index))| LatestWorkflow {
            key,
            build_arn: tb.build.arn.clone(),
            index,
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// The latest execution of each step in a workflow execution: a step can be
/// listed more than once when it was retried.
pub fn latest_steps(steps: &[TrackedStep]) -> Vec<&TrackedStep> {
    let mut best: HashMap<(&str, &str), &TrackedStep> = HashMap::new();
    for s in steps {
        let k = (&*s.exec.name, &*s.exec.action);
        let newer = best.get(&k).is_none_or(|o| {
            (s.exec.attempt, start_order_key(s.exec.start))
                >= (o.exec.attempt, start_order_key(o.exec.start))
        });
        if newer {
            best.insert(k, s);
        }
    }
    let mut v: Vec<&TrackedStep> = best.into_values().collect();
    v.sort_by(|a, b| (&a.exec.name, &a.exec.action).cmp(&(&b.exec.name, &b.exec.action)));
    v
}

fn start_order_key(t: Option<Nanos>) -> (bool, Nanos) {
    (t.is_none(), t.unwrap_or(0))
}

/// The newest conclusive execution of one step: the last time it either
/// COMPLETED or FAILED. A retry still running, or a later build that
/// skipped or cancelled the step, does not change it.
#[derive(Debug, Clone, Copy)]
pub struct Conclusive<'a> {
    pub build: &'a TrackedBuild,
    pub workflow: &'a TrackedWorkflow,
    pub step: &'a TrackedStep,
}

/// What the tracked state tells of each step's last conclusive outcome.
#[derive(Debug, Default)]
pub struct Outcomes<'a> {
    /// One per step of each (image, workflow ARN), in key order.
    pub conclusive: Vec<(WorkflowKey, Conclusive<'a>)>,
    /// Executions whose steps must be listed to know the outcome of some
    /// step: older executions behind a newest one that ran, skipped or
    /// cancelled it. (build ARN, workflow execution ID)
    pub gaps: Vec<(Arc<str>, String)>,
}

/// Every tracked execution of each (image, workflow ARN), newest first, in
/// the order [`select_latest`] uses.
fn executions_newest_first(
    builds: &HashMap<Arc<str>, TrackedBuild>,
) -> Vec<(WorkflowKey, Vec<(&TrackedBuild, usize)>)> {
    let mut groups: HashMap<WorkflowKey, Vec<(&TrackedBuild, usize)>> = HashMap::new();
    for tb in builds.values() {
        for (i, w) in tb.workflows.iter().flatten().enumerate() {
            groups
                .entry(WorkflowKey::new(&tb.build, &w.exec.workflow_arn))
                .or_default()
                .push((tb, i));
        }
    }
    let mut out: Vec<_> = groups.into_iter().collect();
    for (_, execs) in &mut out {
        execs.sort_by(|(a, ai), (b, bi)| {
            let wa = &a.workflows.as_deref().unwrap_or_default()[*ai];
            let wb = &b.workflows.as_deref().unwrap_or_default()[*bi];
            build_order(&b.build, &a.build)
                .then_with(|| execution_order(&wb.exec, *bi, &wa.exec, *ai))
        });
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Walks each workflow's executions from the newest back until every step
/// seen has a conclusive outcome, and says which older executions must be
/// listed for that. Pure: the refresh lists the gaps, then asks again.
pub fn outcomes(builds: &HashMap<Arc<str>, TrackedBuild>) -> Outcomes<'_> {
    let mut out = Outcomes::default();
    for (key, execs) in executions_newest_first(builds) {
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        let mut found: HashMap<(&str, &str), Conclusive<'_>> = HashMap::new();
        for (n, (tb, i)) in execs.into_iter().enumerate() {
            let w = &tb.workflows.as_deref().unwrap_or_default()[i];
            let Some(steps) = &w.steps else {
                // The newest execution is listed by the refresh anyway;
                // an older one only when some step is still undecided.
                if n > 0 {
                    out.gaps.push((tb.build.arn.clone(), w.exec.id.clone()));
                }
                break;
            };
            for s in latest_steps(steps) {
                let k = (&*s.exec.name, &*s.exec.action);
                seen.insert(k);
                let conclusive =
                    matches!(s.exec.status, StepStatus::Completed | StepStatus::Failed);
                if conclusive && !found.contains_key(&k) {
                    found.insert(
                        k,
                        Conclusive {
                            build: tb,
                            workflow: w,
                            step: s,
                        },
                    );
                }
            }
            if !seen.is_empty() && seen.iter().all(|k| found.contains_key(k)) {
                break;
            }
        }
        let mut found: Vec<_> = found.into_iter().collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        out.conclusive
            .extend(found.into_iter().map(|(_, c)| (key.clone(), c)));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{BuildStatus, StepStatus, WorkflowStatus, WorkflowType};

    pub fn build(name: &str, n: u32, created: Nanos) -> Build {
        Build {
            arn: Arc::from(format!(
                "arn:aws:imagebuilder:us-east-1:123456789012:image/{name}/1.0.0/{n}"
            )),
            name: Arc::from(name),
            version: format!("1.0.0/{n}"),
            status: BuildStatus::Available,
            date_created: Some(created),
            reason: None,
            build_type: None,
            log_group: None,
            tags: Default::default(),
        }
    }

    pub fn workflow(id: &str, arn: &str, start: Option<Nanos>) -> TrackedWorkflow {
        TrackedWorkflow {
            exec: WorkflowExecution {
                id: id.into(),
                workflow_arn: Arc::from(arn),
                workflow_type: WorkflowType::Build,
                status: WorkflowStatus::Completed,
                total_steps: None,
                steps_succeeded: None,
                steps_failed: None,
                steps_skipped: None,
                start,
                end: None,
                message: None,
                retried: false,
                parallel_group: None,
            },
            steps: None,
            frozen: false,
        }
    }

    pub fn step(id: &str, name: &str, attempt: Option<i32>, start: Option<Nanos>) -> TrackedStep {
        TrackedStep {
            exec: StepExecution {
                id: id.into(),
                name: Arc::from(name),
                action: Arc::from("ExecuteComponents"),
                status: StepStatus::Completed,
                start,
                end: None,
                attempt,
                max_attempts: None,
                rollback_status: None,
                message: None,
            },
            limits: Limits::Unknown,
            on_failure: None,
            counted: false,
        }
    }

    fn with_status(mut s: TrackedStep, status: StepStatus) -> TrackedStep {
        s.exec.status = status;
        s
    }

    fn listed(mut w: TrackedWorkflow, steps: Vec<TrackedStep>) -> TrackedWorkflow {
        w.steps = Some(steps);
        w
    }

    fn tracked(b: Build, wfs: Vec<TrackedWorkflow>) -> (Arc<str>, TrackedBuild) {
        (
            b.arn.clone(),
            TrackedBuild {
                build: b,
                workflows: Some(wfs),
                frozen: false,
                baseline: false,
            },
        )
    }

    const WF_B: &str = "arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1";
    const WF_T: &str = "arn:aws:imagebuilder:us-east-1:aws:workflow/test/test-image/1.0.0/1";

    #[test]
    fn latest_comes_from_the_newest_build_that_ran_the_workflow() {
        let builds: HashMap<_, _> = [
            tracked(
                build("web", 1, 100),
                vec![
                    workflow("wf-a", WF_B, Some(1)),
                    workflow("wf-b", WF_T, Some(2)),
                ],
            ),
            // The newest build failed before its TEST workflow ran.
            tracked(build("web", 2, 200), vec![workflow("wf-c", WF_B, Some(3))]),
            tracked(build("db", 1, 50), vec![workflow("wf-d", WF_B, Some(4))]),
        ]
        .into_iter()
        .collect();
        let latest = select_latest(&builds);
        let got: Vec<(&str, &str, &str)> = latest
            .iter()
            .map(|l| {
                let b = &builds[&l.build_arn];
                (
                    &*l.key.image,
                    &*l.key.workflow_arn,
                    b.build.version.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("db", WF_B, "1.0.0/1"),
                ("web", WF_B, "1.0.0/2"),
                ("web", WF_T, "1.0.0/1")
            ]
        );
        assert_eq!(&*latest[0].key.account_id, "123456789012");
        assert_eq!(&*latest[0].key.region, "us-east-1");
    }

    #[test]
    fn a_retry_not_started_yet_is_the_newest_execution() {
        let builds: HashMap<_, _> = [tracked(
            build("web", 1, 100),
            vec![
                workflow("wf-a", WF_B, Some(10)),
                workflow("wf-b", WF_B, None),
            ],
        )]
        .into_iter()
        .collect();
        let latest = select_latest(&builds);
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[0].index, 1);
    }

    #[test]
    fn latest_step_is_the_last_attempt() {
        let steps = vec![
            step("step-1", "Build", Some(1), Some(10)),
            step("step-2", "Build", Some(2), Some(20)),
            step("step-3", "Test", None, Some(5)),
        ];
        let l = latest_steps(&steps);
        let ids: Vec<&str> = l.iter().map(|s| s.exec.id.as_str()).collect();
        assert_eq!(ids, ["step-2", "step-3"]);
    }

    #[test]
    fn a_retried_execution_is_older_than_its_retry() {
        let mut first = workflow("wf-a", WF_B, Some(20));
        first.exec.retried = true;
        let builds: HashMap<_, _> = [tracked(
            build("web", 1, 100),
            vec![first, workflow("wf-b", WF_B, Some(10))],
        )]
        .into_iter()
        .collect();
        assert_eq!(select_latest(&builds)[0].index, 1);
    }

    #[test]
    fn the_last_conclusive_outcome_survives_a_retry_in_progress() {
        // Build 1 failed "Build"; build 2 is running it again and has not
        // listed its steps' outcome yet for "Test".
        let failed = listed(
            workflow("wf-a", WF_B, Some(1)),
            vec![
                with_status(step("s1", "Build", None, Some(1)), StepStatus::Failed),
                with_status(step("s2", "Test", None, None), StepStatus::Skipped),
            ],
        );
        let running = listed(
            workflow("wf-b", WF_B, Some(2)),
            vec![
                with_status(step("s3", "Build", None, Some(2)), StepStatus::Running),
                with_status(step("s4", "Test", None, None), StepStatus::Pending),
            ],
        );
        let mut builds: HashMap<_, _> = [
            tracked(build("web", 1, 100), vec![failed]),
            tracked(build("web", 2, 200), vec![running]),
        ]
        .into_iter()
        .collect();
        let o = outcomes(&builds);
        assert!(o.gaps.is_empty());
        let got: Vec<(&str, &str, StepStatus)> = o
            .conclusive
            .iter()
            .map(|(_, c)| {
                (
                    &*c.step.exec.name,
                    c.build.build.version.as_str(),
                    c.step.exec.status.clone(),
                )
            })
            .collect();
        // "Test" never concluded in a tracked build: no outcome at all.
        assert_eq!(got, [("Build", "1.0.0/1", StepStatus::Failed)]);

        // The retry completes: it is the outcome now.
        let b2 = builds.get_mut(build("web", 2, 200).arn.as_ref()).unwrap();
        let steps = b2.workflows.as_mut().unwrap()[0].steps.as_mut().unwrap();
        steps[0].exec.status = StepStatus::Completed;
        let o = outcomes(&builds);
        assert_eq!(o.conclusive.len(), 1);
        assert_eq!(o.conclusive[0].1.build.build.version, "1.0.0/2");
    }

    #[test]
    fn an_older_execution_is_listed_only_while_some_step_is_undecided() {
        let old = workflow("wf-a", WF_B, Some(1));
        let older = workflow("wf-0", WF_B, Some(0));
        let newest = listed(
            workflow("wf-b", WF_B, Some(2)),
            vec![with_status(
                step("s3", "Build", None, Some(2)),
                StepStatus::Running,
            )],
        );
        let builds: HashMap<_, _> = [
            tracked(build("web", 0, 50), vec![older]),
            tracked(build("web", 1, 100), vec![old]),
            tracked(build("web", 2, 200), vec![newest]),
        ]
        .into_iter()
        .collect();
        let o = outcomes(&builds);
        // Only the next older one: the walk stops at the first unlisted.
        assert_eq!(
            o.gaps,
            [(build("web", 1, 100).arn.clone(), "wf-a".to_string())]
        );

        // Nothing undecided: no gap, however much history is unlisted.
        let done = listed(
            workflow("wf-b", WF_B, Some(2)),
            vec![step("s3", "Build", None, Some(2))],
        );
        let builds: HashMap<_, _> = [
            tracked(build("web", 1, 100), vec![workflow("wf-a", WF_B, Some(1))]),
            tracked(build("web", 2, 200), vec![done]),
        ]
        .into_iter()
        .collect();
        assert!(outcomes(&builds).gaps.is_empty());
    }

    #[test]
    fn versions_order_numerically() {
        let a = build("web", 9, 100);
        let b = build("web", 10, 100);
        assert_eq!(build_order(&a, &b), Ordering::Less);
    }
}

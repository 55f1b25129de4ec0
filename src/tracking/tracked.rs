//! What the exporter holds between refreshes, and which of it is "latest".
//!
//! Builds, their workflow executions and step executions are kept as last
//! read. Terminal things are frozen and never fetched again; the latest-state
//! metrics come from [`select_latest`], a pure function of this state.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::base::clock::Nanos;
use crate::model::{parse_arn, Build, BuildStatus, StepExecution, StepLimits, WorkflowExecution};

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
pub(crate) fn execution_order(
    a: &WorkflowExecution,
    ai: usize,
    b: &WorkflowExecution,
    bi: usize,
) -> Ordering {
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

/// Builds an image's newest ones are read from before ready: enough to
/// find the latest execution of each workflow its builds run.
const PRIORITY_DEPTH: usize = 3;

/// The builds the latest state is read from: those in flight, and for each
/// image its newest builds, newest first, down to its newest AVAILABLE one
/// (a build that completed ran every workflow; a newer one may have failed
/// or be running before its last workflow), at most [`PRIORITY_DEPTH`].
pub fn priority_builds(builds: &HashMap<Arc<str>, TrackedBuild>) -> HashSet<Arc<str>> {
    // (account, region, image) → its builds.
    type Image = (Arc<str>, Arc<str>, Arc<str>);
    let mut by_image: HashMap<Image, Vec<&TrackedBuild>> = HashMap::new();
    let mut out = HashSet::new();
    for tb in builds.values() {
        if !tb.build.status.is_terminal() {
            out.insert(tb.build.arn.clone());
        }
        let key = WorkflowKey::new(&tb.build, &tb.build.arn);
        by_image
            .entry((key.account_id, key.region, key.image))
            .or_default()
            .push(tb);
    }
    for list in by_image.values_mut() {
        list.sort_by(|a, b| build_order(&b.build, &a.build));
        for tb in list.iter().take(PRIORITY_DEPTH) {
            out.insert(tb.build.arn.clone());
            if tb.build.status == BuildStatus::Available {
                break;
            }
        }
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
            failure: None,
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

    pub fn with_status(mut s: TrackedStep, status: StepStatus) -> TrackedStep {
        s.exec.status = status;
        s
    }

    pub fn listed(mut w: TrackedWorkflow, steps: Vec<TrackedStep>) -> TrackedWorkflow {
        w.steps = Some(steps);
        w
    }

    pub fn tracked(b: Build, wfs: Vec<TrackedWorkflow>) -> (Arc<str>, TrackedBuild) {
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

    pub const WF_B: &str = "arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1";
    pub const WF_T: &str = "arn:aws:imagebuilder:us-east-1:aws:workflow/test/test-image/1.0.0/1";

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
    fn versions_order_numerically() {
        let a = build("web", 9, 100);
        let b = build("web", 10, 100);
        assert_eq!(build_order(&a, &b), Ordering::Less);
    }
}

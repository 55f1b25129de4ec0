//! The latest state as the rows the metrics show: a pure function of what
//! the tracker holds.
//!
//! Kept apart from the refresh (which decides what to read) and from the
//! snapshot (which encodes rows as text) so that "which execution is the
//! latest", "is this step's failure still open" and "which build is the
//! newest of an image" are decided in one place and tested without I/O.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::base::clock::Nanos;
use crate::model::{
    parse_arn, workflow_type_from_arn, Build, BuildStatus, FailureContext, Pipeline,
    RollbackStatus, StepDetail, StepStatus, WorkflowStatus,
};
use crate::tracking::counters::StepKey;
use crate::tracking::outcomes::outcomes;
use crate::tracking::tracked::{
    build_order, latest_steps, select_latest, TrackedBuild, TrackedStep, WorkflowKey,
};

/// The label values shared by an image's series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageKey {
    pub account_id: Arc<str>,
    pub region: Arc<str>,
    pub image: Arc<str>,
}

impl crate::metrics::labels::LabelSet<3> for ImageKey {
    const NAMES: [&'static str; 3] = crate::metrics::labels::IMAGE;
    fn values(&self) -> [&str; 3] {
        [&self.account_id, &self.region, &self.image]
    }
}

impl ImageKey {
    /// The image of `build` (account and region from its ARN).
    pub fn of(build: &Build) -> Self {
        let w = WorkflowKey::new(build, &build.arn);
        Self {
            account_id: w.account_id,
            region: w.region,
            image: w.image,
        }
    }
}

/// The image build version a row comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRef {
    /// `1.0.0/7`: the `image_version` label.
    pub version: String,
    pub arn: Arc<str>,
}

impl BuildRef {
    fn of(build: &Build) -> Self {
        Self {
            version: build.version.clone(),
            arn: build.arn.clone(),
        }
    }

    /// From a build version ARN alone (`…:image/name/1.0.0/7`).
    fn from_arn(arn: &Arc<str>) -> Self {
        let version = arn
            .rsplitn(3, '/')
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("/");
        Self {
            version,
            arn: arn.clone(),
        }
    }
}

/// The latest execution of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepView {
    pub key: StepKey,
    pub status: StepStatus,
    pub start: Option<Nanos>,
    pub end: Option<Nanos>,
    pub timeout_seconds: Option<i64>,
    pub rollback: Option<RollbackStatus>,
    pub build: BuildRef,
    pub on_failure: Option<Arc<str>>,
    pub attempt: Option<i32>,
    pub max_attempts: Option<i32>,
}

/// A step whose last conclusive execution failed: open until a later
/// execution of the step completes, or the failed build leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureView {
    pub key: StepKey,
    pub build: BuildRef,
    pub message: Option<String>,
    pub end: Option<Nanos>,
}

/// The latest execution of one workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowView {
    pub key: WorkflowKey,
    pub workflow_type: Arc<str>,
    pub status: WorkflowStatus,
    pub start: Option<Nanos>,
    pub end: Option<Nanos>,
    pub total: Option<i64>,
    pub succeeded: Option<i64>,
    pub failed: Option<i64>,
    pub skipped: Option<i64>,
    pub build: BuildRef,
    pub message: Option<String>,
}

impl WorkflowView {
    /// Failed, whether or not it has rolled back.
    pub fn failed(&self) -> bool {
        matches!(
            self.status,
            WorkflowStatus::Failed
                | WorkflowStatus::RollbackInProgress
                | WorkflowStatus::RollbackCompleted
        )
    }
}

/// The newest build of an image.
#[derive(Debug, Clone, PartialEq)]
pub struct NewestBuild {
    pub build: BuildRef,
    pub status: BuildStatus,
    pub build_type: Option<String>,
    pub log_group: String,
    pub reason: Option<String>,
    /// Values of the allow-listed tags, in the allow-list's order.
    pub tags: Vec<Option<String>>,
    /// Where it failed, as the service says (`state.failureContext`).
    pub failure: Option<FailureContext>,
}

/// One image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageView {
    pub key: ImageKey,
    /// `None` when no build of the image is tracked (only its last success
    /// is known).
    pub newest: Option<NewestBuild>,
    /// `dateCreated` of its newest AVAILABLE build, whatever its age.
    pub last_success: Option<Nanos>,
}

/// Everything a snapshot shows, sorted by labels so that equal states
/// compare equal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Views {
    pub steps: Vec<StepView>,
    pub failures: Vec<FailureView>,
    pub workflows: Vec<WorkflowView>,
    pub images: Vec<ImageView>,
    pub pipelines: Vec<PipelineView>,
}

/// The label values of a pipeline's series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineKey {
    pub account_id: Arc<str>,
    pub region: Arc<str>,
    pub pipeline: Arc<str>,
    /// The image its builds carry: its recipe's name (empty when the
    /// pipeline names no recipe).
    pub image: Arc<str>,
}

impl crate::metrics::labels::LabelSet<4> for PipelineKey {
    const NAMES: [&'static str; 4] = crate::metrics::labels::PIPELINE;
    fn values(&self) -> [&str; 4] {
        [&self.account_id, &self.region, &self.pipeline, &self.image]
    }
}

/// One image pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineView {
    pub key: PipelineKey,
    pub pipeline: Pipeline,
}

impl Views {
    /// The (account, region) pairs the rows belong to: what a target
    /// "serves", to find two targets reading one account.
    pub fn scopes(&self) -> Vec<(Arc<str>, Arc<str>)> {
        let mut s: Vec<(Arc<str>, Arc<str>)> = self
            .images
            .iter()
            .map(|i| (i.key.account_id.clone(), i.key.region.clone()))
            .chain(self.steps.iter().map(|v| {
                (
                    v.key.workflow.account_id.clone(),
                    v.key.workflow.region.clone(),
                )
            }))
            .chain(
                self.pipelines
                    .iter()
                    .map(|p| (p.key.account_id.clone(), p.key.region.clone())),
            )
            .collect();
        s.sort();
        s.dedup();
        s
    }
}

/// What the views are built from.
pub struct Input<'a> {
    pub builds: &'a HashMap<Arc<str>, TrackedBuild>,
    /// Steps followed through `--step-execution-id`, as last read.
    pub direct: Vec<&'a StepDetail>,
    /// `dateCreated` of the newest AVAILABLE build of each image.
    pub last_success: &'a HashMap<ImageKey, Nanos>,
    /// The tag keys of `--labels.image-tags`.
    pub tag_keys: &'a [String],
    /// The account's image pipelines.
    pub pipelines: &'a [Pipeline],
    /// Image names by the name segment of their ARNs.
    pub image_names: &'a HashMap<Arc<str>, Arc<str>>,
    /// `--filter.image-name`, applied to the pipelines' `image` label.
    pub image_filter: Option<&'a regex::Regex>,
}

/// Builds the views.
pub fn build(input: &Input<'_>) -> Views {
    let builds = input.builds;
    let mut steps = Vec::new();
    let mut workflows = Vec::new();
    for l in select_latest(builds) {
        let tb = &builds[&l.build_arn];
        let w = &tb.workflows.as_deref().unwrap_or_default()[l.index];
        let e = &w.exec;
        let wtype: Arc<str> = Arc::from(e.workflow_type.as_str());
        let build = BuildRef::of(&tb.build);
        workflows.push(WorkflowView {
            key: l.key.clone(),
            workflow_type: wtype.clone(),
            status: e.status.clone(),
            start: e.start,
            end: e.end,
            total: e.total_steps,
            succeeded: e.steps_succeeded,
            failed: e.steps_failed,
            skipped: e.steps_skipped,
            build: build.clone(),
            message: e.message.clone(),
        });
        for s in latest_steps(w.steps.as_deref().unwrap_or_default()) {
            steps.push(step_view(step_key(&l.key, &wtype, s), s, build.clone()));
        }
    }

    let mut failures: Vec<FailureView> = outcomes(builds)
        .conclusive
        .into_iter()
        .filter(|(_, c)| c.step.exec.status == StepStatus::Failed)
        .map(|(key, c)| FailureView {
            key: step_key(&key, c.workflow.exec.workflow_type.as_str(), c.step),
            build: BuildRef::of(&c.build.build),
            message: c.step.exec.message.clone(),
            end: c.step.exec.end,
        })
        .collect();

    add_direct(input, &mut steps, &mut failures);
    steps.sort_by(|a, b| a.key.cmp(&b.key));
    failures.sort_by(|a, b| a.key.cmp(&b.key));

    Views {
        steps,
        failures,
        workflows,
        images: images(input),
        pipelines: pipelines(input),
    }
}

/// One row per pipeline whose image passes `--filter.image-name`.
fn pipelines(input: &Input<'_>) -> Vec<PipelineView> {
    let mut out: Vec<PipelineView> = input
        .pipelines
        .iter()
        .filter_map(|p| {
            // The converter only keeps pipelines whose ARN parses.
            let parts = parse_arn(&p.arn)?;
            let image: Arc<str> = match &p.recipe {
                Some(r) => input
                    .image_names
                    .get(r)
                    .cloned()
                    .unwrap_or_else(|| r.clone()),
                None => Arc::from(""),
            };
            if input.image_filter.is_some_and(|re| !re.is_match(&image)) {
                return None;
            }
            Some(PipelineView {
                key: PipelineKey {
                    account_id: Arc::from(parts.account_id),
                    region: Arc::from(parts.region),
                    pipeline: p.name.clone(),
                    image,
                },
                pipeline: p.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    // Names are unique in an account and Region; a listing that says
    // otherwise must not give two series of one name.
    out.dedup_by(|a, b| a.key == b.key);
    out
}

/// The labels of step `s` of workflow `wkey`.
pub(crate) fn step_key(wkey: &WorkflowKey, workflow_type: &str, s: &TrackedStep) -> StepKey {
    StepKey {
        workflow: wkey.clone(),
        workflow_type: Arc::from(workflow_type),
        step_name: s.exec.name.clone(),
        action: s.exec.action.clone(),
    }
}

fn step_view(key: StepKey, s: &TrackedStep, build: BuildRef) -> StepView {
    StepView {
        key,
        status: s.exec.status.clone(),
        start: s.exec.start,
        end: s.exec.end,
        timeout_seconds: s.limits.timeout_seconds(),
        rollback: s.exec.rollback_status.clone(),
        build,
        on_failure: s.on_failure.clone(),
        attempt: s.exec.attempt,
        max_attempts: s.exec.max_attempts,
    }
}

/// Direct steps fill in what discovery does not show; for one set of
/// labels, the newest start wins.
fn add_direct(input: &Input<'_>, steps: &mut Vec<StepView>, failures: &mut Vec<FailureView>) {
    let names = build_names(input.builds);
    let mut seen: HashSet<StepKey> = steps.iter().map(|s| s.key.clone()).collect();
    let failed: HashSet<StepKey> = failures.iter().map(|f| f.key.clone()).collect();
    let mut direct: Vec<(StepKey, &StepDetail)> = input
        .direct
        .iter()
        .filter_map(|d| Some((direct_key(d, &names)?, *d)))
        .collect();
    direct.sort_by_key(|(_, d)| std::cmp::Reverse(d.step.start));
    for (key, d) in direct {
        if !seen.insert(key.clone()) {
            continue;
        }
        let Some(build_arn) = &d.build_arn else {
            continue;
        };
        let build = BuildRef::from_arn(build_arn);
        if d.step.status == StepStatus::Failed && !failed.contains(&key) {
            failures.push(FailureView {
                key: key.clone(),
                build: build.clone(),
                message: d.step.message.clone(),
                end: d.step.end,
            });
        }
        steps.push(StepView {
            key,
            status: d.step.status.clone(),
            start: d.step.start,
            end: d.step.end,
            timeout_seconds: d.limits.timeout_seconds,
            rollback: d.step.rollback_status.clone(),
            build,
            on_failure: d.on_failure.as_deref().map(Arc::from),
            attempt: d.step.attempt,
            max_attempts: d.step.max_attempts,
        });
    }
}

/// The image name of each tracked build, by ARN.
pub(crate) fn build_names(builds: &HashMap<Arc<str>, TrackedBuild>) -> HashMap<&str, &Arc<str>> {
    builds
        .values()
        .map(|b| (&*b.build.arn, &b.build.name))
        .collect()
}

/// Labels of a step known only from `GetWorkflowStepExecution`: everything
/// comes from the ARNs it carries (the image's name from a tracked build
/// when there is one: the ARN has it lower-cased).
pub(crate) fn direct_key(d: &StepDetail, names: &HashMap<&str, &Arc<str>>) -> Option<StepKey> {
    let build_arn = d.build_arn.as_ref()?;
    let workflow_arn = d.workflow_arn.as_ref()?;
    let parts = parse_arn(build_arn)?;
    let image = names
        .get(&**build_arn)
        .map(|n| (*n).clone())
        .unwrap_or_else(|| Arc::from(parts.name));
    let wtype = workflow_type_from_arn(workflow_arn)?;
    Some(StepKey {
        workflow: WorkflowKey {
            account_id: Arc::from(parts.account_id),
            region: Arc::from(parts.region),
            image,
            workflow_arn: workflow_arn.clone(),
        },
        workflow_type: Arc::from(wtype.as_str()),
        step_name: d.step.name.clone(),
        action: d.step.action.clone(),
    })
}

/// One row per image: its newest tracked build, and its last success.
fn images(input: &Input<'_>) -> Vec<ImageView> {
    let mut newest: BTreeMap<ImageKey, &Build> = BTreeMap::new();
    for tb in input.builds.values() {
        let slot = newest.entry(ImageKey::of(&tb.build)).or_insert(&tb.build);
        if build_order(&tb.build, slot).is_gt() {
            *slot = &tb.build;
        }
    }
    let mut out: BTreeMap<ImageKey, ImageView> = newest
        .into_iter()
        .map(|(key, b)| {
            let view = ImageView {
                key: key.clone(),
                newest: Some(NewestBuild {
                    build: BuildRef::of(b),
                    status: b.status.clone(),
                    build_type: b.build_type.clone(),
                    log_group: b.log_group(),
                    reason: b.reason.clone(),
                    tags: input
                        .tag_keys
                        .iter()
                        .map(|k| b.tags.get(k).cloned())
                        .collect(),
                    failure: b.failure.clone(),
                }),
                last_success: None,
            };
            (key, view)
        })
        .collect();
    for (key, t) in input.last_success {
        out.entry(key.clone())
            .or_insert_with(|| ImageView {
                key: key.clone(),
                newest: None,
                last_success: None,
            })
            .last_success = Some(*t);
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::tracked::tests::{build, step, workflow};
    use crate::tracking::tracked::TrackedWorkflow;

    const WF_B: &str = "arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1";

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

    fn failed(id: &str, name: &str, start: i64, message: &str) -> TrackedStep {
        let mut s = step(id, name, None, Some(start));
        s.exec.status = StepStatus::Failed;
        s.exec.end = Some(start + 5);
        s.exec.message = Some(message.into());
        s
    }

    fn views(builds: &HashMap<Arc<str>, TrackedBuild>, last: &HashMap<ImageKey, Nanos>) -> Views {
        super::build(&Input {
            builds,
            direct: Vec::new(),
            last_success: last,
            tag_keys: &["team".to_string(), "env".to_string()],
            pipelines: &[],
            image_names: &HashMap::new(),
            image_filter: None,
        })
    }

    #[test]
    fn a_failure_stays_open_while_a_newer_build_retries_the_step() {
        let mut w1 = workflow("wf-a", WF_B, Some(10));
        w1.steps = Some(vec![failed("s1", "Build", 10, "exit code 1")]);
        let mut w2 = workflow("wf-b", WF_B, Some(20));
        let mut retry = step("s2", "Build", None, Some(20));
        retry.exec.status = StepStatus::Running;
        w2.steps = Some(vec![retry]);
        let mut b2 = build("web", 2, 200);
        b2.status = BuildStatus::Building;
        b2.tags.insert("team".into(), "platform".into());
        let builds: HashMap<_, _> = [
            tracked(build("web", 1, 100), vec![w1]),
            tracked(b2, vec![w2]),
        ]
        .into_iter()
        .collect();
        let v = views(&builds, &HashMap::new());
        // The latest execution is the retry…
        assert_eq!(v.steps.len(), 1);
        assert_eq!(v.steps[0].status, StepStatus::Running);
        assert_eq!(v.steps[0].build.version, "1.0.0/2");
        // …and the failure it has not fixed yet is still open.
        assert_eq!(v.failures.len(), 1);
        assert_eq!(v.failures[0].build.version, "1.0.0/1");
        assert_eq!(v.failures[0].message.as_deref(), Some("exit code 1"));
        assert_eq!(v.failures[0].end, Some(15));
        // The image shows its newest build and its allow-listed tags.
        let img = v.images[0].newest.as_ref().unwrap();
        assert_eq!(img.build.version, "1.0.0/2");
        assert_eq!(img.status, BuildStatus::Building);
        assert_eq!(img.tags, [Some("platform".to_string()), None]);
        assert_eq!(img.log_group, "/aws/imagebuilder/web");
    }

    #[test]
    fn the_last_success_of_an_image_is_shown_even_without_a_tracked_build() {
        let key = ImageKey {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            image: "old".into(),
        };
        let last: HashMap<_, _> = [(key.clone(), 42)].into_iter().collect();
        let v = views(&HashMap::new(), &last);
        assert_eq!(v.images.len(), 1);
        assert_eq!(v.images[0].key, key);
        assert_eq!(v.images[0].last_success, Some(42));
        assert!(v.images[0].newest.is_none());
    }

    #[test]
    fn build_refs_read_the_version_from_an_arn() {
        let arn: Arc<str> =
            Arc::from("arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.2.3/7");
        assert_eq!(BuildRef::from_arn(&arn).version, "1.2.3/7");
    }
}

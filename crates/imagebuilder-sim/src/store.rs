//! The simulator's world: builds (`build.rs`) and pipelines
//! (`pipelines.rs`) of one account, evaluated against the simulator's clock
//! at each request. Planned builds created in the future stay invisible
//! until their creation time.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use crate::clock::Nanos;

pub use crate::build::{
    FixedStep, FixedWorkflow, Outcome, SimBuild, SimStep, SimWorkflow, StepPlan, StepState,
    WorkflowState, QUEUE_DELAY, ROLLBACK,
};
use crate::pipelines::{count, PipelineState, Run, SimPipeline};

/// Where a workflow execution or step lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    build: usize,
    workflow: usize,
    step: usize,
}

/// What the pipelines' counts need of the builds, computed once per
/// change of the store (nothing in it depends on the time it is asked at).
#[derive(Debug, Default, Clone)]
struct PipelineIndex {
    /// Pipeline ARN → its builds, in creation order.
    runs: HashMap<String, Vec<Run>>,
    /// Pipeline ARN → when its count disabled it (at any time).
    disabled_at: HashMap<String, Nanos>,
}

/// What changed since the last [`Store::take_touched`].
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Touched {
    /// ARNs of builds added, changed or deleted; `None`: possibly all.
    pub(crate) builds: Option<Vec<String>>,
    /// A pipeline was added, changed or deleted.
    pub(crate) pipelines: bool,
}

/// All builds and pipelines of the simulated account, with lookups by ID.
#[derive(Debug, Default, Clone)]
pub struct Store {
    builds: Vec<Option<SimBuild>>,
    by_arn: BTreeMap<String, usize>,
    workflows: HashMap<String, Location>,
    steps: HashMap<String, Location>,
    pipelines: BTreeMap<String, SimPipeline>,
    /// Built at the first look after a change (`&self`: requests only read
    /// the store); reset by every change.
    index: OnceLock<PipelineIndex>,
    /// ARNs of builds added, changed or deleted since the last
    /// `take_touched`, so that the event publisher re-reads only those;
    /// `touched_all` after a change to every build.
    touched: Vec<String>,
    touched_all: bool,
    touched_pipelines: bool,
}

impl Store {
    pub fn insert(&mut self, b: SimBuild) {
        self.index = OnceLock::new();
        if self.by_arn.contains_key(&b.arn) {
            self.remove(&b.arn.clone());
        }
        let i = self.builds.len();
        for (wi, w) in b.workflows.iter().enumerate() {
            self.workflows.insert(
                w.id.clone(),
                Location {
                    build: i,
                    workflow: wi,
                    step: 0,
                },
            );
            for (si, s) in w.steps.iter().enumerate() {
                self.steps.insert(
                    s.id.clone(),
                    Location {
                        build: i,
                        workflow: wi,
                        step: si,
                    },
                );
            }
        }
        self.by_arn.insert(b.arn.clone(), i);
        self.touched.push(b.arn.clone());
        self.builds.push(Some(b));
    }

    /// Deletes a build, as `DeleteImage` would.
    pub fn remove(&mut self, arn: &str) -> Option<SimBuild> {
        let i = self.by_arn.remove(arn)?;
        self.index = OnceLock::new();
        self.touched.push(arn.to_string());
        let b = self.builds[i].take()?;
        for w in &b.workflows {
            self.workflows.remove(&w.id);
            for s in &w.steps {
                self.steps.remove(&s.id);
            }
        }
        Some(b)
    }

    /// Builds visible at `now`, in ARN order: created by then, and not a
    /// scheduled build its pipeline, disabled by its count, never started.
    pub fn visible(&self, now: Nanos) -> impl Iterator<Item = &SimBuild> {
        self.by_arn
            .values()
            .filter_map(|i| self.builds[*i].as_ref())
            .filter(move |b| b.date_created <= now && !self.hidden(b))
    }

    pub fn build(&self, arn: &str, now: Nanos) -> Option<&SimBuild> {
        let b = self.builds[*self.by_arn.get(arn)?].as_ref()?;
        (b.date_created <= now && !self.hidden(b)).then_some(b)
    }

    pub fn build_mut(&mut self, arn: &str) -> Option<&mut SimBuild> {
        let i = *self.by_arn.get(arn)?;
        self.touched.push(arn.to_string());
        self.index = OnceLock::new();
        self.builds[i].as_mut()
    }

    /// Changes every build in place (IDs and ARNs must not change).
    pub fn for_each_build(&mut self, mut f: impl FnMut(&mut SimBuild)) {
        self.touched_all = true;
        self.index = OnceLock::new();
        for b in self.builds.iter_mut().flatten() {
            f(b);
        }
    }

    /// The build and index of a workflow execution (of a build that
    /// exists, whatever its creation time).
    pub fn workflow(&self, id: &str) -> Option<(&SimBuild, usize)> {
        let l = self.workflows.get(id)?;
        let b = self.builds[l.build].as_ref()?;
        (!self.hidden(b)).then_some((b, l.workflow))
    }

    /// The build, workflow index and step index of a step execution.
    pub fn step(&self, id: &str) -> Option<(&SimBuild, usize, usize)> {
        let l = self.steps.get(id)?;
        let b = self.builds[l.build].as_ref()?;
        (!self.hidden(b)).then_some((b, l.workflow, l.step))
    }

    /// Adds a pipeline, or replaces the one with its ARN.
    pub fn insert_pipeline(&mut self, p: SimPipeline) {
        self.changed_pipelines();
        self.pipelines.insert(p.arn.clone(), p);
    }

    /// Deletes a pipeline, as `DeleteImagePipeline` would (its builds stay).
    pub fn remove_pipeline(&mut self, arn: &str) -> Option<SimPipeline> {
        self.changed_pipelines();
        self.pipelines.remove(arn)
    }

    pub fn pipeline_mut(&mut self, arn: &str) -> Option<&mut SimPipeline> {
        self.changed_pipelines();
        self.pipelines.get_mut(arn)
    }

    /// Every pipeline, in ARN order.
    pub fn pipelines(&self) -> impl Iterator<Item = &SimPipeline> {
        self.pipelines.values()
    }

    /// The state of pipeline `arn` at `now`, from its builds (see
    /// `pipelines.rs` for the rules).
    pub fn pipeline_state(&self, arn: &str, now: Nanos) -> Option<PipelineState> {
        let p = self.pipelines.get(arn)?;
        let runs = self.index().runs.get(arn).map_or(&[][..], Vec::as_slice);
        let c = count(p, runs, now);
        let newest = runs
            .iter()
            .rev()
            .find(|r| r.created <= now && !r.hidden(c.disabled_at));
        let disabled = p.disabled_by_hand || c.disabled_at.is_some();
        Some(PipelineState {
            status: if disabled { "DISABLED" } else { "ENABLED" }.into(),
            consecutive_failures: c.consecutive,
            last_run_status: newest
                .and_then(|r| self.build(&r.arn, now))
                .map(|b| b.status(now)),
            next_run: p
                .schedule
                .as_ref()
                .filter(|_| !disabled)
                .and_then(|s| s.next_run(now)),
            disabled_at: c.disabled_at,
        })
    }

    /// When pipeline `arn`'s count disables it, whether that is past or
    /// to come (the builds are planned); `None`: it never does.
    pub(crate) fn auto_disabled_at(&self, arn: &str) -> Option<Nanos> {
        self.index().disabled_at.get(arn).copied()
    }

    fn changed_pipelines(&mut self) {
        self.touched_pipelines = true;
        self.index = OnceLock::new();
    }

    /// A scheduled build of a pipeline created after its count disabled it.
    fn hidden(&self, b: &SimBuild) -> bool {
        if self.pipelines.is_empty() || b.build_type != "SCHEDULED" {
            return false;
        }
        b.pipeline_arn
            .as_ref()
            .and_then(|p| self.index().disabled_at.get(p))
            .is_some_and(|d| b.date_created > *d)
    }

    fn index(&self) -> &PipelineIndex {
        self.index.get_or_init(|| {
            let mut runs: HashMap<String, Vec<Run>> = HashMap::new();
            for b in self.builds.iter().flatten() {
                if let Some(p) = b
                    .pipeline_arn
                    .as_ref()
                    .filter(|p| self.pipelines.contains_key(*p))
                {
                    runs.entry(p.clone()).or_default().push(Run::of(b));
                }
            }
            for r in runs.values_mut() {
                r.sort_by(|a, b| (a.created, &a.arn).cmp(&(b.created, &b.arn)));
            }
            let disabled_at = self
                .pipelines
                .values()
                .filter_map(|p| {
                    let r = runs.get(&p.arn).map_or(&[][..], Vec::as_slice);
                    Some((p.arn.clone(), count(p, r, Nanos::MAX).disabled_at?))
                })
                .collect();
            PipelineIndex { runs, disabled_at }
        })
    }

    pub fn len(&self) -> usize {
        self.by_arn.len()
    }

    /// What was touched since the last call.
    pub(crate) fn take_touched(&mut self) -> Touched {
        let all = std::mem::take(&mut self.touched_all);
        let touched = std::mem::take(&mut self.touched);
        Touched {
            builds: (!all).then_some(touched),
            pipelines: std::mem::take(&mut self.touched_pipelines),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_arn.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build_tests::{at, build};
    use crate::clock::NANOS_PER_SEC;
    use crate::pipelines::SimSchedule;

    const HOUR: i64 = 3600;

    #[test]
    fn the_store_finds_things_and_forgets_deleted_builds() {
        let mut st = Store::default();
        st.insert(build(Outcome::Completed));
        assert!(st.step("3").is_some());
        assert!(st.workflow("wf-2").is_some());
        assert_eq!(st.visible(at(-1)).count(), 0, "created in the future");
        assert_eq!(st.visible(at(0)).count(), 1);
        st.remove("arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/1");
        assert!(st.step("3").is_none());
        assert_eq!(st.len(), 0);
    }

    const P: &str = "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/web";
    const MIN: i64 = 60;

    fn pipeline(failure_count: Option<i32>) -> SimPipeline {
        SimPipeline {
            arn: P.into(),
            name: "web".into(),
            schedule: Some(SimSchedule {
                failure_count,
                ..SimSchedule::new("rate(1 hour)", 3600 * NANOS_PER_SEC, at(0))
            }),
            ..SimPipeline::default()
        }
    }

    /// Build `n` of the pipeline, created `n` minutes from the start; a
    /// failure ends 35 s after creation, a success 50 s after.
    fn run(n: u32, outcome: Outcome, scheduled: bool) -> SimBuild {
        let mut b = build(outcome);
        b.arn = format!("arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/{n}");
        b.date_created = at(i64::from(n) * MIN);
        for w in &mut b.workflows {
            w.id = format!("{}-{n}", w.id);
            for s in &mut w.steps {
                s.id = format!("{}-{n}", s.id);
            }
        }
        b.pipeline_arn = Some(P.into());
        if !scheduled {
            b.build_type = "USER_INITIATED".into();
        }
        b
    }

    fn state(st: &Store, secs: i64) -> PipelineState {
        st.pipeline_state(P, at(secs)).unwrap()
    }

    #[test]
    fn a_pipeline_s_state_follows_its_builds() {
        let mut st = Store::default();
        st.insert_pipeline(pipeline(Some(3)));
        let s = state(&st, 0);
        assert_eq!((s.status.as_str(), s.consecutive_failures), ("ENABLED", 0));
        assert_eq!(s.last_run_status, None);
        assert_eq!(s.next_run, Some(at(3600)));
        st.insert(run(1, Outcome::Failed, true));
        // Running, then failed: scheduled, it counts.
        let s = state(&st, MIN + 20);
        assert_eq!(
            (s.last_run_status.as_deref(), s.consecutive_failures),
            (Some("BUILDING"), 0)
        );
        let s = state(&st, MIN + 35);
        assert_eq!(
            (s.last_run_status.as_deref(), s.consecutive_failures),
            (Some("FAILED"), 1)
        );
        // A manual failure leaves the count, a manual success resets it.
        st.insert(run(2, Outcome::Failed, false));
        assert_eq!(state(&st, 3 * MIN).consecutive_failures, 1);
        st.insert(run(3, Outcome::Completed, false));
        let s = state(&st, 4 * MIN);
        assert_eq!(
            (s.last_run_status.as_deref(), s.consecutive_failures),
            (Some("AVAILABLE"), 0)
        );
        // Builds of other pipelines, or of none, do not count.
        let mut other = run(4, Outcome::Failed, true);
        other.pipeline_arn = None;
        st.insert(other);
        assert_eq!(state(&st, 5 * MIN).consecutive_failures, 0);
        assert_eq!(
            state(&st, 5 * MIN).last_run_status.as_deref(),
            Some("AVAILABLE")
        );
        assert_eq!(st.pipeline_state("arn:nope", at(0)), None);
    }

    #[test]
    fn reaching_the_count_disables_and_hides_later_scheduled_builds() {
        let mut st = Store::default();
        st.insert_pipeline(pipeline(Some(2)));
        for (n, scheduled) in [(1, true), (2, true), (3, true), (4, false)] {
            st.insert(run(n, Outcome::Failed, scheduled));
        }
        let s = state(&st, 2 * MIN + 34);
        assert_eq!((s.status.as_str(), s.consecutive_failures), ("ENABLED", 1));
        assert_eq!(
            st.auto_disabled_at(P),
            Some(at(2 * MIN + 35)),
            "known ahead"
        );
        let s = state(&st, 2 * MIN + 35);
        assert_eq!((s.status.as_str(), s.consecutive_failures), ("DISABLED", 2));
        assert_eq!(s.disabled_at, Some(at(2 * MIN + 35)));
        assert_eq!(s.next_run, None);
        // Build 3, scheduled after, never started; build 4 was manual.
        let hidden = "arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/3";
        let names: Vec<&str> = st.visible(at(HOUR)).map(|b| b.version.as_str()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(st.build(hidden, at(HOUR)).is_none());
        assert!(st.workflow("wf-1-3").is_none() && st.step("2-3").is_none());
        assert!(st.workflow("wf-1-4").is_some());
        assert_eq!(state(&st, HOUR).last_run_status.as_deref(), Some("FAILED"));
        // The pipeline deleted, its builds are all there again.
        st.remove_pipeline(P);
        assert!(st.build(hidden, at(HOUR)).is_some());
    }

    #[test]
    fn disabled_by_hand_below_its_count_it_stays_disabled() {
        let mut st = Store::default();
        let mut p = pipeline(Some(3));
        p.initial_failures = 1;
        p.disabled_by_hand = true;
        st.insert_pipeline(p);
        st.insert(run(1, Outcome::Failed, false));
        let s = state(&st, HOUR);
        assert_eq!((s.status.as_str(), s.consecutive_failures), ("DISABLED", 1));
        assert_eq!((s.disabled_at, s.next_run), (None, None));
        // Enabled again: ENABLED, with its count.
        st.pipeline_mut(P).unwrap().disabled_by_hand = false;
        let s = state(&st, HOUR);
        assert_eq!((s.status.as_str(), s.consecutive_failures), ("ENABLED", 1));
        assert!(s.next_run.is_some());
    }

    #[test]
    fn without_a_policy_five_failures_disable_a_scheduled_pipeline() {
        let mut st = Store::default();
        st.insert_pipeline(pipeline(None));
        for n in 1..=4 {
            st.insert(run(n, Outcome::Failed, true));
        }
        assert_eq!(state(&st, HOUR).status, "ENABLED");
        assert_eq!(st.auto_disabled_at(P), None);
        // Changing a build is seen at once.
        st.insert(run(5, Outcome::Failed, true));
        let s = state(&st, HOUR);
        assert_eq!((s.status.as_str(), s.consecutive_failures), ("DISABLED", 5));
        st.build_mut("arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/5")
            .unwrap()
            .fixed_status = Some("AVAILABLE".into());
        assert_eq!(state(&st, HOUR).status, "ENABLED");
        assert_eq!(state(&st, HOUR).consecutive_failures, 0);
    }

    #[test]
    fn pipeline_changes_are_touched() {
        let mut st = Store::default();
        let _ = st.take_touched();
        st.insert_pipeline(pipeline(None));
        assert_eq!(
            st.take_touched(),
            Touched {
                builds: Some(Vec::new()),
                pipelines: true
            }
        );
        assert_eq!(
            st.take_touched(),
            Touched {
                builds: Some(Vec::new()),
                pipelines: false
            }
        );
        assert_eq!(st.pipelines().count(), 1);
        assert!(st.remove_pipeline(P).is_some());
        assert!(st.take_touched().pipelines);
        assert_eq!(st.pipelines().count(), 0);
    }
}

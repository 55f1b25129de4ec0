//! The simulator's world: builds (`build.rs`) and pipelines
//! (`pipelines.rs`) of one account, evaluated against the simulator's clock
//! at each request. Planned builds created in the future stay invisible
//! until their creation time.

use std::collections::{BTreeMap, HashMap};

use crate::clock::Nanos;

pub use super::build::{
    FixedStep, FixedWorkflow, Outcome, SimBuild, SimStep, SimWorkflow, StepPlan, StepState,
    WorkflowState, QUEUE_DELAY, ROLLBACK,
};

/// Where a workflow execution or step lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    build: usize,
    workflow: usize,
    step: usize,
}

/// All builds of the simulated account, with lookups by ID.
#[derive(Debug, Default, Clone)]
pub struct Store {
    builds: Vec<Option<SimBuild>>,
    by_arn: BTreeMap<String, usize>,
    workflows: HashMap<String, Location>,
    steps: HashMap<String, Location>,
    /// ARNs of builds added, changed or deleted since the last
    /// `take_touched`, so that the event publisher re-reads only those;
    /// `touched_all` after a change to every build.
    touched: Vec<String>,
    touched_all: bool,
}

impl Store {
    pub fn insert(&mut self, b: SimBuild) {
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

    /// Builds visible at `now`, in ARN order.
    pub fn visible(&self, now: Nanos) -> impl Iterator<Item = &SimBuild> {
        self.by_arn
            .values()
            .filter_map(|i| self.builds[*i].as_ref())
            .filter(move |b| b.date_created <= now)
    }

    pub fn build(&self, arn: &str, now: Nanos) -> Option<&SimBuild> {
        let b = self.builds[*self.by_arn.get(arn)?].as_ref()?;
        (b.date_created <= now).then_some(b)
    }

    pub fn build_mut(&mut self, arn: &str) -> Option<&mut SimBuild> {
        let i = *self.by_arn.get(arn)?;
        self.touched.push(arn.to_string());
        self.builds[i].as_mut()
    }

    /// Changes every build in place (IDs and ARNs must not change).
    pub fn for_each_build(&mut self, mut f: impl FnMut(&mut SimBuild)) {
        self.touched_all = true;
        for b in self.builds.iter_mut().flatten() {
            f(b);
        }
    }

    /// The build and index of a workflow execution.
    pub fn workflow(&self, id: &str) -> Option<(&SimBuild, usize)> {
        let l = self.workflows.get(id)?;
        Some((self.builds[l.build].as_ref()?, l.workflow))
    }

    /// The build, workflow index and step index of a step execution.
    pub fn step(&self, id: &str) -> Option<(&SimBuild, usize, usize)> {
        let l = self.steps.get(id)?;
        Some((self.builds[l.build].as_ref()?, l.workflow, l.step))
    }

    pub fn len(&self) -> usize {
        self.by_arn.len()
    }

    /// The builds touched since the last call; `None`: possibly all.
    pub(crate) fn take_touched(&mut self) -> Option<Vec<String>> {
        let all = std::mem::take(&mut self.touched_all);
        let touched = std::mem::take(&mut self.touched);
        (!all).then_some(touched)
    }

    pub fn is_empty(&self) -> bool {
        self.by_arn.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::build_tests::{at, build};

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
}

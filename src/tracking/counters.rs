//! The process-lifetime step metrics: how many step executions reached each
//! terminal status, and how long they took.
//!
//! Kept as plain maps, encoded by the snapshot once per refresh (they only
//! change then).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::base::clock::{secs, Nanos};
use crate::metrics::family::DURATION_BUCKETS;
use crate::metrics::labels::{self, LabelSet};
use crate::model::StepStatus;
use crate::tracking::tracked::WorkflowKey;

/// The label values of one step's series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepKey {
    pub workflow: WorkflowKey,
    pub workflow_type: Arc<str>,
    pub step_name: Arc<str>,
    pub action: Arc<str>,
}

impl LabelSet<7> for StepKey {
    const NAMES: [&'static str; 7] = labels::STEP;
    fn values(&self) -> [&str; 7] {
        [
            &self.workflow.account_id,
            &self.workflow.region,
            &self.workflow.image,
            &self.workflow.workflow_arn,
            &self.workflow_type,
            &self.step_name,
            &self.action,
        ]
    }
}

impl StepKey {
    fn histogram_key(&self) -> HistogramKey {
        HistogramKey {
            account_id: self.workflow.account_id.clone(),
            region: self.workflow.region.clone(),
            workflow_arn: self.workflow.workflow_arn.clone(),
            workflow_type: self.workflow_type.clone(),
            step_name: self.step_name.clone(),
            action: self.action.clone(),
        }
    }
}

/// The labels of one histogram series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HistogramKey {
    account_id: Arc<str>,
    region: Arc<str>,
    workflow_arn: Arc<str>,
    workflow_type: Arc<str>,
    step_name: Arc<str>,
    action: Arc<str>,
}

impl LabelSet<6> for HistogramKey {
    const NAMES: [&'static str; 6] = labels::HISTOGRAM;
    fn values(&self) -> [&str; 6] {
        [
            &self.account_id,
            &self.region,
            &self.workflow_arn,
            &self.workflow_type,
            &self.step_name,
            &self.action,
        ]
    }
}

/// Observed durations of one histogram series.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Non-cumulative counts per bucket of [`DURATION_BUCKETS`]; the last
    /// slot is +Inf.
    pub buckets: [u64; DURATION_BUCKETS.len() + 1],
    pub sum: f64,
}

/// `imagebuilder_workflow_step_executions_total` and
/// `imagebuilder_workflow_step_execution_duration_seconds`.
#[derive(Debug, Default)]
pub struct StepCounters {
    executions: BTreeMap<(StepKey, Arc<str>), u64>,
    durations: BTreeMap<HistogramKey, Histogram>,
    /// Bumped on every change, so that an unchanged state is not re-encoded.
    version: u64,
}

/// Statuses whose counter series exist from the moment a step is known, so
/// that `increase()` sees the first failure (a series born at 1 shows none).
const PRESET: [StepStatus; 2] = [StepStatus::Completed, StepStatus::Failed];

impl StepCounters {
    /// Counts one step execution that reached `status`.
    pub fn record(&mut self, key: &StepKey, status: &StepStatus, duration: Option<Nanos>) {
        self.version += 1;
        *self
            .executions
            .entry((key.clone(), Arc::from(status.as_str())))
            .or_insert(0) += 1;
        if let Some(d) = duration {
            let v = secs(d);
            let h = self.durations.entry(key.histogram_key()).or_default();
            let i = DURATION_BUCKETS
                .iter()
                .position(|b| v <= *b)
                .unwrap_or(DURATION_BUCKETS.len());
            h.buckets[i] += 1;
            h.sum += v;
        }
    }

    /// Makes the COMPLETED and FAILED series of a known step exist at 0.
    pub fn preset(&mut self, key: &StepKey) {
        for s in &PRESET {
            if let std::collections::btree_map::Entry::Vacant(e) =
                self.executions.entry((key.clone(), Arc::from(s.as_str())))
            {
                e.insert(0);
                self.version += 1;
            }
        }
    }

    /// Changes whenever a value or a series changes.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn get(&self, key: &StepKey, status: &str) -> Option<u64> {
        self.executions
            .get(&(key.clone(), Arc::from(status)))
            .copied()
    }

    /// Every (step, status) counted, with its count, in label order.
    pub fn executions(&self) -> impl Iterator<Item = (&StepKey, &str, u64)> {
        self.executions.iter().map(|((k, s), n)| (k, &**s, *n))
    }

    /// Every histogram series, in label order.
    pub fn durations(&self) -> impl Iterator<Item = (&HistogramKey, &Histogram)> {
        self.durations.iter()
    }

    /// Series held, for the memory figures.
    pub fn len(&self) -> usize {
        self.executions.len() + self.durations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(action: &str) -> StepKey {
        StepKey {
            workflow: WorkflowKey {
                account_id: "123456789012".into(),
                region: "us-east-1".into(),
                image: "web".into(),
                workflow_arn: "arn:wf".into(),
            },
            workflow_type: "BUILD".into(),
            step_name: "Build".into(),
            action: action.into(),
        }
    }

    #[test]
    fn counts_and_buckets() {
        let mut c = StepCounters::default();
        c.preset(&key("A"));
        assert_eq!(c.get(&key("A"), "FAILED"), Some(0));
        c.record(&key("A"), &StepStatus::Failed, Some(3_000_000_000));
        c.record(&key("A"), &StepStatus::Completed, Some(90_000_000_000));
        c.record(&key("A"), &StepStatus::Completed, None);
        assert_eq!(c.get(&key("A"), "FAILED"), Some(1));
        assert_eq!(c.get(&key("A"), "COMPLETED"), Some(2));
        let (key, h) = c.durations().next().unwrap();
        assert_eq!(key.values()[4], "Build");
        // 3 s in the 5 s bucket (index 2), 90 s in the 120 s one (index 7);
        // no duration, no observation.
        assert_eq!(h.buckets.iter().sum::<u64>(), 2);
        assert_eq!(h.buckets[2], 1);
        assert_eq!(h.buckets[7], 1);
        assert_eq!(h.sum, 93.0);
    }
}

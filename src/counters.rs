//! The process-lifetime step metrics: how many step executions reached each
//! terminal status, and how long they took.
//!
//! Kept as plain maps and encoded once per refresh (they only change then).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::{secs, Nanos};
use crate::metrics::family::{DURATION_BUCKETS, HISTOGRAM_LABELS, STEP_LABELS};
use crate::metrics::text::{write_int, write_labels, write_value};
use crate::model::StepStatus;
use crate::tracked::WorkflowKey;

/// The label values of one step's series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepKey {
    pub workflow: WorkflowKey,
    pub workflow_type: Arc<str>,
    pub step_name: Arc<str>,
    pub action: Arc<str>,
}

impl StepKey {
    pub fn label_values(&self) -> [&str; 7] {
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

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct HistogramKey {
    account_id: Arc<str>,
    region: Arc<str>,
    workflow_arn: Arc<str>,
    workflow_type: Arc<str>,
    step_name: Arc<str>,
    action: Arc<str>,
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [u64; DURATION_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
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
            h.count += 1;
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

    /// Appends the counter's samples (no header).
    pub fn encode_executions(&self, name: &str, out: &mut Vec<u8>) {
        let mut names = STEP_LABELS.to_vec();
        names.push("status");
        for ((key, status), n) in &self.executions {
            let mut values = key.label_values().to_vec();
            values.push(status);
            out.extend_from_slice(name.as_bytes());
            out.push(b'{');
            write_labels(out, &names, &values);
            out.extend_from_slice(b"} ");
            write_int(out, *n);
            out.push(b'\n');
        }
    }

    /// Appends the histogram's samples (no header).
    pub fn encode_durations(&self, name: &str, out: &mut Vec<u8>) {
        for (k, h) in &self.durations {
            let values = [
                &*k.account_id,
                &*k.region,
                &*k.workflow_arn,
                &*k.workflow_type,
                &*k.step_name,
                &*k.action,
            ];
            let mut labels = Vec::with_capacity(200);
            write_labels(&mut labels, &HISTOGRAM_LABELS, &values);
            let mut cumulative = 0;
            for (i, n) in h.buckets.iter().enumerate() {
                cumulative += n;
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"_bucket{");
                out.extend_from_slice(&labels);
                out.extend_from_slice(b",le=\"");
                match DURATION_BUCKETS.get(i) {
                    Some(b) => write_value(out, *b),
                    None => out.extend_from_slice(b"+Inf"),
                }
                out.extend_from_slice(b"\"} ");
                write_int(out, cumulative);
                out.push(b'\n');
            }
            for (suffix, v) in [("_sum{", h.sum), ("_count{", h.count as f64)] {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(suffix.as_bytes());
                out.extend_from_slice(&labels);
                out.extend_from_slice(b"} ");
                write_value(out, v);
                out.push(b'\n');
            }
        }
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
        let mut out = Vec::new();
        c.encode_durations("h", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("le=\"1\"} 0\n"), "{text}");
        assert!(text.contains("le=\"5\"} 1\n"));
        assert!(text.contains("le=\"60\"} 1\n"));
        assert!(text.contains("le=\"120\"} 2\n"));
        assert!(text.contains("le=\"+Inf\"} 2\n"));
        assert!(text.contains("h_sum{account_id=\"123456789012\",region=\"us-east-1\",workflow_arn=\"arn:wf\",workflow_type=\"BUILD\",step_name=\"Build\",action=\"A\"} 93\n"));
        assert!(text.contains("h_count{") && text.contains("} 2\n"));
    }
}

//! A cold start that reads what users see first, and the rest afterwards.
//!
//! The first refresh reads only what the latest state needs: the newest
//! builds of each image (back to its newest AVAILABLE one, where every
//! workflow ran), the latest execution of each workflow, and the details of
//! steps in flight. That makes the exporter ready in about a tenth of the
//! calls of a full read. The rest (older builds inside the lookback, the
//! timeouts of finished steps) is the *backfill*: read afterwards, newest
//! first, in small batches that never hold a refresh back, until the state
//! is exactly what a full read gives. Then refreshes read everything that
//! can change, as they always did.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use super::read::{fetch_details, fetch_steps, fetch_workflows, DetailRead, Listed, StepsRead};
use super::{Phase, RefreshReport, Tracker};
use crate::aws::ImageBuilderApi;
use crate::base::clock::Nanos;
use crate::model::WorkflowExecution;
use crate::tracking::tracked::select_latest;

/// One read of the backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Job {
    /// The workflow executions of a build never listed.
    Workflows(Arc<str>),
    /// The steps of a latest execution never listed: (build, execution).
    Steps(Arc<str>, String),
    /// The details of a latest step: (step, (build, execution)).
    Details(String, (Arc<str>, String)),
}

impl Tracker {
    /// Whether refreshes read everything that can change (after the
    /// backfill, or when it is turned off), or only what the latest state
    /// needs.
    pub(super) fn full(&self) -> bool {
        !self.cfg.defer_backfill || self.phase == Phase::Steady
    }

    /// How far the target's reading has come.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Moves on once a refresh read everything it needed, and once the
    /// backfill has nothing left.
    pub(super) fn update_phase(&mut self, complete: bool) {
        if self.phase == Phase::Cold && complete {
            self.phase = if self.cfg.defer_backfill {
                Phase::Backfill
            } else {
                Phase::Steady
            };
        }
        if self.phase == Phase::Backfill && self.backfill_jobs().is_empty() {
            self.phase = Phase::Steady;
        }
    }

    /// What is left to read, newest build first.
    fn backfill_jobs(&self) -> Vec<Job> {
        let mut jobs: Vec<(Option<Nanos>, Job)> = Vec::new();
        let created = |arn: &Arc<str>| self.builds.get(arn).and_then(|b| b.build.date_created);
        for tb in self.builds.values() {
            if tb.workflows.is_none() {
                jobs.push((tb.build.date_created, Job::Workflows(tb.build.arn.clone())));
            }
        }
        for l in select_latest(&self.builds) {
            let w = &self.builds[&l.build_arn]
                .workflows
                .as_deref()
                .unwrap_or_default()[l.index];
            if w.steps.is_none() {
                jobs.push((
                    created(&l.build_arn),
                    Job::Steps(l.build_arn.clone(), w.exec.id.clone()),
                ));
            }
        }
        for (step, place) in self.latest_unknown_limits() {
            jobs.push((created(&place.0), Job::Details(step, place)));
        }
        // Newest first; a build without a creation time last.
        jobs.sort_by_key(|j| std::cmp::Reverse(j.0));
        jobs.into_iter().map(|(_, j)| j).collect()
    }

    /// Reads still to be made before the state is what a full read gives:
    /// `imagebuilder_exporter_backfill_pending`.
    pub fn backfill_pending(&self) -> usize {
        if self.phase == Phase::Backfill {
            self.backfill_jobs().len()
        } else {
            0
        }
    }

    /// The next `max` reads of the backfill, newest first; `None` when
    /// there is nothing to read.
    pub fn backfill_batch(&self, max: usize) -> Option<BackfillBatch> {
        if self.phase != Phase::Backfill {
            return None;
        }
        let mut batch = BackfillBatch::default();
        for job in self.backfill_jobs().into_iter().take(max) {
            match job {
                Job::Workflows(arn) => batch.workflows.push(arn),
                Job::Steps(arn, id) => batch.steps.push((arn, id)),
                Job::Details(id, place) => {
                    batch.details.insert(id, place);
                }
            }
        }
        let empty =
            batch.workflows.is_empty() && batch.steps.is_empty() && batch.details.is_empty();
        (!empty).then_some(batch)
    }

    /// Keeps what a batch read. The tracker may have changed since the
    /// batch was chosen (a refresh ran meanwhile): what it read is merged
    /// by ID, and what has left since is ignored.
    pub fn apply_backfill(&mut self, reads: BackfillReads) -> RefreshReport {
        let mut report = RefreshReport::default();
        self.apply_workflow_listings(reads.workflows, &mut report);
        self.apply_step_listings(reads.steps, &mut report);
        self.apply_details(reads.details, &mut report);
        self.count_terminal_steps();
        self.update_views();
        self.update_phase(false);
        report
    }

    /// A batch read and applied at once (tests; the exporter reads without
    /// holding the tracker).
    #[cfg(test)]
    pub async fn backfill<C: ImageBuilderApi>(&mut self, api: &C, max: usize) -> RefreshReport {
        match self.backfill_batch(max) {
            Some(batch) => {
                let reads = batch.read(api, || async {}).await;
                self.apply_backfill(reads)
            }
            None => RefreshReport::default(),
        }
    }
}

/// Reads of the backfill chosen together.
#[derive(Debug, Default)]
pub struct BackfillBatch {
    workflows: Vec<Arc<str>>,
    steps: Vec<(Arc<str>, String)>,
    details: BTreeMap<String, (Arc<str>, String)>,
}

/// What a [`BackfillBatch`] read.
pub struct BackfillReads {
    workflows: Vec<(Arc<str>, Listed<WorkflowExecution>)>,
    steps: Vec<StepsRead>,
    details: Vec<DetailRead>,
}

impl BackfillBatch {
    /// Makes the reads one at a time, each after `pause` lets it: a
    /// refresh that starts meanwhile waits for one call at most, never for
    /// a batch. Needs no tracker.
    pub async fn read<C, F, Fut>(self, api: &C, pause: F) -> BackfillReads
    where
        C: ImageBuilderApi,
        F: Fn() -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut reads = BackfillReads {
            workflows: Vec::new(),
            steps: Vec::new(),
            details: Vec::new(),
        };
        for arn in self.workflows {
            pause().await;
            reads
                .workflows
                .extend(fetch_workflows(api, vec![arn]).await);
        }
        for job in self.steps {
            pause().await;
            reads.steps.extend(fetch_steps(api, vec![job]).await);
        }
        for (id, place) in self.details {
            pause().await;
            reads
                .details
                .extend(fetch_details(api, [(id, place)].into_iter().collect()).await);
        }
        reads
    }
}

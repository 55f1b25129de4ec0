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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::{RefreshReport, Tracker};
use crate::aws::ImageBuilderApi;
use crate::clock::Nanos;
use crate::model::BuildStatus;
use crate::tracked::{build_order, select_latest, TrackedBuild};
use crate::views::ImageKey;

/// How far a target's reading of the account has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The latest state is not read yet: not ready.
    Cold,
    /// Ready; older builds and finished steps' details are still being read.
    Backfill,
    /// Everything a full read gives is known.
    Steady,
}

/// Builds an image's newest ones are read from before ready: enough to
/// find the latest execution of each workflow its builds run.
const PRIORITY_DEPTH: usize = 3;

/// The builds the latest state is read from: those in flight, and for each
/// image its newest builds, newest first, down to its newest AVAILABLE one
/// (a build that completed ran every workflow; a newer one may have failed
/// or be running before its last workflow), at most [`PRIORITY_DEPTH`].
pub(super) fn priority_builds(builds: &HashMap<Arc<str>, TrackedBuild>) -> HashSet<Arc<str>> {
    let mut by_image: HashMap<ImageKey, Vec<&TrackedBuild>> = HashMap::new();
    let mut out = HashSet::new();
    for tb in builds.values() {
        if !tb.build.status.is_terminal() {
            out.insert(tb.build.arn.clone());
        }
        by_image
            .entry(ImageKey::of(&tb.build))
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
        jobs.sort_by(|a, b| b.0.cmp(&a.0));
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

    /// Makes up to `max` reads of the backfill, newest first. A read that
    /// fails is tried again by a later batch.
    pub async fn backfill<C: ImageBuilderApi>(&mut self, api: &C, max: usize) -> RefreshReport {
        let mut report = RefreshReport::default();
        if self.phase != Phase::Backfill {
            return report;
        }
        let (mut workflows, mut steps, mut details) = (Vec::new(), Vec::new(), BTreeMap::new());
        for job in self.backfill_jobs().into_iter().take(max) {
            match job {
                Job::Workflows(arn) => workflows.push(arn),
                Job::Steps(arn, id) => steps.push((arn, id)),
                Job::Details(id, place) => {
                    details.insert(id, place);
                }
            }
        }
        self.list_workflows(api, workflows, &mut report).await;
        self.list_steps(api, steps, &mut report).await;
        self.fetch_details(api, details, &mut report).await;
        self.count_terminal_steps();
        self.update_views();
        self.update_phase(false);
        report
    }
}

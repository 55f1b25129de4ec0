//! Finding and following step executions: the refresh algorithm.
//!
//! A refresh walks builds → workflow executions → step executions → step
//! details, but only where something can still change or is still needed:
//!
//! * builds are listed at most once per `--discovery.interval`;
//! * a build whose state and workflow executions are all terminal is frozen:
//!   its workflow executions are never listed again;
//! * a workflow execution is step-listed only while it is in flight, when it
//!   is the latest of its workflow, or when its steps must be counted (builds
//!   created after the exporter started); once it and all its steps are
//!   terminal it is frozen;
//! * `GetWorkflowStepExecution` is called once per step execution, and only
//!   for the latest execution of each step and for steps in flight.
//!
//! So a steady-state refresh costs the discovery listing (when due) plus
//! calls for what is in flight, whatever the account's history. A cold
//! start reads what the latest state needs first and backfills the rest
//! (see `backfill`).

mod backfill;
mod discover;
#[cfg(test)]
pub(crate) mod fake;
mod listing;
mod merge;
mod pipelines;
mod read;
mod report;
mod targeted;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use tokio::time::Instant;

pub use listing::list_all;
pub use report::RefreshReport;
pub use targeted::Targeted;

use crate::aws::{ImageBuilderApi, Operation};
use crate::base::clock::Nanos;
use crate::metrics::labels::TagAllowList;
use crate::model::{Pipeline, StepDetail};
use crate::snapshot::Snapshot;
use crate::tracking::counters::StepCounters;
use crate::tracking::tracked::{TrackedBuild, WorkflowKey};
use crate::tracking::views::{self, ImageKey, Views};

/// Rounds of step listings a refresh may take to walk back to each step's
/// last conclusive outcome (see [`outcomes`]); each round goes one
/// execution further back, so this bounds the walk, not the data.
const MAX_OUTCOME_ROUNDS: usize = 8;

/// What to track and how often to look for new builds.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    pub lookback: Duration,
    pub interval: Duration,
    pub image_filter: Option<Regex>,
    pub step_execution_ids: Vec<String>,
    pub max_builds: usize,
    /// `--labels.image-tags`: the tags exported as labels.
    pub image_tags: TagAllowList,
    /// Read what the latest state needs first and the rest afterwards (see
    /// `backfill`). Off, a cold start reads everything before it is ready,
    /// as it once did: tests compare the two.
    pub defer_backfill: bool,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            lookback: Duration::from_secs(24 * 3600),
            interval: Duration::from_secs(300),
            image_filter: None,
            step_execution_ids: Vec::new(),
            max_builds: 10_000,
            image_tags: TagAllowList::default(),
            defer_backfill: true,
        }
    }
}

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

/// How much a tracker holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    pub tracked_builds: usize,
    pub tracked_step_executions: usize,
    /// Tracked builds not yet in a terminal state.
    pub builds_in_flight: usize,
}

/// A step followed through `--step-execution-id`.
#[derive(Debug, Clone, Default)]
struct DirectStep {
    detail: Option<StepDetail>,
    counted: bool,
}

/// Everything held between refreshes for one target.
#[derive(Debug)]
pub struct Tracker {
    cfg: DiscoveryConfig,
    builds: HashMap<Arc<str>, TrackedBuild>,
    direct: BTreeMap<String, DirectStep>,
    last_discovery: Option<Instant>,
    /// Hashes of the build ARNs listed by the first successful discovery:
    /// those builds existed before the exporter started. (Membership, not
    /// creation times: the API's clock and ours may disagree.)
    baseline: Option<HashSet<u64>>,
    /// A complete refresh has happened: later terminal steps are news.
    seeded: bool,
    counters: StepCounters,
    /// `dateCreated` of the newest AVAILABLE build of each image, from the
    /// last discovery listing (whatever the build's age).
    last_success: HashMap<ImageKey, Nanos>,
    /// What the snapshot shows, as of the last refresh.
    views: Views,
    /// Changes whenever the views or the counters change, so that an
    /// unchanged state is not encoded again (steady refreshes of a large
    /// account change nothing).
    version: u64,
    counters_seen: u64,
    phase: Phase,
    /// The account's image pipelines, as last listed.
    pipelines: Vec<Pipeline>,
    /// Image names by the name segment of their ARNs (see
    /// `learn_image_names`).
    image_names: HashMap<Arc<str>, Arc<str>>,
}

impl Tracker {
    pub fn new(cfg: DiscoveryConfig) -> Self {
        let direct = cfg
            .step_execution_ids
            .iter()
            .map(|id| (id.clone(), DirectStep::default()))
            .collect();
        Self {
            cfg,
            builds: HashMap::new(),
            direct,
            last_discovery: None,
            baseline: None,
            seeded: false,
            counters: StepCounters::default(),
            last_success: HashMap::new(),
            views: Views::default(),
            version: 0,
            counters_seen: 0,
            phase: Phase::Cold,
            pipelines: Vec::new(),
            image_names: HashMap::new(),
        }
    }

    /// Reads what changed since the last refresh. `now` is the wall clock,
    /// for the lookback window.
    pub async fn refresh<C: ImageBuilderApi>(&mut self, api: &C, now: Nanos) -> RefreshReport {
        let mut report = RefreshReport::default();

        if self.discovery_due() {
            report.discovery_ran = true;
            match list_all(Operation::ListImageBuildVersions, |t| {
                api.list_image_build_versions(None, t)
            })
            .await
            {
                Ok((builds, issues)) => {
                    let complete = report.take_issues(issues, "the account's image build versions");
                    self.learn_image_names(&builds);
                    self.apply_discovery(builds, now, complete, &mut report);
                    self.last_discovery = Some(Instant::now());
                    // With the listing, not without it: a listing that
                    // fails (denied, unreachable) would fail this one too,
                    // and discovery is due again at the next refresh.
                    self.refresh_pipelines(api, &mut report).await;
                }
                Err(e) => report.fail(e, "the account's image build versions"),
            }
        }

        self.refresh_workflows(api, &mut report).await;
        self.refresh_steps(api, &mut report, None).await;
        self.refresh_limits(api, &mut report, None).await;
        self.refresh_direct(api, &mut report).await;
        self.count_terminal_steps();
        self.update_views();

        if report.complete() {
            self.seeded = true;
        }
        self.update_phase(report.complete());
        report
    }

    /// Rebuilds the views from the tracked state, and makes the counter
    /// series of every step shown exist (at 0) so that `increase()` sees
    /// its first failure.
    fn update_views(&mut self) {
        let views = views::build(&views::Input {
            builds: &self.builds,
            direct: self
                .direct
                .values()
                .filter_map(|d| d.detail.as_ref())
                .collect(),
            last_success: &self.last_success,
            tag_keys: self.cfg.image_tags.keys(),
            pipelines: &self.pipelines,
            image_names: &self.image_names,
            image_filter: self.cfg.image_filter.as_ref(),
        });
        for s in &views.steps {
            self.counters.preset(&s.key);
        }
        if views != self.views || self.counters.version() != self.counters_seen {
            self.views = views;
            self.counters_seen = self.counters.version();
            self.version += 1;
        }
    }

    /// Counts each step execution once, when first seen terminal.
    fn count_terminal_steps(&mut self) {
        for tb in self.builds.values_mut() {
            let build = &tb.build;
            for w in tb.workflows.iter_mut().flatten() {
                let wkey = WorkflowKey::new(build, &w.exec.workflow_arn);
                for s in w.steps.iter_mut().flatten() {
                    if !s.counted && s.exec.status.is_terminal() {
                        let key = views::step_key(&wkey, w.exec.workflow_type.as_str(), s);
                        self.counters
                            .record(&key, &s.exec.status, s.exec.duration());
                        s.counted = true;
                    }
                }
            }
        }
        let names = views::build_names(&self.builds);
        for d in self.direct.values_mut() {
            let Some(detail) = &d.detail else { continue };
            if d.counted || !detail.step.status.is_terminal() {
                continue;
            }
            if let Some(key) = views::direct_key(detail, &names) {
                self.counters
                    .record(&key, &detail.step.status, detail.step.duration());
            }
            d.counted = true;
        }
    }

    /// Changes whenever what [`Tracker::snapshot`] would show changes.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The views of the last refresh, for tests.
    pub fn views(&self) -> &Views {
        &self.views
    }

    /// Encodes the state of the last refresh. Writes nothing: the views
    /// and the counters were brought up to date by the refresh.
    pub fn snapshot(&self, target: &str) -> Snapshot {
        Snapshot::build(target, &self.views, &self.counters, &self.cfg.image_tags)
    }

    /// What is held, for the exporter's own metrics.
    pub fn stats(&self) -> TrackerStats {
        TrackerStats {
            tracked_builds: self.builds.len(),
            builds_in_flight: self
                .builds
                .values()
                .filter(|b| !b.build.status.is_terminal())
                .count(),
            tracked_step_executions: self
                .builds
                .values()
                .flat_map(|b| b.workflows.iter().flatten())
                .map(|w| w.steps.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
                + self.direct.values().filter(|d| d.detail.is_some()).count(),
        }
    }

    /// The counters, for tests.
    pub fn counters(&self) -> &StepCounters {
        &self.counters
    }
}

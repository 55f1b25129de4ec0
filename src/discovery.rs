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
//! calls for what is in flight, whatever the account's history.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use regex::Regex;
use tokio::time::Instant;

use crate::aws::{ApiError, DataIssue, ImageBuilderApi, Operation, Page};
use crate::clock::Nanos;
use crate::counters::StepCounters;
use crate::model::{Build, BuildStatus, StepDetail, StepExecution, WorkflowExecution};
use crate::snapshot::Snapshot;
use crate::tracked::{
    build_order, latest_steps, outcomes, select_latest, Limits, TrackedBuild, TrackedStep,
    TrackedWorkflow, WorkflowKey,
};
use crate::views::{self, ImageKey, TagAllowList, Views};

/// Calls in flight at once within a refresh; the client's own concurrency
/// limit is what really bounds the API.
const FAN_OUT: usize = 64;

/// Pages a single listing may take before it is considered endless.
const MAX_PAGES: usize = 2_000;

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
        }
    }
}

/// A failed read: the call's error and what it was reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error: ApiError,
    pub resource: String,
}

/// What a refresh ran into.
#[derive(Debug, Default)]
pub struct RefreshReport {
    /// Reads that failed: their last good data was kept.
    pub failures: Vec<Failure>,
    /// `--step-execution-id` values the API does not know.
    pub unknown_step_ids: Vec<String>,
    /// Bad fields inside answers that were otherwise used.
    pub issues: Vec<DataIssue>,
    pub discovery_ran: bool,
    /// Builds left untracked because of `--discovery.max-builds`.
    pub dropped_builds: usize,
}

impl RefreshReport {
    /// Everything that was needed could be read.
    pub fn complete(&self) -> bool {
        self.failures.is_empty()
    }

    /// Records the issues of a listing; true if it skipped no item. A
    /// listing that did is a partial read: reported as a failure, so that
    /// `imagebuilder_up` says the data may be incomplete.
    fn take_issues(&mut self, issues: Vec<DataIssue>, resource: &str) -> bool {
        let skipped = issues.iter().filter(|i| i.skipped_item()).count();
        if let Some(operation) = issues
            .iter()
            .find(|i| i.skipped_item())
            .map(|i| i.operation)
        {
            self.fail(
                ApiError::Parse {
                    operation,
                    message: format!("{skipped} item(s) without an identifier were skipped; what they may be keeps its previous data"),
                },
                resource,
            );
        }
        self.issues.extend(issues);
        skipped == 0
    }

    fn fail(&mut self, error: ApiError, resource: impl Into<String>) {
        self.failures.push(Failure {
            error,
            resource: resource.into(),
        });
    }
}

/// How much a tracker holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    pub tracked_builds: usize,
    pub tracked_step_executions: usize,
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
        }
    }

    /// Reads what changed since the last refresh. `now` is the wall clock,
    /// for the lookback window.
    pub async fn refresh<C: ImageBuilderApi>(&mut self, api: &C, now: Nanos) -> RefreshReport {
        let mut report = RefreshReport::default();

        if self.discovery_due() {
            report.discovery_ran = true;
            match list_all(Operation::ListImageBuildVersions, |t| {
                api.list_image_build_versions(t)
            })
            .await
            {
                Ok((builds, issues)) => {
                    let complete = report.take_issues(issues, "the account's image build versions");
                    self.apply_discovery(builds, now, complete, &mut report);
                    self.last_discovery = Some(Instant::now());
                }
                Err(e) => report.fail(e, "the account's image build versions"),
            }
        }

        self.refresh_workflows(api, &mut report).await;
        self.refresh_steps(api, &mut report).await;
        self.refresh_limits(api, &mut report).await;
        self.refresh_direct(api, &mut report).await;
        self.count_terminal_steps();
        self.update_views();

        if report.complete() {
            self.seeded = true;
        }
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

    fn discovery_due(&self) -> bool {
        self.last_discovery
            .is_none_or(|t| t.elapsed() >= self.cfg.interval)
    }

    /// Chooses the builds to track from a full listing.
    /// `complete`: the listing skipped nothing, so builds missing from it
    /// are gone.
    fn apply_discovery(
        &mut self,
        listed: Vec<Build>,
        now: Nanos,
        complete: bool,
        report: &mut RefreshReport,
    ) {
        let baseline = self
            .baseline
            .get_or_insert_with(|| listed.iter().map(|b| arn_hash(&b.arn)).collect());
        let lookback_start = now.saturating_sub(nanos(self.cfg.lookback));

        let mut by_arn: HashMap<Arc<str>, Build> = HashMap::new();
        for b in listed {
            if self
                .cfg
                .image_filter
                .as_ref()
                .is_none_or(|re| re.is_match(&b.name))
            {
                by_arn.insert(b.arn.clone(), b);
            }
        }
        let mut last_success: HashMap<ImageKey, Nanos> = HashMap::new();
        for b in by_arn.values() {
            if let (BuildStatus::Available, Some(created)) = (&b.status, b.date_created) {
                let slot = last_success.entry(ImageKey::of(b)).or_insert(created);
                *slot = (*slot).max(created);
            }
        }
        if complete {
            self.last_success = last_success;
        } else {
            // Some items were skipped: what they may be keeps its value.
            for (k, t) in last_success {
                let slot = self.last_success.entry(k).or_insert(t);
                *slot = (*slot).max(t);
            }
        }
        let mut newest: HashMap<&str, &Build> = HashMap::new();
        for b in by_arn.values() {
            let slot = newest.entry(&b.name).or_insert(b);
            if build_order(b, slot).is_gt() {
                *slot = b;
            }
        }
        let newest: HashSet<Arc<str>> = newest.values().map(|b| b.arn.clone()).collect();
        let mut chosen: Vec<&Build> = by_arn
            .values()
            .filter(|b| {
                newest.contains(&b.arn)
                    || b.date_created.is_some_and(|d| d >= lookback_start)
                    || !b.status.is_terminal()
            })
            .collect();

        if chosen.len() > self.cfg.max_builds {
            // Keep, in order of importance: builds in flight, the newest of
            // each image, then the most recent. The oldest finished go first.
            chosen.sort_by(|a, b| {
                let rank = |x: &Build| (!x.status.is_terminal(), newest.contains(&x.arn));
                rank(b).cmp(&rank(a)).then_with(|| build_order(b, a))
            });
            report.dropped_builds = chosen.len() - self.cfg.max_builds;
            chosen.truncate(self.cfg.max_builds);
        }

        let keep: HashSet<Arc<str>> = chosen.iter().map(|b| b.arn.clone()).collect();
        if complete {
            self.builds.retain(|arn, _| keep.contains(arn));
        }
        for b in chosen {
            match self.builds.get_mut(&b.arn) {
                Some(tb) => tb.build = b.clone(),
                None => {
                    let baseline = baseline.contains(&arn_hash(&b.arn));
                    self.builds.insert(
                        b.arn.clone(),
                        TrackedBuild {
                            build: b.clone(),
                            workflows: None,
                            frozen: false,
                            baseline,
                        },
                    );
                }
            }
        }
    }

    async fn refresh_workflows<C: ImageBuilderApi>(&mut self, api: &C, report: &mut RefreshReport) {
        let jobs: Vec<Arc<str>> = self
            .builds
            .values()
            .filter(|b| !b.frozen)
            .map(|b| b.build.arn.clone())
            .collect();
        let results = fan_out(jobs, |arn| async move {
            let r = list_all(Operation::ListWorkflowExecutions, |t| {
                api.list_workflow_executions(arn.to_string(), t)
            })
            .await;
            (arn, r)
        })
        .await;
        for (arn, r) in results {
            match r {
                Ok((list, issues)) => {
                    let complete =
                        report.take_issues(issues, &format!("workflow executions of {arn}"));
                    if let Some(tb) = self.builds.get_mut(&arn) {
                        apply_workflows(tb, list, complete);
                    }
                }
                // Deleted since it was listed: its series leave now rather
                // than at the next discovery, and it is not an outage.
                Err(e) if e.is_not_found() => {
                    tracing::info!(build = %arn, "image build version no longer exists; untracked");
                    self.builds.remove(&arn);
                }
                Err(e) => report.fail(e, format!("workflow executions of {arn}")),
            }
        }
    }

    /// Lists the steps of the executions that can still change or are
    /// needed, then walks back, a round at a time, to older executions
    /// until every step's last conclusive outcome is known (so a failure
    /// stays visible while a newer build retries the step, also after a
    /// restart).
    async fn refresh_steps<C: ImageBuilderApi>(&mut self, api: &C, report: &mut RefreshReport) {
        let latest: HashSet<(Arc<str>, usize)> = select_latest(&self.builds)
            .into_iter()
            .map(|l| (l.build_arn, l.index))
            .collect();
        let mut jobs = Vec::new();
        for tb in self.builds.values() {
            for (i, w) in tb.workflows.iter().flatten().enumerate() {
                let needed = latest.contains(&(tb.build.arn.clone(), i))
                    || !w.exec.status.is_terminal()
                    || !tb.baseline
                    || w.steps.is_some();
                if needed && !w.frozen {
                    jobs.push((tb.build.arn.clone(), w.exec.id.clone()));
                }
            }
        }
        let mut listed: HashSet<String> = HashSet::new();
        for _ in 0..MAX_OUTCOME_ROUNDS {
            listed.extend(jobs.iter().map(|(_, id)| id.clone()));
            self.list_steps(api, jobs, report).await;
            jobs = outcomes(&self.builds)
                .gaps
                .into_iter()
                .filter(|(_, id)| !listed.contains(id))
                .collect();
            if jobs.is_empty() {
                break;
            }
        }
    }

    async fn list_steps<C: ImageBuilderApi>(
        &mut self,
        api: &C,
        jobs: Vec<(Arc<str>, String)>,
        report: &mut RefreshReport,
    ) {
        let results = fan_out(jobs, |(arn, id)| async move {
            let r = list_all(Operation::ListWorkflowStepExecutions, |t| {
                api.list_workflow_step_executions(id.clone(), t)
            })
            .await;
            (arn, id, r)
        })
        .await;
        for (arn, id, r) in results {
            match r {
                Ok((list, issues)) => {
                    let complete =
                        report.take_issues(issues, &format!("step executions of {id} ({arn})"));
                    if let Some(tb) = self.builds.get_mut(&arn) {
                        let baseline = tb.baseline;
                        if let Some(w) = tb.workflows.iter_mut().flatten().find(|w| w.exec.id == id)
                        {
                            apply_steps(w, list, baseline, complete);
                        }
                    }
                }
                Err(e) if e.is_not_found() => {
                    tracing::info!(workflow_execution = %id, build = %arn, "workflow execution no longer exists; untracked");
                    if let Some(ws) = self
                        .builds
                        .get_mut(&arn)
                        .and_then(|tb| tb.workflows.as_mut())
                    {
                        ws.retain(|w| w.exec.id != id);
                    }
                }
                Err(e) => report.fail(e, format!("step executions of {id} ({arn})")),
            }
        }
    }

    /// Fetches `timeoutSeconds` for the latest execution of each step and for
    /// steps in flight, once per step execution.
    async fn refresh_limits<C: ImageBuilderApi>(&mut self, api: &C, report: &mut RefreshReport) {
        let mut wanted: BTreeMap<String, (Arc<str>, String)> = BTreeMap::new();
        for l in select_latest(&self.builds) {
            let tb = &self.builds[&l.build_arn];
            let w = &tb.workflows.as_deref().unwrap_or_default()[l.index];
            for s in latest_steps(w.steps.as_deref().unwrap_or_default()) {
                if s.limits == Limits::Unknown {
                    wanted.insert(s.exec.id.clone(), (l.build_arn.clone(), w.exec.id.clone()));
                }
            }
        }
        for tb in self.builds.values() {
            for w in tb.workflows.iter().flatten() {
                for s in w.steps.iter().flatten() {
                    if s.limits == Limits::Unknown && !s.exec.status.is_terminal() {
                        wanted.insert(s.exec.id.clone(), (tb.build.arn.clone(), w.exec.id.clone()));
                    }
                }
            }
        }
        let results = fan_out(wanted, |(step_id, place)| async move {
            let r = api.get_workflow_step_execution(step_id.clone()).await;
            (step_id, place, r)
        })
        .await;
        for (step_id, (arn, exec_id), r) in results {
            let step = self
                .builds
                .get_mut(&arn)
                .and_then(|tb| tb.workflows.as_mut())
                .and_then(|ws| ws.iter_mut().find(|w| w.exec.id == exec_id))
                .and_then(|w| w.steps.as_mut())
                .and_then(|ss| ss.iter_mut().find(|s| s.exec.id == step_id));
            let Some(step) = step else { continue };
            match r {
                Ok(f) => {
                    report.issues.extend(f.issues);
                    step.limits = Limits::Known(f.value.limits);
                    step.on_failure = f.value.on_failure.as_deref().map(Arc::from);
                    // The detail is the fresher read of the same step.
                    let fresh = f.value.step;
                    step.exec.status = fresh.status;
                    step.exec.start = fresh.start.or(step.exec.start);
                    step.exec.end = fresh.end.or(step.exec.end);
                    step.exec.rollback_status =
                        fresh.rollback_status.or(step.exec.rollback_status.take());
                    step.exec.message = fresh.message.or(step.exec.message.take());
                    step.exec.attempt = fresh.attempt.or(step.exec.attempt);
                    step.exec.max_attempts = fresh.max_attempts.or(step.exec.max_attempts);
                }
                Err(e) if e.is_not_found() => {
                    step.limits = Limits::Missing;
                    report.fail(e, format!("step execution {step_id}"));
                }
                Err(e) => report.fail(e, format!("step execution {step_id}")),
            }
        }
    }

    /// Follows `--step-execution-id` steps that discovery does not cover.
    async fn refresh_direct<C: ImageBuilderApi>(&mut self, api: &C, report: &mut RefreshReport) {
        if self.direct.is_empty() {
            return;
        }
        let discovered = self.discovered_step_ids();
        let jobs: Vec<String> = self
            .direct
            .iter()
            .filter(|(id, d)| {
                !discovered.contains(id.as_str())
                    && d.detail
                        .as_ref()
                        .is_none_or(|x| !x.step.status.is_terminal())
            })
            .map(|(id, _)| id.clone())
            .collect();
        let results = fan_out(jobs, |id| async move {
            let r = api.get_workflow_step_execution(id.clone()).await;
            (id, r)
        })
        .await;
        for (id, r) in results {
            let Some(d) = self.direct.get_mut(&id) else {
                continue;
            };
            match r {
                Ok(f) => {
                    report.issues.extend(f.issues);
                    let seed =
                        !self.seeded && d.detail.is_none() && f.value.step.status.is_terminal();
                    d.counted |= seed;
                    d.detail = Some(f.value);
                }
                // An ID the API does not know is the user's to fix; it does
                // not make the refresh incomplete.
                Err(e) if e.is_not_found() => report.unknown_step_ids.push(id),
                Err(e) => report.fail(e, format!("step execution {id} (--step-execution-id)")),
            }
        }
    }

    fn discovered_step_ids(&self) -> HashSet<&str> {
        self.builds
            .values()
            .flat_map(|b| b.workflows.iter().flatten())
            .flat_map(|w| w.steps.iter().flatten())
            .map(|s| s.exec.id.as_str())
            .collect()
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

fn arn_hash(arn: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    arn.hash(&mut h);
    h.finish()
}

/// Merges a fresh listing of a build's workflow executions. When the
/// listing skipped unusable items, executions it did not show are kept: they
/// may be the skipped ones.
fn apply_workflows(tb: &mut TrackedBuild, list: Vec<WorkflowExecution>, complete: bool) {
    let merged = merge(
        tb.workflows.take(),
        list,
        |w: &TrackedWorkflow| &w.exec.id,
        |e: &WorkflowExecution| &e.id,
        !complete,
        |w, exec| w.exec = exec,
        |exec| TrackedWorkflow {
            exec,
            steps: None,
            frozen: false,
        },
    );
    tb.frozen = complete
        && tb.build.status.is_terminal()
        && merged.iter().all(|w| w.exec.status.is_terminal());
    tb.workflows = Some(merged);
}

/// Merges a fresh listing of a workflow execution's steps.
fn apply_steps(w: &mut TrackedWorkflow, list: Vec<StepExecution>, baseline: bool, complete: bool) {
    let merged = merge(
        w.steps.take(),
        list,
        |s: &TrackedStep| &s.exec.id,
        |e: &StepExecution| &e.id,
        !complete,
        |s, exec| s.exec = exec,
        |exec| TrackedStep {
            // Terminal before we ever saw it, in a build that existed at
            // start-up: seed, do not count.
            counted: baseline && exec.status.is_terminal(),
            exec,
            limits: Limits::Unknown,
            on_failure: None,
        },
    );
    w.frozen = complete
        && w.exec.status.is_terminal()
        && merged.iter().all(|s| s.exec.status.is_terminal());
    w.steps = Some(merged);
}

/// Merges `fresh` items into `old` ones by ID: known items are updated in
/// place (keeping what only we know of them), new ones created, duplicates
/// ignored. Items missing from `fresh` are dropped, or kept at the end in
/// their old order when `keep_unlisted`.
fn merge<T, N>(
    old: Option<Vec<T>>,
    fresh: Vec<N>,
    old_id: impl Fn(&T) -> &str,
    new_id: impl Fn(&N) -> &str,
    keep_unlisted: bool,
    update: impl Fn(&mut T, N),
    create: impl Fn(N) -> T,
) -> Vec<T> {
    let mut old: Vec<Option<T>> = old.unwrap_or_default().into_iter().map(Some).collect();
    let index: HashMap<String, usize> = old
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.as_ref().map(|t| (old_id(t).to_string(), i)))
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(fresh.len());
    for n in fresh {
        if !seen.insert(new_id(&n).to_string()) {
            continue; // listed twice
        }
        match index.get(new_id(&n)).and_then(|i| old[*i].take()) {
            Some(mut t) => {
                update(&mut t, n);
                out.push(t);
            }
            None => out.push(create(n)),
        }
    }
    if keep_unlisted {
        out.extend(old.into_iter().flatten());
    }
    out
}

/// Follows `nextToken` to the end. A token seen twice, or more than
/// `MAX_PAGES` pages, is a malformed answer: the listing fails instead of
/// looping forever.
pub async fn list_all<T, F, Fut>(
    op: Operation,
    mut fetch: F,
) -> Result<(Vec<T>, Vec<DataIssue>), ApiError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, ApiError>>,
{
    let mut items = Vec::new();
    let mut issues = Vec::new();
    let mut seen = HashSet::new();
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let page = fetch(token.take()).await?;
        items.extend(page.items);
        issues.extend(page.issues);
        match page.next_token.filter(|t| !t.is_empty()) {
            None => return Ok((items, issues)),
            Some(t) => {
                if !seen.insert(t.clone()) {
                    return Err(ApiError::Parse {
                        operation: op,
                        message: format!(
                            "nextToken {:?} was returned twice; the listing would never end",
                            crate::aws::shorten(&t, 40)
                        ),
                    });
                }
                token = Some(t);
            }
        }
    }
    Err(ApiError::Parse {
        operation: op,
        message: format!("more than {MAX_PAGES} pages; the listing was abandoned"),
    })
}

/// Runs `f` over `jobs` with bounded concurrency and collects the results.
async fn fan_out<J, R, F, Fut>(jobs: impl IntoIterator<Item = J>, f: F) -> Vec<R>
where
    F: Fn(J) -> Fut,
    Fut: Future<Output = R>,
{
    stream::iter(jobs)
        .map(f)
        .buffer_unordered(FAN_OUT)
        .collect()
        .await
}

/// A configured duration as nanoseconds, saturating (`--discovery.lookback 300y`).
fn nanos(d: Duration) -> Nanos {
    Nanos::try_from(d.as_nanos()).unwrap_or(Nanos::MAX)
}

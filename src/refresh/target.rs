//! Scrape-driven refreshes, guarded so that they scale.
//!
//! * At most one refresh of a target runs at a time; scrapes that arrive
//!   meanwhile wait for it instead of starting their own.
//! * No refresh starts sooner than `min_interval` after the previous one
//!   ended: scrapes in between are served the current snapshot.
//! * A scrape waits at most its timeout (`exporter::ScrapeTimeout`: the
//!   scraper's own, capped by `--scrape.timeout`); after that it is served
//!   the last complete snapshot while the refresh finishes in the
//!   background (it runs in its own task, so an abandoned scrape does not
//!   cancel it).
//! * After a cold start's first refresh, the backfill (see
//!   `discovery::backfill`) runs in its own task, in small batches that let
//!   any refresh go first.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::aws::{ApiError, ImageBuilderApi};
use crate::base::clock::{secs, Clock, Nanos};
use crate::base::loglimit::LogLimiter;
use crate::metrics::ExporterMetrics;
use crate::refresh::discovery::{Phase, RefreshReport, Targeted, Tracker};
use crate::snapshot::Snapshot;

/// How often the same warning may be logged.
const WARN_EVERY: Duration = Duration::from_secs(300);

/// Reads per backfill batch: two seconds at the default rate limit, so that
/// a refresh (a scrape, a new failure) never waits long behind one.
const BACKFILL_BATCH: usize = 20;

/// After a batch whose reads failed, the backfill waits this long.
const BACKFILL_RETRY: Duration = Duration::from_secs(5);

/// Backfill progress is published (the page encoded again) at most this
/// often; refreshes publish as usual.
const BACKFILL_PUBLISH_EVERY: Duration = Duration::from_secs(5);

/// Until a target is ready, a failed start-up refresh is tried again after
/// this long, doubling up to [`STARTUP_RETRY_MAX`]: an unready exporter may
/// not be scraped at all (a Kubernetes Service leaves it out), so it does
/// not wait for a scrape to try again.
const STARTUP_RETRY_FIRST: Duration = Duration::from_secs(2);
const STARTUP_RETRY_MAX: Duration = Duration::from_secs(60);

/// What kept a refresh from reading everything: the first failure, in one
/// line (the first one retrying will not fix, if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trouble {
    pub reason: String,
    /// Retrying will not fix it (access denied, no credentials, a refused
    /// role, an invalid region).
    pub lasting: bool,
    /// Failed reads in all.
    pub failures: usize,
}

impl Trouble {
    fn of(report: &RefreshReport) -> Option<Trouble> {
        let first = report
            .failures
            .iter()
            .find(|f| f.error.is_lasting())
            .or(report.failures.first())?;
        Some(Trouble {
            reason: first.error.to_string(),
            lasting: first.error.is_lasting(),
            failures: report.failures.len(),
        })
    }
}

/// Why readiness stopped waiting for a target that has not completed a
/// refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Its refresh failed with an error retrying will not fix.
    Lasting,
    /// It joined after start-up: readiness never waited for it.
    Joined,
    /// It kept failing for `--readiness.max-wait` (this long).
    Waited(Duration),
}

/// Where a target stands: what the landing page and `/-/ready` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Its first refresh runs.
    Starting,
    /// It has completed a refresh; `trouble` if the last one failed (the
    /// last good data is served).
    Ready { trouble: Option<Trouble> },
    /// It has never completed a refresh; `released` once readiness no
    /// longer waits for it.
    Failing {
        trouble: Trouble,
        released: Option<Release>,
    },
}

#[derive(Debug, Default)]
struct Coordination {
    running: bool,
    started: u64,
    last_end: Option<Instant>,
    ready: bool,
    /// Wall time at which the last refresh ended.
    refreshed_at: Option<Nanos>,
    /// The tracker's version the served snapshot was encoded from.
    encoded: Option<u64>,
    /// The backfill task runs.
    backfilling: bool,
    /// The refresh the exporter started at start-up, before any scrape.
    startup: Option<u64>,
    /// Why the last refresh was incomplete; `None` after a complete one.
    trouble: Option<Trouble>,
    /// Set when readiness stopped waiting for this target before it was
    /// ready.
    released: Option<Release>,
    /// No longer served (its account left): its refreshes and backfill
    /// stop.
    retired: bool,
}

/// One target (an account and region) and everything it holds.
pub struct Target<C> {
    name: Arc<str>,
    api: C,
    tracker: tokio::sync::Mutex<Tracker>,
    snapshot: RwLock<Arc<Snapshot>>,
    coordination: Mutex<Coordination>,
    finished: watch::Sender<u64>,
    min_interval: Duration,
    clock: Arc<dyn Clock>,
    metrics: ExporterMetrics,
    logs: LogLimiter,
}

impl<C: ImageBuilderApi> Target<C> {
    pub fn new(
        name: &str,
        api: C,
        tracker: Tracker,
        min_interval: Duration,
        clock: Arc<dyn Clock>,
        metrics: ExporterMetrics,
    ) -> Arc<Self> {
        metrics.init_target(name);
        Arc::new(Self {
            name: Arc::from(name),
            api,
            tracker: tokio::sync::Mutex::new(tracker),
            snapshot: RwLock::new(Arc::new(Snapshot::empty(name))),
            coordination: Mutex::new(Coordination::default()),
            finished: watch::channel(0).0,
            min_interval,
            clock,
            metrics,
            logs: LogLimiter::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The snapshot currently served.
    pub fn current(&self) -> Arc<Snapshot> {
        crate::base::sync::read(&self.snapshot).clone()
    }

    /// Wall time at which the last refresh ended, if any did.
    pub fn refreshed_at(&self) -> Option<Nanos> {
        self.coord().refreshed_at
    }

    /// True once a refresh has read everything it needed.
    pub fn is_ready(&self) -> bool {
        self.coord().ready
    }

    /// Where the target stands (see [`Standing`]).
    pub fn standing(&self) -> Standing {
        let c = self.coord();
        match (&c.trouble, c.ready) {
            (trouble, true) => Standing::Ready {
                trouble: trouble.clone(),
            },
            (Some(trouble), false) => Standing::Failing {
                trouble: trouble.clone(),
                released: c.released,
            },
            (None, false) => Standing::Starting,
        }
    }

    /// True while `/-/ready` waits for this target: it has not completed a
    /// refresh, and neither failed for good nor for `--readiness.max-wait`.
    pub fn holds_readiness(&self) -> bool {
        let c = self.coord();
        !c.ready && c.released.is_none() && !c.retired
    }

    /// Marks a target added after start-up (an account that joined the
    /// organisation): readiness never waits for it, since the exporter
    /// already serves the others and an unready pod leaves its Service
    /// whole.
    pub fn joined_after_start(&self) {
        let mut c = self.coord();
        if c.released.is_none() {
            c.released = Some(Release::Joined);
        }
    }

    /// Stops the target's work (its backfill, its start-up retries) once it
    /// is no longer served; a refresh already running ends on its own.
    pub fn retire(&self) {
        self.coord().retired = true;
    }

    fn is_retired(&self) -> bool {
        self.coord().retired
    }

    fn coord(&self) -> std::sync::MutexGuard<'_, Coordination> {
        crate::base::sync::lock(&self.coordination)
    }

    /// Starts a refresh unless one is running or the last ended too
    /// recently; returns the refresh to wait for, if any.
    pub fn trigger(self: &Arc<Self>) -> Option<u64> {
        self.start_refresh().map(|(generation, _)| generation)
    }

    /// Starts the start-up refresh: scrapes that arrive while it runs are
    /// answered at once (see [`Target::scrape`]). Returns the refresh to
    /// wait for, if one runs.
    pub fn start_up(self: &Arc<Self>) -> Option<u64> {
        match self.start_refresh() {
            Some((generation, true)) => {
                self.coord().startup = Some(generation);
                Some(generation)
            }
            Some((generation, false)) => Some(generation),
            None => None,
        }
    }

    /// Refreshes until the target is ready or readiness no longer waits
    /// for it: a start-up refresh that failed with a passing error is tried
    /// again with back-off (an unready exporter may never be scraped), and
    /// once `max_wait` has passed since `started`, a target still failing
    /// is released. A first refresh that is slow but not failing is never
    /// released: a large account's cold start is not a failure. After this
    /// returns, scrapes drive the refreshes as usual.
    pub async fn settle(self: Arc<Self>, started: Instant, max_wait: Duration) {
        let deadline = started + max_wait;
        let mut delay = STARTUP_RETRY_FIRST;
        loop {
            if self.is_retired() {
                return;
            }
            if let Some(generation) = self.start_up() {
                self.wait_for(generation).await;
            }
            let settled = {
                let c = self.coord();
                c.ready
                    || c.retired
                    || matches!(c.released, Some(Release::Lasting | Release::Waited(_)))
            };
            if settled {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                self.release_after(max_wait);
                return;
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(STARTUP_RETRY_MAX);
            if Instant::now() >= deadline && self.holds_readiness() {
                // Do not start one more refresh first: the bound is the
                // flag's, not the flag's plus a refresh.
                self.release_after(max_wait);
                return;
            }
        }
    }

    /// Stops readiness waiting for this target, still failing after
    /// `max_wait`, and says so.
    fn release_after(&self, max_wait: Duration) {
        let reason = {
            let mut c = self.coord();
            match c.released {
                _ if c.ready => return,
                // Readiness never waited for it (joined), or stopped.
                Some(_) => return,
                None => {}
            }
            c.released = Some(Release::Waited(max_wait));
            c.trouble.as_ref().map(|t| t.reason.clone())
        };
        tracing::warn!(
            target_name = %self.name,
            error = reason.as_deref().unwrap_or("its first refresh has not finished"),
            max_wait_s = max_wait.as_secs_f64(),
            "readiness no longer waits for this target: still failing after --readiness.max-wait; it is retried at each scrape"
        );
    }

    /// [`Target::trigger`], saying whether this call started the refresh.
    fn start_refresh(self: &Arc<Self>) -> Option<(u64, bool)> {
        let mut c = self.coord();
        if c.running {
            return Some((c.started, false));
        }
        if c.last_end.is_some_and(|t| t.elapsed() < self.min_interval) {
            return None;
        }
        c.running = true;
        c.started += 1;
        let generation = c.started;
        drop(c);
        let me = self.clone();
        tokio::spawn(async move { me.run(generation).await });
        Some((generation, true))
    }

    /// What a scrape gets: a fresh snapshot if a refresh is due and ends
    /// within `timeout`, the current one otherwise. While the start-up
    /// refresh of a cold start runs, the scrape is answered at once: it
    /// would wait the whole timeout, and a scraper whose own timeout is
    /// shorter would read the exporter as down during every start. The page
    /// then says "starting" (`imagebuilder_exporter_ready` 0).
    pub async fn scrape(self: &Arc<Self>, timeout: Duration) -> Arc<Snapshot> {
        let mut rx = self.finished.subscribe();
        if let Some((generation, _)) = self.start_refresh() {
            if self.coord().startup == Some(generation) {
                return self.current();
            }
            let waited = tokio::time::timeout(timeout, rx.wait_for(|g| *g >= generation)).await;
            if waited.is_err() {
                self.metrics.scrape_timeouts.inc();
                self.metrics.touch();
                if self.logs.allow("scrape-timeout", Some(WARN_EVERY)) {
                    tracing::warn!(target_name = %self.name, timeout_s = timeout.as_secs_f64(), "refresh slower than the scrape could wait (--scrape.timeout, or the scraper's timeout less --scrape.timeout-offset); serving the previous snapshot while it finishes");
                }
            }
        }
        self.current()
    }

    /// Waits until the refresh `generation` (or a later one) has finished.
    pub async fn wait_for(&self, generation: u64) {
        let mut rx = self.finished.subscribe();
        let _ = rx.wait_for(|g| *g >= generation).await;
    }

    async fn run(self: Arc<Self>, generation: u64) {
        // Whatever happens (even a panic), the next scrape can refresh.
        struct Done<'a, C: ImageBuilderApi>(&'a Target<C>, u64, bool);
        impl<C: ImageBuilderApi> Drop for Done<'_, C> {
            fn drop(&mut self) {
                let mut c = self.0.coord();
                c.running = false;
                c.last_end = Some(Instant::now());
                c.ready |= self.2;
                drop(c);
                self.0.finished.send_replace(self.1);
            }
        }
        let mut done = Done(&self, generation, false);

        let started = Instant::now();
        let mut tracker = self.tracker.lock().await;
        let before = tracker.phase();
        let report = tracker.refresh(&self.api, self.clock.now()).await;
        self.log_phase(before, tracker.phase());
        // Unchanged data keeps the snapshot it has: nothing to encode again.
        self.publish(&tracker);
        let pending = tracker.backfill_pending();
        self.track_stats(&tracker);
        drop(tracker);
        self.coord().refreshed_at = Some(self.clock.now());

        let t = [&*self.name];
        let complete = report.complete();
        let trouble = Trouble::of(&report);
        let released = {
            let mut c = self.coord();
            c.trouble = trouble.clone();
            let lasting = trouble.as_ref().is_some_and(|t| t.lasting);
            let release = !c.ready
                && !complete
                && lasting
                && matches!(c.released, None | Some(Release::Joined));
            if release {
                c.released = Some(Release::Lasting);
            }
            release
        };
        // Set from the end of the first refresh on: before it, the target
        // is starting, not failing (`imagebuilder_exporter_ready` says so).
        self.metrics
            .up
            .with_label_values(&t)
            .set(i64::from(complete));
        if complete {
            self.metrics.ready.with_label_values(&t).set(1);
        }
        self.metrics
            .refresh_duration
            .with_label_values(&t)
            .set(started.elapsed().as_secs_f64());
        if complete {
            self.metrics
                .last_refresh_success
                .with_label_values(&t)
                .set(secs(self.clock.now()));
        }
        self.metrics.touch();
        if pending > 0 {
            let mut c = self.coord();
            if !c.backfilling {
                c.backfilling = true;
                tokio::spawn(self.clone().backfill());
            }
        }
        self.log_report(&report, started.elapsed());
        if let (true, Some(trouble)) = (released, &trouble) {
            tracing::warn!(target_name = %self.name, error = %trouble.reason, "readiness no longer waits for this target: its refresh failed with an error retrying will not fix (imagebuilder_up 0 until it is fixed; the other targets are served)");
        }
        done.2 = complete;
    }

    /// Reads the builds `arns` at once, as a refresh would (an event named
    /// them), and serves the result.
    pub async fn refresh_builds(&self, arns: &[Arc<str>]) -> (RefreshReport, Targeted) {
        let mut tracker = self.tracker.lock().await;
        let (report, targeted) = tracker.refresh_builds(&self.api, arns).await;
        self.publish(&tracker);
        self.track_stats(&tracker);
        drop(tracker);
        self.log_failures(&report);
        (report, targeted)
    }

    /// Reads the account's pipelines at once (an event said the service
    /// disabled one) and serves the result; returns the report and the
    /// ARNs the listing holds.
    pub async fn refresh_pipelines(&self) -> (RefreshReport, Vec<String>) {
        let mut tracker = self.tracker.lock().await;
        let report = tracker.refresh_pipelines_now(&self.api).await;
        let known = tracker.pipeline_arns();
        self.publish(&tracker);
        drop(tracker);
        self.metrics.touch();
        self.log_failures(&report);
        (report, known)
    }

    /// Encodes and serves the tracker's state if it changed since the last
    /// snapshot.
    fn publish(&self, tracker: &Tracker) {
        let version = tracker.version();
        if self.coord().encoded != Some(version) {
            let s = tracker.snapshot(&self.name);
            *crate::base::sync::write(&self.snapshot) = Arc::new(s);
            self.coord().encoded = Some(version);
        }
    }

    /// What the tracker holds and has left to read, as the exporter's own
    /// metrics.
    fn track_stats(&self, tracker: &Tracker) {
        let t = [&*self.name];
        let stats = tracker.stats();
        self.metrics
            .tracked_builds
            .with_label_values(&t)
            .set(stats.tracked_builds as i64);
        self.metrics
            .tracked_step_executions
            .with_label_values(&t)
            .set(stats.tracked_step_executions as i64);
        self.metrics
            .backfill_pending
            .with_label_values(&t)
            .set(tracker.backfill_pending() as i64);
        self.metrics
            .builds_in_flight
            .with_label_values(&t)
            .set(stats.builds_in_flight as i64);
        self.metrics.touch();
    }

    /// Reads the backfill in batches until nothing is left, each batch
    /// after any refresh that runs: refreshes keep their pace, and the
    /// backfill takes the API's remaining capacity.
    async fn backfill(self: Arc<Self>) {
        let mut published = Instant::now();
        loop {
            // Chosen and applied under the lock; read without it, one call
            // at a time after any refresh, so that a refresh never waits
            // for more than one of the backfill's calls.
            self.no_refresh_running().await;
            if self.is_retired() {
                self.coord().backfilling = false;
                return;
            }
            let Some(batch) = self.tracker.lock().await.backfill_batch(BACKFILL_BATCH) else {
                self.coord().backfilling = false;
                return;
            };
            let reads = batch.read(&self.api, || self.no_refresh_running()).await;
            let mut tracker = self.tracker.lock().await;
            let before = tracker.phase();
            let report = tracker.apply_backfill(reads);
            self.log_phase(before, tracker.phase());
            let pending = tracker.backfill_pending();
            if pending == 0 || published.elapsed() >= BACKFILL_PUBLISH_EVERY {
                self.publish(&tracker);
                published = Instant::now();
            }
            self.track_stats(&tracker);
            drop(tracker);
            self.log_failures(&report);
            if pending == 0 {
                self.coord().backfilling = false;
                return;
            }
            if !report.complete() {
                tokio::time::sleep(BACKFILL_RETRY).await;
            }
        }
    }

    /// Logs failed reads (at most once per resource and five minutes) and
    /// counts bad fields.
    fn log_failures(&self, report: &RefreshReport) {
        let t = [&*self.name];
        let had_data = self.coord().ready;
        for f in &report.failures {
            if let ApiError::Credentials { .. } = f.error {
                // Every call of the target fails alike (a role whose trust
                // was revoked, say): one line for them all, not one per
                // resource.
                let key = format!("credentials|{}", f.error.code());
                if self.logs.allow(&key, Some(WARN_EVERY)) {
                    if had_data {
                        tracing::warn!(target_name = %self.name, operation = %f.error.operation(), code = f.error.code(), error = %f.error, "could not read; keeping the last good data (no credentials: every call fails alike, and repeats within five minutes are not logged)");
                    } else {
                        tracing::warn!(target_name = %self.name, operation = %f.error.operation(), code = f.error.code(), error = %f.error, "could not read; nothing read yet for this target");
                    }
                }
                continue;
            }
            let key = format!(
                "fail|{}|{}|{}",
                f.error.operation(),
                f.error.code(),
                f.resource
            );
            if self.logs.allow(&key, Some(WARN_EVERY)) {
                // "Last good data" only where there is some: before the
                // first complete refresh there may be none.
                if had_data {
                    tracing::warn!(target_name = %self.name, operation = %f.error.operation(), code = f.error.code(), resource = %f.resource, error = %f.error, "could not read; keeping the last good data");
                } else {
                    tracing::warn!(target_name = %self.name, operation = %f.error.operation(), code = f.error.code(), resource = %f.resource, error = %f.error, "could not read; nothing read yet for this target");
                }
            }
        }
        for id in &report.unknown_step_ids {
            if self.logs.allow(&format!("unknown|{id}"), Some(WARN_EVERY)) {
                tracing::warn!(target_name = %self.name, step_execution_id = %id, "--step-execution-id is not known to Image Builder");
            }
        }
        for i in &report.issues {
            self.metrics
                .data_issues
                .with_label_values(&[t[0], i.operation.as_str(), i.kind, i.field])
                .inc();
            if self.logs.allow(&format!("issue|{i}"), None) {
                tracing::warn!(target_name = %self.name, operation = %i.operation, kind = i.kind, field = i.field, detail = %i.detail, "bad value in an API answer; treated as absent");
            }
        }
        if report.dropped_builds > 0 {
            self.metrics
                .dropped_builds
                .with_label_values(&t)
                .inc_by(report.dropped_builds as u64);
            if self.logs.allow("dropped", Some(WARN_EVERY)) {
                tracing::warn!(target_name = %self.name, dropped = report.dropped_builds, "more builds than --discovery.max-builds; the oldest finished builds are not tracked");
            }
        }
    }

    /// Says when the cold start is done: everything a full read gives is
    /// known (the benchmark waits for this line).
    fn log_phase(&self, before: Phase, after: Phase) {
        if before != after && after == Phase::Steady {
            tracing::info!(target_name = %self.name, "backfill finished: every tracked build is read");
        }
    }

    /// Returns once no refresh is running.
    async fn no_refresh_running(&self) {
        loop {
            let (running, generation) = {
                let c = self.coord();
                (c.running, c.started)
            };
            if !running {
                return;
            }
            self.wait_for(generation).await;
        }
    }

    fn log_report(&self, report: &RefreshReport, took: Duration) {
        self.log_failures(report);
        tracing::debug!(
            target_name = %self.name,
            took_ms = took.as_millis() as u64,
            discovery = report.discovery_ran,
            failures = report.failures.len(),
            complete = report.complete(),
            "refresh finished"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::{ApiError, Fetched, Operation, Page};
    use crate::base::clock::ManualClock;
    use crate::model::{Build, Pipeline, StepDetail, StepExecution, WorkflowExecution};
    use crate::refresh::discovery::DiscoveryConfig;

    /// An account with no builds whose listing fails with `fault` while
    /// one is set, after `delay`.
    #[derive(Default)]
    struct Account {
        fault: Mutex<Option<ApiError>>,
        delay: Mutex<Duration>,
        listings: Mutex<u32>,
    }

    impl Account {
        fn fail_with(&self, e: Option<ApiError>) {
            *self.fault.lock().unwrap() = e;
        }
        fn listings(&self) -> u32 {
            *self.listings.lock().unwrap()
        }
    }

    impl ImageBuilderApi for Account {
        async fn list_image_build_versions(
            &self,
            _: Option<String>,
            _: Option<String>,
        ) -> Result<Page<Build>, ApiError> {
            *self.listings.lock().unwrap() += 1;
            let delay = *self.delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            match self.fault.lock().unwrap().clone() {
                Some(e) => Err(e),
                None => Ok(Page {
                    items: Vec::new(),
                    next_token: None,
                    issues: Vec::new(),
                }),
            }
        }
        async fn list_workflow_executions(
            &self,
            _: String,
            _: Option<String>,
        ) -> Result<Page<WorkflowExecution>, ApiError> {
            unreachable!("no builds")
        }
        async fn list_workflow_step_executions(
            &self,
            _: String,
            _: Option<String>,
        ) -> Result<Page<StepExecution>, ApiError> {
            unreachable!("no builds")
        }
        async fn get_workflow_step_execution(
            &self,
            _: String,
        ) -> Result<Fetched<StepDetail>, ApiError> {
            unreachable!("no builds")
        }
        async fn list_image_pipelines(
            &self,
            _: Option<String>,
        ) -> Result<Page<Pipeline>, ApiError> {
            match self.fault.lock().unwrap().clone() {
                Some(e) => Err(e),
                None => Ok(Page {
                    items: Vec::new(),
                    next_token: None,
                    issues: Vec::new(),
                }),
            }
        }
    }

    const OP: Operation = Operation::ListImageBuildVersions;
    const MAX_WAIT: Duration = Duration::from_secs(300);

    fn target(api: Arc<Account>) -> Arc<Target<Arc<Account>>> {
        Target::new(
            "prod-eu",
            api,
            Tracker::new(DiscoveryConfig::default()),
            Duration::ZERO,
            ManualClock::new(0),
            ExporterMetrics::new().unwrap(),
        )
    }

    fn denied() -> ApiError {
        ApiError::Credentials {
            operation: OP,
            message: "cannot assume arn:aws:iam::210987654321:role/x: STS answered AccessDenied"
                .into(),
            code: Some("AccessDenied".into()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_retrying_will_not_fix_settles_the_target_at_once() {
        let api = Arc::new(Account::default());
        api.fail_with(Some(denied()));
        let t = target(api.clone());
        assert!(t.holds_readiness());
        assert_eq!(t.standing(), Standing::Starting);
        let settling = tokio::spawn(t.clone().settle(Instant::now(), MAX_WAIT));
        tokio::time::timeout(Duration::from_secs(1), settling)
            .await
            .expect("settled without waiting for --readiness.max-wait")
            .unwrap();
        assert!(!t.holds_readiness());
        assert!(!t.is_ready(), "imagebuilder_exporter_ready stays 0");
        assert_eq!(
            t.standing(),
            Standing::Failing {
                trouble: Trouble {
                    reason: denied().to_string(),
                    lasting: true,
                    failures: 1
                },
                released: Some(Release::Lasting)
            }
        );
        assert_eq!(api.listings(), 1, "not retried");
    }

    #[tokio::test(start_paused = true)]
    async fn a_passing_failure_is_retried_and_holds_readiness_until_the_bound() {
        let api = Arc::new(Account::default());
        api.fail_with(Some(ApiError::Timeout { operation: OP }));
        let t = target(api.clone());
        let started = Instant::now();
        let settling = tokio::spawn(t.clone().settle(started, MAX_WAIT));
        tokio::time::sleep(MAX_WAIT - Duration::from_secs(1)).await;
        assert!(t.holds_readiness(), "{:?}", t.standing());
        assert!(
            matches!(t.standing(), Standing::Failing { released: None, ref trouble } if !trouble.lasting)
        );
        // Retried with back-off (2 s, 4 s … a minute), not only at scrapes.
        let tries = api.listings();
        assert!((5..=12).contains(&tries), "{tries} listings");
        settling.await.unwrap();
        assert!(started.elapsed() <= MAX_WAIT + Duration::from_secs(1));
        assert!(!t.holds_readiness());
        assert_eq!(
            t.standing(),
            Standing::Failing {
                trouble: Trouble {
                    reason: "ListImageBuildVersions timed out (--aws.request-timeout)".into(),
                    lasting: false,
                    failures: 1
                },
                released: Some(Release::Waited(MAX_WAIT))
            }
        );
        // Once it reads again, it is ready as any other.
        api.fail_with(None);
        let g = t.trigger().unwrap();
        t.wait_for(g).await;
        assert!(t.is_ready());
        assert_eq!(t.standing(), Standing::Ready { trouble: None });
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_that_recovers_in_time_is_ready_and_never_released() {
        let api = Arc::new(Account::default());
        api.fail_with(Some(ApiError::Timeout { operation: OP }));
        let t = target(api.clone());
        let settling = tokio::spawn(t.clone().settle(Instant::now(), MAX_WAIT));
        tokio::time::sleep(Duration::from_secs(10)).await;
        api.fail_with(None);
        settling.await.unwrap();
        assert!(t.is_ready());
        assert!(!t.holds_readiness());
        assert!(Instant::now().elapsed() < MAX_WAIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_cold_start_is_not_a_failure_and_keeps_holding_readiness() {
        let api = Arc::new(Account::default());
        *api.delay.lock().unwrap() = MAX_WAIT * 2;
        let t = target(api.clone());
        let started = Instant::now();
        let settling = tokio::spawn(t.clone().settle(started, MAX_WAIT));
        tokio::time::sleep(MAX_WAIT + Duration::from_secs(60)).await;
        assert!(t.holds_readiness(), "its first refresh still runs");
        assert_eq!(t.standing(), Standing::Starting);
        settling.await.unwrap();
        assert!(t.is_ready());
        assert_eq!(api.listings(), 1);
    }
}

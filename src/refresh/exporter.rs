//! The exporter as the web server sees it: its targets, one metrics page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::watch;

use crate::aws::ImageBuilderApi;
use crate::base::clock::{secs, Clock};
use crate::metrics::ExporterMetrics;
use crate::refresh::target::Target;
use bytes::Bytes;

use crate::base::loglimit::LogLimiter;
use crate::refresh::page::{Lookup, PageCache, PageKey};
use crate::snapshot::{render, render_gzip, Snapshot};
use crate::web::serve::Chunks;

/// The targets as one list, swapped whole when the organisation's accounts
/// change, so that a scrape renders one consistent list.
type Targets<C> = Arc<Vec<Arc<Target<C>>>>;

/// All targets, shared by the web server, the start-up refresh and the
/// organisation's listing.
pub struct Exporter<C> {
    targets: RwLock<Targets<C>>,
    /// False until the organisation's accounts were first listed (or the
    /// listing gave up): `/-/ready` waits for it. True without one.
    listed: watch::Sender<bool>,
    metrics: ExporterMetrics,
    clock: Arc<dyn Clock>,
    scrape_timeout: ScrapeTimeout,
    /// Targets whose series are not served, and the earlier target that
    /// serves their account and region, as of the last scrape.
    overlaps: Mutex<HashMap<Arc<str>, Arc<str>>>,
    /// The last gzip page, for the scrapes that come right after it.
    page: PageCache,
    logs: LogLimiter,
}

impl<C: ImageBuilderApi> Exporter<C> {
    pub fn new(
        targets: Vec<Arc<Target<C>>>,
        metrics: ExporterMetrics,
        clock: Arc<dyn Clock>,
        scrape_timeout: ScrapeTimeout,
    ) -> Arc<Self> {
        metrics.shard_targets.set(targets.len() as i64);
        Arc::new(Self {
            targets: RwLock::new(Arc::new(targets)),
            listed: watch::channel(true).0,
            metrics,
            clock,
            scrape_timeout,
            overlaps: Mutex::new(HashMap::new()),
            page: PageCache::default(),
            logs: LogLimiter::default(),
        })
    }

    /// The targets served now.
    pub fn targets(&self) -> Targets<C> {
        crate::base::sync::read(&self.targets).clone()
    }

    /// Adds targets (an organisation's accounts), served from the next
    /// scrape on.
    pub fn add_targets(&self, new: Vec<Arc<Target<C>>>) {
        let mut targets = crate::base::sync::write(&self.targets);
        let mut list = Vec::clone(&targets);
        list.extend(new);
        self.metrics.shard_targets.set(list.len() as i64);
        *targets = Arc::new(list);
    }

    /// Stops serving the targets named (accounts that left the
    /// organisation): their series go with them, the exporter's own
    /// included, and their work stops.
    pub fn remove_targets(&self, names: &[&str]) {
        let removed: Vec<Arc<Target<C>>> = {
            let mut targets = crate::base::sync::write(&self.targets);
            let (gone, kept): (Vec<_>, Vec<_>) = targets
                .iter()
                .cloned()
                .partition(|t| names.contains(&t.name()));
            self.metrics.shard_targets.set(kept.len() as i64);
            *targets = Arc::new(kept);
            gone
        };
        for t in removed {
            t.retire();
            self.metrics.forget_target(t.name());
            crate::base::sync::lock(&self.overlaps)
                .retain(|target, first| **target != *t.name() && **first != *t.name());
        }
    }

    /// `/-/ready` waits for the organisation's first listing.
    pub fn await_organization(&self) {
        self.listed.send_replace(false);
    }

    /// The organisation's accounts were listed (or the listing gave up):
    /// readiness no longer waits for it.
    pub fn organization_listed(&self) {
        self.listed.send_replace(true);
    }

    /// Ready once the organisation (if any) was listed and no target holds
    /// readiness: each has completed a refresh, or failed with an error
    /// retrying will not fix, or kept failing for `--readiness.max-wait`.
    /// One bad target never keeps the others from being scraped (a
    /// Kubernetes Service drops unready pods).
    pub fn is_ready(&self) -> bool {
        *self.listed.borrow() && self.targets().iter().all(|t| !t.holds_readiness())
    }

    /// Whether `/-/ready` waits for the organisation's first listing.
    pub fn awaits_organization(&self) -> bool {
        !*self.listed.borrow()
    }

    /// Starts a refresh of every target without waiting, so that the
    /// exporter becomes ready even before the first scrape (Kubernetes only
    /// sends scrapes to ready pods); a failing one is tried again until it
    /// is ready or readiness stops waiting for it after `max_wait` (see
    /// [`Target::settle`]). Logs one `ready` line then, with the time and
    /// the API calls it took.
    pub fn warm_up(self: &Arc<Self>, max_wait: Duration) {
        let started = tokio::time::Instant::now();
        let first = self.targets();
        let mut settling: Vec<_> = first
            .iter()
            .map(|t| tokio::spawn(t.clone().settle(started, max_wait)))
            .collect();
        let me = self.clone();
        tokio::spawn(async move {
            // The organisation's accounts, once listed, settle too.
            let _ = me.listed.subscribe().wait_for(|listed| *listed).await;
            for t in me.targets().iter() {
                if !first.iter().any(|f| Arc::ptr_eq(f, t)) {
                    settling.push(tokio::spawn(t.clone().settle(started, max_wait)));
                }
            }
            for s in settling {
                let _ = s.await;
            }
            me.log_ready(started.elapsed());
        });
    }

    /// The `ready` line: how long it took, how many requests, and which
    /// targets it is ready without.
    fn log_ready(&self, took: Duration) {
        let targets = self.targets();
        let calls: u64 = targets
            .iter()
            .flat_map(|t| {
                crate::model::Operation::ALL.iter().map(|op| {
                    self.metrics
                        .api_requests
                        .with_label_values(&[t.name(), op.as_str()])
                        .get()
                })
            })
            .sum();
        let failing: Vec<&str> = targets
            .iter()
            .filter(|t| !t.is_ready())
            .map(|t| t.name())
            .collect();
        let took_s = (took.as_secs_f64() * 1000.0).round() / 1000.0;
        if failing.is_empty() {
            tracing::info!(took_s, api_calls = calls, targets = targets.len(), "ready");
        } else {
            tracing::warn!(took_s, api_calls = calls, targets = targets.len(), failing_targets = %failing.join(","), "ready");
        }
    }

    /// How long a scrape that sent `header` (the value of
    /// [`SCRAPE_TIMEOUT_HEADER`], if any) may wait for a refresh.
    pub fn scrape_wait(&self, header: Option<&str>) -> Duration {
        self.scrape_timeout.for_scrape(header)
    }

    /// The body of `/metrics`, waiting at most `--scrape.timeout` for a
    /// refresh (see [`Exporter::render_metrics_within`]).
    pub async fn render_metrics(self: &Arc<Self>, encoding: Encoding) -> Chunks {
        self.render_metrics_within(encoding, self.scrape_timeout.max)
            .await
    }

    /// The body of `/metrics`: refreshes what is due (waiting at most
    /// `wait`), then renders every target and the exporter's own metrics,
    /// as plain text or gzip. A gzip page rendered for an earlier scrape is
    /// served again while nothing on it changed, for up to a second (see
    /// [`crate::refresh::page`]); plain text, which people read, is always
    /// rendered anew.
    pub async fn render_metrics_within(
        self: &Arc<Self>,
        encoding: Encoding,
        wait: Duration,
    ) -> Chunks {
        let targets = self.targets();
        let snapshots = join_all(targets.iter().map(|t| t.scrape(wait))).await;
        let key = PageKey {
            snapshots,
            changes: self.metrics.changes(),
        };
        if encoding == Encoding::Identity {
            return self.render_page(&key.snapshots, Encoding::Identity);
        }
        match self.page.lookup(&key, self.clock.now()) {
            Lookup::Fresh(body) => return body,
            Lookup::Stale(body) => {
                if let Some(turn) = self.page.try_render_turn() {
                    let me = self.clone();
                    // Off the runtime's workers: they serve the stale page
                    // to the other scrapers meanwhile.
                    tokio::task::spawn_blocking(move || {
                        me.render_gzip_page(&key);
                        drop(turn);
                    });
                }
                return body;
            }
            Lookup::Miss => {}
        }
        let turn = self.page.render_turn().await;
        // Rendered for this same key while this scrape waited its turn.
        if let Lookup::Fresh(body) = self.page.lookup(&key, self.clock.now()) {
            return body;
        }
        let body = self.render_gzip_page(&key);
        drop(turn);
        body
    }

    /// Renders the gzip page of `key` and keeps it for the next scrapes.
    fn render_gzip_page(&self, key: &PageKey) -> Chunks {
        let at = self.clock.now();
        let body = self.render_page(&key.snapshots, Encoding::Gzip);
        self.page.store(key, at, &body);
        body
    }

    /// Renders `snapshots` (but those that overlap an earlier one) and the
    /// exporter's own metrics.
    fn render_page(&self, snapshots: &[Arc<Snapshot>], encoding: Encoding) -> Chunks {
        let snapshots = self.without_overlaps(snapshots.to_vec());
        let now = self.clock.now();
        for t in self.targets().iter() {
            if let Some(at) = t.refreshed_at() {
                self.metrics
                    .snapshot_age
                    .with_label_values(&[t.name()])
                    .set(secs(now.saturating_sub(at).max(0)));
            }
        }
        let mut own = Vec::with_capacity(16 * 1024);
        self.metrics.encode(&mut own);
        match encoding {
            Encoding::Identity => {
                let mut chunks = render(&snapshots, now);
                chunks.push(Bytes::from(own));
                Chunks::new(chunks)
            }
            Encoding::Gzip => Chunks::from(render_gzip(&snapshots, now, Bytes::from(own))),
        }
    }
}

impl<C> Exporter<C> {
    /// Drops the snapshots of targets that read an account and region an
    /// earlier target (in configuration order) already serves: two roles
    /// into one account would otherwise serve every series twice, which
    /// Prometheus refuses. Reported in `imagebuilder_exporter_target_overlap`
    /// and logged once.
    fn without_overlaps(&self, snapshots: Vec<Arc<Snapshot>>) -> Vec<Arc<Snapshot>> {
        let mut served: HashMap<(Arc<str>, Arc<str>), Arc<str>> = HashMap::new();
        let mut overlaps: HashMap<Arc<str>, Arc<str>> = HashMap::new();
        let mut keep = Vec::with_capacity(snapshots.len());
        for s in snapshots {
            match s.scopes().iter().find_map(|scope| served.get(scope)) {
                Some(first) => {
                    overlaps.insert(s.target.clone(), first.clone());
                }
                None => {
                    for scope in s.scopes() {
                        served.insert(scope.clone(), s.target.clone());
                    }
                    keep.push(s);
                }
            }
        }
        let mut last = crate::base::sync::lock(&self.overlaps);
        if *last != overlaps {
            for (target, first) in last.iter() {
                let _ = self
                    .metrics
                    .target_overlap
                    .remove_label_values(&[target, first]);
            }
            for (target, first) in &overlaps {
                self.metrics
                    .target_overlap
                    .with_label_values(&[target, first])
                    .set(1);
                if self.logs.allow(&format!("overlap|{target}|{first}"), None) {
                    tracing::warn!(target_name = %target, served_by = %first, "this target reads the same account and region as an earlier one; its series are not served (each series once): keep one of the two targets");
                }
            }
            *last = overlaps;
        }
        keep
    }
}

/// The header in which Prometheus sends its scrape timeout, in seconds
/// (`10`, `2.5`).
pub const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

/// How long a scrape may wait for a refresh. A scraper gives up after its
/// own timeout and records the target as down, though the exporter had
/// good data to serve: the wait follows the scraper's timeout less an
/// offset for the answer's way back (blackbox_exporter's
/// `--timeout-offset`), and never exceeds `--scrape.timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrapeTimeout {
    /// `--scrape.timeout`: the longest wait, and the wait of a scrape that
    /// does not say its timeout.
    pub max: Duration,
    /// `--scrape.timeout-offset`: taken off the scraper's timeout.
    pub offset: Duration,
}

impl ScrapeTimeout {
    /// The wait for a scrape that sent `header` as its timeout: the header
    /// less the offset, capped by the maximum. A header that is not a
    /// positive number of seconds is ignored (the maximum applies); one at
    /// or below the offset leaves no time to wait, so the scrape is
    /// answered at once with the data at hand.
    pub fn for_scrape(&self, header: Option<&str>) -> Duration {
        match header.and_then(positive_seconds) {
            Some(asked) => asked.saturating_sub(self.offset).min(self.max),
            None => self.max,
        }
    }
}

/// `2.5` as 2.5 s; `None` for anything but a finite positive number.
fn positive_seconds(s: &str) -> Option<Duration> {
    let v: f64 = s.trim().parse().ok()?;
    if v.is_finite() && v > 0.0 {
        Duration::try_from_secs_f64(v).ok()
    } else {
        None
    }
}

/// How `/metrics` is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn the_scrapers_timeout_less_the_offset_capped_by_the_flag() {
        let t = ScrapeTimeout {
            max: secs(10.0),
            offset: secs(0.5),
        };
        // Prometheus' 3 s: 2.5 s; its default 10 s: capped at the flag.
        assert_eq!(t.for_scrape(Some("3")), secs(2.5));
        assert_eq!(t.for_scrape(Some(" 2.75 ")), secs(2.25));
        assert_eq!(t.for_scrape(Some("10")), secs(9.5));
        assert_eq!(t.for_scrape(Some("60")), secs(10.0));
        // At or below the offset: answered at once.
        assert_eq!(t.for_scrape(Some("0.5")), Duration::ZERO);
        assert_eq!(t.for_scrape(Some("0.2")), Duration::ZERO);
        // No header, or one that is not a positive number: the flag.
        for bad in [
            None,
            Some(""),
            Some("soon"),
            Some("0"),
            Some("-3"),
            Some("NaN"),
            Some("inf"),
            Some("1e400"),
            Some("3s"),
        ] {
            assert_eq!(t.for_scrape(bad), secs(10.0), "{bad:?}");
        }
        // Without an offset the scraper's own timeout is used whole.
        let t = ScrapeTimeout {
            max: secs(10.0),
            offset: Duration::ZERO,
        };
        assert_eq!(t.for_scrape(Some("3")), secs(3.0));
    }
}

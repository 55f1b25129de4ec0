//! The exporter's own metrics: API calls, refreshes, what is tracked.
//!
//! These are few and change all the time, so they live in a `prometheus`
//! registry and are encoded at each scrape. Per-target metrics carry a
//! `target` label (the region, or the name given in the config file).

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::family::{FamilyDef, Kind, Own};

/// Every metric the exporter keeps about itself.
#[derive(Clone)]
pub struct ExporterMetrics {
    registry: Registry,
    pub up: IntGaugeVec,
    pub ready: IntGaugeVec,
    pub target_overlap: IntGaugeVec,
    pub api_requests: IntCounterVec,
    pub api_errors: IntCounterVec,
    pub api_duration: HistogramVec,
    pub api_rate_limit: GaugeVec,
    pub refresh_duration: GaugeVec,
    pub last_refresh_success: GaugeVec,
    pub snapshot_age: GaugeVec,
    pub tracked_builds: IntGaugeVec,
    pub tracked_step_executions: IntGaugeVec,
    pub backfill_pending: IntGaugeVec,
    pub builds_in_flight: IntGaugeVec,
    pub events_received: IntCounterVec,
    pub events_applied: IntCounterVec,
    pub events_ignored: IntCounterVec,
    pub event_delay: HistogramVec,
    pub event_queue_errors: IntCounterVec,
    pub events_last_received: GaugeVec,
    pub data_issues: IntCounterVec,
    pub dropped_builds: IntCounterVec,
    pub scrape_timeouts: IntCounter,
    pub organization_up: IntGauge,
    pub organization_last_success: Gauge,
    pub organization_errors: IntCounterVec,
    pub organization_accounts: IntGauge,
    pub shard_targets: IntGauge,
    /// Counts [`ExporterMetrics::touch`]: a page rendered earlier is served
    /// again only while this has not moved (see `refresh::page`).
    changes: Arc<AtomicU64>,
}

/// Metric construction only fails on invalid names, duplicate registration
/// or a row of the metric table that the code builds as another type: all
/// programming errors, caught by the unit tests.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot register the exporter's metrics: {0}")]
    Register(#[from] prometheus::Error),
    #[error("{name} is a {table} in the metric table, but the exporter builds a {code}")]
    Kind {
        name: &'static str,
        table: Kind,
        code: Kind,
    },
}

impl ExporterMetrics {
    /// Registers every row of the table's [`Own`] part: names, help, labels
    /// and buckets come from the table, the Rust type from the field.
    pub fn new() -> Result<Self, MetricsError> {
        let r = process_registry()?;
        Ok(Self {
            up: register(&r, Own::Up)?,
            ready: register(&r, Own::Ready)?,
            target_overlap: register(&r, Own::TargetOverlap)?,
            api_requests: register(&r, Own::ApiRequests)?,
            api_errors: register(&r, Own::ApiErrors)?,
            api_duration: register(&r, Own::ApiDuration)?,
            api_rate_limit: register(&r, Own::ApiRateLimit)?,
            refresh_duration: register(&r, Own::RefreshDuration)?,
            last_refresh_success: register(&r, Own::LastRefreshSuccess)?,
            snapshot_age: register(&r, Own::SnapshotAge)?,
            tracked_builds: register(&r, Own::TrackedBuilds)?,
            tracked_step_executions: register(&r, Own::TrackedStepExecutions)?,
            backfill_pending: register(&r, Own::BackfillPending)?,
            builds_in_flight: register(&r, Own::BuildsInFlight)?,
            events_received: register(&r, Own::EventsReceived)?,
            events_applied: register(&r, Own::EventsApplied)?,
            events_ignored: register(&r, Own::EventsIgnored)?,
            event_delay: register(&r, Own::EventDelay)?,
            event_queue_errors: register(&r, Own::EventQueueErrors)?,
            events_last_received: register(&r, Own::EventsLastReceived)?,
            data_issues: register(&r, Own::InvalidData)?,
            dropped_builds: register(&r, Own::DroppedBuilds)?,
            scrape_timeouts: register(&r, Own::ScrapeTimeouts)?,
            organization_up: unregistered(Own::OrganizationUp)?,
            organization_last_success: unregistered(Own::OrganizationLastSuccess)?,
            organization_errors: unregistered(Own::OrganizationErrors)?,
            organization_accounts: unregistered(Own::OrganizationAccounts)?,
            shard_targets: register(&r, Own::ShardTargets)?,
            changes: Arc::default(),
            registry: r,
        })
    }

    /// Says that these metrics changed outside a scrape (a refresh ended,
    /// events were handled, the organisation was listed): a page rendered
    /// before is not served again. Called after the changes, not before.
    pub fn touch(&self) {
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// How many times [`ExporterMetrics::touch`] was called.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Appends the text encoding of every metric in the registry.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let families = self.registry.gather();
        let mut text = String::new();
        // Encoding a gathered registry into a String cannot fail.
        if TextEncoder::new().encode_utf8(&families, &mut text).is_ok() {
            out.extend_from_slice(text.as_bytes());
        }
    }

    /// The event metrics of a target that follows an event queue, at 0
    /// (`reasons`: every `reason` of the ignored counter).
    pub fn init_events(&self, target: &str, reasons: &[&str]) {
        self.events_received.with_label_values(&[target]);
        self.events_applied.with_label_values(&[target]);
        for why in reasons {
            self.events_ignored.with_label_values(&[target, why]);
        }
    }

    /// Registers the organisation's error counter: only an exporter with
    /// an `organization` section serves the organisation's families.
    pub fn init_organization(&self) -> Result<(), MetricsError> {
        Ok(self
            .registry
            .register(Box::new(self.organization_errors.clone()))?)
    }

    /// Serves `imagebuilder_exporter_organization_up` from the end of the
    /// first listing on (absent before, as `imagebuilder_up` is: a start
    /// is not a failure); with `listed`, also the accounts and the time of
    /// the last success (absent until a listing succeeds). Registering
    /// twice is harmless: the registry refuses the second.
    pub fn show_organization(&self, listed: bool) {
        let _ = self
            .registry
            .register(Box::new(self.organization_up.clone()));
        if listed {
            let _ = self
                .registry
                .register(Box::new(self.organization_last_success.clone()));
            let _ = self
                .registry
                .register(Box::new(self.organization_accounts.clone()));
        }
    }

    /// Removes every series of a target that is no longer served (an
    /// account that left the organisation): its name would otherwise stay
    /// on the page, frozen, for the life of the process.
    pub fn forget_target(&self, target: &str) {
        forget(&self.up, target);
        forget(&self.ready, target);
        forget(&self.target_overlap, target);
        forget(&self.api_requests, target);
        forget(&self.api_errors, target);
        forget(&self.api_duration, target);
        forget(&self.api_rate_limit, target);
        forget(&self.refresh_duration, target);
        forget(&self.last_refresh_success, target);
        forget(&self.snapshot_age, target);
        forget(&self.tracked_builds, target);
        forget(&self.tracked_step_executions, target);
        forget(&self.backfill_pending, target);
        forget(&self.builds_in_flight, target);
        forget(&self.events_received, target);
        forget(&self.events_applied, target);
        forget(&self.events_ignored, target);
        forget(&self.event_delay, target);
        forget(&self.event_queue_errors, target);
        forget(&self.events_last_received, target);
        forget(&self.data_issues, target);
        forget(&self.dropped_builds, target);
    }

    /// Makes the per-target series exist from the start (at 0), so that
    /// `rate()` and alerts see the first change. `imagebuilder_up` is not
    /// among them: it is set when the first refresh ends, so that a cold
    /// start does not read as a failure.
    pub fn init_target(&self, target: &str) {
        self.ready.with_label_values(&[target]).set(0);
        self.dropped_builds.with_label_values(&[target]);
        for op in crate::model::Operation::ALL {
            self.api_requests.with_label_values(&[target, op.as_str()]);
            self.api_errors.with_label_values(&[
                target,
                op.as_str(),
                "CallRateLimitExceededException",
            ]);
        }
    }
}

/// A registry with the build's version and, on Linux, the process metrics.
fn process_registry() -> Result<Registry, MetricsError> {
    let r = Registry::new();
    let build_info: IntGaugeVec = register(&r, Own::BuildInfo)?;
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    #[cfg(target_os = "linux")]
    r.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    Ok(r)
}

/// Removes the series of `vec` that name `target` (as `target`, or as the
/// `served_by` of an overlap).
fn forget<T: MetricVecBuilder>(vec: &MetricVec<T>, target: &str) {
    let Some(order) = vec.desc().first().map(|d| d.variable_labels.clone()) else {
        return;
    };
    for family in vec.collect() {
        for m in family.get_metric() {
            let pairs = m.get_label();
            let names_it = pairs
                .iter()
                .any(|p| (p.name() == "target" || p.name() == "served_by") && p.value() == target);
            if !names_it {
                continue;
            }
            let values: Vec<&str> = order
                .iter()
                .map(|n| {
                    pairs
                        .iter()
                        .find(|p| p.name() == n)
                        .map_or("", |p| p.value())
                })
                .collect();
            let _ = vec.remove_label_values(&values);
        }
    }
}

/// A `prometheus` metric type built from a row of the metric table.
trait FromRow: Collector + Clone + Sized + 'static {
    /// The kind the row must say, so that the table cannot call a counter
    /// a gauge.
    const KIND: Kind;
    fn from_row(row: &FamilyDef, labels: &[&str]) -> prometheus::Result<Self>;
}

impl FromRow for IntGaugeVec {
    const KIND: Kind = Kind::Gauge;
    fn from_row(row: &FamilyDef, labels: &[&str]) -> prometheus::Result<Self> {
        Self::new(Opts::new(row.name, row.help), labels)
    }
}

impl FromRow for GaugeVec {
    const KIND: Kind = Kind::Gauge;
    fn from_row(row: &FamilyDef, labels: &[&str]) -> prometheus::Result<Self> {
        Self::new(Opts::new(row.name, row.help), labels)
    }
}

impl FromRow for IntCounterVec {
    const KIND: Kind = Kind::Counter;
    fn from_row(row: &FamilyDef, labels: &[&str]) -> prometheus::Result<Self> {
        Self::new(Opts::new(row.name, row.help), labels)
    }
}

impl FromRow for HistogramVec {
    const KIND: Kind = Kind::Histogram;
    fn from_row(row: &FamilyDef, labels: &[&str]) -> prometheus::Result<Self> {
        let opts = HistogramOpts::new(row.name, row.help).buckets(row.buckets.to_vec());
        Self::new(opts, labels)
    }
}

/// Metrics without labels, so that they are served from the start.
macro_rules! unlabelled {
    ($($ty:ty => $kind:expr;)+) => {$(
        impl FromRow for $ty {
            const KIND: Kind = $kind;
            fn from_row(row: &FamilyDef, labels: &[&str]) -> prometheus::Result<Self> {
                if !labels.is_empty() {
                    return Err(prometheus::Error::InconsistentCardinality {
                        expect: 0,
                        got: labels.len(),
                    });
                }
                Self::with_opts(Opts::new(row.name, row.help))
            }
        }
    )+};
}

unlabelled! {
    IntCounter => Kind::Counter;
    IntGauge => Kind::Gauge;
    Gauge => Kind::Gauge;
}

/// Builds the metric of a row, without registering it (for families served
/// only in some configurations).
fn unregistered<M: FromRow>(own: Own) -> Result<M, MetricsError> {
    let row = own.def();
    if row.kind != M::KIND {
        return Err(MetricsError::Kind {
            name: row.name,
            table: row.kind,
            code: M::KIND,
        });
    }
    let labels: Vec<&str> = row.label_names().collect();
    Ok(M::from_row(row, &labels)?)
}

/// Builds the metric of a row and registers it.
fn register<M: FromRow>(registry: &Registry, own: Own) -> Result<M, MetricsError> {
    let metric: M = unregistered(own)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_encodes() {
        let m = ExporterMetrics::new().unwrap();
        m.init_target("us-east-1");
        let mut out = Vec::new();
        m.encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.contains("imagebuilder_up{"),
            "absent before the first refresh"
        );
        assert!(text.contains("imagebuilder_exporter_ready{target=\"us-east-1\"} 0"));
        m.up.with_label_values(&["us-east-1"]).set(1);
        let mut out = Vec::new();
        m.encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("imagebuilder_up{target=\"us-east-1\"} 1"));
        assert!(text.contains("imagebuilder_exporter_build_info{version=\""));
        assert!(text.contains(
            "imagebuilder_exporter_api_requests_total{operation=\"GetWorkflowStepExecution\",target=\"us-east-1\"} 0"
        ));
    }

    /// Every row of the table's exporter part is registered once: building
    /// it again from its row collides with what `new` registered, or, for
    /// the organisation's rows, what an exporter with an `organization`
    /// section registers after its first successful listing.
    #[test]
    fn every_row_is_registered() {
        let m = ExporterMetrics::new().unwrap();
        m.init_organization().unwrap();
        m.show_organization(true);
        for own in Own::ALL {
            let row = own.def();
            let labels: Vec<&str> = row.label_names().collect();
            let again = IntGaugeVec::new(Opts::new(row.name, row.help), &labels).unwrap();
            assert!(
                matches!(
                    m.registry.register(Box::new(again)),
                    Err(prometheus::Error::AlreadyReg)
                ),
                "{} is not registered",
                row.name
            );
        }
    }

    #[test]
    fn the_table_decides_kinds_and_buckets() {
        let r = Registry::new();
        let e = register::<IntCounterVec>(&r, Own::Up).err().unwrap();
        assert_eq!(
            e.to_string(),
            "imagebuilder_up is a gauge in the metric table, but the exporter builds a counter"
        );
        assert!(register::<IntCounter>(&r, Own::EventsReceived).is_err());
        assert_eq!(
            Own::ApiDuration.def().buckets,
            prometheus::exponential_buckets(0.005, 2.0, 12).unwrap()
        );
    }
}

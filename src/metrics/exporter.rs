//! The exporter's own metrics: API calls, refreshes, what is tracked.
//!
//! These are few and change all the time, so they live in a `prometheus`
//! registry and are encoded at each scrape. Per-target metrics carry a
//! `target` label (the region, or the name given in the config file).

use prometheus::{
    exponential_buckets, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

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
}

/// Metric construction only fails on invalid names or duplicate
/// registration, both programming errors caught by the unit tests.
#[derive(Debug, thiserror::Error)]
#[error("cannot register the exporter's metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl ExporterMetrics {
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let target = &["target"];
        let op = &["target", "operation"];

        let up = IntGaugeVec::new(
            Opts::new("imagebuilder_up", "1 if the last refresh of this target read everything it needed from the Image Builder API, 0 if some call failed (the last good values are still served). Absent until the target's first refresh has finished: see imagebuilder_exporter_ready."),
            target,
        )?;
        let ready = IntGaugeVec::new(
            Opts::new("imagebuilder_exporter_ready", "0 from start-up until the first complete refresh of this target (a cold start), then 1 for the life of the process."),
            target,
        )?;
        let target_overlap = IntGaugeVec::new(
            Opts::new("imagebuilder_exporter_target_overlap", "1 while this target reads the same account and region as the earlier target served_by: its step, workflow and image series are not served, so that each series is served once. Keep one of the two targets."),
            &["target", "served_by"],
        )?;
        let api_requests = IntCounterVec::new(
            Opts::new(
                "imagebuilder_exporter_api_requests_total",
                "Image Builder API requests sent, retries included.",
            ),
            op,
        )?;
        let api_errors = IntCounterVec::new(
            Opts::new("imagebuilder_exporter_api_errors_total", "Image Builder API requests that failed, by AWS error code (or timeout, connection, parse)."),
            &["target", "operation", "code"],
        )?;
        let api_duration = HistogramVec::new(
            HistogramOpts::new(
                "imagebuilder_exporter_api_request_duration_seconds",
                "Latency of Image Builder API requests, each attempt on its own.",
            )
            .buckets(exponential_buckets(0.005, 2.0, 12)?),
            op,
        )?;
        let api_rate_limit = GaugeVec::new(
            Opts::new("imagebuilder_exporter_api_rate_limit_requests_per_second", "Client-side request rate currently allowed; lowered when the API throttles, restored on success."),
            target,
        )?;
        let refresh_duration = GaugeVec::new(
            Opts::new(
                "imagebuilder_exporter_refresh_duration_seconds",
                "Duration of the last refresh of this target.",
            ),
            target,
        )?;
        let last_refresh_success = GaugeVec::new(
            Opts::new(
                "imagebuilder_exporter_last_refresh_success_timestamp_seconds",
                "Unix time at which the last complete refresh of this target ended.",
            ),
            target,
        )?;
        let snapshot_age = GaugeVec::new(
            Opts::new("imagebuilder_exporter_snapshot_age_seconds", "Age of the data served for this target: seconds since the refresh that produced it ended."),
            target,
        )?;
        let tracked_builds = IntGaugeVec::new(
            Opts::new("imagebuilder_exporter_tracked_builds", "Image build versions tracked: the newest of each image, those within --discovery.lookback, and those still in flight."),
            target,
        )?;
        let tracked_step_executions = IntGaugeVec::new(
            Opts::new(
                "imagebuilder_exporter_tracked_step_executions",
                "Step executions held in memory for the tracked builds.",
            ),
            target,
        )?;
        let backfill_pending = IntGaugeVec::new(
            Opts::new("imagebuilder_exporter_backfill_pending", "Reads left before the state is what a full read of the account gives: older builds inside --discovery.lookback and the details of finished steps, read after the exporter is ready, newest first. 0 once done; absent before the first refresh ends."),
            target,
        )?;
        let builds_in_flight = IntGaugeVec::new(
            Opts::new("imagebuilder_exporter_builds_in_flight", "Tracked image builds not yet in a terminal state: while some run, Image Builder should be sending events."),
            target,
        )?;
        let events_received = IntCounterVec::new(
            Opts::new(
                "imagebuilder_exporter_events_received_total",
                "Messages received from the event queue (--events.sqs-queue-url).",
            ),
            target,
        )?;
        let events_applied = IntCounterVec::new(
            Opts::new(
                "imagebuilder_exporter_events_applied_total",
                "Events whose build was read again at once.",
            ),
            target,
        )?;
        let events_ignored = IntCounterVec::new(
            Opts::new("imagebuilder_exporter_events_ignored_total", "Messages deleted without effect, by reason: not_json, not_imagebuilder, other_account_or_region, unknown_build."),
            &["target", "reason"],
        )?;
        let event_delay = HistogramVec::new(
            HistogramOpts::new(
                "imagebuilder_exporter_event_delay_seconds",
                "From an event's time to the end of the read it caused.",
            )
            .buckets(vec![0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0]),
            target,
        )?;
        let event_queue_errors = IntCounterVec::new(
            Opts::new("imagebuilder_exporter_event_queue_errors_total", "Failed calls to the event queue, by AWS error code (AccessDenied, QueueDoesNotExist, ...) or timeout, connection; the exporter keeps polling the API meanwhile."),
            &["target", "code"],
        )?;
        let events_last_received = GaugeVec::new(
            Opts::new(
                "imagebuilder_exporter_events_last_received_timestamp_seconds",
                "When the last message arrived from the event queue (the start, before any did).",
            ),
            target,
        )?;
        let data_issues = IntCounterVec::new(
            Opts::new("imagebuilder_exporter_invalid_data_total", "Fields of API answers that were refused: unparseable times, missing fields, values out of range. The field is treated as absent."),
            &["target", "operation", "kind", "field"],
        )?;
        let dropped_builds = IntCounterVec::new(
            Opts::new("imagebuilder_exporter_dropped_builds_total", "Builds not tracked because --discovery.max-builds was reached (the oldest finished builds go first)."),
            target,
        )?;
        let scrape_timeouts = IntCounter::with_opts(Opts::new(
            "imagebuilder_exporter_scrape_timeouts_total",
            "Scrapes answered with the previous snapshot because the refresh took longer than the scrape could wait (--scrape.timeout, or the scraper's timeout less --scrape.timeout-offset).",
        ))?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "imagebuilder_exporter_build_info",
                "Version of the exporter; always 1.",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(ready.clone()))?;
        registry.register(Box::new(target_overlap.clone()))?;
        registry.register(Box::new(api_requests.clone()))?;
        registry.register(Box::new(api_errors.clone()))?;
        registry.register(Box::new(api_duration.clone()))?;
        registry.register(Box::new(api_rate_limit.clone()))?;
        registry.register(Box::new(refresh_duration.clone()))?;
        registry.register(Box::new(last_refresh_success.clone()))?;
        registry.register(Box::new(snapshot_age.clone()))?;
        registry.register(Box::new(tracked_builds.clone()))?;
        registry.register(Box::new(tracked_step_executions.clone()))?;
        registry.register(Box::new(backfill_pending.clone()))?;
        registry.register(Box::new(builds_in_flight.clone()))?;
        registry.register(Box::new(events_received.clone()))?;
        registry.register(Box::new(events_applied.clone()))?;
        registry.register(Box::new(events_ignored.clone()))?;
        registry.register(Box::new(event_delay.clone()))?;
        registry.register(Box::new(event_queue_errors.clone()))?;
        registry.register(Box::new(events_last_received.clone()))?;
        registry.register(Box::new(data_issues.clone()))?;
        registry.register(Box::new(dropped_builds.clone()))?;
        registry.register(Box::new(scrape_timeouts.clone()))?;
        registry.register(Box::new(build_info))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        Ok(Self {
            registry,
            up,
            ready,
            target_overlap,
            api_requests,
            api_errors,
            api_duration,
            api_rate_limit,
            refresh_duration,
            last_refresh_success,
            snapshot_age,
            tracked_builds,
            tracked_step_executions,
            backfill_pending,
            builds_in_flight,
            events_received,
            events_applied,
            events_ignored,
            event_delay,
            event_queue_errors,
            events_last_received,
            data_issues,
            dropped_builds,
            scrape_timeouts,
        })
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
}

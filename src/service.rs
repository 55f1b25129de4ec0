//! The exporter as the web server sees it: its targets, one metrics page.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::aws::ImageBuilderApi;
use crate::clock::{secs, Clock};
use crate::metrics::ExporterMetrics;
use crate::refresh::Target;
use crate::snapshot::{render, render_capacity};

/// All targets, shared by the web server and the start-up refresh.
pub struct Exporter<C> {
    targets: Vec<Arc<Target<C>>>,
    metrics: ExporterMetrics,
    clock: Arc<dyn Clock>,
    scrape_timeout: Duration,
}

impl<C: ImageBuilderApi> Exporter<C> {
    pub fn new(
        targets: Vec<Arc<Target<C>>>,
        metrics: ExporterMetrics,
        clock: Arc<dyn Clock>,
        scrape_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            targets,
            metrics,
            clock,
            scrape_timeout,
        })
    }

    pub fn targets(&self) -> &[Arc<Target<C>>] {
        &self.targets
    }

    /// Ready once every target has completed a refresh.
    pub fn is_ready(&self) -> bool {
        self.targets.iter().all(|t| t.is_ready())
    }

    /// Starts a refresh of every target without waiting, so that the
    /// exporter becomes ready even before the first scrape (Kubernetes only
    /// sends scrapes to ready pods).
    pub fn warm_up(&self) {
        for t in &self.targets {
            t.trigger();
        }
    }

    /// The body of `/metrics`: refreshes what is due (waiting at most the
    /// scrape timeout), then renders every target and the exporter's own metrics.
    pub async fn render_metrics(&self) -> Vec<u8> {
        let snapshots = join_all(self.targets.iter().map(|t| t.scrape(self.scrape_timeout))).await;
        let now = self.clock.now();
        for s in &snapshots {
            if let Some(at) = s.refreshed_at {
                self.metrics
                    .snapshot_age
                    .with_label_values(&[&*s.target])
                    .set(secs((now - at).max(0)));
            }
        }
        let mut out = Vec::with_capacity(render_capacity(&snapshots));
        render(&snapshots, now, &mut out);
        self.metrics.encode(&mut out);
        out
    }
}

//! The exporter as the web server sees it: its targets, one metrics page.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::aws::ImageBuilderApi;
use crate::clock::{secs, Clock};
use crate::metrics::ExporterMetrics;
use crate::refresh::Target;
use bytes::Bytes;

use crate::httpserve::Chunks;
use crate::snapshot::{render, render_gzip};

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
    /// scrape timeout), then renders every target and the exporter's own
    /// metrics, as plain text or gzip.
    pub async fn render_metrics(&self, encoding: Encoding) -> Chunks {
        let snapshots = join_all(self.targets.iter().map(|t| t.scrape(self.scrape_timeout))).await;
        let now = self.clock.now();
        for t in &self.targets {
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
            Encoding::Gzip => Chunks::new(render_gzip(&snapshots, now, &own)),
        }
    }
}

/// How `/metrics` is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

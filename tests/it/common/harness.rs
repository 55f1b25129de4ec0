//! The exporter over the real SDK, pointed at a [`World`], and its web
//! server on a free port: [`World::spawn_exporter`].

use std::sync::Arc;
use std::time::Duration;

use imagebuilder_exporter::app;
use imagebuilder_exporter::app::options::Options;
use imagebuilder_exporter::aws::sdk::SdkClient;
use imagebuilder_exporter::base::clock::{Clock, ManualClock};
use imagebuilder_exporter::metrics::ExporterMetrics;
use imagebuilder_exporter::refresh::exporter::Exporter;
use imagebuilder_sim::{RunningSimulator, Simulator};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{get, Metrics, World};

/// A simulator, an exporter pointed at it, and the exporter's web server.
pub struct Harness {
    pub sim: Simulator,
    pub clock: Arc<ManualClock>,
    pub exporter: Arc<Exporter<Arc<SdkClient>>>,
    pub url: String,
    _running_sim: RunningSimulator,
    /// The exporter's event followers live as long as this.
    _built: app::Built,
    /// `--readiness.max-wait`, for [`Harness::warm_up`].
    ready_max_wait: Duration,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl World {
    /// Starts the simulator and an exporter pointed at it; `args` are
    /// exporter flags on top of test defaults (no refresh interval, so every
    /// scrape refreshes).
    pub async fn spawn_exporter(self, args: &[&str]) -> Harness {
        self.spawn_exporter_with(args, |_| {}).await
    }

    /// Like [`World::spawn_exporter`], with a last say on the options.
    pub async fn spawn_exporter_with(
        self,
        args: &[&str],
        configure: impl FnOnce(&mut Options),
    ) -> Harness {
        let World { sim, clock } = self;
        let running = sim
            .spawn(([127, 0, 0, 1], 0).into())
            .await
            .expect("simulator starts");
        let mut all: Vec<&str> = args.to_vec();
        for (flag, value) in [
            ("--refresh.min-interval", "0s"),
            ("--aws.region", "us-east-1"),
            ("--aws.max-requests-per-second", "1000"),
            ("--aws.max-concurrency", "16"),
        ] {
            // A config file's targets name their regions (the flag is refused).
            let region_given = flag == "--aws.region" && args.contains(&"--config.file");
            if !args.contains(&flag) && !region_given {
                all.extend([flag, value]);
            }
        }
        let mut opts = Options::from_args(all).expect("valid test flags");
        opts.aws.endpoint_url = Some(running.url());
        opts.aws.static_credentials = Some(("AKIDTEST".into(), "secret".into()));
        // Fast retries keep fault tests short; the policy itself is unit-tested.
        opts.limits.retry.base = Duration::from_millis(5);
        opts.limits.retry.max_backoff = Duration::from_millis(50);
        // A full read before ready, as the exporter did before its cold
        // start was split: tests of everything but the cold start assert
        // exact values at the first scrape. the coldstart module tests the
        // split one.
        opts.discovery.defer_backfill = false;
        configure(&mut opts);
        let metrics = ExporterMetrics::new().expect("metrics");
        let clock_dyn: Arc<dyn Clock> = clock.clone();
        let built = app::build(&opts, clock_dyn, metrics)
            .await
            .expect("exporter builds");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let exporter = built.exporter.clone();
        let web = opts.web.clone();
        let server = tokio::spawn(async move {
            imagebuilder_exporter::server::run(listener, exporter, web, async {
                let _ = rx.await;
            })
            .await;
        });
        Harness {
            sim,
            clock,
            exporter: built.exporter.clone(),
            _built: built,
            ready_max_wait: opts.ready_max_wait,
            url,
            _running_sim: running,
            stop: Some(tx),
            server: Some(server),
        }
    }
}

impl Harness {
    /// Starts the targets' start-up refreshes, as the exporter does when it
    /// starts (the harness leaves it to tests).
    pub fn warm_up(&self) {
        self.exporter.warm_up(self.ready_max_wait);
    }

    /// GETs `/metrics` and parses it.
    pub async fn scrape(&self) -> Metrics {
        let (status, _, body) = get(&format!("{}/metrics", self.url)).await;
        assert_eq!(status, 200, "{body}");
        Metrics::parse(&body)
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
    }
}

/// A test that fails before `shutdown` still stops its server (and the
/// simulator stops with its handle): nothing outlives the test's harness.
impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}

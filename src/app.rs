//! Wiring: from validated options to a running exporter.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::aws::sdk::{load_sdk_config, AwsConfigError, SdkClient};
use crate::clock::Clock;
use crate::config::Options;
use crate::discovery::Tracker;
use crate::metrics::exporter::MetricsError;
use crate::metrics::ExporterMetrics;
use crate::refresh::Target;
use crate::service::Exporter;
use crate::simulator::{scenario, RunningSimulator, Simulator};

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Aws(#[from] AwsConfigError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("cannot start the demo's simulator: {0}")]
    Simulator(std::io::Error),
}

impl StartError {
    /// Exit status: 2 for configuration problems, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Aws(_) => 2,
            _ => 1,
        }
    }
}

/// A built exporter and what must live as long as it.
pub struct Built {
    pub exporter: Arc<Exporter<Arc<SdkClient>>>,
    /// The demo's simulator, when `--demo` is on.
    pub simulator: Option<RunningSimulator>,
}

/// Builds the exporter for `opts`. With `--demo`, first starts the simulator
/// on a loopback port and points the client at it.
pub async fn build(
    opts: &Options,
    clock: Arc<dyn Clock>,
    metrics: ExporterMetrics,
) -> Result<Built, StartError> {
    let mut aws = opts.aws.clone();
    let mut simulator = None;
    if opts.demo {
        let seed = 7;
        let sim = Simulator::new(clock.clone(), scenario::demo(clock.now(), seed), seed);
        let running = sim
            .spawn(([127, 0, 0, 1], 0).into())
            .await
            .map_err(StartError::Simulator)?;
        tracing::info!(endpoint = %running.url(), "demo: serving a simulated Image Builder account");
        aws.endpoint_url = Some(running.url());
        aws.region = Some(scenario::REGION.into());
        aws.static_credentials = Some(("AKIDDEMO".into(), "demo-secret".into()));
        simulator = Some(running);
    }
    let sdk = load_sdk_config(&aws).await?;
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let client = Arc::new(SdkClient::new(
        &sdk,
        &region,
        opts.limits.clone(),
        metrics.clone(),
    ));
    let target = Target::new(
        &region,
        client,
        Tracker::new(opts.discovery.clone()),
        opts.refresh_min_interval,
        clock.clone(),
        metrics.clone(),
    );
    Ok(Built {
        exporter: Exporter::new(vec![target], metrics, clock, opts.scrape_timeout),
        simulator,
    })
}

/// Runs the exporter on `listener` until `shutdown` completes.
pub async fn run(
    opts: Options,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let metrics = ExporterMetrics::new()?;
    let built = build(&opts, clock, metrics).await?;
    built.exporter.warm_up();
    crate::server::run(listener, built.exporter, opts.web, shutdown).await;
    if let Some(sim) = built.simulator {
        sim.stop().await;
    }
    Ok(())
}

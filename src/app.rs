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
    WebConfig(#[from] crate::webconfig::WebConfigError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("cannot start the demo's simulator: {0}")]
    Simulator(std::io::Error),
}

impl StartError {
    /// Exit status: 2 for configuration problems, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Aws(_) | StartError::WebConfig(_) => 2,
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
    let mut targets = Vec::with_capacity(opts.targets.len());
    for spec in &opts.targets {
        let mut settings = aws.clone();
        if spec.region.is_some() {
            settings.region = spec.region.clone();
        }
        settings.assume_role = spec.assume_role.clone();
        let sdk = load_sdk_config(&settings).await?;
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let name = if spec.name.is_empty() {
            region
        } else {
            spec.name.clone()
        };
        let client = Arc::new(SdkClient::new(
            &sdk,
            &name,
            opts.limits.clone(),
            metrics.clone(),
        ));
        let mut discovery = opts.discovery.clone();
        if let Some(f) = &spec.image_name_filter {
            discovery.image_filter = Some(f.clone());
        }
        // Each target refreshes on its own: one failing account never
        // blanks the others.
        targets.push(Target::new(
            &name,
            client,
            Tracker::new(discovery),
            opts.refresh_min_interval,
            clock.clone(),
            metrics.clone(),
        ));
    }
    Ok(Built {
        exporter: Exporter::new(targets, metrics, clock, opts.scrape_timeout),
        simulator,
    })
}

/// Runs the exporter on `listener` until `shutdown` completes.
pub async fn run(
    mut opts: Options,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    // The web configuration first: a bad file stops start-up (status 2).
    opts.web.load_security()?;
    let metrics = ExporterMetrics::new()?;
    let built = build(&opts, clock, metrics).await?;
    built.exporter.warm_up();
    crate::server::run(listener, built.exporter, opts.web, shutdown).await;
    if let Some(sim) = built.simulator {
        sim.stop().await;
    }
    Ok(())
}

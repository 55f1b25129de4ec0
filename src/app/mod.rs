//! Layer 8: the program. [`options`] turns the flags (and the targets
//! file, [`targets_file`]) into validated [`Options`]; this module wires
//! them into a running exporter: the AWS clients, a [`Target`] per account
//! and region, the event follower, the server.

mod members;
pub mod options;
pub mod targets_file;

pub use options::Options;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::aws::environment::{endpoint_overrides, CredentialSource, Endpoint};
use crate::aws::errors::ErrorContext;
use crate::aws::organizations::SdkOrganizations;
use crate::aws::sdk::{assume_role, load_sdk_config, AwsConfigError, AwsSettings, SdkClient};
use crate::aws::sqs::SqsQueue;
use crate::base::clock::Clock;
use crate::metrics::exporter_metrics::MetricsError;
use crate::metrics::ExporterMetrics;
use crate::refresh::discovery::Tracker;
use crate::refresh::events::{Follower, Scope};
use crate::refresh::exporter::Exporter;
use crate::refresh::organization::Organization;
use crate::refresh::target::Target;
#[cfg(feature = "demo")]
use imagebuilder_sim::{scenario, RunningSimulator, Simulator};
use members::MemberTargets;
use targets_file::OrganizationSpec;

/// The demo's event queue, in its simulator.
#[cfg(feature = "demo")]
const DEMO_QUEUE: &str = "imagebuilder-events";

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Aws(#[from] AwsConfigError),
    #[error(transparent)]
    WebConfig(#[from] crate::web::config::WebConfigError),
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
    #[cfg(feature = "demo")]
    pub simulator: Option<RunningSimulator>,
    /// The tasks that follow the targets' event queues and list the
    /// organisation's accounts.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Built {
    /// The event followers and the organisation's listing stop with the
    /// exporter.
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Builds the exporter for `opts`. With `--demo`, first starts the simulator
/// on a loopback port and points the client at it.
pub async fn build(
    opts: &Options,
    clock: Arc<dyn Clock>,
    metrics: ExporterMetrics,
) -> Result<Built, StartError> {
    #[cfg_attr(not(feature = "demo"), allow(unused_mut))]
    let mut aws = opts.aws.clone();
    #[cfg(feature = "demo")]
    let (simulator, demo_queue) = if opts.demo {
        let (running, queue) = start_demo(clock.clone(), &mut aws).await?;
        (Some(running), Some(queue))
    } else {
        (None, None)
    };
    #[cfg(not(feature = "demo"))]
    let demo_queue: Option<String> = if opts.demo {
        // Refused with the flags already; this is for options built by hand.
        return Err(StartError::Simulator(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this build has no simulator (built without the `demo` cargo feature)",
        )));
    } else {
        None
    };
    let env = &crate::aws::environment::process_env;
    for (variable, url) in endpoint_overrides(env) {
        tracing::info!(variable, url = %url, "AWS endpoint override");
    }
    let mut targets = Vec::with_capacity(opts.targets.len());
    let mut followers = Vec::new();
    for spec in &opts.targets {
        let mut spec = spec.clone();
        if spec.events_queue_url.is_none() && opts.targets.len() == 1 {
            spec.events_queue_url = demo_queue.clone();
        }
        let mut settings = aws.clone();
        if spec.region.is_some() {
            settings.region = spec.region.clone();
        }
        settings.assume_role = spec.assume_role.clone();
        let sdk = load_sdk_config(&settings, clock.clone()).await?;
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let name = if spec.name.is_empty() {
            region.clone()
        } else {
            spec.name.clone()
        };
        if !opts.shard.owns(&name) {
            tracing::info!(target_name = %name, shard = opts.shard.index, shards = opts.shard.count, "target served by another shard");
            continue;
        }
        let role = spec.assume_role.as_ref().map(|r| r.role_arn.clone());
        let credentials = CredentialSource::detect(
            settings.static_credentials.is_some(),
            settings.profile.as_deref(),
            env,
        );
        let explicit = settings.endpoint_url.as_deref();
        let endpoint = Endpoint::of("IMAGEBUILDER", explicit, &region, env);
        // What a new user checks first: which account, region, role,
        // credentials and endpoint each target uses, and whether it follows
        // events.
        tracing::info!(
            target_name = %name,
            account = role.as_deref().and_then(|r| r.split(':').nth(4)).unwrap_or("unknown"),
            region = %region,
            role = role.as_deref().unwrap_or("none"),
            credentials = %credentials,
            endpoint = %endpoint,
            events = spec.events_queue_url.as_deref().unwrap_or("off"),
            "target"
        );
        let context = ErrorContext {
            region: Some(region.clone()),
            endpoint: Some(endpoint),
            sts: role
                .as_ref()
                .map(|_| Endpoint::of("STS", explicit, &region, env)),
            role,
            credentials: Some(credentials),
        };
        let queue_context = ErrorContext {
            endpoint: Some(Endpoint::of("SQS", explicit, &region, env)),
            ..context.clone()
        };
        let client = Arc::new(
            SdkClient::new(&sdk, &name, opts.limits.clone(), metrics.clone()).with_context(context),
        );
        let mut discovery = opts.discovery.clone();
        if let Some(f) = &spec.image_name_filter {
            discovery.image_filter = Some(f.clone());
        }
        if spec.events_queue_url.is_some() {
            discovery.interval = opts.events_discovery_interval;
        }
        // Each target refreshes on its own: one failing account never
        // blanks the others.
        let target = Target::new(
            &name,
            client,
            Tracker::new(discovery),
            opts.refresh_min_interval,
            clock.clone(),
            metrics.clone(),
        );
        if let Some(url) = &spec.events_queue_url {
            let queue =
                SqsQueue::new(&sdk, url, opts.aws.request_timeout).with_context(queue_context);
            let scope = Scope {
                // A role names its account; otherwise what is tracked will.
                account_id: spec
                    .assume_role
                    .as_ref()
                    .and_then(|r| r.role_arn.split(':').nth(4))
                    .map(str::to_string),
                region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
            };
            let follower =
                Follower::new(target.clone(), queue, scope, clock.clone(), metrics.clone());
            tracing::info!(target_name = %name, queue = %url, "following Image Builder's events");
            followers.push(tokio::spawn(follower.run()));
        }
        targets.push(target);
    }
    let exporter = Exporter::new(targets, metrics.clone(), clock.clone(), opts.scrape_timeout);
    let mut tasks = followers;
    if let Some(spec) = &opts.organization {
        tasks.push(start_organization(opts, spec, &aws, &exporter, clock, metrics).await?);
    }
    Ok(Built {
        exporter,
        #[cfg(feature = "demo")]
        simulator,
        tasks,
    })
}

/// Starts listing the organisation's accounts, whose targets join the
/// exporter's; `/-/ready` waits for the first listing.
async fn start_organization(
    opts: &Options,
    spec: &OrganizationSpec,
    aws: &AwsSettings,
    exporter: &Arc<Exporter<Arc<SdkClient>>>,
    clock: Arc<dyn Clock>,
    metrics: ExporterMetrics,
) -> Result<tokio::task::JoinHandle<()>, StartError> {
    metrics.init_organization()?;
    let env = &crate::aws::environment::process_env;
    // The exporter's own credentials, in its own Region (AWS_REGION, the
    // profile's) or else the first Region listed: they assume the roles.
    let own = AwsSettings {
        assume_role: None,
        ..aws.clone()
    };
    let base = match load_sdk_config(&own, clock.clone()).await {
        Err(AwsConfigError::NoRegion) => {
            let first = AwsSettings {
                region: spec.members.regions.first().cloned(),
                ..own
            };
            load_sdk_config(&first, clock.clone()).await?
        }
        other => other?,
    };
    let region = base.region().map(|r| r.to_string()).unwrap_or_default();
    let credentials = CredentialSource::detect(
        aws.static_credentials.is_some(),
        aws.profile.as_deref(),
        env,
    );
    let lister = match &spec.assume_role {
        Some(role) => {
            let provider = assume_role(&base, role).await;
            base.clone()
                .into_builder()
                .credentials_provider(provider)
                .build()
        }
        None => base.clone(),
    };
    let explicit = aws.endpoint_url.as_deref();
    let role = spec.assume_role.as_ref().map(|r| r.role_arn.clone());
    let endpoint = Endpoint::of("ORGANIZATIONS", explicit, &region, env);
    tracing::info!(
        role = role.as_deref().unwrap_or("none"),
        member_role = %spec.member_role_name,
        regions = %spec.members.regions.join(","),
        credentials = %credentials,
        endpoint = %endpoint,
        interval_s = opts.organization_interval.as_secs(),
        shard = opts.shard.index,
        shards = opts.shard.count,
        "organisation: every ACTIVE account it selects is a target in each Region"
    );
    let api = SdkOrganizations::new(&lister, aws.request_timeout).with_context(ErrorContext {
        region: Some(region.clone()),
        endpoint: Some(endpoint),
        sts: role
            .as_ref()
            .map(|_| Endpoint::of("STS", explicit, &region, env)),
        role,
        credentials: Some(credentials.clone()),
    });
    exporter.await_organization();
    let organization = Organization {
        api,
        members: spec.members.clone(),
        factory: MemberTargets::new(
            base,
            spec.clone(),
            opts.clone(),
            credentials,
            clock.clone(),
            metrics.clone(),
        ),
        shard: opts.shard,
        interval: opts.organization_interval,
        metrics,
        clock,
        exporter: exporter.clone(),
    };
    let started = tokio::time::Instant::now();
    Ok(tokio::spawn(organization.run(started, opts.ready_max_wait)))
}

/// Starts the demo's simulator on a loopback port, on the exporter's clock
/// (see `clock.rs`), and points `aws` at it; returns it and the URL of its
/// event queue.
#[cfg(feature = "demo")]
async fn start_demo(
    clock: Arc<dyn Clock>,
    aws: &mut crate::aws::sdk::AwsSettings,
) -> Result<(RunningSimulator, String), StartError> {
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
    // The demo follows the simulator's events, as an account with an
    // EventBridge rule and a queue would be followed.
    sim.enable_events(DEMO_QUEUE);
    let queue = running.queue_url(DEMO_QUEUE);
    Ok((running, queue))
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
    #[cfg_attr(not(feature = "demo"), allow(unused_mut))]
    let mut built = build(&opts, clock, metrics).await?;
    built.exporter.warm_up(opts.ready_max_wait);
    crate::server::run(listener, built.exporter.clone(), opts.web, shutdown).await;
    #[cfg(feature = "demo")]
    if let Some(sim) = built.simulator.take() {
        sim.stop().await;
    }
    Ok(())
}

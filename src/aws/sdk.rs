//! [`ImageBuilderApi`] over the AWS SDK, with the exporter's retry policy,
//! rate limit, concurrency limit and per-attempt metrics.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_imagebuilder::Client;
use aws_smithy_async::time::TimeSource;
use tokio::sync::Semaphore;

use super::convert::{self, Issues};
/// Where it always was: the event queue's client and others classify
/// with it.
pub use super::errors::classify;
use super::errors::{ErrorContext, IntoApiError};
use super::ratelimit::RateLimiter;
use super::retry::RetryPolicy;
use super::{ApiError, AssumeRole, Fetched, ImageBuilderApi, Operation, Page};
use crate::base::clock::Clock;
use crate::metrics::ExporterMetrics;
use crate::model::{Build, Pipeline, StepDetail, StepExecution, WorkflowExecution};

/// Page size asked of list operations: the API's maximum.
pub const PAGE_SIZE: i32 = 100;

/// How the SDK is set up; everything else comes from the default chain
/// (environment, profile, container and instance roles, `AWS_ENDPOINT_URL_IMAGEBUILDER`).
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// An explicit endpoint (the demo's simulator). Without it the SDK honours
    /// `AWS_ENDPOINT_URL_IMAGEBUILDER` / `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// Fixed credentials instead of the default chain (demo and tests only).
    pub static_credentials: Option<(String, String)>,
    /// A role to assume (another account), with the credentials above as
    /// the base.
    pub assume_role: Option<AssumeRole>,
    pub request_timeout: Duration,
}

/// Errors setting up the AWS client: all are configuration problems.
#[derive(Debug, thiserror::Error)]
pub enum AwsConfigError {
    #[error("no AWS region: set --aws.region, AWS_REGION, or a region in the AWS profile")]
    NoRegion,
    /// An empty or malformed region from the environment or a profile:
    /// every request would fail to be built, so it is refused at start-up.
    #[error("{origin} is {region:?}, which is not an AWS region name like us-east-1: correct it, or set --aws.region")]
    BadRegion {
        region: String,
        origin: super::environment::RegionSource,
    },
}

/// Limits applied to every call of one client.
#[derive(Debug, Clone)]
pub struct Limits {
    pub requests_per_second: f64,
    pub max_concurrency: usize,
    pub retry: RetryPolicy,
}

/// The exporter's clock as the SDK's time source: assumed-role credentials
/// are renewed when *this* clock says they expire, the clock by which the
/// rest of the exporter (and, in tests and the demo, the simulator that
/// hands them out) tells time. In production both are the system clock.
struct ClockTimeSource(Arc<dyn Clock>);

impl std::fmt::Debug for ClockTimeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClockTimeSource")
    }
}

impl TimeSource for ClockTimeSource {
    fn now(&self) -> SystemTime {
        let nanos = u64::try_from(self.0.now()).unwrap_or(0);
        UNIX_EPOCH + Duration::from_nanos(nanos)
    }
}

/// One HTTPS client for every AWS client of the process: Image Builder's of
/// each target, STS's of each role, SQS's, Organizations'. Left to
/// themselves, SDK clients build one each, each with a TLS configuration
/// and a copy of the system's root certificates of its own: some 0.3 MB a
/// target, a third of the memory of an organisation of 600 targets
/// (BENCHMARKS.md). Shared, there is one per set of timeouts, and one pool
/// of connections per host. Otherwise the SDK's default client: rustls on
/// aws-lc, proxies from the environment (`HTTPS_PROXY`, `NO_PROXY`).
pub fn shared_https_client() -> aws_sdk_imagebuilder::config::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};
    static CLIENT: std::sync::OnceLock<aws_sdk_imagebuilder::config::SharedHttpClient> =
        std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            Builder::new().build_with_connector_fn(|settings, components| {
                let mut conn =
                    ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
                conn.set_connector_settings(settings.cloned());
                if let Some(components) = components {
                    conn.set_sleep_impl(components.sleep_impl());
                }
                conn.set_proxy_config(Some(ProxyConfig::from_env()));
                conn.build()
            })
        })
        .clone()
}

/// Loads the SDK configuration for one target, telling time by `clock`.
pub async fn load_sdk_config(
    s: &AwsSettings,
    clock: Arc<dyn Clock>,
) -> Result<aws_config::SdkConfig, AwsConfigError> {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3).min(s.request_timeout))
        .operation_attempt_timeout(s.request_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        // Retries are ours (see `retry`): the SDK would not retry 429s and
        // would hide attempts from the metrics.
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts)
        .http_client(shared_https_client())
        .time_source(ClockTimeSource(clock));
    if let Some(r) = &s.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(p) = &s.profile {
        loader = loader.profile_name(p);
    }
    if let Some(url) = &s.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some((id, secret)) = &s.static_credentials {
        loader = loader.credentials_provider(aws_sdk_imagebuilder::config::Credentials::new(
            id, secret, None, None, "static",
        ));
    }
    let config = loader.load().await;
    let Some(region) = config.region() else {
        return Err(AwsConfigError::NoRegion);
    };
    // A flag or a config file's region was checked with the flags; the
    // default chain's is checked here.
    if s.region.is_none() && crate::base::parse::parse_region(region.as_ref()).is_err() {
        return Err(AwsConfigError::BadRegion {
            region: region.to_string(),
            origin: super::environment::RegionSource::detect(
                s.profile.as_deref(),
                &super::environment::process_env,
            ),
        });
    }
    let Some(role) = &s.assume_role else {
        return Ok(config);
    };
    let provider = assume_role(&config, role).await;
    Ok(config.into_builder().credentials_provider(provider).build())
}

/// Credentials of `role`, assumed with `config`'s own: STS is reached like
/// Image Builder (same endpoint override, if any); the session is cached
/// and renewed before it expires, and may be shared by several clients
/// (an account's Regions).
pub async fn assume_role(
    config: &aws_config::SdkConfig,
    role: &AssumeRole,
) -> aws_sdk_imagebuilder::config::SharedCredentialsProvider {
    let mut provider = aws_config::sts::AssumeRoleProvider::builder(role.role_arn.clone())
        .session_name(role.session_name.clone())
        .configure(config);
    if let Some(id) = &role.external_id {
        provider = provider.external_id(id.clone());
    }
    aws_sdk_imagebuilder::config::SharedCredentialsProvider::new(provider.build().await)
}

/// The real client.
pub struct SdkClient {
    client: Client,
    target: String,
    limiter: RateLimiter,
    concurrency: Semaphore,
    retry: RetryPolicy,
    metrics: ExporterMetrics,
    rng: Mutex<fastrand::Rng>,
    /// Names the host, region and credentials in error lines.
    context: ErrorContext,
}

impl SdkClient {
    pub fn new(
        config: &aws_config::SdkConfig,
        target: &str,
        limits: Limits,
        metrics: ExporterMetrics,
    ) -> Self {
        metrics
            .api_rate_limit
            .with_label_values(&[target])
            .set(limits.requests_per_second);
        Self {
            client: Client::new(config),
            target: target.to_string(),
            limiter: RateLimiter::new(limits.requests_per_second),
            concurrency: Semaphore::new(limits.max_concurrency.max(1)),
            retry: limits.retry,
            metrics,
            rng: Mutex::new(fastrand::Rng::new()),
            context: ErrorContext::default(),
        }
    }

    /// What the errors of this client name: its endpoint, region, role
    /// and credential source.
    pub fn with_context(mut self, context: ErrorContext) -> Self {
        self.context = context;
        self
    }

    /// Runs one logical call: waits for a concurrency permit and a rate
    /// slot, sends, records the attempt, and retries per the policy. The
    /// SDK's errors are classified with the client's context.
    async fn call<T, E, F, Fut>(&self, op: Operation, mut send: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: IntoApiError,
    {
        let labels = [self.target.as_str(), op.as_str()];
        let mut attempt = 0;
        loop {
            let result = {
                let _permit = self.concurrency.acquire().await;
                self.limiter.acquire().await;
                let started = tokio::time::Instant::now();
                let r = send()
                    .await
                    .map_err(|e| e.into_api_error(op, &self.context));
                self.metrics.api_requests.with_label_values(&labels).inc();
                self.metrics
                    .api_duration
                    .with_label_values(&labels)
                    .observe(started.elapsed().as_secs_f64());
                r
            };
            let err = match result {
                Ok(v) => {
                    self.limiter.on_success();
                    self.publish_rate();
                    return Ok(v);
                }
                Err(e) => e,
            };
            self.metrics
                .api_errors
                .with_label_values(&[labels[0], labels[1], err.code()])
                .inc();
            if err.is_throttle() {
                self.limiter.on_throttle();
                self.publish_rate();
            }
            let delay = {
                let mut rng = crate::base::sync::lock(&self.rng);
                self.retry.next_delay(attempt, &err, &mut rng)
            };
            match delay {
                Some(d) => {
                    tracing::debug!(operation = %op, code = err.code(), attempt, delay_ms = d.as_millis() as u64, "retrying");
                    tokio::time::sleep(d).await;
                    attempt += 1;
                }
                None => return Err(err),
            }
        }
    }

    fn publish_rate(&self) {
        self.metrics
            .api_rate_limit
            .with_label_values(&[self.target.as_str()])
            .set(self.limiter.current_rate());
    }
}

impl ImageBuilderApi for SdkClient {
    async fn list_image_build_versions(
        &self,
        image_version_arn: Option<String>,
        next_token: Option<String>,
    ) -> Result<Page<Build>, ApiError> {
        let op = Operation::ListImageBuildVersions;
        let out = self
            .call(op, || async {
                self.client
                    .list_image_build_versions()
                    .set_image_version_arn(image_version_arn.clone())
                    .max_results(PAGE_SIZE)
                    .set_next_token(next_token.clone())
                    .send()
                    .await
            })
            .await?;
        Ok(page(
            op,
            out.image_summary_list(),
            out.next_token(),
            convert::build,
        ))
    }

    async fn list_workflow_executions(
        &self,
        build_arn: String,
        next_token: Option<String>,
    ) -> Result<Page<WorkflowExecution>, ApiError> {
        let op = Operation::ListWorkflowExecutions;
        let out = self
            .call(op, || async {
                self.client
                    .list_workflow_executions()
                    .image_build_version_arn(&build_arn)
                    .max_results(PAGE_SIZE)
                    .set_next_token(next_token.clone())
                    .send()
                    .await
            })
            .await?;
        Ok(page(
            op,
            out.workflow_executions(),
            out.next_token(),
            convert::workflow_execution,
        ))
    }

    async fn list_workflow_step_executions(
        &self,
        workflow_execution_id: String,
        next_token: Option<String>,
    ) -> Result<Page<StepExecution>, ApiError> {
        let op = Operation::ListWorkflowStepExecutions;
        let out = self
            .call(op, || async {
                self.client
                    .list_workflow_step_executions()
                    .workflow_execution_id(&workflow_execution_id)
                    .max_results(PAGE_SIZE)
                    .set_next_token(next_token.clone())
                    .send()
                    .await
            })
            .await?;
        Ok(page(
            op,
            out.steps(),
            out.next_token(),
            convert::step_execution,
        ))
    }

    async fn get_workflow_step_execution(
        &self,
        step_execution_id: String,
    ) -> Result<Fetched<StepDetail>, ApiError> {
        let op = Operation::GetWorkflowStepExecution;
        let out = self
            .call(op, || async {
                self.client
                    .get_workflow_step_execution()
                    .step_execution_id(&step_execution_id)
                    .send()
                    .await
            })
            .await?;
        let mut issues = Issues::new(op);
        match convert::step_detail(&out, &mut issues) {
            Some(value) => Ok(Fetched {
                value,
                issues: issues.list,
            }),
            None => Err(ApiError::Parse {
                operation: op,
                message: issues
                    .list
                    .first()
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "unusable answer".into()),
            }),
        }
    }

    async fn list_image_pipelines(
        &self,
        next_token: Option<String>,
    ) -> Result<Page<Pipeline>, ApiError> {
        let op = Operation::ListImagePipelines;
        let out = self
            .call(op, || async {
                self.client
                    .list_image_pipelines()
                    .max_results(PAGE_SIZE)
                    .set_next_token(next_token.clone())
                    .send()
                    .await
                    .map_err(|e| classify(op, e))
            })
            .await?;
        Ok(page(
            op,
            out.image_pipeline_list(),
            out.next_token(),
            convert::pipeline,
        ))
    }
}

/// Converts one page of a list answer, reporting what was wrong in it.
fn page<S, T>(
    op: Operation,
    items: &[S],
    next_token: Option<&str>,
    convert: impl Fn(&S, &mut Issues) -> Option<T>,
) -> Page<T> {
    let mut issues = Issues::new(op);
    issues.page_size(items.len(), PAGE_SIZE as usize);
    Page {
        items: items
            .iter()
            .filter_map(|x| convert(x, &mut issues))
            .collect(),
        next_token: next_token.map(str::to_string),
        issues: issues.list,
    }
}

/// Shares one client between the refresher's tasks.
impl<T: ImageBuilderApi> ImageBuilderApi for Arc<T> {
    fn list_image_build_versions(
        &self,
        image_version_arn: Option<String>,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Build>, ApiError>> + Send {
        (**self).list_image_build_versions(image_version_arn, next_token)
    }
    fn list_workflow_executions(
        &self,
        build_arn: String,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<WorkflowExecution>, ApiError>> + Send {
        (**self).list_workflow_executions(build_arn, next_token)
    }
    fn list_workflow_step_executions(
        &self,
        workflow_execution_id: String,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<StepExecution>, ApiError>> + Send {
        (**self).list_workflow_step_executions(workflow_execution_id, next_token)
    }
    fn get_workflow_step_execution(
        &self,
        step_execution_id: String,
    ) -> impl Future<Output = Result<Fetched<StepDetail>, ApiError>> + Send {
        (**self).get_workflow_step_execution(step_execution_id)
    }
    fn list_image_pipelines(
        &self,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Pipeline>, ApiError>> + Send {
        (**self).list_image_pipelines(next_token)
    }
}

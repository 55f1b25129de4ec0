//! Shared test harness: a simulator, an exporter over the real SDK pointed at
//! it, an HTTP client, and a Prometheus text parser.
#![allow(dead_code)]

pub mod grafana;
pub mod http;
pub mod logs;
pub mod process;
pub mod promapi;
pub mod readme;
pub mod tools;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use imagebuilder_exporter::app;
use imagebuilder_exporter::app::options::Options;
use imagebuilder_exporter::aws::sdk::SdkClient;
use imagebuilder_exporter::base::clock::{Clock, ManualClock, Nanos, NANOS_PER_SEC};
use imagebuilder_exporter::metrics::ExporterMetrics;
use imagebuilder_exporter::refresh::exporter::Exporter;
use imagebuilder_sim::scenario::{build_arn, Ids};
use imagebuilder_sim::store::{
    FixedStep, FixedWorkflow, SimBuild, SimStep, SimWorkflow, StepPlan, Store,
};
use imagebuilder_sim::{RunningSimulator, Simulator};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// 2026-09-09T19:12:23.418Z
pub const T0: Nanos = 1_788_981_143_418_000_000;
pub const BUILD_WF: &str = "arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1";
pub const TEST_WF: &str = "arn:aws:imagebuilder:us-east-1:aws:workflow/test/test-image/1.0.0/1";

pub fn at(secs: f64) -> Nanos {
    T0 + (secs * NANOS_PER_SEC as f64) as Nanos
}

pub fn ts(secs: f64) -> String {
    imagebuilder_exporter::base::timestamp::format_rfc3339_millis(at(secs))
}

/// A step with literal values.
#[derive(Default)]
pub struct Step {
    pub name: &'static str,
    pub action: &'static str,
    pub status: &'static str,
    pub start: Option<String>,
    pub end: Option<String>,
    pub timeout: Option<i64>,
    pub message: Option<String>,
    pub rollback: Option<&'static str>,
    /// (attemptNumber, maxAttempts); (1, 1) when `None`.
    pub attempts: Option<(i32, i32)>,
    /// `onFailure`; `Abort` when `None`.
    pub on_failure: Option<&'static str>,
}

pub fn step(
    name: &'static str,
    status: &'static str,
    start: Option<String>,
    end: Option<String>,
    timeout: Option<i64>,
) -> Step {
    Step {
        name,
        action: "ExecuteComponents",
        status,
        start,
        end,
        timeout,
        ..Step::default()
    }
}

/// A workflow execution with literal values.
#[derive(Default)]
pub struct Wf {
    pub arn: &'static str,
    pub kind: &'static str,
    pub status: &'static str,
    pub start: Option<String>,
    pub end: Option<String>,
    pub steps: Vec<Step>,
    pub message: Option<String>,
}

/// A build whose every value is fixed (times as strings, so they can be bad).
pub fn fixed_build(
    ids: &mut Ids,
    image: &str,
    n: u32,
    created: Nanos,
    status: &str,
    wfs: Vec<Wf>,
) -> SimBuild {
    SimBuild {
        arn: build_arn(image, n),
        name: image.into(),
        version: format!("1.0.0/{n}"),
        date_created: created,
        fixed_status: Some(status.into()),
        reason: None,
        tags: Default::default(),
        log_group: None,
        build_type: "SCHEDULED".into(),
        pipeline_arn: None,
        failure_context: None,
        distribution: None,
        workflows: wfs
            .into_iter()
            .map(|w| SimWorkflow {
                id: ids.workflow(),
                arn: w.arn.into(),
                workflow_type: w.kind.into(),
                fixed: Some(FixedWorkflow {
                    status: w.status.into(),
                    start: w.start,
                    end: w.end,
                    message: w.message,
                }),
                retried: false,
                parallel_group: None,
                steps: w
                    .steps
                    .into_iter()
                    .map(|s| {
                        let (attempt, max_attempts) = s.attempts.unwrap_or((1, 1));
                        SimStep {
                            id: ids.step(),
                            name: s.name.into(),
                            action: s.action.into(),
                            description: String::new(),
                            timeout_seconds: s.timeout,
                            on_failure: s.on_failure.unwrap_or("Abort").into(),
                            plan: StepPlan::Fixed(FixedStep {
                                status: s.status.into(),
                                start: s.start,
                                end: s.end,
                                rollback_status: s.rollback.map(str::to_string),
                                message: s.message,
                            }),
                            failure_message: String::new(),
                            rollback: "COMPLETED",
                            attempt,
                            max_attempts,
                        }
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A finished build with one BUILD workflow of one completed step.
pub fn simple_done_build(ids: &mut Ids, image: &str, n: u32, created: Nanos) -> SimBuild {
    fixed_build(
        ids,
        image,
        n,
        created,
        "AVAILABLE",
        vec![Wf {
            arn: BUILD_WF,
            kind: "BUILD",
            status: "COMPLETED",
            start: Some(
                imagebuilder_exporter::base::timestamp::format_rfc3339_millis(
                    created + NANOS_PER_SEC,
                ),
            ),
            end: Some(
                imagebuilder_exporter::base::timestamp::format_rfc3339_millis(
                    created + 61 * NANOS_PER_SEC,
                ),
            ),
            steps: vec![step(
                "Build",
                "COMPLETED",
                Some(
                    imagebuilder_exporter::base::timestamp::format_rfc3339_millis(
                        created + NANOS_PER_SEC,
                    ),
                ),
                Some(
                    imagebuilder_exporter::base::timestamp::format_rfc3339_millis(
                        created + 61 * NANOS_PER_SEC,
                    ),
                ),
                Some(600),
            )],
            ..Wf::default()
        }],
    )
}

/// One build of "web" with four steps covering the interesting cases, and
/// one finished build of "db".
pub fn sample_world() -> Store {
    let mut ids = Ids::new(1);
    let mut store = Store::default();
    store.insert(fixed_build(
        &mut ids,
        "web",
        1,
        at(-60.0),
        "BUILDING",
        vec![Wf {
            arn: BUILD_WF,
            kind: "BUILD",
            status: "RUNNING",
            start: Some(ts(0.0)),
            end: None,
            steps: vec![
                step(
                    "Launch",
                    "COMPLETED",
                    Some(ts(0.0)),
                    Some(ts(12.418)),
                    Some(60),
                ),
                step(
                    "Components",
                    "FAILED",
                    Some(ts(12.5)),
                    Some(ts(100.0)),
                    Some(60),
                ),
                Step {
                    name: "Approve",
                    action: "WaitForAction",
                    status: "WAITING",
                    start: Some(ts(100.0)),
                    end: None,
                    timeout: Some(3600),
                    ..Step::default()
                },
                step(
                    "Sanitize",
                    "RUNNING",
                    Some("09/09/2026 19:14".into()),
                    None,
                    Some(720),
                ),
                step("Terminate", "PENDING", None, None, Some(720)),
            ],
            ..Wf::default()
        }],
    ));
    store.insert(simple_done_build(&mut ids, "db", 1, at(-7200.0)));
    store
}

/// Labels of a step of the sample world's "web" build.
pub fn web(step: &str) -> Vec<(&str, &str)> {
    vec![
        ("image", "web"),
        ("step_name", step),
        ("workflow_arn", BUILD_WF),
        ("workflow_type", "BUILD"),
    ]
}

/// `labels` plus one more.
pub fn with<'a>(
    mut labels: Vec<(&'a str, &'a str)>,
    k: &'a str,
    v: &'a str,
) -> Vec<(&'a str, &'a str)> {
    labels.push((k, v));
    labels
}

/// A child process killed (and reaped) when the test ends, pass or fail.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

impl Harness {
    /// Starts with `store` at clock `now`; `args` are exporter flags on top
    /// of test defaults (no refresh interval, so every scrape refreshes).
    pub async fn start(store: Store, now: Nanos, args: &[&str]) -> Harness {
        Self::start_configured(store, now, args, |_| {}).await
    }

    /// Like [`Harness::start`], with a last say on the options.
    pub async fn start_configured(
        store: Store,
        now: Nanos,
        args: &[&str],
        configure: impl FnOnce(&mut Options),
    ) -> Harness {
        let clock = ManualClock::new(now);
        let sim = Simulator::new(clock.clone(), store, 42);
        Self::start_with(sim, clock, args, configure).await
    }

    pub async fn start_with(
        sim: Simulator,
        clock: Arc<ManualClock>,
        args: &[&str],
        configure: impl FnOnce(&mut Options),
    ) -> Harness {
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
        // exact values at the first scrape. tests/coldstart.rs tests the
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

/// GET over a fresh connection: (status, headers, body).
pub async fn get(url: &str) -> (u16, hyper::HeaderMap, String) {
    request("GET", url).await
}

pub async fn request(method: &str, url: &str) -> (u16, hyper::HeaderMap, String) {
    try_request(method, url).await.expect("HTTP request")
}

/// Like [`request`], with errors (connection refused…) returned.
pub async fn try_request(
    method: &str,
    url: &str,
) -> Result<(u16, hyper::HeaderMap, String), String> {
    let (status, headers, body) = raw_request(method, url, &[]).await?;
    Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
}

/// A request with extra headers; the body as bytes. (The client, shared
/// with the TLS tests, is in [`http`].)
pub async fn raw_request(
    method: &str,
    url: &str,
    extra: &[(&str, &str)],
) -> Result<(u16, hyper::HeaderMap, Bytes), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let authority = uri.authority().ok_or("no authority")?.as_str();
    let addr: SocketAddr = authority.parse().map_err(|e| format!("{e}"))?;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    http::send(addr, None, method, path, extra)
        .await
        .map_err(|e| e.to_string())
}

/// Samples read by a Prometheus text-format parser.
pub struct Metrics {
    pub text: String,
    pub samples: Vec<prometheus_parse::Sample>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition text");
        Metrics {
            text: text.to_string(),
            samples: scrape.samples,
        }
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a prometheus_parse::Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
    }

    /// The one sample of `name` with these labels (others free).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<_> = self.matching(name, labels).collect();
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} series",
            found.len()
        );
        found.first().map(|s| value(&s.value))
    }

    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        self.matching(name, labels).count()
    }

    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| value(&s.value)).sum()
    }

    /// Label values of one label across the series of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.metric == name) {
            if let Some(v) = s.labels.get(label) {
                *out.entry(v.to_string()).or_insert(0) += 1;
            }
        }
        out
    }
}

fn value(v: &prometheus_parse::Value) -> f64 {
    match v {
        prometheus_parse::Value::Counter(x)
        | prometheus_parse::Value::Gauge(x)
        | prometheus_parse::Value::Untyped(x) => *x,
        prometheus_parse::Value::Histogram(_) | prometheus_parse::Value::Summary(_) => f64::NAN,
    }
}

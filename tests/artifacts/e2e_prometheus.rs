//! End to end: a real Prometheus (Debian's `prometheus` package) scrapes
//! two replicas of the exporter, the way docs/scaling.md recommends running it
//! for high availability, and evaluates the rules in `alerts/`. Both
//! replicas read one simulated Image Builder account (an `imagebuilder-sim`
//! process running the demo scenario) with `--labels.image-tags team,env`,
//! so their series are the same but for `instance`. Through Prometheus'
//! HTTP API it shows:
//!
//! * a cold start slowed by API latency raises no
//!   `ImageBuilderExporterRefreshFailing`, not even pending;
//! * the rules load and evaluate; `ImageBuilderStepFailed` fires exactly
//!   once per failed step, without a replica label, with the image's tag
//!   labels, a static summary, and its description starts with the failure message and names the
//!   build version the exporters serve;
//! * the alert stays firing, with the same `activeAt`, while one replica
//!   restarts;
//! * the dashboard counts each step once, every query parses and has data,
//!   every table column has a header, and the failure bars add up to the
//!   real number of failures (from the simulator) at 15 s, 60 s and 300 s
//!   steps;
//! * every metric the dashboard and the rules use exists, so renaming one
//!   fails here;
//! * both replicas follow the simulator's event queue (SQS over its real
//!   protocol), and the events they apply show in Prometheus.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::shared::bins::EXPORTER;
use crate::shared::http::free_port;
use crate::shared::http::try_request;
use crate::shared::{exposition, tools};
use common::grafana;
use common::grafana::{Selection, Variable};
use common::promapi::{put_json, unix_now, Proc, PromServer, Workdir};
use imagebuilder_exporter::metrics::labels;
use serde_json::{json, Value};

const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/imagebuilder.rules.yml");
const EVENT_RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/alerts/imagebuilder-events.rules.yml"
);

/// The demo with this seed has live builds whose steps fail about 89, 116
/// and 160 s after the simulator starts (with the default seed, the first
/// two come after 239 and 298 s): enough failures for the failure bars in
/// about three minutes. If the scenario changes, the test waits longer
/// for them (up to `FAILURES_DEADLINE`).
const SEED: &str = "57";

/// The simulator's SQS queue of Image Builder events, which both replicas
/// follow (each event reaches one of them).
const QUEUE: &str = "imagebuilder-events";

/// Added by the simulator to every answer during the exporters' cold start,
/// which then lasts a few seconds instead of a fraction of one (ready needs
/// only a handful of rounds of calls; the backfill comes after).
const COLD_START_LATENCY_MS: u64 = 1000;

/// Grafana's built-in variables as a dashboard over the last hour would
/// have them.
const BUILTINS: [(&str, &str); 4] = [
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__range", "1h"),
    ("__range_s", "3600"),
];

/// For the checks that wait for Prometheus to catch up.
const DEADLINE: Duration = Duration::from_secs(90);
/// For at least two live failures to have been counted.
const FAILURES_DEADLINE: Duration = Duration::from_secs(480);

/// Metrics the rules or the dashboard read that the demo has none of:
/// those that exist only when something is wrong (overlapping targets,
/// refused fields, a queue that cannot be read) and the organisation's,
/// served only with an `organization` section. Their alerts and panels are
/// unit-tested (alerts/tests/exporter.test.yml, queue.test.yml), and the
/// organisation's families are checked in tests/it/organization.rs.
const NOT_IN_DEMO: [&str; 6] = [
    "imagebuilder_exporter_target_overlap",
    "imagebuilder_exporter_invalid_data_total",
    "imagebuilder_exporter_event_queue_errors_total",
    "imagebuilder_exporter_organization_up",
    "imagebuilder_exporter_organization_accounts",
    "imagebuilder_exporter_organization_errors_total",
];

/// Both replicas in one scrape job, as a Deployment of two pods behind one
/// Service would be: their series differ only in `instance`.
fn prometheus_config(exporters: &[String]) -> String {
    let targets = exporters
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {RULES}
  - {EVENT_RULES}
scrape_configs:
  - job_name: imagebuilder
    static_configs:
      - targets: [{targets}]
"#
    )
}

/// Starts `imagebuilder-sim` with the demo scenario; returns it and its
/// endpoint.
async fn start_simulator(work: &Workdir) -> (Proc, String) {
    let mut cmd = Command::new(crate::shared::bins::simulator_bin());
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--scenario",
        "demo",
        "--seed",
        SEED,
        "--log.level",
        "warn",
        "--events-queue",
        QUEUE,
    ]);
    let mut sim = Proc::spawn(cmd, work.path.join("simulator.log"));
    let url = sim
        .wait_for_line(
            "AWS_ENDPOINT_URL_IMAGEBUILDER=",
            Duration::from_secs(30),
            "simulator",
        )
        .await;
    (sim, url)
}

/// Sets the simulator's latency.
async fn set_latency(endpoint: &str, ms: u64) {
    let (status, body) = put_json(
        &format!("{endpoint}/_sim/faults"),
        &json!({ "latency": ms }),
    )
    .await
    .unwrap_or_else(|e| panic!("PUT /_sim/faults: {e}"));
    assert_eq!(status, 200, "PUT /_sim/faults: {body}");
}

/// Starts one exporter replica on `listen`, reading the simulator at
/// `endpoint` through the standard AWS environment (and nothing else of
/// this machine's). A scrape gets the page at once (`--scrape.timeout`
/// under Prometheus' 1 s), the previous one if a refresh is under way.
fn start_exporter(work: &Workdir, endpoint: &str, listen: &str, n: usize) -> Proc {
    let mut cmd = Command::new(EXPORTER);
    cmd.args([
        "--web.listen-address",
        listen,
        "--refresh.min-interval",
        "2s",
        "--discovery.interval",
        "10s",
        "--scrape.timeout",
        "500ms",
        "--labels.image-tags",
        "team,env",
        "--events.sqs-queue-url",
        &imagebuilder_sim::queue_url(endpoint, QUEUE),
        "--log.level",
        "warn",
    ])
    .env_clear()
    .env("AWS_ENDPOINT_URL_IMAGEBUILDER", endpoint)
    .env("AWS_ENDPOINT_URL_SQS", endpoint)
    .env("AWS_REGION", "us-east-1")
    .env("AWS_ACCESS_KEY_ID", "test")
    .env("AWS_SECRET_ACCESS_KEY", "test")
    .env("AWS_EC2_METADATA_DISABLED", "true");
    let log = work.path.join(format!("exporter-{n}-{}.log", unix_now()));
    Proc::spawn(cmd, log)
}

/// Rules (alerting and recording) in the rules files, read line by line.
fn rules_in_files() -> BTreeSet<String> {
    [RULES, EVENT_RULES]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("rules file")
                .lines()
                .filter_map(|l| {
                    let t = l.trim();
                    t.strip_prefix("- alert:")
                        .or_else(|| t.strip_prefix("- record:"))
                        .map(|n| n.trim().to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Runs `check` every second until it succeeds, or fails the test with its
/// last complaint at `deadline`.
async fn eventually<T, F, Fut>(deadline: Instant, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    loop {
        match check().await {
            Ok(v) => return v,
            Err(why) if Instant::now() >= deadline => panic!("{what}: {why}"),
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// The rules Prometheus loaded: every rule of the files, each evaluated
/// without error. Returns their expressions.
async fn rules_loaded(
    prom: &PromServer,
    expected: &BTreeSet<String>,
) -> Result<Vec<String>, String> {
    let data = prom.api("/api/v1/rules", &[]).await?;
    let mut names = BTreeSet::new();
    let mut queries = Vec::new();
    for group in data["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            let name = rule["name"].as_str().unwrap_or_default();
            if rule["health"] != "ok" {
                return Err(format!(
                    "rule {name}: health {} {}",
                    rule["health"], rule["lastError"]
                ));
            }
            names.insert(name.to_string());
            queries.push(rule["query"].as_str().unwrap_or_default().to_string());
        }
    }
    if &names != expected {
        return Err(format!("loaded {names:?}, the files have {expected:?}"));
    }
    Ok(queries)
}

type Labels = BTreeMap<String, String>;

/// The step labels of a sample or series.
fn step_of(get: impl Fn(&str) -> Option<String>) -> Labels {
    labels::STEP
        .iter()
        .map(|k| (k.to_string(), get(k).unwrap_or_default()))
        .collect()
}

/// What one replica serves: every step, those whose latest execution is
/// FAILED, the open failures (failure_info: step → (version, message)),
/// and the tag labels of each image.
#[derive(Debug, PartialEq, Default)]
struct Served {
    steps: BTreeSet<Labels>,
    failed: BTreeSet<Labels>,
    failures: BTreeMap<Labels, (String, String)>,
    tags: BTreeMap<String, Labels>,
}

async fn served_by(exporter: &str) -> Result<Served, String> {
    let (status, _, body) = try_request("GET", &format!("http://{exporter}/metrics"))
        .await
        .expect("HTTP request");
    if status != 200 {
        return Err(format!("{exporter}/metrics: {status}"));
    }
    let mut out = Served::default();
    for s in &exposition::samples(&body) {
        let one = matches!(s.value, prometheus_parse::Value::Gauge(v) if v == 1.0);
        match s.metric.as_str() {
            "imagebuilder_workflow_step_status" => {
                let step = step_of(|k| s.labels.get(k).map(str::to_string));
                if one && s.labels.get("status") == Some("FAILED") {
                    out.failed.insert(step.clone());
                }
                out.steps.insert(step);
            }
            "imagebuilder_workflow_step_failure_info" => {
                let step = step_of(|k| s.labels.get(k).map(str::to_string));
                let version = s.labels.get("image_version").unwrap_or_default();
                let message = unescape(s.labels.get("message").unwrap_or_default());
                out.failures.insert(step, (version.to_string(), message));
            }
            "imagebuilder_image_tags" => {
                let image = s.labels.get("image").unwrap_or_default().to_string();
                let tags = s
                    .labels
                    .iter()
                    .filter(|(k, v)| k.starts_with("tag_") && !v.is_empty())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                out.tags.insert(image, tags);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A label value as Prometheus reads it: prometheus-parse returns it as
/// the exposition writes it, with `\\`, `\"` and `\n` escaped (a components
/// step's message quotes its step: `Step "InstallPackages" failed`).
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(x) => out.push(x),
            None => out.push('\\'),
        }
    }
    out
}

async fn served(exporters: &[String]) -> Result<Vec<Served>, String> {
    let mut out = Vec::new();
    for e in exporters {
        out.push(served_by(e).await?);
    }
    Ok(out)
}

fn labels_of(metric: &Value) -> Labels {
    metric
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// ImageBuilderStepFailed fires once per open failure the replicas serve
/// (failure_info), whatever the number of replicas: with exactly the
/// labels of the failed step plus severity, the scrape's job and the
/// image's tags (no `instance`, no version or message), a description that
/// quotes the failure message and names the build version the exporters
/// serve; for no other step. Returns the alerts by step.
async fn failed_step_alerts(
    prom: &PromServer,
    exporters: &[String],
) -> Result<BTreeMap<Labels, Value>, String> {
    let before = served(exporters).await?;
    let alerts = prom.alerts().await?;
    let after = served(exporters).await?;
    let readings: Vec<&Served> = before.iter().chain(&after).collect();
    // Failures every replica serves identically in every reading.
    let stable: BTreeMap<Labels, (String, String)> = readings[0]
        .failures
        .iter()
        .filter(|(s, f)| readings.iter().all(|r| r.failures.get(*s) == Some(*f)))
        .map(|(s, f)| (s.clone(), f.clone()))
        .collect();
    let reported: BTreeSet<&Labels> = readings.iter().flat_map(|r| r.failures.keys()).collect();
    if stable.is_empty() {
        return Err(format!(
            "the replicas serve no failure they agree on: {readings:?}"
        ));
    }
    let mut alerted: BTreeMap<Labels, Value> = BTreeMap::new();
    for a in alerts {
        let labels = labels_of(&a["labels"]);
        if labels.get("alertname").map(String::as_str) != Some("ImageBuilderStepFailed") {
            continue;
        }
        if a["state"] != "firing" {
            return Err(format!("{labels:?} is {}", a["state"]));
        }
        if labels.contains_key("instance") {
            return Err(format!("one alert per replica: {labels:?}"));
        }
        let step = step_of(|k| labels.get(k).cloned());
        let mut want = step.clone();
        for (k, v) in [
            ("alertname", "ImageBuilderStepFailed"),
            ("severity", "warning"),
            ("job", "imagebuilder"),
        ] {
            want.insert(k.into(), v.into());
        }
        if let Some(tags) = readings[0].tags.get(&step["image"]) {
            want.extend(tags.clone());
        }
        if labels != want {
            return Err(format!("alert labels {labels:?}, want {want:?}"));
        }
        if !reported.contains(&step) {
            return Err(format!(
                "alert for a step no replica reports failed: {step:?}"
            ));
        }
        if alerted.contains_key(&step) {
            return Err(format!("two alerts for {step:?}"));
        }
        if let Some((version, message)) = stable.get(&step) {
            let description = a["annotations"]["description"].as_str().unwrap_or_default();
            if !description.contains(&format!("FAILED in build {version}")) {
                return Err(format!(
                    "description does not name build {version}: {description}"
                ));
            }
            if !message.is_empty() && !description.contains(&format!("\"{message}\"")) {
                return Err(format!(
                    "description does not quote {message:?}: {description}"
                ));
            }
            // The summary is the same for every such alert, so that a
            // grouped notification has one; the specifics are in the
            // description, the failure message first.
            let summary = a["annotations"]["summary"].as_str().unwrap_or_default();
            if summary != "An Image Builder workflow step failed." {
                return Err(format!("summary {summary:?} is not the static one"));
            }
            for k in ["image", "step_name", "workflow_type"] {
                if !description.contains(&step[k]) {
                    return Err(format!("description does not name the {k}: {description}"));
                }
            }
            if !message.is_empty() && !description.starts_with(&format!("\"{message}\"")) {
                return Err(format!(
                    "description does not start with the message: {description}"
                ));
            }
            if !description.contains(&step["workflow_arn"]) {
                return Err("description does not name the workflow ARN".to_string());
            }
        }
        for k in ["runbook", "runbook_url", "dashboard_url"] {
            if a["annotations"][k].as_str().unwrap_or_default().is_empty() {
                return Err(format!("alert without {k}"));
            }
        }
        alerted.insert(step, a);
    }
    let missing: Vec<_> = stable
        .keys()
        .filter(|s| !alerted.contains_key(*s))
        .collect();
    if !missing.is_empty() {
        return Err(format!("no alert for the failed steps {missing:?}"));
    }
    Ok(alerted)
}

/// The one query of the panel titled `title`.
fn panel_query<'a>(
    targets: &'a [grafana::Target],
    title: &str,
    ref_id: &str,
) -> &'a grafana::Target {
    targets
        .iter()
        .find(|t| t.panel == title && t.ref_id == ref_id)
        .unwrap_or_else(|| panic!("no query {ref_id} in panel {title:?}"))
}

/// "All" for every variable, as Grafana sends it: the custom all value
/// where the variable has one, else every value its query offers (`job` and
/// `instance`: the exporter's jobs and replicas, never `.+`).
async fn all_selected(
    prom: &PromServer,
    vars: &[Variable],
    since: f64,
) -> Result<BTreeMap<String, Selection>, String> {
    let mut selected: BTreeMap<String, Selection> = grafana::all_variables()
        .into_iter()
        .map(|v| (v.to_string(), Selection::All))
        .collect();
    for v in vars
        .iter()
        .filter(|v| v.kind == "query" && v.all_value.is_none())
    {
        let values = variable_values(prom, v, vars, &selected, since).await?;
        if values.is_empty() {
            return Err(format!("variable {} offers no value", v.name));
        }
        selected.insert(v.name.clone(), Selection::Values(values));
    }
    Ok(selected)
}

/// With both replicas scraped, Prometheus holds every step twice, yet the
/// dashboard's "Open step failures" stat is the number of distinct open
/// failures (one per ImageBuilderStepFailed alert), and its latest-status
/// table has one row per step. Both are
/// compared with what the replicas serve, read before and after: a step
/// changing status in between (the replicas refresh at their own pace)
/// makes the attempt inconclusive, and it is tried again. Returns
/// (FAILED steps, steps).
async fn dashboard_counts_each_step_once(
    prom: &PromServer,
    dashboards: &[(String, Value)],
    exporters: &[String],
) -> Result<(usize, usize), String> {
    let before = served(exporters).await?;
    let mut answers = Vec::new();
    for (file, d) in dashboards {
        let vars = grafana::variables(d);
        let all = all_selected(prom, &vars, 0.0).await?;
        let targets = grafana::targets(d);
        let stat = panel_query(&targets, "Open step failures", "A");
        let stat = prom
            .query(&grafana::interpolate(&stat.expr, &vars, &all, &BUILTINS))
            .await?;
        let table = panel_query(&targets, "Latest status of each step", "A");
        let rows = prom
            .query(&grafana::interpolate(&table.expr, &vars, &all, &BUILTINS))
            .await?;
        let raw = prom
            .query(r#"count(imagebuilder_workflow_step_status{status="FAILED"} == 1)"#)
            .await?;
        answers.push((file, stat, rows, raw));
    }
    let after = served(exporters).await?;
    let readings: Vec<(&BTreeSet<Labels>, &BTreeSet<Labels>, BTreeSet<&Labels>)> = before
        .iter()
        .chain(&after)
        .map(|s| (&s.steps, &s.failed, s.failures.keys().collect()))
        .collect();
    let (steps, failed, open) = (readings[0].0, readings[0].1, &readings[0].2);
    if readings.iter().any(|r| r != &readings[0]) {
        return Err("the replicas' steps changed or differ between readings".into());
    }
    let value =
        |series: &[Value]| -> Option<f64> { series.first()?["value"][1].as_str()?.parse().ok() };
    for (file, stat, rows, raw) in answers {
        // Prometheus holds each FAILED step once per replica...
        let raw = value(&raw).unwrap_or(0.0);
        if raw != (failed.len() * exporters.len()) as f64 {
            return Err(format!(
                "Prometheus has {raw:?} FAILED series for {} FAILED steps and {} replicas",
                failed.len(),
                exporters.len()
            ));
        }
        // ...and the stat counts each open failure once.
        let stat = value(&stat);
        if stat.unwrap_or(0.0) != open.len() as f64 {
            return Err(format!(
                "{file}: \"Open step failures\" shows {stat:?}, the replicas report {} open failures",
                open.len()
            ));
        }
        let mut seen = BTreeSet::new();
        for row in &rows {
            let labels = labels_of(&row["metric"]);
            if labels.contains_key("instance") {
                return Err(format!(
                    "{file}: latest status has a row per replica: {labels:?}"
                ));
            }
            let step = step_of(|k| labels.get(k).cloned());
            if !seen.insert(step.clone()) {
                return Err(format!("{file}: latest status shows {step:?} twice"));
            }
        }
        if &seen != steps {
            return Err(format!(
                "{file}: latest status has {} rows for {} steps",
                seen.len(),
                steps.len()
            ));
        }
    }
    Ok((failed.len(), steps.len()))
}

/// Queries of momentary states: empty unless a RUNNING step is near its
/// timeout at that moment. They must have had data at some time of the
/// run (the demo's every fifth build runs a step with a 60 s timeout).
fn momentary(expr: &str) -> bool {
    expr.contains("clamp_min(0.1 * ") && !expr.contains("unless")
}

/// The readable headers of a table: renamed, excluded or hidden columns.
fn table_columns_ok(panel: &Value, series: &[Value], refs: usize, ref_id: &str) -> Vec<String> {
    let organize = panel["transformations"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == "organize"))
        .map(|t| t["options"].clone())
        .unwrap_or_default();
    let renamed = |c: &str| organize["renameByName"][c].as_str().map(str::to_string);
    let excluded = |c: &str| organize["excludeByName"][c] == true;
    let mut problems = Vec::new();
    let mut columns: BTreeSet<String> = BTreeSet::new();
    columns.insert(if refs == 1 {
        "Value".to_string()
    } else {
        format!("Value #{ref_id}")
    });
    for s in series {
        columns.extend(labels_of(&s["metric"]).into_keys());
    }
    for c in columns {
        if excluded(&c) {
            continue;
        }
        match renamed(&c) {
            Some(h) if !h.contains(['_', '#']) => {}
            other => problems.push(format!(
                "table {:?}: column {c:?} shown as {other:?}",
                panel["title"]
            )),
        }
    }
    problems
}

/// Every query of every dashboard panel, variables at "All", parses and
/// returns at least one series (momentary ones: at some time since
/// `since`); every variable query lists values, but `cluster` (no such
/// label here); every table column has a header; every metric the
/// dashboard or the rules use has series (but those that exist only when
/// something is wrong). Image Builder queries return no series per
/// replica; the exporter's own show every replica.
async fn dashboard_has_data(
    prom: &PromServer,
    dashboards: &[(String, Value)],
    rule_queries: &[String],
    exporters: &[String],
    since: f64,
) -> Result<usize, String> {
    let replicas: BTreeSet<&str> = exporters.iter().map(String::as_str).collect();
    let mut problems = Vec::new();
    let mut metrics = BTreeSet::new();
    let mut checked = 0;
    for (file, d) in dashboards {
        let vars = grafana::variables(d);
        let all = all_selected(prom, &vars, since).await?;
        for v in vars.iter().filter(|v| v.kind == "query") {
            match variable_values(prom, v, &vars, &all, since).await {
                Ok(values) if values.is_empty() && v.name != "cluster" => {
                    problems.push(format!("{file}: variable {} lists no value", v.name))
                }
                Ok(_) => {}
                Err(e) => problems.push(format!("{file}: variable {}: {e}", v.name)),
            }
            let (selector, _) = grafana::parse_label_values(&v.query).unwrap_or_default();
            metrics.extend(grafana::metric_names(&selector).map_err(|e| format!("{file}: {e}"))?);
        }
        let panels = grafana::panels(d);
        for t in grafana::targets(d) {
            let used = grafana::metric_names(&t.expr).map_err(|e| format!("{file}: {e}"))?;
            let image_builder = used.iter().all(|m| {
                m.starts_with("imagebuilder_workflow_") || m.starts_with("imagebuilder_image_")
            });
            let used_here = used.clone();
            metrics.extend(used);
            let q = grafana::interpolate(&t.expr, &vars, &all, &BUILTINS);
            let result = if t.instant {
                match prom.query(&q).await {
                    Ok(s) if s.is_empty() && momentary(&t.expr) => {
                        prom.query_range(&q, since, 1.0).await
                    }
                    other => other,
                }
            } else {
                prom.query_range(&q, since, 2.0).await
            };
            checked += 1;
            // A query of series the demo has none of (the overlap, queue
            // errors, the organisation) may show nothing.
            let when_wrong = used_here.iter().all(|m| NOT_IN_DEMO.contains(&m.as_str()));
            let series = match result {
                Ok(series) if series.is_empty() && when_wrong => continue,
                Ok(series) if series.is_empty() => {
                    problems.push(format!("{file}: {} returns no series: {q}", t.name()));
                    continue;
                }
                Ok(series) => series,
                Err(e) => {
                    problems.push(format!("{file}: {}: {e}: {q}", t.name()));
                    continue;
                }
            };
            let instances: BTreeSet<&str> = series
                .iter()
                .filter_map(|s| s["metric"]["instance"].as_str())
                .collect();
            if image_builder && !instances.is_empty() {
                problems.push(format!(
                    "{file}: {} returns a series per replica {instances:?}: {q}",
                    t.name()
                ));
            }
            if !image_builder && instances != replicas {
                problems.push(format!(
                    "{file}: {} shows replicas {instances:?}, not {replicas:?}: {q}",
                    t.name()
                ));
            }
            if t.panel_type == "table" {
                let panel = panels
                    .iter()
                    .find(|p| p["title"] == t.panel.as_str())
                    .expect("the target's panel");
                let refs = panel["targets"].as_array().map(Vec::len).unwrap_or(0);
                problems.extend(table_columns_ok(panel, &series, refs, &t.ref_id));
            }
        }
    }
    for q in rule_queries {
        metrics.extend(grafana::metric_names(q).map_err(|e| format!("rule {q}: {e}"))?);
    }
    for m in &metrics {
        // Recording rules' outputs are checked by their rule's health.
        if m.starts_with("imagebuilder:") || NOT_IN_DEMO.contains(&m.as_str()) {
            continue;
        }
        match prom.series(m, since).await {
            Ok(s) if s.is_empty() => problems.push(format!("metric {m}: no series in Prometheus")),
            Ok(_) => {}
            Err(e) => problems.push(format!("metric {m}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(checked)
    } else {
        Err(format!("\n  {}", problems.join("\n  ")))
    }
}

/// The values Grafana would list for `v`, the other variables as `selected`.
async fn variable_values(
    prom: &PromServer,
    v: &Variable,
    vars: &[Variable],
    selected: &BTreeMap<String, Selection>,
    since: f64,
) -> Result<Vec<String>, String> {
    let (selector, label) = grafana::parse_label_values(&v.query)
        .ok_or_else(|| format!("not label_values(selector, label): {}", v.query))?;
    let selector = grafana::interpolate(&selector, vars, selected, &BUILTINS);
    prom.label_values(&label, &selector, since).await
}

/// Picks concrete values as a person would, variable after variable, each
/// list filtered by the choices before it (two images, to exercise the
/// multi-value form; "All" for a variable with no value, `cluster` here);
/// then every query must still parse, and the latest status table must
/// show the chosen steps.
async fn concrete_selection_works(
    prom: &PromServer,
    dashboards: &[(String, Value)],
    since: f64,
) -> Result<(), String> {
    for (file, d) in dashboards {
        let vars = grafana::variables(d);
        let mut selected: BTreeMap<String, Selection> = all_selected(prom, &vars, since).await?;
        for v in vars.iter().filter(|v| v.kind == "query") {
            let values = variable_values(prom, v, &vars, &selected, since).await?;
            let chosen: Vec<String> = match v.name.as_str() {
                "image" => ["gpu-worker", "web-server"]
                    .iter()
                    .filter(|i| values.iter().any(|v| v == *i))
                    .map(|i| i.to_string())
                    .collect(),
                _ => values.first().cloned().into_iter().collect(),
            };
            if chosen.is_empty() && v.name != "cluster" {
                return Err(format!("{file}: variable {} offers {values:?}", v.name));
            }
            if !chosen.is_empty() {
                selected.insert(v.name.clone(), Selection::Values(chosen));
            }
        }
        for t in grafana::targets(d) {
            let q = grafana::interpolate(&t.expr, &vars, &selected, &BUILTINS);
            let series = if t.instant {
                prom.query(&q).await
            } else {
                prom.query_range(&q, since, 2.0).await
            }
            .map_err(|e| format!("{file}: {} with {selected:?}: {e}: {q}", t.name()))?;
            // A plain selection of the status with the chosen values: the
            // chain offered them, so there are series.
            let plain = t.panel == "Latest status of each step" && t.ref_id == "A";
            if plain && series.is_empty() {
                return Err(format!(
                    "{file}: {} with {selected:?} is empty: {q}",
                    t.name()
                ));
            }
        }
    }
    Ok(())
}

/// The state and `activeAt` of the alert with exactly these labels.
async fn alert_state(prom: &PromServer, labels: &Value) -> Result<(String, String), String> {
    let alerts = prom.alerts().await?;
    let a = alerts
        .iter()
        .find(|a| &a["labels"] == labels)
        .ok_or_else(|| format!("no alert {labels}"))?;
    Ok((
        a["state"].as_str().unwrap_or_default().to_string(),
        a["activeAt"].as_str().unwrap_or_default().to_string(),
    ))
}

/// Whether Prometheus currently holds step series from `instance`.
async fn serves_steps(prom: &PromServer, instance: &str) -> Result<bool, String> {
    let q = format!(r#"count(imagebuilder_workflow_step_status{{instance="{instance}"}})"#);
    Ok(!prom.query(&q).await?.is_empty())
}

/// The failures the simulator reports (end times, Unix seconds).
async fn failures_of(endpoint: &str) -> Result<Vec<f64>, String> {
    let (status, _, body) = try_request("GET", &format!("{endpoint}/_sim/failures")).await?;
    if status != 200 {
        return Err(format!("/_sim/failures: {status}"));
    }
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["endEpochSeconds"].as_f64())
        .collect())
}

/// The sum of every point of every series of a range query.
fn sum_of(series: &[Value]) -> f64 {
    series
        .iter()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p[1].as_str().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// The failure bars of the dashboard, as Grafana would draw them at a step
/// of `step` seconds ending at `end` (`$__interval` = the step), and the
/// "Failed executions in time range" stat over the same range, add up to
/// `real` whole failures.
async fn failure_bars_add_up(
    prom: &PromServer,
    d: &Value,
    start: f64,
    end: f64,
    real: usize,
) -> Result<(), String> {
    let vars = grafana::variables(d);
    let all = all_selected(prom, &vars, start).await?;
    let targets = grafana::targets(d);
    for step in [15u64, 60, 300] {
        let interval = format!("{step}s");
        let builtins = [
            ("__rate_interval", "1m"),
            ("__interval", interval.as_str()),
            ("__range", "1h"),
            ("__range_s", "3600"),
        ];
        // Points every `step` back from `end` to before `start`: the
        // windows (t - step, t] cover the whole run, and do not overlap.
        let n = ((end - start) / step as f64).ceil() + 1.0;
        let first = end - n * step as f64;
        for title in [
            "Failed step executions by action",
            "Failed step executions by image",
        ] {
            let t = panel_query(&targets, title, "A");
            let q = grafana::interpolate(&t.expr, &vars, &all, &builtins);
            let series = prom
                .query_range_between(&q, first, end, step as f64)
                .await?;
            let sum = sum_of(&series);
            if sum != real as f64 {
                return Err(format!(
                    "{title} at a {step} s step adds up to {sum}, {real} failed: {series:?}"
                ));
            }
        }
        // The stat: the same windows, added up (its reducer is "sum").
        let t = panel_query(&targets, "Failed executions in time range", "A");
        let q = grafana::interpolate(&t.expr, &vars, &all, &builtins);
        let stat = prom
            .query_range_between(&q, first, end, step as f64)
            .await?;
        let value = sum_of(&stat);
        if value != real as f64 {
            return Err(format!(
                "\"Failed executions in time range\" at a {step} s step shows {value}, {real} failed"
            ));
        }
    }
    Ok(())
}

#[tokio::test]
async fn dashboard_and_alerts_work_against_a_real_prometheus_scraping_two_replicas() {
    let Some(prometheus) = tools::require("prometheus") else {
        return;
    };
    let started = Instant::now();
    let work = Workdir::new("imagebuilder-e2e-prometheus");

    let (mut simulator, endpoint) = start_simulator(&work).await;
    set_latency(&endpoint, COLD_START_LATENCY_MS).await;
    let exporters: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let mut prom = PromServer::start(&prometheus, &work.path, &prometheus_config(&exporters));
    prom.wait_ready(Duration::from_secs(30)).await;
    let since = unix_now();

    // A slowed cold start: no RefreshFailing, not even pending, while both
    // replicas read the account (imagebuilder_up absent, ready 0).
    let mut replicas: Vec<Proc> = exporters
        .iter()
        .enumerate()
        .map(|(n, listen)| start_exporter(&work, &endpoint, listen, n))
        .collect();
    let mut saw_not_ready = false;
    let mut ready = vec![false; exporters.len()];
    let cold_deadline = Instant::now() + Duration::from_secs(120);
    while ready.iter().any(|r| !r) {
        assert!(Instant::now() < cold_deadline, "the cold start did not end");
        for a in prom.alerts().await.unwrap_or_default() {
            assert_ne!(
                a["labels"]["alertname"], "ImageBuilderExporterRefreshFailing",
                "during a cold start: {a}"
            );
        }
        let starting = prom
            .query("imagebuilder_exporter_ready == 0 unless on (instance, target) imagebuilder_up")
            .await
            .unwrap_or_default();
        saw_not_ready |= !starting.is_empty();
        for (n, e) in exporters.iter().enumerate() {
            replicas[n].assert_running("exporter");
            let probe = try_request("GET", &format!("http://{e}/-/ready")).await;
            ready[n] |= matches!(probe, Ok((200, _, _)));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ready_at = unix_now();
    // What Prometheus scraped in between, whenever this loop looked: a
    // replica ready 0 while it served no imagebuilder_up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = prom
        .query(
            "max_over_time((imagebuilder_exporter_ready == 0 \
             unless on (instance, target) imagebuilder_up)[5m:1s])",
        )
        .await
        .unwrap_or_default();
    saw_not_ready |= !seen.is_empty();
    assert!(
        saw_not_ready,
        "Prometheus never saw a replica starting (imagebuilder_exporter_ready 0, no imagebuilder_up)"
    );
    let cold_start = started.elapsed();
    set_latency(&endpoint, 0).await;

    let deadline = Instant::now() + DEADLINE;
    let expected = rules_in_files();
    assert!(expected.contains("ImageBuilderStepFailed"), "{expected:?}");
    let rule_queries = eventually(deadline, "the rules files load and evaluate", || {
        rules_loaded(&prom, &expected)
    })
    .await;

    let alerted = eventually(
        deadline,
        "ImageBuilderStepFailed fires once per failed step, quoting the failure",
        || failed_step_alerts(&prom, &exporters),
    )
    .await;
    assert!(!alerted.is_empty());
    // What the demo holds for each (see the simulator's demo): a failed
    // rollback, a stale image, a pipeline one failure from its policy's
    // count, a build that failed distributing to eu-west-1.
    for (name, label, value) in [
        (
            "ImageBuilderStepRollbackFailed",
            "alertname",
            "ImageBuilderStepRollbackFailed",
        ),
        (
            "ImageBuilderImageStale",
            "alertname",
            "ImageBuilderImageStale",
        ),
        (
            "ImageBuilderPipelineNearAutoDisable",
            "pipeline",
            "gpu-worker",
        ),
        (
            "ImageBuilderImageDistributionFailed",
            "image",
            "analytics-etl",
        ),
    ] {
        let alert = eventually(deadline, &format!("{name} fires in the demo"), || async {
            let alerts = prom.alerts().await?;
            alerts
                .into_iter()
                .find(|a| {
                    a["labels"]["alertname"] == name
                        && a["labels"][label] == value
                        && a["state"] == "firing"
                })
                .ok_or_else(|| format!("no {name} with {label}={value}"))
        })
        .await;
        if name == "ImageBuilderImageDistributionFailed" {
            let description = alert["annotations"]["description"]
                .as_str()
                .unwrap_or_default();
            assert!(
                description.starts_with("eu-west-1 (account 210987654321): FAILED: "),
                "{description}"
            );
        }
    }
    // A pipeline disabled by hand below its count is no alert.
    let alerts = prom.alerts().await.unwrap_or_default();
    assert!(
        !alerts.iter().any(
            |a| a["labels"]["alertname"] == "ImageBuilderPipelineAutoDisabled"
                && a["labels"]["pipeline"] == "windows-base"
        ),
        "{alerts:?}"
    );

    // Events: the demo's builds change state every minute or so; each
    // event reaches one replica, which reads its build at once.
    eventually(
        deadline,
        "the replicas apply the simulator's events",
        || async {
            let applied = prom
                .query("sum(imagebuilder_exporter_events_applied_total{job=\"imagebuilder\"})")
                .await?;
            let n: f64 = applied
                .iter()
                .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
                .sum();
            (n > 0.0)
                .then_some(())
                .ok_or_else(|| format!("no event applied yet: {applied:?}"))
        },
    )
    .await;

    let dashboards: Vec<(String, Value)> = grafana::dashboard_paths()
        .into_iter()
        .map(|p| (p.display().to_string(), grafana::load(&p)))
        .collect();
    let (failed, steps) = eventually(deadline, "the dashboard counts each step once", || {
        dashboard_counts_each_step_once(&prom, &dashboards, &exporters)
    })
    .await;
    concrete_selection_works(&prom, &dashboards, since)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // One replica restarts: the FAILED alert of a step nothing rebuilds
    // stays firing, with the same activeAt, throughout.
    let (step, alert) = alerted
        .iter()
        .find(|(s, _)| s["image"] == "bastion-host")
        .or_else(|| alerted.iter().next())
        .expect("an alert");
    let labels = alert["labels"].clone();
    let (_, active_at) = alert_state(&prom, &labels)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let restarted = exporters[1].clone();
    let check_alert = async || {
        let (state, at) = alert_state(&prom, &labels)
            .await
            .unwrap_or_else(|e| panic!("during the restart: {e}"));
        assert_eq!(
            (state.as_str(), at.as_str()),
            ("firing", active_at.as_str()),
            "the alert of {step:?} during the restart"
        );
    };
    drop(replicas.pop());
    let restart_deadline = Instant::now() + Duration::from_secs(60);
    // Until Prometheus has dropped the stopped replica's series...
    while serves_steps(&prom, &restarted).await.unwrap_or(true) {
        assert!(
            Instant::now() < restart_deadline,
            "{restarted}'s series stay"
        );
        check_alert().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    check_alert().await;
    replicas.push(start_exporter(&work, &endpoint, &restarted, 1));
    // ...and until it serves them again, after its first refresh.
    while !serves_steps(&prom, &restarted).await.unwrap_or(false) {
        assert!(
            Instant::now() < restart_deadline,
            "{restarted} never came back"
        );
        if let Some(p) = replicas.last_mut() {
            p.assert_running("restarted exporter");
        }
        check_alert().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for _ in 0..5 {
        check_alert().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Failure bars: wait for two failures the exporters counted (ended
    // after both were ready), and for a moment 30 s after the last one
    // (counted and scraped by then) with none since.
    let failures_deadline = started + FAILURES_DEADLINE;
    let (end, real) = eventually(failures_deadline, "two failures to count", || async {
        let now = unix_now();
        let ended = failures_of(&endpoint).await?;
        // Seeded by a replica at its first refresh, counted by the other,
        // or neither: the count would be ambiguous. The seed avoids it.
        let during_cold_start: Vec<&f64> = ended
            .iter()
            .filter(|t| **t > since && **t <= ready_at + 5.0)
            .collect();
        assert!(
            during_cold_start.is_empty(),
            "a failure ended during the exporters' cold start: {during_cold_start:?}"
        );
        let counted: Vec<f64> = ended.iter().copied().filter(|t| *t > ready_at).collect();
        let last = counted.iter().copied().fold(0.0, f64::max);
        if counted.len() < 2 || now - last < 30.0 {
            return Err(format!("{} failures so far", counted.len()));
        }
        Ok((
            now - 5.0,
            counted.iter().filter(|t| **t <= now - 5.0).count(),
        ))
    })
    .await;
    let (file, d) = &dashboards[0];
    failure_bars_add_up(&prom, d, since, end, real)
        .await
        .unwrap_or_else(|e| panic!("{file}: {e}"));

    // The demo's hardened-base pipeline disables itself about 2.5 minutes
    // in (its policy's count is 2): the event and the listing bring it to
    // Prometheus, and the alert says so.
    let disabled = eventually(
        failures_deadline,
        "ImageBuilderPipelineAutoDisabled fires for hardened-base",
        || async {
            let alerts = prom.alerts().await?;
            alerts
                .into_iter()
                .find(|a| {
                    a["labels"]["alertname"] == "ImageBuilderPipelineAutoDisabled"
                        && a["labels"]["pipeline"] == "hardened-base"
                        && a["state"] == "firing"
                })
                .ok_or_else(|| "not yet".to_string())
        },
    )
    .await;
    let description = disabled["annotations"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.contains("was disabled by Image Builder after 2 consecutive failed scheduled runs (its auto-disable count is 2)"),
        "{description}"
    );

    let checked = eventually(
        Instant::now() + DEADLINE,
        "every dashboard query has data",
        || dashboard_has_data(&prom, &dashboards, &rule_queries, &exporters, since),
    )
    .await;

    simulator.assert_running("simulator");
    for proc in &mut replicas {
        proc.assert_running("exporter");
    }
    prom.proc.assert_running("prometheus");
    eprintln!(
        "{} replicas: cold start {cold_start:?} without RefreshFailing, {} rules loaded, {} \
         FAILED-step alerts, one kept across a restart, {failed} FAILED of {steps} steps on the \
         dashboard, {real} failures in the bars at 15/60/300 s, {checked} dashboard queries with \
         data, in {:?}",
        exporters.len(),
        rule_queries.len(),
        alerted.len(),
        started.elapsed()
    );
}

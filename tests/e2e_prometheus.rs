//! End to end: a real Prometheus (Debian's `prometheus` package) scrapes
//! two replicas of the exporter, the way the README recommends running it
//! for high availability, and evaluates `alerts/imagebuilder.rules.yml`.
//! Both replicas read one simulated Image Builder account (an
//! `imagebuilder-sim` process running the demo scenario), so their series
//! are the same but for `instance`. Through Prometheus' HTTP API it shows
//! that the rules load and evaluate; that ImageBuilderStepFailed fires
//! exactly once, without a replica label, for each step the exporters
//! report FAILED; that the dashboard counts each step once (its "Steps
//! FAILED now" stat and its latest-status table) while it shows the
//! exporter's own health per replica; that every query of the dashboard
//! parses and has data; and that every metric the dashboard and the rules
//! use exists, so renaming one fails here.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use common::grafana::{Selection, Variable, LABEL_VARIABLES};
use common::http::free_port;
use common::promapi::{unix_now, wait_http_ok, Proc, PromServer, Workdir};
use common::{get, grafana, tools, Metrics};
use serde_json::Value;

const EXPORTER: &str = env!("CARGO_BIN_EXE_imagebuilder-exporter");
const SIMULATOR: &str = env!("CARGO_BIN_EXE_imagebuilder-sim");
const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/imagebuilder.rules.yml");

/// The labels of every step series.
const STEP_LABELS: [&str; 7] = [
    "account_id",
    "region",
    "image",
    "workflow_arn",
    "workflow_type",
    "step_name",
    "action",
];

/// Grafana's built-in variables as a dashboard over the last hour would
/// have them.
const BUILTINS: [(&str, &str); 4] = [
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__range", "1h"),
    ("__range_s", "3600"),
];

/// The demo's counters and histograms get their first step executions
/// about 30 s after start; everything else is there at once.
const DEADLINE: Duration = Duration::from_secs(90);

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
    let mut cmd = Command::new(SIMULATOR);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--scenario",
        "demo",
        "--log.level",
        "warn",
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

/// Starts one exporter replica on `listen`, reading the simulator at
/// `endpoint` through the standard AWS environment (and nothing else of
/// this machine's).
fn start_exporter(work: &Workdir, endpoint: &str, listen: &str, n: usize) -> Proc {
    let mut cmd = Command::new(EXPORTER);
    cmd.args([
        "--web.listen-address",
        listen,
        "--refresh.min-interval",
        "2s",
        "--discovery.interval",
        "10s",
        "--log.level",
        "warn",
    ])
    .env_clear()
    .env("AWS_ENDPOINT_URL_IMAGEBUILDER", endpoint)
    .env("AWS_REGION", "us-east-1")
    .env("AWS_ACCESS_KEY_ID", "test")
    .env("AWS_SECRET_ACCESS_KEY", "test")
    .env("AWS_EC2_METADATA_DISABLED", "true");
    Proc::spawn(cmd, work.path.join(format!("exporter-{n}.log")))
}

/// Alert names in the rules file, read line by line (`- alert: Name`).
fn alerts_in_rules_file() -> BTreeSet<String> {
    std::fs::read_to_string(RULES)
        .expect("rules file")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_string())
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

/// The rules Prometheus loaded: every alert of the file, each evaluated
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
        return Err(format!("loaded {names:?}, the file has {expected:?}"));
    }
    Ok(queries)
}

type Labels = BTreeMap<String, String>;

/// The step labels of a sample or series.
fn step_of(get: impl Fn(&str) -> Option<String>) -> Labels {
    STEP_LABELS
        .iter()
        .map(|k| (k.to_string(), get(k).unwrap_or_default()))
        .collect()
}

/// Steps of one replica's /metrics: every step, and those FAILED now.
async fn steps_of(exporter: &str) -> Result<(BTreeSet<Labels>, BTreeSet<Labels>), String> {
    let (status, _, body) = get(&format!("http://{exporter}/metrics")).await;
    if status != 200 {
        return Err(format!("{exporter}/metrics: {status}"));
    }
    let m = Metrics::parse(&body);
    let mut all = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for s in m
        .samples
        .iter()
        .filter(|s| s.metric == "imagebuilder_workflow_step_status")
    {
        let step = step_of(|k| s.labels.get(k).map(str::to_string));
        let one = matches!(s.value, prometheus_parse::Value::Gauge(v) if v == 1.0);
        if one && s.labels.get("status") == Some("FAILED") {
            failed.insert(step.clone());
        }
        all.insert(step);
    }
    Ok((all, failed))
}

/// The FAILED steps of every replica, one set per replica.
async fn failed_steps(exporters: &[String]) -> Result<Vec<BTreeSet<Labels>>, String> {
    let mut out = Vec::new();
    for e in exporters {
        out.push(steps_of(e).await?.1);
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

/// ImageBuilderStepFailed fires once per step the replicas report FAILED,
/// whatever the number of replicas: with exactly the labels of the failed
/// step plus severity, status and the scrape's job (no `instance`), and
/// annotations that name it; for no other step. Returns the steps.
async fn failed_step_alerts(
    prom: &PromServer,
    exporters: &[String],
) -> Result<Vec<Labels>, String> {
    let before = failed_steps(exporters).await?;
    let data = prom.api("/api/v1/alerts", &[]).await?;
    let after = failed_steps(exporters).await?;
    let readings: Vec<&BTreeSet<Labels>> = before.iter().chain(&after).collect();
    // Reported by some replica in some reading; by all in all readings.
    let reported: BTreeSet<Labels> = readings.iter().flat_map(|r| r.iter().cloned()).collect();
    let stable: BTreeSet<Labels> = reported
        .iter()
        .filter(|s| readings.iter().all(|r| r.contains(*s)))
        .cloned()
        .collect();
    if stable.is_empty() {
        return Err(format!(
            "the replicas report no FAILED step they agree on: {readings:?}"
        ));
    }
    let mut alerted: Vec<Labels> = Vec::new();
    for a in data["alerts"].as_array().into_iter().flatten() {
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
            ("status", "FAILED"),
            ("job", "imagebuilder"),
        ] {
            want.insert(k.into(), v.into());
        }
        if labels != want {
            return Err(format!("alert labels {labels:?}, want {want:?}"));
        }
        // A step that changed status between Prometheus' last scrapes and
        // ours is in some of the readings.
        if !reported.contains(&step) {
            return Err(format!(
                "alert for a step no replica reports FAILED: {step:?}"
            ));
        }
        if alerted.contains(&step) {
            return Err(format!("two alerts for {step:?}"));
        }
        let summary = a["annotations"]["summary"].as_str().unwrap_or_default();
        for k in ["image", "workflow_arn", "step_name", "action"] {
            if !summary.contains(&step[k]) {
                return Err(format!("summary {summary:?} does not name the {k}"));
            }
        }
        for k in ["description", "runbook"] {
            if a["annotations"][k].as_str().unwrap_or_default().is_empty() {
                return Err(format!("alert without {k}"));
            }
        }
        alerted.push(step);
    }
    let missing: Vec<_> = stable.iter().filter(|s| !alerted.contains(s)).collect();
    if !missing.is_empty() {
        return Err(format!("no alert for the FAILED steps {missing:?}"));
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

/// With both replicas scraped, Prometheus holds every step twice, yet the
/// dashboard's "Steps FAILED now" stat is the number of distinct FAILED
/// steps, and its latest-status table has one row per step. Both are
/// compared with what the replicas serve, read before and after: a step
/// changing status in between (the replicas refresh at their own pace)
/// makes the attempt inconclusive, and it is tried again. Returns
/// (FAILED steps, steps).
async fn dashboard_counts_each_step_once(
    prom: &PromServer,
    dashboards: &[(String, Value)],
    exporters: &[String],
) -> Result<(usize, usize), String> {
    let mut readings = Vec::new();
    for e in exporters {
        readings.push(steps_of(e).await?);
    }
    let mut answers = Vec::new();
    for (file, d) in dashboards {
        let vars = grafana::variables(d);
        let all: BTreeMap<String, Selection> = LABEL_VARIABLES
            .iter()
            .map(|v| (v.to_string(), Selection::All))
            .collect();
        let targets = grafana::targets(d);
        let stat = panel_query(&targets, "Steps FAILED now", "A");
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
    for e in exporters {
        readings.push(steps_of(e).await?);
    }
    let (steps, failed) = &readings[0];
    if readings.iter().any(|r| r != &readings[0]) {
        return Err("the replicas' steps changed or differ between readings".into());
    }
    let value =
        |series: &[Value]| -> Option<f64> { series.first()?["value"][1].as_str()?.parse().ok() };
    for (file, stat, rows, raw) in answers {
        // Prometheus holds each FAILED step once per replica...
        let raw = value(&raw);
        if raw != Some((failed.len() * exporters.len()) as f64) {
            return Err(format!(
                "Prometheus has {raw:?} FAILED series for {} FAILED steps and {} replicas",
                failed.len(),
                exporters.len()
            ));
        }
        // ...and the stat counts it once.
        let stat = value(&stat);
        if stat != Some(failed.len() as f64) {
            return Err(format!(
                "{file}: \"Steps FAILED now\" shows {stat:?}, the replicas report {} FAILED steps",
                failed.len()
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

/// Every query of every dashboard panel, variables at "All", parses and
/// returns at least one series; every variable query lists values; every
/// metric the dashboard or the rules use has series. Step and workflow
/// queries return no series per replica; the exporter's own show every
/// replica.
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
        let all: BTreeMap<String, Selection> = LABEL_VARIABLES
            .iter()
            .map(|v| (v.to_string(), Selection::All))
            .collect();
        for v in vars.iter().filter(|v| v.kind == "query") {
            match variable_values(prom, v, &vars, &all, since).await {
                Ok(values) if values.is_empty() => {
                    problems.push(format!("{file}: variable {} lists no value", v.name))
                }
                Ok(_) => {}
                Err(e) => problems.push(format!("{file}: variable {}: {e}", v.name)),
            }
            let (selector, _) = grafana::parse_label_values(&v.query).unwrap_or_default();
            metrics.extend(grafana::metric_names(&selector).map_err(|e| format!("{file}: {e}"))?);
        }
        for t in grafana::targets(d) {
            let used = grafana::metric_names(&t.expr).map_err(|e| format!("{file}: {e}"))?;
            let steps = used.iter().all(|m| m.starts_with("imagebuilder_workflow_"));
            metrics.extend(used);
            let q = grafana::interpolate(&t.expr, &vars, &all, &BUILTINS);
            let result = if t.instant {
                prom.query(&q).await
            } else {
                prom.query_range(&q, since, 2.0).await
            };
            checked += 1;
            let series = match result {
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
            if steps && !instances.is_empty() {
                problems.push(format!(
                    "{file}: {} returns a series per replica {instances:?}: {q}",
                    t.name()
                ));
            }
            if !steps && instances != replicas {
                problems.push(format!(
                    "{file}: {} shows replicas {instances:?}, not {replicas:?}: {q}",
                    t.name()
                ));
            }
        }
    }
    for q in rule_queries {
        metrics.extend(grafana::metric_names(q).map_err(|e| format!("rule {q}: {e}"))?);
    }
    for m in &metrics {
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
/// multi-value form); then every query must still parse, and the latest
/// status table must show the chosen steps.
async fn concrete_selection_works(
    prom: &PromServer,
    dashboards: &[(String, Value)],
    since: f64,
) -> Result<(), String> {
    for (file, d) in dashboards {
        let vars = grafana::variables(d);
        let mut selected: BTreeMap<String, Selection> = BTreeMap::new();
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
            if chosen.is_empty() {
                return Err(format!("{file}: variable {} offers {values:?}", v.name));
            }
            selected.insert(v.name.clone(), Selection::Values(chosen));
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
            let plain = t
                .expr
                .starts_with("max without (instance, pod) (imagebuilder_workflow_step_status{")
                && t.expr.ends_with("}) == 1")
                && !t.expr.contains("status=");
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

#[tokio::test]
async fn dashboard_and_alerts_work_against_a_real_prometheus_scraping_two_replicas() {
    let Some(prometheus) = tools::require("prometheus") else {
        return;
    };
    let started = Instant::now();
    let deadline = started + DEADLINE;
    let work = Workdir::new("imagebuilder-e2e-prometheus");

    let (mut simulator, endpoint) = start_simulator(&work).await;
    let exporters: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let mut replicas: Vec<Proc> = exporters
        .iter()
        .enumerate()
        .map(|(n, listen)| start_exporter(&work, &endpoint, listen, n))
        .collect();
    for (exporter, proc) in exporters.iter().zip(&mut replicas) {
        let ready = format!("http://{exporter}/-/ready");
        wait_http_ok(&ready, Duration::from_secs(30), proc, "exporter").await;
    }

    let mut prom = PromServer::start(&prometheus, &work.path, &prometheus_config(&exporters));
    prom.wait_ready(Duration::from_secs(30)).await;
    let since = unix_now();

    let expected = alerts_in_rules_file();
    assert!(expected.contains("ImageBuilderStepFailed"), "{expected:?}");
    let rule_queries = eventually(deadline, "the rules file loads and evaluates", || {
        rules_loaded(&prom, &expected)
    })
    .await;

    let alerted = eventually(
        deadline,
        "ImageBuilderStepFailed fires once per step",
        || failed_step_alerts(&prom, &exporters),
    )
    .await;
    assert!(!alerted.is_empty());

    let dashboards: Vec<(String, Value)> = grafana::dashboard_paths()
        .into_iter()
        .map(|p| (p.display().to_string(), grafana::load(&p)))
        .collect();
    let (failed, steps) = eventually(deadline, "the dashboard counts each step once", || {
        dashboard_counts_each_step_once(&prom, &dashboards, &exporters)
    })
    .await;

    let checked = eventually(deadline, "every dashboard query has data", || {
        dashboard_has_data(&prom, &dashboards, &rule_queries, &exporters, since)
    })
    .await;

    concrete_selection_works(&prom, &dashboards, since)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    simulator.assert_running("simulator");
    for proc in &mut replicas {
        proc.assert_running("exporter");
    }
    prom.proc.assert_running("prometheus");
    eprintln!(
        "{} replicas: {} rules loaded, {} FAILED-step alerts, {failed} FAILED of {steps} steps \
         on the dashboard, {checked} dashboard queries with data, in {:?}",
        exporters.len(),
        rule_queries.len(),
        alerted.len(),
        started.elapsed()
    );
}

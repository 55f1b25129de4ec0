//! End to end: a real Prometheus (Debian's `prometheus` package) scrapes
//! the exporter running against its built-in simulator (`--demo`) and
//! evaluates `alerts/imagebuilder.rules.yml`. Through Prometheus' HTTP API
//! it shows that the rules load and evaluate, that the FAILED-step alert
//! fires with the right labels for a step that failed, that every query of
//! the dashboard parses and has data, and that every metric the dashboard
//! and the rules use exists — so renaming one fails here.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use common::grafana::{Selection, Variable, LABEL_VARIABLES};
use common::promapi::{free_port, unix_now, wait_http_ok, Proc, PromServer, Workdir};
use common::{get, grafana, tools, Metrics};
use serde_json::Value;

const EXPORTER: &str = env!("CARGO_BIN_EXE_imagebuilder-exporter");
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
const DEADLINE: Duration = Duration::from_secs(100);

fn prometheus_config(exporter: &str) -> String {
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
      - targets: ["{exporter}"]
"#
    )
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

/// Steps the exporter reports FAILED right now.
async fn failed_steps(exporter: &str) -> Result<BTreeSet<Labels>, String> {
    let (status, _, body) = get(&format!("http://{exporter}/metrics")).await;
    if status != 200 {
        return Err(format!("/metrics: {status}"));
    }
    let m = Metrics::parse(&body);
    Ok(m.samples
        .iter()
        .filter(|s| {
            s.metric == "imagebuilder_workflow_step_status"
                && s.labels.get("status") == Some("FAILED")
                && matches!(s.value, prometheus_parse::Value::Gauge(v) if v == 1.0)
        })
        .map(|s| {
            STEP_LABELS
                .iter()
                .map(|k| {
                    (
                        k.to_string(),
                        s.labels.get(k).unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .collect())
}

/// ImageBuilderStepFailed fires, with exactly the labels of the failed
/// step (plus severity, status and the scrape's job and instance) and
/// annotations that name it, for the steps the exporter reports FAILED and
/// for no other. Returns the steps.
async fn failed_step_alerts(prom: &PromServer, exporter: &str) -> Result<Vec<Labels>, String> {
    let before = failed_steps(exporter).await?;
    let data = prom.api("/api/v1/alerts", &[]).await?;
    let after = failed_steps(exporter).await?;
    if before.is_empty() {
        return Err("the demo reports no FAILED step".into());
    }
    let mut alerted = Vec::new();
    for a in data["alerts"].as_array().into_iter().flatten() {
        let labels: Labels = a["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        if labels.get("alertname").map(String::as_str) != Some("ImageBuilderStepFailed") {
            continue;
        }
        if a["state"] != "firing" {
            return Err(format!("{labels:?} is {}", a["state"]));
        }
        let step: Labels = STEP_LABELS
            .iter()
            .map(|k| (k.to_string(), labels.get(*k).cloned().unwrap_or_default()))
            .collect();
        let mut want = step.clone();
        for (k, v) in [
            ("alertname", "ImageBuilderStepFailed"),
            ("severity", "warning"),
            ("status", "FAILED"),
            ("job", "imagebuilder"),
            ("instance", exporter),
        ] {
            want.insert(k.into(), v.into());
        }
        if labels != want {
            return Err(format!("alert labels {labels:?}, want {want:?}"));
        }
        // A step that changed status between Prometheus' last scrape and
        // ours is in one of the two readings.
        if !before.contains(&step) && !after.contains(&step) {
            return Err(format!(
                "alert for a step the exporter does not report FAILED: {step:?}"
            ));
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
    let missing: Vec<_> = before
        .intersection(&after)
        .filter(|s| !alerted.contains(s))
        .collect();
    if !missing.is_empty() {
        return Err(format!("no alert for the FAILED steps {missing:?}"));
    }
    Ok(alerted)
}

/// Every query of every dashboard panel, variables at "All", parses and
/// returns at least one series; every variable query lists values; every
/// metric the dashboard or the rules use has series.
async fn dashboard_has_data(
    prom: &PromServer,
    dashboards: &[(String, Value)],
    rule_queries: &[String],
    since: f64,
) -> Result<usize, String> {
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
            metrics.extend(grafana::metric_names(&t.expr).map_err(|e| format!("{file}: {e}"))?);
            let q = grafana::interpolate(&t.expr, &vars, &all, &BUILTINS);
            let result = if t.instant {
                prom.query(&q).await
            } else {
                prom.query_range(&q, since, 2.0).await
            };
            checked += 1;
            match result {
                Ok(series) if series.is_empty() => {
                    problems.push(format!("{file}: {} returns no series: {q}", t.name()))
                }
                Ok(_) => {}
                Err(e) => problems.push(format!("{file}: {}: {e}: {q}", t.name())),
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
            let plain = t.expr.starts_with("imagebuilder_workflow_step_status{")
                && t.expr.ends_with("} == 1")
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
async fn dashboard_and_alerts_work_against_a_real_prometheus() {
    let Some(prometheus) = tools::require("prometheus") else {
        return;
    };
    let started = Instant::now();
    let deadline = started + DEADLINE;
    let work = Workdir::new("imagebuilder-e2e-prometheus");

    let exporter = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new(EXPORTER);
    cmd.args([
        "--demo",
        "--web.listen-address",
        &exporter,
        "--log.level",
        "warn",
    ]);
    let mut exporter_proc = Proc::spawn(cmd, work.path.join("exporter.log"));
    let ready = format!("http://{exporter}/-/ready");
    wait_http_ok(
        &ready,
        Duration::from_secs(30),
        &mut exporter_proc,
        "exporter",
    )
    .await;

    let mut prom = PromServer::start(&prometheus, &work.path, &prometheus_config(&exporter));
    prom.wait_ready(Duration::from_secs(30)).await;
    let since = unix_now();

    let expected = alerts_in_rules_file();
    assert!(expected.contains("ImageBuilderStepFailed"), "{expected:?}");
    let rule_queries = eventually(deadline, "the rules file loads and evaluates", || {
        rules_loaded(&prom, &expected)
    })
    .await;

    let alerted = eventually(deadline, "ImageBuilderStepFailed fires", || {
        failed_step_alerts(&prom, &exporter)
    })
    .await;
    assert!(!alerted.is_empty());

    let dashboards: Vec<(String, Value)> = grafana::dashboard_paths()
        .into_iter()
        .map(|p| (p.display().to_string(), grafana::load(&p)))
        .collect();
    let checked = eventually(deadline, "every dashboard query has data", || {
        dashboard_has_data(&prom, &dashboards, &rule_queries, since)
    })
    .await;

    concrete_selection_works(&prom, &dashboards, since)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    exporter_proc.assert_running("exporter");
    prom.proc.assert_running("prometheus");
    eprintln!(
        "{} rules loaded, {} FAILED-step alerts, {checked} dashboard queries with data, in {:?}",
        rule_queries.len(),
        alerted.len(),
        started.elapsed()
    );
}

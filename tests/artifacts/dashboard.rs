//! The bundled Grafana dashboard, read as a file: importable (valid JSON,
//! uid, title, a datasource input), every panel and query pointed at the
//! datasource variable, variables that are well-formed and chained, queries
//! that are well-formed PromQL once Grafana has interpolated them, the
//! panels the on-call person needs, exact failure counts (the arithmetic is
//! checked here on simulated replicas), and the rules of Grafana's
//! dashboard-linter. `e2e_prometheus` runs the same queries against
//! a real Prometheus.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use crate::shared::tools;
use common::grafana::{
    self, Replicas, Selection, Token, DATASOURCE_VAR, LABEL_VARIABLES, SCRAPE_VARIABLES,
    TARGET_VARIABLE,
};
use imagebuilder_exporter::metrics::family::{self, Kind};
use imagebuilder_exporter::metrics::labels;
use serde_json::Value;

/// Panel types the dashboard may use; each must be listed in `__requires`.
const PANEL_TYPES: [&str; 5] = ["row", "stat", "table", "timeseries", "bargauge"];

/// The Grafana version the JSON needs (`__requires`), as docs/dashboard.md says.
const GRAFANA_VERSION: &str = "10.4.0";

/// The bundled dashboards, never none: a lint loop over an empty list
/// would pass without checking anything.
fn dashboards() -> Vec<(String, Value)> {
    let found: Vec<(String, Value)> = grafana::dashboard_paths()
        .into_iter()
        .map(|p| (p.display().to_string(), grafana::load(&p)))
        .collect();
    assert!(!found.is_empty(), "no dashboard found");
    found
}

/// A dashboard's queries, never none (see [`dashboards`]).
fn targets(d: &Value) -> Vec<grafana::Target> {
    let t = grafana::targets(d);
    assert!(t.len() > 10, "only {} queries", t.len());
    t
}

fn is_var_ref(ds: &Value) -> bool {
    ds["type"] == "prometheus" && ds["uid"] == DATASOURCE_VAR
}

/// Metric families of Image Builder (not of the exporter itself): reduced
/// over replicas before anything else, filtered by the image variables.
fn is_image_builder_metric(metric: &str) -> bool {
    metric.starts_with("imagebuilder_workflow_") || metric.starts_with("imagebuilder_image_")
}

#[test]
fn is_importable() {
    for (file, d) in dashboards() {
        let uid = d["uid"].as_str().unwrap_or_default();
        assert!(
            !uid.is_empty()
                && uid.len() <= 40
                && uid
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{file}: uid {uid:?}"
        );
        assert!(
            !d["title"].as_str().unwrap_or_default().trim().is_empty(),
            "{file}: no title"
        );
        // An importable dashboard has no database id.
        assert!(d["id"].is_null(), "{file}: id must be null");
        let schema = d["schemaVersion"].as_i64().unwrap_or(0);
        assert!(schema >= 36, "{file}: schemaVersion {schema} is too old");
        // The import dialog asks for a Prometheus datasource.
        let inputs = d["__inputs"].as_array().expect("__inputs");
        assert!(
            inputs
                .iter()
                .any(|i| i["type"] == "datasource" && i["pluginId"] == "prometheus"),
            "{file}: no Prometheus datasource input"
        );
        let requires: BTreeSet<(String, String)> = d["__requires"]
            .as_array()
            .expect("__requires")
            .iter()
            .map(|r| {
                (
                    r["type"].as_str().unwrap_or_default().to_string(),
                    r["id"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert!(requires.contains(&("grafana".into(), "grafana".into())));
        assert!(requires.contains(&("datasource".into(), "prometheus".into())));
        let grafana_version = d["__requires"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["id"] == "grafana")
            .and_then(|r| r["version"].as_str());
        assert_eq!(grafana_version, Some(GRAFANA_VERSION), "{file}");
        let docs = crate::shared::docs::page("docs/dashboard.md");
        assert!(
            docs.contains(&format!("Grafana {GRAFANA_VERSION}")),
            "docs/dashboard.md names the version the JSON needs"
        );
        for p in grafana::panels(&d) {
            let t = p["type"].as_str().unwrap_or_default();
            assert!(PANEL_TYPES.contains(&t), "{file}: panel type {t:?}");
            if t != "row" {
                assert!(
                    requires.contains(&("panel".into(), t.into())),
                    "{file}: panel type {t} not in __requires"
                );
            }
        }
    }
}

/// Every datasource reference, wherever it is, is the variable; the only
/// UIDs in the file are the dashboard's own and Grafana's built-in
/// annotation source.
#[test]
fn no_hard_coded_datasource() {
    fn walk(v: &Value, path: &str, problems: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, child) in o {
                    let here = format!("{path}.{k}");
                    if k == "datasource" {
                        let builtin = child["type"] == "grafana" && child["uid"] == "-- Grafana --";
                        if !(is_var_ref(child) || builtin) {
                            problems.push(format!("{here} = {child}"));
                        }
                    }
                    if k == "uid"
                        && !path.is_empty()
                        && child != DATASOURCE_VAR
                        && child != "-- Grafana --"
                    {
                        problems.push(format!("{here} = {child}"));
                    }
                    walk(child, &here, problems);
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    walk(child, &format!("{path}[{i}]"), problems);
                }
            }
            _ => {}
        }
    }
    for (file, d) in dashboards() {
        let mut problems = Vec::new();
        walk(&d, "", &mut problems);
        assert!(problems.is_empty(), "{file}: {problems:#?}");
        for p in grafana::panels(&d) {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(
                is_var_ref(&p["datasource"]),
                "{file}: panel {title:?} does not use ${{datasource}}"
            );
            for t in p["targets"].as_array().into_iter().flatten() {
                assert!(
                    is_var_ref(&t["datasource"]),
                    "{file}: a query of {title:?} does not use ${{datasource}}"
                );
            }
        }
    }
}

/// The variables: the data source, then the scrape's (`cluster`, `job`,
/// `instance`), the image and step labels, and the exporter's `target`.
/// Each `label_values` query is filtered by the variables it depends on.
#[test]
fn variables_are_chained_label_values_queries() {
    for (file, d) in dashboards() {
        let vars = grafana::variables(&d);
        let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
        let mut want = vec!["datasource"];
        want.extend(grafana::all_variables());
        assert_eq!(names, want, "{file}: variables");

        let ds = &vars[0];
        assert_eq!(ds.kind, "datasource", "{file}");
        assert_eq!(ds.query, "prometheus", "{file}");

        let raw = d["templating"]["list"].as_array().expect("templating");
        for (i, v) in vars.iter().enumerate().skip(1) {
            let ctx = format!("{file}: variable {}", v.name);
            assert_eq!(v.kind, "query", "{ctx}");
            assert!(is_var_ref(&raw[i]["datasource"]), "{ctx}: datasource");
            assert!(v.multi && v.include_all, "{ctx}: multi-select with All");
            // `job` and `instance`: "All" is every value their queries
            // offer (the exporter's jobs, their replicas), never `.+`,
            // which in a shared Prometheus is every job (the "Scrape up"
            // panel showed them all). dashboard-linter wants `.+`; this
            // dashboard departs from it on purpose. The others may be
            // absent: `cluster` when Prometheus adds none.
            if v.name == "job" || v.name == "instance" {
                assert_eq!(v.all_value, None, "{ctx}: allValue");
            } else {
                assert_eq!(v.all_value.as_deref(), Some(".*"), "{ctx}: allValue");
            }
            assert_eq!(
                raw[i]["definition"].as_str(),
                Some(v.query.as_str()),
                "{ctx}: definition and query differ"
            );
            let (selector, label) = grafana::parse_label_values(&v.query)
                .unwrap_or_else(|| panic!("{ctx}: not label_values(selector, label): {}", v.query));
            assert_eq!(label, v.name, "{ctx}: lists another label");
            let metrics = grafana::metric_names(&selector).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let (metric, before): (&str, Vec<&str>) = if SCRAPE_VARIABLES.contains(&v.name.as_str())
            {
                let at = SCRAPE_VARIABLES
                    .iter()
                    .position(|s| *s == v.name)
                    .expect("scrape variable");
                (
                    "imagebuilder_exporter_build_info",
                    SCRAPE_VARIABLES[..at].to_vec(),
                )
            } else if v.name == TARGET_VARIABLE {
                ("imagebuilder_exporter_ready", SCRAPE_VARIABLES.to_vec())
            } else {
                let at = LABEL_VARIABLES
                    .iter()
                    .position(|s| *s == v.name)
                    .expect("label variable");
                let mut before = vec!["cluster", "job"];
                before.extend(&LABEL_VARIABLES[..at]);
                ("imagebuilder_workflow_step_status", before)
            };
            assert_eq!(
                metrics.into_iter().collect::<Vec<_>>(),
                [metric],
                "{ctx}: selector {selector}"
            );
            // Chained: filtered by exactly the variables before it, each
            // with a regex matcher (multi-value).
            let matchers = grafana::variable_matchers(&selector).expect("lexes");
            let used: Vec<&str> = matchers.iter().map(|(_, _, var)| var.as_str()).collect();
            assert_eq!(used, before, "{ctx}: filters");
            for (label, op, var) in matchers {
                assert_eq!((label.as_str(), op.as_str()), (var.as_str(), "=~"), "{ctx}");
            }
        }
    }
}

#[test]
fn panels_are_laid_out_and_described() {
    for (file, d) in dashboards() {
        let panels = grafana::panels(&d);
        let mut ids = BTreeSet::new();
        let mut cells: BTreeMap<(i64, i64), String> = BTreeMap::new();
        for p in &panels {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(!title.trim().is_empty(), "{file}: a panel without title");
            let id = p["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("{file}: {title}: no id"));
            assert!(ids.insert(id), "{file}: panel id {id} twice");
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_i64().expect("x"),
                g["y"].as_i64().expect("y"),
                g["w"].as_i64().expect("w"),
                g["h"].as_i64().expect("h"),
            );
            assert!(
                x >= 0 && w > 0 && h > 0 && x + w <= 24,
                "{file}: {title}: gridPos {g}"
            );
            for cx in x..x + w {
                for cy in y..y + h {
                    if let Some(other) = cells.insert((cx, cy), title.to_string()) {
                        panic!("{file}: {title:?} overlaps {other:?}");
                    }
                }
            }
            if p["type"] == "row" {
                assert!(
                    p["targets"].as_array().is_none_or(|t| t.is_empty()),
                    "{file}: row {title} has queries"
                );
                continue;
            }
            assert!(
                !p["description"].as_str().unwrap_or_default().is_empty(),
                "{file}: {title:?} has no description"
            );
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            assert!(!targets.is_empty(), "{file}: {title:?} has no query");
            let refs: BTreeSet<&str> = targets.iter().filter_map(|t| t["refId"].as_str()).collect();
            assert_eq!(refs.len(), targets.len(), "{file}: {title:?}: refIds");
            // Several instant queries in one table make sense only merged
            // into one row per series.
            if p["type"] == "table" && targets.len() > 1 {
                let merged = p["transformations"]
                    .as_array()
                    .is_some_and(|ts| ts.iter().any(|t| t["id"] == "merge"));
                assert!(merged, "{file}: table {title:?} does not merge its queries");
            }
            if p["type"] == "table" {
                for t in &targets {
                    assert_eq!(t["format"], "table", "{file}: {title:?}");
                    assert_eq!(t["instant"], true, "{file}: {title:?}");
                }
            }
        }
    }
}

/// Values a person might pick, for interpolation.
fn concrete_selection() -> BTreeMap<String, Selection> {
    [
        ("cluster", vec!["build-eu"]),
        ("job", vec!["imagebuilder"]),
        ("instance", vec!["10.1.2.3:9863", "10.1.4.5:9863"]),
        ("account_id", vec!["123456789012"]),
        ("region", vec!["us-east-1"]),
        ("image", vec!["gpu-worker", "web-server"]),
        (
            "workflow_arn",
            vec!["arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1"],
        ),
        ("action", vec!["ExecuteComponents"]),
        ("target", vec!["prod-eu"]),
    ]
    .into_iter()
    .map(|(k, v)| {
        (
            k.to_string(),
            Selection::Values(v.into_iter().map(String::from).collect()),
        )
    })
    .collect()
}

fn all_selection() -> BTreeMap<String, Selection> {
    grafana::all_variables()
        .into_iter()
        .map(|v| (v.to_string(), Selection::All))
        .collect()
}

const TEST_BUILTINS: [(&str, &str); 4] = [
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__range", "1h"),
    ("__range_s", "3600"),
];

#[test]
fn queries_are_well_formed_before_and_after_interpolation() {
    for (file, d) in dashboards() {
        let vars = grafana::variables(&d);
        let known: BTreeSet<&str> = vars
            .iter()
            .map(|v| v.name.as_str())
            .chain(grafana::BUILTINS)
            .collect();
        for t in targets(&d) {
            let ctx = format!("{file}: {}", t.name());
            assert!(!t.expr.trim().is_empty(), "{ctx}: empty query");
            let tokens = grafana::lex(&t.expr).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            for tok in &tokens {
                if let Token::Var(v) = tok {
                    assert!(known.contains(v.as_str()), "{ctx}: unknown variable ${v}");
                }
            }
            // Variables are multi-value: only a regex matcher works with
            // "All" and with several values.
            for (label, op, var) in grafana::variable_matchers(&t.expr).expect("lexes") {
                assert_eq!(
                    op, "=~",
                    "{ctx}: {label}{op}\"${var}\" must be a regex matcher"
                );
                assert_eq!(label, var, "{ctx}: label {label} filtered by ${var}");
            }
            let metrics = grafana::metric_names(&t.expr).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert!(!metrics.is_empty(), "{ctx}: selects no metric");
            for m in &metrics {
                // `up` is Prometheus' own scrape health, the standard one;
                // `process_*` the process collector's, which the exporter serves.
                assert!(
                    m.starts_with("imagebuilder_") || m == "up" || m.starts_with("process_"),
                    "{ctx}: metric {m} is neither the exporter's nor `up`"
                );
            }
            for sel in [&all_selection(), &concrete_selection()] {
                let q = grafana::interpolate(&t.expr, &vars, sel, &TEST_BUILTINS);
                assert!(!q.contains('$'), "{ctx}: left after interpolation: {q}");
                grafana::lex(&q).unwrap_or_else(|e| panic!("{ctx}: after interpolation: {e}"));
                assert_eq!(
                    grafana::metric_names(&q).expect("lexes"),
                    metrics,
                    "{ctx}: interpolation changed the metrics"
                );
            }
        }
    }
}

/// The panel titled `title`.
fn panel<'a>(d: &'a Value, title: &str) -> &'a Value {
    grafana::panels(d)
        .into_iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title:?}"))
}

fn exprs_of(p: &Value) -> Vec<String> {
    p["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect()
}

/// The rule of ImageBuilderStepNearTimeout: headroom below the larger of
/// 10% of the timeout and 5 minutes, at most the timeout.
fn uses_near_timeout_rule(expr: &str) -> bool {
    let compact: String = expr.split_whitespace().collect::<Vec<_>>().join(" ");
    compact.contains("< (clamp_min(0.1 * max without (instance, pod) (imagebuilder_workflow_step_timeout_seconds{")
        && compact.contains("), 300) < max without (instance, pod) (imagebuilder_workflow_step_timeout_seconds{")
        && compact.contains(" or max without (instance, pod) (imagebuilder_workflow_step_timeout_seconds{")
        && compact.contains("status=\"RUNNING\"")
}

/// What the issues ask the on-call person gets, top to bottom.
#[test]
fn has_the_panels_on_call_needs() {
    for (file, d) in dashboards() {
        let rows: Vec<&str> = grafana::panels(&d)
            .into_iter()
            .filter(|p| p["type"] == "row")
            .filter_map(|p| p["title"].as_str())
            .collect();
        assert_eq!(
            rows,
            [
                "At a glance",
                "Failed steps, image builds and pipelines",
                "Latest status",
                "Failures",
                "Step durations",
                "Running steps",
                "Workflow executions",
                "Exporter health"
            ],
            "{file}: rows"
        );
        let targets = targets(&d);
        let uses = |metric: &str| {
            targets
                .iter()
                .filter(|t| grafana::metric_names(&t.expr).is_ok_and(|m| m.contains(metric)))
                .map(|t| t.panel.clone())
                .collect::<BTreeSet<_>>()
        };
        for metric in [
            "imagebuilder_workflow_step_status",
            "imagebuilder_workflow_step_duration_seconds",
            "imagebuilder_workflow_step_timeout_seconds",
            "imagebuilder_workflow_step_timeout_headroom_seconds",
            "imagebuilder_workflow_step_end_timestamp_seconds",
            "imagebuilder_workflow_step_executions_total",
            "imagebuilder_workflow_step_execution_duration_seconds_bucket",
            "imagebuilder_workflow_step_failure_info",
            "imagebuilder_workflow_step_failure_timestamp_seconds",
            "imagebuilder_workflow_execution_status",
            "imagebuilder_workflow_execution_duration_seconds",
            "imagebuilder_image_build_status",
            "imagebuilder_image_build_info",
            "imagebuilder_image_last_successful_build_timestamp_seconds",
            "imagebuilder_image_component_failure_info",
            "imagebuilder_image_distribution_failure_info",
            "imagebuilder_image_pipeline_status",
            "imagebuilder_image_pipeline_consecutive_failures",
            "imagebuilder_image_pipeline_auto_disable_failure_limit",
            "imagebuilder_image_pipeline_next_run_timestamp_seconds",
            "imagebuilder_image_pipeline_last_run_status",
            "imagebuilder_image_pipeline_info",
            "imagebuilder_up",
            "up",
            "imagebuilder_exporter_ready",
            "imagebuilder_exporter_build_info",
            "imagebuilder_exporter_api_requests_total",
            "imagebuilder_exporter_api_errors_total",
            "imagebuilder_exporter_invalid_data_total",
            "imagebuilder_exporter_refresh_duration_seconds",
            "imagebuilder_exporter_last_refresh_success_timestamp_seconds",
        ] {
            assert!(!uses(metric).is_empty(), "{file}: no panel uses {metric}");
        }
        // At a glance: stats of FAILED, RUNNING and WAITING steps.
        for status in ["FAILED", "RUNNING", "WAITING"] {
            assert!(
                targets
                    .iter()
                    .any(|t| t.panel_type == "stat"
                        && t.expr.contains(&format!("status=\"{status}\""))),
                "{file}: no stat of {status} steps"
            );
        }
        assert!(
            targets
                .iter()
                .any(|t| t.panel_type == "stat" && t.expr.contains("imagebuilder_up")),
            "{file}: no exporter-up stat"
        );
        assert!(
            targets
                .iter()
                .any(|t| t.expr.contains("CallRateLimitExceededException")),
            "{file}: no throttling panel"
        );
        // The API panels keep `target`: the account behind an
        // AccessDeniedException is visible.
        for title in [
            "API requests by operation",
            "API errors by operation and code",
        ] {
            for e in exprs_of(panel(&d, title)) {
                assert!(
                    e.contains("by (instance, target, operation"),
                    "{title}: {e}"
                );
            }
        }

        // Why builds failed: the component and the Regions, beside the
        // reason, in one table.
        let why = panel(&d, "Why the newest builds failed");
        let columns = renames(why);
        for (label, header) in [
            ("reason", "Reason"),
            ("failed_step", "Failed step"),
            ("component", "Component"),
            ("phase", "Phase"),
            ("component_step", "Component step"),
            ("distribution_region", "Distribution Region"),
            ("distribution_account_id", "Target account"),
            ("status", "Region status"),
            ("message", "Message"),
        ] {
            assert_eq!(
                columns.get(label).map(String::as_str),
                Some(header),
                "{file}: {label}"
            );
        }
        // Pipelines: status, failures of the count (the policy's, or the
        // service's default 5 when a schedule has none), next and last run,
        // and a link to the pipeline in the console.
        let pipelines = panel(&d, "Image pipelines");
        let columns = renames(pipelines);
        for header in [
            "Status",
            "Consecutive failures",
            "Auto-disable count",
            "Next run",
            "Last run",
        ] {
            assert!(
                columns.values().any(|h| h == header),
                "{file}: pipelines: {header}"
            );
        }
        let count = exprs_of(pipelines)
            .into_iter()
            .find(|e| e.contains("imagebuilder_image_pipeline_auto_disable_failure_limit"))
            .expect("the count");
        assert!(
            count.contains("or\n5 * ") && count.contains("schedule_expression!=\"\""),
            "{count}"
        );
        let links = pipelines["fieldConfig"]["defaults"]["links"].to_string();
        assert!(
            links.contains("imagebuilder/home?region=${__data.fields.region}#/pipelines/${__data.fields.pipeline_arn:percentencode}"),
            "{file}: {links}"
        );

        // Latest status: FAILED, then WAITING, then RUNNING rows first,
        // from a rank column shown as text; the status coloured.
        let latest = panel(&d, "Latest status of each step");
        let text = latest["fieldConfig"]["overrides"].to_string();
        assert!(
            text.contains("color-background"),
            "{file}: status not coloured"
        );
        assert!(
            text.contains(r#""FAILED":{"color":"red""#),
            "{file}: FAILED not red"
        );
        let rank = exprs_of(latest)
            .into_iter()
            .find(|e| e.contains("* 4"))
            .expect("a rank query");
        let order: Vec<usize> = [
            "FAILED\"}) == 1) * 4",
            "WAITING\"}) == 1) * 3",
            "RUNNING\"}) == 1) * 2",
        ]
        .iter()
        .map(|s| {
            rank.find(s)
                .unwrap_or_else(|| panic!("rank: {s} in {rank}"))
        })
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{rank}");
        assert_eq!(
            latest["options"]["sortBy"][0],
            serde_json::json!({"desc": true, "displayName": "Attention"})
        );
        for text in ["1 failed", "2 waiting", "3 running", "4 other"] {
            assert!(
                latest["fieldConfig"]["overrides"]
                    .to_string()
                    .contains(text),
                "{file}: rank shown as {text:?}"
            );
        }

        // Failed steps: newest first, with the build and its log group a
        // click away, in the console and CloudWatch of the row's region.
        let failed = panel(&d, "Failed steps");
        assert_eq!(
            failed["options"]["sortBy"][0],
            serde_json::json!({"desc": true, "displayName": "Ended"})
        );
        let links = failed["fieldConfig"]["defaults"]["links"]
            .as_array()
            .expect("data links");
        let urls: Vec<&str> = links.iter().filter_map(|l| l["url"].as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://${__data.fields.region}.console.aws.amazon.com/imagebuilder/home?region=${__data.fields.region}#/images/${__data.fields.image_build_version_arn:percentencode}/details",
                "https://${__data.fields.region}.console.aws.amazon.com/cloudwatch/home?region=${__data.fields.region}#logStream:group=${__data.fields.log_group:percentencode}"
            ]
        );
        let expr = exprs_of(failed).join("\n");
        for m in [
            "imagebuilder_workflow_step_failure_info",
            "imagebuilder_workflow_step_failure_timestamp_seconds",
            "group_left (log_group)",
            "imagebuilder_image_build_info",
        ] {
            assert!(expr.contains(m), "Failed steps: {m}");
        }
        let shown = renames(failed);
        for (label, header) in [
            ("image", "Image"),
            ("image_version", "Version"),
            ("workflow_type", "Workflow"),
            ("step_name", "Step"),
            ("Value", "Ended"),
            ("message", "Message"),
        ] {
            assert_eq!(
                shown.get(label).map(String::as_str),
                Some(header),
                "{label}"
            );
        }
        // The link fields stay in the data (hidden, not excluded).
        let hidden = failed["transformations"][0]["options"]["excludeByName"].clone();
        for field in ["image_build_version_arn", "log_group", "region"] {
            assert!(hidden[field].is_null(), "{field} must stay for the links");
        }
        let images = panel(&d, "Image builds");
        assert_eq!(
            images["fieldConfig"]["defaults"]["links"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );

        // Near timeout: the alert's rule, in the stat and the bar gauge,
        // red where the alert fires.
        for title in [
            "Smallest timeout headroom",
            "Timeout headroom of steps in flight",
        ] {
            let p = panel(&d, title);
            let exprs = exprs_of(p);
            assert!(uses_near_timeout_rule(&exprs[0]), "{title}: {}", exprs[0]);
            assert!(
                exprs[1].contains("unless"),
                "{title}: the others: {}",
                exprs[1]
            );
            assert_eq!(p["fieldConfig"]["defaults"]["unit"], "s", "{title}");
            let overrides = p["fieldConfig"]["overrides"].to_string();
            assert!(
                overrides.contains(r#""matcher":{"id":"byFrameRefID","options":"A"},"properties":[{"id":"color","value":{"fixedColor":"red","mode":"fixed"}}]"#),
                "{title}: near-timeout steps red: {overrides}"
            );
            assert!(
                !p["fieldConfig"]["defaults"]["thresholds"]
                    .to_string()
                    .contains("300"),
                "{title}: no absolute thresholds"
            );
        }

        // Durations: by workflow type and step, never blended by action.
        for title in [
            "Mean step duration by workflow and step",
            "p90 step duration by workflow and step",
            "Step duration quantiles over the time range",
        ] {
            for e in exprs_of(panel(&d, title)) {
                assert!(e.contains("workflow_type, step_name)"), "{title}: {e}");
            }
        }
        // No NaN rows of steps without executions in the range.
        for e in exprs_of(panel(&d, "Step duration quantiles over the time range")) {
            assert!(e.ends_with(">= 0") || e.ends_with("> 0"), "{e}");
        }
        // The per-step duration trend, from the gauge.
        assert!(uses("imagebuilder_workflow_step_duration_seconds")
            .contains("Duration of each step's latest execution (20 longest)"));
    }
}

/// The column names of a table: its organize transformation's renames.
fn renames(table: &Value) -> BTreeMap<String, String> {
    table["transformations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["id"] == "organize")
        .flat_map(|t| {
            t["options"]["renameByName"]
                .as_object()
                .cloned()
                .unwrap_or_default()
        })
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// The labels of each family the dashboard reads (the metric table of the
/// library), to check that a table gives every column a readable header.
/// The `tag_` labels are named at run time: the dashboard cannot know them.
fn family_labels(metric: &str) -> Vec<&'static str> {
    let row = |name: &str| family::find(name).map(|r| r.label_names().collect::<Vec<_>>());
    let histogram = |suffix: &str| {
        metric
            .strip_suffix(suffix)
            .filter(|base| family::find(base).is_some_and(|r| r.kind == Kind::Histogram))
            .and_then(row)
    };
    let mut l: Vec<&str> = match (row(metric), histogram("_bucket")) {
        (Some(l), _) => l,
        (None, Some(l)) => [&l[..], &["le"]].concat(),
        (None, None) => match histogram("_sum").or_else(|| histogram("_count")) {
            Some(l) => l,
            None if metric == "up" || metric.starts_with("process_") => vec![],
            // Recording rules keep the labels of what they record, `target`
            // among them.
            None => vec!["target"],
        },
    };
    l.retain(|n| *n != labels::TAG_LABELS[0]);
    l.extend(["job", "instance", "pod", "__name__"]);
    l
}

/// Every column of every table has a readable header: each value column
/// (`Value`, `Value #A`...) and each label its queries can return is
/// renamed, excluded or hidden.
#[test]
fn every_table_column_has_a_readable_header() {
    for (file, d) in dashboards() {
        for p in grafana::panels(&d) {
            if p["type"] != "table" {
                continue;
            }
            let title = p["title"].as_str().unwrap_or_default();
            let organize = p["transformations"]
                .as_array()
                .and_then(|ts| ts.iter().find(|t| t["id"] == "organize"))
                .unwrap_or_else(|| panic!("{file}: table {title:?} has no organize"));
            let o = &organize["options"];
            let renamed = renames(p);
            let hidden: BTreeSet<String> = p["fieldConfig"]["overrides"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|ov| {
                    ov["properties"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|pr| pr["id"] == "custom.hidden" && pr["value"] == true)
                })
                .filter_map(|ov| ov["matcher"]["options"].as_str().map(str::to_string))
                .collect();
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            let mut columns: BTreeSet<String> = BTreeSet::new();
            if targets.len() == 1 {
                columns.insert("Value".into());
            } else {
                for t in &targets {
                    columns.insert(format!(
                        "Value #{}",
                        t["refId"].as_str().unwrap_or_default()
                    ));
                }
            }
            for t in &targets {
                let e = t["expr"].as_str().unwrap_or_default();
                for m in grafana::metric_names(e).expect("lexes") {
                    columns.extend(family_labels(&m).into_iter().map(str::to_string));
                }
            }
            for c in columns {
                let excluded = o["excludeByName"][&c] == true;
                let shown_as = renamed.get(&c);
                // Renamed to words: not a label name or "Value #A".
                let readable =
                    shown_as.is_some_and(|h| !h.is_empty() && h != &c && !h.contains(['_', '#']));
                let hidden_as = shown_as.is_some_and(|h| hidden.contains(h));
                assert!(
                    excluded || readable || hidden_as,
                    "{file}: table {title:?}: column {c:?} has no readable header"
                );
            }
        }
    }
}

/// Two identical exporter replicas may be scraped for high availability
/// (docs/scaling.md, "Two replicas for high availability"). Every Image Builder
/// query reduces the replicas to one value (the same way as the alert
/// rules) before it sums or counts anything, so no step, failure or image
/// counts twice and every table has one row per step. The exporter's own
/// metrics (and the scrape's `up`) are shown per replica (`instance`),
/// never added up over replicas.
#[test]
fn queries_count_each_step_once_and_show_exporter_health_per_replica() {
    for (file, d) in dashboards() {
        let mut per_replica_panels = BTreeSet::new();
        for t in targets(&d) {
            let ctx = format!("{file}: {}", t.name());
            let handling =
                grafana::replica_handling(&t.expr).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert!(!handling.is_empty(), "{ctx}: no metric");
            for (metric, how) in handling {
                if is_image_builder_metric(&metric) {
                    let want = Replicas::Deduplicated(grafana::replica_reduction(&metric).into());
                    assert_eq!(
                        how,
                        want,
                        "{ctx}: {metric} must go through `{} without (instance, pod) (...)` \
                         before any other aggregation: {}",
                        grafana::replica_reduction(&metric),
                        t.expr
                    );
                } else {
                    assert_eq!(
                        how,
                        Replicas::PerReplica,
                        "{ctx}: {metric} is the exporter's own: keep `instance`: {}",
                        t.expr
                    );
                    per_replica_panels.insert(t.panel.clone());
                    if t.panel_type != "table" {
                        assert!(
                            t.legend.contains("{{instance}}"),
                            "{ctx}: legend {:?} does not name the replica",
                            t.legend
                        );
                    }
                }
            }
        }
        assert!(
            per_replica_panels.len() >= 8,
            "{file}: exporter panels {per_replica_panels:?}"
        );
        // A table that hides `instance` hides every label of the scrape:
        // `job`, `cluster`, and what a ServiceMonitor adds.
        for p in grafana::panels(&d)
            .into_iter()
            .filter(|p| p["type"] == "table")
        {
            let Some(organize) = p["transformations"]
                .as_array()
                .and_then(|ts| ts.iter().find(|t| t["id"] == "organize"))
            else {
                continue;
            };
            let hidden = &organize["options"]["excludeByName"];
            let step_table = hidden["instance"] == true;
            for label in [
                "job",
                "instance",
                "pod",
                "namespace",
                "service",
                "endpoint",
                "container",
                "cluster",
            ] {
                assert!(
                    !step_table || hidden[label] == true,
                    "{file}: table {:?} shows {label}",
                    p["title"]
                );
            }
        }
    }
}

/// The failure bars count exactly: each graph point covers the interval
/// since the previous one (`offset $__interval`, the panel's interval), in
/// whole failures, with the largest replica's counter (replicas agree, a
/// restarted one is lower) and the series born inside the interval; the
/// stat and the ratio add the same per-interval counts over the range.
#[test]
fn failure_counts_are_exact_by_construction() {
    for (file, d) in dashboards() {
        for title in [
            "Failed step executions by action",
            "Failed step executions by image",
        ] {
            let p = panel(&d, title);
            assert_eq!(p["interval"], "1m", "{file}: {title}: a minimum interval");
            assert_eq!(p["fieldConfig"]["defaults"]["decimals"], 0, "{title}");
            assert_eq!(p["fieldConfig"]["defaults"]["custom"]["drawStyle"], "bars");
            for e in exprs_of(p) {
                assert!(
                    !e.contains("increase(") && !e.contains("rate("),
                    "{title}: {e}"
                );
                assert_exact(&e, "$__interval");
            }
        }
        // The stat adds up the bars: the same per-interval counts, as a
        // range query (the same windows as the bars) summed by Grafana.
        let stat = panel(&d, "Failed executions in time range");
        assert_eq!(stat["interval"], "1m");
        assert_eq!(stat["fieldConfig"]["defaults"]["decimals"], 0);
        assert_eq!(
            stat["options"]["reduceOptions"]["calcs"],
            serde_json::json!(["sum"])
        );
        assert_eq!(stat["targets"][0]["instant"], false);
        for e in exprs_of(stat) {
            assert!(e.starts_with("sum(") && !e.contains("increase("), "{e}");
            assert_exact(&e, "$__interval");
        }
        for e in exprs_of(panel(&d, "Failure ratio by action over the time range")) {
            assert!(e.contains("[$__range:$__interval])"), "ratio: {e}");
            assert!(!e.contains("increase("), "ratio: {e}");
            assert_exact(&e, "$__interval");
        }
    }
}

/// `expr` counts the counter's increments per `window` the exact way.
fn assert_exact(expr: &str, window: &str) {
    let compact: String = expr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        compact.contains(
            "clamp_min(max without (instance, pod) (imagebuilder_workflow_step_executions_total{"
        ),
        "{expr}"
    );
    assert!(compact.contains(&format!("offset {window}), 0) or (max without (instance, pod) (imagebuilder_workflow_step_executions_total{{")), "{expr}");
    assert!(
        compact.contains(
            "unless max without (instance, pod) (imagebuilder_workflow_step_executions_total{"
        ),
        "{expr}"
    );
}

/// The arithmetic of the failure bars, on simulated replicas: Prometheus'
/// instant lookups (the newest sample at most 5 minutes old, none after a
/// staleness marker) of each replica's counter, reduced with `max`, and
/// `clamp_min(M(t) - M(t - W), 0)` plus `M(t)` where `M(t - W)` is absent,
/// summed over consecutive windows. The sum equals the real number of
/// failures in the range, at any window size and offset, with replicas that
/// see each failure up to a refresh interval apart and a replica that
/// restarts (its counter starts again from 0); `increase()` over
/// overlapping windows, as before, does not.
#[test]
fn failure_bar_arithmetic_is_exact() {
    /// One replica's samples of one step's counter: (time, value), and the
    /// times of its staleness markers.
    struct Replica {
        samples: Vec<(f64, f64)>,
        stale_at: Vec<f64>,
    }
    impl Replica {
        /// Prometheus' instant lookup at `t`.
        fn at(&self, t: f64) -> Option<f64> {
            let last = self.samples.iter().rev().find(|(s, _)| *s <= t)?;
            let stale = self.stale_at.iter().any(|s| *s > last.0 && *s <= t);
            (!stale && t - last.0 <= 300.0).then_some(last.1)
        }
    }
    /// Scrapes every `scrape` s over [0, end): a replica started at
    /// `start` counts the failures it has seen (each `lag` s after it
    /// happened, when its refresh notices), from 0 at its start; down
    /// during `down` (a restart: staleness marker, then a counter from 0).
    fn replica(
        failures: &[f64],
        lag: f64,
        scrape: f64,
        end: f64,
        down: Option<(f64, f64)>,
    ) -> Replica {
        let mut r = Replica {
            samples: Vec::new(),
            stale_at: Vec::new(),
        };
        let mut t = 0.0;
        while t < end {
            match down {
                Some((from, to)) if t >= from && t < to => {
                    if r.stale_at.last().is_none_or(|s| *s < from) {
                        r.stale_at.push(t);
                    }
                }
                _ => {
                    let since = match down {
                        Some((_, to)) if t >= to => to,
                        _ => 0.0,
                    };
                    let seen = failures
                        .iter()
                        .filter(|f| **f + lag <= t && **f + lag > since)
                        .count();
                    r.samples.push((t, seen as f64));
                }
            }
            t += scrape;
        }
        r
    }
    fn m(replicas: &[Replica], t: f64) -> Option<f64> {
        replicas.iter().filter_map(|r| r.at(t)).reduce(f64::max)
    }
    /// The bars from `start` to `end` every `w` s: the dashboard's query.
    fn bars(replicas: &[Replica], start: f64, end: f64, w: f64) -> f64 {
        let mut sum = 0.0;
        let mut t = start;
        while t <= end {
            sum += match (m(replicas, t), m(replicas, t - w)) {
                (Some(now), Some(then)) => (now - then).max(0.0),
                (Some(now), None) => now,
                (None, _) => 0.0,
            };
            t += w;
        }
        sum
    }
    /// `increase(c[w])` summed the old way: windows of `w` every `step`.
    fn old_bars(replicas: &[Replica], start: f64, end: f64, w: f64, step: f64) -> f64 {
        let mut sum = 0.0;
        let mut t = start;
        while t <= end {
            let per_replica = replicas.iter().map(|r| {
                let inside: Vec<&(f64, f64)> = r
                    .samples
                    .iter()
                    .filter(|(s, _)| *s > t - w && *s <= t)
                    .collect();
                match (inside.first(), inside.last()) {
                    (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) * w / (b.0 - a.0),
                    _ => 0.0,
                }
            });
            sum += per_replica.fold(0.0, f64::max);
            t += step;
        }
        sum
    }

    let failures = [905.0, 1637.0, 2111.0, 2113.0, 3300.0];
    let end = 4500.0;
    // Replica b refreshes 40 s after a; b restarts (down 2,400-2,700 s),
    // when no failure is being noticed.
    let replicas = [
        replica(&failures, 5.0, 15.0, end, None),
        replica(&failures, 45.0, 15.0, end, Some((2400.0, 2700.0))),
    ];
    for w in [15.0, 60.0, 300.0, 900.0] {
        for offset in [0.0, 7.0, 13.0] {
            // Windows (start - w, end]: from before the first failure to
            // after every replica has seen the last.
            let start = 600.0 + offset;
            let got = bars(&replicas, start, end - 1.0, w);
            assert_eq!(
                got,
                failures.len() as f64,
                "window {w} s, offset {offset} s"
            );
        }
    }
    // The failures of a sub-range, windows not straddling a failure.
    assert_eq!(
        bars(&replicas, 1800.0, 2700.0, 60.0),
        2.0,
        "2,111 and 2,113"
    );
    // What the issue saw: overlapping increase() windows over-count.
    let old = old_bars(&replicas, 600.0, end - 1.0, 60.0, 15.0);
    assert!(
        old > failures.len() as f64 * 2.0,
        "increase() sums to {old}"
    );
}

// ---- Grafana's dashboard-linter -----------------------------------------
//
// The rules of https://github.com/grafana/dashboard-linter (lint/rules.go),
// one test each. An exception is allowed only with its reason, here.

/// Exceptions to target-instance-rule: Image Builder queries merge the
/// replicas (`max`/`min without (instance, pod)`), so that each step counts
/// once and a replica lagging behind never hides a failure; filtering them
/// by `$instance` would show one replica's possibly stale view instead.
/// The `$instance` variable filters the exporter's own panels.
fn instance_exception(metric: &str) -> bool {
    is_image_builder_metric(metric)
}

/// Exceptions to target-counter-agg-rule: the failure counts read the
/// executions counter's values at both ends of each interval
/// (`max without (instance, pod) (c) - ... offset $__interval`) because
/// `increase()` extrapolates to the window's edges and over-counts (9.1
/// for 2 failures at a 15 s step, issue 10). `failure_bar_arithmetic_is_exact`
/// shows why the counts are exact.
fn counter_agg_exception(panel: &str, metric: &str) -> bool {
    metric == "imagebuilder_workflow_step_executions_total"
        && [
            "Failed executions in time range",
            "Failed step executions by action",
            "Failed step executions by image",
            "Failure ratio by action over the time range",
        ]
        .contains(&panel)
}

fn raw_variables(d: &Value) -> Vec<&Value> {
    let v: Vec<&Value> = d["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    assert!(!v.is_empty(), "no variables");
    v
}

#[test]
fn lint_template_datasource_rule() {
    for (file, d) in dashboards() {
        let ds: Vec<&Value> = raw_variables(&d)
            .into_iter()
            .filter(|v| v["type"] == "datasource")
            .collect();
        assert_eq!(ds.len(), 1, "{file}: one templated data source");
        assert_eq!(ds[0]["name"], "datasource", "{file}");
        assert_eq!(ds[0]["label"], "Data source", "{file}");
        assert_eq!(ds[0]["query"], "prometheus", "{file}");
    }
}

fn check_template(d: &Value, name: &str, label: &str) {
    let v = raw_variables(d)
        .into_iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name} variable"));
    assert_eq!(v["datasource"]["uid"], DATASOURCE_VAR, "{name}");
    assert_eq!(v["type"], "query", "{name}");
    assert_eq!(v["label"], label, "{name}");
    assert_eq!(v["multi"], true, "{name}: multi select");
    // dashboard-linter's rule asks for `allValue: .+`; here "All" is the
    // values the query offers, so that a shared Prometheus's other jobs
    // never show (see variables_are_chained_label_values_queries).
    assert!(v["allValue"].is_null(), "{name}: {}", v["allValue"]);
}

#[test]
fn lint_template_job_rule() {
    for (_, d) in dashboards() {
        check_template(&d, "job", "Job");
    }
}

#[test]
fn lint_template_instance_rule() {
    for (_, d) in dashboards() {
        check_template(&d, "instance", "Instance");
    }
}

#[test]
fn lint_template_label_promql_rule() {
    for (file, d) in dashboards() {
        for v in grafana::variables(&d)
            .into_iter()
            .filter(|v| v.kind == "query")
        {
            let function = v.query.split('(').next().unwrap_or_default();
            assert!(
                ["label_names", "label_values", "metrics", "query_result"].contains(&function),
                "{file}: {}: {}",
                v.name,
                v.query
            );
            let (selector, _) = grafana::parse_label_values(&v.query)
                .unwrap_or_else(|| panic!("{file}: {}: {}", v.name, v.query));
            grafana::lex(&selector).unwrap_or_else(|e| panic!("{file}: {}: {e}", v.name));
        }
    }
}

#[test]
fn lint_template_on_time_change_reload_rule() {
    for (file, d) in dashboards() {
        for v in raw_variables(&d)
            .into_iter()
            .filter(|v| v["type"] == "query")
        {
            assert_eq!(v["refresh"], 2, "{file}: {}", v["name"]);
        }
    }
}

/// Panels with queries (not rows).
fn query_panels(d: &Value) -> Vec<&Value> {
    let p: Vec<&Value> = grafana::panels(d)
        .into_iter()
        .filter(|p| p["type"] != "row")
        .collect();
    assert!(p.len() > 10, "only {} panels", p.len());
    p
}

#[test]
fn lint_panel_datasource_rule() {
    for (file, d) in dashboards() {
        for p in query_panels(&d) {
            assert!(
                matches!(
                    p["datasource"]["uid"].as_str(),
                    Some("${datasource}" | "$datasource")
                ),
                "{file}: {}",
                p["title"]
            );
        }
    }
}

#[test]
fn lint_panel_title_description_rule() {
    for (file, d) in dashboards() {
        for p in query_panels(&d) {
            for key in ["title", "description"] {
                assert!(
                    !p[key].as_str().unwrap_or_default().is_empty(),
                    "{file}: {} has no {key}",
                    p["title"]
                );
            }
        }
    }
}

/// The units dashboard-linter accepts (lint/rule_panel_units.go), those
/// this dashboard could use.
const VALID_UNITS: [&str; 11] = [
    "bytes",
    "none",
    "short",
    "percentunit",
    "s",
    "dateTimeAsIso",
    "reqps",
    "string",
    "ms",
    "dtdurations",
    "percent",
];

#[test]
fn lint_panel_units_rule() {
    for (file, d) in dashboards() {
        for p in query_panels(&d) {
            let title = p["title"].as_str().unwrap_or_default();
            if ![
                "stat",
                "singlestat",
                "graph",
                "table",
                "timeseries",
                "gauge",
            ]
            .contains(&p["type"].as_str().unwrap_or_default())
            {
                continue;
            }
            // As the linter: stats of non-numeric fields, and panels with
            // value mappings, need no unit.
            if p["type"] == "stat" && p["options"]["reduceOptions"]["fields"] != "" {
                continue;
            }
            let fc = &p["fieldConfig"];
            let mapped = fc["defaults"]["mappings"]
                .as_array()
                .is_some_and(|m| !m.is_empty())
                || fc["overrides"].as_array().into_iter().flatten().any(|o| {
                    o["properties"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|pr| pr["id"] == "mappings" && !pr["value"].is_null())
                });
            if mapped {
                continue;
            }
            let unit = fc["overrides"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|o| o["properties"].as_array().into_iter().flatten())
                .filter(|pr| pr["id"] == "unit")
                .filter_map(|pr| pr["value"].as_str())
                .next_back()
                .or(fc["defaults"]["unit"].as_str())
                .unwrap_or_default();
            assert!(
                VALID_UNITS.contains(&unit),
                "{file}: {title}: unit {unit:?}"
            );
        }
    }
}

#[test]
fn lint_panel_no_targets_rule() {
    for (file, d) in dashboards() {
        for p in query_panels(&d) {
            assert!(p["targets"].is_array(), "{file}: {}", p["title"]);
        }
    }
}

/// Every query parses as PromQL once Grafana has interpolated it: checked
/// by Prometheus' own parser (promtool, on a rules file of the queries),
/// beyond this crate's lexer.
#[test]
fn lint_target_promql_rule() {
    let Some(promtool) = tools::require("promtool") else {
        return;
    };
    for (file, d) in dashboards() {
        let vars = grafana::variables(&d);
        let mut rules = String::from("groups:\n  - name: dashboard-queries\n    rules:\n");
        let mut n = 0;
        let mut add = |q: String| {
            n += 1;
            rules.push_str(&format!(
                "      - record: dashboard:query_{n}\n        expr: |\n"
            ));
            for line in q.lines() {
                rules.push_str(&format!("          {line}\n"));
            }
        };
        for sel in [all_selection(), concrete_selection()] {
            for t in targets(&d) {
                add(grafana::interpolate(&t.expr, &vars, &sel, &TEST_BUILTINS));
            }
            for v in vars.iter().filter(|v| v.kind == "query") {
                let (selector, _) = grafana::parse_label_values(&v.query).expect("label_values");
                add(grafana::interpolate(&selector, &vars, &sel, &TEST_BUILTINS));
            }
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-lint");
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let path = dir.join("queries.rules.yml");
        std::fs::write(&path, &rules).expect("write");
        let (ok, out) = tools::report(
            &Command::new(&promtool)
                .args(["check", "rules"])
                .arg(&path)
                .output()
                .expect("promtool runs"),
        );
        assert!(ok, "{file}: a query does not parse: {out}");
    }
}

#[test]
fn lint_target_rate_interval_rule() {
    for (file, d) in dashboards() {
        for t in targets(&d) {
            for s in grafana::selector_infos(&t.expr).expect("lexes") {
                if matches!(s.directly_in.as_deref(), Some("rate" | "irate")) {
                    assert_eq!(
                        s.range.as_deref(),
                        Some("$__rate_interval"),
                        "{file}: {}: {}",
                        t.name(),
                        t.expr
                    );
                }
            }
        }
    }
}

#[test]
fn lint_target_job_rule() {
    for (file, d) in dashboards() {
        for t in targets(&d) {
            for s in grafana::selector_infos(&t.expr).expect("lexes") {
                assert!(
                    s.has("job", "=~", "$job"),
                    "{file}: {}: {} has no job=~\"$job\"",
                    t.name(),
                    s.name
                );
                // And the optional cluster, the same way.
                assert!(
                    s.has("cluster", "=~", "$cluster"),
                    "{file}: {}: {}",
                    t.name(),
                    s.name
                );
            }
        }
    }
}

#[test]
fn lint_target_instance_rule() {
    for (file, d) in dashboards() {
        for t in targets(&d) {
            for s in grafana::selector_infos(&t.expr).expect("lexes") {
                if instance_exception(&s.name) {
                    assert!(
                        !s.matchers.iter().any(|(l, _, _)| l == "instance"),
                        "{file}: {}: {} merges replicas, must not filter one",
                        t.name(),
                        s.name
                    );
                    continue;
                }
                assert!(
                    s.has("instance", "=~", "$instance"),
                    "{file}: {}: {} has no instance=~\"$instance\"",
                    t.name(),
                    s.name
                );
                if family_labels(&s.name).contains(&"target") {
                    assert!(
                        s.has("target", "=~", "$target"),
                        "{file}: {}: {} has no target=~\"$target\"",
                        t.name(),
                        s.name
                    );
                }
            }
        }
    }
}

#[test]
fn lint_target_counter_agg_rule() {
    for (file, d) in dashboards() {
        for t in targets(&d) {
            for s in grafana::selector_infos(&t.expr).expect("lexes") {
                if !s.name.ends_with("_total") || counter_agg_exception(&t.panel, &s.name) {
                    continue;
                }
                assert!(
                    s.range.is_some()
                        && matches!(
                            s.directly_in.as_deref(),
                            Some("rate" | "irate" | "increase")
                        ),
                    "{file}: {}: counter {} not inside rate, irate or increase: {}",
                    t.name(),
                    s.name,
                    t.expr
                );
            }
        }
    }
}

#[test]
fn lint_uneditable_dashboard() {
    for (file, d) in dashboards() {
        assert_eq!(d["editable"], false, "{file}");
    }
}

#[test]
fn helpers_read_promql_like_prometheus() {
    let names = |e: &str| {
        grafana::metric_names(e)
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            r#"sum by (le, action) (rate(a_bucket{x=~"$x", y="b"}[$__rate_interval])) / on (job) group_left (v) b and ignoring (status) (c == 1) or vector(0)"#
        ),
        ["a_bucket", "b", "c"]
    );
    assert_eq!(
        names("max(time() - last_ts) > bool 5 unless count without (x) (d offset 5m)"),
        ["d", "last_ts"]
    );
    assert_eq!(
        names("a * on (x) group_left () (max by (x) (b) or 0 * c)"),
        ["a", "b", "c"]
    );
    let replicas = |e: &str| grafana::replica_handling(e).unwrap();
    let dedup = |op: &str| Replicas::Deduplicated(op.into());
    let combined = |op: &str| Replicas::Combined(op.into());
    assert_eq!(
        replicas(
            r#"sum by (action) (max without (instance, pod) (increase(a{s="F"}[1h]))) / b and ignoring (status) (min(c) by (x) == 1)"#
        ),
        [
            ("a".into(), dedup("max")),
            ("b".into(), Replicas::PerReplica),
            ("c".into(), dedup("min"))
        ]
    );
    assert_eq!(
        replicas("sum(a) + count without (instance, pod) (b) + max without (instance) (c)"),
        [
            ("a".into(), combined("sum")),
            ("b".into(), combined("count")),
            // `pod` is left: per replica under the Prometheus Operator.
            ("c".into(), Replicas::PerReplica)
        ]
    );
    assert_eq!(
        replicas(
            "histogram_quantile(0.9, sum by (le, instance) (rate(a[1m]))) / max by (le) (topk(1, b)) - group(sum without (x) (c))"
        ),
        [
            ("a".into(), Replicas::PerReplica),
            ("b".into(), dedup("max")),
            ("c".into(), dedup("group"))
        ]
    );
    let infos = grafana::selector_infos(
        r#"sum by (a) (rate(x_total{job=~"$job", b="c"}[$__rate_interval])) - max without (instance, pod) (y_total{job=~"$job"} offset $__interval) + z"#,
    )
    .unwrap();
    assert_eq!(infos.len(), 3);
    assert_eq!(infos[0].name, "x_total");
    assert_eq!(infos[0].directly_in.as_deref(), Some("rate"));
    assert_eq!(infos[0].range.as_deref(), Some("$__rate_interval"));
    assert!(infos[0].has("job", "=~", "$job") && infos[0].has("b", "=", "c"));
    assert_eq!(infos[1].directly_in.as_deref(), Some("max"));
    assert_eq!(infos[1].range, None);
    assert_eq!(infos[2].directly_in, None);
    assert!(grafana::lex(r#"a{b="c"}[5m"#).is_err());
    assert!(grafana::lex(r#"a{b="c}"#).is_err());
    assert!(grafana::lex("sum(a))").is_err());
    assert_eq!(
        grafana::parse_label_values(r#"label_values(m{a=~"$a", b=~"x,y"}, region)"#),
        Some((r#"m{a=~"$a", b=~"x,y"}"#.to_string(), "region".to_string()))
    );
    assert_eq!(grafana::parse_label_values("label_values(m)"), None);
    // Grafana's escaping: a backslash-escaped metacharacter, the backslash
    // itself escaped for the PromQL string.
    assert_eq!(grafana::regex_escape("a.b/1(x)"), r"a\\.b/1\\(x\\)");
    let vars = vec![grafana::Variable {
        name: "image".into(),
        kind: "query".into(),
        query: String::new(),
        multi: true,
        include_all: true,
        all_value: Some(".*".into()),
    }];
    let sel = |s: Selection| BTreeMap::from([("image".to_string(), s)]);
    let e = r#"m{image=~"$image"}[$__range] ${image}"#;
    assert_eq!(
        grafana::interpolate(e, &vars, &sel(Selection::All), &[("__range", "1h")]),
        r#"m{image=~".*"}[1h] .*"#
    );
    assert_eq!(
        grafana::interpolate(
            e,
            &vars,
            &sel(Selection::Values(vec!["a.b".into(), "c".into()])),
            &[("__range", "1h")]
        ),
        r#"m{image=~"(a\\.b|c)"}[1h] (a\\.b|c)"#
    );
    assert_eq!(
        grafana::interpolate("$nope", &vars, &sel(Selection::All), &[]),
        "$nope"
    );
}

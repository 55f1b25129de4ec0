//! The bundled Grafana dashboard, read as a file: importable (valid JSON,
//! uid, title, a datasource input), every panel and query pointed at the
//! datasource variable, variables that are well-formed and chained, queries
//! that are well-formed PromQL once Grafana has interpolated them, and the
//! panels the on-call person needs. `tests/e2e_prometheus.rs` runs the same
//! queries against a real Prometheus.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::grafana::{self, Replicas, Selection, Token, DATASOURCE_VAR, LABEL_VARIABLES};
use serde_json::Value;

/// Panel types the dashboard may use; each must be listed in `__requires`.
const PANEL_TYPES: [&str; 5] = ["row", "stat", "table", "timeseries", "bargauge"];

fn dashboards() -> Vec<(String, Value)> {
    grafana::dashboard_paths()
        .into_iter()
        .map(|p| (p.display().to_string(), grafana::load(&p)))
        .collect()
}

fn is_var_ref(ds: &Value) -> bool {
    ds["type"] == "prometheus" && ds["uid"] == DATASOURCE_VAR
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

#[test]
fn variables_are_chained_label_values_queries() {
    for (file, d) in dashboards() {
        let vars = grafana::variables(&d);
        let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
        let mut want = vec!["datasource"];
        want.extend(LABEL_VARIABLES);
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
            assert!(
                matches!(v.all_value.as_deref(), Some(".*") | Some(".+")),
                "{ctx}: allValue {:?}",
                v.all_value
            );
            assert_eq!(
                raw[i]["definition"].as_str(),
                Some(v.query.as_str()),
                "{ctx}: definition and query differ"
            );
            let (selector, label) = grafana::parse_label_values(&v.query)
                .unwrap_or_else(|| panic!("{ctx}: not label_values(selector, label): {}", v.query));
            assert_eq!(label, v.name, "{ctx}: lists another label");
            let metrics = grafana::metric_names(&selector).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(
                metrics.into_iter().collect::<Vec<_>>(),
                ["imagebuilder_workflow_step_status"],
                "{ctx}: selector {selector}"
            );
            // Chained: filtered by exactly the variables before it, each
            // with a regex matcher (multi-value).
            let matchers = grafana::variable_matchers(&selector).expect("lexes");
            let before: Vec<String> = LABEL_VARIABLES[..i - 1]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let used: Vec<String> = matchers.iter().map(|(_, _, var)| var.clone()).collect();
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
                for t in &targets {
                    assert_eq!(t["format"], "table", "{file}: {title:?}");
                    assert_eq!(t["instant"], true, "{file}: {title:?}");
                }
            }
        }
    }
}

#[test]
fn queries_are_well_formed_before_and_after_interpolation() {
    for (file, d) in dashboards() {
        let vars = grafana::variables(&d);
        let known: BTreeSet<&str> = vars
            .iter()
            .map(|v| v.name.as_str())
            .chain(grafana::BUILTINS)
            .collect();
        let all: BTreeMap<String, Selection> = LABEL_VARIABLES
            .iter()
            .map(|v| (v.to_string(), Selection::All))
            .collect();
        let concrete: BTreeMap<String, Selection> = [
            ("account_id", vec!["123456789012"]),
            ("region", vec!["us-east-1"]),
            ("image", vec!["gpu-worker", "web-server"]),
            (
                "workflow_arn",
                vec!["arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1"],
            ),
            ("action", vec!["ExecuteComponents"]),
        ]
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Selection::Values(v.into_iter().map(String::from).collect()),
            )
        })
        .collect();
        let builtins = [
            ("__rate_interval", "1m"),
            ("__interval", "15s"),
            ("__range", "1h"),
            ("__range_s", "3600"),
        ];

        for t in grafana::targets(&d) {
            let ctx = format!("{file}: {}", t.name());
            assert!(!t.expr.trim().is_empty(), "{ctx}: empty query");
            let tokens = grafana::lex(&t.expr).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            for tok in &tokens {
                if let Token::Var(v) = tok {
                    assert!(known.contains(v.as_str()), "{ctx}: unknown variable ${v}");
                }
            }
            // Label variables are multi-value: only a regex matcher works
            // with "All" and with several values.
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
                assert!(
                    m.starts_with("imagebuilder_"),
                    "{ctx}: metric {m} is not the exporter's"
                );
            }
            for sel in [&all, &concrete] {
                let q = grafana::interpolate(&t.expr, &vars, sel, &builtins);
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

/// What the issue asks the on-call person gets, top to bottom.
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
                "Latest status",
                "Failures",
                "Step durations",
                "Running steps",
                "Workflow executions",
                "Exporter health"
            ],
            "{file}: rows"
        );
        let targets = grafana::targets(&d);
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
            "imagebuilder_workflow_execution_status",
            "imagebuilder_workflow_execution_duration_seconds",
            "imagebuilder_up",
            "imagebuilder_exporter_api_requests_total",
            "imagebuilder_exporter_api_errors_total",
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
        for p in grafana::panels(&d) {
            let exprs: Vec<&str> = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["expr"].as_str())
                .collect();
            // Latest status: the status column coloured by value.
            if p["type"] == "table"
                && exprs.iter().any(|e| {
                    e.starts_with("max without (instance, pod) (imagebuilder_workflow_step_status{")
                })
            {
                let text = p["fieldConfig"]["overrides"].to_string();
                assert!(
                    text.contains("color-background"),
                    "{file}: status not coloured"
                );
                assert!(
                    text.contains(r#""FAILED":{"color":"red""#),
                    "{file}: FAILED not red in {:?}",
                    p["title"]
                );
            }
            // Headroom bar gauge: red below 10% of the timeout.
            if p["type"] == "bargauge"
                && exprs
                    .iter()
                    .any(|e| e.contains("imagebuilder_workflow_step_timeout_headroom_seconds"))
            {
                let defaults = &p["fieldConfig"]["defaults"];
                assert_eq!(defaults["unit"], "percentunit", "{file}");
                let steps = defaults["thresholds"]["steps"]
                    .as_array()
                    .expect("thresholds");
                assert_eq!(steps[0]["color"], "red", "{file}: headroom base colour");
                assert_eq!(steps[1]["value"], 0.1, "{file}: headroom red below 10%");
            }
        }
        assert!(
            grafana::panels(&d).iter().any(|p| p["type"] == "bargauge"
                && p["targets"].to_string().contains("timeout_headroom")),
            "{file}: no headroom bar gauge"
        );
    }
}

/// Two identical exporter replicas may be scraped for high availability
/// (README, "Running two replicas"). Every step and workflow query reduces
/// the replicas to one value (the same way as the alert rules) before it
/// sums or counts anything, so no step, failure or execution counts twice
/// and every table has one row per step. The exporter's own metrics are
/// shown per replica (`instance`), never added up over replicas.
#[test]
fn queries_count_each_step_once_and_show_exporter_health_per_replica() {
    for (file, d) in dashboards() {
        let mut per_replica_panels = BTreeSet::new();
        for t in grafana::targets(&d) {
            let ctx = format!("{file}: {}", t.name());
            let handling =
                grafana::replica_handling(&t.expr).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert!(!handling.is_empty(), "{ctx}: no metric");
            for (metric, how) in handling {
                if metric.starts_with("imagebuilder_workflow_") {
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
            per_replica_panels.len() >= 5,
            "{file}: exporter panels {per_replica_panels:?}"
        );
        // A table that shows the scrape's labels' place (it hides
        // `instance`) hides them all: `job`, and what a ServiceMonitor adds.
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

//! The alerting rules in `alerts/`: valid for promtool, unit-tested with
//! `promtool test rules`, every alert seen firing, not firing, resolving,
//! across a replica restart and through a cold start in those unit tests,
//! with the annotations on-call needs (a section of docs/runbooks.md that
//! exists, a dashboard link); and firing once per problem, not once per
//! replica, when several exporter replicas are scraped.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::shared::{docs, tools};
use common::grafana::{self, Replicas};
use common::links;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The main rules file, and the opt-in event-style one.
const RULES: &str = "alerts/imagebuilder.rules.yml";
const EVENT_RULES: &str = "alerts/imagebuilder-events.rules.yml";
const RULE_FILES: [&str; 2] = [RULES, EVENT_RULES];

/// Where every `runbook_url` points (the sections of docs/runbooks.md, on
/// GitHub) and every `dashboard_url` starts (the bundled dashboard's uid).
const RUNBOOK_BASE: &str =
    "https://github.com/example/imagebuilder-exporter/blob/main/docs/runbooks.md#";
const RUNBOOKS: &str = "docs/runbooks.md";
const ALERTS_DOC: &str = "docs/alerts.md";
const DASHBOARD_BASE: &str = "https://grafana.example.com/d/";

/// The unit-test files under `alerts/tests/`.
fn rule_tests() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo("alerts/tests"))
        .expect("alerts/tests")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .map(|p| {
            format!(
                "alerts/tests/{}",
                p.file_name().expect("name").to_string_lossy()
            )
        })
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    files
}

fn promtool(args: &[&str]) -> Option<(bool, String)> {
    let promtool = tools::require("promtool")?;
    let out = Command::new(promtool)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("promtool runs");
    Some(tools::report(&out))
}

#[test]
fn promtool_check_rules_passes() {
    for file in RULE_FILES {
        let Some((ok, out)) = promtool(&["check", "rules", file]) else {
            return;
        };
        assert!(ok && out.contains("SUCCESS"), "{file}: {out}");
    }
}

#[test]
fn promtool_unit_tests_pass() {
    for file in rule_tests() {
        let Some((ok, out)) = promtool(&["test", "rules", &file]) else {
            return;
        };
        assert!(ok && out.contains("SUCCESS"), "{file}: {out}");
    }
}

/// The rules (`- alert:` or `- record:`) of the rules files, each with the
/// text of its block, by name.
fn rules_of(kind: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for file in RULE_FILES {
        let text = std::fs::read_to_string(repo(file)).expect("rules file");
        let mut current: Option<String> = None;
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with("- name:") || t.starts_with("- record:") || t.starts_with("- alert:") {
                current = None;
            }
            if let Some(name) = t.strip_prefix(&format!("- {kind}:")) {
                let name = name.trim().to_string();
                assert!(!out.contains_key(&name), "{name} defined twice");
                out.insert(name.clone(), String::new());
                current = Some(name);
                continue;
            }
            if let Some(name) = &current {
                let block = out.get_mut(name).expect("inserted");
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    out
}

fn alerts() -> BTreeMap<String, String> {
    rules_of("alert")
}

fn records() -> BTreeMap<String, String> {
    rules_of("record")
}

/// The value of a one-line `key: value` in a block.
fn field<'a>(block: &'a str, key: &str) -> Option<&'a str> {
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .map(str::trim)
}

#[test]
fn every_alert_has_severity_and_annotations() {
    let alerts = alerts();
    for (name, block) in &alerts {
        for key in [
            "expr:",
            "severity:",
            "summary:",
            "description:",
            "runbook:",
            "runbook_url:",
            "dashboard_url:",
        ] {
            assert!(block.contains(key), "{name} has no {key}");
        }
        let severity = field(block, "severity");
        assert!(
            matches!(severity, Some("critical" | "warning" | "info")),
            "{name}: severity {severity:?}"
        );
    }
    for wanted in [
        "ImageBuilderStepFailed",
        "ImageBuilderStepNearTimeout",
        "ImageBuilderStepWaitingForApproval",
        "ImageBuilderStepRollbackFailed",
        "ImageBuilderImageBuildFailed",
        "ImageBuilderImageStale",
        "ImageBuilderExporterDown",
        "ImageBuilderExporterAbsent",
        "ImageBuilderExporterNotReady",
        "ImageBuilderExporterRefreshFailing",
        "ImageBuilderExporterNoRecentRefresh",
        "ImageBuilderExporterAPIThrottled",
        "ImageBuilderExporterDroppedBuilds",
        "ImageBuilderExporterInvalidData",
        "ImageBuilderExporterTargetOverlap",
        "ImageBuilderStepExecutionFailed",
    ] {
        assert!(alerts.contains_key(wanted), "no {wanted}");
    }
    // Names: ImageBuilderExporter... for the exporter's own health, the
    // rest about Image Builder's images and steps.
    for name in alerts.keys() {
        assert!(
            [
                "ImageBuilderExporter",
                "ImageBuilderStep",
                "ImageBuilderImage",
                "ImageBuilderPipeline"
            ]
            .iter()
            .any(|p| name.starts_with(p)),
            "{name}"
        );
    }
    assert!(!alerts.contains_key("ImageBuilderAPIThrottled"), "renamed");
}

/// Every `runbook_url` is the section of docs/runbooks.md named after its
/// alert (GitHub's anchor of its heading), which says what to do; every
/// `dashboard_url` opens the bundled dashboard (its uid), on the image when
/// the alert has one.
#[test]
fn runbook_and_dashboard_links_lead_somewhere() {
    let runbooks = docs::page(RUNBOOKS);
    let anchors = links::anchors(&runbooks);
    let dash = grafana::load(&repo("dashboards/imagebuilder.json"));
    let uid = dash["uid"].as_str().expect("uid");
    let vars: BTreeSet<String> = grafana::variables(&dash)
        .into_iter()
        .map(|v| v.name)
        .collect();
    for (name, block) in alerts() {
        let url = field(&block, "runbook_url").unwrap_or_default();
        let fragment = url
            .strip_prefix(RUNBOOK_BASE)
            .unwrap_or_else(|| panic!("{name}: runbook_url {url}"));
        assert_eq!(fragment, name.to_lowercase(), "{name}: its own section");
        assert!(
            anchors.contains(fragment),
            "{name}: {RUNBOOKS} has no #{fragment}"
        );
        // The section has a heading of its own and says something.
        let body = docs::page_section(RUNBOOKS, &format!("## {name}"));
        assert!(
            body.split_whitespace().count() >= 40,
            "{name}: runbook {body:?}"
        );

        let url = field(&block, "dashboard_url").unwrap_or_default();
        let rest = url
            .strip_prefix(DASHBOARD_BASE)
            .unwrap_or_else(|| panic!("{name}: dashboard_url {url}"));
        assert!(rest.starts_with(&format!("{uid}?")), "{name}: {url}");
        for param in rest.split_once('?').map(|p| p.1).unwrap_or("").split('&') {
            let var = param
                .strip_prefix("var-")
                .and_then(|p| p.split_once('='))
                .map(|p| p.0)
                .unwrap_or_else(|| panic!("{name}: {param} in {url}"));
            assert!(vars.contains(var), "{name}: the dashboard has no ${var}");
        }
        let about_an_image = block.contains("$labels.image ");
        assert_eq!(
            url.contains("var-image="),
            about_an_image,
            "{name}: {url} selects the image it is about"
        );
    }
}

/// What the unit tests show of each alert, read from the `alert_rule_test`
/// cases of every test file.
#[derive(Default, Debug)]
struct Seen {
    fires: bool,
    quiet: bool,
    /// Firing at one time, then not at a later time of the same test.
    resolves: bool,
    /// Checked (firing, or quiet as it must be) in a test whose input has
    /// a replica going away: one of its series present, then missing (a
    /// restart, or a replica gone). Judged by the series fed, not by the
    /// test's name.
    restart: bool,
    /// Quiet in a test where an exporter is not ready yet
    /// (`imagebuilder_exporter_ready` 0): a cold start.
    cold_start: bool,
}

/// Whether a promtool `values` string has a sample, then a missing one
/// (`_`, `_xN` or `stale`): the series went away.
fn goes_away(values: &str) -> bool {
    let mut present = false;
    for token in values.split_whitespace() {
        let missing = token == "stale" || token.starts_with('_');
        if missing && present {
            return true;
        }
        present |= !missing;
    }
    false
}

#[test]
fn a_series_going_away_is_seen() {
    assert!(goes_away("1x4 _x3 1x3"));
    assert!(goes_away("0x4 1x14 stale _x2 0x9"));
    assert!(!goes_away("_x5 1x20"), "a series that starts late");
    assert!(!goes_away("1x19"));
}

fn seen_in_unit_tests() -> BTreeMap<String, Seen> {
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let str_of = |v: &serde_yaml::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    for file in rule_tests() {
        let text = std::fs::read_to_string(repo(&file)).expect("rule tests");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
        let tests = doc["tests"].as_sequence().expect("tests");
        assert!(!tests.is_empty(), "{file}: no tests");
        for test in tests {
            let series = test["input_series"]
                .as_sequence()
                .cloned()
                .unwrap_or_default();
            let restart = series.iter().any(|s| goes_away(&str_of(s, "values")));
            let cold_start = series.iter().any(|s| {
                str_of(s, "series").starts_with("imagebuilder_exporter_ready{")
                    && str_of(s, "values")
                        .split_whitespace()
                        .any(|v| v.starts_with("0x") || v == "0")
            });
            // The times each alert fired in this test.
            let mut fired: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            let cases = test["alert_rule_test"]
                .as_sequence()
                .cloned()
                .unwrap_or_default();
            for case in cases {
                let at = str_of(&case, "eval_time");
                let time: u64 = at
                    .strip_suffix('m')
                    .and_then(|m| m.parse().ok())
                    .unwrap_or_else(|| panic!("{file}: eval_time {at} not in minutes"));
                let name = str_of(&case, "alertname");
                let alerts = case["exp_alerts"]
                    .as_sequence()
                    .cloned()
                    .unwrap_or_default();
                let entry = seen.entry(name.clone()).or_default();
                entry.restart |= restart;
                if alerts.is_empty() {
                    entry.quiet = true;
                    entry.cold_start |= cold_start;
                    let before = fired.get(&name).into_iter().flatten();
                    entry.resolves |= before.into_iter().any(|&f| f < time);
                } else {
                    for a in &alerts {
                        assert!(
                            a["exp_labels"].is_mapping(),
                            "{file}: {name} at {at}: {a:?}"
                        );
                    }
                    entry.fires = true;
                    fired.entry(name).or_default().push(time);
                }
            }
        }
    }
    seen
}

/// Every alert is seen in the unit tests firing (with its exact labels and
/// annotations: promtool compares both), not firing, and resolving; in a
/// test where a replica (or the only one) restarts; and quiet through a
/// cold start.
#[test]
fn every_alert_is_tested_firing_resolving_and_across_restarts() {
    let seen = seen_in_unit_tests();
    for name in alerts().keys() {
        let s = seen.get(name);
        let s = s.unwrap_or_else(|| panic!("{name} is in no unit test"));
        assert!(s.fires, "no unit test where {name} fires");
        assert!(s.quiet, "no unit test where {name} does not fire");
        assert!(s.resolves, "no unit test where {name} resolves");
        assert!(s.restart, "no unit test of {name} across a restart");
        assert!(s.cold_start, "no unit test of {name} during a cold start");
    }
}

/// Every recording rule is evaluated on its own in a `promql_expr_test`
/// of the unit tests (`alerts/tests/recording.test.yml`), beyond the alerts
/// that read it.
#[test]
fn every_recording_rule_is_tested() {
    let mut tested = BTreeSet::new();
    for file in rule_tests() {
        let text = std::fs::read_to_string(repo(&file)).expect("rule tests");
        for line in text.lines() {
            if let Some(expr) = line.trim().strip_prefix("- expr:") {
                let expr = expr.trim().trim_matches('\'');
                tested.extend(grafana::metric_names(expr).expect("lexes"));
            }
        }
    }
    for name in records().keys() {
        assert!(tested.contains(name), "no promql_expr_test of {name}");
    }
}

/// The `expr:` of a rule's block: the rest of its line, or the lines
/// indented under it (`expr: |`).
fn expr_of(block: &str) -> String {
    let mut lines = block.lines();
    let Some((indent, first)) = lines.by_ref().find_map(|l| {
        let t = l.trim_start();
        t.strip_prefix("expr:")
            .map(|rest| (l.len() - t.len(), rest.trim().to_string()))
    }) else {
        return String::new();
    };
    if !matches!(first.as_str(), "|" | "|-" | ">" | ">-") {
        return first;
    }
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Alerts about one exporter replica: they keep `instance` and fire once
/// per replica, naming the replica to fix.
const PER_REPLICA: [&str; 5] = [
    "ImageBuilderExporterDown",
    "ImageBuilderExporterNotReady",
    "ImageBuilderExporterRefreshFailing",
    "ImageBuilderExporterNoRecentRefresh",
    // Each replica (shard) lists the organisation itself.
    "ImageBuilderExporterOrganizationUnlisted",
];
/// `absent(...)` has one series or none, however many replicas there are;
/// its `unless` side only silences it.
const ABSENCE: [&str; 1] = ["ImageBuilderExporterAbsent"];

/// Recording rules are named `imagebuilder:...`.
fn is_record(metric: &str) -> bool {
    metric.starts_with("imagebuilder:")
}

/// Checks that every metric of `expr` goes through the replica reduction
/// the dashboard uses for it (`max` or `min without (instance, pod)`)
/// before anything adds up, and that every recording rule it reads is one
/// of the files'. Returns the recording rules read.
fn check_deduplicated(name: &str, expr: &str, records: &BTreeMap<String, String>) -> Vec<String> {
    let handling =
        grafana::replica_handling(expr).unwrap_or_else(|e| panic!("{name}: {e}: {expr}"));
    let mut read = Vec::new();
    for (metric, how) in handling {
        if is_record(&metric) {
            assert!(
                records.contains_key(&metric),
                "{name}: no rule records {metric}"
            );
            read.push(metric);
            continue;
        }
        let want = if metric.starts_with("imagebuilder_workflow_") {
            grafana::replica_reduction(&metric)
        } else {
            "max"
        };
        assert_eq!(
            how,
            Replicas::Deduplicated(want.into()),
            "{name}: {metric} must go through `{want} without (instance, pod) (...)` \
             (or `{want} by` without them): {expr}"
        );
    }
    read
}

/// With several identical replicas of the exporter scraped (HA), an alert
/// about Image Builder fires once per problem, not once per replica: every
/// metric goes through a reduction over `instance` and `pod` (the same as
/// the dashboard's for that metric) before anything adds up, either in the
/// alert or in the recording rules it reads (each checked the same way).
/// The unit tests prove it with two replicas; this catches a new rule that
/// forgets.
#[test]
fn alerts_fire_once_whatever_the_number_of_replicas() {
    let records = records();
    assert!(records.len() >= 5, "{:?}", records.keys());
    for (name, block) in &records {
        let expr = expr_of(block);
        assert!(!expr.is_empty(), "{name}: no expr");
        check_deduplicated(name, &expr, &records);
    }
    for (name, block) in &alerts() {
        let expr = expr_of(block);
        assert!(!expr.is_empty(), "{name}: no expr");
        let handling =
            grafana::replica_handling(&expr).unwrap_or_else(|e| panic!("{name}: {e}: {expr}"));
        assert!(!handling.is_empty(), "{name}: no metric in {expr}");
        if ABSENCE.contains(&name.as_str()) {
            assert!(expr.starts_with("absent("), "{name}: {expr}");
            continue;
        }
        if PER_REPLICA.contains(&name.as_str()) {
            for (metric, how) in handling {
                assert_eq!(how, Replicas::PerReplica, "{name}: {metric} in {expr}");
            }
            assert!(
                block.contains("$labels.instance"),
                "{name} fires per replica but does not name it"
            );
            continue;
        }
        check_deduplicated(name, &expr, &records);
        assert!(
            !block.contains("$labels.instance") && !block.contains("$labels.pod"),
            "{name} names a replica label it does not have"
        );
    }
}

/// The alerts about images and steps are held while nobody serves the
/// image (the restart design at the top of the rules file): each reads its
/// state recording rule now, and over 30 minutes unless the image is
/// served. The unit tests show the behaviour; this keeps every such alert
/// on the same shape.
#[test]
fn image_and_step_alerts_survive_restarts_the_same_way() {
    for (name, block) in alerts() {
        if !(name.starts_with("ImageBuilderStep") || name.starts_with("ImageBuilderImage"))
            || name == "ImageBuilderStepExecutionFailed"
        {
            continue;
        }
        let expr = expr_of(&block);
        let state = expr
            .split_whitespace()
            .find(|t| *t != "(")
            .expect("an expression")
            .to_string();
        assert!(
            is_record(&state) && state.ends_with(":bool"),
            "{name}: starts with {state}"
        );
        let mut want = format!(
            "{state} == 1\nor\n(\nlast_over_time({state}[30m]) == 1\n\
             unless on (job, account_id, region, image) imagebuilder:image:served\n)"
        );
        if name == "ImageBuilderStepFailed" {
            // With the opt-in file loaded, it leaves the failures the
            // opt-in alert announced: one failure, one notification.
            want = format!(
                "(\n{want}\n)\nunless on (job, account_id, region, image, workflow_arn, workflow_type, step_name, action)\n(\n\
                 last_over_time(imagebuilder:workflow_step_failure_counted:bool[30m]) == 1\n\
                 and on () imagebuilder:step_failure_events:loaded\n)"
            );
        }
        assert_eq!(expr, want, "{name}");
    }
    // Pipeline alerts the same way, per pipeline.
    let mut pipelines = 0;
    for (name, block) in alerts() {
        if !name.starts_with("ImageBuilderPipeline") {
            continue;
        }
        pipelines += 1;
        let expr = expr_of(&block);
        let state = expr
            .split_whitespace()
            .next()
            .expect("an expression")
            .to_string();
        assert!(
            is_record(&state) && state.ends_with(":bool"),
            "{name}: starts with {state}"
        );
        let want = format!(
            "{state} == 1\nor\n(\nlast_over_time({state}[30m]) == 1\n\
             unless on (job, account_id, region, pipeline, image) imagebuilder:image_pipeline:served\n)"
        );
        assert_eq!(expr, want, "{name}");
    }
    assert_eq!(pipelines, 2);
}

/// The tag labels are named in one list (docs/alerts.md and the rules file
/// say which), written the same in the two rules that need it (steps and
/// pipelines take the tags of their image), so that one text replacement
/// changes both.
#[test]
fn the_tag_list_is_one_list() {
    let mut lists = Vec::new();
    for file in RULE_FILES {
        let text = std::fs::read_to_string(repo(file)).expect("rules");
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if let Some(at) = line.find("group_left (tag_") {
                lists.push(format!("{file}: {}", &line[at..]));
            }
        }
    }
    assert_eq!(lists.len(), 2, "{lists:#?}");
    for l in &lists {
        assert!(l.ends_with("group_left (tag_team, tag_env)"), "{lists:?}");
    }
    assert!(
        docs::page(ALERTS_DOC).contains("group_left (tag_team, tag_env)"),
        "{ALERTS_DOC} names the list"
    );
}

/// The scrape job is named in the two alerts that cannot find the
/// exporter otherwise, the same way; every other rule follows whatever job
/// scrapes it.
#[test]
fn the_job_selector_is_the_same_everywhere() {
    let mut users = BTreeSet::new();
    for (name, block) in alerts() {
        let expr = expr_of(&block);
        if expr.contains("job=") {
            users.insert(name.clone());
            for at in expr.match_indices("job=").map(|(i, _)| i) {
                assert!(
                    expr[at..].starts_with("job=\"imagebuilder\""),
                    "{name}: {expr}"
                );
            }
        }
    }
    assert_eq!(
        users.into_iter().collect::<Vec<_>>(),
        ["ImageBuilderExporterAbsent", "ImageBuilderExporterDown"]
    );
    for (name, block) in records() {
        assert!(!expr_of(&block).contains("job="), "{name}");
    }
}

/// docs/alerts.md states each alert's meaning, severity and threshold, in
/// its table of alerts; the changelog says what was renamed.
#[test]
fn the_docs_document_every_alert() {
    assert!(
        docs::page("CHANGELOG.md").contains("ImageBuilderAPIThrottled"),
        "CHANGELOG.md says what was renamed"
    );
    // Each alert has its row in the alert table, with its severity.
    let table = docs::page_section(ALERTS_DOC, "## The alerts");
    let rows: BTreeMap<String, String> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| [`"))
        .filter_map(|l| {
            let (name, rest) = l.split_once('`')?;
            let severity = rest.split('|').nth(1)?.trim().to_string();
            Some((name.to_string(), severity))
        })
        .collect();
    assert!(!alerts().is_empty());
    for (name, block) in alerts() {
        let severity = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("severity:"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{name}: no severity"));
        assert_eq!(
            rows.get(&name).map(String::as_str),
            Some(severity),
            "{ALERTS_DOC}'s alert table: {name}"
        );
    }
    // And nothing else: no row, no runbook for an alert that is gone.
    let names: BTreeSet<String> = alerts().keys().cloned().collect();
    assert_eq!(
        rows.keys().cloned().collect::<BTreeSet<_>>(),
        names,
        "{ALERTS_DOC}'s table"
    );
    let runbooks: BTreeSet<String> = docs::headings(&docs::page(RUNBOOKS))
        .into_iter()
        .filter(|(level, _, _)| *level == 2)
        .map(|(_, title, _)| title)
        .collect();
    assert_eq!(runbooks, names, "the sections of {RUNBOOKS}");
}

#[test]
fn anchors_are_githubs() {
    use links::anchor;
    assert_eq!(anchor(" ImageBuilderStepFailed"), "imagebuilderstepfailed");
    assert_eq!(
        anchor("Two replicas for high availability"),
        "two-replicas-for-high-availability"
    );
    assert_eq!(anchor("What `--demo` shows"), "what---demo-shows");
}

/// Expected annotations are what promtool rendered and someone read: a
/// template that failed to expand must never become an expectation.
#[test]
fn no_expected_annotation_is_a_template_error() {
    for file in rule_tests() {
        let text = std::fs::read_to_string(repo(&file)).expect("rule tests");
        assert!(!text.contains("error expanding template"), "{file}");
        assert!(!text.contains("<no value>"), "{file}");
    }
}

/// Each alert's `dashboard_url` opens the bundled dashboard; there, a panel
/// queries every series family the alert reads (its recording rules
/// followed), so that the on-call person sees its cause: the failure
/// reason, the rollback status, the pipeline, the event queue, the overlap.
/// The rules that only carry labels or say what is served (`…:tagged`,
/// `…:served`) are not causes and are not followed.
#[test]
fn every_alert_has_its_cause_on_the_dashboard() {
    const SCAFFOLDING: [&str; 5] = [
        "imagebuilder:image:served",
        "imagebuilder:image:tagged",
        "imagebuilder:workflow_step:tagged",
        "imagebuilder:image_pipeline:served",
        "imagebuilder:image_pipeline:tagged",
    ];
    let records = records();
    let dash = grafana::load(&repo("dashboards/imagebuilder.json"));
    let shown: BTreeSet<String> = grafana::targets(&dash)
        .iter()
        .flat_map(|t| grafana::metric_names(&t.expr).expect("lexes"))
        .flat_map(|m| {
            // A histogram's series are one family (`…_count` may also be a
            // gauge's own name: both are kept).
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| m.strip_suffix(s))
                .map(str::to_string);
            [Some(m), family].into_iter().flatten()
        })
        .collect();
    let alerts = alerts();
    assert!(alerts.len() >= 20, "{}", alerts.len());
    for (name, block) in alerts {
        let mut read = BTreeSet::new();
        let mut todo: Vec<String> = vec![expr_of(&block)];
        let mut followed = BTreeSet::new();
        while let Some(expr) = todo.pop() {
            for m in grafana::metric_names(&expr).expect("lexes") {
                if is_record(&m) {
                    if !SCAFFOLDING.contains(&m.as_str()) && followed.insert(m.clone()) {
                        let rule = records.get(&m).unwrap_or_else(|| panic!("{m}"));
                        todo.push(expr_of(rule));
                    }
                } else {
                    read.insert(m);
                }
            }
        }
        assert!(!read.is_empty(), "{name} reads no series");
        for family in read {
            assert!(
                shown.contains(&family),
                "{name} reads {family}, which no dashboard panel shows"
            );
        }
    }
}

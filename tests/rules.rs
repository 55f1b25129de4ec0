//! The alerting rules in `alerts/`: valid for promtool, unit-tested with
//! `promtool test rules`, and every alert both seen firing and seen not
//! firing in those unit tests, with the annotations on-call needs; and
//! firing once per problem, not once per replica, when several exporter
//! replicas are scraped.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::grafana::{self, Replicas};
use common::tools;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

const RULES: &str = "alerts/imagebuilder.rules.yml";
const RULE_TESTS: &str = "alerts/tests/imagebuilder.rules.test.yml";

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
    let Some((ok, out)) = promtool(&["check", "rules", RULES]) else {
        return;
    };
    assert!(ok && out.contains("SUCCESS"), "{out}");
}

#[test]
fn promtool_unit_tests_pass() {
    let Some((ok, out)) = promtool(&["test", "rules", RULE_TESTS]) else {
        return;
    };
    assert!(ok && out.contains("SUCCESS"), "{out}");
}

/// The alerts of the rules file with the text of each one's block.
fn alerts() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo(RULES)).expect("rules file");
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("- alert:") {
            current = Some(name.trim().to_string());
            out.insert(name.trim().to_string(), String::new());
            continue;
        }
        if t.starts_with("- name:") || t.starts_with("- record:") {
            current = None;
        }
        if let Some(name) = &current {
            let block = out.get_mut(name).expect("inserted");
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

#[test]
fn every_alert_has_severity_and_annotations() {
    let alerts = alerts();
    assert!(alerts.len() >= 5, "{:?}", alerts.keys());
    for (name, block) in &alerts {
        for key in ["expr:", "severity:", "summary:", "description:", "runbook:"] {
            assert!(block.contains(key), "{name} has no {key}");
        }
        let severity = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("severity:"))
            .map(str::trim);
        assert!(
            matches!(severity, Some("critical" | "warning" | "info")),
            "{name}: severity {severity:?}"
        );
    }
    for wanted in [
        "ImageBuilderStepFailed",
        "ImageBuilderStepNearTimeout",
        "ImageBuilderStepWaitingForApproval",
        "ImageBuilderExporterRefreshFailing",
        "ImageBuilderExporterNoRecentRefresh",
        "ImageBuilderAPIThrottled",
    ] {
        assert!(alerts.contains_key(wanted), "no {wanted}");
    }
}

/// Reads the unit tests' `alert_rule_test` cases: for each alert, whether a
/// case expects it firing (`exp_alerts` with items) and one expects it not
/// firing (`exp_alerts: []`).
#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let text = std::fs::read_to_string(repo(RULE_TESTS)).expect("rule tests");
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut alertname: Option<String> = None;
    let mut lines = text.lines().map(str::trim).peekable();
    while let Some(t) = lines.next() {
        if let Some(n) = t.strip_prefix("alertname:") {
            alertname = Some(n.trim().to_string());
        } else if let Some(rest) = t.strip_prefix("exp_alerts:") {
            let name = alertname.take().expect("exp_alerts after alertname");
            let entry = seen.entry(name).or_default();
            if rest.trim() == "[]" {
                entry.1 = true;
            } else {
                // Items follow: the first one starts with `- exp_labels:`.
                while lines
                    .peek()
                    .is_some_and(|l| l.is_empty() || l.starts_with('#'))
                {
                    lines.next();
                }
                let item = lines.peek().copied().unwrap_or_default();
                assert!(item.starts_with("- exp_labels:"), "unexpected {item:?}");
                entry.0 = true;
            }
        }
    }
    for name in alerts().keys() {
        let (fires, quiet) = seen.get(name).copied().unwrap_or_default();
        assert!(fires, "no unit test where {name} fires");
        assert!(quiet, "no unit test where {name} does not fire");
    }
}

/// The `expr:` of an alert's block: the rest of its line, or the lines
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

/// Alerts about one exporter replica's own refreshes: they keep `instance`
/// and fire once per replica, naming the replica to fix.
const PER_REPLICA: [&str; 2] = [
    "ImageBuilderExporterRefreshFailing",
    "ImageBuilderExporterNoRecentRefresh",
];
/// `absent(...)` has one series or none, however many replicas there are.
const ABSENCE: [&str; 1] = ["ImageBuilderExporterAbsent"];

/// With several identical replicas of the exporter scraped (HA), an alert
/// about Image Builder fires once per problem, not once per replica: every
/// metric goes through a reduction over `instance` and `pod` (the same as
/// the dashboard's for that metric) before anything adds up. The unit tests
/// prove it with two replicas; this catches a new alert that forgets.
#[test]
fn alerts_fire_once_whatever_the_number_of_replicas() {
    let alerts = alerts();
    for (name, block) in &alerts {
        let expr = expr_of(block);
        assert!(!expr.is_empty(), "{name}: no expr");
        let handling =
            grafana::replica_handling(&expr).unwrap_or_else(|e| panic!("{name}: {e}: {expr}"));
        assert!(!handling.is_empty(), "{name}: no metric in {expr}");
        if ABSENCE.contains(&name.as_str()) {
            assert!(expr.starts_with("absent("), "{name}: {expr}");
            continue;
        }
        for (metric, how) in handling {
            if PER_REPLICA.contains(&name.as_str()) {
                assert_eq!(how, Replicas::PerReplica, "{name}: {metric} in {expr}");
                assert!(
                    block.contains("$labels.instance"),
                    "{name} fires per replica but does not name it"
                );
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
                "{name}: {metric} must go through `{want} without (instance, pod) (...)`: {expr}"
            );
            assert!(
                !block.contains("$labels.instance") && !block.contains("$labels.pod"),
                "{name} names a replica label it does not have"
            );
        }
    }
}

/// The README states each alert's meaning and threshold.
#[test]
fn readme_documents_every_alert() {
    let readme = std::fs::read_to_string(repo("README.md")).expect("README");
    for name in alerts().keys() {
        assert!(readme.contains(name), "README.md does not document {name}");
    }
}

//! The documentation (the README, the changelog, `docs/`): its
//! configuration examples, run (a user copies them, so each must be
//! accepted by the program it is written for), and its links, followed.

use crate::common;

use std::path::Path;
use std::process::Command;

use crate::shared::{docs, tools};
use common::links;

/// A fresh directory under the target directory, for files the test writes.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn every_targets_file_in_the_docs_is_accepted() {
    let dir = scratch("readme-targets");
    let files: Vec<String> = docs::code_blocks("yaml")
        .into_iter()
        .filter(|b| b.lines().any(|l| l.starts_with("targets:")))
        .collect();
    // The annotated example and the two shards.
    assert!(files.len() >= 3, "found {} targets files", files.len());
    for (i, file) in files.iter().enumerate() {
        let path = dir.join(format!("targets-{i}.yml"));
        std::fs::write(&path, file).unwrap();
        let targets = imagebuilder_exporter::app::targets_file::load(&path)
            .unwrap_or_else(|e| panic!("targets file {i} of the docs refused: {e}\n{file}"));
        let listed = file
            .lines()
            .filter(|l| l.trim_start().starts_with("- "))
            .count();
        assert_eq!(
            targets.targets.len(),
            listed,
            "every target of file {i} read:\n{file}"
        );
    }
}

/// The basic-auth example of docs/security.md says which password its hash
/// is of, so that a user can try it: checked with bcrypt.
#[test]
fn the_basic_auth_example_states_the_password_of_its_hash() {
    let blocks: Vec<String> = docs::code_blocks("yaml")
        .into_iter()
        .filter(|b| b.contains("basic_auth_users:"))
        .collect();
    assert!(!blocks.is_empty(), "no basic auth example");
    for block in blocks {
        let password = block
            .lines()
            .find_map(|l| l.split_once("hash of the password ").map(|(_, rest)| rest))
            .and_then(|rest| rest.split([':', ' ']).next())
            .unwrap_or_else(|| panic!("the example does not state its password:\n{block}"));
        let config: serde_yaml::Value = serde_yaml::from_str(&block).expect("YAML");
        let users = config["basic_auth_users"]
            .as_mapping()
            .expect("basic_auth_users");
        assert!(!users.is_empty());
        for (user, hash) in users {
            let hash = hash.as_str().expect("a hash");
            assert!(
                bcrypt::verify(password, hash).unwrap_or(false),
                "{user:?}'s hash is not of {password:?}"
            );
        }
    }
}

#[test]
fn every_prometheus_configuration_in_the_docs_is_valid() {
    let Some(promtool) = tools::require("promtool") else {
        return;
    };
    let dir = scratch("readme-prometheus");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/imagebuilder.rules.yml");
    let configs: Vec<String> = docs::code_blocks("yaml")
        .into_iter()
        .filter(|b| b.lines().any(|l| l.starts_with("scrape_configs:")))
        .collect();
    // The full prometheus.yml, the TLS scrape job and the federation job.
    assert!(
        configs.len() >= 2,
        "found {} Prometheus configurations",
        configs.len()
    );
    for (i, config) in configs.iter().enumerate() {
        // The rules file where the docs say to put it is, here, the repo's.
        let mut config = config.replace(
            "/etc/prometheus/rules/imagebuilder.rules.yml",
            &rules.display().to_string(),
        );
        // Certificates and password files are the user's: promtool wants
        // them to exist, so stand-ins are made here (absolute paths moved in).
        for line in config.clone().lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if !key.trim().ends_with("_file") {
                continue;
            }
            let value = value.split('#').next().unwrap_or("").trim();
            let name = Path::new(value).file_name().expect("a file name");
            std::fs::write(dir.join(name), "").unwrap();
            if value.starts_with('/') {
                config = config.replace(value, &dir.join(name).display().to_string());
            }
        }
        let path = dir.join(format!("prometheus-{i}.yml"));
        std::fs::write(&path, &config).unwrap();
        let (ok, text) = tools::report(
            &Command::new(&promtool)
                .args(["check", "config"])
                .arg(&path)
                .output()
                .expect("promtool runs"),
        );
        assert!(
            ok,
            "Prometheus configuration {i} of the docs: {text}\n{config}"
        );
        if config.contains("rule_files:") {
            assert!(
                text.contains("rules found"),
                "the rules file was read: {text}"
            );
        }
    }
}

/// The CloudFormation template of docs/events.md, for following Image
/// Builder's events, parsed.
fn events_template() -> serde_json::Value {
    let blocks: Vec<String> = docs::code_blocks("json")
        .into_iter()
        .filter(|b| b.contains("AWSTemplateFormatVersion"))
        .collect();
    assert_eq!(blocks.len(), 1, "one CloudFormation template in the docs");
    serde_json::from_str(&blocks[0])
        .unwrap_or_else(|e| panic!("the events template is not JSON: {e}\n{}", blocks[0]))
}

/// The logical ID of the template's one resource of type `kind`, and it.
fn resource<'a>(template: &'a serde_json::Value, kind: &str) -> (&'a str, &'a serde_json::Value) {
    let found: Vec<(&str, &serde_json::Value)> = template["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), r))
        .collect();
    assert_eq!(found.len(), 1, "one {kind} in the template");
    found[0]
}

/// `"x"` or `["x", …]` as a set of strings.
fn strings(v: &serde_json::Value) -> std::collections::BTreeSet<String> {
    match v {
        serde_json::Value::String(s) => [s.clone()].into(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().expect("a string").to_string())
            .collect(),
        other => panic!("expected a string or a list of strings, got {other}"),
    }
}

/// The IAM actions of the SQS calls the exporter makes, read from `src/`
/// (the simulator's SQS, a server, is in a crate of its own). Until the
/// exporter's consumer exists, the calls issue 13 plans: receive, and
/// delete in batches.
fn sqs_actions_the_exporter_calls() -> std::collections::BTreeSet<String> {
    // SDK method → IAM action (batch calls are authorized as their single form).
    const CALLS: [(&str, &str); 9] = [
        (".receive_message()", "sqs:ReceiveMessage"),
        (".delete_message()", "sqs:DeleteMessage"),
        (".delete_message_batch()", "sqs:DeleteMessage"),
        (".get_queue_attributes()", "sqs:GetQueueAttributes"),
        (
            ".change_message_visibility()",
            "sqs:ChangeMessageVisibility",
        ),
        (
            ".change_message_visibility_batch()",
            "sqs:ChangeMessageVisibility",
        ),
        (".get_queue_url()", "sqs:GetQueueUrl"),
        (".send_message()", "sqs:SendMessage"),
        (".send_message_batch()", "sqs:SendMessage"),
    ];
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).expect("src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut actions = std::collections::BTreeSet::new();
    for f in files {
        let code = std::fs::read_to_string(&f).expect("source");
        if !code.contains("aws_sdk_sqs") {
            continue;
        }
        for (call, action) in CALLS {
            if code.contains(call) {
                actions.insert(action.to_string());
            }
        }
    }
    // The exporter follows events through SQS: finding no call means this
    // scan is broken (a moved file, a renamed call), not that there is none.
    assert!(
        actions.contains("sqs:ReceiveMessage") && actions.contains("sqs:DeleteMessage"),
        "the SQS calls of src/ were not found: {actions:?}"
    );
    actions
}

#[test]
fn the_events_template_delivers_image_builders_events_to_the_queue() {
    use serde_json::json;
    let template = events_template();
    // Every Ref and GetAtt names a parameter or resource of the template.
    fn references(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("Ref").and_then(|r| r.as_str()) {
                    out.push(r.to_string());
                }
                if let Some(r) = m.get("Fn::GetAtt").and_then(|r| r[0].as_str()) {
                    out.push(r.to_string());
                }
                m.values().for_each(|c| references(c, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|c| references(c, out)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    references(&template, &mut refs);
    for r in refs {
        let known = template["Resources"].get(&r).is_some()
            || template["Parameters"].get(&r).is_some()
            || r.starts_with("AWS::");
        assert!(
            known,
            "the template refers to {r}, which it does not define"
        );
    }

    let (queue, _) = resource(&template, "AWS::SQS::Queue");
    let queue_arn = json!({ "Fn::GetAtt": [queue, "Arn"] });
    let (rule_id, rule) = resource(&template, "AWS::Events::Rule");
    let rule = &rule["Properties"];

    // The rule: both event types from Image Builder, nothing filtered out.
    let pattern = &rule["EventPattern"];
    assert_eq!(
        strings(&pattern["source"]),
        ["aws.imagebuilder".to_string()].into()
    );
    assert_eq!(
        strings(&pattern["detail-type"]),
        [
            "EC2 Image Builder Image State Change".to_string(),
            "EC2 Image Builder Workflow Step Waiting".to_string()
        ]
        .into()
    );
    let keys: Vec<&String> = pattern.as_object().expect("a pattern").keys().collect();
    assert_eq!(keys.len(), 2, "no other filter: {pattern}");
    assert!(rule["State"].is_null() || rule["State"] == "ENABLED");
    assert!(
        rule["EventBusName"].is_null() || rule["EventBusName"] == "default",
        "Image Builder sends to the default bus"
    );
    let targets = rule["Targets"].as_array().expect("Targets");
    assert!(
        targets.iter().any(|t| t["Arn"] == queue_arn),
        "the rule targets the queue: {targets:?}"
    );

    // The queue policy: EventBridge may send, and only for this rule.
    let (_, policy) = resource(&template, "AWS::SQS::QueuePolicy");
    let policy = &policy["Properties"];
    assert_eq!(policy["Queues"], json!([{ "Ref": queue }]));
    let statements = policy["PolicyDocument"]["Statement"]
        .as_array()
        .expect("Statement");
    assert_eq!(statements.len(), 1, "{statements:?}");
    let s = &statements[0];
    assert_eq!(s["Effect"], "Allow");
    assert_eq!(s["Principal"], json!({ "Service": "events.amazonaws.com" }));
    assert_eq!(
        strings(&s["Action"]),
        ["sqs:SendMessage".to_string()].into()
    );
    assert_eq!(s["Resource"], queue_arn);
    assert_eq!(
        s["Condition"],
        json!({ "ArnEquals": { "aws:SourceArn": { "Fn::GetAtt": [rule_id, "Arn"] } } }),
        "bound to the rule"
    );

    // The exporter's role: exactly the SQS actions it calls, on the queue.
    let (_, iam) = resource(&template, "AWS::IAM::Policy");
    let statements = iam["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .expect("Statement");
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(statements[0]["Effect"], "Allow");
    assert_eq!(statements[0]["Resource"], queue_arn);
    assert_eq!(
        strings(&statements[0]["Action"]),
        sqs_actions_the_exporter_calls()
    );
    assert_eq!(
        template["Outputs"]["QueueUrl"]["Value"],
        json!({ "Ref": queue })
    );

    // cfn-lint checks types and properties against CloudFormation's own
    // schemas: `bash .ci/run` installs it (required there).
    if let Some(cfn_lint) = tools::require("cfn-lint") {
        let dir = scratch("readme-events");
        let path = dir.join("imagebuilder-events.json");
        std::fs::write(&path, template.to_string()).unwrap();
        let (ok, text) = tools::report(
            &Command::new(cfn_lint)
                .arg(&path)
                .output()
                .expect("cfn-lint runs"),
        );
        assert!(ok, "cfn-lint: {text}");
    }
}

#[test]
fn the_iam_statements_for_events_name_the_sqs_actions_the_exporter_calls() {
    let iam = docs::page_section("docs/deployment.md", "## IAM policy");
    let statements: Vec<serde_json::Value> = docs::code_blocks("json")
        .iter()
        .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .filter(|v| v["Sid"] == "ImageBuilderExporterEvents")
        .collect();
    assert_eq!(
        statements.len(),
        1,
        "the IAM policy section's events statement"
    );
    assert!(
        iam.contains("\"Sid\": \"ImageBuilderExporterEvents\""),
        "in the IAM policy section"
    );
    let s = &statements[0];
    assert_eq!(s["Effect"], "Allow");
    assert!(
        s["Resource"]
            .as_str()
            .is_some_and(|r| r.starts_with("arn:aws:sqs:")),
        "on the queue, not *: {s}"
    );
    assert_eq!(strings(&s["Action"]), sqs_actions_the_exporter_calls());
    // The read-only policy itself asks for no SQS action: events are optional.
    let main: Vec<serde_json::Value> = docs::code_blocks("json")
        .iter()
        .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .filter(|v| v["Statement"][0]["Sid"] == "ImageBuilderExporterRead")
        .collect();
    assert_eq!(main.len(), 1);
    assert!(!main[0].to_string().contains("sqs:"));
}

/// The read-only policy names exactly the Image Builder calls the exporter
/// makes: one missing fails a target at run time (a new call, like
/// `ListImagePipelines`, must reach the policy in the same change).
#[test]
fn the_iam_policy_names_every_image_builder_call_the_exporter_makes() {
    let main: Vec<serde_json::Value> = docs::code_blocks("json")
        .iter()
        .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .filter(|v| v["Statement"][0]["Sid"] == "ImageBuilderExporterRead")
        .collect();
    assert_eq!(main.len(), 1, "the read-only policy");
    let named = strings(&main[0]["Statement"][0]["Action"]);
    let called: std::collections::BTreeSet<String> = imagebuilder_exporter::model::Operation::ALL
        .iter()
        .map(|op| format!("imagebuilder:{op}"))
        .collect();
    assert_eq!(called.len(), 5);
    assert_eq!(named, called);
}

/// While the README still holds the metric tables, which a parallel change
/// moves to docs/metrics.md (generated from the code's metric table), that
/// page may be missing and the tables' bytes do not count against the
/// README's budget. Once the tables are gone, both checks are whole.
fn metric_tables_still_in_the_readme() -> bool {
    docs::page("README.md").contains("\n## Metrics\n")
        && docs::page_section("README.md", "## Metrics").contains("| Metric | Type |")
}

/// Every relative link of the README, the changelog, BENCHMARKS.md and
/// docs/ leads to a file or directory that exists, and a `#fragment` to a
/// heading of the Markdown page it names, with GitHub's anchors: a page
/// moved, renamed or re-headed breaks no reader's path silently.
#[test]
fn every_relative_link_in_the_docs_leads_somewhere() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pages = docs::pages();
    assert!(
        pages.len() >= 14,
        "README, CHANGELOG, BENCHMARKS and docs/: {}",
        pages.len()
    );
    let mut broken = Vec::new();
    let mut checked = 0;
    for (path, text) in &pages {
        let dir = Path::new(path).parent().unwrap_or(Path::new(""));
        for link in links::links(text) {
            if link.is_empty() || link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                Path::new(path).to_path_buf()
            } else {
                dir.join(file)
            };
            let full = root.join(&target);
            if !full.exists() {
                let transitional = target == Path::new("docs/metrics.md")
                    && fragment.is_empty()
                    && metric_tables_still_in_the_readme();
                if !transitional {
                    broken.push(format!("{path}: {link}: no file {}", target.display()));
                }
                continue;
            }
            if fragment.is_empty() {
                continue;
            }
            if full.extension().is_none_or(|x| x != "md") {
                broken.push(format!(
                    "{path}: {link}: a fragment of a file that is not Markdown"
                ));
                continue;
            }
            let anchors = links::anchors(&std::fs::read_to_string(&full).expect("page"));
            if !anchors.contains(fragment) {
                broken.push(format!(
                    "{path}: {link}: {} has no heading #{fragment}",
                    target.display()
                ));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 100, "only {checked} relative links found");
}

/// The README is the front door: what the exporter is, the two commands,
/// install, the smallest configuration and a map of docs/. The rest lives
/// in docs/, and the README stays small enough to read in a minute.
#[test]
fn the_readme_is_at_most_15000_bytes() {
    const BUDGET: usize = 15_000;
    let text = docs::page("README.md");
    let size = if metric_tables_still_in_the_readme() {
        // Leave the pointer that replaces the tables 1,000 bytes.
        text.len() - docs::page_section("README.md", "## Metrics").len() + 1_000
    } else {
        text.len()
    };
    assert!(
        size <= BUDGET,
        "README.md counts {size} bytes, over {BUDGET}: move details to docs/"
    );
    for (wanted, what) in [
        ("cargo run -- --demo", "how to try it"),
        ("bash .ci/run", "how to run the tests"),
        ("docs/deployment.md#iam-policy", "the IAM policy"),
        (
            "kubectl apply -k deploy/kubernetes/kube-prometheus-stack",
            "the Kubernetes install",
        ),
        ("CHANGELOG.md", "the changelog"),
    ] {
        assert!(
            text.contains(wanted),
            "the README does not give {what} ({wanted})"
        );
    }
    // The map names every page of docs/.
    for (path, _) in docs::pages() {
        if path.starts_with("docs/") {
            assert!(
                text.contains(&format!("]({path})")),
                "the README's map does not link {path}"
            );
        }
    }
}

#[test]
fn links_and_anchors_are_read_as_github_reads_them() {
    let page = "# Title\n\n## What `--demo` shows\n\n```sh\n# not a heading\n```\n\n## Title\n\nSee [a](b.md#c), `[not](a link)`, [`code`](d.md) and <https://x>.\n\n[ref]: e.md\n";
    assert_eq!(
        links::anchors(page).into_iter().collect::<Vec<_>>(),
        ["title", "title-1", "what---demo-shows"]
    );
    assert_eq!(links::links(page), ["b.md#c", "d.md", "e.md"]);
}

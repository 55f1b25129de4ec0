//! The binary as users run it: flags, exit statuses, the standard AWS
//! environment, `--demo`, and shutdown on SIGTERM.

use crate::common;
use crate::shared::bins::EXPORTER;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::shared::http::free_port;
use crate::shared::{docs, tools};
use common::process::{exporter, wait_ready};
use common::{get, Metrics, Running, ROLE};
use imagebuilder_exporter::base::clock::{Clock, SystemClock};
use imagebuilder_exporter::metrics::family::{self, FamilyDef, Kind};
use imagebuilder_exporter::metrics::labels;
use imagebuilder_sim::scenario;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(EXPORTER).args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `build.rs`, whose fallbacks are tested here.
#[path = "../../build.rs"]
mod build_script;

#[test]
fn version_names_the_git_revision_and_the_build_date() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    let re = regex::Regex::new(
        r"^imagebuilder-exporter (\S+) \(revision ([0-9a-f]{7,40}|unknown), built (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\)$",
    )
    .unwrap();
    let caps = re
        .captures(out.trim())
        .unwrap_or_else(|| panic!("--version: {out}"));
    assert_eq!(&caps[1], env!("CARGO_PKG_VERSION"));
    // Built from this repository: its checked-out commit.
    let head = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(head) if std::env::var_os("IMAGEBUILDER_EXPORTER_REVISION").is_none() => {
            assert!(
                head.starts_with(&caps[2]),
                "{} is not HEAD {head}",
                &caps[2]
            )
        }
        _ => eprintln!("no git here: revision {}", &caps[2]),
    }
    let sim = Command::new(crate::shared::bins::simulator_bin())
        .arg("--version")
        .output()
        .unwrap();
    // The simulator is a crate of its own, with its own (the workspace's)
    // version and no build script: the same version, no revision or date.
    let sim = String::from_utf8_lossy(&sim.stdout);
    assert_eq!(sim.trim(), format!("imagebuilder-sim {}", &caps[1]));
}

#[test]
fn the_build_script_falls_back_without_a_repository_of_its_own() {
    // A tarball: no repository at all.
    let outside = tempfile::tempdir().unwrap();
    assert_eq!(build_script::revision(outside.path()), None);
    // A tarball unpacked inside another repository (this one): not its
    // revision either.
    let inside = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    assert_eq!(build_script::revision(inside.path()), None);
    // Nor files to watch for another commit (cargo would run the script at
    // every build for a path that does not exist).
    assert!(build_script::watched(outside.path()).is_empty());
    assert!(build_script::watched(inside.path()).is_empty());
    assert_eq!(build_script::utc_date(0), "1970-01-01T00:00:00Z");
    assert_eq!(
        build_script::utc_date(1_788_981_143),
        "2026-09-09T19:12:23Z"
    );
    assert_eq!(build_script::utc_date(951_782_400), "2000-02-29T00:00:00Z");
}

/// Which `--help` heading each group of flags belongs under.
fn heading_of(flag: &str) -> &'static str {
    let prefix = flag.split('.').next().unwrap_or(flag);
    match prefix {
        "web" => "Web server:",
        "config" | "organization" | "shard" => "Accounts and regions:",
        "aws" => "AWS API:",
        "discovery" | "filter" | "labels" | "step-execution-id" => "Discovery: what is tracked:",
        "refresh" | "scrape" | "readiness" => "Refresh and readiness:",
        "events" => "Events:",
        "log" => "Logging:",
        "demo" => "Demo:",
        _ => "Options:",
    }
}

#[test]
fn help_groups_the_flags_under_headings() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    let mut heading = "";
    let mut seen = std::collections::BTreeSet::new();
    for line in out.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            heading = line;
            seen.insert(line.to_string());
            continue;
        }
        let text = line.trim_start();
        if !text.starts_with('-') {
            continue; // a description
        }
        let Some(flag) = text.split_whitespace().find_map(|w| w.strip_prefix("--")) else {
            continue;
        };
        assert_eq!(heading, heading_of(flag), "--{flag} is under {heading:?}");
    }
    for h in [
        "Web server:",
        "Accounts and regions:",
        "AWS API:",
        "Discovery: what is tracked:",
        "Refresh and readiness:",
        "Events:",
        "Logging:",
        "Demo:",
    ] {
        assert!(seen.contains(h), "no {h} in --help:\n{out}");
    }
    assert!(
        out.contains("AWS_ENDPOINT_URL_IMAGEBUILDER and AWS_ENDPOINT_URL_STS"),
        "{out}"
    );
}

#[test]
fn every_flag_of_help_is_in_the_configuration_docs() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--web.listen-address",
        "--web.telemetry-path",
        "--log.level",
        "--log.format",
        "--aws.region",
        "--discovery.lookback",
        "--step-execution-id",
        "--demo",
    ] {
        assert!(out.contains(flag), "{flag} missing from --help");
    }
    // docs/configuration.md's flag tables are the user's manual: every flag
    // is in them.
    let flags = docs::page_section("docs/configuration.md", "## Flags");
    let mut documented = 0;
    for word in out.split(|c: char| c.is_whitespace() || c == ',' || c == '=') {
        let Some(name) = word.strip_prefix("--") else {
            continue;
        };
        let name = name.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        if name.is_empty() || name == "help" || !name.starts_with(|c: char| c.is_ascii_lowercase())
        {
            continue;
        }
        assert!(
            flags.contains(&format!("`--{name}`")),
            "--{name} is not in docs/configuration.md's flag tables"
        );
        documented += 1;
    }
    assert!(documented >= 20, "only {documented} flags found in --help");
}

#[test]
fn bad_values_are_refused_with_status_2_and_named() {
    let cases: &[(&[&str], &str)] = &[
        (&["--step-execution-id", "step-123"], "step-123"),
        (
            &[
                "--step-execution-id",
                "wf-0123abcd-0123-4567-89ab-0123456789ab",
            ],
            "wf-0123abcd",
        ),
        (&["--discovery.lookback", "yesterday"], "yesterday"),
        (&["--scrape.timeout", "0s"], "0s"),
        (&["--web.listen-address", "localhost"], "localhost"),
        (&["--filter.image-name", "web[("], "web[("),
        (&["--aws.region", "mars-1"], "mars-1"),
        (&["--aws.max-requests-per-second", "-3"], "-3"),
        (&["--log.level", "loud"], "loud"),
        (&["--no-such-flag"], "--no-such-flag"),
        (
            &["--shard.count", "3", "--shard.index", "3"],
            "shard 3 does not exist with --shard.count 3",
        ),
        (&["--shard.index", "exporter-x"], "exporter-x"),
        (&["--shard.count", "0"], "0"),
        (&["--organization.interval", "2h"], "organization` section"),
    ];
    for (args, named) in cases {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty());
        assert!(
            err.contains(named),
            "{args:?}: message does not name {named:?}: {err}"
        );
    }
    // A bad `organization` section is refused the same way, naming the field.
    let dir = tempfile::tempdir().unwrap();
    let files: &[(&str, &str)] = &[
        (
            "organization:\n  member_role_name: \"\"\n  regions: [us-east-1]\n",
            "organization.member_role_name",
        ),
        (
            "organization:\n  member_role_name: reader\n  regions: []\n",
            "organization.regions",
        ),
        (
            "organization:\n  member_role_name: reader\n  regions: [us-east-1]\n  accounts:\n    exclude: [\"sandbox-[\"]\n",
            "sandbox-[",
        ),
    ];
    for (i, (text, named)) in files.iter().enumerate() {
        let path = dir.path().join(format!("organization-{i}.yml"));
        std::fs::write(&path, text).unwrap();
        let (code, out, err) = run(&["--config.file", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{text}: {err}");
        assert!(out.is_empty());
        assert!(
            err.contains(named),
            "{text}: does not name {named:?}: {err}"
        );
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn check_with_promtool(text: &str) {
    let Some(promtool) = tools::require("promtool") else {
        return;
    };
    let mut p = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let (ok, report) = tools::report(&p.wait_with_output().unwrap());
    assert!(
        ok && report.trim().is_empty(),
        "promtool check metrics: {report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn uses_the_standard_aws_environment_and_stops_on_sigterm() {
    let sim = common::demo_simulator();
    let running_sim = sim.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let port = free_port();
    let child = Command::new(EXPORTER)
        .args([
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
            "--log.format",
            "json",
            "--refresh.min-interval",
            "2s",
        ])
        .env_clear()
        .env("AWS_ENDPOINT_URL_IMAGEBUILDER", running_sim.url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
        .env("AWS_SECRET_ACCESS_KEY", "super-secret-value")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut child = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base, Duration::from_secs(60), String::new).await;

    let (status, _, body) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    let m = Metrics::parse(&body);
    assert_eq!(
        m.get("imagebuilder_up", &[("target", "us-east-1")]),
        Some(1.0)
    );
    assert!(
        m.count(
            "imagebuilder_workflow_step_status",
            &[("image", "gpu-worker"), ("status", "WAITING")]
        ) == 1
    );
    assert!(
        sim.access_keys().contains_key("AKIDFROMENV"),
        "signed with the environment's credentials"
    );
    check_with_promtool(&body);

    // A scrape in flight when SIGTERM arrives still gets its answer (once
    // the cold start's backfill is done: its calls would slow the refresh
    // the scrape waits for).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, _, body) = get(&format!("{base}/metrics")).await;
        let m = Metrics::parse(&body);
        if m.get("imagebuilder_exporter_backfill_pending", &[]) == Some(0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "backfill never finished");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sim.set_faults(imagebuilder_sim::Faults {
        latency: Duration::from_millis(1500),
        ..Default::default()
    });
    tokio::time::sleep(Duration::from_millis(2500)).await; // past --refresh.min-interval
    let called = sim.total_calls();
    let scrape = tokio::spawn({
        let u = format!("{base}/metrics");
        async move { get(&u).await }
    });
    // In flight: the refresh it waits for has reached the simulator, which
    // holds every call for 1.5 s.
    let asked = Instant::now();
    while sim.total_calls() == called {
        assert!(
            asked.elapsed() < Duration::from_secs(30),
            "the scrape never started a refresh"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!scrape.is_finished(), "answered before SIGTERM");
    let stopping = Instant::now();
    sigterm(&child.0);
    let (status, _, _) = scrape.await.unwrap();
    assert_eq!(status, 200, "in-flight scrape finished");
    let exit = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(10),
            "did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    let mut logs = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut logs).unwrap();
    // Not vacuous: the start-up line is there, and every line is JSON.
    assert!(
        logs.lines()
            .any(|l| l.contains("\"message\":\"starting imagebuilder-exporter\"")),
        "no start-up line in {logs:?}"
    );
    assert!(
        logs.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "JSON logs: {logs}"
    );
    // The Rust module is `module`, as in logfmt: `target` would read as
    // the exporter's target.
    for l in logs.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(
            v["module"]
                .as_str()
                .is_some_and(|m| m.starts_with("imagebuilder_exporter"))
                && v.get("target").is_none(),
            "{l}"
        );
    }
    assert!(
        logs.lines()
            .any(|l| l.contains("\"message\":\"ready\"") && l.contains("\"api_calls\":")),
        "{logs}"
    );
    assert!(!logs.contains("super-secret-value"), "secrets never logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_serves_every_metric_family() {
    let run = exporter(&["--demo"], &[]);
    run.ready(Duration::from_secs(60)).await;
    let base = &run.base;
    // Every family of the metric table (the demo's world has a case of
    // each) but those only an event, a fault or a second target makes.
    let not_in_demo = [
        // Two targets into one account: the oncall module shows it.
        "imagebuilder_exporter_target_overlap",
        // The first applied event, a minute or more in: src/refresh/events/tests.rs.
        "imagebuilder_exporter_event_delay_seconds",
        // A failing queue: the events module.
        "imagebuilder_exporter_event_queue_errors_total",
        // A refused field of an API answer: the faults module.
        "imagebuilder_exporter_invalid_data_total",
        // An `organization` section in --config.file: the organization module.
        "imagebuilder_exporter_organization_up",
        "imagebuilder_exporter_organization_last_success_timestamp_seconds",
        "imagebuilder_exporter_organization_accounts",
        "imagebuilder_exporter_organization_errors_total",
    ];
    let mut families: Vec<&str> = family::contract()
        .map(|f| f.name)
        .filter(|n| !not_in_demo.contains(n))
        .collect();
    families.push("process_resident_memory_bytes");
    // The histogram appears once a step finishes after start-up: the demo's
    // live builds finish steps every few seconds.
    let deadline = Instant::now() + Duration::from_secs(90);
    let body = loop {
        let (_, _, body) = get(&format!("{base}/metrics")).await;
        let missing: Vec<_> = families
            .iter()
            .filter(|f| !body.contains(&format!("# TYPE {f} ")))
            .collect();
        if missing.is_empty() {
            break body;
        }
        assert!(Instant::now() < deadline, "missing families: {missing:?}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let m = Metrics::parse(&body);
    assert_eq!(
        m.count(
            "imagebuilder_workflow_step_status",
            &[("status", "WAITING")]
        ),
        1,
        "one waits for approval"
    );
    assert!(m.count("imagebuilder_workflow_step_status", &[("status", "FAILED")]) > 0);
    // The cases the person on call meets: a rollback that failed, a
    // build that failed outside any step, a step on its second attempt of
    // three, an image that went quiet, owners' tags.
    assert_eq!(
        m.get(
            "imagebuilder_workflow_step_rollback_status",
            &[
                ("image", "bastion-host"),
                ("step_name", "ApplyBuildComponents"),
                ("status", "FAILED")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.count(
            "imagebuilder_image_build_failure_info",
            &[("image", "windows-base")]
        ),
        1
    );
    assert_eq!(
        m.count(
            "imagebuilder_workflow_step_info",
            &[("attempt", "2"), ("max_attempts", "3")]
        ),
        1
    );
    assert!(
        m.count(
            "imagebuilder_workflow_step_info",
            &[("on_failure", "Continue")]
        ) > 0
    );
    assert_eq!(
        m.count(
            "imagebuilder_image_tags",
            &[("image", "web-server"), ("tag_team", "web")]
        ),
        1
    );
    let quiet = m
        .get(
            "imagebuilder_image_last_successful_build_timestamp_seconds",
            &[("image", "legacy-app")],
        )
        .expect("legacy-app's last success");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(now - quiet > 7.0 * 86_400.0, "{now} - {quiet}");
    check_with_promtool(&body);
    // Every family served is in the metric table, with the table's labels,
    // and documented in the metrics reference.
    let documented =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md"))
            .expect("docs/metrics.md");
    for family in body.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = family.split(' ').next().unwrap_or_default();
        let entry = if name.starts_with("process_") {
            "`process_*`".to_string()
        } else {
            assert!(
                family::find(name).is_some(),
                "{name} is served but not in the metric table"
            );
            format!("`{name}`")
        };
        assert!(
            documented.contains(&entry),
            "{name} is served but not in docs/metrics.md"
        );
    }
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let (name, names) = sample_labels(line);
        if name.starts_with("process_") {
            continue;
        }
        let (row, mut want) = table_labels(name);
        let tags = row.label_names().any(|l| l == labels::TAG_LABELS[0]);
        let got: BTreeSet<&str> = names
            .iter()
            .copied()
            .filter(|l| !(tags && l.starts_with("tag_")))
            .collect();
        want.remove(labels::TAG_LABELS[0]);
        assert_eq!(got, want, "{line}");
    }
}

/// A sample's name and label names, read from its text line (label values
/// may hold escaped quotes and commas).
fn sample_labels(line: &str) -> (&str, Vec<&str>) {
    let Some((name, mut rest)) = line.split_once('{') else {
        return (line.split(' ').next().unwrap_or_default(), Vec::new());
    };
    let mut names = Vec::new();
    while let Some((label, value)) = rest.split_once("=\"") {
        names.push(label.trim_start_matches(','));
        let mut escaped = false;
        let end = value
            .char_indices()
            .find(|&(_, c)| {
                let end = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                end
            })
            .map(|(i, _)| i)
            .expect("a closed label value");
        rest = &value[end + 1..];
        if rest.starts_with('}') {
            break;
        }
    }
    (name, names)
}

#[test]
fn sample_labels_reads_escaped_values() {
    assert_eq!(
        sample_labels(r#"m{a="x\",y=\"z",b="",c="\\"} 1"#),
        ("m", vec!["a", "b", "c"])
    );
    assert_eq!(sample_labels("m_total 3"), ("m_total", vec![]));
}

/// The row of the metric table a sample belongs to (a histogram's
/// `_bucket`, `_sum` and `_count` to the histogram's), and the label names
/// the table gives that sample.
fn table_labels(sample: &str) -> (&'static FamilyDef, BTreeSet<&'static str>) {
    if let Some(row) = family::find(sample) {
        return (row, row.label_names().collect());
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        let row = sample
            .strip_suffix(suffix)
            .and_then(family::find)
            .filter(|r| r.kind == Kind::Histogram);
        if let Some(row) = row {
            let mut names: BTreeSet<_> = row.label_names().collect();
            if suffix == "_bucket" {
                names.insert("le");
            }
            return (row, names);
        }
    }
    panic!("{sample} is served but not in the metric table");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_start_up_log_says_what_is_exported_how_and_when_it_is_ready() {
    let sim = common::demo_simulator();
    sim.allow_role(ROLE, None);
    sim.enable_events("imagebuilder-events");
    let running = sim.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let url = running.url();
    let queue = running.queue_url("imagebuilder-events");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("targets.yml");
    std::fs::write(
        &config,
        format!("targets:\n  - region: us-east-1\n    events:\n      sqs_queue_url: {queue}\n  - name: prod-eu\n    region: eu-west-1\n    role_arn: {ROLE}\n"),
    )
    .unwrap();
    let run = exporter(
        &[
            "--config.file",
            config.to_str().unwrap(),
            "--aws.max-requests-per-second",
            "200",
        ],
        &[
            ("AWS_ENDPOINT_URL_IMAGEBUILDER", &url),
            ("AWS_ENDPOINT_URL_STS", &url),
            ("AWS_ENDPOINT_URL_SQS", &url),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ],
    );
    let ready = run
        .line(|l| l.contains("msg=ready"), Duration::from_secs(60))
        .await;
    let lines = run.lines();
    let one = |needles: &[&str]| {
        let found: Vec<&String> = lines
            .iter()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .collect();
        assert_eq!(found.len(), 1, "{needles:?}:\n{}", lines.join("\n"));
        found[0].clone()
    };
    let start = one(&["msg=\"starting imagebuilder-exporter\""]);
    assert!(
        start.contains(&format!("version={}", env!("CARGO_PKG_VERSION")))
            && start.contains("revision=")
            && start.contains("build_date="),
        "{start}"
    );
    for variable in [
        "AWS_ENDPOINT_URL_IMAGEBUILDER",
        "AWS_ENDPOINT_URL_STS",
        "AWS_ENDPOINT_URL_SQS",
    ] {
        one(&[
            "msg=\"AWS endpoint override\"",
            &format!("variable={variable} url={url}"),
        ]);
    }
    let credentials = "credentials=\"the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)\"";
    let endpoint = format!("endpoint=\"{url} (AWS_ENDPOINT_URL_IMAGEBUILDER)\"");
    one(&[
        "msg=target target_name=us-east-1 account=unknown region=us-east-1 role=none",
        credentials,
        &endpoint,
        &format!("events={queue}"),
    ]);
    one(&[
        &format!(
            "msg=target target_name=prod-eu account=210987654321 region=eu-west-1 role={ROLE}"
        ),
        credentials,
        &endpoint,
        "events=off",
    ]);
    // One ready line, with the time and the calls it took.
    one(&["msg=ready"]);
    assert!(
        ready.contains("level=info") && ready.contains("targets=2"),
        "{ready}"
    );
    let field = |name: &str| -> f64 {
        ready
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {ready}"))
    };
    assert!(field("took_s") > 0.0, "{ready}");
    let calls = field("api_calls");
    let (_, _, body) = get(&format!("{}/metrics", run.base)).await;
    let m = Metrics::parse(&body);
    let total = m.sum("imagebuilder_exporter_api_requests_total", &[]);
    assert!(
        calls >= 2.0 && calls <= total,
        "{calls} calls at ready, {total} since"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_in_use_names_the_flag_that_chooses_another() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut run = exporter(
        &["--web.listen-address", &address],
        &[("AWS_REGION", "us-east-1")],
    );
    let status = run.exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "{}", run.text());
    let line = run
        .line(|l| l.contains("level=error"), Duration::from_secs(5))
        .await;
    assert!(
        line.contains("--web.listen-address")
            && line.contains(&format!("address={address}"))
            && line.contains("in use"),
        "{line}"
    );
}

#[test]
fn the_simulators_help_describes_it_and_its_demo_as_served() {
    let out = Command::new(crate::shared::bins::simulator_bin())
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.starts_with("Simulated AWS EC2 Image Builder")
            && !help.contains("Prometheus exporter for"),
        "{help}"
    );
    for said in ["--deny-role", "AWS_ENDPOINT_URL_STS", "STS AssumeRole"] {
        assert!(help.contains(said), "{said}: {help}");
    }
    // "- demo: Eleven images in account 123456789012, us-east-1: a day of
    // history, a new build every 90 s …": what the demo world holds.
    let demo = help
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("- demo:"))
        .expect("the demo scenario described")
        .trim();
    let words = [
        "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten", "Eleven",
        "Twelve",
    ];
    let said = words
        .iter()
        .position(|w| demo.starts_with(&format!("{w} images in account ")))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("how many images? {demo}"));
    let now = SystemClock.now();
    let store = scenario::demo(now, 7);
    let day = 25 * 3600 * 1_000_000_000;
    let builds: Vec<_> = store.visible(now + day).collect();
    let images: std::collections::BTreeSet<&str> = builds.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(images.len(), said, "{images:?} against {demo}");
    let place = format!("account {}, {}:", scenario::ACCOUNT, scenario::REGION);
    assert!(demo.contains(&place), "{demo}");
    assert!(builds.iter().all(|b| b.arn.starts_with(&format!(
        "arn:aws:imagebuilder:{}:{}:",
        scenario::REGION,
        scenario::ACCOUNT
    ))));
    // New builds every 90 s from now on.
    assert!(demo.contains("a new build every 90 s"), "{demo}");
    let mut future: Vec<i64> = builds
        .iter()
        .map(|b| b.date_created)
        .filter(|t| *t > now)
        .collect();
    future.sort();
    assert!(future.len() > 100);
    assert!(future.windows(2).all(|w| w[1] - w[0] == 90 * 1_000_000_000));
}

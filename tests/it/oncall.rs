//! What the person on call needs from `/metrics` alone: which build, why it
//! failed, whether the rollback cleaned up, whose image it is, what went
//! quiet; and an exporter that never reads as failing while it starts, and
//! never serves a series twice. Real SDK, real HTTP, the simulator behind.

use crate::common;

use std::time::Duration;

use common::*;
use imagebuilder_exporter::base::clock::NANOS_PER_SEC;
use imagebuilder_sim::scenario::{build_arn, Ids};
use imagebuilder_sim::store::{SimBuild, Store};
use imagebuilder_sim::Faults;

const INFO: &str = "imagebuilder_workflow_step_info";
const FAILURE: &str = "imagebuilder_workflow_step_failure_info";
const FAILED_AT: &str = "imagebuilder_workflow_step_failure_timestamp_seconds";
const ROLLBACK: &str = "imagebuilder_workflow_step_rollback_status";
const STATUS: &str = "imagebuilder_workflow_step_status";
const DAY: f64 = 86_400.0;

/// 250 characters over three lines, with quotes and a backslash.
fn long_message() -> String {
    format!(
        "Document arn:aws:imagebuilder:us-east-1:123456789012:component/install-web/1.0.0/1 failed!\n  Step \"InstallPackages\" failed: C:\\setup.exe exited with code 1.\n{}",
        "x".repeat(120)
    )
}

/// What the label keeps of [`long_message`]: one line, 199 characters and
/// an ellipsis.
fn long_message_label() -> String {
    let one_line = long_message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let cut: String = one_line.chars().take(199).collect();
    format!("{}…", cut.trim_end())
}

/// `Components` of build `n` of "web": its status, when it ran, and how.
fn web_build(ids: &mut Ids, n: u32, created: f64, components: Step) -> SimBuild {
    let failed = components.status == "FAILED";
    let done = components.status == "COMPLETED";
    let (image, workflow, inventory) = match (failed, done) {
        (true, _) => ("FAILED", "FAILED", "SKIPPED"),
        (_, true) => ("AVAILABLE", "COMPLETED", "COMPLETED"),
        _ => ("BUILDING", "RUNNING", "PENDING"),
    };
    let mut b = fixed_build(
        ids,
        "web",
        n,
        at(created),
        image,
        vec![Wf {
            arn: BUILD_WF,
            kind: "BUILD",
            status: workflow,
            start: Some(ts(created + 1.0)),
            end: (failed || done).then(|| ts(created + 40.0)),
            message: failed.then(|| "Workflow step Components failed".to_string()),
            steps: vec![
                Step {
                    name: "Launch",
                    action: "LaunchInstance",
                    status: "COMPLETED",
                    start: Some(ts(created + 1.0)),
                    end: Some(ts(created + 10.0)),
                    timeout: Some(720),
                    rollback: failed.then_some("COMPLETED"),
                    ..Step::default()
                },
                components,
                Step {
                    name: "Inventory",
                    action: "CollectImageMetadata",
                    status: inventory,
                    on_failure: Some("Continue"),
                    ..Step::default()
                },
            ],
        }],
    );
    b.tags = [("team", "platform"), ("env", "prod"), ("cost-center", "42")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    b.log_group = Some("/platform/imagebuilder/web".into());
    b
}

fn failed_components(created: f64, message: String) -> Step {
    Step {
        name: "Components",
        action: "ExecuteComponents",
        status: "FAILED",
        start: Some(ts(created + 10.0)),
        end: Some(ts(created + 40.0)),
        timeout: Some(3600),
        message: Some(message),
        rollback: Some("FAILED"),
        attempts: Some((3, 3)),
        on_failure: Some("Abort"),
    }
}

fn components(status: &'static str, created: f64, attempts: (i32, i32)) -> Step {
    Step {
        name: "Components",
        action: "ExecuteComponents",
        status,
        start: Some(ts(created + 10.0)),
        end: (status == "COMPLETED").then(|| ts(created + 30.0)),
        timeout: Some(3600),
        attempts: Some(attempts),
        ..Step::default()
    }
}

/// A world with every case of the issue: "web" failed in build 2 (long
/// message, rollback FAILED) after succeeding in build 1; "win" failed
/// before any workflow ran; "legacy" last succeeded 8 days ago.
fn oncall_world() -> Store {
    let mut ids = Ids::new(9);
    let mut store = Store::default();
    store.insert(web_build(
        &mut ids,
        1,
        -3600.0,
        components("COMPLETED", -3600.0, (1, 1)),
    ));
    store.insert(web_build(
        &mut ids,
        2,
        -100.0,
        failed_components(-100.0, long_message()),
    ));
    let mut win = fixed_build(&mut ids, "win", 1, at(-50.0), "FAILED", Vec::new());
    win.reason = Some(
        "Infrastructure configuration is invalid:\ninstance profile 'ImageBuilderWin' does not exist"
            .into(),
    );
    store.insert(win);
    store.insert(simple_done_build(&mut ids, "legacy", 1, at(-8.0 * DAY)));
    store
}

fn web_components() -> Vec<(&'static str, &'static str)> {
    let mut l = web("Components");
    l.push(("action", "ExecuteComponents"));
    l
}

fn line_value<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(prefix))
}

const WEB_STEP: &str = r#"account_id="123456789012",region="us-east-1",image="web",workflow_arn="arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1",workflow_type="BUILD""#;
const WEB_IMAGE: &str = r#"account_id="123456789012",region="us-east-1",image="web""#;

/// The text-format escaping of a label value.
fn escaped(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[tokio::test]
async fn the_page_says_what_failed_why_and_whose_it_is() {
    let h = World::new(oncall_world(), at(0.0))
        .spawn_exporter(&[
            "--labels.image-tags",
            "team,env",
            "--discovery.interval",
            "100ms",
        ])
        .await;
    let m = h.scrape().await;
    let arn2 = build_arn("web", 2);

    // Why it failed: the message, one line of at most 200 characters,
    // quotes and backslashes escaped, with the build version it came from.
    let failure = format!(
        "{FAILURE}{{{WEB_STEP},step_name=\"Components\",action=\"ExecuteComponents\",image_version=\"1.0.0/2\",image_build_version_arn=\"{arn2}\",message=\"{}\"}} ",
        escaped(&long_message_label())
    );
    assert_eq!(line_value(&m.text, &failure), Some("1"), "{}", m.text);
    assert_eq!(long_message_label().chars().count(), 200);
    assert_eq!(m.count(FAILURE, &[]), 1, "only the failed step");
    assert_eq!(
        m.get(FAILED_AT, &web_components()),
        Some(at(-60.0) as f64 / NANOS_PER_SEC as f64)
    );

    // The identity of each step's latest execution; a step retried within
    // its execution says which attempt it is on.
    let info = format!(
        "{INFO}{{{WEB_STEP},step_name=\"Components\",action=\"ExecuteComponents\",image_version=\"1.0.0/2\",image_build_version_arn=\"{arn2}\",on_failure=\"Abort\",attempt=\"3\",max_attempts=\"3\"}} "
    );
    assert_eq!(line_value(&m.text, &info), Some("1"));
    assert!(m.text.contains(&format!(
        "{INFO}{{{WEB_STEP},step_name=\"Inventory\",action=\"CollectImageMetadata\",image_version=\"1.0.0/2\",image_build_version_arn=\"{arn2}\",on_failure=\"Continue\",attempt=\"1\",max_attempts=\"1\"}} 1\n"
    )));

    // Whether the rollback cleaned up: a state set, absent when none ran.
    for (s, v) in [
        ("RUNNING", 0.0),
        ("COMPLETED", 0.0),
        ("SKIPPED", 0.0),
        ("FAILED", 1.0),
    ] {
        assert_eq!(
            m.get(ROLLBACK, &with(web_components(), "status", s)),
            Some(v),
            "{s}"
        );
    }
    assert_eq!(
        m.get(ROLLBACK, &with(web("Launch"), "status", "COMPLETED")),
        Some(1.0)
    );
    assert_eq!(m.count(ROLLBACK, &web("Inventory")), 0);

    // The workflow execution's own message.
    assert!(m.text.contains(&format!(
        "imagebuilder_workflow_execution_failure_info{{{WEB_STEP},image_version=\"1.0.0/2\",image_build_version_arn=\"{arn2}\",message=\"Workflow step Components failed\"}} 1\n"
    )));

    // The image: its newest build, where it logs, whose it is.
    assert_eq!(
        m.get(
            "imagebuilder_image_build_status",
            &[("image", "web"), ("status", "FAILED")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.count("imagebuilder_image_build_status", &[("image", "web")]),
        12
    );
    assert!(m.text.contains(&format!(
        "imagebuilder_image_build_info{{{WEB_IMAGE},image_version=\"1.0.0/2\",image_build_version_arn=\"{arn2}\",build_type=\"SCHEDULED\",log_group=\"/platform/imagebuilder/web\"}} 1\n"
    )));
    assert!(m.text.contains(&format!(
        "imagebuilder_image_tags{{{WEB_IMAGE},tag_team=\"platform\",tag_env=\"prod\"}} 1\n"
    )));
    assert!(!m.text.contains("cost-center") && !m.text.contains("tag_cost"));

    // A build that failed outside any step: visible, with its reason.
    assert!(m.text.contains(&format!(
        "imagebuilder_image_build_failure_info{{account_id=\"123456789012\",region=\"us-east-1\",image=\"win\",image_version=\"1.0.0/1\",image_build_version_arn=\"{}\",reason=\"Infrastructure configuration is invalid: instance profile 'ImageBuilderWin' does not exist\"}} 1\n",
        build_arn("win", 1)
    )));
    assert_eq!(m.count(STATUS, &[("image", "win")]), 0, "no step ran");

    // What went quiet: the last success of each image, whatever its age.
    let last = "imagebuilder_image_last_successful_build_timestamp_seconds";
    assert_eq!(
        m.get(last, &[("image", "legacy")]),
        Some(at(-8.0 * DAY) as f64 / NANOS_PER_SEC as f64)
    );
    assert_eq!(
        m.get(last, &[("image", "web")]),
        Some(at(-3600.0) as f64 / NANOS_PER_SEC as f64)
    );
    assert_eq!(m.get(last, &[("image", "win")]), None);

    // A newer build retries the step: the failure stays open (a retry in
    // progress is not a fix), and the step's info describes the retry,
    // with no second info series for the step.
    let mut ids = Ids::new(10);
    h.sim.update(|s| {
        s.insert(web_build(
            &mut ids,
            3,
            10.0,
            components("RUNNING", 10.0, (2, 3)),
        ))
    });
    h.clock.advance_secs(60.0);
    tokio::time::sleep(Duration::from_millis(150)).await; // discovery interval
    let m = h.scrape().await;
    assert_eq!(
        m.get(STATUS, &with(web_components(), "status", "RUNNING")),
        Some(1.0)
    );
    assert_eq!(m.count(INFO, &web_components()), 1);
    assert_eq!(
        m.get(
            INFO,
            &[
                ("step_name", "Components"),
                ("image_version", "1.0.0/3"),
                ("attempt", "2"),
                ("max_attempts", "3")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(FAILURE, &[("step_name", "Components")]),
        Some(1.0),
        "still open while the retry runs"
    );
    assert_eq!(
        m.get(FAILURE, &[("image_version", "1.0.0/2")]),
        Some(1.0),
        "naming the build that failed"
    );
    assert_eq!(
        m.count(ROLLBACK, &web_components()),
        0,
        "the retry has none"
    );

    // The retry completes: the failure is closed.
    h.sim.update(|s| {
        s.insert(web_build(
            &mut Ids::new(10),
            3,
            10.0,
            components("COMPLETED", 10.0, (2, 3)),
        ))
    });
    h.clock.advance_secs(60.0);
    let m = h.scrape().await;
    assert_eq!(m.count(FAILURE, &[]), 0, "{}", m.text);
    assert_eq!(m.count(FAILED_AT, &[]), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn deleting_the_failed_build_closes_its_failure_and_tags_are_off_by_default() {
    let h = World::new(oncall_world(), at(0.0))
        .spawn_exporter(&["--discovery.interval", "100ms"])
        .await;
    let m = h.scrape().await;
    assert_eq!(m.count(FAILURE, &[("image", "web")]), 1);
    assert_eq!(m.count("imagebuilder_image_tags", &[]), 0, "no allow-list");

    h.sim.update(|s| s.remove(&build_arn("web", 2)));
    h.clock.advance_secs(30.0);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let m = h.scrape().await;
    assert_eq!(m.count(FAILURE, &[]), 0);
    // The step is still shown, from the build before.
    assert_eq!(
        m.get(STATUS, &with(web_components(), "status", "COMPLETED")),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            INFO,
            &[("step_name", "Components"), ("image_version", "1.0.0/1")]
        ),
        Some(1.0)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn after_a_restart_a_failure_behind_a_running_retry_is_found_again() {
    // Both builds existed before the exporter started: the failure lies
    // behind the newest execution, which is running.
    let mut store = oncall_world();
    store.insert(web_build(
        &mut Ids::new(10),
        3,
        -20.0,
        components("RUNNING", -20.0, (1, 3)),
    ));
    let h = World::new(store, at(0.0)).spawn_exporter(&[]).await;
    let m = h.scrape().await;
    assert_eq!(
        m.get(FAILURE, &[("step_name", "Components")]),
        Some(1.0),
        "{}",
        m.text
    );
    assert_eq!(m.get(FAILURE, &[("image_version", "1.0.0/2")]), Some(1.0));
    // Read once: a steady refresh lists only what runs.
    h.sim.reset_calls();
    h.clock.advance_secs(10.0);
    let m = h.scrape().await;
    assert_eq!(m.count(FAILURE, &[]), 1);
    assert_eq!(
        h.sim.calls_to("ListWorkflowStepExecutions"),
        1,
        "{:?}",
        h.sim.calls()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_starting_target_is_not_down() {
    let h = World::new(oncall_world(), at(0.0))
        .spawn_exporter(&["--scrape.timeout", "100ms", "--discovery.interval", "100ms"])
        .await;
    h.sim.set_faults(Faults {
        latency: Duration::from_millis(400),
        ..Faults::default()
    });
    // The first refresh outlasts the scrape: nothing is known yet, and
    // nothing says the target failed.
    let m = h.scrape().await;
    assert_eq!(m.count("imagebuilder_up", &[]), 0, "{}", m.text);
    assert_eq!(m.get("imagebuilder_exporter_ready", &[]), Some(0.0));
    assert_eq!(
        m.count(
            "imagebuilder_exporter_last_refresh_success_timestamp_seconds",
            &[]
        ),
        0
    );
    h.sim.set_faults(Faults::default());
    h.exporter.targets()[0].wait_for(1).await;
    let m = h.scrape().await;
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));
    assert_eq!(m.get("imagebuilder_exporter_ready", &[]), Some(1.0));

    // A refresh that fails after that reads as down, and ready stays 1.

    h.sim.set_faults(Faults {
        server_error_ratio: 1.0,
        ..Faults::default()
    });
    tokio::time::sleep(Duration::from_millis(150)).await; // discovery is due
    let target = &h.exporter.targets()[0];
    let generation = target.trigger().expect("no refresh running");
    target.wait_for(generation).await;
    let m = h.scrape().await;
    assert_eq!(m.get("imagebuilder_up", &[]), Some(0.0));
    assert_eq!(m.get("imagebuilder_exporter_ready", &[]), Some(1.0));
    h.shutdown().await;
}

#[tokio::test]
async fn a_scrape_during_the_start_up_refresh_is_answered_at_once() {
    // Every call takes 2 s: the start-up refresh (listing, executions,
    // steps, details, one after the other) takes several.
    let h = World::new(oncall_world(), at(0.0))
        .spawn_exporter(&["--scrape.timeout", "60s"])
        .await;
    h.sim.set_faults(Faults {
        latency: Duration::from_secs(2),
        ..Faults::default()
    });
    h.exporter.warm_up(std::time::Duration::from_secs(300));
    // Had the scrape waited for the refresh (up to 60 s), it would read a
    // ready target with its steps.
    let m = h.scrape().await;
    assert_eq!(m.get("imagebuilder_exporter_ready", &[]), Some(0.0));
    assert_eq!(m.count("imagebuilder_up", &[]), 0);
    assert_eq!(m.count(STATUS, &[]), 0);
    h.sim.set_faults(Faults::default());
    h.exporter.targets()[0].wait_for(1).await;
    let m = h.scrape().await;
    assert_eq!(m.get("imagebuilder_exporter_ready", &[]), Some(1.0));
    h.shutdown().await;
}

#[tokio::test]
async fn two_targets_into_one_account_serve_each_series_once() {
    const ROLE: &str = "arn:aws:iam::123456789012:role/imagebuilder-exporter";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("targets.yml");
    std::fs::write(
        &config,
        format!(
            "targets:\n  - region: us-east-1\n  - name: same-account\n    region: us-east-1\n    role_arn: {ROLE}\n"
        ),
    )
    .unwrap();
    let world = World::new(oncall_world(), at(0.0))
        // The role's credentials see the same account's builds.
        .with_account("123456789012", "us-east-1", oncall_world())
        .allowing(ROLE, None);
    let h = world
        .spawn_exporter(&["--config.file", config.to_str().unwrap()])
        .await;
    let m = h.scrape().await;
    assert_eq!(
        m.get(
            "imagebuilder_exporter_target_overlap",
            &[("target", "same-account"), ("served_by", "us-east-1")]
        ),
        Some(1.0)
    );
    // Each series once: a duplicate would also fail the parser.
    assert_eq!(m.count(STATUS, &web_components()), 6);
    assert_eq!(
        m.count("imagebuilder_image_build_status", &[("image", "web")]),
        12
    );
    // Both targets still report their own health.
    assert_eq!(
        m.get("imagebuilder_up", &[("target", "same-account")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("imagebuilder_up", &[("target", "us-east-1")]),
        Some(1.0)
    );
    h.shutdown().await;
}

/// Pipelines and failure contexts, through the SDK: `web`'s scheduled
/// builds failed twice in a component, so Image Builder disabled its
/// pipeline (policy: 2); `app`'s newest build failed distributing to two of
/// its Regions; `odd` carries a failure context with members missing, and
/// `broken` is a pipeline with no recipe and no schedule.
fn pipelines_world() -> Store {
    use imagebuilder_sim::scenario::{self, BuildShape};
    use imagebuilder_sim::store::Outcome;
    use imagebuilder_sim::{
        DistributionPlan, SimFailureContext, SimPipeline, SimRegionFailure, SimSchedule,
    };
    let hour = 3600.0;
    let mut ids = Ids::new(3);
    let mut store = Store::default();
    let fails_in_components = BuildShape {
        speed: 0.01,
        failure: Some((0, 2, Outcome::Failed)),
        ..BuildShape::default()
    };
    let mut schedule =
        SimSchedule::new("cron(0 */1 * * ? *)", 3600 * NANOS_PER_SEC, at(-3.0 * hour));
    schedule.timezone = Some("Europe/Paris".into());
    schedule.start_condition = Some("EXPRESSION_MATCH_ONLY".into());
    schedule.failure_count = Some(2);
    store.insert_pipeline(scenario::pipeline("web", Some(schedule)));
    for (n, created) in [(1, -3.0 * hour), (2, -2.0 * hour)] {
        let mut b = scenario::planned_build(&mut ids, "web", n, at(created), &fails_in_components);
        b.pipeline_arn = Some(scenario::pipeline_arn("web"));
        store.insert(b);
    }

    store.insert_pipeline(scenario::pipeline(
        "app",
        Some(SimSchedule::new(
            "rate(1 day)",
            24 * 3600 * NANOS_PER_SEC,
            at(-hour),
        )),
    ));
    let mut app = scenario::planned_build(
        &mut ids,
        "app",
        1,
        at(-hour),
        &BuildShape {
            speed: 0.01,
            ..BuildShape::default()
        },
    );
    app.pipeline_arn = Some(scenario::pipeline_arn("app"));
    let region = |r: &str, status: &str, step: Option<&str>, message: &str| SimRegionFailure {
        region: Some(r.into()),
        account_id: Some("210987654321".into()),
        status: Some(status.into()),
        configuration_step: step.map(Into::into),
        message: Some(message.into()),
    };
    app.distribution = Some(DistributionPlan {
        duration: 60 * NANOS_PER_SEC,
        message: "Image distribution failed in 2 of 3 Regions".into(),
        regions: vec![
            region(
                "eu-west-1",
                "FAILED",
                None,
                "The KMS key alias/images does not exist",
            ),
            region(
                "ap-southeast-2",
                "TIMED_OUT",
                Some("UPDATE_LAUNCH_TEMPLATES"),
                "Launch template lt-0abc was not updated in time",
            ),
        ],
    });
    store.insert(app);

    let mut odd = scenario::planned_build(&mut ids, "odd", 1, at(-hour), &fails_in_components);
    odd.failure_context = Some(SimFailureContext::Fixed(serde_json::json!({
        "componentFailure": {"phaseName": "validate"},
        "distributionFailure": {"regionFailures": [{"status": "FAILED", "errorMessage": "copy failed"}]}
    })));
    store.insert(odd);

    store.insert_pipeline(scenario::pipeline("tools", None));
    store.insert_pipeline(SimPipeline {
        arn: scenario::pipeline_arn("broken"),
        fixed: Some(serde_json::json!({
            "arn": scenario::pipeline_arn("broken"),
            "name": "broken",
            "status": "ENABLED"
        })),
        ..SimPipeline::default()
    });
    store
}

#[tokio::test]
async fn the_page_says_which_component_which_regions_and_whether_the_pipeline_runs() {
    let h = World::new(pipelines_world(), at(0.0))
        .spawn_exporter(&["--discovery.interval", "100ms"])
        .await;
    let m = h.scrape().await;
    let image = |i: &str| format!(r#"account_id="123456789012",region="us-east-1",image="{i}""#);
    let pipeline = |p: &str, i: &str| {
        format!(r#"account_id="123456789012",region="us-east-1",pipeline="{p}",image="{i}""#)
    };

    // Which component, phase and step failed, as Image Builder says it.
    let c = m
        .samples
        .iter()
        .find(|s| {
            s.metric == "imagebuilder_image_component_failure_info"
                && s.labels.get("image") == Some("web")
        })
        .unwrap_or_else(|| panic!("no component failure of web:\n{}", m.text));
    for (k, v) in [
        ("image_version", "1.0.0/2"),
        ("failed_step", "ApplyBuildComponents"),
        ("component", "install-web/1.0.0"),
        ("phase", "build"),
        ("component_step", "InstallPackages"),
        ("action", "ExecuteBash"),
    ] {
        assert_eq!(c.labels.get(k), Some(v), "{k}: {:?}", c.labels);
    }
    let message = c.labels.get("message").unwrap_or_default();
    assert!(!message.is_empty() && !message.contains('\n') && message.chars().count() <= 200);
    assert_eq!(
        m.count("imagebuilder_image_component_failure_info", &[]),
        2,
        "web and odd"
    );

    // Which Regions a distribution failed in, each with its own message.
    let arn = build_arn("app", 1);
    for line in [
        format!("imagebuilder_image_distribution_failure_info{{{},image_version=\"1.0.0/1\",image_build_version_arn=\"{arn}\",distribution_region=\"ap-southeast-2\",distribution_account_id=\"210987654321\",status=\"TIMED_OUT\",configuration_step=\"UPDATE_LAUNCH_TEMPLATES\",message=\"Launch template lt-0abc was not updated in time\"}} 1", image("app")),
        format!("imagebuilder_image_distribution_failure_info{{{},image_version=\"1.0.0/1\",image_build_version_arn=\"{arn}\",distribution_region=\"eu-west-1\",distribution_account_id=\"210987654321\",status=\"FAILED\",configuration_step=\"\",message=\"The KMS key alias/images does not exist\"}} 1", image("app")),
    ] {
        assert!(m.text.lines().any(|l| l == line), "no {line} in\n{}", m.text);
    }

    // A context with members missing: served as far as it goes, counted.
    let odd = build_arn("odd", 1);
    assert!(m.text.contains(&format!(
        "imagebuilder_image_distribution_failure_info{{{},image_version=\"1.0.0/1\",image_build_version_arn=\"{odd}\",distribution_region=\"\",distribution_account_id=\"\",status=\"FAILED\",configuration_step=\"\",message=\"copy failed\"}} 1\n",
        image("odd")
    )), "{}", m.text);
    assert!(m.text.contains(&format!(
        "imagebuilder_image_component_failure_info{{{},image_version=\"1.0.0/1\",image_build_version_arn=\"{odd}\",failed_step=\"\",component=\"\",phase=\"validate\",component_step=\"\",action=\"\",message=\"\"}} 1\n",
        image("odd")
    )), "{}", m.text);
    for field in [
        "failureContext.componentFailure.componentArn",
        "failureContext.distributionFailure.regionFailures.region",
    ] {
        assert!(
            m.get(
                "imagebuilder_exporter_invalid_data_total",
                &[("operation", "ListImageBuildVersions"), ("field", field)]
            ) >= Some(1.0),
            "{field}"
        );
    }
    // The rest of that image is whole.
    assert_eq!(
        m.get(
            "imagebuilder_image_build_status",
            &[("image", "odd"), ("status", "FAILED")]
        ),
        Some(1.0)
    );

    // Whether the pipeline still runs: web's was disabled by its policy.
    let web = pipeline("web", "web");
    for (line, want) in [
        (format!("imagebuilder_image_pipeline_status{{{web},status=\"DISABLED\"}}"), "1"),
        (format!("imagebuilder_image_pipeline_status{{{web},status=\"ENABLED\"}}"), "0"),
        (format!("imagebuilder_image_pipeline_consecutive_failures{{{web}}}"), "2"),
        (format!("imagebuilder_image_pipeline_auto_disable_failure_limit{{{web}}}"), "2"),
        (format!("imagebuilder_image_pipeline_last_run_status{{{web},status=\"FAILED\"}}"), "1"),
        (format!("imagebuilder_image_pipeline_info{{{web},pipeline_arn=\"{}\",schedule_expression=\"cron(0 */1 * * ? *)\",timezone=\"Europe/Paris\",start_condition=\"EXPRESSION_MATCH_ONLY\"}}", scenario_pipeline_arn("web")), "1"),
    ] {
        assert_eq!(line_value(&m.text, &format!("{line} ")), Some(want), "{line}\n{}", m.text);
    }
    assert!(!m.text.contains(&format!(
        "imagebuilder_image_pipeline_next_run_timestamp_seconds{{{web}}}"
    )));
    // app's runs daily, without a policy (the service's default applies);
    // tools' runs by hand.
    let app = pipeline("app", "app");
    assert_eq!(
        m.get(
            "imagebuilder_image_pipeline_consecutive_failures",
            &[("pipeline", "app")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.count(
            "imagebuilder_image_pipeline_auto_disable_failure_limit",
            &[("pipeline", "app")]
        ),
        0
    );
    assert_eq!(
        m.get(
            "imagebuilder_image_pipeline_next_run_timestamp_seconds",
            &[("pipeline", "app")]
        ),
        Some(at(23.0 * 3600.0) as f64 / NANOS_PER_SEC as f64),
        "{app}"
    );
    assert!(m.text.contains(&format!(
        "imagebuilder_image_pipeline_info{{{},pipeline_arn=\"{}\",schedule_expression=\"\",timezone=\"\",start_condition=\"\"}} 1\n",
        pipeline("tools", "tools"),
        scenario_pipeline_arn("tools")
    )));
    // A pipeline without a recipe: served with an empty image, counted.
    assert_eq!(
        m.get(
            "imagebuilder_image_pipeline_status",
            &[("pipeline", "broken"), ("image", ""), ("status", "ENABLED")]
        ),
        Some(1.0)
    );
    assert!(
        m.get(
            "imagebuilder_exporter_invalid_data_total",
            &[
                ("operation", "ListImagePipelines"),
                ("field", "imageRecipeArn")
            ]
        ) >= Some(1.0)
    );
    // One listing pass with the discovery listing.
    assert_eq!(h.sim.calls_to("ListImagePipelines"), 1);
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));

    // A pipeline deleted is gone at the next listing; a newer build of web
    // (in flight) supersedes the failed one and its failure context.
    h.sim.update(|s| {
        s.remove_pipeline(&scenario_pipeline_arn("tools"));
        let mut ids = Ids::new(9);
        let building = imagebuilder_sim::scenario::planned_build(
            &mut ids,
            "web",
            3,
            at(-10.0),
            &Default::default(),
        );
        s.insert(building);
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let m = h.scrape().await;
    assert_eq!(
        m.count(
            "imagebuilder_image_pipeline_status",
            &[("pipeline", "tools")]
        ),
        0
    );
    assert_eq!(
        m.count(
            "imagebuilder_image_component_failure_info",
            &[("image", "web")]
        ),
        0,
        "{}",
        m.text
    );
    assert!(h.sim.calls_to("ListImagePipelines") >= 2);
    h.shutdown().await;
}

fn scenario_pipeline_arn(name: &str) -> String {
    imagebuilder_sim::scenario::pipeline_arn(name)
}

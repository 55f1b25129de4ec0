//! Following Image Builder's events through SQS: the real AWS SDK for SQS
//! against the simulator's queue, which publishes EventBridge events as its
//! builds change. Events make a new build and its failure show within
//! seconds; bad messages, duplicates, a queue that cannot be read, and
//! events that never come change nothing else.

use crate::common;
use crate::shared::bins::EXPORTER;

use std::time::{Duration, Instant};

use common::*;
use imagebuilder_sim::scenario::{self, BuildShape, Ids};
use imagebuilder_sim::store::Outcome;
use imagebuilder_sim::store::Store;
use imagebuilder_sim::{QueueFault, Simulator};

const QUEUE: &str = "imagebuilder-events";

/// The queue's URL: the SDK reaches the simulator through the endpoint;
/// the URL names the queue.
fn queue_url() -> String {
    format!("http://sqs.us-east-1.amazonaws.com/123456789012/{QUEUE}")
}

/// An exporter following `QUEUE` of a simulator over `store`; `prepare`
/// sets the queue up (events published, or not, or denied).
async fn start(store: Store, args: &[&str], prepare: impl FnOnce(&Simulator)) -> Harness {
    let world = World::new(store, at(0.0));
    prepare(&world.sim);
    world
        .spawn_exporter_with(args, |o| {
            o.targets[0].events_queue_url = Some(queue_url());
        })
        .await
}

/// A build of a new image "edge", created `created` seconds from the
/// start, whose first step fails 3 s after its first workflow starts.
fn failing_build(created: f64) -> imagebuilder_sim::store::SimBuild {
    let shape = BuildShape {
        speed: 3.0 / 90.0,
        failure: Some((0, 0, Outcome::Failed)),
        ..BuildShape::default()
    };
    scenario::planned_build(&mut Ids::new(5), "edge", 1, at(created), &shape)
}

/// How long a test waits for what events (or a 1-second listing) bring
/// before it fails. Generous on purpose: with discovery and refresh an hour
/// apart nothing else can bring the change, so the bound only ends a test
/// that would otherwise hang on a loaded machine. How fast events arrive is
/// the benchmark's figure (BENCHMARKS.md, "Events against polling").
const PATIENCE: Duration = Duration::from_secs(30);

/// Scrapes until `check` holds, at most `within`; returns the time taken.
async fn within(h: &Harness, within: Duration, check: impl Fn(&Metrics) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        let m = h.scrape().await;
        if check(&m) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "not within {within:?}:\n{}",
            m.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn edge_status(m: &Metrics, family: &str, status: &str) -> Option<f64> {
    m.get(family, &[("image", "edge"), ("status", status)])
}

fn edge_step_failed(m: &Metrics) -> bool {
    m.get(
        "imagebuilder_workflow_step_status",
        &[
            ("image", "edge"),
            ("step_name", "LaunchBuildInstance"),
            ("status", "FAILED"),
        ],
    ) == Some(1.0)
}

#[tokio::test]
async fn a_new_build_and_its_failure_show_within_seconds_from_events_alone() {
    // Discovery every hour (the default with events), and no refresh
    // after the first: only events can bring the new build.
    let h = start(sample_world(), &["--refresh.min-interval", "1h"], |sim| {
        sim.enable_events(QUEUE)
    })
    .await;
    h.scrape().await;
    h.sim.update(|s| s.insert(failing_build(1.0)));
    h.sim.reset_calls();

    // The build is created: tracked within seconds.
    h.clock.advance_secs(1.5);
    let took = within(&h, PATIENCE, |m| {
        edge_status(m, "imagebuilder_image_build_status", "PENDING") == Some(1.0)
    })
    .await;
    eprintln!("new build served {took:?} after it was created");

    // Its first step fails: the build's FAILED event brings it.
    h.clock.advance_secs(9.0);
    let took = within(&h, PATIENCE, edge_step_failed).await;
    eprintln!("failure served {took:?} after it happened");
    let m = h.scrape().await;
    assert_eq!(
        edge_status(&m, "imagebuilder_image_build_status", "FAILED"),
        Some(1.0)
    );
    assert_eq!(
        m.count(
            "imagebuilder_workflow_step_failure_info",
            &[("image", "edge")]
        ),
        1
    );
    assert!(m.get("imagebuilder_exporter_events_applied_total", &[]) >= Some(2.0));

    // The calls were for that build only: per read (events that arrive
    // together make one), its version's listing and its own executions;
    // never another build's (the world's running build was not read).
    let calls = h.sim.calls();
    let events = m
        .get("imagebuilder_exporter_events_applied_total", &[])
        .unwrap() as u64;
    let reads = calls.get("ListImageBuildVersions").copied().unwrap_or(0);
    assert!((2..=events).contains(&reads), "{calls:?}");
    assert_eq!(
        calls.get("ListWorkflowExecutions").copied(),
        Some(reads),
        "one build per read: {calls:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_events_for_one_build_reads_it_once() {
    let h = start(sample_world(), &["--refresh.min-interval", "1h"], |sim| {
        sim.create_queue(QUEUE)
    })
    .await;
    h.scrape().await;
    h.sim.update(|s| s.insert(failing_build(-60.0)));
    h.sim.reset_calls();
    let event = serde_json::json!({
        "version": "0",
        "id": "b1",
        "detail-type": "EC2 Image Builder Image State Change",
        "source": "aws.imagebuilder",
        "account": "123456789012",
        "time": "2026-09-09T19:12:23Z",
        "region": "us-east-1",
        "resources": [scenario::build_arn("edge", 1)],
        "detail": {"state": {"status": "FAILED"}}
    })
    .to_string();
    for _ in 0..15 {
        h.sim.send_message(QUEUE, &event).expect("queue exists");
    }
    within(&h, PATIENCE, edge_step_failed).await;
    // Let the follower finish deleting.
    within(&h, PATIENCE, |m| {
        m.get("imagebuilder_exporter_events_applied_total", &[]) == Some(15.0)
    })
    .await;
    assert_eq!(h.sim.calls_to("ListWorkflowExecutions"), 1, "one read");
    let depth = h.sim.queue_depth(QUEUE).unwrap();
    assert_eq!((depth.visible, depth.in_flight), (0, 0), "all deleted");
    h.shutdown().await;
}

#[tokio::test]
async fn messages_that_can_never_be_used_are_counted_and_deleted() {
    let h = start(sample_world(), &["--refresh.min-interval", "1h"], |sim| {
        sim.create_queue(QUEUE)
    })
    .await;
    h.scrape().await;
    let event = |resource: String| {
        serde_json::json!({
            "source": "aws.imagebuilder",
            "detail-type": "EC2 Image Builder Image State Change",
            "region": "us-east-1",
            "resources": [resource],
        })
        .to_string()
    };
    for body in [
        "definitely not JSON".to_string(),
        r#"{"source": "aws.s3", "detail-type": "Object Created"}"#.to_string(),
        event(scenario::build_arn("web", 1).replace("123456789012", "210987654321")),
        event(scenario::build_arn("nowhere", 3)),
    ] {
        h.sim.send_message(QUEUE, &body).expect("queue exists");
    }
    let m = within(&h, PATIENCE, |m| {
        m.sum("imagebuilder_exporter_events_ignored_total", &[]) == 4.0
    })
    .await;
    let _ = m;
    let m = h.scrape().await;
    for reason in [
        "not_json",
        "not_imagebuilder",
        "other_account_or_region",
        "unknown_build",
    ] {
        assert_eq!(
            m.get(
                "imagebuilder_exporter_events_ignored_total",
                &[("reason", reason)]
            ),
            Some(1.0),
            "{reason}"
        );
    }
    assert_eq!(
        m.get("imagebuilder_exporter_events_applied_total", &[]),
        Some(0.0)
    );
    let depth = h.sim.queue_depth(QUEUE).unwrap();
    assert_eq!((depth.visible, depth.in_flight), (0, 0), "all deleted");
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));
    h.shutdown().await;
}

/// The log line of an ignored message says what happened; the untrusted
/// body (or the unknown build) is a field of its own. A field named
/// `message` would have replaced the line's message with the body.
#[tokio::test]
async fn an_ignored_message_is_logged_with_its_body_in_a_field_of_its_own() {
    let (logs, _guard) = logs::Captured::start();
    let h = start(sample_world(), &["--refresh.min-interval", "1h"], |sim| {
        sim.create_queue(QUEUE)
    })
    .await;
    h.scrape().await;
    let unknown = scenario::build_arn("nowhere", 3);
    let event = serde_json::json!({
        "source": "aws.imagebuilder",
        "detail-type": "EC2 Image Builder Image State Change",
        "region": "us-east-1",
        "resources": [unknown],
    });
    h.sim
        .send_message(QUEUE, "{not json")
        .expect("queue exists");
    h.sim
        .send_message(QUEUE, &event.to_string())
        .expect("queue exists");
    within(&h, PATIENCE, |m| {
        m.sum("imagebuilder_exporter_events_ignored_total", &[]) == 2.0
    })
    .await;
    let not_json = logs.lines_with("warn", &["reason=not_json"]);
    assert_eq!(not_json.len(), 1, "{}", logs.text());
    assert!(
        not_json[0].contains(r#"msg="event ignored and deleted""#)
            && not_json[0].contains(r#"body="{not json""#),
        "{}",
        not_json[0]
    );
    let unknown_build = logs.lines_with("warn", &["reason=unknown_build"]);
    assert_eq!(unknown_build.len(), 1, "{}", logs.text());
    assert!(
        unknown_build[0].contains(r#"msg="event ignored and deleted""#)
            && unknown_build[0].contains(&format!("build={unknown}")),
        "{}",
        unknown_build[0]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn when_events_never_come_the_listing_still_finds_the_build() {
    // The rule is broken: the queue exists but nothing is sent to it.
    let h = start(
        sample_world(),
        &["--discovery.interval", "1s", "--refresh.min-interval", "0s"],
        |sim| sim.create_queue(QUEUE),
    )
    .await;
    h.scrape().await;
    h.sim.update(|s| s.insert(failing_build(-60.0)));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    within(&h, PATIENCE, edge_step_failed).await;
    let m = h.scrape().await;
    assert_eq!(
        m.get("imagebuilder_exporter_events_received_total", &[]),
        Some(0.0)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_denied_queue_degrades_to_polling_and_says_so() {
    let (logs, _guard) = logs::Captured::start();
    let h = start(
        sample_world(),
        &["--discovery.interval", "1s", "--refresh.min-interval", "0s"],
        |sim| {
            sim.enable_events(QUEUE);
            sim.set_queue_fault(QUEUE, Some(QueueFault::AccessDenied));
        },
    )
    .await;
    h.scrape().await;
    h.sim.update(|s| s.insert(failing_build(-60.0)));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Polling still finds the build; the target is up; the queue's
    // errors are counted and logged.
    within(&h, PATIENCE, edge_step_failed).await;
    let m = within(&h, PATIENCE, |m| {
        m.get(
            "imagebuilder_exporter_event_queue_errors_total",
            &[("code", "AccessDenied")],
        )
        .is_some_and(|n| n >= 1.0)
    })
    .await;
    let _ = m;
    let m = h.scrape().await;
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));
    assert_eq!(
        m.get("imagebuilder_exporter_events_received_total", &[]),
        Some(0.0)
    );
    assert!(
        !logs
            .lines_with(
                "warn",
                &["cannot read the event queue", "code=AccessDenied"]
            )
            .is_empty(),
        "{}",
        logs.text()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_missing_queue_is_reported_the_same_way() {
    let h = start(
        sample_world(),
        &["--refresh.min-interval", "0s"],
        |_| {}, // no queue at all
    )
    .await;
    h.scrape().await;
    within(&h, PATIENCE, |m| {
        m.get(
            "imagebuilder_exporter_event_queue_errors_total",
            &[("code", "AWS.SimpleQueueService.NonExistentQueue")],
        )
        .is_some_and(|n| n >= 1.0)
    })
    .await;
    let m = h.scrape().await;
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));
    h.shutdown().await;
}

#[tokio::test]
async fn a_passing_queue_fault_is_retried_unseen() {
    // The queue answers 503 twice (a closed connection or a brief outage
    // looks the same to the SDK), then works: the SDK's retries hide it,
    // so nothing counts an error, warns, or waits for the loop's back-off.
    let (logs, _guard) = logs::Captured::start();
    let h = start(sample_world(), &["--refresh.min-interval", "1h"], |sim| {
        sim.enable_events(QUEUE);
        sim.set_queue_fault(QUEUE, Some(QueueFault::Unavailable(2)));
    })
    .await;
    h.scrape().await;
    h.sim.update(|s| s.insert(failing_build(1.0)));
    h.clock.advance_secs(1.5);
    within(&h, PATIENCE, |m| {
        edge_status(m, "imagebuilder_image_build_status", "PENDING") == Some(1.0)
    })
    .await;
    assert_eq!(h.sim.queue_stats(QUEUE).map(|s| s.fault), Some(None));
    let m = h.scrape().await;
    assert_eq!(
        m.count("imagebuilder_exporter_event_queue_errors_total", &[]),
        0,
        "{}",
        m.text
    );
    assert!(
        logs.lines_with("warn", &["cannot read the event queue"])
            .is_empty(),
        "{}",
        logs.text()
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_queue_degrades_to_polling() {
    // The binary, with the standard per-service endpoint variables: Image
    // Builder is the simulator, SQS a port nobody listens on.
    let sim = World::new(sample_world(), at(0.0)).sim;
    let running = sim.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let dead = CLOSED;
    let log = tempfile::NamedTempFile::new().expect("a log file");
    let port = crate::shared::http::free_port();
    let child = std::process::Command::new(EXPORTER)
        .args([
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
            "--events.sqs-queue-url",
            &format!("{dead}/123456789012/{QUEUE}"),
        ])
        .env_clear()
        .env("AWS_ENDPOINT_URL_IMAGEBUILDER", running.url())
        .env("AWS_ENDPOINT_URL_SQS", dead)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stderr(log.reopen().expect("the log file"))
        .spawn()
        .expect("starts");
    let _child = Running(child);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::from("no page");
    loop {
        if let Ok((200, _, body)) = try_request("GET", &url).await {
            let m = Metrics::parse(&body);
            seen = m
                .text
                .lines()
                .filter(|l| l.starts_with("imagebuilder_up") || l.contains("event_queue_errors"))
                .collect::<Vec<_>>()
                .join("\n");
            let errors = m.get(
                "imagebuilder_exporter_event_queue_errors_total",
                &[("code", "connection")],
            );
            if m.get("imagebuilder_up", &[]) == Some(1.0) && errors >= Some(1.0) {
                // Polling goes on as without events.
                assert!(m.count("imagebuilder_workflow_step_status", &[]) > 0);
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no connection error counted; last page:\n{seen}\nlog:\n{}",
            std::fs::read_to_string(log.path()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A pipeline that Image Builder disables, and its event: `edge`'s pipeline
/// (policy: 1) is disabled by its first failed scheduled build.
fn pipeline_world(created: f64) -> Store {
    use imagebuilder_sim::SimSchedule;
    let mut world = sample_world();
    let mut schedule = SimSchedule::new("rate(1 hour)", 3600 * 1_000_000_000, at(created));
    schedule.failure_count = Some(1);
    world.insert_pipeline(scenario::pipeline("edge", Some(schedule)));
    world.insert_pipeline(scenario::pipeline("web", None));
    let mut b = failing_build(created);
    b.pipeline_arn = Some(scenario::pipeline_arn("edge"));
    world.insert(b);
    world
}

fn edge_pipeline(m: &Metrics, status: &str) -> Option<f64> {
    m.get(
        "imagebuilder_image_pipeline_status",
        &[("pipeline", "edge"), ("status", status)],
    )
}

#[tokio::test]
async fn a_pipeline_disabled_event_reads_the_pipelines_at_once_and_nothing_else() {
    // No refresh after the first, discovery every hour: only an event can
    // bring the pipeline's new state. The queue gets what a test sends.
    let h = start(
        pipeline_world(1.0),
        &["--refresh.min-interval", "1h"],
        |sim| sim.create_queue(QUEUE),
    )
    .await;
    let m = h.scrape().await;
    assert_eq!(edge_pipeline(&m, "ENABLED"), Some(1.0), "{}", m.text);

    // The build fails (no event for it here), the service disables the
    // pipeline, and its event arrives: detail is not relied on.
    h.clock.advance_secs(20.0);
    let pipeline = scenario::pipeline_arn("edge");
    let event = serde_json::json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "EC2 Image Builder Image Pipeline Automatically Disabled",
        "source": "aws.imagebuilder",
        "account": "123456789012",
        "time": "2026-09-09T19:12:23Z",
        "region": "us-east-1",
        "resources": [pipeline],
        "detail": {"unexpected": ["shape"]}
    })
    .to_string();
    h.sim.reset_calls();
    h.sim.send_message(QUEUE, &event).expect("queue exists");
    // Far less than the hour discovery would take: the event did it.
    within(&h, PATIENCE, |m| edge_pipeline(m, "DISABLED") == Some(1.0)).await;
    let m = h.scrape().await;
    assert_eq!(
        m.get(
            "imagebuilder_image_pipeline_consecutive_failures",
            &[("pipeline", "edge")]
        ),
        Some(1.0)
    );
    let calls = h.sim.calls();
    assert_eq!(calls.get("ListImagePipelines"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("ListImageBuildVersions"), None, "{calls:?}");
    assert_eq!(
        m.get("imagebuilder_exporter_events_applied_total", &[]),
        Some(1.0)
    );
    // A pipeline the listing does not hold: counted and deleted.
    h.sim
        .send_message(
            QUEUE,
            &event.replace("image-pipeline/edge", "image-pipeline/gone"),
        )
        .expect("queue exists");
    within(&h, PATIENCE, |m| {
        m.get(
            "imagebuilder_exporter_events_ignored_total",
            &[("reason", "unknown_pipeline")],
        ) == Some(1.0)
    })
    .await;
    h.shutdown().await;
}

#[tokio::test]
async fn the_simulators_own_events_bring_a_disabled_pipeline() {
    let h = start(
        pipeline_world(1.0),
        &["--refresh.min-interval", "1h"],
        |sim| sim.enable_events(QUEUE),
    )
    .await;
    h.scrape().await;
    h.clock.advance_secs(20.0);
    within(&h, PATIENCE, |m| {
        edge_pipeline(m, "DISABLED") == Some(1.0) && edge_step_failed(m)
    })
    .await;
    let m = h.scrape().await;
    assert_eq!(
        m.get(
            "imagebuilder_exporter_events_ignored_total",
            &[("reason", "not_imagebuilder")]
        ),
        Some(0.0),
        "the simulator's pipeline event is one the exporter follows"
    );
    h.shutdown().await;
}

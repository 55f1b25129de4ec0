//! The event follower against an in-memory queue and Image Builder.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::aws::Operation;
use crate::base::clock::{ManualClock, NANOS_PER_SEC};
use crate::model::{BuildStatus, StepStatus, WorkflowStatus};
use crate::refresh::discovery::fake::*;
use crate::refresh::discovery::{DiscoveryConfig, Tracker};

/// A queue in memory: what is queued, what was deleted, and a fault.
#[derive(Default)]
struct FakeQueue {
    queued: Mutex<VecDeque<QueueMessage>>,
    deleted: Mutex<Vec<String>>,
    receives: Mutex<usize>,
    fail: Mutex<Option<ApiError>>,
}

impl FakeQueue {
    fn push(&self, body: &str) {
        let mut q = self.queued.lock().unwrap();
        let n = q.len() + self.deleted.lock().unwrap().len();
        q.push_back(QueueMessage {
            receipt: format!("r{n}"),
            body: body.to_string(),
        });
    }
}

impl EventQueue for Arc<FakeQueue> {
    async fn receive(&self, _wait: Duration, max: i32) -> Result<Vec<QueueMessage>, ApiError> {
        *self.receives.lock().unwrap() += 1;
        if let Some(e) = self.fail.lock().unwrap().clone() {
            return Err(e);
        }
        let mut q = self.queued.lock().unwrap();
        let n = (max as usize).min(q.len());
        Ok(q.drain(..n).collect())
    }

    async fn delete(&self, receipts: Vec<String>) -> Result<usize, ApiError> {
        self.deleted.lock().unwrap().extend(receipts);
        Ok(0)
    }
}

const NOW: i64 = 1_000;

fn event(build: &str) -> String {
    serde_json::json!({
        "version": "0",
        "id": "e",
        "detail-type": "EC2 Image Builder Image State Change",
        "source": "aws.imagebuilder",
        "account": "123456789012",
        "time": "1970-01-01T00:16:30Z",
        "region": "us-east-1",
        "resources": [build],
        "detail": {"state": {"status": "FAILED"}}
    })
    .to_string()
}

struct Setup {
    api: Arc<FakeApi>,
    queue: Arc<FakeQueue>,
    follower: Follower<Arc<FakeApi>, Arc<FakeQueue>>,
    metrics: ExporterMetrics,
}

/// A target that has read the account, and a follower of its queue.
async fn setup() -> Setup {
    let api = Arc::new(FakeApi::new(account()));
    let clock = ManualClock::new(NOW * NANOS_PER_SEC + 5 * NANOS_PER_SEC);
    let metrics = ExporterMetrics::new().unwrap();
    let target = crate::refresh::target::Target::new(
        "us-east-1",
        api.clone(),
        Tracker::new(DiscoveryConfig {
            interval: Duration::from_secs(3600),
            defer_backfill: false,
            ..DiscoveryConfig::default()
        }),
        Duration::ZERO,
        clock.clone(),
        metrics.clone(),
    );
    let g = target.trigger().unwrap();
    target.wait_for(g).await;
    api.take_calls();
    let queue = Arc::new(FakeQueue::default());
    let follower = Follower::new(
        target,
        queue.clone(),
        Scope {
            account_id: None,
            region: "us-east-1".into(),
        },
        clock,
        metrics.clone(),
    );
    Setup {
        api,
        queue,
        follower,
        metrics,
    }
}

fn text(m: &ExporterMetrics) -> String {
    let mut out = Vec::new();
    m.encode(&mut out);
    String::from_utf8(out).unwrap()
}

fn new_failed_build(api: &FakeApi) {
    api.world().add(
        build("web", 3, 400, BuildStatus::Failed),
        vec![(
            execution("wf-4", WorkflowStatus::Failed, 410),
            vec![step("s7", "Build", StepStatus::Failed, 410, Some(420))],
        )],
    );
}

#[tokio::test]
async fn a_burst_of_events_for_one_build_reads_it_once() {
    let s = setup().await;
    new_failed_build(&s.api);
    for _ in 0..25 {
        s.queue.push(&event(&arn("web", 3)));
    }
    let out = s.follower.poll(Duration::ZERO).await.unwrap();
    assert_eq!((out.received, out.applied), (25, 25));
    assert_eq!(s.queue.deleted.lock().unwrap().len(), 25);
    // One read of that build, and nothing else: its version's listing
    // (two pages of two), its executions, their steps, their details.
    assert_eq!(
        s.api.take_calls(),
        [
            "GWSE s7",
            "LIBV image/web/1.0.0",
            "LIBV image/web/1.0.0",
            // The build ended: its pipeline's counts changed.
            "LIP",
            "LWE image/web/1.0.0/3",
            "LWSE wf-4"
        ]
    );
    let m = text(&s.metrics);
    assert!(m.contains("imagebuilder_exporter_events_received_total{target=\"us-east-1\"} 25"));
    assert!(m.contains("imagebuilder_exporter_events_applied_total{target=\"us-east-1\"} 25"));
    // Sent at 990 s, applied at 1005 s.
    assert!(
        m.contains("imagebuilder_exporter_event_delay_seconds_sum{target=\"us-east-1\"} 375"),
        "{m}"
    );
    // The build is served at once.
    let page =
        crate::snapshot::render(&[s.follower.target.current()], NOW * NANOS_PER_SEC).concat();
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("image_version=\"1.0.0/3\""), "{page}");
}

#[tokio::test]
async fn messages_that_can_never_be_used_are_counted_and_deleted() {
    let s = setup().await;
    for body in [
        "not json".to_string(),
        "{\"source\": \"aws.ec2\"}".to_string(),
        event(&arn("web", 2).replace("123456789012", "210987654321")),
        event(&arn("gone", 1)),
    ] {
        s.queue.push(&body);
    }
    let out = s.follower.poll(Duration::ZERO).await.unwrap();
    assert_eq!(
        out.ignored,
        [
            Ignored::NotJson,
            Ignored::NotImageBuilder,
            Ignored::OtherAccount,
            Ignored::UnknownBuild
        ]
    );
    assert_eq!(out.applied, 0);
    assert_eq!(s.queue.deleted.lock().unwrap().len(), 4);
    let m = text(&s.metrics);
    for reason in [
        "not_json",
        "not_imagebuilder",
        "other_account_or_region",
        "unknown_build",
    ] {
        assert!(
            m.contains(&format!(
                "imagebuilder_exporter_events_ignored_total{{reason=\"{reason}\",target=\"us-east-1\"}} 1"
            )),
            "{reason}: {m}"
        );
    }
    // The unknown build cost one listing of its version, nothing else.
    assert_eq!(s.api.take_calls(), ["LIBV image/gone/1.0.0"]);
}

#[tokio::test]
async fn a_build_that_cannot_be_read_keeps_its_message() {
    let s = setup().await;
    new_failed_build(&s.api);
    s.api.world().failing.insert(arn("web", 3));
    s.queue.push(&event(&arn("web", 3)));
    let out = s.follower.poll(Duration::ZERO).await.unwrap();
    assert_eq!((out.applied, out.kept), (0, 1));
    assert!(s.queue.deleted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_queue_that_cannot_be_read_is_reported_and_changes_nothing_else() {
    let s = setup().await;
    *s.queue.fail.lock().unwrap() = Some(ApiError::Service {
        operation: Operation::ReceiveMessage,
        code: "AccessDenied".into(),
        message: "not authorized".into(),
        status: 403,
    });
    let task = tokio::spawn(s.follower.run());
    tokio::time::sleep(Duration::from_millis(100)).await;
    task.abort();
    let m = text(&s.metrics);
    assert!(
        m.contains("imagebuilder_exporter_event_queue_errors_total{code=\"AccessDenied\",target=\"us-east-1\"} 1"),
        "{m}"
    );
    assert!(m.contains("imagebuilder_up{target=\"us-east-1\"} 1"));
    assert_eq!(*s.queue.receives.lock().unwrap(), 1, "then it backs off");
}

fn pipeline_event(arn: &str) -> String {
    serde_json::json!({
        "version": "0",
        "id": "p",
        "detail-type": "EC2 Image Builder Image Pipeline Automatically Disabled",
        "source": "aws.imagebuilder",
        "account": "123456789012",
        "time": "1970-01-01T00:16:30Z",
        "region": "us-east-1",
        "resources": [arn],
        "detail": {}
    })
    .to_string()
}

#[tokio::test]
async fn a_disabled_pipeline_is_read_at_once_and_an_unknown_one_ignored() {
    let s = setup().await;
    let known = "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/web-nightly";
    let gone = "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/deleted";
    s.api.world().pipelines = vec![crate::model::Pipeline {
        arn: Arc::from(known),
        name: Arc::from("web-nightly"),
        recipe: Some(Arc::from("web")),
        status: crate::model::PipelineStatus::Disabled,
        consecutive_failures: Some(3),
        schedule: None,
        last_run_status: Some(BuildStatus::Failed),
        next_run: None,
    }];
    // Two events for the pipeline, one for a pipeline deleted since.
    s.queue.push(&pipeline_event(known));
    s.queue.push(&pipeline_event(known));
    s.queue.push(&pipeline_event(gone));
    let out = s.follower.poll(Duration::ZERO).await.unwrap();
    assert_eq!((out.received, out.applied), (3, 2));
    assert_eq!(out.ignored, [Ignored::UnknownPipeline]);
    // One listing answers them all, and nothing else is read.
    assert_eq!(s.api.take_calls(), ["LIP"]);
    assert_eq!(s.queue.deleted.lock().unwrap().len(), 3);
    let served =
        String::from_utf8(crate::snapshot::render(&[s.follower.target.current()], 0).concat())
            .unwrap();
    assert!(
        served.contains(r#"imagebuilder_image_pipeline_status{account_id="123456789012",region="us-east-1",pipeline="web-nightly",image="web",status="DISABLED"} 1"#),
        "{served}"
    );
    assert!(text(&s.metrics).contains(
        r#"imagebuilder_exporter_events_ignored_total{reason="unknown_pipeline",target="us-east-1"} 1"#
    ));

    // The listing fails: the message waits for redelivery.
    s.api.world().failing.insert("pipelines".into());
    s.queue.push(&pipeline_event(known));
    let out = s.follower.poll(Duration::ZERO).await.unwrap();
    assert_eq!((out.applied, out.kept), (0, 1));
    assert_eq!(s.queue.deleted.lock().unwrap().len(), 3);
}

//! The simulator's SQS through the real SDK client: what the exporter's
//! consumer will see, errors included.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::Value;

use crate::clock::{ManualClock, NANOS_PER_SEC};
use crate::scenario::{self, BuildShape, Ids};
use crate::store::Outcome;
use crate::{QueueDepth, QueueFault, RunningSimulator, Simulator, Store};

const T0: i64 = 1_788_981_143_418_000_000;
const QUEUE: &str = "imagebuilder-events";

fn client(sim: &RunningSimulator) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .endpoint_url(sim.url())
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "AKIDSQSTEST",
            "secret",
            None,
            None,
            "static",
        ))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

async fn start() -> (Simulator, RunningSimulator, Arc<ManualClock>) {
    let clock = ManualClock::new(T0);
    let sim = Simulator::new(clock.clone(), Store::default(), 1);
    sim.enable_events(QUEUE);
    let running = sim.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    (sim, running, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_delete_and_attributes_through_the_sdk() {
    let (sim, running, _) = start().await;
    let sqs = client(&running);
    let url = running.queue_url(QUEUE);
    assert_eq!(url, format!("{}/123456789012/{QUEUE}", running.url()));
    for i in 0..3 {
        sim.send_message(QUEUE, &format!("message {i}")).unwrap();
    }
    let got = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .visibility_timeout(60)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let messages = got.messages();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0].body(), Some("message 0"));
    assert_eq!(
        messages[0].md5_of_body(),
        Some("4fce64326221d1a246dcc5557e824cf3")
    );
    let attrs = messages[0].attributes().unwrap();
    assert_eq!(
        attrs[&MessageSystemAttributeName::ApproximateReceiveCount],
        "1"
    );
    assert_eq!(
        attrs[&MessageSystemAttributeName::SentTimestamp],
        (T0 / 1_000_000).to_string()
    );
    assert_eq!(
        sim.queue_depth(QUEUE),
        Some(QueueDepth {
            visible: 0,
            in_flight: 3
        })
    );

    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let a = attributes.attributes().unwrap();
    assert_eq!(a[&QueueAttributeName::ApproximateNumberOfMessages], "0");
    assert_eq!(
        a[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible],
        "3"
    );

    // Two good handles and one unknown: the unknown one fails alone.
    let entry = |id: &str, handle: &str| {
        DeleteMessageBatchRequestEntry::builder()
            .id(id)
            .receipt_handle(handle)
            .build()
            .unwrap()
    };
    let deleted = sqs
        .delete_message_batch()
        .queue_url(&url)
        .entries(entry("a", messages[0].receipt_handle().unwrap()))
        .entries(entry("b", messages[1].receipt_handle().unwrap()))
        .entries(entry("c", "AQEBnot-a-handle"))
        .send()
        .await
        .unwrap();
    let ok: Vec<&str> = deleted.successful().iter().map(|s| s.id()).collect();
    assert_eq!(ok, ["a", "b"]);
    assert_eq!(deleted.failed().len(), 1);
    let failed = &deleted.failed()[0];
    assert_eq!(
        (failed.id(), failed.code(), failed.sender_fault()),
        ("c", "ReceiptHandleIsInvalid", true)
    );
    assert_eq!(
        sim.queue_depth(QUEUE),
        Some(QueueDepth {
            visible: 0,
            in_flight: 1
        })
    );

    // A batch that breaks the rules is an error of the call.
    let err = sqs
        .delete_message_batch()
        .queue_url(&url)
        .entries(entry("x", "h"))
        .entries(entry("x", "h"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_batch_entry_ids_not_distinct(), "{err:?}");
    let err = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(11)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("InvalidParameterValue"), "{err:?}");

    assert_eq!(sim.calls_to("ReceiveMessage"), 2);
    assert_eq!(sim.calls_to("DeleteMessageBatch"), 2);
    assert_eq!(sim.calls_to("GetQueueAttributes"), 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_denied_queues_answer_as_sqs_does() {
    let (sim, running, _) = start().await;
    let sqs = client(&running);

    let err = sqs
        .receive_message()
        .queue_url(running.queue_url("no-such-queue"))
        .send()
        .await
        .unwrap_err();
    let raw = err.raw_response().map(|r| r.status().as_u16());
    let err = err.into_service_error();
    assert!(err.is_queue_does_not_exist(), "{err:?}");
    assert_eq!(err.code(), Some("AWS.SimpleQueueService.NonExistentQueue"));
    assert_eq!(raw, Some(400));

    assert!(sim.set_queue_fault(QUEUE, Some(QueueFault::AccessDenied)));
    let err = sqs
        .receive_message()
        .queue_url(running.queue_url(QUEUE))
        .wait_time_seconds(20)
        .send()
        .await
        .unwrap_err();
    let raw = err.raw_response().map(|r| r.status().as_u16());
    let err = err.into_service_error();
    // Not a modeled error of ReceiveMessage: the SDK reports the query
    // code from `x-amzn-query-error`.
    assert!(err.meta().code() == Some("AccessDenied"), "{err:?}");
    assert!(err
        .message()
        .is_some_and(|m| m.contains("not authorized to perform: sqs:receivemessage")));
    assert_eq!(raw, Some(403));
    let err = sqs
        .delete_message_batch()
        .queue_url(running.queue_url(QUEUE))
        .entries(
            DeleteMessageBatchRequestEntry::builder()
                .id("a")
                .receipt_handle("h")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("AccessDenied"));

    assert!(sim.set_queue_fault(QUEUE, Some(QueueFault::QueueDoesNotExist)));
    let err = sqs
        .receive_message()
        .queue_url(running.queue_url(QUEUE))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_queue_does_not_exist(), "{err:?}");

    assert!(sim.set_queue_fault(QUEUE, None));
    let ok = sqs
        .receive_message()
        .queue_url(running.queue_url(QUEUE))
        .send()
        .await
        .unwrap();
    assert!(ok.messages().is_empty());
    assert!(!sim.set_queue_fault("no-such-queue", None));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_gets_a_builds_events_as_the_clock_moves() {
    let (sim, running, clock) = start().await;
    let sqs = client(&running);
    let url = running.queue_url(QUEUE);
    let shape = BuildShape {
        speed: 0.01,
        failure: Some((0, 0, Outcome::Failed)),
        ..BuildShape::default()
    };
    let arn = scenario::build_arn("web", 1);
    sim.update(|s| {
        s.insert(scenario::planned_build(
            &mut Ids::new(1),
            "web",
            1,
            T0 + NANOS_PER_SEC,
            &shape,
        ))
    });

    let poll = {
        let (sqs, url) = (sqs.clone(), url.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            let out = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(20)
                .send()
                .await
                .unwrap();
            (start.elapsed(), out)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The build is created: the background task publishes within ~100 ms,
    // and the long poll answers then.
    clock.advance_secs(1.0);
    let (waited, out) = poll.await.unwrap();
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    let events: Vec<Value> = out
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["detail-type"],
        "EC2 Image Builder Image State Change"
    );
    assert_eq!(events[0]["resources"][0], arn);
    assert_eq!(events[0]["detail"]["state"]["status"], "PENDING");

    // Minutes later the first step has failed: BUILDING, then FAILED.
    clock.advance_secs(600.0);
    let mut statuses = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while statuses.len() < 2 && Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let e: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            statuses.push(e["detail"]["state"]["status"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(statuses, ["BUILDING", "FAILED"]);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_simulator_ends_a_long_poll() {
    let (_sim, running, _) = start().await;
    let sqs = client(&running);
    let url = running.queue_url(QUEUE);
    let poll = tokio::spawn(async move {
        sqs.receive_message()
            .queue_url(url)
            .wait_time_seconds(20)
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    running.stop().await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let answer = poll.await.unwrap();
    assert!(answer.is_ok_and(|a| a.messages().is_empty()));
}

//! The exporter end to end: real SDK, real HTTP, the simulator behind it,
//! `/metrics` read through a Prometheus text parser.

use crate::common;

use std::time::Duration;

use common::*;
use imagebuilder_exporter::base::clock::NANOS_PER_SEC;
use imagebuilder_exporter::metrics::labels;
use imagebuilder_sim::scenario::{build_arn, Ids};
use imagebuilder_sim::store::Store;
use imagebuilder_sim::Faults;

const STATUS: &str = "imagebuilder_workflow_step_status";
const DURATION: &str = "imagebuilder_workflow_step_duration_seconds";
const TIMEOUT: &str = "imagebuilder_workflow_step_timeout_seconds";
const HEADROOM: &str = "imagebuilder_workflow_step_timeout_headroom_seconds";
const EXECUTIONS: &str = "imagebuilder_workflow_step_executions_total";

#[tokio::test]
async fn exports_exact_status_durations_and_headroom() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&[])
        .await;
    let m = h.scrape().await;

    // State set: 1 for the current status, 0 for the model's others.
    for (s, v) in [
        ("PENDING", 0.0),
        ("SKIPPED", 0.0),
        ("RUNNING", 0.0),
        ("COMPLETED", 1.0),
        ("FAILED", 0.0),
        ("CANCELLED", 0.0),
    ] {
        assert_eq!(
            m.get(STATUS, &with(web("Launch"), "status", s)),
            Some(v),
            "{s}"
        );
    }
    assert_eq!(m.count(STATUS, &web("Launch")), 6);
    assert_eq!(
        m.get(STATUS, &with(web("Components"), "status", "FAILED")),
        Some(1.0)
    );

    // Durations to the millisecond, headroom negative when overrun.
    assert_eq!(m.get(DURATION, &web("Launch")), Some(12.418));
    assert_eq!(m.get(TIMEOUT, &web("Launch")), Some(60.0));
    assert_eq!(m.get(HEADROOM, &web("Launch")), Some(47.582));
    assert_eq!(m.get(DURATION, &web("Components")), Some(87.5));
    assert_eq!(m.get(HEADROOM, &web("Components")), Some(-27.5));
    assert_eq!(
        m.get(
            "imagebuilder_workflow_step_start_timestamp_seconds",
            &web("Launch")
        ),
        Some(1_788_981_143.418)
    );
    assert_eq!(
        m.get(
            "imagebuilder_workflow_step_end_timestamp_seconds",
            &web("Launch")
        ),
        Some(1_788_981_155.836)
    );

    // WAITING is outside the model's enum: kept, as its own series.
    assert_eq!(
        m.get(STATUS, &with(web("Approve"), "status", "WAITING")),
        Some(1.0)
    );
    assert_eq!(m.count(STATUS, &web("Approve")), 7);
    assert_eq!(
        m.get(DURATION, &web("Approve")),
        Some(60.0),
        "now - startTime"
    );
    assert_eq!(m.get(HEADROOM, &web("Approve")), Some(3540.0));

    // A malformed time yields no duration, and is counted.
    assert_eq!(
        m.get(STATUS, &with(web("Sanitize"), "status", "RUNNING")),
        Some(1.0)
    );
    assert_eq!(m.get(DURATION, &web("Sanitize")), None);
    assert_eq!(m.get(HEADROOM, &web("Sanitize")), None);
    assert_eq!(m.get(TIMEOUT, &web("Sanitize")), Some(720.0));
    assert!(
        m.sum(
            "imagebuilder_exporter_invalid_data_total",
            &[("kind", "bad_time"), ("field", "startTime")]
        ) >= 1.0
    );

    // Not started: status only.
    assert_eq!(
        m.get(STATUS, &with(web("Terminate"), "status", "PENDING")),
        Some(1.0)
    );
    assert_eq!(m.get(DURATION, &web("Terminate")), None);

    // Every label, from the ARNs and the answers; no execution IDs.
    let s = m
        .samples
        .iter()
        .find(|s| s.metric == DURATION && s.labels.get("step_name") == Some("Launch"))
        .unwrap();
    let mut names: Vec<&str> = s.labels.keys().map(|k| k.as_str()).collect();
    names.sort();
    let mut step_labels = labels::STEP;
    step_labels.sort();
    assert_eq!(names, step_labels);
    assert_eq!(s.labels.get("account_id"), Some("123456789012"));
    assert_eq!(s.labels.get("region"), Some("us-east-1"));
    assert_eq!(s.labels.get("action"), Some("ExecuteComponents"));

    // Workflow level.
    let wf = [("image", "web"), ("workflow_arn", BUILD_WF)];
    assert_eq!(
        m.get(
            "imagebuilder_workflow_execution_status",
            &[wf[0], wf[1], ("status", "RUNNING")]
        ),
        Some(1.0)
    );
    assert_eq!(m.count("imagebuilder_workflow_execution_status", &wf), 8);
    assert_eq!(
        m.get("imagebuilder_workflow_execution_duration_seconds", &wf),
        Some(160.0)
    );
    assert_eq!(
        m.get(
            "imagebuilder_workflow_execution_steps",
            &[wf[0], wf[1], ("outcome", "failed")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "imagebuilder_workflow_execution_steps",
            &[wf[0], wf[1], ("outcome", "total")]
        ),
        Some(5.0)
    );
    assert_eq!(
        m.get(
            "imagebuilder_workflow_execution_duration_seconds",
            &[("image", "db")]
        ),
        Some(60.0)
    );

    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));
    assert_eq!(
        m.get("imagebuilder_exporter_tracked_builds", &[]),
        Some(2.0)
    );
    assert_eq!(
        m.get("imagebuilder_exporter_tracked_step_executions", &[]),
        Some(6.0)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_running_step_duration_grows_between_scrapes() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&[])
        .await;
    let m = h.scrape().await;
    assert_eq!(m.get(DURATION, &web("Approve")), Some(60.0));
    h.clock.advance_secs(30.25);
    let m = h.scrape().await;
    assert_eq!(m.get(DURATION, &web("Approve")), Some(90.25));
    assert_eq!(m.get(HEADROOM, &web("Approve")), Some(3509.75));
    assert_eq!(
        m.get(DURATION, &web("Launch")),
        Some(12.418),
        "finished steps do not move"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn follows_next_token_past_the_first_page() {
    let mut ids = Ids::new(2);
    let mut store = Store::default();
    for i in 0..130 {
        store.insert(simple_done_build(
            &mut ids,
            &format!("img-{i:03}"),
            1,
            at(-3600.0 - i as f64),
        ));
    }
    let h = World::new(store, at(0.0)).spawn_exporter(&[]).await;
    let m = h.scrape().await;
    assert_eq!(
        m.get("imagebuilder_exporter_tracked_builds", &[]),
        Some(130.0)
    );
    assert_eq!(m.label_values(DURATION, "image").len(), 130);
    assert_eq!(
        h.sim.calls_to("ListImageBuildVersions"),
        2,
        "pages of 100 and 30"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_second_refresh_makes_no_call_for_terminal_steps() {
    let mut ids = Ids::new(3);
    let mut store = Store::default();
    for i in 0..5 {
        store.insert(simple_done_build(
            &mut ids,
            "web",
            i + 1,
            at(-36_000.0 + i as f64 * 3600.0),
        ));
    }
    let h = World::new(store, at(0.0)).spawn_exporter(&[]).await;
    h.scrape().await;
    let first = h.sim.calls();
    // Cold start: one listing, one ListWorkflowExecutions per build, steps
    // and details only for the latest execution.
    assert_eq!(first.get("ListImageBuildVersions"), Some(&1));
    assert_eq!(first.get("ListWorkflowExecutions"), Some(&5));
    assert_eq!(first.get("ListWorkflowStepExecutions"), Some(&1));
    assert_eq!(first.get("GetWorkflowStepExecution"), Some(&1));
    h.sim.reset_calls();
    let m = h.scrape().await;
    assert_eq!(h.sim.total_calls(), 0, "{:?}", h.sim.calls());
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));
    assert_eq!(m.get(DURATION, &[("image", "web")]), Some(60.0));
    h.shutdown().await;
}

#[tokio::test]
async fn in_flight_work_is_all_a_steady_refresh_costs() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&[])
        .await;
    h.scrape().await;
    h.sim.reset_calls();
    h.scrape().await;
    let calls = h.sim.calls();
    // The running "web" build: its executions and steps are listed again;
    // no detail is fetched twice; the finished "db" build costs nothing.
    assert_eq!(calls.get("ListWorkflowExecutions"), Some(&1));
    assert_eq!(calls.get("ListWorkflowStepExecutions"), Some(&1));
    assert_eq!(calls.get("GetWorkflowStepExecution"), None);
    assert_eq!(
        calls.get("ListImageBuildVersions"),
        None,
        "discovery not due"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn the_first_discovery_seeds_counters_and_later_ones_count() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&["--discovery.interval", "1s"])
        .await;
    let m = h.scrape().await;
    // Terminal before start-up: seeded, series present at 0.
    assert_eq!(
        m.get(EXECUTIONS, &with(web("Launch"), "status", "COMPLETED")),
        Some(0.0)
    );
    assert_eq!(
        m.get(EXECUTIONS, &with(web("Components"), "status", "FAILED")),
        Some(0.0)
    );
    assert_eq!(m.sum(EXECUTIONS, &[]), 0.0);

    // The running step fails; a new build of "api" comes and finishes.
    let web_arn = build_arn("web", 1);
    h.sim.update(|s| {
        let b = s.build_mut(&web_arn).unwrap();
        if let imagebuilder_sim::store::StepPlan::Fixed(f) = &mut b.workflows[0].steps[3].plan {
            f.status = "FAILED".into();
            f.start = Some(ts(110.0));
            f.end = Some(ts(170.0));
        }
    });
    let mut ids = Ids::new(9);
    h.sim
        .update(|s| s.insert(simple_done_build(&mut ids, "api", 1, at(150.0))));
    h.clock.advance_secs(20.0);
    tokio::time::sleep(Duration::from_millis(1100)).await; // discovery interval
    let m = h.scrape().await;
    assert_eq!(
        m.get(EXECUTIONS, &with(web("Sanitize"), "status", "FAILED")),
        Some(1.0)
    );
    assert_eq!(
        m.get(EXECUTIONS, &[("image", "api"), ("status", "COMPLETED")]),
        Some(1.0)
    );
    assert_eq!(
        m.sum(EXECUTIONS, &[]),
        2.0,
        "exactly the two new terminal executions"
    );
    // Counted executions with both times feed the histogram (Sanitize had
    // a bad start time when running but both are valid now).
    for step in ["Sanitize", "Build"] {
        assert!(
            m.text.contains(&format!("imagebuilder_workflow_step_execution_duration_seconds_count{{account_id=\"123456789012\",region=\"us-east-1\",workflow_arn=\"arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1\",workflow_type=\"BUILD\",step_name=\"{step}\",action=\"ExecuteComponents\"}} 1\n")),
            "{step}"
        );
    }
    assert_eq!(
        m.text
            .matches("imagebuilder_workflow_step_execution_duration_seconds_count{")
            .count(),
        2
    );

    // And once only.
    h.clock.advance_secs(20.0);
    let m = h.scrape().await;
    assert_eq!(m.sum(EXECUTIONS, &[]), 2.0);
    h.shutdown().await;
}

#[tokio::test]
async fn concurrent_scrapes_share_one_refresh() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&["--refresh.min-interval", "1m"])
        .await;
    h.sim.set_faults(Faults {
        latency: Duration::from_millis(150),
        ..Faults::default()
    });
    let url = format!("{}/metrics", h.url);
    let scrapes: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn({
                let u = url.clone();
                async move { get(&u).await }
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for s in scrapes {
        let (status, _, body) = s.await.unwrap();
        assert_eq!(status, 200);
        bodies.push(Metrics::parse(&body));
    }
    assert_eq!(h.sim.calls_to("ListImageBuildVersions"), 1);
    assert_eq!(h.sim.calls_to("ListWorkflowExecutions"), 2);
    for m in &bodies {
        assert_eq!(
            m.get(DURATION, &web("Launch")),
            Some(12.418),
            "every scrape got the refreshed data"
        );
    }
    // Within the minimum interval, no refresh at all.
    h.sim.reset_calls();
    h.scrape().await;
    assert_eq!(h.sim.total_calls(), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn an_unknown_step_execution_id_is_reported_and_the_rest_works() {
    let unknown = "step-00000000-0000-4000-8000-000000000000";
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&["--step-execution-id", unknown])
        .await;
    let m = h.scrape().await;
    assert_eq!(
        m.get(
            "imagebuilder_exporter_api_errors_total",
            &[
                ("operation", "GetWorkflowStepExecution"),
                ("code", "InvalidRequestException")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(m.get(DURATION, &web("Launch")), Some(12.418));
    assert_eq!(
        m.get("imagebuilder_up", &[]),
        Some(1.0),
        "an unknown ID is not an outage"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_step_execution_id_outside_discovery_is_tracked_directly() {
    // Discovery narrowed to "db"; the web build's Approve step is followed by ID.
    let store = sample_world();
    let (approve_id, _) = {
        let b = store.build(&build_arn("web", 1), at(0.0)).unwrap();
        (b.workflows[0].steps[2].id.clone(), ())
    };
    let h = World::new(store, at(160.0))
        .spawn_exporter(&[
            "--filter.image-name",
            "db",
            "--step-execution-id",
            &approve_id,
        ])
        .await;
    let m = h.scrape().await;
    assert_eq!(m.get(DURATION, &[("image", "db")]), Some(60.0));
    assert_eq!(m.label_values(DURATION, "image").len(), 2);
    assert_eq!(
        m.get(STATUS, &with(web("Approve"), "status", "WAITING")),
        Some(1.0)
    );
    assert_eq!(m.get(HEADROOM, &web("Approve")), Some(3540.0));
    assert_eq!(m.get(DURATION, &web("Launch")), None, "filtered out");
    h.shutdown().await;
}

#[tokio::test]
async fn health_readiness_and_methods() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&[])
        .await;
    let (s, _, body) = get(&format!("{}/-/healthy", h.url)).await;
    assert_eq!((s, body.as_str()), (200, "Healthy\n"));
    // Warm-up is not started by the harness: not ready before a scrape.
    let (s, _, _) = get(&format!("{}/-/ready", h.url)).await;
    assert_eq!(s, 503);
    h.scrape().await;
    let (s, _, _) = get(&format!("{}/-/ready", h.url)).await;
    assert_eq!(s, 200);
    let (s, headers, _) = request("POST", &format!("{}/metrics", h.url)).await;
    assert_eq!(s, 405);
    assert_eq!(headers.get("allow").unwrap(), "GET, HEAD");
    let (s, headers, body) = request("HEAD", &format!("{}/metrics", h.url)).await;
    assert_eq!((s, body.as_str()), (200, ""));
    assert!(headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let (s, _, _) = get(&format!("{}/nope", h.url)).await;
    assert_eq!(s, 404);
    let (s, _, body) = get(&format!("{}/", h.url)).await;
    assert_eq!(s, 200);
    assert!(body.contains("href=\"/metrics\""));
    h.shutdown().await;
}

#[tokio::test]
async fn gzip_when_asked() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&[])
        .await;
    let gzip_scrape = || async {
        let (status, headers, body) = raw_request(
            "GET",
            &format!("{}/metrics", h.url),
            &[("accept-encoding", "gzip, deflate")],
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        assert_eq!(headers.get("content-encoding").unwrap(), "gzip");
        // A single-member decoder, as curl and browsers have: the parts
        // compressed once and those compressed per scrape form one member.
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text)
            .unwrap();
        assert!(
            body.len() * 4 < text.len(),
            "{} compressed to {}",
            text.len(),
            body.len()
        );
        text
    };
    let step_lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("imagebuilder_workflow"))
            .map(str::to_string)
            .collect()
    };
    let (_, _, plain) = get(&format!("{}/metrics", h.url)).await;
    let first = gzip_scrape().await;
    assert_eq!(
        step_lines(&first),
        step_lines(&plain),
        "same page, compressed"
    );
    assert!(!step_lines(&plain).is_empty());
    let m = Metrics::parse(&first);
    assert_eq!(m.get(DURATION, &web("Launch")), Some(12.418));
    // The next scrape reuses what was compressed, and still computes the
    // time-dependent values at scrape time.
    let approve = Metrics::parse(&plain)
        .get(DURATION, &web("Approve"))
        .unwrap();
    h.clock.advance_secs(5.0);
    let second = Metrics::parse(&gzip_scrape().await);
    assert_eq!(second.get(DURATION, &web("Launch")), Some(12.418));
    assert_eq!(second.get(DURATION, &web("Approve")), Some(approve + 5.0));
    let (_, headers, _) = raw_request(
        "GET",
        &format!("{}/metrics", h.url),
        &[("accept-encoding", "gzip;q=0, identity")],
    )
    .await
    .unwrap();
    assert!(headers.get("content-encoding").is_none());
    h.shutdown().await;
}

/// A gzip scrape of `url`: the compressed body and its text.
async fn gzip_page(url: &str) -> (Vec<u8>, String) {
    let (status, headers, body) = raw_request(
        "GET",
        &format!("{url}/metrics"),
        &[("accept-encoding", "gzip")],
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(headers.get("content-encoding").unwrap(), "gzip");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text).unwrap();
    (body.to_vec(), text)
}

/// Scrapes that come together share one gzip page: rendered once, not once
/// per scrape. What moves with the clock alone is then up to a second old
/// (two while a newer page is rendered); older, the scrape renders anew.
#[tokio::test]
async fn gzip_scrapes_within_a_second_share_one_page() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&["--refresh.min-interval", "1h"])
        .await;
    let approve = |text: &str| Metrics::parse(text).get(DURATION, &web("Approve")).unwrap();
    let (first, text) = gzip_page(&h.url).await;
    let at_first = approve(&text);
    // Rendered again, the running step's duration would be 0.5 s longer.
    h.clock.advance_secs(0.5);
    assert!(gzip_page(&h.url).await.0 == first, "not the same page");
    // 1.5 s old: served once more, while a newer one is rendered.
    h.clock.advance_secs(1.0);
    assert!(
        gzip_page(&h.url).await.0 == first,
        "not served while a newer one is rendered"
    );
    let newer = async {
        loop {
            let (_, text) = gzip_page(&h.url).await;
            if approve(&text) == at_first + 1.5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), newer)
        .await
        .expect("a newer page, rendered in the background");
    // Over two seconds old: rendered for the scrape that asks.
    h.clock.advance_secs(5.0);
    assert_eq!(approve(&gzip_page(&h.url).await.1), at_first + 6.5);
    // Plain text is rendered for each scrape.
    h.clock.advance_secs(0.25);
    let plain = Metrics::parse(&get(&format!("{}/metrics", h.url)).await.2);
    assert_eq!(plain.get(DURATION, &web("Approve")), Some(at_first + 6.75));
    h.shutdown().await;
}

/// A shared page never hides a change: a refresh that changed only the
/// exporter's own metrics (`imagebuilder_up`, every snapshot as it was) is
/// on the very next gzip scrape.
#[tokio::test]
async fn a_gzip_page_is_not_shared_past_a_refresh() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&[])
        .await;
    let up = |text: &str| Metrics::parse(text).get("imagebuilder_up", &[]);
    assert_eq!(up(&gzip_page(&h.url).await.1), Some(1.0));
    h.sim.set_faults(Faults {
        server_error_ratio: 1.0,
        ..Faults::default()
    });
    // The clock stands still: only the refresh can tell the pages apart.
    assert_eq!(up(&gzip_page(&h.url).await.1), Some(0.0));
    h.shutdown().await;
}

#[tokio::test]
async fn a_slow_api_gets_the_last_snapshot_within_the_scrape_timeout() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&["--scrape.timeout", "300ms"])
        .await;
    let m = h.scrape().await;
    assert_eq!(m.get(DURATION, &web("Launch")), Some(12.418));
    // Every call takes 10 s; half of it is a bound a loaded machine keeps,
    // far above the 300 ms the scrape may wait.
    let latency = Duration::from_secs(10);
    h.sim.set_faults(Faults {
        latency,
        ..Faults::default()
    });
    h.clock.advance_secs(10.0);
    let started = std::time::Instant::now();
    let m = h.scrape().await;
    assert!(started.elapsed() < latency / 2, "{:?}", started.elapsed());
    assert_eq!(
        m.get(DURATION, &web("Launch")),
        Some(12.418),
        "last complete data"
    );
    assert_eq!(
        m.get("imagebuilder_exporter_scrape_timeouts_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        m.get("imagebuilder_exporter_snapshot_age_seconds", &[]),
        Some(10.0)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn unchanged_data_is_not_encoded_again() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&[])
        .await;
    h.scrape().await;
    let target = h.exporter.targets()[0].clone();
    let first = target.current();
    h.clock.advance_secs(5.0);
    let m = h.scrape().await;
    assert!(
        std::sync::Arc::ptr_eq(&first, &target.current()),
        "same data, same snapshot"
    );
    assert_eq!(
        m.get(DURATION, &web("Approve")),
        Some(65.0),
        "live values still move"
    );
    // A step changes: a new snapshot.
    let arn = build_arn("web", 1);
    h.sim.update(|s| {
        if let imagebuilder_sim::store::StepPlan::Fixed(f) =
            &mut s.build_mut(&arn).unwrap().workflows[0].steps[4].plan
        {
            f.status = "RUNNING".into();
            f.start = Some(ts(164.0));
        }
    });
    let m = h.scrape().await;
    assert!(!std::sync::Arc::ptr_eq(&first, &target.current()));
    assert_eq!(m.get(DURATION, &web("Terminate")), Some(1.0));
    h.shutdown().await;
}

#[tokio::test]
async fn step_metrics_carry_no_execution_ids() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&[])
        .await;
    let m = h.scrape().await;
    assert!(
        !m.text.contains("step-"),
        "no step execution ID in the output"
    );
    assert!(
        !m.text.contains("wf-"),
        "no workflow execution ID in the output"
    );
    let _ = NANOS_PER_SEC;
    h.shutdown().await;
}

//! Behaviour under failure: throttling, server errors, connection resets,
//! a slow API, bad answers, resources that disappear. Each case runs the
//! real SDK against the simulator with the fault injected.

use crate::common;

use std::time::{Duration, Instant};

use common::logs::Captured;
use common::*;
use imagebuilder_exporter::aws::retry::RetryPolicy;
use imagebuilder_sim::scenario::{build_arn, Ids};
use imagebuilder_sim::store::Store;
use imagebuilder_sim::{BadAnswer, Faults};

const DURATION: &str = "imagebuilder_workflow_step_duration_seconds";
const ERRORS: &str = "imagebuilder_exporter_api_errors_total";
const INVALID: &str = "imagebuilder_exporter_invalid_data_total";

fn faults_on(op: &str, f: Faults) -> Faults {
    Faults {
        operations: vec![op.into()],
        ..f
    }
}

fn bad(op: &str, answer: BadAnswer) -> Faults {
    faults_on(
        op,
        Faults {
            bad_answer: Some(answer),
            bad_answer_ratio: 1.0,
            ..Faults::default()
        },
    )
}

/// The values every fault test checks survive: last good data kept.
fn assert_last_good(m: &Metrics) {
    assert_eq!(m.get(DURATION, &web("Launch")), Some(12.418));
    assert_eq!(m.get(DURATION, &[("image", "db")]), Some(60.0));
    assert_eq!(
        m.get("imagebuilder_workflow_step_timeout_seconds", &web("Launch")),
        Some(60.0)
    );
}

fn no_negative_durations(m: &Metrics) {
    for s in m
        .samples
        .iter()
        .filter(|s| s.metric.ends_with("_duration_seconds") && !s.metric.contains("exporter"))
    {
        if let prometheus_parse::Value::Gauge(v) = s.value {
            assert!(v >= 0.0, "negative duration exported: {s:?}");
        }
    }
}

#[tokio::test]
async fn thirty_percent_throttling_still_gives_the_exact_snapshot() {
    let clean = World::new(sample_world(), at(160.0))
        .spawn_exporter(&[])
        .await;
    let expected = clean
        .scrape()
        .await
        .text
        .lines()
        .filter(|l| l.starts_with("imagebuilder_workflow_"))
        .map(str::to_string)
        .collect::<Vec<_>>();
    clean.shutdown().await;

    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&["--aws.max-attempts", "20"])
        .await;
    h.sim.set_faults(Faults {
        throttle_ratio: 0.3,
        ..Faults::default()
    });
    let m = h.scrape().await;
    let got: Vec<String> = m
        .text
        .lines()
        .filter(|l| l.starts_with("imagebuilder_workflow_"))
        .map(str::to_string)
        .collect();
    assert_eq!(got, expected);
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));
    // Throttles counted per operation, and they add up to what was sent.
    let per_op = m.label_values(ERRORS, "operation");
    assert!(per_op.len() >= 2, "{per_op:?}");
    let throttled = m.sum(ERRORS, &[("code", "CallRateLimitExceededException")]);
    let sent = m.sum("imagebuilder_exporter_api_requests_total", &[]);
    assert_eq!(sent, h.sim.total_calls() as f64);
    assert!(throttled > 0.0 && throttled < sent);
    h.shutdown().await;
}

#[tokio::test]
async fn throttling_slows_the_client_down_instead_of_a_tight_loop() {
    // The real retry policy (the harness shortens it for other tests).
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter_with(
            &[
                "--aws.max-attempts",
                "4",
                "--aws.max-requests-per-second",
                "50",
            ],
            |o| {
                o.limits.retry = RetryPolicy {
                    max_attempts: 4,
                    ..RetryPolicy::default()
                };
            },
        )
        .await;
    h.sim.set_faults(faults_on(
        "GetWorkflowStepExecution",
        Faults {
            throttle_ratio: 1.0,
            ..Faults::default()
        },
    ));
    let started = Instant::now();
    let m = h.scrape().await;
    let took = started.elapsed();
    let gets = h.sim.calls_to("GetWorkflowStepExecution");
    // Each Get tried exactly max-attempts times...
    assert_eq!(gets % 4, 0);
    assert_eq!(
        m.get(
            ERRORS,
            &[
                ("operation", "GetWorkflowStepExecution"),
                ("code", "CallRateLimitExceededException")
            ]
        ),
        Some(gets as f64)
    );
    // ...waiting at least 200 + 400 + 800 ms between attempts (half of each
    // exponential step is fixed; throttling starts from 400 ms).
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    // The client-side rate was cut while the API throttled.
    let rate = m
        .get(
            "imagebuilder_exporter_api_rate_limit_requests_per_second",
            &[],
        )
        .unwrap();
    assert!(rate < 50.0, "rate limit still {rate}");
    assert_eq!(m.get("imagebuilder_up", &[]), Some(0.0));
    h.shutdown().await;
}

#[tokio::test]
async fn server_errors_are_retried_within_budget_and_the_rest_keeps_exporting() {
    let (logs, _guard) = Captured::start();
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&["--aws.max-attempts", "12"])
        .await;
    // Bursts of 500/503 on half the calls: retried to a complete result
    // (a call fails only if 12 attempts in a row do: 1 in 4096).
    h.sim.set_faults(Faults {
        server_error_ratio: 0.5,
        ..Faults::default()
    });
    let m = h.scrape().await;
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0), "{}", logs.text());
    assert_last_good(&m);
    let errors = m.sum(ERRORS, &[("code", "ServiceException")])
        + m.sum(ERRORS, &[("code", "ServiceUnavailableException")]);
    assert!(errors > 0.0);

    // Now every step listing fails: the running "web" build cannot be read.
    h.sim.set_faults(faults_on(
        "ListWorkflowStepExecutions",
        Faults {
            server_error_ratio: 1.0,
            ..Faults::default()
        },
    ));
    h.sim.reset_calls();
    h.clock.advance_secs(5.0);
    let m = h.scrape().await;
    assert_eq!(
        h.sim.calls_to("ListWorkflowStepExecutions"),
        12,
        "the retry budget, no more"
    );
    assert_eq!(m.get("imagebuilder_up", &[]), Some(0.0));
    assert_last_good(&m);
    assert_eq!(
        m.get(DURATION, &web("Approve")),
        Some(65.0),
        "still moving with time"
    );
    let warned = logs.lines_with(
        "warn",
        &[
            "operation=ListWorkflowStepExecutions",
            "resource=",
            "wf-",
            &build_arn("web", 1),
        ],
    );
    assert_eq!(
        warned.len(),
        1,
        "one warning naming the operation and the resource:\n{}",
        logs.text()
    );

    // Recovered.
    h.sim.set_faults(Faults::default());
    let m = h.scrape().await;
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));
    h.shutdown().await;
}

#[tokio::test]
async fn connection_resets_are_retried_and_counted() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&["--aws.max-attempts", "10"])
        .await;
    h.sim.set_faults(Faults {
        bad_answer: Some(BadAnswer::ConnectionReset),
        bad_answer_ratio: 0.4,
        ..Faults::default()
    });
    let m = h.scrape().await;
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));
    assert_last_good(&m);
    let codes = m.label_values(ERRORS, "code");
    assert!(
        codes.keys().any(|c| c == "connection" || c == "parse"),
        "{codes:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_slow_api_never_holds_a_scrape_past_its_timeout() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&["--scrape.timeout", "250ms"])
        .await;
    h.scrape().await; // a first complete snapshot
                      // Every call takes 10 s: a scrape that waited for the refresh would take
                      // at least that. Half of it is a bound a loaded machine keeps, far above
                      // the 250 ms the scrape may wait.
    let latency = Duration::from_secs(10);
    h.sim.set_faults(Faults {
        latency,
        ..Faults::default()
    });
    for i in 1..=3 {
        h.clock.advance_secs(10.0);
        let started = Instant::now();
        let m = h.scrape().await;
        assert!(
            started.elapsed() < latency / 2,
            "scrape {i} took {:?}",
            started.elapsed()
        );
        assert_last_good(&m);
        assert!(
            m.get("imagebuilder_exporter_snapshot_age_seconds", &[])
                .unwrap()
                >= 10.0
        );
    }
    h.shutdown().await;
}

/// Prometheus says how long it waits (`X-Prometheus-Scrape-Timeout-Seconds`,
/// 10 s by default): a scrape that asks for 3 s, with the API far slower
/// than that, is answered with the last good data once 3 s less the
/// 0.5 s offset have passed, not after `--scrape.timeout`'s 10 s (after
/// which Prometheus would long have recorded the exporter as down).
#[tokio::test]
async fn a_scrape_is_answered_within_the_scrapers_own_timeout() {
    // The defaults: --scrape.timeout 10s, --scrape.timeout-offset 500ms.
    const FLAG: Duration = Duration::from_secs(10);
    const ASKED: &str = "3";
    const WAIT: Duration = Duration::from_millis(2500);
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&[])
        .await;
    h.scrape().await; // a first complete snapshot
                      // Every call takes 6 s: the refresh (at least two calls in a row)
                      // outlasts either timeout.
    h.sim.set_faults(Faults {
        latency: Duration::from_secs(6),
        ..Faults::default()
    });
    h.clock.advance_secs(10.0);
    let started = Instant::now();
    let (status, _, body) = raw_request(
        "GET",
        &format!("{}/metrics", h.url),
        &[("X-Prometheus-Scrape-Timeout-Seconds", ASKED)],
    )
    .await
    .expect("answered");
    let took = started.elapsed();
    assert_eq!(status, 200);
    let m = Metrics::parse(&String::from_utf8_lossy(&body));
    assert_last_good(&m);
    assert_eq!(
        m.get("imagebuilder_exporter_scrape_timeouts_total", &[]),
        Some(1.0),
        "served the previous snapshot because the refresh outlasted the wait"
    );
    // It waited for the refresh as long as it was allowed to, and answered
    // well before the flag's 10 s: the bound is halfway between the two,
    // a margin of seconds that a loaded machine keeps.
    assert!(took >= WAIT, "answered before waiting: {took:?}");
    let bound = WAIT + (FLAG - WAIT) / 2;
    assert!(
        took < bound,
        "a scrape that asked for {ASKED} s took {took:?} (bound {bound:?})"
    );
    h.shutdown().await;
}

/// Runs one bad-answer case: a clean first scrape, then the fault.
async fn after_bad_answer(
    op: &str,
    answer: BadAnswer,
    args: &[&str],
) -> (Harness, Metrics, Duration) {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(args)
        .await;
    h.scrape().await;
    h.sim.set_faults(bad(op, answer));
    h.clock.advance_secs(5.0);
    tokio::time::sleep(Duration::from_millis(5)).await; // past a 1ms discovery interval
    let started = Instant::now();
    let m = h.scrape().await;
    let took = started.elapsed();
    no_negative_durations(&m);
    (h, m, took)
}

#[tokio::test]
async fn unreadable_answers_keep_the_last_good_data() {
    for answer in [
        BadAnswer::MalformedJson,
        BadAnswer::TruncatedBody,
        BadAnswer::WrongTypes,
    ] {
        let (logs, _guard) = Captured::start();
        let (h, m, took) = after_bad_answer(
            "ListWorkflowStepExecutions",
            answer,
            &["--aws.max-attempts", "2"],
        )
        .await;
        assert!(
            took < Duration::from_secs(5),
            "{answer:?} stalled the scrape: {took:?}"
        );
        assert_eq!(m.get("imagebuilder_up", &[]), Some(0.0), "{answer:?}");
        assert_eq!(
            m.get(
                ERRORS,
                &[
                    ("operation", "ListWorkflowStepExecutions"),
                    ("code", "parse")
                ]
            ),
            Some(2.0),
            "{answer:?}"
        );
        assert_last_good(&m);
        assert_eq!(
            logs.lines_with(
                "warn",
                &["code=parse", "operation=ListWorkflowStepExecutions"]
            )
            .len(),
            1,
            "{answer:?}: {}",
            logs.text()
        );
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_next_token_that_repeats_forever_ends_the_listing() {
    let (h, m, took) = after_bad_answer(
        "ListImageBuildVersions",
        BadAnswer::RepeatingToken,
        &["--discovery.interval", "1ms", "--aws.max-attempts", "1"],
    )
    .await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        h.sim.calls_to("ListImageBuildVersions"),
        1 + 2,
        "first page, then the repeat is seen on the second"
    );
    assert_eq!(m.get("imagebuilder_up", &[]), Some(0.0));
    assert_last_good(&m);
    h.shutdown().await;
}

#[tokio::test]
async fn items_without_identifiers_are_skipped_without_losing_data() {
    let (h, m, _) =
        after_bad_answer("ListWorkflowStepExecutions", BadAnswer::MissingField, &[]).await;
    assert!(
        m.get(
            INVALID,
            &[("kind", "unusable_item"), ("field", "stepExecutionId")]
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        m.get("imagebuilder_up", &[]),
        Some(0.0),
        "a partial listing is a partial read"
    );
    assert_last_good(&m);
    h.shutdown().await;
}

#[tokio::test]
async fn a_status_outside_the_enum_is_kept() {
    let (h, m, _) =
        after_bad_answer("ListWorkflowStepExecutions", BadAnswer::UnknownStatus, &[]).await;
    assert_eq!(
        m.get(
            "imagebuilder_workflow_step_status",
            &with(web("Launch"), "status", "SOMETHING_NEW")
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "imagebuilder_workflow_step_status",
            &with(web("Launch"), "status", "COMPLETED")
        ),
        Some(0.0)
    );
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));
    h.shutdown().await;
}

#[tokio::test]
async fn an_end_before_the_start_gives_no_duration() {
    let (h, m, _) =
        after_bad_answer("ListWorkflowStepExecutions", BadAnswer::EndBeforeStart, &[]).await;
    assert_eq!(m.get(DURATION, &web("Launch")), None);
    assert_eq!(
        m.get(
            "imagebuilder_workflow_step_timeout_headroom_seconds",
            &web("Launch")
        ),
        None
    );
    assert!(
        m.get(INVALID, &[("kind", "bad_time"), ("field", "endTime")])
            .unwrap()
            >= 1.0
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_absurd_timeout_is_not_exported() {
    let (logs, _guard) = Captured::start();
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&[])
        .await;
    h.sim
        .set_faults(bad("GetWorkflowStepExecution", BadAnswer::AbsurdTimeout));
    let m = h.scrape().await;
    assert_eq!(
        m.get("imagebuilder_workflow_step_timeout_seconds", &web("Launch")),
        None
    );
    assert_eq!(
        m.get(
            "imagebuilder_workflow_step_timeout_headroom_seconds",
            &web("Launch")
        ),
        None
    );
    assert_eq!(m.get(DURATION, &web("Launch")), Some(12.418));
    assert!(
        m.get(
            INVALID,
            &[("kind", "bad_value"), ("field", "timeoutSeconds")]
        )
        .unwrap()
            >= 1.0
    );
    // Logged once per distinct value, however many refreshes see it.
    let n = logs.lines_with("warn", &["field=timeoutSeconds"]).len();
    assert!(n >= 1);
    h.scrape().await;
    assert_eq!(logs.lines_with("warn", &["field=timeoutSeconds"]).len(), n);
    h.shutdown().await;
}

#[tokio::test]
async fn long_messages_are_shortened_in_logs() {
    let (logs, _guard) = Captured::start();
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&["--aws.max-attempts", "1"])
        .await;
    h.sim.set_faults(Faults {
        server_error_ratio: 1.0,
        bad_answer: Some(BadAnswer::LongMessages),
        operations: vec!["ListImageBuildVersions".into()],
        ..Faults::default()
    });
    let m = h.scrape().await;
    assert_eq!(m.get("imagebuilder_up", &[]), Some(0.0));
    let lines = logs.lines_with("warn", &["operation=ListImageBuildVersions"]);
    assert_eq!(lines.len(), 1, "{}", logs.text());
    assert!(
        lines[0].len() < 800,
        "{} characters: {}",
        lines[0].len(),
        lines[0]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_page_larger_than_asked_is_used_and_reported() {
    let mut ids = Ids::new(5);
    let mut store = Store::default();
    for i in 0..150 {
        store.insert(simple_done_build(
            &mut ids,
            &format!("img-{i:03}"),
            1,
            at(-3600.0),
        ));
    }
    let h = World::new(store, at(0.0)).spawn_exporter(&[]).await;
    h.sim
        .set_faults(bad("ListImageBuildVersions", BadAnswer::OversizedPage));
    let m = h.scrape().await;
    assert_eq!(
        m.get("imagebuilder_exporter_tracked_builds", &[]),
        Some(150.0)
    );
    assert_eq!(m.label_values(DURATION, "image").len(), 150);
    assert_eq!(m.get(INVALID, &[("kind", "oversized_page")]), Some(1.0));
    h.shutdown().await;
}

#[tokio::test]
async fn deleted_resources_leave_cleanly() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&["--discovery.interval", "1ms"])
        .await;
    let m = h.scrape().await;
    assert_eq!(m.get(DURATION, &[("image", "db")]), Some(60.0));

    // The finished "db" build is deleted: gone at the next discovery.
    h.sim.update(|s| s.remove(&build_arn("db", 1)));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let m = h.scrape().await;
    assert_eq!(m.count(DURATION, &[("image", "db")]), 0);
    assert_eq!(
        m.count("imagebuilder_workflow_execution_status", &[("image", "db")]),
        0
    );
    assert_eq!(m.get(DURATION, &web("Launch")), Some(12.418));
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));

    // The running "web" build is deleted between discoveries: its listing
    // says it does not exist, and it leaves at once without an outage.
    let h2 = World::new(sample_world(), at(160.0))
        .spawn_exporter(&[])
        .await;
    h2.scrape().await;
    h2.sim.update(|s| s.remove(&build_arn("web", 1)));
    let m = h2.scrape().await;
    assert_eq!(m.count(DURATION, &[("image", "web")]), 0);
    assert_eq!(m.get(DURATION, &[("image", "db")]), Some(60.0));
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));
    assert_eq!(
        m.get("imagebuilder_exporter_tracked_builds", &[]),
        Some(1.0)
    );
    h.shutdown().await;
    h2.shutdown().await;
}

//! A cold start reads what users see first and the rest afterwards: ready
//! with every image's latest state and the running steps' timeouts, then
//! the backfill, newest first, until the page is exactly what a full read
//! gives, for no more calls. During the backfill a new failure still shows
//! within a refresh or two, and scrapes are answered in time.

use crate::common;

use std::time::Duration;

use common::*;
use imagebuilder_exporter::base::clock::NANOS_PER_SEC;
use imagebuilder_sim::scenario;
use imagebuilder_sim::store::Store;
use imagebuilder_sim::Faults;

const HOUR: i64 = 3600 * NANOS_PER_SEC;

/// 60 finished builds of 3 images over the last 20 hours, 2 running.
fn account() -> Store {
    scenario::sized(at(0.0), 60, 3, 2, 20 * HOUR, 5)
}

/// The lines of the Image Builder families: what the account looks like,
/// without the exporter's own metrics.
fn account_lines(m: &Metrics) -> Vec<&str> {
    m.text
        .lines()
        .filter(|l| l.starts_with("imagebuilder_workflow_") || l.starts_with("imagebuilder_image_"))
        .collect()
}

/// An exporter with the cold start as users get it (ready first, then the
/// backfill), over [`account`]; 20 ms per call once it is ready, so that
/// the backfill takes a while.
async fn start_deferred(args: &[&str]) -> Harness {
    let h = World::new(account(), at(0.0))
        .spawn_exporter_with(args, |o| {
            o.discovery.defer_backfill = true;
        })
        .await;
    h.sim.set_faults(Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    });
    h
}

async fn backfill_done(h: &Harness) -> Metrics {
    for _ in 0..600 {
        let m = h.scrape().await;
        if m.get("imagebuilder_exporter_backfill_pending", &[]) == Some(0.0) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the backfill did not finish");
}

#[tokio::test]
async fn ready_with_the_latest_state_then_the_backfill_then_what_a_full_read_gives() {
    // Scrapes never refresh again after the first: only the backfill moves
    // the page. Latency makes each backfill call take a while, so the page
    // at ready can be read before the backfill changes it.
    let args = [
        "--refresh.min-interval",
        "1h",
        "--scrape.timeout",
        "30s",
        "--aws.max-concurrency",
        "4",
    ];
    let h = start_deferred(&args).await;
    let at_ready = h.scrape().await;
    let calls_at_ready = h.sim.calls();

    // Ready, with reads left.
    assert_eq!(at_ready.get("imagebuilder_exporter_ready", &[]), Some(1.0));
    assert_eq!(at_ready.get("imagebuilder_up", &[]), Some(1.0));
    let pending = at_ready
        .get("imagebuilder_exporter_backfill_pending", &[])
        .expect("pending");
    assert!(pending > 0.0, "{pending}");

    // The full read, to compare with: the same account, read before ready.
    let full = World::new(account(), at(0.0)).spawn_exporter(&args).await;
    let full_page = full.scrape().await;
    let full_calls = full.sim.calls();
    assert_eq!(
        full_page.get("imagebuilder_exporter_backfill_pending", &[]),
        Some(0.0)
    );

    // What is served at ready: the latest state of every step and
    // workflow of every image, the same as the full read's…
    let steps = |m: &Metrics, family: &str| {
        let mut v: Vec<String> = m
            .text
            .lines()
            .filter(|l| l.starts_with(family))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    for family in [
        "imagebuilder_workflow_step_status{",
        "imagebuilder_workflow_step_duration_seconds{",
        "imagebuilder_workflow_step_start_timestamp_seconds{",
        "imagebuilder_workflow_step_end_timestamp_seconds{",
        "imagebuilder_workflow_execution_status{",
        "imagebuilder_workflow_execution_duration_seconds{",
        "imagebuilder_workflow_step_failure_info{",
        "imagebuilder_image_build_status{",
        "imagebuilder_image_last_successful_build_timestamp_seconds{",
    ] {
        assert_eq!(
            steps(&at_ready, family),
            steps(&full_page, family),
            "{family} at ready"
        );
    }
    // …and the timeouts of steps that have started and not ended (the
    // headroom counts from the start); pending and finished steps'
    // timeouts come later.
    let in_flight: usize = ["RUNNING", "WAITING"]
        .iter()
        .map(|s| at_ready.sum("imagebuilder_workflow_step_status", &[("status", s)]) as usize)
        .sum();
    assert!(in_flight > 0);
    assert_eq!(
        at_ready.count("imagebuilder_workflow_step_timeout_seconds", &[]),
        in_flight,
        "only the timeouts of steps in flight at ready"
    );
    assert!(
        full_page.count("imagebuilder_workflow_step_timeout_seconds", &[]) > in_flight,
        "the full read has every latest step's timeout"
    );

    // Fewer calls before ready: no older build, no finished or pending
    // step's details. The backfill starts at ready, so one of its calls
    // (one at a time) may have reached the simulator before it was asked.
    let total = |c: &std::collections::BTreeMap<String, u64>| c.values().sum::<u64>();
    assert!(
        total(&calls_at_ready) * 3 < total(&full_calls),
        "{calls_at_ready:?} vs {full_calls:?}"
    );
    assert!(
        calls_at_ready
            .get("GetWorkflowStepExecution")
            .copied()
            .unwrap_or(0)
            <= in_flight as u64 + 1,
        "{calls_at_ready:?}, {in_flight} in flight"
    );

    // After the backfill: exactly the full read's page, for no more calls.
    let done = backfill_done(&h).await;
    assert_eq!(account_lines(&done), account_lines(&full_page));
    for (op, n) in &h.sim.calls() {
        assert_eq!(
            Some(n),
            full_calls.get(op),
            "{op}: backfilled {:?}, full {full_calls:?}",
            h.sim.calls()
        );
    }
    assert_eq!(
        done.get("imagebuilder_exporter_tracked_step_executions", &[]),
        full_page.get("imagebuilder_exporter_tracked_step_executions", &[])
    );
    full.shutdown().await;
    h.shutdown().await;
}

#[tokio::test]
async fn during_the_backfill_a_new_failure_shows_at_once_and_scrapes_are_answered_in_time() {
    use imagebuilder_sim::scenario::{BuildShape, Ids};
    use imagebuilder_sim::store::Outcome;
    use std::time::Instant;

    // A slow backfill: 10 requests/s, shared with the refreshes that every
    // scrape starts and with a discovery listing due every second.
    // Once ready, every step's details take 4 s: the backfill reads them one
    // at a time, so it cannot finish within a minute whatever the machine's
    // load, and a refresh that reads one outlasts the scrape timeout.
    const DETAILS_LATENCY: Duration = Duration::from_secs(4);
    // Bounds that only end a test that would otherwise hang or catch a
    // scrape that waited for its refresh (--scrape.timeout is 1 s): a
    // loaded machine keeps these margins.
    const ANSWER_BOUND: Duration = Duration::from_secs(3);
    const FAILURE_BOUND: Duration = Duration::from_secs(60);
    let args = [
        "--refresh.min-interval",
        "0s",
        "--discovery.interval",
        "1s",
        "--scrape.timeout",
        "1s",
        "--aws.max-requests-per-second",
        "10",
        "--aws.max-concurrency",
        "4",
    ];
    let h = start_deferred(&args).await;
    let at_ready = loop {
        let m = h.scrape().await;
        if m.get("imagebuilder_exporter_ready", &[]) == Some(1.0) {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    h.sim.set_faults(Faults {
        latency: DETAILS_LATENCY,
        operations: vec!["GetWorkflowStepExecution".into()],
        ..Faults::default()
    });
    let pending_at_ready = at_ready
        .get("imagebuilder_exporter_backfill_pending", &[])
        .expect("pending");
    assert!(pending_at_ready > 10.0, "{pending_at_ready}");

    // A new image's build starts at 1 s and its first step fails 3 s into
    // its first workflow: failed by 11 s.
    let shape = BuildShape {
        speed: 3.0 / 90.0,
        failure: Some((0, 0, Outcome::Failed)),
        ..BuildShape::default()
    };
    h.sim.update(|s| {
        s.insert(scenario::planned_build(
            &mut Ids::new(5),
            "edge",
            1,
            at(1.0),
            &shape,
        ))
    });
    h.clock.advance_secs(11.0);

    // Every scrape answers within its timeout and a margin, not after the
    // refresh it started; the failure shows while the backfill still has
    // reads left.
    let started = Instant::now();
    let (seen, pending) = loop {
        let asked = Instant::now();
        let m = h.scrape().await;
        let took = asked.elapsed();
        assert!(
            took < ANSWER_BOUND,
            "a scrape took {took:?} during the backfill"
        );
        let failed = m.get(
            "imagebuilder_workflow_step_failure_info",
            &[("image", "edge")],
        ) == Some(1.0);
        if failed {
            let pending = m
                .get("imagebuilder_exporter_backfill_pending", &[])
                .expect("pending");
            break (started.elapsed(), pending);
        }
        assert!(
            started.elapsed() < FAILURE_BOUND,
            "the new failure is not served after {:?}:\n{}",
            started.elapsed(),
            m.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("failure served after {seen:?}, {pending} backfill reads left");
    assert!(pending > 0.0, "the backfill had finished already");

    // The backfill still finishes, at the usual pace again.
    h.sim.set_faults(Faults::default());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = h.scrape().await;
        if m.get("imagebuilder_exporter_backfill_pending", &[]) == Some(0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the backfill did not finish");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    h.shutdown().await;
}

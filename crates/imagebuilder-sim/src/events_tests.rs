//! Tests of `events.rs` (a child module, in a file of its own for size).

use super::*;
use crate::clock::NANOS_PER_SEC;
use crate::pipelines::SimSchedule;
use crate::scenario::{self, BuildShape, Ids};
use crate::shapes::summary_json;
use crate::store::Outcome;

const T0: Nanos = 1_788_981_143_418_000_000;
const S: Nanos = NANOS_PER_SEC;

fn parse(events: &[String]) -> Vec<Value> {
    events
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

#[test]
fn a_builds_state_is_constant_between_its_change_times() {
    let mut store = scenario::demo(T0, 7);
    let extra = scenario::stream(T0, 3600 * S, 600 * S, 3, 5);
    for b in extra.visible(Nanos::MAX) {
        store.insert(b.clone());
    }
    let mut checked = 0;
    for b in store.visible(Nanos::MAX) {
        let times = b.change_times();
        for pair in times.windows(2) {
            let (a, z) = (pair[0], pair[1]);
            // The summary holds the status, reason and failure context.
            let at_a = (summary_json(b, a), b.workflow_states(a));
            for x in [a + 1, a + (z - a) / 2, z - 1] {
                assert_eq!(
                    (summary_json(b, x), b.workflow_states(x)),
                    at_a,
                    "{} at {x}",
                    b.arn
                );
            }
            checked += 1;
        }
        let last = *times.last().unwrap();
        assert_eq!(
            summary_json(b, last),
            summary_json(b, last + 365 * 86_400 * S)
        );
        assert_eq!(
            b.workflow_states(last),
            b.workflow_states(last + 365 * 86_400 * S)
        );
    }
    assert!(checked > 10_000, "{checked}");
}

fn waiting_build() -> SimBuild {
    let shape = BuildShape {
        speed: 0.01,
        approval_wait: Some(60 * S),
        failure: Some((1, 0, Outcome::Failed)),
        ..BuildShape::default()
    };
    scenario::planned_build(&mut Ids::new(3), "web", 9, T0 + 10 * S, &shape)
}

#[test]
fn events_follow_a_build_from_creation_to_failure() {
    let mut store = Store::default();
    store.insert(waiting_build());
    let mut p = Publisher::new(&store, T0, 1);
    assert!(p.tick(&store, T0 + 5 * S).is_empty(), "not created yet");
    let e = parse(&p.tick(&store, T0 + 10 * S));
    assert_eq!(e.len(), 1);
    let arn = scenario::build_arn("web", 9);
    assert_eq!(e[0]["detail-type"], STATE_CHANGE);
    assert_eq!(e[0]["source"], "aws.imagebuilder");
    assert_eq!(e[0]["account"], ACCOUNT);
    assert_eq!(e[0]["region"], REGION);
    assert_eq!(e[0]["version"], "0");
    assert_eq!(e[0]["resources"], json!([arn]));
    assert_eq!(e[0]["time"], format_seconds(T0 + 10 * S));
    assert!(e[0]["time"].as_str().unwrap().ends_with(":33Z"));
    assert_eq!(e[0]["detail"], json!({ "state": { "status": "PENDING" } }));
    // One tick much later: every transition on the way, in order.
    let e = parse(&p.tick(&store, T0 + 3600 * S));
    let kinds: Vec<String> = e
        .iter()
        .map(|e| match e["detail-type"].as_str().unwrap() {
            STATE_CHANGE => format!(
                "{}->{}",
                e["detail"]["previous-state"]["status"].as_str().unwrap(),
                e["detail"]["state"]["status"].as_str().unwrap()
            ),
            _ => format!(
                "waiting {}",
                e["detail"]["workflow-step-name"].as_str().unwrap()
            ),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "PENDING->BUILDING",
            "waiting WaitForApproval",
            "BUILDING->TESTING",
            "TESTING->FAILED"
        ]
    );
    let waiting = &e[1];
    assert_eq!(waiting["resources"][0], arn);
    assert!(waiting["resources"][1]
        .as_str()
        .unwrap()
        .contains(":workflow/build/"));
    let step_id = waiting["detail"]["workflow-step-execution-id"]
        .as_str()
        .unwrap();
    assert!(store.step(step_id).is_some());
    let wf_id = waiting["detail"]["workflow-execution-id"].as_str().unwrap();
    assert!(store.workflow(wf_id).is_some());
    let failed = &e[3]["detail"]["state"];
    assert!(
        failed["reason"].as_str().unwrap().contains("failed"),
        "{failed}"
    );
    let times: Vec<&str> = e.iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(p.tick(&store, T0 + 7200 * S).is_empty(), "nothing more");
    // Distinct event IDs.
    let mut ids: Vec<&str> = e.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 4);
}

#[test]
fn changes_through_update_are_published() {
    let mut store = scenario::sized(T0, 50, 5, 0, 3600 * S, 1);
    let mut p = Publisher::new(&store, T0, 1);
    assert!(!p.due(T0 + 3600 * S), "finished builds never come due");
    // A fixed build added with a past creation time, then changed.
    let mut b = waiting_build();
    b.arn = scenario::build_arn("late", 1);
    b.date_created = T0 - 3600 * S;
    b.fixed_status = Some("BUILDING".into());
    store.insert(b);
    p.touch(store.take_touched());
    let e = parse(&p.tick(&store, T0 + S));
    assert_eq!(e.len(), 1, "appears as it is now");
    assert_eq!(e[0]["detail"]["state"]["status"], "BUILDING");
    let arn = scenario::build_arn("late", 1);
    store.build_mut(&arn).unwrap().fixed_status = Some("CANCELLED".into());
    p.touch(store.take_touched());
    let e = parse(&p.tick(&store, T0 + 2 * S));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["detail"]["previous-state"]["status"], "BUILDING");
    assert_eq!(e[0]["detail"]["state"]["status"], "CANCELLED");
    store.remove(&arn);
    p.touch(store.take_touched());
    assert!(p.tick(&store, T0 + 3 * S).is_empty());
    assert!(!p.seen.contains_key(&arn));
}

#[test]
fn ticks_evaluate_only_the_builds_that_change() {
    // The demo: ~1,000 builds, most in the future.
    let store = scenario::demo(T0, 7);
    let mut p = Publisher::new(&store, T0, 7);
    let visible = store.visible(T0).count() as u64;
    assert_eq!(p.evaluations, visible);
    let mut now = T0;
    let mut events = 0;
    for _ in 0..600 {
        now += S / 10;
        if p.due(now) {
            events += p.tick(&store, now).len();
        }
    }
    // A minute of demo: a build or two created, a few steps moving.
    assert!(events >= 1, "{events}");
    assert!(p.evaluations - visible < 60, "{}", p.evaluations - visible);

    // 5,000 finished builds and 20 running ones.
    let store = scenario::sized(T0, 5000, 50, 20, 20 * 3600 * S, 1);
    let mut p = Publisher::new(&store, T0, 1);
    let start = p.evaluations;
    let mut now = T0;
    for _ in 0..600 {
        now += S / 10;
        if p.due(now) {
            p.tick(&store, now);
        }
    }
    assert!(p.evaluations - start <= 20 * 3, "{}", p.evaluations - start);
}

#[test]
fn times_are_to_the_second() {
    assert_eq!(format_seconds(T0), "2026-09-09T19:12:23Z");
}

/// A pipeline disabled at its second failed scheduled build: build 1
/// failed before `T0`, build 2 (created at `T0`) fails at `fail_at`,
/// build 3 (created at `T0 + 600 s`) is never started.
fn disabling_pipeline() -> (Store, Nanos) {
    let mut store = Store::default();
    let mut p = scenario::pipeline(
        "web",
        Some(SimSchedule::new("rate(10 minutes)", 600 * S, T0)),
    );
    p.schedule.as_mut().unwrap().failure_count = Some(2);
    store.insert_pipeline(p);
    let shape = BuildShape {
        speed: 0.05,
        failure: Some((0, 2, Outcome::Failed)),
        ..BuildShape::default()
    };
    let mut ids = Ids::new(4);
    for (n, created) in [(1, T0 - 600 * S), (2, T0), (3, T0 + 600 * S)] {
        let mut b = scenario::planned_build(&mut ids, "web", n, created, &shape);
        b.pipeline_arn = Some(scenario::pipeline_arn("web"));
        store.insert(b);
    }
    let fail_at = store
        .build(&scenario::build_arn("web", 2), Nanos::MAX)
        .and_then(|b| b.finished())
        .unwrap()
        .0;
    (store, fail_at)
}

#[test]
fn a_pipeline_disabled_by_its_count_is_published_once() {
    let (store, fail_at) = disabling_pipeline();
    let mut p = Publisher::new(&store, T0 - S, 1);
    assert!(p.due(T0), "build 2 appears");
    let e = parse(&p.tick(&store, fail_at - 1));
    assert!(e.iter().all(|e| e["detail-type"] == STATE_CHANGE));
    assert!(!p.due(fail_at - 1));
    assert!(p.due(fail_at));
    let e = parse(&p.tick(&store, fail_at + 60 * S));
    let kinds: Vec<&str> = e
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [STATE_CHANGE, PIPELINE_DISABLED],
        "FAILED, then disabled"
    );
    let d = &e[1];
    assert_eq!(d["source"], "aws.imagebuilder");
    assert_eq!(d["account"], ACCOUNT);
    assert_eq!(d["region"], REGION);
    assert_eq!(d["time"], format_seconds(fail_at));
    assert_eq!(d["resources"], json!([scenario::pipeline_arn("web")]));
    assert_eq!(
        d["detail"],
        json!({
            "pipeline-arn": scenario::pipeline_arn("web"),
            "pipeline-name": "web",
            "consecutive-failures": 2,
            "failure-count": 2,
        })
    );
    // Nothing more: not again, and build 3 never appears.
    assert!(p.tick(&store, T0 + 7200 * S).is_empty());
}

#[test]
fn a_pipeline_disabled_by_a_change_is_published_then() {
    let (mut store, fail_at) = disabling_pipeline();
    // Without build 2, it never disables itself.
    let b2 = store.remove(&scenario::build_arn("web", 2)).unwrap();
    let mut p = Publisher::new(&store, T0, 1);
    assert!(p
        .tick(&store, fail_at + 60 * S)
        .iter()
        .all(|e| !e.contains(PIPELINE_DISABLED)));
    // Build 2 put back: its failure is past, the pipeline disabled now.
    store.insert(b2);
    p.touch(store.take_touched());
    let now = fail_at + 120 * S;
    let e = parse(&p.tick(&store, now));
    let d: Vec<&Value> = e
        .iter()
        .filter(|e| e["detail-type"] == PIPELINE_DISABLED)
        .collect();
    assert_eq!(d.len(), 1, "{e:?}");
    assert_eq!(d[0]["time"], format_seconds(now));
    // Enabled again by hand-editing its policy, then disabled again.
    store
        .pipeline_mut(&scenario::pipeline_arn("web"))
        .unwrap()
        .schedule
        .as_mut()
        .unwrap()
        .failure_count = Some(3);
    p.touch(store.take_touched());
    assert!(p.tick(&store, now + S).is_empty());
    store
        .pipeline_mut(&scenario::pipeline_arn("web"))
        .unwrap()
        .schedule
        .as_mut()
        .unwrap()
        .failure_count = Some(2);
    p.touch(store.take_touched());
    assert_eq!(parse(&p.tick(&store, now + 2 * S)).len(), 1);
}

#[test]
fn the_demo_s_pipeline_disables_itself_in_its_first_minutes() {
    let store = scenario::demo(T0, 7);
    let mut p = Publisher::new(&store, T0, 7);
    let mut disabled = Vec::new();
    let mut now = T0;
    while now < T0 + 600 * S {
        now += S;
        if p.due(now) {
            for e in parse(&p.tick(&store, now)) {
                if e["detail-type"] == PIPELINE_DISABLED {
                    disabled.push((now - T0) / S);
                    assert_eq!(
                        e["resources"],
                        json!([scenario::pipeline_arn("hardened-base")])
                    );
                }
            }
        }
    }
    assert_eq!(disabled.len(), 1, "{disabled:?}");
    assert!((120..240).contains(&disabled[0]), "{disabled:?}");
}

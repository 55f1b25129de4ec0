//! Tests of `build.rs`: planned builds moving with time, failing, and
//! distributing; and the builds other tests start from.

use std::collections::BTreeMap;

use crate::build::*;
use crate::clock::{Nanos, NANOS_PER_SEC};

pub(crate) const S: Nanos = 1_788_981_143_418_000_000;

pub(crate) fn step(id: &str, secs: i64, outcome: Outcome) -> SimStep {
    SimStep {
        id: id.into(),
        name: format!("Step{id}"),
        action: "ExecuteComponents".into(),
        description: String::new(),
        timeout_seconds: Some(600),
        on_failure: "Abort".into(),
        plan: StepPlan::Timed {
            duration: secs * NANOS_PER_SEC,
            outcome,
            running_status: "RUNNING",
        },
        failure_message: format!("step {id} broke"),
        rollback: "COMPLETED",
        attempt: 1,
        max_attempts: 1,
    }
}

pub(crate) fn build(outcome2: Outcome) -> SimBuild {
    SimBuild {
        arn: "arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/1".into(),
        name: "web".into(),
        version: "1.0.0/1".into(),
        date_created: S,
        workflows: vec![
            SimWorkflow {
                id: "wf-1".into(),
                arn: "arn:wf/build".into(),
                workflow_type: "BUILD".into(),
                steps: vec![
                    step("1", 10, Outcome::Completed),
                    step("2", 20, outcome2),
                    step("3", 5, Outcome::Completed),
                ],
                fixed: None,
                retried: false,
                parallel_group: None,
            },
            SimWorkflow {
                id: "wf-2".into(),
                arn: "arn:wf/test".into(),
                workflow_type: "TEST".into(),
                steps: vec![step("4", 10, Outcome::Completed)],
                fixed: None,
                retried: false,
                parallel_group: None,
            },
        ],
        fixed_status: None,
        reason: None,
        tags: BTreeMap::new(),
        log_group: None,
        build_type: "SCHEDULED".into(),
        pipeline_arn: None,
        failure_context: None,
        distribution: None,
    }
}

pub(crate) fn at(s: i64) -> Nanos {
    S + s * NANOS_PER_SEC
}

#[test]
fn a_planned_build_moves_with_time() {
    let b = build(Outcome::Completed);
    assert_eq!(b.status(at(0)), "PENDING");
    assert!(b.workflow_states(at(0)).is_empty());
    let w = b.workflow_states(at(20));
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].1.status, "RUNNING");
    let s: Vec<&str> = w[0].1.steps.iter().map(|s| s.status.as_str()).collect();
    assert_eq!(s, ["COMPLETED", "RUNNING", "PENDING"]);
    assert_eq!(b.status(at(20)), "BUILDING");
    assert_eq!(b.status(at(45)), "TESTING");
    assert_eq!(b.status(at(50)), "AVAILABLE");
    let w = b.workflow_states(at(50));
    assert_eq!(
        w[1].1.end.as_deref(),
        Some(crate::timestamp::format_rfc3339_millis(at(50)).as_str())
    );
}

#[test]
fn a_failure_skips_the_rest_and_stops_the_build() {
    let b = build(Outcome::Failed);
    let w = b.workflow_states(at(100));
    assert_eq!(w.len(), 1, "TEST never ran");
    let s: Vec<&str> = w[0].1.steps.iter().map(|s| s.status.as_str()).collect();
    assert_eq!(s, ["COMPLETED", "FAILED", "SKIPPED"]);
    assert_eq!(w[0].1.status, "FAILED");
    assert_eq!(b.status(at(100)), "FAILED");
    // The steps that ran were rolled back; the failure says why.
    let r: Vec<Option<&str>> = w[0]
        .1
        .steps
        .iter()
        .map(|s| s.rollback_status.as_deref())
        .collect();
    assert_eq!(r, [Some("COMPLETED"), Some("COMPLETED"), None]);
    assert_eq!(w[0].1.steps[1].message.as_deref(), Some("step 2 broke"));
    assert_eq!(
        b.reason(at(100)).as_deref(),
        Some("Workflow step Step2 failed: step 2 broke")
    );
    // During the rollback, right after the failure.
    let w = b.workflow_states(at(36));
    assert_eq!(w[0].1.steps[0].rollback_status.as_deref(), Some("RUNNING"));
    assert_eq!(b.reason(at(20)), None);
}

fn distributing(outcome2: Outcome) -> SimBuild {
    let mut b = build(outcome2);
    b.distribution = Some(DistributionPlan {
        duration: 60 * NANOS_PER_SEC,
        message: "Distribution failed in eu-west-1".into(),
        regions: Vec::new(),
    });
    b
}

#[test]
fn a_distribution_follows_the_workflows_then_fails() {
    // BUILD ends at 40 s, TEST at 50 s; the distribution runs 60 s.
    let b = distributing(Outcome::Completed);
    assert_eq!(b.status(at(49)), "TESTING");
    assert_eq!(b.status(at(50)), "DISTRIBUTING");
    assert_eq!(b.status(at(109)), "DISTRIBUTING");
    assert_eq!(b.reason(at(109)), None);
    assert_eq!(b.status(at(110)), "FAILED");
    assert_eq!(
        b.reason(at(110)).as_deref(),
        Some("Distribution failed in eu-west-1")
    );
    assert!(b.distribution_failed(&b.workflow_states(at(110)), at(110)));
    assert!(!b.distribution_failed(&b.workflow_states(at(109)), at(109)));
    let times = b.change_times();
    assert!(
        times.contains(&at(50)) && times.contains(&at(110)),
        "{times:?}"
    );
    assert_eq!(b.finished(), Some((at(110), "FAILED".to_string())));
    // Without one, the same build is AVAILABLE when TEST ends.
    assert_eq!(
        build(Outcome::Completed).finished(),
        Some((at(50), "AVAILABLE".to_string()))
    );
}

#[test]
fn a_build_that_fails_first_never_distributes() {
    let b = distributing(Outcome::Failed);
    assert_eq!(b.finished(), Some((at(35), "FAILED".to_string())));
    assert_eq!(b.status(at(1000)), "FAILED");
    assert!(!b.distribution_failed(&b.workflow_states(at(1000)), at(1000)));
    assert_eq!(
        b.reason(at(1000)).as_deref(),
        Some("Workflow step Step2 failed: step 2 broke")
    );
}

#[test]
fn a_fixed_status_is_final_from_creation_or_never() {
    let mut b = build(Outcome::Completed);
    b.fixed_status = Some("FAILED".into());
    b.distribution = distributing(Outcome::Completed).distribution;
    assert_eq!(b.finished(), Some((S, "FAILED".to_string())));
    assert!(!b.distribution_failed(&b.workflow_states(at(1000)), at(1000)));
    b.fixed_status = Some("BUILDING".into());
    assert_eq!(b.finished(), None);
}

//! The API's JSON shapes of simulated resources (`ImageSummary`,
//! `WorkflowExecutionMetadata`, `WorkflowStepMetadata`), as the service
//! model names their fields.

use serde_json::{json, Map, Value};

use super::store::{SimBuild, SimStep, SimWorkflow, StepState, WorkflowState};
use crate::clock::Nanos;
use crate::timestamp::format_rfc3339_millis as fmt;

/// `ImageSummary` as JSON.
pub fn summary_json(b: &SimBuild, now: Nanos) -> Value {
    let mut state = Map::new();
    state.insert("status".into(), json!(b.status(now)));
    if let Some(r) = b.reason(now) {
        state.insert("reason".into(), json!(r));
    }
    let mut v = json!({
        "arn": b.arn,
        "name": b.name,
        "type": "AMI",
        "version": b.version,
        "platform": "Linux",
        "osVersion": "Amazon Linux 2023",
        "state": state,
        "owner": b.arn.split(':').nth(4).unwrap_or_default(),
        "dateCreated": fmt(b.date_created),
        "buildType": b.build_type,
        "imageSource": "CUSTOM",
    });
    if !b.tags.is_empty() {
        v["tags"] = json!(b.tags);
    }
    if let Some(g) = &b.log_group {
        v["loggingConfiguration"] = json!({ "logGroupName": g });
    }
    v
}

/// `WorkflowExecutionMetadata` as JSON.
pub fn workflow_json(w: &SimWorkflow, st: &WorkflowState) -> Value {
    let count = |s: &str| st.steps.iter().filter(|x| x.status == s).count();
    let mut m = Map::new();
    m.insert("workflowBuildVersionArn".into(), json!(w.arn));
    m.insert("workflowExecutionId".into(), json!(w.id));
    m.insert("type".into(), json!(w.workflow_type));
    m.insert("status".into(), json!(st.status));
    m.insert("totalStepCount".into(), json!(w.steps.len()));
    m.insert("totalStepsSucceeded".into(), json!(count("COMPLETED")));
    m.insert("totalStepsFailed".into(), json!(count("FAILED")));
    m.insert("totalStepsSkipped".into(), json!(count("SKIPPED")));
    if let Some(s) = &st.start {
        m.insert("startTime".into(), json!(s));
    }
    if let Some(e) = &st.end {
        m.insert("endTime".into(), json!(e));
    }
    if let Some(x) = &st.message {
        m.insert("message".into(), json!(x));
    }
    if w.retried {
        m.insert("retried".into(), json!(true));
    }
    if let Some(g) = &w.parallel_group {
        m.insert("parallelGroup".into(), json!(g));
    }
    Value::Object(m)
}

/// `WorkflowStepMetadata` as JSON.
pub fn step_json(s: &SimStep, st: &StepState) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("stepExecutionId".into(), json!(s.id));
    m.insert("name".into(), json!(s.name));
    m.insert("description".into(), json!(s.description));
    m.insert("action".into(), json!(s.action));
    m.insert("status".into(), json!(st.status));
    m.insert("inputs".into(), json!("{}"));
    if st.status == "COMPLETED" {
        m.insert("outputs".into(), json!("{}"));
    }
    if let Some(x) = &st.start {
        m.insert("startTime".into(), json!(x));
    }
    if let Some(x) = &st.end {
        m.insert("endTime".into(), json!(x));
    }
    if let Some(x) = &st.rollback_status {
        m.insert("rollbackStatus".into(), json!(x));
    }
    if let Some(x) = &st.message {
        m.insert("message".into(), json!(x));
    }
    m.insert("attemptNumber".into(), json!(s.attempt));
    m.insert("maxAttempts".into(), json!(s.max_attempts));
    m
}

//! The API's JSON shapes of simulated resources (`ImageSummary` with its
//! `ImageFailureContext`, `WorkflowExecutionMetadata`,
//! `WorkflowStepMetadata`, `ImagePipeline`), as the service model names
//! their fields.

use serde_json::{json, Map, Value};

use crate::clock::Nanos;
use crate::failure::{component_json, derived_component, distribution_json, SimFailureContext};
use crate::pipelines::{PipelineState, SimPipeline};
use crate::store::{SimBuild, SimStep, SimWorkflow, StepPlan, StepState, WorkflowState};
use crate::timestamp::format_rfc3339_millis as fmt;

/// `ImageSummary` as JSON.
pub fn summary_json(b: &SimBuild, now: Nanos) -> Value {
    let states = b.workflow_states(now);
    let status = b.status_of(&states, now);
    let mut state = Map::new();
    state.insert("status".into(), json!(status));
    if let Some(r) = b.reason(now) {
        state.insert("reason".into(), json!(r));
    }
    if let Some(c) = failure_context(b, &states, &status, now) {
        state.insert("failureContext".into(), c);
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

/// `ImagePipeline` as JSON, in state `st`: the literal answer if the
/// pipeline has one. Never `dateLastRun`, which the service no longer
/// fills in; `dateNextRun` only while it runs on a schedule.
pub fn pipeline_json(p: &SimPipeline, st: &PipelineState) -> Value {
    if let Some(v) = &p.fixed {
        return v.clone();
    }
    // The configurations live in the pipeline's account and Region.
    let prefix = p
        .arn
        .split_once(":image-pipeline/")
        .map_or("arn:aws:imagebuilder:us-east-1:123456789012", |(a, _)| a);
    let id = p.arn.rsplit('/').next().unwrap_or_default();
    let mut m = Map::new();
    m.insert("arn".into(), json!(p.arn));
    m.insert("name".into(), json!(p.name));
    if let Some(d) = &p.description {
        m.insert("description".into(), json!(d));
    }
    m.insert("platform".into(), json!("Linux"));
    m.insert("enhancedImageMetadataEnabled".into(), json!(true));
    if let Some(a) = &p.image_recipe_arn {
        m.insert("imageRecipeArn".into(), json!(a));
    }
    if let Some(a) = &p.container_recipe_arn {
        m.insert("containerRecipeArn".into(), json!(a));
    }
    m.insert(
        "infrastructureConfigurationArn".into(),
        json!(format!("{prefix}:infrastructure-configuration/{id}")),
    );
    m.insert(
        "distributionConfigurationArn".into(),
        json!(format!("{prefix}:distribution-configuration/{id}")),
    );
    m.insert(
        "imageTestsConfiguration".into(),
        json!({ "imageTestsEnabled": true, "timeoutMinutes": 720 }),
    );
    if let Some(s) = &p.schedule {
        let mut o = Map::new();
        o.insert("scheduleExpression".into(), json!(s.expression));
        if let Some(t) = &s.timezone {
            o.insert("timezone".into(), json!(t));
        }
        if let Some(c) = &s.start_condition {
            o.insert("pipelineExecutionStartCondition".into(), json!(c));
        }
        if let Some(n) = s.failure_count {
            o.insert("autoDisablePolicy".into(), json!({ "failureCount": n }));
        }
        m.insert("schedule".into(), Value::Object(o));
    }
    m.insert("status".into(), json!(st.status));
    m.insert("dateCreated".into(), json!(fmt(p.date_created)));
    m.insert(
        "dateUpdated".into(),
        json!(fmt(p.date_updated.unwrap_or(p.date_created))),
    );
    if let Some(s) = &st.last_run_status {
        m.insert("lastRunStatus".into(), json!(s));
    }
    if let Some(t) = st.next_run {
        m.insert("dateNextRun".into(), json!(fmt(t)));
    }
    m.insert("consecutiveFailures".into(), json!(st.consecutive_failures));
    if !p.tags.is_empty() {
        m.insert("tags".into(), json!(p.tags));
    }
    Value::Object(m)
}

/// The image status a failure in a workflow of this type happened in.
fn image_status_of(workflow_type: &str) -> &'static str {
    match workflow_type {
        "TEST" => "TESTING",
        "DISTRIBUTION" => "DISTRIBUTING",
        _ => "BUILDING",
    }
}

/// `ImageFailureContext` at `now`, given the build's workflow states and
/// status then: the literal one if set, else, for a FAILED build, its
/// failed distribution, or the failed step of a planned workflow (with a
/// `componentFailure` when the step ran components). Fixed builds have
/// none unless set: their values are literal.
pub fn failure_context(
    b: &SimBuild,
    states: &[(&SimWorkflow, WorkflowState)],
    status: &str,
    now: Nanos,
) -> Option<Value> {
    if let Some(SimFailureContext::Fixed(v)) = &b.failure_context {
        return Some(v.clone());
    }
    if status != "FAILED" {
        return None;
    }
    // The workflow that failed and its (first) failed step.
    let failed = states.iter().rev().find_map(|(w, st)| {
        (st.status == "FAILED").then_some(())?;
        let (s, _) = w
            .steps
            .iter()
            .zip(&st.steps)
            .find(|(_, ss)| ss.status == "FAILED")?;
        Some((*w, s))
    });
    let step_context = |w: &SimWorkflow, s: &SimStep| {
        let mut m = Map::new();
        m.insert(
            "imageStatus".into(),
            json!(image_status_of(&w.workflow_type)),
        );
        m.insert("workflowExecutionId".into(), json!(w.id));
        m.insert("workflowArn".into(), json!(w.arn));
        m.insert("stepExecutionId".into(), json!(s.id));
        m.insert("failedStep".into(), json!(s.name));
        m
    };
    let distribution = |message: Option<&str>, regions| {
        json!({
            "imageStatus": "DISTRIBUTING",
            "distributionFailure": distribution_json(message, regions),
        })
    };
    match &b.failure_context {
        Some(SimFailureContext::Fixed(v)) => Some(v.clone()),
        Some(SimFailureContext::Distribution { message, regions }) => {
            Some(distribution(message.as_deref(), regions))
        }
        Some(SimFailureContext::Component {
            failed_step,
            component_arn,
            phase,
            step,
            action,
            message,
        }) => {
            let mut m = match failed {
                Some((w, s)) => step_context(w, s),
                None => {
                    let mut m = Map::new();
                    m.insert("imageStatus".into(), json!("BUILDING"));
                    m
                }
            };
            if let Some(f) = failed_step {
                m.insert("failedStep".into(), json!(f));
            }
            m.insert(
                "componentFailure".into(),
                component_json(component_arn, phase, step, action, message),
            );
            Some(Value::Object(m))
        }
        None if b.distribution_failed(states, now) => {
            let d = b.distribution.as_ref()?;
            Some(distribution(Some(&d.message), &d.regions))
        }
        None => {
            let (w, s) = failed?;
            if w.fixed.is_some() || !matches!(s.plan, StepPlan::Timed { .. }) {
                return None;
            }
            let mut m = step_context(w, s);
            if s.action == "ExecuteComponents" {
                let phase = if w.workflow_type == "TEST" {
                    "test"
                } else {
                    "build"
                };
                m.insert(
                    "componentFailure".into(),
                    derived_component(&b.arn, &b.name, phase, &s.failure_message),
                );
            }
            Some(Value::Object(m))
        }
    }
}

#[cfg(test)]
#[path = "shapes_tests.rs"]
pub(crate) mod tests;

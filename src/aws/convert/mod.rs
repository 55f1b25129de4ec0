//! Pure conversions from SDK output types to the project's model.
//!
//! Nothing here does I/O, so every rule about bad answers (missing fields,
//! unparseable times, absurd values) is unit-tested without a server. A bad
//! field never invents a value: it becomes absent and is reported as a
//! [`DataIssue`]; an item that cannot be identified is skipped and reported.

mod account;
mod failure;
mod pipeline;

pub use account::account;

use std::sync::Arc;

use aws_sdk_imagebuilder::operation::get_workflow_step_execution::GetWorkflowStepExecutionOutput;
use aws_sdk_imagebuilder::types::{ImageSummary, WorkflowExecutionMetadata, WorkflowStepMetadata};

use super::issue_kind::{BAD_TIME, BAD_VALUE, MISSING_FIELD, OVERSIZED_PAGE, UNUSABLE_ITEM};
use super::{shorten, DataIssue, Operation};
use crate::base::clock::Nanos;
use crate::base::timestamp::parse_rfc3339;
use crate::model::{
    label_text, Build, BuildStatus, RollbackStatus, StepDetail, StepExecution, StepLimits,
    StepStatus, WorkflowExecution, WorkflowStatus, WorkflowType,
};

/// The service model's bound for `timeoutSeconds` (`WorkflowStepTimeoutSecondsInteger`).
pub const MAX_TIMEOUT_SECONDS: i64 = 43_200;

/// Collects the issues of one answer, tagged with its operation.
pub struct Issues {
    op: Operation,
    pub list: Vec<DataIssue>,
}

impl Issues {
    pub fn new(op: Operation) -> Self {
        Self {
            op,
            list: Vec::new(),
        }
    }

    fn push(&mut self, kind: &'static str, field: &'static str, detail: impl AsRef<str>) {
        self.list.push(DataIssue {
            operation: self.op,
            kind,
            field,
            detail: shorten(detail.as_ref(), 120),
        });
    }

    fn required<'a>(
        &mut self,
        field: &'static str,
        v: Option<&'a str>,
        ctx: &str,
    ) -> Option<&'a str> {
        match v.filter(|s| !s.is_empty()) {
            Some(s) => Some(s),
            None => {
                self.push(UNUSABLE_ITEM, field, format!("item skipped ({ctx})"));
                None
            }
        }
    }

    fn time(&mut self, field: &'static str, v: Option<&str>, ctx: &str) -> Option<Nanos> {
        let s = v.filter(|s| !s.is_empty())?;
        match parse_rfc3339(s) {
            Ok(t) => Some(t),
            Err(e) => {
                self.push(
                    BAD_TIME,
                    field,
                    format!("{s:?} is {e} ({ctx}); treated as absent"),
                );
                None
            }
        }
    }

    /// An end before the start cannot give a duration; both times stay as
    /// the API sent them (they are exported as timestamps) but no duration
    /// will be computed, and the answer is reported.
    fn order(&mut self, start: Option<Nanos>, end: Option<Nanos>, ctx: &str) {
        if let (Some(s), Some(e)) = (start, end) {
            if e < s {
                self.push(
                    BAD_TIME,
                    "endTime",
                    format!("endTime before startTime ({ctx}); no duration"),
                );
            }
        }
    }

    /// A page holding more than was asked for: the items are kept (they
    /// are real), the answer is reported.
    pub fn page_size(&mut self, got: usize, asked: usize) {
        if got > asked {
            self.push(
                OVERSIZED_PAGE,
                "maxResults",
                format!("{got} items in a page of at most {asked}"),
            );
        }
    }

    fn count(&mut self, field: &'static str, v: i32, ctx: &str) -> Option<i64> {
        if v < 0 {
            self.push(BAD_VALUE, field, format!("{v} is negative ({ctx})"));
            None
        } else {
            Some(i64::from(v))
        }
    }
}

/// `ImageSummary` → [`Build`]. Skipped (with an issue) without an ARN.
pub fn build(s: &ImageSummary, issues: &mut Issues) -> Option<Build> {
    let arn = issues.required("arn", s.arn(), "image build version")?;
    let name = match s.name().filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        // The ARN's name segment is a usable, if lower-cased, fallback.
        None => {
            issues.push(
                MISSING_FIELD,
                "name",
                format!("{arn}: name taken from the ARN"),
            );
            crate::model::parse_arn(arn)
                .map(|p| p.name.to_string())
                .unwrap_or_else(|| arn.to_string())
        }
    };
    let status = match s.state().and_then(|st| st.status()) {
        Some(st) => BuildStatus::parse(st.as_str()),
        None => {
            issues.push(
                MISSING_FIELD,
                "state.status",
                format!("{arn}: treated as in flight"),
            );
            BuildStatus::Other(Arc::from("UNKNOWN"))
        }
    };
    Some(Build {
        arn: Arc::from(arn),
        name: Arc::from(name),
        version: s.version().unwrap_or_default().to_string(),
        status,
        date_created: issues.time("dateCreated", s.date_created(), arn),
        reason: s.state().and_then(|st| st.reason()).and_then(text),
        build_type: s.build_type().map(|t| t.as_str().to_string()),
        log_group: s
            .logging_configuration()
            .and_then(|l| l.log_group_name())
            .filter(|g| !g.is_empty())
            .map(str::to_string),
        tags: s
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        failure: s
            .state()
            .and_then(|st| st.failure_context())
            .map(|f| failure::context(f, arn, issues)),
    })
}

pub use pipeline::pipeline;

/// `WorkflowExecutionMetadata` → [`WorkflowExecution`]. Skipped without an
/// execution ID or a workflow ARN (it could not be labelled or followed).
pub fn workflow_execution(
    w: &WorkflowExecutionMetadata,
    issues: &mut Issues,
) -> Option<WorkflowExecution> {
    let id = issues.required(
        "workflowExecutionId",
        w.workflow_execution_id(),
        "workflow execution",
    )?;
    let arn = issues.required(
        "workflowBuildVersionArn",
        w.workflow_build_version_arn(),
        id,
    )?;
    let workflow_type = match w.r#type() {
        Some(t) => WorkflowType::parse(t.as_str()),
        None => crate::model::workflow_type_from_arn(arn).unwrap_or_else(|| {
            issues.push(MISSING_FIELD, "type", format!("{id}: type unknown"));
            WorkflowType::Other(Arc::from("UNKNOWN"))
        }),
    };
    let status = match w.status() {
        Some(s) => WorkflowStatus::parse(s.as_str()),
        None => {
            issues.push(
                MISSING_FIELD,
                "status",
                format!("{id}: treated as in flight"),
            );
            WorkflowStatus::Other(Arc::from("UNKNOWN"))
        }
    };
    let start = issues.time("startTime", w.start_time(), id);
    let end = issues.time("endTime", w.end_time(), id);
    issues.order(start, end, id);
    Some(WorkflowExecution {
        id: id.to_string(),
        workflow_arn: Arc::from(arn),
        workflow_type,
        status,
        total_steps: issues.count("totalStepCount", w.total_step_count(), id),
        steps_succeeded: issues.count("totalStepsSucceeded", w.total_steps_succeeded(), id),
        steps_failed: issues.count("totalStepsFailed", w.total_steps_failed(), id),
        steps_skipped: issues.count("totalStepsSkipped", w.total_steps_skipped(), id),
        start,
        end,
        message: w.message().and_then(text),
        retried: w.retried().unwrap_or(false),
        parallel_group: w
            .parallel_group()
            .filter(|g| !g.is_empty())
            .map(str::to_string),
    })
}

/// A free-text field as a label may show it; nothing when it is empty.
fn text(s: &str) -> Option<String> {
    Some(label_text(s)).filter(|t| !t.is_empty())
}

/// The fields a listed step and a fetched step have in common.
struct StepFields<'a> {
    id: Option<&'a str>,
    name: Option<&'a str>,
    action: Option<&'a str>,
    status: Option<&'a str>,
    start: Option<&'a str>,
    end: Option<&'a str>,
    attempt: Option<i32>,
    max_attempts: Option<i32>,
    rollback_status: Option<&'a str>,
    message: Option<&'a str>,
}

fn step_fields(f: StepFields<'_>, issues: &mut Issues) -> Option<StepExecution> {
    let id = issues.required("stepExecutionId", f.id, "step execution")?;
    let name = issues.required("name", f.name, id)?;
    let action = issues.required("action", f.action, id)?;
    let status = match f.status {
        Some(s) if !s.is_empty() => StepStatus::parse(s),
        _ => {
            issues.push(
                MISSING_FIELD,
                "status",
                format!("{id}: treated as in flight"),
            );
            StepStatus::Other(Arc::from("UNKNOWN"))
        }
    };
    let start = issues.time("startTime", f.start, id);
    let end = issues.time("endTime", f.end, id);
    issues.order(start, end, id);
    Some(StepExecution {
        id: id.to_string(),
        name: Arc::from(name),
        action: Arc::from(action),
        status,
        start,
        end,
        attempt: f.attempt,
        max_attempts: f.max_attempts,
        rollback_status: f
            .rollback_status
            .filter(|r| !r.is_empty())
            .map(RollbackStatus::parse),
        message: f.message.and_then(text),
    })
}

/// `WorkflowStepMetadata` → [`StepExecution`].
pub fn step_execution(s: &WorkflowStepMetadata, issues: &mut Issues) -> Option<StepExecution> {
    step_fields(
        StepFields {
            id: s.step_execution_id(),
            name: s.name(),
            action: s.action(),
            status: s.status().map(|s| s.as_str()),
            start: s.start_time(),
            end: s.end_time(),
            attempt: s.attempt_number(),
            max_attempts: s.max_attempts(),
            rollback_status: s.rollback_status().map(|r| r.as_str()),
            message: s.message(),
        },
        issues,
    )
}

/// `GetWorkflowStepExecutionOutput` → [`StepDetail`]. A `timeoutSeconds`
/// outside the model's 0–43200 is dropped: a headroom computed from it
/// would be a wrong value.
pub fn step_detail(o: &GetWorkflowStepExecutionOutput, issues: &mut Issues) -> Option<StepDetail> {
    let step = step_fields(
        StepFields {
            id: o.step_execution_id(),
            name: o.name(),
            action: o.action(),
            status: o.status().map(|s| s.as_str()),
            start: o.start_time(),
            end: o.end_time(),
            attempt: o.attempt_number(),
            max_attempts: o.max_attempts(),
            rollback_status: o.rollback_status().map(|r| r.as_str()),
            message: o.message(),
        },
        issues,
    )?;
    let timeout_seconds = match o.timeout_seconds() {
        Some(t) if (0..=MAX_TIMEOUT_SECONDS).contains(&i64::from(t)) => Some(i64::from(t)),
        Some(t) => {
            issues.push(
                BAD_VALUE,
                "timeoutSeconds",
                format!(
                    "{t} is outside 0..={MAX_TIMEOUT_SECONDS} ({}); treated as absent",
                    step.id
                ),
            );
            None
        }
        None => None,
    };
    Some(StepDetail {
        workflow_arn: o.workflow_build_version_arn().map(Arc::from),
        workflow_execution_id: o.workflow_execution_id().map(str::to_string),
        build_arn: o.image_build_version_arn().map(Arc::from),
        limits: StepLimits { timeout_seconds },
        on_failure: o.on_failure().map(str::to_string),
        step,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_imagebuilder::types::{
        BuildType, ImageLoggingConfiguration, ImageState, ImageStatus, WorkflowExecutionStatus,
        WorkflowStepExecutionRollbackStatus, WorkflowStepExecutionStatus,
    };

    const T0: &str = "2026-09-09T19:12:23.418Z";
    const T1: &str = "2026-09-09T19:14:35.836Z";
    const ARN: &str = "arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/1";

    fn issues(op: Operation) -> Issues {
        Issues::new(op)
    }

    #[test]
    fn build_converts_all_fields() {
        let s = ImageSummary::builder()
            .arn(ARN)
            .name("Web Server")
            .version("1.0.0/1")
            .state(
                ImageState::builder()
                    .status(ImageStatus::Failed)
                    .reason("Instance profile\n  is invalid")
                    .build(),
            )
            .date_created(T0)
            .build_type(BuildType::Scheduled)
            .logging_configuration(
                ImageLoggingConfiguration::builder()
                    .log_group_name("/team/web")
                    .build(),
            )
            .tags("team", "platform")
            .tags("env", "prod")
            .build();
        let mut i = issues(Operation::ListImageBuildVersions);
        let b = build(&s, &mut i).unwrap();
        assert_eq!(&*b.arn, ARN);
        assert_eq!(&*b.name, "Web Server");
        assert_eq!(b.status, BuildStatus::Failed);
        assert_eq!(b.date_created, Some(1_788_981_143_418_000_000));
        assert_eq!(b.reason.as_deref(), Some("Instance profile is invalid"));
        assert_eq!(b.build_type.as_deref(), Some("SCHEDULED"));
        assert_eq!(b.log_group(), "/team/web");
        assert_eq!(b.tags.get("team").map(String::as_str), Some("platform"));
        assert_eq!(b.tags.len(), 2);
        assert!(i.list.is_empty());
    }

    #[test]
    fn build_defaults_its_log_group_and_has_no_reason_when_none_is_given() {
        let s = ImageSummary::builder()
            .arn(ARN)
            .name("Web Server")
            .state(
                ImageState::builder()
                    .status(ImageStatus::Available)
                    .reason("")
                    .build(),
            )
            .build();
        let b = build(&s, &mut issues(Operation::ListImageBuildVersions)).unwrap();
        assert_eq!(b.reason, None);
        assert_eq!(b.log_group(), "/aws/imagebuilder/Web Server");
        assert!(b.tags.is_empty());
    }

    #[test]
    fn step_keeps_rollback_message_and_attempts() {
        let s = WorkflowStepMetadata::builder()
            .step_execution_id("step-1")
            .name("ApplyBuildComponents")
            .action("ExecuteComponents")
            .status(WorkflowStepExecutionStatus::Failed)
            .rollback_status(WorkflowStepExecutionRollbackStatus::Failed)
            .message(format!("Component \"nginx\" failed:\n{}", "x".repeat(300)))
            .attempt_number(2)
            .max_attempts(3)
            .build();
        let mut i = issues(Operation::ListWorkflowStepExecutions);
        let st = step_execution(&s, &mut i).unwrap();
        assert_eq!(st.rollback_status, Some(RollbackStatus::Failed));
        assert_eq!((st.attempt, st.max_attempts), (Some(2), Some(3)));
        let m = st.message.unwrap();
        assert!(m.starts_with("Component \"nginx\" failed: xxx"), "{m}");
        assert_eq!(m.chars().count(), 200);
        let w = WorkflowExecutionMetadata::builder()
            .workflow_execution_id("wf-1")
            .workflow_build_version_arn(
                "arn:aws:imagebuilder:us-east-1:aws:workflow/test/test-image/1.0.0/1",
            )
            .status(WorkflowExecutionStatus::Failed)
            .message("Workflow failed")
            .retried(true)
            .parallel_group("group-a")
            .build();
        let we = workflow_execution(&w, &mut issues(Operation::ListWorkflowExecutions)).unwrap();
        assert_eq!(we.message.as_deref(), Some("Workflow failed"));
        assert!(we.retried);
        assert_eq!(we.parallel_group.as_deref(), Some("group-a"));
    }

    #[test]
    fn build_without_arn_is_skipped_and_reported() {
        let s = ImageSummary::builder().name("x").build();
        let mut i = issues(Operation::ListImageBuildVersions);
        assert!(build(&s, &mut i).is_none());
        assert_eq!(i.list[0].kind, "unusable_item");
        assert_eq!(i.list[0].field, "arn");
    }

    #[test]
    fn build_without_state_counts_as_in_flight() {
        let s = ImageSummary::builder().arn(ARN).name("web").build();
        let mut i = issues(Operation::ListImageBuildVersions);
        let b = build(&s, &mut i).unwrap();
        assert!(!b.status.is_terminal());
        assert_eq!(i.list.len(), 1);
    }

    #[test]
    fn step_keeps_unknown_status_and_parses_times() {
        let s = WorkflowStepMetadata::builder()
            .step_execution_id("step-1")
            .name("Approve")
            .action("WaitForAction")
            .status(WorkflowStepExecutionStatus::from("WAITING"))
            .start_time(T0)
            .build();
        let mut i = issues(Operation::ListWorkflowStepExecutions);
        let st = step_execution(&s, &mut i).unwrap();
        assert_eq!(st.status.as_str(), "WAITING");
        assert_eq!(st.start, Some(1_788_981_143_418_000_000));
        assert_eq!(st.end, None);
        assert!(i.list.is_empty());
    }

    #[test]
    fn malformed_time_becomes_absent_and_is_reported() {
        let s = WorkflowStepMetadata::builder()
            .step_execution_id("step-1")
            .name("Build")
            .action("BuildImage")
            .status(WorkflowStepExecutionStatus::Completed)
            .start_time("09/09/2026 19:12")
            .end_time(T1)
            .build();
        let mut i = issues(Operation::ListWorkflowStepExecutions);
        let st = step_execution(&s, &mut i).unwrap();
        assert_eq!(st.start, None);
        assert_eq!(st.duration(), None);
        assert_eq!(i.list.len(), 1);
        assert_eq!(i.list[0].kind, "bad_time");
        assert_eq!(i.list[0].field, "startTime");
    }

    #[test]
    fn end_before_start_gives_no_duration() {
        let s = WorkflowStepMetadata::builder()
            .step_execution_id("step-1")
            .name("Build")
            .action("BuildImage")
            .status(WorkflowStepExecutionStatus::Completed)
            .start_time(T1)
            .end_time(T0)
            .build();
        let mut i = issues(Operation::ListWorkflowStepExecutions);
        let st = step_execution(&s, &mut i).unwrap();
        assert_eq!(st.duration(), None);
        assert_eq!(i.list[0].field, "endTime");
    }

    #[test]
    fn step_without_name_is_skipped() {
        let s = WorkflowStepMetadata::builder()
            .step_execution_id("step-1")
            .build();
        let mut i = issues(Operation::ListWorkflowStepExecutions);
        assert!(step_execution(&s, &mut i).is_none());
        assert_eq!(i.list[0].field, "name");
    }

    #[test]
    fn workflow_type_falls_back_to_the_arn() {
        let w = WorkflowExecutionMetadata::builder()
            .workflow_execution_id("wf-1")
            .workflow_build_version_arn(
                "arn:aws:imagebuilder:us-east-1:aws:workflow/test/test-image/1.0.0/1",
            )
            .status(WorkflowExecutionStatus::RollbackCompleted)
            .total_step_count(4)
            .total_steps_failed(-1)
            .start_time(T0)
            .end_time(T1)
            .build();
        let mut i = issues(Operation::ListWorkflowExecutions);
        let we = workflow_execution(&w, &mut i).unwrap();
        assert_eq!(we.workflow_type, WorkflowType::Test);
        assert_eq!(we.status, WorkflowStatus::RollbackCompleted);
        assert_eq!(we.total_steps, Some(4));
        assert_eq!(we.steps_failed, None);
        assert_eq!(we.duration(), Some(132_418_000_000));
        assert_eq!(i.list.len(), 1);
    }

    #[test]
    fn absurd_timeout_is_dropped() {
        let base = || {
            GetWorkflowStepExecutionOutput::builder()
                .step_execution_id("step-1")
                .name("Build")
                .action("BuildImage")
                .status(WorkflowStepExecutionStatus::Running)
        };
        let mut i = issues(Operation::GetWorkflowStepExecution);
        let d = step_detail(&base().timeout_seconds(7200).build(), &mut i).unwrap();
        assert_eq!(d.limits.timeout_seconds, Some(7200));
        let d = step_detail(&base().timeout_seconds(-5).build(), &mut i).unwrap();
        assert_eq!(d.limits.timeout_seconds, None);
        let d = step_detail(&base().timeout_seconds(999_999).build(), &mut i).unwrap();
        assert_eq!(d.limits.timeout_seconds, None);
        assert_eq!(i.list.len(), 2);
    }
}

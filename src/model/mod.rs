//! The project's own model of Image Builder resources.
//!
//! The AWS client converts SDK types into these (see `aws::convert`), so that
//! discovery, snapshots and tests never depend on SDK types. Statuses are
//! "open" enums: a value outside the service model (a `WaitForAction` step
//! reports `WAITING`) is kept verbatim instead of being dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::base::clock::Nanos;

macro_rules! open_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant,)+
            /// A value the service model does not list, kept as sent.
            Other(::std::sync::Arc<str>),
        }

        impl $name {
            /// The values the service model lists, in its order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            pub fn parse(s: &str) -> Self {
                match s {
                    $($s => $name::$variant,)+
                    other => $name::Other(::std::sync::Arc::from(other)),
                }
            }

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $s,)+
                    $name::Other(s) => s,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod account;
mod failure;
mod pipeline;

pub use account::{Account, AccountState};

pub use failure::{
    component_name, ComponentFailure, DistributionFailure, FailureContext, RegionFailure,
};
pub use pipeline::{Pipeline, PipelineStatus, Schedule, DEFAULT_AUTO_DISABLE_FAILURE_COUNT};

open_enum! {
    /// `WorkflowStepExecutionStatus`.
    StepStatus {
        Pending => "PENDING",
        Skipped => "SKIPPED",
        Running => "RUNNING",
        Completed => "COMPLETED",
        Failed => "FAILED",
        Cancelled => "CANCELLED",
    }
}

impl StepStatus {
    /// A terminal step never changes again, so it is fetched once.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::Skipped
        )
    }
}

open_enum! {
    /// `WorkflowExecutionStatus`.
    WorkflowStatus {
        Pending => "PENDING",
        Skipped => "SKIPPED",
        Running => "RUNNING",
        Completed => "COMPLETED",
        Failed => "FAILED",
        RollbackInProgress => "ROLLBACK_IN_PROGRESS",
        RollbackCompleted => "ROLLBACK_COMPLETED",
        Cancelled => "CANCELLED",
    }
}

impl WorkflowStatus {
    /// The terminal states as the API documentation lists them.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed
                | Self::Failed
                | Self::RollbackCompleted
                | Self::Cancelled
                | Self::Skipped
        )
    }
}

open_enum! {
    /// `ImageStatus`: the state of an image build.
    BuildStatus {
        Pending => "PENDING",
        Creating => "CREATING",
        Building => "BUILDING",
        Testing => "TESTING",
        Distributing => "DISTRIBUTING",
        Integrating => "INTEGRATING",
        Available => "AVAILABLE",
        Cancelled => "CANCELLED",
        Failed => "FAILED",
        Deprecated => "DEPRECATED",
        Deleted => "DELETED",
        Disabled => "DISABLED",
    }
}

impl BuildStatus {
    /// Whether the build has finished creating. Unknown states count as in
    /// flight: polling a little too long is cheaper than missing a step.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Available
                | Self::Cancelled
                | Self::Failed
                | Self::Deprecated
                | Self::Deleted
                | Self::Disabled
        )
    }
}

open_enum! {
    /// `WorkflowStepExecutionRollbackStatus`: how the rollback of a step
    /// went, when the workflow failed and rolled back.
    RollbackStatus {
        Running => "RUNNING",
        Completed => "COMPLETED",
        Skipped => "SKIPPED",
        Failed => "FAILED",
    }
}

open_enum! {
    /// `WorkflowType`.
    WorkflowType {
        Build => "BUILD",
        Test => "TEST",
        Distribution => "DISTRIBUTION",
    }
}

/// The operations the exporter calls; the `operation` label of its API metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    ListImageBuildVersions,
    ListWorkflowExecutions,
    ListWorkflowStepExecutions,
    GetWorkflowStepExecution,
    ListImagePipelines,
    /// SQS, when the exporter follows Image Builder's events.
    ReceiveMessage,
    DeleteMessageBatch,
    /// AWS Organizations, with an `organization` section in the targets
    /// file.
    ListAccounts,
}

impl Operation {
    /// The Image Builder operations (the `operation` label of the API
    /// metrics, made to exist from the start).
    pub const ALL: [Operation; 5] = [
        Operation::ListImageBuildVersions,
        Operation::ListWorkflowExecutions,
        Operation::ListWorkflowStepExecutions,
        Operation::GetWorkflowStepExecution,
        Operation::ListImagePipelines,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::ListImageBuildVersions => "ListImageBuildVersions",
            Operation::ListWorkflowExecutions => "ListWorkflowExecutions",
            Operation::ListWorkflowStepExecutions => "ListWorkflowStepExecutions",
            Operation::GetWorkflowStepExecution => "GetWorkflowStepExecution",
            Operation::ListImagePipelines => "ListImagePipelines",
            Operation::ReceiveMessage => "ReceiveMessage",
            Operation::DeleteMessageBatch => "DeleteMessageBatch",
            Operation::ListAccounts => "ListAccounts",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One image build version, from `ListImageBuildVersions`.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub arn: Arc<str>,
    /// The image's name as its owner wrote it (the `image` label).
    pub name: Arc<str>,
    pub version: String,
    pub status: BuildStatus,
    pub date_created: Option<Nanos>,
    /// `state.reason`, made safe as a label value ([`label_text`]).
    pub reason: Option<String>,
    /// `buildType` (`SCHEDULED`, `USER_INITIATED`, …).
    pub build_type: Option<String>,
    /// `loggingConfiguration.logGroupName`; `None` means the service's
    /// default, `/aws/imagebuilder/<image name>` (see [`Build::log_group`]).
    pub log_group: Option<String>,
    /// The build's tags, by key.
    pub tags: BTreeMap<String, String>,
    /// `state.failureContext`: where a failed build failed, when the
    /// service says.
    pub failure: Option<FailureContext>,
}

impl Build {
    /// The CloudWatch log group the build writes to: its logging
    /// configuration's, or the service's default for the image.
    pub fn log_group(&self) -> String {
        match &self.log_group {
            Some(g) => g.clone(),
            None => format!("/aws/imagebuilder/{}", self.name),
        }
    }
}

/// One run of a workflow for a build, from `ListWorkflowExecutions`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowExecution {
    pub id: String,
    pub workflow_arn: Arc<str>,
    pub workflow_type: WorkflowType,
    pub status: WorkflowStatus,
    pub total_steps: Option<i64>,
    pub steps_succeeded: Option<i64>,
    pub steps_failed: Option<i64>,
    pub steps_skipped: Option<i64>,
    pub start: Option<Nanos>,
    pub end: Option<Nanos>,
    /// `message`, made safe as a label value ([`label_text`]).
    pub message: Option<String>,
    /// A retry of the image build superseded this execution.
    pub retried: bool,
    /// The test group that ran it (`parallelGroup`).
    pub parallel_group: Option<String>,
}

impl WorkflowExecution {
    /// Completed duration in nanoseconds, when both ends are known and sane.
    pub fn duration(&self) -> Option<Nanos> {
        span(self.start, self.end)
    }
}

/// One run of one workflow step, from `ListWorkflowStepExecutions`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepExecution {
    pub id: String,
    pub name: Arc<str>,
    pub action: Arc<str>,
    pub status: StepStatus,
    pub start: Option<Nanos>,
    pub end: Option<Nanos>,
    pub attempt: Option<i32>,
    pub max_attempts: Option<i32>,
    pub rollback_status: Option<RollbackStatus>,
    /// `message`, made safe as a label value ([`label_text`]).
    pub message: Option<String>,
}

impl StepExecution {
    /// Completed duration, when both ends are known and `end >= start`.
    /// An end before the start is a bad answer, not a negative duration.
    pub fn duration(&self) -> Option<Nanos> {
        span(self.start, self.end)
    }
}

/// What only `GetWorkflowStepExecution` tells: the step's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepLimits {
    pub timeout_seconds: Option<i64>,
}

/// The full answer of `GetWorkflowStepExecution`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDetail {
    pub step: StepExecution,
    pub workflow_arn: Option<Arc<str>>,
    pub workflow_execution_id: Option<String>,
    pub build_arn: Option<Arc<str>>,
    pub limits: StepLimits,
    pub on_failure: Option<String>,
}

/// The longest text a label takes from a message or reason, in characters.
pub const MAX_LABEL_TEXT: usize = 200;

/// A free-text field made safe as a label value: one line (every run of
/// whitespace or control characters becomes one space), trimmed, at most
/// [`MAX_LABEL_TEXT`] characters, cut with an ellipsis. Characters, not
/// bytes, are counted, so the cut never splits a UTF-8 sequence. Messages
/// are kept only in this form: it bounds memory and the label's size.
///
/// ```
/// use imagebuilder_exporter::model::label_text;
/// assert_eq!(label_text("  Step failed:\n  exit code 1 "), "Step failed: exit code 1");
/// assert_eq!(label_text(&"é".repeat(300)).chars().count(), 200);
/// ```
pub fn label_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(4 * MAX_LABEL_TEXT));
    let mut count = 0;
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = count > 0;
            continue;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(c);
        count += 1;
        if count > MAX_LABEL_TEXT {
            break;
        }
    }
    if count > MAX_LABEL_TEXT {
        let cut: String = out.chars().take(MAX_LABEL_TEXT - 1).collect();
        return format!("{}…", cut.trim_end());
    }
    out
}

/// `end − start` when both are known and in order. Checked: two valid
/// times can be further apart than `Nanos` can hold.
pub fn span(start: Option<Nanos>, end: Option<Nanos>) -> Option<Nanos> {
    match (start, end) {
        (Some(s), Some(e)) if e >= s => e.checked_sub(s),
        _ => None,
    }
}

/// The parts of an Image Builder ARN that become labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnParts<'a> {
    pub region: &'a str,
    pub account_id: &'a str,
    /// `image`, `workflow/build`, …
    pub resource_type: &'a str,
    /// The lower-case name segment.
    pub name: &'a str,
}

/// Splits `arn:aws:imagebuilder:us-east-1:123456789012:image/name/1.0.0/3`.
pub fn parse_arn(arn: &str) -> Option<ArnParts<'_>> {
    let mut it = arn.splitn(6, ':');
    if it.next()? != "arn" {
        return None;
    }
    let _partition = it.next()?;
    if it.next()? != "imagebuilder" {
        return None;
    }
    let region = it.next()?;
    let account_id = it.next()?;
    let resource = it.next()?;
    let (resource_type, name) = if let Some(rest) = resource.strip_prefix("workflow/") {
        let (kind, rest) = rest.split_once('/')?;
        (
            &resource[..("workflow/".len() + kind.len())],
            rest.split('/').next()?,
        )
    } else {
        let (kind, rest) = resource.split_once('/')?;
        (kind, rest.split('/').next()?)
    };
    if region.is_empty() || account_id.is_empty() || name.is_empty() {
        return None;
    }
    Some(ArnParts {
        region,
        account_id,
        resource_type,
        name,
    })
}

/// The workflow type encoded in a workflow ARN (`…:workflow/test/…` → TEST).
pub fn workflow_type_from_arn(arn: &str) -> Option<WorkflowType> {
    let parts = parse_arn(arn)?;
    let kind = parts.resource_type.strip_prefix("workflow/")?;
    Some(WorkflowType::parse(&kind.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_status_is_kept_verbatim() {
        let s = StepStatus::parse("WAITING");
        assert_eq!(s.as_str(), "WAITING");
        assert!(!s.is_terminal());
        assert_eq!(StepStatus::parse("FAILED"), StepStatus::Failed);
        assert_eq!(StepStatus::KNOWN.len(), 6);
        assert_eq!(WorkflowStatus::KNOWN.len(), 8);
    }

    #[test]
    fn terminal_sets_follow_the_api_docs() {
        let terminal: Vec<_> = StepStatus::KNOWN
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(terminal, ["SKIPPED", "COMPLETED", "FAILED", "CANCELLED"]);
        let terminal: Vec<_> = WorkflowStatus::KNOWN
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            terminal,
            [
                "SKIPPED",
                "COMPLETED",
                "FAILED",
                "ROLLBACK_COMPLETED",
                "CANCELLED"
            ]
        );
        assert!(!BuildStatus::parse("SOMETHING_NEW").is_terminal());
        assert!(BuildStatus::Available.is_terminal());
    }

    #[test]
    fn durations_refuse_end_before_start() {
        let mut s = StepExecution {
            id: "step-1".into(),
            name: "a".into(),
            action: "b".into(),
            status: StepStatus::Completed,
            start: Some(10),
            end: Some(5),
            attempt: None,
            max_attempts: None,
            rollback_status: None,
            message: None,
        };
        assert_eq!(s.duration(), None);
        s.end = Some(15);
        assert_eq!(s.duration(), Some(5));
        s.start = None;
        assert_eq!(s.duration(), None);
    }

    #[test]
    fn label_text_is_one_trimmed_line_of_at_most_200_characters() {
        assert_eq!(label_text(""), "");
        assert_eq!(label_text(" \n\t "), "");
        assert_eq!(
            label_text("Failed:\r\n\t\"install\" \u{0} exited 1\n"),
            "Failed: \"install\" exited 1"
        );
        let exact = "a".repeat(200);
        assert_eq!(label_text(&exact), exact);
        let long = label_text(&"ab".repeat(150));
        assert_eq!(long.chars().count(), 200);
        assert!(long.ends_with('…'));
        // Multi-byte characters are cut whole.
        let wide = label_text(&"日本".repeat(150));
        assert_eq!(wide.chars().count(), 200);
        assert!(wide.starts_with("日本日本"));
        // A space at the cut does not end up before the ellipsis.
        let spaced = label_text(&format!("{} tail", "x".repeat(198)));
        assert_eq!(spaced, format!("{}…", "x".repeat(198)));
        assert_eq!(RollbackStatus::parse("FAILED"), RollbackStatus::Failed);
        assert_eq!(RollbackStatus::KNOWN.len(), 4);
    }

    #[test]
    fn arns_split_into_labels() {
        let p = parse_arn("arn:aws:imagebuilder:eu-west-1:123456789012:image/web-server/1.2.3/4")
            .unwrap();
        assert_eq!(
            p,
            ArnParts {
                region: "eu-west-1",
                account_id: "123456789012",
                resource_type: "image",
                name: "web-server"
            }
        );
        let w = "arn:aws:imagebuilder:us-east-1:aws:workflow/test/test-image/1.0.0/1";
        assert_eq!(parse_arn(w).unwrap().resource_type, "workflow/test");
        assert_eq!(workflow_type_from_arn(w), Some(WorkflowType::Test));
        assert_eq!(parse_arn("arn:aws:s3:::bucket"), None);
        assert_eq!(parse_arn("garbage"), None);
    }
}

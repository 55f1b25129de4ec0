//! The narrow Image Builder client the exporter needs.
//!
//! Discovery talks to [`ImageBuilderApi`], which speaks the project's model
//! types, never SDK types. The real implementation ([`sdk::SdkClient`]) wraps
//! the AWS SDK with our own retry policy, a client-side rate limit and a
//! concurrency limit; tests can substitute a fake without HTTP.

pub mod convert;
pub mod environment;
pub mod errors;
pub mod organizations;
pub mod ratelimit;
pub mod retry;
pub mod sdk;
pub mod sqs;

use std::fmt;
use std::future::Future;

use crate::model::{Build, Pipeline, StepDetail, StepExecution, WorkflowExecution};

pub use crate::model::Operation;

/// `sts:AssumeRole` into another account: the target's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
}

/// A call that failed after retries. `code()` is the `code` label of
/// `imagebuilder_exporter_api_errors_total`. Each reads as one line that
/// names the cause and, where it is the configuration's, the fix (see
/// [`errors`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The service answered with an error (`x-amzn-ErrorType`).
    #[error("{operation} failed: {}", errors::service_line(*.operation, .code, .message, *.status))]
    Service {
        operation: Operation,
        code: String,
        message: String,
        status: u16,
    },
    #[error("{operation} timed out (--aws.request-timeout)")]
    Timeout { operation: Operation },
    /// The endpoint could not be reached: the message names the host, the
    /// region and what to check.
    #[error("{operation}: {message}")]
    Connection {
        operation: Operation,
        message: String,
    },
    /// No credentials could be had: none in the chain, or a role that
    /// cannot be assumed. Not retried: it is the configuration's to fix.
    /// `code` is the error code of the service that refused them (STS's
    /// `AccessDenied` for a role whose trust does not name the exporter),
    /// when one did: the `code` label of the API error counter.
    #[error("{operation}: {message}")]
    Credentials {
        operation: Operation,
        message: String,
        code: Option<String>,
    },
    /// The answer could not be read: malformed JSON, wrong types, a
    /// pagination token that never ends.
    #[error("{operation} returned a malformed answer: {message}")]
    Parse {
        operation: Operation,
        message: String,
    },
    /// The request could not be built from the configuration (an invalid
    /// region): nothing was sent, and retrying will not help.
    #[error("{operation}: {message}")]
    Configuration {
        operation: Operation,
        message: String,
    },
}

impl ApiError {
    pub fn code(&self) -> &str {
        match self {
            ApiError::Service { code, .. } => code,
            ApiError::Timeout { .. } => "timeout",
            ApiError::Connection { .. } => "connection",
            ApiError::Credentials { code, .. } => code.as_deref().unwrap_or("credentials"),
            ApiError::Parse { .. } => "parse",
            ApiError::Configuration { .. } => "configuration",
        }
    }

    pub fn operation(&self) -> Operation {
        match self {
            ApiError::Service { operation, .. }
            | ApiError::Timeout { operation }
            | ApiError::Connection { operation, .. }
            | ApiError::Credentials { operation, .. }
            | ApiError::Parse { operation, .. }
            | ApiError::Configuration { operation, .. } => *operation,
        }
    }

    /// Throttling: retried, and slows the client down.
    pub fn is_throttle(&self) -> bool {
        matches!(self, ApiError::Service { code, status, .. }
            if *status == 429 || code == "CallRateLimitExceededException" || code == "ThrottlingException"
                || code == "TooManyRequestsException")
    }

    /// Worth another attempt: throttling, server-side errors, timeouts,
    /// connection failures and garbled answers (often a cut connection).
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Service { status, .. } => self.is_throttle() || *status >= 500,
            ApiError::Timeout { .. } | ApiError::Connection { .. } | ApiError::Parse { .. } => true,
            ApiError::Credentials { .. } | ApiError::Configuration { .. } => false,
        }
    }

    /// Retrying will not fix it: a denied action, missing credentials, a
    /// refused role, an invalid region. A target whose first refresh ends
    /// so does not hold the exporter's readiness (see `refresh`).
    pub fn is_lasting(&self) -> bool {
        !self.is_retryable()
    }

    /// The resource does not exist (any more): a definite answer, not an outage.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Service { code, status, .. }
            if *status == 404 || code == "ResourceNotFoundException"
                || (code == "InvalidRequestException" && *status == 400))
    }
}

/// The `kind` of a [`DataIssue`].
pub mod issue_kind {
    /// An item without its identifier: skipped.
    pub const UNUSABLE_ITEM: &str = "unusable_item";
    /// An optional field missing; the item is kept.
    pub const MISSING_FIELD: &str = "missing_field";
    /// A time that is not RFC 3339, or an end before the start.
    pub const BAD_TIME: &str = "bad_time";
    /// A number out of the model's range.
    pub const BAD_VALUE: &str = "bad_value";
    /// A page with more items than asked for (they are kept).
    pub const OVERSIZED_PAGE: &str = "oversized_page";
}

/// Something wrong inside an otherwise readable answer: a required field
/// missing, a time that does not parse, an absurd value. The item is kept
/// without the bad field (or skipped when it cannot be identified), and the
/// issue is logged and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataIssue {
    pub operation: Operation,
    /// One of [`issue_kind`]: the counter's `kind` label.
    pub kind: &'static str,
    pub field: &'static str,
    /// The offending value, shortened for logs.
    pub detail: String,
}

impl DataIssue {
    /// The item it was found in was skipped: a listing with such an issue
    /// does not show everything that exists.
    pub fn skipped_item(&self) -> bool {
        self.kind == issue_kind::UNUSABLE_ITEM
    }
}

impl fmt::Display for DataIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} in field {}: {}",
            self.operation, self.kind, self.field, self.detail
        )
    }
}

/// One page of a list operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
    pub issues: Vec<DataIssue>,
}

/// A single answer with the issues found while converting it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched<T> {
    pub value: T,
    pub issues: Vec<DataIssue>,
}

/// What the exporter asks of Image Builder. Every method is one API call
/// (with retries); paging is the caller's business so that it can guard
/// against tokens that never end.
pub trait ImageBuilderApi: Send + Sync + 'static {
    /// Every build of the account, or of one image version
    /// (`…:image/name/1.0.0`, without the build number) when given.
    fn list_image_build_versions(
        &self,
        image_version_arn: Option<String>,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Build>, ApiError>> + Send;

    fn list_workflow_executions(
        &self,
        build_arn: String,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<WorkflowExecution>, ApiError>> + Send;

    fn list_workflow_step_executions(
        &self,
        workflow_execution_id: String,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<StepExecution>, ApiError>> + Send;

    fn get_workflow_step_execution(
        &self,
        step_execution_id: String,
    ) -> impl Future<Output = Result<Fetched<StepDetail>, ApiError>> + Send;

    /// Every image pipeline of the account.
    fn list_image_pipelines(
        &self,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Pipeline>, ApiError>> + Send;
}

/// Shortens a value for a log line or an error message: answers may carry
/// 500-character messages, and logs must stay readable.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, status: u16) -> ApiError {
        ApiError::Service {
            operation: Operation::GetWorkflowStepExecution,
            code: code.into(),
            message: String::new(),
            status,
        }
    }

    #[test]
    fn classifies_errors() {
        assert!(service("CallRateLimitExceededException", 429).is_throttle());
        assert!(service("CallRateLimitExceededException", 429).is_retryable());
        assert!(service("ServiceUnavailableException", 503).is_retryable());
        assert!(!service("ServiceUnavailableException", 503).is_throttle());
        assert!(!service("ForbiddenException", 403).is_retryable());
        assert!(!service("InvalidRequestException", 400).is_retryable());
        assert!(service("InvalidRequestException", 400).is_not_found());
        assert!(service("ResourceNotFoundException", 404).is_not_found());
        assert_eq!(
            ApiError::Timeout {
                operation: Operation::ListImageBuildVersions
            }
            .code(),
            "timeout"
        );
    }

    #[test]
    fn shorten_cuts_on_characters() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("ééééé", 2), "éé…");
    }
}

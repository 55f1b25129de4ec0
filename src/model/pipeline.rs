//! Image pipelines (`ListImagePipelines`): whether the schedule that
//! starts an image's builds still runs.
//!
//! After `autoDisablePolicy.failureCount` consecutive failed scheduled runs
//! the service disables a pipeline; from then on no build starts, so no
//! step fails and nothing about the image changes. Only the pipeline tells.

use std::sync::Arc;

use super::BuildStatus;
use crate::base::clock::Nanos;

open_enum! {
    /// `PipelineStatus`.
    PipelineStatus {
        Enabled => "ENABLED",
        Disabled => "DISABLED",
    }
}

/// The failure count after which the service disables a scheduled pipeline
/// whose schedule has no `autoDisablePolicy` (the `AutoDisablePolicy`
/// documentation).
pub const DEFAULT_AUTO_DISABLE_FAILURE_COUNT: i64 = 5;

/// One image pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub arn: Arc<str>,
    /// The pipeline's name (the `pipeline` label).
    pub name: Arc<str>,
    /// The name segment of `imageRecipeArn` or `containerRecipeArn`
    /// (lower-case, as ARNs write it): the image its builds belong to.
    pub recipe: Option<Arc<str>>,
    pub status: PipelineStatus,
    /// `consecutiveFailures` of scheduled runs.
    pub consecutive_failures: Option<i64>,
    /// `None`: the pipeline runs only by hand.
    pub schedule: Option<Schedule>,
    /// `lastRunStatus`: the status of the last image it built.
    pub last_run_status: Option<BuildStatus>,
    /// `dateNextRun`.
    pub next_run: Option<Nanos>,
}

/// `Schedule`. Its texts are kept as labels show them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schedule {
    pub expression: Option<String>,
    pub timezone: Option<String>,
    /// `pipelineExecutionStartCondition`.
    pub start_condition: Option<String>,
    /// `autoDisablePolicy.failureCount`; `None` without a policy.
    pub auto_disable_failure_count: Option<i64>,
}

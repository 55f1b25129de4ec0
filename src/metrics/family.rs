//! The metric contract: every family the exporter serves, in one table.
//!
//! Dashboards, alert rules and users' queries depend on these exact names
//! and labels, so they are written once, here: the snapshot writes its
//! headers from [`FAMILIES`], the exporter registers its own metrics from
//! [`OWN`] (`exporter`), and the metrics reference, docs/metrics.md, is
//! generated from both (`reference`; a test fails when it is stale).

use super::labels::{
    ComponentFailureLabels, DistributionFailureLabels, ImageInfoLabels, LabelSet, MessageLabels,
    PipelineInfoLabels, ReasonLabels, StepInfoLabels, HISTOGRAM, IMAGE, OUTCOME, PIPELINE, STATUS,
    STEP, TAG_LABELS, TARGET, WORKFLOW,
};

/// Prometheus metric types used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a family is described in the reference: one table each, so that
/// hand-written prose (what the rows share, how they join) can sit between
/// the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The latest execution of each step.
    Step,
    /// The latest execution of each workflow.
    Workflow,
    /// The newest build of each image.
    Image,
    /// Each image pipeline.
    Pipeline,
    /// Counted since the exporter started.
    Lifetime,
    /// The exporter's own metrics.
    Exporter,
}

impl Section {
    pub const ALL: [Section; 6] = [
        Section::Step,
        Section::Workflow,
        Section::Image,
        Section::Pipeline,
        Section::Lifetime,
        Section::Exporter,
    ];

    /// The name of the section in the reference's markers.
    pub fn id(self) -> &'static str {
        match self {
            Section::Step => "step",
            Section::Workflow => "workflow",
            Section::Image => "image",
            Section::Pipeline => "pipeline",
            Section::Lifetime => "lifetime",
            Section::Exporter => "exporter",
        }
    }
}

/// One family of the contract.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FamilyDef {
    pub name: &'static str,
    pub kind: Kind,
    /// `# HELP`: what a user sees in `/metrics`. Changing it changes the
    /// exposition, which the snapshot tests compare byte for byte.
    pub help: &'static str,
    /// The label names in exposition order, as the parts the code writes
    /// them with: the shared sets and typed label sets of `labels`, so that
    /// the table and the code cannot name different labels. Histograms'
    /// `le` is implied. [`TAG_LABELS`] stands for labels named at run time.
    pub labels: &'static [&'static [&'static str]],
    /// Histogram buckets (upper bounds, without `+Inf`); empty otherwise.
    pub buckets: &'static [f64],
    /// The reference's text (Markdown) when `help` is not enough: where a
    /// value comes from, when a series is absent, how to read it.
    pub meaning: &'static str,
    pub section: Section,
}

impl FamilyDef {
    /// What struct update syntax fills in for the rows of the table.
    const BASE: FamilyDef = FamilyDef {
        name: "",
        kind: Kind::Gauge,
        help: "",
        labels: &[],
        buckets: &[],
        meaning: "",
        section: Section::Exporter,
    };

    /// Every label name, in exposition order (without `le`).
    pub fn label_names(&self) -> impl Iterator<Item = &'static str> + 'static {
        self.labels.iter().flat_map(|part| part.iter().copied())
    }

    /// The reference's text: `meaning`, or `help` when that says it all.
    pub fn meaning(&self) -> &'static str {
        if self.meaning.is_empty() {
            self.help
        } else {
            self.meaning
        }
    }
}

/// Label sets several families share, named in the reference so that a
/// row lists only what it adds.
pub const LABEL_SETS: [(&str, &[&str]); 4] = [
    ("step", &STEP),
    ("workflow", &WORKFLOW),
    ("image", &IMAGE),
    ("pipeline", &PIPELINE),
];

/// Every family of the contract: the workflow families, then the
/// exporter's own.
pub fn contract() -> impl Iterator<Item = &'static FamilyDef> {
    FAMILIES.iter().chain(OWN)
}

/// The family named `name`, if the contract has one.
pub fn find(name: &str) -> Option<&'static FamilyDef> {
    contract().find(|f| f.name == name)
}

/// Buckets of the step duration histogram: from seconds to the 12 h maximum
/// step timeout, about two per factor of two below a minute and a quarter
/// to a half of the value above, so that a quantile is interpolated within
/// a bucket no wider than the step durations Image Builder really has (a
/// 1.25 s step lies in 1-2 s, a 15-minute component run in 10-15 min).
pub const DURATION_BUCKETS: [f64; 24] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1200.0,
    1800.0, 2700.0, 3600.0, 5400.0, 7200.0, 10800.0, 14400.0, 21600.0, 28800.0, 43200.0,
];

/// Buckets of the API request latency: 5 ms doubling to about 10 s, the
/// request timeout's default (`exponential_buckets(0.005, 2.0, 12)`).
const API_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24,
];

/// Buckets of the event delay: from half a second to SQS's long poll and
/// the 15 minutes EventBridge may take to retry.
const EVENT_DELAY_BUCKETS: [f64; 9] = [0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

/// Writes an enum whose variants index a table of [`FamilyDef`]s, so that
/// code names a family by variant and reads its row by index.
macro_rules! table {
    ($(#[$doc:meta])* $enum:ident in $table:ident { $($id:ident = { $($row:tt)* };)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum $enum { $($id,)+ }

        // A row that gives every field (a histogram with its meaning)
        // still goes through the same update, so that all rows read alike.
        #[allow(clippy::needless_update)]
        pub const $table: &[FamilyDef] = &[$(FamilyDef { $($row)* ..FamilyDef::BASE },)+];

        impl $enum {
            pub const ALL: &'static [$enum] = &[$($enum::$id,)+];
            pub fn def(self) -> &'static FamilyDef {
                &$table[self as usize]
            }
        }
    };
}

table! {
    /// The workflow families, in the order they are exposed: encoded by
    /// the snapshot from the model.
    Family in FAMILIES {
    StepStatus = {
        name: "imagebuilder_workflow_step_status",
        help: latest_help::STEP_STATUS,
        labels: &[&STEP, &STATUS],
        meaning: "1 for the current status, 0 for the model's other statuses (`PENDING`, `SKIPPED`, `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`). A status outside the enum (a `WaitForAction` step's `WAITING`) gets its own series at 1.",
        section: Section::Step,
    };
    StepDuration = {
        name: "imagebuilder_workflow_step_duration_seconds",
        help: latest_help::STEP_DURATION,
        labels: &[&STEP],
        meaning: "`endTime − startTime`; for a started step without `endTime`, `now − startTime` at scrape time. Absent without a valid `startTime`, or when `endTime` is before `startTime`.",
        section: Section::Step,
    };
    StepTimeout = {
        name: "imagebuilder_workflow_step_timeout_seconds",
        help: latest_help::STEP_TIMEOUT,
        labels: &[&STEP],
        meaning: "`timeoutSeconds` (from `GetWorkflowStepExecution`).",
        section: Section::Step,
    };
    StepHeadroom = {
        name: "imagebuilder_workflow_step_timeout_headroom_seconds",
        help: latest_help::STEP_HEADROOM,
        labels: &[&STEP],
        meaning: "`timeout − duration`; negative when the step overran; absent when either is absent.",
        section: Section::Step,
    };
    StepStart = {
        name: "imagebuilder_workflow_step_start_timestamp_seconds",
        help: latest_help::STEP_START,
        labels: &[&STEP],
        meaning: "`startTime`, Unix seconds.",
        section: Section::Step,
    };
    StepEnd = {
        name: "imagebuilder_workflow_step_end_timestamp_seconds",
        help: latest_help::STEP_END,
        labels: &[&STEP],
        meaning: "`endTime`, Unix seconds.",
        section: Section::Step,
    };
    StepRollbackStatus = {
        name: "imagebuilder_workflow_step_rollback_status",
        help: latest_help::STEP_ROLLBACK,
        labels: &[&STEP, &STATUS],
        meaning: "The step's `rollbackStatus` as a state set over `RUNNING`, `COMPLETED`, `SKIPPED`, `FAILED` (others get their own series). Absent when the step reports none (its workflow did not fail, or the step has no rollback).",
        section: Section::Step,
    };
    StepInfo = {
        name: "imagebuilder_workflow_step_info",
        help: latest_help::STEP_INFO,
        labels: &[&STEP, &StepInfoLabels::NAMES],
        meaning: "1. Which build the latest execution belongs to (`image_version` like `1.0.0/7`), its `onFailure` (`Abort`, `Continue`; empty until its details were read) and `attemptNumber` of `maxAttempts`. When a newer build takes a step over, the old series goes in the same refresh.",
        section: Section::Step,
    };
    StepFailureInfo = {
        name: "imagebuilder_workflow_step_failure_info",
        help: "1 for each step whose last conclusive execution (COMPLETED or FAILED) FAILED, with the image version of that execution and its message (one line, at most 200 characters). It stays while a newer build retries the step, and goes when a later execution of the step COMPLETES or the failed image build version is deleted.",
        labels: &[&STEP, &MessageLabels::NAMES],
        meaning: "1 for each step whose **last conclusive execution** (the newest one that COMPLETED or FAILED) FAILED, naming that build and quoting the step's `message`. It stays while a newer build retries the step (RUNNING, PENDING, WAITING, or a later build that skipped it), and goes when a later execution of the step COMPLETES, or when the failed image build version is deleted.",
        section: Section::Step,
    };
    StepFailureTimestamp = {
        name: "imagebuilder_workflow_step_failure_timestamp_seconds",
        help: "endTime of the failed execution that imagebuilder_workflow_step_failure_info describes, as a Unix timestamp.",
        labels: &[&STEP],
        meaning: "`endTime` of that failed execution, Unix seconds.",
        section: Section::Step,
    };
    StepExecutions = {
        name: "imagebuilder_workflow_step_executions_total",
        kind: Kind::Counter,
        help: "Step executions seen reaching a terminal status since the exporter started, counted once each when first seen terminal. Steps already terminal at the first discovery only seed the state (no start-up burst). Held in the exporter's memory.",
        labels: &[&STEP, &STATUS],
        meaning: "Each step execution counted once, when first seen terminal. Steps already terminal at the first discovery only seed the state, so a restart never produces a burst that `increase()` reads as new failures. The `COMPLETED` and `FAILED` series of every known step exist from the start at 0.",
        section: Section::Lifetime,
    };
    StepExecutionDuration = {
        name: "imagebuilder_workflow_step_execution_duration_seconds",
        kind: Kind::Histogram,
        help: "Duration (endTime - startTime) of each counted step execution, by workflow, step and action. Held in the exporter's memory since it started.",
        labels: &[&HISTOGRAM],
        buckets: &DURATION_BUCKETS,
        meaning: "Duration of each counted execution that has both times. No `image`: its series do not grow with the number of images.",
        section: Section::Lifetime,
    };
    WorkflowStatus = {
        name: "imagebuilder_workflow_execution_status",
        help: latest_help::WF_STATUS,
        labels: &[&WORKFLOW, &STATUS],
        meaning: "State set over `PENDING`, `SKIPPED`, `RUNNING`, `COMPLETED`, `FAILED`, `ROLLBACK_IN_PROGRESS`, `ROLLBACK_COMPLETED`, `CANCELLED` (others get their own series).",
        section: Section::Workflow,
    };
    WorkflowDuration = {
        name: "imagebuilder_workflow_execution_duration_seconds",
        help: latest_help::WF_DURATION,
        labels: &[&WORKFLOW],
        meaning: "`endTime − startTime`, or `now − startTime` while running.",
        section: Section::Workflow,
    };
    WorkflowSteps = {
        name: "imagebuilder_workflow_execution_steps",
        help: latest_help::WF_STEPS,
        labels: &[&WORKFLOW, &OUTCOME],
        meaning: "Step counts: `total`, `succeeded`, `failed`, `skipped`.",
        section: Section::Workflow,
    };
    WorkflowFailureInfo = {
        name: "imagebuilder_workflow_execution_failure_info",
        help: latest_help::WF_FAILURE,
        labels: &[&WORKFLOW, &MessageLabels::NAMES],
        meaning: "1 when the latest execution failed (`FAILED`, `ROLLBACK_IN_PROGRESS`, `ROLLBACK_COMPLETED`), quoting its `message`.",
        section: Section::Workflow,
    };
    ImageBuildStatus = {
        name: "imagebuilder_image_build_status",
        help: image_help::STATUS,
        labels: &[&IMAGE, &STATUS],
        meaning: "The build's state as a state set over `PENDING`, `CREATING`, `BUILDING`, `TESTING`, `DISTRIBUTING`, `INTEGRATING`, `AVAILABLE`, `CANCELLED`, `FAILED`, `DEPRECATED`, `DELETED`, `DISABLED` (others get their own series).",
        section: Section::Image,
    };
    ImageBuildInfo = {
        name: "imagebuilder_image_build_info",
        help: image_help::INFO,
        labels: &[&IMAGE, &ImageInfoLabels::NAMES],
        meaning: "1. The newest build, how it was started (`SCHEDULED`, `USER_INITIATED`, …) and the CloudWatch Logs group it writes to (its `loggingConfiguration`, or the service's default `/aws/imagebuilder/<image>`).",
        section: Section::Image,
    };
    ImageBuildFailureInfo = {
        name: "imagebuilder_image_build_failure_info",
        help: image_help::FAILURE,
        labels: &[&IMAGE, &ReasonLabels::NAMES],
        meaning: "1 when the newest build FAILED, quoting `state.reason`. This also shows builds that fail outside any workflow step (an invalid infrastructure configuration, say).",
        section: Section::Image,
    };
    ImageLastSuccess = {
        name: "imagebuilder_image_last_successful_build_timestamp_seconds",
        help: "dateCreated of the newest AVAILABLE build of each image, whatever its age, as a Unix timestamp; from the discovery listing.",
        labels: &[&IMAGE],
        meaning: "`dateCreated` of the newest AVAILABLE build of the image, whatever its age; absent for an image that never had one.",
        section: Section::Image,
    };
    ImageTags = {
        name: "imagebuilder_image_tags",
        help: image_help::TAGS,
        labels: &[&IMAGE, &TAG_LABELS],
        meaning: "1, with the newest build's tags as labels, `tag_<key>` for each key of `--labels.image-tags` (a key the build lacks is an empty label). Only with `--labels.image-tags`. To route by owner, join it: `… * on (account_id, region, image) group_left (tag_team) max without (instance, pod) (imagebuilder_image_tags)`; with several replicas that may briefly disagree on a retag, the bundled rules' `imagebuilder:image:tagged` picks one set per image.",
        section: Section::Image,
    };
    ImageComponentFailureInfo = {
        name: "imagebuilder_image_component_failure_info",
        help: image_help::COMPONENT_FAILURE,
        labels: &[&IMAGE, &ComponentFailureLabels::NAMES],
        meaning: "1 when the newest build failed in a component, as the build's own failure context (`state.failureContext.componentFailure`) says: the workflow step (`failed_step`, from `failedStep`), the component's name and version from its ARN (`install-app/1.2.0`), the phase and step of the component document (`phase`, `component_step`), what that step runs (`action`, like `ExecuteBash`) and its `errorMessage` (`message`). Gone when a newer build supersedes it or the build is deleted.",
        section: Section::Image,
    };
    ImageDistributionFailureInfo = {
        name: "imagebuilder_image_distribution_failure_info",
        help: image_help::DISTRIBUTION_FAILURE,
        labels: &[&IMAGE, &DistributionFailureLabels::NAMES],
        meaning: "1 for each Region (and target account) the newest build failed to distribute to or configure in (`failureContext.distributionFailure.regionFailures`): the Region's `status` (`FAILED`, `CANCELLED`, `TIMED_OUT`), the `imageConfigurationStep` when the failure came after the copy (empty otherwise), and the Region's own message (the distribution's when the Region has none).",
        section: Section::Image,
    };
    PipelineStatus = {
        name: "imagebuilder_image_pipeline_status",
        help: pipeline_help::STATUS,
        labels: &[&PIPELINE, &STATUS],
        meaning: "State set over `ENABLED`, `DISABLED` (others get their own series). Image Builder disables a scheduled pipeline after `autoDisablePolicy.failureCount` consecutive failed scheduled runs: from then on no build starts, so no step fails.",
        section: Section::Pipeline,
    };
    PipelineConsecutiveFailures = {
        name: "imagebuilder_image_pipeline_consecutive_failures",
        help: pipeline_help::CONSECUTIVE_FAILURES,
        labels: &[&PIPELINE],
        meaning: "`consecutiveFailures`: scheduled runs that failed in a row (a success resets it; a failed manual run leaves it; updating the pipeline resets it).",
        section: Section::Pipeline,
    };
    PipelineAutoDisableFailureLimit = {
        name: "imagebuilder_image_pipeline_auto_disable_failure_limit",
        help: pipeline_help::AUTO_DISABLE,
        labels: &[&PIPELINE],
        meaning: "The schedule's `autoDisablePolicy.failureCount` (1 to 10). (Not `…_failure_count`: Prometheus reserves the `_count` suffix for histograms and summaries, and `promtool check metrics` refuses it on a gauge.) **Absent when the schedule has no policy**: the service then disables a scheduled pipeline after 5, which the bundled rules apply (`imagebuilder:image_pipeline_auto_disable_failure_limit`).",
        section: Section::Pipeline,
    };
    PipelineLastRunStatus = {
        name: "imagebuilder_image_pipeline_last_run_status",
        help: pipeline_help::LAST_RUN_STATUS,
        labels: &[&PIPELINE, &STATUS],
        meaning: "`lastRunStatus` (the status of the last image the pipeline built) as a state set over the image statuses. Absent when the service gives none.",
        section: Section::Pipeline,
    };
    PipelineNextRun = {
        name: "imagebuilder_image_pipeline_next_run_timestamp_seconds",
        help: pipeline_help::NEXT_RUN,
        labels: &[&PIPELINE],
        meaning: "`dateNextRun`, Unix seconds; absent when the service gives none (disabled, or no schedule). `dateLastRun` is not used: the service no longer fills it in.",
        section: Section::Pipeline,
    };
    PipelineInfo = {
        name: "imagebuilder_image_pipeline_info",
        help: pipeline_help::INFO,
        labels: &[&PIPELINE, &PipelineInfoLabels::NAMES],
        meaning: "1, with the schedule (`scheduleExpression`, `timezone`, `pipelineExecutionStartCondition`; empty for a pipeline that runs only by hand).",
        section: Section::Pipeline,
    };
    }
}

table! {
    /// The exporter's own metrics, registered in a `prometheus` registry
    /// (`exporter`), in the order the reference lists them.
    Own in OWN {
    Up = {
        name: "imagebuilder_up",
        help: "1 if the last refresh of this target read everything it needed from the Image Builder API, 0 if some call failed (the last good values are still served). Absent until the target's first refresh has finished: see imagebuilder_exporter_ready.",
        labels: &[&TARGET],
        meaning: "**Absent** while the target's first refresh runs (a cold start is not a failure). Then, after each refresh: 1 if it read everything it needed, 0 if some call failed or some answer was skipped (the last good values are still served).",
    };
    Ready = {
        name: "imagebuilder_exporter_ready",
        help: "0 from start-up until the first complete refresh of this target (a cold start), then 1 for the life of the process.",
        labels: &[&TARGET],
        meaning: "0 from start-up until the target's first complete refresh, then 1 for the life of the process. It stays 0 for a target that has never read everything, even when `/-/ready` no longer waits for it (see [Readiness](design.md#readiness)).",
    };
    ApiRequests = {
        name: "imagebuilder_exporter_api_requests_total",
        kind: Kind::Counter,
        help: "Image Builder API requests sent, retries included.",
        labels: &[&TARGET, &["operation"]],
        meaning: "API requests sent, each retry included.",
    };
    ApiErrors = {
        name: "imagebuilder_exporter_api_errors_total",
        kind: Kind::Counter,
        help: "Image Builder API requests that failed, by AWS error code (or timeout, connection, parse).",
        labels: &[&TARGET, &["operation", "code"]],
        meaning: "Failed requests by AWS error code (`CallRateLimitExceededException`, `ServiceUnavailableException`, `AccessDeniedException`, …) or `timeout`, `connection` (the endpoint or STS out of reach), `parse`, `configuration` (a request that cannot be built, such as with an invalid region); a request that could not get credentials counts the code of the service that refused them (`AccessDenied` when STS refuses a target's `role_arn`), or `credentials` (none at all).",
    };
    ApiDuration = {
        name: "imagebuilder_exporter_api_request_duration_seconds",
        kind: Kind::Histogram,
        help: "Latency of Image Builder API requests, each attempt on its own.",
        labels: &[&TARGET, &["operation"]],
        buckets: &API_BUCKETS,
        meaning: "Latency of each request attempt.",
    };
    ApiRateLimit = {
        name: "imagebuilder_exporter_api_rate_limit_requests_per_second",
        help: "Client-side request rate currently allowed; lowered when the API throttles, restored on success.",
        labels: &[&TARGET],
        meaning: "Client-side rate in force: halved when the API throttles, restored on success.",
    };
    RefreshDuration = {
        name: "imagebuilder_exporter_refresh_duration_seconds",
        help: "Duration of the last refresh of this target.",
        labels: &[&TARGET],
    };
    LastRefreshSuccess = {
        name: "imagebuilder_exporter_last_refresh_success_timestamp_seconds",
        help: "Unix time at which the last complete refresh of this target ended.",
        labels: &[&TARGET],
        meaning: "When the last complete refresh ended; absent before the first.",
    };
    SnapshotAge = {
        name: "imagebuilder_exporter_snapshot_age_seconds",
        help: "Age of the data served for this target: seconds since the refresh that produced it ended.",
        labels: &[&TARGET],
    };
    TrackedBuilds = {
        name: "imagebuilder_exporter_tracked_builds",
        help: "Image build versions tracked: the newest of each image, those within --discovery.lookback, and those still in flight.",
        labels: &[&TARGET],
        meaning: "Image build versions tracked: the newest of each image, those within `--discovery.lookback`, and those still in flight.",
    };
    TrackedStepExecutions = {
        name: "imagebuilder_exporter_tracked_step_executions",
        help: "Step executions held in memory for the tracked builds.",
        labels: &[&TARGET],
    };
    BuildsInFlight = {
        name: "imagebuilder_exporter_builds_in_flight",
        help: "Tracked image builds not yet in a terminal state: while some run, Image Builder should be sending events.",
        labels: &[&TARGET],
    };
    EventsReceived = {
        name: "imagebuilder_exporter_events_received_total",
        kind: Kind::Counter,
        help: "Messages received from the event queue (--events.sqs-queue-url).",
        labels: &[&TARGET],
        meaning: "Messages received from the target's event queue.",
    };
    EventsApplied = {
        name: "imagebuilder_exporter_events_applied_total",
        kind: Kind::Counter,
        help: "Events whose build was read again at once.",
        labels: &[&TARGET],
        meaning: "Events whose build (or, for a disabled pipeline, the pipeline listing) was read again at once.",
    };
    EventsIgnored = {
        name: "imagebuilder_exporter_events_ignored_total",
        kind: Kind::Counter,
        help: "Messages deleted without effect, by reason: not_json, not_imagebuilder, other_account_or_region, unknown_build.",
        labels: &[&TARGET, &["reason"]],
        meaning: "Messages deleted without effect: `not_json`, `not_imagebuilder` (another source or detail type, or no image build version or pipeline named), `other_account_or_region`, `unknown_build` (the API does not know it), `unknown_pipeline` (the pipeline listing does not hold it). Each reason is logged once.",
    };
    EventDelay = {
        name: "imagebuilder_exporter_event_delay_seconds",
        kind: Kind::Histogram,
        help: "From an event's time to the end of the read it caused.",
        labels: &[&TARGET],
        buckets: &EVENT_DELAY_BUCKETS,
        meaning: "From an event's `time` to the end of the read it caused.",
    };
    EventQueueErrors = {
        name: "imagebuilder_exporter_event_queue_errors_total",
        kind: Kind::Counter,
        help: "Failed calls to the event queue, by AWS error code (AccessDenied, QueueDoesNotExist, ...) or timeout, connection; the exporter keeps polling the API meanwhile.",
        labels: &[&TARGET, &["code"]],
        meaning: "Failed calls to the event queue, by AWS error code (`AccessDenied`, `QueueDoesNotExist`, …) or `timeout`, `connection`; the exporter keeps polling the API meanwhile.",
    };
    EventsLastReceived = {
        name: "imagebuilder_exporter_events_last_received_timestamp_seconds",
        help: "When the last message arrived from the event queue (the start, before any did).",
        labels: &[&TARGET],
        meaning: "When the last message arrived (the start, before any did): `time() - …` is the time since the last event.",
    };
    BackfillPending = {
        name: "imagebuilder_exporter_backfill_pending",
        help: "Reads left before the state is what a full read of the account gives: older builds inside --discovery.lookback and the details of finished steps, read after the exporter is ready, newest first. 0 once done; absent before the first refresh ends.",
        labels: &[&TARGET],
        meaning: "Reads left before the state is what a full read of the account gives (see [What is tracked, and when it is read](design.md#what-is-tracked-and-when-it-is-read)): 0 once the cold start's backfill is done; absent before the first refresh ends.",
    };
    InvalidData = {
        name: "imagebuilder_exporter_invalid_data_total",
        kind: Kind::Counter,
        help: "Fields of API answers that were refused: unparseable times, missing fields, values out of range. The field is treated as absent.",
        labels: &[&TARGET, &["operation", "kind", "field"]],
    };
    DroppedBuilds = {
        name: "imagebuilder_exporter_dropped_builds_total",
        kind: Kind::Counter,
        help: "Builds not tracked because --discovery.max-builds was reached (the oldest finished builds go first).",
        labels: &[&TARGET],
        meaning: "Builds not tracked because of `--discovery.max-builds` (the oldest finished builds go first).",
    };
    TargetOverlap = {
        name: "imagebuilder_exporter_target_overlap",
        help: "1 while this target reads the same account and region as the earlier target served_by: its step, workflow and image series are not served, so that each series is served once. Keep one of the two targets.",
        labels: &[&TARGET, &["served_by"]],
        meaning: "1 while this target reads the same account and region as the earlier target `served_by` (two roles into one account): its step, workflow and image series are not served, so that each series is served once. Keep one of the two.",
    };
    OrganizationUp = {
        name: "imagebuilder_exporter_organization_up",
        help: "1 if the last listing of the organisation's accounts (organizations:ListAccounts) succeeded, 0 if it failed: the last known accounts are still exported. Absent until the first listing ends, and without an organization section in --config.file.",
        meaning: "With an `organization` section: 1 if the last `ListAccounts` listing succeeded, 0 if it failed (the last known accounts are still exported, but joins and leaves are not seen). Absent until the first listing ends (a start is not a failure), and without the section.",
    };
    OrganizationLastSuccess = {
        name: "imagebuilder_exporter_organization_last_success_timestamp_seconds",
        help: "Unix time of the last successful listing of the organisation's accounts.",
        meaning: "When the accounts were last listed; absent until a listing succeeds.",
    };
    OrganizationErrors = {
        name: "imagebuilder_exporter_organization_errors_total",
        kind: Kind::Counter,
        help: "Listings of the organisation's accounts that failed, after retries, by AWS error code (or timeout, connection, parse, credentials).",
        labels: &[&["code"]],
        meaning: "Failed listings of the accounts, after the SDK's retries, by AWS error code (`AccessDeniedException` when the role may not call `organizations:ListAccounts`, `AWSOrganizationsNotInUseException`, `TooManyRequestsException`) or `timeout`, `connection`, `parse`, `AccessDenied` (STS refused the organisation's `role_arn`), `credentials`.",
    };
    OrganizationAccounts = {
        name: "imagebuilder_exporter_organization_accounts",
        help: "ACTIVE accounts of the organisation that the organization section's filters select, as last listed (each times each Region listed is a target, shared among shards).",
        meaning: "ACTIVE accounts that the `organization` section's filters select, as last listed (absent until a listing succeeds); each, in each Region listed, is a target (shared among the shards).",
    };
    ShardTargets = {
        name: "imagebuilder_exporter_shard_targets",
        help: "Targets this replica serves: with --shard.count above 1, its share by rendezvous hashing of account and region; otherwise every target.",
        meaning: "Targets this replica serves: its share with `--shard.count` above 1 (`sum` over the replicas is every target), otherwise all of them.",
    };
    ScrapeTimeouts = {
        name: "imagebuilder_exporter_scrape_timeouts_total",
        kind: Kind::Counter,
        help: "Scrapes answered with the previous snapshot because the refresh took longer than the scrape could wait (--scrape.timeout, or the scraper's timeout less --scrape.timeout-offset).",
        meaning: "Scrapes served the previous data because the refresh outlasted the scrape's wait (the scraper's timeout less `--scrape.timeout-offset`, at most `--scrape.timeout`).",
    };
    BuildInfo = {
        name: "imagebuilder_exporter_build_info",
        help: "Version of the exporter; always 1.",
        labels: &[&["version"]],
        meaning: "Always 1, from start-up.",
    };
    }
}

/// Help texts of the image families: all describe the newest build.
mod image_help {
    macro_rules! newest {
        ($($n:ident = $s:literal;)+) => {
            $(pub const $n: &str = concat!($s, " Values come from the newest tracked build of the image, as listed by ListImageBuildVersions.");)+
        };
    }
    newest! {
        STATUS = "Status of the newest build of each image: 1 for the current status, 0 for the others.";
        INFO = "1 for each image, naming its newest build (image_version, ARN), how it was started (build_type) and the CloudWatch log group it writes to.";
        FAILURE = "1 when the newest build of an image FAILED, with state.reason (one line, at most 200 characters): the reason also shows failures outside any workflow step.";
        TAGS = "1 for each image, with the tags of --labels.image-tags as tag_<key> labels, to route alerts by owner with a group_left join.";
        COMPONENT_FAILURE = "1 when the newest build of an image failed in a component, as its failureContext says: the workflow step (failed_step), the component's name and version, the phase and step of the component document, its action, and the error message (one line, at most 200 characters).";
        DISTRIBUTION_FAILURE = "1 for each Region (and target account) the newest build of an image failed to distribute to or configure in, as its failureContext says: the Region's status (FAILED, CANCELLED, TIMED_OUT), the image configuration step when the failure happened after the copy, and the Region's error message (one line, at most 200 characters).";
    }
}

/// Help texts of the pipeline families.
mod pipeline_help {
    macro_rules! listed {
        ($($n:ident = $s:literal;)+) => {
            $(pub const $n: &str = concat!($s, " From ListImagePipelines, read with the discovery listing and at once on an Image Pipeline Automatically Disabled event; image is the name of the pipeline's recipe, which its builds carry.");)+
        };
    }
    listed! {
        STATUS = "Status of each image pipeline (ENABLED, DISABLED): 1 for the current status, 0 for the others. The service disables a scheduled pipeline after autoDisablePolicy.failureCount consecutive failed scheduled runs, and no build starts from then on.";
        CONSECUTIVE_FAILURES = "consecutiveFailures of each pipeline: scheduled runs that failed in a row (a success resets it, a failed manual run leaves it).";
        AUTO_DISABLE = "autoDisablePolicy.failureCount of each pipeline's schedule: the consecutive failed scheduled runs after which the service disables it. Absent when the schedule has no policy (the service then disables a scheduled pipeline after 5).";
        LAST_RUN_STATUS = "Status of the last image each pipeline built (lastRunStatus): 1 for the current status, 0 for the others.";
        NEXT_RUN = "dateNextRun of each pipeline, as a Unix timestamp; absent when the service gives none.";
        INFO = "1 for each pipeline, with its ARN and schedule: scheduleExpression, timezone and pipelineExecutionStartCondition (empty without a schedule).";
    }
}

/// Help texts of the latest-state families, each ending with where its
/// values come from and how they are cached.
mod latest_help {
    macro_rules! latest {
        ($($n:ident = $s:literal;)+) => {
            $(pub const $n: &str = concat!($s, " Values come from the newest tracked build that ran the workflow; refreshed when scraped (at most every --refresh.min-interval), terminal steps cached and never fetched again.");)+
        };
    }
    latest! {
        STEP_STATUS = "Latest status of each workflow step: 1 for the current status, 0 for the others.";
        STEP_DURATION = "Duration of the latest execution of each step: endTime - startTime, or now - startTime while it runs.";
        STEP_TIMEOUT = "timeoutSeconds of the latest execution of each step (from GetWorkflowStepExecution).";
        STEP_HEADROOM = "Seconds left before the latest execution of each step hits its timeout (timeout - duration); negative when it overran.";
        STEP_START = "startTime of the latest execution of each step, as a Unix timestamp.";
        STEP_END = "endTime of the latest execution of each step, as a Unix timestamp.";
        WF_STATUS = "Latest status of each workflow: 1 for the current status, 0 for the others.";
        WF_DURATION = "Duration of the latest execution of each workflow: endTime - startTime, or now - startTime while it runs.";
        WF_STEPS = "Step counts of the latest execution of each workflow, by outcome (total, succeeded, failed, skipped).";
        STEP_ROLLBACK = "Rollback status of the latest execution of each step (when the workflow failed and rolled back): 1 for the current status, 0 for the others; absent when the step reports none.";
        STEP_INFO = "1 for each step, describing its latest execution: the image version and build ARN it belongs to, onFailure, and its attempt number of the maximum.";
        WF_FAILURE = "1 when the latest execution of a workflow failed (FAILED, ROLLBACK_IN_PROGRESS or ROLLBACK_COMPLETED), with its image version and message (one line, at most 200 characters).";
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_follow_conventions() {
        let re = regex::Regex::new("^[a-zA-Z_:][a-zA-Z0-9_:]*$").unwrap();
        let label = regex::Regex::new("^[a-zA-Z_][a-zA-Z0-9_]*$").unwrap();
        let mut names = BTreeSet::new();
        for f in contract() {
            assert!(re.is_match(f.name), "{}", f.name);
            assert!(f.name.starts_with("imagebuilder_"));
            assert!(names.insert(f.name), "{} is in the table twice", f.name);
            assert!(!f.help.is_empty(), "{} has no help", f.name);
            if f.kind == Kind::Counter {
                assert!(f.name.ends_with("_total"));
            }
            // Histograms have buckets, rising; nothing else has any.
            assert_eq!(
                f.kind == Kind::Histogram,
                !f.buckets.is_empty(),
                "{}",
                f.name
            );
            assert!(f.buckets.windows(2).all(|w| w[0] < w[1]), "{}", f.name);
            let mut seen = BTreeSet::new();
            for l in f.label_names() {
                assert!(l == TAG_LABELS[0] || label.is_match(l), "{}: {l}", f.name);
                assert!(l != "le" && !l.starts_with("__"), "{}: {l}", f.name);
                assert!(seen.insert(l), "{}: {l} twice", f.name);
            }
        }
        assert_eq!(Family::ALL.len(), FAMILIES.len());
        assert_eq!(
            Family::StepHeadroom.def().name,
            "imagebuilder_workflow_step_timeout_headroom_seconds"
        );
        assert_eq!(
            Own::BuildInfo.def().name,
            "imagebuilder_exporter_build_info"
        );
        assert_eq!(find("imagebuilder_up").map(|f| f.kind), Some(Kind::Gauge));
        assert_eq!(find("up"), None);
    }

    #[test]
    fn rows_list_their_labels_in_exposition_order() {
        assert_eq!(
            Family::StepInfo.def().label_names().collect::<Vec<_>>(),
            [
                "account_id",
                "region",
                "image",
                "workflow_arn",
                "workflow_type",
                "step_name",
                "action",
                "image_version",
                "image_build_version_arn",
                "on_failure",
                "attempt",
                "max_attempts",
            ]
        );
        assert_eq!(
            Own::ApiErrors.def().label_names().collect::<Vec<_>>(),
            ["target", "operation", "code"]
        );
        assert_eq!(Own::ScrapeTimeouts.def().label_names().count(), 0);
        // Every family of a section but the exporter's shares the
        // section's set (what the reference's prose says of them).
        for f in contract() {
            let shared = match f.section {
                Section::Step => &STEP[..],
                Section::Workflow => &WORKFLOW,
                Section::Image => &IMAGE,
                Section::Pipeline => &PIPELINE,
                Section::Lifetime => &["account_id", "region", "workflow_arn"],
                Section::Exporter => &[],
            };
            let names: Vec<_> = f.label_names().collect();
            assert!(shared.iter().all(|l| names.contains(l)), "{}", f.name);
        }
    }
}

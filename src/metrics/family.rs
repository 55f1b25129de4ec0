//! The metric families the exporter promises: names, types, help and labels.
//! Dashboards and alert rules depend on these exact names.

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

/// A family's fixed description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyDef {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
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

macro_rules! families {
    ($($id:ident = ($name:literal, $kind:ident, $help:expr);)+) => {
        /// The workflow families, in the order they are exposed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Family { $($id,)+ }

        pub const FAMILIES: &[FamilyDef] = &[
            $(FamilyDef { name: $name, kind: Kind::$kind, help: $help },)+
        ];

        impl Family {
            pub const ALL: &'static [Family] = &[$(Family::$id,)+];
            pub fn def(self) -> &'static FamilyDef {
                &FAMILIES[self as usize]
            }
        }
    };
}

families! {
    StepStatus = ("imagebuilder_workflow_step_status", Gauge, latest_help::STEP_STATUS);
    StepDuration = ("imagebuilder_workflow_step_duration_seconds", Gauge, latest_help::STEP_DURATION);
    StepTimeout = ("imagebuilder_workflow_step_timeout_seconds", Gauge, latest_help::STEP_TIMEOUT);
    StepHeadroom = ("imagebuilder_workflow_step_timeout_headroom_seconds", Gauge, latest_help::STEP_HEADROOM);
    StepStart = ("imagebuilder_workflow_step_start_timestamp_seconds", Gauge, latest_help::STEP_START);
    StepEnd = ("imagebuilder_workflow_step_end_timestamp_seconds", Gauge, latest_help::STEP_END);
    StepRollbackStatus = ("imagebuilder_workflow_step_rollback_status", Gauge, latest_help::STEP_ROLLBACK);
    StepInfo = ("imagebuilder_workflow_step_info", Gauge, latest_help::STEP_INFO);
    StepFailureInfo = ("imagebuilder_workflow_step_failure_info", Gauge,
        "1 for each step whose last conclusive execution (COMPLETED or FAILED) FAILED, with the image version of that execution and its message (one line, at most 200 characters). It stays while a newer build retries the step, and goes when a later execution of the step COMPLETES or the failed image build version is deleted.");
    StepFailureTimestamp = ("imagebuilder_workflow_step_failure_timestamp_seconds", Gauge,
        "endTime of the failed execution that imagebuilder_workflow_step_failure_info describes, as a Unix timestamp.");
    StepExecutions = ("imagebuilder_workflow_step_executions_total", Counter,
        "Step executions seen reaching a terminal status since the exporter started, counted once each when first seen terminal. Steps already terminal at the first discovery only seed the state (no start-up burst). Held in the exporter's memory.");
    StepExecutionDuration = ("imagebuilder_workflow_step_execution_duration_seconds", Histogram,
        "Duration (endTime - startTime) of each counted step execution, by workflow, step and action. Held in the exporter's memory since it started.");
    WorkflowStatus = ("imagebuilder_workflow_execution_status", Gauge, latest_help::WF_STATUS);
    WorkflowDuration = ("imagebuilder_workflow_execution_duration_seconds", Gauge, latest_help::WF_DURATION);
    WorkflowSteps = ("imagebuilder_workflow_execution_steps", Gauge, latest_help::WF_STEPS);
    WorkflowFailureInfo = ("imagebuilder_workflow_execution_failure_info", Gauge, latest_help::WF_FAILURE);
    ImageBuildStatus = ("imagebuilder_image_build_status", Gauge, image_help::STATUS);
    ImageBuildInfo = ("imagebuilder_image_build_info", Gauge, image_help::INFO);
    ImageBuildFailureInfo = ("imagebuilder_image_build_failure_info", Gauge, image_help::FAILURE);
    ImageLastSuccess = ("imagebuilder_image_last_successful_build_timestamp_seconds", Gauge,
        "dateCreated of the newest AVAILABLE build of each image, whatever its age, as a Unix timestamp; from the discovery listing.");
    ImageTags = ("imagebuilder_image_tags", Gauge, image_help::TAGS);
    ImageComponentFailureInfo = ("imagebuilder_image_component_failure_info", Gauge, image_help::COMPONENT_FAILURE);
    ImageDistributionFailureInfo = ("imagebuilder_image_distribution_failure_info", Gauge, image_help::DISTRIBUTION_FAILURE);
    PipelineStatus = ("imagebuilder_image_pipeline_status", Gauge, pipeline_help::STATUS);
    PipelineConsecutiveFailures = ("imagebuilder_image_pipeline_consecutive_failures", Gauge, pipeline_help::CONSECUTIVE_FAILURES);
    PipelineAutoDisableFailureLimit = ("imagebuilder_image_pipeline_auto_disable_failure_limit", Gauge, pipeline_help::AUTO_DISABLE);
    PipelineLastRunStatus = ("imagebuilder_image_pipeline_last_run_status", Gauge, pipeline_help::LAST_RUN_STATUS);
    PipelineNextRun = ("imagebuilder_image_pipeline_next_run_timestamp_seconds", Gauge, pipeline_help::NEXT_RUN);
    PipelineInfo = ("imagebuilder_image_pipeline_info", Gauge, pipeline_help::INFO);
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

    #[test]
    fn names_follow_conventions() {
        let re = regex::Regex::new("^[a-zA-Z_:][a-zA-Z0-9_:]*$").unwrap();
        for f in FAMILIES {
            assert!(re.is_match(f.name), "{}", f.name);
            assert!(f.name.starts_with("imagebuilder_"));
            if f.kind == Kind::Counter {
                assert!(f.name.ends_with("_total"));
            }
        }
        assert_eq!(Family::ALL.len(), FAMILIES.len());
        assert_eq!(
            Family::StepHeadroom.def().name,
            "imagebuilder_workflow_step_timeout_headroom_seconds"
        );
    }
}

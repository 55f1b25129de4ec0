//! Any fields in a step answer: the conversion never panics, never exports
//! a negative duration, and keeps timeouts within the model's range.
#![no_main]

use aws_sdk_imagebuilder::operation::get_workflow_step_execution::GetWorkflowStepExecutionOutput;
use aws_sdk_imagebuilder::types::WorkflowStepExecutionStatus;
use imagebuilder_exporter::aws::convert::{self, Issues, MAX_TIMEOUT_SECONDS};
use imagebuilder_exporter::aws::Operation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i32>
)| {
    let (id, name, action, status, start, end, timeout) = input;
    let o = GetWorkflowStepExecutionOutput::builder()
        .set_step_execution_id(id)
        .set_name(name)
        .set_action(action)
        .set_status(status.as_deref().map(WorkflowStepExecutionStatus::from))
        .set_start_time(start)
        .set_end_time(end)
        .set_timeout_seconds(timeout)
        .build();
    let mut issues = Issues::new(Operation::GetWorkflowStepExecution);
    if let Some(d) = convert::step_detail(&o, &mut issues) {
        if let Some(x) = d.step.duration() {
            assert!(x >= 0);
        }
        if let Some(t) = d.limits.timeout_seconds {
            assert!((0..=MAX_TIMEOUT_SECONDS).contains(&t));
        }
    }
});

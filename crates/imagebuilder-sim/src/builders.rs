//! Builders of the simulator's resources: IDs and ARNs in the API's
//! formats, planned builds of the AWS-managed workflows with the service's
//! failure messages, and pipelines. The worlds of `scenario.rs` are made of
//! them, and tests make their own.

use std::collections::BTreeMap;

use crate::clock::{Nanos, NANOS_PER_SEC};
use crate::pipelines::{SimPipeline, SimSchedule};
use crate::store::{Outcome, SimBuild, SimStep, SimWorkflow, StepPlan};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// The AWS-managed workflows most images use.
pub const BUILD_WORKFLOW: &str =
    "arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1";
pub const TEST_WORKFLOW: &str =
    "arn:aws:imagebuilder:us-east-1:aws:workflow/test/test-image/1.0.0/1";

/// (step name, action, typical seconds, timeout seconds)
pub const BUILD_STEPS: [(&str, &str, i64, i64); 7] = [
    ("LaunchBuildInstance", "LaunchInstance", 90, 720),
    ("UpdateSSMAgent", "RunCommand", 30, 720),
    ("ApplyBuildComponents", "ExecuteComponents", 900, 7200),
    ("InventoryCollection", "CollectImageMetadata", 45, 720),
    ("RunSanitizeScript", "SanitizeInstance", 40, 720),
    ("CreateOutputAMI", "CreateImage", 420, 3600),
    ("TerminateBuildInstance", "TerminateInstance", 25, 720),
];
pub const TEST_STEPS: [(&str, &str, i64, i64); 4] = [
    ("LaunchTestInstance", "LaunchInstance", 90, 720),
    ("CollectImageMetadata", "CollectImageMetadata", 30, 720),
    ("RunTestSuite", "ExecuteComponents", 600, 7200),
    ("TerminateTestInstance", "TerminateInstance", 25, 720),
];

/// Makes IDs in the API's formats (`wf-…`, `step-…`).
pub struct Ids(fastrand::Rng);

impl Ids {
    pub fn new(seed: u64) -> Self {
        Self(fastrand::Rng::with_seed(seed))
    }

    fn uuid(&mut self) -> String {
        let r = &mut self.0;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            r.u32(..),
            r.u16(..),
            r.u16(..),
            r.u16(..),
            r.u64(..) & 0xffff_ffff_ffff
        )
    }

    pub fn workflow(&mut self) -> String {
        format!("wf-{}", self.uuid())
    }

    pub fn step(&mut self) -> String {
        format!("step-{}", self.uuid())
    }
}

/// The ARN of build `n` of `image`, in version 1.0.0.
pub fn build_arn(image: &str, n: u32) -> String {
    format!(
        "arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image/{}/1.0.0/{n}",
        arn_name(image)
    )
}

/// A resource's name as its ARN spells it: lower case, hyphens for spaces
/// and underscores.
fn arn_name(name: &str) -> String {
    name.to_ascii_lowercase().replace([' ', '_'], "-")
}

/// The ARN of pipeline `name`.
pub fn pipeline_arn(name: &str) -> String {
    format!(
        "arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image-pipeline/{}",
        arn_name(name)
    )
}

/// When [`pipeline`]'s pipelines were created: before any scenario.
pub const PIPELINES_CREATED: Nanos = 1_767_603_600 * NANOS_PER_SEC; // 2026-01-05T09:00:00Z

/// The pipeline of the same name that builds `image` from the image recipe
/// of that name, version 1.0.0 (its builds carry the recipe's name), ENABLED
/// with no history; `None`: run by hand only.
pub fn pipeline(image: &str, schedule: Option<SimSchedule>) -> SimPipeline {
    SimPipeline {
        arn: pipeline_arn(image),
        name: image.into(),
        image_recipe_arn: Some(format!(
            "arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image-recipe/{}/1.0.0",
            arn_name(image)
        )),
        schedule,
        description: Some(format!("Builds {image}")),
        date_created: PIPELINES_CREATED,
        ..SimPipeline::default()
    }
}

/// What happens in one planned build.
#[derive(Debug, Clone)]
pub struct BuildShape {
    /// Multiplies every step's typical duration.
    pub speed: f64,
    /// (workflow 0 = BUILD / 1 = TEST, step index, outcome) of the step that
    /// does not complete.
    pub failure: Option<(usize, usize, Outcome)>,
    /// A `WaitForAction` approval step in the BUILD workflow, waiting this long.
    pub approval_wait: Option<Nanos>,
    /// Overrides the timeout of the BUILD workflow's components step.
    pub components_timeout: Option<i64>,
    /// The failed step's rollback fails too (resources left behind).
    pub rollback_fails: bool,
    /// The BUILD workflow's components step reports attempt 2 of 3.
    pub retried_step: bool,
}

impl Default for BuildShape {
    fn default() -> Self {
        Self {
            speed: 1.0,
            failure: None,
            approval_wait: None,
            components_timeout: None,
            rollback_fails: false,
            retried_step: false,
        }
    }
}

/// What a step of `action` reports when it fails, in the service's style.
/// A components step quotes AWSTOE: the image's `install-<image>` component
/// fails in its build phase installing packages, or in its test phase (the
/// TEST workflow's `RunTestSuite`) checking them; the simulator's
/// `failureContext.componentFailure` is read from this text.
pub fn failure_message(image: &str, step: &str, action: &str, n: u32) -> String {
    let component = image.to_ascii_lowercase().replace([' ', '_'], "-");
    match action {
        "ExecuteComponents" if step == "RunTestSuite" => format!(
            "Document arn:aws:imagebuilder:{REGION}:{ACCOUNT}:component/install-{component}/1.0.0/1 failed!\nStep \"VerifyPackages\" failed: command '{component} --version' exited with code 127. Error: {component}: command not found\nSee the CloudWatch Logs log group /aws/imagebuilder/{image} for the full output."
        ),
        "LaunchInstance" => format!(
            "Unable to launch the instance for step {step}: InsufficientInstanceCapacity: We currently do not have sufficient m5.large capacity in the Availability Zone you requested (us-east-1a)."
        ),
        "RunCommand" => format!(
            "SSM execution 'a1b2c3d4-{n:04}-4e5f-8a9b-0c1d2e3f4a5b' failed with status = 'TimedOut' in state = 'BUILDING' and failure message = 'Step timed out while step is verifying the SSM Agent availability on the target instance(s)'"
        ),
        "ExecuteComponents" => format!(
            "Document arn:aws:imagebuilder:{REGION}:{ACCOUNT}:component/install-{component}/1.0.0/1 failed!\nStep \"InstallPackages\" failed: command 'dnf install -y {component}' exited with code 1. Error: Unable to find a match: {component}-2.4.1\nSee the CloudWatch Logs log group /aws/imagebuilder/{image} for the full output."
        ),
        "CollectImageMetadata" => format!(
            "Step {step} failed: the inventory association did not report within 300 seconds"
        ),
        _ => format!("Step {step} ({action}) failed: the instance stopped responding"),
    }
}

/// A planned build with BUILD and TEST workflows.
pub fn planned_build(
    ids: &mut Ids,
    image: &str,
    n: u32,
    created: Nanos,
    shape: &BuildShape,
) -> SimBuild {
    let mut workflows = Vec::with_capacity(2);
    for (wi, (wtype, arn, steps)) in [
        ("BUILD", BUILD_WORKFLOW, &BUILD_STEPS[..]),
        ("TEST", TEST_WORKFLOW, &TEST_STEPS[..]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut sim_steps = Vec::with_capacity(steps.len() + 1);
        for (si, (name, action, secs, timeout)) in steps.iter().enumerate() {
            if wi == 0 && si == 2 {
                if let Some(wait) = shape.approval_wait {
                    sim_steps.push(SimStep {
                        id: ids.step(),
                        name: "WaitForApproval".into(),
                        action: "WaitForAction".into(),
                        description: "Waits for a release manager's approval".into(),
                        timeout_seconds: Some(43_200),
                        on_failure: "Abort".into(),
                        plan: StepPlan::Timed {
                            duration: wait,
                            outcome: Outcome::Completed,
                            running_status: "WAITING",
                        },
                        failure_message: "The approval was rejected".into(),
                        rollback: "COMPLETED",
                        attempt: 1,
                        max_attempts: 1,
                    });
                }
            }
            let outcome = match shape.failure {
                Some((fw, fs, o)) if fw == wi && fs == si => o,
                _ => Outcome::Completed,
            };
            let timeout = match shape.components_timeout {
                Some(t) if wi == 0 && *name == "ApplyBuildComponents" => t,
                _ => *timeout,
            };
            let failed_here = outcome == Outcome::Failed;
            let retried = shape.retried_step && wi == 0 && *action == "ExecuteComponents";
            sim_steps.push(SimStep {
                id: ids.step(),
                name: (*name).into(),
                action: (*action).into(),
                description: String::new(),
                timeout_seconds: Some(timeout),
                // Metadata collection does not stop a build when it fails.
                on_failure: if *action == "CollectImageMetadata" {
                    "Continue"
                } else {
                    "Abort"
                }
                .into(),
                plan: StepPlan::Timed {
                    duration: ((*secs as f64) * shape.speed * NANOS_PER_SEC as f64) as Nanos,
                    outcome,
                    running_status: "RUNNING",
                },
                failure_message: failure_message(image, name, action, n),
                rollback: if failed_here && shape.rollback_fails {
                    "FAILED"
                } else {
                    "COMPLETED"
                },
                attempt: if retried { 2 } else { 1 },
                max_attempts: if retried { 3 } else { 1 },
            });
        }
        workflows.push(SimWorkflow {
            id: ids.workflow(),
            arn: arn.into(),
            workflow_type: wtype.into(),
            steps: sim_steps,
            fixed: None,
            retried: false,
            parallel_group: (wtype == "TEST").then(|| "default".into()),
        });
    }
    SimBuild {
        arn: build_arn(image, n),
        name: image.into(),
        version: format!("1.0.0/{n}"),
        date_created: created,
        workflows,
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

/// Moves a build made here (account 123456789012, us-east-1) to `account`
/// and `region`: its ARN (and so its owner), its pipeline's, its workflows'
/// (AWS-managed, of the Region) and its messages, so that each account and
/// Region of an organisation has builds of its own.
pub fn relocate(b: &mut SimBuild, account: &str, region: &str) {
    let (from, to) = (
        format!(":{REGION}:{ACCOUNT}:"),
        format!(":{region}:{account}:"),
    );
    let (aws_from, aws_to) = (format!(":{REGION}:aws:"), format!(":{region}:aws:"));
    let (zone_from, zone_to) = (format!("({REGION}a)"), format!("({region}a)"));
    let fix = |s: &mut String, from: &str, to: &str| {
        if s.contains(from) {
            *s = s.replace(from, to);
        }
    };
    fix(&mut b.arn, &from, &to);
    for s in b.pipeline_arn.iter_mut().chain(b.reason.iter_mut()) {
        fix(s, &from, &to);
    }
    for w in &mut b.workflows {
        fix(&mut w.arn, &aws_from, &aws_to);
        for s in &mut w.steps {
            fix(&mut s.failure_message, &from, &to);
            fix(&mut s.failure_message, &zone_from, &zone_to);
        }
    }
}

/// A build that fails before any workflow runs (an invalid infrastructure
/// configuration, say): FAILED with a reason, and no failed step.
pub fn failed_before_workflows(image: &str, n: u32, created: Nanos, reason: &str) -> SimBuild {
    SimBuild {
        arn: build_arn(image, n),
        name: image.into(),
        version: format!("1.0.0/{n}"),
        date_created: created,
        workflows: Vec::new(),
        fixed_status: Some("FAILED".into()),
        reason: Some(reason.into()),
        tags: BTreeMap::new(),
        log_group: None,
        build_type: "USER_INITIATED".into(),
        pipeline_arn: None,
        failure_context: None,
        distribution: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relocated_builds_name_their_account_and_region() {
        let shape = BuildShape {
            failure: Some((0, 2, Outcome::Failed)),
            ..BuildShape::default()
        };
        let mut b = planned_build(&mut Ids::new(1), "web", 3, 0, &shape);
        relocate(&mut b, "210987654321", "eu-west-1");
        assert_eq!(
            b.arn,
            "arn:aws:imagebuilder:eu-west-1:210987654321:image/web/1.0.0/3"
        );
        assert_eq!(
            b.workflows[0].arn,
            "arn:aws:imagebuilder:eu-west-1:aws:workflow/build/build-image/1.0.0/1"
        );
        let messages: Vec<&str> = b
            .workflows
            .iter()
            .flat_map(|w| &w.steps)
            .map(|s| s.failure_message.as_str())
            .collect();
        assert!(messages
            .iter()
            .any(|m| m.contains("arn:aws:imagebuilder:eu-west-1:210987654321:component/")));
        assert!(messages.iter().any(|m| m.contains("(eu-west-1a)")));
        assert!(messages
            .iter()
            .all(|m| !m.contains("us-east-1") && !m.contains("123456789012")));
    }

    #[test]
    fn ids_match_the_api_patterns() {
        let mut ids = Ids::new(1);
        use crate::constraints::{WORKFLOW_EXECUTION_ID, WORKFLOW_STEP_EXECUTION_ID};
        for _ in 0..100 {
            assert_eq!(WORKFLOW_STEP_EXECUTION_ID.violation(&ids.step()), None);
            assert_eq!(WORKFLOW_EXECUTION_ID.violation(&ids.workflow()), None);
        }
    }
}

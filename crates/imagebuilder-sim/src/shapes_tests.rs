//! Tests of `shapes.rs` (a child module, in a file of its own for size).

use super::*;
use crate::clock::NANOS_PER_SEC;
use crate::failure::{DistributionPlan, SimRegionFailure, COMPONENT_ARN};
use crate::scenario::{self, BuildShape, Ids};
use crate::store::Outcome;

const T0: Nanos = 1_788_981_143_418_000_000;
const HOUR: Nanos = 3600 * NANOS_PER_SEC;
/// The model's patterns of the context's members.
const WORKFLOW_ARN: &str = r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)+-[0-9]+:(?:[0-9]{12}|aws(?:-[a-z-]+)?):workflow/(build|test|distribution)/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$";
const WORKFLOW_ID: &str =
    r"^wf-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
const STEP_ID: &str =
    r"^step-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
const STEP_NAME: &str = r"^[A-Za-z][A-Za-z0-9-_]{1,99}$";
const ACCOUNT_ID: &str = r"^[0-9]{12}$";

fn matches(pattern: &str, v: &Value) -> bool {
    regex::Regex::new(pattern)
        .unwrap()
        .is_match(v.as_str().unwrap_or_default())
}

/// Checks every member of a context against the model.
pub(crate) fn assert_valid(c: &Value) {
    let statuses = [
        "PENDING",
        "CREATING",
        "BUILDING",
        "TESTING",
        "DISTRIBUTING",
        "INTEGRATING",
        "AVAILABLE",
        "CANCELLED",
        "FAILED",
        "DEPRECATED",
        "DELETED",
        "DISABLED",
    ];
    let o = c.as_object().expect("an object");
    for (k, v) in o {
        let ok = match k.as_str() {
            "imageStatus" => statuses.contains(&v.as_str().unwrap_or_default()),
            "workflowExecutionId" => matches(WORKFLOW_ID, v),
            "workflowArn" => matches(WORKFLOW_ARN, v),
            "stepExecutionId" => matches(STEP_ID, v),
            "failedStep" => matches(STEP_NAME, v),
            "componentFailure" => v
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, x)| match k.as_str() {
                    "componentArn" => matches(COMPONENT_ARN, x),
                    "phaseName" | "stepName" | "action" | "errorMessage" => {
                        !x.as_str().unwrap_or_default().is_empty()
                    }
                    _ => false,
                }),
            "distributionFailure" => v
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, x)| match k.as_str() {
                    "errorMessage" => !x.as_str().unwrap_or_default().is_empty(),
                    "regionFailures" => x.as_array().unwrap().iter().all(|r| {
                        r.as_object()
                            .unwrap()
                            .iter()
                            .all(|(k, x)| match k.as_str() {
                                "region" | "errorMessage" => {
                                    !x.as_str().unwrap_or_default().is_empty()
                                }
                                "status" => ["FAILED", "CANCELLED", "TIMED_OUT"]
                                    .contains(&x.as_str().unwrap_or_default()),
                                "imageConfigurationStep" => [
                                    "ASSOCIATE_LICENSES",
                                    "UPDATE_LAUNCH_TEMPLATES",
                                    "PUT_SSM_PARAMETERS",
                                    "UPDATE_FAST_LAUNCH_CONFIGURATIONS",
                                    "EXPORT_AMI",
                                ]
                                .contains(&x.as_str().unwrap_or_default()),
                                "targetAccountId" => matches(ACCOUNT_ID, x),
                                _ => false,
                            })
                    }),
                    _ => false,
                }),
            _ => false,
        };
        assert!(ok, "{k}: {v} in {c}");
    }
}

/// Checks every member of an `ImagePipeline` against the model.
pub(crate) fn assert_pipeline_valid(p: &Value) {
    const PIPELINE_ARN: &str = r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws(?:-[a-z-]+)?|third-party):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow\/(?:build|test|distribution))/[a-z0-9-_]+(?:/(?:(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))(?:/[0-9]+)?)?$";
    const NAME: &str = r"^[-_A-Za-z-0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z-0-9]$";
    const TIMEZONE: &str = r"^[a-zA-Z0-9]{2,}(?:\/[a-zA-Z0-9-_+]+)*$";
    const TAG_KEY: &str = r"^[a-zA-Z0-9\s_.:/=+\-@]{1,128}$";
    let image_statuses = [
        "PENDING",
        "CREATING",
        "BUILDING",
        "TESTING",
        "DISTRIBUTING",
        "INTEGRATING",
        "AVAILABLE",
        "CANCELLED",
        "FAILED",
        "DEPRECATED",
        "DELETED",
        "DISABLED",
    ];
    // RFC 3339 as a third party reads it, not as the simulator writes it.
    let time = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap_or_default(),
            &time::format_description::well_known::Rfc3339,
        )
        .is_ok()
    };
    let tag_key = regex::Regex::new(TAG_KEY).unwrap();
    for (k, v) in p.as_object().expect("an object") {
        let ok = match k.as_str() {
            "arn"
            | "imageRecipeArn"
            | "containerRecipeArn"
            | "infrastructureConfigurationArn"
            | "distributionConfigurationArn" => matches(PIPELINE_ARN, v),
            "name" => matches(NAME, v),
            "description" => (1..=1024).contains(&v.as_str().unwrap_or_default().len()),
            "platform" => ["Windows", "Linux", "macOS"].contains(&v.as_str().unwrap_or_default()),
            "enhancedImageMetadataEnabled" => v.is_boolean(),
            "imageTestsConfiguration" => {
                v["imageTestsEnabled"].is_boolean()
                    && (60..=1440).contains(&v["timeoutMinutes"].as_i64().unwrap_or_default())
            }
            "schedule" => v
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, x)| match k.as_str() {
                    "scheduleExpression" => !x.as_str().unwrap_or_default().is_empty(),
                    "timezone" => matches(TIMEZONE, x) && x.as_str().unwrap().len() <= 100,
                    "pipelineExecutionStartCondition" => [
                        "EXPRESSION_MATCH_ONLY",
                        "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE",
                    ]
                    .contains(&x.as_str().unwrap_or_default()),
                    "autoDisablePolicy" => {
                        (1..=10).contains(&x["failureCount"].as_i64().unwrap_or_default())
                    }
                    _ => false,
                }),
            "status" => ["ENABLED", "DISABLED"].contains(&v.as_str().unwrap_or_default()),
            "dateCreated" | "dateUpdated" | "dateNextRun" => time(v),
            "lastRunStatus" => image_statuses.contains(&v.as_str().unwrap_or_default()),
            "consecutiveFailures" => v.as_i64().is_some_and(|n| n >= 0),
            "tags" => v.as_object().unwrap().iter().all(|(k, x)| {
                tag_key.is_match(k)
                    && !k.starts_with("aws:")
                    && x.as_str().is_some_and(|x| x.len() <= 256)
            }),
            _ => false,
        };
        assert!(ok, "{k}: {v} in {p}");
    }
    for required in ["arn", "name", "status", "consecutiveFailures"] {
        assert!(p.get(required).is_some(), "{required} in {p}");
    }
}

fn failing(failure: (usize, usize)) -> SimBuild {
    let shape = BuildShape {
        speed: 0.1,
        failure: Some((failure.0, failure.1, Outcome::Failed)),
        ..BuildShape::default()
    };
    scenario::planned_build(&mut Ids::new(1), "Web_Server", 4, T0, &shape)
}

fn context(b: &SimBuild, now: Nanos) -> Option<Value> {
    summary_json(b, now)["state"].get("failureContext").cloned()
}

#[test]
fn a_components_step_that_failed_names_its_component() {
    let b = failing((0, 2));
    let w = &b.workflows[0];
    let s = &w.steps[2];
    assert_eq!(context(&b, T0 + 30 * NANOS_PER_SEC), None, "not failed yet");
    let c = context(&b, T0 + HOUR).expect("a context");
    assert_eq!(
        c,
        json!({
            "imageStatus": "BUILDING",
            "workflowExecutionId": w.id,
            "workflowArn": scenario::BUILD_WORKFLOW,
            "stepExecutionId": s.id,
            "failedStep": "ApplyBuildComponents",
            "componentFailure": {
                "componentArn": "arn:aws:imagebuilder:us-east-1:123456789012:component/install-web-server/1.0.0/1",
                "phaseName": "build",
                "stepName": "InstallPackages",
                "action": "ExecuteBash",
                "errorMessage": "command 'dnf install -y web-server' exited with code 1. Error: Unable to find a match: web-server-2.4.1",
            },
        })
    );
    assert_valid(&c);
    // The component ARN is the one the step's message names.
    assert!(s
        .failure_message
        .contains(c["componentFailure"]["componentArn"].as_str().unwrap()));
}

#[test]
fn a_test_failure_is_in_the_test_phase() {
    let b = failing((1, 2));
    let c = context(&b, T0 + HOUR).expect("a context");
    assert_eq!(c["imageStatus"], "TESTING");
    assert_eq!(c["workflowExecutionId"], json!(b.workflows[1].id));
    assert_eq!(c["workflowArn"], scenario::TEST_WORKFLOW);
    assert_eq!(c["failedStep"], "RunTestSuite");
    assert_eq!(c["componentFailure"]["phaseName"], "test");
    assert_eq!(c["componentFailure"]["stepName"], "VerifyPackages");
    assert_valid(&c);
}

#[test]
fn a_step_that_runs_no_component_has_no_component_failure() {
    let b = failing((0, 0));
    let c = context(&b, T0 + HOUR).expect("a context");
    assert_eq!(c["failedStep"], "LaunchBuildInstance");
    assert_eq!(c["stepExecutionId"], json!(b.workflows[0].steps[0].id));
    assert!(c.get("componentFailure").is_none(), "{c}");
    assert_valid(&c);
    // A success, and a cancellation, have none.
    let ok = scenario::planned_build(&mut Ids::new(1), "web", 1, T0, &BuildShape::default());
    assert_eq!(context(&ok, T0 + 10 * HOUR), None);
    let mut cancelled = failing((0, 2));
    cancelled.workflows[0].steps[2].plan = StepPlan::Timed {
        duration: NANOS_PER_SEC,
        outcome: Outcome::Cancelled,
        running_status: "RUNNING",
    };
    assert_eq!(
        summary_json(&cancelled, T0 + HOUR)["state"]["status"],
        "CANCELLED"
    );
    assert_eq!(context(&cancelled, T0 + HOUR), None);
}

fn regions() -> Vec<SimRegionFailure> {
    vec![
        SimRegionFailure {
            region: Some("eu-west-1".into()),
            account_id: Some("210987654321".into()),
            status: Some("FAILED".into()),
            configuration_step: None,
            message: Some("KMS key not accessible".into()),
        },
        SimRegionFailure {
            region: Some("ap-southeast-2".into()),
            account_id: Some("210987654321".into()),
            status: Some("TIMED_OUT".into()),
            configuration_step: Some("UPDATE_LAUNCH_TEMPLATES".into()),
            message: Some("Launch template update timed out".into()),
        },
    ]
}

#[test]
fn a_failed_distribution_names_its_regions() {
    let mut b = scenario::planned_build(&mut Ids::new(1), "web", 1, T0, &BuildShape::default());
    b.distribution = Some(DistributionPlan {
        duration: HOUR,
        message: "Distribution failed in 2 of 3 Regions".into(),
        regions: regions(),
    });
    let done = b.change_times()[b.change_times().len() - 2];
    let during = summary_json(&b, done);
    assert_eq!(during["state"], json!({ "status": "DISTRIBUTING" }));
    let after = summary_json(&b, done + HOUR);
    let c = &after["state"]["failureContext"];
    assert_eq!(after["state"]["status"], "FAILED");
    assert_eq!(
        after["state"]["reason"],
        "Distribution failed in 2 of 3 Regions"
    );
    assert_eq!(
        *c,
        json!({
            "imageStatus": "DISTRIBUTING",
            "distributionFailure": {
                "errorMessage": "Distribution failed in 2 of 3 Regions",
                "regionFailures": [
                    { "region": "eu-west-1", "status": "FAILED", "errorMessage": "KMS key not accessible", "targetAccountId": "210987654321" },
                    { "region": "ap-southeast-2", "status": "TIMED_OUT", "imageConfigurationStep": "UPDATE_LAUNCH_TEMPLATES", "errorMessage": "Launch template update timed out", "targetAccountId": "210987654321" },
                ],
            },
        })
    );
    assert_valid(c);
}

#[test]
fn a_context_set_on_a_build_replaces_the_derived_one() {
    // On a fixed build, which has none of its own.
    let mut b = scenario::failed_before_workflows("web", 1, T0, "broken");
    assert_eq!(context(&b, T0), None);
    b.failure_context = Some(SimFailureContext::Component {
        failed_step: Some("Build".into()),
        component_arn: Some(
            "arn:aws:imagebuilder:us-east-1:123456789012:component/install-app/1.2.0/1".into(),
        ),
        phase: Some("validate".into()),
        step: None,
        action: None,
        message: Some("exit 2".into()),
    });
    assert_eq!(
        context(&b, T0),
        Some(json!({
            "imageStatus": "BUILDING",
            "failedStep": "Build",
            "componentFailure": {
                "componentArn": "arn:aws:imagebuilder:us-east-1:123456789012:component/install-app/1.2.0/1",
                "phaseName": "validate",
                "errorMessage": "exit 2",
            },
        }))
    );
    b.failure_context = Some(SimFailureContext::Distribution {
        message: None,
        regions: vec![SimRegionFailure::default()],
    });
    assert_eq!(
        context(&b, T0),
        Some(
            json!({ "imageStatus": "DISTRIBUTING", "distributionFailure": { "regionFailures": [{}] } })
        )
    );
    // On a planned build, keeping its failed step's IDs.
    let mut b = failing((0, 2));
    b.failure_context = Some(SimFailureContext::Component {
        failed_step: None,
        component_arn: None,
        phase: None,
        step: Some("Unzip".into()),
        action: Some("ExecutePowerShell".into()),
        message: None,
    });
    let c = context(&b, T0 + HOUR).unwrap();
    assert_eq!(c["stepExecutionId"], json!(b.workflows[0].steps[2].id));
    assert_eq!(c["failedStep"], "ApplyBuildComponents");
    assert_eq!(
        c["componentFailure"],
        json!({ "stepName": "Unzip", "action": "ExecutePowerShell" })
    );
    assert_eq!(context(&b, T0), None, "only once FAILED");
    // A literal context, whatever the status.
    b.failure_context = Some(SimFailureContext::Fixed(
        json!({ "imageStatus": "SOMETHING_NEW", "extra": 1 }),
    ));
    assert_eq!(
        context(&b, T0),
        Some(json!({ "imageStatus": "SOMETHING_NEW", "extra": 1 }))
    );
}

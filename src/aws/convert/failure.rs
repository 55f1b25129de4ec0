//! `ImageFailureContext` → [`FailureContext`].
//!
//! Every member is optional in the service model, and the context is
//! served as far as it goes. What makes a part of it useless to a reader
//! is reported: a component failure that names no component, a Region
//! failure without its Region, a distribution failure without Regions.

use aws_sdk_imagebuilder::types::{ComponentFailureContext, ImageFailureContext, RegionFailure};

use super::{text, Issues};
use crate::aws::issue_kind::{BAD_VALUE, MISSING_FIELD};
use crate::model::{self, ComponentFailure, DistributionFailure, FailureContext};

/// Converts the failure context of build `arn`.
pub(super) fn context(f: &ImageFailureContext, arn: &str, issues: &mut Issues) -> FailureContext {
    FailureContext {
        failed_step: f.failed_step().and_then(text),
        workflow_arn: f.workflow_arn().filter(|a| !a.is_empty()).map(Into::into),
        component: f.component_failure().map(|c| component(c, arn, issues)),
        distribution: f.distribution_failure().map(|d| {
            if d.region_failures().is_empty() {
                issues.push(
                    MISSING_FIELD,
                    "failureContext.distributionFailure.regionFailures",
                    format!("{arn}: a distribution failure that names no Region"),
                );
            }
            DistributionFailure {
                message: d.error_message().and_then(text),
                regions: d
                    .region_failures()
                    .iter()
                    .map(|r| region(r, arn, issues))
                    .collect(),
            }
        }),
    }
}

fn component(c: &ComponentFailureContext, arn: &str, issues: &mut Issues) -> ComponentFailure {
    let component = match c.component_arn().filter(|a| !a.is_empty()) {
        Some(a) => model::component_name(a).unwrap_or_else(|| {
            issues.push(
                BAD_VALUE,
                "failureContext.componentFailure.componentArn",
                format!("{arn}: {a:?} is not a component build version ARN; kept as given"),
            );
            model::label_text(a)
        }),
        None => {
            issues.push(
                MISSING_FIELD,
                "failureContext.componentFailure.componentArn",
                format!("{arn}: a component failure that names no component"),
            );
            String::new()
        }
    };
    ComponentFailure {
        component,
        phase: c.phase_name().and_then(text),
        step: c.step_name().and_then(text),
        action: c.action().and_then(text),
        message: c.error_message().and_then(text),
    }
}

fn region(r: &RegionFailure, arn: &str, issues: &mut Issues) -> model::RegionFailure {
    let region = r.region().and_then(text);
    if region.is_none() {
        issues.push(
            MISSING_FIELD,
            "failureContext.distributionFailure.regionFailures.region",
            format!("{arn}: a Region failure without its Region"),
        );
    }
    model::RegionFailure {
        region,
        account_id: r.target_account_id().and_then(text),
        status: r.status().map(|s| s.as_str()).and_then(text),
        configuration_step: r
            .image_configuration_step()
            .map(|s| s.as_str())
            .and_then(text),
        message: r.error_message().and_then(text),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_imagebuilder::types::{
        ComponentFailureContext, DistributionFailureContext, ImageConfigurationStep,
        ImageFailureContext, ImageState, ImageStatus, ImageSummary, RegionFailure,
        RegionFailureStatus,
    };

    use super::super::{build, Issues};
    use crate::aws::Operation;
    use crate::model::{ComponentFailure, RegionFailure as Region};

    const ARN: &str = "arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/3";

    fn failed(context: ImageFailureContext) -> ImageSummary {
        ImageSummary::builder()
            .arn(ARN)
            .name("web")
            .state(
                ImageState::builder()
                    .status(ImageStatus::Failed)
                    .failure_context(context)
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_component_failure_names_the_component_by_name_and_version() {
        let c = ImageFailureContext::builder()
            .image_status(ImageStatus::Building)
            .failed_step("ApplyBuildComponents")
            .workflow_arn("arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1")
            .component_failure(
                ComponentFailureContext::builder()
                    .component_arn(
                        "arn:aws:imagebuilder:us-east-1:123456789012:component/install-app/1.2.0/4",
                    )
                    .phase_name("build")
                    .step_name("InstallPackages")
                    .action("ExecuteBash")
                    .error_message(format!("exit code 1:\n{}", "y".repeat(400)))
                    .build(),
            )
            .build();
        let mut i = Issues::new(Operation::ListImageBuildVersions);
        let b = build(&failed(c), &mut i).unwrap();
        let f = b.failure.unwrap();
        assert_eq!(f.failed_step.as_deref(), Some("ApplyBuildComponents"));
        let c = f.component.unwrap();
        assert_eq!(c.component, "install-app/1.2.0");
        assert_eq!(c.phase.as_deref(), Some("build"));
        assert_eq!(c.step.as_deref(), Some("InstallPackages"));
        assert_eq!(c.action.as_deref(), Some("ExecuteBash"));
        let m = c.message.unwrap();
        assert!(m.starts_with("exit code 1: yyy"), "{m}");
        assert_eq!(m.chars().count(), 200);
        assert!(f.distribution.is_none());
        assert!(i.list.is_empty(), "{:?}", i.list);
    }

    #[test]
    fn every_region_failure_is_kept_with_its_own_message() {
        let region = |r: &str, status: RegionFailureStatus, msg: &str| {
            RegionFailure::builder()
                .region(r)
                .status(status)
                .target_account_id("210987654321")
                .error_message(msg)
                .build()
        };
        let c = ImageFailureContext::builder()
            .image_status(ImageStatus::Distributing)
            .distribution_failure(
                DistributionFailureContext::builder()
                    .error_message("Distribution failed in 2 Regions")
                    .region_failures(region(
                        "eu-west-1",
                        RegionFailureStatus::Failed,
                        "KMS key not found",
                    ))
                    .region_failures(
                        RegionFailure::builder()
                            .region("ap-southeast-2")
                            .status(RegionFailureStatus::from("PARTIALLY_DONE"))
                            .image_configuration_step(ImageConfigurationStep::UpdateLaunchTemplates)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let mut i = Issues::new(Operation::ListImageBuildVersions);
        let d = build(&failed(c), &mut i)
            .unwrap()
            .failure
            .unwrap()
            .distribution
            .unwrap();
        assert_eq!(
            d.message.as_deref(),
            Some("Distribution failed in 2 Regions")
        );
        assert_eq!(
            d.regions,
            [
                Region {
                    region: Some("eu-west-1".into()),
                    account_id: Some("210987654321".into()),
                    status: Some("FAILED".into()),
                    configuration_step: None,
                    message: Some("KMS key not found".into()),
                },
                Region {
                    region: Some("ap-southeast-2".into()),
                    account_id: None,
                    // A status outside the model's enum is kept as sent.
                    status: Some("PARTIALLY_DONE".into()),
                    configuration_step: Some("UPDATE_LAUNCH_TEMPLATES".into()),
                    message: None,
                },
            ]
        );
        assert!(i.list.is_empty(), "{:?}", i.list);
    }

    #[test]
    fn missing_members_are_served_as_far_as_they_go_and_reported() {
        let c = ImageFailureContext::builder()
            .component_failure(
                ComponentFailureContext::builder()
                    .phase_name("validate")
                    .build(),
            )
            .distribution_failure(
                DistributionFailureContext::builder()
                    .region_failures(
                        RegionFailure::builder()
                            .error_message("copy failed")
                            .build(),
                    )
                    .build(),
            )
            .build();
        let mut i = Issues::new(Operation::ListImageBuildVersions);
        let b = build(&failed(c), &mut i).unwrap();
        let f = b.failure.unwrap();
        assert_eq!(
            f.component,
            Some(ComponentFailure {
                phase: Some("validate".into()),
                ..ComponentFailure::default()
            })
        );
        let d = f.distribution.unwrap();
        assert_eq!(d.regions.len(), 1);
        assert_eq!(d.regions[0].message.as_deref(), Some("copy failed"));
        let fields: Vec<_> = i.list.iter().map(|x| (x.kind, x.field)).collect();
        assert_eq!(
            fields,
            [
                (
                    "missing_field",
                    "failureContext.componentFailure.componentArn"
                ),
                (
                    "missing_field",
                    "failureContext.distributionFailure.regionFailures.region"
                ),
            ]
        );
        // The build itself is whole.
        assert_eq!(&*b.name, "web");

        let odd = ImageFailureContext::builder()
            .component_failure(
                ComponentFailureContext::builder()
                    .component_arn("install-app")
                    .build(),
            )
            .distribution_failure(DistributionFailureContext::builder().build())
            .build();
        let mut i = Issues::new(Operation::ListImageBuildVersions);
        let f = build(&failed(odd), &mut i).unwrap().failure.unwrap();
        assert_eq!(f.component.unwrap().component, "install-app");
        assert!(f.distribution.unwrap().regions.is_empty());
        let kinds: Vec<_> = i.list.iter().map(|x| x.kind).collect();
        assert_eq!(kinds, ["bad_value", "missing_field"]);
    }
}

//! `ImagePipeline` → [`Pipeline`].

use std::sync::Arc;

use aws_sdk_imagebuilder::types::ImagePipeline;

use super::{text, Issues};
use crate::aws::issue_kind::{BAD_VALUE, MISSING_FIELD, UNUSABLE_ITEM};
use crate::model::{parse_arn, BuildStatus, Pipeline, PipelineStatus, Schedule};

/// The model's bounds of `autoDisablePolicy.failureCount`.
const FAILURE_COUNT: std::ops::RangeInclusive<i64> = 1..=10;

/// Skipped (with an issue) without an ARN that names its account and
/// Region: its series could not be labelled. Anything else missing is
/// served as far as it goes.
pub fn pipeline(p: &ImagePipeline, issues: &mut Issues) -> Option<Pipeline> {
    let arn = issues.required("arn", p.arn(), "image pipeline")?;
    let Some(parts) = parse_arn(arn).filter(|x| x.resource_type == "image-pipeline") else {
        issues.push(
            UNUSABLE_ITEM,
            "arn",
            format!("{arn:?} is not an image pipeline ARN; item skipped"),
        );
        return None;
    };
    let name = match p.name().filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => {
            issues.push(
                MISSING_FIELD,
                "name",
                format!("{arn}: name taken from the ARN"),
            );
            parts.name.to_string()
        }
    };
    let recipe_arn = p
        .image_recipe_arn()
        .or(p.container_recipe_arn())
        .filter(|a| !a.is_empty());
    let recipe = match recipe_arn {
        Some(r) => match parse_arn(r) {
            Some(x) if x.resource_type.ends_with("recipe") => Some(Arc::from(x.name)),
            _ => {
                issues.push(
                    BAD_VALUE,
                    "imageRecipeArn",
                    format!("{arn}: {r:?} is not a recipe ARN; the image is unknown"),
                );
                None
            }
        },
        None => {
            issues.push(
                MISSING_FIELD,
                "imageRecipeArn",
                format!(
                    "{arn}: neither imageRecipeArn nor containerRecipeArn; the image is unknown"
                ),
            );
            None
        }
    };
    let status = match p.status() {
        Some(s) => PipelineStatus::parse(s.as_str()),
        None => {
            issues.push(MISSING_FIELD, "status", format!("{arn}: status unknown"));
            PipelineStatus::Other(Arc::from("UNKNOWN"))
        }
    };
    let consecutive_failures = match p.consecutive_failures() {
        Some(n) => issues.count("consecutiveFailures", n, arn),
        None => None,
    };
    let schedule = p.schedule().map(|s| Schedule {
        expression: s.schedule_expression().and_then(text),
        timezone: s.timezone().and_then(text),
        start_condition: s
            .pipeline_execution_start_condition()
            .map(|c| c.as_str())
            .and_then(text),
        auto_disable_failure_count: s.auto_disable_policy().and_then(|a| {
            let n = i64::from(a.failure_count());
            if FAILURE_COUNT.contains(&n) {
                Some(n)
            } else {
                // 0 is what the SDK gives when the member is missing.
                issues.push(
                    BAD_VALUE,
                    "schedule.autoDisablePolicy.failureCount",
                    format!("{arn}: {n} is outside 1..=10; treated as absent"),
                );
                None
            }
        }),
    });
    Some(Pipeline {
        arn: Arc::from(arn),
        name: Arc::from(name),
        recipe,
        status,
        consecutive_failures,
        schedule,
        last_run_status: p.last_run_status().map(|s| BuildStatus::parse(s.as_str())),
        next_run: issues.time("dateNextRun", p.date_next_run(), arn),
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_imagebuilder::types::{
        AutoDisablePolicy, ImagePipeline, ImageStatus, PipelineExecutionStartCondition,
        PipelineStatus as SdkStatus, Schedule as SdkSchedule,
    };

    use super::super::Issues;
    use super::pipeline;
    use crate::aws::Operation;
    use crate::model::{BuildStatus, PipelineStatus, Schedule};

    const ARN: &str = "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/web-nightly";

    fn issues() -> Issues {
        Issues::new(Operation::ListImagePipelines)
    }

    #[test]
    fn a_scheduled_pipeline_converts_whole() {
        let p = ImagePipeline::builder()
            .arn(ARN)
            .name("Web nightly")
            .image_recipe_arn(
                "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/web-server/1.2.0",
            )
            .status(SdkStatus::Disabled)
            .consecutive_failures(3)
            .last_run_status(ImageStatus::Failed)
            .date_next_run("2026-09-09T19:12:23.418Z")
            .date_last_run("ignored: the service no longer fills it in")
            .schedule(
                SdkSchedule::builder()
                    .schedule_expression("cron(0 3 * * ? *)")
                    .timezone("Europe/Paris")
                    .pipeline_execution_start_condition(
                        PipelineExecutionStartCondition::ExpressionMatchOnly,
                    )
                    .auto_disable_policy(
                        AutoDisablePolicy::builder()
                            .failure_count(3)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build();
        let mut i = issues();
        let x = pipeline(&p, &mut i).unwrap();
        assert_eq!(&*x.name, "Web nightly");
        assert_eq!(x.recipe.as_deref(), Some("web-server"));
        assert_eq!(x.status, PipelineStatus::Disabled);
        assert_eq!(x.consecutive_failures, Some(3));
        assert_eq!(x.last_run_status, Some(BuildStatus::Failed));
        assert_eq!(x.next_run, Some(1_788_981_143_418_000_000));
        assert_eq!(
            x.schedule,
            Some(Schedule {
                expression: Some("cron(0 3 * * ? *)".into()),
                timezone: Some("Europe/Paris".into()),
                start_condition: Some("EXPRESSION_MATCH_ONLY".into()),
                auto_disable_failure_count: Some(3),
            })
        );
        assert!(i.list.is_empty(), "{:?}", i.list);
    }

    #[test]
    fn a_container_pipeline_takes_its_image_from_the_container_recipe() {
        let p = ImagePipeline::builder()
            .arn(ARN)
            .name("web-nightly")
            .container_recipe_arn(
                "arn:aws:imagebuilder:us-east-1:123456789012:container-recipe/web-container/1.0.0",
            )
            .status(SdkStatus::Enabled)
            .build();
        let mut i = issues();
        let x = pipeline(&p, &mut i).unwrap();
        assert_eq!(x.recipe.as_deref(), Some("web-container"));
        assert_eq!(x.schedule, None);
        assert!(i.list.is_empty());
    }

    #[test]
    fn a_pipeline_is_served_as_far_as_it_goes() {
        // No name, no recipe, no status, a policy with a count out of range.
        let p = ImagePipeline::builder()
            .arn(ARN)
            .consecutive_failures(-1)
            .schedule(
                SdkSchedule::builder()
                    .auto_disable_policy(
                        AutoDisablePolicy::builder()
                            .failure_count(0)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build();
        let mut i = issues();
        let x = pipeline(&p, &mut i).unwrap();
        assert_eq!(&*x.name, "web-nightly");
        assert_eq!(x.recipe, None);
        assert_eq!(x.status.as_str(), "UNKNOWN");
        assert_eq!(x.consecutive_failures, None);
        assert_eq!(x.schedule.unwrap().auto_disable_failure_count, None);
        let fields: Vec<_> = i.list.iter().map(|x| x.field).collect();
        assert_eq!(
            fields,
            [
                "name",
                "imageRecipeArn",
                "status",
                "consecutiveFailures",
                "schedule.autoDisablePolicy.failureCount"
            ]
        );
        assert!(!i.list.iter().any(|x| x.skipped_item()));
    }

    #[test]
    fn a_pipeline_without_a_usable_arn_is_skipped_and_reported() {
        for p in [
            ImagePipeline::builder().name("x").build(),
            ImagePipeline::builder()
                .arn("arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/1")
                .build(),
        ] {
            let mut i = issues();
            assert!(pipeline(&p, &mut i).is_none());
            assert!(i.list[0].skipped_item(), "{:?}", i.list);
        }
    }
}

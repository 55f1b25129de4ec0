//! The snapshot's text, read back line by line.

use std::sync::Arc;

use super::*;
use crate::base::clock::{Nanos, NANOS_PER_SEC};
use crate::metrics::labels::TagAllowList;
use crate::model::{BuildStatus, RollbackStatus, StepStatus};
use crate::tracking::counters::{StepCounters, StepKey};
use crate::tracking::tracked::WorkflowKey;
use crate::tracking::views::{BuildRef, FailureView, StepView, Views};
const S: Nanos = 1_788_981_143_418_000_000;

fn key() -> StepKey {
    StepKey {
        workflow: WorkflowKey {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            image: "web".into(),
            workflow_arn: "arn:wf".into(),
        },
        workflow_type: "BUILD".into(),
        step_name: "Build".into(),
        action: "ExecuteComponents".into(),
    }
}

fn render_one(s: Snapshot, now: Nanos) -> String {
    String::from_utf8(render_text(&[Arc::new(s)], now)).unwrap()
}

fn line<'a>(text: &'a str, name: &str, extra: &str) -> Option<&'a str> {
    let prefix = format!(
        "{name}{{account_id=\"123456789012\",region=\"us-east-1\",image=\"web\",workflow_arn=\"arn:wf\",workflow_type=\"BUILD\",step_name=\"Build\",action=\"ExecuteComponents\"{extra}}} "
    );
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}

fn snap(steps: &[StepView]) -> Snapshot {
    let views = Views {
        steps: steps.to_vec(),
        ..Views::default()
    };
    Snapshot::build(
        "t",
        &views,
        &StepCounters::default(),
        &TagAllowList::default(),
    )
}

fn sv(
    key: StepKey,
    status: StepStatus,
    start: Option<Nanos>,
    end: Option<Nanos>,
    timeout_seconds: Option<i64>,
) -> StepView {
    StepView {
        key,
        status,
        start,
        end,
        timeout_seconds,
        rollback: None,
        build: BuildRef {
            version: "1.0.0/1".into(),
            arn: "arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/1".into(),
        },
        on_failure: None,
        attempt: None,
        max_attempts: None,
    }
}

#[test]
fn finished_step_has_static_duration_and_headroom() {
    let text = render_one(
        snap(&[sv(
            key(),
            StepStatus::Completed,
            Some(S),
            Some(S + 12_418_000_000),
            Some(10),
        )]),
        S + 999 * NANOS_PER_SEC,
    );
    assert_eq!(
        line(&text, "imagebuilder_workflow_step_duration_seconds", ""),
        Some("12.418")
    );
    assert_eq!(
        line(&text, "imagebuilder_workflow_step_timeout_seconds", ""),
        Some("10")
    );
    assert_eq!(
        line(
            &text,
            "imagebuilder_workflow_step_timeout_headroom_seconds",
            ""
        ),
        Some("-2.418")
    );
    assert_eq!(
        line(
            &text,
            "imagebuilder_workflow_step_status",
            ",status=\"COMPLETED\""
        ),
        Some("1")
    );
    assert_eq!(
        line(
            &text,
            "imagebuilder_workflow_step_status",
            ",status=\"RUNNING\""
        ),
        Some("0")
    );
    assert_eq!(
        line(
            &text,
            "imagebuilder_workflow_step_end_timestamp_seconds",
            ""
        ),
        Some("1788981155.836")
    );
}

#[test]
fn running_step_grows_at_scrape_time() {
    let s = Arc::new(snap(&[sv(
        key(),
        StepStatus::parse("WAITING"),
        Some(S),
        None,
        Some(3600),
    )]));
    for (after, headroom) in [(10.5, "3589.5"), (70.0, "3530")] {
        let text = String::from_utf8(render_text(
            std::slice::from_ref(&s),
            S + (after * 1e9) as i64,
        ))
        .unwrap();
        assert_eq!(
            line(&text, "imagebuilder_workflow_step_duration_seconds", ""),
            Some(after.to_string().as_str())
        );
        assert_eq!(
            line(
                &text,
                "imagebuilder_workflow_step_timeout_headroom_seconds",
                ""
            ),
            Some(headroom)
        );
        assert_eq!(
            line(
                &text,
                "imagebuilder_workflow_step_status",
                ",status=\"WAITING\""
            ),
            Some("1")
        );
        assert_eq!(
            text.matches("imagebuilder_workflow_step_status{").count(),
            7
        );
    }
}

#[test]
fn no_duration_without_a_sane_start() {
    for (status, start, end) in [
        (StepStatus::Completed, None, Some(S)),
        (StepStatus::Completed, Some(S), Some(S - 1)),
        (StepStatus::Failed, Some(S), None),
        (StepStatus::Running, None, None),
    ] {
        let text = render_one(snap(&[sv(key(), status, start, end, Some(60))]), S);
        assert!(
            !text.contains("imagebuilder_workflow_step_duration_seconds{"),
            "{text}"
        );
        assert!(!text.contains("imagebuilder_workflow_step_timeout_headroom_seconds{"));
        assert!(text.contains("imagebuilder_workflow_step_timeout_seconds{"));
    }
}

#[test]
fn step_info_failure_and_rollback_describe_the_executions() {
    let mut step = sv(
        key(),
        StepStatus::Failed,
        Some(S),
        Some(S + NANOS_PER_SEC),
        Some(60),
    );
    step.rollback = Some(RollbackStatus::Failed);
    step.on_failure = Some("Abort".into());
    step.attempt = Some(2);
    step.max_attempts = Some(3);
    let failure = FailureView {
        key: key(),
        build: step.build.clone(),
        message: Some(r#"Component "nginx" failed \ exit 1"#.into()),
        end: Some(S + NANOS_PER_SEC),
    };
    let views = Views {
        steps: vec![step],
        failures: vec![failure],
        ..Views::default()
    };
    let text = render_one(
        Snapshot::build(
            "t",
            &views,
            &StepCounters::default(),
            &TagAllowList::default(),
        ),
        S,
    );
    let arn = "arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/1";
    assert_eq!(
        line(
            &text,
            "imagebuilder_workflow_step_info",
            &format!(",image_version=\"1.0.0/1\",image_build_version_arn=\"{arn}\",on_failure=\"Abort\",attempt=\"2\",max_attempts=\"3\"")
        ),
        Some("1")
    );
    assert_eq!(
        line(
            &text,
            "imagebuilder_workflow_step_failure_info",
            &format!(",image_version=\"1.0.0/1\",image_build_version_arn=\"{arn}\",message=\"Component \\\"nginx\\\" failed \\\\ exit 1\"")
        ),
        Some("1")
    );
    assert_eq!(
        line(
            &text,
            "imagebuilder_workflow_step_failure_timestamp_seconds",
            ""
        ),
        Some("1788981144.418")
    );
    for (status, v) in [
        ("RUNNING", "0"),
        ("COMPLETED", "0"),
        ("SKIPPED", "0"),
        ("FAILED", "1"),
    ] {
        assert_eq!(
            line(
                &text,
                "imagebuilder_workflow_step_rollback_status",
                &format!(",status=\"{status}\"")
            ),
            Some(v)
        );
    }
    // A step that reports no rollback has no rollback series.
    let text = render_one(
        snap(&[sv(key(), StepStatus::Completed, Some(S), None, None)]),
        S,
    );
    assert!(!text.contains("imagebuilder_workflow_step_rollback_status{"));
    assert!(!text.contains("imagebuilder_workflow_step_failure_info{"));
    assert!(text.contains("on_failure=\"\",attempt=\"\",max_attempts=\"\"} 1"));
}

#[test]
fn images_show_their_newest_build_last_success_and_tags() {
    use crate::tracking::views::{ImageKey, ImageView, NewestBuild};
    let key = ImageKey {
        account_id: "123456789012".into(),
        region: "us-east-1".into(),
        image: "web".into(),
    };
    let failed = ImageView {
        key: key.clone(),
        newest: Some(NewestBuild {
            build: BuildRef {
                version: "1.0.0/2".into(),
                arn: "arn:b2".into(),
            },
            status: BuildStatus::Failed,
            build_type: Some("SCHEDULED".into()),
            log_group: "/aws/imagebuilder/web".into(),
            reason: Some("instance profile missing".into()),
            tags: vec![Some("platform".into()), None],
            failure: None,
        }),
        last_success: Some(S),
    };
    let tags = TagAllowList::parse("team,env").unwrap();
    let views = Views {
        images: vec![failed],
        ..Views::default()
    };
    let text = render_one(
        Snapshot::build("t", &views, &StepCounters::default(), &tags),
        S,
    );
    let img = r#"account_id="123456789012",region="us-east-1",image="web""#;
    for l in [
        format!("imagebuilder_image_build_status{{{img},status=\"FAILED\"}} 1"),
        format!("imagebuilder_image_build_status{{{img},status=\"AVAILABLE\"}} 0"),
        format!("imagebuilder_image_build_info{{{img},image_version=\"1.0.0/2\",image_build_version_arn=\"arn:b2\",build_type=\"SCHEDULED\",log_group=\"/aws/imagebuilder/web\"}} 1"),
        format!("imagebuilder_image_build_failure_info{{{img},image_version=\"1.0.0/2\",image_build_version_arn=\"arn:b2\",reason=\"instance profile missing\"}} 1"),
        format!("imagebuilder_image_last_successful_build_timestamp_seconds{{{img}}} 1788981143.418"),
        format!("imagebuilder_image_tags{{{img},tag_team=\"platform\",tag_env=\"\"}} 1"),
    ] {
        assert!(text.lines().any(|x| x == l), "no {l} in\n{text}");
    }
    assert_eq!(
        text.matches("imagebuilder_image_build_status{").count(),
        BuildStatus::KNOWN.len()
    );
    // Without an allow-list there is no tag family.
    let text = render_one(
        Snapshot::build(
            "t",
            &views,
            &StepCounters::default(),
            &TagAllowList::default(),
        ),
        S,
    );
    assert!(!text.contains("imagebuilder_image_tags"));
}

#[test]
fn families_stay_contiguous_across_targets() {
    let view = |region: &str| {
        sv(
            StepKey {
                workflow: WorkflowKey {
                    region: region.into(),
                    ..key().workflow
                },
                ..key()
            },
            StepStatus::Running,
            Some(S),
            None,
            None,
        )
    };
    let a = Arc::new(snap(&[view("us-east-1")]));
    let b = Arc::new(snap(&[view("eu-west-1")]));
    let text = String::from_utf8(render_text(&[a, b], S)).unwrap();
    assert_eq!(
        text.matches("# TYPE imagebuilder_workflow_step_status gauge")
            .count(),
        1
    );
    let names: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('{').next().unwrap())
        .collect();
    let mut seen = Vec::new();
    for n in names {
        if seen.last() != Some(&n) {
            assert!(!seen.contains(&n), "{n} is split");
            seen.push(n);
        }
    }
}

#[test]
fn a_failed_build_names_its_component_and_its_regions() {
    use crate::model::{ComponentFailure, DistributionFailure, FailureContext, RegionFailure};
    use crate::tracking::views::{ImageKey, ImageView, NewestBuild};
    let region = |r: &str, status: &str, message: Option<&str>| RegionFailure {
        region: Some(r.into()),
        account_id: Some("210987654321".into()),
        status: Some(status.into()),
        configuration_step: None,
        message: message.map(Into::into),
    };
    let failure = FailureContext {
        failed_step: Some("ApplyBuildComponents".into()),
        workflow_arn: None,
        component: Some(ComponentFailure {
            component: "install-app/1.2.0".into(),
            phase: Some("build".into()),
            step: Some("InstallPackages".into()),
            action: Some("ExecuteBash".into()),
            message: Some("exit code 1".into()),
        }),
        distribution: Some(DistributionFailure {
            message: Some("Distribution failed".into()),
            regions: vec![
                region("eu-west-1", "FAILED", Some("KMS key not found")),
                // No message of its own: the distribution's.
                region("ap-southeast-2", "TIMED_OUT", None),
                // Twice the same: one series.
                region("eu-west-1", "FAILED", Some("KMS key not found")),
            ],
        }),
    };
    let view = ImageView {
        key: ImageKey {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            image: "web".into(),
        },
        newest: Some(NewestBuild {
            build: BuildRef {
                version: "1.0.0/2".into(),
                arn: "arn:b2".into(),
            },
            status: BuildStatus::Failed,
            build_type: None,
            log_group: "/aws/imagebuilder/web".into(),
            reason: None,
            tags: vec![],
            failure: Some(failure),
        }),
        last_success: None,
    };
    let views = Views {
        images: vec![view],
        ..Views::default()
    };
    let text = render_one(
        Snapshot::build(
            "t",
            &views,
            &StepCounters::default(),
            &TagAllowList::default(),
        ),
        S,
    );
    let img = r#"account_id="123456789012",region="us-east-1",image="web",image_version="1.0.0/2",image_build_version_arn="arn:b2""#;
    let want = [
        format!("imagebuilder_image_component_failure_info{{{img},failed_step=\"ApplyBuildComponents\",component=\"install-app/1.2.0\",phase=\"build\",component_step=\"InstallPackages\",action=\"ExecuteBash\",message=\"exit code 1\"}} 1"),
        format!("imagebuilder_image_distribution_failure_info{{{img},distribution_region=\"ap-southeast-2\",distribution_account_id=\"210987654321\",status=\"TIMED_OUT\",configuration_step=\"\",message=\"Distribution failed\"}} 1"),
        format!("imagebuilder_image_distribution_failure_info{{{img},distribution_region=\"eu-west-1\",distribution_account_id=\"210987654321\",status=\"FAILED\",configuration_step=\"\",message=\"KMS key not found\"}} 1"),
    ];
    let got: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("imagebuilder_image_component")
                || l.starts_with("imagebuilder_image_distribution")
        })
        .collect();
    assert_eq!(got, want, "{text}");
}

#[test]
fn pipelines_show_their_state_policy_and_schedule() {
    use crate::model::{Pipeline, PipelineStatus, Schedule};
    use crate::tracking::views::{PipelineKey, PipelineView};
    let key = |name: &str| PipelineKey {
        account_id: "123456789012".into(),
        region: "us-east-1".into(),
        pipeline: name.into(),
        image: "web".into(),
    };
    let scheduled = PipelineView {
        key: key("web-nightly"),
        pipeline: Pipeline {
            arn: "arn:p1".into(),
            name: "web-nightly".into(),
            recipe: Some("web".into()),
            status: PipelineStatus::Disabled,
            consecutive_failures: Some(3),
            schedule: Some(Schedule {
                expression: Some("cron(0 3 * * ? *)".into()),
                timezone: Some("Europe/Paris".into()),
                start_condition: Some("EXPRESSION_MATCH_ONLY".into()),
                auto_disable_failure_count: Some(3),
            }),
            last_run_status: Some(BuildStatus::Failed),
            next_run: None,
        },
    };
    let manual = PipelineView {
        key: key("web-manual"),
        pipeline: Pipeline {
            arn: "arn:p2".into(),
            name: "web-manual".into(),
            recipe: Some("web".into()),
            status: PipelineStatus::Other("PAUSED".into()),
            consecutive_failures: None,
            schedule: None,
            last_run_status: None,
            next_run: Some(S),
        },
    };
    let views = Views {
        pipelines: vec![manual, scheduled],
        ..Views::default()
    };
    let text = render_one(
        Snapshot::build(
            "t",
            &views,
            &StepCounters::default(),
            &TagAllowList::default(),
        ),
        S,
    );
    let p = |n: &str| {
        format!(r#"account_id="123456789012",region="us-east-1",pipeline="{n}",image="web""#)
    };
    let (n, m) = (p("web-nightly"), p("web-manual"));
    for l in [
        format!("imagebuilder_image_pipeline_status{{{n},status=\"DISABLED\"}} 1"),
        format!("imagebuilder_image_pipeline_status{{{n},status=\"ENABLED\"}} 0"),
        format!("imagebuilder_image_pipeline_consecutive_failures{{{n}}} 3"),
        format!("imagebuilder_image_pipeline_auto_disable_failure_limit{{{n}}} 3"),
        format!("imagebuilder_image_pipeline_last_run_status{{{n},status=\"FAILED\"}} 1"),
        format!("imagebuilder_image_pipeline_info{{{n},pipeline_arn=\"arn:p1\",schedule_expression=\"cron(0 3 * * ? *)\",timezone=\"Europe/Paris\",start_condition=\"EXPRESSION_MATCH_ONLY\"}} 1"),
        // An unknown status is kept as its own series.
        format!("imagebuilder_image_pipeline_status{{{m},status=\"PAUSED\"}} 1"),
        format!("imagebuilder_image_pipeline_status{{{m},status=\"DISABLED\"}} 0"),
        format!("imagebuilder_image_pipeline_next_run_timestamp_seconds{{{m}}} 1788981143.418"),
        format!("imagebuilder_image_pipeline_info{{{m},pipeline_arn=\"arn:p2\",schedule_expression=\"\",timezone=\"\",start_condition=\"\"}} 1"),
    ] {
        assert!(text.lines().any(|x| x == l), "no {l} in\n{text}");
    }
    assert_eq!(
        text.matches("imagebuilder_image_pipeline_last_run_status{")
            .count(),
        BuildStatus::KNOWN.len()
    );
    // Absent when the service gives none.
    for absent in [
        format!("imagebuilder_image_pipeline_consecutive_failures{{{m}}}"),
        format!("imagebuilder_image_pipeline_auto_disable_failure_limit{{{m}}}"),
        format!("imagebuilder_image_pipeline_last_run_status{{{m}"),
        format!("imagebuilder_image_pipeline_next_run_timestamp_seconds{{{n}}}"),
    ] {
        assert!(!text.contains(&absent), "{absent} in\n{text}");
    }
}

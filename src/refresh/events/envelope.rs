//! Reading an EventBridge event: which image build version it names, and
//! whether it is one this target should act on.

use serde::Deserialize;

use crate::base::clock::Nanos;
use crate::base::timestamp::parse_rfc3339;
use crate::model::parse_arn;

/// The detail types the exporter follows.
pub const DETAIL_TYPES: [&str; 3] = [
    "EC2 Image Builder Image State Change",
    "EC2 Image Builder Workflow Step Waiting",
    PIPELINE_DISABLED,
];

/// The service disabled a pipeline after failed scheduled runs: the
/// pipelines are read again at once.
pub const PIPELINE_DISABLED: &str = "EC2 Image Builder Image Pipeline Automatically Disabled";

/// What an event says to read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An image build version ARN.
    Build(String),
    /// An image pipeline ARN.
    Pipeline(String),
}

/// A usable event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub subject: Subject,
    /// The event's `time`, when it has one.
    pub time: Option<Nanos>,
}

/// Why a message is not acted on; the `reason` label of
/// `imagebuilder_exporter_events_ignored_total`. None of these can become
/// valid later, so the message is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Not a JSON object.
    NotJson,
    /// JSON, but not an Image Builder event the exporter follows, or one
    /// that names no image build version.
    NotImageBuilder,
    /// An event of another account or region than the target's.
    OtherAccount,
    /// A build the API does not know (deleted since, say).
    UnknownBuild,
    /// A pipeline the listing does not hold (deleted since, say).
    UnknownPipeline,
}

impl Ignored {
    pub const ALL: [Ignored; 5] = [
        Ignored::NotJson,
        Ignored::NotImageBuilder,
        Ignored::OtherAccount,
        Ignored::UnknownBuild,
        Ignored::UnknownPipeline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::NotJson => "not_json",
            Ignored::NotImageBuilder => "not_imagebuilder",
            Ignored::OtherAccount => "other_account_or_region",
            Ignored::UnknownBuild => "unknown_build",
            Ignored::UnknownPipeline => "unknown_pipeline",
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    source: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    account: Option<String>,
    region: Option<String>,
    time: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    detail: serde_json::Value,
}

/// Where the target reads: its region, and its account when known (it is
/// known once a build was listed, or from the role it assumes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub account_id: Option<String>,
    pub region: String,
}

/// Reads a message body.
pub fn read(body: &str, scope: &Scope) -> Result<Hint, Ignored> {
    let value: serde_json::Value = serde_json::from_str(body).map_err(|_| Ignored::NotJson)?;
    if !value.is_object() {
        return Err(Ignored::NotJson);
    }
    let e: Envelope = serde_json::from_value(value).map_err(|_| Ignored::NotImageBuilder)?;
    let followed = e.source.as_deref() == Some("aws.imagebuilder")
        && e.detail_type
            .as_deref()
            .is_some_and(|d| DETAIL_TYPES.contains(&d));
    if !followed {
        return Err(Ignored::NotImageBuilder);
    }
    let time = e.time.as_deref().and_then(|t| parse_rfc3339(t).ok());
    // A pipeline event names its pipeline in `resources`; its detail is
    // not relied on (the listing read next is what is served).
    let (subject, arn) = if e.detail_type.as_deref() == Some(PIPELINE_DISABLED) {
        let arn = e
            .resources
            .iter()
            .find(|a| parse_arn(a).is_some_and(|p| p.resource_type == "image-pipeline"))
            .ok_or(Ignored::NotImageBuilder)?;
        (Subject::Pipeline(arn.clone()), arn.as_str())
    } else {
        // The build version: in `resources`, or in the detail of a step event.
        let in_detail = ["image-build-version-arn", "imageBuildVersionArn"]
            .iter()
            .filter_map(|k| e.detail.get(*k).and_then(|v| v.as_str()));
        let arn = e
            .resources
            .iter()
            .map(String::as_str)
            .chain(in_detail)
            .find(|a| is_build_version(a))
            .ok_or(Ignored::NotImageBuilder)?;
        (Subject::Build(arn.to_string()), arn)
    };
    let parts = parse_arn(arn).ok_or(Ignored::NotImageBuilder)?;
    let account_ok = scope
        .account_id
        .as_deref()
        .is_none_or(|a| a == parts.account_id)
        && e.account.as_deref().is_none_or(|a| a == parts.account_id);
    let region_ok =
        parts.region == scope.region && e.region.as_deref().is_none_or(|r| r == scope.region);
    if !account_ok || !region_ok {
        return Err(Ignored::OtherAccount);
    }
    Ok(Hint { subject, time })
}

/// `…:image/name/1.0.0/7`: an image build version, not an image version.
fn is_build_version(arn: &str) -> bool {
    parse_arn(arn).is_some_and(|p| p.resource_type == "image")
        && arn
            .rsplit('/')
            .next()
            .is_some_and(|n| n.parse::<u64>().is_ok())
        && arn.matches('/').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:imagebuilder:us-east-1:123456789012:image/web-server/1.0.0/7";

    fn scope() -> Scope {
        Scope {
            account_id: Some("123456789012".into()),
            region: "us-east-1".into(),
        }
    }

    fn event(detail_type: &str, resources: &[&str]) -> String {
        serde_json::json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type,
            "source": "aws.imagebuilder",
            "account": "123456789012",
            "time": "2026-09-09T19:12:23Z",
            "region": "us-east-1",
            "resources": resources,
            "detail": {"previous-state": {"status": "BUILDING"}, "state": {"status": "FAILED"}}
        })
        .to_string()
    }

    #[test]
    fn a_state_change_names_its_build() {
        let h = read(&event(DETAIL_TYPES[0], &[ARN]), &scope()).unwrap();
        assert_eq!(h.subject, Subject::Build(ARN.into()));
        assert_eq!(h.time, Some(1_788_981_143_000_000_000));
        // The account is not known yet: the region decides.
        let open = Scope {
            account_id: None,
            ..scope()
        };
        assert!(read(&event(DETAIL_TYPES[1], &[ARN]), &open).is_ok());
    }

    #[test]
    fn a_step_event_may_name_its_build_in_the_detail() {
        let body = serde_json::json!({
            "source": "aws.imagebuilder",
            "detail-type": DETAIL_TYPES[1],
            "region": "us-east-1",
            "resources": ["arn:aws:imagebuilder:us-east-1:123456789012:workflow-execution/wf-1"],
            "detail": {"image-build-version-arn": ARN}
        })
        .to_string();
        assert_eq!(
            read(&body, &scope()).unwrap().subject,
            Subject::Build(ARN.into())
        );
    }

    #[test]
    fn a_disabled_pipeline_names_its_pipeline_whatever_its_detail() {
        let pipeline = "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/web-nightly";
        for detail in [
            serde_json::json!({"pipeline-arn": pipeline, "consecutive-failures": 3}),
            serde_json::json!("anything"),
            serde_json::Value::Null,
        ] {
            let body = serde_json::json!({
                "source": "aws.imagebuilder",
                "detail-type": PIPELINE_DISABLED,
                "account": "123456789012",
                "region": "us-east-1",
                "time": "2026-09-09T19:12:23Z",
                "resources": [pipeline],
                "detail": detail,
            })
            .to_string();
            let h = read(&body, &scope()).unwrap();
            assert_eq!(h.subject, Subject::Pipeline(pipeline.into()));
            assert_eq!(h.time, Some(1_788_981_143_000_000_000));
        }
        // A pipeline of another account, or an event naming no pipeline.
        let other = pipeline.replace("123456789012", "210987654321");
        assert_eq!(
            read(&event(PIPELINE_DISABLED, &[&other]), &scope()),
            Err(Ignored::OtherAccount)
        );
        assert_eq!(
            read(&event(PIPELINE_DISABLED, &[ARN]), &scope()),
            Err(Ignored::NotImageBuilder)
        );
    }

    #[test]
    fn what_can_never_be_used_says_why() {
        for (body, why) in [
            ("not json".to_string(), Ignored::NotJson),
            ("[1, 2]".to_string(), Ignored::NotJson),
            ("{\"source\": 7}".to_string(), Ignored::NotImageBuilder),
            (
                event(DETAIL_TYPES[0], &[ARN]).replace("aws.imagebuilder", "aws.ec2"),
                Ignored::NotImageBuilder,
            ),
            (
                event("EC2 Image Builder Pipeline Created", &[ARN]),
                Ignored::NotImageBuilder,
            ),
            (
                event(
                    DETAIL_TYPES[0],
                    &["arn:aws:imagebuilder:us-east-1:123456789012:image/web-server/1.0.0"],
                ),
                Ignored::NotImageBuilder,
            ),
            (
                event(
                    DETAIL_TYPES[0],
                    &[&ARN.replace("123456789012", "210987654321")],
                ),
                Ignored::OtherAccount,
            ),
            (
                event(DETAIL_TYPES[0], &[&ARN.replace("us-east-1", "eu-west-1")]),
                Ignored::OtherAccount,
            ),
        ] {
            assert_eq!(read(&body, &scope()), Err(why), "{body}");
        }
    }
}

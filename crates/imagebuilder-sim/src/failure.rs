//! Why a build failed, as `ImageState.failureContext` says it: what a
//! scenario or a test sets on a build (a distribution that fails, or a
//! literal context), and the JSON of the parts that do not depend on the
//! build's state (`shapes.rs` derives the rest from its failed step).

use serde_json::{json, Map, Value};

use crate::clock::Nanos;

/// The model's pattern of `componentArn` (`ComponentBuildVersionArn`): a
/// derived context never serves an ARN outside it.
pub const COMPONENT_ARN: &str = r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws(?:-[a-z-]+)?|third-party):component/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$";

/// A distribution that fails: once the build's workflows have completed,
/// the image is DISTRIBUTING for `duration`, then FAILED with a
/// `distributionFailure` (imageStatus DISTRIBUTING) and `message` as its
/// `state.reason`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DistributionPlan {
    pub duration: Nanos,
    /// `distributionFailure.errorMessage`, and the image's `state.reason`.
    pub message: String,
    /// `regionFailures` (absent when empty: the model wants at least one).
    pub regions: Vec<SimRegionFailure>,
}

/// One entry of `regionFailures`; each member absent when `None`, so that
/// tests can serve a Region failure without a Region.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimRegionFailure {
    pub region: Option<String>,
    /// `targetAccountId` (12 digits in the model).
    pub account_id: Option<String>,
    /// `status`: FAILED, CANCELLED or TIMED_OUT in the model.
    pub status: Option<String>,
    /// `imageConfigurationStep` (ASSOCIATE_LICENSES, UPDATE_LAUNCH_TEMPLATES,
    /// PUT_SSM_PARAMETERS, UPDATE_FAST_LAUNCH_CONFIGURATIONS, EXPORT_AMI):
    /// only for failures after the copy, while configuring the image.
    pub configuration_step: Option<String>,
    pub message: Option<String>,
}

/// A failure context set on a build instead of the derived one. Served
/// only while the build is FAILED (the service sets it only then), except
/// `Fixed`, served as given whatever the status.
#[derive(Debug, Clone, PartialEq)]
pub enum SimFailureContext {
    /// A `componentFailure` with these members (each absent when `None`).
    /// The workflow, step and `imageStatus` are the build's failed step's,
    /// when it has one; `failed_step` replaces the step's name.
    Component {
        failed_step: Option<String>,
        component_arn: Option<String>,
        phase: Option<String>,
        step: Option<String>,
        action: Option<String>,
        message: Option<String>,
    },
    /// A `distributionFailure` (imageStatus DISTRIBUTING), without the
    /// timing of a [`DistributionPlan`] (for fixed builds).
    Distribution {
        message: Option<String>,
        regions: Vec<SimRegionFailure>,
    },
    /// The literal `failureContext`, members missing or unknown as given.
    Fixed(Value),
}

fn put(m: &mut Map<String, Value>, key: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(key.into(), json!(v));
    }
}

/// `DistributionFailureContext` as JSON.
pub fn distribution_json(message: Option<&str>, regions: &[SimRegionFailure]) -> Value {
    let mut m = Map::new();
    if let Some(x) = message.filter(|x| !x.is_empty()) {
        m.insert("errorMessage".into(), json!(x));
    }
    let regions: Vec<Value> = regions
        .iter()
        .map(|r| {
            let mut o = Map::new();
            put(&mut o, "region", &r.region);
            put(&mut o, "status", &r.status);
            put(&mut o, "imageConfigurationStep", &r.configuration_step);
            put(&mut o, "errorMessage", &r.message);
            put(&mut o, "targetAccountId", &r.account_id);
            Value::Object(o)
        })
        .collect();
    if !regions.is_empty() {
        m.insert("regionFailures".into(), Value::Array(regions));
    }
    Value::Object(m)
}

/// `ComponentFailureContext` as JSON, members absent when `None`.
pub fn component_json(
    component_arn: &Option<String>,
    phase: &Option<String>,
    step: &Option<String>,
    action: &Option<String>,
    message: &Option<String>,
) -> Value {
    let mut m = Map::new();
    put(&mut m, "componentArn", component_arn);
    put(&mut m, "phaseName", phase);
    put(&mut m, "stepName", step);
    put(&mut m, "action", action);
    put(&mut m, "errorMessage", message);
    Value::Object(m)
}

/// The component ARN, component step and error of a failed
/// `ExecuteComponents` step's message in AWSTOE's form, as
/// `scenario::failure_message` writes it: `Document <component ARN>
/// failed!` then `Step "<step>" failed: <error>` (the error's first line).
fn parse_toe(message: &str) -> Option<(&str, &str, &str)> {
    let rest = message.trim_start().strip_prefix("Document ")?;
    let (arn, rest) = rest.split_once(" failed!")?;
    let rest = rest.trim_start().strip_prefix("Step \"")?;
    let (step, rest) = rest.split_once("\" failed: ")?;
    let error = rest.lines().next()?.trim();
    Some((arn, step, error))
}

/// The component step a phase's failure is blamed on when the message
/// does not say (the demo's components install packages, then check them).
pub fn default_component_step(phase: &str) -> &'static str {
    if phase == "test" {
        "VerifyPackages"
    } else {
        "InstallPackages"
    }
}

/// The `componentFailure` of a planned `ExecuteComponents` step of `image`
/// (build `build_arn`) that failed in `phase` with `message`: read from the
/// message when it is in AWSTOE's form, else the image's own
/// `install-<image>` component in the build's account and Region. Always
/// valid against the model (pattern of the ARN, non-empty strings).
pub fn derived_component(build_arn: &str, image: &str, phase: &str, message: &str) -> Value {
    // Compiled once: every listing derives the context of each failed build.
    static PATTERN: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| regex::Regex::new(COMPONENT_ARN).ok());
    let parsed = parse_toe(message)
        .filter(|(arn, step, error)| {
            pattern.as_ref().is_some_and(|re| re.is_match(arn))
                && !step.is_empty()
                && !error.is_empty()
        })
        .map(|(a, s, e)| (a.to_string(), s.to_string(), e.to_string()));
    let (arn, step, error) = parsed.unwrap_or_else(|| {
        let parts: Vec<&str> = build_arn.splitn(6, ':').collect();
        let field = |i: usize, default: &'static str| {
            parts
                .get(i)
                .copied()
                .filter(|x| !x.is_empty())
                .unwrap_or(default)
        };
        let component = image.to_ascii_lowercase().replace([' ', '_'], "-");
        let arn = format!(
            "arn:{}:imagebuilder:{}:{}:component/install-{component}/1.0.0/1",
            field(1, "aws"),
            field(3, "us-east-1"),
            field(4, "123456789012"),
        );
        let error = if message.trim().is_empty() {
            "The component step failed".to_string()
        } else {
            message.trim().to_string()
        };
        (arn, default_component_step(phase).to_string(), error)
    });
    component_json(
        &Some(arn),
        &Some(phase.to_string()),
        &Some(step),
        &Some("ExecuteBash".into()),
        &Some(error),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:imagebuilder:eu-west-1:210987654321:image/web/1.0.0/3";

    #[test]
    fn a_component_failure_is_read_from_awstoe_s_message() {
        let m = "Document arn:aws:imagebuilder:us-east-1:123456789012:component/install-app/1.2.0/4 failed!\n  Step \"Configure\" failed: exit 3\nSee the logs";
        assert_eq!(
            derived_component(ARN, "web", "build", m),
            json!({
                "componentArn": "arn:aws:imagebuilder:us-east-1:123456789012:component/install-app/1.2.0/4",
                "phaseName": "build",
                "stepName": "Configure",
                "action": "ExecuteBash",
                "errorMessage": "exit 3",
            })
        );
    }

    #[test]
    fn otherwise_the_image_s_component_in_the_build_s_account_is_blamed() {
        let re = regex::Regex::new(COMPONENT_ARN).unwrap();
        for m in [
            "it broke",
            "Document not-an-arn failed!\nStep \"X\" failed: y",
            "",
        ] {
            let v = derived_component(ARN, "My_Web App", "test", m);
            assert_eq!(
                v["componentArn"],
                "arn:aws:imagebuilder:eu-west-1:210987654321:component/install-my-web-app/1.0.0/1",
                "{m}"
            );
            assert_eq!(v["stepName"], "VerifyPackages");
            assert_eq!(v["phaseName"], "test");
            assert!(!v["errorMessage"].as_str().unwrap().is_empty());
            assert!(re.is_match(v["componentArn"].as_str().unwrap()));
        }
    }

    #[test]
    fn absent_members_are_left_out() {
        let r = SimRegionFailure {
            region: Some("eu-west-1".into()),
            ..SimRegionFailure::default()
        };
        assert_eq!(
            distribution_json(None, &[r]),
            json!({ "regionFailures": [{ "region": "eu-west-1" }] })
        );
        assert_eq!(distribution_json(Some(""), &[]), json!({}));
        assert_eq!(
            component_json(&None, &Some("build".into()), &None, &None, &None),
            json!({ "phaseName": "build" })
        );
    }
}

//! What the service models say a request's parameters must be, shape by
//! shape, so that the simulator refuses what the real services refuse.
//!
//! Written here from botocore's models (Image Builder 2019-12-02, STS
//! 2011-06-15); nothing reads a model at run time. The simulator's rules are
//! its own on purpose: a client that validates with the same patterns
//! would pass its tests even if a pattern were wrong on both sides.

use std::sync::OnceLock;

use regex::Regex;

/// A string shape's constraints.
pub(crate) struct Shape {
    /// The shape's name in the model.
    pub name: &'static str,
    /// The pattern as the model writes it: the services quote it when they
    /// refuse a value.
    pub model_pattern: &'static str,
    /// The same rule in Rust's regex syntax, anchored: the whole value must
    /// match (the model's `\w` is ASCII, its `\uXXXX` ranges are spelled
    /// out).
    regex: &'static str,
    /// Length bounds, in characters.
    pub min: Option<usize>,
    pub max: Option<usize>,
    compiled: OnceLock<Result<Regex, regex::Error>>,
}

impl Shape {
    const fn new(
        name: &'static str,
        model_pattern: &'static str,
        regex: &'static str,
        min: Option<usize>,
        max: Option<usize>,
    ) -> Self {
        Self {
            name,
            model_pattern,
            regex,
            min,
            max,
            compiled: OnceLock::new(),
        }
    }

    /// `None` if `v` satisfies the shape, else the constraint it fails, as
    /// the services word it ("Member must …").
    pub fn violation(&self, v: &str) -> Option<String> {
        let len = v.chars().count();
        if let Some(min) = self.min.filter(|&m| len < m) {
            return Some(format!(
                "Member must have length greater than or equal to {min}"
            ));
        }
        if let Some(max) = self.max.filter(|&m| len > m) {
            return Some(format!(
                "Member must have length less than or equal to {max}"
            ));
        }
        match self.compiled.get_or_init(|| Regex::new(self.regex)) {
            Ok(re) if re.is_match(v) => None,
            Ok(_) => Some(format!(
                "Member must satisfy regular expression pattern: {}",
                self.model_pattern
            )),
            Err(e) => Some(format!("{}: unusable pattern: {e}", self.name)),
        }
    }
}

/// Image Builder's `ImageBuildVersionArn`.
pub(crate) static IMAGE_BUILD_VERSION_ARN: Shape = Shape::new(
    "ImageBuildVersionArn",
    r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws(?:-[a-z-]+)?):image/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
    r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws(?:-[a-z-]+)?):image/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
    None,
    None,
);

/// Image Builder's `WorkflowExecutionId`.
pub(crate) static WORKFLOW_EXECUTION_ID: Shape = Shape::new(
    "WorkflowExecutionId",
    r"^wf-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    r"^wf-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    None,
    None,
);

/// Image Builder's `WorkflowStepExecutionId`.
pub(crate) static WORKFLOW_STEP_EXECUTION_ID: Shape = Shape::new(
    "WorkflowStepExecutionId",
    r"^step-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    r"^step-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    None,
    None,
);

/// STS's `arnType` (`AssumeRole`'s `RoleArn`): any printable text of 20 to
/// 2048 characters. That it names a role is checked by [`role_account`].
pub(crate) static ARN: Shape = Shape::new(
    "arnType",
    r"[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+",
    r"^[\t\n\r\x20-\x7E\x{85}\x{A0}-\x{D7FF}\x{E000}-\x{FFFD}\x{10000}-\x{10FFFF}]+$",
    Some(20),
    Some(2048),
);

/// STS's `roleSessionNameType`.
pub(crate) static ROLE_SESSION_NAME: Shape = Shape::new(
    "roleSessionNameType",
    r"[\w+=,.@-]*",
    r"^[A-Za-z0-9_+=,.@-]*$",
    Some(2),
    Some(64),
);

/// STS's `externalIdType`.
pub(crate) static EXTERNAL_ID: Shape = Shape::new(
    "externalIdType",
    r"[\w+=,.@:\/-]*",
    r"^[A-Za-z0-9_+=,.@:/-]*$",
    Some(2),
    Some(1224),
);

/// The account of an IAM role ARN (`arn:aws:iam::123456789012:role/name`,
/// with an optional path before the name), `None` if `arn` names no role:
/// an `aws` partition, the `iam` service, no region, a 12-digit account,
/// and a `role/` resource whose path and name use IAM's characters
/// (letters, digits, `_+=,.@-`, and `/` between path parts), 512 at most.
pub fn role_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (prefix, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let partition_ok = partition
        .strip_prefix("aws")
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
    let name = resource.strip_prefix("role/")?;
    let name_ok = (1..=512).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-/".contains(&b));
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    (prefix == "arn"
        && partition_ok
        && service == "iam"
        && region.is_empty()
        && account_ok
        && name_ok)
        .then_some(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "5ed8a7f8-1c2a-4d7e-9a3b-0c1d2e3f4a5b";

    #[test]
    fn every_pattern_compiles() {
        for shape in [
            &IMAGE_BUILD_VERSION_ARN,
            &WORKFLOW_EXECUTION_ID,
            &WORKFLOW_STEP_EXECUTION_ID,
            &ARN,
            &ROLE_SESSION_NAME,
            &EXTERNAL_ID,
        ] {
            assert!(Regex::new(shape.regex).is_ok(), "{}", shape.name);
        }
    }

    #[test]
    fn image_builder_ids_and_arns() {
        let ok = "arn:aws:imagebuilder:us-east-1:123456789012:image/web-base/1.0.0/3";
        assert_eq!(IMAGE_BUILD_VERSION_ARN.violation(ok), None);
        let aws_owned = "arn:aws-cn:imagebuilder:cn-north-1:aws:image/amzn2/2024.1.0/1";
        assert_eq!(IMAGE_BUILD_VERSION_ARN.violation(aws_owned), None);
        for bad in [
            // An image version, not a build of it.
            "arn:aws:imagebuilder:us-east-1:123456789012:image/web-base/1.0.0",
            "arn:aws:imagebuilder:us-east-1:12345:image/web-base/1.0.0/3",
            "arn:aws:imagebuilder:us-east-1:123456789012:image/Web-Base/1.0.0/3",
            "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/web-base",
        ] {
            let why = IMAGE_BUILD_VERSION_ARN.violation(bad).expect(bad);
            assert!(
                why.starts_with("Member must satisfy regular expression pattern: ^arn:aws"),
                "{why}"
            );
        }
        assert_eq!(WORKFLOW_EXECUTION_ID.violation(&format!("wf-{UUID}")), None);
        assert!(WORKFLOW_EXECUTION_ID
            .violation(&format!("step-{UUID}"))
            .is_some());
        assert!(WORKFLOW_EXECUTION_ID
            .violation(&format!("wf-{UUID}x"))
            .is_some());
        assert_eq!(
            WORKFLOW_STEP_EXECUTION_ID.violation(&format!("step-{UUID}")),
            None
        );
        assert!(WORKFLOW_STEP_EXECUTION_ID
            .violation(&format!("wf-{UUID}"))
            .is_some());
    }

    #[test]
    fn sts_parameters_as_its_model_bounds_them() {
        let role = "arn:aws:iam::210987654321:role/exporter";
        assert_eq!(ARN.violation(role), None);
        assert_eq!(
            ARN.violation("arn:aws:iam::1:role"),
            Some("Member must have length greater than or equal to 20".into())
        );
        assert!(ARN.violation(&"a".repeat(2049)).is_some());
        assert!(ARN
            .violation("arn:aws:iam::210987654321:role/\u{7}bell")
            .is_some());
        assert_eq!(ROLE_SESSION_NAME.violation("ibx-exporter@prod.1"), None);
        assert!(ROLE_SESSION_NAME.violation("x").is_some());
        assert!(ROLE_SESSION_NAME.violation("two words").is_some());
        // The model's \w is ASCII.
        assert!(ROLE_SESSION_NAME.violation("café-session").is_some());
        assert!(ROLE_SESSION_NAME.violation(&"s".repeat(65)).is_some());
        assert_eq!(EXTERNAL_ID.violation("ibx:secret/id-1"), None);
        assert!(EXTERNAL_ID.violation("no spaces").is_some());
        assert!(EXTERNAL_ID.violation(&"e".repeat(1225)).is_some());
        let why = EXTERNAL_ID.violation("a b").unwrap();
        assert_eq!(
            why,
            r"Member must satisfy regular expression pattern: [\w+=,.@:\/-]*"
        );
    }

    #[test]
    fn roles_and_their_accounts() {
        assert_eq!(
            role_account("arn:aws:iam::210987654321:role/exporter"),
            Some("210987654321")
        );
        assert_eq!(
            role_account("arn:aws-us-gov:iam::210987654321:role/team/ci/exporter"),
            Some("210987654321")
        );
        for not_a_role in [
            "arn:aws:iam::210987654321:user/alice",
            "arn:aws:iam::21098765432:role/exporter",
            "arn:aws:iam:us-east-1:210987654321:role/exporter",
            "arn:aws:sts::210987654321:role/exporter",
            "arn:gcp:iam::210987654321:role/exporter",
            "arn:aws:iam::210987654321:role/",
            "arn:aws:iam::210987654321:role/has space",
            "arn:aws:iam::210987654321:role/a:b",
            "role/exporter",
        ] {
            assert_eq!(role_account(not_a_role), None, "{not_a_role}");
        }
    }
}

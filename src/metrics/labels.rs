//! Typed label sets: each kind of series names its labels once, and a set
//! of values of the wrong length does not compile.
//!
//! ```
//! use imagebuilder_exporter::metrics::labels::{encode, LabelSet};
//! struct Build<'a> { version: &'a str, arn: &'a str }
//! impl LabelSet<2> for Build<'_> {
//!     const NAMES: [&'static str; 2] = ["image_version", "image_build_version_arn"];
//!     fn values(&self) -> [&str; 2] { [self.version, self.arn] }
//! }
//! let text = encode(&Build { version: "1.0.0/7", arn: "a\"b" });
//! assert_eq!(text, br#"image_version="1.0.0/7",image_build_version_arn="a\"b""#);
//! ```

use super::text::write_labels;

/// A fixed set of labels and the values of one series.
pub trait LabelSet<const N: usize> {
    /// The label names, in exposition order.
    const NAMES: [&'static str; N];
    /// The values, in the order of [`LabelSet::NAMES`].
    fn values(&self) -> [&str; N];
}

/// `name="value",…` (no braces), escaped.
pub fn encode<L: LabelSet<N>, const N: usize>(labels: &L) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 * N);
    write_labels(&mut out, &L::NAMES, &labels.values());
    out
}

/// Labels of every step series.
pub const STEP: [&str; 7] = [
    "account_id",
    "region",
    "image",
    "workflow_arn",
    "workflow_type",
    "step_name",
    "action",
];

/// Labels of the workflow-execution families.
pub const WORKFLOW: [&str; 5] = [
    "account_id",
    "region",
    "image",
    "workflow_arn",
    "workflow_type",
];

/// Labels of the image families.
pub const IMAGE: [&str; 3] = ["account_id", "region", "image"];

/// Labels of the pipeline families: `image` joins them to the image
/// families (a pipeline's recipe names the image its builds carry).
pub const PIPELINE: [&str; 4] = ["account_id", "region", "pipeline", "image"];

/// Labels of the step duration histogram: no `image`, so that its
/// cardinality does not grow with the number of images.
pub const HISTOGRAM: [&str; 6] = [
    "account_id",
    "region",
    "workflow_arn",
    "workflow_type",
    "step_name",
    "action",
];

/// The label of a state set (`_status` families, and the terminal status of
/// `imagebuilder_workflow_step_executions_total`).
pub const STATUS: [&str; 1] = ["status"];

/// The label of `imagebuilder_workflow_execution_steps`.
pub const OUTCOME: [&str; 1] = ["outcome"];

/// Labels of the exporter's per-target metrics: the region, or the name
/// given in the config file.
pub const TARGET: [&str; 1] = ["target"];

/// Stands, in the metric table, for the labels `--labels.image-tags` names
/// at run time (`tag_` and each key, see [`TagAllowList`]): they cannot be
/// listed in advance.
pub const TAG_LABELS: [&str; 1] = ["tag_<key>"];

/// The build version a row comes from, on the `_info` families.
pub struct BuildLabels<'a> {
    pub version: &'a str,
    pub arn: &'a str,
}

impl LabelSet<2> for BuildLabels<'_> {
    const NAMES: [&'static str; 2] = ["image_version", "image_build_version_arn"];
    fn values(&self) -> [&str; 2] {
        [self.version, self.arn]
    }
}

/// The extra labels of `imagebuilder_workflow_step_info`.
pub struct StepInfoLabels<'a> {
    pub build: BuildLabels<'a>,
    pub on_failure: &'a str,
    pub attempt: &'a str,
    pub max_attempts: &'a str,
}

impl LabelSet<5> for StepInfoLabels<'_> {
    const NAMES: [&'static str; 5] = [
        "image_version",
        "image_build_version_arn",
        "on_failure",
        "attempt",
        "max_attempts",
    ];
    fn values(&self) -> [&str; 5] {
        let [v, a] = self.build.values();
        [v, a, self.on_failure, self.attempt, self.max_attempts]
    }
}

/// The extra labels of the failure `_info` families: the build and a text
/// (`message` or `reason`).
pub struct FailureLabels<'a> {
    pub build: BuildLabels<'a>,
    pub text: &'a str,
}

/// `message` of a failed step or workflow execution.
pub struct MessageLabels<'a>(pub FailureLabels<'a>);

impl LabelSet<3> for MessageLabels<'_> {
    const NAMES: [&'static str; 3] = ["image_version", "image_build_version_arn", "message"];
    fn values(&self) -> [&str; 3] {
        let [v, a] = self.0.build.values();
        [v, a, self.0.text]
    }
}

/// `reason` of a failed build.
pub struct ReasonLabels<'a>(pub FailureLabels<'a>);

impl LabelSet<3> for ReasonLabels<'_> {
    const NAMES: [&'static str; 3] = ["image_version", "image_build_version_arn", "reason"];
    fn values(&self) -> [&str; 3] {
        let [v, a] = self.0.build.values();
        [v, a, self.0.text]
    }
}

/// The extra labels of `imagebuilder_image_build_info`.
pub struct ImageInfoLabels<'a> {
    pub build: BuildLabels<'a>,
    pub build_type: &'a str,
    pub log_group: &'a str,
}

impl LabelSet<4> for ImageInfoLabels<'_> {
    const NAMES: [&'static str; 4] = [
        "image_version",
        "image_build_version_arn",
        "build_type",
        "log_group",
    ];
    fn values(&self) -> [&str; 4] {
        let [v, a] = self.build.values();
        [v, a, self.build_type, self.log_group]
    }
}

/// The extra labels of `imagebuilder_image_component_failure_info`.
pub struct ComponentFailureLabels<'a> {
    pub build: BuildLabels<'a>,
    pub failed_step: &'a str,
    pub component: &'a str,
    pub phase: &'a str,
    pub component_step: &'a str,
    pub action: &'a str,
    pub message: &'a str,
}

impl LabelSet<8> for ComponentFailureLabels<'_> {
    const NAMES: [&'static str; 8] = [
        "image_version",
        "image_build_version_arn",
        "failed_step",
        "component",
        "phase",
        "component_step",
        "action",
        "message",
    ];
    fn values(&self) -> [&str; 8] {
        let [v, a] = self.build.values();
        [
            v,
            a,
            self.failed_step,
            self.component,
            self.phase,
            self.component_step,
            self.action,
            self.message,
        ]
    }
}

/// The extra labels of `imagebuilder_image_distribution_failure_info`.
pub struct DistributionFailureLabels<'a> {
    pub build: BuildLabels<'a>,
    pub region: &'a str,
    pub account_id: &'a str,
    pub status: &'a str,
    pub configuration_step: &'a str,
    pub message: &'a str,
}

impl LabelSet<7> for DistributionFailureLabels<'_> {
    const NAMES: [&'static str; 7] = [
        "image_version",
        "image_build_version_arn",
        "distribution_region",
        "distribution_account_id",
        "status",
        "configuration_step",
        "message",
    ];
    fn values(&self) -> [&str; 7] {
        let [v, a] = self.build.values();
        [
            v,
            a,
            self.region,
            self.account_id,
            self.status,
            self.configuration_step,
            self.message,
        ]
    }
}

/// The extra labels of `imagebuilder_image_pipeline_info`.
pub struct PipelineInfoLabels<'a> {
    pub arn: &'a str,
    pub schedule_expression: &'a str,
    pub timezone: &'a str,
    pub start_condition: &'a str,
}

impl LabelSet<4> for PipelineInfoLabels<'_> {
    const NAMES: [&'static str; 4] = [
        "pipeline_arn",
        "schedule_expression",
        "timezone",
        "start_condition",
    ];
    fn values(&self) -> [&str; 4] {
        [
            self.arn,
            self.schedule_expression,
            self.timezone,
            self.start_condition,
        ]
    }
}

/// A `--labels.image-tags` value that is refused (clap names the flag).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagListError {
    #[error("{0:?} is not a list of tag keys: give keys of 1 to 128 characters separated by commas, like team,env")]
    NotAList(String),
    #[error("tag key {key:?} is listed twice in {list:?}")]
    Twice { key: String, list: String },
    /// Two keys whose label names are the same once sanitised.
    #[error("tag keys {first:?} and {second:?} both become the label {label}: keep one of them")]
    SameLabel {
        first: String,
        second: String,
        label: String,
    },
}

/// `--labels.image-tags`: the tag keys exported as labels of
/// `imagebuilder_image_tags`, and their label names (`tag_` and the key,
/// every character outside `[a-zA-Z0-9_]` as `_`), as kube-state-metrics'
/// `--metric-labels-allowlist` does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagAllowList {
    keys: Vec<String>,
    labels: Vec<String>,
}

impl TagAllowList {
    /// Parses `team,env`. Refuses empty keys, a key listed twice, and two
    /// keys that become the same label name.
    ///
    /// ```
    /// use imagebuilder_exporter::metrics::labels::TagAllowList;
    /// let t = TagAllowList::parse("team,cost-center").unwrap();
    /// assert_eq!(t.labels(), ["tag_team", "tag_cost_center"]);
    /// assert!(TagAllowList::parse("cost-center,cost_center").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, TagListError> {
        let mut out = Self::default();
        if s.is_empty() {
            return Ok(out);
        }
        for key in s.split(',') {
            if key.is_empty() || key.chars().count() > 128 {
                return Err(TagListError::NotAList(s.to_string()));
            }
            let label: String = "tag_"
                .chars()
                .chain(key.chars().map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                }))
                .collect();
            if let Some(i) = out.labels.iter().position(|l| *l == label) {
                let other = &out.keys[i];
                return Err(if other == key {
                    TagListError::Twice {
                        key: key.to_string(),
                        list: s.to_string(),
                    }
                } else {
                    TagListError::SameLabel {
                        first: other.clone(),
                        second: key.to_string(),
                        label,
                    }
                });
            }
            out.keys.push(key.to_string());
            out.labels.push(label);
        }
        Ok(out)
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_keys_become_label_names_and_collisions_are_refused() {
        let t = TagAllowList::parse("team,env,aws:cloudformation:stack-name").unwrap();
        assert_eq!(t.keys(), ["team", "env", "aws:cloudformation:stack-name"]);
        assert_eq!(
            t.labels(),
            ["tag_team", "tag_env", "tag_aws_cloudformation_stack_name"]
        );
        assert!(TagAllowList::parse("").unwrap().is_empty());
        for (bad, says) in [
            ("team,,env", "1 to 128 characters"),
            ("team,", "1 to 128 characters"),
            ("team,team", "listed twice"),
            (
                "a.b,a-b",
                "\"a.b\" and \"a-b\" both become the label tag_a_b",
            ),
        ] {
            let e = TagAllowList::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}

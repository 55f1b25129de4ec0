//! Where a failed build failed, as the service itself says it
//! (`ImageState.failureContext`): the step and workflow, and either the
//! component that failed or the Regions a distribution failed in.
//!
//! Every text is kept as a label shows it ([`super::label_text`]): the
//! service allows 384,000 characters in an error message.

use std::sync::Arc;

/// `ImageFailureContext`. Members the service left out are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FailureContext {
    /// `failedStep`: the workflow step that failed.
    pub failed_step: Option<String>,
    /// `workflowArn`: the workflow that was running.
    pub workflow_arn: Option<Arc<str>>,
    pub component: Option<ComponentFailure>,
    pub distribution: Option<DistributionFailure>,
}

/// `ComponentFailureContext`: a component document's step that failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComponentFailure {
    /// The component's name and version (`install-app/1.2.0`) from its
    /// ARN; the ARN as given when it does not have that form; empty when
    /// the service named none.
    pub component: String,
    /// `phaseName`: `build`, `validate` or `test`.
    pub phase: Option<String>,
    /// `stepName`: the step of the component document.
    pub step: Option<String>,
    /// `action`: what that step runs (`ExecuteBash`, …).
    pub action: Option<String>,
    pub message: Option<String>,
}

/// `DistributionFailureContext`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DistributionFailure {
    pub message: Option<String>,
    pub regions: Vec<RegionFailure>,
}

/// `RegionFailure`: one Region (and account) the image did not reach or
/// could not be configured in.
#[derive(Debug, Clone, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct RegionFailure {
    pub region: Option<String>,
    pub account_id: Option<String>,
    /// `FAILED`, `CANCELLED` or `TIMED_OUT` (another value kept as sent).
    pub status: Option<String>,
    /// `imageConfigurationStep`: absent when the copy itself failed.
    pub configuration_step: Option<String>,
    pub message: Option<String>,
}

/// `install-app/1.2.0` from
/// `arn:aws:imagebuilder:us-east-1:123456789012:component/install-app/1.2.0/1`:
/// what a person calls the component (the build number of a component
/// version rarely matters, and would split one component into many series).
///
/// ```
/// use imagebuilder_exporter::model::component_name;
/// let arn = "arn:aws:imagebuilder:us-east-1:aws:component/update-linux/1.0.2/1";
/// assert_eq!(component_name(arn).as_deref(), Some("update-linux/1.0.2"));
/// assert_eq!(component_name("install-app"), None);
/// ```
pub fn component_name(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let mut parts = resource.strip_prefix("component/")?.split('/');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let version = parts.next().filter(|v| !v.is_empty())?;
    Some(format!("{name}/{version}"))
}

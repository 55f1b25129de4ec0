//! `--config.file`: several accounts and regions served by one exporter.
//!
//! ```yaml
//! targets:
//!   - region: us-east-1                 # this account, default credentials
//!   - name: prod-eu                     # the `target` label (default: ACCOUNT/REGION)
//!     region: eu-west-1
//!     role_arn: arn:aws:iam::210987654321:role/imagebuilder-exporter
//!     external_id: imagebuilder-7f3c    # if the role's trust policy asks for one
//!     session_name: imagebuilder-exporter
//!     image_name_filter: "web-.*"       # overrides --filter.image-name
//! ```
//!
//! The file is read and checked when the flags are: a problem is reported
//! with the file, the target and the field, and exit status 2.

use std::collections::HashSet;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;

pub use crate::aws::AssumeRole;
use crate::parse::{
    parse_image_regex, parse_queue_url, EXTERNAL_ID, REGION, ROLE_ARN, SESSION_NAME,
};

/// One account and region to export.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// The `target` label.
    pub name: String,
    /// `None`: the region of the default chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    pub assume_role: Option<AssumeRole>,
    /// Overrides `--filter.image-name` for this target.
    pub image_name_filter: Option<Regex>,
    /// The SQS queue that receives this target's Image Builder events.
    pub events_queue_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    targets: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: Option<String>,
    region: String,
    role_arn: Option<String>,
    external_id: Option<String>,
    session_name: Option<String>,
    image_name_filter: Option<String>,
    events: Option<Events>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Events {
    sqs_queue_url: String,
}

/// A target's name: the `target` label.
const NAME: &str = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$";
const DEFAULT_SESSION: &str = "imagebuilder-exporter";

/// Reads and checks a targets file; the error says what is wrong and where.
pub fn load(path: &Path) -> Result<Vec<TargetSpec>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses and checks the text of a targets file.
pub fn parse(text: &str) -> Result<Vec<TargetSpec>, String> {
    let file: File = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    if file.targets.is_empty() {
        return Err("`targets` is empty: list at least one".into());
    }
    let re = |p: &str| Regex::new(p).map_err(|e| e.to_string());
    let (region_re, role_re, external_re, session_re, name_re) = (
        re(REGION)?,
        re(ROLE_ARN)?,
        re(EXTERNAL_ID)?,
        re(SESSION_NAME)?,
        re(NAME)?,
    );
    let mut names = HashSet::new();
    // (region, role) of each target so far: two equal ones read the same
    // account and region, and would serve every series twice.
    let mut reach: Vec<(String, Option<String>, String)> = Vec::new();
    let mut out = Vec::with_capacity(file.targets.len());
    for (i, e) in file.targets.into_iter().enumerate() {
        let at = |field: &str, msg: String| format!("targets[{i}].{field}: {msg}");
        if !region_re.is_match(&e.region) {
            return Err(at(
                "region",
                format!("{:?} is not an AWS region name like us-east-1", e.region),
            ));
        }
        let assume_role = match e.role_arn {
            Some(arn) => {
                if !role_re.is_match(&arn) {
                    return Err(at("role_arn", format!("{arn:?} is not an IAM role ARN like arn:aws:iam::123456789012:role/name")));
                }
                if let Some(x) = e
                    .external_id
                    .as_deref()
                    .filter(|x| !external_re.is_match(x))
                {
                    return Err(at(
                        "external_id",
                        format!(
                            "{x:?} must be 2 to 1224 characters of letters, digits and +=,.@:/-"
                        ),
                    ));
                }
                let session_name = e.session_name.unwrap_or_else(|| DEFAULT_SESSION.into());
                if !session_re.is_match(&session_name) {
                    return Err(at("session_name", format!("{session_name:?} must be 2 to 64 characters of letters, digits and +=,.@-")));
                }
                Some(AssumeRole {
                    role_arn: arn,
                    external_id: e.external_id,
                    session_name,
                })
            }
            None if e.external_id.is_some() => {
                return Err(at("external_id", "needs role_arn".into()))
            }
            None if e.session_name.is_some() => {
                return Err(at("session_name", "needs role_arn".into()))
            }
            None => None,
        };
        let image_name_filter = match &e.image_name_filter {
            Some(f) => Some(parse_image_regex(f).map_err(|err| at("image_name_filter", err))?),
            None => None,
        };
        let name = e.name.unwrap_or_else(|| match &assume_role {
            Some(r) => format!(
                "{}/{}",
                r.role_arn.split(':').nth(4).unwrap_or_default(),
                e.region
            ),
            None => e.region.clone(),
        });
        if !name_re.is_match(&name) {
            return Err(at(
                "name",
                format!("{name:?} must be 1 to 128 characters of letters, digits and _.:/-"),
            ));
        }
        if !names.insert(name.clone()) {
            return Err(at(
                "name",
                format!("{name:?} is used by another target: give each target its own name"),
            ));
        }
        let role = assume_role.as_ref().map(|r| r.role_arn.clone());
        if let Some(j) = reach
            .iter()
            .position(|(region, r, _)| *region == e.region && *r == role)
        {
            let how = match &role {
                Some(r) => format!("through the role {r}"),
                None => "with the default credentials".into(),
            };
            return Err(format!(
                "targets[{j}] ({:?}) and targets[{i}] ({name:?}) both read region {} {how}: the same account and region, so every series would be served twice. Keep one of them (one image_name_filter can match the images of both)",
                reach[j].2, e.region
            ));
        }
        reach.push((e.region.clone(), role, name.clone()));
        let events_queue_url = match e.events {
            Some(ev) => {
                let url = parse_queue_url(&ev.sqs_queue_url)
                    .map_err(|err| at("events.sqs_queue_url", err))?;
                // One consumer per queue: another target would take (and
                // delete) this one's events as "another account's".
                if let Some(other) = out
                    .iter()
                    .position(|t: &TargetSpec| t.events_queue_url.as_deref() == Some(&url))
                {
                    return Err(at(
                        "events.sqs_queue_url",
                        format!("{url:?} is also targets[{other}]'s queue: give each target its own queue"),
                    ));
                }
                Some(url)
            }
            None => None,
        };
        out.push(TargetSpec {
            name,
            region: Some(e.region),
            assume_role,
            image_name_filter,
            events_queue_url,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_targets_with_defaults() {
        let t = parse(
            "targets:\n  - region: us-east-1\n  - region: eu-west-1\n    role_arn: arn:aws:iam::210987654321:role/exporter\n    external_id: abc-123\n",
        )
        .unwrap();
        assert_eq!(t[0].name, "us-east-1");
        assert_eq!(t[0].assume_role, None);
        assert_eq!(t[1].name, "210987654321/eu-west-1");
        let r = t[1].assume_role.as_ref().unwrap();
        assert_eq!(r.session_name, "imagebuilder-exporter");
        assert_eq!(r.external_id.as_deref(), Some("abc-123"));
    }

    #[test]
    fn errors_name_the_target_and_the_field() {
        for (text, want) in [
            ("targets: []", "`targets` is empty"),
            (
                "targets:\n  - region: mars\n",
                "targets[0].region: \"mars\"",
            ),
            (
                "targets:\n  - region: us-east-1\n    role_arn: nope\n",
                "targets[0].role_arn",
            ),
            (
                "targets:\n  - region: us-east-1\n    external_id: abc\n",
                "targets[0].external_id: needs role_arn",
            ),
            (
                "targets:\n  - region: us-east-1\n  - region: us-east-1\n",
                "targets[1].name: \"us-east-1\" is used",
            ),
            (
                "targets:\n  - region: us-east-1\n  - name: web\n    region: us-east-1\n    image_name_filter: web-.*\n",
                "targets[0] (\"us-east-1\") and targets[1] (\"web\") both read region us-east-1 with the default credentials",
            ),
            (
                "targets:\n  - name: a\n    region: eu-west-1\n    role_arn: arn:aws:iam::210987654321:role/x\n  - name: b\n    region: eu-west-1\n    role_arn: arn:aws:iam::210987654321:role/x\n    external_id: other-id\n",
                "targets[0] (\"a\") and targets[1] (\"b\") both read region eu-west-1 through the role arn:aws:iam::210987654321:role/x",
            ),
            (
                "targets:\n  - region: us-east-1\n    regoin: x\n",
                "unknown field `regoin`",
            ),
            (
                "targets:\n  - region: us-east-1\n    events:\n      sqs_queue_url: sqs/q\n",
                "targets[0].events.sqs_queue_url: \"sqs/q\" is not an SQS queue URL",
            ),
            (
                "targets:\n  - region: us-east-1\n    events:\n      sqs_queue_url: http://h/1/q\n  - region: eu-west-1\n    events:\n      sqs_queue_url: http://h/1/q\n",
                "targets[1].events.sqs_queue_url: \"http://h/1/q\" is also targets[0]'s queue",
            ),
            (
                "targets:\n  - region: us-east-1\n    image_name_filter: \"(\"\n",
                "targets[0].image_name_filter",
            ),
            ("targets:\n  - [oops\n", "line 2"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}

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
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

pub use crate::aws::AssumeRole;
use crate::base::parse::{
    parse_image_regex, parse_queue_url, ParseError, EXTERNAL_ID, REGION, ROLE_ARN, SESSION_NAME,
};

/// A targets file that cannot be used: the file, then what is wrong in it.
/// clap prints it after the flag (`--config.file`).
#[derive(Debug, thiserror::Error)]
pub enum TargetsFileError {
    #[error("cannot read {}: {error}", file.display())]
    Read {
        file: PathBuf,
        error: std::io::Error,
    },
    /// Boxed, so that a `Result` of it stays small.
    #[error("{}: {error}", file.display())]
    Invalid {
        file: PathBuf,
        error: Box<TargetsError>,
    },
}

/// What is wrong in the text of a targets file, naming the target (by its
/// index) and the field, as in `targets[1].role_arn`.
#[derive(Debug, thiserror::Error)]
pub enum TargetsError {
    /// Not YAML, or not the file's shape (an unknown or missing field):
    /// serde_yaml's message names the field, the line and the column.
    #[error(transparent)]
    Yaml(serde_yaml::Error),
    #[error("`targets` is empty: list at least one")]
    Empty,
    #[error("targets[{index}].{field}: {error}")]
    Field {
        index: usize,
        field: &'static str,
        error: TargetFieldError,
    },
    /// Two targets that read one account and region would serve every
    /// series twice.
    #[error("targets[{first}] ({first_name:?}) and targets[{second}] ({second_name:?}) both read region {region} {}: the same account and region, so every series would be served twice. Keep one of them (one image_name_filter can match the images of both)", match role { Some(r) => format!("through the role {r}"), None => "with the default credentials".into() })]
    SameAccount {
        first: usize,
        first_name: String,
        second: usize,
        second_name: String,
        region: String,
        role: Option<String>,
    },
    /// A pattern of `parse` does not compile: a bug the unit tests catch.
    #[error("a built-in pattern does not compile: {0}")]
    Pattern(regex::Error),
}

/// What is wrong with one field of one target.
#[derive(Debug, thiserror::Error)]
pub enum TargetFieldError {
    /// `region`, `image_name_filter`, `events.sqs_queue_url`: parsed as
    /// the flags that take the same values are.
    #[error(transparent)]
    Value(#[from] ParseError),
    #[error("{0:?} is not an IAM role ARN like arn:aws:iam::123456789012:role/name")]
    RoleArn(String),
    #[error("{0:?} must be 2 to 1224 characters of letters, digits and +=,.@:/-")]
    ExternalId(String),
    #[error("{0:?} must be 2 to 64 characters of letters, digits and +=,.@-")]
    SessionName(String),
    /// `external_id` or `session_name` without a role to assume.
    #[error("needs role_arn")]
    NeedsRoleArn,
    #[error("{0:?} must be 1 to 128 characters of letters, digits and _.:/-")]
    Name(String),
    #[error("{0:?} is used by another target: give each target its own name")]
    NameTaken(String),
    /// One consumer per queue: another target would take (and delete) this
    /// one's events as "another account's".
    #[error("{url:?} is also targets[{other}]'s queue: give each target its own queue")]
    QueueTaken { url: String, other: usize },
}

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
pub fn load(path: &Path) -> Result<Vec<TargetSpec>, TargetsFileError> {
    let text = std::fs::read_to_string(path).map_err(|error| TargetsFileError::Read {
        file: path.to_path_buf(),
        error,
    })?;
    parse(&text).map_err(|error| TargetsFileError::Invalid {
        file: path.to_path_buf(),
        error: Box::new(error),
    })
}

/// Parses and checks the text of a targets file.
pub fn parse(text: &str) -> Result<Vec<TargetSpec>, TargetsError> {
    let file: File = serde_yaml::from_str(text).map_err(TargetsError::Yaml)?;
    if file.targets.is_empty() {
        return Err(TargetsError::Empty);
    }
    let re = |p: &str| Regex::new(p).map_err(TargetsError::Pattern);
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
        let at = |field: &'static str, error: TargetFieldError| TargetsError::Field {
            index: i,
            field,
            error,
        };
        if !region_re.is_match(&e.region) {
            let error = ParseError::Region(e.region.clone());
            return Err(at("region", error.into()));
        }
        let assume_role = match e.role_arn {
            Some(arn) => {
                if !role_re.is_match(&arn) {
                    return Err(at("role_arn", TargetFieldError::RoleArn(arn)));
                }
                if let Some(x) = e
                    .external_id
                    .as_deref()
                    .filter(|x| !external_re.is_match(x))
                {
                    let error = TargetFieldError::ExternalId(x.to_string());
                    return Err(at("external_id", error));
                }
                let session_name = e.session_name.unwrap_or_else(|| DEFAULT_SESSION.into());
                if !session_re.is_match(&session_name) {
                    let error = TargetFieldError::SessionName(session_name);
                    return Err(at("session_name", error));
                }
                Some(AssumeRole {
                    role_arn: arn,
                    external_id: e.external_id,
                    session_name,
                })
            }
            None if e.external_id.is_some() => {
                return Err(at("external_id", TargetFieldError::NeedsRoleArn))
            }
            None if e.session_name.is_some() => {
                return Err(at("session_name", TargetFieldError::NeedsRoleArn))
            }
            None => None,
        };
        let image_name_filter = match &e.image_name_filter {
            Some(f) => {
                Some(parse_image_regex(f).map_err(|err| at("image_name_filter", err.into()))?)
            }
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
            return Err(at("name", TargetFieldError::Name(name)));
        }
        if !names.insert(name.clone()) {
            return Err(at("name", TargetFieldError::NameTaken(name)));
        }
        let role = assume_role.as_ref().map(|r| r.role_arn.clone());
        if let Some(j) = reach
            .iter()
            .position(|(region, r, _)| *region == e.region && *r == role)
        {
            return Err(TargetsError::SameAccount {
                first: j,
                first_name: reach[j].2.clone(),
                second: i,
                second_name: name,
                region: e.region,
                role,
            });
        }
        reach.push((e.region.clone(), role, name.clone()));
        let events_queue_url = match e.events {
            Some(ev) => {
                let url = parse_queue_url(&ev.sqs_queue_url)
                    .map_err(|err| at("events.sqs_queue_url", err.into()))?;
                if let Some(other) = out
                    .iter()
                    .position(|t: &TargetSpec| t.events_queue_url.as_deref() == Some(&url))
                {
                    let error = TargetFieldError::QueueTaken { url, other };
                    return Err(at("events.sqs_queue_url", error));
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
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn file_errors_name_the_file_then_the_target_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("targets.yml");
        let e = load(&path).unwrap_err();
        assert!(matches!(e, TargetsFileError::Read { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("cannot read {}: ", path.display())),
            "{e}"
        );
        std::fs::write(&path, "targets:\n  - region: mars\n").unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: targets[0].region: \"mars\" is not an AWS region name like us-east-1",
                path.display()
            )
        );
        let TargetsFileError::Invalid { error, .. } = e else {
            panic!("{e:?}")
        };
        assert!(matches!(
            *error,
            TargetsError::Field {
                index: 0,
                field: "region",
                error: TargetFieldError::Value(ParseError::Region(_)),
            }
        ));
    }
}

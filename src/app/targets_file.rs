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
//! Or, beside or instead of `targets`, every ACTIVE account of an AWS
//! organisation in each Region listed (see [`OrganizationSpec`]):
//!
//! ```yaml
//! organization:
//!   role_arn: arn:aws:iam::111111111111:role/imagebuilder-exporter-organization
//!   member_role_name: imagebuilder-exporter
//!   regions: [us-east-1, eu-west-1]
//!   accounts:
//!     exclude: ["sandbox-.*"]
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
    self, parse_image_regex, parse_queue_url, parse_region, ParseError, EXTERNAL_ID, REGION,
    ROLE_ARN, SESSION_NAME,
};
use crate::refresh::organization::Members;

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
    #[error("`targets` is empty: list at least one, or add an `organization` section")]
    Empty,
    #[error("organization.{field}: {error}")]
    Organization {
        field: String,
        error: TargetFieldError,
    },
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
    #[error("is empty: list at least one Region")]
    NoRegions,
    #[error("{0:?} is listed twice")]
    Duplicate(String),
    #[error("{0:?} is not an IAM role name (with an optional path) like imagebuilder-exporter or team/imagebuilder-exporter")]
    RoleName(String),
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

/// What `--config.file` holds: targets written one by one, an
/// organisation, or both.
#[derive(Debug, Clone, Default)]
pub struct TargetsConfig {
    pub targets: Vec<TargetSpec>,
    pub organization: Option<OrganizationSpec>,
}

/// `organization:`: every ACTIVE account of an AWS organisation that the
/// filters select, in each Region listed, is a target named
/// `ACCOUNT/REGION`, read through the member role. Accounts are listed at
/// start-up and every `--organization.interval`.
#[derive(Debug, Clone)]
pub struct OrganizationSpec {
    /// Who calls `organizations:ListAccounts` (the management account or a
    /// delegated administrator): this role, or the exporter's own
    /// credentials.
    pub assume_role: Option<AssumeRole>,
    /// The role assumed in each member account (`arn:PARTITION:iam::ID:role/NAME`).
    pub member_role_name: String,
    pub member_external_id: Option<String>,
    /// The session name of every role assumed.
    pub session_name: String,
    /// The Regions and the accounts to export.
    pub members: Members,
    /// Overrides `--filter.image-name` for the organisation's targets.
    pub image_name_filter: Option<Regex>,
}

impl OrganizationSpec {
    /// The role to assume in a member account.
    pub fn member_role(&self, partition: &str, account_id: &str) -> AssumeRole {
        AssumeRole {
            role_arn: format!(
                "arn:{partition}:iam::{account_id}:role/{}",
                self.member_role_name
            ),
            external_id: self.member_external_id.clone(),
            session_name: self.session_name.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    targets: Option<Vec<Entry>>,
    organization: Option<OrganizationEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganizationEntry {
    role_arn: Option<String>,
    external_id: Option<String>,
    member_role_name: String,
    member_external_id: Option<String>,
    session_name: Option<String>,
    regions: Vec<String>,
    #[serde(default)]
    accounts: AccountFilters,
    image_name_filter: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountFilters {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
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
pub fn load(path: &Path) -> Result<TargetsConfig, TargetsFileError> {
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
pub fn parse(text: &str) -> Result<TargetsConfig, TargetsError> {
    let file: File = serde_yaml::from_str(text).map_err(TargetsError::Yaml)?;
    let entries = file.targets.unwrap_or_default();
    if entries.is_empty() && file.organization.is_none() {
        return Err(TargetsError::Empty);
    }
    let organization = file.organization.map(organization).transpose()?;
    Ok(TargetsConfig {
        targets: targets(entries)?,
        organization,
    })
}

/// Checks the `organization` section.
fn organization(e: OrganizationEntry) -> Result<OrganizationSpec, TargetsError> {
    let at = |field: &str, error: TargetFieldError| TargetsError::Organization {
        field: field.to_string(),
        error,
    };
    let is = |p: &str, s: &str| parse::matches(p, s).map_err(TargetsError::Pattern);
    let session_name = e.session_name.unwrap_or_else(|| DEFAULT_SESSION.into());
    if !is(SESSION_NAME, &session_name)? {
        return Err(at(
            "session_name",
            TargetFieldError::SessionName(session_name),
        ));
    }
    let assume_role = match e.role_arn {
        Some(arn) if !is(ROLE_ARN, &arn)? => {
            return Err(at("role_arn", TargetFieldError::RoleArn(arn)))
        }
        Some(role_arn) => Some(AssumeRole {
            role_arn,
            external_id: e.external_id.clone(),
            session_name: session_name.clone(),
        }),
        None if e.external_id.is_some() => {
            return Err(at("external_id", TargetFieldError::NeedsRoleArn))
        }
        None => None,
    };
    for (field, id) in [
        ("external_id", &e.external_id),
        ("member_external_id", &e.member_external_id),
    ] {
        if let Some(x) = id
            .as_deref()
            .filter(|x| !is(EXTERNAL_ID, x).unwrap_or(false))
        {
            return Err(at(field, TargetFieldError::ExternalId(x.to_string())));
        }
    }
    // A role name makes a role ARN with any account: check that ARN.
    let example = format!("arn:aws:iam::000000000000:role/{}", e.member_role_name);
    if e.member_role_name.starts_with('/') || !is(ROLE_ARN, &example)? {
        return Err(at(
            "member_role_name",
            TargetFieldError::RoleName(e.member_role_name),
        ));
    }
    if e.regions.is_empty() {
        return Err(at("regions", TargetFieldError::NoRegions));
    }
    let mut regions: Vec<String> = Vec::with_capacity(e.regions.len());
    for (i, r) in e.regions.into_iter().enumerate() {
        let field = format!("regions[{i}]");
        let region = parse_region(&r).map_err(|err| at(&field, err.into()))?;
        if regions.contains(&region) {
            return Err(at(&field, TargetFieldError::Duplicate(region)));
        }
        regions.push(region);
    }
    let patterns = |list: Vec<String>, field: &str| -> Result<Vec<Regex>, TargetsError> {
        list.iter()
            .enumerate()
            .map(|(i, p)| {
                parse_image_regex(p)
                    .map_err(|err| at(&format!("accounts.{field}[{i}]"), err.into()))
            })
            .collect()
    };
    let image_name_filter = match &e.image_name_filter {
        Some(f) => Some(parse_image_regex(f).map_err(|err| at("image_name_filter", err.into()))?),
        None => None,
    };
    Ok(OrganizationSpec {
        assume_role,
        member_role_name: e.member_role_name,
        member_external_id: e.member_external_id,
        session_name,
        members: Members {
            regions,
            include: patterns(e.accounts.include, "include")?,
            exclude: patterns(e.accounts.exclude, "exclude")?,
        },
        image_name_filter,
    })
}

/// Checks the `targets` written one by one.
fn targets(entries: Vec<Entry>) -> Result<Vec<TargetSpec>, TargetsError> {
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
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.into_iter().enumerate() {
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
        .unwrap()
        .targets;
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
            ("{}", "`targets` is empty: list at least one, or add an `organization` section"),
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

    const ORG: &str = "organization:\n  role_arn: arn:aws:iam::111111111111:role/org-reader\n  member_role_name: imagebuilder-exporter\n  member_external_id: ext-123\n  regions: [us-east-1, eu-west-1]\n  accounts:\n    include: [\"team-.*\", \"222222222222\"]\n    exclude: [\"team-sandbox\"]\n";

    #[test]
    fn an_organization_is_read_beside_or_instead_of_targets() {
        let c = parse(ORG).unwrap();
        assert!(c.targets.is_empty());
        let o = c.organization.expect("organization");
        assert_eq!(
            o.assume_role.as_ref().map(|r| r.role_arn.as_str()),
            Some("arn:aws:iam::111111111111:role/org-reader")
        );
        assert_eq!(o.members.regions, ["us-east-1", "eu-west-1"]);
        let member = o.member_role("aws", "333333333333");
        assert_eq!(
            member.role_arn,
            "arn:aws:iam::333333333333:role/imagebuilder-exporter"
        );
        assert_eq!(member.external_id.as_deref(), Some("ext-123"));
        assert_eq!(member.session_name, "imagebuilder-exporter");
        let account = |id: &str, name: &str| crate::model::Account {
            id: id.into(),
            name: name.into(),
            state: Some(crate::model::AccountState::Active),
            partition: "aws".into(),
        };
        assert!(o.members.selects(&account("333333333333", "team-a")));
        assert!(o.members.selects(&account("222222222222", "other")));
        assert!(!o.members.selects(&account("333333333333", "team-sandbox")));
        assert!(!o.members.selects(&account("444444444444", "other")));

        let both = format!("{ORG}targets:\n  - region: us-east-1\n");
        let c = parse(&both).unwrap();
        assert_eq!((c.targets.len(), c.organization.is_some()), (1, true));
    }

    #[test]
    fn organization_errors_name_the_field() {
        let base =
            "organization:\n  member_role_name: imagebuilder-exporter\n  regions: [us-east-1]\n";
        for (text, want) in [
            (
                format!("{base}  role_arn: arn:aws:iam::1111:role/x\n"),
                "organization.role_arn: \"arn:aws:iam::1111:role/x\" is not an IAM role ARN",
            ),
            (
                "organization:\n  member_role_name: x\n  regions: []\n".into(),
                "organization.regions: is empty: list at least one Region",
            ),
            (
                "organization:\n  member_role_name: x\n  regions: [us-east-1, mars]\n".into(),
                "organization.regions[1]: \"mars\" is not an AWS region name",
            ),
            (
                "organization:\n  member_role_name: x\n  regions: [us-east-1, us-east-1]\n".into(),
                "organization.regions[1]: \"us-east-1\" is listed twice",
            ),
            (
                format!("{base}  accounts:\n    include: [\"ok\", \"(\"]\n"),
                "organization.accounts.include[1]: \"(\" is not a valid regular expression",
            ),
            (
                format!("{base}  accounts:\n    exclude: [\"[\"]\n"),
                "organization.accounts.exclude[0]",
            ),
            (
                "organization:\n  member_role_name: \"bad name\"\n  regions: [us-east-1]\n".into(),
                "organization.member_role_name: \"bad name\" is not an IAM role name",
            ),
            (
                format!("{base}  external_id: abc\n"),
                "organization.external_id: needs role_arn",
            ),
            (
                format!("{base}  member_external_id: \"x\"\n"),
                "organization.member_external_id: \"x\" must be 2 to 1224 characters",
            ),
            (
                "organization:\n  regions: [us-east-1]\n".into(),
                "missing field `member_role_name`",
            ),
            (format!("{base}  regoins: [x]\n"), "unknown field `regoins`"),
        ] {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}

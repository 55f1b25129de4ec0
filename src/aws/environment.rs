//! What the AWS environment sets for a target, as the SDK reads it: where its
//! credentials and its region come from, and the endpoint overrides.
//!
//! The SDK knows these but does not say: the exporter works them out from
//! the same variables, so that the start-up log names them, a bad region is
//! refused naming its source before anything is sent, and an error line
//! names the source that was expected to give credentials and the host that
//! could not be reached. Every function takes the environment as a lookup,
//! so that tests pass their own.

use std::fmt;
use std::path::PathBuf;

/// Reads one environment variable.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A variable that is set to something other than blanks.
fn set(env: Lookup, name: &str) -> Option<String> {
    env(name).filter(|v| !v.trim().is_empty())
}

/// The endpoint variables the exporter's clients honour, the general one
/// first.
pub const ENDPOINT_VARIABLES: [&str; 5] = [
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_IMAGEBUILDER",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_ORGANIZATIONS",
];

/// The endpoint variables that are set (and not ignored through
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`), with their values.
pub fn endpoint_overrides(env: Lookup) -> Vec<(&'static str, String)> {
    if ignores_endpoint_variables(env) {
        return Vec::new();
    }
    ENDPOINT_VARIABLES
        .iter()
        .filter_map(|name| set(env, name).map(|v| (*name, v)))
        .collect()
}

fn ignores_endpoint_variables(env: Lookup) -> bool {
    env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Where a service is reached, and what says so.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    /// A URL (an override) or the AWS host name.
    pub address: String,
    /// The variable that set it; `None` for AWS's own endpoint or one the
    /// exporter set itself (`--demo`).
    pub variable: Option<&'static str>,
}

impl Endpoint {
    /// Where `service` (`IMAGEBUILDER`, `STS`, `SQS`) is reached in
    /// `region`: `explicit` (the demo's simulator), else
    /// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else AWS's host.
    pub fn of(service: &str, explicit: Option<&str>, region: &str, env: Lookup) -> Endpoint {
        if let Some(url) = explicit {
            return Endpoint {
                address: url.to_string(),
                variable: None,
            };
        }
        if !ignores_endpoint_variables(env) {
            for name in ENDPOINT_VARIABLES {
                if name.ends_with(&format!("_{service}")) {
                    if let Some(url) = set(env, name) {
                        return Endpoint {
                            address: url,
                            variable: Some(name),
                        };
                    }
                }
            }
            if let Some(url) = set(env, "AWS_ENDPOINT_URL") {
                return Endpoint {
                    address: url,
                    variable: Some("AWS_ENDPOINT_URL"),
                };
            }
        }
        // Organizations is global: one endpoint per partition, in its first
        // Region.
        let region = if service == "ORGANIZATIONS" {
            match region.split('-').next() {
                Some("cn") => "cn-northwest-1",
                _ if region.starts_with("us-gov-") => "us-gov-west-1",
                _ => "us-east-1",
            }
        } else {
            region
        };
        Endpoint {
            address: format!("{}.{region}.amazonaws.com", service.to_ascii_lowercase()),
            variable: None,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.variable {
            Some(v) => write!(f, "{} ({v})", self.address),
            None => f.write_str(&self.address),
        }
    }
}

/// Where a target's base credentials are expected to come from: the first
/// source of the SDK's default chain that is configured (environment,
/// profile, web identity, container, instance role), or the fixed ones of
/// `--demo`. A role in the config file is assumed with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Given by the program (`--demo`, tests).
    Fixed,
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    Environment,
    /// A profile of the shared files; `from` says who chose it.
    Profile { name: String, from: &'static str },
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` (EKS IRSA).
    WebIdentity,
    /// `AWS_CONTAINER_CREDENTIALS_*` (ECS task role, EKS Pod Identity).
    Container,
    /// The EC2 instance metadata: the chain's last resort.
    InstanceRole,
    /// Nothing is configured and the instance metadata is disabled.
    Nothing,
}

impl CredentialSource {
    /// The source the default chain will use, as far as the environment
    /// tells. `profile` is `--aws.profile`; `fixed` is true when the program
    /// gives its own credentials.
    pub fn detect(fixed: bool, profile: Option<&str>, env: Lookup) -> CredentialSource {
        if fixed {
            return CredentialSource::Fixed;
        }
        if set(env, "AWS_ACCESS_KEY_ID").is_some() {
            return CredentialSource::Environment;
        }
        if let Some(name) = profile {
            return CredentialSource::Profile {
                name: name.to_string(),
                from: "--aws.profile",
            };
        }
        if let Some(name) = set(env, "AWS_PROFILE") {
            return CredentialSource::Profile {
                name,
                from: "AWS_PROFILE",
            };
        }
        if shared_files(env).iter().any(|p| p.is_file()) {
            return CredentialSource::Profile {
                name: "default".into(),
                from: "the shared files",
            };
        }
        if set(env, "AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
            return CredentialSource::WebIdentity;
        }
        if set(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
            || set(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
        {
            return CredentialSource::Container;
        }
        if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return CredentialSource::Nothing;
        }
        CredentialSource::InstanceRole
    }

    /// The provider's name in the SDK's default chain, as its "no
    /// credentials" error lists them.
    pub fn chain_name(&self) -> Option<&'static str> {
        match self {
            CredentialSource::Environment => Some("Environment"),
            CredentialSource::Profile { .. } => Some("Profile"),
            CredentialSource::WebIdentity => Some("WebIdentityToken"),
            CredentialSource::Container => Some("EcsContainer"),
            CredentialSource::InstanceRole => Some("Ec2InstanceMetadata"),
            CredentialSource::Fixed | CredentialSource::Nothing => None,
        }
    }
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Fixed => f.write_str("fixed credentials (the demo's)"),
            CredentialSource::Environment => {
                f.write_str("the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
            }
            CredentialSource::Profile { name, from } => write!(f, "profile {name} ({from})"),
            CredentialSource::WebIdentity => {
                f.write_str("web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)")
            }
            CredentialSource::Container => {
                f.write_str("container credentials (AWS_CONTAINER_CREDENTIALS_*)")
            }
            CredentialSource::InstanceRole => {
                f.write_str("the EC2 instance role (nothing else is configured)")
            }
            CredentialSource::Nothing => f.write_str(
                "none (nothing is configured, and AWS_EC2_METADATA_DISABLED turns off the instance role)",
            ),
        }
    }
}

/// The shared config and credentials files, where the SDK looks for them.
fn shared_files(env: Lookup) -> Vec<PathBuf> {
    let home = set(env, "HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        set(env, var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    [
        file("AWS_CONFIG_FILE", "config"),
        file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Where the default chain took a region from, when no flag or config file
/// gave one: the first of `AWS_REGION`, `AWS_DEFAULT_REGION` (even when
/// empty: the SDK takes an empty value as the region), the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionSource {
    Variable(&'static str),
    Profile(String),
}

impl RegionSource {
    /// The source of a region the chain found: only a variable or a profile
    /// can give a malformed one (the instance metadata gives real names).
    pub fn detect(profile: Option<&str>, env: Lookup) -> RegionSource {
        for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            if env(name).is_some() {
                return RegionSource::Variable(name);
            }
        }
        let name = profile
            .map(str::to_string)
            .or_else(|| set(env, "AWS_PROFILE"))
            .unwrap_or_else(|| "default".into());
        RegionSource::Profile(name)
    }
}

impl fmt::Display for RegionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionSource::Variable(name) => f.write_str(name),
            RegionSource::Profile(name) => write!(
                f,
                "the region of AWS profile {name} (AWS_CONFIG_FILE or ~/.aws/config)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn credential_sources_in_the_chains_order() {
        let none = |vars: &[(&str, &str)]| {
            let mut v = vec![("HOME", "/nonexistent")];
            v.extend_from_slice(vars);
            let lookup = env(&v);
            CredentialSource::detect(false, None, &lookup)
        };
        assert_eq!(none(&[]), CredentialSource::InstanceRole);
        assert_eq!(
            none(&[("AWS_EC2_METADATA_DISABLED", "true")]),
            CredentialSource::Nothing
        );
        assert_eq!(
            none(&[
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_PROFILE", "prod"),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")
            ]),
            CredentialSource::Environment,
            "the environment comes first"
        );
        assert_eq!(
            none(&[
                ("AWS_PROFILE", "prod"),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")
            ]),
            CredentialSource::Profile {
                name: "prod".into(),
                from: "AWS_PROFILE"
            }
        );
        assert_eq!(
            none(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")]),
            CredentialSource::WebIdentity
        );
        assert_eq!(
            none(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://x")]),
            CredentialSource::Container
        );
        assert_eq!(
            CredentialSource::detect(true, None, &env(&[("AWS_ACCESS_KEY_ID", "AKID")])),
            CredentialSource::Fixed
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(&config, "[default]\nregion = eu-west-1\n").unwrap();
        let config = config.to_str().unwrap();
        assert_eq!(
            none(&[("AWS_CONFIG_FILE", config)]),
            CredentialSource::Profile {
                name: "default".into(),
                from: "the shared files"
            }
        );
        assert_eq!(
            CredentialSource::detect(false, Some("ops"), &env(&[("AWS_PROFILE", "prod")]))
                .to_string(),
            "profile ops (--aws.profile)"
        );
    }

    #[test]
    fn region_sources() {
        assert_eq!(
            RegionSource::detect(None, &env(&[("AWS_REGION", "")])),
            RegionSource::Variable("AWS_REGION"),
            "an empty variable is still the SDK's region"
        );
        assert_eq!(
            RegionSource::detect(None, &env(&[("AWS_DEFAULT_REGION", " us-east-1")])),
            RegionSource::Variable("AWS_DEFAULT_REGION")
        );
        assert_eq!(
            RegionSource::detect(None, &env(&[("AWS_PROFILE", "prod")])).to_string(),
            "the region of AWS profile prod (AWS_CONFIG_FILE or ~/.aws/config)"
        );
    }

    #[test]
    fn endpoints_and_their_overrides() {
        let vars = [
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4566"),
            ("AWS_ENDPOINT_URL", "http://localhost:4000"),
            ("AWS_ENDPOINT_URL_SQS", " "),
        ];
        let e = env(&vars);
        assert_eq!(
            Endpoint::of("STS", None, "eu-west-1", &e).to_string(),
            "http://127.0.0.1:4566 (AWS_ENDPOINT_URL_STS)"
        );
        assert_eq!(
            Endpoint::of("IMAGEBUILDER", None, "eu-west-1", &e).to_string(),
            "http://localhost:4000 (AWS_ENDPOINT_URL)"
        );
        assert_eq!(
            Endpoint::of("IMAGEBUILDER", None, "us-est-1", &env(&[])).to_string(),
            "imagebuilder.us-est-1.amazonaws.com"
        );
        assert_eq!(
            Endpoint::of("IMAGEBUILDER", Some("http://sim"), "us-east-1", &e).to_string(),
            "http://sim"
        );
        assert_eq!(
            endpoint_overrides(&e),
            vec![
                ("AWS_ENDPOINT_URL", "http://localhost:4000".to_string()),
                ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4566".to_string())
            ]
        );
        let ignored = [
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4566"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ];
        assert!(endpoint_overrides(&env(&ignored)).is_empty());
        assert_eq!(
            Endpoint::of("STS", None, "eu-west-1", &env(&ignored)).to_string(),
            "sts.eu-west-1.amazonaws.com"
        );
    }
}

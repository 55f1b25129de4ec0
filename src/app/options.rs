//! Command-line flags, validated at start-up.
//!
//! Every value is parsed by a `value_parser`, so a bad one is refused by clap
//! with a message naming the flag, the value and what is accepted, and exit
//! status 2. Names follow the Prometheus exporter conventions
//! (`--web.listen-address`, `--log.level`, …).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use regex::Regex;

use crate::app::targets_file::{OrganizationSpec, TargetSpec, TargetsConfig, TargetsFileError};
use crate::aws::retry::RetryPolicy;
use crate::aws::sdk::{AwsSettings, Limits};
use crate::base::logging::{LogFormat, LogLevel};
use crate::base::parse::{
    parse_duration, parse_image_regex, parse_positive_duration, parse_region,
    parse_step_execution_id, ParseError,
};
use crate::metrics::labels::TagAllowList;
use crate::refresh::discovery::DiscoveryConfig;
use crate::refresh::exporter::ScrapeTimeout;
use crate::refresh::shard::{ordinal, Shard};
use crate::web::config::WebConfig;
use crate::web::serve::ServeOptions;

/// The default port, in the Prometheus exporters' 9100–9999 range.
pub const DEFAULT_PORT: u16 = 9863;

/// Prometheus exporter for AWS EC2 Image Builder workflow step executions.
///
/// AWS credentials and region come from the default chain: environment
/// (AWS_REGION, AWS_ACCESS_KEY_ID, …), AWS_PROFILE, web identity (EKS IRSA),
/// container and instance roles. AWS_ENDPOINT_URL_IMAGEBUILDER points the
/// client at another endpoint.
#[derive(Debug, Clone, Parser)]
#[command(name = "imagebuilder-exporter", version = crate::base::version::LONG, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// Address to listen on for the web interface and telemetry (`:PORT` listens on all interfaces).
    #[arg(long = "web.listen-address", value_name = "ADDRESS", default_value = ":9863", value_parser = parse_listen_address, help_heading = WEB)]
    pub listen_address: SocketAddr,

    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics", value_parser = parse_telemetry_path, help_heading = WEB)]
    pub telemetry_path: String,

    /// Connections open at once; when all are, a new one replaces the oldest idle connection of the client address holding the most (new ones wait only while every connection is answering a request).
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=65_535), help_heading = WEB)]
    pub max_connections: u32,

    /// TLS and basic auth for the web server: a YAML file in the Prometheus exporter-toolkit's web configuration format, re-read when it changes and on SIGHUP.
    #[arg(long = "web.config.file", value_name = "FILE", value_parser = crate::web::config::parse_web_config_file, help_heading = WEB)]
    pub web_config_file: Option<std::path::PathBuf>,

    /// YAML file listing the accounts and regions to export, each with its own region and optional role, or an AWS organisation whose accounts to export (see docs/configuration.md); without it, one target from the flags and the default chain.
    #[arg(long = "config.file", value_name = "FILE", value_parser = parse_targets_file, help_heading = TARGETS)]
    pub targets: Option<TargetsFile>,

    /// How often to list the organisation's accounts (with an `organization` section in --config.file): accounts that join become targets, those that leave are dropped.
    #[arg(long = "organization.interval", value_name = "DURATION", default_value = "1h", value_parser = parse_positive_duration, help_heading = TARGETS)]
    pub organization_interval: Duration,

    /// Replicas that share the targets: each serves those that rendezvous hashing of their account and region gives its --shard.index.
    #[arg(long = "shard.count", value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000), help_heading = TARGETS)]
    pub shard_count: u32,

    /// This replica's shard, 0 to --shard.count - 1, or a StatefulSet pod's name, whose ordinal is the shard (--shard.index=$(POD_NAME)).
    #[arg(long = "shard.index", value_name = "I", value_parser = parse_shard_index, help_heading = TARGETS)]
    pub shard_index: Option<u32>,

    /// AWS region (default: AWS_REGION or the profile's region). Without --config.file only: there, each target has its own.
    #[arg(long = "aws.region", value_name = "REGION", value_parser = parse_region, help_heading = AWS)]
    pub region: Option<String>,

    /// AWS profile from the shared config files (default: AWS_PROFILE).
    #[arg(long = "aws.profile", value_name = "NAME", value_parser = parse_nonempty, help_heading = AWS)]
    pub profile: Option<String>,

    /// Client-side limit on Image Builder API requests per second; lowered automatically while the API throttles.
    #[arg(long = "aws.max-requests-per-second", value_name = "RATE", default_value = "10", value_parser = parse_rate, help_heading = AWS)]
    pub max_requests_per_second: f64,

    /// Image Builder API requests in flight at once.
    #[arg(long = "aws.max-concurrency", value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64), help_heading = AWS)]
    pub max_concurrency: u32,

    /// Attempts per API call, the first included (throttling, 5xx, timeouts and connection errors are retried).
    #[arg(long = "aws.max-attempts", value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20), help_heading = AWS)]
    pub max_attempts: u32,

    /// Timeout of one API request attempt.
    #[arg(long = "aws.request-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration, help_heading = AWS)]
    pub request_timeout: Duration,

    /// How often to list image build versions to find new builds.
    #[arg(long = "discovery.interval", value_name = "DURATION", default_value = "5m", value_parser = parse_positive_duration, help_heading = DISCOVERY)]
    pub discovery_interval: Duration,

    /// Track every build created within this window (plus the newest build of each image and builds in flight).
    #[arg(long = "discovery.lookback", value_name = "DURATION", default_value = "24h", value_parser = parse_positive_duration, help_heading = DISCOVERY)]
    pub discovery_lookback: Duration,

    /// Track at most this many builds; the oldest finished builds are dropped first.
    #[arg(long = "discovery.max-builds", value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000), help_heading = DISCOVERY)]
    pub max_builds: u32,

    /// Only track images whose name matches this regular expression (anchored at both ends).
    #[arg(long = "filter.image-name", value_name = "REGEX", value_parser = parse_image_regex, help_heading = DISCOVERY)]
    pub image_filter: Option<Regex>,

    /// Image tags to export as labels of imagebuilder_image_tags (tag_<key>), comma-separated, e.g. team,env; to route alerts by owner.
    #[arg(long = "labels.image-tags", value_name = "KEYS", value_parser = TagAllowList::parse, help_heading = DISCOVERY)]
    pub image_tags: Option<TagAllowList>,

    /// Also track this step execution directly (repeatable), e.g. step-0123abcd-0123-4567-89ab-0123456789ab.
    #[arg(long = "step-execution-id", value_name = "ID", value_parser = parse_step_execution_id, help_heading = DISCOVERY)]
    pub step_execution_ids: Vec<String>,

    /// Minimum time between two refreshes; scrapes in between get the current data.
    #[arg(long = "refresh.min-interval", value_name = "DURATION", default_value = "30s", value_parser = parse_duration, help_heading = REFRESH)]
    pub refresh_min_interval: Duration,

    /// Longest a scrape waits for a refresh before it is served the last complete data.
    #[arg(long = "scrape.timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration, help_heading = REFRESH)]
    pub scrape_timeout: Duration,

    /// Taken off the scraper's own timeout (Prometheus' X-Prometheus-Scrape-Timeout-Seconds header) to leave time for the answer: a scrape waits that timeout less this offset, at most --scrape.timeout.
    #[arg(long = "scrape.timeout-offset", value_name = "DURATION", default_value = "500ms", value_parser = parse_duration, help_heading = REFRESH)]
    pub scrape_timeout_offset: Duration,

    /// Longest /-/ready waits, from start-up, for a target whose refreshes keep failing with passing errors (throttling, timeouts, connection); a target failing with an error retrying will not fix (access denied, no credentials, a role that cannot be assumed) never holds it.
    #[arg(long = "readiness.max-wait", value_name = "DURATION", default_value = "5m", value_parser = parse_duration, help_heading = REFRESH)]
    pub ready_max_wait: Duration,

    /// SQS queue that receives Image Builder's EventBridge events: builds are read again within seconds of a change, and discovery runs every hour unless --discovery.interval is given. Without --config.file only (per target there).
    #[arg(long = "events.sqs-queue-url", value_name = "URL", env = "IMAGEBUILDER_EVENTS_SQS_QUEUE_URL", value_parser = parse_optional_queue_url, help_heading = EVENTS)]
    pub events_queue_url: Option<String>,

    /// Only log messages with this level or above.
    #[arg(
        long = "log.level",
        value_name = "LEVEL",
        default_value = "info",
        value_enum,
        help_heading = LOGGING
    )]
    pub log_level: LogLevel,

    /// Log format.
    #[arg(
        long = "log.format",
        value_name = "FORMAT",
        default_value = "logfmt",
        value_enum,
        help_heading = LOGGING
    )]
    pub log_format: LogFormat,

    /// Run against a built-in Image Builder simulator: no AWS account needed.
    #[arg(long = "demo", help_heading = DEMO)]
    pub demo: bool,
}

/// The end of `--help`: where AWS settings come from, and the endpoint
/// variables that point the exporter at the simulator.
const AFTER_HELP: &str = "AWS credentials and region come from the default chain: the environment (AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), AWS_PROFILE and the shared files, web identity (EKS IRSA), container and instance roles. AWS_ENDPOINT_URL_IMAGEBUILDER and AWS_ENDPOINT_URL_STS (for targets with role_arn) point the clients at other endpoints, such as imagebuilder-sim's.";

/// `--help`'s headings: the flags grouped by what they set, in the order
/// a new user meets them.
pub const WEB: &str = "Web server";
pub const TARGETS: &str = "Accounts and regions";
pub const AWS: &str = "AWS API";
pub const DISCOVERY: &str = "Discovery: what is tracked";
pub const REFRESH: &str = "Refresh and readiness";
pub const EVENTS: &str = "Events";
pub const LOGGING: &str = "Logging";
pub const DEMO: &str = "Demo";

/// A flag value of this module's own parsers that is refused. Each is the
/// parser of one flag, and clap names the flag before the message
/// (`invalid value 'x' for '--web.listen-address <ADDRESS>': …`), so the
/// message says what is wrong with the value and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// `--web.listen-address`.
    #[error("{0:?} is not a listen address: use HOST:PORT, [IPv6]:PORT or :PORT (e.g. :{DEFAULT_PORT} or 127.0.0.1:{DEFAULT_PORT})")]
    ListenAddress(String),
    /// `--web.telemetry-path`.
    #[error("{0:?} is not a usable path: it must start with '/', not be '/' or under '/-/', and hold no spaces, '?' or '#'")]
    TelemetryPath(String),
    /// `--aws.profile`.
    #[error("must not be empty")]
    Empty,
    /// `--aws.max-requests-per-second`.
    #[error("{0:?} is not a request rate: use a number above 0 and at most 10000, like 10 or 0.5")]
    Rate(String),
    /// `--shard.index`.
    #[error("{0:?} is neither a shard number nor a StatefulSet pod's name ending in its ordinal (like imagebuilder-exporter-2)")]
    ShardIndex(String),
}

/// `--shard.index`: a number, or the name of a StatefulSet's pod.
pub fn parse_shard_index(s: &str) -> Result<u32, FlagError> {
    s.parse::<u32>()
        .ok()
        .or_else(|| ordinal(s))
        .ok_or_else(|| FlagError::ShardIndex(s.to_string()))
}

/// A queue URL, or nothing: an empty `IMAGEBUILDER_EVENTS_SQS_QUEUE_URL`
/// (a ConfigMap key left empty) turns events off rather than failing.
fn parse_optional_queue_url(s: &str) -> Result<String, ParseError> {
    if s.is_empty() {
        Ok(String::new())
    } else {
        crate::base::parse::parse_queue_url(s)
    }
}

/// The targets read from `--config.file`.
#[derive(Debug, Clone)]
pub struct TargetsFile(pub TargetsConfig);

fn parse_targets_file(s: &str) -> Result<TargetsFile, TargetsFileError> {
    crate::app::targets_file::load(std::path::Path::new(s)).map(TargetsFile)
}

/// Everything the exporter needs, validated; built from [`Cli`] or by tests.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen_address: SocketAddr,
    pub web: WebConfig,
    pub aws: AwsSettings,
    pub limits: Limits,
    pub discovery: DiscoveryConfig,
    pub refresh_min_interval: Duration,
    pub scrape_timeout: ScrapeTimeout,
    /// `--readiness.max-wait`: how long a target failing with passing
    /// errors may hold `/-/ready` at 503.
    pub ready_max_wait: Duration,
    pub demo: bool,
    /// What to export: from `--config.file`, or one target from the flags.
    pub targets: Vec<TargetSpec>,
    /// The organisation whose accounts to export, from `--config.file`.
    pub organization: Option<OrganizationSpec>,
    /// `--organization.interval`.
    pub organization_interval: Duration,
    /// `--shard.count` and `--shard.index`.
    pub shard: Shard,
    /// `--discovery.interval` of targets that follow events: one hour
    /// unless the flag was given (events make new builds show within
    /// seconds; the listing is the safety net).
    pub events_discovery_interval: Duration,
}

impl Options {
    /// Options from command-line style arguments (without the program name),
    /// e.g. `Options::from_args(["--demo"])`.
    pub fn from_args<I, T>(args: I) -> Result<Options, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let argv = std::iter::once(std::ffi::OsString::from("imagebuilder-exporter"))
            .chain(args.into_iter().map(Into::into));
        Cli::try_parse_args(argv).map(|(_, o)| o)
    }
}

impl Cli {
    /// Parses the process arguments; on error clap prints the message and
    /// the caller should exit with [`clap::Error::exit_code`].
    pub fn try_parse_args<I, T>(args: I) -> Result<(Cli, Options), clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.events_queue_url = cli.events_queue_url.filter(|u| !u.is_empty());
        if cli.events_queue_url.is_some() && cli.targets.is_some() {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--events.sqs-queue-url applies without --config.file; with a config file, give each target its own `events: { sqs_queue_url: ... }`",
            ));
        }
        if cli.demo && !cfg!(feature = "demo") {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--demo needs the built-in simulator, which this build leaves out (built without the `demo` cargo feature): build with default features, or run imagebuilder-sim and point the exporter at it with AWS_ENDPOINT_URL_IMAGEBUILDER",
            ));
        }
        // Every target of a config file names its region: a flag that
        // would be silently ignored is refused instead.
        if cli.region.is_some() && cli.targets.is_some() {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--aws.region applies without --config.file; with a config file, each target's `region:` is used: remove --aws.region",
            ));
        }
        let has_organization = cli
            .targets
            .as_ref()
            .is_some_and(|TargetsFile(t)| t.organization.is_some());
        if matches.value_source("organization_interval") == Some(ValueSource::CommandLine)
            && !has_organization
        {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--organization.interval applies with an `organization` section in --config.file (see docs/organizations.md)",
            ));
        }
        match cli.shard_index {
            None if cli.shard_count > 1 => {
                return Err(Cli::command().error(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    format!("--shard.count {} needs --shard.index: this replica's number, or its StatefulSet pod's name (--shard.index=$(POD_NAME))", cli.shard_count),
                ))
            }
            Some(i) if i >= cli.shard_count => {
                return Err(Cli::command().error(
                    clap::error::ErrorKind::ValueValidation,
                    format!("invalid value '{i}' for '--shard.index <I>': shard {i} does not exist with --shard.count {}: use 0 to {}", cli.shard_count, cli.shard_count - 1),
                ))
            }
            _ => {}
        }
        let opts = cli.clone().into_options(&matches);
        Ok((cli, opts))
    }

    /// Turns flags into options. `--demo` shortens the discovery and refresh
    /// intervals that were not given, so that the demo visibly moves.
    pub fn into_options(self, matches: &ArgMatches) -> Options {
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        let mut discovery_interval = self.discovery_interval;
        let mut min_interval = self.refresh_min_interval;
        let mut image_tags = self.image_tags.unwrap_or_default();
        if self.demo {
            if !given("image_tags") {
                // The demo's images carry these tags: show the family.
                image_tags = TagAllowList::parse("team,env").unwrap_or_default();
            }
            if !given("discovery_interval") {
                discovery_interval = Duration::from_secs(30);
            }
            if !given("refresh_min_interval") {
                min_interval = Duration::from_secs(5);
            }
        }
        Options {
            listen_address: self.listen_address,
            web: WebConfig {
                telemetry_path: self.telemetry_path,
                serve: ServeOptions {
                    max_connections: self.max_connections as usize,
                    ..ServeOptions::default()
                },
                config_file: self.web_config_file,
                security: None,
            },
            targets: match &self.targets {
                Some(TargetsFile(t)) => t.targets.clone(),
                None => vec![TargetSpec {
                    // Named after the region once the default chain tells it.
                    name: String::new(),
                    region: self.region.clone(),
                    assume_role: None,
                    image_name_filter: None,
                    events_queue_url: self.events_queue_url,
                }],
            },
            organization: self.targets.and_then(|TargetsFile(t)| t.organization),
            organization_interval: self.organization_interval,
            shard: Shard {
                index: self.shard_index.unwrap_or(0),
                count: self.shard_count,
            },
            aws: AwsSettings {
                region: self.region,
                profile: self.profile,
                endpoint_url: None,
                static_credentials: None,
                assume_role: None,
                request_timeout: self.request_timeout,
            },
            limits: Limits {
                requests_per_second: self.max_requests_per_second,
                max_concurrency: self.max_concurrency as usize,
                retry: RetryPolicy {
                    max_attempts: self.max_attempts,
                    ..RetryPolicy::default()
                },
            },
            discovery: DiscoveryConfig {
                lookback: self.discovery_lookback,
                interval: discovery_interval,
                image_filter: self.image_filter,
                step_execution_ids: self.step_execution_ids,
                max_builds: self.max_builds as usize,
                image_tags,
                defer_backfill: true,
            },
            refresh_min_interval: min_interval,
            scrape_timeout: ScrapeTimeout {
                max: self.scrape_timeout,
                offset: self.scrape_timeout_offset,
            },
            ready_max_wait: self.ready_max_wait,
            demo: self.demo,
            events_discovery_interval: if given("discovery_interval") {
                self.discovery_interval
            } else if self.demo {
                // The demo's builds appear through its events; the listing
                // checks every five minutes.
                Duration::from_secs(300)
            } else {
                Duration::from_secs(3600)
            },
        }
    }
}

/// `host:port`, `[v6]:port` or `:port` (all interfaces).
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, FlagError> {
    let err = || FlagError::ListenAddress(s.to_string());
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| err())?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(err)?;
    let port: u16 = port.parse().map_err(|_| err())?;
    match host {
        "localhost" => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
        "ip6-localhost" => Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port)),
        _ => Err(err()),
    }
}

fn parse_telemetry_path(s: &str) -> Result<String, FlagError> {
    let ok = s.starts_with('/')
        && s.len() > 1
        && !s.starts_with("/-/")
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
    if ok {
        Ok(s.to_string())
    } else {
        Err(FlagError::TelemetryPath(s.to_string()))
    }
}

fn parse_nonempty(s: &str) -> Result<String, FlagError> {
    if s.trim().is_empty() {
        Err(FlagError::Empty)
    } else {
        Ok(s.to_string())
    }
}

fn parse_rate(s: &str) -> Result<f64, FlagError> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 10_000.0 => Ok(r),
        _ => Err(FlagError::Rate(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_address(":9863").unwrap().to_string(),
            "0.0.0.0:9863"
        );
        assert_eq!(
            parse_listen_address("127.0.0.1:80").unwrap().to_string(),
            "127.0.0.1:80"
        );
        assert_eq!(
            parse_listen_address("[::1]:80").unwrap().to_string(),
            "[::1]:80"
        );
        assert_eq!(
            parse_listen_address("localhost:80").unwrap().to_string(),
            "127.0.0.1:80"
        );
        for bad in ["9863", ":99999", "example.com:80", "1.2.3.4", ""] {
            assert!(parse_listen_address(bad)
                .unwrap_err()
                .to_string()
                .contains("listen address"));
        }
    }

    #[test]
    fn defaults_and_demo() {
        let o = Options::from_args(Vec::<String>::new()).unwrap();
        assert_eq!(o.listen_address.port(), DEFAULT_PORT);
        assert_eq!(o.discovery.interval, Duration::from_secs(300));
        assert_eq!(o.refresh_min_interval, Duration::from_secs(30));
        // blackbox_exporter's --timeout-offset: 0.5 s off the scraper's.
        assert_eq!(
            o.scrape_timeout,
            ScrapeTimeout {
                max: Duration::from_secs(10),
                offset: Duration::from_millis(500),
            }
        );
        let o = Options::from_args(["--scrape.timeout-offset", "0s"]).unwrap();
        assert_eq!(o.scrape_timeout.offset, Duration::ZERO);
        if !cfg!(feature = "demo") {
            return; // --demo is refused: see the next test.
        }
        let (_, o) = Cli::try_parse_args(["x", "--demo"]).unwrap();
        assert_eq!(o.discovery.interval, Duration::from_secs(30));
        let (_, o) = Cli::try_parse_args(["x", "--demo", "--discovery.interval", "2m"]).unwrap();
        assert_eq!(o.discovery.interval, Duration::from_secs(120));
    }

    /// Without the `demo` feature the simulator is not linked in: `--demo`
    /// is refused with a usage error that says why, not accepted and then
    /// failing at start-up.
    #[test]
    fn demo_needs_the_demo_feature() {
        let parsed = Cli::try_parse_args(["x", "--demo"]);
        if cfg!(feature = "demo") {
            assert!(parsed.is_ok());
        } else {
            let Err(e) = parsed else {
                panic!("--demo accepted without the demo feature")
            };
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("`demo` cargo feature"), "{e}");
        }
    }

    #[test]
    fn events_a_queue_or_nothing() {
        let url = "https://sqs.eu-west-1.amazonaws.com/123456789012/imagebuilder-events";
        let (_, o) = Cli::try_parse_args(["x", "--events.sqs-queue-url", url]).unwrap();
        assert_eq!(o.targets[0].events_queue_url.as_deref(), Some(url));
        // With events, the listing is the safety net: hourly unless given.
        assert_eq!(o.events_discovery_interval, Duration::from_secs(3600));
        let (_, o) = Cli::try_parse_args([
            "x",
            "--events.sqs-queue-url",
            url,
            "--discovery.interval",
            "10m",
        ])
        .unwrap();
        assert_eq!(o.events_discovery_interval, Duration::from_secs(600));
        // An empty value (a ConfigMap key left empty) is no queue.
        let (_, o) = Cli::try_parse_args(["x", "--events.sqs-queue-url", ""]).unwrap();
        assert_eq!(o.targets[0].events_queue_url, None);
        let e = Cli::try_parse_args(["x", "--events.sqs-queue-url", "queue"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("not an SQS queue URL"), "{e}");
    }

    #[test]
    fn a_region_flag_with_a_config_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("targets.yml");
        std::fs::write(&path, "targets:\n  - region: eu-west-1\n").unwrap();
        let file = path.to_str().unwrap();
        let (_, o) = Cli::try_parse_args(["x", "--config.file", file]).unwrap();
        assert_eq!(o.targets[0].region.as_deref(), Some("eu-west-1"));
        let e = Cli::try_parse_args(["x", "--config.file", file, "--aws.region", "us-east-1"])
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("each target's `region:` is used"),
            "{e}"
        );
    }

    #[test]
    fn readiness_waits_five_minutes_unless_told() {
        let o = Options::from_args(Vec::<String>::new()).unwrap();
        assert_eq!(o.ready_max_wait, Duration::from_secs(300));
        let o = Options::from_args(["--readiness.max-wait", "30s"]).unwrap();
        assert_eq!(o.ready_max_wait, Duration::from_secs(30));
    }

    #[test]
    fn bad_flags_exit_with_2_and_name_the_value() {
        for args in [
            vec!["x", "--discovery.lookback", "soon"],
            vec!["x", "--step-execution-id", "nope"],
            vec!["x", "--web.listen-address", "nowhere"],
            vec!["x", "--aws.max-requests-per-second", "0"],
            vec!["x", "--filter.image-name", "(("],
            vec!["x", "--log.format", "xml"],
            vec!["x", "--web.telemetry-path", "metrics"],
            vec!["x", "--labels.image-tags", "team,team"],
            vec!["x", "--scrape.timeout-offset", "fast"],
        ] {
            let e = Cli::try_parse_args(args.clone()).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            let text = e.to_string();
            assert!(text.contains(args[2]), "{args:?}: {text}");
        }
    }

    #[test]
    fn shards_from_a_number_or_a_statefulset_pod_name() {
        let o = Options::from_args(Vec::<String>::new()).unwrap();
        assert_eq!(o.shard, Shard { index: 0, count: 1 });
        let o = Options::from_args(["--shard.count", "3", "--shard.index", "2"]).unwrap();
        assert_eq!(o.shard, Shard { index: 2, count: 3 });
        let o = Options::from_args([
            "--shard.count",
            "3",
            "--shard.index",
            "imagebuilder-exporter-1",
        ])
        .unwrap();
        assert_eq!(o.shard, Shard { index: 1, count: 3 });
        for (args, want) in [
            (
                vec!["x", "--shard.count", "3", "--shard.index", "3"],
                "shard 3 does not exist with --shard.count 3: use 0 to 2",
            ),
            (
                vec!["x", "--shard.index", "1"],
                "shard 1 does not exist with --shard.count 1",
            ),
            (
                vec!["x", "--shard.count", "3"],
                "--shard.count 3 needs --shard.index",
            ),
            (
                vec!["x", "--shard.count", "3", "--shard.index", "exporter"],
                "\"exporter\" is neither a shard number nor a StatefulSet pod's name",
            ),
            (vec!["x", "--shard.count", "0"], "--shard.count"),
        ] {
            let e = Cli::try_parse_args(args.clone()).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn the_organization_interval_needs_an_organization() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("targets.yml");
        std::fs::write(&path, "targets:\n  - region: eu-west-1\n").unwrap();
        let file = path.to_str().unwrap();
        let e = Cli::try_parse_args(["x", "--config.file", file, "--organization.interval", "10m"])
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("`organization` section"), "{e}");
        std::fs::write(
            &path,
            "organization:\n  member_role_name: r\n  regions: [us-east-1]\n",
        )
        .unwrap();
        let o =
            Options::from_args(["--config.file", file, "--organization.interval", "10m"]).unwrap();
        assert_eq!(o.organization_interval, Duration::from_secs(600));
        assert!(o.targets.is_empty());
        assert!(o.organization.is_some());
    }
}

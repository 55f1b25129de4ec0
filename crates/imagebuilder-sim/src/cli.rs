//! `imagebuilder-sim`'s command line: the simulator as a standalone server,
//! for trying the exporter without an AWS account, end-to-end tests and
//! benchmarks. `src/main.rs` only calls [`main`].
//!
//! ```text
//! imagebuilder-sim --listen 127.0.0.1:4566 --scenario demo --events-queue imagebuilder-events
//! AWS_ENDPOINT_URL_IMAGEBUILDER=http://127.0.0.1:4566 AWS_ENDPOINT_URL_SQS=http://127.0.0.1:4566 \
//!   imagebuilder-exporter --events.sqs-queue-url=http://127.0.0.1:4566/123456789012/imagebuilder-events
//! imagebuilder-sim --scenario organization --accounts 20 --regions us-east-1,eu-west-1 --builds 20
//! ```

use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tracing_subscriber::EnvFilter;

use crate::clock::{Clock, ScaledClock, SystemClock, NANOS_PER_SEC};
use crate::constraints::role_account;
use crate::{queue_url, scenario, Faults, Simulator};

/// `--version`: the simulator's own package version.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `--log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    /// Eleven images in account 123456789012, us-east-1: a day of history, a new build every 90 s (some fail), a step waiting for approval, a failed rollback, a retried step, a build that failed before its workflows, an image not built for 8 days, a build that failed distributing to one of its three Regions, and a pipeline for each image, one of which disables itself after about 2.5 minutes.
    Demo,
    /// `--builds` finished builds over `--images` images, plus `--running`.
    Sized,
    /// An AWS organisation of `--accounts` accounts (the management account 123456789012 and members team-001, …, the last `--sandboxes` named sandbox-001, …), each with a sized world (`--builds`, `--images`, `--running`) in each of `--regions`, and the role `--role-name` trusted in each.
    Organization,
}

/// What `--help` says the simulator is, and how to point the exporter at it.
const ABOUT: &str =
    "Simulated AWS EC2 Image Builder, to try and test imagebuilder-exporter without an AWS account";
const LONG_ABOUT: &str = "Simulated AWS EC2 Image Builder, to try and test imagebuilder-exporter without an AWS account.

Serves, on one endpoint, Image Builder's rest-json API (the calls the exporter makes, whose builds move with time), STS AssumeRole (any role may be assumed unless --deny-role names it, so that targets with role_arn work) and, with --events-queue, an SQS queue of Image Builder's events. Any credentials are accepted. It prints the variables that point the exporter at it, e.g.:

  AWS_ENDPOINT_URL_IMAGEBUILDER=http://127.0.0.1:4566 AWS_ENDPOINT_URL_STS=http://127.0.0.1:4566 \\
  AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test imagebuilder-exporter";

#[derive(Debug, Parser)]
#[command(name = "imagebuilder-sim", version = VERSION, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4566")]
    listen: SocketAddr,
    /// The simulated account's builds.
    #[arg(long, value_enum, default_value = "demo")]
    scenario: Scenario,
    /// Finished builds (sized scenario; organization: per account and Region).
    #[arg(long, default_value_t = 100)]
    builds: usize,
    /// Images the builds are spread over (sized and organization scenarios).
    #[arg(long, default_value_t = 5)]
    images: usize,
    /// Builds in flight (sized scenario; organization: per account and Region).
    #[arg(long, default_value_t = 3)]
    running: usize,
    /// Accounts of the organization scenario, the management account included.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    accounts: u32,
    /// Regions each account of the organization scenario has builds in, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "us-east-1,eu-west-1", value_parser = region)]
    regions: Vec<String>,
    /// Members of the organization scenario named sandbox-NNN rather than team-NNN.
    #[arg(long, default_value_t = 2)]
    sandboxes: usize,
    /// The role trusted in every account of the organization scenario
    /// (arn:aws:iam::ACCOUNT:role/NAME).
    #[arg(long = "role-name", default_value = "imagebuilder-exporter", value_parser = role_name)]
    role_name: String,
    /// Seed of the scenario and of injected faults.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Run the clock this many times faster than real time.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Share of requests answered 429 CallRateLimitExceededException.
    #[arg(long, default_value_t = 0.0)]
    throttle_ratio: f64,
    /// Share of requests answered 500/503.
    #[arg(long, default_value_t = 0.0)]
    server_error_ratio: f64,
    /// Latency added to every answer.
    #[arg(long, default_value = "0s", value_parser = duration)]
    latency: Duration,
    /// Only log messages with this level or above.
    #[arg(long = "log.level", value_enum, default_value = "info")]
    log_level: LogLevel,
    /// Serve an SQS queue of this name and publish Image Builder's
    /// EventBridge events to it (state changes, steps waiting, pipelines
    /// disabled automatically).
    #[arg(long = "events-queue", value_name = "NAME", value_parser = queue_name)]
    events_queue: Option<String>,
    /// Refuse sts:AssumeRole for this role (repeatable), as a trust policy
    /// that does not name the exporter would: to try a target whose role is
    /// denied. Every other role may be assumed.
    #[arg(long = "deny-role", value_name = "ARN", value_parser = role_arn)]
    deny_roles: Vec<String>,
}

/// An IAM role ARN (`arn:aws:iam::123456789012:role/name`).
fn role_arn(s: &str) -> Result<String, String> {
    match role_account(s) {
        Some(_) => Ok(s.to_string()),
        None => Err("an IAM role ARN like arn:aws:iam::123456789012:role/name".into()),
    }
}

/// A Region name such as `us-east-1`: lower-case letters and digits in
/// hyphen-separated parts.
fn region(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if ok {
        Ok(s.to_string())
    } else {
        Err("a Region name like us-east-1".into())
    }
}

/// An IAM role name: 1 to 64 letters, digits and `_+=,.@-`.
fn role_name(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        Err("an IAM role name: 1 to 64 letters, digits and _+=,.@-".into())
    }
}

/// A duration such as `250ms`, `2s` or `1m30s` (units `h`, `m`, `s`, `ms`,
/// largest first), or `0`.
fn duration(s: &str) -> Result<Duration, String> {
    let err =
        || format!("{s:?} is not a duration: use a number with a unit, like 250ms, 2s or 1m30s");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let units: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)];
    let (mut rest, mut total, mut next_unit) = (s, 0u64, 0);
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        // `ms` before `m`, so that `5ms` is not 5 minutes and an `s`.
        let i = [3, 0, 1, 2]
            .into_iter()
            .find(|&i| rest.starts_with(units[i].0))
            .filter(|&i| i >= next_unit)
            .ok_or_else(err)?;
        rest = &rest[units[i].0.len()..];
        next_unit = i + 1;
        total = n
            .checked_mul(units[i].1)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(err)?;
    }
    if next_unit == 0 {
        return Err(err());
    }
    Ok(Duration::from_millis(total))
}

/// SQS's rule for queue names: 1 to 80 letters, digits, `-` and `_`.
fn queue_name(s: &str) -> Result<String, String> {
    let valid = (1..=80).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(s.to_string())
    } else {
        Err("1 to 80 letters, digits, '-' and '_'".into())
    }
}

/// Installs the log subscriber: tracing-subscriber's text format on stderr,
/// the simulator's own messages at `level`, its libraries' only when they
/// warn, unless `RUST_LOG` says otherwise.
fn init_logging(level: LogLevel) {
    let level = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,imagebuilder_sim={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// `imagebuilder-sim`: parses the command line, then serves until Ctrl-C.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    init_logging(args.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(args, async {
        let _ = tokio::signal::ctrl_c().await;
    }))
}

/// Serves the simulator `args` describe until `shutdown` completes; prints
/// the variables that point the exporter at it.
pub async fn run(args: Args, shutdown: impl Future<Output = ()>) -> ExitCode {
    let clock: Arc<dyn Clock> = if args.speed == 1.0 {
        Arc::new(SystemClock)
    } else {
        ScaledClock::new(SystemClock.now(), args.speed)
    };
    let now = clock.now();
    let span = 20 * 3600 * NANOS_PER_SEC;
    let (store, organization) = match args.scenario {
        Scenario::Demo => (scenario::demo(now, args.seed), None),
        Scenario::Sized => (
            scenario::sized(now, args.builds, args.images, args.running, span, args.seed),
            None,
        ),
        Scenario::Organization => {
            let spec = scenario::OrganizationSpec {
                accounts: args.accounts as usize,
                regions: args.regions.clone(),
                builds: args.builds,
                images: args.images,
                running: args.running,
                span,
                role_name: args.role_name.clone(),
                sandboxes: args.sandboxes,
                seed: args.seed,
            };
            // Requests signed with other credentials than an assumed
            // role's read the management account's stores.
            (
                crate::Store::default(),
                Some(scenario::organization(now, &spec)),
            )
        }
    };
    let sim = Simulator::new(clock, store, args.seed);
    if let Some(world) = organization {
        let (id, accounts) = (world.id.clone(), world.accounts.len());
        if let Err(e) = world.install(&sim) {
            tracing::error!(error = %e, "cannot build the organization");
            return ExitCode::from(1);
        }
        tracing::info!(
            organization = %id,
            accounts,
            regions = %args.regions.join(","),
            builds_per_account_and_region = args.builds + args.running,
            member_role = %format!("arn:aws:iam::ACCOUNT:role/{}", args.role_name),
            "organization ready"
        );
    }
    sim.allow_any_role();
    for role in &args.deny_roles {
        sim.deny_role(role);
    }
    sim.set_faults(Faults {
        throttle_ratio: args.throttle_ratio,
        server_error_ratio: args.server_error_ratio,
        latency: args.latency,
        ..Faults::default()
    });
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %args.listen, error = %e, "cannot listen");
            return ExitCode::from(1);
        }
    };
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    tracing::info!(endpoint = %url, "simulator ready");
    println!("AWS_ENDPOINT_URL_IMAGEBUILDER={url}");
    println!("AWS_ENDPOINT_URL_STS={url}");
    println!("AWS_ENDPOINT_URL_ORGANIZATIONS={url}");
    if let Some(name) = &args.events_queue {
        sim.enable_events(name);
        let queue = queue_url(&url, name);
        tracing::info!(queue = %queue, "publishing Image Builder events");
        println!("AWS_ENDPOINT_URL_SQS={url}");
        println!("IMAGEBUILDER_EVENTS_SQS_QUEUE_URL={queue}");
    }
    sim.serve(listener, shutdown).await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (s, ms) in [
            ("0", 0),
            ("0s", 0),
            ("250ms", 250),
            ("2s", 2000),
            ("1m30s", 90_000),
            ("1h", 3_600_000),
            ("1s500ms", 1500),
        ] {
            assert_eq!(duration(s), Ok(Duration::from_millis(ms)), "{s}");
        }
        for s in ["", "5", "s", "1.5s", "30s1m", "1s1s", "2d", "-1s"] {
            assert!(duration(s).is_err(), "{s:?} was accepted");
        }
    }

    #[test]
    fn flags() {
        assert!(role_arn("arn:aws:iam::123456789012:role/name").is_ok());
        assert!(role_arn("arn:aws:iam::123456789012:user/name").is_err());
        assert!(queue_name("imagebuilder-events_1").is_ok());
        assert!(queue_name("no.dots").is_err());
        assert!(queue_name(&"q".repeat(81)).is_err());
        let args = Args::try_parse_from([
            "imagebuilder-sim",
            "--latency",
            "1m30s",
            "--deny-role",
            "arn:aws:iam::123456789012:role/x",
        ])
        .unwrap();
        assert_eq!(args.latency, Duration::from_secs(90));
        assert_eq!(args.deny_roles.len(), 1);
        assert!(Args::try_parse_from(["imagebuilder-sim", "--deny-role", "x"]).is_err());
        let args = Args::try_parse_from([
            "imagebuilder-sim",
            "--scenario",
            "organization",
            "--accounts",
            "300",
            "--regions",
            "us-east-1,ap-southeast-2",
            "--role-name",
            "ibx-reader",
        ])
        .unwrap();
        assert_eq!(args.accounts, 300);
        assert_eq!(args.regions, ["us-east-1", "ap-southeast-2"]);
        assert_eq!(args.role_name, "ibx-reader");
        for bad in [
            ["--accounts", "0"],
            ["--regions", "us-east-1,Mars"],
            ["--regions", "us-east-1,"],
            ["--role-name", "has space"],
        ] {
            let mut argv = vec!["imagebuilder-sim", "--scenario", "organization"];
            argv.extend(bad);
            assert!(Args::try_parse_from(argv).is_err(), "{bad:?} was accepted");
        }
    }
}

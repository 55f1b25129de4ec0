//! Parsing shared by the flags, the targets file and the web configuration:
//! Prometheus durations, and the patterns of AWS names (regions, ARNs,
//! IDs). A leaf: it imports nothing of the crate, so that every layer may
//! use it. The simulator has rules of its own, from the service models.

use std::time::Duration;

use regex::Regex;

/// An AWS region name (`us-east-1`).
pub const REGION: &str = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$";
/// An IAM role ARN; the account ID is the first group.
pub const ROLE_ARN: &str = r"^arn:aws[a-z-]*:iam::([0-9]{12}):role/[A-Za-z0-9_+=,.@/-]{1,512}$";
/// `sts:AssumeRole`'s external ID.
pub const EXTERNAL_ID: &str = r"^[A-Za-z0-9_+=,.@:/-]{2,1224}$";
/// `sts:AssumeRole`'s session name.
pub const SESSION_NAME: &str = r"^[A-Za-z0-9_+=,.@-]{2,64}$";
/// An image build version ARN, as the service model's pattern has it.
pub const BUILD_ARN: &str = r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws(?:-[a-z-]+)?):image/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$";
/// A workflow execution ID (`wf-` and a UUID).
pub const WORKFLOW_EXECUTION_ID: &str =
    r"^wf-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// A step execution ID (`step-` and a UUID).
pub const STEP_EXECUTION_ID: &str =
    r"^step-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// A value that does not parse. The message quotes the value and says what
/// is accepted; whoever reads the value names where it came from (clap the
/// flag, the targets file its target and field).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("{0:?} is not a duration: use a number with a unit, like 30s, 5m or 1h30m (units: ms, s, m, h, d, w, y)")]
    Duration(String),
    #[error("{0:?} is too long a duration")]
    DurationTooLong(String),
    #[error("{0:?} must be longer than zero")]
    ZeroDuration(String),
    #[error("{0:?} is not an SQS queue URL like https://sqs.eu-west-1.amazonaws.com/123456789012/imagebuilder-events")]
    QueueUrl(String),
    #[error("{0:?} is not an AWS region name like us-east-1")]
    Region(String),
    #[error("{text:?} is not a valid regular expression: {error}")]
    Regex { text: String, error: regex::Error },
    #[error("{0:?} is not a step execution ID: it must match {STEP_EXECUTION_ID}")]
    StepExecutionId(String),
    /// One of the patterns above does not compile: a bug, which the unit
    /// tests catch, reported rather than panicked on.
    #[error("a built-in pattern does not compile: {0}")]
    Pattern(#[from] regex::Error),
}

/// True if `s` matches `pattern` (one of the constants above).
pub fn matches(pattern: &str, s: &str) -> Result<bool, regex::Error> {
    Regex::new(pattern).map(|re| re.is_match(s))
}

/// Parses a Prometheus-style duration: `30s`, `5m`, `1h30m`, `500ms`, `7d`.
///
/// ```
/// use imagebuilder_exporter::base::parse::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert!(parse_duration("1.5h").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, ParseError> {
    let err = || ParseError::Duration(s.to_string());
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let units: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1000),
    ];
    // Units must come in decreasing order, each at most once.
    let order = ["y", "w", "d", "h", "m", "s", "ms"];
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let (unit, ms) = units
            .iter()
            .find(|(u, _)| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")))
            .ok_or_else(err)?;
        let pos = order.iter().position(|o| o == unit);
        if last.is_some_and(|l| pos <= l) {
            return Err(err());
        }
        last = Some(pos);
        rest = &rest[unit.len()..];
        total = n
            .checked_mul(*ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| ParseError::DurationTooLong(s.to_string()))?;
    }
    if last.is_none() {
        return Err(err());
    }
    Ok(Duration::from_millis(total))
}

/// [`parse_duration`], refusing zero.
pub fn parse_positive_duration(s: &str) -> Result<Duration, ParseError> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(ParseError::ZeroDuration(s.to_string()));
    }
    Ok(d)
}

/// An SQS queue URL (`https://sqs.eu-west-1.amazonaws.com/123456789012/name`,
/// or another endpoint's, such as the simulator's): http or https, a host,
/// and a path naming the queue.
pub fn parse_queue_url(s: &str) -> Result<String, ParseError> {
    let err = || ParseError::QueueUrl(s.to_string());
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(err)?;
    let (host, path) = rest.split_once('/').ok_or_else(err)?;
    let queue = path.trim_end_matches('/');
    if host.is_empty() || queue.is_empty() || s.chars().any(char::is_whitespace) {
        return Err(err());
    }
    Ok(s.to_string())
}

/// A duration as the flags take it (`5m`, `1h30m`, `500ms`, `0s`), for
/// messages that name a flag's value.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// An AWS region name.
pub fn parse_region(s: &str) -> Result<String, ParseError> {
    if matches(REGION, s)? {
        Ok(s.to_string())
    } else {
        Err(ParseError::Region(s.to_string()))
    }
}

/// An image-name filter: anchored at both ends, as Prometheus anchors regexes.
pub fn parse_image_regex(s: &str) -> Result<Regex, ParseError> {
    Regex::new(&format!("^(?:{s})$")).map_err(|error| ParseError::Regex {
        text: s.to_string(),
        error,
    })
}

/// A step execution ID, in the API's format.
pub fn parse_step_execution_id(s: &str) -> Result<String, ParseError> {
    if matches(STEP_EXECUTION_ID, s)? {
        Ok(s.to_string())
    } else {
        Err(ParseError::StepExecutionId(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_prometheus() {
        let d = |s| parse_duration(s).unwrap();
        assert_eq!(d("30s"), Duration::from_secs(30));
        assert_eq!(d("5m"), Duration::from_secs(300));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("1d"), Duration::from_secs(86_400));
        assert_eq!(d("1m30s500ms"), Duration::from_millis(90_500));
        assert_eq!(d("0"), Duration::ZERO);
        for bad in [
            "",
            "5",
            "m",
            "5x",
            "30s5m",
            "5m5m",
            "-5s",
            "1.5h",
            " 5s",
            "99999999999999999999y",
        ] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        assert!(parse_positive_duration("0s").is_err());
    }

    #[test]
    fn step_ids_follow_the_api_pattern() {
        assert!(parse_step_execution_id("step-0123abcd-0123-4567-89ab-0123456789ab").is_ok());
        let e = parse_step_execution_id("step-123").unwrap_err().to_string();
        assert!(e.contains("\"step-123\"") && e.contains("^step-"));
    }

    #[test]
    fn image_filter_is_anchored() {
        let re = parse_image_regex("web.*").unwrap();
        assert!(re.is_match("web-server"));
        assert!(!re.is_match("my-web-server"));
        assert!(parse_image_regex("(")
            .unwrap_err()
            .to_string()
            .contains("regular expression"));
    }

    #[test]
    fn queue_urls_name_a_queue() {
        for ok in [
            "https://sqs.eu-west-1.amazonaws.com/123456789012/imagebuilder-events",
            "http://127.0.0.1:4566/123456789012/q",
        ] {
            assert_eq!(parse_queue_url(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "",
            "sqs.eu-west-1.amazonaws.com/1/q",
            "https://sqs.eu-west-1.amazonaws.com",
            "https://sqs.eu-west-1.amazonaws.com/",
            "https:///1/q",
            "https://h/1/q x",
        ] {
            assert!(
                parse_queue_url(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("SQS queue URL"),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_follow_the_aws_patterns() {
        assert_eq!(parse_region("eu-west-1").as_deref(), Ok("eu-west-1"));
        assert!(parse_region("mars")
            .unwrap_err()
            .to_string()
            .contains("\"mars\""));
        for p in [
            ROLE_ARN,
            EXTERNAL_ID,
            SESSION_NAME,
            BUILD_ARN,
            WORKFLOW_EXECUTION_ID,
        ] {
            assert!(Regex::new(p).is_ok(), "{p}");
        }
        assert_eq!(
            matches(
                BUILD_ARN,
                "arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/7"
            ),
            Ok(true)
        );
        assert_eq!(
            matches(ROLE_ARN, "arn:aws:iam::210987654321:role/exporter"),
            Ok(true)
        );
    }

    #[test]
    fn durations_are_written_as_flags_take_them() {
        for text in ["5m", "1h30m", "500ms", "0s", "2m3s", "90h"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}

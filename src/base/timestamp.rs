//! Parsing of the API's timestamps.
//!
//! Image Builder declares its times as plain strings (`DateTime` is a string
//! shape), so the SDK hands them over unparsed. We accept RFC 3339 date-times
//! with `Z` or a numeric offset, with or without fractional seconds, and refuse
//! everything else: an unparseable time must become "absent", never a guess.
//!
//! The grammar is the `time` crate's ([`Rfc3339`]), which the AWS SDK already
//! compiles in; this module only narrows it where the crate is laxer than the
//! RFC, and converts to the model's [`Nanos`]. What the crate decides:
//!
//! * fractions of any length, truncated to nanoseconds;
//! * `t` and `z` in lower case;
//! * offsets from `-23:59` to `+23:59`;
//! * a leap second (`:60`) only where one can occur, at the end of a month in
//!   UTC, read as the last nanosecond before the next second (`23:59:60.5Z`
//!   is `23:59:59.999999999Z`); `:60` anywhere else is refused.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::base::clock::{Nanos, NANOS_PER_SEC};

/// Why a timestamp was refused; the message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 date-time ({0})")]
pub struct TimestampError(Reason);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Reason {
    /// The crate's reason: the component or literal that is wrong.
    #[error("{0}")]
    Syntax(#[from] time::error::Parse),
    /// The crate takes any byte between date and time; the RFC, `T` (and
    /// lets applications use a space).
    #[error("date/time separator")]
    Separator,
    /// Outside what [`Nanos`] holds (1677 to 2262).
    #[error("out of range")]
    OutOfRange,
}

/// Parses an RFC 3339 date-time such as `2026-09-09T19:12:23.418Z` or
/// `2026-09-09T21:12:23+02:00` into Unix nanoseconds.
///
/// ```
/// use imagebuilder_exporter::base::timestamp::parse_rfc3339;
/// assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Ok(1_500_000_000));
/// assert_eq!(parse_rfc3339("1970-01-01T02:00:00+02:00"), Ok(0));
/// assert!(parse_rfc3339("yesterday").is_err());
/// ```
pub fn parse_rfc3339(s: &str) -> Result<Nanos, TimestampError> {
    // Checked first: `time` accepts any byte at position 10.
    if !matches!(s.as_bytes().get(10), None | Some(b'T' | b't' | b' ')) {
        return Err(TimestampError(Reason::Separator));
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| TimestampError(e.into()))?;
    // Whole seconds first, as the model's arithmetic does: the earliest
    // accepted instant is a whole second, so that what
    // `format_rfc3339_millis` writes always reads back.
    t.unix_timestamp()
        .checked_mul(NANOS_PER_SEC)
        .and_then(|n| n.checked_add(i64::from(t.nanosecond())))
        .ok_or(TimestampError(Reason::OutOfRange))
}

/// Formats Unix nanoseconds the way the AWS CLI shows them:
/// `2026-09-09T19:12:23.418Z` (milliseconds, UTC).
pub fn format_rfc3339_millis(t: Nanos) -> String {
    // Every `Nanos` (1677 to 2262) is well inside the crate's years
    // (-9999 to 9999), so the addition cannot overflow.
    let d = OffsetDateTime::UNIX_EPOCH + time::Duration::nanoseconds(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Nanos = 1_788_981_143_418_000_000; // 2026-09-09T19:12:23.418Z

    #[test]
    fn parses_the_cli_format() {
        assert_eq!(parse_rfc3339("2026-09-09T19:12:23.418Z"), Ok(T));
    }

    #[test]
    fn parses_offsets_and_missing_fraction() {
        assert_eq!(parse_rfc3339("2026-09-09T21:12:23.418+02:00"), Ok(T));
        assert_eq!(parse_rfc3339("2026-09-09T14:42:23.418-04:30"), Ok(T));
        assert_eq!(parse_rfc3339("2026-09-09T19:12:23Z"), Ok(T - 418_000_000));
        assert_eq!(
            parse_rfc3339("2026-09-09T19:12:23.418123456Z"),
            Ok(T + 123_456)
        );
        assert_eq!(parse_rfc3339("2026-09-09t19:12:23.418z"), Ok(T));
        assert_eq!(parse_rfc3339("2026-09-09 19:12:23.418Z"), Ok(T));
        assert_eq!(parse_rfc3339("2026-09-09T19:12:23.418-00:00"), Ok(T));
        assert_eq!(parse_rfc3339("2026-09-10T19:11:23.418+23:59"), Ok(T));
        assert_eq!(parse_rfc3339("2026-09-08T19:13:23.418-23:59"), Ok(T));
    }

    #[test]
    fn refuses_what_is_not_rfc3339() {
        for s in [
            "",
            "2026-09-09",
            "2026-09-09T19:12:23",
            "2026-09-09T19:12:23.Z",
            "2026-13-09T19:12:23Z",
            "2026-02-29T19:12:23Z",
            "2026-09-09T24:00:00Z",
            "2026-09-09T19:12:23+0200",
            "2026-09-09T19:12:23Z ",
            "1788981143",
            "Wed, 09 Sep 2026 19:12:23 GMT",
            "２０２6-09-09T19:12:23Z",
            // Separators other than T, t and space.
            "2026-09-09_19:12:23Z",
            "2026-09-09119:12:23Z",
            "2026-09-09\u{e9}19:12:23Z",
            // Offsets beyond 23:59, without a colon, or with a Unicode minus.
            "2026-09-09T19:12:23+24:00",
            "2026-09-09T19:12:23-25:59",
            "2026-09-09T19:12:23+02:60",
            "2026-09-09T19:12:23\u{2212}02:00",
            // Five-digit years, signed years.
            "10000-01-01T00:00:00Z",
            "+2026-09-09T19:12:23Z",
        ] {
            assert!(parse_rfc3339(s).is_err(), "{s:?} was accepted");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
    }

    /// Changed when the parser moved to the `time` crate: before, `:60` was
    /// accepted in any minute and read as the next minute's `:00` (keeping
    /// the fraction). Now it is accepted only where a leap second can be
    /// inserted (the last minute of a month, in UTC) and read as the last
    /// nanosecond of that minute, so that it still sorts before the next.
    #[test]
    fn leap_seconds_only_at_the_end_of_a_month() {
        let end_2016 = parse_rfc3339("2017-01-01T00:00:00Z").unwrap();
        for s in [
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.5Z",
            "2016-12-31t23:59:60z",
            "2017-01-01T00:59:60+01:00",
            "2016-12-31T18:59:60-05:00",
            "2016-06-30T23:59:60Z",
        ] {
            let t = parse_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            if s.starts_with("2016-06") {
                assert_eq!(t, parse_rfc3339("2016-07-01T00:00:00Z").unwrap() - 1, "{s}");
            } else {
                assert_eq!(t, end_2016 - 1, "{s}");
            }
        }
        for s in [
            "2026-09-09T19:12:60Z",
            "2016-12-31T23:58:60Z",
            "2016-12-30T23:59:60Z",
            "2016-12-31T23:59:60+01:00",
            "2016-12-31T23:59:61Z",
        ] {
            assert!(parse_rfc3339(s).is_err(), "{s:?} was accepted");
        }
    }

    #[test]
    fn the_range_is_that_of_nanos() {
        // i64::MAX nanoseconds is 2262-04-11T23:47:16.854775807Z.
        assert_eq!(
            parse_rfc3339("2262-04-11T23:47:16.854775807Z"),
            Ok(i64::MAX)
        );
        assert!(parse_rfc3339("2262-04-11T23:47:16.854775808Z").is_err());
        // The earliest accepted instant is a whole second (as before): the
        // one below would not be readable once formatted to milliseconds.
        let earliest = -9_223_372_036 * NANOS_PER_SEC;
        assert_eq!(parse_rfc3339("1677-09-21T00:12:44Z"), Ok(earliest));
        assert!(parse_rfc3339("1677-09-21T00:12:43.999999999Z").is_err());
        assert!(parse_rfc3339("1677-09-21T00:12:43.145224192Z").is_err());
        assert!(parse_rfc3339("0000-01-01T00:00:00Z").is_err());
        assert!(parse_rfc3339("9999-12-31T23:59:59Z").is_err());
        assert_eq!(format_rfc3339_millis(earliest), "1677-09-21T00:12:44.000Z");
        assert_eq!(format_rfc3339_millis(i64::MAX), "2262-04-11T23:47:16.854Z");
        assert_eq!(format_rfc3339_millis(i64::MIN), "1677-09-21T00:12:43.145Z");
    }

    #[test]
    fn errors_name_the_part() {
        let e = parse_rfc3339("2026-13-09T19:12:23Z")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("not an RFC 3339 date-time (") && e.contains("month"),
            "{e}"
        );
        let e = parse_rfc3339("2026-09-09_19:12:23Z")
            .unwrap_err()
            .to_string();
        assert!(e.contains("separator"), "{e}");
        let e = parse_rfc3339("1000-01-01T00:00:00Z")
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn formats_like_the_cli() {
        assert_eq!(format_rfc3339_millis(T), "2026-09-09T19:12:23.418Z");
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        for t in [T, 0, 951_782_400_123_000_000, -86_400_000_000_000] {
            assert_eq!(parse_rfc3339(&format_rfc3339_millis(t)), Ok(t));
        }
    }
}

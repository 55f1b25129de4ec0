//! Parsing of the API's timestamps.
//!
//! Image Builder declares its times as plain strings (`DateTime` is a string
//! shape), so the SDK hands them over unparsed. We accept RFC 3339 date-times
//! with `Z` or a numeric offset, with or without fractional seconds, and refuse
//! everything else: an unparseable time must become "absent", never a guess.

use crate::clock::{Nanos, NANOS_PER_SEC};

/// Why a timestamp was refused; the message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 date-time ({0})")]
pub struct TimestampError(&'static str);

/// Parses an RFC 3339 date-time such as `2026-09-09T19:12:23.418Z` or
/// `2026-09-09T21:12:23+02:00` into Unix nanoseconds.
///
/// ```
/// use imagebuilder_exporter::timestamp::parse_rfc3339;
/// assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Ok(1_500_000_000));
/// assert_eq!(parse_rfc3339("1970-01-01T02:00:00+02:00"), Ok(0));
/// assert!(parse_rfc3339("yesterday").is_err());
/// ```
pub fn parse_rfc3339(s: &str) -> Result<Nanos, TimestampError> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(TimestampError("too short"));
    }
    let year = digits(b, 0, 4).ok_or(TimestampError("year"))?;
    expect(b, 4, b'-')?;
    let month = digits(b, 5, 2).ok_or(TimestampError("month"))?;
    expect(b, 7, b'-')?;
    let day = digits(b, 8, 2).ok_or(TimestampError("day"))?;
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(TimestampError("date/time separator"));
    }
    let hour = digits(b, 11, 2).ok_or(TimestampError("hour"))?;
    expect(b, 13, b':')?;
    let minute = digits(b, 14, 2).ok_or(TimestampError("minute"))?;
    expect(b, 16, b':')?;
    let second = digits(b, 17, 2).ok_or(TimestampError("second"))?;

    if !(1..=12).contains(&month) {
        return Err(TimestampError("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(TimestampError("day out of range"));
    }
    // 60 is a leap second, which RFC 3339 allows.
    if hour > 23 || minute > 59 || second > 60 {
        return Err(TimestampError("time out of range"));
    }

    let mut i = 19;
    let mut frac_nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = NANOS_PER_SEC / 10;
        while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
            frac_nanos += i64::from(d - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return Err(TimestampError("empty fraction"));
        }
    }

    let offset_secs: i64 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            let oh = digits(b, i + 1, 2).ok_or(TimestampError("offset hour"))?;
            expect(b, i + 3, b':')?;
            let om = digits(b, i + 4, 2).ok_or(TimestampError("offset minute"))?;
            if oh > 23 || om > 59 {
                return Err(TimestampError("offset out of range"));
            }
            let o = oh * 3600 + om * 60;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(TimestampError("time zone")),
    };

    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(NANOS_PER_SEC)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or(TimestampError("out of range"))
}

/// Formats Unix nanoseconds the way the AWS CLI shows them:
/// `2026-09-09T19:12:23.418Z` (milliseconds, UTC).
pub fn format_rfc3339_millis(t: Nanos) -> String {
    let secs = t.div_euclid(NANOS_PER_SEC);
    let millis = t.rem_euclid(NANOS_PER_SEC) / 1_000_000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let s = b.get(at..at + n)?;
    s.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn expect(b: &[u8], at: usize, c: u8) -> Result<(), TimestampError> {
    if b.get(at) == Some(&c) {
        Ok(())
    } else {
        Err(TimestampError("separator"))
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
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
        ] {
            assert!(parse_rfc3339(s).is_err(), "{s:?} was accepted");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
    }

    #[test]
    fn formats_like_the_cli() {
        assert_eq!(format_rfc3339_millis(T), "2026-09-09T19:12:23.418Z");
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        for t in [T, 0, 951_782_400_123_000_000, -86_400_000_000_000] {
            assert_eq!(parse_rfc3339(&format_rfc3339_millis(t)), Ok(t));
        }
    }
}

//! The simulator's times on the wire: Image Builder's `DateTime` is a plain
//! string, which the service writes as `2026-09-09T19:12:23.418Z` (UTC,
//! milliseconds). The simulator writes that form and reads back only its
//! own (the admin API, injected faults); it never needs a general RFC 3339
//! parser, and keeps none of its client's, so that a client's parser is
//! checked against times it did not write itself.

use crate::clock::{Nanos, NANOS_PER_SEC};

const DAY: i64 = 86_400;

/// `2026-09-09T19:12:23.418Z` for Unix nanoseconds `t` (rounded down to the
/// millisecond, as the service does).
pub fn format_rfc3339_millis(t: Nanos) -> String {
    let secs = t.div_euclid(NANOS_PER_SEC);
    let millis = t.rem_euclid(NANOS_PER_SEC) / 1_000_000;
    let (y, m, d) = civil_from_days(secs.div_euclid(DAY));
    let s = secs.rem_euclid(DAY);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Reads back what [`format_rfc3339_millis`] writes (the fraction may be
/// absent); `None` for anything else.
pub fn parse_rfc3339_millis(s: &str) -> Option<Nanos> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let punctuation = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if punctuation.iter().any(|&(i, c)| b.get(i) != Some(&c)) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let millis = match &b[19..] {
        b"Z" => 0,
        [b'.', _, _, _, b'Z'] => num(20, 3)?,
        _ => return None,
    };
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let secs = days_from_civil(year, month, day) * DAY + hour * 3600 + minute * 60 + second;
    secs.checked_mul(NANOS_PER_SEC)?
        .checked_add(millis * 1_000_000)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (`civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
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

    const T: Nanos = 1_788_981_143_418_000_000;

    #[test]
    fn formats_as_the_service_does() {
        assert_eq!(format_rfc3339_millis(T), "2026-09-09T19:12:23.418Z");
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            format_rfc3339_millis(951_782_400_123_456_789),
            "2000-02-29T00:00:00.123Z"
        );
    }

    /// Checked against an RFC 3339 parser that is neither the simulator's
    /// nor its client's.
    #[test]
    fn what_it_writes_is_rfc3339() {
        use time::format_description::well_known::Rfc3339;
        for t in [T, 0, -1, 951_782_400_123_000_000, 4_102_444_799_999_000_000] {
            let s = format_rfc3339_millis(t);
            let parsed = time::OffsetDateTime::parse(&s, &Rfc3339).unwrap();
            assert_eq!(
                parsed.unix_timestamp_nanos(),
                i128::from(t.div_euclid(1_000_000) * 1_000_000),
                "{s}"
            );
        }
    }

    #[test]
    fn reads_back_its_own_form_only() {
        for t in [T, 0, -1_000_000, 951_782_400_123_000_000] {
            assert_eq!(parse_rfc3339_millis(&format_rfc3339_millis(t)), Some(t));
        }
        assert_eq!(
            parse_rfc3339_millis("2026-09-09T19:12:23Z"),
            Some(T - 418_000_000)
        );
        for s in [
            "",
            "2026-09-09",
            "2026-09-09T19:12:23.418",
            "2026-09-09T19:12:23.41Z",
            "2026-09-09 19:12:23.418Z",
            "2026-02-29T19:12:23.418Z",
            "2026-13-09T19:12:23.418Z",
            "2026-09-09T24:00:00.000Z",
            "2026-09-09T19:12:23.418+02:00",
            "2026-09-09T19:12:23.418Z ",
        ] {
            assert_eq!(parse_rfc3339_millis(s), None, "{s:?}");
        }
    }
}

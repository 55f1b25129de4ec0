//! Go's duration syntax (`time.ParseDuration`), which the exporter-toolkit
//! uses for `rate_limit.interval`: `1.5s`, `300ms`, `2h45m`, `-1m`.
//!
//! Neither of the duration syntaxes already in the tree fits: the exporter's
//! flags take Prometheus durations (`1d`, no fractions) and no crate in the
//! lock reads Go's, so this is a port of Go's algorithm, with its rounding:
//! fractions go through an `f64` as in Go, so results match to the
//! nanosecond, and its test table is the test table here.

/// Nanoseconds in each unit Go knows. No days: Go has none.
const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000), // U+00B5 micro sign
    ("μs", 1_000), // U+03BC Greek mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

const UNIT_NAMES: &str = "ns, us (or µs), ms, s, m, h";

/// 2^63: the magnitude of the most negative duration.
const LIMIT: u64 = 1 << 63;

/// Why a text is not a Go duration, quoting it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum GoDurationError {
    /// Not the syntax, or out of range.
    #[error("{0:?} is not a Go duration (like 1.5s, 300ms or 2h45m)")]
    Invalid(String),
    #[error("{0:?} has a number without a unit (units: {UNIT_NAMES})")]
    NoUnit(String),
    #[error("{text:?} has an unknown unit {unit:?} (units: {UNIT_NAMES})")]
    UnknownUnit { text: String, unit: String },
}

/// Parses a Go duration into signed nanoseconds: an optional sign, then one
/// or more decimal numbers (with an optional fraction), each with a unit.
/// `"0"` alone needs no unit. The error says why, quoting the input.
pub(super) fn parse_go(text: &str) -> Result<i64, GoDurationError> {
    let invalid = || GoDurationError::Invalid(text.to_string());
    let (negative, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let (whole, rest) = leading_int(s).ok_or_else(invalid)?;
        let had_whole = rest.len() != s.len();
        s = rest;
        let (mut fraction, mut scale, mut had_fraction) = (0, 1.0, false);
        if let Some(rest) = s.strip_prefix('.') {
            let (f, sc, rest2) = leading_fraction(rest);
            (fraction, scale, had_fraction) = (f, sc, rest2.len() != rest.len());
            s = rest2;
        }
        if !had_whole && !had_fraction {
            return Err(invalid());
        }
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(GoDurationError::NoUnit(text.to_string()));
        }
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        let Some(&(_, per_unit)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(GoDurationError::UnknownUnit {
                text: text.to_string(),
                unit: unit.to_string(),
            });
        };
        if whole > LIMIT / per_unit {
            return Err(invalid());
        }
        let mut v = whole * per_unit;
        if fraction > 0 {
            // As in Go: an f64 is nanosecond-accurate for the fraction of an
            // hour at most, the largest unit.
            v += (fraction as f64 * (per_unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total = total
            .checked_add(v)
            .filter(|t| *t <= LIMIT)
            .ok_or_else(invalid)?;
    }
    if negative {
        // -2^63 is representable, hence the wrapping negation.
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// The leading `[0-9]*` of `s` as a number, and the rest; `None` past 2^63.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut x: u64 = 0;
    for d in s[..digits].bytes() {
        x = x
            .checked_mul(10)?
            .checked_add(u64::from(d - b'0'))
            .filter(|x| *x <= LIMIT)?;
    }
    Some((x, &s[digits..]))
}

/// The leading `[0-9]*` of a fraction: (digits as a number, 10^digits kept,
/// rest). Digits past what a u64 holds are read and dropped, as in Go.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (mut x, mut scale, mut overflow) = (0u64, 1.0f64, false);
    for d in s[..digits].bytes() {
        if overflow {
            continue;
        }
        match x
            .checked_mul(10)
            .and_then(|y| y.checked_add(u64::from(d - b'0')))
            .filter(|y| *y <= LIMIT && x <= (LIMIT - 1) / 10)
        {
            Some(y) => {
                x = y;
                scale *= 10.0;
            }
            None => overflow = true,
        }
    }
    (x, scale, &s[digits..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i64 = 1;
    const US: i64 = 1_000;
    const MS: i64 = 1_000_000;
    const S: i64 = 1_000_000_000;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;

    /// Go's `parseDurationTests` (src/time/time_test.go).
    #[test]
    fn go_test_table() {
        for (text, want) in [
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600 * MS),
            ("5.s", 5 * S),
            (".5s", 500 * MS),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4 * MS),
            ("1.0040s", S + 4 * MS),
            ("100.00100s", 100 * S + MS),
            ("10ns", 10 * NS),
            ("11us", 11 * US),
            ("12µs", 12 * US),
            ("12μs", 12 * US),
            ("13ms", 13 * MS),
            ("14s", 14 * S),
            ("15m", 15 * M),
            ("16h", 16 * H),
            ("3h30m", 3 * H + 30 * M),
            ("10.5s4m", 4 * M + 10 * S + 500 * MS),
            ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
            (
                "1h2m3s4ms5us6ns",
                H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
            ),
            ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
            ("52763797000ns", 52_763_797_000 * NS),
            ("0.3333333333333333333h", 20 * M),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * M),
            (
                "0.830103483285477580700h",
                49 * M + 48 * S + 372_539_827 * NS,
            ),
        ] {
            assert_eq!(parse_go(text), Ok(want), "{text}");
        }
    }

    /// Go's `parseDurationErrorTests`, and what the toolkit's users might
    /// try from other syntaxes.
    #[test]
    fn go_error_table() {
        for text in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "\u{85}\u{85}",
            "\u{ff}ff",
            "hello \u{ff}ff world",
            "\u{fffd}",
            "\u{fffd} hello \u{fffd} world",
            "9223372036854775810ns",
            "9223372036854775808ns",
            "-9223372036854775809ns",
            "9223372036854776us",
            "3000000h",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            // Not Go.
            "1w",
            "1y",
            "1 s",
            " 1s",
            "1s ",
            "1S",
            "1e3s",
            "--1s",
            "+-1s",
            "1sec",
        ] {
            assert!(parse_go(text).is_err(), "{text:?} accepted");
        }
        let e = parse_go("1d").unwrap_err().to_string();
        assert!(e.contains("unknown unit \"d\""), "{e}");
        let e = parse_go("3").unwrap_err().to_string();
        assert!(e.contains("without a unit"), "{e}");
    }
}

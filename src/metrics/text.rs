//! Writing the Prometheus text exposition format (version 0.0.4).
//!
//! Only the low-level pieces live here (escaping, numbers, headers), so that
//! the snapshot can pre-encode label sets once and reuse them. This is the
//! one place that writes exposition text; the exporter's own metrics use
//! the `prometheus` crate's encoder.

use std::io::Write;

use super::family::FamilyDef;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Appends `# HELP` and `# TYPE` lines.
pub fn write_header(out: &mut Vec<u8>, def: &FamilyDef) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(def.name.as_bytes());
    out.push(b' ');
    for c in def.help.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(def.name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(def.kind.as_str().as_bytes());
    out.push(b'\n');
}

/// Appends a label value with `\`, `"` and newline escaped.
pub fn write_label_value(out: &mut Vec<u8>, v: &str) {
    for b in v.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b => out.push(b),
        }
    }
}

/// Appends `name="value"` pairs separated by commas (no braces).
pub fn write_labels(out: &mut Vec<u8>, names: &[&str], values: &[&str]) {
    for (i, (n, v)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b"=\"");
        write_label_value(out, v);
        out.push(b'"');
    }
}

/// `name{labels,extra} ` without the value: the part of a sample that stays
/// the same while its value is computed at each scrape.
pub fn sample_prefix(name: &str, labels: &[u8], extra: &[u8]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(name.len() + labels.len() + extra.len() + 4);
    out.extend_from_slice(name.as_bytes());
    out.push(b'{');
    out.extend_from_slice(labels);
    if !labels.is_empty() && !extra.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(extra);
    out.extend_from_slice(b"} ");
    out.into_boxed_slice()
}

/// Appends `name{labels,extra} value`. `labels` and `extra` are encoded
/// label pairs ([`write_labels`]); either may be empty.
pub fn write_sample(out: &mut Vec<u8>, name: &str, labels: &[u8], extra: &[u8], v: f64) {
    out.extend_from_slice(&sample_prefix(name, labels, extra));
    write_value(out, v);
    out.push(b'\n');
}

/// Appends a state set: one sample per value of `known`, 1 for `current`
/// and 0 for the others, labelled `label`; a `current` outside `known`
/// (a status the service model does not list) gets its own sample at 1.
pub fn write_state_set<'a>(
    out: &mut Vec<u8>,
    name: &str,
    labels: &[u8],
    label: &str,
    known: impl IntoIterator<Item = &'a str>,
    current: &str,
) {
    let mut extra = Vec::with_capacity(40);
    let mut listed = false;
    for k in known {
        extra.clear();
        write_labels(&mut extra, &[label], &[k]);
        listed |= k == current;
        write_sample(
            out,
            name,
            labels,
            &extra,
            if k == current { 1.0 } else { 0.0 },
        );
    }
    if !listed {
        extra.clear();
        write_labels(&mut extra, &[label], &[current]);
        write_sample(out, name, labels, &extra, 1.0);
    }
}

/// Appends a histogram's `_bucket`, `_sum` and `_count` samples. `counts`
/// holds the observations per bucket (not cumulative), one more than
/// `bounds` for `+Inf`.
pub fn write_histogram(
    out: &mut Vec<u8>,
    name: &str,
    labels: &[u8],
    bounds: &[f64],
    counts: &[u64],
    sum: f64,
) {
    let bucket = format!("{name}_bucket");
    let mut le = Vec::with_capacity(16);
    let mut cumulative = 0;
    for (i, n) in counts.iter().enumerate() {
        cumulative += n;
        le.clear();
        le.extend_from_slice(b"le=\"");
        match bounds.get(i) {
            Some(b) => write_value(&mut le, *b),
            None => le.extend_from_slice(b"+Inf"),
        }
        le.push(b'"');
        out.extend_from_slice(&sample_prefix(&bucket, labels, &le));
        write_int(out, cumulative);
        out.push(b'\n');
    }
    write_sample(out, &format!("{name}_sum"), labels, &[], sum);
    write_sample(
        out,
        &format!("{name}_count"),
        labels,
        &[],
        cumulative as f64,
    );
}

/// Appends a sample value as Prometheus expects it.
pub fn write_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v == f64::INFINITY {
        out.extend_from_slice(b"+Inf");
    } else if v == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Inf");
    } else {
        // `Display` for f64 is the shortest text that reads back exactly,
        // never in exponent form.
        let _ = write!(out, "{v}");
    }
}

/// Appends an integer sample value.
pub fn write_int(out: &mut Vec<u8>, v: u64) {
    let _ = write!(out, "{v}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::family::{Family, Kind};

    #[test]
    fn escapes_labels_and_help() {
        let mut out = Vec::new();
        write_labels(&mut out, &["a", "b"], &["x\"y", "1\\2\n3"]);
        assert_eq!(String::from_utf8(out).unwrap(), r#"a="x\"y",b="1\\2\n3""#);
        let mut out = Vec::new();
        write_header(
            &mut out,
            &FamilyDef {
                name: "m",
                kind: Kind::Gauge,
                help: "back\\slash\nnew \"quoted\"",
                ..*Family::StepStatus.def()
            },
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP m back\\\\slash\\nnew \"quoted\"\n# TYPE m gauge\n"
        );
    }

    #[test]
    fn writes_samples_state_sets_and_histograms() {
        let mut out = Vec::new();
        write_sample(&mut out, "m", b"a=\"1\"", b"b=\"2\"", 0.5);
        write_sample(&mut out, "m", b"", b"b=\"2\"", 1.0);
        write_sample(&mut out, "m", b"a=\"1\"", b"", 2.0);
        write_state_set(&mut out, "s", b"a=\"1\"", "status", ["X", "Y"], "W\"");
        write_histogram(&mut out, "h", b"a=\"1\"", &[1.0, 5.0], &[2, 0, 1], 9.5);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                "m{a=\"1\",b=\"2\"} 0.5\n",
                "m{b=\"2\"} 1\n",
                "m{a=\"1\"} 2\n",
                "s{a=\"1\",status=\"X\"} 0\n",
                "s{a=\"1\",status=\"Y\"} 0\n",
                "s{a=\"1\",status=\"W\\\"\"} 1\n",
                "h_bucket{a=\"1\",le=\"1\"} 2\n",
                "h_bucket{a=\"1\",le=\"5\"} 2\n",
                "h_bucket{a=\"1\",le=\"+Inf\"} 3\n",
                "h_sum{a=\"1\"} 9.5\n",
                "h_count{a=\"1\"} 3\n",
            )
        );
    }

    #[test]
    fn writes_values() {
        let mut out = Vec::new();
        for v in [
            12.418,
            5.0,
            -0.5,
            f64::INFINITY,
            f64::NAN,
            1e21,
            1_788_981_143.418,
        ] {
            write_value(&mut out, v);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "12.418 5 -0.5 +Inf NaN 1000000000000000000000 1788981143.418 "
        );
    }
}

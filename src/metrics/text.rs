//! Writing the Prometheus text exposition format (version 0.0.4).
//!
//! Only the low-level pieces live here (escaping, numbers, headers), so that
//! the snapshot can pre-encode label sets once and reuse them.

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
    use crate::metrics::family::Kind;

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
            },
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP m back\\\\slash\\nnew \"quoted\"\n# TYPE m gauge\n"
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

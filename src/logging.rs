//! Log set-up: logfmt (the Prometheus exporters' default) or JSON.

use std::fmt::{self, Write as _};

use clap::ValueEnum;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::clock::{Clock, SystemClock};
use crate::timestamp::format_rfc3339_millis;

/// `--log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// `--log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// What is logged without `RUST_LOG`: our own messages at `level`; the
/// libraries' only when they warn, but for aws-config's warning at every
/// refused `sts:AssumeRole` (at every call, while a role's trust is
/// revoked): the exporter reports a refused role itself, once per five
/// minutes per target, with the target and the code.
pub fn default_filter(level: LogLevel) -> String {
    let level = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    format!(
        "warn,aws_config::sts::assume_role=error,imagebuilder_exporter={level},imagebuilder_sim={level}"
    )
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the level.
pub fn init(level: LogLevel, format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter(level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` fails only if a subscriber is already set (tests): keep it.
    let _ = match format {
        LogFormat::Logfmt => builder.event_format(Logfmt).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// `ts=… level=info msg="…" key=value …`
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut v = Fields::default();
        event.record(&mut v);
        write!(
            w,
            "ts={} level={}",
            format_rfc3339_millis(SystemClock.now()),
            meta.level().as_str().to_ascii_lowercase()
        )?;
        if let Some(m) = &v.message {
            write!(w, " msg={}", quote(m))?;
        }
        w.write_str(&v.rest)?;
        writeln!(w, " module={}", meta.target())
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    rest: String,
}

impl Fields {
    fn put(&mut self, name: &str, value: String) {
        if name == "message" {
            self.message = Some(value);
        } else {
            let _ = write!(self.rest, " {name}={}", quote(&value));
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field.name(), format!("{value:?}"));
    }
}

/// Quotes a logfmt value when it needs it.
pub fn quote(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=' && c != '\\');
    if plain {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields a call gives before its format string, for every
    /// `trace!` … `error!` / `event!` call in `text`.
    fn log_call_fields(text: &str) -> Vec<(usize, String)> {
        let calls = regex::Regex::new(r"\b(trace|debug|info|warn|error|event)!\s*\(").unwrap();
        let mut out = Vec::new();
        for m in calls.find_iter(text) {
            let line = text[..m.start()].matches('\n').count() + 1;
            // The arguments, split at top-level commas, up to the first
            // string literal (the message); string contents are skipped.
            let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
            let mut arg = String::new();
            for c in text[m.end()..].chars() {
                if in_str {
                    in_str = escaped || c != '"';
                    escaped = !escaped && c == '\\';
                    arg.push(c);
                    continue;
                }
                match c {
                    '"' if depth == 0 && arg.trim().is_empty() => break,
                    '"' => in_str = true,
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' if depth == 0 => break,
                    ')' | ']' | '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push((line, std::mem::take(&mut arg).trim().to_string()));
                        continue;
                    }
                    _ => {}
                }
                arg.push(c);
            }
            if !arg.trim().is_empty() {
                out.push((line, arg.trim().to_string()));
            }
        }
        out
    }

    /// The name of the field an argument gives (`name = value`, `%name`,
    /// `?name`, `name`).
    fn field_name(arg: &str) -> &str {
        let name = arg.split('=').next().unwrap_or("").trim();
        name.trim_start_matches(['%', '?']).trim()
    }

    #[test]
    fn the_scan_finds_fields_named_message() {
        // Written with placeholders, so that the scan of this file does not
        // find the examples.
        let text = "tracing::WARN(a = 1, message = %x, \"event, \\\"ignored\\\"\");\n\
             INFO(?message, \"m {}\", message);\nWARN(target: \"t\", b = f(1, 2), \"ok\")"
            .replace("WARN", "warn!")
            .replace("INFO", "info!");
        let found = log_call_fields(&text);
        let names: Vec<&str> = found.iter().map(|(_, a)| field_name(a)).collect();
        assert_eq!(names, ["a", "message", "message", "target: \"t\"", "b"]);
        assert_eq!(found[2].0, 2, "line numbers");
    }

    /// A field named `message` takes the place of the line's own message
    /// in both log formats (the text says what happened; the field's value
    /// might be an untrusted message body): no call may give one.
    #[test]
    fn no_log_call_gives_a_field_named_message() {
        fn visit(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    visit(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (line, arg) in log_call_fields(&text) {
                        if matches!(field_name(&arg), "message" | "msg") {
                            found.push(format!("{}:{line}: {arg}", path.display()));
                        }
                    }
                }
            }
        }
        let mut found = Vec::new();
        visit(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        assert!(found.is_empty(), "fields named message: {found:#?}");
    }

    /// Lines the default filter lets through, of events logged under it.
    fn filtered(level: LogLevel, log: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(default_filter(level)))
            .event_format(Logfmt)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
        text
    }

    #[test]
    fn the_default_filter_keeps_our_lines_and_the_libraries_warnings_but_one() {
        let text = filtered(LogLevel::Info, || {
            tracing::info!(target: "imagebuilder_exporter::refresh", "ours");
            tracing::debug!(target: "imagebuilder_exporter::refresh", "our debug");
            tracing::warn!(target: "aws_config::imds", "a library's warning");
            tracing::info!(target: "aws_config::imds", "a library's info");
            // At every refused AssumeRole: the exporter says it itself.
            tracing::warn!(target: "aws_config::sts::assume_role", "STS refused to grant assume role");
            tracing::error!(target: "aws_config::sts::assume_role", "an error");
        });
        assert!(text.contains("msg=ours"), "{text}");
        assert!(text.contains("a library's warning"), "{text}");
        assert!(text.contains("an error"), "{text}");
        for hidden in ["our debug", "a library's info", "STS refused"] {
            assert!(!text.contains(hidden), "{hidden}: {text}");
        }
        let text = filtered(LogLevel::Debug, || {
            tracing::debug!(target: "imagebuilder_exporter::refresh", "our debug");
        });
        assert!(text.contains("our debug"), "{text}");
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("us-east-1"), "us-east-1");
        assert_eq!(quote("two words"), "\"two words\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a=\"b\"\n"), "\"a=\\\"b\\\"\\n\"");
    }
}

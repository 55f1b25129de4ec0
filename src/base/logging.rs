//! Log set-up: logfmt (the Prometheus exporters' default) or JSON.

use std::fmt::{self, Write as _};

use clap::ValueEnum;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::base::clock::{Clock, SystemClock};
use crate::base::timestamp::format_rfc3339_millis;

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

/// What is logged without `RUST_LOG` (see `directives`).
pub fn default_filter(level: LogLevel) -> String {
    directives(match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    })
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
        LogFormat::Json => builder.event_format(Json).try_init(),
    };
}

/// The default filter: our own messages at `level`; the libraries' only
/// when they warn. aws-config's warnings (the instance metadata tried for a
/// region or credentials, STS refusing a role, at every call while a role's
/// trust is revoked) are Debug dumps of what the exporter's own error line
/// says with its fix, once per five minutes per target: shown with `debug`
/// only.
fn directives(level: &str) -> String {
    let aws_config = if level == "debug" { "warn" } else { "error" };
    format!("warn,aws_config={aws_config},imagebuilder_exporter={level},imagebuilder_sim={level}")
}

/// One JSON object a line: `timestamp`, `level`, `message`, the event's
/// fields, and `module` (the Rust module that logged it). tracing's own JSON
/// calls the module `target`, which reads as the exporter's `target` (an
/// account and region): `module`, as in logfmt.
pub struct Json;

impl<S, N> FormatEvent<S, N> for Json
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
        let mut v = JsonFields::default();
        event.record(&mut v);
        let string = |s: &str| serde_json::Value::from(s).to_string();
        write!(
            w,
            "{{\"timestamp\":{},\"level\":{}",
            string(&format_rfc3339_millis(SystemClock.now())),
            string(meta.level().as_str())
        )?;
        if let Some(m) = &v.message {
            write!(w, ",\"message\":{}", string(m))?;
        }
        w.write_str(&v.rest)?;
        writeln!(w, ",\"module\":{}}}", string(meta.target()))
    }
}

/// The fields of an event as JSON members, numbers and booleans as such.
#[derive(Default)]
struct JsonFields {
    message: Option<String>,
    rest: String,
}

impl JsonFields {
    fn put(&mut self, name: &str, value: serde_json::Value) {
        if name == "message" {
            self.message = Some(match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            let _ = write!(self.rest, ",{}:{value}", serde_json::Value::from(name));
        }
    }
}

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field.name(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field.name(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field.name(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN and infinities are not JSON numbers.
        let v = serde_json::Number::from_f64(value)
            .map_or_else(|| value.to_string().into(), serde_json::Value::Number);
        self.put(field.name(), v);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field.name(), format!("{value:?}").into());
    }
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
    fn the_default_filter_keeps_our_lines_and_the_libraries_warnings_but_aws_configs() {
        let text = filtered(LogLevel::Info, || {
            tracing::info!(target: "imagebuilder_exporter::refresh::target", "ours");
            tracing::debug!(target: "imagebuilder_exporter::refresh::target", "our debug");
            tracing::warn!(target: "aws_smithy_runtime::client", "a library's warning");
            tracing::info!(target: "aws_smithy_runtime::client", "a library's info");
            // aws-config's Debug dumps (the instance metadata, a refused
            // AssumeRole at every call): the exporter says it itself.
            tracing::warn!(target: "aws_config::imds", "IMDS dump");
            tracing::warn!(target: "aws_config::sts::assume_role", "STS refused to grant assume role");
            tracing::error!(target: "aws_config::sts::assume_role", "an error");
        });
        assert!(text.contains("msg=ours"), "{text}");
        assert!(text.contains("a library's warning"), "{text}");
        assert!(text.contains("an error"), "{text}");
        for hidden in ["our debug", "a library's info", "STS refused", "IMDS dump"] {
            assert!(!text.contains(hidden), "{hidden}: {text}");
        }
        let text = filtered(LogLevel::Debug, || {
            tracing::debug!(target: "imagebuilder_exporter::refresh::target", "our debug");
            tracing::warn!(target: "aws_config::imds", "IMDS dump");
        });
        assert!(text.contains("our debug"), "{text}");
        assert!(text.contains("IMDS dump"), "{text}");
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("us-east-1"), "us-east-1");
        assert_eq!(quote("two words"), "\"two words\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a=\"b\"\n"), "\"a=\\\"b\\\"\\n\"");
    }

    /// A writer the tests read back.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_calls_the_rust_module_module_and_keeps_value_types() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(Json)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target_name = "prod-eu", calls = 3u64, took_s = 1.5, ok = true, error = %"a \"quoted\" cause", "could not read");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["message"], "could not read");
        assert_eq!(line["level"], "WARN");
        assert_eq!(
            line["module"],
            "imagebuilder_exporter::base::logging::tests"
        );
        assert!(line.get("target").is_none(), "{line}");
        assert_eq!(line["target_name"], "prod-eu");
        assert_eq!(line["calls"], 3);
        assert_eq!(line["took_s"], 1.5);
        assert_eq!(line["ok"], true);
        assert_eq!(line["error"], "a \"quoted\" cause");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}

//! Captures the exporter's log lines in a test.

use std::io::Write;
use std::sync::{Arc, Mutex};

use imagebuilder_exporter::base::logging::Logfmt;
use tracing_subscriber::fmt::MakeWriter;

/// Log lines written while the guard lives, on this thread. Tests using it
/// run on tokio's current-thread runtime, so the exporter's tasks log here.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn start() -> (Captured, tracing::subscriber::DefaultGuard) {
        keep_a_second_dispatcher();
        let c = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(Logfmt)
            .with_writer(c.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (c, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Lines at `level` containing every one of `needles`.
    pub fn lines_with(&self, level: &str, needles: &[&str]) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| {
                l.contains(&format!("level={level}")) && needles.iter().all(|n| l.contains(n))
            })
            .map(str::to_string)
            .collect()
    }
}

/// Keeps one more dispatcher registered for the life of the test binary.
///
/// With a single dispatcher registered (the one `start` sets for its
/// thread), tracing computes a log call's interest from the default
/// dispatcher of whichever thread reaches that call first: a test on
/// another thread, logging nowhere, would make it "never" for every
/// thread, and this one would miss the line. With two, the interest is
/// taken from all of them.
fn keep_a_second_dispatcher() {
    static SECOND: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

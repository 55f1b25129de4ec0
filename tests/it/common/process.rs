//! The binaries as a new user runs them: a clean environment (only what the
//! test gives), log lines read as they come, the simulator's endpoint read
//! from what it prints.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::shared::bins::{simulator_bin, EXPORTER};
use crate::shared::http::{free_port, try_request};

use super::Running;

/// A running binary and the lines it has written to stderr so far.
pub struct Spawned {
    pub child: Running,
    lines: Arc<Mutex<Vec<String>>>,
    /// `http://127.0.0.1:PORT` of the exporter's web server.
    pub base: String,
}

/// Reads `stream` line by line into `into`, in a thread of its own.
fn collect(stream: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            match line {
                Ok(l) => into.lock().unwrap().push(l),
                Err(_) => return,
            }
        }
    });
}

/// The exporter with `args` (and a free `--web.listen-address` unless
/// given) in an environment holding only `env` and a `HOME` without AWS
/// files.
pub fn exporter(args: &[&str], env: &[(&str, &str)]) -> Spawned {
    let mut cmd = Command::new(EXPORTER);
    let mut base = String::new();
    if !args.contains(&"--web.listen-address") {
        let address = format!("127.0.0.1:{}", free_port());
        base = format!("http://{address}");
        cmd.args(["--web.listen-address", &address]);
    }
    cmd.args(args)
        .env_clear()
        .env("HOME", "/nonexistent")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the exporter starts");
    let lines = Arc::new(Mutex::new(Vec::new()));
    collect(child.stderr.take().expect("stderr"), lines.clone());
    Spawned {
        child: Running(child),
        lines,
        base,
    }
}

impl Spawned {
    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// The first line that `matches`, waiting for it at most `within`.
    pub async fn line(&self, matches: impl Fn(&str) -> bool, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| matches(l)) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "no such line within {within:?}:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for `/-/ready` to answer 200.
    pub async fn ready(&self, within: Duration) {
        wait_ready(&self.base, within, || self.text()).await;
    }

    /// Waits for the process to exit.
    pub async fn exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.0.try_wait().expect("wait") {
                // The last lines are read by now, or soon.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {within:?}:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits for `{base}/-/ready` to answer 200, each probe given 2 s; after
/// `within`, fails the test with what `context` says (the process's log).
pub async fn wait_ready(base: &str, within: Duration, context: impl Fn() -> String) {
    let deadline = Instant::now() + within;
    let url = format!("{base}/-/ready");
    loop {
        let probe = tokio::time::timeout(Duration::from_secs(2), try_request("GET", &url));
        if let Ok(Ok((200, _, _))) = probe.await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not ready within {within:?}:\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `imagebuilder-sim` with `args` on a free loopback port, and the endpoint
/// it prints (`AWS_ENDPOINT_URL_IMAGEBUILDER=…`, its first line).
pub fn simulator(args: &[&str]) -> (Running, String) {
    let mut child = Command::new(simulator_bin())
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the simulator starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end: a closed pipe would fail the simulator's prints.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the simulator prints its endpoint");
    let url = first
        .strip_prefix("AWS_ENDPOINT_URL_IMAGEBUILDER=")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    (Running(child), url)
}

//! A real Prometheus server for end-to-end tests, the processes around it,
//! and its HTTP API (`/api/v1/...`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::shared::http::{free_port, try_request};
use crate::shared::running::Running;

/// A scratch directory, removed on drop unless the test failed: then it is
/// kept, and named, for its logs.
pub struct Workdir {
    pub path: PathBuf,
    dir: Option<tempfile::TempDir>,
}

impl Workdir {
    pub fn new(prefix: &str) -> Workdir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()
            .expect("create the work directory");
        Workdir {
            path: dir.path().to_path_buf(),
            dir: Some(dir),
        }
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        // Otherwise the TempDir removes it.
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!("logs kept in {}", dir.keep().display());
            }
        }
    }
}

/// A child process, killed when dropped. Its output goes to a log file.
pub struct Proc {
    child: Running,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).expect("create the log file");
        let err = out.try_clone().expect("clone the log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Proc {
            child: Running(child),
            log,
        }
    }

    /// Waits for a line of the process's output that starts with `prefix`
    /// and returns the rest of it.
    pub async fn wait_for_line(&mut self, prefix: &str, within: Duration, what: &str) -> String {
        let deadline = Instant::now() + within;
        loop {
            self.assert_running(what);
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(rest) = log.lines().find_map(|l| l.strip_prefix(prefix)) {
                return rest.trim().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "{what}: no line starting {prefix:?} within {within:?}; log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fails the test if the process has exited, with its log.
    pub fn assert_running(&mut self, what: &str) {
        if let Ok(Some(status)) = self.child.0.try_wait() {
            panic!(
                "{what} exited ({status}):\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Polls `url` until it answers 200.
pub async fn wait_http_ok(url: &str, within: Duration, proc: &mut Proc, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        proc.assert_running(what);
        let probe = tokio::time::timeout(Duration::from_secs(2), try_request("GET", url));
        if let Ok(Ok((200, _, _))) = probe.await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {url} not 200 within {within:?}; log:\n{}",
            std::fs::read_to_string(&proc.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A Prometheus server with its own storage and `config` (prometheus.yml).
pub struct PromServer {
    pub proc: Proc,
    pub url: String,
}

impl PromServer {
    pub fn start(bin: &Path, dir: &Path, config: &str) -> PromServer {
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write prometheus.yml");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"));
        PromServer {
            proc: Proc::spawn(cmd, dir.join("prometheus.log")),
            url: format!("http://{addr}"),
        }
    }

    pub async fn wait_ready(&mut self, within: Duration) {
        let url = format!("{}/-/ready", self.url);
        wait_http_ok(&url, within, &mut self.proc, "prometheus").await;
    }

    /// GET `path` with `params`; the `data` of a successful answer, or the
    /// error Prometheus gave.
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let url = format!("{}{path}?{}", self.url, query.join("&"));
        let (status, _, body) = try_request("GET", &url).await?;
        let json: Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))?;
        if json["status"] == "success" {
            Ok(json["data"].clone())
        } else {
            Err(format!(
                "HTTP {status}: {} {}",
                json["errorType"].as_str().unwrap_or_default(),
                json["error"].as_str().unwrap_or_default()
            ))
        }
    }

    /// An instant query at now: its result (series or a scalar).
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api("/api/v1/query", &[("query", expr)]).await?;
        Ok(series_of(&data))
    }

    /// A range query from `start` to now, a point every `step` seconds.
    pub async fn query_range(
        &self,
        expr: &str,
        start: f64,
        step: f64,
    ) -> Result<Vec<Value>, String> {
        let end = unix_now();
        let data = self
            .api(
                "/api/v1/query_range",
                &[
                    ("query", expr),
                    ("start", &format!("{start:.3}")),
                    ("end", &format!("{end:.3}")),
                    ("step", &format!("{step}")),
                ],
            )
            .await?;
        Ok(series_of(&data))
    }

    /// A range query from `start` to `end`, a point every `step` seconds.
    pub async fn query_range_between(
        &self,
        expr: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<Value>, String> {
        let data = self
            .api(
                "/api/v1/query_range",
                &[
                    ("query", expr),
                    ("start", &format!("{start:.3}")),
                    ("end", &format!("{end:.3}")),
                    ("step", &format!("{step}")),
                ],
            )
            .await?;
        Ok(series_of(&data))
    }

    /// The alerts Prometheus holds, pending and firing.
    pub async fn alerts(&self) -> Result<Vec<Value>, String> {
        let data = self.api("/api/v1/alerts", &[]).await?;
        Ok(data["alerts"].as_array().cloned().unwrap_or_default())
    }

    /// Series matching `selector` since `start`.
    pub async fn series(&self, selector: &str, start: f64) -> Result<Vec<Value>, String> {
        let data = self
            .api(
                "/api/v1/series",
                &[("match[]", selector), ("start", &format!("{start:.3}"))],
            )
            .await?;
        Ok(data.as_array().cloned().unwrap_or_default())
    }

    /// Values of `label` on the series matching `selector` since `start`,
    /// as Grafana's `label_values(selector, label)` asks for them.
    pub async fn label_values(
        &self,
        label: &str,
        selector: &str,
        start: f64,
    ) -> Result<Vec<String>, String> {
        let data = self
            .api(
                &format!("/api/v1/label/{label}/values"),
                &[("match[]", selector), ("start", &format!("{start:.3}"))],
            )
            .await?;
        Ok(data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect())
    }
}

/// The series of a query result; a scalar or string result counts as one.
fn series_of(data: &Value) -> Vec<Value> {
    match data["resultType"].as_str() {
        Some("scalar") | Some("string") => vec![data["result"].clone()],
        _ => data["result"].as_array().cloned().unwrap_or_default(),
    }
}

/// `PUT url` with a JSON body (the simulator's `/_sim/faults`); the status
/// and the body of the answer.
pub async fn put_json(url: &str, body: &Value) -> Result<(u16, String), String> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let authority = uri.authority().ok_or("no authority")?.as_str().to_string();
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method("PUT")
        .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header("host", authority)
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .map_err(|e| format!("{e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Percent-encoding of a query parameter.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

//! The hostile-client benchmark (issue 19): how fast the exporter binary
//! answers its probes while clients hold half-open connections, and how
//! long a scrape takes when Prometheus says it waits 3 s and the API is
//! slow.
//!
//! ```sh
//! cargo bench --bench hostile          # about two minutes
//! ```
//!
//! * **Half-open connections**: the release binary with its defaults
//!   (`--web.max-connections 128`, a 10 s header read timeout) on a
//!   simulated account (`--demo`). 500 connections each send
//!   `GET /metrics HTTP/1.1` and a header, then nothing. Three attacks:
//!   the 500 held open from the probes' own address (127.0.0.1), as in
//!   the issue; the 500 reopened as soon as the exporter closes one (a
//!   flood of new connections) from another address (127.0.0.2, as a
//!   kubelet's probes come from the node, not from the attacker); and that
//!   flood from the probes' own address. Meanwhile `/-/healthy`,
//!   `/-/ready` and `/metrics` are each requested 20 times on fresh
//!   connections. Printed: how many were answered, the median and the
//!   slowest answer, how many connections the exporter closed to make
//!   room, and its resident memory before and during.
//! * **Scrape timeout**: the release binary against the simulator with
//!   every API call slowed to 4 s; after a first complete refresh, scrapes
//!   that send `X-Prometheus-Scrape-Timeout-Seconds: 3` (and one without)
//!   are timed.

#[path = "../tests/shared/http.rs"]
mod http;
#[path = "common/measure.rs"]
mod measure;
#[path = "../tests/shared/running.rs"]
mod running;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{free_port, raw_request, try_request};
use imagebuilder_exporter::base::clock::{Clock, SystemClock};
use imagebuilder_sim::{scenario, Faults, Simulator};
use measure::{memory_of, quantile};
use running::Running;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HALF_OPEN: usize = 500;
const ROUNDS: usize = 20;
const PARTIAL: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n";
const EXPORTER: &str = env!("CARGO_BIN_EXE_imagebuilder-exporter");

async fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let url = format!("{base}/-/ready");
    loop {
        let probe = tokio::time::timeout(Duration::from_secs(2), try_request("GET", &url));
        if let Ok(Ok((200, _, _))) = probe.await {
            return;
        }
        assert!(Instant::now() < deadline, "not ready within 120 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Holds one half-open connection from `source` until `stop`; with
/// `reopen`, opens it again whenever the exporter closes it. Counts the
/// closes.
async fn hold(
    port: u16,
    source: std::net::IpAddr,
    reopen: bool,
    stop: Arc<AtomicBool>,
    closed: Arc<AtomicU64>,
) {
    let mut buf = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        let connected = async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind((source, 0).into())?;
            socket.connect(([127, 0, 0, 1], port).into()).await
        };
        let Ok(mut s) = connected.await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if s.write_all(PARTIAL).await.is_err() {
            continue;
        }
        loop {
            match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Ok(_)) => {}
                Err(_) if stop.load(Ordering::Relaxed) => return,
                Err(_) => {}
            }
        }
        if !reopen {
            // Closed: hold nothing until the end.
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            return;
        }
    }
}

/// The median and the slowest.
fn quantiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (quantile(&v, 0.5), quantile(&v, 1.0))
}

/// One attack: connections from `source`, reopened or not.
async fn half_open(title: &str, source: std::net::IpAddr, reopen: bool) {
    let port = free_port();
    let child = Command::new(EXPORTER)
        .args([
            "--demo",
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
        ])
        .env_remove("AWS_ENDPOINT_URL_IMAGEBUILDER")
        .stderr(Stdio::null())
        .spawn()
        .expect("the exporter starts");
    let child = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    let rss_before = memory_of(child.0.id()).0;

    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicU64::new(0));
    let mut holders = Vec::new();
    for _ in 0..HALF_OPEN {
        holders.push(tokio::spawn(hold(
            port,
            source,
            reopen,
            stop.clone(),
            closed.clone(),
        )));
        tokio::task::yield_now().await;
    }
    // Every holder connected once, and the exporter has had to choose.
    tokio::time::sleep(Duration::from_secs(1)).await;

    println!("### {title}\n");
    println!("| Path | Answered | Median | Slowest |");
    println!("|---|---|---|---|");
    let mut rss_during = 0;
    for path in ["/-/healthy", "/-/ready", "/metrics"] {
        let mut times = Vec::new();
        let mut ok = 0;
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let answer = tokio::time::timeout(
                Duration::from_secs(30),
                try_request("GET", &format!("{base}{path}")),
            )
            .await;
            times.push(started.elapsed());
            if matches!(answer, Ok(Ok((200, _, _)))) {
                ok += 1;
            }
            rss_during = rss_during.max(memory_of(child.0.id()).0);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (median, slowest) = quantiles(times);
        println!("| `{path}` | {ok}/{ROUNDS} | {median:.1?} | {slowest:.1?} |");
    }
    println!(
        "\nConnections the exporter closed to make room: {}; resident memory {} MiB before, at most {} MiB during.\n",
        closed.load(Ordering::Relaxed),
        rss_before >> 20,
        rss_during >> 20
    );
    stop.store(true, Ordering::Relaxed);
    for h in holders {
        let _ = h.await;
    }
}

async fn scrape_timeout() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sim = Simulator::new(clock.clone(), scenario::demo(clock.now(), 7), 7);
    let running = sim
        .spawn(([127, 0, 0, 1], 0).into())
        .await
        .expect("the simulator starts");
    let port = free_port();
    let child = Command::new(EXPORTER)
        .args([
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
            "--refresh.min-interval",
            "0s",
        ])
        .env_clear()
        .env("AWS_ENDPOINT_URL_IMAGEBUILDER", running.url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stderr(Stdio::null())
        .spawn()
        .expect("the exporter starts");
    let _child = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    sim.set_faults(Faults {
        latency: Duration::from_secs(4),
        ..Faults::default()
    });
    println!("## A scrape with every API call slowed to 4 s (defaults: --scrape.timeout 10s, --scrape.timeout-offset 500ms)\n");
    println!("| X-Prometheus-Scrape-Timeout-Seconds | Answered in |");
    println!("|---|---|");
    for header in [Some("3"), Some("3"), Some("3"), None] {
        let extra: Vec<(&str, &str)> = header
            .map(|h| vec![("X-Prometheus-Scrape-Timeout-Seconds", h)])
            .unwrap_or_default();
        let started = Instant::now();
        let answer = raw_request("GET", &format!("{base}/metrics"), &extra).await;
        let took = started.elapsed();
        let status = answer.map(|a| a.0).unwrap_or(0);
        println!(
            "| {} | {took:.2?} (status {status}) |",
            header.unwrap_or("(none)")
        );
    }
    println!();
    running.stop().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; nothing else is taken.
    let probes = std::net::IpAddr::from([127, 0, 0, 1]);
    let elsewhere = std::net::IpAddr::from([127, 0, 0, 2]);
    println!(
        "## Probes with {HALF_OPEN} half-open connections (defaults: 128 connections, 10 s header timeout)\n"
    );
    half_open("Held open, from the probes' address", probes, false).await;
    half_open(
        "Reopened at once when closed, from another address",
        elsewhere,
        true,
    )
    .await;
    half_open(
        "Reopened at once when closed, from the probes' address",
        probes,
        true,
    )
    .await;
    scrape_timeout().await;
}

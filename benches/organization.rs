//! The organisation benchmark (issue 20): one exporter, then three shards,
//! against one simulated AWS organisation, side by side in one run.
//!
//! ```sh
//! cargo bench --bench organization          # 300 accounts × 2 Regions × 20 builds
//! BENCH_ACCOUNTS=20 BENCH_BUILDS=5 cargo bench --bench organization   # a quick run
//! ```
//!
//! The simulator binary runs as a child process (`--scenario organization`):
//! `BENCH_ACCOUNTS` accounts (the management account included, no
//! sandboxes) in each of `BENCH_REGIONS`, each with `BENCH_BUILDS` builds
//! over `BENCH_IMAGES` images (by default one per 20 builds, as in the
//! scale bench), `BENCH_RUNNING` of them in flight, and
//! `BENCH_API_LATENCY_MS` of latency per API call. The exporter binary reads
//! it through an `organization` section in `--config.file` (the exporter's
//! own credentials list the accounts, as in the management account; the
//! simulator's default member role is assumed in each), with its default
//! settings: the rate limit per target (10 requests/s), `--refresh.min-interval`
//! (30 s), discovery every five minutes.
//!
//! * **One exporter**, then **`BENCH_SHARDS` shards** (`--shard.count 3
//!   --shard.index 0..2`), one process at a time, each alone against the
//!   simulator: its time to `/-/ready` is not slowed by the others on the
//!   same cores (in a StatefulSet each shard has a node's share of its own),
//!   and the simulator's call counts between two resets are that process's
//!   alone, ListAccounts and AssumeRole included (the exporter's own
//!   `imagebuilder_exporter_api_requests_total` counts only Image Builder's).
//! * For each: the time to `/-/ready` and the calls until then; the time and
//!   calls until every target logged `backfill finished` (the whole cold
//!   start); the calls of one steady refresh (a scrape `--refresh.min-interval`
//!   after the previous one) and how long that scrape took; the targets it
//!   serves (`imagebuilder_exporter_shard_targets`); its resident memory
//!   after that refresh (VmRSS) and at its peak (VmHWM, after the scrapers);
//!   and `/metrics` latency with gzip under ten concurrent scrapers (up to
//!   `BENCH_SCRAPES` each, 20), none started later than `--refresh.min-interval`
//!   after the last refresh, so that it measures serving the page, not
//!   reading the API (the refreshing scrape is its own row).
//! * Then a table side by side, the issue's targets (and one the docs
//!   promise: one `AssumeRole` session per account, shared by its Regions),
//!   and the shards' ratios to the one exporter.

#[path = "../tests/shared/bins.rs"]
mod bins;
#[path = "../tests/shared/http.rs"]
mod http;
#[path = "common/measure.rs"]
mod measure;
#[path = "../tests/shared/running.rs"]
mod running;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bins::{simulator_bin, EXPORTER};
use http::{free_port, raw_request, try_request};
use measure::{memory_of, quantile};
use running::Running;

/// The exporter's default `--refresh.min-interval`: a scrape sooner than
/// this after a refresh serves the last snapshot.
const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Concurrent scrapers of the latency figure.
const SCRAPERS: usize = 10;
/// Longest wait for `/-/ready`, and for the whole cold start.
const READY_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const COLD_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// The calls the tables break down, in the order of the chain.
const OPS: [(&str, &str); 7] = [
    ("ListAccounts", "LA"),
    ("AssumeRole", "AR"),
    ("ListImageBuildVersions", "LIBV"),
    ("ListWorkflowExecutions", "LWE"),
    ("ListWorkflowStepExecutions", "LWSE"),
    ("GetWorkflowStepExecution", "GWSE"),
    ("ListImagePipelines", "LIP"),
];
/// The issue's targets for one exporter.
const READY_TARGET: Duration = Duration::from_secs(5 * 60);
const RSS_TARGET: u64 = 256 * 1024 * 1024;
const P99_TARGET: Duration = Duration::from_millis(25);

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

/// What the run simulates, from `BENCH_*` variables.
struct Setup {
    accounts: usize,
    regions: Vec<String>,
    /// Builds per account and Region, those in flight included.
    builds: usize,
    running: usize,
    images: usize,
    shards: usize,
    latency_ms: u64,
    /// Scrapes by each of the [`SCRAPERS`].
    scrapes: usize,
}

impl Setup {
    fn from_env() -> Self {
        let regions: String = env("BENCH_REGIONS", "us-east-1,eu-west-1".to_string());
        let builds = env("BENCH_BUILDS", 20);
        let setup = Self {
            accounts: env("BENCH_ACCOUNTS", 300),
            regions: regions.split(',').map(|r| r.trim().to_string()).collect(),
            builds,
            running: env("BENCH_RUNNING", 1),
            // As the scale bench: 20 builds an image, at least one.
            images: env("BENCH_IMAGES", (builds / 20).max(1)),
            shards: env("BENCH_SHARDS", 3),
            latency_ms: env("BENCH_API_LATENCY_MS", 20),
            scrapes: env("BENCH_SCRAPES", 20),
        };
        assert!(setup.accounts >= 1, "BENCH_ACCOUNTS must be at least 1");
        assert!(
            setup.running <= setup.builds,
            "BENCH_RUNNING must not exceed BENCH_BUILDS"
        );
        assert!(setup.shards >= 2, "BENCH_SHARDS must be at least 2");
        assert!(setup.scrapes >= 1, "BENCH_SCRAPES must be at least 1");
        setup
    }

    fn targets(&self) -> usize {
        self.accounts * self.regions.len()
    }
}

/// The simulator process and its endpoint.
struct Sim {
    _child: Running,
    url: String,
}

impl Sim {
    /// Starts `imagebuilder-sim --scenario organization` on a free port and
    /// waits for the endpoint it prints.
    fn start(setup: &Setup) -> Self {
        let latency = format!("{}ms", setup.latency_ms);
        let mut child = Command::new(simulator_bin())
            .args(["--listen", "127.0.0.1:0", "--scenario", "organization"])
            .args(["--accounts", &setup.accounts.to_string()])
            .args(["--regions", &setup.regions.join(",")])
            .args(["--builds", &(setup.builds - setup.running).to_string()])
            .args(["--running", &setup.running.to_string()])
            .args(["--images", &setup.images.to_string()])
            .args(["--sandboxes", "0", "--latency", &latency])
            .args(["--log.level", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the simulator starts");
        let stdout = child.stdout.take().expect("the simulator's stdout");
        let child = Running(child);
        let mut lines = BufReader::new(stdout).lines();
        let url = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                l.strip_prefix("AWS_ENDPOINT_URL_IMAGEBUILDER=")
                    .map(str::to_string)
            })
            .expect("the simulator prints its endpoint");
        // The rest of what it prints, so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Sim { _child: child, url }
    }

    /// Calls by operation since the last reset (`GET /_sim/calls`).
    async fn calls(&self) -> BTreeMap<String, u64> {
        let (status, _, body) = try_request("GET", &format!("{}/_sim/calls", self.url))
            .await
            .expect("the simulator answers /_sim/calls");
        assert_eq!(status, 200, "GET /_sim/calls: {body}");
        serde_json::from_str(&body).expect("/_sim/calls is a map of counts")
    }

    async fn reset_calls(&self) {
        let (status, _, body) = try_request("DELETE", &format!("{}/_sim/calls", self.url))
            .await
            .expect("the simulator answers DELETE /_sim/calls");
        assert_eq!(status, 200, "DELETE /_sim/calls: {body}");
    }
}

/// What an exporter's JSON log has said so far.
#[derive(Default)]
struct LogState {
    /// `targets` of the `organisation listed` line: what this process serves.
    listed_targets: Option<usize>,
    /// Targets that logged `backfill finished`.
    backfilled: BTreeSet<String>,
    /// Warnings and errors shown so far (the first few are printed).
    warnings: usize,
}

/// An exporter process, its web address and what its log says.
struct Exporter {
    child: Running,
    base: String,
    log: Arc<Mutex<LogState>>,
}

impl Exporter {
    fn spawn(label: &str, sim: &Sim, file: &str, extra: &[&str]) -> Self {
        let address = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new(EXPORTER)
            .args(["--web.listen-address", &address, "--config.file", file])
            .args(extra)
            .args(["--log.level", "info", "--log.format", "json"])
            .env_clear()
            .env("HOME", "/nonexistent")
            .env("AWS_ENDPOINT_URL_IMAGEBUILDER", &sim.url)
            .env("AWS_ENDPOINT_URL_STS", &sim.url)
            .env("AWS_ENDPOINT_URL_ORGANIZATIONS", &sim.url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDBENCHORG")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the exporter starts");
        let stderr = child.stderr.take().expect("the exporter's stderr");
        let log = Arc::new(Mutex::new(LogState::default()));
        let (into, label) = (log.clone(), label.to_string());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                read_log_line(&label, &line, &into);
            }
        });
        Exporter {
            child: Running(child),
            base: format!("http://{address}"),
            log,
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (VmRSS, VmHWM) in bytes.
    fn memory(&self) -> (u64, u64) {
        memory_of(self.child.0.id())
    }
}

/// Notes what a line of the exporter's log says; prints its first few
/// warnings and errors.
fn read_log_line(label: &str, line: &str, into: &Mutex<LogState>) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        eprintln!("[{label}] {line}");
        return;
    };
    let mut log = into.lock().unwrap_or_else(|e| e.into_inner());
    match v["message"].as_str().unwrap_or("") {
        "organisation listed" => {
            log.listed_targets = v["targets"].as_u64().map(|n| n as usize);
        }
        m if m.starts_with("backfill finished") => {
            if let Some(t) = v["target_name"].as_str() {
                log.backfilled.insert(t.to_string());
            }
        }
        _ => {}
    }
    if matches!(v["level"].as_str(), Some("WARN" | "ERROR")) {
        log.warnings += 1;
        if log.warnings <= 10 {
            eprintln!("[{label}] {line}");
        }
    }
}

/// What one process measured.
#[derive(Default)]
struct Figures {
    label: String,
    targets: usize,
    ready: Duration,
    ready_calls: BTreeMap<String, u64>,
    cold: Duration,
    cold_calls: BTreeMap<String, u64>,
    steady_calls: BTreeMap<String, u64>,
    /// The scrape that ran the steady refresh.
    refreshing_scrape: Duration,
    size: usize,
    gzip_size: usize,
    rss_steady: u64,
    rss_peak: u64,
    /// p50, p99 of gzip scrapes under [`SCRAPERS`] scrapers.
    gzip_latency: (Duration, Duration),
    /// How long the latency figure took: past [`REFRESH_INTERVAL`], some
    /// of its scrapes refreshed.
    latency_run: Duration,
    /// Scrapes of the latency figure: fewer than asked when they would
    /// have run past the refresh interval.
    latency_scrapes: usize,
    warnings: usize,
}

fn main() {
    let setup = Setup::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the bench's runtime");
    rt.block_on(run(setup));
}

async fn run(setup: Setup) {
    let started = Instant::now();
    let sim = Sim::start(&setup);
    eprintln!(
        "== organisation: {} accounts × {} Regions ({}) = {} targets, {} builds each ({} in flight) = {} builds; {} ms per API call; simulator at {}",
        setup.accounts,
        setup.regions.len(),
        setup.regions.join(","),
        setup.targets(),
        setup.builds,
        setup.running,
        setup.targets() * setup.builds,
        setup.latency_ms,
        sim.url,
    );
    let dir = tempfile::tempdir().expect("a scratch directory");
    let file = dir.path().join("targets.yml");
    let regions: Vec<String> = setup.regions.iter().map(|r| format!("{r:?}")).collect();
    std::fs::write(
        &file,
        format!(
            "organization:\n  member_role_name: imagebuilder-exporter\n  regions: [{}]\n",
            regions.join(", ")
        ),
    )
    .expect("write the targets file");
    let file = file.to_str().expect("a UTF-8 path");

    let mut all = vec![measure("one exporter", &sim, file, &[], &setup).await];
    print_one(&all[0]);
    let count = setup.shards.to_string();
    for i in 0..setup.shards {
        let index = i.to_string();
        let label = format!("shard {i}");
        let extra = ["--shard.count", count.as_str(), "--shard.index", &index];
        all.push(measure(&label, &sim, file, &extra, &setup).await);
        print_one(&all[i + 1]);
    }
    print_summary(&setup, &all);
    eprintln!(
        "== done in {:.1} min",
        started.elapsed().as_secs_f64() / 60.0
    );
}

/// Runs one exporter process alone against the simulator and measures it.
async fn measure(label: &str, sim: &Sim, file: &str, extra: &[&str], setup: &Setup) -> Figures {
    eprintln!("== {label}: starting");
    let mut f = Figures {
        label: label.to_string(),
        ..Figures::default()
    };
    sim.reset_calls().await;
    let started = Instant::now();
    let mut exporter = Exporter::spawn(label, sim, file, extra);

    // Time to ready.
    let ready_url = format!("{}/-/ready", exporter.base);
    loop {
        if let Ok((200, _, _)) = try_request("GET", &ready_url).await {
            break;
        }
        assert!(
            started.elapsed() < READY_TIMEOUT,
            "{label} not ready after {READY_TIMEOUT:?}"
        );
        if let Ok(Some(status)) = exporter.child.0.try_wait() {
            panic!("{label} exited before it was ready: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f.ready = started.elapsed();
    f.ready_calls = sim.calls().await;
    eprintln!("== {label}: ready in {:.1} s", f.ready.as_secs_f64());

    // The whole cold start: every target it serves has read its backfill
    // (without a scrape, whose refreshes are not the cold start's).
    loop {
        let (listed, done) = {
            let log = exporter.log();
            (log.listed_targets, log.backfilled.len())
        };
        if listed.is_some_and(|n| done >= n) {
            break;
        }
        assert!(
            started.elapsed() < COLD_TIMEOUT,
            "{label}: {done} of {listed:?} targets finished their backfill after {COLD_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    f.cold = started.elapsed();
    f.cold_calls = sim.calls().await;
    eprintln!(
        "== {label}: cold start done in {:.1} s; steady refresh next",
        f.cold.as_secs_f64()
    );

    // One steady refresh: a first scrape reads what is due since the cold
    // start; a scrape one refresh interval later is a steady one.
    scrape(&exporter.base).await;
    tokio::time::sleep(REFRESH_INTERVAL + Duration::from_secs(1)).await;
    sim.reset_calls().await;
    let t = Instant::now();
    let body = scrape(&exporter.base).await;
    f.refreshing_scrape = t.elapsed();
    let refreshed = Instant::now();
    f.steady_calls = sim.calls().await;
    f.size = body.len();
    f.targets = shard_targets(&body);
    let (status, headers, gz) = raw_request(
        "GET",
        &format!("{}/metrics", exporter.base),
        &[("accept-encoding", "gzip")],
    )
    .await
    .expect("a gzip scrape");
    assert_eq!(status, 200);
    assert_eq!(
        headers
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip"),
        "{label} answers gzip"
    );
    f.gzip_size = gz.len();
    (f.rss_steady, _) = exporter.memory();

    // Serving the page: ten scrapers, within the refresh interval (with a
    // margin for a request under way to reach the exporter).
    let t = Instant::now();
    let until = refreshed + REFRESH_INTERVAL - Duration::from_secs(2);
    let (p50, p99, n) = latency(&exporter.base, SCRAPERS, setup.scrapes, until).await;
    f.gzip_latency = (p50, p99);
    f.latency_scrapes = n;
    f.latency_run = t.elapsed();
    (_, f.rss_peak) = exporter.memory();
    f.warnings = exporter.log().warnings;
    drop(exporter);
    f
}

/// The body of one plain-text scrape of `/metrics`.
async fn scrape(base: &str) -> String {
    let (status, _, body) = try_request("GET", &format!("{base}/metrics"))
        .await
        .expect("a scrape");
    assert_eq!(status, 200, "GET {base}/metrics");
    body
}

/// `imagebuilder_exporter_shard_targets` of a page.
fn shard_targets(page: &str) -> usize {
    page.lines()
        .find_map(|l| l.strip_prefix("imagebuilder_exporter_shard_targets "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("the page has imagebuilder_exporter_shard_targets") as usize
}

/// p50 and p99 of up to `n` gzip scrapes by each of `clients` at once,
/// each on a new connection, and how many there were: none starts after
/// `until` (when the next scrape would refresh).
async fn latency(
    base: &str,
    clients: usize,
    n: usize,
    until: Instant,
) -> (Duration, Duration, usize) {
    let url = format!("{base}/metrics");
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut took = Vec::with_capacity(n);
                for _ in 0..n {
                    if Instant::now() >= until {
                        break;
                    }
                    let t = Instant::now();
                    let (status, _, _) = raw_request("GET", &url, &[("accept-encoding", "gzip")])
                        .await
                        .expect("a scrape");
                    assert_eq!(status, 200);
                    took.push(t.elapsed());
                }
                took
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a scraper"));
    }
    assert!(!all.is_empty(), "no scrape within the refresh interval");
    all.sort();
    (quantile(&all, 0.50), quantile(&all, 0.99), all.len())
}

fn total(calls: &BTreeMap<String, u64>) -> u64 {
    calls.values().sum()
}

/// `total (LA/AR/LIBV/LWE/LWSE/GWSE/LIP)`, and any other operation by name.
fn calls_text(calls: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = OPS
        .iter()
        .map(|(op, _)| calls.get(*op).copied().unwrap_or(0).to_string())
        .collect();
    let others: Vec<String> = calls
        .iter()
        .filter(|(op, _)| !OPS.iter().any(|(o, _)| o == op))
        .map(|(op, n)| format!(" {op} {n}"))
        .collect();
    format!("{} ({}){}", total(calls), parts.join("/"), others.join(""))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn ops_legend() -> String {
    OPS.iter().map(|(_, a)| *a).collect::<Vec<_>>().join("/")
}

fn print_one(f: &Figures) {
    println!();
    println!("{}:", f.label);
    println!("  targets served             {}", f.targets);
    println!(
        "  time to /-/ready           {:.1} s",
        f.ready.as_secs_f64()
    );
    println!(
        "  whole cold start           {:.1} s (every target's backfill done)",
        f.cold.as_secs_f64()
    );
    println!(
        "  calls to ready             {}   ({})",
        calls_text(&f.ready_calls),
        ops_legend()
    );
    println!("  calls, whole cold start    {}", calls_text(&f.cold_calls));
    println!(
        "  calls, one steady refresh  {}",
        calls_text(&f.steady_calls)
    );
    println!("  the refreshing scrape      {}", ms(f.refreshing_scrape));
    println!(
        "  /metrics                   {:.2} MB ({:.2} MB gzip)",
        f.size as f64 / 1e6,
        f.gzip_size as f64 / 1e6
    );
    println!(
        "  RSS peak / steady          {} / {}",
        mib(f.rss_peak),
        mib(f.rss_steady)
    );
    println!(
        "  gzip p50 / p99, {SCRAPERS} scrapers {} / {} ({} scrapes in {:.1} s)",
        ms(f.gzip_latency.0),
        ms(f.gzip_latency.1),
        f.latency_scrapes,
        f.latency_run.as_secs_f64()
    );
    println!("  warnings and errors logged {}", f.warnings);
}

/// A cell of the table, from one process's figures.
type Cell = fn(&Figures) -> String;
/// A figure the shards are compared on.
type Measure = fn(&Figures) -> f64;

/// The table side by side, the issue's targets, and the shards' ratios.
fn print_summary(setup: &Setup, all: &[Figures]) {
    let one = &all[0];
    let shards = &all[1..];
    let rows: Vec<(&str, Cell)> = vec![
        ("targets served", |f| f.targets.to_string()),
        ("time to /-/ready", |f| {
            format!("{:.1} s", f.ready.as_secs_f64())
        }),
        ("whole cold start (backfill done)", |f| {
            format!("{:.1} s", f.cold.as_secs_f64())
        }),
        ("calls to ready", |f| total(&f.ready_calls).to_string()),
        ("  of which ListAccounts / AssumeRole", |f| {
            let g = |op: &str| f.ready_calls.get(op).copied().unwrap_or(0);
            format!("{} / {}", g("ListAccounts"), g("AssumeRole"))
        }),
        ("calls, whole cold start", |f| {
            total(&f.cold_calls).to_string()
        }),
        ("  of which AssumeRole", |f| {
            f.cold_calls
                .get("AssumeRole")
                .copied()
                .unwrap_or(0)
                .to_string()
        }),
        ("calls, one steady refresh", |f| {
            total(&f.steady_calls).to_string()
        }),
        ("  of which AssumeRole", |f| {
            f.steady_calls
                .get("AssumeRole")
                .copied()
                .unwrap_or(0)
                .to_string()
        }),
        ("the refreshing scrape", |f| ms(f.refreshing_scrape)),
        ("/metrics gzip", |f| {
            format!("{:.2} MB", f.gzip_size as f64 / 1e6)
        }),
        ("RSS peak (VmHWM)", |f| mib(f.rss_peak)),
        ("RSS steady (VmRSS)", |f| mib(f.rss_steady)),
        ("gzip p50 / p99, 10 scrapers", |f| {
            format!("{} / {}", ms(f.gzip_latency.0), ms(f.gzip_latency.1))
        }),
    ];
    let mut header = vec![String::new()];
    header.extend(all.iter().map(|f| f.label.clone()));
    let mut lines = vec![header];
    for (name, cell) in &rows {
        let mut line = vec![name.to_string()];
        line.extend(all.iter().map(*cell));
        lines.push(line);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    println!();
    println!(
        "Organisation: {} accounts × {} Regions = {} targets, {} builds each ({} in flight), {} builds; {} ms per API call; default rate limit per target",
        setup.accounts,
        setup.regions.len(),
        setup.targets(),
        setup.builds,
        setup.running,
        setup.targets() * setup.builds,
        setup.latency_ms
    );
    println!();
    for (n, line) in lines.iter().enumerate() {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        println!("| {} |", cells.join(" | "));
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
            println!("|{}|", rule.join("|"));
        }
    }

    let served: usize = shards.iter().map(|f| f.targets).sum();
    let sessions = one.cold_calls.get("AssumeRole").copied().unwrap_or(0);
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    println!();
    println!("Targets:");
    println!(
        "  one exporter ready < 5 min:        {:.1} s — {}",
        one.ready.as_secs_f64(),
        verdict(one.ready < READY_TARGET)
    );
    println!(
        "  one exporter RSS peak < 256 MB:    {} — {}",
        mib(one.rss_peak),
        verdict(one.rss_peak < RSS_TARGET)
    );
    println!(
        "  one exporter gzip p99 < 25 ms:     {} — {}",
        ms(one.gzip_latency.1),
        verdict(one.gzip_latency.1 < P99_TARGET)
    );
    println!(
        "  shards serve every target once:    {served} of {} — {}",
        one.targets,
        verdict(served == one.targets && one.targets == setup.targets())
    );
    println!(
        "  one session per account:           {sessions} AssumeRole in the cold start, {} accounts — {}",
        setup.accounts,
        verdict(sessions <= setup.accounts as u64)
    );
    let ratio = |f: Measure| {
        let base = f(one);
        let parts: Vec<String> = shards
            .iter()
            .map(|s| {
                if base > 0.0 {
                    format!("{:.2}", f(s) / base)
                } else {
                    "-".to_string()
                }
            })
            .collect();
        parts.join(" / ")
    };
    println!(
        "  each shard ≈ 1/{} (= {:.2}) of one exporter, shard / one:",
        setup.shards,
        1.0 / setup.shards as f64
    );
    let lines: [(&str, Measure); 6] = [
        ("targets", |f| f.targets as f64),
        ("RSS peak", |f| f.rss_peak as f64),
        ("RSS steady", |f| f.rss_steady as f64),
        ("calls to ready", |f| total(&f.ready_calls) as f64),
        ("calls, whole cold start", |f| total(&f.cold_calls) as f64),
        ("calls, one steady refresh", |f| {
            total(&f.steady_calls) as f64
        }),
    ];
    for (name, f) in &lines {
        println!("    {name:<26} {}", ratio(*f));
    }
    println!();
}

//! The scale benchmark: the exporter against simulated accounts of 100, 1,000
//! and 5,000 builds, over real HTTP, with 20 ms of latency per API call.
//!
//! ```sh
//! cargo bench --bench scale                     # all three sizes (~50 min)
//! BENCH_SIZES=100,1000 cargo bench --bench scale
//! ```
//!
//! For each size it prints API calls (cold start, steady state with and
//! without discovery, one new build), time to ready at the default rate
//! limit, `/metrics` size, series, latency under 1 and 10 scrapers, encoding
//! speed, and the exporter process's memory; and, for comparison, what
//! re-fetching everything at each scrape would cost.

#[path = "../tests/shared/http.rs"]
mod http;
#[path = "common/measure.rs"]
mod measure;
#[path = "../tests/shared/running.rs"]
mod running;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{free_port, raw_request, try_request};
use imagebuilder_exporter::app;
use imagebuilder_exporter::app::options::Options;
use imagebuilder_exporter::base::clock::{Clock, SystemClock, NANOS_PER_SEC};
use imagebuilder_exporter::base::gzip::gzip;
use imagebuilder_exporter::metrics::ExporterMetrics;
use imagebuilder_exporter::refresh::exporter::Encoding;
use imagebuilder_sim::scenario::{self, BuildShape, Ids};
use imagebuilder_sim::{Faults, Simulator};
use measure::{memory_of, quantile};
use running::Running;

const OPS: [&str; 5] = [
    "ListImageBuildVersions",
    "ListWorkflowExecutions",
    "ListWorkflowStepExecutions",
    "GetWorkflowStepExecution",
    "ListImagePipelines",
];
const LATENCY: Duration = Duration::from_millis(20);

/// Families added for the person on call (what failed, why, whose), whose
/// series counts the table reports.
const ONCALL_FAMILIES: [&str; 10] = [
    "imagebuilder_workflow_step_rollback_status",
    "imagebuilder_workflow_step_info",
    "imagebuilder_workflow_step_failure_info",
    "imagebuilder_workflow_step_failure_timestamp_seconds",
    "imagebuilder_workflow_execution_failure_info",
    "imagebuilder_image_build_status",
    "imagebuilder_image_build_info",
    "imagebuilder_image_build_failure_info",
    "imagebuilder_image_last_successful_build_timestamp_seconds",
    "imagebuilder_image_tags",
];
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(20);

#[derive(Default, Clone)]
struct Row {
    builds: usize,
    images: usize,
    running: usize,
    step_executions: usize,
    /// Calls and time until `/-/ready`.
    ready_calls: BTreeMap<String, u64>,
    ready_wall: Duration,
    /// Calls and time until the backfill finished: the whole cold start.
    cold_calls: BTreeMap<String, u64>,
    cold_wall: Duration,
    steady: BTreeMap<String, u64>,
    steady_discovery: BTreeMap<String, u64>,
    new_build: BTreeMap<String, u64>,
    naive: u64,
    size: usize,
    gzip_size: usize,
    series: usize,
    /// Series of the families that describe builds and failures: each
    /// must stay bounded by steps, workflows or images, never by history.
    family_series: BTreeMap<&'static str, usize>,
    lat1: (Duration, Duration),
    lat10: (Duration, Duration),
    lat10_gzip: (Duration, Duration),
    /// The same with wrk (keep-alive, a client in C that discards bodies).
    wrk1: Option<(Duration, Duration)>,
    wrk10: Option<(Duration, Duration)>,
    wrk10_gzip: Option<(Duration, Duration)>,
    render_mbps: f64,
    flatten_mbps: f64,
    gzip_mbps: f64,
    memcpy_mbps: f64,
    rss_peak: u64,
    rss_steady: u64,
    rss_scraped: u64,
    /// Pages of one discovery listing.
    listing_pages: u64,
    /// From a failure to its series in /metrics: following events, and
    /// by polling alone (default discovery every five minutes).
    failure_seen_events: Option<Duration>,
    failure_seen_polling: Option<Duration>,
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1000, 5000]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    for builds in sizes {
        let images = (builds / 20).max(1);
        let running = match builds {
            0..=100 => 3,
            101..=1000 => 5,
            _ => 10,
        };
        eprintln!("== {builds} builds over {images} images, {running} running");
        rows.push(rt.block_on(measure(builds, images, running)));
        print_table(&rows);
    }
}

fn calls_text(c: &BTreeMap<String, u64>) -> String {
    let total: u64 = c.values().sum();
    let parts: Vec<String> = OPS
        .iter()
        .map(|o| c.get(*o).copied().unwrap_or(0).to_string())
        .collect();
    format!("{total} ({})", parts.join("/"))
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn print_table(rows: &[Row]) {
    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |name: &str, f: &dyn Fn(&Row) -> String| {
        lines.push((name.to_string(), rows.iter().map(f).collect()))
    };
    add("builds / images / running", &|r| {
        format!("{} / {} / {}", r.builds, r.images, r.running)
    });
    add("step executions in the account", &|r| {
        r.step_executions.to_string()
    });
    add("calls before /-/ready (LIBV/LWE/LWSE/GWSE/LIP)", &|r| {
        calls_text(&r.ready_calls)
    });
    add("time to /-/ready", &|r| {
        format!("{:.1} s", r.ready_wall.as_secs_f64())
    });
    add("whole cold start: calls, ready + backfill", &|r| {
        calls_text(&r.cold_calls)
    });
    add("whole cold start: time to backfill done", &|r| {
        format!("{:.1} s", r.cold_wall.as_secs_f64())
    });
    add("steady refresh, nothing new", &|r| calls_text(&r.steady));
    add("steady refresh with discovery", &|r| {
        calls_text(&r.steady_discovery)
    });
    add("refresh after one new build", &|r| calls_text(&r.new_build));
    add("re-fetch everything per scrape", &|r| r.naive.to_string());
    add("saving (re-fetch / steady)", &|r| {
        let steady: u64 = r.steady.values().sum::<u64>().max(1);
        let with_disc: u64 = r.steady_discovery.values().sum::<u64>().max(1);
        format!(
            "{}x ({}x with discovery)",
            r.naive / steady,
            r.naive / with_disc
        )
    });
    add(
        "listing calls an hour, polling (5-minute discovery)",
        &|r| format!("{}", r.listing_pages * 12),
    );
    add("listing calls an hour, events (1-hour discovery)", &|r| {
        format!("{} + 1 per build event", r.listing_pages)
    });
    let seen =
        |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{:.1} s", d.as_secs_f64()));
    add("failure to its series, events / polling", &|r| {
        format!(
            "{} / {}",
            seen(r.failure_seen_events),
            seen(r.failure_seen_polling)
        )
    });
    add("/metrics size (gzip)", &|r| {
        format!(
            "{:.2} MB ({:.2} MB)",
            r.size as f64 / 1e6,
            r.gzip_size as f64 / 1e6
        )
    });
    add("/metrics series", &|r| r.series.to_string());
    for family in ONCALL_FAMILIES {
        add(&format!("  series of {family}"), &|r| {
            r.family_series
                .get(family)
                .copied()
                .unwrap_or(0)
                .to_string()
        });
    }
    add("latency p50/p99, 1 scraper", &|r| {
        format!("{} / {} ms", ms(r.lat1.0), ms(r.lat1.1))
    });
    add("latency p50/p99, 10 scrapers", &|r| {
        format!("{} / {} ms", ms(r.lat10.0), ms(r.lat10.1))
    });
    add("latency p50/p99, 10 scrapers, gzip", &|r| {
        format!("{} / {} ms", ms(r.lat10_gzip.0), ms(r.lat10_gzip.1))
    });
    let wrk_text = |w: Option<(Duration, Duration)>| {
        w.map_or("wrk not installed".to_string(), |(a, b)| {
            format!("{} / {} ms", ms(a), ms(b))
        })
    };
    add("wrk p50/p99, 1 connection", &|r| wrk_text(r.wrk1));
    add("wrk p50/p99, 10 connections", &|r| wrk_text(r.wrk10));
    add("wrk p50/p99, 10 connections, gzip", &|r| {
        wrk_text(r.wrk10_gzip)
    });
    add("encoding (chunks / one buffer / memcpy)", &|r| {
        format!(
            "{:.0} / {:.0} / {:.0} MB/s",
            r.render_mbps, r.flatten_mbps, r.memcpy_mbps
        )
    });
    add("gzip encoding, the page as one stream", &|r| {
        format!("{:.0} MB/s", r.gzip_mbps)
    });
    add("exporter RSS peak / steady", &|r| {
        format!(
            "{:.1} / {:.1} MB",
            r.rss_peak as f64 / 1048576.0,
            r.rss_steady as f64 / 1048576.0
        )
    });
    add("exporter RSS under 10 scrapers", &|r| {
        format!("{:.1} MB", r.rss_scraped as f64 / 1048576.0)
    });
    let w0 = lines.iter().map(|l| l.0.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..rows.len())
        .map(|i| lines.iter().map(|l| l.1[i].len()).max().unwrap_or(0))
        .collect();
    println!();
    let header: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{:>w$}", format!("{} builds", r.builds), w = widths[i]))
        .collect();
    println!("| {:w0$} | {} |", "", header.join(" | "));
    println!(
        "|{}|{}|",
        "-".repeat(w0 + 2),
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for (name, cells) in &lines {
        let cells: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:>w$}", c, w = widths[i]))
            .collect();
        println!("| {name:w0$} | {} |", cells.join(" | "));
    }
    println!();
}

async fn wait_ready(base: &str) -> Duration {
    let started = Instant::now();
    let url = format!("{base}/-/ready");
    loop {
        if let Ok((200, _, _)) = try_request("GET", &url).await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn scrape(base: &str) -> Bytes {
    raw_request("GET", &format!("{base}/metrics"), &[])
        .await
        .expect("scrape")
        .2
}

/// p50 and p99 from `wrk --latency` over 5 s, if wrk is installed
/// (`apt-get install wrk`).
fn wrk(base: &str, connections: usize, extra: &[&str]) -> Option<(Duration, Duration)> {
    let threads = connections.min(2).to_string();
    let conns = connections.to_string();
    let url = format!("{base}/metrics");
    let mut args = vec![
        "-t",
        threads.as_str(),
        "-c",
        conns.as_str(),
        "-d",
        "5s",
        "--latency",
    ];
    args.extend_from_slice(extra);
    args.push(url.as_str());
    let out = Command::new("wrk").args(&args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let pick = |p: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(p))
            .and_then(|v| parse_wrk_duration(v.trim()))
    };
    Some((pick("50%")?, pick("99%")?))
}

/// `1.23ms`, `456.78us`, `1.02s`.
fn parse_wrk_duration(v: &str) -> Option<Duration> {
    let (num, scale) = if let Some(x) = v.strip_suffix("us") {
        (x, 1e-6)
    } else if let Some(x) = v.strip_suffix("ms") {
        (x, 1e-3)
    } else if let Some(x) = v.strip_suffix('s') {
        (x, 1.0)
    } else {
        return None;
    };
    num.parse::<f64>()
        .ok()
        .map(|n| Duration::from_secs_f64(n * scale))
}

/// Latency percentiles (p50, p99) of `n` scrapes by each of `clients`.
async fn latency(base: &str, clients: usize, n: usize, gzip: bool) -> (Duration, Duration) {
    let url = format!("{base}/metrics");
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let headers: &[(&str, &str)] = if gzip {
                    &[("accept-encoding", "gzip")]
                } else {
                    &[]
                };
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let t = Instant::now();
                    let r = raw_request("GET", &url, headers).await.expect("scrape");
                    assert_eq!(r.0, 200);
                    v.push(t.elapsed());
                }
                v
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("scraper"));
    }
    all.sort();
    (quantile(&all, 0.50), quantile(&all, 0.99))
}

async fn measure(builds: usize, images: usize, running: usize) -> Row {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let mut store = scenario::sized(now, builds, images, running, 20 * 3600 * NANOS_PER_SEC, 1);
    // A scheduled pipeline per image, as accounts have them: listed with
    // every discovery (one page per 100 pipelines).
    for i in 0..images {
        let schedule = imagebuilder_sim::SimSchedule::new(
            "cron(0 3 * * ? *)",
            24 * 3600 * NANOS_PER_SEC,
            now - 3600 * NANOS_PER_SEC,
        );
        store.insert_pipeline(scenario::pipeline(&scenario::image_name(i), Some(schedule)));
    }
    // What a naive exporter would call at every scrape: every page, every
    // build's executions, every execution's steps, every step's detail.
    let (mut executions, mut steps) = (0u64, 0u64);
    for b in store.visible(now) {
        for (_, st) in b.workflow_states(now) {
            executions += 1;
            steps += st.steps.len() as u64;
        }
    }
    let visible = store.visible(now).count() as u64;
    let naive = visible.div_ceil(100) + visible + executions + steps;
    let sim = Simulator::new(clock.clone(), store, 1);
    sim.set_faults(Faults {
        latency: LATENCY,
        ..Faults::default()
    });
    let running_sim = sim
        .spawn(([127, 0, 0, 1], 0).into())
        .await
        .expect("simulator");
    let mut row = Row {
        builds,
        images,
        running,
        step_executions: steps as usize,
        naive,
        ..Row::default()
    };

    // A: the exporter as users run it (default rate limit), as a process.
    // BENCH_SKIP_COLD=1 skips it (for iterating on the scrape figures).
    if std::env::var("BENCH_SKIP_COLD").as_deref() != Ok("1") {
        measure_process(&mut row, &sim, &running_sim, &clock).await;
    }
    scrape_figures(&mut row, &sim, &running_sim, &clock).await;
    // C: events against polling, last because it adds an image.
    // BENCH_SKIP_EVENTS=1 skips it.
    if std::env::var("BENCH_SKIP_EVENTS").as_deref() != Ok("1") {
        measure_events(&mut row, &sim, &running_sim, &clock).await;
    }
    running_sim.stop().await;
    row
}

/// Cold start, steady state and memory of the exporter process.
async fn measure_process(
    row: &mut Row,
    sim: &Simulator,
    running_sim: &imagebuilder_sim::RunningSimulator,
    clock: &Arc<dyn Clock>,
) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_imagebuilder-exporter"))
        .args([
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
            "--refresh.min-interval",
            "1s",
            "--discovery.interval",
            &format!("{}s", DISCOVERY_INTERVAL.as_secs()),
            "--log.level",
            "info",
            "--log.format",
            "json",
        ])
        .env("AWS_ENDPOINT_URL_IMAGEBUILDER", running_sim.url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stderr(Stdio::piped())
        .spawn()
        .expect("exporter starts");
    let pid = child.id();
    // The log says when the backfill is done, without a scrape (a scrape
    // would start refreshes, whose calls are not the cold start's).
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("backfill finished") {
                let _ = done_tx.send(());
            } else if line.contains("\"level\":\"WARN") || line.contains("\"level\":\"ERROR") {
                eprintln!("{line}");
            }
        }
    });
    let exporter = Running(child);
    let started = Instant::now();
    row.ready_wall = wait_ready(&base).await;
    row.ready_calls = sim.calls();
    let _ =
        tokio::task::spawn_blocking(move || done_rx.recv_timeout(Duration::from_secs(3600))).await;
    row.cold_wall = started.elapsed();
    row.cold_calls = sim.calls();

    tokio::time::sleep(Duration::from_millis(1100)).await;
    scrape(&base).await; // may run a due discovery
    sim.reset_calls();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    scrape(&base).await;
    row.steady = sim.calls();

    // Past the discovery interval, whenever the last discovery ran.
    tokio::time::sleep(DISCOVERY_INTERVAL + Duration::from_millis(200)).await;
    sim.reset_calls();
    scrape(&base).await;
    row.steady_discovery = sim.calls();
    row.listing_pages = ["ListImageBuildVersions", "ListImagePipelines"]
        .iter()
        .map(|op| row.steady_discovery.get(*op).copied().unwrap_or(0))
        .sum();

    sim.update(|s| {
        let shape = BuildShape {
            speed: 20.0,
            ..BuildShape::default()
        };
        s.insert(scenario::planned_build(
            &mut Ids::new(99),
            &scenario::image_name(0),
            1_000_000,
            clock.now() - NANOS_PER_SEC,
            &shape,
        ));
    });
    tokio::time::sleep(DISCOVERY_INTERVAL + Duration::from_millis(200)).await;
    sim.reset_calls();
    scrape(&base).await;
    row.new_build = sim.calls();
    (row.rss_steady, row.rss_peak) = memory_of(pid);

    // Memory while ten scrapers hammer it.
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(memory_of(pid).0, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    latency(&base, 10, 20, false).await;
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    row.rss_scraped = peak.load(Ordering::Relaxed);
    drop(exporter);
}

/// An exporter process with default flags and `extra`, reading the
/// simulator for both Image Builder and SQS.
fn spawn_exporter(port: u16, endpoint: &str, extra: &[&str]) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_imagebuilder-exporter"))
        .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
        .args(extra)
        .args(["--log.level", "warn"])
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stderr(Stdio::inherit())
        .spawn()
        .expect("exporter starts");
    Running(child)
}

/// Whether the page at `base` shows image `image`'s first step FAILED.
async fn shows_failure(base: &str, image: &str) -> bool {
    let Ok((200, _, body)) = raw_request(
        "GET",
        &format!("{base}/metrics"),
        &[("accept-encoding", "gzip")],
    )
    .await
    else {
        return false;
    };
    let mut text = String::new();
    let read =
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text);
    read.is_ok()
        && text.lines().any(|l| {
            l.starts_with("imagebuilder_workflow_step_status{")
                && l.contains(&format!("image=\"{image}\""))
                && l.contains("status=\"FAILED\"")
                && l.ends_with(" 1")
        })
}

/// Two exporters with default flags, one following the simulator's
/// events (discovery then hourly) and one polling (discovery every five
/// minutes): how long a new build's failure takes to show in each.
async fn measure_events(
    row: &mut Row,
    sim: &Simulator,
    running_sim: &imagebuilder_sim::RunningSimulator,
    clock: &Arc<dyn Clock>,
) {
    const QUEUE: &str = "bench-events";
    sim.enable_events(QUEUE);
    let (pe, pp) = (free_port(), free_port());
    let queue = running_sim.queue_url(QUEUE);
    let _events = spawn_exporter(pe, &running_sim.url(), &["--events.sqs-queue-url", &queue]);
    let _polling = spawn_exporter(pp, &running_sim.url(), &[]);
    let (be, bp) = (
        format!("http://127.0.0.1:{pe}"),
        format!("http://127.0.0.1:{pp}"),
    );
    wait_ready(&be).await;
    wait_ready(&bp).await;
    // A new image's build fails its first step ten seconds from now.
    let shape = BuildShape {
        speed: 5.0 / 90.0,
        failure: Some((0, 0, imagebuilder_sim::store::Outcome::Failed)),
        ..BuildShape::default()
    };
    let image = "bench-edge";
    let created = clock.now() + NANOS_PER_SEC;
    sim.update(|s| {
        s.insert(scenario::planned_build(
            &mut Ids::new(7),
            image,
            1,
            created,
            &shape,
        ))
    });
    let failed_at = Instant::now() + Duration::from_secs(11);
    tokio::time::sleep_until(failed_at.into()).await;
    let deadline = failed_at + Duration::from_secs(6 * 60 + 30);
    while Instant::now() < deadline
        && (row.failure_seen_events.is_none() || row.failure_seen_polling.is_none())
    {
        if row.failure_seen_events.is_none() && shows_failure(&be, image).await {
            row.failure_seen_events = Some(failed_at.elapsed());
        }
        if row.failure_seen_polling.is_none() && shows_failure(&bp, image).await {
            row.failure_seen_polling = Some(failed_at.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `/metrics` size, latency and encoding speed of an exporter in this
/// process that refreshes only once.
async fn scrape_figures(
    row: &mut Row,
    sim: &Simulator,
    running_sim: &imagebuilder_sim::RunningSimulator,
    clock: &Arc<dyn Clock>,
) {
    // B: the same exporter in this process, refreshing only when told, for
    // scrape latency and encoding speed without refreshes in the way.
    sim.set_faults(Faults::default());
    let mut opts = Options::from_args([
        "--refresh.min-interval",
        "1h",
        "--aws.region",
        "us-east-1",
        "--aws.max-requests-per-second",
        "2000",
        "--aws.max-concurrency",
        "32",
        "--web.max-connections",
        "64",
        "--labels.image-tags",
        "team,env",
    ])
    .expect("options");
    opts.aws.endpoint_url = Some(running_sim.url());
    opts.aws.static_credentials = Some(("AKIDBENCH".into(), "bench".into()));
    let built = app::build(
        &opts,
        clock.clone(),
        ExporterMetrics::new().expect("metrics"),
    )
    .await
    .expect("exporter");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base_b = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(imagebuilder_exporter::server::run(
        listener,
        built.exporter.clone(),
        opts.web.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    built.exporter.warm_up(Duration::from_secs(300)); // the one refresh
    wait_ready(&base_b).await;
    let body = scrape(&base_b).await;
    row.size = body.len();
    row.series = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count();
    for family in ONCALL_FAMILIES {
        let prefix = format!("{family}{{");
        let n = body
            .split(|b| *b == b'\n')
            .filter(|l| l.starts_with(prefix.as_bytes()))
            .count();
        row.family_series.insert(family, n);
    }
    row.gzip_size = raw_request(
        "GET",
        &format!("{base_b}/metrics"),
        &[("accept-encoding", "gzip")],
    )
    .await
    .expect("gzip")
    .2
    .len();
    let rounds = 200;
    let mut t = Instant::now();
    let mut total = 0usize;
    for _ in 0..rounds {
        total += built
            .exporter
            .render_metrics(Encoding::Identity)
            .await
            .len() as usize;
    }
    row.render_mbps = total as f64 / 1e6 / t.elapsed().as_secs_f64();
    t = Instant::now();
    total = 0;
    for _ in 0..rounds {
        let chunks = built.exporter.render_metrics(Encoding::Identity).await;
        let mut flat = Vec::with_capacity(chunks.len() as usize);
        for c in chunks.iter() {
            flat.extend_from_slice(c);
        }
        total += std::hint::black_box(flat).len();
    }
    row.flatten_mbps = total as f64 / 1e6 / t.elapsed().as_secs_f64();
    // gzip: what one rendering costs, the page compressed as one stream
    // (MB/s of the uncompressed page). Not `render_metrics(Encoding::Gzip)`:
    // the scrapes of one second share its page (`refresh::page`), so a loop
    // of it would measure that sharing.
    let page: Vec<Bytes> = built
        .exporter
        .render_metrics(Encoding::Identity)
        .await
        .iter()
        .cloned()
        .collect();
    t = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(gzip(&page));
    }
    row.gzip_mbps = (row.size * rounds) as f64 / 1e6 / t.elapsed().as_secs_f64();
    let src = vec![7u8; row.size];
    t = Instant::now();
    for _ in 0..rounds {
        let copy = std::hint::black_box(&src).clone();
        std::hint::black_box(copy);
    }
    row.memcpy_mbps = (row.size * rounds) as f64 / 1e6 / t.elapsed().as_secs_f64();

    row.lat1 = latency(&base_b, 1, 200, false).await;
    row.lat10 = latency(&base_b, 10, 50, false).await;
    row.lat10_gzip = latency(&base_b, 10, 50, true).await;
    row.wrk1 = wrk(&base_b, 1, &[]);
    row.wrk10 = wrk(&base_b, 10, &[]);
    row.wrk10_gzip = wrk(&base_b, 10, &["-H", "Accept-Encoding: gzip"]);
    let _ = stop.send(());
    let _ = server.await;
}

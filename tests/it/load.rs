//! Load and limits: many scrapers, cardinality bounds, hours of builds, and
//! a web server that defends itself.

use crate::common;

use std::time::{Duration, Instant};

use common::logs::Captured;
use common::*;
use imagebuilder_exporter::base::clock::{secs, NANOS_PER_SEC};
use imagebuilder_sim::scenario::{self, Ids};
use imagebuilder_sim::store::Store;
use imagebuilder_sim::Faults;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Resident memory of this process, in bytes; `None` where there is no
/// `/proc` to read it from (not Linux), and the memory checks are skipped.
/// On Linux, a `/proc` that cannot be read fails the test: a bound checked
/// against a made-up 0 would pass whatever the memory did.
fn rss() -> Option<u64> {
    cfg!(target_os = "linux").then(|| vm_rss(std::path::Path::new("/proc/self/status")))
}

/// `VmRSS` of a `/proc/<pid>/status` file, in bytes; panics if there is none.
fn vm_rss(status: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(status)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", status.display()));
    let kb = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {}:\n{text}", status.display()));
    kb * 1024
}

#[cfg(target_os = "linux")]
#[test]
fn rss_reads_this_process_on_linux() {
    let bytes = rss().expect("Linux has /proc");
    // Anything this test binary runs in takes more than a megabyte.
    assert!(bytes > 1 << 20, "{bytes} bytes");
}

#[test]
#[should_panic(expected = "cannot read")]
fn an_unreadable_status_fails_the_memory_checks() {
    vm_rss(std::path::Path::new("/nonexistent/proc/self/status"));
}

#[test]
#[should_panic(expected = "no VmRSS")]
fn a_status_without_vm_rss_fails_the_memory_checks() {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), "Name:\tload\nVmRSS:\tlots kB\n").unwrap();
    vm_rss(f.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_scrapers_share_refreshes() {
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&["--refresh.min-interval", "1s"])
        .await;
    h.sim.set_faults(Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    });
    h.scrape().await;
    h.sim.reset_calls();
    let url = format!("{}/metrics", h.url);
    // A fixed number of scrapes, not a time: how many a machine manages is
    // the benchmark's business (BENCHMARKS.md), not a test's.
    const EACH: u32 = 10;
    let started = Instant::now();
    let scrapers: Vec<_> = (0..50)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                for _ in 0..EACH {
                    let (status, _, body) = get(&url).await;
                    assert_eq!(status, 200);
                    assert!(body.contains("imagebuilder_up{target=\"us-east-1\"} 1"));
                }
            })
        })
        .collect();
    for s in scrapers {
        s.await.expect("no scraper failed");
    }
    let elapsed = started.elapsed().as_secs_f64();
    // One refresh per second at most, whatever the number of scrapers: the
    // running build costs one ListWorkflowExecutions per refresh.
    let refreshes = h.sim.calls_to("ListWorkflowExecutions");
    assert!(
        refreshes as f64 <= elapsed + 1.0,
        "{refreshes} refreshes in {elapsed:.1}s for {} scrapes",
        50 * EACH
    );
    assert_eq!(
        h.sim.calls_to("ListImageBuildVersions"),
        0,
        "discovery is not due"
    );
    h.shutdown().await;
}

/// Runs test `name` of this module again, alone in a process of its own
/// (one test thread), and checks that it passed there: what it measures of
/// the process (its memory) is then its own, whatever other tests run
/// beside it here. True in that process: run the test's body.
fn in_a_process_of_its_own(name: &str) -> bool {
    const ALONE: &str = "IMAGEBUILDER_TEST_ALONE";
    if std::env::var(ALONE).as_deref() == Ok(name) {
        return true;
    }
    // The test's path within the binary: its module's, without the crate.
    let path = match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    };
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args([path.as_str(), "--exact", "--test-threads=1"])
        .env(ALONE, name)
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{path} alone:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

#[tokio::test]
async fn max_builds_drops_the_oldest_finished_builds() {
    let (logs, _guard) = Captured::start();
    let mut ids = Ids::new(4);
    let mut store = Store::default();
    for n in 1..=30 {
        store.insert(simple_done_build(
            &mut ids,
            "web",
            n,
            at(-100_000.0 + n as f64 * 1000.0),
        ));
    }
    let h = World::new(store, at(0.0))
        .spawn_exporter(&["--discovery.max-builds", "10", "--discovery.lookback", "7d"])
        .await;
    let m = h.scrape().await;
    assert_eq!(
        m.get("imagebuilder_exporter_tracked_builds", &[]),
        Some(10.0)
    );
    assert_eq!(
        m.get("imagebuilder_exporter_dropped_builds_total", &[]),
        Some(20.0)
    );
    // The newest build is the one exported.
    assert_eq!(
        m.get(
            "imagebuilder_workflow_step_end_timestamp_seconds",
            &[("image", "web")]
        ),
        Some(secs(at(-100_000.0 + 30_000.0 + 61.0)))
    );
    assert_eq!(
        logs.lines_with("warn", &["--discovery.max-builds", "dropped=20"])
            .len(),
        1,
        "{}",
        logs.text()
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_over_hours_of_builds() {
    if !in_a_process_of_its_own("memory_stays_flat_over_hours_of_builds") {
        return;
    }
    // Six simulated hours of builds, one every 2 minutes over 8 images: the
    // clock moves 30 s before each scrape, whatever the machine's speed.
    let hours = 6;
    let start = at(0.0);
    let store = scenario::stream(
        start,
        hours * 3600 * NANOS_PER_SEC,
        120 * NANOS_PER_SEC,
        8,
        11,
    );
    let h = World::new(store, start)
        .spawn_exporter(&["--discovery.lookback", "30m", "--discovery.interval", "1ms"])
        .await;
    let steps = hours * 3600 / 30;
    let mut tracked_max = 0.0f64;
    let mut steps_max = 0.0f64;
    let mut rss_samples = Vec::new();
    let mut counted = 0.0;
    for i in 0..steps {
        h.clock.advance_secs(30.0);
        let m = h.scrape().await;
        tracked_max = tracked_max.max(
            m.get("imagebuilder_exporter_tracked_builds", &[])
                .unwrap_or(0.0),
        );
        steps_max = steps_max.max(
            m.get("imagebuilder_exporter_tracked_step_executions", &[])
                .unwrap_or(0.0),
        );
        counted = m.sum("imagebuilder_workflow_step_executions_total", &[]);
        if i % 20 == 0 {
            rss_samples.extend(rss());
        }
    }
    // 30 minutes of builds at one every 2 minutes, plus the newest of each
    // image and those in flight: a bound that does not grow with the hours.
    assert!(tracked_max <= 30.0, "tracked up to {tracked_max} builds");
    assert!(
        steps_max <= 30.0 * 12.0,
        "held up to {steps_max} step executions"
    );
    // 180 builds of about a dozen steps each ended in those hours.
    assert!(
        counted >= 1000.0,
        "only {counted} step executions counted: the scenario did not move"
    );
    if cfg!(target_os = "linux") {
        assert!(rss_samples.len() >= 4, "{} samples", rss_samples.len());
        let first_half = rss_samples[..rss_samples.len() / 2]
            .iter()
            .max()
            .copied()
            .unwrap_or_default();
        let last = rss_samples[rss_samples.len() - 1];
        assert!(
            last < first_half + (32 << 20),
            "memory grew from {} MiB to {} MiB",
            first_half >> 20,
            last >> 20
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    // The bound is ten times the configured timeout, a margin a loaded
    // machine keeps, and well below the 10 s default that a server
    // ignoring the setting would apply.
    const HEADER_TIMEOUT: Duration = Duration::from_millis(300);
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter_with(&[], |o| {
            o.web.serve.header_read_timeout = HEADER_TIMEOUT;
        })
        .await;
    let addr = h.url.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(HEADER_TIMEOUT * 10, slow.read_to_end(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(_)) | Ok(Err(_))),
        "still open after {:?}",
        HEADER_TIMEOUT * 10
    );
    assert!(
        !String::from_utf8_lossy(&buf).contains("200 OK"),
        "answered a request whose headers never ended: {buf:?}"
    );
    h.shutdown().await;
}

/// True once the server has closed `s` (end of stream or reset); false
/// while it is open.
async fn closed_by_server(s: &mut tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// Waits (at most `within`) until the server has closed `s`.
async fn closed_within(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(within, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// With every slot taken by idle connections, a new client is served at
/// once and the oldest idle connection closed in its place; a connection
/// answering a request is never closed for another, so with every slot
/// busy a new client waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_full_an_idle_connection_makes_room_and_a_busy_one_never_does() {
    // The default header timeout (10 s): the idle connections would hold
    // their slots that long.
    let h = World::new(sample_world(), at(160.0))
        .spawn_exporter(&["--web.max-connections", "2", "--scrape.timeout", "3s"])
        .await;
    h.scrape().await;
    let addr = h.url.trim_start_matches("http://").to_string();

    // Two idle connections, the older first.
    let mut older = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut newer = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let probe = tokio::time::timeout(Duration::from_secs(5), get(&format!("{}/-/healthy", h.url)))
        .await
        .expect("served before the idle connections' header timeout");
    assert_eq!(probe.0, 200);
    assert!(
        closed_within(&mut older, Duration::from_secs(2)).await,
        "the oldest idle connection made room"
    );
    assert!(
        !closed_by_server(&mut newer).await,
        "one was enough: the newer stays"
    );
    drop(newer);

    // Two scrapes wait for a refresh that the API makes slow (two calls
    // in a row of 2 s each, more than the 3 s the scrapes wait).
    h.sim.set_faults(Faults {
        latency: Duration::from_secs(2),
        ..Faults::default()
    });
    h.clock.advance_secs(10.0);
    let scrapes: Vec<_> = (0..2)
        .map(|_| {
            let url = format!("{}/metrics", h.url);
            tokio::spawn(async move { get(&url).await })
        })
        .collect();
    // Their requests are read long before this (a generous margin).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let (status, _, _) = get(&format!("{}/-/healthy", h.url)).await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "served at once: a scrape being answered was closed for it ({:?})",
        started.elapsed()
    );
    for s in scrapes {
        let (status, _, _) = s.await.expect("scrape task");
        assert_eq!(status, 200, "a scrape being answered is never cut");
    }
    h.shutdown().await;
}

/// Issue 19: 500 connections from one address that each send part of a
/// request line and then nothing, against the exporter binary with its
/// defaults (128 connections, a 10 s header timeout). The probes a kubelet
/// or load balancer sends must still be answered (they used to queue
/// behind the half-open connections for 10 s per 128 of them); the
/// exporter keeps at most its 128 connections (it closes the others), its
/// memory stays bounded, and it keeps running. The measured latency is in
/// docs/design.md (`cargo bench --bench hostile`); the bound here is generous
/// (half the header timeout) so that a loaded machine never fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_never_starve_the_probes() {
    const HALF_OPEN: usize = 500;
    const MAX_CONNECTIONS: usize = 128;
    const BOUND: Duration = Duration::from_secs(5);
    let mut run = common::process::exporter(&["--demo"], &[]);
    run.ready(Duration::from_secs(60)).await;
    let base = run.base.clone();
    let address = base.trim_start_matches("http://");
    let child = &mut run.child;
    let status = std::path::PathBuf::from(format!("/proc/{}/status", child.0.id()));
    let before = cfg!(target_os = "linux").then(|| vm_rss(&status));

    let mut held = Vec::with_capacity(HALF_OPEN);
    for _ in 0..HALF_OPEN {
        let mut s = tokio::net::TcpStream::connect(address)
            .await
            .expect("connects");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("writes");
        held.push(s);
    }
    for path in ["/-/healthy", "/-/ready", "/metrics"] {
        let started = Instant::now();
        let answer =
            tokio::time::timeout(BOUND, try_request("GET", &format!("{base}{path}"))).await;
        assert!(
            matches!(answer, Ok(Ok((200, _, _)))),
            "{path} with {HALF_OPEN} half-open connections: {answer:?} after {:?}",
            started.elapsed()
        );
    }

    // The exporter holds at most its 128: it closed the others.
    let mut closed = 0;
    for s in &mut held {
        if closed_within(s, Duration::from_millis(5)).await {
            closed += 1;
        }
    }
    assert!(
        closed >= HALF_OPEN - MAX_CONNECTIONS,
        "only {closed} of {HALF_OPEN} half-open connections closed"
    );
    if let Some(before) = before {
        let after = vm_rss(&status);
        assert!(
            after < before + (64 << 20),
            "resident memory grew from {} to {} MiB",
            before >> 20,
            after >> 20
        );
    }
    assert!(
        child.0.try_wait().expect("status").is_none(),
        "the exporter keeps running"
    );
    drop(held);
    let (status, _, _) = get(&format!("{base}/-/healthy")).await;
    assert_eq!(status, 200);
}

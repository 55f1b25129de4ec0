//! The simulator at an organisation's scale: can it answer the exporter's
//! organisation bench (300 accounts × 2 Regions × 20 builds, 600 targets
//! read by up to 600 clients with ~1,200 STS sessions) quickly enough not to
//! be what that bench measures?
//!
//! ```sh
//! cargo bench -p imagebuilder-sim --bench organization
//! BENCH_ACCOUNTS=300 BENCH_REGIONS=us-east-1,eu-west-1 BENCH_BUILDS=20 \
//!   BENCH_SESSIONS=1200 BENCH_SECONDS=10 cargo bench -p imagebuilder-sim --bench organization
//! ```
//!
//! It prints the time to build and load the world and the memory it takes,
//! the time to list the organisation and to hand out the sessions, then
//! runs one client per target (its own keep-alive connection, signed with
//! its own session) through the exporter's chain of calls (builds,
//! workflows, steps, a step) for `BENCH_SECONDS`, and prints requests per
//! second and latencies. Client and simulator share the machine's cores,
//! so the rate is a floor.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use imagebuilder_sim::clock::{Clock, SystemClock};
use imagebuilder_sim::scenario::{self, OrganizationSpec};
use imagebuilder_sim::{Simulator, Store};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident and peak memory of this process, in MiB.
fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

/// One request on a kept-alive connection: (status, body).
async fn call(
    sender: &mut SendRequest<Full<Bytes>>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (u16, Bytes) {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    sender.ready().await.unwrap();
    let res = sender.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

fn signed(key: &str, region: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={key}/20261204/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
}

/// A target's session: AssumeRole into its account's member role.
async fn assume_role(sender: &mut SendRequest<Full<Bytes>>, role: &str) -> String {
    let body = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName=bench",
        role.replace(':', "%3A").replace('/', "%2F")
    );
    let auth = signed("AKIDBENCH", "us-east-1", "sts");
    let (status, xml) = call(
        sender,
        "POST",
        "/",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &auth),
        ],
        body,
    )
    .await;
    let xml = String::from_utf8_lossy(&xml);
    assert_eq!(status, 200, "{xml}");
    xml.split("<AccessKeyId>")
        .nth(1)
        .and_then(|r| r.split("</AccessKeyId>").next())
        .unwrap()
        .to_string()
}

/// One timed request of a target's chain: its answer as JSON.
async fn timed(
    sender: &mut SendRequest<Full<Bytes>>,
    auth: &str,
    latencies: &mut Vec<u32>,
    (method, uri, body): (&str, String, String),
) -> Value {
    let headers = [
        ("authorization", auth),
        ("content-type", "application/json"),
    ];
    let start = Instant::now();
    let (status, bytes) = call(sender, method, &uri, &headers, body).await;
    latencies.push(start.elapsed().as_micros() as u32);
    assert_eq!(status, 200, "{uri}: {}", String::from_utf8_lossy(&bytes));
    serde_json::from_slice(&bytes).unwrap()
}

/// One pass of the exporter's chain for a target: builds, then the
/// workflows, steps and one step of build `n`. Latencies in µs.
async fn chain(
    sender: &mut SendRequest<Full<Bytes>>,
    auth: &str,
    n: usize,
    latencies: &mut Vec<u32>,
) {
    let builds = timed(
        sender,
        auth,
        latencies,
        ("POST", "/ListImageBuildVersions".into(), "{}".into()),
    )
    .await;
    let list = builds["imageSummaryList"].as_array().unwrap();
    let arn = list[n % list.len()]["arn"].as_str().unwrap().to_string();
    let body = serde_json::json!({ "imageBuildVersionArn": arn }).to_string();
    let workflows = timed(
        sender,
        auth,
        latencies,
        ("POST", "/ListWorkflowExecutions".into(), body),
    )
    .await;
    let id = workflows["workflowExecutions"][0]["workflowExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    let body = serde_json::json!({ "workflowExecutionId": id }).to_string();
    let steps = timed(
        sender,
        auth,
        latencies,
        ("POST", "/ListWorkflowStepExecutions".into(), body),
    )
    .await;
    let step = steps["steps"][0]["stepExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = format!("/GetWorkflowStepExecution?stepExecutionId={step}");
    timed(sender, auth, latencies, ("GET", uri, String::new())).await;
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let regions: Vec<String> = env("BENCH_REGIONS", "us-east-1,eu-west-1".to_string())
        .split(',')
        .map(str::to_string)
        .collect();
    let spec = OrganizationSpec {
        accounts: env("BENCH_ACCOUNTS", 300),
        regions: regions.clone(),
        builds: env("BENCH_BUILDS", 20),
        running: 0,
        sandboxes: 0,
        ..OrganizationSpec::default()
    };
    let sessions: usize = env("BENCH_SESSIONS", 1200);
    let seconds: u64 = env("BENCH_SECONDS", 10);
    let targets = spec.accounts * regions.len();
    println!(
        "organisation: {} accounts × {} Regions × {} builds = {} targets, {} builds",
        spec.accounts,
        regions.len(),
        spec.builds,
        targets,
        targets * spec.builds
    );

    let (before, _) = rss();
    let start = Instant::now();
    let world = scenario::organization(SystemClock.now(), &spec);
    let ids = world.account_ids();
    let sim = Simulator::new(SystemClock, Store::default(), 1);
    world.install(&sim).unwrap();
    let built = start.elapsed();
    let (after, _) = rss();
    println!(
        "world built and loaded in {:.2} s; memory {:.0} MiB (+{:.0} MiB)",
        built.as_secs_f64(),
        after,
        after - before
    );
    let running = sim.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let addr = running.addr();

    // The whole organisation, 20 accounts a page.
    let mut sender = connect(addr).await;
    let start = Instant::now();
    let (mut listed, mut pages, mut token) = (0, 0, None::<String>);
    loop {
        let body = match &token {
            Some(t) => serde_json::json!({ "NextToken": t }),
            None => serde_json::json!({}),
        };
        let auth = signed("AKIDBENCH", "us-east-1", "organizations");
        let (status, bytes) = call(
            &mut sender,
            "POST",
            "/",
            &[
                ("x-amz-target", "AWSOrganizationsV20161128.ListAccounts"),
                ("content-type", "application/x-amz-json-1.1"),
                ("authorization", &auth),
            ],
            body.to_string(),
        )
        .await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        listed += v["Accounts"].as_array().unwrap().len();
        pages += 1;
        token = v["NextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(listed, spec.accounts);
    println!(
        "ListAccounts: {listed} accounts in {pages} pages, {:.1} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );

    // One client per target, each with its sessions.
    let per_target = sessions.div_ceil(targets.max(1)).max(1);
    let start = Instant::now();
    let mut clients = Vec::with_capacity(targets);
    for id in &ids {
        for region in &regions {
            let role = sim.member_role_arn(id).unwrap();
            let region = region.clone();
            clients.push(tokio::spawn(async move {
                let mut sender = connect(addr).await;
                let mut key = String::new();
                for _ in 0..per_target {
                    key = assume_role(&mut sender, &role).await;
                }
                (sender, signed(&key, &region, "imagebuilder"))
            }));
        }
    }
    let mut ready = Vec::with_capacity(targets);
    for c in clients {
        ready.push(c.await.unwrap());
    }
    println!(
        "{} AssumeRole over {} connections in {:.2} s",
        per_target * targets,
        targets,
        start.elapsed().as_secs_f64()
    );

    sim.reset_calls();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = ready
        .into_iter()
        .enumerate()
        .map(|(i, (mut sender, auth))| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = i;
                while Instant::now() < deadline {
                    chain(&mut sender, &auth, n, &mut latencies).await;
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    println!(
        "{} clients: {} requests in {elapsed:.1} s = {:.0} requests/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        targets,
        latencies.len(),
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    // Every target read its own account and Region.
    let scopes = sim.calls_by_scope();
    let read: std::collections::BTreeSet<(String, String)> = scopes
        .keys()
        .filter(|s| s.operation == "ListImageBuildVersions")
        .map(|s| (s.account.clone(), s.region.clone()))
        .collect();
    assert_eq!(read.len(), targets, "one scope per target");
    let (now, peak) = rss();
    println!("memory after the load: {now:.0} MiB (peak {peak:.0} MiB)");
    running.stop().await;
}

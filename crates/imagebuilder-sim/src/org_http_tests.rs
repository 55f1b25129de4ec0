//! The organisation over plain HTTP: what the SDK never sends (another
//! content type, an operation not served), and the `/_sim/organization`
//! controls a test running the simulator as a process uses.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::{json, Value};

use crate::clock::{ManualClock, Nanos, NANOS_PER_SEC};
use crate::scenario::{self, OrganizationSpec, ACCOUNT};
use crate::{AccountState, RunningSimulator, Simulator, Store};

const T0: Nanos = 1_796_385_600 * NANOS_PER_SEC;

/// One request on its own connection: (status, body as JSON or text).
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let raw = format!("{head}\r\n{body}");
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let body = serde_json::from_str(body).unwrap_or_else(|_| json!(body));
    (status, body)
}

async fn start() -> (Simulator, RunningSimulator) {
    let sim = Simulator::new(ManualClock::new(T0), Store::default(), 3);
    let spec = OrganizationSpec {
        accounts: 3,
        builds: 2,
        ..OrganizationSpec::default()
    };
    scenario::organization(T0, &spec).install(&sim).unwrap();
    let running = sim.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    (sim, running)
}

const TARGET: &str = "AWSOrganizationsV20161128.ListAccounts";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_1_1_only_and_only_list_accounts() {
    let (_sim, running) = start().await;
    let addr = running.addr();
    let json_1_1 = ("Content-Type", "application/x-amz-json-1.1");
    let (status, body) = request(
        addr,
        "POST",
        "/",
        &[("X-Amz-Target", TARGET), json_1_1],
        "{}",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Accounts"].as_array().map(Vec::len), Some(3));
    assert!(body["Accounts"][0]["JoinedTimestamp"].is_number());
    assert!(body["Accounts"][0].get("Status").is_none());

    let (status, body) = request(
        addr,
        "POST",
        "/",
        &[
            ("X-Amz-Target", TARGET),
            ("Content-Type", "application/json"),
        ],
        "{}",
    )
    .await;
    assert_eq!(
        (status, &body["__type"]),
        (400, &json!("SerializationException"))
    );
    let (status, body) = request(
        addr,
        "POST",
        "/",
        &[("X-Amz-Target", TARGET), json_1_1],
        "[1]",
    )
    .await;
    assert_eq!(
        (status, &body["__type"]),
        (400, &json!("SerializationException"))
    );
    let (status, body) = request(
        addr,
        "POST",
        "/",
        &[
            (
                "X-Amz-Target",
                "AWSOrganizationsV20161128.DescribeOrganization",
            ),
            json_1_1,
        ],
        "{}",
    )
    .await;
    assert_eq!(
        (status, &body["__type"]),
        (400, &json!("UnknownOperationException"))
    );
    let (status, body) = request(
        addr,
        "POST",
        "/",
        &[("X-Amz-Target", TARGET), json_1_1],
        r#"{"MaxResults": 50}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "InvalidInputException");
    assert_eq!(body["Reason"], "MAX_VALUE_EXCEEDED");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organization_controls() {
    let (sim, running) = start().await;
    let addr = running.addr();
    let (status, org) = request(addr, "GET", "/_sim/organization", &[], "").await;
    assert_eq!(status, 200);
    assert_eq!(org["id"], json!(sim.organization_id()));
    assert_eq!(org["accounts"].as_array().map(Vec::len), Some(3));
    let member = org["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["Id"].as_str())
        .find(|id| *id != ACCOUNT)
        .unwrap()
        .to_string();

    let (status, _) = request(
        addr,
        "PUT",
        "/_sim/organization/fault",
        &[],
        r#"{"fault": "too_many_requests"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        sim.faults(),
        crate::Faults::default(),
        "not Image Builder's"
    );
    let (_, org) = request(addr, "GET", "/_sim/organization", &[], "").await;
    assert_eq!(org["fault"], "too_many_requests");
    let (status, _) = request(
        addr,
        "PUT",
        "/_sim/organization/fault",
        &[],
        r#"{"fault": "flood"}"#,
    )
    .await;
    assert_eq!(status, 400);

    let (status, joined) = request(
        addr,
        "POST",
        "/_sim/organization/accounts",
        &[],
        r#"{"id": "777700000001", "name": "team-late", "regions": ["eu-west-1"], "builds": 4}"#,
    )
    .await;
    assert_eq!(status, 200, "{joined}");
    let late = sim.organization_account("777700000001").unwrap();
    assert_eq!((late.name.as_str(), late.joined), ("team-late", T0));
    assert_eq!(
        sim.member_role_arn("777700000001").as_deref(),
        Some("arn:aws:iam::777700000001:role/imagebuilder-exporter")
    );
    let (status, _) = request(
        addr,
        "POST",
        "/_sim/organization/accounts",
        &[],
        r#"{"id": "7777", "name": "bad"}"#,
    )
    .await;
    assert_eq!(status, 400);

    let (status, _) = request(
        addr,
        "PUT",
        &format!("/_sim/organization/accounts/{member}/state"),
        &[],
        r#"{"state": "SUSPENDED"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        sim.organization_account(&member).map(|a| a.state),
        Some(AccountState::Suspended)
    );
    let (status, role) = request(
        addr,
        "PUT",
        &format!("/_sim/organization/accounts/{member}/role"),
        &[],
        r#"{"denied": true}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        role["role_arn"],
        format!("arn:aws:iam::{member}:role/imagebuilder-exporter")
    );
    assert!(!crate::sync::lock(&sim.state.roles).permit(role["role_arn"].as_str().unwrap(), None));

    let (status, _) = request(
        addr,
        "DELETE",
        &format!("/_sim/organization/accounts/{member}"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(sim.organization_account(&member).is_none());
    let (status, _) = request(
        addr,
        "DELETE",
        &format!("/_sim/organization/accounts/{ACCOUNT}"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 404, "the management account cannot leave");

    // Calls by scope, as the controls report them.
    let (_, scopes) = request(addr, "GET", "/_sim/calls/scopes", &[], "").await;
    assert_eq!(scopes, json!([]));
    let auth = "AWS4-HMAC-SHA256 Credential=AKIDX/20261204/eu-west-1/imagebuilder/aws4_request, SignedHeaders=host, Signature=0";
    let (status, _) = request(
        addr,
        "POST",
        "/ListImageBuildVersions",
        &[("Authorization", auth)],
        "{}",
    )
    .await;
    assert_eq!(status, 200);
    let (_, scopes) = request(addr, "GET", "/_sim/calls/scopes", &[], "").await;
    assert_eq!(
        scopes,
        json!([{"account": ACCOUNT, "region": "eu-west-1", "operation": "ListImageBuildVersions", "calls": 1}])
    );
    running.stop().await;
}

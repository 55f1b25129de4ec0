//! Control endpoints under `/_sim/`, for tests that run the simulator as a
//! separate process: read and reset call counts (`GET calls/scopes`: by
//! account, Region and operation), read and set faults, what
//! an exporter should show (`GET failures`: the failed steps; `GET
//! pipelines`: the pipelines' states), the SQS queues: `GET queues/{name}` (depth and counts), `POST
//! queues/{name}/messages` (the body, as is, becomes a message) and `PUT
//! queues/{name}/fault` (`{"fault": "access_denied" | "queue_does_not_exist" |
//! null}`), and the organisation (`organization…`, see [`organization`]).

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde::Deserialize;

use crate::clock::Clock;
use crate::faults::Faults;
use crate::org::{AccountState, JoinedMethod, OrgFault, SimAccount};
use crate::queue::QueueFault;
use crate::serve::{respond, Body};
use crate::{SimState, Simulator};

/// Every step execution of the default account that has ended FAILED by
/// the simulator's now: what an exporter should count.
fn failures(state: &SimState) -> serde_json::Value {
    let now = state.clock.now();
    let store = crate::sync::read(&state.store);
    let mut out = Vec::new();
    for b in store.visible(now) {
        for (w, st) in b.workflow_states(now) {
            for (s, ss) in w.steps.iter().zip(&st.steps) {
                if ss.status != "FAILED" {
                    continue;
                }
                let end = ss
                    .end
                    .as_deref()
                    .and_then(crate::timestamp::parse_rfc3339_millis);
                out.push(serde_json::json!({
                    "stepExecutionId": s.id,
                    "imageBuildVersionArn": b.arn,
                    "image": b.name,
                    "imageVersion": b.version,
                    "workflowBuildVersionArn": w.arn,
                    "workflowType": w.workflow_type,
                    "stepName": s.name,
                    "action": s.action,
                    "endTime": ss.end,
                    "endEpochSeconds": end.map(crate::clock::secs),
                }));
            }
        }
    }
    serde_json::Value::Array(out)
}

/// Every pipeline of the default account in its state at the simulator's
/// now, with what the API does not say: the count in force (the policy's,
/// or the default) and when the count disabled it.
fn pipelines(state: &SimState) -> serde_json::Value {
    let now = state.clock.now();
    let store = crate::sync::read(&state.store);
    let out: Vec<serde_json::Value> = store
        .pipelines()
        .filter_map(|p| {
            let st = store.pipeline_state(&p.arn, now)?;
            let recipe = p
                .image_recipe_arn
                .as_deref()
                .or(p.container_recipe_arn.as_deref());
            Some(serde_json::json!({
                "arn": p.arn,
                "name": p.name,
                "recipeArn": recipe,
                "status": st.status,
                "consecutiveFailures": st.consecutive_failures,
                "failureCount": p.schedule.as_ref().and_then(|s| s.failure_count),
                "disablesAt": p.failure_limit(),
                "disabledByHand": p.disabled_by_hand,
                "lastRunStatus": st.last_run_status,
                "dateNextRun": st.next_run.map(crate::timestamp::format_rfc3339_millis),
                "disabledAt": st.disabled_at.map(crate::timestamp::format_rfc3339_millis),
                "disabledAtEpochSeconds": st.disabled_at.map(crate::clock::secs),
            }))
        })
        .collect();
    serde_json::Value::Array(out)
}

pub(crate) async fn handle(
    state: &Arc<SimState>,
    path: String,
    req: Request<Incoming>,
) -> Response<Body> {
    let json = |v: serde_json::Value| {
        respond(
            200,
            "application/json",
            serde_json::to_vec(&v).unwrap_or_default(),
        )
    };
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "calls") => json(serde_json::json!(crate::sync::lock(&state.calls)
            .by_operation()
            .clone())),
        (Method::GET, "calls/scopes") => {
            let scopes = crate::sync::lock(&state.calls).by_scope();
            let rows: Vec<serde_json::Value> = scopes
                .into_iter()
                .map(|(s, calls)| {
                    serde_json::json!({
                        "account": s.account,
                        "region": s.region,
                        "operation": s.operation,
                        "calls": calls,
                    })
                })
                .collect();
            json(serde_json::Value::Array(rows))
        }
        (Method::DELETE, "calls") => {
            crate::sync::lock(&state.calls).clear();
            json(serde_json::json!({}))
        }
        (Method::GET, "faults") => json(serde_json::json!(state.faults())),
        (Method::GET, "failures") => json(failures(state)),
        (Method::GET, "pipelines") => json(pipelines(state)),
        (Method::PUT, "faults") => {
            let body = match Limited::new(req.into_body(), 1 << 16).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return respond(400, "text/plain", "unreadable body\n"),
            };
            match serde_json::from_slice::<Faults>(&body) {
                Ok(f) => {
                    *crate::sync::write(&state.faults) = f.clone();
                    json(serde_json::json!(f))
                }
                Err(e) => respond(400, "text/plain", format!("invalid faults: {e}\n")),
            }
        }
        (method, p) if p.starts_with("queues/") => queue(state, method, p, req).await,
        (method, p) if p == "organization" || p.starts_with("organization/") => {
            let sim = Simulator {
                state: state.clone(),
            };
            organization(&sim, method, p, req).await
        }
        _ => respond(404, "text/plain", "unknown simulator control endpoint\n"),
    }
}

async fn queue(
    state: &SimState,
    method: Method,
    path: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let rest = path.trim_start_matches("queues/");
    let (name, what) = rest.split_once('/').unwrap_or((rest, ""));
    let name = name.to_string();
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let body = match (&method, what) {
        (&Method::POST, "messages") | (&Method::PUT, "fault") => {
            // 256 KiB: the largest message SQS takes.
            match Limited::new(req.into_body(), 256 * 1024).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return respond(400, "text/plain", "unreadable body\n"),
            }
        }
        _ => Default::default(),
    };
    let missing = || respond(404, "text/plain", format!("no queue {name}\n"));
    let json = |v: serde_json::Value| respond(200, "application/json", v.to_string());
    match (method, what) {
        (Method::GET, "") => match state.queues.stats(&name) {
            Some(stats) => {
                let mut v = serde_json::json!(stats);
                if let Some(h) = host {
                    v["url"] = serde_json::json!(crate::queue_url(&format!("http://{h}"), &name));
                }
                json(v)
            }
            None => missing(),
        },
        (Method::POST, "messages") => {
            let body = String::from_utf8_lossy(&body).into_owned();
            match state.queues.send(&name, body, state.clock.now()) {
                Some(id) => json(serde_json::json!({ "MessageId": id })),
                None => missing(),
            }
        }
        (Method::PUT, "fault") => {
            #[derive(serde::Deserialize)]
            struct Body {
                fault: Option<QueueFault>,
            }
            let fault = match serde_json::from_slice::<Body>(&body) {
                Ok(b) => b.fault,
                Err(e) => return respond(400, "text/plain", format!("invalid fault: {e}\n")),
            };
            match state.queues.with(&name, |q| q.fault = fault) {
                Some(()) => json(serde_json::json!({ "fault": fault })),
                None => missing(),
            }
        }
        _ => respond(404, "text/plain", "unknown simulator queue endpoint\n"),
    }
}

/// A body to join an account with: the account, and the Regions it has
/// builds in (`builds` finished builds over `images` images in each, as
/// `scenario::sized` makes them, 20 and 5 by default).
#[derive(Deserialize)]
struct Join {
    id: String,
    name: String,
    email: Option<String>,
    state: Option<AccountState>,
    joined_method: Option<JoinedMethod>,
    #[serde(default)]
    regions: Vec<String>,
    builds: Option<usize>,
    images: Option<usize>,
}

/// The organisation's controls:
///
/// - `GET organization`: its ID, accounts and fault;
/// - `PUT organization/fault` `{"fault": "access_denied" |
///   "too_many_requests" | "not_in_use" | "service_exception" | null}`;
/// - `POST organization/accounts` ([`Join`]): an account joins;
/// - `DELETE organization/accounts/{id}`: it leaves;
/// - `PUT organization/accounts/{id}/state` `{"state": "SUSPENDED"}` (any
///   `AccountState`);
/// - `PUT organization/accounts/{id}/role` `{"denied": true | false}`: its
///   member role denies the exporter, or trusts it again.
async fn organization(
    sim: &Simulator,
    method: Method,
    path: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let body = match Limited::new(req.into_body(), 1 << 16).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return respond(400, "text/plain", "unreadable body\n"),
    };
    let json = |v: serde_json::Value| respond(200, "application/json", v.to_string());
    let bad = |e: String| respond(400, "text/plain", format!("{e}\n"));
    let missing = |id: &str| respond(404, "text/plain", format!("no member account {id}\n"));
    let rest = path
        .trim_start_matches("organization")
        .trim_start_matches('/');
    let parts: Vec<&str> = rest.split('/').collect();
    match (method, parts.as_slice()) {
        (Method::GET, [""]) => {
            let state = crate::sync::read(&sim.state.org);
            let accounts: Vec<serde_json::Value> = state
                .listed()
                .iter()
                .map(|a| state.account_json(a))
                .collect();
            json(serde_json::json!({
                "id": state.id,
                "accounts": accounts,
                "fault": state.fault,
            }))
        }
        (Method::PUT, ["fault"]) => {
            #[derive(Deserialize)]
            struct Fault {
                fault: Option<OrgFault>,
            }
            match serde_json::from_slice::<Fault>(&body) {
                Ok(f) => {
                    sim.set_organization_fault(f.fault);
                    json(serde_json::json!({ "fault": f.fault }))
                }
                Err(e) => bad(format!("invalid fault: {e}")),
            }
        }
        (Method::POST, ["accounts"]) => {
            let j = match serde_json::from_slice::<Join>(&body) {
                Ok(j) => j,
                Err(e) => return bad(format!("invalid account: {e}")),
            };
            let now = sim.state.clock.now();
            let mut account = SimAccount::new(&j.id, &j.name, now);
            if let Some(e) = j.email {
                account.email = e;
            }
            account.state = j.state.unwrap_or(account.state);
            account.joined_method = j.joined_method.unwrap_or(account.joined_method);
            let seed = j.id.parse::<u64>().unwrap_or(0);
            let stores: Vec<(String, crate::Store)> = j
                .regions
                .iter()
                .map(|region| {
                    let store = crate::scenario::sized_with(
                        now,
                        j.builds.unwrap_or(20),
                        j.images.unwrap_or(5),
                        0,
                        20 * 3600 * crate::clock::NANOS_PER_SEC,
                        seed ^ region.bytes().fold(0, |h, b| h * 31 + u64::from(b)),
                        |b| crate::scenario::relocate(b, &j.id, region),
                    );
                    (region.clone(), store)
                })
                .collect();
            match sim.join_account(account.clone(), stores) {
                Ok(()) => json(serde_json::json!(account)),
                Err(e) => bad(e),
            }
        }
        (Method::DELETE, ["accounts", id]) => {
            if sim.leave_account(id) {
                json(serde_json::json!({ "left": id }))
            } else {
                missing(id)
            }
        }
        (Method::PUT, ["accounts", id, "state"]) => {
            #[derive(Deserialize)]
            struct State {
                state: AccountState,
            }
            match serde_json::from_slice::<State>(&body) {
                Ok(s) if sim.set_account_state(id, s.state) => {
                    json(serde_json::json!({ "id": id, "state": s.state }))
                }
                Ok(_) => missing(id),
                Err(e) => bad(format!("invalid state: {e}")),
            }
        }
        (Method::PUT, ["accounts", id, "role"]) => {
            #[derive(Deserialize)]
            struct Role {
                denied: bool,
            }
            let Some(arn) = sim.member_role_arn(id) else {
                return bad("no member role is set".into());
            };
            match serde_json::from_slice::<Role>(&body) {
                Ok(r) => {
                    if r.denied {
                        sim.deny_role(&arn);
                    } else {
                        sim.undeny_role(&arn);
                    }
                    json(serde_json::json!({ "role_arn": arn, "denied": r.denied }))
                }
                Err(e) => bad(format!("invalid role: {e}")),
            }
        }
        _ => respond(
            404,
            "text/plain",
            "unknown simulator organization endpoint\n",
        ),
    }
}

//! Control endpoints under `/_sim/`, for tests that run the simulator as a
//! separate process: read and reset call counts, read and set faults.

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use super::faults::Faults;
use super::SimState;
use crate::httpserve::{respond, Chunks};

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
                    .and_then(|e| crate::timestamp::parse_rfc3339(e).ok());
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

pub(crate) async fn handle(
    state: &SimState,
    path: String,
    req: Request<Incoming>,
) -> Response<Chunks> {
    let json = |v: serde_json::Value| {
        respond(
            200,
            "application/json",
            serde_json::to_vec(&v).unwrap_or_default(),
        )
    };
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "calls") => json(serde_json::json!(crate::sync::lock(&state.calls).clone())),
        (Method::DELETE, "calls") => {
            crate::sync::lock(&state.calls).clear();
            json(serde_json::json!({}))
        }
        (Method::GET, "faults") => json(serde_json::json!(state.faults())),
        (Method::GET, "failures") => json(failures(state)),
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
        _ => respond(404, "text/plain", "unknown simulator control endpoint\n"),
    }
}

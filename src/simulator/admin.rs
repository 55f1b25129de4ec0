//! Control endpoints under `/_sim/`, for tests that run the simulator as a
//! separate process: read and reset call counts, read and set faults.

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use super::faults::Faults;
use super::SimState;
use crate::httpserve::{respond, Chunks};

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
        (Method::GET, "calls") => json(serde_json::json!(super::lock(&state.calls).clone())),
        (Method::DELETE, "calls") => {
            super::lock(&state.calls).clear();
            json(serde_json::json!({}))
        }
        (Method::GET, "faults") => json(serde_json::json!(state.faults())),
        (Method::PUT, "faults") => {
            let body = match Limited::new(req.into_body(), 1 << 16).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return respond(400, "text/plain", "unreadable body\n"),
            };
            match serde_json::from_slice::<Faults>(&body) {
                Ok(f) => {
                    *state.faults.write().unwrap_or_else(|e| e.into_inner()) = f.clone();
                    json(serde_json::json!(f))
                }
                Err(e) => respond(400, "text/plain", format!("invalid faults: {e}\n")),
            }
        }
        _ => respond(404, "text/plain", "unknown simulator control endpoint\n"),
    }
}

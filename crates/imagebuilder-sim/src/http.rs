//! The simulator's wire protocol: Image Builder's rest-json, as the service
//! model describes it (paths, query strings, JSON shapes, string times,
//! pagination, and errors with `x-amzn-ErrorType` and `{"message": …}`).

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{json, Map, Value};

use crate::constraints::{
    Shape, IMAGE_BUILD_VERSION_ARN, WORKFLOW_EXECUTION_ID, WORKFLOW_STEP_EXECUTION_ID,
};
use crate::faults::{damage, BadAnswer, Faults};
use crate::pipelines::{filters_match, parse_filters};
use crate::serve::{respond, Body, HandlerResult};
use crate::shapes::{pipeline_json, step_json, summary_json, workflow_json};
use crate::store::{SimBuild, StepPlan};
use crate::SimState;

/// Page size when `maxResults` is not given, and the largest allowed.
pub const DEFAULT_PAGE: usize = 25;
pub const MAX_PAGE: usize = 100;

/// An error answer as the service sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl SimError {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: "InvalidRequestException",
            message: message.into(),
        }
    }
}

/// The operations served.
pub const OPERATIONS: [&str; 7] = [
    "ListImageBuildVersions",
    "ListImagePipelines",
    "ListWorkflowExecutions",
    "ListWorkflowStepExecutions",
    "GetWorkflowStepExecution",
    "GetWorkflowExecution",
    "ListWaitingWorkflowSteps",
];

fn operation(method: &Method, path: &str) -> Option<&'static str> {
    let op = OPERATIONS
        .iter()
        .find(|o| path.strip_prefix('/') == Some(**o))?;
    let expected = if op.starts_with("Get") {
        Method::GET
    } else {
        Method::POST
    };
    (*method == expected).then_some(*op)
}

pub(crate) async fn handle(state: Arc<SimState>, req: Request<Incoming>) -> HandlerResult {
    let path = req.uri().path().to_string();
    if let Some(admin) = path.strip_prefix("/_sim/") {
        return Ok(crate::admin::handle(&state, admin.to_string(), req).await);
    }
    let sqs = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("AmazonSQS."));
    let organizations = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with(crate::organizations::TARGET_PREFIX));
    if path == "/" && req.method() == Method::POST && sqs {
        // SQS speaks AWS JSON 1.0 on `/`, told apart by its target.
        return Ok(crate::sqs::handle(state, req).await);
    }
    if path == "/" && req.method() == Method::POST && organizations {
        // Organizations speaks AWS JSON 1.1 on `/`, told apart likewise.
        return Ok(crate::organizations::handle(state, req).await);
    }
    if path == "/" && req.method() == Method::POST {
        // STS speaks the query protocol on `/`.
        let region = crate::credential_scope(req.headers()).1.to_string();
        return Ok(
            match Limited::new(req.into_body(), 1 << 16).collect().await {
                Ok(b) => crate::sts::handle(&state, &region, &b.to_bytes()),
                Err(_) => error_response(&state, &SimError::invalid("request body unreadable")),
            },
        );
    }
    let Some(op) = operation(req.method(), &path) else {
        return Ok(error_response(
            &state,
            &SimError {
                status: 404,
                code: "UnknownOperationException",
                message: format!("{} {path} is not an operation", req.method()),
            },
        ));
    };
    let signer = state.record_call(op, req.headers());
    if state.session_expired(req.headers()) {
        // What Image Builder answers to a request signed with an expired
        // session token.
        return Ok(error_response(
            &state,
            &SimError {
                status: 403,
                code: "ExpiredTokenException",
                message: "The security token included in the request is expired".into(),
            },
        ));
    }
    // The signing account's standing in the organisation: a member that
    // is not ACTIVE is refused, as AWS refuses an account not in good
    // standing (see `org.rs`); a member has only the stores it was given.
    let (standing, member) = {
        let org = crate::sync::read(&state.org);
        (
            org.state_of(signer.account()),
            org.is_member(signer.account()),
        )
    };
    if standing.is_some_and(|s| s != crate::org::AccountState::Active) {
        return Ok(error_response(
            &state,
            &SimError {
                status: 400,
                code: "SubscriptionRequiredException",
                message: "The AWS Access Key Id needs a subscription for the service".into(),
            },
        ));
    }
    let query = req.uri().query().unwrap_or_default().to_string();
    let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(error_response(
                &state,
                &SimError::invalid("request body unreadable"),
            ))
        }
    };

    let faults = state.faults();
    let affected = faults.applies_to(op);
    if affected && !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    if affected {
        if let Some(mut e) = injected_error(&state, &faults) {
            if faults.bad_answer == Some(BadAnswer::LongMessages) {
                e.message = format!("{} {}", e.message, "x".repeat(500));
            }
            return Ok(error_response(&state, &e));
        }
    }
    let bad = affected
        .then_some(faults.bad_answer)
        .flatten()
        .filter(|_| state.roll(faults.bad_answer_ratio));
    if bad == Some(BadAnswer::ConnectionReset) {
        return Err(crate::serve::CloseConnection);
    }

    let input = match parse_input(op, &query, &body) {
        Ok(v) => v,
        Err(e) => return Ok(error_response(&state, &e)),
    };
    let answer = {
        let default = crate::sync::read(&state.store);
        let accounts = crate::sync::read(&state.accounts);
        // The store added for the signing account and Region; else, for
        // a member of the organisation, nothing; else the default store.
        let added = accounts
            .get(signer.account())
            .and_then(|regions| regions.get(&signer.region));
        let store = added
            .or_else(|| member.then_some(&state.empty))
            .unwrap_or(&default);
        let now = state.clock.now();
        let ctx = Ctx { store, now, bad };
        match op {
            "ListImageBuildVersions" => list_builds(&ctx, &input),
            "ListImagePipelines" => list_pipelines(&ctx, &input),
            "ListWorkflowExecutions" => list_workflows(&ctx, &input),
            "ListWorkflowStepExecutions" => list_steps(&ctx, &input),
            "GetWorkflowStepExecution" => get_step(&ctx, &input),
            "GetWorkflowExecution" => get_workflow(&ctx, &input),
            _ => list_waiting(&ctx, &input),
        }
    };
    match answer {
        Ok(mut v) => {
            let request_id = state.request_id();
            if let Value::Object(m) = &mut v {
                m.insert("requestId".into(), json!(request_id));
            }
            if let Some(b) = bad {
                damage(&mut v, b);
            }
            let mut bytes = serde_json::to_vec(&v).unwrap_or_default();
            match bad {
                Some(BadAnswer::MalformedJson) => {
                    bytes = b"{\"requestId\": \"x\", \"items\": [{,}".to_vec()
                }
                Some(BadAnswer::TruncatedBody) => bytes.truncate(bytes.len() / 2),
                _ => {}
            }
            let mut r = respond(200, "application/json", bytes);
            set_request_id(&mut r, &request_id);
            Ok(r)
        }
        Err(e) => Ok(error_response(&state, &e)),
    }
}

fn injected_error(state: &SimState, f: &Faults) -> Option<SimError> {
    if state.roll(f.throttle_ratio) {
        return Some(SimError {
            status: 429,
            code: "CallRateLimitExceededException",
            message: "Rate exceeded".into(),
        });
    }
    if state.roll(f.server_error_ratio) {
        return Some(if state.roll(0.5) {
            SimError {
                status: 503,
                code: "ServiceUnavailableException",
                message: "Service is unavailable, please try again".into(),
            }
        } else {
            SimError {
                status: 500,
                code: "ServiceException",
                message: "An internal error occurred".into(),
            }
        });
    }
    None
}

fn set_request_id(r: &mut Response<Body>, id: &str) {
    if let Ok(v) = hyper::header::HeaderValue::from_str(id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
}

pub(crate) fn error_response(state: &SimState, e: &SimError) -> Response<Body> {
    let body = serde_json::to_vec(&json!({ "message": e.message })).unwrap_or_default();
    let mut r = respond(e.status, "application/json", body);
    r.headers_mut().insert(
        "x-amzn-errortype",
        hyper::header::HeaderValue::from_static(e.code),
    );
    set_request_id(&mut r, &state.request_id());
    r
}

/// The request's parameters, from the JSON body or the query string.
fn parse_input(op: &str, query: &str, body: &[u8]) -> Result<Map<String, Value>, SimError> {
    if op.starts_with("Get") {
        let mut m = Map::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            m.insert(k.into_owned(), Value::String(v.into_owned()));
        }
        return Ok(m);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(SimError {
            status: 400,
            code: "ClientException",
            message: "The request body is not a JSON object".into(),
        }),
    }
}

struct Ctx<'a> {
    store: &'a crate::store::Store,
    now: crate::clock::Nanos,
    bad: Option<BadAnswer>,
}

/// The required string parameter `name`, which must satisfy `shape`.
fn string_param<'a>(
    input: &'a Map<String, Value>,
    name: &str,
    shape: &Shape,
) -> Result<&'a str, SimError> {
    let v = input
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| SimError::invalid(format!("1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null")))?;
    if let Some(constraint) = shape.violation(v) {
        return Err(SimError::invalid(format!(
            "1 validation error detected: Value '{v}' at '{name}' failed to satisfy constraint: {constraint}"
        )));
    }
    Ok(v)
}

/// Cuts a full listing into the page asked for.
fn paginate(
    op: &str,
    items: Vec<Value>,
    input: &Map<String, Value>,
    bad: Option<BadAnswer>,
) -> Result<(Vec<Value>, Option<String>), SimError> {
    let size = match input.get("maxResults") {
        None | Some(Value::Null) => DEFAULT_PAGE,
        Some(v) => match v.as_i64() {
            Some(n) if (1..=MAX_PAGE as i64).contains(&n) => n as usize,
            _ => {
                return Err(SimError::invalid(format!(
                    "1 validation error detected: Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {MAX_PAGE}"
                )))
            }
        },
    };
    let offset = match input.get("nextToken").and_then(Value::as_str) {
        None => 0,
        Some("REPEAT") if bad == Some(BadAnswer::RepeatingToken) => 0,
        Some(t) => decode_token(op, t).ok_or_else(|| SimError {
            status: 400,
            code: "InvalidPaginationTokenException",
            message: "The nextToken is not valid".into(),
        })?,
    };
    let size = if bad == Some(BadAnswer::OversizedPage) {
        size * 2
    } else {
        size
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    let next = if bad == Some(BadAnswer::RepeatingToken) {
        Some("REPEAT".to_string())
    } else {
        (offset + size < total).then(|| encode_token(op, offset + size))
    };
    Ok((page, next))
}

/// Tokens are opaque to clients: an obfuscated offset with a check.
fn encode_token(op: &str, offset: usize) -> String {
    let salt = op
        .bytes()
        .fold(0x9e37_79b9u64, |h, b| h.rotate_left(5) ^ u64::from(b));
    let v = (offset as u64) ^ salt;
    format!(
        "AQ{v:016x}{:08x}",
        (v.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    )
}

fn decode_token(op: &str, t: &str) -> Option<usize> {
    let hex = t.strip_prefix("AQ")?;
    if hex.len() != 24 {
        return None;
    }
    let v = u64::from_str_radix(&hex[..16], 16).ok()?;
    let check = u32::from_str_radix(&hex[16..], 16).ok()?;
    if check != (v.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32 {
        return None;
    }
    let salt = op
        .bytes()
        .fold(0x9e37_79b9u64, |h, b| h.rotate_left(5) ^ u64::from(b));
    Some((v ^ salt) as usize)
}

fn list_builds(ctx: &Ctx, input: &Map<String, Value>) -> Result<Value, SimError> {
    let filter = input.get("imageVersionArn").and_then(Value::as_str);
    let items: Vec<Value> = ctx
        .store
        .visible(ctx.now)
        .filter(|b| filter.is_none_or(|f| b.arn.rsplit_once('/').map(|x| x.0) == Some(f)))
        .map(|b| summary_json(b, ctx.now))
        .collect();
    let (page, next) = paginate("ListImageBuildVersions", items, input, ctx.bad)?;
    let mut out = json!({ "imageSummaryList": page });
    if let Some(t) = next {
        out["nextToken"] = json!(t);
    }
    Ok(out)
}

/// The pipelines of the signing account's store that pass the `filters`,
/// in ARN order.
fn list_pipelines(ctx: &Ctx, input: &Map<String, Value>) -> Result<Value, SimError> {
    let filters = parse_filters(input.get("filters")).map_err(SimError::invalid)?;
    let items: Vec<Value> = ctx
        .store
        .pipelines()
        .filter_map(|p| {
            Some(pipeline_json(
                p,
                &ctx.store.pipeline_state(&p.arn, ctx.now)?,
            ))
        })
        .filter(|v| filters_match(v, &filters))
        .collect();
    let (page, next) = paginate("ListImagePipelines", items, input, ctx.bad)?;
    let mut out = json!({ "imagePipelineList": page });
    if let Some(t) = next {
        out["nextToken"] = json!(t);
    }
    Ok(out)
}

fn find_build<'a>(ctx: &Ctx<'a>, arn: &str) -> Result<&'a SimBuild, SimError> {
    ctx.store
        .build(arn, ctx.now)
        .ok_or_else(|| SimError::invalid(format!("The image build version {arn} does not exist")))
}

fn list_workflows(ctx: &Ctx, input: &Map<String, Value>) -> Result<Value, SimError> {
    let arn = string_param(input, "imageBuildVersionArn", &IMAGE_BUILD_VERSION_ARN)?;
    let b = find_build(ctx, arn)?;
    let items = b
        .workflow_states(ctx.now)
        .iter()
        .map(|(w, st)| workflow_json(w, st))
        .collect();
    let (page, next) = paginate("ListWorkflowExecutions", items, input, ctx.bad)?;
    let mut out = json!({ "workflowExecutions": page, "imageBuildVersionArn": arn, "message": "" });
    if let Some(t) = next {
        out["nextToken"] = json!(t);
    }
    Ok(out)
}

/// A workflow execution that has started, with its build and state.
fn started_workflow<'a>(
    ctx: &Ctx<'a>,
    id: &str,
) -> Result<(&'a SimBuild, usize, crate::store::WorkflowState), SimError> {
    let not_found = || SimError::invalid(format!("The workflow execution {id} does not exist"));
    let (b, wi) = ctx.store.workflow(id).ok_or_else(not_found)?;
    if b.date_created > ctx.now {
        return Err(not_found());
    }
    let states = b.workflow_states(ctx.now);
    let st = states
        .into_iter()
        .nth(wi)
        .map(|(_, s)| s)
        .ok_or_else(not_found)?;
    Ok((b, wi, st))
}

fn list_steps(ctx: &Ctx, input: &Map<String, Value>) -> Result<Value, SimError> {
    let id = string_param(input, "workflowExecutionId", &WORKFLOW_EXECUTION_ID)?;
    let (b, wi, st) = started_workflow(ctx, id)?;
    let w = &b.workflows[wi];
    let items = w
        .steps
        .iter()
        .zip(&st.steps)
        .map(|(s, ss)| Value::Object(step_json(s, ss)))
        .collect();
    let (page, next) = paginate("ListWorkflowStepExecutions", items, input, ctx.bad)?;
    let mut out = json!({
        "steps": page,
        "workflowBuildVersionArn": w.arn,
        "workflowExecutionId": w.id,
        "imageBuildVersionArn": b.arn,
        "message": "",
    });
    if let Some(t) = next {
        out["nextToken"] = json!(t);
    }
    Ok(out)
}

fn get_workflow(ctx: &Ctx, input: &Map<String, Value>) -> Result<Value, SimError> {
    let id = string_param(input, "workflowExecutionId", &WORKFLOW_EXECUTION_ID)?;
    let (b, wi, st) = started_workflow(ctx, id)?;
    let mut v = workflow_json(&b.workflows[wi], &st);
    v["imageBuildVersionArn"] = json!(b.arn);
    v["message"] = json!("");
    Ok(v)
}

fn get_step(ctx: &Ctx, input: &Map<String, Value>) -> Result<Value, SimError> {
    let id = string_param(input, "stepExecutionId", &WORKFLOW_STEP_EXECUTION_ID)?;
    let not_found =
        || SimError::invalid(format!("The workflow step execution {id} does not exist"));
    let (b, wi, si) = ctx.store.step(id).ok_or_else(not_found)?;
    let w = &b.workflows[wi];
    let (_, _, st) = started_workflow(ctx, &w.id).map_err(|_| not_found())?;
    let s = &w.steps[si];
    let mut m = step_json(s, &st.steps[si]);
    m.insert("workflowBuildVersionArn".into(), json!(w.arn));
    m.insert("workflowExecutionId".into(), json!(w.id));
    m.insert("imageBuildVersionArn".into(), json!(b.arn));
    m.insert("onFailure".into(), json!(s.on_failure));
    if let Some(t) = s.timeout_seconds {
        m.insert("timeoutSeconds".into(), json!(t));
    }
    Ok(Value::Object(m))
}

fn list_waiting(ctx: &Ctx, input: &Map<String, Value>) -> Result<Value, SimError> {
    let mut items = Vec::new();
    for b in ctx.store.visible(ctx.now) {
        for (w, st) in b.workflow_states(ctx.now) {
            for (s, ss) in w.steps.iter().zip(&st.steps) {
                let waits = matches!(
                    s.plan,
                    StepPlan::Timed {
                        running_status: "WAITING",
                        ..
                    }
                ) || ss.status == "WAITING";
                if waits && ss.status == "WAITING" {
                    let mut m = Map::new();
                    m.insert("stepExecutionId".into(), json!(s.id));
                    m.insert("imageBuildVersionArn".into(), json!(b.arn));
                    m.insert("workflowExecutionId".into(), json!(w.id));
                    m.insert("workflowBuildVersionArn".into(), json!(w.arn));
                    m.insert("name".into(), json!(s.name));
                    m.insert("action".into(), json!(s.action));
                    if let Some(t) = &ss.start {
                        m.insert("startTime".into(), json!(t));
                    }
                    items.push(Value::Object(m));
                }
            }
        }
    }
    let (page, next) = paginate("ListWaitingWorkflowSteps", items, input, ctx.bad)?;
    let mut out = json!({ "steps": page });
    if let Some(t) = next {
        out["nextToken"] = json!(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_forgeries() {
        let t = encode_token("ListImageBuildVersions", 125);
        assert_eq!(decode_token("ListImageBuildVersions", &t), Some(125));
        assert_ne!(decode_token("ListWorkflowExecutions", &t), Some(125));
        assert_eq!(
            decode_token("ListImageBuildVersions", "AQ0000000000000000deadbeef"),
            None
        );
        assert_eq!(decode_token("ListImageBuildVersions", "25"), None);
    }

    #[test]
    fn routes_by_method_and_path() {
        assert_eq!(
            operation(&Method::POST, "/ListWorkflowStepExecutions"),
            Some("ListWorkflowStepExecutions")
        );
        assert_eq!(
            operation(&Method::GET, "/GetWorkflowStepExecution"),
            Some("GetWorkflowStepExecution")
        );
        assert_eq!(operation(&Method::GET, "/ListWorkflowStepExecutions"), None);
        assert_eq!(operation(&Method::POST, "/Nope"), None);
    }

    #[test]
    fn decodes_query_values() {
        let m = parse_input(
            "GetWorkflowStepExecution",
            "stepExecutionId=step-1%2Fa+b&x=100%",
            b"",
        )
        .unwrap();
        assert_eq!(m["stepExecutionId"], "step-1/a b");
        assert_eq!(m["x"], "100%");
    }

    #[test]
    fn pages_follow_the_model() {
        let items: Vec<Value> = (0..130).map(|i| json!(i)).collect();
        let mut input = Map::new();
        let (p, next) = paginate("X", items.clone(), &input, None).unwrap();
        assert_eq!(p.len(), 25);
        input.insert("maxResults".into(), json!(100));
        input.insert("nextToken".into(), json!(next.unwrap()));
        let (p, next) = paginate("X", items.clone(), &input, None).unwrap();
        assert_eq!((p.len(), p[0].clone()), (100, json!(25)));
        input.insert("nextToken".into(), json!(next.unwrap()));
        let (p, next) = paginate("X", items.clone(), &input, None).unwrap();
        assert_eq!((p.len(), next), (5, None));
        input.insert("maxResults".into(), json!(101));
        assert_eq!(
            paginate("X", items, &input, None).unwrap_err().code,
            "InvalidRequestException"
        );
    }
}

//! AWS Organizations over the protocol the SDK speaks to it (botocore's
//! `organizations` model, 2016-11-28): AWS JSON 1.1, `POST /` with
//! `X-Amz-Target: AWSOrganizationsV20161128.<Operation>` and `Content-Type:
//! application/x-amz-json-1.1`. Errors carry their shape's name in
//! `__type` and a `Message`, with HTTP 400 (500 for the model's one
//! `fault`, `ServiceException`).
//!
//! Served: `ListAccounts` (the organisation of `org.rs`), with `MaxResults`
//! from 1 to 20 (20 when absent: the model gives no default, and the
//! simulator chooses the largest page) and opaque `NextToken`s. Only the
//! management account (requests not signed with an assumed role's
//! credentials, or signed with a role of account 123456789012) and
//! delegated administrators may call it: another member is denied, an
//! account outside the organisation is told it is in none.

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Map, Value};

use crate::org::{decode_token, encode_token, OrgFault, Refusal};
use crate::serve::{respond, Body};
use crate::SimState;

pub(crate) const TARGET_PREFIX: &str = "AWSOrganizationsV20161128.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// `MaxResults`' bounds in the model, and the page when it is absent.
pub const MAX_RESULTS: i64 = 20;
pub const DEFAULT_PAGE: usize = 20;
/// `NextToken`'s longest value in the model.
const MAX_TOKEN_LEN: usize = 100_000;

/// An error answer: HTTP status, the `__type`, the message, and
/// `InvalidInputException`'s `Reason`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrgError {
    status: u16,
    code: &'static str,
    message: String,
    reason: Option<&'static str>,
}

impl OrgError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code,
            message: message.into(),
            reason: None,
        }
    }

    fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason: Some(reason),
            ..Self::new("InvalidInputException", message)
        }
    }

    fn access_denied() -> Self {
        Self::new(
            "AccessDeniedException",
            "You don't have permissions to access this resource.",
        )
    }

    fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", message)
    }
}

impl From<Refusal> for OrgError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotAllowed | Refusal::Fault(OrgFault::AccessDenied) => Self::access_denied(),
            Refusal::NotAMember | Refusal::Fault(OrgFault::NotInUse) => Self::new(
                "AWSOrganizationsNotInUseException",
                "Your account is not a member of an organization.",
            ),
            Refusal::Fault(OrgFault::TooManyRequests) => Self::new(
                "TooManyRequestsException",
                "You have sent too many requests in too short a period of time. Try again later.",
            ),
            Refusal::Fault(OrgFault::ServiceException) => Self {
                status: 500,
                ..Self::new(
                    "ServiceException",
                    "AWS Organizations can't complete your request because of an internal service error. Try again later.",
                )
            },
        }
    }
}

fn error_response(state: &SimState, e: &OrgError) -> Response<Body> {
    let mut body = json!({ "__type": e.code, "Message": e.message });
    if let Some(r) = e.reason {
        body["Reason"] = json!(r);
    }
    if e.code == "TooManyRequestsException" {
        body["Type"] = json!("TooManyRequests");
    }
    let mut r = respond(
        e.status,
        CONTENT_TYPE,
        serde_json::to_vec(&body).unwrap_or_default(),
    );
    set_request_id(&mut r, &state.request_id());
    r
}

fn set_request_id(r: &mut Response<Body>, id: &str) {
    if let Ok(v) = hyper::header::HeaderValue::from_str(id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
}

/// Answers `POST /` with an `X-Amz-Target` of `AWSOrganizationsV20161128.*`.
pub(crate) async fn handle(state: Arc<SimState>, req: Request<Incoming>) -> Response<Body> {
    let op = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .unwrap_or_default()
        .to_string();
    let signer = state.record_call(&op, req.headers());
    let caller = signer.account();
    if state.session_expired(req.headers()) {
        let e = OrgError::new(
            "ExpiredTokenException",
            "The security token included in the request is expired",
        );
        return error_response(&state, &e);
    }
    let json_1_1 = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(CONTENT_TYPE));
    let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let e = OrgError::serialization("The request body is unreadable");
            return error_response(&state, &e);
        }
    };
    if !json_1_1 {
        let e = OrgError::serialization(format!("The Content-Type must be {CONTENT_TYPE}"));
        return error_response(&state, &e);
    }
    let input = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            let e = OrgError::serialization("The request body is not a JSON object");
            return error_response(&state, &e);
        }
    };
    let answer = match op.as_str() {
        "ListAccounts" => list_accounts(&state, caller, &input),
        _ => Err(OrgError::new(
            "UnknownOperationException",
            format!("The simulator does not serve {TARGET_PREFIX}{op}"),
        )),
    };
    match answer {
        Ok(v) => {
            let mut r = respond(
                200,
                CONTENT_TYPE,
                serde_json::to_vec(&v).unwrap_or_default(),
            );
            set_request_id(&mut r, &state.request_id());
            r
        }
        Err(e) => error_response(&state, &e),
    }
}

/// `MaxResults`: absent, or an integer from 1 to 20.
fn max_results(input: &Map<String, Value>) -> Result<usize, OrgError> {
    let Some(v) = input.get("MaxResults").filter(|v| !v.is_null()) else {
        return Ok(DEFAULT_PAGE);
    };
    let n = v
        .as_i64()
        .ok_or_else(|| OrgError::serialization(format!("MaxResults: {v} is not an integer")))?;
    if n < 1 {
        return Err(OrgError::invalid(
            "MIN_VALUE_EXCEEDED",
            format!("You provided a value that is less than the minimum: MaxResults must be at least 1, not {n}."),
        ));
    }
    if n > MAX_RESULTS {
        return Err(OrgError::invalid(
            "MAX_VALUE_EXCEEDED",
            format!("You provided a value that is greater than the maximum: MaxResults must be at most {MAX_RESULTS}, not {n}."),
        ));
    }
    Ok(n as usize)
}

fn list_accounts(
    state: &SimState,
    caller: &str,
    input: &Map<String, Value>,
) -> Result<Value, OrgError> {
    // The request's shape first, then who asks, then the token (which
    // only the organisation can read).
    let size = max_results(input)?;
    let org = crate::sync::read(&state.org);
    org.may_list(caller)?;
    let after = match input.get("NextToken").filter(|v| !v.is_null()) {
        None => None,
        Some(Value::String(t)) if t.chars().count() > MAX_TOKEN_LEN => {
            return Err(OrgError::invalid(
                "MAX_LENGTH_EXCEEDED",
                format!("NextToken must be at most {MAX_TOKEN_LEN} characters."),
            ))
        }
        Some(Value::String(t)) => Some(decode_token(&org.id, t).ok_or_else(|| {
            OrgError::invalid(
                "INVALID_NEXT_TOKEN",
                "The NextToken is not valid: get it from the previous ListAccounts answer.",
            )
        })?),
        Some(v) => {
            return Err(OrgError::serialization(format!(
                "NextToken: {v} is not a string"
            )))
        }
    };
    let (page, more) = org.page(after.as_deref(), size);
    let next = more
        .then(|| page.last().map(|a| encode_token(&org.id, &a.id)))
        .flatten();
    let accounts: Vec<Value> = page.iter().map(|a| org.account_json(a)).collect();
    let mut out = json!({ "Accounts": accounts });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn max_results_as_the_model_bounds_it() {
        assert_eq!(max_results(&input(json!({}))), Ok(20));
        assert_eq!(max_results(&input(json!({"MaxResults": null}))), Ok(20));
        assert_eq!(max_results(&input(json!({"MaxResults": 1}))), Ok(1));
        assert_eq!(max_results(&input(json!({"MaxResults": 20}))), Ok(20));
        let e = max_results(&input(json!({"MaxResults": 21}))).unwrap_err();
        assert_eq!(
            (e.code, e.reason),
            ("InvalidInputException", Some("MAX_VALUE_EXCEEDED"))
        );
        let e = max_results(&input(json!({"MaxResults": 0}))).unwrap_err();
        assert_eq!(e.reason, Some("MIN_VALUE_EXCEEDED"));
        let e = max_results(&input(json!({"MaxResults": "5"}))).unwrap_err();
        assert_eq!(e.code, "SerializationException");
    }

    #[test]
    fn refusals_are_the_model_s_errors() {
        for (r, code, status) in [
            (Refusal::NotAllowed, "AccessDeniedException", 400),
            (
                Refusal::NotAMember,
                "AWSOrganizationsNotInUseException",
                400,
            ),
            (
                Refusal::Fault(OrgFault::AccessDenied),
                "AccessDeniedException",
                400,
            ),
            (
                Refusal::Fault(OrgFault::TooManyRequests),
                "TooManyRequestsException",
                400,
            ),
            (
                Refusal::Fault(OrgFault::NotInUse),
                "AWSOrganizationsNotInUseException",
                400,
            ),
            (
                Refusal::Fault(OrgFault::ServiceException),
                "ServiceException",
                500,
            ),
        ] {
            let e = OrgError::from(r);
            assert_eq!((e.code, e.status), (code, status), "{r:?}");
        }
    }
}

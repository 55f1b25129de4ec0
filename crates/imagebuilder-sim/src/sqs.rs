//! SQS over the protocol the SDK speaks to it (botocore's `sqs` model,
//! 2012-11-05): AWS JSON 1.0, `POST /` with `X-Amz-Target:
//! AmazonSQS.<Operation>`. The service is `awsQueryCompatible`: an error
//! carries the JSON protocol's `__type` in its body and the old query
//! protocol's code in `x-amzn-query-error: <code>;<Sender|Receiver>`, and
//! the SDK takes its error code from that header. So a missing queue is
//! `__type` `com.amazonaws.sqs#QueueDoesNotExist` but code
//! `AWS.SimpleQueueService.NonExistentQueue` (the SQS developer guide's
//! "Interpreting Amazon SQS JSON API responses" shows this answer), and a
//! denied call is 403 with code `AccessDenied`.
//!
//! Served: `ReceiveMessage` (long polling, visibility timeout),
//! `DeleteMessage`, `DeleteMessageBatch` and `GetQueueAttributes` (the
//! message counts). Queue URLs are `{endpoint}/123456789012/{name}`; the
//! host is not checked, as the SDK sends every call to its endpoint.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Map, Value};

use crate::queue::{QueueFault, Received, DEFAULT_VISIBILITY};
use crate::scenario::{ACCOUNT, REGION};
use crate::serve::{respond, Body};
use crate::SimState;

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// The longest long poll and visibility timeout SQS accepts.
const MAX_WAIT_SECONDS: i64 = 20;
const MAX_VISIBILITY_SECONDS: i64 = 43_200;
/// Most messages one receive returns, and most entries in a batch.
const MAX_BATCH: usize = 10;

/// An error answer: HTTP status, the JSON `__type`, and the query-protocol
/// code of `x-amzn-query-error` (what the SDK reports as `code()`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SqsError {
    status: u16,
    shape: &'static str,
    code: Option<&'static str>,
    message: String,
}

impl SqsError {
    fn new(
        status: u16,
        shape: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            shape,
            code: Some(code),
            message: message.into(),
        }
    }

    fn no_queue() -> Self {
        Self::new(
            400,
            "com.amazonaws.sqs#QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist.",
        )
    }

    /// Not in the model's shapes: the error every AWS service may answer.
    fn unavailable() -> Self {
        Self::new(
            503,
            "com.amazonaws.sqs#ServiceUnavailable",
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
        )
    }

    fn access_denied(op: &str, queue: &str) -> Self {
        Self::new(
            403,
            "com.amazon.coral.service#AccessDeniedException",
            "AccessDenied",
            format!(
                "User: arn:aws:sts::{ACCOUNT}:assumed-role/imagebuilder-exporter/simulated is not authorized to perform: sqs:{} on resource: arn:aws:sqs:{REGION}:{ACCOUNT}:{queue} because no identity-based policy allows the sqs:{} action",
                op.to_ascii_lowercase(),
                op.to_ascii_lowercase()
            ),
        )
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            400,
            "com.amazon.coral.service#InvalidParameterValueException",
            "InvalidParameterValue",
            message,
        )
    }

    fn batch(shape: &'static str, code: &'static str, message: &str) -> Self {
        Self::new(400, shape, code, message)
    }
}

pub(crate) fn error_response(state: &SimState, e: &SqsError) -> Response<Body> {
    let body =
        serde_json::to_vec(&json!({ "__type": e.shape, "message": e.message })).unwrap_or_default();
    let mut r = respond(e.status, CONTENT_TYPE, body);
    if let Some(code) = e.code {
        let fault = if e.status >= 500 {
            "Receiver"
        } else {
            "Sender"
        };
        if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("{code};{fault}")) {
            r.headers_mut().insert("x-amzn-query-error", v);
        }
    }
    set_request_id(&mut r, &state.request_id());
    r
}

fn set_request_id(r: &mut Response<Body>, id: &str) {
    if let Ok(v) = hyper::header::HeaderValue::from_str(id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
}

/// The queue name of a queue URL of the simulated account.
fn queue_name(url: &str) -> Option<&str> {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = &path[path.find('/')?..];
    let name = path.strip_prefix(&format!("/{ACCOUNT}/"))?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// Answers `POST /` with an `X-Amz-Target` of `AmazonSQS.*`.
pub(crate) async fn handle(state: Arc<SimState>, req: Request<Incoming>) -> Response<Body> {
    let op = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("AmazonSQS."))
        .unwrap_or_default()
        .to_string();
    let _ = state.record_call(&op, req.headers());
    let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let e = SqsError {
                status: 400,
                shape: "com.amazon.coral.service#SerializationException",
                code: None,
                message: "request body unreadable".into(),
            };
            return error_response(&state, &e);
        }
    };
    let input = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            let e = SqsError {
                status: 400,
                shape: "com.amazon.coral.service#SerializationException",
                code: None,
                message: "The request body is not a JSON object".into(),
            };
            return error_response(&state, &e);
        }
    };
    match answer(&state, &op, &input).await {
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

async fn answer(state: &SimState, op: &str, input: &Map<String, Value>) -> Result<Value, SqsError> {
    if !matches!(
        op,
        "ReceiveMessage" | "DeleteMessage" | "DeleteMessageBatch" | "GetQueueAttributes"
    ) {
        return Err(SqsError {
            status: 400,
            shape: "com.amazon.coral.service#UnknownOperationException",
            code: None,
            message: format!("The simulator does not serve AmazonSQS.{op}"),
        });
    }
    let url = input
        .get("QueueUrl")
        .and_then(Value::as_str)
        .ok_or_else(|| SqsError::invalid("Value null for parameter QueueUrl is invalid."))?;
    let name = queue_name(url).ok_or_else(|| {
        SqsError::new(
            400,
            "com.amazonaws.sqs#InvalidAddress",
            "InvalidAddress",
            format!("The address {url} is not valid for this endpoint."),
        )
    })?;
    let fault = state.queues.with(name, |q| {
        let fault = q.fault;
        if let Some(QueueFault::Unavailable(n)) = fault {
            q.fault = (n > 1).then_some(QueueFault::Unavailable(n - 1));
        }
        fault
    });
    match fault {
        None | Some(Some(QueueFault::QueueDoesNotExist)) => return Err(SqsError::no_queue()),
        Some(Some(QueueFault::AccessDenied)) => return Err(SqsError::access_denied(op, name)),
        Some(Some(QueueFault::Unavailable(_))) => return Err(SqsError::unavailable()),
        Some(None) => {}
    }
    match op {
        "ReceiveMessage" => receive(state, name, input).await,
        "DeleteMessage" => {
            let handle = input
                .get("ReceiptHandle")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match state.queues.with(name, |q| q.delete(handle)) {
                Some(true) => Ok(json!({})),
                Some(false) => Err(receipt_invalid(handle)),
                None => Err(SqsError::no_queue()),
            }
        }
        "DeleteMessageBatch" => delete_batch(state, name, input),
        _ => attributes(state, name, input),
    }
}

fn receipt_invalid(handle: &str) -> SqsError {
    SqsError::new(
        400,
        "com.amazonaws.sqs#ReceiptHandleIsInvalid",
        "ReceiptHandleIsInvalid",
        format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
    )
}

/// An optional integer parameter within `range`.
fn int_param(
    input: &Map<String, Value>,
    name: &str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, SqsError> {
    let v = match input.get(name) {
        None | Some(Value::Null) => return Ok(default),
        Some(v) => v,
    };
    v.as_i64().filter(|n| range.contains(n)).ok_or_else(|| {
        SqsError::invalid(format!(
            "Value {v} for parameter {name} is invalid. Reason: Must be between {} and {}, if provided.",
            range.start(),
            range.end()
        ))
    })
}

/// The names of a list parameter (`AttributeNames` and the like).
fn names(input: &Map<String, Value>, key: &str) -> Vec<String> {
    input
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

async fn receive(
    state: &SimState,
    name: &str,
    input: &Map<String, Value>,
) -> Result<Value, SqsError> {
    let max = int_param(input, "MaxNumberOfMessages", 1, 1..=MAX_BATCH as i64)?;
    let wait = int_param(input, "WaitTimeSeconds", 0, 0..=MAX_WAIT_SECONDS)?;
    let visibility = int_param(
        input,
        "VisibilityTimeout",
        DEFAULT_VISIBILITY.as_secs() as i64,
        0..=MAX_VISIBILITY_SECONDS,
    )?;
    let got = state
        .queues
        .receive(
            name,
            max as usize,
            Duration::from_secs(visibility as u64),
            Duration::from_secs(wait as u64),
            &*state.clock,
        )
        .await
        .ok_or_else(SqsError::no_queue)?;
    if got.is_empty() {
        // SQS leaves `Messages` out of an empty answer.
        return Ok(json!({}));
    }
    let mut wanted: HashSet<String> = names(input, "AttributeNames").into_iter().collect();
    wanted.extend(names(input, "MessageSystemAttributeNames"));
    let messages: Vec<Value> = got.iter().map(|m| message_json(m, &wanted)).collect();
    Ok(json!({ "Messages": messages }))
}

fn message_json(m: &Received, wanted: &HashSet<String>) -> Value {
    let millis = |t: i64| (t / 1_000_000).to_string();
    let mut attributes = Map::new();
    for (k, v) in [
        ("ApproximateReceiveCount", m.receive_count.to_string()),
        ("SentTimestamp", millis(m.sent_at)),
        (
            "ApproximateFirstReceiveTimestamp",
            millis(m.first_received_at),
        ),
        ("SenderId", "AIDAIT2UOQQY3AUEKVGXU".to_string()),
    ] {
        if wanted.contains("All") || wanted.contains(k) {
            attributes.insert(k.into(), json!(v));
        }
    }
    let mut v = json!({
        "MessageId": m.id,
        "ReceiptHandle": m.receipt,
        "MD5OfBody": md5_hex(m.body.as_bytes()),
        "Body": m.body,
    });
    if !attributes.is_empty() {
        v["Attributes"] = Value::Object(attributes);
    }
    v
}

fn delete_batch(
    state: &SimState,
    name: &str,
    input: &Map<String, Value>,
) -> Result<Value, SqsError> {
    let entries = input
        .get("Entries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if entries.is_empty() {
        return Err(SqsError::batch(
            "com.amazonaws.sqs#EmptyBatchRequest",
            "AWS.SimpleQueueService.EmptyBatchRequest",
            "There should be at least one DeleteMessageBatchRequestEntry in the request.",
        ));
    }
    if entries.len() > MAX_BATCH {
        return Err(SqsError::batch(
            "com.amazonaws.sqs#TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            &format!(
                "Maximum number of entries per request are {MAX_BATCH}. You have sent {}.",
                entries.len()
            ),
        ));
    }
    let mut ids = HashSet::new();
    let mut parsed = Vec::with_capacity(entries.len());
    for e in &entries {
        let id = e.get("Id").and_then(Value::as_str).unwrap_or_default();
        let valid = (1..=80).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(SqsError::batch(
                "com.amazonaws.sqs#InvalidBatchEntryId",
                "AWS.SimpleQueueService.InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !ids.insert(id) {
            return Err(SqsError::batch(
                "com.amazonaws.sqs#BatchEntryIdsNotDistinct",
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                &format!("Id {id} repeated."),
            ));
        }
        let handle = e
            .get("ReceiptHandle")
            .and_then(Value::as_str)
            .unwrap_or_default();
        parsed.push((id, handle));
    }
    let results = state
        .queues
        .with(name, |q| {
            parsed.iter().map(|(_, h)| q.delete(h)).collect::<Vec<_>>()
        })
        .ok_or_else(SqsError::no_queue)?;
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for ((id, handle), ok) in parsed.iter().zip(results) {
        if ok {
            successful.push(json!({ "Id": id }));
        } else {
            // A bad handle fails its entry, not the call.
            failed.push(json!({
                "Id": id,
                "SenderFault": true,
                "Code": "ReceiptHandleIsInvalid",
                "Message": receipt_invalid(handle).message,
            }));
        }
    }
    Ok(json!({ "Successful": successful, "Failed": failed }))
}

fn attributes(state: &SimState, name: &str, input: &Map<String, Value>) -> Result<Value, SqsError> {
    let stats = state.queues.stats(name).ok_or_else(SqsError::no_queue)?;
    let known = [
        ("ApproximateNumberOfMessages", stats.visible.to_string()),
        (
            "ApproximateNumberOfMessagesNotVisible",
            stats.in_flight.to_string(),
        ),
        ("ApproximateNumberOfMessagesDelayed", "0".to_string()),
        (
            "VisibilityTimeout",
            DEFAULT_VISIBILITY.as_secs().to_string(),
        ),
        ("ReceiveMessageWaitTimeSeconds", "0".to_string()),
        ("QueueArn", format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")),
    ];
    let wanted = names(input, "AttributeNames");
    if let Some(unknown) = wanted
        .iter()
        .find(|w| *w != "All" && !known.iter().any(|(k, _)| k == w))
    {
        return Err(SqsError::new(
            400,
            "com.amazonaws.sqs#InvalidAttributeName",
            "InvalidAttributeName",
            format!("Unknown Attribute {unknown}."),
        ));
    }
    let attrs: Map<String, Value> = known
        .into_iter()
        .filter(|(k, _)| wanted.iter().any(|w| w == "All" || w == k))
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    if attrs.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({ "Attributes": attrs }))
}

/// MD5 of a message body (RFC 1321), which SQS sends with each message so
/// that clients that check it (some SDKs do) can.
fn md5_hex(data: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    let mut h: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    for chunk in msg.chunks_exact(64) {
        let m: Vec<u32> = chunk
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = h;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(k[i])
                .wrapping_add(m[g])
                .rotate_left(S[i]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(rotated);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_name_queues_of_the_account() {
        assert_eq!(
            queue_name("http://127.0.0.1:4566/123456789012/events"),
            Some("events")
        );
        assert_eq!(
            queue_name("https://sqs.us-east-1.amazonaws.com/123456789012/q-1"),
            Some("q-1")
        );
        assert_eq!(
            queue_name("http://127.0.0.1:4566/210987654321/events"),
            None
        );
        assert_eq!(queue_name("http://127.0.0.1:4566/123456789012/"), None);
        assert_eq!(queue_name("http://127.0.0.1:4566"), None);
        assert_eq!(queue_name("events"), None);
    }

    #[test]
    fn md5_matches_rfc_1321() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            ),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }
}

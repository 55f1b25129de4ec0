//! Faults the simulator can inject, to test the exporter against a service
//! that throttles, fails, is slow, or answers badly.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// What can go wrong with an answer that is otherwise a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadAnswer {
    /// Not JSON at all.
    MalformedJson,
    /// The first half of the body only.
    TruncatedBody,
    /// Strings where numbers belong and the reverse.
    WrongTypes,
    /// Required identifiers left out.
    MissingField,
    /// Statuses the service model does not list.
    UnknownStatus,
    /// `endTime` one hour before `startTime`.
    EndBeforeStart,
    /// `timeoutSeconds` far outside 0–43200.
    AbsurdTimeout,
    /// 500-character messages and descriptions.
    LongMessages,
    /// A `nextToken` that never changes.
    RepeatingToken,
    /// Twice the items that were asked for.
    OversizedPage,
    /// The connection is closed without an answer.
    ConnectionReset,
}

/// The faults in force. Ratios are probabilities per request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Share of requests answered 429 `CallRateLimitExceededException`.
    pub throttle_ratio: f64,
    /// Share answered 500 `ServiceException` or 503 `ServiceUnavailableException`.
    pub server_error_ratio: f64,
    /// Added to every answer.
    #[serde(with = "millis")]
    pub latency: Duration,
    /// Operations affected (all when empty).
    pub operations: Vec<String>,
    /// A bad answer given instead of a good one, for the share below.
    pub bad_answer: Option<BadAnswer>,
    pub bad_answer_ratio: f64,
}

impl Faults {
    pub fn applies_to(&self, op: &str) -> bool {
        self.operations.is_empty() || self.operations.iter().any(|o| o == op)
    }
}

/// Spoils a good answer in the way asked.
pub(crate) fn damage(v: &mut Value, bad: BadAnswer) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| damage(i, bad)),
        Value::Object(m) => {
            for (_, child) in m.iter_mut() {
                if child.is_array() {
                    damage(child, bad);
                }
            }
            damage_object(m, bad);
        }
        _ => {}
    }
}

fn damage_object(m: &mut Map<String, Value>, bad: BadAnswer) {
    match bad {
        BadAnswer::WrongTypes => {
            for (k, v) in m.iter_mut() {
                *v = match (k.as_str(), &*v) {
                    (_, Value::Number(n)) => json!(n.to_string()),
                    ("startTime" | "endTime" | "dateCreated", _) => json!(1_788_981_143),
                    ("status", _) => json!(7),
                    _ => continue,
                };
            }
        }
        BadAnswer::MissingField => {
            for k in [
                "arn",
                "stepExecutionId",
                "workflowExecutionId",
                "workflowBuildVersionArn",
                "name",
            ] {
                m.remove(k);
            }
        }
        BadAnswer::UnknownStatus => {
            if let Some(s) = m.get_mut("status") {
                *s = json!("SOMETHING_NEW");
            }
        }
        BadAnswer::EndBeforeStart => {
            if let Some(start) = m.get("startTime").and_then(Value::as_str) {
                if let Some(t) = crate::timestamp::parse_rfc3339_millis(start) {
                    let end = crate::timestamp::format_rfc3339_millis(
                        t - 3600 * crate::clock::NANOS_PER_SEC,
                    );
                    m.insert("endTime".into(), json!(end));
                }
            }
        }
        BadAnswer::AbsurdTimeout if m.contains_key("stepExecutionId") => {
            m.insert("timeoutSeconds".into(), json!(9_999_999));
        }
        BadAnswer::LongMessages => {
            let long = "x".repeat(500);
            for k in ["message", "description"] {
                if m.contains_key(k) {
                    m.insert(k.into(), json!(long));
                }
            }
        }
        _ => {}
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

//! Faults the simulator can inject, to test the exporter against a service
//! that throttles, fails, is slow, or answers badly.

use std::time::Duration;

use serde::{Deserialize, Serialize};

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

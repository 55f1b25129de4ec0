//! When and how long to wait before trying a failed call again.
//!
//! The SDK's own retries are switched off: it does not treat Image Builder's
//! `CallRateLimitExceededException` (HTTP 429) as throttling, and retries
//! hidden inside the SDK would escape our request and error counters. This
//! policy retries throttling, 5xx, timeouts, connection failures and garbled
//! answers with exponential backoff and "equal jitter": half the delay is
//! fixed, so a retry is never immediate; half is random, so that many clients
//! throttled together do not retry together.

use std::time::Duration;

use super::ApiError;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1` after `attempt` (0-based)
    /// failed with `err`, or `None` when the call should give up.
    pub fn next_delay(
        &self,
        attempt: u32,
        err: &ApiError,
        rng: &mut fastrand::Rng,
    ) -> Option<Duration> {
        if !err.is_retryable() || attempt + 1 >= self.max_attempts {
            return None;
        }
        // Throttling says "slow down": start from a longer base.
        let base = if err.is_throttle() {
            self.base * 2
        } else {
            self.base
        };
        let exp = base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_backoff);
        let half = exp / 2;
        Some(half + half.mul_f64(rng.f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Operation;

    fn err(code: &str, status: u16) -> ApiError {
        ApiError::Service {
            operation: Operation::ListWorkflowExecutions,
            code: code.into(),
            message: String::new(),
            status,
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            ..RetryPolicy::default()
        };
        let mut rng = fastrand::Rng::with_seed(7);
        let e = err("ServiceUnavailableException", 503);
        let mut previous_floor = Duration::ZERO;
        for attempt in 0..9 {
            let d = p.next_delay(attempt, &e, &mut rng).unwrap();
            let exp = (p.base * (1 << attempt)).min(p.max_backoff);
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempt}: {d:?} vs {exp:?}"
            );
            assert!(exp / 2 >= previous_floor);
            previous_floor = exp / 2;
        }
        assert!(p.next_delay(9, &e, &mut rng).is_none(), "budget spent");
    }

    #[test]
    fn throttling_waits_longer_and_client_errors_are_final() {
        let p = RetryPolicy::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let d = p
            .next_delay(0, &err("CallRateLimitExceededException", 429), &mut rng)
            .unwrap();
        assert!(d >= Duration::from_millis(200), "{d:?}");
        assert!(p
            .next_delay(0, &err("ForbiddenException", 403), &mut rng)
            .is_none());
        assert!(p
            .next_delay(0, &err("InvalidRequestException", 400), &mut rng)
            .is_none());
    }
}

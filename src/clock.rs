//! Wall-clock time as Unix nanoseconds, behind a trait so that tests and the
//! simulator can freeze or accelerate it.
//!
//! Why not `tokio::time`? Durations of running steps are measured against the
//! API's timestamps, which are wall-clock times; `tokio::time::pause()` only
//! controls the monotonic clock. Both exist: tokio's for intervals and timeouts,
//! this one for "now" as the API understands it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Unix time in nanoseconds. `i64` covers the years 1678–2262 and keeps
/// millisecond arithmetic exact, which `f64` seconds would not.
pub type Nanos = i64;

pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Converts nanoseconds to the float seconds Prometheus expects.
pub fn secs(n: Nanos) -> f64 {
    // Split to keep sub-second digits exact for values like 12.418 s.
    (n / NANOS_PER_SEC) as f64 + (n % NANOS_PER_SEC) as f64 / NANOS_PER_SEC as f64
}

/// Converts float seconds to nanoseconds (saturating).
pub fn from_secs(s: f64) -> Nanos {
    (s * NANOS_PER_SEC as f64) as Nanos
}

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Nanos;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Nanos {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as Nanos,
            Err(_) => 0,
        }
    }
}

/// A clock that moves only when told to; for exact assertions in tests.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Nanos) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(start)))
    }
    pub fn set(&self, t: Nanos) {
        self.0.store(t, Ordering::SeqCst);
    }
    pub fn advance_secs(&self, s: f64) {
        self.0.fetch_add(from_secs(s), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Nanos {
        self.0.load(Ordering::SeqCst)
    }
}

/// A clock that runs `factor` times faster than real time from a given origin:
/// lets the simulator play hours of builds in seconds (soak tests, benchmarks).
#[derive(Debug)]
pub struct ScaledClock {
    origin: Nanos,
    started: Instant,
    factor: f64,
}

impl ScaledClock {
    pub fn new(origin: Nanos, factor: f64) -> Arc<Self> {
        Arc::new(Self {
            origin,
            started: Instant::now(),
            factor,
        })
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Nanos {
        self.origin + (self.started.elapsed().as_nanos() as f64 * self.factor) as Nanos
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Nanos {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secs_keeps_milliseconds_exact() {
        assert_eq!(secs(12_418_000_000), 12.418);
        assert_eq!(secs(-1_500_000_000), -1.5);
        assert_eq!(secs(1_788_981_143_418_000_000), 1_788_981_143.418);
    }

    #[test]
    fn manual_clock_moves_when_told() {
        let c = ManualClock::new(5 * NANOS_PER_SEC);
        assert_eq!(c.now(), 5 * NANOS_PER_SEC);
        c.advance_secs(2.5);
        assert_eq!(c.now(), 7_500_000_000);
    }
}

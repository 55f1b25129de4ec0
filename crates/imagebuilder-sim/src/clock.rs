//! The simulated world's "now": Unix nanoseconds behind a trait, so that a
//! test can freeze it (and move it by hand) or the standalone simulator can
//! run it faster than real time.
//!
//! The simulator keeps its own trait rather than its client's: a client
//! (the exporter's tests, its `--demo`) that wants both sides to read one
//! clock implements this trait for its own clock, in its own code.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Unix time in nanoseconds: exact millisecond arithmetic, the years
/// 1678–2262.
pub type Nanos = i64;

pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Nanoseconds as float seconds (the admin API's epoch seconds).
pub fn secs(n: Nanos) -> f64 {
    // Whole and fractional parts apart, so that 12.418 s stays 12.418.
    (n / NANOS_PER_SEC) as f64 + (n % NANOS_PER_SEC) as f64 / NANOS_PER_SEC as f64
}

/// A source of the simulated world's time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Nanos;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Nanos {
        (**self).now()
    }
}

/// Real time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Nanos {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as Nanos)
            .unwrap_or(0)
    }
}

/// Time that moves only when told to: exact assertions in tests.
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
        self.0
            .fetch_add((s * NANOS_PER_SEC as f64) as Nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Nanos {
        self.0.load(Ordering::SeqCst)
    }
}

/// Time running `factor` times faster than real time from `origin`: hours
/// of builds in minutes (`imagebuilder-sim --speed`).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secs_keeps_milliseconds_exact() {
        assert_eq!(secs(12_418_000_000), 12.418);
        assert_eq!(secs(-1_500_000_000), -1.5);
    }

    #[test]
    fn manual_clock_moves_when_told() {
        let c = ManualClock::new(5 * NANOS_PER_SEC);
        c.advance_secs(2.5);
        assert_eq!(c.now(), 7_500_000_000);
        c.set(1);
        assert_eq!(Arc::new(c).now(), 1);
    }

    #[test]
    fn a_scaled_clock_runs_faster() {
        let c = ScaledClock::new(0, 1000.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        // 20 ms of real time: 20 s simulated, at least.
        assert!(c.now() >= 20 * NANOS_PER_SEC, "{}", c.now());
    }
}

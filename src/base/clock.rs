//! Wall-clock time as Unix nanoseconds, behind a trait so that tests can
//! freeze it (and move the simulator they drive with it).
//!
//! Why not `tokio::time`? Durations of running steps are measured against the
//! API's timestamps, which are wall-clock times; `tokio::time::pause()` only
//! controls the monotonic clock. Both exist: tokio's for intervals and timeouts,
//! this one for "now" as the API understands it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

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

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Nanos {
        (**self).now()
    }
}

/// The simulator (`imagebuilder_sim`, for `--demo` and the tests) reads
/// the exporter's clocks: a test that moves one `ManualClock` moves the
/// simulated builds and the exporter's "now" together, and `--demo`'s
/// simulator runs on the exporter's clock.
///
/// Why here, and this way round: the simulator is a test double that must
/// depend on nothing of the exporter, so it has its own `Clock` trait, and
/// the exporter (its client) implements that trait for its own clocks. With
/// the trait object too, `Simulator::new` takes an `Arc<dyn Clock>` of the
/// exporter as well as an `Arc<ManualClock>`. The two traits have the same
/// one method and the same [`Nanos`]. Only with the `demo` feature: without
/// it the simulator is not linked in.
#[cfg(feature = "demo")]
mod simulator_clock {
    use super::{Clock, ManualClock, Nanos, SystemClock};

    macro_rules! simulator_reads {
        ($($t:ty),*) => {$(
            impl imagebuilder_sim::clock::Clock for $t {
                fn now(&self) -> Nanos {
                    Clock::now(self)
                }
            }
        )*};
    }

    simulator_reads!(dyn Clock, SystemClock, ManualClock);
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

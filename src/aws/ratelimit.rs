//! A client-side rate limit that also backs off when the service throttles.
//!
//! Requests are given evenly spaced start slots (a generic cell rate
//! algorithm): up to `burst` go at once, then one every `1/rate` seconds, in
//! arrival order. When the service answers 429 the rate is halved
//! (multiplicative decrease); each success wins a little of it back (additive
//! increase), so a large account converges on what the API tolerates instead
//! of hammering it.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct RateLimiter {
    max_rate: f64,
    min_rate: f64,
    burst: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rate: f64,
    next_free: Option<Instant>,
}

impl RateLimiter {
    /// `rate` requests per second at most, with bursts of up to `rate` requests.
    pub fn new(rate: f64) -> Self {
        let rate = rate.max(0.001);
        Self {
            max_rate: rate,
            min_rate: (rate / 16.0).max(0.001).min(rate),
            burst: rate.clamp(1.0, 100.0),
            state: Mutex::new(State {
                rate,
                next_free: None,
            }),
        }
    }

    /// Waits for this request's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut st = self.lock();
            let now = Instant::now();
            let interval = Duration::from_secs_f64(1.0 / st.rate);
            let window = interval.mul_f64(self.burst - 1.0);
            // Unused capacity accumulates up to one burst, no further.
            let floor = now.checked_sub(window).unwrap_or(now);
            let slot = st.next_free.map_or(floor, |n| n.max(floor));
            st.next_free = Some(slot + interval);
            slot
        };
        if slot > Instant::now() {
            tokio::time::sleep_until(slot).await;
        }
    }

    /// The service throttled us: halve the rate.
    pub fn on_throttle(&self) {
        let mut st = self.lock();
        st.rate = (st.rate / 2.0).max(self.min_rate);
    }

    /// A request succeeded: recover a twentieth of the configured rate.
    pub fn on_success(&self) {
        let mut st = self.lock();
        st.rate = (st.rate + self.max_rate / 20.0).min(self.max_rate);
    }

    /// The rate currently applied, in requests per second.
    pub fn current_rate(&self) -> f64 {
        self.lock().rate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two numbers, valid whatever a panicking holder did.
        crate::base::sync::lock(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_after_a_burst() {
        let rl = RateLimiter::new(10.0);
        let t0 = Instant::now();
        for _ in 0..10 {
            rl.acquire().await;
        }
        // The first burst goes at once.
        assert!(t0.elapsed() < Duration::from_millis(1));
        for _ in 0..10 {
            rl.acquire().await;
        }
        // Ten more take one second at 10/s.
        let e = t0.elapsed();
        assert!(
            e >= Duration::from_millis(999) && e <= Duration::from_millis(1001),
            "{e:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_halves_the_rate_and_success_restores_it() {
        let rl = RateLimiter::new(8.0);
        rl.on_throttle();
        assert_eq!(rl.current_rate(), 4.0);
        rl.on_throttle();
        rl.on_throttle();
        rl.on_throttle();
        rl.on_throttle();
        assert_eq!(rl.current_rate(), 0.5, "floors at a sixteenth");
        for _ in 0..40 {
            rl.on_success();
        }
        assert_eq!(rl.current_rate(), 8.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_rate_really_waits() {
        let rl = RateLimiter::new(1.0);
        let t0 = Instant::now();
        rl.acquire().await;
        rl.acquire().await;
        rl.acquire().await;
        assert_eq!(t0.elapsed(), Duration::from_secs(2));
    }
}

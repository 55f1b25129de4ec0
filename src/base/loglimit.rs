//! Keeps logs readable when the same problem repeats at every refresh.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Lets a message through once per key per interval. Keys are bounded: when
/// too many accumulate, the oldest half is forgotten.
#[derive(Debug)]
pub struct LogLimiter {
    seen: Mutex<HashMap<String, Instant>>,
    max_keys: usize,
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl LogLimiter {
    pub fn new(max_keys: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            max_keys: max_keys.max(2),
        }
    }

    /// True if `key` was not let through within `every` (`None`: ever).
    pub fn allow(&self, key: &str, every: Option<Duration>) -> bool {
        let now = Instant::now();
        let mut seen = crate::base::sync::lock(&self.seen);
        if let Some(t) = seen.get(key) {
            match every {
                Some(d) if now.duration_since(*t) >= d => {}
                _ => return false,
            }
        }
        if seen.len() >= self.max_keys {
            let mut times: Vec<Instant> = seen.values().copied().collect();
            times.sort();
            let cut = times[times.len() / 2];
            seen.retain(|_, t| *t > cut);
        }
        seen.insert(key.to_string(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn once_and_every() {
        let l = LogLimiter::new(100);
        assert!(l.allow("a", None));
        assert!(!l.allow("a", None));
        assert!(l.allow("b", Some(Duration::from_secs(60))));
        assert!(!l.allow("b", Some(Duration::from_secs(60))));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(l.allow("b", Some(Duration::from_secs(60))));
        assert!(!l.allow("a", None));
    }

    #[tokio::test(start_paused = true)]
    async fn stays_bounded() {
        let l = LogLimiter::new(10);
        for i in 0..1000 {
            tokio::time::advance(Duration::from_millis(1)).await;
            assert!(l.allow(&i.to_string(), None));
        }
        assert!(l.seen.lock().unwrap().len() <= 10);
    }
}

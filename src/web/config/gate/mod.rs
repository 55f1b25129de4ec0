//! The request gate: what every request passes before it is served, in this
//! order: the rate limit (`rate_limit`), then basic authentication
//! (`basic_auth_users`, see [`auth`]).
//!
//! The limit comes first so that a flood of bad passwords is refused cheaply,
//! before any bcrypt work. Both answers carry the configured response
//! headers, like every other response.
//!
//! The gate outlives policies: the bcrypt cache and the token bucket are kept
//! across reloads (the bucket is replaced only when the limit itself
//! changes), so a reload neither forgets who logged in nor refills the
//! bucket.

mod auth;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use hyper::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Request, Response};
use tokio::time::Instant;

pub(crate) use auth::Users;

use super::Policy;
use crate::web::serve::{respond, Chunks};

/// The realm in `WWW-Authenticate`.
const REALM: &str = "imagebuilder-exporter";

/// `rate_limit`, checked: one request every `interval` on average, `burst`
/// at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimit {
    pub(crate) interval: Duration,
    pub(crate) burst: u32,
}

/// What stays across policies.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    authenticator: auth::Authenticator,
    /// The limit in force and its bucket.
    limiter: Mutex<Option<(RateLimit, TokenBucket)>>,
}

impl Gate {
    /// A gate for a first policy's limit.
    pub(crate) fn new(limit: Option<RateLimit>) -> Gate {
        let gate = Gate::default();
        gate.set_rate_limit(limit);
        gate
    }

    /// Applies a new policy's limit: a new, full bucket if the limit
    /// changed, the current one otherwise.
    pub(crate) fn set_rate_limit(&self, limit: Option<RateLimit>) {
        let mut limiter = crate::base::sync::lock(&self.limiter);
        if limiter.as_ref().map(|(r, _)| *r) != limit {
            *limiter = limit.map(|r| (r, TokenBucket::new(r)));
        }
    }

    /// Applies the rate limit and basic authentication to a request. `Err`
    /// is the response to send instead (429 or 401, with the configured
    /// headers).
    pub(crate) async fn authorize<B>(
        &self,
        policy: &Policy,
        req: &Request<B>,
        peer: SocketAddr,
    ) -> Result<(), Response<Chunks>> {
        if !self.allow_now() {
            let mut r = respond(429, "text/plain; charset=utf-8", "Too Many Requests\n");
            policy.add_headers(&mut r);
            return Err(r);
        }
        if policy.users.is_empty() {
            return Ok(());
        }
        match self
            .authenticator
            .check(&policy.users, req.headers().get(AUTHORIZATION))
            .await
        {
            Ok(()) => Ok(()),
            Err(why) => {
                tracing::debug!(%peer, reason = %why, path = req.uri().path(), "request refused: basic authentication failed");
                let mut r = respond(401, "text/plain; charset=utf-8", "Unauthorized\n");
                if let Ok(v) =
                    HeaderValue::from_str(&format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""))
                {
                    r.headers_mut().insert(WWW_AUTHENTICATE, v);
                }
                policy.add_headers(&mut r);
                Err(r)
            }
        }
    }

    /// Takes a token, if there is a limit.
    fn allow_now(&self) -> bool {
        match crate::base::sync::lock(&self.limiter).as_mut() {
            Some((_, bucket)) => bucket.allow(Instant::now()),
            None => true,
        }
    }
}

/// A token bucket as Go's `rate.Limiter`: one token every `interval`, at
/// most `burst` saved, full at the start.
#[derive(Debug)]
struct TokenBucket {
    every: Duration,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(r: RateLimit) -> Self {
        Self {
            every: r.interval,
            burst: f64::from(r.burst),
            tokens: f64::from(r.burst),
            last: Instant::now(),
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() / self.every.as_secs_f64()).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn token_bucket() {
        let mut b = TokenBucket::new(RateLimit {
            interval: Duration::from_secs(1),
            burst: 2,
        });
        let t = Instant::now();
        assert!(b.allow(t));
        assert!(b.allow(t));
        assert!(!b.allow(t));
        assert!(!b.allow(t + Duration::from_millis(500)));
        assert!(b.allow(t + Duration::from_millis(1000)));
        assert!(b.allow(t + Duration::from_secs(60)));
        assert!(b.allow(t + Duration::from_secs(60)));
        assert!(!b.allow(t + Duration::from_secs(60)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_keeps_the_bucket_unless_the_limit_changes() {
        let limit = RateLimit {
            interval: Duration::from_secs(60),
            burst: 1,
        };
        let gate = Gate::new(Some(limit));
        assert!(gate.allow_now());
        assert!(!gate.allow_now());
        gate.set_rate_limit(Some(limit));
        assert!(!gate.allow_now(), "same limit: the empty bucket stays");
        gate.set_rate_limit(Some(RateLimit { burst: 2, ..limit }));
        assert!(gate.allow_now(), "new limit: a new, full bucket");
        gate.set_rate_limit(None);
        assert!((0..100).all(|_| gate.allow_now()));
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_carry_the_configured_headers() {
        let policy = Policy {
            headers: vec![(
                hyper::header::HeaderName::from_static("x-frame-options"),
                HeaderValue::from_static("deny"),
            )],
            users: Users::new(
                [("alice".to_string(), bcrypt::hash("pw", 4).unwrap())]
                    .into_iter()
                    .collect(),
            )
            .unwrap(),
            ..Policy::default()
        };
        let gate = Gate::new(Some(RateLimit {
            interval: Duration::from_secs(60),
            burst: 1,
        }));
        let req = Request::get("/metrics").body(()).unwrap();
        let peer: SocketAddr = ([127, 0, 0, 1], 1).into();
        let r = gate.authorize(&policy, &req, peer).await.unwrap_err();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["x-frame-options"], "deny");
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=\"imagebuilder-exporter\""));
        // The limit comes first: no token left, no password checked.
        let r = gate.authorize(&policy, &req, peer).await.unwrap_err();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["x-frame-options"], "deny");
    }
}

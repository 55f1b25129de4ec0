//! `basic_auth_users`: HTTP basic authentication against bcrypt hashes.
//!
//! bcrypt is slow on purpose (about 70 ms at cost 10), so, as the
//! exporter-toolkit does, successful checks are cached and checks run one at
//! a time, off the async threads. The cache holds salted SHA-256 digests of
//! (user, hash, password), never a password; it is bounded. An unknown user
//! costs a bcrypt check all the same, so that timing does not tell which
//! users exist. Nothing here logs a password, a hash or a header value.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::web::config::WebConfigError;

/// Most successful checks remembered.
const CACHE_SIZE: usize = 1024;

/// The users and their bcrypt hashes. Its `Debug` shows names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Users(BTreeMap<String, String>);

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Users {
    /// Checks every entry (`basic_auth_users`): a name usable in basic
    /// auth, a bcrypt hash. The error names the user, never the hash.
    pub(crate) fn new(entries: BTreeMap<String, String>) -> Result<Users, WebConfigError> {
        for (user, hash) in &entries {
            let field = || format!("basic_auth_users.{user}");
            if user.is_empty() || user.contains(':') {
                return Err(WebConfigError::at(
                    field(),
                    "a user name must be non-empty and hold no ':' (basic auth cannot send it)",
                ));
            }
            check_hash(hash).map_err(|reason| {
                WebConfigError::at(
                    field(),
                    format!(
                        "not a bcrypt hash ({reason}); hash the password with: htpasswd -nBC 10 \"\" | tr -d ':\\n'"
                    ),
                )
            })?;
        }
        Ok(Users(entries))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Why a `basic_auth_users` entry is not a usable bcrypt hash. Never
/// quotes the hash.
#[derive(Debug, thiserror::Error)]
enum HashError {
    /// bcrypt's own reason, without its "Invalid hash: " prefix (the
    /// message already says "not a bcrypt hash").
    #[error("{0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Bcrypt(bcrypt::BcryptError),
    #[error("cost {0} is outside 4 to 31")]
    Cost(u32),
}

/// Accepts `$2a$`, `$2b$`, `$2x$` and `$2y$` hashes of cost 4 to 31, as Go's
/// `bcrypt.Cost` does.
fn check_hash(hash: &str) -> Result<(), HashError> {
    let parts = bcrypt::HashParts::from_str(hash).map_err(|e| match e {
        bcrypt::BcryptError::InvalidHash(why) => HashError::Malformed(why),
        e => HashError::Bcrypt(e),
    })?;
    let cost = parts.get_cost();
    if !(4..=31).contains(&cost) {
        return Err(HashError::Cost(cost));
    }
    Ok(())
}

/// Why a request was refused; for debug logs, never with the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    NoCredentials,
    Malformed,
    WrongCredentials,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Denied::NoCredentials => "no basic auth credentials",
            Denied::Malformed => "malformed Authorization header",
            Denied::WrongCredentials => "unknown user or wrong password",
        })
    }
}

/// Checks credentials; shared across reloads (the cache key includes the
/// hash, so a changed password never matches an old entry).
pub(crate) struct Authenticator {
    salt: [u8; 16],
    cache: Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt computation at a time: a flood of bad passwords costs one
    /// core, not all of them.
    bcrypt_gate: Arc<Semaphore>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Default for Authenticator {
    fn default() -> Self {
        let mut salt = [0u8; 16];
        // Only fails if the OS has no randomness; a fixed salt is then still
        // correct, merely less private.
        let _ = rustls::crypto::aws_lc_rs::default_provider()
            .secure_random
            .fill(&mut salt);
        Self {
            salt,
            cache: Mutex::new(HashSet::new()),
            bcrypt_gate: Arc::new(Semaphore::new(1)),
        }
    }
}

impl Authenticator {
    /// Checks the `Authorization` header against `users` (which must not be
    /// empty).
    pub(crate) async fn check(
        &self,
        users: &Users,
        header: Option<&HeaderValue>,
    ) -> Result<(), Denied> {
        let header = header.ok_or(Denied::NoCredentials)?;
        let (user, password) = decode(header).ok_or(Denied::Malformed)?;
        let known = users.0.get(&user);
        // An unknown user is checked against a real hash all the same, so
        // that both take as long; the result is then discarded.
        let hash = match known.or_else(|| users.0.values().next()) {
            Some(h) => h.clone(),
            None => return Err(Denied::WrongCredentials),
        };
        let key = self.key(&user, &hash, &password);
        if known.is_some() && self.cached(&key) {
            return Ok(());
        }
        let ok = {
            let _permit = self
                .bcrypt_gate
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Denied::WrongCredentials)?;
            tokio::task::spawn_blocking(move || bcrypt::verify(password.as_bytes(), &hash))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(false)
        };
        if ok && known.is_some() {
            self.remember(key);
            Ok(())
        } else {
            Err(Denied::WrongCredentials)
        }
    }

    fn key(&self, user: &str, hash: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        for part in [user, hash, password] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }

    fn cached(&self, key: &[u8; 32]) -> bool {
        crate::base::sync::lock(&self.cache).contains(key)
    }

    fn remember(&self, key: [u8; 32]) {
        let mut cache = crate::base::sync::lock(&self.cache);
        if cache.len() >= CACHE_SIZE {
            // Forget an arbitrary entry: it costs one bcrypt check to relearn.
            if let Some(old) = cache.iter().next().copied() {
                cache.remove(&old);
            }
        }
        cache.insert(key);
    }

    #[cfg(test)]
    fn cache_len(&self) -> usize {
        self.cache.lock().unwrap().len()
    }
}

/// `Basic base64(user:password)` → (user, password).
fn decode(header: &HeaderValue) -> Option<(String, String)> {
    let s = header.to_str().ok()?.trim();
    let (scheme, creds) = s.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(creds.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> HeaderValue {
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {v}")).unwrap()
    }

    fn users() -> Users {
        let mut m = BTreeMap::new();
        m.insert("alice".into(), bcrypt::hash("wonderland", 4).unwrap());
        m.insert(
            "bob".into(),
            bcrypt::hash("builder:with:colons", 4).unwrap(),
        );
        Users::new(m).unwrap()
    }

    #[tokio::test]
    async fn checks_and_caches() {
        let a = Authenticator::default();
        let u = users();
        assert_eq!(a.check(&u, None).await, Err(Denied::NoCredentials));
        assert_eq!(
            a.check(&u, Some(&HeaderValue::from_static("Bearer x")))
                .await,
            Err(Denied::Malformed)
        );
        assert_eq!(
            a.check(&u, Some(&HeaderValue::from_static("Basic !!!")))
                .await,
            Err(Denied::Malformed)
        );
        assert_eq!(
            a.check(&u, Some(&basic("alice", "wrong"))).await,
            Err(Denied::WrongCredentials)
        );
        assert_eq!(
            a.check(&u, Some(&basic("mallory", "wonderland"))).await,
            Err(Denied::WrongCredentials)
        );
        // An unknown user whose password is another user's: still refused.
        assert_eq!(
            a.check(&u, Some(&basic("carol", "builder:with:colons")))
                .await,
            Err(Denied::WrongCredentials)
        );
        assert_eq!(a.cache_len(), 0, "failures are not cached");
        assert_eq!(
            a.check(&u, Some(&basic("alice", "wonderland"))).await,
            Ok(())
        );
        assert_eq!(
            a.check(&u, Some(&basic("bob", "builder:with:colons")))
                .await,
            Ok(())
        );
        assert_eq!(a.cache_len(), 2);
        assert_eq!(
            a.check(&u, Some(&basic("alice", "wonderland"))).await,
            Ok(())
        );
        assert_eq!(a.cache_len(), 2);
        // Same password, new hash (a reload): the old entry does not apply.
        let mut m = BTreeMap::new();
        m.insert("alice".into(), bcrypt::hash("other", 4).unwrap());
        let u2 = Users::new(m).unwrap();
        assert_eq!(
            a.check(&u2, Some(&basic("alice", "wonderland"))).await,
            Err(Denied::WrongCredentials)
        );
    }

    #[test]
    fn hashes_are_checked_and_never_quoted() {
        let mut m = BTreeMap::new();
        m.insert("alice".into(), "plaintext-password".into());
        let e = Users::new(m).unwrap_err();
        assert_eq!(e.field(), Some("basic_auth_users.alice"));
        assert!(e.message().contains("not a bcrypt hash"), "{e}");
        assert!(!e.to_string().contains("plaintext-password"), "{e}");
        let mut m = BTreeMap::new();
        m.insert(
            "a:b".into(),
            "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG".into(),
        );
        assert!(Users::new(m).unwrap_err().message().contains("':'"));
        for ok in [
            "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG",
            "$2a$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG",
            "$2b$04$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG",
        ] {
            assert!(check_hash(ok).is_ok(), "{ok}");
        }
        assert!(
            check_hash("$2y$03$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG").is_err()
        );
        assert!(check_hash("$1$abc").is_err());
        let u = users();
        assert!(!format!("{u:?}").contains("$2"), "{u:?}");
    }
}

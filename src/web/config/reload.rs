//! The policy in force, and its reload.
//!
//! [`WebSecurity`] holds the last policy that loaded, and swaps it when the
//! file or a file it names changes (a digest of every byte read is compared
//! every few seconds) or on SIGHUP. A version that does not load is logged,
//! once per version, and the previous policy stays: a typo never takes the
//! endpoint down or opens it. Whether TLS is on is fixed at start-up, since
//! the listener was built for it; a version that switches it is refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hyper::{Request, Response};
use rustls::ServerConfig;

use super::file::load_policy;
use super::gate::Gate;
use super::{now_unix, x509, Policy, WebConfigError};
use crate::web::serve::Chunks;

/// How often the file (and the files it names) are checked for changes.
const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The web server's security settings in force, and the means to reload
/// them. Cheap to share: the server holds it in an `Arc`.
pub struct WebSecurity {
    source: Option<PathBuf>,
    tls: bool,
    policy: RwLock<Arc<Policy>>,
    digest: Mutex<[u8; 32]>,
    /// The digest of the last file that failed to load: logged once.
    failed: Mutex<Option<[u8; 32]>>,
    gate: Gate,
    reload_interval: Duration,
}

impl std::fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.current();
        f.debug_struct("WebSecurity")
            .field("file", &self.source)
            .field("tls", &self.tls)
            .field("users", &p.users)
            .finish_non_exhaustive()
    }
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    /// Nothing read differs from what is in force.
    Unchanged,
    /// A new configuration is in force.
    Applied,
}

impl WebSecurity {
    /// No TLS, no authentication: what runs without `--web.config.file`.
    pub(crate) fn disabled() -> WebSecurity {
        Self::with_policy(None, Policy::default(), [0; 32])
    }

    /// Loads and checks `path`.
    pub fn load(path: &Path) -> Result<WebSecurity, WebConfigError> {
        let (digest, policy) = load_policy(path, now_unix());
        let policy = policy?;
        let s = Self::with_policy(Some(path.to_path_buf()), policy, digest);
        s.log_loaded("web configuration loaded");
        Ok(s)
    }

    fn with_policy(source: Option<PathBuf>, policy: Policy, digest: [u8; 32]) -> WebSecurity {
        WebSecurity {
            source,
            tls: policy.tls(),
            gate: Gate::new(policy.rate_limit),
            policy: RwLock::new(Arc::new(policy)),
            digest: Mutex::new(digest),
            failed: Mutex::new(None),
            reload_interval: DEFAULT_RELOAD_INTERVAL,
        }
    }

    /// Sets how often the file is checked for changes (every 5 s by
    /// default).
    pub fn with_reload_interval(mut self, every: Duration) -> Self {
        self.reload_interval = every.max(Duration::from_millis(10));
        self
    }

    /// The file this was loaded from, if any.
    pub(crate) fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Whether the server speaks TLS (fixed for the life of the process).
    pub fn tls_enabled(&self) -> bool {
        self.tls
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<Policy> {
        crate::base::sync::read(&self.policy).clone()
    }

    /// The TLS server configuration in force, for the next handshake.
    pub(crate) fn tls_config(&self) -> Option<Arc<ServerConfig>> {
        self.current().tls.clone()
    }

    /// Applies the rate limit and basic authentication of `policy` (the one
    /// in force when the request came) to a request; `Err` is the response
    /// to send instead.
    pub(crate) async fn authorize<B>(
        &self,
        policy: &Policy,
        req: &Request<B>,
        peer: SocketAddr,
    ) -> Result<(), Response<Chunks>> {
        self.gate.authorize(policy, req, peer).await
    }

    fn log_loaded(&self, msg: &str) {
        let p = self.current();
        let file = self
            .source
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        tracing::info!(
            file = %file,
            tls = p.tls(),
            client_auth = %p.summary.client_auth.map(|c| c.to_string()).unwrap_or_else(|| "none".into()),
            basic_auth_users = p.users(),
            rate_limited = p.rate_limit.is_some(),
            cert_not_after = %p.summary.cert_not_after.map(x509::format_time).unwrap_or_default(),
            "{msg}"
        );
        if p.summary.http2_requested {
            tracing::info!(
                "http_server_config.http2 is true, but this server speaks HTTP/1.1 only (Prometheus scrapes over HTTP/1.1)"
            );
        }
        if !p.tls() && !p.users.is_empty() {
            tracing::warn!(
                "basic authentication without TLS: passwords cross the network in clear text; set tls_server_config"
            );
        }
        if let Some(t) = p.summary.cert_not_after {
            let left = t - now_unix();
            if left < 14 * 86_400 {
                tracing::warn!(
                    not_after = %x509::format_time(t),
                    days_left = left / 86_400,
                    "the server certificate expires soon"
                );
            }
        }
    }

    /// Re-reads the file. `force` rebuilds even if nothing changed (SIGHUP).
    /// On error, the configuration in force stays.
    pub fn reload(&self, force: bool) -> Result<Reloaded, WebConfigError> {
        self.reload_digest(force).1
    }

    /// [`WebSecurity::reload`], and the digest of what was read.
    fn reload_digest(&self, force: bool) -> ([u8; 32], Result<Reloaded, WebConfigError>) {
        let Some(path) = &self.source else {
            return ([0; 32], Ok(Reloaded::Unchanged));
        };
        let (digest, result) = load_policy(path, now_unix());
        let current = *crate::base::sync::lock(&self.digest);
        if digest == current && !force {
            return (digest, Ok(Reloaded::Unchanged));
        }
        let policy = match result {
            Ok(p) => p,
            Err(e) => return (digest, Err(e)),
        };
        if policy.tls() != self.tls {
            let e = WebConfigError::at(
                "tls_server_config",
                format!(
                    "TLS was {} at start-up and this version would turn it {}: that needs a restart",
                    if self.tls { "on" } else { "off" },
                    if self.tls { "off" } else { "on" }
                ),
            )
            .in_file(path);
            return (digest, Err(e));
        }
        if digest == current {
            return (digest, Ok(Reloaded::Unchanged));
        }
        self.gate.set_rate_limit(policy.rate_limit);
        *crate::base::sync::write(&self.policy) = Arc::new(policy);
        *crate::base::sync::lock(&self.digest) = digest;
        (digest, Ok(Reloaded::Applied))
    }

    /// One reload attempt, logged. A failure is logged once per version of
    /// the files, not at every poll.
    fn reload_logged(&self, force: bool) {
        let (digest, result) = self.reload_digest(force);
        let mut failed = crate::base::sync::lock(&self.failed);
        match result {
            Ok(Reloaded::Applied) => {
                *failed = None;
                drop(failed);
                self.log_loaded("web configuration reloaded");
            }
            Ok(Reloaded::Unchanged) => {
                *failed = None;
                if force {
                    tracing::info!("web configuration unchanged");
                }
            }
            Err(e) => {
                if force || *failed != Some(digest) {
                    *failed = Some(digest);
                    tracing::error!(
                        error = %e,
                        "cannot reload the web configuration; the previous one stays in force"
                    );
                }
            }
        }
    }

    /// Re-reads the file when it changes (checked every reload interval)
    /// and on SIGHUP, forever. Nothing to do without a file.
    pub(crate) async fn watch(self: Arc<Self>) {
        if self.source.is_none() {
            return std::future::pending().await;
        }
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(self.reload_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hup.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<Option<()>>();
            let force = tokio::select! {
                _ = tick.tick() => false,
                _ = hangup => {
                    tracing::info!("SIGHUP: reloading the web configuration");
                    true
                }
            };
            let me = self.clone();
            // File reads and certificate checks: off the async threads.
            let _ = tokio::task::spawn_blocking(move || me.reload_logged(force)).await;
        }
    }
}

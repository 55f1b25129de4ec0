//! `--web.config.file`: TLS, basic authentication, response headers and a
//! request rate limit for the web server, in the Prometheus
//! exporter-toolkit's web configuration format (`tls_server_config`,
//! `http_server_config`, `basic_auth_users`, `rate_limit`).
//!
//! The file is checked whole at start-up, and every error names the file
//! and the field. It is then re-read when it or a file it points to changes
//! (polled every few seconds) and on SIGHUP: new TLS handshakes use the new
//! certificates, new requests the new users. A file that no longer loads is
//! logged and the previous configuration stays in force. Whether TLS is on
//! is fixed at start-up: switching it needs a restart.
//!
//! Served with rustls (TLS 1.2 and 1.3 only) and the aws-lc-rs provider.

mod auth;
mod tls;
mod x509;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Request, Response};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::httpserve::{respond, Chunks};

pub use auth::Denied;
pub use tls::ClientAuth;

/// How often the file (and the files it names) are checked for changes.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The realm in `WWW-Authenticate`.
pub const REALM: &str = "imagebuilder-exporter";

/// A web configuration file that cannot be used. The message names the file
/// and the field, and never quotes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("web configuration file {}: {}{message}", file.display(), field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct WebConfigError {
    pub file: PathBuf,
    /// The offending field, like `tls_server_config.cert_file`.
    pub field: Option<String>,
    pub message: String,
}

/// For clap's `value_parser`: checks the whole file (certificates, keys,
/// hashes) so that a bad one is refused like any bad flag, with exit status
/// 2, before the exporter listens.
pub fn parse_web_config_file(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    load_policy(&path, now_unix())
        .1
        .map_err(|e| e.to_string())?;
    Ok(path)
}

// ---------------------------------------------------------------------------
// The file format.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    rate_limit: Option<RateLimitFile>,
}

// No `Debug`: `key` may hold a private key.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RateLimitFile {
    interval: Option<String>,
    burst: Option<u32>,
}

/// The headers `http_server_config.headers` may set, and the values allowed
/// where the toolkit restricts them.
const EXTRA_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

// ---------------------------------------------------------------------------
// A loaded configuration.

/// One version of the file, ready to serve with.
#[derive(Debug, Default)]
pub struct Policy {
    tls: Option<Arc<ServerConfig>>,
    users: auth::Users,
    headers: Vec<(HeaderName, HeaderValue)>,
    rate_limit: Option<RateLimit>,
    /// Facts for the logs.
    summary: Summary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RateLimit {
    interval: Duration,
    burst: u32,
}

#[derive(Debug, Clone, Default)]
struct Summary {
    client_auth: Option<ClientAuth>,
    cert_not_after: Option<i64>,
    http2_requested: bool,
}

impl Policy {
    /// Whether this policy serves TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Number of basic auth users (0: no authentication).
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// Adds the configured `http_server_config.headers` to a response.
    pub fn add_headers<B>(&self, r: &mut Response<B>) {
        for (k, v) in &self.headers {
            r.headers_mut().insert(k.clone(), v.clone());
        }
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What reading one version of the file gave: a digest of every byte read
/// (to notice changes), and the policy or why not.
type Loaded = ([u8; 32], Result<Policy, WebConfigError>);

/// Reads `path` and the files it names, and builds the policy. `now` (Unix
/// seconds) is when the server certificate must be valid.
fn load_policy(path: &Path, now: i64) -> Loaded {
    let mut digest = Sha256::new();
    let result = Loader {
        path,
        dir: path.parent().unwrap_or(Path::new("")),
        digest: &mut digest,
        now,
    }
    .load();
    (digest.finalize().into(), result)
}

struct Loader<'a> {
    path: &'a Path,
    dir: &'a Path,
    digest: &'a mut Sha256,
    now: i64,
}

impl Loader<'_> {
    fn err(&self, field: Option<&str>, message: impl Into<String>) -> WebConfigError {
        WebConfigError {
            file: self.path.to_path_buf(),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    /// Reads a file, recording its bytes (or the error) in the digest.
    fn read(&mut self, path: &Path) -> std::io::Result<Vec<u8>> {
        let r = std::fs::read(path);
        self.digest.update(path.as_os_str().as_encoded_bytes());
        match &r {
            Ok(b) => {
                self.digest.update((b.len() as u64).to_be_bytes());
                self.digest.update(b);
            }
            Err(e) => self.digest.update(e.to_string()),
        }
        r
    }

    fn load(mut self) -> Result<Policy, WebConfigError> {
        let path = self.path.to_path_buf();
        let text = self
            .read(&path)
            .map_err(|e| self.err(None, format!("cannot read it: {e}")))?;
        let file: FileConfig = serde_yaml::from_slice(&text).map_err(|e| {
            // serde_yaml leaves out the position when it is the very start.
            let mut msg = format!("invalid YAML: {e}");
            if let (Some(l), false) = (e.location(), msg.contains(" at line ")) {
                msg.push_str(&format!(" at line {} column {}", l.line(), l.column()));
            }
            self.err(None, msg)
        })?;
        let mut summary = Summary::default();
        let tls = match file.tls_server_config {
            Some(t) => self.tls(t, &mut summary)?,
            None => None,
        };
        let users = auth::Users::new(file.basic_auth_users.unwrap_or_default())
            .map_err(|(user, why)| self.err(Some(&format!("basic_auth_users.{user}")), why))?;
        let mut headers = Vec::new();
        if let Some(http) = file.http_server_config {
            summary.http2_requested = http.http2 == Some(true);
            for (name, value) in http.headers.unwrap_or_default() {
                let field = format!("http_server_config.headers.{name}");
                let Some((canonical, allowed)) = EXTRA_HEADERS
                    .iter()
                    .find(|(h, _)| h.eq_ignore_ascii_case(&name))
                else {
                    let names: Vec<_> = EXTRA_HEADERS.iter().map(|(h, _)| *h).collect();
                    return Err(self.err(
                        Some(&field),
                        format!(
                            "this header cannot be configured (allowed: {})",
                            names.join(", ")
                        ),
                    ));
                };
                if value.is_empty() {
                    continue; // "Unset if blank."
                }
                if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                    return Err(self.err(
                        Some(&field),
                        format!("{value:?} is not allowed: use one of {allowed:?}"),
                    ));
                }
                let v = HeaderValue::from_str(&value)
                    .map_err(|_| self.err(Some(&field), "not a valid header value"))?;
                headers.push((
                    HeaderName::from_bytes(canonical.as_bytes()).expect("a valid name"),
                    v,
                ));
            }
        }
        let rate_limit = match file.rate_limit {
            Some(r) => self.rate_limit(r)?,
            None => None,
        };
        Ok(Policy {
            tls,
            users,
            headers,
            rate_limit,
            summary,
        })
    }

    fn rate_limit(&self, r: RateLimitFile) -> Result<Option<RateLimit>, WebConfigError> {
        let interval = match r.interval.as_deref() {
            None => Duration::ZERO,
            Some(s) => crate::config::parse_duration(s)
                .map_err(|e| self.err(Some("rate_limit.interval"), e))?,
        };
        if interval.is_zero() {
            return Ok(None);
        }
        let burst = r.burst.unwrap_or(0);
        if burst == 0 {
            return Err(self.err(
                Some("rate_limit.burst"),
                "must be at least 1 when rate_limit.interval is set (with 0 every request would be refused)",
            ));
        }
        Ok(Some(RateLimit { interval, burst }))
    }

    /// Inline PEM (`inline_field`) or a file (`file_field`), exactly one.
    fn pem_source(
        &mut self,
        inline: Option<String>,
        file: Option<String>,
        inline_field: &str,
        file_field: &str,
        required: bool,
    ) -> Result<Option<(Vec<u8>, String)>, WebConfigError> {
        let inline = inline.filter(|s| !s.is_empty());
        let file = file.filter(|s| !s.is_empty());
        match (inline, file) {
            (Some(_), Some(_)) => Err(self.err(
                Some(&format!("tls_server_config.{inline_field}")),
                format!("{inline_field} and {file_field} are both set: use one"),
            )),
            (Some(text), None) => Ok(Some((
                text.into_bytes(),
                format!("tls_server_config.{inline_field}"),
            ))),
            (None, Some(f)) => {
                // Relative to the configuration file, as in the toolkit.
                let p = self.dir.join(&f);
                let field = format!("tls_server_config.{file_field}");
                let bytes = self.read(&p).map_err(|e| {
                    self.err(Some(&field), format!("cannot read {}: {e}", p.display()))
                })?;
                Ok(Some((bytes, format!("{field} ({})", p.display()))))
            }
            (None, None) if required => Err(self.err(
                Some("tls_server_config"),
                format!("missing one of {inline_field} or {file_field}"),
            )),
            (None, None) => Ok(None),
        }
    }

    fn tls(
        &mut self,
        t: TlsFile,
        summary: &mut Summary,
    ) -> Result<Option<Arc<ServerConfig>>, WebConfigError> {
        let nonempty = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
        let enabled = [
            &t.cert,
            &t.key,
            &t.client_ca,
            &t.cert_file,
            &t.key_file,
            &t.client_auth_type,
            &t.client_ca_file,
        ]
        .into_iter()
        .any(nonempty);
        if !enabled {
            let set: Vec<&str> = [
                ("client_allowed_sans", t.client_allowed_sans.is_some()),
                ("min_version", t.min_version.is_some()),
                ("max_version", t.max_version.is_some()),
                ("cipher_suites", t.cipher_suites.is_some()),
                (
                    "prefer_server_cipher_suites",
                    t.prefer_server_cipher_suites.is_some(),
                ),
                ("curve_preferences", t.curve_preferences.is_some()),
            ]
            .into_iter()
            .filter_map(|(n, set)| set.then_some(n))
            .collect();
            if set.is_empty() {
                return Ok(None);
            }
            return Err(self.err(
                Some("tls_server_config"),
                format!(
                    "{} set, but no certificate: TLS is on only with cert_file and key_file (or cert and key)",
                    set.join(", ")
                ),
            ));
        }

        let (cert_pem, cert_field) = self
            .pem_source(t.cert, t.cert_file, "cert", "cert_file", true)?
            .expect("required");
        let (key_pem, key_field) = self
            .pem_source(t.key, t.key_file, "key", "key_file", true)?
            .expect("required");
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(Some(&cert_field), format!("not valid PEM: {e}")))?;
        let Some(leaf) = chain.first() else {
            return Err(self.err(Some(&cert_field), "no PEM CERTIFICATE block found"));
        };
        // Read as clients will read it (webpki: strict DER), then for its
        // dates (x509-parser): both must accept it.
        let unreadable = |e: &dyn std::fmt::Display| format!("cannot read the certificate ({e})");
        rustls::server::ParsedCertificate::try_from(leaf)
            .map_err(|e| self.err(Some(&cert_field), unreadable(&e)))?;
        let info = x509::parse(leaf).map_err(|e| self.err(Some(&cert_field), unreadable(&e)))?;
        if self.now < info.not_before {
            return Err(self.err(
                Some(&cert_field),
                format!(
                    "the certificate is not valid yet: valid from {} to {}",
                    x509::format_time(info.not_before),
                    x509::format_time(info.not_after)
                ),
            ));
        }
        if self.now > info.not_after {
            return Err(self.err(
                Some(&cert_field),
                format!(
                    "the certificate expired on {}",
                    x509::format_time(info.not_after)
                ),
            ));
        }
        summary.cert_not_after = Some(info.not_after);
        // Never quote the key's content in an error.
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            let why = match e {
                rustls::pki_types::pem::Error::NoItemsFound => {
                    "no PEM private key found (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
                        .to_string()
                }
                e => format!("not a valid PEM private key ({})", pem_error_kind(&e)),
            };
            self.err(Some(&key_field), why)
        })?;

        let auth_name = t.client_auth_type.unwrap_or_default();
        let client_auth = ClientAuth::parse(&auth_name).ok_or_else(|| {
            self.err(
                Some("tls_server_config.client_auth_type"),
                format!(
                    "unknown value {auth_name:?}: use one of {}",
                    ClientAuth::NAMES
                ),
            )
        })?;
        summary.client_auth = Some(client_auth);
        let ca = self.pem_source(
            t.client_ca,
            t.client_ca_file,
            "client_ca",
            "client_ca_file",
            false,
        )?;
        let client_cas = match ca {
            None => None,
            Some((pem, field)) => {
                if client_auth == ClientAuth::NoClientCert {
                    return Err(self.err(
                        Some(&field),
                        "a client CA is set but client_auth_type is NoClientCert: set client_auth_type (RequireAndVerifyClientCert to require verified client certificates) or remove the CA",
                    ));
                }
                let certs = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| self.err(Some(&field), format!("not valid PEM: {e}")))?;
                let mut roots = RootCertStore::empty();
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(self.err(Some(&field), "no usable CA certificate found"));
                }
                Some(roots)
            }
        };
        if client_auth.verifies() && client_cas.is_none() {
            return Err(self.err(
                Some("tls_server_config.client_auth_type"),
                format!("{client_auth} needs client_ca_file (or client_ca) to verify client certificates against"),
            ));
        }
        let allowed_sans = match t.client_allowed_sans {
            None => None,
            Some(sans) => {
                let field = Some("tls_server_config.client_allowed_sans");
                if !client_auth.requires() {
                    return Err(self.err(
                        field,
                        format!("needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert, not {client_auth} (a client could connect without a certificate)"),
                    ));
                }
                if sans.is_empty() {
                    return Err(self.err(field, "is empty: no client could connect"));
                }
                Some(sans)
            }
        };
        let version = |v: Option<String>, field: &str, default| match v.as_deref() {
            None | Some("") => Ok(default),
            Some(s) => tls::parse_version(s).map_err(|e| self.err(Some(field), e)),
        };
        let min_version = version(
            t.min_version,
            "tls_server_config.min_version",
            tls::TlsVersion::Tls12,
        )?;
        let max_version = version(
            t.max_version,
            "tls_server_config.max_version",
            tls::TlsVersion::Tls13,
        )?;
        if min_version > max_version {
            return Err(self.err(
                Some("tls_server_config.min_version"),
                "is above max_version",
            ));
        }
        let cipher_suites = tls::parse_cipher_suites(&t.cipher_suites.unwrap_or_default())
            .map_err(|e| self.err(Some("tls_server_config.cipher_suites"), e))?;
        let curves = tls::parse_curves(&t.curve_preferences.unwrap_or_default())
            .map_err(|e| self.err(Some("tls_server_config.curve_preferences"), e))?;
        let config = tls::build(tls::TlsSettings {
            chain,
            key,
            client_auth,
            client_cas,
            allowed_sans,
            min_version,
            max_version,
            cipher_suites,
            curves,
            prefer_server_cipher_suites: t.prefer_server_cipher_suites.unwrap_or(true),
        })
        .map_err(|e| {
            let field = match e.field {
                "key_file" => key_field.clone(),
                f => format!("tls_server_config.{f}"),
            };
            self.err(Some(&field), e.message)
        })?;
        Ok(Some(config))
    }
}

/// A PEM error without the data it may quote.
fn pem_error_kind(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "a section has no END line",
        E::IllegalSectionStart { .. } => "a malformed BEGIN line",
        E::Base64Decode(_) => "bad base64",
        E::Io(_) => "read error",
        E::NoItemsFound => "nothing found",
        _ => "malformed",
    }
}

// ---------------------------------------------------------------------------
// The security state the server uses.

/// The web server's security settings in force, and the means to reload
/// them. Cheap to share: the server holds it in an `Arc`.
pub struct WebSecurity {
    source: Option<PathBuf>,
    tls: bool,
    policy: RwLock<Arc<Policy>>,
    digest: Mutex<[u8; 32]>,
    /// The digest of the last file that failed to load: logged once.
    failed: Mutex<Option<[u8; 32]>>,
    authenticator: auth::Authenticator,
    limiter: Mutex<Option<(RateLimit, TokenBucket)>>,
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
    pub fn disabled() -> WebSecurity {
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
        let limiter = policy.rate_limit.map(|r| (r, TokenBucket::new(r)));
        WebSecurity {
            source,
            tls: policy.tls(),
            policy: RwLock::new(Arc::new(policy)),
            digest: Mutex::new(digest),
            failed: Mutex::new(None),
            authenticator: auth::Authenticator::default(),
            limiter: Mutex::new(limiter),
            reload_interval: DEFAULT_RELOAD_INTERVAL,
        }
    }

    /// Sets how often [`WebSecurity::watch`] looks for changes.
    pub fn with_reload_interval(mut self, every: Duration) -> Self {
        self.reload_interval = every.max(Duration::from_millis(10));
        self
    }

    /// The file this was loaded from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Whether the server speaks TLS (fixed for the life of the process).
    pub fn tls_enabled(&self) -> bool {
        self.tls
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The TLS server configuration in force, for the next handshake.
    pub fn tls_config(&self) -> Option<Arc<ServerConfig>> {
        self.current().tls.clone()
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
        let current = *self.digest.lock().unwrap_or_else(|e| e.into_inner());
        if digest == current && !force {
            return (digest, Ok(Reloaded::Unchanged));
        }
        let policy = match result {
            Ok(p) => p,
            Err(e) => return (digest, Err(e)),
        };
        if policy.tls() != self.tls {
            let e = WebConfigError {
                file: path.clone(),
                field: Some("tls_server_config".into()),
                message: format!(
                    "TLS was {} at start-up and this version would turn it {}: that needs a restart",
                    if self.tls { "on" } else { "off" },
                    if self.tls { "off" } else { "on" }
                ),
            };
            return (digest, Err(e));
        }
        if digest == current {
            return (digest, Ok(Reloaded::Unchanged));
        }
        {
            let mut limiter = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
            if limiter.as_ref().map(|(r, _)| *r) != policy.rate_limit {
                *limiter = policy.rate_limit.map(|r| (r, TokenBucket::new(r)));
            }
        }
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
        *self.digest.lock().unwrap_or_else(|e| e.into_inner()) = digest;
        (digest, Ok(Reloaded::Applied))
    }

    /// One reload attempt, logged. A failure is logged once per version of
    /// the files, not at every poll.
    fn reload_logged(&self, force: bool) {
        let (digest, result) = self.reload_digest(force);
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
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
    pub async fn watch(self: Arc<Self>) {
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

    /// Applies the rate limit and basic authentication to a request. `Err`
    /// is the response to send instead (429 or 401, with the configured
    /// headers).
    pub async fn authorize<B>(
        &self,
        policy: &Policy,
        req: &Request<B>,
        peer: SocketAddr,
    ) -> Result<(), Response<Chunks>> {
        if let Some((_, bucket)) = self
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            if !bucket.allow(Instant::now()) {
                let mut r = respond(429, "text/plain; charset=utf-8", "Too Many Requests\n");
                policy.add_headers(&mut r);
                return Err(r);
            }
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
            burst: r.burst as f64,
            tokens: r.burst as f64,
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

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "ibx-webconfig-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn load_err(yaml: &str) -> WebConfigError {
        let d = tmpdir("err");
        let p = write(&d, "web.yml", yaml);
        let r = load_policy(&p, now_unix()).1;
        let _ = std::fs::remove_dir_all(&d);
        match r {
            Ok(_) => panic!("loaded: {yaml}"),
            Err(e) => e,
        }
    }

    #[test]
    fn empty_and_comment_only_files_turn_nothing_on() {
        for yaml in [
            "",
            "# nothing\n",
            "{}",
            "basic_auth_users:\n",
            "tls_server_config: {}\n",
        ] {
            let d = tmpdir("empty");
            let p = write(&d, "web.yml", yaml);
            let policy = load_policy(&p, now_unix()).1.unwrap();
            let _ = std::fs::remove_dir_all(&d);
            assert!(!policy.tls() && policy.users() == 0, "{yaml:?}");
        }
    }

    #[test]
    fn errors_name_the_file_the_field_and_the_line() {
        let e = load_err("tls_server_config:\n  cert_fil: x.pem\n");
        let s = e.to_string();
        assert!(
            s.contains("web.yml") && s.contains("cert_fil") && s.contains("line 2"),
            "{s}"
        );
        let e = load_err("basic_auth_users: [\n");
        assert!(e.to_string().contains("invalid YAML"), "{e}");
        let e = load_err("frobnicate: 1\n");
        assert!(e.to_string().contains("unknown field `frobnicate`"), "{e}");
        let e = load_err("basic_auth_users:\n  alice: hunter2\n");
        assert_eq!(e.field.as_deref(), Some("basic_auth_users.alice"));
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = load_err("tls_server_config:\n  cert_file: nope.pem\n  key_file: nope.key\n");
        assert_eq!(e.field.as_deref(), Some("tls_server_config.cert_file"));
        assert!(e.message.contains("nope.pem"), "{e}");
        let e = load_err("tls_server_config:\n  min_version: TLS13\n");
        assert!(e.message.contains("no certificate"), "{e}");
        let e = load_err("http_server_config:\n  headers:\n    Server: me\n");
        assert_eq!(
            e.field.as_deref(),
            Some("http_server_config.headers.Server")
        );
        let e = load_err("http_server_config:\n  headers:\n    X-Frame-Options: allow\n");
        assert!(e.message.contains("deny"), "{e}");
        let e = load_err("rate_limit:\n  interval: 1s\n");
        assert_eq!(e.field.as_deref(), Some("rate_limit.burst"));
        let e = load_err("rate_limit:\n  interval: soon\n  burst: 1\n");
        assert_eq!(e.field.as_deref(), Some("rate_limit.interval"));
        let e = load_err("tls_server_config:\n  cert: x\n  cert_file: y\n  key: z\n");
        assert!(e.message.contains("both set"), "{e}");
    }

    #[test]
    fn headers_are_accepted_case_insensitively() {
        let d = tmpdir("headers");
        let p = write(
            &d,
            "web.yml",
            "http_server_config:\n  http2: false\n  headers:\n    x-frame-options: deny\n    Strict-Transport-Security: max-age=31536000\n    X-XSS-Protection: ''\n",
        );
        let policy = load_policy(&p, now_unix()).1.unwrap();
        let _ = std::fs::remove_dir_all(&d);
        let mut r = Response::new(());
        policy.add_headers(&mut r);
        assert_eq!(r.headers()["x-frame-options"], "deny");
        assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
        assert!(!r.headers().contains_key("x-xss-protection"));
    }

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
}

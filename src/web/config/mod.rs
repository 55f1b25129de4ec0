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
//! Three parts, so that each can be read and changed on its own:
//!
//! * `file`: the format and its loader, from YAML (and the PEM files it
//!   names) to a checked [`Policy`]. Pure but for reading files: no state.
//! * `reload`: [`WebSecurity`], the policy in force, swapped when the files
//!   change; the server holds it.
//! * `gate`: what every request passes, the rate limit then basic auth.
//! * `settings`: [`WebConfig`], the `--web.*` flags the server starts from.
//!
//! and what they use: `tls` turns checked settings into a rustls
//! configuration (served with the aws-lc-rs provider the AWS SDK already
//! uses, TLS 1.2 and 1.3 only), `x509` reads certificate dates and names.
//!
//! Every error of the module is a [`WebConfigError`]: the field to blame and
//! why, with the file named once, by the loader.

mod file;
mod gate;
mod reload;
mod settings;
mod tls;
mod x509;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use hyper::Response;
use rustls::ServerConfig;

pub(crate) use file::parse_web_config_file;
pub use reload::{Reloaded, WebSecurity};
pub use settings::WebConfig;

/// A web configuration file that cannot be used. The message names the file
/// and the field, and never quotes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("web configuration file {}: {}{message}", file.display(), field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct WebConfigError {
    file: PathBuf,
    field: Option<String>,
    message: String,
}

impl WebConfigError {
    /// A problem with the file as a whole (unreadable, not YAML).
    pub(crate) fn whole(message: impl Into<String>) -> Self {
        Self {
            file: PathBuf::new(),
            field: None,
            message: message.into(),
        }
    }

    /// A problem with one field, like `tls_server_config.cert_file`.
    pub(crate) fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: PathBuf::new(),
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Names the file. The parts of the loader do not know it, so the loader
    /// adds it once, to whatever error comes out.
    pub(crate) fn in_file(mut self, file: &Path) -> Self {
        self.file = file.to_path_buf();
        self
    }

    /// The web configuration file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The offending field, like `tls_server_config.cert_file`; `None` when
    /// the file as a whole cannot be used.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// One version of the file, checked and ready to serve with. Built by the
/// loader, held by [`WebSecurity`], read by the gate for every request.
#[derive(Debug, Default)]
pub struct Policy {
    tls: Option<Arc<ServerConfig>>,
    users: gate::Users,
    headers: Vec<(HeaderName, HeaderValue)>,
    rate_limit: Option<gate::RateLimit>,
    /// Facts for the logs.
    summary: Summary,
}

/// What the logs say about a policy when it comes into force.
#[derive(Debug, Clone, Default)]
struct Summary {
    client_auth: Option<tls::ClientAuth>,
    /// The server certificate's `notAfter`, Unix seconds.
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
    pub(crate) fn add_headers<B>(&self, r: &mut Response<B>) {
        for (k, v) in &self.headers {
            r.headers_mut().insert(k.clone(), v.clone());
        }
    }
}

/// Now, in Unix seconds: when certificates must be valid.
fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

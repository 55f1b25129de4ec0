//! The web server's settings from the flags: where metrics are served, how
//! many connections, and the web configuration file with what it loads to.

use std::path::PathBuf;
use std::sync::Arc;

use super::{WebConfigError, WebSecurity};
use crate::web::serve::ServeOptions;

/// `--web.*`.
#[derive(Debug, Clone)]
pub struct WebConfig {
    pub telemetry_path: String,
    pub serve: ServeOptions,
    /// `--web.config.file`: TLS, basic auth, response headers and a rate
    /// limit, in the exporter-toolkit's format.
    pub config_file: Option<PathBuf>,
    /// The security settings, once loaded from `config_file` (see
    /// [`WebConfig::load_security`]); tests may set them directly.
    pub security: Option<Arc<WebSecurity>>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            telemetry_path: "/metrics".into(),
            serve: ServeOptions::default(),
            config_file: None,
            security: None,
        }
    }
}

impl WebConfig {
    /// Loads and checks `config_file` into `security`, unless already done.
    pub fn load_security(&mut self) -> Result<(), WebConfigError> {
        if self.security.is_none() {
            if let Some(path) = &self.config_file {
                self.security = Some(Arc::new(WebSecurity::load(path)?));
            }
        }
        Ok(())
    }
}

//! Layer 2: the web server and its `--web.config.file`, which know nothing
//! of Image Builder: what a Rust version of Prometheus' exporter-toolkit
//! would hold. [`serve`] accepts connections (HTTP/1.1, TLS, a connection
//! limit, deadlines, graceful shutdown); [`config`] reads, checks and
//! reloads the web configuration (TLS, basic auth, headers, rate limit).
//! The exporter's own routes are the `server` layer's.

pub mod config;
pub(crate) mod serve;

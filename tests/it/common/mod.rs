//! What only the behaviour tests use: simulated accounts ([`World`]), an
//! exporter over the real SDK pointed at one ([`World::spawn_exporter`]),
//! the binaries run as a user runs them, log capture, and a scraped page to
//! query.

pub mod harness;
pub mod logs;
pub mod metrics;
pub mod process;
pub mod world;

pub use crate::shared::http::{raw_request, try_request};
pub use crate::shared::running::Running;
pub use harness::Harness;
pub use metrics::Metrics;
pub use world::*;

/// An endpoint that refuses connections: port 1 (tcpmux), where nothing
/// listens and no test listens. A port `free_port` found free can be taken
/// a moment later by a test of the other binary, which runs beside
/// (`.ci/run`): the requests meant to be refused would then be answered.
pub const CLOSED: &str = "http://127.0.0.1:1";

/// GET over a fresh connection: (status, headers, body).
pub async fn get(url: &str) -> (u16, hyper::HeaderMap, String) {
    request("GET", url).await
}

pub async fn request(method: &str, url: &str) -> (u16, hyper::HeaderMap, String) {
    crate::shared::http::try_request(method, url)
        .await
        .expect("HTTP request")
}

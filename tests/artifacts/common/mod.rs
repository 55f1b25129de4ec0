//! What only the artifacts' tests use: the dashboard read as Grafana reads
//! it, a Prometheus server driven through its HTTP API, and the links of the
//! Markdown pages.

pub mod grafana;
pub mod links;
pub mod promapi;

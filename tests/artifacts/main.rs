//! What the project ships besides the binary, checked as users get it: the
//! Grafana dashboard, the alerting rules, the Kubernetes manifests generated
//! from them, the documentation, and the layering of `src/`; then the
//! dashboard and the rules against a real Prometheus scraping the exporter.
//! `cargo test --test artifacts`, one module with
//! `cargo test --test artifacts rules::`.

mod common;
#[path = "../shared/mod.rs"]
mod shared;

mod dashboard;
mod e2e_prometheus;
mod kubernetes;
mod layering;
mod readme;
mod rules;

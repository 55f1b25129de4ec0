//! Prometheus exporter for AWS EC2 Image Builder workflow step executions.

pub mod aws;
pub mod clock;
pub mod counters;
pub mod discovery;
pub mod metrics;
pub mod model;
pub mod snapshot;
pub mod timestamp;
pub mod tracked;

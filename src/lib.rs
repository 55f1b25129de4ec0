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
pub mod httpserve;
pub mod simulator;
pub mod loglimit;
pub mod refresh;
pub mod server;
pub mod service;
pub mod app;
pub mod config;
pub mod logging;

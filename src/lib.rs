//! Prometheus exporter for AWS EC2 Image Builder workflow step executions.

pub mod app;
pub mod aws;
pub mod clock;
pub mod config;
pub mod counters;
pub mod discovery;
pub mod gzip;
pub mod httpserve;
pub mod logging;
pub mod loglimit;
pub mod metrics;
pub mod model;
pub mod refresh;
pub mod server;
pub mod service;
pub mod simulator;
pub mod snapshot;
pub mod targets;
pub mod timestamp;
pub mod tracked;
pub mod views;
pub mod webconfig;

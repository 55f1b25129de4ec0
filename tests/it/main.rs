//! The exporter's behaviour, one module per concern: the real SDK against
//! the simulator, in-process or as the binary, `/metrics` read by a
//! Prometheus parser. One test binary (not one per file), so that the SDK
//! is linked once: `cargo test --test it`, one module with
//! `cargo test --test it events::`.

mod common;
#[path = "../shared/mod.rs"]
mod shared;

mod aws_errors;
mod cli;
mod coldstart;
mod events;
mod exporter;
mod faults;
mod load;
mod oncall;
mod organization;
mod properties;
mod readiness;
mod targets;
mod tls;

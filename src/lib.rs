//! Prometheus exporter for AWS EC2 Image Builder workflow step executions.
//!
//! # Layers
//!
//! Modules are layered so that a change low down never needs one higher
//! up, and a newcomer can read the code bottom-up. A module may use its own
//! layer and those below it, never one above (`tests/layering.rs` reads the
//! `crate::` paths of `src/` against this list, and sibling files of one
//! module may not use each other both ways):
//!
//! 1. model and parsing: `allocator`, `version`, `clock`, `sync`, `model`, `parse`, `timestamp`, `metrics`, `gzip`, `loglimit`, `logging`, `httpserve`
//! 2. aws: `aws`
//! 3. tracking and counters: `tracked`, `outcomes`, `counters`, `views`
//! 4. snapshot: `snapshot`
//! 5. refresh and service: `discovery`, `refresh`, `events`, `service`
//! 6. server: `webconfig`, `server`
//! 7. app: `targets`, `config`, `app`
//!
//! The data flows the same way: the AWS client turns answers into the
//! [`model`]; [`discovery`] decides what to read and keeps it in the
//! [`tracked`] state; [`views`] turns that state into rows, which
//! [`snapshot`] encodes once per refresh; [`refresh`] and [`service`] swap
//! snapshots in whole and serve them; [`server`] speaks HTTP; [`app`] wires
//! it from the [`config`].

pub mod allocator;
pub mod app;
pub mod aws;
pub mod clock;
pub mod config;
pub(crate) mod counters;
pub(crate) mod discovery;
pub(crate) mod events;
pub mod gzip;
pub(crate) mod httpserve;
pub mod logging;
pub(crate) mod loglimit;
pub mod metrics;
pub mod model;
pub(crate) mod outcomes;
pub mod parse;
pub(crate) mod refresh;
pub mod server;
pub mod service;
pub(crate) mod snapshot;
pub(crate) mod sync;
pub mod targets;
pub mod timestamp;
pub(crate) mod tracked;
pub mod version;
pub(crate) mod views;
pub mod webconfig;

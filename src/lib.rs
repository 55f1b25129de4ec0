//! Prometheus exporter for AWS EC2 Image Builder workflow step executions.
//!
//! # Layers
//!
//! One folder per layer. A module may use its own layer and those below it,
//! never one above, so that a change low down never needs one higher up and
//! a newcomer can read the code bottom-up; sibling files of one module never
//! use each other both ways. `tests/artifacts/layering.rs` checks every path of
//! `src/`, imports grouped or re-exported included, against this list:
//!
//! 1. base: [`base`], what every layer may use and that knows nothing of Image Builder
//! 2. web: [`web`], the web server and its `--web.config.file` (an exporter-toolkit)
//! 3. model: [`model`], the project's own types for Image Builder's resources
//! 4. metrics: [`metrics`], the metric contract and the text format
//! 5. aws: [`aws`], the narrow AWS client and the SDK-to-model conversions
//! 6. tracking: [`tracking`], what is held between refreshes, and its rows
//! 7. snapshot: [`snapshot`], the page encoded once per refresh
//! 8. refresh: [`refresh`], discovery, events, the organisation, targets and the exporter
//! 9. server: [`server`], the exporter's routes
//! 10. app: [`app`], flags, the targets file, member accounts and the wiring
//!
//! The data flows the same way: the AWS client turns answers into the
//! model; discovery decides what to read and keeps it in the tracked state;
//! views turn that state into rows, which the snapshot encodes once per
//! refresh; targets swap snapshots in whole and the exporter serves them;
//! the server speaks HTTP; the app wires it from the options.

pub mod app;
pub mod aws;
pub mod base;
pub mod metrics;
pub mod model;
pub mod refresh;
pub mod server;
pub(crate) mod snapshot;
pub(crate) mod tracking;
pub mod web;

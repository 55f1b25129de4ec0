//! Metrics: the contract of names, the model the snapshot fills in, and the
//! text encoder.
//!
//! Every family the exporter serves is a row of one table ([`family`]):
//! the snapshot writes its headers from it, the exporter registers its own
//! metrics from it, and the metrics reference (docs/metrics.md) is
//! generated from it ([`reference`]).
//!
//! The workflow families are rendered from our own model because they are
//! large and change only when a refresh completes: they are encoded once
//! per refresh and copied per scrape (see `snapshot`). The exporter's own
//! small, live metrics use the `prometheus` crate ([`exporter_metrics`]).

pub mod exporter_metrics;
pub mod family;
pub mod labels;
pub mod reference;
pub mod text;

pub use exporter_metrics::ExporterMetrics;

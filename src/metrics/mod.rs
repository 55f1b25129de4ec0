//! Metrics: the contract of names, the model the snapshot fills in, and the
//! text encoder.
//!
//! The workflow families are rendered from our own model ([`family`]) because
//! they are large and change only when a refresh completes: they are encoded
//! once per refresh and copied per scrape (see `snapshot`). The exporter's own
//! small, live metrics use the `prometheus` crate ([`exporter`]).

pub mod exporter;
pub mod family;
pub mod labels;
pub mod text;

pub use exporter::ExporterMetrics;

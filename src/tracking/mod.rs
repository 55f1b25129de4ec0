//! Layer 4: what the exporter holds between refreshes and what it makes of
//! it, all pure functions of the model: the tracked builds and which of
//! their executions are the latest ([`tracked`]), the outcomes of finished
//! steps ([`outcomes`]), the failure counters ([`counters`]) and the rows
//! the metrics show ([`views`]).

pub(crate) mod counters;
pub(crate) mod outcomes;
pub(crate) mod tracked;
pub(crate) mod views;

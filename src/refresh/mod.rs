//! Layer 6: keeping each target's snapshot current and serving it.
//!
//! * [`discovery`]: the tracker, which decides what to read (new builds,
//!   what changed, the backfill) and keeps what it read;
//! * [`target`]: a [`Target`] (one account and region) runs its tracker's
//!   refreshes, at most one at a time, and swaps its snapshot in whole;
//! * [`events`]: follows Image Builder's events through SQS and asks the
//!   targets to read what they name;
//! * [`exporter`]: the [`Exporter`], every target behind one page, as a
//!   scrape asks for it;
//! * [`page`]: the last gzip page, served again to the scrapes right after;
//! * [`organization`]: an AWS organisation's accounts as targets, listed
//!   again every `--organization.interval`;
//! * [`shard`]: which targets this replica serves.

pub(crate) mod discovery;
pub(crate) mod events;
pub mod exporter;
pub mod organization;
pub(crate) mod page;
pub mod shard;
pub(crate) mod target;

pub use exporter::Exporter;
pub use target::Target;

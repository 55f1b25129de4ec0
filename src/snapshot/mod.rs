//! The immutable result of a refresh, and its rendering at scrape time.
//!
//! A refresh ends by building a [`Snapshot`] and swapping it in whole:
//! scrapes never see half a refresh. Most of the text is encoded once, here;
//! only the few time-dependent values (how long a running step has been
//! running, and its headroom) are computed per scrape. That keeps `/metrics`
//! close to the cost of copying bytes however large the account.

mod encode;
mod render;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;

#[cfg(test)]
use render::render_text;
pub use render::{render, render_gzip};

use crate::base::clock::{secs, Nanos, NANOS_PER_SEC};
use crate::metrics::family::Family;
use crate::metrics::labels::TagAllowList;
use crate::tracking::counters::StepCounters;
use crate::tracking::views::Views;

/// A value that depends on the time of the scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Live {
    /// now − start (never below 0: a clock behind the API's is not a
    /// negative duration).
    Elapsed { start: Nanos },
    /// timeout − (now − start).
    Headroom { start: Nanos, timeout: i64 },
}

impl Live {
    fn at(self, now: Nanos) -> f64 {
        match self {
            Live::Elapsed { start } => secs(now.saturating_sub(start).max(0)),
            Live::Headroom { start, timeout } => {
                secs(timeout * NANOS_PER_SEC - now.saturating_sub(start).max(0))
            }
        }
    }
}

/// One family's part of a snapshot.
#[derive(Debug, Default, Clone)]
struct Body {
    /// Samples that do not depend on time, encoded once; shared by every
    /// scrape without copying.
    text: Bytes,
    /// Samples computed at scrape time: the encoded `name{labels} ` and how
    /// to compute the value.
    live: Vec<(Box<[u8]>, Live)>,
}

impl Body {
    fn is_empty(&self) -> bool {
        self.text.is_empty() && self.live.is_empty()
    }
}

/// One target's data as of its last refresh.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub target: Arc<str>,
    bodies: Vec<Body>,
    /// The (account, region) pairs its series belong to.
    scopes: Vec<(Arc<str>, Arc<str>)>,
}

impl Snapshot {
    /// What is served before anything was read.
    pub fn empty(target: &str) -> Self {
        Self {
            target: Arc::from(target),
            bodies: vec![Body::default(); Family::ALL.len()],
            scopes: Vec::new(),
        }
    }

    /// Encodes the views and counters.
    pub fn build(
        target: &str,
        views: &Views,
        counters: &StepCounters,
        tags: &TagAllowList,
    ) -> Self {
        let drafts = encode::encode(views, counters, tags);
        Self {
            target: Arc::from(target),
            bodies: drafts
                .into_iter()
                .map(|mut d| {
                    // `Bytes` keeps a Vec's spare capacity, up to as much
                    // again as the text after its doublings; the snapshot
                    // lives until the next refresh, the old one beside the
                    // new while it is built.
                    d.text.shrink_to_fit();
                    d.live.shrink_to_fit();
                    Body {
                        text: Bytes::from(d.text),
                        live: d.live,
                    }
                })
                .collect(),
            scopes: views.scopes(),
        }
    }

    /// Bytes held by the encoded text, for the memory figures.
    pub fn encoded_len(&self) -> usize {
        self.bodies.iter().map(|b| b.text.len()).sum()
    }

    /// The (account, region) pairs this snapshot's series belong to.
    pub fn scopes(&self) -> &[(Arc<str>, Arc<str>)] {
        &self.scopes
    }
}

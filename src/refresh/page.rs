//! The last gzip page, served again to the scrapes that follow it while
//! nothing on it has changed.
//!
//! Each rendering encodes and compresses the exporter's own metrics and
//! the values that depend on the time; for hundreds of targets that is
//! tens of milliseconds, and scrapers that come together (a Prometheus HA
//! pair, federation, someone's curl) would each pay it and each hold a copy.
//! A page is reused while its [`PageKey`] holds (the same snapshots, no
//! [`ExporterMetrics::touch`](crate::metrics::ExporterMetrics::touch)
//! since) and for at most [`FRESH`]: what moves with time alone (a running
//! step's duration, snapshot ages, the process' CPU) is then that much
//! older than the scrape, never more than [`STALE`].

use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OwnedMutexGuard;

use crate::base::clock::{Nanos, NANOS_PER_SEC};
use crate::snapshot::Snapshot;
use crate::web::serve::Chunks;

/// How long a page is served again without a second look.
pub(crate) const FRESH: Nanos = NANOS_PER_SEC;

/// Until this age, a page whose key still holds is served while a newer one
/// is rendered in the background: a burst of scrapes never waits for a
/// rendering that only the clock asked for. Older, a scrape renders its own.
pub(crate) const STALE: Nanos = 2 * NANOS_PER_SEC;

/// What a page shows: the snapshots it renders, in order, and the count of
/// changes to the exporter's own metrics when it was rendered.
pub(crate) struct PageKey {
    pub snapshots: Vec<Arc<Snapshot>>,
    pub changes: u64,
}

struct Page {
    /// The key's snapshots, not kept alive by the page: one swapped out
    /// is freed (but for its pointer's allocation, so no other snapshot
    /// takes its address while the page compares against it).
    snapshots: Vec<Weak<Snapshot>>,
    changes: u64,
    /// The exporter's clock when it was rendered.
    at: Nanos,
    body: Chunks,
}

impl Page {
    /// Snapshots are immutable and swapped whole, so the same pointer is the
    /// same content.
    fn shows(&self, key: &PageKey) -> bool {
        self.changes == key.changes
            && self.snapshots.len() == key.snapshots.len()
            && self
                .snapshots
                .iter()
                .zip(&key.snapshots)
                .all(|(w, a)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(a)))
    }
}

/// What [`PageCache::lookup`] found for a key.
pub(crate) enum Lookup {
    /// Serve it.
    Fresh(Chunks),
    /// Serve it, and render a newer one if none is being rendered.
    Stale(Chunks),
    /// Render one.
    Miss,
}

/// The last gzip page, and one rendering at a time.
#[derive(Default)]
pub(crate) struct PageCache {
    last: Mutex<Option<Arc<Page>>>,
    /// Held while a page is rendered: scrapes that need a new page wait
    /// for one rendering instead of each doing its own.
    rendering: Arc<tokio::sync::Mutex<()>>,
}

impl PageCache {
    pub fn lookup(&self, key: &PageKey, now: Nanos) -> Lookup {
        let last = crate::base::sync::lock(&self.last).clone();
        match last {
            Some(p) if p.shows(key) => {
                let age = now.saturating_sub(p.at);
                // A clock that went back: the page is not known to be fresh.
                if (0..FRESH).contains(&age) {
                    Lookup::Fresh(p.body.clone())
                } else if (0..STALE).contains(&age) {
                    Lookup::Stale(p.body.clone())
                } else {
                    Lookup::Miss
                }
            }
            _ => Lookup::Miss,
        }
    }

    /// Keeps `body` as the page of `key`, rendered at `at`.
    pub fn store(&self, key: &PageKey, at: Nanos, body: &Chunks) {
        *crate::base::sync::lock(&self.last) = Some(Arc::new(Page {
            snapshots: key.snapshots.iter().map(Arc::downgrade).collect(),
            changes: key.changes,
            at,
            body: body.clone(),
        }));
    }

    /// The right to render, waiting for a rendering under way.
    pub async fn render_turn(&self) -> OwnedMutexGuard<()> {
        self.rendering.clone().lock_owned().await
    }

    /// The right to render, if nobody is rendering.
    pub fn try_render_turn(&self) -> Option<OwnedMutexGuard<()>> {
        self.rendering.clone().try_lock_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn key(snapshots: &[Arc<Snapshot>], changes: u64) -> PageKey {
        PageKey {
            snapshots: snapshots.to_vec(),
            changes,
        }
    }

    fn body(text: &'static str) -> Chunks {
        Chunks::new(vec![Bytes::from_static(text.as_bytes())])
    }

    fn text(found: Lookup) -> (&'static str, String) {
        let (kind, c) = match found {
            Lookup::Fresh(c) => ("fresh", c),
            Lookup::Stale(c) => ("stale", c),
            Lookup::Miss => return ("miss", String::new()),
        };
        let bytes: Vec<u8> = c.iter().flat_map(|b| b.iter().copied()).collect();
        (kind, String::from_utf8(bytes).unwrap())
    }

    #[test]
    fn a_page_is_served_again_while_its_snapshots_and_changes_hold() {
        let a = Arc::new(Snapshot::empty("a"));
        let b = Arc::new(Snapshot::empty("b"));
        let cache = PageCache::default();
        assert_eq!(
            text(cache.lookup(&key(std::slice::from_ref(&a), 0), 0)).0,
            "miss"
        );
        cache.store(&key(&[a.clone(), b.clone()], 3), 100, &body("page"));

        let same = key(&[a.clone(), b.clone()], 3);
        assert_eq!(text(cache.lookup(&same, 100)), ("fresh", "page".into()));
        assert_eq!(text(cache.lookup(&same, 100 + FRESH - 1)).0, "fresh");
        // Older than FRESH: still served, while a newer one is rendered.
        assert_eq!(text(cache.lookup(&same, 100 + FRESH)).0, "stale");
        assert_eq!(text(cache.lookup(&same, 100 + STALE - 1)).0, "stale");
        assert_eq!(text(cache.lookup(&same, 100 + STALE)).0, "miss");
        // A clock that went back.
        assert_eq!(text(cache.lookup(&same, 99)).0, "miss");

        // Anything else on the page changed: a new snapshot of a target
        // (equal content, another Arc), a target more or less, another
        // order, the own metrics touched.
        let a2 = Arc::new(Snapshot::empty("a"));
        for other in [
            key(&[a2, b.clone()], 3),
            key(std::slice::from_ref(&a), 3),
            key(&[a.clone(), b.clone(), b.clone()], 3),
            key(&[b.clone(), a.clone()], 3),
            key(&[a.clone(), b.clone()], 4),
        ] {
            assert_eq!(text(cache.lookup(&other, 100)).0, "miss");
        }
    }

    #[test]
    fn a_page_does_not_keep_the_snapshots_it_shows_alive() {
        let a = Arc::new(Snapshot::empty("a"));
        let cache = PageCache::default();
        cache.store(&key(std::slice::from_ref(&a), 0), 0, &body("page"));
        let weak = Arc::downgrade(&a);
        // Swapped out by its target: freed, though the page is kept.
        drop(a);
        assert!(weak.upgrade().is_none());
        let b = Arc::new(Snapshot::empty("a"));
        assert_eq!(text(cache.lookup(&key(&[b], 0), 0)).0, "miss");
    }

    #[tokio::test]
    async fn one_rendering_at_a_time() {
        let cache = PageCache::default();
        let turn = cache.render_turn().await;
        assert!(cache.try_render_turn().is_none());
        drop(turn);
        assert!(cache.try_render_turn().is_some());
    }
}

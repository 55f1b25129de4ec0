//! Discovery: choosing the builds to track from the account's listing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::{RefreshReport, Tracker};
use crate::base::clock::Nanos;
use crate::model::{Build, BuildStatus};
use crate::tracking::tracked::{build_order, TrackedBuild};
use crate::tracking::views::ImageKey;

impl Tracker {
    pub(super) fn discovery_due(&self) -> bool {
        self.last_discovery
            .is_none_or(|t| t.elapsed() >= self.cfg.interval)
    }

    /// Chooses the builds to track from a full listing.
    /// `complete`: the listing skipped nothing, so builds missing from it
    /// are gone.
    pub(super) fn apply_discovery(
        &mut self,
        listed: Vec<Build>,
        now: Nanos,
        complete: bool,
        report: &mut RefreshReport,
    ) {
        let baseline = self
            .baseline
            .get_or_insert_with(|| listed.iter().map(|b| arn_hash(&b.arn)).collect());
        let lookback_start = now.saturating_sub(nanos(self.cfg.lookback));

        let mut by_arn: HashMap<Arc<str>, Build> = HashMap::new();
        for b in listed {
            if self
                .cfg
                .image_filter
                .as_ref()
                .is_none_or(|re| re.is_match(&b.name))
            {
                by_arn.insert(b.arn.clone(), b);
            }
        }
        let mut last_success: HashMap<ImageKey, Nanos> = HashMap::new();
        for b in by_arn.values() {
            if let (BuildStatus::Available, Some(created)) = (&b.status, b.date_created) {
                let slot = last_success.entry(ImageKey::of(b)).or_insert(created);
                *slot = (*slot).max(created);
            }
        }
        if complete {
            self.last_success = last_success;
        } else {
            // Some items were skipped: what they may be keeps its value.
            for (k, t) in last_success {
                let slot = self.last_success.entry(k).or_insert(t);
                *slot = (*slot).max(t);
            }
        }
        let mut newest: HashMap<&str, &Build> = HashMap::new();
        for b in by_arn.values() {
            let slot = newest.entry(&b.name).or_insert(b);
            if build_order(b, slot).is_gt() {
                *slot = b;
            }
        }
        let newest: HashSet<Arc<str>> = newest.values().map(|b| b.arn.clone()).collect();
        let mut chosen: Vec<&Build> = by_arn
            .values()
            .filter(|b| {
                newest.contains(&b.arn)
                    || b.date_created.is_some_and(|d| d >= lookback_start)
                    || !b.status.is_terminal()
            })
            .collect();

        if chosen.len() > self.cfg.max_builds {
            // Keep, in order of importance: builds in flight, the newest of
            // each image, then the most recent. The oldest finished go first.
            chosen.sort_by(|a, b| {
                let rank = |x: &Build| (!x.status.is_terminal(), newest.contains(&x.arn));
                rank(b).cmp(&rank(a)).then_with(|| build_order(b, a))
            });
            report.dropped_builds = chosen.len() - self.cfg.max_builds;
            chosen.truncate(self.cfg.max_builds);
        }

        let keep: HashSet<Arc<str>> = chosen.iter().map(|b| b.arn.clone()).collect();
        if complete {
            self.builds.retain(|arn, _| keep.contains(arn));
        }
        for b in chosen {
            match self.builds.get_mut(&b.arn) {
                Some(tb) => tb.build = b.clone(),
                None => {
                    let baseline = baseline.contains(&arn_hash(&b.arn));
                    self.builds.insert(
                        b.arn.clone(),
                        TrackedBuild {
                            build: b.clone(),
                            workflows: None,
                            frozen: false,
                            baseline,
                        },
                    );
                }
            }
        }
    }
}

pub(super) fn arn_hash(arn: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    arn.hash(&mut h);
    h.finish()
}

/// A configured duration as nanoseconds, saturating (`--discovery.lookback 300y`).
pub(super) fn nanos(d: Duration) -> Nanos {
    Nanos::try_from(d.as_nanos()).unwrap_or(Nanos::MAX)
}

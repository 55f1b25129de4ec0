//! Sharding across replicas, the way kube-state-metrics does it: each of
//! `--shard.count` replicas, numbered by `--shard.index` (or by its
//! StatefulSet pod's ordinal), serves the targets that rendezvous hashing
//! gives it, and nothing else. No coordinator: every replica computes the
//! same assignment from the same list.
//!
//! Rendezvous (highest random weight) hashing: a target goes to the shard
//! with the highest weight for it, so going from N to N+1 replicas moves
//! only the targets the new shard now wins, about 1/(N+1) of them, and
//! removing a replica moves only its own.

/// This replica's share of the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// `0..count`.
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    /// One replica serves every target.
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl Shard {
    /// The shard that serves the target `key` (its name: `ACCOUNT/REGION`
    /// for an organisation's targets).
    ///
    /// ```
    /// use imagebuilder_exporter::refresh::shard::Shard;
    /// let three = |i| Shard { index: i, count: 3 };
    /// let owners = (0..3).filter(|&i| three(i).owns("210987654321/eu-west-1")).count();
    /// assert_eq!(owners, 1);
    /// ```
    pub fn of(key: &str, count: u32) -> u32 {
        (0..count.max(1))
            .max_by_key(|&s| (weight(key, s), s))
            .unwrap_or(0)
    }

    /// Whether this replica serves the target `key`.
    pub fn owns(&self, key: &str) -> bool {
        self.count <= 1 || Self::of(key, self.count) == self.index
    }

    /// Whether there is more than one shard.
    pub fn is_sharded(&self) -> bool {
        self.count > 1
    }
}

/// A weight that every replica computes alike, whatever its build: FNV-1a
/// over the key and the shard number, then SplitMix64's finaliser to spread
/// FNV's weak low bits. (std's hasher is not promised to stay the same
/// across Rust releases, and replicas of two releases run side by side
/// during a rollout.)
fn weight(key: &str, shard: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes().chain(shard.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The ordinal of a StatefulSet pod from its name (`imagebuilder-exporter-2`
/// → 2).
pub fn ordinal(pod_name: &str) -> Option<u32> {
    let (_, n) = pod_name.trim().rsplit_once('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                format!(
                    "{:012}/{}",
                    100_000_000_000u64 + i as u64,
                    ["us-east-1", "eu-west-1"][i % 2]
                )
            })
            .collect()
    }

    #[test]
    fn every_target_has_exactly_one_shard_and_the_shards_are_even() {
        let keys = keys(3000);
        for count in [1u32, 2, 3, 5] {
            let mut per = vec![0usize; count as usize];
            for k in &keys {
                let owners: Vec<u32> = (0..count)
                    .filter(|&i| Shard { index: i, count }.owns(k))
                    .collect();
                assert_eq!(owners.len(), 1, "{k} with {count} shards: {owners:?}");
                per[owners[0] as usize] += 1;
            }
            let even = keys.len() / count as usize;
            for n in &per {
                // Within 10% of an even share.
                assert!(n.abs_diff(even) * 10 <= even, "{count} shards: {per:?}");
            }
        }
    }

    #[test]
    fn one_more_replica_moves_about_its_share_and_only_to_itself() {
        let keys = keys(3000);
        for n in [1u32, 2, 3, 4] {
            let moved: Vec<&String> = keys
                .iter()
                .filter(|k| Shard::of(k, n) != Shard::of(k, n + 1))
                .collect();
            assert!(
                moved.iter().all(|k| Shard::of(k, n + 1) == n),
                "a target moved between old shards"
            );
            let share = keys.len() / (n as usize + 1);
            assert!(
                moved.len().abs_diff(share) * 10 <= share,
                "{n} → {}: {} moved, a share is {share}",
                n + 1,
                moved.len()
            );
        }
    }

    #[test]
    fn the_assignment_does_not_change_between_builds() {
        // Pinned: a replica of another build must agree with this one.
        assert_eq!(
            (0..8)
                .map(|i| Shard::of(&format!("{:012}/us-east-1", i), 3))
                .collect::<Vec<_>>(),
            PINNED
        );
    }
    const PINNED: [u32; 8] = [2, 0, 0, 0, 0, 0, 1, 1];

    #[test]
    fn ordinals_come_from_statefulset_pod_names() {
        assert_eq!(ordinal("imagebuilder-exporter-2"), Some(2));
        assert_eq!(ordinal("exporter-10"), Some(10));
        for bad in [
            "imagebuilder-exporter",
            "exporter-",
            "exporter-x1",
            "7",
            "exporter-7abc",
        ] {
            assert_eq!(ordinal(bad), None, "{bad}");
        }
    }
}

//! The partition map: how a table and each of its global secondary indexes are cut into ranges
//! of the 64-bit partition-key hash, which Raft group serves each range, at which epoch, and on
//! which nodes its replicas belong.
//!
//! Every range of a table (or of one GSI) is covered by exactly one partition: the ranges are
//! disjoint and together span `0..=u64::MAX`. A split replaces one partition by two halves and
//! bumps the epochs of both; a command routed with an older epoch is refused where it is applied
//! and retried by the router with a fresh map (see `shoal-node`'s router).

use serde::{Deserialize, Serialize};

/// A node id (the same ids as Raft peers).
pub type NodeId = u64;

/// One partition: a hash range of a table's items (`index` `None`) or of one global secondary
/// index's entries (`index` `Some(id)`), replicated by the Raft group with the same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionEntry {
    /// Cluster-unique; also the Raft group id.
    pub id: u64,
    /// The global secondary index this partition stores ([`shoal_types::index::IndexDef::id`]);
    /// `None` for a partition of the table's items (and its local indexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// First hash of the range (inclusive).
    pub hash_start: u64,
    /// Last hash of the range (inclusive).
    pub hash_end: u64,
    /// Bumped whenever the range changes (a split); commands carry the epoch they were routed
    /// with and a replica refuses any other.
    pub epoch: u64,
    /// The nodes that should hold a voting replica (placement's target; the group's own
    /// membership converges to it through conf changes).
    #[serde(alias = "initial_voters")]
    pub replicas: Vec<NodeId>,
    /// Bumped by every change of `replicas`. A partition still at generation 0 is bootstrapped
    /// by its first replicas with `replicas` as its voters; later replicas join the running group
    /// (and catch up from a snapshot).
    #[serde(default)]
    pub generation: u64,
    /// The node placement wants to lead the group (leaders are balanced over the nodes); the
    /// group's leader hands leadership over to it when it is a caught-up voter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_leader: Option<NodeId>,
    /// The partition this one was split from: its data comes from the parent's split operation
    /// (copied by each replica of the parent), not from a bootstrap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    /// Set while a partition split off its parent is not running yet (its replicas are copying
    /// the parent's rows and starting its group): placement leaves it where it is until its
    /// first leader clears this.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub splitting: bool,
}

impl PartitionEntry {
    /// Whether `hash` falls in this partition's range.
    pub fn contains(&self, hash: u64) -> bool {
        self.hash_start <= hash && hash <= self.hash_end
    }

    /// Whether the range overlaps `start..=end`.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.hash_start <= end && start <= self.hash_end
    }

    /// The hash at which a split cuts this range in two halves of equal width, or `None` when
    /// the range holds a single hash.
    pub fn midpoint(&self) -> Option<u64> {
        (self.hash_end > self.hash_start)
            .then(|| self.hash_start + (self.hash_end - self.hash_start) / 2 + 1)
    }
}

/// The partitions of one table: its item partitions and those of its global indexes, kept
/// sorted by `(index, hash_start)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartitionMap(Vec<PartitionEntry>);

impl PartitionMap {
    /// A map of `entries` (sorted here).
    pub fn new(mut entries: Vec<PartitionEntry>) -> PartitionMap {
        entries.sort_by_key(|p| (p.index, p.hash_start));
        PartitionMap(entries)
    }

    /// Every partition, sorted by `(index, hash_start)`.
    pub fn all(&self) -> &[PartitionEntry] {
        &self.0
    }

    /// The partitions of the table's items (`index` `None`) or of one global index, in hash
    /// order.
    pub fn of(&self, index: Option<u32>) -> impl Iterator<Item = &PartitionEntry> {
        self.0.iter().filter(move |p| p.index == index)
    }

    /// The partition of `index` (see [`PartitionMap::of`]) whose range holds `hash`.
    pub fn find(&self, index: Option<u32>, hash: u64) -> Option<&PartitionEntry> {
        self.of(index).find(|p| p.contains(hash))
    }

    /// The partitions of `index` overlapping `start..=end`, in hash order.
    pub fn overlapping(
        &self,
        index: Option<u32>,
        start: u64,
        end: u64,
    ) -> impl Iterator<Item = &PartitionEntry> {
        self.of(index).filter(move |p| p.overlaps(start, end))
    }

    /// The partition with id `id`.
    pub fn get(&self, id: u64) -> Option<&PartitionEntry> {
        self.0.iter().find(|p| p.id == id)
    }

    /// The partition with id `id`, to change.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut PartitionEntry> {
        self.0.iter_mut().find(|p| p.id == id)
    }

    /// Adds a partition (keeping the order).
    pub fn insert(&mut self, entry: PartitionEntry) {
        self.0.push(entry);
        self.0.sort_by_key(|p| (p.index, p.hash_start));
    }

    /// Removes the partitions of `index` (a dropped global index); returns them.
    pub fn remove_index(&mut self, index: u32) -> Vec<PartitionEntry> {
        let (gone, kept) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|p| p.index == Some(index));
        self.0 = kept;
        gone
    }

    /// Whether the partitions of every owner (the table, each index) cover the whole hash space
    /// without gaps or overlaps.
    pub fn is_complete(&self) -> bool {
        let mut owners: Vec<Option<u32>> = self.0.iter().map(|p| p.index).collect();
        owners.dedup();
        owners.iter().all(|owner| {
            let mut next: Option<u64> = Some(0);
            for p in self.of(*owner) {
                if Some(p.hash_start) != next || p.hash_end < p.hash_start {
                    return false;
                }
                next = p.hash_end.checked_add(1);
            }
            next.is_none()
        })
    }
}

/// How many partitions a new table (or global index) starts with: as many as DynamoDB's
/// documented per-partition limits (3,000 read and 1,000 write capacity units) imply for its
/// provisioned throughput, at least one.
pub fn initial_partition_count(read_units: u64, write_units: u64) -> u64 {
    read_units
        .div_ceil(MAX_PARTITION_READ_UNITS)
        .max(write_units.div_ceil(MAX_PARTITION_WRITE_UNITS))
        .max(1)
}

/// Read capacity units one partition serves (DynamoDB's documented limit).
pub const MAX_PARTITION_READ_UNITS: u64 = 3_000;
/// Write capacity units one partition serves (DynamoDB's documented limit).
pub const MAX_PARTITION_WRITE_UNITS: u64 = 1_000;

/// `count` ranges of equal width covering the whole hash space, in order (`count` ≥ 1).
pub fn even_ranges(count: u64) -> Vec<(u64, u64)> {
    let count = count.max(1);
    let width = u64::MAX / count;
    (0..count)
        .map(|i| {
            let start = i * width;
            let end = if i + 1 == count {
                u64::MAX
            } else {
                (i + 1) * width - 1
            };
            (start, end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, index: Option<u32>, start: u64, end: u64) -> PartitionEntry {
        PartitionEntry {
            id,
            index,
            hash_start: start,
            hash_end: end,
            epoch: 1,
            replicas: vec![1],
            generation: 0,
            preferred_leader: None,
            parent: None,
            splitting: false,
        }
    }

    #[test]
    fn even_ranges_cover_the_hash_space() {
        for n in [1u64, 2, 3, 4, 7, 100] {
            let ranges = even_ranges(n);
            assert_eq!(ranges.len() as u64, n);
            let map = PartitionMap::new(
                ranges
                    .iter()
                    .enumerate()
                    .map(|(i, (s, e))| entry(i as u64, None, *s, *e))
                    .collect(),
            );
            assert!(map.is_complete(), "{n}: {ranges:?}");
        }
    }

    #[test]
    fn lookup_by_hash_and_owner() {
        let map = PartitionMap::new(vec![
            entry(3, Some(1), 0, u64::MAX),
            entry(2, None, 1 << 63, u64::MAX),
            entry(1, None, 0, (1 << 63) - 1),
        ]);
        assert!(map.is_complete());
        assert_eq!(map.find(None, 5).map(|p| p.id), Some(1));
        assert_eq!(map.find(None, u64::MAX).map(|p| p.id), Some(2));
        assert_eq!(map.find(Some(1), 5).map(|p| p.id), Some(3));
        assert_eq!(map.find(Some(2), 5), None);
        let ids: Vec<u64> = map.overlapping(None, 0, u64::MAX).map(|p| p.id).collect();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn gaps_and_overlaps_are_incomplete() {
        let gap = PartitionMap::new(vec![entry(1, None, 0, 10), entry(2, None, 12, u64::MAX)]);
        assert!(!gap.is_complete());
        let overlap = PartitionMap::new(vec![entry(1, None, 0, 10), entry(2, None, 10, u64::MAX)]);
        assert!(!overlap.is_complete());
    }

    #[test]
    fn provisioned_throughput_sets_the_initial_partition_count() {
        assert_eq!(initial_partition_count(0, 0), 1);
        assert_eq!(initial_partition_count(3_000, 1_000), 1);
        assert_eq!(initial_partition_count(3_001, 0), 2);
        assert_eq!(initial_partition_count(5, 4_500), 5);
        assert_eq!(initial_partition_count(12_000, 2_000), 4);
    }

    #[test]
    fn midpoint_halves_the_range() {
        let p = entry(1, None, 0, u64::MAX);
        assert_eq!(p.midpoint(), Some(1 << 63));
        assert_eq!(entry(1, None, 4, 4).midpoint(), None);
        assert_eq!(entry(1, None, 4, 5).midpoint(), Some(5));
    }
}

//! [`PartitionStats`] and its persisted form.

use serde::{Deserialize, Serialize};

use crate::StorageError;

/// Exact item count and total size of a partition, maintained by `apply` and written in the
/// same batch as the items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStats {
    /// Number of items.
    pub item_count: u64,
    /// Sum of the DynamoDB sizes of the items (`shoal_types::size::item_size`).
    pub size_bytes: u64,
}

/// The engine key holding the stats. Keys shorter than 8 bytes never collide with storage keys
/// (which start with an 8-byte hash), and this one sorts before every storage key, so it stays
/// outside every query and scan range.
pub(crate) const STATS_KEY: &[u8] = &[0];

/// The engine key holding the last outbox seq assigned (u64 BE): persisted so that seqs keep
/// increasing after the outbox was trimmed empty and the partition reopened. Short, like
/// [`STATS_KEY`], so it never collides with a storage key.
pub(crate) const OUTBOX_SEQ_KEY: &[u8] = &[1];

impl PartitionStats {
    /// Removes one item of `size` bytes.
    pub(crate) fn remove(&mut self, size: usize) {
        self.item_count = self.item_count.saturating_sub(1);
        self.size_bytes = self.size_bytes.saturating_sub(to_u64(size));
    }

    /// Adds one item of `size` bytes.
    pub(crate) fn add(&mut self, size: usize) {
        self.item_count = self.item_count.saturating_add(1);
        self.size_bytes = self.size_bytes.saturating_add(to_u64(size));
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        // Serializing two integers cannot fail; an empty value would decode as an error.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
            context: format!("partition stats: {e}"),
        })
    }

    /// The stats stored under a stats key, zero when none are stored yet.
    pub(crate) fn decode_stored(bytes: Option<&[u8]>) -> Result<Self, StorageError> {
        bytes.map_or(Ok(PartitionStats::default()), PartitionStats::decode)
    }
}

pub(crate) fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

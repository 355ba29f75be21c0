//! Streamed snapshots: a replica's whole content sent in bounded chunks from a consistent view
//! ([`Partition::snapshot_view`]) and written into a staging engine on the receiving side
//! ([`Partition::stage`]), which then replaces the replica's content in one step
//! ([`Partition::install`]). Nothing holds the whole snapshot in memory on either side.
//!
//! A chunk (all integers big-endian):
//!
//! ```text
//! count u32 | entry*: space u8 (0 Items, 1 Index, 2 Outbox) | varint key len | key |
//!                     varint value len | value
//! checksum u64: FNV-1a 64 of every byte before it
//! ```
//!
//! Entries come in [`Space::ALL`] order, ascending by key within a space; a
//! [`SnapshotPosition`] says where the next chunk starts, so a lost chunk is asked for again
//! with the same position.

use crate::range::key_successor;
use crate::snapshot::{Cursor, checked_body, corrupt, fnv1a, put_varint, space_of, space_tag};
use crate::stats::STATS_KEY;
use crate::{
    Engine, IndexPartition, Partition, PartitionStats, ReadView, Space, StorageError, WriteBatch,
};

/// Entries read per view scan while filling a chunk.
const READ_BATCH: usize = 256;

/// Where a streamed snapshot continues: a space and the first key (inclusive) not yet sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPosition {
    /// The space being sent.
    pub space: Space,
    /// The first key of `space` not yet sent.
    pub from: Vec<u8>,
}

impl SnapshotPosition {
    /// The beginning of a snapshot.
    pub fn start() -> Self {
        SnapshotPosition {
            space: Space::Items,
            from: Vec::new(),
        }
    }

    /// `space u8 | from`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.from.len());
        out.push(space_tag(self.space));
        out.extend_from_slice(&self.from);
        out
    }

    /// Decodes [`SnapshotPosition::encode`].
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] for an empty input or an unknown space.
    pub fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let (&tag, from) = bytes
            .split_first()
            .ok_or_else(|| corrupt("empty snapshot position"))?;
        let space = space_of(tag).ok_or_else(|| corrupt(format!("unknown space {tag}")))?;
        Ok(SnapshotPosition {
            space,
            from: from.to_vec(),
        })
    }
}

/// One chunk of a streamed snapshot, and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone)]
pub struct SnapshotChunk {
    /// The encoded entries (see the module docs).
    pub data: Vec<u8>,
    /// The next chunk's position; `None` once every space was sent.
    pub next: Option<SnapshotPosition>,
}

/// Reads the entries of `view` from `at` into one chunk of about `max_bytes` (at least one
/// entry, unless nothing is left).
///
/// # Errors
/// The view's read failures.
pub fn read_chunk(
    view: &dyn ReadView,
    at: &SnapshotPosition,
    max_bytes: usize,
) -> Result<SnapshotChunk, StorageError> {
    let mut data = Vec::with_capacity(max_bytes.min(1 << 20) + 64);
    data.extend_from_slice(&0u32.to_be_bytes());
    let mut count: u32 = 0;
    let spaces = Space::ALL;
    let mut slot = spaces.iter().position(|s| *s == at.space).unwrap_or(0);
    let mut from = at.from.clone();
    let next = loop {
        let Some(&space) = spaces.get(slot) else {
            break None;
        };
        if count > 0 && data.len() >= max_bytes {
            break Some(SnapshotPosition { space, from });
        }
        let start = (!from.is_empty()).then_some(from.as_slice());
        let entries = view.scan_in(space, start, None, READ_BATCH)?;
        let exhausted = entries.len() < READ_BATCH;
        let mut stopped_at = None;
        for (key, value) in &entries {
            if count > 0 && data.len() >= max_bytes {
                stopped_at = Some(key.clone());
                break;
            }
            data.push(space_tag(space));
            put_varint(key.len(), &mut data);
            data.extend_from_slice(key);
            put_varint(value.len(), &mut data);
            data.extend_from_slice(value);
            count = count.saturating_add(1);
        }
        if let Some(key) = stopped_at {
            break Some(SnapshotPosition { space, from: key });
        }
        match entries.last() {
            Some((key, _)) if !exhausted => from = key_successor(key),
            _ => {
                slot += 1;
                from = Vec::new();
            }
        }
    };
    if let Some(head) = data.get_mut(..4) {
        head.copy_from_slice(&count.to_be_bytes());
    }
    let sum = fnv1a(&data);
    data.extend_from_slice(&sum.to_be_bytes());
    Ok(SnapshotChunk { data, next })
}

/// Writes the entries of a chunk from [`read_chunk`] into `staged` in one engine write (applied
/// index 0: [`Partition::install`] records the snapshot's). Returns how many entries it held.
///
/// # Errors
/// [`StorageError::Corrupt`] for a damaged or malformed chunk (nothing written); engine
/// failures.
pub fn write_chunk(staged: &dyn Engine, chunk: &[u8]) -> Result<usize, StorageError> {
    let body = checked_body(chunk)?;
    let mut c = Cursor {
        bytes: body,
        pos: 0,
    };
    let count_bytes: [u8; 4] = c.take(4)?.try_into().map_err(|_| corrupt("truncated"))?;
    let count = u32::from_be_bytes(count_bytes) as usize;
    let mut batch = WriteBatch::new(0);
    for _ in 0..count {
        let tag = *c.take(1)?.first().ok_or_else(|| corrupt("truncated"))?;
        let space = space_of(tag).ok_or_else(|| corrupt(format!("unknown space {tag}")))?;
        let key = c.bytes()?;
        let value = c.bytes()?;
        batch.put_in(space, key.to_vec(), value.to_vec());
    }
    if c.pos != body.len() {
        return Err(corrupt("trailing bytes in a chunk"));
    }
    staged.write(&batch)?;
    Ok(count)
}

impl Partition {
    /// A consistent view of the whole replica for streaming it out, taken between two applies
    /// (its applied index is that of the state it shows).
    ///
    /// # Errors
    /// Engine failures.
    pub fn snapshot_view(&self) -> Result<Box<dyn ReadView>, StorageError> {
        let _serial = self.apply_lock.lock();
        self.engine.read_view()
    }

    /// A new, empty staging engine for a snapshot streamed in ([`write_chunk`]).
    ///
    /// # Errors
    /// Engine failures.
    pub fn stage(&self) -> Result<Box<dyn Engine>, StorageError> {
        self.engine.stage()
    }

    /// Replaces the replica's whole content with `staged`, filled from a snapshot taken at
    /// `applied_index`, atomically, and reloads the in-memory state (stats, last outbox seq,
    /// local index stats). The key schema and index set are kept (they come from the catalog).
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] when the staged metadata does not decode (nothing changed);
    /// engine failures.
    pub fn install(&self, staged: Box<dyn Engine>, applied_index: u64) -> Result<(), StorageError> {
        staged.write(&WriteBatch::new(applied_index))?;
        let _serial = self.apply_lock.lock();
        let meta = self.restored_meta(|space, key| staged.get_in(space, key))?;
        self.engine.adopt(staged)?;
        self.set_restored(applied_index, meta);
        Ok(())
    }
}

impl IndexPartition {
    /// A consistent view of the whole index partition for streaming it out.
    ///
    /// # Errors
    /// Engine failures.
    pub fn snapshot_view(&self) -> Result<Box<dyn ReadView>, StorageError> {
        let _serial = self.apply_lock.lock();
        self.engine.read_view()
    }

    /// A new, empty staging engine for a snapshot streamed in ([`write_chunk`]).
    ///
    /// # Errors
    /// Engine failures.
    pub fn stage(&self) -> Result<Box<dyn Engine>, StorageError> {
        self.engine.stage()
    }

    /// Replaces the index partition's whole content with `staged`, atomically, and reloads its
    /// stats and shipped sequence numbers.
    ///
    /// # Errors
    /// As [`Partition::install`].
    pub fn install(&self, staged: Box<dyn Engine>, applied_index: u64) -> Result<(), StorageError> {
        let stats = PartitionStats::decode_stored(staged.get(STATS_KEY)?.as_deref())?;
        staged.write(&WriteBatch::new(applied_index))?;
        let _serial = self.apply_lock.lock();
        self.engine.adopt(staged)?;
        let mut state = self.state.write();
        state.stats = stats;
        state.shipped.clear();
        state.writes = applied_index;
        Ok(())
    }
}

//! Whole-partition snapshots ([`Partition::export_snapshot`], [`Partition::import_snapshot`]):
//! what Raft sends to a replica that is too far behind to catch up from the log.
//!
//! Format (version 1), all integers big-endian unless noted:
//!
//! ```text
//! version u8 (= 1) | applied_index u64 | entry count u64
//! entry*: space u8 (0 Items, 1 Index, 2 Outbox) | varint key len | key | varint value len | value
//! checksum u64: FNV-1a 64 of every byte before it
//! ```
//!
//! Entries are in [`Space::ALL`] order, ascending by key within a space. They are the raw
//! engine entries: items, local index entries, per-index stats, item collection sizes, outbox
//! records and the partition's metadata rows (stats, last outbox seq), so the importing replica
//! ends up byte-for-byte equal to the exporting one.

use std::collections::HashMap;

use shoal_types::index::IndexKind;

use crate::index::stats_key;
use crate::partition::decode_u64;
use crate::range::key_successor;
use crate::stats::{OUTBOX_SEQ_KEY, STATS_KEY};
use crate::{Partition, PartitionStats, Space, StorageError, WriteBatch};

/// The snapshot format version written first.
const SNAPSHOT_VERSION: u8 = 1;

/// Entries read per engine scan while exporting or clearing.
pub(crate) const SCAN_CHUNK: usize = 1024;

/// Bytes of the fixed header (version, applied index, count) and trailer (checksum).
const HEADER_LEN: usize = 1 + 8 + 8;
const TRAILER_LEN: usize = 8;

pub(crate) fn space_tag(space: Space) -> u8 {
    match space {
        Space::Items => 0,
        Space::Index => 1,
        Space::Outbox => 2,
    }
}

pub(crate) fn space_of(tag: u8) -> Option<Space> {
    match tag {
        0 => Some(Space::Items),
        1 => Some(Space::Index),
        2 => Some(Space::Outbox),
        _ => None,
    }
}

/// FNV-1a, 64 bits: detects damaged or mixed-up snapshot bytes (not an authenticity check;
/// the transport is authenticated).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub(crate) fn put_varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        context: format!("partition snapshot: {what}"),
    }
}

/// A decoded snapshot, borrowing the input.
struct Parsed<'a> {
    applied_index: u64,
    entries: Vec<(Space, &'a [u8], &'a [u8])>,
}

pub(crate) struct Cursor<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| corrupt("truncated"))?;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| corrupt("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, StorageError> {
        let raw: [u8; 8] = self.take(8)?.try_into().map_err(|_| corrupt("truncated"))?;
        Ok(u64::from_be_bytes(raw))
    }

    fn varint(&mut self) -> Result<usize, StorageError> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.take(1)?.first().ok_or_else(|| corrupt("truncated"))?;
            let low = u64::from(b & 0x7f);
            if shift == 63 && low > 1 {
                return Err(corrupt("bad varint"));
            }
            n |= low << shift;
            if b & 0x80 == 0 {
                return usize::try_from(n).map_err(|_| corrupt("bad varint"));
            }
        }
        Err(corrupt("bad varint"))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], StorageError> {
        let n = self.varint()?;
        self.take(n)
    }
}

/// `data` without its trailing FNV-1a checksum, once the checksum matches.
pub(crate) fn checked_body(data: &[u8]) -> Result<&[u8], StorageError> {
    let body_len = data
        .len()
        .checked_sub(TRAILER_LEN)
        .ok_or_else(|| corrupt(format!("truncated ({} bytes)", data.len())))?;
    let (body, trailer) = data.split_at(body_len);
    let stored: [u8; 8] = trailer.try_into().map_err(|_| corrupt("truncated"))?;
    if u64::from_be_bytes(stored) != fnv1a(body) {
        return Err(corrupt("checksum mismatch (truncated or damaged)"));
    }
    Ok(body)
}

/// A replica's in-memory state as its restored metadata rows give it.
pub(crate) struct RestoredMeta {
    stats: PartitionStats,
    outbox_seq: u64,
    index_stats: HashMap<u32, PartitionStats>,
    range: Option<crate::OwnedRange>,
    children: Vec<crate::SplitChild>,
    stream: Option<crate::StreamSetting>,
}

impl Partition {
    /// Decodes the metadata rows a restore brings (read with `get`), for the local indexes set
    /// now; malformed rows fail the restore before anything changes.
    pub(crate) fn restored_meta(
        &self,
        get: impl Fn(Space, &[u8]) -> Result<Option<Vec<u8>>, StorageError>,
    ) -> Result<RestoredMeta, StorageError> {
        let stats = PartitionStats::decode_stored(get(Space::Items, STATS_KEY)?.as_deref())?;
        let outbox_seq = match get(Space::Items, OUTBOX_SEQ_KEY)? {
            Some(bytes) => decode_u64(&bytes, "outbox seq")?,
            None => 0,
        };
        let mut index_stats = HashMap::new();
        for def in self
            .indexes
            .read()
            .iter()
            .filter(|d| d.kind == IndexKind::Local)
        {
            let stored = get(Space::Index, &stats_key(def.id))?;
            index_stats.insert(def.id, PartitionStats::decode_stored(stored.as_deref())?);
        }
        let range = crate::split::load_range(|k| get(Space::Items, k))?;
        let children = crate::split::load_children(|k| get(Space::Items, k))?;
        let stream = crate::change_log::load_setting(|k| get(Space::Items, k))?;
        Ok(RestoredMeta {
            stats,
            outbox_seq,
            index_stats,
            range,
            children,
            stream,
        })
    }

    /// Sets the in-memory state after a restore at `applied_index` (the engine holds the
    /// restored content).
    pub(crate) fn set_restored(&self, applied_index: u64, meta: RestoredMeta) {
        // Whether single writes must look for transaction locks: a replica that missed it
        // would write a locked item its peers refuse. When unsure, look.
        let tx_rows = Partition::has_tx_rows(self.engine.as_ref()).unwrap_or(true);
        let mut state = self.state.write();
        state.tx_rows = tx_rows;
        state.applied_index = applied_index;
        state.stats = meta.stats;
        state.outbox_seq = meta.outbox_seq;
        state.outbox_loaded = true;
        state.index_stats = meta.index_stats;
        state.range = meta.range;
        state.children = meta.children;
        state.stream = meta.stream;
    }
}

/// Decodes and checks a whole snapshot: version, checksum, structure, key order.
fn parse(data: &[u8]) -> Result<Parsed<'_>, StorageError> {
    if data.len() < HEADER_LEN + TRAILER_LEN {
        return Err(corrupt(format!("truncated ({} bytes)", data.len())));
    }
    match data.first() {
        Some(&SNAPSHOT_VERSION) => {}
        Some(v) => return Err(corrupt(format!("unsupported format version {v}"))),
        None => return Err(corrupt("empty")),
    }
    let body = checked_body(data)?;
    let mut c = Cursor {
        bytes: body,
        pos: 1,
    };
    let applied_index = c.u64()?;
    let count = c.u64()?;
    // Each entry takes at least 3 bytes: bound the allocation by the input.
    let remaining = body.len().saturating_sub(c.pos);
    let count = usize::try_from(count)
        .ok()
        .filter(|n| n.saturating_mul(3) <= remaining)
        .ok_or_else(|| corrupt(format!("entry count {count} exceeds the data")))?;
    let mut entries = Vec::with_capacity(count);
    let mut prev: Option<(u8, &[u8])> = None;
    for _ in 0..count {
        let tag = *c.take(1)?.first().ok_or_else(|| corrupt("truncated"))?;
        let space = space_of(tag).ok_or_else(|| corrupt(format!("unknown space {tag}")))?;
        let key = c.bytes()?;
        let value = c.bytes()?;
        if let Some(p) = prev
            && p >= (tag, key)
        {
            return Err(corrupt("entries out of order"));
        }
        prev = Some((tag, key));
        entries.push((space, key, value));
    }
    if c.pos != body.len() {
        return Err(corrupt(format!(
            "{} trailing bytes",
            body.len().saturating_sub(c.pos)
        )));
    }
    Ok(Parsed {
        applied_index,
        entries,
    })
}

impl Partition {
    /// Serializes the whole partition replica: every entry of every [`Space`] (items, local
    /// index entries and their stats, item collection sizes, outbox records, the partition's
    /// metadata rows) and the applied index, read under the apply lock so that no write
    /// interleaves. [`Partition::import_snapshot`] installs it on another replica.
    ///
    /// The result holds the whole partition in memory, and writes to this replica wait while
    /// it is read (reads do not).
    ///
    /// # Errors
    /// Engine failures.
    pub fn export_snapshot(&self) -> Result<Vec<u8>, StorageError> {
        let _serial = self.apply_lock.lock();
        let applied_index = self.state.read().applied_index;
        let mut out = Vec::with_capacity(HEADER_LEN + TRAILER_LEN);
        out.push(SNAPSHOT_VERSION);
        out.extend_from_slice(&applied_index.to_be_bytes());
        // The entry count, patched in once known.
        out.extend_from_slice(&0u64.to_be_bytes());
        let mut count: u64 = 0;
        for space in Space::ALL {
            let mut start: Option<Vec<u8>> = None;
            loop {
                let chunk =
                    self.engine
                        .scan_in(space, start.as_deref(), None, false, SCAN_CHUNK)?;
                let done = chunk.len() < SCAN_CHUNK;
                for (key, value) in &chunk {
                    out.push(space_tag(space));
                    put_varint(key.len(), &mut out);
                    out.extend_from_slice(key);
                    put_varint(value.len(), &mut out);
                    out.extend_from_slice(value);
                    count = count.saturating_add(1);
                }
                match chunk.last() {
                    Some((key, _)) if !done => start = Some(key_successor(key)),
                    _ => break,
                }
            }
        }
        if let Some(slot) = out.get_mut(HEADER_LEN - 8..HEADER_LEN) {
            slot.copy_from_slice(&count.to_be_bytes());
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_be_bytes());
        Ok(out)
    }

    /// Replaces the partition's whole content with a snapshot from
    /// [`Partition::export_snapshot`], atomically (one engine write deletes every entry, puts
    /// the snapshot's and records its applied index), then reloads the in-memory state (stats,
    /// last outbox seq, local index stats) and returns the snapshot's applied index. The
    /// partition's key schema and index set are kept (they come from the catalog and must
    /// match the exporting replica's).
    ///
    /// The applied index may move backwards (the snapshot replaces everything).
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] for malformed, truncated or damaged data, and engine failures;
    /// in both cases nothing is changed.
    pub fn import_snapshot(&self, data: &[u8]) -> Result<u64, StorageError> {
        let parsed = parse(data)?;
        let lookup: HashMap<(u8, &[u8]), &[u8]> = parsed
            .entries
            .iter()
            .map(|(s, k, v)| ((space_tag(*s), *k), *v))
            .collect();
        let _serial = self.apply_lock.lock();
        // Decode the metadata first: a snapshot whose metadata is malformed changes nothing.
        let meta = self.restored_meta(|space, key| {
            Ok(lookup.get(&(space_tag(space), key)).map(|v| v.to_vec()))
        })?;
        let mut batch = WriteBatch::new(parsed.applied_index);
        for space in Space::ALL {
            let mut start: Option<Vec<u8>> = None;
            loop {
                let chunk =
                    self.engine
                        .scan_in(space, start.as_deref(), None, false, SCAN_CHUNK)?;
                let done = chunk.len() < SCAN_CHUNK;
                let next = chunk.last().map(|(k, _)| key_successor(k));
                for (key, _) in chunk {
                    if !lookup.contains_key(&(space_tag(space), key.as_slice())) {
                        batch.delete_in(space, key);
                    }
                }
                match next {
                    Some(next) if !done => start = Some(next),
                    _ => break,
                }
            }
        }
        for (space, key, value) in &parsed.entries {
            batch.put_in(*space, key.to_vec(), value.to_vec());
        }
        self.engine.write(&batch)?;
        self.set_restored(parsed.applied_index, meta);
        Ok(parsed.applied_index)
    }
}

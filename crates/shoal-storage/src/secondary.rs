//! Secondary indexes of a base [`Partition`]: the index set, local index reads and stats, the
//! outbox of global index changes and the backfill of a new global index.

use std::sync::Arc;

use shoal_types::AttributeValue;
use shoal_types::index::{IndexDef, IndexKind, IndexStatus};
use shoal_types::key::encode_key;
use shoal_types::key::partition_hash;
use shoal_types::size::item_size;

use crate::index::{EntryOf, IndexReader, collection_key, stats_key};
use crate::outbox::outbox_key;
use crate::partition::{decode_stored, decode_u64};
use crate::range::{KeyRange, key_successor, prefix_end};
use crate::stats::{OUTBOX_SEQ_KEY, to_u64};
use crate::{
    OutboxRecord, Page, Partition, PartitionStats, QuerySpec, ScanSpec, Space, StorageError,
    WriteBatch,
};

/// Keys deleted per engine write by [`Partition::drop_index`] and [`Partition::trim_outbox`]
/// (each chunk holds the apply lock only briefly).
const DELETE_CHUNK: usize = 512;

/// Item storage keys are at least this long; shorter keys of [`Space::Items`] are metadata.
const MIN_STORAGE_KEY: usize = 8;

impl Partition {
    /// Sets the table's secondary indexes (all of them, local and global, as in the catalog).
    /// Takes the apply lock: every write applied after this returns maintains them.
    ///
    /// From then on [`Partition::apply_batch`]:
    /// - checks the index key attributes of every new item (`IndexDef::check_item`) against each
    ///   index that is not `Deleting`, rejecting bad ones with [`crate::ApplyError::Validation`];
    /// - writes the entries of the local indexes in the same engine write as the item (and
    ///   their stats, and the item collection sizes, enforcing the 10 GB limit);
    /// - writes an [`OutboxRecord`] for each `Creating` or `Active` global index whose entry
    ///   of the item changed, in the same engine write.
    ///
    /// Indexes with status `Deleting` are ignored. Local indexes must be set before the first
    /// item is written (DynamoDB creates them only with the table): items written earlier have
    /// no entries.
    ///
    /// # Errors
    /// Engine failures or corrupt stats while loading the stats of the local indexes.
    pub fn set_indexes(&self, indexes: Vec<IndexDef>) -> Result<(), StorageError> {
        let _serial = self.apply_lock.lock();
        let mut loaded = Vec::new();
        {
            let state = self.state.read();
            for def in indexes.iter().filter(|d| d.kind == IndexKind::Local) {
                if !state.index_stats.contains_key(&def.id) {
                    loaded.push(def.id);
                }
            }
        }
        let outbox_seq = self.stored_outbox_seq()?;
        let mut stats = Vec::with_capacity(loaded.len());
        for id in loaded {
            let s = PartitionStats::decode_stored(
                self.engine.get_in(Space::Index, &stats_key(id))?.as_deref(),
            )?;
            stats.push((id, s));
        }
        {
            let mut state = self.state.write();
            state.index_stats.extend(stats);
            if let Some(seq) = outbox_seq {
                state.outbox_seq = seq;
                state.outbox_loaded = true;
            }
        }
        *self.indexes.write() = Arc::new(indexes);
        Ok(())
    }

    /// The outbox seq stored in the file, unless it is loaded already.
    fn stored_outbox_seq(&self) -> Result<Option<u64>, StorageError> {
        if self.state.read().outbox_loaded {
            return Ok(None);
        }
        Ok(Some(match self.engine.get(OUTBOX_SEQ_KEY)? {
            Some(bytes) => decode_u64(&bytes, "outbox seq")?,
            None => 0,
        }))
    }

    /// Loads the outbox seq from the file if it is not loaded yet (the caller holds the apply
    /// lock).
    pub(crate) fn load_outbox_seq(&self) -> Result<(), StorageError> {
        if let Some(seq) = self.stored_outbox_seq()? {
            let mut state = self.state.write();
            state.outbox_seq = seq;
            state.outbox_loaded = true;
        }
        Ok(())
    }

    /// The local index `index_id`, if set and not being deleted.
    fn local_index(&self, index_id: u32) -> Result<IndexDef, StorageError> {
        self.indexes
            .read()
            .iter()
            .find(|d| d.id == index_id && d.kind == IndexKind::Local)
            .filter(|d| d.status != IndexStatus::Deleting)
            .cloned()
            .ok_or(StorageError::UnknownIndex(index_id))
    }

    /// A Query of the local secondary index `index_id`, with [`Partition::query`]'s semantics
    /// over its entries: `spec.partition_key` is the table's partition key, `spec.sort` a
    /// condition on the index sort key; the page holds the projected entries in index sort key
    /// order (ties in table key order); `exclusive_start` and `last_evaluated_key` hold the
    /// table's and the index's key attributes. Strongly consistent with the writes applied.
    ///
    /// # Errors
    /// [`StorageError::UnknownIndex`] when no such local index is set;
    /// [`StorageError::InvalidKey`] when `exclusive_start` lacks a key attribute; engine
    /// failures; [`StorageError::Corrupt`].
    pub fn query_index(&self, index_id: u32, spec: &QuerySpec<'_>) -> Result<Page, StorageError> {
        let def = self.local_index(index_id)?;
        self.index_reader(&def).query(spec)
    }

    /// A Scan of the local secondary index `index_id` over the table partition keys whose hash
    /// lies in `[hash_start, hash_end]`, in entry key order, with [`Partition::scan`]'s paging;
    /// keys as in [`Partition::query_index`].
    ///
    /// # Errors
    /// As [`Partition::query_index`].
    pub fn scan_index(&self, index_id: u32, spec: &ScanSpec<'_>) -> Result<Page, StorageError> {
        let def = self.local_index(index_id)?;
        self.index_reader(&def).scan(spec)
    }

    fn index_reader<'a>(&'a self, def: &'a IndexDef) -> IndexReader<'a> {
        IndexReader {
            engine: self.engine.as_ref(),
            def,
            table: &self.schema,
            owned: None,
        }
    }

    /// Entry count and bytes (DynamoDB's index sizes: the entry's item size plus 100 bytes) of
    /// the local secondary index `index_id` in this partition, as of the last applied write.
    /// Zero for an unknown index (global indexes keep theirs in [`crate::IndexPartition`]).
    pub fn index_stats(&self, index_id: u32) -> PartitionStats {
        self.state
            .read()
            .index_stats
            .get(&index_id)
            .copied()
            .unwrap_or_default()
    }

    /// Removes every entry of index `index_id` from this partition, and its stats, in chunked
    /// writes (each under the apply lock, so writes proceed in between). Call it once the index
    /// is no longer set ([`Partition::set_indexes`]), or its entries come back with new writes.
    ///
    /// # Errors
    /// Engine failures; what was removed before the failure stays removed, and calling it
    /// again finishes the work.
    pub fn drop_index(&self, index_id: u32) -> Result<(), StorageError> {
        let prefix = index_id.to_be_bytes();
        let end = prefix_end(&prefix);
        loop {
            let _serial = self.apply_lock.lock();
            let keys = self.engine.scan_in(
                Space::Index,
                Some(&prefix),
                end.as_deref(),
                false,
                DELETE_CHUNK,
            )?;
            let done = keys.len() < DELETE_CHUNK;
            let applied_index = self.state.read().applied_index;
            let mut batch = WriteBatch::new(applied_index);
            for (key, _) in keys {
                batch.delete_in(Space::Index, key);
            }
            if !batch.is_empty() {
                self.engine.write(&batch)?;
            }
            if done {
                self.state.write().index_stats.remove(&index_id);
                return Ok(());
            }
        }
    }

    /// The size of the item collection of partition key `pk`: the DynamoDB sizes of its items
    /// plus their local secondary index entries (100 bytes overhead each), for
    /// `ItemCollectionMetrics`. Maintained by every write when the partition has local indexes
    /// (one read); without them, computed by reading the partition key's items.
    ///
    /// # Errors
    /// Engine failures; [`StorageError::Corrupt`].
    pub fn item_collection_size(&self, pk: &AttributeValue) -> Result<u64, StorageError> {
        let has_local = self
            .indexes
            .read()
            .iter()
            .any(|d| d.kind == IndexKind::Local && d.status != IndexStatus::Deleting);
        if has_local {
            return match self.engine.get_in(Space::Index, &collection_key(pk))? {
                Some(bytes) => decode_u64(&bytes, "item collection size"),
                None => Ok(0),
            };
        }
        let mut range = KeyRange::prefix(&encode_key(partition_hash(pk), pk, None));
        let mut total: u64 = 0;
        loop {
            let chunk =
                self.engine
                    .scan(range.start.as_deref(), range.end.as_deref(), false, 256)?;
            let done = chunk.len() < 256;
            for (key, value) in chunk {
                total = total.saturating_add(to_u64(item_size(&decode_stored(&value)?)));
                range.start = Some(key_successor(&key));
            }
            if done {
                return Ok(total);
            }
        }
    }

    /// The last outbox seq assigned (0 when none ever was, or before the first
    /// [`Partition::set_indexes`], which loads it). A shipper compares it with what it has
    /// shipped to know whether records are waiting.
    pub fn last_outbox_seq(&self) -> u64 {
        self.state.read().outbox_seq
    }

    /// Up to `limit` outbox records with `seq > after_seq`, in seq order.
    ///
    /// # Errors
    /// Engine failures; [`StorageError::Corrupt`] if a record does not decode.
    pub fn outbox(&self, after_seq: u64, limit: usize) -> Result<Vec<OutboxRecord>, StorageError> {
        let Some(start) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        self.engine
            .scan_in(Space::Outbox, Some(&outbox_key(start)), None, false, limit)?
            .into_iter()
            .map(|(k, v)| OutboxRecord::decode(&k, &v))
            .collect()
    }

    /// Removes the outbox records with `seq <= upto_seq` (shipped), in chunked writes under the
    /// apply lock. Seqs are never reused: new records continue after [`Partition::last_outbox_seq`].
    ///
    /// # Errors
    /// Engine failures; what was removed stays removed.
    pub fn trim_outbox(&self, upto_seq: u64) -> Result<(), StorageError> {
        let end = upto_seq.checked_add(1).map(outbox_key);
        loop {
            let _serial = self.apply_lock.lock();
            let keys =
                self.engine
                    .scan_in(Space::Outbox, None, end.as_deref(), false, DELETE_CHUNK)?;
            let done = keys.len() < DELETE_CHUNK;
            let applied_index = self.state.read().applied_index;
            let mut batch = WriteBatch::new(applied_index);
            for (key, _) in keys {
                batch.delete_in(Space::Outbox, key);
            }
            if !batch.is_empty() {
                self.engine.write(&batch)?;
            }
            if done {
                return Ok(());
            }
        }
    }

    /// One step of the backfill of a new global secondary index: under the apply lock (so it
    /// is ordered with writes), reads up to `limit` items after the storage key `after` (from
    /// the first item when `None`) and writes an outbox `put` record for each item indexed by
    /// `index_id`, in one engine write. Returns the cursor to pass next, `None` when every item
    /// was read.
    ///
    /// Writes applied meanwhile add their own records (the index must already be set with
    /// status `Creating`), so shipping the outbox in order leaves the index with exactly the
    /// entries of the items.
    ///
    /// # Errors
    /// [`StorageError::UnknownIndex`] when `index_id` is not a global index set on this
    /// partition; engine failures; [`StorageError::Corrupt`].
    pub fn backfill(
        &self,
        index_id: u32,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let limit = limit.max(1);
        let _serial = self.apply_lock.lock();
        let def = self
            .indexes
            .read()
            .iter()
            .find(|d| d.id == index_id && d.kind == IndexKind::Global)
            .cloned()
            .ok_or(StorageError::UnknownIndex(index_id))?;
        let start = after.as_deref().map(key_successor);
        let chunk = self.engine.scan(start.as_deref(), None, false, limit)?;
        let done = chunk.len() < limit;
        let cursor = chunk.last().map(|(k, _)| k.clone());
        let mut state = self.state.read().clone();
        let mut batch = WriteBatch::new(state.applied_index);
        for (key, value) in &chunk {
            if key.len() < MIN_STORAGE_KEY {
                continue;
            }
            // Rows split off to a child (frozen here until dropped): the child's copy feeds
            // its own shard; entries of theirs here would only be deleted again by the drop.
            let hash = key
                .get(..8)
                .and_then(|h| <[u8; 8]>::try_from(h).ok())
                .map(u64::from_be_bytes);
            if hash.is_some_and(|h| !self.owns(h)) {
                continue;
            }
            let item = decode_stored(value)?;
            if let Some(e) = EntryOf::of(&def, &self.schema, Some(&item)) {
                state.outbox_seq = state.outbox_seq.saturating_add(1);
                let record = OutboxRecord {
                    seq: state.outbox_seq,
                    index_id,
                    delete: None,
                    put: Some((e.key, e.entry)),
                };
                record.put_into(&mut batch);
            }
        }
        if !batch.is_empty() {
            batch.put(
                OUTBOX_SEQ_KEY.to_vec(),
                state.outbox_seq.to_be_bytes().to_vec(),
            );
            self.engine.write(&batch)?;
            self.state.write().outbox_seq = state.outbox_seq;
        }
        Ok(if done { None } else { cursor })
    }
}

//! [`IndexPartition`]: one shard of a global secondary index, fed from the outbox of the base
//! partition it belongs to.

use std::collections::HashMap;

use parking_lot::{Mutex, RwLock};
use shoal_types::codec::encode_item;
use shoal_types::index::IndexDef;
use shoal_types::key::KeySchema;

use crate::index::{IndexReader, entry_size};
use crate::partition::{decode_stored, decode_u64};
use crate::stats::STATS_KEY;
use crate::{
    Engine, OutboxRecord, Page, PartitionStats, QuerySpec, ScanSpec, Space, StorageError,
    WriteBatch,
};

/// Prefix of the [`Space::Items`] keys holding the last applied outbox seq of each source
/// partition (`prefix ‖ source id u64 BE`).
const SHIPPED_PREFIX: u8 = 2;

fn shipped_key(source: u64) -> Vec<u8> {
    let mut key = vec![SHIPPED_PREFIX];
    key.extend_from_slice(&source.to_be_bytes());
    key
}

/// One partition of a global secondary index on its own [`Engine`] (its own file): the entries
/// (in [`Space::Index`], under the keys of the [`OutboxRecord`]s that put them), their stats, and
/// for each source base partition the last outbox seq applied.
///
/// Writes come only from [`IndexPartition::apply_outbox`] (serialized internally); reads run
/// beside them.
pub struct IndexPartition {
    pub(crate) engine: Box<dyn Engine>,
    def: IndexDef,
    table: KeySchema,
    pub(crate) apply_lock: Mutex<()>,
    pub(crate) state: RwLock<GsiState>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct GsiState {
    pub(crate) stats: PartitionStats,
    /// Source partition → last seq applied (loaded lazily).
    pub(crate) shipped: HashMap<u64, u64>,
    /// The engine's applied index: every write bumps it.
    pub(crate) writes: u64,
}

impl std::fmt::Debug for IndexPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexPartition")
            .field("index", &self.def.name)
            .field("id", &self.def.id)
            .field("stats", &self.state.read().stats)
            .finish_non_exhaustive()
    }
}

impl IndexPartition {
    /// Opens the index partition of `def` (a global index of a table with key schema `table`)
    /// on `engine`, empty or previously written by an `IndexPartition` of the same index.
    ///
    /// # Errors
    /// Engine failures; [`StorageError::Corrupt`] if the stored stats do not decode.
    pub fn new(
        engine: Box<dyn Engine>,
        def: IndexDef,
        table: KeySchema,
    ) -> Result<Self, StorageError> {
        let stats = PartitionStats::decode_stored(engine.get(STATS_KEY)?.as_deref())?;
        let writes = engine.applied_index()?;
        Ok(IndexPartition {
            engine,
            def,
            table,
            apply_lock: Mutex::new(()),
            state: RwLock::new(GsiState {
                stats,
                shipped: HashMap::new(),
                writes,
            }),
        })
    }

    /// The index this partition belongs to.
    pub fn def(&self) -> &IndexDef {
        &self.def
    }

    /// Applies records shipped from the outbox of base partition `source`, in one engine write:
    /// records with `seq <= shipped(source)` are skipped (already applied: shipping is
    /// idempotent), records of another index are skipped, the others remove their `delete`
    /// key then store their `put` entry. The largest seq is stored as `shipped(source)` in the
    /// same transaction. Records must come in increasing seq order per source.
    ///
    /// # Errors
    /// Engine failures (nothing applied); [`StorageError::Corrupt`] if a stored entry does not
    /// decode.
    pub fn apply_outbox(&self, source: u64, records: &[OutboxRecord]) -> Result<(), StorageError> {
        let _serial = self.apply_lock.lock();
        let shipped = self.shipped_locked(source)?;
        let mut state = self.state.read().clone();
        // Entry key → value after the records so far (None = deleted).
        let mut overlay: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
        let mut last = shipped;
        for record in records.iter().filter(|r| r.seq > shipped) {
            last = last.max(record.seq);
            if record.index_id != self.def.id {
                continue;
            }
            if let Some(key) = &record.delete
                && let Some(old) = self.current(key, &overlay)?
            {
                state.stats.remove(entry_size(&decode_stored(&old)?));
                overlay.insert(key.clone(), None);
            }
            if let Some((key, entry)) = &record.put {
                if let Some(old) = self.current(key, &overlay)? {
                    state.stats.remove(entry_size(&decode_stored(&old)?));
                }
                state.stats.add(entry_size(entry));
                let mut value = Vec::with_capacity(128);
                encode_item(entry, &mut value);
                overlay.insert(key.clone(), Some(value));
            }
        }
        if last == shipped {
            return Ok(());
        }
        state.writes = state.writes.saturating_add(1);
        let mut batch = WriteBatch::new(state.writes);
        for (key, value) in overlay {
            match value {
                Some(v) => batch.put_in(Space::Index, key, v),
                None => batch.delete_in(Space::Index, key),
            };
        }
        batch.put(STATS_KEY.to_vec(), state.stats.encode());
        batch.put(shipped_key(source), last.to_be_bytes().to_vec());
        self.engine.write(&batch)?;
        state.shipped.insert(source, last);
        *self.state.write() = state;
        Ok(())
    }

    fn current(
        &self,
        key: &[u8],
        overlay: &HashMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        match overlay.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.engine.get_in(Space::Index, key),
        }
    }

    fn shipped_locked(&self, source: u64) -> Result<u64, StorageError> {
        if let Some(seq) = self.state.read().shipped.get(&source) {
            return Ok(*seq);
        }
        let seq = match self.engine.get(&shipped_key(source))? {
            Some(bytes) => decode_u64(&bytes, "shipped seq")?,
            None => 0,
        };
        self.state.write().shipped.insert(source, seq);
        Ok(seq)
    }

    /// The last outbox seq of base partition `source` applied here (0: none).
    ///
    /// # Errors
    /// Engine failures; [`StorageError::Corrupt`].
    pub fn shipped(&self, source: u64) -> Result<u64, StorageError> {
        let _serial = self.apply_lock.lock();
        self.shipped_locked(source)
    }

    fn reader(&self, owned: Option<(u64, u64)>) -> IndexReader<'_> {
        IndexReader {
            engine: self.engine.as_ref(),
            def: &self.def,
            table: &self.table,
            owned,
        }
    }

    /// A Query of one index partition key: `spec.partition_key` is the index's partition key
    /// value, `spec.sort` a condition on its sort key; entries in index sort key order (ties in
    /// table key order); `exclusive_start` and `last_evaluated_key` hold the table's and the
    /// index's key attributes. Sees every record applied so far (eventually consistent with
    /// the table). With `owned`, only the entries of items whose table partition key hash lies
    /// in that range are read (the others are skipped, not counted).
    ///
    /// # Errors
    /// [`StorageError::InvalidKey`] when `exclusive_start` lacks a key attribute; engine
    /// failures; [`StorageError::Corrupt`].
    pub fn query(
        &self,
        spec: &QuerySpec<'_>,
        owned: Option<(u64, u64)>,
    ) -> Result<Page, StorageError> {
        self.reader(owned).query(spec)
    }

    /// A Scan of the entries whose index partition key hash lies in `[hash_start, hash_end]`,
    /// in entry key order; keys and `owned` as in [`IndexPartition::query`].
    ///
    /// # Errors
    /// As [`IndexPartition::query`].
    pub fn scan(
        &self,
        spec: &ScanSpec<'_>,
        owned: Option<(u64, u64)>,
    ) -> Result<Page, StorageError> {
        self.reader(owned).scan(spec)
    }

    /// Entry count and bytes (each entry's item size plus 100 bytes) of this index partition.
    pub fn stats(&self) -> PartitionStats {
        self.state.read().stats
    }

    /// Re-encrypts the partition's store under `new_key` (see [`Engine::rekey`]).
    ///
    /// # Errors
    /// As [`Engine::rekey`].
    pub fn rekey(&self, new_key: &[u8; 32]) -> Result<(), StorageError> {
        self.engine.rekey(new_key)
    }
}

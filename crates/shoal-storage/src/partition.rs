//! [`Partition`]: one replica of one table partition, and its `apply` state machine.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use shoal_types::Item;
use shoal_types::codec::{decode_item, encode_item};
use shoal_types::index::{IndexDef, IndexKind, IndexStatus};
use shoal_types::key::KeySchema;
use shoal_types::size::{MAX_ITEM_SIZE, item_size};

use crate::index::{EntryOf, collection_key, entry_size, stats_key};
use crate::stats::{OUTBOX_SEQ_KEY, STATS_KEY, to_u64};

use crate::split::{OwnedRange, SplitChild};
use crate::{
    Applied, ApplyError, Command, Engine, OutboxRecord, PartitionStats, Space, StorageError,
    WriteBatch,
};

/// The largest item collection (the items of one partition key and their local secondary index
/// entries) of a table with local secondary indexes: 10 GB.
pub const MAX_ITEM_COLLECTION_SIZE: u64 = 10 * 1024 * 1024 * 1024;

/// One partition replica of one table: items stored in an [`Engine`] under their storage keys
/// (`shoal_types::key::encode_key`), values in `shoal_types::codec`'s binary encoding.
///
/// Writes go through [`Partition::apply`] or [`Partition::apply_batch`] (group commit), one
/// call at a time (an internal mutex serializes them);
/// reads ([`Partition::get`], [`Partition::query`], [`Partition::scan`]) run concurrently with
/// them and see every write that `apply` has returned from.
pub struct Partition {
    pub(crate) engine: Box<dyn Engine>,
    pub(crate) schema: KeySchema,
    pub(crate) apply_lock: Mutex<()>,
    pub(crate) state: RwLock<State>,
    /// The table's secondary indexes ([`Partition::set_indexes`]).
    pub(crate) indexes: RwLock<Arc<Vec<IndexDef>>>,
    /// The table's TTL attribute ([`Partition::set_ttl`]): writes keep its expiry rows.
    pub(crate) ttl: RwLock<Option<String>>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    pub(crate) applied_index: u64,
    pub(crate) stats: PartitionStats,
    /// The last outbox seq assigned (0: none yet), once loaded by `set_indexes` (the outbox is
    /// only written while global indexes are set).
    pub(crate) outbox_seq: u64,
    pub(crate) outbox_loaded: bool,
    /// Entry count and bytes of each local secondary index set so far.
    pub(crate) index_stats: HashMap<u32, PartitionStats>,
    /// The hash range this replica serves, once a split set it (see `split.rs`).
    pub(crate) range: Option<OwnedRange>,
    /// The children split off whose rows are still in the file (as stored; see `split.rs`).
    pub(crate) children: Vec<SplitChild>,
    /// Whether the file may hold transaction rows (`txn.rs`): single writes look for a lock
    /// and read marks only then.
    pub(crate) tx_rows: bool,
    /// The stream writes keep change records for (`change_log.rs`), as the log set it.
    pub(crate) stream: Option<crate::StreamSetting>,
}

/// Whether a write maintains `def`'s entries: local indexes always, global ones while creating
/// or active (a deleting index is ignored).
fn maintained(def: &IndexDef) -> bool {
    def.status != IndexStatus::Deleting
}

/// Everything a batch writes besides the items, accumulated command by command.
#[derive(Default)]
pub(crate) struct Pending {
    /// Entry key (or metadata key) in [`Space::Index`] → its value after the batch
    /// (`None` = deleted).
    pub(crate) index: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Item collection counter key → size after the batch.
    collections: HashMap<Vec<u8>, u64>,
    /// Outbox records, in seq order.
    outbox: Vec<OutboxRecord>,
}

/// What a command will do, decided against the current state.
pub(crate) enum Decision {
    /// Write `new` (or delete, when `None`) under `key`.
    Write {
        key: Vec<u8>,
        old: Option<Item>,
        new: Option<Item>,
    },
    /// Change nothing; return `applied`.
    Noop(Applied),
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.read().clone();
        f.debug_struct("Partition")
            .field("schema", &self.schema)
            .field("applied_index", &state.applied_index)
            .field("stats", &state.stats)
            .finish_non_exhaustive()
    }
}

impl Partition {
    /// Opens a partition on `engine` (empty or previously written by a `Partition` with the same
    /// schema), loading its applied index and stats.
    ///
    /// # Errors
    /// Engine failures; [`StorageError::Corrupt`] if the stored stats do not decode.
    pub fn new(engine: Box<dyn Engine>, schema: KeySchema) -> Result<Self, StorageError> {
        let applied_index = engine.applied_index()?;
        let stats = PartitionStats::decode_stored(engine.get(STATS_KEY)?.as_deref())?;
        let range = crate::split::load_range(|k| engine.get(k))?;
        let children = crate::split::load_children(|k| engine.get(k))?;
        let tx_rows = Partition::has_tx_rows(engine.as_ref())?;
        let stream = crate::change_log::load_setting(|k| engine.get(k))?;
        let ttl = engine
            .get(crate::ttl::TTL_ATTR_KEY)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(Partition {
            engine,
            schema,
            apply_lock: Mutex::new(()),
            state: RwLock::new(State {
                applied_index,
                stats,
                outbox_seq: 0,
                outbox_loaded: false,
                index_stats: HashMap::new(),
                range,
                children,
                tx_rows,
                stream,
            }),
            indexes: RwLock::new(Arc::new(Vec::new())),
            ttl: RwLock::new(ttl),
        })
    }

    /// The table's key schema.
    pub fn schema(&self) -> &KeySchema {
        &self.schema
    }

    /// Applies the command at Raft index `index`: the deterministic state machine step (same
    /// commands in the same order ⇒ same state).
    ///
    /// An `index <= applied_index()` was already applied and is skipped, returning
    /// `Applied::default()`. Commands that change nothing (a failed condition, a validation
    /// error, deleting an absent item) write nothing; their index is recorded with the next
    /// write, and replaying them yields the same result. Blocks for the fsync when the engine
    /// is synchronous. Equivalent to [`Partition::apply_batch`] with one command.
    ///
    /// # Errors
    /// - [`ApplyError::ConditionalCheckFailed`] with the existing item when the condition is
    ///   false (evaluated against an empty item when absent).
    /// - [`ApplyError::Validation`] when the item lacks its key attributes, an update fails at
    ///   runtime or touches a key attribute, or the resulting item exceeds 400 KB.
    /// - [`ApplyError::Storage`] when the engine fails; the index is then not applied.
    pub fn apply(&self, index: u64, cmd: &Command) -> Result<Applied, ApplyError> {
        self.apply_batch(index, std::slice::from_ref(cmd))
            .pop()
            .unwrap_or_else(|| Ok(Applied::default()))
    }

    /// Applies `cmds` at the consecutive indexes `first_index, first_index + 1, ...` as one
    /// group commit: one engine write (one fsync when the engine is synchronous) for the whole
    /// batch, with the results of applying the commands one by one with [`Partition::apply`].
    ///
    /// Each command is decided against the state left by the earlier commands of the batch;
    /// each key is written once, with its final value. Returns one result per command, in
    /// order. Indexes `<= applied_index()` are skipped (`Ok(Applied::default())`).
    ///
    /// A storage failure (reading the current state or writing the batch) fails every command
    /// of the batch with [`ApplyError::Storage`] and applies none of them: nothing is written
    /// and the applied index does not move.
    pub fn apply_batch(
        &self,
        first_index: u64,
        cmds: &[Command],
    ) -> Vec<Result<Applied, ApplyError>> {
        let _serial = self.apply_lock.lock();
        match self.apply_batch_locked(first_index, cmds) {
            Ok(results) => results,
            Err(e) => {
                let mut out = Vec::with_capacity(cmds.len());
                for _ in 1..cmds.len() {
                    out.push(Err(ApplyError::Storage(e.duplicate())));
                }
                out.push(Err(ApplyError::Storage(e)));
                out
            }
        }
    }

    fn apply_batch_locked(
        &self,
        first_index: u64,
        cmds: &[Command],
    ) -> Result<Vec<Result<Applied, ApplyError>>, StorageError> {
        let current = self.state.read().clone();
        let indexes = self.indexes.read().clone();
        let mut next = current.clone();
        // Storage key → the encoded item it holds after the batch's commands so far (`None` =
        // deleted). Encoded at once: the batch writes these bytes, and the item itself goes to
        // the command's result without a copy.
        let mut overlay: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
        let mut pending = Pending::default();
        // Whether the batch splits the partition (its range and children rows change).
        let mut split = false;
        // Whether the batch changes the stream setting (its row changes).
        let mut stream_changed = false;
        let mut results = Vec::with_capacity(cmds.len());
        let mut last_index = current.applied_index;
        for (i, cmd) in cmds.iter().enumerate() {
            let index = first_index.saturating_add(u64::try_from(i).unwrap_or(u64::MAX));
            if index <= current.applied_index {
                results.push(Ok(Applied::default()));
                continue;
            }
            last_index = index;
            if let Command::SetStream { setting } = cmd {
                if next.stream != *setting {
                    next.stream = *setting;
                    stream_changed = true;
                }
                results.push(Ok(Applied::default()));
                continue;
            }
            if let Command::Split {
                start,
                end,
                epoch,
                child,
            } = cmd
            {
                if next.range.is_none_or(|r| r.epoch < *epoch) {
                    split = true;
                    let old_epoch = next.range.map_or(0, |r| r.epoch);
                    Partition::close_shard_writes(
                        next.stream,
                        index,
                        old_epoch,
                        *epoch,
                        (child.child, child.epoch),
                        &mut pending,
                    );
                    next.children.push(*child);
                    next.range = Some(OwnedRange {
                        start: *start,
                        end: *end,
                        epoch: *epoch,
                    });
                }
                results.push(Ok(Applied::default()));
                continue;
            }
            if !self.routed_here(cmd, next.range) {
                results.push(Err(ApplyError::WrongPartition));
                continue;
            }
            if let Some(result) =
                self.tx_step(cmd, &indexes, &mut overlay, &mut pending, &mut next)?
            {
                if let (Command::TxResolve { commit: true, .. }, Ok(applied)) = (cmd, &result) {
                    let epoch = next.range.map_or(0, |r| r.epoch);
                    self.change_writes(
                        next.stream,
                        index,
                        epoch,
                        applied.old.as_ref(),
                        applied.new.as_ref(),
                        false,
                        &mut pending,
                    );
                }
                results.push(result);
                continue;
            }
            // A single write of an item a transaction holds is refused.
            let skey = cmd.key_item().and_then(|k| self.schema.storage_key(k));
            if let Some(skey) = &skey
                && self.tx_locked(skey, &pending, &next)?
            {
                results.push(Err(ApplyError::TransactionConflict));
                continue;
            }
            let decided = self.decide(cmd, &overlay).and_then(|d| match d {
                Decision::Write { key, old, new } => {
                    self.index_writes(
                        &indexes,
                        old.as_ref(),
                        new.as_ref(),
                        &mut next,
                        &mut pending,
                        true,
                    )?;
                    self.tx_clear_marks(&key, &mut pending, &next)?;
                    self.ttl_writes(&key, old.as_ref(), new.as_ref(), &mut pending);
                    self.change_writes(
                        next.stream,
                        index,
                        next.range.map_or(0, |r| r.epoch),
                        old.as_ref(),
                        new.as_ref(),
                        cmd.by_service(),
                        &mut pending,
                    );
                    Ok(Decision::Write { key, old, new })
                }
                noop => Ok(noop),
            });
            match decided {
                Ok(Decision::Noop(applied)) => results.push(Ok(applied)),
                Ok(Decision::Write { key, old, new }) => {
                    if let Some(old) = &old {
                        next.stats.remove(item_size(old));
                    }
                    if let Some(new) = &new {
                        next.stats.add(item_size(new));
                    }
                    overlay.insert(key, new.as_ref().map(encode_stored));
                    results.push(Ok(Applied { old, new }));
                }
                Err(ApplyError::Storage(e)) => return Err(e),
                Err(rejected) => results.push(Err(rejected)),
            }
        }
        if overlay.is_empty() && pending.index.is_empty() && !split && !stream_changed {
            // Nothing to write: the indexes are recorded with the next write.
            if last_index > current.applied_index {
                self.state.write().applied_index = last_index;
            }
            return Ok(results);
        }
        let mut batch = WriteBatch::new(last_index);
        if split && let Some(range) = next.range {
            crate::split::split_rows(&mut batch, range, &next.children);
        }
        if stream_changed {
            match next.stream {
                Some(s) => batch.put(crate::change_log::STREAM_KEY.to_vec(), s.encode()),
                None => batch.delete(crate::change_log::STREAM_KEY.to_vec()),
            };
        }
        for (key, value) in overlay {
            match value {
                Some(value) => batch.put(key, value),
                None => batch.delete(key),
            };
        }
        batch.put(STATS_KEY.to_vec(), next.stats.encode());
        for (key, value) in pending.index {
            match value {
                Some(value) => batch.put_in(Space::Index, key, value),
                None => batch.delete_in(Space::Index, key),
            };
        }
        for (id, stats) in &next.index_stats {
            if current.index_stats.get(id) != Some(stats) {
                batch.put_in(Space::Index, stats_key(*id), stats.encode());
            }
        }
        for (key, size) in pending.collections {
            if size == 0 {
                batch.delete_in(Space::Index, key);
            } else {
                batch.put_in(Space::Index, key, size.to_be_bytes().to_vec());
            }
        }
        if !pending.outbox.is_empty() {
            for record in &pending.outbox {
                record.put_into(&mut batch);
            }
            batch.put(
                OUTBOX_SEQ_KEY.to_vec(),
                next.outbox_seq.to_be_bytes().to_vec(),
            );
        }
        let tx_deleted = next.tx_rows
            && batch.space_deletes.iter().any(|(space, k)| {
                *space == Space::Index && k.starts_with(&crate::txn::all_prefix())
            });
        self.engine.write(&batch)?;
        if tx_deleted {
            // Written already: a failed look keeps checking for locks (always safe).
            next.tx_rows = Partition::has_tx_rows(self.engine.as_ref()).unwrap_or(true);
        }
        next.applied_index = last_index;
        *self.state.write() = next;
        Ok(results)
    }

    /// The index side of one item change (`old` → `new`), decided against the batch so far:
    /// checks the new item's index key types, the item collection limit, then records the
    /// local index entries to delete and put, their stats, and the outbox records of the
    /// global indexes whose entry changed. Changes nothing when it returns an error. Unless
    /// `checked` (a transaction's commit, checked when prepared), it cannot refuse the write.
    pub(crate) fn index_writes(
        &self,
        indexes: &[IndexDef],
        old: Option<&Item>,
        new: Option<&Item>,
        next: &mut State,
        pending: &mut Pending,
        checked: bool,
    ) -> Result<(), ApplyError> {
        if indexes.is_empty() {
            return Ok(());
        }
        if checked && let Some(new) = new {
            for def in indexes.iter().filter(|d| maintained(d)) {
                def.check_item(new)
                    .map_err(|e| ApplyError::Validation(e.to_string()))?;
            }
        }
        let locals: Vec<(&IndexDef, Option<EntryOf>, Option<EntryOf>)> = indexes
            .iter()
            .filter(|d| d.kind == IndexKind::Local && maintained(d))
            .map(|d| {
                (
                    d,
                    EntryOf::of(d, &self.schema, old),
                    EntryOf::of(d, &self.schema, new),
                )
            })
            .collect();
        if !locals.is_empty()
            && let Some(pk) = new.or(old).and_then(|i| i.get(&self.schema.hash.name))
        {
            let entries = |pick: bool| -> usize {
                locals
                    .iter()
                    .filter_map(|(_, o, n)| if pick { n.as_ref() } else { o.as_ref() })
                    .map(|e| entry_size(&e.entry))
                    .sum()
            };
            let before = to_u64(old.map_or(0, item_size).saturating_add(entries(false)));
            let after = to_u64(new.map_or(0, item_size).saturating_add(entries(true)));
            let key = collection_key(pk);
            let current = match pending.collections.get(&key) {
                Some(size) => *size,
                None => match self.engine.get_for_write(Space::Index, &key)? {
                    Some(bytes) => decode_u64(&bytes, "item collection size")?,
                    None => 0,
                },
            };
            let updated = current.saturating_sub(before).saturating_add(after);
            if checked && after > before && updated > MAX_ITEM_COLLECTION_SIZE {
                return Err(ApplyError::ItemCollectionSizeLimitExceeded);
            }
            pending.collections.insert(key, updated);
        }
        for (def, old_entry, new_entry) in locals {
            let stats = next.index_stats.entry(def.id).or_default();
            if let Some(e) = old_entry {
                stats.remove(entry_size(&e.entry));
                pending.index.insert(e.key, None);
            }
            if let Some(e) = new_entry {
                stats.add(entry_size(&e.entry));
                let value = e.encoded();
                pending.index.insert(e.key, Some(value));
            }
        }
        for def in indexes
            .iter()
            .filter(|d| d.kind == IndexKind::Global && maintained(d))
        {
            let old_entry = EntryOf::of(def, &self.schema, old);
            let new_entry = EntryOf::of(def, &self.schema, new);
            let delete = match (&old_entry, &new_entry) {
                (Some(o), Some(n)) if o.key == n.key => None,
                (Some(o), _) => Some(o.key.clone()),
                (None, _) => None,
            };
            let unchanged = match (&old_entry, &new_entry) {
                (Some(o), Some(n)) => o.key == n.key && o.entry == n.entry,
                (None, None) => true,
                _ => false,
            };
            if unchanged {
                continue;
            }
            next.outbox_seq = next.outbox_seq.saturating_add(1);
            pending.outbox.push(OutboxRecord {
                seq: next.outbox_seq,
                index_id: def.id,
                delete,
                put: new_entry.map(|e| (e.key, e.entry)),
            });
        }
        Ok(())
    }

    /// The item stored under `key` as the batch so far left it: the overlay's pending value,
    /// else the engine's.
    pub(crate) fn current(
        &self,
        key: &[u8],
        overlay: &HashMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> Result<Option<Item>, StorageError> {
        match overlay.get(key) {
            Some(pending) => pending.as_deref().map(decode_stored).transpose(),
            // Through the writer connection: its decrypted pages survive the batch's commit.
            None => match self.engine.get_for_write(Space::Items, key)? {
                Some(bytes) => decode_stored(&bytes).map(Some),
                None => Ok(None),
            },
        }
    }

    pub(crate) fn decide(
        &self,
        cmd: &Command,
        overlay: &HashMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> Result<Decision, ApplyError> {
        match cmd {
            Command::Put { item, condition } => {
                let key = self.storage_key_or_invalid(item, true)?;
                let old = self.current(&key, overlay)?;
                check(condition.as_ref(), old.as_ref())?;
                if item_size(item) > MAX_ITEM_SIZE {
                    return Err(ApplyError::Validation(
                        "Item size has exceeded the maximum allowed size".to_string(),
                    ));
                }
                Ok(Decision::Write {
                    key,
                    old,
                    new: Some(item.clone()),
                })
            }
            Command::Delete { key, condition } | Command::Expire { key, condition } => {
                let skey = self.storage_key_or_invalid(key, false)?;
                let old = self.current(&skey, overlay)?;
                check(condition.as_ref(), old.as_ref())?;
                Ok(match old {
                    None => Decision::Noop(Applied::default()),
                    Some(old) => Decision::Write {
                        key: skey,
                        old: Some(old),
                        new: None,
                    },
                })
            }
            // Handled by the apply loop.
            Command::Split { .. }
            | Command::SetStream { .. }
            | Command::TxPrepare { .. }
            | Command::TxResolve { .. }
            | Command::TxDecide { .. }
            | Command::TxForget { .. }
            | Command::TxRead { .. }
            | Command::TxCheck { .. }
            | Command::TxRelease { .. } => Ok(Decision::Noop(Applied::default())),
            Command::Update {
                key,
                update,
                condition,
            } => {
                let skey = self.storage_key_or_invalid(key, false)?;
                let old = self.current(&skey, overlay)?;
                check(condition.as_ref(), old.as_ref())?;
                if old.is_none() && !update.creates_item() {
                    // Nothing to write: a missing item stays missing (no ALL_NEW attributes).
                    return Ok(Decision::Noop(Applied::default()));
                }
                let key_attrs = self.schema.key_of(key);
                let mut new = old.clone().unwrap_or_else(|| key_attrs.clone());
                update
                    .apply(&mut new)
                    .map_err(|e| ApplyError::Validation(e.message))?;
                if let Some(changed) = self
                    .schema
                    .attrs()
                    .find(|a| new.get(&a.name) != key_attrs.get(&a.name))
                {
                    return Err(ApplyError::Validation(format!(
                        "One or more parameter values were invalid: Cannot update attribute {}. \
                         This attribute is part of the key",
                        changed.name
                    )));
                }
                if item_size(&new) > MAX_ITEM_SIZE {
                    return Err(ApplyError::Validation(
                        "Item size to update has exceeded the maximum allowed size".to_string(),
                    ));
                }
                Ok(Decision::Write {
                    key: skey,
                    old,
                    new: Some(new),
                })
            }
        }
    }

    /// Whether `cmd`'s key is in `range` (a replica never split serves every key; a key
    /// without its partition key attribute is refused by `decide`).
    fn routed_here(&self, cmd: &Command, range: Option<OwnedRange>) -> bool {
        let Some(range) = range else {
            return true;
        };
        cmd.key_item()
            .and_then(|k| k.get(&self.schema.hash.name))
            .is_none_or(|pk| range.contains(shoal_types::key::partition_hash(pk)))
    }

    /// The storage key of a command's item or key, or DynamoDB's validation message.
    pub(crate) fn storage_key_or_invalid(
        &self,
        item: &Item,
        whole_item: bool,
    ) -> Result<Vec<u8>, ApplyError> {
        if let Some(key) = self.schema.storage_key(item) {
            return Ok(key);
        }
        let checked = if whole_item {
            self.schema.validate_item(item)
        } else {
            self.schema.validate_key(item)
        };
        Err(ApplyError::Validation(match checked {
            Err(e) => e.to_string(),
            Ok(()) => "The provided key element does not match the schema".to_string(),
        }))
    }

    /// The item with this key, if present (a strongly consistent read of this replica).
    ///
    /// # Errors
    /// [`StorageError::InvalidKey`] when `key` lacks a key attribute or has the wrong type;
    /// engine failures; [`StorageError::Corrupt`] if the stored item does not decode.
    pub fn get(&self, key: &Item) -> Result<Option<Item>, StorageError> {
        let skey = self.schema.storage_key(key).ok_or_else(|| {
            StorageError::InvalidKey("The provided key element does not match the schema".into())
        })?;
        self.get_by_storage_key(&skey)
    }

    /// As [`Partition::get`] when it can answer without waiting (see [`Engine::try_get_in`]);
    /// `None` when the caller should call [`Partition::get`] from a thread that may block.
    /// For point reads served in place on an async worker.
    pub fn try_get(&self, key: &Item) -> Option<Result<Option<Item>, StorageError>> {
        let Some(skey) = self.schema.storage_key(key) else {
            return Some(Err(StorageError::InvalidKey(
                "The provided key element does not match the schema".into(),
            )));
        };
        let read = self.engine.try_get_in(Space::Items, &skey)?;
        Some(read.and_then(|bytes| bytes.map(|b| decode_stored(&b)).transpose()))
    }

    pub(crate) fn get_by_storage_key(&self, key: &[u8]) -> Result<Option<Item>, StorageError> {
        match self.engine.get(key)? {
            Some(bytes) => decode_stored(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Exact item count and total item bytes as of the last applied write.
    pub fn stats(&self) -> PartitionStats {
        self.state.read().stats
    }

    /// The table's secondary indexes, as last given to [`Partition::set_indexes`].
    pub fn indexes(&self) -> Vec<IndexDef> {
        self.indexes.read().as_ref().clone()
    }

    /// Makes every batch applied so far durable (see [`Engine::sync`]; a partition whose engine
    /// is [`crate::Durability::Relaxed`] is durable only up to its last sync).
    ///
    /// # Errors
    /// I/O failures.
    pub fn sync(&self) -> Result<(), StorageError> {
        self.engine.sync()
    }

    /// The highest index applied (or skipped as a no-op) so far.
    pub fn applied_index(&self) -> u64 {
        self.state.read().applied_index
    }
}

/// `Err(ConditionalCheckFailed)` unless `condition` holds on the existing item (or an empty
/// item when absent).
pub(crate) fn check(
    condition: Option<&shoal_expr::Condition>,
    old: Option<&Item>,
) -> Result<(), ApplyError> {
    let Some(condition) = condition else {
        return Ok(());
    };
    let empty = Item::new();
    if condition.evaluate(old.unwrap_or(&empty)) {
        Ok(())
    } else {
        Err(ApplyError::ConditionalCheckFailed { item: old.cloned() })
    }
}

/// Decodes a stored big-endian u64 counter.
pub(crate) fn decode_u64(bytes: &[u8], what: &str) -> Result<u64, StorageError> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| StorageError::Corrupt {
        context: format!("{what}: expected 8 bytes, found {}", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(raw))
}

/// Encodes an item as stored.
pub(crate) fn encode_stored(item: &Item) -> Vec<u8> {
    let mut value = Vec::with_capacity(256);
    encode_item(item, &mut value);
    value
}

/// Decodes a stored item.
pub(crate) fn decode_stored(bytes: &[u8]) -> Result<Item, StorageError> {
    decode_item(bytes).map_err(|e| StorageError::Corrupt {
        context: format!("stored item: {e}"),
    })
}

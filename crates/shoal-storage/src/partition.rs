//! [`Partition`]: one replica of one table partition, and its `apply` state machine.

use std::collections::HashMap;

use parking_lot::{Mutex, RwLock};
use shoal_types::Item;
use shoal_types::codec::{decode_item, encode_item};
use shoal_types::key::KeySchema;
use shoal_types::size::{MAX_ITEM_SIZE, item_size};

use crate::stats::STATS_KEY;
use crate::{Applied, ApplyError, Command, Engine, PartitionStats, StorageError, WriteBatch};

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
    apply_lock: Mutex<()>,
    state: RwLock<State>,
}

#[derive(Debug, Clone, Copy)]
struct State {
    applied_index: u64,
    stats: PartitionStats,
}

/// What a command will do, decided against the current state.
enum Decision {
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
        let state = *self.state.read();
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
        let stats = match engine.get(STATS_KEY)? {
            Some(bytes) => PartitionStats::decode(&bytes)?,
            None => PartitionStats::default(),
        };
        Ok(Partition {
            engine,
            schema,
            apply_lock: Mutex::new(()),
            state: RwLock::new(State {
                applied_index,
                stats,
            }),
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
        let current = *self.state.read();
        let mut stats = current.stats;
        // Storage key → the item it holds after the batch's commands so far (`None` = deleted).
        let mut overlay: HashMap<Vec<u8>, Option<Item>> = HashMap::new();
        let mut results = Vec::with_capacity(cmds.len());
        let mut last_index = current.applied_index;
        for (i, cmd) in cmds.iter().enumerate() {
            let index = first_index.saturating_add(u64::try_from(i).unwrap_or(u64::MAX));
            if index <= current.applied_index {
                results.push(Ok(Applied::default()));
                continue;
            }
            last_index = index;
            match self.decide(cmd, &overlay) {
                Ok(Decision::Noop(applied)) => results.push(Ok(applied)),
                Ok(Decision::Write { key, old, new }) => {
                    if let Some(old) = &old {
                        stats.remove(item_size(old));
                    }
                    if let Some(new) = &new {
                        stats.add(item_size(new));
                    }
                    overlay.insert(key, new.clone());
                    results.push(Ok(Applied { old, new }));
                }
                Err(ApplyError::Storage(e)) => return Err(e),
                Err(rejected) => results.push(Err(rejected)),
            }
        }
        if overlay.is_empty() {
            // Nothing to write: the indexes are recorded with the next write.
            if last_index > current.applied_index {
                self.state.write().applied_index = last_index;
            }
            return Ok(results);
        }
        let mut batch = WriteBatch::new(last_index);
        for (key, item) in overlay {
            match item {
                Some(item) => {
                    let mut value = Vec::with_capacity(256);
                    encode_item(&item, &mut value);
                    batch.put(key, value);
                }
                None => {
                    batch.delete(key);
                }
            }
        }
        batch.put(STATS_KEY.to_vec(), stats.encode());
        self.engine.write(&batch)?;
        *self.state.write() = State {
            applied_index: last_index,
            stats,
        };
        Ok(results)
    }

    /// The item stored under `key` as the batch so far left it: the overlay's pending value,
    /// else the engine's.
    fn current(
        &self,
        key: &[u8],
        overlay: &HashMap<Vec<u8>, Option<Item>>,
    ) -> Result<Option<Item>, StorageError> {
        match overlay.get(key) {
            Some(pending) => Ok(pending.clone()),
            None => self.get_by_storage_key(key),
        }
    }

    fn decide(
        &self,
        cmd: &Command,
        overlay: &HashMap<Vec<u8>, Option<Item>>,
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
            Command::Delete { key, condition } => {
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
            Command::Update {
                key,
                update,
                condition,
            } => {
                let skey = self.storage_key_or_invalid(key, false)?;
                let old = self.current(&skey, overlay)?;
                check(condition.as_ref(), old.as_ref())?;
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

    /// The storage key of a command's item or key, or DynamoDB's validation message.
    fn storage_key_or_invalid(&self, item: &Item, whole_item: bool) -> Result<Vec<u8>, ApplyError> {
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

    /// The highest index applied (or skipped as a no-op) so far.
    pub fn applied_index(&self) -> u64 {
        self.state.read().applied_index
    }
}

/// `Err(ConditionalCheckFailed)` unless `condition` holds on the existing item (or an empty
/// item when absent).
fn check(condition: Option<&shoal_expr::Condition>, old: Option<&Item>) -> Result<(), ApplyError> {
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

/// Decodes a stored item.
pub(crate) fn decode_stored(bytes: &[u8]) -> Result<Item, StorageError> {
    decode_item(bytes).map_err(|e| StorageError::Corrupt {
        context: format!("stored item: {e}"),
    })
}

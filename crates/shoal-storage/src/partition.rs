//! [`Partition`]: one replica of one table partition, and its `apply` state machine.

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
/// Writes go through [`Partition::apply`] one at a time (an internal mutex serializes them);
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
    /// is synchronous.
    ///
    /// # Errors
    /// - [`ApplyError::ConditionalCheckFailed`] with the existing item when the condition is
    ///   false (evaluated against an empty item when absent).
    /// - [`ApplyError::Validation`] when the item lacks its key attributes, an update fails at
    ///   runtime or touches a key attribute, or the resulting item exceeds 400 KB.
    /// - [`ApplyError::Storage`] when the engine fails; the index is then not applied.
    pub fn apply(&self, index: u64, cmd: &Command) -> Result<Applied, ApplyError> {
        let _serial = self.apply_lock.lock();
        let current = *self.state.read();
        if index <= current.applied_index {
            return Ok(Applied::default());
        }
        let decision = match self.decide(cmd) {
            Ok(d) => d,
            Err(ApplyError::Storage(e)) => return Err(ApplyError::Storage(e)),
            Err(rejected) => {
                self.state.write().applied_index = index;
                return Err(rejected);
            }
        };
        match decision {
            Decision::Noop(applied) => {
                self.state.write().applied_index = index;
                Ok(applied)
            }
            Decision::Write { key, old, new } => {
                let mut stats = current.stats;
                let mut batch = WriteBatch::new(index);
                if let Some(old) = &old {
                    stats.remove(item_size(old));
                }
                match &new {
                    Some(item) => {
                        stats.add(item_size(item));
                        let mut value = Vec::with_capacity(256);
                        encode_item(item, &mut value);
                        batch.put(key, value);
                    }
                    None => {
                        batch.delete(key);
                    }
                }
                batch.put(STATS_KEY.to_vec(), stats.encode());
                self.engine.write(&batch)?;
                *self.state.write() = State {
                    applied_index: index,
                    stats,
                };
                Ok(Applied { old, new })
            }
        }
    }

    fn decide(&self, cmd: &Command) -> Result<Decision, ApplyError> {
        match cmd {
            Command::Put { item, condition } => {
                let key = self.storage_key_or_invalid(item, true)?;
                let old = self.get_by_storage_key(&key)?;
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
                let old = self.get_by_storage_key(&skey)?;
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
                let old = self.get_by_storage_key(&skey)?;
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

//! The commands the state machine applies, and their outcomes.

use shoal_expr::{Condition, Update};
use shoal_types::Item;

use crate::StorageError;
use crate::split::SplitChild;

/// One write to a partition, as replicated through Raft. Applying the same commands in the
/// same order yields the same state on every replica.
#[derive(Debug, Clone)]
pub enum Command {
    /// PutItem: replaces the whole item. `condition` is checked against the existing item (an
    /// empty item when absent).
    Put {
        item: Item,
        condition: Option<Condition>,
    },
    /// DeleteItem: removes the item with this key; an absent item is a no-op (`old: None`).
    Delete {
        key: Item,
        condition: Option<Condition>,
    },
    /// UpdateItem: checks `condition` against the existing item (an empty item when absent),
    /// then applies `update` to the existing item, or to an item made of the key attributes
    /// when absent (DynamoDB's upsert).
    Update {
        key: Item,
        update: Update,
        condition: Option<Condition>,
    },
    /// Splits the partition: from this entry on it serves only the hashes `start..=end` (at
    /// `epoch`), and the rest of its former range goes to partition `child` (see `split.rs`).
    /// Already applied (the replica's epoch is `epoch` or newer): a no-op.
    Split {
        start: u64,
        end: u64,
        epoch: u64,
        child: SplitChild,
    },
}

impl Command {
    /// The item holding the key the command writes (the whole new item for a put); `None` for
    /// a split, which writes no item.
    pub fn key_item(&self) -> Option<&Item> {
        match self {
            Command::Put { item, .. } => Some(item),
            Command::Delete { key, .. } | Command::Update { key, .. } => Some(key),
            Command::Split { .. } => None,
        }
    }
}

/// What a command changed: the item before and after it (`None` = absent). The default (both
/// `None`) is also returned for a skipped, already applied index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// The item before the command, if it existed.
    pub old: Option<Item>,
    /// The item after the command, if it exists.
    pub new: Option<Item>,
}

/// Why a command was not applied. For every variant but `Storage` nothing was written and the
/// outcome is deterministic (every replica rejects it the same way).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The condition evaluated to false. `item` is the existing item (for
    /// `ReturnValuesOnConditionCheckFailure`), `None` when absent.
    #[error("The conditional request failed")]
    ConditionalCheckFailed { item: Option<Item> },
    /// A runtime error of the update (the expression error's message), a key attribute changed
    /// by an update, a missing key attribute, an item over 400 KB, or a secondary index key
    /// attribute of the wrong type or empty (`IndexDef::check_item`). The message is DynamoDB's.
    #[error("{0}")]
    Validation(String),
    /// The write would grow an item collection (the items of one partition key and their local
    /// secondary index entries) of a table with local secondary indexes beyond 10 GB
    /// (`ItemCollectionSizeLimitExceededException`). Writes that shrink it are still accepted.
    #[error("Item collection size limit exceeded")]
    ItemCollectionSizeLimitExceeded,
    /// The command's key is outside the partition's range: the partition was split since the
    /// command was routed. Nothing was written; the router retries it with a fresh map.
    #[error("the key is outside this partition's range (it was split): retry")]
    WrongPartition,
    /// The engine failed; the command's effect is unknown to the caller and its index was not
    /// recorded, so it may be applied again.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

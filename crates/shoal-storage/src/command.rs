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
    /// A Time to Live delete: as [`Command::Delete`], made by the service (its stream record
    /// says so) and not metered.
    Expire {
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
    /// Sets the stream the partition writes change records for from this entry on (`None`:
    /// none), on every replica at the same point of the log (see `change_log.rs`). Writes no
    /// item; setting what is set already is a no-op.
    SetStream {
        setting: Option<crate::StreamSetting>,
    },
    /// Phase one of a transaction on one item (see `txn.rs`): evaluates `op`'s condition and
    /// computes its result against the item, then locks the item for transaction `txid` with
    /// the pending change. Refused with [`ApplyError::TransactionConflict`] when another
    /// transaction holds the lock. Applying it again for the same `txid` while the lock is held
    /// returns the same vote.
    TxPrepare {
        txid: TxId,
        /// The coordinator's clock at the start (ms since the epoch): how old the lock is.
        ts: u64,
        /// Where the transaction's decision is kept: for recovery by anyone who finds the lock.
        primary: TxPrimary,
        /// The client token, if any: a prepare finding a committed decision of the same token
        /// next to its item answers [`ApplyError::TxAlreadyCommitted`] (or
        /// [`ApplyError::TxTokenMismatch`] for another request), one finding the item locked by
        /// the same token [`ApplyError::TxInProgress`].
        token: Option<TxToken>,
        op: TxOp,
    },
    /// Phase two on one item: applies the pending change of `txid` (`commit`) or drops it, and
    /// releases the lock. A no-op when `txid` holds no lock on the item.
    TxResolve { txid: TxId, key: Item, commit: bool },
    /// Records the decision of transaction `txid` next to its primary item `key`, unless one is
    /// recorded already: the first decision wins. Answers `Ok` for commit and
    /// [`ApplyError::TransactionAborted`] for abort, whichever is recorded.
    TxDecide {
        txid: TxId,
        key: Item,
        commit: bool,
        ts: u64,
        /// Kept with a commit decision for 10 minutes (idempotent retries).
        token: Option<TxToken>,
    },
    /// Removes the decision of `txid` once every lock of the transaction is resolved (one with
    /// a client token is kept, marked settled, for the token's window).
    TxForget { txid: TxId, key: Item },
    /// A read of a serializable transaction: the item (as `Applied::old`), refused with
    /// [`ApplyError::TransactionConflict`] while a transaction holds its lock. Leaves a read mark
    /// that every later change of the item removes.
    TxRead { txid: TxId, key: Item, ts: u64 },
    /// Whether the read mark of `txid` is still there (`Ok`), or a change removed it
    /// ([`ApplyError::TransactionConflict`]); writes nothing.
    TxCheck { txid: TxId, key: Item },
    /// Removes the read mark of `txid`: `Ok` when it was still there (the item did not change
    /// since the read), [`ApplyError::TransactionConflict`] when a change removed it.
    TxRelease { txid: TxId, key: Item },
}

/// A transaction's id: random, 128 bits.
pub type TxId = [u8; 16];

/// A write transaction's `ClientRequestToken`, hashed: the same `key` within 10 minutes names
/// the same transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxToken {
    /// Hash of the caller's access key id and the token.
    pub key: [u8; 16],
    /// Hash of the rest of the request (its actions and options): a different request under
    /// the same token is `IdempotentParameterMismatchException`.
    pub request: [u8; 16],
}

/// Where a transaction's decision is recorded: next to its first item, in that item's
/// partition (found by key, like any write, whatever splits happened since).
#[derive(Debug, Clone, PartialEq)]
pub struct TxPrimary {
    /// The table of the primary item.
    pub table: String,
    /// The key attributes of the primary item.
    pub key: Item,
}

/// One action of a write transaction on one item.
#[derive(Debug, Clone)]
pub enum TxOp {
    /// As [`Command::Put`].
    Put {
        item: Item,
        condition: Option<Condition>,
    },
    /// As [`Command::Update`].
    Update {
        key: Item,
        update: Update,
        condition: Option<Condition>,
    },
    /// As [`Command::Delete`].
    Delete {
        key: Item,
        condition: Option<Condition>,
    },
    /// Checks `condition` on the item and holds it unchanged until the transaction ends.
    Check { key: Item, condition: Condition },
}

impl TxOp {
    /// The item holding the key the action targets (the whole new item for a put).
    pub fn key_item(&self) -> &Item {
        match self {
            TxOp::Put { item, .. } => item,
            TxOp::Update { key, .. } | TxOp::Delete { key, .. } | TxOp::Check { key, .. } => key,
        }
    }
}

impl Command {
    /// Whether the service made the change (a TTL delete), not a client.
    pub fn by_service(&self) -> bool {
        matches!(self, Command::Expire { .. })
    }

    /// The item holding the key the command writes (the whole new item for a put); `None` for
    /// a split or a stream change, which write no item.
    pub fn key_item(&self) -> Option<&Item> {
        match self {
            Command::Put { item, .. } => Some(item),
            Command::Delete { key, .. }
            | Command::Expire { key, .. }
            | Command::Update { key, .. } => Some(key),
            Command::Split { .. } | Command::SetStream { .. } => None,
            Command::TxPrepare { op, .. } => Some(op.key_item()),
            Command::TxResolve { key, .. }
            | Command::TxDecide { key, .. }
            | Command::TxForget { key, .. }
            | Command::TxRead { key, .. }
            | Command::TxCheck { key, .. }
            | Command::TxRelease { key, .. } => Some(key),
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
    /// A transaction holds the item: a write or a transaction's action on it is refused
    /// (`TransactionConflictException`, or the `TransactionConflict` cancellation reason).
    /// Nothing was written.
    #[error("Transaction is ongoing for the item")]
    TransactionConflict,
    /// The transaction's recorded decision is abort ([`Command::TxDecide`]).
    #[error("the transaction was aborted")]
    TransactionAborted,
    /// A transaction with the same client token and request committed within 10 minutes.
    #[error("the transaction already committed")]
    TxAlreadyCommitted,
    /// The client token was used within 10 minutes for another request.
    #[error("the client token was used for another request")]
    TxTokenMismatch,
    /// A transaction with the same client token holds the item.
    #[error("a transaction with the same client token is in progress")]
    TxInProgress,
    /// The engine failed; the command's effect is unknown to the caller and its index was not
    /// recorded, so it may be applied again.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

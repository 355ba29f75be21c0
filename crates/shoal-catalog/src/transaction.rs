//! Transactions as the API hands them to the data plane ([`crate::DataPlane::transact_write`],
//! [`crate::DataPlane::transact_get`]), and how they end.

use std::sync::Arc;

use shoal_storage::Applied;
use shoal_types::Item;

pub use shoal_storage::{TxOp, TxToken};

use crate::TableMeta;
use crate::capacity::Throttled;

/// One action of TransactWriteItems, on its table.
#[derive(Debug, Clone)]
pub struct TxWrite {
    pub table: Arc<TableMeta>,
    pub op: TxOp,
}

/// One Get of TransactGetItems: the key attributes of the item, on its table.
#[derive(Debug, Clone)]
pub struct TxGet {
    pub table: Arc<TableMeta>,
    pub key: Item,
}

/// Why one action of a canceled transaction did not apply (DynamoDB's `CancellationReasons`
/// codes). Actions that would have succeeded get [`TxReason::None`].
#[derive(Debug, Clone, PartialEq)]
pub enum TxReason {
    /// `None`: the action would have succeeded.
    None,
    /// `ConditionalCheckFailed`, with the existing item (`None` when absent) for
    /// `ReturnValuesOnConditionCheckFailure: ALL_OLD`.
    ConditionalCheckFailed { item: Option<Item> },
    /// `TransactionConflict`: another transaction holds the item, or a write changed it during
    /// the read.
    TransactionConflict,
    /// `ValidationError`: the action fails on the item (an update error at run time, a key
    /// attribute changed, an item over 400 KB, an index key of the wrong type); DynamoDB's
    /// message.
    ValidationError(String),
    /// `ItemCollectionSizeLimitExceeded`.
    ItemCollectionSizeLimitExceeded,
    /// `ThrottlingError`: the table or an index has no capacity for the action.
    ThrottlingError(Throttled),
}

impl TxReason {
    /// DynamoDB's code for the reason (`CancellationReason.Code`).
    pub fn code(&self) -> &'static str {
        match self {
            TxReason::None => "None",
            TxReason::ConditionalCheckFailed { .. } => "ConditionalCheckFailed",
            TxReason::TransactionConflict => "TransactionConflict",
            TxReason::ValidationError(_) => "ValidationError",
            TxReason::ItemCollectionSizeLimitExceeded => "ItemCollectionSizeLimitExceeded",
            TxReason::ThrottlingError(_) => "ThrottlingError",
        }
    }
}

/// How a transaction ended.
#[derive(Debug, Clone)]
pub enum TxOutcome<T> {
    /// Every action applied, atomically: one result per action, in request order.
    Committed(Vec<T>),
    /// Nothing applied: one reason per action, in request order, at least one not `None`.
    Canceled(Vec<TxReason>),
    /// The same token and request committed within the last 10 minutes: nothing was written
    /// again (a successful response).
    AlreadyCommitted,
    /// The token was used within the last 10 minutes for another request:
    /// `IdempotentParameterMismatchException`. Nothing was written.
    TokenMismatch,
    /// A transaction with the same token is still running: `TransactionInProgressException`.
    /// Nothing was written.
    InProgress,
}

/// A committed write transaction's results: each action's item before and after (for capacity
/// and item collection metrics; a condition check's `old` and `new` are the item as it is).
pub type TxWritten = TxOutcome<Applied>;

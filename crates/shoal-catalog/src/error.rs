//! [`DataError`]: what can go wrong below the API, and [`KmsKeyError`].

use shoal_storage::ApplyError;

/// What can go wrong below the API. Each variant is mapped to a DynamoDB error by the API's
/// handlers (only there: this crate knows nothing of DynamoDB's wire format).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("table not found: {0}")]
    TableNotFound(String),
    #[error("table already exists: {0}")]
    TableExists(String),
    /// The table changed since the caller read it (compare-and-swap on `version` lost).
    #[error("table {0} was changed concurrently")]
    Conflict(String),
    /// The index (named) is not there any more: deleted since the request was validated.
    #[error("the table does not have the index {0}")]
    IndexNotFound(String),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("internal: {0}")]
    Internal(String),
    /// The node cannot serve the request for a reason the client should see (a full disk, a
    /// replica waiting for a restart): `InternalServerError` with this message.
    #[error("{0}")]
    Unavailable(String),
    /// The request would exceed the throughput of the table or one of its global indexes:
    /// `ProvisionedThroughputExceededException` (retryable) with this reason. Nothing was done.
    #[error("throttled: {} on {}", .0.reason, .0.resource)]
    Throttled(crate::capacity::Throttled),
    /// The stream has no such shard (never had, or it was trimmed): `ResourceNotFoundException`.
    #[error("shard not found: {0}")]
    ShardNotFound(String),
    /// The records asked for were trimmed: `TrimmedDataAccessException` with this message.
    #[error("{0}")]
    Trimmed(String),
}

/// Why a KMS key named by an `SSESpecification` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KmsKeyError {
    /// The key does not exist, is disabled, is not a symmetric encryption key, or no KMS is configured:
    /// a `ValidationException` with this message.
    #[error("{0}")]
    Unusable(String),
    /// Anything else (KMS unreachable, ...).
    #[error(transparent)]
    Data(#[from] DataError),
}

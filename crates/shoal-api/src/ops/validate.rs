//! Model constraints shared by handlers: table names, enums, lengths, number ranges.

use crate::backend::{DataError, TableMeta};
use crate::error::{ApiError, ErrorKind, Violations};

/// Checks a `TableName` member (3-255 characters of `[a-zA-Z0-9_.-]`), recording violations under
/// `field`. A table ARN is accepted where the model allows one and reduced to its name.
pub fn table_name<'a>(value: Option<&'a str>, field: &str, v: &mut Violations) -> Option<&'a str> {
    let Some(raw) = value else {
        v.missing(field);
        return None;
    };
    let name = name_of(raw);
    name_constraints(name, field, v).then_some(name)
}

/// The table a `TableName` (or `RequestItems` key) names: an ARN (any region and account) is
/// reduced to the name after its last `:table/`. Authorization reads names the same way
/// (`crate::authz`), so it checks the table the operation will use.
pub fn name_of(raw: &str) -> &str {
    match raw.strip_prefix("arn:") {
        Some(_) => raw.rsplit_once(":table/").map(|(_, n)| n).unwrap_or(raw),
        None => raw,
    }
}

/// The model constraints of table and index names (3-255 characters of `[a-zA-Z0-9_.-]`);
/// false (with the violations recorded under `field`) when one fails.
pub fn name_constraints(name: &str, field: &str, v: &mut Violations) -> bool {
    let mut ok = true;
    if name.len() < 3 {
        v.constraint(
            name,
            field,
            "Member must have length greater than or equal to 3",
        );
        ok = false;
    }
    if name.len() > 255 {
        v.constraint(
            name,
            field,
            "Member must have length less than or equal to 255",
        );
        ok = false;
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        v.constraint(
            name,
            field,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        );
        ok = false;
    }
    ok
}

/// Checks an enum member; `allowed` in the order DynamoDB lists them in its message.
pub fn enum_value<'a>(
    value: Option<&'a str>,
    field: &str,
    allowed: &[&str],
    v: &mut Violations,
) -> Option<&'a str> {
    let s = value?;
    if allowed.contains(&s) {
        Some(s)
    } else {
        v.constraint(
            s,
            field,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        );
        None
    }
}

/// Maps "no such table" and other backend failures for item and table operations.
pub fn backend_error(e: DataError) -> ApiError {
    match e {
        DataError::TableNotFound(_) => ApiError::resource_not_found(),
        DataError::TableExists(name) => ApiError::new(
            ErrorKind::ResourceInUse,
            format!("Table already exists: {name}"),
        ),
        DataError::Conflict(name) => ApiError::new(
            ErrorKind::ResourceInUse,
            format!(
                "Attempt to change a resource which is still in use: Table: {name} is being updated"
            ),
        ),
        DataError::IndexNotFound(name) => ApiError::validation(format!(
            "The table does not have the specified index: {name}"
        )),
        // A write storage rejected for its content (an update failing at run time, a result over
        // 400 KB, an index key of the wrong type): the client's error.
        DataError::Apply(shoal_storage::ApplyError::Validation(m)) => ApiError::validation(m),
        DataError::Apply(shoal_storage::ApplyError::Storage(e)) => storage_error(&e),
        // An item collection of a table with local indexes would grow past 10 GB.
        DataError::Apply(shoal_storage::ApplyError::ItemCollectionSizeLimitExceeded) => {
            ApiError::new(
                ErrorKind::ItemCollectionSizeLimitExceeded,
                "Collection size exceeded.",
            )
        }
        // A single-item write on an item a transaction holds (its lock, or a read mark of
        // a serializable read).
        DataError::Apply(shoal_storage::ApplyError::TransactionConflict) => ApiError::new(
            ErrorKind::TransactionConflict,
            "Transaction is ongoing for the item",
        ),
        DataError::Apply(e) => ApiError::internal(e),
        DataError::Internal(m) => ApiError::internal(m),
        DataError::Throttled(t) => ApiError::throttled(&t),
        // Stream reads (`ops/streams`).
        DataError::ShardNotFound(_) => super::streams::shard_not_found(),
        DataError::Trimmed(_) => ApiError::new(
            ErrorKind::TrimmedDataAccess,
            "The operation attempted to read past the oldest stream record in a shard.",
        ),
        DataError::Unavailable(m) => {
            tracing::error!(cause = %m, "request refused");
            ApiError::new(
                ErrorKind::InternalServerError,
                format!("Internal server error: {m}"),
            )
        }
    }
}

/// A storage failure: `InternalServerError` (500). A full disk and corrupt data get messages
/// saying so, since the client's retry cannot fix either; the details (file, SQLite's message)
/// go to the log only.
pub fn storage_error(e: &shoal_storage::StorageError) -> ApiError {
    use shoal_storage::StorageError;
    match e {
        StorageError::DiskFull { .. } => {
            tracing::error!(cause = %e, "write failed: the disk is full");
            ApiError::new(
                ErrorKind::InternalServerError,
                "Internal server error: the node's disk is full; the write was not applied",
            )
        }
        StorageError::Corrupt { .. } => {
            tracing::error!(cause = %e, "stored data is corrupt");
            ApiError::new(
                ErrorKind::InternalServerError,
                "Internal server error: stored data failed its integrity check (corrupt); \
                 details are in the node's log",
            )
        }
        other => ApiError::internal(other),
    }
}

/// The table must exist and be usable for item operations.
pub async fn active_table(
    ctx: &super::Ctx<'_>,
    name: &str,
) -> Result<std::sync::Arc<TableMeta>, ApiError> {
    ctx.backend.table(name).await.map_err(backend_error)
}

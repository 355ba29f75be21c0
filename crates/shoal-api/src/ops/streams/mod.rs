//! DynamoDB Streams, served on the DynamoDB endpoint under `DynamoDBStreams_20120810.<Op>`
//! (the SDKs sign it for the `dynamodb` service, as they sign DynamoDB's):
//!
//! - `list.rs`: `ListStreams` and `DescribeStream` (a stream's shards, from the data plane's
//!   [`crate::backend::DataPlane::stream_shards`]);
//! - `records.rs`: `GetShardIterator` and `GetRecords` (records from
//!   [`crate::backend::DataPlane::stream_records`]), with the iterators of `iterator.rs`;
//! - `spec.rs`: `StreamSpecification` in CreateTable and UpdateTable and the stream members of a
//!   `TableDescription`.
//!
//! A stream belongs to its table's catalog entry ([`TableMeta::streams`]): a stream ARN is the
//! table's ARN, `/stream/` and the stream's label.

mod iterator;
mod list;
mod records;
pub(crate) mod spec;

use std::sync::Arc;

use shoal_catalog::StreamDef;

pub use list::{describe_stream, list_streams};
pub use records::{get_records, get_shard_iterator};

use super::Ctx;
use super::validate::backend_error;
use crate::backend::{DataError, TableMeta};
use crate::error::{ApiError, ErrorKind, Violations};

/// The stream ARN a `ShardIterator` names, if it is one Shoal issued (authorization checks the
/// operation on that stream).
pub(crate) fn iterator_stream_arn(s: &str) -> Option<String> {
    iterator::ShardIterator::decode(s).map(|it| it.stream_arn)
}

/// `ResourceNotFoundException` for a stream that does not exist.
fn stream_not_found(arn: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceNotFound,
        format!("Requested resource not found: Stream: {arn} not found"),
    )
}

/// `ResourceNotFoundException` for a shard the stream does not have.
pub(crate) fn shard_not_found() -> ApiError {
    ApiError::new(
        ErrorKind::ResourceNotFound,
        "Requested resource not found: Shard does not exist",
    )
}

/// The table and the stream `arn` names.
///
/// # Errors
/// `ResourceNotFoundException` when it is no stream of an existing table of this region and
/// account.
pub(crate) async fn stream_of(
    ctx: &Ctx<'_>,
    arn: &str,
) -> Result<(Arc<TableMeta>, StreamDef), ApiError> {
    let Some(name) = crate::authz::table_of_arn(ctx, arn, true) else {
        return Err(stream_not_found(arn));
    };
    let mut meta = ctx
        .backend
        .table(name)
        .await
        .map_err(|e| read_error(e, arn))?;
    if meta.stream_by_arn(arn).is_none() {
        // This node's copy may not have the stream yet (another node enabled it a moment
        // ago): ask the cluster before saying it does not exist.
        meta = ctx
            .backend
            .table_fresh(name)
            .await
            .map_err(|e| read_error(e, arn))?;
    }
    let stream = meta
        .stream_by_arn(arn)
        .cloned()
        .ok_or_else(|| stream_not_found(arn))?;
    Ok((meta, stream))
}

/// A data-plane failure of a stream read: a table gone meanwhile is the stream's
/// `ResourceNotFoundException`; the rest as for any operation ([`backend_error`]: an unknown
/// shard `ResourceNotFoundException`, trimmed records `TrimmedDataAccessException`).
fn read_error(e: DataError, arn: &str) -> ApiError {
    match e {
        DataError::TableNotFound(_) => stream_not_found(arn),
        other => backend_error(other),
    }
}

/// A `StreamArn` member's model constraints (1 to 1,024 characters; 37 at least) into `v`.
fn check_stream_arn(arn: &str, field: &str, v: &mut Violations) {
    if arn.len() < 37 {
        v.constraint(
            arn,
            field,
            "Member must have length greater than or equal to 37",
        );
    } else if arn.len() > 1024 {
        v.constraint(
            arn,
            field,
            "Member must have length less than or equal to 1024",
        );
    }
}

/// A `ShardId` member's model constraints (28 to 65 characters) into `v`.
fn check_shard_id(id: &str, field: &str, v: &mut Violations) {
    if id.len() < 28 {
        v.constraint(
            id,
            field,
            "Member must have length greater than or equal to 28",
        );
    } else if id.len() > 65 {
        v.constraint(
            id,
            field,
            "Member must have length less than or equal to 65",
        );
    }
}

/// A `Limit` member: at least 1 and at most `max` (model constraints into `v`).
fn check_limit(limit: Option<i64>, max: i64, v: &mut Violations) {
    match limit {
        Some(l) if l < 1 => v.constraint(
            &l.to_string(),
            "limit",
            "Member must have value greater than or equal to 1",
        ),
        Some(l) if l > max => v.constraint(
            &l.to_string(),
            "limit",
            &format!("Member must have value less than or equal to {max}"),
        ),
        _ => {}
    }
}

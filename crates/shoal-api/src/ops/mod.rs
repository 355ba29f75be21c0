//! One handler per operation, grouped by family (`table.rs`, `item.rs`, `tags.rs`, `misc.rs`,
//! `transact/`, `partiql/`, `streams/`), and the exhaustive dispatch from `X-Amz-Target` to
//! them. The endpoint serves two services: DynamoDB (`DynamoDB_20120810.<Op>`) and DynamoDB
//! Streams (`DynamoDBStreams_20120810.<Op>`); each knows only its own operations.

mod batch;
mod capacity;
mod index;
mod item;
mod legacy;
mod misc;
pub(crate) mod partiql;
mod policy;
mod read;
pub(crate) mod streams;
mod table;
mod tags;
pub(crate) mod transact;
mod ttl;
mod unsupported;
pub(crate) mod validate;

use serde_json::Value;

use crate::backend::Backend;
use crate::error::{ApiError, ErrorKind};
use crate::input::Input;
use crate::sigv4::Identity;

/// What a handler gets besides its input: the backend, the verified caller, the address it
/// called from, and the parsed resource-based policies.
pub struct Ctx<'a> {
    pub backend: &'a dyn Backend,
    pub identity: &'a Identity,
    pub peer: std::net::IpAddr,
    pub policies: &'a crate::authz::PolicyCache,
}

/// Every operation of the DynamoDB API model, and whether Shoal implements it yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateTable,
    DescribeTable,
    ListTables,
    DeleteTable,
    UpdateTable,
    PutItem,
    GetItem,
    DeleteItem,
    UpdateItem,
    TagResource,
    UntagResource,
    ListTagsOfResource,
    DescribeEndpoints,
    DescribeLimits,
    Query,
    Scan,
    BatchGetItem,
    BatchWriteItem,
    PutResourcePolicy,
    GetResourcePolicy,
    DeleteResourcePolicy,
    ExecuteStatement,
    BatchExecuteStatement,
    TransactWriteItems,
    TransactGetItems,
    ExecuteTransaction,
    UpdateTimeToLive,
    DescribeTimeToLive,
    // DynamoDB Streams.
    ListStreams,
    DescribeStream,
    GetShardIterator,
    GetRecords,
}

/// The `X-Amz-Target` prefix of DynamoDB's operations.
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";
/// The `X-Amz-Target` prefix of DynamoDB Streams' operations.
pub const STREAMS_TARGET_PREFIX: &str = "DynamoDBStreams_20120810.";

impl Operation {
    /// Splits an `X-Amz-Target` into the operation's name and the operation, when the name is
    /// one of its service's. `None` for a target of neither service.
    pub fn from_target(target: &str) -> Option<(&str, Option<Operation>)> {
        if let Some(name) = target.strip_prefix(TARGET_PREFIX) {
            return Some((name, Operation::parse(name)));
        }
        let name = target.strip_prefix(STREAMS_TARGET_PREFIX)?;
        Some((name, Operation::parse_streams(name)))
    }

    /// Parses a DynamoDB Streams operation name (after `DynamoDBStreams_20120810.`).
    pub fn parse_streams(name: &str) -> Option<Operation> {
        Some(match name {
            "ListStreams" => Operation::ListStreams,
            "DescribeStream" => Operation::DescribeStream,
            "GetShardIterator" => Operation::GetShardIterator,
            "GetRecords" => Operation::GetRecords,
            _ => return None,
        })
    }

    /// An operation of either service by its name (names do not overlap), for metrics labels.
    pub fn by_name(name: &str) -> Option<Operation> {
        Operation::parse(name).or_else(|| Operation::parse_streams(name))
    }

    /// Parses the operation name from `X-Amz-Target` (after `DynamoDB_20120810.`).
    pub fn parse(name: &str) -> Option<Operation> {
        Some(match name {
            "CreateTable" => Operation::CreateTable,
            "DescribeTable" => Operation::DescribeTable,
            "ListTables" => Operation::ListTables,
            "DeleteTable" => Operation::DeleteTable,
            "UpdateTable" => Operation::UpdateTable,
            "PutItem" => Operation::PutItem,
            "GetItem" => Operation::GetItem,
            "DeleteItem" => Operation::DeleteItem,
            "UpdateItem" => Operation::UpdateItem,
            "TagResource" => Operation::TagResource,
            "UntagResource" => Operation::UntagResource,
            "ListTagsOfResource" => Operation::ListTagsOfResource,
            "DescribeEndpoints" => Operation::DescribeEndpoints,
            "DescribeLimits" => Operation::DescribeLimits,
            "Query" => Operation::Query,
            "Scan" => Operation::Scan,
            "BatchGetItem" => Operation::BatchGetItem,
            "BatchWriteItem" => Operation::BatchWriteItem,
            "PutResourcePolicy" => Operation::PutResourcePolicy,
            "GetResourcePolicy" => Operation::GetResourcePolicy,
            "DeleteResourcePolicy" => Operation::DeleteResourcePolicy,
            "ExecuteStatement" => Operation::ExecuteStatement,
            "BatchExecuteStatement" => Operation::BatchExecuteStatement,
            "TransactWriteItems" => Operation::TransactWriteItems,
            "TransactGetItems" => Operation::TransactGetItems,
            "ExecuteTransaction" => Operation::ExecuteTransaction,
            "UpdateTimeToLive" => Operation::UpdateTimeToLive,
            "DescribeTimeToLive" => Operation::DescribeTimeToLive,
            _ => return None,
        })
    }

    /// The operation's name, as in `X-Amz-Target`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateTable => "CreateTable",
            Operation::DescribeTable => "DescribeTable",
            Operation::ListTables => "ListTables",
            Operation::DeleteTable => "DeleteTable",
            Operation::UpdateTable => "UpdateTable",
            Operation::PutItem => "PutItem",
            Operation::GetItem => "GetItem",
            Operation::DeleteItem => "DeleteItem",
            Operation::UpdateItem => "UpdateItem",
            Operation::TagResource => "TagResource",
            Operation::UntagResource => "UntagResource",
            Operation::ListTagsOfResource => "ListTagsOfResource",
            Operation::DescribeEndpoints => "DescribeEndpoints",
            Operation::DescribeLimits => "DescribeLimits",
            Operation::Query => "Query",
            Operation::Scan => "Scan",
            Operation::BatchGetItem => "BatchGetItem",
            Operation::BatchWriteItem => "BatchWriteItem",
            Operation::PutResourcePolicy => "PutResourcePolicy",
            Operation::GetResourcePolicy => "GetResourcePolicy",
            Operation::DeleteResourcePolicy => "DeleteResourcePolicy",
            Operation::ExecuteStatement => "ExecuteStatement",
            Operation::BatchExecuteStatement => "BatchExecuteStatement",
            Operation::TransactWriteItems => "TransactWriteItems",
            Operation::TransactGetItems => "TransactGetItems",
            Operation::ExecuteTransaction => "ExecuteTransaction",
            Operation::UpdateTimeToLive => "UpdateTimeToLive",
            Operation::DescribeTimeToLive => "DescribeTimeToLive",
            Operation::ListStreams => "ListStreams",
            Operation::DescribeStream => "DescribeStream",
            Operation::GetShardIterator => "GetShardIterator",
            Operation::GetRecords => "GetRecords",
        }
    }
}

/// Runs `op` (from [`Operation::from_target`]) on `body`, once the caller's policy and the
/// resource-based policies of the tables it touches allow it ([`crate::authz::check`]).
/// Operations Shoal does not implement (yet) answer `UnknownOperationException`, as DynamoDB
/// does for any operation it does not know.
pub async fn dispatch(
    ctx: &Ctx<'_>,
    op: Option<Operation>,
    body: &Value,
) -> Result<Value, ApiError> {
    let Some(operation) = op else {
        return Err(ApiError::new(ErrorKind::UnknownOperation, ""));
    };
    let input = Input::new(body)?;
    input.check_member_types()?;
    crate::authz::check(ctx, operation, body).await?;
    match operation {
        Operation::CreateTable => table::create_table(ctx, &input).await,
        Operation::DescribeTable => table::describe_table(ctx, &input).await,
        Operation::ListTables => table::list_tables(ctx, &input).await,
        Operation::DeleteTable => table::delete_table(ctx, &input).await,
        Operation::UpdateTable => table::update_table(ctx, &input).await,
        Operation::PutItem => item::put_item(ctx, &input).await,
        Operation::GetItem => item::get_item(ctx, &input).await,
        Operation::DeleteItem => item::delete_item(ctx, &input).await,
        Operation::UpdateItem => item::update_item(ctx, &input).await,
        Operation::TagResource => tags::tag_resource(ctx, &input).await,
        Operation::UntagResource => tags::untag_resource(ctx, &input).await,
        Operation::ListTagsOfResource => tags::list_tags_of_resource(ctx, &input).await,
        Operation::DescribeEndpoints => misc::describe_endpoints(ctx),
        Operation::DescribeLimits => Ok(misc::describe_limits()),
        Operation::Query => read::query(ctx, &input).await,
        Operation::Scan => read::scan(ctx, &input).await,
        Operation::BatchGetItem => batch::batch_get_item(ctx, &input).await,
        Operation::BatchWriteItem => batch::batch_write_item(ctx, &input).await,
        Operation::PutResourcePolicy => policy::put_resource_policy(ctx, &input).await,
        Operation::GetResourcePolicy => policy::get_resource_policy(ctx, &input).await,
        Operation::DeleteResourcePolicy => policy::delete_resource_policy(ctx, &input).await,
        Operation::ExecuteStatement => partiql::execute_statement(ctx, &input).await,
        Operation::BatchExecuteStatement => partiql::batch_execute_statement(ctx, &input).await,
        Operation::TransactWriteItems => transact::transact_write_items(ctx, &input).await,
        Operation::TransactGetItems => transact::transact_get_items(ctx, &input).await,
        Operation::ExecuteTransaction => partiql::execute_transaction(ctx, &input).await,
        Operation::UpdateTimeToLive => ttl::update_time_to_live(ctx, &input).await,
        Operation::DescribeTimeToLive => ttl::describe_time_to_live(ctx, &input).await,
        Operation::ListStreams => streams::list_streams(ctx, &input).await,
        Operation::DescribeStream => streams::describe_stream(ctx, &input).await,
        Operation::GetShardIterator => streams::get_shard_iterator(ctx, &input).await,
        Operation::GetRecords => streams::get_records(ctx, &input).await,
    }
}

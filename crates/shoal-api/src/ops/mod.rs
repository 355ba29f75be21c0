//! One handler per operation, grouped by family (`table.rs`, `item.rs`, `tags.rs`, `misc.rs`),
//! and the exhaustive dispatch from `X-Amz-Target` to them.

mod batch;
mod capacity;
mod index;
mod item;
mod legacy;
mod misc;
pub(crate) mod partiql;
mod policy;
mod read;
mod table;
mod tags;
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
}

impl Operation {
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
        }
    }
}

/// Runs the operation named `op` on `body`, once the caller's policy and the resource-based
/// policies of the tables it touches allow it ([`crate::authz::check`]). Operations Shoal does
/// not implement (yet) answer `UnknownOperationException`, as DynamoDB does for any operation it
/// does not know.
pub async fn dispatch(ctx: &Ctx<'_>, op: &str, body: &Value) -> Result<Value, ApiError> {
    let Some(operation) = Operation::parse(op) else {
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
    }
}

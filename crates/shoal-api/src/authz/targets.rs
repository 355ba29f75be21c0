//! The (action, resource) pairs a request is checked for, as DynamoDB names them: the table's
//! ARN for table and item operations, the index's ARN for a `Query` or `Scan` of an index, every
//! table of a batch, `.../table/*` for `ListTables`, `*` for `DescribeEndpoints` and
//! `DescribeLimits`, the given `ResourceArn` for tag and resource-policy operations.
//! `CreateTable` with a `ResourcePolicy` also needs `dynamodb:PutResourcePolicy`. The DynamoDB
//! Streams operations are checked on the stream's ARN (`GetRecords` on the one its iterator
//! names); `ListStreams` on `.../table/<TableName>/stream/*`, or `.../table/*/stream/*` without
//! a `TableName`. A table's resource-based policy does not govern its streams: a stream's own
//! does (and governs the resource-policy operations on the stream's ARN). A PartiQL
//! statement (each one of a batch) is `dynamodb:PartiQLSelect`, `PartiQLInsert`,
//! `PartiQLUpdate` or `PartiQLDelete` on its table's ARN (its index's for a `SELECT` of an index),
//! each statement of an `ExecuteTransaction` too.
//! Each action of a transaction is checked as the single-item operation it performs
//! (`dynamodb:PutItem`, `UpdateItem`, `DeleteItem`, `GetItem`; `dynamodb:ConditionCheckItem` for
//! a `ConditionCheck`) on its own table.

use serde_json::Value;

use super::Target;
use super::context::Part;
use crate::ops::transact::parse::ActionKind;
use crate::ops::{Ctx, Operation};

/// Longest table name or ARN checked: anything longer is refused by the operation's own
/// validation (names are at most 255 characters, ARNs 1,283), so it needs no check here and
/// never reaches a denial message.
const MAX_NAME: usize = 1283;

/// The targets of `op` with `body`. Names the request does not give (it will be refused as
/// invalid) yield no target.
pub(crate) async fn of(ctx: &Ctx<'_>, op: Operation, body: &Value) -> Vec<Target> {
    let region = ctx.backend.region();
    let account = ctx.backend.account_id();
    let action = format!("dynamodb:{}", op.name());
    let mut out = Vec::new();
    match op {
        Operation::ListTables => out.push(Target {
            action,
            resource: shoal_policy::arn::all_tables(region, account),
            table: None,
            stream: None,
            part: Part::Whole,
        }),
        Operation::DescribeEndpoints | Operation::DescribeLimits => out.push(Target {
            action,
            resource: "*".into(),
            table: None,
            stream: None,
            part: Part::Whole,
        }),
        Operation::CreateTable => {
            if let Some(resource) = table_param(ctx, body.get("TableName")).map(|(_, arn)| arn) {
                if body.get("ResourcePolicy").is_some_and(|v| !v.is_null()) {
                    out.push(Target {
                        action: "dynamodb:PutResourcePolicy".into(),
                        resource: resource.clone(),
                        table: None,
                        stream: None,
                        part: Part::Whole,
                    });
                }
                out.push(Target {
                    action,
                    resource,
                    table: None,
                    stream: None,
                    part: Part::Whole,
                });
            }
        }
        Operation::DescribeTable
        | Operation::DeleteTable
        | Operation::UpdateTable
        | Operation::UpdateTimeToLive
        | Operation::DescribeTimeToLive => {
            if let Some((name, resource)) = table_param(ctx, body.get("TableName")) {
                out.push(Target {
                    action,
                    resource,
                    table: lookup(ctx, name.as_deref()).await,
                    stream: None,
                    part: Part::Whole,
                });
            }
        }
        Operation::PutItem
        | Operation::GetItem
        | Operation::DeleteItem
        | Operation::UpdateItem
        | Operation::Query
        | Operation::Scan => {
            if let Some((name, mut resource)) = table_param(ctx, body.get("TableName")) {
                let index = body.get("IndexName").and_then(Value::as_str);
                if let Some(index) =
                    index.filter(|_| matches!(op, Operation::Query | Operation::Scan))
                {
                    resource = format!("{resource}/index/{index}");
                }
                out.push(Target {
                    action,
                    resource,
                    table: lookup(ctx, name.as_deref()).await,
                    stream: None,
                    part: Part::Request,
                });
            }
        }
        Operation::BatchGetItem | Operation::BatchWriteItem => {
            if let Some(items) = body.get("RequestItems").and_then(Value::as_object) {
                for key in items.keys() {
                    let Some((name, resource)) = table_param_str(ctx, key) else {
                        continue;
                    };
                    out.push(Target {
                        action: action.clone(),
                        resource,
                        table: lookup(ctx, name.as_deref()).await,
                        stream: None,
                        part: Part::Batch(key.clone()),
                    });
                }
            }
        }
        Operation::TransactWriteItems | Operation::TransactGetItems => {
            let list = body.get("TransactItems").and_then(Value::as_array);
            for (index, entry) in list.into_iter().flatten().enumerate() {
                let (member, action) = if op == Operation::TransactGetItems {
                    ("Get", "dynamodb:GetItem")
                } else {
                    match ActionKind::given(entry).as_slice() {
                        [kind] => (kind.member(), kind.iam_action()),
                        // Refused by the operation before anything is read or written.
                        _ => continue,
                    }
                };
                let Some((name, resource)) =
                    table_param(ctx, entry.get(member).and_then(|a| a.get("TableName")))
                else {
                    continue;
                };
                out.push(Target {
                    action: action.into(),
                    resource,
                    table: lookup(ctx, name.as_deref()).await,
                    stream: None,
                    part: Part::Transact { index, member },
                });
            }
        }
        Operation::ExecuteStatement => {
            out.extend(statement_target(ctx, body, None).await);
        }
        Operation::BatchExecuteStatement | Operation::ExecuteTransaction => {
            let list = if op == Operation::ExecuteTransaction {
                "TransactStatements"
            } else {
                "Statements"
            };
            let n = body.get(list).and_then(Value::as_array).map_or(0, Vec::len);
            for i in 0..n {
                out.extend(statement_target(ctx, body, Some((list, i))).await);
            }
        }
        Operation::ListStreams => {
            let table = body
                .get("TableName")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty() && t.len() <= MAX_NAME)
                .map_or("*", crate::ops::validate::name_of);
            out.push(Target {
                action,
                resource: format!(
                    "{}/stream/*",
                    shoal_policy::arn::table(region, account, table)
                ),
                table: None,
                stream: None,
                part: Part::Whole,
            });
        }
        Operation::DescribeStream | Operation::GetShardIterator | Operation::GetRecords => {
            let arn = if op == Operation::GetRecords {
                body.get("ShardIterator")
                    .and_then(Value::as_str)
                    .and_then(crate::ops::streams::iterator_stream_arn)
            } else {
                body.get("StreamArn")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            if let Some(arn) = arn.filter(|a| !a.is_empty() && a.len() <= MAX_NAME) {
                // The stream's own resource-based policy applies (not its table's).
                let (table, stream) = match crate::ops::streams::stream_of(ctx, &arn).await {
                    Ok((meta, stream)) => (Some(meta), Some(stream.id)),
                    Err(_) => (None, None),
                };
                out.push(Target {
                    action,
                    resource: arn,
                    table,
                    stream,
                    part: Part::Whole,
                });
            }
        }
        Operation::TagResource
        | Operation::UntagResource
        | Operation::ListTagsOfResource
        | Operation::PutResourcePolicy
        | Operation::GetResourcePolicy
        | Operation::DeleteResourcePolicy => {
            if let Some(arn) = body
                .get("ResourceArn")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty() && a.len() <= MAX_NAME)
            {
                let (table, stream) = if arn.contains("/stream/") {
                    match crate::ops::streams::stream_of(ctx, arn).await {
                        Ok((meta, stream)) => (Some(meta), Some(stream.id)),
                        Err(_) => (None, None),
                    }
                } else {
                    (lookup(ctx, table_of_arn(ctx, arn, true)).await, None)
                };
                out.push(Target {
                    action,
                    resource: arn.to_string(),
                    table,
                    stream,
                    part: Part::Whole,
                });
            }
        }
    }
    out
}

/// The target of one PartiQL statement: `ExecuteStatement`'s (`entry` `None`) or entry `i` of
/// the list `list` (`BatchExecuteStatement`'s `Statements`, `ExecuteTransaction`'s
/// `TransactStatements`). The action is `dynamodb:PartiQLSelect`, `PartiQLInsert`,
/// `PartiQLUpdate` or `PartiQLDelete` (an `EXISTS` or `NOT EXISTS` counts as a select), the
/// resource the table's ARN, or the index's for a `SELECT` of `"table"."index"`. A statement
/// that does not parse has no target: the operation refuses it before reading anything.
async fn statement_target(
    ctx: &Ctx<'_>,
    body: &Value,
    entry: Option<(&str, usize)>,
) -> Option<Target> {
    let src = match entry {
        None => body,
        Some((list, i)) => body.get(list)?.get(i)?,
    };
    let text = src.get("Statement")?.as_str()?;
    let stmt = shoal_partiql::parse(text).ok()?;
    let action = match &stmt {
        shoal_partiql::Statement::Select(_)
        | shoal_partiql::Statement::Exists(_)
        | shoal_partiql::Statement::NotExists(_) => "dynamodb:PartiQLSelect",
        shoal_partiql::Statement::Insert(_) => "dynamodb:PartiQLInsert",
        shoal_partiql::Statement::Update(_) => "dynamodb:PartiQLUpdate",
        shoal_partiql::Statement::Delete(_) => "dynamodb:PartiQLDelete",
    };
    let (name, mut resource) = table_param_str(ctx, stmt.table())?;
    if let Some(ix) = stmt.index() {
        resource = format!("{resource}/index/{ix}");
    }
    let table = lookup(ctx, name.as_deref()).await;
    let keys = table
        .as_deref()
        .map(|meta| super::context::statement_keys(&stmt, src, meta));
    Some(Target {
        action: action.into(),
        resource,
        table,
        stream: None,
        part: Part::Statement(keys.unwrap_or_default()),
    })
}

/// A `TableName` member: (the table's name when it is one of this account's, its ARN).
fn table_param(ctx: &Ctx<'_>, v: Option<&Value>) -> Option<(Option<String>, String)> {
    table_param_str(ctx, v?.as_str()?)
}

/// A table named as the operations read it ([`crate::ops::validate::name_of`]: an ARN of any
/// region or account names this node's table of that name), so the check is on the table the
/// operation will use, under its canonical ARN.
fn table_param_str(ctx: &Ctx<'_>, given: &str) -> Option<(Option<String>, String)> {
    if given.is_empty() || given.len() > MAX_NAME {
        return None;
    }
    let name = crate::ops::validate::name_of(given);
    Some((
        Some(name.to_string()),
        shoal_policy::arn::table(ctx.backend.region(), ctx.backend.account_id(), name),
    ))
}

/// The table name in `arn` when it is a table ARN of this region and account (with
/// `sub_resources`, also an index or stream ARN under the table).
pub(crate) fn table_of_arn<'a>(
    ctx: &Ctx<'_>,
    arn: &'a str,
    sub_resources: bool,
) -> Option<&'a str> {
    let prefix = format!(
        "arn:aws:dynamodb:{}:{}:table/",
        ctx.backend.region(),
        ctx.backend.account_id()
    );
    let rest = arn.strip_prefix(&prefix)?;
    let name = match rest.split_once('/') {
        Some((name, _)) if sub_resources => name,
        Some(_) => return None,
        None => rest,
    };
    (!name.is_empty()).then_some(name)
}

async fn lookup(
    ctx: &Ctx<'_>,
    name: Option<&str>,
) -> Option<std::sync::Arc<crate::backend::TableMeta>> {
    ctx.backend.table(name?).await.ok()
}

//! PartiQL: `ExecuteStatement`, `BatchExecuteStatement` and `ExecuteTransaction`, on
//! shoal-partiql's parser.
//!
//! A statement is parsed ([`shoal_partiql::parse`]), its `?` parameters counted and bound, and
//! run as the item operation it stands for: `SELECT` as a Query or Scan ([`select`]), or, in a
//! batch, a GetItem; `INSERT`, `UPDATE`, `DELETE` as conditional writes ([`write`]). Errors are
//! those of the item operations, plus `DuplicateItemException` for an `INSERT` of an existing
//! key. `ExecuteTransaction` ([`transaction`]) runs its statements as one TransactGetItems or
//! TransactWriteItems; `EXISTS` and `NOT EXISTS` condition checks are valid only there.

mod keys;
mod select;
mod token;
mod transaction;
mod write;

use futures_util::future::join_all;
use serde_json::{Map, Value, json};
use shoal_partiql::{BindError, Statement};
use shoal_types::AttributeValue;
use shoal_types::json::item_to_json;

use super::Ctx;
use super::capacity::{self, Level, WriteCharge};
use super::validate::enum_value;
use crate::error::{ApiError, ErrorKind, Violations};
use crate::input::{Input, nested, opt_array, opt_str};

pub(crate) use keys::partition_values;
pub use transaction::execute_transaction;
pub(crate) use write::DUPLICATE_ITEM;

/// Most statements in one `BatchExecuteStatement` (the model's constraint).
pub const MAX_BATCH_STATEMENTS: usize = 25;

/// The message of a batch mixing reads and writes.
const MIXED_BATCH: &str = "A batch must contain either only read (SELECT) statements or only write (INSERT, UPDATE, DELETE) statements";

/// The message of an `EXISTS` outside a transaction.
const EXISTS_OUTSIDE_TRANSACTION: &str =
    "EXISTS is valid only in a condition check of ExecuteTransaction";

/// A parameter-binding or condition-conversion error: a `ValidationException`.
fn bind_error(e: BindError) -> ApiError {
    ApiError::validation(e.to_string())
}

/// A statement's `Parameters` (`field` names the member in messages).
fn parameters(
    raw: Option<&Value>,
    field: &str,
    v: &mut Violations,
) -> Result<Vec<AttributeValue>, ApiError> {
    let Some(list) = opt_array(raw)? else {
        return Ok(Vec::new());
    };
    if list.is_empty() {
        v.constraint(
            "[]",
            field,
            "Member must have length greater than or equal to 1",
        );
    }
    Ok(list
        .iter()
        .map(shoal_types::json::attribute_value_from_json)
        .collect::<Result<_, _>>()?)
}

/// The members of one statement: `ExecuteStatement`'s, or one `BatchStatementRequest`.
struct StatementInput<'a> {
    text: &'a str,
    raw_parameters: Option<&'a Value>,
    params: Vec<AttributeValue>,
    consistent: bool,
    all_old_on_failure: bool,
}

/// Reads the members of a statement; `prefix` is the path of its fields in messages (empty
/// for `ExecuteStatement`, `statements.1.member.` in a batch).
fn statement_input<'a>(
    input: &Input<'a>,
    prefix: &str,
    v: &mut Violations,
) -> Result<StatementInput<'a>, ApiError> {
    let text = opt_str(input.raw("Statement"))?;
    match text {
        None => v.missing(&format!("{prefix}statement")),
        Some("") => v.constraint(
            "",
            &format!("{prefix}statement"),
            "Member must have length greater than or equal to 1",
        ),
        Some(_) => {}
    }
    let raw_parameters = input.raw("Parameters");
    let params = parameters(raw_parameters, &format!("{prefix}parameters"), v)?;
    let rvoccf = enum_value(
        opt_str(input.raw("ReturnValuesOnConditionCheckFailure"))?,
        &format!("{prefix}returnValuesOnConditionCheckFailure"),
        &["ALL_OLD", "NONE"],
        v,
    );
    let consistent = match input.raw("ConsistentRead") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(crate::input::type_mismatch(other, "a Boolean")),
    };
    Ok(StatementInput {
        text: text.unwrap_or(""),
        raw_parameters,
        params,
        consistent,
        all_old_on_failure: rvoccf == Some("ALL_OLD"),
    })
}

/// Parses a statement and checks its parameter count.
fn prepare(s: &StatementInput<'_>) -> Result<Statement, ApiError> {
    let stmt = shoal_partiql::parse(s.text).map_err(|e| ApiError::validation(e.to_string()))?;
    stmt.check_parameters(s.params.len()).map_err(bind_error)?;
    Ok(stmt)
}

/// Runs a write statement.
async fn run_write(
    ctx: &Ctx<'_>,
    stmt: &Statement,
    s: &StatementInput<'_>,
) -> Result<write::Written, ApiError> {
    match stmt {
        Statement::Insert(i) => write::insert(ctx, i, &s.params).await,
        Statement::Update(u) => write::update(ctx, u, &s.params, s.all_old_on_failure).await,
        Statement::Delete(d) => write::delete(ctx, d, &s.params, s.all_old_on_failure).await,
        Statement::Exists(_) | Statement::NotExists(_) => {
            Err(ApiError::validation(EXISTS_OUTSIDE_TRANSACTION))
        }
        Statement::Select(_) => Err(ApiError::internal("run_write called with a SELECT")),
    }
}

/// `ExecuteStatement`.
pub async fn execute_statement(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let s = statement_input(input, "", &mut v)?;
    let limit = input.i64("Limit")?;
    if let Some(l) = limit
        && l < 1
    {
        v.constraint(
            &l.to_string(),
            "limit",
            "Member must have value greater than or equal to 1",
        );
    }
    let next_token = input.str("NextToken")?;
    match next_token {
        Some("") => v.constraint(
            "",
            "nextToken",
            "Member must have length greater than or equal to 1",
        ),
        Some(t) if t.len() > 32768 => v.constraint(
            t,
            "nextToken",
            "Member must have length less than or equal to 32768",
        ),
        _ => {}
    }
    let level = Level::parse(input.str("ReturnConsumedCapacity")?, &mut v);
    v.into_result()?;
    let stmt = prepare(&s)?;
    let mut out = Map::new();
    match &stmt {
        Statement::Select(sel) => {
            let seal = token::seal(s.text, s.raw_parameters);
            let start = next_token.map(|t| token::decode(t, &seal)).transpose()?;
            let page = select::select(
                ctx,
                sel,
                &s.params,
                select::ReadOptions {
                    consistent: s.consistent,
                    limit: limit.and_then(|l| usize::try_from(l).ok()),
                    start,
                },
            )
            .await?;
            out.insert(
                "Items".into(),
                page.items
                    .iter()
                    .map(item_to_json)
                    .collect::<Vec<_>>()
                    .into(),
            );
            if let Some(last) = &page.last_key {
                out.insert("NextToken".into(), token::encode(last, &seal).into());
                out.insert("LastEvaluatedKey".into(), item_to_json(last));
            }
            let entry = match &page.index {
                None => capacity::entry(level, &page.table.name, page.units),
                Some((name, global)) => capacity::index_read_entry(
                    level,
                    &page.table.name,
                    0.0,
                    name,
                    *global,
                    page.units,
                ),
            };
            if let Some(e) = entry {
                out.insert("ConsumedCapacity".into(), e);
            }
        }
        _ => {
            let w = run_write(ctx, &stmt, &s).await?;
            let items: Vec<Value> = w.item.iter().map(item_to_json).collect();
            out.insert("Items".into(), items.into());
            crate::metrics::charge_write(&w.table.name, w.table_units);
            let mut charge = WriteCharge::default();
            w.charge(&mut charge);
            if let Some(e) = charge.entry(level, &w.table.name) {
                out.insert("ConsumedCapacity".into(), e);
            }
        }
    }
    Ok(Value::Object(out))
}

/// The `BatchStatementError` code of an error.
fn error_code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ConditionalCheckFailed => "ConditionalCheckFailed",
        ErrorKind::DuplicateItem => "DuplicateItem",
        ErrorKind::ItemCollectionSizeLimitExceeded => "ItemCollectionSizeLimitExceeded",
        ErrorKind::ProvisionedThroughputExceeded => "ProvisionedThroughputExceeded",
        ErrorKind::Throttling => "ThrottlingError",
        ErrorKind::ResourceNotFound => "ResourceNotFound",
        ErrorKind::AccessDenied => "AccessDenied",
        ErrorKind::Validation | ErrorKind::Serialization => "ValidationError",
        _ => "InternalServerError",
    }
}

/// What one statement of a batch did.
enum Done {
    Read {
        table: String,
        item: Option<shoal_types::Item>,
        units: f64,
    },
    Write(write::Written),
}

/// The capacity a batch used on one table.
#[derive(Default)]
struct TableCharge {
    read: f64,
    write_table: f64,
    write: WriteCharge,
}

/// The charge of `table` in `charges`, added if new (tables in order of first use).
fn charge_of<'c>(charges: &'c mut Vec<(String, TableCharge)>, table: &str) -> &'c mut TableCharge {
    let i = match charges.iter().position(|(t, _)| t == table) {
        Some(i) => i,
        None => {
            charges.push((table.to_string(), TableCharge::default()));
            charges.len() - 1
        }
    };
    &mut charges[i].1
}

/// `BatchExecuteStatement`.
pub async fn batch_execute_statement(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let list = input.array("Statements")?;
    match list {
        None => v.missing("statements"),
        Some(l) if l.is_empty() => v.constraint(
            "[]",
            "statements",
            "Member must have length greater than or equal to 1",
        ),
        Some(l) if l.len() > MAX_BATCH_STATEMENTS => v.constraint(
            "[...]",
            "statements",
            &format!("Member must have length less than or equal to {MAX_BATCH_STATEMENTS}"),
        ),
        _ => {}
    }
    let level = Level::parse(input.str("ReturnConsumedCapacity")?, &mut v);
    let mut inputs = Vec::new();
    for (i, entry) in list.into_iter().flatten().enumerate() {
        let entry = nested(entry)?;
        inputs.push(statement_input(
            &entry,
            &format!("statements.{}.member.", i + 1),
            &mut v,
        )?);
    }
    v.into_result()?;
    let prepared: Vec<Result<Statement, ApiError>> = inputs.iter().map(prepare).collect();
    let reads = prepared.iter().flatten().filter(|s| s.is_read()).count();
    let parsed = prepared.iter().flatten().count();
    if reads > 0 && reads < parsed {
        return Err(ApiError::validation(MIXED_BATCH));
    }
    let runs = prepared.iter().zip(&inputs).map(|(stmt, s)| async move {
        let stmt = stmt.as_ref().map_err(Clone::clone)?;
        match stmt {
            Statement::Select(sel) => {
                let (table, item, units) = select::get(ctx, sel, &s.params, s.consistent).await?;
                Ok(Done::Read {
                    table: table.name.clone(),
                    item,
                    units,
                })
            }
            _ => run_write(ctx, stmt, s).await.map(Done::Write),
        }
    });
    let results = join_all(runs).await;

    let mut responses = Vec::with_capacity(results.len());
    let mut charges: Vec<(String, TableCharge)> = Vec::new();
    for (result, stmt) in results.into_iter().zip(&prepared) {
        let mut r = Map::new();
        match result {
            Ok(Done::Read { table, item, units }) => {
                charge_of(&mut charges, &table).read += units;
                r.insert("TableName".into(), table.into());
                if let Some(item) = item {
                    r.insert("Item".into(), item_to_json(&item));
                }
            }
            Ok(Done::Write(w)) => {
                let c = charge_of(&mut charges, &w.table.name);
                c.write_table += w.table_units;
                w.charge(&mut c.write);
                r.insert("TableName".into(), w.table.name.clone().into());
                if let Some(item) = &w.item {
                    r.insert("Item".into(), item_to_json(item));
                }
            }
            Err(e) => {
                if let Ok(stmt) = stmt {
                    r.insert("TableName".into(), stmt.table().into());
                }
                let mut err = Map::new();
                err.insert("Code".into(), error_code(e.kind).into());
                err.insert("Message".into(), e.message.clone().into());
                if let Some(item) = e.extra.as_ref().and_then(|x| x.get("Item")) {
                    err.insert("Item".into(), item.clone());
                }
                r.insert("Error".into(), Value::Object(err));
            }
        }
        responses.push(Value::Object(r));
    }
    let mut out = Map::new();
    out.insert("Responses".into(), responses.into());
    let mut consumed = Vec::new();
    for (table, c) in &charges {
        let entry = if reads > 0 {
            capacity::entry(level, table, c.read)
        } else {
            crate::metrics::charge_write(table, c.write_table);
            c.write.entry(level, table)
        };
        consumed.extend(entry);
    }
    if level != Level::None {
        out.insert("ConsumedCapacity".into(), json!(consumed));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_the_batch_statement_error_codes() {
        assert_eq!(
            error_code(ErrorKind::ConditionalCheckFailed),
            "ConditionalCheckFailed"
        );
        assert_eq!(error_code(ErrorKind::DuplicateItem), "DuplicateItem");
        assert_eq!(error_code(ErrorKind::Validation), "ValidationError");
        assert_eq!(error_code(ErrorKind::ResourceNotFound), "ResourceNotFound");
        assert_eq!(
            error_code(ErrorKind::ProvisionedThroughputExceeded),
            "ProvisionedThroughputExceeded"
        );
        assert_eq!(
            error_code(ErrorKind::InternalServerError),
            "InternalServerError"
        );
    }
}

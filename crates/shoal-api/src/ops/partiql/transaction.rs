//! `ExecuteTransaction`: up to 100 PartiQL statements run as one transaction, on the same
//! machinery as TransactWriteItems and TransactGetItems.
//!
//! A transaction is all reads or all writes (a `ValidationException` otherwise):
//!
//! - reads: each `SELECT` names one item of a table by its full primary key with `=`; they run
//!   as one TransactGetItems ([`shoal_catalog::DataPlane::transact_get`]). `Responses` holds one
//!   entry per statement, in order: `{"Item": ...}` (projected; `{}` when no projected attribute
//!   exists) when the item exists and the whole `WHERE` clause holds for it, `{}` otherwise.
//! - writes: `INSERT`, `UPDATE`, `DELETE` (the actions and conditions `ExecuteStatement` gives
//!   them, see [`super::write`]), `EXISTS(SELECT ... WHERE <full key> [AND ...])` (a condition
//!   check: the item exists and the rest of the `WHERE` clause holds) and `NOT EXISTS(...)` (the
//!   opposite check) run as one TransactWriteItems
//!   ([`shoal_catalog::DataPlane::transact_write`]), with its `ClientRequestToken` idempotency.
//!   A failed `INSERT` (its key exists) is a `DuplicateItem` cancellation reason.
//!
//! Every statement is parsed and checked (table, key, item, one statement per item, 4 MB)
//! before anything is read or written. Capacity is TransactWriteItems' and TransactGetItems':
//! twice the units of the single-item operations.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use shoal_catalog::{TxGet, TxOutcome, TxWrite};
use shoal_expr::{Condition, DocPath};
use shoal_partiql::{Select, Statement};
use shoal_storage::TxOp;
use shoal_types::json::item_to_json;
use shoal_types::size::item_size;

use super::keys::{MANDATORY_KEY, condition_of, full_key};
use super::{StatementInput, bind_error, prepare, select, statement_input, write};
use crate::error::{ApiError, Violations};
use crate::input::{Input, nested};
use crate::ops::Ctx;
use crate::ops::capacity::{self, Level};
use crate::ops::transact::errors::{self, Shown};
use crate::ops::transact::parse::ActionKind;
use crate::ops::transact::write::{MAX_TRANSACTION_BYTES, Sent, already_committed, charge};
use crate::ops::validate::{active_table, backend_error};

/// Most statements in one `ExecuteTransaction` (the model's constraint on `TransactStatements`).
pub const MAX_TRANSACTION_STATEMENTS: usize = 100;

/// The message of a transaction mixing reads and writes.
pub(super) const MIXED_TRANSACTION: &str = "A transaction must contain either only read (SELECT) statements or only write (INSERT, UPDATE, DELETE) and EXISTS statements";

/// The message of a `SELECT` or `EXISTS` of an index in a transaction.
pub(super) const TRANSACTION_INDEX: &str =
    "A statement in ExecuteTransaction must read a table by its full primary key, not an index";

/// The message of a `RETURNING` clause in a transaction, which returns nothing for writes.
pub(super) const TRANSACTION_RETURNING: &str = "RETURNING is not supported in ExecuteTransaction";

/// The message of two statements on one item (TransactWriteItems').
const DUPLICATE: &str = "Transaction request cannot include multiple operations on one item";

/// `ExecuteTransaction`.
pub async fn execute_transaction(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let list = input.array("TransactStatements")?;
    match list {
        None => v.missing("transactStatements"),
        Some(l) if l.is_empty() => v.constraint(
            "[]",
            "transactStatements",
            "Member must have length greater than or equal to 1",
        ),
        Some(l) if l.len() > MAX_TRANSACTION_STATEMENTS => v.constraint(
            "[...]",
            "transactStatements",
            &format!("Member must have length less than or equal to {MAX_TRANSACTION_STATEMENTS}"),
        ),
        _ => {}
    }
    let token = crate::ops::transact::parse::client_token(input, &mut v)?;
    let level = Level::parse(input.str("ReturnConsumedCapacity")?, &mut v);
    let mut inputs = Vec::new();
    for (i, entry) in list.into_iter().flatten().enumerate() {
        let entry = nested(entry)?;
        inputs.push(statement_input(
            &entry,
            &format!("transactStatements.{}.member.", i + 1),
            &mut v,
        )?);
    }
    v.into_result()?;
    let stmts = inputs
        .iter()
        .map(prepare)
        .collect::<Result<Vec<Statement>, ApiError>>()?;
    let reads = stmts.iter().filter(|s| s.is_read()).count();
    if reads == stmts.len() {
        read(ctx, &stmts, &inputs, level).await
    } else if reads == 0 {
        let token = token.map(|t| {
            crate::ops::transact::token::tx_token(&ctx.identity.access_key_id, t, input.members())
        });
        write(ctx, &stmts, &inputs, token, level).await
    } else {
        Err(ApiError::validation(MIXED_TRANSACTION))
    }
}

/// The full primary key and `WHERE` clause of a `SELECT` or `EXISTS` in a transaction.
fn keyed_select<'s>(
    sel: &'s Select,
    table: &crate::backend::TableMeta,
    params: &[shoal_types::AttributeValue],
) -> Result<(super::keys::KeyedWhere<'s>, &'s shoal_partiql::Expr), ApiError> {
    if sel.index.is_some() {
        return Err(ApiError::validation(TRANSACTION_INDEX));
    }
    let where_ = sel
        .where_clause
        .as_ref()
        .ok_or_else(|| ApiError::validation(MANDATORY_KEY))?;
    Ok((full_key(&table.key_schema, where_, params)?, where_))
}

/// A read transaction: every statement a `SELECT` of one item.
async fn read(
    ctx: &Ctx<'_>,
    stmts: &[Statement],
    inputs: &[StatementInput<'_>],
    level: Level,
) -> Result<Value, ApiError> {
    let mut gets = Vec::with_capacity(stmts.len());
    // What each answer needs: the statement, and the whole `WHERE` clause as a filter.
    let mut reads = Vec::with_capacity(stmts.len());
    let mut seen = HashSet::with_capacity(stmts.len());
    for (stmt, s) in stmts.iter().zip(inputs) {
        let Statement::Select(sel) = stmt else {
            return Err(ApiError::internal("a read transaction with a write"));
        };
        let table = active_table(ctx, &sel.table).await?;
        let (keyed, where_) = keyed_select(sel, &table, &s.params)?;
        let filter = where_.to_condition(&s.params).map_err(bind_error)?;
        if !seen.insert((table.name.clone(), table.key_schema.storage_key(&keyed.key))) {
            return Err(ApiError::validation(DUPLICATE));
        }
        reads.push((sel, filter, table.name.clone()));
        gets.push(TxGet {
            table,
            key: keyed.key,
        });
    }
    let outcome = ctx
        .backend
        .transact_get(gets)
        .await
        .map_err(backend_error)?;
    let items = match outcome {
        TxOutcome::Committed(items) => items,
        TxOutcome::Canceled(reasons) => return Err(errors::canceled(reasons, |_| false)),
        TxOutcome::AlreadyCommitted | TxOutcome::TokenMismatch | TxOutcome::InProgress => {
            return Err(ApiError::internal("a read transaction answered as a write"));
        }
    };
    if items.len() != reads.len() {
        return Err(ApiError::internal(format!(
            "a read transaction of {} gets returned {} items",
            reads.len(),
            items.len()
        )));
    }
    let mut responses = Vec::with_capacity(items.len());
    // (table, units) in the order the tables first appear.
    let mut units: Vec<(String, f64)> = Vec::new();
    for ((sel, filter, table), item) in reads.into_iter().zip(items) {
        // Prepare and commit: twice a consistent read's units, as TransactGetItems.
        let read = 2.0 * capacity::read_units(item.as_ref().map(item_size).unwrap_or(0), true);
        match units.iter_mut().find(|(n, _)| *n == table) {
            Some(slot) => slot.1 += read,
            None => units.push((table, read)),
        }
        responses.push(
            match item
                .filter(|i| filter.evaluate(i))
                .map(|i| select::project(i, &sel.projection))
            {
                Some(item) => json!({ "Item": item_to_json(&item) }),
                None => json!({}),
            },
        );
    }
    let mut out = Map::new();
    out.insert("Responses".into(), responses.into());
    let consumed: Vec<Value> = units
        .iter()
        .filter_map(|(table, u)| capacity::entry(level, table, *u))
        .collect();
    if level != Level::None {
        out.insert("ConsumedCapacity".into(), consumed.into());
    }
    Ok(Value::Object(out))
}

/// A condition check: `EXISTS(SELECT ...)` holds when the item exists and the rest of the
/// `WHERE` clause holds for it; `NOT EXISTS(...)` when it does not.
async fn plan_check(
    ctx: &Ctx<'_>,
    sel: &Select,
    params: &[shoal_types::AttributeValue],
    negated: bool,
) -> Result<write::Planned, ApiError> {
    let table = active_table(ctx, &sel.table).await?;
    let (keyed, _) = keyed_select(sel, &table, params)?;
    let exists = Condition::AttributeExists(DocPath::attr(&table.key_schema.hash.name));
    let mut condition = match condition_of(&keyed.rest, params)? {
        Some(rest) => Condition::and(vec![exists, rest]),
        None => exists,
    };
    if negated {
        condition = Condition::Not(Box::new(condition));
    }
    Ok(write::Planned {
        table,
        op: TxOp::Check {
            key: keyed.key,
            condition,
        },
    })
}

/// A write transaction: `INSERT`, `UPDATE`, `DELETE`, `EXISTS`, `NOT EXISTS`.
async fn write(
    ctx: &Ctx<'_>,
    stmts: &[Statement],
    inputs: &[StatementInput<'_>],
    token: Option<shoal_catalog::TxToken>,
    level: Level,
) -> Result<Value, ApiError> {
    let mut writes = Vec::with_capacity(stmts.len());
    let mut sent = Vec::with_capacity(stmts.len());
    let mut inserts = Vec::with_capacity(stmts.len());
    let mut seen = HashSet::with_capacity(stmts.len());
    let mut total = 0usize;
    for (stmt, s) in stmts.iter().zip(inputs) {
        let params = &s.params;
        let (planned, kind) = match stmt {
            Statement::Insert(i) => (write::plan_insert(ctx, i, params).await?, ActionKind::Put),
            Statement::Update(u) => {
                if u.returning.is_some() {
                    return Err(ApiError::validation(TRANSACTION_RETURNING));
                }
                (
                    write::plan_update(ctx, u, params).await?,
                    ActionKind::Update,
                )
            }
            Statement::Delete(d) => {
                if d.returning.is_some() {
                    return Err(ApiError::validation(TRANSACTION_RETURNING));
                }
                (
                    write::plan_delete(ctx, d, params).await?,
                    ActionKind::Delete,
                )
            }
            Statement::Exists(sel) => (
                plan_check(ctx, sel, params, false).await?,
                ActionKind::ConditionCheck,
            ),
            Statement::NotExists(sel) => (
                plan_check(ctx, sel, params, true).await?,
                ActionKind::ConditionCheck,
            ),
            Statement::Select(_) => {
                return Err(ApiError::internal("a write transaction with a read"));
            }
        };
        let write::Planned { table, op } = planned;
        let key_item = op.key_item();
        total += item_size(key_item);
        if !seen.insert((table.name.clone(), table.key_schema.storage_key(key_item))) {
            return Err(ApiError::validation(DUPLICATE));
        }
        let put_size = match &op {
            TxOp::Put { item, .. } => item_size(item),
            _ => 0,
        };
        sent.push(Sent {
            table: Arc::clone(&table),
            kind,
            put_size,
            return_old: s.all_old_on_failure,
        });
        inserts.push(matches!(stmt, Statement::Insert(_)));
        writes.push(TxWrite { table, op });
    }
    if total > MAX_TRANSACTION_BYTES {
        return Err(ApiError::validation(
            "Transaction request cannot be larger than 4 MB",
        ));
    }
    let outcome = ctx
        .backend
        .transact_write(writes, token)
        .await
        .map_err(backend_error)?;
    let applied = match outcome {
        TxOutcome::Committed(applied) => applied,
        TxOutcome::AlreadyCommitted => return Ok(already_committed(level, false)),
        TxOutcome::Canceled(reasons) => {
            return Err(errors::canceled_as(reasons, |i| Shown {
                return_old: sent.get(i).is_some_and(|s| s.return_old),
                insert: inserts.get(i).copied().unwrap_or(false),
            }));
        }
        TxOutcome::TokenMismatch => return Err(errors::token_mismatch()),
        TxOutcome::InProgress => return Err(errors::in_progress()),
    };
    if applied.len() != sent.len() {
        return Err(ApiError::internal(format!(
            "a transaction of {} statements committed {} results",
            sent.len(),
            applied.len()
        )));
    }
    let mut out = Map::new();
    let charges = charge(&sent, &applied, level);
    if level != Level::None {
        let list: Vec<Value> = charges
            .iter()
            .filter_map(|(table, c)| c.entry(level, table))
            .collect();
        out.insert("ConsumedCapacity".into(), list.into());
    }
    Ok(Value::Object(out))
}

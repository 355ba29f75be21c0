//! `TransactWriteItems`.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Map, Value};
use shoal_catalog::{TxOutcome, TxWrite};
use shoal_storage::{Applied, TxOp};
use shoal_types::size::{MAX_ITEM_SIZE, item_size};

use super::errors;
use super::parse::{self, ActionKind};
use crate::backend::TableMeta;
use crate::error::{ApiError, Violations};
use crate::input::Input;
use crate::ops::Ctx;
use crate::ops::capacity::{self, Level, WriteCharge};
use crate::ops::validate::{active_table, backend_error, enum_value};

/// The aggregate size of a write transaction's items (the items put, the keys of the others).
pub const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;

/// What the answer needs of each action once the data plane has it.
pub(crate) struct Sent {
    pub table: Arc<TableMeta>,
    pub kind: ActionKind,
    /// The size of the item a `Put` writes (0 for the others).
    pub put_size: usize,
    pub return_old: bool,
}

/// `TransactWriteItems`: validates every action (model constraints, expressions, tables, keys,
/// sizes, one action per item) before anything is sent, then hands the whole transaction to the
/// data plane, which applies all of it or none.
pub async fn transact_write_items(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let list = parse::transact_items(input, &mut v)?;
    let level = Level::parse(input.str("ReturnConsumedCapacity")?, &mut v);
    let metrics = enum_value(
        input.str("ReturnItemCollectionMetrics")?,
        "returnItemCollectionMetrics",
        &["SIZE", "NONE"],
        &mut v,
    ) == Some("SIZE");
    let token = parse::client_token(input, &mut v)?;
    let raw = parse::write_actions(list, &mut v)?;
    v.into_result()?;
    let ops = raw
        .iter()
        .map(parse::write_op)
        .collect::<Result<Vec<TxOp>, ApiError>>()?;

    let mut writes = Vec::with_capacity(ops.len());
    let mut sent = Vec::with_capacity(ops.len());
    let mut seen = HashSet::with_capacity(ops.len());
    let mut total = 0usize;
    for (raw, op) in raw.iter().zip(ops) {
        let table = active_table(ctx, raw.table).await?;
        let schema = &table.key_schema;
        let mut put_size = 0;
        match &op {
            TxOp::Put { item, .. } => {
                schema.validate_item(item)?;
                crate::ops::index::check_index_keys(&table, item)?;
                put_size = item_size(item);
                if put_size > MAX_ITEM_SIZE {
                    return Err(ApiError::validation(
                        "Item size has exceeded the maximum allowed size",
                    ));
                }
            }
            TxOp::Update { key, update, .. } => {
                schema.validate_key(key)?;
                crate::ops::item::check_key_not_updated(&table, update)?;
            }
            TxOp::Delete { key, .. } | TxOp::Check { key, .. } => schema.validate_key(key)?,
        }
        total += item_size(op.key_item());
        if !seen.insert((table.name.clone(), schema.storage_key(op.key_item()))) {
            return Err(ApiError::validation(
                "Transaction request cannot include multiple operations on one item",
            ));
        }
        sent.push(Sent {
            table: Arc::clone(&table),
            kind: raw.kind,
            put_size,
            return_old: raw.return_old,
        });
        writes.push(TxWrite { table, op });
    }
    if total > MAX_TRANSACTION_BYTES {
        return Err(ApiError::validation(
            "Transaction request cannot be larger than 4 MB",
        ));
    }
    // Collection metrics name the partition key: kept before the writes move.
    let keys: Vec<_> = writes
        .iter()
        .map(|w| {
            metrics
                .then(|| w.op.key_item().get(&w.table.key_schema.hash.name).cloned())
                .flatten()
        })
        .collect();

    let token =
        token.map(|t| super::token::tx_token(&ctx.identity.access_key_id, t, input.members()));
    let outcome = ctx
        .backend
        .transact_write(writes, token)
        .await
        .map_err(backend_error)?;
    let applied = match outcome {
        TxOutcome::Committed(applied) => applied,
        TxOutcome::AlreadyCommitted => return Ok(already_committed(level, metrics)),
        TxOutcome::Canceled(reasons) => {
            return Err(errors::canceled(reasons, |i| {
                sent.get(i).is_some_and(|s| s.return_old)
            }));
        }
        TxOutcome::TokenMismatch => return Err(errors::token_mismatch()),
        TxOutcome::InProgress => return Err(errors::in_progress()),
    };
    if applied.len() != sent.len() {
        return Err(ApiError::internal(format!(
            "a transaction of {} actions committed {} results",
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
    if metrics {
        let mut per_table = Map::new();
        for (s, pk) in sent.iter().zip(&keys) {
            if s.kind == ActionKind::ConditionCheck {
                continue;
            }
            if let Some(m) =
                crate::ops::item::collection_metrics(ctx, &s.table, pk.as_ref()).await?
            {
                match per_table
                    .entry(s.table.name.clone())
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    Value::Array(list) => list.push(m),
                    _ => return Err(ApiError::internal("collection metrics not a list")),
                }
            }
        }
        out.insert("ItemCollectionMetrics".into(), per_table.into());
    }
    Ok(Value::Object(out))
}

/// The write units of a committed transaction, per table in the order the tables first appear.
/// Every action is charged twice (DynamoDB prepares and then commits each item): the write
/// units of the larger of the item before and after, and the index entries it changed. A
/// condition check is charged as a write of the item it checked.
pub(crate) fn charge(
    sent: &[Sent],
    applied: &[Applied],
    level: Level,
) -> Vec<(String, WriteCharge)> {
    let mut charges: Vec<(String, WriteCharge)> = Vec::new();
    for (s, a) in sent.iter().zip(applied) {
        let size = |i: Option<&shoal_types::Item>| i.map(item_size).unwrap_or(0);
        let bytes = s
            .put_size
            .max(size(a.old.as_ref()))
            .max(size(a.new.as_ref()));
        let units = capacity::write_units(bytes);
        crate::metrics::charge_write(&s.table.name, 2.0 * units);
        if level == Level::None {
            continue;
        }
        let i = match charges.iter().position(|(n, _)| *n == s.table.name) {
            Some(i) => i,
            None => {
                charges.push((s.table.name.clone(), WriteCharge::default()));
                charges.len() - 1
            }
        };
        if let Some((_, c)) = charges.get_mut(i) {
            // Prepare, then commit.
            for _ in 0..2 {
                c.add(&s.table, units, a.old.as_ref(), a.new.as_ref());
            }
        }
    }
    charges
}

/// The answer to a retry of a transaction that committed: nothing was written again, so no
/// write capacity is reported.
pub(crate) fn already_committed(level: Level, metrics: bool) -> Value {
    let mut out = Map::new();
    if level != Level::None {
        out.insert("ConsumedCapacity".into(), Value::Array(Vec::new()));
    }
    if metrics {
        out.insert("ItemCollectionMetrics".into(), Value::Object(Map::new()));
    }
    Value::Object(out)
}

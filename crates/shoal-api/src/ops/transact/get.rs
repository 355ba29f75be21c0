//! `TransactGetItems`.

use std::collections::HashSet;

use serde_json::{Map, Value, json};
use shoal_catalog::{TxGet, TxOutcome};
use shoal_types::json::item_to_json;
use shoal_types::size::item_size;

use super::{errors, parse};
use crate::error::{ApiError, Violations};
use crate::input::Input;
use crate::ops::Ctx;
use crate::ops::capacity::{self, Level};
use crate::ops::validate::{active_table, backend_error};

/// `TransactGetItems`: the items of every Get as of one moment, in request order (`{}` for an
/// item that does not exist), each with its own projection.
pub async fn transact_get_items(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let list = parse::transact_items(input, &mut v)?;
    let level = Level::parse(input.str("ReturnConsumedCapacity")?, &mut v);
    let raw = parse::get_actions(list, &mut v)?;
    v.into_result()?;

    let mut gets = Vec::with_capacity(raw.len());
    let mut seen = HashSet::with_capacity(raw.len());
    for r in &raw {
        let table = active_table(ctx, r.table).await?;
        table.key_schema.validate_key(&r.key)?;
        if !seen.insert((table.name.clone(), table.key_schema.storage_key(&r.key))) {
            return Err(ApiError::validation(
                "Transaction request cannot include multiple operations on one item",
            ));
        }
        gets.push(TxGet {
            table,
            key: r.key.clone(),
        });
    }
    let tables: Vec<String> = gets.iter().map(|g| g.table.name.clone()).collect();

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
    if items.len() != raw.len() {
        return Err(ApiError::internal(format!(
            "a read transaction of {} gets returned {} items",
            raw.len(),
            items.len()
        )));
    }

    let mut responses = Vec::with_capacity(items.len());
    // (table, units) in the order the tables first appear.
    let mut units: Vec<(String, f64)> = Vec::new();
    for ((r, table), item) in raw.into_iter().zip(&tables).zip(items) {
        // Prepare and commit: twice a consistent read's units.
        let read = 2.0 * capacity::read_units(item.as_ref().map(item_size).unwrap_or(0), true);
        match units.iter_mut().find(|(n, _)| n == table) {
            Some(slot) => slot.1 += read,
            None => units.push((table.clone(), read)),
        }
        responses.push(match item {
            Some(item) => {
                let item = crate::ops::item::project(item, r.projection.as_ref(), None);
                json!({ "Item": item_to_json(&item) })
            }
            None => json!({}),
        });
    }
    let mut out = Map::new();
    let capacity_list: Vec<Value> = units
        .iter()
        .filter_map(|(table, u)| capacity::entry(level, table, *u))
        .collect();
    if level != Level::None {
        out.insert("ConsumedCapacity".into(), capacity_list.into());
    }
    out.insert("Responses".into(), responses.into());
    Ok(Value::Object(out))
}

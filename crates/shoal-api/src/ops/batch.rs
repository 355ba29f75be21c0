//! BatchGetItem and BatchWriteItem.
//!
//! Every request of a batch is validated before any is executed, so a bad request never leaves a
//! batch half written. The reads or writes of a table's requests then run all at once (they touch
//! distinct keys, often in partitions on different nodes; a batch is not a transaction). A read
//! or write the cluster could not serve in time (`DataError::Unavailable`: no replica reachable,
//! a leader election, or a write whose outcome is unknown) or its partition's capacity did not
//! admit (`DataError::Throttled`) comes back in `UnprocessedKeys` / `UnprocessedItems`, as
//! DynamoDB returns what it could not process: retrying one is safe, since batch writes have no
//! conditions. Only when nothing at all was processed is the (first) error returned:
//! `ProvisionedThroughputExceededException` when throttling was why.

use std::collections::HashSet;
use std::sync::Arc;

use crate::backend::DataError;
use futures_util::future::join_all;

use serde_json::{Map, Value, json};
use shoal_expr::{ExprContext, Projection};
use shoal_storage::Command;
use shoal_types::Item;
use shoal_types::json::item_to_json;
use shoal_types::size::{MAX_ITEM_SIZE, item_size};

use super::Ctx;
use super::capacity::{self, Level};
use super::validate::{active_table, backend_error, enum_value, table_name};
use crate::backend::TableMeta;
use crate::error::{ApiError, Violations};
use crate::input::{Input, nested, opt_array};

/// At most this many keys in one BatchGetItem.
pub const MAX_BATCH_GET_KEYS: usize = 100;
/// At most this many requests in one BatchWriteItem.
pub const MAX_BATCH_WRITE_REQUESTS: usize = 25;
/// A BatchGetItem response stops growing at 16 MB; the rest is returned as `UnprocessedKeys`.
pub const MAX_BATCH_GET_RESPONSE: usize = 16 * 1024 * 1024;

fn duplicates() -> ApiError {
    ApiError::validation("Provided list of item keys contains duplicates")
}

fn request_items<'a>(
    input: &Input<'a>,
    v: &mut Violations,
) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match input.object("RequestItems")? {
        None => {
            v.missing("requestItems");
            Ok(None)
        }
        Some(m) if m.is_empty() => {
            v.constraint(
                "{}",
                "requestItems",
                "Member must have length greater than or equal to 1",
            );
            Ok(None)
        }
        Some(m) => Ok(Some(m)),
    }
}

/// One table's part of a BatchGetItem.
struct GetGroup<'a> {
    table: Arc<TableMeta>,
    keys: Vec<Item>,
    consistent: bool,
    projection: Option<Projection>,
    to_get: Option<Vec<String>>,
    /// The request's JSON for this table, echoed in `UnprocessedKeys`.
    raw: &'a Map<String, Value>,
}

/// `BatchGetItem`.
pub async fn batch_get_item(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let items = request_items(input, &mut v)?;
    let level = Level::parse(input.str("ReturnConsumedCapacity")?, &mut v);
    let mut parsed = Vec::new();
    let mut total_keys = 0usize;
    for (name, spec) in items.into_iter().flatten() {
        table_name(Some(name), "requestItems", &mut v);
        let spec_obj = spec
            .as_object()
            .ok_or_else(|| crate::input::type_mismatch(spec, "a structure"))?;
        let spec_in = nested(spec)?;
        let keys = match spec_in.array("Keys")? {
            None => {
                v.missing(&format!("requestItems.{name}.member.keys"));
                Vec::new()
            }
            Some(list) => {
                if list.is_empty() {
                    v.constraint(
                        "[]",
                        &format!("requestItems.{name}.member.keys"),
                        "Member must have length greater than or equal to 1",
                    );
                } else if list.len() > MAX_BATCH_GET_KEYS {
                    v.constraint(
                        &format!("{} keys", list.len()),
                        &format!("requestItems.{name}.member.keys"),
                        "Member must have length less than or equal to 100",
                    );
                }
                let mut keys = Vec::with_capacity(list.len());
                for k in list {
                    keys.push(shoal_types::json::item_from_json(k)?);
                }
                keys
            }
        };
        total_keys += keys.len();
        let to_get = super::item::attributes_to_get(&spec_in, &mut v)?;
        parsed.push((name.as_str(), spec_in, spec_obj, keys, to_get));
    }
    v.into_result()?;
    if total_keys > MAX_BATCH_GET_KEYS {
        return Err(ApiError::validation(
            "Too many items requested for the BatchGetItem call",
        ));
    }

    let mut groups = Vec::with_capacity(parsed.len());
    for (name, spec_in, raw, keys, to_get) in parsed {
        let projection_text = spec_in.str("ProjectionExpression")?;
        if to_get.is_some() && projection_text.is_some() {
            return Err(ApiError::validation(
                "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
            ));
        }
        let names = spec_in.string_map("ExpressionAttributeNames")?;
        if names.is_some() && projection_text.is_none() {
            return Err(ApiError::validation(
                "ExpressionAttributeNames can only be specified when using expressions",
            ));
        }
        let mut ectx = ExprContext::new(names.as_ref(), None);
        ectx.check_keys()?;
        let projection = projection_text
            .map(|t| shoal_expr::parse_projection(t, &mut ectx))
            .transpose()?;
        ectx.check_all_used()?;
        let table = active_table(ctx, name).await?;
        let mut seen = HashSet::with_capacity(keys.len());
        for key in &keys {
            table.key_schema.validate_key(key)?;
            if !seen.insert(table.key_schema.storage_key(key)) {
                return Err(duplicates());
            }
        }
        groups.push(GetGroup {
            table,
            keys,
            consistent: spec_in.bool("ConsistentRead")?.unwrap_or(false),
            projection,
            to_get,
            raw,
        });
    }

    let mut responses = Map::new();
    let mut unprocessed = Map::new();
    let mut capacity_list = Vec::new();
    let mut response_bytes = 0usize;
    let mut full = false;
    let (mut processed, mut refusal) = (0usize, None);
    for group in groups {
        let mut found = Vec::new();
        let mut units = 0.0;
        let mut left: Vec<Value> = Vec::new();
        let reads = if full {
            Vec::new()
        } else {
            join_all(
                group
                    .keys
                    .iter()
                    .map(|key| ctx.backend.get(&group.table, key, group.consistent)),
            )
            .await
        };
        let mut reads = reads.into_iter();
        for key in &group.keys {
            let read = reads.next();
            if full {
                left.push(item_to_json(key));
                continue;
            }
            let item = match read {
                Some(Ok(item)) => item,
                Some(Err(e @ (DataError::Unavailable(_) | DataError::Throttled(_)))) => {
                    unprocessed_because(&group.table.name, e, &mut refusal);
                    left.push(item_to_json(key));
                    continue;
                }
                Some(Err(e)) => return Err(backend_error(e)),
                None => return Err(ApiError::internal("a batch read went missing")),
            };
            processed += 1;
            let size = item.as_ref().map(item_size).unwrap_or(0);
            if let Some(item) = item {
                let item =
                    super::item::project(item, group.projection.as_ref(), group.to_get.as_deref());
                let bytes = item_size(&item);
                // The response never exceeds 16 MB: the item that would cross it, and every key
                // after it, are returned as UnprocessedKeys (and not charged).
                if response_bytes + bytes > MAX_BATCH_GET_RESPONSE {
                    full = true;
                    left.push(item_to_json(key));
                    continue;
                }
                response_bytes += bytes;
                found.push(item_to_json(&item));
            }
            units += capacity::read_units(size, group.consistent);
        }
        responses.insert(group.table.name.clone(), found.into());
        if !left.is_empty() {
            let mut spec = group.raw.clone();
            spec.insert("Keys".into(), left.into());
            unprocessed.insert(group.table.name.clone(), spec.into());
        }
        capacity_list.extend(capacity::entry(level, &group.table.name, units));
    }
    if processed == 0
        && let Some(refusal) = refusal
    {
        return Err(backend_error(refusal));
    }
    let mut out = Map::new();
    out.insert("Responses".into(), responses.into());
    out.insert("UnprocessedKeys".into(), unprocessed.into());
    if level != Level::None {
        out.insert("ConsumedCapacity".into(), capacity_list.into());
    }
    Ok(Value::Object(out))
}

/// `BatchWriteItem`.
pub async fn batch_write_item(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let items = request_items(input, &mut v)?;
    let level = Level::parse(input.str("ReturnConsumedCapacity")?, &mut v);
    let metrics = enum_value(
        input.str("ReturnItemCollectionMetrics")?,
        "returnItemCollectionMetrics",
        &["SIZE", "NONE"],
        &mut v,
    ) == Some("SIZE");
    let mut parsed: Vec<(&str, Vec<Command>)> = Vec::new();
    let mut total = 0usize;
    for (name, list) in items.into_iter().flatten() {
        table_name(Some(name), "requestItems", &mut v);
        let list = opt_array(Some(list))?.map(Vec::as_slice).unwrap_or(&[]);
        if list.is_empty() || list.len() > MAX_BATCH_WRITE_REQUESTS {
            v.push(format!(
                "Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to {MAX_BATCH_WRITE_REQUESTS}, Member must have length greater than or equal to 1]"
            ));
        }
        total += list.len();
        let mut commands = Vec::with_capacity(list.len());
        for request in list {
            let request = nested(request)?;
            let put = request.object("PutRequest")?;
            let delete = request.object("DeleteRequest")?;
            match (put, delete) {
                (Some(_), None) => {
                    let put = nested(request.raw("PutRequest").unwrap_or(&Value::Null))?;
                    match put.item("Item")? {
                        Some(item) => commands.push(Command::Put {
                            item,
                            condition: None,
                        }),
                        None => v.missing(&format!("requestItems.{name}.member.putRequest.item")),
                    }
                }
                (None, Some(_)) => {
                    let del = nested(request.raw("DeleteRequest").unwrap_or(&Value::Null))?;
                    match del.item("Key")? {
                        Some(key) => commands.push(Command::Delete {
                            key,
                            condition: None,
                        }),
                        None => v.missing(&format!("requestItems.{name}.member.deleteRequest.key")),
                    }
                }
                _ => {
                    return Err(ApiError::validation(
                        "Supplied WriteRequest must contain exactly one of PutRequest or DeleteRequest",
                    ));
                }
            }
        }
        parsed.push((name.as_str(), commands));
    }
    v.into_result()?;
    if total > MAX_BATCH_WRITE_REQUESTS {
        return Err(ApiError::validation(
            "Too many items requested for the BatchWriteItem call",
        ));
    }

    // Validate everything before writing anything.
    let mut groups = Vec::with_capacity(parsed.len());
    for (name, commands) in parsed {
        let table = active_table(ctx, name).await?;
        let mut seen = HashSet::with_capacity(commands.len());
        for command in &commands {
            let key_source = match command {
                Command::Put { item, .. } => {
                    table.key_schema.validate_item(item)?;
                    super::index::check_index_keys(&table, item)?;
                    if item_size(item) > MAX_ITEM_SIZE {
                        return Err(ApiError::validation(
                            "Item size has exceeded the maximum allowed size",
                        ));
                    }
                    item
                }
                Command::Delete { key, .. } => {
                    table.key_schema.validate_key(key)?;
                    key
                }
                Command::Update { key, .. } => key,
                // Never parsed from a request.
                _ => {
                    return Err(ApiError::internal("not an item write in a batch write"));
                }
            };
            if !seen.insert(table.key_schema.storage_key(key_source)) {
                return Err(duplicates());
            }
        }
        groups.push((table, commands));
    }

    let mut capacity_list = Vec::new();
    let mut collection_metrics = Map::new();
    let mut unprocessed = Map::new();
    let (mut processed, mut refusal) = (0usize, None);
    for (table, commands) in groups {
        let mut charge = capacity::WriteCharge::default();
        let mut table_metrics = Vec::new();
        let mut left: Vec<Value> = Vec::new();
        let results = join_all(
            commands
                .iter()
                .map(|command| ctx.backend.write(&table, command.clone())),
        )
        .await;
        for (command, result) in commands.into_iter().zip(results) {
            let applied = match result {
                Ok(applied) => applied,
                Err(e @ (DataError::Unavailable(_) | DataError::Throttled(_))) => {
                    unprocessed_because(&table.name, e, &mut refusal);
                    left.push(write_request(&command));
                    continue;
                }
                Err(e) => return Err(backend_error(e)),
            };
            processed += 1;
            let new_size = match &command {
                Command::Put { item, .. } => item_size(item),
                _ => 0,
            };
            // Cloned only when ItemCollectionMetrics are asked for.
            let pk = match &command {
                _ if !metrics => None,
                Command::Put { item, .. } => item.get(&table.key_schema.hash.name).cloned(),
                Command::Delete { key, .. } | Command::Update { key, .. } => {
                    key.get(&table.key_schema.hash.name).cloned()
                }
                _ => None,
            };
            let old_size = applied.old.as_ref().map(item_size).unwrap_or(0);
            let table_units = capacity::write_units(new_size.max(old_size));
            // The table's own units count in its metrics, asked for or not.
            crate::metrics::charge_write(&table.name, table_units);
            // Index entries are only built when the capacity is reported.
            if level != Level::None {
                charge.add(
                    &table,
                    table_units,
                    applied.old.as_ref(),
                    applied.new.as_ref(),
                );
            }
            if metrics
                && let Some(m) = super::item::collection_metrics(ctx, &table, pk.as_ref()).await?
            {
                table_metrics.push(m);
            }
        }
        capacity_list.extend(charge.entry(level, &table.name));
        if !table_metrics.is_empty() {
            collection_metrics.insert(table.name.clone(), table_metrics.into());
        }
        if !left.is_empty() {
            unprocessed.insert(table.name.clone(), left.into());
        }
    }
    if processed == 0
        && let Some(refusal) = refusal
    {
        return Err(backend_error(refusal));
    }
    let mut out = Map::new();
    out.insert("UnprocessedItems".into(), unprocessed.into());
    if metrics {
        out.insert("ItemCollectionMetrics".into(), collection_metrics.into());
    }
    if level != Level::None {
        out.insert("ConsumedCapacity".into(), capacity_list.into());
    }
    Ok(Value::Object(out))
}

/// Notes a request of a batch the cluster could not serve or its capacity did not admit
/// (`why`): it is returned unprocessed, and `refusal` keeps the first reason (the batch's error
/// if nothing was processed).
fn unprocessed_because(table: &str, why: DataError, refusal: &mut Option<DataError>) {
    if let DataError::Unavailable(cause) = &why {
        tracing::warn!(table, cause, "batch request returned unprocessed");
    }
    refusal.get_or_insert(why);
}

/// The `WriteRequest` JSON of a batch write, as `UnprocessedItems` lists it.
fn write_request(command: &Command) -> Value {
    match command {
        Command::Put { item, .. } => json!({ "PutRequest": { "Item": item_to_json(item) } }),
        Command::Delete { key, .. } => json!({ "DeleteRequest": { "Key": item_to_json(key) } }),
        // Never in a batch (refused when the batch was validated).
        _ => Value::Null,
    }
}

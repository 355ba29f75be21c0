//! Single-item operations: PutItem, GetItem, DeleteItem, UpdateItem.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use shoal_expr::{ConditionKind, ExprContext};
use shoal_storage::{ApplyError, Command};
use shoal_types::json::item_to_json;
use shoal_types::size::{MAX_ITEM_SIZE, item_size};
use shoal_types::{AttributeValue, Item};

use super::Ctx;
use super::capacity::{self, Level};
use super::legacy;
use super::validate::{active_table, backend_error, enum_value, table_name};
use crate::backend::{DataError, TableMeta};
use crate::error::{ApiError, ErrorKind, Violations};
use crate::input::Input;

const RETURN_VALUES: &[&str] = &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"];

/// The members every write shares.
struct WriteParams<'a> {
    table: &'a str,
    return_values: &'a str,
    on_condition_failure_all_old: bool,
    capacity: Level,
    condition: Option<&'a str>,
    /// `ReturnItemCollectionMetrics=SIZE`.
    collection_metrics: bool,
}

fn write_params<'a>(input: &Input<'a>, v: &mut Violations) -> Result<WriteParams<'a>, ApiError> {
    let table = table_name(input.str("TableName")?, "tableName", v);
    let rv = enum_value(input.str("ReturnValues")?, "returnValues", RETURN_VALUES, v);
    let capacity = Level::parse(input.str("ReturnConsumedCapacity")?, v);
    let metrics = enum_value(
        input.str("ReturnItemCollectionMetrics")?,
        "returnItemCollectionMetrics",
        &["SIZE", "NONE"],
        v,
    );
    let rvoccf = enum_value(
        input.str("ReturnValuesOnConditionCheckFailure")?,
        "returnValuesOnConditionCheckFailure",
        &["ALL_OLD", "NONE"],
        v,
    );
    Ok(WriteParams {
        table: table.unwrap_or(""),
        return_values: rv.unwrap_or("NONE"),
        on_condition_failure_all_old: rvoccf == Some("ALL_OLD"),
        capacity,
        condition: input.str("ConditionExpression")?,
        collection_metrics: metrics == Some("SIZE"),
    })
}

/// The `ItemCollectionMetrics` of a write to the item collection of `partition_key`: only for
/// tables with local secondary indexes. `SizeEstimateRangeGB` brackets the collection's size
/// (items plus their local index entries) between whole gigabytes.
pub(super) async fn collection_metrics(
    ctx: &Ctx<'_>,
    table: &TableMeta,
    partition_key: Option<&AttributeValue>,
) -> Result<Option<Value>, ApiError> {
    let Some(pk) = partition_key else {
        return Ok(None);
    };
    if !table.has_local_indexes() {
        return Ok(None);
    }
    let bytes = ctx
        .backend
        .item_collection_size(table, pk)
        .await
        .map_err(backend_error)?;
    let gb = bytes as f64 / (1u64 << 30) as f64;
    let low = gb.floor();
    let mut key = Map::new();
    key.insert(
        table.key_schema.hash.name.clone(),
        shoal_types::json::attribute_value_to_json(pk),
    );
    Ok(Some(json!({
        "ItemCollectionKey": key,
        "SizeEstimateRangeGB": [low, low + 1.0],
    })))
}

/// The partition key a write's `ItemCollectionMetrics` reports on, taken from `key_source` (the
/// item or key written); cloned only when the request asks for the metrics.
fn metrics_key(
    p: &WriteParams<'_>,
    table: &TableMeta,
    key_source: &Item,
) -> Option<AttributeValue> {
    if !p.collection_metrics {
        return None;
    }
    key_source.get(&table.key_schema.hash.name).cloned()
}

/// Adds `ItemCollectionMetrics` for `pk` (see [`metrics_key`]) to a write's response when the
/// table has local indexes.
async fn attach_collection_metrics(
    ctx: &Ctx<'_>,
    out: &mut Value,
    table: &TableMeta,
    pk: Option<&AttributeValue>,
) -> Result<(), ApiError> {
    if let (Some(m), Value::Object(o)) = (collection_metrics(ctx, table, pk).await?, out) {
        o.insert("ItemCollectionMetrics".into(), m);
    }
    Ok(())
}

/// `ExpressionAttributeNames` and `ExpressionAttributeValues` of a request.
pub(super) type Placeholders = (
    Option<HashMap<String, String>>,
    Option<HashMap<String, AttributeValue>>,
);

/// Reads `ExpressionAttributeNames`/`Values`, with DynamoDB's rules for when they may appear.
pub(super) fn placeholders(
    input: &Input<'_>,
    any_expression: bool,
    values_allowed: bool,
) -> Result<Placeholders, ApiError> {
    let names = input.string_map("ExpressionAttributeNames")?;
    let values = if values_allowed {
        input.value_map("ExpressionAttributeValues")?
    } else {
        None
    };
    if let Some(n) = &names {
        if !any_expression {
            return Err(ApiError::validation(
                "ExpressionAttributeNames can only be specified when using expressions",
            ));
        }
        if n.is_empty() {
            return Err(ApiError::validation(
                "ExpressionAttributeNames must not be empty",
            ));
        }
    }
    if let Some(vals) = &values {
        if !any_expression {
            return Err(ApiError::validation(
                "ExpressionAttributeValues can only be specified when using expressions",
            ));
        }
        if vals.is_empty() {
            return Err(ApiError::validation(
                "ExpressionAttributeValues must not be empty",
            ));
        }
    }
    Ok((names, values))
}

fn write_error(e: DataError, return_old_on_failure: bool) -> ApiError {
    match e {
        DataError::Apply(ApplyError::ConditionalCheckFailed { item }) => {
            let mut err = ApiError::new(
                ErrorKind::ConditionalCheckFailed,
                "The conditional request failed",
            );
            if return_old_on_failure && let Some(item) = item {
                let mut extra = Map::new();
                extra.insert("Item".into(), item_to_json(&item));
                err.extra = Some(extra);
            }
            err
        }
        other => backend_error(other),
    }
}

fn required_item(
    input: &Input<'_>,
    member: &str,
    field: &str,
    v: &mut Violations,
) -> Result<Item, ApiError> {
    match input.item(member)? {
        Some(item) => Ok(item),
        None => {
            v.missing(field);
            Ok(Item::new())
        }
    }
}

fn attach_attributes(out: &mut Map<String, Value>, attrs: Option<&Item>) {
    if let Some(a) = attrs
        && !a.is_empty()
    {
        out.insert("Attributes".into(), item_to_json(a));
    }
}

/// The condition of a PutItem or DeleteItem (`ConditionExpression` or `Expected`), after the
/// checks both share: ReturnValues limited to NONE/ALL_OLD, no mixing of legacy parameters and
/// expressions, placeholders defined and used.
fn simple_write_condition(
    input: &Input<'_>,
    p: &WriteParams<'_>,
    operator: Option<&str>,
) -> Result<Option<shoal_expr::Condition>, ApiError> {
    if !matches!(p.return_values, "NONE" | "ALL_OLD") {
        return Err(ApiError::validation("Return values set to invalid value"));
    }
    legacy::check_mix(
        input,
        &["Expected", "ConditionalOperator"],
        &[
            "ConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
        ],
    )?;
    let (names, values) = placeholders(input, p.condition.is_some(), true)?;
    let mut ectx = ExprContext::new(names.as_ref(), values.as_ref());
    ectx.check_keys()?;
    let condition = match p.condition {
        Some(c) => Some(shoal_expr::parse_condition(
            c,
            &mut ectx,
            ConditionKind::Condition,
        )?),
        None => legacy::expected(input, operator)?,
    };
    ectx.check_all_used()?;
    Ok(condition)
}

/// The answer of a PutItem or DeleteItem: `Attributes` for ALL_OLD, and the capacity of the
/// larger of the old item and `new_size`.
fn simple_write_response(
    p: &WriteParams<'_>,
    table: &TableMeta,
    applied: &shoal_storage::Applied,
    new_size: usize,
) -> Value {
    let mut out = Map::new();
    if p.return_values == "ALL_OLD" {
        attach_attributes(&mut out, applied.old.as_ref());
    }
    let old_size = applied.old.as_ref().map(item_size).unwrap_or(0);
    attach_write_capacity(
        &mut out,
        p.capacity,
        table,
        capacity::write_units(new_size.max(old_size)),
        applied,
    );
    Value::Object(out)
}

/// `ConsumedCapacity` of one write: the table's units plus those of the index entries it changed.
fn attach_write_capacity(
    out: &mut Map<String, Value>,
    level: Level,
    table: &TableMeta,
    table_units: f64,
    applied: &shoal_storage::Applied,
) {
    // The table's own units count in its metrics (DynamoDB's table-level
    // ConsumedWriteCapacityUnits: index writes are not in it).
    crate::metrics::charge_write(&table.name, table_units);
    // Not asked for: skip building every index entry of the old and new item.
    if level == Level::None {
        return;
    }
    let mut charge = capacity::WriteCharge::default();
    charge.add(
        table,
        table_units,
        applied.old.as_ref(),
        applied.new.as_ref(),
    );
    if let Some(e) = charge.entry(level, &table.name) {
        out.insert("ConsumedCapacity".into(), e);
    }
}

/// `PutItem`.
pub async fn put_item(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let p = write_params(input, &mut v)?;
    let item = required_item(input, "Item", "item", &mut v)?;
    let operator = legacy::conditional_operator(input, &mut v)?;
    v.into_result()?;
    let condition = simple_write_condition(input, &p, operator)?;

    let table = active_table(ctx, p.table).await?;
    table.key_schema.validate_item(&item)?;
    super::index::check_index_keys(&table, &item)?;
    let size = item_size(&item);
    if size > MAX_ITEM_SIZE {
        return Err(ApiError::validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    let pk = metrics_key(&p, &table, &item);
    let applied = ctx
        .backend
        .write(&table, Command::Put { item, condition })
        .await
        .map_err(|e| write_error(e, p.on_condition_failure_all_old))?;
    let mut out = simple_write_response(&p, &table, &applied, size);
    attach_collection_metrics(ctx, &mut out, &table, pk.as_ref()).await?;
    Ok(out)
}

/// `DeleteItem`.
pub async fn delete_item(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let p = write_params(input, &mut v)?;
    let key = required_item(input, "Key", "key", &mut v)?;
    let operator = legacy::conditional_operator(input, &mut v)?;
    v.into_result()?;
    let condition = simple_write_condition(input, &p, operator)?;

    let table = active_table(ctx, p.table).await?;
    table.key_schema.validate_key(&key)?;
    let pk = metrics_key(&p, &table, &key);
    let applied = ctx
        .backend
        .write(&table, Command::Delete { key, condition })
        .await
        .map_err(|e| write_error(e, p.on_condition_failure_all_old))?;
    let mut out = simple_write_response(&p, &table, &applied, 0);
    attach_collection_metrics(ctx, &mut out, &table, pk.as_ref()).await?;
    Ok(out)
}

/// `UpdateItem`.
pub async fn update_item(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let p = write_params(input, &mut v)?;
    let key = required_item(input, "Key", "key", &mut v)?;
    let update_text = input.str("UpdateExpression")?;
    let operator = legacy::conditional_operator(input, &mut v)?;
    let attribute_updates = legacy::attribute_updates(input, &mut v)?;
    v.into_result()?;
    legacy::check_mix(
        input,
        &["Expected", "ConditionalOperator", "AttributeUpdates"],
        &[
            "UpdateExpression",
            "ConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
        ],
    )?;
    let any_expression = p.condition.is_some() || update_text.is_some();
    let (names, values) = placeholders(input, any_expression, true)?;
    let mut ectx = ExprContext::new(names.as_ref(), values.as_ref());
    ectx.check_keys()?;
    let update = match update_text {
        Some(text) => shoal_expr::parse_update(text, &mut ectx)?,
        None => attribute_updates.unwrap_or_default(),
    };
    let condition = match p.condition {
        Some(c) => Some(shoal_expr::parse_condition(
            c,
            &mut ectx,
            ConditionKind::Condition,
        )?),
        None => legacy::expected(input, operator)?,
    };
    ectx.check_all_used()?;

    let table = active_table(ctx, p.table).await?;
    table.key_schema.validate_key(&key)?;
    check_key_not_updated(&table, &update)?;
    let updated_paths = update.updated_paths();
    let pk = metrics_key(&p, &table, &key);
    let applied = ctx
        .backend
        .write(
            &table,
            Command::Update {
                key,
                update,
                condition,
            },
        )
        .await
        .map_err(|e| write_error(e, p.on_condition_failure_all_old))?;
    let mut out = Map::new();
    match p.return_values {
        "ALL_OLD" => attach_attributes(&mut out, applied.old.as_ref()),
        "ALL_NEW" => attach_attributes(&mut out, applied.new.as_ref()),
        "UPDATED_OLD" => {
            let projected = applied.old.as_ref().map(|i| updated_paths.apply(i));
            attach_attributes(&mut out, projected.as_ref());
        }
        "UPDATED_NEW" => {
            let projected = applied.new.as_ref().map(|i| updated_paths.apply(i));
            attach_attributes(&mut out, projected.as_ref());
        }
        _ => {}
    }
    let size = applied
        .old
        .as_ref()
        .map(item_size)
        .unwrap_or(0)
        .max(applied.new.as_ref().map(item_size).unwrap_or(0));
    attach_write_capacity(
        &mut out,
        p.capacity,
        &table,
        capacity::write_units(size),
        &applied,
    );
    let mut out = Value::Object(out);
    attach_collection_metrics(ctx, &mut out, &table, pk.as_ref()).await?;
    Ok(out)
}

/// Refuses an update that sets or removes a key attribute of `table`.
pub(super) fn check_key_not_updated(
    table: &TableMeta,
    update: &shoal_expr::Update,
) -> Result<(), ApiError> {
    let key_names = [
        Some(&table.key_schema.hash),
        table.key_schema.range.as_ref(),
    ];
    for name in update.top_level_names() {
        if key_names.iter().flatten().any(|k| k.name == name) {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part of the key"
            )));
        }
    }
    Ok(())
}

/// Applies a `ProjectionExpression`, or else `AttributesToGet` (top-level names), to an item.
pub(super) fn project(
    item: Item,
    projection: Option<&shoal_expr::Projection>,
    names: Option<&[String]>,
) -> Item {
    match (projection, names) {
        (Some(p), _) => p.apply(&item),
        (None, Some(names)) => {
            let wanted: std::collections::HashSet<&str> =
                names.iter().map(String::as_str).collect();
            item.into_iter()
                .filter(|(k, _)| wanted.contains(k.as_str()))
                .collect()
        }
        (None, None) => item,
    }
}

/// `AttributesToGet` (legacy projection of top-level names): at least one name, none over
/// 65,535 bytes, no duplicates.
pub(super) fn attributes_to_get(
    input: &Input<'_>,
    v: &mut Violations,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(list) = input.array("AttributesToGet")? else {
        return Ok(None);
    };
    if list.is_empty() {
        v.constraint(
            "[]",
            "attributesToGet",
            "Member must have length greater than or equal to 1",
        );
        return Ok(None);
    }
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for el in list {
        let Some(n) = el.as_str() else {
            return Err(crate::input::type_mismatch(el, "String"));
        };
        names.push(n.to_string());
    }
    if names
        .iter()
        .any(|n| n.len() > shoal_types::json::MAX_ATTRIBUTE_NAME_LEN)
    {
        return Err(ApiError::validation(
            "1 validation error detected: Value at 'attributesToGet' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 65535]",
        ));
    }
    // A set, not a scan per name: the list may hold millions of names (16 MB of request).
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Duplicate value in attribute name: {dup}"
        )));
    }
    Ok(Some(names))
}

/// `GetItem`.
pub async fn get_item(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let table_name = table_name(input.str("TableName")?, "tableName", &mut v);
    let key = required_item(input, "Key", "key", &mut v)?;
    let capacity = Level::parse(input.str("ReturnConsumedCapacity")?, &mut v);
    let consistent = input.bool("ConsistentRead")?.unwrap_or(false);
    let projection_text = input.str("ProjectionExpression")?;
    let to_get = attributes_to_get(input, &mut v)?;
    v.into_result()?;
    if to_get.is_some() && projection_text.is_some() {
        return Err(ApiError::validation(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
        ));
    }
    let (names, _) = placeholders(input, projection_text.is_some(), false)?;
    let mut ectx = ExprContext::new(names.as_ref(), None);
    ectx.check_keys()?;
    let projection = projection_text
        .map(|t| shoal_expr::parse_projection(t, &mut ectx))
        .transpose()?;
    ectx.check_all_used()?;

    let table = active_table(ctx, table_name.unwrap_or("")).await?;
    table.key_schema.validate_key(&key)?;
    let item = ctx
        .backend
        .get(&table, &key, consistent)
        .await
        .map_err(backend_error)?;
    let mut out = Map::new();
    let size = item.as_ref().map(item_size).unwrap_or(0);
    if let Some(item) = item {
        let item = project(item, projection.as_ref(), to_get.as_deref());
        out.insert("Item".into(), item_to_json(&item));
    }
    capacity::attach(
        &mut out,
        capacity,
        &table.name,
        capacity::read_units(size, consistent),
    );
    Ok(Value::Object(out))
}

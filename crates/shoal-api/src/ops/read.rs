//! Query and Scan: key conditions, filters, projections, `Select`, paging and parallel scan.

use serde_json::{Map, Value, json};
use shoal_expr::{ConditionKind, ExprContext, Projection};
use shoal_storage::Page;
use shoal_types::Item;
use shoal_types::index::{IndexDef, IndexKind, IndexStatus, ProjectionType};
use shoal_types::index_key::IndexKeySchema;
use shoal_types::json::item_to_json;
use shoal_types::key::partition_hash;
use shoal_types::size::item_size;

use super::Ctx;
use super::capacity::{self, Level};
use super::item::{attributes_to_get, placeholders};
use super::legacy;
use super::validate::{active_table, backend_error, enum_value, table_name};
use crate::backend::{QueryRequest, ScanRequest, TableMeta};
use crate::error::{ApiError, Violations};
use crate::input::Input;

/// DynamoDB's page size: a Query or Scan reads at most 1 MB per call.
pub const PAGE_BYTES: usize = 1024 * 1024;

const SELECT: &[&str] = &[
    "ALL_ATTRIBUTES",
    "ALL_PROJECTED_ATTRIBUTES",
    "SPECIFIC_ATTRIBUTES",
    "COUNT",
];

/// The members Query and Scan share.
struct ReadParams<'a> {
    table: &'a str,
    select: Option<&'a str>,
    limit: Option<usize>,
    consistent: bool,
    capacity: Level,
    projection_text: Option<&'a str>,
    filter_text: Option<&'a str>,
    to_get: Option<Vec<String>>,
    exclusive_start: Option<Item>,
    index: Option<&'a str>,
}

fn read_params<'a>(input: &Input<'a>, v: &mut Violations) -> Result<ReadParams<'a>, ApiError> {
    let table = table_name(input.str("TableName")?, "tableName", v);
    let select = enum_value(input.str("Select")?, "select", SELECT, v);
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
    let capacity = Level::parse(input.str("ReturnConsumedCapacity")?, v);
    let to_get = attributes_to_get(input, v)?;
    let index = input.str("IndexName")?;
    let exclusive_start = input.item("ExclusiveStartKey")?;
    let params = ReadParams {
        table: table.unwrap_or(""),
        select,
        limit: limit.and_then(|l| usize::try_from(l).ok()),
        consistent: input.bool("ConsistentRead")?.unwrap_or(false),
        capacity,
        projection_text: input.str("ProjectionExpression")?,
        filter_text: input.str("FilterExpression")?,
        to_get,
        exclusive_start,
        index,
    };
    Ok(params)
}

impl ReadParams<'_> {
    /// The index named by `IndexName`, if any: it must exist and be usable (a global index being
    /// created or deleted cannot be read); `ConsistentRead` is not allowed on a global index.
    fn index<'t>(&self, table: &'t TableMeta) -> Result<Option<&'t IndexDef>, ApiError> {
        let Some(name) = self.index else {
            return Ok(None);
        };
        let unknown = || {
            ApiError::validation(format!(
                "The table does not have the specified index: {name}"
            ))
        };
        let def = table.index(name).ok_or_else(unknown)?;
        match def.status {
            IndexStatus::Active => {}
            IndexStatus::Deleting => return Err(unknown()),
            IndexStatus::Creating => {
                return Err(ApiError::validation(format!(
                    "Cannot read from backfilling global secondary index: {name}"
                )));
            }
        }
        if def.kind == IndexKind::Global && self.consistent {
            return Err(ApiError::validation(
                "Consistent reads are not supported on global secondary indexes",
            ));
        }
        Ok(Some(def))
    }
}

/// How the items of a page are returned.
enum Output {
    /// Whole items (`ALL_ATTRIBUTES`).
    All,
    /// Index entries as stored (`ALL_PROJECTED_ATTRIBUTES`, the default on an index).
    AllProjected,
    Count,
    Projected(Projection),
    Names(Vec<String>),
}

impl Output {
    /// The top-level attributes the output needs; `None` for every attribute.
    fn names(&self) -> Option<Vec<&str>> {
        match self {
            Output::All => None,
            Output::AllProjected | Output::Count => Some(Vec::new()),
            Output::Projected(p) => Some(p.top_level_names().collect()),
            Output::Names(n) => Some(n.iter().map(String::as_str).collect()),
        }
    }
}

fn select_output(
    select: Option<&str>,
    projection: Option<Projection>,
    to_get: Option<Vec<String>>,
    has_index: bool,
) -> Result<Output, ApiError> {
    let specific = projection.is_some() || to_get.is_some();
    match select {
        Some("ALL_PROJECTED_ATTRIBUTES") if !has_index => Err(ApiError::validation(
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        )),
        Some("ALL_PROJECTED_ATTRIBUTES") if specific => {
            Err(ApiError::validation(if to_get.is_some() {
                "Cannot specify the AttributesToGet when choosing to get ALL_PROJECTED_ATTRIBUTES"
            } else {
                "Cannot specify the ProjectionExpression when choosing to get ALL_PROJECTED_ATTRIBUTES"
            }))
        }
        Some("ALL_PROJECTED_ATTRIBUTES") => Ok(Output::AllProjected),
        Some("ALL_ATTRIBUTES") if specific => Err(ApiError::validation(if to_get.is_some() {
            "Cannot specify the AttributesToGet when choosing to get ALL_ATTRIBUTES"
        } else {
            "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES"
        })),
        Some("COUNT") if specific => Err(ApiError::validation(if to_get.is_some() {
            "Cannot specify the AttributesToGet when choosing to get COUNT"
        } else {
            "Cannot specify the ProjectionExpression when choosing to get COUNT"
        })),
        Some("COUNT") => Ok(Output::Count),
        Some("SPECIFIC_ATTRIBUTES") if !specific => Err(ApiError::validation(
            "SPECIFIC_ATTRIBUTES requires either AttributesToGet or ProjectionExpression",
        )),
        Some("ALL_ATTRIBUTES") => Ok(Output::All),
        _ => Ok(match (projection, to_get) {
            (Some(p), _) => Output::Projected(p),
            (None, Some(names)) => Output::Names(names),
            (None, None) if has_index => Output::AllProjected,
            (None, None) => Output::All,
        }),
    }
}

/// The filter (`FilterExpression`, or the legacy `QueryFilter`/`ScanFilter` named by
/// `legacy_filter`) and the output shape (`Select`, projection) of a Query or Scan, after
/// checking that every placeholder was used.
fn filter_and_output(
    input: &Input<'_>,
    params: &mut ReadParams<'_>,
    mut ectx: ExprContext<'_>,
    legacy_filter: &str,
    operator: Option<&str>,
) -> Result<(Option<shoal_expr::Condition>, Output), ApiError> {
    let filter = match params.filter_text {
        Some(t) => Some(shoal_expr::parse_condition(
            t,
            &mut ectx,
            ConditionKind::Filter,
        )?),
        None => legacy::filter(input, legacy_filter, operator)?,
    };
    let projection = params
        .projection_text
        .map(|t| shoal_expr::parse_projection(t, &mut ectx))
        .transpose()?;
    ectx.check_all_used()?;
    let output = select_output(
        params.select,
        projection,
        params.to_get.take(),
        params.index.is_some(),
    )?;
    Ok((filter, output))
}

/// How a read of an index is served: whether the full items are fetched from the table (a local
/// index whose entries lack attributes the request needs), and whether the filter then runs on
/// them instead of on the entries.
struct Plan {
    fetch: bool,
    filter_after_fetch: bool,
}

impl Plan {
    /// The filter split into the one storage applies while reading and the one applied to the
    /// fetched items afterwards (at most one of them is set).
    fn split_filter(
        &self,
        filter: Option<shoal_expr::Condition>,
    ) -> (Option<shoal_expr::Condition>, Option<shoal_expr::Condition>) {
        if self.filter_after_fetch {
            (None, filter)
        } else {
            (filter, None)
        }
    }
}

/// Decides the [`Plan`] of a read of `index` (none for the table) and checks what a global index
/// cannot serve: `ALL_ATTRIBUTES` or attributes it does not project.
fn plan(
    table: &TableMeta,
    index: Option<&IndexDef>,
    output: &Output,
    filter: Option<&shoal_expr::Condition>,
) -> Result<Plan, ApiError> {
    let none = Plan {
        fetch: false,
        filter_after_fetch: false,
    };
    let Some(ix) = index else {
        return Ok(none);
    };
    if ix.projection.kind == ProjectionType::All {
        return Ok(none);
    }
    let projected = |n: &str| ix.projects(&table.key_schema, n);
    let missing: Option<String> = match output.names() {
        None => Some(String::new()),
        Some(names) => names
            .into_iter()
            .find(|n| !projected(n))
            .map(str::to_string),
    };
    let filter_missing = filter.is_some_and(|f| f.top_level_names().iter().any(|n| !projected(n)));
    match ix.kind {
        IndexKind::Global => match missing {
            Some(n) if n.is_empty() => Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                ix.name
            ))),
            Some(n) => Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Global secondary index {} does not project the requested attribute: {n}",
                ix.name
            ))),
            None => Ok(none),
        },
        IndexKind::Local => Ok(Plan {
            fetch: missing.is_some() || filter_missing,
            filter_after_fetch: filter_missing,
        }),
    }
}

/// Turns a page read from the table or an index into the response: fetches full items from the
/// table when the plan says so (charging a read of each whole item, as DynamoDB does), applies a
/// deferred filter, shapes the items and adds `ConsumedCapacity`.
#[allow(clippy::too_many_arguments)]
async fn respond(
    ctx: &Ctx<'_>,
    table: &TableMeta,
    index: Option<&IndexDef>,
    page: Page,
    plan: &Plan,
    deferred_filter: Option<&shoal_expr::Condition>,
    output: &Output,
    params: &ReadParams<'_>,
) -> Result<Value, ApiError> {
    let read_units = capacity::read_units(page.scanned_bytes, params.consistent);
    let mut fetch_units = 0.0;
    let mut items = page.items;
    if plan.fetch {
        let mut full = Vec::with_capacity(items.len());
        for entry in &items {
            let key = table.key_schema.key_of(entry);
            let item = ctx
                .backend
                .get(table, &key, params.consistent)
                .await
                .map_err(backend_error)?;
            // An item deleted since its entry was read is gone from the result too.
            if let Some(item) = item {
                fetch_units += capacity::read_units(item_size(&item), params.consistent);
                if deferred_filter.is_none_or(|f| f.evaluate(&item)) {
                    full.push(item);
                }
            }
        }
        items = full;
    }
    let mut out = Map::new();
    let count = items.len();
    match output {
        Output::Count => {}
        Output::All | Output::AllProjected => {
            out.insert(
                "Items".into(),
                items.iter().map(item_to_json).collect::<Vec<_>>().into(),
            );
        }
        Output::Projected(p) => {
            let items: Vec<Value> = items.iter().map(|i| item_to_json(&p.apply(i))).collect();
            out.insert("Items".into(), items.into());
        }
        Output::Names(names) => {
            let items: Vec<Value> = items
                .into_iter()
                .map(|i| item_to_json(&super::item::project(i, None, Some(names))))
                .collect();
            out.insert("Items".into(), items.into());
        }
    }
    out.insert("Count".into(), json!(count));
    out.insert("ScannedCount".into(), json!(page.scanned_count));
    if let Some(lek) = &page.last_evaluated_key {
        out.insert("LastEvaluatedKey".into(), item_to_json(lek));
    }
    match index {
        None => capacity::attach(&mut out, params.capacity, &table.name, read_units),
        Some(ix) => {
            if let Some(e) = capacity::index_read_entry(
                params.capacity,
                &table.name,
                fetch_units,
                &ix.name,
                ix.kind == IndexKind::Global,
                read_units,
            ) {
                out.insert("ConsumedCapacity".into(), e);
            }
        }
    }
    Ok(Value::Object(out))
}

/// `ExclusiveStartKey` must be a full primary key of the table, plus the index's key attributes
/// when reading an index.
pub(super) fn check_start_key(
    table: &TableMeta,
    index: Option<&IndexDef>,
    key: &Item,
) -> Result<(), ApiError> {
    let invalid = || {
        ApiError::validation(
            "The provided starting key is invalid: The provided key element does not match the schema",
        )
    };
    let Some(ix) = index else {
        return table.key_schema.validate_key(key).map_err(|_| invalid());
    };
    let mut attrs: Vec<&shoal_types::key::KeyAttr> = table.key_schema.attrs().collect();
    for a in ix.key_schema.attrs() {
        if !attrs.iter().any(|b| b.name == a.name) {
            attrs.push(a);
        }
    }
    let ok = key.len() == attrs.len()
        && attrs.iter().all(|a| {
            key.get(&a.name)
                .and_then(shoal_types::AttributeValue::scalar_type)
                == Some(a.ty)
        });
    if ok { Ok(()) } else { Err(invalid()) }
}

/// A Query's key condition: `KeyConditionExpression` text or converted `KeyConditions`.
enum KeySource<'a> {
    Expression(&'a str),
    Legacy(shoal_expr::KeyCondition),
}

/// `Query`.
pub async fn query(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let mut params = read_params(input, &mut v)?;
    let key_text = input.str("KeyConditionExpression")?;
    let forward = input.bool("ScanIndexForward")?.unwrap_or(true);
    let operator = legacy::conditional_operator(input, &mut v)?;
    v.into_result()?;
    // `KeyConditions` conflicts only with `KeyConditionExpression`: DynamoDB accepts it with
    // `FilterExpression` and `ProjectionExpression` (and their placeholders).
    legacy::check_mix(input, &["KeyConditions"], &["KeyConditionExpression"])?;
    legacy::check_mix(
        input,
        &["QueryFilter", "ConditionalOperator", "AttributesToGet"],
        &[
            "KeyConditionExpression",
            "FilterExpression",
            "ProjectionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
        ],
    )?;
    // Which key condition the request gives, checked before its placeholders.
    let key_source = match (key_text, legacy::key_conditions(input)?) {
        (Some(text), _) => KeySource::Expression(text),
        (None, Some(k)) => KeySource::Legacy(k),
        (None, None) => {
            return Err(ApiError::validation(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
            ));
        }
    };
    let any_expression =
        key_text.is_some() || input.has("FilterExpression") || input.has("ProjectionExpression");
    let (names, values) = placeholders(input, any_expression, true)?;
    let mut ectx = ExprContext::new(names.as_ref(), values.as_ref());
    ectx.check_keys()?;
    let key_condition = match key_source {
        KeySource::Expression(text) => shoal_expr::parse_key_condition(text, &mut ectx)?,
        KeySource::Legacy(k) => k,
    };
    let (filter, output) = filter_and_output(input, &mut params, ectx, "QueryFilter", operator)?;

    let table = active_table(ctx, params.table).await?;
    let index = params.index(&table)?;
    let key_schema = key_schema_of(&table, index);
    let resolved = key_condition.resolve_index(&key_schema)?;
    if let Some(filter) = &filter {
        let source = if params.filter_text.is_some() {
            "Filter Expression"
        } else {
            "QueryFilter"
        };
        check_filter_keys(filter, &key_schema, source)?;
    }
    if let Some(start) = &params.exclusive_start {
        check_start_key(&table, index, start)?;
        if !resolved.matches_partition(&key_schema, start) {
            return Err(ApiError::validation(
                "The provided starting key is invalid: The provided starting key does not match the key condition",
            ));
        }
        if !resolved.matches_sort(&key_schema, start) {
            return Err(ApiError::validation(
                "The provided starting key does not match the range key predicate",
            ));
        }
    }
    let plan = plan(&table, index, &output, filter.as_ref())?;
    let (filter, deferred) = plan.split_filter(filter);
    let page = ctx
        .backend
        .query(
            &table,
            QueryRequest {
                partition_key: resolved.partition_key,
                sort_prefix: resolved.sort_prefix,
                sort: resolved.sort,
                forward,
                exclusive_start: params.exclusive_start.clone(),
                limit: params.limit,
                byte_limit: PAGE_BYTES,
                filter,
                consistent: params.consistent,
                index: index.map(|i| i.id),
            },
        )
        .await
        .map_err(backend_error)?;
    respond(
        ctx,
        &table,
        index,
        page,
        &plan,
        deferred.as_ref(),
        &output,
        &params,
    )
    .await
}

/// A Query's filter may not name the key attributes of the table or index it reads (DynamoDB's
/// rule).
/// A Query's filter may not name a key attribute ("QueryFilter does not allow key attributes",
/// LegacyConditionalParameters.QueryFilter.md); `source` names the parameter in the message.
/// The key schema a Query or Scan reads by: the index's, or the table's.
fn key_schema_of(table: &TableMeta, index: Option<&IndexDef>) -> IndexKeySchema {
    match index {
        Some(ix) => ix.key_schema.clone(),
        None => IndexKeySchema::from(&table.key_schema),
    }
}

fn check_filter_keys(
    filter: &shoal_expr::Condition,
    keys: &IndexKeySchema,
    source: &str,
) -> Result<(), ApiError> {
    for name in filter.top_level_names() {
        if keys.is_key_attr(name) {
            return Err(ApiError::validation(format!(
                "{source} can only contain non-primary key attributes: Primary key attribute: {name}"
            )));
        }
    }
    Ok(())
}

/// The hash range of parallel-scan segment `segment` of `total`: equal shares of the 64-bit space.
pub fn segment_range(segment: u32, total: u32) -> (u64, u64) {
    let total = u128::from(total.max(1));
    let seg = u128::from(segment);
    let space: u128 = 1u128 << 64;
    let start = seg * space / total;
    let end = (seg + 1) * space / total - 1;
    (start as u64, end as u64)
}

/// `Scan`.
pub async fn scan(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let mut params = read_params(input, &mut v)?;
    let segment = input.i64("Segment")?;
    let total = input.i64("TotalSegments")?;
    if let Some(s) = segment {
        if s < 0 {
            v.constraint(
                &s.to_string(),
                "segment",
                "Member must have value greater than or equal to 0",
            );
        } else if s > 999_999 {
            v.constraint(
                &s.to_string(),
                "segment",
                "Member must have value less than or equal to 999999",
            );
        }
    }
    if let Some(t) = total {
        if t < 1 {
            v.constraint(
                &t.to_string(),
                "totalSegments",
                "Member must have value greater than or equal to 1",
            );
        } else if t > 1_000_000 {
            v.constraint(
                &t.to_string(),
                "totalSegments",
                "Member must have value less than or equal to 1000000",
            );
        }
    }
    let operator = legacy::conditional_operator(input, &mut v)?;
    v.into_result()?;
    legacy::check_mix(
        input,
        &["ScanFilter", "ConditionalOperator", "AttributesToGet"],
        &[
            "FilterExpression",
            "ProjectionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
        ],
    )?;
    let (seg, total) = match (segment, total) {
        (None, None) => (0u32, 1u32),
        (Some(_), None) => {
            return Err(ApiError::validation(
                "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::validation(
                "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
            ));
        }
        (Some(s), Some(t)) => {
            if s >= t {
                return Err(ApiError::validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {t}"
                )));
            }
            (s as u32, t as u32)
        }
    };
    let any_expression = params.filter_text.is_some() || params.projection_text.is_some();
    let (names, values) = placeholders(input, any_expression, true)?;
    let ectx = ExprContext::new(names.as_ref(), values.as_ref());
    ectx.check_keys()?;
    let (filter, output) = filter_and_output(input, &mut params, ectx, "ScanFilter", operator)?;

    let table = active_table(ctx, params.table).await?;
    let index = params.index(&table)?;
    let key_schema = key_schema_of(&table, index);
    let (hash_start, hash_end) = segment_range(seg, total);
    if let Some(start) = &params.exclusive_start {
        check_start_key(&table, index, start)?;
        let h = key_schema
            .partition_value(start)
            .map(|v| partition_hash(&v))
            .unwrap_or(0);
        if h < hash_start || h > hash_end {
            return Err(ApiError::validation(
                "The provided Exclusive start key does not map to the provided Segment and TotalSegments values.",
            ));
        }
    }
    let plan = plan(&table, index, &output, filter.as_ref())?;
    let (filter, deferred) = plan.split_filter(filter);
    let page = ctx
        .backend
        .scan(
            &table,
            ScanRequest {
                hash_start,
                hash_end,
                exclusive_start: params.exclusive_start.clone(),
                limit: params.limit,
                byte_limit: PAGE_BYTES,
                filter,
                consistent: params.consistent,
                index: index.map(|i| i.id),
            },
        )
        .await
        .map_err(backend_error)?;
    respond(
        ctx,
        &table,
        index,
        page,
        &plan,
        deferred.as_ref(),
        &output,
        &params,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::segment_range;

    #[test]
    fn segments_are_disjoint_and_cover_the_hash_space() {
        for total in [1u32, 2, 3, 7, 1000, 1_000_000] {
            let mut expected_start = 0u64;
            for seg in (0..total).take(2000) {
                let (s, e) = segment_range(seg, total);
                assert_eq!(s, expected_start, "segment {seg} of {total}");
                assert!(e >= s);
                expected_start = e.wrapping_add(1);
            }
            if total <= 2000 {
                assert_eq!(segment_range(total - 1, total).1, u64::MAX);
            }
        }
    }
}

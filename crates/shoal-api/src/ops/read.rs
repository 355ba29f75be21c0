//! Query and Scan: key conditions, filters, projections, `Select`, paging and parallel scan.

use serde_json::{Map, Value, json};
use shoal_expr::{ConditionKind, ExprContext, Projection};
use shoal_storage::Page;
use shoal_types::Item;
use shoal_types::json::item_to_json;
use shoal_types::key::partition_hash;

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
    /// No secondary indexes yet: every index name is unknown, as for a table without it.
    fn reject_index(&self) -> Result<(), ApiError> {
        match self.index {
            Some(index) => Err(ApiError::validation(format!(
                "The table does not have the specified index: {index}"
            ))),
            None => Ok(()),
        }
    }
}

/// How the items of a page are returned.
enum Output {
    All,
    Count,
    Projected(Projection),
    Names(Vec<String>),
}

fn select_output(
    select: Option<&str>,
    projection: Option<Projection>,
    to_get: Option<Vec<String>>,
) -> Result<Output, ApiError> {
    let specific = projection.is_some() || to_get.is_some();
    match select {
        Some("ALL_PROJECTED_ATTRIBUTES") => Err(ApiError::validation(
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        )),
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
        _ => Ok(match (projection, to_get) {
            (Some(p), _) => Output::Projected(p),
            (None, Some(names)) => Output::Names(names),
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
    let output = select_output(params.select, projection, params.to_get.take())?;
    Ok((filter, output))
}

/// The response of a Query or Scan page.
fn page_response(table: &TableMeta, page: Page, output: &Output, params: &ReadParams<'_>) -> Value {
    let mut out = Map::new();
    let count = page.items.len();
    match output {
        Output::Count => {}
        Output::All => {
            out.insert(
                "Items".into(),
                page.items
                    .iter()
                    .map(item_to_json)
                    .collect::<Vec<_>>()
                    .into(),
            );
        }
        Output::Projected(p) => {
            let items: Vec<Value> = page
                .items
                .iter()
                .map(|i| item_to_json(&p.apply(i)))
                .collect();
            out.insert("Items".into(), items.into());
        }
        Output::Names(names) => {
            let items: Vec<Value> = page
                .items
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
    capacity::attach(
        &mut out,
        params.capacity,
        &table.name,
        capacity::read_units(page.scanned_bytes, params.consistent),
    );
    Value::Object(out)
}

/// `ExclusiveStartKey` must be a full primary key of the table.
fn check_start_key(table: &TableMeta, key: &Item) -> Result<(), ApiError> {
    table.key_schema.validate_key(key).map_err(|_| {
        ApiError::validation("The provided starting key is invalid: The provided key element does not match the schema")
    })
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
    v.into_result()?;
    params.reject_index()?;
    legacy::check_mix(
        input,
        &[
            "KeyConditions",
            "QueryFilter",
            "ConditionalOperator",
            "AttributesToGet",
        ],
        &[
            "KeyConditionExpression",
            "FilterExpression",
            "ProjectionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
        ],
    )?;
    let mut ov = Violations::default();
    let operator = legacy::conditional_operator(input, &mut ov)?;
    ov.into_result()?;
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
    let (names, values) = placeholders(input, key_text.is_some(), true)?;
    let mut ectx = ExprContext::new(names.as_ref(), values.as_ref());
    ectx.check_keys()?;
    let key_condition = match key_source {
        KeySource::Expression(text) => shoal_expr::parse_key_condition(text, &mut ectx)?,
        KeySource::Legacy(k) => k,
    };
    let (filter, output) = filter_and_output(input, &mut params, ectx, "QueryFilter", operator)?;

    let table = active_table(ctx, params.table).await?;
    let resolved = key_condition.resolve(&table.key_schema)?;
    if let Some(filter) = &filter {
        check_filter_keys(filter, &table)?;
    }
    if let Some(start) = &params.exclusive_start {
        check_start_key(&table, start)?;
        if start.get(&table.key_schema.hash.name) != Some(&resolved.partition_key) {
            return Err(ApiError::validation(
                "The provided starting key is invalid: The provided starting key does not match the key condition",
            ));
        }
        if let (Some(sort), Some(range)) = (&resolved.sort, &table.key_schema.range)
            && !start.get(&range.name).is_some_and(|sk| sort.matches(sk))
        {
            return Err(ApiError::validation(
                "The provided starting key does not match the range key predicate",
            ));
        }
    }
    let page = ctx
        .backend
        .query(
            &table,
            QueryRequest {
                partition_key: resolved.partition_key,
                sort: resolved.sort,
                forward,
                exclusive_start: params.exclusive_start.clone(),
                limit: params.limit,
                byte_limit: PAGE_BYTES,
                filter,
                consistent: params.consistent,
                index: None,
            },
        )
        .await
        .map_err(backend_error)?;
    Ok(page_response(&table, page, &output, &params))
}

/// A Query's filter may not name key attributes (DynamoDB's rule).
fn check_filter_keys(filter: &shoal_expr::Condition, table: &TableMeta) -> Result<(), ApiError> {
    let keys = [
        Some(&table.key_schema.hash),
        table.key_schema.range.as_ref(),
    ];
    for name in filter.top_level_names() {
        if keys.iter().flatten().any(|k| k.name == name) {
            return Err(ApiError::validation(format!(
                "Filter Expression can only contain non-primary key attributes: Primary key attribute: {name}"
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
    v.into_result()?;
    params.reject_index()?;
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
    let mut ov = Violations::default();
    let operator = legacy::conditional_operator(input, &mut ov)?;
    ov.into_result()?;
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
    let (hash_start, hash_end) = segment_range(seg, total);
    if let Some(start) = &params.exclusive_start {
        check_start_key(&table, start)?;
        let h = start
            .get(&table.key_schema.hash.name)
            .map(partition_hash)
            .unwrap_or(0);
        if h < hash_start || h > hash_end {
            return Err(ApiError::validation(
                "The provided Exclusive start key does not map to the provided Segment and TotalSegments values.",
            ));
        }
    }
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
                index: None,
            },
        )
        .await
        .map_err(backend_error)?;
    Ok(page_response(&table, page, &output, &params))
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

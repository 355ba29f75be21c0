//! `SELECT`: a Query when the `WHERE` clause gives the partition key with `=` (or a
//! one-attribute partition key with `IN`: one Query per value, in turn; see
//! [`super::keys::query_key`]), else a Scan, with the whole `WHERE` clause as the filter; one
//! page of at most 1 MB read (and `Limit` items evaluated). In a batch, a `SELECT` must give
//! the table's full primary key and is a GetItem.

use std::sync::Arc;

use shoal_partiql::{Projection, Select};
use shoal_types::index::{IndexDef, IndexKind, IndexStatus};
use shoal_types::index_key::IndexKeySchema;
use shoal_types::size::item_size;
use shoal_types::{AttributeValue, Item};

use super::bind_error;
use super::keys::{MANDATORY_KEY, attr_name, full_key, query_key};
use crate::backend::{QueryRequest, ScanRequest, TableMeta};
use crate::error::ApiError;
use crate::ops::Ctx;
use crate::ops::capacity::read_units;
use crate::ops::read::{PAGE_BYTES, check_start_key};
use crate::ops::validate::{active_table, backend_error};

/// One page of a `SELECT`.
pub(super) struct SelectPage {
    pub table: Arc<TableMeta>,
    /// The index read: its name and whether it is global.
    pub index: Option<(String, bool)>,
    pub items: Vec<Item>,
    pub last_key: Option<Item>,
    pub units: f64,
}

/// The options of an `ExecuteStatement` that a `SELECT` uses.
pub(super) struct ReadOptions {
    pub consistent: bool,
    pub limit: Option<usize>,
    /// Where the previous page stopped (from `NextToken`).
    pub start: Option<Item>,
}

/// The index of `FROM "table"."index"`: it must exist and be readable, and not be read
/// consistently if global (the messages of Query and Scan).
fn index_of<'t>(
    table: &'t TableMeta,
    name: Option<&str>,
    consistent: bool,
) -> Result<Option<&'t IndexDef>, ApiError> {
    let Some(name) = name else {
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
    if def.kind == IndexKind::Global && consistent {
        return Err(ApiError::validation(
            "Consistent reads are not supported on global secondary indexes",
        ));
    }
    Ok(Some(def))
}

/// The message of an `ORDER BY` that is not on the key of a Query.
pub(super) const ORDER_BY: &str = "ORDER BY is supported only on the key attributes of a query: the WHERE clause must give the partition key with an equality, and ORDER BY may name only the partition and sort keys";

/// Whether the Query reads forward: `ORDER BY` may name the partition key (one value: no
/// order) and the sort key, whose direction decides.
fn direction(s: &Select, schema: &IndexKeySchema, is_query: bool) -> Result<bool, ApiError> {
    if s.order_by.is_empty() {
        return Ok(true);
    }
    if !is_query {
        return Err(ApiError::validation(ORDER_BY));
    }
    let mut forward = None;
    for o in &s.order_by {
        let name = attr_name(&o.path).ok_or_else(|| ApiError::validation(ORDER_BY))?;
        if schema.range().iter().any(|a| a.name == name) {
            forward.get_or_insert(!o.descending);
        } else if !schema.hash().iter().any(|a| a.name == name) {
            return Err(ApiError::validation(ORDER_BY));
        }
    }
    Ok(forward.unwrap_or(true))
}

/// `item` with only the attributes and paths `projection` names.
pub(super) fn project(item: Item, projection: &Projection) -> Item {
    match projection {
        Projection::All => item,
        Projection::Paths(paths) => shoal_expr::Projection {
            paths: paths.clone(),
        }
        .apply(&item),
    }
}

/// Reads one page of `s`.
pub(super) async fn select(
    ctx: &Ctx<'_>,
    s: &Select,
    params: &[AttributeValue],
    opts: ReadOptions,
) -> Result<SelectPage, ApiError> {
    let table = active_table(ctx, &s.table).await?;
    let index = index_of(&table, s.index.as_deref(), opts.consistent)?;
    let schema = match index {
        Some(ix) => ix.key_schema.clone(),
        None => IndexKeySchema::from(&table.key_schema),
    };
    let filter = s
        .where_clause
        .as_ref()
        .map(|w| w.to_condition(params))
        .transpose()
        .map_err(bind_error)?;
    let query = s
        .where_clause
        .as_ref()
        .and_then(|w| query_key(&schema, w, params));
    let forward = direction(s, &schema, query.is_some())?;
    let Some(mut q) = query else {
        if let Some(start) = &opts.start {
            check_start_key(&table, index, start)
                .map_err(|_| ApiError::validation(super::token::INVALID))?;
        }
        let page = ctx
            .backend
            .scan(
                &table,
                ScanRequest {
                    hash_start: 0,
                    hash_end: u64::MAX,
                    exclusive_start: opts.start,
                    limit: opts.limit,
                    byte_limit: PAGE_BYTES,
                    filter,
                    consistent: opts.consistent,
                    index: index.map(|i| i.id),
                },
            )
            .await
            .map_err(backend_error)?;
        let units = read_units(page.scanned_bytes, opts.consistent);
        return Ok(page_of(
            s,
            Arc::clone(&table),
            index,
            page.items,
            page.last_evaluated_key,
            units,
        ));
    };
    // `ORDER BY` the partition key orders the partitions of an `IN`.
    if let Some(o) = s
        .order_by
        .iter()
        .find(|o| attr_name(&o.path).is_some_and(|n| schema.hash().iter().any(|a| a.name == n)))
    {
        q.partitions.sort_by(|a, b| {
            shoal_expr::compare::compare_scalars(a, b).unwrap_or(std::cmp::Ordering::Equal)
        });
        if o.descending {
            q.partitions.reverse();
        }
    }
    // Where the previous page stopped: a key of one of the partitions.
    let mut first = 0;
    if let Some(start) = &opts.start {
        let invalid = || ApiError::validation(super::token::INVALID);
        check_start_key(&table, index, start).map_err(|_| invalid())?;
        let p = schema.partition_value(start).ok_or_else(invalid)?;
        first = q
            .partitions
            .iter()
            .position(|v| *v == p)
            .ok_or_else(invalid)?;
    }
    // The partitions in turn until the page is full: `Limit` items evaluated and 1 MB read
    // count across them.
    let mut start = opts.start;
    let mut items = Vec::new();
    let mut last_key = None;
    let mut scanned = 0;
    let mut bytes = 0;
    for partition in q.partitions.into_iter().skip(first) {
        let limit = match opts.limit {
            Some(l) if scanned >= l => break,
            Some(l) => Some(l - scanned),
            None => None,
        };
        if bytes >= PAGE_BYTES {
            break;
        }
        let page = ctx
            .backend
            .query(
                &table,
                QueryRequest {
                    partition_key: partition,
                    sort_prefix: Vec::new(),
                    sort: q.sort.clone(),
                    forward,
                    exclusive_start: start.take(),
                    limit,
                    byte_limit: PAGE_BYTES - bytes,
                    filter: filter.clone(),
                    consistent: opts.consistent,
                    index: index.map(|i| i.id),
                },
            )
            .await
            .map_err(backend_error)?;
        scanned += page.scanned_count;
        bytes += page.scanned_bytes;
        items.extend(page.items);
        if page.last_evaluated_key.is_some() {
            last_key = page.last_evaluated_key;
            break;
        }
    }
    let units = read_units(bytes, opts.consistent);
    Ok(page_of(
        s,
        Arc::clone(&table),
        index,
        items,
        last_key,
        units,
    ))
}

/// The page of `items` read, projected.
fn page_of(
    s: &Select,
    table: Arc<TableMeta>,
    index: Option<&IndexDef>,
    items: Vec<Item>,
    last_key: Option<Item>,
    units: f64,
) -> SelectPage {
    let items = items
        .into_iter()
        .map(|i| project(i, &s.projection))
        .collect();
    let index = index.map(|ix| (ix.name.clone(), ix.kind == IndexKind::Global));
    SelectPage {
        table,
        index,
        items,
        last_key,
        units,
    }
}

/// The message of a batch `SELECT` of an index.
pub(super) const BATCH_INDEX: &str =
    "A SELECT in BatchExecuteStatement must read a table by its full primary key, not an index";

/// A `SELECT` in a batch: a read of the one item its full primary key names, returned if the
/// whole `WHERE` clause holds for it. Returns the table, the item and the read units.
pub(super) async fn get(
    ctx: &Ctx<'_>,
    s: &Select,
    params: &[AttributeValue],
    consistent: bool,
) -> Result<(Arc<TableMeta>, Option<Item>, f64), ApiError> {
    if s.index.is_some() {
        return Err(ApiError::validation(BATCH_INDEX));
    }
    let table = active_table(ctx, &s.table).await?;
    let where_ = s
        .where_clause
        .as_ref()
        .ok_or_else(|| ApiError::validation(MANDATORY_KEY))?;
    let keyed = full_key(&table.key_schema, where_, params)?;
    let filter = where_.to_condition(params).map_err(bind_error)?;
    let item = ctx
        .backend
        .get(&table, &keyed.key, consistent)
        .await
        .map_err(backend_error)?;
    let units = read_units(item.as_ref().map(item_size).unwrap_or(0), consistent);
    let item = item
        .filter(|i| filter.evaluate(i))
        .map(|i| project(i, &s.projection));
    Ok((table, item, units))
}

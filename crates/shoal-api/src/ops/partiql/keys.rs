//! What a `WHERE` clause says about the key: the full primary key of a write (or of a batch
//! `SELECT`), or the partition key and sort-key condition that turn a `SELECT` into a Query.

use shoal_expr::{CompareOp, Condition, DocPath, PathElem, SortKeyCondition};
use shoal_partiql::{Expr, Function, Value};
use shoal_types::index_key::{IndexKeySchema, partition_key_value};
use shoal_types::key::{KeyAttr, KeySchema};
use shoal_types::{AttributeValue, Item};

use super::bind_error;
use crate::error::ApiError;

/// DynamoDB's message for a write (or a batch read) whose `WHERE` clause does not give every
/// key attribute with `=`.
pub(super) const MANDATORY_KEY: &str =
    "Where clause does not contain a mandatory equality on all key attributes";

/// The attribute name of a path that is one top-level attribute.
pub(super) fn attr_name(p: &DocPath) -> Option<&str> {
    match p.elems.as_slice() {
        [PathElem::Name(n)] => Some(n),
        _ => None,
    }
}

/// `name = value` (either way round).
fn equality(e: &Expr) -> Option<(&str, &Value)> {
    let Expr::Compare {
        op: CompareOp::Eq,
        left,
        right,
    } = e
    else {
        return None;
    };
    match (&**left, &**right) {
        (Expr::Path(p), Expr::Value(v)) | (Expr::Value(v), Expr::Path(p)) => {
            Some((attr_name(p)?, v))
        }
        _ => None,
    }
}

/// A `WHERE` clause split into the primary key it gives and the other conjuncts.
pub(super) struct KeyedWhere<'e> {
    pub key: Item,
    /// The conjuncts that are not the key's equalities, in order.
    pub rest: Vec<&'e Expr>,
}

/// The full primary key of `schema` from the top-level `attr = value` conjuncts of `where_`
/// (the first one per key attribute), and what remains.
///
/// # Errors
/// [`MANDATORY_KEY`] when a key attribute has no equality; the type errors of a key (a value
/// of the wrong type); binding errors.
pub(super) fn full_key<'e>(
    schema: &KeySchema,
    where_: &'e Expr,
    params: &[AttributeValue],
) -> Result<KeyedWhere<'e>, ApiError> {
    let mut key = Item::new();
    let mut rest = Vec::new();
    for c in where_.conjuncts() {
        match equality(c) {
            Some((name, v)) if schema.is_key_attr(name) && !key.contains_key(name) => {
                key.insert(name.to_string(), v.bind(params).map_err(bind_error)?);
            }
            _ => rest.push(c),
        }
    }
    if key.len() != schema.attrs().count() {
        return Err(ApiError::validation(MANDATORY_KEY));
    }
    schema.validate_key(&key)?;
    Ok(KeyedWhere { key, rest })
}

/// The conjuncts `rest` as one condition (`None` when there are none).
pub(super) fn condition_of(
    rest: &[&Expr],
    params: &[AttributeValue],
) -> Result<Option<Condition>, ApiError> {
    if rest.is_empty() {
        return Ok(None);
    }
    let conds = rest
        .iter()
        .map(|e| e.to_condition(params))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bind_error)?;
    Ok(Some(Condition::and(conds)))
}

/// What makes a `SELECT` a Query (one per partition): the partition key values and a
/// sort-key condition.
pub(super) struct QueryKey {
    /// One value for `=`, the distinct values of an `IN` (possibly none).
    pub partitions: Vec<AttributeValue>,
    pub sort: Option<SortKeyCondition>,
}

/// The bound value of `e` when it is a literal or parameter of the key attribute's type.
fn key_value(e: &Expr, attr: &KeyAttr, params: &[AttributeValue]) -> Option<AttributeValue> {
    let Expr::Value(v) = e else {
        return None;
    };
    v.bind(params)
        .ok()
        .filter(|b| b.scalar_type() == Some(attr.ty))
}

/// Whether `e` is the path of `attr`.
fn is_attr(e: &Expr, attr: &KeyAttr) -> bool {
    matches!(e, Expr::Path(p) if attr_name(p) == Some(attr.name.as_str()))
}

/// The Query a `WHERE` clause allows on a table or index with key `schema`: every partition
/// attribute given by a top-level `=` with a value of its type, or else a one-attribute
/// partition key given by a top-level `IN` ([`in_partitions`]); the first top-level conjunct
/// on the sort attribute that maps to a key condition (`=`, `<`, `<=`, `>`, `>=`, `BETWEEN`,
/// `begins_with`) narrows it. `None`: the `SELECT` is a Scan. The whole `WHERE` clause still
/// filters what the Query reads, so the conjuncts used here need not be removed from it.
pub(super) fn query_key(
    schema: &IndexKeySchema,
    where_: &Expr,
    params: &[AttributeValue],
) -> Option<QueryKey> {
    let conjuncts = where_.conjuncts();
    let partitions = match equal_partition(schema, conjuncts, params) {
        Some(p) => vec![p],
        None => in_partitions(schema, where_, params)?,
    };
    let sort = match schema.range() {
        [attr] => conjuncts
            .iter()
            .find_map(|c| sort_condition(c, attr, params)),
        _ => None,
    };
    Some(QueryKey { partitions, sort })
}

/// The partition key value every partition attribute's top-level `=` gives.
fn equal_partition(
    schema: &IndexKeySchema,
    conjuncts: &[Expr],
    params: &[AttributeValue],
) -> Option<AttributeValue> {
    let mut values = Vec::new();
    for attr in schema.hash() {
        let v = conjuncts.iter().find_map(|c| match c {
            Expr::Compare {
                op: CompareOp::Eq,
                left,
                right,
            } if is_attr(left, attr) => key_value(right, attr, params),
            Expr::Compare {
                op: CompareOp::Eq,
                left,
                right,
            } if is_attr(right, attr) => key_value(left, attr, params),
            _ => None,
        })?;
        values.push(v);
    }
    if values.len() == 1 {
        values.pop()
    } else {
        Some(partition_key_value(values))
    }
}

fn sort_condition(c: &Expr, attr: &KeyAttr, params: &[AttributeValue]) -> Option<SortKeyCondition> {
    let of = |op: CompareOp, v: AttributeValue| match op {
        CompareOp::Eq => Some(SortKeyCondition::Eq(v)),
        CompareOp::Lt => Some(SortKeyCondition::Lt(v)),
        CompareOp::Le => Some(SortKeyCondition::Le(v)),
        CompareOp::Gt => Some(SortKeyCondition::Gt(v)),
        CompareOp::Ge => Some(SortKeyCondition::Ge(v)),
        CompareOp::Ne => None,
    };
    match c {
        Expr::Compare { op, left, right } if is_attr(left, attr) => {
            of(*op, key_value(right, attr, params)?)
        }
        Expr::Compare { op, left, right } if is_attr(right, attr) => {
            let flipped = match op {
                CompareOp::Lt => CompareOp::Gt,
                CompareOp::Le => CompareOp::Ge,
                CompareOp::Gt => CompareOp::Lt,
                CompareOp::Ge => CompareOp::Le,
                other => *other,
            };
            of(flipped, key_value(left, attr, params)?)
        }
        Expr::Between { value, low, high } if is_attr(value, attr) => {
            let low = key_value(low, attr, params)?;
            let high = key_value(high, attr, params)?;
            // A reversed range matches nothing; the filter says so without a key condition.
            (shoal_expr::compare::compare_scalars(&low, &high) != Some(std::cmp::Ordering::Greater))
                .then_some(SortKeyCondition::Between(low, high))
        }
        Expr::Call {
            func: Function::BeginsWith,
            args,
        } => match args.as_slice() {
            [p, v] if is_attr(p, attr) => {
                let v = key_value(v, attr, params)?;
                matches!(v, AttributeValue::S(_) | AttributeValue::B(_))
                    .then_some(SortKeyCondition::BeginsWith(v))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The partition-key values a `WHERE` clause gives with top-level `=` or `IN` on the
/// attributes named `hash` (the `dynamodb:LeadingKeys` of a statement).
pub(crate) fn partition_values(
    hash: &[&str],
    where_: &Expr,
    params: &[AttributeValue],
) -> Vec<AttributeValue> {
    let mut out = Vec::new();
    for c in where_.conjuncts() {
        if let Some((name, v)) = equality(c) {
            if hash.contains(&name) {
                out.extend(v.bind(params).ok());
            }
        } else if let Expr::In { value, list } = c
            && let Expr::Path(p) = &**value
            && attr_name(p).is_some_and(|n| hash.contains(&n))
        {
            out.extend(list.iter().filter_map(|v| v.bind(params).ok()));
        }
    }
    out
}

/// Most partition-key values an `IN` reads by Query (DynamoDB's limit on hash-key values in
/// `IN`); a longer list scans.
pub(super) const MAX_IN_PARTITIONS: usize = 50;

/// The partitions a `WHERE` clause reads when its partition key is given by a top-level
/// `IN` (a table or index with a one-attribute partition key): the distinct values of the
/// key's type, in the order given. `None` when there is no such `IN` or it lists more than
/// [`MAX_IN_PARTITIONS`] values.
pub(super) fn in_partitions(
    schema: &IndexKeySchema,
    where_: &Expr,
    params: &[AttributeValue],
) -> Option<Vec<AttributeValue>> {
    let [attr] = schema.hash() else {
        return None;
    };
    let list = where_.conjuncts().iter().find_map(|c| match c {
        Expr::In { value, list } if is_attr(value, attr) => Some(list),
        _ => None,
    })?;
    if list.len() > MAX_IN_PARTITIONS {
        return None;
    }
    let mut out: Vec<AttributeValue> = Vec::new();
    for v in list {
        let Ok(b) = v.bind(params) else {
            return None;
        };
        if b.scalar_type() == Some(attr.ty) && !out.contains(&b) {
            out.push(b);
        }
    }
    Some(out)
}

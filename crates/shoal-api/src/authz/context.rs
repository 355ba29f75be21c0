//! The condition keys of one target:
//!
//! - `aws:SourceIp`: the client's address (the TCP peer).
//! - `aws:ResourceTag/<key>`: the table's tags (for an index, its table's).
//! - `dynamodb:Select`: `GetItem` and `BatchGetItem` `SPECIFIC_ATTRIBUTES` with a projection, else
//!   `ALL_ATTRIBUTES`; `Query`/`Scan` their `Select`, else `SPECIFIC_ATTRIBUTES` with a projection,
//!   `ALL_PROJECTED_ATTRIBUTES` on an index, `ALL_ATTRIBUTES` otherwise.
//! - `dynamodb:ReturnValues`: `PutItem`, `UpdateItem`, `DeleteItem`: the request's, else `NONE`;
//!   a transaction's write actions: their `ReturnValuesOnConditionCheckFailure`, else `NONE`.
//! - `dynamodb:ReturnConsumedCapacity`: item and batch operations: the request's, else `NONE`.
//! - `dynamodb:LeadingKeys`: the partition-key values the request reads or writes: `Key` or
//!   `Item`, every key of a batch entry, a `Query`'s partition-key equality (the index's
//!   partition key on an index), a PartiQL statement's top-level partition-key `=` and `IN` or
//!   `INSERT`ed item ([`statement_keys`]). Absent for `Scan` and a PartiQL `SELECT` that scans.
//!   Strings as they are, numbers as sent, binaries in base64.
//! - `dynamodb:Attributes`: the top-level attribute names the request names: keys, items,
//!   projections and `AttributesToGet`, condition and filter expressions, the attributes an
//!   update writes, the legacy `Expected`, `AttributeUpdates`, `KeyConditions`, `QueryFilter`,
//!   `ScanFilter`; for a PartiQL statement, its projection, `WHERE` clause, `INSERT`ed item and
//!   the attributes an `UPDATE` sets or removes.
//! - `dynamodb:EnclosingOperation`: `TransactWriteItems` or `TransactGetItems` for the actions of
//!   a transaction (which are otherwise checked as the single-item operations they perform: a
//!   `ConditionCheck` reads its condition keys as a `DeleteItem` of its `Key` would), and
//!   `ExecuteTransaction` for its statements.
//!
//! `LeadingKeys` and `Attributes` are computed only when a policy in force looks at them.

use std::collections::BTreeSet;

use serde_json::Value;
use shoal_expr::{ConditionKind, ExprContext, SortKeyCondition};
use shoal_policy::Context;

use super::Target;
use crate::backend::TableMeta;
use crate::error::ApiError;
use crate::input::Input;
use crate::ops::{Ctx, Operation};

/// Where in the request a target's item-level keys come from.
pub(crate) enum Part {
    /// Nowhere: a table or account operation.
    Whole,
    /// The request's own members (single-item operations, `Query`, `Scan`).
    Request,
    /// The `RequestItems` entry of this table name.
    Batch(String),
    /// A PartiQL statement, with what it names ([`statement_keys`]).
    Statement(StatementKeys),
    /// Entry `index` of a transaction's `TransactItems`, its action in `member` (`Put`,
    /// `Update`, `Delete`, `ConditionCheck`, `Get`).
    Transact { index: usize, member: &'static str },
}

/// The context of `target`; `needs(key)` says whether a policy in force reads a costly key.
///
/// # Errors
/// `ValidationException` when an expression needed for `dynamodb:Attributes` or
/// `dynamodb:LeadingKeys` does not parse (the operation refuses it too).
pub(crate) fn build(
    ctx: &Ctx<'_>,
    op: Operation,
    body: &Value,
    target: &Target,
    needs: &dyn Fn(&str) -> bool,
) -> Result<Context, ApiError> {
    let mut c = Context::new();
    c.set("aws:SourceIp", ctx.peer.to_string());
    if let Some(meta) = &target.table
        && needs(shoal_policy::RESOURCE_TAG_PREFIX)
    {
        for (k, v) in &meta.tags {
            c.set(&format!("aws:ResourceTag/{k}"), v.clone());
        }
    }
    let src = match &target.part {
        Part::Whole => return Ok(c),
        Part::Statement(keys) => {
            if op == Operation::ExecuteTransaction {
                c.set("dynamodb:EnclosingOperation", op.name());
            }
            c.set(
                "dynamodb:ReturnConsumedCapacity",
                body.get("ReturnConsumedCapacity")
                    .and_then(Value::as_str)
                    .unwrap_or("NONE"),
            );
            if !keys.leading_keys.is_empty() {
                c.set_all("dynamodb:LeadingKeys", keys.leading_keys.clone());
            }
            if let Some(full) = keys.full_table_scan {
                c.set("dynamodb:FullTableScan", full.to_string());
            }
            if needs("dynamodb:attributes") {
                c.set_all("dynamodb:Attributes", keys.attributes.clone());
            }
            return Ok(c);
        }
        Part::Request => body,
        Part::Batch(name) => match body.get("RequestItems").and_then(|r| r.get(name)) {
            Some(v) => v,
            None => return Ok(c),
        },
        Part::Transact { index, member } => {
            c.set("dynamodb:EnclosingOperation", op.name());
            match body
                .get("TransactItems")
                .and_then(|l| l.get(*index))
                .and_then(|e| e.get(*member))
            {
                Some(v) => v,
                None => return Ok(c),
            }
        }
    };
    // A transaction's action is checked as the single-item operation it performs.
    let (op, transact) = match &target.part {
        Part::Transact { member, .. } => (
            match *member {
                "Put" => Operation::PutItem,
                "Update" => Operation::UpdateItem,
                "Get" => Operation::GetItem,
                _ => Operation::DeleteItem,
            },
            true,
        ),
        _ => (op, false),
    };
    let text = |name: &str| src.get(name).and_then(Value::as_str);
    // `null` members are absent, as the operations read them.
    let given = |name: &str| src.get(name).is_some_and(|v| !v.is_null());
    let projected = given("ProjectionExpression") || given("AttributesToGet");
    match op {
        Operation::GetItem | Operation::BatchGetItem => c.set(
            "dynamodb:Select",
            if projected {
                "SPECIFIC_ATTRIBUTES"
            } else {
                "ALL_ATTRIBUTES"
            },
        ),
        Operation::Query | Operation::Scan => {
            let default = if projected {
                "SPECIFIC_ATTRIBUTES"
            } else if given("IndexName") {
                "ALL_PROJECTED_ATTRIBUTES"
            } else {
                "ALL_ATTRIBUTES"
            };
            c.set("dynamodb:Select", text("Select").unwrap_or(default));
        }
        Operation::PutItem | Operation::UpdateItem | Operation::DeleteItem => {
            let member = if transact {
                "ReturnValuesOnConditionCheckFailure"
            } else {
                "ReturnValues"
            };
            c.set("dynamodb:ReturnValues", text(member).unwrap_or("NONE"));
        }
        _ => {}
    }
    c.set(
        "dynamodb:ReturnConsumedCapacity",
        body.get("ReturnConsumedCapacity")
            .and_then(Value::as_str)
            .unwrap_or("NONE"),
    );
    if needs("dynamodb:leadingkeys")
        && let Some(meta) = &target.table
    {
        c.set_all("dynamodb:LeadingKeys", leading_keys(op, src, meta)?);
    }
    if needs("dynamodb:attributes") {
        c.set_all("dynamodb:Attributes", attributes(op, src)?);
    }
    Ok(c)
}

/// The text of a key value: a string as it is, a number as sent, a binary in base64.
fn key_text(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    ["S", "N", "B"]
        .iter()
        .find_map(|t| obj.get(*t).and_then(Value::as_str).map(str::to_owned))
}

/// The condition keys of a PartiQL statement that come from its text and parameters.
#[derive(Default)]
pub(crate) struct StatementKeys {
    /// `dynamodb:LeadingKeys`: the partition-key values its `WHERE` clause gives with a
    /// top-level `=` or `IN` (the index's partition key for a `SELECT` of an index), or the `INSERT`ed
    /// item's. Empty (the key is then absent, as for a Scan) when it gives none: a `SELECT` that
    /// scans.
    pub leading_keys: Vec<String>,
    /// `dynamodb:Attributes`: the top-level attributes it names: the projection, the `WHERE`
    /// clause, the `INSERT`ed item, the attributes an `UPDATE` sets or removes.
    pub attributes: Vec<String>,
    /// `dynamodb:FullTableScan` of a `SELECT`: whether it reads the whole table or index (no
    /// partition key given), which `LeadingKeys` cannot confine (`ForAllValues` over no values
    /// holds, as in IAM): a policy denies it with `Bool`. `None` for other statements.
    pub full_table_scan: Option<bool>,
}

/// The [`StatementKeys`] of `stmt` on table `meta`; `src` holds its `Parameters`. Parameters
/// that do not bind leave out what depends on them (the operation refuses them anyway).
pub(crate) fn statement_keys(
    stmt: &shoal_partiql::Statement,
    src: &Value,
    meta: &TableMeta,
) -> StatementKeys {
    use shoal_partiql::{Projection, Statement, UpdateAction};
    let params: Vec<shoal_types::AttributeValue> = src
        .get("Parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| shoal_types::json::attribute_value_from_json(p).ok())
        .collect();
    let hash = meta.key_schema.hash.name.as_str();
    let mut attributes = BTreeSet::new();
    let values = match stmt {
        Statement::Insert(i) => {
            attributes.extend(i.item.iter().map(|(k, _)| k.clone()));
            i.bind_item(&params)
                .ok()
                .and_then(|mut item| item.remove(hash))
                .into_iter()
                .collect()
        }
        other => {
            let hash_names: Vec<&str> = match other.index() {
                Some(ix) => meta
                    .index(ix)
                    .map(|d| {
                        d.key_schema
                            .hash()
                            .iter()
                            .map(|k| k.name.as_str())
                            .collect()
                    })
                    .unwrap_or_default(),
                None => vec![hash],
            };
            match other {
                Statement::Select(s) | Statement::Exists(s) | Statement::NotExists(s) => {
                    if let Projection::Paths(paths) = &s.projection {
                        attributes.extend(paths.iter().map(|p| p.top().to_string()));
                    }
                }
                Statement::Update(u) => {
                    for a in &u.actions {
                        let path = match a {
                            UpdateAction::Set { path, .. } | UpdateAction::Remove(path) => path,
                        };
                        attributes.insert(path.top().to_string());
                    }
                }
                _ => {}
            }
            match other.where_clause() {
                Some(w) => {
                    if let Ok(c) = w.to_condition(&params) {
                        attributes.extend(c.top_level_names().into_iter().map(str::to_owned));
                    }
                    crate::ops::partiql::partition_values(&hash_names, w, &params)
                }
                None => Vec::new(),
            }
        }
    };
    let leading_keys: Vec<String> = values
        .iter()
        .filter_map(|v| key_text(&shoal_types::json::attribute_value_to_json(v)))
        .collect();
    let full_table_scan = matches!(
        stmt,
        Statement::Select(_) | Statement::Exists(_) | Statement::NotExists(_)
    )
    .then_some(leading_keys.is_empty());
    StatementKeys {
        leading_keys,
        attributes: attributes.into_iter().collect(),
        full_table_scan,
    }
}

fn leading_keys(op: Operation, src: &Value, meta: &TableMeta) -> Result<Vec<String>, ApiError> {
    let hash = meta.key_schema.hash.name.as_str();
    let of_item = |item: Option<&Value>| item.and_then(|i| i.get(hash)).and_then(key_text);
    let mut out = Vec::new();
    match op {
        Operation::GetItem | Operation::DeleteItem | Operation::UpdateItem => {
            out.extend(of_item(src.get("Key")));
        }
        Operation::PutItem => out.extend(of_item(src.get("Item"))),
        Operation::BatchGetItem => {
            for key in src
                .get("Keys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.extend(of_item(Some(key)));
            }
        }
        Operation::BatchWriteItem => {
            for req in src.as_array().into_iter().flatten() {
                out.extend(of_item(req.get("PutRequest").and_then(|p| p.get("Item"))));
                out.extend(of_item(req.get("DeleteRequest").and_then(|d| d.get("Key"))));
            }
        }
        Operation::Query => {
            let hash_names: Vec<String> = match src.get("IndexName").and_then(Value::as_str) {
                Some(index) => match meta.index(index) {
                    Some(def) => def
                        .key_schema
                        .hash()
                        .iter()
                        .map(|k| k.name.clone())
                        .collect(),
                    None => Vec::new(),
                },
                None => vec![hash.to_string()],
            };
            let input = Input::new(src)?;
            if let Some(text) = input.str("KeyConditionExpression")? {
                let names = input.string_map("ExpressionAttributeNames")?;
                let values = input.value_map("ExpressionAttributeValues")?;
                let mut ectx = ExprContext::new(names.as_ref(), values.as_ref());
                let kc = shoal_expr::parse_key_condition(text, &mut ectx)?;
                for part in kc.parts {
                    if let SortKeyCondition::Eq(v) = &part.cond
                        && hash_names.contains(&part.name)
                    {
                        out.extend(key_text(&shoal_types::json::attribute_value_to_json(v)));
                    }
                }
            }
            if let Some(conds) = src.get("KeyConditions").and_then(Value::as_object) {
                for (name, c) in conds {
                    if hash_names.contains(name)
                        && c.get("ComparisonOperator").and_then(Value::as_str) == Some("EQ")
                    {
                        let first = c
                            .get("AttributeValueList")
                            .and_then(Value::as_array)
                            .and_then(|l| l.first());
                        out.extend(first.and_then(key_text));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(out)
}

fn attributes(op: Operation, src: &Value) -> Result<Vec<String>, ApiError> {
    let mut out = BTreeSet::new();
    let keys_of = |v: Option<&Value>, out: &mut BTreeSet<String>| {
        if let Some(obj) = v.and_then(Value::as_object) {
            out.extend(obj.keys().cloned());
        }
    };
    if op == Operation::BatchWriteItem {
        for req in src.as_array().into_iter().flatten() {
            keys_of(req.get("PutRequest").and_then(|p| p.get("Item")), &mut out);
            keys_of(
                req.get("DeleteRequest").and_then(|d| d.get("Key")),
                &mut out,
            );
        }
        return Ok(out.into_iter().collect());
    }
    keys_of(src.get("Key"), &mut out);
    keys_of(src.get("Item"), &mut out);
    for key in src
        .get("Keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        keys_of(Some(key), &mut out);
    }
    for legacy in [
        "Expected",
        "AttributeUpdates",
        "KeyConditions",
        "QueryFilter",
        "ScanFilter",
    ] {
        keys_of(src.get(legacy), &mut out);
    }
    for a in src
        .get("AttributesToGet")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.extend(a.as_str().map(str::to_owned));
    }
    let input = Input::new(src)?;
    let names = input.string_map("ExpressionAttributeNames")?;
    let values = input.value_map("ExpressionAttributeValues")?;
    let mut ectx = ExprContext::new(names.as_ref(), values.as_ref());
    if let Some(t) = input.str("ProjectionExpression")? {
        let p = shoal_expr::parse_projection(t, &mut ectx)?;
        out.extend(p.top_level_names().map(str::to_owned));
    }
    if let Some(t) = input.str("KeyConditionExpression")? {
        let kc = shoal_expr::parse_key_condition(t, &mut ectx)?;
        out.extend(kc.parts.into_iter().map(|p| p.name));
    }
    for (member, kind) in [
        ("ConditionExpression", ConditionKind::Condition),
        ("FilterExpression", ConditionKind::Filter),
    ] {
        if let Some(t) = input.str(member)? {
            let c = shoal_expr::parse_condition(t, &mut ectx, kind)?;
            out.extend(c.top_level_names().into_iter().map(str::to_owned));
        }
    }
    if let Some(t) = input.str("UpdateExpression")? {
        let u = shoal_expr::parse_update(t, &mut ectx)?;
        out.extend(u.top_level_names().into_iter().map(str::to_owned));
    }
    Ok(out.into_iter().collect())
}

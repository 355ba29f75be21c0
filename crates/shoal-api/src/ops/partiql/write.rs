//! `INSERT`, `UPDATE` and `DELETE`: each one conditional write of one item, through the same
//! `Command`s as PutItem, UpdateItem and DeleteItem.
//!
//! - `INSERT`: a put conditional on `attribute_not_exists(<partition key>)`; a failed check is
//!   `DuplicateItemException`.
//! - `UPDATE`: the `WHERE` clause gives the full key with `=`; the other conjuncts, and the
//!   item's existence, are the condition. `SET`/`REMOVE` (and `set_add`/`set_delete` as `ADD`
//!   and `DELETE`) become an update expression with placeholders, parsed by shoal-expr, so it
//!   is checked as an `UpdateExpression` is.
//! - `DELETE`: the full key likewise; the other conjuncts must hold if the item exists (a
//!   missing item is no error).
//!
//! Each statement is first planned (`plan_insert`, `plan_update`, `plan_delete`: validated and
//! turned into a [`TxOp`] on its table), then run as one `Command`; `ExecuteTransaction` sends
//! the same plans as the actions of one transaction.

use std::collections::HashMap;
use std::sync::Arc;

use shoal_expr::{Condition, DocPath, ExprContext, PathElem};
use shoal_partiql::{ArithOp, Delete, Expr, Function, Insert, Returning, Update, UpdateAction};
use shoal_storage::{ApplyError, Command, TxOp};
use shoal_types::size::{MAX_ITEM_SIZE, item_size};
use shoal_types::{AttributeValue, Item};

use super::bind_error;
use super::keys::{condition_of, full_key};
use crate::backend::{DataError, TableMeta};
use crate::error::{ApiError, ErrorKind};
use crate::ops::Ctx;
use crate::ops::capacity::{WriteCharge, write_units};
use crate::ops::validate::{active_table, backend_error};

/// The outcome of one write statement.
pub(super) struct Written {
    pub table: Arc<TableMeta>,
    /// What `RETURNING` asked for, when it is not empty.
    pub item: Option<Item>,
    /// The table's write units (without its indexes').
    pub table_units: f64,
    /// The item before and after: what the index writes are charged from.
    old: Option<Item>,
    new: Option<Item>,
}

impl Written {
    /// Adds this write's units (table and indexes) to `charge`.
    pub fn charge(&self, charge: &mut WriteCharge) {
        charge.add(
            &self.table,
            self.table_units,
            self.old.as_ref(),
            self.new.as_ref(),
        );
    }
}

/// The error of a failed write: `ConditionalCheckFailedException` (with the item when
/// `ReturnValuesOnConditionCheckFailure` is `ALL_OLD`), else as for the item operations.
fn write_error(e: DataError, all_old_on_failure: bool) -> ApiError {
    match e {
        DataError::Apply(ApplyError::ConditionalCheckFailed { item }) => {
            let mut err = ApiError::new(
                ErrorKind::ConditionalCheckFailed,
                "The conditional request failed",
            );
            if all_old_on_failure && let Some(item) = item {
                let mut extra = serde_json::Map::new();
                extra.insert("Item".into(), shoal_types::json::item_to_json(&item));
                err.extra = Some(extra);
            }
            err
        }
        other => backend_error(other),
    }
}

fn written(table: Arc<TableMeta>, applied: shoal_storage::Applied, item: Option<Item>) -> Written {
    let size = applied
        .old
        .as_ref()
        .map(item_size)
        .unwrap_or(0)
        .max(applied.new.as_ref().map(item_size).unwrap_or(0));
    Written {
        table,
        item: item.filter(|i| !i.is_empty()),
        table_units: write_units(size),
        old: applied.old,
        new: applied.new,
    }
}

/// A write statement turned into the action it performs on one item: what ExecuteStatement
/// runs as a single conditional write and ExecuteTransaction as one action of a transaction.
pub(super) struct Planned {
    pub table: Arc<TableMeta>,
    pub op: TxOp,
}

impl Planned {
    /// The single-item command of a put, update or delete.
    fn command(self) -> Result<Command, ApiError> {
        Ok(match self.op {
            TxOp::Put { item, condition } => Command::Put { item, condition },
            TxOp::Update {
                key,
                update,
                condition,
            } => Command::Update {
                key,
                update,
                condition,
            },
            TxOp::Delete { key, condition } => Command::Delete { key, condition },
            TxOp::Check { .. } => {
                return Err(ApiError::internal(
                    "a condition check run as a single write",
                ));
            }
        })
    }
}

/// `INSERT INTO table VALUE {...}`: a put of the item if no item has its key.
///
/// # Errors
/// The item's: not a valid item of the table (key missing or of the wrong type, an index key
/// of the wrong type), over 400 KB; binding errors; an unknown table.
pub(super) async fn plan_insert(
    ctx: &Ctx<'_>,
    s: &Insert,
    params: &[AttributeValue],
) -> Result<Planned, ApiError> {
    let item = s.bind_item(params).map_err(bind_error)?;
    let table = active_table(ctx, &s.table).await?;
    table.key_schema.validate_item(&item)?;
    crate::ops::index::check_index_keys(&table, &item)?;
    if item_size(&item) > MAX_ITEM_SIZE {
        return Err(ApiError::validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    let condition = Condition::AttributeNotExists(DocPath::attr(&table.key_schema.hash.name));
    Ok(Planned {
        table,
        op: TxOp::Put {
            item,
            condition: Some(condition),
        },
    })
}

/// `INSERT INTO table VALUE {...}`.
pub(super) async fn insert(
    ctx: &Ctx<'_>,
    s: &Insert,
    params: &[AttributeValue],
) -> Result<Written, ApiError> {
    let planned = plan_insert(ctx, s, params).await?;
    let table = Arc::clone(&planned.table);
    let applied = ctx
        .backend
        .write(&table, planned.command()?)
        .await
        .map_err(|e| match e {
            DataError::Apply(ApplyError::ConditionalCheckFailed { .. }) => duplicate_item(),
            other => backend_error(other),
        })?;
    Ok(written(table, applied, None))
}

/// `DuplicateItemException`: an `INSERT` of a key that exists.
pub(super) fn duplicate_item() -> ApiError {
    ApiError::new(ErrorKind::DuplicateItem, DUPLICATE_ITEM)
}

/// The message of an `INSERT` of a key that exists.
pub(crate) const DUPLICATE_ITEM: &str = "Duplicate primary key exists in table";

/// `DELETE FROM table WHERE ...`: a delete of the item the full key names, if the other
/// conjuncts hold (a missing item is no error).
///
/// # Errors
/// [`super::keys::MANDATORY_KEY`] and the key's type errors; binding errors; an unknown table.
pub(super) async fn plan_delete(
    ctx: &Ctx<'_>,
    s: &Delete,
    params: &[AttributeValue],
) -> Result<Planned, ApiError> {
    let table = active_table(ctx, &s.table).await?;
    let keyed = full_key(&table.key_schema, &s.where_clause, params)?;
    let condition = condition_of(&keyed.rest, params)?.map(|rest| {
        Condition::or(vec![
            Condition::AttributeNotExists(DocPath::attr(&table.key_schema.hash.name)),
            rest,
        ])
    });
    Ok(Planned {
        table,
        op: TxOp::Delete {
            key: keyed.key,
            condition,
        },
    })
}

/// `DELETE FROM table WHERE ... [RETURNING ALL OLD *]`.
pub(super) async fn delete(
    ctx: &Ctx<'_>,
    s: &Delete,
    params: &[AttributeValue],
    all_old_on_failure: bool,
) -> Result<Written, ApiError> {
    let planned = plan_delete(ctx, s, params).await?;
    let table = Arc::clone(&planned.table);
    let applied = ctx
        .backend
        .write(&table, planned.command()?)
        .await
        .map_err(|e| write_error(e, all_old_on_failure))?;
    let returned = s.returning.and_then(|_| applied.old.clone());
    Ok(written(table, applied, returned))
}

/// `UPDATE table SET ... REMOVE ... WHERE ...`: an update of the item the full key names, if
/// it exists and the other conjuncts hold.
///
/// # Errors
/// [`super::keys::MANDATORY_KEY`] and the key's type errors; an update that is not a valid
/// update expression or writes a key attribute; binding errors; an unknown table.
pub(super) async fn plan_update(
    ctx: &Ctx<'_>,
    s: &Update,
    params: &[AttributeValue],
) -> Result<Planned, ApiError> {
    let table = active_table(ctx, &s.table).await?;
    let keyed = full_key(&table.key_schema, &s.where_clause, params)?;
    let update = update_of(&s.actions, params)?;
    for name in update.top_level_names() {
        if table.key_schema.is_key_attr(name) {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part of the key"
            )));
        }
    }
    let exists = Condition::AttributeExists(DocPath::attr(&table.key_schema.hash.name));
    let condition = match condition_of(&keyed.rest, params)? {
        Some(rest) => Condition::and(vec![exists, rest]),
        None => exists,
    };
    Ok(Planned {
        table,
        op: TxOp::Update {
            key: keyed.key,
            update,
            condition: Some(condition),
        },
    })
}

/// `UPDATE table SET ... REMOVE ... WHERE ... [RETURNING ...]`.
pub(super) async fn update(
    ctx: &Ctx<'_>,
    s: &Update,
    params: &[AttributeValue],
    all_old_on_failure: bool,
) -> Result<Written, ApiError> {
    let planned = plan_update(ctx, s, params).await?;
    let table = Arc::clone(&planned.table);
    let updated_paths = match &planned.op {
        TxOp::Update { update, .. } => update.updated_paths(),
        _ => return Err(ApiError::internal("an UPDATE planned as another write")),
    };
    let applied = ctx
        .backend
        .write(&table, planned.command()?)
        .await
        .map_err(|e| write_error(e, all_old_on_failure))?;
    let returned = match s.returning {
        None => None,
        Some(Returning::AllOld) => applied.old.clone(),
        Some(Returning::AllNew) => applied.new.clone(),
        Some(Returning::ModifiedOld) => applied.old.as_ref().map(|i| updated_paths.apply(i)),
        Some(Returning::ModifiedNew) => applied.new.as_ref().map(|i| updated_paths.apply(i)),
    };
    Ok(written(table, applied, returned))
}

/// An update expression being written: its text and placeholders.
#[derive(Default)]
struct UpdateText {
    names: HashMap<String, String>,
    /// Attribute name → its placeholder, so a name is given once.
    by_name: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

fn unsupported(what: &str) -> ApiError {
    ApiError::validation(format!("Unsupported update: {what}"))
}

impl UpdateText {
    fn path(&mut self, p: &DocPath) -> String {
        let mut out = String::new();
        for e in &p.elems {
            match e {
                PathElem::Name(n) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    let next = format!("#n{}", self.by_name.len());
                    let ph = self.by_name.entry(n.clone()).or_insert(next).clone();
                    self.names.insert(ph.clone(), n.clone());
                    out.push_str(&ph);
                }
                PathElem::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let ph = format!(":v{}", self.values.len());
        self.values.insert(ph.clone(), v);
        ph
    }

    /// A `SET` value: a path, a value, `a + b - ...`, `list_append(a, b)`.
    fn operand(&mut self, e: &Expr, params: &[AttributeValue]) -> Result<String, ApiError> {
        Ok(match e {
            Expr::Path(p) => self.path(p),
            Expr::Value(v) => {
                let bound = v.bind(params).map_err(bind_error)?;
                self.value(bound)
            }
            Expr::Arith { first, rest } => {
                let mut out = self.simple_operand(first, params)?;
                for (op, e) in rest {
                    out.push_str(match op {
                        ArithOp::Add => " + ",
                        ArithOp::Sub => " - ",
                    });
                    out.push_str(&self.simple_operand(e, params)?);
                }
                out
            }
            Expr::Call {
                func: Function::ListAppend,
                args,
            } => match args.as_slice() {
                [a, b] => format!(
                    "list_append({}, {})",
                    self.operand(a, params)?,
                    self.operand(b, params)?
                ),
                _ => return Err(unsupported("list_append takes two arguments")),
            },
            Expr::Call { func, .. } => {
                return Err(unsupported(&format!(
                    "{} is not allowed here in an UPDATE",
                    func.name()
                )));
            }
            _ => return Err(unsupported("a condition as a SET value")),
        })
    }

    /// An operand of `+`/`-`: a path, a value or `list_append`, not another chain.
    fn simple_operand(&mut self, e: &Expr, params: &[AttributeValue]) -> Result<String, ApiError> {
        if matches!(e, Expr::Arith { .. }) {
            return Err(unsupported("parenthesised arithmetic"));
        }
        self.operand(e, params)
    }
}

/// `set_add(path, value)` / `set_delete(path, value)` as the value of `SET path = ...`: the
/// value to `ADD` / `DELETE`.
fn set_change<'e>(target: &DocPath, value: &'e Expr, func: Function) -> Option<&'e Expr> {
    match value {
        Expr::Call { func: f, args } if *f == func => match args.as_slice() {
            [Expr::Path(p), v] if p == target => Some(v),
            _ => None,
        },
        _ => None,
    }
}

/// The update of an `UPDATE`'s actions, parsed from an update expression so it is validated as
/// UpdateItem's is.
fn update_of(
    actions: &[UpdateAction],
    params: &[AttributeValue],
) -> Result<shoal_expr::Update, ApiError> {
    let mut t = UpdateText::default();
    let (mut set, mut remove, mut add, mut del) = (vec![], vec![], vec![], vec![]);
    for a in actions {
        match a {
            UpdateAction::Set { path, value } => {
                if let Some(v) = set_change(path, value, Function::SetAdd) {
                    let p = t.path(path);
                    add.push(format!("{p} {}", t.operand(v, params)?));
                } else if let Some(v) = set_change(path, value, Function::SetDelete) {
                    let p = t.path(path);
                    del.push(format!("{p} {}", t.operand(v, params)?));
                } else if matches!(
                    value,
                    Expr::Call {
                        func: Function::SetAdd | Function::SetDelete,
                        ..
                    }
                ) {
                    return Err(unsupported(
                        "set_add and set_delete take the attribute being set as their first argument",
                    ));
                } else {
                    let p = t.path(path);
                    set.push(format!("{p} = {}", t.operand(value, params)?));
                }
            }
            UpdateAction::Remove(path) => remove.push(t.path(path)),
        }
    }
    let mut text = String::new();
    for (clause, parts) in [
        ("SET", set),
        ("REMOVE", remove),
        ("ADD", add),
        ("DELETE", del),
    ] {
        if !parts.is_empty() {
            text.push_str(&format!("{clause} {} ", parts.join(", ")));
        }
    }
    let names = (!t.names.is_empty()).then_some(&t.names);
    let values = (!t.values.is_empty()).then_some(&t.values);
    let mut ectx = ExprContext::new(names, values);
    Ok(shoal_expr::parse_update(text.trim_end(), &mut ectx)?)
}

#[cfg(test)]
mod tests {
    use super::update_of;
    use shoal_partiql::{Statement, parse};

    fn update(text: &str) -> Result<shoal_expr::Update, crate::error::ApiError> {
        let Ok(Statement::Update(u)) = parse(text) else {
            panic!("not an update: {text}");
        };
        update_of(&u.actions, &[])
    }

    #[test]
    fn actions_become_one_update_expression() {
        let u = update(
            "UPDATE t SET a = 1 SET b.c[2] = a + 3 - 1 REMOVE d SET s = set_add(s, <<'x'>>) \
             SET l = list_append(l, [1]) SET r = set_delete(r, <<1>>) WHERE pk = 1",
        )
        .unwrap();
        assert_eq!(u.set.len(), 3);
        assert_eq!(u.remove.len(), 1);
        assert_eq!(u.add.len(), 1);
        assert_eq!(u.delete.len(), 1);
    }

    #[test]
    fn invalid_updates_are_refused_as_update_expressions_are() {
        // Overlapping paths.
        assert!(update("UPDATE t SET a = 1 SET a.b = 2 WHERE pk = 1").is_err());
        // `+` on a string.
        assert!(update("UPDATE t SET a = 'x' + 1 WHERE pk = 1").is_err());
        // set_add on another attribute.
        assert!(update("UPDATE t SET a = set_add(b, <<1>>) WHERE pk = 1").is_err());
    }
}

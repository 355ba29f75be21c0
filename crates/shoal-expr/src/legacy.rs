//! The legacy conditional parameters, converted into the expression trees: `Expected` (+
//! `ConditionalOperator`) and `QueryFilter` / `ScanFilter` into a [`Condition`], `KeyConditions`
//! into a [`KeyCondition`], `AttributeUpdates` into an [`Update`].
//!
//! The API layer parses the JSON into the plain structs here; map iteration order does not
//! matter (conditions are joined by one operator). Errors are DynamoDB's
//! `One or more parameter values were invalid: ...` messages.

use shoal_types::AttributeValue;

use crate::ExprError;
use crate::compare::compare_scalars;
use crate::condition::{CompareOp, Condition, Operand};
use crate::key_condition::{KeyCondition, KeyPart, SortKeyCondition};
use crate::path::DocPath;
use crate::update::{Update, UpdateValue};

/// One `Condition` of `QueryFilter`, `ScanFilter` or `KeyConditions`, or the operator form of
/// an `Expected` entry.
#[derive(Debug, Clone)]
pub struct LegacyCondition {
    /// `EQ NE LE LT GE GT NOT_NULL NULL CONTAINS NOT_CONTAINS BEGINS_WITH IN BETWEEN`.
    pub operator: String,
    /// `AttributeValueList` (empty when absent).
    pub values: Vec<AttributeValue>,
}

/// One entry of `Expected`.
#[derive(Debug, Clone, Default)]
pub struct ExpectedEntry {
    pub value: Option<AttributeValue>,
    pub exists: Option<bool>,
    pub operator: Option<String>,
    pub values: Option<Vec<AttributeValue>>,
}

/// One entry of `AttributeUpdates`.
#[derive(Debug, Clone, Default)]
pub struct AttributeUpdate {
    /// `PUT` (default), `ADD` or `DELETE`.
    pub action: Option<String>,
    pub value: Option<AttributeValue>,
}

fn invalid(detail: impl std::fmt::Display) -> ExprError {
    ExprError::new(format!(
        "One or more parameter values were invalid: {detail}"
    ))
}

fn is_scalar(v: &AttributeValue) -> bool {
    matches!(
        v,
        AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_)
    )
}

fn is_set(v: &AttributeValue) -> bool {
    matches!(
        v,
        AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
    )
}

/// Converts one legacy comparison on attribute `name` into a condition.
///
/// # Errors
/// Wrong number of values (`Invalid number of argument(s) for the EQ ComparisonOperator`),
/// value types the operator does not accept (`ComparisonOperator LT is not valid for SS
/// AttributeValue type`), unknown operators, and a `BETWEEN` whose bounds are out of order.
pub fn convert_condition(name: &str, c: &LegacyCondition) -> Result<Condition, ExprError> {
    convert(name, c, false)
}

/// [`convert_condition`]; `filter` for a `QueryFilter` / `ScanFilter` condition, whose `IN`
/// accepts values of every type, mixed (an item attribute matches if it equals one of them).
/// `Expected`'s `IN` takes scalars only (LegacyConditionalParameters.Expected.md). `EQ` and `NE`
/// accept every type everywhere ("supported for all datatypes, including lists and maps").
fn convert(name: &str, c: &LegacyCondition, filter: bool) -> Result<Condition, ExprError> {
    let path = DocPath::attr(name);
    let op = c.operator.as_str();
    let arity = |n: usize| -> Result<(), ExprError> {
        if c.values.len() == n {
            Ok(())
        } else {
            Err(invalid(format!(
                "Invalid number of argument(s) for the {op} ComparisonOperator"
            )))
        }
    };
    let type_check = |ok: fn(&AttributeValue) -> bool| -> Result<(), ExprError> {
        match c.values.iter().find(|v| !ok(v)) {
            Some(v) => Err(invalid(format!(
                "ComparisonOperator {op} is not valid for {} AttributeValue type",
                v.type_name()
            ))),
            None => Ok(()),
        }
    };
    let first = || c.values.first().cloned().unwrap_or(AttributeValue::Null);
    let cmp = |o: CompareOp| Condition::Compare {
        op: o,
        left: Operand::Path(path.clone()),
        right: Operand::Value(first()),
    };
    Ok(match op {
        "EQ" | "NE" => {
            arity(1)?;
            cmp(if op == "EQ" {
                CompareOp::Eq
            } else {
                CompareOp::Ne
            })
        }
        "LE" | "LT" | "GE" | "GT" => {
            arity(1)?;
            type_check(is_scalar)?;
            cmp(match op {
                "LE" => CompareOp::Le,
                "LT" => CompareOp::Lt,
                "GE" => CompareOp::Ge,
                _ => CompareOp::Gt,
            })
        }
        "NOT_NULL" | "NULL" => {
            arity(0)?;
            if op == "NULL" {
                Condition::AttributeNotExists(path)
            } else {
                Condition::AttributeExists(path)
            }
        }
        "CONTAINS" | "NOT_CONTAINS" => {
            arity(1)?;
            type_check(is_scalar)?;
            let contains =
                Condition::Contains(Operand::Path(path.clone()), Operand::Value(first()));
            if op == "CONTAINS" {
                contains
            } else {
                Condition::And(vec![
                    Condition::AttributeExists(path),
                    Condition::Not(Box::new(contains)),
                ])
            }
        }
        "BEGINS_WITH" => {
            arity(1)?;
            type_check(|v| matches!(v, AttributeValue::S(_) | AttributeValue::B(_)))?;
            Condition::BeginsWith(Operand::Path(path), Operand::Value(first()))
        }
        "IN" => {
            if c.values.is_empty() {
                return Err(invalid(format!(
                    "Invalid number of argument(s) for the {op} ComparisonOperator"
                )));
            }
            if !filter {
                type_check(is_scalar)?;
            }
            Condition::In {
                value: Operand::Path(path),
                list: c.values.iter().cloned().map(Operand::Value).collect(),
            }
        }
        "BETWEEN" => {
            arity(2)?;
            type_check(is_scalar)?;
            let (lo, hi) = match (c.values.first(), c.values.get(1)) {
                (Some(lo), Some(hi)) => (lo.clone(), hi.clone()),
                _ => {
                    return Err(invalid(
                        "Invalid number of argument(s) for the BETWEEN ComparisonOperator",
                    ));
                }
            };
            match compare_scalars(&lo, &hi) {
                None => {
                    return Err(invalid(
                        "AttributeValues inside AttributeValueList must be of same type",
                    ));
                }
                Some(o) if o.is_gt() => {
                    return Err(ExprError::new(
                        "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
                    ));
                }
                Some(_) => {}
            }
            Condition::Between {
                value: Operand::Path(path),
                low: Operand::Value(lo),
                high: Operand::Value(hi),
            }
        }
        other => {
            return Err(invalid(format!("Unsupported ComparisonOperator: {other}")));
        }
    })
}

/// Joins conditions with `ConditionalOperator` (`AND` by default, or `OR`); `None` if empty.
///
/// The result is one flat n-ary [`Condition::And`] / [`Condition::Or`] (see [`Condition::and`]),
/// so any number of conditions costs no nesting: evaluating, encoding and dropping it is a loop.
///
/// # Errors
/// An operator other than `AND` / `OR`.
pub fn join(
    conditions: Vec<Condition>,
    conditional_operator: Option<&str>,
) -> Result<Option<Condition>, ExprError> {
    let or = match conditional_operator {
        None | Some("AND") => false,
        Some("OR") => true,
        Some(other) => return Err(invalid(format!("Unsupported ConditionalOperator: {other}"))),
    };
    if conditions.is_empty() {
        return Ok(None);
    }
    Ok(Some(if or {
        Condition::or(conditions)
    } else {
        Condition::and(conditions)
    }))
}

/// Converts `QueryFilter` / `ScanFilter` (+ `ConditionalOperator`).
///
/// # Errors
/// As [`convert_condition`] and [`join`].
pub fn convert_filter<'a>(
    filter: impl IntoIterator<Item = (&'a String, &'a LegacyCondition)>,
    conditional_operator: Option<&str>,
) -> Result<Option<Condition>, ExprError> {
    let mut out = Vec::new();
    for (name, c) in filter {
        out.push(convert(name, c, true)?);
    }
    join(out, conditional_operator)
}

/// Converts `Expected` (+ `ConditionalOperator`).
///
/// # Errors
/// As [`convert_condition`], plus the `Value`/`Exists`/`ComparisonOperator` combination rules.
pub fn convert_expected<'a>(
    expected: impl IntoIterator<Item = (&'a String, &'a ExpectedEntry)>,
    conditional_operator: Option<&str>,
) -> Result<Option<Condition>, ExprError> {
    let mut out = Vec::new();
    for (name, e) in expected {
        if let Some(op) = &e.operator {
            if e.value.is_some() {
                return Err(invalid(format!(
                    "Value and ComparisonOperator cannot be used together for Attribute: {name}"
                )));
            }
            if e.exists.is_some() {
                return Err(invalid(format!(
                    "Exists and ComparisonOperator cannot be used together for Attribute: {name}"
                )));
            }
            let c = LegacyCondition {
                operator: op.clone(),
                values: e.values.clone().unwrap_or_default(),
            };
            out.push(convert_condition(name, &c)?);
            continue;
        }
        if e.values.is_some() {
            return Err(invalid(format!(
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: {name}"
            )));
        }
        let path = DocPath::attr(name.as_str());
        out.push(match (e.exists.unwrap_or(true), &e.value) {
            (true, Some(v)) => Condition::Compare {
                op: CompareOp::Eq,
                left: Operand::Path(path),
                right: Operand::Value(v.clone()),
            },
            (true, None) => {
                return Err(invalid(format!(
                    "Value must be provided when Exists is true for Attribute: {name}"
                )));
            }
            (false, Some(_)) => {
                return Err(invalid(format!(
                    "Value cannot be used when Exists is false for Attribute: {name}"
                )));
            }
            (false, None) => Condition::AttributeNotExists(path),
        });
    }
    join(out, conditional_operator)
}

/// Converts `KeyConditions` (`EQ LE LT GE GT BEGINS_WITH BETWEEN` only); check the result with
/// [`KeyCondition::resolve`].
///
/// # Errors
/// Other operators (`Attempted conditional constraint is not an indexable operation`) and the
/// value checks of [`convert_condition`].
pub fn convert_key_conditions<'a>(
    conditions: impl IntoIterator<Item = (&'a String, &'a LegacyCondition)>,
) -> Result<KeyCondition, ExprError> {
    let mut parts = Vec::new();
    for (name, c) in conditions {
        // A key is a scalar: key conditions keep EQ to the types a key comparison can take.
        if c.operator == "EQ"
            && let Some(v) = c.values.iter().find(|v| !(is_scalar(v) || is_set(v)))
        {
            return Err(invalid(format!(
                "ComparisonOperator EQ is not valid for {} AttributeValue type",
                v.type_name()
            )));
        }
        let cond = match convert_condition(name, c)? {
            Condition::Compare {
                op,
                right: Operand::Value(v),
                ..
            } => match op {
                CompareOp::Eq => SortKeyCondition::Eq(v),
                CompareOp::Lt => SortKeyCondition::Lt(v),
                CompareOp::Le => SortKeyCondition::Le(v),
                CompareOp::Gt => SortKeyCondition::Gt(v),
                CompareOp::Ge => SortKeyCondition::Ge(v),
                CompareOp::Ne => return Err(not_indexable()),
            },
            Condition::Between {
                low: Operand::Value(lo),
                high: Operand::Value(hi),
                ..
            } => SortKeyCondition::Between(lo, hi),
            Condition::BeginsWith(_, Operand::Value(v)) => SortKeyCondition::BeginsWith(v),
            _ => return Err(not_indexable()),
        };
        parts.push(KeyPart {
            name: name.clone(),
            cond,
        });
    }
    Ok(KeyCondition { parts })
}

fn not_indexable() -> ExprError {
    ExprError::new("Attempted conditional constraint is not an indexable operation")
}

/// Converts `AttributeUpdates`: `PUT` sets, `ADD` adds (numbers or sets), `DELETE` without a
/// value removes the attribute and with a set value removes those elements.
///
/// # Errors
/// `PUT` / `ADD` without a value, `ADD` of a non-number non-set, `DELETE` of a non-set value,
/// unknown actions.
pub fn convert_attribute_updates<'a>(
    updates: impl IntoIterator<Item = (&'a String, &'a AttributeUpdate)>,
) -> Result<Update, ExprError> {
    let mut u = Update::default();
    for (name, au) in updates {
        let path = DocPath::attr(name.as_str());
        let action = au.action.as_deref().unwrap_or("PUT");
        match (action, &au.value) {
            ("DELETE", None) => u.remove.push(path),
            (_, None) => {
                return Err(invalid(
                    "Only DELETE action is allowed when no attribute value is specified",
                ));
            }
            ("PUT", Some(v)) => u.set.push((path, UpdateValue::Value(v.clone()))),
            ("ADD", Some(v)) => {
                if !(is_set(v) || matches!(v, AttributeValue::N(_))) {
                    return Err(invalid(format!(
                        "ADD action is not supported for the type {}",
                        v.type_name()
                    )));
                }
                u.add.push((path, v.clone()));
            }
            ("DELETE", Some(v)) => {
                if !is_set(v) {
                    return Err(invalid(format!(
                        "DELETE action with value is not supported for the type {}",
                        v.type_name()
                    )));
                }
                u.delete.push((path, v.clone()));
            }
            (other, Some(_)) => {
                return Err(invalid(format!("Unsupported AttributeAction: {other}")));
            }
        }
    }
    Ok(u)
}

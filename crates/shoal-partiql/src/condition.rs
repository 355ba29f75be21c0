//! A `WHERE` clause as shoal-expr's [`Condition`], parameters bound, so an executor can
//! evaluate it with the same code as a `ConditionExpression` or `FilterExpression`.

use shoal_expr::{Condition, Operand};
use shoal_types::AttributeValue;

use crate::ast::{Expr, Function, IsTest};
use crate::error::BindError;

fn unsupported(what: impl Into<String>) -> BindError {
    BindError::Unsupported { what: what.into() }
}

impl Expr {
    /// This condition as a [`Condition`], with each `?` bound to `params[n]`.
    ///
    /// The mapping: comparisons, `BETWEEN`, `IN`, `AND`, `OR`, `NOT`, `begins_with`,
    /// `contains` and `attribute_type` map one to one; `size(path)` is [`Operand::Size`];
    /// `path IS MISSING` is `attribute_not_exists(path)` and `IS NOT MISSING`
    /// `attribute_exists(path)`; `path IS NULL` is `attribute_type(path, 'NULL')` (the stored
    /// `NULL` type; a missing attribute is not `NULL`); `TRUE` (or a `?` bound to a boolean) is an
    /// empty `AND`, `FALSE` an empty `OR`.
    ///
    /// Recurses once per `AND`/`OR`/`NOT` level: at most [`crate::MAX_NESTING`] for parsed input.
    ///
    /// # Errors
    /// - [`BindError::Unsupported`] for what a [`Condition`] cannot express: arithmetic,
    ///   `list_append`/`set_add`/`set_delete`, `size` of anything but a path, `IS` or the first
    ///   argument of `attribute_type` on anything but a path, a non-boolean value or path standing
    ///   as a condition;
    /// - the errors of [`crate::Value::bind`] for the values.
    pub fn to_condition(&self, params: &[AttributeValue]) -> Result<Condition, BindError> {
        Ok(match self {
            Expr::Compare { op, left, right } => Condition::Compare {
                op: *op,
                left: operand(left, params)?,
                right: operand(right, params)?,
            },
            Expr::Between { value, low, high } => Condition::Between {
                value: operand(value, params)?,
                low: operand(low, params)?,
                high: operand(high, params)?,
            },
            Expr::In { value, list } => Condition::In {
                value: operand(value, params)?,
                list: list
                    .iter()
                    .map(|v| v.bind(params).map(Operand::Value))
                    .collect::<Result<_, _>>()?,
            },
            Expr::Is {
                value,
                test,
                negated,
            } => {
                let Expr::Path(p) = &**value else {
                    return Err(unsupported("IS applies only to an attribute or path"));
                };
                let c = match test {
                    IsTest::Missing if *negated => {
                        return Ok(Condition::AttributeExists(p.clone()));
                    }
                    IsTest::Missing => return Ok(Condition::AttributeNotExists(p.clone())),
                    IsTest::Null => Condition::AttributeType(
                        p.clone(),
                        Operand::Value(AttributeValue::S("NULL".into())),
                    ),
                };
                if *negated {
                    Condition::Not(Box::new(c))
                } else {
                    c
                }
            }
            Expr::Call { func, args } => match (func, args.as_slice()) {
                (Function::BeginsWith, [a, b]) => {
                    Condition::BeginsWith(operand(a, params)?, operand(b, params)?)
                }
                (Function::Contains, [a, b]) => {
                    Condition::Contains(operand(a, params)?, operand(b, params)?)
                }
                (Function::AttributeType, [Expr::Path(p), t]) => {
                    Condition::AttributeType(p.clone(), operand(t, params)?)
                }
                (Function::AttributeType, _) => {
                    return Err(unsupported(
                        "attribute_type's first argument must be an attribute or path",
                    ));
                }
                (f, _) => {
                    return Err(unsupported(format!("{} is not a condition", f.name())));
                }
            },
            Expr::And(cs) => Condition::And(
                cs.iter()
                    .map(|c| c.to_condition(params))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Or(cs) => Condition::Or(
                cs.iter()
                    .map(|c| c.to_condition(params))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Not(c) => Condition::Not(Box::new(c.to_condition(params)?)),
            Expr::Value(v) => match v.bind(params)? {
                AttributeValue::Bool(true) => Condition::And(Vec::new()),
                AttributeValue::Bool(false) => Condition::Or(Vec::new()),
                _ => {
                    return Err(unsupported(
                        "a value that is not a boolean is not a condition",
                    ));
                }
            },
            Expr::Path(_) => return Err(unsupported("an attribute alone is not a condition")),
            Expr::Arith { .. } => return Err(unsupported("arithmetic is not a condition")),
        })
    }
}

/// A comparison or function operand.
fn operand(e: &Expr, params: &[AttributeValue]) -> Result<Operand, BindError> {
    match e {
        Expr::Path(p) => Ok(Operand::Path(p.clone())),
        Expr::Value(v) => Ok(Operand::Value(v.bind(params)?)),
        Expr::Call {
            func: Function::Size,
            args,
        } => match args.as_slice() {
            [Expr::Path(p)] => Ok(Operand::Size(p.clone())),
            _ => Err(unsupported("size applies only to an attribute or path")),
        },
        Expr::Arith { .. } => Err(unsupported("arithmetic in a condition")),
        Expr::Call { func, .. } => Err(unsupported(format!(
            "{} as an operand in a condition",
            func.name()
        ))),
        _ => Err(unsupported("a condition as an operand")),
    }
}

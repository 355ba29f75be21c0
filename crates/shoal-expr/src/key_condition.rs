//! Key condition expressions (Query): [`KeyCondition`], [`ResolvedKeyCondition`],
//! [`SortKeyCondition`].

use shoal_types::AttributeValue;
use shoal_types::key::KeySchema;

use crate::compare::{self, compare_scalars, values_equal};
use crate::condition::{CompareOp, Condition, Operand};
use crate::parser::Parser;
use crate::path::DocPath;
use crate::{ExprContext, ExprError, ExprKind};

/// A condition on one key attribute.
#[derive(Debug, Clone)]
pub struct KeyPart {
    /// The top-level attribute name.
    pub name: String,
    /// The condition on it.
    pub cond: SortKeyCondition,
}

/// A parsed `KeyConditionExpression`: conditions joined by `AND`, one per attribute named.
/// Check it against the table or index key schema with [`KeyCondition::resolve`].
#[derive(Debug, Clone)]
pub struct KeyCondition {
    pub parts: Vec<KeyPart>,
}

/// A key condition checked against a key schema.
#[derive(Debug, Clone)]
pub struct ResolvedKeyCondition {
    /// The partition key value (`pk = :v`).
    pub partition_key: AttributeValue,
    /// The sort key condition, if any.
    pub sort: Option<SortKeyCondition>,
}

/// A condition on a key attribute.
#[derive(Debug, Clone)]
pub enum SortKeyCondition {
    Eq(AttributeValue),
    Lt(AttributeValue),
    Le(AttributeValue),
    Gt(AttributeValue),
    Ge(AttributeValue),
    /// Inclusive on both ends.
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

impl SortKeyCondition {
    /// Whether the key value `v` satisfies the condition (values of another type never do).
    pub fn matches(&self, v: &AttributeValue) -> bool {
        match self {
            SortKeyCondition::Eq(x) => values_equal(v, x),
            SortKeyCondition::Lt(x) => compare_scalars(v, x).is_some_and(|o| o.is_lt()),
            SortKeyCondition::Le(x) => compare_scalars(v, x).is_some_and(|o| o.is_le()),
            SortKeyCondition::Gt(x) => compare_scalars(v, x).is_some_and(|o| o.is_gt()),
            SortKeyCondition::Ge(x) => compare_scalars(v, x).is_some_and(|o| o.is_ge()),
            SortKeyCondition::Between(lo, hi) => {
                compare_scalars(v, lo).is_some_and(|o| o.is_ge())
                    && compare_scalars(v, hi).is_some_and(|o| o.is_le())
            }
            SortKeyCondition::BeginsWith(p) => compare::begins_with(v, p),
        }
    }

    /// The values the condition compares with.
    fn values(&self) -> Vec<&AttributeValue> {
        match self {
            SortKeyCondition::Eq(x)
            | SortKeyCondition::Lt(x)
            | SortKeyCondition::Le(x)
            | SortKeyCondition::Gt(x)
            | SortKeyCondition::Ge(x)
            | SortKeyCondition::BeginsWith(x) => vec![x],
            SortKeyCondition::Between(a, b) => vec![a, b],
        }
    }
}

/// Parses a `KeyConditionExpression`: `pk = :v [AND sk-condition]`, where the sort key
/// condition is `= < <= > >=`, `BETWEEN :a AND :b` or `begins_with(sk, :p)`.
///
/// # Errors
/// `Invalid KeyConditionExpression: ...`: everything a condition parse reports, plus
/// `Invalid operator used in KeyConditionExpression: OR` (also `NOT`, `IN`, `<>`, and other
/// functions), and operands that are not one top-level key name and values.
pub fn parse_key_condition(text: &str, ctx: &mut ExprContext) -> Result<KeyCondition, ExprError> {
    let mut p = Parser::new(text, ExprKind::KeyCondition, ctx)?;
    let c = p.parse_or()?;
    p.expect_end()?;
    let mut parts = Vec::new();
    flatten(c, &mut parts)?;
    Ok(KeyCondition { parts })
}

fn invalid_operator(op: &str) -> ExprError {
    ExprKind::KeyCondition.invalid(format!(
        "Invalid operator used in KeyConditionExpression: {op}"
    ))
}

fn key_name(path: DocPath) -> Result<String, ExprError> {
    if path.elems.len() != 1 {
        return Err(ExprKind::KeyCondition.invalid(format!(
            "KeyConditionExpressions cannot contain nested attributes; path: {path}"
        )));
    }
    Ok(path.top().to_string())
}

fn shape_error(op: &str) -> ExprError {
    ExprKind::KeyCondition.invalid(format!(
        "Key condition operator {op} requires a key attribute name and expression attribute values"
    ))
}

fn value(o: Operand, op: &str) -> Result<AttributeValue, ExprError> {
    match o {
        Operand::Value(v) => Ok(v),
        Operand::Size(_) => Err(invalid_operator("size")),
        Operand::Path(_) => Err(shape_error(op)),
    }
}

fn flatten(c: Condition, out: &mut Vec<KeyPart>) -> Result<(), ExprError> {
    let part = match c {
        Condition::And(cs) => {
            for c in cs {
                flatten(c, out)?;
            }
            return Ok(());
        }
        Condition::Or(..) => return Err(invalid_operator("OR")),
        Condition::Not(_) => return Err(invalid_operator("NOT")),
        Condition::In { .. } => return Err(invalid_operator("IN")),
        Condition::AttributeExists(_) => return Err(invalid_operator("attribute_exists")),
        Condition::AttributeNotExists(_) => return Err(invalid_operator("attribute_not_exists")),
        Condition::AttributeType(..) => return Err(invalid_operator("attribute_type")),
        Condition::Contains(..) => return Err(invalid_operator("contains")),
        Condition::Compare {
            op: CompareOp::Ne, ..
        } => return Err(invalid_operator("<>")),
        Condition::Compare { op, left, right } => {
            let (path, v, op) = match (left, right) {
                (Operand::Path(p), v) => (p, value(v, op.symbol())?, op),
                (v, Operand::Path(p)) => {
                    let flipped = match op {
                        CompareOp::Lt => CompareOp::Gt,
                        CompareOp::Le => CompareOp::Ge,
                        CompareOp::Gt => CompareOp::Lt,
                        CompareOp::Ge => CompareOp::Le,
                        other => other,
                    };
                    (p, value(v, op.symbol())?, flipped)
                }
                (Operand::Size(_), _) | (_, Operand::Size(_)) => {
                    return Err(invalid_operator("size"));
                }
                _ => return Err(shape_error(op.symbol())),
            };
            let cond = match op {
                CompareOp::Eq => SortKeyCondition::Eq(v),
                CompareOp::Lt => SortKeyCondition::Lt(v),
                CompareOp::Le => SortKeyCondition::Le(v),
                CompareOp::Gt => SortKeyCondition::Gt(v),
                CompareOp::Ge => SortKeyCondition::Ge(v),
                CompareOp::Ne => return Err(invalid_operator("<>")),
            };
            KeyPart {
                name: key_name(path)?,
                cond,
            }
        }
        Condition::Between {
            value: Operand::Path(p),
            low,
            high,
        } => KeyPart {
            name: key_name(p)?,
            cond: SortKeyCondition::Between(value(low, "BETWEEN")?, value(high, "BETWEEN")?),
        },
        Condition::Between { .. } => return Err(shape_error("BETWEEN")),
        Condition::BeginsWith(Operand::Path(p), v) => KeyPart {
            name: key_name(p)?,
            cond: SortKeyCondition::BeginsWith(value(v, "begins_with")?),
        },
        Condition::BeginsWith(..) => return Err(shape_error("begins_with")),
    };
    out.push(part);
    Ok(())
}

impl KeyCondition {
    /// Checks the condition against a table's or index's key schema: exactly one `=` on the
    /// partition key, at most one condition on the sort key, nothing else; values of the key's
    /// type.
    ///
    /// # Errors
    /// `Query condition missed key schema element: {pk}`, `Query key condition not supported`,
    /// `KeyConditionExpressions must only contain one condition per key`,
    /// `One or more parameter values were invalid: Condition parameter type does not match schema type`.
    pub fn resolve(&self, schema: &KeySchema) -> Result<ResolvedKeyCondition, ExprError> {
        for (i, a) in self.parts.iter().enumerate() {
            if self.parts.iter().skip(i + 1).any(|b| b.name == a.name) {
                return Err(ExprError::new(
                    "KeyConditionExpressions must only contain one condition per key",
                ));
            }
        }
        let unsupported = || ExprError::new("Query key condition not supported");
        let mismatch = || {
            ExprError::new(
                "One or more parameter values were invalid: Condition parameter type does not match schema type",
            )
        };
        let Some(pk) = self.parts.iter().find(|p| p.name == schema.hash.name) else {
            return Err(ExprError::new(format!(
                "Query condition missed key schema element: {}",
                schema.hash.name
            )));
        };
        let SortKeyCondition::Eq(pk_value) = &pk.cond else {
            return Err(unsupported());
        };
        if pk_value.scalar_type() != Some(schema.hash.ty) {
            return Err(mismatch());
        }
        let mut sort = None;
        for part in self.parts.iter().filter(|p| p.name != schema.hash.name) {
            let Some(range) = schema.range.as_ref().filter(|r| r.name == part.name) else {
                return Err(unsupported());
            };
            if part
                .cond
                .values()
                .iter()
                .any(|v| v.scalar_type() != Some(range.ty))
            {
                return Err(mismatch());
            }
            if matches!(part.cond, SortKeyCondition::BeginsWith(_))
                && range.ty == shoal_types::ScalarType::N
            {
                return Err(unsupported());
            }
            sort = Some(part.cond.clone());
        }
        Ok(ResolvedKeyCondition {
            partition_key: pk_value.clone(),
            sort,
        })
    }
}

//! Key condition expressions (Query): [`KeyCondition`], [`ResolvedKeyCondition`],
//! [`SortKeyCondition`].

use shoal_types::index_key::{IndexKeySchema, partition_key_value};
use shoal_types::key::KeySchema;
use shoal_types::{AttributeValue, Item};

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
    /// The partition key value (`pk = :v`); for several partition attributes the list of
    /// their values ([`partition_key_value`]).
    pub partition_key: AttributeValue,
    /// The values of the `=` conditions on the first sort attributes, in schema order, before
    /// the one [`ResolvedKeyCondition::sort`] applies to (always empty with one sort attribute).
    pub sort_prefix: Vec<AttributeValue>,
    /// The condition on the sort attribute after the prefix, if any.
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
    /// Checks the condition against a table's key schema; see [`KeyCondition::resolve_index`].
    ///
    /// # Errors
    /// As [`KeyCondition::resolve_index`].
    pub fn resolve(&self, schema: &KeySchema) -> Result<ResolvedKeyCondition, ExprError> {
        self.resolve_index(&IndexKeySchema::from(schema))
    }

    /// Checks the condition against a table's or index's key schema: one `=` on every partition
    /// (`HASH`) attribute; on the sort (`RANGE`) attributes, `=` on a left prefix of them,
    /// optionally followed by one condition of any kind on the next one; nothing else; values of
    /// the key's type. With one sort attribute this is DynamoDB's classic rule (one condition on
    /// the sort key).
    ///
    /// # Errors
    /// `Query condition missed key schema element: {pk}` (the first partition attribute without
    /// a condition), `Query key condition not supported` (and, for multi-attribute sort keys,
    /// a condition on a sort attribute whose predecessor has none, or after a non-equality
    /// condition, with the attributes named), `KeyConditionExpressions must only contain one
    /// condition per key`, `One or more parameter values were invalid: Condition parameter type
    /// does not match schema type`.
    pub fn resolve_index(
        &self,
        schema: &IndexKeySchema,
    ) -> Result<ResolvedKeyCondition, ExprError> {
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
        let part_of = |name: &str| self.parts.iter().find(|p| p.name == name);
        let mut hash_values = Vec::with_capacity(schema.hash().len());
        for attr in schema.hash() {
            let Some(pk) = part_of(&attr.name) else {
                return Err(ExprError::new(format!(
                    "Query condition missed key schema element: {}",
                    attr.name
                )));
            };
            let SortKeyCondition::Eq(value) = &pk.cond else {
                return Err(unsupported());
            };
            if value.scalar_type() != Some(attr.ty) {
                return Err(mismatch());
            }
            hash_values.push(value.clone());
        }
        for part in self
            .parts
            .iter()
            .filter(|p| !schema.hash().iter().any(|a| a.name == p.name))
        {
            let Some(range) = schema.range().iter().find(|r| r.name == part.name) else {
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
        }
        // The sort attributes with a condition must be a left prefix, all `=` but the last.
        let conds: Vec<Option<&SortKeyCondition>> = schema
            .range()
            .iter()
            .map(|r| part_of(&r.name).map(|p| &p.cond))
            .collect();
        let used = conds.iter().take_while(|c| c.is_some()).count();
        if let Some(skipped) = conds.iter().skip(used).position(Option::is_some) {
            let later = schema
                .range()
                .get(used + skipped)
                .map_or("", |a| a.name.as_str());
            let missing = schema.range().get(used).map_or("", |a| a.name.as_str());
            return Err(ExprError::new(format!(
                "Query key condition not supported: the condition on sort key attribute {later} \
                 needs an equality condition on the sort key attribute {missing} before it"
            )));
        }
        let mut sort_prefix = Vec::with_capacity(used.saturating_sub(1));
        let mut sort = None;
        for (i, cond) in conds.into_iter().flatten().enumerate() {
            if i + 1 == used {
                sort = Some(cond.clone());
            } else if let SortKeyCondition::Eq(v) = cond {
                sort_prefix.push(v.clone());
            } else {
                let name = schema.range().get(i).map_or("", |a| a.name.as_str());
                let next = schema.range().get(i + 1).map_or("", |a| a.name.as_str());
                return Err(ExprError::new(format!(
                    "Query key condition not supported: only the last sort key attribute with a \
                     condition may use a condition other than equality; {name} has one and {next} \
                     follows it"
                )));
            }
        }
        Ok(ResolvedKeyCondition {
            partition_key: partition_key_value(hash_values),
            sort_prefix,
            sort,
        })
    }
}

impl ResolvedKeyCondition {
    /// Whether `key` (an `ExclusiveStartKey`) has the partition key value the condition asks
    /// for.
    pub fn matches_partition(&self, schema: &IndexKeySchema, key: &Item) -> bool {
        schema.partition_value(key).as_ref() == Some(&self.partition_key)
    }

    /// Whether `key`'s sort attributes satisfy the condition: the `=` of the prefix, then the
    /// last condition on the next sort attribute.
    pub fn matches_sort(&self, schema: &IndexKeySchema, key: &Item) -> bool {
        let mut range = schema.range().iter();
        let prefix_ok = self.sort_prefix.iter().all(|v| {
            range
                .next()
                .and_then(|a| key.get(&a.name))
                .is_some_and(|k| values_equal(k, v))
        });
        prefix_ok
            && match &self.sort {
                None => true,
                Some(cond) => range
                    .next()
                    .and_then(|a| key.get(&a.name))
                    .is_some_and(|k| cond.matches(k)),
            }
    }
}

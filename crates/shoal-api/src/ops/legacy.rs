//! The legacy parameters (`Expected`, `ConditionalOperator`, `AttributeUpdates`,
//! `KeyConditions`, `QueryFilter`, `ScanFilter`): JSON into `shoal_expr::legacy`'s structs, which
//! convert them into the same trees the expressions produce.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use shoal_expr::legacy::{AttributeUpdate, ExpectedEntry, LegacyCondition};
use shoal_expr::{Condition, KeyCondition, Update};
use shoal_types::AttributeValue;
use shoal_types::json::attribute_value_from_json;

use crate::error::{ApiError, Violations};
use crate::input::{Input, attribute_name_keys, member_field, nested, opt_array, opt_str};

/// DynamoDB's rule: a request uses expressions or legacy parameters, never both.
pub fn check_mix(input: &Input<'_>, legacy: &[&str], expressions: &[&str]) -> Result<(), ApiError> {
    let used_legacy: Vec<&str> = legacy.iter().copied().filter(|p| input.has(p)).collect();
    let used_expr: Vec<&str> = expressions
        .iter()
        .copied()
        .filter(|p| input.has(p))
        .collect();
    if !used_legacy.is_empty() && !used_expr.is_empty() {
        return Err(ApiError::validation(format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            used_legacy.join(", "),
            used_expr.join(", ")
        )));
    }
    Ok(())
}

fn value_list(v: Option<&Value>) -> Result<Option<Vec<AttributeValue>>, ApiError> {
    let Some(list) = opt_array(v)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(list.len());
    for el in list {
        out.push(attribute_value_from_json(el)?);
    }
    Ok(Some(out))
}

/// `ConditionalOperator`: AND or OR.
pub fn conditional_operator<'a>(
    input: &Input<'a>,
    v: &mut Violations,
) -> Result<Option<&'a str>, ApiError> {
    Ok(super::validate::enum_value(
        input.str("ConditionalOperator")?,
        "conditionalOperator",
        &["AND", "OR"],
        v,
    ))
}

/// The `ComparisonOperator` enum of the API model, in the model's order.
const COMPARISON_OPERATORS: &[&str] = &[
    "EQ",
    "NE",
    "IN",
    "LE",
    "LT",
    "GE",
    "GT",
    "BETWEEN",
    "NOT_NULL",
    "NULL",
    "CONTAINS",
    "NOT_CONTAINS",
    "BEGINS_WITH",
];

/// The model constraint on the `ComparisonOperator` of the condition on `name` in `member`: one
/// of the enum's values, reported as DynamoDB reports a model constraint.
fn check_operator(operator: &str, member: &str, name: &str) -> Result<(), ApiError> {
    let mut v = Violations::default();
    super::validate::enum_value(
        Some(operator),
        &format!("{}.{name}.member.comparisonOperator", member_field(member)),
        COMPARISON_OPERATORS,
        &mut v,
    );
    v.into_result()
}

/// A map of attribute name → `{ComparisonOperator, AttributeValueList}` (`QueryFilter`,
/// `ScanFilter`, `KeyConditions`).
fn conditions(
    input: &Input<'_>,
    member: &str,
) -> Result<Option<BTreeMap<String, LegacyCondition>>, ApiError> {
    let Some(obj) = input.object(member)? else {
        return Ok(None);
    };
    attribute_name_keys(obj.keys(), member)?;
    let mut out = BTreeMap::new();
    for (name, spec) in obj {
        let spec = nested(spec)?;
        let Some(operator) = spec.str("ComparisonOperator")? else {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value null at '{}.{name}.member.comparisonOperator' failed to satisfy constraint: Member must not be null",
                member_field(member)
            )));
        };
        check_operator(operator, member, name)?;
        let values = value_list(spec.raw("AttributeValueList"))?.unwrap_or_default();
        out.insert(
            name.clone(),
            LegacyCondition {
                operator: operator.to_string(),
                values,
            },
        );
    }
    Ok(Some(out))
}

/// A `ConditionalOperator` needs conditions to join: given without any (`member` absent or an
/// empty map), the request is refused rather than the operator ignored.
fn check_operator_has_conditions(
    operator: Option<&str>,
    member: &str,
    conditions: usize,
) -> Result<(), ApiError> {
    if operator.is_some() && conditions == 0 {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: ConditionalOperator can only be used when {member} is specified with at least one condition"
        )));
    }
    Ok(())
}

/// `Expected` (+ `ConditionalOperator`) as a condition.
///
/// # Errors
/// Besides the conditions' own: a `ConditionalOperator` without any `Expected` condition.
pub fn expected(input: &Input<'_>, operator: Option<&str>) -> Result<Option<Condition>, ApiError> {
    let obj = input.object("Expected")?;
    check_operator_has_conditions(operator, "Expected", obj.map_or(0, Map::len))?;
    let Some(obj) = obj else {
        return Ok(None);
    };
    attribute_name_keys(obj.keys(), "Expected")?;
    let mut entries = BTreeMap::new();
    for (name, spec) in obj {
        let spec = nested(spec)?;
        let value = match spec.raw("Value") {
            Some(v) => Some(attribute_value_from_json(v)?),
            None => None,
        };
        let comparison = opt_str(spec.raw("ComparisonOperator"))?;
        if let Some(op) = comparison {
            check_operator(op, "Expected", name)?;
        }
        entries.insert(
            name.clone(),
            ExpectedEntry {
                value,
                exists: spec.bool("Exists")?,
                operator: comparison.map(str::to_string),
                values: value_list(spec.raw("AttributeValueList"))?,
            },
        );
    }
    Ok(shoal_expr::legacy::convert_expected(
        entries.iter(),
        operator,
    )?)
}

/// `QueryFilter` / `ScanFilter` (+ `ConditionalOperator`) as a filter condition.
///
/// # Errors
/// Besides the conditions' own: a `ConditionalOperator` without any condition in `member`.
pub fn filter(
    input: &Input<'_>,
    member: &str,
    operator: Option<&str>,
) -> Result<Option<Condition>, ApiError> {
    let conds = conditions(input, member)?;
    check_operator_has_conditions(operator, member, conds.as_ref().map_or(0, BTreeMap::len))?;
    let Some(conds) = conds else {
        return Ok(None);
    };
    Ok(shoal_expr::legacy::convert_filter(conds.iter(), operator)?)
}

/// `KeyConditions` as a key condition.
pub fn key_conditions(input: &Input<'_>) -> Result<Option<KeyCondition>, ApiError> {
    let Some(conds) = conditions(input, "KeyConditions")? else {
        return Ok(None);
    };
    Ok(Some(shoal_expr::legacy::convert_key_conditions(
        conds.iter(),
    )?))
}

/// `AttributeUpdates` as an update.
pub fn attribute_updates(
    input: &Input<'_>,
    v: &mut Violations,
) -> Result<Option<Update>, ApiError> {
    let Some(obj) = input.object("AttributeUpdates")? else {
        return Ok(None);
    };
    attribute_name_keys(obj.keys(), "AttributeUpdates")?;
    let mut updates = BTreeMap::new();
    for (name, spec) in obj {
        let spec = nested(spec)?;
        let action = super::validate::enum_value(
            spec.str("Action")?,
            &format!("attributeUpdates.{name}.member.action"),
            &["ADD", "PUT", "DELETE"],
            v,
        );
        let value = match spec.raw("Value") {
            Some(val) => Some(attribute_value_from_json(val)?),
            None => None,
        };
        updates.insert(
            name.clone(),
            AttributeUpdate {
                action: action.map(str::to_string),
                value,
            },
        );
    }
    Ok(Some(shoal_expr::legacy::convert_attribute_updates(
        updates.iter(),
    )?))
}

//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use shoal_expr::{
    Condition, ConditionKind, ExprContext, ExprError, KeyCondition, Projection, Update,
    parse_condition, parse_key_condition, parse_projection, parse_update,
};
use shoal_types::{AttributeValue, Item};

pub fn n(x: &str) -> AttributeValue {
    AttributeValue::N(x.parse().unwrap())
}

pub fn s(x: &str) -> AttributeValue {
    AttributeValue::S(x.to_string())
}

pub fn b(x: &[u8]) -> AttributeValue {
    AttributeValue::B(x.to_vec())
}

pub fn ss(xs: &[&str]) -> AttributeValue {
    AttributeValue::Ss(xs.iter().map(|x| x.to_string()).collect())
}

pub fn ns(xs: &[&str]) -> AttributeValue {
    AttributeValue::Ns(xs.iter().map(|x| x.parse().unwrap()).collect())
}

pub fn l(xs: Vec<AttributeValue>) -> AttributeValue {
    AttributeValue::L(xs)
}

pub fn m(pairs: &[(&str, AttributeValue)]) -> AttributeValue {
    AttributeValue::M(item(pairs))
}

pub fn item(pairs: &[(&str, AttributeValue)]) -> Item {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

pub fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn values(pairs: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Parses a condition with the given tables (names may be empty → no table).
pub fn cond_with(
    text: &str,
    nm: &[(&str, &str)],
    vals: &[(&str, AttributeValue)],
) -> Result<Condition, ExprError> {
    let nm = names(nm);
    let vals = values(vals);
    let mut ctx = ExprContext::new(
        (!nm.is_empty()).then_some(&nm),
        (!vals.is_empty()).then_some(&vals),
    );
    parse_condition(text, &mut ctx, ConditionKind::Condition)
}

/// Evaluates a condition (which must parse) against an item.
pub fn holds(text: &str, vals: &[(&str, AttributeValue)], it: &Item) -> bool {
    cond_with(text, &[], vals)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .evaluate(it)
}

/// The error message of a condition that must fail to parse.
pub fn cond_err(text: &str, vals: &[(&str, AttributeValue)]) -> String {
    match cond_with(text, &[], vals) {
        Ok(c) => panic!("{text} parsed: {c:?}"),
        Err(e) => e.message,
    }
}

pub fn update_with(
    text: &str,
    nm: &[(&str, &str)],
    vals: &[(&str, AttributeValue)],
) -> Result<Update, ExprError> {
    let nm = names(nm);
    let vals = values(vals);
    let mut ctx = ExprContext::new(
        (!nm.is_empty()).then_some(&nm),
        (!vals.is_empty()).then_some(&vals),
    );
    parse_update(text, &mut ctx)
}

pub fn update_err(text: &str, vals: &[(&str, AttributeValue)]) -> String {
    match update_with(text, &[], vals) {
        Ok(u) => panic!("{text} parsed: {u:?}"),
        Err(e) => e.message,
    }
}

/// Parses and applies an update to a copy of `it`.
pub fn updated(text: &str, vals: &[(&str, AttributeValue)], it: &Item) -> Result<Item, String> {
    let u = update_with(text, &[], vals).unwrap_or_else(|e| panic!("{text}: {e}"));
    let mut out = it.clone();
    u.apply(&mut out).map_err(|e| e.message)?;
    Ok(out)
}

pub fn projection(text: &str, nm: &[(&str, &str)]) -> Result<Projection, ExprError> {
    let nm = names(nm);
    let mut ctx = ExprContext::new((!nm.is_empty()).then_some(&nm), None);
    parse_projection(text, &mut ctx)
}

pub fn key_condition(
    text: &str,
    vals: &[(&str, AttributeValue)],
) -> Result<KeyCondition, ExprError> {
    let vals = values(vals);
    let mut ctx = ExprContext::new(None, Some(&vals));
    parse_key_condition(text, &mut ctx)
}

/// Asserts two items are equal with DynamoDB value semantics.
pub fn assert_items_eq(a: &Item, b: &Item) {
    let eq = a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.get(k)
                .is_some_and(|w| shoal_expr::compare::values_equal(v, w))
        });
    assert!(eq, "items differ:\n left: {a:?}\nright: {b:?}");
}

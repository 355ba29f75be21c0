//! Key conditions on multi-attribute index keys: every partition attribute with `=`, sort
//! conditions on a left prefix of the sort attributes.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use shoal_expr::SortKeyCondition;
use shoal_types::index_key::{IndexKeySchema, KeyRole};
use shoal_types::key::KeyAttr;
use shoal_types::{AttributeValue, ScalarType};

/// HASH `t` (S), `r` (S); RANGE `a` (S), `b` (N), `c` (S).
fn schema() -> IndexKeySchema {
    let attr = |name: &str, ty| KeyAttr {
        name: name.into(),
        ty,
    };
    IndexKeySchema::from_elements(vec![
        (attr("t", ScalarType::S), KeyRole::Hash),
        (attr("r", ScalarType::S), KeyRole::Hash),
        (attr("a", ScalarType::S), KeyRole::Range),
        (attr("b", ScalarType::N), KeyRole::Range),
        (attr("c", ScalarType::S), KeyRole::Range),
    ])
    .unwrap()
}

fn values() -> Vec<(&'static str, AttributeValue)> {
    vec![
        (":t", s("t1")),
        (":r", s("eu")),
        (":a", s("x")),
        (":b", n("5")),
        (":b2", n("9")),
        (":c", s("p")),
    ]
}

fn resolve(text: &str) -> Result<shoal_expr::ResolvedKeyCondition, String> {
    let used: Vec<_> = values()
        .into_iter()
        .filter(|(k, _)| {
            text.split(|c: char| !(c.is_alphanumeric() || c == ':'))
                .any(|w| w == *k)
        })
        .collect();
    key_condition(text, &used)
        .map_err(|e| e.message.clone())?
        .resolve_index(&schema())
        .map_err(|e| e.message)
}

#[test]
fn every_partition_attribute_needs_an_equality() {
    let r = resolve("t = :t AND r = :r").unwrap();
    assert_eq!(r.partition_key, AttributeValue::L(vec![s("t1"), s("eu")]));
    assert!(r.sort_prefix.is_empty() && r.sort.is_none());
    assert_eq!(
        resolve("t = :t").unwrap_err(),
        "Query condition missed key schema element: r"
    );
    assert_eq!(
        resolve("r = :r AND a = :a").unwrap_err(),
        "Query condition missed key schema element: t"
    );
    assert_eq!(
        resolve("t = :t AND r > :r").unwrap_err(),
        "Query key condition not supported"
    );
}

#[test]
fn sort_conditions_take_a_left_prefix_of_equalities_then_one_condition() {
    let r = resolve("t = :t AND r = :r AND a = :a AND b BETWEEN :b AND :b2").unwrap();
    assert_eq!(r.sort_prefix.len(), 1);
    assert!(matches!(r.sort, Some(SortKeyCondition::Between(..))));
    let r = resolve("t = :t AND r = :r AND a = :a AND b = :b AND begins_with(c, :c)").unwrap();
    assert_eq!(r.sort_prefix.len(), 2);
    assert!(matches!(r.sort, Some(SortKeyCondition::BeginsWith(_))));
    let r = resolve("a > :a AND t = :t AND r = :r").unwrap();
    assert!(r.sort_prefix.is_empty());
    assert!(matches!(r.sort, Some(SortKeyCondition::Gt(_))));
}

#[test]
fn skipping_a_sort_attribute_or_following_a_range_condition_is_refused() {
    assert_eq!(
        resolve("t = :t AND r = :r AND b = :b").unwrap_err(),
        "Query key condition not supported: the condition on sort key attribute b needs an \
         equality condition on the sort key attribute a before it"
    );
    assert_eq!(
        resolve("t = :t AND r = :r AND a = :a AND c = :c").unwrap_err(),
        "Query key condition not supported: the condition on sort key attribute c needs an \
         equality condition on the sort key attribute b before it"
    );
    assert_eq!(
        resolve("t = :t AND r = :r AND a > :a AND b = :b").unwrap_err(),
        "Query key condition not supported: only the last sort key attribute with a condition \
         may use a condition other than equality; a has one and b follows it"
    );
    assert_eq!(
        resolve("t = :t AND r = :r AND zzz = :a").unwrap_err(),
        "Query key condition not supported"
    );
    assert_eq!(
        resolve("t = :t AND r = :r AND b = :a").unwrap_err(),
        "One or more parameter values were invalid: Condition parameter type does not match schema type"
    );
}

#[test]
fn start_keys_are_checked_against_the_whole_condition() {
    let r = resolve("t = :t AND r = :r AND a = :a AND b >= :b").unwrap();
    let key = |t: &str, a: &str, b: &str| {
        item(&[
            ("t", s(t)),
            ("r", s("eu")),
            ("a", s(a)),
            ("b", n(b)),
            ("c", s("z")),
        ])
    };
    assert!(r.matches_partition(&schema(), &key("t1", "x", "5")));
    assert!(!r.matches_partition(&schema(), &key("t2", "x", "5")));
    assert!(r.matches_sort(&schema(), &key("t1", "x", "7")));
    assert!(!r.matches_sort(&schema(), &key("t1", "x", "4")));
    assert!(!r.matches_sort(&schema(), &key("t1", "y", "7")));
}

//! Legacy parameters converted into expression trees.

mod common;
use std::collections::BTreeMap;

use common::*;
use shoal_expr::legacy::{
    AttributeUpdate, ExpectedEntry, LegacyCondition, convert_attribute_updates, convert_expected,
    convert_filter, convert_key_conditions,
};
use shoal_types::ScalarType;
use shoal_types::key::{KeyAttr, KeySchema};

fn lc(op: &str, values: Vec<shoal_types::AttributeValue>) -> LegacyCondition {
    LegacyCondition {
        operator: op.into(),
        values,
    }
}

#[test]
fn scan_filter_conditions_are_anded_by_default() {
    let f = BTreeMap::from([
        ("Pages".to_string(), lc("GE", vec![n("600")])),
        ("Kind".to_string(), lc("EQ", vec![s("Book")])),
    ]);
    let c = convert_filter(&f, None).unwrap().unwrap();
    assert!(c.evaluate(&item(&[("Pages", n("700")), ("Kind", s("Book"))])));
    assert!(!c.evaluate(&item(&[("Pages", n("500")), ("Kind", s("Book"))])));
    let c = convert_filter(&f, Some("OR")).unwrap().unwrap();
    assert!(c.evaluate(&item(&[("Pages", n("500")), ("Kind", s("Book"))])));
}

#[test]
fn legacy_operator_with_wrong_argument_count_is_rejected() {
    let f = BTreeMap::from([("a".to_string(), lc("EQ", vec![]))]);
    assert_eq!(
        convert_filter(&f, None).unwrap_err().message,
        "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"
    );
}

#[test]
fn legacy_ordering_operator_rejects_sets() {
    let f = BTreeMap::from([("a".to_string(), lc("LT", vec![ss(&["x"])]))]);
    assert_eq!(
        convert_filter(&f, None).unwrap_err().message,
        "One or more parameter values were invalid: ComparisonOperator LT is not valid for SS AttributeValue type"
    );
}

#[test]
fn legacy_null_not_null_contains_and_not_contains() {
    let f = BTreeMap::from([
        ("gone".to_string(), lc("NULL", vec![])),
        ("tags".to_string(), lc("CONTAINS", vec![s("x")])),
        ("name".to_string(), lc("NOT_CONTAINS", vec![s("zz")])),
    ]);
    let c = convert_filter(&f, None).unwrap().unwrap();
    assert!(c.evaluate(&item(&[("tags", ss(&["x"])), ("name", s("abc"))])));
    assert!(!c.evaluate(&item(&[("tags", ss(&["x"]))])));
}

#[test]
fn expected_value_exists_and_not_exists() {
    let e = BTreeMap::from([
        (
            "a".to_string(),
            ExpectedEntry {
                value: Some(n("1")),
                ..Default::default()
            },
        ),
        (
            "b".to_string(),
            ExpectedEntry {
                exists: Some(false),
                ..Default::default()
            },
        ),
    ]);
    let c = convert_expected(&e, None).unwrap().unwrap();
    assert!(c.evaluate(&item(&[("a", n("1"))])));
    assert!(!c.evaluate(&item(&[("a", n("1")), ("b", n("1"))])));
}

#[test]
fn expected_exists_true_without_value_is_rejected() {
    let e = BTreeMap::from([(
        "a".to_string(),
        ExpectedEntry {
            exists: Some(true),
            ..Default::default()
        },
    )]);
    assert_eq!(
        convert_expected(&e, None).unwrap_err().message,
        "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: a"
    );
}

#[test]
fn key_conditions_resolve_like_expressions() {
    let k = BTreeMap::from([
        ("pk".to_string(), lc("EQ", vec![s("p")])),
        ("sk".to_string(), lc("BETWEEN", vec![n("1"), n("5")])),
    ]);
    let schema = KeySchema {
        hash: KeyAttr {
            name: "pk".into(),
            ty: ScalarType::S,
        },
        range: Some(KeyAttr {
            name: "sk".into(),
            ty: ScalarType::N,
        }),
    };
    let r = convert_key_conditions(&k)
        .unwrap()
        .resolve(&schema)
        .unwrap();
    assert!(r.sort.unwrap().matches(&n("5")));
}

#[test]
fn key_conditions_reject_non_indexable_operators() {
    let k = BTreeMap::from([("pk".to_string(), lc("NE", vec![s("p")]))]);
    assert_eq!(
        convert_key_conditions(&k).unwrap_err().message,
        "Attempted conditional constraint is not an indexable operation"
    );
}

#[test]
fn attribute_updates_put_add_delete() {
    let u = BTreeMap::from([
        (
            "a".to_string(),
            AttributeUpdate {
                action: None,
                value: Some(s("x")),
            },
        ),
        (
            "n".to_string(),
            AttributeUpdate {
                action: Some("ADD".into()),
                value: Some(n("2")),
            },
        ),
        (
            "gone".to_string(),
            AttributeUpdate {
                action: Some("DELETE".into()),
                value: None,
            },
        ),
        (
            "set".to_string(),
            AttributeUpdate {
                action: Some("DELETE".into()),
                value: Some(ss(&["b"])),
            },
        ),
    ]);
    let upd = convert_attribute_updates(&u).unwrap();
    let mut it = item(&[("n", n("1")), ("gone", n("1")), ("set", ss(&["a", "b"]))]);
    upd.apply(&mut it).unwrap();
    assert_items_eq(
        &it,
        &item(&[("a", s("x")), ("n", n("3")), ("set", ss(&["a"]))]),
    );
}

#[test]
fn attribute_updates_add_of_a_string_is_rejected() {
    let u = BTreeMap::from([(
        "a".to_string(),
        AttributeUpdate {
            action: Some("ADD".into()),
            value: Some(s("x")),
        },
    )]);
    assert_eq!(
        convert_attribute_updates(&u).unwrap_err().message,
        "One or more parameter values were invalid: ADD action is not supported for the type S"
    );
}

#[test]
fn filter_eq_ne_in_accept_every_type_and_in_mixed_types() {
    use shoal_types::AttributeValue;
    let it = item(&[
        ("l", l(vec![s("a"), n("1")])),
        ("m", m(&[("k", s("v"))])),
        ("t", AttributeValue::Bool(true)),
        ("z", AttributeValue::Null),
        ("set", ss(&["x", "y"])),
        ("num", n("5")),
    ]);
    for (name, v) in [
        ("l", l(vec![s("a"), n("1")])),
        ("m", m(&[("k", s("v"))])),
        ("t", AttributeValue::Bool(true)),
        ("z", AttributeValue::Null),
        ("set", ss(&["y", "x"])),
    ] {
        let eq = BTreeMap::from([(name.to_string(), lc("EQ", vec![v.clone()]))]);
        assert!(
            convert_filter(&eq, None).unwrap().unwrap().evaluate(&it),
            "EQ {name}"
        );
        let ne = BTreeMap::from([(name.to_string(), lc("NE", vec![v.clone()]))]);
        assert!(
            !convert_filter(&ne, None).unwrap().unwrap().evaluate(&it),
            "NE {name}"
        );
        let other = BTreeMap::from([(name.to_string(), lc("NE", vec![s("other")]))]);
        assert!(
            convert_filter(&other, None).unwrap().unwrap().evaluate(&it),
            "NE other {name}"
        );
        // IN with values of mixed types, one of them the attribute's.
        let inn = BTreeMap::from([(name.to_string(), lc("IN", vec![n("7"), v, s("q")]))]);
        assert!(
            convert_filter(&inn, None).unwrap().unwrap().evaluate(&it),
            "IN {name}"
        );
    }
    let miss = BTreeMap::from([(
        "num".to_string(),
        lc("IN", vec![s("5"), AttributeValue::Bool(true), n("6")]),
    )]);
    assert!(!convert_filter(&miss, None).unwrap().unwrap().evaluate(&it));
    let hit = BTreeMap::from([("num".to_string(), lc("IN", vec![s("5"), n("5.0")]))]);
    assert!(convert_filter(&hit, None).unwrap().unwrap().evaluate(&it));
}

#[test]
fn expected_eq_accepts_bool_but_in_stays_scalar() {
    use shoal_types::AttributeValue;
    let e = BTreeMap::from([(
        "InPublication".to_string(),
        ExpectedEntry {
            value: None,
            exists: None,
            operator: Some("EQ".into()),
            values: Some(vec![AttributeValue::Bool(false)]),
        },
    )]);
    let c = convert_expected(&e, None).unwrap().unwrap();
    assert!(c.evaluate(&item(&[("InPublication", AttributeValue::Bool(false))])));
    let e = BTreeMap::from([(
        "a".to_string(),
        ExpectedEntry {
            value: None,
            exists: None,
            operator: Some("IN".into()),
            values: Some(vec![ss(&["x"])]),
        },
    )]);
    assert_eq!(
        convert_expected(&e, None).unwrap_err().message,
        "One or more parameter values were invalid: ComparisonOperator IN is not valid for SS AttributeValue type"
    );
}

#[test]
fn key_conditions_eq_still_refuses_documents() {
    let k = BTreeMap::from([("pk".to_string(), lc("EQ", vec![m(&[("k", s("v"))])]))]);
    assert_eq!(
        convert_key_conditions(&k).unwrap_err().message,
        "One or more parameter values were invalid: ComparisonOperator EQ is not valid for M AttributeValue type"
    );
}

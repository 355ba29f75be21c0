//! Binding literals and `?` parameters to attribute values, the parameter count check, and the
//! key equalities an executor reads from a `WHERE` clause.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use shoal_partiql::{BindError, Statement, UpdateAction, Value};
use shoal_types::AttributeValue as AV;

fn n(x: &str) -> AV {
    AV::N(x.parse().unwrap())
}

fn s(x: &str) -> AV {
    AV::S(x.to_string())
}

fn set_value(stmt: &str) -> Value {
    let Statement::Update(u) = ok(stmt) else {
        panic!()
    };
    match &u.actions[0] {
        UpdateAction::Set {
            value: shoal_partiql::Expr::Value(v),
            ..
        } => v.clone(),
        other => panic!("{other:?}"),
    }
}

/// The value of `SET a = <literal>` bound with `params`, as DynamoDB JSON.
fn bound(literal: &str, params: &[AV]) -> Result<String, BindError> {
    let v = set_value(&format!("UPDATE t SET a = {literal} WHERE k = 1"));
    v.bind(params)
        .map(|av| shoal_types::attribute_value_to_json(&av).to_string())
}

#[test]
fn literals_bind_to_attribute_values() {
    assert_eq!(bound("'x'", &[]).unwrap(), r#"{"S":"x"}"#);
    assert_eq!(bound("-1.50", &[]).unwrap(), r#"{"N":"-1.5"}"#);
    assert_eq!(bound("TRUE", &[]).unwrap(), r#"{"BOOL":true}"#);
    assert_eq!(bound("NULL", &[]).unwrap(), r#"{"NULL":true}"#);
    assert_eq!(
        bound("[1, 'a', []]", &[]).unwrap(),
        r#"{"L":[{"N":"1"},{"S":"a"},{"L":[]}]}"#
    );
    assert_eq!(
        bound("{'b': {'c': <<'x', 'y'>>}, 'a': <<2, 1>>}", &[]).unwrap(),
        r#"{"M":{"a":{"NS":["2","1"]},"b":{"M":{"c":{"SS":["x","y"]}}}}}"#
    );
}

#[test]
fn parameters_bind_in_order_anywhere_in_a_value() {
    let params = [s("p0"), n("1"), AV::B(vec![1, 2]), AV::B(vec![3])];
    assert_eq!(
        bound("{'a': ?, 'l': [?, <<?, ?>>]}", &params).unwrap(),
        r#"{"M":{"a":{"S":"p0"},"l":{"L":[{"N":"1"},{"BS":["AQI=","Aw=="]}]}}}"#
    );
    assert_eq!(
        bound("<<'x', ?>>", &[s("y")]).unwrap(),
        r#"{"SS":["x","y"]}"#
    );
    // A map parameter is taken as it is.
    let m = AV::M([("k".to_string(), n("1"))].into_iter().collect());
    assert_eq!(
        bound("[?]", &[m]).unwrap(),
        r#"{"L":[{"M":{"k":{"N":"1"}}}]}"#
    );
}

#[test]
fn sets_whose_bound_elements_are_mixed_or_repeated_are_refused() {
    assert_eq!(
        bound("<<'x', ?>>", &[n("1")]),
        Err(BindError::SetElementType { found: "N" })
    );
    assert_eq!(
        bound("<<?>>", &[AV::Bool(true)]),
        Err(BindError::SetElementType { found: "BOOL" })
    );
    assert_eq!(
        bound("<<?, ?>>", &[AV::B(vec![1]), AV::B(vec![1])]),
        Err(BindError::DuplicateSetElement)
    );
    assert_eq!(
        bound("<<1, ?>>", &[n("1.0")]),
        Err(BindError::DuplicateSetElement)
    );
    assert_eq!(
        BindError::DuplicateSetElement.to_string(),
        "Input collection contains duplicates."
    );
    assert_eq!(
        BindError::SetElementType { found: "N" }.to_string(),
        "A set may only hold strings, numbers or binary values, all of one type; found N"
    );
}

#[test]
fn parameter_counts_are_checked() {
    let stmt = ok("INSERT INTO t VALUE {'k': ?, 'v': [?, ?]}");
    assert_eq!(stmt.parameter_count(), 3);
    assert!(stmt.check_parameters(3).is_ok());
    let e = stmt.check_parameters(2).unwrap_err();
    assert_eq!(
        e,
        BindError::ParameterCount {
            expected: 3,
            given: 2
        }
    );
    assert_eq!(
        e.to_string(),
        "Number of parameters in request and statement don't match."
    );
    // Binding without the check reports the first missing parameter.
    let Statement::Insert(insert) = &stmt else {
        panic!()
    };
    assert_eq!(
        insert.bind_item(&[s("k"), n("1")]),
        Err(BindError::ParameterCount {
            expected: 3,
            given: 2
        })
    );
    let item = insert.bind_item(&[s("k"), n("1"), n("2")]).unwrap();
    assert_eq!(
        shoal_types::item_to_json(&item).to_string(),
        r#"{"k":{"S":"k"},"v":{"L":[{"N":"1"},{"N":"2"}]}}"#
    );
}

#[test]
fn equalities_are_the_top_level_conjuncts_of_the_form_path_equals_value() {
    let stmt = ok(
        "SELECT * FROM t WHERE 'x' = pk AND sk = ? AND a.b = 1 AND c > 1 AND d = e AND (f = 1 OR g = 2) AND NOT h = 1 AND size(i) = 3",
    );
    let w = stmt.where_clause().unwrap();
    let eqs: Vec<(String, Value)> = w
        .equalities()
        .into_iter()
        .map(|(p, v)| (shoal_partiql::PathDisplay(p).to_string(), v.clone()))
        .collect();
    assert_eq!(
        eqs,
        vec![
            ("\"pk\"".to_string(), str_("x")),
            ("\"sk\"".to_string(), Value::Param(0)),
            ("\"a\".\"b\"".to_string(), num("1")),
        ]
    );
    // A lone equality is its own conjunct; an OR has none at the top.
    let stmt = ok("DELETE FROM t WHERE pk = 1");
    assert_eq!(stmt.where_clause().unwrap().equalities().len(), 1);
    let stmt = ok("SELECT * FROM t WHERE pk = 1 OR pk = 2");
    assert!(stmt.where_clause().unwrap().equalities().is_empty());
    assert!(ok("SELECT * FROM t").where_clause().is_none());
    assert!(ok("INSERT INTO t VALUE {}").where_clause().is_none());
}

/// `WHERE` of `SELECT * FROM t WHERE <w>` as a condition, bound with `params`.
fn cond(w: &str, params: &[AV]) -> Result<shoal_expr::Condition, BindError> {
    ok(&format!("SELECT * FROM t WHERE {w}"))
        .where_clause()
        .unwrap()
        .to_condition(params)
}

#[test]
fn where_clauses_become_conditions_that_evaluate_like_expressions() {
    let item: shoal_types::Item = [
        ("pk".to_string(), s("a")),
        ("n".to_string(), n("5")),
        ("l".to_string(), AV::L(vec![s("x"), s("y")])),
        ("z".to_string(), AV::Null),
        ("ss".to_string(), AV::Ss(vec!["p".into(), "q".into()])),
    ]
    .into_iter()
    .collect();
    let holds = |w: &str, params: &[AV]| cond(w, params).unwrap().evaluate(&item);
    assert!(holds("pk = 'a' AND n BETWEEN 1 AND ?", &[n("5")]));
    assert!(holds("n IN [1, ?, 9]", &[n("5")]));
    assert!(!holds("n IN [1, 9]", &[]));
    assert!(holds("n <> 4 AND n >= 5 AND n < 6 AND NOT n > 5", &[]));
    assert!(holds(
        "begins_with(pk, 'a') AND contains(ss, 'q') AND contains(l, 'y')",
        &[]
    ));
    assert!(holds(
        "attribute_type(n, 'N') AND attribute_type(l[0], ?)",
        &[s("S")]
    ));
    assert!(holds("size(l) = 2 AND size(pk) > 0", &[]));
    assert!(holds("missing_attr IS MISSING AND n IS NOT MISSING", &[]));
    assert!(holds(
        "z IS NULL AND n IS NOT NULL AND NOT (missing_attr IS NULL)",
        &[]
    ));
    assert!(holds("n = 1 OR l[1] = 'y'", &[]));
    assert!(holds("TRUE AND ?", &[AV::Bool(true)]));
    assert!(!holds("FALSE OR ?", &[AV::Bool(false)]));
}

#[test]
fn what_a_condition_cannot_express_is_refused() {
    let refused = |w: &str, what: &str| {
        let e = cond(w, &[s("x")]).unwrap_err();
        assert!(
            matches!(&e, BindError::Unsupported { what: got } if got == what),
            "{w}: {e}"
        );
        assert_eq!(e.to_string(), format!("Unsupported condition: {what}"));
    };
    refused("n + 1 = 2", "arithmetic in a condition");
    refused(
        "list_append(l, l) = l",
        "list_append as an operand in a condition",
    );
    refused(
        "size(size(l)) = 1",
        "size applies only to an attribute or path",
    );
    refused(
        "size('abc') = 3",
        "size applies only to an attribute or path",
    );
    refused("'x' IS MISSING", "IS applies only to an attribute or path");
    refused(
        "attribute_type('n', 'N')",
        "attribute_type's first argument must be an attribute or path",
    );
    refused("(a = 1) = TRUE", "a condition as an operand");
    refused("?", "a value that is not a boolean is not a condition");
    assert_eq!(
        cond("n = ?", &[]).unwrap_err(),
        BindError::ParameterCount {
            expected: 1,
            given: 0
        }
    );
}

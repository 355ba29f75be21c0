//! Update expressions: SET / REMOVE / ADD / DELETE semantics and errors.

mod common;
use common::*;
use shoal_types::AttributeValue;

fn base() -> shoal_types::Item {
    item(&[
        ("Id", n("789")),
        ("Price", n("52")),
        ("Brand", s("Acme")),
        ("Color", ss(&["Red", "Black"])),
        ("Ids", ns(&["1", "2"])),
        (
            "Related",
            l(vec![
                s("Chisel"),
                s("Hammer"),
                s("Nails"),
                s("Screwdriver"),
                s("Hacksaw"),
            ]),
        ),
        ("Reviews", m(&[("Five", l(vec![s("great")]))])),
    ])
}

#[test]
fn set_assigns_values_and_adds_attributes() {
    let out = updated(
        "SET Brand = :b, NewAttr = :n",
        &[(":b", s("X")), (":n", n("1"))],
        &base(),
    )
    .unwrap();
    assert_items_eq(&out, &{
        let mut e = base();
        e.insert("Brand".into(), s("X"));
        e.insert("NewAttr".into(), n("1"));
        e
    });
}

#[test]
fn set_plus_and_minus_on_numbers() {
    let out = updated("SET Price = Price - :p", &[(":p", n("15"))], &base()).unwrap();
    assert!(shoal_expr::compare::values_equal(&out["Price"], &n("37")));
    let out = updated("SET Price = :p + Price", &[(":p", n("0.5"))], &base()).unwrap();
    assert!(shoal_expr::compare::values_equal(&out["Price"], &n("52.5")));
}

#[test]
fn set_plus_on_a_missing_attribute_is_an_error() {
    assert_eq!(
        updated("SET Stock = Stock + :p", &[(":p", n("1"))], &base()).unwrap_err(),
        "The provided expression refers to an attribute that does not exist in the item"
    );
}

#[test]
fn set_plus_on_a_string_attribute_is_an_error() {
    assert_eq!(
        updated("SET Brand = Brand + :p", &[(":p", n("1"))], &base()).unwrap_err(),
        "An operand in the update expression has an incorrect data type"
    );
}

#[test]
fn set_plus_with_a_string_constant_is_rejected_at_parse() {
    assert_eq!(
        update_err("SET a = a + :p", &[(":p", s("1"))]),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S"
    );
}

#[test]
fn set_result_beyond_38_digits_is_a_number_error() {
    let err = updated(
        "SET a = :x + :y",
        &[(":x", n("1E+38")), (":y", n("1"))],
        &base(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        "Attempting to store more than 38 significant digits in a Number"
    );
}

#[test]
fn add_beyond_the_number_range_is_an_overflow() {
    let big = "9E+125";
    let err = updated("ADD a :x", &[(":x", n(big))], &item(&[("a", n(big))])).unwrap_err();
    assert_eq!(
        err,
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    );
}

#[test]
fn list_append_appends_and_prepends() {
    let vals = [(":v", l(vec![s("Saw")]))];
    let out = updated("SET Related = list_append(Related, :v)", &vals, &base()).unwrap();
    let AttributeValue::L(list) = &out["Related"] else {
        panic!()
    };
    assert_eq!(list.len(), 6);
    assert!(shoal_expr::compare::values_equal(&list[5], &s("Saw")));
    let out = updated("SET Related = list_append(:v, Related)", &vals, &base()).unwrap();
    let AttributeValue::L(list) = &out["Related"] else {
        panic!()
    };
    assert!(shoal_expr::compare::values_equal(&list[0], &s("Saw")));
}

#[test]
fn list_append_with_a_string_constant_is_rejected_at_parse() {
    assert_eq!(
        update_err("SET a = list_append(a, :v)", &[(":v", s("x"))]),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: S"
    );
}

#[test]
fn list_append_with_if_not_exists_creates_the_list() {
    let vals = [(":e", l(vec![])), (":v", l(vec![n("1")]))];
    let out = updated(
        "SET nums = list_append(if_not_exists(nums, :e), :v)",
        &vals,
        &base(),
    )
    .unwrap();
    assert!(shoal_expr::compare::values_equal(
        &out["nums"],
        &l(vec![n("1")])
    ));
}

#[test]
fn if_not_exists_keeps_an_existing_value() {
    let out = updated(
        "SET Price = if_not_exists(Price, :p)",
        &[(":p", n("100"))],
        &base(),
    )
    .unwrap();
    assert!(shoal_expr::compare::values_equal(&out["Price"], &n("52")));
    let out = updated(
        "SET Cost = if_not_exists(Cost, :p)",
        &[(":p", n("100"))],
        &base(),
    )
    .unwrap();
    assert!(shoal_expr::compare::values_equal(&out["Cost"], &n("100")));
}

#[test]
fn set_values_are_computed_from_the_item_before_the_update() {
    let out = updated("SET a = Price, Price = :p", &[(":p", n("1"))], &base()).unwrap();
    assert!(shoal_expr::compare::values_equal(&out["a"], &n("52")));
    assert!(shoal_expr::compare::values_equal(&out["Price"], &n("1")));
}

#[test]
fn set_nested_map_attribute() {
    let out = updated("SET Reviews.Three = :r", &[(":r", s("ok"))], &base()).unwrap();
    let AttributeValue::M(r) = &out["Reviews"] else {
        panic!()
    };
    assert!(r.contains_key("Three") && r.contains_key("Five"));
}

#[test]
fn set_nested_path_under_a_missing_parent_is_invalid_for_update() {
    assert_eq!(
        updated("SET Nope.x = :r", &[(":r", s("ok"))], &base()).unwrap_err(),
        "The document path provided in the update expression is invalid for update"
    );
}

#[test]
fn set_list_index_replaces_and_beyond_the_end_appends_in_index_order() {
    let out = updated(
        "SET Related[0] = :a, Related[20] = :c, Related[10] = :b",
        &[(":a", s("A")), (":b", s("B")), (":c", s("C"))],
        &base(),
    )
    .unwrap();
    let AttributeValue::L(list) = &out["Related"] else {
        panic!()
    };
    assert_eq!(list.len(), 7);
    assert!(shoal_expr::compare::values_equal(&list[0], &s("A")));
    assert!(shoal_expr::compare::values_equal(&list[5], &s("B")));
    assert!(shoal_expr::compare::values_equal(&list[6], &s("C")));
}

#[test]
fn remove_attributes_and_ignore_missing_ones() {
    let out = updated("REMOVE Brand, Nope, Reviews.Five", &[], &base()).unwrap();
    assert!(!out.contains_key("Brand"));
    assert!(shoal_expr::compare::values_equal(&out["Reviews"], &m(&[])));
}

#[test]
fn remove_list_elements_shifts_the_rest_down() {
    let out = updated("REMOVE Related[1], Related[2]", &[], &base()).unwrap();
    assert!(shoal_expr::compare::values_equal(
        &out["Related"],
        &l(vec![s("Chisel"), s("Screwdriver"), s("Hacksaw")])
    ));
}

#[test]
fn add_number_creates_from_zero_and_increments() {
    let out = updated("ADD Qty :q", &[(":q", n("5"))], &base()).unwrap();
    assert!(shoal_expr::compare::values_equal(&out["Qty"], &n("5")));
    let out = updated("ADD Price :q", &[(":q", n("-2"))], &base()).unwrap();
    assert!(shoal_expr::compare::values_equal(&out["Price"], &n("50")));
}

#[test]
fn add_set_unions_and_creates() {
    let out = updated("ADD Color :c", &[(":c", ss(&["Red", "Blue"]))], &base()).unwrap();
    assert!(shoal_expr::compare::values_equal(
        &out["Color"],
        &ss(&["Red", "Black", "Blue"])
    ));
    let out = updated("ADD Sizes :c", &[(":c", ns(&["1"]))], &base()).unwrap();
    assert!(shoal_expr::compare::values_equal(
        &out["Sizes"],
        &ns(&["1"])
    ));
}

#[test]
fn add_to_an_attribute_of_another_type_is_an_error() {
    assert_eq!(
        updated("ADD Brand :q", &[(":q", n("5"))], &base()).unwrap_err(),
        "An operand in the update expression has an incorrect data type"
    );
    assert_eq!(
        updated("ADD Color :q", &[(":q", ns(&["5"]))], &base()).unwrap_err(),
        "An operand in the update expression has an incorrect data type"
    );
}

#[test]
fn add_with_a_string_operand_is_rejected_at_parse() {
    assert_eq!(
        update_err("ADD a :v", &[(":v", s("x"))]),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND"
    );
}

#[test]
fn delete_removes_set_elements_and_the_attribute_when_empty() {
    let out = updated(
        "DELETE Color :c",
        &[(":c", ss(&["Red", "Purple"]))],
        &base(),
    )
    .unwrap();
    assert!(shoal_expr::compare::values_equal(
        &out["Color"],
        &ss(&["Black"])
    ));
    let out = updated("DELETE Ids :c", &[(":c", ns(&["1", "2.00"]))], &base()).unwrap();
    assert!(!out.contains_key("Ids"));
    let out = updated("DELETE Nope :c", &[(":c", ns(&["1"]))], &base()).unwrap();
    assert!(!out.contains_key("Nope"));
}

/// `DELETE` "supports only Set data types" (Expressions.UpdateExpressions.md): a set operand
/// against a stored value that is not a set of the same type is DynamoDB's type error
/// ("An operand in the update expression has an incorrect data type", the wording the model's
/// TransactionCanceledException lists), and the item is left as it was.
#[test]
fn delete_from_an_attribute_of_another_type_is_an_error() {
    let wrong = "An operand in the update expression has an incorrect data type";
    let stored = item(&[
        ("Str", s("Red")),
        ("Num", n("1")),
        ("Nums", ns(&["1", "2"])),
        ("Strs", ss(&["Red"])),
        ("Bins", AttributeValue::Bs(vec![b"x".to_vec()])),
        ("Lst", l(vec![s("Red")])),
        ("Dict", m(&[("Red", n("1"))])),
    ]);
    for (text, v) in [
        ("DELETE Str :v", ss(&["Red"])),
        ("DELETE Num :v", ss(&["1"])),
        ("DELETE Num :v", ns(&["1"])),
        ("DELETE Nums :v", ss(&["1"])),
        ("DELETE Strs :v", ns(&["1"])),
        ("DELETE Bins :v", ss(&["x"])),
        ("DELETE Lst :v", ss(&["Red"])),
        ("DELETE Dict :v", ss(&["Red"])),
    ] {
        assert_eq!(
            updated(text, &[(":v", v)], &stored).unwrap_err(),
            wrong,
            "{text}"
        );
    }
}

#[test]
fn add_to_a_set_or_number_of_another_type_is_an_error() {
    let wrong = "An operand in the update expression has an incorrect data type";
    let stored = item(&[
        ("Str", s("Red")),
        ("Num", n("1")),
        ("Nums", ns(&["1"])),
        ("Strs", ss(&["Red"])),
        ("Lst", l(vec![n("1")])),
    ]);
    for (text, v) in [
        ("ADD Str :v", ss(&["Red"])),
        ("ADD Str :v", n("1")),
        ("ADD Num :v", ns(&["1"])),
        ("ADD Nums :v", n("1")),
        ("ADD Nums :v", ss(&["1"])),
        ("ADD Strs :v", ns(&["1"])),
        ("ADD Lst :v", n("1")),
    ] {
        assert_eq!(
            updated(text, &[(":v", v)], &stored).unwrap_err(),
            wrong,
            "{text}"
        );
    }
}

#[test]
fn delete_with_a_number_operand_is_rejected_at_parse() {
    assert_eq!(
        update_err("DELETE a :v", &[(":v", n("1"))]),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER, typeSet: ALLOWED_FOR_DELETE_OPERAND"
    );
}

#[test]
fn clauses_in_any_order() {
    let out = updated(
        "DELETE Color :c ADD Qty :q REMOVE Brand SET Price = :p",
        &[(":c", ss(&["Red"])), (":q", n("1")), (":p", n("9"))],
        &base(),
    )
    .unwrap();
    assert!(!out.contains_key("Brand"));
    assert!(shoal_expr::compare::values_equal(&out["Price"], &n("9")));
}

#[test]
fn a_clause_used_twice_is_rejected() {
    assert_eq!(
        update_err("SET a = :v SET b = :v", &[(":v", n("1"))]),
        "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;"
    );
}

#[test]
fn overlapping_paths_are_rejected() {
    assert_eq!(
        update_err("SET a = :v REMOVE a.b", &[(":v", n("1"))]),
        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"
    );
}

#[test]
fn conflicting_paths_are_rejected() {
    assert_eq!(
        update_err("SET a[0] = :v, a.b = :v", &[(":v", n("1"))]),
        "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, [0]], path two: [a, b]"
    );
}

#[test]
fn condition_functions_are_not_allowed_in_updates() {
    assert_eq!(
        update_err("SET a = size(b)", &[]),
        "Invalid UpdateExpression: The function is not allowed in an update expression; function: size"
    );
}

#[test]
fn empty_update_is_rejected() {
    assert_eq!(
        update_err("", &[]),
        "Invalid UpdateExpression: The expression can not be empty;"
    );
}

#[test]
fn update_syntax_error_at_end() {
    assert_eq!(
        update_err("SET a =", &[]),
        "Invalid UpdateExpression: Syntax error; token: \"<EOF>\", near: \"a =\""
    );
}

#[test]
fn top_level_names_and_updated_paths() {
    let u = update_with(
        "SET a.b = :v, c = :v REMOVE a.d ADD e :v",
        &[],
        &[(":v", n("1"))],
    )
    .unwrap();
    assert_eq!(u.top_level_names(), vec!["a", "c", "e"]);
    let before = item(&[
        ("a", m(&[("b", n("0")), ("d", n("1")), ("x", n("2"))])),
        ("z", n("3")),
    ]);
    let mut after = before.clone();
    u.apply(&mut after).unwrap();
    let old = u.updated_paths().apply(&before);
    assert_items_eq(&old, &item(&[("a", m(&[("b", n("0")), ("d", n("1"))]))]));
    let new = u.updated_paths().apply(&after);
    assert_items_eq(
        &new,
        &item(&[("a", m(&[("b", n("1"))])), ("c", n("1")), ("e", n("1"))]),
    );
}

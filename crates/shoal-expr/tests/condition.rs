//! Condition / filter expressions: operators, functions, precedence, placeholders, errors.

mod common;
use common::*;
use shoal_expr::{ConditionKind, ExprContext, parse_condition};

fn sample() -> shoal_types::Item {
    item(&[
        ("Id", n("456")),
        ("Price", n("650")),
        ("ProductCategory", s("Sporting Goods")),
        ("Color", ss(&["Red", "Black"])),
        ("Ids", ns(&["1", "2"])),
        ("Tags", l(vec![s("x"), n("3")])),
        (
            "Pictures",
            m(&[("FrontView", s("http://example.com/front.jpg"))]),
        ),
        ("Bin", b(&[1, 2, 3, 4])),
        ("InStock", shoal_types::AttributeValue::Bool(true)),
        ("Nothing", shoal_types::AttributeValue::Null),
        ("Safety.Warning", s("helmet")),
    ])
}

#[test]
fn equal_compares_numbers_numerically() {
    assert!(holds("Price = :p", &[(":p", n("650.0"))], &sample()));
    assert!(!holds("Price = :p", &[(":p", n("651"))], &sample()));
}

#[test]
fn equal_between_different_types_is_false() {
    assert!(!holds("Price = :p", &[(":p", s("650"))], &sample()));
}

#[test]
fn not_equal_is_true_for_a_missing_attribute() {
    assert!(holds("Absent <> :p", &[(":p", n("1"))], &sample()));
    assert!(holds("Price <> :p", &[(":p", n("1"))], &sample()));
    assert!(!holds("Price <> :p", &[(":p", n("650"))], &sample()));
}

#[test]
fn ordering_comparisons_on_numbers_strings_and_binary() {
    let it = sample();
    assert!(holds("Price < :v", &[(":v", n("1000"))], &it));
    assert!(holds("Price <= :v", &[(":v", n("650"))], &it));
    assert!(holds("Price > :v", &[(":v", n("-1"))], &it));
    assert!(holds("Price >= :v", &[(":v", n("650"))], &it));
    assert!(holds("ProductCategory > :v", &[(":v", s("A"))], &it));
    assert!(holds("Bin < :v", &[(":v", b(&[1, 3]))], &it));
}

#[test]
fn ordering_between_different_types_is_false() {
    assert!(!holds("Price < :v", &[(":v", s("1000"))], &sample()));
    assert!(!holds("InStock > :v", &[(":v", n("0"))], &sample()));
}

#[test]
fn set_equality_ignores_order() {
    assert!(holds(
        "Color = :c",
        &[(":c", ss(&["Black", "Red"]))],
        &sample()
    ));
}

#[test]
fn between_is_inclusive() {
    let it = sample();
    assert!(holds(
        "Price BETWEEN :lo AND :hi",
        &[(":lo", n("650")), (":hi", n("700"))],
        &it
    ));
    assert!(!holds(
        "Price between :lo and :hi",
        &[(":lo", n("500")), (":hi", n("600"))],
        &it
    ));
}

#[test]
fn in_matches_any_operand() {
    let vals = [(":a", s("Gardening")), (":b", s("Sporting Goods"))];
    assert!(holds("ProductCategory IN (:a, :b)", &vals, &sample()));
    assert!(!holds("ProductCategory IN (:a)", &vals[..1], &sample()));
}

#[test]
fn precedence_not_then_and_then_or() {
    // a OR b AND c with a, b true and c false is true; (a OR b) AND c is false.
    let vals = [(":t", n("1")), (":f", n("2"))];
    let it = item(&[("a", n("1")), ("b", n("1")), ("c", n("1"))]);
    assert!(holds("a = :t OR b = :t AND c = :f", &vals, &it));
    assert!(!holds("(a = :t OR b = :t) AND c = :f", &vals, &it));
    assert!(holds("NOT a = :f AND b = :t", &vals, &it));
    assert!(!holds("NOT (a = :t AND b = :t)", &vals, &it));
}

#[test]
fn attribute_exists_and_not_exists_follow_nested_paths() {
    let it = sample();
    assert!(holds("attribute_exists(Pictures.FrontView)", &[], &it));
    assert!(!holds("attribute_exists(Pictures.SideView)", &[], &it));
    assert!(holds("attribute_not_exists(Manufacturer)", &[], &it));
    assert!(holds("attribute_exists(Tags[1])", &[], &it));
    assert!(!holds("attribute_exists(Tags[2])", &[], &it));
    assert!(!holds("attribute_exists(Tags.x)", &[], &it));
}

#[test]
fn attribute_type_checks_the_type_descriptor() {
    let it = sample();
    assert!(holds("attribute_type(Color, :t)", &[(":t", s("SS"))], &it));
    assert!(holds(
        "attribute_type(Nothing, :t)",
        &[(":t", s("NULL"))],
        &it
    ));
    assert!(!holds("attribute_type(Price, :t)", &[(":t", s("S"))], &it));
}

#[test]
fn begins_with_on_strings_and_binary() {
    let it = sample();
    assert!(holds(
        "begins_with(Pictures.FrontView, :p)",
        &[(":p", s("http://"))],
        &it
    ));
    assert!(!holds(
        "begins_with(ProductCategory, :p)",
        &[(":p", s("http://"))],
        &it
    ));
    assert!(holds("begins_with(Bin, :p)", &[(":p", b(&[1, 2]))], &it));
}

#[test]
fn contains_substring_set_member_and_list_element() {
    let it = sample();
    assert!(holds(
        "contains(ProductCategory, :v)",
        &[(":v", s("ting G"))],
        &it
    ));
    assert!(holds("contains(Color, :v)", &[(":v", s("Red"))], &it));
    assert!(!holds("contains(Color, :v)", &[(":v", s("Blue"))], &it));
    assert!(holds("contains(Ids, :v)", &[(":v", n("2.0"))], &it));
    assert!(holds("contains(Tags, :v)", &[(":v", n("3"))], &it));
    assert!(!holds("contains(Price, :v)", &[(":v", n("6"))], &it));
}

#[test]
fn size_counts_characters_bytes_elements() {
    let it = sample();
    assert!(holds("size(ProductCategory) = :v", &[(":v", n("14"))], &it));
    assert!(holds("size(Bin) = :v", &[(":v", n("4"))], &it));
    assert!(holds("size(Color) = :v", &[(":v", n("2"))], &it));
    assert!(holds("size(Pictures) = :v", &[(":v", n("1"))], &it));
    assert!(holds("size(Tags) > :v", &[(":v", n("1"))], &it));
    assert!(!holds("size(Price) > :v", &[(":v", n("-1"))], &it));
    assert!(!holds("size(Absent) >= :v", &[(":v", n("0"))], &it));
}

#[test]
fn name_placeholders_substitute_whole_names_including_dots() {
    let c = cond_with(
        "#sw = :v",
        &[("#sw", "Safety.Warning")],
        &[(":v", s("helmet"))],
    )
    .unwrap();
    assert!(c.evaluate(&sample()));
    let c = cond_with(
        "#p.#f = :v",
        &[("#p", "Pictures"), ("#f", "FrontView")],
        &[(":v", s("http://example.com/front.jpg"))],
    )
    .unwrap();
    assert!(c.evaluate(&sample()));
}

#[test]
fn missing_item_is_an_empty_item() {
    let empty = shoal_types::Item::new();
    assert!(holds("attribute_not_exists(Id)", &[], &empty));
    assert!(!holds("attribute_exists(Id)", &[], &empty));
}

#[test]
fn keywords_are_case_insensitive() {
    let vals = [(":a", n("1")), (":b", n("700"))];
    assert!(holds("Price bEtWeEn :a aNd :b", &vals, &sample()));
}

#[test]
fn empty_condition_is_rejected() {
    assert_eq!(
        cond_err("", &[]),
        "Invalid ConditionExpression: The expression can not be empty;"
    );
}

#[test]
fn empty_filter_is_rejected_with_filter_prefix() {
    let mut ctx = ExprContext::new(None, None);
    let e = parse_condition("", &mut ctx, ConditionKind::Filter).unwrap_err();
    assert_eq!(
        e.message,
        "Invalid FilterExpression: The expression can not be empty;"
    );
}

#[test]
fn syntax_error_at_end_reports_eof_and_last_tokens() {
    assert_eq!(
        cond_err("a =", &[]),
        "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"a =\""
    );
}

#[test]
fn syntax_error_reports_token_and_neighbours() {
    assert_eq!(
        cond_err("a = :v :w", &[(":v", n("1")), (":w", n("1"))]),
        "Invalid ConditionExpression: Syntax error; token: \":w\", near: \":v :w\""
    );
    assert_eq!(
        cond_err("my-attr = :v", &[(":v", n("1"))]),
        "Invalid ConditionExpression: Syntax error; token: \"-\", near: \"my-attr\""
    );
}

#[test]
fn reserved_word_as_bare_name_is_rejected() {
    assert_eq!(
        cond_err("status = :v", &[(":v", n("1"))]),
        "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status"
    );
}

#[test]
fn undefined_value_placeholder_is_rejected() {
    assert_eq!(
        cond_err("a = :v", &[(":w", n("1"))]),
        "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :v"
    );
}

#[test]
fn undefined_name_placeholder_is_rejected() {
    assert_eq!(
        cond_err("#n = :v", &[(":v", n("1"))]),
        "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #n"
    );
}

#[test]
fn function_with_wrong_operand_count_is_rejected() {
    assert_eq!(
        cond_err("begins_with(a)", &[]),
        "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1"
    );
    assert_eq!(
        cond_err("attribute_exists(a, b)", &[]),
        "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2"
    );
}

#[test]
fn unknown_function_is_rejected() {
    assert_eq!(
        cond_err("foo(a)", &[]),
        "Invalid ConditionExpression: Invalid function name; function: foo"
    );
}

#[test]
fn function_names_are_case_sensitive() {
    assert_eq!(
        cond_err("Attribute_Exists(a)", &[]),
        "Invalid ConditionExpression: Invalid function name; function: Attribute_Exists"
    );
}

#[test]
fn update_functions_are_not_allowed_in_conditions() {
    assert_eq!(
        cond_err("a = list_append(b, c)", &[]),
        "Invalid ConditionExpression: The function is not allowed in a condition expression; function: list_append"
    );
}

#[test]
fn size_alone_is_not_a_condition() {
    assert_eq!(
        cond_err("size(a)", &[]),
        "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: size"
    );
}

#[test]
fn attribute_exists_requires_a_path() {
    assert_eq!(
        cond_err("attribute_exists(:v)", &[(":v", n("1"))]),
        "Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists"
    );
}

#[test]
fn attribute_type_rejects_unknown_type_names() {
    assert_eq!(
        cond_err("attribute_type(a, :t)", &[(":t", s("STRING"))]),
        "Invalid ConditionExpression: Invalid attribute type name found; type: STRING, valid types: { B,NULL,SS,BOOL,L,BS,N,NS,S,M }"
    );
}

#[test]
fn a_group_that_is_only_another_group_has_redundant_parentheses() {
    let v = [(":v", s("x")), (":w", s("y"))];
    for text in [
        "((a = :v))",
        "((a = :v)) AND b = :w",
        "NOT ((a = :v) )",
        "(((a = :v) OR b = :w))",
    ] {
        assert_eq!(
            cond_err(text, &v),
            "Invalid ConditionExpression: The expression has redundant parentheses;",
            "{text}"
        );
    }
    let it = item(&[("a", s("x")), ("b", s("y"))]);
    for text in [
        "(a = :v)",
        "(a = :v) AND (b = :w)",
        "((a = :v) AND b = :w)",
        "(a = :v AND (b = :w))",
        "NOT (a = :w)",
    ] {
        assert!(holds(text, &v, &it), "{text}");
    }
}

#[test]
fn attribute_type_takes_its_type_only_from_a_value_placeholder() {
    for text in ["attribute_type(a, b)", "attribute_type(a, size(b))"] {
        assert_eq!(
            cond_err(text, &[]),
            "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: PATH",
            "{text}"
        );
    }
    assert_eq!(
        cond_err("attribute_type(:v, :t)", &[(":v", s("x")), (":t", s("S"))]),
        "Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_type"
    );
}

#[test]
fn begins_with_rejects_a_number_operand() {
    assert_eq!(
        cond_err("begins_with(a, :v)", &[(":v", n("1"))]),
        "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"
    );
}

#[test]
fn contains_with_the_same_path_twice_is_rejected() {
    assert_eq!(
        cond_err("contains(a, a)", &[]),
        "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [a]"
    );
}

#[test]
fn between_with_reversed_constant_bounds_is_rejected() {
    assert_eq!(
        cond_err("a BETWEEN :hi AND :lo", &[(":hi", n("5")), (":lo", n("1"))]),
        "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:1}"
    );
}

/// `BETWEEN` orders within one type (the legacy documentation: "two AttributeValue elements of
/// the same type"), so constant bounds of two types are refused at parse, in every expression
/// kind, before the order check.
#[test]
fn between_with_constant_bounds_of_two_types_is_rejected() {
    assert_eq!(
        cond_err("a BETWEEN :n AND :s", &[(":n", n("1")), (":s", s("z"))]),
        "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:z}"
    );
    assert_eq!(
        cond_err(
            "size(a) BETWEEN :s AND :n",
            &[(":n", n("1")), (":s", s("z"))]
        ),
        "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {S:z}, upper bound operand: AttributeValue: {N:1}"
    );
    assert!(
        cond_err("a BETWEEN :b AND :s", &[(":b", b(b"x")), (":s", s("a"))])
            .contains("requires same data type for lower and upper bounds")
    );
    let vals = values(&[(":n", n("1")), (":s", s("z"))]);
    let mut ctx = ExprContext::new(None, Some(&vals));
    let e =
        parse_condition("NOT (a BETWEEN :n AND :s)", &mut ctx, ConditionKind::Filter).unwrap_err();
    assert!(
        e.message
            .starts_with("Invalid FilterExpression: The BETWEEN operator requires same data type"),
        "{e}"
    );
    // Bounds of one type in order, and bounds read from the item, still parse.
    cond_with(
        "a BETWEEN :x AND :y",
        &[],
        &[(":x", s("a")), (":y", s("b"))],
    )
    .unwrap();
    cond_with("a BETWEEN b AND :s", &[], &[(":s", s("z"))]).unwrap();
    assert!(!holds(
        "a BETWEEN b AND :s",
        &[(":s", s("z"))],
        &item(&[("a", s("c")), ("b", n("1"))])
    ));
}

#[test]
fn negative_or_fractional_list_index_is_a_syntax_error() {
    assert!(cond_err("a[-1] = :v", &[(":v", n("1"))]).contains("Syntax error; token: \"-\""));
    assert!(cond_err("a[0.4] = :v", &[(":v", n("1"))]).contains("Syntax error; token: \".\""));
}

#[test]
fn unused_placeholders_are_reported() {
    let nm = names(&[("#a", "a"), ("#b", "b"), ("#c", "c")]);
    let vals = values(&[(":v", n("1")), (":w", n("2"))]);
    let mut ctx = ExprContext::new(Some(&nm), Some(&vals));
    parse_condition("#c = :w", &mut ctx, ConditionKind::Condition).unwrap();
    assert_eq!(
        ctx.check_all_used().unwrap_err().message,
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}"
    );
    let nm = names(&[("#c", "c")]);
    let mut ctx = ExprContext::new(Some(&nm), Some(&vals));
    parse_condition("#c = :w", &mut ctx, ConditionKind::Condition).unwrap();
    assert_eq!(
        ctx.check_all_used().unwrap_err().message,
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:v}"
    );
}

#[test]
fn placeholders_used_by_any_expression_of_the_request_count_as_used() {
    let nm = names(&[("#a", "a")]);
    let vals = values(&[(":v", n("1"))]);
    let mut ctx = ExprContext::new(Some(&nm), Some(&vals));
    parse_condition("attribute_exists(#a)", &mut ctx, ConditionKind::Condition).unwrap();
    shoal_expr::parse_update("SET b = :v", &mut ctx).unwrap();
    ctx.check_all_used().unwrap();
}

#[test]
fn invalid_placeholder_keys_are_reported() {
    let nm = names(&[("a", "a")]);
    let ctx = ExprContext::new(Some(&nm), None);
    assert_eq!(
        ctx.check_keys().unwrap_err().message,
        "ExpressionAttributeNames contains invalid key: Syntax error; key: \"a\""
    );
}

#[test]
fn top_level_names_lists_every_attribute_read() {
    let names: std::collections::HashMap<String, String> =
        [("#s".to_string(), "status".to_string())]
            .into_iter()
            .collect();
    let values: std::collections::HashMap<String, shoal_types::AttributeValue> =
        [(":v".to_string(), shoal_types::AttributeValue::S("x".into()))]
            .into_iter()
            .collect();
    let mut ctx = shoal_expr::ExprContext::new(Some(&names), Some(&values));
    let c = shoal_expr::parse_condition(
        "a.b[1] = :v AND (size(c) > :v OR NOT attribute_exists(#s)) AND begins_with(d, :v)",
        &mut ctx,
        shoal_expr::ConditionKind::Filter,
    )
    .unwrap();
    assert_eq!(c.top_level_names(), vec!["a", "c", "status", "d"]);
}

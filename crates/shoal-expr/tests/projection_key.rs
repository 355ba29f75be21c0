//! Projection and key condition expressions.

mod common;
use common::*;
use shoal_expr::SortKeyCondition;
use shoal_types::ScalarType;
use shoal_types::key::{KeyAttr, KeySchema};

fn catalog() -> shoal_types::Item {
    item(&[
        ("Description", s("123 description")),
        ("RelatedItems", l(vec![n("341"), n("472"), n("649")])),
        (
            "ProductReviews",
            m(&[
                ("FiveStar", l(vec![s("great")])),
                ("OneStar", l(vec![s("bad")])),
            ]),
        ),
        ("Safety.Warning", s("helmet")),
        ("Price", n("5")),
    ])
}

#[test]
fn projection_selects_top_level_nested_and_list_elements() {
    let p = projection("Description, RelatedItems[0], ProductReviews.FiveStar", &[]).unwrap();
    assert_items_eq(
        &p.apply(&catalog()),
        &item(&[
            ("Description", s("123 description")),
            ("RelatedItems", l(vec![n("341")])),
            ("ProductReviews", m(&[("FiveStar", l(vec![s("great")]))])),
        ]),
    );
}

#[test]
fn projection_packs_list_elements_in_index_order() {
    let p = projection("RelatedItems[2], RelatedItems[0], RelatedItems[7]", &[]).unwrap();
    assert_items_eq(
        &p.apply(&catalog()),
        &item(&[("RelatedItems", l(vec![n("341"), n("649")]))]),
    );
}

#[test]
fn projection_dot_is_a_path_separator_unless_in_a_name_placeholder() {
    let p = projection("Safety.Warning", &[]).unwrap();
    assert!(p.apply(&catalog()).is_empty());
    let p = projection("#sw", &[("#sw", "Safety.Warning")]).unwrap();
    assert_items_eq(
        &p.apply(&catalog()),
        &item(&[("Safety.Warning", s("helmet"))]),
    );
}

#[test]
fn projection_of_a_reserved_word_is_rejected() {
    assert_eq!(
        projection("Comment", &[]).unwrap_err().message,
        "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: Comment"
    );
}

#[test]
fn projection_overlapping_paths_are_rejected() {
    assert_eq!(
        projection("a, a.b", &[]).unwrap_err().message,
        "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"
    );
}

#[test]
fn projection_empty_is_rejected() {
    assert_eq!(
        projection("  ", &[]).unwrap_err().message,
        "Invalid ProjectionExpression: The expression can not be empty;"
    );
}

#[test]
fn projection_top_level_names_are_distinct() {
    let p = projection("a.b, c, a.d", &[]).unwrap();
    assert_eq!(p.top_level_names().collect::<Vec<_>>(), vec!["a", "c"]);
}

fn schema(range: Option<(&str, ScalarType)>) -> KeySchema {
    KeySchema {
        hash: KeyAttr {
            name: "pk".into(),
            ty: ScalarType::S,
        },
        range: range.map(|(n, ty)| KeyAttr { name: n.into(), ty }),
    }
}

#[test]
fn key_condition_partition_key_only() {
    let k = key_condition("pk = :p", &[(":p", s("a"))]).unwrap();
    let r = k.resolve(&schema(Some(("sk", ScalarType::N)))).unwrap();
    assert!(shoal_expr::compare::values_equal(&r.partition_key, &s("a")));
    assert!(r.sort.is_none());
}

#[test]
fn key_condition_sort_key_operators() {
    let vals = [(":p", s("a")), (":x", n("5")), (":y", n("9"))];
    let sch = schema(Some(("sk", ScalarType::N)));
    let cases = [
        ("pk = :p AND sk = :x", n("5"), n("6")),
        ("pk = :p AND sk < :x", n("4"), n("5")),
        ("pk = :p AND sk <= :x", n("5"), n("6")),
        ("pk = :p AND sk > :x", n("6"), n("5")),
        ("pk = :p AND sk >= :x", n("5"), n("4")),
        ("pk = :p AND sk BETWEEN :x AND :y", n("9"), n("10")),
        ("(:x < sk) AND pk = :p", n("6"), n("5")),
    ];
    for (text, yes, no) in cases {
        let used: Vec<_> = vals
            .iter()
            .filter(|(k, _)| text.contains(k))
            .cloned()
            .collect();
        let r = key_condition(text, &used).unwrap().resolve(&sch).unwrap();
        let sort = r.sort.unwrap();
        assert!(sort.matches(&yes), "{text}");
        assert!(!sort.matches(&no), "{text}");
    }
}

#[test]
fn key_condition_begins_with_on_a_string_sort_key() {
    let r = key_condition(
        "pk = :p AND begins_with(sk, :b)",
        &[(":p", s("a")), (":b", s("ab"))],
    )
    .unwrap()
    .resolve(&schema(Some(("sk", ScalarType::S))))
    .unwrap();
    let sort = r.sort.unwrap();
    assert!(matches!(sort, SortKeyCondition::BeginsWith(_)));
    assert!(sort.matches(&s("abc")) && !sort.matches(&s("b")));
}

#[test]
fn key_condition_missing_partition_key() {
    let k = key_condition("sk = :x", &[(":x", n("1"))]).unwrap();
    assert_eq!(
        k.resolve(&schema(Some(("sk", ScalarType::N))))
            .unwrap_err()
            .message,
        "Query condition missed key schema element: pk"
    );
}

#[test]
fn key_condition_partition_key_must_use_equality() {
    let k = key_condition("pk > :p", &[(":p", s("a"))]).unwrap();
    assert_eq!(
        k.resolve(&schema(None)).unwrap_err().message,
        "Query key condition not supported"
    );
}

#[test]
fn key_condition_on_a_non_key_attribute_is_not_supported() {
    let k = key_condition("pk = :p AND extra = :p", &[(":p", s("a"))]).unwrap();
    assert_eq!(
        k.resolve(&schema(None)).unwrap_err().message,
        "Query key condition not supported"
    );
}

#[test]
fn key_condition_value_type_must_match_the_schema() {
    let k = key_condition("pk = :p", &[(":p", n("1"))]).unwrap();
    assert_eq!(
        k.resolve(&schema(None)).unwrap_err().message,
        "One or more parameter values were invalid: Condition parameter type does not match schema type"
    );
}

#[test]
fn key_condition_two_conditions_on_one_key() {
    let k = key_condition("pk = :p AND pk = :p", &[(":p", s("a"))]).unwrap();
    assert_eq!(
        k.resolve(&schema(None)).unwrap_err().message,
        "KeyConditionExpressions must only contain one condition per key"
    );
}

#[test]
fn key_condition_rejects_or() {
    assert_eq!(
        key_condition("pk = :p OR pk = :p", &[(":p", s("a"))])
            .unwrap_err()
            .message,
        "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: OR"
    );
}

#[test]
fn key_condition_rejects_other_functions() {
    assert_eq!(
        key_condition("attribute_exists(pk)", &[])
            .unwrap_err()
            .message,
        "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: attribute_exists"
    );
}

#[test]
fn key_condition_empty_is_rejected() {
    assert_eq!(
        key_condition("", &[]).unwrap_err().message,
        "Invalid KeyConditionExpression: The expression can not be empty;"
    );
}

#[test]
fn key_condition_between_bounds_of_two_types_or_reversed_are_rejected() {
    assert_eq!(
        key_condition(
            "pk = :p AND sk BETWEEN :x AND :y",
            &[(":p", s("a")), (":x", n("1")), (":y", s("9"))]
        )
        .unwrap_err()
        .message,
        "Invalid KeyConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:9}"
    );
    assert_eq!(
        key_condition(
            "pk = :p AND sk BETWEEN :x AND :y",
            &[(":p", s("a")), (":x", n("9")), (":y", n("1"))]
        )
        .unwrap_err()
        .message,
        "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:9}, upper bound operand: AttributeValue: {N:1}"
    );
    // Equal bounds are a range of one value.
    key_condition(
        "pk = :p AND sk BETWEEN :x AND :x",
        &[(":p", s("a")), (":x", n("9"))],
    )
    .unwrap();
}

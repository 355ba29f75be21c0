//! Limits from ServiceQuotas, checked before deep work.

mod common;
use common::*;

#[test]
fn expression_over_4kb_is_rejected_with_its_size() {
    let text = format!("a = :v{}", " ".repeat(4097));
    assert_eq!(
        cond_err(&text, &[(":v", n("1"))]),
        format!(
            "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: {}",
            text.len()
        )
    );
}

#[test]
fn expression_of_exactly_4kb_is_accepted() {
    let text = format!("a = :v{}", " ".repeat(4096 - 6));
    assert_eq!(text.len(), 4096);
    cond_with(&text, &[], &[(":v", n("1"))]).unwrap();
}

#[test]
fn in_accepts_100_operands_and_rejects_101() {
    let vals: Vec<(String, shoal_types::AttributeValue)> = (0..101)
        .map(|i| (format!(":v{i}"), n(&i.to_string())))
        .collect();
    let refs: Vec<(&str, shoal_types::AttributeValue)> =
        vals.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let list = |k: usize| {
        (0..k)
            .map(|i| format!(":v{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    cond_with(&format!("a IN ({})", list(100)), &[], &refs[..100]).unwrap();
    assert_eq!(
        cond_err(&format!("a IN ({})", list(101)), &refs),
        "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101"
    );
}

#[test]
fn path_of_32_dereferences_is_accepted_and_33_rejected() {
    let path = |k: usize| format!("a{}", ".b".repeat(k));
    cond_with(&format!("attribute_exists({})", path(32)), &[], &[]).unwrap();
    assert_eq!(
        cond_err(&format!("attribute_exists({})", path(33)), &[]),
        "Invalid ConditionExpression: The document path has too many nesting levels; nesting levels: 33"
    );
}

#[test]
fn more_than_300_operators_are_rejected() {
    let ok = vec!["a = :v"; 150].join(" OR "); // 150 `=` + 149 `OR` = 299
    cond_with(&ok, &[], &[(":v", n("1"))]).unwrap();
    let bad = vec!["a = :v"; 151].join(" OR "); // 151 + 150 = 301
    assert!(
        cond_err(&bad, &[(":v", n("1"))])
            .starts_with("Invalid ConditionExpression: The expression contains too many operators")
    );
}

#[test]
fn update_with_more_than_300_operators_is_rejected() {
    let ok = format!("SET a = :v{}", " + :v".repeat(300));
    update_with(&ok, &[], &[(":v", n("1"))]).unwrap();
    let bad = format!("SET a = :v{}", " + :v".repeat(301));
    assert!(
        update_err(&bad, &[(":v", n("1"))])
            .starts_with("Invalid UpdateExpression: The expression contains too many operators")
    );
}

/// Functions nested in function arguments count as nesting levels: 32 `list_append` or
/// `if_not_exists` calls inside one another parse (and apply), 33 are refused.
#[test]
fn nested_update_functions_stop_at_32_levels() {
    let appends = |k: usize| {
        format!(
            "SET a = {}:l{}",
            "list_append(".repeat(k),
            ", :l)".repeat(k)
        )
    };
    let l1 = l(vec![n("1")]);
    let it = item(&[("pk", s("k"))]);
    let out = updated(&appends(32), &[(":l", l1.clone())], &it).unwrap();
    assert_eq!(out.get("a"), Some(&l(vec![n("1"); 33])));
    let e = update_err(&appends(33), &[(":l", l1)]);
    assert_eq!(
        e,
        "Invalid UpdateExpression: The expression has too many nested levels; the maximum allowed is: 32"
    );
    let defaults = |k: usize| {
        format!(
            "SET a = {}:v{}",
            "if_not_exists(a, ".repeat(k),
            ")".repeat(k)
        )
    };
    let out = updated(&defaults(32), &[(":v", n("7"))], &it).unwrap();
    assert_eq!(out.get("a"), Some(&n("7")));
    let e = update_err(&defaults(33), &[(":v", n("7"))]);
    assert!(e.contains("too many nested levels"), "{e}");
    // As deep as 4 KB allows (200 levels) is refused the same way, on the way down.
    assert!(update_err(&defaults(200), &[(":v", n("7"))]).contains("too many nested levels"));
}

#[test]
fn deeply_nested_parentheses_are_rejected_without_overflowing_the_stack() {
    let text = format!("{}a = :v{}", "(".repeat(2000), ")".repeat(2000));
    assert!(cond_err(&text, &[(":v", n("1"))]).contains("too many nested levels"));
}

#[test]
fn placeholder_longer_than_255_bytes_is_rejected() {
    let ph = format!(":{}", "v".repeat(255));
    let e = cond_err(&format!("a = {ph}"), &[(ph.as_str(), n("1"))]);
    assert!(e.contains("too long"), "{e}");
}

/// ProjectionExpression paths: 32 dereferences (names, list indexes or both) and no more; list
/// indexes up to 2^31 - 1; negative and fractional indexes are syntax errors.
#[test]
fn projection_paths_have_dynamodb_depth_and_index_limits() {
    let message = |text: &str| projection(text, &[]).unwrap_err().message;
    for deref in [".b", "[0]"] {
        projection(&format!("a{}", deref.repeat(32)), &[]).unwrap();
        assert_eq!(
            message(&format!("a{}", deref.repeat(33))),
            "Invalid ProjectionExpression: The document path has too many nesting levels; nesting levels: 33"
        );
    }
    let mixed = format!("a{}", "[1].b".repeat(16));
    projection(&mixed, &[]).unwrap();
    assert!(message(&format!("{mixed}[0]")).ends_with("nesting levels: 33"));
    // Every path of the list is checked, not only the first.
    assert!(message(&format!("x, y, a{}", ".b".repeat(33))).ends_with("nesting levels: 33"));

    projection(&format!("a[{}]", shoal_expr::MAX_LIST_INDEX), &[]).unwrap();
    assert_eq!(
        message("a[2147483648]"),
        r#"Invalid ProjectionExpression: Syntax error; token: "2147483648", near: "[2147483648]""#
    );
    assert_eq!(
        message("a[99999999999999999999999]"),
        r#"Invalid ProjectionExpression: Syntax error; token: "99999999999999999999999", near: "[99999999999999999999999]""#
    );
    for bad in ["a[-1]", "a[0.4]", "a[]", "a[x]"] {
        assert!(
            message(bad).starts_with("Invalid ProjectionExpression: Syntax error; token:"),
            "{bad}: {}",
            message(bad)
        );
    }
}

/// The same index bound holds in update and condition paths.
#[test]
fn list_index_bound_holds_in_every_expression_kind() {
    update_with("SET a[2147483647] = :v", &[], &[(":v", n("1"))]).unwrap();
    assert!(
        update_err("SET a[2147483648] = :v", &[(":v", n("1"))])
            .starts_with("Invalid UpdateExpression: Syntax error; token: \"2147483648\"")
    );
    assert!(
        cond_err("attribute_exists(a[2147483648])", &[])
            .starts_with("Invalid ConditionExpression: Syntax error; token: \"2147483648\"")
    );
}

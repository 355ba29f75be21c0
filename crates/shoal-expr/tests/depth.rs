//! Nothing client input can build recurses deeply: legacy joins and `AND`/`OR` chains are flat,
//! and `SET` cannot nest an item past DynamoDB's 32 levels. The big cases run on a thread with a
//! 256 KiB stack, an eighth of a server worker's, so any recursion per operand would overflow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use std::collections::BTreeMap;

use common::*;
use shoal_expr::Condition;
use shoal_expr::legacy::{
    AttributeUpdate, ExpectedEntry, LegacyCondition, convert_attribute_updates, convert_expected,
    convert_filter,
};
use shoal_types::{AttributeValue, Item};

/// Runs `f` on a thread with a small stack; a stack overflow aborts the test binary loudly.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

/// A value nested `depth` levels deep: maps of lists of ... a string.
fn nested(depth: usize) -> AttributeValue {
    let mut v = s("leaf");
    for i in 0..depth {
        v = if i % 2 == 0 {
            l(vec![v])
        } else {
            m(&[("k", v)])
        };
    }
    v
}

#[test]
fn a_scan_filter_of_400_000_entries_is_one_flat_and() {
    on_small_stack(|| {
        let filter: BTreeMap<String, LegacyCondition> = (0..400_000)
            .map(|i| {
                let c = LegacyCondition {
                    operator: "NOT_CONTAINS".into(),
                    values: vec![s("x")],
                };
                (format!("a{i}"), c)
            })
            .collect();
        let c = convert_filter(&filter, None).unwrap().unwrap();
        // NOT_CONTAINS is `attribute_exists AND NOT contains`, merged into the same AND.
        assert!(matches!(&c, Condition::And(cs) if cs.len() == 800_000));
        assert!(c.depth() <= 3, "depth {}", c.depth());
        assert!(!c.evaluate(&Item::new()));
        // contains(path, :value) names one attribute.
        assert_eq!(c.top_level_names().len(), 800_000);
        let c = convert_filter(&filter, Some("OR")).unwrap().unwrap();
        assert!(matches!(&c, Condition::Or(cs) if cs.len() == 400_000));
        let it = item(&[("a399999", s("y"))]);
        assert!(c.evaluate(&it));
        drop(c);
    });
}

#[test]
fn expected_with_100_000_entries_evaluates_and_drops_without_recursion() {
    on_small_stack(|| {
        let expected: BTreeMap<String, ExpectedEntry> = (0..100_000)
            .map(|i| {
                let e = ExpectedEntry {
                    exists: Some(false),
                    ..ExpectedEntry::default()
                };
                (format!("a{i}"), e)
            })
            .collect();
        let c = convert_expected(&expected, None).unwrap().unwrap();
        assert_eq!(c.depth(), 2);
        assert!(c.evaluate(&Item::new()));
        assert!(!c.evaluate(&item(&[("a500", n("1"))])));
    });
}

#[test]
fn attribute_updates_with_200_000_entries_apply() {
    on_small_stack(|| {
        let updates: BTreeMap<String, AttributeUpdate> = (0..200_000)
            .map(|i| {
                let u = AttributeUpdate {
                    action: Some("PUT".into()),
                    value: Some(n("1")),
                };
                (format!("a{i}"), u)
            })
            .collect();
        let u = convert_attribute_updates(&updates).unwrap();
        assert_eq!(u.top_level_names().len(), 200_000);
        let mut it = Item::new();
        u.apply(&mut it).unwrap();
        assert_eq!(it.len(), 200_000);
    });
}

#[test]
fn and_or_chains_parse_flat() {
    // 150 comparisons and 149 ANDs: 299 operators, under the limit of 300.
    let text = (0..150)
        .map(|i| format!("a{i} = :v"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let c = cond_with(&text, &[], &[(":v", n("1"))]).unwrap();
    assert!(matches!(&c, Condition::And(cs) if cs.len() == 150));
    let c = cond_with(
        "a = :v OR b = :v OR (c = :v OR d = :v) AND e = :v",
        &[],
        &[(":v", n("1"))],
    )
    .unwrap();
    // OR of a, b and (the parenthesised OR AND e).
    assert!(matches!(&c, Condition::Or(cs) if cs.len() == 3));
    assert!(holds(
        "a = :v OR b = :v AND c = :v",
        &[(":v", n("1"))],
        &item(&[("a", n("1"))])
    ));
    assert!(!holds(
        "(a = :v OR b = :v) AND c = :v",
        &[(":v", n("1"))],
        &item(&[("a", n("1"))])
    ));
}

#[test]
fn the_deepest_expression_is_shallow() {
    // 32 nested levels of parentheses and NOT (the limit), 300 operators (the limit).
    let mut text = String::from("a = :v");
    for i in 0..16 {
        text = if i % 2 == 0 {
            format!("NOT ({text} OR b{i} = :v)")
        } else {
            format!("({text} AND b{i} = :v)")
        };
    }
    let c = cond_with(&text, &[], &[(":v", n("1"))]).unwrap();
    assert!(c.depth() <= 33, "depth {}", c.depth());
    let over = format!("({})", "(".repeat(32) + "a = :v" + &")".repeat(32));
    assert_eq!(
        cond_err(&over, &[(":v", n("1"))]),
        "Invalid ConditionExpression: The expression has too many nested levels; the maximum allowed is: 32"
    );
}

#[test]
fn set_may_nest_an_item_32_levels_deep_but_not_33() {
    // `a.b` puts the value two levels down: a value 30 deep makes 32, 31 deep makes 33.
    let it = item(&[("a", m(&[]))]);
    let ok = updated("SET a.b = :v", &[(":v", nested(31))], &it).unwrap();
    assert_eq!(ok.get("a").unwrap().nesting_depth(), 32);
    assert_eq!(
        updated("SET a.b = :v", &[(":v", nested(32))], &it).unwrap_err(),
        "Nesting Levels have exceeded supported limits"
    );
    // The deepest SET: a path of 32 dereferences into an item already 32 deep, then a value of 32.
    let deep = item(&[("a", nested(32))]);
    let path = (0..32)
        .map(|i| if i % 2 == 0 { ".k" } else { "[0]" })
        .collect::<String>();
    // `nested(32)` is a map outermost, then alternately lists and maps.
    assert_eq!(
        updated(&format!("SET a{path} = :v"), &[(":v", nested(32))], &deep).unwrap_err(),
        "Nesting Levels have exceeded supported limits"
    );
    // list_append and if_not_exists cannot hide the depth either.
    let lists = item(&[("a", l(vec![]))]);
    assert_eq!(
        updated(
            "SET a = list_append(a, :v)",
            &[(":v", l(vec![nested(32)]))],
            &lists
        )
        .unwrap_err(),
        "Nesting Levels have exceeded supported limits"
    );
}

#[test]
fn add_and_delete_of_large_sets_stay_exact() {
    let big = |from: usize, to: usize| {
        AttributeValue::Ns((from..to).map(|i| i.to_string().parse().unwrap()).collect())
    };
    let it = item(&[("s", big(0, 60_000))]);
    let added = updated("ADD s :v", &[(":v", big(30_000, 90_000))], &it).unwrap();
    assert_eq!(added.get("s").unwrap().as_ns().unwrap().len(), 90_000);
    let deleted = updated("DELETE s :v", &[(":v", big(0, 89_999))], &added).unwrap();
    assert_eq!(deleted.get("s").unwrap().as_ns().unwrap().len(), 1);
    // Numbers compare numerically: 1.0 is already in the set {1}.
    let one = item(&[("s", ns(&["1"]))]);
    let same = updated("ADD s :v", &[(":v", ns(&["1.0"]))], &one).unwrap();
    assert_eq!(same.get("s").unwrap().as_ns().unwrap().len(), 1);
}

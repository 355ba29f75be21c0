//! Micro-benchmarks of expression work on the request path: parsing a typical
//! `ConditionExpression` and `UpdateExpression` (with placeholder substitution), evaluating the
//! condition against an item, and applying the update to a copy of an item.
//!
//! `cargo bench -p shoal-expr` (about 30 s). Results are recorded in docs/PERFORMANCE.md.

// Set-up outside the timed loops unwraps: a failure there is a broken bench, not a result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use shoal_expr::{ConditionKind, ExprContext, parse_condition, parse_update};
use shoal_types::{AttributeValue, Item, Number};

const CONDITION: &str = "attribute_exists(pk) AND #v = :expected AND (price BETWEEN :lo AND :hi \
     OR contains(tags, :tag)) AND begins_with(address.city, :prefix)";
const UPDATE: &str = "SET #v = #v + :one, price = :price, address.floor = :floor, \
     history = list_append(history, :more) REMOVE obsolete ADD hits :one DELETE tags :gone";

fn n(s: &str) -> AttributeValue {
    AttributeValue::N(s.parse::<Number>().unwrap())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn names() -> HashMap<String, String> {
    HashMap::from([("#v".to_owned(), "version".to_owned())])
}

fn values() -> HashMap<String, AttributeValue> {
    HashMap::from([
        (":expected".to_owned(), n("17")),
        (":lo".to_owned(), n("1000")),
        (":hi".to_owned(), n("2000")),
        (":tag".to_owned(), s("green")),
        (":prefix".to_owned(), s("Lis")),
        (":one".to_owned(), n("1")),
        (":price".to_owned(), n("1300.25")),
        (":floor".to_owned(), n("4")),
        (":more".to_owned(), AttributeValue::L(vec![n("4")])),
        (
            ":gone".to_owned(),
            AttributeValue::Ss(vec!["red".to_owned()]),
        ),
    ])
}

/// The item the condition holds for and the update applies to (~1 KB with its payload).
fn item() -> Item {
    Item::from([
        ("pk".to_owned(), s("user#0000012345")),
        ("version".to_owned(), n("17")),
        ("price".to_owned(), n("1234.5678")),
        (
            "tags".to_owned(),
            AttributeValue::Ss(vec!["blue".into(), "green".into(), "red".into()]),
        ),
        (
            "address".to_owned(),
            AttributeValue::M(Item::from([
                ("city".to_owned(), s("Lisbon")),
                ("floor".to_owned(), n("3")),
            ])),
        ),
        (
            "history".to_owned(),
            AttributeValue::L(vec![n("1"), n("2"), n("3")]),
        ),
        ("obsolete".to_owned(), AttributeValue::Bool(true)),
        ("payload".to_owned(), s(&"x".repeat(900))),
    ])
}

fn condition(c: &mut Criterion) {
    let (names, values, item) = (names(), values(), item());
    let parse = |text: &str| {
        let mut ctx = ExprContext::new(Some(&names), Some(&values));
        parse_condition(text, &mut ctx, ConditionKind::Condition).unwrap()
    };
    let cond = parse(CONDITION);
    assert!(cond.evaluate(&item), "the bench condition holds");

    let mut g = c.benchmark_group("condition");
    g.bench_function("parse", |b| b.iter(|| parse(black_box(CONDITION))));
    g.bench_function("evaluate", |b| {
        b.iter(|| black_box(&cond).evaluate(black_box(&item)));
    });
    g.finish();
}

fn update(c: &mut Criterion) {
    let (names, values, item) = (names(), values(), item());
    let parse = |text: &str| {
        let mut ctx = ExprContext::new(Some(&names), Some(&values));
        parse_update(text, &mut ctx).unwrap()
    };
    let update = parse(UPDATE);
    let mut check = item.clone();
    update.apply(&mut check).unwrap();
    assert_eq!(
        check.get("version"),
        Some(&n("18")),
        "the bench update applies"
    );

    let mut g = c.benchmark_group("update");
    g.bench_function("parse", |b| b.iter(|| parse(black_box(UPDATE))));
    // The clone is part of the measurement: the server applies updates to a copy of the item too.
    g.bench_function("clone_and_apply", |b| {
        b.iter(|| {
            let mut target = black_box(&item).clone();
            update.apply(&mut target).unwrap();
            target
        });
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = condition, update
}
criterion_main!(benches);

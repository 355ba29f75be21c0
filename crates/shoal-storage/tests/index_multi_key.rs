//! Global indexes with multi-attribute keys: entries shipped from the outbox are grouped by the
//! tuple of partition values and ordered by the sort values left to right; a Query with a sort
//! prefix and a condition on the next sort attribute returns exactly the model's entries, in
//! both directions and in any page size; items lacking a key attribute are not indexed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cmp::Ordering;

use common::*;
use proptest::prelude::*;
use shoal_expr::SortKeyCondition;
use shoal_storage::{IndexPartition, MemEngine, QuerySpec};
use shoal_types::index::{IndexDef, IndexKind, IndexStatus, Projection, ProjectionType};
use shoal_types::index_key::{IndexKeySchema, KeyRole, partition_key_value};
use shoal_types::key::KeyAttr;
use shoal_types::{AttributeValue, Item, Number, ScalarType};

const SOURCE: u64 = 1;

/// GSI 9: HASH `t` (S), `r` (N); RANGE `a` (S), `b` (N).
fn gsi() -> IndexDef {
    let attr = |name: &str, ty| KeyAttr {
        name: name.into(),
        ty,
    };
    IndexDef {
        id: 9,
        name: "multi".into(),
        kind: IndexKind::Global,
        key_schema: IndexKeySchema::from_elements(vec![
            (attr("t", ScalarType::S), KeyRole::Hash),
            (attr("r", ScalarType::N), KeyRole::Hash),
            (attr("a", ScalarType::S), KeyRole::Range),
            (attr("b", ScalarType::N), KeyRole::Range),
        ])
        .unwrap(),
        projection: Projection {
            kind: ProjectionType::All,
            non_key_attributes: Vec::new(),
        },
        status: IndexStatus::Active,
        backfilling: false,
    }
}

/// One item: `pk`, and each key attribute unless `None`.
#[derive(Debug, Clone)]
struct Row {
    pk: u8,
    t: Option<u8>,
    r: Option<u8>,
    a: Option<&'static str>,
    b: Option<i8>,
}

fn row() -> impl Strategy<Value = Row> {
    let a = prop_oneof![Just("a"), Just("ab"), Just("b"), Just("a\u{0}")];
    (
        any::<u8>(),
        proptest::option::weighted(0.9, 0u8..2),
        proptest::option::weighted(0.9, 0u8..2),
        proptest::option::weighted(0.9, a),
        proptest::option::weighted(0.9, -3i8..4),
    )
        .prop_map(|(pk, t, r, a, b)| Row { pk, t, r, a, b })
}

fn to_item(row: &Row) -> Item {
    let mut it = item(&[("pk", s(&format!("p{}", row.pk)))]);
    if let Some(t) = row.t {
        it.insert("t".into(), s(&format!("t{t}")));
    }
    if let Some(r) = row.r {
        it.insert("r".into(), n(&r.to_string()));
    }
    if let Some(a) = row.a {
        it.insert("a".into(), s(a));
    }
    if let Some(b) = row.b {
        it.insert("b".into(), n(&b.to_string()));
    }
    it
}

fn num(v: &AttributeValue) -> &Number {
    match v {
        AttributeValue::N(n) => n,
        other => panic!("not a number: {other:?}"),
    }
}

fn text(v: &AttributeValue) -> &[u8] {
    match v {
        AttributeValue::S(s) => s.as_bytes(),
        other => panic!("not a string: {other:?}"),
    }
}

/// The index order inside one partition value: `a`, then `b`, then the table key.
fn index_order(x: &Item, y: &Item) -> Ordering {
    text(&x["a"])
        .cmp(text(&y["a"]))
        .then_with(|| num(&x["b"]).cmp(num(&y["b"])))
        .then_with(|| text(&x["pk"]).cmp(text(&y["pk"])))
}

/// Every page of a Query, `limit` items per page.
fn query_all(
    ix: &IndexPartition,
    pv: &AttributeValue,
    prefix: &[AttributeValue],
    sort: Option<&SortKeyCondition>,
    forward: bool,
    limit: usize,
) -> Vec<Item> {
    let mut got = Vec::new();
    let mut esk: Option<Item> = None;
    loop {
        let page = ix
            .query(
                &QuerySpec {
                    partition_key: pv,
                    sort_prefix: prefix,
                    sort,
                    forward,
                    exclusive_start: esk.as_ref(),
                    limit: Some(limit),
                    byte_limit: usize::MAX,
                    filter: None,
                },
                None,
            )
            .unwrap();
        got.extend(page.items);
        match page.last_evaluated_key {
            Some(k) => {
                for attr in ["pk", "t", "r", "a", "b"] {
                    assert!(k.contains_key(attr), "LastEvaluatedKey lacks {attr}: {k:?}");
                }
                esk = Some(k);
            }
            None => return got,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn queries_return_the_model_entries_in_tuple_order(
        rows in proptest::collection::vec(row(), 0..40),
        t in 0u8..2,
        r in 0u8..2,
        prefix_a in proptest::option::of(prop_oneof![Just("a"), Just("ab"), Just("b")]),
        cond_pick in 0usize..4,
        limit in 1usize..5,
        forward in any::<bool>(),
    ) {
        let table = hash_schema();
        let p = mem_partition(table.clone());
        p.set_indexes(vec![gsi()]).unwrap();
        let mut model: std::collections::BTreeMap<u8, Item> = Default::default();
        let cmds: Vec<_> = rows
            .iter()
            .map(|row| {
                let it = to_item(row);
                model.insert(row.pk, it.clone());
                put(it)
            })
            .collect();
        let first = p.applied_index() + 1;
        for res in p.apply_batch(first, &cmds) {
            res.unwrap();
        }
        let ix = IndexPartition::new(Box::new(MemEngine::new()), gsi(), table.clone()).unwrap();
        ix.apply_outbox(SOURCE, &p.outbox(0, 10_000).unwrap()).unwrap();

        let pv = partition_key_value(vec![s(&format!("t{t}")), n(&r.to_string())]);
        let prefix: Vec<AttributeValue> = prefix_a.iter().map(|a| s(a)).collect();
        // With a prefix the condition is on `b`, else on `a`.
        let cond = match (prefix.is_empty(), cond_pick) {
            (_, 0) => None,
            (false, 1) => Some(SortKeyCondition::Ge(n("0"))),
            (false, 2) => Some(SortKeyCondition::Between(n("-1"), n("2"))),
            (false, _) => Some(SortKeyCondition::Lt(n("1"))),
            (true, 1) => Some(SortKeyCondition::BeginsWith(s("a"))),
            (true, 2) => Some(SortKeyCondition::Gt(s("a"))),
            (true, _) => Some(SortKeyCondition::Le(s("ab"))),
        };
        let def = gsi();
        let mut want: Vec<Item> = model
            .values()
            .filter_map(|it| def.entry(&table, it))
            .filter(|e| e["t"] == s(&format!("t{t}")) && e["r"] == n(&r.to_string()))
            .filter(|e| prefix.first().is_none_or(|a| &e["a"] == a))
            .filter(|e| {
                let attr = if prefix.is_empty() { "a" } else { "b" };
                cond.as_ref().is_none_or(|c| c.matches(&e[attr]))
            })
            .collect();
        want.sort_by(index_order);
        if !forward {
            want.reverse();
        }
        let got = query_all(&ix, &pv, &prefix, cond.as_ref(), forward, limit);
        prop_assert_eq!(got, want);
    }
}

#[test]
fn items_missing_a_key_attribute_are_not_indexed() {
    let table = hash_schema();
    let full = Row {
        pk: 1,
        t: Some(0),
        r: Some(1),
        a: Some("a"),
        b: Some(2),
    };
    let def = gsi();
    assert!(def.entry(&table, &to_item(&full)).is_some());
    for sparse in [
        Row {
            t: None,
            ..full.clone()
        },
        Row {
            r: None,
            ..full.clone()
        },
        Row {
            a: None,
            ..full.clone()
        },
        Row { b: None, ..full },
    ] {
        assert_eq!(def.entry(&table, &to_item(&sparse)), None, "{sparse:?}");
    }
}

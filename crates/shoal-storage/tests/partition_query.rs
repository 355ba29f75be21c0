//! Query: sort key order, sort key conditions, limits, paging, filters, the byte limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use shoal_expr::{Condition, SortKeyCondition};
use shoal_storage::{Page, Partition, QuerySpec};
use shoal_types::key::KeySchema;
use shoal_types::size::item_size;
use shoal_types::{AttributeValue, Item, ScalarType};

const MB: usize = 1024 * 1024;

/// Partition `p` holds sort keys 0..20 (N) under pk "p", plus neighbours under "o" and "q".
fn numbers(schema_dir: Option<&std::path::Path>) -> Partition {
    let schema = range_schema(ScalarType::N);
    let p = match schema_dir {
        Some(dir) => sql_partition(dir, schema),
        None => mem_partition(schema),
    };
    let mut index = 0;
    for pk in ["o", "p", "q"] {
        for i in (0..20).rev() {
            index += 1;
            let it = item(&[
                ("pk", s(pk)),
                ("sk", n(&i.to_string())),
                ("odd", AttributeValue::Bool(i % 2 == 1)),
            ]);
            p.apply(index, &put(it)).unwrap();
        }
    }
    // Negative and fractional numbers sort numerically.
    for (i, v) in ["-5", "-0.5", "2.5"].iter().enumerate() {
        p.apply(100 + i as u64, &put(item(&[("pk", s("p")), ("sk", n(v))])))
            .unwrap();
    }
    p
}

fn spec<'a>(pk: &'a AttributeValue) -> QuerySpec<'a> {
    QuerySpec {
        partition_key: pk,
        sort_prefix: &[],
        sort: None,
        forward: true,
        exclusive_start: None,
        limit: None,
        byte_limit: MB,
        filter: None,
    }
}

fn sks(page: &Page) -> Vec<String> {
    page.items
        .iter()
        .map(|i| match i.get("sk") {
            Some(AttributeValue::N(n)) => n.to_string(),
            Some(AttributeValue::S(s)) => s.clone(),
            other => panic!("unexpected sort key {other:?}"),
        })
        .collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn all_numbers() -> Vec<String> {
    let mut v = strs(&["-5", "-0.5", "0", "1", "2", "2.5"]);
    v.extend((3..20).map(|i| i.to_string()));
    v
}

#[test]
fn query_returns_one_partition_key_in_numeric_sort_key_order() {
    let dir = tempfile::tempdir().unwrap();
    for p in [numbers(None), numbers(Some(dir.path()))] {
        let pk = s("p");
        let page = p.query(&spec(&pk)).unwrap();
        assert_eq!(sks(&page), all_numbers());
        assert!(page.items.iter().all(|i| i.get("pk") == Some(&pk)));
        assert_eq!(page.scanned_count, 23);
        assert_eq!(page.last_evaluated_key, None);
        let mut rev = p
            .query(&QuerySpec {
                forward: false,
                ..spec(&pk)
            })
            .unwrap();
        rev.items.reverse();
        assert_eq!(sks(&rev), all_numbers());
    }
}

#[test]
fn query_of_an_absent_partition_key_is_empty() {
    let p = numbers(None);
    let pk = s("zzz");
    assert_eq!(p.query(&spec(&pk)).unwrap(), Page::default());
}

fn query_sort(p: &Partition, cond: SortKeyCondition, forward: bool) -> Vec<String> {
    let pk = s("p");
    let page = p
        .query(&QuerySpec {
            sort: Some(&cond),
            forward,
            ..spec(&pk)
        })
        .unwrap();
    assert_eq!(
        page.scanned_count,
        page.items.len(),
        "sort conditions do not count as scanned"
    );
    let mut got = sks(&page);
    if !forward {
        got.reverse();
    }
    got
}

#[test]
fn sort_key_comparisons_select_exact_ranges_both_directions() {
    let p = numbers(None);
    for forward in [true, false] {
        assert_eq!(
            query_sort(&p, SortKeyCondition::Eq(n("2.5")), forward),
            strs(&["2.5"])
        );
        assert_eq!(
            query_sort(&p, SortKeyCondition::Eq(n("2.25")), forward),
            Vec::<String>::new()
        );
        assert_eq!(
            query_sort(&p, SortKeyCondition::Lt(n("1")), forward),
            strs(&["-5", "-0.5", "0"])
        );
        assert_eq!(
            query_sort(&p, SortKeyCondition::Le(n("1")), forward),
            strs(&["-5", "-0.5", "0", "1"])
        );
        assert_eq!(
            query_sort(&p, SortKeyCondition::Gt(n("17")), forward),
            strs(&["18", "19"])
        );
        assert_eq!(
            query_sort(&p, SortKeyCondition::Ge(n("17")), forward),
            strs(&["17", "18", "19"])
        );
        assert_eq!(
            query_sort(&p, SortKeyCondition::Between(n("-0.5"), n("2.5")), forward),
            strs(&["-0.5", "0", "1", "2", "2.5"])
        );
        assert_eq!(
            query_sort(&p, SortKeyCondition::Between(n("5"), n("4")), forward),
            Vec::<String>::new()
        );
    }
}

#[test]
fn begins_with_selects_string_and_binary_prefixes() {
    for ty in [ScalarType::S, ScalarType::B] {
        let p = mem_partition(range_schema(ty));
        let words = [
            "a", "ab", "ab\u{0}", "ab\u{0}x", "abc", "abd", "ac", "b", "\u{7f}", "\u{7f}x", "é",
            "éa",
        ];
        let val = |w: &str| match ty {
            ScalarType::B => AttributeValue::B(w.as_bytes().to_vec()),
            _ => s(w),
        };
        for (i, w) in words.iter().enumerate() {
            p.apply(i as u64 + 1, &put(item(&[("pk", s("p")), ("sk", val(w))])))
                .unwrap();
        }
        p.apply(100, &put(item(&[("pk", s("q")), ("sk", val("ab"))])))
            .unwrap();
        let pk = s("p");
        let run = |prefix: &str, forward: bool| -> Vec<AttributeValue> {
            let cond = SortKeyCondition::BeginsWith(val(prefix));
            let page = p
                .query(&QuerySpec {
                    sort: Some(&cond),
                    forward,
                    ..spec(&pk)
                })
                .unwrap();
            assert_eq!(page.scanned_count, page.items.len());
            let mut v: Vec<_> = page.items.iter().map(|i| i["sk"].clone()).collect();
            if !forward {
                v.reverse();
            }
            v
        };
        for forward in [true, false] {
            let expect = |ws: &[&str]| ws.iter().map(|w| val(w)).collect::<Vec<_>>();
            assert_eq!(
                run("ab", forward),
                expect(&["ab", "ab\u{0}", "ab\u{0}x", "abc", "abd"]),
                "{ty:?}"
            );
            assert_eq!(
                run("ab\u{0}", forward),
                expect(&["ab\u{0}", "ab\u{0}x"]),
                "{ty:?}"
            );
            assert_eq!(
                run("\u{7f}", forward),
                expect(&["\u{7f}", "\u{7f}x"]),
                "{ty:?}"
            );
            assert_eq!(run("é", forward), expect(&["é", "éa"]), "{ty:?}");
            assert_eq!(run("zz", forward), expect(&[]), "{ty:?}");
        }
    }
}

#[test]
fn limit_counts_items_read_before_the_filter_and_sets_last_evaluated_key() {
    let p = numbers(None);
    let pk = s("p");
    let odd = eq("odd", AttributeValue::Bool(true));
    let page = p
        .query(&QuerySpec {
            limit: Some(6),
            filter: Some(&odd),
            ..spec(&pk)
        })
        .unwrap();
    assert_eq!(page.scanned_count, 6);
    assert_eq!(sks(&page), strs(&["1"]));
    assert_eq!(
        page.last_evaluated_key,
        Some(item(&[("pk", s("p")), ("sk", n("2.5"))]))
    );
}

#[test]
fn last_evaluated_key_is_set_when_the_limit_lands_on_the_last_item() {
    let p = numbers(None);
    let pk = s("p");
    let page = p
        .query(&QuerySpec {
            limit: Some(23),
            ..spec(&pk)
        })
        .unwrap();
    assert_eq!(page.items.len(), 23);
    assert_eq!(
        page.last_evaluated_key,
        Some(item(&[("pk", s("p")), ("sk", n("19"))]))
    );
    let page = p
        .query(&QuerySpec {
            limit: Some(24),
            ..spec(&pk)
        })
        .unwrap();
    assert_eq!(page.last_evaluated_key, None);
}

/// Pages through a query with `limit` until no `last_evaluated_key` is returned.
fn page_through(
    p: &Partition,
    forward: bool,
    limit: usize,
    cond: Option<&SortKeyCondition>,
    filter: Option<&Condition>,
) -> Vec<String> {
    let pk = s("p");
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = p
            .query(&QuerySpec {
                forward,
                limit: Some(limit),
                sort: cond,
                filter,
                exclusive_start: start.as_ref(),
                ..spec(&pk)
            })
            .unwrap();
        out.extend(sks(&page));
        match page.last_evaluated_key {
            Some(k) => start = Some(k),
            None => return out,
        }
    }
}

#[test]
fn paging_with_exclusive_start_visits_every_item_once_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    for p in [numbers(None), numbers(Some(dir.path()))] {
        for limit in [1, 2, 5, 7, 23, 100] {
            assert_eq!(
                page_through(&p, true, limit, None, None),
                all_numbers(),
                "limit {limit}"
            );
            let mut rev = page_through(&p, false, limit, None, None);
            rev.reverse();
            assert_eq!(rev, all_numbers(), "limit {limit}");
        }
        let cond = SortKeyCondition::Between(n("3"), n("9"));
        let expected: Vec<String> = (3..=9).map(|i| i.to_string()).collect();
        assert_eq!(page_through(&p, true, 2, Some(&cond), None), expected);
        let mut rev = page_through(&p, false, 3, Some(&cond), None);
        rev.reverse();
        assert_eq!(rev, expected);
        let odd = eq("odd", AttributeValue::Bool(true));
        let odds: Vec<String> = (1..20).step_by(2).map(|i| i.to_string()).collect();
        assert_eq!(page_through(&p, true, 4, None, Some(&odd)), odds);
    }
}

#[test]
fn byte_limit_includes_the_item_that_crosses_it() {
    let p = mem_partition(range_schema(ScalarType::N));
    let blob = "x".repeat(1000);
    for i in 0..10 {
        p.apply(
            i + 1,
            &put(item(&[
                ("pk", s("p")),
                ("sk", n(&i.to_string())),
                ("b", s(&blob)),
            ])),
        )
        .unwrap();
    }
    let size = |i: u32| {
        item_size(
            &p.get(&item(&[("pk", s("p")), ("sk", n(&i.to_string()))]))
                .unwrap()
                .unwrap(),
        )
    };
    let pk = s("p");
    // Limit between two and three items: the third item crosses it and is the last one read.
    let page = p
        .query(&QuerySpec {
            byte_limit: size(0) + size(1) + 1,
            ..spec(&pk)
        })
        .unwrap();
    assert_eq!(page.scanned_count, 3);
    assert_eq!(page.scanned_bytes, size(0) + size(1) + size(2));
    assert_eq!(
        page.last_evaluated_key,
        Some(item(&[("pk", s("p")), ("sk", n("2"))]))
    );
    // Enough for everything: no last_evaluated_key.
    let page = p
        .query(&QuerySpec {
            byte_limit: size(0) * 20,
            ..spec(&pk)
        })
        .unwrap();
    assert_eq!(page.scanned_count, 10);
    assert_eq!(page.last_evaluated_key, None);
}

#[test]
fn hash_only_table_query_returns_the_single_item() {
    let p = mem_partition(hash_schema());
    for (i, k) in ["a", "ab", "b"].iter().enumerate() {
        p.apply(i as u64 + 1, &put(item(&[("pk", s(k))]))).unwrap();
    }
    let pk = s("a");
    let page = p.query(&spec(&pk)).unwrap();
    assert_eq!(page.items, vec![item(&[("pk", s("a"))])]);
}

#[test]
fn string_sort_keys_order_by_utf8_bytes() {
    let schema: KeySchema = range_schema(ScalarType::S);
    let p = mem_partition(schema);
    let words = ["b", "a", "é", "Z", "", "aa", "a\u{0}"];
    for (i, w) in words.iter().enumerate() {
        if w.is_empty() {
            continue;
        }
        p.apply(i as u64 + 1, &put(item(&[("pk", s("p")), ("sk", s(w))])))
            .unwrap();
    }
    let pk = s("p");
    let got = sks(&p.query(&spec(&pk)).unwrap());
    assert_eq!(got, strs(&["Z", "a", "a\u{0}", "aa", "b", "é"]));
}

//! Global secondary indexes: eventually consistent (polled with a deadline), sparse, every
//! projection, paging with repeated keys, parallel scan, survival across a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ProjectionType, ScalarAttributeType};
use shoal_tests::*;

use crate::support::*;

const T: &str = "people";

/// Table `people` (pk S) with GSIs `by_city` (city S, age N; ALL), `by_age` (age N; KEYS_ONLY),
/// `by_city_name` (city S; INCLUDE name) and `by_badge` (badge B; ALL).
async fn setup() -> (TestNode, Client) {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_indexed_table(
        &client,
        T,
        None,
        &[
            ("city", ScalarAttributeType::S),
            ("age", ScalarAttributeType::N),
            ("badge", ScalarAttributeType::B),
        ],
        vec![],
        vec![
            gsi(
                "by_city",
                "city",
                Some("age"),
                projection(ProjectionType::All, &[]),
            ),
            gsi(
                "by_age",
                "age",
                None,
                projection(ProjectionType::KeysOnly, &[]),
            ),
            gsi(
                "by_city_name",
                "city",
                None,
                projection(ProjectionType::Include, &["name"]),
            ),
            gsi(
                "by_badge",
                "badge",
                None,
                projection(ProjectionType::All, &[]),
            ),
        ],
    )
    .await;
    (node, client)
}

/// The entry each index must hold for `it` (client-side model of sparse indexes and
/// projections).
fn entry(index: &str, it: &Item) -> Option<Item> {
    let (keys, include): (&[&str], Option<&[&str]>) = match index {
        "by_city" => (&["city", "age"], None),
        "by_age" => (&["age"], Some(&[])),
        "by_city_name" => (&["city"], Some(&["name"])),
        "by_badge" => (&["badge"], None),
        other => panic!("unknown index {other}"),
    };
    let typed = |k: &str, v: &AttributeValue| match k {
        "city" => v.is_s(),
        "age" => v.is_n(),
        "badge" => v.is_b(),
        _ => true,
    };
    if !keys.iter().all(|k| it.get(*k).is_some_and(|v| typed(k, v))) {
        return None;
    }
    Some(
        it.iter()
            .filter(|(k, _)| {
                k.as_str() == "pk"
                    || keys.contains(&k.as_str())
                    || include.is_none_or(|inc| inc.contains(&k.as_str()))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// Waits until every index holds exactly the entries of `model` (pk → item).
async fn converge(client: &Client, model: &BTreeMap<String, Item>) {
    for index in ["by_city", "by_age", "by_city_name", "by_badge"] {
        let want: BTreeSet<String> = model
            .values()
            .filter_map(|it| entry(index, it))
            .map(|e| canon(&e))
            .collect();
        eventually(Duration::from_secs(5), index, || async {
            let got = scan_all(client, T, Some(index), Some(17), None).await;
            let got = canon_set(&got, index);
            if got == want {
                Ok(())
            } else {
                Err(format!(
                    "missing {:?}, unexpected {:?}",
                    want.difference(&got).collect::<Vec<_>>(),
                    got.difference(&want).collect::<Vec<_>>()
                ))
            }
        })
        .await;
    }
}

fn person(i: usize) -> Item {
    let mut it = item([("pk", s(format!("p{i:03}"))), ("name", s(format!("n{i}")))]);
    if !i.is_multiple_of(5) {
        it.insert("city".into(), s(["Oslo", "Lima", "Pune"][i % 3]));
    }
    if !i.is_multiple_of(7) {
        it.insert("age".into(), n((20 + i % 9).to_string()));
    }
    if i.is_multiple_of(4) {
        it.insert("badge".into(), b(vec![(i % 3) as u8, 0xff]));
    }
    if i.is_multiple_of(6) {
        // A non-key attribute that only ALL projections carry.
        it.insert("notes".into(), list([s("x"), n("1")]));
    }
    it
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gsis_follow_puts_updates_and_deletes_sparse_with_exact_projections() {
    let (_node, client) = setup().await;
    let mut model = BTreeMap::new();
    for i in 0..60 {
        let it = person(i);
        must_put(&client, T, it.clone()).await;
        model.insert(str_of(&it, "pk").to_string(), it);
    }
    converge(&client, &model).await;

    // Move items between cities (the index partition key changes), change sort keys, drop an
    // index key (the entry goes), add one (an entry appears), delete items.
    for i in (0..60).step_by(4) {
        let pk = format!("p{i:03}");
        let out = client
            .update_item()
            .table_name(T)
            .key("pk", s(&pk))
            .update_expression("SET city = :c, age = :a")
            .expression_attribute_values(":c", s("Kyiv"))
            .expression_attribute_values(":a", n("99"))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .unwrap();
        model.insert(pk, out.attributes.unwrap());
    }
    for i in (1..60).step_by(9) {
        let pk = format!("p{i:03}");
        let out = client
            .update_item()
            .table_name(T)
            .key("pk", s(&pk))
            .update_expression("REMOVE city")
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .unwrap();
        model.insert(pk, out.attributes.unwrap());
    }
    for i in (2..60).step_by(5) {
        let pk = format!("p{i:03}");
        must_delete(&client, T, item([("pk", s(&pk))])).await;
        model.remove(&pk);
    }
    converge(&client, &model).await;

    // A Query by index key returns the city's people in age order.
    let kyiv = query_all(
        &client,
        T,
        Some("by_city"),
        "city = :c",
        &[(":c", s("Kyiv"))],
        true,
        None,
        false,
    )
    .await;
    let want: BTreeSet<String> = model
        .values()
        .filter(|it| it.get("city") == Some(&s("Kyiv")) && it.contains_key("age"))
        .map(|it| str_of(it, "pk").to_string())
        .collect();
    let got: BTreeSet<String> = kyiv.iter().map(|it| str_of(it, "pk").to_string()).collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gsi_query_paging_and_parallel_scan_cover_every_entry_once() {
    let (_node, client) = setup().await;
    let mut model = BTreeMap::new();
    let items: Vec<Item> = (0..300).map(person).collect();
    must_batch_put(&client, T, items.clone()).await;
    for it in items {
        model.insert(str_of(&it, "pk").to_string(), it);
    }
    converge(&client, &model).await;

    // Query with a sort key condition, small pages, both directions: ages repeat, so paging
    // must resume after the exact (index key, table key) position.
    let mut want: Vec<(i64, String)> = model
        .values()
        .filter(|it| it.get("city") == Some(&s("Lima")))
        .filter_map(|it| match it.get("age") {
            Some(AttributeValue::N(a)) => {
                Some((a.parse::<i64>().unwrap(), str_of(it, "pk").to_string()))
            }
            _ => None,
        })
        .filter(|(a, _)| (22..=26).contains(a))
        .collect();
    want.sort_by_key(|(a, _)| *a);
    for (forward, limit) in [(true, 7), (false, 3)] {
        let got = query_all(
            &client,
            T,
            Some("by_city"),
            "city = :c AND age BETWEEN :lo AND :hi",
            &[(":c", s("Lima")), (":lo", n("22")), (":hi", n("26"))],
            forward,
            Some(limit),
            false,
        )
        .await;
        let got: Vec<(i64, String)> = got
            .iter()
            .map(|it| match it.get("age") {
                Some(AttributeValue::N(a)) => (a.parse().unwrap(), str_of(it, "pk").to_string()),
                other => panic!("age {other:?}"),
            })
            .collect();
        // Ages in order; within one age the order is the index's (table key bytes), so compare
        // the sequence of ages and the set of items.
        let ages: Vec<i64> = got.iter().map(|(a, _)| *a).collect();
        let mut want_ages: Vec<i64> = want.iter().map(|(a, _)| *a).collect();
        if !forward {
            want_ages.reverse();
        }
        assert_eq!(ages, want_ages, "forward={forward} limit={limit}");
        let got_set: BTreeSet<_> = got.iter().cloned().collect();
        assert_eq!(got_set.len(), got.len(), "an entry came twice");
        assert_eq!(got_set, want.iter().cloned().collect::<BTreeSet<_>>());
    }

    // Parallel scan: 4 segments, small pages; the union is every entry exactly once.
    for index in ["by_city", "by_age"] {
        let mut all = Vec::new();
        for seg in 0..4 {
            all.extend(scan_all(&client, T, Some(index), Some(11), Some((seg, 4))).await);
        }
        let got = canon_set(&all, index);
        let want: BTreeSet<String> = model
            .values()
            .filter_map(|it| entry(index, it))
            .map(|e| canon(&e))
            .collect();
        assert_eq!(got, want, "{index}: segments do not add up to the index");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gsi_rejects_consistent_reads_and_survives_a_restart() {
    let (mut node, client) = setup().await;
    let err = client
        .query()
        .table_name(T)
        .index_name("by_city")
        .key_condition_expression("city = :c")
        .expression_attribute_values(":c", s("Oslo"))
        .consistent_read(true)
        .send()
        .await;
    assert_validation(
        err,
        "Consistent reads are not supported on global secondary indexes",
    );

    let mut model = BTreeMap::new();
    for i in 0..40 {
        let it = person(i);
        must_put(&client, T, it.clone()).await;
        model.insert(str_of(&it, "pk").to_string(), it);
    }
    // Restart at once: whatever was not shipped yet is shipped from the outbox after restart.
    node.restart().await;
    let client = node.client();
    converge(&client, &model).await;
    // And the index keeps following writes after the restart.
    must_delete(&client, T, item([("pk", s("p001"))])).await;
    model.remove("p001");
    converge(&client, &model).await;
}

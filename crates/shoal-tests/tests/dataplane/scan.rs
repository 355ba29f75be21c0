//! Scan: full scans, Limit and paging, FilterExpression, Select COUNT, ProjectionExpression and
//! parallel scan segments whose union is exactly the table.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ScalarAttributeType, Select};
use shoal_tests::*;

use crate::support::*;

/// Table `sc` (pk S, sk N) holding `count` items spread over 7 partition keys, each with
/// `i` (its index) and `even` (whether `i` is even).
async fn table_with_items(count: i64) -> (TestNode, Client, BTreeSet<(String, String)>) {
    let (node, client) = node_with_table("scn", Some(ScalarAttributeType::N)).await;
    let items: Vec<Item> = (0..count)
        .map(|i| {
            item([
                ("pk", s(format!("p{}", i % 7))),
                ("sk", n(i.to_string())),
                ("i", n(i.to_string())),
                ("even", boolean(i % 2 == 0)),
            ])
        })
        .collect();
    let keys = distinct_keys(&items);
    must_batch_put(&client, "scn", items).await;
    (node, client, keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_scan_returns_every_item_once() {
    let (_node, client, keys) = table_with_items(50).await;
    let out = client.scan().table_name("scn").send().await.unwrap();
    assert_eq!(out.count, 50);
    assert_eq!(out.scanned_count, 50);
    assert_eq!(out.last_evaluated_key, None);
    assert_eq!(distinct_keys(&out.items.unwrap()), keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_of_an_empty_table_returns_nothing() {
    let (_node, client) = node_with_table("scn", None).await;
    let out = client.scan().table_name("scn").send().await.unwrap();
    assert_eq!(out.count, 0);
    assert_eq!(out.scanned_count, 0);
    assert!(out.items.unwrap_or_default().is_empty());
    assert_eq!(out.last_evaluated_key, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_with_limit_pages_through_every_item_exactly_once() {
    let (_node, client, keys) = table_with_items(50).await;
    let pages = scan_pages(|start| {
        client
            .scan()
            .table_name("scn")
            .limit(7)
            .set_exclusive_start_key(start)
    })
    .await;
    assert!(pages.len() >= 8, "50 items at 7 per page need 8 pages");
    for p in &pages {
        assert!(p.count <= 7, "page of {} items exceeds Limit", p.count);
        if let Some(lek) = &p.last_evaluated_key {
            assert_eq!(
                lek.len(),
                2,
                "LastEvaluatedKey holds exactly the key: {lek:?}"
            );
        }
    }
    assert_eq!(distinct_keys(&scan_items(&pages)), keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_filter_expression_reduces_count_but_not_scanned_count() {
    let (_node, client, _keys) = table_with_items(40).await;
    let out = client
        .scan()
        .table_name("scn")
        .filter_expression("even = :t AND i < :max")
        .expression_attribute_values(":t", boolean(true))
        .expression_attribute_values(":max", n("10"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.scanned_count, 40);
    assert_eq!(out.count, 5);
    let mut is: Vec<i64> = out.items.unwrap().iter().map(|i| int_of(i, "i")).collect();
    is.sort_unstable();
    assert_eq!(is, vec![0, 2, 4, 6, 8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_filter_may_use_key_attributes() {
    let (_node, client, _keys) = table_with_items(20).await;
    let out = client
        .scan()
        .table_name("scn")
        .filter_expression("pk = :p AND sk >= :x")
        .expression_attribute_values(":p", s("p1"))
        .expression_attribute_values(":x", n("8"))
        .send()
        .await
        .unwrap();
    let mut sks = sort_keys(&out.items.unwrap());
    sks.sort_unstable();
    assert_eq!(sks, vec![8, 15]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_select_count_and_projection() {
    let (_node, client, _keys) = table_with_items(12).await;
    let out = client
        .scan()
        .table_name("scn")
        .select(Select::Count)
        .send()
        .await
        .unwrap();
    assert_eq!(out.count, 12);
    assert!(out.items.unwrap_or_default().is_empty());
    let out = client
        .scan()
        .table_name("scn")
        .projection_expression("i")
        .send()
        .await
        .unwrap();
    let items = out.items.unwrap();
    assert_eq!(items.len(), 12);
    assert!(items.iter().all(|i| i.len() == 1 && i.contains_key("i")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_scan_segments_are_disjoint_and_cover_the_table() {
    let (node, client) = node_with_table("pscan", None).await;
    let _node = node;
    let items: Vec<Item> = (0..200)
        .map(|i| item([("pk", s(format!("user#{i}"))), ("i", n(i.to_string()))]))
        .collect();
    let all = distinct_keys(&items);
    must_batch_put(&client, "pscan", items).await;
    for total in [1, 3, 7] {
        let mut union: Vec<Item> = Vec::new();
        let mut nonempty = 0;
        for segment in 0..total {
            let pages = scan_pages(|start| {
                client
                    .scan()
                    .table_name("pscan")
                    .segment(segment)
                    .total_segments(total)
                    .limit(40)
                    .set_exclusive_start_key(start)
            })
            .await;
            let got = scan_items(&pages);
            if !got.is_empty() {
                nonempty += 1;
            }
            union.extend(got);
        }
        assert_eq!(
            union.len(),
            200,
            "TotalSegments {total}: segments returned {} items in total",
            union.len()
        );
        assert_eq!(distinct_keys(&union), all, "TotalSegments {total}");
        if total > 1 {
            assert!(
                nonempty > 1,
                "TotalSegments {total}: all 200 items landed in one segment"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_scan_with_many_more_segments_than_items_still_covers_the_table() {
    let (_node, client, keys) = table_with_items(10).await;
    let total = 1_000_000;
    let mut union = Vec::new();
    // The largest TotalSegments is accepted for any segment; a smaller split still covers
    // every item exactly once.
    for segment in [0, 1, 499_999, 999_999] {
        let out = client
            .scan()
            .table_name("scn")
            .segment(segment)
            .total_segments(total)
            .send()
            .await
            .unwrap();
        assert!(out.count <= 10);
    }
    for segment in 0..10 {
        let pages = scan_pages(|start| {
            client
                .scan()
                .table_name("scn")
                .segment(segment)
                .total_segments(10)
                .set_exclusive_start_key(start)
        })
        .await;
        union.extend(scan_items(&pages));
    }
    assert_eq!(union.len(), 10);
    assert_eq!(distinct_keys(&union), keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_not_less_than_total_segments_is_rejected() {
    let (_node, client) = node_with_table("scn", None).await;
    let r = client
        .scan()
        .table_name("scn")
        .segment(3)
        .total_segments(3)
        .send()
        .await;
    assert_validation(
        r,
        "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 3 is not less than TotalSegments: 3",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_without_total_segments_is_rejected() {
    let (_node, client) = node_with_table("scn", None).await;
    let r = client.scan().table_name("scn").segment(0).send().await;
    assert_validation(
        r,
        "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
    );
    let r = client
        .scan()
        .table_name("scn")
        .total_segments(2)
        .send()
        .await;
    assert_validation(
        r,
        "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_segments_outside_one_to_a_million_is_rejected() {
    let (_node, client) = node_with_table("scn", None).await;
    let r = client
        .scan()
        .table_name("scn")
        .segment(0)
        .total_segments(1_000_001)
        .send()
        .await;
    assert_validation(r, "Member must have value less than or equal to 1000000");
    let r = client
        .scan()
        .table_name("scn")
        .segment(0)
        .total_segments(0)
        .send()
        .await;
    assert_validation(r, "Member must have value greater than or equal to 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_pages_are_cut_at_one_megabyte() {
    let (_node, client) = node_with_table("scn", None).await;
    let blob = "y".repeat(100_000);
    for k in 0..25 {
        must_put(
            &client,
            "scn",
            item([("pk", s(format!("k{k}"))), ("data", s(blob.clone()))]),
        )
        .await;
    }
    let pages = scan_pages(|start| {
        client
            .scan()
            .table_name("scn")
            .projection_expression("pk")
            .set_exclusive_start_key(start)
    })
    .await;
    assert!(
        (9..=11).contains(&pages[0].scanned_count),
        "first page should stop near 1 MB (before projection), got {}",
        pages[0].scanned_count
    );
    assert_eq!(scan_items(&pages).len(), 25);
    assert_eq!(distinct_keys(&scan_items(&pages)).len(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_with_index_name_on_a_table_without_indexes_is_rejected() {
    let (_node, client) = node_with_table("scn", None).await;
    let r = client
        .scan()
        .table_name("scn")
        .index_name("byColor")
        .send()
        .await;
    assert_validation(r, "The table does not have the specified index: byColor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_attributes_to_get_projects_top_level_attributes() {
    let (_node, client, _keys) = table_with_items(5).await;
    let out = client
        .scan()
        .table_name("scn")
        .attributes_to_get("sk")
        .attributes_to_get("even")
        .send()
        .await
        .unwrap();
    let items = out.items.unwrap();
    assert_eq!(items.len(), 5);
    for it in &items {
        let mut names: Vec<&str> = it.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["even", "sk"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_scan_keeps_each_partition_key_in_one_segment() {
    let (_node, client, keys) = table_with_items(140).await;
    let mut owner: std::collections::HashMap<String, i32> = std::collections::HashMap::new();
    let mut union = Vec::new();
    for segment in 0..4 {
        let pages = scan_pages(|start| {
            client
                .scan()
                .table_name("scn")
                .segment(segment)
                .total_segments(4)
                .limit(9)
                .set_exclusive_start_key(start)
        })
        .await;
        for it in scan_items(&pages) {
            let pk = str_of(&it, "pk").to_string();
            let prev = owner.insert(pk.clone(), segment);
            assert!(
                prev.is_none_or(|p| p == segment),
                "partition key {pk} appears in segments {prev:?} and {segment}"
            );
            union.push(it);
        }
    }
    assert_eq!(distinct_keys(&union), keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_start_key_from_another_segment_is_rejected() {
    let (node, client) = node_with_table("pscan", None).await;
    let _node = node;
    let items: Vec<Item> = (0..60)
        .map(|i| item([("pk", s(format!("user#{i}")))]))
        .collect();
    must_batch_put(&client, "pscan", items).await;
    // Find a key that segment 0 of 2 returns, then present it to segment 1.
    let out = client
        .scan()
        .table_name("pscan")
        .segment(0)
        .total_segments(2)
        .limit(1)
        .send()
        .await
        .unwrap();
    let lek = out
        .last_evaluated_key
        .expect("segment 0 has more than one item");
    let r = client
        .scan()
        .table_name("pscan")
        .segment(1)
        .total_segments(2)
        .set_exclusive_start_key(Some(lek))
        .send()
        .await;
    assert_validation(
        r,
        "The provided Exclusive start key does not map to the provided Segment and TotalSegments values.",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_select_count_with_filter_and_limit() {
    let (_node, client, _keys) = table_with_items(30).await;
    let pages = scan_pages(|start| {
        client
            .scan()
            .table_name("scn")
            .select(Select::Count)
            .filter_expression("even = :t")
            .expression_attribute_values(":t", boolean(true))
            .limit(8)
            .set_exclusive_start_key(start)
    })
    .await;
    let count: i32 = pages.iter().map(|p| p.count).sum();
    let scanned: i32 = pages.iter().map(|p| p.scanned_count).sum();
    assert_eq!(count, 15);
    assert_eq!(scanned, 30);
    assert!(pages.iter().all(|p| p.scanned_count <= 8));
    assert!(
        pages
            .iter()
            .all(|p| p.items.clone().unwrap_or_default().is_empty())
    );
}

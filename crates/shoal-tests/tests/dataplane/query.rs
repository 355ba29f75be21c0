//! Query: key conditions on string and number sort keys, ordering, paging with Limit and
//! ExclusiveStartKey, the 1 MB page limit, FilterExpression, ProjectionExpression, Select, and
//! the errors DynamoDB reports for malformed key conditions.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ScalarAttributeType, Select};
use shoal_tests::*;

use crate::support::*;

/// Table `q` (pk S, sk N) with `pk = "a"` at the given sort keys (each with `v = "a<sk>"`) and
/// one item in partition `b`.
async fn numeric_table(sks: &[i64]) -> (TestNode, Client) {
    let (node, client) = node_with_table("qry", Some(ScalarAttributeType::N)).await;
    let mut items: Vec<Item> = sks
        .iter()
        .map(|k| {
            item([
                ("pk", s("a")),
                ("sk", n(k.to_string())),
                ("v", s(format!("a{k}"))),
            ])
        })
        .collect();
    items.push(item([("pk", s("b")), ("sk", n("5")), ("v", s("b5"))]));
    must_batch_put(&client, "qry", items).await;
    (node, client)
}

/// Sort keys returned by `pk = "a" AND <sk_cond>` with `:x`/`:y` bound to numbers.
async fn numeric_sks(client: &Client, sk_cond: &str, x: i64, y: Option<i64>) -> Vec<i64> {
    let mut req = query_where(client, "qry", format!("pk = :p AND {sk_cond}"), s("a"))
        .expression_attribute_values(":x", n(x.to_string()));
    if let Some(y) = y {
        req = req.expression_attribute_values(":y", n(y.to_string()));
    }
    let out = req.send().await.unwrap();
    sort_keys(&out.items.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_on_partition_key_returns_only_that_partition_in_numeric_sort_order() {
    let (_node, client) = numeric_table(&[10, 2, 100, 1, 20]).await;
    let out = query_where(&client, "qry", "pk = :p", s("a"))
        .send()
        .await
        .unwrap();
    let items = out.items.clone().unwrap_or_default();
    assert_eq!(sort_keys(&items), vec![1, 2, 10, 20, 100]);
    assert!(items.iter().all(|i| str_of(i, "pk") == "a"));
    assert_eq!(out.count, 5);
    assert_eq!(out.scanned_count, 5);
    assert_eq!(out.last_evaluated_key, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_on_missing_partition_returns_no_items() {
    let (_node, client) = numeric_table(&[1]).await;
    let out = query_where(&client, "qry", "pk = :p", s("nobody"))
        .send()
        .await
        .unwrap();
    assert!(out.items.unwrap_or_default().is_empty());
    assert_eq!(out.count, 0);
    assert_eq!(out.scanned_count, 0);
    assert_eq!(out.last_evaluated_key, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_sort_key_operators_compare_numerically() {
    let (_node, client) = numeric_table(&[1, 2, 3, 10, 20, 100]).await;
    let c = &client;
    assert_eq!(numeric_sks(c, "sk = :x", 10, None).await, vec![10]);
    assert_eq!(numeric_sks(c, "sk < :x", 10, None).await, vec![1, 2, 3]);
    assert_eq!(
        numeric_sks(c, "sk <= :x", 10, None).await,
        vec![1, 2, 3, 10]
    );
    assert_eq!(numeric_sks(c, "sk > :x", 10, None).await, vec![20, 100]);
    assert_eq!(
        numeric_sks(c, "sk >= :x", 10, None).await,
        vec![10, 20, 100]
    );
    assert_eq!(
        numeric_sks(c, "sk BETWEEN :x AND :y", 2, Some(20)).await,
        vec![2, 3, 10, 20]
    );
    // Operands may be written in either order for comparisons.
    assert_eq!(numeric_sks(c, ":x > sk", 3, None).await, vec![1, 2]);
    assert_eq!(numeric_sks(c, "sk = :x", 7, None).await, Vec::<i64>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_sort_key_accepts_decimal_and_negative_bounds() {
    let (node, client) = node_with_table("qry", Some(ScalarAttributeType::N)).await;
    let _node = node;
    let sks = ["-5", "-0.5", "0", "0.25", "1.5", "1E2"];
    let items = sks
        .iter()
        .map(|k| item([("pk", s("a")), ("sk", n(*k))]))
        .collect();
    must_batch_put(&client, "qry", items).await;
    let out = query_where(&client, "qry", "pk = :p AND sk BETWEEN :lo AND :hi", s("a"))
        .expression_attribute_values(":lo", n("-1"))
        .expression_attribute_values(":hi", n("1.5"))
        .send()
        .await
        .unwrap();
    let got: Vec<String> = out
        .items
        .unwrap_or_default()
        .iter()
        .map(|i| match i.get("sk") {
            Some(aws_sdk_dynamodb::types::AttributeValue::N(v)) => v.clone(),
            other => panic!("bad sk {other:?}"),
        })
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    for (g, want) in got.iter().zip(["-0.5", "0", "0.25", "1.5"]) {
        assert!(same_number(g, want), "got {got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_sort_key_operators_compare_by_utf8_bytes() {
    let (_node, client) = node_with_table("qry", Some(ScalarAttributeType::S)).await;
    let sks = ["Zebra", "a", "ab", "abc", "abd", "b", "ba", "c"];
    let items = sks
        .iter()
        .map(|k| item([("pk", s("p")), ("sk", s(*k))]))
        .collect();
    must_batch_put(&client, "qry", items).await;
    let run = |cond: &'static str, x: &'static str, y: Option<&'static str>| {
        let client = client.clone();
        async move {
            let mut req = query_where(&client, "qry", format!("pk = :p AND {cond}"), s("p"))
                .expression_attribute_values(":x", s(x));
            if let Some(y) = y {
                req = req.expression_attribute_values(":y", s(y));
            }
            str_sort_keys(&req.send().await.unwrap().items.unwrap_or_default())
        }
    };
    assert_eq!(run("sk = :x", "ab", None).await, ["ab"]);
    // Upper-case letters sort before lower-case ones (byte order).
    assert_eq!(run("sk < :x", "ab", None).await, ["Zebra", "a"]);
    assert_eq!(run("sk <= :x", "ab", None).await, ["Zebra", "a", "ab"]);
    assert_eq!(run("sk > :x", "b", None).await, ["ba", "c"]);
    assert_eq!(run("sk >= :x", "b", None).await, ["b", "ba", "c"]);
    assert_eq!(
        run("sk BETWEEN :x AND :y", "ab", Some("b")).await,
        ["ab", "abc", "abd", "b"]
    );
    assert_eq!(
        run("begins_with(sk, :x)", "ab", None).await,
        ["ab", "abc", "abd"]
    );
    assert_eq!(
        run("begins_with(sk, :x)", "x", None).await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_condition_can_use_attribute_name_placeholders_and_parentheses() {
    let (_node, client) = numeric_table(&[1, 2, 3]).await;
    let out = query_where(&client, "qry", "(#p = :p) AND (#s >= :x)", s("a"))
        .expression_attribute_names("#p", "pk")
        .expression_attribute_names("#s", "sk")
        .expression_attribute_values(":x", n("2"))
        .send()
        .await
        .unwrap();
    assert_eq!(sort_keys(&out.items.unwrap_or_default()), vec![2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_index_forward_false_returns_items_in_descending_order() {
    let (_node, client) = numeric_table(&[1, 2, 10, 20]).await;
    let out = query_where(&client, "qry", "pk = :p AND sk > :x", s("a"))
        .expression_attribute_values(":x", n("1"))
        .scan_index_forward(false)
        .send()
        .await
        .unwrap();
    assert_eq!(sort_keys(&out.items.unwrap_or_default()), vec![20, 10, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_and_exclusive_start_key_page_through_every_item_exactly_once() {
    let sks: Vec<i64> = (1..=25).collect();
    let (_node, client) = numeric_table(&sks).await;
    for forward in [true, false] {
        let pages = query_pages(|start| {
            query_where(&client, "qry", "pk = :p", s("a"))
                .scan_index_forward(forward)
                .limit(7)
                .set_exclusive_start_key(start)
        })
        .await;
        let sizes: Vec<i32> = pages.iter().map(|p| p.count).collect();
        assert_eq!(sizes, vec![7, 7, 7, 4], "page sizes (forward = {forward})");
        for p in &pages[..3] {
            let lek = p.last_evaluated_key.clone().unwrap();
            assert_eq!(
                lek.len(),
                2,
                "LastEvaluatedKey holds exactly the key: {lek:?}"
            );
            let last = p.items.clone().unwrap().last().cloned().unwrap();
            assert_eq!(lek.get("pk"), last.get("pk"));
            assert_eq!(lek.get("sk"), last.get("sk"));
        }
        let mut expected = sks.clone();
        if !forward {
            expected.reverse();
        }
        assert_eq!(sort_keys(&query_items(&pages)), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_reached_on_the_last_item_returns_a_key_and_then_an_empty_page() {
    let (_node, client) = numeric_table(&[1, 2, 3]).await;
    let pages = query_pages(|start| {
        query_where(&client, "qry", "pk = :p", s("a"))
            .limit(3)
            .set_exclusive_start_key(start)
    })
    .await;
    assert_eq!(pages.len(), 2, "a full page carries LastEvaluatedKey");
    assert_eq!(pages[0].count, 3);
    assert_eq!(pages[1].count, 0);
    assert_eq!(pages[1].last_evaluated_key, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_start_key_resumes_after_that_key_within_the_sort_key_range() {
    let (_node, client) = numeric_table(&[1, 2, 3, 4, 5, 6]).await;
    let out = query_where(&client, "qry", "pk = :p AND sk BETWEEN :x AND :y", s("a"))
        .expression_attribute_values(":x", n("2"))
        .expression_attribute_values(":y", n("5"))
        .set_exclusive_start_key(Some(key_n("a", 3)))
        .send()
        .await
        .unwrap();
    assert_eq!(sort_keys(&out.items.unwrap_or_default()), vec![4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_expression_reduces_count_but_not_scanned_count() {
    let (_node, client) = node_with_table("qry", Some(ScalarAttributeType::N)).await;
    let items = (1..=10)
        .map(|k| {
            item([
                ("pk", s("a")),
                ("sk", n(k.to_string())),
                ("parity", s(if k % 2 == 0 { "even" } else { "odd" })),
            ])
        })
        .collect();
    must_batch_put(&client, "qry", items).await;
    let out = query_where(&client, "qry", "pk = :p", s("a"))
        .filter_expression("parity = :e")
        .expression_attribute_values(":e", s("even"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.count, 5);
    assert_eq!(out.scanned_count, 10);
    assert_eq!(sort_keys(&out.items.unwrap()), vec![2, 4, 6, 8, 10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_counts_items_before_the_filter() {
    let (_node, client) = node_with_table("qry", Some(ScalarAttributeType::N)).await;
    let items = (1..=10)
        .map(|k| {
            item([
                ("pk", s("a")),
                ("sk", n(k.to_string())),
                ("big", boolean(k > 8)),
            ])
        })
        .collect();
    must_batch_put(&client, "qry", items).await;
    let out = query_where(&client, "qry", "pk = :p", s("a"))
        .filter_expression("big = :t")
        .expression_attribute_values(":t", boolean(true))
        .limit(4)
        .send()
        .await
        .unwrap();
    assert_eq!(out.scanned_count, 4);
    assert_eq!(out.count, 0);
    assert_eq!(out.last_evaluated_key, Some(key_n("a", 4)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_expression_on_a_key_attribute_is_rejected() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = query_where(&client, "qry", "pk = :p", s("a"))
        .filter_expression("sk > :x")
        .expression_attribute_values(":x", n("0"))
        .send()
        .await;
    assert_validation(
        r,
        "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_expression_returns_only_the_requested_nested_paths() {
    let (_node, client) = node_with_table("qry", Some(ScalarAttributeType::N)).await;
    must_put(
        &client,
        "qry",
        item([
            ("pk", s("a")),
            ("sk", n("1")),
            ("name", s("Ann")),
            (
                "info",
                map([
                    ("address", map([("city", s("Oslo")), ("zip", s("0150"))])),
                    ("age", n("40")),
                ]),
            ),
            ("tags", list([s("t0"), s("t1"), s("t2")])),
            ("other", s("hidden")),
        ]),
    )
    .await;
    let out = query_where(&client, "qry", "pk = :p", s("a"))
        .projection_expression("#n, info.address.city, tags[1], info.absent, nothere")
        .expression_attribute_names("#n", "name")
        .send()
        .await
        .unwrap();
    let items = out.items.unwrap();
    assert_eq!(items.len(), 1);
    let expected = item([
        ("name", s("Ann")),
        ("info", map([("address", map([("city", s("Oslo"))]))])),
        ("tags", list([s("t1")])),
    ]);
    assert_same_item(items.first(), &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_count_returns_counts_and_no_items() {
    let (_node, client) = numeric_table(&[1, 2, 3, 4]).await;
    let out = query_where(&client, "qry", "pk = :p AND sk > :x", s("a"))
        .expression_attribute_values(":x", n("1"))
        .select(Select::Count)
        .send()
        .await
        .unwrap();
    assert_eq!(out.count, 3);
    assert_eq!(out.scanned_count, 3);
    assert!(out.items.unwrap_or_default().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_specific_attributes_with_projection_and_all_attributes_without() {
    let (_node, client) = numeric_table(&[1]).await;
    let out = query_where(&client, "qry", "pk = :p", s("a"))
        .select(Select::SpecificAttributes)
        .projection_expression("v")
        .send()
        .await
        .unwrap();
    assert_same_item(out.items.unwrap().first(), &item([("v", s("a1"))]));
    let out = query_where(&client, "qry", "pk = :p", s("a"))
        .select(Select::AllAttributes)
        .send()
        .await
        .unwrap();
    assert_eq!(out.items.unwrap()[0].len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_all_attributes_with_projection_is_rejected() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = query_where(&client, "qry", "pk = :p", s("a"))
        .select(Select::AllAttributes)
        .projection_expression("v")
        .send()
        .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_to_get_cannot_be_mixed_with_expressions() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = query_where(&client, "qry", "pk = :p", s("a"))
        .attributes_to_get("v")
        .send()
        .await;
    assert_validation(
        r,
        "Can not use both expression and non-expression parameters in the same request",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_cut_at_one_megabyte_and_paging_returns_everything() {
    let (_node, client) = node_with_table("qry", Some(ScalarAttributeType::N)).await;
    // 30 items of ~100 KB: ~3 MB under one partition key.
    let blob = "x".repeat(100_000);
    for k in 0..30 {
        must_put(
            &client,
            "qry",
            item([
                ("pk", s("big")),
                ("sk", n(k.to_string())),
                ("data", s(blob.clone())),
            ]),
        )
        .await;
    }
    let pages = query_pages(|start| {
        query_where(&client, "qry", "pk = :p", s("big")).set_exclusive_start_key(start)
    })
    .await;
    let first = pages[0].count;
    assert!(
        (9..=11).contains(&first),
        "first page should stop near 1 MB (about 10 items of 100 KB), got {first}"
    );
    assert!(pages[0].last_evaluated_key.is_some());
    assert!(
        pages.len() >= 3,
        "3 MB needs at least 3 pages, got {}",
        pages.len()
    );
    assert!(pages.iter().all(|p| p.count <= 11));
    assert_eq!(sort_keys(&query_items(&pages)), (0..30).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_megabyte_limit_is_measured_before_the_filter() {
    let (_node, client) = node_with_table("qry", Some(ScalarAttributeType::N)).await;
    let blob = "x".repeat(100_000);
    for k in 0..15 {
        must_put(
            &client,
            "qry",
            item([
                ("pk", s("big")),
                ("sk", n(k.to_string())),
                ("data", s(blob.clone())),
            ]),
        )
        .await;
    }
    let out = query_where(&client, "qry", "pk = :p", s("big"))
        .filter_expression("attribute_exists(nope)")
        .send()
        .await
        .unwrap();
    assert_eq!(out.count, 0);
    assert!(
        (9..=11).contains(&out.scanned_count),
        "scanned {} items",
        out.scanned_count
    );
    assert!(out.last_evaluated_key.is_some());
}

// ---- errors ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_without_key_condition_is_rejected() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = client.query().table_name("qry").send().await;
    assert_validation(
        r,
        "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_condition_on_a_non_key_attribute_is_rejected() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = query_where(&client, "qry", "pk = :p AND v = :v", s("a"))
        .expression_attribute_values(":v", s("a1"))
        .send()
        .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_equal_on_the_sort_key_is_rejected() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = query_where(&client, "qry", "pk = :p AND sk <> :x", s("a"))
        .expression_attribute_values(":x", n("1"))
        .send()
        .await;
    assert_validation(r, "Invalid operator used in KeyConditionExpression: <>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn or_in_a_key_condition_is_rejected() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = query_where(&client, "qry", "pk = :p OR sk = :x", s("a"))
        .expression_attribute_values(":x", n("1"))
        .send()
        .await;
    assert_validation(r, "Invalid operator used in KeyConditionExpression: OR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_condition_without_partition_key_equality_is_rejected() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = client
        .query()
        .table_name("qry")
        .key_condition_expression("sk = :x")
        .expression_attribute_values(":x", n("1"))
        .send()
        .await;
    assert_validation(r, "Query condition missed key schema element: pk");
    let r = query_where(&client, "qry", "pk > :p", s("a")).send().await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begins_with_on_a_numeric_sort_key_is_rejected() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = query_where(&client, "qry", "pk = :p AND begins_with(sk, :x)", s("a"))
        .expression_attribute_values(":x", n("1"))
        .send()
        .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_condition_value_of_the_wrong_type_is_rejected() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = query_where(&client, "qry", "pk = :p AND sk > :x", s("a"))
        .expression_attribute_values(":x", s("1"))
        .send()
        .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_name_on_a_table_without_indexes_is_rejected() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = query_where(&client, "qry", "pk = :p", s("a"))
        .index_name("byColor")
        .send()
        .await;
    assert_validation(r, "The table does not have the specified index: byColor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_start_key_not_matching_the_schema_is_rejected() {
    let (_node, client) = numeric_table(&[1, 2]).await;
    for bad in [
        item([("pk", s("a"))]),
        item([("pk", s("a")), ("sk", s("1"))]),
        item([("pk", s("a")), ("sk", n("1")), ("extra", s("x"))]),
    ] {
        let r = query_where(&client, "qry", "pk = :p", s("a"))
            .set_exclusive_start_key(Some(bad.clone()))
            .send()
            .await;
        assert_validation(r, "The provided starting key is invalid");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_start_key_from_another_partition_is_rejected() {
    let (_node, client) = numeric_table(&[1, 2]).await;
    let r = query_where(&client, "qry", "pk = :p", s("a"))
        .set_exclusive_start_key(Some(key_n("b", 5)))
        .send()
        .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_below_one_is_rejected() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = query_where(&client, "qry", "pk = :p", s("a"))
        .limit(0)
        .send()
        .await;
    assert_validation(r, "Member must have value greater than or equal to 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_on_an_unknown_table_is_resource_not_found() {
    let node = TestNode::start().await;
    let client = node.client();
    let r = query_where(&client, "nothere", "pk = :p", s("a"))
        .send()
        .await;
    assert_code(r, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_conditions_on_the_sort_key_are_rejected() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = query_where(&client, "qry", "pk = :p AND sk > :x AND sk < :y", s("a"))
        .expression_attribute_values(":x", n("1"))
        .expression_attribute_values(":y", n("5"))
        .send()
        .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_paths_in_a_key_condition_are_rejected() {
    let (_node, client) = numeric_table(&[1]).await;
    let r = query_where(&client, "qry", "pk.x = :p", s("a"))
        .send()
        .await;
    assert_validation(
        r,
        "KeyConditionExpressions cannot contain nested attributes",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_on_a_hash_only_table_returns_the_single_item() {
    let (_node, client) = node_with_table("qry", None).await;
    must_put(&client, "qry", item([("pk", s("a")), ("v", n("1"))])).await;
    must_put(&client, "qry", item([("pk", s("b")), ("v", n("2"))])).await;
    let out = query_where(&client, "qry", "pk = :p", s("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.count, 1);
    assert_same_item(
        out.items.unwrap().first(),
        &item([("pk", s("a")), ("v", n("1"))]),
    );
    let r = query_where(&client, "qry", "pk = :p AND sk = :s", s("a"))
        .expression_attribute_values(":s", n("1"))
        .send()
        .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_uses_attributes_left_out_by_the_projection() {
    let (_node, client) = node_with_table("qry", Some(ScalarAttributeType::N)).await;
    let items = (1..=6)
        .map(|k| {
            item([
                ("pk", s("a")),
                ("sk", n(k.to_string())),
                ("color", s(if k <= 2 { "red" } else { "blue" })),
            ])
        })
        .collect();
    must_batch_put(&client, "qry", items).await;
    let out = query_where(&client, "qry", "pk = :p", s("a"))
        .filter_expression("color = :c")
        .projection_expression("sk")
        .expression_attribute_values(":c", s("red"))
        .send()
        .await
        .unwrap();
    let items = out.items.unwrap();
    assert_eq!(sort_keys(&items), vec![1, 2]);
    assert!(items.iter().all(|i| i.len() == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descending_pages_resume_with_exclusive_start_key() {
    let (_node, client) = numeric_table(&[1, 2, 3, 4, 5]).await;
    let out = query_where(&client, "qry", "pk = :p AND sk <= :x", s("a"))
        .expression_attribute_values(":x", n("4"))
        .scan_index_forward(false)
        .set_exclusive_start_key(Some(key_n("a", 3)))
        .send()
        .await
        .unwrap();
    assert_eq!(sort_keys(&out.items.unwrap_or_default()), vec![2, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_megabyte_page_consumes_about_256_read_units() {
    let (_node, client) = node_with_table("qry", Some(ScalarAttributeType::N)).await;
    let blob = "x".repeat(100_000);
    for k in 0..14 {
        must_put(
            &client,
            "qry",
            item([
                ("pk", s("big")),
                ("sk", n(k.to_string())),
                ("data", s(blob.clone())),
            ]),
        )
        .await;
    }
    let out = query_where(&client, "qry", "pk = :p", s("big"))
        .consistent_read(true)
        .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let units = out.consumed_capacity.unwrap().capacity_units().unwrap();
    // count × ~100 KB, in 4 KB units.
    let expected = (f64::from(out.count) * 100_013.0 / 4096.0).ceil();
    assert!(
        (units - expected).abs() <= 2.0,
        "{} items of ~100 KB consumed {units} RCU, expected about {expected}",
        out.count
    );
}

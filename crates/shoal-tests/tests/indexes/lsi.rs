//! Local secondary indexes: maintained in the same write as the item, so a strongly consistent
//! Query sees every acknowledged write at once; every projection returns exactly its attributes.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    ProjectionType, ReturnItemCollectionMetrics, ScalarAttributeType, Select,
};
use shoal_tests::*;

use crate::support::*;

const T: &str = "lsi";

/// Table `lsi`: pk S, sk S; LSIs `by_date` (date S, ALL), `by_score` (score N, KEYS_ONLY),
/// `by_tag` (tag S, INCLUDE color).
async fn setup() -> (TestNode, Client) {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_indexed_table(
        &client,
        T,
        Some(("sk", ScalarAttributeType::S)),
        &[
            ("date", ScalarAttributeType::S),
            ("score", ScalarAttributeType::N),
            ("tag", ScalarAttributeType::S),
        ],
        vec![
            lsi("by_date", "date", projection(ProjectionType::All, &[])),
            lsi(
                "by_score",
                "score",
                projection(ProjectionType::KeysOnly, &[]),
            ),
            lsi(
                "by_tag",
                "tag",
                projection(ProjectionType::Include, &["color"]),
            ),
        ],
        vec![],
    )
    .await;
    (node, client)
}

async fn q(client: &Client, index: &str, pk: &str) -> Vec<Item> {
    query_all(
        client,
        T,
        Some(index),
        "pk = :p",
        &[(":p", s(pk))],
        true,
        None,
        true,
    )
    .await
}

fn sks(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| str_of(i, "sk").to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lsi_queries_see_every_write_at_once_with_exact_projections() {
    let (_node, client) = setup().await;
    let full = |sk: &str, date: &str, score: Option<&str>, tag: Option<&str>| {
        let mut it = item([
            ("pk", s("u1")),
            ("sk", s(sk)),
            ("date", s(date)),
            ("color", s(format!("c-{sk}"))),
            ("extra", n("1")),
        ]);
        if let Some(sc) = score {
            it.insert("score".into(), n(sc));
        }
        if let Some(t) = tag {
            it.insert("tag".into(), s(t));
        }
        it
    };
    must_put(&client, T, full("a", "2024-03", Some("30"), Some("x"))).await;
    must_put(&client, T, full("b", "2024-01", Some("-5"), None)).await;
    must_put(&client, T, full("c", "2024-02", None, Some("y"))).await;
    must_put(&client, T, full("d", "2024-04", Some("100"), Some("a"))).await;
    // Another item collection never shows up in u1's queries.
    must_put(
        &client,
        T,
        item([
            ("pk", s("u2")),
            ("sk", s("a")),
            ("date", s("2000")),
            ("score", n("1")),
        ]),
    )
    .await;

    // ALL: whole items, in date order.
    let by_date = q(&client, "by_date", "u1").await;
    assert_eq!(sks(&by_date), ["b", "c", "a", "d"]);
    assert_same_item(by_date.get(2), &full("a", "2024-03", Some("30"), Some("x")));
    // KEYS_ONLY: table and index keys only, numeric order, items without a score left out.
    let by_score = q(&client, "by_score", "u1").await;
    assert_eq!(sks(&by_score), ["b", "a", "d"]);
    for it in &by_score {
        assert_eq!(names(it), ["pk", "score", "sk"], "KEYS_ONLY entry {it:?}");
    }
    // INCLUDE color.
    let by_tag = q(&client, "by_tag", "u1").await;
    assert_eq!(sks(&by_tag), ["d", "a", "c"]);
    for it in &by_tag {
        assert_eq!(
            names(it),
            ["color", "pk", "sk", "tag"],
            "INCLUDE entry {it:?}"
        );
    }

    // An update moves the entry at once; removing the index key removes the entry.
    client
        .update_item()
        .table_name(T)
        .key("pk", s("u1"))
        .key("sk", s("d"))
        .update_expression("SET #d = :d REMOVE score")
        .expression_attribute_names("#d", "date")
        .expression_attribute_values(":d", s("2023-12"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        sks(&q(&client, "by_date", "u1").await),
        ["d", "b", "c", "a"]
    );
    assert_eq!(sks(&q(&client, "by_score", "u1").await), ["b", "a"]);
    // Overwrite with a new score, delete another.
    must_put(&client, T, full("c", "2024-02", Some("7"), None)).await;
    must_delete(&client, T, item([("pk", s("u1")), ("sk", s("b"))])).await;
    assert_eq!(sks(&q(&client, "by_score", "u1").await), ["c", "a"]);
    assert_eq!(sks(&q(&client, "by_tag", "u1").await), ["d", "a"]);
    assert_eq!(sks(&q(&client, "by_date", "u1").await), ["d", "c", "a"]);

    // A Scan of an LSI reads every entry of every collection.
    let scanned = scan_all(&client, T, Some("by_score"), Some(1), None).await;
    let mut got: Vec<String> = scanned
        .iter()
        .map(|i| format!("{}/{}", str_of(i, "pk"), str_of(i, "sk")))
        .collect();
    got.sort();
    assert_eq!(got, ["u1/a", "u1/c", "u2/a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lsi_paging_with_repeated_sort_keys_returns_each_entry_once_in_order() {
    let (_node, client) = setup().await;
    // 40 items, scores repeating (0..10), so index sort keys are not unique.
    for i in 0..40 {
        must_put(
            &client,
            T,
            item([
                ("pk", s("p")),
                ("sk", s(format!("k{i:02}"))),
                ("score", n(((i * 7) % 10).to_string())),
            ]),
        )
        .await;
    }
    let mut expected: Vec<(i64, String)> = (0..40)
        .map(|i| (((i * 7) % 10) as i64, format!("k{i:02}")))
        .filter(|(sc, _)| (2..=6).contains(sc))
        .collect();
    expected.sort();
    for (forward, limit) in [(true, 3), (false, 4), (true, 1)] {
        let got = query_all(
            &client,
            T,
            Some("by_score"),
            "pk = :p AND score BETWEEN :lo AND :hi",
            &[(":p", s("p")), (":lo", n("2")), (":hi", n("6"))],
            forward,
            Some(limit),
            true,
        )
        .await;
        let got: Vec<(i64, String)> = got
            .iter()
            .map(|i| {
                let AttributeValue::N(sc) = &i["score"] else {
                    panic!("score")
                };
                (sc.parse().unwrap(), str_of(i, "sk").to_string())
            })
            .collect();
        let mut want = expected.clone();
        if !forward {
            want.reverse();
        }
        assert_eq!(got, want, "forward={forward} limit={limit}");
    }
}

use aws_sdk_dynamodb::types::AttributeValue;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lsi_select_all_attributes_fetches_whole_items_and_stats_and_collection_metrics_are_reported()
 {
    let (_node, client) = setup().await;
    let it = item([
        ("pk", s("u")),
        ("sk", s("1")),
        ("score", n("5")),
        ("payload", s("x".repeat(1000))),
    ]);
    must_put(&client, T, it.clone()).await;
    let out = client
        .query()
        .table_name(T)
        .index_name("by_score")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("u"))
        .select(Select::AllAttributes)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_same_item(out.items().first(), &it);

    // ItemCollectionMetrics on a table with LSIs.
    let out = client
        .put_item()
        .table_name(T)
        .set_item(Some(item([
            ("pk", s("u")),
            ("sk", s("2")),
            ("score", n("6")),
        ])))
        .return_item_collection_metrics(ReturnItemCollectionMetrics::Size)
        .send()
        .await
        .unwrap();
    let metrics = out
        .item_collection_metrics
        .expect("ItemCollectionMetrics on a table with local indexes");
    assert_eq!(metrics.item_collection_key.unwrap()["pk"], s("u"));
    let range = metrics.size_estimate_range_gb.unwrap_or_default();
    assert_eq!(
        range.len(),
        2,
        "SizeEstimateRangeGB is a [lower, upper] pair"
    );
    assert!(range[0] <= range[1] && range[1] >= 0.0, "{range:?}");

    // DescribeTable: per-LSI item counts and sizes.
    let table = must_wait_active(&client, T).await;
    let lsis = table.local_secondary_indexes.unwrap_or_default();
    let by_score = lsis
        .iter()
        .find(|l| l.index_name() == Some("by_score"))
        .expect("by_score described");
    assert_eq!(by_score.item_count, Some(2));
    assert!(by_score.index_size_bytes.unwrap_or(0) > 0);
    let by_tag = lsis
        .iter()
        .find(|l| l.index_name() == Some("by_tag"))
        .expect("by_tag described");
    assert_eq!(by_tag.item_count, Some(0), "no item has a tag");
}

//! ReturnConsumedCapacity: DynamoDB's rounding (writes in 1 KB units, reads in 4 KB units halved
//! for eventual consistency, Query/Scan summed over the bytes read, batches per item) and the
//! TOTAL / INDEXES / NONE response shapes.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    ConsumedCapacity, KeysAndAttributes, ReturnConsumedCapacity, ScalarAttributeType,
};
use shoal_tests::*;

use crate::support::*;

/// An item `{pk: <pk>, d: "x" * pad}` of exactly `size` bytes (attribute names count).
fn sized_item(pk: &str, size: usize) -> Item {
    let fixed = "pk".len() + pk.len() + "d".len();
    assert!(size > fixed);
    item([("pk", s(pk)), ("d", s("x".repeat(size - fixed)))])
}

/// The capacity units of a single-table ConsumedCapacity, checking it names `table`.
#[track_caller]
fn units(cc: Option<ConsumedCapacity>, table: &str) -> f64 {
    let cc = cc.expect("ConsumedCapacity returned");
    assert_eq!(cc.table_name(), Some(table));
    cc.capacity_units().expect("CapacityUnits")
}

async fn put_units(client: &Client, it: Item) -> f64 {
    let out = client
        .put_item()
        .table_name("cap")
        .set_item(Some(it))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    units(out.consumed_capacity, "cap")
}

async fn get_units(client: &Client, pk: &str, consistent: bool) -> f64 {
    let out = client
        .get_item()
        .table_name("cap")
        .key("pk", s(pk))
        .consistent_read(consistent)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    units(out.consumed_capacity, "cap")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_item_consumes_one_write_unit_per_started_kilobyte() {
    let (_node, client) = node_with_table("cap", None).await;
    assert_eq!(put_units(&client, sized_item("a", 1536)).await, 2.0);
    assert_eq!(put_units(&client, sized_item("b", 1024)).await, 1.0);
    assert_eq!(put_units(&client, sized_item("k1025", 1025)).await, 2.0);
    assert_eq!(put_units(&client, sized_item("d", 10)).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_item_consumes_four_kilobyte_read_units_halved_when_eventually_consistent() {
    let (_node, client) = node_with_table("cap", None).await;
    must_put(&client, "cap", sized_item("five", 5 * 1024)).await;
    must_put(&client, "cap", sized_item("four", 4096)).await;
    assert_eq!(get_units(&client, "five", true).await, 2.0);
    assert_eq!(get_units(&client, "five", false).await, 1.0);
    assert_eq!(get_units(&client, "four", true).await, 1.0);
    assert_eq!(get_units(&client, "four", false).await, 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_of_a_missing_item_still_consumes_a_read() {
    let (_node, client) = node_with_table("cap", None).await;
    assert_eq!(get_units(&client, "nobody", true).await, 1.0);
    assert_eq!(get_units(&client, "nobody", false).await, 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_item_consumes_the_larger_of_the_old_and_new_item() {
    let (_node, client) = node_with_table("cap", None).await;
    must_put(&client, "cap", sized_item("a", 3000)).await;
    let out = client
        .update_item()
        .table_name("cap")
        .key("pk", s("a"))
        .update_expression("REMOVE d")
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert_eq!(units(out.consumed_capacity, "cap"), 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_item_consumes_the_size_of_the_deleted_item() {
    let (_node, client) = node_with_table("cap", None).await;
    must_put(&client, "cap", sized_item("a", 2500)).await;
    let del = |pk: &'static str| {
        client
            .delete_item()
            .table_name("cap")
            .key("pk", s(pk))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
    };
    assert_eq!(units(del("a").await.unwrap().consumed_capacity, "cap"), 3.0);
    assert_eq!(units(del("a").await.unwrap().consumed_capacity, "cap"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_scan_sum_the_bytes_read_before_rounding() {
    let (_node, client) = node_with_table("cap", Some(ScalarAttributeType::N)).await;
    // 10 items of about 1000 bytes: ~10 KB read in total, which is 3 read units, not 10.
    let items = (0..10)
        .map(|k| {
            item([
                ("pk", s("a")),
                ("sk", n(k.to_string())),
                ("d", s("x".repeat(990))),
            ])
        })
        .collect();
    must_batch_put(&client, "cap", items).await;
    for consistent in [true, false] {
        let out = query_where(&client, "cap", "pk = :p", s("a"))
            .consistent_read(consistent)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .unwrap();
        let want = if consistent { 3.0 } else { 1.5 };
        assert_eq!(
            units(out.consumed_capacity, "cap"),
            want,
            "query consistent={consistent}"
        );
        let out = client
            .scan()
            .table_name("cap")
            .consistent_read(consistent)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .unwrap();
        assert_eq!(
            units(out.consumed_capacity, "cap"),
            want,
            "scan consistent={consistent}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_capacity_counts_items_removed_by_the_filter() {
    let (_node, client) = node_with_table("cap", Some(ScalarAttributeType::N)).await;
    let items = (0..10)
        .map(|k| {
            item([
                ("pk", s("a")),
                ("sk", n(k.to_string())),
                ("d", s("x".repeat(990))),
            ])
        })
        .collect();
    must_batch_put(&client, "cap", items).await;
    let out = query_where(&client, "cap", "pk = :p", s("a"))
        .filter_expression("attribute_exists(nope)")
        .consistent_read(true)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert_eq!(out.count, 0);
    assert_eq!(units(out.consumed_capacity, "cap"), 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_indexes_and_none_have_their_documented_shapes() {
    let (_node, client) = node_with_table("cap", None).await;
    let put = |rcc: Option<ReturnConsumedCapacity>| {
        client
            .put_item()
            .table_name("cap")
            .set_item(Some(sized_item("a", 1536)))
            .set_return_consumed_capacity(rcc)
            .send()
    };
    assert_eq!(put(None).await.unwrap().consumed_capacity, None);
    assert_eq!(
        put(Some(ReturnConsumedCapacity::None))
            .await
            .unwrap()
            .consumed_capacity,
        None
    );
    let total = put(Some(ReturnConsumedCapacity::Total))
        .await
        .unwrap()
        .consumed_capacity
        .unwrap();
    assert_eq!(total.table_name(), Some("cap"));
    assert_eq!(total.capacity_units(), Some(2.0));
    assert_eq!(total.table(), None, "TOTAL has no per-table breakdown");
    let indexes = put(Some(ReturnConsumedCapacity::Indexes))
        .await
        .unwrap()
        .consumed_capacity
        .unwrap();
    assert_eq!(indexes.table_name(), Some("cap"));
    assert_eq!(indexes.capacity_units(), Some(2.0));
    let table = indexes.table().expect("INDEXES includes Table");
    assert_eq!(table.capacity_units(), Some(2.0));
    assert!(
        indexes
            .global_secondary_indexes()
            .is_none_or(|m| m.is_empty())
    );
    assert!(
        indexes
            .local_secondary_indexes()
            .is_none_or(|m| m.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_write_reports_capacity_per_table_rounding_each_item() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "cap").await;
    must_create_hash_table(&client, "cap2").await;
    let out = client
        .batch_write_item()
        .request_items(
            "cap",
            vec![
                put_req(sized_item("a", 1536)),
                put_req(sized_item("b", 1536)),
            ],
        )
        .request_items("cap2", vec![put_req(sized_item("x", 100))])
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let mut per_table: Vec<(String, f64)> = out
        .consumed_capacity
        .unwrap()
        .iter()
        .map(|c| {
            (
                c.table_name().unwrap().to_string(),
                c.capacity_units().unwrap(),
            )
        })
        .collect();
    per_table.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        per_table,
        vec![("cap".to_string(), 4.0), ("cap2".to_string(), 1.0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_reports_capacity_per_table_rounding_each_item() {
    let (_node, client) = node_with_table("cap", None).await;
    for pk in ["a", "b", "k3"] {
        must_put(&client, "cap", sized_item(pk, 1000)).await;
    }
    let out = client
        .batch_get_item()
        .request_items(
            "cap",
            KeysAndAttributes::builder()
                .keys(key_s("a"))
                .keys(key_s("b"))
                .keys(key_s("k3"))
                .consistent_read(true)
                .build()
                .unwrap(),
        )
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let ccs = out.consumed_capacity.unwrap();
    assert_eq!(ccs.len(), 1);
    assert_eq!(ccs[0].table_name(), Some("cap"));
    // Each item is rounded up to 4 KB on its own: 3 units, not 1.
    assert_eq!(ccs[0].capacity_units(), Some(3.0));
}

/// Small scans (Scan.md, "Capacity units consumed by scan"): a Scan consumes at least one read
/// unit per partition involved (0.5 eventually consistent, 1.0 strongly), even when the
/// partition holds no items; above that the bytes read are summed and rounded up to 4 KB
/// (ProvisionedThroughput.md; item sizes per CapacityUnitCalculations.md). A new table has
/// one partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_scans_charge_the_minimum_and_round_the_sum_up() {
    let (_node, client) = node_with_table("cap", None).await;
    let scan_units = |consistent: bool, limit: Option<i32>| {
        let client = client.clone();
        async move {
            let out = client
                .scan()
                .table_name("cap")
                .consistent_read(consistent)
                .set_limit(limit)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .unwrap();
            units(out.consumed_capacity, "cap")
        }
    };
    // Empty table: the minimum.
    assert_eq!(scan_units(false, None).await, 0.5);
    assert_eq!(scan_units(true, None).await, 1.0);
    // Three items of 1 KB: 3 KB read, rounded up to one 4 KB unit.
    for pk in ["a", "b", "c"] {
        must_put(&client, "cap", sized_item(pk, 1024)).await;
    }
    assert_eq!(scan_units(false, None).await, 0.5);
    assert_eq!(scan_units(true, None).await, 1.0);
    // Five items of 1 KB: 5 KB, two units; with Limit 1 only 1 KB is read.
    for pk in ["d", "e"] {
        must_put(&client, "cap", sized_item(pk, 1024)).await;
    }
    assert_eq!(scan_units(false, None).await, 1.0);
    assert_eq!(scan_units(true, None).await, 2.0);
    assert_eq!(scan_units(true, Some(1)).await, 1.0);
    // 4 KB exactly is one unit, one byte more two.
    let (_node, client2) = node_with_table("cap", None).await;
    must_put(&client2, "cap", sized_item("a", 4096)).await;
    let out = client2
        .scan()
        .table_name("cap")
        .consistent_read(true)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert_eq!(units(out.consumed_capacity, "cap"), 1.0);
    must_put(&client2, "cap", sized_item("b", 10)).await;
    let out = client2
        .scan()
        .table_name("cap")
        .consistent_read(true)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert_eq!(units(out.consumed_capacity, "cap"), 2.0);
}

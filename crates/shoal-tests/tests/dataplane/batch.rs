//! BatchWriteItem and BatchGetItem: several tables per call, limits, duplicate keys, whole-batch
//! validation, projections and missing keys.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{KeysAndAttributes, ScalarAttributeType, WriteRequest};
use shoal_tests::*;

use crate::support::*;

/// Node with tables `t1` (pk S) and `t2` (pk S, sk N).
async fn two_tables() -> (TestNode, Client) {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "tb1").await;
    must_create_table(
        &client,
        "tb2",
        ("pk", ScalarAttributeType::S),
        Some(("sk", ScalarAttributeType::N)),
    )
    .await;
    (node, client)
}

fn keys(ks: Vec<Item>) -> KeysAndAttributes {
    KeysAndAttributes::builder()
        .set_keys(Some(ks))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_write_puts_and_deletes_across_two_tables() {
    let (_node, client) = two_tables().await;
    must_put(&client, "tb1", item([("pk", s("gone"))])).await;
    must_put(&client, "tb2", item([("pk", s("a")), ("sk", n("2"))])).await;
    let out = client
        .batch_write_item()
        .request_items(
            "tb1",
            vec![
                put_req(item([("pk", s("x")), ("v", n("1"))])),
                put_req(item([("pk", s("y")), ("v", n("2"))])),
                delete_req(key_s("gone")),
            ],
        )
        .request_items(
            "tb2",
            vec![
                put_req(item([("pk", s("a")), ("sk", n("1")), ("v", s("one"))])),
                delete_req(key_n("a", 2)),
            ],
        )
        .send()
        .await
        .unwrap();
    assert!(out.unprocessed_items.unwrap_or_default().is_empty());
    assert_same_item(
        must_get(&client, "tb1", key_s("x")).await.as_ref(),
        &item([("pk", s("x")), ("v", n("1"))]),
    );
    assert!(must_get(&client, "tb1", key_s("y")).await.is_some());
    assert_eq!(must_get(&client, "tb1", key_s("gone")).await, None);
    assert_same_item(
        must_get(&client, "tb2", key_n("a", 1)).await.as_ref(),
        &item([("pk", s("a")), ("sk", n("1")), ("v", s("one"))]),
    );
    assert_eq!(must_get(&client, "tb2", key_n("a", 2)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_write_put_replaces_an_existing_item_and_delete_of_missing_item_succeeds() {
    let (_node, client) = two_tables().await;
    must_put(&client, "tb1", item([("pk", s("a")), ("old", s("x"))])).await;
    batch_write(
        &client,
        "tb1",
        vec![
            put_req(item([("pk", s("a")), ("new", s("y"))])),
            delete_req(key_s("never-existed")),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_same_item(
        must_get(&client, "tb1", key_s("a")).await.as_ref(),
        &item([("pk", s("a")), ("new", s("y"))]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_write_of_twenty_five_requests_succeeds() {
    let (_node, client) = two_tables().await;
    let reqs: Vec<WriteRequest> = (0..25)
        .map(|i| put_req(item([("pk", s(format!("k{i}")))])))
        .collect();
    let out = batch_write(&client, "tb1", reqs).send().await.unwrap();
    assert!(out.unprocessed_items.unwrap_or_default().is_empty());
    let scan = client.scan().table_name("tb1").send().await.unwrap();
    assert_eq!(scan.count, 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_write_of_more_than_twenty_five_requests_is_rejected() {
    let (_node, client) = two_tables().await;
    let reqs: Vec<WriteRequest> = (0..26)
        .map(|i| put_req(item([("pk", s(format!("k{i}")))])))
        .collect();
    let r = batch_write(&client, "tb1", reqs).send().await;
    assert_validation(r, "Member must have length less than or equal to 25");
    // 13 + 13 across two tables is also over the limit.
    let r = client
        .batch_write_item()
        .request_items(
            "tb1",
            (0..13)
                .map(|i| put_req(item([("pk", s(format!("k{i}")))])))
                .collect(),
        )
        .request_items(
            "tb2",
            (0..13)
                .map(|i| put_req(item([("pk", s("a")), ("sk", n(i.to_string()))])))
                .collect(),
        )
        .send()
        .await;
    assert_validation(r, "Too many items requested for the BatchWriteItem call");
    let scan = client.scan().table_name("tb1").send().await.unwrap();
    assert_eq!(scan.count, 0, "nothing is written by a rejected batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_write_with_duplicate_keys_is_rejected() {
    let (_node, client) = two_tables().await;
    let r = batch_write(
        &client,
        "tb1",
        vec![
            put_req(item([("pk", s("a")), ("v", n("1"))])),
            put_req(item([("pk", s("a")), ("v", n("2"))])),
        ],
    )
    .send()
    .await;
    assert_validation(r, "Provided list of item keys contains duplicates");
    let r = batch_write(
        &client,
        "tb2",
        vec![
            put_req(item([("pk", s("a")), ("sk", n("1"))])),
            // Numerically equal sort key: the same item.
            delete_req(item([("pk", s("a")), ("sk", n("1.0"))])),
        ],
    )
    .send()
    .await;
    assert_validation(r, "Provided list of item keys contains duplicates");
    assert_eq!(must_get(&client, "tb1", key_s("a")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_write_with_an_invalid_item_anywhere_writes_nothing() {
    let (_node, client) = two_tables().await;
    let r = client
        .batch_write_item()
        .request_items(
            "tb1",
            vec![
                put_req(item([("pk", s("ok1"))])),
                put_req(item([("pk", s("ok2"))])),
            ],
        )
        .request_items(
            "tb2",
            vec![
                put_req(item([("pk", s("a")), ("sk", n("1"))])),
                // Missing the sort key.
                put_req(item([("pk", s("a")), ("v", n("1"))])),
            ],
        )
        .send()
        .await;
    assert_validation(r, "One or more parameter values were invalid");
    assert_eq!(must_get(&client, "tb1", key_s("ok1")).await, None);
    assert_eq!(must_get(&client, "tb1", key_s("ok2")).await, None);
    assert_eq!(must_get(&client, "tb2", key_n("a", 1)).await, None);
    // A key attribute of the wrong type is just as fatal.
    let r = batch_write(
        &client,
        "tb1",
        vec![
            put_req(item([("pk", s("ok1"))])),
            put_req(item([("pk", n("7"))])),
        ],
    )
    .send()
    .await;
    assert_validation(r, "One or more parameter values were invalid");
    assert_eq!(must_get(&client, "tb1", key_s("ok1")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_write_to_an_unknown_table_writes_nothing() {
    let (_node, client) = two_tables().await;
    let r = client
        .batch_write_item()
        .request_items("tb1", vec![put_req(item([("pk", s("ok"))]))])
        .request_items("nothere", vec![put_req(item([("pk", s("x"))]))])
        .send()
        .await;
    assert_code(r, "ResourceNotFoundException");
    assert_eq!(must_get(&client, "tb1", key_s("ok")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_write_request_with_both_put_and_delete_is_rejected() {
    let (_node, client) = two_tables().await;
    let both = WriteRequest::builder()
        .put_request(
            aws_sdk_dynamodb::types::PutRequest::builder()
                .set_item(Some(item([("pk", s("a"))])))
                .build()
                .unwrap(),
        )
        .delete_request(
            aws_sdk_dynamodb::types::DeleteRequest::builder()
                .set_key(Some(key_s("a")))
                .build()
                .unwrap(),
        )
        .build();
    let r = batch_write(&client, "tb1", vec![both]).send().await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_reads_several_tables_and_leaves_out_missing_keys() {
    let (_node, client) = two_tables().await;
    must_put(&client, "tb1", item([("pk", s("x")), ("v", n("1"))])).await;
    must_put(&client, "tb1", item([("pk", s("y")), ("v", n("2"))])).await;
    must_put(
        &client,
        "tb2",
        item([("pk", s("a")), ("sk", n("1")), ("v", s("one"))]),
    )
    .await;
    let out = client
        .batch_get_item()
        .request_items("tb1", keys(vec![key_s("x"), key_s("y"), key_s("missing")]))
        .request_items("tb2", keys(vec![key_n("a", 1), key_n("a", 99)]))
        .send()
        .await
        .unwrap();
    assert!(out.unprocessed_keys.unwrap_or_default().is_empty());
    let responses = out.responses.unwrap();
    let mut t1 = responses["tb1"].clone();
    t1.sort_by(|a, b| str_of(a, "pk").cmp(str_of(b, "pk")));
    assert_eq!(t1.len(), 2);
    assert_same_item(t1.first(), &item([("pk", s("x")), ("v", n("1"))]));
    assert_same_item(t1.get(1), &item([("pk", s("y")), ("v", n("2"))]));
    assert_eq!(responses["tb2"].len(), 1);
    assert_same_item(
        responses["tb2"].first(),
        &item([("pk", s("a")), ("sk", n("1")), ("v", s("one"))]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_of_only_missing_keys_returns_an_empty_list_for_the_table() {
    let (_node, client) = two_tables().await;
    let out = client
        .batch_get_item()
        .request_items("tb1", keys(vec![key_s("nope")]))
        .send()
        .await
        .unwrap();
    let responses = out.responses.unwrap_or_default();
    assert!(responses.get("tb1").is_none_or(|v| v.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_applies_the_projection_expression_per_table() {
    let (_node, client) = two_tables().await;
    must_put(
        &client,
        "tb1",
        item([
            ("pk", s("x")),
            ("name", s("Ann")),
            ("info", map([("city", s("Oslo")), ("zip", s("0150"))])),
            ("other", n("1")),
        ]),
    )
    .await;
    let out = client
        .batch_get_item()
        .request_items(
            "tb1",
            KeysAndAttributes::builder()
                .keys(key_s("x"))
                .projection_expression("#n, info.city")
                .expression_attribute_names("#n", "name")
                .consistent_read(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let got = out.responses.unwrap()["tb1"].clone();
    assert_same_item(
        got.first(),
        &item([("name", s("Ann")), ("info", map([("city", s("Oslo"))]))]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_of_more_than_one_hundred_keys_is_rejected() {
    let (_node, client) = two_tables().await;
    let r = client
        .batch_get_item()
        .request_items(
            "tb1",
            keys((0..60).map(|i| key_s(&format!("k{i}"))).collect()),
        )
        .request_items("tb2", keys((0..60).map(|i| key_n("a", i)).collect()))
        .send()
        .await;
    assert_validation(r, "Too many items requested for the BatchGetItem call");
    let r = client
        .batch_get_item()
        .request_items(
            "tb1",
            keys((0..101).map(|i| key_s(&format!("k{i}"))).collect()),
        )
        .send()
        .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_of_one_hundred_keys_succeeds() {
    let (_node, client) = two_tables().await;
    let out = client
        .batch_get_item()
        .request_items(
            "tb1",
            keys((0..100).map(|i| key_s(&format!("k{i}"))).collect()),
        )
        .send()
        .await
        .unwrap();
    assert!(out.unprocessed_keys.unwrap_or_default().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_with_duplicate_keys_is_rejected() {
    let (_node, client) = two_tables().await;
    let r = client
        .batch_get_item()
        .request_items("tb1", keys(vec![key_s("a"), key_s("b"), key_s("a")]))
        .send()
        .await;
    assert_validation(r, "Provided list of item keys contains duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_from_an_unknown_table_is_resource_not_found() {
    let (_node, client) = two_tables().await;
    let r = client
        .batch_get_item()
        .request_items("tb1", keys(vec![key_s("a")]))
        .request_items("nothere", keys(vec![key_s("a")]))
        .send()
        .await;
    let err = assert_code(r, "ResourceNotFoundException");
    assert_eq!(err.message, "Requested resource not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_with_a_key_not_matching_the_schema_is_rejected() {
    let (_node, client) = two_tables().await;
    let r = client
        .batch_get_item()
        .request_items("tb2", keys(vec![key_s("a")]))
        .send()
        .await;
    assert_validation(r, "The provided key element does not match the schema");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_over_sixteen_megabytes_returns_the_rest_as_unprocessed_keys() {
    let (_node, client) = two_tables().await;
    // 45 items of ~400 KB: about 18 MB, more than one BatchGetItem response may carry.
    let blob = "z".repeat(399_000);
    let all: Vec<Item> = (0..45).map(|i| key_s(&format!("big{i:02}"))).collect();
    for k in &all {
        let mut it = k.clone();
        it.insert("d".into(), s(blob.clone()));
        must_put(&client, "tb1", it).await;
    }
    let out = client
        .batch_get_item()
        .request_items("tb1", keys(all.clone()))
        .send()
        .await
        .unwrap();
    let got = out
        .responses
        .unwrap_or_default()
        .remove("tb1")
        .unwrap_or_default();
    let unprocessed = out
        .unprocessed_keys
        .unwrap_or_default()
        .remove("tb1")
        .map(|k| k.keys)
        .unwrap_or_default();
    assert!(!got.is_empty(), "some items fit in the first response");
    assert!(
        got.len() <= 42,
        "{} items of 400 KB exceed 16 MB",
        got.len()
    );
    assert!(
        !unprocessed.is_empty(),
        "the rest comes back as UnprocessedKeys"
    );
    assert_eq!(got.len() + unprocessed.len(), 45);
    // Asking again for the unprocessed keys returns the remaining items.
    let again = client
        .batch_get_item()
        .request_items("tb1", keys(unprocessed.clone()))
        .send()
        .await
        .unwrap();
    let rest = again
        .responses
        .unwrap_or_default()
        .remove("tb1")
        .unwrap_or_default();
    assert_eq!(rest.len(), unprocessed.len());
    let mut seen: Vec<String> = got
        .iter()
        .chain(rest.iter())
        .map(|i| str_of(i, "pk").to_string())
        .collect();
    seen.sort();
    let mut want: Vec<String> = all.iter().map(|k| str_of(k, "pk").to_string()).collect();
    want.sort();
    assert_eq!(seen, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_write_of_an_oversized_item_writes_nothing() {
    let (_node, client) = two_tables().await;
    let r = batch_write(
        &client,
        "tb1",
        vec![
            put_req(item([("pk", s("small"))])),
            put_req(item([("pk", s("huge")), ("d", s("x".repeat(410_000)))])),
        ],
    )
    .send()
    .await;
    assert_validation(r, "Item size has exceeded the maximum allowed size");
    assert_eq!(must_get(&client, "tb1", key_s("small")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_write_with_an_empty_request_list_is_rejected() {
    let (_node, client) = two_tables().await;
    let r = batch_write(&client, "tb1", vec![]).send().await;
    assert_code(r, "ValidationException");
    let r = client.batch_write_item().send().await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_mixing_projection_and_attributes_to_get_is_rejected() {
    let (_node, client) = two_tables().await;
    let r = client
        .batch_get_item()
        .request_items(
            "tb1",
            KeysAndAttributes::builder()
                .keys(key_s("a"))
                .projection_expression("pk")
                .attributes_to_get("pk")
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert_validation(
        r,
        "Can not use both expression and non-expression parameters in the same request",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_attributes_to_get_projects_top_level_attributes() {
    let (_node, client) = two_tables().await;
    must_put(
        &client,
        "tb1",
        item([("pk", s("a")), ("x", n("1")), ("y", n("2"))]),
    )
    .await;
    let out = client
        .batch_get_item()
        .request_items(
            "tb1",
            KeysAndAttributes::builder()
                .keys(key_s("a"))
                .attributes_to_get("x")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_same_item(
        out.responses.unwrap()["tb1"].first(),
        &item([("x", n("1"))]),
    );
}

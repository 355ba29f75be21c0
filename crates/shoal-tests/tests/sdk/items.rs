//! Item operations: PutItem, GetItem, DeleteItem, UpdateItem (SET/REMOVE), ReturnValues,
//! ConditionExpression, ProjectionExpression, ConsistentRead.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use shoal_tests::*;

const CCF: &str = "ConditionalCheckFailedException";

async fn node_with_table() -> (TestNode, Client) {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "tbl").await;
    (node, client)
}

fn key(pk: &str) -> Item {
    item([("pk", s(pk))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_then_get_returns_the_item() {
    let (_node, client) = node_with_table().await;
    let it = item([("pk", s("a")), ("name", s("Alice")), ("age", n("30"))]);
    must_put(&client, "tbl", it.clone()).await;
    assert_same_item(must_get(&client, "tbl", key("a")).await.as_ref(), &it);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_of_missing_item_returns_no_item() {
    let (_node, client) = node_with_table().await;
    let out = client
        .get_item()
        .table_name("tbl")
        .key("pk", s("missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.item, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_replaces_the_whole_item() {
    let (_node, client) = node_with_table().await;
    must_put(&client, "tbl", item([("pk", s("a")), ("old", s("x"))])).await;
    let new = item([("pk", s("a")), ("new", s("y"))]);
    must_put(&client, "tbl", new.clone()).await;
    assert_same_item(must_get(&client, "tbl", key("a")).await.as_ref(), &new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_with_same_hash_and_different_range_keys_are_distinct() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_range_table(&client, "tbl_hr").await;
    must_put(
        &client,
        "tbl_hr",
        item([("pk", s("a")), ("sk", n("1")), ("v", s("one"))]),
    )
    .await;
    must_put(
        &client,
        "tbl_hr",
        item([("pk", s("a")), ("sk", n("2")), ("v", s("two"))]),
    )
    .await;
    let one = must_get(&client, "tbl_hr", item([("pk", s("a")), ("sk", n("1"))]))
        .await
        .unwrap();
    assert_eq!(one.get("v"), Some(&s("one")));
    // Numerically equal sort keys address the same item.
    let two = must_get(&client, "tbl_hr", item([("pk", s("a")), ("sk", n("2.0"))]))
        .await
        .unwrap();
    assert_eq!(two.get("v"), Some(&s("two")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_with_consistent_read_true_and_false_both_see_the_write() {
    let (_node, client) = node_with_table().await;
    must_put(&client, "tbl", item([("pk", s("a")), ("v", n("1"))])).await;
    for consistent in [true, false] {
        let out = client
            .get_item()
            .table_name("tbl")
            .key("pk", s("a"))
            .consistent_read(consistent)
            .send()
            .await
            .unwrap();
        assert_eq!(out.item.unwrap().get("v"), Some(&n("1")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_the_item_and_deleting_a_missing_item_succeeds() {
    let (_node, client) = node_with_table().await;
    must_put(&client, "tbl", item([("pk", s("a"))])).await;
    must_delete(&client, "tbl", key("a")).await;
    assert_eq!(must_get(&client, "tbl", key("a")).await, None);
    let out = client
        .delete_item()
        .table_name("tbl")
        .key("pk", s("never"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.attributes, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_return_values_none_and_all_old() {
    let (_node, client) = node_with_table().await;
    let first = item([("pk", s("a")), ("v", n("1"))]);
    let out = client
        .put_item()
        .table_name("tbl")
        .set_item(Some(first.clone()))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.attributes, None,
        "ALL_OLD of a new item returns nothing"
    );
    let out = client
        .put_item()
        .table_name("tbl")
        .item("pk", s("a"))
        .item("v", n("2"))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_same_item(out.attributes.as_ref(), &first);
    let out = client
        .put_item()
        .table_name("tbl")
        .item("pk", s("a"))
        .item("v", n("3"))
        .return_values(ReturnValue::None)
        .send()
        .await
        .unwrap();
    assert_eq!(out.attributes, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_rejects_update_style_return_values() {
    let (_node, client) = node_with_table().await;
    for rv in [
        ReturnValue::AllNew,
        ReturnValue::UpdatedNew,
        ReturnValue::UpdatedOld,
    ] {
        let r = client
            .put_item()
            .table_name("tbl")
            .item("pk", s("a"))
            .return_values(rv)
            .send()
            .await;
        assert_code(r, "ValidationException");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_return_values_all_old_returns_the_deleted_item() {
    let (_node, client) = node_with_table().await;
    let it = item([("pk", s("a")), ("v", ss(["x", "y"]))]);
    must_put(&client, "tbl", it.clone()).await;
    let out = client
        .delete_item()
        .table_name("tbl")
        .key("pk", s("a"))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_same_item(out.attributes.as_ref(), &it);
    let out = client
        .delete_item()
        .table_name("tbl")
        .key("pk", s("a"))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_eq!(out.attributes, None);
    let r = client
        .delete_item()
        .table_name("tbl")
        .key("pk", s("a"))
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_set_creates_a_missing_item() {
    let (_node, client) = node_with_table().await;
    client
        .update_item()
        .table_name("tbl")
        .key("pk", s("new"))
        .update_expression("SET color = :c, qty = :n")
        .expression_attribute_values(":c", s("red"))
        .expression_attribute_values(":n", n("5"))
        .send()
        .await
        .unwrap();
    assert_same_item(
        must_get(&client, "tbl", key("new")).await.as_ref(),
        &item([("pk", s("new")), ("color", s("red")), ("qty", n("5"))]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_set_and_remove_keep_other_attributes() {
    let (_node, client) = node_with_table().await;
    must_put(
        &client,
        "tbl",
        item([
            ("pk", s("a")),
            ("keep", s("k")),
            ("drop", s("d")),
            ("v", n("1")),
        ]),
    )
    .await;
    client
        .update_item()
        .table_name("tbl")
        .key("pk", s("a"))
        .update_expression("SET v = :v, #st = :st REMOVE #d")
        .expression_attribute_names("#st", "status")
        .expression_attribute_names("#d", "drop")
        .expression_attribute_values(":v", n("2"))
        .expression_attribute_values(":st", s("done"))
        .send()
        .await
        .unwrap();
    assert_same_item(
        must_get(&client, "tbl", key("a")).await.as_ref(),
        &item([
            ("pk", s("a")),
            ("keep", s("k")),
            ("v", n("2")),
            ("status", s("done")),
        ]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_remove_of_missing_attribute_is_a_no_op() {
    let (_node, client) = node_with_table().await;
    must_put(&client, "tbl", item([("pk", s("a")), ("x", s("1"))])).await;
    client
        .update_item()
        .table_name("tbl")
        .key("pk", s("a"))
        .update_expression("REMOVE nothing_here")
        .send()
        .await
        .unwrap();
    assert_same_item(
        must_get(&client, "tbl", key("a")).await.as_ref(),
        &item([("pk", s("a")), ("x", s("1"))]),
    );
}

async fn update_returning(client: &Client, rv: ReturnValue) -> Option<Item> {
    must_put(
        client,
        "tbl",
        item([
            ("pk", s("a")),
            ("x", n("1")),
            ("y", s("old")),
            ("z", s("zz")),
        ]),
    )
    .await;
    client
        .update_item()
        .table_name("tbl")
        .key("pk", s("a"))
        .update_expression("SET x = :x, w = :w REMOVE y")
        .expression_attribute_values(":x", n("2"))
        .expression_attribute_values(":w", s("new"))
        .return_values(rv)
        .send()
        .await
        .unwrap()
        .attributes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_return_values_none_returns_nothing() {
    let (_node, client) = node_with_table().await;
    assert_eq!(update_returning(&client, ReturnValue::None).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_return_values_all_old_returns_the_item_before() {
    let (_node, client) = node_with_table().await;
    let got = update_returning(&client, ReturnValue::AllOld).await;
    assert_same_item(
        got.as_ref(),
        &item([
            ("pk", s("a")),
            ("x", n("1")),
            ("y", s("old")),
            ("z", s("zz")),
        ]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_return_values_all_new_returns_the_item_after() {
    let (_node, client) = node_with_table().await;
    let got = update_returning(&client, ReturnValue::AllNew).await;
    assert_same_item(
        got.as_ref(),
        &item([
            ("pk", s("a")),
            ("x", n("2")),
            ("w", s("new")),
            ("z", s("zz")),
        ]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_return_values_updated_old_returns_old_values_of_changed_attributes() {
    let (_node, client) = node_with_table().await;
    let got = update_returning(&client, ReturnValue::UpdatedOld).await;
    // `w` did not exist before, so it has no old value; `y` was removed.
    assert_same_item(got.as_ref(), &item([("x", n("1")), ("y", s("old"))]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_return_values_updated_new_returns_new_values_of_changed_attributes() {
    let (_node, client) = node_with_table().await;
    let got = update_returning(&client, ReturnValue::UpdatedNew).await;
    // Removed attributes have no new value.
    assert_same_item(got.as_ref(), &item([("x", n("2")), ("w", s("new"))]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_of_a_missing_item_has_no_old_values() {
    let (_node, client) = node_with_table().await;
    for rv in [ReturnValue::AllOld, ReturnValue::UpdatedOld] {
        let out = client
            .update_item()
            .table_name("tbl")
            .key("pk", s(format!("fresh-{rv}")))
            .update_expression("SET x = :x")
            .expression_attribute_values(":x", n("1"))
            .return_values(rv.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(out.attributes, None, "{rv}");
    }
    let out = client
        .update_item()
        .table_name("tbl")
        .key("pk", s("fresh-new"))
        .update_expression("SET x = :x")
        .expression_attribute_values(":x", n("1"))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap();
    assert_same_item(
        out.attributes.as_ref(),
        &item([("pk", s("fresh-new")), ("x", n("1"))]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_with_attribute_not_exists_only_creates() {
    let (_node, client) = node_with_table().await;
    let put = |v: &'static str| {
        client
            .put_item()
            .table_name("tbl")
            .item("pk", s("a"))
            .item("v", s(v))
            .condition_expression("attribute_not_exists(pk)")
            .send()
    };
    put("first").await.unwrap();
    let err = assert_code(put("second").await, CCF);
    assert_eq!(err.message, "The conditional request failed");
    let got = must_get(&client, "tbl", key("a")).await.unwrap();
    assert_eq!(got.get("v"), Some(&s("first")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_attribute_exists_fails_on_missing_item() {
    let (_node, client) = node_with_table().await;
    let r = client
        .delete_item()
        .table_name("tbl")
        .key("pk", s("ghost"))
        .condition_expression("attribute_exists(pk)")
        .send()
        .await;
    assert_code(r, CCF);
    must_put(&client, "tbl", item([("pk", s("real"))])).await;
    client
        .delete_item()
        .table_name("tbl")
        .key("pk", s("real"))
        .condition_expression("attribute_exists(pk)")
        .send()
        .await
        .unwrap();
    assert_eq!(must_get(&client, "tbl", key("real")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_with_attribute_exists_does_not_create_items() {
    let (_node, client) = node_with_table().await;
    let r = client
        .update_item()
        .table_name("tbl")
        .key("pk", s("ghost"))
        .update_expression("SET v = :v")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":v", n("1"))
        .send()
        .await;
    assert_code(r, CCF);
    assert_eq!(must_get(&client, "tbl", key("ghost")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_compare_numbers_numerically() {
    let (_node, client) = node_with_table().await;
    must_put(&client, "tbl", item([("pk", s("a")), ("price", n("10"))])).await;
    let update_if = |cond: &'static str, val: &'static str| {
        client
            .update_item()
            .table_name("tbl")
            .key("pk", s("a"))
            .update_expression("SET touched = :t")
            .condition_expression(cond)
            .expression_attribute_values(":p", n(val))
            .expression_attribute_values(":t", boolean(true))
            .send()
    };
    // 10 > 9 numerically (but "10" < "9" as strings).
    update_if("price > :p", "9").await.unwrap();
    assert_code(update_if("price < :p", "9").await, CCF);
    update_if("price = :p", "10.0").await.unwrap();
    update_if("price <> :p", "11").await.unwrap();
    assert_code(update_if("price <> :p", "1E1").await, CCF);
    update_if("price >= :p", "10").await.unwrap();
    update_if("price <= :p", "10").await.unwrap();
    assert_code(update_if("price <= :p", "9.99").await, CCF);
    update_if("price BETWEEN :p AND :p", "10").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_compare_strings_by_bytes_and_use_attribute_names() {
    let (_node, client) = node_with_table().await;
    must_put(
        &client,
        "tbl",
        item([("pk", s("a")), ("status", s("open"))]),
    )
    .await;
    let put_if = |cond: &'static str, val: &'static str| {
        client
            .put_item()
            .table_name("tbl")
            .item("pk", s("a"))
            .item("status", s("open"))
            .condition_expression(cond)
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":v", s(val))
            .send()
    };
    put_if("#s = :v", "open").await.unwrap();
    assert_code(put_if("#s = :v", "closed").await, CCF);
    put_if("#s > :v", "closed").await.unwrap();
    assert_code(put_if("#s < :v", "Zebra").await, CCF); // 'o' (0x6f) > 'Z' (0x5a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn condition_on_missing_attribute_or_wrong_type_is_false() {
    let (_node, client) = node_with_table().await;
    must_put(&client, "tbl", item([("pk", s("a")), ("v", s("10"))])).await;
    let put_if = |cond: &'static str| {
        client
            .put_item()
            .table_name("tbl")
            .item("pk", s("a"))
            .item("v", s("10"))
            .condition_expression(cond)
            .expression_attribute_values(":n", n("10"))
            .send()
    };
    assert_code(put_if("absent_attr = :n").await, CCF);
    // A string is never equal to a number.
    assert_code(put_if("v = :n").await, CCF);
    put_if("v <> :n").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_combine_with_and_or_not() {
    let (_node, client) = node_with_table().await;
    must_put(&client, "tbl", item([("pk", s("a")), ("x", n("1"))])).await;
    let put_if = |cond: &'static str| {
        client
            .put_item()
            .table_name("tbl")
            .item("pk", s("a"))
            .item("x", n("1"))
            .condition_expression(cond)
            .expression_attribute_values(":one", n("1"))
            .send()
    };
    put_if("attribute_exists(x) AND x = :one").await.unwrap();
    put_if("attribute_exists(nope) OR x = :one").await.unwrap();
    assert_code(put_if("NOT x = :one").await, CCF);
    put_if("NOT (attribute_exists(nope) AND x = :one)")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_condition_can_return_the_existing_item() {
    let (_node, client) = node_with_table().await;
    let existing = item([("pk", s("a")), ("v", n("7"))]);
    must_put(&client, "tbl", existing.clone()).await;
    let err = client
        .put_item()
        .table_name("tbl")
        .item("pk", s("a"))
        .condition_expression("attribute_not_exists(pk)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    match err {
        PutItemError::ConditionalCheckFailedException(e) => assert_same_item(e.item(), &existing),
        other => panic!("expected ConditionalCheckFailedException, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_expression_returns_only_named_attributes() {
    let (_node, client) = node_with_table().await;
    must_put(
        &client,
        "tbl",
        item([
            ("pk", s("a")),
            ("x", n("1")),
            ("y", s("two")),
            ("z", boolean(true)),
        ]),
    )
    .await;
    let out = client
        .get_item()
        .table_name("tbl")
        .key("pk", s("a"))
        .projection_expression("x, #z")
        .expression_attribute_names("#z", "z")
        .send()
        .await
        .unwrap();
    assert_same_item(
        out.item.as_ref(),
        &item([("x", n("1")), ("z", boolean(true))]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_expression_selects_nested_paths() {
    let (_node, client) = node_with_table().await;
    must_put(
        &client,
        "tbl",
        item([
            ("pk", s("a")),
            ("m", map([("in", s("yes")), ("out", s("no"))])),
            ("l", list([s("zero"), s("one"), s("two")])),
        ]),
    )
    .await;
    let out = client
        .get_item()
        .table_name("tbl")
        .key("pk", s("a"))
        .projection_expression("m.#in, l[1]")
        .expression_attribute_names("#in", "in")
        .send()
        .await
        .unwrap();
    assert_same_item(
        out.item.as_ref(),
        &item([("m", map([("in", s("yes"))])), ("l", list([s("one")]))]),
    );
}

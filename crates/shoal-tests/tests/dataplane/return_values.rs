//! ReturnValues on UpdateItem (including nested updates), PutItem and DeleteItem, and
//! ReturnValuesOnConditionCheckFailure handing back the item with a failed condition.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use shoal_tests::*;

use crate::support::*;

fn original() -> Item {
    item([
        ("pk", s("k")),
        ("info", map([("a", n("1")), ("b", n("2"))])),
        ("l", list([s("x"), s("y"), s("z")])),
        ("cnt", n("5")),
        ("gone", s("bye")),
        ("untouched", s("same")),
    ])
}

/// Resets item `k` to [`original`] and applies the nested update, returning `Attributes`.
async fn update_returning(client: &Client, rv: ReturnValue) -> Option<Item> {
    must_put(client, "retv", original()).await;
    client
        .update_item()
        .table_name("retv")
        .key("pk", s("k"))
        .update_expression("SET info.a = :new, cnt = cnt + :one, l[1] = :y, fresh = :f REMOVE gone")
        .expression_attribute_values(":new", n("10"))
        .expression_attribute_values(":one", n("1"))
        .expression_attribute_values(":y", s("Y"))
        .expression_attribute_values(":f", boolean(true))
        .return_values(rv)
        .send()
        .await
        .unwrap()
        .attributes
}

async fn node() -> (TestNode, Client) {
    node_with_table("retv", None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_return_values_none_returns_no_attributes() {
    let (_node, client) = node().await;
    assert_eq!(update_returning(&client, ReturnValue::None).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_return_values_all_old_returns_the_whole_item_before() {
    let (_node, client) = node().await;
    let got = update_returning(&client, ReturnValue::AllOld).await;
    assert_same_item(got.as_ref(), &original());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_return_values_all_new_returns_the_whole_item_after() {
    let (_node, client) = node().await;
    let got = update_returning(&client, ReturnValue::AllNew).await;
    assert_same_item(
        got.as_ref(),
        &item([
            ("pk", s("k")),
            ("info", map([("a", n("10")), ("b", n("2"))])),
            ("l", list([s("x"), s("Y"), s("z")])),
            ("cnt", n("6")),
            ("fresh", boolean(true)),
            ("untouched", s("same")),
        ]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_return_values_updated_old_returns_only_the_old_values_of_updated_paths() {
    let (_node, client) = node().await;
    let got = update_returning(&client, ReturnValue::UpdatedOld).await;
    // `fresh` did not exist before, so it has no old value; `gone` was removed.
    assert_same_item(
        got.as_ref(),
        &item([
            ("info", map([("a", n("1"))])),
            ("l", list([s("y")])),
            ("cnt", n("5")),
            ("gone", s("bye")),
        ]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_return_values_updated_new_returns_only_the_new_values_of_updated_paths() {
    let (_node, client) = node().await;
    let got = update_returning(&client, ReturnValue::UpdatedNew).await;
    assert_same_item(
        got.as_ref(),
        &item([
            ("info", map([("a", n("10"))])),
            ("l", list([s("Y")])),
            ("cnt", n("6")),
            ("fresh", boolean(true)),
        ]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_that_creates_the_item_returns_nothing_old_and_everything_new() {
    let (_node, client) = node().await;
    let run = |rv: ReturnValue, pk: &'static str| {
        client
            .update_item()
            .table_name("retv")
            .key("pk", s(pk))
            .update_expression("SET v = :v")
            .expression_attribute_values(":v", n("1"))
            .return_values(rv)
            .send()
    };
    assert_eq!(
        run(ReturnValue::AllOld, "n1").await.unwrap().attributes,
        None
    );
    assert_eq!(
        run(ReturnValue::UpdatedOld, "n2").await.unwrap().attributes,
        None
    );
    assert_same_item(
        run(ReturnValue::AllNew, "n3")
            .await
            .unwrap()
            .attributes
            .as_ref(),
        &item([("pk", s("n3")), ("v", n("1"))]),
    );
    assert_same_item(
        run(ReturnValue::UpdatedNew, "n4")
            .await
            .unwrap()
            .attributes
            .as_ref(),
        &item([("v", n("1"))]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updated_new_after_add_and_delete_on_sets() {
    let (_node, client) = node().await;
    must_put(
        &client,
        "retv",
        item([("pk", s("k")), ("tags", ss(["a", "b"])), ("n", n("1"))]),
    )
    .await;
    let out = client
        .update_item()
        .table_name("retv")
        .key("pk", s("k"))
        .update_expression("ADD n :two DELETE tags :a")
        .expression_attribute_values(":two", n("2"))
        .expression_attribute_values(":a", ss(["a"]))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .unwrap();
    assert_same_item(
        out.attributes.as_ref(),
        &item([("n", n("3")), ("tags", ss(["b"]))]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_update_condition_returns_the_item_with_all_old() {
    let (_node, client) = node().await;
    must_put(&client, "retv", original()).await;
    let err = client
        .update_item()
        .table_name("retv")
        .key("pk", s("k"))
        .update_expression("SET cnt = :v")
        .condition_expression("cnt > :v")
        .expression_attribute_values(":v", n("100"))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    match err {
        UpdateItemError::ConditionalCheckFailedException(e) => {
            assert_eq!(e.message(), Some("The conditional request failed"));
            assert_same_item(e.item(), &original());
        }
        other => panic!("expected ConditionalCheckFailedException, got {other:?}"),
    }
    assert_same_item(
        must_get(&client, "retv", key_s("k")).await.as_ref(),
        &original(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_condition_without_all_old_returns_no_item() {
    let (_node, client) = node().await;
    must_put(&client, "retv", original()).await;
    for rv in [None, Some(ReturnValuesOnConditionCheckFailure::None)] {
        let err = client
            .update_item()
            .table_name("retv")
            .key("pk", s("k"))
            .update_expression("SET cnt = :v")
            .condition_expression("attribute_not_exists(pk)")
            .expression_attribute_values(":v", n("1"))
            .set_return_values_on_condition_check_failure(rv)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        match err {
            UpdateItemError::ConditionalCheckFailedException(e) => assert_eq!(e.item(), None),
            other => panic!("expected ConditionalCheckFailedException, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_condition_on_a_missing_item_returns_no_item_even_with_all_old() {
    let (_node, client) = node().await;
    let err = client
        .update_item()
        .table_name("retv")
        .key("pk", s("ghost"))
        .update_expression("SET v = :v")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":v", n("1"))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    match err {
        UpdateItemError::ConditionalCheckFailedException(e) => assert_eq!(e.item(), None),
        other => panic!("expected ConditionalCheckFailedException, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_put_and_delete_conditions_return_the_item_with_all_old() {
    let (_node, client) = node().await;
    must_put(&client, "retv", original()).await;
    let err = client
        .put_item()
        .table_name("retv")
        .item("pk", s("k"))
        .condition_expression("attribute_not_exists(pk)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    match err {
        PutItemError::ConditionalCheckFailedException(e) => assert_same_item(e.item(), &original()),
        other => panic!("expected ConditionalCheckFailedException, got {other:?}"),
    }
    let err = client
        .delete_item()
        .table_name("retv")
        .key("pk", s("k"))
        .condition_expression("cnt = :v")
        .expression_attribute_values(":v", n("6"))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    match err {
        DeleteItemError::ConditionalCheckFailedException(e) => {
            assert_same_item(e.item(), &original())
        }
        other => panic!("expected ConditionalCheckFailedException, got {other:?}"),
    }
    assert_same_item(
        must_get(&client, "retv", key_s("k")).await.as_ref(),
        &original(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_return_values_all_old_after_a_passing_condition() {
    let (_node, client) = node().await;
    must_put(&client, "retv", original()).await;
    let out = client
        .delete_item()
        .table_name("retv")
        .key("pk", s("k"))
        .condition_expression("cnt = :v")
        .expression_attribute_values(":v", n("5"))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_same_item(out.attributes.as_ref(), &original());
    assert_eq!(must_get(&client, "retv", key_s("k")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_return_values_for_delete_and_put_are_rejected() {
    let (_node, client) = node().await;
    let r = client
        .delete_item()
        .table_name("retv")
        .key("pk", s("k"))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await;
    assert_validation(r, "Return values set to invalid value");
    let r = client
        .put_item()
        .table_name("retv")
        .item("pk", s("k"))
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    assert_validation(r, "Return values set to invalid value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updated_old_and_new_after_list_append_return_the_whole_list() {
    let (_node, client) = node().await;
    let run = |rv: ReturnValue| {
        let client = client.clone();
        async move {
            must_put(
                &client,
                "retv",
                item([("pk", s("k")), ("l", list([n("1")]))]),
            )
            .await;
            client
                .update_item()
                .table_name("retv")
                .key("pk", s("k"))
                .update_expression("SET l = list_append(l, :more)")
                .expression_attribute_values(":more", list([n("2")]))
                .return_values(rv)
                .send()
                .await
                .unwrap()
                .attributes
        }
    };
    assert_same_item(
        run(ReturnValue::UpdatedOld).await.as_ref(),
        &item([("l", list([n("1")]))]),
    );
    assert_same_item(
        run(ReturnValue::UpdatedNew).await.as_ref(),
        &item([("l", list([n("1"), n("2")]))]),
    );
}

/// Regression: an UpdateItem without update actions on a missing item created it (with only
/// its key) and answered ALL_NEW with that key. DynamoDB creates nothing and returns no
/// `Attributes`; the same for updates that only remove (REMOVE, AttributeUpdates DELETE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_without_actions_on_missing_item_creates_nothing() {
    let (_node, client) = node().await;
    let out = client
        .update_item()
        .table_name("retv")
        .key("pk", s("none"))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap();
    assert_eq!(out.attributes, None);
    assert_eq!(
        must_get(&client, "retv", item([("pk", s("none"))])).await,
        None
    );

    let out = client
        .update_item()
        .table_name("retv")
        .key("pk", s("removed"))
        .update_expression("REMOVE a, b.c")
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap();
    assert_eq!(out.attributes, None);
    assert_eq!(
        must_get(&client, "retv", item([("pk", s("removed"))])).await,
        None
    );

    let out = client
        .update_item()
        .table_name("retv")
        .key("pk", s("legacy"))
        .attribute_updates(
            "tags",
            aws_sdk_dynamodb::types::AttributeValueUpdate::builder()
                .action(aws_sdk_dynamodb::types::AttributeAction::Delete)
                .value(ss(["x"]))
                .build(),
        )
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap();
    assert_eq!(out.attributes, None);
    assert_eq!(
        must_get(&client, "retv", item([("pk", s("legacy"))])).await,
        None
    );

    // SET still creates the item, and an existing item is still returned.
    let out = client
        .update_item()
        .table_name("retv")
        .key("pk", s("made"))
        .update_expression("SET a = :a")
        .expression_attribute_values(":a", n("1"))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap();
    assert_same_item(
        out.attributes.as_ref(),
        &item([("pk", s("made")), ("a", n("1"))]),
    );
    let out = client
        .update_item()
        .table_name("retv")
        .key("pk", s("made"))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap();
    assert_same_item(
        out.attributes.as_ref(),
        &item([("pk", s("made")), ("a", n("1"))]),
    );
}

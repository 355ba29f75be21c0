//! TransactWriteItems and TransactGetItems: the request's validation (every error DynamoDB
//! raises before anything is read or written), authorization of each action, and the
//! transactions themselves: all-or-nothing commits across tables, cancellation reasons in action
//! order, idempotent retries by `ClientRequestToken`, consistent reads, consumed capacity.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Get, Put, ReturnConsumedCapacity,
    ReturnValuesOnConditionCheckFailure, TransactGetItem, TransactWriteItem, Update,
};
use serde_json::json;
use shoal_tests::*;

const DUPLICATE: &str = "Transaction request cannot include multiple operations on one item";

async fn node_with_tables() -> (TestNode, Client) {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "tx_a").await;
    must_create_hash_range_table(&client, "tx_b").await;
    (node, client)
}

fn key(pk: &str) -> Item {
    item([("pk", s(pk))])
}

fn put(table: &str, it: Item) -> TransactWriteItem {
    TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(it))
                .build()
                .unwrap(),
        )
        .build()
}

fn update(
    table: &str,
    k: Item,
    expression: &str,
    values: &[(&str, AttributeValue)],
) -> TransactWriteItem {
    let mut u = Update::builder()
        .table_name(table)
        .set_key(Some(k))
        .update_expression(expression);
    for (name, v) in values {
        u = u.expression_attribute_values(*name, v.clone());
    }
    TransactWriteItem::builder()
        .update(u.build().unwrap())
        .build()
}

fn delete(table: &str, k: Item) -> TransactWriteItem {
    TransactWriteItem::builder()
        .delete(
            Delete::builder()
                .table_name(table)
                .set_key(Some(k))
                .build()
                .unwrap(),
        )
        .build()
}

fn check(table: &str, k: Item, condition: &str, all_old: bool) -> TransactWriteItem {
    let mut c = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(k))
        .condition_expression(condition);
    if all_old {
        c = c.return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    }
    TransactWriteItem::builder()
        .condition_check(c.build().unwrap())
        .build()
}

fn get(table: &str, k: Item) -> TransactGetItem {
    TransactGetItem::builder()
        .get(
            Get::builder()
                .table_name(table)
                .set_key(Some(k))
                .build()
                .unwrap(),
        )
        .build()
}

async fn write(
    client: &Client,
    items: Vec<TransactWriteItem>,
) -> Result<
    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput,
    SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
> {
    client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
}

/// A raw TransactWriteItems or TransactGetItems: (error type, message).
async fn raw(node: &TestNode, op: &str, body: serde_json::Value) -> (String, String) {
    let resp = node.signed_request(op, &body).send(node.addr()).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    (
        resp.error_type().unwrap_or_default(),
        resp.error_message().unwrap_or_default(),
    )
}

// ---- validation: refused before anything is read or written ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_100_actions_or_none_are_refused() {
    let (_node, client) = node_with_tables().await;
    let many: Vec<_> = (0..101)
        .map(|i| put("tx_a", key(&format!("k{i}"))))
        .collect();
    assert_validation(
        write(&client, many).await,
        "Member must have length less than or equal to 100",
    );
    assert_validation(
        write(&client, vec![]).await,
        "Member must have length greater than or equal to 1",
    );
    let gets: Vec<_> = (0..101)
        .map(|i| get("tx_a", key(&format!("k{i}"))))
        .collect();
    assert_validation(
        client
            .transact_get_items()
            .set_transact_items(Some(gets))
            .send()
            .await,
        "Member must have length less than or equal to 100",
    );
    // Nothing of the 101 puts was written.
    assert_eq!(must_get(&client, "tx_a", key("k0")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_transact_items_member_is_required() {
    let (node, _client) = node_with_tables().await;
    for op in ["TransactWriteItems", "TransactGetItems"] {
        let (t, m) = raw(&node, op, json!({})).await;
        assert_eq!(t, "ValidationException");
        assert_eq!(
            m,
            "The parameter 'TransactItems' is required but was not specified."
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_actions_on_one_item_are_refused() {
    let (_node, client) = node_with_tables().await;
    assert_validation(
        write(
            &client,
            vec![
                put("tx_a", item([("pk", s("a")), ("v", n("1"))])),
                check("tx_a", key("a"), "attribute_exists(pk)", false),
            ],
        )
        .await,
        DUPLICATE,
    );
    // Numerically equal sort keys name the same item.
    let r = write(
        &client,
        vec![
            put("tx_b", item([("pk", s("a")), ("sk", n("1"))])),
            delete("tx_b", item([("pk", s("a")), ("sk", n("1.0"))])),
        ],
    )
    .await;
    assert_validation(r, DUPLICATE);
    assert_validation(
        client
            .transact_get_items()
            .transact_items(get("tx_a", key("a")))
            .transact_items(get("tx_a", key("a")))
            .send()
            .await,
        DUPLICATE,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_over_4_mb_is_refused() {
    let (_node, client) = node_with_tables().await;
    let big = "x".repeat(390 * 1024);
    let items: Vec<_> = (0..11)
        .map(|i| {
            put(
                "tx_a",
                item([("pk", s(format!("k{i}"))), ("v", s(big.clone()))]),
            )
        })
        .collect();
    assert_validation(
        write(&client, items).await,
        "Transaction request cannot be larger than 4 MB",
    );
    assert_eq!(must_get(&client, "tx_a", key("k0")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_table_is_resource_not_found() {
    let (_node, client) = node_with_tables().await;
    let e = assert_code(
        write(
            &client,
            vec![put("tx_a", key("a")), delete("no_such_table", key("a"))],
        )
        .await,
        "ResourceNotFoundException",
    );
    assert_eq!(e.message, "Requested resource not found");
    assert_code(
        client
            .transact_get_items()
            .transact_items(get("no_such_table", key("a")))
            .send()
            .await,
        "ResourceNotFoundException",
    );
    assert_eq!(must_get(&client, "tx_a", key("a")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_members_of_an_action_are_named() {
    let (node, _client) = node_with_tables().await;
    let cases = [
        (
            "TransactWriteItems",
            json!({"TransactItems": [{"Delete": {"TableName": "tx_a"}}]}),
            "1 validation error detected: Value null at 'transactItems.1.member.delete.key' failed to satisfy constraint: Member must not be null",
        ),
        (
            "TransactWriteItems",
            json!({"TransactItems": [
                {"Put": {"TableName": "tx_a", "Item": {"pk": {"S": "a"}}}},
                {"Update": {"TableName": "tx_a", "Key": {"pk": {"S": "b"}}}}
            ]}),
            "1 validation error detected: Value null at 'transactItems.2.member.update.updateExpression' failed to satisfy constraint: Member must not be null",
        ),
        (
            "TransactWriteItems",
            json!({"TransactItems": [{"ConditionCheck": {"TableName": "tx_a", "Key": {"pk": {"S": "a"}}}}]}),
            "1 validation error detected: Value null at 'transactItems.1.member.conditionCheck.conditionExpression' failed to satisfy constraint: Member must not be null",
        ),
        (
            "TransactWriteItems",
            json!({"TransactItems": [{"Put": {"Item": {"pk": {"S": "a"}}}}]}),
            "1 validation error detected: Value null at 'transactItems.1.member.put.tableName' failed to satisfy constraint: Member must not be null",
        ),
        (
            "TransactGetItems",
            json!({"TransactItems": [{}]}),
            "1 validation error detected: Value null at 'transactItems.1.member.get' failed to satisfy constraint: Member must not be null",
        ),
        (
            "TransactGetItems",
            json!({"TransactItems": [{"Get": {"TableName": "tx_a"}}]}),
            "1 validation error detected: Value null at 'transactItems.1.member.get.key' failed to satisfy constraint: Member must not be null",
        ),
    ];
    for (op, body, expected) in cases {
        let (t, m) = raw(&node, op, body.clone()).await;
        assert_eq!(t, "ValidationException", "{body}");
        assert_eq!(m, expected, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_must_hold_exactly_one_action() {
    let (node, client) = node_with_tables().await;
    assert_validation(
        write(&client, vec![TransactWriteItem::builder().build()]).await,
        "TransactItems can only contain one of Check, Put, Update or Delete",
    );
    let (t, m) = raw(
        &node,
        "TransactWriteItems",
        json!({"TransactItems": [{
            "Put": {"TableName": "tx_a", "Item": {"pk": {"S": "a"}}},
            "Delete": {"TableName": "tx_a", "Key": {"pk": {"S": "a"}}}
        }]}),
    )
    .await;
    assert_eq!(t, "ValidationException");
    assert_eq!(
        m,
        "TransactItems can only contain one of Check, Put, Update or Delete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_items_and_expressions_are_validated_as_the_single_item_operations_do() {
    let (_node, client) = node_with_tables().await;
    // A key that does not match the schema.
    assert_validation(
        write(&client, vec![delete("tx_b", key("a"))]).await,
        "The provided key element does not match the schema",
    );
    assert_validation(
        client
            .transact_get_items()
            .transact_items(get("tx_a", item([("pk", n("1"))])))
            .send()
            .await,
        "The provided key element does not match the schema",
    );
    // An item without its key.
    assert_validation(
        write(&client, vec![put("tx_a", item([("v", s("x"))]))]).await,
        "One or more parameter values were invalid: Missing the key pk in the item",
    );
    // An item over 400 KB.
    let huge = "x".repeat(401 * 1024);
    assert_validation(
        write(
            &client,
            vec![put("tx_a", item([("pk", s("a")), ("v", s(huge))]))],
        )
        .await,
        "Item size has exceeded the maximum allowed size",
    );
    // An update of a key attribute.
    assert_validation(
        write(
            &client,
            vec![update("tx_a", key("a"), "SET pk = :v", &[(":v", s("b"))])],
        )
        .await,
        "Cannot update attribute pk. This attribute is part of the key",
    );
    // Unused values and undefined names, per action.
    let unused = TransactWriteItem::builder()
        .condition_check(
            ConditionCheck::builder()
                .table_name("tx_a")
                .key("pk", s("a"))
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":unused", s("x"))
                .build()
                .unwrap(),
        )
        .build();
    assert_validation(
        write(&client, vec![put("tx_a", key("b")), unused]).await,
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}",
    );
    let undefined = TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name("tx_a")
                .item("pk", s("a"))
                .condition_expression("attribute_not_exists(#p)")
                .build()
                .unwrap(),
        )
        .build();
    assert_validation(
        write(&client, vec![undefined]).await,
        "An expression attribute name used in the document path is not defined; attribute name: #p",
    );
    assert_validation(
        write(&client, vec![check("tx_a", key("a"), "pk = = 1", false)]).await,
        "Invalid ConditionExpression: Syntax error",
    );
    let projection = TransactGetItem::builder()
        .get(
            Get::builder()
                .table_name("tx_a")
                .key("pk", s("a"))
                .expression_attribute_names("#unused", "v")
                .projection_expression("pk")
                .build()
                .unwrap(),
        )
        .build();
    assert_validation(
        client
            .transact_get_items()
            .transact_items(projection)
            .send()
            .await,
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}",
    );
    // Nothing was written by any of them.
    assert_eq!(must_get(&client, "tx_a", key("a")).await, None);
    assert_eq!(must_get(&client, "tx_a", key("b")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enum_members_and_the_client_request_token_are_checked() {
    let (_node, client) = node_with_tables().await;
    let bad_rv = TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name("tx_a")
                .item("pk", s("a"))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::from("SOME"),
                )
                .build()
                .unwrap(),
        )
        .build();
    assert_validation(
        write(&client, vec![bad_rv]).await,
        "Value 'SOME' at 'transactItems.1.member.put.returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]",
    );
    assert_validation(
        client
            .transact_write_items()
            .transact_items(put("tx_a", key("a")))
            .return_consumed_capacity(ReturnConsumedCapacity::from("ALL"))
            .send()
            .await,
        "Value 'ALL' at 'returnConsumedCapacity' failed to satisfy constraint",
    );
    assert_validation(
        client
            .transact_write_items()
            .transact_items(put("tx_a", key("a")))
            .client_request_token("x".repeat(37))
            .send()
            .await,
        "at 'clientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 36",
    );
    assert_eq!(must_get(&client, "tx_a", key("a")).await, None);
}

/// Each action is authorized as the single-item operation it performs, with
/// `dynamodb:EnclosingOperation` naming the transaction (transaction-apis-iam.md, example 3:
/// transactional writes denied, plain ones allowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_action_is_authorized_with_its_own_action_and_the_enclosing_operation() {
    let (_node, client) = node_with_tables().await;
    let arn = client
        .describe_table()
        .table_name("tx_a")
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .table_arn
        .unwrap();
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Deny", "Principal": "*",
              "Action": ["dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:GetItem"],
              "Resource": "{arn}",
              "Condition": {{"ForAnyValue:StringEquals":
                {{"dynamodb:EnclosingOperation": ["TransactWriteItems", "TransactGetItems"]}}}}}}
        ]}}"#
    );
    client
        .put_resource_policy()
        .resource_arn(&arn)
        .policy(policy)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let e = loop {
        let r = write(
            &client,
            vec![check("tx_a", key("a"), "attribute_exists(pk)", false)],
        )
        .await;
        match r {
            Err(SdkError::ServiceError(e)) if e.err().code() == Some("AccessDeniedException") => {
                break e.err().message().unwrap_or_default().to_string();
            }
            _ => {}
        }
        assert!(Instant::now() < deadline, "the policy is not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(e.contains("dynamodb:ConditionCheckItem"), "{e}");
    assert!(e.contains(&arn), "{e}");
    let e = assert_code(
        write(&client, vec![put("tx_a", key("a"))]).await,
        "AccessDeniedException",
    );
    assert!(e.message.contains("dynamodb:PutItem"), "{}", e.message);
    let e = assert_code(
        client
            .transact_get_items()
            .transact_items(get("tx_a", key("a")))
            .send()
            .await,
        "AccessDeniedException",
    );
    assert!(e.message.contains("dynamodb:GetItem"), "{}", e.message);
    // The same actions outside a transaction are allowed.
    must_put(&client, "tx_a", key("a")).await;
    assert!(must_get(&client, "tx_a", key("a")).await.is_some());
}

// ---- transactions ----

/// A ConditionCheck of `condition` with values `values`.
fn check_with(
    table: &str,
    k: Item,
    condition: &str,
    values: &[(&str, AttributeValue)],
    all_old: bool,
) -> TransactWriteItem {
    let mut c = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(k))
        .condition_expression(condition);
    for (name, v) in values {
        c = c.expression_attribute_values(*name, v.clone());
    }
    if all_old {
        c = c.return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    }
    TransactWriteItem::builder()
        .condition_check(c.build().unwrap())
        .build()
}

/// A `CancellationReason`: (code, message, item).
type Reason = (String, Option<String>, Option<Item>);

/// The `TransactionCanceledException` of a failed TransactWriteItems: its message and reasons.
fn canceled<T: std::fmt::Debug>(
    r: Result<T, SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>>,
) -> (String, Vec<Reason>) {
    match r {
        Err(SdkError::ServiceError(e)) => match e.err() {
            TransactWriteItemsError::TransactionCanceledException(c) => (
                c.message().unwrap_or_default().to_string(),
                c.cancellation_reasons()
                    .iter()
                    .map(|r| {
                        (
                            r.code().unwrap_or_default().to_string(),
                            r.message().map(str::to_string),
                            r.item().cloned(),
                        )
                    })
                    .collect(),
            ),
            other => panic!("expected TransactionCanceledException, got {other:?}"),
        },
        other => panic!("expected TransactionCanceledException, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_table_transaction_commits_every_action() {
    let (_node, client) = node_with_tables().await;
    must_put(&client, "tx_a", item([("pk", s("gone")), ("v", n("1"))])).await;
    must_put(&client, "tx_a", item([("pk", s("checked")), ("v", n("7"))])).await;
    must_put(
        &client,
        "tx_b",
        item([("pk", s("u")), ("sk", n("1")), ("hits", n("10"))]),
    )
    .await;
    write(
        &client,
        vec![
            put("tx_a", item([("pk", s("new")), ("name", s("Ann"))])),
            update(
                "tx_b",
                item([("pk", s("u")), ("sk", n("1"))]),
                "SET tag = :t ADD hits :d",
                &[(":d", n("5")), (":t", s("x"))],
            ),
            delete("tx_a", key("gone")),
            check_with(
                "tx_a",
                key("checked"),
                "v = :seven",
                &[(":seven", n("7"))],
                false,
            ),
        ],
    )
    .await
    .map_err(|e| describe_error(&e))
    .unwrap();
    assert_eq!(
        must_get(&client, "tx_a", key("new")).await,
        Some(item([("pk", s("new")), ("name", s("Ann"))]))
    );
    assert_eq!(must_get(&client, "tx_a", key("gone")).await, None);
    let u = must_get(&client, "tx_b", item([("pk", s("u")), ("sk", n("1"))]))
        .await
        .unwrap();
    assert_eq!(u.get("hits"), Some(&n("15")));
    assert_eq!(u.get("tag"), Some(&s("x")));
    assert_eq!(
        must_get(&client, "tx_a", key("checked")).await,
        Some(item([("pk", s("checked")), ("v", n("7"))]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_condition_cancels_every_action_with_reasons_in_order() {
    let (_node, client) = node_with_tables().await;
    let old = item([("pk", s("c")), ("v", n("1"))]);
    must_put(&client, "tx_a", old.clone()).await;
    must_put(&client, "tx_a", item([("pk", s("d")), ("v", n("1"))])).await;
    let r = write(
        &client,
        vec![
            put("tx_a", key("x")),
            check_with("tx_a", key("c"), "v = :two", &[(":two", n("2"))], true),
            put("tx_b", item([("pk", s("y")), ("sk", n("1"))])),
            // Fails too, without asking for the item.
            check_with("tx_a", key("d"), "v = :two", &[(":two", n("2"))], false),
        ],
    )
    .await;
    let (message, reasons) = canceled(r);
    assert_eq!(
        message,
        "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed, None, ConditionalCheckFailed]"
    );
    assert_eq!(reasons.len(), 4);
    assert_eq!(reasons[0], ("None".to_string(), None, None));
    assert_eq!(reasons[1].0, "ConditionalCheckFailed");
    assert_eq!(
        reasons[1].1.as_deref(),
        Some("The conditional request failed")
    );
    assert_eq!(reasons[1].2.as_ref(), Some(&old));
    assert_eq!(reasons[2].0, "None");
    assert_eq!(reasons[3].0, "ConditionalCheckFailed");
    assert_eq!(reasons[3].2, None);
    // Nothing applied.
    assert_eq!(must_get(&client, "tx_a", key("x")).await, None);
    assert_eq!(
        must_get(&client, "tx_b", item([("pk", s("y")), ("sk", n("1"))])).await,
        None
    );
    // A put's own condition fails the same way.
    let conditional_put = TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name("tx_a")
                .item("pk", s("c"))
                .condition_expression("attribute_not_exists(pk)")
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .unwrap(),
        )
        .build();
    let (_, reasons) = canceled(write(&client, vec![conditional_put]).await);
    assert_eq!(reasons[0].0, "ConditionalCheckFailed");
    assert_eq!(reasons[0].2.as_ref(), Some(&old));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_client_request_token_writes_nothing_again() {
    let (_node, client) = node_with_tables().await;
    must_put(&client, "tx_a", item([("pk", s("counter")), ("n", n("0"))])).await;
    let increment = |token: &str, by: &str| {
        client
            .transact_write_items()
            .transact_items(update(
                "tx_a",
                key("counter"),
                "ADD n :one",
                &[(":one", n(by))],
            ))
            .client_request_token(token)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
    };
    let first = increment("token-1", "1").await.unwrap();
    assert!(!first.consumed_capacity().is_empty());
    // The retry succeeds and consumes no write capacity.
    let again = increment("token-1", "1").await.unwrap();
    assert!(again.consumed_capacity().is_empty());
    let counter = must_get(&client, "tx_a", key("counter")).await.unwrap();
    assert_eq!(counter.get("n"), Some(&n("1")));
    // Another request under the same token.
    let e = assert_code(
        increment("token-1", "2").await,
        "IdempotentParameterMismatchException",
    );
    assert!(!e.message.is_empty());
    // A new token is a new transaction.
    increment("token-2", "1").await.unwrap();
    let counter = must_get(&client, "tx_a", key("counter")).await.unwrap();
    assert_eq!(counter.get("n"), Some(&n("2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transact_get_items_answers_in_request_order_with_projections() {
    let (_node, client) = node_with_tables().await;
    must_put(
        &client,
        "tx_a",
        item([("pk", s("a")), ("v", n("1")), ("w", s("hidden"))]),
    )
    .await;
    must_put(
        &client,
        "tx_b",
        item([("pk", s("b")), ("sk", n("2")), ("v", n("2"))]),
    )
    .await;
    let projected = TransactGetItem::builder()
        .get(
            Get::builder()
                .table_name("tx_a")
                .key("pk", s("a"))
                .projection_expression("#v")
                .expression_attribute_names("#v", "v")
                .build()
                .unwrap(),
        )
        .build();
    let out = client
        .transact_get_items()
        .transact_items(get("tx_b", item([("pk", s("b")), ("sk", n("2"))])))
        .transact_items(get("tx_a", key("missing")))
        .transact_items(projected)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let responses = out.responses();
    assert_eq!(responses.len(), 3);
    assert_eq!(
        responses[0].item(),
        Some(&item([("pk", s("b")), ("sk", n("2")), ("v", n("2"))]))
    );
    assert_eq!(responses[1].item(), None);
    assert_eq!(responses[2].item(), Some(&item([("v", n("1"))])));
    // Twice a consistent read's unit per item, per table in order.
    let capacity: Vec<(String, f64)> = out
        .consumed_capacity()
        .iter()
        .map(|c| {
            (
                c.table_name().unwrap_or_default().to_string(),
                c.capacity_units().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        capacity,
        vec![("tx_b".to_string(), 2.0), ("tx_a".to_string(), 4.0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_capacity_is_twice_the_units_per_table() {
    let (_node, client) = node_with_tables().await;
    let big = "x".repeat(1500);
    let out = client
        .transact_write_items()
        .transact_items(put("tx_a", item([("pk", s("a")), ("v", s(big))])))
        .transact_items(put("tx_a", key("b")))
        .transact_items(put("tx_b", item([("pk", s("c")), ("sk", n("1"))])))
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .unwrap();
    let capacity: Vec<(String, f64, Option<f64>)> = out
        .consumed_capacity()
        .iter()
        .map(|c| {
            (
                c.table_name().unwrap_or_default().to_string(),
                c.capacity_units().unwrap_or_default(),
                c.table().and_then(|t| t.capacity_units()),
            )
        })
        .collect();
    // 2 units for the 1.5 KB item, 1 for the small one, each written twice.
    assert_eq!(
        capacity,
        vec![
            ("tx_a".to_string(), 6.0, Some(6.0)),
            ("tx_b".to_string(), 2.0, Some(2.0))
        ]
    );
    // Not asked for: none.
    let out = write(&client, vec![delete("tx_a", key("b"))])
        .await
        .unwrap();
    assert!(out.consumed_capacity().is_empty());
}

/// Money moves between two items by transactions while read transactions run: every read sees
/// both items as of one moment, so the total never changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transact_get_items_sees_a_consistent_snapshot() {
    let (_node, client) = node_with_tables().await;
    must_put(
        &client,
        "tx_a",
        item([("pk", s("alice")), ("bal", n("100"))]),
    )
    .await;
    must_put(
        &client,
        "tx_b",
        item([("pk", s("bob")), ("sk", n("0")), ("bal", n("0"))]),
    )
    .await;
    let bob = || item([("pk", s("bob")), ("sk", n("0"))]);
    let writer = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut committed = 0;
            for _ in 0..30 {
                let r = client
                    .transact_write_items()
                    .transact_items(update(
                        "tx_a",
                        key("alice"),
                        "SET bal = bal - :one",
                        &[(":one", n("1"))],
                    ))
                    .transact_items(update(
                        "tx_b",
                        item([("pk", s("bob")), ("sk", n("0"))]),
                        "SET bal = bal + :one",
                        &[(":one", n("1"))],
                    ))
                    .send()
                    .await;
                match r {
                    Ok(_) => committed += 1,
                    Err(SdkError::ServiceError(e))
                        if matches!(
                            e.err(),
                            TransactWriteItemsError::TransactionCanceledException(_)
                        ) => {}
                    Err(e) => panic!("transfer: {}", describe_error(&e)),
                }
            }
            committed
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        let r = client
            .transact_get_items()
            .transact_items(get("tx_a", key("alice")))
            .transact_items(get("tx_b", bob()))
            .send()
            .await;
        let out = match r {
            Ok(out) => out,
            // A read that met a running transaction is canceled, never torn.
            Err(SdkError::ServiceError(e))
                if e.err().code() == Some("TransactionCanceledException") =>
            {
                continue;
            }
            Err(e) => panic!("read: {}", describe_error(&e)),
        };
        let bal = |i: usize| -> i64 {
            match out.responses()[i].item().and_then(|it| it.get("bal")) {
                Some(AttributeValue::N(v)) => v.parse().unwrap(),
                other => panic!("balance {other:?}"),
            }
        };
        assert_eq!(bal(0) + bal(1), 100, "a torn read");
        reads += 1;
    }
    let committed = writer.await.unwrap();
    assert!(committed > 0);
    let alice = must_get(&client, "tx_a", key("alice")).await.unwrap();
    assert_eq!(alice.get("bal"), Some(&n((100 - committed).to_string())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_collection_metrics_are_reported_per_table_with_local_indexes() {
    use aws_sdk_dynamodb::types::{
        BillingMode, KeyType, LocalSecondaryIndex, Projection, ProjectionType,
        ReturnItemCollectionMetrics, ScalarAttributeType,
    };
    let (_node, client) = node_with_tables().await;
    client
        .create_table()
        .table_name("tx_l")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .attribute_definitions(attr_def("sk", ScalarAttributeType::N))
        .attribute_definitions(attr_def("date", ScalarAttributeType::S))
        .key_schema(key_elem("pk", KeyType::Hash))
        .key_schema(key_elem("sk", KeyType::Range))
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("by_date")
                .key_schema(key_elem("pk", KeyType::Hash))
                .key_schema(key_elem("date", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    must_wait_active(&client, "tx_l").await;
    let out = client
        .transact_write_items()
        .transact_items(put(
            "tx_l",
            item([("pk", s("a")), ("sk", n("1")), ("date", s("d"))]),
        ))
        .transact_items(put("tx_a", key("a")))
        .return_item_collection_metrics(ReturnItemCollectionMetrics::Size)
        .send()
        .await
        .unwrap();
    let metrics = out
        .item_collection_metrics()
        .expect("ItemCollectionMetrics");
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    let list = &metrics["tx_l"];
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].item_collection_key(), Some(&key("a")));
    assert_eq!(list[0].size_estimate_range_gb(), [0.0, 1.0]);
}

/// `dynamodb:LeadingKeys` of each action is its own item's partition key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leading_keys_of_each_action_are_checked() {
    let (_node, client) = node_with_tables().await;
    let arn = client
        .describe_table()
        .table_name("tx_a")
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .table_arn
        .unwrap();
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Deny", "Principal": "*", "Action": "dynamodb:*", "Resource": "{arn}",
              "Condition": {{"ForAnyValue:StringNotEquals": {{"dynamodb:LeadingKeys": ["alice"]}}}}}}
        ]}}"#
    );
    client
        .put_resource_policy()
        .resource_arn(&arn)
        .policy(policy)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = write(
            &client,
            vec![put("tx_a", key("alice")), delete("tx_a", key("bob"))],
        )
        .await;
        if let Err(SdkError::ServiceError(e)) = &r
            && e.err().code() == Some("AccessDeniedException")
        {
            let m = e.err().message().unwrap_or_default();
            assert!(m.contains("dynamodb:DeleteItem"), "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "the policy is not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Alice's own item: allowed, in a transaction as outside one.
    write(&client, vec![put("tx_a", key("alice"))])
        .await
        .map_err(|e| describe_error(&e))
        .unwrap();
    let out = client
        .transact_get_items()
        .transact_items(get("tx_a", key("alice")))
        .send()
        .await
        .unwrap();
    assert_eq!(out.responses()[0].item(), Some(&key("alice")));
    assert_code(
        client
            .transact_get_items()
            .transact_items(get("tx_a", key("alice")))
            .transact_items(get("tx_a", key("bob")))
            .send()
            .await,
        "AccessDeniedException",
    );
}

/// The error body as DynamoDB writes it: `Message` (capitalized, as the model's shape names it)
/// and `CancellationReasons`, `Message` left out of a `None` reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canceled_transaction_body_carries_message_and_reasons() {
    let (node, client) = node_with_tables().await;
    must_put(&client, "tx_a", item([("pk", s("c")), ("v", n("1"))])).await;
    let resp = node
        .signed_request(
            "TransactWriteItems",
            &json!({"TransactItems": [
                {"Put": {"TableName": "tx_a", "Item": {"pk": {"S": "p"}}}},
                {"ConditionCheck": {"TableName": "tx_a", "Key": {"pk": {"S": "c"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
            ]}),
        )
        .send(node.addr())
        .await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.error_type().as_deref(),
        Some("TransactionCanceledException")
    );
    let body = resp.json();
    assert_eq!(
        body["Message"],
        "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]"
    );
    assert_eq!(
        body["CancellationReasons"],
        json!([
            {"Code": "None"},
            {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed",
             "Item": {"pk": {"S": "c"}, "v": {"N": "1"}}}
        ])
    );
}

/// transaction-apis-iam.md, example 4: `dynamodb:ReturnValues` of a transaction's action is its
/// `ReturnValuesOnConditionCheckFailure`, so a policy can keep items out of cancellation reasons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_values_on_condition_check_failure_is_the_return_values_key() {
    let (_node, client) = node_with_tables().await;
    let arn = client
        .describe_table()
        .table_name("tx_a")
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .table_arn
        .unwrap();
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Deny", "Principal": "*",
              "Action": ["dynamodb:ConditionCheckItem", "dynamodb:PutItem"], "Resource": "{arn}",
              "Condition": {{"StringNotEqualsIfExists": {{"dynamodb:ReturnValues": "NONE"}}}}}}
        ]}}"#
    );
    client
        .put_resource_policy()
        .resource_arn(&arn)
        .policy(policy)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = write(
            &client,
            vec![check_with(
                "tx_a",
                key("a"),
                "attribute_exists(pk)",
                &[],
                true,
            )],
        )
        .await;
        if let Err(SdkError::ServiceError(e)) = &r
            && e.err().code() == Some("AccessDeniedException")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the policy is not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Without ALL_OLD the same check is allowed (and fails on its condition).
    let (_, reasons) = canceled(
        write(
            &client,
            vec![check_with(
                "tx_a",
                key("a"),
                "attribute_exists(pk)",
                &[],
                false,
            )],
        )
        .await,
    );
    assert_eq!(reasons[0].0, "ConditionalCheckFailed");
}

/// Transactions and single writes racing on the same items: every transaction commits whole or
/// is canceled with `TransactionConflict` reasons, every single write succeeds or is refused with
/// `TransactionConflictException`, and the final state is consistent with the commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_writes_are_refused_never_half_applied() {
    let (_node, client) = node_with_tables().await;
    for pk in ["x", "y"] {
        must_put(&client, "tx_a", item([("pk", s(pk)), ("n", n("0"))])).await;
    }
    let transactions = (0..3).map(|_| {
        let client = client.clone();
        tokio::spawn(async move {
            let mut committed = 0;
            for _ in 0..15 {
                let r = client
                    .transact_write_items()
                    .transact_items(update("tx_a", key("x"), "ADD n :one", &[(":one", n("1"))]))
                    .transact_items(update("tx_a", key("y"), "ADD n :one", &[(":one", n("1"))]))
                    .send()
                    .await;
                match r {
                    Ok(_) => committed += 1,
                    Err(e) => {
                        let (message, reasons) = canceled::<()>(Err(e));
                        assert!(message.starts_with("Transaction cancelled"), "{message}");
                        assert!(
                            reasons
                                .iter()
                                .all(|r| r.0 == "None" || r.0 == "TransactionConflict"),
                            "{reasons:?}"
                        );
                        for r in reasons.iter().filter(|r| r.0 == "TransactionConflict") {
                            assert_eq!(r.1.as_deref(), Some("Transaction is ongoing for the item"));
                        }
                    }
                }
            }
            committed
        })
    });
    let transactions: Vec<_> = transactions.collect();
    // Single writes of a third attribute of `x` meanwhile.
    let mut conflicts = 0;
    for i in 0..40 {
        let r = client
            .update_item()
            .table_name("tx_a")
            .key("pk", s("x"))
            .update_expression("SET seen = :i")
            .expression_attribute_values(":i", n(i.to_string()))
            .send()
            .await;
        if let Err(e) = r {
            let e = assert_code::<(), _>(Err(e), "TransactionConflictException");
            assert_eq!(e.message, "Transaction is ongoing for the item");
            conflicts += 1;
        }
    }
    let mut committed = 0;
    for t in transactions {
        committed += t.await.unwrap();
    }
    let x = must_get(&client, "tx_a", key("x")).await.unwrap();
    let y = must_get(&client, "tx_a", key("y")).await.unwrap();
    assert_eq!(
        x.get("n"),
        Some(&n(committed.to_string())),
        "{committed} transactions committed, {conflicts} single writes refused"
    );
    assert_eq!(y.get("n"), Some(&n(committed.to_string())));
}

//! The legacy conditional parameters: Expected (+ ConditionalOperator), AttributeUpdates,
//! KeyConditions, QueryFilter and ScanFilter behave like their expression equivalents, and a
//! request may not mix them with expressions.

use aws_sdk_dynamodb::types::{
    AttributeAction, AttributeValue, AttributeValueUpdate, ComparisonOperator, Condition,
    ConditionalOperator, ExpectedAttributeValue, ScalarAttributeType,
};
use shoal_tests::*;

use crate::support::*;

fn cond(op: ComparisonOperator, values: Vec<AttributeValue>) -> Condition {
    Condition::builder()
        .comparison_operator(op)
        .set_attribute_value_list(Some(values))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_value_guards_a_put() {
    let (_node, client) = node_with_table("leg", None).await;
    must_put(&client, "leg", item([("pk", s("a")), ("v", n("1"))])).await;
    let expect_v = |v: &str| ExpectedAttributeValue::builder().value(n(v)).build();
    let failed = client
        .put_item()
        .table_name("leg")
        .item("pk", s("a"))
        .item("v", n("3"))
        .expected("v", expect_v("2"))
        .send()
        .await;
    assert_code(failed, "ConditionalCheckFailedException");
    client
        .put_item()
        .table_name("leg")
        .item("pk", s("a"))
        .item("v", n("2"))
        .expected("v", expect_v("1"))
        .send()
        .await
        .unwrap();
    let got = must_get(&client, "leg", key_s("a")).await.unwrap();
    assert!(same_value(&got["v"], &n("2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_exists_false_only_creates() {
    let (_node, client) = node_with_table("leg", None).await;
    let put = || {
        client
            .put_item()
            .table_name("leg")
            .item("pk", s("a"))
            .expected(
                "pk",
                ExpectedAttributeValue::builder().exists(false).build(),
            )
            .send()
    };
    put().await.unwrap();
    assert_code(put().await, "ConditionalCheckFailedException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_with_or_operator_passes_when_either_holds() {
    let (_node, client) = node_with_table("leg", None).await;
    must_put(&client, "leg", item([("pk", s("a")), ("v", n("5"))])).await;
    client
        .delete_item()
        .table_name("leg")
        .key("pk", s("a"))
        .expected(
            "v",
            ExpectedAttributeValue::builder()
                .comparison_operator(ComparisonOperator::Gt)
                .attribute_value_list(n("100"))
                .build(),
        )
        .expected(
            "missing",
            ExpectedAttributeValue::builder()
                .comparison_operator(ComparisonOperator::Null)
                .build(),
        )
        .conditional_operator(ConditionalOperator::Or)
        .send()
        .await
        .unwrap();
    assert_eq!(must_get(&client, "leg", key_s("a")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_updates_put_add_and_delete() {
    let (_node, client) = node_with_table("leg", None).await;
    must_put(
        &client,
        "leg",
        item([
            ("pk", s("a")),
            ("n", n("1")),
            ("tags", ss(["x", "y"])),
            ("gone", s("z")),
        ]),
    )
    .await;
    let out = client
        .update_item()
        .table_name("leg")
        .key("pk", s("a"))
        .attribute_updates(
            "n",
            AttributeValueUpdate::builder()
                .action(AttributeAction::Add)
                .value(n("4"))
                .build(),
        )
        .attribute_updates(
            "tags",
            AttributeValueUpdate::builder()
                .action(AttributeAction::Delete)
                .value(ss(["x"]))
                .build(),
        )
        .attribute_updates(
            "new",
            AttributeValueUpdate::builder().value(s("hello")).build(),
        )
        .attribute_updates(
            "gone",
            AttributeValueUpdate::builder()
                .action(AttributeAction::Delete)
                .build(),
        )
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes.unwrap();
    assert!(same_value(&attrs["n"], &n("5")));
    assert!(same_value(&attrs["tags"], &ss(["y"])));
    assert!(same_value(&attrs["new"], &s("hello")));
    assert!(!attrs.contains_key("gone"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_conditions_and_query_filter_select_like_expressions() {
    let (_node, client) = node_with_table("leg", Some(ScalarAttributeType::N)).await;
    let items: Vec<Item> = (1..=10)
        .map(|i| {
            item([
                ("pk", s("p")),
                ("sk", n(i.to_string())),
                ("parity", n((i % 2).to_string())),
            ])
        })
        .collect();
    must_batch_put(&client, "leg", items).await;
    let out = client
        .query()
        .table_name("leg")
        .key_conditions("pk", cond(ComparisonOperator::Eq, vec![s("p")]))
        .key_conditions(
            "sk",
            cond(ComparisonOperator::Between, vec![n("3"), n("8")]),
        )
        .query_filter("parity", cond(ComparisonOperator::Eq, vec![n("0")]))
        .send()
        .await
        .unwrap();
    assert_eq!(out.scanned_count, 6);
    assert_eq!(sort_keys(&out.items.unwrap()), vec![4, 6, 8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_conditions_reject_non_indexable_operators() {
    let (_node, client) = node_with_table("leg", Some(ScalarAttributeType::N)).await;
    let result = client
        .query()
        .table_name("leg")
        .key_conditions("pk", cond(ComparisonOperator::Eq, vec![s("p")]))
        .key_conditions("sk", cond(ComparisonOperator::Ne, vec![n("3")]))
        .send()
        .await;
    assert_validation(
        result,
        "Attempted conditional constraint is not an indexable operation",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_filter_with_or_operator() {
    let (_node, client) = node_with_table("leg", None).await;
    let items: Vec<Item> = (0..10)
        .map(|i| item([("pk", s(format!("k{i}"))), ("i", n(i.to_string()))]))
        .collect();
    must_batch_put(&client, "leg", items).await;
    let out = client
        .scan()
        .table_name("leg")
        .scan_filter("i", cond(ComparisonOperator::Lt, vec![n("2")]))
        .scan_filter("pk", cond(ComparisonOperator::BeginsWith, vec![s("k9")]))
        .conditional_operator(ConditionalOperator::Or)
        .send()
        .await
        .unwrap();
    assert_eq!(out.scanned_count, 10);
    assert_eq!(out.count, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_and_expression_parameters_cannot_be_mixed() {
    let (_node, client) = node_with_table("leg", None).await;
    let result = client
        .put_item()
        .table_name("leg")
        .item("pk", s("a"))
        .expected(
            "pk",
            ExpectedAttributeValue::builder().exists(false).build(),
        )
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    assert_validation(
        result,
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}",
    );
    let result = client
        .update_item()
        .table_name("leg")
        .key("pk", s("a"))
        .attribute_updates("v", AttributeValueUpdate::builder().value(s("x")).build())
        .update_expression("SET w = :w")
        .expression_attribute_values(":w", s("y"))
        .send()
        .await;
    assert_validation(result, "Non-expression parameters: {AttributeUpdates}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_operator_with_wrong_value_count_is_rejected() {
    let (_node, client) = node_with_table("leg", None).await;
    let result = client
        .scan()
        .table_name("leg")
        .scan_filter("i", cond(ComparisonOperator::Between, vec![n("1")]))
        .send()
        .await;
    assert_validation(
        result,
        "Invalid number of argument(s) for the BETWEEN ComparisonOperator",
    );
}

/// Regression: Shoal refused `KeyConditions` with `FilterExpression` / `ProjectionExpression`;
/// DynamoDB accepts them (only `KeyConditionExpression` conflicts with `KeyConditions`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_conditions_mix_with_filter_and_projection_expressions() {
    let (_node, client) = node_with_table("leg", Some(ScalarAttributeType::N)).await;
    for (sk, v) in [(1, "a"), (2, "b"), (3, "a")] {
        must_put(
            &client,
            "leg",
            item([
                ("pk", s("p")),
                ("sk", n(sk.to_string())),
                ("v", s(v)),
                ("w", n("9")),
            ]),
        )
        .await;
    }
    let out = client
        .query()
        .table_name("leg")
        .key_conditions("pk", cond(ComparisonOperator::Eq, vec![s("p")]))
        .filter_expression("#v = :a")
        .projection_expression("sk, #v")
        .expression_attribute_names("#v", "v")
        .expression_attribute_values(":a", s("a"))
        .send()
        .await
        .unwrap();
    let items = out.items();
    assert_eq!(sort_keys(items), [1, 3]);
    assert!(
        items
            .iter()
            .all(|i| !i.contains_key("w") && i["v"] == s("a"))
    );

    // KeyConditions with KeyConditionExpression, and QueryFilter with FilterExpression, stay
    // refused.
    let r = client
        .query()
        .table_name("leg")
        .key_conditions("pk", cond(ComparisonOperator::Eq, vec![s("p")]))
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .send()
        .await;
    assert_validation(
        r,
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {KeyConditions} Expression parameters: {KeyConditionExpression}",
    );
    let r = client
        .query()
        .table_name("leg")
        .key_conditions("pk", cond(ComparisonOperator::Eq, vec![s("p")]))
        .query_filter("v", cond(ComparisonOperator::Eq, vec![s("a")]))
        .filter_expression("attribute_exists(w)")
        .send()
        .await;
    assert_validation(
        r,
        "Non-expression parameters: {QueryFilter} Expression parameters: {FilterExpression}",
    );
}

/// QueryFilter and ScanFilter `EQ`, `NE` and `IN` take every attribute type (lists, maps,
/// booleans, nulls, sets), and `IN` values of mixed types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_eq_ne_in_take_every_type() {
    let (_node, client) = node_with_table("leg", Some(ScalarAttributeType::N)).await;
    let docs = [
        list([s("x"), n("1")]),
        map([("k", s("v"))]),
        boolean(true),
        null(),
        ss(["a", "b"]),
    ];
    for (i, d) in docs.iter().enumerate() {
        must_put(
            &client,
            "leg",
            item([("pk", s("p")), ("sk", n(i.to_string())), ("d", d.clone())]),
        )
        .await;
    }
    for (i, d) in docs.iter().enumerate() {
        let eq = client
            .scan()
            .table_name("leg")
            .scan_filter("d", cond(ComparisonOperator::Eq, vec![d.clone()]))
            .send()
            .await
            .unwrap();
        assert_eq!(sort_keys(eq.items()), [i as i64], "ScanFilter EQ {d:?}");
        let ne = client
            .query()
            .table_name("leg")
            .key_conditions("pk", cond(ComparisonOperator::Eq, vec![s("p")]))
            .query_filter("d", cond(ComparisonOperator::Ne, vec![d.clone()]))
            .send()
            .await
            .unwrap();
        assert_eq!(ne.count(), docs.len() as i32 - 1, "QueryFilter NE {d:?}");
    }
    let r#in = client
        .scan()
        .table_name("leg")
        .scan_filter(
            "d",
            cond(
                ComparisonOperator::In,
                vec![n("7"), boolean(true), map([("k", s("v"))]), s("zz")],
            ),
        )
        .send()
        .await
        .unwrap();
    let mut got = sort_keys(r#in.items());
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
}

/// "QueryFilter does not allow key attributes" (LegacyConditionalParameters.QueryFilter.md):
/// the message names QueryFilter, not Filter Expression.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_filter_on_a_key_attribute_is_refused_naming_query_filter() {
    let (_node, client) = node_with_table("leg", Some(ScalarAttributeType::N)).await;
    let r = client
        .query()
        .table_name("leg")
        .key_conditions("pk", cond(ComparisonOperator::Eq, vec![s("p")]))
        .query_filter("sk", cond(ComparisonOperator::Gt, vec![n("1")]))
        .send()
        .await;
    assert_validation(
        r,
        "QueryFilter can only contain non-primary key attributes: Primary key attribute: sk",
    );
}

/// `ConditionalOperator` without conditions to join (no `Expected`, `QueryFilter` or
/// `ScanFilter`, or an empty one) is refused on every operation that takes it, and nothing is
/// written; with one condition it is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_operator_without_conditions_is_refused() {
    let (_node, client) = node_with_table("leg", Some(ScalarAttributeType::N)).await;
    let refused = |member: &str| {
        format!(
            "One or more parameter values were invalid: ConditionalOperator can only be used when {member} is specified with at least one condition"
        )
    };
    let put = client
        .put_item()
        .table_name("leg")
        .item("pk", s("a"))
        .item("sk", n("1"))
        .conditional_operator(ConditionalOperator::And)
        .send()
        .await;
    assert_validation(put, &refused("Expected"));
    let update = client
        .update_item()
        .table_name("leg")
        .key("pk", s("a"))
        .key("sk", n("1"))
        .attribute_updates("v", AttributeValueUpdate::builder().value(s("x")).build())
        .conditional_operator(ConditionalOperator::Or)
        .send()
        .await;
    assert_validation(update, &refused("Expected"));
    let delete = client
        .delete_item()
        .table_name("leg")
        .key("pk", s("a"))
        .key("sk", n("1"))
        .set_expected(Some(Default::default()))
        .conditional_operator(ConditionalOperator::Or)
        .send()
        .await;
    assert_validation(delete, &refused("Expected"));
    let query = client
        .query()
        .table_name("leg")
        .key_conditions("pk", cond(ComparisonOperator::Eq, vec![s("a")]))
        .conditional_operator(ConditionalOperator::And)
        .send()
        .await;
    assert_validation(query, &refused("QueryFilter"));
    let scan = client
        .scan()
        .table_name("leg")
        .conditional_operator(ConditionalOperator::Or)
        .send()
        .await;
    assert_validation(scan, &refused("ScanFilter"));
    let scan = client.scan().table_name("leg").send().await.unwrap();
    assert_eq!(scan.count, 0, "nothing was written");

    // One condition is enough.
    client
        .put_item()
        .table_name("leg")
        .item("pk", s("a"))
        .item("sk", n("1"))
        .expected(
            "pk",
            ExpectedAttributeValue::builder().exists(false).build(),
        )
        .conditional_operator(ConditionalOperator::And)
        .send()
        .await
        .unwrap();
    let out = client
        .scan()
        .table_name("leg")
        .scan_filter("sk", cond(ComparisonOperator::Eq, vec![n("1")]))
        .conditional_operator(ConditionalOperator::Or)
        .send()
        .await
        .unwrap();
    assert_eq!(out.count, 1);
}

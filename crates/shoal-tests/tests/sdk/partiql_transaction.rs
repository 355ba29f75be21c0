//! ExecuteTransaction: PartiQL statements run as one transaction. Writes (`INSERT`, `UPDATE`,
//! `DELETE`, `EXISTS` and `NOT EXISTS` condition checks) commit all or nothing across tables,
//! with cancellation reasons in statement order and `ClientRequestToken` idempotency; reads
//! (`SELECT` of one item each) answer in statement order. Mixed transactions, statements
//! without the full key, two statements on one item, more than 100 statements and unknown
//! tables are refused before anything is read or written; each statement is authorized as its
//! PartiQL action.
//!
//! The tests also run against a 3-node cluster (`SHOAL_TEST_CLUSTER=3`).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::execute_transaction::{
    ExecuteTransactionError, ExecuteTransactionOutput,
};
use aws_sdk_dynamodb::types::{
    AttributeValue, ParameterizedStatement, ReturnConsumedCapacity,
    ReturnValuesOnConditionCheckFailure,
};
use serde_json::json;
use shoal_tests::*;

const DUPLICATE: &str = "Transaction request cannot include multiple operations on one item";
const MANDATORY_KEY: &str =
    "Where clause does not contain a mandatory equality on all key attributes";

type TxResult = Result<
    ExecuteTransactionOutput,
    SdkError<ExecuteTransactionError, aws_sdk_dynamodb::config::http::HttpResponse>,
>;

/// A node with tables `pq_a` (pk S) and `pq_b` (pk S, sk N).
async fn node_with_tables() -> (TestNode, Client) {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "pq_a").await;
    must_create_hash_range_table(&client, "pq_b").await;
    (node, client)
}

fn key(pk: &str) -> Item {
    item([("pk", s(pk))])
}

fn st(text: &str, params: Vec<AttributeValue>) -> ParameterizedStatement {
    ParameterizedStatement::builder()
        .statement(text)
        .set_parameters((!params.is_empty()).then_some(params))
        .build()
        .unwrap()
}

/// A statement that returns the item when its condition fails.
fn st_all_old(text: &str, params: Vec<AttributeValue>) -> ParameterizedStatement {
    ParameterizedStatement::builder()
        .statement(text)
        .set_parameters((!params.is_empty()).then_some(params))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .unwrap()
}

async fn tx(client: &Client, statements: Vec<ParameterizedStatement>) -> TxResult {
    client
        .execute_transaction()
        .set_transact_statements(Some(statements))
        .send()
        .await
}

async fn must_tx(
    client: &Client,
    statements: Vec<ParameterizedStatement>,
) -> ExecuteTransactionOutput {
    match tx(client, statements).await {
        Ok(out) => out,
        Err(e) => panic!("ExecuteTransaction: {}", describe_error(&e)),
    }
}

/// A `CancellationReason`: (code, message, item).
type Reason = (String, Option<String>, Option<Item>);

/// The `TransactionCanceledException` of a failed ExecuteTransaction: its message and reasons.
fn canceled(r: TxResult) -> (String, Vec<Reason>) {
    match r {
        Err(SdkError::ServiceError(e)) => match e.err() {
            ExecuteTransactionError::TransactionCanceledException(c) => (
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

// ---- writes ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_transaction_commits_every_statement_across_two_tables() {
    let (_node, client) = node_with_tables().await;
    must_put(&client, "pq_a", item([("pk", s("gone")), ("v", n("1"))])).await;
    must_put(&client, "pq_a", item([("pk", s("checked")), ("v", n("7"))])).await;
    must_put(
        &client,
        "pq_b",
        item([("pk", s("u")), ("sk", n("1")), ("hits", n("10"))]),
    )
    .await;
    let out = client
        .execute_transaction()
        .transact_statements(st(
            "INSERT INTO pq_a VALUE {'pk': ?, 'name': ?}",
            vec![s("new"), s("Ann")],
        ))
        .transact_statements(st(
            "UPDATE pq_b SET hits = hits + ? SET tag = 'x' WHERE pk = ? AND sk = 1",
            vec![n("5"), s("u")],
        ))
        .transact_statements(st("DELETE FROM pq_a WHERE pk = 'gone'", vec![]))
        .transact_statements(st(
            "EXISTS(SELECT * FROM pq_a WHERE pk = 'checked' AND v = ?)",
            vec![n("7")],
        ))
        .transact_statements(st(
            r#"NOT EXISTS(SELECT * FROM "pq_b" WHERE pk = 'u' AND sk = 2)"#,
            vec![],
        ))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .map_err(|e| describe_error(&e))
        .unwrap();
    // Writes return no items.
    assert!(out.responses().is_empty(), "{out:?}");
    assert_eq!(
        must_get(&client, "pq_a", key("new")).await,
        Some(item([("pk", s("new")), ("name", s("Ann"))]))
    );
    assert_eq!(must_get(&client, "pq_a", key("gone")).await, None);
    let u = must_get(&client, "pq_b", item([("pk", s("u")), ("sk", n("1"))]))
        .await
        .unwrap();
    assert_eq!(u.get("hits"), Some(&n("15")));
    assert_eq!(u.get("tag"), Some(&s("x")));
    assert_eq!(
        must_get(&client, "pq_a", key("checked")).await,
        Some(item([("pk", s("checked")), ("v", n("7"))]))
    );
    // Every statement twice the units of its write, per table in order of first use.
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
        vec![("pq_a".to_string(), 6.0), ("pq_b".to_string(), 4.0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_exists_or_not_exists_cancels_every_statement_with_reasons_in_order() {
    let (_node, client) = node_with_tables().await;
    let old = item([("pk", s("c")), ("v", n("1"))]);
    must_put(&client, "pq_a", old.clone()).await;
    must_put(&client, "pq_a", item([("pk", s("d")), ("v", n("1"))])).await;
    must_put(&client, "pq_a", item([("pk", s("e")), ("v", n("1"))])).await;
    let r = tx(
        &client,
        vec![
            st("INSERT INTO pq_a VALUE {'pk': 'x'}", vec![]),
            st_all_old(
                "EXISTS(SELECT * FROM pq_a WHERE pk = 'c' AND v = 2)",
                vec![],
            ),
            st("INSERT INTO pq_b VALUE {'pk': 'y', 'sk': 1}", vec![]),
            // Fails too, without asking for the item.
            st("NOT EXISTS(SELECT * FROM pq_a WHERE pk = ?)", vec![s("d")]),
            // An item that does not exist fails EXISTS.
            st_all_old("EXISTS(SELECT * FROM pq_a WHERE pk = 'nobody')", vec![]),
        ],
    )
    .await;
    let (message, reasons) = canceled(r);
    assert_eq!(
        message,
        "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed, None, ConditionalCheckFailed, ConditionalCheckFailed]"
    );
    assert_eq!(reasons[0], ("None".to_string(), None, None));
    assert_eq!(
        reasons[1],
        (
            "ConditionalCheckFailed".to_string(),
            Some("The conditional request failed".to_string()),
            Some(old.clone())
        )
    );
    assert_eq!(reasons[2].0, "None");
    assert_eq!(reasons[3].0, "ConditionalCheckFailed");
    assert_eq!(reasons[3].2, None);
    assert_eq!(reasons[4].0, "ConditionalCheckFailed");
    assert_eq!(reasons[4].2, None);
    // Nothing applied.
    assert_eq!(must_get(&client, "pq_a", key("x")).await, None);
    assert_eq!(
        must_get(&client, "pq_b", item([("pk", s("y")), ("sk", n("1"))])).await,
        None
    );

    // An INSERT of an existing key is DuplicateItem; an UPDATE of a missing item, or one whose
    // condition fails, is ConditionalCheckFailed (with the item when asked); a DELETE of a
    // missing item is no failure.
    let r = tx(
        &client,
        vec![
            st("INSERT INTO pq_a VALUE {'pk': 'c', 'v': 5}", vec![]),
            st("UPDATE pq_a SET v = 3 WHERE pk = 'missing'", vec![]),
            st_all_old("UPDATE pq_a SET v = 3 WHERE pk = 'd' AND v = 9", vec![]),
            st("DELETE FROM pq_a WHERE pk = 'missing2'", vec![]),
        ],
    )
    .await;
    let (message, reasons) = canceled(r);
    assert!(
        message.ends_with("[DuplicateItem, ConditionalCheckFailed, ConditionalCheckFailed, None]"),
        "{message}"
    );
    assert_eq!(
        reasons[0].1.as_deref(),
        Some("Duplicate primary key exists in table")
    );
    assert_eq!(reasons[1].2, None);
    assert_eq!(reasons[2].2, Some(item([("pk", s("d")), ("v", n("1"))])));
    assert_eq!(must_get(&client, "pq_a", key("c")).await, Some(old));

    // Conditions that hold commit.
    must_tx(
        &client,
        vec![
            st(
                "EXISTS(SELECT * FROM pq_a WHERE pk = 'c' AND v = 1)",
                vec![],
            ),
            st("NOT EXISTS(SELECT * FROM pq_a WHERE pk = 'nobody')", vec![]),
            st(
                "NOT EXISTS(SELECT * FROM pq_a WHERE pk = 'd' AND v = 2)",
                vec![],
            ),
            st("UPDATE pq_a SET v = 2 WHERE pk = 'e' AND v = 1", vec![]),
        ],
    )
    .await;
    assert_eq!(
        must_get(&client, "pq_a", key("e")).await,
        Some(item([("pk", s("e")), ("v", n("2"))]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_client_request_token_writes_once() {
    let (_node, client) = node_with_tables().await;
    must_put(&client, "pq_a", item([("pk", s("counter")), ("n", n("0"))])).await;
    let increment = |token: &str, by: &str| {
        client
            .execute_transaction()
            .transact_statements(st(
                "UPDATE pq_a SET n = n + ? WHERE pk = 'counter'",
                vec![n(by)],
            ))
            .client_request_token(token)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
    };
    let first = increment("pq-token-1", "1").await.unwrap();
    assert!(!first.consumed_capacity().is_empty());
    // The retry succeeds and writes nothing again.
    let again = increment("pq-token-1", "1").await.unwrap();
    assert!(again.consumed_capacity().is_empty());
    let counter = must_get(&client, "pq_a", key("counter")).await.unwrap();
    assert_eq!(counter.get("n"), Some(&n("1")));
    // Another request under the same token.
    let e = assert_code(
        increment("pq-token-1", "2").await,
        "IdempotentParameterMismatchException",
    );
    assert_eq!(
        e.message,
        "DynamoDB rejected the request because you retried a request with a different payload but with an idempotent token that was already used."
    );
    // A new token is a new transaction.
    increment("pq-token-2", "1").await.unwrap();
    let counter = must_get(&client, "pq_a", key("counter")).await.unwrap();
    assert_eq!(counter.get("n"), Some(&n("2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_statements_commit_together() {
    let (_node, client) = node_with_tables().await;
    let inserts: Vec<_> = (0..100)
        .map(|i| {
            st(
                "INSERT INTO pq_b VALUE {'pk': 'p', 'sk': ?}",
                vec![n(i.to_string())],
            )
        })
        .collect();
    must_tx(&client, inserts).await;
    let out = client
        .query()
        .table_name("pq_b")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(out.count(), 100);
}

// ---- reads ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_transaction_returns_items_in_statement_order() {
    let (_node, client) = node_with_tables().await;
    must_put(
        &client,
        "pq_a",
        item([("pk", s("a")), ("name", s("Ann")), ("age", n("40"))]),
    )
    .await;
    must_put(&client, "pq_a", item([("pk", s("a2")), ("name", s("Bo"))])).await;
    must_put(
        &client,
        "pq_b",
        item([("pk", s("b")), ("sk", n("2")), ("v", s("x"))]),
    )
    .await;
    let out = client
        .execute_transaction()
        .transact_statements(st(
            "SELECT * FROM pq_b WHERE pk = ? AND sk = ?",
            vec![s("b"), n("2")],
        ))
        // The item exists; the projected attribute does not.
        .transact_statements(st("SELECT nothing_here FROM pq_a WHERE pk = 'a'", vec![]))
        // No such item.
        .transact_statements(st("SELECT * FROM pq_a WHERE pk = 'nobody'", vec![]))
        .transact_statements(st("SELECT name FROM \"pq_a\" WHERE \"pk\" = 'a2'", vec![]))
        // A condition beyond the key that does not hold: no item.
        .transact_statements(st(
            "SELECT * FROM pq_b WHERE pk = 'b' AND sk = 3 AND v = 'y'",
            vec![],
        ))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .map_err(|e| describe_error(&e))
        .unwrap();
    let items: Vec<Option<Item>> = out.responses().iter().map(|r| r.item().cloned()).collect();
    assert_eq!(
        items,
        vec![
            Some(item([("pk", s("b")), ("sk", n("2")), ("v", s("x"))])),
            Some(Item::new()),
            None,
            Some(item([("name", s("Bo"))])),
            None,
        ]
    );
    // Twice a consistent read's units per item, per table in order of first use.
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
        vec![("pq_b".to_string(), 4.0), ("pq_a".to_string(), 6.0)]
    );
}

// ---- refused before anything is read or written ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixing_reads_and_writes_is_refused() {
    let (_node, client) = node_with_tables().await;
    must_put(&client, "pq_a", key("a")).await;
    for statements in [
        vec![
            st("SELECT * FROM pq_a WHERE pk = 'a'", vec![]),
            st("INSERT INTO pq_a VALUE {'pk': 'b'}", vec![]),
        ],
        vec![
            st("EXISTS(SELECT * FROM pq_a WHERE pk = 'a')", vec![]),
            st("SELECT * FROM pq_b WHERE pk = 'a' AND sk = 1", vec![]),
        ],
    ] {
        assert_validation(
            tx(&client, statements).await,
            "A transaction must contain either only read (SELECT) statements or only write",
        );
    }
    assert_eq!(must_get(&client, "pq_a", key("b")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_without_the_full_key_are_refused() {
    let (_node, client) = node_with_tables().await;
    let cases = [
        "UPDATE pq_b SET v = 1 WHERE pk = 'a'",
        "DELETE FROM pq_b WHERE sk = 1",
        "EXISTS(SELECT * FROM pq_b WHERE pk = 'a')",
        "NOT EXISTS(SELECT * FROM pq_b WHERE pk = 'a' OR sk = 1)",
        "EXISTS(SELECT * FROM pq_a)",
    ];
    for text in cases {
        // Beside a valid write, which is not applied.
        assert_validation(
            tx(
                &client,
                vec![
                    st("INSERT INTO pq_a VALUE {'pk': 'ok'}", vec![]),
                    st(text, vec![]),
                ],
            )
            .await,
            MANDATORY_KEY,
        );
    }
    for text in [
        "SELECT * FROM pq_b WHERE pk = 'a'",
        "SELECT * FROM pq_b WHERE pk = 'a' AND sk > 1",
        "SELECT * FROM pq_a",
    ] {
        assert_validation(tx(&client, vec![st(text, vec![])]).await, MANDATORY_KEY);
    }
    // An INSERT without its key is refused as ExecuteStatement refuses it.
    assert_validation(
        tx(
            &client,
            vec![st("INSERT INTO pq_b VALUE {'pk': 'a', 'v': 1}", vec![])],
        )
        .await,
        "One or more parameter values were invalid",
    );
    assert_eq!(must_get(&client, "pq_a", key("ok")).await, None);
    // A key of the wrong type.
    assert_validation(
        tx(&client, vec![st("SELECT * FROM pq_a WHERE pk = 1", vec![])]).await,
        "The provided key element does not match the schema",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_statements_on_one_item_are_refused() {
    let (_node, client) = node_with_tables().await;
    assert_validation(
        tx(
            &client,
            vec![
                st("INSERT INTO pq_a VALUE {'pk': 'a', 'v': 1}", vec![]),
                st("NOT EXISTS(SELECT * FROM pq_a WHERE pk = ?)", vec![s("a")]),
            ],
        )
        .await,
        DUPLICATE,
    );
    // Numerically equal sort keys name the same item.
    assert_validation(
        tx(
            &client,
            vec![
                st("INSERT INTO pq_b VALUE {'pk': 'a', 'sk': 1}", vec![]),
                st("DELETE FROM pq_b WHERE pk = 'a' AND sk = 1.0", vec![]),
            ],
        )
        .await,
        DUPLICATE,
    );
    assert_validation(
        tx(
            &client,
            vec![
                st("SELECT * FROM pq_a WHERE pk = 'a'", vec![]),
                st("SELECT v FROM pq_a WHERE pk = 'a'", vec![]),
            ],
        )
        .await,
        DUPLICATE,
    );
    assert_eq!(must_get(&client, "pq_a", key("a")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_100_statements_or_none_are_refused() {
    let (node, client) = node_with_tables().await;
    let many: Vec<_> = (0..101)
        .map(|i| st("INSERT INTO pq_a VALUE {'pk': ?}", vec![s(format!("k{i}"))]))
        .collect();
    assert_validation(
        tx(&client, many).await,
        "Value '[...]' at 'transactStatements' failed to satisfy constraint: Member must have length less than or equal to 100",
    );
    assert_eq!(must_get(&client, "pq_a", key("k0")).await, None);
    assert_validation(
        tx(&client, vec![]).await,
        "Member must have length greater than or equal to 1",
    );
    let resp = node
        .signed_request("ExecuteTransaction", &json!({}))
        .send(node.addr())
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(resp.error_type().unwrap_or_default(), "ValidationException");
    assert_eq!(
        resp.error_message().unwrap_or_default(),
        "The parameter 'TransactStatements' is required but was not specified."
    );
    // Members of a statement are checked as the model says.
    let resp = node
        .signed_request(
            "ExecuteTransaction",
            &json!({"TransactStatements": [
                {"Statement": "SELECT * FROM pq_a WHERE pk = 'a'"},
                {"Parameters": []}
            ], "ClientRequestToken": ""}),
        )
        .send(node.addr())
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    let message = resp.error_message().unwrap_or_default();
    assert!(
        message.starts_with("3 validation errors detected:"),
        "{message}"
    );
    for fragment in [
        "'clientRequestToken'",
        "Value null at 'transactStatements.2.member.statement' failed to satisfy constraint: Member must not be null",
        "Value '[]' at 'transactStatements.2.member.parameters'",
    ] {
        assert!(message.contains(fragment), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tables_statement_errors_and_returning_are_refused() {
    let (_node, client) = node_with_tables().await;
    let e = assert_code(
        tx(
            &client,
            vec![
                st("INSERT INTO pq_a VALUE {'pk': 'a'}", vec![]),
                st("DELETE FROM no_such_table WHERE pk = 'a'", vec![]),
            ],
        )
        .await,
        "ResourceNotFoundException",
    );
    assert_eq!(e.message, "Requested resource not found");
    assert_code(
        tx(
            &client,
            vec![st("SELECT * FROM no_such_table WHERE pk = 'a'", vec![])],
        )
        .await,
        "ResourceNotFoundException",
    );
    assert_eq!(must_get(&client, "pq_a", key("a")).await, None);
    // A statement that does not parse, or whose parameters do not match.
    assert_validation(
        tx(&client, vec![st("INSERT INTO pq_a", vec![])]).await,
        "Statement wasn't well formed, can't be processed",
    );
    assert_validation(
        tx(
            &client,
            vec![st("INSERT INTO pq_a VALUE {'pk': ?}", vec![])],
        )
        .await,
        "Number of parameters in request and statement don't match.",
    );
    // Writes in a transaction return nothing.
    assert_validation(
        tx(
            &client,
            vec![st(
                "UPDATE pq_a SET v = 1 WHERE pk = 'a' RETURNING ALL NEW *",
                vec![],
            )],
        )
        .await,
        "RETURNING is not supported in ExecuteTransaction",
    );
    // A SELECT of an index is not a read of one item.
    assert_validation(
        tx(
            &client,
            vec![st(r#"SELECT * FROM "pq_a"."byV" WHERE pk = 'a'"#, vec![])],
        )
        .await,
        "must read a table by its full primary key, not an index",
    );
}

// ---- authorization ----

/// A resource-based policy that denies the PartiQL actions of ExecuteTransaction outside
/// partition `alice`, and `dynamodb:PartiQLDelete` in any transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_statement_is_authorized_as_its_partiql_action() {
    let (_node, client) = node_with_tables().await;
    must_put(&client, "pq_a", key("alice")).await;
    must_put(&client, "pq_a", key("bob")).await;
    let arn = client
        .describe_table()
        .table_name("pq_a")
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .table_arn
        .unwrap();
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Sid": "OnlyAlice", "Effect": "Deny", "Principal": "*",
              "Action": ["dynamodb:PartiQLSelect", "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate"],
              "Resource": "{arn}",
              "Condition": {{"ForAnyValue:StringNotEquals": {{"dynamodb:LeadingKeys": ["alice"]}}}}}},
            {{"Sid": "NoTransactionalDeletes", "Effect": "Deny", "Principal": "*",
              "Action": "dynamodb:PartiQLDelete", "Resource": "{arn}",
              "Condition": {{"StringEquals": {{"dynamodb:EnclosingOperation": "ExecuteTransaction"}}}}}}
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
        let r = tx(
            &client,
            vec![st("SELECT * FROM pq_a WHERE pk = 'bob'", vec![])],
        )
        .await;
        if let Err(SdkError::ServiceError(e)) = &r
            && e.err().code() == Some("AccessDeniedException")
        {
            let m = e.err().message().unwrap_or_default();
            assert!(m.contains("dynamodb:PartiQLSelect"), "{m}");
            assert!(m.contains(&arn), "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "the policy is not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its own partition.
    let out = must_tx(
        &client,
        vec![st("SELECT * FROM pq_a WHERE pk = 'alice'", vec![])],
    )
    .await;
    assert_eq!(out.responses()[0].item(), Some(&key("alice")));
    must_tx(
        &client,
        vec![
            st("UPDATE pq_a SET v = 1 WHERE pk = ?", vec![s("alice")]),
            // Another table: no policy.
            st("INSERT INTO pq_b VALUE {'pk': 'bob', 'sk': 1}", vec![]),
        ],
    )
    .await;
    // One statement on another partition denies the whole transaction.
    let e = assert_code(
        tx(
            &client,
            vec![
                st("UPDATE pq_a SET v = 2 WHERE pk = 'alice'", vec![]),
                st("EXISTS(SELECT * FROM pq_a WHERE pk = 'bob')", vec![]),
            ],
        )
        .await,
        "AccessDeniedException",
    );
    assert!(
        e.message.contains("dynamodb:PartiQLSelect"),
        "{}",
        e.message
    );
    let e = assert_code(
        tx(
            &client,
            vec![st("INSERT INTO pq_a VALUE {'pk': 'carol'}", vec![])],
        )
        .await,
        "AccessDeniedException",
    );
    assert!(
        e.message.contains("dynamodb:PartiQLInsert"),
        "{}",
        e.message
    );
    // dynamodb:EnclosingOperation: a DELETE in a transaction is denied, not outside one.
    let e = assert_code(
        tx(
            &client,
            vec![st("DELETE FROM pq_a WHERE pk = 'alice'", vec![])],
        )
        .await,
        "AccessDeniedException",
    );
    assert!(
        e.message.contains("dynamodb:PartiQLDelete"),
        "{}",
        e.message
    );
    client
        .execute_statement()
        .statement("DELETE FROM pq_a WHERE pk = 'alice'")
        .send()
        .await
        .unwrap();
    let v = must_get(&client, "pq_a", key("bob")).await;
    assert_eq!(v, Some(key("bob")));
}

//! PartiQL: ExecuteStatement (SELECT as Query or Scan, paging, ORDER BY, indexes; INSERT,
//! UPDATE, DELETE with their key rules, conditions and RETURNING; parameters; errors) and
//! BatchExecuteStatement (per-statement results and errors, limits), and the PartiQL IAM actions
//! with `dynamodb:LeadingKeys`.
//!
//! Reads right after writes are consistent: the tests also run against a 3-node cluster.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::execute_statement::{
    ExecuteStatementError, ExecuteStatementOutput,
};
use aws_sdk_dynamodb::types::{
    AttributeValue, BatchStatementErrorCodeEnum, BatchStatementRequest, BillingMode,
    GlobalSecondaryIndex, KeyType, Projection, ProjectionType, ReturnConsumedCapacity,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
};
use shoal_tests::*;

type ExecResult = Result<
    ExecuteStatementOutput,
    SdkError<ExecuteStatementError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
>;

/// Runs `statement` with `params`, consistently.
async fn exec(client: &Client, statement: &str, params: Vec<AttributeValue>) -> ExecResult {
    client
        .execute_statement()
        .statement(statement)
        .set_parameters((!params.is_empty()).then_some(params))
        .consistent_read(true)
        .send()
        .await
}

async fn must_exec(client: &Client, statement: &str, params: Vec<AttributeValue>) -> Vec<Item> {
    match exec(client, statement, params).await {
        Ok(out) => out.items.unwrap_or_default(),
        Err(e) => panic!("{statement}: {}", describe_error(&e)),
    }
}

/// A node with table `tbl` (pk S, sk N).
async fn node_with_table() -> (TestNode, Client) {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_range_table(&client, "tbl").await;
    (node, client)
}

fn sks(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["sk"].as_n().unwrap().clone())
        .collect()
}

fn stmt(text: &str, params: Vec<AttributeValue>) -> BatchStatementRequest {
    BatchStatementRequest::builder()
        .statement(text)
        .set_parameters((!params.is_empty()).then_some(params))
        .consistent_read(true)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_select_update_delete() {
    let (_node, client) = node_with_table().await;
    must_exec(
        &client,
        "INSERT INTO tbl VALUE {'pk': 'a', 'sk': 1, 'name': 'Ann', 'tags': <<'x', 'y'>>, 'doc': {'n': [1, 2]}}",
        vec![],
    )
    .await;
    must_exec(
        &client,
        "INSERT INTO \"tbl\" VALUE {'pk': ?, 'sk': ?, 'v': ?}",
        vec![s("a"), n("2"), n("10")],
    )
    .await;
    assert_same_item(
        must_get(&client, "tbl", item([("pk", s("a")), ("sk", n("1"))]))
            .await
            .as_ref(),
        &item([
            ("pk", s("a")),
            ("sk", n("1")),
            ("name", s("Ann")),
            ("tags", ss(["x", "y"])),
            ("doc", map([("n", list([n("1"), n("2")]))])),
        ]),
    );

    // SELECT by the full key, all attributes or a projection (document paths included).
    let got = must_exec(
        &client,
        "SELECT * FROM tbl WHERE pk = 'a' AND sk = 1",
        vec![],
    )
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["name"], s("Ann"));
    let got = must_exec(
        &client,
        "SELECT name, doc.n[1] FROM tbl WHERE pk = ? AND sk = ?",
        vec![s("a"), n("1")],
    )
    .await;
    assert_same_item(
        got.first(),
        &item([("name", s("Ann")), ("doc", map([("n", list([n("2")]))]))]),
    );

    // UPDATE: SET (values, arithmetic, list_append, set_add), REMOVE, RETURNING.
    let out = must_exec(
        &client,
        "UPDATE tbl SET l = list_append(doc.n, [3]) SET tags = set_add(tags, <<'z'>>) \
         REMOVE name WHERE pk = 'a' AND sk = 1 RETURNING ALL NEW *",
        vec![],
    )
    .await;
    assert_same_item(
        out.first(),
        &item([
            ("pk", s("a")),
            ("sk", n("1")),
            ("tags", ss(["x", "y", "z"])),
            ("doc", map([("n", list([n("1"), n("2")]))])),
            ("l", list([n("1"), n("2"), n("3")])),
        ]),
    );
    let out = must_exec(
        &client,
        "UPDATE tbl SET v = v + ? WHERE pk = 'a' AND sk = 2 AND v >= 10 RETURNING MODIFIED OLD *",
        vec![n("5")],
    )
    .await;
    assert_same_item(out.first(), &item([("v", n("10"))]));
    let out = must_exec(
        &client,
        "UPDATE tbl SET w = 'new' WHERE pk = 'a' AND sk = 2 RETURNING MODIFIED NEW *",
        vec![],
    )
    .await;
    assert_same_item(out.first(), &item([("w", s("new"))]));
    // No RETURNING: no items.
    let out = must_exec(
        &client,
        "UPDATE tbl SET x = 1 WHERE pk = 'a' AND sk = 2",
        vec![],
    )
    .await;
    assert!(out.is_empty());
    let got = must_exec(
        &client,
        "SELECT v, w, x FROM tbl WHERE pk = 'a' AND sk = 2",
        vec![],
    )
    .await;
    assert_same_item(
        got.first(),
        &item([("v", n("15")), ("w", s("new")), ("x", n("1"))]),
    );

    // DELETE, with RETURNING ALL OLD.
    let out = must_exec(
        &client,
        "DELETE FROM tbl WHERE pk = 'a' AND sk = 2 RETURNING ALL OLD *",
        vec![],
    )
    .await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["v"], n("15"));
    must_exec(&client, "DELETE FROM tbl WHERE pk = 'a' AND sk = 1", vec![]).await;
    assert!(
        must_exec(&client, "SELECT * FROM tbl WHERE pk = 'a'", vec![])
            .await
            .is_empty()
    );
    // Deleting a missing item succeeds, with nothing returned.
    let out = must_exec(
        &client,
        "DELETE FROM tbl WHERE pk = 'a' AND sk = 1 AND v = 3 RETURNING ALL OLD *",
        vec![],
    )
    .await;
    assert!(out.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_of_an_existing_key_is_a_duplicate_item() {
    let (_node, client) = node_with_table().await;
    must_exec(
        &client,
        "INSERT INTO tbl VALUE {'pk': 'a', 'sk': 1, 'v': 1}",
        vec![],
    )
    .await;
    let e = assert_code(
        exec(
            &client,
            "INSERT INTO tbl VALUE {'pk': 'a', 'sk': 1, 'v': 2}",
            vec![],
        )
        .await,
        "DuplicateItemException",
    );
    assert_eq!(e.message, "Duplicate primary key exists in table");
    // The item is unchanged; another sort key is another item.
    let got = must_exec(
        &client,
        "SELECT v FROM tbl WHERE pk = 'a' AND sk = 1",
        vec![],
    )
    .await;
    assert_same_item(got.first(), &item([("v", n("1"))]));
    must_exec(
        &client,
        "INSERT INTO tbl VALUE {'pk': 'a', 'sk': 2}",
        vec![],
    )
    .await;
    // The item must hold the full key, of the right types.
    assert_validation(
        exec(&client, "INSERT INTO tbl VALUE {'pk': 'a'}", vec![]).await,
        "Missing the key sk",
    );
    assert_code(
        exec(
            &client,
            "INSERT INTO tbl VALUE {'pk': 'a', 'sk': 'one'}",
            vec![],
        )
        .await,
        "ValidationException",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_the_full_key_and_their_conditions() {
    let (_node, client) = node_with_table().await;
    must_exec(
        &client,
        "INSERT INTO tbl VALUE {'pk': 'a', 'sk': 1, 'v': 1}",
        vec![],
    )
    .await;
    for statement in [
        "UPDATE tbl SET v = 2 WHERE pk = 'a'",
        "UPDATE tbl SET v = 2 WHERE pk = 'a' OR sk = 1",
        "UPDATE tbl SET v = 2 WHERE pk = 'a' AND sk > 0",
        "DELETE FROM tbl WHERE sk = 1",
        "DELETE FROM tbl WHERE v = 1",
    ] {
        let e = assert_code(
            exec(&client, statement, vec![]).await,
            "ValidationException",
        );
        assert_eq!(
            e.message, "Where clause does not contain a mandatory equality on all key attributes",
            "{statement}"
        );
    }
    // Key attributes cannot be updated.
    assert_validation(
        exec(
            &client,
            "UPDATE tbl SET sk = 2 WHERE pk = 'a' AND sk = 1",
            vec![],
        )
        .await,
        "Cannot update attribute sk. This attribute is part of the key",
    );
    // UPDATE of a missing item, or with a condition that does not hold: the check fails.
    let e = assert_code(
        exec(
            &client,
            "UPDATE tbl SET v = 2 WHERE pk = 'b' AND sk = 1",
            vec![],
        )
        .await,
        "ConditionalCheckFailedException",
    );
    assert_eq!(e.message, "The conditional request failed");
    assert_code(
        exec(
            &client,
            "UPDATE tbl SET v = 2 WHERE pk = 'a' AND sk = 1 AND v = 5",
            vec![],
        )
        .await,
        "ConditionalCheckFailedException",
    );
    // ReturnValuesOnConditionCheckFailure=ALL_OLD returns the item with the error.
    let err = client
        .execute_statement()
        .statement("DELETE FROM tbl WHERE pk = 'a' AND sk = 1 AND v > 1")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .unwrap_err();
    match err.into_service_error() {
        ExecuteStatementError::ConditionalCheckFailedException(e) => {
            let item = e.item.expect("the item with the error");
            assert_eq!(item["v"], n("1"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Without it, no item.
    let err = exec(
        &client,
        "DELETE FROM tbl WHERE pk = 'a' AND sk = 1 AND v > 1",
        vec![],
    )
    .await
    .unwrap_err();
    match err.into_service_error() {
        ExecuteStatementError::ConditionalCheckFailedException(e) => assert!(e.item.is_none()),
        other => panic!("unexpected {other:?}"),
    }
    // The conditions that hold let the writes through.
    must_exec(
        &client,
        "UPDATE tbl SET v = 2 WHERE pk = 'a' AND sk = 1 AND v = 1",
        vec![],
    )
    .await;
    must_exec(
        &client,
        "DELETE FROM tbl WHERE pk = 'a' AND sk = 1 AND v = 2",
        vec![],
    )
    .await;
    assert!(
        must_exec(&client, "SELECT * FROM tbl WHERE pk = 'a'", vec![])
            .await
            .is_empty()
    );
}

/// Puts items pk in {p0, p1, p2} x sk in 0..10, with v = sk and odd = sk % 2.
async fn fill(client: &Client) {
    let mut items = Vec::new();
    for p in 0..3 {
        for k in 0..10 {
            items.push(item([
                ("pk", s(format!("p{p}"))),
                ("sk", n(k.to_string())),
                ("v", n(k.to_string())),
                ("odd", boolean(k % 2 == 1)),
            ]));
        }
    }
    must_batch_put(client, "tbl", items).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_queries_a_partition_or_scans() {
    let (_node, client) = node_with_table().await;
    fill(&client).await;
    // A Query: the partition, in sort-key order, narrowed by the sort key and filtered.
    let got = must_exec(&client, "SELECT * FROM tbl WHERE pk = 'p1'", vec![]).await;
    assert_eq!(
        sks(&got),
        (0..10).map(|k| k.to_string()).collect::<Vec<_>>()
    );
    let got = must_exec(
        &client,
        "SELECT sk FROM tbl WHERE pk = 'p1' AND sk BETWEEN 3 AND 6 AND odd = TRUE",
        vec![],
    )
    .await;
    assert_eq!(sks(&got), ["3", "5"]);
    let got = must_exec(
        &client,
        "SELECT sk FROM tbl WHERE 4 < sk AND pk = ? ORDER BY sk DESC",
        vec![s("p2")],
    )
    .await;
    assert_eq!(sks(&got), ["9", "8", "7", "6", "5"]);
    let got = must_exec(
        &client,
        "SELECT sk FROM tbl WHERE pk = 'p2' AND sk <= 1 ORDER BY pk, sk ASC",
        vec![],
    )
    .await;
    assert_eq!(sks(&got), ["0", "1"]);
    // Scans: no partition key, OR, IN, a filter on other attributes.
    assert_eq!(
        must_exec(&client, "SELECT * FROM tbl", vec![]).await.len(),
        30
    );
    assert_eq!(
        must_exec(&client, "SELECT * FROM tbl WHERE v >= 8", vec![])
            .await
            .len(),
        6
    );
    assert_eq!(
        must_exec(
            &client,
            "SELECT * FROM tbl WHERE pk = 'p0' OR pk = 'p1'",
            vec![]
        )
        .await
        .len(),
        20
    );
    let got = must_exec(
        &client,
        "SELECT pk FROM tbl WHERE pk IN ['p0', 'p2'] AND sk = 3",
        vec![],
    )
    .await;
    let pks: BTreeSet<String> = got
        .iter()
        .map(|i| i["pk"].as_s().unwrap().clone())
        .collect();
    assert_eq!(pks, BTreeSet::from(["p0".to_string(), "p2".to_string()]));
    // IN on the partition key: one Query per value, in the order of ORDER BY.
    let got = must_exec(
        &client,
        "SELECT pk, sk FROM tbl WHERE pk IN ['p0', 'p2', 'nope', 1] AND sk < 2 ORDER BY pk DESC",
        vec![],
    )
    .await;
    assert_eq!(
        keys_of(&got),
        [("p2", "0"), ("p2", "1"), ("p0", "0"), ("p0", "1")]
            .map(|(p, k)| (p.to_string(), k.to_string()))
    );
    // A partition key of another type matches nothing.
    assert!(
        must_exec(&client, "SELECT * FROM tbl WHERE pk = 1", vec![])
            .await
            .is_empty()
    );
    // Functions and IS MISSING.
    assert_eq!(
        must_exec(
            &client,
            "SELECT * FROM tbl WHERE begins_with(pk, 'p1') AND nothing IS MISSING AND attribute_type(v, 'N')",
            vec![]
        )
        .await
        .len(),
        10
    );
    // ORDER BY only on the key of a Query.
    for statement in [
        "SELECT * FROM tbl ORDER BY sk",
        "SELECT * FROM tbl WHERE pk = 'p1' ORDER BY v",
    ] {
        assert_validation(
            exec(&client, statement, vec![]).await,
            "ORDER BY is supported only on the key attributes of a query",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_of_an_index() {
    let node = TestNode::start().await;
    let client = node.client();
    client
        .create_table()
        .table_name("tbl")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .attribute_definitions(attr_def("g", ScalarAttributeType::S))
        .key_schema(key_elem("pk", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_g")
                .key_schema(key_elem("g", KeyType::Hash))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    must_wait_active(&client, "tbl").await;
    for i in 0..6 {
        let g = if i % 2 == 0 { "even" } else { "odd" };
        must_put(
            &client,
            "tbl",
            item([("pk", s(format!("k{i}"))), ("g", s(g))]),
        )
        .await;
    }
    // The index is eventually consistent: wait for its entries.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = client
            .execute_statement()
            .statement(r#"SELECT pk FROM "tbl"."by_g" WHERE g = 'even'"#)
            .send()
            .await
            .unwrap();
        if out.items().len() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "index entries: {out:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Consistent reads of a global index are refused; an unknown index is named.
    assert_validation(
        exec(
            &client,
            r#"SELECT * FROM "tbl"."by_g" WHERE g = 'even'"#,
            vec![],
        )
        .await,
        "Consistent reads are not supported on global secondary indexes",
    );
    assert_validation(
        exec(&client, r#"SELECT * FROM "tbl"."nope""#, vec![]).await,
        "The table does not have the specified index: nope",
    );
}

/// Reads every page of `statement` with `limit` and returns the items.
async fn all_pages(client: &Client, statement: &str, limit: i32) -> (Vec<Item>, usize) {
    let mut items = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let out = client
            .execute_statement()
            .statement(statement)
            .limit(limit)
            .set_next_token(token)
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(out.items().len() <= limit as usize);
        items.extend(out.items().iter().cloned());
        token = out.next_token;
        if token.is_none() {
            return (items, pages);
        }
        assert!(pages < 100, "paging does not end");
    }
}

fn keys_of(items: &[Item]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|i| {
            (
                i["pk"].as_s().unwrap().clone(),
                i["sk"].as_n().unwrap().clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_and_next_token_page_through_every_item_once() {
    let (_node, client) = node_with_table().await;
    fill(&client).await;
    // A Scan: 30 items, 7 evaluated per page.
    let (items, pages) = all_pages(&client, "SELECT * FROM tbl", 7).await;
    let keys = keys_of(&items);
    let distinct: BTreeSet<_> = keys.iter().cloned().collect();
    assert_eq!(keys.len(), 30);
    assert_eq!(distinct.len(), 30);
    assert!(pages >= 5, "{pages} pages");
    // A filtered Query: Limit counts the items evaluated, so pages may hold fewer.
    let (items, _) = all_pages(
        &client,
        "SELECT * FROM tbl WHERE pk = 'p0' AND odd = TRUE",
        3,
    )
    .await;
    assert_eq!(sks(&items), ["1", "3", "5", "7", "9"]);
    // IN: the partitions in turn, across pages.
    let (items, _) = all_pages(
        &client,
        "SELECT * FROM tbl WHERE pk IN ['p2', 'p0', 'p1'] AND odd = TRUE",
        2,
    )
    .await;
    let keys = keys_of(&items);
    assert_eq!(keys.len(), 15);
    assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), 15);
    assert!(keys[..5].iter().all(|(p, _)| p == "p2"), "{keys:?}");
    // A descending Query pages backwards.
    let (items, _) = all_pages(
        &client,
        "SELECT * FROM tbl WHERE pk = 'p2' ORDER BY sk DESC",
        4,
    )
    .await;
    assert_eq!(
        sks(&items),
        (0..10).rev().map(|k| k.to_string()).collect::<Vec<_>>()
    );

    // A token belongs to its statement and parameters.
    let out = client
        .execute_statement()
        .statement("SELECT * FROM tbl WHERE pk = ?")
        .parameters(s("p1"))
        .limit(2)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let token = out.next_token.expect("a next token");
    let with = |statement: &str, param: &str, token: &str| {
        client
            .execute_statement()
            .statement(statement)
            .parameters(s(param))
            .next_token(token)
            .consistent_read(true)
            .send()
    };
    let next = with("SELECT * FROM tbl WHERE pk = ?", "p1", &token)
        .await
        .unwrap();
    assert_eq!(
        sks(next.items()),
        (2..10).map(|k| k.to_string()).collect::<Vec<_>>()
    );
    for (statement, param, token) in [
        ("SELECT * FROM tbl WHERE pk = ?", "p2", token.as_str()),
        (
            "SELECT * FROM tbl WHERE pk = ? AND v > 0",
            "p1",
            token.as_str(),
        ),
        ("SELECT * FROM tbl WHERE pk = ?", "p1", "not-a-token"),
    ] {
        assert_validation(
            with(statement, param, token).await,
            "The provided NextToken is invalid",
        );
    }
    assert_code(
        client
            .execute_statement()
            .statement("SELECT * FROM tbl")
            .limit(0)
            .send()
            .await,
        "ValidationException",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_errors_capacity_and_consistency() {
    let (_node, client) = node_with_table().await;
    // Parameter count.
    for (statement, params) in [
        ("SELECT * FROM tbl WHERE pk = ?", vec![]),
        ("SELECT * FROM tbl WHERE pk = ?", vec![s("a"), s("b")]),
        ("SELECT * FROM tbl WHERE pk = 'a'", vec![s("a")]),
    ] {
        let e = assert_code(
            exec(&client, statement, params).await,
            "ValidationException",
        );
        assert_eq!(
            e.message,
            "Number of parameters in request and statement don't match."
        );
    }
    // Statements that do not parse.
    for statement in [
        "SELECT * FROM",
        "SELEC * FROM tbl",
        "UPDATE tbl WHERE pk = 'a'",
    ] {
        assert_validation(
            exec(&client, statement, vec![]).await,
            "Statement wasn't well formed, can't be processed",
        );
    }
    // EXISTS belongs to transactions.
    assert_validation(
        exec(
            &client,
            "EXISTS(SELECT * FROM tbl WHERE pk = 'a' AND sk = 1)",
            vec![],
        )
        .await,
        "EXISTS is valid only in a condition check of ExecuteTransaction",
    );
    // Unknown tables, for reads and writes.
    for statement in [
        "SELECT * FROM nope WHERE pk = 'a'",
        "INSERT INTO nope VALUE {'pk': 'a'}",
        "DELETE FROM nope WHERE pk = 'a'",
    ] {
        let e = assert_code(
            exec(&client, statement, vec![]).await,
            "ResourceNotFoundException",
        );
        assert_eq!(e.message, "Requested resource not found");
    }
    // ConsumedCapacity: a strongly consistent read of a small item is one unit, an eventually
    // consistent one half; a write of a small item one unit.
    let out = client
        .execute_statement()
        .statement("INSERT INTO tbl VALUE {'pk': 'a', 'sk': 1}")
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let c = out.consumed_capacity.unwrap();
    assert_eq!(c.table_name(), Some("tbl"));
    assert_eq!(c.capacity_units(), Some(1.0));
    for (consistent, units) in [(true, 1.0), (false, 0.5)] {
        let out = client
            .execute_statement()
            .statement("SELECT * FROM tbl WHERE pk = 'a' AND sk = 1")
            .consistent_read(consistent)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .unwrap();
        assert_eq!(out.consumed_capacity.unwrap().capacity_units(), Some(units));
    }
    // A consistent read sees the write at once (on any node of a cluster).
    for i in 0..5 {
        let v = n(i.to_string());
        must_exec(
            &client,
            "UPDATE tbl SET v = ? WHERE pk = 'a' AND sk = 1",
            vec![v.clone()],
        )
        .await;
        let got = must_exec(
            &client,
            "SELECT v FROM tbl WHERE pk = 'a' AND sk = 1",
            vec![],
        )
        .await;
        assert_eq!(got[0]["v"], v);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_writes_answer_each_statement_in_order() {
    let (_node, client) = node_with_table().await;
    must_exec(
        &client,
        "INSERT INTO tbl VALUE {'pk': 'dup', 'sk': 1, 'v': 1}",
        vec![],
    )
    .await;
    must_exec(
        &client,
        "INSERT INTO tbl VALUE {'pk': 'other', 'sk': 1, 'v': 1}",
        vec![],
    )
    .await;
    // The statements run concurrently: each touches its own item, or fails.
    let out = client
        .batch_execute_statement()
        .statements(stmt(
            "INSERT INTO tbl VALUE {'pk': ?, 'sk': 1}",
            vec![s("new")],
        ))
        .statements(stmt("INSERT INTO tbl VALUE {'pk': 'dup', 'sk': 1}", vec![]))
        .statements(stmt(
            "UPDATE tbl SET v = 2 WHERE pk = 'missing' AND sk = 1",
            vec![],
        ))
        .statements(
            BatchStatementRequest::builder()
                .statement("DELETE FROM tbl WHERE pk = 'dup' AND sk = 1 AND v = 7")
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .unwrap(),
        )
        .statements(stmt("DELETE FROM nope WHERE pk = 'a'", vec![]))
        .statements(stmt("UPDATE tbl SET v = 3 WHERE pk = 'dup'", vec![]))
        .statements(stmt("INSERT INTO", vec![]))
        .statements(stmt(
            "UPDATE tbl SET v = v + 1 WHERE pk = 'other' AND sk = 1",
            vec![],
        ))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let r = out.responses();
    assert_eq!(r.len(), 8);
    let code = |i: usize| r[i].error().and_then(|e| e.code().cloned());
    assert_eq!(code(0), None);
    assert_eq!(r[0].table_name(), Some("tbl"));
    assert_eq!(code(1), Some(BatchStatementErrorCodeEnum::DuplicateItem));
    assert_eq!(
        r[1].error().unwrap().message(),
        Some("Duplicate primary key exists in table")
    );
    assert_eq!(
        code(2),
        Some(BatchStatementErrorCodeEnum::ConditionalCheckFailed)
    );
    assert_eq!(
        code(3),
        Some(BatchStatementErrorCodeEnum::ConditionalCheckFailed)
    );
    assert_eq!(r[3].error().unwrap().item().unwrap()["v"], n("1"));
    assert_eq!(code(4), Some(BatchStatementErrorCodeEnum::ResourceNotFound));
    assert_eq!(code(5), Some(BatchStatementErrorCodeEnum::ValidationError));
    assert_eq!(
        r[5].error().unwrap().message(),
        Some("Where clause does not contain a mandatory equality on all key attributes")
    );
    assert_eq!(code(6), Some(BatchStatementErrorCodeEnum::ValidationError));
    assert_eq!(code(7), None);
    let units: f64 = out
        .consumed_capacity()
        .iter()
        .filter(|c| c.table_name() == Some("tbl"))
        .filter_map(|c| c.capacity_units())
        .sum();
    assert_eq!(units, 2.0);
    // What succeeded is there.
    let got = must_exec(
        &client,
        "SELECT * FROM tbl WHERE pk IN ['dup', 'other'] ORDER BY pk",
        vec![],
    )
    .await;
    assert_eq!(got[0]["v"], n("1"));
    assert_eq!(got[1]["v"], n("2"));
    assert_eq!(
        must_exec(&client, "SELECT * FROM tbl WHERE pk = 'new'", vec![])
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_reads_get_items_by_full_key() {
    let (_node, client) = node_with_table().await;
    fill(&client).await;
    let out = client
        .batch_execute_statement()
        .statements(stmt("SELECT * FROM tbl WHERE pk = 'p0' AND sk = 3", vec![]))
        .statements(stmt(
            "SELECT v FROM tbl WHERE pk = ? AND sk = ?",
            vec![s("p1"), n("4")],
        ))
        .statements(stmt("SELECT * FROM tbl WHERE pk = 'p9' AND sk = 1", vec![]))
        .statements(stmt(
            "SELECT * FROM tbl WHERE pk = 'p1' AND sk = 4 AND v = 0",
            vec![],
        ))
        .statements(stmt("SELECT * FROM tbl WHERE pk = 'p1'", vec![]))
        .statements(stmt("SELECT * FROM nope WHERE pk = 'a' AND sk = 1", vec![]))
        .send()
        .await
        .unwrap();
    let r = out.responses();
    assert_eq!(r.len(), 6);
    assert_eq!(r[0].item().unwrap()["v"], n("3"));
    assert_same_item(r[1].item(), &item([("v", n("4"))]));
    assert!(r[2].item().is_none() && r[2].error().is_none());
    assert!(r[3].item().is_none() && r[3].error().is_none());
    assert_eq!(
        r[4].error().and_then(|e| e.code().cloned()),
        Some(BatchStatementErrorCodeEnum::ValidationError)
    );
    assert_eq!(
        r[5].error().and_then(|e| e.code().cloned()),
        Some(BatchStatementErrorCodeEnum::ResourceNotFound)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_limits() {
    let (_node, client) = node_with_table().await;
    // More than 25 statements.
    let mut req = client.batch_execute_statement();
    for i in 0..26 {
        req = req.statements(stmt(
            "SELECT * FROM tbl WHERE pk = ? AND sk = 1",
            vec![s(format!("k{i}"))],
        ));
    }
    assert_validation(
        req.send().await,
        "Member must have length less than or equal to 25",
    );
    // 25 are fine.
    let mut req = client.batch_execute_statement();
    for i in 0..25 {
        req = req.statements(stmt(
            "INSERT INTO tbl VALUE {'pk': ?, 'sk': 1}",
            vec![s(format!("k{i}"))],
        ));
    }
    let out = req.send().await.unwrap();
    assert!(out.responses().iter().all(|r| r.error().is_none()));
    // Reads and writes do not mix.
    assert_validation(
        client
            .batch_execute_statement()
            .statements(stmt("SELECT * FROM tbl WHERE pk = 'a' AND sk = 1", vec![]))
            .statements(stmt("INSERT INTO tbl VALUE {'pk': 'b', 'sk': 1}", vec![]))
            .send()
            .await,
        "A batch must contain either only read (SELECT) statements or only write",
    );
    // An empty batch.
    assert_code(
        client.batch_execute_statement().send().await,
        "ValidationException",
    );
}

/// Retries `f` until it answers `AccessDeniedException` (a policy reaches every node of a
/// cluster shortly after PutResourcePolicy returns).
async fn wait_denied<F, Fut, T, E>(f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<
            Output = Result<
                T,
                SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
            >,
        >,
    T: std::fmt::Debug,
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Err(SdkError::ServiceError(e)) = f().await
            && e.err().code() == Some("AccessDeniedException")
        {
            return;
        }
        assert!(Instant::now() < deadline, "the policy is not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A resource-based policy that leaves only `dynamodb:PartiQLSelect` of partition key `alice`
/// on the table (the test's key has no policy of its own: it may do what no explicit deny
/// forbids).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leading_keys_confine_partiql_to_a_partition() {
    let (_node, client) = node_with_table().await;
    must_exec(
        &client,
        "INSERT INTO tbl VALUE {'pk': 'alice', 'sk': 1}",
        vec![],
    )
    .await;
    must_exec(
        &client,
        "INSERT INTO tbl VALUE {'pk': 'bob', 'sk': 1}",
        vec![],
    )
    .await;
    let arn = client
        .describe_table()
        .table_name("tbl")
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .table_arn
        .unwrap();
    let policy = format!(
        r#"{{
        "Version": "2012-10-17",
        "Statement": [
            {{"Sid": "OnlySelect", "Effect": "Deny", "Principal": "*",
              "NotAction": "dynamodb:PartiQLSelect", "Resource": "{arn}"}},
            {{"Sid": "OnlyAlice", "Effect": "Deny", "Principal": "*",
              "Action": "dynamodb:PartiQLSelect", "Resource": "{arn}",
              "Condition": {{"ForAnyValue:StringNotEquals": {{"dynamodb:LeadingKeys": ["alice"]}}}}}},
            {{"Sid": "NoScans", "Effect": "Deny", "Principal": "*",
              "Action": "dynamodb:PartiQLSelect", "Resource": "{arn}",
              "Condition": {{"Null": {{"dynamodb:LeadingKeys": "true"}}}}}},
            {{"Sid": "NoSecrets", "Effect": "Deny", "Principal": "*",
              "Action": "dynamodb:PartiQLSelect", "Resource": "{arn}",
              "Condition": {{"ForAnyValue:StringEquals": {{"dynamodb:Attributes": ["secret"]}}}}}}
        ]
    }}"#
    );
    client
        .put_resource_policy()
        .resource_arn(&arn)
        .policy(policy)
        .send()
        .await
        .unwrap();
    wait_denied(|| exec(&client, "SELECT * FROM tbl WHERE pk = 'bob'", vec![])).await;

    // Its own partition, by literal or parameter.
    assert_eq!(
        must_exec(&client, "SELECT * FROM tbl WHERE pk = 'alice'", vec![])
            .await
            .len(),
        1
    );
    assert_eq!(
        must_exec(
            &client,
            "SELECT * FROM tbl WHERE pk = ? AND sk = 1",
            vec![s("alice")]
        )
        .await
        .len(),
        1
    );
    // Another partition, a scan, or a write: denied, naming the PartiQL action.
    let e = assert_code(
        exec(&client, "SELECT * FROM tbl WHERE pk = ?", vec![s("bob")]).await,
        "AccessDeniedException",
    );
    assert!(
        e.message.contains("dynamodb:PartiQLSelect"),
        "{}",
        e.message
    );
    assert!(e.message.contains(&arn), "{}", e.message);
    assert_code(
        exec(&client, "SELECT * FROM tbl", vec![]).await,
        "AccessDeniedException",
    );
    // dynamodb:Attributes: the projection and the WHERE clause name attributes.
    for statement in [
        "SELECT secret FROM tbl WHERE pk = 'alice'",
        "SELECT * FROM tbl WHERE pk = 'alice' AND secret = 1",
    ] {
        assert_code(
            exec(&client, statement, vec![]).await,
            "AccessDeniedException",
        );
    }
    assert_code(
        exec(
            &client,
            "SELECT * FROM tbl WHERE pk = 'alice' OR pk = 'bob'",
            vec![],
        )
        .await,
        "AccessDeniedException",
    );
    // IN lists its partition keys.
    assert_eq!(
        must_exec(&client, "SELECT * FROM tbl WHERE pk IN ['alice']", vec![])
            .await
            .len(),
        1
    );
    assert_code(
        exec(
            &client,
            "SELECT * FROM tbl WHERE pk IN ['alice', ?]",
            vec![s("bob")],
        )
        .await,
        "AccessDeniedException",
    );
    for (statement, action) in [
        (
            "INSERT INTO tbl VALUE {'pk': 'alice', 'sk': 2}",
            "PartiQLInsert",
        ),
        (
            "UPDATE tbl SET v = 1 WHERE pk = 'alice' AND sk = 1",
            "PartiQLUpdate",
        ),
        (
            "DELETE FROM tbl WHERE pk = 'alice' AND sk = 1",
            "PartiQLDelete",
        ),
    ] {
        let e = assert_code(
            exec(&client, statement, vec![]).await,
            "AccessDeniedException",
        );
        assert!(e.message.contains(action), "{}", e.message);
    }
    // The item operations are other actions.
    assert_code(
        client
            .get_item()
            .table_name("tbl")
            .key("pk", s("alice"))
            .key("sk", n("1"))
            .send()
            .await,
        "AccessDeniedException",
    );

    // A batch is checked statement by statement.
    let out = client
        .batch_execute_statement()
        .statements(stmt(
            "SELECT * FROM tbl WHERE pk = 'alice' AND sk = 1",
            vec![],
        ))
        .statements(stmt(
            "SELECT * FROM tbl WHERE pk = ? AND sk = 2",
            vec![s("alice")],
        ))
        .send()
        .await
        .unwrap();
    assert!(out.responses()[0].item().is_some());
    let e = assert_code(
        client
            .batch_execute_statement()
            .statements(stmt(
                "SELECT * FROM tbl WHERE pk = 'alice' AND sk = 1",
                vec![],
            ))
            .statements(stmt(
                "SELECT * FROM tbl WHERE pk = ? AND sk = 1",
                vec![s("bob")],
            ))
            .send()
            .await,
        "AccessDeniedException",
    );
    assert!(
        e.message.contains("dynamodb:PartiQLSelect"),
        "{}",
        e.message
    );
    assert_code(
        client
            .batch_execute_statement()
            .statements(stmt(
                "DELETE FROM tbl WHERE pk = 'alice' AND sk = 1",
                vec![],
            ))
            .send()
            .await,
        "AccessDeniedException",
    );
}

//! IAM policies against the real binary, with the AWS SDK for Rust: access-key policies set with
//! `shoal keys create --policy` / `shoal keys set-policy` (LeadingKeys confinement across GetItem,
//! Query, BatchGetItem and PartiQL; explicit deny wins; NotAction/NotResource), tables' resource-based
//! policies (Put/Get/DeleteResourcePolicy with revision ids, CreateTable's ResourcePolicy,
//! evaluated together with the key's policy), a stream's own resource-based policy, and the admin
//! endpoints opened by a policy.
// Helpers outside `#[test]` functions panic on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use shoal_tests::*;
use shoal_tests::{RawRequest, Signing};

const BIN: &str = env!("CARGO_BIN_EXE_shoal");
const KEY_ID: &str = "AKIDPOLICYTEST000001";
const SECRET: &str = "policy-test-secret-000000000000000000000";

async fn start() -> ProcessNode {
    ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .start()
        .await
}

/// Runs `shoal keys <args> --data-dir D`; returns (success, stdout, stderr).
fn keys(node: &ProcessNode, args: &[&str]) -> (bool, String, String) {
    let data_dir = node.data_dir().to_str().unwrap().to_string();
    let mut keys_dir = node.data_dir().as_os_str().to_os_string();
    keys_dir.push("-keys");
    let keys_dir = keys_dir.into_string().unwrap();
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", &data_dir, "--keys-dir", &keys_dir]);
    let (status, out, err) = run_command(Path::new(BIN), &all);
    (status.success(), out, err)
}

/// Writes `policy` to a file in the node's temp area and returns its path.
fn policy_file(node: &ProcessNode, name: &str, policy: &str) -> String {
    let path = node.data_dir().with_file_name(format!(
        "{}-{name}.json",
        node.data_dir().file_name().unwrap().to_str().unwrap()
    ));
    std::fs::write(&path, policy).unwrap();
    path.to_str().unwrap().to_string()
}

/// Creates a key with `policy` and returns (id, secret, client), once the node knows the key.
async fn key_with_policy(node: &ProcessNode, policy: &str) -> (String, String, Client) {
    let file = policy_file(node, "create", policy);
    let (ok, out, err) = keys(node, &["create", "--policy", &file]);
    assert!(ok, "keys create --policy: {err}");
    let (id, secret) = parse_printed_key(&out).expect("created key printed");
    let client = node.client_with_key(&id, &secret);
    for _ in 0..50 {
        match client.list_tables().send().await {
            Err(e) if format!("{e:?}").contains("UnrecognizedClient") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => break,
        }
    }
    (id, secret, client)
}

fn set_policy(node: &ProcessNode, id: &str, policy: &str) {
    let file = policy_file(node, "set", policy);
    let (ok, out, err) = keys(node, &["set-policy", id, &file]);
    assert!(ok, "keys set-policy: {err}");
    assert!(out.contains("policy of"), "{out}");
}

/// The table ARN prefix of this node: `arn:aws:dynamodb:<region>:<account>:table/`.
async fn arn_prefix(admin: &Client, table: &str) -> String {
    let d = admin
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap();
    let arn = d.table().unwrap().table_arn().unwrap().to_string();
    arn.strip_suffix(table).unwrap().to_string()
}

fn account_of(prefix: &str) -> String {
    prefix.split(':').nth(4).unwrap().to_string()
}

fn key(pk: &str) -> std::collections::HashMap<String, AttributeValue> {
    item([("pk", s(pk))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leading_keys_confine_a_key_to_its_own_partition_keys() {
    let node = start().await;
    let admin = node.client();
    must_create_hash_table(&admin, "scores").await;
    let prefix = arn_prefix(&admin, "scores").await;
    let policy = r#"{
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "OwnItemsOnly",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:PartiQLSelect"],
            "Resource": "arn:aws:dynamodb:*:*:table/scores",
            "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["${aws:username}"]}}
        }, {
            "Sid": "NoFullTableScans",
            "Effect": "Deny",
            "Action": "dynamodb:PartiQLSelect",
            "Resource": "*",
            "Condition": {"Bool": {"dynamodb:FullTableScan": "true"}}
        }]
    }"#;
    let (id, _, user) = key_with_policy(&node, policy).await;
    must_put(&admin, "scores", item([("pk", s(&id)), ("v", n("1"))])).await;
    must_put(
        &admin,
        "scores",
        item([("pk", s("someone-else")), ("v", n("2"))]),
    )
    .await;
    let table_arn = format!("{prefix}scores");
    let user_arn = format!("arn:aws:iam::{}:user/{id}", account_of(&prefix));

    // GetItem.
    let own = user
        .get_item()
        .table_name("scores")
        .set_key(Some(key(&id)))
        .send()
        .await
        .unwrap();
    assert!(own.item().is_some());
    let e = assert_code(
        user.get_item()
            .table_name("scores")
            .set_key(Some(key("someone-else")))
            .send()
            .await,
        "AccessDeniedException",
    );
    assert_eq!(
        e.message,
        format!(
            "User: {user_arn} is not authorized to perform: dynamodb:GetItem on resource: {table_arn} because no identity-based policy allows the dynamodb:GetItem action"
        )
    );

    // A table named by an ARN of another region and account is still this node's table: the
    // check is on it, under its own ARN.
    let e = assert_code(
        user.get_item()
            .table_name("arn:aws:dynamodb:eu-west-9:999999999999:table/scores")
            .set_key(Some(key("someone-else")))
            .send()
            .await,
        "AccessDeniedException",
    );
    assert!(
        e.message.contains(&format!("on resource: {table_arn} ")),
        "{}",
        e.message
    );

    // Query.
    let q = |pk: &str| {
        user.query()
            .table_name("scores")
            .key_condition_expression("#p = :v")
            .expression_attribute_names("#p", "pk")
            .expression_attribute_values(":v", s(pk))
            .send()
    };
    assert_eq!(q(&id).await.unwrap().count(), 1);
    assert_code(q("someone-else").await, "AccessDeniedException");

    // BatchGetItem: every key must be the caller's.
    let batch = |pks: &[&str]| {
        let mut ka = KeysAndAttributes::builder();
        for pk in pks {
            ka = ka.keys(key(pk));
        }
        user.batch_get_item()
            .request_items("scores", ka.build().unwrap())
            .send()
    };
    let r = batch(&[&id]).await.unwrap();
    assert_eq!(r.responses().unwrap()["scores"].len(), 1);
    assert_code(batch(&[&id, "someone-else"]).await, "AccessDeniedException");

    // PartiQL: a SELECT of the caller's partition key (ExecuteStatement, BatchExecuteStatement),
    // not of another's. A SELECT that scans gives no LeadingKeys, which ForAllValues lets
    // through (as IAM does): the policy's dynamodb:FullTableScan deny refuses it.
    let select = |pk: &str| {
        user.execute_statement()
            .statement(r#"SELECT * FROM "scores" WHERE pk = ?"#)
            .parameters(s(pk))
            .send()
    };
    assert_eq!(select(&id).await.unwrap().items().len(), 1);
    let e = assert_code(select("someone-else").await, "AccessDeniedException");
    assert!(
        e.message.contains("dynamodb:PartiQLSelect"),
        "{}",
        e.message
    );
    assert_code(
        user.execute_statement()
            .statement(r#"SELECT * FROM "scores""#)
            .send()
            .await,
        "AccessDeniedException",
    );
    let batch_select = |pks: &[&str]| {
        let mut b = user.batch_execute_statement();
        for pk in pks {
            b = b.statements(
                aws_sdk_dynamodb::types::BatchStatementRequest::builder()
                    .statement(r#"SELECT * FROM "scores" WHERE pk = ?"#)
                    .parameters(s(*pk))
                    .build()
                    .unwrap(),
            );
        }
        b.send()
    };
    let r = batch_select(&[&id]).await.unwrap();
    assert!(r.responses()[0].item().is_some(), "{r:?}");
    assert_code(
        batch_select(&[&id, "someone-else"]).await,
        "AccessDeniedException",
    );
    // PartiQL writes are other actions, not named.
    assert_code(
        user.execute_statement()
            .statement(r#"INSERT INTO "scores" VALUE {'pk': ?}"#)
            .parameters(s(&id))
            .send()
            .await,
        "AccessDeniedException",
    );

    // PutItem of another partition key, and actions the policy does not name.
    assert_code(
        user.put_item()
            .table_name("scores")
            .set_item(Some(item([("pk", s("someone-else"))])))
            .send()
            .await,
        "AccessDeniedException",
    );
    user.put_item()
        .table_name("scores")
        .set_item(Some(item([("pk", s(&id)), ("v", n("3"))])))
        .send()
        .await
        .unwrap();
    let e = assert_code(
        user.scan().table_name("scores").send().await,
        "AccessDeniedException",
    );
    assert!(e.message.contains("dynamodb:Scan"), "{}", e.message);
    assert_code(
        user.delete_table().table_name("scores").send().await,
        "AccessDeniedException",
    );
    // The admin key (no policy) is not affected.
    admin.scan().table_name("scores").send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_deny_wins_and_not_action_not_resource_apply() {
    let node = start().await;
    let admin = node.client();
    for t in ["orders", "secret-ledger"] {
        must_create_hash_table(&admin, t).await;
        must_put(&admin, t, item([("pk", s("a"))])).await;
    }
    let policy = r#"{
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "NotAction": ["dynamodb:DeleteTable", "dynamodb:UpdateTable"],
             "NotResource": "arn:aws:dynamodb:*:*:table/secret-*"},
            {"Effect": "Allow", "Action": "dynamodb:ListTables", "Resource": "*"},
            {"Sid": "NoDeletes", "Effect": "Deny", "Action": "dynamodb:Delete*", "Resource": "*"}
        ]
    }"#;
    let (id, _, user) = key_with_policy(&node, policy).await;
    user.list_tables().send().await.unwrap();
    user.put_item()
        .table_name("orders")
        .set_item(Some(key("b")))
        .send()
        .await
        .unwrap();
    user.get_item()
        .table_name("orders")
        .set_key(Some(key("a")))
        .send()
        .await
        .unwrap();
    // NotResource: nothing allows the secret table.
    let e = assert_code(
        user.get_item()
            .table_name("secret-ledger")
            .set_key(Some(key("a")))
            .send()
            .await,
        "AccessDeniedException",
    );
    assert!(
        e.message
            .ends_with("because no identity-based policy allows the dynamodb:GetItem action"),
        "{}",
        e.message
    );
    // NotAction: UpdateTable is not allowed, even on orders.
    assert_code(
        user.update_table()
            .table_name("orders")
            .deletion_protection_enabled(true)
            .send()
            .await,
        "AccessDeniedException",
    );
    // The allow covers DeleteItem, the deny wins.
    let e = assert_code(
        user.delete_item()
            .table_name("orders")
            .set_key(Some(key("a")))
            .send()
            .await,
        "AccessDeniedException",
    );
    assert!(
        e.message.contains(&format!(
            ":user/{id} is not authorized to perform: dynamodb:DeleteItem on resource: "
        )),
        "{}",
        e.message
    );
    assert!(
        e.message
            .ends_with("with an explicit deny in an identity-based policy"),
        "{}",
        e.message
    );
    assert!(must_get(&admin, "orders", key("a")).await.is_some());

    // set-policy replaces the policy at once; removing it restores full access.
    set_policy(
        &node,
        &id,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:DeleteItem","Resource":"*"}]}"#,
    );
    eventually(|| async {
        user.delete_item()
            .table_name("orders")
            .set_key(Some(key("a")))
            .send()
            .await
            .is_ok()
    })
    .await;
    assert_code(user.list_tables().send().await, "AccessDeniedException");
    let (ok, out, err) = keys(&node, &["set-policy", &id, "--remove"]);
    assert!(ok && out.contains("policy of"), "{out}{err}");
    eventually(|| async { user.list_tables().send().await.is_ok() }).await;
    let (_, listed, _) = keys(&node, &["list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&id) && !l.contains("policy")),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_policies_are_refused_when_set() {
    let node = start().await;
    for (policy, why) in [
        ("not json", "not valid JSON"),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*"}]}"#,
            "Resource",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}]}"#,
            "DateLessThan",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"dynamodb:LeadingKeys":"x"}}}]}"#,
            "ForAllValues",
        ),
    ] {
        let file = policy_file(&node, "bad", policy);
        let (ok, _, err) = keys(&node, &["create", "--policy", &file]);
        assert!(!ok, "accepted: {policy}");
        assert!(err.contains(why), "{policy}: {err}");
    }
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"arn:aws:dynamodb:*:*:table/{}"}}]}}"#,
        "x".repeat(7000)
    );
    let file = policy_file(&node, "big", &big);
    let (ok, _, err) = keys(&node, &["create", "--policy", &file]);
    assert!(!ok && err.contains("6144"), "{err}");
    let (ok, _, err) = keys(&node, &["set-policy", "AKIANOSUCHKEY0000000", &file]);
    assert!(!ok, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_policies_grant_and_deny_with_revision_ids() {
    let node = start().await;
    let admin = node.client();
    must_create_hash_table(&admin, "shared").await;
    must_put(&admin, "shared", item([("pk", s("a"))])).await;
    let prefix = arn_prefix(&admin, "shared").await;
    let arn = format!("{prefix}shared");
    // A key whose own policy allows only ListTables (so it is not a full-access key).
    let (id, user_secret, user) = key_with_policy(
        &node,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:ListTables","Resource":"*"}]}"#,
    )
    .await;
    let user_arn = format!("arn:aws:iam::{}:user/{id}", account_of(&prefix));
    assert_code(
        user.get_item()
            .table_name("shared")
            .set_key(Some(key("a")))
            .send()
            .await,
        "AccessDeniedException",
    );
    assert_code(
        admin.get_resource_policy().resource_arn(&arn).send().await,
        "PolicyNotFoundException",
    );

    let grant = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{user_arn}"}},"Action":"dynamodb:GetItem","Resource":"{arn}"}}]}}"#
    );
    let rev1 = admin
        .put_resource_policy()
        .resource_arn(&arn)
        .policy(&grant)
        .expected_revision_id("NO_POLICY")
        .send()
        .await
        .unwrap()
        .revision_id()
        .unwrap()
        .to_string();
    // The same document again keeps its revision.
    let again = admin
        .put_resource_policy()
        .resource_arn(&arn)
        .policy(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(again.revision_id(), Some(rev1.as_str()));
    let got = admin
        .get_resource_policy()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy(), Some(grant.as_str()));
    assert_eq!(got.revision_id(), Some(rev1.as_str()));

    // The resource policy grants what the key's own policy does not; nothing else.
    user.get_item()
        .table_name("shared")
        .set_key(Some(key("a")))
        .send()
        .await
        .unwrap();
    assert_code(
        user.put_item()
            .table_name("shared")
            .set_item(Some(key("b")))
            .send()
            .await,
        "AccessDeniedException",
    );
    // A non-admin key may not manage the policy.
    assert_code(
        user.get_resource_policy().resource_arn(&arn).send().await,
        "AccessDeniedException",
    );

    // ExpectedRevisionId must match.
    let e = assert_code(
        admin
            .put_resource_policy()
            .resource_arn(&arn)
            .policy(grant.replace("GetItem", "Query"))
            .expected_revision_id("12345")
            .send()
            .await,
        "PolicyNotFoundException",
    );
    assert!(
        e.message.contains("12345") && e.message.contains(&rev1),
        "{}",
        e.message
    );
    assert_code(
        admin
            .put_resource_policy()
            .resource_arn(&arn)
            .policy(&grant)
            .expected_revision_id("NO_POLICY")
            .send()
            .await,
        "PolicyNotFoundException",
    );
    assert_code(
        admin
            .delete_resource_policy()
            .resource_arn(&arn)
            .expected_revision_id("12345")
            .send()
            .await,
        "PolicyNotFoundException",
    );

    // A deny in the resource policy binds even keys without a policy.
    let deny = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":"*","Action":"dynamodb:DeleteItem","Resource":"{arn}"}}]}}"#
    );
    let rev2 = admin
        .put_resource_policy()
        .resource_arn(&arn)
        .policy(&deny)
        .expected_revision_id(&rev1)
        .send()
        .await
        .unwrap()
        .revision_id()
        .unwrap()
        .to_string();
    assert_ne!(rev1, rev2);
    let (_, _, full) = key_with_policy_none(&node).await;
    let e = assert_code(
        full.delete_item()
            .table_name("shared")
            .set_key(Some(key("a")))
            .send()
            .await,
        "AccessDeniedException",
    );
    assert!(
        e.message
            .ends_with("with an explicit deny in a resource-based policy"),
        "{}",
        e.message
    );
    full.get_item()
        .table_name("shared")
        .set_key(Some(key("a")))
        .send()
        .await
        .unwrap();
    // The grant is gone with the old document.
    assert_code(
        user.get_item()
            .table_name("shared")
            .set_key(Some(key("a")))
            .send()
            .await,
        "AccessDeniedException",
    );

    let deleted = admin
        .delete_resource_policy()
        .resource_arn(&arn)
        .expected_revision_id(&rev2)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.revision_id(), Some(rev2.as_str()));
    full.delete_item()
        .table_name("shared")
        .set_key(Some(key("a")))
        .send()
        .await
        .unwrap();
    // Idempotent without ExpectedRevisionId.
    admin
        .delete_resource_policy()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_code(
        admin.get_resource_policy().resource_arn(&arn).send().await,
        "PolicyNotFoundException",
    );

    // Invalid documents are refused.
    assert_validation(
        admin.put_resource_policy().resource_arn(&arn).policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#).send().await,
        "Principal",
    );
    // A stream's own policy: it governs the stream (not the table's), with its own revisions.
    let stream_arn = admin
        .update_table()
        .table_name("shared")
        .stream_specification(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::KeysOnly)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .table_description
        .unwrap()
        .latest_stream_arn
        .unwrap();
    let user_streams = streams_client_for(&node.endpoint(), &id, &user_secret);
    let describe = || {
        user_streams
            .describe_stream()
            .stream_arn(&stream_arn)
            .send()
    };
    assert_code(describe().await, "AccessDeniedException");
    let read_grant = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{user_arn}"}},"Action":["dynamodb:DescribeStream","dynamodb:GetShardIterator","dynamodb:GetRecords"],"Resource":"{stream_arn}"}}]}}"#
    );
    let stream_rev = admin
        .put_resource_policy()
        .resource_arn(&stream_arn)
        .policy(&read_grant)
        .expected_revision_id("NO_POLICY")
        .send()
        .await
        .unwrap()
        .revision_id()
        .unwrap()
        .to_string();
    let shards = describe()
        .await
        .unwrap()
        .stream_description
        .unwrap()
        .shards
        .unwrap_or_default();
    let iterator = user_streams
        .get_shard_iterator()
        .stream_arn(&stream_arn)
        .shard_id(shards[0].shard_id().unwrap())
        .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    user_streams
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .unwrap();
    // The stream's policy grants nothing on the table, and the table has none of its own.
    assert_code(
        user.get_item()
            .table_name("shared")
            .set_key(Some(key("a")))
            .send()
            .await,
        "AccessDeniedException",
    );
    assert_code(
        admin.get_resource_policy().resource_arn(&arn).send().await,
        "PolicyNotFoundException",
    );
    let got = admin
        .get_resource_policy()
        .resource_arn(&stream_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy(), Some(read_grant.as_str()));
    assert_eq!(got.revision_id(), Some(stream_rev.as_str()));
    admin
        .delete_resource_policy()
        .resource_arn(&stream_arn)
        .expected_revision_id(&stream_rev)
        .send()
        .await
        .unwrap();
    assert_code(describe().await, "AccessDeniedException");
    assert_code(
        admin
            .get_resource_policy()
            .resource_arn(format!("{arn}/stream/2024-01-01T00:00:00.000"))
            .send()
            .await,
        "ResourceNotFoundException",
    );

    // CreateTable's ResourcePolicy, and the PutResourcePolicy permission it needs.
    let created = admin
        .create_table()
        .table_name("born-shared")
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(attr_def(
            "pk",
            aws_sdk_dynamodb::types::ScalarAttributeType::S,
        ))
        .key_schema(key_elem("pk", aws_sdk_dynamodb::types::KeyType::Hash))
        .resource_policy(grant.replace("/shared", "/born-shared"))
        .send()
        .await;
    created.unwrap();
    must_wait_active(&admin, "born-shared").await;
    must_put(&admin, "born-shared", key("a")).await;
    user.get_item()
        .table_name("born-shared")
        .set_key(Some(key("a")))
        .send()
        .await
        .unwrap();
    let got = admin
        .get_resource_policy()
        .resource_arn(format!("{prefix}born-shared"))
        .send()
        .await
        .unwrap();
    assert!(got.revision_id().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_read_the_request_the_table_and_the_client() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
        ProjectionType, PutRequest, ScalarAttributeType, Tag, WriteRequest,
    };
    let node = start().await;
    let admin = node.client();
    admin
        .create_table()
        .table_name("profiles")
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("city")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_city")
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("city")
                        .key_type(KeyType::Hash)
                        .build()
                        .unwrap(),
                )
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .tags(Tag::builder().key("team").value("blue").build().unwrap())
        .send()
        .await
        .unwrap();
    must_wait_active(&admin, "profiles").await;
    must_put(
        &admin,
        "profiles",
        item([
            ("pk", s("u-1")),
            ("name", s("Ann")),
            ("city", s("Oslo")),
            ("secret", s("x")),
        ]),
    )
    .await;
    let table_arn = format!("{}profiles", arn_prefix(&admin, "profiles").await);
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "{table_arn}",
              "Condition": {{"ForAllValues:StringEquals": {{"dynamodb:Attributes": ["pk", "name"]}},
                             "StringEquals": {{"dynamodb:Select": "SPECIFIC_ATTRIBUTES", "aws:ResourceTag/team": "blue"}}}}}},
            {{"Effect": "Allow", "Action": "dynamodb:Query", "Resource": "{table_arn}/index/by_city"}},
            {{"Effect": "Allow", "Action": "dynamodb:BatchWriteItem", "Resource": "{table_arn}",
              "Condition": {{"ForAllValues:StringLike": {{"dynamodb:LeadingKeys": "u-*"}}}}}},
            {{"Effect": "Deny", "Action": "*", "Resource": "*",
              "Condition": {{"NotIpAddress": {{"aws:SourceIp": ["127.0.0.0/8", "::1"]}}}}}}
        ]}}"#
    );
    let (id, secret, user) = key_with_policy(&node, &policy).await;
    // A `null` projection is no projection (the operation reads it so): Select is ALL_ATTRIBUTES.
    let addr = node.addr();
    let raw = RawRequest::dynamodb(
        addr,
        "GetItem",
        r#"{"TableName":"profiles","Key":{"pk":{"S":"u-1"}},"ProjectionExpression":null}"#,
    )
    .signed(&Signing::new(&id, &secret))
    .send(addr)
    .await;
    assert_eq!(
        raw.error_type().as_deref(),
        Some("AccessDeniedException"),
        "{}",
        raw.text()
    );
    let get = |projection: Option<&str>| {
        let mut r = user
            .get_item()
            .table_name("profiles")
            .set_key(Some(key("u-1")));
        if let Some(p) = projection {
            r = r.projection_expression(p);
        }
        r.send()
    };
    let ok = user
        .get_item()
        .table_name("profiles")
        .set_key(Some(key("u-1")))
        .projection_expression("pk, #n")
        .expression_attribute_names("#n", "name")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.item().unwrap().len(), 2);
    // No projection: Select is ALL_ATTRIBUTES.
    assert_code(get(None).await, "AccessDeniedException");
    // An attribute the policy does not list.
    assert_code(get(Some("pk, secret")).await, "AccessDeniedException");
    // The index, named by its own ARN; a Scan of it is another action.
    let q = user
        .query()
        .table_name("profiles")
        .index_name("by_city")
        .key_condition_expression("city = :c")
        .expression_attribute_values(":c", s("Oslo"))
        .send()
        .await
        .unwrap();
    assert_eq!(q.count(), 1);
    let e = assert_code(
        user.scan()
            .table_name("profiles")
            .index_name("by_city")
            .send()
            .await,
        "AccessDeniedException",
    );
    assert!(
        e.message
            .contains(&format!("on resource: {table_arn}/index/by_city ")),
        "{}",
        e.message
    );
    // BatchWriteItem: every partition key must match u-*.
    let put = |pk: &str| {
        WriteRequest::builder()
            .put_request(
                PutRequest::builder()
                    .set_item(Some(key(pk)))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    user.batch_write_item()
        .request_items("profiles", vec![put("u-2"), put("u-3")])
        .send()
        .await
        .unwrap();
    assert_code(
        user.batch_write_item()
            .request_items("profiles", vec![put("u-4"), put("x-1")])
            .send()
            .await,
        "AccessDeniedException",
    );
    assert!(must_get(&admin, "profiles", key("u-4")).await.is_none());
    // The table's tags are read at each request.
    admin
        .untag_resource()
        .resource_arn(&table_arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    assert_code(
        user.get_item()
            .table_name("profiles")
            .set_key(Some(key("u-1")))
            .projection_expression("pk")
            .send()
            .await,
        "AccessDeniedException",
    );
    // aws:SourceIp: this client is on loopback.
    set_policy(
        &node,
        &id,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
            {"Effect":"Deny","Action":"dynamodb:ListTables","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":["127.0.0.0/8","::1/128"]}}}]}"#,
    );
    eventually(|| async { user.list_tables().send().await.is_err() }).await;
    let e = assert_code(user.list_tables().send().await, "AccessDeniedException");
    assert!(
        e.message.contains("table/*")
            && e.message
                .ends_with("explicit deny in an identity-based policy"),
        "{}",
        e.message
    );
    user.describe_table()
        .table_name("profiles")
        .send()
        .await
        .unwrap();
}

/// A key without a policy (full access).
async fn key_with_policy_none(node: &ProcessNode) -> (String, String, Client) {
    let (ok, out, err) = keys(node, &["create"]);
    assert!(ok, "{err}");
    let (id, secret) = parse_printed_key(&out).unwrap();
    let client = node.client_with_key(&id, &secret);
    eventually(|| async { client.list_tables().send().await.is_ok() }).await;
    (id, secret, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_need_an_admin_key_or_a_policy() {
    let node = start().await;
    let addr = node.addr();
    let (id, secret, _) = key_with_policy_none(&node).await;
    let signing = Signing::new(&id, &secret);
    let remove = |signing: &Signing| {
        let mut req = RawRequest::post(addr, Vec::new());
        req.path = "/cluster/remove?node=999".into();
        req.signed(signing)
    };
    // A key without the admin flag and without a policy may not remove a node or read /status.
    let resp = remove(&signing).send(addr).await;
    assert_eq!(
        resp.error_type().as_deref(),
        Some("AccessDeniedException"),
        "{}",
        resp.text()
    );
    assert!(resp.text().contains("not an admin key"), "{}", resp.text());
    let resp = RawRequest::get(addr, "/status")
        .signed(&signing)
        .send(addr)
        .await;
    assert_eq!(resp.status, 403, "{}", resp.text());

    // A policy allowing shoal:RemoveNode and shoal:ReadStatus opens them.
    set_policy(
        &node,
        &id,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["shoal:RemoveNode","shoal:ReadStatus"],"Resource":"*"}]}"#,
    );
    eventually(|| async {
        RawRequest::get(addr, "/status")
            .signed(&signing)
            .send(addr)
            .await
            .status
            == 200
    })
    .await;
    let resp = remove(&signing).send(addr).await;
    // Past the authorization: the node answers about the (unknown) member itself.
    assert_ne!(
        resp.error_type().as_deref(),
        Some("AccessDeniedException"),
        "{}",
        resp.text()
    );
    // /metrics is another action.
    let resp = RawRequest::get(addr, "/metrics")
        .signed(&signing)
        .send(addr)
        .await;
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(resp.text().contains("shoal:ReadMetrics"), "{}", resp.text());
    // The admin key needs no policy.
    let resp = RawRequest::get(addr, "/metrics")
        .signed(&Signing::new(KEY_ID, SECRET))
        .send(addr)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// Polls `check` (every 100 ms, at most 5 s) until it holds.
async fn eventually<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..50 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the condition never held");
}

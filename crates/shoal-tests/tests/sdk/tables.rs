//! Table operations: CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable, tags,
//! DescribeEndpoints, DescribeLimits.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    BillingMode, KeyType, ProvisionedThroughput, ScalarAttributeType, TableStatus, Tag,
};
use shoal_tests::*;

fn throughput(read: i64, write: i64) -> ProvisionedThroughput {
    ProvisionedThroughput::builder()
        .read_capacity_units(read)
        .write_capacity_units(write)
        .build()
        .unwrap()
}

/// A CreateTable request for `name` with these attribute definitions and key schema elements
/// (in order) and no billing mode.
fn create_req(
    client: &Client,
    name: &str,
    defs: &[(&str, ScalarAttributeType)],
    keys: &[(&str, KeyType)],
) -> CreateTableFluentBuilder {
    let mut req = client.create_table().table_name(name);
    for (attr, t) in defs {
        req = req.attribute_definitions(attr_def(attr, t.clone()));
    }
    for (attr, t) in keys {
        req = req.key_schema(key_elem(attr, t.clone()));
    }
    req
}

/// [`create_req`] with `BillingMode::PayPerRequest`.
fn on_demand(
    client: &Client,
    name: &str,
    defs: &[(&str, ScalarAttributeType)],
    keys: &[(&str, KeyType)],
) -> CreateTableFluentBuilder {
    create_req(client, name, defs, keys).billing_mode(BillingMode::PayPerRequest)
}

/// [`create_req`] with `BillingMode::Provisioned`.
fn provisioned(
    client: &Client,
    name: &str,
    defs: &[(&str, ScalarAttributeType)],
    keys: &[(&str, KeyType)],
) -> CreateTableFluentBuilder {
    create_req(client, name, defs, keys).billing_mode(BillingMode::Provisioned)
}

/// [`on_demand`] with string partition key `pk`.
fn on_demand_pk(client: &Client, name: &str) -> CreateTableFluentBuilder {
    on_demand(
        client,
        name,
        &[("pk", ScalarAttributeType::S)],
        &[("pk", KeyType::Hash)],
    )
}

/// [`provisioned`] with string partition key `pk`.
fn provisioned_pk(client: &Client, name: &str) -> CreateTableFluentBuilder {
    provisioned(
        client,
        name,
        &[("pk", ScalarAttributeType::S)],
        &[("pk", KeyType::Hash)],
    )
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_with_hash_key_returns_creating_then_becomes_active() {
    let node = TestNode::start().await;
    let client = node.client();
    let out = on_demand_pk(&client, "users").send().await.unwrap();
    let desc = out.table_description.unwrap();
    assert_eq!(desc.table_name(), Some("users"));
    assert_eq!(desc.table_status(), Some(&TableStatus::Creating));
    assert_eq!(desc.key_schema(), &[key_elem("pk", KeyType::Hash)]);
    assert_eq!(
        desc.attribute_definitions(),
        &[attr_def("pk", ScalarAttributeType::S)]
    );
    let active = must_wait_active(&client, "users").await;
    assert_eq!(active.table_status(), Some(&TableStatus::Active));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_table_reports_all_fields_of_an_on_demand_table() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_table(
        &client,
        "orders",
        ("customer", ScalarAttributeType::S),
        Some(("order_no", ScalarAttributeType::N)),
    )
    .await;
    let t = client
        .describe_table()
        .table_name("orders")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(t.table_name(), Some("orders"));
    assert_eq!(
        t.key_schema(),
        &[
            key_elem("customer", KeyType::Hash),
            key_elem("order_no", KeyType::Range)
        ]
    );
    let mut defs = t.attribute_definitions().to_vec();
    defs.sort_by(|a, b| a.attribute_name().cmp(b.attribute_name()));
    assert_eq!(
        defs,
        vec![
            attr_def("customer", ScalarAttributeType::S),
            attr_def("order_no", ScalarAttributeType::N)
        ]
    );
    assert_eq!(t.table_status(), Some(&TableStatus::Active));
    let created = t.creation_date_time().expect("CreationDateTime");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (created.as_secs_f64() - now).abs() < 300.0,
        "CreationDateTime {created:?} is not close to now"
    );
    let arn = t.table_arn().expect("TableArn");
    assert!(
        arn.starts_with("arn:aws:dynamodb:us-east-1:") && arn.ends_with(":table/orders"),
        "TableArn {arn}"
    );
    let id = t.table_id().expect("TableId");
    assert_eq!(id.len(), 36, "TableId should be a UUID: {id}");
    assert_eq!(id.matches('-').count(), 4, "TableId should be a UUID: {id}");
    assert_eq!(t.item_count(), Some(0));
    assert_eq!(t.table_size_bytes(), Some(0));
    assert_eq!(
        t.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let pt = t.provisioned_throughput().expect("ProvisionedThroughput");
    assert_eq!(pt.read_capacity_units(), Some(0));
    assert_eq!(pt.write_capacity_units(), Some(0));
    assert_eq!(pt.number_of_decreases_today(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_with_provisioned_throughput_reports_it() {
    let node = TestNode::start().await;
    let client = node.client();
    provisioned(
        &client,
        "prov",
        &[("id", ScalarAttributeType::N)],
        &[("id", KeyType::Hash)],
    )
    .provisioned_throughput(throughput(5, 7))
    .send()
    .await
    .unwrap();
    let t = must_wait_active(&client, "prov").await;
    let pt = t.provisioned_throughput().expect("ProvisionedThroughput");
    assert_eq!(pt.read_capacity_units(), Some(5));
    assert_eq!(pt.write_capacity_units(), Some(7));
    if let Some(summary) = t.billing_mode_summary() {
        assert_eq!(summary.billing_mode(), Some(&BillingMode::Provisioned));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_without_billing_mode_defaults_to_provisioned() {
    let node = TestNode::start().await;
    let client = node.client();
    create_req(
        &client,
        "legacy",
        &[("id", ScalarAttributeType::S)],
        &[("id", KeyType::Hash)],
    )
    .provisioned_throughput(throughput(1, 1))
    .send()
    .await
    .unwrap();
    let t = must_wait_active(&client, "legacy").await;
    let pt = t.provisioned_throughput().unwrap();
    assert_eq!(pt.read_capacity_units(), Some(1));
    assert_eq!(pt.write_capacity_units(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_accepts_string_number_and_binary_keys() {
    let node = TestNode::start().await;
    let client = node.client();
    for (name, t) in [
        ("s_keys", ScalarAttributeType::S),
        ("n_keys", ScalarAttributeType::N),
        ("b_keys", ScalarAttributeType::B),
    ] {
        let desc = must_create_table(&client, name, ("h", t.clone()), Some(("r", t.clone()))).await;
        assert_eq!(desc.attribute_definitions().len(), 2);
        assert!(
            desc.attribute_definitions()
                .iter()
                .all(|d| d.attribute_type() == &t)
        );
    }
    must_put(&client, "s_keys", item([("h", s("a")), ("r", s("b"))])).await;
    must_put(&client, "n_keys", item([("h", n("1")), ("r", n("-2.5"))])).await;
    must_put(
        &client,
        "b_keys",
        item([("h", b(vec![0u8, 1])), ("r", b(vec![255u8]))]),
    )
    .await;
    assert!(
        must_get(&client, "n_keys", item([("h", n("1")), ("r", n("-2.5"))]))
            .await
            .is_some()
    );
    assert!(
        must_get(
            &client,
            "b_keys",
            item([("h", b(vec![0u8, 1])), ("r", b(vec![255u8]))])
        )
        .await
        .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_twice_is_resource_in_use() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "dup").await;
    let r = on_demand_pk(&client, "dup").send().await;
    assert_code(r, "ResourceInUseException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_rejects_invalid_names() {
    let node = TestNode::start().await;
    let client = node.client();
    let long = "t".repeat(256);
    for name in ["ab", "bad name!", "has/slash", long.as_str()] {
        let r = on_demand_pk(&client, name).send().await;
        assert_code(r, "ValidationException");
    }
    // 255 characters and the full character set are fine.
    let max = "a".repeat(255);
    for name in [max.as_str(), "Az09_.-x"] {
        on_demand_pk(&client, name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateTable {name}: {e:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_rejects_key_attribute_missing_from_definitions() {
    let node = TestNode::start().await;
    let r = on_demand(
        &node.client(),
        "bad",
        &[("other", ScalarAttributeType::S)],
        &[("pk", KeyType::Hash)],
    )
    .send()
    .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_rejects_unused_attribute_definitions() {
    let node = TestNode::start().await;
    let r = on_demand(
        &node.client(),
        "bad",
        &[
            ("pk", ScalarAttributeType::S),
            ("unused", ScalarAttributeType::S),
        ],
        &[("pk", KeyType::Hash)],
    )
    .send()
    .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_rejects_two_hash_keys_or_range_without_hash() {
    let node = TestNode::start().await;
    let client = node.client();
    let two_hash = on_demand(
        &client,
        "bad",
        &[("a", ScalarAttributeType::S), ("b", ScalarAttributeType::S)],
        &[("a", KeyType::Hash), ("b", KeyType::Hash)],
    )
    .send()
    .await;
    assert_code(two_hash, "ValidationException");
    let range_only = on_demand(
        &client,
        "bad",
        &[("a", ScalarAttributeType::S)],
        &[("a", KeyType::Range)],
    )
    .send()
    .await;
    assert_code(range_only, "ValidationException");
    let range_first = on_demand(
        &client,
        "bad",
        &[("a", ScalarAttributeType::S), ("b", ScalarAttributeType::S)],
        &[("a", KeyType::Range), ("b", KeyType::Hash)],
    )
    .send()
    .await;
    assert_code(range_first, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_rejects_non_scalar_key_type() {
    let node = TestNode::start().await;
    let r = on_demand(
        &node.client(),
        "bad",
        &[("pk", ScalarAttributeType::from("BOOL"))],
        &[("pk", KeyType::Hash)],
    )
    .send()
    .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_checks_billing_mode_against_throughput() {
    let node = TestNode::start().await;
    let client = node.client();
    let provisioned_without = provisioned_pk(&client, "bad").send().await;
    assert_code(provisioned_without, "ValidationException");
    let on_demand_with = on_demand_pk(&client, "bad")
        .provisioned_throughput(throughput(5, 5))
        .send()
        .await;
    assert_code(on_demand_with, "ValidationException");
    let zero = provisioned_pk(&client, "bad")
        .provisioned_throughput(throughput(0, 5))
        .send()
        .await;
    assert_code(zero, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_unknown_table_is_resource_not_found() {
    let node = TestNode::start().await;
    let r = node
        .client()
        .describe_table()
        .table_name("nope")
        .send()
        .await;
    let err = assert_code(r, "ResourceNotFoundException");
    assert!(
        err.message.starts_with("Requested resource not found"),
        "message {:?}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_tables_returns_names_in_order() {
    let node = TestNode::start().await;
    let client = node.client();
    let empty = client.list_tables().send().await.unwrap();
    assert_eq!(empty.table_names(), &[] as &[String]);
    assert_eq!(empty.last_evaluated_table_name(), None);
    for name in ["charlie", "alpha", "bravo"] {
        must_create_hash_table(&client, name).await;
    }
    let out = client.list_tables().send().await.unwrap();
    assert_eq!(out.table_names(), &["alpha", "bravo", "charlie"]);
    assert_eq!(out.last_evaluated_table_name(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_tables_pages_with_limit_and_exclusive_start() {
    let node = TestNode::start().await;
    let client = node.client();
    for name in ["t1_a", "t2_b", "t3_c", "t4_d", "t5_e"] {
        must_create_hash_table(&client, name).await;
    }
    let p1 = client.list_tables().limit(2).send().await.unwrap();
    assert_eq!(p1.table_names(), &["t1_a", "t2_b"]);
    assert_eq!(p1.last_evaluated_table_name(), Some("t2_b"));
    let p2 = client
        .list_tables()
        .limit(2)
        .exclusive_start_table_name("t2_b")
        .send()
        .await
        .unwrap();
    assert_eq!(p2.table_names(), &["t3_c", "t4_d"]);
    assert_eq!(p2.last_evaluated_table_name(), Some("t4_d"));
    let p3 = client
        .list_tables()
        .limit(2)
        .exclusive_start_table_name("t4_d")
        .send()
        .await
        .unwrap();
    assert_eq!(p3.table_names(), &["t5_e"]);
    assert_eq!(p3.last_evaluated_table_name(), None);
    // The start name need not exist: listing resumes after it in order.
    let p = client
        .list_tables()
        .exclusive_start_table_name("t3_")
        .send()
        .await
        .unwrap();
    assert_eq!(p.table_names(), &["t3_c", "t4_d", "t5_e"]);
    assert_eq!(must_list_all_tables(&client).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_tables_rejects_limit_out_of_range() {
    let node = TestNode::start().await;
    let client = node.client();
    assert_code(
        client.list_tables().limit(0).send().await,
        "ValidationException",
    );
    assert_code(
        client.list_tables().limit(101).send().await,
        "ValidationException",
    );
}

/// The error code and HTTP status of a failed call (`None` for a success).
fn outcome<T: std::fmt::Debug, E>(
    r: Result<
        T,
        aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    >,
) -> Option<(String, Option<u16>)>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match r {
        Ok(_) => None,
        Err(e) => {
            let err = api_error(Err::<T, _>(e));
            Some((err.code, err.status))
        }
    }
}

/// Regression: a CreateTable and a DeleteTable racing on one name answered 500 (the create
/// waited for a table the delete had already dropped). Either side may win; the loser gets
/// `ResourceInUseException` (or `ResourceNotFoundException` for a delete that came first),
/// never `InternalServerError`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_delete_racing_on_one_name_never_answer_500() {
    let node = TestNode::start().await;
    let client = node.client();
    for round in 0..25 {
        let (created, deleted) = tokio::join!(on_demand_pk(&client, "racer").send(), async {
            // Give the create a head start of a few ms in some rounds, none in others.
            tokio::time::sleep(Duration::from_millis(round % 5)).await;
            client.delete_table().table_name("racer").send().await
        });
        if let Some((code, status)) = outcome(created) {
            assert_eq!(
                (code.as_str(), status),
                ("ResourceInUseException", Some(400)),
                "CreateTable in round {round}"
            );
        }
        if let Some((code, status)) = outcome(deleted) {
            assert!(
                matches!(
                    code.as_str(),
                    "ResourceInUseException" | "ResourceNotFoundException"
                ) && status == Some(400),
                "DeleteTable in round {round}: {code} {status:?}"
            );
        }
        // Whatever is left goes before the next round.
        let _ = client.delete_table().table_name("racer").send().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while client
            .describe_table()
            .table_name("racer")
            .send()
            .await
            .is_ok()
        {
            assert!(Instant::now() < deadline, "racer not deleted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// DeleteTable's description has DynamoDB's shape (the API model's example): name, status,
/// throughput without history, size and count; not DescribeTable's key schema or dates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_table_description_has_dynamodb_shape() {
    let node = TestNode::start().await;
    let req = node.signed_request(
        "CreateTable",
        &serde_json::json!({
            "TableName": "shape",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        }),
    );
    assert_eq!(req.send(node.addr()).await.status, 200);
    must_put(&node.client(), "shape", item([("pk", s("x"))])).await;
    let resp = node
        .signed_request("DeleteTable", &serde_json::json!({"TableName": "shape"}))
        .send(node.addr())
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let desc = &resp.json()["TableDescription"];
    assert_eq!(desc["TableName"], "shape");
    assert_eq!(desc["TableStatus"], "DELETING");
    assert_eq!(
        desc["ProvisionedThroughput"],
        serde_json::json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
    );
    assert_eq!(desc["ItemCount"], 1);
    assert!(desc["TableSizeBytes"].as_u64().is_some_and(|n| n > 0));
    assert!(
        desc["TableArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":table/shape"))
    );
    for absent in [
        "KeySchema",
        "AttributeDefinitions",
        "CreationDateTime",
        "DeletionProtectionEnabled",
    ] {
        assert!(desc.get(absent).is_none(), "{absent} in {desc}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_table_returns_description_then_table_is_gone() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "doomed").await;
    must_put(&client, "doomed", item([("pk", s("x"))])).await;
    let out = client
        .delete_table()
        .table_name("doomed")
        .send()
        .await
        .unwrap();
    let desc = out.table_description.unwrap();
    assert_eq!(desc.table_name(), Some("doomed"));
    assert_eq!(desc.table_status(), Some(&TableStatus::Deleting));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.describe_table().table_name("doomed").send().await {
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            r => {
                assert_code(r, "ResourceNotFoundException");
                break;
            }
        }
    }
    assert!(
        !must_list_all_tables(&client)
            .await
            .contains(&"doomed".to_string())
    );
    let r = client
        .get_item()
        .table_name("doomed")
        .key("pk", s("x"))
        .send()
        .await;
    assert_code(r, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_table_can_be_recreated_empty() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "again").await;
    must_put(&client, "again", item([("pk", s("old"))])).await;
    client
        .delete_table()
        .table_name("again")
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = on_demand_pk(&client, "again").send().await;
        match r {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("recreate: {e:?}"),
        }
    }
    must_wait_active(&client, "again").await;
    assert_eq!(
        must_get(&client, "again", item([("pk", s("old"))])).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_unknown_table_is_resource_not_found() {
    let node = TestNode::start().await;
    let r = node.client().delete_table().table_name("nope").send().await;
    let err = assert_code(r, "ResourceNotFoundException");
    assert!(err.message.starts_with("Requested resource not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_table_switches_on_demand_to_provisioned_and_back() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "switch").await;
    let out = client
        .update_table()
        .table_name("switch")
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(throughput(4, 6))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.table_description().and_then(|d| d.table_name()),
        Some("switch")
    );
    let t = must_wait_active(&client, "switch").await;
    assert_eq!(
        t.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::Provisioned)
    );
    let pt = t.provisioned_throughput().unwrap();
    assert_eq!(pt.read_capacity_units(), Some(4));
    assert_eq!(pt.write_capacity_units(), Some(6));

    client
        .update_table()
        .table_name("switch")
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let t = must_wait_active(&client, "switch").await;
    assert_eq!(
        t.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_table_changes_provisioned_throughput() {
    let node = TestNode::start().await;
    let client = node.client();
    provisioned_pk(&client, "tbl_tp")
        .provisioned_throughput(throughput(5, 5))
        .send()
        .await
        .unwrap();
    must_wait_active(&client, "tbl_tp").await;
    client
        .update_table()
        .table_name("tbl_tp")
        .provisioned_throughput(throughput(10, 20))
        .send()
        .await
        .unwrap();
    let t = must_wait_active(&client, "tbl_tp").await;
    let pt = t.provisioned_throughput().unwrap();
    assert_eq!(pt.read_capacity_units(), Some(10));
    assert_eq!(pt.write_capacity_units(), Some(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_table_to_provisioned_without_throughput_is_rejected() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "tbl").await;
    let r = client
        .update_table()
        .table_name("tbl")
        .billing_mode(BillingMode::Provisioned)
        .send()
        .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_unknown_table_is_resource_not_found() {
    let node = TestNode::start().await;
    let r = node
        .client()
        .update_table()
        .table_name("nope")
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    assert_code(r, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_given_at_creation_are_listed() {
    let node = TestNode::start().await;
    let client = node.client();
    let out = on_demand_pk(&client, "tagged")
        .tags(tag("env", "test"))
        .tags(tag("team", "db"))
        .send()
        .await
        .unwrap();
    let arn = out.table_description.unwrap().table_arn.unwrap();
    must_wait_active(&client, "tagged").await;
    let mut tags = client
        .list_tags_of_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default();
    tags.sort_by(|a, b| a.key().cmp(b.key()));
    assert_eq!(tags, vec![tag("env", "test"), tag("team", "db")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_and_untag_resource_update_the_tag_list() {
    let node = TestNode::start().await;
    let client = node.client();
    let arn = must_create_hash_table(&client, "tbl")
        .await
        .table_arn
        .unwrap();
    let none = client
        .list_tags_of_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert!(none.tags().is_empty());
    client
        .tag_resource()
        .resource_arn(&arn)
        .tags(tag("a", "1"))
        .tags(tag("b", "2"))
        .send()
        .await
        .unwrap();
    // Tagging an existing key replaces its value.
    client
        .tag_resource()
        .resource_arn(&arn)
        .tags(tag("a", "3"))
        .send()
        .await
        .unwrap();
    client
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("b")
        .send()
        .await
        .unwrap();
    let tags = client
        .list_tags_of_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default();
    assert_eq!(tags, vec![tag("a", "3")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_operations_on_unknown_table_are_resource_not_found() {
    let node = TestNode::start().await;
    let client = node.client();
    let arn = must_create_hash_table(&client, "real")
        .await
        .table_arn
        .unwrap();
    let missing = arn.replace(":table/real", ":table/missing");
    assert_code(
        client
            .list_tags_of_resource()
            .resource_arn(&missing)
            .send()
            .await,
        "ResourceNotFoundException",
    );
    assert_code(
        client
            .tag_resource()
            .resource_arn(&missing)
            .tags(tag("a", "1"))
            .send()
            .await,
        "ResourceNotFoundException",
    );
    assert_code(
        client
            .untag_resource()
            .resource_arn(&missing)
            .tag_keys("a")
            .send()
            .await,
        "ResourceNotFoundException",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_endpoints_returns_a_cacheable_endpoint() {
    let node = TestNode::start().await;
    let out = node.client().describe_endpoints().send().await.unwrap();
    let eps = out.endpoints();
    assert!(!eps.is_empty());
    assert!(!eps[0].address().is_empty());
    assert_eq!(eps[0].cache_period_in_minutes(), 1440);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_limits_returns_dynamodb_default_quotas() {
    let node = TestNode::start().await;
    let out = node.client().describe_limits().send().await.unwrap();
    assert_eq!(out.account_max_read_capacity_units(), Some(80000));
    assert_eq!(out.account_max_write_capacity_units(), Some(80000));
    assert_eq!(out.table_max_read_capacity_units(), Some(40000));
    assert_eq!(out.table_max_write_capacity_units(), Some(40000));
}

/// Model members Shoal does not implement are refused by name, never ignored: nothing is created
/// or changed. (`OnDemandThroughput`, `WarmThroughput` and `StreamSpecification` are
/// implemented: see `throughput_settings.rs` and `streams.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unimplemented_table_members_are_refused_not_ignored() {
    use aws_sdk_dynamodb::types::ReplicationGroupUpdate;
    let node = TestNode::start().await;
    let client = node.client();
    let r = on_demand_pk(&client, "global_tbl")
        .global_table_source_arn("arn:aws:dynamodb:us-east-1:000000000000:table/src")
        .send()
        .await;
    assert_validation(
        r,
        "GlobalTableSourceArn is not supported by this version of Shoal",
    );
    assert!(must_list_all_tables(&client).await.is_empty());

    on_demand_pk(&client, "plain_tbl").send().await.unwrap();
    must_wait_active(&client, "plain_tbl").await;
    let r = client
        .update_table()
        .table_name("plain_tbl")
        .replica_updates(ReplicationGroupUpdate::builder().build())
        .send()
        .await;
    assert_validation(
        r,
        "ReplicaUpdates is not supported by this version of Shoal",
    );
}

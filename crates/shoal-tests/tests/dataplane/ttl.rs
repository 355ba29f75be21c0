//! Time to Live: UpdateTimeToLive / DescribeTimeToLive with DynamoDB's validation, and expired
//! items deleted by the partition leaders (the test nodes sweep every second), with their
//! global index entries; items without the attribute, with a non-number, with a future or a
//! more than five years old expiry stay. The REMOVE records of TTL deletes in the table's
//! stream name the service (`userIdentity`); a client's delete does not.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use shoal_tests::*;

const T: &str = "ttl_items";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn spec(enabled: bool, attr: &str) -> TimeToLiveSpecification {
    TimeToLiveSpecification::builder()
        .enabled(enabled)
        .attribute_name(attr)
        .build()
        .unwrap()
}

async fn status(client: &Client, table: &str) -> (TimeToLiveStatus, Option<String>) {
    let d = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)))
        .time_to_live_description
        .unwrap();
    (d.time_to_live_status.unwrap(), d.attribute_name)
}

/// Waits (10 s at most) for DescribeTimeToLive to say `want`.
async fn wait_status(client: &Client, want: TimeToLiveStatus, attr: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = status(client, T).await;
        if now.0 == want && now.1.as_deref() == attr {
            return;
        }
        assert!(Instant::now() < deadline, "still {now:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_and_describe_time_to_live() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, T).await;
    assert_eq!(status(&client, T).await, (TimeToLiveStatus::Disabled, None));
    let out = client
        .update_time_to_live()
        .table_name(T)
        .time_to_live_specification(spec(true, "expires"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    let echoed = out.time_to_live_specification.unwrap();
    assert!(echoed.enabled);
    assert_eq!(echoed.attribute_name, "expires");
    // ENABLING until every partition has built its expiry index (within a sweep), then ENABLED.
    let first = status(&client, T).await;
    assert!(
        matches!(
            first.0,
            TimeToLiveStatus::Enabling | TimeToLiveStatus::Enabled
        ) && first.1.as_deref() == Some("expires"),
        "{first:?}"
    );
    wait_status(&client, TimeToLiveStatus::Enabled, Some("expires")).await;
    assert_validation(
        client
            .update_time_to_live()
            .table_name(T)
            .time_to_live_specification(spec(true, "other"))
            .send()
            .await,
        "TimeToLive is already enabled",
    );
    assert_validation(
        client
            .update_time_to_live()
            .table_name(T)
            .time_to_live_specification(spec(false, "other"))
            .send()
            .await,
        "TimeToLive is active on a different AttributeName: current AttributeName is expires",
    );
    client
        .update_time_to_live()
        .table_name(T)
        .time_to_live_specification(spec(false, "expires"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    let first = status(&client, T).await;
    assert!(
        matches!(
            first.0,
            TimeToLiveStatus::Disabling | TimeToLiveStatus::Disabled
        ),
        "{first:?}"
    );
    wait_status(&client, TimeToLiveStatus::Disabled, None).await;
    assert_validation(
        client
            .update_time_to_live()
            .table_name(T)
            .time_to_live_specification(spec(false, "expires"))
            .send()
            .await,
        "TimeToLive is already disabled",
    );
    assert_validation(
        client
            .update_time_to_live()
            .table_name(T)
            .time_to_live_specification(spec(true, ""))
            .send()
            .await,
        "Member must have length greater than or equal to 1",
    );
    assert_code(
        client
            .update_time_to_live()
            .table_name("no_such_table")
            .time_to_live_specification(spec(true, "expires"))
            .send()
            .await,
        "ResourceNotFoundException",
    );
    assert_code(
        client
            .describe_time_to_live()
            .table_name("no_such_table")
            .send()
            .await,
        "ResourceNotFoundException",
    );
}

async fn gsi_keys(client: &Client) -> Vec<String> {
    let out = client
        .query()
        .table_name(T)
        .index_name("by_group")
        .key_condition_expression("grp = :g")
        .expression_attribute_values(":g", s("g"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    let mut keys: Vec<String> = out
        .items()
        .iter()
        .map(|i| i["pk"].as_s().unwrap().clone())
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_items_are_deleted_with_their_index_entries() {
    let node = TestNode::start().await;
    let client = node.client();
    client
        .create_table()
        .table_name(T)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("grp")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(key_elem("pk", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_group")
                .key_schema(key_elem("grp", KeyType::Hash))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    must_wait_active(&client, T).await;
    let t = now();
    let put = |pk: &str, exp: Option<aws_sdk_dynamodb::types::AttributeValue>| {
        let mut it = item([("pk", s(pk)), ("grp", s("g"))]);
        if let Some(e) = exp {
            it.insert("exp".into(), e);
        }
        it
    };
    for it in [
        put("expired", Some(n((t - 100).to_string()))),
        put("future", Some(n((t + 3600).to_string()))),
        put("no_attr", None),
        put("string", Some(s((t - 100).to_string()))),
        put("ancient", Some(n((t - 6 * 365 * 24 * 3600).to_string()))),
    ] {
        must_put(&client, T, it).await;
    }
    client
        .update_time_to_live()
        .table_name(T)
        .time_to_live_specification(spec(true, "exp"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    // Written after TTL was enabled: kept in the index by the write itself.
    must_put(
        &client,
        T,
        put("expired_later", Some(n((t - 5).to_string()))),
    )
    .await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    loop {
        let gone = must_get(&client, T, item([("pk", s("expired"))]))
            .await
            .is_none()
            && must_get(&client, T, item([("pk", s("expired_later"))]))
                .await
                .is_none();
        if gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expired items still there after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("expired items deleted after {:?}", started.elapsed());
    for kept in ["future", "no_attr", "string", "ancient"] {
        assert!(
            must_get(&client, T, item([("pk", s(kept))]))
                .await
                .is_some(),
            "{kept} must stay"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let keys = gsi_keys(&client).await;
        if keys == ["ancient", "future", "no_attr", "string"] {
            break;
        }
        assert!(Instant::now() < deadline, "GSI still holds {keys:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A client's delete, for comparison.
    client
        .delete_item()
        .table_name(T)
        .key("pk", s("future"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    let removes = stream_removes(&node, &client).await;
    assert_eq!(
        removes,
        [
            ("expired".to_string(), true),
            ("expired_later".to_string(), true),
            ("future".to_string(), false),
        ],
        "REMOVE records (key, made by the service)"
    );
}

/// The REMOVE records of the table's stream, sorted by key: (key, whether `userIdentity` is
/// DynamoDB's service principal).
async fn stream_removes(node: &TestNode, client: &Client) -> Vec<(String, bool)> {
    use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, ShardIteratorType};
    let arn = client
        .describe_table()
        .table_name(T)
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .latest_stream_arn
        .expect("LatestStreamArn");
    let streams = node.streams_client();
    let shards = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap()
        .shards
        .unwrap_or_default();
    let mut out = Vec::new();
    for shard in shards {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id.unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(it) = iterator {
            let page = streams
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .unwrap();
            let records = page.records.unwrap_or_default();
            if records.is_empty() {
                break;
            }
            for r in records {
                if r.event_name != Some(OperationType::Remove) {
                    continue;
                }
                let key = match r.dynamodb.unwrap().keys.unwrap().get("pk") {
                    Some(AttributeValue::S(k)) => k.clone(),
                    other => panic!("key {other:?}"),
                };
                let service = r.user_identity.is_some_and(|u| {
                    u.r#type.as_deref() == Some("Service")
                        && u.principal_id.as_deref() == Some("dynamodb.amazonaws.com")
                });
                out.push((key, service));
            }
            iterator = page.next_shard_iterator;
        }
    }
    out.sort();
    out
}

/// The local secondary index entries of expired items go with them (same partition, same
/// apply as the TTL delete).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_items_leave_their_local_index() {
    use aws_sdk_dynamodb::types::LocalSecondaryIndex;
    const L: &str = "ttl_lsi";
    let node = TestNode::start().await;
    let client = node.client();
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(L)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("tag"))
        .key_schema(key_elem("pk", KeyType::Hash))
        .key_schema(key_elem("sk", KeyType::Range))
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("by_tag")
                .key_schema(key_elem("pk", KeyType::Hash))
                .key_schema(key_elem("tag", KeyType::Range))
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
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    must_wait_active(&client, L).await;
    let t = now();
    for (sk, exp) in [("gone", t - 10), ("kept", t + 3600)] {
        must_put(
            &client,
            L,
            item([
                ("pk", s("p")),
                ("sk", s(sk)),
                ("tag", s(format!("t-{sk}"))),
                ("exp", n(exp.to_string())),
            ]),
        )
        .await;
    }
    client
        .update_time_to_live()
        .table_name(L)
        .time_to_live_specification(spec(true, "exp"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    let lsi_keys = || async {
        let out = client
            .query()
            .table_name(L)
            .index_name("by_tag")
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
        out.items()
            .iter()
            .map(|i| i["sk"].as_s().unwrap().clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(lsi_keys().await, ["gone", "kept"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while lsi_keys().await != ["kept"] {
        assert!(
            Instant::now() < deadline,
            "the expired item's local index entry is still there after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left = must_get(&client, L, item([("pk", s("p")), ("sk", s("gone"))])).await;
    assert!(left.is_none(), "the expired item itself is still there");
}

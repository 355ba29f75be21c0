//! Item 4: overload is answered like DynamoDB — `ThrottlingException`, which the SDKs retry with
//! backoff — never a hang or a 500.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use shoal_tests::{ADMIN_KEY_ID, ADMIN_SECRET, RawConnection};

use super::{create_table, signed, start};

/// A BatchWriteItem of 25 items of about 20 KB: slow enough that concurrent ones overlap.
fn batch(table: &str, round: usize) -> serde_json::Value {
    let requests: Vec<_> = (0..25)
        .map(|i| {
            json!({"PutRequest": {"Item": {
                "pk": {"S": format!("r{round}-{i}")},
                "blob": {"S": "x".repeat(20_000)},
            }}})
        })
        .collect();
    json!({"RequestItems": {table: requests}})
}

/// With one processing slot and no queue, 32 concurrent batch writes overlap: every one is
/// answered (no hang), each with 200 or HTTP 400 `ThrottlingException` (DynamoDB's throttling
/// error, "Rate of requests exceeds the allowed throughput."), never a 5xx; and an SDK client
/// with its standard retries gets all its writes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_answers_throttling_exception_and_sdks_retry() {
    let node = start(&[
        "--max-concurrent-requests",
        "1",
        "--max-queued-requests",
        "0",
    ])
    .await;
    create_table(&node, "tbl").await;

    let mut tasks = Vec::new();
    for round in 0..32 {
        let req = signed(&node, "BatchWriteItem", &batch("tbl", round));
        let addr = node.addr();
        tasks.push(tokio::spawn(async move {
            let mut conn = RawConnection::connect(addr).await;
            conn.write(&req.to_bytes()).await;
            conn.read_response_within(Duration::from_secs(20)).await
        }));
    }
    let (mut ok, mut throttled) = (0, 0);
    for t in tasks {
        let resp = t.await.unwrap().expect("every request is answered");
        match (resp.status, resp.error_type().as_deref()) {
            (200, _) => ok += 1,
            (400, Some("ThrottlingException")) => {
                assert_eq!(
                    resp.error_message().as_deref(),
                    Some("Rate of requests exceeds the allowed throughput.")
                );
                throttled += 1;
            }
            (status, _) => panic!("unexpected answer {status}: {}", resp.text()),
        }
    }
    assert!(ok >= 1, "nothing got through");
    assert!(
        throttled >= 1,
        "32 overlapping requests, one slot, none throttled"
    );

    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(node.endpoint())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                ADMIN_KEY_ID,
                ADMIN_SECRET,
                None,
                None,
                "hostile",
            ))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(20)
                    .with_initial_backoff(Duration::from_millis(10))
                    .with_max_backoff(Duration::from_millis(200)),
            )
            .build(),
    );
    let mut writers = Vec::new();
    for i in 0..16 {
        let client = client.clone();
        writers.push(tokio::spawn(async move {
            client
                .put_item()
                .table_name("tbl")
                .item("pk", AttributeValue::S(format!("sdk-{i}")))
                .item("blob", AttributeValue::S("y".repeat(100_000)))
                .send()
                .await
        }));
    }
    for w in writers {
        w.await
            .unwrap()
            .expect("the SDK retries throttling until the write succeeds");
    }
}

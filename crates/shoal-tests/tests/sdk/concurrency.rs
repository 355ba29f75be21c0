//! Concurrent clients: every acknowledged write lands, and conditional writes are atomic.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::types::ReturnValue;
use shoal_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_to_different_items_all_land() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "tbl").await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                must_put(
                    &client,
                    "tbl",
                    item([("pk", s(format!("w{w}-{i}"))), ("v", n(format!("{i}")))]),
                )
                .await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for w in 0..8 {
        for i in 0..25 {
            let got = must_get(&client, "tbl", item([("pk", s(format!("w{w}-{i}")))])).await;
            assert_eq!(
                got.and_then(|it| it.get("v").cloned()),
                Some(n(format!("{i}"))),
                "w{w}-{i}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_of_racing_conditional_creates_wins() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "tbl").await;
    let wins = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..16 {
        let client = client.clone();
        let wins = Arc::clone(&wins);
        tasks.push(tokio::spawn(async move {
            let r = client
                .put_item()
                .table_name("tbl")
                .item("pk", s("lock"))
                .item("owner", n(format!("{w}")))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match r {
                Ok(_) => {
                    wins.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => {
                    let err = api_error::<(), _>(Err(e));
                    assert_eq!(err.code, "ConditionalCheckFailedException", "{err:?}");
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(wins.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_read_modify_write_with_conditions_loses_no_updates() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "tbl").await;
    must_put(&client, "tbl", item([("pk", s("counter")), ("v", n("0"))])).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < 10 {
                let cur = must_get(&client, "tbl", item([("pk", s("counter"))]))
                    .await
                    .unwrap();
                let Some(aws_sdk_dynamodb::types::AttributeValue::N(v)) = cur.get("v") else {
                    panic!("counter missing: {cur:?}");
                };
                let next: u64 = v.parse::<u64>().unwrap() + 1;
                let r = client
                    .update_item()
                    .table_name("tbl")
                    .key("pk", s("counter"))
                    .update_expression("SET v = :next")
                    .condition_expression("v = :cur")
                    .expression_attribute_values(":cur", n(v.as_str()))
                    .expression_attribute_values(":next", n(next.to_string()))
                    .return_values(ReturnValue::None)
                    .send()
                    .await;
                match r {
                    Ok(_) => done += 1,
                    Err(e) => {
                        let err = api_error::<(), _>(Err(e));
                        assert_eq!(err.code, "ConditionalCheckFailedException", "{err:?}");
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = must_get(&client, "tbl", item([("pk", s("counter"))])).await;
    assert_eq!(got.and_then(|it| it.get("v").cloned()), Some(n("40")));
}

//! A Raft driver panic, injected through the debug-only failpoint, against a real process.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use shoal_cluster::{http_get, sdk_client};

use crate::support::{Proc, Spawn};

const TABLE: &str = "before-the-panic";

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

/// Creates the table and writes one item (retrying while the table is being created).
async fn write_one(node: &Proc) {
    let client = sdk_client(&node.url(""), Duration::from_secs(30));
    client
        .create_table()
        .table_name(TABLE)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
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
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable: {}", DisplayErrorContext(&e)));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let put = client
            .put_item()
            .table_name(TABLE)
            .item("pk", s("k"))
            .item("v", s("kept"))
            .send()
            .await;
        match put {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("PutItem not yet: {}", DisplayErrorContext(&e));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("PutItem: {}", DisplayErrorContext(&e)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raft_driver_panic_is_visible_then_the_node_exits_70_and_restarts_clean() {
    let _serial = crate::SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let trigger = dir.path().join("panic-now");
    let mut node = Spawn::new(dir.path(), "n")
        .env(
            "SHOAL_FAILPOINT_RAFT_PANIC_FILE",
            trigger.display().to_string(),
        )
        .start();
    node.wait_healthy().await;
    write_one(&node).await;
    assert_eq!(
        http_get(&node.url("/")).await.unwrap().0,
        200,
        "healthy before the panic"
    );

    std::fs::write(&trigger, b"").unwrap();
    let panicked_at = Instant::now();

    // /health turns 503 with the reason, well within the grace before the exit.
    let (code, body) = loop {
        let (code, body) = http_get(&node.url("/health")).await.unwrap_or_else(|e| {
            panic!(
                "GET /health failed before the node turned unhealthy: {e}\n{}",
                node.logs()
            )
        });
        if code != 200 {
            break (code, body);
        }
        assert!(
            panicked_at.elapsed() < Duration::from_secs(5),
            "/health still says ok 5 s after the driver panic\n{}",
            node.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("GET /health after the panic: {code} {body}");
    assert_eq!(code, 503, "{body}");
    assert!(
        body.starts_with("unhealthy:") && body.contains("raft driver") && body.contains("panicked"),
        "/health names what failed: {body}"
    );
    assert!(
        !body.contains("injected"),
        "the panic message stays in the log, out of unauthenticated answers: {body}"
    );
    let (code, body) = http_get(&node.url("/")).await.unwrap();
    assert_eq!(code, 503, "GET / is a health check too: {body}");

    // /status shows the failure, for this node and as its member state.
    let (code, body) = http_get(&node.url("/status")).await.unwrap();
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["health"], "failed", "{status}");
    assert_eq!(status["failure"]["component"], "raft driver", "{status}");
    assert_eq!(status["nodes"][0]["state"], "failed", "{status}");

    // A write gets a clear error the SDKs retry (500 InternalServerError), not a hang.
    let client = sdk_client(&node.url(""), Duration::from_secs(20));
    let started = Instant::now();
    let err = client
        .put_item()
        .table_name(TABLE)
        .item("pk", s("after"))
        .send()
        .await
        .expect_err("a write through a node whose Raft driver died must fail");
    let http = err.raw_response().map(|r| r.status().as_u16());
    println!(
        "PutItem after the panic ({:?}): {:?} {:?}",
        started.elapsed(),
        err.code(),
        err.message()
    );
    assert_eq!(
        err.code(),
        Some("InternalServerError"),
        "{}",
        DisplayErrorContext(&err)
    );
    assert_eq!(http, Some(500));
    assert!(
        err.message()
            .unwrap_or_default()
            .contains("Raft driver failed")
            && err.message().unwrap_or_default().contains("retry"),
        "{:?}",
        err.message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the error took {:?}",
        started.elapsed()
    );

    // Then the process exits by itself, non-zero, for its supervisor to restart it.
    let exit = node.wait_exit(Duration::from_secs(30)).await;
    println!(
        "exited {:?} after the panic: {exit:?}",
        panicked_at.elapsed()
    );
    assert_eq!(
        exit.and_then(|s| s.code()),
        Some(70),
        "a node whose Raft driver failed exits with 70\n{}",
        node.logs()
    );
    assert!(
        panicked_at.elapsed() >= Duration::from_secs(4),
        "the node exits only after its grace ({:?})",
        panicked_at.elapsed()
    );
    let log = node.stderr_text();
    assert!(
        log.contains("injected Raft driver panic"),
        "the panic message is in the log\n{}",
        node.logs()
    );

    // Restarted (without the trigger), it serves and lost nothing.
    std::fs::remove_file(&trigger).unwrap();
    let mut again = Spawn::new(dir.path(), "n");
    again.addrs = Some((node.api, node.cluster));
    let mut node = again.start();
    node.wait_healthy().await;
    let got = sdk_client(&node.url(""), Duration::from_secs(30))
        .get_item()
        .table_name(TABLE)
        .key("pk", s("k"))
        .consistent_read(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetItem after the restart: {}", DisplayErrorContext(&e)));
    assert_eq!(got.item().and_then(|i| i.get("v")), Some(&s("kept")));
    let exit = node.terminate().await;
    assert_eq!(exit.and_then(|s| s.code()), Some(0), "a clean stop exits 0");
}

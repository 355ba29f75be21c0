//! Item 2: memory before authentication, and the bound on body memory in flight.

use std::time::{Duration, SystemTime};

use serde_json::json;
use shoal_tests::{RawConnection, RawRequest, Signing};

use super::{assert_error, rss_mib, send, signed, signing, start};

const FIFTEEN_MIB: usize = 15 * 1024 * 1024;

/// The head of a 15 MiB `PutItem` whose `Authorization` is missing or wrong as `variant` says,
/// and the error type the server must answer before reading the body.
fn hostile_head(addr: std::net::SocketAddr, variant: usize) -> (Vec<u8>, &'static str) {
    let base = RawRequest::dynamodb(addr, "PutItem", Vec::new());
    let (req, expected) = match variant % 4 {
        0 => (base, "MissingAuthenticationTokenException"),
        1 => (
            base.signed(&Signing::new("AKIDNOSUCHKEY0000000", "wrong")),
            "UnrecognizedClientException",
        ),
        2 => (
            base.signed(&Signing {
                time: SystemTime::now() - Duration::from_secs(3600),
                ..signing()
            }),
            "InvalidSignatureException",
        ),
        _ => (
            base.header("authorization", "AWS4-HMAC-SHA256 Credential=x"),
            "IncompleteSignatureException",
        ),
    };
    let req = req.header("content-length", &FIFTEEN_MIB.to_string());
    (req.head_bytes(), expected)
}

/// 40 connections announce 15 MiB bodies without valid credentials and try to send them. The
/// server answers each from the head alone and closes; its memory does not grow by the bodies
/// (before the fix: +512 MiB that stayed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthenticated_bodies_are_refused_before_they_are_read() {
    let node = start(&[]).await;
    let pid = node.pid().unwrap();
    let before = rss_mib(pid);
    let body = std::sync::Arc::new(vec![b' '; FIFTEEN_MIB]);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let addr = node.addr();
        let body = std::sync::Arc::clone(&body);
        tasks.push(tokio::spawn(async move {
            let (head, expected) = hostile_head(addr, i);
            let mut conn = RawConnection::connect(addr).await;
            conn.write(&head).await;
            let resp = conn
                .read_response_within(Duration::from_secs(10))
                .await
                .unwrap_or_else(|e| panic!("connection {i}: no answer before the body: {e}"));
            // The server has answered; sending the body anyway must get nowhere.
            let _ = conn.try_write(&body).await;
            (resp, expected, conn)
        }));
    }
    let mut conns = Vec::new();
    for t in tasks {
        let (resp, expected, conn) = t.await.unwrap();
        assert_error(&resp, 400, expected);
        assert_eq!(
            resp.header("connection"),
            Some("close"),
            "{:?}",
            resp.headers
        );
        conns.push(conn);
    }
    let during = rss_mib(pid);
    drop(conns);
    assert!(
        during - before < 64.0,
        "RSS grew from {before:.0} MiB to {during:.0} MiB for 40 refused 15 MiB bodies"
    );
    let resp = send(&node, &signed(&node, "ListTables", &json!({}))).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// Bodies in flight share `--max-body-bytes-in-flight`: while one signed client holds 10 of 16
/// MiB (head sent, body stalled), another 10 MiB request is throttled (retryable), small
/// requests still pass, and once the first body arrives the memory is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn body_memory_in_flight_is_bounded() {
    let node = start(&[
        "--max-body-bytes-in-flight",
        "16777216",
        "--queue-timeout-ms",
        "300",
    ])
    .await;
    let big = |pk: &str| {
        json!({
            "TableName": "absent",
            "Item": {"pk": {"S": pk}, "blob": {"S": "x".repeat(10 * 1024 * 1024)}},
        })
    };
    let holder = signed(&node, "PutItem", &big("a"));
    let mut held = RawConnection::connect(node.addr()).await;
    held.write(&holder.head_bytes()).await;
    held.write(&holder.body[..1024]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let other = signed(&node, "PutItem", &big("b"));
    let mut conn = RawConnection::connect(node.addr()).await;
    conn.write(&other.head_bytes()).await;
    let resp = conn
        .read_response_within(Duration::from_secs(5))
        .await
        .unwrap();
    assert_error(&resp, 400, "ThrottlingException");

    let small = send(&node, &signed(&node, "ListTables", &json!({}))).await;
    assert_eq!(small.status, 200, "{}", small.text());

    held.write(&holder.body[1024..]).await;
    assert_processed(&held.read_response().await);
    assert_processed(&send(&node, &other).await);
}

/// Read and processed: refused for the missing table or the oversized item, not throttled.
fn assert_processed(resp: &shoal_tests::RawResponse) {
    assert_eq!(resp.status, 400, "{}", resp.text());
    let t = resp.error_type().unwrap_or_default();
    assert!(
        t == "ResourceNotFoundException" || t == "ValidationException",
        "{}",
        resp.text()
    );
}

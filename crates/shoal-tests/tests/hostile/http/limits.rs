//! Item 3: the connection limit and file-descriptor exhaustion.

use std::time::{Duration, Instant};

use serde_json::json;
use shoal_tests::{RawConnection, RawResponse};

use super::{assert_error, create_table, put, send, signed, start, start_with_nofile};

/// Opens `n` connections that send nothing (held open by a long header timeout).
async fn idle_connections(addr: std::net::SocketAddr, n: usize) -> Vec<RawConnection> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(RawConnection::connect(addr).await);
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(500)).await;
    out
}

/// Holds exactly `n` connections the server accepted and waits on. Connections of earlier
/// requests the server has not yet noticed closing still take slots for a moment, so a
/// connection it refused meanwhile (it answered at once) is replaced until `n` are held.
async fn held_connections(addr: std::net::SocketAddr, n: usize) -> Vec<RawConnection> {
    let started = Instant::now();
    let mut held: Vec<RawConnection> = Vec::with_capacity(n);
    while started.elapsed() < Duration::from_secs(10) {
        let missing = n - held.len();
        held.extend(idle_connections(addr, missing).await);
        let mut kept = Vec::with_capacity(n);
        for mut conn in held {
            if !conn.answered_within(Duration::from_millis(20)).await {
                kept.push(conn);
            }
        }
        held = kept;
        if held.len() == n {
            return held;
        }
    }
    panic!("could not hold {n} idle connections within 10 s");
}

/// Retries `f` until it answers 200 (connections the client closed take a moment to be
/// noticed by the server), for up to 5 s.
async fn eventually_ok<F, Fut>(what: &str, f: F) -> RawResponse
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = RawResponse>,
{
    let started = Instant::now();
    loop {
        let resp = f().await;
        if resp.status == 200 || started.elapsed() > Duration::from_secs(5) {
            assert_eq!(resp.status, 200, "{what}: {}", resp.text());
            return resp;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Past `--max-connections` a connection gets an orderly refusal — a complete HTTP 503 with a
/// retryable `ThrottlingException` body and `Connection: close` — not a hang or a reset; once
/// clients close connections, requests are served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_connection_limit_refuses_orderly() {
    let node = start(&["--max-connections", "20", "--header-timeout-ms", "60000"]).await;
    create_table(&node, "tbl").await;
    let mut held = held_connections(node.addr(), 20).await;

    let resp = put(&node, "tbl", "refused").await;
    assert_error(&resp, 503, "ThrottlingException");
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(
        resp.error_message()
            .unwrap_or_default()
            .contains("limit is 20"),
        "{}",
        resp.text()
    );

    held.truncate(15);
    eventually_ok("PutItem after 5 connections closed", || {
        put(&node, "tbl", "a")
    })
    .await;
}

/// With its descriptor limit at 256 the node lowers its connection limit (keeping a quarter of
/// the descriptors for its files): 250 idle sockets (the 1,100 against 1,024) no longer
/// starve it. A PutItem past the limit gets a clear, retryable 503 instead of silence, a
/// CreateTable never a 500, and both succeed once sockets close.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_low_descriptor_limit_degrades_into_clear_errors() {
    let (node, _wrapper) = start_with_nofile(256, &["--header-timeout-ms", "60000"]).await;
    create_table(&node, "tbl").await;
    assert!(
        node.stderr().contains("max_connections=192"),
        "expected the limit lowered to 192:\n{}",
        node.stderr()
    );
    let mut held = idle_connections(node.addr(), 250).await;

    let resp = put(&node, "tbl", "refused").await;
    assert_error(&resp, 503, "ThrottlingException");
    let create = send(
        &node,
        &signed(
            &node,
            "CreateTable",
            &json!({
                "TableName": "tbl2",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
            }),
        ),
    )
    .await;
    assert_error(&create, 503, "ThrottlingException");

    held.clear();
    eventually_ok("PutItem after the sockets closed", || {
        put(&node, "tbl", "a")
    })
    .await;
    create_table(&node, "tbl2").await;
    eventually_ok("PutItem into the new table", || put(&node, "tbl2", "b")).await;
}

/// When the process really runs out of descriptors (the reserve turned off, 128 allowed),
/// `accept()` fails with EMFILE: the server still answers each waiting client with a 503 that
/// says so, logs the cause, and serves again once sockets close.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn descriptor_exhaustion_is_answered_not_silent() {
    let (node, _wrapper) = start_with_nofile(
        128,
        &[
            "--reserved-fds",
            "0",
            "--max-connections",
            "100000",
            "--header-timeout-ms",
            "60000",
        ],
    )
    .await;
    create_table(&node, "tbl").await;
    let mut held = idle_connections(node.addr(), 140).await;

    let started = Instant::now();
    let resp = put(&node, "tbl", "refused").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_error(&resp, 503, "ThrottlingException");
    assert!(
        resp.error_message()
            .unwrap_or_default()
            .contains("out of file descriptors"),
        "{}",
        resp.text()
    );
    assert!(
        node.stderr().contains("out of file descriptors"),
        "the cause is logged:\n{}",
        node.stderr()
    );

    held.clear();
    eventually_ok("PutItem after the sockets closed", || {
        put(&node, "tbl", "a")
    })
    .await;
}

//! Item 3: slow and idle clients — header, idle and body timeouts.

use std::time::{Duration, Instant};

use serde_json::json;
use shoal_tests::{RawConnection, RawRequest};

use super::{assert_error, send, signed, start};

/// 200 connections trickle a request head one byte at a time (the old server kept all 200 open
/// after 6 s); with a 1 s header timeout every one is closed within 3 s, and so is a
/// connection that never sends a byte. The node still answers afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partial_headers_are_closed_after_the_header_timeout() {
    let node = start(&["--header-timeout-ms", "1000"]).await;
    let head =
        b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n";
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let addr = node.addr();
        tasks.push(tokio::spawn(async move {
            let mut conn = RawConnection::connect(addr).await;
            for byte in head.iter() {
                if conn.try_write(std::slice::from_ref(byte)).await.is_err() {
                    return started.elapsed();
                }
                if conn.is_closed_within(Duration::from_millis(100)).await {
                    return started.elapsed();
                }
                if started.elapsed() > Duration::from_secs(6) {
                    break;
                }
            }
            panic!(
                "a trickling connection was still open after {:?}",
                started.elapsed()
            );
        }));
    }
    let mut silent = RawConnection::connect(node.addr()).await;
    assert!(
        silent.is_closed_within(Duration::from_secs(3)).await,
        "a silent connection was not closed"
    );
    for t in tasks {
        let closed_after = t.await.unwrap();
        assert!(
            closed_after < Duration::from_secs(3),
            "closed only after {closed_after:?}"
        );
    }
    let resp = send(&node, &signed(&node, "ListTables", &json!({}))).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// A keep-alive connection that stays idle after a response is closed after the idle timeout;
/// one that keeps sending requests (each well within the timeout) stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_keep_alive_connections_are_closed() {
    let node = start(&["--idle-timeout-ms", "1000"]).await;
    let list = signed(&node, "ListTables", &json!({}));

    let mut idle = RawConnection::connect(node.addr()).await;
    assert_eq!(idle.send(&list).await.status, 200);
    let mut busy = RawConnection::connect(node.addr()).await;
    assert_eq!(busy.send(&list).await.status, 200);

    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let resp = busy.send(&signed(&node, "ListTables", &json!({}))).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    assert!(
        idle.is_closed_within(Duration::from_millis(100)).await,
        "an idle connection was still open after 2.5 s (idle timeout 1 s)"
    );
}

/// A client that sends its head, then trickles the body, is answered 408
/// `RequestTimeoutException` when the body timeout passes, and the connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trickled_body_times_out() {
    let node = start(&["--body-timeout-ms", "1000"]).await;
    let req = RawRequest::dynamodb(
        node.addr(),
        "ListTables",
        format!("{{{}}}", " ".repeat(4096)),
    )
    .signed(&super::signing());
    let mut conn = RawConnection::connect(node.addr()).await;
    conn.write(&req.head_bytes()).await;
    let started = Instant::now();
    let mut sent = 0;
    let resp = loop {
        if sent < req.body.len() {
            let _ = conn.try_write(&req.body[sent..sent + 1]).await;
            sent += 1;
        }
        if let Ok(resp) = conn.read_response_within(Duration::from_millis(200)).await {
            break resp;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no answer to a trickled body after {:?}",
            started.elapsed()
        );
    };
    assert_error(&resp, 408, "RequestTimeoutException");
    assert!(conn.is_closed_within(Duration::from_secs(2)).await);
    let resp = send(&node, &signed(&node, "ListTables", &json!({}))).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

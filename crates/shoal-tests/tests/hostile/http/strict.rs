//! Item 8: strict HTTP and JSON — request smuggling, duplicate keys, oversized heads.

use std::time::Duration;

use serde_json::json;
use shoal_tests::{RawConnection, RawRequest};

use super::{assert_error, create_table, send, signed, signing, start};

/// `Content-Length` together with `Transfer-Encoding: chunked` (in either order) is refused
/// with a 400 and the connection closed, so a request hidden in the body is never served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn content_length_with_transfer_encoding_is_refused() {
    let node = start(&[]).await;
    let smuggled = "GET /status HTTP/1.1\r\nHost: x\r\n\r\n";
    for (first, second) in [
        ("content-length: 5", "transfer-encoding: chunked"),
        ("transfer-encoding: chunked", "content-length: 5"),
    ] {
        let body = format!("0\r\n\r\n{smuggled}");
        let head = format!(
            "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-amz-json-1.0\r\n\
             x-amz-target: DynamoDB_20120810.ListTables\r\n{first}\r\n{second}\r\n\r\n",
            node.addr()
        );
        let mut conn = RawConnection::connect(node.addr()).await;
        conn.write(format!("{head}{body}").as_bytes()).await;
        let resp = conn.read_response().await;
        assert_error(&resp, 400, "SerializationException");
        assert!(
            resp.error_message()
                .unwrap_or_default()
                .contains("Transfer-Encoding"),
            "{}",
            resp.text()
        );
        assert!(
            conn.is_closed_within(Duration::from_secs(2)).await,
            "the connection must close: nothing after the refused request is served"
        );
    }
    // A signed chunked request is refused the same way (the SDKs always send Content-Length).
    let req = RawRequest::dynamodb(node.addr(), "ListTables", "{}")
        .signed(&signing())
        .header("transfer-encoding", "chunked")
        .with_body(b"2\r\n{}\r\n0\r\n\r\n".to_vec());
    assert_error(&send(&node, &req).await, 400, "SerializationException");
}

/// Duplicate JSON object keys are refused at any depth with a `SerializationException` (the
/// DynamoDB documentation does not say which duplicate would win), and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_json_keys_are_refused() {
    let node = start(&[]).await;
    create_table(&node, "tbl").await;
    let bodies = [
        r#"{"TableName":"tbl","TableName":"other","Item":{"pk":{"S":"top"}}}"#,
        r#"{"TableName":"tbl","Item":{"pk":{"S":"item"},"pk":{"S":"item2"}}}"#,
        r#"{"TableName":"tbl","Item":{"pk":{"S":"deep"},"m":{"M":{"l":{"L":[{"M":{"k":{"S":"1"},"k":{"N":"2"}}}]}}}}}"#,
        r#"{"TableName":"tbl","Item":{"pk":{"S":"value","S":"other"}}}"#,
    ];
    for body in bodies {
        let req = RawRequest::dynamodb(node.addr(), "PutItem", body).signed(&signing());
        let resp = send(&node, &req).await;
        assert_error(&resp, 400, "SerializationException");
        assert!(
            resp.error_message()
                .unwrap_or_default()
                .contains("duplicate key"),
            "{body}: {}",
            resp.text()
        );
    }
    let scan = send(&node, &signed(&node, "Scan", &json!({"TableName": "tbl"}))).await;
    assert_eq!(scan.json()["Count"], 0, "{}", scan.text());
}

/// Oversized request heads get a 400 `ValidationException` naming the limit, not a 200, a bare
/// 431 or a hang: a header over `--max-header-bytes`, a request line over it, and more than 100
/// headers. The node keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_heads_get_400() {
    let node = start(&["--max-header-bytes", "16384"]).await;
    let base = || signed(&node, "ListTables", &json!({}));
    let mut many = base();
    for i in 0..150 {
        many = many.header(&format!("x-extra-{i}"), "v");
    }
    let mut long_line = base();
    long_line.path = format!("/?{}", "a".repeat(20_000));
    let cases = [
        (
            "a 20 KB header",
            base().header("x-big", &"b".repeat(20_000)),
        ),
        ("a 20 KB request line", long_line),
        ("150 headers", many),
        (
            "a 1 MB header",
            base().header("x-huge", &"c".repeat(1024 * 1024)),
        ),
    ];
    for (what, req) in cases {
        let mut conn = RawConnection::connect(node.addr()).await;
        let _ = conn.try_write(&req.to_bytes()).await;
        let resp = conn
            .read_response_within(Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        assert_error(&resp, 400, "ValidationException");
        assert!(
            resp.error_message()
                .unwrap_or_default()
                .contains("at most 16384 bytes"),
            "{what}: {}",
            resp.text()
        );
    }
    assert_eq!(send(&node, &base()).await.status, 200);
}

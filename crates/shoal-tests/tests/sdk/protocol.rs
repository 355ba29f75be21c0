//! The wire protocol, checked with raw HTTP: targets, content types, error bodies, checksums,
//! request ids, size limits, compressed bodies, CORS, keep-alive and the health check.

use std::time::Duration;

use serde_json::json;
use shoal_tests::*;

const DDB_PREFIX: &str = "com.amazonaws.dynamodb.v20120810#";

#[track_caller]
fn assert_error(resp: &RawResponse, name: &str) {
    assert_eq!(resp.status, 400, "status; body {}", resp.text());
    assert_eq!(
        resp.error_type().as_deref(),
        Some(name),
        "error type; body {}",
        resp.text()
    );
}

#[track_caller]
fn assert_crc_and_request_id(resp: &RawResponse) {
    let crc = resp
        .header("x-amz-crc32")
        .unwrap_or_else(|| panic!("no x-amz-crc32 on {} {}", resp.status, resp.text()));
    assert_eq!(
        crc.parse::<u32>().ok(),
        Some(crc32(&resp.body)),
        "x-amz-crc32 {crc} does not match the body"
    );
    let id = resp
        .header("x-amzn-requestid")
        .unwrap_or_else(|| panic!("no x-amzn-RequestId on {} {}", resp.status, resp.text()));
    assert!(!id.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_raw_request_succeeds() {
    let node = TestNode::start().await;
    let resp = node
        .signed_request("ListTables", &json!({}))
        .send(node.addr())
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["TableNames"], json!([]));
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("application/x-amz-json-1.")),
        "content-type {:?}",
        resp.header("content-type")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_json_content_types_are_accepted() {
    let node = TestNode::start().await;
    for ct in ["application/x-amz-json-1.0", "application/x-amz-json-1.1"] {
        let req = RawRequest::post(node.addr(), "{}")
            .header("content-type", ct)
            .header("x-amz-target", "DynamoDB_20120810.ListTables")
            .signed(&node.signing());
        let resp = req.send(node.addr()).await;
        assert_eq!(resp.status, 200, "{ct}: {}", resp.text());
        assert!(resp.json().get("TableNames").is_some(), "{ct}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_and_error_responses_carry_crc32_and_request_id() {
    let node = TestNode::start().await;
    let ok = node
        .signed_request("ListTables", &json!({}))
        .send(node.addr())
        .await;
    assert_eq!(ok.status, 200);
    assert_crc_and_request_id(&ok);
    let not_found = node
        .signed_request("DescribeTable", &json!({"TableName": "nope"}))
        .send(node.addr())
        .await;
    assert_error(&not_found, "ResourceNotFoundException");
    assert_crc_and_request_id(&not_found);
    let unauthenticated = RawRequest::dynamodb(node.addr(), "ListTables", "{}")
        .send(node.addr())
        .await;
    assert_eq!(unauthenticated.status, 400);
    assert_crc_and_request_id(&unauthenticated);
    let malformed = node
        .signed_request("ListTables", &json!({}))
        .with_body("{not json");
    // Re-sign so only the JSON is wrong.
    let malformed = RawRequest::dynamodb(node.addr(), "ListTables", malformed.body)
        .signed(&node.signing())
        .send(node.addr())
        .await;
    assert_crc_and_request_id(&malformed);
}

/// DynamoDB answers every request with `Server: Server`; some clients and proxies look for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_server_header() {
    let node = TestNode::start().await;
    let ok = node
        .signed_request("ListTables", &json!({}))
        .send(node.addr())
        .await;
    let error = node
        .signed_request("DescribeTable", &json!({"TableName": "nope"}))
        .send(node.addr())
        .await;
    let unauthenticated = RawRequest::dynamodb(node.addr(), "ListTables", "{}")
        .send(node.addr())
        .await;
    let malformed = RawRequest::dynamodb(node.addr(), "ListTables", "{not json")
        .signed(&node.signing())
        .send(node.addr())
        .await;
    let health = RawRequest::get(node.addr(), "/").send(node.addr()).await;
    for (what, resp) in [
        ("success", &ok),
        ("error", &error),
        ("unauthenticated", &unauthenticated),
        ("malformed", &malformed),
        ("health", &health),
    ] {
        assert_eq!(
            resp.header("server"),
            Some("Server"),
            "{what}: {}",
            resp.status
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_unique() {
    let node = TestNode::start().await;
    let a = node
        .signed_request("ListTables", &json!({}))
        .send(node.addr())
        .await;
    let b = node
        .signed_request("ListTables", &json!({}))
        .send(node.addr())
        .await;
    assert_ne!(a.header("x-amzn-requestid"), b.header("x-amzn-requestid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modeled_errors_use_the_dynamodb_type_prefix_and_message() {
    let node = TestNode::start().await;
    let resp = node
        .signed_request("DescribeTable", &json!({"TableName": "nope"}))
        .send(node.addr())
        .await;
    assert_eq!(resp.status, 400);
    let body = resp.json();
    assert_eq!(
        body["__type"],
        json!(format!("{DDB_PREFIX}ResourceNotFoundException"))
    );
    let msg = body["message"].as_str().expect("message field");
    assert!(msg.starts_with("Requested resource not found"), "{msg}");
}

/// A body that is not JSON: `SerializationException` with no message, DynamoDB's form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_a_serialization_exception_without_a_message() {
    let node = TestNode::start().await;
    for body in [
        "{not json",
        "[1,2",
        "\"just a string",
        "{\"TableName\": }",
        "{\"TableName\": \"t\"} trailing",
    ] {
        let resp = RawRequest::dynamodb(node.addr(), "DescribeTable", body)
            .signed(&node.signing())
            .send(node.addr())
            .await;
        assert_error(&resp, "SerializationException");
        assert_eq!(
            resp.json(),
            json!({"__type": format!("{DDB_PREFIX}SerializationException")}),
            "{body}"
        );
        assert_crc_and_request_id(&resp);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_field_types_are_serialization_exceptions() {
    let node = TestNode::start().await;
    let cases = [
        ("DescribeTable", json!({"TableName": 5})),
        ("ListTables", json!({"Limit": "ten"})),
        ("GetItem", json!({"TableName": "tbl", "Key": ["pk"]})),
        (
            "GetItem",
            json!({"TableName": "tbl", "Key": {"pk": {"S": 1}}}),
        ),
        (
            "GetItem",
            json!({"TableName": "tbl", "Key": {"pk": "a"}, "ConsistentRead": "yes"}),
        ),
    ];
    for (op, body) in cases {
        let resp = node.signed_request(op, &body).send(node.addr()).await;
        assert_error(&resp, "SerializationException");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_values_with_zero_or_two_types_are_rejected() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "tbl").await;
    let two = node
        .signed_request(
            "PutItem",
            &json!({"TableName": "tbl", "Item": {"pk": {"S": "a"}, "v": {"S": "x", "N": "1"}}}),
        )
        .send(node.addr())
        .await;
    assert_error(&two, "ValidationException");
    assert!(
        two.error_message()
            .unwrap_or_default()
            .contains("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"),
        "{}",
        two.text()
    );
    let none = node
        .signed_request(
            "PutItem",
            &json!({"TableName": "tbl", "Item": {"pk": {"S": "a"}, "v": {}}}),
        )
        .send(node.addr())
        .await;
    assert_error(&none, "ValidationException");
    assert!(
        none.error_message().unwrap_or_default().contains(
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
        ),
        "{}",
        none.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_required_parameter_is_a_validation_exception() {
    let node = TestNode::start().await;
    let resp = node
        .signed_request("DescribeTable", &json!({}))
        .send(node.addr())
        .await;
    assert_error(&resp, "ValidationException");
    // DynamoDB's newer wording, reported before any other constraint of the request.
    assert_eq!(
        resp.error_message().as_deref(),
        Some("The parameter 'TableName' is required but was not specified.")
    );
    let resp = node
        .signed_request(
            "GetItem",
            &json!({"TableName": "x", "ReturnConsumedCapacity": "bad"}),
        )
        .send(node.addr())
        .await;
    assert_error(&resp, "ValidationException");
    assert_eq!(
        resp.error_message().as_deref(),
        Some("The parameter 'Key' is required but was not specified.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_operation_is_rejected() {
    let node = TestNode::start().await;
    let resp = node
        .signed_request("FrobnicateTable", &json!({}))
        .send(node.addr())
        .await;
    assert_error(&resp, "UnknownOperationException");
    assert_crc_and_request_id(&resp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_target_prefix_is_rejected() {
    let node = TestNode::start().await;
    let resp = RawRequest::post(node.addr(), "{}")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "DynamoDB_20111205.ListTables")
        .signed(&node.signing())
        .send(node.addr())
        .await;
    assert_error(&resp, "UnknownOperationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_target_is_rejected() {
    let node = TestNode::start().await;
    let resp = RawRequest::post(node.addr(), "{}")
        .header("content-type", "application/x-amz-json-1.0")
        .signed(&node.signing())
        .send(node.addr())
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.error_type().is_some(), "{}", resp.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_16_mb_is_refused_without_reading_it() {
    let node = TestNode::start().await;
    let declared = 16 * 1024 * 1024 + 1;
    let req = RawRequest::dynamodb(node.addr(), "ListTables", Vec::new())
        .header("content-length", &declared.to_string())
        .signed(&node.signing());
    let mut conn = RawConnection::connect(node.addr()).await;
    conn.write(&req.head_bytes()).await;
    // Send a little of the body, then wait: the server must answer without the rest.
    let _ = conn.try_write(&vec![b' '; 64 * 1024]).await;
    let resp = conn
        .read_response_within(Duration::from_secs(10))
        .await
        .expect("the server should refuse an oversized body before reading it");
    assert!(
        resp.status == 413 || (resp.status == 400 && resp.error_type().is_some()),
        "status {} body {}",
        resp.status,
        resp.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_16_mb_is_refused() {
    let node = TestNode::start().await;
    let req = RawRequest::dynamodb(node.addr(), "ListTables", Vec::new())
        .header("transfer-encoding", "chunked");
    let mut conn = RawConnection::connect(node.addr()).await;
    conn.write(&req.head_bytes()).await;
    let chunk = vec![b' '; 1024 * 1024];
    let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
    frame.extend_from_slice(&chunk);
    frame.extend_from_slice(b"\r\n");
    let addr = node.addr();
    let reader = tokio::spawn(async move {
        // 17 chunks of 1 MiB; the server may stop reading and close at any point.
        for _ in 0..17 {
            if conn.try_write(&frame).await.is_err() {
                break;
            }
        }
        let _ = conn.try_write(b"0\r\n\r\n").await;
        conn.read_response_within(Duration::from_secs(20)).await
    });
    match reader.await.unwrap() {
        Ok(resp) => assert!(
            resp.status == 413 || resp.status == 400,
            "status {} body {}",
            resp.status,
            resp.text()
        ),
        // Closing the connection on an oversized body is a refusal too.
        Err(e) => assert!(e.contains("closed"), "{e}"),
    }
    assert!(health_ok(addr).await, "server still healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_requests_share_one_keep_alive_connection() {
    let node = TestNode::start().await;
    let mut conn = RawConnection::connect(node.addr()).await;
    for i in 0..5 {
        let resp = conn
            .send(&node.signed_request("ListTables", &json!({})))
            .await;
        assert_eq!(resp.status, 200, "request {i}: {}", resp.text());
    }
    // An error response does not close the connection either.
    let err = conn
        .send(&node.signed_request("DescribeTable", &json!({"TableName": "nope"})))
        .await;
    assert_error(&err, "ResourceNotFoundException");
    let again = conn
        .send(&node.signed_request("ListTables", &json!({})))
        .await;
    assert_eq!(again.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_root_is_an_unauthenticated_health_check() {
    let node = TestNode::start().await;
    let resp = RawRequest::get(node.addr(), "/").send(node.addr()).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "healthy", "the health check says nothing else");
}

/// `body` compressed with `encoding` (`gzip`, `deflate` as zlib, or `raw-deflate`).
fn compress(encoding: &str, body: &[u8]) -> Vec<u8> {
    use flate2::Compression;
    use std::io::Write;
    match encoding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
            e.write_all(body).unwrap();
            e.finish().unwrap()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
            e.write_all(body).unwrap();
            e.finish().unwrap()
        }
        _ => {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
            e.write_all(body).unwrap();
            e.finish().unwrap()
        }
    }
}

/// A signed request whose body is sent compressed (the signature covers the bytes sent).
fn compressed_request(
    node: &TestNode,
    operation: &str,
    encoding: &str,
    body: Vec<u8>,
) -> RawRequest {
    let header = if encoding == "raw-deflate" {
        "deflate"
    } else {
        encoding
    };
    RawRequest::dynamodb(node.addr(), operation, body)
        .header("content-encoding", header)
        .signed(&node.signing())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_deflate_request_bodies_are_accepted() {
    let node = TestNode::start().await;
    must_create_hash_table(&node.client(), "zipped").await;
    for (i, encoding) in ["gzip", "deflate", "raw-deflate"].iter().enumerate() {
        let put = json!({"TableName": "zipped", "Item": {"pk": {"S": format!("k{i}")}, "pad": {"S": "x".repeat(5000)}}});
        let body = compress(encoding, put.to_string().as_bytes());
        assert!(body.len() < 1000, "{encoding} compresses");
        let resp = compressed_request(&node, "PutItem", encoding, body)
            .send(node.addr())
            .await;
        assert_eq!(resp.status, 200, "{encoding}: {}", resp.text());
        let get = json!({"TableName": "zipped", "Key": {"pk": {"S": format!("k{i}")}}});
        let resp = compressed_request(
            &node,
            "GetItem",
            encoding,
            compress(encoding, get.to_string().as_bytes()),
        )
        .send(node.addr())
        .await;
        assert_eq!(resp.status, 200, "{encoding}: {}", resp.text());
        assert_eq!(
            resp.json()["Item"]["pad"]["S"].as_str().map(str::len),
            Some(5000)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_compressed_bodies_are_refused() {
    let node = TestNode::start().await;
    // A decompression bomb: 20 MiB of spaces in about 20 KB, refused by the 16 MB limit after
    // inflating, without growing the node's memory past it.
    let mut padded = b"{\"TableName\": \"t\"".to_vec();
    padded.extend(std::iter::repeat_n(b' ', 20 << 20));
    padded.push(b'}');
    let bomb = compress("gzip", &padded);
    assert!(bomb.len() < 100_000);
    let resp = compressed_request(&node, "ListTables", "gzip", bomb)
        .send(node.addr())
        .await;
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert_eq!(
        resp.error_type().as_deref(),
        Some("RequestEntityTooLargeException")
    );
    // Not gzip at all.
    let resp = compressed_request(&node, "ListTables", "gzip", b"{}".to_vec())
        .send(node.addr())
        .await;
    assert_error(&resp, "SerializationException");
    assert!(resp.text().contains("decompressed"), "{}", resp.text());
    // An encoding Shoal does not know.
    let resp = compressed_request(&node, "ListTables", "br", b"{}".to_vec())
        .send(node.addr())
        .await;
    assert_error(&resp, "SerializationException");
    assert!(resp.text().contains("Content-Encoding"), "{}", resp.text());
    // The node still answers.
    let resp = node
        .signed_request("ListTables", &json!({}))
        .send(node.addr())
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_may_call_the_api_across_origins() {
    let node = TestNode::start().await;
    // The preflight carries no credentials and is answered anyway.
    let preflight = RawRequest {
        method: "OPTIONS".into(),
        ..RawRequest::get(node.addr(), "/")
    }
    .header("origin", "http://localhost:3000")
    .header("access-control-request-method", "POST")
    .header(
        "access-control-request-headers",
        "authorization,content-type,x-amz-date,x-amz-target,x-amz-user-agent",
    )
    .send(node.addr())
    .await;
    assert_eq!(preflight.status, 200, "{}", preflight.text());
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert!(
        preflight
            .header("access-control-allow-methods")
            .is_some_and(|m| m.contains("POST"))
    );
    let allowed = preflight
        .header("access-control-allow-headers")
        .unwrap_or("");
    for h in ["authorization", "x-amz-target", "x-amz-user-agent"] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    // The call itself: readable by the page, with the headers the SDK checks exposed.
    let resp = node
        .signed_request("ListTables", &json!({}))
        .header("origin", "http://localhost:3000")
        .send(node.addr())
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    let exposed = resp.header("access-control-expose-headers").unwrap_or("");
    for h in ["x-amzn-requestid", "x-amz-crc32"] {
        assert!(exposed.contains(h), "{h} not in {exposed}");
    }
    // Without an Origin (not a browser), no CORS headers.
    let resp = node
        .signed_request("ListTables", &json!({}))
        .send(node.addr())
        .await;
    assert_eq!(resp.header("access-control-allow-origin"), None);
}

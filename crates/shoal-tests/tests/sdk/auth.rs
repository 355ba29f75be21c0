//! SigV4 authentication: every request must be signed by a known key, over the exact body, at
//! about the current time, with `host`, `x-amz-date` and `x-amz-target` signed.

use std::time::{Duration, SystemTime};

use serde_json::json;
use shoal_tests::*;

fn list_tables(node: &TestNode) -> RawRequest {
    RawRequest::dynamodb(node.addr(), "ListTables", json!({}).to_string())
}

#[track_caller]
fn assert_auth_error(resp: &RawResponse, name: &str) {
    assert_eq!(resp.status, 400, "status; body {}", resp.text());
    assert_eq!(
        resp.error_type().as_deref(),
        Some(name),
        "body {}",
        resp.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_without_authorization_is_missing_authentication_token() {
    let node = TestNode::start().await;
    let resp = list_tables(&node).send(node.addr()).await;
    assert_auth_error(&resp, "MissingAuthenticationTokenException");
    assert_eq!(
        resp.error_message().as_deref(),
        Some("Request is missing Authentication Token")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_access_key_is_unrecognized_client() {
    let node = TestNode::start().await;
    let resp = list_tables(&node)
        .signed(&Signing::new("AKIDUNKNOWN000000000", "whatever"))
        .send(node.addr())
        .await;
    assert_auth_error(&resp, "UnrecognizedClientException");
    assert_eq!(
        resp.error_message().as_deref(),
        Some("The security token included in the request is invalid.")
    );
    let sdk = node
        .client_with_key("AKIDUNKNOWN000000000", "whatever")
        .list_tables()
        .send()
        .await;
    assert_code(sdk, "UnrecognizedClientException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_invalid_signature() {
    let node = TestNode::start().await;
    let resp = list_tables(&node)
        .signed(&Signing::new(ADMIN_KEY_ID, "not-the-secret"))
        .send(node.addr())
        .await;
    assert_auth_error(&resp, "InvalidSignatureException");
    let msg = resp.error_message().unwrap_or_default();
    assert!(
        msg.starts_with(
            "The request signature we calculated does not match the signature you provided."
        ),
        "{msg}"
    );
    let sdk = node
        .client_with_key(ADMIN_KEY_ID, "not-the-secret")
        .list_tables()
        .send()
        .await;
    assert_code(sdk, "InvalidSignatureException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_body_is_invalid_signature() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "tbl").await;
    let signed = RawRequest::dynamodb(
        node.addr(),
        "PutItem",
        json!({"TableName": "tbl", "Item": {"pk": {"S": "a"}, "v": {"N": "1"}}}).to_string(),
    )
    .signed(&node.signing());
    let tampered =
        json!({"TableName": "tbl", "Item": {"pk": {"S": "a"}, "v": {"N": "9"}}}).to_string();
    assert_eq!(tampered.len(), signed.body.len());
    let resp = signed.with_body(tampered).send(node.addr()).await;
    assert_auth_error(&resp, "InvalidSignatureException");
    assert_eq!(must_get(&client, "tbl", item([("pk", s("a"))])).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_target_is_invalid_signature() {
    let node = TestNode::start().await;
    let mut req = list_tables(&node).signed(&node.signing());
    for (n, v) in req.headers.iter_mut() {
        if n.eq_ignore_ascii_case("x-amz-target") {
            *v = "DynamoDB_20120810.DescribeLimits".to_string();
        }
    }
    let resp = req.send(node.addr()).await;
    assert_auth_error(&resp, "InvalidSignatureException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_dated_20_minutes_ago_is_expired() {
    let node = TestNode::start().await;
    let mut signing = node.signing();
    signing.time = SystemTime::now() - Duration::from_secs(20 * 60);
    let resp = list_tables(&node).signed(&signing).send(node.addr()).await;
    assert_auth_error(&resp, "InvalidSignatureException");
    let msg = resp.error_message().unwrap_or_default();
    assert!(msg.starts_with("Signature expired"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_dated_20_minutes_ahead_is_not_yet_current() {
    let node = TestNode::start().await;
    let mut signing = node.signing();
    signing.time = SystemTime::now() + Duration::from_secs(20 * 60);
    let resp = list_tables(&node).signed(&signing).send(node.addr()).await;
    assert_auth_error(&resp, "InvalidSignatureException");
    let msg = resp.error_message().unwrap_or_default();
    assert!(msg.starts_with("Signature not yet current"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_within_the_15_minute_window_is_accepted() {
    let node = TestNode::start().await;
    for skew in [-10 * 60i64, 10 * 60] {
        let mut signing = node.signing();
        signing.time = if skew < 0 {
            SystemTime::now() - Duration::from_secs(skew.unsigned_abs())
        } else {
            SystemTime::now() + Duration::from_secs(skew.unsigned_abs())
        };
        let resp = list_tables(&node).signed(&signing).send(node.addr()).await;
        assert_eq!(resp.status, 200, "skew {skew}s: {}", resp.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_target_header_is_rejected() {
    let node = TestNode::start().await;
    let mut signing = node.signing();
    signing.unsigned_headers.push("x-amz-target".to_string());
    let req = list_tables(&node).signed(&signing);
    let auth = req.header_value("authorization").unwrap().to_string();
    assert!(!auth.contains("x-amz-target"), "{auth}");
    let resp = req.send(node.addr()).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.error_type().is_some(), "{}", resp.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_authorization_header_is_rejected() {
    let node = TestNode::start().await;
    let resp = list_tables(&node)
        .header("x-amz-date", "20250101T000000Z")
        .header("authorization", "AWS4-HMAC-SHA256 garbage")
        .send(node.addr())
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    let t = resp.error_type().unwrap_or_default();
    assert!(
        t == "IncompleteSignatureException" || t == "InvalidSignatureException",
        "{}",
        resp.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_scoped_to_another_region_is_rejected() {
    let node = TestNode::start().await;
    let mut signing = node.signing();
    signing.region = "eu-west-1".to_string();
    let resp = list_tables(&node).signed(&signing).send(node.addr()).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.error_type().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_scoped_to_another_service_is_rejected() {
    let node = TestNode::start().await;
    let mut signing = node.signing();
    signing.service = "s3".to_string();
    let resp = list_tables(&node).signed(&signing).send(node.addr()).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.error_type().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_payload_header_does_not_skip_body_verification() {
    let node = TestNode::start().await;
    // Declaring the payload unsigned must not let a request skip body verification.
    let tampered = list_tables(&node)
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .signed(&node.signing())
        .with_body("{\"Limit\":1}");
    let resp = tampered.send(node.addr()).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
}

//! The HTTP front end under hostile clients (issue #12, items 2, 3, 4 and 8): memory before
//! authentication, slow and idle clients, connection and descriptor limits, overload, strict
//! HTTP and JSON. Every test runs the real `shoal` binary with small limits so it takes seconds.
//!
//! The binary is the workspace's `target/<profile>/shoal` (`SHOAL_BIN` overrides it): run
//! `cargo build -p shoal` first, or `cargo test --workspace`, which builds it.

mod limits;
mod memory;
mod overload;
mod slow;
mod strict;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use shoal_tests::{
    ADMIN_KEY_ID, ADMIN_SECRET, ProcessNode, RawConnection, RawRequest, RawResponse, Signing,
};

/// The `shoal` binary under test.
fn shoal_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SHOAL_BIN") {
        return PathBuf::from(bin);
    }
    // target/<profile>/deps/hostile-<hash> → target/<profile>/shoal
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("shoal"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build -p shoal` first (or set SHOAL_BIN)",
        bin.display()
    );
    bin
}

/// Starts `shoal` with the admin key and `args`.
async fn start(args: &[&str]) -> ProcessNode {
    start_bin(shoal_bin(), args).await
}

async fn start_bin(bin: PathBuf, args: &[&str]) -> ProcessNode {
    let mut builder = ProcessNode::builder(bin).admin_key(ADMIN_KEY_ID, ADMIN_SECRET);
    for a in args {
        builder = builder.arg(*a);
    }
    builder.start().await
}

/// Starts `shoal` with its file-descriptor limit (soft and hard) set to `nofile`, through a
/// wrapper script (`ulimit -n`, then `exec`); the directory holding the script must outlive
/// the node.
async fn start_with_nofile(nofile: u32, args: &[&str]) -> (ProcessNode, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("shoal-limited");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nulimit -n {nofile} || exit 99\nexec '{}' \"$@\"\n",
            shoal_bin().display()
        ),
    )
    .expect("write wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (start_bin(script, args).await, dir)
}

/// Resident memory of a process in MiB (`VmRSS` of /proc/<pid>/status).
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

fn signing() -> Signing {
    Signing::new(ADMIN_KEY_ID, ADMIN_SECRET)
}

/// An admin-signed request for `op` with a JSON body.
fn signed(node: &ProcessNode, op: &str, body: &Value) -> RawRequest {
    RawRequest::dynamodb(node.addr(), op, body.to_string()).signed(&signing())
}

/// Sends `req` on a new connection and returns the response.
async fn send(node: &ProcessNode, req: &RawRequest) -> RawResponse {
    let mut conn = RawConnection::connect(node.addr()).await;
    conn.send(req).await
}

/// Creates a table keyed by the string `pk` and waits until requests can use it.
async fn create_table(node: &ProcessNode, name: &str) {
    let resp = send(
        node,
        &signed(
            node,
            "CreateTable",
            &json!({
                "TableName": name,
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
            }),
        ),
    )
    .await;
    assert_eq!(resp.status, 200, "CreateTable: {}", resp.text());
    for _ in 0..200 {
        let d = send(
            node,
            &signed(node, "DescribeTable", &json!({"TableName": name})),
        )
        .await;
        if d.json()["Table"]["TableStatus"] == "ACTIVE" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("table {name} not ACTIVE");
}

/// A PutItem of one small item; its status and error type.
async fn put(node: &ProcessNode, table: &str, pk: &str) -> RawResponse {
    send(
        node,
        &signed(
            node,
            "PutItem",
            &json!({"TableName": table, "Item": {"pk": {"S": pk}, "v": {"N": "1"}}}),
        ),
    )
    .await
}

/// Asserts an error response of this DynamoDB type and status.
fn assert_error(resp: &RawResponse, status: u16, error_type: &str) {
    assert_eq!(resp.status, status, "{}", resp.text());
    assert_eq!(
        resp.error_type().as_deref(),
        Some(error_type),
        "{}",
        resp.text()
    );
}

//! What operators and Prometheus read from a running node: `GET /metrics` (checked with the
//! OpenMetrics parser of Prometheus' Python client), who may read `/status` and `/metrics`, the
//! health check, and the console's files.
// Helpers outside `#[test]` functions panic on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;

use aws_sdk_dynamodb::types::AttributeValue;
use shoal_tests::*;
use shoal_tests::{RawRequest, Signing};

const BIN: &str = env!("CARGO_BIN_EXE_shoal");
const KEY_ID: &str = "AKIDOBSERVETEST00001";
const SECRET: &str = "observability-test-secret-0000000000000";
const TOKEN: &str = "prometheus-scrape-token-for-tests";

/// One sample of a parsed exposition: metric name and labels.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

/// Parses `text` with `prometheus_client.openmetrics.parser` (strict: it raises on anything
/// that is not valid OpenMetrics) and returns every sample.
fn parse_openmetrics(text: &str) -> Samples {
    let python = shoal_tests::moto::ensure_moto().with_file_name("python");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("metrics.txt");
    std::fs::write(&input, text).unwrap();
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let (status, stdout, stderr) = run_command(&python, &["-c", script, input.to_str().unwrap()]);
    assert!(
        status.success(),
        "the OpenMetrics parser refused /metrics: {stderr}\n--- text ---\n{text}"
    );
    let rows: Vec<(String, BTreeMap<String, String>, f64)> = serde_json::from_str(&stdout).unwrap();
    rows.into_iter().map(|(n, l, v)| ((n, l), v)).collect()
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples.get(&(name.to_string(), labels)).copied()
}

async fn scrape(addr: SocketAddr) -> Samples {
    let resp = RawRequest::get(addr, "/metrics").send(addr).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{:?}",
        resp.header("content-type")
    );
    parse_openmetrics(&resp.text())
}

async fn start_node(extra: &[&str]) -> ProcessNode {
    let listen: SocketAddr = format!("0.0.0.0:{}", free_addr().port()).parse().unwrap();
    let mut builder = ProcessNode::builder(BIN)
        .listen(listen)
        .admin_key(KEY_ID, SECRET)
        .arg("--cluster-listen")
        .arg(free_addr().to_string());
    for a in extra {
        builder = builder.arg(*a);
    }
    builder.start().await
}

/// A local address that is not loopback (the one the default route leaves from; a UDP
/// `connect` sends nothing), or `None` on a machine without one.
fn non_loopback_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("10.255.255.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_openmetrics_and_count_what_happens() {
    let node = start_node(&[]).await;
    let client = node.client_with_key(KEY_ID, SECRET);
    must_create_hash_table(&client, "orders").await;
    for i in 0..5 {
        client
            .put_item()
            .table_name("orders")
            .item("pk", AttributeValue::S(format!("k{i}")))
            .item("pad", AttributeValue::S("x".repeat(1500)))
            .send()
            .await
            .unwrap();
    }
    let before = scrape(node.addr()).await;
    let puts = [("operation", "PutItem"), ("table", "orders")];
    assert_eq!(value(&before, "shoal_requests_total", &puts), Some(5.0));
    // 1.5 KB items: two write units each.
    assert_eq!(
        value(&before, "shoal_consumed_write_capacity_units_total", &puts),
        Some(10.0)
    );
    assert_eq!(
        value(&before, "shoal_request_duration_seconds_count", &puts),
        Some(5.0)
    );
    assert_eq!(
        value(&before, "shoal_partition_items", &[("table", "orders")]),
        Some(5.0)
    );
    assert_eq!(
        value(&before, "shoal_partitions", &[("table", "orders")]),
        Some(1.0)
    );
    assert!(value(&before, "shoal_process_resident_memory_bytes", &[]).unwrap() > 1e6);
    assert!(value(&before, "shoal_raft_proposals_total", &[]).unwrap() >= 5.0);
    assert!(value(&before, "shoal_raft_log_fsync_duration_seconds_count", &[]).unwrap() >= 5.0);
    assert!(
        before.keys().any(|(n, l)| n == "shoal_raft_leader"
            && l.get("table").map(String::as_str) == Some("orders")),
        "no shoal_raft_leader for the table"
    );
    assert!(before.keys().any(|(n, _)| n == "shoal_node_info"));

    // A PartiQL INSERT counts as write capacity, a SELECT as read capacity, under the operation
    // ExecuteStatement.
    client
        .execute_statement()
        .statement(r#"INSERT INTO "orders" VALUE {'pk': 'p1', 'pad': ?}"#)
        .parameters(AttributeValue::S("x".repeat(1500)))
        .send()
        .await
        .unwrap();
    client
        .execute_statement()
        .statement(r#"SELECT * FROM "orders" WHERE pk = 'p1'"#)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let partiql = scrape(node.addr()).await;
    let statement = [("operation", "ExecuteStatement"), ("table", "orders")];
    assert_eq!(
        value(
            &partiql,
            "shoal_consumed_write_capacity_units_total",
            &statement
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &partiql,
            "shoal_consumed_read_capacity_units_total",
            &statement
        ),
        Some(1.0)
    );

    // A failed conditional write, a read, and a request naming a table that does not exist.
    let failed = client
        .put_item()
        .table_name("orders")
        .item("pk", AttributeValue::S("k0".into()))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    assert!(failed.is_err());
    client
        .get_item()
        .table_name("orders")
        .key("pk", AttributeValue::S("k1".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let missing = client
        .get_item()
        .table_name("no-such-table-0123456789")
        .key("pk", AttributeValue::S("k".into()))
        .send()
        .await;
    assert!(missing.is_err());

    let after = scrape(node.addr()).await;
    assert_eq!(value(&after, "shoal_requests_total", &puts), Some(6.0));
    assert_eq!(
        value(
            &after,
            "shoal_request_errors_total",
            &[
                ("operation", "PutItem"),
                ("table", "orders"),
                ("error", "ConditionalCheckFailedException")
            ]
        ),
        Some(1.0)
    );
    let gets = [("operation", "GetItem"), ("table", "orders")];
    assert_eq!(value(&after, "shoal_requests_total", &gets), Some(1.0));
    assert_eq!(
        value(&after, "shoal_consumed_read_capacity_units_total", &gets),
        Some(1.0)
    );
    // Client-chosen names never become label values.
    assert!(
        !after
            .keys()
            .any(|(_, l)| l.values().any(|v| v.contains("no-such-table"))),
        "a table name the client made up became a label"
    );
    assert_eq!(
        value(
            &after,
            "shoal_request_errors_total",
            &[
                ("operation", "GetItem"),
                ("table", ""),
                ("error", "ResourceNotFoundException")
            ]
        ),
        Some(1.0)
    );
    assert!(
        value(&after, "shoal_raft_proposals_total", &[])
            > value(&before, "shoal_raft_proposals_total", &[])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_pages_need_an_admin_key_or_the_token_off_loopback() {
    let node = start_node(&["--metrics-token", TOKEN]).await;
    let local = node.addr();
    // From loopback, anonymous requests are answered.
    for path in ["/status", "/metrics"] {
        let resp = RawRequest::get(local, path).send(local).await;
        assert_eq!(resp.status, 200, "{path} from loopback: {}", resp.text());
    }
    // The health check says only that the node is healthy.
    let health = RawRequest::get(local, "/").send(local).await;
    assert_eq!((health.status, health.text().as_str()), (200, "healthy"));

    let Some(ip) = non_loopback_ip() else {
        eprintln!("SKIPPED the non-loopback half: this machine has no non-loopback address");
        return;
    };
    let remote = SocketAddr::new(ip, local.port());
    for path in ["/status", "/metrics"] {
        let resp = RawRequest::get(remote, path).send(remote).await;
        assert_eq!(
            resp.status,
            401,
            "{path} anonymous from {ip}: {}",
            resp.text()
        );
        assert!(
            resp.text().contains("only from loopback"),
            "{path}: {}",
            resp.text()
        );
        assert!(!resp.text().contains("cluster_id"), "{}", resp.text());
    }
    // Prometheus' bearer token opens /metrics, not /status; a wrong one opens nothing.
    let bearer = format!("Bearer {TOKEN}");
    let resp = RawRequest::get(remote, "/metrics")
        .header("authorization", &bearer)
        .send(remote)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.text().contains("shoal_node_info"), "{}", resp.text());
    let resp = RawRequest::get(remote, "/status")
        .header("authorization", &bearer)
        .send(remote)
        .await;
    assert_eq!(resp.status, 403, "{}", resp.text());
    let resp = RawRequest::get(remote, "/metrics")
        .header("authorization", "Bearer not-the-token")
        .send(remote)
        .await;
    assert_eq!(resp.status, 403, "{}", resp.text());

    // An admin key's signature opens both (what `shoal status` sends).
    let signing = Signing::new(KEY_ID, SECRET);
    for path in ["/status", "/metrics"] {
        let resp = RawRequest::get(remote, path)
            .signed(&signing)
            .send(remote)
            .await;
        assert_eq!(resp.status, 200, "signed {path}: {}", resp.text());
    }
    // A key that is not an admin key is refused.
    let (status, out, err) = run_command(
        Path::new(BIN),
        &[
            "keys",
            "create",
            "--data-dir",
            node.data_dir().to_str().unwrap(),
        ],
    );
    assert!(status.success(), "keys create: {err}");
    let (user_id, user_secret) = parse_printed_key(&out).expect("created key printed");
    let mut denied = None;
    for _ in 0..50 {
        let resp = RawRequest::get(remote, "/status")
            .signed(&Signing::new(&user_id, &user_secret))
            .send(remote)
            .await;
        if resp.error_type().as_deref() != Some("UnrecognizedClientException") {
            denied = Some(resp);
            break;
        }
        // The running node learns of the new key within a moment.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let denied = denied.expect("the new key was never recognised");
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert_eq!(
        denied.error_type().as_deref(),
        Some("AccessDeniedException")
    );

    // `shoal status` signs with the credential environment variables.
    let endpoint = format!("http://{remote}");
    let out = std::process::Command::new(BIN)
        .args(["status", "--json", "--endpoint", &endpoint])
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["node_id"], 1);
    let out = std::process::Command::new(BIN)
        .args(["status", "--json", "--endpoint", &endpoint])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "anonymous shoal status off loopback succeeded"
    );

    // The console reads other nodes' metrics across origins: the preflight is answered.
    let preflight = RawRequest {
        method: "OPTIONS".into(),
        ..RawRequest::get(remote, "/metrics")
    }
    .header("origin", "http://elsewhere:8000")
    .header("access-control-request-method", "GET")
    .header("access-control-request-headers", "authorization,x-amz-date")
    .send(remote)
    .await;
    assert_eq!(preflight.status, 200, "{}", preflight.text());
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert!(
        preflight
            .header("access-control-allow-headers")
            .is_some_and(|h| h.contains("authorization"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_by_the_node() {
    let node = start_node(&[]).await;
    let addr = node.addr();
    let page = RawRequest::get(addr, "/console").send(addr).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    assert!(page.text().contains("type=\"module\""), "{}", page.text());
    // Nothing is fetched from elsewhere.
    assert!(!page.text().contains("https://"), "{}", page.text());
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.contains("default-src 'self'"))
    );
    let config = RawRequest::get(addr, "/console/config.json")
        .send(addr)
        .await;
    assert_eq!(config.status, 200);
    assert_eq!(config.json()["region"], "us-east-1");
    assert_eq!(config.json()["node"], 1);
    let missing = RawRequest::get(addr, "/console/../../etc/passwd")
        .send(addr)
        .await;
    assert_eq!(missing.status, 404);
}

//! HTTPS for the DynamoDB API against the real binary: the AWS SDK for Rust over HTTPS with the
//! node's certificate as its only trust anchor while plain HTTP keeps working on the other
//! listener, `--tls self-signed` (fingerprint printed, certificate kept across restarts, key
//! sealed), certificate files replaced while the node runs, and clients that do not speak TLS.
//! boto3 and the AWS CLI (`--ca-bundle`) are in scripts/smoke.sh.
// Helpers outside `#[test]` functions panic on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use shoal_api::server::tls::fingerprint;
use shoal_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_shoal");
const KEY_ID: &str = "AKIDTLSTEST000000001";
const SECRET: &str = "tls-test-secret-0000000000000000000000000";

/// A self-signed certificate for localhost and 127.0.0.1: (certificate PEM, key PEM).
fn cert_pair(name: &str) -> (String, String) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pem_fingerprint(pem: &str) -> String {
    fingerprint(&CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
}

/// An SDK client for `https://{addr}` that trusts only `ca_pem`.
fn https_client(host: &str, addr: SocketAddr, ca_pem: &str) -> Client {
    use aws_smithy_http_client::tls;
    let context = tls::TlsContext::builder()
        .with_trust_store(tls::TrustStore::empty().with_pem_certificate(ca_pem.as_bytes()))
        .build()
        .unwrap();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .endpoint_url(format!("https://{host}:{}", addr.port()))
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            KEY_ID, SECRET, None, None, "tls-test",
        ))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .http_client(http)
        .build();
    Client::from_conf(config)
}

/// The fingerprint of the certificate `addr` serves to a new connection, with `roots` trusted.
async fn served_fingerprint(addr: SocketAddr, roots: &[&str]) -> String {
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        store
            .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
            .unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio::time::timeout(
        Duration::from_secs(10),
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .expect("TLS handshake timed out")
    .expect("TLS handshake failed");
    let (_, conn) = tls.get_ref();
    fingerprint(&conn.peer_certificates().unwrap()[0])
}

/// Creates a table, puts and gets an item through `client`.
async fn round_trip(client: &Client, table: &str) {
    client
        .create_table()
        .table_name(table)
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
        .unwrap();
    client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S("k1".into()))
        .item("v", AttributeValue::N("42".into()))
        .send()
        .await
        .unwrap();
    let got = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S("k1".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.item().unwrap().get("v"),
        Some(&AttributeValue::N("42".into()))
    );
}

/// Sends `bytes` to `addr` and returns what came back before the node closed the connection
/// (panics if it stays open for 10 s).
async fn sent_and_closed(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the connection stayed open; got {} bytes", got.len()),
        }
    }
}

/// The node's stdout once it contains `needle` (it prints after it starts answering health
/// checks, and the harness reads it in another thread); panics after 20 s.
async fn stdout_with(node: &ProcessNode, needle: &str) -> String {
    output_with(needle, || node.stdout()).await
}

/// The node's stderr (its log) once it contains `needle`; panics after 20 s.
async fn stderr_with(node: &ProcessNode, needle: &str) -> String {
    output_with(needle, || node.stderr()).await
}

async fn output_with(needle: &str, read: impl Fn() -> String) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = read();
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "no '{needle}' in: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_over_https_and_http_on_the_other_listener_and_non_tls_clients_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_pair("shoal tls test");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    write(&cert_path, &cert);
    write(&key_path, &key);
    let tls_addr = free_addr();
    let node = ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .arg("--tls-cert")
        .arg(cert_path.to_str().unwrap())
        .arg("--tls-key")
        .arg(key_path.to_str().unwrap())
        .arg("--tls-listen")
        .arg(tls_addr.to_string())
        .arg("--header-timeout-ms")
        .arg("1500")
        .start()
        .await;
    let stdout = stdout_with(&node, "TLS certificate (PEM").await;
    assert!(
        stdout.contains(&format!("https://{tls_addr}")),
        "stdout: {stdout}"
    );
    assert!(stdout.contains(&pem_fingerprint(&cert)), "stdout: {stdout}");

    for host in ["127.0.0.1", "localhost"] {
        round_trip(
            &https_client(host, tls_addr, &cert),
            &format!("over_https_{host}"),
        )
        .await;
    }
    // Plain HTTP on --listen sees the same data.
    let http = node.client();
    let tables = http.list_tables().send().await.unwrap();
    assert_eq!(tables.table_names().len(), 2);
    round_trip(&http, "over_http").await;

    // A client trusting another certificate refuses the node's.
    let (other, _) = cert_pair("someone else");
    let err = https_client("127.0.0.1", tls_addr, &other)
        .list_tables()
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").to_lowercase().contains("certificate"),
        "{err:?}"
    );

    // Plain HTTP, garbage and silence on the HTTPS port: closed, no HTTP answer.
    let plain = sent_and_closed(
        tls_addr,
        b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(!plain.starts_with(b"HTTP/"), "{plain:?}");
    let garbage: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    sent_and_closed(tls_addr, &garbage).await;
    sent_and_closed(tls_addr, b"").await;
    // A truncated ClientHello: a TLS record header promising more than arrives.
    sent_and_closed(tls_addr, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await;

    assert!(health_ok(node.addr()).await, "{}", node.stderr());
    assert_eq!(
        served_fingerprint(tls_addr, &[&cert]).await,
        pem_fingerprint(&cert)
    );
    let client = https_client("localhost", tls_addr, &cert);
    assert_eq!(
        client
            .list_tables()
            .send()
            .await
            .unwrap()
            .table_names()
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_certificate_files_are_served_to_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, key_a) = cert_pair("first");
    let (cert_b, key_b) = cert_pair("second");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    write(&cert_path, &cert_a);
    write(&key_path, &key_a);
    let tls_addr = free_addr();
    let node = ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .env("SHOAL_TLS_CERT", cert_path.to_str().unwrap())
        .env("SHOAL_TLS_KEY", key_path.to_str().unwrap())
        .env("SHOAL_TLS_LISTEN", tls_addr.to_string())
        .start()
        .await;
    let roots = [cert_a.as_str(), cert_b.as_str()];
    assert_eq!(
        served_fingerprint(tls_addr, &roots).await,
        pem_fingerprint(&cert_a)
    );
    // A connection opened before the change keeps working after it.
    let before = https_client("localhost", tls_addr, &cert_a);
    before.list_tables().send().await.unwrap();

    // Replaced in place, the certificate first: for a moment the pair does not match.
    write(&cert_path, &cert_b);
    tokio::time::sleep(Duration::from_millis(300)).await;
    write(&key_path, &key_b);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let served = served_fingerprint(tls_addr, &roots).await;
        if served == pem_fingerprint(&cert_b) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still serving the first certificate: {}",
            node.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stderr_with(&node, "API TLS certificate reloaded").await;
    round_trip(
        &https_client("localhost", tls_addr, &cert_b),
        "after_reload",
    )
    .await;
    before.list_tables().send().await.unwrap();

    // A broken replacement is logged and the working certificate kept. (The mismatched pair
    // above may have been logged already.)
    let warned = node.stderr().matches("cannot be used").count();
    write(
        &cert_path,
        "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
    );
    output_with("cannot be used", || {
        let log = node.stderr();
        if log.matches("cannot be used").count() > warned {
            log
        } else {
            String::new()
        }
    })
    .await;
    assert_eq!(
        served_fingerprint(tls_addr, &roots).await,
        pem_fingerprint(&cert_b)
    );
    assert!(health_ok(node.addr()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_certificate_is_printed_kept_and_its_key_sealed() {
    let tls_addr = free_addr();
    let mut node = ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .arg("--tls")
        .arg("self-signed")
        .arg("--tls-listen")
        .arg(tls_addr.to_string())
        .start()
        .await;
    let stdout = stdout_with(&node, "TLS certificate (PEM").await;
    let printed = |label: &str| {
        stdout
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(label)
                    .map(str::trim)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("no '{label}' in stdout: {stdout}"))
    };
    let printed_fp = printed("TLS certificate SHA-256 fingerprint:");
    let pem_path = printed("TLS certificate (PEM; clients may use it as their CA bundle):");
    assert_eq!(
        Path::new(&pem_path),
        node.data_dir().join("api-tls-cert.pem")
    );
    let pem = std::fs::read_to_string(&pem_path).unwrap();
    assert_eq!(pem_fingerprint(&pem), printed_fp);
    assert_eq!(printed_fp.len(), 95, "{printed_fp}");
    stderr_with(&node, &printed_fp).await; // the fingerprint is logged too

    let key_file = node.data_dir().join("api-tls-key.sealed");
    let sealed = std::fs::read_to_string(&key_file).unwrap();
    assert!(!sealed.contains("PRIVATE KEY"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    for host in ["localhost", "127.0.0.1"] {
        round_trip(
            &https_client(host, tls_addr, &pem),
            &format!("self_signed_{host}"),
        )
        .await;
    }
    node.restart().await;
    assert_eq!(
        served_fingerprint(tls_addr, &[&pem]).await,
        printed_fp,
        "kept across restarts"
    );
    let client = https_client("localhost", tls_addr, &pem);
    assert_eq!(
        client
            .list_tables()
            .send()
            .await
            .unwrap()
            .table_names()
            .len(),
        2
    );
}

#[test]
fn incomplete_or_conflicting_tls_settings_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    let (data, keys) = (data.to_str().unwrap(), keys.to_str().unwrap());
    for (args, expected) in [
        (vec!["--tls-cert", "c.pem"], "needs --tls-key"),
        (vec!["--tls-key", "k.pem"], "needs --tls-cert"),
        (
            vec![
                "--tls",
                "self-signed",
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
            ],
            "choose one",
        ),
        (
            vec!["--tls-listen", "127.0.0.1:9443"],
            "needs a certificate",
        ),
        (
            vec![
                "--tls-cert",
                "/nonexistent/c.pem",
                "--tls-key",
                "/nonexistent/k.pem",
            ],
            "/nonexistent/c.pem",
        ),
    ] {
        let mut all = vec![
            "start",
            "--data-dir",
            data,
            "--keys-dir",
            keys,
            "--listen",
            "127.0.0.1:0",
        ];
        all.extend(args.iter().copied());
        let (status, _, stderr) = run_command(Path::new(BIN), &all);
        assert!(!status.success(), "{args:?} started");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

//! Damaged partition files: the node answers the exact stored item or a clear error, never
//! different data, and says in its log which file is damaged.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use shoal_tests::{describe_error, must_create_hash_table};

use crate::support::{BIN, s, start_node};

const TABLE: &str = "damaged";
const ITEMS: usize = 300;

fn original(i: usize) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), s(format!("key-{i:04}"))),
        ("data".to_string(), s(format!("{i}:{}", "d".repeat(900)))),
    ])
}

/// The table's only partition file, `<data>/tables/<id>/p00000001.db`.
fn partition_file(data: &Path) -> PathBuf {
    let tables: Vec<PathBuf> = std::fs::read_dir(data.join("tables"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(tables.len(), 1, "expected one table directory: {tables:?}");
    let file = tables[0].join("p00000001.db");
    assert!(file.exists(), "{} is missing", file.display());
    file
}

/// Complements `len` bytes at `offset`.
fn flip(path: &Path, offset: u64, len: usize) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut buf = vec![0u8; len];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut buf).unwrap();
    for b in &mut buf {
        *b = !*b;
    }
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&buf).unwrap();
    f.sync_all().unwrap();
}

/// Writes the items and stops the node cleanly; returns the data directory's partition file.
async fn node_with_items(data: &Path) -> PathBuf {
    let mut node = start_node(data).await;
    let client = node.client();
    must_create_hash_table(&client, TABLE).await;
    for i in 0..ITEMS {
        client
            .put_item()
            .table_name(TABLE)
            .set_item(Some(original(i)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutItem key-{i:04}: {}", describe_error(&e)));
    }
    let status = node.terminate().await;
    assert!(status.success(), "shoal exited with {status} on SIGTERM");
    partition_file(data)
}

/// The error must be the 500 InternalServerError that says the data is corrupt.
fn assert_corrupt_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    what: &str,
    e: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) {
    let status = e.raw_response().map(|r| r.status().as_u16());
    assert!(
        matches!(e, SdkError::ServiceError(_))
            && e.code() == Some("InternalServerError")
            && status == Some(500)
            && e.message().unwrap_or_default().contains("corrupt"),
        "{what}: expected a 500 InternalServerError saying the data is corrupt, got {}",
        describe_error(e)
    );
}

/// Reads every item and scans the table: each item is the original or the read fails with
/// the corrupt-data error. Returns how many reads failed.
async fn check_reads(client: &Client) -> usize {
    let mut failed = 0;
    for i in 0..ITEMS {
        let key = format!("key-{i:04}");
        match client
            .get_item()
            .table_name(TABLE)
            .key("pk", s(&key))
            .send()
            .await
        {
            Ok(r) => match r.item() {
                Some(item) => assert_eq!(item, &original(i), "GetItem {key} returned wrong data"),
                None => panic!("GetItem {key}: the item vanished without an error"),
            },
            Err(e) => {
                assert_corrupt_error(&format!("GetItem {key}"), &e);
                failed += 1;
            }
        }
    }
    let mut start = None;
    loop {
        match client
            .scan()
            .table_name(TABLE)
            .limit(50)
            .set_exclusive_start_key(start.clone())
            .send()
            .await
        {
            Ok(r) => {
                for item in r.items() {
                    let Some(AttributeValue::S(pk)) = item.get("pk") else {
                        panic!("Scan returned an item without its key: {item:?}");
                    };
                    let i: usize = pk
                        .strip_prefix("key-")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("Scan returned an unknown key {pk}"));
                    assert_eq!(item, &original(i), "Scan returned wrong data for {pk}");
                }
                start = r.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
            Err(e) => {
                assert_corrupt_error("Scan", &e);
                failed += 1;
                break;
            }
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_page_is_reported_as_corrupt_and_never_returned_as_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = node_with_items(&data).await;
    let len = std::fs::metadata(&file).unwrap().len();
    assert!(len > 32 * 4096, "partition file too small: {len} bytes");
    // 64 bytes inside a page in the middle of the file (page 1, the header, stays intact).
    flip(&file, (len / 2 / 4096) * 4096 + 512, 64);

    let node = start_node(&data).await;
    let failed = check_reads(&node.client()).await;
    assert!(failed > 0, "no read noticed the damaged page");
    eprintln!(
        "damaged page: {failed} of {} reads failed as corrupt",
        ITEMS + 1
    );
    // The log names the damaged file and says what is wrong; let the reader thread catch up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = node.stderr();
    let shown = file.display().to_string();
    assert!(
        log.lines()
            .any(|l| l.contains("corrupt") && l.contains(&shown)),
        "no log line says that {shown} is corrupt; stderr:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_first_page_stops_the_node_at_startup_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = node_with_items(&data).await;
    flip(&file, 200, 64);

    let keys = dir.path().join("data-keys");
    let mut child = std::process::Command::new(BIN)
        .args(["start", "--listen"])
        .arg(shoal_tests::free_addr().to_string())
        .arg("--data-dir")
        .arg(&data)
        .env("SHOAL_KEYS_DIR", &keys)
        .env_remove("SHOAL_CONFIG")
        .env_remove("SHOAL_LISTEN")
        .env_remove("SHOAL_DATA_DIR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node is still running 30 s after starting on a damaged first page");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "the node started on a damaged file");
    eprintln!("damaged first page: the node exited with {status}; stderr:\n{err}");
    let shown = file.display().to_string();
    assert!(
        err.contains(&shown) && err.contains("corrupt"),
        "stderr does not say that {shown} is corrupt:\n{err}"
    );
}

//! A full disk (real ENOSPC): the data directory on a 4 MiB tmpfs, filled by writes.
//!
//! Needs `mount -t tmpfs` (root or CAP_SYS_ADMIN, as on the development and CI machines); the
//! test fails, saying so, where it cannot mount.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use shoal_tests::{ProcessNode, describe_error, must_create_hash_table};

use crate::support::{BIN, KEY_ID, SECRET, s};

const TABLE: &str = "filling";
/// Most writes tried before the test gives up on filling the disk.
const MAX_WRITES: usize = 2_000;

/// A tmpfs mounted on a directory, unmounted on drop.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => SmallDisk {
                dir: dir.to_path_buf(),
            },
            Ok(o) => panic!(
                "the disk-full test needs a small tmpfs, and `mount -t tmpfs` failed ({}): {}\
                 (run the tests as root, or with CAP_SYS_ADMIN)",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!("the disk-full test needs the `mount` command: {e}"),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn big_item(i: usize) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), s(format!("item-{i:05}"))),
        (
            "fill".to_string(),
            s(format!("{i}:{}", "f".repeat(16 * 1024))),
        ),
    ])
}

fn node_on(data: &Path, keys: &Path) -> shoal_tests::ProcessNodeBuilder {
    ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .data_dir(data)
        .env("SHOAL_KEYS_DIR", keys.display().to_string())
}

/// Every acknowledged item reads back, and `failed` is present exactly when `failed_lands`.
async fn check_items(
    client: &aws_sdk_dynamodb::Client,
    acked: usize,
    failed: usize,
    failed_lands: bool,
    when: &str,
) {
    for i in 0..acked {
        let r = client
            .get_item()
            .table_name(TABLE)
            .key("pk", s(format!("item-{i:05}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{when}: GetItem item-{i:05}: {}", describe_error(&e)));
        assert_eq!(
            r.item(),
            Some(&big_item(i)),
            "{when}: acknowledged item-{i:05} does not read back"
        );
    }
    let r = client
        .get_item()
        .table_name(TABLE)
        .key("pk", s(format!("item-{failed:05}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{when}: GetItem item-{failed:05}: {}", describe_error(&e)));
    if failed_lands {
        assert_eq!(
            r.item(),
            Some(&big_item(failed)),
            "{when}: item-{failed:05}, which the error said was in the log, did not land"
        );
    } else {
        assert!(
            r.item().is_none(),
            "{when}: item-{failed:05}, whose write failed with disk full, is present"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_clearly_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    let keys = dir.path().join("keys");
    let disk = SmallDisk::mount(&small, "4m");

    let mut node = node_on(&small, &keys).start().await;
    let client = node.client();
    must_create_hash_table(&client, TABLE).await;

    let mut acked = 0;
    let failure = loop {
        assert!(
            acked < MAX_WRITES,
            "{MAX_WRITES} writes of 16 KB fitted on a 4 MiB disk: the disk never filled"
        );
        match client
            .put_item()
            .table_name(TABLE)
            .set_item(Some(big_item(acked)))
            .send()
            .await
        {
            Ok(_) => acked += 1,
            Err(e) => break e,
        }
    };
    let status = failure.raw_response().map(|r| r.status().as_u16());
    assert!(
        matches!(failure, SdkError::ServiceError(_))
            && failure.code() == Some("InternalServerError")
            && status == Some(500)
            && failure
                .message()
                .unwrap_or_default()
                .contains("disk is full"),
        "after {acked} writes: expected a 500 InternalServerError saying the disk is full, got {}; node log:\n{}",
        describe_error(&failure),
        node.stderr()
    );
    assert!(
        acked > 10,
        "only {acked} writes fitted before the disk was full"
    );
    eprintln!(
        "disk full after {acked} acknowledged writes: {}",
        failure.message().unwrap_or_default()
    );
    assert!(
        node.stderr().contains("disk full"),
        "the node's log does not mention the full disk:\n{}",
        node.stderr()
    );
    // Which of the two full-disk failures it was: the Raft log could not take the write (it was
    // not applied, and the node's log stops: fail-stop until a restart), or the write is in the
    // log and the partition file could not take it (the replica stops applying; the restart
    // replays it from the log, so it lands).
    let failed_lands = failure
        .message()
        .unwrap_or_default()
        .contains("in the replicated log");
    // Nothing acknowledged was lost, after a restart with space: the data directory copied to
    // a regular disk.
    let _ = node.terminate().await;
    let roomy = dir.path().join("roomy");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&small)
        .arg(&roomy)
        .status()
        .unwrap();
    assert!(copied.success(), "copying the data directory failed");
    drop(disk);
    let node = node_on(&roomy, &keys).start().await;
    let client = node.client();
    check_items(
        &client,
        acked,
        acked,
        failed_lands,
        "after restarting with free space",
    )
    .await;
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(big_item(acked)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("a write with free space failed: {}", describe_error(&e)));
}

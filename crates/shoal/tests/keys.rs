//! `shoal keys` against the real binary: master- and data-key rotation under a running workload
//! (on demand through the control socket and on the schedule) with zero failed requests, admin
//! commands on a stopped node, and access-key secrets never stored in the clear.
// Helpers outside `#[test]` functions panic on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use shoal_tests::*;

const BIN: &str = env!("CARGO_BIN_EXE_shoal");
const KEY_ID: &str = "AKIDKEYSTEST00000001";
const SECRET: &str = "keys-test-secret-00000000000000000000000";

/// The key directory `ProcessNode` gives a node: `<data dir>-keys`.
fn keys_dir_of(data_dir: &Path) -> PathBuf {
    let mut name = data_dir.file_name().unwrap().to_os_string();
    name.push("-keys");
    data_dir.with_file_name(name)
}

/// Runs `shoal keys <args> --data-dir D --keys-dir K` and returns stdout; panics on failure.
fn keys(args: &[&str], data_dir: &Path) -> String {
    let keys_dir = keys_dir_of(data_dir);
    let mut all: Vec<&str> = vec!["keys"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--keys-dir",
        keys_dir.to_str().unwrap(),
    ]);
    let (status, stdout, stderr) = run_command(Path::new(BIN), &all);
    assert!(status.success(), "shoal {all:?} failed: {stderr}");
    stdout
}

/// Ids of the active master keys (their `mk-*.key` files).
fn master_key_files(keys_dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(keys_dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".key").map(str::to_string)
        })
        .collect();
    ids.sort();
    ids
}

fn line_value(out: &str, prefix: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no '{prefix}' line in:\n{out}"))
        .trim()
        .to_string()
}

/// What the workload expects each item to hold: (table, pk) → counter value.
type Expected = Arc<std::sync::Mutex<HashMap<(String, String), u64>>>;

/// One client's loop: puts new items, reads them back, and increments counters with
/// UpdateItem, in its own key space, until `stop`. Returns (requests, failures).
async fn workload(
    client: Client,
    worker: usize,
    tables: Vec<String>,
    expected: Expected,
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
) -> u64 {
    let mut requests = 0u64;
    let mut i = 0u64;
    let fail = |what: String| {
        failures.fetch_add(1, Ordering::Relaxed);
        eprintln!("FAILED: {what}");
    };
    while !stop.load(Ordering::Relaxed) {
        let table = &tables[usize::try_from(i).unwrap() % tables.len()];
        let pk = format!("w{worker}-{}", i / 3);
        match i % 3 {
            0 => {
                let r = client
                    .put_item()
                    .table_name(table)
                    .item("pk", AttributeValue::S(pk.clone()))
                    .item("n", AttributeValue::N("0".into()))
                    .item("pad", AttributeValue::S("x".repeat(200)))
                    .send()
                    .await;
                match r {
                    Ok(_) => {
                        expected.lock().unwrap().insert((table.clone(), pk), 0);
                    }
                    Err(e) => fail(format!("PutItem: {}", describe_error(&e))),
                }
            }
            1 => {
                let r = client
                    .update_item()
                    .table_name(table)
                    .key("pk", AttributeValue::S(pk.clone()))
                    .update_expression("ADD n :one")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .send()
                    .await;
                match r {
                    Ok(_) => {
                        *expected
                            .lock()
                            .unwrap()
                            .entry((table.clone(), pk))
                            .or_insert(0) += 1;
                    }
                    Err(e) => fail(format!("UpdateItem: {}", describe_error(&e))),
                }
            }
            _ => {
                let r = client
                    .get_item()
                    .table_name(table)
                    .key("pk", AttributeValue::S(pk.clone()))
                    .consistent_read(true)
                    .send()
                    .await;
                match r {
                    Ok(out) => {
                        let want = expected
                            .lock()
                            .unwrap()
                            .get(&(table.clone(), pk.clone()))
                            .copied();
                        let got = out
                            .item
                            .and_then(|it| it.get("n").cloned())
                            .and_then(|n| n.as_n().ok().cloned());
                        if got != want.map(|w| w.to_string()) {
                            fail(format!("GetItem {table}/{pk}: got {got:?}, want {want:?}"));
                        }
                    }
                    Err(e) => fail(format!("GetItem: {}", describe_error(&e))),
                }
            }
        }
        requests += 1;
        i += 1;
    }
    requests
}

async fn assert_every_item(client: &Client, expected: &Expected) {
    let items: Vec<((String, String), u64)> = expected
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert!(
        items.len() > 50,
        "the workload wrote only {} items",
        items.len()
    );
    for ((table, pk), n) in items {
        let got = must_get(client, &table, item([("pk", s(pk.clone()))]))
            .await
            .unwrap_or_else(|| panic!("{table}/{pk} lost"));
        assert!(
            same_value(&got["n"], &shoal_tests::n(n.to_string())),
            "{table}/{pk}: n = {:?}, want {n}",
            got["n"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_rotation_under_a_running_workload_fails_no_request_and_loses_nothing() {
    let mut node = ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .arg("--data-key-rotation-secs")
        .arg("2")
        .start()
        .await;
    let data_dir = node.data_dir().to_path_buf();
    let keys_dir = keys_dir_of(&data_dir);
    let client = node.client();
    let tables = vec!["rot_a".to_string(), "rot_b".to_string()];
    for t in &tables {
        must_create_hash_table(&client, t).await;
    }
    let first_master = master_key_files(&keys_dir);
    assert_eq!(first_master.len(), 1);

    let expected: Expected = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            tokio::spawn(workload(
                node.client(),
                w,
                tables.clone(),
                expected.clone(),
                stop.clone(),
                failures.clone(),
            ))
        })
        .collect();

    // On demand, through the control socket, while the workload runs (and the 2 s schedule
    // rotates data keys on its own).
    let started = Instant::now();
    let mut masters = vec![first_master[0].clone()];
    let mut on_demand = 0;
    for round in 0..2 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let out = tokio::task::spawn_blocking({
            let d = data_dir.clone();
            move || keys(&["rotate-master"], &d)
        })
        .await
        .unwrap();
        let old = line_value(&out, "old master key:");
        let new = line_value(&out, "new master key:");
        assert_eq!(&old, masters.last().unwrap(), "round {round}: {out}");
        assert_ne!(old, new);
        assert_eq!(
            master_key_files(&keys_dir),
            vec![new.clone()],
            "the old master key is not retired"
        );
        masters.push(new);

        tokio::time::sleep(Duration::from_millis(700)).await;
        let args: &[&str] = if round == 0 {
            &["rotate-data"]
        } else {
            &["rotate-data", "--table", "rot_b"]
        };
        let out = tokio::task::spawn_blocking({
            let d = data_dir.clone();
            move || keys(args, &d)
        })
        .await
        .unwrap();
        let rotated = out.matches("rotated the data key of").count();
        assert_eq!(rotated, if round == 0 { 2 } else { 1 }, "{out}");
        on_demand += rotated;
    }
    // Let the schedule (period 2 s, checked every second) rotate at least once more.
    tokio::time::sleep(
        Duration::from_secs(6)
            .checked_sub(started.elapsed())
            .unwrap_or_default()
            .max(Duration::from_millis(2500)),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut requests = 0;
    for w in workers {
        requests += w.await.unwrap();
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "requests failed during rotation"
    );
    assert!(requests > 200, "only {requests} requests ran");

    let rotations = node.stderr().matches("data key rotated").count();
    eprintln!("{requests} requests, {rotations} data-key rotations ({on_demand} on demand)");
    assert!(
        rotations > on_demand,
        "the schedule rotated no data key ({rotations} rotations logged, {on_demand} on demand)\n{}",
        node.stderr()
    );
    assert!(!node.stderr().contains(SECRET), "a secret reached the log");

    assert_every_item(&node.client(), &expected).await;
    node.restart().await;
    assert_every_item(&node.client(), &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_key_secrets_are_never_stored_in_the_clear() {
    let mut node = ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .start()
        .await;
    let data_dir = node.data_dir().to_path_buf();
    let file = data_dir.join("access-keys.json");
    let out = keys(&["create"], &data_dir);
    let (id, secret) = parse_printed_key(&out).unwrap();
    // Through the control socket the key works at once.
    let created = node.client_with_key(&id, &secret);
    created.list_tables().send().await.unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&id));
    for s in [SECRET, secret.as_str()] {
        assert!(
            !text.contains(s),
            "a secret is in access-keys.json:\n{text}"
        );
    }
    assert!(
        !node.stderr().contains(&secret),
        "the new secret was logged"
    );

    // A file written by the previous version, with plaintext secrets, is sealed at start.
    node.terminate().await;
    let legacy = format!(
        r#"{{"keys":[{{"id":"{KEY_ID}","secret":"{SECRET}","created":1700000000,"admin":true}},
            {{"id":"{id}","secret":"{secret}","created":1700000000,"admin":false}}]}}"#
    );
    std::fs::write(&file, legacy).unwrap();
    node.start_again().await;
    node.client_with_key(&id, &secret)
        .list_tables()
        .send()
        .await
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    for s in [SECRET, secret.as_str()] {
        assert!(!text.contains(s), "a legacy secret was not sealed:\n{text}");
    }
    // Deleting through the socket revokes it at once.
    keys(&["delete", &id], &data_dir);
    assert_code(
        node.client_with_key(&id, &secret)
            .list_tables()
            .send()
            .await,
        "UnrecognizedClientException",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_commands_work_on_a_stopped_node() {
    let mut node = ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .start()
        .await;
    let data_dir = node.data_dir().to_path_buf();
    let keys_dir = keys_dir_of(&data_dir);
    let client = node.client();
    must_create_hash_table(&client, "offline").await;
    let it = item([("pk", s("a")), ("v", s("kept"))]);
    must_put(&client, "offline", it.clone()).await;
    node.terminate().await;
    assert!(
        !data_dir.join("control.sock").exists(),
        "the control socket outlived the node"
    );

    let before = master_key_files(&keys_dir);
    let out = keys(&["rotate-master"], &data_dir);
    assert_eq!(line_value(&out, "old master key:"), before[0]);
    assert_eq!(
        master_key_files(&keys_dir),
        vec![line_value(&out, "new master key:")]
    );
    let out = keys(&["rotate-data", "--table", "offline"], &data_dir);
    assert!(out.contains("rotated the data key of offline"), "{out}");
    let out = keys(&["create"], &data_dir);
    let (id, secret) = parse_printed_key(&out).unwrap();
    assert!(keys(&["list"], &data_dir).contains(&id));

    // An unknown table is an error, not a silent success.
    let (status, _, stderr) = run_command(
        Path::new(BIN),
        &[
            "keys",
            "rotate-data",
            "--table",
            "nope",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--keys-dir",
            keys_dir.to_str().unwrap(),
        ],
    );
    assert!(!status.success());
    assert!(stderr.contains("no table named nope"), "{stderr}");

    node.start_again().await;
    let client = node.client_with_key(&id, &secret);
    assert_same_item(
        must_get(&client, "offline", item([("pk", s("a"))]))
            .await
            .as_ref(),
        &it,
    );
}

//! The `shoal` binary as users run it: first-start admin key, key management, configuration
//! sources, clean shutdown and durability across process restarts.
// Helpers outside `#[test]` functions panic on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use shoal_tests::*;

const BIN: &str = env!("CARGO_BIN_EXE_shoal");
const KEY_ID: &str = "AKIDCLITEST000000001";
const SECRET: &str = "cli-test-secret-000000000000000000000000";

/// Waits (up to 5 s) until the process has printed both key lines, and returns them.
async fn wait_for_printed_key(node: &ProcessNode) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(key) = parse_printed_key(&node.stdout()) {
            return key;
        }
        assert!(
            Instant::now() < deadline,
            "no admin key printed; stdout:\n{}\nstderr:\n{}",
            node.stdout(),
            node.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn list_tables_ok(client: &Client) -> bool {
    client.list_tables().send().await.is_ok()
}

/// Polls `f` until it returns `want` (up to 10 s; keys change on a running server within ~2 s).
async fn eventually<F, Fut>(what: &str, want: bool, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while f().await != want {
        assert!(
            Instant::now() < deadline,
            "{what}: still not {want} after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn keys(args: &[&str], data_dir: &Path) -> String {
    let dir = data_dir.to_str().unwrap();
    let mut all: Vec<&str> = vec!["keys"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", dir]);
    let (status, stdout, stderr) = run_command(Path::new(BIN), &all);
    assert!(status.success(), "shoal {all:?} failed: {stderr}");
    stdout
}

fn listed_ids(data_dir: &Path) -> Vec<String> {
    keys(&["list"], data_dir)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_a_working_admin_key_once() {
    let mut node = ProcessNode::builder(BIN).start().await;
    let (id, secret) = wait_for_printed_key(&node).await;
    let out = node.stdout();
    assert!(
        out.contains("Shoal created an admin access key. It is shown only this once"),
        "stdout:\n{out}"
    );
    assert!(
        out.contains("access-keys.json (mode 0600)"),
        "stdout:\n{out}"
    );
    assert!(list_tables_ok(&node.client_with_key(&id, &secret)).await);

    node.restart().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = node.stdout();
    assert!(
        !again.contains("AWS_SECRET_ACCESS_KEY") && !again.contains(&secret),
        "second start printed a key:\n{again}"
    );
    assert!(list_tables_ok(&node.client_with_key(&id, &secret)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_keys_file_is_readable_only_by_its_owner() {
    let node = ProcessNode::builder(BIN).start().await;
    wait_for_printed_key(&node).await;
    let path = node.data_dir().join("access-keys.json");
    let mode = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {:o}", mode & 0o777);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_key_from_environment_works_and_is_not_printed() {
    let node = ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .start()
        .await;
    assert!(list_tables_ok(&node.client()).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = node.stdout();
    assert!(
        !out.contains("AWS_SECRET_ACCESS_KEY") && !out.contains(SECRET),
        "stdout:\n{out}"
    );
    let r = node
        .client_with_key(KEY_ID, "wrong-secret")
        .list_tables()
        .send()
        .await;
    assert_code(r, "InvalidSignatureException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_create_adds_a_key_the_running_server_accepts() {
    let node = ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .start()
        .await;
    let out = keys(&["create"], node.data_dir());
    let (id, secret) = parse_printed_key(&out).unwrap_or_else(|| panic!("no key in:\n{out}"));
    assert!(listed_ids(node.data_dir()).contains(&id));
    let client = node.client_with_key(&id, &secret);
    eventually("new key accepted", true, || list_tables_ok(&client)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_delete_revokes_a_key_on_the_running_server() {
    let node = ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .start()
        .await;
    let out = keys(&["create"], node.data_dir());
    let (id, secret) = parse_printed_key(&out).unwrap_or_else(|| panic!("no key in:\n{out}"));
    let client = node.client_with_key(&id, &secret);
    eventually("new key accepted", true, || list_tables_ok(&client)).await;

    keys(&["delete", &id], node.data_dir());
    assert!(!listed_ids(node.data_dir()).contains(&id));
    eventually("deleted key accepted", false, || list_tables_ok(&client)).await;
    assert_code(
        client.list_tables().send().await,
        "UnrecognizedClientException",
    );
    // The admin key is unaffected.
    assert!(list_tables_ok(&node.client()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_shut_down_cleanly() {
    let mut node = ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .start()
        .await;
    let status = node.terminate().await;
    assert_eq!(status.code(), Some(0), "SIGTERM: {status}");
    node.start_again().await;
    let status = node.interrupt().await;
    assert_eq!(status.code(), Some(0), "SIGINT: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_sets_listen_address_and_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data-from-config");
    let addr = free_addr();
    let config = dir.path().join("shoal.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"{}\"\nregion = \"us-east-1\"\n",
            data.display()
        ),
    )
    .unwrap();
    let node = ProcessNode::builder(BIN)
        .listen(addr)
        .no_listen_flag()
        .data_dir(&data)
        .no_data_dir_flag()
        .arg("--config")
        .arg(config.to_str().unwrap())
        .admin_key(KEY_ID, SECRET)
        .start()
        .await;
    assert!(list_tables_ok(&node.client()).await);
    assert!(data.join("access-keys.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_override_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file_addr = free_addr();
    let flag_addr = free_addr();
    let config = dir.path().join("shoal.toml");
    std::fs::write(&config, format!("listen = \"{file_addr}\"\n")).unwrap();
    let node = ProcessNode::builder(BIN)
        .listen(flag_addr)
        .arg("--config")
        .arg(config.to_str().unwrap())
        .admin_key(KEY_ID, SECRET)
        .start()
        .await;
    assert!(list_tables_ok(&node.client()).await);
    assert!(
        !health_ok(file_addr).await,
        "also listening on the file's address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_variables_set_listen_address_and_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let node = ProcessNode::builder(BIN)
        .listen(addr)
        .no_listen_flag()
        .data_dir(dir.path())
        .no_data_dir_flag()
        .env("SHOAL_LISTEN", addr.to_string())
        .env("SHOAL_DATA_DIR", dir.path().to_str().unwrap())
        .admin_key(KEY_ID, SECRET)
        .start()
        .await;
    assert!(list_tables_ok(&node.client()).await);
    assert!(dir.path().join("access-keys.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_process_restart() {
    let mut node = ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .start()
        .await;
    let client = node.client();
    must_create_hash_table(&client, "durable").await;
    let it = item([
        ("pk", s("a")),
        ("n", n("1E+125")),
        ("l", list([s("x"), null()])),
    ]);
    must_put(&client, "durable", it.clone()).await;
    node.restart().await;
    let client = node.client();
    assert_same_item(
        must_get(&client, "durable", item([("pk", s("a"))]))
            .await
            .as_ref(),
        &it,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let mut node = ProcessNode::builder(BIN)
        .admin_key(KEY_ID, SECRET)
        .start()
        .await;
    let client = node.client();
    must_create_hash_table(&client, "crashy").await;
    for i in 0..20 {
        must_put(
            &client,
            "crashy",
            item([("pk", s(format!("k{i}"))), ("v", n(format!("{i}")))]),
        )
        .await;
    }
    node.kill();
    node.start_again().await;
    let client = node.client();
    must_wait_active(&client, "crashy").await;
    for i in 0..20 {
        let got = must_get(&client, "crashy", item([("pk", s(format!("k{i}")))])).await;
        assert!(got.is_some(), "k{i} lost after SIGKILL");
    }
}

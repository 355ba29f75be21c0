//! The data directory is unreadable without its key directory: a node refuses to start on it
//! with a message naming the key directory (missing, another node's, a master key file removed
//! or damaged), and starts again (data intact) with the right one. A data directory of another
//! format is refused with a message naming both formats.

use shoal_tests::*;

/// A test node's configuration with its data in `data` and its keys in `keys`.
fn config(data: std::path::PathBuf, keys: std::path::PathBuf) -> shoal_node::NodeConfig {
    shoal_node::NodeConfig {
        data_dir: data,
        keys_dir: keys,
        ..node_config(std::path::Path::new("."))
    }
}

async fn start_error(config: shoal_node::NodeConfig) -> String {
    match shoal_node::Node::start(config).await {
        Ok(_) => panic!("the node started"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_directory_without_its_key_directory_is_refused() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "kdir").await;
    must_put(
        &client,
        "kdir",
        item([("pk", s("a")), ("v", s("secret value"))]),
    )
    .await;
    let dir = node.shutdown().await;

    let other_keys = tempfile::tempdir().unwrap();
    let empty = other_keys.path().join("keys");
    let err = match shoal_node::Node::start(config(dir.path().join("data"), empty.clone())).await {
        Ok(_) => panic!("a node started without the key directory its data was written with"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&empty.display().to_string()),
        "message does not name the key directory: {err}"
    );

    // A different, valid key directory (another node's) cannot read it either.
    let stranger = TestNode::start().await;
    let stranger_keys = stranger.shutdown().await;
    let stranger_dir = stranger_keys.path().join("keys");
    let err = start_error(config(dir.path().join("data"), stranger_dir.clone())).await;
    assert!(
        err.contains(&stranger_dir.display().to_string()),
        "message does not name the key directory: {err}"
    );

    // With its own key directory it starts and reads everything back.
    let node = TestNode::start_in(dir).await;
    let got = must_get(&node.client(), "kdir", item([("pk", s("a"))]))
        .await
        .unwrap();
    assert!(same_value(&got["v"], &s("secret value")));
}

/// The master key file of a node's key directory, and the directory.
fn master_key_file(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let keys = dir.join("keys");
    let file = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "key"))
        .expect("a master key file");
    (keys, file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_or_damaged_master_key_file_is_refused_naming_the_key_directory() {
    let node = TestNode::start().await;
    must_create_hash_table(&node.client(), "mkey").await;
    let dir = node.shutdown().await;
    let (keys, file) = master_key_file(dir.path());
    let good = std::fs::read(&file).unwrap();

    // Damaged: one flipped byte in the key material.
    let mut bad = good.clone();
    bad[12] ^= 0x40;
    std::fs::write(&file, &bad).unwrap();
    let err = start_error(config(dir.path().join("data"), keys.clone())).await;
    assert!(
        err.contains(&keys.display().to_string()),
        "damaged key: message does not name the key directory: {err}"
    );

    // Removed.
    std::fs::remove_file(&file).unwrap();
    let err = start_error(config(dir.path().join("data"), keys.clone())).await;
    assert!(
        err.contains(&keys.display().to_string()),
        "removed key: message does not name the key directory: {err}"
    );

    // Put back, the node starts and the table is there.
    std::fs::write(&file, &good).unwrap();
    let node = TestNode::start_in(dir).await;
    must_wait_active(&node.client(), "mkey").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_another_format_is_refused() {
    let node = TestNode::start().await;
    let dir = node.shutdown().await;
    let data = dir.path().join("data");
    std::fs::write(data.join("FORMAT"), "shoal-data-format 99\n").unwrap();
    let err = start_error(config(data.clone(), dir.path().join("keys"))).await;
    assert!(
        err.contains(&data.display().to_string())
            && err.contains("shoal-data-format 99")
            && err.contains(shoal_node::DATA_FORMAT),
        "unclear message: {err}"
    );
}

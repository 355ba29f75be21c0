//! The data directory is unreadable without its key directory: a node refuses to start on it
//! with a message naming the key directory, and starts again (data intact) with the right one.

use shoal_tests::*;

fn config(data: std::path::PathBuf, keys: std::path::PathBuf) -> shoal_node::NodeConfig {
    shoal_node::NodeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data,
        keys_dir: keys,
        region: REGION.into(),
        admin_key: Some(shoal_node::AccessKey {
            id: ADMIN_KEY_ID.into(),
            secret: ADMIN_SECRET.into(),
        }),
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
    let result = shoal_node::Node::start(config(
        dir.path().join("data"),
        stranger_keys.path().join("keys"),
    ))
    .await;
    assert!(
        result.is_err(),
        "another node's master keys opened this data directory"
    );

    // With its own key directory it starts and reads everything back.
    let node = TestNode::start_in(dir).await;
    let got = must_get(&node.client(), "kdir", item([("pk", s("a"))]))
        .await
        .unwrap();
    assert!(same_value(&got["v"], &s("secret value")));
}

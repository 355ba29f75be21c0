//! The cluster mode of the harness (`SHOAL_TEST_CLUSTER=3`): a `TestNode` is a cluster of that
//! many members whose clients talk to node 2, and every member serves what node 2 wrote.
//! Without the variable the same tests check a single node.

use shoal_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_serves_what_the_client_node_wrote_also_after_its_restart() {
    let mut node = TestNode::start().await;
    let size = test_cluster_size();
    assert_eq!(node.cluster_size(), size);
    let status = node.status().await;
    assert_eq!(
        status["nodes"].as_array().map(Vec::len),
        Some(size),
        "{status}"
    );
    let client = node.client();
    must_create_hash_table(&client, "tcl").await;
    must_put(&client, "tcl", item([("pk", s("a")), ("v", n("1"))])).await;
    check_everywhere(&node, "1").await;

    let others: Vec<_> = node
        .member_addrs()
        .into_iter()
        .filter(|a| *a != node.addr())
        .collect();
    node.restart().await;
    // The other members kept running where they were.
    let now: Vec<_> = node
        .member_addrs()
        .into_iter()
        .filter(|a| *a != node.addr())
        .collect();
    assert_eq!(others, now);
    let client = node.client();
    must_put(&client, "tcl", item([("pk", s("a")), ("v", n("2"))])).await;
    check_everywhere(&node, "2").await;
}

async fn check_everywhere(node: &TestNode, v: &str) {
    for addr in node.member_addrs() {
        let c = client_for(&format!("http://{addr}"), ADMIN_KEY_ID, ADMIN_SECRET);
        let got = c
            .get_item()
            .table_name("tcl")
            .key("pk", s("a"))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetItem on {addr}: {}", describe_error(&e)))
            .item
            .unwrap_or_else(|| panic!("{addr}: no item"));
        assert!(same_value(&got["v"], &n(v)), "{addr}: {got:?}");
    }
}

//! Nothing a client writes reaches the disk in plaintext: unique canary strings placed in a table
//! name, attribute names, keys, values and binaries never appear in any file under the data
//! directory (databases, WAL and shared-memory files included); neither does the secret of the
//! node's access key.

use aws_sdk_dynamodb::types::ScalarAttributeType;
use shoal_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_never_appear_in_any_file_of_the_data_directory() {
    let node = TestNode::start().await;
    let client = node.client();
    let table = "canarytbl7Q2XZ";
    must_create_table(
        &client,
        table,
        ("canarypk5RT", ScalarAttributeType::S),
        Some(("canarysk8KW", ScalarAttributeType::S)),
    )
    .await;
    let canaries = [
        "canarytbl7Q2XZ",
        "canarypk5RT",
        "canarysk8KW",
        "CANARYKEYVAL3J9",
        "CANARYSORT4H1",
        "canaryattr2M6",
        "CANARYVALUE9P0",
        "CANARYNESTED1Z8",
        "CANARYBINARY6Y4",
        ADMIN_SECRET,
    ];
    for i in 0..50 {
        must_put(
            &client,
            table,
            item([
                ("canarypk5RT", s(format!("CANARYKEYVAL3J9-{i}"))),
                ("canarysk8KW", s(format!("CANARYSORT4H1-{i}"))),
                ("canaryattr2M6", s(format!("CANARYVALUE9P0 {i}"))),
                ("doc", map([("inner", list([s("CANARYNESTED1Z8")]))])),
                ("bin", b(b"CANARYBINARY6Y4".to_vec())),
            ]),
        )
        .await;
    }
    // Also update and delete some, so every write path has run.
    must_delete(
        &client,
        table,
        item([
            ("canarypk5RT", s("CANARYKEYVAL3J9-0")),
            ("canarysk8KW", s("CANARYSORT4H1-0")),
        ]),
    )
    .await;

    let dir = node.shutdown().await;
    let files = assert_no_plaintext(dir.path(), &canaries);
    assert!(files >= 3, "expected database files, found {files}");
}

//! Index data is ciphertext too: canaries in the index key attributes, projected attributes and
//! values of a table with a local and a global index never appear in any file of the data
//! directory, after the GSI has caught up (so its files hold every entry).

use std::time::Duration;

use aws_sdk_dynamodb::types::{ProjectionType, ScalarAttributeType};
use shoal_tests::*;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_entries_are_never_plaintext_on_disk() {
    let node = TestNode::start().await;
    let client = node.client();
    let table = "idxcanary";
    must_create_indexed_table(
        &client,
        table,
        Some(("sk", ScalarAttributeType::S)),
        &[
            ("lsicanaryQ7Z", ScalarAttributeType::S),
            ("gsicanaryW3P", ScalarAttributeType::S),
        ],
        vec![lsi(
            "bylsi",
            "lsicanaryQ7Z",
            projection(ProjectionType::Include, &["projcanaryK8D"]),
        )],
        vec![gsi(
            "bygsi",
            "gsicanaryW3P",
            None,
            projection(ProjectionType::All, &[]),
        )],
    )
    .await;
    let n = 40;
    for i in 0..n {
        must_put(
            &client,
            table,
            item([
                ("pk", s(format!("pk{}", i % 4))),
                ("sk", s(format!("sk{i}"))),
                ("lsicanaryQ7Z", s(format!("LSIVALUECANARY2R{i}"))),
                ("gsicanaryW3P", s("GSIVALUECANARY5N")),
                ("projcanaryK8D", s(format!("PROJVALUECANARY9T{i}"))),
            ]),
        )
        .await;
    }
    // Wait until the GSI holds every entry, so its file has been written.
    eventually(Duration::from_secs(10), "GSI catches up", || async {
        let got = query_all(
            &client,
            table,
            Some("bygsi"),
            "gsicanaryW3P = :v",
            &[(":v", s("GSIVALUECANARY5N"))],
            true,
            None,
            false,
        )
        .await;
        if got.len() == n {
            Ok(())
        } else {
            Err(format!("{} of {n} entries", got.len()))
        }
    })
    .await;

    let dir = node.shutdown().await;
    let files = assert_no_plaintext(
        dir.path(),
        &[
            "lsicanaryQ7Z",
            "gsicanaryW3P",
            "projcanaryK8D",
            "LSIVALUECANARY2R",
            "GSIVALUECANARY5N",
            "PROJVALUECANARY9T",
            "bylsi",
            "bygsi",
        ],
    );
    let gsi_files = files_under(dir.path())
        .iter()
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with('i') && f.contains("-p"))
        })
        .count();
    assert!(gsi_files >= 1, "expected a GSI file among {files} files");
}

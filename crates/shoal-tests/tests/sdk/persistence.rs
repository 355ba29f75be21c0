//! Items and tables survive a restart of the node on the same data directory.

use aws_sdk_dynamodb::types::TableStatus;
use shoal_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_and_tables_survive_a_restart() {
    let node = TestNode::start().await;
    let client = node.client();
    let before = must_create_hash_range_table(&client, "keep").await;
    must_create_hash_table(&client, "other").await;
    let items: Vec<Item> = (0..20)
        .map(|i| {
            item([
                ("pk", s(format!("user{}", i % 4))),
                ("sk", n(format!("{i}"))),
                (
                    "payload",
                    map([("n", n("1E+125")), ("b", b(vec![i as u8, 255]))]),
                ),
                ("tags", ss(["x", "y"])),
            ])
        })
        .collect();
    for it in &items {
        must_put(&client, "keep", it.clone()).await;
    }
    must_delete(&client, "keep", item([("pk", s("user0")), ("sk", n("0"))])).await;
    client
        .update_item()
        .table_name("keep")
        .key("pk", s("user1"))
        .key("sk", n("1"))
        .update_expression("SET updated = :t REMOVE tags")
        .expression_attribute_values(":t", boolean(true))
        .send()
        .await
        .unwrap();

    let dir = node.shutdown().await;
    let node = TestNode::start_in(dir).await;
    let client = node.client();

    let mut names = must_list_all_tables(&client).await;
    names.sort();
    assert_eq!(names, vec!["keep".to_string(), "other".to_string()]);
    let after = must_wait_active(&client, "keep").await;
    assert_eq!(after.table_status(), Some(&TableStatus::Active));
    assert_eq!(after.table_id(), before.table_id());
    assert_eq!(after.table_arn(), before.table_arn());
    assert_eq!(after.creation_date_time(), before.creation_date_time());
    assert_eq!(after.key_schema(), before.key_schema());

    assert_eq!(
        must_get(&client, "keep", item([("pk", s("user0")), ("sk", n("0"))])).await,
        None
    );
    for (i, it) in items.iter().enumerate().skip(1) {
        let key = item([
            ("pk", s(format!("user{}", i % 4))),
            ("sk", n(format!("{i}"))),
        ]);
        let got = must_get(&client, "keep", key).await;
        if i == 1 {
            let mut expected = it.clone();
            expected.remove("tags");
            expected.insert("updated".into(), boolean(true));
            assert_same_item(got.as_ref(), &expected);
        } else {
            assert_same_item(got.as_ref(), it);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_table_stays_deleted_after_restart() {
    let mut node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "gone").await;
    must_put(&client, "gone", item([("pk", s("a"))])).await;
    client
        .delete_table()
        .table_name("gone")
        .send()
        .await
        .unwrap();
    node.restart().await;
    let client = node.client();
    let r = client.describe_table().table_name("gone").send().await;
    assert_code(r, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_settings_survive_a_restart() {
    use aws_sdk_dynamodb::types::{BillingMode, ProvisionedThroughput, Tag};
    let mut node = TestNode::start().await;
    let client = node.client();
    let arn = must_create_hash_table(&client, "cfg")
        .await
        .table_arn
        .unwrap();
    client
        .update_table()
        .table_name("cfg")
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(3)
                .write_capacity_units(4)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    client
        .tag_resource()
        .resource_arn(&arn)
        .tags(Tag::builder().key("k").value("v").build().unwrap())
        .send()
        .await
        .unwrap();
    must_wait_active(&client, "cfg").await;
    node.restart().await;
    let client = node.client();
    let t = must_wait_active(&client, "cfg").await;
    let pt = t.provisioned_throughput().unwrap();
    assert_eq!(pt.read_capacity_units(), Some(3));
    assert_eq!(pt.write_capacity_units(), Some(4));
    let tags = client
        .list_tags_of_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default();
    assert_eq!(tags.len(), 1);
}

//! Online index operations: UpdateTable creates a GSI on a table with items while writers keep
//! writing (Backfilling shown, then ACTIVE, nothing lost), and deletes one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    CreateGlobalSecondaryIndexAction, DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate,
    IndexStatus, KeyType, ProjectionType, ScalarAttributeType,
};
use shoal_tests::*;

use crate::support::*;

const T: &str = "online";

fn create_action(name: &str, hash: &str, range: Option<&str>) -> GlobalSecondaryIndexUpdate {
    let mut c = CreateGlobalSecondaryIndexAction::builder()
        .index_name(name)
        .key_schema(key_elem(hash, KeyType::Hash))
        .projection(projection(ProjectionType::All, &[]));
    if let Some(r) = range {
        c = c.key_schema(key_elem(r, KeyType::Range));
    }
    GlobalSecondaryIndexUpdate::builder()
        .create(c.build().unwrap())
        .build()
}

fn row(pk: &str, grp: u64, ver: u64) -> Item {
    item([
        ("pk", s(pk)),
        ("grp", s(format!("g{grp}"))),
        ("ver", n(ver.to_string())),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_gsi_while_writers_write_backfills_everything_then_turns_active() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, T).await;
    // Existing items to backfill.
    let mut initial = Vec::new();
    for i in 0..1500u64 {
        initial.push(row(&format!("old{i}"), i % 13, 0));
    }
    must_batch_put(&client, T, initial).await;

    // Writers: overwrite old items (moving them between groups), add new ones, delete some,
    // until told to stop. Each writer owns its keys, so the final table state is known.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (client, stop) = (client.clone(), Arc::clone(&stop));
        writers.push(tokio::spawn(async move {
            let mut ver = 0u64;
            let mut writes = 0usize;
            while !stop.load(Ordering::SeqCst) {
                ver += 1;
                let i = (ver * 7 + w) % 1500;
                if i % 4 != w {
                    continue;
                }
                let pk = format!("old{i}");
                let r = match ver % 5 {
                    4 => client
                        .delete_item()
                        .table_name(T)
                        .key("pk", s(&pk))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| describe_error(&e)),
                    3 => client
                        .put_item()
                        .table_name(T)
                        .set_item(Some(row(&format!("new{w}-{ver}"), ver % 5, ver)))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| describe_error(&e)),
                    _ => client
                        .put_item()
                        .table_name(T)
                        .set_item(Some(row(&pk, ver % 17, ver)))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| describe_error(&e)),
                };
                if let Err(e) = r {
                    panic!("writer {w}: a write failed during the index creation: {e}");
                }
                writes += 1;
            }
            writes
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let out = client
        .update_table()
        .table_name(T)
        .attribute_definitions(attr_def("grp", ScalarAttributeType::S))
        .attribute_definitions(attr_def("ver", ScalarAttributeType::N))
        .global_secondary_index_updates(create_action("by_grp", "grp", Some("ver")))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateTable Create: {}", describe_error(&e)));
    let desc = out.table_description.unwrap();
    let g = desc
        .global_secondary_indexes()
        .iter()
        .find(|g| g.index_name() == Some("by_grp"))
        .expect("the new index is described");
    assert_eq!(g.index_status(), Some(&IndexStatus::Creating));
    assert_eq!(g.backfilling(), Some(true), "Backfilling while CREATING");

    // Writes keep succeeding while the index is created; wait for ACTIVE.
    let started = Instant::now();
    eventually(Duration::from_secs(20), "index ACTIVE", || async {
        match describe_gsi(&client, T, "by_grp").await {
            Some(g) if g.index_status() == Some(&IndexStatus::Active) => {
                assert_ne!(g.backfilling(), Some(true), "ACTIVE but still Backfilling");
                Ok(())
            }
            other => Err(format!(
                "{:?}",
                other.and_then(|g| g.index_status().cloned())
            )),
        }
    })
    .await;
    let build = started.elapsed();
    // Keep writing a little after ACTIVE, then stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let mut writes = 0;
    for w in writers {
        writes += w.await.unwrap();
    }
    assert!(writes > 0, "the writers made no progress");
    eprintln!("index created in {build:?} while {writes} writes went through");

    // The index converges to exactly the table's items: nothing lost, nothing stale.
    let table: BTreeMap<String, Item> = scan_all(&client, T, None, None, None)
        .await
        .into_iter()
        .map(|it| (str_of(&it, "pk").to_string(), it))
        .collect();
    let want: BTreeSet<String> = table.values().map(canon).collect();
    eventually(Duration::from_secs(5), "index equals table", || async {
        let got = scan_all(&client, T, Some("by_grp"), None, None).await;
        let got = canon_set(&got, "by_grp");
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "{} missing, {} unexpected",
                want.difference(&got).count(),
                got.difference(&want).count()
            ))
        }
    })
    .await;
    let g = describe_gsi(&client, T, "by_grp").await.unwrap();
    assert_eq!(g.item_count, Some(table.len() as i64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_gsi_removes_it_and_its_files() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_indexed_table(
        &client,
        T,
        None,
        &[("grp", ScalarAttributeType::S)],
        vec![],
        vec![
            gsi(
                "keep",
                "grp",
                None,
                projection(ProjectionType::KeysOnly, &[]),
            ),
            gsi("drop", "grp", None, projection(ProjectionType::All, &[])),
        ],
    )
    .await;
    for i in 0..50u64 {
        must_put(&client, T, row(&format!("k{i}"), i % 3, i)).await;
    }
    let files = |dir: &std::path::Path| -> Vec<String> {
        let mut v = Vec::new();
        for table_dir in std::fs::read_dir(dir.join("tables")).unwrap() {
            for f in std::fs::read_dir(table_dir.unwrap().path()).unwrap() {
                let name = f.unwrap().file_name().to_string_lossy().to_string();
                if name.starts_with('i') && name.ends_with(".db") {
                    v.push(name);
                }
            }
        }
        v.sort();
        v
    };
    assert_eq!(files(&node.data_dir()).len(), 2, "one file per GSI");

    let out = client
        .update_table()
        .table_name(T)
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .delete(
                    DeleteGlobalSecondaryIndexAction::builder()
                        .index_name("drop")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateTable Delete: {}", describe_error(&e)));
    let desc = out.table_description.unwrap();
    let dropped = desc
        .global_secondary_indexes()
        .iter()
        .find(|g| g.index_name() == Some("drop"))
        .expect("the deleted index is still described, as DELETING");
    assert_eq!(dropped.index_status(), Some(&IndexStatus::Deleting));

    eventually(Duration::from_secs(10), "index gone", || async {
        match describe_gsi(&client, T, "drop").await {
            None => Ok(()),
            Some(g) => Err(format!("{:?}", g.index_status())),
        }
    })
    .await;
    assert_eq!(
        files(&node.data_dir()).len(),
        1,
        "the deleted index's file is removed"
    );
    let err = client
        .query()
        .table_name(T)
        .index_name("drop")
        .key_condition_expression("grp = :g")
        .expression_attribute_values(":g", s("g1"))
        .send()
        .await;
    assert_code(err, "ValidationException");
    // The other index still works and still follows writes.
    must_put(&client, T, row("late", 1, 1)).await;
    eventually(Duration::from_secs(5), "keep follows writes", || async {
        let got = query_all(
            &client,
            T,
            Some("keep"),
            "grp = :g",
            &[(":g", s("g1"))],
            true,
            None,
            false,
        )
        .await;
        if got.len() == 18 {
            Ok(())
        } else {
            Err(format!("{} entries", got.len()))
        }
    })
    .await;

    // DeleteTable removes the remaining index files.
    let dir = node.data_dir();
    client.delete_table().table_name(T).send().await.unwrap();
    assert!(
        files(&dir).is_empty(),
        "DeleteTable left index files: {:?}",
        files(&dir)
    );
}

//! Partitions spread over the nodes: 10 tables are created on 4 real nodes and loaded, then a
//! fifth node joins under a write load (SDK clients with default retries) and replicas move onto
//! it by themselves until each node holds 3/5 of the partitions (files on disk included: a
//! moved-away replica is deleted). The new node is killed (-9) while the first moves stream to
//! it, and restarted. No write fails, and every acknowledged one reads back. Every partition has 3
//! voting replicas on distinct nodes and no learners, no acknowledged item is lost, and every
//! node serves every table: items written through any node read back with `ConsistentRead`
//! through every node (the nodes without a replica forward the call), as do Query, Scan, a GSI
//! Query and DescribeTable's item count. Last, `shoal cluster remove` decommissions a node under
//! load: its replicas move away, it leaves the cluster and stops, and never starts again.
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use serde_json::Value;
use shoal_cluster::load::{assert_readable, partition_groups, s, stop_writers, writer};
use shoal_cluster::{Cluster, sdk_client_with_retries};

const NODES: usize = 5;
const TABLES: usize = 10;
const ITEMS: usize = 20;

/// Partition files (`p<id>.db`) under a node's data directory.
fn partition_files(dir: &Path) -> usize {
    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .flatten()
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path)
                    } else {
                        let name = e.file_name().to_string_lossy().into_owned();
                        usize::from(name.starts_with('p') && name.ends_with(".db"))
                    }
                })
                .sum()
        })
    }
    walk(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitions_spread_over_five_nodes_and_every_node_serves_every_table() {
    let mut c = Cluster::start(NODES - 1).await;
    let tables: Vec<String> = (0..TABLES).map(|t| format!("spread_{t}")).collect();
    for (t, name) in tables.iter().enumerate() {
        c.create_hash_table(1 + t % (NODES - 1), name).await;
    }
    // Some data before the fifth node joins: moved replicas carry it over.
    for name in &tables {
        for k in 0..ITEMS / 2 {
            c.client(1)
                .put_item()
                .table_name(name)
                .item("pk", s(format!("old{k}")))
                .send()
                .await
                .unwrap_or_else(|e| panic!("PutItem {name}: {}", DisplayErrorContext(&e)));
        }
    }
    // Writers through the first four nodes for the whole join and rebalancing.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (1..NODES)
        .map(|via| {
            tokio::spawn(writer(
                sdk_client_with_retries(&c.api_url(via), Duration::from_secs(30)),
                via,
                tables.clone(),
                Arc::clone(&stop),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fifth = c.join_new_node().await;
    assert_eq!(fifth, NODES);
    // Once replicas are being placed on the new node: kill it mid-move, and restart it.
    c.wait_status(
        1,
        Duration::from_secs(60),
        "a replica placed on the new node",
        |s: &Value| {
            s["groups"].as_array().into_iter().flatten().any(|g| {
                g["replicas"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|v| v.as_u64() == Some(NODES as u64)))
            })
        },
    )
    .await;
    c.kill(fifth);
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.restart(fifth).await;

    // Every partition: 3 voters on distinct nodes, no learners; 30 replicas over 5 nodes.
    let placed = |s: &Value| {
        let groups = partition_groups(s);
        groups.len() == TABLES
            && groups.iter().all(|(_, voters, learners)| {
                voters.iter().collect::<BTreeSet<_>>().len() == 3 && learners.is_empty()
            })
    };
    let balanced = |s: &Value| {
        let mut held: BTreeMap<u64, usize> = BTreeMap::new();
        for (_, voters, _) in partition_groups(s) {
            for v in voters {
                *held.entry(v).or_default() += 1;
            }
        }
        placed(s) && held.len() == NODES && held.values().all(|n| *n == 3 * TABLES / NODES)
    };
    c.wait_status(
        1,
        Duration::from_secs(120),
        "every partition with 3 voters and no learners, 6 on each node",
        balanced,
    )
    .await;
    // A moved-away replica's file goes once its group no longer counts the old node.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while (1..=NODES).any(|i| partition_files(c.data_dir(i)) != 3 * TABLES / NODES)
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = c.status(1).await;
    let mut held: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, voters, _) in partition_groups(&status) {
        for v in voters {
            *held.entry(v).or_default() += 1;
        }
    }
    println!("partition replicas per node: {held:?}");
    assert_eq!(held.len(), NODES, "every node holds replicas: {held:?}");
    for (node, n) in &held {
        // 3 x 10 / 5 = 6 each, placed on the least-loaded nodes.
        assert_eq!(*n, 3 * TABLES / NODES, "node {node} holds {n} replicas");
    }
    for i in 1..=NODES {
        let files = partition_files(c.data_dir(i));
        println!("node {i}: {files} partition files");
        assert_eq!(
            files,
            3 * TABLES / NODES,
            "node {i} stores only its own replicas"
        );
    }

    let acked = stop_writers(&stop, writers, "during the join and the moves").await;
    println!(
        "{} writes acknowledged during the join, the kill and the moves",
        acked.len()
    );
    assert!(!acked.is_empty(), "the writers wrote nothing");
    assert_readable(&c, 1..=NODES, &acked).await;
    // The items each table holds now: 10 old, the writers', and the 20 written below.
    let mut per_table: BTreeMap<&str, usize> = BTreeMap::new();
    for (table, _) in &acked {
        *per_table.entry(table.as_str()).or_default() += 1;
    }

    // Writes through every node (each one forwards to nodes it holds no replica of).
    for (t, name) in tables.iter().enumerate() {
        for k in 0..ITEMS {
            let via = 1 + (t + k) % NODES;
            let put = c
                .client(via)
                .put_item()
                .table_name(name)
                .item("pk", s(format!("k{k}")))
                .item("v", s(format!("{name}-{k}")))
                .send()
                .await;
            if let Err(e) = put {
                c.fail(&format!(
                    "PutItem {name}/k{k} through node {via}: {}",
                    DisplayErrorContext(&e)
                ));
            }
        }
    }

    // Every item reads back through every node, with ConsistentRead; Scan and Query too.
    for i in 1..=NODES {
        let client = c.client(i);
        for name in &tables {
            for k in 0..ITEMS {
                let got = client
                    .get_item()
                    .table_name(name)
                    .key("pk", s(format!("k{k}")))
                    .consistent_read(true)
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!("GetItem through node {i}: {}", DisplayErrorContext(&e))
                    });
                let v = got.item.as_ref().and_then(|it| it.get("v")).cloned();
                assert_eq!(
                    v,
                    Some(s(format!("{name}-{k}"))),
                    "{name}/k{k} through node {i}"
                );
            }
            let scanned = client
                .scan()
                .table_name(name)
                .consistent_read(true)
                .send()
                .await
                .unwrap_or_else(|e| panic!("Scan through node {i}: {}", DisplayErrorContext(&e)));
            let want = ITEMS + ITEMS / 2 + per_table.get(name.as_str()).copied().unwrap_or(0);
            assert_eq!(
                scanned.count, want as i32,
                "Scan {name} through node {i}: the items written before and during the moves are there too"
            );
            let queried = client
                .query()
                .table_name(name)
                .key_condition_expression("pk = :k")
                .expression_attribute_values(":k", s("k3"))
                .consistent_read(true)
                .send()
                .await
                .unwrap_or_else(|e| panic!("Query through node {i}: {}", DisplayErrorContext(&e)));
            assert_eq!(queried.count, 1, "Query {name} through node {i}");
        }
        // DescribeTable's item count comes from a replica (refreshed as DynamoDB's is, but
        // exact here): every node reports the same.
        let described = client
            .describe_table()
            .table_name(&tables[0])
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "DescribeTable through node {i}: {}",
                    DisplayErrorContext(&e)
                )
            });
        let want = ITEMS + ITEMS / 2 + per_table.get(tables[0].as_str()).copied().unwrap_or(0);
        assert_eq!(
            described.table.and_then(|t| t.item_count),
            Some(want as i64),
            "ItemCount through node {i}"
        );
    }

    // A conditional write refused on the replica comes back as the same error through a node
    // holding no replica.
    for i in 1..=NODES {
        let refused = c
            .client(i)
            .put_item()
            .table_name(&tables[1])
            .item("pk", s("k0"))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        let err = refused.expect_err("the item exists");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()),
            "node {i}: {}",
            DisplayErrorContext(&err)
        );
    }

    // A table with a GSI: its Query answers through every node.
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    c.client(2)
        .create_table()
        .table_name("spread_gsi")
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("g"))
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_g")
                .key_schema(key("g", KeyType::Hash))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable with a GSI: {}", DisplayErrorContext(&e)));
    for k in 0..ITEMS {
        c.client(1 + k % NODES)
            .put_item()
            .table_name("spread_gsi")
            .item("pk", s(format!("k{k}")))
            .item("g", s(format!("g{}", k % 2)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutItem spread_gsi: {}", DisplayErrorContext(&e)));
    }
    for i in 1..=NODES {
        let client = c.client(i);
        let mut seen = 0;
        for _ in 0..100 {
            let out = client
                .query()
                .table_name("spread_gsi")
                .index_name("by_g")
                .key_condition_expression("g = :g")
                .expression_attribute_values(":g", s("g0"))
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("GSI Query through node {i}: {}", DisplayErrorContext(&e))
                });
            seen = out.count;
            if seen == (ITEMS / 2) as i32 {
                break;
            }
            // GSIs are eventually consistent.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(seen, (ITEMS / 2) as i32, "GSI Query through node {i}");
    }

    decommission(&mut c, &tables).await;
}

/// `shoal cluster remove` of node 2 under a write load: its replicas move to the four others,
/// it leaves the membership, stops by itself and never starts again with its data directory;
/// no write fails and every acknowledged one reads back through the remaining nodes.
async fn decommission(c: &mut Cluster, tables: &[String]) {
    const GONE: usize = 2;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = [1, 3, 4, 5]
        .into_iter()
        .map(|via| {
            tokio::spawn(writer(
                sdk_client_with_retries(&c.api_url(via), Duration::from_secs(30)),
                10 + via,
                tables.to_vec(),
                Arc::clone(&stop),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let remove = |key: &str, secret: &str| {
        c.command()
            .args(["cluster", "remove", "2", "--endpoint", &c.api_url(1)])
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", shoal_cluster::REGION)
            .output()
            .expect("run shoal cluster remove")
    };
    // A wrongly signed request, and one signed by a key that is not an admin key, are refused.
    let refused = remove(shoal_cluster::ADMIN_KEY_ID, "not-the-secret");
    assert!(
        !refused.status.success(),
        "a wrongly signed removal was accepted"
    );
    let data1 = c.data_dir(1).to_path_buf();
    let created = c
        .command()
        .args(["keys", "create", "--data-dir"])
        .arg(&data1)
        .env("SHOAL_KEYS_DIR", data1.parent().unwrap().join("keys"))
        .output()
        .expect("run shoal keys create");
    let text = String::from_utf8_lossy(&created.stdout).into_owned();
    assert!(created.status.success(), "shoal keys create: {text}");
    let printed = |name: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(|v| v.trim_matches(|c| c == '"' || c == '\'').to_string())
            .unwrap_or_else(|| panic!("{name} not printed: {text}"))
    };
    let (id, secret) = (
        printed("AWS_ACCESS_KEY_ID="),
        printed("AWS_SECRET_ACCESS_KEY="),
    );
    let refused = remove(&id, &secret);
    let err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(!refused.status.success(), "a non-admin key removed a node");
    assert!(err.contains("not an admin key"), "{err}");
    // Blocks one of the runtime's workers while it waits; the writers run on the others.
    let out = remove(shoal_cluster::ADMIN_KEY_ID, shoal_cluster::ADMIN_SECRET);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!(
        "shoal cluster remove 2:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "shoal cluster remove failed");
    assert!(
        text.contains("replicas left to move"),
        "no progress printed"
    );
    assert!(text.contains("removed from the cluster"), "no end printed");
    let acked = stop_writers(&stop, writers, "during the removal").await;
    println!("{} writes acknowledged during the removal", acked.len());

    // No group counts node 2; the four others hold 7 or 8 replicas each; it is not offered to
    // clients any more.
    let status = c.status(1).await;
    for (table, voters, learners) in partition_groups(&status) {
        assert!(
            !voters.contains(&(GONE as u64)) && !learners.contains(&(GONE as u64)),
            "{table} still has a replica on the removed node: {voters:?} {learners:?}"
        );
        assert_eq!(voters.len(), 3, "{table}: {voters:?}");
    }
    assert!(
        status["removed_nodes"]
            .as_array()
            .is_some_and(|r| r.iter().any(|v| v.as_u64() == Some(GONE as u64))),
        "{status}"
    );
    let endpoints = c.client(1).describe_endpoints().send().await.unwrap();
    assert!(
        !endpoints
            .endpoints
            .iter()
            .any(|e| e.address.ends_with(&c.api_addr(GONE).to_string())),
        "DescribeEndpoints still offers the removed node"
    );
    // The removed node stops by itself, says why, and refuses to start again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while c.is_running(GONE) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!c.is_running(GONE), "the removed node still runs");
    assert!(
        c.log_tails(200)
            .contains("this node was removed from the cluster"),
        "the removed node's log does not say why it stopped"
    );
    let data = c.data_dir(GONE).to_path_buf();
    let again = c
        .command()
        .arg("start")
        .arg("--listen")
        .arg(shoal_cluster::free_addr().to_string())
        .arg("--cluster-listen")
        .arg(shoal_cluster::free_addr().to_string())
        .arg("--data-dir")
        .arg(&data)
        .arg("--keys-dir")
        .arg(data.parent().unwrap().join("keys"))
        .output()
        .expect("start the removed node again");
    let err = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(!again.status.success(), "the removed node started again");
    assert!(err.contains("removed"), "refusal does not say why: {err}");
    assert_readable(c, [1, 3, 4, 5], &acked).await;
}

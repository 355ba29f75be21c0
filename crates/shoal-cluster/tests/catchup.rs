//! Snapshots of any size: a partition of `SHOAL_CATCHUP_MB` (default 200) MB, with a GSI, is
//! loaded into a one-node cluster; two nodes join and catch up by a streamed snapshot (the log
//! was compacted long before). Then one of them is killed, misses more than a compaction's
//! worth of writes that move GSI entries and delete items, restarts and catches up again.
//! After each catch-up: the new replicas hold the data on disk, an eventually consistent Scan
//! through them counts every item, every replica's GSI answers the same Query, and every
//! acknowledged item reads back with `ConsistentRead`. The returning node is also killed (-9) in
//! the middle of its snapshot transfer and restarted. The catch-up rate is printed.
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, PutRequest, ScalarAttributeType, Select,
    WriteRequest,
};
use shoal_cluster::Cluster;

const TABLE: &str = "big";
const INDEX: &str = "by_group";
/// Bytes of each item's payload.
const PAYLOAD: usize = 16 * 1024;
/// Distinct GSI partition keys.
const GROUPS: u64 = 40;

fn megabytes() -> u64 {
    std::env::var("SHOAL_CATCHUP_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn key(i: u64) -> String {
    format!("k{i:07}")
}

fn item(i: u64, group: u64) -> BTreeMap<String, AttributeValue> {
    // Bytes that vary per item (encrypted pages do not compress anyway).
    let payload: Vec<u8> = (0..PAYLOAD)
        .map(|b| (b as u64 ^ i.wrapping_mul(2_654_435_761)) as u8)
        .collect();
    BTreeMap::from([
        ("pk".to_string(), s(key(i))),
        ("g".to_string(), s(format!("g{group}"))),
        ("payload".to_string(), AttributeValue::B(Blob::new(payload))),
    ])
}

async fn create_table(client: &Client) {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let hash = |n: &str| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(KeyType::Hash)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(TABLE)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("g"))
        .key_schema(hash("pk"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(INDEX)
                .key_schema(hash("g"))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .expect("CreateTable");
    for _ in 0..600 {
        let d = client.describe_table().table_name(TABLE).send().await;
        if let Ok(d) = d
            && d.table().and_then(|t| t.table_status()).map(|s| s.as_str()) == Some("ACTIVE")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("table {TABLE} never became ACTIVE");
}

/// Writes items `range` (item `i` in group `group_of(i)`) with BatchWriteItem from 8 tasks,
/// retrying errors and unprocessed items until every write is acknowledged.
async fn load(client: &Client, range: std::ops::Range<u64>, group_of: fn(u64) -> u64) {
    let ids: Vec<u64> = range.collect();
    let per_task = ids.len().div_ceil(8).max(1);
    let mut tasks = Vec::new();
    for part in ids.chunks(per_task) {
        let client = client.clone();
        let part = part.to_vec();
        tasks.push(tokio::spawn(async move {
            for batch in part.chunks(25) {
                let mut pending: Vec<WriteRequest> = batch
                    .iter()
                    .map(|&i| {
                        WriteRequest::builder()
                            .put_request(
                                PutRequest::builder()
                                    .set_item(Some(item(i, group_of(i)).into_iter().collect()))
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                    })
                    .collect();
                let mut attempts = 0;
                while !pending.is_empty() {
                    attempts += 1;
                    assert!(attempts < 200, "batch never fully written");
                    match client
                        .batch_write_item()
                        .request_items(TABLE, pending.clone())
                        .send()
                        .await
                    {
                        Ok(out) => {
                            pending = out
                                .unprocessed_items()
                                .and_then(|u| u.get(TABLE).cloned())
                                .unwrap_or_default();
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("load task");
    }
}

/// Items counted by an eventually consistent Scan through `client` (retrying while the replica
/// says it is catching up).
async fn scan_count(client: &Client) -> u64 {
    let mut count = 0u64;
    let mut start = None;
    loop {
        let page = loop {
            match client
                .scan()
                .table_name(TABLE)
                .select(Select::Count)
                .set_exclusive_start_key(start.clone())
                .send()
                .await
            {
                Ok(p) => break p,
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        count += page.count() as u64;
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return count,
        }
    }
}

/// The keys each GSI partition key lists through `client` (eventually consistent, the local
/// replica's index).
async fn gsi_view(client: &Client) -> BTreeMap<String, BTreeSet<String>> {
    let mut view = BTreeMap::new();
    for g in 0..GROUPS {
        let group = format!("g{g}");
        let mut keys = BTreeSet::new();
        let mut start = None;
        loop {
            let page = loop {
                match client
                    .query()
                    .table_name(TABLE)
                    .index_name(INDEX)
                    .key_condition_expression("g = :g")
                    .expression_attribute_values(":g", s(&group))
                    .set_exclusive_start_key(start.clone())
                    .send()
                    .await
                {
                    Ok(p) => break p,
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
            for it in page.items() {
                if let Some(AttributeValue::S(k)) = it.get("pk") {
                    keys.insert(k.clone());
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        view.insert(group, keys);
    }
    view
}

/// The GSI view every acknowledged write implies.
fn expected_gsi(items: &BTreeMap<u64, u64>) -> BTreeMap<String, BTreeSet<String>> {
    let mut view: BTreeMap<String, BTreeSet<String>> = (0..GROUPS)
        .map(|g| (format!("g{g}"), BTreeSet::new()))
        .collect();
    for (i, g) in items {
        view.entry(format!("g{g}")).or_default().insert(key(*i));
    }
    view
}

/// Checks every node: the Scan count, the GSI (waiting for the shippers), and every item by a
/// consistent BatchGetItem through `via`.
async fn check_everything(c: &Cluster, items: &BTreeMap<u64, u64>, via: usize) {
    let want = expected_gsi(items);
    for i in 1..=c.len() {
        let client = c.client_with_timeout(i, Duration::from_secs(30));
        assert_eq!(
            scan_count(&client).await,
            items.len() as u64,
            "eventually consistent Scan count through node {i}"
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = gsi_view(&client).await;
            if got == want {
                break;
            }
            if Instant::now() > deadline {
                let diff: Vec<_> = want
                    .iter()
                    .filter(|(g, k)| got.get(*g) != Some(k))
                    .map(|(g, k)| (g, k.len(), got.get(g).map_or(0, BTreeSet::len)))
                    .take(5)
                    .collect();
                c.fail(&format!(
                    "node {i}'s GSI differs from the acknowledged writes (group, want, got): {diff:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let client = c.client_with_timeout(via, Duration::from_secs(30));
    let ids: Vec<u64> = items.keys().copied().collect();
    for chunk in ids.chunks(100) {
        let mut keys = KeysAndAttributes::builder()
            .consistent_read(true)
            .projection_expression("pk, g");
        for i in chunk {
            keys = keys.keys(std::collections::HashMap::from([(
                "pk".to_string(),
                s(key(*i)),
            )]));
        }
        let mut request = Some(keys.build().unwrap());
        let mut found = 0;
        while let Some(r) = request.take() {
            let out = client
                .batch_get_item()
                .request_items(TABLE, r.clone())
                .send()
                .await;
            let Ok(out) = out else {
                request = Some(r);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            for it in out
                .responses()
                .and_then(|m| m.get(TABLE))
                .into_iter()
                .flatten()
            {
                let Some(AttributeValue::S(k)) = it.get("pk") else {
                    panic!("an item without pk");
                };
                let i: u64 = k[1..].parse().unwrap();
                assert_eq!(
                    it.get("g"),
                    Some(&s(format!("g{}", items[&i]))),
                    "item {k} through node {via}"
                );
                found += 1;
            }
            request = out
                .unprocessed_keys()
                .and_then(|u| u.get(TABLE).cloned())
                .filter(|k| !k.keys().is_empty());
        }
        assert_eq!(
            found,
            chunk.len(),
            "acknowledged items read back through node {via}"
        );
    }
}

/// Eventually consistent GetItems of loaded keys through `client` until `stop`: returns how
/// many found their item, how many were refused, and the wrong answers (an item missing, a
/// table not found).
async fn read_during_catch_up(
    client: Client,
    n: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (u64, u64, Vec<String>) {
    let (mut found, mut refused, mut wrong) = (0u64, 0u64, Vec::new());
    let mut i = 0u64;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        i = (i + 7919) % n;
        match client
            .get_item()
            .table_name(TABLE)
            .key("pk", s(key(i)))
            .projection_expression("pk")
            .send()
            .await
        {
            Ok(out) if out.item().is_some() => found += 1,
            Ok(_) => wrong.push(format!("{} missing", key(i))),
            Err(e) => {
                let text = format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e));
                if text.contains("ResourceNotFoundException") {
                    wrong.push(format!("{}: {text}", key(i)));
                }
                refused += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    (found, refused, wrong)
}

/// Waits up to 10 minutes until node `i` is caught up in every group it holds.
async fn wait_caught_up(c: &mut Cluster, i: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        if c.caught_up(i).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// Files named `*.staging` under `dir` (snapshots being streamed in).
fn staging_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| {
                let path = e.path();
                if path.is_dir() {
                    staging_files(&path)
                } else {
                    usize::from(path.to_string_lossy().ends_with(".staging"))
                }
            })
            .sum()
    })
}

fn snapshots_received(c: &Cluster, i: usize) -> usize {
    std::fs::read_to_string(c.dir().join(format!("node{i}/log")))
        .unwrap_or_default()
        .matches("partition snapshot received")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_partitions_catch_up_on_new_and_returning_nodes() {
    let mb = megabytes();
    let n = (mb * 1_000_000).div_ceil(PAYLOAD as u64);
    let mut c = Cluster::start(1).await;
    create_table(&c.client(1)).await;
    let loaded = Instant::now();
    load(&c.client(1), 0..n, |i| i % GROUPS).await;
    let mut items: BTreeMap<u64, u64> = (0..n).map(|i| (i, i % GROUPS)).collect();
    eprintln!(
        "loaded {n} items ({mb} MB) in {:.1?}; node 1 holds {} MB on disk",
        loaded.elapsed(),
        c.data_bytes(1) / 1_000_000
    );

    // Two new nodes: the log was compacted long ago, so only a snapshot can bring them up.
    let joined = Instant::now();
    let second = c.join_new_node().await;
    // While node 2 catches up, eventually consistent reads through it either wait until it has
    // or are refused (retryable): never answered from the empty or partial replica.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = tokio::spawn(read_during_catch_up(
        c.client_with_timeout(second, Duration::from_secs(10)),
        n,
        std::sync::Arc::clone(&stop),
    ));
    c.join_new_node().await;
    c.wait_replicated().await;
    for i in [2, 3] {
        if !wait_caught_up(&mut c, i).await {
            c.fail(&format!("node {i} did not catch up"));
        }
    }
    let secs = joined.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (found, refused, wrong) = reader.await.unwrap();
    eprintln!(
        "reads through node 2 while it caught up: {found} answered, {refused} refused (retryable)"
    );
    assert!(
        wrong.is_empty(),
        "node 2 answered from before its catch-up: {wrong:?}"
    );
    assert!(
        found > 0,
        "no read through node 2 succeeded once it caught up"
    );
    eprintln!(
        "nodes 2 and 3 caught up in {secs:.1} s: {:.1} MB/s per node; on disk: {} MB and {} MB",
        mb as f64 / secs,
        c.data_bytes(2) / 1_000_000,
        c.data_bytes(3) / 1_000_000
    );
    for i in [2, 3] {
        assert!(
            snapshots_received(&c, i) >= 1,
            "node {i} caught up without a snapshot"
        );
        assert!(
            c.data_bytes(i) >= mb * 1_000_000 * 9 / 10,
            "node {i} holds only {} bytes",
            c.data_bytes(i)
        );
    }
    check_everything(&c, &items, 3).await;

    // Node 3 misses more than a compaction's worth of writes: GSI entries move, items go.
    let id3 = c.node_id(3).await;
    c.kill(3);
    let client = c.client(1);
    let moved = 1500.min(n);
    for i in 0..moved {
        let g = (i + 7) % GROUPS;
        loop {
            let put = client
                .put_item()
                .table_name(TABLE)
                .set_item(Some(item(i, g).into_iter().collect()))
                .send()
                .await;
            if put.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        items.insert(i, g);
    }
    for i in moved..(moved + 200).min(n) {
        loop {
            let del = client
                .delete_item()
                .table_name(TABLE)
                .key("pk", s(key(i)))
                .send()
                .await;
            if del.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        items.remove(&i);
    }
    let before = snapshots_received(&c, 3);
    // A crash in the middle of the transfer: node 3 is killed (-9) while the snapshot streams
    // into its staging files, then restarted; the half-written staging files are discarded and
    // the transfer starts over.
    c.restart(3).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(s) = c.try_status(3).await
            && s["groups"].as_array().into_iter().flatten().any(|g| {
                g["catching_up"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i.as_u64() == Some(id3)))
            })
        {
            break;
        }
        if Instant::now() > deadline {
            c.fail("node 3 was never seen catching up by snapshot after its restart");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    c.kill(3);
    eprintln!(
        "killed node 3 during its snapshot transfer; {} staging file(s) left on disk",
        staging_files(c.data_dir(3))
    );
    let restarted = Instant::now();
    c.restart(3).await;
    if !wait_caught_up(&mut c, 3).await {
        c.fail("node 3 did not catch up after its restart");
    }
    eprintln!(
        "node 3 caught up after missing compacted log in {:.1?}",
        restarted.elapsed()
    );
    assert!(
        snapshots_received(&c, 3) > before,
        "node 3 caught up without a snapshot after missing compacted log"
    );
    assert_eq!(
        staging_files(c.data_dir(3)),
        0,
        "staging files outlived the transfer"
    );
    check_everything(&c, &items, 3).await;
}

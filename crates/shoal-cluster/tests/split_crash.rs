//! Splits survive `kill -9`: a table on 3 real nodes with a small split size
//! (`SHOAL_SPLIT_SIZE_BYTES=131072`) grows under a write load while a nemesis kills nodes with
//! SIGKILL (each in turn, the one leading the most partitions first) and restarts them, so
//! splits are cut at every step: between the metadata change and the partition's log, while a
//! child's rows are being copied, before the parent dropped them. Writes that fail while a node
//! is down are not counted; every acknowledged one must read back afterwards, through every
//! node, with `ConsistentRead`, the partitions must tile the hash space with 3 voters each, and
//! a Scan must return each item once.
//!
//! `cargo test -p shoal-cluster --test split_crash -- --nocapture` prints the counts.
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use shoal_cluster::load::{assert_readable, partition_groups, s};
use shoal_cluster::{Cluster, sdk_client_with_retries};

const TABLE: &str = "crashy";
const NODES: usize = 3;
const WRITERS: usize = 4;
/// Kill/restart rounds of the nemesis.
const ROUNDS: usize = 4;

/// One partition group of the table: (hash range, voters, learners).
type Group = ((u64, u64), Vec<u64>, Vec<u64>);

/// The table's partition groups.
fn groups(status: &Value) -> Vec<Group> {
    let hex = |v: &Value| u64::from_str_radix(v.as_str().unwrap_or(""), 16).ok();
    status["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["kind"] == "partition" && g["table"] == TABLE)
        .filter_map(|g| {
            let range = (hex(&g["hash_range"][0])?, hex(&g["hash_range"][1])?);
            let ids = |v: &Value| -> Vec<u64> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_u64)
                    .collect()
            };
            Some((range, ids(&g["voters"]), ids(&g["learners"])))
        })
        .collect()
}

/// Whether the ranges tile `0..=u64::MAX` exactly.
fn tiles(mut ranges: Vec<(u64, u64)>) -> bool {
    ranges.sort_unstable();
    let mut next = Some(0u64);
    for (start, end) in ranges {
        if Some(start) != next || end < start {
            return false;
        }
        next = end.checked_add(1);
    }
    next.is_none()
}

/// Puts ~1 KB items through the nodes in turn until `stop`; returns the acknowledged keys and
/// the number of failed writes (a node was down: their outcome is unknown, so they are not
/// counted either way).
async fn writer(
    clients: Vec<aws_sdk_dynamodb::Client>,
    name: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<String>, usize) {
    let (mut acked, mut failed) = (Vec::new(), 0);
    let pad = "x".repeat(1000);
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let key = format!("w{name}-{n}");
        let client = &clients[(n + name) % clients.len()];
        match client
            .put_item()
            .table_name(TABLE)
            .item("pk", s(key.clone()))
            .item("pad", AttributeValue::S(pad.clone()))
            .send()
            .await
        {
            Ok(_) => acked.push(key),
            Err(_) => {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    (acked, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn splits_cut_by_kill_minus_9_lose_no_acknowledged_write() {
    let mut c = Cluster::start_with_env(NODES, &[("SHOAL_SPLIT_SIZE_BYTES", "131072")]).await;
    c.create_hash_table(1, TABLE).await;
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (1..=NODES)
        .map(|i| sdk_client_with_retries(&c.api_url(i), Duration::from_secs(20)))
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(clients.clone(), w, Arc::clone(&stop))))
        .collect();

    let mut killed = Vec::new();
    for round in 0..ROUNDS {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        // The node leading most of the table's partitions first, then the others in turn.
        let victim = if round == 0 {
            c.leader_of(TABLE).await.unwrap_or(1)
        } else {
            killed.last().copied().unwrap_or(0) % NODES + 1
        };
        let status = c.status(victim % NODES + 1).await;
        println!(
            "+{:.1}s: round {round}: {} partitions; kill -9 node {victim}",
            started.elapsed().as_secs_f64(),
            groups(&status).len()
        );
        c.kill(victim);
        killed.push(victim);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        c.restart(victim).await;
        c.wait_healthy(victim).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    let mut failed = 0;
    for w in writers {
        let (ok, f) = w.await.expect("writer task");
        acked.extend(ok);
        failed += f;
    }
    println!(
        "+{:.1}s: load stopped: {} writes acknowledged, {failed} failed while nodes were down",
        started.elapsed().as_secs_f64(),
        acked.len()
    );

    // Settled: the partitions tile the hash space, each with 3 voters and no learners.
    let status = c
        .wait_status(
            1,
            Duration::from_secs(90),
            "the table's partitions settled (3 voters each, tiling the hash space)",
            |s: &Value| {
                let g = groups(s);
                g.len() > 1
                    && tiles(g.iter().map(|(r, _, _)| *r).collect())
                    && g.iter()
                        .all(|(_, voters, learners)| voters.len() == NODES && learners.is_empty())
            },
        )
        .await;
    let partitions = groups(&status).len();
    println!(
        "+{:.1}s: settled with {partitions} partitions ({} partition groups in all)",
        started.elapsed().as_secs_f64(),
        partition_groups(&status).len()
    );
    assert!(
        partitions >= 4,
        "the table split only into {partitions} partitions"
    );

    // Every acknowledged write reads back through every node.
    let pairs: Vec<(String, String)> = acked
        .iter()
        .map(|k| (TABLE.to_string(), k.clone()))
        .collect();
    assert_readable(&c, 1..=NODES, &pairs).await;

    // A Scan returns each item once; every acknowledged one is among them.
    let client = c.client(2);
    let mut seen = BTreeSet::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(TABLE)
            .limit(100)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("Scan");
        for item in page.items() {
            let key = item["pk"].as_s().unwrap().clone();
            assert!(seen.insert(key.clone()), "Scan returned {key} twice");
        }
        match page.last_evaluated_key() {
            Some(k) => start = Some(k.clone()),
            None => break,
        }
    }
    let missing: Vec<&String> = acked.iter().filter(|k| !seen.contains(*k)).collect();
    assert!(missing.is_empty(), "Scan misses {missing:?}");
    println!(
        "+{:.1}s: {} acknowledged writes read back through {NODES} nodes; Scan returned {} items once each",
        started.elapsed().as_secs_f64(),
        acked.len(),
        seen.len()
    );
}

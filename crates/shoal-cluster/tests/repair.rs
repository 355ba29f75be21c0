//! Permanent loss is repaired by the cluster itself. Four real nodes with a short dead-node
//! timeout (`SHOAL_DEAD_NODE_TIMEOUT`) hold 8 tables; SDK writers (default retries) write through
//! three of them the whole time.
//!
//! 1. Node 4 is killed (-9) and never comes back. `/status` shows it down with the time until
//!    it is declared dead and its partitions under-replicated; then dead; then its replicas are
//!    replaced on the three live nodes and it is removed. Every partition ends with 3 voters on
//!    live nodes, no write failed, every acknowledged write reads back through every live node,
//!    and DescribeEndpoints no longer offers it.
//! 2. Node 3's disk is replaced: killed, its data and keys wiped, and started again at the same
//!    addresses with a join token. It is a new member (a new id, so it can never vote again in a
//!    term its old self voted in); the old id is declared dead at once, its replicas are rebuilt
//!    on the new node from the two others, and every acknowledged write reads back through it.
//! 3. Two of three replicas are lost at once: a write fails within seconds with a retryable
//!    error saying the partition lost its quorum, and succeeds again once one is back.
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use serde_json::Value;
use shoal_cluster::load::{assert_readable, partition_groups, s, stop_writers, writer};
use shoal_cluster::{Cluster, sdk_client_with_retries};

const TABLES: usize = 8;
const DEAD_AFTER_SECS: u64 = 6;

/// The `nodes` entry of member `id` in `status`.
fn node(status: &Value, id: u64) -> Option<&Value> {
    status["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["id"].as_u64() == Some(id))
}

/// Every partition has exactly 3 voters, all in `live`, and no learners.
fn repaired(status: &Value, live: &BTreeSet<u64>) -> bool {
    let groups = partition_groups(status);
    groups.len() == TABLES
        && groups.iter().all(|(_, voters, learners)| {
            voters.len() == 3 && voters.iter().all(|v| live.contains(v)) && learners.is_empty()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_nodes_are_replaced_and_a_wiped_node_rejoins_as_a_new_member() {
    let timeout = DEAD_AFTER_SECS.to_string();
    let mut c = Cluster::start_with_env(4, &[("SHOAL_DEAD_NODE_TIMEOUT", &timeout)]).await;
    let tables: Vec<String> = (0..TABLES).map(|t| format!("repair_{t}")).collect();
    for (t, name) in tables.iter().enumerate() {
        c.create_hash_table(1 + t % 4, name).await;
        for k in 0..5 {
            c.client(1)
                .put_item()
                .table_name(name)
                .item("pk", s(format!("old{k}")))
                .send()
                .await
                .unwrap_or_else(|e| panic!("PutItem {name}: {}", DisplayErrorContext(&e)));
        }
    }
    let mut ids = Vec::new();
    for i in 1..=4 {
        ids.push(c.node_id(i).await);
    }
    let lost = ids[3];
    let status = c.status(1).await;
    assert!(
        partition_groups(&status)
            .iter()
            .any(|(_, voters, _)| voters.contains(&lost)),
        "node 4 holds no replica: nothing to repair"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let start_writers = |c: &Cluster, via: &[usize]| {
        via.iter()
            .map(|&i| {
                tokio::spawn(writer(
                    sdk_client_with_retries(&c.api_url(i), Duration::from_secs(30)),
                    i,
                    tables.clone(),
                    Arc::clone(&stop),
                ))
            })
            .collect::<Vec<_>>()
    };
    let writers = start_writers(&c, &[1, 2, 3]);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 1. Node 4 is lost for good.
    c.kill(4);
    let killed = Instant::now();
    c.wait_status(
        1,
        Duration::from_secs(DEAD_AFTER_SECS),
        "the lost node shown down, with the time until it is declared dead, and its partitions under-replicated",
        |st: &Value| {
            node(st, lost).is_some_and(|n| n["state"] == "down" && n["dead_in_secs"].is_u64())
                && st["under_replicated"].as_array().is_some_and(|u| !u.is_empty())
        },
    )
    .await;
    c.wait_status(
        1,
        Duration::from_secs(30),
        "the lost node declared dead",
        |st: &Value| {
            node(st, lost).is_some_and(|n| n["state"] == "dead")
                || st["removed_nodes"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|v| v.as_u64() == Some(lost)))
        },
    )
    .await;
    let declared = killed.elapsed();
    assert!(
        declared >= Duration::from_secs(DEAD_AFTER_SECS),
        "declared dead after {declared:?}, before the timeout"
    );
    let live: BTreeSet<u64> = ids[..3].iter().copied().collect();
    c.wait_status(
        1,
        Duration::from_secs(120),
        "every partition back to 3 voters on live nodes, and the lost node removed",
        |st: &Value| {
            repaired(st, &live)
                && st["removed_nodes"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|v| v.as_u64() == Some(lost)))
                && st["under_replicated"].as_array().is_some_and(Vec::is_empty)
        },
    )
    .await;
    println!(
        "node {lost}: declared dead {:.1}s after the kill, repaired and removed {:.1}s after it",
        declared.as_secs_f64(),
        killed.elapsed().as_secs_f64()
    );
    let acked = stop_writers(&stop, writers, "while a node was lost and replaced").await;
    println!("{} writes acknowledged while node 4 was lost", acked.len());
    assert!(!acked.is_empty(), "the writers wrote nothing");
    assert_readable(&c, 1..=3, &acked).await;
    let endpoints = c
        .client(1)
        .describe_endpoints()
        .send()
        .await
        .expect("DescribeEndpoints");
    let lost_api = c.api_addr(4).to_string();
    assert!(
        endpoints
            .endpoints()
            .iter()
            .all(|e| !e.address().contains(&lost_api)),
        "DescribeEndpoints still offers the lost node: {endpoints:?}"
    );

    // 2. Node 3's disk is replaced: it rejoins from the same addresses as a new member.
    let old = ids[2];
    stop.store(false, std::sync::atomic::Ordering::SeqCst);
    let writers = start_writers(&c, &[1, 2]);
    c.rejoin_wiped(3, 1).await;
    let new = c.status(3).await["node_id"].as_u64().unwrap();
    assert_ne!(new, old, "the wiped node got its old id back");
    assert!(
        !ids.contains(&new),
        "the wiped node got a used id ({new}): ids are never reused"
    );
    let live: BTreeSet<u64> = [ids[0], ids[1], new].into_iter().collect();
    c.wait_status(
        1,
        Duration::from_secs(120),
        "the old identity dead and removed, its replicas rebuilt on the new member",
        |st: &Value| {
            // With three live nodes, every partition has a voter (caught up) on the new one.
            repaired(st, &live)
                && st["removed_nodes"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|v| v.as_u64() == Some(old)))
        },
    )
    .await;
    let rejoined = stop_writers(&stop, writers, "while a wiped node rejoined").await;
    println!(
        "{} writes acknowledged while node 3 rejoined as node {new}",
        rejoined.len()
    );
    let all: Vec<(String, String)> = acked.into_iter().chain(rejoined).collect();
    assert_readable(&c, 1..=3, &all).await;

    // 3. Two of the three replicas of every partition are lost at once: a write fails fast
    //    with a retryable error that says why (no 12 s hang), and works again once a quorum is
    //    back.
    c.kill(2);
    c.kill(3);
    let once = shoal_cluster::sdk_client(&c.api_url(1), Duration::from_secs(30));
    let asked = Instant::now();
    let err = once
        .put_item()
        .table_name(&tables[0])
        .item("pk", s("during-quorum-loss"))
        .send()
        .await
        .expect_err("a write without a quorum succeeded");
    let waited = asked.elapsed();
    let text = format!("{}", DisplayErrorContext(&err));
    println!("without a quorum: failed after {waited:?}: {text}");
    // Either no leader was left to take it, or the leader stepped down with it in flight.
    assert!(text.contains("lost its quorum"), "{text}");
    assert!(
        text.contains("InternalServerError"),
        "not retryable: {text}"
    );
    assert!(
        waited < Duration::from_secs(8),
        "took {waited:?} to fail (the route deadline is 12 s)"
    );
    c.restart(2).await;
    let retrying = sdk_client_with_retries(&c.api_url(1), Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match retrying
            .put_item()
            .table_name(&tables[0])
            .item("pk", s("quorum-back"))
            .send()
            .await
        {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                println!("waiting for the quorum: {}", DisplayErrorContext(&e));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!(
                "no write once a quorum is back: {}",
                DisplayErrorContext(&e)
            ),
        }
    }
    assert_readable(
        &c,
        [1, 2],
        &[(tables[0].clone(), "quorum-back".to_string())],
    )
    .await;
}

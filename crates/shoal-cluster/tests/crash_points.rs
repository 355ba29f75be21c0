//! A node that dies between its Raft log's fsync and the apply of what it wrote loses nothing.
//!
//! The crash point `raft-after-log-write` (FAILPOINTS, see docs/OPERATIONS.md) aborts the
//! process right after a round's durable log write, before any of the round is applied or
//! answered: the entries are on disk, the partitions do not have them. Each of the three nodes in
//! turn (the table's partition leader first) is restarted with the crash point armed for its
//! 60th log write while writers put items through every node; it crashes mid-load, and is
//! restarted clean. Then every acknowledged write reads back with ConsistentRead through every
//! node, and from the crashed node's own replica (an eventually consistent read served there
//! once it caught up): the entries it had logged but not applied were applied on restart.
//!
//! `cargo test -p shoal-cluster --test crash_points -- --nocapture` prints the counts.
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use shoal_cluster::load::{assert_readable, s};
use shoal_cluster::{Cluster, sdk_client, sdk_client_with_retries};

const TABLE: &str = "crashpoint";
const NODES: usize = 3;
const WRITERS: usize = 3;

/// Puts new items through the nodes in turn until `stop`; returns the acknowledged keys.
async fn writer(clients: Vec<Client>, w: usize, stop: Arc<AtomicBool>) -> (Vec<String>, usize) {
    let (mut acked, mut failed) = (Vec::new(), 0);
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let key = format!("w{w}-{n}");
        match clients[(n + w) % clients.len()]
            .put_item()
            .table_name(TABLE)
            .item("pk", s(key.clone()))
            .item("v", s("x".repeat(200)))
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

/// Reads `keys` from node `i`'s own replica (eventually consistent reads are served by a local
/// replica that caught up), retrying each for a while.
async fn own_replica_has(c: &Cluster, i: usize, keys: &[String]) {
    let client = sdk_client(&c.api_url(i), Duration::from_secs(10));
    for key in keys {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = client
                .get_item()
                .table_name(TABLE)
                .key("pk", s(key.clone()))
                .send()
                .await;
            if matches!(&got, Ok(o) if o.item.is_some()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {i}'s replica lacks acknowledged {key}: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_between_log_fsync_and_apply_loses_no_acknowledged_write() {
    let mut c = Cluster::start(NODES).await;
    c.create_hash_table(1, TABLE).await;
    let started = Instant::now();
    let leader = c.leader_of(TABLE).await.unwrap_or(1);
    let order: Vec<usize> = (0..NODES).map(|k| (leader - 1 + k) % NODES + 1).collect();
    let mut all_acked = Vec::new();
    for victim in order {
        let clients: Vec<Client> = (1..=NODES)
            .map(|i| sdk_client_with_retries(&c.api_url(i), Duration::from_secs(20)))
            .collect();
        c.restart_with_env(
            victim,
            &[("FAILPOINTS", "raft-after-log-write=60*off->return")],
        );
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(writer(clients.clone(), w + 10 * victim, Arc::clone(&stop))))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while c.is_running(victim) {
            assert!(
                Instant::now() < deadline,
                "node {victim} never reached its crash point"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let crashed_at = started.elapsed();
        // Writes go on while it is down, then it comes back clean.
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.restart(victim).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::SeqCst);
        let mut acked = Vec::new();
        let mut failed = 0;
        for w in writers {
            let (ok, f) = w.await.expect("writer");
            acked.extend(ok);
            failed += f;
        }
        println!(
            "node {victim} crashed after its 60th log write at +{:.1}s; {} writes acknowledged \
             around it, {failed} failed",
            crashed_at.as_secs_f64(),
            acked.len()
        );
        assert!(
            acked.len() >= 20,
            "too few writes around the crash: {}",
            acked.len()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !c.caught_up(victim).await {
            assert!(Instant::now() < deadline, "node {victim} did not catch up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        own_replica_has(&c, victim, &acked).await;
        all_acked.extend(acked);
    }
    let pairs: Vec<(String, String)> = all_acked
        .iter()
        .map(|k| (TABLE.to_string(), k.clone()))
        .collect();
    assert_readable(&c, 1..=NODES, &pairs).await;
    println!(
        "+{:.1}s: {} acknowledged writes read back through every node",
        started.elapsed().as_secs_f64(),
        pairs.len()
    );
}

//! A rolling restart fails no request: each node in turn is stopped with SIGTERM (as a
//! supervisor or an upgrade does) while writers keep writing through the other nodes, and
//! started again. A stopping node first hands the groups it leads to another voter and declines
//! leadership, and a write in flight when leadership moves follows its entry to the new leader,
//! so no write fails (the clients retry nothing), no node logs a 5xx answer, and none is lost.
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use shoal_cluster::Cluster;

const TABLES: [&str; 3] = ["rr0", "rr1", "rr2"];

/// The two tests start clusters of their own: one at a time on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Writes new items to every table through `client` until `stop`; returns the acknowledged
/// (table, key) pairs and the failures.
async fn writer(
    client: Client,
    name: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<(String, String)>, Vec<String>) {
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let table = TABLES[(n as usize) % TABLES.len()];
        let key = format!("w{name}-{n}");
        match client
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(key.clone()))
            .item("v", AttributeValue::N(n.to_string()))
            .send()
            .await
        {
            Ok(_) => acked.push((table.to_string(), key)),
            Err(e) => failed.push(format!("{table}/{key}: {}", DisplayErrorContext(&e))),
        }
    }
    (acked, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_of_3_nodes_with_sigterm_fails_no_request() {
    rolling_restart(3).await;
}

/// Five nodes: the metadata group has five voters; each partition has three, on three of the
/// five nodes (the other two forward to them).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_of_5_nodes_with_sigterm_fails_no_request() {
    rolling_restart(5).await;
}

async fn rolling_restart(n: usize) {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::start(n).await;
    for t in TABLES {
        c.create_hash_table(1, t).await;
    }
    let mut all_acked = Vec::new();
    let order: Vec<usize> = (1..=n).rev().collect();
    for stopped in order {
        // Writers go through two other nodes (a client of the stopping node loses its server).
        let others: Vec<usize> = (1..=n).filter(|i| *i != stopped).take(2).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = others
            .iter()
            .enumerate()
            .flat_map(|(k, &via)| {
                let c = &c;
                let stop = &stop;
                (0..2).map(move |w| {
                    tokio::spawn(writer(
                        c.client_with_timeout(via, Duration::from_secs(10)),
                        k * 2 + w,
                        Arc::clone(stop),
                    ))
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = Instant::now();
        let code = c.terminate(stopped);
        eprintln!(
            "node {stopped} stopped with SIGTERM in {:.1?} (exit {code:?})",
            t.elapsed()
        );
        assert_eq!(code, Some(0), "node {stopped} did not stop cleanly");
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.restart(stopped).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !c.caught_up(stopped).await {
            if Instant::now() > deadline {
                c.fail(&format!(
                    "node {stopped} did not catch up after its restart"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Let leadership move back to it under load too.
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::SeqCst);
        let mut acked = 0;
        for w in writers {
            let (ok, failed) = w.await.unwrap();
            if !failed.is_empty() {
                c.fail(&format!(
                    "{} writes failed while node {stopped} restarted, e.g. {:?}",
                    failed.len(),
                    &failed[..failed.len().min(3)]
                ));
            }
            acked += ok.len();
            all_acked.extend(ok);
        }
        eprintln!("node {stopped}: {acked} writes acknowledged, none failed");
        assert!(acked > 20, "too few writes for the test to mean anything");
    }
    // No node answered a 5xx to anyone, as its log shows.
    let errors = c.server_errors();
    assert!(
        errors.is_empty(),
        "{} 5xx answers in the server logs, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(3)]
    );
    // Nothing acknowledged is lost: every write reads back, consistently, through every node.
    for i in 1..=n {
        let client = c.client_with_timeout(i, Duration::from_secs(10));
        for (table, key) in &all_acked {
            let got = client
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S(key.clone()))
                .consistent_read(true)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GetItem {table}/{key}: {}", DisplayErrorContext(&e)));
            assert!(
                got.item().is_some(),
                "acknowledged write {table}/{key} lost (read through node {i})"
            );
        }
    }
}

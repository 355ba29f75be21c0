//! Client load for cluster tests: writers that record every acknowledged write, and the checks
//! that read them back, plus the partition groups of a `/status`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use crate::Cluster;

/// The acknowledged (table, key) pairs of a writer, and its failures.
pub type Written = (Vec<(String, String)>, Vec<String>);

/// A string attribute value.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// Puts new items (key `pk` = `w<name>-<n>`) into the tables in turn through `client` until
/// `stop`; returns the acknowledged (table, key) pairs and the failures.
pub async fn writer(
    client: aws_sdk_dynamodb::Client,
    name: usize,
    tables: Vec<String>,
    stop: Arc<AtomicBool>,
) -> Written {
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let table = &tables[n % tables.len()];
        let key = format!("w{name}-{n}");
        match client
            .put_item()
            .table_name(table)
            .item("pk", s(key.clone()))
            .send()
            .await
        {
            Ok(_) => acked.push((table.clone(), key)),
            Err(e) => failed.push(format!("{table}/{key}: {}", DisplayErrorContext(&e))),
        }
    }
    (acked, failed)
}

/// Stops the writers and returns what they acknowledged.
///
/// # Panics
/// If any write failed (`what` says when).
pub async fn stop_writers(
    stop: &AtomicBool,
    writers: Vec<tokio::task::JoinHandle<Written>>,
    what: &str,
) -> Vec<(String, String)> {
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    for w in writers {
        let (ok, failed) = w.await.expect("writer task");
        assert!(
            failed.is_empty(),
            "{} writes failed {what}, e.g. {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        );
        acked.extend(ok);
    }
    acked
}

/// Every acknowledged (table, key) reads back with `ConsistentRead` through each of `nodes`.
///
/// # Panics
/// If a read fails or an acknowledged item is missing.
pub async fn assert_readable(
    c: &Cluster,
    nodes: impl IntoIterator<Item = usize>,
    acked: &[(String, String)],
) {
    for i in nodes {
        let client = c.client(i);
        for (table, key) in acked {
            let got = client
                .get_item()
                .table_name(table)
                .key("pk", s(key.clone()))
                .consistent_read(true)
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("GetItem through node {i}: {}", DisplayErrorContext(&e))
                });
            assert!(
                got.item.is_some(),
                "acknowledged {table}/{key} missing through node {i}"
            );
        }
    }
}

/// The partition groups of `status` with their table, voters and learners.
pub fn partition_groups(status: &Value) -> Vec<(String, Vec<u64>, Vec<u64>)> {
    partition_groups_with_items(status)
        .into_iter()
        .map(|(table, voters, learners, _)| (table, voters, learners))
        .collect()
}

/// [`partition_groups`] with each group's item count (as its leader reports it).
pub fn partition_groups_with_items(status: &Value) -> Vec<(String, Vec<u64>, Vec<u64>, u64)> {
    let ids = |v: &Value| -> Vec<u64> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect()
    };
    status["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["kind"] == "partition")
        .map(|g| {
            (
                g["table"].as_str().unwrap_or("").to_string(),
                ids(&g["voters"]),
                ids(&g["learners"]),
                g["items"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

//! GSI propagation delay on an idle node: write an item, then poll a GSI Query until its entry
//! appears. The goal is well under one second; the test prints p50/p99 and fails above 1 s.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{ProjectionType, ScalarAttributeType};
use shoal_tests::*;

use crate::support::*;

const WRITES: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gsi_entries_appear_well_within_a_second_on_an_idle_node() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_indexed_table(
        &client,
        "lat",
        None,
        &[("tag", ScalarAttributeType::S)],
        vec![],
        vec![gsi(
            "by_tag",
            "tag",
            None,
            projection(ProjectionType::KeysOnly, &[]),
        )],
    )
    .await;
    let mut delays = Vec::with_capacity(WRITES);
    // The PutItem latencies themselves (one fsync each), for scale: shipping adds one more
    // fsync (the index partition's) plus a wake-up.
    let mut puts = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        let tag = format!("t{i}");
        let sent = Instant::now();
        must_put(
            &client,
            "lat",
            item([("pk", s(format!("k{i}"))), ("tag", s(&tag))]),
        )
        .await;
        puts.push(sent.elapsed());
        // The clock starts once the write is acknowledged.
        let acked = Instant::now();
        loop {
            let out = client
                .query()
                .table_name("lat")
                .index_name("by_tag")
                .key_condition_expression("tag = :t")
                .expression_attribute_values(":t", s(&tag))
                .send()
                .await
                .unwrap_or_else(|e| panic!("Query: {}", describe_error(&e)));
            if out.count() == 1 {
                break;
            }
            assert!(
                acked.elapsed() < Duration::from_secs(5),
                "write {i} not in the GSI after 5 s"
            );
        }
        delays.push(acked.elapsed());
    }
    delays.sort();
    puts.sort();
    let pct = |v: &[Duration], p: usize| v[(v.len() * p / 100).min(v.len() - 1)];
    let (p50, p99, max) = (pct(&delays, 50), pct(&delays, 99), delays[delays.len() - 1]);
    eprintln!(
        "GSI propagation over {WRITES} writes: p50 {p50:?}, p99 {p99:?}, max {max:?} \
         (PutItem itself: p50 {:?}, p99 {:?})",
        pct(&puts, 50),
        pct(&puts, 99)
    );
    assert!(
        p99 < Duration::from_secs(1),
        "p99 {p99:?} is not under a second"
    );
}

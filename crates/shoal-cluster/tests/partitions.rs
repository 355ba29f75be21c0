//! A table of several partitions spread over 5 real nodes. A provisioned table asking for
//! 4,000 WCU starts with 4 partitions (DynamoDB's documented 1,000 WCU per partition), each
//! with 3 voting replicas on distinct nodes, so each node holds about 3/5 of the table's items.
//! Every operation works across partitions held by different nodes, through any node: items
//! written with BatchWriteItem and PutItem read back with `ConsistentRead` through every node;
//! a paged Scan walks every partition in hash order and returns each item once; parallel scan
//! segments split the table between them; BatchGetItem gathers keys from every partition;
//! Query and DescribeTable's item count see the whole table. A table within one partition's
//! limits has one, and splits online when its provisioned throughput is raised; a global
//! secondary index is refused on a table of several partitions (not
//! supported yet) with a message that says so.
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndexUpdate, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, ProvisionedThroughput, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use serde_json::Value;
use shoal_cluster::Cluster;
use shoal_cluster::load::{partition_groups_with_items, s};

const NODES: usize = 5;
const TABLE: &str = "wide";
/// Partition keys written; each has `SORTS` items.
const KEYS: usize = 100;
const SORTS: usize = 4;

fn n(v: usize) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The table's partition groups in `/status`: (voters, learners, items).
fn table_groups(status: &Value, table: &str) -> Vec<(Vec<u64>, Vec<u64>, u64)> {
    partition_groups_with_items(status)
        .into_iter()
        .filter(|(t, _, _, _)| t == table)
        .map(|(_, voters, learners, items)| (voters, learners, items))
        .collect()
}

async fn create_provisioned(client: &Client, name: &str, write_units: i64) {
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::Provisioned)
        // Reads as much as the tests' scans and gets need (capacity is enforced), without
        // needing more partitions than its writes do.
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(3 * write_units)
                .write_capacity_units(write_units)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {name}: {}", DisplayErrorContext(&e)));
}

/// Every item of `table` by a paged Scan through `client` (`limit` items a page, optionally
/// one segment of a parallel scan), as (pk, sk) pairs; panics on a duplicate.
async fn scan_all(
    client: &Client,
    table: &str,
    limit: i32,
    segment: Option<(i32, i32)>,
) -> BTreeSet<(String, String)> {
    let mut seen = BTreeSet::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let mut req = client
            .scan()
            .table_name(table)
            .limit(limit)
            .set_exclusive_start_key(start.take());
        if let Some((seg, total)) = segment {
            req = req.segment(seg).total_segments(total);
        }
        let page = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("Scan: {}", DisplayErrorContext(&e)));
        for item in page.items() {
            let key = (
                item["pk"].as_s().unwrap().clone(),
                item["sk"].as_n().unwrap().clone(),
            );
            assert!(seen.insert(key.clone()), "Scan returned {key:?} twice");
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return seen,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provisioned_table_spreads_its_partitions_and_every_operation_spans_them() {
    let mut c = Cluster::start(NODES).await;
    create_provisioned(&c.client(1), TABLE, 4_000).await;

    // BatchWriteItem through node 2 (25 a batch), the rest with PutItem through node 3.
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    let mut batch = Vec::new();
    for k in 0..KEYS {
        for sort in 0..SORTS {
            expected.insert((format!("k{k}"), sort.to_string()));
            let item = HashMap::from([
                ("pk".to_string(), s(format!("k{k}"))),
                ("sk".to_string(), n(sort)),
                ("v".to_string(), s("x".repeat(100))),
            ]);
            if k % 2 == 0 {
                batch.push(
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                        .build(),
                );
            } else {
                c.client(3)
                    .put_item()
                    .table_name(TABLE)
                    .set_item(Some(item))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("PutItem: {}", DisplayErrorContext(&e)));
            }
            if batch.len() == 25 {
                write_batch(&c.client(2), std::mem::take(&mut batch)).await;
            }
        }
    }
    write_batch(&c.client(2), batch).await;

    // Four partitions, 3 voters each on distinct nodes, no learners; each node holds 40-80% of
    // the items (ideal 3/5).
    let total = (KEYS * SORTS) as u64;
    let status = c
        .wait_status(
            1,
            Duration::from_secs(60),
            "4 partitions of the table with 3 voters each and every item counted",
            |s: &Value| {
                let groups = table_groups(s, TABLE);
                groups.len() == 4
                    && groups.iter().all(|(voters, learners, _)| {
                        voters.iter().collect::<BTreeSet<_>>().len() == 3 && learners.is_empty()
                    })
                    && groups.iter().map(|(_, _, items)| items).sum::<u64>() == total
            },
        )
        .await;
    let mut share: BTreeMap<u64, u64> = BTreeMap::new();
    for (voters, _, items) in table_groups(&status, TABLE) {
        for v in voters {
            *share.entry(v).or_default() += items;
        }
    }
    assert_eq!(share.len(), NODES, "every node holds a replica: {share:?}");
    for (node, items) in &share {
        let pct = *items * 100 / total;
        assert!(
            (40..=80).contains(&pct),
            "node {node} holds {pct}% of the items (want 40-80%): {share:?}"
        );
    }

    // Every item reads back with ConsistentRead through every node.
    for i in 1..=NODES {
        let client = c.client(i);
        for (pk, sk) in &expected {
            let got = client
                .get_item()
                .table_name(TABLE)
                .key("pk", s(pk.clone()))
                .key("sk", AttributeValue::N(sk.clone()))
                .consistent_read(true)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GetItem via {i}: {}", DisplayErrorContext(&e)));
            assert!(got.item.is_some(), "{pk}/{sk} missing through node {i}");
        }
    }

    // A paged Scan through every node walks every partition and returns each item once.
    for i in 1..=NODES {
        let got = scan_all(&c.client(i), TABLE, 37, None).await;
        assert_eq!(got, expected, "Scan through node {i}");
    }
    // Parallel scan: disjoint segments that together hold the table.
    let mut union = BTreeSet::new();
    for seg in 0..3 {
        let part = scan_all(&c.client(4), TABLE, 50, Some((seg, 3))).await;
        for key in part {
            assert!(union.insert(key.clone()), "{key:?} in two segments");
        }
    }
    assert_eq!(union, expected, "parallel scan segments");

    // BatchGetItem of keys from every partition through node 5.
    let keys: Vec<HashMap<String, AttributeValue>> = (0..KEYS)
        .map(|k| {
            HashMap::from([
                ("pk".to_string(), s(format!("k{k}"))),
                ("sk".to_string(), n(k % SORTS)),
            ])
        })
        .collect();
    let mut found = 0;
    for chunk in keys.chunks(100) {
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .unwrap(),
        );
        while let Some(request) = pending.take() {
            let out = c
                .client(5)
                .batch_get_item()
                .request_items(TABLE, request)
                .send()
                .await
                .unwrap_or_else(|e| panic!("BatchGetItem: {}", DisplayErrorContext(&e)));
            found += out
                .responses()
                .and_then(|r| r.get(TABLE))
                .map_or(0, Vec::len);
            pending = out.unprocessed_keys().and_then(|u| u.get(TABLE)).cloned();
        }
    }
    assert_eq!(found, KEYS, "BatchGetItem found every key");

    // Query of one partition key through each node.
    for i in 1..=NODES {
        let out = c
            .client(i)
            .query()
            .table_name(TABLE)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("k{}", i * 7)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("Query via {i}: {}", DisplayErrorContext(&e)));
        assert_eq!(out.count(), SORTS as i32, "Query through node {i}");
    }

    // DescribeTable counts the items of every partition, through every node.
    for i in 1..=NODES {
        let d = c
            .client(i)
            .describe_table()
            .table_name(TABLE)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeTable via {i}: {}", DisplayErrorContext(&e)));
        assert_eq!(
            d.table().and_then(|t| t.item_count()),
            Some(total as i64),
            "DescribeTable ItemCount through node {i}"
        );
    }

    // A global secondary index added to the table of 4 partitions on 5 nodes: each partition's
    // replicas backfill their shard, the index turns ACTIVE on a node only once every
    // partition's backfill is done, and then a Query of it through any node finds every item.
    c.client(1)
        .update_table()
        .table_name(TABLE)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("v")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .create(
                    aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
                        .index_name("by_v")
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name("v")
                                .key_type(KeyType::Hash)
                                .build()
                                .unwrap(),
                        )
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::KeysOnly)
                                .build(),
                        )
                        .provisioned_throughput(
                            ProvisionedThroughput::builder()
                                .read_capacity_units(12_000)
                                .write_capacity_units(4_000)
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "a GSI on a table of 4 partitions: {}",
                DisplayErrorContext(&e)
            )
        });
    let x = s("x".repeat(100));
    for i in 1..=NODES {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let d = c.client(i).describe_table().table_name(TABLE).send().await;
            let active = d.ok().is_some_and(|d| {
                d.table()
                    .and_then(|t| t.global_secondary_indexes().first().cloned())
                    .is_some_and(|g| {
                        g.index_status() == Some(&aws_sdk_dynamodb::types::IndexStatus::Active)
                    })
            });
            if active {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "index by_v not ACTIVE through node {i} after 90 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // ACTIVE here means every partition's shard is complete: the first read sees them all.
        let mut got = BTreeSet::new();
        let mut start = None;
        loop {
            let page = c
                .client(i)
                .query()
                .table_name(TABLE)
                .index_name("by_v")
                .key_condition_expression("v = :v")
                .expression_attribute_values(":v", x.clone())
                .limit(1_000)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GSI Query via {i}: {}", DisplayErrorContext(&e)));
            for item in page.items() {
                let (Some(AttributeValue::S(pk)), Some(AttributeValue::N(sk))) =
                    (item.get("pk"), item.get("sk"))
                else {
                    panic!("GSI entry without its table keys: {item:?}");
                };
                assert!(got.insert((pk.clone(), sk.clone())), "duplicate {pk}/{sk}");
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        assert_eq!(got, expected, "GSI Query through node {i} once ACTIVE");
    }

    // A provisioned table within one partition's limits has one partition.
    create_provisioned(&c.client(2), "narrow", 1_000).await;
    c.wait_status(
        1,
        Duration::from_secs(30),
        "the narrow table with one partition",
        |s: &Value| table_groups(s, "narrow").len() == 1,
    )
    .await;
    // Raising its throughput to 3,000 WCU splits it (online) into at least 3 partitions, and
    // the items written before read back through every node.
    let narrow = c.client(2);
    for i in 0..40 {
        narrow
            .put_item()
            .table_name("narrow")
            .item("pk", s(format!("n{i}")))
            .item("sk", n(0))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutItem narrow: {}", DisplayErrorContext(&e)));
    }
    narrow
        .update_table()
        .table_name("narrow")
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(9_000)
                .write_capacity_units(3_000)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateTable narrow: {}", DisplayErrorContext(&e)));
    c.wait_status(
        1,
        Duration::from_secs(60),
        "the narrow table split to at least 3 partitions after its throughput rose",
        |s: &Value| table_groups(s, "narrow").len() >= 3,
    )
    .await;
    for i in 1..=NODES {
        let client = c.client(i);
        for k in 0..40 {
            let got = client
                .get_item()
                .table_name("narrow")
                .key("pk", s(format!("n{k}")))
                .key("sk", n(0))
                .consistent_read(true)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GetItem narrow: {}", DisplayErrorContext(&e)));
            assert!(
                got.item().is_some(),
                "n{k} through node {i} after the split"
            );
        }
    }
    let errors = c.server_errors();
    assert!(errors.is_empty(), "server errors: {errors:?}");

    unprocessed_while_partitions_lack_a_quorum(&mut c).await;
}

/// BatchWriteItem and BatchGetItem while two of the five nodes are down: the partitions that
/// lost two of their three replicas cannot serve, and their requests come back as
/// `UnprocessedItems` / `UnprocessedKeys`, while those of the partitions that kept a quorum are
/// written and read. Once the nodes are back, resending the unprocessed writes completes the
/// batch.
async fn unprocessed_while_partitions_lack_a_quorum(c: &mut Cluster) {
    let groups = table_groups(&c.status(1).await, TABLE);
    // Two nodes that together hold two replicas of some partitions, not of all.
    let pair = (1..=NODES as u64)
        .flat_map(|a| (a + 1..=NODES as u64).map(move |b| (a, b)))
        .find(|(a, b)| {
            let lost = groups
                .iter()
                .filter(|(voters, _, _)| voters.contains(a) && voters.contains(b))
                .count();
            lost > 0 && lost < groups.len()
        })
        .expect("two nodes holding a quorum of some partitions but not of all");
    let via = (1..=NODES)
        .find(|i| *i as u64 != pair.0 && *i as u64 != pair.1)
        .unwrap();
    c.kill(pair.0 as usize);
    c.kill(pair.1 as usize);
    let client = c.client(via);
    let keys: Vec<String> = (0..25).map(|i| format!("u{i}")).collect();
    let requests: Vec<WriteRequest> = keys
        .iter()
        .map(|k| {
            let item = HashMap::from([("pk".to_string(), s(k.clone())), ("sk".to_string(), n(0))]);
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build()
        })
        .collect();
    let out = client
        .batch_write_item()
        .request_items(TABLE, requests)
        .send()
        .await
        .unwrap_or_else(|e| panic!("BatchWriteItem, 2 nodes down: {}", DisplayErrorContext(&e)));
    let left: BTreeSet<String> = out
        .unprocessed_items()
        .and_then(|u| u.get(TABLE))
        .map(|reqs| {
            reqs.iter()
                .filter_map(|r| match r.put_request()?.item().get("pk") {
                    Some(AttributeValue::S(k)) => Some(k.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !left.is_empty() && left.len() < keys.len(),
        "with nodes {pair:?} down some, not all, writes are unprocessed: {} of {}",
        left.len(),
        keys.len()
    );
    // The same keys read back (strongly consistent: a quorum answers): the written ones found,
    // the others unprocessed.
    let key_set = keys.iter().fold(
        KeysAndAttributes::builder().consistent_read(true),
        |b, k| {
            b.keys(HashMap::from([
                ("pk".to_string(), s(k.clone())),
                ("sk".to_string(), n(0)),
            ]))
        },
    );
    let got = client
        .batch_get_item()
        .request_items(TABLE, key_set.build().unwrap())
        .send()
        .await
        .unwrap_or_else(|e| panic!("BatchGetItem, 2 nodes down: {}", DisplayErrorContext(&e)));
    let found: BTreeSet<String> = got
        .responses()
        .and_then(|r| r.get(TABLE))
        .map(|items| {
            items
                .iter()
                .filter_map(|i| match i.get("pk") {
                    Some(AttributeValue::S(k)) => Some(k.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let unread = got
        .unprocessed_keys()
        .and_then(|u| u.get(TABLE))
        .map_or(0, |k| k.keys().len());
    let written: BTreeSet<String> = keys
        .iter()
        .filter(|k| !left.contains(*k))
        .cloned()
        .collect();
    assert_eq!(found, written, "BatchGetItem finds every processed write");
    assert_eq!(
        unread,
        left.len(),
        "BatchGetItem returns the keys of the partitions without a quorum unprocessed"
    );
    // Back to five nodes: resending the unprocessed writes completes the batch.
    c.restart(pair.0 as usize).await;
    c.restart(pair.1 as usize).await;
    let again: Vec<WriteRequest> = out
        .unprocessed_items()
        .and_then(|u| u.get(TABLE))
        .cloned()
        .unwrap_or_default();
    write_batch(&c.client(via), again).await;
    for k in &keys {
        let got = c
            .client(via)
            .get_item()
            .table_name(TABLE)
            .key("pk", s(k.clone()))
            .key("sk", n(0))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetItem {k}: {}", DisplayErrorContext(&e)));
        assert!(
            got.item().is_some(),
            "{k} after resending the unprocessed writes"
        );
    }
}

/// Writes `requests` with BatchWriteItem, resending unprocessed items.
async fn write_batch(client: &Client, requests: Vec<WriteRequest>) {
    let mut pending = requests;
    while !pending.is_empty() {
        let out = client
            .batch_write_item()
            .request_items(TABLE, pending)
            .send()
            .await
            .unwrap_or_else(|e| panic!("BatchWriteItem: {}", DisplayErrorContext(&e)));
        pending = out
            .unprocessed_items()
            .and_then(|u| u.get(TABLE))
            .cloned()
            .unwrap_or_default();
    }
}

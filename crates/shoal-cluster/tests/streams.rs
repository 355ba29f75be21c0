//! A stream consumer on 3 real nodes, through partition splits and `kill -9`.
//!
//! Writers own disjoint keys and change each one in turn (puts of a new version, sometimes a
//! delete), retrying a write until it is acknowledged: a retry of a write that had applied
//! changes nothing and so yields no record. A filler keeps the table splitting (a small split
//! size); a nemesis kills nodes with SIGKILL and restarts them. Then a consumer follows the
//! shard lineage (DescribeStream, parents read to their end before their children) with
//! GetShardIterator TRIM_HORIZON and GetRecords, and:
//! - every acknowledged change of each key is there exactly once, in the order it was made;
//! - each record's event (INSERT, MODIFY, REMOVE) and its old and new images are right;
//! - the stream has shards closed by splits, with children naming their parent.
//!
//! `cargo test -p shoal-cluster --test streams -- --nocapture` prints the counts.
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, StreamSpecification, StreamViewType};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use shoal_cluster::load::s;
use shoal_cluster::{ADMIN_KEY_ID, ADMIN_SECRET, Cluster, REGION, sdk_client_with_retries};

const TABLE: &str = "feed";
const NODES: usize = 3;
const WRITERS: usize = 4;
const KEYS_PER_WRITER: usize = 8;
const ROUNDS: usize = 2;

/// One change a writer made and had acknowledged: `Some(version)` put, `None` deleted.
type Change = Option<u64>;

fn streams_client(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ADMIN_KEY_ID,
            ADMIN_SECRET,
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

/// Changes its keys in turn until `stop`; returns each key's acknowledged changes, in order.
async fn writer(
    clients: Vec<Client>,
    w: usize,
    stop: Arc<AtomicBool>,
) -> BTreeMap<String, Vec<Change>> {
    let mut done: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    let mut present: HashMap<String, bool> = HashMap::new();
    let mut round = 0u64;
    let pad = "w".repeat(500);
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        for k in 0..KEYS_PER_WRITER {
            let key = format!("w{w}-k{k}");
            // Every fifth change of a present key is a delete.
            let delete =
                present.get(&key).copied().unwrap_or(false) && (round + k as u64).is_multiple_of(5);
            let mut attempt = 0usize;
            loop {
                let client = &clients[(w + attempt) % clients.len()];
                attempt += 1;
                let result = if delete {
                    client
                        .delete_item()
                        .table_name(TABLE)
                        .key("pk", s(&key))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("{e:?}"))
                } else {
                    client
                        .put_item()
                        .table_name(TABLE)
                        .item("pk", s(&key))
                        .item("v", AttributeValue::N(round.to_string()))
                        .item("pad", s(&pad))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("{e:?}"))
                };
                if result.is_ok() {
                    break;
                }
                // Until acknowledged: a retry of a write that applied changes nothing.
                tokio::time::sleep(Duration::from_millis(200)).await;
                assert!(attempt < 300, "{key}: never acknowledged: {result:?}");
            }
            done.entry(key.clone())
                .or_default()
                .push((!delete).then_some(round));
            present.insert(key, !delete);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done
}

/// Large items that keep the table splitting.
async fn filler(client: Client, stop: Arc<AtomicBool>) -> usize {
    let pad = "f".repeat(3000);
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let _ = client
            .put_item()
            .table_name(TABLE)
            .item("pk", s(format!("fill-{i}")))
            .item("pad", s(&pad))
            .send()
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    i
}

fn version(
    image: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>,
) -> Option<u64> {
    match image?.get("v")? {
        aws_sdk_dynamodbstreams::types::AttributeValue::N(n) => n.parse().ok(),
        _ => None,
    }
}

/// What the consumer saw of one key: (event, old version, new version) in stream order.
type Seen = Vec<(String, Option<u64>, Option<u64>)>;

/// Reads the whole stream following the lineage; returns what each writer key saw, the shard
/// count and how many shards have a parent.
async fn consume(
    client: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
) -> (BTreeMap<String, Seen>, usize, usize) {
    let mut shards = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let d = client
            .describe_stream()
            .stream_arn(arn)
            .set_exclusive_start_shard_id(start.clone())
            .send()
            .await
            .unwrap()
            .stream_description
            .unwrap();
        shards.extend(d.shards.unwrap_or_default());
        match d.last_evaluated_shard_id {
            Some(last) => start = Some(last),
            None => break,
        }
    }
    let ids: BTreeSet<String> = shards.iter().filter_map(|s| s.shard_id.clone()).collect();
    let with_parent = shards
        .iter()
        .filter(|s| s.parent_shard_id.as_ref().is_some_and(|p| ids.contains(p)))
        .count();
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    // Parents first: a shard is read once its parent (if listed) was read to its end.
    while done.len() < shards.len() {
        let ready: Vec<_> = shards
            .iter()
            .filter(|s| {
                let id = s.shard_id.clone().unwrap();
                !done.contains(&id)
                    && s.parent_shard_id
                        .as_ref()
                        .is_none_or(|p| !ids.contains(p) || done.contains(p))
            })
            .cloned()
            .collect();
        assert!(!ready.is_empty(), "a lineage cycle: {shards:?}");
        for shard in ready {
            let id = shard.shard_id.clone().unwrap();
            let mut iterator = client
                .get_shard_iterator()
                .stream_arn(arn)
                .shard_id(&id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator;
            let mut empty = 0;
            while let Some(it) = iterator {
                let out = client
                    .get_records()
                    .shard_iterator(it)
                    .limit(500)
                    .send()
                    .await
                    .unwrap();
                let records = out.records.unwrap_or_default();
                if records.is_empty() {
                    empty += 1;
                    // An open shard never ends: read until it has nothing more.
                    if empty >= 2 {
                        break;
                    }
                }
                for r in records {
                    let d = r.dynamodb.unwrap();
                    let key = match d.keys.as_ref().and_then(|k| k.get("pk")) {
                        Some(aws_sdk_dynamodbstreams::types::AttributeValue::S(k)) => k.clone(),
                        other => panic!("keys {other:?}"),
                    };
                    if key.starts_with("fill-") {
                        continue;
                    }
                    let event = r.event_name.unwrap().as_str().to_string();
                    seen.entry(key).or_default().push((
                        event,
                        version(d.old_image.as_ref()),
                        version(d.new_image.as_ref()),
                    ));
                }
                iterator = out.next_shard_iterator;
            }
            done.insert(id);
        }
    }
    (seen, shards.len(), with_parent)
}

/// The records the changes of one key must yield.
fn expected(changes: &[Change]) -> Seen {
    let mut out = Vec::new();
    let mut current: Option<u64> = None;
    for c in changes {
        match (current, c) {
            (None, Some(v)) => out.push(("INSERT".to_string(), None, Some(*v))),
            (Some(o), Some(v)) => out.push(("MODIFY".to_string(), Some(o), Some(*v))),
            (Some(o), None) => out.push(("REMOVE".to_string(), Some(o), None)),
            (None, None) => {}
        }
        current = *c;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_sees_every_change_once_in_order_through_splits_and_kill_minus_9() {
    let mut c = Cluster::start_with_env(NODES, &[("SHOAL_SPLIT_SIZE_BYTES", "131072")]).await;
    c.create_hash_table(1, TABLE).await;
    let started = Instant::now();
    let setup = sdk_client_with_retries(&c.api_url(1), Duration::from_secs(20));
    let arn = setup
        .update_table()
        .table_name(TABLE)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .table_description
        .unwrap()
        .latest_stream_arn
        .expect("LatestStreamArn");
    // ENABLING until every partition applied the change in its log; from then on every write
    // has its record.
    let consumer = streams_client(&c.api_url(2));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = consumer
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .unwrap()
            .stream_description
            .unwrap()
            .stream_status;
        if status == Some(aws_sdk_dynamodbstreams::types::StreamStatus::Enabled) {
            break;
        }
        assert!(Instant::now() < deadline, "stream still {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let clients: Vec<Client> = (1..=NODES)
        .map(|i| sdk_client_with_retries(&c.api_url(i), Duration::from_secs(20)))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(clients.clone(), w, Arc::clone(&stop))))
        .collect();
    let fill = tokio::spawn(filler(clients[1].clone(), Arc::clone(&stop)));
    for round in 0..ROUNDS {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        let victim = round % NODES + 2;
        println!(
            "+{:.1}s: round {round}: kill -9 node {victim}",
            started.elapsed().as_secs_f64()
        );
        c.kill(victim);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        c.restart(victim).await;
        c.wait_healthy(victim).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acked: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }
    let filled = fill.await.expect("filler");
    let changes: usize = acked.values().map(Vec::len).sum();

    // Read through a node that was killed and restarted.
    let (seen, shards, with_parent) = consume(&consumer, &arn).await;
    let records: usize = seen.values().map(Vec::len).sum();
    println!(
        "+{:.1}s: {changes} acknowledged changes of {} keys, {filled} filler puts; \
         {records} records read from {shards} shards ({with_parent} with a parent)",
        started.elapsed().as_secs_f64(),
        acked.len()
    );
    assert!(changes >= 100, "too few changes went through: {changes}");
    assert!(with_parent >= 2, "no split closed a shard: {shards} shards");
    for (key, changes) in &acked {
        let want = expected(changes);
        let got = seen.get(key).cloned().unwrap_or_default();
        assert_eq!(
            got, want,
            "{key}: the stream's records differ from its acknowledged changes {changes:?}"
        );
    }
    let errors: Vec<String> = c
        .server_errors()
        .into_iter()
        .filter(|l| l.contains("internal error"))
        .collect();
    assert!(errors.is_empty(), "internal errors: {errors:?}");
}

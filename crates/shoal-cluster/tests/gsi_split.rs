//! A table with a global secondary index splits, and its index stays whole, on 3 real nodes.
//!
//! The nodes run with `SHOAL_SPLIT_SIZE_BYTES=131072` (as `split_crash.rs`). The test creates an
//! on-demand table (`pk` S, `sk` N) with a global index `by_g` (`g` S, `n` N, projecting ALL)
//! and puts ~450-byte items through SDK clients on all three nodes, every item with a unique
//! `n`, one of 20 `g` values and a `color`, until `/status` shows the table in at least 3 base
//! partitions (each base partition keeps its own shard of the index, so an index read must
//! gather every partition's shard, local or on another node, and merge them in index order).
//! Every put is retried until acknowledged, so the test knows the exact item set, and when
//! each item was acknowledged.
//!
//! While the load runs (the table going from 1 partition to several), three reader tasks,
//! each going round the nodes one read at a time through an SDK client with the standard
//! retries, read the table over and over with small pages and a 75 ms pause between pages,
//! so that splits land between two pages of a read:
//!
//! - a paged Scan of the table (`Limit 40`);
//! - a paged Query of the index for one `g` (`Limit 10`, the `g` changing from read to read);
//! - a parallel Scan of the table in 2 segments, both paged concurrently (`Limit 40`).
//!
//! Every completed read must return no item twice, only items exactly as written, and every
//! item acknowledged well before the read started: 1 s before for the table Scans (they are
//! eventually consistent), 2 s for the index Query (the index follows its table shortly after);
//! items written during the read may or may not appear. The index Query's items must come in
//! `n` order. A read *straddled a split* when its node's `/status` showed more base partitions
//! after its last page than before its first. The load goes on (up to `MAX_ITEMS`) until at
//! least one table Scan and one index Query have straddled a split; any SDK error of a reader
//! fails the test. The counts are printed.
//!
//! Once the partitions settle (tiling the hash space, 3 voters each), through EVERY node, each
//! check retried for up to 60 s because the index is eventually consistent:
//!
//! - a Query of the index per `g` (several `g` values), paged with `Limit 37`, forward and
//!   backward, returns exactly that `g`'s items, in `n` order, none twice;
//! - the same Query with a `FilterExpression` on `color` returns exactly the matching items in
//!   order, pages concatenated;
//! - a paged Scan of the index, and a parallel Scan of it in 3 segments, return every item once;
//! - DescribeTable counts every item in the index's `ItemCount`.
//!
//! Then one node is killed with SIGKILL, 300 more items are written through the other two, the
//! node is restarted, and once it has caught up the same checks hold through it (its replicas
//! caught up by log or snapshot, and their index shards with them) and through the others.
//!
//! `cargo test -p shoal-cluster --test gsi_split -- --nocapture` prints the counts and timings.
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TableStatus,
};
use serde_json::Value;
use shoal_cluster::load::s;
use shoal_cluster::{Cluster, sdk_client_with_retries};

const NODES: usize = 3;
const SPLIT_SIZE_BYTES: &str = "131072";
const TABLE: &str = "gsi_split";
const INDEX: &str = "by_g";
/// Distinct values of the index's hash key `g`.
const G_VALUES: u64 = 20;
/// The `g` values whose index Query is checked (page boundaries differ per value).
const CHECKED_GS: [u64; 5] = [0, 3, 7, 12, 19];
/// Bytes of each item's `payload` attribute.
const PAYLOAD: usize = 400;
/// Base partitions the table must reach.
const WANT_PARTITIONS: usize = 3;
/// Items written at least before the partitions are counted as reached.
const MIN_ITEMS: u64 = 1500;
/// Items after which the table must have split.
const MAX_ITEMS: u64 = 6000;
/// Items written per round of the load (between `/status` checks).
const ROUND: u64 = 250;
/// Concurrent writer tasks per round.
const WRITERS: u64 = 6;
/// Items written while a node is down.
const MORE_ITEMS: u64 = 300;
/// Query and Scan page size.
const PAGE: i32 = 37;
/// Scan segments of the parallel scan.
const SEGMENTS: i32 = 3;
/// How long an index read may take to reflect the writes (it is eventually consistent).
const EVENTUAL: Duration = Duration::from_secs(60);
/// How long the partitions may take to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the split may lag behind the load once [`MAX_ITEMS`] are written.
const SPLIT_LAG: Duration = Duration::from_secs(60);
/// Operation timeout of every client.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts of one PutItem before the test gives up (its outcome would be unknown).
const PUT_ATTEMPTS: usize = 40;
/// Page size of the table Scans run during the load.
const LOAD_SCAN_PAGE: i32 = 40;
/// Page size of the index Queries run during the load.
const LOAD_QUERY_PAGE: i32 = 10;
/// Segments of the parallel table Scan run during the load.
const LOAD_SEGMENTS: i32 = 2;
/// Pause between two pages of a read during the load, so that splits land between pages.
const PAGE_PAUSE: Duration = Duration::from_millis(75);
/// How long before a table Scan started an item must have been acknowledged to be required.
const SCAN_LAG: Duration = Duration::from_secs(1);
/// How long before an index Query started an item must have been acknowledged to be required.
const INDEX_LAG: Duration = Duration::from_secs(2);

type Item = HashMap<String, AttributeValue>;

/// When each item was acknowledged (its PutItem answered), by `n`.
type Acks = Arc<Mutex<BTreeMap<u64, Instant>>>;

// ---- the items ----

fn num(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The index hash key of item `n` (a hash of `n`, so each `g` gets scattered `n`s).
fn g_of(n: u64) -> String {
    g_name((n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % G_VALUES)
}

fn g_name(g: u64) -> String {
    format!("g{g:02}")
}

/// The non-key attribute the filtered Query tests.
fn color_of(n: u64) -> &'static str {
    ["red", "green", "blue"][usize::try_from(n / 7 % 3).unwrap()]
}

/// The table key of item `n`.
fn key_of(n: u64) -> (String, u64) {
    (format!("k{:05}", n / 3), n % 3)
}

/// The full item `n` (deterministic, so reads can be compared).
fn item(n: u64) -> Item {
    let (pk, sk) = key_of(n);
    let seed = format!("{pk}:{n}:");
    let payload: String = seed.chars().cycle().take(PAYLOAD).collect();
    HashMap::from([
        ("pk".to_string(), s(pk)),
        ("sk".to_string(), num(sk)),
        ("g".to_string(), s(g_of(n))),
        ("n".to_string(), num(n)),
        ("color".to_string(), s(color_of(n))),
        ("payload".to_string(), s(payload)),
    ])
}

/// The `n` of a returned item.
fn n_of(it: &Item) -> Option<u64> {
    it.get("n")?.as_n().ok()?.parse().ok()
}

/// The table key of a returned item.
fn key_of_item(it: &Item) -> Option<(String, u64)> {
    let pk = it.get("pk")?.as_s().ok()?.clone();
    let sk = it.get("sk")?.as_n().ok()?.parse().ok()?;
    Some((pk, sk))
}

// ---- setup and writes ----

async fn create_table(c: &Cluster) {
    let def = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
            .unwrap()
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .unwrap()
    };
    let created = c
        .client(1)
        .create_table()
        .table_name(TABLE)
        .attribute_definitions(def("pk", ScalarAttributeType::S))
        .attribute_definitions(def("sk", ScalarAttributeType::N))
        .attribute_definitions(def("g", ScalarAttributeType::S))
        .attribute_definitions(def("n", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(INDEX)
                .key_schema(key("g", KeyType::Hash))
                .key_schema(key("n", KeyType::Range))
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
        .await;
    if let Err(e) = created {
        c.fail(&format!("CreateTable {TABLE}: {}", DisplayErrorContext(&e)));
    }
    for i in 1..=NODES {
        let client = c.client(i);
        let active = shoal_cluster::wait_until(Duration::from_secs(30), || {
            let client = client.clone();
            async move {
                client
                    .describe_table()
                    .table_name(TABLE)
                    .send()
                    .await
                    .ok()
                    .and_then(|d| d.table.and_then(|t| t.table_status))
                    == Some(TableStatus::Active)
            }
        })
        .await;
        if !active {
            c.fail(&format!("{TABLE} not ACTIVE through node {i} within 30 s"));
        }
    }
}

/// Puts items `ns` through `client` (node `node`), each retried until acknowledged; returns
/// the failed attempts, or why an item could not be written at all.
async fn put_all(
    client: Client,
    node: usize,
    ns: Vec<u64>,
    acks: Acks,
) -> Result<Vec<String>, String> {
    let mut failures = Vec::new();
    for n in ns {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match client
                .put_item()
                .table_name(TABLE)
                .set_item(Some(item(n)))
                .send()
                .await
            {
                Ok(_) => {
                    acks.lock().unwrap().insert(n, Instant::now());
                    break;
                }
                Err(e) => {
                    failures.push(format!(
                        "node {node}: PutItem n={n} attempt {attempt}: {}",
                        DisplayErrorContext(&e)
                    ));
                    if attempt >= PUT_ATTEMPTS {
                        return Err(format!(
                            "PutItem n={n} through node {node} failed {attempt} times; last: {}",
                            DisplayErrorContext(&e)
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    }
    Ok(failures)
}

/// Writes items `ns` with [`WRITERS`] tasks spread over `nodes`, records each one's
/// acknowledgement in `acks` and adds them to `model` once all are acknowledged; returns the
/// failed attempts (each retried until acknowledged).
async fn write_items(
    c: &Cluster,
    nodes: &[usize],
    ns: Range<u64>,
    model: &mut BTreeSet<u64>,
    acks: &Acks,
) -> Vec<String> {
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let node = nodes[usize::try_from(w).unwrap() % nodes.len()];
            let mine: Vec<u64> = ns.clone().filter(|n| n % WRITERS == w).collect();
            tokio::spawn(put_all(
                c.client_with_timeout(node, REQUEST_TIMEOUT),
                node,
                mine,
                acks.clone(),
            ))
        })
        .collect();
    let mut failures = Vec::new();
    for t in tasks {
        match t.await.expect("writer task") {
            Ok(f) => failures.extend(f),
            Err(e) => c.fail(&e),
        }
    }
    model.extend(ns);
    failures
}

// ---- /status ----

/// One base partition group of the table.
struct Group {
    start: u64,
    end: u64,
    voters: Vec<u64>,
    learners: Vec<u64>,
    leader: Option<u64>,
}

/// The table's base partition groups in `status` (not an index's, if one is listed with an
/// `index`), sorted by hash range.
fn base_groups(status: &Value) -> Vec<Group> {
    let hex = |v: &Value| u64::from_str_radix(v.as_str().unwrap_or(""), 16).ok();
    let ids = |v: &Value| -> Vec<u64> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect()
    };
    let mut out: Vec<Group> = status["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["kind"] == "partition" && g["table"] == TABLE && g["index"].is_null())
        .filter_map(|g| {
            Some(Group {
                start: hex(&g["hash_range"][0])?,
                end: hex(&g["hash_range"][1])?,
                voters: ids(&g["voters"]),
                learners: ids(&g["learners"]),
                leader: g["leader"].as_u64(),
            })
        })
        .collect();
    out.sort_by_key(|g| (g.start, g.end));
    out
}

/// Settled: at least [`WANT_PARTITIONS`] base partitions tiling `0..=u64::MAX`, each led, with
/// [`NODES`] voters and no learner. Returns the number of partitions.
fn settled(status: &Value) -> Result<usize, String> {
    let groups = base_groups(status);
    if groups.len() < WANT_PARTITIONS {
        return Err(format!("{} base partitions", groups.len()));
    }
    let mut next = Some(0u64);
    for g in &groups {
        if Some(g.start) != next || g.end < g.start {
            return Err(format!("ranges do not tile at {:016x}", g.start));
        }
        next = g.end.checked_add(1);
        if g.voters.len() != NODES || !g.learners.is_empty() || g.leader.is_none() {
            return Err(format!(
                "group at {:016x}: voters {:?}, learners {:?}, leader {:?}",
                g.start, g.voters, g.learners, g.leader
            ));
        }
    }
    if next.is_some() {
        return Err("ranges end before the end of the hash space".to_string());
    }
    Ok(groups.len())
}

/// Waits until the first running node's `/status` shows the partitions settled; returns how
/// many there are.
async fn wait_settled(c: &mut Cluster) -> usize {
    let via = c.running()[0];
    let status = c
        .wait_status(
            via,
            SETTLE_TIMEOUT,
            "the table's base partitions settled (>= 3, tiling the hash space, 3 voters each)",
            |s| settled(s).is_ok(),
        )
        .await;
    settled(&status).unwrap()
}

// ---- index reads ----

/// A Query of the index for `g`, paged with [`PAGE`], in `forward` order, with `color =
/// filter` as a FilterExpression when given; every page's items in order.
async fn query_index(
    client: &Client,
    g: &str,
    forward: bool,
    filter: Option<&str>,
) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    let mut pages = 0;
    loop {
        let mut req = client
            .query()
            .table_name(TABLE)
            .index_name(INDEX)
            .key_condition_expression("g = :g")
            .expression_attribute_values(":g", s(g))
            .scan_index_forward(forward)
            .limit(PAGE)
            .set_exclusive_start_key(start.take());
        if let Some(color) = filter {
            req = req
                .filter_expression("color = :c")
                .expression_attribute_values(":c", s(color));
        }
        let page = req.send().await.map_err(|e| {
            format!(
                "Query g={g} forward={forward} filter={filter:?} page {pages}: {}",
                DisplayErrorContext(&e)
            )
        })?;
        pages += 1;
        items.extend(page.items().iter().cloned());
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(items),
        }
    }
}

/// `Ok` when `got` is `want` (same items, same order), else what differs (counts, duplicates,
/// missing and unexpected `n`s, the first out-of-place position).
fn same_items(got: &[Item], want: &[Item]) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    let got_ns: Vec<Option<u64>> = got.iter().map(n_of).collect();
    let want_ns: Vec<Option<u64>> = want.iter().map(n_of).collect();
    let mut counts: BTreeMap<Option<u64>, usize> = BTreeMap::new();
    for n in &got_ns {
        *counts.entry(*n).or_default() += 1;
    }
    let dups: Vec<_> = counts
        .iter()
        .filter(|(_, k)| **k > 1)
        .map(|(n, _)| n)
        .collect();
    let got_set: BTreeSet<_> = got_ns.iter().collect();
    let want_set: BTreeSet<_> = want_ns.iter().collect();
    let missing: Vec<_> = want_set.difference(&got_set).take(10).collect();
    let extra: Vec<_> = got_set.difference(&want_set).take(10).collect();
    let first_diff = got.iter().zip(want).position(|(a, b)| a != b);
    Err(format!(
        "got {} items, want {}; {} duplicated (e.g. {:?}); missing e.g. n {missing:?}; \
         unexpected e.g. n {extra:?}; first differing position {first_diff:?} (got n {:?}, \
         want n {:?})",
        got.len(),
        want.len(),
        dups.len(),
        &dups[..dups.len().min(10)],
        first_diff.and_then(|p| got_ns.get(p)),
        first_diff.and_then(|p| want_ns.get(p)),
    ))
}

/// Index Queries for [`CHECKED_GS`], forward and backward, and a filtered Query for two of
/// them, against the model.
async fn check_queries(client: &Client, model: &BTreeSet<u64>) -> Result<(), String> {
    for g in CHECKED_GS.map(g_name) {
        let mut want: Vec<Item> = model
            .iter()
            .filter(|n| g_of(**n) == g)
            .map(|n| item(*n))
            .collect();
        for forward in [true, false] {
            let got = query_index(client, &g, forward, None).await?;
            same_items(&got, &want).map_err(|e| format!("Query g={g} forward={forward}: {e}"))?;
            want.reverse();
        }
    }
    for (g, color) in [(CHECKED_GS[1], "red"), (CHECKED_GS[3], "blue")] {
        let g = g_name(g);
        let want: Vec<Item> = model
            .iter()
            .filter(|n| g_of(**n) == g && color_of(**n) == color)
            .map(|n| item(*n))
            .collect();
        let got = query_index(client, &g, true, Some(color)).await?;
        same_items(&got, &want)
            .map_err(|e| format!("Query g={g} with filter color={color}: {e}"))?;
    }
    Ok(())
}

/// A Scan of the index paged with [`PAGE`] (one segment of [`SEGMENTS`] when given); the
/// table keys of the items in the order returned.
async fn scan_index(client: &Client, segment: Option<i32>) -> Result<Vec<(String, u64)>, String> {
    let mut keys = Vec::new();
    let mut start: Option<Item> = None;
    let mut pages = 0;
    loop {
        let mut req = client
            .scan()
            .table_name(TABLE)
            .index_name(INDEX)
            .limit(PAGE)
            .set_exclusive_start_key(start.take());
        if let Some(seg) = segment {
            req = req.segment(seg).total_segments(SEGMENTS);
        }
        let page = req.send().await.map_err(|e| {
            format!(
                "Scan segment {segment:?} page {pages}: {}",
                DisplayErrorContext(&e)
            )
        })?;
        pages += 1;
        for it in page.items() {
            keys.push(
                key_of_item(it).ok_or_else(|| {
                    format!("Scan returned an item without a key: {:?}", it.keys())
                })?,
            );
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(keys),
        }
    }
}

/// `Ok` when `got` holds each of the model's keys exactly once and nothing else.
fn same_keys(got: &[(String, u64)], model: &BTreeSet<u64>) -> Result<(), String> {
    let want: BTreeSet<(String, u64)> = model.iter().map(|n| key_of(*n)).collect();
    let set: BTreeSet<(String, u64)> = got.iter().cloned().collect();
    if set == want && set.len() == got.len() {
        return Ok(());
    }
    let missing: Vec<_> = want.difference(&set).take(10).collect();
    let extra: Vec<_> = set.difference(&want).take(10).collect();
    Err(format!(
        "{} items returned ({} distinct), want {}; missing e.g. {missing:?}; unexpected e.g. \
         {extra:?}",
        got.len(),
        set.len(),
        want.len()
    ))
}

async fn check_scan(client: &Client, model: &BTreeSet<u64>) -> Result<(), String> {
    let got = scan_index(client, None).await?;
    same_keys(&got, model).map_err(|e| format!("paged Scan of {INDEX}: {e}"))
}

async fn check_parallel_scan(client: &Client, model: &BTreeSet<u64>) -> Result<(), String> {
    let mut got = Vec::new();
    for seg in 0..SEGMENTS {
        got.extend(scan_index(client, Some(seg)).await?);
    }
    same_keys(&got, model)
        .map_err(|e| format!("parallel Scan of {INDEX} ({SEGMENTS} segments): {e}"))
}

async fn check_item_count(client: &Client, model: &BTreeSet<u64>) -> Result<(), String> {
    let d = client
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .map_err(|e| format!("DescribeTable: {}", DisplayErrorContext(&e)))?;
    let count = d
        .table()
        .and_then(|t| t.global_secondary_indexes().first())
        .and_then(|g| g.item_count());
    if count == Some(i64::try_from(model.len()).unwrap()) {
        Ok(())
    } else {
        Err(format!(
            "DescribeTable {INDEX} ItemCount {count:?}, want {}",
            model.len()
        ))
    }
}

/// Runs `check` until it passes; fails the test with its last answer after [`EVENTUAL`].
/// Returns how long it took.
async fn eventually<F, Fut>(c: &Cluster, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match check().await {
            Ok(()) => return started.elapsed(),
            Err(why) if started.elapsed() > EVENTUAL => c.fail(&format!(
                "{what}: still wrong after {attempts} attempts over {EVENTUAL:?}: {why}"
            )),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Every index check through node `node`.
async fn check_node(c: &Cluster, node: usize, model: &BTreeSet<u64>, when: &str) {
    let client = c.client_with_timeout(node, REQUEST_TIMEOUT);
    let what = |check: &str| format!("{when}: {check} through node {node}");
    let queries = eventually(c, &what("index Queries"), || check_queries(&client, model)).await;
    let scan = eventually(c, &what("index Scan"), || check_scan(&client, model)).await;
    let parallel = eventually(c, &what("parallel index Scan"), || {
        check_parallel_scan(&client, model)
    })
    .await;
    let count = eventually(c, &what("index ItemCount"), || {
        check_item_count(&client, model)
    })
    .await;
    println!(
        "{when}: node {node}: {} items: Queries (paged, both orders, filtered) matched after \
         {queries:.1?}, Scan after {scan:.1?}, parallel Scan after {parallel:.1?}, ItemCount \
         after {count:.1?}",
        model.len()
    );
}

// ---- reads while the table splits ----

/// The kinds of read the load-phase readers do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ReadKind {
    /// A paged Scan of the table.
    Scan,
    /// A paged Query of the index for one `g`.
    IndexQuery,
    /// A parallel Scan of the table in [`LOAD_SEGMENTS`] segments, each paged.
    ParallelScan,
}

const READ_KINDS: [ReadKind; 3] = [ReadKind::Scan, ReadKind::IndexQuery, ReadKind::ParallelScan];

/// What the readers of one kind did.
#[derive(Debug, Default)]
struct ReadStats {
    /// Completed (and checked) reads.
    reads: usize,
    /// Reads during which the table's base partitions grew in number.
    straddled: usize,
    /// Pages of all the reads.
    pages: usize,
    /// Items returned by all the reads.
    items: usize,
    /// Completed reads by node (index 0 is node 1).
    by_node: [usize; NODES],
    /// Up to 3 straddling reads: (node, partitions before, after, pages, items).
    examples: Vec<(usize, usize, usize, usize, usize)>,
}

type SharedStats = Arc<Mutex<BTreeMap<ReadKind, ReadStats>>>;

/// What a reader shares with the load.
#[derive(Clone)]
struct ReaderEnv {
    /// API URLs of nodes 1..=NODES.
    urls: Vec<String>,
    acks: Acks,
    /// One past the highest `n` any writer was given so far.
    issued: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    stats: SharedStats,
}

/// The table's base partitions in the `/status` of the node at `url`, if it answers.
async fn partitions_at(url: &str) -> Option<usize> {
    let (code, body) = shoal_cluster::http_get(&format!("{url}/status"))
        .await
        .ok()?;
    if code != 200 {
        return None;
    }
    let status: Value = serde_json::from_str(&body).ok()?;
    Some(base_groups(&status).len())
}

/// One paged read (a Scan of the table, `segment` of [`LOAD_SEGMENTS`] when given, or a
/// Query of the index for `g`), pausing [`PAGE_PAUSE`] between pages; the items in the order
/// returned and the number of pages.
async fn paged_read(
    client: &Client,
    query_g: Option<&str>,
    segment: Option<i32>,
) -> Result<(Vec<Item>, usize), String> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    let mut pages = 0;
    loop {
        if pages > 0 {
            tokio::time::sleep(PAGE_PAUSE).await;
        }
        let (page_items, last) = if let Some(g) = query_g {
            let page = client
                .query()
                .table_name(TABLE)
                .index_name(INDEX)
                .key_condition_expression("g = :g")
                .expression_attribute_values(":g", s(g))
                .limit(LOAD_QUERY_PAGE)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "index Query g={g} page {pages}: {}",
                        DisplayErrorContext(&e)
                    )
                })?;
            (page.items, page.last_evaluated_key)
        } else {
            let mut req = client
                .scan()
                .table_name(TABLE)
                .limit(LOAD_SCAN_PAGE)
                .set_exclusive_start_key(start.take());
            if let Some(seg) = segment {
                req = req.segment(seg).total_segments(LOAD_SEGMENTS);
            }
            let page = req.send().await.map_err(|e| {
                format!(
                    "table Scan segment {segment:?} page {pages}: {}",
                    DisplayErrorContext(&e)
                )
            })?;
            (page.items, page.last_evaluated_key)
        };
        pages += 1;
        items.extend(page_items.unwrap_or_default());
        match last {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok((items, pages)),
        }
    }
}

/// Checks a completed read's items: none twice, each exactly as written (with `g` = `query_g`
/// for an index Query) and below `issued`, every `n` of `want` present, and in `n` order for an
/// index Query.
fn check_read(
    got: &[Item],
    want: &BTreeSet<u64>,
    issued: u64,
    query_g: Option<&str>,
) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    let mut dups = Vec::new();
    let mut out_of_order = Vec::new();
    let mut prev: Option<u64> = None;
    for (pos, it) in got.iter().enumerate() {
        let n = n_of(it)
            .ok_or_else(|| format!("item at position {pos} has no n: keys {:?}", it.keys()))?;
        if n >= issued || *it != item(n) {
            return Err(format!(
                "item at position {pos} (n {n}, {} n issued) is not as written: key {:?}",
                issued,
                key_of_item(it)
            ));
        }
        if let Some(g) = query_g {
            if g_of(n) != g {
                return Err(format!("item n {n} at position {pos} has g {}", g_of(n)));
            }
            if prev.is_some_and(|p| p >= n) {
                out_of_order.push((pos, prev, n));
            }
        }
        prev = Some(n);
        if !seen.insert(n) {
            dups.push(n);
        }
    }
    let missing: Vec<u64> = want.difference(&seen).copied().collect();
    if dups.is_empty() && missing.is_empty() && out_of_order.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} items returned ({} distinct), {} required; {} returned twice (e.g. n {:?}); {} \
         required missing (e.g. n {:?}); {} out of n order (e.g. (position, previous n, n) \
         {:?})",
        got.len(),
        seen.len(),
        want.len(),
        dups.len(),
        &dups[..dups.len().min(10)],
        missing.len(),
        &missing[..missing.len().min(10)],
        out_of_order.len(),
        &out_of_order[..out_of_order.len().min(5)],
    ))
}

/// Reads of `kind` one after another, going round the nodes, until `env.stop` is set; each
/// checked by [`check_read`] against the items acknowledged before it started. Stops at the
/// first SDK error or wrong read, with what happened.
async fn reader(kind: ReadKind, env: ReaderEnv, test_start: Instant) -> Result<(), String> {
    let clients: Vec<Client> = env
        .urls
        .iter()
        .map(|u| sdk_client_with_retries(u, REQUEST_TIMEOUT))
        .collect();
    let offset = READ_KINDS.iter().position(|k| *k == kind).unwrap();
    let mut round = 0;
    while !env.stop.load(Ordering::SeqCst) {
        let ix = (round + offset) % NODES;
        let node = ix + 1;
        let g = g_name(CHECKED_GS[round % CHECKED_GS.len()]);
        round += 1;
        let client = &clients[ix];
        let before = partitions_at(&env.urls[ix]).await;
        let started = Instant::now();
        let lag = if kind == ReadKind::IndexQuery {
            INDEX_LAG
        } else {
            SCAN_LAG
        };
        let want: BTreeSet<u64> = env
            .acks
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, at)| {
                **at + lag <= started && (kind != ReadKind::IndexQuery || g_of(**n) == g)
            })
            .map(|(n, _)| *n)
            .collect();
        let read = match kind {
            ReadKind::Scan => paged_read(client, None, None).await,
            ReadKind::IndexQuery => paged_read(client, Some(&g), None).await,
            ReadKind::ParallelScan => parallel_scan(client).await.map(|segments| {
                let pages: usize = segments.iter().map(|(_, p)| p).sum();
                let items: Vec<Item> = segments.into_iter().flat_map(|(i, _)| i).collect();
                (items, pages)
            }),
        };
        let took = started.elapsed();
        let what = |e: String| {
            format!(
                "{kind:?} through node {node} (started at +{:.1?}, took {took:.1?}): {e}",
                started - test_start
            )
        };
        let (items, pages) = read.map_err(what)?;
        let after = partitions_at(&env.urls[ix]).await;
        let query_g = (kind == ReadKind::IndexQuery).then_some(g.as_str());
        check_read(&items, &want, env.issued.load(Ordering::SeqCst), query_g).map_err(|e| {
            what(format!(
                "{pages} pages, base partitions {before:?} before, {after:?} after: {e}"
            ))
        })?;
        let mut stats = env.stats.lock().unwrap();
        let st = stats.entry(kind).or_default();
        st.reads += 1;
        st.pages += pages;
        st.items += items.len();
        st.by_node[ix] += 1;
        if let (Some(b), Some(a)) = (before, after)
            && a > b
        {
            st.straddled += 1;
            if st.examples.len() < 3 {
                st.examples.push((node, b, a, pages, items.len()));
            }
        }
    }
    Ok(())
}

/// The [`LOAD_SEGMENTS`] segments of a parallel table Scan, read concurrently.
async fn parallel_scan(client: &Client) -> Result<Vec<(Vec<Item>, usize)>, String> {
    let tasks: Vec<_> = (0..LOAD_SEGMENTS)
        .map(|seg| {
            let client = client.clone();
            tokio::spawn(async move { paged_read(&client, None, Some(seg)).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.map_err(|e| format!("segment task: {e}"))??);
    }
    Ok(out)
}

/// Stops the readers and waits for them; fails the test with the first one's error.
async fn stop_readers(
    c: &Cluster,
    env: &ReaderEnv,
    readers: Vec<tokio::task::JoinHandle<Result<(), String>>>,
) {
    env.stop.store(true, Ordering::SeqCst);
    for r in readers {
        if let Err(e) = r.await.expect("reader task") {
            c.fail(&format!("a reader during the load: {e}"));
        }
    }
}

/// The number of reads of `kind` that straddled a split so far.
fn straddled(stats: &SharedStats, kind: ReadKind) -> usize {
    stats.lock().unwrap().get(&kind).map_or(0, |s| s.straddled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_with_a_global_index_splits_and_index_reads_stay_whole() {
    let mut c =
        Cluster::start_with_env(NODES, &[("SHOAL_SPLIT_SIZE_BYTES", SPLIT_SIZE_BYTES)]).await;
    create_table(&c).await;
    c.wait_replicated().await;
    let started = Instant::now();

    // ---- load until the table has split into WANT_PARTITIONS base partitions and reads
    // have straddled splits ----
    let all: Vec<usize> = (1..=NODES).collect();
    let mut model = BTreeSet::new();
    let acks: Acks = Arc::default();
    let env = ReaderEnv {
        urls: all.iter().map(|&i| c.api_url(i)).collect(),
        acks: acks.clone(),
        issued: Arc::default(),
        stop: Arc::default(),
        stats: Arc::default(),
    };
    let readers: Vec<_> = READ_KINDS
        .iter()
        .map(|&kind| tokio::spawn(reader(kind, env.clone(), started)))
        .collect();
    let mut failures = Vec::new();
    let mut progression: Vec<(usize, u64)> = Vec::new();
    loop {
        if readers.iter().any(|r| r.is_finished()) {
            stop_readers(&c, &env, readers).await;
            c.fail("a reader stopped during the load without an error");
        }
        let next = model.len() as u64;
        env.issued.store(next + ROUND, Ordering::SeqCst);
        failures.extend(write_items(&c, &all, next..next + ROUND, &mut model, &acks).await);
        let parts = c
            .try_status(1)
            .await
            .map_or(0, |status| base_groups(&status).len());
        if progression.last().is_none_or(|(p, _)| *p != parts) {
            println!(
                "+{:.1?}: {} items written, {parts} base partitions",
                started.elapsed(),
                model.len()
            );
            progression.push((parts, model.len() as u64));
        }
        let straddles_seen = straddled(&env.stats, ReadKind::Scan) >= 1
            && straddled(&env.stats, ReadKind::IndexQuery) >= 1;
        if parts >= WANT_PARTITIONS && model.len() as u64 >= MIN_ITEMS && straddles_seen {
            break;
        }
        if model.len() as u64 >= MAX_ITEMS {
            c.wait_status(
                1,
                SPLIT_LAG,
                &format!(
                    "{WANT_PARTITIONS} base partitions after {} items (partitions by items \
                     written: {progression:?})",
                    model.len()
                ),
                |s| base_groups(s).len() >= WANT_PARTITIONS,
            )
            .await;
            break;
        }
    }
    stop_readers(&c, &env, readers).await;
    let stats = std::mem::take(&mut *env.stats.lock().unwrap());
    for (kind, st) in &stats {
        println!(
            "+{:.1?}: during the load: {kind:?}: {} reads (by node {:?}), {} pages, {} items, {} \
             straddled a split (e.g. (node, partitions before, after, pages, items) {:?})",
            started.elapsed(),
            st.reads,
            st.by_node,
            st.pages,
            st.items,
            st.straddled,
            st.examples
        );
    }
    for kind in [ReadKind::Scan, ReadKind::IndexQuery] {
        if stats.get(&kind).is_none_or(|st| st.straddled == 0) {
            c.fail(&format!(
                "no {kind:?} straddled a split during the load ({} items, partitions by items \
                 written {progression:?}); reads: {stats:?}",
                model.len()
            ));
        }
    }
    println!(
        "+{:.1?}: load done: {} items acknowledged, {} failed attempts (all retried); \
         partitions by items written {progression:?}",
        started.elapsed(),
        model.len(),
        failures.len()
    );
    for f in failures.iter().take(10) {
        println!("  {f}");
    }
    let partitions = wait_settled(&mut c).await;
    println!(
        "+{:.1?}: settled with {partitions} base partitions",
        started.elapsed()
    );

    // ---- index reads through every node ----
    for node in 1..=NODES {
        check_node(&c, node, &model, "after the split").await;
    }

    // ---- kill -9 a node, write more, restart it ----
    let victim = c.leader_of(TABLE).await.unwrap_or(NODES);
    c.kill(victim);
    let others: Vec<usize> = (1..=NODES).filter(|&i| i != victim).collect();
    println!(
        "+{:.1?}: killed node {victim} (SIGKILL); writing {MORE_ITEMS} items through nodes {others:?}",
        started.elapsed()
    );
    let next = model.len() as u64;
    let failures = write_items(&c, &others, next..next + MORE_ITEMS, &mut model, &acks).await;
    println!(
        "+{:.1?}: {} items in all, {} failed attempts while node {victim} was down (all retried)",
        started.elapsed(),
        model.len(),
        failures.len()
    );
    c.restart(victim).await;
    let caught_up = Instant::now();
    while !c.caught_up(victim).await {
        if caught_up.elapsed() > SETTLE_TIMEOUT {
            c.fail(&format!(
                "node {victim} did not catch up within {SETTLE_TIMEOUT:?} of its restart"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let partitions = wait_settled(&mut c).await;
    println!(
        "+{:.1?}: node {victim} restarted and caught up in {:.1?}; {partitions} base partitions",
        started.elapsed(),
        caught_up.elapsed()
    );
    check_node(&c, victim, &model, "after the restart").await;
    for &node in &others {
        check_node(&c, node, &model, "after the restart").await;
    }
    println!("+{:.1?}: done", started.elapsed());
}

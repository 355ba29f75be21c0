//! Automatic partition splits under load on 5 real nodes.
//!
//! The nodes run with `SHOAL_SPLIT_SIZE_BYTES=262144`: a partition whose items exceed 256 KiB is
//! split in two halves of its hash range by its leader, and the placement balancer then moves
//! replicas so each node holds about 3/5 of the partitions. The test creates an on-demand table
//! (`pk` S, `sk` N, and a local secondary index on `lsk` N projecting ALL, so every write also
//! writes the index copy that a split must carry) with one partition, and loads it through all
//! five nodes with SDK clients whose retries are disabled, so every failed request is seen:
//!
//! - six writers put unique ~1 KB items (`pk` = `w<writer>-<i>`, `sk` 0..4, `lsk` a number)
//!   until `/status` shows the table in at least 4 partitions, and a few seconds more; every
//!   acknowledged item is recorded;
//! - meanwhile five register clients (one per node) run ConsistentRead GetItem, PutItem and
//!   conditional PutItem on five keys of the same table, every operation recorded with
//!   `shoal_lincheck::Recorder`.
//!
//! Splits must be invisible to clients: any failed request (other than a conditional check
//! failing) fails the test, and the register history must be linearizable. Then, once the
//! replicas have moved: the table has at least 4 partitions, each with 3 voters on distinct
//! nodes and no learner, whose hash ranges cover the whole hash space without overlap, and each
//! node holds 40-80% of the items. Every acknowledged item reads back (ConsistentRead, equal
//! values) through every node; a paged Scan through each node returns every item exactly once;
//! a Query through the local index returns a writer's items in index order; DescribeTable counts
//! every item.
//!
//! Run it (it prints the timings and counts):
//! `cargo test -p shoal-cluster --test splits -- --nocapture`
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, TableStatus,
};
use serde_json::Value;
use shoal_cluster::Cluster;
use shoal_cluster::load::s;
use shoal_lincheck::{CheckResult, Event, Op, Recorder, Ret, check};

const NODES: usize = 5;
const SPLIT_SIZE_BYTES: &str = "262144";
const TABLE: &str = "growing";
const INDEX: &str = "by_lsk";
/// Writer tasks putting new items.
const WRITERS: usize = 6;
/// Items per partition key (`sk` 0..SORTS).
const SORTS: u64 = 4;
/// Bytes of each item's `payload` attribute.
const PAYLOAD: usize = 1000;
/// Partitions the table must reach.
const WANT_PARTITIONS: usize = 4;
/// How long the load may take to split the table into [`WANT_PARTITIONS`].
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the load goes on once the table has [`WANT_PARTITIONS`].
const LOAD_AFTER: Duration = Duration::from_secs(5);
/// How long the replicas may take to settle after the load.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Operation timeout of every client.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Register clients (client `c` talks to node `c % NODES + 1`).
const LIN_CLIENTS: u64 = 5;
/// Register keys (`pk` = `reg-k<k>`, `sk` = 0).
const LIN_KEYS: u64 = 5;
/// Scan page size.
const SCAN_LIMIT: i32 = 37;

/// A small deterministic PRNG (xorshift64*), seeded per client.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The UTC time of day of `at` (`HH:MM:SS.mmm`), to match failures with the node logs'
/// timestamps.
fn wall(at: Instant) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let then = now.saturating_sub(at.elapsed());
    let ms = then.as_millis() % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

// ---- the writers' items ----

/// One acknowledged writer item.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Acked {
    pk: String,
    sk: u64,
    lsk: u64,
}

/// The item `writer` puts as its `i`-th partition key, sort key `sk`.
fn writer_item(writer: usize, i: u64, sk: u64) -> Acked {
    Acked {
        pk: format!("w{writer}-{i}"),
        sk,
        // Decreasing with `sk`, so the index's order is the reverse of the table's.
        lsk: (SORTS - sk) * 100 + i % 50,
    }
}

/// The full item of `a` (a deterministic ~1 KB payload, so reads can be compared).
fn full_item(a: &Acked) -> HashMap<String, AttributeValue> {
    let seed = format!("{}:{}:", a.pk, a.sk);
    let payload: String = seed.chars().cycle().take(PAYLOAD).collect();
    HashMap::from([
        ("pk".to_string(), s(a.pk.clone())),
        ("sk".to_string(), n(a.sk)),
        ("lsk".to_string(), n(a.lsk)),
        ("payload".to_string(), s(payload)),
    ])
}

/// What a writer did.
#[derive(Default)]
struct WriterReport {
    acked: Vec<Acked>,
    failures: Vec<String>,
}

/// Puts new items through `client` (bound to node `node`) until `stop`.
async fn writer(
    id: usize,
    node: usize,
    client: Client,
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
    started: Instant,
) -> WriterReport {
    let mut report = WriterReport::default();
    let mut i = 0u64;
    'outer: loop {
        for sk in 0..SORTS {
            if stop.load(Ordering::SeqCst) {
                break 'outer;
            }
            let a = writer_item(id, i, sk);
            let sent = Instant::now();
            match client
                .put_item()
                .table_name(TABLE)
                .set_item(Some(full_item(&a)))
                .send()
                .await
            {
                Ok(_) => report.acked.push(a),
                Err(e) => {
                    failed.fetch_add(1, Ordering::SeqCst);
                    report.failures.push(format!(
                        "+{:.1?} ({}Z, failed after {:.1?}) writer {id} via node {node}: PutItem {}/{}: {}",
                        sent.duration_since(started),
                        wall(sent),
                        sent.elapsed(),
                        a.pk,
                        a.sk,
                        DisplayErrorContext(&e)
                    ));
                }
            }
        }
        i += 1;
    }
    report
}

// ---- the register clients ----

fn reg_key(k: u64) -> String {
    format!("reg-k{k}")
}

fn reg_key_attr(key: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), s(key.to_string())),
        ("sk".to_string(), n(0)),
    ])
}

/// What became of one register request: its answer, or the error (any error but a failed
/// condition fails the test: no nemesis runs here).
fn classify<E, R>(e: &SdkError<E, R>) -> Result<Ret, String>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(se) = e
        && se.err().code() == Some("ConditionalCheckFailedException")
    {
        return Ok(Ret::CondFailed);
    }
    Err(DisplayErrorContext(e).to_string())
}

async fn run_op(client: &Client, key: &str, op: &Op) -> Result<Ret, String> {
    match op {
        Op::Read => match client
            .get_item()
            .table_name(TABLE)
            .set_key(Some(reg_key_attr(key)))
            .consistent_read(true)
            .send()
            .await
        {
            Ok(out) => {
                Ok(Ret::Read(out.item.and_then(|it| {
                    it.get("v").and_then(|v| v.as_s().ok().cloned())
                })))
            }
            Err(e) => classify(&e),
        },
        Op::Write(value) => {
            let mut item = reg_key_attr(key);
            item.insert(
                "v".into(),
                s(value.clone().expect("register puts write a value")),
            );
            match client
                .put_item()
                .table_name(TABLE)
                .set_item(Some(item))
                .send()
                .await
            {
                Ok(_) => Ok(Ret::Ok),
                Err(e) => classify(&e),
            }
        }
        Op::CondWrite { expect, value } => {
            let mut item = reg_key_attr(key);
            item.insert(
                "v".into(),
                s(value.clone().expect("conditional puts write a value")),
            );
            let req = client.put_item().table_name(TABLE).set_item(Some(item));
            let req = match expect {
                None => req.condition_expression("attribute_not_exists(v)"),
                Some(e) => req
                    .condition_expression("v = :expected")
                    .expression_attribute_values(":expected", s(e.clone())),
            };
            match req.send().await {
                Ok(_) => Ok(Ret::Ok),
                Err(e) => classify(&e),
            }
        }
    }
}

/// One register client, bound to node `node`, until `stop`; returns its failures.
#[allow(clippy::too_many_arguments)]
async fn register_client(
    id: u64,
    node: usize,
    client: Client,
    rec: Recorder,
    stop: Arc<AtomicBool>,
    seq: Arc<AtomicU64>,
    failed: Arc<AtomicUsize>,
    started: Instant,
) -> Vec<String> {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15 ^ (id * 7919 + 17));
    let mut failures = Vec::new();
    // The last value this client saw per key, to make `v = :expected` conditions that can hold.
    let mut seen: HashMap<String, Option<String>> = HashMap::new();
    while !stop.load(Ordering::SeqCst) {
        let key = reg_key(rng.below(LIN_KEYS));
        let fresh = || format!("c{id}-{}", seq.fetch_add(1, Ordering::Relaxed));
        let op = match rng.below(100) {
            0..45 => Op::Read,
            45..75 => Op::Write(Some(fresh())),
            75..87 => Op::CondWrite {
                expect: None,
                value: Some(fresh()),
            },
            _ => Op::CondWrite {
                expect: Some(
                    seen.get(&key)
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| "never-written".to_string()),
                ),
                value: Some(fresh()),
            },
        };
        let sent = Instant::now();
        let token = rec.begin(id, &key, op.clone());
        match run_op(&client, &key, &op).await {
            Ok(ret) => {
                match (&op, &ret) {
                    (Op::Read, Ret::Read(v)) => {
                        seen.insert(key.clone(), v.clone());
                    }
                    (Op::Write(v), Ret::Ok) => {
                        seen.insert(key.clone(), v.clone());
                    }
                    (Op::CondWrite { value, .. }, Ret::Ok) => {
                        seen.insert(key.clone(), value.clone());
                    }
                    _ => {}
                }
                rec.end(token, ret);
            }
            Err(e) => {
                rec.end(token, Ret::Unknown);
                failed.fetch_add(1, Ordering::SeqCst);
                failures.push(format!(
                    "+{:.1?} ({}Z, failed after {:.1?}) register client {id} via node {node}: {op:?} on {key}: {e}",
                    sent.duration_since(started),
                    wall(sent),
                    sent.elapsed()
                ));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    failures
}

// ---- /status ----

/// One partition group of the table, as `/status` reports it.
#[derive(Clone, Debug)]
struct Group {
    id: u64,
    start: u64,
    end: u64,
    epoch: u64,
    voters: Vec<u64>,
    learners: Vec<u64>,
    leader: Option<u64>,
    items: u64,
    bytes: u64,
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect()
}

/// The table's partition groups in `status`, sorted by hash range.
fn table_groups(status: &Value) -> Result<Vec<Group>, String> {
    let mut out = Vec::new();
    for g in status["groups"].as_array().into_iter().flatten() {
        if g["kind"] != "partition" || g["table"] != TABLE {
            continue;
        }
        let hex = |k: usize| {
            g["hash_range"][k]
                .as_str()
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("group {}: bad hash_range {}", g["group"], g["hash_range"]))
        };
        out.push(Group {
            id: g["group"].as_u64().unwrap_or(0),
            start: hex(0)?,
            end: hex(1)?,
            epoch: g["epoch"].as_u64().unwrap_or(0),
            voters: ids(&g["voters"]),
            learners: ids(&g["learners"]),
            leader: g["leader"].as_u64(),
            items: g["items"].as_u64().unwrap_or(0),
            bytes: g["bytes"].as_u64().unwrap_or(0),
        });
    }
    out.sort_by_key(|g| (g.start, g.end));
    Ok(out)
}

fn describe(groups: &[Group]) -> String {
    groups
        .iter()
        .map(|g| {
            format!(
                "  group {} [{:016x}, {:016x}] epoch {} voters {:?} learners {:?} leader {:?} items {} bytes {}",
                g.id, g.start, g.end, g.epoch, g.voters, g.learners, g.leader, g.items, g.bytes
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The member node ids of `status` (removed members aside).
fn member_ids(status: &Value) -> BTreeSet<u64> {
    status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["state"] != "removed")
        .filter_map(|m| m["id"].as_u64())
        .collect()
}

/// The settled shape: at least [`WANT_PARTITIONS`] groups, 3 voters on distinct nodes each and
/// no learner, a leader each, hash ranges covering `0..=u64::MAX` without gap or overlap, the
/// groups' item counts summing to `total`, and each member holding 40-80% of the items. Returns
/// each node's share (percent), or what is not so yet.
fn settled(status: &Value, total: u64) -> Result<BTreeMap<u64, u64>, String> {
    let groups = table_groups(status)?;
    let shape = || describe(&groups);
    if groups.len() < WANT_PARTITIONS {
        return Err(format!(
            "{} partitions (want >= {WANT_PARTITIONS}):\n{}",
            groups.len(),
            shape()
        ));
    }
    for g in &groups {
        let distinct: BTreeSet<u64> = g.voters.iter().copied().collect();
        if g.voters.len() != 3 || distinct.len() != 3 || !g.learners.is_empty() {
            return Err(format!(
                "group {} has voters {:?} and learners {:?} (want 3 distinct voters, no learner):\n{}",
                g.id,
                g.voters,
                g.learners,
                shape()
            ));
        }
        if g.leader.is_none_or(|l| !distinct.contains(&l)) {
            return Err(format!("group {} has no leader:\n{}", g.id, shape()));
        }
    }
    let mut next = Some(0u64);
    for g in &groups {
        if Some(g.start) != next || g.end < g.start {
            return Err(format!(
                "hash ranges do not tile the hash space (group {} starts at {:016x}, expected {:?}):\n{}",
                g.id,
                g.start,
                next.map(|h| format!("{h:016x}")),
                shape()
            ));
        }
        next = g.end.checked_add(1);
    }
    if next.is_some() {
        return Err(format!(
            "hash ranges end before {:016x}:\n{}",
            u64::MAX,
            shape()
        ));
    }
    let counted: u64 = groups.iter().map(|g| g.items).sum();
    if counted != total {
        return Err(format!(
            "the groups count {counted} items, the table has {total}:\n{}",
            shape()
        ));
    }
    let mut held: BTreeMap<u64, u64> = member_ids(status).into_iter().map(|m| (m, 0)).collect();
    for g in &groups {
        for v in &g.voters {
            *held.entry(*v).or_default() += g.items;
        }
    }
    let share: BTreeMap<u64, u64> = held
        .iter()
        .map(|(node, items)| (*node, items * 100 / total.max(1)))
        .collect();
    if held.len() != NODES || share.values().any(|pct| !(40..=80).contains(pct)) {
        return Err(format!(
            "node shares of the items (percent by node id) {share:?} (want 40-80% on each of {NODES} nodes):\n{}",
            shape()
        ));
    }
    Ok(share)
}

// ---- logs ----

/// Every node's log lines about splits (and the API's 5xx answers), for failure reports.
fn split_log_lines(c: &Cluster) -> String {
    let mut out = String::new();
    for i in 1..=c.len() {
        let log = c.dir().join(format!("node{i}")).join("log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("split") || l.contains("error shoal_api") || l.contains("panick")
            })
            .collect();
        out.push_str(&format!(
            "===== node {i}: {} split/error lines (last 80) =====\n",
            lines.len()
        ));
        for l in &lines[lines.len().saturating_sub(80)..] {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// How many times each node's log says "partition split" (a split applied by a leader).
fn splits_logged(c: &Cluster) -> usize {
    (1..=c.len())
        .map(|i| {
            std::fs::read_to_string(c.dir().join(format!("node{i}")).join("log"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(": partition split"))
                .count()
        })
        .sum()
}

/// Prints the split log lines and the API's 5xx answers, then fails (dropping the cluster
/// prints every log's tail).
fn fail(c: &Cluster, msg: &str) -> ! {
    eprintln!("{}", split_log_lines(c));
    let errors = c.server_errors();
    if !errors.is_empty() {
        eprintln!("server errors ({}):", errors.len());
        for e in errors.iter().take(30) {
            eprintln!("{e}");
        }
    }
    c.fail(msg)
}

// ---- setup and checks ----

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
        .attribute_definitions(def("lsk", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(INDEX)
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("lsk", KeyType::Range))
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
        fail(
            c,
            &format!("CreateTable {TABLE}: {}", DisplayErrorContext(&e)),
        );
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
            fail(
                c,
                &format!("{TABLE} not ACTIVE through node {i} within 30 s"),
            );
        }
    }
}

/// Every item of the table by a paged Scan through `client`: (pk, sk) → item; fails on an item
/// returned twice.
async fn scan_all(
    c: &Cluster,
    client: &Client,
    node: usize,
) -> BTreeMap<(String, u64), HashMap<String, AttributeValue>> {
    let mut seen = BTreeMap::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    let mut pages = 0;
    loop {
        let page = match client
            .scan()
            .table_name(TABLE)
            .limit(SCAN_LIMIT)
            .set_exclusive_start_key(start.take())
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) => fail(
                c,
                &format!(
                    "Scan page {pages} through node {node}: {}",
                    DisplayErrorContext(&e)
                ),
            ),
        };
        pages += 1;
        for item in page.items() {
            let pk = item["pk"].as_s().unwrap().clone();
            let sk: u64 = item["sk"].as_n().unwrap().parse().unwrap();
            if seen.insert((pk.clone(), sk), item.clone()).is_some() {
                fail(
                    c,
                    &format!("Scan through node {node} returned {pk}/{sk} twice (page {pages})"),
                );
            }
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return seen,
        }
    }
}

/// Reads every acknowledged item with ConsistentRead through `node`; returns the mismatches.
async fn read_back(client: Client, node: usize, acked: Arc<Vec<Acked>>) -> Vec<String> {
    let mut bad = Vec::new();
    for a in acked.iter() {
        let want = full_item(a);
        let sent = Instant::now();
        match client
            .get_item()
            .table_name(TABLE)
            .key("pk", s(a.pk.clone()))
            .key("sk", n(a.sk))
            .consistent_read(true)
            .send()
            .await
        {
            Ok(out) => match out.item {
                Some(item) if item == want => {}
                Some(item) => bad.push(format!(
                    "node {node}: {}/{} reads back different: {:?}",
                    a.pk,
                    a.sk,
                    item.iter()
                        .filter(|(k, _)| k.as_str() != "payload")
                        .collect::<BTreeMap<_, _>>()
                )),
                None => bad.push(format!(
                    "node {node}: acknowledged {}/{} missing",
                    a.pk, a.sk
                )),
            },
            Err(e) => bad.push(format!(
                "node {node}: GetItem {}/{} sent at {}Z, failed after {:.1?}: {}",
                a.pk,
                a.sk,
                wall(sent),
                sent.elapsed(),
                DisplayErrorContext(&e)
            )),
        }
        if bad.len() >= 20 {
            break;
        }
    }
    bad
}

/// Queries `pk` through the local index on `node` (all of it, then `lsk >= lo`) and checks
/// the items and their order against the acknowledged ones.
async fn check_index_query(c: &Cluster, node: usize, pk: &str, acked: &[Acked]) {
    let mut want: Vec<&Acked> = acked.iter().filter(|a| a.pk == pk).collect();
    want.sort_by_key(|a| a.lsk);
    let lo = want.get(want.len() / 2).map_or(0, |a| a.lsk);
    for (cond, expect) in [
        ("pk = :pk", want.clone()),
        (
            "pk = :pk AND lsk >= :lo",
            want.iter().copied().filter(|a| a.lsk >= lo).collect(),
        ),
    ] {
        let mut req = c
            .client(node)
            .query()
            .table_name(TABLE)
            .index_name(INDEX)
            .consistent_read(true)
            .key_condition_expression(cond)
            .expression_attribute_values(":pk", s(pk.to_string()));
        if cond.contains(":lo") {
            req = req.expression_attribute_values(":lo", n(lo));
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => fail(
                c,
                &format!(
                    "Query {INDEX} `{cond}` for {pk} through node {node}: {}",
                    DisplayErrorContext(&e)
                ),
            ),
        };
        let got: Vec<HashMap<String, AttributeValue>> = out.items().to_vec();
        let expected: Vec<HashMap<String, AttributeValue>> =
            expect.iter().map(|a| full_item(a)).collect();
        if got != expected {
            let keys = |items: &[HashMap<String, AttributeValue>]| {
                items
                    .iter()
                    .map(|i| {
                        format!(
                            "sk {} lsk {}",
                            i.get("sk").and_then(|v| v.as_n().ok()).map_or("?", |v| v),
                            i.get("lsk").and_then(|v| v.as_n().ok()).map_or("?", |v| v)
                        )
                    })
                    .collect::<Vec<_>>()
            };
            fail(
                c,
                &format!(
                    "Query {INDEX} `{cond}` for {pk} through node {node}: got {:?}, want {:?} \
                     (or the items' attributes differ)",
                    keys(&got),
                    keys(&expected)
                ),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_growing_table_splits_under_load_and_clients_see_no_failure() {
    let mut c =
        Cluster::start_with_env(NODES, &[("SHOAL_SPLIT_SIZE_BYTES", SPLIT_SIZE_BYTES)]).await;
    create_table(&c).await;
    c.wait_replicated().await;
    let initial = table_groups(&c.status(1).await).unwrap_or_default();
    if initial.len() != 1 {
        fail(
            &c,
            &format!(
                "a new on-demand table should have one partition:\n{}",
                describe(&initial)
            ),
        );
    }

    // ---- the load ----
    let started = Instant::now();
    println!("load started at {}Z", wall(started));
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let rec = Recorder::new();
    let seq = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let node = 1 + w % NODES;
        writers.push(tokio::spawn(writer(
            w,
            node,
            c.client_with_timeout(node, REQUEST_TIMEOUT),
            stop.clone(),
            failed.clone(),
            started,
        )));
    }
    let mut registers = Vec::new();
    for id in 0..LIN_CLIENTS {
        let node = 1 + (id as usize) % NODES;
        registers.push(tokio::spawn(register_client(
            id,
            node,
            c.client_with_timeout(node, REQUEST_TIMEOUT),
            rec.clone(),
            stop.clone(),
            seq.clone(),
            failed.clone(),
            started,
        )));
    }

    // Watch the table's partitions from node 1 until there are WANT_PARTITIONS (then load a
    // little longer), a request fails, or the time is up.
    let mut reached: Option<Duration> = None;
    let mut progression: Vec<(usize, Duration)> = Vec::new();
    let mut last_shape = String::new();
    let outcome: Result<(), String> = loop {
        if failed.load(Ordering::SeqCst) > 0 {
            // Let the other clients run into it too, for a fuller report.
            tokio::time::sleep(Duration::from_secs(1)).await;
            break Err("requests failed during the load".to_string());
        }
        if let Ok(status) = c.try_status(1).await
            && let Ok(groups) = table_groups(&status)
        {
            let count = groups.len();
            if progression.last().is_none_or(|(k, _)| *k != count) {
                println!(
                    "+{:.1?}: {TABLE} has {count} partition group(s)",
                    started.elapsed()
                );
                progression.push((count, started.elapsed()));
            }
            last_shape = describe(&groups);
            if count >= WANT_PARTITIONS && reached.is_none() {
                reached = Some(started.elapsed());
            }
        }
        if let Some(at) = reached
            && started.elapsed() >= at + LOAD_AFTER
        {
            break Ok(());
        }
        if reached.is_none() && started.elapsed() > LOAD_TIMEOUT {
            break Err(format!(
                "{TABLE} did not reach {WANT_PARTITIONS} partitions within {LOAD_TIMEOUT:?} \
                 (partition counts over time {progression:?}); last shape:\n{last_shape}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    stop.store(true, Ordering::SeqCst);
    let mut acked: Vec<Acked> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut per_writer = Vec::new();
    for w in writers {
        let r = w.await.expect("writer task");
        per_writer.push(r.acked.len());
        acked.extend(r.acked);
        failures.extend(r.failures);
    }
    for r in registers {
        failures.extend(r.await.expect("register client task"));
    }
    let load_time = started.elapsed();
    let history = rec.history();
    let payload_bytes = acked.len() * PAYLOAD;
    println!(
        "load: {load_time:.1?}; {} items acknowledged by {WRITERS} writers ({per_writer:?}, \
         ~{} KiB of payload), {} register operations, {} failed requests; \
         {WANT_PARTITIONS} partitions reached at {}; partition counts over time {progression:?}",
        acked.len(),
        payload_bytes / 1024,
        history.len(),
        failures.len(),
        reached.map_or("never".to_string(), |d| format!("+{d:.1?}")),
    );
    if !failures.is_empty() {
        failures.sort();
        fail(
            &c,
            &format!(
                "{} requests failed during the load (none may: splits must be invisible); the \
                 first {}:\n{}",
                failures.len(),
                failures.len().min(25),
                failures[..failures.len().min(25)].join("\n")
            ),
        );
    }
    if let Err(msg) = outcome {
        fail(&c, &msg);
    }

    // ---- the register history is linearizable ----
    let count = |f: &dyn Fn(&Event) -> bool| history.iter().filter(|e| f(e)).count();
    let reads_ok = count(&|e| matches!(e.ret, Ret::Read(_)));
    let cond_failed = count(&|e| e.ret == Ret::CondFailed);
    let unknown = count(&|e| e.ret == Ret::Unknown);
    let t = Instant::now();
    let verdict = check(&history);
    println!(
        "register history: {} operations ({reads_ok} reads, {cond_failed} conditions failed, \
         {unknown} unknown) checked in {:.1?}: {verdict:?}",
        history.len(),
        t.elapsed()
    );
    if verdict != CheckResult::Ok {
        fail(
            &c,
            &format!("register history is not linearizable: {verdict:?}"),
        );
    }
    if history.len() < 200 || reads_ok < 50 {
        fail(
            &c,
            &format!(
                "too little happened for the register check to mean anything: {} ops, {reads_ok} reads",
                history.len()
            ),
        );
    }
    // The register keys that hold a value: those with an acknowledged write.
    let registers_written: BTreeSet<String> = history
        .iter()
        .filter(|e| e.ret == Ret::Ok)
        .map(|e| e.key.clone())
        .collect();

    // ---- the replicas settle ----
    let total = (acked.len() + registers_written.len()) as u64;
    let settle_started = Instant::now();
    let (share, status) = loop {
        let last = match c.try_status(1).await {
            Ok(status) => match settled(&status, total) {
                Ok(share) => break (share, status),
                Err(why) => why,
            },
            Err(e) => e,
        };
        if settle_started.elapsed() > SETTLE_TIMEOUT {
            fail(
                &c,
                &format!(
                    "the table's partitions did not settle within {SETTLE_TIMEOUT:?} after the \
                     load: {last}"
                ),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let settle_time = settle_started.elapsed();
    let groups = table_groups(&status).unwrap();
    println!(
        "settled {settle_time:.1?} after the load: {} partitions, {total} items, share of the \
         items by node id (%) {share:?}, {} splits logged, moves in progress {}\n{}",
        groups.len(),
        splits_logged(&c),
        status["moves"],
        describe(&groups)
    );

    // ---- every acknowledged item reads back through every node ----
    let t = Instant::now();
    let acked = Arc::new(acked);
    let reads: Vec<_> = (1..=NODES)
        .map(|i| {
            tokio::spawn(read_back(
                c.client_with_timeout(i, REQUEST_TIMEOUT),
                i,
                acked.clone(),
            ))
        })
        .collect();
    let mut bad = Vec::new();
    for r in reads {
        bad.extend(r.await.expect("read task"));
    }
    if !bad.is_empty() {
        fail(
            &c,
            &format!(
                "acknowledged items do not read back:\n{}",
                bad[..bad.len().min(40)].join("\n")
            ),
        );
    }
    println!(
        "{} items read back with ConsistentRead through each of {NODES} nodes in {:.1?}",
        acked.len(),
        t.elapsed()
    );

    // ---- a paged Scan through each node returns every item once ----
    let t = Instant::now();
    let want_keys: BTreeSet<(String, u64)> = acked.iter().map(|a| (a.pk.clone(), a.sk)).collect();
    for i in 1..=NODES {
        let got = scan_all(&c, &c.client_with_timeout(i, REQUEST_TIMEOUT), i).await;
        let writer_keys: BTreeSet<(String, u64)> = got
            .keys()
            .filter(|(pk, _)| pk.starts_with('w'))
            .cloned()
            .collect();
        if writer_keys != want_keys {
            let missing: Vec<_> = want_keys.difference(&writer_keys).take(10).collect();
            let extra: Vec<_> = writer_keys.difference(&want_keys).take(10).collect();
            fail(
                &c,
                &format!(
                    "Scan through node {i}: {} writer items, want {}; missing e.g. {missing:?}, \
                     unexpected e.g. {extra:?}",
                    writer_keys.len(),
                    want_keys.len()
                ),
            );
        }
        if let Some(a) = acked
            .iter()
            .find(|a| got[&(a.pk.clone(), a.sk)] != full_item(a))
        {
            fail(
                &c,
                &format!("Scan through node {i}: {}/{} differs", a.pk, a.sk),
            );
        }
        let reg_keys: BTreeSet<String> = got
            .keys()
            .filter(|(pk, _)| pk.starts_with("reg-"))
            .map(|(pk, _)| pk.clone())
            .collect();
        if reg_keys != registers_written || got.len() as u64 != total {
            fail(
                &c,
                &format!(
                    "Scan through node {i}: register keys {reg_keys:?} (want {registers_written:?}), \
                     {} items in all (want {total})",
                    got.len()
                ),
            );
        }
    }
    println!(
        "a paged Scan (Limit {SCAN_LIMIT}) through each of {NODES} nodes returned the {total} items once each, in {:.1?}",
        t.elapsed()
    );

    // ---- Query through the local index ----
    for w in 0..WRITERS {
        let mine: Vec<&Acked> = acked
            .iter()
            .filter(|a| a.pk.starts_with(&format!("w{w}-")))
            .collect();
        let Some(last_pk) = mine.last().map(|a| a.pk.clone()) else {
            fail(&c, &format!("writer {w} wrote nothing"));
        };
        let node = 1 + w % NODES;
        for pk in [format!("w{w}-0"), last_pk] {
            check_index_query(&c, node, &pk, &acked).await;
        }
    }
    println!(
        "Query through {INDEX} returned each writer's first and last keys' items in index order"
    );

    // ---- DescribeTable counts every item ----
    let d = match c.client(3).describe_table().table_name(TABLE).send().await {
        Ok(d) => d,
        Err(e) => fail(&c, &format!("DescribeTable: {}", DisplayErrorContext(&e))),
    };
    let item_count = d.table().and_then(|t| t.item_count());
    if item_count != Some(total as i64) {
        fail(
            &c,
            &format!("DescribeTable ItemCount through node 3 is {item_count:?}, want {total}"),
        );
    }

    let errors = c.server_errors();
    if !errors.is_empty() {
        fail(&c, &format!("server errors: {errors:?}"));
    }
    println!(
        "summary: load {load_time:.1?}, {WANT_PARTITIONS} partitions at {}, settled {settle_time:.1?} \
         after the load, {} partitions, {total} items ({} writer items, {} register keys), \
         {} register operations",
        reached.map_or("never".to_string(), |d| format!("+{d:.1?}")),
        groups.len(),
        acked.len(),
        registers_written.len(),
        history.len()
    );
}

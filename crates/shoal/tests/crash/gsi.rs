//! SIGKILL while writing to a table with a global secondary index, many times over.
//!
//! Each cycle runs `WRITERS` concurrent writers on their own keys (PutItem with or without the
//! index key, UpdateItem moving the item to another index key, DeleteItem; the index sort key
//! `ver` changes on every write, so every write deletes one entry and puts another) and SIGKILLs
//! the process 50-400 ms in. After the restart each key must hold its last acknowledged state (or
//! that with the in-flight request applied), and the GSI must converge — within a deadline,
//! with no further writes — to exactly the table's items that have the index key: every
//! acknowledged item in the index exactly once, with its current attributes, and no deleted or
//! superseded entry left.
//!
//! `SHOAL_CRASH_SEED` replays a run; `SHOAL_GSI_CRASH_CYCLES` changes the number of cycles
//! (default 25).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, GlobalSecondaryIndex, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use shoal_tests::{attr_def, describe_error, key_elem, must_wait_active};

use crate::support::{CrashRun, Numbers, Rng, n, numbers, s, start_node};

const TABLE: &str = "gsicrash";
const INDEX: &str = "by_grp";
const WRITERS: usize = 6;
const KEYS_PER_WRITER: usize = 8;
const DEFAULT_CYCLES: u64 = 25;

#[derive(Debug, Clone)]
enum Op {
    /// PutItem `{pk, ver}` plus `grp` when given (without it the item is not indexed).
    Put {
        grp: Option<u64>,
        ver: u64,
    },
    /// UpdateItem `SET grp = :g, ver = :v` (an upsert).
    Move {
        grp: u64,
        ver: u64,
    },
    Delete,
}

type State = Option<Numbers>;

impl Op {
    fn apply(&self, state: &State) -> State {
        match self {
            Op::Put { grp, ver } => {
                let mut m = Numbers::from([("ver".into(), ver.to_string())]);
                if let Some(g) = grp {
                    m.insert("grp".into(), g.to_string());
                }
                Some(m)
            }
            Op::Move { grp, ver } => {
                let mut m = state.clone().unwrap_or_default();
                m.insert("grp".into(), grp.to_string());
                m.insert("ver".into(), ver.to_string());
                Some(m)
            }
            Op::Delete => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct KeyLog {
    state: State,
    in_flight: Option<Op>,
    acked: usize,
}

fn key_name(writer: usize, i: usize) -> String {
    format!("w{writer}-k{i}")
}

/// Sends `op`; `Some(())` when acknowledged, `None` when the connection died (unknown outcome).
async fn send(client: &Client, key: &str, op: &Op) -> Option<()> {
    fn outcome<T, E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
        r: Result<T, SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
    ) -> Option<()> {
        match r {
            Ok(_) => Some(()),
            Err(e @ SdkError::ServiceError(_)) => {
                panic!(
                    "the node answered an error during the workload: {}",
                    describe_error(&e)
                )
            }
            Err(_) => None,
        }
    }
    match op {
        Op::Put { grp, ver } => {
            let mut req = client
                .put_item()
                .table_name(TABLE)
                .item("pk", s(key))
                .item("ver", n(ver));
            if let Some(g) = grp {
                req = req.item("grp", n(g));
            }
            outcome(req.send().await)
        }
        Op::Move { grp, ver } => outcome(
            client
                .update_item()
                .table_name(TABLE)
                .key("pk", s(key))
                .update_expression("SET grp = :g, ver = :v")
                .expression_attribute_values(":g", n(grp))
                .expression_attribute_values(":v", n(ver))
                .send()
                .await,
        ),
        Op::Delete => outcome(
            client
                .delete_item()
                .table_name(TABLE)
                .key("pk", s(key))
                .send()
                .await,
        ),
    }
}

async fn writer(
    client: Client,
    id: usize,
    mut logs: Vec<KeyLog>,
    mut rng: Rng,
    base: u64,
) -> Vec<KeyLog> {
    let mut ver = base;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "writer {id} still running 20 s after start"
        );
        let k = rng.range(0, KEYS_PER_WRITER as u64) as usize;
        ver += 1;
        let op = match rng.range(0, 10) {
            0..=3 => Op::Put {
                grp: Some(rng.range(0, 5)),
                ver,
            },
            4 => Op::Put { grp: None, ver },
            5..=7 => Op::Move {
                grp: rng.range(0, 5),
                ver,
            },
            _ => Op::Delete,
        };
        let log = &mut logs[k];
        log.in_flight = Some(op.clone());
        match send(&client, &key_name(id, k), &op).await {
            Some(()) => {
                log.state = op.apply(&log.state);
                log.in_flight = None;
                log.acked += 1;
            }
            None => return logs,
        }
    }
}

/// Every item of a Scan of the table or of the index, by `pk`, failing on a repeated `pk`.
async fn scan(client: &Client, index: Option<&str>) -> BTreeMap<String, Numbers> {
    let mut out = BTreeMap::new();
    let mut start = None;
    loop {
        let r = client
            .scan()
            .table_name(TABLE)
            .set_index_name(index.map(str::to_string))
            .limit(9)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Scan {index:?}: {}", describe_error(&e)));
        for item in r.items() {
            let Some(AttributeValue::S(pk)) = item.get("pk") else {
                panic!("item without a string pk: {item:?}");
            };
            if let Some(prev) = out.insert(pk.clone(), numbers(item)) {
                panic!(
                    "{}: {pk} is there twice ({prev:?} and {:?})",
                    index.unwrap_or("table"),
                    numbers(item)
                );
            }
        }
        start = r.last_evaluated_key().cloned();
        if start.is_none() {
            return out;
        }
    }
}

async fn create_table(client: &Client) {
    let index = GlobalSecondaryIndex::builder()
        .index_name(INDEX)
        .key_schema(key_elem("grp", KeyType::Hash))
        .key_schema(key_elem("ver", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .unwrap();
    client
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .attribute_definitions(attr_def("grp", ScalarAttributeType::N))
        .attribute_definitions(attr_def("ver", ScalarAttributeType::N))
        .key_schema(key_elem("pk", KeyType::Hash))
        .global_secondary_indexes(index)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable: {}", describe_error(&e)));
    must_wait_active(client, TABLE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gsi_holds_every_acknowledged_item_exactly_once_after_repeated_sigkill() {
    let CrashRun {
        seed,
        cycles,
        mut rng,
        dir: _dir,
        data,
    } = CrashRun::new("GSI crash test", "SHOAL_GSI_CRASH_CYCLES", DEFAULT_CYCLES);
    let started = Instant::now();
    let mut node = start_node(&data).await;
    create_table(&node.client()).await;

    let mut logs: Vec<Vec<KeyLog>> = vec![vec![KeyLog::default(); KEYS_PER_WRITER]; WRITERS];
    let mut next_ver = 0u64;
    let (mut acked_total, mut converge_max) = (0usize, Duration::ZERO);
    for cycle in 0..cycles {
        let client = node.client();
        let delay = Duration::from_millis(rng.range(50, 401));
        let mut tasks = Vec::new();
        for (w, writer_logs) in logs.iter().enumerate() {
            let fresh: Vec<KeyLog> = writer_logs
                .iter()
                .map(|l| KeyLog {
                    state: l.state.clone(),
                    ..KeyLog::default()
                })
                .collect();
            let base = next_ver + (w as u64) * 1_000_000;
            tasks.push(tokio::spawn(writer(
                client.clone(),
                w,
                fresh,
                Rng::new(rng.next_u64()),
                base,
            )));
        }
        next_ver += (WRITERS as u64) * 1_000_000;
        tokio::time::sleep(delay).await;
        node.kill();
        for (w, task) in tasks.into_iter().enumerate() {
            logs[w] = task.await.expect("writer task panicked");
        }

        node.start_again().await;
        let client = node.client();
        // The table: every key at its acknowledged state (or with the in-flight write).
        let table = scan(&client, None).await;
        for (w, writer_logs) in logs.iter_mut().enumerate() {
            for (k, log) in writer_logs.iter_mut().enumerate() {
                let key = key_name(w, k);
                let actual = table.get(&key).cloned();
                let mut allowed = vec![log.state.clone()];
                if let Some(op) = &log.in_flight {
                    allowed.push(op.apply(&log.state));
                }
                assert!(
                    allowed.contains(&actual),
                    "cycle {cycle} (seed {seed}), key {key}: table has {actual:?}, expected one of {allowed:?}"
                );
                acked_total += log.acked;
                log.state = actual;
            }
        }
        // The index: converges to exactly the indexed items of the table.
        let want: BTreeMap<String, Numbers> = table
            .into_iter()
            .filter(|(_, m)| m.contains_key("grp"))
            .collect();
        let t0 = Instant::now();
        loop {
            let got = scan(&client, Some(INDEX)).await;
            if got == want {
                break;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                let missing: Vec<_> = want
                    .iter()
                    .filter(|(k, v)| got.get(*k) != Some(v))
                    .collect();
                let extra: Vec<_> = got
                    .iter()
                    .filter(|(k, v)| want.get(*k) != Some(v))
                    .collect();
                panic!(
                    "cycle {cycle} (seed {seed}): the GSI did not converge to the table within 10 s \
                     of the restart; missing or stale: {missing:?}; unexpected: {extra:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        converge_max = converge_max.max(t0.elapsed());
    }
    eprintln!(
        "GSI crash test: {cycles} cycles in {:.1?}: {acked_total} acknowledged writes verified; \
         the index converged at most {converge_max:?} after each restart",
        started.elapsed()
    );
    assert!(
        acked_total as u64 >= cycles * 5,
        "only {acked_total} writes were acknowledged in {cycles} cycles: the workload did not run"
    );
}

//! SIGKILL during a concurrent write workload, many times over, on one data directory.
//!
//! Each cycle starts the node on the same data directory, runs `WRITERS` concurrent writers
//! (PutItem overwrites with increasing versions, UpdateItem `ADD` counters, DeleteItem,
//! conditional PutItems that succeed or fail on purpose) and SIGKILLs the process 50-400 ms
//! after the workload started. Each key is written by one writer, one request at a time, so
//! its state after every acknowledged request is known exactly; a request cut off by the kill
//! is "in flight" and may or may not have landed. After the restart, every key must hold
//! exactly its last acknowledged state, or that state with the in-flight request applied; a
//! full Scan must succeed and agree with the point reads.
//!
//! `SHOAL_CRASH_SEED` replays a run (the seed is printed); `SHOAL_CRASH_CYCLES` changes the
//! number of cycles (default 50).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use shoal_tests::{describe_error, must_create_hash_table};

use crate::support::{CrashRun, Numbers, Rng, n, numbers, s, start_node};

const TABLE: &str = "crash";
const WRITERS: usize = 8;
const KEYS_PER_WRITER: usize = 6;
const DEFAULT_CYCLES: u64 = 50;

/// One write, with everything needed to compute its effect.
#[derive(Debug, Clone)]
enum Op {
    /// PutItem `{pk, ver}`.
    Put { ver: u64 },
    /// UpdateItem `ADD cnt :one SET ver = :ver` (an upsert when absent).
    Add { ver: u64 },
    /// DeleteItem.
    Delete,
    /// PutItem `{pk, ver}` if `ver = :expected` (`None`: if the item does not exist).
    PutIf { expected: Option<u64>, ver: u64 },
}

/// A key's state: `None` = absent, else its numeric attributes.
type State = Option<Numbers>;

fn ver_of(state: &State) -> Option<u64> {
    state
        .as_ref()
        .and_then(|m| m.get("ver"))
        .map(|v| v.parse().expect("ver is an integer"))
}

impl Op {
    /// The state after this op on `state`, and whether its condition held.
    fn apply(&self, state: &State) -> (State, bool) {
        match self {
            Op::Put { ver } => (Some(Numbers::from([("ver".into(), ver.to_string())])), true),
            Op::Add { ver } => {
                let mut m = state.clone().unwrap_or_default();
                let cnt: u64 = m.get("cnt").map_or(0, |c| c.parse().expect("cnt"));
                m.insert("cnt".into(), (cnt + 1).to_string());
                m.insert("ver".into(), ver.to_string());
                (Some(m), true)
            }
            Op::Delete => (None, true),
            Op::PutIf { expected, ver } => {
                let holds = match expected {
                    None => state.is_none(),
                    Some(e) => ver_of(state) == Some(*e),
                };
                if holds {
                    (Some(Numbers::from([("ver".into(), ver.to_string())])), true)
                } else {
                    (state.clone(), false)
                }
            }
        }
    }
}

/// What a writer knows about one of its keys.
#[derive(Debug, Clone, Default)]
struct KeyLog {
    /// The state after the last acknowledged request (exact: one writer per key).
    state: State,
    /// The request cut off by the kill, if any.
    in_flight: Option<Op>,
    /// The acknowledged requests of this cycle, for failure messages.
    acked: Vec<Op>,
}

/// How a request ended.
enum Outcome {
    /// The server answered: `true` = applied, `false` = ConditionalCheckFailed.
    Answered(bool),
    /// No answer (connection reset by the kill, ...): unknown whether it landed.
    Unknown,
}

fn key_name(writer: usize, i: usize) -> String {
    format!("w{writer}-k{i}")
}

async fn send(client: &Client, key: &str, op: &Op) -> Outcome {
    fn outcome<T, E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
        r: Result<T, SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
        what: &str,
    ) -> Outcome {
        match r {
            Ok(_) => Outcome::Answered(true),
            Err(SdkError::ServiceError(e))
                if e.err().code() == Some("ConditionalCheckFailedException") =>
            {
                Outcome::Answered(false)
            }
            Err(e @ SdkError::ServiceError(_)) => {
                panic!(
                    "{what}: the node answered an error during the workload: {}",
                    describe_error(&e)
                )
            }
            Err(_) => Outcome::Unknown,
        }
    }
    match op {
        Op::Put { ver } => outcome(
            client
                .put_item()
                .table_name(TABLE)
                .item("pk", s(key))
                .item("ver", n(ver))
                .send()
                .await,
            "PutItem",
        ),
        Op::Add { ver } => outcome(
            client
                .update_item()
                .table_name(TABLE)
                .key("pk", s(key))
                .update_expression("ADD cnt :one SET ver = :ver")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":ver", n(ver))
                .send()
                .await,
            "UpdateItem",
        ),
        Op::Delete => outcome(
            client
                .delete_item()
                .table_name(TABLE)
                .key("pk", s(key))
                .send()
                .await,
            "DeleteItem",
        ),
        Op::PutIf { expected, ver } => {
            let req = client
                .put_item()
                .table_name(TABLE)
                .item("pk", s(key))
                .item("ver", n(ver));
            let req = match expected {
                None => req.condition_expression("attribute_not_exists(pk)"),
                Some(e) => req
                    .condition_expression("ver = :e")
                    .expression_attribute_values(":e", n(e)),
            };
            outcome(req.send().await, "conditional PutItem")
        }
    }
}

/// One writer: random requests on its own keys, one at a time, until the node dies.
async fn writer(
    client: Client,
    id: usize,
    mut logs: Vec<KeyLog>,
    mut rng: Rng,
    next_ver: u64,
) -> (Vec<KeyLog>, u64) {
    let mut ver = next_ver;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "writer {id} still running 20 s after start: the kill did not stop the node"
        );
        let k = rng.range(0, KEYS_PER_WRITER as u64) as usize;
        ver += 1;
        let log = &mut logs[k];
        let op = match rng.range(0, 10) {
            0..=2 => Op::Put { ver },
            3..=5 => Op::Add { ver },
            6 => Op::Delete,
            7 | 8 => Op::PutIf {
                // The current version: holds (or "absent" when absent).
                expected: ver_of(&log.state),
                ver,
            },
            _ => Op::PutIf {
                // A version the key never had: fails, unless the item is absent and the
                // condition is attribute_not_exists.
                expected: if rng.range(0, 2) == 0 {
                    None
                } else {
                    Some(u64::MAX / 2)
                },
                ver,
            },
        };
        log.in_flight = Some(op.clone());
        match send(&client, &key_name(id, k), &op).await {
            Outcome::Answered(applied) => {
                let (next, holds) = op.apply(&log.state);
                assert_eq!(
                    applied,
                    holds,
                    "key {}: {op:?} on state {:?} was {} by the node but the model says {}",
                    key_name(id, k),
                    log.state,
                    if applied { "applied" } else { "rejected" },
                    if holds { "it holds" } else { "it fails" },
                );
                log.state = next;
                log.in_flight = None;
                log.acked.push(op);
            }
            Outcome::Unknown => return (logs, ver),
        }
    }
}

/// Every key's state on the node: point reads, then a full Scan that must agree.
async fn read_all(client: &Client, keys: &[String]) -> BTreeMap<String, State> {
    let mut got = BTreeMap::new();
    for key in keys {
        let r = client
            .get_item()
            .table_name(TABLE)
            .key("pk", s(key))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetItem {key} after restart: {}", describe_error(&e)));
        got.insert(key.clone(), r.item().map(numbers));
    }
    let mut scanned: BTreeMap<String, State> = BTreeMap::new();
    let mut start = None;
    loop {
        let r = client
            .scan()
            .table_name(TABLE)
            .limit(7)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Scan after restart: {}", describe_error(&e)));
        for item in r.items() {
            let pk = match item.get("pk") {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) => pk.clone(),
                other => panic!("scanned item without a string pk: {other:?}"),
            };
            assert!(
                scanned.insert(pk.clone(), Some(numbers(item))).is_none(),
                "Scan returned {pk} twice"
            );
        }
        start = r.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    for (key, state) in &got {
        let in_scan = scanned.remove(key).unwrap_or(None);
        assert_eq!(
            &in_scan, state,
            "key {key}: Scan and GetItem disagree after restart"
        );
    }
    assert!(
        scanned.is_empty(),
        "Scan returned keys nobody wrote: {:?}",
        scanned.keys().collect::<Vec<_>>()
    );
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_repeated_sigkill_under_concurrent_load() {
    let CrashRun {
        seed,
        cycles,
        mut rng,
        dir: _dir,
        data,
    } = CrashRun::new("crash test", "SHOAL_CRASH_CYCLES", DEFAULT_CYCLES);
    let started = Instant::now();

    let mut node = start_node(&data).await;
    must_create_hash_table(&node.client(), TABLE).await;

    let keys: Vec<String> = (0..WRITERS)
        .flat_map(|w| (0..KEYS_PER_WRITER).map(move |k| key_name(w, k)))
        .collect();
    // Per writer: its keys' logs; versions are unique across the whole run.
    let mut logs: Vec<Vec<KeyLog>> = vec![vec![KeyLog::default(); KEYS_PER_WRITER]; WRITERS];
    let mut next_ver = 0u64;
    let (mut acked_total, mut in_flight_total, mut in_flight_landed) = (0usize, 0usize, 0usize);

    for cycle in 0..cycles {
        // The node runs: started above, or restarted and verified by the previous cycle.
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
            let wrng = Rng::new(rng.next_u64());
            // Each writer gets its own block of versions.
            let base = next_ver + (w as u64) * 1_000_000;
            tasks.push(tokio::spawn(writer(client.clone(), w, fresh, wrng, base)));
        }
        next_ver += (WRITERS as u64) * 1_000_000;
        tokio::time::sleep(delay).await;
        node.kill();
        for (w, task) in tasks.into_iter().enumerate() {
            let (writer_logs, _) = task.await.expect("writer task panicked");
            logs[w] = writer_logs;
        }

        node.start_again().await;
        let client = node.client();
        let got = read_all(&client, &keys).await;
        for (w, writer_logs) in logs.iter_mut().enumerate() {
            for (k, log) in writer_logs.iter_mut().enumerate() {
                let key = key_name(w, k);
                let actual = got.get(&key).cloned().unwrap_or(None);
                let mut allowed = vec![log.state.clone()];
                if let Some(op) = &log.in_flight {
                    allowed.push(op.apply(&log.state).0);
                }
                assert!(
                    allowed.contains(&actual),
                    "cycle {cycle} (seed {seed}), key {key}: read {actual:?} after SIGKILL and \
                     restart; expected one of {allowed:?} (last acknowledged state first; \
                     in-flight request {:?}; requests acknowledged this cycle: {:?})",
                    log.in_flight,
                    log.acked,
                );
                acked_total += log.acked.len();
                if log.in_flight.is_some() {
                    in_flight_total += 1;
                    if actual != log.state {
                        in_flight_landed += 1;
                    }
                }
                // The node's state is the truth from here on.
                log.state = actual;
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "crash test: {cycles} cycles in {elapsed:.1?}: {acked_total} acknowledged writes \
         verified, {in_flight_total} cut off by the kill ({in_flight_landed} of them had landed)"
    );
    assert!(
        acked_total as u64 >= cycles * 5,
        "only {acked_total} writes were acknowledged in {cycles} cycles: the workload did not run"
    );
}

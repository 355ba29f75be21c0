//! Linearizability of single-item operations on a 3-node cluster while nodes are killed with
//! SIGKILL and restarted.
//!
//! Eight SDK clients (retries disabled, so every recorded operation is exactly one request),
//! each bound to one node, run ConsistentRead GetItem, PutItem, DeleteItem and conditional
//! PutItem (`attribute_not_exists(v)` or `v = :expected`) on five keys and record every
//! operation with `shoal_lincheck::Recorder`. Meanwhile a nemesis kills a node (the table's
//! leader, the metadata leader, or a follower, in turn), waits, restarts it and waits for its
//! health, four times. The history is then checked with `shoal_lincheck::check`.
//!
//! A client whose node is known to be down skips its turn (the request surely was not sent);
//! any other failure except ConditionalCheckFailedException is recorded as an unknown outcome.
//!
//! `cargo test -p shoal-cluster --test linearizability -- --nocapture` prints the counts.
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use shoal_cluster::Cluster;
use shoal_lincheck::{CheckResult, Event, Op, Recorder, Ret, check};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TABLE: &str = "lin";
const KEYS: usize = 5;
const CLIENTS: usize = 8;
/// How long the clients run.
const RUN: Duration = Duration::from_secs(36);
/// Kill/restart rounds of the nemesis.
const ROUNDS: usize = 4;

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

fn key_name(k: usize) -> String {
    format!("k{k}")
}

fn key_attr(k: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), AttributeValue::S(k.to_string()))])
}

/// What became of one request.
enum Outcome {
    Done(Ret),
    /// Failed; the outcome is unknown. Carries the error's code or description.
    Unknown(String),
}

fn classify<E, R>(e: &SdkError<E, R>) -> Outcome
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(se) = e
        && se.err().code() == Some("ConditionalCheckFailedException")
    {
        return Outcome::Done(Ret::CondFailed);
    }
    let what = match e {
        SdkError::ServiceError(se) => se.err().code().unwrap_or("service error").to_string(),
        SdkError::TimeoutError(_) => "timeout".to_string(),
        SdkError::DispatchFailure(_) => "dispatch failure".to_string(),
        SdkError::ResponseError(_) => "response error".to_string(),
        other => DisplayErrorContext(other).to_string(),
    };
    Outcome::Unknown(what)
}

async fn run_op(client: &Client, key: &str, op: &Op) -> Outcome {
    match op {
        Op::Read => match client
            .get_item()
            .table_name(TABLE)
            .set_key(Some(key_attr(key)))
            .consistent_read(true)
            .send()
            .await
        {
            Ok(out) => {
                let v = out
                    .item
                    .and_then(|it| it.get("v").and_then(|v| v.as_s().ok().cloned()));
                Outcome::Done(Ret::Read(v))
            }
            Err(e) => classify(&e),
        },
        Op::Write(Some(value)) => {
            let mut item = key_attr(key);
            item.insert("v".into(), AttributeValue::S(value.clone()));
            match client
                .put_item()
                .table_name(TABLE)
                .set_item(Some(item))
                .send()
                .await
            {
                Ok(_) => Outcome::Done(Ret::Ok),
                Err(e) => classify(&e),
            }
        }
        Op::Write(None) => match client
            .delete_item()
            .table_name(TABLE)
            .set_key(Some(key_attr(key)))
            .send()
            .await
        {
            Ok(_) => Outcome::Done(Ret::Ok),
            Err(e) => classify(&e),
        },
        Op::CondWrite { expect, value } => {
            let mut item = key_attr(key);
            item.insert(
                "v".into(),
                AttributeValue::S(value.clone().expect("conditional puts write a value")),
            );
            let req = client.put_item().table_name(TABLE).set_item(Some(item));
            let req = match expect {
                None => req.condition_expression("attribute_not_exists(v)"),
                Some(e) => req
                    .condition_expression("v = :expected")
                    .expression_attribute_values(":expected", AttributeValue::S(e.clone())),
            };
            match req.send().await {
                Ok(_) => Outcome::Done(Ret::Ok),
                Err(e) => classify(&e),
            }
        }
    }
}

/// Per-client tallies.
#[derive(Default)]
struct Tally {
    ops: u64,
    skipped: u64,
    unknown: u64,
    errors: BTreeMap<String, u64>,
}

/// One client: bound to node `node` (1-based), runs until `stop`.
async fn client_loop(
    id: u64,
    node: usize,
    client: Client,
    rec: Recorder,
    down: Arc<[AtomicBool; 3]>,
    stop: Arc<AtomicBool>,
    seq: Arc<AtomicU64>,
) -> Tally {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15 ^ (id * 7919 + 17));
    let mut tally = Tally::default();
    // The last value this client saw per key, to make `v = :expected` conditions that can hold.
    let mut seen: HashMap<String, Option<String>> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        if down[node - 1].load(Ordering::SeqCst) {
            tally.skipped += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let key = key_name(rng.below(KEYS as u64) as usize);
        let fresh = || format!("c{id}-{}", seq.fetch_add(1, Ordering::Relaxed));
        let op = match rng.below(100) {
            0..40 => Op::Read,
            40..65 => Op::Write(Some(fresh())),
            65..75 => Op::Write(None),
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
        let token = rec.begin(id, &key, op.clone());
        let outcome = run_op(&client, &key, &op).await;
        tally.ops += 1;
        match outcome {
            Outcome::Done(ret) => {
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
            Outcome::Unknown(what) => {
                rec.end(token, Ret::Unknown);
                tally.unknown += 1;
                *tally.errors.entry(what).or_default() += 1;
                // Back off: during an election every request fails, and every unknown write
                // stays pending forever in the checker's search.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    tally
}

/// The node to kill in round `round`: the table's leader, the metadata leader, or a follower
/// (a node that leads neither), in turn.
async fn pick_victim(c: &mut Cluster, round: usize, rng: &mut Rng) -> (usize, &'static str) {
    let table_leader = c.leader_of(TABLE).await;
    let meta_leader = c.meta_leader().await;
    match round % 3 {
        0 if table_leader.is_some() => (table_leader.unwrap(), "table leader"),
        1 if meta_leader.is_some() => (meta_leader.unwrap(), "metadata leader"),
        _ => {
            let followers: Vec<usize> = (1..=3)
                .filter(|&i| Some(i) != table_leader && Some(i) != meta_leader)
                .collect();
            if followers.is_empty() {
                (1 + rng.below(3) as usize, "random node")
            } else {
                (
                    followers[rng.below(followers.len() as u64) as usize],
                    "follower",
                )
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_item_operations_are_linearizable_while_nodes_are_killed() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::start(3).await;
    c.create_hash_table(1, TABLE).await;

    let rec = Recorder::new();
    let down: Arc<[AtomicBool; 3]> = Arc::new([
        AtomicBool::new(false),
        AtomicBool::new(false),
        AtomicBool::new(false),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for id in 0..CLIENTS as u64 {
        let node = 1 + (id as usize) % 3;
        clients.push(tokio::spawn(client_loop(
            id,
            node,
            c.client_with_timeout(node, Duration::from_secs(5)),
            rec.clone(),
            down.clone(),
            stop.clone(),
            seq.clone(),
        )));
    }

    let started = Instant::now();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    println!("nemesis seed {seed}");
    let mut rng = Rng::new(seed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    for round in 0..ROUNDS {
        let (victim, role) = pick_victim(&mut c, round, &mut rng).await;
        down[victim - 1].store(true, Ordering::SeqCst);
        c.kill(victim);
        let at = started.elapsed();
        let pause = Duration::from_millis(2000 + rng.below(2000));
        tokio::time::sleep(pause).await;
        c.restart(victim).await;
        down[victim - 1].store(false, Ordering::SeqCst);
        println!(
            "round {round}: killed node {victim} ({role}) at +{at:.1?}, down {pause:?}, healthy again at +{:.1?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(2500 + rng.below(1500))).await;
    }
    let rest = RUN.saturating_sub(started.elapsed());
    tokio::time::sleep(rest).await;
    stop.store(true, Ordering::SeqCst);
    let mut total = Tally::default();
    for h in clients {
        let t = h.await.expect("client task");
        total.ops += t.ops;
        total.skipped += t.skipped;
        total.unknown += t.unknown;
        for (k, n) in t.errors {
            *total.errors.entry(k).or_default() += n;
        }
    }
    let ran = started.elapsed();

    let history = rec.history();
    let count = |f: &dyn Fn(&Event) -> bool| history.iter().filter(|e| f(e)).count();
    let reads = count(&|e| e.op == Op::Read);
    let reads_ok = count(&|e| matches!(e.ret, Ret::Read(_)));
    let writes = count(&|e| matches!(e.op, Op::Write(_)));
    let conds = count(&|e| matches!(e.op, Op::CondWrite { .. }));
    let cond_failed = count(&|e| e.ret == Ret::CondFailed);
    let unknown_writes = count(&|e| e.op != Op::Read && e.ret == Ret::Unknown);
    println!(
        "{} ops in {ran:.1?} by {CLIENTS} clients on {KEYS} keys: {reads} reads ({reads_ok} answered), \
         {writes} puts/deletes, {conds} conditional puts ({cond_failed} condition failed); \
         {} unknown outcomes ({unknown_writes} of them writes); {} turns skipped while the node was down; \
         errors {:?}",
        history.len(),
        total.unknown,
        total.skipped,
        total.errors
    );
    assert_eq!(history.len() as u64, total.ops);
    assert!(
        reads_ok > 100 && cond_failed > 0 && history.len() > 500,
        "too little happened for the check to mean anything"
    );

    let t = Instant::now();
    let verdict = check(&history);
    println!("linearizability check: {verdict:?} in {:?}", t.elapsed());
    if verdict != CheckResult::Ok {
        c.fail(&format!("history is not linearizable: {verdict:?}"));
    }

    // The checker must be able to say no on this very history: alter one answered read to a
    // value that was never written and expect a violation on its key.
    let mut corrupted = history.clone();
    let victim = corrupted
        .iter_mut()
        .rev()
        .find(|e| matches!(e.ret, Ret::Read(_)))
        .expect("an answered read");
    victim.ret = Ret::Read(Some("never-written-value".to_string()));
    let key = victim.key.clone();
    match check(&corrupted) {
        CheckResult::Violation { key: k, .. } => assert_eq!(k, key),
        other => panic!("a corrupted history was not rejected: {other:?}"),
    }
}

/// The checker rejects the classic stale read a broken fail-over would produce: a write
/// acknowledged before a read starts, and the read returning the older value.
#[test]
fn a_stale_read_after_an_acknowledged_write_is_rejected() {
    let ev = |client, op, ret, call, ret_at| Event {
        client,
        key: "k0".into(),
        op,
        ret,
        call,
        ret_at,
    };
    let ok = vec![
        ev(1, Op::Write(Some("a".into())), Ret::Ok, 0, 10),
        ev(2, Op::Write(Some("b".into())), Ret::Ok, 20, 30),
        ev(3, Op::Read, Ret::Read(Some("b".into())), 40, 50),
        ev(
            1,
            Op::CondWrite {
                expect: Some("a".into()),
                value: Some("c".into()),
            },
            Ret::CondFailed,
            60,
            70,
        ),
        ev(2, Op::Write(Some("d".into())), Ret::Unknown, 80, u64::MAX),
    ];
    assert_eq!(check(&ok), CheckResult::Ok);
    let mut stale = ok.clone();
    stale[2].ret = Ret::Read(Some("a".into()));
    assert!(matches!(check(&stale), CheckResult::Violation { .. }));
    let mut lost = ok;
    lost.push(ev(3, Op::Read, Ret::Read(None), 90, 100));
    assert!(matches!(check(&lost), CheckResult::Violation { .. }));
}

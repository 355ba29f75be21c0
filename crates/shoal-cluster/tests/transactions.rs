//! Transactions on 3 real nodes, across partitions that split while they run, through
//! `kill -9`: a bank.
//!
//! Accounts are spread over several partitions (a small split size, and a filler load that keeps
//! splitting them). Transfer workers move money with TransactWriteItems: a conditional debit
//! (`balance >= :amount`) and a credit, each adding the transfer's id to the account's `txs`
//! set. Readers take TransactGetItems snapshots of every account. A nemesis kills nodes with
//! SIGKILL and restarts them. Then:
//! - every snapshot a reader got sums to the starting total (serializable reads);
//! - every acknowledged transfer is in both of its accounts' sets, and a transfer is in one
//!   account's set exactly when it is in the other's (all or nothing);
//! - each account's balance is its start plus the transfers its set records (each applied
//!   exactly once: a second application would move money without a new set member);
//! - no item stays locked: after recovery every account takes a single write;
//! - a transfer retried with its `ClientRequestToken` after the node that received it was
//!   killed mid-request is applied exactly once.
//!
//! `cargo test -p shoal-cluster --test transactions -- --nocapture` prints the counts.
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{AttributeValue, Get, TransactGetItem, TransactWriteItem, Update};
use shoal_cluster::load::s;
use shoal_cluster::{Cluster, sdk_client, sdk_client_with_retries};

const TABLE: &str = "bank";
const NODES: usize = 3;
const ACCOUNTS: usize = 30;
const START: i64 = 1_000;
const WORKERS: usize = 3;
const ROUNDS: usize = 3;

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn account(i: usize) -> String {
    format!("acct-{i:03}")
}

/// One leg of a transfer: `balance += delta` and the id into `txs`, with the balance condition
/// on the debit.
fn leg(acct: &str, delta: i64, id: &str) -> TransactWriteItem {
    let mut u = Update::builder()
        .table_name(TABLE)
        .key("pk", s(acct))
        .update_expression("ADD balance :d, txs :id")
        .expression_attribute_values(":d", n(delta))
        .expression_attribute_values(":id", AttributeValue::Ss(vec![id.to_string()]));
    if delta < 0 {
        u = u
            .condition_expression("balance >= :need")
            .expression_attribute_values(":need", n(-delta));
    }
    TransactWriteItem::builder()
        .update(u.build().unwrap())
        .build()
}

/// A transfer: its id, accounts and amount.
#[derive(Clone, Debug)]
struct Transfer {
    id: String,
    from: String,
    to: String,
    amount: i64,
}

async fn send(client: &Client, t: &Transfer) -> Result<(), String> {
    client
        .transact_write_items()
        .transact_items(leg(&t.from, -t.amount, &t.id))
        .transact_items(leg(&t.to, t.amount, &t.id))
        .client_request_token(t.id.clone())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            let code = e.code().unwrap_or("").to_string();
            if code.is_empty() {
                format!("{}", DisplayErrorContext(&e))
            } else {
                code
            }
        })
}

/// Transfers until `stop`; returns the acknowledged ones and how many failed otherwise
/// (canceled, or an unknown outcome while a node was down).
async fn worker(
    clients: Vec<Client>,
    w: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<Transfer>, BTreeMap<String, usize>) {
    let mut acked = Vec::new();
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    let mut i = 0usize;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let from = (i * 7 + w * 13) % ACCOUNTS;
        let to = (from + 1 + (i * 11 + w) % (ACCOUNTS - 1)) % ACCOUNTS;
        let t = Transfer {
            id: format!("t{w}-{i}"),
            from: account(from),
            to: account(to),
            amount: 1 + ((i * 31 + w) % 300) as i64,
        };
        match send(&clients[(i + w) % clients.len()], &t).await {
            Ok(()) => {
                acked.push(t);
                // An application's pace, not a hammer on the same 30 items.
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            Err(code) => {
                *failed.entry(code).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    (acked, failed)
}

/// The accounts' balances in one TransactGetItems snapshot, or the error code.
async fn snapshot(client: &Client) -> Result<Vec<i64>, String> {
    let mut req = client.transact_get_items();
    for i in 0..ACCOUNTS {
        req = req.transact_items(
            TransactGetItem::builder()
                .get(
                    Get::builder()
                        .table_name(TABLE)
                        .key("pk", s(account(i)))
                        .build()
                        .unwrap(),
                )
                .build(),
        );
    }
    let out = req.send().await.map_err(|e| {
        format!(
            "{}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or_default()
        )
    })?;
    Ok(out
        .responses()
        .iter()
        .map(|r| match r.item().and_then(|i| i.get("balance")) {
            Some(AttributeValue::N(v)) => v.parse().unwrap(),
            _ => panic!("an account is missing from a snapshot: {r:?}"),
        })
        .collect())
}

/// Snapshots a reader took: while transfers ran, after they stopped, and failed attempts.
#[derive(Default)]
struct Snapshots {
    during: usize,
    after: usize,
    failed: usize,
}

/// Reads snapshots while transfers run (until `stop`), then until it has `AFTER_STOP` more
/// (or 30 s pass). TransactGetItems legitimately fails with `TransactionConflict` while a
/// transfer holds one of its items, so how many succeed under load depends on the machine's
/// speed; the ones taken once transfers stop make sure every run checks some snapshots.
async fn reader(clients: Vec<Client>, stop: Arc<AtomicBool>) -> Snapshots {
    const AFTER_STOP: usize = 3;
    let mut n = Snapshots::default();
    let mut i = 0;
    let mut deadline = None;
    loop {
        if stop.load(Ordering::SeqCst) {
            let d = *deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(30));
            if n.after >= AFTER_STOP || Instant::now() > d {
                break;
            }
        }
        let during = deadline.is_none();
        i += 1;
        match snapshot(&clients[i % clients.len()]).await {
            Ok(balances) => {
                let sum: i64 = balances.iter().sum();
                assert_eq!(
                    sum,
                    START * ACCOUNTS as i64,
                    "a TransactGetItems snapshot broke the invariant: {balances:?}"
                );
                assert!(balances.iter().all(|b| *b >= 0), "{balances:?}");
                if during {
                    n.during += 1;
                } else {
                    n.after += 1;
                }
            }
            Err(e) => {
                if n.failed < 3 {
                    println!("snapshot failed: {e}");
                }
                n.failed += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    n
}

/// Small items that keep the table splitting while transfers run.
async fn filler(client: Client, stop: Arc<AtomicBool>) -> usize {
    let pad = "f".repeat(2000);
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let _ = client
            .put_item()
            .table_name(TABLE)
            .item("pk", s(format!("fill-{i}")))
            .item("pad", s(pad.clone()))
            .send()
            .await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    i
}

/// Every account as a consistent read: (balance, txs).
async fn accounts(client: &Client) -> Vec<(i64, BTreeSet<String>)> {
    let mut out = Vec::new();
    for i in 0..ACCOUNTS {
        let item = client
            .get_item()
            .table_name(TABLE)
            .key("pk", s(account(i)))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("read {}: {}", account(i), DisplayErrorContext(&e)))
            .item
            .unwrap_or_else(|| panic!("{} is gone", account(i)));
        let balance = match item.get("balance") {
            Some(AttributeValue::N(v)) => v.parse().unwrap(),
            other => panic!("balance {other:?}"),
        };
        let txs = match item.get("txs") {
            Some(AttributeValue::Ss(v)) => v.iter().cloned().collect(),
            _ => BTreeSet::new(),
        };
        out.push((balance, txs));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_keep_the_total_through_splits_and_kill_minus_9() {
    let mut c = Cluster::start_with_env(NODES, &[("SHOAL_SPLIT_SIZE_BYTES", "131072")]).await;
    c.create_hash_table(1, TABLE).await;
    let started = Instant::now();
    let setup = sdk_client_with_retries(&c.api_url(1), Duration::from_secs(20));
    // Padded accounts: the table splits into several partitions before the transfers start.
    let pad = "p".repeat(6000);
    for i in 0..ACCOUNTS {
        setup
            .put_item()
            .table_name(TABLE)
            .item("pk", s(account(i)))
            .item("balance", n(START))
            .item("pad", s(pad.clone()))
            .send()
            .await
            .unwrap();
    }
    let clients: Vec<Client> = (1..=NODES)
        .map(|i| sdk_client_with_retries(&c.api_url(i), Duration::from_secs(20)))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(worker(clients.clone(), w, Arc::clone(&stop))))
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| tokio::spawn(reader(clients.clone(), Arc::clone(&stop))))
        .collect();
    let fill = tokio::spawn(filler(clients[1].clone(), Arc::clone(&stop)));

    let mut victim = 1;
    for round in 0..ROUNDS {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        if round == 0 {
            victim = c.leader_of(TABLE).await.unwrap_or(1);
        } else {
            victim = victim % NODES + 1;
        }
        println!(
            "+{:.1}s: round {round}: kill -9 node {victim}",
            started.elapsed().as_secs_f64()
        );
        c.kill(victim);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        c.restart(victim).await;
        c.wait_healthy(victim).await;
    }
    // A calm phase: transfers and snapshots go on while recovery clears what the killed
    // coordinators left.
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    for w in workers {
        let (ok, f) = w.await.expect("worker");
        acked.extend(ok);
        for (k, v) in f {
            *failed.entry(k).or_default() += v;
        }
    }
    let mut snaps = Snapshots::default();
    for r in readers {
        let n = r.await.expect("reader");
        snaps.during += n.during;
        snaps.after += n.after;
        snaps.failed += n.failed;
    }
    let filled = fill.await.expect("filler");
    let status = c.status(1).await;
    let partitions = shoal_cluster::load::partition_groups(&status)
        .iter()
        .filter(|(t, _, _)| t == TABLE)
        .count();
    println!(
        "+{:.1}s: {} transfers acknowledged; snapshots: {} during transfers, {} after, {} \
         failed; {filled} filler puts; {partitions} partitions; failed transfers: {failed:?}",
        started.elapsed().as_secs_f64(),
        acked.len(),
        snaps.during,
        snaps.after,
        snaps.failed
    );
    assert!(
        acked.len() >= 50,
        "too few transfers went through: {}",
        acked.len()
    );
    assert!(
        snaps.during >= 1,
        "no snapshot succeeded while transfers ran ({} failed)",
        snaps.failed
    );
    assert!(
        snaps.after >= 2,
        "too few snapshots succeeded after transfers stopped: {}",
        snaps.after
    );
    assert!(
        partitions >= 2,
        "the table did not split: {partitions} partitions"
    );

    // Recovery resolves what the killed coordinators left (locks older than 2 s).
    tokio::time::sleep(Duration::from_secs(4)).await;
    check_bank(&c, &acked).await;

    // No item stays locked: each account takes a single write.
    let plain = sdk_client(&c.api_url(2), Duration::from_secs(20));
    for i in 0..ACCOUNTS {
        plain
            .update_item()
            .table_name(TABLE)
            .key("pk", s(account(i)))
            .update_expression("ADD touched :one")
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} still locked? {}", account(i), DisplayErrorContext(&e)));
    }

    // A transfer whose receiving node is killed mid-request, retried with its token elsewhere.
    let retried = retry_after_kill(&mut c).await;
    check_bank(&c, &[acked, vec![retried]].concat()).await;
    // Requests refused while a node was down are expected (their outcome was unknown and the
    // checks above account for them); an internal error is a bug.
    let errors: Vec<String> = c
        .server_errors()
        .into_iter()
        .filter(|l| l.contains("internal error"))
        .collect();
    assert!(errors.is_empty(), "internal errors: {errors:?}");
}

/// The bank's invariants over every account, read through each node.
async fn check_bank(c: &Cluster, acked: &[Transfer]) {
    for node in 1..=NODES {
        let client = sdk_client(&c.api_url(node), Duration::from_secs(20));
        let accts = accounts(&client).await;
        let total: i64 = accts.iter().map(|(b, _)| b).sum();
        assert_eq!(
            total,
            START * ACCOUNTS as i64,
            "node {node}: the total changed"
        );
        let holders: BTreeMap<&str, Vec<usize>> =
            accts
                .iter()
                .enumerate()
                .fold(BTreeMap::new(), |mut m, (i, (_, txs))| {
                    for t in txs {
                        m.entry(t.as_str()).or_default().push(i);
                    }
                    m
                });
        for (id, who) in &holders {
            assert_eq!(
                who.len(),
                2,
                "node {node}: transfer {id} is in {} account(s): not all or nothing",
                who.len()
            );
        }
        for t in acked {
            let who = holders
                .get(t.id.as_str())
                .unwrap_or_else(|| panic!("node {node}: acknowledged transfer {} is lost", t.id));
            let names: Vec<String> = who.iter().map(|i| account(*i)).collect();
            assert!(
                names.contains(&t.from) && names.contains(&t.to),
                "{t:?} applied to {names:?}"
            );
        }
        // Balances match the recorded transfers, each applied once. Amounts of transfers
        // that were not acknowledged are recovered from the ids (worker, sequence).
        let amount = |id: &str| -> i64 {
            let (w, i) = id[1..].split_once('-').unwrap();
            let (w, i): (usize, usize) = (w.parse().unwrap(), i.parse().unwrap());
            1 + ((i * 31 + w) % 300) as i64
        };
        let direction = |id: &str| -> (usize, usize) {
            let (w, i) = id[1..].split_once('-').unwrap();
            let (w, i): (usize, usize) = (w.parse().unwrap(), i.parse().unwrap());
            let from = (i * 7 + w * 13) % ACCOUNTS;
            let to = (from + 1 + (i * 11 + w) % (ACCOUNTS - 1)) % ACCOUNTS;
            (from, to)
        };
        for (i, (balance, txs)) in accts.iter().enumerate() {
            let expected: i64 = START
                + txs
                    .iter()
                    .map(|id| {
                        let (from, to) = direction(id);
                        if from == i {
                            -amount(id)
                        } else {
                            assert_eq!(to, i, "{id} recorded on a third account");
                            amount(id)
                        }
                    })
                    .sum::<i64>();
            assert_eq!(
                *balance,
                expected,
                "node {node}: {} has {balance}, its {} transfers make {expected}",
                account(i),
                txs.len()
            );
        }
    }
}

/// Sends a transfer to a node and kills it mid-request, then retries the same request with the
/// same token through another node until it is answered. Returns the transfer.
async fn retry_after_kill(c: &mut Cluster) -> Transfer {
    // Worker number 9 is never used by the workers; the id encodes the accounts and amount as
    // theirs do.
    let (w, i) = (9usize, 1usize);
    let from = (i * 7 + w * 13) % ACCOUNTS;
    let to = (from + 1 + (i * 11 + w) % (ACCOUNTS - 1)) % ACCOUNTS;
    let t = Transfer {
        id: format!("t{w}-{i}"),
        from: account(from),
        to: account(to),
        amount: 1 + ((i * 31 + w) % 300) as i64,
    };
    let victim = 3;
    let doomed = sdk_client(&c.api_url(victim), Duration::from_secs(5));
    let first = {
        let t = t.clone();
        tokio::spawn(async move { send(&doomed, &t).await })
    };
    tokio::time::sleep(Duration::from_millis(3)).await;
    c.kill(victim);
    let first = first.await.expect("first attempt");
    let other = sdk_client(&c.api_url(1), Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match send(&other, &t).await {
            Ok(()) => break,
            Err(code) if Instant::now() < deadline => {
                println!("retry {attempts}: {code}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(code) => panic!("the retried transfer never went through: {code}"),
        }
    }
    println!(
        "transfer {} sent to node {victim} (killed mid-request: {first:?}), answered after \
         {attempts} attempt(s) through node 1",
        t.id
    );
    c.restart(victim).await;
    c.wait_healthy(victim).await;
    // Once more with the same token: answered, nothing written again (check_bank counts it).
    send(&other, &t).await.expect("replay with the same token");
    t
}

//! The unavailability window per partition when a node that leads tables is killed with
//! SIGKILL, over several rounds, and that no acknowledged write is lost.
//!
//! Three nodes, three tables (their leaders land wherever the cluster puts them). Each round
//! kills a node that leads at least one table (rotating over the nodes), then one writer per
//! table writes new items through the surviving nodes (alternating, 1 s SDK timeout, no
//! retries) until one succeeds: the time from the kill to that success is the table's window.
//! The node is restarted and must catch up (lag 0 in every group's leader's `/status`) before
//! the next round. At the end every acknowledged item is read back with ConsistentRead through
//! every node.
//!
//! `cargo test -p shoal-cluster --test failover -- --nocapture` prints every window.
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use shoal_cluster::Cluster;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TABLES: [&str; 3] = ["fo0", "fo1", "fo2"];
const ROUNDS: usize = 5;
/// Issue #7's targets for the unavailability window of a partition.
const MAX_WINDOW: Duration = Duration::from_secs(8);
const P50_WINDOW: Duration = Duration::from_secs(3);
/// A writer gives up (and the test fails) after this long without a successful write.
const GIVE_UP: Duration = Duration::from_secs(30);
/// Acknowledged writes per table per round after the first one (availability must last).
const MORE_WRITES: usize = 4;

type Item = HashMap<String, AttributeValue>;

fn item(key: &str) -> Item {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(key.to_string())),
        (
            "v".to_string(),
            AttributeValue::S(format!("value of {key}")),
        ),
    ])
}

async fn put(client: &Client, table: &str, key: &str) -> Result<(), String> {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item(key)))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| DisplayErrorContext(&e).to_string())
}

/// What one table's writer saw in one round.
struct Round {
    window: Duration,
    attempts: usize,
    last_error: Option<String>,
    acked: Vec<String>,
}

/// Writes new items to `table` through `clients` in turn until one succeeds (its time since
/// `killed_at` is the window), then `MORE_WRITES` more that must all succeed.
async fn measure(
    table: &'static str,
    round: usize,
    clients: Vec<(usize, Client)>,
    killed_at: Instant,
) -> Result<Round, String> {
    let mut attempts = 0;
    let mut last_error = None;
    let mut acked = Vec::new();
    let window = loop {
        let key = format!("r{round}-a{attempts}");
        let (via, client) = &clients[attempts % clients.len()];
        attempts += 1;
        match put(client, table, &key).await {
            Ok(()) => {
                acked.push(key);
                break killed_at.elapsed();
            }
            Err(e) => last_error = Some(format!("through node {via}: {e}")),
        }
        if killed_at.elapsed() > GIVE_UP {
            return Err(format!(
                "{table}: no write succeeded within {GIVE_UP:?} of the kill ({attempts} attempts; last error {last_error:?})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for j in 0..MORE_WRITES {
        let key = format!("r{round}-more{j}");
        let (via, client) = &clients[j % clients.len()];
        put(client, table, &key)
            .await
            .map_err(|e| format!("{table}: write {key} through node {via} after fail-over: {e}"))?;
        acked.push(key);
    }
    Ok(Round {
        window,
        attempts,
        last_error,
        acked,
    })
}

/// The `q` quantile (nearest rank) of sorted durations.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Which node (index) leads each table.
async fn leaders(c: &mut Cluster) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for t in TABLES {
        if let Some(l) = c.leader_of(t).await {
            out.insert(t, l);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_partition_fails_over_within_the_target_and_nothing_acknowledged_is_lost() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::start(3).await;
    for (j, t) in TABLES.iter().enumerate() {
        c.create_hash_table(1 + j % 3, t).await;
    }
    // table -> acknowledged keys.
    let mut acked: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for t in TABLES {
        for k in 0..5 {
            let key = format!("before-{k}");
            if let Err(e) = put(&c.client(1 + k % 3), t, &key).await {
                c.fail(&format!("{t}: PutItem {key} before any kill: {e}"));
            }
            acked.entry(t).or_default().push(key);
        }
    }

    let mut kills = [0usize; 3];
    let mut affected_windows = Vec::new();
    let mut other_windows = Vec::new();
    for round in 0..ROUNDS {
        // Every table must be led before the kill (the previous round's restart may still be
        // settling), so that "leads a table" means something.
        let mut led = leaders(&mut c).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while led.len() < TABLES.len() {
            if Instant::now() > deadline {
                c.fail(&format!(
                    "round {round}: not every table has a leader: {led:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            led = leaders(&mut c).await;
        }
        // The leading node killed least often so far (ties: the lowest index after the
        // previous victim, so the target rotates).
        let victim = *led
            .values()
            .min_by_key(|&&i| (kills[i - 1], (i + 3 - round % 3) % 3))
            .expect("a leader");
        kills[victim - 1] += 1;
        let led_by_victim: Vec<&str> = led
            .iter()
            .filter(|&(_, &l)| l == victim)
            .map(|(&t, _)| t)
            .collect();

        c.kill(victim);
        let killed_at = Instant::now();
        let survivors: Vec<usize> = (1..=3).filter(|&i| i != victim).collect();
        let mut tasks = Vec::new();
        for (j, t) in TABLES.iter().enumerate() {
            // Each table's writer starts at a different survivor.
            let mut clients: Vec<(usize, Client)> = survivors
                .iter()
                .map(|&i| (i, c.client_with_timeout(i, Duration::from_secs(1))))
                .collect();
            let n = clients.len();
            clients.rotate_left(j % n);
            tasks.push(tokio::spawn(measure(t, round, clients, killed_at)));
        }
        for (t, task) in TABLES.iter().zip(tasks) {
            let r = match task.await.expect("writer task") {
                Ok(r) => r,
                Err(e) => c.fail(&format!("round {round} (killed node {victim}): {e}")),
            };
            let led_here = led_by_victim.contains(t);
            println!(
                "round {round}: killed node {victim}; {t} (leader was node {}{}): first write after {:?} \
                 ({} attempts; last error before: {:?})",
                led[t],
                if led_here { ", killed" } else { "" },
                r.window,
                r.attempts,
                r.last_error
            );
            if led_here {
                affected_windows.push(r.window);
            } else {
                other_windows.push(r.window);
            }
            acked.entry(t).or_default().extend(r.acked);
        }

        c.restart(victim).await;
        let restarted = Instant::now();
        let deadline = restarted + Duration::from_secs(60);
        while !c.caught_up(victim).await {
            if Instant::now() > deadline {
                let s = c.try_status(victim).await;
                c.fail(&format!(
                    "round {round}: restarted node {victim} did not catch up within 60 s; its status: {s:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!(
            "round {round}: node {victim} restarted and caught up in {:?}",
            restarted.elapsed()
        );
    }

    affected_windows.sort();
    other_windows.sort();
    let mut all: Vec<Duration> = affected_windows
        .iter()
        .chain(&other_windows)
        .copied()
        .collect();
    all.sort();
    println!(
        "windows of tables whose leader was killed ({}): p50 {:?}, max {:?}; \
         of the other tables ({}): p50 {:?}, max {:?}; kills per node {kills:?}",
        affected_windows.len(),
        quantile(&affected_windows, 0.5),
        quantile(&affected_windows, 1.0),
        other_windows.len(),
        quantile(&other_windows, 0.5),
        quantile(&other_windows, 1.0),
    );
    assert!(
        affected_windows.len() >= ROUNDS,
        "every round kills a leader"
    );
    let max = quantile(&all, 1.0);
    let p50 = quantile(&affected_windows, 0.5);
    if max > MAX_WINDOW || p50 > P50_WINDOW {
        c.fail(&format!(
            "unavailability windows over target: max {max:?} (target {MAX_WINDOW:?}), \
             p50 of failed-over tables {p50:?} (target {P50_WINDOW:?})"
        ));
    }

    // No acknowledged write is lost: every one reads back through every node.
    let mut reads = 0;
    for i in 1..=3 {
        let client = c.client(i);
        for (t, keys) in &acked {
            for key in keys {
                let got = client
                    .get_item()
                    .table_name(*t)
                    .key("pk", AttributeValue::S(key.clone()))
                    .consistent_read(true)
                    .send()
                    .await;
                match got {
                    Ok(out) if out.item.as_ref() == Some(&item(key)) => reads += 1,
                    Ok(out) => c.fail(&format!(
                        "node {i}: acknowledged {t}/{key} reads back as {:?}",
                        out.item
                    )),
                    Err(e) => c.fail(&format!(
                        "node {i}: ConsistentRead of {t}/{key}: {}",
                        DisplayErrorContext(&e)
                    )),
                }
            }
        }
    }
    println!("all {reads} reads of acknowledged items (every item through every node) match");
}

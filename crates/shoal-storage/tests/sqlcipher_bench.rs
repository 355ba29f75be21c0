//! Throughput of the SQLCipher engine with 1 KB values. Ignored by default; run with
//! `cargo test -p shoal-storage --release --test sqlcipher_bench -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::*;
use shoal_storage::{Durability, Engine, SqlCipherEngine, WriteBatch};

const ITEMS: u64 = 50_000;
const PER_BATCH: u64 = 100;

/// A storage-key-like key: 8 random-looking hash bytes then a short partition key.
fn key(i: u64) -> Vec<u8> {
    let mut x = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let mut k = x.to_be_bytes().to_vec();
    k.extend_from_slice(format!("user{i:010}").as_bytes());
    k
}

fn report(what: &str, n: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!("{what}: {n} in {secs:.2}s = {:.0}/s", n as f64 / secs);
}

#[test]
#[ignore = "benchmark"]
fn bench_sqlcipher_inserts_and_point_reads_1kb() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(
        SqlCipherEngine::open(&dir.path().join("b.db"), &KEY, Durability::Relaxed).unwrap(),
    );
    let value = vec![0xABu8; 1024];

    let started = Instant::now();
    let mut index = 0;
    for chunk in 0..ITEMS / PER_BATCH {
        index += 1;
        let mut batch = WriteBatch::new(index);
        for i in chunk * PER_BATCH..(chunk + 1) * PER_BATCH {
            batch.put(key(i), value.clone());
        }
        e.write(&batch).unwrap();
    }
    report("insert, Relaxed, 100 per batch", ITEMS, started);

    let started = Instant::now();
    for i in 0..5_000u64 {
        index += 1;
        let mut batch = WriteBatch::new(index);
        batch.put(key(ITEMS + i), value.clone());
        e.write(&batch).unwrap();
    }
    report("insert, Relaxed, 1 per batch", 5_000, started);

    let started = Instant::now();
    for i in 0..5_000u64 {
        index += 1;
        let mut batch = WriteBatch::new(index);
        batch.put(key((i * 7919) % ITEMS), value.clone());
        e.write(&batch).unwrap();
    }
    report("overwrite, Relaxed, 1 per batch", 5_000, started);

    let reads = 100_000u64;
    let started = Instant::now();
    for i in 0..reads {
        let got = e.get(&key((i * 104_729) % ITEMS)).unwrap();
        assert_eq!(got.map(|v| v.len()), Some(1024));
    }
    report("point read, 1 thread", reads, started);

    let threads = 4u64;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                for i in 0..reads / threads {
                    let got = e.get(&key((i * 104_729 + t) % ITEMS)).unwrap();
                    assert!(got.is_some());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    report("point read, 4 threads", reads, started);

    let started = Instant::now();
    let mut n = 0;
    let mut start: Option<Vec<u8>> = None;
    loop {
        let page = e.scan(start.as_deref(), None, false, 1000).unwrap();
        n += page.len() as u64;
        match page.last() {
            Some((k, _)) if page.len() == 1000 => start = Some([k.as_slice(), &[0]].concat()),
            _ => break,
        }
    }
    report("range scan (1000 per call)", n, started);
}

#[test]
#[ignore = "benchmark"]
fn bench_sqlcipher_sync_writes_1kb() {
    let dir = tempfile::tempdir().unwrap();
    let e = SqlCipherEngine::open(&dir.path().join("b.db"), &KEY, Durability::Sync).unwrap();
    let value = vec![0xABu8; 1024];
    let n = 1_000u64;
    let started = Instant::now();
    for i in 0..n {
        let mut batch = WriteBatch::new(i + 1);
        batch.put(key(i), value.clone());
        e.write(&batch).unwrap();
    }
    report("insert, Sync (fsync), 1 per batch", n, started);
}

#[test]
#[ignore = "benchmark"]
fn bench_partition_apply_and_get_1kb() {
    let dir = tempfile::tempdir().unwrap();
    let p = Arc::new(sql_partition(dir.path(), hash_schema()));
    let blob = "x".repeat(1000);
    let n = 20_000u64;
    let started = Instant::now();
    for i in 0..n {
        let it = item(&[("pk", s(&format!("user{i}"))), ("v", s(&blob))]);
        p.apply(i + 1, &put(it)).unwrap();
    }
    report("Partition::apply put, Relaxed, 1 per index", n, started);
    let started = Instant::now();
    for i in 0..n {
        let got = p
            .get(&item(&[("pk", s(&format!("user{}", (i * 7919) % n)))]))
            .unwrap();
        assert!(got.is_some());
    }
    report("Partition::get", n, started);
}

//! Data-key rotation of a SQLCipher partition file (`Engine::rekey`): in WAL mode, under
//! concurrent readers and writers, with the old key useless afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::KEY;
use shoal_storage::{Durability, Engine, SqlCipherEngine, StorageError, WriteBatch};

const NEW_KEY: [u8; 32] = [9u8; 32];

fn fill(e: &SqlCipherEngine, from: u64, count: u64) {
    for i in from..from + count {
        let mut batch = WriteBatch::new(i + 1);
        batch.put(
            format!("key-{i:06}").into_bytes(),
            format!("value-{i}").repeat(20).into_bytes(),
        );
        e.write(&batch).unwrap();
    }
}

#[test]
fn rekey_in_wal_mode_reopens_with_the_new_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    {
        let e = SqlCipherEngine::open(&path, &KEY, Durability::Sync).unwrap();
        fill(&e, 0, 500);
        // Readers open, and WAL frames under the old key not yet checkpointed.
        assert_eq!(e.scan(None, None, false, 10).unwrap().len(), 10);
        e.rekey(&NEW_KEY).unwrap();
        // The same engine keeps working: reads (fresh reader connections) and writes.
        assert_eq!(e.scan(None, None, false, usize::MAX).unwrap().len(), 500);
        fill(&e, 500, 10);
        assert_eq!(e.get(b"key-000505").unwrap().unwrap().len(), 180);
    }
    match SqlCipherEngine::open(&path, &KEY, Durability::Sync) {
        Err(StorageError::WrongKey { .. }) => {}
        Err(e) => panic!("expected WrongKey with the old key, got {e:?}"),
        Ok(_) => panic!("the old key still opens the file after rekey"),
    }
    let e = SqlCipherEngine::open(&path, &NEW_KEY, Durability::Sync).unwrap();
    assert_eq!(e.applied_index().unwrap(), 510);
    let all = e.scan(None, None, false, usize::MAX).unwrap();
    assert_eq!(all.len(), 510);
    for (i, (k, v)) in all.iter().enumerate() {
        assert_eq!(k, format!("key-{i:06}").as_bytes());
        assert_eq!(v, format!("value-{i}").repeat(20).as_bytes());
    }
}

#[test]
fn rekey_under_concurrent_reads_and_writes_fails_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let e = Arc::new(SqlCipherEngine::open(&path, &KEY, Durability::Relaxed).unwrap());
    fill(&e, 0, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(200));
    let mut threads = Vec::new();
    for _ in 0..2 {
        let (e, stop, next) = (e.clone(), stop.clone(), next.clone());
        threads.push(std::thread::spawn(move || {
            let mut ops = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let mut batch = WriteBatch::new(i + 1);
                batch.put(format!("key-{i:06}").into_bytes(), b"w".to_vec());
                e.write(&batch).expect("write during rekey");
                ops += 1;
            }
            ops
        }));
    }
    for _ in 0..3 {
        let (e, stop) = (e.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut ops = 0u64;
            while !stop.load(Ordering::Relaxed) {
                assert!(e.get(b"key-000007").expect("read during rekey").is_some());
                assert_eq!(e.scan(None, None, false, 5).expect("scan").len(), 5);
                ops += 1;
            }
            ops
        }));
    }
    let keys = [NEW_KEY, KEY, NEW_KEY];
    for key in &keys {
        std::thread::sleep(std::time::Duration::from_millis(100));
        e.rekey(key).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        assert!(t.join().unwrap() > 0, "a worker made no progress");
    }
    let written = e.scan(None, None, false, usize::MAX).unwrap().len();
    drop(e);
    let e = SqlCipherEngine::open(&path, &NEW_KEY, Durability::Relaxed).unwrap();
    assert_eq!(
        e.scan(None, None, false, usize::MAX).unwrap().len(),
        written
    );
}

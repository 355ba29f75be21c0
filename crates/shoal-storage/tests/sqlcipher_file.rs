//! What the SQLCipher engine guarantees on disk: persistence, encryption, the key check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::KEY;
use shoal_storage::{Durability, Engine, SqlCipherEngine, StorageError, WriteBatch};

const CANARY: &[u8] = b"CANARY-plaintext-must-not-reach-disk-4f1c";

#[test]
fn data_and_applied_index_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    {
        let e = SqlCipherEngine::open(&path, &KEY, Durability::Sync).unwrap();
        let mut batch = WriteBatch::new(42);
        batch
            .put(b"k1".to_vec(), b"v1".to_vec())
            .put(b"k2".to_vec(), b"v2".to_vec());
        e.write(&batch).unwrap();
    }
    let e = SqlCipherEngine::open(&path, &KEY, Durability::Sync).unwrap();
    assert_eq!(e.applied_index().unwrap(), 42);
    assert_eq!(e.get(b"k1").unwrap(), Some(b"v1".to_vec()));
    assert_eq!(e.scan(None, None, false, 10).unwrap().len(), 2);
}

#[test]
fn reopening_with_a_different_key_is_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    {
        let e = SqlCipherEngine::open(&path, &KEY, Durability::Relaxed).unwrap();
        let mut batch = WriteBatch::new(1);
        batch.put(b"k".to_vec(), b"v".to_vec());
        e.write(&batch).unwrap();
    }
    let mut other = KEY;
    other[31] ^= 1;
    match SqlCipherEngine::open(&path, &other, Durability::Relaxed) {
        Err(StorageError::WrongKey { path: p, .. }) => assert_eq!(p, path),
        Err(e) => panic!("expected WrongKey, got {e:?}"),
        Ok(_) => panic!("expected WrongKey, opened with the wrong key"),
    }
    // The right key still works afterwards.
    let e = SqlCipherEngine::open(&path, &KEY, Durability::Relaxed).unwrap();
    assert_eq!(e.get(b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn a_plaintext_file_is_wrong_key_not_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    std::fs::write(&path, vec![0x42u8; 65536]).unwrap();
    assert!(matches!(
        SqlCipherEngine::open(&path, &KEY, Durability::Relaxed),
        Err(StorageError::WrongKey { .. })
    ));
}

fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

#[test]
fn values_and_keys_never_reach_disk_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let e = SqlCipherEngine::open(&path, &KEY, Durability::Sync).unwrap();
    let mut batch = WriteBatch::new(1);
    for i in 0..200u32 {
        let mut value = CANARY.to_vec();
        value.extend_from_slice(&i.to_be_bytes());
        batch.put([b"KEYCANARY-".as_slice(), &i.to_be_bytes()].concat(), value);
    }
    e.write(&batch).unwrap();
    // While open: the WAL holds the pages; after close: the checkpointed database file.
    assert!(
        !files_contain(dir.path(), CANARY),
        "canary found in plaintext (WAL)"
    );
    assert!(
        !files_contain(dir.path(), b"KEYCANARY-"),
        "key found in plaintext (WAL)"
    );
    drop(e);
    assert!(
        !files_contain(dir.path(), CANARY),
        "canary found in plaintext (db)"
    );
    assert!(
        !files_contain(dir.path(), b"KEYCANARY-"),
        "key found in plaintext (db)"
    );
    assert!(
        !files_contain(dir.path(), b"SQLite format 3"),
        "unencrypted SQLite header"
    );
}

#[test]
fn destroy_removes_the_database_and_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    {
        let e = SqlCipherEngine::open(&path, &KEY, Durability::Relaxed).unwrap();
        e.write(&WriteBatch::new(1)).unwrap();
    }
    SqlCipherEngine::destroy(&path).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Destroying what is not there is fine.
    SqlCipherEngine::destroy(&path).unwrap();
    let e = SqlCipherEngine::open(&path, &KEY, Durability::Relaxed).unwrap();
    assert_eq!(e.applied_index().unwrap(), 0);
}

#[test]
fn readers_see_writes_from_other_threads() {
    let dir = tempfile::tempdir().unwrap();
    let e = std::sync::Arc::new(
        SqlCipherEngine::open(&dir.path().join("p.db"), &KEY, Durability::Relaxed).unwrap(),
    );
    let writer = {
        let e = e.clone();
        std::thread::spawn(move || {
            for i in 1..=200u64 {
                let mut batch = WriteBatch::new(i);
                batch.put(i.to_be_bytes().to_vec(), vec![1u8; 100]);
                e.write(&batch).unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || {
                let mut last = 0;
                for _ in 0..200 {
                    let n = e.scan(None, None, false, 1000).unwrap().len();
                    assert!(n >= last, "a reader went back in time");
                    last = n;
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(e.scan(None, None, false, 1000).unwrap().len(), 200);
    assert_eq!(e.applied_index().unwrap(), 200);
}

#[test]
fn a_file_of_the_previous_format_opens_and_gains_the_index_and_outbox_tables() {
    use shoal_storage::Space;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // The layout before secondary indexes: `kv` and `meta` only.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
        conn.execute_batch(&format!(
            "PRAGMA key = \"x'{hex}'\"; PRAGMA cipher_page_size = 4096; \
             PRAGMA cipher_hmac_algorithm = HMAC_SHA256;"
        ))
        .unwrap();
        let _: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        conn.execute_batch(
            "CREATE TABLE kv (id INTEGER PRIMARY KEY, k BLOB NOT NULL UNIQUE, v BLOB NOT NULL);
             CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 0),
                                applied_index INTEGER NOT NULL);
             INSERT INTO meta (id, applied_index) VALUES (0, 7);
             INSERT INTO kv (k, v) VALUES (x'6b', x'76');",
        )
        .unwrap();
    }
    let e = SqlCipherEngine::open(&path, &KEY, Durability::Sync).unwrap();
    assert_eq!(e.applied_index().unwrap(), 7);
    assert_eq!(e.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(e.get_in(Space::Index, b"k").unwrap(), None);
    let mut batch = WriteBatch::new(8);
    batch.put_in(Space::Index, b"i".to_vec(), b"e".to_vec());
    batch.put_in(Space::Outbox, b"o".to_vec(), b"r".to_vec());
    e.write(&batch).unwrap();
    drop(e);
    let e = SqlCipherEngine::open(&path, &KEY, Durability::Sync).unwrap();
    assert_eq!(e.get_in(Space::Index, b"i").unwrap(), Some(b"e".to_vec()));
    assert_eq!(e.get_in(Space::Outbox, b"o").unwrap(), Some(b"r".to_vec()));
    assert_eq!(e.get(b"k").unwrap(), Some(b"v".to_vec()));
}

//! Damaged partition files: every read returns the exact stored item or a
//! `StorageError::Corrupt`, never different data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use shoal_storage::{Partition, StorageError};
use shoal_types::Item;

const ITEMS: usize = 400;

fn stored(i: usize) -> Item {
    item(&[
        ("pk", s(&format!("key-{i:04}"))),
        ("v", s(&format!("{i}-{}", "x".repeat(200)))),
    ])
}

fn key(i: usize) -> Item {
    item(&[("pk", s(&format!("key-{i:04}")))])
}

/// Writes the items and closes the partition (its WAL checkpointed into the file).
fn write_items(dir: &std::path::Path) -> std::path::PathBuf {
    let p = sql_partition(dir, hash_schema());
    for i in 0..ITEMS {
        p.apply(i as u64 + 1, &put(stored(i))).unwrap();
    }
    drop(p);
    dir.join("p.db")
}

/// Every point read and the full scan give the stored item or a Corrupt error; returns the
/// number of reads that failed.
fn check_reads(p: &Partition) -> usize {
    let mut failed = 0;
    for i in 0..ITEMS {
        match p.get(&key(i)) {
            Ok(Some(got)) => assert_eq!(got, stored(i), "key-{i:04} read back different data"),
            Ok(None) => panic!("key-{i:04} vanished without an error"),
            Err(StorageError::Corrupt { context }) => {
                assert!(!context.is_empty());
                failed += 1;
            }
            Err(other) => panic!("key-{i:04}: expected a Corrupt error, got {other:?}"),
        }
    }
    match p.scan(&scan_all()) {
        Ok(page) => {
            for got in &page.items {
                let pk = match got.get("pk") {
                    Some(shoal_types::AttributeValue::S(pk)) => pk.clone(),
                    other => panic!("scanned item without its key: {other:?}"),
                };
                let i: usize = pk.trim_start_matches("key-").parse().unwrap();
                assert_eq!(got, &stored(i), "scan returned different data for {pk}");
            }
            assert!(failed > 0 || page.items.len() == ITEMS);
        }
        Err(StorageError::Corrupt { .. }) => failed += 1,
        Err(other) => panic!("scan: expected a Corrupt error, got {other:?}"),
    }
    failed
}

#[test]
fn a_damaged_page_in_the_middle_of_the_file_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_items(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 16 * 4096, "file too small for the test: {len} bytes");
    // Damage a whole page's worth in the middle of the file (not page 1).
    flip(&path, (len / 2 / 4096) * 4096 + 100, 64);
    // Which page lies in the middle depends on the file layout: if it is one every lookup
    // passes through (a leaf of the key index holding the metadata keys), opening the
    // partition already reports it.
    let engine =
        shoal_storage::SqlCipherEngine::open(&path, &KEY, shoal_storage::Durability::Relaxed)
            .unwrap();
    let failed = match Partition::new(Box::new(engine), hash_schema()) {
        Ok(p) => check_reads(&p),
        Err(StorageError::Corrupt { .. }) => 1,
        Err(other) => panic!("opening: expected Corrupt, got {other:?}"),
    };
    assert!(failed > 0, "the damaged page was never detected");
}

#[test]
fn single_bit_damage_anywhere_past_page_one_is_detected_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_items(dir.path());
    let pristine = std::fs::read(&path).unwrap();
    let len = pristine.len() as u64;
    let mut detected = 0;
    for step in 1..8u64 {
        std::fs::write(&path, &pristine).unwrap();
        let offset = 4096 + (len - 4096) * step / 8;
        flip(&path, offset, 1);
        match Partition::new(
            Box::new(
                shoal_storage::SqlCipherEngine::open(
                    &path,
                    &KEY,
                    shoal_storage::Durability::Relaxed,
                )
                .unwrap(),
            ),
            hash_schema(),
        ) {
            Ok(p) => {
                if check_reads(&p) > 0 {
                    detected += 1;
                }
            }
            Err(StorageError::Corrupt { .. }) => detected += 1,
            Err(other) => panic!("opening at offset {offset}: expected Corrupt, got {other:?}"),
        }
    }
    assert!(detected > 0);
}

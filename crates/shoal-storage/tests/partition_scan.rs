//! Scan: hash ranges, storage-key order, paging, the byte limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use shoal_storage::{Partition, ScanSpec};
use shoal_types::key::partition_hash;
use shoal_types::size::item_size;
use shoal_types::{Item, ScalarType};

const MB: usize = 1024 * 1024;

fn full() -> ScanSpec<'static> {
    ScanSpec {
        hash_start: 0,
        hash_end: u64::MAX,
        exclusive_start: None,
        limit: None,
        byte_limit: MB,
        filter: None,
    }
}

/// 60 partition keys with 3 sort keys each.
fn table(p: &Partition) -> Vec<Item> {
    let mut all = Vec::new();
    let mut index = 0;
    for k in 0..60 {
        for sk in 0..3 {
            index += 1;
            let it = item(&[
                ("pk", s(&format!("user{k}"))),
                ("sk", n(&sk.to_string())),
                ("v", n(&index.to_string())),
            ]);
            p.apply(index, &put(it.clone())).unwrap();
            all.push(it);
        }
    }
    all
}

fn hash_of(i: &Item) -> u64 {
    partition_hash(&i["pk"])
}

#[test]
fn full_scan_returns_every_item_in_hash_order() {
    let dir = tempfile::tempdir().unwrap();
    for p in [
        mem_partition(range_schema(ScalarType::N)),
        sql_partition(dir.path(), range_schema(ScalarType::N)),
    ] {
        let all = table(&p);
        let page = p.scan(&full()).unwrap();
        assert_eq!(page.items.len(), all.len());
        assert_eq!(page.scanned_count, all.len());
        assert_eq!(page.scanned_bytes, all.iter().map(item_size).sum::<usize>());
        assert_eq!(page.last_evaluated_key, None);
        let hashes: Vec<u64> = page.items.iter().map(hash_of).collect();
        assert!(hashes.windows(2).all(|w| w[0] <= w[1]), "hash order");
        let got: BTreeSet<String> = page.items.iter().map(|i| format!("{i:?}")).collect();
        let want: BTreeSet<String> = all.iter().map(|i| format!("{i:?}")).collect();
        assert_eq!(got, want);
    }
}

#[test]
fn union_of_disjoint_hash_ranges_is_the_whole_table() {
    let p = mem_partition(range_schema(ScalarType::N));
    let all = table(&p);
    let segments = 7u64;
    let width = u64::MAX / segments;
    let mut seen = Vec::new();
    for seg in 0..segments {
        let start = seg * width;
        let end = if seg == segments - 1 {
            u64::MAX
        } else {
            (seg + 1) * width - 1
        };
        let page = p
            .scan(&ScanSpec {
                hash_start: start,
                hash_end: end,
                ..full()
            })
            .unwrap();
        for i in &page.items {
            let h = hash_of(i);
            assert!(start <= h && h <= end, "item outside its segment");
        }
        seen.extend(page.items);
    }
    assert_eq!(seen.len(), all.len());
    assert_eq!(seen, p.scan(&full()).unwrap().items);
}

#[test]
fn hash_range_bounds_are_inclusive() {
    let p = mem_partition(range_schema(ScalarType::N));
    let all = table(&p);
    let h = hash_of(&all[0]);
    let page = p
        .scan(&ScanSpec {
            hash_start: h,
            hash_end: h,
            ..full()
        })
        .unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.items.iter().all(|i| i["pk"] == all[0]["pk"]));
    let empty = p
        .scan(&ScanSpec {
            hash_start: 5,
            hash_end: 4,
            ..full()
        })
        .unwrap();
    assert!(empty.items.is_empty());
}

#[test]
fn scan_pages_with_limit_and_exclusive_start_cover_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    for p in [
        mem_partition(range_schema(ScalarType::N)),
        sql_partition(dir.path(), range_schema(ScalarType::N)),
    ] {
        table(&p);
        let whole = p.scan(&full()).unwrap().items;
        for limit in [1, 4, 179, 180, 500] {
            let mut got = Vec::new();
            let mut start: Option<Item> = None;
            loop {
                let page = p
                    .scan(&ScanSpec {
                        limit: Some(limit),
                        exclusive_start: start.as_ref(),
                        ..full()
                    })
                    .unwrap();
                assert!(page.scanned_count <= limit);
                got.extend(page.items);
                match page.last_evaluated_key {
                    Some(k) => {
                        assert_eq!(
                            k.len(),
                            2,
                            "last_evaluated_key holds only the key attributes"
                        );
                        start = Some(k);
                    }
                    None => break,
                }
            }
            assert_eq!(got, whole, "limit {limit}");
        }
    }
}

#[test]
fn scan_filter_drops_items_but_they_count_as_scanned() {
    let p = mem_partition(range_schema(ScalarType::N));
    let all = table(&p);
    let only_sk1 = eq("sk", n("1"));
    let page = p
        .scan(&ScanSpec {
            filter: Some(&only_sk1),
            ..full()
        })
        .unwrap();
    assert_eq!(page.scanned_count, all.len());
    assert_eq!(page.items.len(), 60);
}

#[test]
fn scan_byte_limit_stops_after_the_crossing_item() {
    let p = mem_partition(range_schema(ScalarType::N));
    let all = table(&p);
    let size = item_size(&all[0]);
    let page = p
        .scan(&ScanSpec {
            byte_limit: 1,
            ..full()
        })
        .unwrap();
    assert_eq!(page.scanned_count, 1);
    assert!(page.last_evaluated_key.is_some());
    let page = p
        .scan(&ScanSpec {
            byte_limit: size * 10,
            ..full()
        })
        .unwrap();
    assert!(page.scanned_bytes >= size * 10);
    assert!(page.scanned_bytes - item_size(page.items.last().unwrap()) < size * 10);
}

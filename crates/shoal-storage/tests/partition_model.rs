//! Property test: random puts and deletes on a Partition agree with a BTreeMap model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use shoal_storage::{Partition, PartitionStats};
use shoal_types::size::item_size;
use shoal_types::{AttributeValue, Item, ScalarType};

#[derive(Debug, Clone)]
enum Op {
    Put { pk: u8, sk: i16, v: u16 },
    Delete { pk: u8, sk: i16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..6, -20i16..20, any::<u16>()).prop_map(|(pk, sk, v)| Op::Put { pk, sk, v }),
        1 => (0u8..6, -20i16..20).prop_map(|(pk, sk)| Op::Delete { pk, sk }),
    ]
}

fn key(pk: u8, sk: i16) -> Item {
    item(&[("pk", s(&format!("k{pk}"))), ("sk", n(&sk.to_string()))])
}

fn check(p: &Partition, ops: &[Op]) {
    let mut model: BTreeMap<(u8, i16), Item> = BTreeMap::new();
    for (i, o) in ops.iter().enumerate() {
        let index = i as u64 + 1;
        match *o {
            Op::Put { pk, sk, v } => {
                let mut it = key(pk, sk);
                it.insert(
                    "v".into(),
                    AttributeValue::S("x".repeat(usize::from(v % 50))),
                );
                p.apply(index, &put(it.clone())).unwrap();
                model.insert((pk, sk), it);
            }
            Op::Delete { pk, sk } => {
                p.apply(index, &delete(key(pk, sk))).unwrap();
                model.remove(&(pk, sk));
            }
        }
    }
    for pk in 0..6u8 {
        for sk in -20i16..20 {
            assert_eq!(p.get(&key(pk, sk)).unwrap().as_ref(), model.get(&(pk, sk)));
        }
    }
    let page = p.scan(&scan_all()).unwrap();
    let mut scanned = page.items.clone();
    let mut expected: Vec<Item> = model.values().cloned().collect();
    let order = |i: &Item| format!("{:?}", i);
    scanned.sort_by_key(order);
    expected.sort_by_key(order);
    assert_eq!(scanned, expected);
    // Within one partition key, scan order is sort key order.
    for w in page.items.windows(2) {
        if w[0]["pk"] == w[1]["pk"] {
            let (AttributeValue::N(a), AttributeValue::N(b)) = (&w[0]["sk"], &w[1]["sk"]) else {
                panic!()
            };
            assert!(a.to_string().parse::<i32>().unwrap() < b.to_string().parse::<i32>().unwrap());
        }
    }
    let stats = PartitionStats {
        item_count: model.len() as u64,
        size_bytes: model.values().map(|i| item_size(i) as u64).sum(),
    };
    assert_eq!(p.stats(), stats);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mem_partition_agrees_with_a_btreemap_model(ops in proptest::collection::vec(op(), 0..120)) {
        check(&mem_partition(range_schema(ScalarType::N)), &ops);
    }

    #[test]
    fn sqlcipher_partition_agrees_with_a_btreemap_model(ops in proptest::collection::vec(op(), 0..80)) {
        let dir = tempfile::tempdir().unwrap();
        check(&sql_partition(dir.path(), range_schema(ScalarType::N)), &ops);
    }
}

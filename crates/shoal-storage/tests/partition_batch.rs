//! Group commit: `apply_batch` gives exactly the results and the state of applying the same
//! commands one by one, writes once per batch, and applies nothing when storage fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proptest::prelude::*;
use shoal_storage::{
    Applied, ApplyError, Command, Engine, MemEngine, Partition, StorageError, WriteBatch,
};
use shoal_types::Item;

const KEYS: u8 = 4;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u16),
    PutIfAbsent(u8, u16),
    PutIfV(u8, u16, u16),
    Delete(u8),
    DeleteIfExists(u8),
    Increment(u8),
    UpsertIncrement(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..KEYS;
    prop_oneof![
        (k.clone(), 0u16..5).prop_map(|(k, v)| Op::Put(k, v)),
        (k.clone(), 0u16..5).prop_map(|(k, v)| Op::PutIfAbsent(k, v)),
        (k.clone(), 0u16..5, 0u16..5).prop_map(|(k, a, b)| Op::PutIfV(k, a, b)),
        k.clone().prop_map(Op::Delete),
        k.clone().prop_map(Op::DeleteIfExists),
        k.clone().prop_map(Op::Increment),
        k.prop_map(Op::UpsertIncrement),
    ]
}

fn key(k: u8) -> Item {
    item(&[("pk", s(&format!("k{k}")))])
}

fn with_v(k: u8, v: u16) -> Item {
    let mut it = key(k);
    it.insert("v".into(), n(&v.to_string()));
    it
}

fn command(o: &Op) -> Command {
    match *o {
        Op::Put(k, v) => put(with_v(k, v)),
        Op::PutIfAbsent(k, v) => put_if(with_v(k, v), not_exists("pk")),
        Op::PutIfV(k, expected, v) => put_if(with_v(k, v), eq("v", n(&expected.to_string()))),
        Op::Delete(k) => delete(key(k)),
        Op::DeleteIfExists(k) => Command::Delete {
            key: key(k),
            condition: Some(exists("pk")),
        },
        // `SET v = v + 1` fails at runtime (a validation error) when `v` is absent.
        Op::Increment(k) => Command::Update {
            key: key(k),
            update: increment("v", "1"),
            condition: Some(exists("pk")),
        },
        Op::UpsertIncrement(k) => Command::Update {
            key: key(k),
            update: increment("c", "1"),
            condition: None,
        },
    }
}

/// A comparable rendering of one result.
fn outcome(r: &Result<Applied, ApplyError>) -> String {
    match r {
        Ok(a) => format!("ok old={:?} new={:?}", a.old, a.new),
        Err(ApplyError::ConditionalCheckFailed { item }) => format!("ccf {item:?}"),
        Err(ApplyError::Validation(m)) => format!("validation {m}"),
        Err(ApplyError::Storage(e)) => format!("storage {e}"),
        Err(e @ ApplyError::ItemCollectionSizeLimitExceeded) => format!("limit {e}"),
        Err(e @ ApplyError::WrongPartition) => format!("wrong partition {e}"),
        Err(
            e @ (ApplyError::TransactionConflict
            | ApplyError::TransactionAborted
            | ApplyError::TxAlreadyCommitted
            | ApplyError::TxTokenMismatch
            | ApplyError::TxInProgress),
        ) => format!("transaction {e}"),
    }
}

/// Applies `ops` one by one on `one` and in batches of the given sizes on `batched`; both
/// must give the same results, items, stats and applied index.
fn compare(one: &Partition, batched: &Partition, ops: &[Op], sizes: &[usize]) {
    let cmds: Vec<Command> = ops.iter().map(command).collect();
    let single: Vec<String> = cmds
        .iter()
        .enumerate()
        .map(|(i, c)| outcome(&one.apply(i as u64 + 1, c)))
        .collect();
    let mut grouped = Vec::new();
    let mut at = 0;
    let mut sizes = sizes.iter().cycle();
    while at < cmds.len() {
        let size = (*sizes.next().unwrap()).clamp(1, cmds.len() - at);
        let results = batched.apply_batch(at as u64 + 1, &cmds[at..at + size]);
        assert_eq!(results.len(), size);
        grouped.extend(results.iter().map(outcome));
        at += size;
    }
    assert_eq!(single, grouped, "results differ for {ops:?}");
    for k in 0..KEYS {
        assert_eq!(one.get(&key(k)).unwrap(), batched.get(&key(k)).unwrap());
    }
    assert_eq!(one.stats(), batched.stats());
    assert_eq!(one.applied_index(), batched.applied_index());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn batches_match_one_by_one(
        ops in prop::collection::vec(op(), 1..60),
        sizes in prop::collection::vec(1usize..20, 1..5),
    ) {
        compare(
            &mem_partition(hash_schema()),
            &mem_partition(hash_schema()),
            &ops,
            &sizes,
        );
    }
}

#[test]
fn batches_match_one_by_one_on_sqlcipher_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ops: Vec<Op> = (0..200u16)
        .map(|i| {
            let k = (i % u16::from(KEYS)) as u8;
            match i % 7 {
                0 => Op::Put(k, i % 5),
                1 => Op::PutIfAbsent(k, i % 5),
                2 => Op::PutIfV(k, i % 5, (i + 1) % 5),
                3 => Op::Delete(k),
                4 => Op::Increment(k),
                5 => Op::UpsertIncrement(k),
                _ => Op::DeleteIfExists(k),
            }
        })
        .collect();
    let one = mem_partition(hash_schema());
    {
        let batched = sql_partition(dir.path(), hash_schema());
        compare(&one, &batched, &ops, &[1, 7, 64, 3, 128]);
    }
    let reopened = sql_partition(dir.path(), hash_schema());
    for k in 0..KEYS {
        assert_eq!(one.get(&key(k)).unwrap(), reopened.get(&key(k)).unwrap());
    }
    assert_eq!(one.stats(), reopened.stats());
}

#[test]
fn a_put_then_delete_of_the_same_key_in_one_batch_leaves_it_absent() {
    let p = mem_partition(hash_schema());
    let results = p.apply_batch(
        1,
        &[
            put(with_v(0, 1)),
            delete(key(0)),
            put(with_v(1, 1)),
            delete(key(1)),
            put(with_v(1, 2)),
        ],
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(p.get(&key(0)).unwrap(), None);
    assert_eq!(p.get(&key(1)).unwrap(), Some(with_v(1, 2)));
    assert_eq!(p.stats().item_count, 1);
    assert_eq!(p.applied_index(), 5);
}

#[test]
fn already_applied_indexes_in_a_batch_are_skipped() {
    let p = mem_partition(hash_schema());
    p.apply(1, &put(with_v(0, 1))).unwrap();
    p.apply(2, &put(with_v(1, 1))).unwrap();
    let results = p.apply_batch(
        1,
        &[put(with_v(0, 9)), put(with_v(1, 9)), put(with_v(2, 9))],
    );
    assert_eq!(results[0].as_ref().unwrap(), &Applied::default());
    assert_eq!(results[1].as_ref().unwrap(), &Applied::default());
    assert_eq!(results[2].as_ref().unwrap().new, Some(with_v(2, 9)));
    assert_eq!(p.get(&key(0)).unwrap(), Some(with_v(0, 1)));
    assert_eq!(p.get(&key(2)).unwrap(), Some(with_v(2, 9)));
    assert_eq!(p.applied_index(), 3);
}

#[test]
fn a_storage_error_fails_the_whole_batch_and_applies_none_of_it() {
    // A stored value that does not decode: reading it fails with StorageError::Corrupt.
    let engine = MemEngine::new();
    let bad_key = hash_schema().storage_key(&key(3)).unwrap();
    let mut seed = WriteBatch::new(0);
    seed.put(bad_key, b"not an item".to_vec());
    engine.write(&seed).unwrap();
    let p = Partition::new(Box::new(engine), hash_schema()).unwrap();
    p.apply(1, &put(with_v(0, 1))).unwrap();
    let before = p.stats();

    let results = p.apply_batch(
        2,
        &[
            put(with_v(0, 2)),
            put(with_v(1, 1)),
            put_if(with_v(2, 1), exists("pk")),
            put(with_v(3, 1)),
            put(with_v(2, 2)),
        ],
    );
    assert_eq!(results.len(), 5);
    for r in &results {
        assert!(
            matches!(r, Err(ApplyError::Storage(StorageError::Corrupt { .. }))),
            "every command of the batch must fail with the storage error, got {r:?}"
        );
    }
    assert_eq!(p.get(&key(0)).unwrap(), Some(with_v(0, 1)));
    assert_eq!(p.get(&key(1)).unwrap(), None);
    assert_eq!(p.get(&key(2)).unwrap(), None);
    assert_eq!(p.stats(), before);
    assert_eq!(p.applied_index(), 1);

    // The same indexes apply once the bad command is gone.
    let results = p.apply_batch(2, &[put(with_v(0, 2)), put(with_v(1, 1))]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(p.applied_index(), 3);
}

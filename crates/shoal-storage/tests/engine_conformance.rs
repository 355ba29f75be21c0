//! The `Engine` contract, run on both `MemEngine` and `SqlCipherEngine`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use shoal_storage::{Engine, Space, WriteBatch};

fn kv(k: &[u8], v: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (k.to_vec(), v.to_vec())
}

fn keys(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
    entries.iter().map(|(k, _)| k.clone()).collect()
}

fn for_each_engine(body: impl Fn(&str, &dyn Engine)) {
    let dir = tempfile::tempdir().unwrap();
    for (name, engine) in common::engines(dir.path()) {
        body(name, engine.as_ref());
    }
}

fn fill(engine: &dyn Engine) {
    let mut batch = WriteBatch::new(1);
    for k in [&b"a"[..], b"b", b"ba", b"c", b"\x00", b"\xff\xff"] {
        batch.put(k.to_vec(), [b"v-", k].concat());
    }
    engine.write(&batch).unwrap();
}

#[test]
fn new_engine_is_empty_with_applied_index_zero() {
    for_each_engine(|name, e| {
        assert_eq!(e.applied_index().unwrap(), 0, "{name}");
        assert_eq!(e.get(b"a").unwrap(), None, "{name}");
        assert!(e.scan(None, None, false, 10).unwrap().is_empty(), "{name}");
    });
}

#[test]
fn write_makes_puts_visible_and_records_the_index() {
    for_each_engine(|name, e| {
        fill(e);
        assert_eq!(e.get(b"ba").unwrap(), Some(b"v-ba".to_vec()), "{name}");
        assert_eq!(e.get(b"zz").unwrap(), None, "{name}");
        assert_eq!(e.applied_index().unwrap(), 1, "{name}");
        let mut overwrite = WriteBatch::new(5);
        overwrite.put(b"a".to_vec(), b"new".to_vec());
        e.write(&overwrite).unwrap();
        assert_eq!(e.get(b"a").unwrap(), Some(b"new".to_vec()), "{name}");
        assert_eq!(e.applied_index().unwrap(), 5, "{name}");
    });
}

#[test]
fn scan_orders_keys_as_unsigned_bytes_prefix_first() {
    for_each_engine(|name, e| {
        fill(e);
        let all = e.scan(None, None, false, 100).unwrap();
        let expected: Vec<Vec<u8>> = [&b"\x00"[..], b"a", b"b", b"ba", b"c", b"\xff\xff"]
            .iter()
            .map(|k| k.to_vec())
            .collect();
        assert_eq!(keys(&all), expected, "{name}");
        assert_eq!(all[1], kv(b"a", b"v-a"), "{name}");
        let rev = e.scan(None, None, true, 100).unwrap();
        let mut expected_rev = expected.clone();
        expected_rev.reverse();
        assert_eq!(keys(&rev), expected_rev, "{name}");
    });
}

#[test]
fn scan_bounds_are_start_inclusive_end_exclusive_with_limit() {
    for_each_engine(|name, e| {
        fill(e);
        let got = e.scan(Some(b"b"), Some(b"c"), false, 100).unwrap();
        assert_eq!(keys(&got), vec![b"b".to_vec(), b"ba".to_vec()], "{name}");
        let got = e.scan(Some(b"b"), Some(b"c"), true, 100).unwrap();
        assert_eq!(keys(&got), vec![b"ba".to_vec(), b"b".to_vec()], "{name}");
        let got = e.scan(Some(b"a"), None, false, 2).unwrap();
        assert_eq!(keys(&got), vec![b"a".to_vec(), b"b".to_vec()], "{name}");
        let got = e.scan(None, Some(b"b"), true, 1).unwrap();
        assert_eq!(keys(&got), vec![b"a".to_vec()], "{name}");
        assert!(
            e.scan(Some(b"c"), Some(b"b"), false, 10)
                .unwrap()
                .is_empty(),
            "{name}"
        );
        assert!(e.scan(None, None, false, 0).unwrap().is_empty(), "{name}");
    });
}

#[test]
fn deletes_apply_before_puts_in_one_batch() {
    for_each_engine(|name, e| {
        fill(e);
        let mut batch = WriteBatch::new(2);
        batch
            .delete(b"a".to_vec())
            .delete(b"b".to_vec())
            .delete(b"missing".to_vec());
        batch.put(b"b".to_vec(), b"again".to_vec());
        e.write(&batch).unwrap();
        assert_eq!(e.get(b"a").unwrap(), None, "{name}");
        assert_eq!(e.get(b"b").unwrap(), Some(b"again".to_vec()), "{name}");
        assert_eq!(e.applied_index().unwrap(), 2, "{name}");
    });
}

#[test]
fn an_empty_batch_still_records_its_index() {
    for_each_engine(|name, e| {
        e.write(&WriteBatch::new(9)).unwrap();
        assert_eq!(e.applied_index().unwrap(), 9, "{name}");
    });
}

#[test]
fn empty_key_and_empty_value_are_stored() {
    for_each_engine(|name, e| {
        let mut batch = WriteBatch::new(1);
        batch.put(Vec::new(), Vec::new());
        e.write(&batch).unwrap();
        assert_eq!(e.get(b"").unwrap(), Some(Vec::new()), "{name}");
        assert_eq!(
            e.scan(None, None, false, 10).unwrap(),
            vec![kv(b"", b"")],
            "{name}"
        );
    });
}

#[test]
fn spaces_are_separate_keyspaces_written_atomically_together() {
    for_each_engine(|name, e| {
        let mut batch = WriteBatch::new(3);
        batch.put(b"k".to_vec(), b"item".to_vec());
        batch.put_in(Space::Index, b"k".to_vec(), b"entry".to_vec());
        batch.put_in(Space::Index, b"k2".to_vec(), b"entry2".to_vec());
        batch.put_in(Space::Outbox, b"k".to_vec(), b"record".to_vec());
        e.write(&batch).unwrap();
        assert_eq!(e.get(b"k").unwrap(), Some(b"item".to_vec()), "{name}");
        assert_eq!(
            e.get_in(Space::Items, b"k").unwrap(),
            Some(b"item".to_vec()),
            "{name}"
        );
        assert_eq!(
            e.get_in(Space::Index, b"k").unwrap(),
            Some(b"entry".to_vec()),
            "{name}"
        );
        assert_eq!(
            e.get_in(Space::Outbox, b"k").unwrap(),
            Some(b"record".to_vec()),
            "{name}"
        );
        assert_eq!(e.get(b"k2").unwrap(), None, "{name}");
        assert_eq!(
            keys(&e.scan(None, None, false, 10).unwrap()),
            [b"k".to_vec()],
            "{name}"
        );
        assert_eq!(
            keys(&e.scan_in(Space::Index, None, None, true, 10).unwrap()),
            [b"k2".to_vec(), b"k".to_vec()],
            "{name}"
        );
        assert_eq!(
            e.scan_in(Space::Index, Some(b"k1"), Some(b"k3"), false, 10)
                .unwrap(),
            [kv(b"k2", b"entry2")],
            "{name}"
        );
        // Deletes apply per space, before that space's puts.
        let mut batch = WriteBatch::new(4);
        batch.delete_in(Space::Index, b"k".to_vec());
        batch.delete_in(Space::Outbox, b"k".to_vec());
        batch.put_in(Space::Outbox, b"k".to_vec(), b"again".to_vec());
        e.write(&batch).unwrap();
        assert_eq!(e.get_in(Space::Index, b"k").unwrap(), None, "{name}");
        assert_eq!(
            e.get_in(Space::Outbox, b"k").unwrap(),
            Some(b"again".to_vec()),
            "{name}"
        );
        assert_eq!(e.get(b"k").unwrap(), Some(b"item".to_vec()), "{name}");
        assert_eq!(e.applied_index().unwrap(), 4, "{name}");
    });
}

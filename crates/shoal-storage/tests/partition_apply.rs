//! The `apply` state machine: conditional writes, upserts, idempotency, stats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use shoal_storage::{Applied, ApplyError, Command, Partition, PartitionStats};
use shoal_types::Item;
use shoal_types::size::item_size;

fn pk(v: &str) -> Item {
    item(&[("pk", s(v))])
}

/// Runs `body` on a MemEngine partition and on a SQLCipher partition.
fn on_both(body: impl Fn(&Partition)) {
    body(&mem_partition(hash_schema()));
    let dir = tempfile::tempdir().unwrap();
    body(&sql_partition(dir.path(), hash_schema()));
}

#[test]
fn put_then_get_returns_the_item_and_the_old_one_on_overwrite() {
    on_both(|p| {
        let v1 = item(&[("pk", s("a")), ("x", n("1"))]);
        let v2 = item(&[("pk", s("a")), ("y", s("two"))]);
        let r = p.apply(1, &put(v1.clone())).unwrap();
        assert_eq!(
            r,
            Applied {
                old: None,
                new: Some(v1.clone())
            }
        );
        let r = p.apply(2, &put(v2.clone())).unwrap();
        assert_eq!(
            r,
            Applied {
                old: Some(v1),
                new: Some(v2.clone())
            }
        );
        assert_eq!(p.get(&pk("a")).unwrap(), Some(v2));
        assert_eq!(p.get(&pk("b")).unwrap(), None);
        assert_eq!(p.applied_index(), 2);
    });
}

#[test]
fn conditional_put_fails_with_the_existing_item_and_writes_nothing() {
    on_both(|p| {
        let v1 = item(&[("pk", s("a")), ("x", n("1"))]);
        p.apply(1, &put_if(v1.clone(), not_exists("pk"))).unwrap();
        let v2 = item(&[("pk", s("a")), ("x", n("2"))]);
        match p.apply(2, &put_if(v2.clone(), not_exists("pk"))) {
            Err(ApplyError::ConditionalCheckFailed { item }) => assert_eq!(item, Some(v1.clone())),
            other => panic!("expected ConditionalCheckFailed, got {other:?}"),
        }
        assert_eq!(p.get(&pk("a")).unwrap(), Some(v1.clone()));
        assert_eq!(p.applied_index(), 2);
        p.apply(3, &put_if(v2.clone(), eq("x", n("1")))).unwrap();
        assert_eq!(p.get(&pk("a")).unwrap(), Some(v2));
    });
}

#[test]
fn condition_on_an_absent_item_sees_an_empty_item() {
    on_both(|p| {
        match p.apply(1, &put_if(pk("a"), exists("pk"))) {
            Err(ApplyError::ConditionalCheckFailed { item }) => assert_eq!(item, None),
            other => panic!("expected ConditionalCheckFailed, got {other:?}"),
        }
        assert_eq!(p.get(&pk("a")).unwrap(), None);
        assert_eq!(p.stats(), PartitionStats::default());
    });
}

#[test]
fn delete_returns_the_old_item_and_absent_delete_is_a_noop() {
    on_both(|p| {
        let v = item(&[("pk", s("a")), ("x", n("1"))]);
        p.apply(1, &put(v.clone())).unwrap();
        assert_eq!(
            p.apply(2, &delete(pk("a"))).unwrap(),
            Applied {
                old: Some(v),
                new: None
            }
        );
        assert_eq!(p.get(&pk("a")).unwrap(), None);
        assert_eq!(p.apply(3, &delete(pk("a"))).unwrap(), Applied::default());
        assert_eq!(p.applied_index(), 3);
        assert_eq!(p.stats(), PartitionStats::default());
    });
}

#[test]
fn conditional_delete_checks_the_existing_item() {
    on_both(|p| {
        let v = item(&[("pk", s("a")), ("x", n("1"))]);
        p.apply(1, &put(v.clone())).unwrap();
        let cmd = Command::Delete {
            key: pk("a"),
            condition: Some(eq("x", n("2"))),
        };
        assert!(matches!(
            p.apply(2, &cmd),
            Err(ApplyError::ConditionalCheckFailed { item: Some(ref i) }) if *i == v
        ));
        assert_eq!(p.get(&pk("a")).unwrap(), Some(v));
        let cmd = Command::Delete {
            key: pk("a"),
            condition: Some(eq("x", n("1"))),
        };
        p.apply(3, &cmd).unwrap();
        assert_eq!(p.get(&pk("a")).unwrap(), None);
    });
}

#[test]
fn update_of_an_absent_item_upserts_from_the_key() {
    on_both(|p| {
        let cmd = Command::Update {
            key: pk("a"),
            update: set("x", n("5")),
            condition: None,
        };
        let r = p.apply(1, &cmd).unwrap();
        let expected = item(&[("pk", s("a")), ("x", n("5"))]);
        assert_eq!(
            r,
            Applied {
                old: None,
                new: Some(expected.clone())
            }
        );
        assert_eq!(p.get(&pk("a")).unwrap(), Some(expected));
    });
}

#[test]
fn update_modifies_the_existing_item() {
    on_both(|p| {
        p.apply(
            1,
            &put(item(&[("pk", s("a")), ("c", n("1")), ("keep", s("k"))])),
        )
        .unwrap();
        let cmd = Command::Update {
            key: pk("a"),
            update: increment("c", "2"),
            condition: None,
        };
        let r = p.apply(2, &cmd).unwrap();
        let expected = item(&[("pk", s("a")), ("c", n("3")), ("keep", s("k"))]);
        assert_eq!(r.new, Some(expected.clone()));
        assert_eq!(p.get(&pk("a")).unwrap(), Some(expected));
    });
}

#[test]
fn update_condition_is_checked_against_the_old_item_first() {
    on_both(|p| {
        p.apply(1, &put(item(&[("pk", s("a")), ("c", n("1"))])))
            .unwrap();
        // The update would fail at runtime (no attribute `missing`), but the condition fails first.
        let cmd = Command::Update {
            key: pk("a"),
            update: increment("missing", "1"),
            condition: Some(eq("c", n("9"))),
        };
        assert!(matches!(
            p.apply(2, &cmd),
            Err(ApplyError::ConditionalCheckFailed { .. })
        ));
    });
}

#[test]
fn update_runtime_error_is_a_validation_error_and_writes_nothing() {
    on_both(|p| {
        let cmd = Command::Update {
            key: pk("a"),
            update: increment("missing", "1"),
            condition: None,
        };
        match p.apply(1, &cmd) {
            Err(ApplyError::Validation(msg)) => assert!(!msg.is_empty()),
            other => panic!("expected Validation, got {other:?}"),
        }
        assert_eq!(p.get(&pk("a")).unwrap(), None);
        assert_eq!(p.applied_index(), 1);
    });
}

#[test]
fn update_of_a_key_attribute_is_rejected() {
    on_both(|p| {
        let cmd = Command::Update {
            key: pk("a"),
            update: set("pk", s("b")),
            condition: None,
        };
        match p.apply(1, &cmd) {
            Err(ApplyError::Validation(msg)) => assert_eq!(
                msg,
                "One or more parameter values were invalid: Cannot update attribute pk. \
                 This attribute is part of the key"
            ),
            other => panic!("expected Validation, got {other:?}"),
        }
    });
}

#[test]
fn update_growing_the_item_over_400_kb_is_rejected_before_writing() {
    on_both(|p| {
        let big = "x".repeat(300 * 1024);
        p.apply(1, &put(item(&[("pk", s("a")), ("a", s(&big))])))
            .unwrap();
        let cmd = Command::Update {
            key: pk("a"),
            update: set("b", s(&big)),
            condition: None,
        };
        match p.apply(2, &cmd) {
            Err(ApplyError::Validation(msg)) => {
                assert_eq!(
                    msg,
                    "Item size to update has exceeded the maximum allowed size"
                )
            }
            other => panic!("expected Validation, got {other:?}"),
        }
        assert_eq!(p.get(&pk("a")).unwrap().unwrap().len(), 2);
    });
}

#[test]
fn reapplying_an_applied_index_is_skipped() {
    on_both(|p| {
        p.apply(1, &put(item(&[("pk", s("a")), ("v", n("1"))])))
            .unwrap();
        p.apply(2, &put(item(&[("pk", s("a")), ("v", n("2"))])))
            .unwrap();
        // Index 1 again (e.g. a replayed log entry) must not roll the item back.
        assert_eq!(
            p.apply(1, &put(item(&[("pk", s("a")), ("v", n("1"))])))
                .unwrap(),
            Applied::default()
        );
        assert_eq!(p.apply(2, &delete(pk("a"))).unwrap(), Applied::default());
        assert_eq!(
            p.get(&pk("a")).unwrap(),
            Some(item(&[("pk", s("a")), ("v", n("2"))]))
        );
        assert_eq!(p.applied_index(), 2);
        assert_eq!(p.stats().item_count, 1);
    });
}

#[test]
fn a_put_without_its_key_attribute_is_a_validation_error() {
    on_both(|p| {
        assert!(matches!(
            p.apply(1, &put(item(&[("other", s("a"))]))),
            Err(ApplyError::Validation(_))
        ));
        assert!(matches!(
            p.apply(2, &put(item(&[("pk", n("1"))]))),
            Err(ApplyError::Validation(_))
        ));
        assert_eq!(p.stats().item_count, 0);
    });
}

#[test]
fn stats_are_exact_after_puts_overwrites_updates_and_deletes() {
    on_both(|p| {
        let mut index = 0;
        let mut next = || {
            index += 1;
            index
        };
        let a1 = item(&[("pk", s("a")), ("x", s("1234567890"))]);
        let b1 = item(&[("pk", s("b")), ("x", n("1"))]);
        p.apply(next(), &put(a1.clone())).unwrap();
        p.apply(next(), &put(b1.clone())).unwrap();
        assert_eq!(
            p.stats(),
            PartitionStats {
                item_count: 2,
                size_bytes: (item_size(&a1) + item_size(&b1)) as u64
            }
        );
        let a2 = item(&[("pk", s("a")), ("y", s("z"))]);
        p.apply(next(), &put(a2.clone())).unwrap();
        let cmd = Command::Update {
            key: pk("b"),
            update: set("big", s(&"q".repeat(1000))),
            condition: None,
        };
        let b2 = p.apply(next(), &cmd).unwrap().new.unwrap();
        assert_eq!(
            p.stats(),
            PartitionStats {
                item_count: 2,
                size_bytes: (item_size(&a2) + item_size(&b2)) as u64
            }
        );
        p.apply(next(), &delete(pk("a"))).unwrap();
        p.apply(next(), &delete(pk("a"))).unwrap();
        assert_eq!(
            p.stats(),
            PartitionStats {
                item_count: 1,
                size_bytes: item_size(&b2) as u64
            }
        );
        p.apply(next(), &delete(pk("b"))).unwrap();
        assert_eq!(p.stats(), PartitionStats::default());
    });
}

#[test]
fn stats_and_applied_index_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let a = item(&[("pk", s("a")), ("x", s("hello"))]);
    let (stats, applied) = {
        let p = sql_partition(dir.path(), hash_schema());
        p.apply(10, &put(a.clone())).unwrap();
        p.apply(11, &put(item(&[("pk", s("b"))]))).unwrap();
        p.apply(12, &delete(pk("b"))).unwrap();
        (p.stats(), p.applied_index())
    };
    assert_eq!(stats.item_count, 1);
    let p = sql_partition(dir.path(), hash_schema());
    assert_eq!(p.stats(), stats);
    assert_eq!(p.applied_index(), applied);
    assert_eq!(p.get(&pk("a")).unwrap(), Some(a));
    // The replayed index is skipped after a reopen too.
    assert_eq!(
        p.apply(11, &put(item(&[("pk", s("b"))]))).unwrap(),
        Applied::default()
    );
    assert_eq!(p.get(&pk("b")).unwrap(), None);
}

#[test]
fn get_with_a_wrong_key_type_is_invalid_key() {
    let p = mem_partition(hash_schema());
    assert!(matches!(
        p.get(&item(&[("pk", n("1"))])),
        Err(shoal_storage::StorageError::InvalidKey(_))
    ));
}

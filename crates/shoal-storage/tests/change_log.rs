//! The change log of a stream: one record per change in the same apply (none for a change that
//! changes nothing or a refused write), images per view type, reads by position with paging,
//! shards closed by a split with their children named, and trimming.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shoal_expr::{Condition, DocPath};
use shoal_storage::{
    ChangeEvent, ChangeReadError, Command, MemEngine, Partition, RecordsFrom, SplitChild,
    StreamSetting, StreamViewType, TxOp, TxPrimary,
};
use shoal_types::{AttributeValue, Item};

mod common;
use common::{hash_schema, mem_partition};

fn key(k: &str) -> Item {
    [("pk".to_string(), AttributeValue::S(k.into()))]
        .into_iter()
        .collect()
}

fn item(k: &str, v: &str) -> Item {
    let mut i = key(k);
    i.insert("v".into(), AttributeValue::S(v.into()));
    i
}

fn partition(view: StreamViewType) -> Partition {
    let p = mem_partition(hash_schema());
    // Through the log, at index 1: the tests' writes start at 2.
    let setting = Some(StreamSetting {
        stream: 1,
        view,
        partition: 7,
    });
    let change = p.stream_change(setting).expect("a change");
    p.apply(1, &change).unwrap();
    assert_eq!(p.stream_setting(), setting);
    assert!(p.stream_change(setting).is_none());
    p
}

fn put(p: &Partition, index: u64, it: Item) {
    p.apply(
        index,
        &Command::Put {
            item: it,
            condition: None,
        },
    )
    .unwrap();
}

#[test]
fn every_change_is_one_record_with_the_images_of_its_view() {
    let p = partition(StreamViewType::NewAndOldImages);
    put(&p, 2, item("a", "1"));
    put(&p, 3, item("a", "2"));
    // The same item again changes nothing: no record.
    put(&p, 4, item("a", "2"));
    // A refused write: no record.
    let refused = p.apply(
        5,
        &Command::Put {
            item: item("a", "3"),
            condition: Some(Condition::AttributeNotExists(DocPath::attr("pk"))),
        },
    );
    assert!(refused.is_err());
    p.apply(
        6,
        &Command::Delete {
            key: key("a"),
            condition: None,
        },
    )
    .unwrap();
    // Deleting what is absent: no record.
    p.apply(
        7,
        &Command::Delete {
            key: key("a"),
            condition: None,
        },
    )
    .unwrap();
    p.apply(
        8,
        &Command::Expire {
            key: key("b"),
            condition: None,
        },
    )
    .unwrap();
    put(&p, 9, item("b", "1"));
    p.apply(
        10,
        &Command::Expire {
            key: key("b"),
            condition: None,
        },
    )
    .unwrap();
    let read = p.read_changes(1, 0, RecordsFrom::TrimHorizon, 100).unwrap();
    let seen: Vec<(u64, ChangeEvent, bool)> = read
        .records
        .iter()
        .map(|r| (r.seq, r.event, r.by_service))
        .collect();
    assert_eq!(
        seen,
        [
            (2, ChangeEvent::Insert, false),
            (3, ChangeEvent::Modify, false),
            (6, ChangeEvent::Remove, false),
            (9, ChangeEvent::Insert, false),
            (10, ChangeEvent::Remove, true),
        ]
    );
    let modify = &read.records[1];
    assert_eq!(modify.keys, key("a"));
    assert_eq!(modify.old, Some(item("a", "1")));
    assert_eq!(modify.new, Some(item("a", "2")));
    assert!(modify.size_bytes > 0);
    assert!(modify.created_ms > 1_700_000_000_000);
    assert_eq!(read.next, Some(10));
}

#[test]
fn view_types_keep_only_their_images() {
    for (view, old, new) in [
        (StreamViewType::KeysOnly, false, false),
        (StreamViewType::NewImage, false, true),
        (StreamViewType::OldImage, true, false),
        (StreamViewType::NewAndOldImages, true, true),
    ] {
        let p = partition(view);
        put(&p, 2, item("a", "1"));
        put(&p, 3, item("a", "2"));
        let r = p.read_changes(1, 0, RecordsFrom::At(3), 10).unwrap();
        assert_eq!(r.records.len(), 1, "{view:?}");
        assert_eq!(r.records[0].old.is_some(), old, "{view:?}");
        assert_eq!(r.records[0].new.is_some(), new, "{view:?}");
        assert_eq!(r.records[0].keys, key("a"));
    }
}

#[test]
fn reads_page_and_start_where_asked() {
    let p = partition(StreamViewType::KeysOnly);
    for i in 1..=10 {
        put(&p, i + 1, item(&format!("k{i}"), "x"));
    }
    let first = p.read_changes(1, 0, RecordsFrom::TrimHorizon, 4).unwrap();
    assert_eq!(
        first.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [2, 3, 4, 5]
    );
    let next = first.next.unwrap();
    let second = p.read_changes(1, 0, RecordsFrom::After(next), 4).unwrap();
    assert_eq!(
        second.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [6, 7, 8, 9]
    );
    let at = p.read_changes(1, 0, RecordsFrom::At(8), 2).unwrap();
    assert_eq!(at.records.iter().map(|r| r.seq).collect::<Vec<_>>(), [8, 9]);
    // LATEST: nothing written so far, then what comes after.
    let latest = p.read_changes(1, 0, RecordsFrom::Latest, 100).unwrap();
    assert!(latest.records.is_empty());
    put(&p, 12, item("late", "x"));
    let after = p
        .read_changes(1, 0, RecordsFrom::After(latest.next.unwrap()), 100)
        .unwrap();
    assert_eq!(
        after.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [12]
    );
    // An open shard with nothing new keeps its position.
    let idle = p.read_changes(1, 0, RecordsFrom::After(12), 100).unwrap();
    assert_eq!(idle.next, Some(12));
    // Another stream, another epoch: no such shard.
    assert!(matches!(
        p.read_changes(2, 0, RecordsFrom::TrimHorizon, 1),
        Err(ChangeReadError::UnknownShard)
    ));
    assert!(matches!(
        p.read_changes(1, 5, RecordsFrom::TrimHorizon, 1),
        Err(ChangeReadError::UnknownShard)
    ));
}

#[test]
fn transaction_commits_write_records() {
    let p = partition(StreamViewType::NewImage);
    p.apply(
        2,
        &Command::TxPrepare {
            txid: [1; 16],
            ts: 1,
            primary: TxPrimary {
                table: "t".into(),
                key: key("tx"),
            },
            token: None,
            op: TxOp::Put {
                item: item("tx", "1"),
                condition: None,
            },
        },
    )
    .unwrap();
    // Prepared only: no record yet.
    assert!(
        p.read_changes(1, 0, RecordsFrom::TrimHorizon, 10)
            .unwrap()
            .records
            .is_empty()
    );
    p.apply(
        3,
        &Command::TxResolve {
            txid: [1; 16],
            key: key("tx"),
            commit: true,
        },
    )
    .unwrap();
    let r = p.read_changes(1, 0, RecordsFrom::TrimHorizon, 10).unwrap();
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].event, ChangeEvent::Insert);
    assert_eq!(r.records[0].new, Some(item("tx", "1")));
}

#[test]
fn a_split_closes_the_shard_and_names_its_children() {
    let p = partition(StreamViewType::KeysOnly);
    for i in 1..=5 {
        put(&p, i + 1, item(&format!("k{i}"), "x"));
    }
    let mid = u64::MAX / 2;
    let child = SplitChild {
        child: 9,
        start: mid + 1,
        end: u64::MAX,
        epoch: 2,
    };
    p.apply(
        7,
        &Command::Split {
            start: 0,
            end: mid,
            epoch: 2,
            child,
        },
    )
    .unwrap();
    let shards = p.change_shards(1).unwrap();
    assert_eq!(shards.len(), 2, "{shards:?}");
    let closed = shards[0].closed.as_ref().unwrap();
    assert_eq!(shards[0].epoch, 0);
    assert_eq!(closed.last_seq, 6);
    assert_eq!(closed.children, [(7, 2), (9, 2)]);
    assert_eq!(shards[1].epoch, 2);
    assert!(shards[1].closed.is_none());
    // The parent reads to its end, then says so.
    let all = p.read_changes(1, 0, RecordsFrom::TrimHorizon, 100).unwrap();
    assert_eq!(all.records.len(), 5);
    assert_eq!(all.next, None);
    let part = p.read_changes(1, 0, RecordsFrom::TrimHorizon, 3).unwrap();
    assert_eq!(part.next, Some(4));
    // The child file holds no records of the parent.
    let engine = MemEngine::new();
    p.build_child(&child, &engine).unwrap();
    let c = Partition::new(Box::new(engine), hash_schema()).unwrap();
    // The child writes records for the same stream from its first entry, as itself.
    assert_eq!(
        c.stream_setting(),
        Some(StreamSetting {
            stream: 1,
            view: StreamViewType::KeysOnly,
            partition: 9,
        })
    );
    assert!(matches!(
        c.read_changes(1, 0, RecordsFrom::TrimHorizon, 10),
        Err(ChangeReadError::UnknownShard)
    ));
    // Later writes go to the new shard.
    let lower = (0..100)
        .map(|i| format!("n{i}"))
        .find(|k| shoal_types::key::partition_hash(&AttributeValue::S(k.clone())) <= mid)
        .unwrap();
    put(&p, 8, item(&lower, "x"));
    let new = p.read_changes(1, 2, RecordsFrom::TrimHorizon, 10).unwrap();
    assert_eq!(new.records.iter().map(|r| r.seq).collect::<Vec<_>>(), [8]);
}

#[test]
fn trimming_drops_old_records_and_reports_them() {
    let p = partition(StreamViewType::KeysOnly);
    for i in 1..=5 {
        put(&p, i + 1, item(&format!("k{i}"), "x"));
    }
    // Nothing is older than an hour ago.
    let hour_ago = shoal_storage_now() - 3_600_000;
    assert_eq!(p.trim_changes(hour_ago, &|_| true).unwrap(), 0);
    // Everything is older than an hour from now.
    let later = shoal_storage_now() + 3_600_000;
    assert_eq!(p.trim_changes(later, &|_| true).unwrap(), 5);
    put(&p, 7, item("k6", "x"));
    let r = p.read_changes(1, 0, RecordsFrom::TrimHorizon, 10).unwrap();
    assert_eq!(r.records.iter().map(|r| r.seq).collect::<Vec<_>>(), [7]);
    assert!(matches!(
        p.read_changes(1, 0, RecordsFrom::At(3), 10),
        Err(ChangeReadError::Trimmed(_))
    ));
    assert_eq!(p.change_shards(1).unwrap()[0].trimmed, Some(6));
    // A stream no longer kept loses everything.
    p.trim_changes(0, &|_| false).unwrap();
    assert!(
        p.change_shards(1)
            .unwrap()
            .iter()
            .all(|s| s.first_seq.is_none())
    );
}

fn shoal_storage_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn a_stream_change_applies_at_its_log_entry_on_every_replica() {
    let p = partition(StreamViewType::KeysOnly);
    put(&p, 2, item("a", "1"));
    // Off at entry 3: entry 4 has no record.
    let off = p.stream_change(None).unwrap();
    p.apply(3, &off).unwrap();
    put(&p, 4, item("a", "2"));
    // A new stream at entry 5, recorded under its own id.
    let second = Some(StreamSetting {
        stream: 2,
        view: StreamViewType::NewImage,
        partition: 7,
    });
    let on = p.stream_change(second).unwrap();
    p.apply(5, &on).unwrap();
    put(&p, 6, item("a", "3"));
    let first = p.read_changes(1, 0, RecordsFrom::TrimHorizon, 10).unwrap();
    assert_eq!(first.records.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
    let new = p.read_changes(2, 0, RecordsFrom::TrimHorizon, 10).unwrap();
    assert_eq!(new.records.iter().map(|r| r.seq).collect::<Vec<_>>(), [6]);
    assert_eq!(new.records[0].new, Some(item("a", "3")));
    // The commands cross the wire as they are.
    for cmd in [off, on] {
        let mut bytes = Vec::new();
        shoal_storage::wire::encode_command(&cmd, &mut bytes);
        let back = shoal_storage::wire::decode_command(&bytes).unwrap();
        assert_eq!(format!("{back:?}"), format!("{cmd:?}"));
    }
    // Only a partition that never applied anything takes an initial stream.
    p.begin_stream(None).unwrap();
    p.begin_stream(Some(StreamSetting {
        stream: 9,
        view: StreamViewType::KeysOnly,
        partition: 7,
    }))
    .unwrap();
    assert_eq!(p.stream_setting(), second);
    let fresh = mem_partition(hash_schema());
    fresh.begin_stream(second).unwrap();
    assert_eq!(fresh.stream_setting(), second);
    put(&fresh, 1, item("b", "1"));
    assert_eq!(
        fresh
            .read_changes(2, 0, RecordsFrom::TrimHorizon, 10)
            .unwrap()
            .records
            .len(),
        1
    );
}

//! Partition snapshots: a replica restored from another's snapshot answers every read (get,
//! query, scan, local index query/scan, stats, item collection sizes, outbox, applied index)
//! exactly as the source, keeps applying commands the same way, and a malformed snapshot
//! changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pk_sk as key;
use common::*;
use shoal_storage::{Command, Partition, QuerySpec, ScanSpec, StorageError};
use shoal_types::ScalarType;
use shoal_types::index::{IndexDef, IndexKind, IndexStatus, Projection, ProjectionType};
use shoal_types::key::{KeyAttr, KeySchema};

const LSI: u32 = 3;
const GSI: u32 = 7;
const PKS: u8 = 12;

/// LSI 3 `by_v`: sort key `v` (N), projecting `x`; GSI 7 `by_g`: `g` (S) / `v` (N).
fn indexes() -> Vec<IndexDef> {
    let lsi = IndexDef {
        id: LSI,
        name: "by_v".into(),
        kind: IndexKind::Local,
        key_schema: KeySchema {
            hash: KeyAttr {
                name: "pk".into(),
                ty: ScalarType::S,
            },
            range: Some(KeyAttr {
                name: "v".into(),
                ty: ScalarType::N,
            }),
        }
        .into(),
        projection: Projection {
            kind: ProjectionType::Include,
            non_key_attributes: vec!["x".into()],
        },
        status: IndexStatus::Active,
        backfilling: false,
    };
    let gsi = IndexDef {
        id: GSI,
        name: "by_g".into(),
        kind: IndexKind::Global,
        key_schema: KeySchema {
            hash: KeyAttr {
                name: "g".into(),
                ty: ScalarType::S,
            },
            range: Some(KeyAttr {
                name: "v".into(),
                ty: ScalarType::N,
            }),
        }
        .into(),
        ..lsi.clone()
    };
    vec![lsi, gsi]
}

fn schema() -> KeySchema {
    range_schema(ScalarType::N)
}

fn full_item(pk: u8, sk: u8, v: u32) -> shoal_types::Item {
    let mut it = key(pk, sk);
    it.insert("v".into(), n(&v.to_string()));
    if !sk.is_multiple_of(3) {
        it.insert("g".into(), s(&format!("g{}", sk % 5)));
    }
    it.insert("x".into(), s(&"x".repeat(usize::from(sk % 7))));
    it.insert("y".into(), n(&sk.to_string()));
    it
}

/// A source partition with ~1200 items (more than one export chunk), LSI entries, GSI outbox
/// records (partly trimmed), deletes, updates and a trailing no-op index.
fn source(p: &Partition) {
    p.set_indexes(indexes()).unwrap();
    let mut index = 0u64;
    let mut cmds = Vec::new();
    for pk in 0..PKS {
        for sk in 0..100u8 {
            cmds.push(put(full_item(pk, sk, u32::from(sk) * 7 % 50)));
        }
    }
    for chunk in cmds.chunks(64) {
        for r in p.apply_batch(index + 1, chunk) {
            r.unwrap();
        }
        index += chunk.len() as u64;
    }
    for pk in 0..PKS {
        index += 1;
        p.apply(index, &delete(key(pk, 5))).unwrap();
        index += 1;
        p.apply(
            index,
            &Command::Update {
                key: key(pk, 6),
                update: increment("v", "1000"),
                condition: None,
            },
        )
        .unwrap();
    }
    p.trim_outbox(100).unwrap();
    // A no-op (failed condition): the applied index moves without an engine write.
    index += 1;
    assert!(
        p.apply(index, &put_if(key(0, 1), not_exists("pk")))
            .is_err()
    );
    assert_eq!(p.applied_index(), index);
    assert!(p.outbox(0, 1).unwrap()[0].seq > 100);
    assert!(p.index_stats(LSI).item_count > 1000);
    assert!(p.last_outbox_seq() > 800);
}

fn scan_spec(hash_start: u64, hash_end: u64) -> ScanSpec<'static> {
    ScanSpec {
        hash_start,
        hash_end,
        ..scan_all()
    }
}

/// Every read the API relies on gives the same answer on both partitions.
fn assert_same(a: &Partition, b: &Partition) {
    assert_eq!(a.applied_index(), b.applied_index());
    assert_eq!(a.stats(), b.stats());
    assert_eq!(a.index_stats(LSI), b.index_stats(LSI));
    assert_eq!(a.last_outbox_seq(), b.last_outbox_seq());
    assert_eq!(
        a.outbox(0, usize::MAX).unwrap(),
        b.outbox(0, usize::MAX).unwrap()
    );
    let all = a.scan(&scan_all()).unwrap();
    assert_eq!(all, b.scan(&scan_all()).unwrap());
    assert_eq!(all.items.len() as u64, a.stats().item_count);
    let half = u64::MAX / 2;
    assert_eq!(
        a.scan(&scan_spec(0, half)).unwrap(),
        b.scan(&scan_spec(0, half)).unwrap()
    );
    assert_eq!(
        a.scan_index(LSI, &scan_all()).unwrap(),
        b.scan_index(LSI, &scan_all()).unwrap()
    );
    for pk in 0..PKS + 1 {
        let pk_value = s(&format!("p{pk}"));
        for forward in [true, false] {
            let spec = QuerySpec {
                partition_key: &pk_value,
                sort_prefix: &[],
                sort: None,
                forward,
                exclusive_start: None,
                limit: Some(37),
                byte_limit: usize::MAX,
                filter: None,
            };
            assert_eq!(a.query(&spec).unwrap(), b.query(&spec).unwrap());
            assert_eq!(
                a.query_index(LSI, &spec).unwrap(),
                b.query_index(LSI, &spec).unwrap()
            );
        }
        assert_eq!(
            a.item_collection_size(&pk_value).unwrap(),
            b.item_collection_size(&pk_value).unwrap()
        );
        for sk in [0u8, 5, 6, 50, 99, 100] {
            assert_eq!(a.get(&key(pk, sk)).unwrap(), b.get(&key(pk, sk)).unwrap());
        }
    }
}

/// The same new commands give the same results and leave the same state on both.
fn assert_same_future(a: &Partition, b: &Partition) {
    let next = a.applied_index() + 1;
    let cmds = vec![
        put(full_item(1, 200, 3)),
        delete(key(2, 7)),
        Command::Update {
            key: key(3, 8),
            update: set("g", s("changed")),
            condition: Some(exists("pk")),
        },
        put_if(key(4, 9), not_exists("pk")),
    ];
    let ra = a.apply_batch(next, &cmds);
    let rb = b.apply_batch(next, &cmds);
    assert_eq!(format!("{ra:?}"), format!("{rb:?}"));
    assert_same(a, b);
}

fn populated_source() -> Partition {
    let p = mem_partition(schema());
    source(&p);
    p
}

#[test]
fn restores_into_an_empty_mem_partition() {
    let src = populated_source();
    let snap = src.export_snapshot().unwrap();

    let dst = mem_partition(schema());
    dst.set_indexes(indexes()).unwrap();
    assert_eq!(dst.import_snapshot(&snap).unwrap(), src.applied_index());
    assert_same(&src, &dst);
    // Byte-for-byte the same content.
    assert_eq!(dst.export_snapshot().unwrap(), snap);
    assert_same_future(&src, &dst);
}

#[test]
fn indexes_set_after_the_import_load_the_restored_stats() {
    let src = populated_source();
    let snap = src.export_snapshot().unwrap();
    let dst = mem_partition(schema());
    dst.import_snapshot(&snap).unwrap();
    dst.set_indexes(indexes()).unwrap();
    assert_same(&src, &dst);
    assert_same_future(&src, &dst);
}

#[test]
fn replaces_everything_in_a_sqlcipher_partition_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let src = populated_source();
    let snap = src.export_snapshot().unwrap();
    {
        // A replica with other data: different items, more outbox records, a higher index.
        let dst = sql_partition(dir.path(), schema());
        dst.set_indexes(indexes()).unwrap();
        let mut cmds = Vec::new();
        for pk in 0..PKS + 1 {
            for sk in 50..160u8 {
                cmds.push(put(full_item(pk, sk, u32::from(sk))));
            }
        }
        for r in dst.apply_batch(5000, &cmds) {
            r.unwrap();
        }
        assert_ne!(dst.stats(), src.stats());
        assert!(dst.applied_index() > src.applied_index());

        assert_eq!(dst.import_snapshot(&snap).unwrap(), src.applied_index());
        assert_same(&src, &dst);
        assert_eq!(dst.export_snapshot().unwrap(), snap);
        assert!(dst.get(&key(PKS, 120)).unwrap().is_none());
    }
    // Reopened from the file: the same state, including the metadata rows.
    let dst = sql_partition(dir.path(), schema());
    dst.set_indexes(indexes()).unwrap();
    assert_same(&src, &dst);
    assert_same_future(&src, &dst);
}

#[test]
fn an_empty_partition_snapshot_empties_the_target() {
    let empty = mem_partition(schema());
    empty.set_indexes(indexes()).unwrap();
    let snap = empty.export_snapshot().unwrap();
    let dst = populated_source();
    assert_eq!(dst.import_snapshot(&snap).unwrap(), 0);
    assert_same(&empty, &dst);
    assert!(dst.scan(&scan_all()).unwrap().items.is_empty());
    assert!(dst.outbox(0, usize::MAX).unwrap().is_empty());
}

fn assert_rejected(dst: &Partition, bad: &[u8], before: &[u8], what: &str) {
    match dst.import_snapshot(bad) {
        Err(StorageError::Corrupt { .. }) => {}
        other => panic!("{what}: expected a corrupt-data error, got {other:?}"),
    }
    assert_eq!(
        dst.export_snapshot().unwrap(),
        before,
        "{what}: target changed"
    );
}

#[test]
fn malformed_snapshots_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = populated_source();
    let snap = src.export_snapshot().unwrap();

    let dst = sql_partition(dir.path(), schema());
    dst.set_indexes(indexes()).unwrap();
    for r in dst.apply_batch(1, &[put(full_item(1, 1, 1)), put(full_item(2, 2, 2))]) {
        r.unwrap();
    }
    let before = dst.export_snapshot().unwrap();
    let (stats, applied) = (dst.stats(), dst.applied_index());

    let mut cuts: Vec<usize> = (0..40).collect();
    cuts.extend([
        snap.len() / 3,
        snap.len() / 2,
        snap.len() - 9,
        snap.len() - 1,
    ]);
    for cut in cuts {
        assert_rejected(&dst, &snap[..cut], &before, &format!("truncated at {cut}"));
    }
    for at in [0, 5, 20, snap.len() / 2, snap.len() - 3] {
        let mut bad = snap.clone();
        bad[at] ^= 0x40;
        assert_rejected(&dst, &bad, &before, &format!("byte {at} flipped"));
    }
    let mut longer = snap.clone();
    longer.push(0);
    assert_rejected(&dst, &longer, &before, "trailing byte");
    assert_rejected(&dst, b"garbage", &before, "garbage");
    assert_eq!((dst.stats(), dst.applied_index()), (stats, applied));
    // The intact snapshot still imports.
    dst.import_snapshot(&snap).unwrap();
    assert_same(&src, &dst);
}

/// Streams `view` in chunks of about `max_bytes` into a staging engine of `dst` and installs it;
/// returns how many chunks it took.
/// The snapshot's applied index is the partition's (a no-op entry moves it without an engine
/// write), as Raft gives it to the node's restore.
fn stream_into(
    view: &dyn shoal_storage::ReadView,
    applied: u64,
    dst: &Partition,
    max_bytes: usize,
) -> usize {
    let staged = dst.stage().unwrap();
    let mut at = Some(shoal_storage::SnapshotPosition::start());
    let mut chunks = 0;
    while let Some(pos) = at {
        // Positions round-trip through their encoding, as they do over the network.
        let pos = shoal_storage::SnapshotPosition::decode(&pos.encode()).unwrap();
        let chunk = shoal_storage::read_chunk(view, &pos, max_bytes).unwrap();
        shoal_storage::write_chunk(staged.as_ref(), &chunk.data).unwrap();
        chunks += 1;
        at = chunk.next;
    }
    dst.install(staged, applied).unwrap();
    chunks
}

#[test]
fn a_streamed_snapshot_is_the_view_not_the_writes_after_it() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let src = sql_partition(dirs.0.path(), schema());
    source(&src);
    let view = src.snapshot_view().unwrap();
    let applied = src.applied_index();
    let expected = src.export_snapshot().unwrap();
    let at_view = populated_source();
    // Writes after the view are not in the stream.
    let next = src.applied_index() + 1;
    for r in src.apply_batch(next, &[put(full_item(1, 222, 1)), delete(key(2, 9))]) {
        r.unwrap();
    }
    {
        let dst = sql_partition(dirs.1.path(), schema());
        dst.set_indexes(indexes()).unwrap();
        for r in dst.apply_batch(9000, &[put(full_item(9, 9, 9))]) {
            r.unwrap();
        }
        let chunks = stream_into(view.as_ref(), applied, &dst, 4096);
        assert!(chunks > 20, "only {chunks} chunks");
        assert!(
            dst.export_snapshot().unwrap() == expected,
            "not the view's content"
        );
        assert_same(&at_view, &dst);
        assert!(dst.get(&key(1, 222)).unwrap().is_none());
    }
    // The staged file replaced the replica's file: it survives a reopen.
    let dst = sql_partition(dirs.1.path(), schema());
    dst.set_indexes(indexes()).unwrap();
    assert!(
        dst.export_snapshot().unwrap() == expected,
        "reopened: not the view's content"
    );
    assert_same_future(&at_view, &dst);
    let left: Vec<_> = std::fs::read_dir(dirs.1.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".staging"))
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "staging files left: {left:?}");
}

#[test]
fn streams_between_mem_partitions_in_one_chunk_or_many() {
    let src = populated_source();
    let expected = src.export_snapshot().unwrap();
    for max_bytes in [1, 100_000, usize::MAX] {
        let dst = mem_partition(schema());
        dst.set_indexes(indexes()).unwrap();
        let view = src.snapshot_view().unwrap();
        stream_into(view.as_ref(), src.applied_index(), &dst, max_bytes);
        assert!(
            dst.export_snapshot().unwrap() == expected,
            "max_bytes {max_bytes}"
        );
        assert_same(&src, &dst);
    }
}

#[test]
fn a_damaged_chunk_writes_nothing() {
    let src = populated_source();
    let view = src.snapshot_view().unwrap();
    let chunk = shoal_storage::read_chunk(
        view.as_ref(),
        &shoal_storage::SnapshotPosition::start(),
        2048,
    )
    .unwrap();
    let dst = mem_partition(schema());
    let staged = dst.stage().unwrap();
    let mut bad = chunk.data.clone();
    bad[10] ^= 1;
    assert!(shoal_storage::write_chunk(staged.as_ref(), &bad).is_err());
    assert!(shoal_storage::write_chunk(staged.as_ref(), &chunk.data[..5]).is_err());
    assert!(
        staged
            .scan_in(shoal_storage::Space::Items, None, None, false, 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn replacing_or_rekeying_the_file_closes_its_views() {
    let dir = tempfile::tempdir().unwrap();
    let src = sql_partition(dir.path(), schema());
    source(&src);
    let view = src.snapshot_view().unwrap();
    src.rekey(&[9; 32]).unwrap();
    let err = shoal_storage::read_chunk(
        view.as_ref(),
        &shoal_storage::SnapshotPosition::start(),
        4096,
    );
    assert!(err.is_err());
}

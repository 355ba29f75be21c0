//! Global secondary indexes: outbox records written with the items, shipped in order to an
//! `IndexPartition` (idempotently, in any chunking, with replays), and the backfill of a new
//! index interleaved with writes all end in exactly the entries of the items.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::pk_sk as key;
use common::*;
use proptest::prelude::*;
use shoal_expr::{DocPath, SortKeyCondition, Update};
use shoal_storage::{
    Command, Durability, IndexPartition, MemEngine, Partition, PartitionStats, QuerySpec, ScanSpec,
    SqlCipherEngine, entry_key_hash,
};
use shoal_types::index::{IndexDef, IndexKind, IndexStatus, Projection, ProjectionType};
use shoal_types::key::{KeyAttr, KeySchema, partition_hash};
use shoal_types::size::item_size;
use shoal_types::{AttributeValue, Item, ScalarType};

const SOURCE: u64 = 1;

/// Table: `pk` (S), `sk` (N).
fn table() -> KeySchema {
    range_schema(ScalarType::N)
}

/// GSI 7 `by_g`: `g` (S) / `v` (N), projecting `x`.
fn gsi(status: IndexStatus) -> IndexDef {
    IndexDef {
        id: 7,
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
        projection: Projection {
            kind: ProjectionType::Include,
            non_key_attributes: vec!["x".into()],
        },
        status,
        backfilling: status == IndexStatus::Creating,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        pk: u8,
        sk: u8,
        g: Option<u8>,
        v: Option<i8>,
        x: u8,
    },
    Delete {
        pk: u8,
        sk: u8,
    },
    SetG {
        pk: u8,
        sk: u8,
        g: u8,
    },
    SetY {
        pk: u8,
        sk: u8,
        y: u8,
    },
    RemoveV {
        pk: u8,
        sk: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let pk = 0u8..4;
    let sk = 0u8..4;
    prop_oneof![
        4 => (pk.clone(), sk.clone(), proptest::option::of(0u8..3), proptest::option::of(-2i8..3), any::<u8>())
            .prop_map(|(pk, sk, g, v, x)| Op::Put { pk, sk, g, v, x }),
        1 => (pk.clone(), sk.clone()).prop_map(|(pk, sk)| Op::Delete { pk, sk }),
        2 => (pk.clone(), sk.clone(), 0u8..3).prop_map(|(pk, sk, g)| Op::SetG { pk, sk, g }),
        1 => (pk.clone(), sk.clone(), any::<u8>()).prop_map(|(pk, sk, y)| Op::SetY { pk, sk, y }),
        1 => (pk, sk).prop_map(|(pk, sk)| Op::RemoveV { pk, sk }),
    ]
}

fn command(o: &Op, model: &mut BTreeMap<(u8, u8), Item>) -> Command {
    let update = |model: &mut BTreeMap<(u8, u8), Item>, pk, sk, f: &dyn Fn(&mut Item)| {
        f(model.entry((pk, sk)).or_insert_with(|| key(pk, sk)));
    };
    match *o {
        Op::Put { pk, sk, g, v, x } => {
            let mut it = key(pk, sk);
            if let Some(g) = g {
                it.insert("g".into(), s(&format!("g{g}")));
            }
            if let Some(v) = v {
                it.insert("v".into(), n(&v.to_string()));
            }
            it.insert("x".into(), s(&"x".repeat(usize::from(x % 30))));
            model.insert((pk, sk), it.clone());
            put(it)
        }
        Op::Delete { pk, sk } => {
            model.remove(&(pk, sk));
            delete(key(pk, sk))
        }
        Op::SetG { pk, sk, g } => {
            let gv = s(&format!("g{g}"));
            update(model, pk, sk, &|it| {
                it.insert("g".into(), gv.clone());
            });
            Command::Update {
                key: key(pk, sk),
                update: set("g", gv),
                condition: None,
            }
        }
        Op::SetY { pk, sk, y } => {
            // `y` is not projected: the entry does not change, no record is needed.
            let yv = n(&y.to_string());
            update(model, pk, sk, &|it| {
                it.insert("y".into(), yv.clone());
            });
            Command::Update {
                key: key(pk, sk),
                update: set("y", yv),
                condition: None,
            }
        }
        Op::RemoveV { pk, sk } => {
            // An update that only removes does not create a missing item.
            if let Some(it) = model.get_mut(&(pk, sk)) {
                it.remove("v");
            }
            Command::Update {
                key: key(pk, sk),
                update: Update {
                    remove: vec![DocPath::attr("v")],
                    ..Update::default()
                },
                condition: None,
            }
        }
    }
}

fn apply(p: &Partition, cmds: &[Command]) {
    let first = p.applied_index() + 1;
    for r in p.apply_batch(first, cmds) {
        r.unwrap();
    }
}

/// Ships the outbox to `gsi` in chunks of `chunk`; with `replay`, first re-sends records
/// already applied (they must be skipped). With `trim`, trims what was shipped.
fn ship(p: &Partition, gsi: &IndexPartition, chunk: usize, replay: bool, trim: bool) {
    if replay {
        let done = gsi.shipped(SOURCE).unwrap();
        let old = p.outbox(done.saturating_sub(chunk as u64), chunk).unwrap();
        gsi.apply_outbox(SOURCE, &old).unwrap();
        assert_eq!(
            gsi.shipped(SOURCE).unwrap(),
            done.max(old.last().map_or(0, |r| r.seq))
        );
    }
    loop {
        let after = gsi.shipped(SOURCE).unwrap();
        let records = p.outbox(after, chunk).unwrap();
        if records.is_empty() {
            break;
        }
        let mut last = after;
        for r in &records {
            assert!(r.seq > last, "outbox out of order");
            last = r.seq;
            assert_eq!(r.index_id, 7);
        }
        gsi.apply_outbox(SOURCE, &records).unwrap();
        assert_eq!(gsi.shipped(SOURCE).unwrap(), last);
    }
    if trim {
        p.trim_outbox(gsi.shipped(SOURCE).unwrap()).unwrap();
        assert!(p.outbox(0, 10).unwrap().is_empty());
    }
}

fn full_scan(gsi: &IndexPartition, page_limit: usize) -> Vec<Item> {
    let mut out = Vec::new();
    let mut esk: Option<Item> = None;
    loop {
        let page = gsi
            .scan(
                &ScanSpec {
                    exclusive_start: esk.as_ref(),
                    limit: Some(page_limit),
                    ..scan_all()
                },
                None,
            )
            .unwrap();
        out.extend(page.items);
        match page.last_evaluated_key {
            Some(k) => esk = Some(k),
            None => return out,
        }
    }
}

fn sorted(mut v: Vec<Item>) -> Vec<Item> {
    v.sort_by_key(|e| format!("{e:?}"));
    v
}

/// The index holds exactly the entries of the model's items: scan, queries, stats.
fn check(ix: &IndexPartition, model: &BTreeMap<(u8, u8), Item>) {
    let def = gsi(IndexStatus::Active);
    let want: Vec<Item> = model
        .values()
        .filter_map(|it| def.entry(&table(), it))
        .collect();
    assert_eq!(sorted(full_scan(ix, 3)), sorted(want.clone()));
    let stats = want.iter().fold(PartitionStats::default(), |mut st, e| {
        st.item_count += 1;
        st.size_bytes += (item_size(e) + 100) as u64;
        st
    });
    assert_eq!(ix.stats(), stats);
    for g in 0..3u8 {
        let gv = s(&format!("g{g}"));
        let mut expect: Vec<&Item> = want.iter().filter(|e| e.get("g") == Some(&gv)).collect();
        expect.sort_by(|a, b| {
            let (AttributeValue::N(va), AttributeValue::N(vb)) = (&a["v"], &b["v"]) else {
                unreachable!()
            };
            va.cmp(vb)
                .then_with(|| format!("{:?}", a["pk"]).cmp(&format!("{:?}", b["pk"])))
                .then_with(|| {
                    let (AttributeValue::N(x), AttributeValue::N(y)) = (&a["sk"], &b["sk"]) else {
                        unreachable!()
                    };
                    x.cmp(y)
                })
        });
        let mut got = Vec::new();
        let mut esk: Option<Item> = None;
        loop {
            let page = ix
                .query(
                    &QuerySpec {
                        partition_key: &gv,
                        sort_prefix: &[],
                        sort: None,
                        forward: true,
                        exclusive_start: esk.as_ref(),
                        limit: Some(2),
                        byte_limit: usize::MAX,
                        filter: None,
                    },
                    None,
                )
                .unwrap();
            got.extend(page.items);
            match page.last_evaluated_key {
                Some(k) => esk = Some(k),
                None => break,
            }
        }
        let expect: Vec<Item> = expect.into_iter().cloned().collect();
        assert_eq!(got, expect, "query g{g}");
        let ge = SortKeyCondition::Ge(n("0"));
        let page = ix
            .query(
                &QuerySpec {
                    partition_key: &gv,
                    sort_prefix: &[],
                    sort: Some(&ge),
                    forward: false,
                    exclusive_start: None,
                    limit: None,
                    byte_limit: usize::MAX,
                    filter: None,
                },
                None,
            )
            .unwrap();
        let mut nonneg: Vec<Item> = expect
            .iter()
            .filter(|e| ge.matches(&e["v"]))
            .cloned()
            .collect();
        nonneg.reverse();
        assert_eq!(page.items, nonneg, "query g{g} v >= 0 descending");
    }
}

fn new_gsi() -> IndexPartition {
    IndexPartition::new(
        Box::new(MemEngine::new()),
        gsi(IndexStatus::Active),
        table(),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn shipped_outbox_gives_exactly_the_entries_of_the_items(
        ops in proptest::collection::vec(op(), 1..60),
        steps in proptest::collection::vec((1usize..6, 1usize..5, any::<bool>(), any::<bool>()), 1..30),
    ) {
        let p = mem_partition(table());
        p.set_indexes(vec![gsi(IndexStatus::Active)]).unwrap();
        let g = new_gsi();
        let mut model = BTreeMap::new();
        let mut i = 0;
        let mut step = 0;
        while i < ops.len() {
            let (batch, chunk, replay, trim) = steps[step % steps.len()];
            step += 1;
            let end = (i + batch).min(ops.len());
            let cmds: Vec<Command> = ops[i..end].iter().map(|o| command(o, &mut model)).collect();
            apply(&p, &cmds);
            i = end;
            if step % 2 == 0 {
                ship(&p, &g, chunk, replay, trim);
            }
        }
        ship(&p, &g, 4, true, true);
        check(&g, &model);
        prop_assert_eq!(p.last_outbox_seq() >= g.shipped(SOURCE).unwrap(), true);
    }

    #[test]
    fn backfill_interleaved_with_writes_ends_in_the_right_index(
        before in proptest::collection::vec(op(), 0..40),
        during in proptest::collection::vec(op(), 0..40),
        steps in proptest::collection::vec((0u8..3, 1usize..4), 1..40),
    ) {
        let p = mem_partition(table());
        let mut model = BTreeMap::new();
        let cmds: Vec<Command> = before.iter().map(|o| command(o, &mut model)).collect();
        apply(&p, &cmds);
        // No index yet: nothing in the outbox.
        prop_assert!(p.outbox(0, 10).unwrap().is_empty());
        p.set_indexes(vec![gsi(IndexStatus::Creating)]).unwrap();
        let g = new_gsi();
        let mut cursor: Option<Vec<u8>> = None;
        let mut backfill_done = false;
        let mut next_op = 0;
        let mut step = 0;
        while !backfill_done || next_op < during.len() {
            let (what, n) = steps[step % steps.len()];
            step += 1;
            // Every fourth step makes progress whatever was drawn, so the loop ends.
            let what = if step % 4 == 0 {
                if backfill_done { 1 } else { 0 }
            } else {
                what
            };
            match what {
                0 if !backfill_done => {
                    cursor = p.backfill(7, cursor.take(), n).unwrap();
                    backfill_done = cursor.is_none();
                }
                1 if next_op < during.len() => {
                    let end = (next_op + n).min(during.len());
                    let cmds: Vec<Command> =
                        during[next_op..end].iter().map(|o| command(o, &mut model)).collect();
                    apply(&p, &cmds);
                    next_op = end;
                }
                _ => ship(&p, &g, n, false, step % 3 == 0),
            }
        }
        ship(&p, &g, 5, false, true);
        check(&g, &model);
    }
}

#[test]
fn unchanged_entries_write_no_record_and_deleting_indexes_none_at_all() {
    let p = mem_partition(table());
    p.set_indexes(vec![gsi(IndexStatus::Active)]).unwrap();
    let mut model = BTreeMap::new();
    let put_op = Op::Put {
        pk: 0,
        sk: 0,
        g: Some(1),
        v: Some(1),
        x: 3,
    };
    apply(&p, &[command(&put_op, &mut model)]);
    assert_eq!(p.last_outbox_seq(), 1);
    // A non-projected attribute changes: same entry, no record.
    apply(&p, &[command(&Op::SetY { pk: 0, sk: 0, y: 9 }, &mut model)]);
    assert_eq!(p.last_outbox_seq(), 1);
    // The index key changes: the old entry is deleted, the new one put.
    apply(&p, &[command(&Op::SetG { pk: 0, sk: 0, g: 2 }, &mut model)]);
    let records = p.outbox(0, 10).unwrap();
    assert_eq!(records.len(), 2);
    let first_key = records[0].put.as_ref().unwrap().0.clone();
    assert_eq!(records[1].delete.as_ref(), Some(&first_key));
    let (new_key, entry) = records[1].put.as_ref().unwrap();
    assert_eq!(
        entry_key_hash(new_key),
        Some(partition_hash(&s("g2"))),
        "entries route by the index partition key hash"
    );
    assert_eq!(entry.get("g"), Some(&s("g2")));
    // Removing the sort key drops the entry: a delete-only record.
    apply(&p, &[command(&Op::RemoveV { pk: 0, sk: 0 }, &mut model)]);
    let last = p.outbox(2, 10).unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].delete.as_ref(), Some(new_key));
    assert!(last[0].put.is_none());
    // A deleting index gets no records.
    p.set_indexes(vec![gsi(IndexStatus::Deleting)]).unwrap();
    let seq = p.last_outbox_seq();
    let put_op = Op::Put {
        pk: 1,
        sk: 0,
        g: Some(1),
        v: Some(1),
        x: 3,
    };
    apply(&p, &[command(&put_op, &mut model)]);
    assert_eq!(p.last_outbox_seq(), seq);
}

#[test]
fn seqs_and_shipped_positions_survive_trim_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("p.db");
    let index = dir.path().join("i.db");
    let open_base = || {
        let e = SqlCipherEngine::open(&base, &KEY, Durability::Sync).unwrap();
        let p = Partition::new(Box::new(e), table()).unwrap();
        p.set_indexes(vec![gsi(IndexStatus::Active)]).unwrap();
        p
    };
    let open_index = || {
        let e = SqlCipherEngine::open(&index, &KEY, Durability::Sync).unwrap();
        IndexPartition::new(Box::new(e), gsi(IndexStatus::Active), table()).unwrap()
    };
    let mut model = BTreeMap::new();
    let puts = |range: std::ops::Range<u8>, model: &mut BTreeMap<(u8, u8), Item>| -> Vec<Command> {
        range
            .map(|i| {
                command(
                    &Op::Put {
                        pk: i % 4,
                        sk: i / 4,
                        g: Some(i % 3),
                        v: Some((i % 5) as i8 - 2),
                        x: i,
                    },
                    model,
                )
            })
            .collect()
    };
    let shipped;
    {
        let p = open_base();
        let g = open_index();
        apply(&p, &puts(0..10, &mut model));
        ship(&p, &g, 3, false, true);
        shipped = g.shipped(SOURCE).unwrap();
        assert_eq!(shipped, 10);
        assert_eq!(p.last_outbox_seq(), 10);
    }
    let p = open_base();
    let g = open_index();
    assert_eq!(p.last_outbox_seq(), 10, "the seq survives an empty outbox");
    assert_eq!(g.shipped(SOURCE).unwrap(), 10);
    check(&g, &model);
    apply(&p, &puts(10..16, &mut model));
    let records = p.outbox(0, 100).unwrap();
    assert_eq!(records.first().map(|r| r.seq), Some(11));
    // Applying the same records twice (a shipper that crashed before trimming) changes nothing.
    g.apply_outbox(SOURCE, &records).unwrap();
    let stats = g.stats();
    drop(g);
    let g = open_index();
    g.apply_outbox(SOURCE, &records).unwrap();
    assert_eq!(g.stats(), stats);
    // Records of another source are tracked separately.
    assert_eq!(g.shipped(SOURCE + 1).unwrap(), 0);
    check(&g, &model);
}

#[test]
fn backfill_rejects_unknown_and_local_indexes() {
    let p = mem_partition(table());
    assert!(matches!(
        p.backfill(7, None, 10),
        Err(shoal_storage::StorageError::UnknownIndex(7))
    ));
    let mut local = gsi(IndexStatus::Active);
    local.kind = IndexKind::Local;
    p.set_indexes(vec![local]).unwrap();
    assert!(p.backfill(7, None, 10).is_err());
}

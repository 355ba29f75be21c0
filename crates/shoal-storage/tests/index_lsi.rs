//! Local secondary indexes: the entries follow puts, updates and deletes exactly (property test
//! against a model, in batches, after reopening), queries and scans page like the table,
//! stats and item collection sizes are exact, bad index keys are rejected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::pk_sk as key;
use common::*;
use proptest::prelude::*;
use shoal_expr::{DocPath, SortKeyCondition, Update};
use shoal_storage::{
    ApplyError, Command, Durability, Engine, MAX_ITEM_COLLECTION_SIZE, MemEngine, Page, Partition,
    PartitionStats, QuerySpec, ScanSpec, Space, SqlCipherEngine, WriteBatch,
};
use shoal_types::index::{IndexDef, IndexKind, IndexStatus, Projection, ProjectionType};
use shoal_types::key::{KeyAttr, KeySchema, encode_key, partition_hash};
use shoal_types::size::item_size;
use shoal_types::{AttributeValue, Item, ScalarType};

/// Table: `pk` (S), `sk` (N).
fn table() -> KeySchema {
    range_schema(ScalarType::N)
}

/// LSI 3 `by_v`: sort key `v` (N), projecting `x`.
fn lsi() -> IndexDef {
    IndexDef {
        id: 3,
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
    }
}

/// LSI 4 `by_w`: sort key `w` (S), keys only.
fn lsi_w() -> IndexDef {
    IndexDef {
        id: 4,
        name: "by_w".into(),
        key_schema: KeySchema {
            hash: lsi().key_schema.hash()[0].clone(),
            range: Some(KeyAttr {
                name: "w".into(),
                ty: ScalarType::S,
            }),
        }
        .into(),
        projection: Projection {
            kind: ProjectionType::KeysOnly,
            non_key_attributes: vec![],
        },
        ..lsi()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        pk: u8,
        sk: u8,
        v: Option<i8>,
        w: Option<u8>,
        x: u8,
    },
    Delete {
        pk: u8,
        sk: u8,
    },
    SetV {
        pk: u8,
        sk: u8,
        v: i8,
    },
    RemoveV {
        pk: u8,
        sk: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let pk = 0u8..3;
    let sk = 0u8..6;
    prop_oneof![
        4 => (pk.clone(), sk.clone(), proptest::option::of(-3i8..4), proptest::option::of(0u8..3), any::<u8>())
            .prop_map(|(pk, sk, v, w, x)| Op::Put { pk, sk, v, w, x }),
        1 => (pk.clone(), sk.clone()).prop_map(|(pk, sk)| Op::Delete { pk, sk }),
        2 => (pk.clone(), sk.clone(), -3i8..4).prop_map(|(pk, sk, v)| Op::SetV { pk, sk, v }),
        1 => (pk, sk).prop_map(|(pk, sk)| Op::RemoveV { pk, sk }),
    ]
}

/// The command of an op, and the model's change.
fn command(o: &Op, model: &mut BTreeMap<(u8, u8), Item>) -> Command {
    match *o {
        Op::Put { pk, sk, v, w, x } => {
            let mut it = key(pk, sk);
            if let Some(v) = v {
                it.insert("v".into(), n(&v.to_string()));
            }
            if let Some(w) = w {
                it.insert("w".into(), s(&format!("w{w}")));
            }
            it.insert("x".into(), s(&"x".repeat(usize::from(x % 40))));
            it.insert("y".into(), n(&x.to_string()));
            model.insert((pk, sk), it.clone());
            put(it)
        }
        Op::Delete { pk, sk } => {
            model.remove(&(pk, sk));
            delete(key(pk, sk))
        }
        Op::SetV { pk, sk, v } => {
            let it = model.entry((pk, sk)).or_insert_with(|| key(pk, sk));
            it.insert("v".into(), n(&v.to_string()));
            Command::Update {
                key: key(pk, sk),
                update: set("v", n(&v.to_string())),
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

fn query_spec<'a>(
    pk: &'a AttributeValue,
    sort: Option<&'a SortKeyCondition>,
    forward: bool,
    esk: Option<&'a Item>,
    limit: Option<usize>,
) -> QuerySpec<'a> {
    QuerySpec {
        partition_key: pk,
        sort_prefix: &[],
        sort,
        forward,
        exclusive_start: esk,
        limit,
        byte_limit: usize::MAX,
        filter: None,
    }
}

/// All pages of a query of the index, `limit` items at a time.
fn query_all(
    p: &Partition,
    id: u32,
    pk: &AttributeValue,
    sort: Option<&SortKeyCondition>,
    forward: bool,
    limit: Option<usize>,
) -> Vec<Item> {
    let mut out = Vec::new();
    let mut esk: Option<Item> = None;
    loop {
        let page: Page = p
            .query_index(id, &query_spec(pk, sort, forward, esk.as_ref(), limit))
            .unwrap();
        out.extend(page.items);
        match page.last_evaluated_key {
            Some(k) => esk = Some(k),
            None => return out,
        }
    }
}

/// The expected entries of `def` for partition key `pk`, in index order (sort key, then
/// table sort key).
fn expected(
    def: &IndexDef,
    model: &BTreeMap<(u8, u8), Item>,
    pk: u8,
    keep: impl Fn(&AttributeValue) -> bool,
) -> Vec<Item> {
    let range = def.key_schema.range()[0].name.clone();
    let mut entries: Vec<(AttributeValue, u8, Item)> = model
        .iter()
        .filter(|((p, _), _)| *p == pk)
        .filter_map(|((_, sk), it)| {
            let e = def.entry(&table(), it)?;
            let v = e.get(&range)?.clone();
            keep(&v).then_some((v, *sk, e))
        })
        .collect();
    entries.sort_by(|a, b| {
        let ord = match (&a.0, &b.0) {
            (AttributeValue::N(x), AttributeValue::N(y)) => x.cmp(y),
            (AttributeValue::S(x), AttributeValue::S(y)) => x.cmp(y),
            _ => unreachable!(),
        };
        ord.then(a.1.cmp(&b.1))
    });
    entries.into_iter().map(|(_, _, e)| e).collect()
}

fn num(v: &AttributeValue) -> i64 {
    match v {
        AttributeValue::N(n) => n.to_string().parse().unwrap(),
        _ => unreachable!(),
    }
}

/// Which sort key values a condition keeps.
type Keep = Box<dyn Fn(i64) -> bool>;

/// Everything observable about the index agrees with the model.
fn check(p: &Partition, model: &BTreeMap<(u8, u8), Item>) {
    for def in [lsi(), lsi_w()] {
        let mut stats = PartitionStats::default();
        for pk in 0..3u8 {
            let pkv = s(&format!("p{pk}"));
            let all = expected(&def, model, pk, |_| true);
            for e in &all {
                stats.item_count += 1;
                stats.size_bytes += (item_size(e) + 100) as u64;
            }
            assert_eq!(query_all(p, def.id, &pkv, None, true, None), all);
            assert_eq!(query_all(p, def.id, &pkv, None, true, Some(2)), all);
            let mut rev = all.clone();
            rev.reverse();
            assert_eq!(query_all(p, def.id, &pkv, None, false, Some(3)), rev);
        }
        assert_eq!(p.index_stats(def.id), stats, "stats of {}", def.name);
    }
    // Sort key conditions on the numeric index, each bound also sitting on a present value.
    let def = lsi();
    for pk in 0..3u8 {
        let pkv = s(&format!("p{pk}"));
        for b in -3i64..4 {
            let bv = n(&b.to_string());
            let conds: Vec<(SortKeyCondition, Keep)> = vec![
                (SortKeyCondition::Eq(bv.clone()), Box::new(move |v| v == b)),
                (SortKeyCondition::Lt(bv.clone()), Box::new(move |v| v < b)),
                (SortKeyCondition::Le(bv.clone()), Box::new(move |v| v <= b)),
                (SortKeyCondition::Gt(bv.clone()), Box::new(move |v| v > b)),
                (SortKeyCondition::Ge(bv.clone()), Box::new(move |v| v >= b)),
                (
                    SortKeyCondition::Between(bv.clone(), n(&(b + 2).to_string())),
                    Box::new(move |v| (b..=b + 2).contains(&v)),
                ),
            ];
            for (cond, keep) in conds {
                let want = expected(&def, model, pk, |v| keep(num(v)));
                assert_eq!(
                    query_all(p, def.id, &pkv, Some(&cond), true, Some(2)),
                    want,
                    "{cond:?}"
                );
                let mut rev = want.clone();
                rev.reverse();
                assert_eq!(
                    query_all(p, def.id, &pkv, Some(&cond), false, None),
                    rev,
                    "{cond:?} descending"
                );
            }
        }
    }
    // A scan of the whole index, paged, holds every entry once.
    let mut scanned = Vec::new();
    let mut esk: Option<Item> = None;
    loop {
        let page = p
            .scan_index(
                3,
                &ScanSpec {
                    exclusive_start: esk.as_ref(),
                    limit: Some(4),
                    ..scan_all()
                },
            )
            .unwrap();
        scanned.extend(page.items);
        match page.last_evaluated_key {
            Some(k) => esk = Some(k),
            None => break,
        }
    }
    let mut all: Vec<Item> = (0..3)
        .flat_map(|pk| expected(&def, model, pk, |_| true))
        .collect();
    let order = |e: &Item| format!("{:?}", e);
    scanned.sort_by_key(order);
    all.sort_by_key(order);
    assert_eq!(scanned, all);
    // Item collection sizes: the items plus their entries in both indexes.
    for pk in 0..3u8 {
        let mut size = 0u64;
        for ((p2, _), it) in model {
            if *p2 != pk {
                continue;
            }
            size += item_size(it) as u64;
            for def in [lsi(), lsi_w()] {
                if let Some(e) = def.entry(&table(), it) {
                    size += (item_size(&e) + 100) as u64;
                }
            }
        }
        assert_eq!(
            p.item_collection_size(&s(&format!("p{pk}"))).unwrap(),
            size,
            "collection p{pk}"
        );
    }
}

fn run(p: &Partition, ops: &[Op], sizes: &[usize], model: &mut BTreeMap<(u8, u8), Item>) {
    let mut i = 0;
    let mut size_at = 0;
    while i < ops.len() {
        let size = sizes
            .get(size_at)
            .copied()
            .unwrap_or(1)
            .clamp(1, ops.len() - i);
        size_at += 1;
        let cmds: Vec<Command> = ops[i..i + size].iter().map(|o| command(o, model)).collect();
        let first = p.applied_index() + 1;
        for r in p.apply_batch(first, &cmds) {
            r.unwrap();
        }
        i += size;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn lsi_entries_follow_the_items_exactly(
        ops in proptest::collection::vec(op(), 1..60),
        sizes in proptest::collection::vec(1usize..8, 0..20),
    ) {
        let p = mem_partition(table());
        p.set_indexes(vec![lsi(), lsi_w()]).unwrap();
        let mut model = BTreeMap::new();
        run(&p, &ops, &sizes, &mut model);
        check(&p, &model);
    }
}

#[test]
fn lsi_entries_survive_reopen_and_keep_being_maintained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let open = || {
        let e = SqlCipherEngine::open(&path, &KEY, Durability::Sync).unwrap();
        let p = Partition::new(Box::new(e), table()).unwrap();
        p.set_indexes(vec![lsi(), lsi_w()]).unwrap();
        p
    };
    let ops: Vec<Op> = (0..40u8)
        .map(|i| match i % 5 {
            0 | 1 => Op::Put {
                pk: i % 3,
                sk: i % 6,
                v: Some((i % 7) as i8 - 3),
                w: Some(i % 3),
                x: i,
            },
            2 => Op::SetV {
                pk: i % 3,
                sk: (i + 1) % 6,
                v: (i % 5) as i8 - 2,
            },
            3 => Op::RemoveV {
                pk: i % 3,
                sk: (i + 2) % 6,
            },
            _ => Op::Delete {
                pk: i % 3,
                sk: (i + 3) % 6,
            },
        })
        .collect();
    let mut model = BTreeMap::new();
    {
        let p = open();
        run(&p, &ops[..20], &[3, 1, 5, 2], &mut model);
        check(&p, &model);
    }
    let p = open();
    check(&p, &model);
    run(&p, &ops[20..], &[4, 4, 1], &mut model);
    check(&p, &model);
    drop(p);
    check(&open(), &model);
}

#[test]
fn wrong_or_empty_index_keys_are_rejected_and_nothing_is_written() {
    let p = mem_partition(table());
    p.set_indexes(vec![lsi(), lsi_w()]).unwrap();
    let mut bad = key(0, 1);
    bad.insert("v".into(), s("seven"));
    let err = p.apply(1, &put(bad)).unwrap_err();
    assert!(
        matches!(&err, ApplyError::Validation(m) if m ==
        "One or more parameter values were invalid: Type mismatch for Index Key v Expected: N \
         Actual: S IndexName: by_v"),
        "{err}"
    );
    let mut empty = key(0, 1);
    empty.insert("w".into(), s(""));
    let err = p.apply(2, &put(empty)).unwrap_err();
    assert!(
        matches!(&err, ApplyError::Validation(m) if m ==
        "One or more parameter values are not valid. A value specified for a secondary index \
         key is not supported. The AttributeValue for a key attribute cannot contain an empty \
         string value. IndexName: by_w, IndexKey: w"),
        "{err}"
    );
    // An update producing a bad index key is rejected too, and leaves the item as it was.
    let mut good = key(0, 1);
    good.insert("v".into(), n("1"));
    p.apply(3, &put(good.clone())).unwrap();
    let err = p
        .apply(
            4,
            &Command::Update {
                key: key(0, 1),
                update: set("v", s("x")),
                condition: None,
            },
        )
        .unwrap_err();
    assert!(matches!(err, ApplyError::Validation(_)));
    assert_eq!(p.get(&key(0, 1)).unwrap(), Some(good));
    assert_eq!(p.stats().item_count, 1);
    assert_eq!(p.index_stats(3).item_count, 1);
    // A deleting index is not checked any more.
    let mut deleting = lsi_w();
    deleting.status = IndexStatus::Deleting;
    p.set_indexes(vec![lsi(), deleting]).unwrap();
    let mut ok = key(0, 2);
    ok.insert("w".into(), n("5"));
    p.apply(5, &put(ok)).unwrap();
}

#[test]
fn lsi_queries_reject_a_bad_exclusive_start_key_and_unknown_indexes() {
    let p = mem_partition(table());
    p.set_indexes(vec![lsi()]).unwrap();
    let pk = s("p0");
    let esk = key(0, 1); // lacks `v`
    assert!(matches!(
        p.query_index(3, &query_spec(&pk, None, true, Some(&esk), None)),
        Err(shoal_storage::StorageError::InvalidKey(_))
    ));
    assert!(matches!(
        p.query_index(9, &query_spec(&pk, None, true, None, None)),
        Err(shoal_storage::StorageError::UnknownIndex(9))
    ));
}

#[test]
fn last_evaluated_key_holds_table_and_index_keys() {
    let p = mem_partition(table());
    p.set_indexes(vec![lsi()]).unwrap();
    for sk in 0..3u8 {
        let mut it = key(0, sk);
        it.insert("v".into(), n("5"));
        it.insert("z".into(), s("not projected"));
        p.apply(u64::from(sk) + 1, &put(it)).unwrap();
    }
    let pk = s("p0");
    let page = p
        .query_index(3, &query_spec(&pk, None, true, None, Some(1)))
        .unwrap();
    let mut want = key(0, 0);
    want.insert("v".into(), n("5"));
    assert_eq!(page.items, vec![want.clone()]);
    assert_eq!(page.last_evaluated_key, Some(want));
    assert_eq!(page.scanned_count, 1);
}

#[test]
fn drop_index_removes_every_entry_and_its_stats() {
    let p = mem_partition(table());
    p.set_indexes(vec![lsi(), lsi_w()]).unwrap();
    for i in 0..1500u32 {
        let mut it = item(&[("pk", s(&format!("p{}", i % 7))), ("sk", n(&i.to_string()))]);
        it.insert("v".into(), n(&(i % 10).to_string()));
        it.insert("w".into(), s("w"));
        p.apply(u64::from(i) + 1, &put(it)).unwrap();
    }
    assert_eq!(p.index_stats(3).item_count, 1500);
    p.set_indexes(vec![lsi_w()]).unwrap();
    p.drop_index(3).unwrap();
    assert_eq!(p.index_stats(3), PartitionStats::default());
    assert_eq!(p.index_stats(4).item_count, 1500);
    p.set_indexes(vec![lsi(), lsi_w()]).unwrap();
    let page = p.scan_index(3, &scan_all()).unwrap();
    assert!(page.items.is_empty());
    assert_eq!(p.index_stats(3), PartitionStats::default());
}

#[test]
fn item_collections_stop_growing_at_10_gb_but_may_shrink() {
    // Seed the collection counter of `p0` just under the limit, as 10 GB of items would.
    let engine = MemEngine::new();
    let pk = s("p0");
    let mut ckey = u32::MAX.to_be_bytes().to_vec();
    ckey.extend_from_slice(&encode_key(partition_hash(&pk), &pk, None));
    let mut seed = WriteBatch::new(0);
    seed.put_in(
        Space::Index,
        ckey,
        (MAX_ITEM_COLLECTION_SIZE - 1000).to_be_bytes().to_vec(),
    );
    engine.write(&seed).unwrap();
    let p = Partition::new(Box::new(engine), table()).unwrap();
    p.set_indexes(vec![lsi()]).unwrap();
    let mut small = key(0, 1);
    small.insert("v".into(), n("1"));
    p.apply(1, &put(small.clone())).unwrap();
    let mut big = key(0, 2);
    big.insert("x".into(), s(&"x".repeat(2000)));
    let err = p.apply(2, &put(big.clone())).unwrap_err();
    assert!(matches!(err, ApplyError::ItemCollectionSizeLimitExceeded));
    assert_eq!(err.to_string(), "Item collection size limit exceeded");
    assert_eq!(p.get(&key(0, 2)).unwrap(), None);
    // Other collections are not affected; shrinking this one is allowed.
    let mut other = big.clone();
    other.insert("pk".into(), s("p1"));
    p.apply(3, &put(other)).unwrap();
    p.apply(4, &delete(key(0, 1))).unwrap();
    assert_eq!(
        p.item_collection_size(&pk).unwrap(),
        MAX_ITEM_COLLECTION_SIZE - 1000
    );
}

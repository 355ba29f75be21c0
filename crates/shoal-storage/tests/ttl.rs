//! The expiry index: rebuilt when the TTL attribute is set, kept by every write (and by a
//! transaction's commit), split with the items, and read by expiry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shoal_storage::{Command, MemEngine, Partition, SplitChild, TTL_MAX_AGE_SECS, TxOp, TxPrimary};
use shoal_types::key::{KeyAttr, KeySchema, partition_hash};
use shoal_types::{AttributeValue, Item, Number, ScalarType};

const NOW: u64 = 1_800_000_000;

fn schema() -> KeySchema {
    KeySchema {
        hash: KeyAttr {
            name: "pk".into(),
            ty: ScalarType::S,
        },
        range: None,
    }
}

fn key(k: &str) -> Item {
    [("pk".to_string(), AttributeValue::S(k.into()))]
        .into_iter()
        .collect()
}

fn with(k: &str, exp: Option<AttributeValue>) -> Item {
    let mut i = key(k);
    if let Some(v) = exp {
        i.insert("exp".into(), v);
    }
    i
}

fn n(v: u64) -> Option<AttributeValue> {
    Some(AttributeValue::N(Number::parse(&v.to_string()).unwrap()))
}

fn expired_keys(p: &Partition, now: u64) -> Vec<String> {
    let mut keys: Vec<String> = p
        .expired(now, 1000)
        .unwrap()
        .into_iter()
        .map(|(_, k)| match k.get("pk") {
            Some(AttributeValue::S(s)) => s.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    keys.sort();
    keys
}

fn put(p: &Partition, index: &mut u64, item: Item) {
    *index += 1;
    p.apply(
        *index,
        &Command::Put {
            item,
            condition: None,
        },
    )
    .unwrap();
}

#[test]
fn the_index_is_built_kept_and_dropped() {
    let p = Partition::new(Box::new(MemEngine::new()), schema()).unwrap();
    let mut i = 0;
    put(&p, &mut i, with("past", n(NOW - 10)));
    put(&p, &mut i, with("future", n(NOW + 1000)));
    put(&p, &mut i, with("none", None));
    put(
        &p,
        &mut i,
        with("text", Some(AttributeValue::S("123".into()))),
    );
    put(&p, &mut i, with("ancient", n(NOW - TTL_MAX_AGE_SECS - 10)));
    put(
        &p,
        &mut i,
        with(
            "fraction",
            Some(AttributeValue::N(Number::parse("1799999999.9").unwrap())),
        ),
    );
    assert!(expired_keys(&p, NOW).is_empty(), "no TTL attribute yet");
    p.set_ttl(Some("exp".into())).unwrap();
    assert_eq!(expired_keys(&p, NOW), ["fraction", "past"]);
    assert_eq!(expired_keys(&p, NOW + 2000), ["fraction", "future", "past"]);
    // Writes keep it: a new expired item, one moved to the future, one deleted.
    put(&p, &mut i, with("late", n(NOW - 1)));
    let values: std::collections::HashMap<String, AttributeValue> =
        [(":f".to_string(), n(NOW + 50).unwrap())]
            .into_iter()
            .collect();
    let mut ctx = shoal_expr::ExprContext::new(None, Some(&values));
    let update = shoal_expr::parse_update("SET exp = :f", &mut ctx).unwrap();
    i += 1;
    p.apply(
        i,
        &Command::Update {
            key: key("past"),
            update,
            condition: None,
        },
    )
    .unwrap();
    i += 1;
    p.apply(
        i,
        &Command::Delete {
            key: key("fraction"),
            condition: None,
        },
    )
    .unwrap();
    assert_eq!(expired_keys(&p, NOW), ["late"]);
    // A transaction's commit too.
    i += 1;
    p.apply(
        i,
        &Command::TxPrepare {
            txid: [1; 16],
            ts: 1,
            primary: TxPrimary {
                table: "t".into(),
                key: key("tx"),
            },
            token: None,
            op: TxOp::Put {
                item: with("tx", n(NOW - 5)),
                condition: None,
            },
        },
    )
    .unwrap();
    assert_eq!(expired_keys(&p, NOW), ["late"], "not before the commit");
    i += 1;
    p.apply(
        i,
        &Command::TxResolve {
            txid: [1; 16],
            key: key("tx"),
            commit: true,
        },
    )
    .unwrap();
    assert_eq!(expired_keys(&p, NOW), ["late", "tx"]);
    // Another attribute rebuilds it; none drops it.
    p.set_ttl(Some("other".into())).unwrap();
    assert!(expired_keys(&p, NOW).is_empty());
    p.set_ttl(None).unwrap();
    assert!(expired_keys(&p, NOW + 10_000).is_empty());
}

#[test]
fn expiry_rows_follow_a_split() {
    let p = Partition::new(Box::new(MemEngine::new()), schema()).unwrap();
    p.set_ttl(Some("exp".into())).unwrap();
    let mut i = 0;
    let keys: Vec<String> = (0..40).map(|k| format!("k{k}")).collect();
    for k in &keys {
        put(&p, &mut i, with(k, n(NOW - 1)));
    }
    let mid = u64::MAX / 2;
    let child = SplitChild {
        child: 9,
        start: mid + 1,
        end: u64::MAX,
        epoch: 2,
    };
    i += 1;
    p.apply(
        i,
        &Command::Split {
            start: 0,
            end: mid,
            epoch: 2,
            child,
        },
    )
    .unwrap();
    let engine = MemEngine::new();
    p.build_child(&child, &engine).unwrap();
    let c = Partition::new(Box::new(engine), schema()).unwrap();
    p.drop_split_off(9).unwrap();
    let upper: Vec<String> = keys
        .iter()
        .filter(|k| partition_hash(&AttributeValue::S((*k).clone())) > mid)
        .cloned()
        .collect();
    let mut want_upper = upper.clone();
    want_upper.sort();
    let mut want_lower: Vec<String> = keys
        .iter()
        .filter(|k| !upper.contains(k))
        .cloned()
        .collect();
    want_lower.sort();
    assert_eq!(expired_keys(&c, NOW), want_upper);
    assert_eq!(expired_keys(&p, NOW), want_lower);
    assert_eq!(c.ttl_attribute().as_deref(), Some("exp"));
}

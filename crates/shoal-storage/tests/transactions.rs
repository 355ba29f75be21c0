//! Transaction commands on one partition: locks, conflicts, commit and abort, decisions, read
//! marks, client tokens, and the rows following a split.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shoal_expr::Condition;
use shoal_storage::{
    Applied, ApplyError, Command, MemEngine, Partition, SplitChild, TxOp, TxPrimary, TxRow, TxToken,
};
use shoal_types::key::{KeyAttr, KeySchema, partition_hash};
use shoal_types::{AttributeValue, Item, ScalarType};

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

fn item(k: &str, v: &str) -> Item {
    let mut i = key(k);
    i.insert("v".into(), AttributeValue::S(v.into()));
    i
}

fn primary() -> TxPrimary {
    TxPrimary {
        table: "t".into(),
        key: key("a"),
    }
}

fn prepare(txid: u8, op: TxOp) -> Command {
    Command::TxPrepare {
        txid: [txid; 16],
        ts: 1_000,
        primary: primary(),
        token: None,
        op,
    }
}

fn put(k: &str, v: &str) -> TxOp {
    TxOp::Put {
        item: item(k, v),
        condition: None,
    }
}

struct P {
    part: Partition,
    index: u64,
}

impl P {
    fn new() -> P {
        P {
            part: Partition::new(Box::new(MemEngine::new()), schema()).unwrap(),
            index: 0,
        }
    }
    fn apply(&mut self, c: Command) -> Result<Applied, ApplyError> {
        self.index += 1;
        self.part.apply(self.index, &c)
    }
    fn v(&self, k: &str) -> Option<String> {
        self.part.get(&key(k)).unwrap().map(|i| match i.get("v") {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => String::new(),
        })
    }
}

#[test]
fn prepare_locks_commit_applies_and_releases() {
    let mut p = P::new();
    p.apply(Command::Put {
        item: item("a", "old"),
        condition: None,
    })
    .unwrap();
    let vote = p.apply(prepare(1, put("a", "new"))).unwrap();
    assert_eq!(vote.new, Some(item("a", "new")));
    // Not visible before the commit; single writes and other transactions are refused.
    assert_eq!(p.v("a").as_deref(), Some("old"));
    assert!(matches!(
        p.apply(Command::Put {
            item: item("a", "x"),
            condition: None
        }),
        Err(ApplyError::TransactionConflict)
    ));
    assert!(matches!(
        p.apply(prepare(2, put("a", "y"))),
        Err(ApplyError::TransactionConflict)
    ));
    assert_eq!(p.part.tx_rows(10).unwrap().len(), 1);
    // Another transaction's resolve does nothing.
    p.apply(Command::TxResolve {
        txid: [2; 16],
        key: key("a"),
        commit: true,
    })
    .unwrap();
    assert_eq!(p.v("a").as_deref(), Some("old"));
    let done = p
        .apply(Command::TxResolve {
            txid: [1; 16],
            key: key("a"),
            commit: true,
        })
        .unwrap();
    assert_eq!(done.old, Some(item("a", "old")));
    assert_eq!(p.v("a").as_deref(), Some("new"));
    assert!(p.part.tx_rows(10).unwrap().is_empty());
    assert_eq!(p.part.stats().item_count, 1);
    // Resolving again changes nothing; the item is writable again.
    p.apply(Command::TxResolve {
        txid: [1; 16],
        key: key("a"),
        commit: true,
    })
    .unwrap();
    p.apply(Command::Put {
        item: item("a", "z"),
        condition: None,
    })
    .unwrap();
    assert_eq!(p.v("a").as_deref(), Some("z"));
}

#[test]
fn failed_condition_votes_no_and_locks_nothing_abort_drops_the_change() {
    let mut p = P::new();
    let cond = Condition::AttributeExists(shoal_expr::DocPath::attr("pk"));
    let no = p.apply(prepare(
        1,
        TxOp::Check {
            key: key("b"),
            condition: cond,
        },
    ));
    assert!(matches!(
        no,
        Err(ApplyError::ConditionalCheckFailed { item: None })
    ));
    assert!(p.part.tx_rows(10).unwrap().is_empty());
    p.apply(prepare(2, put("b", "new"))).unwrap();
    p.apply(Command::TxResolve {
        txid: [2; 16],
        key: key("b"),
        commit: false,
    })
    .unwrap();
    assert_eq!(p.v("b"), None);
    assert!(p.part.tx_rows(10).unwrap().is_empty());
}

#[test]
fn the_first_decision_wins() {
    let mut p = P::new();
    let decide = |commit: bool| Command::TxDecide {
        txid: [7; 16],
        key: key("a"),
        commit,
        ts: 5,
        token: None,
    };
    assert!(matches!(
        p.apply(decide(false)),
        Err(ApplyError::TransactionAborted)
    ));
    assert!(matches!(
        p.apply(decide(true)),
        Err(ApplyError::TransactionAborted)
    ));
    p.apply(Command::TxForget {
        txid: [7; 16],
        key: key("a"),
    })
    .unwrap();
    assert!(p.part.tx_rows(10).unwrap().is_empty());
    p.apply(decide(true)).unwrap();
    assert!(p.apply(decide(false)).is_ok());
}

#[test]
fn a_change_breaks_read_marks_and_a_lock_refuses_reads() {
    let mut p = P::new();
    let read = |t: u8, k: &str| Command::TxRead {
        txid: [t; 16],
        key: key(k),
        ts: 1,
    };
    let release = |t: u8, k: &str| Command::TxRelease {
        txid: [t; 16],
        key: key(k),
    };
    p.apply(Command::Put {
        item: item("a", "1"),
        condition: None,
    })
    .unwrap();
    assert_eq!(p.apply(read(1, "a")).unwrap().old, Some(item("a", "1")));
    assert!(p.apply(release(1, "a")).is_ok());
    p.apply(read(2, "a")).unwrap();
    let check = |t: u8| Command::TxCheck {
        txid: [t; 16],
        key: key("a"),
    };
    assert!(p.apply(check(2)).is_ok());
    assert!(p.apply(check(2)).is_ok(), "a check keeps the mark");
    p.apply(Command::Put {
        item: item("a", "2"),
        condition: None,
    })
    .unwrap();
    assert!(matches!(
        p.apply(check(2)),
        Err(ApplyError::TransactionConflict)
    ));
    assert!(matches!(
        p.apply(release(2, "a")),
        Err(ApplyError::TransactionConflict)
    ));
    p.apply(read(3, "a")).unwrap();
    p.apply(prepare(4, put("a", "3"))).unwrap();
    assert!(matches!(
        p.apply(release(3, "a")),
        Err(ApplyError::TransactionConflict)
    ));
    assert!(matches!(
        p.apply(read(5, "a")),
        Err(ApplyError::TransactionConflict)
    ));
}

#[test]
fn a_client_token_replays_and_mismatches() {
    let mut p = P::new();
    let token = TxToken {
        key: [9; 16],
        request: [1; 16],
    };
    let with = |txid: u8, token: TxToken| Command::TxPrepare {
        txid: [txid; 16],
        ts: 2_000,
        primary: primary(),
        token: Some(token),
        op: put("a", "v"),
    };
    p.apply(with(1, token)).unwrap();
    // The same token while the first holds the item: in progress.
    assert!(matches!(
        p.apply(with(2, token)),
        Err(ApplyError::TxInProgress)
    ));
    p.apply(Command::TxDecide {
        txid: [1; 16],
        key: key("a"),
        commit: true,
        ts: 2_000,
        token: Some(token),
    })
    .unwrap();
    p.apply(Command::TxResolve {
        txid: [1; 16],
        key: key("a"),
        commit: true,
    })
    .unwrap();
    assert!(matches!(
        p.apply(with(3, token)),
        Err(ApplyError::TxAlreadyCommitted)
    ));
    let other = TxToken {
        request: [2; 16],
        ..token
    };
    assert!(matches!(
        p.apply(with(4, other)),
        Err(ApplyError::TxTokenMismatch)
    ));
    // Past the 10-minute window the token is new again.
    let late = Command::TxPrepare {
        txid: [5; 16],
        ts: 2_000 + 600_001,
        primary: primary(),
        token: Some(token),
        op: put("a", "w"),
    };
    p.apply(late).unwrap();
}

#[test]
fn locks_and_decisions_follow_a_split() {
    let mut p = P::new();
    // Lock every key and record a decision next to each.
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        p.apply(prepare(i as u8, put(k, "v"))).unwrap();
        p.apply(Command::TxDecide {
            txid: [i as u8; 16],
            key: key(k),
            commit: true,
            ts: 1,
            token: None,
        })
        .unwrap();
    }
    let mid = u64::MAX / 2;
    let child = SplitChild {
        child: 9,
        start: mid + 1,
        end: u64::MAX,
        epoch: 2,
    };
    p.apply(Command::Split {
        start: 0,
        end: mid,
        epoch: 2,
        child,
    })
    .unwrap();
    let engine = MemEngine::new();
    p.part.build_child(&child, &engine).unwrap();
    let c = Partition::new(Box::new(engine), schema()).unwrap();
    p.part.drop_split_off(9).unwrap();
    let upper = keys
        .iter()
        .filter(|k| partition_hash(&AttributeValue::S((*k).clone())) > mid)
        .count();
    assert!(upper > 0 && upper < keys.len());
    assert_eq!(c.tx_rows(1000).unwrap().len(), upper * 2);
    assert_eq!(
        p.part.tx_rows(1000).unwrap().len(),
        (keys.len() - upper) * 2
    );
    // A commit applies on whichever side holds the key now.
    for (i, k) in keys.iter().enumerate() {
        let resolve = Command::TxResolve {
            txid: [i as u8; 16],
            key: key(k),
            commit: true,
        };
        let upper = partition_hash(&AttributeValue::S(k.clone())) > mid;
        let (target, idx) = if upper {
            (&c, 1000 + i as u64)
        } else {
            p.index += 1;
            (&p.part, p.index)
        };
        target.apply(idx, &resolve).unwrap();
        assert!(target.get(&key(k)).unwrap().is_some(), "{k}");
    }
    assert!(
        c.tx_rows(1000)
            .unwrap()
            .iter()
            .all(|r| matches!(r, TxRow::Decision { .. }))
    );
}

#[test]
fn a_restored_replica_refuses_writes_of_locked_items() {
    let mut p = P::new();
    p.apply(prepare(1, put("a", "new"))).unwrap();
    let snapshot = p.part.export_snapshot().unwrap();
    // A replica that never saw a transaction row, then installs the snapshot.
    let q = Partition::new(Box::new(MemEngine::new()), schema()).unwrap();
    let at = q.import_snapshot(&snapshot).unwrap();
    assert!(matches!(
        q.apply(
            at + 1,
            &Command::Put {
                item: item("a", "x"),
                condition: None
            }
        ),
        Err(ApplyError::TransactionConflict)
    ));
    q.apply(
        at + 2,
        &Command::TxResolve {
            txid: [1; 16],
            key: key("a"),
            commit: true,
        },
    )
    .unwrap();
    assert!(q.tx_rows(10).unwrap().is_empty());
    assert_eq!(
        q.get(&key("a")).unwrap().and_then(|i| i.get("v").cloned()),
        Some(AttributeValue::S("new".into()))
    );
}

#[test]
fn transaction_rows_are_listed_a_chunk_at_a_time() {
    let mut p = P::new();
    for i in 0..5u8 {
        p.apply(prepare(i, put(&format!("k{i}"), "v"))).unwrap();
    }
    let mut after: Option<Vec<u8>> = None;
    let mut seen = 0;
    let mut chunks = 0;
    loop {
        let (rows, next) = p.part.tx_rows_after(after.as_deref(), 2).unwrap();
        seen += rows.len();
        chunks += 1;
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!((seen, chunks), (5, 3));
}

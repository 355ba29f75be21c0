//! The replication wire format (`WIRE_VERSION`, the first byte of every command and outcome):
//! checked-in fixtures of every version decode to their sample, and the current version's sample
//! still encodes to its fixtures byte for byte, so a format change without a version bump fails.
//!
//! After a deliberate format change: bump `WIRE_VERSION` (keep decoding the old one), extend
//! `commands`/`outcomes` below, then write the new fixtures with
//! `SHOAL_WRITE_FIXTURES=1 cargo test -p shoal-storage --test wire_format` and check them in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use shoal_expr::{CompareOp, Condition, DocPath, Operand, PathElem, Update, UpdateValue};
use shoal_storage::wire::{
    WIRE_VERSION, decode_command, decode_outcome, encode_command, encode_outcome,
};
use shoal_storage::{Applied, ApplyError, Command, StorageError};
use shoal_types::{AttributeValue, Item};

fn s(x: &str) -> AttributeValue {
    AttributeValue::S(x.to_string())
}

fn n(x: &str) -> AttributeValue {
    AttributeValue::N(x.parse().unwrap())
}

fn path(top: &str, rest: Vec<PathElem>) -> DocPath {
    let mut elems = vec![PathElem::Name(top.to_string())];
    elems.extend(rest);
    DocPath { elems }
}

/// An item with one attribute of every type, nested ones included.
fn every_type() -> Item {
    Item::from([
        ("pk".to_string(), s("key-1")),
        ("num".to_string(), n("-12.5E3")),
        ("bin".to_string(), AttributeValue::B(vec![0, 0x80, 0xff])),
        ("yes".to_string(), AttributeValue::Bool(true)),
        ("nothing".to_string(), AttributeValue::Null),
        (
            "strs".to_string(),
            AttributeValue::Ss(vec!["a".into(), "é".into()]),
        ),
        (
            "nums".to_string(),
            AttributeValue::Ns(vec!["1".parse().unwrap(), "2.5".parse().unwrap()]),
        ),
        (
            "bins".to_string(),
            AttributeValue::Bs(vec![vec![1], vec![2, 3]]),
        ),
        (
            "doc".to_string(),
            AttributeValue::M(Item::from([(
                "list".to_string(),
                AttributeValue::L(vec![s("x"), n("7"), AttributeValue::M(Item::new())]),
            )])),
        ),
    ])
}

fn key() -> Item {
    Item::from([("pk".to_string(), s("key-1"))])
}

/// A condition using every condition, operand and comparison kind.
fn every_condition() -> Condition {
    let a = path("a", vec![PathElem::Name("b".into()), PathElem::Index(3)]);
    let compares = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ]
    .into_iter()
    .map(|op| Condition::Compare {
        op,
        left: Operand::Path(a.clone()),
        right: Operand::Value(n("1")),
    });
    Condition::Or(vec![
        Condition::And(compares.collect()),
        Condition::Between {
            value: Operand::Size(path("s", vec![])),
            low: Operand::Value(n("0")),
            high: Operand::Value(n("9")),
        },
        Condition::In {
            value: Operand::Path(path("c", vec![])),
            list: vec![Operand::Value(s("x")), Operand::Value(s("y"))],
        },
        Condition::Not(Box::new(Condition::AttributeExists(path("d", vec![])))),
        Condition::AttributeNotExists(path("e", vec![])),
        Condition::AttributeType(path("f", vec![]), Operand::Value(s("SS"))),
        Condition::BeginsWith(Operand::Path(path("g", vec![])), Operand::Value(s("pre"))),
        Condition::Contains(Operand::Path(path("h", vec![])), Operand::Value(s("sub"))),
    ])
}

fn every_update() -> Update {
    Update {
        set: vec![
            (path("a", vec![]), UpdateValue::Path(path("b", vec![]))),
            (path("c", vec![]), UpdateValue::Value(s("v"))),
            (
                path("d", vec![PathElem::Index(0)]),
                UpdateValue::IfNotExists(path("d", vec![]), Box::new(UpdateValue::Value(n("0")))),
            ),
            (
                path("e", vec![]),
                UpdateValue::ListAppend(
                    Box::new(UpdateValue::Path(path("e", vec![]))),
                    Box::new(UpdateValue::Value(AttributeValue::L(vec![n("1")]))),
                ),
            ),
            (
                path("f", vec![]),
                UpdateValue::Plus(
                    Box::new(UpdateValue::Path(path("f", vec![]))),
                    Box::new(UpdateValue::Value(n("1"))),
                ),
            ),
            (
                path("g", vec![]),
                UpdateValue::Minus(
                    Box::new(UpdateValue::Path(path("g", vec![]))),
                    Box::new(UpdateValue::Value(n("2"))),
                ),
            ),
        ],
        remove: vec![path("h", vec![PathElem::Name("i".into())])],
        add: vec![(path("n", vec![]), n("3"))],
        delete: vec![(path("ss", vec![]), AttributeValue::Ss(vec!["a".into()]))],
    }
}

/// One of every command shape, as `version` writes it.
fn commands(_version: u8) -> Vec<Command> {
    vec![
        Command::Put {
            item: every_type(),
            condition: None,
        },
        Command::Put {
            item: key(),
            condition: Some(every_condition()),
        },
        Command::Delete {
            key: key(),
            condition: None,
        },
        Command::Delete {
            key: key(),
            condition: Some(Condition::AttributeExists(path("pk", vec![]))),
        },
        Command::Update {
            key: key(),
            update: every_update(),
            condition: Some(every_condition()),
        },
        Command::Update {
            key: key(),
            update: Update::default(),
            condition: None,
        },
    ]
}

/// One of every outcome shape, as `version` writes it.
fn outcomes(_version: u8) -> Vec<Result<Applied, ApplyError>> {
    vec![
        Ok(Applied {
            old: None,
            new: Some(every_type()),
        }),
        Ok(Applied {
            old: Some(key()),
            new: None,
        }),
        Err(ApplyError::ConditionalCheckFailed { item: Some(key()) }),
        Err(ApplyError::ConditionalCheckFailed { item: None }),
        Err(ApplyError::Validation("bad value".into())),
        Err(ApplyError::ItemCollectionSizeLimitExceeded),
        Err(ApplyError::Storage(StorageError::DiskFull {
            context: "writing".into(),
        })),
        Err(ApplyError::Storage(StorageError::Corrupt {
            context: "reading".into(),
        })),
    ]
}

fn fixture(version: u8) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("wire-v{version}.hex"))
}

/// The current encodings: one hex line per command, a blank line, one per outcome.
fn encode_all(version: u8) -> String {
    let mut lines: Vec<String> = commands(version)
        .iter()
        .map(|c| {
            let mut out = Vec::new();
            encode_command(c, &mut out);
            hex::encode(out)
        })
        .collect();
    lines.push(String::new());
    lines.extend(outcomes(version).iter().map(|r| {
        let mut out = Vec::new();
        encode_outcome(r, &mut out);
        hex::encode(out)
    }));
    lines.join("\n") + "\n"
}

fn read(version: u8) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let path = fixture(version);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (cmds, outs) = text
        .split_once("\n\n")
        .expect("a blank line between the parts");
    let parse = |part: &str| -> Vec<Vec<u8>> {
        part.lines()
            .filter(|l| !l.is_empty())
            .map(|l| hex::decode(l).unwrap())
            .collect()
    };
    (parse(cmds), parse(outs))
}

#[test]
fn fixtures_of_every_version_decode_to_their_sample() {
    for version in 1..=WIRE_VERSION {
        let (cmds, outs) = read(version);
        let want = commands(version);
        assert_eq!(cmds.len(), want.len(), "version {version}: commands");
        for (bytes, want) in cmds.iter().zip(&want) {
            let got = decode_command(bytes).unwrap_or_else(|e| panic!("version {version}: {e}"));
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "version {version}");
        }
        let want = outcomes(version);
        assert_eq!(outs.len(), want.len(), "version {version}: outcomes");
        for (bytes, want) in outs.iter().zip(&want) {
            let got = decode_outcome(bytes).unwrap_or_else(|e| panic!("version {version}: {e}"));
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "version {version}");
        }
    }
}

#[test]
fn the_current_version_still_encodes_its_sample_to_its_fixtures() {
    let now = encode_all(WIRE_VERSION);
    if std::env::var_os("SHOAL_WRITE_FIXTURES").is_some() {
        std::fs::write(fixture(WIRE_VERSION), &now).unwrap();
    }
    let checked_in = std::fs::read_to_string(fixture(WIRE_VERSION)).unwrap();
    assert!(
        now == checked_in,
        "the wire encoding changed but WIRE_VERSION ({WIRE_VERSION}) did not: bump it, keep \
         decoding the old version, and add fixtures (see this file's header)"
    );
}

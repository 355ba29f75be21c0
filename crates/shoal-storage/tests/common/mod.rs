//! Helpers shared by the integration tests: schemas, items, conditions, engines.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use shoal_expr::{CompareOp, Condition, DocPath, Operand, Update, UpdateValue};
use shoal_storage::{Command, Durability, Engine, MemEngine, Partition, ScanSpec, SqlCipherEngine};
use shoal_types::key::{KeyAttr, KeySchema};
use shoal_types::{AttributeValue, Item, Number, ScalarType};

pub const KEY: [u8; 32] = [7u8; 32];

/// `pk` (S) only.
pub fn hash_schema() -> KeySchema {
    KeySchema {
        hash: KeyAttr {
            name: "pk".into(),
            ty: ScalarType::S,
        },
        range: None,
    }
}

/// `pk` (S) and `sk` of the given type.
pub fn range_schema(sk: ScalarType) -> KeySchema {
    KeySchema {
        hash: KeyAttr {
            name: "pk".into(),
            ty: ScalarType::S,
        },
        range: Some(KeyAttr {
            name: "sk".into(),
            ty: sk,
        }),
    }
}

pub fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

pub fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.parse::<Number>().unwrap())
}

pub fn item(attrs: &[(&str, AttributeValue)]) -> Item {
    attrs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

pub fn mem_partition(schema: KeySchema) -> Partition {
    Partition::new(Box::new(MemEngine::new()), schema).unwrap()
}

/// A SQLCipher partition in `dir` (file `p.db`).
pub fn sql_partition(dir: &std::path::Path, schema: KeySchema) -> Partition {
    let engine = SqlCipherEngine::open(&dir.join("p.db"), &KEY, Durability::Relaxed).unwrap();
    Partition::new(Box::new(engine), schema).unwrap()
}

pub fn put(item: Item) -> Command {
    Command::Put {
        item,
        condition: None,
    }
}

pub fn put_if(item: Item, condition: Condition) -> Command {
    Command::Put {
        item,
        condition: Some(condition),
    }
}

pub fn delete(key: Item) -> Command {
    Command::Delete {
        key,
        condition: None,
    }
}

pub fn exists(attr: &str) -> Condition {
    Condition::AttributeExists(DocPath::attr(attr))
}

pub fn not_exists(attr: &str) -> Condition {
    Condition::AttributeNotExists(DocPath::attr(attr))
}

/// `attr = value`.
pub fn eq(attr: &str, value: AttributeValue) -> Condition {
    Condition::Compare {
        op: CompareOp::Eq,
        left: Operand::Path(DocPath::attr(attr)),
        right: Operand::Value(value),
    }
}

/// `SET attr = value`.
pub fn set(attr: &str, value: AttributeValue) -> Update {
    Update {
        set: vec![(DocPath::attr(attr), UpdateValue::Value(value))],
        ..Update::default()
    }
}

/// `SET attr = attr + delta`.
pub fn increment(attr: &str, delta: &str) -> Update {
    Update {
        set: vec![(
            DocPath::attr(attr),
            UpdateValue::Plus(
                Box::new(UpdateValue::Path(DocPath::attr(attr))),
                Box::new(UpdateValue::Value(n(delta))),
            ),
        )],
        ..Update::default()
    }
}

/// Both engines, for tests that run the same body on each.
pub fn engines(dir: &std::path::Path) -> Vec<(&'static str, Box<dyn Engine>)> {
    vec![
        ("mem", Box::new(MemEngine::new())),
        (
            "sqlcipher",
            Box::new(
                SqlCipherEngine::open(&dir.join("engine.db"), &KEY, Durability::Relaxed).unwrap(),
            ),
        ),
    ]
}

/// A Scan of the whole hash space with no limits and no filter.
pub fn scan_all<'a>() -> ScanSpec<'a> {
    ScanSpec {
        hash_start: 0,
        hash_end: u64::MAX,
        exclusive_start: None,
        limit: None,
        byte_limit: usize::MAX,
        filter: None,
    }
}

/// The key `pk` = `"p{pk}"` (S), `sk` = `sk` (N) of a `range_schema(ScalarType::N)` table.
pub fn pk_sk(pk: u8, sk: u8) -> Item {
    item(&[("pk", s(&format!("p{pk}"))), ("sk", n(&sk.to_string()))])
}

/// Complements `len` bytes at `offset` of the file at `path` and syncs it.
pub fn flip(path: &std::path::Path, offset: u64, len: usize) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut buf = vec![0u8; len];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut buf).unwrap();
    for b in &mut buf {
        *b = !*b;
    }
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&buf).unwrap();
    f.sync_all().unwrap();
}

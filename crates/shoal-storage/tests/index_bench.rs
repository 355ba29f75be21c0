//! Cost of secondary index maintenance in `apply_batch`: the same writes with no index, two
//! local indexes and one global index (outbox). Ignored by default; run with
//! `cargo test -p shoal-storage --release --test index_bench -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::*;
use shoal_storage::{Command, Durability, Partition, SqlCipherEngine};
use shoal_types::index::{IndexDef, IndexKind, IndexStatus, Projection, ProjectionType};
use shoal_types::key::{KeyAttr, KeySchema};
use shoal_types::{Item, ScalarType};

const WRITES: u64 = 20_000;
const PER_BATCH: u64 = 16;

fn def(id: u32, kind: IndexKind, hash: &str, range: &str) -> IndexDef {
    IndexDef {
        id,
        name: format!("i{id}"),
        kind,
        key_schema: KeySchema {
            hash: KeyAttr {
                name: hash.into(),
                ty: ScalarType::S,
            },
            range: Some(KeyAttr {
                name: range.into(),
                ty: ScalarType::N,
            }),
        }
        .into(),
        projection: Projection {
            kind: ProjectionType::All,
            non_key_attributes: vec![],
        },
        status: IndexStatus::Active,
        backfilling: false,
    }
}

fn item_of(i: u64) -> Item {
    item(&[
        ("pk", s(&format!("user{}", i % 1000))),
        ("sk", n(&(i / 1000).to_string())),
        ("a", n(&(i % 97).to_string())),
        ("b", n(&(i % 13).to_string())),
        ("g", s(&format!("g{}", i % 50))),
        ("payload", s(&"x".repeat(500))),
    ])
}

fn run(name: &str, indexes: Vec<IndexDef>) {
    let dir = tempfile::tempdir().unwrap();
    let e = SqlCipherEngine::open(&dir.path().join("b.db"), &KEY, Durability::Relaxed).unwrap();
    let p = Partition::new(Box::new(e), range_schema(ScalarType::N)).unwrap();
    p.set_indexes(indexes).unwrap();
    let started = Instant::now();
    let mut i = 0;
    while i < WRITES {
        let cmds: Vec<Command> = (i..i + PER_BATCH).map(|j| put(item_of(j))).collect();
        for r in p.apply_batch(p.applied_index() + 1, &cmds) {
            r.unwrap();
        }
        i += PER_BATCH;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name}: {WRITES} puts in batches of {PER_BATCH}: {secs:.2}s = {:.0}/s",
        WRITES as f64 / secs
    );
}

#[test]
#[ignore = "benchmark"]
fn bench_index_maintenance() {
    run("no index", vec![]);
    run(
        "2 LSIs",
        vec![
            def(0, IndexKind::Local, "pk", "a"),
            def(1, IndexKind::Local, "pk", "b"),
        ],
    );
    run("1 GSI", vec![def(2, IndexKind::Global, "g", "a")]);
}

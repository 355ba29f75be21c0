//! `SqlLogStore`: the durable shared Raft log in a SQLCipher file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure by design

use std::path::Path;

use shoal_raft::{
    ConfState, Entry, GroupId, GroupState, GroupWrite, HardState, LogBatch, LogStore, RaftError,
    SqlLogStore,
};

const KEY: [u8; 32] = [7u8; 32];

fn entry(index: u64, term: u64, data: &str) -> Entry {
    Entry {
        index,
        term,
        data: data.as_bytes().to_vec().into(),
        context: format!("ctx-{index}").into_bytes().into(),
        ..Entry::default()
    }
}

fn hard(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..HardState::default()
    }
}

fn conf(voters: &[u64], learners: &[u64]) -> ConfState {
    ConfState {
        voters: voters.to_vec(),
        learners: learners.to_vec(),
        ..ConfState::default()
    }
}

fn open(path: &Path) -> SqlLogStore {
    SqlLogStore::open(path, &KEY).unwrap()
}

fn group(loaded: &[(GroupId, GroupState)], g: GroupId) -> &GroupState {
    &loaded
        .iter()
        .find(|(id, _)| *id == g)
        .unwrap_or_else(|| panic!("group {g} missing from load()"))
        .1
}

/// (index, term, data) of a group's loaded entries.
fn summary(state: &GroupState) -> Vec<(u64, u64, String)> {
    state
        .entries
        .iter()
        .map(|e| (e.index, e.term, String::from_utf8(e.data.to_vec()).unwrap()))
        .collect()
}

fn write_one(store: &mut SqlLogStore, w: GroupWrite) {
    store.write(&LogBatch { groups: vec![w] }).unwrap();
}

#[test]
fn round_trip_of_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("raft.db"));
    assert!(store.load().unwrap().is_empty(), "a new log has no groups");
    let mut cs = conf(&[1, 2, 3], &[4]);
    cs.voters_outgoing = vec![1, 2, 5];
    cs.learners_next = vec![5];
    cs.auto_leave = true;
    write_one(
        &mut store,
        GroupWrite {
            group: 42,
            snapshot: Some((5, 5, conf(&[1], &[]))),
            entries: vec![entry(6, 5, "a"), entry(7, 6, "b")],
            hard_state: Some(hard(6, 2, 7)),
            conf_state: Some(cs.clone()),
            ..Default::default()
        },
    );
    let mut conf_entry = entry(8, 6, "cc");
    conf_entry.entry_type = raft::eraftpb::EntryType::EntryConfChangeV2;
    write_one(
        &mut store,
        GroupWrite {
            group: 42,
            entries: vec![conf_entry],
            ..Default::default()
        },
    );
    let loaded = store.load().unwrap();
    assert_eq!(loaded.len(), 1);
    let g = group(&loaded, 42);
    assert_eq!((g.snapshot_index, g.snapshot_term), (5, 5));
    assert_eq!(g.hard_state, hard(6, 2, 7));
    assert_eq!(
        g.conf_state, cs,
        "conf_state written after the snapshot wins"
    );
    assert_eq!(
        summary(g),
        vec![
            (6, 5, "a".to_string()),
            (7, 6, "b".to_string()),
            (8, 6, "cc".to_string())
        ]
    );
    assert_eq!(&g.entries[1].context[..], b"ctx-7");
    assert_eq!(
        g.entries[2].entry_type,
        raft::eraftpb::EntryType::EntryConfChangeV2
    );
    assert_eq!(
        g.entries[0].entry_type,
        raft::eraftpb::EntryType::EntryNormal
    );
}

#[test]
fn one_batch_writes_ten_groups_and_removes_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("raft.db"));
    let batch = LogBatch {
        groups: (0..10u64)
            .map(|g| GroupWrite {
                group: g,
                entries: (1..=g + 1)
                    .map(|i| entry(i, 1, &format!("g{g}-{i}")))
                    .collect(),
                hard_state: Some(hard(1, 1, g + 1)),
                conf_state: Some(conf(&[1, 2, 3], &[])),
                ..Default::default()
            })
            .collect(),
    };
    store.write(&batch).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded.len(), 10);
    for g in 0..10u64 {
        let s = group(&loaded, g);
        assert_eq!(s.entries.len() as u64, g + 1, "group {g}");
        assert_eq!(s.hard_state.commit, g + 1);
        assert_eq!(summary(s).last().unwrap().2, format!("g{g}-{}", g + 1));
    }
    // Removing a group deletes all of it; another group's write in the same batch lands.
    store
        .write(&LogBatch {
            groups: vec![
                GroupWrite {
                    group: 3,
                    removed: true,
                    ..Default::default()
                },
                GroupWrite {
                    group: 4,
                    entries: vec![entry(6, 2, "g4-6")],
                    ..Default::default()
                },
            ],
        })
        .unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded.len(), 9);
    assert!(loaded.iter().all(|(g, _)| *g != 3), "group 3 was removed");
    assert_eq!(group(&loaded, 4).entries.len(), 6);
}

#[test]
fn appending_truncates_the_conflicting_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("raft.db"));
    write_one(
        &mut store,
        GroupWrite {
            group: 1,
            entries: (1..=6).map(|i| entry(i, 1, &format!("old{i}"))).collect(),
            ..Default::default()
        },
    );
    // A new leader overwrites from index 4: entries 4..=6 of term 1 go, even 6 which the new
    // append does not cover.
    write_one(
        &mut store,
        GroupWrite {
            group: 1,
            entries: vec![entry(4, 2, "new4"), entry(5, 2, "new5")],
            ..Default::default()
        },
    );
    let loaded = store.load().unwrap();
    assert_eq!(
        summary(group(&loaded, 1)),
        vec![
            (1, 1, "old1".to_string()),
            (2, 1, "old2".to_string()),
            (3, 1, "old3".to_string()),
            (4, 2, "new4".to_string()),
            (5, 2, "new5".to_string()),
        ]
    );
}

#[test]
fn compaction_and_snapshot_reset() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("raft.db"));
    write_one(
        &mut store,
        GroupWrite {
            group: 9,
            entries: (1..=10).map(|i| entry(i, 1, &format!("e{i}"))).collect(),
            hard_state: Some(hard(1, 1, 10)),
            ..Default::default()
        },
    );
    write_one(
        &mut store,
        GroupWrite {
            group: 9,
            compact_to: Some(8),
            ..Default::default()
        },
    );
    let loaded = store.load().unwrap();
    let idx: Vec<u64> = group(&loaded, 9).entries.iter().map(|e| e.index).collect();
    assert_eq!(idx, vec![8, 9, 10], "entries below compact_to are dropped");
    // A snapshot reset drops every entry (also those above the snapshot) and restarts the log
    // after it; entries in the same write follow the snapshot.
    write_one(
        &mut store,
        GroupWrite {
            group: 9,
            snapshot: Some((20, 3, conf(&[1, 2], &[3]))),
            entries: vec![entry(21, 3, "after")],
            hard_state: Some(hard(3, 0, 20)),
            ..Default::default()
        },
    );
    let loaded = store.load().unwrap();
    let g = group(&loaded, 9);
    assert_eq!((g.snapshot_index, g.snapshot_term), (20, 3));
    assert_eq!(g.conf_state, conf(&[1, 2], &[3]));
    assert_eq!(summary(g), vec![(21, 3, "after".to_string())]);
    assert_eq!(g.hard_state, hard(3, 0, 20));
}

#[test]
fn reopen_after_drop_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.db");
    {
        let mut store = open(&path);
        for i in 1..=50u64 {
            write_one(
                &mut store,
                GroupWrite {
                    group: i % 3,
                    entries: vec![entry(i, 1, &format!("v{i}"))],
                    hard_state: Some(hard(1, 1, i)),
                    ..Default::default()
                },
            );
        }
    }
    let mut store = open(&path);
    let loaded = store.load().unwrap();
    assert_eq!(loaded.len(), 3);
    let total: usize = loaded.iter().map(|(_, s)| s.entries.len()).sum();
    assert_eq!(total, 50);
    assert_eq!(group(&loaded, 2).hard_state.commit, 50);
    assert_eq!(summary(group(&loaded, 1))[0], (1, 1, "v1".to_string()));
}

#[test]
fn wrong_key_is_an_error_and_the_file_is_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.db");
    {
        let mut store = open(&path);
        write_one(
            &mut store,
            GroupWrite {
                group: 1,
                entries: vec![entry(1, 1, "secret-payload-marker")],
                ..Default::default()
            },
        );
    }
    match SqlLogStore::open(&path, &[8u8; 32]) {
        Err(RaftError::Log(msg)) => assert!(msg.contains("wrong key"), "{msg}"),
        Err(other) => panic!("expected a Log error, got {other:?}"),
        Ok(_) => panic!("opening with the wrong key must fail"),
    }
    for name in ["raft.db", "raft.db-wal"] {
        let p = dir.path().join(name);
        if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !bytes
                    .windows(b"secret-payload-marker".len())
                    .any(|w| w == b"secret-payload-marker"),
                "{name} holds plaintext"
            );
        }
    }
    // The right key still opens it.
    let mut store = open(&path);
    assert_eq!(store.load().unwrap().len(), 1);
}

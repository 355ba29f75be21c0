//! `SegLogStore`: the durable shared Raft log as encrypted, append-only segment files.
//!
//! Every test compares the store with the reference semantics of a log ([`MemLogStore`], which
//! applies [`GroupWrite`]s in memory): after reopening, after segment rotations, after a crash
//! tore the last record at any byte, and after migrating a legacy SQLCipher log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure by design

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_raft::{
    ConfState, Entry, EntryType, GroupId, GroupState, GroupWrite, HardState, LogBatch, LogStore,
    MemLogStore, RaftError, SegLogStore, SqlLogStore,
};

const KEY: [u8; 32] = [7u8; 32];
const MARKER: &str = "secret-payload-marker";

/// Everything a loaded group holds, comparable.
type Summary = Vec<(
    GroupId,
    (u64, u64, u64),
    (Vec<u64>, Vec<u64>, Vec<u64>, Vec<u64>, bool),
    (u64, u64),
    Vec<(u64, u64, i32, Vec<u8>, Vec<u8>)>,
)>;

fn summary(loaded: Vec<(GroupId, GroupState)>) -> Summary {
    loaded
        .into_iter()
        .map(|(g, st)| {
            let hs = &st.hard_state;
            let cs = &st.conf_state;
            let after = st.snapshot_index;
            (
                g,
                (hs.term, hs.vote, hs.commit),
                (
                    cs.voters.clone(),
                    cs.learners.clone(),
                    cs.voters_outgoing.clone(),
                    cs.learners_next.clone(),
                    cs.auto_leave,
                ),
                (st.snapshot_index, st.snapshot_term),
                st.entries
                    .iter()
                    .filter(|e| e.index > after)
                    .map(|e| {
                        (
                            e.index,
                            e.term,
                            e.entry_type as i32,
                            e.data.to_vec(),
                            e.context.to_vec(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

fn state(store: &mut impl LogStore) -> Summary {
    summary(store.load().unwrap())
}

/// Random batches with the shapes the driver writes: appends (sometimes replacing a suffix),
/// hard and conf states, compactions, snapshot resets and, rarely, a removed group.
struct Gen {
    rng: StdRng,
    last: [u64; 6],
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: StdRng::seed_from_u64(seed),
            last: [0; 6],
        }
    }

    fn batch(&mut self) -> LogBatch {
        let mut groups = Vec::new();
        for g in 0..6u64 {
            if !self.rng.random_bool(0.5) {
                continue;
            }
            let last = &mut self.last[g as usize];
            let mut w = GroupWrite::new(g);
            let roll: u32 = self.rng.random_range(0..100);
            if roll < 2 {
                w.removed = true;
                *last = 0;
                groups.push(w);
                continue;
            }
            if roll < 6 {
                *last += 5;
                w.snapshot = Some((
                    *last,
                    3,
                    ConfState {
                        voters: vec![1, 2, 3],
                        learners: vec![g + 4],
                        ..ConfState::default()
                    },
                ));
            }
            let n = self.rng.random_range(0..4u64);
            let first = if *last > 2 && self.rng.random_bool(0.1) {
                *last - 1
            } else {
                *last + 1
            };
            for i in 0..n {
                let size = self.rng.random_range(0..300);
                let mut data = vec![0u8; size];
                self.rng.fill(&mut data[..]);
                if i == 0 {
                    data.extend_from_slice(MARKER.as_bytes());
                }
                w.entries.push(Entry {
                    index: first + i,
                    term: 2 + first / 50,
                    entry_type: if self.rng.random_bool(0.1) {
                        EntryType::EntryConfChangeV2
                    } else {
                        EntryType::EntryNormal
                    },
                    data: data.into(),
                    context: format!("ctx-{}", first + i).into_bytes().into(),
                    ..Entry::default()
                });
            }
            if n > 0 {
                *last = first + n - 1;
            }
            if self.rng.random_bool(0.6) {
                w.hard_state = Some(HardState {
                    term: 2 + *last / 50,
                    vote: self.rng.random_range(0..4),
                    commit: last.saturating_sub(1),
                    ..HardState::default()
                });
            }
            if self.rng.random_bool(0.05) {
                w.conf_state = Some(ConfState {
                    voters: vec![1, 2],
                    voters_outgoing: vec![1, 2, 3],
                    auto_leave: true,
                    ..ConfState::default()
                });
            }
            if self.rng.random_bool(0.2) {
                w.compact_to = Some(last.saturating_sub(self.rng.random_range(0..8)));
            }
            groups.push(w);
        }
        LogBatch { groups }
    }
}

fn open(dir: &Path) -> SegLogStore {
    SegLogStore::open(dir, &KEY).unwrap()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    out.sort();
    out
}

#[test]
fn random_batches_match_the_reference_across_reopens_and_rotations() {
    for seed in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let mut reference = MemLogStore::new();
        let mut store = open(dir.path());
        store.set_segment_bytes(16 << 10);
        let mut g = Gen::new(seed);
        let mut rotations = 0;
        for round in 0..400 {
            let batch = g.batch();
            let before = store.current_segment();
            store.write(&batch).unwrap();
            reference.write(&batch).unwrap();
            rotations += usize::from(store.current_segment() != before);
            if round % 97 == 0 {
                drop(store);
                store = open(dir.path());
                store.set_segment_bytes(16 << 10);
            }
            assert_eq!(
                state(&mut store),
                state(&mut reference),
                "seed {seed} round {round}"
            );
        }
        assert!(rotations >= 3, "seed {seed}: only {rotations} rotations");
        // Rotation and reopening delete what the checkpoints replaced.
        assert_eq!(segments(dir.path()).len(), 1, "seed {seed}");
        drop(store);
        assert_eq!(
            state(&mut open(dir.path())),
            state(&mut reference),
            "seed {seed}"
        );
    }
}

#[test]
fn a_torn_last_record_loses_only_that_write_at_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gen::new(42);
    let mut reference = MemLogStore::new();
    // (segment length after the write, the reference state then); the first is the checkpoint.
    let mut states = Vec::new();
    {
        let mut store = open(dir.path());
        let seg = segments(dir.path()).pop().unwrap();
        states.push((
            std::fs::metadata(&seg).unwrap().len(),
            state(&mut reference),
        ));
        for _ in 0..12 {
            let batch = g.batch();
            store.write(&batch).unwrap();
            reference.write(&batch).unwrap();
            states.push((
                std::fs::metadata(&seg).unwrap().len(),
                state(&mut reference),
            ));
        }
    }
    let seg = segments(dir.path()).pop().unwrap();
    let full = std::fs::read(&seg).unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let first_record_end = states[0].0 as usize;
    for cut in first_record_end..=full.len() {
        let copy = crashed.path().join(seg.file_name().unwrap());
        for old in segments(crashed.path()) {
            std::fs::remove_file(old).unwrap();
        }
        std::fs::write(&copy, &full[..cut]).unwrap();
        // The state of the last write whose record ends at or before the cut.
        let expected = &states
            .iter()
            .rev()
            .find(|(len, _)| *len as usize <= cut)
            .unwrap()
            .1;
        let mut store = open(crashed.path());
        assert_eq!(&state(&mut store), expected, "cut at byte {cut}");
    }
}

#[test]
fn a_changed_byte_before_the_last_record_or_a_wrong_key_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gen::new(7);
    {
        let mut store = open(dir.path());
        for _ in 0..5 {
            store.write(&g.batch()).unwrap();
        }
    }
    match SegLogStore::open(dir.path(), &[8u8; 32]) {
        Err(RaftError::Log(msg)) => assert!(msg.contains("wrong key"), "{msg}"),
        other => panic!("opening with the wrong key must fail: {other:?}"),
    }
    let seg = segments(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    match SegLogStore::open(dir.path(), &KEY) {
        Err(RaftError::Log(msg)) => assert!(msg.contains("does not authenticate"), "{msg}"),
        other => panic!("a changed byte must fail the open: {other:?}"),
    }
}

#[test]
fn segments_hold_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store.set_segment_bytes(8 << 10);
    let mut g = Gen::new(3);
    for _ in 0..200 {
        store.write(&g.batch()).unwrap();
    }
    drop(store);
    let segs = segments(dir.path());
    assert!(!segs.is_empty());
    for seg in segs {
        let bytes = std::fs::read(&seg).unwrap();
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes())
                && !bytes.windows(4).any(|w| w == b"ctx-"),
            "{} holds plaintext",
            seg.display()
        );
    }
}

#[test]
fn leftovers_of_a_crash_during_rotation_are_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let mut reference = MemLogStore::new();
    let mut g = Gen::new(11);
    let mut store = open(dir.path());
    store.set_segment_bytes(4 << 10);
    let mut saved = None;
    while store.current_segment() < 4 {
        if saved.is_none() && store.current_segment() == 2 {
            let seg = segments(dir.path()).pop().unwrap();
            saved = Some((seg.clone(), std::fs::read(&seg).unwrap()));
        }
        let batch = g.batch();
        store.write(&batch).unwrap();
        reference.write(&batch).unwrap();
    }
    drop(store);
    // An older segment whose deletion was lost, and a new segment's temporary file a crash cut
    // short: the first replays before the newer checkpoint, the second is removed.
    let (path, bytes) = saved.unwrap();
    std::fs::write(&path, bytes).unwrap();
    let tmp = dir.path().join("0000000000000009.seg.tmp");
    std::fs::write(&tmp, b"SHOALRLG partial").unwrap();
    let mut store = open(dir.path());
    assert_eq!(state(&mut store), state(&mut reference));
    assert!(!tmp.exists());
    assert_eq!(segments(dir.path()).len(), 1);
}

#[test]
fn a_legacy_sqlcipher_log_is_migrated_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("raft.db");
    let mut reference = MemLogStore::new();
    let mut g = Gen::new(5);
    {
        let mut old = SqlLogStore::open(&legacy, &KEY).unwrap();
        for _ in 0..50 {
            let batch = g.batch();
            old.write(&batch).unwrap();
            reference.write(&batch).unwrap();
        }
    }
    let expected = state(&mut reference);
    let logdir = dir.path().join("raft-log");
    let mut store = SegLogStore::open_migrating(&logdir, &KEY, &legacy).unwrap();
    assert_eq!(state(&mut store), expected);
    assert!(!legacy.exists());
    // Writes go on in the new log, and a second open does not look for the legacy file.
    let batch = g.batch();
    store.write(&batch).unwrap();
    reference.write(&batch).unwrap();
    drop(store);
    let mut store = SegLogStore::open_migrating(&logdir, &KEY, &legacy).unwrap();
    assert_eq!(state(&mut store), state(&mut reference));
}

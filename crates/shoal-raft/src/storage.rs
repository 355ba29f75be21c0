//! One group's in-memory view of its log, implementing [`raft::Storage`].
//!
//! Holds the entries since the last compaction (or snapshot), the hard state, the conf state as of the
//! applied index and the last generated snapshot. Entries are appended here in `Core::ready`, before the
//! round's batch is durable; raft reads them only after `Core::persisted` advanced it.

use std::cell::Cell;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

/// The in-memory log of one group.
#[derive(Default)]
pub(crate) struct GroupStorage {
    pub(crate) hard_state: HardState,
    /// Membership as of the applied index.
    pub(crate) conf_state: ConfState,
    /// Index of the last entry dropped (compaction or snapshot); the log holds `trunc_index + 1 ..`.
    trunc_index: u64,
    trunc_term: u64,
    entries: Vec<Entry>,
    /// The last snapshot generated for sending.
    snapshot: Option<Snapshot>,
    /// Set by raft asking for a snapshot the storage does not have yet.
    snapshot_wanted: Cell<bool>,
}

impl GroupStorage {
    /// A storage whose log starts after `(index, term)` with `conf_state`.
    pub(crate) fn with_snapshot(index: u64, term: u64, conf_state: ConfState) -> GroupStorage {
        let hard_state = HardState {
            term,
            commit: index,
            ..HardState::default()
        };
        GroupStorage {
            hard_state,
            conf_state,
            trunc_index: index,
            trunc_term: term,
            ..GroupStorage::default()
        }
    }

    /// Restores from the durable state; `entries` must be ascending and contiguous.
    pub(crate) fn restore(
        hard_state: HardState,
        conf_state: ConfState,
        trunc: (u64, u64),
        entries: Vec<Entry>,
    ) -> GroupStorage {
        GroupStorage {
            hard_state,
            conf_state,
            trunc_index: trunc.0,
            trunc_term: trunc.1,
            entries,
            ..GroupStorage::default()
        }
    }

    pub(crate) fn first(&self) -> u64 {
        self.trunc_index + 1
    }

    pub(crate) fn last(&self) -> u64 {
        self.entries.last().map_or(self.trunc_index, |e| e.index)
    }

    pub(crate) fn term_of(&self, idx: u64) -> Option<u64> {
        if idx == self.trunc_index {
            return Some(self.trunc_term);
        }
        if idx < self.first() || idx > self.last() {
            return None;
        }
        self.entries
            .get((idx - self.first()) as usize)
            .map(|e| e.term)
    }

    /// Appends (truncating any conflicting suffix). Entries before the log's start are ignored.
    pub(crate) fn append(&mut self, ents: &[Entry]) {
        let ents: Vec<&Entry> = ents.iter().filter(|e| e.index > self.trunc_index).collect();
        let Some(first) = ents.first() else { return };
        let keep = first.index.saturating_sub(self.first()) as usize;
        self.entries.truncate(keep);
        self.entries.extend(ents.into_iter().cloned());
    }

    /// Drops every entry and restarts the log after `(index, term)`.
    pub(crate) fn reset(&mut self, index: u64, term: u64, conf_state: ConfState) {
        self.entries.clear();
        self.trunc_index = index;
        self.trunc_term = term;
        self.conf_state = conf_state;
        self.hard_state.commit = self.hard_state.commit.max(index);
        self.hard_state.term = self.hard_state.term.max(term);
        self.snapshot = None;
    }

    /// Drops entries with index < `to` (must be <= last + 1). Returns false when nothing was dropped.
    pub(crate) fn compact(&mut self, to: u64) -> bool {
        if to <= self.first() || to > self.last() + 1 {
            return false;
        }
        let Some(term) = self.term_of(to - 1) else {
            return false;
        };
        let drop = (to - self.first()) as usize;
        self.entries.drain(..drop);
        self.trunc_index = to - 1;
        self.trunc_term = term;
        true
    }

    /// A conf change was applied: a snapshot generated before it carries the old membership (a new
    /// learner would refuse it), so it is dropped.
    pub(crate) fn set_conf_state(&mut self, cs: ConfState) {
        self.conf_state = cs;
        self.snapshot = None;
    }

    pub(crate) fn snapshot_wanted(&self) -> bool {
        self.snapshot_wanted.get()
    }

    /// Forgets the generated snapshot (see `Core::drop_snapshot`).
    pub(crate) fn drop_snapshot(&mut self) {
        self.snapshot = None;
    }

    /// Installs a generated snapshot for raft to send.
    pub(crate) fn set_snapshot(&mut self, snap: Snapshot) {
        self.snapshot = Some(snap);
        self.snapshot_wanted.set(false);
    }
}

fn store_err(e: StorageError) -> raft::Error {
    raft::Error::Store(e)
}

impl raft::Storage for GroupStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(store_err(StorageError::Compacted));
        }
        if high > self.last() + 1 || low > high {
            return Err(store_err(StorageError::Unavailable));
        }
        let lo = (low - self.first()) as usize;
        let hi = (high - self.first()) as usize;
        let mut ents = self
            .entries
            .get(lo..hi)
            .map(<[Entry]>::to_vec)
            .unwrap_or_default();
        raft::util::limit_size(&mut ents, max_size.into());
        Ok(ents)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx < self.trunc_index {
            return Err(store_err(StorageError::Compacted));
        }
        self.term_of(idx)
            .ok_or_else(|| store_err(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if let Some(s) = &self.snapshot {
            let idx = s.get_metadata().index;
            if idx >= request_index && idx >= self.trunc_index {
                return Ok(s.clone());
            }
        }
        self.snapshot_wanted.set(true);
        Err(store_err(StorageError::SnapshotTemporarilyUnavailable))
    }
}

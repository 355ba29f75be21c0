//! What the durable log holds ([`GroupState`]), what one round writes ([`LogBatch`]) and the in-memory
//! log store used by tests and the simulator ([`MemLogStore`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use raft::eraftpb::{ConfState, Entry, HardState};

use crate::{GroupId, LogStore, RaftError};

/// The durable state of one group, as loaded at start.
#[derive(Clone, Debug, Default)]
pub struct GroupState {
    /// Term, vote and commit index.
    pub hard_state: HardState,
    /// Membership as of the last applied conf change (or snapshot).
    pub conf_state: ConfState,
    /// The log restarts after this index (0 for an empty log).
    pub snapshot_index: u64,
    /// Term of the entry at `snapshot_index`.
    pub snapshot_term: u64,
    /// Entries > snapshot_index, ascending. After a compaction the first entry may be later than
    /// `snapshot_index + 1`; the core then uses it only for its term.
    pub entries: Vec<Entry>,
}

/// Everything one round persists, for all groups: written atomically with one fsync.
#[derive(Clone, Debug, Default)]
pub struct LogBatch {
    /// One write per group that changed, in group order.
    pub groups: Vec<GroupWrite>,
}

impl LogBatch {
    /// True when nothing needs to be written.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// The changes to one group's log. A store applies them in field order: `removed`, `snapshot`,
/// `entries`, `hard_state`, `conf_state`, `compact_to`.
#[derive(Clone, Debug, Default)]
pub struct GroupWrite {
    /// The group.
    pub group: GroupId,
    /// Reset `(index, term, conf state)`: drop all entries, the log restarts after index.
    pub snapshot: Option<(u64, u64, ConfState)>,
    /// Append; the first deletes any existing entries with index >= entries[0].index.
    pub entries: Vec<Entry>,
    /// The new hard state.
    pub hard_state: Option<HardState>,
    /// The new conf state.
    pub conf_state: Option<ConfState>,
    /// Drop entries with index < this.
    pub compact_to: Option<u64>,
    /// The group is gone: delete everything of it.
    pub removed: bool,
}

impl GroupWrite {
    /// An empty write of `group`.
    pub fn new(group: GroupId) -> GroupWrite {
        GroupWrite {
            group,
            ..GroupWrite::default()
        }
    }

    /// True when the write changes nothing.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none()
            && self.entries.is_empty()
            && self.hard_state.is_none()
            && self.conf_state.is_none()
            && self.compact_to.is_none()
            && !self.removed
    }

    /// Applies this write to a group's state (the reference semantics every store follows).
    pub fn apply_to(&self, st: &mut GroupState) {
        if let Some((index, term, cs)) = &self.snapshot {
            st.entries.clear();
            st.snapshot_index = *index;
            st.snapshot_term = *term;
            st.conf_state = cs.clone();
        }
        if let Some(first) = self.entries.first() {
            st.entries.retain(|e| e.index < first.index);
            st.entries.extend(self.entries.iter().cloned());
        }
        if let Some(hs) = &self.hard_state {
            st.hard_state = hs.clone();
        }
        if let Some(cs) = &self.conf_state {
            st.conf_state = cs.clone();
        }
        if let Some(to) = self.compact_to {
            st.entries.retain(|e| e.index >= to);
        }
    }
}

#[derive(Default)]
struct MemInner {
    groups: BTreeMap<GroupId, GroupState>,
    writes: u64,
}

/// An in-memory [`LogStore`] (tests and the simulator). Clones share the same state, so a test can keep
/// one and restart a node from it.
#[derive(Clone, Default)]
pub struct MemLogStore {
    inner: Arc<Mutex<MemInner>>,
}

impl MemLogStore {
    /// An empty store.
    pub fn new() -> MemLogStore {
        MemLogStore::default()
    }

    /// How many `write` calls the store has seen.
    pub fn write_count(&self) -> u64 {
        self.inner.lock().writes
    }

    /// A copy of the stored state of `group`.
    pub fn group(&self, group: GroupId) -> Option<GroupState> {
        self.inner.lock().groups.get(&group).cloned()
    }
}

impl std::fmt::Debug for MemLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemLogStore").finish_non_exhaustive()
    }
}

impl LogStore for MemLogStore {
    fn load(&mut self) -> Result<Vec<(GroupId, GroupState)>, RaftError> {
        let inner = self.inner.lock();
        Ok(inner.groups.iter().map(|(g, s)| (*g, s.clone())).collect())
    }

    fn write(&mut self, batch: &LogBatch) -> Result<(), RaftError> {
        let mut inner = self.inner.lock();
        inner.writes += 1;
        for w in &batch.groups {
            if w.removed {
                inner.groups.remove(&w.group);
                continue;
            }
            w.apply_to(inner.groups.entry(w.group).or_default());
        }
        Ok(())
    }
}

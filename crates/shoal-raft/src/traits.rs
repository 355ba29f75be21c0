//! The seams: the state machine of a group, the durable log, the transport and the group factory.

use crate::{Committed, GroupMessage};
use crate::{GroupId, GroupState, LogBatch, NodeId, RaftError};

/// A group's replicated state machine. Called on the driver thread, in index order.
pub trait StateMachine: Send {
    /// Applies committed entries (index order, all > applied_index()). Must not fail: a state machine that
    /// cannot apply (its own storage error) records the failure for the entry's proposer itself.
    fn apply(&mut self, entries: Vec<Committed>);
    /// The last index applied to the state machine's own storage (a restart replays the log
    /// after the index its storage then holds).
    fn applied_index(&self) -> u64;
    /// The last index whose effects survive a crash of the machine: the log is compacted up to
    /// it at most (the entries after it may have to be replayed). Default: `applied_index`, for
    /// state machines whose every apply is durable when it returns.
    fn durable_index(&self) -> u64 {
        self.applied_index()
    }
    /// Everything applied so far (every entry passed to `apply`), serialized (sent to a replica that is far
    /// behind). The core labels it with the group's applied index.
    fn snapshot(&mut self) -> Result<Vec<u8>, String>;
    /// Replaces the whole state with a snapshot taken at `index`.
    fn restore(&mut self, data: &[u8], index: u64) -> Result<(), String>;
    /// Leadership of this group changed as seen by this node (called after the round that saw it).
    fn on_role_change(&mut self, _is_leader: bool, _leader: Option<NodeId>, _term: u64) {}
    /// Membership of the group changed (after a conf change was applied or a snapshot restored).
    fn on_conf_change(&mut self, _voters: &[NodeId], _learners: &[NodeId]) {}
    /// Every entry up to `index` was applied (including those without data: elections' empty
    /// entries and conf changes), after the `apply` calls for them. Not called for a snapshot.
    fn applied_through(&mut self, _index: u64) {}
}

/// Durable, shared log of all groups of one node. `write` is atomic and durable (one fsync) when it returns.
pub trait LogStore: Send {
    /// Everything stored, per group (called once at start).
    ///
    /// # Errors
    /// [`RaftError::Log`] when the log cannot be read.
    fn load(&mut self) -> Result<Vec<(GroupId, GroupState)>, RaftError>;
    /// Applies one round's writes of all groups atomically and durably.
    ///
    /// # Errors
    /// [`RaftError::Log`]; the driver stops (the in-memory state is then ahead of the durable one).
    fn write(&mut self, batch: &LogBatch) -> Result<(), RaftError>;
}

/// Carries raft messages to other nodes.
pub trait Transport: Send + Sync + 'static {
    /// Sends a batch to one node; best effort, never blocks (drop on overload; raft retries).
    fn send(&self, to: NodeId, msgs: Vec<GroupMessage>);
}

/// Called for groups found in the log at start (to rebuild their state machines) and for a message naming a
/// group this node does not have (return None to drop the message).
pub trait GroupFactory: Send + Sync + 'static {
    /// The state machine of `group`, or None when this node should not host it.
    fn open(&self, group: GroupId) -> Option<Box<dyn StateMachine>>;
}

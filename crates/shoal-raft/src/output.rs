//! What a round hands back to the caller: [`Round`] (to persist, to send now) and [`Output`].

use std::collections::BTreeMap;

use raft::Ready;

use crate::{GroupId, GroupMessage, LogBatch, NodeId, RaftError};

/// One round's work, from [`crate::Core::ready`]: persist `log` (one durable write), send `send_now`
/// (leader messages that may go out before the write), then hand the round to
/// [`crate::Core::persisted`].
pub struct Round {
    /// Everything to persist, all groups.
    pub log: LogBatch,
    /// Messages that may be sent before `log` is durable (a leader's appends and heartbeats).
    pub send_now: Vec<(NodeId, GroupMessage)>,
    pub(crate) readies: Vec<(GroupId, Ready)>,
}

impl Round {
    /// True when the round has nothing to persist, send or finish.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty() && self.send_now.is_empty() && self.readies.is_empty()
    }
}

impl std::fmt::Debug for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Round")
            .field("log", &self.log)
            .field("send_now", &self.send_now.len())
            .field("readies", &self.readies.len())
            .finish()
    }
}

/// What [`crate::Core::persisted`] returns: messages to send and reads that completed.
#[derive(Debug, Default)]
pub struct Output {
    /// Messages that may go out now that the round is durable, batched per destination node.
    pub send: Vec<(NodeId, Vec<GroupMessage>)>,
    /// `(read id, group, result)`: Ok once the local applied index reached the read index.
    pub reads: Vec<(u64, GroupId, Result<(), RaftError>)>,
}

/// Accumulates an [`Output`].
#[derive(Default)]
pub(crate) struct OutputBuilder {
    send: BTreeMap<NodeId, Vec<GroupMessage>>,
    reads: Vec<(u64, GroupId, Result<(), RaftError>)>,
}

impl OutputBuilder {
    pub(crate) fn send(&mut self, to: NodeId, msg: GroupMessage) {
        self.send.entry(to).or_default().push(msg);
    }

    pub(crate) fn read(&mut self, id: u64, group: GroupId, result: Result<(), RaftError>) {
        self.reads.push((id, group, result));
    }

    pub(crate) fn append(&mut self, other: &mut OutputBuilder) {
        for (to, msgs) in std::mem::take(&mut other.send) {
            self.send.entry(to).or_default().extend(msgs);
        }
        self.reads.append(&mut other.reads);
    }

    pub(crate) fn build(self) -> Output {
        Output {
            send: self.send.into_iter().collect(),
            reads: self.reads,
        }
    }
}

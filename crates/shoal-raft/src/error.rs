//! The crate's error type.

use crate::{GroupId, NodeId};

/// Why a Raft operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// This node is not the group's leader; `leader` is the leader it knows of, if any.
    #[error("not the leader of group {group} (leader: {leader:?})")]
    NotLeader {
        /// The group asked about.
        group: GroupId,
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// This node hosts no replica of the group.
    #[error("group {0} not found on this node")]
    GroupNotFound(GroupId),
    /// Raft refused the proposal (leadership in transfer, a conf change already pending, ...): retry.
    #[error("proposal dropped by raft; retry")]
    Dropped,
    /// The operation did not complete in time.
    #[error("raft operation timed out")]
    Timeout,
    /// The Raft driver has stopped.
    #[error("raft driver stopped")]
    Stopped,
    /// The durable log failed (or raft reported a storage-level failure).
    #[error("raft log: {0}")]
    Log(String),
    /// A message or entry could not be encoded or decoded.
    #[error("raft codec: {0}")]
    Codec(String),
}

impl RaftError {
    /// Maps an error reported by raft-rs.
    pub(crate) fn from_raft(e: raft::Error) -> RaftError {
        match e {
            raft::Error::ProposalDropped => RaftError::Dropped,
            raft::Error::CodecError(e) => RaftError::Codec(e.to_string()),
            other => RaftError::Log(other.to_string()),
        }
    }
}

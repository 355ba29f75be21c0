//! Multi-Raft for Shoal: every Raft group of a node (the metadata group and one group per table
//! partition) runs on one driver thread over one shared, durable log.
//!
//! Built on raft-rs ([`raft`], sans-I/O). The principal types:
//! - [`Core`]: the sans-I/O state of all groups (RawNodes, in-memory logs, [`StateMachine`]s). The
//!   deterministic simulator drives it directly.
//! - [`RaftNode`] / [`RaftHandle`]: one OS thread driving a `Core`, and the cheap async handle the rest
//!   of the node uses (propose, read index, conf changes, status).
//! - [`LogStore`]: the durable log of all groups ([`MemLogStore`] in memory, [`SegLogStore`] in
//!   encrypted append-only segment files; `SqlLogStore`, the older SQLCipher log, is read to
//!   migrate); [`Transport`]: carries [`GroupMessage`] batches to other nodes; [`GroupFactory`]:
//!   opens state machines of groups found in the log or named by an incoming message.
//!
//! # The round
//! The driver works in rounds. Each round it drains every pending input (messages, proposals, reads,
//! admin calls), ticks every group when the tick is due, then:
//! 1. **ready** ([`Core::ready`]): collects the Ready of every group into one [`Round`]: one
//!    [`LogBatch`] holding every group's new entries, hard state, conf state, snapshot and compaction,
//!    plus the messages a leader may send before persisting ([`Round::send_now`]);
//! 2. **persist once**: sends `send_now`, then [`LogStore::write`]s the batch: ONE durable write (one fsync)
//!    for all groups, however many there are (group commit);
//! 3. **send**: [`Core::persisted`] advances every group and returns the messages that needed the write to
//!    be durable first (votes, append responses), batched per destination node ([`Output::send`]);
//! 4. **apply**: committed entries are applied to each group's state machine in index order (empty no-ops
//!    are skipped, conf changes are applied to raft and persisted in the next batch), reads whose read index
//!    is applied complete ([`Output::reads`]), logs are compacted up to what the state machines made
//!    durable, and leadership changes are reported.
//!
//! Reads: [`Core::read_index`] gives a linearizable read point. A leader holding a read lease
//! answers it (and a follower's forwarded one) from its commit index; otherwise it costs a quorum
//! heartbeat round (raft's ReadIndex). The lease, why it is safe and its clock assumptions are
//! in `lease.rs`; [`Config::lease_ticks`] sets or disables it.
//!
//! Snapshots: a bootstrapped group starts from a snapshot at index 5 / term 5 holding its voters, so a
//! replica that joins empty ([`GroupInit::Join`]) always catches up through a snapshot. When raft wants to
//! send one, the first request fails with "temporarily unavailable" and the core builds it from
//! [`StateMachine::snapshot`] before the next round.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use shoal_raft::*;
//! # async fn example(transport: Arc<dyn Transport>, factory: Arc<dyn GroupFactory>, sm: Box<dyn StateMachine>) -> Result<(), RaftError> {
//! let node = RaftNode::start(Config { node_id: 1, ..Config::default() }, Box::new(MemLogStore::new()), transport, factory)?;
//! let raft = node.handle();
//! raft.create_group(1, GroupInit::Bootstrap { voters: vec![1] }, sm).await?;
//! let index = raft.propose(1, b"ctx".to_vec(), b"data".to_vec()).await?;
//! raft.read_index(1).await?;
//! # let _ = index; node.shutdown(); Ok(()) }
//! ```

mod config;
mod core;
mod error;
mod exit;
mod group;
mod lease;
mod log;
mod logger;
mod message;
mod node;
mod output;
mod seg_log;
mod sql_log;
mod status;
mod storage;
mod traits;

pub use raft::eraftpb::{
    ConfChangeSingle, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType, HardState,
    Message, MessageType,
};

pub use crate::config::{Config, GroupInit};
pub use crate::core::{BOOTSTRAP_INDEX, BOOTSTRAP_TERM, Core, TRANSFER_TIMEOUT_TICKS};
pub use crate::error::RaftError;
pub use crate::exit::DriverExit;
pub use crate::lease::Clock;
pub use crate::log::{GroupState, GroupWrite, LogBatch, MemLogStore};
pub use crate::message::{Committed, GroupMessage};
pub use crate::node::{RaftHandle, RaftNode};
pub use crate::output::{Output, Round};
pub use crate::status::GroupStatus;
pub use crate::traits::{GroupFactory, LogStore, StateMachine, Transport};
pub use seg_log::{DEFAULT_SEGMENT_BYTES, SegLogStore};
pub use sql_log::SqlLogStore;

/// A node's id; also its Raft peer id in every group (1-based).
pub type NodeId = u64;
/// A Raft group's id (the partition's cluster-unique id; 0 is the metadata group).
pub type GroupId = u64;
/// The metadata group.
pub const META_GROUP: GroupId = 0;

#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod lease_tests;

//! Driver configuration and how a group starts.

use std::time::Duration;

use crate::NodeId;

/// Configuration of a node's Raft driver.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id (the Raft peer id in every group), non-zero.
    pub node_id: NodeId,
    /// Interval between ticks of every group.
    pub tick: Duration,
    /// Ticks without hearing from a leader before an election (the shortest election timeout).
    pub election_ticks: usize,
    /// Spread of the election timeout: each timeout is drawn from
    /// `[election_ticks, election_ticks + election_jitter_ticks)` (so that replicas rarely time
    /// out together). Default: `election_ticks` (raft's usual `[election, 2 * election)`).
    /// 0 or 1 makes the timeout exactly `election_ticks`: nothing random remains in the driver
    /// (raft-rs draws the timeout from a thread-local RNG nobody can seed), which the
    /// deterministic simulator uses — it gives every node its own `election_ticks` instead.
    pub election_jitter_ticks: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: usize,
    /// Byte limit of the entries of one append message.
    pub max_size_per_msg: u64,
    /// Append messages in flight per follower.
    pub max_inflight: usize,
    /// Entries kept after the applied index before the log is compacted.
    pub compact_after: u64,
    /// Length of a leader's read lease in ticks (see `lease.rs`); 0 turns leases off (every
    /// linearizable read then costs a quorum round). Must be at most `election_ticks - 3` of
    /// EVERY voter of a group: one tick for where in a tick period a timer was reset, one for
    /// the catch-up tick a stalled driver may run, one of margin. The lease lasts 9/10 of
    /// `lease_ticks * tick` on the leader's clock, which stays safe while the nodes' clocks run
    /// at rates within 10% of each other. A larger value is clamped to `election_ticks - 3`.
    pub lease_ticks: usize,
}

impl Config {
    /// The lease length in milliseconds (0: leases off).
    pub fn lease_ms(&self) -> u64 {
        let ticks = self.lease_ticks.min(self.election_ticks.saturating_sub(3));
        let tick_ms = u64::try_from(self.tick.as_millis()).unwrap_or(u64::MAX);
        (ticks as u64).saturating_mul(tick_ms).saturating_mul(9) / 10
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            node_id: 1,
            tick: Duration::from_millis(100),
            election_ticks: 10,
            election_jitter_ticks: 10,
            heartbeat_ticks: 2,
            max_size_per_msg: 1 << 20,
            max_inflight: 256,
            compact_after: 1000,
            lease_ticks: 7,
        }
    }
}

/// How a new group replica starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupInit {
    /// A new group: the log starts after a snapshot at index 5 / term 5 holding these voters.
    Bootstrap {
        /// The initial voters.
        voters: Vec<NodeId>,
    },
    /// Empty: waits for the leader's snapshot (the replica must already be in the leader's config).
    Join,
}

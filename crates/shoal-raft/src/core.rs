//! [`Core`]: the sans-I/O multi-Raft state of one node.

use std::collections::BTreeMap;
use std::sync::Arc;

use raft::eraftpb::{ConfChangeV2, ConfState, Entry};

use crate::group::Group;
use crate::lease::{Clock, MonotonicClock};
use crate::output::OutputBuilder;
use crate::storage::GroupStorage;
use crate::{
    Config, GroupFactory, GroupId, GroupInit, GroupMessage, GroupState, GroupStatus, GroupWrite,
    LogBatch, NodeId, Output, RaftError, Round, StateMachine,
};

/// Log position of a bootstrapped group's initial snapshot (TiKV's RAFT_INIT_LOG_INDEX): a replica that
/// joins empty (first index 1) therefore always receives a snapshot.
pub const BOOTSTRAP_INDEX: u64 = 5;
/// Term of a bootstrapped group's initial snapshot.
pub const BOOTSTRAP_TERM: u64 = 5;

/// Ticks after which a leadership transfer that has not completed is abandoned (the leader
/// takes proposals again): 300 ms at the default tick, against a whole election timeout in raft.
pub const TRANSFER_TIMEOUT_TICKS: usize = 3;

/// The sans-I/O core: all groups' RawNodes, their in-memory logs and state machines. Deterministic given the
/// same calls (the simulator drives it directly; [`crate::RaftNode`] drives it from a thread).
///
/// Protocol: call [`Core::ready`], make `round.log` durable (sending `round.send_now` meanwhile), then
/// [`Core::persisted`]. No other method may be called between `ready` and `persisted`.
pub struct Core {
    config: Config,
    factory: Arc<dyn GroupFactory>,
    logger: slog::Logger,
    groups: BTreeMap<GroupId, Group>,
    /// Groups removed since the last round (their deletion goes into the next batch).
    removed: Vec<GroupId>,
    /// Groups removed from this node since it started: messages for them are dropped rather
    /// than recreate an empty replica (its peers may still count the removed one's log, and an
    /// empty replica told of a commit index it lacks stops raft). [`Core::create_group`] lifts it.
    tombstones: std::collections::HashSet<GroupId>,
    /// Results produced outside a round, returned by the next `persisted`.
    out: OutputBuilder,
    /// Set while the node stops: it refuses leadership handed to it ([`Core::set_draining`]).
    draining: bool,
    /// Time for read leases ([`Core::set_clock`]).
    clock: Arc<dyn Clock>,
}

impl Core {
    /// A core with no groups.
    pub fn new(config: Config, factory: Arc<dyn GroupFactory>) -> Core {
        Core {
            config,
            factory,
            logger: crate::logger::logger(),
            groups: BTreeMap::new(),
            removed: Vec::new(),
            tombstones: std::collections::HashSet::new(),
            out: OutputBuilder::default(),
            draining: false,
            clock: MonotonicClock::shared(),
        }
    }

    /// Replaces the clock read leases are timed by (the process's monotonic clock by default;
    /// the simulator's virtual clock in simulations).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Rebuilds the groups found in the log at start: opens each state machine through the factory and
    /// re-applies committed entries after its applied index (in the following rounds). Groups the factory
    /// does not open are skipped.
    ///
    /// # Errors
    /// A group's raft state is inconsistent (raft refuses it).
    pub fn load(&mut self, groups: Vec<(GroupId, GroupState)>) -> Result<(), RaftError> {
        for (id, st) in groups {
            let Some(sm) = self.factory.open(id) else {
                tracing::warn!(
                    group = id,
                    "group in the log but not opened by the factory; skipped"
                );
                continue;
            };
            let group = self.restore_group(id, st, sm)?;
            self.groups.insert(id, group);
        }
        Ok(())
    }

    fn restore_group(
        &self,
        id: GroupId,
        st: GroupState,
        sm: Box<dyn StateMachine>,
    ) -> Result<Group, RaftError> {
        let (trunc, entries) = split_log(&st);
        let last = entries.last().map_or(trunc.0, |e| e.index);
        let mut hs = st.hard_state;
        hs.commit = hs.commit.clamp(trunc.0, last);
        let applied = sm.applied_index().clamp(trunc.0, hs.commit);
        let storage = GroupStorage::restore(hs, st.conf_state, trunc, entries);
        let mut g = Group::new(&self.config, id, storage, sm, applied, &self.logger)?;
        g.forgot_leader(&self.config);
        Ok(g)
    }

    /// Creates a replica of `group` on this node (nothing happens when it already exists).
    ///
    /// # Errors
    /// Raft refuses the configuration.
    pub fn create_group(
        &mut self,
        group: GroupId,
        init: GroupInit,
        sm: Box<dyn StateMachine>,
    ) -> Result<(), RaftError> {
        if self.groups.contains_key(&group) {
            return Ok(());
        }
        self.tombstones.remove(&group);
        let g = match init {
            GroupInit::Bootstrap { voters } => self.bootstrap(group, voters, sm)?,
            GroupInit::Join => self.join(group, sm)?,
        };
        self.groups.insert(group, g);
        Ok(())
    }

    fn bootstrap(
        &self,
        id: GroupId,
        voters: Vec<NodeId>,
        sm: Box<dyn StateMachine>,
    ) -> Result<Group, RaftError> {
        let cs = ConfState {
            voters,
            ..ConfState::default()
        };
        let storage = GroupStorage::with_snapshot(BOOTSTRAP_INDEX, BOOTSTRAP_TERM, cs.clone());
        let hs = storage.hard_state.clone();
        let mut g = Group::new(&self.config, id, storage, sm, BOOTSTRAP_INDEX, &self.logger)?;
        let w = g.pending_mut();
        w.snapshot = Some((BOOTSTRAP_INDEX, BOOTSTRAP_TERM, cs));
        w.hard_state = Some(hs);
        Ok(g)
    }

    fn join(&self, id: GroupId, sm: Box<dyn StateMachine>) -> Result<Group, RaftError> {
        let mut g = Group::new(
            &self.config,
            id,
            GroupStorage::default(),
            sm,
            0,
            &self.logger,
        )?;
        // An empty hard state makes the group known to the log, so a restart reopens it.
        g.pending_mut().hard_state = Some(Default::default());
        g.forgot_leader(&self.config);
        Ok(g)
    }

    /// Drops the replica of `group`; its pending reads fail and the next batch deletes its log.
    pub fn remove_group(&mut self, group: GroupId) {
        if let Some(mut g) = self.groups.remove(&group) {
            g.fail_reads(&mut self.out, || RaftError::GroupNotFound(group));
            self.removed.push(group);
            self.tombstones.insert(group);
        }
    }

    /// Steps messages received from node `from`. A message for an unknown group asks the factory for a
    /// state machine and creates an empty (joining) replica, or is dropped.
    pub fn step(&mut self, _from: NodeId, msgs: Vec<GroupMessage>) {
        let now = self.clock.now_ms();
        for m in msgs {
            if self.draining && m.msg.get_msg_type() == raft::eraftpb::MessageType::MsgTimeoutNow {
                // A leader handing its leadership over to this stopping node: decline (the
                // transfer times out and the leader keeps it).
                continue;
            }
            if !self.groups.contains_key(&m.group) {
                if self.tombstones.contains(&m.group) {
                    continue;
                }
                let Some(sm) = self.factory.open(m.group) else {
                    continue;
                };
                if let Err(e) = self.create_group(m.group, GroupInit::Join, sm) {
                    tracing::warn!(group = m.group, error = %e, "cannot create joining group");
                    continue;
                }
            }
            if let Some(g) = self.groups.get_mut(&m.group) {
                g.step(m.msg, now);
            }
        }
    }

    /// Advances every group's logical clock by one tick.
    pub fn tick(&mut self) {
        for g in self.groups.values_mut() {
            g.tick();
            // A leader drops every proposal while it hands leadership over; raft gives up on a
            // transfer only after a whole election timeout (1 s by default). One that has not
            // completed in a few ticks (the transferee is lagging, unreachable or declining) is
            // abandoned sooner, so writes stall for at most that long.
            let raft = &mut g.node.raft;
            if raft.lead_transferee.is_some() && raft.election_elapsed >= TRANSFER_TIMEOUT_TICKS {
                raft.abort_leader_transfer();
            }
        }
    }

    fn group_mut(&mut self, group: GroupId) -> Result<&mut Group, RaftError> {
        self.groups
            .get_mut(&group)
            .ok_or(RaftError::GroupNotFound(group))
    }

    fn leader_mut(&mut self, group: GroupId) -> Result<&mut Group, RaftError> {
        let g = self.group_mut(group)?;
        if !g.is_leader() {
            return Err(g.not_leader());
        }
        Ok(g)
    }

    /// Proposes an entry; returns its index once the local leader appended it (not yet committed).
    ///
    /// # Errors
    /// [`RaftError::NotLeader`], [`RaftError::GroupNotFound`], [`RaftError::Dropped`].
    pub fn propose(
        &mut self,
        group: GroupId,
        context: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<u64, RaftError> {
        let g = self.leader_mut(group)?;
        g.node
            .propose(context, data)
            .map_err(RaftError::from_raft)?;
        Ok(g.node.raft.raft_log.last_index())
    }

    /// Proposes a membership change (applied when committed).
    ///
    /// # Errors
    /// As [`Core::propose`]; [`RaftError::Dropped`] while another conf change is pending.
    pub fn propose_conf_change(
        &mut self,
        group: GroupId,
        cc: ConfChangeV2,
    ) -> Result<(), RaftError> {
        let g = self.leader_mut(group)?;
        if g.node.raft.has_pending_conf() {
            return Err(RaftError::Dropped);
        }
        g.node
            .propose_conf_change(Vec::new(), cc)
            .map_err(RaftError::from_raft)
    }

    /// Asks for a linearizable read point; the result comes back in [`Output::reads`] under `id` once the
    /// local applied index reached the leader's commit index at the time of the call.
    pub fn read_index(&mut self, group: GroupId, id: u64) {
        let now = self.clock.now_ms();
        match self.groups.get_mut(&group) {
            Some(g) => g.read_index(id, now, &mut self.out),
            None => self
                .out
                .read(id, group, Err(RaftError::GroupNotFound(group))),
        }
    }

    /// Asks the leader of `group` (if this node) to hand leadership to `to`.
    pub fn transfer_leader(&mut self, group: GroupId, to: NodeId) {
        if let Some(g) = self.groups.get_mut(&group) {
            // Its target campaigns with a forced vote that ignores the followers' leases.
            g.lease.end();
            g.node.transfer_leader(to);
        }
    }

    /// While `draining`, leadership transfers to this node are declined (it is stopping and
    /// hands its own leaderships over).
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Forgets the snapshot `group` keeps for lagging followers (its data can no longer be
    /// served): the next follower that needs one makes the state machine take a new one.
    pub fn drop_snapshot(&mut self, group: GroupId) {
        if let Some(g) = self.groups.get_mut(&group) {
            g.node.mut_store().drop_snapshot();
        }
    }

    /// Starts an election in `group` now.
    ///
    /// # Errors
    /// [`RaftError::GroupNotFound`].
    pub fn campaign(&mut self, group: GroupId) -> Result<(), RaftError> {
        self.group_mut(group)?
            .node
            .campaign()
            .map_err(RaftError::from_raft)
    }

    /// Collects every group's Ready: what to persist (one batch) and messages that may go out now.
    pub fn ready(&mut self) -> Round {
        let mut writes: Vec<GroupWrite> = self
            .removed
            .drain(..)
            .map(|g| GroupWrite {
                removed: true,
                ..GroupWrite::new(g)
            })
            .collect();
        let mut send_now = Vec::new();
        let mut readies = Vec::new();
        let now = self.clock.now_ms();
        for (id, g) in &mut self.groups {
            g.maybe_renew_lease(now);
            g.maybe_generate_snapshot();
            if let Some(rd) = g.collect(&mut writes, &mut send_now) {
                readies.push((*id, rd));
            }
        }
        Round {
            log: LogBatch { groups: writes },
            send_now,
            readies,
        }
    }

    /// After `round.log` is durable: advances, applies committed entries, returns what to send/resolve.
    pub fn persisted(&mut self, round: Round) -> Output {
        let mut out = OutputBuilder::default();
        out.append(&mut self.out);
        let compact_after = self.config.compact_after;
        for (id, rd) in round.readies {
            if let Some(g) = self.groups.get_mut(&id) {
                g.finish(rd, compact_after, &mut out);
            }
        }
        out.build()
    }

    /// The status of every group on this node, in group order.
    pub fn status(&self) -> Vec<GroupStatus> {
        self.groups.values().map(GroupStatus::of).collect()
    }

    /// The leader of `group` known to this node.
    pub fn leader(&self, group: GroupId) -> Option<NodeId> {
        self.groups.get(&group).and_then(Group::leader)
    }

    /// Reads the leaders on this node answered under a read lease, over the groups it hosts.
    pub fn lease_reads(&self) -> u64 {
        self.groups.values().map(|g| g.lease_reads).sum()
    }

    /// True when this node hosts `group`.
    pub fn has_group(&self, group: GroupId) -> bool {
        self.groups.contains_key(&group)
    }
}

/// The truncation point `(index, term)` and the entries after it. When compaction left the durable log
/// starting past `snapshot_index + 1`, its first entry only serves as the truncation point.
fn split_log(st: &GroupState) -> ((u64, u64), Vec<Entry>) {
    let mut trunc = (st.snapshot_index, st.snapshot_term);
    let mut entries: &[Entry] = &st.entries;
    if let Some(first) = entries.first()
        && first.index > st.snapshot_index + 1
    {
        trunc = (first.index, first.term);
        entries = &entries[1..];
    }
    let entries = entries
        .iter()
        .filter(|e| e.index > trunc.0)
        .cloned()
        .collect();
    (trunc, entries)
}

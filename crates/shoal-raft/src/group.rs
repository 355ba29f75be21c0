//! One group replica on this node: its RawNode, in-memory log, state machine and pending reads.

use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message, MessageType, Snapshot,
};
use raft::{RawNode, ReadOnlyOption, Ready, SnapshotStatus, StateRole};

use crate::lease::{Lease, parse_renewal};
use crate::output::OutputBuilder;
use crate::storage::GroupStorage;
use crate::{
    Committed, Config, GroupId, GroupMessage, GroupWrite, NodeId, RaftError, StateMachine,
};

/// A group replica.
pub(crate) struct Group {
    pub(crate) id: GroupId,
    pub(crate) node: RawNode<GroupStorage>,
    pub(crate) sm: Box<dyn StateMachine>,
    /// Last index handed to (or skipped for) the state machine.
    pub(crate) applied: u64,
    /// Read ids waiting for their read index.
    waiting_reads: Vec<u64>,
    /// `(read id, read index)` waiting for `applied >= read index`.
    indexed_reads: Vec<(u64, u64)>,
    /// `(is leader, leader id)` last reported to the state machine.
    reported: (bool, u64),
    /// Writes of this group for the next batch besides raft's Ready (bootstrap, commit, conf, compaction).
    pending: GroupWrite,
    /// Snapshots sent this round (reported as finished after the round).
    snapshots_sent: Vec<NodeId>,
    /// The read lease while this replica leads (see `lease.rs`).
    pub(crate) lease: Lease,
    /// A read reached this leader since the last renewal started (no reads: no renewals).
    lease_used: bool,
    /// Reads answered under the lease (counted for the tests and the simulator).
    pub(crate) lease_reads: u64,
    /// Ticks left during which this replica drops vote requests: it restarted or was created by
    /// a message, so it no longer knows whether a leader's lease counts on it.
    quiet_ticks: usize,
}

impl Group {
    /// Builds a replica over `storage`; `applied` is where applying resumes.
    pub(crate) fn new(
        config: &Config,
        id: GroupId,
        storage: GroupStorage,
        sm: Box<dyn StateMachine>,
        applied: u64,
        logger: &slog::Logger,
    ) -> Result<Group, RaftError> {
        let raft_config = raft::Config {
            id: config.node_id,
            election_tick: config.election_ticks,
            // raft draws each timeout from [min, max); a one-tick range fixes it.
            min_election_tick: config.election_ticks,
            max_election_tick: config
                .election_ticks
                .saturating_add(config.election_jitter_ticks.max(1)),
            heartbeat_tick: config.heartbeat_ticks,
            applied,
            max_size_per_msg: config.max_size_per_msg,
            max_inflight_msgs: config.max_inflight,
            check_quorum: true,
            pre_vote: true,
            read_only_option: raft::ReadOnlyOption::Safe,
            ..raft::Config::default()
        };
        raft_config.validate().map_err(RaftError::from_raft)?;
        let node = RawNode::new(&raft_config, storage, logger).map_err(RaftError::from_raft)?;
        Ok(Group {
            id,
            node,
            sm,
            applied,
            waiting_reads: Vec::new(),
            indexed_reads: Vec::new(),
            reported: (false, 0),
            pending: GroupWrite::new(id),
            snapshots_sent: Vec::new(),
            lease: Lease::new(config.lease_ms()),
            lease_used: false,
            lease_reads: 0,
            quiet_ticks: 0,
        })
    }

    /// This replica lost (or never had) its memory of the group's leader: with leases on, it
    /// grants no vote for an election timeout.
    pub(crate) fn forgot_leader(&mut self, config: &Config) {
        if self.lease.enabled() {
            self.quiet_ticks = config.election_ticks;
        }
    }

    /// Advances the logical clock by one tick.
    pub(crate) fn tick(&mut self) {
        self.node.tick();
        self.quiet_ticks = self.quiet_ticks.saturating_sub(1);
        self.end_lease_if_transferring();
    }

    /// Steps a message from another node. A quiet replica drops vote requests (not a leader's
    /// forced transfer campaign); a follower's ReadIndex is answered at once under a lease.
    pub(crate) fn step(&mut self, msg: Message, now: u64) {
        match msg.get_msg_type() {
            MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
                if self.quiet_ticks > 0 && msg.context.as_ref() != raft::CAMPAIGN_TRANSFER => {}
            MessageType::MsgReadIndex => self.read(now, |node| {
                // Stale or misdirected messages are refused by raft; nothing to do about them.
                let _ = node.step(msg);
            }),
            _ => {
                let _ = self.node.step(msg);
            }
        }
        self.end_lease_if_transferring();
    }

    /// Runs `read` (a ReadIndex into raft). On the leader it notes the read for lease renewal
    /// and, while the lease holds, has raft answer it from the commit index: lease-based for
    /// this one read, safe again right after (raft's safe reads in flight resolve only in safe
    /// mode).
    fn read(&mut self, now: u64, read: impl FnOnce(&mut RawNode<GroupStorage>)) {
        let mut leased = false;
        if self.is_leader() {
            self.lease_used = true;
            let raft = &self.node.raft;
            leased = raft.lead_transferee.is_none() && self.lease.holds(now, raft.term);
        }
        if leased {
            self.node.raft.read_only.option = ReadOnlyOption::LeaseBased;
            self.lease_reads += 1;
        }
        read(&mut self.node);
        self.node.raft.read_only.option = ReadOnlyOption::Safe;
    }

    /// A leadership transfer gives the target a forced vote past the followers' leases.
    fn end_lease_if_transferring(&mut self) {
        if self.node.raft.lead_transferee.is_some() {
            self.lease.end();
        }
    }

    /// Starts a lease renewal when reads use the lease and half of it is gone (or none holds).
    pub(crate) fn maybe_renew_lease(&mut self, now: u64) {
        if !self.lease_used || !self.is_leader() || self.node.raft.lead_transferee.is_some() {
            return;
        }
        let term = self.node.raft.term;
        if self.lease.wants_renewal(now, term) {
            self.lease_used = false;
            let ctx = self.lease.start_renewal(now, term);
            self.node.read_index(ctx);
        }
    }

    /// Adds writes to persist in the next round (used at creation).
    pub(crate) fn pending_mut(&mut self) -> &mut GroupWrite {
        &mut self.pending
    }

    pub(crate) fn leader(&self) -> Option<NodeId> {
        Some(self.node.raft.leader_id).filter(|l| *l != 0)
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    pub(crate) fn not_leader(&self) -> RaftError {
        RaftError::NotLeader {
            group: self.id,
            leader: self.leader(),
        }
    }

    /// Asks for a read index; the answer comes through the output later (under a lease, from
    /// the commit index without a quorum round).
    pub(crate) fn read_index(&mut self, id: u64, now: u64, out: &mut OutputBuilder) {
        if self.leader().is_none() {
            out.read(id, self.id, Err(self.not_leader()));
            return;
        }
        self.read(now, |node| node.read_index(id.to_be_bytes().to_vec()));
        self.waiting_reads.push(id);
    }

    /// Fails every pending read (the group is going away).
    pub(crate) fn fail_reads(&mut self, out: &mut OutputBuilder, err: impl Fn() -> RaftError) {
        for id in self.waiting_reads.drain(..) {
            out.read(id, self.id, Err(err()));
        }
        for (id, _) in self.indexed_reads.drain(..) {
            out.read(id, self.id, Err(err()));
        }
    }

    /// Builds a snapshot when raft asked for one the storage did not have.
    pub(crate) fn maybe_generate_snapshot(&mut self) {
        if !self.node.store().snapshot_wanted() {
            return;
        }
        let index = self.applied;
        let Some(term) = self.node.store().term_of(index) else {
            return;
        };
        let data = match self.sm.snapshot() {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(group = self.id, error = %e, "state machine snapshot failed");
                return;
            }
        };
        let mut snap = Snapshot {
            data: data.into(),
            ..Snapshot::default()
        };
        let meta = snap.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.node.store().conf_state.clone());
        self.node.mut_store().set_snapshot(snap);
    }

    /// Takes this group's Ready (if any): updates the in-memory log, collects the write and the messages
    /// that may go out before persisting. Returns the Ready to finish after the write is durable.
    pub(crate) fn collect(
        &mut self,
        writes: &mut Vec<GroupWrite>,
        send_now: &mut Vec<(NodeId, GroupMessage)>,
    ) -> Option<Ready> {
        let rd = self.node.has_ready().then(|| self.node.ready());
        let mut rd = match rd {
            Some(rd) => rd,
            None => {
                self.flush_pending(writes);
                return None;
            }
        };
        for m in rd.take_messages() {
            self.note_snapshot(&m);
            send_now.push((
                m.to,
                GroupMessage {
                    group: self.id,
                    msg: m,
                },
            ));
        }
        for rs in rd.take_read_states() {
            self.on_read_state(&rs.request_ctx, rs.index);
        }
        if !rd.snapshot().is_empty() {
            self.install_snapshot(rd.snapshot());
        }
        if !rd.entries().is_empty() {
            self.node.mut_store().append(rd.entries());
            self.pending.entries.extend(rd.entries().iter().cloned());
        }
        if let Some(hs) = rd.hs() {
            self.node.mut_store().hard_state = hs.clone();
            self.pending.hard_state = Some(hs.clone());
        }
        self.flush_pending(writes);
        Some(rd)
    }

    fn flush_pending(&mut self, writes: &mut Vec<GroupWrite>) {
        let w = std::mem::replace(&mut self.pending, GroupWrite::new(self.id));
        if !w.is_empty() {
            writes.push(w);
        }
    }

    fn note_snapshot(&mut self, m: &Message) {
        if m.get_msg_type() == MessageType::MsgSnapshot {
            self.snapshots_sent.push(m.to);
        }
    }

    fn on_read_state(&mut self, ctx: &[u8], index: u64) {
        if let Some(seq) = parse_renewal(ctx) {
            let (term, leader) = (self.node.raft.term, self.is_leader());
            self.lease.completed(seq, term, leader);
            return;
        }
        let Ok(bytes) = <[u8; 8]>::try_from(ctx) else {
            return;
        };
        let id = u64::from_be_bytes(bytes);
        if let Some(pos) = self.waiting_reads.iter().position(|r| *r == id) {
            self.waiting_reads.swap_remove(pos);
            self.indexed_reads.push((id, index));
        }
    }

    /// A snapshot from the leader: restore the state machine, reset the log.
    fn install_snapshot(&mut self, snap: &Snapshot) {
        let meta = snap.get_metadata();
        let (index, term) = (meta.index, meta.term);
        let cs = meta.get_conf_state().clone();
        if let Err(e) = self.sm.restore(&snap.data, index) {
            tracing::error!(group = self.id, index, error = %e, "state machine restore failed");
        }
        self.node.mut_store().reset(index, term, cs.clone());
        self.pending.entries.clear();
        self.pending.compact_to = None;
        self.pending.conf_state = None;
        self.pending.snapshot = Some((index, term, cs.clone()));
        self.applied = self.applied.max(index);
        self.sm.on_conf_change(&cs.voters, &cs.learners);
    }

    /// After the round's batch is durable: advance raft, apply committed entries, compact, resolve reads.
    pub(crate) fn finish(&mut self, mut rd: Ready, compact_after: u64, out: &mut OutputBuilder) {
        for m in rd.take_persisted_messages() {
            out.send(
                m.to,
                GroupMessage {
                    group: self.id,
                    msg: m,
                },
            );
        }
        self.apply(rd.take_committed_entries());
        let mut light = self.node.advance_append(rd);
        if let Some(commit) = light.commit_index() {
            self.node.mut_store().hard_state.commit = commit;
            self.pending.hard_state = Some(self.node.store().hard_state.clone());
        }
        for m in light.take_messages() {
            self.note_snapshot(&m);
            out.send(
                m.to,
                GroupMessage {
                    group: self.id,
                    msg: m,
                },
            );
        }
        self.apply(light.take_committed_entries());
        self.node.advance_apply();
        for to in std::mem::take(&mut self.snapshots_sent) {
            self.node.report_snapshot(to, SnapshotStatus::Finish);
        }
        self.maybe_compact(compact_after);
        self.resolve_reads(out);
        self.check_role(out);
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        let before = self.applied;
        let sm_applied = self.sm.applied_index();
        let mut batch = Vec::new();
        for e in entries {
            let index = e.index;
            if index <= self.applied {
                continue;
            }
            match e.get_entry_type() {
                EntryType::EntryNormal if !e.data.is_empty() && index > sm_applied => {
                    batch.push(committed(e))
                }
                EntryType::EntryNormal => {}
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    self.flush_apply(&mut batch);
                    self.apply_conf_change(&e);
                }
            }
            self.applied = index;
        }
        self.flush_apply(&mut batch);
        if self.applied > before {
            self.sm.applied_through(self.applied);
        }
    }

    fn flush_apply(&mut self, batch: &mut Vec<Committed>) {
        if !batch.is_empty() {
            self.sm.apply(std::mem::take(batch));
        }
    }

    fn apply_conf_change(&mut self, e: &Entry) {
        let result = if e.get_entry_type() == EntryType::EntryConfChangeV2 {
            ConfChangeV2::parse_from_bytes(&e.data).map(|cc| self.node.apply_conf_change(&cc))
        } else {
            ConfChange::parse_from_bytes(&e.data).map(|cc| self.node.apply_conf_change(&cc))
        };
        match result {
            Ok(Ok(cs)) => self.on_conf_state(cs),
            Ok(Err(err)) => {
                tracing::warn!(group = self.id, index = e.index, error = %err, "conf change not applied")
            }
            Err(err) => {
                tracing::warn!(group = self.id, index = e.index, error = %err, "undecodable conf change")
            }
        }
    }

    fn on_conf_state(&mut self, cs: ConfState) {
        // The quorums change: a lease granted by the old ones no longer counts.
        self.lease.end();
        self.node.mut_store().set_conf_state(cs.clone());
        self.sm.on_conf_change(&cs.voters, &cs.learners);
        self.pending.conf_state = Some(cs);
    }

    /// Compacts the log up to what the state machine has made durable, keeping the entry before the new
    /// start in the durable log (it carries the term raft needs after a restart).
    fn maybe_compact(&mut self, compact_after: u64) {
        let target = self.sm.durable_index().min(self.applied);
        let first = self.node.store().first();
        if target <= first || target - first <= compact_after {
            return;
        }
        if self.node.mut_store().compact(target) {
            self.pending.compact_to = Some(target - 1);
        }
    }

    fn resolve_reads(&mut self, out: &mut OutputBuilder) {
        let applied = self.applied;
        let group = self.id;
        self.indexed_reads.retain(|(id, index)| {
            let done = *index <= applied;
            if done {
                out.read(*id, group, Ok(()));
            }
            !done
        });
    }

    /// Reports a leadership change to the state machine and fails reads waiting for a read index.
    pub(crate) fn check_role(&mut self, out: &mut OutputBuilder) {
        let now = (self.is_leader(), self.node.raft.leader_id);
        if now == self.reported {
            return;
        }
        self.reported = now;
        self.lease.end();
        let (group, leader, term) = (self.id, self.leader(), self.node.raft.term);
        for id in std::mem::take(&mut self.waiting_reads) {
            out.read(id, group, Err(RaftError::NotLeader { group, leader }));
        }
        self.sm.on_role_change(now.0, leader, term);
    }
}

fn committed(e: Entry) -> Committed {
    Committed {
        index: e.index,
        term: e.term,
        data: e.data.to_vec(),
        context: e.context.to_vec(),
    }
}

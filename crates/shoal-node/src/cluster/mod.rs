//! The node's part in its cluster: identity and mutual TLS, the multi-Raft driver hosting the
//! metadata group and a group per table partition, node-to-node RPC (Raft messages, forwarded
//! writes and metadata changes, joins, status), request routing and conf changes.
//!
//! - Writes go to the partition's leader: proposed locally when this node leads, forwarded over
//!   RPC otherwise. They are answered once a quorum has the entry durable and the leader applied
//!   it; a forwarding node also waits (briefly) for its own replica to apply it, so a client
//!   reads its writes back through the same node.
//! - Capacity: the leader admits each write against the partition's capacity buckets before
//!   proposing it and charges it once applied (`Cluster::propose_write`, `crate::throttle`);
//!   replicas report the reads they serve to the leader ([`read_units`]).
//! - Strongly consistent reads take a ReadIndex (the leader confirms its leadership with a
//!   quorum) and wait until the local replica applied up to it, then read locally. Eventually
//!   consistent reads read the local replica at once.
//! - A partition group has replicas on `min(3, N)` nodes, placed by the metadata on the
//!   least-loaded members; a node holding no replica of the partition a request needs forwards
//!   the whole call to one that does (`crate::remote`). The metadata group has a replica on
//!   every node. [`placement`] adds placed replicas as learners and promotes them once caught
//!   up.

pub mod health;
pub(crate) mod identity;
pub mod join_token;
pub mod liveness;
mod placement;
pub(crate) mod read_units;
pub(crate) mod rpc;
pub(crate) mod sm;
pub(crate) mod snapshot;
pub(crate) mod start;
mod status;

pub(crate) use status::{ask, status};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use shoal_catalog::DataError;
use shoal_meta::{MetaCommand, MetaResult, MetaState};
use shoal_raft::{GroupId, GroupInit, GroupMessage, NodeId, RaftError, RaftHandle, RaftNode};
use shoal_rpc::RpcClient;
use shoal_storage::{Applied, ApplyError, Command};
use tokio::sync::watch;

use crate::NodeError;
use identity::Identity;
use sm::{Pending, Reply};

/// How long a request waits for its partition to have a leader (elections take 1-3 s).
pub(crate) const ROUTE_DEADLINE: Duration = Duration::from_secs(12);

/// How long a request waits for a leader before it checks, once a second, whether its group has
/// lost its quorum (and then fails at once with a retryable error).
const QUORUM_CHECK_AFTER: Duration = Duration::from_millis(1500);
/// How long a proposal waits for its entry to be applied.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// RPC timeout of a forwarded request.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// RPC kinds (the `kind` of a `shoal_rpc` frame).
pub(crate) mod kind {
    /// One-way: a batch of Raft messages.
    pub(crate) const RAFT: u32 = 1;
    /// A write forwarded to the partition leader.
    pub(crate) const WRITE: u32 = 2;
    /// A metadata change forwarded to the metadata leader.
    pub(crate) const META: u32 = 3;
    /// Unauthenticated: a new node asks to join (checks the join token).
    pub(crate) const JOIN: u32 = 4;
    /// This node's local view (uptime, groups) for `GET /status`.
    pub(crate) const STATUS: u32 = 5;
    /// A chunk of a partition snapshot (see `snapshot.rs`).
    pub(crate) const SNAPSHOT_CHUNK: u32 = 6;
    /// A data-plane call forwarded to a node holding a replica (see `crate::remote`).
    pub(crate) const DATA: u32 = 7;
    /// Read units a replica served, reported to the partitions' leader (see `read_units.rs`).
    pub(crate) const READ_UNITS: u32 = 8;
}

/// Cluster settings of a node.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Node-to-node address (mutual TLS). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// A member's cluster address to join through (first start only).
    pub join: Option<String>,
    /// The cluster's join token (with `join`).
    pub join_token: Option<String>,
    /// A member unreachable for this long is declared dead and its replicas are replaced.
    pub dead_node_timeout: Duration,
    /// A partition whose items take more bytes than this is split in two (`--split-size-bytes`).
    pub split_size_bytes: u64,
    /// How often the partition leaders delete expired items of tables with Time to Live
    /// (`--ttl-sweep-seconds`).
    pub ttl_sweep_interval: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            join: None,
            join_token: None,
            dead_node_timeout: liveness::DEFAULT_DEAD_NODE_TIMEOUT,
            split_size_bytes: crate::split::DEFAULT_SPLIT_SIZE_BYTES,
            ttl_sweep_interval: crate::ttl::DEFAULT_TTL_SWEEP,
        }
    }
}

/// Where a write or read was sent and what came back.
pub(crate) enum Routed<T> {
    Done(T),
    /// Not proposed (no leader, or it moved): try again.
    Retry,
}

/// The node's cluster state, shared by the backend, the RPC handler and background tasks.
pub(crate) struct Cluster {
    pub(crate) node_id: NodeId,
    pub(crate) identity: Identity,
    pub(crate) raft: RaftHandle,
    pub(crate) rpc: RpcClient,
    pub(crate) pending: Arc<Pending>,
    /// Snapshot transfers, both ways.
    pub(crate) snapshots: Arc<snapshot::Snapshots>,
    /// The latest applied metadata.
    pub(crate) meta: Arc<RwLock<Arc<MetaState>>>,
    pub(crate) meta_applied: watch::Receiver<u64>,
    pub(crate) started: Instant,
    pub(crate) api_addr: String,
    pub(crate) cluster_addr: String,
    /// Member id -> cluster address, also known before the metadata arrives (from the join).
    pub(crate) peers: Arc<RwLock<HashMap<NodeId, String>>>,
    /// Why the Raft log stopped taking writes, if it did (the driver stops: fail-stop).
    pub(crate) log_failure: watch::Receiver<Option<String>>,
    /// The node's first essential failure (see [`health`]).
    pub(crate) fail_stop: health::FailStop,
    /// Data-plane calls forwarded here by other nodes that are running (closed when the node
    /// stops, before its cluster server, so none is cut off mid-way).
    pub(crate) data_calls: Gate,
    /// When this node last heard from each peer (dead-node detection).
    pub(crate) liveness: liveness::Liveness,
    pub(crate) metrics: Arc<crate::metrics::NodeMetrics>,
    /// Capacity buckets of the partitions this node leads (writes) or reads (`throttle.rs`).
    pub(crate) throttles: crate::throttle::Throttles,
}

/// Counts calls in progress and, once closed, refuses new ones; [`Gate::close`] waits for the
/// running ones to finish.
#[derive(Default)]
pub(crate) struct Gate {
    closed: std::sync::atomic::AtomicBool,
    running: std::sync::atomic::AtomicUsize,
}

/// A call admitted by [`Gate::enter`]; leaving it ends the call.
pub(crate) struct GateGuard<'a>(&'a Gate);

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        self.0
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Gate {
    /// Admits a call, or `None` once the gate is closed (the call must not run).
    pub(crate) fn enter(&self) -> Option<GateGuard<'_>> {
        use std::sync::atomic::Ordering::SeqCst;
        // Counted before the check: a call that saw the gate open is waited for by `close`.
        self.running.fetch_add(1, SeqCst);
        let guard = GateGuard(self);
        (!self.closed.load(SeqCst)).then_some(guard)
    }

    /// Refuses new calls and waits up to `within` for the running ones; returns how many still
    /// run.
    pub(crate) async fn close(&self, within: Duration) -> usize {
        use std::sync::atomic::Ordering::SeqCst;
        self.closed.store(true, SeqCst);
        wait_until(within, || self.running.load(SeqCst) == 0).await;
        self.running.load(SeqCst)
    }
}

/// The node's shared Raft log, remembering why a write failed: a log that cannot be written
/// stops the Raft driver (fail-stop; the node must be restarted), and requests then say why.
pub(crate) struct NodeLog {
    pub(crate) inner: shoal_raft::SegLogStore,
    pub(crate) failure: watch::Sender<Option<String>>,
    pub(crate) metrics: Arc<crate::metrics::NodeMetrics>,
}

impl shoal_raft::LogStore for NodeLog {
    fn load(&mut self) -> Result<Vec<(GroupId, shoal_raft::GroupState)>, RaftError> {
        self.inner.load()
    }

    fn write(&mut self, batch: &shoal_raft::LogBatch) -> Result<(), RaftError> {
        let started = Instant::now();
        let result = self.inner.write(batch);
        self.metrics.log_fsync(started.elapsed());
        if let Err(e) = &result {
            tracing::error!(error = %e, "writing the Raft log failed: this node stops replicating until it is restarted");
            self.failure.send_replace(Some(e.to_string()));
        }
        result
    }
}

/// The most a RAFT frame's batch carries before the round's messages to that peer are split over
/// more frames: well under the RPC frame cap (64 MiB), which a single message (at most one
/// [`shoal_storage::wire::MAX_COMMAND_LEN`] command plus raft's envelope) always fits.
const RAFT_BATCH_LEN: usize = 16 << 20;

/// Sends Raft messages over `shoal_rpc`: one frame per destination per round, or several when the
/// round's messages to that peer are larger than [`RAFT_BATCH_LEN`].
pub(crate) struct RpcTransport {
    pub(crate) node_id: NodeId,
    pub(crate) rpc: RpcClient,
    pub(crate) peers: Arc<RwLock<HashMap<NodeId, String>>>,
    /// The node's runtime: the Raft driver thread sends from outside it.
    pub(crate) runtime: tokio::runtime::Handle,
}

impl shoal_raft::Transport for RpcTransport {
    fn send(&self, to: NodeId, msgs: Vec<GroupMessage>) {
        let _runtime = self.runtime.enter();
        // A dead member whose address a new node took has none.
        let Some(addr) = self
            .peers
            .read()
            .get(&to)
            .filter(|a| !a.is_empty())
            .cloned()
        else {
            return;
        };
        for batch in GroupMessage::encode_batches(&msgs, RAFT_BATCH_LEN) {
            let mut payload = Vec::with_capacity(8 + batch.len());
            payload.extend_from_slice(&self.node_id.to_be_bytes());
            payload.extend_from_slice(&batch);
            self.rpc.send(&addr, kind::RAFT, payload.into());
        }
    }
}

/// The cluster could not serve a request now (no leader in time, a forward that failed, a
/// write whose outcome is unknown): `Unavailable`, so the client is told why, and a batch returns
/// the request unprocessed.
fn unavailable(what: impl std::fmt::Display) -> DataError {
    DataError::Unavailable(format!("the cluster could not serve the request: {what}"))
}

impl Cluster {
    /// This node's copy of the metadata.
    pub(crate) fn meta(&self) -> Arc<MetaState> {
        self.meta.read().clone()
    }

    pub(crate) fn peer_addr(&self, id: NodeId) -> Option<String> {
        if let Some(m) = self.meta.read().members.get(&id) {
            // A dead member whose address a new node took has none.
            return (!m.cluster_addr.is_empty()).then(|| m.cluster_addr.clone());
        }
        self.peers.read().get(&id).cloned()
    }

    /// The error for a request the stopped Raft driver cannot serve.
    pub(crate) fn stopped(&self) -> DataError {
        match self.log_failure.borrow().as_deref() {
            Some(f) if f.contains("full") => {
                DataError::Apply(ApplyError::Storage(shoal_storage::StorageError::DiskFull {
                    context: format!("writing the Raft log: {f}"),
                }))
            }
            Some(f) => DataError::Unavailable(format!(
                "this node's Raft log failed ({f}); the node is stopping to be restarted: retry"
            )),
            None => match self.raft.exit() {
                Some(shoal_raft::DriverExit::Panicked(_)) => DataError::Unavailable(
                    "this node's Raft driver failed and the node is stopping to be restarted: retry (through another node, or this one once it restarted)".to_string(),
                ),
                _ => unavailable("the node is stopping"),
            },
        }
    }

    /// Proposes the encoded command `data` to the partition group `group`, led by this node, and
    /// waits for its entry to be applied. An item write is first admitted by the partition's
    /// capacity buckets (`throttle.rs`: refused with [`DataError::Throttled`] when its table or
    /// a global index of it is out of throughput) and charged once applied: every write of a
    /// partition comes through its leader, so the limits hold whichever node the client called.
    pub(crate) async fn propose_write(
        &self,
        group: GroupId,
        data: Vec<u8>,
    ) -> Result<Routed<(u64, Reply)>, DataError> {
        let meta = self.meta();
        // A transaction's prepare costs twice a write's units (its commit is not charged); a
        // transaction's read twice a consistent read's (its check and release are not charged).
        let prepare = shoal_storage::wire::is_tx_prepare(&data);
        let read = shoal_storage::wire::is_tx_read(&data);
        let factor = if prepare { 2.0 } else { 1.0 };
        let metered = (shoal_storage::wire::is_item_write(&data) || prepare || read)
            .then(|| meta.partition(group))
            .flatten()
            .filter(|(t, _)| !crate::throttle::unlimited(&t.meta))
            .map(|(t, p)| {
                let share = crate::throttle::Share::of(group, p.hash_start, p.hash_end);
                (&t.meta, share)
            });
        /// What a transaction's read takes at admission: a consistent read's least units.
        const READ_RESERVE: f64 = 1.0;
        if let Some((table, share)) = metered {
            if read {
                self.throttles
                    .admit(table, share, None, false, READ_RESERVE)
                    .map_err(DataError::Throttled)?;
            } else {
                self.throttles
                    .admit_write(table, share)
                    .map_err(DataError::Throttled)?;
            }
        }
        let routed = self.propose_local(group, data).await;
        if let Some((table, share)) = metered {
            match (&routed, read) {
                (Ok(Routed::Done((_, Reply::Write(outcome)))), true) => {
                    let bytes = outcome
                        .as_ref()
                        .ok()
                        .and_then(|a| a.old.as_ref())
                        .map_or(0, shoal_types::size::item_size);
                    let units = 2.0 * shoal_catalog::capacity::read_units(bytes, true);
                    self.throttles
                        .charge(table, share, None, false, units - READ_RESERVE);
                }
                (Ok(Routed::Done((_, Reply::Write(outcome)))), false) => {
                    self.throttles.charge_write(table, share, outcome, factor);
                }
                // Not proposed here (the caller retries, maybe elsewhere): nothing to charge.
                (Ok(Routed::Retry), true) => {
                    self.throttles
                        .charge(table, share, None, false, -READ_RESERVE);
                }
                (Ok(Routed::Retry), false) => self.throttles.cancel_write(table, share),
                // Refused, or an unknown outcome: the reservation stands.
                _ => {}
            }
        }
        routed
    }

    /// Proposes `data` to `group`, led by this node, and waits for its entry to be applied.
    async fn propose_local(
        &self,
        group: GroupId,
        data: Vec<u8>,
    ) -> Result<Routed<(u64, Reply)>, DataError> {
        let (seq, ctx, rx) = self.pending.register(group);
        let index = match self.raft.propose(group, ctx, data).await {
            Ok(index) => {
                self.pending.set_index(seq, index);
                self.metrics.proposed();
                index
            }
            Err(RaftError::NotLeader { .. } | RaftError::Dropped | RaftError::GroupNotFound(_)) => {
                self.pending.forget(seq);
                return Ok(Routed::Retry);
            }
            Err(RaftError::Stopped) => {
                self.pending.forget(seq);
                return Err(self.stopped());
            }
            Err(e) => {
                self.pending.forget(seq);
                return Err(unavailable(e));
            }
        };
        // The Raft log failing (a full disk) or the driver panicking stops the driver: the
        // entry will not be applied here.
        let raft = self.raft.clone();
        let log_failed = async move {
            if !raft.exited().await.is_failure() {
                // A requested shutdown: the reply or the timeout decides.
                std::future::pending::<()>().await;
            }
        };
        let rx = tokio::select! {
            r = tokio::time::timeout(APPLY_TIMEOUT, rx) => r,
            () = log_failed => {
                self.pending.forget(seq);
                return Err(self.stopped());
            }
        };
        match rx {
            Ok(Ok(reply)) => Ok(Routed::Done((index, reply))),
            // Leadership moved before the entry applied here: it may still commit. Said to the
            // client (a retry may apply it twice, so it must know), with the lost quorum if
            // that is why.
            Ok(Err(_)) => {
                let why = self
                    .quorum_lost(group)
                    .await
                    .map(|q| format!(" ({q})"))
                    .unwrap_or_default();
                Err(DataError::Unavailable(format!(
                    "leadership of the partition changed while the write was in flight; its outcome is unknown{why}"
                )))
            }
            Err(_) => {
                self.pending.forget(seq);
                Err(unavailable(
                    "the write was not applied in time; its outcome is unknown",
                ))
            }
        }
    }

    /// Runs `attempt` until it is done or [`ROUTE_DEADLINE`] passes, backing off in between.
    async fn with_retries<T, F, Fut>(&self, group: GroupId, mut attempt: F) -> Result<T, DataError>
    where
        F: FnMut(Option<NodeId>) -> Fut,
        Fut: std::future::Future<Output = Result<Routed<T>, DataError>>,
    {
        let started = Instant::now();
        let deadline = started + ROUTE_DEADLINE;
        let mut next_quorum_check = started + QUORUM_CHECK_AFTER;
        let mut backoff = Duration::from_millis(5);
        loop {
            // A stopped driver leads nothing: say why at once rather than wait for a leader.
            if self.raft.exit().is_some_and(|e| e.is_failure()) {
                return Err(self.stopped());
            }
            if let Routed::Done(v) = attempt(self.raft.leader(group)).await? {
                return Ok(v);
            }
            // Still no leader to serve it: an election takes a second or two, but a group that
            // lost a majority of its replicas has none to elect. Say so rather than hang.
            if Instant::now() >= next_quorum_check {
                next_quorum_check = Instant::now() + QUORUM_CHECK_AFTER;
                if let Some(why) = self.quorum_lost(group).await {
                    return Err(DataError::Unavailable(why));
                }
            }
            if Instant::now() >= deadline {
                return Err(unavailable(format!(
                    "partition group {group} has no reachable leader"
                )));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
    }

    /// Why `group` cannot have a leader now, if a majority of its voters (as this node's
    /// replica knows them, else as placed) is unreachable: known from recent Raft messages,
    /// else probed (at most once a second per peer).
    async fn quorum_lost(&self, group: GroupId) -> Option<String> {
        let meta = self.meta();
        let voters = match self.raft.status().into_iter().find(|g| g.group == group) {
            Some(g) => g.voters,
            None if group == shoal_raft::META_GROUP => meta.desired_meta_voters(),
            None => meta.partition(group)?.1.replicas.clone(),
        };
        let checks: Vec<_> = voters
            .iter()
            .filter(|v| **v != self.node_id)
            .map(|&v| {
                let known = self.liveness.known_reachable(v);
                let addr = self.peer_addr(v);
                let rpc = self.rpc.clone();
                tokio::spawn(async move {
                    let reachable = match (known, addr) {
                        (Some(k), _) => return (v, k),
                        (None, None) => false,
                        (None, Some(addr)) => rpc
                            .call(
                                &addr,
                                kind::STATUS,
                                bytes::Bytes::new(),
                                liveness::PROBE_TIMEOUT,
                            )
                            .await
                            .is_ok(),
                    };
                    (v, reachable)
                })
            })
            .collect();
        let mut unreachable = Vec::new();
        for check in checks {
            let Ok((v, reachable)) = check.await else {
                continue;
            };
            self.liveness.probed(v, reachable);
            if !reachable {
                unreachable.push(v);
            }
        }
        liveness::quorum_lost(group, &voters, &unreachable)
    }

    /// Applies `command` through the partition group `group`'s leader.
    pub(crate) async fn write(
        &self,
        group: GroupId,
        command: &Command,
        local_applied: watch::Receiver<u64>,
    ) -> Result<Result<Applied, ApplyError>, DataError> {
        // Never propose what a replica cannot decode: it would be committed, then refused by all.
        let data = shoal_storage::wire::encode_command_checked(command).map_err(|e| {
            DataError::Apply(ApplyError::Validation(format!(
                "The request cannot be replicated: {e}"
            )))
        })?;
        self.with_retries(group, |leader| {
            let data = data.clone();
            let local_applied = &local_applied;
            async move {
                match leader {
                    Some(l) if l == self.node_id => {
                        Ok(match self.propose_write(group, data).await? {
                            Routed::Done((_, Reply::Write(r))) => Routed::Done(r),
                            Routed::Done((_, Reply::Unavailable(why))) => {
                                return Err(DataError::Unavailable(why));
                            }
                            Routed::Done((_, Reply::Meta(_))) => {
                                return Err(DataError::Internal(
                                    "a metadata reply answered a write".to_string(),
                                ));
                            }
                            Routed::Retry => Routed::Retry,
                        })
                    }
                    Some(l) => {
                        let Some((index, outcome)) = self.forward_write(l, group, data).await?
                        else {
                            return self.retry_if_member(group);
                        };
                        // Read-your-writes through this node: wait briefly for the local
                        // replica, unless it left the group (its partition moved away: it
                        // applies nothing more, and reads through this node go elsewhere).
                        if self.is_member(group) {
                            let mut applied = local_applied.clone();
                            let _ = tokio::time::timeout(
                                Duration::from_secs(1),
                                applied.wait_for(|a| *a >= index),
                            )
                            .await;
                        }
                        Ok(Routed::Done(outcome))
                    }
                    None => self.retry_if_member(group),
                }
            }
        })
        .await
    }

    /// Whether this node's replica of `group` is in the group's configuration (a voter or a
    /// learner), as its own replica last learned it.
    fn is_member(&self, group: GroupId) -> bool {
        self.raft.is_member(group, self.node_id)
    }

    /// After a write to `group` was not proposed: retry while this node is still a member of
    /// the group. A replica removed from it (its partition moved to another node) hears from
    /// no leader again, so its leader hint stays stale and retrying would last until the route
    /// deadline; it answers [`crate::remote::NOT_A_REPLICA`] instead (the write did not run),
    /// and the router sends the write to the partition's current replicas.
    fn retry_if_member<T>(&self, group: GroupId) -> Result<Routed<T>, DataError> {
        if self.is_member(group) {
            Ok(Routed::Retry)
        } else {
            Err(DataError::Unavailable(
                crate::remote::NOT_A_REPLICA.to_string(),
            ))
        }
    }

    /// Sends a write to the leader `to`; `None` when it was not proposed there (retry).
    async fn forward_write(
        &self,
        to: NodeId,
        group: GroupId,
        data: Vec<u8>,
    ) -> Result<rpc::WriteReply, DataError> {
        let Some(addr) = self.peer_addr(to) else {
            return Ok(None);
        };
        let mut payload = group.to_be_bytes().to_vec();
        payload.extend_from_slice(&data);
        let reply = match self
            .rpc
            .call(&addr, kind::WRITE, payload.into(), FORWARD_TIMEOUT)
            .await
        {
            Ok(r) => r,
            Err(e) if rpc::not_sent(&e) => return Ok(None),
            Err(e) => return Err(unavailable(format!("forwarding to node {to}: {e}"))),
        };
        rpc::decode_write_reply(&reply)
    }

    /// Waits until this node's replica of `group` may serve a linearizable read.
    pub(crate) async fn read_index(&self, group: GroupId) -> Result<(), DataError> {
        self.with_retries(group, |_| async move {
            match self.raft.read_index(group).await {
                Ok(()) => Ok(Routed::Done(())),
                Err(RaftError::Stopped) => Err(self.stopped()),
                // A replica removed from its group (moved away) never hears of a leader again:
                // the read goes to the partition's current replicas instead.
                Err(_) => self.retry_if_member(group),
            }
        })
        .await
    }

    /// Proposes a metadata change through the metadata leader and waits until this node's
    /// replica applied it.
    pub(crate) async fn meta_propose(&self, command: MetaCommand) -> Result<MetaResult, DataError> {
        let data = shoal_meta::encode_command(&command, self.meta().write_format());
        let group = shoal_raft::META_GROUP;
        let (index, result) = self
            .with_retries(group, |leader| {
                let data = data.clone();
                async move {
                    match leader {
                        Some(l) if l == self.node_id => {
                            Ok(match self.propose_local(group, data).await? {
                                Routed::Done((index, Reply::Meta(r))) => Routed::Done((index, r)),
                                Routed::Done((_, Reply::Write(_) | Reply::Unavailable(_))) => {
                                    return Err(unavailable(
                                        "a write reply answered a metadata change",
                                    ));
                                }
                                Routed::Retry => Routed::Retry,
                            })
                        }
                        Some(l) => {
                            let Some(addr) = self.peer_addr(l) else {
                                return Ok(Routed::Retry);
                            };
                            match self
                                .rpc
                                .call(&addr, kind::META, data.into(), FORWARD_TIMEOUT)
                                .await
                            {
                                Ok(reply) => {
                                    match rpc::decode_meta_reply(&reply).map_err(unavailable)? {
                                        Some(done) => Ok(Routed::Done(done)),
                                        None => Ok(Routed::Retry),
                                    }
                                }
                                Err(e) if rpc::not_sent(&e) => Ok(Routed::Retry),
                                Err(e) => Err(unavailable(format!("forwarding to node {l}: {e}"))),
                            }
                        }
                        None => Ok(Routed::Retry),
                    }
                }
            })
            .await?;
        let mut applied = self.meta_applied.clone();
        let _ = tokio::time::timeout(ROUTE_DEADLINE, applied.wait_for(|a| *a >= index)).await;
        Ok(result)
    }

    /// Brings this node's copy of the metadata up to date with the leader's (a linearizable
    /// catalog read: a table created through another node is visible here afterwards).
    pub(crate) async fn refresh_meta(&self) -> Result<(), DataError> {
        self.read_index(shoal_raft::META_GROUP).await
    }
}

/// Polls `ready` every millisecond until it holds or `limit` passes.
pub(crate) async fn wait_until(limit: Duration, ready: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !ready() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

/// Starts the Raft driver over the node's shared log `<data-dir>/raft-log/` (migrating the
/// SQLCipher log `<data-dir>/raft.db` of data format 3 on the first start).
pub(crate) fn start_raft(
    data_dir: &Path,
    node_key: &[u8; 32],
    node_id: NodeId,
    transport: Arc<RpcTransport>,
    factory: Arc<dyn shoal_raft::GroupFactory>,
    failure: watch::Sender<Option<String>>,
    metrics: Arc<crate::metrics::NodeMetrics>,
) -> Result<RaftNode, NodeError> {
    let inner = shoal_raft::SegLogStore::open_migrating(
        &data_dir.join("raft-log"),
        node_key,
        &data_dir.join("raft.db"),
    )
    .map_err(|e| NodeError::Storage(format!("raft log: {e}")))?;
    crate::upgrade_data_format(data_dir)?;
    let log = NodeLog {
        inner,
        failure,
        metrics,
    };
    let config = shoal_raft::Config {
        node_id,
        ..shoal_raft::Config::default()
    };
    RaftNode::start(config, Box::new(log), transport, factory)
        .map_err(|e| NodeError::Storage(format!("raft: {e}")))
}

/// Makes this node leader at once of the groups it alone votes in (a one-node cluster, right
/// after start): no election timeout to wait for, so a restarted single node serves writes at
/// once, with every entry of its log applied first.
pub(crate) async fn campaign_sole_groups(cluster: &Cluster) {
    // The driver publishes its status after its first round.
    wait_until(Duration::from_secs(2), || !cluster.raft.status().is_empty()).await;
    let sole: Vec<GroupId> = cluster
        .raft
        .status()
        .into_iter()
        .filter(|g| g.voters == [cluster.node_id])
        .map(|g| g.group)
        .collect();
    for &group in &sole {
        if let Err(e) = cluster.raft.campaign(group).await {
            tracing::debug!(group, error = %e, "campaign failed");
        }
    }
    // A ReadIndex succeeds once the new leader committed an entry of its term, which commits
    // (and applies) everything its log held: writes cut off by the last stop land before the
    // node serves, not at some moment after.
    for &group in &sole {
        if let Err(e) = cluster.read_index(group).await {
            tracing::warn!(group, error = %e, "replaying the log at start did not finish");
        }
    }
}

/// How a group's replica on this node starts: voters bootstrap it, other nodes wait for the
/// leader's snapshot.
pub(crate) fn group_init(me: NodeId, voters: &[NodeId]) -> GroupInit {
    if voters.contains(&me) {
        GroupInit::Bootstrap {
            voters: voters.to_vec(),
        }
    } else {
        GroupInit::Join
    }
}

pub(crate) use placement::{moving, spawn_placement};

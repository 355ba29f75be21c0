//! The node's Raft state machines: one per table partition ([`PartitionSm`], applying storage
//! commands to the local replica file) and the metadata group's ([`MetaSm`]).
//!
//! Both run on the Raft driver thread. An entry's context names the node and the proposal
//! sequence number that proposed it; the proposing node answers its waiting request from the
//! apply (see [`Pending`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use shoal_meta::{MetaResult, MetaState};
use shoal_raft::{Committed, GroupId, NodeId, StateMachine};
use shoal_storage::{Applied, ApplyError, Command, Engine, Partition, SqlCipherEngine, WriteBatch};
use tokio::sync::{oneshot, watch};

use crate::gsi::{GsiMap, Shipper};

/// What a proposer gets back once its entry is applied.
pub(crate) enum Reply {
    Write(Result<Applied, ApplyError>),
    Meta(MetaResult),
    /// The replica could not apply the committed entry (its storage failed): the entry stays in
    /// the log and takes effect when the node restarts.
    Unavailable(String),
}

/// A proposal waiting for its entry.
struct Waiter {
    group: GroupId,
    /// The entry's index, once the proposal returned it.
    index: Option<u64>,
    tx: oneshot::Sender<Reply>,
}

/// Set when a replica's storage failed to apply a committed entry: from then on the replica
/// applies nothing and serves nothing until the node restarts and replays its log from the
/// replica's last applied entry (so nothing committed is skipped).
pub(crate) type Poison = Arc<Mutex<Option<String>>>;

/// Proposals of this node waiting for their entries to be applied.
pub(crate) struct Pending {
    node_id: NodeId,
    next: std::sync::atomic::AtomicU64,
    waiting: Mutex<HashMap<u64, Waiter>>,
}

impl Pending {
    pub(crate) fn new(node_id: NodeId) -> Arc<Pending> {
        Arc::new(Pending {
            node_id,
            next: std::sync::atomic::AtomicU64::new(1),
            waiting: Mutex::default(),
        })
    }

    /// Registers a proposal to `group`: its entry context and the receiver of its reply.
    pub(crate) fn register(&self, group: GroupId) -> (u64, Vec<u8>, oneshot::Receiver<Reply>) {
        let seq = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert(
            seq,
            Waiter {
                group,
                index: None,
                tx,
            },
        );
        let mut ctx = Vec::with_capacity(16);
        ctx.extend_from_slice(&self.node_id.to_be_bytes());
        ctx.extend_from_slice(&seq.to_be_bytes());
        (seq, ctx, rx)
    }

    pub(crate) fn forget(&self, seq: u64) {
        self.waiting.lock().remove(&seq);
    }

    /// Records the log index the proposal `seq` got.
    pub(crate) fn set_index(&self, seq: u64, index: u64) {
        if let Some(w) = self.waiting.lock().get_mut(&seq) {
            w.index = Some(index);
        }
    }

    /// Drops every waiting proposal of `group` (leadership moved: their outcome is unknown here).
    fn fail_group(&self, group: GroupId) {
        self.waiting.lock().retain(|_, w| w.group != group);
    }

    /// A snapshot up to `index` replaced `group`'s state: whether a proposal at or below it is
    /// in it is unknown (its waiter learns the outcome is unknown).
    fn unknown_through(&self, group: GroupId, index: u64) {
        self.waiting
            .lock()
            .retain(|_, w| !(w.group == group && w.index.is_none_or(|i| i <= index)));
    }

    /// Answers the proposal that wrote `context`, if it was this node's and still waits.
    fn complete(&self, context: &[u8], reply: Reply) {
        let Some(seq) = self.own_seq(context) else {
            return;
        };
        if let Some(w) = self.waiting.lock().remove(&seq) {
            let _ = w.tx.send(reply);
        }
    }

    fn own_seq(&self, context: &[u8]) -> Option<u64> {
        if context.len() != 16 {
            return None;
        }
        let node = u64::from_be_bytes(context[..8].try_into().ok()?);
        let seq = u64::from_be_bytes(context[8..].try_into().ok()?);
        (node == self.node_id).then_some(seq)
    }
}

/// The state machine of one table partition replica.
pub(crate) struct PartitionSm {
    pub(crate) group: GroupId,
    pub(crate) partition: Arc<Partition>,
    pub(crate) path: Arc<Path>,
    pub(crate) shipper: Arc<Shipper>,
    /// The table's GSIs on this node (a snapshot carries them).
    pub(crate) gsis: GsiMap,
    pub(crate) snapshots: Arc<super::snapshot::Snapshots>,
    pub(crate) pending: Arc<Pending>,
    pub(crate) poisoned: Poison,
    /// Woken when this replica applies a split (the node opens the child).
    pub(crate) split_applied: Arc<tokio::sync::Notify>,
    /// The replica's applied index, for writers waiting on it ([`crate::backend::PartitionHandle::applied`]).
    pub(crate) applied: Arc<tokio::sync::watch::Sender<u64>>,
    /// The applied index as of the last sync of the replica file, which is written without an
    /// fsync per apply (the Raft log is the write-ahead log): the log is compacted up to it.
    pub(crate) durable: u64,
    pub(crate) metrics: Arc<crate::metrics::NodeMetrics>,
}

/// Entries applied between two syncs of a partition file: the Raft log keeps at most this many
/// more entries than its `compact_after`, and a machine crash replays at most this many.
const SYNC_EVERY: u64 = 128;

impl PartitionSm {
    /// Syncs the replica file: everything up to `applied` survives a machine crash from now on.
    /// A failed fsync poisons the replica (what it wrote may be lost while the page cache calls
    /// it clean), so it stops until a restart replays the log from what its file really holds.
    fn sync(&mut self, applied: u64) {
        match self.partition.sync() {
            Ok(()) => self.durable = applied,
            Err(e) => {
                let e = e.in_file(&self.path);
                tracing::error!(group = self.group, error = %e, "syncing a partition file failed: this replica stops applying until the node restarts");
                *self.poisoned.lock() = Some(format!(
                    "this replica could not sync its file ({e}); it serves again once the node restarts"
                ));
            }
        }
    }

    /// Refuses `entries` of a poisoned replica.
    fn refuse(&self, entries: &[Committed]) {
        let why = self.poisoned.lock().clone().unwrap_or_default();
        for e in entries {
            self.pending
                .complete(&e.context, Reply::Unavailable(why.clone()));
        }
    }

    /// Applies one run of entries with consecutive indexes.
    fn apply_run(&self, run: &[Committed]) {
        let Some(first) = run.first().map(|e| e.index) else {
            return;
        };
        let mut decoded: Vec<Result<Command, String>> = Vec::with_capacity(run.len());
        for e in run {
            decoded.push(shoal_storage::wire::decode_command(&e.data).map_err(|e| e.to_string()));
        }
        // Commands that do not decode (never written by this version) are rejected on every
        // replica alike; the others are applied in one batch.
        if decoded.iter().all(Result::is_ok) {
            let commands: Vec<Command> = decoded.into_iter().filter_map(Result::ok).collect();
            let results = self.partition.apply_batch(first, &commands);
            if commands.iter().any(|c| matches!(c, Command::Split { .. })) {
                self.split_applied.notify_one();
            }
            for (e, result) in run.iter().zip(results) {
                self.answer(e, result);
            }
            return;
        }
        for (e, d) in run.iter().zip(decoded) {
            match d {
                Ok(c) => {
                    let mut r = self
                        .partition
                        .apply_batch(e.index, std::slice::from_ref(&c));
                    let result = r.pop().unwrap_or(Ok(Applied::default()));
                    self.answer(e, result);
                }
                Err(msg) => self.answer(
                    e,
                    Err(ApplyError::Validation(format!(
                        "undecodable replicated command: {msg}"
                    ))),
                ),
            }
        }
    }

    fn answer(&self, entry: &Committed, result: Result<Applied, ApplyError>) {
        let result = match result {
            Err(ApplyError::Storage(e)) => {
                let e = e.in_file(&self.path);
                tracing::error!(group = self.group, index = entry.index, error = %e, "applying a committed write failed: this replica stops applying until the node restarts");
                let why = if matches!(e, shoal_storage::StorageError::DiskFull { .. }) {
                    "the node's disk is full: the write is in the replicated log but this replica could not apply it; it takes effect when the node restarts with free space".to_string()
                } else {
                    format!(
                        "this replica could not apply a committed write ({e}); it takes effect when the node restarts"
                    )
                };
                *self.poisoned.lock() = Some(why.clone());
                self.pending
                    .complete(&entry.context, Reply::Unavailable(why));
                return;
            }
            other => other,
        };
        if self.poisoned.lock().is_some() {
            self.refuse(std::slice::from_ref(entry));
            return;
        }
        self.pending.complete(&entry.context, Reply::Write(result));
    }
}

impl StateMachine for PartitionSm {
    fn apply(&mut self, entries: Vec<Committed>) {
        if self.poisoned.lock().is_some() {
            self.refuse(&entries);
            return;
        }
        let started = std::time::Instant::now();
        let mut start = 0;
        for i in 1..=entries.len() {
            let split = i == entries.len() || entries[i].index != entries[i - 1].index + 1;
            if split {
                self.apply_run(&entries[start..i]);
                start = i;
            }
        }
        let applied = self.partition.applied_index();
        self.applied.send_replace(applied);
        self.shipper.committed();
        if applied >= self.durable + SYNC_EVERY {
            self.sync(applied);
        }
        self.metrics.applied(started.elapsed());
    }

    fn applied_index(&self) -> u64 {
        self.partition.applied_index()
    }

    fn durable_index(&self) -> u64 {
        self.durable
    }

    /// An offer of the snapshot, streamed in chunks (see `snapshot.rs`).
    fn snapshot(&mut self) -> Result<Vec<u8>, String> {
        self.snapshots
            .offer(self.group, &self.partition, &self.gsis)
    }

    fn restore(&mut self, data: &[u8], index: u64) -> Result<(), String> {
        self.pending.unknown_through(self.group, index);
        let at = match self.snapshots.install(self.group, data, index) {
            Some(Ok(bytes)) => {
                tracing::info!(
                    group = self.group,
                    index,
                    bytes,
                    "partition replica replaced by a streamed snapshot"
                );
                index
            }
            Some(Err(e)) => {
                // Raft now believes this replica is at `index`: it must not serve or apply
                // until a restart replays it from what it really holds.
                let why = format!(
                    "installing a snapshot failed ({e}); the replica is unavailable until the node restarts"
                );
                tracing::error!(group = self.group, index, error = %e, "installing a snapshot failed");
                *self.poisoned.lock() = Some(why);
                return Err(e);
            }
            // A whole snapshot in the message (format 1, from an older node).
            None => self
                .shipper
                .replace(|| self.partition.import_snapshot(data))
                .map_err(|e| e.to_string())?,
        };
        tracing::info!(
            group = self.group,
            index,
            applied = at,
            "partition replica restored from a snapshot"
        );
        self.shipper.committed();
        self.sync(self.partition.applied_index());
        Ok(())
    }

    fn on_role_change(&mut self, is_leader: bool, leader: Option<NodeId>, term: u64) {
        tracing::debug!(
            group = self.group,
            is_leader,
            ?leader,
            term,
            "partition leadership"
        );
        if !is_leader {
            self.pending.fail_group(self.group);
        }
    }
}

/// The metadata group's state machine: the [`MetaState`], persisted in `<data-dir>/meta.db`
/// (SQLCipher, node key) after every apply.
pub(crate) struct MetaSm {
    engine: SqlCipherEngine,
    applied: u64,
    pub(crate) state: Arc<RwLock<Arc<MetaState>>>,
    /// The applied index, for waiters (the reconciler, proposers).
    pub(crate) applied_tx: watch::Sender<u64>,
    pub(crate) pending: Arc<Pending>,
}

const META_KEY: &[u8] = b"state";

impl MetaSm {
    /// Opens `path`, loading the state last applied.
    pub(crate) fn open(
        path: &Path,
        key: &[u8; 32],
        pending: Arc<Pending>,
    ) -> Result<MetaSm, crate::NodeError> {
        let engine = SqlCipherEngine::open(path, key, shoal_storage::Durability::Sync)
            .map_err(|e| crate::NodeError::storage_in(e, path))?;
        let applied = engine
            .applied_index()
            .map_err(|e| crate::NodeError::storage_in(e, path))?;
        let state: MetaState = match engine
            .get(META_KEY)
            .map_err(|e| crate::NodeError::storage_in(e, path))?
        {
            Some(bytes) => shoal_meta::decode_state(&bytes)
                .map_err(|e| crate::NodeError::Storage(format!("{}: {e}", path.display())))?,
            None => MetaState::default(),
        };
        let (applied_tx, _) = watch::channel(applied);
        Ok(MetaSm {
            engine,
            applied,
            state: Arc::new(RwLock::new(Arc::new(state))),
            applied_tx,
            pending,
        })
    }

    fn persist(&mut self, state: &MetaState, index: u64) -> Result<(), String> {
        let mut batch = WriteBatch::new(index);
        batch.put(
            META_KEY.to_vec(),
            shoal_meta::encode_state(state, state.write_format()),
        );
        self.engine.write(&batch).map_err(|e| e.to_string())?;
        self.applied = index;
        Ok(())
    }

    fn publish(&self, state: MetaState, index: u64) {
        *self.state.write() = Arc::new(state);
        self.applied_tx.send_replace(index);
    }
}

impl StateMachine for MetaSm {
    fn apply(&mut self, entries: Vec<Committed>) {
        let Some(last) = entries.last().map(|e| e.index) else {
            return;
        };
        let mut state = (**self.state.read()).clone();
        let mut replies = Vec::with_capacity(entries.len());
        for e in &entries {
            let result = match shoal_meta::decode_command(&e.data) {
                Ok(command) => state.apply(command),
                Err(err) => {
                    tracing::error!(index = e.index, error = %err, "undecodable metadata command skipped");
                    continue;
                }
            };
            replies.push((e.context.clone(), result));
        }
        // The metadata is small: the whole state is written once per batch.
        if let Err(e) = self.persist(&state, last) {
            tracing::error!(error = %e, "persisting the metadata failed; it is re-applied from the log at restart");
        }
        self.publish(state, last);
        for (ctx, result) in replies {
            self.pending.complete(&ctx, Reply::Meta(result));
        }
    }

    fn applied_index(&self) -> u64 {
        self.applied
    }

    fn snapshot(&mut self) -> Result<Vec<u8>, String> {
        let state = self.state.read();
        Ok(shoal_meta::encode_state(&state, state.write_format()))
    }

    fn restore(&mut self, data: &[u8], index: u64) -> Result<(), String> {
        let state = shoal_meta::decode_state(data).map_err(|e| e.to_string())?;
        self.persist(&state, index)?;
        self.publish(state, index);
        self.pending.unknown_through(shoal_raft::META_GROUP, index);
        tracing::info!(index, "metadata restored from a snapshot");
        Ok(())
    }

    fn on_role_change(&mut self, is_leader: bool, _leader: Option<NodeId>, _term: u64) {
        if !is_leader {
            self.pending.fail_group(shoal_raft::META_GROUP);
        }
    }
}

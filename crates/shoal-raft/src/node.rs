//! [`RaftNode`]: the thread driving a [`Core`]; [`RaftHandle`]: the async handle to it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use raft::eraftpb::ConfChangeV2;
use tokio::sync::{oneshot, watch};

use crate::exit::panic_message;
use crate::{
    Config, Core, DriverExit, GroupFactory, GroupId, GroupInit, GroupMessage, GroupStatus,
    LogStore, NodeId, Output, RaftError, StateMachine, Transport,
};

/// How long a read index may wait before failing with [`RaftError::Timeout`].
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Most commands handled per round (bounds the latency of a round under load).
const MAX_COMMANDS_PER_ROUND: usize = 4096;

type Reply<T> = oneshot::Sender<Result<T, RaftError>>;

/// A request to the driver thread.
enum Cmd {
    Step(NodeId, Vec<GroupMessage>),
    Create(GroupId, GroupInit, Box<dyn StateMachine>, Reply<()>),
    Remove(GroupId, Reply<()>),
    Propose(GroupId, Vec<u8>, Vec<u8>, Reply<u64>),
    ConfChange(GroupId, ConfChangeV2, Reply<()>),
    Read(GroupId, Reply<()>),
    Transfer(GroupId, NodeId, Reply<()>),
    Campaign(GroupId, Reply<()>),
    DropSnapshot(GroupId),
    Drain(bool),
    Stop,
}

/// The threaded driver: one thread runs [`Core`]: drains inbound (messages, proposals, reads, admin), ticks
/// on schedule, ready -> send_now -> [`LogStore::write`] (ONE fsync for all groups) -> persisted -> send
/// per destination.
///
/// The thread never takes the process down: a failed log write stops it, and so does a panic
/// (caught; a bug in raft-rs, a state machine or the driver). Either way every pending and later
/// call fails with [`RaftError::Stopped`] and [`RaftHandle::exit`] says why, so the node can
/// report it and fail-stop.
pub struct RaftNode {
    handle: RaftHandle,
    thread: Option<JoinHandle<()>>,
}

impl RaftNode {
    /// Loads the log, rebuilds the groups found in it (through `factory`) and starts the driver thread.
    ///
    /// In debug builds only, `SHOAL_FAILPOINT_RAFT_PANIC_FILE=PATH` makes the driver panic on
    /// the first tick after `PATH` exists (fault injection for tests; release builds ignore it).
    ///
    /// # Errors
    /// The log cannot be loaded, a group's state is refused by raft, or the thread cannot start.
    pub fn start(
        config: Config,
        mut log: Box<dyn LogStore>,
        transport: Arc<dyn Transport>,
        factory: Arc<dyn GroupFactory>,
    ) -> Result<RaftNode, RaftError> {
        let node_id = config.node_id;
        let tick = config.tick;
        let mut core = Core::new(config, factory);
        core.load(log.load()?)?;
        let status = Arc::new(RwLock::new(core.status()));
        let (tx, rx) = mpsc::channel();
        let (exit_tx, exit) = watch::channel(None);
        let driver = Driver {
            core,
            log,
            transport,
            rx,
            tick,
            status: status.clone(),
            reads: HashMap::new(),
            next_read: 1,
            #[cfg(debug_assertions)]
            panic_file: crate::exit::failpoint::raft_panic_file(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("shoal-raft-{node_id}"))
            .spawn(move || drive(driver, &exit_tx))
            .map_err(|e| RaftError::Log(format!("cannot start the raft thread: {e}")))?;
        Ok(RaftNode {
            handle: RaftHandle { tx, status, exit },
            thread: Some(thread),
        })
    }

    /// A handle to this node's driver (cheap to clone).
    pub fn handle(&self) -> RaftHandle {
        self.handle.clone()
    }

    /// Stops the driver and joins its thread. Pending calls fail with [`RaftError::Stopped`].
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.handle.tx.send(Cmd::Stop);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the raft driver thread panicked");
        }
    }
}

impl Drop for RaftNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs the driver on its thread until it stops, catching a panic, and publishes why it ended
/// before the driver (and with it every pending reply) is dropped: a caller told
/// [`RaftError::Stopped`] can already read the reason.
fn drive(mut driver: Driver, exit_tx: &watch::Sender<Option<DriverExit>>) {
    let status = Arc::clone(&driver.status);
    let exit = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| driver.run())) {
        Ok(exit) => exit,
        Err(payload) => DriverExit::Panicked(panic_message(payload.as_ref())),
    };
    // No group is served any more: nobody may take this node for a leader.
    status.write().clear();
    if exit.is_failure() {
        tracing::error!(reason = %exit, "the Raft driver stopped: this node can no longer replicate or apply writes");
    }
    exit_tx.send_replace(Some(exit));
    drop(driver);
}

/// The async handle to a [`RaftNode`]. All async fns are cancel-safe and do not block the runtime.
#[derive(Clone)]
pub struct RaftHandle {
    tx: Sender<Cmd>,
    status: Arc<RwLock<Vec<GroupStatus>>>,
    exit: watch::Receiver<Option<DriverExit>>,
}

impl std::fmt::Debug for RaftHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftHandle").finish_non_exhaustive()
    }
}

impl RaftHandle {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, RaftError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).map_err(|_| RaftError::Stopped)?;
        rx.await.map_err(|_| RaftError::Stopped)?
    }

    /// Creates a replica of `group` on this node (Ok when it already exists).
    ///
    /// # Errors
    /// [`RaftError::Stopped`], or raft refuses the configuration.
    pub async fn create_group(
        &self,
        group: GroupId,
        init: GroupInit,
        sm: Box<dyn StateMachine>,
    ) -> Result<(), RaftError> {
        self.call(|tx| Cmd::Create(group, init, sm, tx)).await
    }

    /// Removes this node's replica of `group` and deletes its log.
    ///
    /// # Errors
    /// [`RaftError::Stopped`].
    pub async fn remove_group(&self, group: GroupId) -> Result<(), RaftError> {
        self.call(|tx| Cmd::Remove(group, tx)).await
    }

    /// Inbound messages from the transport (non-blocking; dropped when the driver stopped).
    pub fn step(&self, from: NodeId, msgs: Vec<GroupMessage>) {
        let _ = self.tx.send(Cmd::Step(from, msgs));
    }

    /// Proposes an entry; Ok(index) once the local leader appended it (it commits and applies later).
    ///
    /// # Errors
    /// [`RaftError::NotLeader`] (with the known leader), [`RaftError::GroupNotFound`],
    /// [`RaftError::Dropped`], [`RaftError::Stopped`].
    pub async fn propose(
        &self,
        group: GroupId,
        context: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<u64, RaftError> {
        self.call(|tx| Cmd::Propose(group, context, data, tx)).await
    }

    /// Proposes a membership change on the group's leader.
    ///
    /// # Errors
    /// As [`RaftHandle::propose`]; [`RaftError::Dropped`] while another conf change is pending.
    pub async fn propose_conf_change(
        &self,
        group: GroupId,
        cc: ConfChangeV2,
    ) -> Result<(), RaftError> {
        self.call(|tx| Cmd::ConfChange(group, cc, tx)).await
    }

    /// Resolves when the local applied index reached the leader's commit index at call time (a
    /// linearizable read point).
    ///
    /// # Errors
    /// [`RaftError::NotLeader`] when the group has no leader or leadership changed before the read index
    /// was known, [`RaftError::Timeout`] after 3 s, [`RaftError::GroupNotFound`], [`RaftError::Stopped`].
    pub async fn read_index(&self, group: GroupId) -> Result<(), RaftError> {
        self.call(|tx| Cmd::Read(group, tx)).await
    }

    /// Asks this node, when it leads `group`, to hand leadership to `to` (fire and forget).
    ///
    /// # Errors
    /// [`RaftError::GroupNotFound`], [`RaftError::Stopped`].
    pub async fn transfer_leader(&self, group: GroupId, to: NodeId) -> Result<(), RaftError> {
        self.call(|tx| Cmd::Transfer(group, to, tx)).await
    }

    /// Starts an election in `group` on this node now.
    ///
    /// # Errors
    /// [`RaftError::GroupNotFound`], [`RaftError::Stopped`].
    pub async fn campaign(&self, group: GroupId) -> Result<(), RaftError> {
        self.call(|tx| Cmd::Campaign(group, tx)).await
    }

    /// Makes `group` forget the snapshot it keeps for lagging followers (fire and forget): the
    /// state machine's data behind it is gone, so the next follower that needs one gets a new
    /// one.
    pub fn drop_snapshot(&self, group: GroupId) {
        let _ = self.tx.send(Cmd::DropSnapshot(group));
    }

    /// While `on`, this node declines leadership handed over to it (it is about to stop).
    pub fn set_draining(&self, on: bool) {
        let _ = self.tx.send(Cmd::Drain(on));
    }

    /// Every group's status, as of the last round (cheap).
    pub fn status(&self) -> Vec<GroupStatus> {
        self.status.read().clone()
    }

    /// Whether `node` is in `group`'s configuration (a voter or a learner) as this node's
    /// replica last published it; reads the published status in place, without copying it.
    pub fn is_member(&self, group: GroupId, node: NodeId) -> bool {
        self.status
            .read()
            .iter()
            .any(|g| g.group == group && (g.voters.contains(&node) || g.learners.contains(&node)))
    }

    /// Why the driver thread ended; `None` while it runs.
    pub fn exit(&self) -> Option<DriverExit> {
        self.exit.borrow().clone()
    }

    /// Resolves once the driver thread ended, with why (at once if it already has).
    pub async fn exited(&self) -> DriverExit {
        let mut rx = self.exit.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(exit) => exit.clone().unwrap_or(DriverExit::Shutdown),
            // The sender lives on the driver thread until it published the exit.
            Err(_) => DriverExit::Shutdown,
        }
    }

    /// The leader of `group` known to this node, as of the last round.
    pub fn leader(&self, group: GroupId) -> Option<NodeId> {
        self.status
            .read()
            .iter()
            .find(|s| s.group == group)
            .and_then(|s| s.leader)
    }
}

/// The driver thread's state.
struct Driver {
    core: Core,
    log: Box<dyn LogStore>,
    transport: Arc<dyn Transport>,
    rx: Receiver<Cmd>,
    tick: Duration,
    status: Arc<RwLock<Vec<GroupStatus>>>,
    /// Pending reads by id: reply and deadline.
    reads: HashMap<u64, (Reply<()>, Instant)>,
    next_read: u64,
    /// Test-only: panic once this file exists (see [`RaftNode::start`]).
    #[cfg(debug_assertions)]
    panic_file: Option<std::path::PathBuf>,
}

impl Driver {
    /// Runs rounds until asked to stop (or the inbound channel closes) or a log write fails.
    fn run(&mut self) -> DriverExit {
        let mut next_tick = Instant::now() + self.tick;
        loop {
            let timeout = next_tick.saturating_duration_since(Instant::now());
            let mut stop = match self.rx.recv_timeout(timeout) {
                Ok(cmd) => self.handle(cmd),
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => true,
            };
            stop |= self.drain();
            let now = Instant::now();
            let ticked = now >= next_tick;
            if ticked {
                #[cfg(debug_assertions)]
                self.failpoint();
                self.core.tick();
                next_tick = (next_tick + self.tick).max(now);
                self.expire_reads(now);
            }
            if let Err(e) = self.round(ticked) {
                tracing::error!(error = %e, "raft log write failed; stopping the raft driver");
                return DriverExit::LogFailed(e.to_string());
            }
            if stop {
                return DriverExit::Shutdown;
            }
        }
    }

    /// Panics when the test-only trigger file exists.
    #[cfg(debug_assertions)]
    fn failpoint(&self) {
        if let Some(path) = &self.panic_file
            && path.exists()
        {
            panic!(
                "injected Raft driver panic ({} exists: {})",
                path.display(),
                crate::exit::failpoint::RAFT_PANIC_FILE
            );
        }
    }

    /// Handles the queued commands (bounded). Returns true when asked to stop.
    fn drain(&mut self) -> bool {
        for _ in 0..MAX_COMMANDS_PER_ROUND {
            match self.rx.try_recv() {
                Ok(cmd) => {
                    if self.handle(cmd) {
                        return true;
                    }
                }
                Err(mpsc::TryRecvError::Empty) => return false,
                Err(mpsc::TryRecvError::Disconnected) => return true,
            }
        }
        false
    }

    /// Handles one command. Returns true for Stop.
    fn handle(&mut self, cmd: Cmd) -> bool {
        let core = &mut self.core;
        match cmd {
            Cmd::Step(from, msgs) => core.step(from, msgs),
            Cmd::Create(g, init, sm, tx) => reply(tx, core.create_group(g, init, sm)),
            Cmd::Remove(g, tx) => {
                core.remove_group(g);
                reply(tx, Ok(()));
            }
            Cmd::Propose(g, ctx, data, tx) => reply(tx, core.propose(g, ctx, data)),
            Cmd::ConfChange(g, cc, tx) => reply(tx, core.propose_conf_change(g, cc)),
            Cmd::Transfer(g, to, tx) => reply(tx, transfer(core, g, to)),
            Cmd::Campaign(g, tx) => reply(tx, core.campaign(g)),
            Cmd::DropSnapshot(g) => core.drop_snapshot(g),
            Cmd::Drain(on) => core.set_draining(on),
            Cmd::Read(g, tx) => self.read(g, tx),
            Cmd::Stop => return true,
        }
        false
    }

    fn read(&mut self, group: GroupId, tx: Reply<()>) {
        let id = self.next_read;
        self.next_read += 1;
        self.reads.insert(id, (tx, Instant::now() + READ_TIMEOUT));
        self.core.read_index(group, id);
    }

    fn expire_reads(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, (_, d))| *d <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some((tx, _)) = self.reads.remove(&id) {
                let _ = tx.send(Err(RaftError::Timeout));
            }
        }
    }

    /// One round: ready -> send_now -> one durable write -> persisted -> send -> resolve reads.
    fn round(&mut self, ticked: bool) -> Result<(), RaftError> {
        let mut round = self.core.ready();
        let busy = !round.is_empty();
        self.send_batched(std::mem::take(&mut round.send_now));
        if !round.log.is_empty() {
            self.log.write(&round.log)?;
            // A test crash point: the round is durable, nothing of it is applied or answered.
            fail::fail_point!("raft-after-log-write", |_| -> Result<(), RaftError> {
                std::process::abort()
            });
        }
        let out = self.core.persisted(round);
        self.finish(out);
        if busy || ticked {
            *self.status.write() = self.core.status();
        }
        Ok(())
    }

    fn send_batched(&self, msgs: Vec<(NodeId, GroupMessage)>) {
        let mut per_dest: BTreeMap<NodeId, Vec<GroupMessage>> = BTreeMap::new();
        for (to, m) in msgs {
            per_dest.entry(to).or_default().push(m);
        }
        for (to, msgs) in per_dest {
            self.transport.send(to, msgs);
        }
    }

    fn finish(&mut self, out: Output) {
        for (to, msgs) in out.send {
            self.transport.send(to, msgs);
        }
        for (id, _group, result) in out.reads {
            if let Some((tx, _)) = self.reads.remove(&id) {
                let _ = tx.send(result);
            }
        }
    }
}

fn transfer(core: &mut Core, group: GroupId, to: NodeId) -> Result<(), RaftError> {
    if !core.has_group(group) {
        return Err(RaftError::GroupNotFound(group));
    }
    core.transfer_leader(group, to);
    Ok(())
}

fn reply<T>(tx: Reply<T>, result: Result<T, RaftError>) {
    // The caller may have given up (cancelled); nothing to do then.
    let _ = tx.send(result);
}

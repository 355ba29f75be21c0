//! Deterministic simulation of the multi-Raft layer (the harness; the tests are `tests/sim.rs`,
//! `tests/sim_wiped_node.rs` and `tests/sim_split.rs`).
//!
//! A seeded, single-threaded simulator drives N (3, sometimes 5) `Core`s directly (sans-I/O)
//! over a simulated network (random delay, loss, reordering, duplication, partitions) with node
//! crashes and restarts, on a virtual clock (every node ticks every 100 virtual ms). Each node
//! hosts three groups (the meta group and two partitions), each with a KV-register state
//! machine. Simulated clients issue puts, deletes, conditional puts and linearizable reads
//! (`Core::read_index`) against random nodes; the history is checked with `shoal-lincheck`.
//!
//! With [`WipeMode`], nodes also lose their whole disk (Raft log and state machines) and come
//! back from the same address: as a new node id that the groups add by conf change while they
//! remove the old id (what Shoal's metadata does, [`WipeMode::NewId`]), or under the same id
//! with an empty Raft state (the unsafe way, [`WipeMode::SameId`], which the checks must catch).
//!
//! With [`Options::splits`], the nodes start with one group over the whole key space (keys
//! `k0`..`k7`) that is split at random times, its children too, as Shoal splits partitions: the
//! split is an entry of the parent's log; from it on the parent refuses the upper range as
//! "wrong partition" and keeps its rows frozen; each node then creates the child, from a copy of
//! the frozen rows (`GroupInit::Bootstrap`, on the child's placed voters: the parent's voters at
//! the split) or empty (`GroupInit::Join`: not a placed voter, or no rows here because the parent
//! replica came by a snapshot without them), and drops the rows from the parent once the child's
//! creation is durable ([`Sim::split_work`]). Clients route by key with a map that may be stale,
//! and retry a refused operation on the group the key moved to. Nodes also crash between a
//! split's apply and the child's creation, and in the round that would persist the creation.
//!
//! Checked along the way:
//! - at most one leader per (group, term);
//! - no node votes for two candidates in one term of a group (every persisted hard state);
//! - every replica applies the same entry at an index (the committed logs agree) and applies
//!   each client operation at most once;
//! - every replica's state machine equals the replay of the committed log up to its applied
//!   index (checked every few virtual seconds and at the end; split runs: a child's replay
//!   starts from its range's rows in the replay of its parent up to the split, and a replica is
//!   compared on its range and on the frozen rows it still holds);
//! - split runs: no key is served by two groups (a client write is applied only when its key is
//!   in the group's range at that index, per the splits recorded; the parent refuses the rest);
//!   after healing every node holds every group with its range and no frozen rows are left;
//! - after the faults stop, every group makes progress and all replicas converge, every
//!   acknowledged write is in the committed log below the converged applied index, and a final
//!   read of every key (the converged state) is added to the history;
//! - the history of client results is linearizable.
//!
//! `SHOAL_SIM_SEEDS` seeds run (default: per test); `SHOAL_SIM_SEED=<n>` runs exactly one;
//! `SHOAL_SIM_SEED_BASE` is the first seed; `SHOAL_SIM_SECS` sets the faulty period per seed in
//! virtual seconds.
//!
//! A run is a pure function of its seed: every random choice comes from the seeded RNG, all
//! collections iterated are ordered (`BTreeMap`/`Vec`), and the nodes run with a fixed election
//! timeout (`Config::election_jitter_ticks = 1`: raft-rs would otherwise draw it from
//! `thread_rng`), each node's own drawn from the seed. So a failing seed replays exactly with
//! `SHOAL_SIM_SEED=<n> cargo test -p shoal-raft --test sim`; the summary line ends with a hash
//! of the run's trace to compare two runs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure by design
#![allow(dead_code)] // each test binary uses part of the harness

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use shoal_lincheck::{CheckResult, Event, Op, Ret};
use shoal_raft::{
    BOOTSTRAP_INDEX, Committed, ConfChangeSingle, ConfChangeType, ConfChangeV2, Config, Core,
    GroupFactory, GroupId, GroupInit, GroupMessage, LogBatch, LogStore, MemLogStore, NodeId,
    RaftError, StateMachine,
};

/// Groups hosted by every node: the meta group (0) and two partitions.
const GROUPS: [GroupId; 3] = [0, 17, 42];
/// Keys per group.
const KEYS_PER_GROUP: usize = 3;
/// Split runs: the one group that starts over the whole key space (children get the next ids).
const ROOT: GroupId = 100;
/// Split runs: keys `k0`..`k7` (in key order), spread over the ranges by the splits.
const SPLIT_KEYS: usize = 8;
/// Split runs: how many splits a run makes (one of 1..=MAX_SPLITS, drawn from the seed).
const MAX_SPLITS: u64 = 3;
/// Virtual milliseconds between two ticks of a node.
const TICK_MS: u64 = 100;
/// How long a client waits for the result of an accepted proposal or read.
const OP_DEADLINE_MS: u64 = 8_000;
/// How long a client keeps retrying an operation no node accepted (it then gives up: the
/// operation never happened).
const GIVE_UP_MS: u64 = 15_000;

type Shared<T> = Arc<Mutex<T>>;

/// The virtual clock as the cores' lease clock.
struct SimClock(Shared<u64>);

impl shoal_raft::Clock for SimClock {
    fn now_ms(&self) -> u64 {
        *self.0.lock()
    }
}

// ---------------------------------------------------------------------------------------------
// The state machine: one KV register per key.

/// A command of the KV state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cmd {
    Put(String, String),
    Delete(String),
    CondPut {
        key: String,
        expect: Option<String>,
        value: String,
    },
    /// Split runs ([`Options::splits`]): the group keeps `[lo, at)` and hands `[at, hi)` to the
    /// new group `child`, whose replicas start as `voters`. Applied at most once per epoch.
    Split {
        lo: String,
        at: String,
        hi: Option<String>,
        child: GroupId,
        epoch: u64,
        voters: Vec<NodeId>,
    },
}

/// What applying a command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Res {
    Done,
    CondFailed,
    /// The key is outside the replica's range (split runs): "wrong partition", nothing written.
    Refused,
    /// A split took effect.
    Split,
    /// A split of an epoch already applied: nothing happened.
    NoOp,
}

fn opt_str(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("~")
}

fn str_opt(s: &str) -> Option<String> {
    (s != "~").then(|| s.to_string())
}

/// `key` in `[lo, hi)` (`hi` None: unbounded).
fn in_range(key: &str, lo: &str, hi: &Option<String>) -> bool {
    key >= lo && hi.as_deref().is_none_or(|h| key < h)
}

impl Cmd {
    fn encode(&self) -> Vec<u8> {
        match self {
            Cmd::Put(k, v) => format!("P\n{k}\n{v}"),
            Cmd::Delete(k) => format!("D\n{k}"),
            Cmd::CondPut { key, expect, value } => {
                format!("C\n{key}\n{}\n{value}", expect.as_deref().unwrap_or("~"))
            }
            Cmd::Split {
                lo,
                at,
                hi,
                child,
                epoch,
                voters,
            } => {
                let voters: Vec<String> = voters.iter().map(|v| v.to_string()).collect();
                format!(
                    "S\n{lo}\n{at}\n{}\n{child}\n{epoch}\n{}",
                    opt_str(hi),
                    voters.join(",")
                )
            }
        }
        .into_bytes()
    }

    fn decode(b: &[u8]) -> Option<Cmd> {
        let s = std::str::from_utf8(b).ok()?;
        let parts: Vec<&str> = s.split('\n').collect();
        match parts.as_slice() {
            ["P", k, v] => Some(Cmd::Put(k.to_string(), v.to_string())),
            ["D", k] => Some(Cmd::Delete(k.to_string())),
            ["C", k, e, v] => Some(Cmd::CondPut {
                key: k.to_string(),
                expect: (*e != "~").then(|| e.to_string()),
                value: v.to_string(),
            }),
            ["S", lo, at, hi, child, epoch, voters] => Some(Cmd::Split {
                lo: lo.to_string(),
                at: at.to_string(),
                hi: str_opt(hi),
                child: child.parse().ok()?,
                epoch: epoch.parse().ok()?,
                voters: voters
                    .split(',')
                    .map(|v| v.parse().ok())
                    .collect::<Option<Vec<NodeId>>>()?,
            }),
            _ => None,
        }
    }

    /// The key a client command touches (None: a split).
    fn key(&self) -> Option<&str> {
        match self {
            Cmd::Put(k, _) | Cmd::Delete(k) | Cmd::CondPut { key: k, .. } => Some(k),
            Cmd::Split { .. } => None,
        }
    }

    /// Applies the command. `refuse`: refuse keys outside the range (always, except in the
    /// broken variant [`BrokenSplit::NoRefuse`]).
    fn apply(&self, data: &mut SmData, refuse: bool) -> Res {
        if let Some(key) = self.key()
            && refuse
            && !in_range(key, &data.lo, &data.hi)
        {
            return Res::Refused;
        }
        let map = &mut data.map;
        match self {
            Cmd::Put(k, v) => {
                map.insert(k.clone(), v.clone());
                Res::Done
            }
            Cmd::Delete(k) => {
                map.remove(k);
                Res::Done
            }
            Cmd::CondPut { key, expect, value } => {
                if map.get(key) == expect.as_ref() {
                    map.insert(key.clone(), value.clone());
                    Res::Done
                } else {
                    Res::CondFailed
                }
            }
            Cmd::Split {
                at,
                hi,
                child,
                epoch,
                voters,
                ..
            } => {
                if *epoch <= data.epoch {
                    return Res::NoOp;
                }
                // The upper range's rows stay, frozen, until this node created the child.
                data.hi = Some(at.clone());
                data.epoch = *epoch;
                data.pending.insert(
                    *child,
                    ChildInfo {
                        lo: at.clone(),
                        hi: hi.clone(),
                        epoch: *epoch,
                        voters: voters.clone(),
                    },
                );
                Res::Split
            }
        }
    }
}

fn encode_context(client: u64, op: u64) -> Vec<u8> {
    format!("{client}:{op}").into_bytes()
}

fn decode_context(b: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(b).ok()?;
    let (c, o) = s.split_once(':')?;
    Some((c.parse().ok()?, o.parse().ok()?))
}

/// A state machine's "disk": it persists at every apply, so a crash loses nothing of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct SmData {
    map: BTreeMap<String, String>,
    applied: u64,
    /// The range served, `[lo, hi)` (split runs; the whole key space otherwise).
    lo: String,
    hi: Option<String>,
    /// The epoch of the last split that took effect (or that created the group).
    epoch: u64,
    /// Children split off whose rows this replica still holds, frozen (until this node created
    /// the child locally).
    pending: BTreeMap<GroupId, ChildInfo>,
}

/// A child group split off: its range, the split's epoch, its placed voters.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ChildInfo {
    lo: String,
    hi: Option<String>,
    epoch: u64,
    voters: Vec<NodeId>,
}

impl ChildInfo {
    fn contains(&self, key: &str) -> bool {
        in_range(key, &self.lo, &self.hi)
    }

    /// The child's state at its bootstrap index: the frozen rows of its range in `parent`.
    fn initial_state(&self, parent: &SmData) -> SmData {
        SmData {
            map: parent
                .map
                .iter()
                .filter(|(k, _)| self.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            applied: BOOTSTRAP_INDEX,
            lo: self.lo.clone(),
            hi: self.hi.clone(),
            epoch: self.epoch,
            pending: BTreeMap::new(),
        }
    }
}

/// What a replica applied, for the proposer's client to pick up.
#[derive(Clone, Debug)]
struct ApplyNote {
    group: GroupId,
    /// The state machine's applied index before this entry.
    prev_applied: u64,
    index: u64,
    context: Option<(u64, u64)>,
    res: Res,
}

/// A split as first applied (split runs): the child's range and where it came from.
#[derive(Clone, Debug)]
struct SplitRec {
    parent: GroupId,
    /// Index of the split entry in the parent's log.
    index: u64,
    child: ChildInfo,
}

/// Per group: index -> (data, context) of the entry applied there.
type CommittedLog = BTreeMap<GroupId, BTreeMap<u64, (Vec<u8>, Vec<u8>)>>;

/// Global knowledge of the run, shared by the state machines and the simulator.
#[derive(Default)]
struct Checker {
    /// Per group: index -> (data, context) of the entry applied there (first replica to apply).
    committed: CommittedLog,
    /// Per group: client context -> index it was applied at.
    applied_ops: BTreeMap<GroupId, BTreeMap<(u64, u64), u64>>,
    /// (group, term) -> the node seen as leader.
    leaders: BTreeMap<(GroupId, u64), NodeId>,
    /// (group, term, voter) -> the candidate it voted for (from every persisted hard state).
    votes: BTreeMap<(GroupId, u64, NodeId), NodeId>,
    violations: Vec<String>,
    /// Snapshots restored by replicas (to see that the runs exercise them).
    restores: u64,
    /// The groups that exist (the metadata): the factories open these only.
    groups: BTreeSet<GroupId>,
    /// Split runs: every split that took effect, by child (first replica to apply it).
    splits: BTreeMap<GroupId, SplitRec>,
}

impl Checker {
    fn violation(&mut self, now: u64, msg: String) {
        if self.violations.len() < 20 {
            self.violations.push(format!("t={now}ms: {msg}"));
        }
    }

    /// The range `group` serves at log index `index` (from the splits recorded so far, an
    /// independent account of the state machines' own ranges): the range it was created with,
    /// narrowed by its last split before `index`.
    fn range_at(&self, group: GroupId, index: u64) -> (String, Option<String>) {
        let (lo, mut hi) = match self.splits.get(&group) {
            Some(r) => (r.child.lo.clone(), r.child.hi.clone()),
            None => (String::new(), None),
        };
        if let Some(r) = self
            .splits
            .values()
            .filter(|r| r.parent == group && r.index < index)
            .max_by_key(|r| r.index)
        {
            hi = Some(r.child.lo.clone());
        }
        (lo, hi)
    }

    /// The epoch of `group` before log index `index`: that of its last split before `index`, or
    /// the one it was created with.
    fn epoch_at(&self, group: GroupId, index: u64) -> u64 {
        self.splits
            .values()
            .filter(|r| r.parent == group && r.index < index)
            .max_by_key(|r| r.index)
            .or_else(|| self.splits.get(&group))
            .map_or(0, |r| r.child.epoch)
    }

    /// The routing map: every group's current range, from the splits that took effect.
    fn routes(&self) -> Vec<Route> {
        let mut routes = vec![Route {
            group: ROOT,
            lo: String::new(),
            hi: None,
        }];
        // Children have increasing ids: a parent's split is recorded before its child splits.
        for (&child, r) in &self.splits {
            if let Some(p) = routes.iter_mut().find(|x| x.group == r.parent) {
                p.hi = Some(r.child.lo.clone());
            }
            routes.push(Route {
                group: child,
                lo: r.child.lo.clone(),
                hi: r.child.hi.clone(),
            });
        }
        routes
    }
}

/// Where a client sends the operations on a range of keys.
#[derive(Clone, Debug)]
struct Route {
    group: GroupId,
    lo: String,
    hi: Option<String>,
}

fn route_of(routes: &[Route], key: &str) -> GroupId {
    routes
        .iter()
        .find(|r| in_range(key, &r.lo, &r.hi))
        .map_or(ROOT, |r| r.group)
}

struct KvSm {
    node: NodeId,
    group: GroupId,
    data: Shared<SmData>,
    checker: Shared<Checker>,
    notes: Shared<Vec<ApplyNote>>,
    clock: Shared<u64>,
    broken: BrokenSplit,
}

impl StateMachine for KvSm {
    fn apply(&mut self, entries: Vec<Committed>) {
        let now = *self.clock.lock();
        let mut data = self.data.lock();
        let mut checker = self.checker.lock();
        for e in entries {
            if e.index <= data.applied {
                checker.violation(
                    now,
                    format!(
                        "node {} group {}: apply of index {} at applied index {}",
                        self.node, self.group, e.index, data.applied
                    ),
                );
                continue;
            }
            let log = checker.committed.entry(self.group).or_default();
            let first = !log.contains_key(&e.index);
            let recorded = log
                .entry(e.index)
                .or_insert_with(|| (e.data.clone(), e.context.clone()))
                .clone();
            if recorded != (e.data.clone(), e.context.clone()) {
                checker.violation(
                    now,
                    format!(
                        "node {} group {} applied {:?} at index {}, another replica applied {:?}",
                        self.node,
                        self.group,
                        String::from_utf8_lossy(&e.data),
                        e.index,
                        String::from_utf8_lossy(&recorded.0)
                    ),
                );
            }
            let context = decode_context(&e.context);
            if let Some(ctx) = context {
                let at = *checker
                    .applied_ops
                    .entry(self.group)
                    .or_default()
                    .entry(ctx)
                    .or_insert(e.index);
                if at != e.index {
                    checker.violation(
                        now,
                        format!(
                            "group {}: operation {ctx:?} applied at index {} and at index {at}",
                            self.group, e.index
                        ),
                    );
                }
            }
            let cmd = Cmd::decode(&e.data);
            let res = match &cmd {
                Some(cmd) => cmd.apply(&mut data, self.broken != BrokenSplit::NoRefuse),
                None => {
                    checker.violation(
                        now,
                        format!("group {}: undecodable entry at {}", self.group, e.index),
                    );
                    Res::CondFailed
                }
            };
            if let Some(cmd) = &cmd {
                self.check_split_rules(&mut checker, now, cmd, res, e.index, first);
            }
            let prev_applied = data.applied;
            data.applied = e.index;
            self.notes.lock().push(ApplyNote {
                group: self.group,
                prev_applied,
                index: e.index,
                context,
                res,
            });
        }
    }

    fn applied_index(&self) -> u64 {
        self.data.lock().applied
    }

    fn snapshot(&mut self) -> Result<Vec<u8>, String> {
        let data = self.data.lock();
        let mut out = format!("{}\n", data.applied);
        // Split runs: the range and the pending children (with their rows, below: a snapshot
        // listing a pending child holds all its rows). Absent otherwise (same bytes as before).
        if !data.lo.is_empty() || data.hi.is_some() || data.epoch != 0 {
            out.push_str(&format!(
                "#range\t{}\t{}\t{}\n",
                data.lo,
                opt_str(&data.hi),
                data.epoch
            ));
        }
        for (child, c) in &data.pending {
            let voters: Vec<String> = c.voters.iter().map(|v| v.to_string()).collect();
            out.push_str(&format!(
                "#child\t{child}\t{}\t{}\t{}\t{}\n",
                c.lo,
                opt_str(&c.hi),
                c.epoch,
                voters.join(",")
            ));
        }
        for (k, v) in &data.map {
            out.push_str(&format!("{k}\t{v}\n"));
        }
        Ok(out.into_bytes())
    }

    fn restore(&mut self, bytes: &[u8], index: u64) -> Result<(), String> {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        let mut lines = text.lines();
        let taken_at: u64 = lines
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or("bad snapshot header")?;
        let mut restored = SmData::default();
        for line in lines {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["#range", lo, hi, epoch] => {
                    restored.lo = lo.to_string();
                    restored.hi = str_opt(hi);
                    restored.epoch = epoch.parse().map_err(|_| "bad epoch")?;
                }
                ["#child", child, lo, hi, epoch, voters] => {
                    let voters = voters
                        .split(',')
                        .map(|v| v.parse().ok())
                        .collect::<Option<Vec<NodeId>>>()
                        .ok_or("bad voters")?;
                    restored.pending.insert(
                        child.parse().map_err(|_| "bad child")?,
                        ChildInfo {
                            lo: lo.to_string(),
                            hi: str_opt(hi),
                            epoch: epoch.parse().map_err(|_| "bad epoch")?,
                            voters,
                        },
                    );
                }
                [k, v] => {
                    restored.map.insert(k.to_string(), v.to_string());
                }
                _ => return Err("bad snapshot line".to_string()),
            }
        }
        let now = *self.clock.lock();
        let mut data = self.data.lock();
        if taken_at > index {
            self.checker.lock().violation(
                now,
                format!(
                    "node {} group {}: snapshot of applied index {taken_at} restored as index {index}",
                    self.node, self.group
                ),
            );
        }
        if index < data.applied {
            self.checker.lock().violation(
                now,
                format!(
                    "node {} group {}: restore at {index} rolls back applied index {}",
                    self.node, self.group, data.applied
                ),
            );
        }
        restored.applied = index;
        *data = restored;
        self.checker.lock().restores += 1;
        Ok(())
    }
}

impl KvSm {
    /// Split runs: records a split the first time it is applied, and checks that no key is
    /// served by two groups: a client command is applied (not refused) only when its key is in
    /// the group's range at that index, as the recorded splits define it.
    fn check_split_rules(
        &self,
        checker: &mut Checker,
        now: u64,
        cmd: &Cmd,
        res: Res,
        index: u64,
        first: bool,
    ) {
        let g = self.group;
        match cmd {
            Cmd::Split {
                at,
                hi,
                child,
                epoch,
                voters,
                ..
            } => {
                let current = checker.epoch_at(g, index);
                let expected = if *epoch > current {
                    Res::Split
                } else {
                    Res::NoOp
                };
                if res != expected {
                    checker.violation(
                        now,
                        format!(
                            "node {} group {g}: split at index {index} (epoch {epoch}) gave \
                             {res:?}, expected {expected:?}",
                            self.node
                        ),
                    );
                }
                if first && expected == Res::Split {
                    checker.groups.insert(*child);
                    checker.splits.insert(
                        *child,
                        SplitRec {
                            parent: g,
                            index,
                            child: ChildInfo {
                                lo: at.clone(),
                                hi: hi.clone(),
                                epoch: *epoch,
                                voters: voters.clone(),
                            },
                        },
                    );
                }
            }
            _ => {
                let Some(key) = cmd.key() else { return };
                let (lo, hi) = checker.range_at(g, index);
                let inside = in_range(key, &lo, &hi);
                if res == Res::Refused && inside {
                    checker.violation(
                        now,
                        format!(
                            "node {} group {g} refused key {key} at index {index}, in its range \
                             [{lo}, {})",
                            self.node,
                            opt_str(&hi)
                        ),
                    );
                } else if res != Res::Refused && !inside {
                    checker.violation(
                        now,
                        format!(
                            "key served by two groups: node {} group {g} applied a write of \
                             key {key} at index {index}, outside its range [{lo}, {})",
                            self.node,
                            opt_str(&hi)
                        ),
                    );
                }
            }
        }
    }
}

/// Opens the state machines of one node from its simulated disk.
struct Factory {
    node: NodeId,
    sms: Shared<BTreeMap<GroupId, Shared<SmData>>>,
    checker: Shared<Checker>,
    notes: Shared<Vec<ApplyNote>>,
    clock: Shared<u64>,
    broken: BrokenSplit,
}

impl Factory {
    fn sm(&self, group: GroupId) -> KvSm {
        let data = self.sms.lock().entry(group).or_default().clone();
        KvSm {
            node: self.node,
            group,
            data,
            checker: self.checker.clone(),
            notes: self.notes.clone(),
            clock: self.clock.clone(),
            broken: self.broken,
        }
    }
}

impl GroupFactory for Factory {
    fn open(&self, group: GroupId) -> Option<Box<dyn StateMachine>> {
        // Every node hosts every group that exists (split runs: the children too, as they are
        // created; a message of a child this node has not created yet makes a joining replica).
        let exists = self.checker.lock().groups.contains(&group);
        exists.then(|| Box::new(self.sm(group)) as Box<dyn StateMachine>)
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes, network, clients.

struct Node {
    id: NodeId,
    /// This node's (fixed) election timeout in ticks, drawn from the seed.
    election_ticks: usize,
    core: Option<Core>,
    disk: MemLogStore,
    factory: Arc<Factory>,
    /// Crash in the middle of the next round (after sending `send_now`, before persisting).
    crash_mid_round: bool,
    /// Virtual time until which the node stays down.
    down_until: u64,
    /// Wiped ([`WipeMode::NewId`]): comes back as a new node ([`Ev::Rejoin`]), never restarts.
    rejoin_pending: bool,
}

#[derive(Clone, Debug)]
enum ClientOp {
    Read,
    Put(String),
    Delete,
    CondPut {
        expect: Option<String>,
        value: String,
    },
}

impl ClientOp {
    fn lincheck(&self) -> Op {
        match self {
            ClientOp::Read => Op::Read,
            ClientOp::Put(v) => Op::Write(Some(v.clone())),
            ClientOp::Delete => Op::Write(None),
            ClientOp::CondPut { expect, value } => Op::CondWrite {
                expect: expect.clone(),
                value: Some(value.clone()),
            },
        }
    }
}

#[derive(Clone, Debug)]
struct Pending {
    op_id: u64,
    group: GroupId,
    key: String,
    op: ClientOp,
    call: u64,
    /// Node, and (writes) the index `propose` returned / (reads) the read id.
    accepted: Option<(NodeId, u64)>,
    deadline: u64,
}

struct Client {
    id: u64,
    /// Split runs: the client's routing map (stale until refreshed after a refusal).
    routes: Vec<Route>,
    pending: Option<Pending>,
    /// Bumped at every state change: stale wake-ups are ignored.
    generation: u64,
    hint: BTreeMap<GroupId, NodeId>,
    next_op: u64,
    /// Last value seen per key (for plausible conditional puts).
    seen: BTreeMap<String, Option<String>>,
}

enum Ev {
    Tick(usize),
    Deliver {
        from: NodeId,
        to: NodeId,
        bytes: Vec<u8>,
    },
    Client {
        client: usize,
        generation: u64,
    },
    Fault,
    Restart(usize),
    Heal,
    Placement,
    CheckStates,
    /// Wipe a node's disk (wipe modes; retried until a node can be wiped).
    Wipe,
    /// A wiped node comes back as a new node id ([`WipeMode::NewId`]).
    Rejoin(usize),
    /// Split runs: propose the planned split (again), or plan the next one.
    Split,
}

/// Whether and how nodes lose their disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WipeMode {
    /// Disks survive crashes.
    Off,
    /// A wiped node restarts under its old id with an empty Raft state (hard state, log) and
    /// empty state machines: the unsafe way, which the checks must catch. A raft panic on such a
    /// node (it detects some lost-log symptoms, e.g. a commit index past its log) crashes the
    /// node, as it would end Shoal's driver thread, instead of failing the seed.
    SameId,
    /// A wiped node comes back as a new node id (Shoal's metadata gives a rejoining process with
    /// another instance a new id and declares the old one dead): the groups' leaders add it as a
    /// learner (it catches up by snapshot), promote it once caught up, then remove the old id by
    /// conf change. Messages to the old id go nowhere (its address now belongs to the new id).
    NewId,
}

/// A deliberately broken split protocol (split runs; the checks must catch it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenSplit {
    /// The protocol as Shoal runs it.
    No,
    /// The parent keeps applying writes of the child's range after the split.
    NoRefuse,
    /// A node that holds the frozen rows bootstraps the child from an empty state.
    EmptyBootstrap,
}

/// Options of a run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Self-test: serve reads from local state (must be caught by the linearizability check).
    pub stale_reads: bool,
    /// Whether and how nodes lose their disk.
    pub wipe: WipeMode,
    /// Partition splits: the run starts with one group over the whole key space (no meta
    /// group) and splits it, and its children, at random times (see [`Sim::split_event`]).
    pub splits: bool,
    /// Split runs: a deliberately broken variant of the protocol.
    pub broken_split: BrokenSplit,
    /// Leader leases for reads.
    pub lease: LeaseMode,
}

/// How leaders serve linearizable reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseMode {
    /// Under a read lease where one holds (Shoal's default), else by ReadIndex.
    On,
    /// Every read by ReadIndex (a quorum round).
    Off,
    /// Self-test: leases ten times too long for the election timeouts (must be caught).
    TooLong,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            stale_reads: false,
            wipe: WipeMode::Off,
            splits: false,
            broken_split: BrokenSplit::No,
            lease: LeaseMode::On,
        }
    }
}

/// A split planned by the simulator (proposed until it takes effect).
#[derive(Clone, Debug)]
struct PlannedSplit {
    group: GroupId,
    at: String,
    child: GroupId,
    epoch: u64,
}

struct Scheduled {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // Min-heap on (at, seq).
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct Stats {
    delivered: u64,
    dropped: u64,
    crashes: u64,
    partitions: u64,
    ok_writes: u64,
    cond_failed: u64,
    reads: u64,
    unknown: u64,
    retried_lost: u64,
    read_errors: u64,
    wipes: u64,
    /// Wiped nodes replaced in every group (new id a member, old id removed).
    replaced: u64,
    /// Raft panics turned into crashes ([`WipeMode::SameId`] only).
    panics: u64,
    /// Split runs: splits that took effect; operations refused as "wrong partition" (and
    /// re-routed); children created from the local copy / joining empty; crashes injected
    /// between a split's apply and the child's creation, or during its bootstrap.
    splits: u64,
    refused: u64,
    bootstraps: u64,
    joins: u64,
    split_crashes: u64,
    /// Children bootstrapped from the local copy after the child had elected a leader (the
    /// node was down or lagging); children joined empty by a node that should have held the
    /// rows (a placed voter whose parent replica has none).
    late_bootstraps: u64,
    rowless_joins: u64,
    /// Reads leaders answered under a lease (by nodes since crashed; live ones are added in the
    /// summary).
    lease_reads: u64,
}

struct Sim {
    seed: u64,
    rng: StdRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    nodes: Vec<Node>,
    /// Bootstrap voters (the 3 lowest ids); other nodes join as learners.
    voters: Vec<NodeId>,
    clients: Vec<Client>,
    checker: Shared<Checker>,
    notes: Vec<Shared<Vec<ApplyNote>>>,
    clock: Shared<u64>,
    /// Nodes on the minority side of the current partition (empty: no partition).
    isolated: BTreeSet<NodeId>,
    drop_prob: f64,
    dup_prob: f64,
    faults: bool,
    /// Self-test: serve reads from local state (must be caught by the linearizability check).
    stale_reads: bool,
    lease: LeaseMode,
    wipe: WipeMode,
    /// Wipe modes: the membership every group is moved to (bootstrap voters and node 4 vote,
    /// higher ids learn; a replacement id takes its wiped predecessor's role).
    target_voters: BTreeSet<NodeId>,
    target_learners: BTreeSet<NodeId>,
    /// `(old id, new id)` of the replacement in progress ([`WipeMode::NewId`]; one at a time).
    replacing: Option<(NodeId, NodeId)>,
    /// The id a replacement node gets next.
    next_id: NodeId,
    /// `(group, client context)` of every acknowledged write.
    acked: Vec<(GroupId, (u64, u64))>,
    clients_on: bool,
    history: Vec<Event>,
    last_stamp: u64,
    next_read_id: u64,
    /// (client, read id) per pending read, by node.
    stats: Stats,
    trace: u64,
    /// Split runs ([`Options::splits`]).
    splits: bool,
    broken_split: BrokenSplit,
    /// The split being proposed, and how many more to make.
    split_plan: Option<PlannedSplit>,
    splits_left: u64,
    next_child: GroupId,
}

/// The variable `name` as a number, if set and numeric.
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x100_0000_01b3)
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let n: usize = if rng.random_bool(0.25) { 5 } else { 3 };
        // Distinct fixed election timeouts: no two nodes time out together forever.
        let mut timeouts: Vec<usize> = (10..20).collect();
        timeouts.shuffle(&mut rng);
        let checker: Shared<Checker> = Arc::default();
        checker.lock().groups = GROUPS.into_iter().collect();
        let clock: Shared<u64> = Arc::default();
        let mut nodes = Vec::new();
        let mut notes = Vec::new();
        for (i, &election_ticks) in timeouts.iter().enumerate().take(n) {
            let id = i as NodeId + 1;
            let node_notes: Shared<Vec<ApplyNote>> = Arc::default();
            notes.push(node_notes.clone());
            let factory = Arc::new(Factory {
                node: id,
                sms: Arc::default(),
                checker: checker.clone(),
                notes: node_notes,
                clock: clock.clone(),
                broken: BrokenSplit::No,
            });
            nodes.push(Node {
                id,
                election_ticks,
                core: None,
                disk: MemLogStore::new(),
                factory,
                crash_mid_round: false,
                down_until: 0,
                rejoin_pending: false,
            });
        }
        let clients = (0..5)
            .map(|c| Client {
                id: c + 1,
                routes: vec![Route {
                    group: ROOT,
                    lo: String::new(),
                    hi: None,
                }],
                pending: None,
                generation: 0,
                hint: BTreeMap::new(),
                next_op: 1,
                seen: BTreeMap::new(),
            })
            .collect();
        Sim {
            seed,
            rng,
            lease: LeaseMode::On,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            voters: (1..=n.min(3) as NodeId).collect(),
            target_voters: (1..=n.min(4) as NodeId).collect(),
            target_learners: (5..=n as NodeId).collect(),
            replacing: None,
            next_id: n as NodeId + 1,
            acked: Vec::new(),
            wipe: WipeMode::Off,
            clients,
            checker,
            notes,
            clock,
            isolated: BTreeSet::new(),
            drop_prob: 0.0,
            dup_prob: 0.0,
            faults: true,
            stale_reads: false,
            clients_on: true,
            history: Vec::new(),
            last_stamp: 0,
            next_read_id: 1,
            stats: Stats {
                delivered: 0,
                dropped: 0,
                crashes: 0,
                partitions: 0,
                ok_writes: 0,
                cond_failed: 0,
                reads: 0,
                unknown: 0,
                retried_lost: 0,
                read_errors: 0,
                wipes: 0,
                replaced: 0,
                panics: 0,
                splits: 0,
                refused: 0,
                bootstraps: 0,
                joins: 0,
                split_crashes: 0,
                late_bootstraps: 0,
                rowless_joins: 0,
                lease_reads: 0,
            },
            trace: 0xcbf2_9ce4_8422_2325,
            splits: false,
            broken_split: BrokenSplit::No,
            split_plan: None,
            splits_left: 0,
            next_child: ROOT + 1,
        }
    }

    /// Split runs: one group ([`ROOT`]) over the whole key space to start with.
    fn enable_splits(&mut self, broken: BrokenSplit) {
        assert_eq!(self.wipe, WipeMode::Off, "split runs do not wipe nodes");
        self.splits = true;
        self.broken_split = broken;
        self.checker.lock().groups = BTreeSet::from([ROOT]);
        for node in &mut self.nodes {
            node.factory = Arc::new(Factory {
                node: node.id,
                sms: Arc::default(),
                checker: self.checker.clone(),
                notes: node.factory.notes.clone(),
                clock: self.clock.clone(),
                broken,
            });
        }
    }

    fn config(&self, i: usize) -> Config {
        let base = Config::default();
        Config {
            node_id: self.nodes[i].id,
            // Deterministic: a fixed timeout per node (raft would draw one from thread_rng).
            election_ticks: self.nodes[i].election_ticks,
            election_jitter_ticks: 1,
            // Small, so that replicas that were away need snapshots.
            compact_after: 20,
            // Every node's election timeout is at least 10 ticks, so the default 7 lease ticks
            // are safe for all. The broken variant times leases by a 10x slower tick than the
            // nodes run (the simulator ticks every TICK_MS whatever the config says).
            lease_ticks: match self.lease {
                LeaseMode::Off => 0,
                LeaseMode::On | LeaseMode::TooLong => base.lease_ticks,
            },
            tick: match self.lease {
                LeaseMode::TooLong => base.tick * 10,
                LeaseMode::On | LeaseMode::Off => base.tick,
            },
            ..base
        }
    }

    fn schedule(&mut self, delay: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at: self.now + delay,
            seq: self.seq,
            ev,
        });
    }

    /// A strictly increasing timestamp in "nanoseconds" for the history.
    fn stamp(&mut self) -> u64 {
        self.last_stamp = (self.last_stamp + 1).max(self.now * 1_000_000);
        self.last_stamp
    }

    fn violation(&self, msg: String) {
        self.checker.lock().violation(self.now, msg);
    }

    // --- nodes ---------------------------------------------------------------------------

    fn start_node(&mut self, i: usize, first: bool) {
        let id = self.nodes[i].id;
        let mut core = Core::new(self.config(i), self.nodes[i].factory.clone());
        core.set_clock(Arc::new(SimClock(self.clock.clone())));
        if first {
            for g in self.group_list() {
                let init = if self.voters.contains(&id) {
                    GroupInit::Bootstrap {
                        voters: self.voters.clone(),
                    }
                } else {
                    GroupInit::Join
                };
                let sm = Box::new(self.nodes[i].factory.sm(g));
                if let Err(e) = core.create_group(g, init, sm) {
                    self.violation(format!("node {id}: create_group({g}) failed: {e}"));
                }
            }
        } else {
            match self.nodes[i].disk.load() {
                Ok(groups) => {
                    if let Err(e) = core.load(groups) {
                        self.violation(format!("node {id}: Core::load failed: {e}"));
                    }
                }
                Err(e) => self.violation(format!("node {id}: MemLogStore::load failed: {e}")),
            }
        }
        self.nodes[i].core = Some(core);
        self.nodes[i].crash_mid_round = false;
        self.drive(i);
    }

    fn crash(&mut self, i: usize) {
        let id = self.nodes[i].id;
        if let Some(core) = self.nodes[i].core.take() {
            self.stats.lease_reads += core.lease_reads();
        }
        self.nodes[i].crash_mid_round = false;
        self.stats.crashes += 1;
        // The clients connected to it lose their connection: accepted writes become Unknown,
        // accepted reads are abandoned.
        for c in 0..self.clients.len() {
            let Some(p) = self.clients[c].pending.clone() else {
                continue;
            };
            if p.accepted.map(|(n, _)| n) == Some(id) {
                self.finish(c, Ret::Unknown);
            }
        }
    }

    /// Runs rounds on node `i` until it has nothing to do (split runs: then carries out the
    /// node's part of the splits it applied, [`Sim::split_work`]).
    fn drive(&mut self, i: usize) {
        self.drive_rounds(i);
        if self.splits {
            self.split_work(i);
        }
    }

    fn drive_rounds(&mut self, i: usize) {
        for _ in 0..32 {
            let id = self.nodes[i].id;
            let Some(mut round) = self.on_core(i, Core::ready) else {
                return;
            };
            if round.is_empty() {
                break;
            }
            let send_now = std::mem::take(&mut round.send_now);
            let mut by_dest: BTreeMap<NodeId, Vec<GroupMessage>> = BTreeMap::new();
            for (to, m) in send_now {
                by_dest.entry(to).or_default().push(m);
            }
            for (to, msgs) in by_dest {
                self.send(id, to, msgs);
            }
            if self.nodes[i].crash_mid_round {
                self.crash(i);
                return;
            }
            if let Err(e) = self.nodes[i].disk.write(&round.log) {
                self.violation(format!("node {id}: log write failed: {e}"));
            }
            self.check_votes(id, &round.log);
            let Some(out) = self.on_core(i, |core| core.persisted(round)) else {
                return;
            };
            let Some(status) = self.nodes[i].core.as_ref().map(Core::status) else {
                return;
            };
            for (to, msgs) in out.send {
                self.send(id, to, msgs);
            }
            for (read_id, group, result) in out.reads {
                self.read_done(i, read_id, group, result);
            }
            {
                let mut checker = self.checker.lock();
                for s in &status {
                    if s.role == "Leader" {
                        let leader = *checker.leaders.entry((s.group, s.term)).or_insert(id);
                        if leader != id {
                            let now = self.now;
                            checker.violation(
                                now,
                                format!(
                                    "group {}: nodes {leader} and {id} both leader in term {}",
                                    s.group, s.term
                                ),
                            );
                        }
                    }
                }
            }
            self.take_notes(i);
        }
        self.take_notes(i);
    }

    /// Runs `f` on node `i`'s core (None when the node is down). In [`WipeMode::SameId`] runs a
    /// panic crashes the node (it restarts later); in other runs it fails the seed.
    fn on_core<T>(&mut self, i: usize, f: impl FnOnce(&mut Core) -> T) -> Option<T> {
        let core = self.nodes[i].core.as_mut()?;
        if self.wipe != WipeMode::SameId {
            return Some(f(core));
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(core))) {
            Ok(v) => Some(v),
            Err(_) => {
                self.stats.panics += 1;
                self.crash(i);
                let back = self.rng.random_range(500..5_000);
                self.nodes[i].down_until = self.now + back;
                self.schedule(back, Ev::Restart(i));
                None
            }
        }
    }

    /// Records the votes a round persisted (a vote goes out only after its hard state is
    /// durable): a node votes for at most one candidate per term of a group.
    fn check_votes(&mut self, id: NodeId, log: &LogBatch) {
        let mut checker = self.checker.lock();
        for w in &log.groups {
            let Some(hs) = w.hard_state.as_ref().filter(|hs| hs.vote != 0) else {
                continue;
            };
            let first = *checker
                .votes
                .entry((w.group, hs.term, id))
                .or_insert(hs.vote);
            if first != hs.vote {
                let now = self.now;
                checker.violation(
                    now,
                    format!(
                        "group {}: node {id} voted for {first} and for {} in term {}",
                        w.group, hs.vote, hs.term
                    ),
                );
            }
        }
    }

    /// The slot of the node running as `id` (None: no node has that id, e.g. a wiped node's
    /// old id).
    fn slot_of(&self, id: NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    fn send(&mut self, from: NodeId, to: NodeId, msgs: Vec<GroupMessage>) {
        if msgs.is_empty() {
            return;
        }
        let bytes = GroupMessage::encode_batch(&msgs);
        if self.isolated.contains(&from) != self.isolated.contains(&to)
            || self.rng.random_bool(self.drop_prob)
        {
            self.stats.dropped += 1;
            return;
        }
        let copies = if self.rng.random_bool(self.dup_prob) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            // Mostly a few ms; sometimes much later (reordering).
            let delay = if self.rng.random_bool(0.05) {
                self.rng.random_range(50..1500)
            } else {
                self.rng.random_range(1..20)
            };
            self.schedule(
                delay,
                Ev::Deliver {
                    from,
                    to,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, bytes: Vec<u8>) {
        let Some(i) = self.slot_of(to) else {
            self.stats.dropped += 1;
            return;
        };
        if self.nodes[i].core.is_none()
            || self.isolated.contains(&from) != self.isolated.contains(&to)
        {
            self.stats.dropped += 1;
            return;
        }
        let msgs = match GroupMessage::decode_batch(&bytes) {
            Ok(m) => m,
            Err(e) => {
                self.violation(format!("decode_batch of an encoded batch failed: {e}"));
                return;
            }
        };
        self.stats.delivered += 1;
        let mut h = DefaultHasher::new(); // fixed keys: the same in every process
        (self.now, from, to, &bytes).hash(&mut h);
        self.trace = mix(self.trace, h.finish());
        if self.on_core(i, |core| core.step(from, msgs)).is_some() {
            self.drive(i);
        }
    }

    // --- clients -------------------------------------------------------------------------

    fn client_wake(&mut self, c: usize) {
        if self.clients[c].pending.is_none() {
            if !self.clients_on {
                return;
            }
            self.new_op(c);
        }
        let Some(p) = self.clients[c].pending.clone() else {
            return;
        };
        match p.accepted {
            Some(_) if self.now >= p.deadline => {
                // No answer in time: a write may or may not have happened.
                self.finish(c, Ret::Unknown);
            }
            Some(_) => {
                let generation = self.bump(c);
                self.schedule(
                    p.deadline - self.now,
                    Ev::Client {
                        client: c,
                        generation,
                    },
                );
            }
            None if self.now >= p.call / 1_000_000 + GIVE_UP_MS => {
                // Never accepted by any node: it did not happen.
                self.clients[c].pending = None;
                self.idle(c);
            }
            None => self.attempt(c),
        }
    }

    fn bump(&mut self, c: usize) -> u64 {
        self.clients[c].generation += 1;
        self.clients[c].generation
    }

    fn idle(&mut self, c: usize) {
        let generation = self.bump(c);
        let think = self.rng.random_range(0..300);
        self.schedule(
            think,
            Ev::Client {
                client: c,
                generation,
            },
        );
    }

    fn new_op(&mut self, c: usize) {
        let (group, key) = if self.splits {
            // Route by key with the client's map, refreshed now and then (else only after a
            // refusal): clients with stale maps keep sending to the parent.
            if self.rng.random_bool(0.03) {
                self.clients[c].routes = self.checker.lock().routes();
            }
            let key = format!("k{}", self.rng.random_range(0..SPLIT_KEYS));
            (route_of(&self.clients[c].routes, &key), key)
        } else {
            let group = GROUPS[self.rng.random_range(0..GROUPS.len())];
            let key = format!("g{group}/k{}", self.rng.random_range(0..KEYS_PER_GROUP));
            (group, key)
        };
        let client = &mut self.clients[c];
        let op_id = client.next_op;
        client.next_op += 1;
        let value = format!("c{}-{op_id}", client.id);
        let roll = self.rng.random_range(0..100);
        let op = match roll {
            0..35 => ClientOp::Read,
            35..65 => ClientOp::Put(value),
            65..75 => ClientOp::Delete,
            _ => {
                let expect = if self.rng.random_bool(0.8) {
                    self.clients[c].seen.get(&key).cloned().flatten()
                } else {
                    None
                };
                ClientOp::CondPut { expect, value }
            }
        };
        let call = self.stamp();
        self.clients[c].pending = Some(Pending {
            op_id,
            group,
            key,
            op,
            call,
            accepted: None,
            deadline: 0,
        });
    }

    /// Sends the pending operation to a node (the leader hint, or a random node).
    fn attempt(&mut self, c: usize) {
        let Some(p) = self.clients[c].pending.clone() else {
            return;
        };
        let n = self.nodes.len() as NodeId;
        let target = match self.clients[c].hint.get(&p.group) {
            Some(&h) if self.rng.random_bool(0.8) => h,
            _ => self.nodes[(self.rng.random_range(1..=n) - 1) as usize].id,
        };
        let slot = self.slot_of(target);
        let retry = self.rng.random_range(20..200);
        let Some(i) = slot.filter(|&i| self.nodes[i].core.is_some()) else {
            // Connection refused.
            self.clients[c].hint.remove(&p.group);
            let generation = self.bump(c);
            self.schedule(
                retry,
                Ev::Client {
                    client: c,
                    generation,
                },
            );
            return;
        };
        let client_id = self.clients[c].id;
        if matches!(p.op, ClientOp::Read) && self.stale_reads {
            // Self-test mode: serve the read from the replica's local state, without a read
            // index (not linearizable: a partitioned replica answers with stale data).
            let data = self.nodes[i].factory.sms.lock().get(&p.group).cloned();
            let value = data.and_then(|d| d.lock().map.get(&p.key).cloned());
            self.finish(c, Ret::Read(value));
            return;
        }
        let result = if let ClientOp::Read = p.op {
            let read_id = self.next_read_id;
            self.next_read_id += 1;
            if let Some(core) = self.nodes[i].core.as_mut() {
                core.read_index(p.group, read_id);
            }
            Ok(read_id)
        } else {
            let cmd = match &p.op {
                ClientOp::Put(v) => Cmd::Put(p.key.clone(), v.clone()),
                ClientOp::Delete => Cmd::Delete(p.key.clone()),
                ClientOp::CondPut { expect, value } => Cmd::CondPut {
                    key: p.key.clone(),
                    expect: expect.clone(),
                    value: value.clone(),
                },
                ClientOp::Read => unreachable!("reads handled above"),
            };
            match self.nodes[i].core.as_mut() {
                Some(core) => {
                    core.propose(p.group, encode_context(client_id, p.op_id), cmd.encode())
                }
                None => Err(RaftError::Stopped),
            }
        };
        match result {
            Ok(token) => {
                if let Some(pending) = self.clients[c].pending.as_mut() {
                    pending.accepted = Some((target, token));
                    pending.deadline = self.now + OP_DEADLINE_MS;
                }
                let generation = self.bump(c);
                self.schedule(
                    OP_DEADLINE_MS,
                    Ev::Client {
                        client: c,
                        generation,
                    },
                );
                self.drive(i);
            }
            Err(RaftError::NotLeader { leader, .. }) => {
                match leader {
                    Some(l) => self.clients[c].hint.insert(p.group, l),
                    None => self.clients[c].hint.remove(&p.group),
                };
                let generation = self.bump(c);
                self.schedule(
                    retry,
                    Ev::Client {
                        client: c,
                        generation,
                    },
                );
            }
            Err(_) => {
                self.clients[c].hint.remove(&p.group);
                let generation = self.bump(c);
                self.schedule(
                    retry,
                    Ev::Client {
                        client: c,
                        generation,
                    },
                );
            }
        }
    }

    /// Records the pending operation's outcome and lets the client go on.
    fn finish(&mut self, c: usize, ret: Ret) {
        let Some(p) = self.clients[c].pending.take() else {
            return;
        };
        let ret_at = if ret == Ret::Unknown {
            u64::MAX
        } else {
            self.stamp()
        };
        match &ret {
            Ret::Unknown => self.stats.unknown += 1,
            Ret::Ok => self.stats.ok_writes += 1,
            Ret::CondFailed => self.stats.cond_failed += 1,
            Ret::Read(_) => self.stats.reads += 1,
        }
        if ret == Ret::Ok {
            self.acked.push((p.group, (self.clients[c].id, p.op_id)));
        }
        match (&p.op, &ret) {
            (_, Ret::Read(v)) => {
                self.clients[c].seen.insert(p.key.clone(), v.clone());
            }
            (ClientOp::Put(v), Ret::Ok) | (ClientOp::CondPut { value: v, .. }, Ret::Ok) => {
                self.clients[c].seen.insert(p.key.clone(), Some(v.clone()));
            }
            (ClientOp::Delete, Ret::Ok) => {
                self.clients[c].seen.insert(p.key.clone(), None);
            }
            _ => {}
        }
        let mut h = DefaultHasher::new();
        (
            self.now,
            self.clients[c].id,
            p.op_id,
            &p.key,
            format!("{ret:?}"),
        )
            .hash(&mut h);
        self.trace = mix(self.trace, h.finish());
        if !(matches!(p.op, ClientOp::Read) && ret == Ret::Unknown) {
            self.history.push(Event {
                client: self.clients[c].id,
                key: p.key,
                op: p.op.lincheck(),
                ret,
                call: p.call,
                ret_at,
            });
        }
        self.idle(c);
    }

    fn read_done(&mut self, i: usize, read_id: u64, group: GroupId, result: Result<(), RaftError>) {
        let node = self.nodes[i].id;
        let Some(c) = self.clients.iter().position(|cl| {
            cl.pending.as_ref().is_some_and(|p| {
                matches!(p.op, ClientOp::Read) && p.accepted == Some((node, read_id))
            })
        }) else {
            return;
        };
        let Some(p) = self.clients[c].pending.clone() else {
            return;
        };
        if p.group != group {
            self.violation(format!(
                "read {read_id} on group {} answered for group {group}",
                p.group
            ));
        }
        match result {
            Ok(()) => {
                let data = self.nodes[i].factory.sms.lock().get(&group).cloned();
                let d = data.map(|d| d.lock().clone()).unwrap_or_default();
                if self.splits && !in_range(&p.key, &d.lo, &d.hi) {
                    // The key left this group's range: wrong partition.
                    self.reroute(c);
                    return;
                }
                self.finish(c, Ret::Read(d.map.get(&p.key).cloned()));
            }
            Err(e) => {
                // The read failed: retry it (elsewhere) later.
                self.stats.read_errors += 1;
                if let RaftError::NotLeader {
                    leader: Some(l), ..
                } = e
                {
                    self.clients[c].hint.insert(group, l);
                } else {
                    self.clients[c].hint.remove(&group);
                }
                if let Some(pending) = self.clients[c].pending.as_mut() {
                    pending.accepted = None;
                }
                let generation = self.bump(c);
                let retry = self.rng.random_range(20..200);
                self.schedule(
                    retry,
                    Ev::Client {
                        client: c,
                        generation,
                    },
                );
            }
        }
    }

    /// Hands what node `i` applied to the clients waiting on it.
    fn take_notes(&mut self, i: usize) {
        let node = self.nodes[i].id;
        let notes = std::mem::take(&mut *self.notes[i].lock());
        for note in notes {
            for c in 0..self.clients.len() {
                let Some(p) = self.clients[c].pending.clone() else {
                    continue;
                };
                let Some((n, index)) = p.accepted else {
                    continue;
                };
                if n != node || p.group != note.group || matches!(p.op, ClientOp::Read) {
                    continue;
                }
                if note.context == Some((self.clients[c].id, p.op_id)) {
                    if note.index != index {
                        self.violation(format!(
                            "group {}: propose returned index {index} but the entry applied at {}",
                            note.group, note.index
                        ));
                    }
                    match note.res {
                        Res::Done => self.finish(c, Ret::Ok),
                        Res::Refused => self.reroute(c),
                        _ => self.finish(c, Ret::CondFailed),
                    }
                } else if note.index == index || (note.prev_applied < index && index < note.index) {
                    // Another entry was committed at our index: the proposal was lost and
                    // definitely did not happen; propose it again.
                    self.stats.retried_lost += 1;
                    if let Some(pending) = self.clients[c].pending.as_mut() {
                        pending.accepted = None;
                    }
                    let generation = self.bump(c);
                    let retry = self.rng.random_range(0..100);
                    self.schedule(
                        retry,
                        Ev::Client {
                            client: c,
                            generation,
                        },
                    );
                }
            }
        }
    }

    // --- faults and placement -----------------------------------------------------------

    fn fault(&mut self) {
        if !self.faults {
            return;
        }
        let n = self.nodes.len();
        match self.rng.random_range(0..100) {
            0..30 => {
                // Crash a node (at most a minority down at once).
                let down = self.nodes.iter().filter(|x| x.core.is_none()).count();
                if down < (n - 1) / 2 {
                    let i = self.rng.random_range(0..n);
                    if self.nodes[i].core.is_some() {
                        let back = self.rng.random_range(500..10_000);
                        self.nodes[i].down_until = self.now + back;
                        if self.rng.random_bool(0.5) {
                            self.nodes[i].crash_mid_round = true;
                        } else {
                            self.crash(i);
                        }
                        self.schedule(back, Ev::Restart(i));
                    }
                }
            }
            30..55 if self.isolated.is_empty() => {
                // Partition: cut a random minority off from the rest for a while.
                let size = self.rng.random_range(1..=n / 2);
                while self.isolated.len() < size {
                    let slot = self.rng.random_range(1..=n as NodeId) - 1;
                    self.isolated.insert(self.nodes[slot as usize].id);
                }
                self.stats.partitions += 1;
                let heal = self.rng.random_range(1_000..20_000);
                self.schedule(heal, Ev::Heal);
            }
            55..75 => {
                self.drop_prob = [0.0, 0.01, 0.05, 0.2, 0.5][self.rng.random_range(0..5)];
                self.dup_prob = [0.0, 0.01, 0.1][self.rng.random_range(0..3)];
            }
            75..85 => {
                // A leader transfer to a random voter.
                let groups = self.group_list();
                let g = groups[self.rng.random_range(0..groups.len())];
                let pool: Vec<NodeId> = match self.wipe {
                    WipeMode::Off => self.voters.clone(),
                    _ => self.target_voters.iter().copied().collect(),
                };
                let to = pool[self.rng.random_range(0..pool.len())];
                if let Some(i) = self.leader_index(g) {
                    if let Some(core) = self.nodes[i].core.as_mut() {
                        core.transfer_leader(g, to);
                    }
                    self.drive(i);
                }
            }
            85..95 if self.wipe != WipeMode::Off => {
                self.wipe_node();
            }
            _ => {}
        }
        let next = self.rng.random_range(500..4_000);
        self.schedule(next, Ev::Fault);
    }

    /// Wipes a random live node's disk (Raft log and state machines), if every node is up and no
    /// replacement is in progress; returns whether it did. [`WipeMode::SameId`]: the node
    /// restarts under its id; [`WipeMode::NewId`]: it comes back as a new id ([`Sim::rejoin`]).
    fn wipe_node(&mut self) -> bool {
        if self.nodes.iter().any(|x| x.core.is_none()) || self.replacing.is_some() {
            return false;
        }
        let i = self.rng.random_range(0..self.nodes.len());
        let back = self.rng.random_range(500..5_000);
        self.crash(i);
        self.stats.wipes += 1;
        self.nodes[i].disk = MemLogStore::new();
        self.nodes[i].factory.sms.lock().clear();
        self.nodes[i].down_until = self.now + back;
        match self.wipe {
            WipeMode::NewId => {
                self.nodes[i].rejoin_pending = true;
                self.schedule(back, Ev::Rejoin(i));
            }
            _ => self.schedule(back, Ev::Restart(i)),
        }
        true
    }

    /// The wiped node in slot `i` comes back from the same address as a new node id: it creates
    /// every group empty (joining), and takes the old id's place in the target membership.
    fn rejoin(&mut self, i: usize) {
        let old = self.nodes[i].id;
        let new = self.next_id;
        self.next_id += 1;
        self.nodes[i].id = new;
        self.nodes[i].rejoin_pending = false;
        self.nodes[i].factory = Arc::new(Factory {
            node: new,
            sms: Arc::default(),
            checker: self.checker.clone(),
            notes: self.notes[i].clone(),
            clock: self.clock.clone(),
            broken: self.broken_split,
        });
        if self.target_voters.remove(&old) {
            self.target_voters.insert(new);
        }
        if self.target_learners.remove(&old) {
            self.target_learners.insert(new);
        }
        self.replacing = Some((old, new));
        self.isolated.remove(&old);
        self.start_node(i, true);
    }

    /// The groups that exist, ascending (split runs: a parent before its children).
    fn group_list(&self) -> Vec<GroupId> {
        self.checker.lock().groups.iter().copied().collect()
    }

    // --- splits ------------------------------------------------------------------------------

    /// Split runs: proposes the planned split again until it took effect, then plans the next
    /// one (while the faults last): a random group whose range holds two keys or more is split
    /// at one of its keys, its upper part going to a new group.
    fn split_event(&mut self) {
        if let Some(plan) = self.split_plan.clone() {
            if self.checker.lock().splits.contains_key(&plan.child) {
                self.split_plan = None;
                self.stats.splits += 1;
                self.splits_left = self.splits_left.saturating_sub(1);
                if self.splits_left > 0 {
                    let next = self.rng.random_range(2_000..20_000);
                    self.schedule(next, Ev::Split);
                }
            } else {
                self.propose_split(&plan);
                self.schedule(1_000, Ev::Split);
            }
            return;
        }
        if !self.faults || self.splits_left == 0 {
            return;
        }
        let routes = self.checker.lock().routes();
        let candidates: Vec<(GroupId, Vec<String>)> = routes
            .iter()
            .map(|r| {
                let keys = (0..SPLIT_KEYS)
                    .map(|k| format!("k{k}"))
                    .filter(|k| in_range(k, &r.lo, &r.hi))
                    .collect::<Vec<_>>();
                (r.group, keys)
            })
            .filter(|(_, keys)| keys.len() >= 2)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let (group, keys) = candidates[self.rng.random_range(0..candidates.len())].clone();
        let plan = PlannedSplit {
            group,
            at: keys[self.rng.random_range(1..keys.len())].clone(),
            child: self.next_child,
            epoch: self.checker.lock().epoch_at(group, u64::MAX) + 1,
        };
        self.next_child += 1;
        self.split_plan = Some(plan.clone());
        self.propose_split(&plan);
        self.schedule(1_000, Ev::Split);
    }

    /// Proposes `plan` through its group's leader, with the leader's voters as the child's.
    fn propose_split(&mut self, plan: &PlannedSplit) {
        let Some(i) = self.leader_index(plan.group) else {
            return;
        };
        let routes = self.checker.lock().routes();
        let Some(route) = routes.iter().find(|r| r.group == plan.group) else {
            return;
        };
        let Some(core) = self.nodes[i].core.as_mut() else {
            return;
        };
        let Some(status) = core.status().into_iter().find(|s| s.group == plan.group) else {
            return;
        };
        let cmd = Cmd::Split {
            lo: route.lo.clone(),
            at: plan.at.clone(),
            hi: route.hi.clone(),
            child: plan.child,
            epoch: plan.epoch,
            voters: status.voters.clone(),
        };
        if core.propose(plan.group, Vec::new(), cmd.encode()).is_ok() {
            self.drive(i);
        }
    }

    /// Whether one more node may go down (at most a minority down at once).
    fn may_crash(&self) -> bool {
        let n = self.nodes.len();
        let down = self
            .nodes
            .iter()
            .filter(|x| x.core.is_none() || x.crash_mid_round)
            .count();
        down < (n - 1) / 2
    }

    /// Split runs: node `i`'s part of the splits, after each of its rounds (and at start):
    /// - for every child whose frozen rows a local replica holds: if the child is not created
    ///   here yet, create it, from a copy of the rows (bootstrap, when this node is one of the
    ///   child's placed voters) or empty (join); once the child's creation is durable here,
    ///   drop the rows from the parent's replica (locally, not through Raft);
    /// - a child this node should hold but has no rows of (its parent replica applied the split
    ///   and dropped the rows, or came by a snapshot without them, or there is no parent
    ///   replica here): join empty, to receive the child leader's snapshot.
    ///
    /// While the faults last, the node may crash between the split's apply and the child's
    /// creation, or in the round that would persist the child's creation.
    fn split_work(&mut self, i: usize) {
        let Some(core) = self.nodes[i].core.as_ref() else {
            return;
        };
        let id = self.nodes[i].id;
        let hosted: Vec<GroupId> = self
            .group_list()
            .into_iter()
            .filter(|&g| core.has_group(g))
            .collect();
        let sms = self.nodes[i].factory.sms.lock().clone();
        let mut created = false;
        for p in hosted {
            let Some(data) = sms.get(&p) else {
                continue;
            };
            let pending = data.lock().pending.clone();
            for (child, info) in pending {
                let Some(core) = self.nodes[i].core.as_ref() else {
                    return;
                };
                if core.has_group(child) {
                    if self.nodes[i].disk.group(child).is_some() {
                        let mut d = data.lock();
                        d.map.retain(|k, _| !info.contains(k));
                        d.pending.remove(&child);
                    }
                    continue;
                }
                if self.faults && self.may_crash() && self.rng.random_bool(0.05) {
                    // Down between the split's apply and the child's creation.
                    self.stats.split_crashes += 1;
                    let back = self.rng.random_range(500..5_000);
                    self.nodes[i].down_until = self.now + back;
                    self.crash(i);
                    self.schedule(back, Ev::Restart(i));
                    return;
                }
                let init = if info.voters.contains(&id) {
                    // The copy: every replica applied the same log up to the split, and the
                    // rows are frozen since, so every copy is the same.
                    let mut state = info.initial_state(&data.lock());
                    if self.broken_split == BrokenSplit::EmptyBootstrap {
                        state.map.clear();
                    }
                    self.nodes[i]
                        .factory
                        .sms
                        .lock()
                        .insert(child, Arc::new(Mutex::new(state)));
                    self.stats.bootstraps += 1;
                    if self.checker.lock().leaders.keys().any(|&(g, _)| g == child) {
                        self.stats.late_bootstraps += 1;
                    }
                    GroupInit::Bootstrap {
                        voters: info.voters.clone(),
                    }
                } else {
                    self.stats.joins += 1;
                    GroupInit::Join
                };
                self.create_child(i, child, init);
                created = true;
            }
        }
        let splits = self.checker.lock().splits.clone();
        for (child, rec) in splits {
            let Some(core) = self.nodes[i].core.as_ref() else {
                return;
            };
            if core.has_group(child) {
                continue;
            }
            let no_rows_here = match sms.get(&rec.parent) {
                Some(d) if core.has_group(rec.parent) => {
                    let d = d.lock();
                    d.epoch >= rec.child.epoch && !d.pending.contains_key(&child)
                }
                _ => true,
            };
            if no_rows_here {
                self.stats.joins += 1;
                if rec.child.voters.contains(&id) {
                    self.stats.rowless_joins += 1;
                }
                self.create_child(i, child, GroupInit::Join);
                created = true;
            }
        }
        if created {
            self.drive(i);
        }
    }

    fn create_child(&mut self, i: usize, child: GroupId, init: GroupInit) {
        let id = self.nodes[i].id;
        let sm = Box::new(self.nodes[i].factory.sm(child));
        if let Some(core) = self.nodes[i].core.as_mut()
            && let Err(e) = core.create_group(child, init, sm)
        {
            self.violation(format!("node {id}: create_group({child}) failed: {e}"));
        }
        if self.faults && self.may_crash() && self.rng.random_bool(0.05) {
            // Crash in the round that would persist the child's creation.
            self.stats.split_crashes += 1;
            let back = self.rng.random_range(500..5_000);
            self.nodes[i].down_until = self.now + back;
            self.nodes[i].crash_mid_round = true;
            self.schedule(back, Ev::Restart(i));
        }
    }

    /// The pending operation was refused as "wrong partition" (nothing happened): refresh the
    /// client's map and send it to the group that holds the key now.
    fn reroute(&mut self, c: usize) {
        self.stats.refused += 1;
        let routes = self.checker.lock().routes();
        let Some(p) = self.clients[c].pending.as_mut() else {
            return;
        };
        p.group = route_of(&routes, &p.key);
        p.accepted = None;
        self.clients[c].routes = routes;
        let generation = self.bump(c);
        let retry = self.rng.random_range(0..100);
        self.schedule(
            retry,
            Ev::Client {
                client: c,
                generation,
            },
        );
    }

    fn leader_index(&self, group: GroupId) -> Option<usize> {
        self.nodes.iter().position(|n| {
            n.core.as_ref().is_some_and(|c| {
                c.status()
                    .iter()
                    .any(|s| s.group == group && s.role == "Leader")
            })
        })
    }

    /// Adds nodes beyond the bootstrap voters as learners of every group, then promotes node 4
    /// to voter (5-node runs only).
    fn placement(&mut self) {
        if self.wipe != WipeMode::Off {
            self.placement_to_targets();
            self.schedule(1_000, Ev::Placement);
            return;
        }
        let n = self.nodes.len() as NodeId;
        if n > 3 {
            for g in self.group_list() {
                let Some(i) = self.leader_index(g) else {
                    continue;
                };
                let Some(core) = self.nodes[i].core.as_mut() else {
                    continue;
                };
                let Some(s) = core.status().into_iter().find(|s| s.group == g) else {
                    continue;
                };
                let change = (4..=n)
                    .find(|id| !s.learners.contains(id) && !s.voters.contains(id))
                    .map(|id| (id, ConfChangeType::AddLearnerNode))
                    .or_else(|| (!s.voters.contains(&4)).then_some((4, ConfChangeType::AddNode)));
                if let Some((node, kind)) = change {
                    let single = ConfChangeSingle {
                        node_id: node,
                        change_type: kind,
                        ..ConfChangeSingle::default()
                    };
                    let mut cc = ConfChangeV2::default();
                    cc.mut_changes().push(single);
                    let _ = core.propose_conf_change(g, cc);
                    self.drive(i);
                }
            }
        }
        self.schedule(1_000, Ev::Placement);
    }

    /// Wipe modes: moves every group's membership one conf change at a time toward the targets,
    /// as Shoal's placement does: a missing member is added as a learner, a learner meant to
    /// vote is promoted once within 8 entries of the commit index, and only then is a member
    /// that is not a target (a wiped node's old id) removed.
    fn placement_to_targets(&mut self) {
        let targets: BTreeSet<NodeId> = self
            .target_voters
            .union(&self.target_learners)
            .copied()
            .collect();
        let mut done = true;
        for g in self.group_list() {
            let Some(i) = self.leader_index(g) else {
                done = false;
                continue;
            };
            let Some(core) = self.nodes[i].core.as_mut() else {
                done = false;
                continue;
            };
            let Some(s) = core.status().into_iter().find(|s| s.group == g) else {
                done = false;
                continue;
            };
            let members: BTreeSet<NodeId> = s.voters.iter().chain(&s.learners).copied().collect();
            let voters: BTreeSet<NodeId> = s.voters.iter().copied().collect();
            done &= voters == self.target_voters && members == targets;
            let caught_up = |id: NodeId| {
                s.progress
                    .iter()
                    .any(|&(n, matched)| n == id && matched + 8 >= s.commit)
            };
            let change = targets
                .iter()
                .find(|id| !members.contains(id))
                .map(|&id| (id, ConfChangeType::AddLearnerNode))
                .or_else(|| {
                    self.target_voters
                        .iter()
                        .find(|&&id| s.learners.contains(&id) && caught_up(id))
                        .map(|&id| (id, ConfChangeType::AddNode))
                })
                .or_else(|| {
                    let promoted = self.target_voters.iter().all(|id| s.voters.contains(id));
                    members
                        .iter()
                        .find(|id| promoted && !targets.contains(id))
                        .map(|&id| (id, ConfChangeType::RemoveNode))
                });
            let Some((node, kind)) = change else {
                continue;
            };
            let single = ConfChangeSingle {
                node_id: node,
                change_type: kind,
                ..ConfChangeSingle::default()
            };
            let mut cc = ConfChangeV2::default();
            cc.mut_changes().push(single);
            let _ = core.propose_conf_change(g, cc);
            self.drive(i);
        }
        if done && self.replacing.take().is_some() {
            self.stats.replaced += 1;
        }
    }

    /// Every replica's state equals the replay of the committed log up to its applied index.
    /// Split runs: the replay follows the protocol (a group refuses keys outside its range; a
    /// child starts from its range's rows in the replay of its parent up to the split), and a
    /// replica is compared on its range and the children whose frozen rows it still holds
    /// (it drops them once it created the child).
    fn check_states(&mut self) {
        let (committed, splits) = {
            let c = self.checker.lock();
            (c.committed.clone(), c.splits.clone())
        };
        let mut initial: BTreeMap<GroupId, SmData> = BTreeMap::new();
        // Ascending ids: a parent before its children.
        for g in self.group_list() {
            let start = if splits.contains_key(&g) {
                let Some(s) = initial.remove(&g) else {
                    self.violation(format!(
                        "group {g}: the replay of its parent never reached its split"
                    ));
                    continue;
                };
                s
            } else {
                SmData::default()
            };
            let log = committed.get(&g).cloned().unwrap_or_default();
            let mut replicas: Vec<(u64, NodeId, SmData)> = self
                .nodes
                .iter()
                .filter_map(|n| {
                    let data = n.factory.sms.lock().get(&g).cloned()?;
                    let d = data.lock().clone();
                    // A child replica without state yet (joining, waiting for a snapshot).
                    let empty = splits.contains_key(&g) && d.applied < BOOTSTRAP_INDEX;
                    (!empty).then_some((d.applied, n.id, d))
                })
                .collect();
            replicas.sort_by_key(|r| r.0);
            let mut state = start;
            let mut next = replicas.iter().peekable();
            for (&idx, (data, _)) in &log {
                while let Some((applied, node, replica)) = next.next_if(|r| r.0 < idx) {
                    self.compare_replica(g, *applied, *node, replica, &state);
                }
                if let Some(cmd) = Cmd::decode(data)
                    && cmd.apply(&mut state, true) == Res::Split
                    && let Cmd::Split { child, .. } = &cmd
                    && let Some(c) = state.pending.get(child)
                {
                    initial.insert(*child, c.initial_state(&state));
                }
                state.applied = idx;
            }
            for (applied, node, replica) in next {
                self.compare_replica(g, *applied, *node, replica, &state);
            }
        }
        self.schedule(5_000, Ev::CheckStates);
    }

    /// A replica at `applied` against the replay `state` up to there: the same range, epoch and
    /// rows in its range; the same rows of the children it still holds rows of; nothing else.
    fn compare_replica(
        &self,
        g: GroupId,
        applied: u64,
        node: NodeId,
        replica: &SmData,
        state: &SmData,
    ) {
        let expected: BTreeMap<String, String> = state
            .map
            .iter()
            .filter(|(k, _)| {
                in_range(k, &replica.lo, &replica.hi)
                    || replica.pending.values().any(|c| c.contains(k))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let same = replica.lo == state.lo
            && replica.hi == state.hi
            && replica.epoch == state.epoch
            && replica
                .pending
                .iter()
                .all(|(c, info)| state.pending.get(c) == Some(info))
            && replica.map == expected;
        if !same {
            self.violation(format!(
                "group {g}: node {node}'s state at applied index {applied} is {:?} (range \
                 [{}, {}), epoch {}, pending children {:?}), the replay of the committed log \
                 gives {:?} (range [{}, {}), epoch {})",
                replica.map,
                replica.lo,
                opt_str(&replica.hi),
                replica.epoch,
                replica.pending.keys().collect::<Vec<_>>(),
                expected,
                state.lo,
                opt_str(&state.hi),
                state.epoch
            ));
        }
    }

    // --- the run ---------------------------------------------------------------------------

    fn run(&mut self, fault_secs: u64) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            self.start_node(i, true);
            let phase = self.rng.random_range(0..TICK_MS);
            self.schedule(phase, Ev::Tick(i));
        }
        for c in 0..self.clients.len() {
            self.idle(c);
        }
        self.schedule(1_000, Ev::Fault);
        self.schedule(500, Ev::Placement);
        self.schedule(5_000, Ev::CheckStates);
        if self.wipe != WipeMode::Off {
            // At least one wipe per run, early enough to be repaired under faults.
            let at = self.rng.random_range(5_000..(fault_secs * 500).max(5_001));
            self.schedule(at, Ev::Wipe);
        }
        if self.splits {
            self.splits_left = self.rng.random_range(1..=MAX_SPLITS);
            let at = self.rng.random_range(2_000..(fault_secs * 300).max(2_001));
            self.schedule(at, Ev::Split);
        }
        let fault_end = fault_secs * 1_000;
        self.run_until(fault_end)?;
        // Heal everything and let the system settle with clients still running.
        self.faults = false;
        self.isolated.clear();
        self.drop_prob = 0.0;
        self.dup_prob = 0.0;
        for i in 0..self.nodes.len() {
            if self.nodes[i].rejoin_pending {
                self.rejoin(i);
            } else if self.nodes[i].core.is_none() {
                self.start_node(i, false);
            }
        }
        self.run_until(fault_end + 20_000)?;
        // Every group serves writes again: a put through each group's leader commits.
        let progress_before = self.stats.ok_writes + self.stats.cond_failed;
        self.run_until(fault_end + 40_000)?;
        if self.stats.ok_writes + self.stats.cond_failed == progress_before {
            let status: Vec<String> = self
                .nodes
                .iter()
                .map(|n| match n.core.as_ref() {
                    Some(c) => format!("node {}: {:?}", n.id, c.status()),
                    None => format!("node {}: down", n.id),
                })
                .collect();
            return Err(format!(
                "no write completed in the 20 s after the faults stopped\n{}",
                status.join("\n")
            ));
        }
        // Quiesce: no new operations; pending ones finish or time out.
        self.clients_on = false;
        self.run_until(fault_end + 40_000 + OP_DEADLINE_MS + 10_000)?;
        for c in 0..self.clients.len() {
            if self.clients[c].pending.is_some() {
                self.finish(c, Ret::Unknown);
            }
        }
        self.check_states();
        self.check_violations()?;
        // All replicas converged.
        for g in self.group_list() {
            let applied: BTreeSet<u64> = self
                .nodes
                .iter()
                .filter_map(|n| n.factory.sms.lock().get(&g).map(|d| d.lock().applied))
                .collect();
            if applied.len() != 1 {
                return Err(format!(
                    "group {g}: replicas did not converge after healing: applied indexes {applied:?}"
                ));
            }
            let Some(i) = self.leader_index(g) else {
                return Err(format!("group {g} has no leader after healing"));
            };
            if self.wipe != WipeMode::Off
                && let Some(s) = self.nodes[i]
                    .core
                    .as_ref()
                    .and_then(|c| c.status().into_iter().find(|s| s.group == g))
            {
                let voters: BTreeSet<NodeId> = s.voters.iter().copied().collect();
                let learners: BTreeSet<NodeId> = s.learners.iter().copied().collect();
                if voters != self.target_voters || learners != self.target_learners {
                    return Err(format!(
                        "group {g}: voters {voters:?} and learners {learners:?} after healing, \
                         expected {:?} and {:?}",
                        self.target_voters, self.target_learners
                    ));
                }
            }
        }
        if self.splits {
            self.check_split_ends()?;
        }
        self.check_acked_writes()?;
        self.final_reads();
        if self.stats.ok_writes == 0 || self.stats.reads == 0 {
            return Err("no write or no read succeeded: the run proves nothing".to_string());
        }
        match shoal_lincheck::check(&self.history) {
            CheckResult::Ok => Ok(()),
            CheckResult::Violation { key, explanation } => Err(format!(
                "linearizability violation on key {key}: {explanation}"
            )),
            CheckResult::Timeout { key } => {
                eprintln!(
                    "seed {}: the linearizability check of key {key} ran out of budget",
                    self.seed
                );
                Ok(())
            }
        }
    }

    /// After convergence: every acknowledged write is in the committed log at an index every
    /// replica applied.
    fn check_acked_writes(&self) -> Result<(), String> {
        let checker = self.checker.lock();
        for (g, ctx) in &self.acked {
            let at = checker.applied_ops.get(g).and_then(|ops| ops.get(ctx));
            let lost = self.nodes.iter().find(|n| {
                let applied = n.factory.sms.lock().get(g).map(|d| d.lock().applied);
                at.is_none_or(|&at| applied.is_none_or(|a| a < at))
            });
            if let Some(n) = lost {
                return Err(format!(
                    "acknowledged write {ctx:?} of group {g} (committed at {at:?}) is missing \
                     on node {} after recovery",
                    n.id
                ));
            }
        }
        Ok(())
    }

    /// Adds a read of every key, answered from the converged state, to the history: the
    /// linearizability check then also proves the final state holds every acknowledged write.
    fn final_reads(&mut self) {
        if self.splits {
            let routes = self.checker.lock().routes();
            for k in 0..SPLIT_KEYS {
                let key = format!("k{k}");
                let g = route_of(&routes, &key);
                let Some(i) = self.leader_index(g) else {
                    continue;
                };
                let Some(data) = self.nodes[i].factory.sms.lock().get(&g).cloned() else {
                    continue;
                };
                let value = data.lock().map.get(&key).cloned();
                let call = self.stamp();
                let ret_at = self.stamp();
                self.history.push(Event {
                    client: 0,
                    key,
                    op: Op::Read,
                    ret: Ret::Read(value),
                    call,
                    ret_at,
                });
            }
            return;
        }
        for g in self.group_list() {
            let Some(i) = self.leader_index(g) else {
                continue;
            };
            let Some(data) = self.nodes[i].factory.sms.lock().get(&g).cloned() else {
                continue;
            };
            for k in 0..KEYS_PER_GROUP {
                let key = format!("g{g}/k{k}");
                let value = data.lock().map.get(&key).cloned();
                let call = self.stamp();
                let ret_at = self.stamp();
                self.history.push(Event {
                    client: 0,
                    key,
                    op: Op::Read,
                    ret: Ret::Read(value),
                    call,
                    ret_at,
                });
            }
        }
    }

    /// Split runs, after healing: every node holds a replica of every group, with the group's
    /// range as the splits define it, and no frozen rows left (every child was created
    /// everywhere and its rows dropped from the parents).
    fn check_split_ends(&self) -> Result<(), String> {
        let routes = self.checker.lock().routes();
        for r in &routes {
            for n in &self.nodes {
                let Some(data) = n.factory.sms.lock().get(&r.group).cloned() else {
                    return Err(format!("node {}: no replica of group {}", n.id, r.group));
                };
                let d = data.lock();
                if d.lo != r.lo || d.hi != r.hi || !d.pending.is_empty() {
                    return Err(format!(
                        "group {} on node {}: range [{}, {}) with pending children {:?} after \
                         healing, expected [{}, {}) and none",
                        r.group,
                        n.id,
                        d.lo,
                        opt_str(&d.hi),
                        d.pending.keys().collect::<Vec<_>>(),
                        r.lo,
                        opt_str(&r.hi)
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_violations(&self) -> Result<(), String> {
        let v = &self.checker.lock().violations;
        if v.is_empty() {
            Ok(())
        } else {
            Err(v.join("\n"))
        }
    }

    fn run_until(&mut self, end: u64) -> Result<(), String> {
        while let Some(top) = self.queue.peek() {
            if top.at > end {
                break;
            }
            let Some(s) = self.queue.pop() else { break };
            self.now = s.at;
            *self.clock.lock() = s.at;
            match s.ev {
                Ev::Tick(i) => {
                    if self.on_core(i, Core::tick).is_some() {
                        self.drive(i);
                    }
                    self.schedule(TICK_MS, Ev::Tick(i));
                }
                Ev::Deliver { from, to, bytes } => self.deliver(from, to, bytes),
                Ev::Client { client, generation } => {
                    if self.clients[client].generation == generation {
                        self.client_wake(client);
                    }
                }
                Ev::Fault => self.fault(),
                Ev::Restart(i) if self.nodes[i].rejoin_pending => {}
                Ev::Restart(i) => {
                    if self.nodes[i].core.is_none() && self.now >= self.nodes[i].down_until {
                        self.start_node(i, false);
                    } else if self.nodes[i].crash_mid_round {
                        // The node had no round to crash in: crash it now.
                        self.crash(i);
                        self.start_node(i, false);
                    }
                }
                Ev::Heal => self.isolated.clear(),
                Ev::Placement => self.placement(),
                Ev::CheckStates => self.check_states(),
                Ev::Wipe => {
                    if self.faults && !self.wipe_node() {
                        self.schedule(1_000, Ev::Wipe);
                    }
                }
                Ev::Rejoin(i) => {
                    if self.nodes[i].rejoin_pending {
                        self.rejoin(i);
                    }
                }
                Ev::Split => self.split_event(),
            }
            self.check_violations()?;
        }
        self.now = self.now.max(end);
        Ok(())
    }

    /// Reads answered under a lease so far, by every node.
    fn lease_reads(&self) -> u64 {
        let live: u64 = self
            .nodes
            .iter()
            .filter_map(|n| n.core.as_ref().map(Core::lease_reads))
            .sum();
        self.stats.lease_reads + live
    }

    fn summary(&self) -> String {
        let s = &self.stats;
        let wipes = match self.wipe {
            WipeMode::Off => String::new(),
            _ => format!(
                ", {} wipes, {} replaced, {} raft panics",
                s.wipes, s.replaced, s.panics
            ),
        };
        let splits = if self.splits {
            format!(
                ", {} splits ({} children bootstrapped, {} of them late, {} joined, {} of them \
                 by a voter without the rows), {} refused as wrong partition, {} split crashes",
                s.splits,
                s.bootstraps,
                s.late_bootstraps,
                s.joins,
                s.rowless_joins,
                s.refused,
                s.split_crashes
            )
        } else {
            String::new()
        };
        format!(
            "seed {}: {} nodes, {} events in history ({} ok writes, {} cond failed, {} reads, \
             {} unknown, {} lost proposals retried, {} read errors), {} messages delivered, \
             {} dropped, {} crashes, {} partitions, {} snapshots restored, {} reads under a \
             lease{wipes}{splits}, trace {:016x}",
            self.seed,
            self.nodes.len(),
            self.history.len(),
            s.ok_writes,
            s.cond_failed,
            s.reads,
            s.unknown,
            s.retried_lost,
            s.read_errors,
            s.delivered,
            s.dropped,
            s.crashes,
            s.partitions,
            self.checker.lock().restores,
            self.lease_reads(),
            self.trace
        )
    }
}

/// What a passing run produced.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    /// One line: the seed, what happened, the trace hash.
    pub summary: String,
    /// Hash of every delivered message (time, endpoints, bytes) and client result.
    pub trace: u64,
    /// The client history checked for linearizability.
    pub history: Vec<Event>,
    /// Nodes wiped, and wiped nodes replaced in every group by a new id.
    pub wipes: u64,
    pub replaced: u64,
    /// Splits that took effect (split runs).
    pub splits: u64,
    /// Reads leaders answered under a lease.
    pub lease_reads: u64,
}

/// Runs one seed with default options.
///
/// # Errors
/// The summary and what failed: a check, a panic, or no progress after healing.
pub fn run_seed(seed: u64, secs: u64) -> Result<Outcome, String> {
    run_seed_with(seed, secs, Options::default())
}

/// Runs one seed: `secs` virtual seconds of faults, then healing and the final checks.
///
/// # Errors
/// As [`run_seed`].
pub fn run_seed_with(seed: u64, secs: u64, options: Options) -> Result<Outcome, String> {
    // A panic (in the Core or in raft) fails this seed, with its reproduction line.
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut sim = Sim::new(seed);
        sim.stale_reads = options.stale_reads;
        sim.lease = options.lease;
        sim.wipe = options.wipe;
        if options.splits {
            sim.enable_splits(options.broken_split);
        }
        let result = sim.run(secs);
        let summary = sim.summary();
        match result {
            Ok(()) => Ok(Outcome {
                summary,
                trace: sim.trace,
                history: std::mem::take(&mut sim.history),
                wipes: sim.stats.wipes,
                replaced: sim.stats.replaced,
                splits: sim.stats.splits,
                lease_reads: sim.lease_reads(),
            }),
            Err(e) => Err(format!("{summary}\n{e}")),
        }
    }));
    match run {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("seed {seed}: panicked: {msg}"))
        }
    }
}

/// Virtual seconds of faults per seed unless `SHOAL_SIM_SECS` says otherwise.
pub const DEFAULT_SECS: u64 = 120;

/// The seeds to run: `SHOAL_SIM_SEED` alone, else `SHOAL_SIM_SEEDS` (default `default_count`)
/// from `SHOAL_SIM_SEED_BASE` (default 0).
pub fn seeds_from_env(default_count: u64) -> Vec<u64> {
    match env_u64("SHOAL_SIM_SEED") {
        Some(s) => vec![s],
        None => {
            let count = env_u64("SHOAL_SIM_SEEDS").unwrap_or(default_count);
            let base = env_u64("SHOAL_SIM_SEED_BASE").unwrap_or(0);
            (base..base + count).collect()
        }
    }
}

/// Runs the seeds from the environment (see [`seeds_from_env`]) for `SHOAL_SIM_SECS` (default
/// [`DEFAULT_SECS`]) virtual seconds each, prints each summary, and panics naming every failed
/// seed with the command that replays it (`test`: the test target). `check` adds a condition on
/// a passing run's outcome.
pub fn run_seeds(
    test: &str,
    default_count: u64,
    options: Options,
    check: impl Fn(&Outcome) -> Result<(), String>,
) {
    let secs = env_u64("SHOAL_SIM_SECS").unwrap_or(DEFAULT_SECS);
    run_seeds_for(test, default_count, secs, options, check);
}

/// As [`run_seeds`], for `secs` virtual seconds of faults per seed.
pub fn run_seeds_for(
    test: &str,
    default_count: u64,
    secs: u64,
    options: Options,
    check: impl Fn(&Outcome) -> Result<(), String>,
) {
    // The run depends on the seed and the length of the faulty period only.
    let secs_env = if env_u64("SHOAL_SIM_SECS").is_none() {
        String::new()
    } else {
        format!("SHOAL_SIM_SECS={secs} ")
    };
    let mut failures = Vec::new();
    for seed in seeds_from_env(default_count) {
        let started = std::time::Instant::now();
        match run_seed_with(seed, secs, options).and_then(|o| check(&o).map(|()| o)) {
            Ok(outcome) => {
                eprintln!(
                    "{} [{:.1}s]",
                    outcome.summary,
                    started.elapsed().as_secs_f64()
                )
            }
            Err(e) => {
                eprintln!(
                    "FAILED {e}\nreproduce with: {secs_env}SHOAL_SIM_SEED={seed} cargo test -p shoal-raft --test {test}"
                );
                failures.push(seed);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "simulation failed for seeds {failures:?} (reproduce with: {secs_env}SHOAL_SIM_SEED=<n> cargo test -p shoal-raft --test {test})"
    );
}

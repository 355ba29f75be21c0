//! Core driven by hand: several cores connected by an in-memory network, one durable write per round.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::*;

/// A key-value state machine whose state the test can inspect.
#[derive(Clone, Default)]
pub(crate) struct Kv(Arc<Mutex<(u64, BTreeMap<String, String>)>>);

impl StateMachine for Kv {
    fn apply(&mut self, entries: Vec<Committed>) {
        let mut s = self.0.lock();
        for e in entries {
            let text = String::from_utf8(e.data).unwrap();
            let (k, v) = text.split_once('=').unwrap();
            s.1.insert(k.into(), v.into());
            s.0 = e.index;
        }
    }
    fn applied_index(&self) -> u64 {
        self.0.lock().0
    }
    fn snapshot(&mut self) -> Result<Vec<u8>, String> {
        let s = self.0.lock();
        Ok(s.1
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect::<String>()
            .into_bytes())
    }
    fn restore(&mut self, data: &[u8], index: u64) -> Result<(), String> {
        let mut s = self.0.lock();
        s.1 = String::from_utf8_lossy(data)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        s.0 = index;
        Ok(())
    }
}

struct NoFactory;
impl GroupFactory for NoFactory {
    fn open(&self, _group: GroupId) -> Option<Box<dyn StateMachine>> {
        None
    }
}

/// Kv state machines handed out by group id (for restart and joins).
#[derive(Default)]
pub(crate) struct KvFactory(Mutex<BTreeMap<GroupId, Kv>>);
impl GroupFactory for KvFactory {
    fn open(&self, group: GroupId) -> Option<Box<dyn StateMachine>> {
        Some(Box::new(self.0.lock().entry(group).or_default().clone()))
    }
}

pub(crate) struct Net {
    pub(crate) cores: BTreeMap<NodeId, (Core, MemLogStore)>,
    inflight: VecDeque<(NodeId, NodeId, Vec<GroupMessage>)>,
    /// Reads answered: `(node, read id, result)`.
    pub(crate) reads: Vec<(NodeId, u64, Result<(), RaftError>)>,
    /// A node cut off from the others: messages to and from it are lost.
    pub(crate) cut: Option<NodeId>,
}

impl Net {
    pub(crate) fn new(cores: BTreeMap<NodeId, (Core, MemLogStore)>) -> Net {
        Net {
            cores,
            inflight: VecDeque::new(),
            reads: Vec::new(),
            cut: None,
        }
    }

    pub(crate) fn core(&mut self, id: NodeId) -> &mut Core {
        &mut self.cores.get_mut(&id).expect("no such node").0
    }

    pub(crate) fn round(&mut self) -> bool {
        let mut busy = false;
        for (id, (core, store)) in &mut self.cores {
            let mut round = core.ready();
            busy |= !round.is_empty();
            for (to, m) in std::mem::take(&mut round.send_now) {
                self.inflight.push_back((*id, to, vec![m]));
            }
            if !round.log.is_empty() {
                store.write(&round.log).unwrap();
            }
            let out = core.persisted(round);
            for (to, msgs) in out.send {
                self.inflight.push_back((*id, to, msgs));
            }
            for (read, _group, result) in out.reads {
                self.reads.push((*id, read, result));
            }
        }
        while let Some((from, to, msgs)) = self.inflight.pop_front() {
            if self.cut.is_some_and(|c| c == from || c == to) {
                continue;
            }
            busy = true;
            if let Some((core, _)) = self.cores.get_mut(&to) {
                // Round-trip through the wire encoding.
                core.step(
                    from,
                    GroupMessage::decode_batch(&GroupMessage::encode_batch(&msgs)).unwrap(),
                );
            }
        }
        busy
    }

    pub(crate) fn settle(&mut self) {
        for _ in 0..100 {
            if !self.round() {
                return;
            }
        }
    }
}

#[test]
fn one_round_of_ten_groups_is_one_log_write() {
    let mut core = Core::new(Config::default(), Arc::new(NoFactory));
    let mut store = MemLogStore::new();
    let kvs: Vec<Kv> = (1..=10).map(|_| Kv::default()).collect();
    for (g, kv) in (1..=10).zip(&kvs) {
        core.create_group(
            g,
            GroupInit::Bootstrap { voters: vec![1] },
            Box::new(kv.clone()),
        )
        .unwrap();
        core.campaign(g).unwrap();
    }
    let mut net = Net::new(BTreeMap::from([(1, (core, store.clone()))]));
    net.settle();
    let (core, _) = net.cores.get_mut(&1).unwrap();
    assert!(core.status().iter().all(|s| s.role == "Leader"));
    for g in 1..=10 {
        core.propose(g, vec![], format!("k=v{g}").into_bytes())
            .unwrap();
    }
    let before = store.write_count();
    let round = core.ready();
    assert_eq!(
        round.log.groups.len(),
        10,
        "every group's entry in one batch"
    );
    store.write(&round.log).unwrap();
    let _ = core.persisted(round);
    assert_eq!(store.write_count(), before + 1);
    net.settle();
    for (g, kv) in (1..=10).zip(&kvs) {
        assert_eq!(kv.0.lock().1.get("k"), Some(&format!("v{g}")));
    }
}

pub(crate) fn three_nodes(factory: &[Arc<KvFactory>], compact_after: u64) -> Net {
    let mut cores = BTreeMap::new();
    for id in 1..=3u64 {
        let f = factory[id as usize - 1].clone();
        let mut core = Core::new(
            Config {
                node_id: id,
                compact_after,
                ..Config::default()
            },
            f.clone(),
        );
        let sm = f.open(1).unwrap();
        core.create_group(
            1,
            GroupInit::Bootstrap {
                voters: vec![1, 2, 3],
            },
            sm,
        )
        .unwrap();
        cores.insert(id, (core, MemLogStore::new()));
    }
    Net::new(cores)
}

pub(crate) fn kv(f: &KvFactory, g: GroupId) -> BTreeMap<String, String> {
    f.0.lock().get(&g).unwrap().0.lock().1.clone()
}

fn add_learner(net: &mut Net, leader: NodeId, node: NodeId) {
    let mut cc = ConfChangeV2::default();
    let mut single = ConfChangeSingle::default();
    single.set_change_type(ConfChangeType::AddLearnerNode);
    single.node_id = node;
    cc.mut_changes().push(single);
    net.cores
        .get_mut(&leader)
        .unwrap()
        .0
        .propose_conf_change(1, cc)
        .unwrap();
    net.settle();
}

pub(crate) fn elect_and_write(net: &mut Net, factories: &[Arc<KvFactory>], n: usize) {
    net.cores.get_mut(&1).unwrap().0.campaign(1).unwrap();
    net.settle();
    let leader = &mut net.cores.get_mut(&1).unwrap().0;
    assert_eq!(leader.leader(1), Some(1));
    for i in 0..n {
        leader
            .propose(1, vec![], format!("k{i}=v{i}").into_bytes())
            .unwrap();
    }
    net.settle();
    for f in &factories[..3] {
        assert_eq!(kv(f, 1).len(), n);
    }
}

#[test]
fn restarted_core_reapplies_the_committed_log() {
    let factories: Vec<Arc<KvFactory>> = (0..3).map(|_| Arc::new(KvFactory::default())).collect();
    let mut net = three_nodes(&factories, 1000);
    elect_and_write(&mut net, &factories, 20);
    // Restart node 3 from its log with a state machine that has applied nothing.
    let (_, store3) = net.cores.remove(&3).unwrap();
    factories[2].0.lock().clear();
    let mut core3 = Core::new(
        Config {
            node_id: 3,
            ..Config::default()
        },
        factories[2].clone(),
    );
    core3.load(store3.clone().load().unwrap()).unwrap();
    assert_eq!(core3.status()[0].voters, vec![1, 2, 3]);
    net.cores.insert(3, (core3, store3));
    net.settle();
    assert_eq!(
        kv(&factories[2], 1).len(),
        20,
        "restart re-applies the committed log"
    );
}

#[test]
fn learner_joins_by_snapshot_after_compaction() {
    let factories: Vec<Arc<KvFactory>> = (0..4).map(|_| Arc::new(KvFactory::default())).collect();
    let mut net = three_nodes(&factories, 5);
    elect_and_write(&mut net, &factories, 20);
    assert!(
        net.cores[&1].1.group(1).unwrap().entries.len() < 20,
        "leader log compacted"
    );
    add_learner(&mut net, 1, 4);
    let core4 = Core::new(
        Config {
            node_id: 4,
            ..Config::default()
        },
        factories[3].clone(),
    );
    net.cores.insert(4, (core4, MemLogStore::new()));
    let leader = &mut net.cores.get_mut(&1).unwrap().0;
    leader.propose(1, vec![], b"after=join".to_vec()).unwrap();
    for _ in 0..30 {
        for (c, _) in net.cores.values_mut() {
            c.tick();
        }
        net.settle();
    }
    let got = kv(&factories[3], 1);
    assert_eq!(got.len(), 21, "learner caught up: {got:?}");
    let status = net.cores[&1].0.status();
    assert_eq!(status[0].learners, vec![4]);
    let stored = net.cores[&4].1.group(1).unwrap();
    assert!(
        stored.snapshot_index > BOOTSTRAP_INDEX,
        "learner log starts from a snapshot"
    );
    // A restarted learner keeps its snapshot and log.
    let mut core4 = Core::new(
        Config {
            node_id: 4,
            ..Config::default()
        },
        factories[3].clone(),
    );
    core4.load(net.cores[&4].1.clone().load().unwrap()).unwrap();
    assert_eq!(core4.status()[0].learners, vec![4]);
}

/// Ticks a node hosting `groups` one-voter groups until all are leaders; returns, per group, the
/// tick at which it became leader.
fn ticks_to_leadership(election_ticks: usize, jitter: usize, groups: u64) -> Vec<usize> {
    let mut core = Core::new(
        Config {
            election_ticks,
            election_jitter_ticks: jitter,
            ..Config::default()
        },
        Arc::new(NoFactory),
    );
    let mut store = MemLogStore::new();
    for g in 1..=groups {
        core.create_group(
            g,
            GroupInit::Bootstrap { voters: vec![1] },
            Box::new(Kv::default()),
        )
        .unwrap();
    }
    let mut elected: BTreeMap<GroupId, usize> = BTreeMap::new();
    for tick in 1..=3 * (election_ticks + jitter) {
        core.tick();
        let round = core.ready();
        store.write(&round.log).unwrap();
        let _ = core.persisted(round);
        for s in core.status() {
            if s.role == "Leader" {
                elected.entry(s.group).or_insert(tick);
            }
        }
    }
    assert_eq!(elected.len() as u64, groups, "every group elects itself");
    elected.into_values().collect()
}

#[test]
fn jitter_one_fixes_the_election_timeout() {
    // raft draws each timeout from its own thread RNG; a one-tick range leaves it no choice.
    assert_eq!(ticks_to_leadership(7, 1, 20), vec![7; 20]);
    assert_eq!(ticks_to_leadership(13, 0, 5), vec![13; 5]);
}

#[test]
fn default_jitter_spreads_election_timeouts() {
    let ticks = ticks_to_leadership(10, 10, 30);
    assert!(ticks.iter().all(|t| (10..20).contains(t)), "{ticks:?}");
    let distinct: std::collections::BTreeSet<_> = ticks.iter().collect();
    assert!(
        distinct.len() > 1,
        "30 groups drew the same timeout: {ticks:?}"
    );
}

#[test]
fn a_leadership_transfer_that_does_not_complete_is_abandoned_after_a_few_ticks() {
    let factories: Vec<Arc<KvFactory>> = (0..3).map(|_| Arc::new(KvFactory::default())).collect();
    let mut net = three_nodes(&factories, 1000);
    elect_and_write(&mut net, &factories, 1);
    let leader = &mut net.cores.get_mut(&1).unwrap().0;
    // The transfer's messages are never delivered (the transferee is unreachable).
    leader.transfer_leader(1, 3);
    assert!(
        leader.propose(1, vec![], b"a=1".to_vec()).is_err(),
        "proposals are dropped while the transfer runs"
    );
    for _ in 0..TRANSFER_TIMEOUT_TICKS {
        leader.tick();
    }
    assert_eq!(leader.leader(1), Some(1));
    leader
        .propose(1, vec![], b"a=1".to_vec())
        .expect("the transfer was abandoned: proposals are taken again");
}

/// A replica removed from a node (its table dropped there first) is not recreated empty by the
/// messages its peers still send: the leader counts the log the removed replica had, and an empty
/// replica told of a commit index beyond its log stops raft ("to_commit out of range").
#[test]
fn messages_for_a_removed_group_do_not_recreate_it() {
    let factories: Vec<Arc<KvFactory>> = (0..3).map(|_| Arc::new(KvFactory::default())).collect();
    let mut net = three_nodes(&factories, 1000);
    elect_and_write(&mut net, &factories, 5);
    net.cores.get_mut(&2).unwrap().0.remove_group(1);
    net.settle();
    for _ in 0..10 {
        net.cores.get_mut(&1).unwrap().0.tick();
        net.settle();
    }
    assert!(
        net.cores[&2].0.status().iter().all(|g| g.group != 1),
        "the removed group came back on node 2"
    );
    assert_eq!(net.cores.get_mut(&1).unwrap().0.leader(1), Some(1));
}

/// A state machine whose storage is durable only up to an index the test sets.
struct LaggingKv {
    kv: Kv,
    durable: Arc<std::sync::atomic::AtomicU64>,
}

impl StateMachine for LaggingKv {
    fn apply(&mut self, entries: Vec<Committed>) {
        self.kv.apply(entries);
    }
    fn applied_index(&self) -> u64 {
        self.kv.applied_index()
    }
    fn durable_index(&self) -> u64 {
        self.durable.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn snapshot(&mut self) -> Result<Vec<u8>, String> {
        self.kv.snapshot()
    }
    fn restore(&mut self, data: &[u8], index: u64) -> Result<(), String> {
        self.kv.restore(data, index)
    }
}

/// The log is compacted only up to what the state machine made durable, not what it applied:
/// a crash of the machine may take back applies that were not synced, and their entries must
/// still be in the log to be replayed.
#[test]
fn the_log_is_compacted_only_up_to_the_durable_index() {
    let durable = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let kv = Kv::default();
    let mut core = Core::new(
        Config {
            compact_after: 5,
            ..Config::default()
        },
        Arc::new(NoFactory),
    );
    let sm = LaggingKv {
        kv: kv.clone(),
        durable: durable.clone(),
    };
    core.create_group(1, GroupInit::Bootstrap { voters: vec![1] }, Box::new(sm))
        .unwrap();
    core.campaign(1).unwrap();
    let store = MemLogStore::new();
    let mut net = Net::new(BTreeMap::from([(1, (core, store.clone()))]));
    net.settle();
    let first = |store: &MemLogStore| store.group(1).unwrap().entries[0].index;
    let propose = |net: &mut Net, n: usize| {
        for i in 0..n {
            net.core(1)
                .propose(1, vec![], format!("k{i}=v").into_bytes())
                .unwrap();
            net.settle();
        }
    };
    propose(&mut net, 40);
    let applied = kv.applied_index();
    assert!(applied >= 40);
    assert!(
        first(&store) <= BOOTSTRAP_INDEX + 1,
        "nothing durable yet: the log keeps every entry (first {})",
        first(&store)
    );
    durable.store(applied - 10, std::sync::atomic::Ordering::SeqCst);
    propose(&mut net, 1);
    let now_first = first(&store);
    assert!(
        now_first > BOOTSTRAP_INDEX + 1 && now_first < applied - 10,
        "compacted up to the durable index ({}), not past it: first entry {now_first}",
        applied - 10
    );
}

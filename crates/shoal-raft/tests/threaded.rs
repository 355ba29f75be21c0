//! Three (then four) `RaftNode`s in one process over an in-memory transport: election, concurrent
//! proposals, leader loss, restart from the log, a learner that catches up by snapshot, promotion.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure by design

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use shoal_raft::{
    Committed, ConfChangeSingle, ConfChangeType, ConfChangeV2, Config, GroupFactory, GroupId,
    GroupInit, GroupMessage, MemLogStore, NodeId, RaftError, RaftHandle, RaftNode, StateMachine,
    Transport,
};

const G: GroupId = 1;

/// A key-value state machine ("k=v" entries) whose state the test inspects; it survives a node restart
/// (it plays the durable state machine).
#[derive(Clone, Default)]
struct Kv(Arc<Mutex<(u64, BTreeMap<String, String>)>>);

impl Kv {
    fn len(&self) -> usize {
        self.0.lock().1.len()
    }
}

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

/// Hands out the node's one Kv for group G.
struct Factory(Kv);
impl GroupFactory for Factory {
    fn open(&self, group: GroupId) -> Option<Box<dyn StateMachine>> {
        (group == G).then(|| Box::new(self.0.clone()) as Box<dyn StateMachine>)
    }
}

type Registry = Arc<Mutex<BTreeMap<NodeId, RaftHandle>>>;

/// Delivers to the registered handle of the destination (dropped when the node is down).
struct ChanTransport {
    from: NodeId,
    registry: Registry,
}
impl Transport for ChanTransport {
    fn send(&self, to: NodeId, msgs: Vec<GroupMessage>) {
        let h = self.registry.lock().get(&to).cloned();
        if let Some(h) = h {
            h.step(
                self.from,
                GroupMessage::decode_batch(&GroupMessage::encode_batch(&msgs)).unwrap(),
            );
        }
    }
}

struct Cluster {
    registry: Registry,
    nodes: BTreeMap<NodeId, RaftNode>,
    logs: BTreeMap<NodeId, MemLogStore>,
    kvs: BTreeMap<NodeId, Kv>,
}

fn config(id: NodeId) -> Config {
    Config {
        node_id: id,
        tick: Duration::from_millis(10),
        compact_after: 20,
        ..Config::default()
    }
}

impl Cluster {
    fn start(&mut self, id: NodeId) -> RaftHandle {
        let log = self.logs.entry(id).or_default().clone();
        let kv = self.kvs.entry(id).or_default().clone();
        let transport = Arc::new(ChanTransport {
            from: id,
            registry: self.registry.clone(),
        });
        let node =
            RaftNode::start(config(id), Box::new(log), transport, Arc::new(Factory(kv))).unwrap();
        let h = node.handle();
        self.registry.lock().insert(id, h.clone());
        self.nodes.insert(id, node);
        h
    }

    fn kill(&mut self, id: NodeId) {
        self.registry.lock().remove(&id);
        drop(self.nodes.remove(&id));
    }

    fn handle(&self, id: NodeId) -> RaftHandle {
        self.registry.lock()[&id].clone()
    }

    async fn leader(&self) -> NodeId {
        wait("a leader", || {
            let reg = self.registry.lock();
            reg.iter()
                .find(|(id, h)| h.leader(G) == Some(**id))
                .map(|(id, _)| *id)
        })
        .await
    }

    /// Proposes through whichever node leads, retrying on NotLeader/Dropped.
    async fn put(&self, key: &str, value: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let leader = self.leader().await;
            match self
                .handle(leader)
                .propose(G, vec![], format!("{key}={value}").into_bytes())
                .await
            {
                Ok(_) => return,
                Err(RaftError::NotLeader { .. } | RaftError::Dropped | RaftError::Stopped) => {}
                Err(e) => panic!("propose: {e}"),
            }
            assert!(Instant::now() < deadline, "put {key} never accepted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn converged(&self, ids: &[NodeId], n: usize) {
        for id in ids {
            let kv = self.kvs[id].clone();
            let reg = self.registry.clone();
            let deadline = Instant::now() + Duration::from_secs(15);
            wait(&format!("node {id} to apply {n} keys"), || {
                if Instant::now() + Duration::from_millis(20) > deadline {
                    for (i, h) in reg.lock().iter() {
                        eprintln!("node {i}: {:?}", h.status());
                    }
                }
                (kv.len() == n).then_some(())
            })
            .await;
        }
        let first = self.kvs[&ids[0]].0.lock().1.clone();
        for id in ids {
            assert_eq!(self.kvs[id].0.lock().1, first, "node {id} diverged");
        }
    }
}

async fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn conf_change(kind: ConfChangeType, node: NodeId) -> ConfChangeV2 {
    let mut single = ConfChangeSingle::default();
    single.set_change_type(kind);
    single.node_id = node;
    let mut cc = ConfChangeV2::default();
    cc.mut_changes().push(single);
    cc
}

async fn propose_conf(c: &Cluster, cc: ConfChangeV2) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let leader = c.leader().await;
        match c.handle(leader).propose_conf_change(G, cc.clone()).await {
            Ok(()) => return,
            Err(e) => assert!(Instant::now() < deadline, "conf change never accepted: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_survive_leader_loss_restart_and_add_a_learner() {
    let mut c = Cluster {
        registry: Arc::default(),
        nodes: BTreeMap::new(),
        logs: BTreeMap::new(),
        kvs: BTreeMap::new(),
    };
    for id in 1..=3 {
        let h = c.start(id);
        let sm = Box::new(c.kvs[&id].clone());
        h.create_group(
            G,
            GroupInit::Bootstrap {
                voters: vec![1, 2, 3],
            },
            sm,
        )
        .await
        .unwrap();
    }
    let c = Arc::new(Mutex::new(c));

    // 200 writes from 4 concurrent tasks.
    let snapshot = || {
        let g = c.lock();
        Cluster {
            registry: g.registry.clone(),
            nodes: BTreeMap::new(),
            logs: g.logs.clone(),
            kvs: g.kvs.clone(),
        }
    };
    let mut tasks = Vec::new();
    for t in 0..4 {
        let view = snapshot();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                view.put(&format!("t{t}-{i}"), &format!("v{i}")).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let view = snapshot();
    view.converged(&[1, 2, 3], 200).await;

    // A linearizable read point on the leader.
    let leader = view.leader().await;
    view.handle(leader).read_index(G).await.unwrap();

    // Kill the leader: the other two elect a new one and keep accepting writes.
    c.lock().kill(leader);
    let alive: Vec<NodeId> = (1..=3).filter(|id| *id != leader).collect();
    let new_leader = view.leader().await;
    assert_ne!(new_leader, leader);
    for i in 0..20 {
        view.put(&format!("after-{i}"), "x").await;
    }
    view.converged(&alive, 220).await;

    // Restart the dead node from its log: it catches up.
    c.lock().start(leader);
    view.converged(&[1, 2, 3], 220).await;

    // Node 4 joins as a learner; the logs were compacted (compact_after = 20), so it gets a snapshot.
    propose_conf(&view, conf_change(ConfChangeType::AddLearnerNode, 4)).await;
    let h4 = c.lock().start(4);
    let kv4 = c.lock().kvs[&4].clone();
    h4.create_group(G, GroupInit::Join, Box::new(kv4))
        .await
        .unwrap();
    let view = snapshot();
    view.converged(&[1, 2, 3, 4], 220).await;
    let log4 = view.logs[&4].group(G).unwrap();
    assert!(
        log4.snapshot_index > shoal_raft::BOOTSTRAP_INDEX,
        "learner started from a snapshot"
    );
    wait("node 4 to be a learner everywhere", || {
        let st = h4.status();
        (st.first().map(|s| s.learners.clone()) == Some(vec![4])).then_some(())
    })
    .await;

    // Promote it; writes keep flowing to all four.
    propose_conf(&view, conf_change(ConfChangeType::AddNode, 4)).await;
    wait("node 4 to be a voter", || {
        let st = h4.status();
        st.first()
            .is_some_and(|s| s.voters == vec![1, 2, 3, 4] && s.learners.is_empty())
            .then_some(())
    })
    .await;
    view.put("final", "y").await;
    view.converged(&[1, 2, 3, 4], 221).await;

    let nodes = std::mem::take(&mut c.lock().nodes);
    for (_, n) in nodes {
        n.shutdown();
    }
}

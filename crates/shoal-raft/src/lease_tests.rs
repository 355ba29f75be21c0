//! Read leases driven by hand: a lease across a partition and a leader change, a follower's read
//! under the leader's lease, a transfer ending the lease, and a restarted replica that grants no
//! vote for an election timeout. (The simulator checks leases under random faults: tests/sim.rs.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use raft::eraftpb::{Message, MessageType};

use crate::core_tests::{KvFactory, Net, elect_and_write, kv, three_nodes};
use crate::*;

/// A clock the test sets.
#[derive(Default)]
struct ManualClock(AtomicU64);

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl ManualClock {
    fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

fn leased_net(factories: &[Arc<KvFactory>]) -> (Net, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    clock.set(10_000);
    let mut net = three_nodes(factories, 1000);
    for (core, _) in net.cores.values_mut() {
        core.set_clock(clock.clone());
    }
    elect_and_write(&mut net, factories, 1);
    (net, clock)
}

/// Reads `id` on `node` and settles; returns whether it succeeded, if it was answered.
fn read(net: &mut Net, node: NodeId, id: u64) -> Option<bool> {
    net.core(node).read_index(1, id);
    net.settle();
    net.reads
        .iter()
        .find(|(n, r, _)| *n == node && *r == id)
        .map(|(_, _, res)| res.is_ok())
}

fn leader_among(net: &Net, nodes: &[NodeId]) -> Option<NodeId> {
    nodes.iter().copied().find(|n| {
        net.cores[n]
            .0
            .status()
            .iter()
            .any(|s| s.group == 1 && s.role == "Leader")
    })
}

#[test]
fn a_lease_serves_reads_until_it_ends_and_no_leader_is_elected_before() {
    let factories: Vec<Arc<KvFactory>> = (0..3).map(|_| Arc::new(KvFactory::default())).collect();
    let (mut net, clock) = leased_net(&factories);
    let lease_ms = Config::default().lease_ms();
    assert_eq!(lease_ms, 630, "7 ticks of 100 ms, 9/10 of it");

    // The first read pays a quorum round and starts the lease (renewed from the next round).
    assert_eq!(read(&mut net, 1, 100), Some(true));
    assert_eq!(net.core(1).lease_reads(), 0);
    let granted_at = clock.now_ms();
    clock.advance(100);
    assert_eq!(read(&mut net, 1, 101), Some(true));
    assert_eq!(
        net.core(1).lease_reads(),
        1,
        "the second read is under the lease"
    );
    // A follower's read goes to the leader, which answers it under its lease.
    assert_eq!(read(&mut net, 2, 200), Some(true));
    assert_eq!(net.core(1).lease_reads(), 2, "the follower's read too");

    // Cut the leader off. The others elect a new leader, but not before the lease ends.
    net.cut = Some(1);
    let mut new_leader = None;
    for next_read in 102..162 {
        clock.advance(100);
        for id in [2, 3] {
            net.core(id).tick();
        }
        net.core(1).tick();
        net.settle();
        let now = clock.now_ms();
        if let Some(l) = leader_among(&net, &[2, 3]) {
            assert!(
                now >= granted_at + lease_ms,
                "node {l} elected at {now} ms, inside the lease that ends at {} ms",
                granted_at + lease_ms
            );
            new_leader = Some(l);
            break;
        }
        // The old leader's reads: under the lease while it holds, never after.
        let before = net.core(1).lease_reads();
        let answer = read(&mut net, 1, next_read);
        if now < granted_at + lease_ms {
            assert_eq!(answer, Some(true), "at {now} ms, inside the lease");
            assert_eq!(net.core(1).lease_reads(), before + 1);
        } else {
            assert_ne!(answer, Some(true), "at {now} ms the lease had ended");
            assert_eq!(net.core(1).lease_reads(), before);
        }
    }
    let new_leader = new_leader.expect("nodes 2 and 3 elect a leader");
    net.core(new_leader)
        .propose(1, vec![], b"k=after".to_vec())
        .unwrap();
    net.settle();

    // Healed: node 1 follows the new leader, and its read sees the new write.
    net.cut = None;
    for _ in 0..5 {
        clock.advance(100);
        for (core, _) in net.cores.values_mut() {
            core.tick();
        }
        net.settle();
    }
    assert_eq!(read(&mut net, 1, 300), Some(true));
    assert_eq!(
        kv(&factories[0], 1).get("k").map(String::as_str),
        Some("after")
    );

    // The new leader takes a lease; a transfer ends it at once.
    assert_eq!(read(&mut net, new_leader, 400), Some(true));
    clock.advance(50);
    let before = net.core(new_leader).lease_reads();
    assert_eq!(read(&mut net, new_leader, 401), Some(true));
    assert_eq!(net.core(new_leader).lease_reads(), before + 1);
    net.cut = Some(new_leader);
    net.core(new_leader).transfer_leader(1, 1);
    net.core(new_leader).read_index(1, 402);
    net.settle();
    assert_eq!(
        net.core(new_leader).lease_reads(),
        before + 1,
        "no read under the lease once a transfer started"
    );
}

/// A vote request from node 2 for group 1 in a far later term with a longer log.
fn vote_request(to: NodeId) -> GroupMessage {
    let mut msg = Message::default();
    msg.set_msg_type(MessageType::MsgRequestVote);
    msg.from = 2;
    msg.to = to;
    msg.term = 100;
    msg.log_term = 100;
    msg.index = 1_000;
    GroupMessage { group: 1, msg }
}

/// Steps `m` into `core` and runs a round; true when a vote went out.
fn grants_vote(core: &mut Core, store: &mut MemLogStore, m: GroupMessage) -> bool {
    core.step(2, vec![m]);
    let mut round = core.ready();
    let mut sent: Vec<Message> = std::mem::take(&mut round.send_now)
        .into_iter()
        .map(|(_, m)| m.msg)
        .collect();
    store.write(&round.log).unwrap();
    let out = core.persisted(round);
    sent.extend(out.send.into_iter().flat_map(|(_, ms)| ms).map(|m| m.msg));
    sent.iter()
        .any(|m| m.get_msg_type() == MessageType::MsgRequestVoteResponse && !m.reject)
}

#[test]
fn a_restarted_replica_grants_no_vote_for_an_election_timeout() {
    let factories: Vec<Arc<KvFactory>> = (0..3).map(|_| Arc::new(KvFactory::default())).collect();
    let (mut net, clock) = leased_net(&factories);
    let (_, store3) = net.cores.remove(&3).unwrap();
    let config = Config {
        node_id: 3,
        ..Config::default()
    };
    let election_ticks = config.election_ticks;
    let mut core3 = Core::new(config, factories[2].clone());
    core3.set_clock(clock.clone());
    core3.load(store3.clone().load().unwrap()).unwrap();
    let mut store = store3;
    assert!(
        !grants_vote(&mut core3, &mut store, vote_request(3)),
        "a vote right after the restart"
    );
    for _ in 0..election_ticks {
        core3.tick();
    }
    assert!(
        grants_vote(&mut core3, &mut store, vote_request(3)),
        "no vote after an election timeout"
    );
}

//! A panic on the driver thread (here: a state machine that panics applying one entry) must not
//! leave a zombie: the thread's panic is caught, [`RaftHandle::exit`] says it panicked and why,
//! the write that was in flight and every later call fail with `Stopped` instead of hanging,
//! and no group is reported as led any more.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::sync::Arc;
use std::time::Duration;

use shoal_raft::{
    Committed, Config, DriverExit, GroupFactory, GroupId, GroupInit, GroupMessage, MemLogStore,
    NodeId, RaftError, RaftNode, StateMachine, Transport,
};

const G: GroupId = 1;

/// Applies anything, except an entry whose data is `boom`: it panics (a bug in a state machine).
#[derive(Default)]
struct Fragile {
    applied: u64,
}

impl StateMachine for Fragile {
    fn apply(&mut self, entries: Vec<Committed>) {
        for e in entries {
            assert!(
                e.data != b"boom",
                "state machine bug: cannot apply entry {}",
                e.index
            );
            self.applied = e.index;
        }
    }
    fn applied_index(&self) -> u64 {
        self.applied
    }
    fn snapshot(&mut self) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }
    fn restore(&mut self, _data: &[u8], index: u64) -> Result<(), String> {
        self.applied = index;
        Ok(())
    }
}

struct NoGroups;
impl GroupFactory for NoGroups {
    fn open(&self, _group: GroupId) -> Option<Box<dyn StateMachine>> {
        None
    }
}

struct Nowhere;
impl Transport for Nowhere {
    fn send(&self, _to: NodeId, _msgs: Vec<GroupMessage>) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_the_driver_thread_is_caught_reported_and_fails_every_call() {
    let config = Config {
        node_id: 1,
        tick: Duration::from_millis(10),
        ..Config::default()
    };
    let node = RaftNode::start(
        config,
        Box::new(MemLogStore::new()),
        Arc::new(Nowhere),
        Arc::new(NoGroups),
    )
    .unwrap();
    let raft = node.handle();
    raft.create_group(
        G,
        GroupInit::Bootstrap { voters: vec![1] },
        Box::<Fragile>::default(),
    )
    .await
    .unwrap();
    raft.campaign(G).await.unwrap();
    // A lone voter leads at once; a normal entry commits and applies.
    let mut led = false;
    for _ in 0..300 {
        if raft.leader(G) == Some(1) && raft.propose(G, Vec::new(), b"ok".to_vec()).await.is_ok() {
            led = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(led, "the single voter never led its group");
    assert_eq!(raft.exit(), None, "the driver runs");

    // The poisoned entry: the driver panics applying it.
    let _ = raft.propose(G, Vec::new(), b"boom".to_vec()).await;
    let exit = tokio::time::timeout(Duration::from_secs(10), raft.exited())
        .await
        .expect("the driver thread neither ended nor reported it within 10 s");
    match &exit {
        DriverExit::Panicked(why) => assert!(
            why.contains("state machine bug"),
            "the exit names the panic's message: {why}"
        ),
        other => panic!("expected a panic exit, got {other:?}"),
    }
    assert!(exit.is_failure());
    assert_eq!(raft.exit(), Some(exit), "exit() agrees with exited()");

    // Every later call fails at once, and nothing is reported as led.
    let call = tokio::time::timeout(
        Duration::from_secs(5),
        raft.propose(G, Vec::new(), b"after".to_vec()),
    )
    .await
    .expect("a proposal after the panic hangs");
    assert!(matches!(call, Err(RaftError::Stopped)), "got {call:?}");
    let read = tokio::time::timeout(Duration::from_secs(5), raft.read_index(G))
        .await
        .expect("a read after the panic hangs");
    assert!(matches!(read, Err(RaftError::Stopped)), "got {read:?}");
    assert!(
        raft.status().is_empty(),
        "a stopped driver reports no group"
    );
    assert_eq!(raft.leader(G), None);

    // Shutting the node down afterwards is clean (the thread already ended).
    tokio::task::spawn_blocking(move || node.shutdown())
        .await
        .unwrap();
}

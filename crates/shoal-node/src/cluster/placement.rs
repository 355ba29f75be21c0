//! Placement: keeps every group's membership at the desired shape.
//!
//! v1 places a replica of every group on every node: the three lowest node ids are voters, any
//! other node a learner. Each node looks after the groups it leads, every 100 ms, one change
//! per group at a time: a member that is neither voter nor learner is added as a learner (it
//! catches up from the leader's snapshot and log); a learner that should vote is promoted once
//! its log is within a few entries of the leader's commit.

use std::sync::Arc;
use std::time::Duration;

use shoal_raft::{ConfChangeSingle, ConfChangeType, ConfChangeV2, GroupStatus, NodeId};

use super::Cluster;

/// How close (in entries) a learner's log must be to the commit index to be promoted.
const CAUGHT_UP: u64 = 8;

/// The next conf change group `g` needs, if any.
fn next_change(g: &GroupStatus, members: &[NodeId], voters: &[NodeId]) -> Option<ConfChangeSingle> {
    let mut change = ConfChangeSingle::default();
    for &m in members {
        if !g.voters.contains(&m) && !g.learners.contains(&m) {
            change.set_change_type(ConfChangeType::AddLearnerNode);
            change.node_id = m;
            return Some(change);
        }
    }
    for &m in voters {
        if !g.learners.contains(&m) {
            continue;
        }
        let matched = g
            .progress
            .iter()
            .find(|(id, _)| *id == m)
            .map(|(_, matched)| *matched)
            .unwrap_or(0);
        if matched + CAUGHT_UP >= g.commit {
            change.set_change_type(ConfChangeType::AddNode);
            change.node_id = m;
            return Some(change);
        }
    }
    None
}

async fn place_once(cluster: &Cluster) {
    let meta = cluster.meta();
    let members: Vec<NodeId> = meta.members.keys().copied().collect();
    if members.is_empty() {
        return;
    }
    let voters = meta.desired_voters();
    for g in cluster.raft.status() {
        if g.leader != Some(cluster.node_id) || g.role != "Leader" {
            continue;
        }
        let Some(change) = next_change(&g, &members, &voters) else {
            continue;
        };
        tracing::info!(group = g.group, node = change.node_id, change = ?change.get_change_type(), "changing group membership");
        let mut cc = ConfChangeV2::default();
        cc.set_changes(vec![change].into());
        if let Err(e) = cluster.raft.propose_conf_change(g.group, cc).await {
            tracing::debug!(group = g.group, error = %e, "conf change not proposed; retrying later");
        }
    }
}

/// Runs placement every 100 ms until `stop` turns true.
pub(crate) fn spawn_placement(
    cluster: Arc<Cluster>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tick.tick() => place_once(&cluster).await,
            }
        }
    })
}

//! Placement: keeps every group's membership at the desired shape, and leaders balanced.
//!
//! v1 places a replica of every group on every node: the three lowest node ids are voters of a
//! partition group (the five lowest of the metadata group once there are five members), any
//! other node a learner. Each node looks after the groups it leads, every 100 ms, one change
//! per group at a time: a member that is neither voter nor learner is added as a learner (it
//! catches up from the leader's snapshot and log); a learner that should vote is promoted once
//! its log is within a few entries of the leader's commit.
//!
//! Leaders: elections put leaders wherever a node timed out first, so a node may lead most
//! partitions. A node that leads more than one partition group above the node of their voters
//! that leads fewest hands one of them to that node (Raft leadership transfer, to a voter whose
//! log is caught up), at most one every [`TRANSFER_EVERY`], so each voter ends up leading
//! about 1/N of the partitions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_raft::{ConfChangeSingle, ConfChangeType, ConfChangeV2, GroupStatus, NodeId};

use super::Cluster;

/// How close (in entries) a learner's log must be to the commit index to be promoted.
const CAUGHT_UP: u64 = 8;

/// Least time between two leadership transfers this node starts.
pub(crate) const TRANSFER_EVERY: Duration = Duration::from_secs(1);

/// The leadership transfer that balances partition leaders, if this node leads too many: one
/// of its groups and the voter (caught up) of that group that leads fewest partition groups.
fn next_transfer(groups: &[GroupStatus], me: NodeId) -> Option<(u64, NodeId)> {
    let partitions: Vec<&GroupStatus> = groups
        .iter()
        .filter(|g| g.group != shoal_raft::META_GROUP)
        .collect();
    let mut led: BTreeMap<NodeId, usize> = BTreeMap::new();
    for g in &partitions {
        for v in &g.voters {
            led.entry(*v).or_insert(0);
        }
        if let Some(l) = g.leader {
            *led.entry(l).or_insert(0) += 1;
        }
    }
    let mine = *led.get(&me)?;
    partitions
        .iter()
        .filter(|g| g.leader == Some(me) && g.role == "Leader")
        .filter_map(|g| {
            g.voters
                .iter()
                .filter(|v| **v != me)
                .filter(|v| {
                    g.progress
                        .iter()
                        .any(|(id, matched)| id == *v && *matched >= g.commit)
                })
                .map(|v| (led.get(v).copied().unwrap_or(0), *v))
                .min()
                .filter(|(count, _)| count + 1 < mine)
                .map(|(count, v)| (count, g.group, v))
        })
        .min()
        .map(|(_, group, to)| (group, to))
}

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

async fn place_once(cluster: &Cluster, last_transfer: &mut Instant) {
    let meta = cluster.meta();
    let members: Vec<NodeId> = meta.members.keys().copied().collect();
    if members.is_empty() {
        return;
    }
    let voters = meta.desired_voters();
    let meta_voters = meta.desired_meta_voters();
    let groups = cluster.raft.status();
    if last_transfer.elapsed() >= TRANSFER_EVERY
        && let Some((group, to)) = next_transfer(&groups, cluster.node_id)
    {
        *last_transfer = Instant::now();
        tracing::info!(
            group,
            to,
            "handing partition leadership over to balance leaders"
        );
        if let Err(e) = cluster.raft.transfer_leader(group, to).await {
            tracing::debug!(group, error = %e, "leadership transfer not started");
        }
    }
    for g in groups {
        if g.leader != Some(cluster.node_id) || g.role != "Leader" {
            continue;
        }
        let voters = if g.group == shoal_raft::META_GROUP {
            &meta_voters
        } else {
            &voters
        };
        let Some(change) = next_change(&g, &members, voters) else {
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

/// Before the node stops: declines new leaderships and hands every group it leads to a caught-up
/// voter, waiting up to `within` until it leads none (writes in flight follow their entries to
/// the new leaders). Returns how many groups it still leads.
pub(crate) async fn hand_off_leadership(cluster: &Cluster, within: Duration) -> usize {
    cluster.raft.set_draining(true);
    let deadline = Instant::now() + within;
    let mut first = true;
    loop {
        let led: Vec<GroupStatus> = cluster
            .raft
            .status()
            .into_iter()
            .filter(|g| g.leader == Some(cluster.node_id) && g.voters.len() > 1)
            .collect();
        if led.is_empty() || Instant::now() >= deadline {
            return led.len();
        }
        if std::mem::take(&mut first) {
            tracing::info!(groups = led.len(), "stopping: handing leadership over");
        }
        for g in &led {
            let target = g
                .progress
                .iter()
                .filter(|(id, _)| *id != cluster.node_id && g.voters.contains(id))
                .max_by_key(|(_, matched)| *matched)
                .map(|(id, _)| *id);
            if let Some(to) = target {
                let _ = cluster.raft.transfer_leader(g.group, to).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
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
        // No transfer in the first seconds: let the node's groups settle after a start.
        let mut last_transfer = Instant::now() + 2 * TRANSFER_EVERY;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tick.tick() => place_once(&cluster, &mut last_transfer).await,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn group(group: u64, leader: NodeId, commit: u64, progress: &[(NodeId, u64)]) -> GroupStatus {
        GroupStatus {
            group,
            role: "Leader".to_string(),
            leader: Some(leader),
            term: 1,
            commit,
            applied: commit,
            voters: vec![1, 2, 3],
            learners: vec![],
            progress: progress.to_vec(),
        }
    }

    #[test]
    fn a_node_leading_too_many_partitions_hands_one_to_the_least_loaded_caught_up_voter() {
        let caught_up = [(1, 10), (2, 10), (3, 10)];
        // Node 1 leads all three partitions, node 3 is behind in group 11.
        let groups = vec![
            group(0, 1, 10, &caught_up),
            group(10, 1, 10, &caught_up),
            group(11, 1, 10, &[(1, 10), (2, 10), (3, 4)]),
            group(12, 1, 10, &caught_up),
        ];
        let (g, to) = next_transfer(&groups, 1).unwrap();
        assert_ne!(to, 1);
        assert!(!(g == 11 && to == 3), "never to a voter that is behind");
        // Nodes other than the one leading too many do nothing.
        assert_eq!(next_transfer(&groups, 2), None);
        // Balanced (2, 1, 1 is within one): nothing moves; the metadata group does not count.
        let balanced = vec![
            group(0, 1, 10, &caught_up),
            group(10, 1, 10, &caught_up),
            group(11, 2, 10, &caught_up),
            group(12, 3, 10, &caught_up),
            group(13, 1, 10, &caught_up),
        ];
        assert_eq!(next_transfer(&balanced, 1), None);
    }
}

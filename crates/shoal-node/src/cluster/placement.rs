//! Placement: keeps every group's membership at the desired shape, and leaders balanced.
//!
//! A partition group has exactly the replicas the metadata places it on (`min(3, N)` nodes, the
//! least-loaded when it was placed: see `shoal_meta`'s placement); the metadata group has a
//! replica on every node, the three lowest ids voting (the five lowest once there are five
//! members). Each node looks after the groups it leads, every 100 ms, one change per group at a
//! time: a replica that is neither voter nor learner is added as a learner (it catches up from
//! the leader's snapshot and log); a learner that should vote is promoted once its log is within
//! a few entries of the leader's commit. The metadata leader also grows partitions placed while
//! the cluster had fewer than three members onto the members that joined since.
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

/// Least time between two replica moves the metadata leader starts (each one streams a
/// snapshot of the partition to its new node; moves throttled so clients keep their latency).
const MOVE_EVERY: Duration = Duration::from_secs(2);

/// Least time between two leadership transfers this node starts.
pub(crate) const TRANSFER_EVERY: Duration = Duration::from_secs(1);

/// Least time before the balancer hands the same group over again. Raft drops the group's
/// proposals while a transfer runs (up to an election timeout when it does not complete), so a
/// transfer that keeps failing must not be retried every second.
const TRANSFER_SAME_GROUP_EVERY: Duration = Duration::from_secs(30);

/// The leadership transfer that balances partition leaders, if this node leads too many: one
/// of its groups and the voter (caught up) of that group that leads fewest partition groups.
fn next_transfer(
    groups: &[GroupStatus],
    me: NodeId,
    skip: impl Fn(u64) -> bool,
) -> Option<(u64, NodeId)> {
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
        .filter(|g| g.leader == Some(me) && g.role == "Leader" && !skip(g.group))
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

/// Whether partition group `group` is not in its placed shape yet (a replica being added,
/// caught up, promoted or removed). The balancer leaves such a group alone: the move hands
/// leadership over itself when its leader is the replica leaving, and two transfers started
/// at once (one to balance, one to leave) elect two candidates that split the vote, so the
/// group has no leader until an election timeout (seen as 1.4 s write stalls during moves).
pub(crate) fn moving(groups: &[GroupStatus], meta: &shoal_meta::MetaState, group: u64) -> bool {
    let Some(g) = groups.iter().find(|g| g.group == group) else {
        return false;
    };
    let Some((_, p)) = meta.partition(group) else {
        return false;
    };
    let mut voters = g.voters.clone();
    voters.sort_unstable();
    let mut placed = p.replicas.clone();
    placed.sort_unstable();
    !g.learners.is_empty() || voters != placed
}

/// What a group's leader does next to bring the group to its placed shape.
#[derive(Debug, PartialEq)]
enum Step {
    /// One membership change.
    Change(ConfChangeSingle),
    /// Hand leadership to this voter first (the leader itself is to be removed).
    Transfer(NodeId),
}

fn change(kind: ConfChangeType, node: NodeId) -> Step {
    let mut c = ConfChangeSingle::default();
    c.set_change_type(kind);
    c.node_id = node;
    Step::Change(c)
}

/// The next step group `g` (led by `me`) needs, if any, to have a replica on each of `members`
/// and exactly `voters` voting: add a missing member as a learner; promote a learner that
/// should vote once it caught up; drop a learner that should not be there; and, once every
/// wanted voter votes, remove a voter that should not (handing leadership away first when it
/// is the leader). A replica moves by being added before the old one is removed, so the group
/// never has fewer caught-up voters than it should.
fn next_step(g: &GroupStatus, members: &[NodeId], voters: &[NodeId], me: NodeId) -> Option<Step> {
    let matched = |m: NodeId| {
        g.progress
            .iter()
            .find(|(id, _)| *id == m)
            .map(|(_, matched)| *matched)
            .unwrap_or(0)
    };
    if let Some(&m) = members
        .iter()
        .find(|m| !g.voters.contains(m) && !g.learners.contains(m))
    {
        return Some(change(ConfChangeType::AddLearnerNode, m));
    }
    if let Some(&m) = voters
        .iter()
        .find(|m| g.learners.contains(m) && matched(**m) + CAUGHT_UP >= g.commit)
    {
        return Some(change(ConfChangeType::AddNode, m));
    }
    if let Some(&m) = g.learners.iter().find(|m| !members.contains(m)) {
        return Some(change(ConfChangeType::RemoveNode, m));
    }
    if !voters.iter().all(|v| g.voters.contains(v)) {
        return None;
    }
    let extra = *g.voters.iter().find(|v| !voters.contains(v))?;
    if extra != me {
        return Some(change(ConfChangeType::RemoveNode, extra));
    }
    voters
        .iter()
        .filter(|v| **v != me && matched(**v) >= g.commit)
        .max_by_key(|v| matched(**v))
        .map(|&to| Step::Transfer(to))
}

/// When placement last acted (its actions are throttled).
struct Timers {
    last_transfer: Instant,
    last_move: Instant,
    /// When the balancer last handed each group over.
    transferred: BTreeMap<u64, Instant>,
}

async fn place_once(cluster: &Arc<Cluster>, timers: &mut Timers) {
    let meta = cluster.meta();
    let members: Vec<NodeId> = meta.members.keys().copied().collect();
    if members.is_empty() {
        return;
    }
    let meta_voters = meta.desired_meta_voters();
    let groups = cluster.raft.status();
    let leads_meta = groups.iter().any(|g| {
        g.group == shoal_raft::META_GROUP && g.leader == Some(cluster.node_id) && g.role == "Leader"
    });
    if !leads_meta {
        cluster.liveness.set_leading(false);
    }
    if timers.last_transfer.elapsed() >= TRANSFER_EVERY
        && let Some((group, to)) = next_transfer(&groups, cluster.node_id, |g| {
            timers
                .transferred
                .get(&g)
                .is_some_and(|t| t.elapsed() < TRANSFER_SAME_GROUP_EVERY)
                || moving(&groups, &meta, g)
        })
    {
        timers.last_transfer = Instant::now();
        timers
            .transferred
            .retain(|_, t| t.elapsed() < TRANSFER_SAME_GROUP_EVERY);
        timers.transferred.insert(group, Instant::now());
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
        if g.group == shoal_raft::META_GROUP {
            if let Some(since) = cluster.liveness.set_leading(true) {
                declare_dead(cluster, &meta, since).await;
            }
            place_partitions(cluster, &meta, &mut timers.last_move).await;
        }
        // The metadata group has a replica on every member (learners past its voters); a
        // partition group has exactly its placed replicas.
        let (members, voters) = if g.group == shoal_raft::META_GROUP {
            (members.as_slice(), meta_voters.as_slice())
        } else {
            match meta.partition(g.group) {
                Some((_, p)) => (p.replicas.as_slice(), p.replicas.as_slice()),
                None => continue,
            }
        };
        match next_step(&g, members, voters, cluster.node_id) {
            None => {}
            Some(Step::Transfer(to)) => {
                tracing::info!(
                    group = g.group,
                    to,
                    "leaving a group: handing its leadership over first"
                );
                if let Err(e) = cluster.raft.transfer_leader(g.group, to).await {
                    tracing::debug!(group = g.group, error = %e, "leadership transfer not started");
                }
            }
            Some(Step::Change(change)) => {
                tracing::info!(group = g.group, node = change.node_id, change = ?change.get_change_type(), "changing group membership");
                let mut cc = ConfChangeV2::default();
                cc.set_changes(vec![change].into());
                if let Err(e) = cluster.raft.propose_conf_change(g.group, cc).await {
                    tracing::debug!(group = g.group, error = %e, "conf change not proposed; retrying later");
                }
            }
        }
    }
}

/// On the metadata leader: gives a partition with fewer replicas than the cluster now allows
/// (members joined since it was placed) its next replicas; else, at most once every
/// [`MOVE_EVERY`], moves a replica off a node being decommissioned, removes a decommissioned
/// node that holds none any more, or moves one replica from the most to the least loaded
/// member; see `shoal_meta`'s placement.
async fn place_partitions(
    cluster: &Arc<Cluster>,
    meta: &shoal_meta::MetaState,
    last_move: &mut Instant,
) {
    let change = match meta.next_growth() {
        Some(c) => c,
        None if last_move.elapsed() < MOVE_EVERY => return,
        None => {
            *last_move = Instant::now();
            match meta.next_evacuation() {
                Some(c) => c,
                None => {
                    if let Some(id) = meta.next_departure() {
                        remove_member(cluster, id).await;
                        return;
                    }
                    match meta.next_move() {
                        Some(c) => c,
                        None => return,
                    }
                }
            }
        }
    };
    tracing::info!(
        partition = change.partition,
        replicas = ?change.replicas,
        "placing the replicas of a partition"
    );
    let command = shoal_meta::MetaCommand::SetReplicas {
        table_id: change.table_id,
        partition: change.partition,
        generation: change.generation,
        replicas: change.replicas,
    };
    if let Err(e) = cluster.meta_propose(command).await {
        tracing::debug!(error = %e, "placing replicas not proposed; retrying later");
    }
}

/// On the metadata leader: declares dead the member silent for longer than the dead-node
/// timeout, if there is one (see `liveness.rs`).
async fn declare_dead(cluster: &Arc<Cluster>, meta: &shoal_meta::MetaState, since: Instant) {
    // A member still running an older binary could not apply the declaration.
    if meta.write_format() < 2 {
        return;
    }
    let timeout = cluster.liveness.dead_after;
    let silent = |id| cluster.liveness.silent_for(id, since);
    let Some(id) = super::liveness::next_dead(meta, cluster.node_id, silent, timeout) else {
        return;
    };
    tracing::warn!(
        node = id,
        silent_secs = silent(id).as_secs(),
        timeout_secs = timeout.as_secs(),
        "node unreachable for longer than the dead-node timeout: declaring it dead; its replicas move to live nodes"
    );
    if let Err(e) = cluster
        .meta_propose(shoal_meta::MetaCommand::DeclareDead { id })
        .await
    {
        tracing::debug!(error = %e, "declaring the node dead not proposed; retrying later");
    }
}

/// Removes decommissioned member `id` from the membership once no partition group counts it
/// any more (every group's leader, asked through `/status`, lists it neither as a voter nor as
/// a learner): its replicas were moved and their groups shrank.
async fn remove_member(cluster: &Arc<Cluster>, id: NodeId) {
    let status = super::status(cluster).await;
    let counted = status["groups"].as_array().into_iter().flatten().any(|g| {
        g["kind"] == "partition"
            && ["voters", "learners"].iter().any(|k| {
                g[k].as_array()
                    .is_some_and(|ids| ids.iter().any(|v| v.as_u64() == Some(id)))
            })
    });
    if counted {
        return;
    }
    tracing::info!(
        node = id,
        "decommissioned node holds no replica any more: removing it"
    );
    if let Err(e) = cluster
        .meta_propose(shoal_meta::MetaCommand::RemoveMember { id })
        .await
    {
        tracing::debug!(error = %e, "removing the member not proposed; retrying later");
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
        let mut timers = Timers {
            last_transfer: Instant::now() + 2 * TRANSFER_EVERY,
            last_move: Instant::now(),
            transferred: BTreeMap::new(),
        };
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tick.tick() => place_once(&cluster, &mut timers).await,
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
        let (g, to) = next_transfer(&groups, 1, |_| false).unwrap();
        assert_ne!(to, 1);
        assert!(!(g == 11 && to == 3), "never to a voter that is behind");
        // A group handed over recently is left alone: another is chosen, or none.
        let (other, _) = next_transfer(&groups, 1, |x| x == g).unwrap();
        assert_ne!(other, g);
        assert_eq!(next_transfer(&groups, 1, |x| x >= 10), None);
        // Nodes other than the one leading too many do nothing.
        assert_eq!(next_transfer(&groups, 2, |_| false), None);
        // Balanced (2, 1, 1 is within one): nothing moves; the metadata group does not count.
        let balanced = vec![
            group(0, 1, 10, &caught_up),
            group(10, 1, 10, &caught_up),
            group(11, 2, 10, &caught_up),
            group(12, 3, 10, &caught_up),
            group(13, 1, 10, &caught_up),
        ];
        assert_eq!(next_transfer(&balanced, 1, |_| false), None);
    }

    fn shaped(voters: &[NodeId], learners: &[NodeId], progress: &[(NodeId, u64)]) -> GroupStatus {
        GroupStatus {
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            ..group(10, 1, 100, progress)
        }
    }

    fn kind(step: Option<Step>) -> Option<(ConfChangeType, NodeId)> {
        match step {
            Some(Step::Change(c)) => Some((c.get_change_type(), c.node_id)),
            Some(Step::Transfer(to)) => panic!("unexpected transfer to {to}"),
            None => None,
        }
    }

    #[test]
    fn a_replica_moves_by_learner_promotion_then_removal_of_the_old_voter() {
        let want = [1, 2, 4];
        let all = [(1, 100), (2, 100), (3, 100), (4, 100)];
        // The new replica joins as a learner.
        let g = shaped(&[1, 2, 3], &[], &all[..3]);
        assert_eq!(
            kind(next_step(&g, &want, &want, 1)),
            Some((ConfChangeType::AddLearnerNode, 4))
        );
        // Not promoted while behind; promoted once caught up.
        let behind = shaped(&[1, 2, 3], &[4], &[(1, 100), (2, 100), (3, 100), (4, 10)]);
        assert_eq!(kind(next_step(&behind, &want, &want, 1)), None);
        let g = shaped(&[1, 2, 3], &[4], &all);
        assert_eq!(
            kind(next_step(&g, &want, &want, 1)),
            Some((ConfChangeType::AddNode, 4))
        );
        // Only then the old voter goes.
        let g = shaped(&[1, 2, 3, 4], &[], &all);
        assert_eq!(
            kind(next_step(&g, &want, &want, 1)),
            Some((ConfChangeType::RemoveNode, 3))
        );
        // A leader that is itself the one to go hands leadership to a caught-up replica first.
        let want = [1, 2, 4];
        let g = shaped(&[1, 2, 3, 4], &[], &[(1, 100), (2, 90), (3, 100), (4, 100)]);
        assert_eq!(next_step(&g, &want, &want, 3), Some(Step::Transfer(4)));
        // A learner placed nowhere is dropped; a group in shape needs nothing.
        let g = shaped(&[1, 2, 4], &[5], &all);
        assert_eq!(
            kind(next_step(&g, &want, &want, 1)),
            Some((ConfChangeType::RemoveNode, 5))
        );
        let g = shaped(&[1, 2, 4], &[], &all);
        assert_eq!(kind(next_step(&g, &want, &want, 1)), None);
    }
}

#[cfg(test)]
mod moving_tests {
    #![allow(clippy::unwrap_used)]

    use shoal_meta::{MetaCommand, MetaResult, MetaState};

    use super::*;

    #[test]
    fn a_group_mid_move_is_left_to_the_move_not_the_balancer() {
        let mut meta = MetaState::default();
        meta.apply(MetaCommand::Init {
            cluster_id: "c".into(),
            first: shoal_meta::Member {
                id: 1,
                api_addr: "a1".into(),
                cluster_addr: "c1".into(),
                joined_at: 0,
                state: shoal_meta::MemberState::Active,
                instance: String::new(),
                format: shoal_meta::META_FORMAT_VERSION,
            },
        });
        for n in 2..=4u64 {
            meta.apply(MetaCommand::AddMember {
                api_addr: format!("a{n}"),
                cluster_addr: format!("c{n}"),
                joined_at: n,
                instance: format!("i{n}"),
                format: shoal_meta::META_FORMAT_VERSION,
            });
        }
        let MetaResult::Table(t) = meta.apply(MetaCommand::CreateTable {
            meta: crate::test_support::table_meta("t", &[]),
            partitions: 1,
        }) else {
            panic!("create");
        };
        let p = t.partitions.all()[0].clone();
        assert_eq!(p.replicas, vec![1, 2, 3]);
        let status = |voters: &[NodeId], learners: &[NodeId]| GroupStatus {
            group: p.id,
            role: "Leader".to_string(),
            leader: Some(1),
            term: 1,
            commit: 10,
            applied: 10,
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            progress: vec![],
        };
        // In its placed shape (in any order): the balancer may hand it over.
        assert!(!moving(&[status(&[3, 1, 2], &[])], &meta, p.id));
        // Moving from node 1 to node 4: a learner being caught up, then 4 voters.
        meta.apply(MetaCommand::SetReplicas {
            table_id: t.meta.id.clone(),
            partition: p.id,
            generation: p.generation,
            replicas: vec![2, 3, 4],
        });
        assert!(moving(&[status(&[1, 2, 3], &[4])], &meta, p.id));
        assert!(moving(&[status(&[1, 2, 3, 4], &[])], &meta, p.id));
        assert!(!moving(&[status(&[2, 3, 4], &[])], &meta, p.id));
        // A group this node knows nothing of is not held back.
        assert!(!moving(&[], &meta, p.id));
    }
}

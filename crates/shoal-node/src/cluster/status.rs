//! `GET /status` / `shoal status`: this node's health, every member's state and uptime (asked
//! over RPC, so "down" means this node cannot reach it now; "failed" means it answered that an
//! essential part of it failed and it is stopping), every group with its leader, replicas and
//! lag, and when the cluster's join token expires.
//!
//! A group's replication lag is reported by its leader (the only node that tracks its
//! followers' logs): for each replica, how many committed entries it is behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shoal_meta::MemberState;

use super::rpc::{GroupView, LocalStatus, NodeRpc};
use super::{Cluster, kind};

const STATUS_TIMEOUT: Duration = Duration::from_millis(800);

pub(crate) async fn ask(
    cluster: Arc<Cluster>,
    id: u64,
    addr: String,
) -> (u64, Option<LocalStatus>) {
    if id == cluster.node_id {
        return (id, Some(NodeRpc::local_status(&cluster)));
    }
    let reply = cluster
        .rpc
        .call(&addr, kind::STATUS, bytes::Bytes::new(), STATUS_TIMEOUT)
        .await;
    (id, reply.ok().and_then(|b| serde_json::from_slice(&b).ok()))
}

fn lag(g: &GroupView) -> Vec<Value> {
    g.progress
        .iter()
        .map(|(node, matched)| json!({"node": node, "behind": g.commit.saturating_sub(*matched)}))
        .collect()
}

/// The cluster status as this node sees it.
pub(crate) async fn status(cluster: &Arc<Cluster>) -> Value {
    let meta = cluster.meta();
    // Asked concurrently: an unreachable member costs one timeout, not one per member.
    let asks: Vec<_> = meta
        .members
        .values()
        .map(|m| tokio::spawn(ask(Arc::clone(cluster), m.id, m.cluster_addr.clone())))
        .collect();
    let mut answers: BTreeMap<u64, Option<LocalStatus>> = BTreeMap::new();
    for a in asks {
        if let Ok((id, s)) = a.await {
            answers.insert(id, s);
        }
    }
    // Dead-node detection as the metadata leader sees it.
    let leader_view = answers
        .values()
        .flatten()
        .find(|l| !l.silent_secs.is_empty());
    let mut nodes: Vec<Value> = meta
        .members
        .values()
        .map(|m| {
            let local = answers.get(&m.id).and_then(Option::as_ref);
            let state = node_state(m.state, local);
            let dead_in_secs = match (state, leader_view) {
                ("down", Some(l)) => l
                    .silent_secs
                    .get(&m.id)
                    .map(|s| l.dead_node_timeout_secs.saturating_sub(*s)),
                _ => None,
            };
            json!({
                "id": m.id,
                "api_addr": m.api_addr,
                "cluster_addr": m.cluster_addr,
                "state": state,
                "dead_in_secs": dead_in_secs,
                "uptime_secs": local.map(|l| l.uptime_secs),
                "replicas": meta.replica_counts().get(&m.id).copied().unwrap_or_else(|| {
                    meta.tables.values().flat_map(|t| t.partitions.all()).filter(|p| p.replicas.contains(&m.id)).count()
                }),
                "failure": local.and_then(|l| l.failure.clone()),
            })
        })
        .collect();
    nodes.extend(
        meta.removed_members
            .iter()
            .map(|id| json!({"id": id, "state": "removed"})),
    );
    let up = |id: u64| {
        answers
            .get(&id)
            .and_then(Option::as_ref)
            .is_some_and(|l| l.failure.is_none())
    };
    // Each group as reported by its leader (else by this node).
    let mut groups: BTreeMap<u64, GroupView> = BTreeMap::new();
    for g in NodeRpc::local_status(cluster).groups {
        groups.insert(g.group, g);
    }
    for local in answers.values().flatten() {
        for g in &local.groups {
            if g.role == "Leader" {
                groups.insert(g.group, g.clone());
            }
        }
    }
    let mut moves = Vec::new();
    let mut under_replicated = Vec::new();
    for g in groups.values() {
        let Some((_, p)) = meta.partition(g.group) else {
            continue;
        };
        let adding: Vec<u64> = p
            .replicas
            .iter()
            .copied()
            .filter(|r| !g.voters.contains(r))
            .collect();
        let removing: Vec<u64> = g
            .voters
            .iter()
            .chain(&g.learners)
            .copied()
            .filter(|v| !p.replicas.contains(v))
            .collect();
        if !adding.is_empty() || !removing.is_empty() {
            moves.push(json!({"group": g.group, "adding": adding, "removing": removing}));
        }
        let live_voters = g.voters.iter().filter(|v| up(**v)).count();
        if live_voters < meta.replication().max(p.replicas.len()) {
            under_replicated.push(g.group);
        }
    }
    let groups: Vec<Value> = groups
        .values()
        .map(|g| {
            let (table, range, epoch, placed) = match meta.partition(g.group) {
                Some((t, p)) => (
                    Some(t.meta.name.clone()),
                    Some(json!([
                        format!("{:016x}", p.hash_start),
                        format!("{:016x}", p.hash_end)
                    ])),
                    Some(p.epoch),
                    Some(p.replicas.clone()),
                ),
                None => (None, None, None, None),
            };
            // Catching up: any replica that reported a snapshot streaming in.
            let catching_up: Vec<u64> = answers
                .iter()
                .filter(|(_, l)| {
                    l.as_ref().is_some_and(|l| {
                        l.groups.iter().any(|x| x.group == g.group && x.catching_up)
                    })
                })
                .map(|(id, _)| *id)
                .collect();
            json!({
                "group": g.group,
                "kind": if g.group == shoal_raft::META_GROUP { "metadata" } else { "partition" },
                "table": table,
                "hash_range": range,
                "epoch": epoch,
                "replicas": placed,
                "leader": g.leader,
                "term": g.term,
                "voters": g.voters,
                "learners": g.learners,
                "commit": g.commit,
                "applied": g.applied,
                "lag": lag(g),
                "items": g.items,
                "bytes": g.bytes,
                "catching_up": catching_up,
            })
        })
        .collect();
    let failure = cluster.fail_stop.current();
    json!({
        "node_id": cluster.node_id,
        "cluster_id": cluster.identity.cluster_id,
        "health": if failure.is_some() { "failed" } else { "ok" },
        "failure": failure,
        "join_token_expires_at": meta.join_token.as_ref().map(|t| super::join_token::rfc3339(t.expires_at)),
        "epoch": meta.epoch,
        "nodes": nodes,
        "removed_nodes": meta.removed_members,
        "dead_node_timeout_secs": cluster.liveness.dead_after.as_secs(),
        "moves": moves,
        "under_replicated": under_replicated,
        "groups": groups,
    })
}

/// A member's state in the status: `dead` (declared dead: its replicas are being replaced),
/// `failed` (it answered that it is stopping), `down` (this node cannot reach it now),
/// `draining` (being decommissioned), else `up`.
fn node_state(placement: MemberState, local: Option<&LocalStatus>) -> &'static str {
    match local {
        _ if placement == MemberState::Dead => "dead",
        Some(l) if l.failure.is_some() => "failed",
        None => "down",
        Some(_) if placement == MemberState::Leaving => "draining",
        Some(_) => "up",
    }
}

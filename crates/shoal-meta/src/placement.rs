//! Where partition replicas go: pure functions of the metadata, so every node that asks gets the
//! same answer.
//!
//! Each partition (of a table or of a global index) has `min(REPLICATION_FACTOR, members)`
//! voting replicas on distinct nodes. A new partition goes to the members holding the fewest
//! replicas (ties: lowest id), so with N nodes each holds about `3/N` of the partitions. When
//! members join, partitions with fewer replicas than that grow onto the least-loaded members
//! ([`MetaState::next_growth`]); then replicas move, one at a time, from the most loaded member
//! to the least loaded until no two members differ by more than one replica
//! ([`MetaState::next_move`]). A partition split off its parent stays where it is until it runs
//! (`splitting`): its replicas start from their own copy of the parent's rows. Only about 1/N of the replicas move when a node joins.

use std::collections::BTreeMap;

use crate::{MetaState, REPLICATION_FACTOR};

/// A change of one partition's replica set, as [`crate::MetaCommand::SetReplicas`] applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaChange {
    /// The table's id.
    pub table_id: String,
    /// The partition (Raft group) id.
    pub partition: u64,
    /// The generation the change was computed from (the command applies only if it is current).
    pub generation: u64,
    /// The new replica set.
    pub replicas: Vec<u64>,
}

impl MetaState {
    /// How many partition replicas each active member holds (members without any count 0;
    /// members being decommissioned are not counted: they take no replicas).
    pub fn replica_counts(&self) -> BTreeMap<u64, usize> {
        let mut counts: BTreeMap<u64, usize> = self.active_members().map(|id| (id, 0)).collect();
        for t in self.tables.values() {
            for p in t.partitions.all() {
                for r in &p.replicas {
                    if let Some(c) = counts.get_mut(r) {
                        *c += 1;
                    }
                }
            }
        }
        counts
    }

    /// How many replicas a partition should have: [`REPLICATION_FACTOR`], or every member while
    /// there are fewer.
    pub fn replication(&self) -> usize {
        REPLICATION_FACTOR.min(self.active_members().count()).max(1)
    }

    /// The next partition with a replica on a node that takes none (being decommissioned, or
    /// gone): the replica moves to the least-loaded active member it is not on yet, or is
    /// dropped when too few active members are left to keep [`MetaState::replication`] of them.
    pub fn next_evacuation(&self) -> Option<ReplicaChange> {
        let counts = self.replica_counts();
        let want = self.replication();
        self.tables.values().find_map(|t| {
            t.partitions
                .all()
                .iter()
                .filter(|p| settled(t, p))
                .find_map(|p| {
                    let &gone = p.replicas.iter().find(|r| !counts.contains_key(*r))?;
                    let kept: Vec<u64> =
                        p.replicas.iter().copied().filter(|r| *r != gone).collect();
                    let replicas = match least_loaded(&counts, &p.replicas, 1).first() {
                        Some(&to) => p
                            .replicas
                            .iter()
                            .map(|&r| if r == gone { to } else { r })
                            .collect(),
                        None if kept.len() >= want && !kept.is_empty() => kept,
                        None => return None,
                    };
                    Some(ReplicaChange {
                        table_id: t.meta.id.clone(),
                        partition: p.id,
                        generation: p.generation,
                        replicas,
                    })
                })
        })
    }

    /// A member being decommissioned that no partition is placed on any more: it can leave
    /// the membership once no group counts it either.
    pub fn next_departure(&self) -> Option<u64> {
        let placed: std::collections::BTreeSet<u64> = self
            .tables
            .values()
            .flat_map(|t| {
                t.partitions
                    .all()
                    .iter()
                    .flat_map(|p| p.replicas.iter().copied())
            })
            .collect();
        self.members
            .values()
            .find(|m| !m.state.is_active() && !placed.contains(&m.id))
            .map(|m| m.id)
    }

    /// The replicas of a new partition: the [`MetaState::replication`] members holding the
    /// fewest replicas (ties: lowest id).
    pub fn place_replicas(&self) -> Vec<u64> {
        least_loaded(&self.replica_counts(), &[], self.replication())
    }

    /// The next partition with fewer replicas than [`MetaState::replication`] (members joined
    /// since it was placed), grown onto the least-loaded members it is not on yet. One change at
    /// a time: the caller proposes it and asks again once it applied.
    pub fn next_growth(&self) -> Option<ReplicaChange> {
        let want = self.replication();
        let counts = self.replica_counts();
        self.tables.values().find_map(|t| {
            t.partitions
                .all()
                .iter()
                .filter(|p| settled(t, p))
                .find_map(|p| {
                    let missing = want.saturating_sub(p.replicas.len());
                    if missing == 0 {
                        return None;
                    }
                    let mut replicas = p.replicas.clone();
                    replicas.extend(least_loaded(&counts, &p.replicas, missing));
                    (replicas.len() > p.replicas.len()).then(|| ReplicaChange {
                        table_id: t.meta.id.clone(),
                        partition: p.id,
                        generation: p.generation,
                        replicas,
                    })
                })
        })
    }
}

impl MetaState {
    /// The next replica move that evens out the members' loads: when the most loaded member
    /// holds two or more replicas more than the least loaded, one partition on the first and not
    /// on the second moves there. `None` while a partition still has to grow, or when balanced.
    pub fn next_move(&self) -> Option<ReplicaChange> {
        if self.next_growth().is_some() || self.next_evacuation().is_some() {
            return None;
        }
        let counts = self.replica_counts();
        let (&most, &high) = counts
            .iter()
            .max_by_key(|(id, c)| (**c, std::cmp::Reverse(**id)))?;
        let (&least, &low) = counts.iter().min_by_key(|(id, c)| (**c, **id))?;
        if high < low + 2 {
            return None;
        }
        self.tables.values().find_map(|t| {
            t.partitions
                .all()
                .iter()
                .filter(|p| settled(t, p))
                .find_map(|p| {
                    (p.replicas.contains(&most) && !p.replicas.contains(&least)).then(|| {
                        ReplicaChange {
                            table_id: t.meta.id.clone(),
                            partition: p.id,
                            generation: p.generation,
                            replicas: p
                                .replicas
                                .iter()
                                .map(|&r| if r == most { least } else { r })
                                .collect(),
                        }
                    })
                })
        })
    }
}

/// Whether placement may change `p`'s replicas: neither it nor a partition split off it is still
/// splitting (the child's replicas start from their copies of the parent's rows, on the
/// parent's replicas as they were at the split).
fn settled(t: &crate::TableEntry, p: &shoal_catalog::PartitionEntry) -> bool {
    !p.splitting
        && !t
            .partitions
            .all()
            .iter()
            .any(|c| c.splitting && c.parent == Some(p.id))
}

/// The `n` members of `counts` not in `exclude` with the lowest counts (ties: lowest id).
pub(crate) fn least_loaded(counts: &BTreeMap<u64, usize>, exclude: &[u64], n: usize) -> Vec<u64> {
    let mut candidates: Vec<(usize, u64)> = counts
        .iter()
        .filter(|(id, _)| !exclude.contains(id))
        .map(|(&id, &count)| (count, id))
        .collect();
    candidates.sort_unstable();
    candidates.into_iter().take(n).map(|(_, id)| id).collect()
}

//! The metadata state machine of a Shoal cluster: membership, the catalog and the partition
//! map with epochs.
//!
//! Every node holds a replica of the metadata Raft group (group 0; voters are the first three
//! nodes). Its log carries [`MetaCommand`]s; [`MetaState::apply`] is deterministic, so every
//! replica reaches the same [`MetaState`]. The state is small (members, tables, partition
//! ranges), so a snapshot is the whole state as JSON.
//!
//! What lives here is the cluster-wide truth. Per-node things stay local: each node wraps the
//! data keys of its own replica files with its own master key (so no key material is in the
//! metadata log), and each node keeps its own access to its files.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
pub use shoal_catalog::{PartitionEntry, PartitionMap, TableMeta};

pub mod format;
mod placement;
pub use format::{META_FORMAT_VERSION, decode_command, decode_state, encode_command, encode_state};
pub use placement::ReplicaChange;

/// The metadata format from which every member keeps a global index in shards of the base
/// partitions (so a table with global indexes may split and start with several partitions).
pub const GLOBAL_INDEX_SPLIT_FORMAT: u64 = 5;

/// The metadata format from which every member applies transaction commands to its partitions:
/// transactions run only once the cluster writes it (an older member would refuse the entries).
pub const TRANSACTIONS_FORMAT: u64 = 6;

/// Most partitions a table starts with (a provisioned throughput asking for more starts with
/// this many).
pub const MAX_INITIAL_PARTITIONS: u64 = 256;

/// Most replicas (voters) a group has.
pub const REPLICATION_FACTOR: usize = 3;

/// Voters of the metadata group once the cluster has this many members or more (it then
/// survives two failures; with fewer members it has [`REPLICATION_FACTOR`]).
pub const META_VOTERS_LARGE: usize = 5;

/// One member node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    /// The DynamoDB API address clients use (`host:port`).
    pub api_addr: String,
    /// The node-to-node address (`host:port`).
    pub cluster_addr: String,
    /// Seconds since the Unix epoch when the node joined.
    pub joined_at: u64,
    /// Whether the node takes replicas, or is being decommissioned, or was declared dead.
    #[serde(default, skip_serializing_if = "MemberState::is_active")]
    pub state: MemberState,
    /// The random id the node's process sent when it joined (empty for members that joined
    /// before nodes sent one): a join from the same address with another instance is a new
    /// node (a wiped one, say), never the old member with an empty Raft state.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance: String,
    /// The newest metadata format the node reads ([`META_FORMAT_VERSION`] of its binary, as it
    /// last said; 1 for members recorded before nodes said). The cluster writes the oldest
    /// format any member reads ([`MetaState::write_format`]), so a rolling upgrade never has a
    /// node read a format it does not know.
    #[serde(default = "format_one", skip_serializing_if = "is_format_one")]
    pub format: u64,
}

fn format_one() -> u64 {
    1
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

fn is_format_one(f: &u64) -> bool {
    *f == 1
}

/// A member's part in placement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Takes replicas and serves.
    #[default]
    Active,
    /// Being decommissioned (`shoal cluster remove`): its replicas move to other members, then
    /// it leaves the membership.
    Leaving,
    /// Unreachable for longer than the dead-node timeout (or its address was taken by a new
    /// node): its replicas are replaced on live members, then it leaves the membership. Final:
    /// a dead node that comes back serves its replicas until they moved, then is removed.
    Dead,
}

impl MemberState {
    /// Whether the member takes replicas.
    pub fn is_active(&self) -> bool {
        *self == MemberState::Active
    }
}

/// A table: its definition and partition map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    pub meta: TableMeta,
    /// The partitions of the table's items and of its global indexes.
    pub partitions: PartitionMap,
}

/// The replicated metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaState {
    pub cluster_id: String,
    pub members: BTreeMap<u64, Member>,
    pub tables: BTreeMap<String, TableEntry>,
    /// The id the next partition gets (ids are never reused).
    pub next_partition_id: u64,
    /// Bumped by every change of the catalog or partition map; nodes compare it to refresh.
    pub epoch: u64,
    /// The cluster's access keys (id -> key). The metadata lives only in encrypted files (the
    /// Raft log and `meta.db`) and travels only over mutual TLS.
    #[serde(default)]
    pub access_keys: BTreeMap<String, AccessKeyEntry>,
    /// Ids of deleted access keys (never re-added, so a node that was down deletes its copy).
    #[serde(default)]
    pub deleted_access_keys: BTreeSet<String>,
    /// The one join token that admits new nodes (`None`: no node can join). Only the SHA-256 of
    /// its secret is kept, so the metadata cannot be turned back into a token.
    #[serde(default)]
    pub join_token: Option<JoinTokenRecord>,
    /// Secret digests of the tokens replaced by newer ones, newest last (at most
    /// [`REVOKED_JOIN_TOKENS_KEPT`]): a node presenting one is told its token was revoked.
    #[serde(default)]
    pub revoked_join_tokens: Vec<String>,
    /// Ids of members removed from the cluster: never given to another node, and a node with
    /// one of them is refused.
    #[serde(default)]
    pub removed_members: BTreeSet<u64>,
}

/// Revoked join-token digests remembered (to tell a joiner why it is refused).
pub const REVOKED_JOIN_TOKENS_KEPT: usize = 16;

/// The cluster's current join token, as the members check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinTokenRecord {
    /// SHA-256 of the token's secret, lowercase hex.
    pub secret_sha256: String,
    /// Seconds since the Unix epoch when it was created.
    pub created_at: u64,
    /// Seconds since the Unix epoch after which it admits no node.
    pub expires_at: u64,
}

/// An access key of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyEntry {
    pub secret: String,
    pub admin: bool,
    /// The key's IAM policy document (JSON, validated by `shoal-policy` before it is proposed);
    /// `None`: the key may do everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// A change to the metadata, proposed to the metadata group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Creates the cluster's first state (the bootstrap node's first entry).
    Init { cluster_id: String, first: Member },
    /// Adds a node; the result is its id.
    AddMember {
        api_addr: String,
        cluster_addr: String,
        joined_at: u64,
        /// The joining process's random id ([`Member::instance`]).
        #[serde(default)]
        instance: String,
        /// The newest metadata format the joining node reads ([`Member::format`]).
        #[serde(default = "format_one")]
        format: u64,
    },
    /// Changes the addresses of a member (a node restarted on other ports), and records the
    /// newest metadata format it reads (a node restarted on a newer binary).
    UpdateMember {
        id: u64,
        api_addr: String,
        cluster_addr: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<u64>,
    },
    /// Creates a table with `partitions` partitions of equal hash ranges (one, covering the
    /// whole hash space, unless the table's provisioned throughput asks for more; format 3).
    CreateTable {
        meta: TableMeta,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        partitions: u64,
    },
    /// Replaces a table's definition if its version is still `expected_version`.
    ReplaceTable {
        expected_version: u64,
        meta: TableMeta,
    },
    /// Replaces a table's definition unconditionally (the node's own index transitions).
    SetTable { meta: TableMeta },
    /// Deletes a table.
    DeleteTable { name: String, id: String },
    /// Adds an access key (no-op if the id was deleted before).
    PutAccessKey {
        id: String,
        secret: String,
        admin: bool,
    },
    /// Deletes an access key everywhere.
    DeleteAccessKey { id: String },
    /// Makes `token` the cluster's join token; the one it replaces is revoked.
    SetJoinToken { token: JoinTokenRecord },
    /// Starts decommissioning member `id`: its replicas move to the other members.
    DecommissionMember { id: u64 },
    /// Removes member `id` (decommissioned or dead, holding no replica any more) for good.
    RemoveMember { id: u64 },
    /// Declares member `id` dead (the metadata leader has not heard from it for the dead-node
    /// timeout): its replicas are replaced on live members, then it is removed.
    DeclareDead { id: u64 },
    /// Sets the replicas of partition `partition` of table `table_id`, if its generation is
    /// still `generation` (placement computed the change from that state); bumps the generation.
    SetReplicas {
        table_id: String,
        partition: u64,
        generation: u64,
        replicas: Vec<u64>,
    },
    /// Splits partition `partition` of table `table_id` at hash `at`, if its epoch is still
    /// `epoch` (format 4): it keeps the hashes below `at`, and a new partition on the same
    /// replicas, with `parent` set, takes the rest; both get the new epoch. The partition's own
    /// log then carries the split (`shoal_storage::Command::Split`), and the child's replicas
    /// start from their copy of the parent's rows. `Conflict` when the epoch moved, `NotFound`
    /// for an unknown partition or an `at` outside its range (or at its start).
    SplitPartition {
        table_id: String,
        partition: u64,
        epoch: u64,
        at: u64,
    },
    /// Partition `partition` of table `table_id`, split off its parent, runs (its leader
    /// says so): placement may move it from now on (format 4).
    SplitSettled { table_id: String, partition: u64 },
    /// Sets (or with `None` removes) the policy of access key `id`; `NotFound` for an unknown
    /// key.
    SetAccessKeyPolicy {
        id: String,
        #[serde(default)]
        policy: Option<String>,
    },
}

/// The outcome of one [`MetaCommand`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetaResult {
    Ok,
    NodeId(u64),
    Table(Box<TableEntry>),
    TableExists(String),
    TableNotFound(String),
    /// The table changed since the caller read it (`ReplaceTable`'s version check).
    Conflict(String),
    /// `DeleteAccessKey` of an unknown key.
    NotFound,
}

impl MetaState {
    /// The voters the metadata group should have: the 5 lowest active member ids once there are
    /// 5 active members or more, else the [`REPLICATION_FACTOR`] lowest.
    pub fn desired_meta_voters(&self) -> Vec<u64> {
        let active: Vec<u64> = self.active_members().collect();
        let n = if active.len() >= META_VOTERS_LARGE {
            META_VOTERS_LARGE
        } else {
            REPLICATION_FACTOR
        };
        active.into_iter().take(n).collect()
    }

    /// The metadata format the cluster writes: the oldest any member reads (at most this
    /// binary's [`META_FORMAT_VERSION`]).
    pub fn write_format(&self) -> u64 {
        self.members
            .values()
            .map(|m| m.format)
            .min()
            .unwrap_or(META_FORMAT_VERSION)
            .min(META_FORMAT_VERSION)
    }

    /// The ids of the members that take replicas (not being decommissioned).
    pub fn active_members(&self) -> impl Iterator<Item = u64> + '_ {
        self.members
            .values()
            .filter(|m| m.state.is_active())
            .map(|m| m.id)
    }

    /// The table with id `id`.
    pub fn table_by_id(&self, id: &str) -> Option<&TableEntry> {
        self.tables.values().find(|t| t.meta.id == id)
    }

    /// The table and partition of Raft group `group`.
    pub fn partition(&self, group: u64) -> Option<(&TableEntry, &PartitionEntry)> {
        self.tables
            .values()
            .find_map(|t| t.partitions.get(group).map(|p| (t, p)))
    }

    /// Applies `command`; deterministic.
    pub fn apply(&mut self, command: MetaCommand) -> MetaResult {
        match command {
            MetaCommand::Init { cluster_id, first } => {
                if self.cluster_id.is_empty() {
                    self.cluster_id = cluster_id;
                    self.next_partition_id = self.next_partition_id.max(1);
                    self.members.insert(first.id, first);
                    self.epoch += 1;
                }
                MetaResult::Ok
            }
            MetaCommand::AddMember {
                api_addr,
                cluster_addr,
                joined_at,
                instance,
                format,
            } => {
                if let Some(m) = self
                    .members
                    .values_mut()
                    .find(|m| m.cluster_addr == cluster_addr)
                {
                    if instance.is_empty() || m.instance == instance {
                        // A retried join of the same node gets the same id.
                        return MetaResult::NodeId(m.id);
                    }
                    // Another process at a member's address: the old member's node is gone
                    // (its data was wiped, or another machine took the address). Giving the new
                    // node the old id would let it vote again in terms the old one voted in.
                    m.state = MemberState::Dead;
                    m.cluster_addr = String::new();
                }
                // Ids are never reused, not even those of removed members.
                let id = self
                    .members
                    .keys()
                    .chain(self.removed_members.iter())
                    .max()
                    .copied()
                    .unwrap_or(0)
                    + 1;
                self.members.insert(
                    id,
                    Member {
                        id,
                        api_addr,
                        cluster_addr,
                        joined_at,
                        state: MemberState::Active,
                        instance,
                        format,
                    },
                );
                self.epoch += 1;
                MetaResult::NodeId(id)
            }
            MetaCommand::UpdateMember {
                id,
                api_addr,
                cluster_addr,
                format,
            } => {
                if let Some(m) = self.members.get_mut(&id) {
                    m.api_addr = api_addr;
                    m.cluster_addr = cluster_addr;
                    if let Some(f) = format {
                        m.format = f;
                    }
                    self.epoch += 1;
                }
                MetaResult::Ok
            }
            MetaCommand::CreateTable { meta, partitions } => {
                if self.tables.contains_key(&meta.name) {
                    return MetaResult::TableExists(meta.name);
                }
                self.epoch += 1;
                let mut counts = self.replica_counts();
                let ranges =
                    shoal_catalog::even_ranges(partitions.clamp(1, MAX_INITIAL_PARTITIONS));
                let mut entries = Vec::with_capacity(ranges.len());
                for (hash_start, hash_end) in ranges {
                    let id = self.next_partition_id.max(1);
                    self.next_partition_id = id + 1;
                    // Each partition on the members holding the fewest replicas, counting the
                    // ones placed just before it, so a table's partitions spread over the nodes.
                    let replicas = placement::least_loaded(&counts, &[], self.replication());
                    for r in &replicas {
                        *counts.entry(*r).or_default() += 1;
                    }
                    entries.push(PartitionEntry {
                        id,
                        index: None,
                        hash_start,
                        hash_end,
                        epoch: self.epoch,
                        replicas,
                        preferred_leader: None,
                        generation: 0,
                        parent: None,
                        splitting: false,
                    });
                }
                let entry = TableEntry {
                    partitions: PartitionMap::new(entries),
                    meta,
                };
                self.tables.insert(entry.meta.name.clone(), entry.clone());
                MetaResult::Table(Box::new(entry))
            }
            MetaCommand::ReplaceTable {
                expected_version,
                meta,
            } => match self.tables.get_mut(&meta.name) {
                None => MetaResult::TableNotFound(meta.name),
                Some(t) if t.meta.id != meta.id || t.meta.version != expected_version => {
                    MetaResult::Conflict(meta.name)
                }
                Some(t) => {
                    t.meta = meta;
                    self.epoch += 1;
                    MetaResult::Table(Box::new(t.clone()))
                }
            },
            MetaCommand::SetTable { meta } => match self.tables.get_mut(&meta.name) {
                Some(t) if t.meta.id == meta.id => {
                    t.meta = meta;
                    self.epoch += 1;
                    MetaResult::Table(Box::new(t.clone()))
                }
                _ => MetaResult::TableNotFound(meta.name),
            },
            MetaCommand::PutAccessKey { id, secret, admin } => {
                if !self.deleted_access_keys.contains(&id) {
                    self.access_keys.insert(
                        id,
                        AccessKeyEntry {
                            secret,
                            admin,
                            policy: None,
                        },
                    );
                }
                MetaResult::Ok
            }
            MetaCommand::DeleteAccessKey { id } => {
                let existed = self.access_keys.remove(&id).is_some();
                self.deleted_access_keys.insert(id);
                if existed {
                    MetaResult::Ok
                } else {
                    MetaResult::NotFound
                }
            }
            MetaCommand::SetAccessKeyPolicy { id, policy } => match self.access_keys.get_mut(&id) {
                Some(entry) => {
                    entry.policy = policy;
                    MetaResult::Ok
                }
                None => MetaResult::NotFound,
            },
            MetaCommand::SetJoinToken { token } => {
                if let Some(old) = self.join_token.replace(token)
                    && Some(&old.secret_sha256)
                        != self.join_token.as_ref().map(|t| &t.secret_sha256)
                {
                    self.revoked_join_tokens.push(old.secret_sha256);
                    let excess = self
                        .revoked_join_tokens
                        .len()
                        .saturating_sub(REVOKED_JOIN_TOKENS_KEPT);
                    self.revoked_join_tokens.drain(..excess);
                }
                MetaResult::Ok
            }
            MetaCommand::DecommissionMember { id } => {
                let active = self
                    .members
                    .values()
                    .filter(|m| m.state.is_active())
                    .count();
                match self.members.get_mut(&id) {
                    None => MetaResult::NotFound,
                    Some(m) if !m.state.is_active() => MetaResult::Ok,
                    Some(_) if active <= 1 => {
                        MetaResult::Conflict("the last active member cannot be removed".into())
                    }
                    Some(m) => {
                        m.state = MemberState::Leaving;
                        self.epoch += 1;
                        MetaResult::Ok
                    }
                }
            }
            MetaCommand::DeclareDead { id } => {
                let others_active = self
                    .members
                    .values()
                    .filter(|m| m.id != id && m.state.is_active())
                    .count();
                match self.members.get_mut(&id) {
                    None => MetaResult::NotFound,
                    Some(m) if m.state == MemberState::Dead => MetaResult::Ok,
                    Some(_) if others_active == 0 => {
                        MetaResult::Conflict("the last active member cannot be dead".into())
                    }
                    Some(m) => {
                        m.state = MemberState::Dead;
                        self.epoch += 1;
                        MetaResult::Ok
                    }
                }
            }
            MetaCommand::RemoveMember { id } => {
                let holds = self
                    .tables
                    .values()
                    .any(|t| t.partitions.all().iter().any(|p| p.replicas.contains(&id)));
                match self.members.get(&id) {
                    None => MetaResult::NotFound,
                    Some(m) if m.state.is_active() || holds => MetaResult::Conflict(format!(
                        "node {id} still holds replicas or was not decommissioned"
                    )),
                    Some(_) => {
                        self.members.remove(&id);
                        self.removed_members.insert(id);
                        self.epoch += 1;
                        MetaResult::Ok
                    }
                }
            }
            MetaCommand::SetReplicas {
                table_id,
                partition,
                generation,
                replicas,
            } => {
                let epoch = self.epoch + 1;
                let Some(p) = self.partition_mut(&table_id, partition) else {
                    return MetaResult::NotFound;
                };
                if p.generation != generation {
                    return MetaResult::Conflict(format!("partition {partition}"));
                }
                p.replicas = replicas;
                p.generation += 1;
                self.epoch = epoch;
                MetaResult::Ok
            }
            MetaCommand::SplitPartition {
                table_id,
                partition,
                epoch,
                at,
            } => self.split_partition(&table_id, partition, epoch, at),
            MetaCommand::SplitSettled {
                table_id,
                partition,
            } => {
                let epoch = self.epoch + 1;
                let Some(p) = self.partition_mut(&table_id, partition) else {
                    return MetaResult::NotFound;
                };
                if p.splitting {
                    p.splitting = false;
                    self.epoch = epoch;
                }
                MetaResult::Ok
            }
            MetaCommand::DeleteTable { name, id } => match self.tables.get(&name) {
                Some(t) if t.meta.id == id => {
                    self.tables.remove(&name);
                    self.epoch += 1;
                    MetaResult::Ok
                }
                _ => MetaResult::TableNotFound(name),
            },
        }
    }
}

impl MetaState {
    /// Partition `partition` of the table with id `table_id`, to change.
    fn partition_mut(&mut self, table_id: &str, partition: u64) -> Option<&mut PartitionEntry> {
        self.tables
            .values_mut()
            .filter(|t| t.meta.id == table_id)
            .find_map(|t| t.partitions.get_mut(partition))
    }

    fn split_partition(
        &mut self,
        table_id: &str,
        partition: u64,
        epoch: u64,
        at: u64,
    ) -> MetaResult {
        let child_id = self.next_partition_id.max(1);
        let new_epoch = self.epoch + 1;
        let write_format = self.write_format();
        let Some(table) = self.tables.values_mut().find(|t| t.meta.id == table_id) else {
            return MetaResult::NotFound;
        };
        // Members before format 5 feed a table's global indexes from its one partition: while
        // one of them is in the cluster such a table does not split (one may have been added
        // since the leader decided to split).
        if write_format < GLOBAL_INDEX_SPLIT_FORMAT
            && table
                .meta
                .indexes
                .iter()
                .any(|d| d.kind == shoal_types::index::IndexKind::Global)
        {
            return MetaResult::Conflict(table.meta.name.clone());
        }
        let Some(p) = table.partitions.get_mut(partition) else {
            return MetaResult::NotFound;
        };
        if p.epoch != epoch {
            return MetaResult::Conflict(format!("partition {partition}"));
        }
        if at <= p.hash_start || at > p.hash_end {
            return MetaResult::NotFound;
        }
        let child = PartitionEntry {
            id: child_id,
            index: p.index,
            hash_start: at,
            hash_end: p.hash_end,
            epoch: new_epoch,
            replicas: p.replicas.clone(),
            generation: 0,
            preferred_leader: p.preferred_leader,
            parent: Some(partition),
            splitting: true,
        };
        p.hash_end = at - 1;
        p.epoch = new_epoch;
        table.partitions.insert(child);
        self.next_partition_id = child_id + 1;
        self.epoch = new_epoch;
        MetaResult::Ok
    }
}

#[cfg(test)]
mod tests;

//! The local replicas follow the placement: a partition placed on this node after its table
//! opened here is opened (files, shipper; its group joins and catches up by snapshot), and one
//! placed elsewhere is closed and deleted once its group no longer counts this node.
//!
//! A displaced replica stays until the group's leader has removed this node from the group: the
//! leader adds the new replica and promotes it before it removes the old one (see
//! `cluster/placement.rs`), and this node asks the leader (its `STATUS`) rather than trust its
//! own copy of the group, which may never apply the change that removed it (a removed node gets
//! no more messages).

use std::sync::Arc;

use shoal_catalog::{DataError, TableMeta};
use shoal_meta::TableEntry;
use shoal_storage::SqlCipherEngine;
use shoal_types::index::{IndexKind, IndexStatus};

use crate::NodeError;
use crate::backend::{NodeBackend, TableHandle, blocking, internal, partition_path};
use crate::catalog::PartitionRecord;
use crate::cluster::Cluster;
use crate::local::local_partitions;

impl NodeBackend {
    /// Makes the local replicas of `handle`'s table match `entry`'s placement.
    pub(crate) async fn follow_placement(
        &self,
        cluster: &Arc<Cluster>,
        handle: &Arc<TableHandle>,
        entry: &TableEntry,
    ) -> Result<(), DataError> {
        let handle = &self.sync_ranges(handle, entry).await?;
        self.add_partitions(handle, entry, cluster.node_id).await?;
        let displaced: Vec<u64> = handle
            .partitions
            .iter()
            .map(|p| p.record.id)
            .filter(|id| {
                entry
                    .partitions
                    .get(*id)
                    .is_some_and(|p| !p.replicas.contains(&cluster.node_id))
            })
            .collect();
        for id in displaced {
            if self.removed_from_group(cluster, entry, id).await {
                let current = self.handle(&entry.meta.name)?;
                self.remove_partition(cluster, &current, id).await?;
            }
        }
        Ok(())
    }

    /// Gives the local replicas of `handle`'s table the hash ranges `entry` maps them to (a
    /// split narrowed one); returns the table's current handle.
    async fn sync_ranges(
        &self,
        handle: &Arc<TableHandle>,
        entry: &TableEntry,
    ) -> Result<Arc<TableHandle>, DataError> {
        let range_of = |id: u64| entry.partitions.get(id).map(|p| (p.hash_start, p.hash_end));
        if handle.partitions.iter().all(|h| {
            range_of(h.record.id).is_none_or(|r| r == (h.record.hash_start, h.record.hash_end))
        }) {
            return Ok(Arc::clone(handle));
        }
        let partitions = handle
            .partitions
            .iter()
            .map(|h| {
                let mut h = h.clone();
                if let Some((start, end)) = range_of(h.record.id) {
                    h.record.hash_start = start;
                    h.record.hash_end = end;
                }
                h
            })
            .collect();
        let meta = handle.meta.read().clone();
        let next = Arc::new(handle.with_partitions(partitions));
        self.install(&meta, &next).await?;
        Ok(next)
    }

    /// Makes `next` the table's handle: in the local catalog first (with `meta`), then for
    /// requests.
    async fn install(&self, meta: &TableMeta, next: &Arc<TableHandle>) -> Result<(), DataError> {
        let record = next.record_with(meta.clone());
        let catalog = self.catalog.clone();
        blocking(move || catalog.put(&record))
            .await?
            .map_err(internal)?;
        self.tables
            .write()
            .insert(meta.name.clone(), Arc::clone(next));
        Ok(())
    }

    /// Whether the leader of group `id` (asked among the partition's placed replicas) no longer
    /// counts this node as a voter or learner.
    async fn removed_from_group(
        &self,
        cluster: &Arc<Cluster>,
        entry: &TableEntry,
        id: u64,
    ) -> bool {
        let Some(part) = entry.partitions.get(id) else {
            return false;
        };
        for &node in &part.replicas {
            let Some(addr) = cluster.peer_addr(node) else {
                continue;
            };
            let (_, status) = crate::cluster::ask(Arc::clone(cluster), node, addr).await;
            let Some(status) = status else {
                continue;
            };
            if let Some(g) = status
                .groups
                .iter()
                .find(|g| g.group == id && g.role == "Leader")
            {
                return !g.voters.contains(&cluster.node_id)
                    && !g.learners.contains(&cluster.node_id);
            }
        }
        false
    }

    /// Closes and deletes the local replica of partition `id` of `handle`'s table.
    async fn remove_partition(
        &self,
        cluster: &Cluster,
        handle: &Arc<TableHandle>,
        id: u64,
    ) -> Result<(), DataError> {
        if let Err(e) = cluster.raft.remove_group(id).await {
            tracing::warn!(group = id, error = %e, "removing a partition group failed");
        }
        self.groups.lock().remove(&id);
        let meta = handle.meta.read().clone();
        let next = Arc::new(
            handle.with_partitions(
                handle
                    .partitions
                    .iter()
                    .filter(|p| p.record.id != id)
                    .cloned()
                    .collect(),
            ),
        );
        self.install(&meta, &next).await?;
        // The files (the partition's and its GSI shards) go once the catalog no longer names it
        // (a crash in between leaves an orphan file, never a catalog entry without its file).
        let dir = handle.dir.clone();
        blocking(move || {
            let mut paths = vec![partition_path(&dir, id)];
            paths.extend(crate::gsi::gsi_files(&dir, None, Some(id)));
            for path in paths {
                if let Err(e) = SqlCipherEngine::destroy(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove partition file");
                }
            }
        })
        .await?;
        tracing::info!(table = %meta.name, partition = id, "replica moved to another node: removed here");
        Ok(())
    }

    /// Opens the replicas this node holds of partitions placed on it after the table opened
    /// here (the partition grew or moved onto this node): files, shippers, local catalog. The
    /// table's handle is replaced by one with the new partitions; their groups are created next.
    async fn add_partitions(
        &self,
        handle: &Arc<TableHandle>,
        entry: &TableEntry,
        me: u64,
    ) -> Result<(), DataError> {
        let mut added: Vec<PartitionRecord> = Vec::new();
        // Children split off a local replica: their rows are copied from it first.
        let mut copies = Vec::new();
        for record in local_partitions(entry, me) {
            if handle.partitions.iter().any(|h| h.record.id == record.id) {
                continue;
            }
            let Some(p) = entry.partitions.get(record.id) else {
                continue;
            };
            match self.child_rows(handle, p) {
                // The parent's replica has not applied the split yet.
                Err(()) => continue,
                Ok(Some((parent, child))) => copies.push((record.id, parent.partition, child)),
                Ok(None) => {}
            }
            added.push(record);
        }
        if added.is_empty() {
            return Ok(());
        }
        let meta = handle.meta.read().clone();
        let key = self.ring.data_key_for(&meta.id).map_err(internal)?;
        let opened = {
            let (dir, meta) = (handle.dir.clone(), Arc::clone(&meta));
            let added = added.clone();
            blocking(move || {
                for (id, parent, child) in &copies {
                    crate::split::copy_child(&dir, *id, parent, child, &key)?;
                }
                added
                    .iter()
                    .map(|p| crate::backend::open_partition(&dir, p, &meta, &key))
                    .collect::<Result<Vec<_>, NodeError>>()
            })
            .await?
            .map_err(internal)?
        };
        let mut partitions = handle.partitions.clone();
        partitions.extend(opened);
        partitions.sort_by_key(|p| p.record.hash_start);
        let next = Arc::new(handle.with_partitions(partitions));
        next.set_indexes(&meta.indexes).map_err(internal)?;
        self.install(&meta, &next).await?;
        // A backfill running on the old handle stops when it sees the handle replaced.
        let work = self.index_work();
        for def in meta
            .indexes
            .iter()
            .filter(|d| d.kind == IndexKind::Global && d.status == IndexStatus::Creating)
        {
            work.spawn_build(&next, def.id);
        }
        tracing::info!(
            table = %meta.name,
            partitions = ?added.iter().map(|p| p.id).collect::<Vec<_>>(),
            "replicas placed on this node opened"
        );
        Ok(())
    }
}

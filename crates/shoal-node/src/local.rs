//! The local side of table DDL: the metadata group decides (see [`crate::cluster`]); each node
//! then makes its own replicas match: creates a table's files and data key, applies a new
//! definition (SSE key, index files), or removes a dropped table. [`NodeBackend::reconcile`]
//! runs after every metadata change and once a second.

use std::path::PathBuf;
use std::sync::Arc;

use shoal_catalog::{DataError, TableMeta};
use shoal_meta::TableEntry;
use shoal_storage::SqlCipherEngine;
use shoal_types::index::{IndexDef, IndexStatus};

use crate::NodeError;
use crate::backend::{
    NodeBackend, TableHandle, blocking, internal, open_table, partition_path, table_kms_key,
};
use crate::catalog::{PartitionRecord, TableRecord};
use crate::cluster::Cluster;
use crate::cluster::sm::{PartitionSm, Pending};
use crate::cluster::snapshot::{LocalReplica, Snapshots};
use crate::gsi::Gsi;

impl NodeBackend {
    /// The node's cluster.
    pub(crate) fn cluster(&self) -> Result<Arc<Cluster>, DataError> {
        self.cluster
            .get()
            .cloned()
            .ok_or_else(|| internal("the node is not serving a cluster"))
    }

    /// The table `name`, bringing the local catalog up to date with the cluster's first if this
    /// node does not know it (it may have been created through another node a moment ago).
    pub(crate) async fn handle_fresh(&self, name: &str) -> Result<Arc<TableHandle>, DataError> {
        if let Ok(h) = self.handle(name) {
            return Ok(h);
        }
        let cluster = self.cluster()?;
        cluster.refresh_meta().await?;
        if let Some(t) = cluster.meta().tables.get(name) {
            let id = t.meta.id.clone();
            return self.wait_local(name, &id).await;
        }
        self.handle(name)
    }

    /// Waits until the table `name` with id `id` is open locally (reconciling now).
    pub(crate) async fn wait_local(
        &self,
        name: &str,
        id: &str,
    ) -> Result<Arc<TableHandle>, DataError> {
        let deadline = std::time::Instant::now() + crate::cluster::ROUTE_DEADLINE;
        loop {
            if let Ok(h) = self.handle(name)
                && h.meta.read().id == id
            {
                return Ok(h);
            }
            // Dropped or replaced in the catalog since (a DeleteTable raced the caller): it
            // will never open here. Checked against a fresh copy, since the local one may lag.
            if let Ok(cluster) = self.cluster()
                && cluster
                    .meta()
                    .tables
                    .get(name)
                    .is_none_or(|t| t.meta.id != id)
            {
                cluster.refresh_meta().await?;
                if cluster
                    .meta()
                    .tables
                    .get(name)
                    .is_none_or(|t| t.meta.id != id)
                {
                    return Err(DataError::TableNotFound(name.to_string()));
                }
            }
            if std::time::Instant::now() >= deadline {
                return Err(internal(format!(
                    "table {name} did not open on this node in time"
                )));
            }
            self.reconcile().await;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Makes the local tables match the cluster's catalog.
    pub(crate) async fn reconcile(&self) {
        let Ok(cluster) = self.cluster() else {
            return;
        };
        let meta = cluster.meta();
        if meta.removed_members.contains(&cluster.node_id) {
            self.removed_from_cluster(&cluster);
            return;
        }
        let ddl = self.ddl.lock().await;
        self.sync_keys(&cluster, &meta);
        let local: Vec<(String, String)> = self
            .tables
            .read()
            .iter()
            .map(|(n, h)| (n.clone(), h.meta.read().id.clone()))
            .collect();
        for (name, id) in local {
            if meta.tables.get(&name).is_none_or(|t| t.meta.id != id)
                && let Err(e) = self.delete_local(&cluster, &name).await
            {
                tracing::warn!(table = %name, error = %e, "removing a dropped table failed");
            }
        }
        for entry in meta.tables.values() {
            let existing = self.tables.read().get(&entry.meta.name).cloned();
            let result = match existing {
                None => self.create_local(entry, cluster.node_id).await.map(|_| ()),
                Some(h) if h.meta.read().version != entry.meta.version => {
                    self.replace_local(&h, entry.meta.clone()).await.map(|_| ())
                }
                Some(h) => self.follow_placement(&cluster, &h, entry).await,
            };
            if let Err(e) = result {
                tracing::warn!(table = %entry.meta.name, error = %e, "opening a table locally failed; retrying");
                continue;
            }
            self.ensure_groups(&cluster, entry).await;
            self.drop_split_rows(&cluster, &entry.meta.name).await;
        }
        drop(ddl);
        // The partitions this node leads follow their table's stream (through their logs).
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            self.sync_stream_settings(&cluster),
        )
        .await;
        // Global indexes being created become active once every partition's backfill is done.
        let followed: Vec<Arc<TableHandle>> = self
            .tables
            .read()
            .values()
            .filter(|h| {
                h.meta.read().indexes.iter().any(|d| {
                    d.kind == shoal_types::index::IndexKind::Global
                        && d.status == IndexStatus::Creating
                })
            })
            .cloned()
            .collect();
        for handle in followed {
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                self.follow_index_status(&handle),
            )
            .await;
        }
    }

    /// This node was removed from the cluster (`shoal cluster remove`): it marks its data
    /// directory so that it never starts with this identity again, and stops serving (fail-stop:
    /// requests are refused, then the process exits).
    fn removed_from_cluster(&self, cluster: &Cluster) {
        if cluster.fail_stop.current().is_some() {
            return;
        }
        let why = format!(
            "node {} of cluster {}, removed at {} (seconds since the epoch)",
            cluster.node_id,
            cluster.identity.cluster_id,
            crate::catalog::now_secs()
        );
        let marker = self.data_dir.join(crate::REMOVED_FILE);
        if let Err(e) = std::fs::write(&marker, format!("{why}\n"))
            .and_then(|()| std::fs::File::open(&marker)?.sync_all())
        {
            tracing::error!(error = %e, "could not mark the data directory as removed");
        }
        tracing::error!(
            node = cluster.node_id,
            "this node was removed from the cluster (shoal cluster remove): it stops serving and will not start with this data directory again"
        );
        cluster.fail_stop.record(
            "membership",
            "this node was removed from the cluster (shoal cluster remove)",
        );
    }

    /// Makes the local access keys match the cluster's, and offers the cluster the local keys it
    /// does not know (the first admin key, keys created while the node was stopped).
    fn sync_keys(&self, cluster: &Arc<Cluster>, meta: &shoal_meta::MetaState) {
        let unknown = match self.keys.sync(&meta.access_keys, &meta.deleted_access_keys) {
            Ok(unknown) => unknown,
            Err(e) => {
                tracing::warn!(error = %e, "updating the local access keys failed; retrying");
                return;
            }
        };
        let policies = crate::keys::policies_shareable(meta);
        for crate::keys::Unshared { key, admin, policy } in unknown {
            if policy.is_some() && !policies {
                // Shared without its policy, the key would get the cluster's (none: full access).
                tracing::warn!(access_key_id = %key.id, "an access key with a policy stays on this node until every node runs a version with policies");
                continue;
            }
            let Some(sharing) = self.keys.begin_share(&key.id) else {
                continue;
            };
            let cluster = Arc::clone(cluster);
            tokio::spawn(async move {
                let put = shoal_meta::MetaCommand::PutAccessKey {
                    id: key.id.clone(),
                    secret: key.secret.clone(),
                    admin,
                };
                let mut result = cluster.meta_propose(put).await.map(|_| ());
                if result.is_ok() && policy.is_some() {
                    let set = shoal_meta::MetaCommand::SetAccessKeyPolicy {
                        id: key.id.clone(),
                        policy,
                    };
                    result = cluster.meta_propose(set).await.map(|_| ());
                }
                drop(sharing);
                if let Err(e) = result {
                    tracing::warn!(access_key_id = %key.id, error = %e, "sharing an access key with the cluster failed; retrying");
                }
            });
        }
    }

    /// Creates the Raft groups of `entry`'s local partitions (once).
    async fn ensure_groups(&self, cluster: &Cluster, entry: &TableEntry) {
        let Some(handle) = self.tables.read().get(&entry.meta.name).cloned() else {
            return;
        };
        for p in entry.partitions.of(None) {
            if self.groups.lock().contains(&p.id) {
                continue;
            }
            let Some(sm) = partition_sm(
                &handle,
                p.id,
                &cluster.pending,
                &cluster.snapshots,
                &self.reconcile_soon,
            ) else {
                continue;
            };
            // The first replicas bootstrap the group; replicas placed later join it and catch up.
            // A partition split off another starts from the copies of its rows: only a replica
            // holding a complete copy bootstraps it.
            let first = p.generation == 0
                && (p.parent.is_none()
                    || handle
                        .partitions
                        .iter()
                        .find(|h| h.record.id == p.id)
                        .is_some_and(|h| h.partition.is_built().unwrap_or(false)));
            let init = if first {
                crate::cluster::group_init(cluster.node_id, &p.replicas)
            } else {
                shoal_raft::GroupInit::Join
            };
            let bootstrapped = matches!(init, shoal_raft::GroupInit::Bootstrap { .. });
            match cluster.raft.create_group(p.id, init, Box::new(sm)).await {
                Ok(()) => {
                    self.groups.lock().insert(p.id);
                    if bootstrapped && p.replicas == [cluster.node_id] {
                        // The only voter: leader at once, no election timeout.
                        let _ = cluster.raft.campaign(p.id).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(group = p.id, error = %e, "creating a partition group failed")
                }
            }
        }
    }

    /// The state machine of partition group `group`, if a local table has it.
    pub(crate) fn partition_sm_for_group(
        &self,
        group: u64,
        pending: &Arc<Pending>,
        snapshots: &Arc<Snapshots>,
    ) -> Option<PartitionSm> {
        let handles: Vec<Arc<TableHandle>> = self.tables.read().values().cloned().collect();
        handles
            .iter()
            .find_map(|h| partition_sm(h, group, pending, snapshots, &self.reconcile_soon))
    }

    /// Opens the replicas of a table the cluster created: data key, files, local catalog. A node
    /// holding none of its partitions still keeps the table (its definition, for requests it
    /// forwards to the replicas).
    async fn create_local(
        &self,
        entry: &TableEntry,
        me: u64,
    ) -> Result<Arc<TableHandle>, DataError> {
        let meta = entry.meta.clone();
        // Each table gets its own data key, stored in the catalog wrapped by the master key, or
        // by the table's own KMS key (SSESpecification; may call KMS, so off the async threads).
        let (key, data_key) = {
            let ring = self.ring.clone();
            let id = meta.id.clone();
            let kms_key = table_kms_key(&meta);
            blocking(move || ring.create_data_key_with(&id, kms_key.as_ref()))
                .await?
                .map_err(internal)?
        };
        let record = TableRecord {
            meta,
            partitions: local_partitions(entry, me),
            keys: crate::catalog::TableKeys::new(data_key),
        };
        let dir = self.data_dir.join("tables").join(&record.meta.id);
        let table_id = record.meta.id.clone();
        let handle = {
            let record = record.clone();
            let catalog = self.catalog.clone();
            blocking(move || -> Result<TableHandle, NodeError> {
                let handle = open_table(&dir, &record, &key)?;
                catalog.put(&record)?;
                Ok(handle)
            })
            .await?
            .map_err(|e| {
                self.ring.destroy(&table_id);
                internal(e)
            })?
        };
        let handle = Arc::new(handle);
        self.tables
            .write()
            .insert(record.meta.name.clone(), Arc::clone(&handle));
        // GSIs created with the table are empty: their "backfill" only confirms it.
        self.index_work().resume(&handle);
        tracing::info!(table = %record.meta.name, id = %record.meta.id, "table created");
        Ok(handle)
    }

    /// Applies a new definition of a table to the local replicas (SSE key, index files).
    async fn replace_local(
        &self,
        handle: &Arc<TableHandle>,
        meta: TableMeta,
    ) -> Result<Arc<TableMeta>, DataError> {
        let current = handle.meta.read().clone();
        let mut meta = meta;
        shoal_catalog::changes::rebase_indexes(&mut meta, &current);
        let mut keys = handle.keys.read().clone();
        if meta.sse != current.sse {
            // SSESpecification switched the table's KMS key: re-wrap the same data key.
            let ring = self.ring.clone();
            let id = meta.id.clone();
            let kms_key = table_kms_key(&meta);
            keys.data_key = blocking(move || ring.rewrap_table_key(&id, kms_key.as_ref()))
                .await?
                .map_err(internal)?;
        }
        // GlobalSecondaryIndexUpdates: the files of new indexes are created before the catalog
        // names them; indexes no longer stored stop being shipped to at once.
        let stored: Vec<IndexDef> = crate::gsi::stored_gsis(&meta.indexes).cloned().collect();
        let was_stored: Vec<u32> = crate::gsi::stored_gsis(&current.indexes)
            .map(|d| d.id)
            .collect();
        let added: Vec<IndexDef> = stored
            .iter()
            .filter(|d| !was_stored.contains(&d.id))
            .cloned()
            .collect();
        let removed: Vec<u32> = was_stored
            .iter()
            .copied()
            .filter(|id| !stored.iter().any(|d| d.id == *id))
            .collect();
        // Each local partition's shard of each new index.
        let opened = if added.is_empty() {
            Vec::new()
        } else {
            let key = self.ring.data_key_for(&meta.id).map_err(internal)?;
            let (dir, schema, added) = (handle.dir.clone(), meta.key_schema.clone(), added.clone());
            let parts: Vec<u64> = handle.partitions.iter().map(|p| p.record.id).collect();
            blocking(move || {
                let mut opened = Vec::new();
                for part in parts {
                    for def in &added {
                        opened.push((part, Gsi::open(&dir, def, &schema, key.as_bytes(), part)?));
                    }
                }
                Ok::<_, NodeError>(opened)
            })
            .await?
            .map_err(internal)?
        };
        let record = TableRecord {
            meta: meta.clone(),
            partitions: handle.partitions.iter().map(|p| p.record.clone()).collect(),
            keys: keys.clone(),
        };
        let catalog = self.catalog.clone();
        blocking(move || catalog.put(&record))
            .await?
            .map_err(internal)?;
        let indexes_changed = meta.indexes != current.indexes;
        let meta = Arc::new(meta);
        *handle.keys.write() = keys;
        for (part, gsi) in opened {
            if let Some(p) = handle.partitions.iter().find(|p| p.record.id == part) {
                p.gsis.write().insert(gsi.def.id, Arc::new(gsi));
            }
        }
        for p in &handle.partitions {
            let mut gsis = p.gsis.write();
            for id in &removed {
                gsis.remove(id);
            }
        }
        if indexes_changed {
            // Only the first call on a partition loads anything (done at open): cannot fail here
            // short of a broken disk, which the next write reports too.
            if let Err(e) = handle.set_indexes(&meta.indexes) {
                tracing::error!(table = %meta.name, error = %e, "updating the partitions' index definitions failed");
            }
        }
        *handle.meta.write() = meta.clone();
        let work = self.index_work();
        for def in added.iter().filter(|d| d.status == IndexStatus::Creating) {
            work.spawn_build(handle, def.id);
        }
        for id in removed {
            if meta.indexes.iter().any(|d| d.id == id) {
                work.spawn_delete(handle, id);
            } else {
                // Dropped from the definition outright: only the files are left to remove.
                let paths = crate::gsi::gsi_files(&handle.dir, Some(id), None);
                blocking(move || {
                    for path in &paths {
                        if let Err(e) = SqlCipherEngine::destroy(path) {
                            tracing::warn!(path = %path.display(), error = %e, "could not remove index file");
                        }
                    }
                })
                .await?;
            }
        }
        Ok(meta)
    }

    /// Removes a dropped table's local replicas: groups, catalog entry, data key, files.
    async fn delete_local(&self, cluster: &Cluster, name: &str) -> Result<(), DataError> {
        let handle = self.handle(name)?;
        let meta = handle.meta.read().clone();
        for p in &handle.partitions {
            if let Err(e) = cluster.raft.remove_group(p.record.id).await {
                tracing::warn!(group = p.record.id, error = %e, "removing a partition group failed");
            }
            self.groups.lock().remove(&p.record.id);
        }
        let catalog = self.catalog.clone();
        let owned = name.to_string();
        blocking(move || catalog.remove(&owned))
            .await?
            .map_err(internal)?;
        self.tables.write().remove(name);
        // Forgetting the data key makes the files unreadable even if they linger.
        self.ring.destroy(&meta.id);
        // Files go once the catalog no longer names them; a crash in between leaves an orphan
        // directory, never a table without files.
        let mut paths: Vec<PathBuf> = handle
            .partitions
            .iter()
            .map(|p| partition_path(&handle.dir, p.record.id))
            .collect();
        paths.extend(crate::gsi::gsi_files(&handle.dir, None, None));
        let dir = handle.dir.clone();
        drop(handle);
        blocking(move || {
            for path in &paths {
                if let Err(e) = SqlCipherEngine::destroy(path) {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove partition file");
                }
            }
            let _ = std::fs::remove_dir(&dir);
        })
        .await?;
        tracing::info!(table = %name, "table deleted");
        Ok(())
    }
}

/// The partitions of `entry`'s items placed on node `me`.
pub(crate) fn local_partitions(entry: &TableEntry, me: u64) -> Vec<PartitionRecord> {
    entry
        .partitions
        .of(None)
        .filter(|p| p.replicas.contains(&me))
        .map(|p| PartitionRecord {
            id: p.id,
            hash_start: p.hash_start,
            hash_end: p.hash_end,
        })
        .collect()
}

/// The state machine of the local replica of partition `id` of `handle`.
fn partition_sm(
    handle: &TableHandle,
    id: u64,
    pending: &Arc<Pending>,
    snapshots: &Arc<Snapshots>,
    split_applied: &Arc<tokio::sync::Notify>,
) -> Option<PartitionSm> {
    let p = handle.partitions.iter().find(|p| p.record.id == id)?;
    snapshots.register(
        id,
        LocalReplica {
            partition: Arc::downgrade(&p.partition),
            gsis: Arc::downgrade(&p.gsis),
            shipper: Arc::downgrade(&p.shipper),
            ready: Arc::clone(&p.ready),
        },
    );
    Some(PartitionSm {
        group: id,
        partition: Arc::clone(&p.partition),
        path: Arc::clone(&p.path),
        shipper: Arc::clone(&p.shipper),
        gsis: Arc::clone(&p.gsis),
        snapshots: Arc::clone(snapshots),
        pending: Arc::clone(pending),
        poisoned: Arc::clone(&p.poisoned),
        split_applied: Arc::clone(split_applied),
        applied: Arc::clone(&p.applied),
        durable: 0,
        metrics: snapshots.metrics(),
    })
}

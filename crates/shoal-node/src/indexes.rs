//! Background work on global secondary indexes: the backfill that creates one while its table
//! keeps serving, and the removal of a deleted one.
//!
//! Creating (`IndexStatus::Creating`, `backfilling`): the index files exist and every base
//! partition already writes outbox records for the index (`Partition::set_indexes`), so writes
//! made from then on reach it through the shippers. The backfill walks each base partition in
//! chunks (`Partition::backfill`, under the partition's apply lock, so each chunk is ordered with
//! the writes) and writes an outbox `put` of every existing item's entry; the shippers apply those
//! in the same order as the writes, so an entry can never be overwritten by an older state. Once
//! every local shipper has shipped past the end of the backfill, the index is built on this
//! node's replicas (`NodeBackend::gsi_built`); it becomes `Active` here (catalog record) once the
//! reconciler has heard the same from a replica of every other base partition
//! (`NodeBackend::follow_index_status`), so no node calls an index active while a shard of it
//! elsewhere is still being filled. A restart before that runs the backfill again from the start
//! (puts of the current state are idempotent).
//!
//! These transitions do not bump `TableMeta::version`: they are the node's, not a client's, so
//! a concurrent UpdateTable must not fail because of them; `replace_table` rebases the client's
//! index list onto them instead (`shoal_catalog::changes::rebase_indexes`).
//!
//! Deleting: the index is dropped from the open indexes at once (no more shipping; the base
//! partitions ignore a `Deleting` index), its files are removed, then its definition leaves the
//! catalog. A restart in between finishes the job.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use shoal_storage::SqlCipherEngine;
use shoal_types::index::{IndexKind, IndexStatus};

use crate::NodeError;
use crate::backend::TableHandle;
use crate::catalog::Catalog;
use crate::gsi::{BACKFILL_CHUNK, gsi_files};

/// What the background index work needs of the node (cheap to clone).
#[derive(Clone)]
pub(crate) struct IndexWork {
    pub(crate) catalog: Arc<Catalog>,
    /// The node's open tables; weak, so work left running stops once the node is dropped
    /// (a restarted in-process node must not see the old one's tasks write its catalog).
    pub(crate) tables: Weak<RwLock<HashMap<String, Arc<TableHandle>>>>,
    /// The node's DDL lock: catalog changes are serialized with table DDL and key rotation.
    pub(crate) ddl: Arc<tokio::sync::Mutex<()>>,
    /// See `NodeBackend::gsi_built`.
    pub(crate) built: Arc<parking_lot::Mutex<std::collections::HashSet<(String, u32)>>>,
    /// Whether the node serves a cluster: a backfill finished here then leaves the activation
    /// to the reconciler, which first asks the replicas of the partitions held elsewhere.
    pub(crate) clustered: bool,
    /// Wakes the reconciler (a backfill finished here).
    pub(crate) wake: Arc<tokio::sync::Notify>,
}

fn storage(e: impl std::fmt::Display) -> NodeError {
    NodeError::Storage(e.to_string())
}

impl IndexWork {
    /// Whether `handle` is still the open table of its name (not deleted or re-created).
    fn still_open(&self, handle: &Arc<TableHandle>) -> bool {
        let name = handle.meta.read().name.clone();
        self.tables.upgrade().is_some_and(|tables| {
            tables
                .read()
                .get(&name)
                .is_some_and(|h| Arc::ptr_eq(h, handle))
        })
    }

    /// Starts the work a table's index list asks for: backfills of indexes being created and
    /// removal of indexes being deleted (at start, after a restart interrupted them).
    pub(crate) fn resume(&self, handle: &Arc<TableHandle>) {
        let indexes = handle.meta.read().indexes.clone();
        for def in indexes.iter().filter(|d| d.kind == IndexKind::Global) {
            match def.status {
                IndexStatus::Creating => self.spawn_build(handle, def.id),
                IndexStatus::Deleting => self.spawn_delete(handle, def.id),
                IndexStatus::Active => {}
            }
        }
    }

    /// Backfills GSI `index` of the table in the background, then marks it active. Without a
    /// tokio runtime (never on a node) nothing happens; the next start resumes it.
    pub(crate) fn spawn_build(&self, handle: &Arc<TableHandle>, index: u32) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (work, handle) = (self.clone(), Arc::clone(handle));
        rt.spawn(async move {
            let mut delay = Duration::from_millis(100);
            loop {
                match work.build(&handle, index).await {
                    Ok(()) => return,
                    Err(e) if work.still_open(&handle) => {
                        tracing::warn!(index, error = %e, "creating a global secondary index failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                    Err(_) => return,
                }
            }
        });
    }

    /// Whether GSI `index` is still being created in the table's current definition.
    fn creating(&self, handle: &Arc<TableHandle>, index: u32) -> bool {
        self.still_open(handle)
            && handle
                .meta
                .read()
                .indexes
                .iter()
                .any(|d| d.id == index && d.status == IndexStatus::Creating)
    }

    async fn build(&self, handle: &Arc<TableHandle>, index: u32) -> Result<(), NodeError> {
        if handle.partitions.is_empty() {
            // No replica here: the index is built where the base partitions are, and this node
            // follows their status (`NodeBackend::follow_index_status`).
            return Ok(());
        }
        let key = (handle.meta.read().id.clone(), index);
        // Not built here until every local replica (including ones opened since) is.
        self.built.lock().remove(&key);
        let started = std::time::Instant::now();
        let mut items = 0usize;
        for part in &handle.partitions {
            let mut cursor: Option<Vec<u8>> = None;
            loop {
                if !self.creating(handle, index) {
                    return Ok(());
                }
                let (partition, after) = (Arc::clone(&part.partition), cursor.take());
                let next = tokio::task::spawn_blocking(move || {
                    partition.backfill(index, after, BACKFILL_CHUNK)
                })
                .await
                .map_err(storage)?
                .map_err(|e| NodeError::storage_in(e, &part.path))?;
                part.shipper.poke();
                items += BACKFILL_CHUNK;
                match next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        // Every backfill record is in an outbox: wait until the shippers carried them over.
        for part in &handle.partitions {
            part.shipper.caught_up().await;
        }
        if !self.still_open(handle) {
            return Ok(());
        }
        if self.clustered {
            self.built.lock().insert(key);
            self.wake.notify_one();
        } else {
            self.mark_active(handle, index).await?;
        }
        tracing::info!(
            index,
            chunks_of = BACKFILL_CHUNK,
            at_most_items = items,
            millis = started.elapsed().as_millis() as u64,
            "global secondary index backfilled on the local replicas"
        );
        Ok(())
    }

    /// Makes GSI `index` of `handle` active in the local catalog (if it is still being created).
    pub(crate) async fn mark_active(
        &self,
        handle: &Arc<TableHandle>,
        index: u32,
    ) -> Result<(), NodeError> {
        let _ddl = self.ddl.lock().await;
        if !self.creating(handle, index) {
            return Ok(());
        }
        let meta = shoal_catalog::changes::index_active(&handle.meta.read(), index);
        let record = handle.record_with(meta.clone());
        let catalog = Arc::clone(&self.catalog);
        tokio::task::spawn_blocking(move || catalog.put(&record))
            .await
            .map_err(storage)??;
        handle.set_indexes(&meta.indexes)?;
        *handle.meta.write() = Arc::new(meta);
        Ok(())
    }

    /// Removes the files of GSI `index` (already closed) and then its definition.
    pub(crate) fn spawn_delete(&self, handle: &Arc<TableHandle>, index: u32) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (work, handle) = (self.clone(), Arc::clone(handle));
        rt.spawn(async move {
            if let Err(e) = work.delete(&handle, index).await {
                tracing::warn!(index, error = %e, "removing a deleted global secondary index failed; the next start retries");
            }
        });
    }

    async fn delete(&self, handle: &Arc<TableHandle>, index: u32) -> Result<(), NodeError> {
        // Under the DDL lock: a data-key rotation never re-encrypts a file being removed.
        let _ddl = self.ddl.lock().await;
        if !self.still_open(handle) {
            return Ok(()); // DeleteTable removes every file
        }
        let deleting = handle
            .meta
            .read()
            .indexes
            .iter()
            .any(|d| d.id == index && d.status == IndexStatus::Deleting);
        if !deleting {
            return Ok(());
        }
        let paths = gsi_files(&handle.dir, Some(index), None);
        tokio::task::spawn_blocking(move || {
            paths
                .iter()
                .try_for_each(|p| SqlCipherEngine::destroy(p).map_err(storage))
        })
        .await
        .map_err(storage)??;
        let meta = shoal_catalog::changes::index_dropped(&handle.meta.read(), index);
        let record = handle.record_with(meta.clone());
        let catalog = Arc::clone(&self.catalog);
        tokio::task::spawn_blocking(move || catalog.put(&record))
            .await
            .map_err(storage)??;
        *handle.meta.write() = Arc::new(meta.clone());
        handle.set_indexes(&meta.indexes)?;
        tracing::info!(index, "global secondary index deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use shoal_catalog::{DataPlane, QueryRequest};
    use shoal_storage::Command;
    use shoal_types::index::{IndexDef, Projection, ProjectionType};
    use shoal_types::key::KeySchema;
    use shoal_types::{AttributeValue, Item};

    use super::*;
    use crate::OfflineNode;
    use crate::test_support::{attr, config, running, table_meta};
    use shoal_catalog::TableMeta;

    fn meta(name: &str) -> TableMeta {
        table_meta(name, &["g"])
    }

    fn by_g(status: IndexStatus) -> IndexDef {
        IndexDef {
            id: 1,
            name: "by_g".into(),
            kind: IndexKind::Global,
            key_schema: KeySchema {
                hash: attr("g"),
                range: None,
            }
            .into(),
            projection: Projection {
                kind: ProjectionType::All,
                non_key_attributes: Vec::new(),
            },
            status,
            backfilling: status == IndexStatus::Creating,
        }
    }

    async fn put(backend: &crate::backend::NodeBackend, meta: &TableMeta, pk: &str) {
        let item: Item = [
            ("pk".to_string(), AttributeValue::S(pk.into())),
            ("g".to_string(), AttributeValue::S("x".into())),
        ]
        .into_iter()
        .collect();
        backend
            .write(
                meta,
                Command::Put {
                    item,
                    condition: None,
                },
            )
            .await
            .unwrap();
    }

    /// The entries of `by_g` under `g = x`, polled until there are `want` of them (5 s).
    async fn wait_entries(backend: &crate::backend::NodeBackend, table: &str, want: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let meta = backend.table(table).await.unwrap();
            let page = backend
                .query(
                    &meta,
                    QueryRequest {
                        partition_key: AttributeValue::S("x".into()),
                        sort_prefix: Vec::new(),
                        sort: None,
                        forward: true,
                        exclusive_start: None,
                        limit: None,
                        byte_limit: usize::MAX,
                        filter: None,
                        consistent: false,
                        index: Some(1),
                    },
                )
                .await
                .unwrap();
            if page.items.len() == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} entries, want {want}",
                page.items.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_index_still_creating_at_start_is_backfilled_and_activated() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&dir);
        {
            let node = running(&config).await;
            let backend = node.admin().rotator().backend();
            let meta = backend.create_table(meta("t")).await.unwrap();
            for i in 0..300 {
                put(backend, &meta, &format!("k{i}")).await;
            }
            // As if the node died right after UpdateTable stored the new index: the catalog
            // names it (Creating), no backfill ran.
            let handle = backend.tables.read().get("t").cloned().unwrap();
            let mut next = TableMeta::clone(&meta);
            next.indexes.push(by_g(IndexStatus::Creating));
            backend.catalog.put(&handle.record_with(next)).unwrap();
            drop(handle);
            node.shutdown().await;
        }
        let node = OfflineNode::open(&config).await.unwrap();
        let backend = node.admin().rotator().backend();
        wait_entries(backend, "t", 300).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while backend.table("t").await.unwrap().indexes[0].status != IndexStatus::Active {
            assert!(std::time::Instant::now() < deadline, "index not activated");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!backend.table("t").await.unwrap().indexes[0].backfilling);
        assert_eq!(backend.index_stats("t", 1).await.unwrap().item_count, 300);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn data_key_rotation_re_encrypts_gsi_files_too() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&dir);
        {
            let node = running(&config).await;
            let backend = node.admin().rotator().backend();
            let mut m = meta("t");
            m.indexes.push(by_g(IndexStatus::Active));
            m.next_index_id = 2;
            let meta = backend.create_table(m).await.unwrap();
            for i in 0..20 {
                put(backend, &meta, &format!("k{i}")).await;
            }
            wait_entries(backend, "t", 20).await;
            let done = node.admin().rotator().rotate_data(Some("t")).await.unwrap();
            assert_eq!(
                done[0].partitions, 2,
                "the base partition and the GSI partition"
            );
            // Still readable and writable under the new key.
            put(backend, &meta, "after").await;
            wait_entries(backend, "t", 21).await;
            node.shutdown().await;
        }
        // After a restart the GSI file opens with the (new) current key.
        let node = OfflineNode::open(&config).await.unwrap();
        wait_entries(node.admin().rotator().backend(), "t", 21).await;
    }
}

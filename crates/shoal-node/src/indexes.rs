//! Background work on global secondary indexes: the backfill that creates one while its table
//! keeps serving, and the removal of a deleted one.
//!
//! Creating (`IndexStatus::Creating`, `backfilling`): the index files exist and every base
//! partition already writes outbox records for the index (`Partition::set_indexes`), so writes
//! made from then on reach it through the shippers. The backfill walks each base partition in
//! chunks (`Partition::backfill`, under the partition's apply lock, so each chunk is ordered with
//! the writes) and writes an outbox `put` of every existing item's entry; the shippers apply those
//! in the same order as the writes, so an entry can never be overwritten by an older state. Once
//! every shipper has shipped past the end of the backfill, the index becomes `Active` (catalog
//! record, version bump). A restart before that runs the backfill again from the start (puts of
//! the current state are idempotent).
//!
//! These transitions do not bump `TableMeta::version`: they are the node's, not a client's, so
//! a concurrent UpdateTable must not fail because of them; `replace_table` rebases the client's
//! index list onto them instead ([`rebase_indexes`]).
//!
//! Deleting: the index is dropped from the open indexes at once (no more shipping; the base
//! partitions ignore a `Deleting` index), its files are removed, then its definition leaves the
//! catalog. A restart in between finishes the job.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use shoal_api::backend::TableMeta;
use shoal_storage::SqlCipherEngine;
use shoal_types::index::{IndexKind, IndexStatus};

use crate::NodeError;
use crate::backend::TableHandle;
use crate::catalog::Catalog;
use crate::gsi::{BACKFILL_CHUNK, gsi_partitions, gsi_path};

/// Carries the node's own index transitions made since the client read the table (an index
/// that became `Active`, a deleted one that is gone) over to `next`, the client's new
/// definition based on an older read. Client changes (a new `Creating` index, `Deleting`) stay.
pub(crate) fn rebase_indexes(next: &mut TableMeta, current: &TableMeta) {
    next.indexes.retain_mut(|d| {
        match current.indexes.iter().find(|c| c.id == d.id) {
            Some(c) => {
                if c.status == IndexStatus::Active && d.status == IndexStatus::Creating {
                    d.status = IndexStatus::Active;
                    d.backfilling = false;
                }
                true
            }
            // Not in the current definition: new (Creating), or deleted by the node meanwhile.
            None => d.status != IndexStatus::Deleting,
        }
    });
    let ids: Vec<u32> = next.indexes.iter().map(|d| d.id).collect();
    next.index_throughput.retain(|t| ids.contains(&t.index));
}

/// What the background index work needs of the node (cheap to clone).
#[derive(Clone)]
pub(crate) struct IndexWork {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) tables: Arc<RwLock<HashMap<String, Arc<TableHandle>>>>,
    /// The node's DDL lock: catalog changes are serialized with table DDL and key rotation.
    pub(crate) ddl: Arc<tokio::sync::Mutex<()>>,
}

fn storage(e: impl std::fmt::Display) -> NodeError {
    NodeError::Storage(e.to_string())
}

impl IndexWork {
    /// Whether `handle` is still the open table of its name (not deleted or re-created).
    fn still_open(&self, handle: &Arc<TableHandle>) -> bool {
        let name = handle.meta.read().name.clone();
        self.tables
            .read()
            .get(&name)
            .is_some_and(|h| Arc::ptr_eq(h, handle))
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
                .map_err(|e| storage(e.in_file(&part.path)))?;
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
        let _ddl = self.ddl.lock().await;
        if !self.creating(handle, index) {
            return Ok(());
        }
        let mut meta = TableMeta::clone(&handle.meta.read());
        for def in meta.indexes.iter_mut().filter(|d| d.id == index) {
            def.status = IndexStatus::Active;
            def.backfilling = false;
        }
        let record = handle.record_with(meta.clone());
        let catalog = Arc::clone(&self.catalog);
        tokio::task::spawn_blocking(move || catalog.put(&record))
            .await
            .map_err(storage)??;
        handle.set_indexes(&meta.indexes)?;
        *handle.meta.write() = Arc::new(meta);
        tracing::info!(
            index,
            chunks_of = BACKFILL_CHUNK,
            at_most_items = items,
            millis = started.elapsed().as_millis() as u64,
            "global secondary index backfilled and active"
        );
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
        let Some(def) = handle
            .meta
            .read()
            .indexes
            .iter()
            .find(|d| d.id == index && d.status == IndexStatus::Deleting)
            .cloned()
        else {
            return Ok(());
        };
        let paths: Vec<_> = gsi_partitions(&def)
            .into_iter()
            .map(|p| gsi_path(&handle.dir, index, p.id))
            .collect();
        tokio::task::spawn_blocking(move || {
            paths
                .iter()
                .try_for_each(|p| SqlCipherEngine::destroy(p).map_err(storage))
        })
        .await
        .map_err(storage)??;
        let mut meta = TableMeta::clone(&handle.meta.read());
        meta.indexes.retain(|d| d.id != index);
        meta.index_throughput.retain(|t| t.index != index);
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

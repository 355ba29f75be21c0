//! Key rotation on a serving node: master-key rotation (re-wrap, no data rewrite) and data-key
//! rotation (re-encrypt a table's files under a new key while it serves), on demand or on a
//! schedule, and the completion at start of a data-key rotation a crash interrupted.
//!
//! Crash safety:
//! * **Master key** — `rotate` makes a new current master key (old ones stay usable); the node
//!   key (`node-key.json`) and then every table's data keys (one catalog transaction) are
//!   re-wrapped under it; only then are the older master keys retired. A crash at any point
//!   leaves every wrapped key unwrappable by some active master key; the next rotation retires
//!   whatever an interrupted one left active.
//! * **Data key** — the new key is stored wrapped in the catalog as the table's *pending* key
//!   before any file changes; each partition file is re-encrypted atomically (SQLCipher
//!   `PRAGMA rekey`, one transaction), so every file is under the current or the pending key;
//!   then the pending key becomes current. At start, a table with a pending key has each file
//!   opened with whichever key works, brought to the pending key, and the rotation completed.
//!   "Each file" includes the table's GSI partition files, which are under the same data key.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shoal_catalog::TableMeta;
use shoal_crypto::{DataKey, KeyRing, MasterKeyState};
use shoal_storage::{Durability, IndexPartition, Partition, SqlCipherEngine, StorageError};

use crate::NodeError;
use crate::backend::{NodeBackend, TableHandle, partition_path};
use crate::catalog::{Catalog, TableKeys, TableRecord, now_secs};

/// What a master-key rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterRotated {
    /// The master key that was current before.
    pub old_key_id: String,
    /// The new current master key.
    pub new_key_id: String,
    /// Master keys retired (the old current one, plus any an interrupted rotation left active).
    pub retired: Vec<String>,
    /// Tables whose data keys were re-wrapped.
    pub tables: usize,
}

/// What a data-key rotation of one table did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataKeyRotated {
    /// The table name.
    pub table: String,
    /// Partition files re-encrypted.
    pub partitions: usize,
    /// How long the re-encryption took, in milliseconds.
    pub millis: u64,
}

fn crypto(context: &str) -> impl Fn(shoal_crypto::CryptoError) -> NodeError + '_ {
    move |e| NodeError::Crypto(format!("{context}: {e}"))
}

fn storage(e: impl std::fmt::Display) -> NodeError {
    NodeError::Storage(e.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NodeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NodeError::Storage(format!("background task failed: {e}")))
}

/// The catalog record of an open table with `keys`.
fn record_of(handle: &TableHandle, keys: TableKeys) -> TableRecord {
    TableRecord {
        meta: TableMeta::clone(&handle.meta.read()),
        partitions: handle.partitions.iter().map(|p| p.record.clone()).collect(),
        keys,
    }
}

/// Runs key rotations of one node, one at a time.
pub struct Rotator {
    backend: Arc<NodeBackend>,
    /// Held for the whole of any rotation: rotations never overlap, and shutdown waits for a
    /// running one.
    running: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Rotator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rotator").finish_non_exhaustive()
    }
}

impl Rotator {
    /// A rotator for `backend`.
    pub fn new(backend: Arc<NodeBackend>) -> Rotator {
        Rotator {
            backend,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// The backend it rotates keys of.
    pub fn backend(&self) -> &Arc<NodeBackend> {
        &self.backend
    }

    /// Waits for a running rotation to finish and keeps new ones from starting while the guard
    /// lives (for shutdown).
    pub async fn quiesce(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.running.lock().await
    }

    /// Rotates the master key: a new current master key, the node key and every table's data
    /// keys re-wrapped under it and persisted, then every older master key retired. Table DDL
    /// waits meanwhile; item requests do not.
    ///
    /// # Errors
    /// Provider, file or catalog failures. Before the re-wrapped keys are durable no master key
    /// is retired, so an error never leaves a key that cannot be unwrapped.
    pub async fn rotate_master(&self) -> Result<MasterRotated, NodeError> {
        let _running = self.running.lock().await;
        let backend = &self.backend;
        let _ddl = backend.ddl.lock().await;
        let handles: Vec<Arc<TableHandle>> = backend.tables.read().values().cloned().collect();
        let b = Arc::clone(backend);
        let result = blocking(move || -> Result<MasterRotated, NodeError> {
            let provider = Arc::clone(b.ring.provider());
            let old = provider.current_key_id();
            let new = provider
                .rotate()
                .map_err(crypto("creating a new master key"))?;
            let node_key = b
                .ring
                .rewrap_node_key()
                .map_err(crypto("re-wrapping the node key"))?;
            shoal_crypto::save_node_key(&b.data_dir, &node_key)
                .map_err(crypto("saving the node key"))?;
            let mut records = Vec::with_capacity(handles.len());
            for handle in &handles {
                let id = handle.meta.read().id.clone();
                let mut keys = handle.keys.read().clone();
                let mut wrapped = vec![(id.clone(), keys.data_key.clone())];
                if let Some(pending) = &keys.pending_data_key {
                    wrapped.push((id.clone(), pending.clone()));
                }
                let mut rewrapped = b
                    .ring
                    .rewrap_all(wrapped)
                    .map_err(crypto("re-wrapping a table data key"))?
                    .into_iter()
                    .map(|(_, w)| w);
                if let Some(w) = rewrapped.next() {
                    keys.data_key = w;
                }
                if keys.pending_data_key.is_some() {
                    keys.pending_data_key = rewrapped.next();
                }
                records.push(record_of(handle, keys));
            }
            b.catalog.put_all(&records)?;
            for (handle, record) in handles.iter().zip(records) {
                *handle.keys.write() = record.keys;
            }
            // Everything is wrapped by `new` and durable: older master keys can go.
            let mut retired = Vec::new();
            for info in provider.master_keys() {
                if info.state == MasterKeyState::Active && info.id != new {
                    provider
                        .retire(&info.id)
                        .map_err(crypto("retiring the old master key"))?;
                    retired.push(info.id.to_string());
                }
            }
            tracing::info!(old = %old, new = %new, tables = handles.len(), "master key rotated");
            Ok(MasterRotated {
                old_key_id: old.to_string(),
                new_key_id: new.to_string(),
                retired,
                tables: handles.len(),
            })
        })
        .await??;
        Ok(result)
    }

    /// Rotates the data key of `table` (or of every table when `None`): re-encrypts its files
    /// under a new key while it keeps serving. Returns one entry per rotated table.
    ///
    /// # Errors
    /// [`NodeError::Admin`] for an unknown table; storage, provider or catalog failures (the
    /// first failure stops the run; tables already rotated stay rotated).
    pub async fn rotate_data(&self, table: Option<&str>) -> Result<Vec<DataKeyRotated>, NodeError> {
        let _running = self.running.lock().await;
        let names = match table {
            Some(name) => {
                if !self.backend.tables.read().contains_key(name) {
                    return Err(NodeError::Admin(format!("no table named {name}")));
                }
                vec![name.to_string()]
            }
            None => {
                let mut names: Vec<String> = self.backend.tables.read().keys().cloned().collect();
                names.sort();
                names
            }
        };
        let mut done = Vec::with_capacity(names.len());
        for name in names {
            if let Some(r) = self.rotate_table(&name).await? {
                done.push(r);
            }
        }
        Ok(done)
    }

    /// Rotates the data key of every table whose key is at least `period` old. Tables whose
    /// record predates creation times are stamped with the current time first.
    ///
    /// # Errors
    /// As [`Rotator::rotate_data`].
    pub async fn rotate_due(&self, period: Duration) -> Result<Vec<DataKeyRotated>, NodeError> {
        let _running = self.running.lock().await;
        let now = now_secs();
        let handles: Vec<(String, Arc<TableHandle>)> = self
            .backend
            .tables
            .read()
            .iter()
            .map(|(n, h)| (n.clone(), Arc::clone(h)))
            .collect();
        let mut done = Vec::new();
        for (name, handle) in handles {
            let created = handle.keys.read().data_key_created_at;
            match created {
                None => self.stamp_created(&name, &handle, now).await?,
                Some(created) if now.saturating_sub(created) >= period.as_secs() => {
                    if let Some(r) = self.rotate_table(&name).await? {
                        done.push(r);
                    }
                }
                Some(_) => {}
            }
        }
        Ok(done)
    }

    async fn stamp_created(
        &self,
        name: &str,
        handle: &Arc<TableHandle>,
        now: u64,
    ) -> Result<(), NodeError> {
        let backend = &self.backend;
        let _ddl = backend.ddl.lock().await;
        if !self.still_open(name, handle) {
            return Ok(());
        }
        let mut keys = handle.keys.read().clone();
        keys.data_key_created_at = Some(now);
        let record = record_of(handle, keys);
        let catalog = Arc::clone(&backend.catalog);
        let record = blocking(move || catalog.put(&record).map(|()| record)).await??;
        *handle.keys.write() = record.keys;
        Ok(())
    }

    fn still_open(&self, name: &str, handle: &Arc<TableHandle>) -> bool {
        self.backend
            .tables
            .read()
            .get(name)
            .is_some_and(|h| Arc::ptr_eq(h, handle))
    }

    /// One table's data-key rotation; `None` if the table does not exist (any more). The caller
    /// holds `running`. Table DDL waits for the whole rotation (so UpdateTable cannot re-wrap a
    /// key mid-way); item requests only wait while a partition file is being re-encrypted.
    async fn rotate_table(&self, name: &str) -> Result<Option<DataKeyRotated>, NodeError> {
        let backend = &self.backend;
        let _ddl = backend.ddl.lock().await;
        let Some(handle) = backend.tables.read().get(name).cloned() else {
            return Ok(None);
        };
        // 1. The new key, stored as pending before any file changes.
        let (table_id, kms_key) = {
            let meta = handle.meta.read();
            let kms_key = crate::backend::table_kms_key(&meta);
            (meta.id.clone(), kms_key)
        };
        let mut keys = handle.keys.read().clone();
        if keys.pending_data_key.is_some() {
            return Err(NodeError::Admin(format!(
                "table {name}: an earlier data-key rotation did not finish; restart the node to complete it"
            )));
        }
        let (new_key, wrapped, old_key) = {
            let (ring, id) = (Arc::clone(&backend.ring), table_id.clone());
            blocking(move || ring.rotate_data_key_with(&id, kms_key.as_ref()))
                .await?
                .map_err(crypto("creating a new data key"))?
        };
        keys.pending_data_key = Some(wrapped);
        let record = record_of(&handle, keys);
        let catalog = Arc::clone(&backend.catalog);
        match blocking(move || catalog.put(&record).map(|()| record)).await? {
            Ok(record) => *handle.keys.write() = record.keys,
            Err(e) => {
                self.restore_ring_key(&table_id, &handle);
                return Err(e);
            }
        }

        // 2. Re-encrypt every partition file while the table serves.
        let started = std::time::Instant::now();
        // The base partitions and their GSI shards: all are under the table's data key.
        let mut partitions: Vec<Store> = handle
            .partitions
            .iter()
            .map(|p| Store::Table(Arc::clone(&p.partition)))
            .collect();
        for p in &handle.partitions {
            partitions.extend(
                p.gsis
                    .read()
                    .values()
                    .map(|g| Store::Index(Arc::clone(&g.shard))),
            );
        }
        let count = partitions.len();
        let (new_for_files, old_for_files) = (Arc::clone(&new_key), Arc::clone(&old_key));
        let rekeyed =
            blocking(move || rekey_all(&partitions, &new_for_files, &old_for_files)).await?;
        if let Err((e, rolled_back)) = rekeyed {
            if rolled_back {
                // Every file is back under the old key: forget the pending key.
                self.restore_ring_key(&table_id, &handle);
                let mut keys = handle.keys.read().clone();
                keys.pending_data_key = None;
                let record = record_of(&handle, keys);
                let catalog = Arc::clone(&backend.catalog);
                if let Ok(Ok(record)) =
                    blocking(move || catalog.put(&record).map(|()| record)).await
                {
                    *handle.keys.write() = record.keys;
                }
            }
            return Err(NodeError::Storage(format!(
                "table {name}: re-encrypting with the new data key failed: {e}"
            )));
        }
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

        // 3. The pending key becomes current.
        let mut keys = handle.keys.read().clone();
        if let Some(pending) = keys.pending_data_key.take() {
            keys.data_key = pending;
        }
        keys.data_key_created_at = Some(now_secs());
        let record = record_of(&handle, keys);
        let catalog = Arc::clone(&backend.catalog);
        let record = blocking(move || catalog.put(&record).map(|()| record)).await??;
        *handle.keys.write() = record.keys;
        // No file needs the old key any more: dropping the last reference zeroises it.
        drop(old_key);
        tracing::info!(table = %name, partitions = count, millis, "data key rotated");
        Ok(Some(DataKeyRotated {
            table: name.to_string(),
            partitions: count,
            millis,
        }))
    }

    /// Puts the table's current (not pending) data key back into the key ring.
    fn restore_ring_key(&self, table_id: &str, handle: &TableHandle) {
        let ring = &self.backend.ring;
        ring.destroy(table_id);
        let current = handle.keys.read().data_key.clone();
        if let Err(e) = ring.load(table_id, &current) {
            tracing::warn!(table_id, error = %e, "cannot reload the table's data key");
        }
    }
}

/// One file under a table's data key: a base partition or a GSI partition.
enum Store {
    Table(Arc<Partition>),
    Index(Arc<IndexPartition>),
}

impl Store {
    fn rekey(&self, key: &[u8; 32]) -> Result<(), StorageError> {
        match self {
            Store::Table(p) => p.rekey(key),
            Store::Index(p) => p.rekey(key),
        }
    }
}

/// Re-encrypts each partition under `new`. On failure, tries to bring the ones already done back
/// to `old`; the error says whether every file is under `old` again.
fn rekey_all(
    partitions: &[Store],
    new: &DataKey,
    old: &DataKey,
) -> Result<(), (StorageError, bool)> {
    for (i, partition) in partitions.iter().enumerate() {
        if let Err(e) = partition.rekey(new.as_bytes()) {
            let rolled_back = partitions
                .iter()
                .take(i)
                .all(|p| p.rekey(old.as_bytes()).is_ok());
            return Err((e, rolled_back));
        }
    }
    Ok(())
}

/// Completes, before the tables are opened, any data-key rotation a crash interrupted: each
/// partition file of a table with a pending key is opened with the current or the pending key
/// and brought to the pending key, which then becomes current.
///
/// # Errors
/// A file that neither key opens, provider or catalog failures.
pub(crate) fn finish_interrupted_rotations(
    data_dir: &Path,
    ring: &KeyRing,
) -> Result<(), NodeError> {
    let path = data_dir.join("catalog.db");
    if !path.exists() {
        return Ok(());
    }
    let catalog = Catalog::open(&path, ring.node_key().as_bytes())?;
    for mut record in catalog.load()? {
        let Some(pending) = record.keys.pending_data_key.take() else {
            continue;
        };
        let name = record.meta.name.clone();
        let what = format!("table {name}");
        // Through the ring, which unwraps with the master key or the table's own KMS key.
        let id = record.meta.id.clone();
        let next = ring.load(&id, &pending).map_err(crypto(&what))?;
        ring.destroy(&id);
        let current = ring
            .load(&id, &record.keys.data_key)
            .map_err(crypto(&what))?;
        ring.destroy(&id);
        let dir = data_dir.join("tables").join(&record.meta.id);
        let mut files: Vec<std::path::PathBuf> = record
            .partitions
            .iter()
            .map(|p| partition_path(&dir, p.id))
            .collect();
        files.extend(crate::gsi::gsi_files(&dir, None, None));
        for file in files {
            if !file.exists() {
                continue;
            }
            match SqlCipherEngine::open(&file, current.as_bytes(), Durability::Sync) {
                Ok(engine) => {
                    use shoal_storage::Engine;
                    engine.rekey(next.as_bytes()).map_err(storage)?;
                }
                Err(StorageError::WrongKey { .. }) => {
                    // Already under the pending key (or damaged: then this open says so).
                    SqlCipherEngine::open(&file, next.as_bytes(), Durability::Sync)
                        .map_err(|e| NodeError::Storage(format!("{what}: {e}")))?;
                }
                Err(e) => return Err(NodeError::Storage(format!("{what}: {e}"))),
            }
        }
        record.keys = TableKeys {
            data_key: pending,
            data_key_created_at: Some(now_secs()),
            pending_data_key: None,
        };
        catalog.put(&record)?;
        tracing::info!(table = %name, "finished a data-key rotation interrupted by a restart");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use shoal_catalog::DataPlane;
    use shoal_storage::Command;
    use shoal_types::{AttributeValue, Item};

    use super::*;
    use crate::test_support::{config, table_meta};
    use crate::{NodeConfig, OfflineNode};

    fn meta(name: &str) -> TableMeta {
        table_meta(name, &[])
    }

    fn key(pk: &str) -> Item {
        [("pk".to_string(), AttributeValue::S(pk.into()))]
            .into_iter()
            .collect()
    }

    /// Leaves `table` as a crash would: its new key stored as pending, and (when `rekey_files`)
    /// its files already re-encrypted under it, but the rotation not completed.
    async fn interrupt_rotation(config: &NodeConfig, table: &str, rekey_files: bool) {
        let node = OfflineNode::open(config).await.unwrap();
        let backend = node.admin().rotator().backend();
        let handle = backend.tables.read().get(table).cloned().unwrap();
        let id = handle.meta.read().id.clone();
        let (new_key, wrapped, _old) = backend.ring.rotate_data_key(&id).unwrap();
        let mut keys = handle.keys.read().clone();
        keys.pending_data_key = Some(wrapped);
        backend.catalog.put(&record_of(&handle, keys)).unwrap();
        if rekey_files {
            for p in &handle.partitions {
                p.partition.rekey(new_key.as_bytes()).unwrap();
            }
        }
    }

    async fn assert_readable_and_finished(config: &NodeConfig, table: &str) {
        let node = OfflineNode::open(config).await.unwrap();
        let backend = node.admin().rotator().backend();
        let meta = backend.table(table).await.unwrap();
        for i in 0..20 {
            let got = backend
                // An offline node has no cluster to take a ReadIndex from: a local read.
                .get(&meta, &key(&format!("k{i}")), false)
                .await
                .unwrap();
            assert!(got.is_some(), "{table}: k{i} unreadable after recovery");
        }
        let handle = backend.tables.read().get(table).cloned().unwrap();
        assert!(
            handle.keys.read().pending_data_key.is_none(),
            "{table}: the interrupted rotation was not completed"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rotation_interrupted_before_or_after_rekeying_is_completed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&dir);
        {
            let node = crate::test_support::running(&config).await;
            let backend = node.admin().rotator().backend();
            for table in ["before", "after"] {
                let meta = backend.create_table(meta(table)).await.unwrap();
                for i in 0..20 {
                    let item = key(&format!("k{i}"));
                    backend
                        .write(
                            &meta,
                            Command::Put {
                                item,
                                condition: None,
                            },
                        )
                        .await
                        .unwrap();
                }
            }
            node.shutdown().await;
        }
        interrupt_rotation(&config, "before", false).await;
        interrupt_rotation(&config, "after", true).await;
        assert_readable_and_finished(&config, "before").await;
        assert_readable_and_finished(&config, "after").await;
        // And a normal rotation works afterwards.
        let node = OfflineNode::open(&config).await.unwrap();
        let done = node.admin().rotator().rotate_data(None).await.unwrap();
        assert_eq!(done.len(), 2);
    }
}

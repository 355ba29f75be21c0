//! [`NodeBackend`]: the [`Backend`] of a single node, with its tables' partitions stored locally.
//!
//! Every write is a storage [`Command`] applied by the owning partition's deterministic state
//! machine with the next log index, one at a time per partition, on the blocking thread pool.
//! Replication (the Raft issue) will put a replicated log in front of the same `apply`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;
use shoal_api::backend::{
    Backend, BackendError, QueryRequest, ScanRequest, TableMeta, TableStats, TableStatus,
};
use shoal_api::sigv4::KeyLookup;
use shoal_storage::{
    Applied, Command, Durability, Page, Partition, QuerySpec, ScanSpec, SqlCipherEngine,
};
use shoal_types::Item;
use shoal_types::key::partition_hash;

use crate::NodeError;
use crate::catalog::{Catalog, PartitionRecord, TableRecord};
use crate::commit::{CommitQueue, storage_failure};
use crate::keys::KeyStore;
use shoal_crypto::KeyRing;

/// One open partition replica.
struct PartitionHandle {
    record: PartitionRecord,
    partition: Arc<Partition>,
    /// The partition's only writer: group-commits queued writes, assigning log indexes in order.
    commits: Arc<CommitQueue>,
    /// The partition file, named in storage errors (corruption, disk full).
    path: Arc<Path>,
}

/// One open table.
struct TableHandle {
    meta: RwLock<Arc<TableMeta>>,
    partitions: Vec<PartitionHandle>,
    dir: PathBuf,
    /// The table's data key wrapped by a master key, as stored in the catalog.
    data_key: shoal_crypto::WrappedKey,
}

impl TableHandle {
    fn partition_for(&self, key: &Item, meta: &TableMeta) -> Option<&PartitionHandle> {
        self.partition_for_hash(partition_hash(key.get(&meta.key_schema.hash.name)?))
    }

    /// The partition whose hash range holds `hash`.
    fn partition_for_hash(&self, hash: u64) -> Option<&PartitionHandle> {
        self.partitions
            .iter()
            .find(|p| p.record.hash_start <= hash && hash <= p.record.hash_end)
    }

    fn stats(&self) -> TableStats {
        let mut s = TableStats::default();
        for p in &self.partitions {
            let ps = p.partition.stats();
            s.item_count += ps.item_count;
            s.size_bytes += ps.size_bytes;
        }
        s
    }
}

/// The node's backend.
pub struct NodeBackend {
    region: String,
    account_id: String,
    endpoints: Vec<String>,
    keys: KeyStore,
    data_dir: PathBuf,
    catalog: Arc<Catalog>,
    /// Master-key-wrapped data keys, unwrapped and cached.
    ring: Arc<KeyRing>,
    tables: RwLock<HashMap<String, Arc<TableHandle>>>,
    /// Serialises table creation, deletion and catalog changes.
    ddl: tokio::sync::Mutex<()>,
}

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(e.to_string())
}

/// Runs blocking storage work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

fn partition_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("p{id:08}.db"))
}

/// The partitions a new table starts with: one covering the whole hash space. Splits (a later
/// issue) divide these ranges; nothing here assumes there is only one.
fn initial_partitions() -> Vec<PartitionRecord> {
    vec![PartitionRecord {
        id: 1,
        hash_start: 0,
        hash_end: u64::MAX,
    }]
}

/// Opens a table's partition files with its data key.
fn open_table(
    dir: &Path,
    record: &TableRecord,
    key: &shoal_crypto::DataKey,
) -> Result<TableHandle, NodeError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| NodeError::Storage(format!("cannot create {}: {e}", dir.display())))?;
    let mut partitions = Vec::with_capacity(record.partitions.len());
    for p in &record.partitions {
        let path: Arc<Path> = partition_path(dir, p.id).into();
        let engine = SqlCipherEngine::open(&path, key.as_bytes(), Durability::Sync)
            .map_err(|e| NodeError::Storage(e.in_file(&path).to_string()))?;
        let partition = Partition::new(Box::new(engine), record.meta.key_schema.clone())
            .map_err(|e| NodeError::Storage(e.in_file(&path).to_string()))?;
        let partition = Arc::new(partition);
        partitions.push(PartitionHandle {
            record: p.clone(),
            commits: CommitQueue::new(Arc::clone(&partition), Arc::clone(&path)),
            partition,
            path,
        });
    }
    Ok(TableHandle {
        meta: RwLock::new(Arc::new(record.meta.clone())),
        partitions,
        dir: dir.to_path_buf(),
        data_key: record.data_key.clone(),
    })
}

impl NodeBackend {
    /// Opens the catalog and every table's partitions under `data_dir`.
    pub fn open(
        data_dir: &Path,
        region: String,
        endpoints: Vec<String>,
        keys: KeyStore,
        ring: Arc<KeyRing>,
    ) -> Result<NodeBackend, NodeError> {
        let catalog = Catalog::open(&data_dir.join("catalog.db"), ring.node_key().as_bytes())?;
        let mut tables = HashMap::new();
        for record in catalog.load()? {
            let dir = data_dir.join("tables").join(&record.meta.id);
            let key = ring
                .load(&record.meta.id, &record.data_key)
                .map_err(|e| NodeError::Crypto(format!("table {}: {e}", record.meta.name)))?;
            let handle = open_table(&dir, &record, &key)?;
            tables.insert(record.meta.name.clone(), Arc::new(handle));
        }
        tracing::info!(tables = tables.len(), "catalog loaded");
        Ok(NodeBackend {
            region,
            account_id: "000000000000".to_string(),
            endpoints,
            keys,
            data_dir: data_dir.to_path_buf(),
            catalog: Arc::new(catalog),
            ring,
            tables: RwLock::new(tables),
            ddl: tokio::sync::Mutex::new(()),
        })
    }

    fn handle(&self, name: &str) -> Result<Arc<TableHandle>, BackendError> {
        self.tables
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| BackendError::TableNotFound(name.to_string()))
    }

    /// The table handle for an item operation, checking it is still the same table (not deleted
    /// and re-created since the caller looked it up).
    fn handle_for(&self, meta: &TableMeta) -> Result<Arc<TableHandle>, BackendError> {
        let handle = self.handle(&meta.name)?;
        if handle.meta.read().id != meta.id {
            return Err(BackendError::TableNotFound(meta.name.clone()));
        }
        Ok(handle)
    }
}

#[async_trait]
impl Backend for NodeBackend {
    fn region(&self) -> &str {
        &self.region
    }

    fn account_id(&self) -> &str {
        &self.account_id
    }

    fn keys(&self) -> &dyn KeyLookup {
        &self.keys
    }

    fn endpoints(&self) -> Vec<String> {
        self.endpoints.clone()
    }

    async fn create_table(&self, meta: TableMeta) -> Result<Arc<TableMeta>, BackendError> {
        let _ddl = self.ddl.lock().await;
        if self.tables.read().contains_key(&meta.name) {
            return Err(BackendError::TableExists(meta.name));
        }
        let mut meta = meta;
        // The partitions are created before the reply, so the table is usable at once; the reply
        // still says CREATING, as DynamoDB's does.
        meta.status = TableStatus::Active;
        // Each table gets its own data key, stored in the catalog wrapped by the master key.
        let (key, data_key) = self.ring.create_data_key(&meta.id).map_err(internal)?;
        let record = TableRecord {
            meta,
            partitions: initial_partitions(),
            data_key,
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
        let meta = handle.meta.read().clone();
        self.tables
            .write()
            .insert(record.meta.name.clone(), Arc::new(handle));
        tracing::info!(table = %record.meta.name, id = %record.meta.id, "table created");
        Ok(meta)
    }

    async fn table(&self, name: &str) -> Result<Arc<TableMeta>, BackendError> {
        Ok(self.handle(name)?.meta.read().clone())
    }

    async fn table_stats(&self, name: &str) -> Result<TableStats, BackendError> {
        Ok(self.handle(name)?.stats())
    }

    async fn list_tables(&self) -> Result<Vec<String>, BackendError> {
        let mut names: Vec<String> = self.tables.read().keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    async fn replace_table(
        &self,
        expected_version: u64,
        meta: TableMeta,
    ) -> Result<Arc<TableMeta>, BackendError> {
        let _ddl = self.ddl.lock().await;
        let handle = self.handle(&meta.name)?;
        let current = handle.meta.read().clone();
        if current.version != expected_version || current.id != meta.id {
            return Err(BackendError::Conflict(meta.name));
        }
        let record = TableRecord {
            meta: meta.clone(),
            partitions: handle.partitions.iter().map(|p| p.record.clone()).collect(),
            data_key: handle.data_key.clone(),
        };
        let catalog = self.catalog.clone();
        blocking(move || catalog.put(&record))
            .await?
            .map_err(internal)?;
        let meta = Arc::new(meta);
        *handle.meta.write() = meta.clone();
        Ok(meta)
    }

    async fn delete_table(&self, name: &str) -> Result<(Arc<TableMeta>, TableStats), BackendError> {
        let _ddl = self.ddl.lock().await;
        let handle = self.handle(name)?;
        let stats = handle.stats();
        let meta = handle.meta.read().clone();
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
        let paths: Vec<PathBuf> = handle
            .partitions
            .iter()
            .map(|p| partition_path(&handle.dir, p.record.id))
            .collect();
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
        Ok((meta, stats))
    }

    async fn write(&self, table: &TableMeta, command: Command) -> Result<Applied, BackendError> {
        let handle = self.handle_for(table)?;
        let key = match &command {
            Command::Put { item, .. } => item,
            Command::Delete { key, .. } | Command::Update { key, .. } => key,
        };
        let part = handle
            .partition_for(key, table)
            .ok_or_else(|| internal("no partition covers the key's hash"))?;
        // Group commit: answered once the batch holding this command is applied and durable.
        part.commits
            .submit(command)
            .await
            .map_err(internal)?
            .map_err(BackendError::Apply)
    }

    async fn query(&self, table: &TableMeta, request: QueryRequest) -> Result<Page, BackendError> {
        let handle = self.handle_for(table)?;
        let part = handle
            .partition_for_hash(partition_hash(&request.partition_key))
            .ok_or_else(|| internal("no partition covers the key's hash"))?;
        let partition = part.partition.clone();
        let path = part.path.clone();
        blocking(move || {
            partition.query(&QuerySpec {
                partition_key: &request.partition_key,
                sort: request.sort.as_ref(),
                forward: request.forward,
                exclusive_start: request.exclusive_start.as_ref(),
                limit: request.limit,
                byte_limit: request.byte_limit,
                filter: request.filter.as_ref(),
            })
        })
        .await?
        .map_err(|e| storage_failure(e, &path))
    }

    async fn scan(&self, table: &TableMeta, request: ScanRequest) -> Result<Page, BackendError> {
        let handle = self.handle_for(table)?;
        let resume_hash = match &request.exclusive_start {
            Some(key) => Some(
                key.get(&table.key_schema.hash.name)
                    .map(partition_hash)
                    .ok_or_else(|| internal("exclusive start key without partition key"))?,
            ),
            None => None,
        };
        let mut parts: Vec<(u64, u64, Arc<Partition>, Arc<Path>)> = handle
            .partitions
            .iter()
            .filter(|p| {
                p.record.hash_end >= request.hash_start && p.record.hash_start <= request.hash_end
            })
            .filter(|p| resume_hash.is_none_or(|h| p.record.hash_end >= h))
            .map(|p| {
                (
                    p.record.hash_start.max(request.hash_start),
                    p.record.hash_end.min(request.hash_end),
                    p.partition.clone(),
                    p.path.clone(),
                )
            })
            .collect();
        parts.sort_by_key(|(start, _, _, _)| *start);
        blocking(move || -> Result<Page, BackendError> {
            let mut page = Page::default();
            for (i, (start, end, partition, path)) in parts.iter().enumerate() {
                let remaining = request.limit.map(|l| l.saturating_sub(page.scanned_count));
                if remaining == Some(0) {
                    break;
                }
                let part_page = partition
                    .scan(&ScanSpec {
                        hash_start: *start,
                        hash_end: *end,
                        // Only the partition holding the resume point uses it.
                        exclusive_start: if i == 0 {
                            request.exclusive_start.as_ref()
                        } else {
                            None
                        },
                        limit: remaining,
                        byte_limit: request.byte_limit.saturating_sub(page.scanned_bytes).max(1),
                        filter: request.filter.as_ref(),
                    })
                    .map_err(|e| storage_failure(e, path))?;
                page.items.extend(part_page.items);
                page.scanned_count += part_page.scanned_count;
                page.scanned_bytes += part_page.scanned_bytes;
                if part_page.last_evaluated_key.is_some() {
                    page.last_evaluated_key = part_page.last_evaluated_key;
                    break;
                }
            }
            Ok(page)
        })
        .await?
    }

    async fn get(
        &self,
        table: &TableMeta,
        key: &Item,
        _consistent: bool,
    ) -> Result<Option<Item>, BackendError> {
        let handle = self.handle_for(table)?;
        let part = handle
            .partition_for(key, table)
            .ok_or_else(|| internal("no partition covers the key's hash"))?;
        // A point read on the local replica is both strongly and eventually consistent here.
        let partition = part.partition.clone();
        let path = part.path.clone();
        let key = key.clone();
        blocking(move || partition.get(&key))
            .await?
            .map_err(|e| storage_failure(e, &path))
    }
}

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
    Backend, BackendError, KmsKeyError, QueryRequest, ScanRequest, TableMeta, TableStats,
    TableStatus,
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
pub(crate) struct PartitionHandle {
    pub(crate) record: PartitionRecord,
    pub(crate) partition: Arc<Partition>,
    /// The partition's only writer: group-commits queued writes, assigning log indexes in order.
    commits: Arc<CommitQueue>,
    /// The partition file, named in storage errors (corruption, disk full).
    path: Arc<Path>,
}

/// One open table.
pub(crate) struct TableHandle {
    pub(crate) meta: RwLock<Arc<TableMeta>>,
    pub(crate) partitions: Vec<PartitionHandle>,
    dir: PathBuf,
    /// The table's data keys wrapped by a master key, as stored in the catalog (changed by
    /// key rotation, see `rotation.rs`).
    pub(crate) keys: RwLock<crate::catalog::TableKeys>,
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
    pub(crate) keys: KeyStore,
    pub(crate) data_dir: PathBuf,
    pub(crate) catalog: Arc<Catalog>,
    /// Master-key-wrapped data keys, unwrapped and cached.
    pub(crate) ring: Arc<KeyRing>,
    pub(crate) tables: RwLock<HashMap<String, Arc<TableHandle>>>,
    /// Serialises table creation, deletion and catalog changes.
    pub(crate) ddl: tokio::sync::Mutex<()>,
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

pub(crate) fn partition_path(dir: &Path, id: u64) -> PathBuf {
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

/// The KMS alias of DynamoDB's AWS managed key, used for `SSESpecification.Enabled` without a
/// `KMSMasterKeyId` (AWS KMS creates it on first use).
const AWS_MANAGED_KEY_ALIAS: &str = "alias/aws/dynamodb";

/// Resolves a KMS key id/ARN/alias to the ARN of a key that can wrap data keys; anything KMS
/// refuses or a key that is disabled or not a symmetric encryption key is a validation error.
fn resolve_kms_key(kms: &shoal_crypto::KmsClient, requested: &str) -> Result<String, KmsKeyError> {
    let invalid = |why: String| {
        KmsKeyError::Unusable(format!(
            "One or more parameter values were invalid: KMSMasterKeyId {requested} cannot be used: {why}"
        ))
    };
    match kms.describe_key(requested) {
        Ok(info) if info.usable_for_wrapping() => Ok(info.arn),
        Ok(info) if !info.enabled => Err(invalid(format!(
            "KMS key {} is not enabled (key state {})",
            info.arn, info.key_state
        ))),
        Ok(info) => Err(invalid(format!(
            "KMS key {} is not a symmetric encryption key (KeyUsage {}, KeySpec {})",
            info.arn, info.key_usage, info.key_spec
        ))),
        Err(shoal_crypto::CryptoError::Kms {
            error_type,
            message,
            ..
        }) => Err(invalid(format!("{error_type}: {message}"))),
        Err(e) => Err(KmsKeyError::Backend(internal(e))),
    }
}

/// Before opening tables whose data keys are wrapped by KMS keys, checks that each such key is
/// still enabled, so a node whose table key was disabled in KMS refuses to start with a message
/// naming the key and the table (rather than trusting that every KMS refuses Decrypt then).
fn check_table_kms_keys(ring: &KeyRing, records: &[TableRecord]) -> Result<(), NodeError> {
    let Some(kms) = ring.kms() else {
        return Ok(()); // loading such a table fails with KmsNotConfigured, naming the key
    };
    let mut checked = std::collections::HashSet::new();
    for record in records {
        let wrapped = &record.keys.data_key;
        if wrapped.algorithm != shoal_crypto::WrapAlgorithm::KmsEncrypt
            || !checked.insert(wrapped.key_id_of_wrapping_key.clone())
        {
            continue;
        }
        let key = wrapped.key_id_of_wrapping_key.as_str();
        let info = kms
            .describe_key(key)
            .map_err(|e| NodeError::Crypto(format!("table {}: {e}", record.meta.name)))?;
        if !info.enabled {
            return Err(NodeError::Crypto(format!(
                "table {}: its data key is wrapped by KMS key {key}, which is not enabled (key state {}); enable the key in KMS",
                record.meta.name, info.key_state
            )));
        }
    }
    Ok(())
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
        keys: RwLock::new(record.keys.clone()),
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
        let records = catalog.load()?;
        check_table_kms_keys(&ring, &records)?;
        for record in records {
            let dir = data_dir.join("tables").join(&record.meta.id);
            let key = ring
                .load(&record.meta.id, &record.keys.data_key)
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

    async fn resolve_kms_key(&self, key_id: Option<&str>) -> Result<String, KmsKeyError> {
        let requested = key_id.unwrap_or(AWS_MANAGED_KEY_ALIAS).to_string();
        let Some(kms) = self.ring.kms().cloned() else {
            return Err(KmsKeyError::Unusable(format!(
                "One or more parameter values were invalid: KMSMasterKeyId {requested} cannot be used: this node has no KMS endpoint configured"
            )));
        };
        blocking(move || resolve_kms_key(&kms, &requested)).await?
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
        // Each table gets its own data key, stored in the catalog wrapped by the master key, or
        // by the table's own KMS key (SSESpecification; may call KMS, so off the async threads).
        let (key, data_key) = {
            let ring = self.ring.clone();
            let id = meta.id.clone();
            let kms_key = meta
                .sse
                .as_ref()
                .map(|s| shoal_crypto::KeyId::new(s.kms_master_key_arn.clone()));
            blocking(move || ring.create_data_key_with(&id, kms_key.as_ref()))
                .await?
                .map_err(internal)?
        };
        let record = TableRecord {
            meta,
            partitions: initial_partitions(),
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

    async fn index_stats(&self, name: &str, index: u32) -> Result<TableStats, BackendError> {
        // Secondary indexes are not stored yet.
        let _ = (self.handle(name)?, index);
        Ok(TableStats::default())
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
        let mut keys = handle.keys.read().clone();
        if meta.sse != current.sse {
            // SSESpecification switched the table's KMS key: re-wrap the same data key.
            let ring = self.ring.clone();
            let id = meta.id.clone();
            let kms_key = meta
                .sse
                .as_ref()
                .map(|s| shoal_crypto::KeyId::new(s.kms_master_key_arn.clone()));
            keys.data_key = blocking(move || ring.rewrap_table_key(&id, kms_key.as_ref()))
                .await?
                .map_err(internal)?;
        }
        let record = TableRecord {
            meta: meta.clone(),
            partitions: handle.partitions.iter().map(|p| p.record.clone()).collect(),
            keys: keys.clone(),
        };
        let catalog = self.catalog.clone();
        blocking(move || catalog.put(&record))
            .await?
            .map_err(internal)?;
        let meta = Arc::new(meta);
        *handle.keys.write() = keys;
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

//! [`NodeBackend`]: the [`Backend`] of a single node, with its tables' partitions stored locally.
//!
//! Every write is a storage [`Command`] replicated through its partition's Raft group and
//! applied by every replica's deterministic state machine (see [`crate::cluster`]). Table DDL
//! goes through the metadata group; [`NodeBackend::reconcile`] makes the local replicas match
//! the replicated catalog.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;
use shoal_api::backend::Backend;
use shoal_api::sigv4::KeyLookup;
use shoal_catalog::{
    DataError, DataPlane, KmsKeyError, QueryRequest, ScanRequest, TableMeta, TableStats,
    TableStatus,
};
use shoal_storage::{
    Applied, Command, Durability, Page, Partition, QuerySpec, ScanSpec, SqlCipherEngine,
    StorageError,
};
use shoal_types::index::{IndexDef, IndexKind, IndexStatus};
use shoal_types::key::partition_hash;
use shoal_types::{AttributeValue, Item};

use crate::NodeError;
use crate::catalog::{Catalog, PartitionRecord, TableRecord};
use crate::cluster::Cluster;
use crate::gsi::{Gsi, GsiMap, Shipper};
use crate::gsi_read::GsiRead;
use crate::indexes::IndexWork;
use crate::keys::KeyStore;
use crate::remote::codec::{DataCall, DataReply};
use crate::remote::holds_query;
use crate::storage_failure::storage_failure;
use shoal_crypto::KeyRing;
use shoal_meta::{GLOBAL_INDEX_SPLIT_FORMAT, MetaCommand, MetaResult};

/// One open partition replica.
#[derive(Clone)]
pub(crate) struct PartitionHandle {
    pub(crate) record: PartitionRecord,
    pub(crate) partition: Arc<Partition>,
    /// Carries the partition's GSI outbox to its GSI shards.
    pub(crate) shipper: Arc<Shipper>,
    /// The partition's shards of the table's global secondary indexes (not those being
    /// deleted).
    pub(crate) gsis: GsiMap,
    /// The partition file, named in storage errors (corruption, disk full).
    pub(crate) path: Arc<Path>,
    /// Set when the replica failed to apply a committed write (see `cluster::sm::Poison`).
    pub(crate) poisoned: crate::cluster::sm::Poison,
    /// Whether the replica may answer eventually consistent reads as it is: clear when the
    /// replica opens (new and empty, or restarted after a downtime) and while a snapshot streams
    /// in, set once it caught up with the leader (see [`NodeBackend::ensure_ready`]).
    pub(crate) ready: Arc<AtomicBool>,
    /// The replica's applied index, sent by its state machine after each apply: a node that
    /// forwarded a write waits on it for its own replica to apply the write.
    pub(crate) applied: Arc<tokio::sync::watch::Sender<u64>>,
}

impl PartitionHandle {
    /// The partition's shard of GSI `index` (gone if it was deleted since the request was
    /// validated).
    pub(crate) fn gsi(&self, index: &IndexDef) -> Result<Arc<Gsi>, DataError> {
        self.gsis
            .read()
            .get(&index.id)
            .cloned()
            .ok_or_else(|| DataError::IndexNotFound(index.name.clone()))
    }

    /// Refuses reads of a replica that stopped applying.
    pub(crate) fn check_readable(&self) -> Result<(), DataError> {
        match self.poisoned.lock().as_ref() {
            Some(why) => Err(DataError::Unavailable(why.clone())),
            None => Ok(()),
        }
    }
}

/// One open table.
pub(crate) struct TableHandle {
    pub(crate) meta: RwLock<Arc<TableMeta>>,
    pub(crate) partitions: Vec<PartitionHandle>,
    pub(crate) dir: PathBuf,
    /// The table's data keys wrapped by a master key, as stored in the catalog (changed by
    /// key rotation, see `rotation.rs`).
    pub(crate) keys: RwLock<crate::catalog::TableKeys>,
}

impl TableHandle {
    pub(crate) fn partition_for(&self, key: &Item, meta: &TableMeta) -> Option<&PartitionHandle> {
        self.partition_for_hash(partition_hash(key.get(&meta.key_schema.hash.name)?))
    }

    /// The partition whose hash range holds `hash`.
    pub(crate) fn partition_for_hash(&self, hash: u64) -> Option<&PartitionHandle> {
        self.partitions
            .iter()
            .find(|p| p.record.hash_start <= hash && hash <= p.record.hash_end)
    }

    /// A handle of the same table (definition, indexes, keys) over `partitions`: the local
    /// replicas changed (placed here, or moved away). Callers holding the old handle keep
    /// working on the replicas they have.
    pub(crate) fn with_partitions(&self, partitions: Vec<PartitionHandle>) -> TableHandle {
        TableHandle {
            meta: RwLock::new(self.meta.read().clone()),
            partitions,
            dir: self.dir.clone(),
            keys: RwLock::new(self.keys.read().clone()),
        }
    }

    /// The catalog record of this table with `meta`.
    pub(crate) fn record_with(&self, meta: TableMeta) -> TableRecord {
        TableRecord {
            meta,
            partitions: self.partitions.iter().map(|p| p.record.clone()).collect(),
            keys: self.keys.read().clone(),
        }
    }

    /// Hands `indexes` to every base partition (LSIs maintained in apply, outbox records for
    /// GSIs) and enables the shippers when there are GSIs.
    ///
    /// # Errors
    /// A partition failed to load its index state (the first time only: stats, outbox seq).
    pub(crate) fn set_indexes(&self, indexes: &[IndexDef]) -> Result<(), NodeError> {
        let gsis = crate::gsi::stored_gsis(indexes).next().is_some();
        for p in &self.partitions {
            p.partition
                .set_indexes(indexes.to_vec())
                .map_err(|e| NodeError::storage_in(e, &p.path))?;
            p.shipper.set_enabled(gsis);
        }
        Ok(())
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
    pub(crate) tables: Arc<RwLock<HashMap<String, Arc<TableHandle>>>>,
    /// Serialises table creation, deletion and catalog changes.
    pub(crate) ddl: Arc<tokio::sync::Mutex<()>>,
    /// The node's cluster (set once the node has joined or bootstrapped one; admin commands on a
    /// stopped node have none).
    pub(crate) cluster: std::sync::OnceLock<Arc<Cluster>>,
    /// Raft groups already created for the local partitions.
    pub(crate) groups: parking_lot::Mutex<std::collections::HashSet<u64>>,
    /// Wakes the reconciler at once (a local replica applied a split: its child opens here).
    pub(crate) reconcile_soon: Arc<tokio::sync::Notify>,
    /// The global indexes (table id, index id) being created whose backfill finished on every
    /// local replica of their table: they become active once every other partition's has too
    /// (`follow_index_status`).
    pub(crate) gsi_built: Arc<parking_lot::Mutex<std::collections::HashSet<(String, u32)>>>,
    /// Nodes that recently refused a forwarded call as not run there, and when (see
    /// `NodeBackend::forward`).
    pub(crate) refused_by: parking_lot::Mutex<HashMap<u64, std::time::Instant>>,
    /// The node's event counters (`GET /metrics`).
    pub(crate) metrics: Arc<crate::metrics::NodeMetrics>,
}

pub(crate) fn internal(e: impl std::fmt::Display) -> DataError {
    DataError::Internal(e.to_string())
}

/// Runs blocking storage work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DataError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

pub(crate) fn partition_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("p{id:08}.db"))
}

/// The KMS key that wraps `meta`'s data key (its SSESpecification), or `None` for the master key.
pub(crate) fn table_kms_key(meta: &TableMeta) -> Option<shoal_crypto::KeyId> {
    meta.sse
        .as_ref()
        .and_then(|s| s.kms_key_arn())
        .map(|arn| shoal_crypto::KeyId::new(arn.to_string()))
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
        Err(e) => Err(KmsKeyError::Data(internal(e))),
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

/// Opens the file of partition `p` of a table and its GSI shards with the table's data key and
/// starts its shipper (the caller hands it the index definitions).
pub(crate) fn open_partition(
    dir: &Path,
    p: &PartitionRecord,
    meta: &TableMeta,
    key: &shoal_crypto::DataKey,
) -> Result<PartitionHandle, NodeError> {
    let gsis = Gsi::open_all(dir, &meta.indexes, &meta.key_schema, key.as_bytes(), p.id)?;
    let path: Arc<Path> = partition_path(dir, p.id).into();
    // The Raft log is the write-ahead log: an apply is not fsync'd here, and the log is
    // compacted only up to what a sync made durable (`PartitionSm::durable_index`).
    let engine = SqlCipherEngine::open(&path, key.as_bytes(), Durability::Relaxed)
        .map_err(|e| NodeError::storage_in(e, &path))?;
    let partition = Partition::new(Box::new(engine), meta.key_schema.clone())
        .map_err(|e| NodeError::storage_in(e, &path))?;
    partition
        .begin_stream(crate::streams::initial_setting(meta, p.id))
        .map_err(|e| NodeError::storage_in(e, &path))?;
    let partition = Arc::new(partition);
    let shipper = Arc::new(Shipper::start(&partition, p.id, &gsis));
    Ok(PartitionHandle {
        record: p.clone(),
        shipper,
        gsis,
        path,
        poisoned: Arc::default(),
        // Not ready until the first eventually consistent read found it caught up: a new replica
        // is empty, and a restarted one as old as its downtime.
        ready: Arc::new(AtomicBool::new(false)),
        applied: Arc::new(tokio::sync::watch::Sender::new(partition.applied_index())),
        partition,
    })
}

/// Opens a table's partition files and their GSI shards with its data key, hands the index
/// definitions to the partitions and starts their shippers.
pub(crate) fn open_table(
    dir: &Path,
    record: &TableRecord,
    key: &shoal_crypto::DataKey,
) -> Result<TableHandle, NodeError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| NodeError::Storage(format!("cannot create {}: {e}", dir.display())))?;
    let ids: Vec<u64> = record.partitions.iter().map(|p| p.id).collect();
    crate::gsi::adopt_legacy_files(dir, &record.meta.indexes, &ids)?;
    let partitions = record
        .partitions
        .iter()
        .map(|p| open_partition(dir, p, &record.meta, key))
        .collect::<Result<Vec<_>, NodeError>>()?;
    let handle = TableHandle {
        meta: RwLock::new(Arc::new(record.meta.clone())),
        partitions,
        dir: dir.to_path_buf(),
        keys: RwLock::new(record.keys.clone()),
    };
    handle.set_indexes(&record.meta.indexes)?;
    Ok(handle)
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
        let backend = NodeBackend {
            region,
            account_id: "000000000000".to_string(),
            endpoints,
            keys,
            data_dir: data_dir.to_path_buf(),
            catalog: Arc::new(catalog),
            ring,
            tables: Arc::new(RwLock::new(tables)),
            ddl: Arc::default(),
            cluster: std::sync::OnceLock::new(),
            groups: parking_lot::Mutex::default(),
            reconcile_soon: Arc::default(),
            gsi_built: Arc::default(),
            refused_by: parking_lot::Mutex::default(),
            metrics: Arc::default(),
        };
        // Index creations and deletions a restart interrupted carry on.
        let work = backend.index_work();
        let handles: Vec<Arc<TableHandle>> = backend.tables.read().values().cloned().collect();
        for handle in &handles {
            work.resume(handle);
        }
        Ok(backend)
    }

    /// The background index work's view of the node.
    pub(crate) fn index_work(&self) -> IndexWork {
        IndexWork {
            catalog: Arc::clone(&self.catalog),
            tables: Arc::downgrade(&self.tables),
            ddl: Arc::clone(&self.ddl),
            built: Arc::clone(&self.gsi_built),
            wake: Arc::clone(&self.reconcile_soon),
            clustered: self.cluster.get().is_some(),
        }
    }

    pub(crate) fn handle(&self, name: &str) -> Result<Arc<TableHandle>, DataError> {
        self.tables
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| DataError::TableNotFound(name.to_string()))
    }

    /// The table handle for an item operation, checking it is still the same table (not deleted
    /// and re-created since the caller looked it up).
    pub(crate) fn handle_for(&self, meta: &TableMeta) -> Result<Arc<TableHandle>, DataError> {
        let handle = self.handle(&meta.name)?;
        if handle.meta.read().id != meta.id {
            return Err(DataError::TableNotFound(meta.name.clone()));
        }
        Ok(handle)
    }
}

#[async_trait]
impl DataPlane for NodeBackend {
    async fn resolve_kms_key(&self, key_id: Option<&str>) -> Result<String, KmsKeyError> {
        let requested = key_id.unwrap_or(AWS_MANAGED_KEY_ALIAS).to_string();
        let Some(kms) = self.ring.kms().cloned() else {
            if key_id.is_none() {
                // DynamoDB's AWS managed key, without a KMS: Shoal's own keys stand in.
                return Ok(
                    shoal_catalog::TableSse::shoal_managed(&self.region, &self.account_id)
                        .kms_master_key_arn,
                );
            }
            return Err(KmsKeyError::Unusable(format!(
                "One or more parameter values were invalid: KMSMasterKeyId {requested} cannot be used: this node has no KMS endpoint configured"
            )));
        };
        blocking(move || resolve_kms_key(&kms, &requested)).await?
    }

    async fn create_table(&self, meta: TableMeta) -> Result<Arc<TableMeta>, DataError> {
        let cluster = self.cluster()?;
        every_member_reads(&cluster, &meta)?;
        let mut meta = meta;
        // The partitions are created before the reply, so the table is usable at once; the reply
        // still says CREATING, as DynamoDB's does.
        meta.status = TableStatus::Active;
        let format = cluster.meta().write_format();
        let global = meta.indexes.iter().any(|d| d.kind == IndexKind::Global);
        let partitions = if format >= 3 && (!global || format >= GLOBAL_INDEX_SPLIT_FORMAT) {
            initial_partitions(&meta)
        } else {
            1
        };
        match cluster
            .meta_propose(MetaCommand::CreateTable { meta, partitions })
            .await?
        {
            MetaResult::Table(entry) => {
                let handle = self.wait_local(&entry.meta.name, &entry.meta.id).await?;
                let meta = handle.meta.read().clone();
                Ok(meta)
            }
            MetaResult::TableExists(name) => Err(DataError::TableExists(name)),
            other => Err(internal(format!("unexpected metadata result {other:?}"))),
        }
    }

    async fn table(&self, name: &str) -> Result<Arc<TableMeta>, DataError> {
        Ok(self.handle_fresh(name).await?.meta.read().clone())
    }

    async fn table_fresh(&self, name: &str) -> Result<Arc<TableMeta>, DataError> {
        let cluster = self.cluster()?;
        cluster.refresh_meta().await?;
        match cluster.meta().tables.get(name) {
            Some(t) => Ok(Arc::new(t.meta.clone())),
            None => Err(DataError::TableNotFound(name.to_string())),
        }
    }

    async fn table_stats(&self, name: &str) -> Result<TableStats, DataError> {
        self.spread_stats(name, None).await
    }

    async fn index_stats(&self, name: &str, index: u32) -> Result<TableStats, DataError> {
        // Local and global indexes alike: each base partition holds its entries.
        self.spread_stats(name, Some(index)).await
    }

    async fn list_tables(&self) -> Result<Vec<String>, DataError> {
        let cluster = self.cluster()?;
        // The catalog is the cluster's: list it from an up-to-date copy.
        cluster.refresh_meta().await?;
        Ok(cluster.meta().tables.keys().cloned().collect())
    }

    async fn replace_table(
        &self,
        expected_version: u64,
        meta: TableMeta,
    ) -> Result<Arc<TableMeta>, DataError> {
        let cluster = self.cluster()?;
        every_member_reads(&cluster, &meta)?;
        let handle = self.handle(&meta.name)?;
        let current = handle.meta.read().clone();
        let mut meta = meta;
        shoal_catalog::changes::rebase_indexes(&mut meta, &current);
        refuse_spread_global_index(&cluster, &meta, &current)?;
        match cluster
            .meta_propose(MetaCommand::ReplaceTable {
                expected_version,
                meta,
            })
            .await?
        {
            MetaResult::Table(entry) => {
                let handle = self.wait_local(&entry.meta.name, &entry.meta.id).await?;
                let version = entry.meta.version;
                crate::cluster::wait_until(crate::cluster::ROUTE_DEADLINE, || {
                    handle.meta.read().version == version
                })
                .await;
                // The definition as of this change (a new index is CREATING), not the local one
                // after it: the backfill of an empty table may have finished already.
                Ok(Arc::new(entry.meta))
            }
            MetaResult::Conflict(name) => Err(DataError::Conflict(name)),
            MetaResult::TableNotFound(name) => Err(DataError::TableNotFound(name)),
            other => Err(internal(format!("unexpected metadata result {other:?}"))),
        }
    }

    async fn delete_table(&self, name: &str) -> Result<(Arc<TableMeta>, TableStats), DataError> {
        let cluster = self.cluster()?;
        let handle = self.handle_fresh(name).await?;
        // The description DeleteTable returns: best effort from the replicas.
        let stats = self.spread_stats(name, None).await.unwrap_or_default();
        let meta = handle.meta.read().clone();
        drop(handle);
        match cluster
            .meta_propose(MetaCommand::DeleteTable {
                name: name.to_string(),
                id: meta.id.clone(),
            })
            .await?
        {
            MetaResult::Ok => {
                self.reconcile().await;
                Ok((meta, stats))
            }
            _ => Err(DataError::TableNotFound(name.to_string())),
        }
    }

    async fn transact_write(
        &self,
        writes: Vec<shoal_catalog::TxWrite>,
        token: Option<shoal_catalog::TxToken>,
    ) -> Result<shoal_catalog::TxOutcome<Applied>, DataError> {
        crate::transact::write(self, writes, token).await
    }

    async fn transact_get(
        &self,
        gets: Vec<shoal_catalog::TxGet>,
    ) -> Result<shoal_catalog::TxOutcome<Option<Item>>, DataError> {
        crate::transact::get(self, gets).await
    }

    async fn write(&self, table: &TableMeta, command: Command) -> Result<Applied, DataError> {
        self.rerouted(|| self.write_once(table, &command)).await
    }

    async fn query(&self, table: &TableMeta, request: QueryRequest) -> Result<Page, DataError> {
        // Shared, not copied, by the attempts (one, unless a split re-routes it).
        let request = Arc::new(request);
        self.rerouted(|| self.query_once(table, Arc::clone(&request)))
            .await
    }

    async fn scan(&self, table: &TableMeta, request: ScanRequest) -> Result<Page, DataError> {
        self.rerouted(|| self.scan_once(table, request.clone()))
            .await
    }

    async fn get(
        &self,
        table: &TableMeta,
        key: &Item,
        consistent: bool,
    ) -> Result<Option<Item>, DataError> {
        self.rerouted(|| self.get_once(table, key, consistent))
            .await
    }

    async fn time_to_live_settled(&self, table: &TableMeta) -> Result<bool, DataError> {
        self.ttl_settled(table).await
    }

    async fn stream_shards(
        &self,
        table: &TableMeta,
        stream: &shoal_catalog::StreamDef,
    ) -> Result<shoal_catalog::StreamShards, DataError> {
        self.shards(table, stream).await
    }

    async fn stream_records(
        &self,
        table: &TableMeta,
        stream: &shoal_catalog::StreamDef,
        shard: shoal_catalog::ShardId,
        from: shoal_catalog::RecordsFrom,
        limit: usize,
    ) -> Result<shoal_catalog::RecordsPage, DataError> {
        self.records(table, stream, shard, from, limit).await
    }

    async fn item_collection_size(
        &self,
        table: &TableMeta,
        partition_key: &AttributeValue,
    ) -> Result<u64, DataError> {
        let handle = self.handle_for(table)?;
        let Some(part) = handle.partition_for_hash(partition_hash(partition_key)) else {
            let call = DataCall::CollectionSize {
                table: table.name.clone(),
                partition_key: partition_key.clone(),
            };
            return self.forward(call).await.and_then(DataReply::into_size);
        };
        let (partition, path) = (Arc::clone(&part.partition), Arc::clone(&part.path));
        let pk = partition_key.clone();
        blocking(move || partition.item_collection_size(&pk))
            .await?
            .map_err(|e| storage_failure(e, &path))
    }
}

/// How long an eventually consistent read waits for a catching-up replica before it is
/// refused. The wait is one ReadIndex (a heartbeat round with a quorum), far below this unless
/// the replica is streaming a snapshot; 2 s proved too short on a 2-core machine running the
/// 3-node conformance suites' clusters side by side (a freshly opened replica refused a read).
const READY_WAIT: Duration = Duration::from_secs(5);

impl NodeBackend {
    /// [`DataPlane::write`] routed with the current map once.
    async fn write_once(&self, table: &TableMeta, command: &Command) -> Result<Applied, DataError> {
        let handle = self.handle_for(table)?;
        let part = command
            .key_item()
            .and_then(|key| handle.partition_for(key, table));
        let Some(part) = part else {
            return self
                .forward(DataCall::Write {
                    table: table.name.clone(),
                    command: command.clone(),
                })
                .await
                .and_then(DataReply::into_applied);
        };
        let applied = part.applied.subscribe();
        let group = part.record.id;
        drop(handle);
        // Replicated: answered once a quorum has the entry durable and the leader applied it.
        let written = match self.cluster()?.write(group, command, applied).await {
            // This replica was moved away while the write waited (it did not run): the
            // partition's current replicas take it.
            Err(DataError::Unavailable(why)) if why == crate::remote::NOT_A_REPLICA => {
                let call = DataCall::Write {
                    table: table.name.clone(),
                    command: command.clone(),
                };
                return self.forward(call).await.and_then(DataReply::into_applied);
            }
            other => other?,
        };
        written.map_err(|e| match e {
            shoal_storage::ApplyError::Storage(e) => crate::storage_failure::replicated_failure(e),
            other => DataError::Apply(other),
        })
    }

    /// [`DataPlane::query`] routed with the current map once.
    async fn query_once(
        &self,
        table: &TableMeta,
        request: Arc<QueryRequest>,
    ) -> Result<Page, DataError> {
        if let Some(def) = index_of(table, request.index)?.filter(|d| d.kind == IndexKind::Global) {
            return self.read_gsi(table, def, GsiRead::Query(request)).await;
        }
        let handle = self.handle_for(table)?;
        if !holds_query(&handle, table, &request) {
            let call = DataCall::Query {
                table: table.name.clone(),
                request: Arc::unwrap_or_clone(request),
            };
            return self.forward(call).await.and_then(DataReply::into_page);
        }
        let hash = partition_hash(&request.partition_key);
        let part = handle
            .partition_for_hash(hash)
            .ok_or_else(|| internal("no partition covers the key's hash"))?;
        if request.consistent {
            self.read_point(&handle, hash).await?;
        } else {
            self.ensure_ready(part).await?;
        }
        part.check_readable()?;
        crate::split::check_owns(part, hash)?;
        let meter = self.admit_read(table, &part.record, None, request.consistent)?;
        let target = ReadTarget::base(&part.partition, request.index);
        let path = Arc::clone(&part.path);
        let page = blocking(move || {
            target.query(&QuerySpec {
                partition_key: &request.partition_key,
                sort_prefix: &request.sort_prefix,
                sort: request.sort.as_ref(),
                forward: request.forward,
                exclusive_start: request.exclusive_start.as_ref(),
                limit: request.limit,
                byte_limit: request.byte_limit,
                filter: request.filter.as_ref(),
            })
        })
        .await?
        .map_err(|e| storage_failure(e, &path))?;
        self.charge_read(table, meter, None, page.scanned_bytes);
        Ok(page)
    }

    /// [`DataPlane::scan`] routed with the current map once.
    async fn scan_once(&self, table: &TableMeta, request: ScanRequest) -> Result<Page, DataError> {
        if let Some(def) = index_of(table, request.index)?.filter(|d| d.kind == IndexKind::Global) {
            return self
                .read_gsi(table, def, GsiRead::Scan(Arc::new(request)))
                .await;
        }
        let handle = self.handle_for(table)?;
        if let Some(parts) = self.spread_scan_parts(&handle, table, &request)? {
            return self.scan_spread(&handle, table, request, parts).await;
        }
        if handle.partitions.is_empty() {
            let call = DataCall::Scan {
                table: table.name.clone(),
                request,
            };
            return self.forward(call).await.and_then(DataReply::into_page);
        }
        self.scan_local(&handle, table, request).await
    }

    /// [`DataPlane::get`] routed with the current map once.
    async fn get_once(
        &self,
        table: &TableMeta,
        key: &Item,
        consistent: bool,
    ) -> Result<Option<Item>, DataError> {
        let handle = self.handle_for(table)?;
        let Some(part) = handle.partition_for(key, table) else {
            let call = DataCall::Get {
                table: table.name.clone(),
                key: key.clone(),
                consistent,
            };
            return self.forward(call).await.and_then(DataReply::into_item);
        };
        // Strongly consistent: the replica first catches up to the leader's commit index as of
        // now (ReadIndex); eventually consistent reads take the local replica as it is.
        part.check_readable()?;
        let ready = if consistent {
            self.cluster()?.read_index(part.record.id).await
        } else {
            self.ensure_ready(part).await
        };
        match ready {
            // This replica left its group (moved away): a current replica serves the read.
            Err(DataError::Unavailable(why)) if why == crate::remote::NOT_A_REPLICA => {
                let call = DataCall::Get {
                    table: table.name.clone(),
                    key: key.clone(),
                    consistent,
                };
                return self.forward(call).await.and_then(DataReply::into_item);
            }
            other => other?,
        }
        if let Some(pk) = key.get(&table.key_schema.hash.name) {
            crate::split::check_owns(part, partition_hash(pk))?;
        }
        let meter = self.admit_read(table, &part.record, None, consistent)?;
        let item = self.get_here(part, key).await?;
        let size = item.as_ref().map(shoal_types::size::item_size).unwrap_or(0);
        self.charge_read(table, meter, None, size);
        Ok(item)
    }

    /// A point read of the local replica `part`, ready to serve it.
    async fn get_here(
        &self,
        part: &PartitionHandle,
        key: &Item,
    ) -> Result<Option<Item>, DataError> {
        //
        // Served in place on the async worker, not through `spawn_blocking` (BatchGetItem and
        // TransactGetItems come through here too). A point read is one b-tree descent whose
        // pages are almost always in the connection's page cache or the kernel's: microseconds,
        // less than the hand-off to the blocking pool and back (a futex wake-up and a context
        // switch each way). Measured: 29-35% less server CPU per GetItem (docs/PERFORMANCE.md).
        // The trade-off: a read that misses the OS page cache blocks this worker for one
        // `pread` per missing page. Waiting is never done here: when no reader connection is
        // idle (all busy, none opened yet, or a rekey running), the read goes to the blocking
        // pool as before. Query and Scan, which read many pages, always run there.
        if let Some(read) = part.partition.try_get(key) {
            return read.map_err(|e| storage_failure(e, &part.path));
        }
        let partition = part.partition.clone();
        let path = part.path.clone();
        let key = key.clone();
        blocking(move || partition.get(&key))
            .await?
            .map_err(|e| storage_failure(e, &path))
    }

    /// Before an eventually consistent read of `part`: a replica that is catching up (just
    /// opened, or installing a snapshot) never answers with data from before its catch-up. It
    /// first reaches the leader's commit index as of now (ReadIndex), for up to [`READY_WAIT`];
    /// past that the read is refused (retryable), and the client retries here or elsewhere.
    pub(crate) async fn ensure_ready(&self, part: &PartitionHandle) -> Result<(), DataError> {
        if part.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        // A backend serving no cluster (unit tests) has nothing to catch up with.
        let Ok(cluster) = self.cluster() else {
            return Ok(());
        };
        let group = part.record.id;
        if !cluster.snapshots.downloading(group) {
            match tokio::time::timeout(READY_WAIT, cluster.read_index(group)).await {
                Ok(Ok(())) if !cluster.snapshots.downloading(group) => {
                    part.ready.store(true, Ordering::Release);
                    return Ok(());
                }
                // Left its group (moved away): the caller sends the read elsewhere.
                Ok(Err(DataError::Unavailable(why))) if why == crate::remote::NOT_A_REPLICA => {
                    return Err(DataError::Unavailable(why));
                }
                _ => {}
            }
        }
        Err(DataError::Unavailable(
            "this node's replica of the partition is still catching up with the cluster: retry"
                .to_string(),
        ))
    }

    /// A scan of the partitions held here (every one the request's range touches).
    async fn scan_local(
        &self,
        handle: &TableHandle,
        table: &TableMeta,
        request: ScanRequest,
    ) -> Result<Page, DataError> {
        for p in &handle.partitions {
            p.check_readable()?;
        }
        if request.consistent {
            for p in &handle.partitions {
                if p.record.hash_end >= request.hash_start
                    && p.record.hash_start <= request.hash_end
                {
                    self.cluster()?.read_index(p.record.id).await?;
                }
            }
        } else {
            for p in handle.partitions.iter().filter(|p| {
                p.record.hash_end >= request.hash_start && p.record.hash_start <= request.hash_end
            }) {
                self.ensure_ready(p).await?;
            }
        }
        let def = index_of(table, request.index)?;
        let resume_hash = Self::scan_resume_hash(table, &request)?;
        let overlaps = |start: u64, end: u64| {
            end >= request.hash_start
                && start <= request.hash_end
                && resume_hash.is_none_or(|h| end >= h)
        };
        let clip =
            |start: u64, end: u64| (start.max(request.hash_start), end.min(request.hash_end));
        let mut parts: Vec<(u64, u64, ReadTarget, Arc<Path>)> = Vec::new();
        let mut meters = Vec::new();
        for p in handle
            .partitions
            .iter()
            .filter(|p| overlaps(p.record.hash_start, p.record.hash_end))
        {
            let (start, end) = clip(p.record.hash_start, p.record.hash_end);
            crate::split::check_covers(p, start, end)?;
            meters.push((
                start,
                self.admit_read(table, &p.record, None, request.consistent)?,
            ));
            let target = ReadTarget::base(&p.partition, def.map(|d| d.id));
            parts.push((start, end, target, Arc::clone(&p.path)));
        }
        parts.sort_by_key(|(start, _, _, _)| *start);
        meters.sort_by_key(|(start, _)| *start);
        // Each partition is charged what it read (its bytes rounded up on their own).
        let (page, read) = blocking(move || -> Result<(Page, Vec<usize>), DataError> {
            let mut page = Page::default();
            let mut read = Vec::with_capacity(parts.len());
            for (i, (start, end, target, path)) in parts.iter().enumerate() {
                let remaining = request.limit.map(|l| l.saturating_sub(page.scanned_count));
                if remaining == Some(0) {
                    break;
                }
                let part_page = target
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
                read.push(part_page.scanned_bytes);
                if append_part(&mut page, part_page) {
                    break;
                }
            }
            Ok((page, read))
        })
        .await??;
        for ((_, meter), bytes) in meters.into_iter().zip(read) {
            self.charge_read(table, meter, None, bytes);
        }
        Ok(page)
    }

    /// The resume hash of a scan of the table or an LSI: the table partition-key hash of its
    /// `ExclusiveStartKey` (GSI scans are `gsi_read.rs`'s).
    fn scan_resume_hash(
        table: &TableMeta,
        request: &ScanRequest,
    ) -> Result<Option<u64>, DataError> {
        let Some(key) = &request.exclusive_start else {
            return Ok(None);
        };
        key.get(&table.key_schema.hash.name)
            .map(|v| Some(partition_hash(v)))
            .ok_or_else(|| internal("exclusive start key without partition key"))
    }

    /// The parts of a scan of the table (or an LSI) when they are not all held here: each
    /// partition's share of the requested hash range still to walk, in hash order, and whether
    /// this node holds it. `None` when this node holds every partition the scan touches.
    fn spread_scan_parts(
        &self,
        handle: &TableHandle,
        table: &TableMeta,
        request: &ScanRequest,
    ) -> Result<Option<Vec<ScanPart>>, DataError> {
        let Ok(cluster) = self.cluster() else {
            return Ok(None);
        };
        let resume = Self::scan_resume_hash(table, request)?.unwrap_or(0);
        let start = request.hash_start.max(resume);
        if start > request.hash_end {
            return Ok(None);
        }
        let meta = cluster.meta();
        let Some(entry) = meta
            .tables
            .get(&table.name)
            .filter(|t| t.meta.id == table.id)
        else {
            return Ok(None);
        };
        let parts: Vec<ScanPart> = entry
            .partitions
            .overlapping(None, start, request.hash_end)
            .map(|p| {
                let local = handle.partitions.iter().any(|h| h.record.id == p.id);
                (
                    p.hash_start.max(start),
                    p.hash_end.min(request.hash_end),
                    local,
                )
            })
            .collect();
        Ok((!parts.iter().all(|(_, _, local)| *local)).then_some(parts))
    }

    /// A scan over partitions held by different nodes: each part read here or by a replica
    /// holding it, in hash order, until the limit, the page size or the end of the range. Only
    /// the first part resumes from the `ExclusiveStartKey`; a part that stops early ends the
    /// page with its `LastEvaluatedKey`.
    async fn scan_spread(
        &self,
        handle: &TableHandle,
        table: &TableMeta,
        request: ScanRequest,
        parts: Vec<ScanPart>,
    ) -> Result<Page, DataError> {
        let mut page = Page::default();
        for (i, (start, end, local)) in parts.into_iter().enumerate() {
            let remaining = request.limit.map(|l| l.saturating_sub(page.scanned_count));
            if remaining == Some(0) {
                break;
            }
            let part = ScanRequest {
                hash_start: start,
                hash_end: end,
                exclusive_start: if i == 0 {
                    request.exclusive_start.clone()
                } else {
                    None
                },
                limit: remaining,
                byte_limit: request.byte_limit.saturating_sub(page.scanned_bytes).max(1),
                filter: request.filter.clone(),
                consistent: request.consistent,
                index: request.index,
            };
            let part_page = if local {
                self.scan_local(handle, table, part).await?
            } else {
                let call = DataCall::Scan {
                    table: table.name.clone(),
                    request: part,
                };
                self.forward(call).await.and_then(DataReply::into_page)?
            };
            if append_part(&mut page, part_page) {
                break;
            }
        }
        Ok(page)
    }

    /// Waits until the local replica of the partition holding `hash` may serve a linearizable
    /// read.
    async fn read_point(&self, handle: &TableHandle, hash: u64) -> Result<(), DataError> {
        let group = handle
            .partition_for_hash(hash)
            .ok_or_else(|| internal("no partition covers the key's hash"))?
            .record
            .id;
        self.cluster()?.read_index(group).await
    }
}

/// One partition's share of a scan: its first and last hash, and whether this node holds it.
type ScanPart = (u64, u64, bool);

/// Adds one partition's part of a scan to `page`; true when the part stopped early (its
/// `LastEvaluatedKey` ends the page).
fn append_part(page: &mut Page, part: Page) -> bool {
    page.items.extend(part.items);
    page.scanned_count += part.scanned_count;
    page.scanned_bytes += part.scanned_bytes;
    if part.last_evaluated_key.is_some() {
        page.last_evaluated_key = part.last_evaluated_key;
        return true;
    }
    false
}

/// The index `id` of `table` (`None` for the table itself).
pub(crate) fn index_of(table: &TableMeta, id: Option<u32>) -> Result<Option<&IndexDef>, DataError> {
    match id {
        None => Ok(None),
        Some(id) => table
            .indexes
            .iter()
            .find(|d| d.id == id && d.status != IndexStatus::Deleting)
            .map(Some)
            .ok_or_else(|| DataError::IndexNotFound(id.to_string())),
    }
}

/// Where a Query or Scan reads: the table's items, a local index's entries in a base partition,
/// or a global index partition.
enum ReadTarget {
    Table(Arc<Partition>),
    Local(Arc<Partition>, u32),
}

impl ReadTarget {
    /// A read of a base partition: its local index `index`, or its items when `None`.
    fn base(partition: &Arc<Partition>, index: Option<u32>) -> ReadTarget {
        let partition = Arc::clone(partition);
        match index {
            Some(id) => ReadTarget::Local(partition, id),
            None => ReadTarget::Table(partition),
        }
    }

    fn query(&self, spec: &QuerySpec<'_>) -> Result<Page, StorageError> {
        match self {
            ReadTarget::Table(p) => p.query(spec),
            ReadTarget::Local(p, id) => p.query_index(*id, spec),
        }
    }

    fn scan(&self, spec: &ScanSpec<'_>) -> Result<Page, StorageError> {
        match self {
            ReadTarget::Table(p) => p.scan(spec),
            ReadTarget::Local(p, id) => p.scan_index(*id, spec),
        }
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

    fn health(&self) -> Result<(), String> {
        match self.cluster.get().and_then(|c| c.fail_stop.current()) {
            Some(failure) => Err(failure.to_string()),
            None => Ok(()),
        }
    }

    async fn status(&self) -> Option<serde_json::Value> {
        let cluster = self.cluster.get()?;
        Some(crate::cluster::status(cluster).await)
    }

    fn endpoints(&self) -> Vec<String> {
        match self.cluster.get() {
            // A node being decommissioned is not offered to clients.
            Some(c) => c
                .meta()
                .members
                .values()
                .filter(|m| m.state.is_active())
                .map(|m| m.api_addr.clone())
                .collect(),
            None => self.endpoints.clone(),
        }
    }

    async fn metrics(&self) -> String {
        crate::metrics::render(self)
    }

    fn knows_table(&self, name: &str) -> bool {
        self.tables.read().contains_key(name)
    }

    fn node_id(&self) -> Option<u64> {
        self.cluster.get().map(|c| c.node_id)
    }

    fn is_admin(&self, access_key_id: &str) -> bool {
        self.keys
            .list()
            .iter()
            .any(|k| k.id == access_key_id && k.admin)
    }

    fn key_policy(&self, access_key_id: &str) -> Option<Arc<shoal_policy::Policy>> {
        self.keys.policy(access_key_id)
    }

    async fn remove_node(&self, id: u64) -> Result<serde_json::Value, String> {
        let cluster = self.cluster().map_err(|e| e.to_string())?;
        cluster.refresh_meta().await.map_err(|e| e.to_string())?;
        match cluster
            .meta_propose(MetaCommand::DecommissionMember { id })
            .await
            .map_err(|e| e.to_string())?
        {
            MetaResult::Ok => {
                tracing::info!(
                    node = id,
                    "decommissioning a node: its replicas move to the others"
                );
                Ok(serde_json::json!({ "node": id, "state": "leaving" }))
            }
            MetaResult::NotFound if cluster.meta().removed_members.contains(&id) => {
                Ok(serde_json::json!({ "node": id, "state": "removed" }))
            }
            MetaResult::NotFound => Err(format!("node {id} is not a member of this cluster")),
            MetaResult::Conflict(why) => Err(format!("node {id} cannot be removed: {why}")),
            other => Err(format!("unexpected metadata result {other:?}")),
        }
    }
}

/// How many partitions a new table starts with: as many as DynamoDB's per-partition limits
/// (3,000 RCU, 1,000 WCU) imply for a provisioned table, else one. A table with global secondary
/// indexes starts with one: a node's GSI files are fed from its own base partitions, so an index
/// over partitions placed on different nodes would answer from part of the table.
pub(crate) fn initial_partitions(meta: &TableMeta) -> u64 {
    if meta.billing.mode != shoal_catalog::BillingMode::Provisioned {
        return 1;
    }
    shoal_catalog::initial_partition_count(
        meta.billing.read_capacity_units,
        meta.billing.write_capacity_units,
    )
}

/// Refuses a new global secondary index on a table of more than one partition (see
/// [`initial_partitions`]) with a message that says so, rather than an index that answers from
/// part of the table.
fn refuse_spread_global_index(
    cluster: &crate::cluster::Cluster,
    meta: &TableMeta,
    current: &TableMeta,
) -> Result<(), DataError> {
    let added = meta
        .indexes
        .iter()
        .any(|d| d.kind == IndexKind::Global && !current.indexes.iter().any(|c| c.id == d.id));
    let spread = cluster
        .meta()
        .tables
        .get(&meta.name)
        .is_some_and(|t| t.partitions.of(None).nth(1).is_some());
    if added && spread && cluster.meta().write_format() < GLOBAL_INDEX_SPLIT_FORMAT {
        return Err(DataError::Apply(shoal_storage::ApplyError::Validation(
            format!(
                "Table {} has more than one partition: a global secondary index can be added to it once every node of the cluster runs a Shoal version that shards global indexes by partition",
                meta.name
            ),
        )));
    }
    Ok(())
}

/// Refuses a table definition that members still running an older binary could not read: a
/// multi-attribute index key is written in a catalog form they do not know, so it waits until
/// every member reads metadata format 2 (a rolling upgrade finished).
fn every_member_reads(
    cluster: &crate::cluster::Cluster,
    meta: &TableMeta,
) -> Result<(), DataError> {
    let multi = meta
        .indexes
        .iter()
        .any(|i| i.key_schema.as_simple().is_none());
    if multi && cluster.meta().write_format() < 2 {
        return Err(DataError::Apply(shoal_storage::ApplyError::Validation(
            "Multi-attribute index keys are not available until every node of the cluster runs a Shoal version that supports them".to_string(),
        )));
    }
    Ok(())
}

//! The [`Backend`] trait: what the API needs from a node, so the API can be tested without a cluster.
//!
//! The API layer validates and parses requests into catalog changes and storage [`Command`]s; the
//! backend decides where they run (a local partition today, a Raft group later).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shoal_expr::{Condition, SortKeyCondition};
use shoal_storage::{Applied, ApplyError, Command, Page};
use shoal_types::index::IndexDef;
use shoal_types::key::KeySchema;
use shoal_types::{AttributeValue, Item, ScalarType};

use crate::sigv4::KeyLookup;

/// `TableStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl TableStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TableStatus::Creating => "CREATING",
            TableStatus::Active => "ACTIVE",
            TableStatus::Updating => "UPDATING",
            TableStatus::Deleting => "DELETING",
        }
    }
}

/// `BillingMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillingMode {
    Provisioned,
    PayPerRequest,
}

impl BillingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::Provisioned => "PROVISIONED",
            BillingMode::PayPerRequest => "PAY_PER_REQUEST",
        }
    }
}

/// Billing settings and the provisioned-throughput history DescribeTable reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Billing {
    pub mode: BillingMode,
    pub read_capacity_units: u64,
    pub write_capacity_units: u64,
    /// Seconds since the epoch.
    pub last_update_to_pay_per_request: Option<f64>,
    pub last_increase: Option<f64>,
    pub last_decrease: Option<f64>,
    pub decreases_today: u64,
}

/// A table encrypted under its own KMS key (DynamoDB's `SSEDescription` with `SSEType` `KMS`): the table's
/// data key is wrapped by this KMS key instead of the node's master key. Tables without it
/// ([`TableMeta::sse`] `None`) use the default encryption, DynamoDB's "AWS owned key".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSse {
    /// ARN of the KMS key (`KMSMasterKeyArn`).
    pub kms_master_key_arn: String,
}

/// One table's catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableMeta {
    pub name: String,
    /// A UUID, `TableId`.
    pub id: String,
    pub arn: String,
    pub key_schema: KeySchema,
    /// `AttributeDefinitions` in the order given at creation.
    pub attribute_definitions: Vec<(String, ScalarType)>,
    /// Seconds since the epoch, `CreationDateTime`.
    pub created_at: f64,
    pub status: TableStatus,
    pub billing: Billing,
    pub deletion_protection: bool,
    pub table_class: Option<String>,
    /// Tags in insertion order (keys unique).
    pub tags: Vec<(String, String)>,
    /// Bumped on every change; [`Backend::replace_table`] compares it.
    pub version: u64,
    /// The table's own KMS key, if its `SSESpecification` chose one. A backend re-wraps the table's data
    /// key when [`Backend::replace_table`] changes this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<TableSse>,
    /// Secondary indexes (local and global), in creation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexDef>,
    /// The id the next new index gets ([`IndexDef::id`]s are never reused).
    #[serde(default)]
    pub next_index_id: u32,
    /// Provisioned throughput of each global secondary index (PROVISIONED tables only; empty for
    /// PAY_PER_REQUEST tables and for local indexes, which share the table's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub index_throughput: Vec<IndexThroughput>,
}

/// The provisioned throughput of one global secondary index and its history
/// (`ProvisionedThroughput` of a `GlobalSecondaryIndexDescription`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexThroughput {
    /// [`IndexDef::id`] of the index.
    pub index: u32,
    pub read_capacity_units: u64,
    pub write_capacity_units: u64,
    /// Seconds since the epoch.
    #[serde(default)]
    pub last_increase: Option<f64>,
    #[serde(default)]
    pub last_decrease: Option<f64>,
    #[serde(default)]
    pub decreases_today: u64,
}

impl TableMeta {
    /// The index named `name`, if the table has one.
    pub fn index(&self, name: &str) -> Option<&IndexDef> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// The provisioned throughput of the global index `index`, if it has one.
    pub fn throughput_of(&self, index: u32) -> Option<&IndexThroughput> {
        self.index_throughput.iter().find(|t| t.index == index)
    }

    /// Whether the table has local secondary indexes (item collections are limited and
    /// `ReturnItemCollectionMetrics` reports on them).
    pub fn has_local_indexes(&self) -> bool {
        self.indexes
            .iter()
            .any(|i| i.kind == shoal_types::index::IndexKind::Local)
    }
}

/// Item count and size of a table, summed over its partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    pub item_count: u64,
    pub size_bytes: u64,
}

/// What can go wrong below the API. Each variant is mapped to a DynamoDB error by the handlers.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("table not found: {0}")]
    TableNotFound(String),
    #[error("table already exists: {0}")]
    TableExists(String),
    /// The table changed since the caller read it (compare-and-swap on `version` lost).
    #[error("table {0} was changed concurrently")]
    Conflict(String),
    /// The index (named) is not there any more: deleted since the request was validated.
    #[error("the table does not have the index {0}")]
    IndexNotFound(String),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("internal: {0}")]
    Internal(String),
    /// The node cannot serve the request for a reason the client should see (a full disk, a
    /// replica waiting for a restart): `InternalServerError` with this message.
    #[error("{0}")]
    Unavailable(String),
}

/// Why a KMS key named by an `SSESpecification` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KmsKeyError {
    /// The key does not exist, is disabled, is not a symmetric encryption key, or no KMS is configured:
    /// a `ValidationException` with this message.
    #[error("{0}")]
    Unusable(String),
    /// Anything else (KMS unreachable, ...).
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A Query of one partition key (owned, so it can move to the storage threads).
#[derive(Debug, Clone)]
pub struct QueryRequest {
    pub partition_key: AttributeValue,
    pub sort: Option<SortKeyCondition>,
    /// `ScanIndexForward`.
    pub forward: bool,
    pub exclusive_start: Option<Item>,
    /// Items read before the filter.
    pub limit: Option<usize>,
    /// The page size in bytes read (DynamoDB: 1 MB).
    pub byte_limit: usize,
    pub filter: Option<Condition>,
    pub consistent: bool,
    /// Query this secondary index ([`IndexDef::id`]) instead of the table.
    pub index: Option<u32>,
}

/// A Scan of a range of the partition-key hash space (one parallel-scan segment, or all of it).
#[derive(Debug, Clone)]
pub struct ScanRequest {
    /// First hash included.
    pub hash_start: u64,
    /// Last hash included.
    pub hash_end: u64,
    pub exclusive_start: Option<Item>,
    pub limit: Option<usize>,
    pub byte_limit: usize,
    pub filter: Option<Condition>,
    pub consistent: bool,
    /// Scan this secondary index ([`IndexDef::id`]) instead of the table.
    pub index: Option<u32>,
}

/// A node as the API sees it.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The region this node serves (ARNs, credential scope).
    fn region(&self) -> &str;

    /// The account id used in ARNs.
    fn account_id(&self) -> &str;

    /// Where SigV4 verification finds secrets.
    fn keys(&self) -> &dyn KeyLookup;

    /// The API addresses clients may use (`DescribeEndpoints`).
    fn endpoints(&self) -> Vec<String>;

    /// Whether this node can serve: `Err(reason)` once an essential part of it failed (it is
    /// then stopping), which `GET /health` and `GET /` answer with 503 and the reason. Cheap and
    /// non-blocking (called for every health check); the reason must not quote data. The default
    /// is always healthy.
    fn health(&self) -> Result<(), String> {
        Ok(())
    }

    /// The cluster's health for `GET /status` (nodes, partitions, leaders, replication lag), as
    /// JSON; `None` when the backend has no cluster.
    async fn status(&self) -> Option<serde_json::Value> {
        None
    }

    /// Resolves the KMS key an `SSESpecification` names (key id, key ARN, alias name or alias ARN; `None` for
    /// DynamoDB's AWS managed key `alias/aws/dynamodb`) to its key ARN, checking that it can wrap keys.
    /// The default says no KMS is configured.
    async fn resolve_kms_key(&self, key_id: Option<&str>) -> Result<String, KmsKeyError> {
        let _ = key_id;
        Err(KmsKeyError::Unusable(
            "KMS keys cannot be used: this node has no KMS endpoint configured".into(),
        ))
    }

    /// Creates a table from a complete catalog entry (status `Creating`); returns the stored entry.
    async fn create_table(&self, meta: TableMeta) -> Result<Arc<TableMeta>, BackendError>;

    /// The table's catalog entry (cheap: served from the node's cache).
    async fn table(&self, name: &str) -> Result<Arc<TableMeta>, BackendError>;

    /// The table's item count and size.
    async fn table_stats(&self, name: &str) -> Result<TableStats, BackendError>;

    /// Item count and size of one secondary index ([`IndexDef::id`]) of the table
    /// (`ItemCount`, `IndexSizeBytes`).
    async fn index_stats(&self, name: &str, index: u32) -> Result<TableStats, BackendError>;

    /// All table names, sorted.
    async fn list_tables(&self) -> Result<Vec<String>, BackendError>;

    /// Replaces the catalog entry if its `version` still equals `expected_version`.
    async fn replace_table(
        &self,
        expected_version: u64,
        meta: TableMeta,
    ) -> Result<Arc<TableMeta>, BackendError>;

    /// Deletes the table and its data; returns the entry as it was, with its last stats.
    async fn delete_table(&self, name: &str) -> Result<(Arc<TableMeta>, TableStats), BackendError>;

    /// Runs one write command on the partition that owns its key; returns once durable.
    async fn write(&self, table: &TableMeta, command: Command) -> Result<Applied, BackendError>;

    /// One page of a Query.
    async fn query(&self, table: &TableMeta, request: QueryRequest) -> Result<Page, BackendError>;

    /// One page of a Scan: walks the partitions overlapping the hash range in hash order,
    /// continuing into the next partition while the page has room.
    async fn scan(&self, table: &TableMeta, request: ScanRequest) -> Result<Page, BackendError>;

    /// Reads one item by its key.
    async fn get(
        &self,
        table: &TableMeta,
        key: &Item,
        consistent: bool,
    ) -> Result<Option<Item>, BackendError>;

    /// The size in bytes of the item collection of `partition_key` in a table with local secondary
    /// indexes: its items plus their local index entries (`ItemCollectionMetrics`). The default
    /// reports 0 for backends that do not track it.
    async fn item_collection_size(
        &self,
        table: &TableMeta,
        partition_key: &AttributeValue,
    ) -> Result<u64, BackendError> {
        let _ = (table, partition_key);
        Ok(0)
    }
}

//! [`DataPlane`]: what serving DynamoDB requests needs from the nodes below (tables, items,
//! reads), so the API can be tested without a cluster and the node can route every call to the
//! partitions that own it.

use std::sync::Arc;

use async_trait::async_trait;
use shoal_storage::{Applied, Command, Page};
use shoal_types::{AttributeValue, Item};

use crate::{
    DataError, KmsKeyError, QueryRequest, RecordsFrom, RecordsPage, ScanRequest, ShardId,
    StreamDef, StreamShards, TableMeta, TableStats, TxGet, TxOutcome, TxToken, TxWrite,
};

/// The data plane of a node: table DDL, item writes and reads. Implemented by `shoal-node`'s
/// router, which finds the partitions of a table in the partition map and runs each call where
/// they live.
#[async_trait]
pub trait DataPlane: Send + Sync + 'static {
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
    async fn create_table(&self, meta: TableMeta) -> Result<Arc<TableMeta>, DataError>;

    /// The table's catalog entry (cheap: served from the node's cache).
    async fn table(&self, name: &str) -> Result<Arc<TableMeta>, DataError>;

    /// The table's catalog entry as the cluster holds it now: one metadata round, so a change
    /// another node just made is seen (the cache of [`DataPlane::table`] may lag behind it).
    async fn table_fresh(&self, name: &str) -> Result<Arc<TableMeta>, DataError>;

    /// The table's item count and size.
    async fn table_stats(&self, name: &str) -> Result<TableStats, DataError>;

    /// Item count and size of one secondary index ([`shoal_types::index::IndexDef::id`]) of the
    /// table (`ItemCount`, `IndexSizeBytes`).
    async fn index_stats(&self, name: &str, index: u32) -> Result<TableStats, DataError>;

    /// All table names, sorted.
    async fn list_tables(&self) -> Result<Vec<String>, DataError>;

    /// Replaces the catalog entry if its `version` still equals `expected_version`.
    async fn replace_table(
        &self,
        expected_version: u64,
        meta: TableMeta,
    ) -> Result<Arc<TableMeta>, DataError>;

    /// Deletes the table and its data; returns the entry as it was, with its last stats.
    async fn delete_table(&self, name: &str) -> Result<(Arc<TableMeta>, TableStats), DataError>;

    /// Runs one write command on the partition that owns its key; returns once durable.
    async fn write(&self, table: &TableMeta, command: Command) -> Result<Applied, DataError>;

    /// One page of a Query.
    async fn query(&self, table: &TableMeta, request: QueryRequest) -> Result<Page, DataError>;

    /// One page of a Scan: walks the partitions overlapping the hash range in hash order,
    /// continuing into the next partition while the page has room.
    async fn scan(&self, table: &TableMeta, request: ScanRequest) -> Result<Page, DataError>;

    /// Reads one item by its key.
    async fn get(
        &self,
        table: &TableMeta,
        key: &Item,
        consistent: bool,
    ) -> Result<Option<Item>, DataError>;

    /// The size in bytes of the item collection of `partition_key` in a table with local secondary
    /// indexes: its items plus their local index entries (`ItemCollectionMetrics`). The default
    /// reports 0 for implementations that do not track it.
    async fn item_collection_size(
        &self,
        table: &TableMeta,
        partition_key: &AttributeValue,
    ) -> Result<u64, DataError> {
        let _ = (table, partition_key);
        Ok(0)
    }

    /// TransactWriteItems: applies every action or none, serializably, across tables,
    /// partitions and nodes. `Ok(Canceled)` when a condition fails, a transaction holds an item,
    /// or an action fails on its item. With a `token`, a retry of a committed request answers
    /// `AlreadyCommitted` (see [`TxToken`]). `Err` when the outcome could not be decided (nothing is
    /// then half applied: recovery finishes or undoes it).
    async fn transact_write(
        &self,
        writes: Vec<TxWrite>,
        token: Option<TxToken>,
    ) -> Result<TxOutcome<Applied>, DataError>;

    /// TransactGetItems: the items (`None` when absent), in request order, as of one moment.
    /// `Ok(Canceled)` with `TransactionConflict` reasons when a transaction held an item or a
    /// write changed one during the read.
    async fn transact_get(&self, gets: Vec<TxGet>) -> Result<TxOutcome<Option<Item>>, DataError>;

    /// Whether every base partition of `table` has finished following its Time to Live setting
    /// (the expiry index built for `time_to_live`, or dropped when it is `None`):
    /// DescribeTimeToLive's `ENABLING` / `DISABLING` until then.
    async fn time_to_live_settled(&self, table: &TableMeta) -> Result<bool, DataError>;

    /// The shards of `stream` of `table` that still hold records or are open, parents before
    /// their children, and how many partitions write its records now.
    async fn stream_shards(
        &self,
        table: &TableMeta,
        stream: &StreamDef,
    ) -> Result<StreamShards, DataError>;

    /// Up to `limit` records (and at most about 1 MB) of `shard` of `stream`, from `from`.
    /// [`DataError::ShardNotFound`] for a shard the stream does not have,
    /// [`DataError::Trimmed`] when records from `from` on were trimmed.
    async fn stream_records(
        &self,
        table: &TableMeta,
        stream: &StreamDef,
        shard: ShardId,
        from: RecordsFrom,
        limit: usize,
    ) -> Result<RecordsPage, DataError>;
}

//! The read requests of the data plane: [`QueryRequest`] and [`ScanRequest`].

use shoal_expr::{Condition, SortKeyCondition};
use shoal_types::{AttributeValue, Item};

/// A Query of one partition key (owned, so it can move to the storage threads or another node).
#[derive(Debug, Clone)]
pub struct QueryRequest {
    /// The partition key value; for a multi-attribute index key, the list of its partition
    /// attributes' values (`shoal_types::index_key::partition_key_value`).
    pub partition_key: AttributeValue,
    /// Values the first sort attributes of a multi-attribute index key must equal, in schema
    /// order; empty otherwise.
    pub sort_prefix: Vec<AttributeValue>,
    /// The condition on the sort attribute after `sort_prefix`.
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
    /// Query this secondary index ([`shoal_types::index::IndexDef::id`]) instead of the table.
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
    /// Scan this secondary index ([`shoal_types::index::IndexDef::id`]) instead of the table.
    pub index: Option<u32>,
}

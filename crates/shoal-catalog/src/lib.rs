//! The table model of Shoal, below everything that serves requests: it knows no HTTP, no Raft
//! and no storage engine.
//!
//! - [`TableMeta`]: one table's definition (keys, indexes, billing, encryption, tags) and
//!   [`TableStats`].
//! - [`PartitionMap`] / [`PartitionEntry`]: the hash ranges of a table and of each of its global
//!   indexes, the Raft group serving each, its epoch and its replicas' nodes.
//! - [`DataPlane`]: what the API needs from the nodes (DDL, writes, reads), with its requests
//!   ([`QueryRequest`], [`ScanRequest`]) and errors ([`DataError`], [`KmsKeyError`]).
//! - Transactions: [`TxWrite`], [`TxGet`] and how they end ([`TxOutcome`], [`TxReason`]).
//! - Streams: [`StreamDef`], [`ShardId`], [`ShardInfo`], [`RecordsPage`].
//! - [`capacity`]: DynamoDB's capacity-unit arithmetic and throttling reasons.
//! - [`changes`]: table changes as pure functions (index transitions, rebasing a client's change
//!   onto the node's own).
//!
//! ```
//! use shoal_catalog::{PartitionEntry, PartitionMap, even_ranges};
//!
//! let map = PartitionMap::new(
//!     even_ranges(2)
//!         .into_iter()
//!         .enumerate()
//!         .map(|(i, (start, end))| PartitionEntry {
//!             id: i as u64 + 1,
//!             index: None,
//!             hash_start: start,
//!             hash_end: end,
//!             epoch: 1,
//!             replicas: vec![1, 2, 3],
//!             generation: 0,
//!             preferred_leader: None,
//!             parent: None,
//!             splitting: false,
//!         })
//!         .collect(),
//! );
//! assert!(map.is_complete());
//! assert_eq!(map.find(None, u64::MAX).map(|p| p.id), Some(2));
//! ```

pub mod capacity;
pub mod changes;
mod dataplane;
mod error;
mod partition;
mod request;
mod stream;
mod table;
mod transaction;

pub use dataplane::DataPlane;
pub use error::{DataError, KmsKeyError};
pub use partition::{
    MAX_PARTITION_READ_UNITS, MAX_PARTITION_WRITE_UNITS, NodeId, PartitionEntry, PartitionMap,
    even_ranges, initial_partition_count,
};
pub use request::{QueryRequest, ScanRequest};
pub use stream::{
    ChangeEvent, ChangeRecord, RecordsFrom, RecordsPage, STREAM_RETENTION_SECS, ShardId, ShardInfo,
    StreamDef, StreamShards, StreamViewType, parse_sequence_number, sequence_number,
};
pub use table::{
    Billing, BillingMode, IndexCapacity, IndexThroughput, OnDemandThroughput, TableMeta,
    TablePolicy, TableSse, TableStats, TableStatus, WarmThroughput,
};
pub use transaction::{TxGet, TxOp, TxOutcome, TxReason, TxToken, TxWrite, TxWritten};

//! One partition replica of a table.
//!
//! - [`Engine`]: an ordered byte map with atomic, index-stamped [`WriteBatch`]es. Two engines:
//!   [`SqlCipherEngine`] (one encrypted SQLite file per replica: AES-256 pages with HMAC, WAL,
//!   4 KB pages) and [`MemEngine`] (a `BTreeMap`, for tests).
//! - [`Partition`]: items of one table partition on an engine. [`Partition::apply`] is the
//!   deterministic state machine that Raft feeds with [`Command`]s (conditional put, delete,
//!   update/upsert), returning [`Applied`] or an [`ApplyError`]; [`Partition::get`],
//!   [`Partition::query`] ([`QuerySpec`]) and [`Partition::scan`] ([`ScanSpec`]) read [`Page`]s
//!   with DynamoDB's paging rules; [`Partition::stats`] gives exact [`PartitionStats`].
//!
//! - Secondary indexes ([`Partition::set_indexes`]): local index entries are written in the
//!   same engine write as their item ([`Space::Index`]) and read with
//!   [`Partition::query_index`] / [`Partition::scan_index`]; changes of global index entries
//!   go to a durable outbox ([`Space::Outbox`], [`OutboxRecord`]) in the same write, from which
//!   the node ships them to [`IndexPartition`]s ([`IndexPartition::apply_outbox`], idempotent).
//!
//! Storage keys are `shoal_types::key::encode_key(hash, pk, sk)`: one partition key's items
//! are contiguous and ordered by sort key, and key order is hash order. Engine keys of
//! [`Space::Items`] shorter than 8 bytes are reserved for the partition's own metadata (its
//! stats, the last outbox seq).
//!
//! ```
//! use shoal_storage::{Command, MemEngine, Partition};
//! use shoal_types::key::{KeyAttr, KeySchema};
//! use shoal_types::{AttributeValue, Item, ScalarType};
//!
//! let schema = KeySchema { hash: KeyAttr { name: "pk".into(), ty: ScalarType::S }, range: None };
//! let part = Partition::new(Box::new(MemEngine::new()), schema).unwrap();
//! let item: Item = [("pk".to_string(), AttributeValue::S("a".into()))].into_iter().collect();
//! part.apply(1, &Command::Put { item: item.clone(), condition: None }).unwrap();
//! assert_eq!(part.get(&item).unwrap(), Some(item));
//! assert_eq!(part.stats().item_count, 1);
//! ```

mod change_log;
mod command;
mod engine;
mod error;
mod gsi;
mod index;
mod mem;
mod outbox;
mod partition;
mod range;
mod read;
mod rekey;
mod secondary;
mod snapshot;
mod split;
mod sqlcipher;
mod stats;
mod stream;
mod ttl;
mod txn;
pub mod wire;

pub use change_log::{
    CLOSED_SEQ, ChangeEvent, ChangeReadError, ChangeRecord, MAX_READ_BYTES, RecordsFrom,
    RecordsRead, ShardClose, ShardSummary, StreamSetting, StreamViewType, TRIMMED_SEQ,
};
pub use command::{Applied, ApplyError, Command, TxId, TxOp, TxPrimary, TxToken};
pub use engine::{Durability, Engine, Entry, ReadView, Space, WriteBatch};
pub use error::StorageError;
pub use gsi::IndexPartition;
pub use index::{entry_key, entry_key_hash};
pub use mem::MemEngine;
pub use outbox::OutboxRecord;
pub use partition::{MAX_ITEM_COLLECTION_SIZE, Partition};
pub use read::{Page, QuerySpec, ScanSpec};
pub use split::{OwnedRange, SplitChild};
pub use sqlcipher::SqlCipherEngine;
pub use stats::PartitionStats;
pub use stream::{SnapshotChunk, SnapshotPosition, read_chunk, write_chunk};
pub use ttl::TTL_MAX_AGE_SECS;
pub use txn::{Pending as TxPending, TOKEN_WINDOW_MS, TxRow};

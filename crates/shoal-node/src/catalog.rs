//! The node's table catalog, persisted in `<data-dir>/catalog.db` (a SQLCipher file through the
//! storage [`Engine`] trait): table name → JSON [`TableRecord`].
//!
//! In a cluster this moves into the metadata Raft group; the record format stays.

use std::path::Path;

use serde::{Deserialize, Serialize};
use shoal_catalog::TableMeta;
use shoal_storage::{Durability, Engine, SqlCipherEngine, WriteBatch};

use crate::NodeError;

/// One partition of a table: a range of the 64-bit partition-key hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionRecord {
    pub id: u64,
    /// Inclusive.
    pub hash_start: u64,
    /// Inclusive.
    pub hash_end: u64,
}

/// A table's catalog entry plus its partition map and its data keys, wrapped by a master key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableRecord {
    pub meta: TableMeta,
    pub partitions: Vec<PartitionRecord>,
    /// Flattened: the JSON keeps `data_key` at the top level, as format 2 always had it.
    #[serde(flatten)]
    pub keys: TableKeys,
}

/// A table's data keys as stored in its catalog record (wrapped; no key material in the clear).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableKeys {
    /// The key the table's files are encrypted with.
    pub data_key: shoal_crypto::WrappedKey,
    /// When `data_key` was created, seconds since the Unix epoch. Records written before
    /// scheduled rotation existed have none; the scheduler stamps them with the time it first
    /// sees them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_key_created_at: Option<u64>,
    /// The next data key while a rotation re-encrypts the files: each partition file is under
    /// `data_key` or `pending_data_key`, so a node that crashed mid-rotation opens every file
    /// with one of them and finishes the rotation at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_data_key: Option<shoal_crypto::WrappedKey>,
}

impl TableKeys {
    /// The keys of a new table: `data_key`, created now.
    pub fn new(data_key: shoal_crypto::WrappedKey) -> TableKeys {
        TableKeys {
            data_key,
            data_key_created_at: Some(now_secs()),
            pending_data_key: None,
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The persisted catalog.
pub struct Catalog {
    engine: SqlCipherEngine,
    /// A monotonically increasing index for the engine's applied-index column.
    next_index: parking_lot::Mutex<u64>,
}

fn store_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::Storage(e.to_string())
}

impl Catalog {
    pub fn open(path: &Path, key: &[u8; 32]) -> Result<Catalog, NodeError> {
        let engine = SqlCipherEngine::open(path, key, Durability::Sync).map_err(store_err)?;
        let next = engine.applied_index().map_err(store_err)? + 1;
        Ok(Catalog {
            engine,
            next_index: parking_lot::Mutex::new(next),
        })
    }

    /// Every table record.
    pub fn load(&self) -> Result<Vec<TableRecord>, NodeError> {
        let rows = self
            .engine
            .scan(None, None, false, usize::MAX)
            .map_err(store_err)?;
        rows.into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v).map_err(|e| {
                    NodeError::Storage(format!(
                        "catalog entry {} is corrupt: {e}",
                        String::from_utf8_lossy(&k)
                    ))
                })
            })
            .collect()
    }

    /// Writes (durably) a table record.
    pub fn put(&self, record: &TableRecord) -> Result<(), NodeError> {
        let value = serde_json::to_vec(record).map_err(store_err)?;
        let mut next = self.next_index.lock();
        let mut batch = WriteBatch::new(*next);
        batch.put(record.meta.name.as_bytes().to_vec(), value);
        self.engine.write(&batch).map_err(store_err)?;
        *next += 1;
        Ok(())
    }

    /// Writes (durably) several table records in one transaction: all or none.
    pub fn put_all(&self, records: &[TableRecord]) -> Result<(), NodeError> {
        let mut next = self.next_index.lock();
        let mut batch = WriteBatch::new(*next);
        for record in records {
            let value = serde_json::to_vec(record).map_err(store_err)?;
            batch.put(record.meta.name.as_bytes().to_vec(), value);
        }
        self.engine.write(&batch).map_err(store_err)?;
        *next += 1;
        Ok(())
    }

    /// Removes (durably) a table record.
    pub fn remove(&self, name: &str) -> Result<(), NodeError> {
        let mut next = self.next_index.lock();
        let mut batch = WriteBatch::new(*next);
        batch.delete(name.as_bytes().to_vec());
        self.engine.write(&batch).map_err(store_err)?;
        *next += 1;
        Ok(())
    }
}

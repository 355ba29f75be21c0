//! The metadata's formats on disk and on the wire, versioned.
//!
//! Metadata commands travel in the metadata group's Raft log and its snapshots carry the whole
//! [`MetaState`]; `meta.db` holds the state too. Both are JSON in an envelope naming the format
//! version: `{"format": 2, "command": {...}}` and `{"format": 2, "state": {...}}`.
//!
//! - Format 1 (until 2026-12) had no envelope: the bare JSON of the command or the state. It is
//!   still read, so a node reads every log entry and snapshot a previous version wrote.
//! - Format 2 adds the envelope, [`MetaCommand::DeclareDead`] and the joining process's
//!   `instance` ([`crate::Member::instance`]).
//! - Format 3 adds the partition count of [`MetaCommand::CreateTable`] (a provisioned table
//!   starts with as many partitions as its throughput needs) and
//!   [`MetaCommand::SetAccessKeyPolicy`]; both are written only once every member reads format 3,
//!   so an older node never creates one partition where the others create four, nor misses a
//!   key's policy.
//!
//! - Format 4 adds [`MetaCommand::SplitPartition`], proposed only once every member reads
//!   format 4 (an older node could not apply it, and would not copy the child's rows).
//!
//! - Format 5 encodes as format 4. A member that reads it keeps each global index in shards of
//!   the table's base partitions, so once every member does ([`crate::GLOBAL_INDEX_SPLIT_FORMAT`])
//!   `SplitPartition` applies to tables with global indexes too, and such tables may start with
//!   several partitions.
//!
//! - Format 6 encodes as format 5. A member that reads it applies the transaction commands of
//!   partitions (`shoal_storage::Command::TxPrepare` and the rest), so once every member does
//!   ([`crate::TRANSACTIONS_FORMAT`]) TransactWriteItems and TransactGetItems run.
//!
//! Members record the newest format they read ([`crate::Member::format`]), and the cluster writes
//! the oldest of them ([`MetaState::write_format`]): during a rolling upgrade the upgraded nodes
//! keep writing format 1 until every member runs a binary that reads format 2. Commands an older
//! binary cannot apply ([`MetaCommand::DeclareDead`]) are not proposed until then either.
//!
//! A node refuses a format newer than its own ([`META_FORMAT_VERSION`]) with an error naming
//! both, rather than misreading it. `tests/format.rs` decodes checked-in fixtures of every
//! format, and fails when the encoding of its sample changes while the version stays the same.

use serde::Serialize;
use serde_json::Value;

use crate::{MetaCommand, MetaState};

/// The metadata format this version writes.
pub const META_FORMAT_VERSION: u64 = 6;

/// Metadata bytes this node cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Written by a newer version.
    #[error(
        "metadata {what} of format {found}: this node reads formats 1 to {META_FORMAT_VERSION}; upgrade it"
    )]
    TooNew { what: &'static str, found: u64 },
    /// Not JSON of the expected shape.
    #[error("malformed metadata {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    format: u64,
    #[serde(flatten)]
    body: Body<'a, T>,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Body<'a, T> {
    Command(&'a T),
    State(&'a T),
}

/// Encodes a command in format `format` (1: bare; else the current format's envelope). The
/// cluster writes [`MetaState::write_format`]: the oldest format any member reads.
pub fn encode_command(command: &MetaCommand, format: u64) -> Vec<u8> {
    encode(Body::Command(command), format)
}

/// Encodes a state in format `format` (see [`encode_command`]).
pub fn encode_state(state: &MetaState, format: u64) -> Vec<u8> {
    encode(Body::State(state), format)
}

fn encode<T: Serialize>(body: Body<'_, T>, format: u64) -> Vec<u8> {
    // Plain data with string keys: serializing it cannot fail.
    if format <= 1 {
        let (Body::Command(v) | Body::State(v)) = body;
        return serde_json::to_vec(v).unwrap_or_default();
    }
    serde_json::to_vec(&Envelope {
        // The version the readers know: a cluster still writing format 2 says 2.
        format: format.min(META_FORMAT_VERSION),
        body,
    })
    .unwrap_or_default()
}

/// Decodes a command of any format this node reads.
///
/// # Errors
/// [`FormatError`] for a newer format or malformed bytes.
pub fn decode_command(bytes: &[u8]) -> Result<MetaCommand, FormatError> {
    decode(bytes, "command")
}

/// Decodes a state of any format this node reads.
///
/// # Errors
/// [`FormatError`] for a newer format or malformed bytes.
pub fn decode_state(bytes: &[u8]) -> Result<MetaState, FormatError> {
    decode(bytes, "state")
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, FormatError> {
    let malformed = |e: serde_json::Error| FormatError::Malformed {
        what,
        detail: e.to_string(),
    };
    let mut value: Value = serde_json::from_slice(bytes).map_err(malformed)?;
    let body = match value.get("format").map(Value::as_u64) {
        // Format 1: the bare value (a state has no `format` member; a command is `{"Name": ..}`).
        None => value,
        Some(Some(found)) if (2..=META_FORMAT_VERSION).contains(&found) => value
            .get_mut(what)
            .map(Value::take)
            .ok_or_else(|| FormatError::Malformed {
                what,
                detail: format!("format {found} without a `{what}` member"),
            })?,
        Some(Some(found)) if found > META_FORMAT_VERSION => {
            return Err(FormatError::TooNew { what, found });
        }
        Some(_) => {
            return Err(FormatError::Malformed {
                what,
                detail: "`format` is not a version this node knows".to_string(),
            });
        }
    };
    serde_json::from_value(body).map_err(malformed)
}

//! Streams as the catalog keeps them: a table's streams ([`StreamDef`], the latest last in
//! [`crate::TableMeta::streams`]), their shards ([`ShardId`], [`ShardInfo`]) and what a read of
//! a shard returns ([`RecordsPage`]).
//!
//! A shard is one base partition at one epoch: a split closes the partition's shard and opens
//! two children, the partition at its new epoch and the partition split off. Records live in
//! the partitions (`shoal_storage`'s change log), written in the same apply as their change.

use serde::{Deserialize, Serialize};
pub use shoal_storage::{ChangeEvent, ChangeRecord, RecordsFrom, StreamViewType};

/// How long records are kept: 24 hours, as in DynamoDB. A disabled stream stays readable as
/// long.
pub const STREAM_RETENTION_SECS: u64 = 24 * 3600;

/// One stream of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamDef {
    /// Unique within the table, counting up from 1.
    pub id: u32,
    /// `StreamLabel`: its creation time, `YYYY-MM-DDThh:mm:ss.sss` (UTC).
    pub label: String,
    pub view_type: StreamViewType,
    /// Seconds since the epoch.
    pub created_at: f64,
    /// Seconds since the epoch, once disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<f64>,
    /// The stream's resource-based policy (`PutResourcePolicy` on its ARN), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<crate::TablePolicy>,
}

impl StreamDef {
    /// `StreamArn`: the table's ARN, `/stream/` and the label.
    pub fn arn(&self, table_arn: &str) -> String {
        format!("{table_arn}/stream/{}", self.label)
    }

    /// Whether the table still writes records to it.
    pub fn enabled(&self) -> bool {
        self.disabled_at.is_none()
    }
}

/// A shard: base partition `partition` at `epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId {
    pub partition: u64,
    pub epoch: u64,
}

impl std::fmt::Display for ShardId {
    /// `shardId-<partition, 20 digits>-<epoch, 12 digits>` (DynamoDB's ids are 28 to 65
    /// characters).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shardId-{:020}-{:012}", self.partition, self.epoch)
    }
}

impl ShardId {
    /// Parses the [`std::fmt::Display`] form.
    pub fn parse(s: &str) -> Option<ShardId> {
        let rest = s.strip_prefix("shardId-")?;
        let (p, e) = rest.split_once('-')?;
        if p.len() != 20 || e.len() != 12 {
            return None;
        }
        Some(ShardId {
            partition: p.parse().ok()?,
            epoch: e.parse().ok()?,
        })
    }
}

/// A shard as `DescribeStream` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: ShardId,
    /// The shard it was split from, when that one is still kept.
    pub parent: Option<ShardId>,
    /// `StartingSequenceNumber`.
    pub starting_seq: u64,
    /// `EndingSequenceNumber`, once closed.
    pub ending_seq: Option<u64>,
}

/// A stream's shards and how far its partitions follow it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamShards {
    /// Parents before their children.
    pub shards: Vec<ShardInfo>,
    /// How many base partitions write records for the stream now.
    pub writing: usize,
    /// How many base partitions the table has.
    pub partitions: usize,
}

impl StreamShards {
    /// `StreamStatus` of `stream`: `ENABLING` until every partition writes its records,
    /// `DISABLING` until none does.
    pub fn status(&self, stream: &StreamDef) -> &'static str {
        match (stream.enabled(), self.writing) {
            (true, w) if w >= self.partitions => "ENABLED",
            (true, _) => "ENABLING",
            (false, 0) => "DISABLED",
            (false, _) => "DISABLING",
        }
    }
}

/// A `SequenceNumber` on the wire: 21 decimal digits.
pub fn sequence_number(seq: u64) -> String {
    format!("{seq:021}")
}

/// Parses a `SequenceNumber` (any decimal that fits a `u64`).
pub fn parse_sequence_number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What one read of a shard returns.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordsPage {
    pub records: Vec<ChangeRecord>,
    /// The sequence number the next read continues after; `None` once the shard is closed and
    /// every record was read (`NextShardIterator` is then absent).
    pub next: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_round_trip() {
        let id = ShardId {
            partition: 42,
            epoch: 7,
        };
        let s = id.to_string();
        assert_eq!(s, "shardId-00000000000000000042-000000000007");
        assert_eq!(ShardId::parse(&s), Some(id));
        assert_eq!(ShardId::parse("shardId-42-7"), None);
        assert_eq!(ShardId::parse("nope"), None);
    }

    #[test]
    fn sequence_numbers_round_trip() {
        assert_eq!(sequence_number(12), "000000000000000000012");
        assert_eq!(parse_sequence_number("000000000000000000012"), Some(12));
        assert_eq!(parse_sequence_number("-1"), None);
        assert_eq!(parse_sequence_number(""), None);
    }
}

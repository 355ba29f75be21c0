//! DynamoDB's capacity-unit arithmetic, shared by what reports consumption (the API's
//! `ConsumedCapacity`) and what enforces it (the node's throttles), so both count the same.
//!
//! Writes: one unit per started KB of the larger of the old and new item (minimum 1).
//! Reads: one unit per started 4 KB (minimum 1), halved for eventually consistent reads.
//! Index writes: see [`index_write_units`].

use shoal_types::Item;
use shoal_types::index::{IndexDef, IndexStatus};
use shoal_types::size::item_size;

use crate::TableMeta;

/// Write units for an item of `bytes` (the larger of before and after).
pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Read units for `bytes` read.
pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// The write units each index of `meta` is charged for one write that turned `old` into `new`,
/// in the table's index order (indexes being deleted are no longer written, so not listed).
///
/// An index is charged as DynamoDB describes for local indexes: one write of the new entry when
/// the item enters the index or its entry changes, one of the old entry when it leaves, both when
/// the index key changes, nothing when the entry stays the same or the item is in the index
/// neither before nor after.
pub fn index_write_units<'a>(
    meta: &'a TableMeta,
    old: Option<&'a Item>,
    new: Option<&'a Item>,
) -> impl Iterator<Item = (&'a IndexDef, f64)> + 'a {
    meta.indexes
        .iter()
        .filter(|d| d.status != IndexStatus::Deleting)
        .map(move |def| {
            let before = old.and_then(|i| def.entry(&meta.key_schema, i));
            let after = new.and_then(|i| def.entry(&meta.key_schema, i));
            let units = match (&before, &after) {
                (None, None) => 0.0,
                (Some(b), None) => write_units(item_size(b)),
                (None, Some(a)) => write_units(item_size(a)),
                (Some(b), Some(a)) if b == a => 0.0,
                (Some(b), Some(a)) => {
                    let same_key = def
                        .key_schema
                        .attrs()
                        .all(|k| b.get(&k.name) == a.get(&k.name));
                    if same_key {
                        write_units(item_size(a))
                    } else {
                        write_units(item_size(b)) + write_units(item_size(a))
                    }
                }
            };
            (def, units)
        })
}

/// What was throttled, in the words of DynamoDB's `ThrottlingReason.reason`
/// (`ResourceType` + `OperationType` + `LimitType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// The provisioned throughput of a PROVISIONED table or global index.
    Provisioned,
    /// The `OnDemandThroughput` maximum of a PAY_PER_REQUEST table or global index.
    MaxOnDemand,
    /// The per-partition limit (3,000 read or 1,000 write units per second).
    KeyRange,
}

/// Why a request was throttled: `ProvisionedThroughputExceededException` with one
/// `ThrottlingReason` of `reason` and `resource`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Throttled {
    /// e.g. `TableWriteProvisionedThroughputExceeded`, `IndexReadKeyRangeThroughputExceeded`.
    pub reason: String,
    /// The ARN of the table, or of the index (`<table arn>/index/<name>`).
    pub resource: String,
}

impl Throttled {
    /// The reason for `limit` on the table (`index` `None`) or one of its global indexes.
    pub fn new(meta: &TableMeta, index: Option<&IndexDef>, write: bool, limit: Limit) -> Throttled {
        let (kind, resource) = match index {
            None => ("Table", meta.arn.clone()),
            Some(d) => ("Index", format!("{}/index/{}", meta.arn, d.name)),
        };
        let op = if write { "Write" } else { "Read" };
        let limit = match limit {
            Limit::Provisioned => "ProvisionedThroughputExceeded",
            Limit::MaxOnDemand => "MaxOnDemandThroughputExceeded",
            Limit::KeyRange => "KeyRangeThroughputExceeded",
        };
        Throttled {
            reason: format!("{kind}{op}{limit}"),
            resource,
        }
    }

    /// DynamoDB's message for this reason.
    pub fn message(&self) -> &'static str {
        if self.reason.contains("KeyRange") {
            "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. If exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
        } else if self.reason.contains("MaxOnDemand") {
            "Throughput exceeds the maximum OnDemandThroughput configured on table or index"
        } else if self.reason.starts_with("Index") {
            "The level of configured provisioned throughput for one or more global secondary indexes of the table was exceeded. Consider increasing your provisioning level for the under-provisioned global secondary indexes with the UpdateTable API"
        } else {
            "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_up_with_a_minimum_of_one() {
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(4097, false), 1.0);
        assert_eq!(read_units(1, false), 0.5);
    }
}

//! `ReturnConsumedCapacity`: DynamoDB's capacity-unit arithmetic.
//!
//! Writes: one unit per started KB of the larger of the old and new item (minimum 1).
//! Reads: one unit per started 4 KB (minimum 1), halved for eventually consistent reads.

use serde_json::{Map, Value, json};

use crate::error::Violations;

/// The requested level of detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    None,
    Total,
    Indexes,
}

impl Level {
    pub fn parse(value: Option<&str>, v: &mut Violations) -> Level {
        match super::validate::enum_value(
            value,
            "returnConsumedCapacity",
            &["INDEXES", "TOTAL", "NONE"],
            v,
        ) {
            Some("INDEXES") => Level::Indexes,
            Some("TOTAL") => Level::Total,
            _ => Level::None,
        }
    }
}

/// Write units for an item of `bytes` (the larger of before and after).
pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Read units for `bytes` read.
pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// One `ConsumedCapacity` entry, or `None` when the level is NONE.
pub fn entry(level: Level, table: &str, units: f64) -> Option<Value> {
    match level {
        Level::None => None,
        Level::Total => Some(json!({"TableName": table, "CapacityUnits": units})),
        Level::Indexes => Some(json!({
            "TableName": table,
            "CapacityUnits": units,
            "Table": {"CapacityUnits": units},
        })),
    }
}

/// Adds `ConsumedCapacity` to `out` when the level asks for it.
pub fn attach(out: &mut Map<String, Value>, level: Level, table: &str, units: f64) {
    if let Some(e) = entry(level, table, units) {
        out.insert("ConsumedCapacity".into(), e);
    }
}

/// The `ConsumedCapacity` of a Query or Scan of a secondary index: `index_units` read from the
/// index, `table_units` of items fetched from the table (local indexes). INDEXES breaks the total
/// down into `Table` and `LocalSecondaryIndexes`/`GlobalSecondaryIndexes`.
pub fn index_read_entry(
    level: Level,
    table: &str,
    table_units: f64,
    index: &str,
    global: bool,
    index_units: f64,
) -> Option<Value> {
    let total = table_units + index_units;
    match level {
        Level::None => None,
        Level::Total => Some(json!({"TableName": table, "CapacityUnits": total})),
        Level::Indexes => {
            let mut e = Map::new();
            e.insert("TableName".into(), table.into());
            e.insert("CapacityUnits".into(), json!(total));
            if table_units > 0.0 {
                e.insert("Table".into(), json!({"CapacityUnits": table_units}));
            }
            let key = if global {
                "GlobalSecondaryIndexes"
            } else {
                "LocalSecondaryIndexes"
            };
            e.insert(key.into(), json!({ index: {"CapacityUnits": index_units} }));
            Some(Value::Object(e))
        }
    }
}

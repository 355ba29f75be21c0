//! `ReturnConsumedCapacity`: the `ConsumedCapacity` entries of DynamoDB's capacity-unit
//! arithmetic ([`shoal_catalog::capacity`], which the node's throttles count with too).

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

pub use shoal_catalog::capacity::{read_units, write_units};

/// One `ConsumedCapacity` entry of a read, or `None` when the level is NONE. The units count in
/// the table's metrics whether or not the client asked for them.
pub fn entry(level: Level, table: &str, units: f64) -> Option<Value> {
    crate::metrics::charge(table, units);
    entry_with(level, table, units, |e| {
        e.insert("Table".into(), json!({"CapacityUnits": units}));
    })
}

/// The entry of `total` units at `level`; INDEXES adds the breakdown `detail` inserts after
/// `TableName` and `CapacityUnits`.
fn entry_with(
    level: Level,
    table: &str,
    total: f64,
    detail: impl FnOnce(&mut Map<String, Value>),
) -> Option<Value> {
    match level {
        Level::None => None,
        Level::Total => Some(json!({"TableName": table, "CapacityUnits": total})),
        Level::Indexes => {
            let mut e = Map::new();
            e.insert("TableName".into(), table.into());
            e.insert("CapacityUnits".into(), json!(total));
            detail(&mut e);
            Some(Value::Object(e))
        }
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
    crate::metrics::charge(table, table_units + index_units);
    entry_with(level, table, table_units + index_units, |e| {
        if table_units > 0.0 {
            e.insert("Table".into(), json!({"CapacityUnits": table_units}));
        }
        let key = if global {
            "GlobalSecondaryIndexes"
        } else {
            "LocalSecondaryIndexes"
        };
        e.insert(key.into(), json!({ index: {"CapacityUnits": index_units} }));
    })
}

/// The write units of one write and of the index entries it changed
/// ([`shoal_catalog::capacity::index_write_units`]), summed over the writes of a request (one
/// item, or one table's part of a BatchWriteItem).
#[derive(Debug, Default)]
pub struct WriteCharge {
    table: f64,
    /// `(index name, global, units)` in the table's index order.
    indexes: Vec<(String, bool, f64)>,
}

impl WriteCharge {
    /// Adds one write of `meta` that turned `old` into `new`; `table_units` is its table charge.
    pub fn add(
        &mut self,
        meta: &crate::backend::TableMeta,
        table_units: f64,
        old: Option<&shoal_types::Item>,
        new: Option<&shoal_types::Item>,
    ) {
        use shoal_types::index::IndexKind;
        self.table += table_units;
        for (def, units) in shoal_catalog::capacity::index_write_units(meta, old, new) {
            match self.indexes.iter_mut().find(|(n, _, _)| *n == def.name) {
                Some(slot) => slot.2 += units,
                None => self
                    .indexes
                    .push((def.name.clone(), def.kind == IndexKind::Global, units)),
            }
        }
    }

    /// The `ConsumedCapacity` entry: the total of the table and its indexes, broken down by
    /// INDEXES into `Table`, `LocalSecondaryIndexes` and `GlobalSecondaryIndexes`.
    pub fn entry(&self, level: Level, table: &str) -> Option<Value> {
        let total = self.table + self.indexes.iter().map(|(_, _, u)| u).sum::<f64>();
        entry_with(level, table, total, |e| {
            e.insert("Table".into(), json!({"CapacityUnits": self.table}));
            for (key, global) in [
                ("LocalSecondaryIndexes", false),
                ("GlobalSecondaryIndexes", true),
            ] {
                let m: Map<String, Value> = self
                    .indexes
                    .iter()
                    .filter(|(_, g, _)| *g == global)
                    .map(|(n, _, u)| (n.clone(), json!({"CapacityUnits": u})))
                    .collect();
                if !m.is_empty() {
                    e.insert(key.into(), m.into());
                }
            }
        })
    }
}

//! Secondary index entries: their keys, sizes and reads.
//!
//! An index entry lives in [`Space::Index`] under
//! `index_id (u32 BE) ‖ encode_key(hash(index pk), index pk, index sk) ‖ table pk ‖ table sk`
//! (each key value in `encode_key_value`'s order-preserving encoding): the entries of one index
//! partition key are contiguous and ordered by index sort key, and the table key makes entries
//! with equal index keys unique. For a multi-attribute index key, `index pk` is the list of the
//! partition attributes' values and `index sk` the concatenated encodings of the sort
//! attributes' values ([`IndexKeySchema::encode`]); single-attribute entries are unchanged. The value is the projected entry (`IndexDef::entry`) in the
//! binary item codec.
//!
//! Metadata in [`Space::Index`] uses keys that no entry can have: `index_id` alone (4 bytes:
//! the index's stats) and keys under the reserved id [`COLLECTIONS_ID`] (item collection sizes).

use shoal_types::codec::encode_item;
use shoal_types::index::IndexDef;
#[cfg(doc)]
use shoal_types::index_key::IndexKeySchema;
use shoal_types::key::{KeySchema, encode_key, encode_key_value, partition_hash};
use shoal_types::size::item_size;
use shoal_types::{AttributeValue, Item};

use crate::range::entry_sort_key_range;
use crate::read::{RangeSource, hash_range, invalid_start_key};
use crate::{Engine, Page, QuerySpec, ScanSpec, Space, StorageError};

/// DynamoDB's per-entry overhead in index sizes (LSI.md, GSI.md "Storage considerations").
pub(crate) const ENTRY_OVERHEAD: usize = 100;

/// Index id reserved for item collection sizes (never assigned: ids count up from 0).
pub(crate) const COLLECTIONS_ID: u32 = u32::MAX;

/// Entry keys are at least this long (`index_id` and the 8-byte hash); shorter keys of
/// [`Space::Index`] are metadata.
const MIN_ENTRY_KEY: usize = 12;

/// The storage size of an index entry: its DynamoDB item size plus the 100-byte overhead.
pub(crate) fn entry_size(entry: &Item) -> usize {
    item_size(entry).saturating_add(ENTRY_OVERHEAD)
}

/// The key under which an index's stats are stored: the bare `index_id`.
pub(crate) fn stats_key(index_id: u32) -> Vec<u8> {
    index_id.to_be_bytes().to_vec()
}

/// The key of the item collection size counter of partition key `pk`.
pub(crate) fn collection_key(pk: &AttributeValue) -> Vec<u8> {
    let mut key = COLLECTIONS_ID.to_be_bytes().to_vec();
    key.extend_from_slice(&encode_key(partition_hash(pk), pk, None));
    key
}

/// The entry key of `entry` (an item or an entry holding the index's and the table's key
/// attributes), or `None` when one of them is missing or has another type.
pub fn entry_key(def: &IndexDef, table: &KeySchema, entry: &Item) -> Option<Vec<u8>> {
    let typed = |a: &shoal_types::key::KeyAttr| {
        entry.get(&a.name).filter(|v| v.scalar_type() == Some(a.ty))
    };
    let index_key = def.key_schema.encode(entry)?;
    let tpk = typed(&table.hash)?;
    let tsk = match &table.range {
        Some(r) => Some(typed(r)?),
        None => None,
    };
    let mut key = def.id.to_be_bytes().to_vec();
    key.extend_from_slice(&index_key);
    encode_key_value(tpk, &mut key);
    if let Some(tsk) = tsk {
        encode_key_value(tsk, &mut key);
    }
    Some(key)
}

/// The partition hash of an index entry key (the hash of the index partition key), for routing
/// an entry to the index partition owning it. `None` if `key` is too short to be an entry key.
pub fn entry_key_hash(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(4..12)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// An item's entry in one index: its key, the projected entry and its encoded value.
pub(crate) struct EntryOf {
    pub key: Vec<u8>,
    pub entry: Item,
}

impl EntryOf {
    /// The entry of `item` in `def`, if the item is indexed there.
    pub(crate) fn of(def: &IndexDef, table: &KeySchema, item: Option<&Item>) -> Option<EntryOf> {
        let entry = def.entry(table, item?)?;
        let key = entry_key(def, table, &entry)?;
        Some(EntryOf { key, entry })
    }

    pub(crate) fn encoded(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(128);
        encode_item(&self.entry, &mut value);
        value
    }
}

/// Query and Scan over the entries of one index in one engine.
pub(crate) struct IndexReader<'a> {
    pub engine: &'a dyn Engine,
    pub def: &'a IndexDef,
    pub table: &'a KeySchema,
    /// Read only the entries of the items whose partition key hash lies in this range.
    pub owned: Option<(u64, u64)>,
}

impl IndexReader<'_> {
    fn source(&self) -> RangeSource<'_> {
        RangeSource {
            engine: self.engine,
            space: Space::Index,
            min_key_len: MIN_ENTRY_KEY,
            owned: self
                .owned
                .map(|(start, end)| (self.table.hash.name.as_str(), start, end)),
        }
    }

    /// The table's and the index's key attributes of an entry (`LastEvaluatedKey`).
    fn key_of(&self, entry: &Item) -> Item {
        let mut key = self.table.key_of(entry);
        key.extend(self.def.key_schema.key_of(entry));
        key
    }

    /// The entry key of an `ExclusiveStartKey`.
    fn start_key(&self, esk: &Item) -> Result<Vec<u8>, StorageError> {
        entry_key(self.def, self.table, esk).ok_or_else(invalid_start_key)
    }

    /// A Query of one index partition key (see [`crate::Partition::query_index`]), narrowed to
    /// the spec's sort prefix; the sort condition applies to the sort attribute after it.
    pub(crate) fn query(&self, spec: &QuerySpec<'_>) -> Result<Page, StorageError> {
        let pk = spec.partition_key;
        let mut prefix = self.def.id.to_be_bytes().to_vec();
        prefix.extend_from_slice(&encode_key(partition_hash(pk), pk, None));
        for v in spec.sort_prefix {
            encode_key_value(v, &mut prefix);
        }
        let start = spec
            .exclusive_start
            .map(|e| self.start_key(e))
            .transpose()?;
        let range_attr = self
            .def
            .key_schema
            .range()
            .get(spec.sort_prefix.len())
            .map(|r| r.name.as_str());
        self.source().query(
            &prefix,
            entry_sort_key_range,
            start,
            spec,
            range_attr,
            |entry| self.key_of(entry),
        )
    }

    /// A Scan of the entries whose index partition hash lies in `[hash_start, hash_end]`.
    pub(crate) fn scan(&self, spec: &ScanSpec<'_>) -> Result<Page, StorageError> {
        let Some(range) = hash_range(&self.def.id.to_be_bytes(), spec) else {
            return Ok(Page::default());
        };
        let start = spec
            .exclusive_start
            .map(|e| self.start_key(e))
            .transpose()?;
        self.source()
            .scan(range, start, spec, |entry| self.key_of(entry))
    }
}
